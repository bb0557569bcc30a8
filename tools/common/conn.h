/*
 * conn - what the tools add to engine/conn/conn.h: reporting.  Connections
 * are opened by the engine (conn_load(), conn_credential(),
 * conn_auth_open(), conn_open()); these helpers show their failures the
 * tools' way (cli_error() + hints).
 *
 * Thread safety: none needed (used at start-up).
 * Errors: 0 or -errno; every function here reports with cli_error().
 */
#ifndef M365_CLI_CONN_H
#define M365_CLI_CONN_H

#include <stdbool.h>

#include "auth/auth.h"
#include "config/config.h"
#include "conn/conn.h"
#include "http/http.h"

/**
 * Put the configuration directory into @out: @config_dir when not NULL,
 * else conf_dir(@system).  Reports errors.  Returns 0 or -errno.
 */
int cli_conn_dir(const char *config_dir, bool system, struct buf *out);

/**
 * Load connection @name from @dir into @c (zeroed first) with
 * conn_load().  Reports errors (what failed and the remedy).  Returns 0
 * or -errno.
 */
int cli_conn_load(const char *dir, const char *name, struct conn *c);

/** Start an http client with the CA file of @conn.  Reports errors. */
int cli_conn_http(const struct conf_conn *conn, struct http **out);

/** Report @st: cli_error(what), then the service's words and the remedy. */
void cli_conn_report(const struct auth_status *st);

#endif
