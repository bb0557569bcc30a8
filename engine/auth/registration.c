/*
 * Graph calls of automatic registration (GRAPH-API.md §2): applications,
 * service principals, admin consent; plus the JSON call helper the
 * connection test uses.
 */
#include "auth/auth_i.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http/http.h"
#include "util/log.h"
#include "util/util.h"

#define GRAPH_CAP (16u << 20)

/* Application permissions (GRAPH-API.md §2 table). */
static const struct auth_role roles[] = {
	{ "Sites.Read.All", "332a536c-c7ef-4017-ab91-336970924f0d" },
	{ "Sites.ReadWrite.All", "9492366f-7969-46a4-8d15-ed1a20078fff" },
	{ "Sites.FullControl.All", "a82116e5-55eb-4c41-a434-62fe8a61c773" },
	{ "Files.Read.All", "01d4889c-1287-42c6-ac1f-5d1e02578ef6" },
	{ "Files.ReadWrite.All", "75359482-378d-4052-8f01-80520e7db3cd" },
	{ "User.Read.All", "df021288-bdef-4463-88db-98f22de89214" },
	{ "Group.Read.All", "5b567255-7703-4780-807c-7be8301ae99b" },
	{ "Directory.Read.All", "7ab1d382-f21e-4acd-a863-ba3e13f7da61" },
	{ "Mail.Read", "810c84a8-4a9e-49e6-bf7d-12d183f40d01" },
	{ "Mail.ReadWrite", "e2a3a72e-5f79-4c64-b1b1-878b674786c9" },
	{ "MailboxSettings.Read", "40f97065-369a-49f4-947c-6a255697ae91" },
	{ NULL, NULL },
};

/* Needed per service: read + write (restore writes back). */
static const struct auth_role need_files[] = {
	{ "Sites.ReadWrite.All", "9492366f-7969-46a4-8d15-ed1a20078fff" },
	{ NULL, NULL },
};
static const struct auth_role need_onedrive[] = {
	{ "Files.ReadWrite.All", "75359482-378d-4052-8f01-80520e7db3cd" },
	{ "User.Read.All", "df021288-bdef-4463-88db-98f22de89214" },
	{ NULL, NULL },
};
static const struct auth_role need_mail[] = {
	{ "Mail.ReadWrite", "e2a3a72e-5f79-4c64-b1b1-878b674786c9" },
	{ "User.Read.All", "df021288-bdef-4463-88db-98f22de89214" },
	{ NULL, NULL },
};

const struct auth_role *auth_role_by_name(const char *name)
{
	const struct auth_role *r;

	for (r = roles; r->name; r++)
		if (!strcmp(r->name, name))
			return r;
	return NULL;
}

const struct auth_role *auth_roles_needed(unsigned svc, size_t *n)
{
	/* the union, in a fixed order, without duplicates */
	static const struct auth_role *const lists[] = { need_files,
							 need_onedrive,
							 need_mail };
	static __thread struct auth_role out[8];
	size_t i, k = 0, m;
	const struct auth_role *r;

	for (i = 0; i < ARRAY_SIZE(lists); i++) {
		if (!(svc & (1u << i)))
			continue;
		for (r = lists[i]; r->name; r++) {
			for (m = 0; m < k; m++)
				if (!strcmp(out[m].name, r->name))
					break;
			if (m == k && k + 1 < ARRAY_SIZE(out))
				out[k++] = *r;
		}
	}
	out[k].name = out[k].id = NULL;
	*n = k;
	return out;
}

/* Fill @st from a Graph error answer (GRAPH-API.md §3.1). */
static int graph_fail(const char *method, const char *path,
		      const struct http_response *resp, struct auth_status *st)
{
	cJSON *j = cJSON_ParseWithLength(resp->body.data, resp->body.len);
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
	int rc = http_status_errno(resp->status);

	memset(st, 0, sizeof(*st));
	st->rc = rc;
	st->http_status = resp->status;
	snprintf(st->error, sizeof(st->error), "%s",
		 cJSON_IsString(code) ? code->valuestring : "");
	snprintf(st->detail, sizeof(st->detail), "%s",
		 cJSON_IsString(msg) ? msg->valuestring : "");
	snprintf(st->what, sizeof(st->what), "%s %s: HTTP %ld %s", method, path,
		 resp->status, st->error);
	log_debug("graph: %s %s: HTTP %ld %s (request-id %s)", method, path,
		  resp->status, st->error, resp->request_id);
	cJSON_Delete(j);
	return rc;
}

int auth_graph_call(struct http *h, const char *graph_url, const char *token,
		    const char *method, const char *path, const cJSON *body,
		    cJSON **out, struct auth_status *st)
{
	static const char *const hdr_json[] = {
		"Accept: application/json", "Content-Type: application/json",
		NULL
	};
	struct http_request req = {
		.method = method,
		.bearer = token,
		.headers = hdr_json,
		.body_cap = GRAPH_CAP,
	};
	struct http_response resp;
	struct buf url = BUF_INIT;
	char *text = NULL;
	int rc;

	if (out)
		*out = NULL;
	memset(st, 0, sizeof(*st));
	http_response_init(&resp);
	rc = buf_addf(&url, "%s/v1.0%s", graph_url, path);
	if (rc < 0)
		goto out;
	req.url = url.data;
	if (body) {
		text = cJSON_PrintUnformatted(body);
		if (!text) {
			rc = -ENOMEM;
			goto out;
		}
		req.body = text;
		req.body_len = strlen(text);
	}
	rc = http_do(h, &req, &resp);
	if (rc < 0) {
		auth_error_transport(rc, url.data, NULL, st);
		goto out;
	}
	if (resp.status < 200 || resp.status > 299) {
		rc = graph_fail(method, path, &resp, st);
		goto out;
	}
	if (!out || resp.status == 204 || !resp.body.len)
		goto out;
	*out = cJSON_ParseWithLength(resp.body.data, resp.body.len);
	if (!*out) {
		rc = auth_status_set(st, -EBADMSG, NULL,
				     "%s %s: the answer is not JSON", method,
				     path);
	}
out:
	cJSON_free(text);
	buf_release(&url);
	http_response_release(&resp);
	return rc;
}

/* GET @what?$filter=@field eq '@value' and return the first of value[]. */
static int find_one(struct http *h, const char *graph, const char *token,
		    const char *what, const char *field, const char *value,
		    cJSON **found, struct auth_status *st)
{
	struct buf path = BUF_INIT, filt = BUF_INIT, quoted = BUF_INIT;
	cJSON *j = NULL, *v;
	const char *p;
	int rc = 0;

	*found = NULL;
	/* OData string literal: ' doubled */
	for (p = value; *p && !rc; p++)
		rc = *p == '\'' ? buf_adds(&quoted, "''")
				: buf_addch(&quoted, *p);
	if (!rc)
		rc = buf_addf(&filt, "%s eq '%s'", field, quoted.data);
	if (!rc)
		rc = buf_addf(&path, "/%s?$filter=", what);
	if (!rc)
		rc = http_escape(&path, filt.data);
	if (rc < 0)
		goto out;
	rc = auth_graph_call(h, graph, token, "GET", path.data, NULL, &j, st);
	if (rc < 0)
		goto out;
	v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "value"), 0);
	if (v) {
		*found = cJSON_DetachItemViaPointer(
			cJSON_GetObjectItemCaseSensitive(j, "value"), v);
	}
out:
	cJSON_Delete(j);
	buf_release(&quoted);
	buf_release(&filt);
	buf_release(&path);
	return rc;
}

static const char *jstr(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void step(auth_reg_step_fn fn, void *ctx, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void step(auth_reg_step_fn fn, void *ctx, bool ok, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fn(ctx, line, ok);
}

/* The role id of @name: from the Graph service principal, else the table. */
static const char *role_id(const cJSON *graph_sp, const struct auth_role *r)
{
	const cJSON *ar;

	cJSON_ArrayForEach(
		ar, cJSON_GetObjectItemCaseSensitive(graph_sp, "appRoles"))
	{
		const char *v = jstr(ar, "value"), *id = jstr(ar, "id");

		if (v && id && !strcmp(v, r->name))
			return id;
	}
	return r->id;
}

/* requiredResourceAccess for Graph with the needed roles (+ @keep). */
static cJSON *required_access(const cJSON *graph_sp,
			      const struct auth_role *need, const cJSON *keep)
{
	cJSON *rra = cJSON_CreateArray(), *res = cJSON_CreateObject();
	cJSON *acc = cJSON_CreateArray(), *e;
	const cJSON *k;

	if (!rra || !res || !acc)
		goto fail;
	/* other resources the app already asks for stay */
	cJSON_ArrayForEach(k, keep)
	{
		const char *rid = jstr(k, "resourceAppId");

		if (rid && strcmp(rid, AUTH_GRAPH_APP_ID))
			cJSON_AddItemToArray(rra, cJSON_Duplicate(k, 1));
		if (rid && !strcmp(rid, AUTH_GRAPH_APP_ID)) {
			const cJSON *a;

			cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(
						      k, "resourceAccess"))
				cJSON_AddItemToArray(acc,
						     cJSON_Duplicate(a, 1));
		}
	}
	for (; need->name; need++) {
		const char *id = role_id(graph_sp, need);
		bool have = false;

		cJSON_ArrayForEach(k, acc)
		{
			const char *i = jstr(k, "id");

			if (i && !strcasecmp(i, id))
				have = true;
		}
		if (have)
			continue;
		e = cJSON_CreateObject();
		if (!e)
			goto fail;
		cJSON_AddItemToArray(acc, e);
		cJSON_AddStringToObject(e, "id", id);
		cJSON_AddStringToObject(e, "type", "Role");
	}
	cJSON_AddStringToObject(res, "resourceAppId", AUTH_GRAPH_APP_ID);
	cJSON_AddItemToObject(res, "resourceAccess", acc);
	cJSON_AddItemToArray(rra, res);
	return rra;
fail:
	cJSON_Delete(rra);
	cJSON_Delete(res);
	cJSON_Delete(acc);
	return NULL;
}

/* True when every needed role is in the app's requiredResourceAccess. */
static bool has_access(const cJSON *app, const cJSON *graph_sp,
		       const struct auth_role *need)
{
	const cJSON *k, *a;

	for (; need->name; need++) {
		const char *id = role_id(graph_sp, need);
		bool have = false;

		cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(
					      app, "requiredResourceAccess"))
		{
			const char *rid = jstr(k, "resourceAppId");

			if (!rid || strcmp(rid, AUTH_GRAPH_APP_ID))
				continue;
			cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(
						      k, "resourceAccess"))
			{
				const char *i = jstr(a, "id");

				if (i && !strcasecmp(i, id))
					have = true;
			}
		}
		if (!have)
			return false;
	}
	return true;
}

/* A keyCredential object for @cert. */
static cJSON *key_credential(const struct auth_cert *cert)
{
	struct auth_cert_info in;
	struct buf der = BUF_INIT, b64 = BUF_INIT;
	char t1[32], t2[32];
	cJSON *k = NULL;

	auth_cert_info(cert, &in);
	if (auth_cert_der(cert, &der) < 0 ||
	    util_b64_encode(&b64, der.data, der.len, false) < 0)
		goto out;
	util_time_format(in.not_before, t1, sizeof(t1));
	util_time_format(in.not_after, t2, sizeof(t2));
	k = cJSON_CreateObject();
	if (!k)
		goto out;
	cJSON_AddStringToObject(k, "type", "AsymmetricX509Cert");
	cJSON_AddStringToObject(k, "usage", "Verify");
	cJSON_AddStringToObject(k, "key", b64.data);
	cJSON_AddStringToObject(k, "displayName", in.subject);
	cJSON_AddStringToObject(k, "customKeyIdentifier", in.thumbprint);
	cJSON_AddStringToObject(k, "startDateTime", t1);
	cJSON_AddStringToObject(k, "endDateTime", t2);
out:
	buf_release(&der);
	buf_release(&b64);
	return k;
}

/* True when @app lists @cert among its keyCredentials. */
static bool has_cert(const cJSON *app, const struct auth_cert *cert)
{
	struct auth_cert_info in;
	unsigned char sha1[20];
	const cJSON *k;

	auth_cert_info(cert, &in);
	if (util_unhex(sha1, sizeof(sha1), in.thumbprint) < 0)
		return false;
	cJSON_ArrayForEach(
		k, cJSON_GetObjectItemCaseSensitive(app, "keyCredentials"))
	{
		const char *cki = jstr(k, "customKeyIdentifier");
		struct buf raw = BUF_INIT;
		bool same;

		if (!cki)
			continue;
		/* responses give base64 of the thumbprint; requests hex */
		if (!strcasecmp(cki, in.thumbprint))
			return true;
		same = util_b64_decode(&raw, cki, strlen(cki)) == 0 &&
		       raw.len == 20 && !memcmp(raw.data, sha1, 20);
		buf_release(&raw);
		if (same)
			return true;
	}
	return false;
}

/* keyCredentials = the existing ones (as returned) + @cert. */
static cJSON *key_credentials_plus(const cJSON *app,
				   const struct auth_cert *cert)
{
	cJSON *arr = cJSON_CreateArray(), *k;
	const cJSON *e;

	if (!arr)
		return NULL;
	cJSON_ArrayForEach(
		e, cJSON_GetObjectItemCaseSensitive(app, "keyCredentials"))
	{
		cJSON *d = cJSON_Duplicate(e, 1);

		if (!d)
			continue;
		if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "key")))
			cJSON_DeleteItemFromObjectCaseSensitive(d, "key");
		cJSON_AddItemToArray(arr, d);
	}
	k = key_credential(cert);
	if (!k) {
		cJSON_Delete(arr);
		return NULL;
	}
	cJSON_AddItemToArray(arr, k);
	return arr;
}

static int app_create(struct http *h, const char *graph, const char *token,
		      const struct auth_reg *reg, const cJSON *graph_sp,
		      const struct auth_role *need, cJSON **app,
		      struct auth_status *st)
{
	cJSON *body = cJSON_CreateObject(), *kc;
	int rc = -ENOMEM;

	if (!body)
		return rc;
	cJSON_AddStringToObject(body, "displayName", reg->display_name);
	cJSON_AddStringToObject(body, "signInAudience", "AzureADMyOrg");
	cJSON_AddItemToObject(body, "requiredResourceAccess",
			      required_access(graph_sp, need, NULL));
	if (reg->cert) {
		kc = cJSON_AddArrayToObject(body, "keyCredentials");
		if (!kc)
			goto out;
		cJSON_AddItemToArray(kc, key_credential(reg->cert));
	}
	rc = auth_graph_call(h, graph, token, "POST", "/applications", body,
			     app, st);
out:
	cJSON_Delete(body);
	return rc;
}

/* Role ids already assigned to our SP on the Graph SP. */
static int assigned_roles(struct http *h, const char *graph, const char *token,
			  const char *sp_id, const char *graph_sp_id,
			  cJSON **ids, struct auth_status *st)
{
	struct buf path = BUF_INIT;
	cJSON *j = NULL;
	const cJSON *a;
	int rc;

	*ids = cJSON_CreateArray();
	if (!*ids)
		return -ENOMEM;
	rc = buf_addf(&path, "/servicePrincipals/%s/appRoleAssignments", sp_id);
	if (!rc)
		rc = auth_graph_call(h, graph, token, "GET", path.data, NULL,
				     &j, st);
	if (rc < 0)
		goto out;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(j, "value"))
	{
		const char *res = jstr(a, "resourceId"),
			   *id = jstr(a, "appRoleId");

		if (res && id && !strcasecmp(res, graph_sp_id))
			cJSON_AddItemToArray(*ids, cJSON_CreateString(id));
	}
out:
	cJSON_Delete(j);
	buf_release(&path);
	return rc;
}

static bool in_list(const cJSON *ids, const char *id)
{
	const cJSON *e;

	cJSON_ArrayForEach(
		e, ids) if (cJSON_IsString(e) &&
			    !strcasecmp(e->valuestring, id)) return true;
	return false;
}

static void copy_id(char dst[37], const char *src)
{
	snprintf(dst, 37, "%s", src ? src : "");
}

int auth_register(struct http *h, const char *graph, const char *token,
		  struct auth_reg *reg, bool grant_only, auth_reg_step_fn fn,
		  void *ctx, struct auth_status *st)
{
	const struct auth_role *need, *r;
	cJSON *graph_sp = NULL, *app = NULL, *sp = NULL, *ids = NULL;
	cJSON *body = NULL;
	struct buf path = BUF_INIT;
	const char *gsp_id;
	size_t n;
	int rc;

	memset(st, 0, sizeof(*st));
	reg->created = reg->cert_added = false;
	reg->roles_granted = reg->roles_present = 0;
	need = auth_roles_needed(reg->services, &n);

	/* 1. the Microsoft Graph service principal of this tenant */
	rc = find_one(h, graph, token, "servicePrincipals", "appId",
		      AUTH_GRAPH_APP_ID, &graph_sp, st);
	if (!rc && !graph_sp)
		rc = auth_status_set(
			st, -ENOENT, NULL,
			"the Microsoft Graph service principal was not found in the tenant");
	gsp_id = jstr(graph_sp, "id");
	if (!rc && !gsp_id)
		rc = auth_status_set(
			st, -EBADMSG, NULL,
			"the Microsoft Graph service principal has no 'id'");
	step(fn, ctx, !rc, "looking up Microsoft Graph in the tenant");
	if (rc < 0)
		goto out;

	/* 2. our application: by appId, else by display name */
	if (reg->app_id && *reg->app_id)
		rc = find_one(h, graph, token, "applications", "appId",
			      reg->app_id, &app, st);
	if (!rc && !app && reg->display_name)
		rc = find_one(h, graph, token, "applications", "displayName",
			      reg->display_name, &app, st);
	if (rc < 0) {
		step(fn, ctx, false, "looking up the application");
		goto out;
	}
	if (!app && grant_only) {
		rc = auth_status_set(
			st, -ENOENT,
			"check the client id of the connection, or register a new app with 'm365-connect register'",
			"application '%s' was not found in the tenant",
			reg->app_id ? reg->app_id : reg->display_name);
		step(fn, ctx, false, "looking up the application");
		goto out;
	}
	if (!app) {
		rc = app_create(h, graph, token, reg, graph_sp, need, &app, st);
		step(fn, ctx, !rc, "creating application '%s'",
		     reg->display_name);
		if (rc < 0)
			goto out;
		reg->created = true;
		reg->cert_added = reg->cert != NULL;
	} else {
		step(fn, ctx, true, "found application '%s' (%s)",
		     jstr(app, "displayName") ? jstr(app, "displayName") : "?",
		     jstr(app, "appId") ? jstr(app, "appId") : "?");
	}
	copy_id(reg->app_id_out, jstr(app, "appId"));
	copy_id(reg->app_object_id, jstr(app, "id"));
	if (!reg->app_id_out[0] || !reg->app_object_id[0]) {
		rc = auth_status_set(st, -EBADMSG, NULL,
				     "the application has no 'appId' or 'id'");
		goto out;
	}
	buf_addf(&path, "/applications/%s", reg->app_object_id);

	/* 3. permissions and certificate on an existing app */
	if (!reg->created && !has_access(app, graph_sp, need)) {
		body = cJSON_CreateObject();
		if (!body) {
			rc = -ENOMEM;
			goto out;
		}
		cJSON_AddItemToObject(
			body, "requiredResourceAccess",
			required_access(
				graph_sp, need,
				cJSON_GetObjectItemCaseSensitive(
					app, "requiredResourceAccess")));
		rc = auth_graph_call(h, graph, token, "PATCH", path.data, body,
				     NULL, st);
		step(fn, ctx, !rc, "adding the missing API permissions");
		cJSON_Delete(body);
		body = NULL;
		if (rc < 0)
			goto out;
	}
	if (!reg->created && reg->cert && !has_cert(app, reg->cert)) {
		body = cJSON_CreateObject();
		if (!body) {
			rc = -ENOMEM;
			goto out;
		}
		cJSON_AddItemToObject(body, "keyCredentials",
				      key_credentials_plus(app, reg->cert));
		rc = auth_graph_call(h, graph, token, "PATCH", path.data, body,
				     NULL, st);
		step(fn, ctx, !rc, "registering the certificate on the app");
		cJSON_Delete(body);
		body = NULL;
		if (rc < 0)
			goto out;
		reg->cert_added = true;
	}

	/* 4. the service principal of our app */
	rc = find_one(h, graph, token, "servicePrincipals", "appId",
		      reg->app_id_out, &sp, st);
	if (!rc && !sp) {
		body = cJSON_CreateObject();
		if (!body) {
			rc = -ENOMEM;
			goto out;
		}
		cJSON_AddStringToObject(body, "appId", reg->app_id_out);
		rc = auth_graph_call(h, graph, token, "POST",
				     "/servicePrincipals", body, &sp, st);
		cJSON_Delete(body);
		body = NULL;
		step(fn, ctx, !rc, "creating the service principal");
	}
	if (rc < 0)
		goto out;
	copy_id(reg->sp_id, jstr(sp, "id"));
	if (!reg->sp_id[0]) {
		rc = auth_status_set(st, -EBADMSG, NULL,
				     "the service principal has no 'id'");
		goto out;
	}

	/* 5. admin consent: one appRoleAssignedTo per missing role */
	rc = assigned_roles(h, graph, token, reg->sp_id, gsp_id, &ids, st);
	if (rc < 0)
		goto out;
	buf_reset(&path);
	buf_addf(&path, "/servicePrincipals/%s/appRoleAssignedTo", gsp_id);
	for (r = need; r->name; r++) {
		const char *id = role_id(graph_sp, r);

		if (in_list(ids, id)) {
			reg->roles_present++;
			continue;
		}
		body = cJSON_CreateObject();
		if (!body) {
			rc = -ENOMEM;
			goto out;
		}
		cJSON_AddStringToObject(body, "principalId", reg->sp_id);
		cJSON_AddStringToObject(body, "resourceId", gsp_id);
		cJSON_AddStringToObject(body, "appRoleId", id);
		rc = auth_graph_call(h, graph, token, "POST", path.data, body,
				     NULL, st);
		cJSON_Delete(body);
		body = NULL;
		if (rc < 0 && st->http_status == 400 &&
		    strstr(st->detail, "already exists")) {
			rc = 0;
			reg->roles_present++;
			continue;
		}
		step(fn, ctx, !rc, "granting admin consent for '%s'", r->name);
		if (rc < 0)
			goto out;
		reg->roles_granted++;
	}
out:
	if (rc < 0 && st->http_status == 403 && !st->hint[0])
		snprintf(
			st->hint, sizeof(st->hint),
			"sign in as a Global Administrator or Privileged Role Administrator (Application Administrator can create apps but not grant consent)");
	cJSON_Delete(body);
	cJSON_Delete(ids);
	cJSON_Delete(sp);
	cJSON_Delete(app);
	cJSON_Delete(graph_sp);
	buf_release(&path);
	return rc;
}
