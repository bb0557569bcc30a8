/*
 * Wiring of a connection (NAME.conf) to a Graph client: the shared
 * cli_conn (credential, token provider) plus an http client with the
 * snapshot's own settings for the Graph traffic.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "common/conn.h"
#include "snapshot/tool.h"

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
	struct buf dir = BUF_INIT, tok = BUF_INIT;
	struct auth_status ast = { 0 };
	struct http_config hc = { 0 };
	struct graph_config gc = { 0 };
	int rc;

	memset(tc, 0, sizeof(*tc));
	tc->conn = calloc(1, sizeof(*tc->conn));
	if (!tc->conn)
		return -ENOMEM;
	if (!conf_name_valid(name)) {
		cli_error("'%s' is not a valid connection name", name);
		rc = -EINVAL;
		goto out;
	}
	rc = cli_conn_dir(NULL, false, &dir);
	if (rc == 0)
		rc = cli_conn_load(dir.data, name, tc->conn);
	if (rc < 0)
		goto out;
	rc = cli_conn_open(tc->conn, 0, &ast);
	if (rc < 0) {
		cli_conn_report(&ast);
		goto out;
	}
	/* Graph traffic on a client of its own (retries, stall timeout);
	 * tokens come from the connection's */
	if (hcfg)
		hc = *hcfg;
	hc.ca_file = tc->conn->conn.ca_file[0] ? tc->conn->conn.ca_file : NULL;
	rc = http_new(&hc, &tc->http);
	if (rc < 0) {
		cli_error("cannot start the HTTP client: %s", strerror(-rc));
		goto out;
	}
	gc.base_url = conf_graph_url(&tc->conn->conn);
	gc.token.get = tok_get;
	gc.token.invalidate = tok_invalidate;
	gc.token.ctx = tc->conn->auth;
	rc = graph_new(tc->http, &gc, &tc->graph);
	if (rc < 0) {
		cli_error("cannot set up the Graph client: %s", strerror(-rc));
		goto out;
	}
	tc->services = tc->conn->conn.services ? tc->conn->conn.services
					       : CONF_SVC_ALL;
	/* fail early, with the remedy, when no token can be had */
	rc = auth_token_get(tc->conn->auth, &tok);
	if (rc < 0) {
		auth_last_status(tc->conn->auth, &ast);
		cli_error("cannot sign in with connection '%s'", name);
		cli_conn_report(&ast);
	}
out:
	if (rc < 0)
		tool_disconnect(tc);
	cli_secret_wipe(&tok);
	buf_release(&dir);
	return rc;
}

void tool_disconnect(struct tool_conn *tc)
{
	graph_free(tc->graph);
	http_free(tc->http);
	if (tc->conn) {
		cli_conn_close(tc->conn);
		free(tc->conn);
	}
	memset(tc, 0, sizeof(*tc));
}
