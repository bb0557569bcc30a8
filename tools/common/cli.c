#include "common/cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

static const char *prog = "m365";

void cli_init(const char *name)
{
	const char *dbg = getenv("M365_DEBUG");

	prog = name;
	log_init(name, dbg && *dbg ? LOG_DEBUG : LOG_WARNING);
}

const char *cli_prog(void)
{
	return prog;
}

/* One write() per message so that threads never interleave. */
static void say(const char *prefix1, const char *prefix2, const char *fmt,
		va_list ap)
{
	struct buf b = BUF_INIT;

	if (prefix1)
		buf_addf(&b, "%s: ", prefix1);
	buf_adds(&b, prefix2);
	buf_vaddf(&b, fmt, ap);
	while (b.len && b.data[b.len - 1] == '\n')
		buf_truncate(&b, b.len - 1);
	buf_addch(&b, '\n');
	fflush(stdout);
	util_write_all(STDERR_FILENO, b.data, b.len);
	buf_release(&b);
}

void cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(prog, "error: ", fmt, ap);
	va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(prog, "warning: ", fmt, ap);
	va_end(ap);
}

void cli_hint(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(NULL, "hint: ", fmt, ap);
	va_end(ap);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(prog, "error: ", fmt, ap);
	va_end(ap);
	if (cmd)
		cli_hint("see '%s %s --help'", prog, cmd);
	else
		cli_hint("see '%s --help'", prog);
	return CLI_EXIT_USAGE;
}

void cli_print_help(FILE *f, const char *usage, const struct cli_opt *opts)
{
	fprintf(f, "usage: %s\n", usage);
	if (!opts || !opts->name)
		return;
	fprintf(f, "\noptions:\n");
	for (; opts->name; opts++) {
		char left[64];
		int n = 0;

		if (opts->key > 0 && opts->key < 256)
			n = snprintf(left, sizeof(left), "-%c, ", opts->key);
		else
			n = snprintf(left, sizeof(left), "    ");
		snprintf(left + n, sizeof(left) - (size_t)n, "--%s%s%s",
			 opts->name, opts->arg ? " " : "",
			 opts->arg ? opts->arg : "");
		if (strlen(left) > 26)
			fprintf(f, "  %s\n  %-26s %s\n", left, "", opts->help);
		else
			fprintf(f, "  %-26s %s\n", left, opts->help);
	}
	fprintf(f, "  -h, --help                 show this help\n");
}

static const struct cli_opt *find_long(const struct cli_opt *opts,
				       const char *name, size_t len)
{
	for (; opts && opts->name; opts++)
		if (strlen(opts->name) == len &&
		    !strncmp(opts->name, name, len))
			return opts;
	return NULL;
}

static const struct cli_opt *find_short(const struct cli_opt *opts, int c)
{
	for (; opts && opts->name; opts++)
		if (opts->key == c)
			return opts;
	return NULL;
}

int cli_parse(int argc, char **argv, const char *cmd, const char *usage,
	      const struct cli_opt *opts, cli_opt_fn fn, void *ctx, int *npos)
{
	int i, pos = 0, rc;
	bool dashdash = false;

	for (i = 1; i < argc; i++) {
		char *a = argv[i];
		const struct cli_opt *o = NULL;
		const char *val = NULL;

		if (dashdash || a[0] != '-' || !a[1]) {
			argv[pos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			dashdash = true;
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			cli_print_help(stdout, usage, opts);
			return -1;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			o = find_long(opts, a + 2, len);
			if (!o)
				return cli_usage(cmd, "unknown option '%.*s'",
						 (int)len + 2, a);
			if (eq && !o->arg)
				return cli_usage(cmd,
						 "option '--%s' takes no value",
						 o->name);
			if (eq)
				val = eq + 1;
		} else {
			o = find_short(opts, (unsigned char)a[1]);
			if (!o)
				return cli_usage(cmd, "unknown option '-%c'",
						 a[1]);
			if (a[2] && !o->arg)
				return cli_usage(cmd,
						 "option '-%c' takes no value",
						 a[1]);
			if (a[2])
				val = a + 2;
		}
		if (o->arg && !val) {
			if (i + 1 >= argc)
				return cli_usage(
					cmd, "option '--%s' needs a value (%s)",
					o->name, o->arg);
			val = argv[++i];
		}
		rc = fn(ctx, o, val);
		if (rc)
			return rc;
	}
	*npos = pos;
	return 0;
}

static int bad_value(const char *s, const char *name, const char *why)
{
	cli_error("invalid value '%s' for --%s: %s", s, name, why);
	return CLI_EXIT_USAGE;
}

int cli_parse_u64(const char *s, const char *name, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return bad_value(s ? s : "", name, "not a number");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return bad_value(s, name, "not a number");
	if (v > max)
		return bad_value(s, name, "too large");
	*out = v;
	return 0;
}

/* A number followed by one optional unit letter from @units. */
static int parse_unit(const char *s, const char *name, const char *units,
		      const uint64_t *mult, const char *what, uint64_t *out)
{
	unsigned long long v;
	uint64_t m = 1;
	char *end;
	const char *u;

	if (!s || !*s || *s == '-' || *s == '+' || *s < '0' || *s > '9')
		return bad_value(s ? s : "", name, what);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return bad_value(s, name, "too large");
	if (*end) {
		u = strchr(units, *end);
		if (!u || end[1])
			return bad_value(s, name, what);
		m = mult[u - units];
	}
	if (m && v > UINT64_MAX / m)
		return bad_value(s, name, "too large");
	*out = v * m;
	return 0;
}

int cli_parse_duration(const char *s, const char *name, uint64_t *sec)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400, 604800 };

	return parse_unit(s, name, "smhdw", mult,
			  "expected a duration such as 90s, 15m, 2h, 7d", sec);
}

int cli_parse_size(const char *s, const char *name, uint64_t *bytes)
{
	static const uint64_t mult[] = {
		1,	    1ULL << 10, 1ULL << 20, 1ULL << 30, 1ULL << 40,
		1ULL << 10, 1ULL << 20, 1ULL << 30, 1ULL << 40,
	};

	return parse_unit(s, name, "BKMGTkmgt", mult,
			  "expected a size such as 512K, 10M, 2G", bytes);
}

static void strip_newline(struct buf *b)
{
	if (b->len && b->data[b->len - 1] == '\n')
		buf_truncate(b, b->len - 1);
	if (b->len && b->data[b->len - 1] == '\r')
		buf_truncate(b, b->len - 1);
}

int cli_secret_from_file(const char *path, const char *what, struct buf *out)
{
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		cli_error("cannot open %s file '%s': %s", what, path,
			  strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		cli_error("cannot read %s file '%s': %s", what, path,
			  strerror(-rc));
		return rc;
	}
	close(fd);
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		cli_error("%s file '%s' is readable by other users (mode %04o)",
			  what, path, (unsigned)(st.st_mode & 07777));
		cli_hint("run 'chmod 600 %s'", path);
		return -EPERM;
	}
	rc = util_read_file(path, out, 64 * 1024);
	if (rc < 0) {
		cli_error("cannot read %s file '%s': %s", what, path,
			  rc == -E2BIG ? "larger than 64 KiB" : strerror(-rc));
		return rc;
	}
	strip_newline(out);
	if (!out->len) {
		cli_error("%s file '%s' is empty", what, path);
		return -ENODATA;
	}
	return 0;
}

/* Read one line from @fd into @out, echo off when it is a terminal. */
static int read_line_noecho(int fd, const char *prompt, struct buf *out)
{
	struct termios old, quiet;
	bool tty = isatty(fd);
	int rc = 0;
	char c;

	if (tty && prompt)
		util_write_all(STDERR_FILENO, prompt, strlen(prompt));
	if (tty && tcgetattr(fd, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	} else {
		tty = false;
	}
	for (;;) {
		ssize_t k = read(fd, &c, 1);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			rc = -errno;
			break;
		}
		if (k == 0 || c == '\n')
			break;
		if (out->len >= 64 * 1024) {
			rc = -E2BIG;
			break;
		}
		rc = buf_addch(out, c);
		if (rc < 0)
			break;
	}
	if (tty)
		tcsetattr(fd, TCSAFLUSH, &old);
	strip_newline(out);
	if (!rc && !out->len)
		rc = -ENODATA;
	return rc;
}

int cli_secret_from_stdin(const char *prompt, const char *what, struct buf *out)
{
	int rc;

	rc = read_line_noecho(STDIN_FILENO, prompt, out);
	if (rc == -ENODATA)
		cli_error("no %s on standard input", what);
	else if (rc < 0)
		cli_error("cannot read %s from standard input: %s", what,
			  strerror(-rc));
	return rc;
}

int cli_secret_prompt(const char *prompt, struct buf *out)
{
	int fd, rc;

	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -ENXIO;
	rc = read_line_noecho(fd, prompt, out);
	close(fd);
	return rc;
}

void cli_secret_wipe(struct buf *b)
{
	if (b->alloc)
		explicit_bzero(b->data, b->alloc);
	buf_release(b);
}

int cli_json_print(const cJSON *j)
{
	char *s = cJSON_Print(j);
	int rc;

	if (!s)
		return -ENOMEM;
	rc = printf("%s\n", s) < 0 ? -EIO : 0;
	if (fflush(stdout) == EOF)
		rc = -EIO;
	cJSON_free(s);
	return rc;
}

int cli_json_str(cJSON *obj, const char *key, const char *s)
{
	cJSON *v = s ? cJSON_AddStringToObject(obj, key, s)
		     : cJSON_AddNullToObject(obj, key);

	return v ? 0 : -ENOMEM;
}

int cli_json_num(cJSON *obj, const char *key, double v)
{
	return cJSON_AddNumberToObject(obj, key, v) ? 0 : -ENOMEM;
}

int cli_json_bool(cJSON *obj, const char *key, bool v)
{
	return cJSON_AddBoolToObject(obj, key, v) ? 0 : -ENOMEM;
}

bool cli_isatty(int fd)
{
	return isatty(fd) == 1;
}

void cli_progress_init(struct cli_progress *p)
{
	memset(p, 0, sizeof(*p));
	p->tty = cli_isatty(STDERR_FILENO) && !getenv("M365_NO_PROGRESS");
	p->start_ms = util_mono_ms();
}

void cli_progress_update(struct cli_progress *p, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	int64_t now;
	va_list ap;

	if (!p->tty)
		return;
	now = util_mono_ms();
	if (p->shown && now - p->last_ms < 200)
		return;
	p->last_ms = now;
	buf_adds(&b, "\r\033[K");
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	util_write_all(STDERR_FILENO, b.data, b.len);
	buf_release(&b);
	p->shown = true;
}

void cli_progress_clear(struct cli_progress *p)
{
	if (p->tty && p->shown)
		util_write_all(STDERR_FILENO, "\r\033[K", 4);
	p->shown = false;
}

void cli_progress_done(struct cli_progress *p, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	cli_progress_clear(p);
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	buf_addch(&b, '\n');
	util_write_all(STDERR_FILENO, b.data, b.len);
	buf_release(&b);
}

int64_t cli_progress_elapsed_ms(const struct cli_progress *p)
{
	return util_mono_ms() - p->start_ms;
}

char *cli_human_bytes(uint64_t n, char *out, size_t size)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, size, "%llu B", (unsigned long long)n);
	else
		snprintf(out, size, "%.1f %s", v, units[u]);
	return out;
}

char *cli_human_duration(uint64_t sec, char *out, size_t size)
{
	unsigned long long h = sec / 3600, m = sec / 60 % 60, s = sec % 60;

	if (h)
		snprintf(out, size, "%lluh%02llum%02llus", h, m, s);
	else if (m)
		snprintf(out, size, "%llum%02llus", m, s);
	else
		snprintf(out, size, "%llus", s);
	return out;
}
