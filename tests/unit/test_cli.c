/*
 * Unit tests of tools/common/cli.c.  The tools' shared objects are not part
 * of libm365.a, so the source is compiled into this program directly.
 */
#include "common/cli.c"

#include <sys/stat.h>

#include "check.h"

struct seen {
	int n;
	int keys[8];
	const char *args[8];
};

static int record(void *ctx, const struct cli_opt *o, const char *arg)
{
	struct seen *s = ctx;

	if (s->n < 8) {
		s->keys[s->n] = o->key;
		s->args[s->n] = arg;
	}
	s->n++;
	return 0;
}

static const struct cli_opt opts[] = {
	{ "tenant", 't', "ID", "tenant id" },
	{ "json", 256, NULL, "json output" },
	{ "secret-file", 257, "FILE", "secret" },
	{ NULL, 0, NULL, NULL },
};

static void test_parse_mixed(void)
{
	char a0[] = "add", a1[] = "--tenant", a2[] = "T1", a3[] = "name",
	     a4[] = "--json", a5[] = "--secret-file=/x", a6[] = "-tT2",
	     a7[] = "--", a8[] = "--json";
	char *argv[] = { a0, a1, a2, a3, a4, a5, a6, a7, a8 };
	struct seen s = { 0 };
	int npos = -1;

	CHECK_EQ(cli_parse(9, argv, "add", "add NAME", opts, record, &s, &npos),
		 0);
	CHECK_EQ(npos, 2);
	CHECK_STR(argv[0], "name");
	CHECK_STR(argv[1], "--json");
	CHECK_EQ(s.n, 4);
	CHECK_EQ(s.keys[0], 't');
	CHECK_STR(s.args[0], "T1");
	CHECK_EQ(s.keys[1], 256);
	CHECK(s.args[1] == NULL);
	CHECK_STR(s.args[2], "/x");
	CHECK_STR(s.args[3], "T2");
}

static void test_parse_errors(void)
{
	char a0[] = "add", u[] = "--nope", t[] = "--tenant", j[] = "--json=1";
	char *argv1[] = { a0, u };
	char *argv2[] = { a0, t };
	char *argv3[] = { a0, j };
	struct seen s = { 0 };
	int npos;

	CHECK_EQ(cli_parse(2, argv1, "add", "add", opts, record, &s, &npos),
		 CLI_EXIT_USAGE);
	CHECK_EQ(cli_parse(2, argv2, "add", "add", opts, record, &s, &npos),
		 CLI_EXIT_USAGE);
	CHECK_EQ(cli_parse(2, argv3, "add", "add", opts, record, &s, &npos),
		 CLI_EXIT_USAGE);
	CHECK_EQ(s.n, 0);
}

static void test_numbers(void)
{
	uint64_t v = 0;

	CHECK_EQ(cli_parse_u64("42", "n", 100, &v), 0);
	CHECK_EQ(v, 42);
	CHECK_EQ(cli_parse_u64("101", "n", 100, &v), CLI_EXIT_USAGE);
	CHECK_EQ(cli_parse_u64("-1", "n", 100, &v), CLI_EXIT_USAGE);
	CHECK_EQ(cli_parse_u64("4x", "n", 100, &v), CLI_EXIT_USAGE);
	CHECK_EQ(cli_parse_duration("15m", "d", &v), 0);
	CHECK_EQ(v, 900);
	CHECK_EQ(cli_parse_duration("2w", "d", &v), 0);
	CHECK_EQ(v, 1209600);
	CHECK_EQ(cli_parse_duration("90", "d", &v), 0);
	CHECK_EQ(v, 90);
	CHECK_EQ(cli_parse_duration("5y", "d", &v), CLI_EXIT_USAGE);
	CHECK_EQ(cli_parse_duration("m", "d", &v), CLI_EXIT_USAGE);
	CHECK_EQ(cli_parse_size("10M", "s", &v), 0);
	CHECK_EQ(v, 10 << 20);
	CHECK_EQ(cli_parse_size("99999999999T", "s", &v), CLI_EXIT_USAGE);
}

static void test_human(void)
{
	char b[32];

	CHECK_STR(cli_human_bytes(512, b, sizeof(b)), "512 B");
	CHECK_STR(cli_human_bytes(1536, b, sizeof(b)), "1.5 KiB");
	CHECK_STR(cli_human_duration(3723, b, sizeof(b)), "1h02m03s");
	CHECK_STR(cli_human_duration(65, b, sizeof(b)), "1m05s");
}

static void test_secret_file(void)
{
	char path[] = "/tmp/test_cli_XXXXXX";
	struct buf b = BUF_INIT;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ(write(fd, "s3cr3t\r\n", 8), 8);
	close(fd);
	chmod(path, 0600);
	CHECK_EQ(cli_secret_from_file(path, "client secret", &b), 0);
	CHECK_STR(b.data, "s3cr3t");
	cli_secret_wipe(&b);
	CHECK_EQ(b.len, 0);
	chmod(path, 0644);
	CHECK_EQ(cli_secret_from_file(path, "client secret", &b), -EPERM);
	CHECK_EQ(b.len, 0);
	unlink(path);
	CHECK_EQ(cli_secret_from_file(path, "client secret", &b), -ENOENT);
}

int main(void)
{
	cli_init("test_cli");
	RUN(test_parse_mixed);
	RUN(test_parse_errors);
	RUN(test_numbers);
	RUN(test_human);
	RUN(test_secret_file);
	return check_done();
}
