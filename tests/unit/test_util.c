#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "util/buf.h"
#include "util/util.h"

static void test_buf(void)
{
	struct buf b = BUF_INIT;
	char *p;
	size_t n;

	CHECK_STR(b.data, "");
	CHECK_EQ(buf_adds(&b, "hello"), 0);
	CHECK_EQ(buf_addf(&b, " %d", 42), 0);
	CHECK_STR(b.data, "hello 42");
	buf_truncate(&b, 5);
	CHECK_STR(b.data, "hello");
	p = buf_detach(&b, &n);
	CHECK_EQ(n, 5);
	CHECK_STR(p, "hello");
	CHECK_STR(b.data, "");
	free(p);

	buf_init(&b, 4);
	CHECK_EQ(buf_adds(&b, "abcd"), 0);
	CHECK_EQ(buf_addch(&b, 'e'), -E2BIG);
	CHECK_STR(b.data, "abcd");
	buf_release(&b);
	buf_release(NULL);
}

static void test_guid(void)
{
	char g[37];

	CHECK(util_guid_valid("535fb089-9ff3-47b6-9bfb-4f1264799865"));
	CHECK(util_guid_valid("535FB089-9FF3-47B6-9BFB-4F1264799865"));
	CHECK(!util_guid_valid("535fb089-9ff3-47b6-9bfb-4f126479986"));
	CHECK(!util_guid_valid("535fb0899-ff3-47b6-9bfb-4f1264799865"));
	CHECK(!util_guid_valid("535fb089-9ff3-47b6-9bfb-4f12647998651"));
	CHECK(!util_guid_valid("535fb089-9ff3-47b6-9bfb-4f126479986g"));
	CHECK(!util_guid_valid(""));
	CHECK(!util_guid_valid(NULL));
	CHECK_EQ(util_guid_new(g), 0);
	CHECK(util_guid_valid(g));
	CHECK_EQ(g[14], '4');
}

static void test_b64(void)
{
	struct buf b = BUF_INIT;
	const unsigned char bin[] = { 0xfb, 0xff, 0x00, 0x10 };

	CHECK_EQ(util_b64_encode(&b, "abc", 3, false), 0);
	CHECK_STR(b.data, "YWJj");
	buf_reset(&b);
	CHECK_EQ(util_b64_encode(&b, "ab", 2, false), 0);
	CHECK_STR(b.data, "YWI=");
	buf_reset(&b);
	CHECK_EQ(util_b64_encode(&b, bin, sizeof(bin), true), 0);
	CHECK_STR(b.data, "-_8AEA");
	buf_reset(&b);
	CHECK_EQ(util_b64_encode(&b, bin, sizeof(bin), false), 0);
	CHECK_STR(b.data, "+/8AEA==");
	buf_reset(&b);
	CHECK_EQ(util_b64_decode(&b, "+/8AEA==", 8), 0);
	CHECK_EQ(b.len, 4);
	CHECK(!memcmp(b.data, bin, 4));
	buf_reset(&b);
	CHECK_EQ(util_b64_decode(&b, "-_8AEA", 6), 0);
	CHECK(b.len == 4 && !memcmp(b.data, bin, 4));
	buf_reset(&b);
	CHECK_EQ(util_b64_decode(&b, "YW*j", 4), -EINVAL);
	CHECK_EQ(util_b64_decode(&b, "YWJjZ", 5), -EINVAL);
	CHECK_EQ(b.len, 0);
	buf_release(&b);
}

static void test_hex(void)
{
	unsigned char v[3] = { 0x01, 0xab, 0xff }, w[3];
	char h[7];

	util_hex(h, v, 3, true);
	CHECK_STR(h, "01ABFF");
	CHECK_EQ(util_unhex(w, 3, "01abFF"), 0);
	CHECK(!memcmp(v, w, 3));
	CHECK_EQ(util_unhex(w, 3, "01abF"), -EINVAL);
}

static void test_time(void)
{
	int64_t s;
	int32_t ns;
	char out[32];

	CHECK_EQ(util_time_parse("2017-09-14T12:34:53Z", &s, &ns), 0);
	CHECK_EQ(s, 1505392493);
	CHECK_EQ(ns, 0);
	CHECK_EQ(util_time_parse("2017-09-14T12:34:53.912Z", &s, &ns), 0);
	CHECK_EQ(ns, 912000000);
	CHECK_EQ(util_time_parse("2017-09-14T12:34:53.9123456+00:00", &s, &ns),
		 0);
	CHECK_EQ(ns, 912345600);
	CHECK_EQ(util_time_parse("2017-09-14 12:34:53", &s, &ns), 0);
	CHECK_EQ(util_time_parse("2017-13-14T12:34:53Z", &s, &ns), -EINVAL);
	CHECK_EQ(util_time_parse("2017-09-14T12:34Z", &s, &ns), -EINVAL);
	CHECK_EQ(util_time_parse("2017-09-14T12:34:53Zjunk", &s, &ns), -EINVAL);
	CHECK_EQ(util_time_parse("", &s, &ns), -EINVAL);
	util_time_format(1505392493, out, sizeof(out));
	CHECK_STR(out, "2017-09-14T12:34:53Z");
}

/* How many pages of the first @len bytes of @fd are in the page cache. */
static size_t resident(int fd, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE),
	       n = (len + page - 1) / page;
	unsigned char *v = malloc(n);
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	size_t in = 0;

	if (v && m != MAP_FAILED && !mincore(m, len, v))
		for (size_t i = 0; i < n; i++)
			in += v[i] & 1;
	if (m != MAP_FAILED)
		munmap(m, len);
	free(v);
	return in;
}

/*
 * util_willneed() brings a whole file into the page cache, also one
 * larger than what the kernel reads for a single POSIX_FADV_WILLNEED
 * (the device's readahead): it asks in pieces.
 */
static void test_willneed(void)
{
	char path[] = "/var/tmp/test_util.XXXXXX";
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len, pages, in = 0;
	uint64_t piece;
	char *b = calloc(1, 1 << 20);
	int fd = mkstemp(path);

	CHECK(fd >= 0 && b);
	if (fd < 0 || !b) {
		free(b);
		return;
	}
	piece = util_willneed_max(path);
	CHECK(piece >= 128u << 10);
	len = (size_t)(piece < (32u << 20) ? piece : 32u << 20) * 3 + 12345;
	pages = (len + page - 1) / page;
	for (size_t off = 0; off < len; off += 1 << 20) {
		memset(b, (int)(off >> 20) + 1, 1 << 20);
		CHECK_EQ(util_write_all(fd, b,
					len - off < (1u << 20) ? len - off
							       : 1u << 20),
			 0);
	}
	CHECK_EQ(fsync(fd), 0);
	CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	CHECK(resident(fd, len) < pages / 2); /* out of the cache */
	util_willneed(fd, 0, len, piece);
	for (int i = 0; i < 500 && (in = resident(fd, len)) < pages; i++)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	CHECK_EQ(in, pages);
	close(fd);
	unlink(path);
	free(b);
}

int main(void)
{
	RUN(test_buf);
	RUN(test_guid);
	RUN(test_b64);
	RUN(test_hex);
	RUN(test_time);
	RUN(test_willneed);
	return check_done();
}
