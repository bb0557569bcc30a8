/*
 * json.c - validated parsing of Graph objects into the structs of graph.h.
 *
 * Every field is looked up with a helper that checks its type and bounds
 * and, on failure, records "TYPE 'FIELD' is not a string" (etc.) as the
 * thread's last error and returns -EBADMSG.  Absent and null fields are the
 * same to the optional ones.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_i.h"
#include "util/util.h"

/* ---- field helpers ---------------------------------------------------- */

static const cJSON *field(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return v && !cJSON_IsNull(v) ? v : NULL;
}

static int get_str(const cJSON *o, const char *type, const char *name,
		   bool required, char **out)
{
	const cJSON *v = field(o, name);
	size_t n;

	*out = NULL;
	if (!v)
		return required ? graph_bad(type, name, "is missing") : 0;
	if (!cJSON_IsString(v) || !v->valuestring)
		return graph_bad(type, name, "is not a string");
	n = strlen(v->valuestring);
	if (n > GRAPH_STR_MAX)
		return graph_bad(type, name, "is too long");
	if (required && !n)
		return graph_bad(type, name, "is empty");
	*out = strdup(v->valuestring);
	return *out ? 0 : -ENOMEM;
}

static int get_obj(const cJSON *o, const char *type, const char *name,
		   const cJSON **out)
{
	const cJSON *v = field(o, name);

	*out = NULL;
	if (!v)
		return 0;
	if (!cJSON_IsObject(v))
		return graph_bad(type, name, "is not an object");
	*out = v;
	return 0;
}

/* An integer in [min, max]; @dflt when absent. */
static int get_int(const cJSON *o, const char *type, const char *name,
		   int64_t min, int64_t max, int64_t dflt, int64_t *out)
{
	const cJSON *v = field(o, name);
	double d;

	*out = dflt;
	if (!v)
		return 0;
	if (!cJSON_IsNumber(v))
		return graph_bad(type, name, "is not a number");
	d = v->valuedouble;
	if (!isfinite(d) || d != floor(d))
		return graph_bad(type, name, "is not an integer");
	if (d < (double)min)
		return graph_bad(type, name, "is negative or too small");
	if (d > (double)max)
		return graph_bad(type, name, "is too large");
	*out = (int64_t)d;
	return 0;
}

/* A boolean; the docs show "true"/"false" strings too, accept those. */
static int get_bool(const cJSON *o, const char *type, const char *name,
		    bool dflt, bool *out)
{
	const cJSON *v = field(o, name);

	*out = dflt;
	if (!v)
		return 0;
	if (cJSON_IsBool(v)) {
		*out = cJSON_IsTrue(v);
		return 0;
	}
	if (cJSON_IsString(v) && v->valuestring) {
		if (!strcmp(v->valuestring, "true")) {
			*out = true;
			return 0;
		}
		if (!strcmp(v->valuestring, "false")) {
			*out = false;
			return 0;
		}
	}
	return graph_bad(type, name, "is not a boolean");
}

static int get_time(const cJSON *o, const char *type, const char *name,
		    int64_t *sec, int64_t *nsec)
{
	const cJSON *v = field(o, name);
	int32_t ns = 0;

	*sec = 0;
	if (nsec)
		*nsec = 0;
	if (!v)
		return 0;
	if (!cJSON_IsString(v) || !v->valuestring)
		return graph_bad(type, name, "is not a string");
	if (util_time_parse(v->valuestring, sec, &ns) < 0)
		return graph_bad(type, name, "is not an ISO 8601 time");
	if (nsec)
		*nsec = ns;
	return 0;
}

/* Present (any value but null)? For facets like "root": {}. */
static bool has(const cJSON *o, const char *name)
{
	return field(o, name) != NULL;
}

#define TRY(expr)                                                              \
	do {                                                                   \
		rc = (expr);                                                   \
		if (rc < 0)                                                    \
			goto out;                                              \
	} while (0)

/* ---- identities --------------------------------------------------------- */

static void identity_release(struct graph_identity *id)
{
	free(id->id);
	free(id->display_name);
	free(id->email);
	memset(id, 0, sizeof(*id));
}

/* {"user": {"id", "displayName", "email"}} (or group/application). */
static int parse_identity_set(const cJSON *o, const char *type,
			      const char *name, struct graph_identity *out)
{
	const cJSON *set, *who = NULL;
	int rc;

	TRY(get_obj(o, type, name, &set));
	if (!set)
		return 0;
	TRY(get_obj(set, name, "user", &who));
	if (!who)
		TRY(get_obj(set, name, "group", &who));
	if (!who)
		TRY(get_obj(set, name, "application", &who));
	if (!who)
		return 0;
	TRY(get_str(who, name, "id", false, &out->id));
	TRY(get_str(who, name, "displayName", false, &out->display_name));
	TRY(get_str(who, name, "email", false, &out->email));
out:
	return rc;
}

/* {"emailAddress": {"name", "address"}} */
static int parse_recipient(const cJSON *o, const char *type, const char *name,
			   struct graph_identity *out)
{
	const cJSON *r, *ea;
	int rc;

	TRY(get_obj(o, type, name, &r));
	if (!r)
		return 0;
	TRY(get_obj(r, name, "emailAddress", &ea));
	if (!ea)
		return 0;
	TRY(get_str(ea, "emailAddress", "name", false, &out->display_name));
	TRY(get_str(ea, "emailAddress", "address", false, &out->email));
out:
	return rc;
}

/* ---- objects --------------------------------------------------------------- */

void graph_org_release(struct graph_org *o)
{
	if (!o)
		return;
	free(o->id);
	free(o->display_name);
	free(o->default_domain);
	free(o->initial_domain);
	memset(o, 0, sizeof(*o));
}

int graph_parse_org(const cJSON *j, struct graph_org *out)
{
	const char *T = "organization";
	const cJSON *doms, *d;
	int rc;

	graph_org_release(out);
	if (!cJSON_IsObject(j))
		return graph_bad(T, "(object)", "is not an object");
	TRY(get_str(j, T, "id", true, &out->id));
	TRY(get_str(j, T, "displayName", false, &out->display_name));
	doms = field(j, "verifiedDomains");
	if (doms && !cJSON_IsArray(doms)) {
		rc = graph_bad(T, "verifiedDomains", "is not an array");
		goto out;
	}
	cJSON_ArrayForEach(d, doms)
	{
		bool def = false, init = false;
		char *name = NULL;

		if (!cJSON_IsObject(d)) {
			rc = graph_bad(T, "verifiedDomains",
				       "has a non-object");
			goto out;
		}
		TRY(get_str(d, "verifiedDomain", "name", true, &name));
		rc = get_bool(d, "verifiedDomain", "isDefault", false, &def);
		if (!rc)
			rc = get_bool(d, "verifiedDomain", "isInitial", false,
				      &init);
		if (rc < 0) {
			free(name);
			goto out;
		}
		if (def && !out->default_domain)
			out->default_domain = strdup(name);
		if (init && !out->initial_domain)
			out->initial_domain = strdup(name);
		free(name);
	}
	rc = 0;
out:
	if (rc < 0)
		graph_org_release(out);
	return rc;
}

void graph_user_release(struct graph_user *u)
{
	if (!u)
		return;
	free(u->id);
	free(u->display_name);
	free(u->upn);
	free(u->mail);
	free(u->user_type);
	memset(u, 0, sizeof(*u));
}

int graph_parse_user(const cJSON *j, struct graph_user *out)
{
	const char *T = "user";
	int rc;

	graph_user_release(out);
	if (!cJSON_IsObject(j))
		return graph_bad(T, "(object)", "is not an object");
	TRY(get_str(j, T, "id", true, &out->id));
	TRY(get_str(j, T, "displayName", false, &out->display_name));
	TRY(get_str(j, T, "userPrincipalName", false, &out->upn));
	TRY(get_str(j, T, "mail", false, &out->mail));
	TRY(get_bool(j, T, "accountEnabled", true, &out->account_enabled));
	TRY(get_str(j, T, "userType", false, &out->user_type));
out:
	if (rc < 0)
		graph_user_release(out);
	return rc;
}

void graph_group_release(struct graph_group *gr)
{
	if (!gr)
		return;
	free(gr->id);
	free(gr->display_name);
	free(gr->mail);
	memset(gr, 0, sizeof(*gr));
}

int graph_parse_group(const cJSON *j, struct graph_group *out)
{
	const char *T = "group";
	const cJSON *types, *t;
	int rc;

	graph_group_release(out);
	if (!cJSON_IsObject(j))
		return graph_bad(T, "(object)", "is not an object");
	TRY(get_str(j, T, "id", true, &out->id));
	TRY(get_str(j, T, "displayName", false, &out->display_name));
	TRY(get_str(j, T, "mail", false, &out->mail));
	TRY(get_bool(j, T, "mailEnabled", false, &out->mail_enabled));
	TRY(get_bool(j, T, "securityEnabled", false, &out->security_enabled));
	types = field(j, "groupTypes");
	if (types && !cJSON_IsArray(types)) {
		rc = graph_bad(T, "groupTypes", "is not an array");
		goto out;
	}
	cJSON_ArrayForEach(t, types)
	{
		if (!cJSON_IsString(t)) {
			rc = graph_bad(T, "groupTypes", "has a non-string");
			goto out;
		}
		if (!strcmp(t->valuestring, "Unified"))
			out->unified = true;
	}
	rc = 0;
out:
	if (rc < 0)
		graph_group_release(out);
	return rc;
}

void graph_site_release(struct graph_site *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->name);
	free(s->display_name);
	free(s->web_url);
	free(s->hostname);
	memset(s, 0, sizeof(*s));
}

int graph_parse_site(const cJSON *j, struct graph_site *out)
{
	const char *T = "site";
	const cJSON *sc;
	int rc;

	graph_site_release(out);
	if (!cJSON_IsObject(j))
		return graph_bad(T, "(object)", "is not an object");
	TRY(get_str(j, T, "id", true, &out->id));
	TRY(get_str(j, T, "name", false, &out->name));
	TRY(get_str(j, T, "displayName", false, &out->display_name));
	TRY(get_str(j, T, "webUrl", false, &out->web_url));
	TRY(get_time(j, T, "createdDateTime", &out->created, NULL));
	TRY(get_time(j, T, "lastModifiedDateTime", &out->modified, NULL));
	TRY(get_obj(j, T, "siteCollection", &sc));
	if (sc)
		TRY(get_str(sc, "siteCollection", "hostName", false,
			    &out->hostname));
	out->is_root = has(j, "root");
	TRY(get_bool(j, T, "isPersonalSite", false, &out->personal));
	if (!out->personal && out->hostname && strstr(out->hostname, "-my."))
		out->personal = true;
out:
	if (rc < 0)
		graph_site_release(out);
	return rc;
}

void graph_drive_release(struct graph_drive *d)
{
	if (!d)
		return;
	free(d->id);
	free(d->name);
	free(d->drive_type);
	free(d->web_url);
	identity_release(&d->owner);
	memset(d, 0, sizeof(*d));
}

int graph_parse_drive(const cJSON *j, struct graph_drive *out)
{
	const char *T = "drive";
	const cJSON *q;
	int rc;

	graph_drive_release(out);
	out->quota_total = out->quota_used = -1;
	if (!cJSON_IsObject(j))
		return graph_bad(T, "(object)", "is not an object");
	TRY(get_str(j, T, "id", true, &out->id));
	TRY(get_str(j, T, "name", false, &out->name));
	TRY(get_str(j, T, "driveType", false, &out->drive_type));
	TRY(get_str(j, T, "webUrl", false, &out->web_url));
	TRY(get_time(j, T, "createdDateTime", &out->created, NULL));
	TRY(get_time(j, T, "lastModifiedDateTime", &out->modified, NULL));
	TRY(parse_identity_set(j, T, "owner", &out->owner));
	TRY(get_obj(j, T, "quota", &q));
	if (q) {
		TRY(get_int(q, "quota", "total", 0, INT64_MAX / 2, -1,
			    &out->quota_total));
		TRY(get_int(q, "quota", "used", 0, INT64_MAX / 2, -1,
			    &out->quota_used));
	}
out:
	if (rc < 0)
		graph_drive_release(out);
	return rc;
}

void graph_item_release(struct graph_item *it)
{
	if (!it)
		return;
	free(it->id);
	free(it->name);
	free(it->etag);
	free(it->ctag);
	free(it->web_url);
	free(it->mime_type);
	free(it->quickxor);
	free(it->sha1);
	free(it->sha256);
	free(it->download_url);
	free(it->parent_id);
	free(it->parent_path);
	free(it->drive_id);
	identity_release(&it->created_by);
	identity_release(&it->modified_by);
	memset(it, 0, sizeof(*it));
}

int graph_parse_item(const cJSON *j, struct graph_item *out)
{
	const char *T = "driveItem";
	const cJSON *file, *folder, *hashes, *parent, *fsi;
	int rc;

	graph_item_release(out);
	out->size = out->child_count = -1;
	if (!cJSON_IsObject(j))
		return graph_bad(T, "(object)", "is not an object");
	TRY(get_str(j, T, "id", true, &out->id));
	out->deleted = has(j, "deleted");
	TRY(get_str(j, T, "name", !out->deleted, &out->name));
	out->is_root = has(j, "root");
	out->remote = has(j, "remoteItem");
	TRY(get_int(j, T, "size", 0, GRAPH_SIZE_MAX, -1, &out->size));
	TRY(get_str(j, T, "eTag", false, &out->etag));
	TRY(get_str(j, T, "cTag", false, &out->ctag));
	TRY(get_time(j, T, "createdDateTime", &out->created, &out->created_ns));
	TRY(get_time(j, T, "lastModifiedDateTime", &out->modified,
		     &out->modified_ns));
	TRY(get_str(j, T, "webUrl", false, &out->web_url));
	TRY(get_str(j, T, "@microsoft.graph.downloadUrl", false,
		    &out->download_url));
	TRY(get_obj(j, T, "file", &file));
	TRY(get_obj(j, T, "folder", &folder));
	if (file && folder) {
		rc = graph_bad(T, "file", "and 'folder' are both present");
		goto out;
	}
	if (has(j, "package"))
		out->kind = GRAPH_ITEM_PACKAGE;
	else if (folder)
		out->kind = GRAPH_ITEM_FOLDER;
	else if (file)
		out->kind = GRAPH_ITEM_FILE;
	if (folder)
		TRY(get_int(folder, "folder", "childCount", 0, INT32_MAX, -1,
			    &out->child_count));
	if (file) {
		TRY(get_str(file, "file", "mimeType", false, &out->mime_type));
		TRY(get_obj(file, "file", "hashes", &hashes));
		if (hashes) {
			TRY(get_str(hashes, "hashes", "quickXorHash", false,
				    &out->quickxor));
			TRY(get_str(hashes, "hashes", "sha1Hash", false,
				    &out->sha1));
			TRY(get_str(hashes, "hashes", "sha256Hash", false,
				    &out->sha256));
		}
	}
	TRY(get_obj(j, T, "fileSystemInfo", &fsi));
	if (fsi) {
		TRY(get_time(fsi, "fileSystemInfo", "createdDateTime",
			     &out->fs_created, NULL));
		TRY(get_time(fsi, "fileSystemInfo", "lastModifiedDateTime",
			     &out->fs_modified, NULL));
	}
	TRY(get_obj(j, T, "parentReference", &parent));
	if (parent) {
		TRY(get_str(parent, "parentReference", "id", false,
			    &out->parent_id));
		TRY(get_str(parent, "parentReference", "path", false,
			    &out->parent_path));
		TRY(get_str(parent, "parentReference", "driveId", false,
			    &out->drive_id));
	}
	TRY(parse_identity_set(j, T, "createdBy", &out->created_by));
	TRY(parse_identity_set(j, T, "lastModifiedBy", &out->modified_by));
out:
	if (rc < 0)
		graph_item_release(out);
	return rc;
}

void graph_mail_folder_release(struct graph_mail_folder *f)
{
	if (!f)
		return;
	free(f->id);
	free(f->display_name);
	free(f->parent_id);
	memset(f, 0, sizeof(*f));
}

int graph_parse_mail_folder(const cJSON *j, struct graph_mail_folder *out)
{
	const char *T = "mailFolder";
	const cJSON *t;
	int rc;

	graph_mail_folder_release(out);
	if (!cJSON_IsObject(j))
		return graph_bad(T, "(object)", "is not an object");
	TRY(get_str(j, T, "id", true, &out->id));
	TRY(get_str(j, T, "displayName", true, &out->display_name));
	TRY(get_str(j, T, "parentFolderId", false, &out->parent_id));
	TRY(get_int(j, T, "childFolderCount", 0, INT32_MAX, 0,
		    &out->child_count));
	TRY(get_int(j, T, "totalItemCount", 0, INT32_MAX, -1,
		    &out->total_count));
	TRY(get_int(j, T, "unreadItemCount", 0, INT32_MAX, -1,
		    &out->unread_count));
	TRY(get_bool(j, T, "isHidden", false, &out->hidden));
	t = field(j, "@odata.type");
	if (t && cJSON_IsString(t) &&
	    !strcmp(t->valuestring, "#microsoft.graph.mailSearchFolder"))
		out->search_folder = true;
	if (has(j, "filterQuery") || has(j, "sourceFolderIds"))
		out->search_folder = true;
out:
	if (rc < 0)
		graph_mail_folder_release(out);
	return rc;
}

void graph_message_release(struct graph_message *m)
{
	if (!m)
		return;
	free(m->id);
	free(m->removed_reason);
	free(m->odata_type);
	free(m->etag);
	free(m->change_key);
	free(m->subject);
	free(m->internet_message_id);
	free(m->parent_folder_id);
	free(m->conversation_id);
	identity_release(&m->from);
	free(m->importance);
	free(m->flag_status);
	for (size_t i = 0; m->categories && m->categories[i]; i++)
		free(m->categories[i]);
	free(m->categories);
	memset(m, 0, sizeof(*m));
}

int graph_parse_message(const cJSON *j, struct graph_message *out)
{
	const char *T = "message";
	const cJSON *removed, *flag, *cats, *c;
	size_t n = 0;
	int rc;

	graph_message_release(out);
	if (!cJSON_IsObject(j))
		return graph_bad(T, "(object)", "is not an object");
	TRY(get_str(j, T, "id", true, &out->id));
	TRY(get_str(j, T, "@odata.type", false, &out->odata_type));
	TRY(get_obj(j, T, "@removed", &removed));
	if (removed) {
		out->removed = true;
		TRY(get_str(removed, "@removed", "reason", false,
			    &out->removed_reason));
		goto out;
	}
	TRY(get_str(j, T, "@odata.etag", false, &out->etag));
	TRY(get_str(j, T, "changeKey", false, &out->change_key));
	TRY(get_str(j, T, "subject", false, &out->subject));
	TRY(get_str(j, T, "internetMessageId", false,
		    &out->internet_message_id));
	TRY(get_str(j, T, "parentFolderId", false, &out->parent_folder_id));
	TRY(get_str(j, T, "conversationId", false, &out->conversation_id));
	TRY(parse_recipient(j, T, "from", &out->from));
	if (!out->from.email && !out->from.display_name)
		TRY(parse_recipient(j, T, "sender", &out->from));
	TRY(get_time(j, T, "receivedDateTime", &out->received, NULL));
	TRY(get_time(j, T, "sentDateTime", &out->sent, NULL));
	TRY(get_time(j, T, "createdDateTime", &out->created, NULL));
	TRY(get_time(j, T, "lastModifiedDateTime", &out->modified, NULL));
	TRY(get_bool(j, T, "isRead", false, &out->is_read));
	TRY(get_bool(j, T, "isDraft", false, &out->is_draft));
	TRY(get_bool(j, T, "hasAttachments", false, &out->has_attachments));
	TRY(get_str(j, T, "importance", false, &out->importance));
	TRY(get_obj(j, T, "flag", &flag));
	if (flag)
		TRY(get_str(flag, "flag", "flagStatus", false,
			    &out->flag_status));
	cats = field(j, "categories");
	if (cats && !cJSON_IsArray(cats)) {
		rc = graph_bad(T, "categories", "is not an array");
		goto out;
	}
	if (cats) {
		int cnt = cJSON_GetArraySize(cats);

		if (cnt > 1000) {
			rc = graph_bad(T, "categories", "has too many entries");
			goto out;
		}
		out->categories = calloc((size_t)cnt + 1, sizeof(char *));
		if (!out->categories) {
			rc = -ENOMEM;
			goto out;
		}
		cJSON_ArrayForEach(c, cats)
		{
			if (!cJSON_IsString(c) ||
			    strlen(c->valuestring) > GRAPH_STR_MAX) {
				rc = graph_bad(T, "categories",
					       "has a bad entry");
				goto out;
			}
			out->categories[n] = strdup(c->valuestring);
			if (!out->categories[n++]) {
				rc = -ENOMEM;
				goto out;
			}
		}
	}
	rc = 0;
out:
	if (rc < 0)
		graph_message_release(out);
	return rc;
}

bool graph_json_has_nul(const char *s, size_t len)
{
	const char *p = s, *end = s + len;

	/* from backslash to backslash: memchr() goes through a page of
	 * items many times faster than a loop over every byte */
	while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
		size_t k = 0;

		/* count the run of backslashes: odd = an escape */
		while (p + k < end && p[k] == '\\')
			k++;
		if (k % 2 == 1 && (size_t)(end - p) >= k + 5 &&
		    !strncmp(p + k, "u0000", 5))
			return true;
		p += k;
	}
	return false;
}

/* @p just after the opening '"' of a string: its closing '"', or NULL. */
static const char *string_end(const char *p, const char *end)
{
	for (;;) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		const char *b = q;

		if (!q)
			return NULL;
		while (b > p && b[-1] == '\\')
			b--;
		if ((q - b) % 2 == 0)
			return q;
		p = q + 1;
	}
}

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

int graph_json_top_string(const char *s, size_t len, const char *key,
			  const char **val, size_t *vlen)
{
	const char *p = s, *end = s + len, *q, *v, *ve;
	size_t klen = strlen(key);
	int depth = 0;

	while (p < end) {
		switch (*p++) {
		case '"':
			q = string_end(p, end);
			if (!q)
				return 0;
			v = skip_space(q + 1, end);
			if (depth != 1 || (size_t)(q - p) != klen ||
			    memcmp(p, key, klen) || v == end || *v != ':') {
				p = q + 1;
				break;
			}
			v = skip_space(v + 1, end);
			if (v == end || *v != '"')
				return 0;
			ve = string_end(v + 1, end);
			if (!ve || memchr(v + 1, '\\', (size_t)(ve - v - 1)))
				return 0;
			*val = v + 1;
			*vlen = (size_t)(ve - v - 1);
			return 1;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (--depth <= 0)
				return 0;
			break;
		default:
			break;
		}
	}
	return 0;
}
