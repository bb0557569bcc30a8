/*
 * conn - open a connection (NAME.conf) for a tool: read its credential
 * (secret file or certificate, with the 0600 checks), start an http client
 * with the connection's CA file, and create the token provider.  Shared by
 * m365-connect and m365-snapshot so that both read connections the same
 * way.
 *
 * Thread safety: none needed (used at start-up); the struct auth and
 * struct http it creates are thread-safe as documented in their headers.
 * Errors: 0 or -errno; functions that say so report with cli_error().
 */
#ifndef M365_CLI_CONN_H
#define M365_CLI_CONN_H

#include <stdbool.h>

#include "auth/auth.h"
#include "config/config.h"
#include "http/http.h"

struct cli_conn {
	struct conf_conn conn;
	struct auth_cert *cert; /* certificate credential, or NULL */
	struct buf secret; /* secret credential (wiped on close) */
	struct http *http;
	struct auth *auth; /* token provider: auth_token_get() */
	struct buf scope; /* RESOURCE/.default */
};

/**
 * Put the configuration directory into @out: @config_dir when not NULL,
 * else conf_dir(@system).  Reports errors.  Returns 0 or -errno.
 */
int cli_conn_dir(const char *config_dir, bool system, struct buf *out);

/**
 * Load connection @name from @dir into @c (zeroed first).  Reports errors
 * (what failed and the remedy).  Returns 0 or -errno.
 */
int cli_conn_load(const char *dir, const char *name, struct cli_conn *c);

/**
 * Read the credential of @c->conn into @c (secret or certificate; nothing
 * if already read), with the 0600 checks.  Does not report: @st says what
 * failed.  Returns 0 or -errno.
 */
int cli_conn_credential(struct cli_conn *c, struct auth_status *st);

/**
 * Read the credential of @c->conn (cli_conn_credential()), start @c->http and create @c->auth
 * (@propagation_s as in struct auth_config).  Does not report: @st says
 * what failed.  No request is made yet.  Returns 0 or -errno.
 */
int cli_conn_open(struct cli_conn *c, int propagation_s,
		  struct auth_status *st);

/** Start an http client with the CA file of @conn.  Reports errors. */
int cli_conn_http(const struct conf_conn *conn, struct http **out);

/** Free what cli_conn_open() created (the conn fields stay).  Idempotent. */
void cli_conn_close(struct cli_conn *c);

/** Report @st: cli_error(what), then the service's words and the remedy. */
void cli_conn_report(const struct auth_status *st);

#endif
