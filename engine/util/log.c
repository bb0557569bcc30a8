#include "log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int log_level = LOG_WARNING;
static const char *log_ident = "m365";

void log_init(const char *ident, int level)
{
	if (ident)
		log_ident = ident;
	log_level = level;
}

void log_set_level(int level)
{
	log_level = level;
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

void log_vmsg(int level, const char *fmt, va_list ap)
{
	char line[4096];
	size_t n;
	int k;

	if (level > log_level)
		return;
	k = snprintf(line, sizeof(line), "%s: %s: ", log_ident,
		     level_name(level));
	if (k < 0)
		return;
	n = (size_t)k;
	if (n < sizeof(line)) {
		k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (k > 0)
			n += (size_t)k;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	while (n > 0 && line[n - 1] == '\n')
		n--;
	line[n++] = '\n';
	/* one write() per line; a short write to stderr is not retried */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
