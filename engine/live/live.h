/*
 * live - the bounded on-disk block cache behind MOUNT/live/ (no FUSE here;
 * fs/live.c maps live/ onto Graph and this cache).
 *
 * An object (a file's content at one cTag, a message's MIME) is named by
 * a key string chosen by the caller ("f/<drive>/<item>/<cTag>"): a change
 * of the content gives a new key, so a cached copy is never served for a
 * changed file.  Each object is one sparse file in the cache directory
 * (REPO/cache/live/), filled in units of LIVE_UNIT bytes as they are
 * read; which units are present is kept in memory only (the directory is
 * emptied when the cache is opened).  Reads fetch the missing units they
 * need through a callback: a random read fetches only the units it
 * covers; a sequential one (it starts where the previous read of the
 * object ended) starts a stream: one background fetch from there to the
 * end of the object (one ranged request), consumed as the reader advances.
 * A stream keeps at most about as many bytes ahead of its reader as the
 * reader has read since the stream began (LIVE_WINDOW_MIN at first, at
 * most LIVE_WINDOW_MAX), and stops when its reader pauses for
 * LIVE_STREAM_IDLE_MS, when it meets units that are there or coming, and
 * when the cache is freed; a later sequential read starts another one.
 * When no background fetch is possible, a sequential read fetches a window
 * that grows fourfold up to LIVE_WINDOW_MAX itself.  Two readers of one
 * missing unit cause one fetch: the second waits for the first.
 *
 * Objects of unknown size (messages: Graph does not say how large the
 * MIME is) are fetched whole by the first read.
 *
 * The cache holds at most about @cap bytes: whole objects are evicted,
 * least recently used first (never one being read).  At most LIVE_FILES_MAX
 * objects (one open fd each) are kept.
 *
 * Thread safety: every function may be called from any number of threads
 * at once on one struct live_cache; one internal mutex, never held while
 * fetching or reading data.
 * Errors: 0 or -errno; a fetch callback's error is returned as is.
 */
#ifndef M365_LIVE_H
#define M365_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define LIVE_UNIT	    (256u << 10) /* bytes of one cache unit */
#define LIVE_WINDOW_MIN	    (4u << 20) /* first sequential window */
#define LIVE_WINDOW_MAX	    (64u << 20) /* largest sequential window */
#define LIVE_STREAM_IDLE_MS 2000 /* a stream stops when its reader pauses */
#define LIVE_FILES_MAX	    512 /* objects (and fds) kept at once */
#define LIVE_SIZE_UNKNOWN   UINT64_MAX

struct live_cache;

struct live_progress;

/*
 * How the cache gets bytes of an object.  fetch: fetch bytes [@off, @off +
 * @len) (@len 0: all of it, from @off 0, size unknown) and write them into
 * @fd at the same offsets (pwrite; a retry may write them again); call
 * live_progress() as bytes arrive (readers waiting for them go on) and
 * stop with its error when it returns one (a stream nobody reads any
 * more); *@got receives the bytes written; returns 0 or -errno.  dup/free copy
 * and free @ctx for a fetch that runs on a background thread (read-ahead);
 * dup NULL: no background fetches.
 */
struct live_fetcher {
	int (*fetch)(void *ctx, int fd, uint64_t off, uint64_t len,
		     uint64_t *got, struct live_progress *p);
	void *(*dup)(const void *ctx);
	void (*free)(void *ctx);
	void *ctx;
};

/**
 * Tell the cache that the first @done bytes of the range a fetch was
 * asked for are written.  @p may be NULL (then nothing happens).  A
 * stream's fetch may wait here for its reader.  Returns 0 (go on), or
 * -ECANCELED: the rest is not wanted, end the fetch with that error.
 */
int live_progress(struct live_progress *p, uint64_t done);

#define LIVE_BG_MAX 4 /* background read-ahead fetches at once */

/**
 * Open the cache in directory @dir (created 0700; files in it are
 * removed) holding about @cap bytes.  Caller owns *@out, free with
 * live_cache_free().  Returns 0, -ENOMEM or -errno of the directory.
 */
int live_cache_new(const char *dir, uint64_t cap, struct live_cache **out);

/** Wait for background fetches, remove the cache's files and free @c (no
 * read may run).  NULL fine. */
void live_cache_free(struct live_cache *c);

/**
 * Read up to @len bytes at @off of object @key (@size bytes, or
 * LIVE_SIZE_UNKNOWN) into @out, fetching what is missing with @f.  A
 * sequential read fetches what it needs itself and the rest of its window
 * on a background thread (when @f can be copied).  Returns the bytes read
 * (0 at or past the end) or -errno.
 */
ssize_t live_cache_read(struct live_cache *c, const char *key, uint64_t size,
			void *out, size_t len, uint64_t off,
			const struct live_fetcher *f);

/**
 * The size of object @key when the cache knows it (a message fetched
 * once): 0 and *@size, or -ENOENT.
 */
int live_cache_size(struct live_cache *c, const char *key, uint64_t *size);

struct live_cache_stats {
	uint64_t bytes; /* bytes held */
	uint64_t objects;
	uint64_t fetches; /* fetch callbacks run */
	uint64_t streams; /* of them: streams */
	uint64_t fetched; /* bytes they wrote */
	uint64_t hits; /* reads served without a fetch */
	uint64_t evicted; /* objects evicted */
};

/** Copy the counters of @c into @st. */
void live_cache_stats_get(struct live_cache *c, struct live_cache_stats *st);

#endif
