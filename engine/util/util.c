#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

int util_random(void *p, size_t n)
{
	unsigned char *c = p;

	while (n > 0) {
		ssize_t k = getrandom(c, n, 0);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

int util_guid_new(char out[37])
{
	unsigned char r[16];
	char hex[33];
	int rc = util_random(r, sizeof(r));

	if (rc < 0)
		return rc;
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	util_hex(hex, r, sizeof(r), false);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
		 hex + 16, hex + 20);
	return 0;
}

bool util_guid_valid(const char *s)
{
	static const int dash[] = { 8, 13, 18, 23 };
	size_t i, d = 0;

	if (!s || strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		if (d < ARRAY_SIZE(dash) && (int)i == dash[d]) {
			if (s[i] != '-')
				return false;
			d++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

static const char b64_std[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int util_b64_encode(struct buf *out, const void *p, size_t n, bool url)
{
	const unsigned char *s = p;
	const char *a = url ? b64_url : b64_std;
	size_t i, o;
	int rc;

	rc = buf_grow(out, (n + 2) / 3 * 4);
	if (rc < 0)
		return rc;
	o = out->len;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 |
			     s[i + 2];
		out->data[o++] = a[v >> 18];
		out->data[o++] = a[(v >> 12) & 63];
		out->data[o++] = a[(v >> 6) & 63];
		out->data[o++] = a[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		out->data[o++] = a[v >> 18];
		out->data[o++] = a[(v >> 12) & 63];
		if (i + 1 < n)
			out->data[o++] = a[(v >> 6) & 63];
		else if (!url)
			out->data[o++] = '=';
		if (!url)
			out->data[o++] = '=';
	}
	out->len = o;
	out->data[o] = '\0';
	return 0;
}

static int b64_val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int util_b64_decode(struct buf *out, const char *s, size_t len)
{
	size_t start = out->len, i, pad = 0;
	uint32_t acc = 0;
	int bits = 0, rc;

	while (len > 0 && s[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	if (len % 4 == 1 || (pad && (len + pad) % 4))
		return -EINVAL;
	rc = buf_grow(out, len / 4 * 3 + 3);
	if (rc < 0)
		return rc;
	for (i = 0; i < len; i++) {
		int v = b64_val((unsigned char)s[i]);

		if (v < 0) {
			buf_truncate(out, start);
			return -EINVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->data[out->len++] = (char)((acc >> bits) & 0xff);
		}
	}
	out->data[out->len] = '\0';
	return 0;
}

void util_hex(char *out, const void *p, size_t n, bool upper)
{
	const char *d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[s[i] >> 4];
		out[2 * i + 1] = d[s[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int util_unhex(void *p, size_t n, const char *s)
{
	unsigned char *o = p;
	size_t i;

	for (i = 0; i < n; i++) {
		int hi = hexval((unsigned char)s[2 * i]);
		int lo = hi < 0 ? -1 : hexval((unsigned char)s[2 * i + 1]);

		if (lo < 0)
			return -EINVAL;
		o[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static int digits(const char **s, int n, int *out)
{
	int v = 0;

	while (n-- > 0) {
		if (!isdigit((unsigned char)**s))
			return -EINVAL;
		v = v * 10 + (**s - '0');
		(*s)++;
	}
	*out = v;
	return 0;
}

int util_time_parse(const char *s, int64_t *sec, int32_t *nsec)
{
	int Y, M, D, h, m, sc, ns = 0, scale = 100000000;
	struct tm tm = { 0 };
	int64_t t;

	if (!s || digits(&s, 4, &Y) || *s++ != '-' || digits(&s, 2, &M) ||
	    *s++ != '-' || digits(&s, 2, &D) ||
	    (*s != 'T' && *s != 't' && *s != ' '))
		return -EINVAL;
	s++;
	if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &m) ||
	    *s++ != ':' || digits(&s, 2, &sc))
		return -EINVAL;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		while (isdigit((unsigned char)*s)) {
			ns += (*s - '0') * scale;
			scale /= 10;
			s++;
		}
	}
	if (*s == 'Z' || *s == 'z')
		s++;
	else if (!strcmp(s, "+00:00") || !strcmp(s, "-00:00"))
		s += 6;
	if (*s)
		return -EINVAL;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sc > 60)
		return -EINVAL;
	tm.tm_year = Y - 1900;
	tm.tm_mon = M - 1;
	tm.tm_mday = D;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sc;
	t = (int64_t)timegm(&tm);
	*sec = t;
	if (nsec)
		*nsec = ns;
	return 0;
}

void util_time_format(int64_t sec, char *out, size_t size)
{
	time_t t = (time_t)sec;
	struct tm tm;

	if (!gmtime_r(&t, &tm) ||
	    !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, size, "1970-01-01T00:00:00Z");
}

int64_t util_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t util_mono_ms(void)
{
	return util_mono_ns() / 1000000;
}

void util_deadline_in(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int64_t util_now(void)
{
	return (int64_t)time(NULL);
}

int util_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t k = write(fd, c, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

int util_pread_all(int fd, void *p, size_t n, off_t off)
{
	char *c = p;

	while (n > 0) {
		ssize_t k = pread(fd, c, n, off);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EIO;
		c += k;
		n -= (size_t)k;
		off += k;
	}
	return 0;
}

#define WILLNEED_MIN (128u << 10) /* the kernel's default readahead */

uint64_t util_willneed_max(const char *path)
{
	static const char *const where[] = { "bdi", "../bdi" }; /* partitions */
	char sys[128];
	unsigned long kb = 0;
	struct stat st;

	if (stat(path, &st))
		return WILLNEED_MIN;
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]) && !kb; i++) {
		FILE *f;

		snprintf(sys, sizeof(sys),
			 "/sys/dev/block/%u:%u/%s/read_ahead_kb",
			 major(st.st_dev), minor(st.st_dev), where[i]);
		f = fopen(sys, "r");
		if (!f)
			continue;
		if (fscanf(f, "%lu", &kb) != 1)
			kb = 0;
		fclose(f);
	}
	return kb * 1024 > WILLNEED_MIN ? (uint64_t)kb * 1024 : WILLNEED_MIN;
}

void util_willneed(int fd, uint64_t off, uint64_t len, uint64_t piece)
{
	if (!piece)
		piece = WILLNEED_MIN;
	while (len) {
		uint64_t n = len < piece ? len : piece;

		if (posix_fadvise(fd, (off_t)off, (off_t)n,
				  POSIX_FADV_WILLNEED))
			return;
		off += n;
		len -= n;
	}
}

int util_read_file(const char *path, struct buf *out, size_t max)
{
	char tmp[65536];
	size_t start = out->len;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t k = read(fd, tmp, sizeof(tmp));

		if (k < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (k == 0)
			break;
		if (out->len - start + (size_t)k > max) {
			ret = -E2BIG;
			break;
		}
		ret = buf_add(out, tmp, (size_t)k);
		if (ret < 0)
			break;
	}
	close(fd);
	if (ret < 0)
		buf_truncate(out, start);
	return ret;
}

static int fsync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, ret = 0;

	if (!slash) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == path) {
		snprintf(dir, sizeof(dir), "/");
	} else {
		if ((size_t)(slash - path) >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int util_write_file_atomic(const char *path, const void *p, size_t n,
			   mode_t mode)
{
	char tmp[PATH_MAX];
	int fd = -1, ret;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
	    (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) < 0) {
		ret = -errno;
		goto out;
	}
	ret = util_write_all(fd, p, n);
	if (ret < 0)
		goto out;
	if (fsync(fd) < 0) {
		ret = -errno;
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		ret = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		ret = -errno;
		goto out;
	}
	return fsync_dir_of(path);
out:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return ret;
}

int util_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t i, n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, path, n + 1);
	for (i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		if (i < n)
			tmp[i] = '/';
	}
	return 0;
}
