/* Unit tests of engine/conn: opening a connection (no request made). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "conn/conn.h"
#include "util/util.h"

static char dir[64];

static void put(const char *name, const char *text, mode_t mode)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

/* Connection "work" with a secret file (relative to the directory). */
static void setup(mode_t secret_mode, const char *secret)
{
	put("work.conf",
	    "tenant = contoso.onmicrosoft.com\n"
	    "client_id = 01234567-89ab-cdef-0123-456789abcdef\n"
	    "credential = secret\n"
	    "secret_file = work.secret\n"
	    "cloud = custom\n"
	    "login_url = https://127.0.0.1:9\n"
	    "graph_url = https://127.0.0.1:9\n",
	    0600);
	put("work.secret", secret, secret_mode);
}

static void test_bad_name_and_missing(void)
{
	struct conn c;
	struct auth_status st;

	CHECK_EQ(conn_load(dir, "../etc/x", &c, &st), -EINVAL);
	CHECK(strstr(st.what, "'../etc/x' is not a valid connection name"));
	CHECK_EQ(conn_load(dir, "nope", &c, &st), -ENOENT);
	CHECK(strstr(st.what, "no connection 'nope'") != NULL);
	CHECK(strstr(st.hint, "m365-connect") != NULL);
}

static void test_secret_read_and_checked(void)
{
	struct conn c;
	struct auth_status st;

	setup(0600, "s3cret\n");
	CHECK_EQ(conn_load(dir, "work", &c, &st), 0);
	CHECK_EQ(conn_credential(&c, &st), 0);
	CHECK_EQ(c.secret.len, 6);
	CHECK(c.secret.data && !memcmp(c.secret.data, "s3cret", 6));
	conn_close(&c);
	CHECK_EQ(c.secret.len, 0);

	/* readable by others: refused with the remedy */
	setup(0644, "s3cret\n");
	CHECK_EQ(conn_load(dir, "work", &c, &st), 0);
	CHECK(conn_credential(&c, &st) < 0);
	CHECK(st.what[0] != 0);
	CHECK(strstr(st.hint, "chmod") != NULL);
	conn_close(&c);

	/* empty */
	setup(0600, "\n");
	CHECK_EQ(conn_load(dir, "work", &c, &st), 0);
	CHECK_EQ(conn_credential(&c, &st), -ENODATA);
	CHECK(strstr(st.what, "it is empty") != NULL);
	conn_close(&c);
}

static void test_open_without_sign_in(void)
{
	static const struct http_config hc = { .low_speed_time_s = 20 };
	struct conn_options o = { .config_dir = dir, .no_sign_in = true };
	struct auth_status st;
	struct conn *c = NULL;

	setup(0600, "s3cret\n");
	CHECK_EQ(conn_open("work", &o, &c, &st), 0);
	CHECK(c && c->http && c->auth && c->graph);
	CHECK(c && !c->graph_http); /* shares the token traffic's client */
	CHECK(c && c->scope.len > 9 &&
	      !strcmp(c->scope.data + c->scope.len - 9, "/.default"));
	conn_free(c);

	o.graph_http = &hc;
	CHECK_EQ(conn_open("work", &o, &c, &st), 0);
	CHECK(c && c->graph_http && c->graph_http != c->http);
	conn_free(c);

	/* nothing is left behind on failure */
	setup(0644, "s3cret\n");
	c = (struct conn *)&o; /* must be reset */
	CHECK(conn_open("work", &o, &c, &st) < 0);
	CHECK(c == NULL);
	CHECK(st.what[0] != 0);
}

static void test_sign_in_failure_says_which_connection(void)
{
	struct conn_options o = { .config_dir = dir };
	struct auth_status st;
	struct conn *c = NULL;

	/* nothing listens on port 9: the token request fails */
	setup(0600, "s3cret\n");
	CHECK(conn_open("work", &o, &c, &st) < 0);
	CHECK(c == NULL);
	CHECK(strstr(st.what, "cannot sign in with connection 'work'") != NULL);
}

int main(void)
{
	char cmd[96];

	snprintf(dir, sizeof(dir), "/tmp/m365-test-conn.XXXXXX");
	if (!mkdtemp(dir))
		return CHECK_SKIP;
	RUN(test_bad_name_and_missing);
	RUN(test_secret_read_and_checked);
	RUN(test_open_without_sign_in);
	RUN(test_sign_in_failure_says_which_connection);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return check_done();
}
