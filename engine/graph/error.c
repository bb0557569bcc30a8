/*
 * error.c - Graph errors: the one mapping from HTTP status + Graph error
 * JSON to -errno and a sentence for people, and the per-thread last error.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "graph_i.h"
#include "http/http.h"

static __thread struct graph_error last_error;

struct graph_error *graph_err_slot(void)
{
	return &last_error;
}

const struct graph_error *graph_last_error(void)
{
	return &last_error;
}

int graph_bad(const char *type, const char *field, const char *problem)
{
	struct graph_error *e = &last_error;

	memset(e, 0, sizeof(*e));
	e->rc = -EBADMSG;
	snprintf(e->message, sizeof(e->message),
		 "%s '%s' %s: Graph sent malformed data; if it persists, "
		 "report it with the request ids from the log",
		 type, field, problem);
	return -EBADMSG;
}

/* Copy untrusted text: printable ASCII and UTF-8 only, no controls. */
static void clean_copy(char *dst, size_t size, const char *src)
{
	size_t n = 0;

	for (; src && *src && n + 1 < size; src++) {
		unsigned char c = (unsigned char)*src;

		if (c == '\r' || c == '\n') {
			/* AADSTS-style texts: keep the first line only */
			break;
		}
		dst[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	dst[n] = '\0';
}

static bool code_is(const char *code, const char *const *list)
{
	for (; *list; list++)
		if (!strcasecmp(code, *list))
			return true;
	return false;
}

int graph_error_map(long status, const char *body, size_t len, const char *what,
		    struct graph_error *err)
{
	static const char *const stale[] = { "resyncRequired",
					     "syncStateNotFound",
					     "SyncStateInvalid",
					     "resyncChangesApplyDifferences",
					     "resyncChangesUploadDifferences",
					     NULL };
	static const char *const exists[] = { "nameAlreadyExists",
					      "ErrorFolderExists", NULL };
	static const char *const nomailbox[] = {
		"MailboxNotEnabledForRESTAPI", "MailboxNotSupportedForRESTAPI",
		NULL
	};
	char gmsg[200] = "";
	const char *w = what ? what : "the request";
	cJSON *j = NULL;
	const cJSON *e, *inner;
	int rc;

	memset(err, 0, sizeof(*err));
	err->status = status;
	if (body && len)
		j = cJSON_ParseWithLength(body, len);
	e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
	if (e && cJSON_IsObject(e)) {
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");

		if (cJSON_IsString(c))
			clean_copy(err->code, sizeof(err->code),
				   c->valuestring);
		if (cJSON_IsString(m))
			clean_copy(gmsg, sizeof(gmsg), m->valuestring);
		/* the innermost innerError code is the most specific */
		for (inner = cJSON_GetObjectItemCaseSensitive(e, "innerError");
		     inner && cJSON_IsObject(inner);
		     inner = cJSON_GetObjectItemCaseSensitive(inner,
							      "innerError")) {
			const cJSON *ic =
				cJSON_GetObjectItemCaseSensitive(inner, "code");

			if (cJSON_IsString(ic))
				clean_copy(err->inner_code,
					   sizeof(err->inner_code),
					   ic->valuestring);
		}
	} else if (e && cJSON_IsString(e)) {
		/* token-endpoint style {"error": "invalid_client", ...} */
		clean_copy(err->code, sizeof(err->code), e->valuestring);
		e = cJSON_GetObjectItemCaseSensitive(j, "error_description");
		if (cJSON_IsString(e))
			clean_copy(gmsg, sizeof(gmsg), e->valuestring);
	}
	cJSON_Delete(j);

	rc = http_status_errno(status);
#define SAY(...) snprintf(err->message, sizeof(err->message), __VA_ARGS__)
	if (status == 410 || code_is(err->code, stale) ||
	    code_is(err->inner_code, stale)) {
		rc = -ESTALE;
		SAY("%s: the delta token expired (%s); the container is read "
		    "again in full",
		    w, err->code[0] ? err->code : "410 Gone");
	} else if (status == 401) {
		rc = -EACCES;
		SAY("%s: the access token was rejected (%s%s%s): check the "
		    "connection with 'm365-connect test'",
		    w, err->code[0] ? err->code : "401", gmsg[0] ? ": " : "",
		    gmsg);
	} else if (status == 403 && !strcasecmp(err->code, "malwareDetected")) {
		rc = -EPERM;
		SAY("%s: Microsoft flagged the file as malware; it cannot be "
		    "downloaded",
		    w);
	} else if (status == 403) {
		rc = -EPERM;
		SAY("%s: access denied (%s%s%s): the app lacks a permission or "
		    "admin consent; grant it with 'm365-connect grant'",
		    w, err->code[0] ? err->code : "403", gmsg[0] ? ": " : "",
		    gmsg);
	} else if (code_is(err->code, nomailbox) ||
		   code_is(err->inner_code, nomailbox)) {
		rc = -ENOENT;
		SAY("%s: the user has no Exchange Online mailbox", w);
	} else if (status == 404) {
		rc = -ENOENT;
		SAY("%s: not found (%s)", w, err->code[0] ? err->code : "404");
	} else if (status == 409 || code_is(err->code, exists)) {
		rc = -EEXIST;
		SAY("%s: an item with that name already exists: choose the "
		    "conflict policy 'rename' or 'replace'",
		    w);
	} else if (status == 429 || status == 503 || status == 509) {
		rc = -EAGAIN;
		SAY("%s: Microsoft is throttling the app (HTTP %ld%s%s) even "
		    "after waiting as told: run it later or with fewer "
		    "parallel transfers",
		    w, status, err->code[0] ? ", " : "", err->code);
	} else if (status == 507 ||
		   !strcasecmp(err->code, "quotaLimitReached")) {
		rc = -ENOSPC;
		SAY("%s: the drive or mailbox is over its quota: free space "
		    "in the tenant",
		    w);
	} else if (status == 416) {
		rc = -ERANGE;
		SAY("%s: the requested range is not valid (%s)", w,
		    err->code[0] ? err->code : "416");
	} else if (status == 423) {
		rc = -EBUSY;
		SAY("%s: the item is locked (%s); try again later", w,
		    err->code[0] ? err->code : "423");
	} else if (status >= 500) {
		SAY("%s: Graph failed with HTTP %ld%s%s%s%s; try again later",
		    w, status, err->code[0] ? " " : "", err->code,
		    gmsg[0] ? ": " : "", gmsg);
	} else {
		SAY("%s: Graph refused the request with HTTP %ld%s%s%s%s", w,
		    status, err->code[0] ? " " : "", err->code,
		    gmsg[0] ? ": " : "", gmsg);
	}
#undef SAY
	if (!rc)
		rc = -EIO; /* a success status is not an error to map */
	err->rc = rc;
	return rc;
}
