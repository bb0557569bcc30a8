/*
 * m365-snapshot internals shared by its source files.
 * Thread safety: none (the tool's main thread).
 */
#ifndef M365_SNAPSHOT_TOOL_H
#define M365_SNAPSHOT_TOOL_H

#include "graph/graph.h"
#include "http/http.h"

struct conn;

/* Exit codes of m365-snapshot (documented in --help and the man page). */
#define EXIT_PARTIAL 3 /* snapshot committed with per-item errors */
#define EXIT_LOCKED  4 /* another writer holds the repository */

struct tool_conn {
	struct conn *conn; /* connection, credential, token provider */
	struct graph *graph; /* conn->graph, on its own http client */
	unsigned services; /* of the connection */
};

/**
 * Open connection @name (conn_open()) with the Graph traffic on an http
 * client of its own (@hc: settings, may be NULL; its ca_file is taken
 * from the connection); a token is fetched once to fail early.  Errors
 * are reported to the user.
 * Returns 0 or -errno (then @tc is empty).
 */
int tool_connect(const char *name, const struct http_config *hc,
		 struct tool_conn *tc);

/** Free what tool_connect() built.  Fine on an empty @tc. */
void tool_disconnect(struct tool_conn *tc);

#endif
