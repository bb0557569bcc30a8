/*
 * conn - open a connection (NAME.conf) the one way every program does it:
 * configuration -> credential (secret file or certificate, with the 0600
 * checks) -> http client (the connection's CA file) -> token provider
 * (auth) -> Graph client.  m365-connect, m365-snapshot and the restore
 * daemon all go through here; m365-connect also uses the steps one by one
 * (conn_credential(), conn_http_new(), conn_auth_open()).
 *
 * Errors are never printed here: every failing function fills a struct
 * auth_status (what failed, the service's words, the remedy) that the
 * caller shows its own way.
 *
 * Thread safety: none needed (used at start-up); the struct auth, http and
 * graph it creates are thread-safe as documented in their headers.
 * Errors: 0 or -errno.
 */
#ifndef M365_CONN_H
#define M365_CONN_H

#include <stdbool.h>

#include "auth/auth.h"
#include "config/config.h"
#include "graph/graph.h"
#include "http/http.h"
#include "util/buf.h"

/* An opened connection.  Zero it (or let conn_load() do it) before use. */
struct conn {
	struct conf_conn conn; /* the connection file */
	struct auth_cert *cert; /* certificate credential, or NULL */
	struct buf secret; /* secret credential (wiped on close) */
	struct http *http; /* the token traffic's client */
	struct auth *auth; /* token provider: auth_token_get() */
	struct buf scope; /* RESOURCE/.default */
	struct http *graph_http; /* the Graph traffic's client, or NULL */
	struct graph *graph; /* Graph client, or NULL */
};

/* What conn_open() does besides loading and signing in. */
struct conn_options {
	const char *config_dir; /* NULL: conf_dir(false) */
	int propagation_s; /* as in struct auth_config */
	/* settings of a separate http client for the Graph traffic
	 * (retries, stall timeout; its ca_file is replaced by the
	 * connection's); NULL: Graph shares the token traffic's client */
	const struct http_config *graph_http;
	bool no_sign_in; /* do not get a token at once */
};

/**
 * Load connection @name from @dir (NULL: conf_dir(false)) into @c (zeroed
 * first).  Returns 0 or -errno (-EINVAL: not a valid name, -ENOENT: no
 * such connection) with @st saying what failed and the remedy.
 */
int conn_load(const char *dir, const char *name, struct conn *c,
	      struct auth_status *st);

/**
 * Read the credential of @c->conn into @c (secret or certificate, PEM or
 * PFX; nothing if already read), with the 0600 checks.  Returns 0 or
 * -errno; @st says what failed.
 */
int conn_credential(struct conn *c, struct auth_status *st);

/**
 * Start an http client with the CA file of @conf (relative paths resolved
 * as conf_path() does) and the other settings of @base (may be NULL:
 * defaults, with 4 retries).  Caller owns *@out.  Returns 0 or -errno.
 */
int conn_http_new(const struct conf_conn *conf, const struct http_config *base,
		  struct http **out);

/**
 * Read the credential (conn_credential()), start @c->http and create
 * @c->auth (@propagation_s as in struct auth_config).  No request is made
 * yet.  Returns 0 or -errno; @st says what failed.
 */
int conn_auth_open(struct conn *c, int propagation_s, struct auth_status *st);

/**
 * Create @c->graph for @c->auth's tokens over a client of its own with
 * settings @hc (NULL: over @c->http).  Returns 0 or -errno; @st says what
 * failed.
 */
int conn_graph_open(struct conn *c, const struct http_config *hc,
		    struct auth_status *st);

/**
 * Get a token now, so that a wrong credential fails before any work.
 * Returns 0 or -errno; @st is "cannot sign in with connection 'NAME'"
 * with the service's words and the remedy.
 */
int conn_sign_in(struct conn *c, struct auth_status *st);

/**
 * All of it: conn_load(), conn_auth_open(), conn_graph_open() and (unless
 * @o->no_sign_in) conn_sign_in().  @o may be NULL (defaults).  Caller owns
 * *@out (free with conn_free()).  Returns 0 or -errno, *@out NULL and @st
 * saying what failed and the remedy.
 */
int conn_open(const char *name, const struct conn_options *o, struct conn **out,
	      struct auth_status *st);

/** Free what the conn_*() functions created (@c->conn stays).  Idempotent. */
void conn_close(struct conn *c);

/** conn_close() and free @c (from conn_open()).  NULL is fine. */
void conn_free(struct conn *c);

#endif
