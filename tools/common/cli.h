/*
 * cli - helpers shared by the command-line tools (m365-connect,
 * m365-snapshot): messages for people, option parsing, reading secrets
 * without echo, --json output and progress lines on a terminal.
 *
 * Messages go to stderr as
 *	PROG: error: what failed
 *	hint: what to do
 * (lower case, names in 'quotes', no final stop; see STYLE.md §3).
 * Exit codes: CLI_EXIT_OK, CLI_EXIT_FAIL, CLI_EXIT_USAGE; tools may add
 * their own above these (documented in their man page).
 *
 * Thread safety: cli_init() once at start; the message functions may be
 * called from any thread (one write() per message); a struct
 * cli_progress belongs to one thread.
 * Errors: 0 or -errno.
 */
#ifndef M365_CLI_H
#define M365_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/buf.h"

struct cJSON;

#define CLI_EXIT_OK    0
#define CLI_EXIT_FAIL  1
#define CLI_EXIT_USAGE 2

/**
 * Set the program name used in messages (@prog is borrowed, e.g.
 * "m365-connect") and initialise the engine log with the same name at
 * LOG_WARNING (LOG_DEBUG when $M365_DEBUG is set).
 */
void cli_init(const char *prog);

/** The program name given to cli_init(). */
const char *cli_prog(void);

/** "PROG: error: MSG" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** "PROG: warning: MSG" on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** "hint: MSG" on stderr: the remedy after a cli_error()/cli_warn(). */
void cli_hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Report a usage mistake: "PROG: error: MSG" plus a hint to run
 * "PROG @cmd --help" (@cmd may be NULL).  Returns CLI_EXIT_USAGE so a
 * command can `return cli_usage(...)`.
 */
int cli_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Options.  A table of struct cli_opt ends with an entry whose name is
 * NULL.  Each option has a long name, an optional short letter (0: none),
 * whether it takes an argument (then @arg names it in --help) and a help
 * line.  cli_parse() calls @fn(ctx, opt, arg) for each option found, in
 * order (@arg is NULL for flags); @fn returns 0 or a CLI_EXIT_* code to
 * stop.  "--help"/"-h" is handled by cli_parse(): it prints @usage and the
 * table to stdout and returns -1 (the caller exits with CLI_EXIT_OK).
 */
struct cli_opt {
	const char *name; /* long name without "--" */
	int key; /* short letter or any value >= 256 */
	const char *arg; /* argument name in --help, NULL for a flag */
	const char *help;
};

typedef int (*cli_opt_fn)(void *ctx, const struct cli_opt *opt,
			  const char *arg);

/**
 * Parse argv[1..argc) of a (sub)command against @opts.  Options and
 * positional arguments may be mixed; "--" ends the options.  Positional
 * arguments are moved to the front: on return argv[0..*npos) are they.
 * Returns 0, -1 after --help, or a CLI_EXIT_* code (a usage error has
 * been reported).  @cmd names the command in messages ("add").
 */
int cli_parse(int argc, char **argv, const char *cmd, const char *usage,
	      const struct cli_opt *opts, cli_opt_fn fn, void *ctx, int *npos);

/** Print "usage: ..." and the option table (used by --help). */
void cli_print_help(FILE *f, const char *usage, const struct cli_opt *opts);

/**
 * Parse a non-negative integer option value at most @max.  On error
 * reports "invalid value 'S' for --NAME: ..." and returns CLI_EXIT_USAGE.
 */
int cli_parse_u64(const char *s, const char *name, uint64_t max, uint64_t *out);

/**
 * Parse a duration "90", "90s", "15m", "2h", "7d", "2w" into seconds.
 * Errors as cli_parse_u64().
 */
int cli_parse_duration(const char *s, const char *name, uint64_t *sec);

/** Parse a size "512", "64K", "10M", "2G", "1T" (powers of 1024). */
int cli_parse_size(const char *s, const char *name, uint64_t *bytes);

/*
 * Secrets.  They are read from a file or stdin, never from argv, and
 * stored in a buffer the caller wipes with cli_secret_wipe().
 */

/**
 * Read a secret from @path (a 0600 file; group/world readable files are
 * refused with -EPERM and a message naming the chmod remedy).  One
 * trailing newline (LF or CRLF) is removed.  @what names it in messages
 * ("client secret").  Errors are reported with cli_error()/cli_hint().
 * Returns 0 or -errno.
 */
int cli_secret_from_file(const char *path, const char *what, struct buf *out);

/**
 * Read one line of secret from stdin.  When stdin is a terminal, @prompt
 * is printed on stderr and echo is turned off while typing.  Returns 0,
 * -ENODATA (empty) or -errno; errors are reported.
 */
int cli_secret_from_stdin(const char *prompt, const char *what,
			  struct buf *out);

/**
 * Ask for a secret on the controlling terminal (/dev/tty) with echo off.
 * Returns -ENXIO when there is no terminal (report: use a file instead).
 */
int cli_secret_prompt(const char *prompt, struct buf *out);

/** Overwrite the bytes of @b with zeros and release it. */
void cli_secret_wipe(struct buf *b);

/*
 * --json output.  Tools build a cJSON tree and print it once at the end,
 * on stdout, followed by a newline.
 */

/** Print @j (formatted) and a newline to stdout. Returns 0 or -errno. */
int cli_json_print(const struct cJSON *j);

/** Add a string member, or null when @s is NULL. Returns 0 or -ENOMEM. */
int cli_json_str(struct cJSON *obj, const char *key, const char *s);

/** Add a number member. Returns 0 or -ENOMEM. */
int cli_json_num(struct cJSON *obj, const char *key, double v);

/** Add a boolean member. Returns 0 or -ENOMEM. */
int cli_json_bool(struct cJSON *obj, const char *key, bool v);

/*
 * Progress on a terminal.  On a TTY the line is rewritten in place at most
 * every 200 ms; when stderr is not a terminal (timers, logs) updates are
 * silent and only cli_progress_done() prints its line.
 */
struct cli_progress {
	bool tty; /* stderr is a terminal */
	bool shown; /* a line is on the screen */
	int64_t last_ms; /* monotonic time of the last update shown */
	int64_t start_ms;
};

/** Start a progress display on stderr. */
void cli_progress_init(struct cli_progress *p);

/** Show the formatted status line (rate-limited, TTY only). */
void cli_progress_update(struct cli_progress *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/** Clear the status line (TTY) so that a message can be printed. */
void cli_progress_clear(struct cli_progress *p);

/** Clear the status line and print the final formatted line (always). */
void cli_progress_done(struct cli_progress *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/** Milliseconds since cli_progress_init(). */
int64_t cli_progress_elapsed_ms(const struct cli_progress *p);

/** Format @n bytes as "1.5 MiB" into @out. Returns @out. */
char *cli_human_bytes(uint64_t n, char *out, size_t size);

/** Format @sec seconds as "1h02m03s" / "4m05s" / "6s" into @out. */
char *cli_human_duration(uint64_t sec, char *out, size_t size);

/** True when @fd is a terminal. */
bool cli_isatty(int fd);

#endif
