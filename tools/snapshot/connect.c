/*
 * A connection (NAME.conf) for m365-snapshot: conn_open() with a Graph
 * client of its own (the snapshot's retries and stall timeout), errors
 * reported to the user.
 */
#include <string.h>

#include "common/cli.h"
#include "common/conn.h"
#include "conn/conn.h"
#include "snapshot/tool.h"

int tool_connect(const char *name, const struct http_config *hcfg,
		 struct tool_conn *tc)
{
	static const struct http_config defaults = { 0 };
	struct conn_options o = { .graph_http = hcfg ? hcfg : &defaults };
	struct auth_status st = { 0 };
	int rc;

	memset(tc, 0, sizeof(*tc));
	rc = conn_open(name, &o, &tc->conn, &st);
	if (rc < 0) {
		cli_conn_report(&st);
		return rc;
	}
	tc->graph = tc->conn->graph;
	tc->services = tc->conn->conn.services ? tc->conn->conn.services
					       : CONF_SVC_ALL;
	return 0;
}

void tool_disconnect(struct tool_conn *tc)
{
	conn_free(tc->conn);
	memset(tc, 0, sizeof(*tc));
}
