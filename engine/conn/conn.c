/* Opening a connection (see conn.h). */
#include "conn/conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static void status_set(struct auth_status *st, int rc, const char *hint,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void status_set(struct auth_status *st, int rc, const char *hint,
		       const char *fmt, ...)
{
	va_list ap;

	memset(st, 0, sizeof(*st));
	st->rc = rc;
	va_start(ap, fmt);
	vsnprintf(st->what, sizeof(st->what), fmt, ap);
	va_end(ap);
	snprintf(st->hint, sizeof(st->hint), "%s", hint ? hint : "");
}

static void wipe(struct buf *b)
{
	if (b->alloc)
		explicit_bzero(b->data, b->alloc);
	buf_release(b);
}

int conn_load(const char *dir, const char *name, struct conn *c,
	      struct auth_status *st)
{
	struct buf d = BUF_INIT;
	struct conf_err err;
	int rc;

	memset(c, 0, sizeof(*c));
	memset(st, 0, sizeof(*st));
	if (!conf_name_valid(name)) {
		status_set(st, -EINVAL, NULL,
			   "'%s' is not a valid connection name", name);
		return -EINVAL;
	}
	rc = dir ? buf_adds(&d, dir) : conf_dir(false, &d);
	if (rc < 0) {
		status_set(st, rc, "set HOME or use --config-dir DIR",
			   "cannot tell the configuration directory: %s",
			   strerror(-rc));
		goto out;
	}
	rc = conf_load(d.data, name, &c->conn, &err);
	if (rc < 0)
		status_set(st, rc, err.hint, "%s",
			   err.what[0] ? err.what : strerror(-rc));
out:
	buf_release(&d);
	return rc;
}

/*
 * Read private file @file of @conn (mode 0600 or stricter) into @out and
 * strip one trailing newline.  @what names it in @st.
 */
static int read_private(const struct conf_conn *conn, const char *file,
			const char *what, struct buf *out,
			struct auth_status *st)
{
	struct buf path = BUF_INIT;
	struct conf_err err;
	int rc;

	rc = conf_path(conn, file, &path);
	if (rc < 0)
		goto out;
	rc = conf_check_private(path.data, what, &err);
	if (rc < 0) {
		status_set(st, rc, err.hint, "%s", err.what);
		goto out;
	}
	rc = util_read_file(path.data, out, 64 * 1024);
	if (!rc && out->len && out->data[out->len - 1] == '\n')
		buf_truncate(out, out->len - 1);
	if (!rc && out->len && out->data[out->len - 1] == '\r')
		buf_truncate(out, out->len - 1);
	if (!rc && !out->len)
		rc = -ENODATA;
	if (rc < 0)
		status_set(st, rc, "check the connection file",
			   "cannot read %s '%s': %s", what, path.data,
			   rc == -ENODATA ? "it is empty" : strerror(-rc));
out:
	buf_release(&path);
	return rc;
}

/* Load the certificate of @conn (PEM or PFX); @st explains failures. */
static int load_cert(const struct conf_conn *conn, struct auth_cert **cert,
		     struct auth_status *st)
{
	struct buf p1 = BUF_INIT, p2 = BUF_INIT, pw = BUF_INIT;
	struct conf_err err;
	int rc;

	if (conn->cred == CONF_CRED_PFX) {
		rc = conf_path(conn, conn->pfx_file, &p1);
		if (!rc && conn->pfx_password_file[0])
			rc = read_private(conn, conn->pfx_password_file,
					  "PFX password file", &pw, st);
		if (!rc)
			rc = auth_cert_load_pfx(p1.data, pw.data, cert, st);
		goto out;
	}
	rc = conf_path(conn, conn->cert_file, &p1);
	if (!rc && conn->key_file[0])
		rc = conf_path(conn, conn->key_file, &p2);
	if (rc < 0)
		goto out;
	rc = conf_check_private(conn->key_file[0] ? p2.data : p1.data,
				"private key file", &err);
	if (rc < 0) {
		status_set(st, rc, err.hint, "%s", err.what);
		goto out;
	}
	rc = auth_cert_load_pem(p1.data, conn->key_file[0] ? p2.data : NULL,
				cert, st);
out:
	wipe(&pw);
	buf_release(&p1);
	buf_release(&p2);
	return rc;
}

int conn_credential(struct conn *c, struct auth_status *st)
{
	memset(st, 0, sizeof(*st));
	if (c->cert || c->secret.len)
		return 0;
	if (c->conn.cred == CONF_CRED_SECRET)
		return read_private(&c->conn, c->conn.secret_file,
				    "secret file", &c->secret, st);
	return load_cert(&c->conn, &c->cert, st);
}

int conn_http_new(const struct conf_conn *conf, const struct http_config *base,
		  struct http **out)
{
	struct http_config cfg = { 0 };
	struct buf ca = BUF_INIT;
	int rc = 0;

	if (base)
		cfg = *base;
	else
		cfg.max_retries = 4;
	cfg.ca_file = NULL;
	if (conf->ca_file[0]) {
		rc = conf_path(conf, conf->ca_file, &ca);
		if (rc < 0)
			goto out;
		cfg.ca_file = ca.data;
	}
	rc = http_new(&cfg, out);
out:
	buf_release(&ca);
	return rc;
}

int conn_auth_open(struct conn *c, int propagation_s, struct auth_status *st)
{
	struct auth_config cfg = { 0 };
	int rc;

	rc = conn_credential(c, st);
	if (rc < 0)
		return rc;
	cfg.secret = c->cert ? NULL : c->secret.data;
	cfg.cert = c->cert;
	buf_release(&c->scope);
	rc = conf_graph_resource(&c->conn, &c->scope);
	if (!rc)
		rc = buf_adds(&c->scope, "/.default");
	if (rc < 0)
		return rc;
	rc = conn_http_new(&c->conn, NULL, &c->http);
	if (rc < 0) {
		status_set(st, rc, NULL, "cannot start the HTTP client: %s",
			   strerror(-rc));
		return rc;
	}
	cfg.login_url = conf_login_url(&c->conn);
	cfg.tenant = c->conn.tenant;
	cfg.client_id = c->conn.client_id;
	cfg.scope = c->scope.data;
	cfg.connection = c->conn.name;
	cfg.propagation_s = propagation_s;
	rc = auth_new(&cfg, c->http, &c->auth);
	if (rc < 0)
		status_set(st, rc, NULL, "cannot set up authentication: %s",
			   strerror(-rc));
	return rc;
}

static int tok_get(void *ctx, struct buf *tok)
{
	return auth_token_get(ctx, tok);
}

static void tok_invalidate(void *ctx, const char *tok)
{
	auth_token_invalidate(ctx, tok);
}

int conn_graph_open(struct conn *c, const struct http_config *hc,
		    struct auth_status *st)
{
	struct graph_config gc = { 0 };
	int rc;

	memset(st, 0, sizeof(*st));
	if (hc) {
		rc = conn_http_new(&c->conn, hc, &c->graph_http);
		if (rc < 0) {
			status_set(st, rc, NULL,
				   "cannot start the HTTP client: %s",
				   strerror(-rc));
			return rc;
		}
	}
	gc.base_url = conf_graph_url(&c->conn);
	gc.token.get = tok_get;
	gc.token.invalidate = tok_invalidate;
	gc.token.ctx = c->auth;
	rc = graph_new(c->graph_http ? c->graph_http : c->http, &gc, &c->graph);
	if (rc < 0)
		status_set(st, rc, NULL, "cannot set up the Graph client: %s",
			   strerror(-rc));
	return rc;
}

int conn_sign_in(struct conn *c, struct auth_status *st)
{
	struct buf tok = BUF_INIT;
	struct auth_status ast = { 0 };
	int rc;

	memset(st, 0, sizeof(*st));
	rc = auth_token_get(c->auth, &tok);
	wipe(&tok);
	if (rc < 0) {
		auth_last_status(c->auth, &ast);
		*st = ast;
		st->rc = rc;
		snprintf(st->what, sizeof(st->what),
			 "cannot sign in with connection '%.64s': %.900s",
			 c->conn.name, ast.what[0] ? ast.what : strerror(-rc));
	}
	return rc;
}

int conn_open(const char *name, const struct conn_options *o, struct conn **out,
	      struct auth_status *st)
{
	static const struct conn_options none = { 0 };
	struct conn *c;
	int rc;

	*out = NULL;
	if (!o)
		o = &none;
	c = calloc(1, sizeof(*c));
	if (!c) {
		status_set(st, -ENOMEM, NULL, "out of memory");
		return -ENOMEM;
	}
	rc = conn_load(o->config_dir, name, c, st);
	if (rc == 0)
		rc = conn_auth_open(c, o->propagation_s, st);
	if (rc == 0)
		rc = conn_graph_open(c, o->graph_http, st);
	if (rc == 0 && !o->no_sign_in)
		rc = conn_sign_in(c, st);
	if (rc < 0) {
		if (!st->what[0])
			status_set(st, rc, NULL, "%s", strerror(-rc));
		conn_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void conn_close(struct conn *c)
{
	graph_free(c->graph);
	c->graph = NULL;
	http_free(c->graph_http);
	c->graph_http = NULL;
	auth_free(c->auth);
	c->auth = NULL;
	http_free(c->http);
	c->http = NULL;
	auth_cert_free(c->cert);
	c->cert = NULL;
	wipe(&c->secret);
	buf_release(&c->scope);
}

void conn_free(struct conn *c)
{
	if (!c)
		return;
	conn_close(c);
	free(c);
}
