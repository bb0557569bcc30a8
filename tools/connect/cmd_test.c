/* m365-connect test NAME: every check of a connection, step by step. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "connect/connect.h"
#include "util/util.h"

enum { O_JSON = 256, O_WAIT };

struct test {
	bool json;
	uint64_t wait_s;
	cJSON *steps;
	int failed;
	const char *name;
};

static int on_opt(void *ctx, const struct cli_opt *o, const char *arg)
{
	struct test *t = ctx;

	if (o->key == O_JSON)
		t->json = true;
	else if (o->key == O_WAIT)
		return cli_parse_duration(arg, "wait", &t->wait_s);
	return 0;
}

/* One line of the report: "ok" or "FAILED" (or "skipped"), then the hint. */
static void step(struct test *t, const char *state, const char *hint,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void step(struct test *t, const char *state, const char *hint,
		 const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (!strcmp(state, "failed"))
		t->failed++;
	if (t->json) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddItemToArray(t->steps, o);
		cli_json_str(o, "result", state);
		cli_json_str(o, "message", what);
		cli_json_str(o, "hint", hint && *hint ? hint : NULL);
		return;
	}
	printf("%-8s %s\n",
	       !strcmp(state, "ok")	  ? "ok"
	       : !strcmp(state, "failed") ? "FAILED"
					  : state,
	       what);
	if (hint && *hint)
		printf("         hint: %s\n", hint);
	fflush(stdout);
}

static void step_st(struct test *t, const struct auth_status *st)
{
	char hint[1600];

	if (st->detail[0])
		snprintf(hint, sizeof(hint), "%s%s(the service said: %s)",
			 st->hint, st->hint[0] ? " " : "", st->detail);
	else
		snprintf(hint, sizeof(hint), "%s", st->hint);
	step(t, "failed", hint, "%s", st->what);
}

static const char *jstr(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Roles that imply another one. */
static bool role_held(const cJSON *roles, const char *name)
{
	static const char *const implied[][2] = {
		{ "Sites.ReadWrite.All", "Sites.FullControl.All" },
		{ "Sites.Read.All", "Sites.ReadWrite.All" },
		{ "Sites.Read.All", "Sites.FullControl.All" },
		{ "Files.Read.All", "Files.ReadWrite.All" },
		{ "Mail.Read", "Mail.ReadWrite" },
		{ "User.Read.All", "Directory.Read.All" },
		{ "User.Read.All", "User.ReadWrite.All" },
		{ "User.Read.All", "Directory.ReadWrite.All" },
	};
	const cJSON *r;
	size_t i;

	cJSON_ArrayForEach(r, roles)
	{
		if (!cJSON_IsString(r))
			continue;
		if (!strcmp(r->valuestring, name))
			return true;
		for (i = 0; i < ARRAY_SIZE(implied); i++)
			if (!strcmp(implied[i][0], name) &&
			    !strcmp(implied[i][1], r->valuestring))
				return true;
	}
	return false;
}

/* A Graph GET for the test; on failure reports the step with a remedy. */
static int get(struct test *t, struct conn *cx, const char *token,
	       const char *path, cJSON **out, const char *doing)
{
	struct auth_status st;
	char hint[512];
	int rc;

	rc = auth_graph_call(cx->http, conf_graph_url(&cx->conn), token, "GET",
			     path, NULL, out, &st);
	if (!rc)
		return 0;
	if (st.http_status == 403) {
		snprintf(
			hint, sizeof(hint),
			"grant the application permissions with 'm365-connect grant %s' (admin consent)",
			t->name);
		step(t, "failed", hint, "%s: access denied (%s%s%s)", doing,
		     st.error, st.detail[0] ? ": " : "", st.detail);
	} else if (st.http_status) {
		step(t, "failed", st.detail, "%s: HTTP %ld %s", doing,
		     st.http_status, st.error);
	} else {
		step_st(t, &st);
	}
	return rc;
}

static void test_sharepoint_url(struct test *t, struct conn *cx,
				const char *token)
{
	const char *want = cx->conn.sharepoint_url, *web;
	char a[256], b[256];
	cJSON *j = NULL;

	if (!want[0])
		return;
	if (get(t, cx, token, "/sites/root", &j, "reading the root site") < 0)
		return;
	web = jstr(j, "webUrl");
	if (!web || http_url_origin(web, a, sizeof(a)) < 0 ||
	    http_url_origin(want, b, sizeof(b)) < 0 || strcasecmp(a, b)) {
		char hint[600];

		snprintf(
			hint, sizeof(hint),
			"set sharepoint_url to %s, or check the tenant of the connection",
			web ? web : "the tenant's SharePoint address");
		step(t, "failed", hint,
		     "SharePoint URL '%s' does not belong to tenant '%s' (its root site is '%s')",
		     want, cx->conn.tenant, web ? web : "?");
	} else {
		step(t, "ok", NULL, "SharePoint URL '%s' belongs to the tenant",
		     want);
	}
	cJSON_Delete(j);
}

static void test_sites(struct test *t, struct conn *cx, const char *token)
{
	cJSON *j = NULL, *d = NULL, *s;
	struct buf path = BUF_INIT;
	int n;

	if (get(t, cx, token,
		"/sites/getAllSites?$top=10&$select=id,webUrl,displayName", &j,
		"listing site collections") < 0)
		return;
	n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "value"));
	s = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "value"), 0);
	if (!s || !jstr(s, "id")) {
		step(t, "failed", "check that the tenant has SharePoint sites",
		     "no site collections listed");
		goto out;
	}
	step(t, "ok", NULL, "site collections listed (%d on the first page)",
	     n);
	buf_adds(&path, "/sites/");
	http_escape(&path, jstr(s, "id"));
	buf_adds(&path, "/drives");
	if (get(t, cx, token, path.data, &d, "reading a site") == 0)
		step(t, "ok", NULL, "site '%s' read (%d document libraries)",
		     jstr(s, "webUrl") ? jstr(s, "webUrl") : jstr(s, "id"),
		     cJSON_GetArraySize(
			     cJSON_GetObjectItemCaseSensitive(d, "value")));
out:
	cJSON_Delete(d);
	cJSON_Delete(j);
	buf_release(&path);
}

/* Mailboxes and OneDrive: try the first users until one has it. */
static void test_users(struct test *t, struct conn *cx, const char *token,
		       bool mail, bool onedrive)
{
	cJSON *users = NULL, *u;
	struct buf path = BUF_INIT;
	bool mail_done = !mail, od_done = !onedrive;
	int tries = 0;
	struct auth_status st;

	if (get(t, cx, token,
		"/users?$select=id,userPrincipalName,mail&$top=20", &users,
		"listing users") < 0)
		return;
	step(t, "ok", NULL, "users listed (%d on the first page)",
	     cJSON_GetArraySize(
		     cJSON_GetObjectItemCaseSensitive(users, "value")));
	cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(users, "value"))
	{
		const char *id = jstr(u, "id"),
			   *upn = jstr(u, "userPrincipalName");
		cJSON *j = NULL;

		if (!id || (mail_done && od_done) || ++tries > 10)
			break;
		if (!mail_done && jstr(u, "mail")) {
			buf_reset(&path);
			buf_addf(&path, "/users/%s/mailFolders?$top=20", id);
			if (!auth_graph_call(cx->http,
					     conf_graph_url(&cx->conn), token,
					     "GET", path.data, NULL, &j, &st)) {
				step(t, "ok", NULL,
				     "mailbox of '%s' read (%d top folders)",
				     upn ? upn : id,
				     cJSON_GetArraySize(
					     cJSON_GetObjectItemCaseSensitive(
						     j, "value")));
				mail_done = true;
			} else if (st.http_status == 403 ||
				   st.http_status == 401 || !st.http_status) {
				get(t, cx, token, path.data, NULL,
				    "reading a mailbox");
				mail_done = true;
			}
			cJSON_Delete(j);
			j = NULL;
		}
		if (!od_done) {
			buf_reset(&path);
			buf_addf(&path, "/users/%s/drive", id);
			if (!auth_graph_call(cx->http,
					     conf_graph_url(&cx->conn), token,
					     "GET", path.data, NULL, &j, &st)) {
				step(t, "ok", NULL,
				     "OneDrive of '%s' reachable",
				     upn ? upn : id);
				od_done = true;
			} else if (st.http_status == 403 ||
				   st.http_status == 401 || !st.http_status) {
				get(t, cx, token, path.data, NULL,
				    "reading a OneDrive");
				od_done = true;
			}
			cJSON_Delete(j);
		}
	}
	if (!mail_done)
		step(t, "failed",
		     "check that users have Exchange Online mailboxes (licences)",
		     "no mailbox could be read among the first users");
	if (!od_done)
		step(t, "failed",
		     "check that users have OneDrive (licences, provisioned)",
		     "no OneDrive could be read among the first users");
	cJSON_Delete(users);
	buf_release(&path);
}

/* Which of tenant / application / credential a token failure is about. */
static int token_step(struct test *t, const struct conf_conn *c,
		      const struct auth_status *st)
{
	switch (st->rc) {
	case -ENXIO:
	case -EREMOTE:
		step_st(t, st);
		return 0;
	case -ENOENT:
		step(t, "ok", NULL, "tenant '%s' exists", c->tenant);
		step_st(t, st);
		if (!t->wait_s && !t->json)
			printf("         hint: for an app created moments ago, wait for it: 'm365-connect test %s --wait 2m'\n",
			       t->name);
		return 0;
	default:
		if (st->http_status) {
			step(t, "ok", NULL, "tenant '%s' exists", c->tenant);
			step(t, "ok", NULL, "application '%s' exists",
			     c->client_id);
		}
		step_st(t, st);
		return 0;
	}
}

int cmd_test(int argc, char **argv)
{
	static const struct cli_opt opts[] = {
		{ "json", O_JSON, NULL, "print the result as JSON" },
		{ "wait", O_WAIT, "TIME",
		  "wait up to TIME (e.g. 2m) for a new app to propagate" },
		{ NULL, 0, NULL, NULL },
	};
	struct test t = { 0 };
	struct conn cx;
	struct auth_status st;
	struct auth_cert_info in;
	struct http_stats hs;
	struct buf tok = BUF_INIT;
	cJSON *claims = NULL, *org = NULL, *roles;
	const struct auth_role *need, *r;
	char when[32];
	size_t n;
	int npos, rc, prop;

	rc = cli_parse(argc, argv, "test",
		       "m365-connect test NAME [--json] [--wait TIME]", opts,
		       on_opt, &t, &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos != 1)
		return cli_usage("test", "give one connection NAME");
	t.name = argv[0];
	t.steps = cJSON_CreateArray();
	rc = connect_load(argv[0], &cx);
	if (rc) {
		cJSON_Delete(t.steps);
		return rc;
	}
	step(&t, "ok", NULL, "connection file %s/%s.conf", cx.conn.dir,
	     cx.conn.name);
	step(&t, "ok", NULL, "tenant '%s' and client id '%s' are well-formed",
	     cx.conn.tenant, cx.conn.client_id);

	/* a just-registered app needs time to reach every Entra ID replica */
	prop = (int)t.wait_s;
	if (!prop && cx.conn.registered &&
	    util_now() - cx.conn.registered < 15 * 60)
		prop = 120;
	rc = conn_auth_open(&cx, prop, &st);
	if (rc) {
		step_st(&t, &st);
		goto done;
	}
	if (cx.cert) {
		auth_cert_info(cx.cert, &in);
		util_time_format(in.not_after, when, sizeof(when));
		rc = auth_cert_check(cx.cert, util_now(), &st);
		if (rc < 0) {
			step_st(&t, &st);
			goto done;
		}
		step(&t, "ok", NULL,
		     "certificate '%s': thumbprint %s, RSA %d bits, valid until %s",
		     in.subject, in.thumbprint, in.bits, when);
	} else {
		step(&t, "ok", NULL, "client secret file is private (0600)");
	}
	if (prop && !t.json)
		printf("         (waiting up to %d s for Entra ID to know a new app)\n",
		       prop);

	rc = auth_token_get(cx.auth, &tok);
	if (rc < 0) {
		auth_last_status(cx.auth, &st);
		token_step(&t, &cx.conn, &st);
		goto done;
	}
	step(&t, "ok", NULL, "tenant '%s' exists", cx.conn.tenant);
	step(&t, "ok", NULL, "application '%s' exists", cx.conn.client_id);
	step(&t, "ok", NULL, "%s accepted, access token received",
	     cx.cert ? "certificate" : "client secret");

	/* Graph reachable: any answer but 401 will do */
	rc = auth_graph_call(cx.http, conf_graph_url(&cx.conn), tok.data, "GET",
			     "/organization?$select=id,displayName", NULL, &org,
			     &st);
	if (rc < 0 && (st.http_status == 401 || !st.http_status)) {
		step_st(&t, &st);
		goto done;
	}
	step(&t, "ok", NULL, "Microsoft Graph reachable at %s",
	     conf_graph_url(&cx.conn));
	rc = 0;

	/* granted roles (from the token) against the services' needs */
	auth_jwt_claims(tok.data, &claims);
	roles = cJSON_GetObjectItemCaseSensitive(claims, "roles");
	need = auth_roles_needed(cx.conn.services, &n);
	if (!cJSON_GetArraySize(roles)) {
		char hint[512];

		snprintf(
			hint, sizeof(hint),
			"an administrator grants admin consent: 'm365-connect grant %s' (or API permissions, Grant admin consent)",
			t.name);
		step(&t, "failed", hint,
		     "the application has no permissions granted (admin consent is missing)");
		goto done;
	} else {
		struct buf missing = BUF_INIT;
		char hint[512];

		for (r = need; r->name; r++)
			if (!role_held(roles, r->name))
				buf_addf(&missing, "%s%s",
					 missing.len ? ", " : "", r->name);
		if (missing.len) {
			snprintf(
				hint, sizeof(hint),
				"add and consent them with 'm365-connect grant %s'",
				t.name);
			step(&t, "failed", hint,
			     "permissions missing for the services: %s",
			     missing.data);
		} else {
			step(&t, "ok", NULL,
			     "permissions granted for the services (%zu roles)",
			     n);
		}
		buf_release(&missing);
	}

	test_sharepoint_url(&t, &cx, tok.data);
	if (cx.conn.services & CONF_SVC_FILES)
		test_sites(&t, &cx, tok.data);
	if (cx.conn.services & (CONF_SVC_MAIL | CONF_SVC_ONEDRIVE))
		test_users(&t, &cx, tok.data, cx.conn.services & CONF_SVC_MAIL,
			   cx.conn.services & CONF_SVC_ONEDRIVE);
	http_stats_get(cx.http, &hs);
	if (hs.throttled && !t.json)
		printf("note: the service throttled %llu requests; waited %.1f s as asked\n",
		       (unsigned long long)hs.throttled,
		       (double)hs.waited_ms / 1000);
done:
	if (t.json) {
		cJSON *o = cJSON_CreateObject();

		cli_json_str(o, "connection", t.name);
		cli_json_bool(o, "ok", t.failed == 0 && rc == 0);
		cJSON_AddItemToObject(o, "steps", t.steps);
		t.steps = NULL;
		cli_json_print(o);
		cJSON_Delete(o);
	} else if (!t.failed && rc == 0) {
		printf("connection '%s' works\n", t.name);
	}
	cJSON_Delete(t.steps);
	cJSON_Delete(claims);
	cJSON_Delete(org);
	cli_secret_wipe(&tok);
	conn_close(&cx);
	return t.failed || rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
