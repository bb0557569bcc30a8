/*
 * Wiring of a connection (NAME.conf) to a Graph client for the daemon:
 * http with the connection's CA file, auth (secret or certificate), graph.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "config/config.h"
#include "restore/restore.h"
#include "util/log.h"
#include "util/util.h"

struct restore_conn {
	struct http *http;
	struct auth *auth;
	struct auth_cert *cert;
	struct graph *graph;
};

static int tok_get(void *ctx, struct buf *tok)
{
	return auth_token_get(ctx, tok);
}

static void tok_invalidate(void *ctx, const char *tok)
{
	auth_token_invalidate(ctx, tok);
}

/* Read a 0600 secret file into @out without the trailing newline. */
static int read_secret(const char *path, struct buf *out, struct buf *why)
{
	struct conf_err err = { { 0 }, { 0 } };
	int rc;

	rc = conf_check_private(path, "client secret", &err);
	if (rc < 0) {
		buf_addf(why, "%s%s%s", err.what[0] ? err.what : strerror(-rc),
			 err.hint[0] ? ": " : "", err.hint);
		return rc;
	}
	rc = util_read_file(path, out, 64 * 1024);
	if (rc < 0) {
		buf_addf(why, "cannot read client secret file '%s': %s", path,
			 strerror(-rc));
		return rc;
	}
	while (out->len && (out->data[out->len - 1] == '\n' ||
			    out->data[out->len - 1] == '\r' ||
			    out->data[out->len - 1] == ' '))
		buf_truncate(out, out->len - 1);
	return 0;
}

static void wipe(struct buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->len);
	buf_release(b);
}

int restore_conn_open(const char *name, struct restore_conn **out,
		      struct buf *why)
{
	struct restore_conn *c;
	struct conf_conn *conn;
	struct conf_err err = { { 0 }, { 0 } };
	struct auth_status ast = { 0 };
	struct http_config hc = { 0 };
	struct auth_config ac = { 0 };
	struct graph_config gc = { 0 };
	struct buf dir = BUF_INIT, path = BUF_INIT, kp = BUF_INIT,
		   secret = BUF_INIT, scope = BUF_INIT;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	conn = calloc(1, sizeof(*conn));
	if (!c || !conn) {
		rc = -ENOMEM;
		goto out;
	}
	if (!conf_name_valid(name)) {
		buf_addf(why, "'%s' is not a valid connection name", name);
		rc = -EINVAL;
		goto out;
	}
	rc = conf_dir(false, &dir);
	if (rc == 0)
		rc = conf_load(dir.data, name, conn, &err);
	if (rc < 0) {
		if (rc == -ENOENT)
			buf_addf(
				why,
				"no connection '%s' in '%s': create it with 'm365-connect'",
				name, dir.data ? dir.data : "?");
		else
			buf_addf(why, "%s%s%s",
				 err.what[0] ? err.what : strerror(-rc),
				 err.hint[0] ? ": " : "", err.hint);
		goto out;
	}
	hc.ca_file = conn->ca_file[0] ? conn->ca_file : NULL;
	/* a stalled upload fragment is retried (and resumed) sooner */
	hc.low_speed_time_s = 20;
	rc = http_new(&hc, &c->http);
	if (rc < 0) {
		buf_addf(why, "cannot start the HTTP client: %s",
			 strerror(-rc));
		goto out;
	}
	if (conn->cred == CONF_CRED_SECRET) {
		conf_path(conn, conn->secret_file, &path);
		rc = read_secret(path.data, &secret, why);
		if (rc < 0)
			goto out;
		ac.secret = secret.data;
	} else if (conn->cred == CONF_CRED_CERT) {
		conf_path(conn, conn->cert_file, &path);
		if (conn->key_file[0])
			conf_path(conn, conn->key_file, &kp);
		rc = auth_cert_load_pem(path.data, kp.len ? kp.data : NULL,
					&c->cert, &ast);
	} else {
		buf_addf(
			why,
			"connection '%s' has no secret or certificate the daemon can use: run 'm365-connect'",
			name);
		rc = -EINVAL;
		goto out;
	}
	if (rc < 0) {
		buf_addf(why, "%s%s%s", ast.what[0] ? ast.what : strerror(-rc),
			 ast.hint[0] ? ": " : "", ast.hint);
		goto out;
	}
	rc = conf_graph_resource(conn, &scope);
	if (rc == 0)
		rc = buf_adds(&scope, "/.default");
	if (rc < 0)
		goto out;
	ac.login_url = conf_login_url(conn);
	ac.tenant = conn->tenant;
	ac.client_id = conn->client_id;
	ac.scope = scope.data;
	ac.cert = c->cert;
	ac.connection = name;
	rc = auth_new(&ac, c->http, &c->auth);
	if (rc < 0) {
		buf_addf(why, "cannot set up authentication: %s",
			 strerror(-rc));
		goto out;
	}
	gc.base_url = conf_graph_url(conn);
	gc.token.get = tok_get;
	gc.token.invalidate = tok_invalidate;
	gc.token.ctx = c->auth;
	rc = graph_new(c->http, &gc, &c->graph);
	if (rc < 0) {
		buf_addf(why, "cannot set up the Graph client: %s",
			 strerror(-rc));
		goto out;
	}
	rc = auth_token_get(c->auth, &secret);
	if (rc < 0) {
		auth_last_status(c->auth, &ast);
		buf_addf(why, "cannot sign in with connection '%s': %s%s%s",
			 name, ast.what[0] ? ast.what : strerror(-rc),
			 ast.hint[0] ? ": " : "", ast.hint);
		goto out;
	}
	*out = c;
	c = NULL;
out:
	restore_conn_free(c);
	wipe(&secret);
	buf_release(&dir);
	buf_release(&path);
	buf_release(&kp);
	buf_release(&scope);
	free(conn);
	return rc;
}

struct graph *restore_conn_graph(struct restore_conn *c)
{
	return c->graph;
}

void restore_conn_free(struct restore_conn *c)
{
	if (!c)
		return;
	graph_free(c->graph);
	auth_free(c->auth);
	http_free(c->http);
	auth_cert_free(c->cert);
	free(c);
}
