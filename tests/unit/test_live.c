/*
 * Unit tests of engine/live: the block cache behind live/.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "live/live.h"
#include "util/buf.h"
#include "util/util.h"

static unsigned char byte_at(uint64_t off)
{
	return (unsigned char)((off * 7 + off / 4096) % 251);
}

struct fake {
	uint64_t size; /* of the object */
	int fetches;
	uint64_t bytes;
	uint64_t last_off, last_len;
	int fail; /* fail the next N fetches with -EAGAIN */
	unsigned delay_ms;
	pthread_mutex_t lock;
};

static int fake_fetch(void *ctx, int fd, uint64_t off, uint64_t len,
		      uint64_t *got, struct live_progress *pr)
{
	struct fake *f = ctx;
	unsigned char buf[8192];
	uint64_t end, pos;
	size_t i, n;

	pthread_mutex_lock(&f->lock);
	f->fetches++;
	f->last_off = off;
	f->last_len = len;
	if (f->fail) {
		f->fail--;
		pthread_mutex_unlock(&f->lock);
		return -EAGAIN;
	}
	pthread_mutex_unlock(&f->lock);
	if (f->delay_ms)
		usleep(f->delay_ms * 1000);
	end = len ? off + len : f->size;
	for (pos = off; pos < end; pos += n) {
		n = end - pos < sizeof(buf) ? (size_t)(end - pos) : sizeof(buf);
		for (i = 0; i < n; i++)
			buf[i] = byte_at(pos + i);
		if (pwrite(fd, buf, n, (off_t)pos) != (ssize_t)n)
			return -EIO;
		pthread_mutex_lock(&f->lock);
		f->bytes += n;
		pthread_mutex_unlock(&f->lock);
		if (live_progress(pr, pos + n - off) < 0) {
			*got = pos + n - off;
			return -ECANCELED;
		}
	}
	*got = end - off;
	return 0;
}

/* The fake is shared by background fetches (it has its own lock). */
static void *fake_dup(const void *ctx)
{
	return (void *)ctx;
}

static void fake_free(void *ctx)
{
	(void)ctx;
}

#define FETCHER(f)                                                             \
	(&(struct live_fetcher){ fake_fetch, fake_dup, fake_free, f })
#define FETCHER_SYNC(f) (&(struct live_fetcher){ fake_fetch, NULL, NULL, f })

static char dir[] = "/tmp/m365-test-live-XXXXXX";

static bool same(const unsigned char *p, size_t n, uint64_t off)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != byte_at(off + i))
			return false;
	return true;
}

/* Read object @key of @f from start to end, @chunk bytes a read: all of
 * it, and right? */
static bool read_all(struct live_cache *c, const char *key, struct fake *f,
		     size_t chunk)
{
	unsigned char *buf = malloc(chunk);
	uint64_t off;
	ssize_t n = 0;
	bool ok = buf != NULL;

	for (off = 0; ok && off < f->size; off += (uint64_t)n) {
		n = live_cache_read(c, key, f->size, buf, chunk, off,
				    FETCHER(f));
		ok = n > 0 && same(buf, (size_t)n, off);
	}
	free(buf);
	return ok && off == f->size;
}

static void test_random_read_fetches_one_unit(void)
{
	struct live_cache *c = NULL;
	struct fake f = { .size = 60u << 20,
			  .lock = PTHREAD_MUTEX_INITIALIZER };
	unsigned char buf[4096];
	ssize_t n;

	CHECK_EQ(live_cache_new(dir, 64u << 20, &c), 0);
	n = live_cache_read(c, "f/a", f.size, buf, sizeof(buf),
			    (30u << 20) + 1000, FETCHER(&f));
	CHECK_EQ(n, 4096);
	CHECK(same(buf, sizeof(buf), (30u << 20) + 1000));
	CHECK_EQ(f.fetches, 1);
	CHECK_EQ(f.bytes, LIVE_UNIT);
	CHECK_EQ(f.last_off % LIVE_UNIT, 0);
	/* again: from the cache */
	n = live_cache_read(c, "f/a", f.size, buf, sizeof(buf),
			    (30u << 20) + 1000, FETCHER(&f));
	CHECK_EQ(n, 4096);
	CHECK_EQ(f.fetches, 1);
	/* past the end: nothing, no fetch */
	CHECK_EQ(live_cache_read(c, "f/a", f.size, buf, sizeof(buf), f.size,
				 FETCHER(&f)),
		 0);
	CHECK_EQ(f.fetches, 1);
	live_cache_free(c);
}

static void test_sequential_reads_use_large_windows(void)
{
	struct live_cache *c = NULL;
	struct fake f = { .size = (20u << 20) + 123,
			  .lock = PTHREAD_MUTEX_INITIALIZER };
	struct live_cache_stats st;

	CHECK_EQ(live_cache_new(dir, 64u << 20, &c), 0);
	CHECK(read_all(c, "f/seq", &f, 128 << 10));
	CHECK_EQ(f.bytes, f.size); /* nothing twice */
	/* one stream to the end of the object: one request */
	CHECK_EQ(f.fetches, 1);
	CHECK_EQ(f.last_off, 0);
	CHECK_EQ(f.last_len, f.size);
	live_cache_stats_get(c, &st);
	CHECK_EQ(st.streams, 1);
	live_cache_free(c);
}

/* A sequential reader that stops: its stream stays about LIVE_WINDOW_MIN
 * ahead, then ends; reading on starts a stream where it stopped. */
static void test_stream_follows_its_reader(void)
{
	struct live_cache *c = NULL;
	struct fake f = { .size = 100u << 20,
			  .lock = PTHREAD_MUTEX_INITIALIZER };
	unsigned char *buf = malloc(128 << 10);
	struct live_cache_stats st;
	uint64_t bytes;
	int64_t t0;

	CHECK_EQ(live_cache_new(dir, 256u << 20, &c), 0);
	CHECK_EQ(live_cache_read(c, "f/head", f.size, buf, 128 << 10, 0,
				 FETCHER(&f)),
		 128 << 10);
	CHECK(same(buf, 128 << 10, 0));
	/* the stream waits for the reader, then gives up */
	t0 = util_mono_ms();
	for (;;) {
		live_cache_stats_get(c, &st);
		if (st.fetches == 1 || util_mono_ms() - t0 > 20000)
			break;
		usleep(50 * 1000);
	}
	CHECK_EQ(st.fetches, 1);
	CHECK(util_mono_ms() - t0 >= LIVE_STREAM_IDLE_MS / 2);
	pthread_mutex_lock(&f.lock);
	bytes = f.bytes;
	pthread_mutex_unlock(&f.lock);
	CHECK(bytes >= LIVE_WINDOW_MIN);
	CHECK(bytes <= LIVE_WINDOW_MIN + 2 * LIVE_UNIT);
	/* what it brought is served; reading past it starts a new stream */
	CHECK_EQ(bytes % LIVE_UNIT, 0);
	CHECK_EQ(live_cache_read(c, "f/head", f.size, buf, 128 << 10,
				 bytes - (64 << 10), FETCHER(&f)),
		 128 << 10);
	CHECK(same(buf, 128 << 10, bytes - (64 << 10)));
	CHECK_EQ(f.fetches, 2);
	CHECK_EQ(f.last_off, bytes);
	/* freeing the cache ends a waiting stream at once */
	t0 = util_mono_ms();
	live_cache_free(c);
	CHECK(util_mono_ms() - t0 < LIVE_STREAM_IDLE_MS);
	free(buf);
}

/* A random read in the middle does not start a stream; a sequential read
 * later passes over the units it brought. */
static void test_stream_passes_over_present_units(void)
{
	struct live_cache *c = NULL;
	struct fake f = { .size = 6u << 20, .lock = PTHREAD_MUTEX_INITIALIZER };
	unsigned char buf[4096];

	CHECK_EQ(live_cache_new(dir, 64u << 20, &c), 0);
	CHECK_EQ(live_cache_read(c, "f/mid", f.size, buf, 4096, 3u << 20,
				 FETCHER(&f)),
		 4096);
	CHECK_EQ(f.fetches, 1);
	CHECK(read_all(c, "f/mid", &f, 64 << 10));
	CHECK_EQ(f.fetches, 2);
	live_cache_free(c);
}

static void test_unknown_size_is_fetched_whole(void)
{
	struct live_cache *c = NULL;
	struct fake f = { .size = 100000, .lock = PTHREAD_MUTEX_INITIALIZER };
	unsigned char buf[1000];
	uint64_t size = 0;

	CHECK_EQ(live_cache_new(dir, 64u << 20, &c), 0);
	CHECK_EQ(live_cache_size(c, "m/x", &size), -ENOENT);
	CHECK_EQ(live_cache_read(c, "m/x", LIVE_SIZE_UNKNOWN, buf, sizeof(buf),
				 50000, FETCHER(&f)),
		 1000);
	CHECK(same(buf, sizeof(buf), 50000));
	CHECK_EQ(f.last_len, 0);
	CHECK_EQ(live_cache_size(c, "m/x", &size), 0);
	CHECK_EQ(size, 100000);
	CHECK_EQ(live_cache_read(c, "m/x", LIVE_SIZE_UNKNOWN, buf, sizeof(buf),
				 99500, FETCHER(&f)),
		 500);
	CHECK_EQ(f.fetches, 1);
	live_cache_free(c);
}

static void test_errors_and_eviction(void)
{
	struct live_cache *c = NULL;
	struct fake f = { .size = 2u << 20, .lock = PTHREAD_MUTEX_INITIALIZER };
	struct live_cache_stats st;
	unsigned char buf[100];
	char key[32];
	int i;

	CHECK_EQ(live_cache_new(dir, 3u << 20, &c), 0);
	f.fail = 1;
	CHECK_EQ(live_cache_read(c, "f/e", f.size, buf, sizeof(buf), 0,
				 FETCHER_SYNC(&f)),
		 -EAGAIN);
	CHECK_EQ(live_cache_read(c, "f/e", f.size, buf, sizeof(buf), 0,
				 FETCHER_SYNC(&f)),
		 100);
	CHECK(same(buf, sizeof(buf), 0));
	/* whole 2 MiB objects into a 3 MiB cache: old ones go */
	for (i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "f/%d", i);
		CHECK_EQ(live_cache_read(c, key, f.size, buf, sizeof(buf), 0,
					 FETCHER_SYNC(&f)),
			 100);
		CHECK_EQ(live_cache_read(c, key, f.size, buf, sizeof(buf),
					 (1u << 20) + 5, FETCHER_SYNC(&f)),
			 100);
	}
	live_cache_stats_get(c, &st);
	CHECK(st.bytes <= 3u << 20);
	CHECK(st.evicted >= 3);
	CHECK(st.objects <= 2);
	live_cache_free(c);
}

struct reader {
	struct live_cache *c;
	struct fake *f;
	ssize_t n;
	bool ok;
};

static void *read_one(void *arg)
{
	struct reader *r = arg;
	unsigned char buf[4096];

	r->n = live_cache_read(r->c, "f/t", r->f->size, buf, sizeof(buf), 5000,
			       FETCHER(r->f));
	r->ok = r->n == 4096 && same(buf, sizeof(buf), 5000);
	return NULL;
}

static void test_concurrent_readers_fetch_once(void)
{
	struct live_cache *c = NULL;
	struct fake f = { .size = 10u << 20,
			  .delay_ms = 100,
			  .lock = PTHREAD_MUTEX_INITIALIZER };
	struct reader r[4];
	pthread_t t[4];
	int i;

	CHECK_EQ(live_cache_new(dir, 64u << 20, &c), 0);
	for (i = 0; i < 4; i++) {
		r[i] = (struct reader){ c, &f, 0, false };
		pthread_create(&t[i], NULL, read_one, &r[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(r[i].ok);
	}
	CHECK_EQ(f.fetches, 1);
	live_cache_free(c);
}

int main(void)
{
	if (!mkdtemp(dir))
		return CHECK_SKIP;
	RUN(test_random_read_fetches_one_unit);
	RUN(test_sequential_reads_use_large_windows);
	RUN(test_stream_follows_its_reader);
	RUN(test_stream_passes_over_present_units);
	RUN(test_unknown_size_is_fetched_whole);
	RUN(test_errors_and_eviction);
	RUN(test_concurrent_readers_fetch_once);
	rmdir(dir);
	return check_done();
}
