/*
 * The daemon's connection (NAME.conf in conf_dir()): conn_open() with a
 * Graph client of its own whose stalled transfers are retried sooner.
 */
#include <errno.h>
#include <stdlib.h>

#include "conn/conn.h"
#include "restore/restore.h"

struct restore_conn {
	struct conn *conn;
};

int restore_conn_open(const char *name, struct restore_conn **out,
		      struct buf *why)
{
	/* a stalled upload fragment is retried (and resumed) sooner */
	static const struct http_config hc = { .low_speed_time_s = 20 };
	struct conn_options o = { .graph_http = &hc };
	struct auth_status st = { 0 };
	struct restore_conn *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	rc = conn_open(name, &o, &c->conn, &st);
	if (rc < 0) {
		buf_addf(why, "%s%s%s", st.what, st.hint[0] ? ": " : "",
			 st.hint);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

struct graph *restore_conn_graph(struct restore_conn *c)
{
	return c->conn->graph;
}

void restore_conn_free(struct restore_conn *c)
{
	if (!c)
		return;
	conn_free(c->conn);
	free(c);
}
