/*
 * log - leveled logging to stderr (journald under systemd).
 *
 * Levels are syslog's.  The level is checked before the message is
 * formatted, and each line is written with a single write() so that threads
 * never interleave.  Never log tokens, secrets, mail or file contents.
 *
 * Thread safety: all functions may be called from any thread; log_init()
 * and log_set_level() are meant to be called once at start-up.
 */
#ifndef M365_LOG_H
#define M365_LOG_H

#include <stdarg.h>
#include <syslog.h>

extern int log_level; /* messages above this level are dropped */

/**
 * Set the program name shown as prefix ("m365fs: ") and the level
 * (LOG_ERR .. LOG_DEBUG).  @ident is borrowed and must stay valid.
 */
void log_init(const char *ident, int level);

/** Change the level at run time. */
void log_set_level(int level);

/** Format and write one line at @level (no trailing newline needed). */
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_at(lvl, ...)                                                       \
	do {                                                                   \
		if ((lvl) <= log_level)                                        \
			log_msg((lvl), __VA_ARGS__);                           \
	} while (0)
#define log_err(...)   log_at(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_at(LOG_WARNING, __VA_ARGS__)
#define log_info(...)  log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif
