/*
 * graph.c - the Graph client: URLs, tokens, requests, pagers, downloads,
 * uploads, mail writes, $batch.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "graph_i.h"
#include "util/log.h"
#include "util/util.h"

#define DEFAULT_BASE "https://graph.microsoft.com"
#define USER_SELECT                                                            \
	"id,displayName,userPrincipalName,mail,accountEnabled,userType"
#define MESSAGE_SELECT                                                         \
	"id,subject,receivedDateTime,sentDateTime,createdDateTime,"            \
	"lastModifiedDateTime,isRead,isDraft,hasAttachments,"                  \
	"internetMessageId,parentFolderId,conversationId,from,sender,"         \
	"importance,flag,categories,changeKey"

/* ---- client ----------------------------------------------------------- */

int graph_new(struct http *h, const struct graph_config *cfg,
	      struct graph **out)
{
	const char *base = cfg && cfg->base_url ? cfg->base_url : DEFAULT_BASE;
	struct graph *g;
	size_t n = strlen(base);

	*out = NULL;
	while (n && base[n - 1] == '/')
		n--;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->base = malloc(n + sizeof("/v1.0"));
	if (!g->base) {
		free(g);
		return -ENOMEM;
	}
	memcpy(g->base, base, n);
	strcpy(g->base + n, "/v1.0");
	if (http_url_origin(g->base, g->origin, sizeof(g->origin)) < 0 ||
	    strchr(g->base, '?') || strchr(g->base, '#')) {
		log_err("graph base URL '%s' is not an https URL", base);
		free(g->base);
		free(g);
		return -EINVAL;
	}
	g->http = h;
	if (cfg) {
		g->token = cfg->token;
		g->mail_page_size = cfg->mail_page_size;
		g->page_size = cfg->page_size;
		g->json_cap = cfg->json_cap;
	}
	if (!g->mail_page_size)
		g->mail_page_size = 200;
	if (!g->json_cap)
		g->json_cap = GRAPH_JSON_CAP;
	*out = g;
	return 0;
}

void graph_free(struct graph *g)
{
	if (!g)
		return;
	free(g->base);
	free(g);
}

struct http *graph_http(struct graph *g)
{
	return g->http;
}

/* ---- URLs ------------------------------------------------------------- */

/*
 * Append to @u: the base, then @fmt where %e is a string escaped as one
 * path segment, %p a path escaped segment by segment ('/' kept), %s raw
 * text, %u an unsigned.
 */
int graph_url_build(struct graph *g, struct buf *u, const char *fmt, ...)
{
	va_list ap;
	int rc;

	buf_reset(u);
	rc = buf_adds(u, g->base);
	va_start(ap, fmt);
	for (const char *f = fmt; *f && !rc; f++) {
		const char *s;

		if (*f != '%') {
			rc = buf_addch(u, *f);
			continue;
		}
		switch (*++f) {
		case 'e':
			s = va_arg(ap, const char *);
			if (!s || !*s) {
				rc = -EINVAL;
				break;
			}
			rc = http_escape(u, s);
			break;
		case 'p':
			s = va_arg(ap, const char *);
			while (s && *s == '/')
				s++;
			while (s && *s && !rc) {
				size_t n = strcspn(s, "/");
				char seg[1024];

				if (n >= sizeof(seg)) {
					rc = -ENAMETOOLONG;
					break;
				}
				memcpy(seg, s, n);
				seg[n] = '\0';
				if (!strcmp(seg, "..") || !strcmp(seg, ".")) {
					rc = -EINVAL;
					break;
				}
				if (n)
					rc = http_escape(u, seg);
				s += n;
				if (*s == '/') {
					s++;
					if (*s && !rc)
						rc = buf_addch(u, '/');
				}
			}
			break;
		case 's':
			rc = buf_adds(u, va_arg(ap, const char *));
			break;
		case 'u':
			rc = buf_addf(u, "%u", va_arg(ap, unsigned));
			break;
		default:
			rc = -EINVAL;
		}
	}
	va_end(ap);
	return rc;
}

/* ---- requests --------------------------------------------------------- */

struct greq {
	const char *method;
	const char *url; /* absolute */
	const char *body; /* JSON or other text */
	size_t body_len;
	const char *const *headers; /* extra lines */
	const struct http_source *source;
	const struct http_sink *sink;
	uint64_t range_off, range_len;
	bool no_auth; /* pre-authenticated URL */
	bool follow;
	bool quiet_404; /* a 404 is an answer: log at debug */
	const char *what; /* for messages */
};

/* Which application permission a path needs, for the 403 sentence. */
static const char *permission_for(const char *url, const char *method)
{
	bool write = method && strcmp(method, "GET");
	const char *p = strstr(url, "/v1.0/");

	p = p ? p + 5 : url;
	if (strstr(p, "/mailFolders") || strstr(p, "/messages"))
		return write ? "Mail.ReadWrite" : "Mail.Read";
	if (!strncmp(p, "/sites", 6) || !strncmp(p, "/drives", 7) ||
	    strstr(p, "/drive"))
		return write ? "Files.ReadWrite.All" : "Sites.Read.All";
	if (!strncmp(p, "/users", 6))
		return "User.Read.All";
	if (!strncmp(p, "/groups", 7))
		return "Group.Read.All";
	if (!strncmp(p, "/organization", 13))
		return "Directory.Read.All";
	return NULL;
}

/* A failed request: map, remember, log.  Returns the -errno. */
static int fail(const struct greq *r, const struct http_response *resp, int rc)
{
	struct graph_error *e = graph_err_slot();
	const char *method = r->method ? r->method : "GET";
	char path[200];

	http_url_path(resp->url ? resp->url : r->url, path, sizeof(path));
	if (rc < 0) {
		memset(e, 0, sizeof(*e));
		e->rc = rc;
		snprintf(e->message, sizeof(e->message),
			 "%s: %s (no answer from %s after %u attempts): "
			 "check the network and the graph URL",
			 r->what ? r->what : path, strerror(-rc),
			 r->no_auth ? "the download host" : "Graph",
			 resp->attempts);
	} else {
		graph_error_map(resp->status, resp->body.data, resp->body.len,
				r->what ? r->what : path, e);
		rc = e->rc;
		if (r->no_auth &&
		    (resp->status == 401 || resp->status == 403)) {
			/* a pre-authenticated URL: no token of ours involved */
			rc = e->rc = -EACCES;
			snprintf(e->message, sizeof(e->message),
				 "%s: the pre-authenticated URL was refused "
				 "(HTTP %ld %s; expired?): ask Graph for a new "
				 "one",
				 r->what ? r->what : path, resp->status,
				 e->code);
		} else if (rc == -EPERM &&
			   strcasecmp(e->code, "malwareDetected")) {
			const char *perm = permission_for(r->url, method);

			if (perm)
				snprintf(e->message, sizeof(e->message),
					 "%s: the app has no permission '%s' "
					 "(%s): grant admin consent with "
					 "'m365-connect grant'",
					 r->what ? r->what : path, perm,
					 e->code[0] ? e->code : "403");
		}
	}
	snprintf(e->request_id, sizeof(e->request_id), "%s", resp->request_id);
	snprintf(e->client_request_id, sizeof(e->client_request_id), "%s",
		 resp->client_request_id);
	if (r->quiet_404 && resp->status == 404)
		log_debug("%s %s: HTTP 404 (request-id %s, client-request-id "
			  "%s)",
			  method, path, e->request_id, e->client_request_id);
	else if (rc == -ECONNRESET && r->sink && !r->sink->reset &&
		 resp->body_bytes)
		/* the caller asks for the rest (graph_item_download()) */
		log_debug("%s %s: broke after %llu bytes: %s", method, path,
			  (unsigned long long)resp->body_bytes, e->message);
	else /* an expired delta token: the caller reads it afresh */
		log_at(rc == -ESTALE ? LOG_INFO : LOG_ERR,
		       "%s %s: HTTP %ld %s (request-id %s, client-request-id "
		       "%s): %s",
		       method, path, resp->status, e->code,
		       e->request_id[0] ? e->request_id : "-",
		       e->client_request_id, e->message);
	return rc;
}

/* 401 with InvalidAuthenticationToken (or no code at all)? */
static bool token_rejected(const struct http_response *resp)
{
	if (resp->status != 401)
		return false;
	return !resp->body.len ||
	       strstr(resp->body.data, "InvalidAuthenticationToken") ||
	       !strstr(resp->body.data, "\"code\"");
}

/* The result of @r by the status in @resp: 0, or -errno logged. */
static int outcome(const struct greq *r, const struct http_response *resp)
{
	if (resp->status >= 200 && resp->status < 300)
		return 0;
	if (resp->status >= 300 && resp->status < 400 && !r->follow)
		return 0;
	return fail(r, resp, 0);
}

/*
 * Send @r.  Returns 0 with a 2xx (or 3xx when not following) in @resp, or
 * -errno with the last error filled and logged.
 */
static int send_req(struct graph *g, const struct greq *r,
		    struct http_response *resp)
{
	struct http_request hr = { 0 };
	struct buf tok = BUF_INIT;
	int rc;

	hr.method = r->method;
	hr.url = r->url;
	hr.body = r->body;
	hr.body_len =
		r->body ? (r->body_len ? r->body_len : strlen(r->body)) : 0;
	hr.headers = r->headers;
	hr.source = r->source;
	hr.sink = r->sink;
	hr.body_cap = g->json_cap;
	hr.flags = r->follow ? HTTP_F_FOLLOW : 0;
	hr.range_off = r->range_off;
	hr.range_len = r->range_len;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!r->no_auth && g->token.get) {
			buf_reset(&tok);
			rc = g->token.get(g->token.ctx, &tok);
			if (rc < 0) {
				struct graph_error *e = graph_err_slot();

				if (e->rc != rc) {
					memset(e, 0, sizeof(*e));
					e->rc = rc;
					snprintf(e->message, sizeof(e->message),
						 "%s: no access token (%s): "
						 "check the connection with "
						 "'m365-connect test'",
						 r->what ? r->what : "request",
						 strerror(-rc));
				}
				goto out;
			}
			hr.bearer = tok.data;
		}
		rc = http_do(g->http, &hr, resp);
		if (rc < 0) {
			rc = fail(r, resp, rc);
			goto out;
		}
		if (attempt == 0 && hr.bearer && token_rejected(resp) &&
		    g->token.invalidate) {
			/* expired or revoked: forget it and try once more */
			g->token.invalidate(g->token.ctx, tok.data);
			continue;
		}
		break;
	}
	rc = outcome(r, resp);
out:
	if (tok.len)
		explicit_bzero(tok.data, tok.len);
	buf_release(&tok);
	return rc;
}

/* Parse the JSON body of @resp into *@out (NULL for an empty body). */
static int parse_body(const struct greq *r, struct http_response *resp,
		      cJSON **out)
{
	cJSON *j;

	*out = NULL;
	if (!resp->body.len)
		return 0;
	if (memchr(resp->body.data, '\0', resp->body.len) ||
	    graph_json_has_nul(resp->body.data, resp->body.len))
		return graph_bad(r->what ? r->what : "response", "(body)",
				 "contains a NUL character");
	j = cJSON_ParseWithLength(resp->body.data, resp->body.len);
	if (!j)
		return graph_bad(r->what ? r->what : "response", "(body)",
				 "is not JSON");
	*out = j;
	return 0;
}

/* Send and parse: *@out gets the JSON (caller owns, may be NULL). */
static int call_json(struct graph *g, const struct greq *r, cJSON **out,
		     long *status)
{
	struct http_response resp;
	int rc;

	*out = NULL;
	http_response_init(&resp);
	rc = send_req(g, r, &resp);
	if (status)
		*status = resp.status;
	if (rc == 0)
		rc = parse_body(r, &resp, out);
	http_response_release(&resp);
	return rc;
}

/* GET @url as JSON object and parse it with @parse into @obj. */
static int get_object(struct graph *g, const char *url, const char *what,
		      bool quiet_404, int (*parse)(const cJSON *, void *),
		      void *obj)
{
	struct greq r = { .url = url, .what = what, .quiet_404 = quiet_404 };
	cJSON *j = NULL;
	int rc;

	rc = call_json(g, &r, &j, NULL);
	if (rc == 0 && !j)
		rc = graph_bad(what, "(body)", "is empty");
	if (rc == 0)
		rc = parse(j, obj);
	cJSON_Delete(j);
	return rc;
}

#define PARSER(fn) ((int (*)(const cJSON *, void *))(void (*)(void))(fn))

/* ---- single objects --------------------------------------------------- */

int graph_org_get(struct graph *g, struct graph_org *out)
{
	struct buf u = BUF_INIT;
	struct greq r = { .what = "read the organization" };
	const cJSON *v;
	cJSON *j = NULL;
	int rc;

	rc = graph_url_build(g, &u, "/organization");
	if (rc < 0)
		goto out;
	r.url = u.data;
	rc = call_json(g, &r, &j, NULL);
	if (rc < 0)
		goto out;
	v = j ? cJSON_GetObjectItemCaseSensitive(j, "value") : NULL;
	if (!cJSON_IsArray(v) || !cJSON_GetArraySize(v)) {
		rc = graph_bad("organization", "value",
			       "is not a non-empty "
			       "array");
		goto out;
	}
	rc = graph_parse_org(cJSON_GetArrayItem(v, 0), out);
out:
	cJSON_Delete(j);
	buf_release(&u);
	return rc;
}

int graph_user_get(struct graph *g, const char *user, struct graph_user *out)
{
	struct buf u = BUF_INIT;
	int rc = graph_url_build(g, &u, "/users/%e?$select=" USER_SELECT, user);

	if (rc == 0)
		rc = get_object(g, u.data, "read the user", true,
				PARSER(graph_parse_user), out);
	buf_release(&u);
	return rc;
}

int graph_site_get(struct graph *g, const char *site, struct graph_site *out)
{
	struct buf u = BUF_INIT;
	int rc = graph_url_build(g, &u, "/sites/%e", site);

	if (rc == 0)
		rc = get_object(g, u.data, "read the site", true,
				PARSER(graph_parse_site), out);
	buf_release(&u);
	return rc;
}

int graph_site_get_by_path(struct graph *g, const char *hostname,
			   const char *path, struct graph_site *out)
{
	struct buf u = BUF_INIT;
	int rc = graph_url_build(g, &u, "/sites/%e:/%p", hostname, path);

	if (rc == 0)
		rc = get_object(g, u.data, "read the site", true,
				PARSER(graph_parse_site), out);
	buf_release(&u);
	return rc;
}

int graph_drive_get(struct graph *g, const char *drive_id,
		    struct graph_drive *out)
{
	struct buf u = BUF_INIT;
	int rc = graph_url_build(g, &u, "/drives/%e", drive_id);

	if (rc == 0)
		rc = get_object(g, u.data, "read the drive", true,
				PARSER(graph_parse_drive), out);
	buf_release(&u);
	return rc;
}

static const char *owner_path(enum graph_owner o)
{
	switch (o) {
	case GRAPH_OWNER_USER:
		return "users";
	case GRAPH_OWNER_GROUP:
		return "groups";
	case GRAPH_OWNER_SITE:
	default:
		return "sites";
	}
}

int graph_drive_get_default(struct graph *g, enum graph_owner owner,
			    const char *owner_id, struct graph_drive *out)
{
	struct buf u = BUF_INIT;
	int rc = graph_url_build(g, &u, "/%s/%e/drive", owner_path(owner),
				 owner_id);

	if (rc == 0)
		rc = get_object(g, u.data, "read the default drive", true,
				PARSER(graph_parse_drive), out);
	buf_release(&u);
	return rc;
}

int graph_item_get(struct graph *g, const char *drive_id, const char *item_id,
		   struct graph_item *out)
{
	struct buf u = BUF_INIT;
	int rc;

	if (!strcmp(item_id, "root"))
		rc = graph_url_build(g, &u, "/drives/%e/root", drive_id);
	else
		rc = graph_url_build(g, &u, "/drives/%e/items/%e", drive_id,
				     item_id);
	if (rc == 0)
		rc = get_object(g, u.data, "read the item", true,
				PARSER(graph_parse_item), out);
	buf_release(&u);
	return rc;
}

int graph_item_get_by_path(struct graph *g, const char *drive_id,
			   const char *path, struct graph_item *out)
{
	struct buf u = BUF_INIT;
	int rc;

	if (!path || !path[strspn(path, "/")])
		rc = graph_url_build(g, &u, "/drives/%e/root", drive_id);
	else
		rc = graph_url_build(g, &u, "/drives/%e/root:/%p", drive_id,
				     path);
	if (rc == 0)
		rc = get_object(g, u.data, "read the item", true,
				PARSER(graph_parse_item), out);
	buf_release(&u);
	return rc;
}

int graph_mail_folder_get(struct graph *g, const char *user, const char *folder,
			  struct graph_mail_folder *out)
{
	struct buf u = BUF_INIT;
	int rc = graph_url_build(g, &u, "/users/%e/mailFolders/%e", user,
				 folder);

	if (rc == 0)
		rc = get_object(g, u.data, "read the mail folder", true,
				PARSER(graph_parse_mail_folder), out);
	buf_release(&u);
	return rc;
}

/* ---- pagers ---------------------------------------------------------- */

static int set_link(char **dst, const cJSON *page, const char *name,
		    const char *origin)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(page, name);
	char o[256];

	free(*dst);
	*dst = NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v) || strlen(v->valuestring) > 16384)
		return graph_bad("collection", name, "is not a URL");
	if (http_url_origin(v->valuestring, o, sizeof(o)) < 0 ||
	    strcmp(o, origin)) {
		struct graph_error *e = graph_err_slot();

		memset(e, 0, sizeof(*e));
		e->rc = -EPROTO;
		snprintf(e->message, sizeof(e->message),
			 "collection '%s' points to another host than the "
			 "graph URL; refused: check the graph URL of the "
			 "connection",
			 name);
		log_err("%s", e->message);
		return -EPROTO;
	}
	*dst = strdup(v->valuestring);
	return *dst ? 0 : -ENOMEM;
}

/*
 * Reading ahead: the next page of a pager, asked for (GET, without
 * waiting) as soon as its link is known.  The loop thread completes it;
 * the pager waits for it when it gets to that page, or, freed before,
 * leaves it to the completion to free.
 */
struct ahead {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool done;
	bool orphan; /* the pager is gone: the completion frees it */
	int rc;
	char *url;
	char *prefer;
	const char *hdrs[2];
	struct buf tok;
	struct http_request hr;
	struct http_response resp;
};

static void ahead_free(struct ahead *a)
{
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cv);
	if (a->tok.len)
		explicit_bzero(a->tok.data, a->tok.len);
	buf_release(&a->tok);
	http_response_release(&a->resp);
	free(a->url);
	free(a->prefer);
	free(a);
}

static void ahead_done(void *ctx, int rc, struct http_response *resp)
{
	struct ahead *a = ctx;
	bool orphan;

	(void)resp;
	pthread_mutex_lock(&a->lock);
	a->done = true;
	a->rc = rc;
	orphan = a->orphan;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->lock);
	if (orphan)
		ahead_free(a);
}

/* Forget the page read ahead of @p (it completes unseen). */
static void ahead_drop(struct graph_pager *p)
{
	struct ahead *a = p->ahead;
	bool done;

	if (!a)
		return;
	p->ahead = NULL;
	pthread_mutex_lock(&a->lock);
	done = a->done;
	a->orphan = true;
	pthread_mutex_unlock(&a->lock);
	if (done)
		ahead_free(a);
}

/*
 * @p read ahead and the page that just arrived in @resp has a next page:
 * ask for it now, while this page is parsed and worked through.  The link
 * is picked out of the body unparsed, so it is only a guess, used when it
 * equals the @odata.nextLink of the parsed page; it must be on the graph
 * host like every link.  Best effort: on any failure the next page is
 * asked for when it is needed.
 */
static void ahead_start(struct graph_pager *p, const struct http_response *resp)
{
	const char *v;
	size_t n;
	char o[256];
	struct ahead *a;

	if (!graph_json_top_string(resp->body.data, resp->body.len,
				   "@odata.nextLink", &v, &n) ||
	    n > 16384)
		return;
	a = calloc(1, sizeof(*a));
	if (!a)
		return;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cv, NULL);
	buf_init(&a->tok, 0);
	http_response_init(&a->resp);
	a->url = strndup(v, n);
	a->prefer = p->prefer ? strdup(p->prefer) : NULL;
	if (!a->url || (p->prefer && !a->prefer) ||
	    http_url_origin(a->url, o, sizeof(o)) < 0 ||
	    strcmp(o, p->g->origin))
		goto fail;
	a->hdrs[0] = a->prefer;
	a->hr.url = a->url;
	a->hr.headers = a->hdrs;
	a->hr.body_cap = p->g->json_cap;
	if (p->g->token.get) {
		if (p->g->token.get(p->g->token.ctx, &a->tok) < 0)
			goto fail;
		a->hr.bearer = a->tok.data;
	}
	if (http_submit(p->g->http, &a->hr, &a->resp, ahead_done, a) < 0)
		goto fail;
	p->ahead = a;
	return;
fail:
	ahead_free(a);
}

/*
 * Send @r (GET @r->url of pager @p) into @resp: through the page read
 * ahead when it is that one, else now.  0 with a 2xx or -errno, as
 * send_req().
 */
static int page_get(struct graph_pager *p, const struct greq *r,
		    struct http_response *resp)
{
	struct ahead *a = p->ahead;
	int rc;

	if (!a || strcmp(a->url, r->url)) {
		ahead_drop(p);
		return send_req(p->g, r, resp);
	}
	p->ahead = NULL;
	pthread_mutex_lock(&a->lock);
	while (!a->done)
		pthread_cond_wait(&a->cv, &a->lock);
	pthread_mutex_unlock(&a->lock);
	http_response_release(resp);
	*resp = a->resp;
	http_response_init(&a->resp);
	rc = a->rc;
	if (rc == 0 && a->hr.bearer && token_rejected(resp) &&
	    p->g->token.invalidate) {
		/* expired or revoked meanwhile: ask again, with a new one */
		p->g->token.invalidate(p->g->token.ctx, a->tok.data);
		rc = send_req(p->g, r, resp);
	} else if (rc < 0) {
		rc = fail(r, resp, rc);
	} else {
		rc = outcome(r, resp);
	}
	ahead_free(a);
	return rc;
}

int graph_pager_fetch(struct graph_pager *p, const char *url)
{
	const char *hdrs[2] = { p->prefer, NULL };
	struct greq r = { .url = url, .what = p->what, .headers = hdrs };
	struct http_response resp;
	const cJSON *v;
	cJSON *j = NULL;
	int rc;

	http_response_init(&resp);
	rc = page_get(p, &r, &resp);
	if (rc == 0 && p->pages + 2 <= p->ahead_to)
		ahead_start(p, &resp);
	if (rc == 0)
		rc = parse_body(&r, &resp, &j);
	http_response_release(&resp);
	if (rc < 0)
		goto out;
	if (!j || !cJSON_IsObject(j)) {
		rc = graph_bad("collection", "(body)", "is not an object");
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(j, "value");
	if (!cJSON_IsArray(v)) {
		rc = graph_bad("collection", "value", "is not an array");
		goto out;
	}
	rc = set_link(&p->next_link, j, "@odata.nextLink", p->g->origin);
	if (rc == 0)
		rc = set_link(&p->delta_link, j, "@odata.deltaLink",
			      p->g->origin);
	if (rc < 0)
		goto out;
	cJSON_Delete(p->page);
	p->page = j;
	p->cur = v->child;
	p->pages++;
	j = NULL;
out:
	cJSON_Delete(j);
	if (rc < 0)
		p->err = rc;
	return rc;
}

static int pager_open_as(struct graph *g, enum pager_kind kind, const char *url,
			 const char *prefer, const char *what,
			 unsigned ahead_to, struct graph_pager **out)
{
	struct graph_pager *p;
	int rc;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->g = g;
	p->kind = kind;
	p->ahead_to = ahead_to;
	snprintf(p->what, sizeof(p->what), "%s", what);
	if (prefer) {
		p->prefer = strdup(prefer);
		if (!p->prefer) {
			free(p);
			return -ENOMEM;
		}
	}
	rc = graph_pager_fetch(p, url);
	if (rc < 0) {
		graph_pager_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

static int pager_open(struct graph *g, enum pager_kind kind, const char *url,
		      const char *prefer, const char *what,
		      struct graph_pager **out)
{
	return pager_open_as(g, kind, url, prefer, what, 0, out);
}

void graph_pager_free(struct graph_pager *p)
{
	if (!p)
		return;
	ahead_drop(p);
	cJSON_Delete(p->page);
	free(p->next_link);
	free(p->delta_link);
	free(p->prefer);
	free(p);
}

int graph_pager_next_json(struct graph_pager *p, const cJSON **out)
{
	int rc;

	*out = NULL;
	if (p->err)
		return p->err;
	while (!p->cur) {
		char *next;

		if (!p->next_link)
			return 0;
		next = p->next_link;
		p->next_link = NULL;
		rc = graph_pager_fetch(p, next);
		free(next);
		if (rc < 0)
			return rc;
	}
	*out = p->cur;
	p->cur = p->cur->next;
	return 1;
}

static int next_typed(struct graph_pager *p, enum pager_kind kind,
		      int (*parse)(const cJSON *, void *), void *out)
{
	const cJSON *j;
	int rc;

	if (p->kind != kind)
		return -EINVAL;
	rc = graph_pager_next_json(p, &j);
	if (rc <= 0)
		return rc;
	rc = parse(j, out);
	if (rc < 0) {
		p->err = rc;
		log_err("%s: %s", p->what, graph_last_error()->message);
		return rc;
	}
	return 1;
}

int graph_pager_next_user(struct graph_pager *p, struct graph_user *out)
{
	return next_typed(p, PK_USER, PARSER(graph_parse_user), out);
}

int graph_pager_next_group(struct graph_pager *p, struct graph_group *out)
{
	return next_typed(p, PK_GROUP, PARSER(graph_parse_group), out);
}

int graph_pager_next_site(struct graph_pager *p, struct graph_site *out)
{
	return next_typed(p, PK_SITE, PARSER(graph_parse_site), out);
}

int graph_pager_next_drive(struct graph_pager *p, struct graph_drive *out)
{
	return next_typed(p, PK_DRIVE, PARSER(graph_parse_drive), out);
}

int graph_pager_next_item(struct graph_pager *p, struct graph_item *out)
{
	return next_typed(p, PK_ITEM, PARSER(graph_parse_item), out);
}

int graph_pager_next_mail_folder(struct graph_pager *p,
				 struct graph_mail_folder *out)
{
	int rc;

	do {
		rc = next_typed(p, PK_MAIL_FOLDER,
				PARSER(graph_parse_mail_folder), out);
	} while (rc == 1 && out->search_folder);
	return rc;
}

int graph_pager_next_message(struct graph_pager *p, struct graph_message *out)
{
	return next_typed(p, PK_MESSAGE, PARSER(graph_parse_message), out);
}

const char *graph_pager_delta_link(const struct graph_pager *p)
{
	return p->cur || p->next_link ? NULL : p->delta_link;
}

const char *graph_pager_next_link(const struct graph_pager *p)
{
	return p->next_link;
}

unsigned graph_pager_pages(const struct graph_pager *p)
{
	return p->pages;
}

/* Open a pager on @fmt (url_build) with optional $top. */
static int open_fmt(struct graph *g, enum pager_kind kind, const char *what,
		    struct graph_pager **out, const char *fmt, const char *a,
		    const char *b)
{
	struct buf u = BUF_INIT;
	int rc = graph_url_build(g, &u, fmt, a, b);

	if (rc == 0 && g->page_size)
		rc = buf_addf(&u, "%s$top=%u", strchr(u.data, '?') ? "&" : "?",
			      g->page_size);
	if (rc == 0)
		rc = pager_open(g, kind, u.data, NULL, what, out);
	buf_release(&u);
	return rc;
}

int graph_users_open(struct graph *g, const char *select,
		     struct graph_pager **out)
{
	struct buf u = BUF_INIT;
	int rc = graph_url_build(g, &u, "/users?$select=");

	if (rc == 0)
		rc = select ? http_escape(&u, select)
			    : buf_adds(&u, USER_SELECT);
	if (rc == 0)
		rc = buf_addf(&u, "&$top=%u",
			      g->page_size ? g->page_size : 999);
	if (rc == 0)
		rc = pager_open(g, PK_USER, u.data, NULL, "list users", out);
	buf_release(&u);
	return rc;
}

int graph_groups_open(struct graph *g, struct graph_pager **out)
{
	return open_fmt(g, PK_GROUP, "list groups", out,
			"/groups?$select=id,displayName,mail,groupTypes,"
			"mailEnabled,securityEnabled",
			NULL, NULL);
}

int graph_sites_all_open(struct graph *g, struct graph_pager **out)
{
	return open_fmt(g, PK_SITE, "list all sites", out, "/sites/getAllSites",
			NULL, NULL);
}

int graph_sites_search_open(struct graph *g, const char *query,
			    struct graph_pager **out)
{
	return open_fmt(g, PK_SITE, "search sites", out, "/sites?search=%e",
			query, NULL);
}

int graph_subsites_open(struct graph *g, const char *site_id,
			struct graph_pager **out)
{
	return open_fmt(g, PK_SITE, "list subsites", out, "/sites/%e/sites",
			site_id, NULL);
}

int graph_drives_open(struct graph *g, enum graph_owner owner,
		      const char *owner_id, struct graph_pager **out)
{
	return open_fmt(g, PK_DRIVE, "list drives", out, "/%s/%e/drives",
			owner_path(owner), owner_id);
}

int graph_children_open(struct graph *g, const char *drive_id,
			const char *item_id, struct graph_pager **out)
{
	if (!strcmp(item_id, "root"))
		return open_fmt(g, PK_ITEM, "list children", out,
				"/drives/%e/root/children", drive_id, NULL);
	return open_fmt(g, PK_ITEM, "list children", out,
			"/drives/%e/items/%e/children", drive_id, item_id);
}

int graph_children_open_ahead(struct graph *g, const char *drive_id,
			      const char *item_id, unsigned top,
			      struct graph_pager **out)
{
	struct buf u = BUF_INIT;
	int rc = graph_url_build(g, &u, "/drives/%e/items/%e/children?$top=%u",
				 drive_id, item_id, top);

	*out = NULL;
	if (rc == 0)
		rc = pager_open_as(g, PK_ITEM, u.data, NULL, "list children",
				   UINT_MAX, out);
	buf_release(&u);
	return rc;
}

static int check_link(struct graph *g, const char *link)
{
	char o[256];

	if (http_url_origin(link, o, sizeof(o)) < 0 || strcmp(o, g->origin)) {
		struct graph_error *e = graph_err_slot();

		memset(e, 0, sizeof(*e));
		e->rc = -EPROTO;
		snprintf(e->message, sizeof(e->message),
			 "a saved delta link points to another host than the "
			 "graph URL: the next snapshot starts that container "
			 "afresh");
		log_err("%s", e->message);
		return -EPROTO;
	}
	return 0;
}

int graph_drive_delta_open(struct graph *g, const char *drive_id,
			   const char *delta_link, struct graph_pager **out)
{
	struct buf u = BUF_INIT;
	int rc;

	*out = NULL;
	if (delta_link) {
		rc = check_link(g, delta_link);
		if (rc == 0)
			rc = pager_open(g, PK_ITEM, delta_link, NULL,
					"read drive changes", out);
		return rc;
	}
	rc = graph_url_build(g, &u, "/drives/%e/root/delta", drive_id);
	if (rc == 0)
		rc = pager_open(g, PK_ITEM, u.data, NULL, "read drive changes",
				out);
	buf_release(&u);
	return rc;
}

int graph_drive_delta_top_open(struct graph *g, const char *drive_id,
			       const char *token, unsigned ahead_to,
			       struct graph_pager **out)
{
	struct buf u = BUF_INIT;
	int rc;

	*out = NULL;
	if (token)
		rc = graph_url_build(g, &u,
				     "/drives/%e/root/delta?token=%e&$top=999",
				     drive_id, token);
	else
		rc = graph_url_build(g, &u, "/drives/%e/root/delta?$top=999",
				     drive_id);
	if (rc == 0)
		rc = pager_open_as(g, PK_ITEM, u.data, NULL,
				   "read drive changes", ahead_to, out);
	buf_release(&u);
	return rc;
}

int graph_mail_folders_open(struct graph *g, const char *user,
			    const char *parent, bool hidden,
			    struct graph_pager **out)
{
	const char *q = hidden ? "?includeHiddenFolders=true" : "";

	if (parent)
		return open_fmt(
			g, PK_MAIL_FOLDER, "list mail folders", out,
			hidden ? "/users/%e/mailFolders/%e/childFolders"
				 "?includeHiddenFolders=true"
			       : "/users/%e/mailFolders/%e/childFolders",
			user, parent);
	return open_fmt(g, PK_MAIL_FOLDER, "list mail folders", out,
			"/users/%e/mailFolders%s", user, q);
}

int graph_message_delta_open(struct graph *g, const char *user,
			     const char *folder_id, const char *select,
			     const char *delta_link, struct graph_pager **out)
{
	struct buf u = BUF_INIT, prefer = BUF_INIT;
	int rc;

	*out = NULL;
	rc = buf_addf(&prefer,
		      "Prefer: odata.maxpagesize=%u, IdType=\"ImmutableId\"",
		      g->mail_page_size);
	if (rc < 0)
		goto out;
	if (delta_link) {
		rc = check_link(g, delta_link);
		if (rc == 0)
			rc = pager_open(g, PK_MESSAGE, delta_link, prefer.data,
					"read mail changes", out);
		goto out;
	}
	rc = graph_url_build(
		g, &u, "/users/%e/mailFolders/%e/messages/delta?$select=", user,
		folder_id);
	if (rc == 0)
		rc = select ? http_escape(&u, select)
			    : buf_adds(&u, MESSAGE_SELECT);
	if (rc == 0)
		rc = pager_open(g, PK_MESSAGE, u.data, prefer.data,
				"read mail changes", out);
out:
	buf_release(&u);
	buf_release(&prefer);
	return rc;
}

/* ---- content ------------------------------------------------------------ */

int graph_item_download(struct graph *g, const char *drive_id,
			const char *item_id, const char *download_url,
			uint64_t off, uint64_t len,
			const struct http_sink *sink, uint64_t *got)
{
	struct buf u = BUF_INIT;
	struct greq r = { .what = "download the file",
			  .sink = sink,
			  .range_off = off,
			  .range_len = len };
	struct http_response resp;
	int rc;

	http_response_init(&resp);
	if (got)
		*got = 0;
	if (download_url) {
		if (strncasecmp(download_url, "https://", 8) &&
		    strncasecmp(download_url, "http://", 7)) {
			rc = graph_bad("driveItem", "downloadUrl",
				       "is not a URL");
			goto out;
		}
		r.url = download_url;
		r.no_auth = true; /* pre-authenticated */
		r.follow = true;
	} else {
		rc = graph_url_build(g, &u, "/drives/%e/items/%e/content",
				     drive_id, item_id);
		if (rc < 0)
			goto out;
		r.url = u.data;
		r.follow = true; /* the 302 goes without Authorization */
	}
	rc = send_req(g, &r, &resp);
	if (got)
		*got = resp.body_bytes;
	if (rc == 0 && resp.status == 204)
		rc = 0; /* an empty file */
out:
	http_response_release(&resp);
	buf_release(&u);
	return rc;
}

int graph_message_mime(struct graph *g, const char *user, const char *msg_id,
		       const struct http_sink *sink, uint64_t *got)
{
	struct buf u = BUF_INIT;
	struct greq r = { .what = "export the message",
			  .sink = sink,
			  .follow = true };
	struct http_response resp;
	int rc;

	http_response_init(&resp);
	if (got)
		*got = 0;
	rc = graph_url_build(g, &u, "/users/%e/messages/%e/$value", user,
			     msg_id);
	if (rc < 0)
		goto out;
	r.url = u.data;
	rc = send_req(g, &r, &resp);
	if (got)
		*got = resp.body_bytes;
out:
	http_response_release(&resp);
	buf_release(&u);
	return rc;
}

/* ---- writes ------------------------------------------------------------ */

static const char *conflict_name(enum graph_conflict c)
{
	switch (c) {
	case GRAPH_CONFLICT_REPLACE:
		return "replace";
	case GRAPH_CONFLICT_RENAME:
		return "rename";
	case GRAPH_CONFLICT_FAIL:
	default:
		return "fail";
	}
}

static const char *const json_headers[] = { "Content-Type: application/json",
					    "Accept: application/json", NULL };

/* POST/PUT/PATCH JSON @body to @url, parse the answer with @parse. */
static int write_json(struct graph *g, const char *method, const char *url,
		      const char *body, const char *what,
		      int (*parse)(const cJSON *, void *), void *out)
{
	struct greq r = { .method = method,
			  .url = url,
			  .body = body,
			  .headers = json_headers,
			  .what = what };
	cJSON *j = NULL;
	int rc;

	rc = call_json(g, &r, &j, NULL);
	if (rc == 0 && parse && out) {
		if (!j)
			rc = graph_bad(what, "(body)", "is empty");
		else
			rc = parse(j, out);
	}
	cJSON_Delete(j);
	return rc;
}

int graph_folder_create(struct graph *g, const char *drive_id,
			const char *parent_id, const char *name,
			enum graph_conflict conflict, struct graph_item *out)
{
	struct buf u = BUF_INIT;
	cJSON *b = cJSON_CreateObject();
	char *body = NULL;
	int rc = -ENOMEM;

	if (!b || !cJSON_AddStringToObject(b, "name", name) ||
	    !cJSON_AddObjectToObject(b, "folder") ||
	    !cJSON_AddStringToObject(b, "@microsoft.graph.conflictBehavior",
				     conflict_name(conflict)))
		goto out;
	body = cJSON_PrintUnformatted(b);
	if (!body)
		goto out;
	if (!strcmp(parent_id, "root"))
		rc = graph_url_build(g, &u, "/drives/%e/root/children",
				     drive_id);
	else
		rc = graph_url_build(g, &u, "/drives/%e/items/%e/children",
				     drive_id, parent_id);
	if (rc == 0)
		rc = write_json(g, "POST", u.data, body, "create the folder",
				PARSER(graph_parse_item), out);
out:
	cJSON_Delete(b);
	free(body);
	buf_release(&u);
	return rc;
}

int graph_upload_small(struct graph *g, const char *drive_id,
		       const char *parent_id, const char *name,
		       enum graph_conflict conflict,
		       const struct http_source *src, struct graph_item *out)
{
	static const char *const hdrs[] = {
		"Content-Type: application/octet-stream", NULL
	};
	struct buf u = BUF_INIT;
	struct greq r = { .method = "PUT",
			  .source = src,
			  .headers = hdrs,
			  .what = "upload the file" };
	cJSON *j = NULL;
	int rc;

	if (src->len > GRAPH_SMALL_UPLOAD_MAX)
		return -EFBIG;
	if (!strcmp(parent_id, "root"))
		rc = graph_url_build(g, &u, "/drives/%e/root:/%e:/content",
				     drive_id, name);
	else
		rc = graph_url_build(g, &u, "/drives/%e/items/%e:/%e:/content",
				     drive_id, parent_id, name);
	if (rc == 0)
		rc = buf_addf(&u, "?@microsoft.graph.conflictBehavior=%s",
			      conflict_name(conflict));
	if (rc < 0)
		goto out;
	r.url = u.data;
	rc = call_json(g, &r, &j, NULL);
	if (rc == 0 && out)
		rc = j ? graph_parse_item(j, out)
		       : graph_bad("upload", "(body)", "is empty");
out:
	cJSON_Delete(j);
	buf_release(&u);
	return rc;
}

void graph_upload_release(struct graph_upload *u)
{
	if (!u)
		return;
	free(u->url);
	memset(u, 0, sizeof(*u));
}

/* nextExpectedRanges ["26-", "100-200"] or Outlook's ["2097152"]. */
static int parse_next_ranges(const cJSON *j, struct graph_upload *u)
{
	const cJSON *r =
		cJSON_GetObjectItemCaseSensitive(j, "nextExpectedRanges");
	unsigned long long a;
	char *end;

	if (!r)
		r = cJSON_GetObjectItemCaseSensitive(j, "NextExpectedRanges");
	if (!r || cJSON_IsNull(r))
		return 0;
	if (!cJSON_IsArray(r))
		return graph_bad("uploadSession", "nextExpectedRanges",
				 "is not an array");
	r = r->child;
	if (!r)
		return 0;
	if (!cJSON_IsString(r))
		return graph_bad("uploadSession", "nextExpectedRanges",
				 "has a non-string");
	errno = 0;
	a = strtoull(r->valuestring, &end, 10);
	if (end == r->valuestring || errno || (*end && *end != '-') ||
	    a > u->size)
		return graph_bad("uploadSession", "nextExpectedRanges",
				 "is not a byte range");
	u->next = a;
	return 0;
}

int graph_upload_create(struct graph *g, const char *drive_id,
			const char *parent_id, const char *name,
			enum graph_conflict conflict, uint64_t size,
			int64_t mtime, int64_t ctime, struct graph_upload *u)
{
	struct buf url = BUF_INIT;
	struct greq r = { .method = "POST",
			  .headers = json_headers,
			  .what = "start the upload" };
	cJSON *b = cJSON_CreateObject(), *item, *fsi, *j = NULL;
	const cJSON *v;
	char t[40];
	char *body = NULL;
	int rc = -ENOMEM;

	graph_upload_release(u);
	item = b ? cJSON_AddObjectToObject(b, "item") : NULL;
	if (!item ||
	    !cJSON_AddStringToObject(item, "@microsoft.graph.conflictBehavior",
				     conflict_name(conflict)) ||
	    !cJSON_AddStringToObject(item, "name", name) ||
	    !cJSON_AddNumberToObject(item, "fileSize", (double)size))
		goto out;
	if (mtime || ctime) {
		fsi = cJSON_AddObjectToObject(item, "fileSystemInfo");
		if (!fsi)
			goto out;
		if (ctime) {
			util_time_format(ctime, t, sizeof(t));
			if (!cJSON_AddStringToObject(fsi, "createdDateTime", t))
				goto out;
		}
		if (mtime) {
			util_time_format(mtime, t, sizeof(t));
			if (!cJSON_AddStringToObject(fsi,
						     "lastModifiedDateTime", t))
				goto out;
		}
	}
	body = cJSON_PrintUnformatted(b);
	if (!body)
		goto out;
	r.body = body;
	if (!strcmp(parent_id, "root"))
		rc = graph_url_build(g, &url,
				     "/drives/%e/root:/%e:/createUploadSession",
				     drive_id, name);
	else
		rc = graph_url_build(
			g, &url, "/drives/%e/items/%e:/%e:/createUploadSession",
			drive_id, parent_id, name);
	if (rc < 0)
		goto out;
	r.url = url.data;
	rc = call_json(g, &r, &j, NULL);
	if (rc < 0)
		goto out;
	v = j ? cJSON_GetObjectItemCaseSensitive(j, "uploadUrl") : NULL;
	if (!cJSON_IsString(v) || (strncasecmp(v->valuestring, "https://", 8) &&
				   strncasecmp(v->valuestring, "http://", 7))) {
		rc = graph_bad("uploadSession", "uploadUrl", "is not a URL");
		goto out;
	}
	u->url = strdup(v->valuestring);
	if (!u->url) {
		rc = -ENOMEM;
		goto out;
	}
	u->size = size;
	v = cJSON_GetObjectItemCaseSensitive(j, "expirationDateTime");
	if (cJSON_IsString(v)) {
		int32_t ns;

		util_time_parse(v->valuestring, &u->expires, &ns);
	}
	rc = parse_next_ranges(j, u);
out:
	if (rc < 0)
		graph_upload_release(u);
	cJSON_Delete(b);
	cJSON_Delete(j);
	free(body);
	buf_release(&url);
	return rc;
}

struct shifted_source {
	const struct http_source *src;
	uint64_t base;
};

static ssize_t shifted_read(void *ctx, void *dst, size_t len, uint64_t off)
{
	struct shifted_source *s = ctx;

	return s->src->read(s->src->ctx, dst, len, s->base + off);
}

int graph_upload_put(struct graph *g, struct graph_upload *u,
		     const struct http_source *src, uint64_t len,
		     struct graph_item *out)
{
	struct shifted_source ss = { src, u->next };
	struct http_source part = { shifted_read, &ss, len };
	char range[96];
	const char *hdrs[3] = { range, "Content-Type: application/octet-stream",
				NULL };
	struct greq r = { .method = "PUT",
			  .url = u->url,
			  .source = &part,
			  .headers = hdrs,
			  .no_auth = true,
			  .what = "upload a part of the file" };
	cJSON *j = NULL;
	long status = 0;
	int rc;

	if (!u->url || u->done || !len || u->next + len > u->size)
		return -EINVAL;
	if (u->next + len < u->size && len % GRAPH_UPLOAD_UNIT)
		return -EINVAL;
	snprintf(range, sizeof(range),
		 "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
		 u->next, u->next + len - 1, u->size);
	rc = call_json(g, &r, &j, &status);
	if (rc == -ERANGE) {
		/* 416: the server has (part of) this range already, e.g. a
		 * retried PUT that had arrived: ask where to go on */
		rc = graph_upload_status(g, u);
		goto out;
	}
	if (rc < 0)
		goto out;
	if (status == 202 || (j && !cJSON_GetObjectItemCaseSensitive(j, "id") &&
			      u->next + len < u->size)) {
		u->next += len;
		rc = j ? parse_next_ranges(j, u) : 0;
		goto out;
	}
	/* 200/201: the file is complete */
	u->next = u->size;
	u->done = true;
	if (out && j)
		rc = graph_parse_item(j, out);
out:
	cJSON_Delete(j);
	return rc;
}

int graph_upload_status(struct graph *g, struct graph_upload *u)
{
	struct greq r = { .url = u->url,
			  .no_auth = true,
			  .what = "read the upload status" };
	cJSON *j = NULL;
	int rc;

	if (!u->url)
		return -EINVAL;
	rc = call_json(g, &r, &j, NULL);
	if (rc == 0 && j)
		rc = parse_next_ranges(j, u);
	cJSON_Delete(j);
	return rc;
}

int graph_upload_cancel(struct graph *g, struct graph_upload *u)
{
	struct greq r = { .method = "DELETE",
			  .url = u->url,
			  .no_auth = true,
			  .what = "cancel the upload" };
	struct http_response resp;
	int rc;

	if (!u->url)
		return -EINVAL;
	http_response_init(&resp);
	rc = send_req(g, &r, &resp);
	http_response_release(&resp);
	return rc;
}

int graph_mail_folder_create(struct graph *g, const char *user,
			     const char *parent, const char *name,
			     struct graph_mail_folder *out)
{
	struct buf u = BUF_INIT;
	cJSON *b = cJSON_CreateObject();
	char *body = NULL;
	int rc = -ENOMEM;

	if (!b || !cJSON_AddStringToObject(b, "displayName", name) ||
	    !cJSON_AddFalseToObject(b, "isHidden"))
		goto out;
	body = cJSON_PrintUnformatted(b);
	if (!body)
		goto out;
	if (parent)
		rc = graph_url_build(g, &u,
				     "/users/%e/mailFolders/%e/childFolders",
				     user, parent);
	else
		rc = graph_url_build(g, &u, "/users/%e/mailFolders", user);
	if (rc == 0)
		rc = write_json(g, "POST", u.data, body,
				"create the mail folder",
				PARSER(graph_parse_mail_folder), out);
out:
	cJSON_Delete(b);
	free(body);
	buf_release(&u);
	return rc;
}

int graph_message_create_json(struct graph *g, const char *user,
			      const char *folder_id, const char *json,
			      struct graph_message *out)
{
	struct buf u = BUF_INIT;
	int rc = graph_url_build(g, &u, "/users/%e/mailFolders/%e/messages",
				 user, folder_id);

	if (rc == 0)
		rc = write_json(g, "POST", u.data, json, "create the message",
				PARSER(graph_parse_message), out);
	buf_release(&u);
	return rc;
}

int graph_message_create_mime(struct graph *g, const char *user,
			      const void *mime, size_t len,
			      struct graph_message *out)
{
	static const char *const hdrs[] = { "Content-Type: text/plain", NULL };
	struct buf u = BUF_INIT, b64 = BUF_INIT;
	struct greq r = { .method = "POST",
			  .headers = hdrs,
			  .what = "import the message" };
	cJSON *j = NULL;
	int rc;

	rc = graph_url_build(g, &u, "/users/%e/messages", user);
	if (rc == 0)
		rc = util_b64_encode(&b64, mime, len, false);
	if (rc < 0)
		goto out;
	r.url = u.data;
	r.body = b64.data;
	r.body_len = b64.len;
	rc = call_json(g, &r, &j, NULL);
	if (rc == 0 && out)
		rc = j ? graph_parse_message(j, out)
		       : graph_bad("message", "(body)", "is empty");
out:
	cJSON_Delete(j);
	buf_release(&u);
	buf_release(&b64);
	return rc;
}

int graph_message_move(struct graph *g, const char *user, const char *msg_id,
		       const char *dest_folder_id, struct graph_message *out)
{
	struct buf u = BUF_INIT;
	cJSON *b = cJSON_CreateObject();
	char *body = NULL;
	int rc = -ENOMEM;

	if (!b || !cJSON_AddStringToObject(b, "destinationId", dest_folder_id))
		goto out;
	body = cJSON_PrintUnformatted(b);
	if (!body)
		goto out;
	rc = graph_url_build(g, &u, "/users/%e/messages/%e/move", user, msg_id);
	if (rc == 0)
		rc = write_json(g, "POST", u.data, body, "move the message",
				PARSER(graph_parse_message), out);
out:
	cJSON_Delete(b);
	free(body);
	buf_release(&u);
	return rc;
}

/* ---- generic and $batch ------------------------------------------------- */

int graph_call(struct graph *g, const char *method, const char *path,
	       const char *body, const char *const *headers, cJSON **out)
{
	struct buf u = BUF_INIT;
	const char *hdrs[16];
	struct greq r = { .method = method, .body = body, .what = path };
	cJSON *j = NULL;
	size_t n = 0;
	int rc;

	if (out)
		*out = NULL;
	if (!path)
		return -EINVAL;
	if (!strncasecmp(path, "https://", 8) ||
	    !strncasecmp(path, "http://", 7)) {
		rc = check_link(g, path);
		if (rc == 0)
			rc = buf_adds(&u, path);
	} else if (path[0] == '/') {
		rc = graph_url_build(g, &u, "%s", path);
	} else {
		rc = -EINVAL;
	}
	if (rc < 0)
		goto out;
	if (body)
		hdrs[n++] = "Content-Type: application/json";
	for (size_t i = 0; headers && headers[i] && n + 1 < ARRAY_SIZE(hdrs);
	     i++)
		hdrs[n++] = headers[i];
	hdrs[n] = NULL;
	r.url = u.data;
	r.headers = hdrs;
	rc = call_json(g, &r, &j, NULL);
	if (rc == 0 && out) {
		*out = j;
		j = NULL;
	}
out:
	cJSON_Delete(j);
	buf_release(&u);
	return rc;
}

void graph_batch_release(struct graph_batch_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++) {
		cJSON_Delete(items[i].response);
		items[i].response = NULL;
		free(items[i].location);
		items[i].location = NULL;
	}
}

/* One round: send the items with status 0 or 429; fill their results. */
static int batch_round(struct graph *g, const char *url,
		       struct graph_batch_item *items, size_t n,
		       int64_t *wait_ms)
{
	cJSON *req = cJSON_CreateObject(), *arr, *j = NULL;
	const cJSON *resps, *e;
	char *body = NULL;
	struct greq r = { .method = "POST",
			  .url = url,
			  .headers = json_headers,
			  .what = "run a $batch" };
	int rc = -ENOMEM;

	*wait_ms = 0;
	arr = req ? cJSON_AddArrayToObject(req, "requests") : NULL;
	if (!arr)
		goto out;
	for (size_t i = 0; i < n; i++) {
		cJSON *it;
		char id[16];

		if (items[i].status && items[i].status != 429)
			continue;
		snprintf(id, sizeof(id), "%zu", i + 1);
		it = cJSON_CreateObject();
		if (!it || !cJSON_AddItemToArray(arr, it))
			goto out;
		if (!cJSON_AddStringToObject(it, "id", id) ||
		    !cJSON_AddStringToObject(it, "method",
					     items[i].method ? items[i].method
							     : "GET") ||
		    !cJSON_AddStringToObject(it, "url", items[i].url))
			goto out;
		if (items[i].body) {
			cJSON *b = cJSON_Parse(items[i].body), *h;

			if (!b) {
				rc = -EINVAL;
				goto out;
			}
			cJSON_AddItemToObject(it, "body", b);
			h = cJSON_AddObjectToObject(it, "headers");
			if (!h || !cJSON_AddStringToObject(h, "Content-Type",
							   "application/json"))
				goto out;
		}
	}
	body = cJSON_PrintUnformatted(req);
	if (!body)
		goto out;
	r.body = body;
	rc = call_json(g, &r, &j, NULL);
	if (rc < 0)
		goto out;
	resps = j ? cJSON_GetObjectItemCaseSensitive(j, "responses") : NULL;
	if (!cJSON_IsArray(resps)) {
		rc = graph_bad("batch", "responses", "is not an array");
		goto out;
	}
	cJSON_ArrayForEach(e, resps)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
		const cJSON *hd =
			cJSON_GetObjectItemCaseSensitive(e, "headers");
		const cJSON *h, *hobj = cJSON_IsObject(hd) ? hd : NULL;
		struct graph_batch_item *it;
		char *end;
		unsigned long k;

		if (!cJSON_IsString(id) || !cJSON_IsNumber(st)) {
			rc = graph_bad("batch response", "id",
				       "or 'status' is "
				       "malformed");
			goto out;
		}
		k = strtoul(id->valuestring, &end, 10);
		if (*end || k < 1 || k > n) {
			rc = graph_bad("batch response", "id", "is unknown");
			goto out;
		}
		it = &items[k - 1];
		if (st->valuedouble < 100 || st->valuedouble > 599) {
			rc = graph_bad("batch response", "status",
				       "is not an HTTP status");
			goto out;
		}
		it->status = (long)st->valuedouble;
		cJSON_Delete(it->response);
		it->response = NULL;
		free(it->location);
		it->location = NULL;
		h = cJSON_GetObjectItemCaseSensitive(e, "body");
		if (h && !cJSON_IsNull(h)) {
			it->response = cJSON_Duplicate(h, 1);
			if (!it->response) {
				rc = -ENOMEM;
				goto out;
			}
		}
		cJSON_ArrayForEach(h, hobj)
		{
			int64_t ms;

			if (!cJSON_IsString(h) || !h->string)
				continue;
			if (!strcasecmp(h->string, "location")) {
				it->location = strdup(h->valuestring);
			} else if (!strcasecmp(h->string, "retry-after") &&
				   http_retry_after_parse(h->valuestring,
							  util_now(),
							  &ms) == 0 &&
				   ms > *wait_ms) {
				*wait_ms = ms;
			}
		}
		if (it->status == 429 && !*wait_ms)
			*wait_ms = 1000;
	}
	rc = 0;
out:
	cJSON_Delete(req);
	cJSON_Delete(j);
	free(body);
	return rc;
}

int graph_batch(struct graph *g, struct graph_batch_item *items, size_t n)
{
	struct buf u = BUF_INIT;
	int rc;

	if (!n || n > GRAPH_BATCH_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!items[i].url || items[i].url[0] != '/')
			return -EINVAL;
		items[i].status = 0;
		items[i].response = NULL;
		items[i].location = NULL;
	}
	rc = graph_url_build(g, &u, "/$batch");
	for (int round = 0; rc == 0 && round < 6; round++) {
		int64_t wait = 0;
		bool again = false;

		rc = batch_round(g, u.data, items, n, &wait);
		if (rc < 0)
			break;
		for (size_t i = 0; i < n; i++)
			if (items[i].status == 429)
				again = true;
		if (!again)
			break;
		log_info("$batch: %s throttled, retry in %" PRId64 " ms",
			 "some requests were", wait);
		usleep((useconds_t)(wait > 0 ? wait : 1000) * 1000);
	}
	buf_release(&u);
	return rc;
}
