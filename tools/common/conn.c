/* Reporting the opening of a connection for a tool (see conn.h). */
#include "common/conn.h"

#include <errno.h>
#include <string.h>

#include "common/cli.h"

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

int cli_conn_load(const char *dir, const char *name, struct conn *c)
{
	struct auth_status st;
	int rc;

	rc = conn_load(dir, name, c, &st);
	if (rc < 0)
		cli_conn_report(&st);
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
	int rc = conn_http_new(conn, NULL, out);

	if (rc < 0)
		cli_error("cannot start the HTTP client: %s", strerror(-rc));
	return rc;
}
