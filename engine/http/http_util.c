/*
 * http_util.c - the pure helpers of http.h: status mapping, Retry-After,
 * URL escaping and origins.  No libcurl state here.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"
#include "util/log.h"

int http_status_errno(long status)
{
	if (status >= 200 && status < 400)
		return 0;
	switch (status) {
	case 400:
	case 411:
	case 415:
	case 422:
		return -EINVAL;
	case 401:
		return -EACCES;
	case 403:
		return -EPERM;
	case 404:
	case 410:
		return -ENOENT;
	case 405:
	case 501:
		return -EOPNOTSUPP;
	case 408:
	case 504:
		return -ETIMEDOUT;
	case 409:
	case 412:
		return -EEXIST;
	case 413:
		return -EFBIG;
	case 416:
		return -ERANGE;
	case 423:
		return -EBUSY;
	case 429:
	case 503:
	case 509:
		return -EAGAIN;
	case 507:
		return -ENOSPC;
	default:
		break;
	}
	if (status >= 400 && status < 500)
		return -EINVAL;
	return -EIO;
}

static const char *const months[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

static int month_index(const char *m)
{
	for (int i = 0; i < 12; i++)
		if (!strncasecmp(m, months[i], 3))
			return i;
	return -1;
}

/* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", RFC 850 "Sunday,
 * 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6 08:49:37 1994". */
static int parse_http_date(const char *s, int64_t *out)
{
	char wd[16], mon[4];
	int d, y, hh, mm, ss, n = 0;
	struct tm tm = { 0 };
	time_t t;

	if (sscanf(s, "%15[A-Za-z], %d %3s %d %d:%d:%d GMT%n", wd, &d, mon, &y,
		   &hh, &mm, &ss, &n) == 7 &&
	    n > 0) {
	} else if (n = 0, sscanf(s, "%15[A-Za-z], %d-%3s-%d %d:%d:%d GMT%n", wd,
				 &d, mon, &y, &hh, &mm, &ss, &n) == 7 &&
				  n > 0) {
		if (y < 100)
			y += y < 70 ? 2000 : 1900;
	} else if (n = 0, sscanf(s, "%15[A-Za-z] %3s %d %d:%d:%d %d%n", wd, mon,
				 &d, &hh, &mm, &ss, &y, &n) == 7 &&
				  n > 0) {
	} else {
		return -EINVAL;
	}
	while (s[n] == ' ' || s[n] == '\t')
		n++;
	if (s[n])
		return -EINVAL;
	tm.tm_mon = month_index(mon);
	if (tm.tm_mon < 0 || d < 1 || d > 31 || hh < 0 || hh > 23 || mm < 0 ||
	    mm > 59 || ss < 0 || ss > 60 || y < 1970 || y > 9999)
		return -EINVAL;
	tm.tm_mday = d;
	tm.tm_year = y - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*out = (int64_t)t;
	return 0;
}

int http_retry_after_parse(const char *value, int64_t now, int64_t *ms)
{
	const char *p = value;
	int64_t when;
	double secs;
	char *end;

	if (!value)
		return -EINVAL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (isdigit((unsigned char)*p) || *p == '.') {
		errno = 0;
		secs = strtod(p, &end);
		if (end == p || errno == ERANGE || !isfinite(secs) || secs < 0)
			return -EINVAL;
		while (*end == ' ' || *end == '\t')
			end++;
		if (*end)
			return -EINVAL;
		if (secs * 1000.0 >= (double)HTTP_RETRY_AFTER_MAX_MS)
			*ms = HTTP_RETRY_AFTER_MAX_MS;
		else
			*ms = (int64_t)ceil(secs * 1000.0);
		return 0;
	}
	if (parse_http_date(p, &when) < 0)
		return -EINVAL;
	if (when <= now)
		*ms = 0;
	else if (when - now >= HTTP_RETRY_AFTER_MAX_MS / 1000)
		*ms = HTTP_RETRY_AFTER_MAX_MS;
	else
		*ms = (when - now) * 1000;
	return 0;
}

int http_escape(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = (const unsigned char *)s;
	int rc = 0;

	for (; *p && !rc; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' ||
		    *p == '~') {
			rc = buf_addch(out, *p);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			rc = buf_add(out, e, 3);
		}
	}
	return rc;
}

int http_url_origin(const char *url, char *out, size_t size)
{
	const char *p, *host, *end;
	size_t schemelen, hostlen, n;
	const char *defport;
	char tmp[512];

	if (!url)
		return -EINVAL;
	if (!strncasecmp(url, "https://", 8)) {
		schemelen = 5;
		defport = ":443";
	} else if (!strncasecmp(url, "http://", 7)) {
		schemelen = 4;
		defport = ":80";
	} else {
		return -EINVAL;
	}
	host = url + schemelen + 3;
	end = host + strcspn(host, "/?#");
	if (end == host)
		return -EINVAL;
	for (p = host; p < end; p++)
		if (*p == '@' || *p == '\\' || (unsigned char)*p <= ' ')
			return -EINVAL;
	hostlen = (size_t)(end - host);
	if (hostlen >= strlen(defport) &&
	    !strncmp(end - strlen(defport), defport, strlen(defport)))
		hostlen -= strlen(defport);
	if (hostlen == 0)
		return -EINVAL;
	n = schemelen + 3 + hostlen;
	if (n + 1 > sizeof(tmp))
		return -ENAMETOOLONG;
	for (size_t i = 0; i < schemelen + 3; i++)
		tmp[i] = (char)tolower((unsigned char)url[i]);
	for (size_t i = 0; i < hostlen; i++)
		tmp[schemelen + 3 + i] = (char)tolower((unsigned char)host[i]);
	tmp[n] = '\0';
	if (n + 1 > size)
		return -ENAMETOOLONG;
	memcpy(out, tmp, n + 1);
	return 0;
}

bool http_url_same_origin(const char *a, const char *b)
{
	char oa[512], ob[512];

	if (http_url_origin(a, oa, sizeof(oa)) < 0 ||
	    http_url_origin(b, ob, sizeof(ob)) < 0)
		return false;
	return !strcmp(oa, ob);
}
