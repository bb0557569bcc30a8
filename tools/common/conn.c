/* Opening a connection for a tool (see conn.h). */
#include "common/conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/cli.h"
#include "util/util.h"

static void status_set(struct auth_status *st, int rc, const char *what,
		       const char *hint)
{
	memset(st, 0, sizeof(*st));
	st->rc = rc;
	snprintf(st->what, sizeof(st->what), "%s", what);
	snprintf(st->hint, sizeof(st->hint), "%s", hint);
}

int cli_conn_dir(const char *config_dir, bool system, struct buf *out)
{
	int rc;

	if (config_dir) {
		buf_reset(out);
		rc = buf_adds(out, config_dir);
	} else {
		rc = conf_dir(system, out);
	}
	if (rc < 0) {
		cli_error("cannot tell the configuration directory: %s",
			  strerror(-rc));
		cli_hint("set HOME or use --config-dir DIR");
		return rc;
	}
	return 0;
}

int cli_conn_load(const char *dir, const char *name, struct cli_conn *c)
{
	struct conf_err err;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = conf_load(dir, name, &c->conn, &err);
	if (rc < 0) {
		cli_error("%s", err.what);
		if (err.hint[0])
			cli_hint("%s", err.hint);
	}
	return rc;
}

void cli_conn_report(const struct auth_status *st)
{
	cli_error("%s", st->what[0] ? st->what : strerror(-st->rc));
	if (st->detail[0])
		cli_hint("the service said: %s", st->detail);
	if (st->hint[0])
		cli_hint("%s", st->hint);
}

int cli_conn_http(const struct conf_conn *conn, struct http **out)
{
	struct http_config cfg = { 0 };
	struct buf ca = BUF_INIT;
	int rc;

	if (conn->ca_file[0]) {
		rc = conf_path(conn, conn->ca_file, &ca);
		if (rc < 0)
			goto out;
		cfg.ca_file = ca.data;
	}
	cfg.max_retries = 4;
	rc = http_new(&cfg, out);
	if (rc < 0)
		cli_error("cannot start the HTTP client: %s", strerror(-rc));
out:
	buf_release(&ca);
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
		status_set(st, rc, err.what, err.hint);
		goto out;
	}
	rc = util_read_file(path.data, out, 64 * 1024);
	if (!rc && out->len && out->data[out->len - 1] == '\n')
		buf_truncate(out, out->len - 1);
	if (!rc && out->len && out->data[out->len - 1] == '\r')
		buf_truncate(out, out->len - 1);
	if (!rc && !out->len)
		rc = -ENODATA;
	if (rc < 0) {
		status_set(st, rc, "", "check the connection file");
		snprintf(st->what, sizeof(st->what), "cannot read %s '%s': %s",
			 what, path.data,
			 rc == -ENODATA ? "it is empty" : strerror(-rc));
	}
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
		status_set(st, rc, err.what, err.hint);
		goto out;
	}
	rc = auth_cert_load_pem(p1.data, conn->key_file[0] ? p2.data : NULL,
				cert, st);
out:
	cli_secret_wipe(&pw);
	buf_release(&p1);
	buf_release(&p2);
	return rc;
}

int cli_conn_credential(struct cli_conn *c, struct auth_status *st)
{
	memset(st, 0, sizeof(*st));
	if (c->cert || c->secret.len)
		return 0;
	if (c->conn.cred == CONF_CRED_SECRET)
		return read_private(&c->conn, c->conn.secret_file,
				    "secret file", &c->secret, st);
	return load_cert(&c->conn, &c->cert, st);
}

int cli_conn_open(struct cli_conn *c, int propagation_s, struct auth_status *st)
{
	struct auth_config cfg = { 0 };
	int rc;

	rc = cli_conn_credential(c, st);
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
	rc = cli_conn_http(&c->conn, &c->http);
	if (rc < 0) {
		status_set(st, rc, "cannot start the HTTP client", "");
		return rc;
	}
	cfg.login_url = conf_login_url(&c->conn);
	cfg.tenant = c->conn.tenant;
	cfg.client_id = c->conn.client_id;
	cfg.scope = c->scope.data;
	cfg.connection = c->conn.name;
	cfg.propagation_s = propagation_s;
	return auth_new(&cfg, c->http, &c->auth);
}

void cli_conn_close(struct cli_conn *c)
{
	auth_free(c->auth);
	c->auth = NULL;
	http_free(c->http);
	c->http = NULL;
	auth_cert_free(c->cert);
	c->cert = NULL;
	cli_secret_wipe(&c->secret);
	buf_release(&c->scope);
}
