/*
 * Wiring of a connection (NAME.conf) to a Graph client: http, auth
 * (secret or certificate) and graph.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "common/cli.h"
#include "config/config.h"
#include "snapshot/tool.h"
#include "util/log.h"

/* The resource of the token scope: the cloud's Graph (a graph_url
 * override changes where requests go, not the resource). */
static const char *graph_resource(const struct conf_conn *c)
{
	switch (c->cloud) {
	case CONF_CLOUD_USGOV:
		return "https://graph.microsoft.us";
	case CONF_CLOUD_USGOVDOD:
		return "https://dod-graph.microsoft.us";
	case CONF_CLOUD_CHINA:
		return "https://microsoftgraph.chinacloudapi.cn";
	default:
		return "https://graph.microsoft.com";
	}
}

static int tok_get(void *ctx, struct buf *tok)
{
	return auth_token_get(ctx, tok);
}

static void tok_invalidate(void *ctx, const char *tok)
{
	auth_token_invalidate(ctx, tok);
}

int tool_connect(const char *name, const struct http_config *hcfg,
		 struct tool_conn *tc)
{
	struct conf_conn *conn = NULL;
	struct conf_err err = { { 0 }, { 0 } };
	struct buf dir = BUF_INIT, path = BUF_INIT, secret = BUF_INIT,
		   pass = BUF_INIT, scope = BUF_INIT;
	struct auth_status ast = { 0 };
	struct http_config hc = { 0 };
	struct auth_config ac = { 0 };
	struct graph_config gc = { 0 };
	int rc;

	memset(tc, 0, sizeof(*tc));
	conn = calloc(1, sizeof(*conn));
	if (!conn)
		return -ENOMEM;
	if (!conf_name_valid(name)) {
		cli_error("'%s' is not a valid connection name", name);
		rc = -EINVAL;
		goto out;
	}
	rc = conf_dir(false, &dir);
	if (rc == 0)
		rc = conf_load(dir.data, name, conn, &err);
	if (rc < 0) {
		if (rc == -ENOENT)
			cli_error("no connection '%s' in '%s'", name, dir.data);
		else
			cli_error("%s", err.what[0] ? err.what : strerror(-rc));
		if (err.hint[0])
			cli_hint("%s", err.hint);
		else if (rc == -ENOENT)
			cli_hint("create it with 'm365-connect'");
		goto out;
	}
	if (hcfg)
		hc = *hcfg;
	hc.ca_file = conn->ca_file[0] ? conn->ca_file : NULL;
	rc = http_new(&hc, &tc->http);
	if (rc < 0) {
		cli_error("cannot start the HTTP client: %s", strerror(-rc));
		goto out;
	}
	if (conn->cred == CONF_CRED_SECRET) {
		conf_path(conn, conn->secret_file, &path);
		rc = cli_secret_from_file(path.data, "client secret", &secret);
		if (rc < 0)
			goto out;
		ac.secret = secret.data;
	} else if (conn->cred == CONF_CRED_CERT) {
		struct buf kp = BUF_INIT;

		conf_path(conn, conn->cert_file, &path);
		if (conn->key_file[0])
			conf_path(conn, conn->key_file, &kp);
		rc = auth_cert_load_pem(path.data, kp.len ? kp.data : NULL,
					&tc->cert, &ast);
		buf_release(&kp);
	} else if (conn->cred == CONF_CRED_PFX) {
		conf_path(conn, conn->pfx_file, &path);
		if (conn->pfx_password_file[0]) {
			struct buf pp = BUF_INIT;

			conf_path(conn, conn->pfx_password_file, &pp);
			rc = cli_secret_from_file(pp.data, "pfx password",
						  &pass);
			buf_release(&pp);
			if (rc < 0)
				goto out;
		}
		rc = auth_cert_load_pfx(path.data, pass.data, &tc->cert, &ast);
	} else {
		cli_error("connection '%s' has no credential", name);
		cli_hint("run 'm365-connect' to add a secret or certificate");
		rc = -EINVAL;
		goto out;
	}
	if (rc < 0) {
		cli_error("%s", ast.what[0] ? ast.what : strerror(-rc));
		if (ast.hint[0])
			cli_hint("%s", ast.hint);
		goto out;
	}
	buf_addf(&scope, "%s/.default", graph_resource(conn));
	ac.login_url = conf_login_url(conn);
	ac.tenant = conn->tenant;
	ac.client_id = conn->client_id;
	ac.scope = scope.data;
	ac.cert = tc->cert;
	ac.connection = name;
	rc = auth_new(&ac, tc->http, &tc->auth);
	if (rc < 0) {
		cli_error("cannot set up authentication: %s", strerror(-rc));
		goto out;
	}
	gc.base_url = conf_graph_url(conn);
	gc.token.get = tok_get;
	gc.token.invalidate = tok_invalidate;
	gc.token.ctx = tc->auth;
	rc = graph_new(tc->http, &gc, &tc->graph);
	if (rc < 0) {
		cli_error("cannot set up the Graph client: %s", strerror(-rc));
		goto out;
	}
	tc->services = conn->services ? conn->services : CONF_SVC_ALL;
	/* fail early, with the remedy, when no token can be had */
	rc = auth_token_get(tc->auth, &secret);
	if (rc < 0) {
		auth_last_status(tc->auth, &ast);
		cli_error("cannot sign in with connection '%s': %s", name,
			  ast.what[0] ? ast.what : strerror(-rc));
		if (ast.hint[0])
			cli_hint("%s", ast.hint);
		else
			cli_hint("run 'm365-connect test %s'", name);
	}
out:
	if (rc < 0)
		tool_disconnect(tc);
	cli_secret_wipe(&secret);
	cli_secret_wipe(&pass);
	buf_release(&dir);
	buf_release(&path);
	buf_release(&scope);
	free(conn);
	return rc;
}

void tool_disconnect(struct tool_conn *tc)
{
	graph_free(tc->graph);
	auth_free(tc->auth);
	http_free(tc->http);
	auth_cert_free(tc->cert);
	memset(tc, 0, sizeof(*tc));
}
