/*
 * live cache - sparse cache files filled unit by unit (see live.h).
 */
#include "live/live.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"

#define BUCKETS	  1024u
#define SEQ_UNITS (LIVE_WINDOW_MIN / LIVE_UNIT) /* "shortly after" */

enum { U_MISSING = 0, U_PRESENT, U_FETCHING };

struct lobj {
	char *key;
	uint64_t size; /* LIVE_SIZE_UNKNOWN until a whole fetch ended */
	unsigned char *unit; /* per unit: U_* */
	size_t nunits;
	int fd;
	uint64_t seq; /* file name */
	uint64_t bytes; /* bytes of present units */
	uint64_t window; /* current sequential window, bytes */
	int refs;
	bool whole; /* a whole fetch is running */
	struct live_progress *streams; /* streams of this object running */
	struct lobj *hnext, *lprev, *lnext;
};

struct live_cache {
	pthread_mutex_t lock;
	pthread_cond_t cv; /* units arrived or a fetch ended */
	char *dir;
	uint64_t cap;
	/* protected by lock: */
	struct lobj *bucket[BUCKETS];
	struct lobj lru; /* lru.lnext: most recent */
	uint64_t seq;
	unsigned bg; /* background fetches running */
	bool closing; /* live_cache_free(): streams stop */
	struct live_cache_stats st;
};

/*
 * One fetch in progress: units [next, end) are its own (U_FETCHING) or
 * already there.  A stream's end grows as its reader advances (under the
 * cache lock, by the stream or by the reader).
 */
struct live_progress {
	struct live_cache *c;
	struct lobj *o;
	uint64_t off; /* first byte of the fetch */
	size_t next, end; /* next unit to mark present; end of the run */
	bool stream; /* fetches to the end of the object, on o->streams */
	uint64_t rpos; /* stream: end of its reader's latest read */
	int64_t read_ms; /* stream: when that reader last advanced */
	struct live_progress *snext; /* o->streams */
};

static unsigned hash_key(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % BUCKETS;
}

static void obj_path(const struct live_cache *c, uint64_t seq, struct buf *out)
{
	buf_reset(out);
	buf_addf(out, "%s/%llu.obj", c->dir, (unsigned long long)seq);
}

/* Remove every file of @dir (ours from an earlier mount). */
static void empty_dir(const char *dir)
{
	struct buf p = BUF_INIT;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		buf_reset(&p);
		buf_addf(&p, "%s/%s", dir, de->d_name);
		if (p.data)
			unlink(p.data);
	}
	closedir(d);
	buf_release(&p);
}

int live_cache_new(const char *dir, uint64_t cap, struct live_cache **out)
{
	struct live_cache *c;
	int rc;

	*out = NULL;
	rc = util_mkdir_p(dir, 0700);
	if (rc < 0)
		return rc;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->dir = strdup(dir);
	if (!c->dir) {
		free(c);
		return -ENOMEM;
	}
	empty_dir(dir);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->cap = cap;
	c->lru.lnext = c->lru.lprev = &c->lru;
	*out = c;
	return 0;
}

static void obj_free(struct live_cache *c, struct lobj *o)
{
	struct buf p = BUF_INIT;

	if (o->fd >= 0)
		close(o->fd);
	obj_path(c, o->seq, &p);
	if (p.data)
		unlink(p.data);
	buf_release(&p);
	free(o->unit);
	free(o->key);
	free(o);
}

void live_cache_free(struct live_cache *c)
{
	struct lobj *o, *next;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	pthread_cond_broadcast(&c->cv);
	while (c->bg)
		pthread_cond_wait(&c->cv, &c->lock);
	pthread_mutex_unlock(&c->lock);
	for (o = c->lru.lnext; o != &c->lru; o = next) {
		next = o->lnext;
		obj_free(c, o);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cv);
	free(c->dir);
	free(c);
}

static void lru_unlink(struct lobj *o)
{
	o->lprev->lnext = o->lnext;
	o->lnext->lprev = o->lprev;
	o->lprev = o->lnext = o;
}

static void lru_front(struct live_cache *c, struct lobj *o)
{
	o->lnext = c->lru.lnext;
	o->lprev = &c->lru;
	c->lru.lnext->lprev = o;
	c->lru.lnext = o;
}

static struct lobj *find(struct live_cache *c, const char *key)
{
	struct lobj *o;

	for (o = c->bucket[hash_key(key)]; o; o = o->hnext)
		if (!strcmp(o->key, key))
			return o;
	return NULL;
}

static void unhash(struct live_cache *c, struct lobj *o)
{
	struct lobj **p = &c->bucket[hash_key(o->key)];

	while (*p && *p != o)
		p = &(*p)->hnext;
	if (*p)
		*p = o->hnext;
	lru_unlink(o);
	c->st.objects--;
	c->st.bytes -= o->bytes;
}

/* Set the size of @o and its unit table (lock held). */
static int obj_size(struct lobj *o, uint64_t size, unsigned char state)
{
	size_t n = (size_t)((size + LIVE_UNIT - 1) / LIVE_UNIT);

	o->unit = calloc(n ? n : 1, 1);
	if (!o->unit)
		return -ENOMEM;
	memset(o->unit, state, n);
	o->nunits = n;
	o->size = size;
	return 0;
}

/* The object of @key, referenced, created when missing (lock held). */
static int obj_get(struct live_cache *c, const char *key, uint64_t size,
		   struct lobj **out)
{
	struct lobj *o = find(c, key);
	struct buf p = BUF_INIT;
	unsigned h;
	int rc = 0;

	if (o) {
		lru_unlink(o);
		lru_front(c, o);
		o->refs++;
		*out = o;
		return 0;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->fd = -1;
	o->lprev = o->lnext = o;
	o->key = strdup(key);
	o->size = LIVE_SIZE_UNKNOWN;
	if (!o->key) {
		rc = -ENOMEM;
		goto fail;
	}
	if (size != LIVE_SIZE_UNKNOWN) {
		rc = obj_size(o, size, U_MISSING);
		if (rc < 0)
			goto fail;
	}
	o->seq = ++c->seq;
	obj_path(c, o->seq, &p);
	o->fd = p.data ? open(p.data, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0600)
		       : -1;
	if (o->fd < 0) {
		rc = p.data ? -errno : -ENOMEM;
		log_err("live: cannot create cache file '%s': %s",
			p.data ? p.data : "?", strerror(-rc));
		goto fail;
	}
	buf_release(&p);
	h = hash_key(key);
	o->hnext = c->bucket[h];
	c->bucket[h] = o;
	lru_front(c, o);
	c->st.objects++;
	o->refs = 1;
	*out = o;
	return 0;
fail:
	buf_release(&p);
	if (o->fd >= 0)
		close(o->fd);
	free(o->unit);
	free(o->key);
	free(o);
	return rc;
}

/* Evict unreferenced objects, oldest first, while over budget (lock
 * held); returns the list to free. */
static struct lobj *evict(struct live_cache *c)
{
	struct lobj *o, *prev, *gone = NULL;

	for (o = c->lru.lprev; o != &c->lru && (c->st.bytes > c->cap ||
						c->st.objects > LIVE_FILES_MAX);
	     o = prev) {
		prev = o->lprev;
		if (o->refs)
			continue;
		unhash(c, o);
		c->st.evicted++;
		o->hnext = gone;
		gone = o;
	}
	return gone;
}

static void obj_put(struct live_cache *c, struct lobj *o)
{
	struct lobj *gone, *next;

	pthread_mutex_lock(&c->lock);
	o->refs--;
	gone = evict(c);
	pthread_mutex_unlock(&c->lock);
	for (; gone; gone = next) {
		next = gone->hnext;
		obj_free(c, gone);
	}
}

/* Fetch all of @o (size unknown); lock held, dropped while fetching. */
static int fetch_whole(struct live_cache *c, struct lobj *o,
		       const struct live_fetcher *f)
{
	uint64_t got = 0;
	int rc;

	o->whole = true;
	pthread_mutex_unlock(&c->lock);
	rc = f->fetch(f->ctx, o->fd, 0, 0, &got, NULL);
	if (rc == 0 && ftruncate(o->fd, (off_t)got) < 0)
		rc = -errno;
	pthread_mutex_lock(&c->lock);
	o->whole = false;
	c->st.fetches++;
	if (rc == 0)
		rc = obj_size(o, got, U_PRESENT);
	if (rc == 0) {
		o->bytes = got;
		c->st.bytes += got;
		c->st.fetched += got;
	}
	pthread_cond_broadcast(&c->cv);
	return rc;
}

static uint64_t unit_bytes(const struct lobj *o, size_t i)
{
	uint64_t off = (uint64_t)i * LIVE_UNIT;

	return o->size - off < LIVE_UNIT ? o->size - off : LIVE_UNIT;
}

/* Mark units [p->next, upto) present (lock held). */
static void mark_present(struct live_progress *p, size_t upto)
{
	struct lobj *o = p->o;
	uint64_t b;

	for (; p->next < upto; p->next++) {
		if (o->unit[p->next] != U_FETCHING)
			continue;
		o->unit[p->next] = U_PRESENT;
		b = unit_bytes(o, p->next);
		o->bytes += b;
		p->c->st.bytes += b;
		p->c->st.fetched += b;
	}
	pthread_cond_broadcast(&p->c->cv);
}

/*
 * Give stream @p the units up to as far ahead of its reader as the reader
 * has read since the stream began (at least LIVE_WINDOW_MIN, at most
 * LIVE_WINDOW_MAX): missing units become its own, units already there are
 * passed over, one another fetch is bringing stops it (lock held).
 */
static void stream_claim(struct live_progress *p)
{
	struct lobj *o = p->o;
	uint64_t lead = p->rpos > p->off ? p->rpos - p->off : 0, lim;
	size_t ulim;

	if (lead < LIVE_WINDOW_MIN)
		lead = LIVE_WINDOW_MIN;
	if (lead > LIVE_WINDOW_MAX)
		lead = LIVE_WINDOW_MAX;
	lim = p->rpos + lead;
	ulim = lim >= o->size ? o->nunits
			      : (size_t)((lim + LIVE_UNIT - 1) / LIVE_UNIT);
	while (p->end < ulim && o->unit[p->end] != U_FETCHING) {
		if (o->unit[p->end] == U_MISSING)
			o->unit[p->end] = U_FETCHING;
		p->end++;
	}
}

/* A read of [@off, @end) of @o: the stream it follows goes on (lock held). */
static void streams_note(struct live_cache *c, struct lobj *o, uint64_t off,
			 uint64_t end)
{
	struct live_progress *p;

	for (p = o->streams; p; p = p->snext) {
		if (off < p->off ||
		    off > (uint64_t)p->end * LIVE_UNIT + LIVE_WINDOW_MIN ||
		    end <= p->rpos)
			continue;
		p->rpos = end;
		p->read_ms = util_mono_ms();
		stream_claim(p);
		pthread_cond_broadcast(&c->cv);
	}
}

int live_progress(struct live_progress *p, uint64_t done)
{
	struct live_cache *c;
	struct lobj *o;
	struct timespec ts;
	uint64_t end;
	size_t upto;
	int rc = 0;

	if (!p)
		return 0;
	c = p->c;
	o = p->o;
	end = p->off + done;
	if (!p->stream) {
		upto = end >= o->size ? p->end : (size_t)(end / LIVE_UNIT);
		if (upto > p->end)
			upto = p->end;
		if (upto <= p->next)
			return 0;
		pthread_mutex_lock(&c->lock);
		mark_present(p, upto);
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	pthread_mutex_lock(&c->lock);
	for (;;) {
		stream_claim(p);
		upto = end >= o->size ? p->end : (size_t)(end / LIVE_UNIT);
		if (upto > p->end)
			upto = p->end;
		if (upto > p->next)
			mark_present(p, upto);
		if (c->closing) {
			rc = -ECANCELED;
			break;
		}
		/* bytes of its own still to come, or all of it is its own */
		if (p->next < p->end || p->end >= o->nunits)
			break;
		/* the next unit is another fetch's, or the reader went away */
		if (o->unit[p->end] == U_FETCHING ||
		    util_mono_ms() - p->read_ms >= LIVE_STREAM_IDLE_MS) {
			rc = -ECANCELED;
			break;
		}
		/* far enough ahead of the reader: wait for it */
		util_deadline_in(&ts, 200);
		pthread_cond_timedwait(&c->cv, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/*
 * Run fetch @p of @o (its units marked U_FETCHING; a stream is on
 * o->streams) with @f and @ctx (lock not held; not held on return).
 * Units that did not arrive go back to missing.
 */
static int fetch_units(struct live_cache *c, struct lobj *o,
		       struct live_progress *p, const struct live_fetcher *f,
		       void *ctx)
{
	struct live_progress **pp;
	uint64_t end = (uint64_t)p->end * LIVE_UNIT, got = 0;
	size_t i;
	int rc;

	if (p->stream || end > o->size)
		end = o->size;
	rc = f->fetch(ctx, o->fd, p->off, end - p->off, &got, p);
	if (rc == 0 && got != end - p->off) {
		log_err("live: a download gave %llu bytes instead of %llu",
			(unsigned long long)got,
			(unsigned long long)(end - p->off));
		rc = -EIO;
	}
	if (rc == -ECANCELED && p->stream)
		rc = 0; /* a stream nobody needs any more */
	pthread_mutex_lock(&c->lock);
	c->st.fetches++;
	if (rc == 0 && p->stream && got == end - p->off) {
		/* it ran to the end: every byte after p->off is there */
		for (; p->end < o->nunits && o->unit[p->end] != U_FETCHING;
		     p->end++)
			if (o->unit[p->end] == U_MISSING)
				o->unit[p->end] = U_FETCHING;
	}
	if (rc == 0 && got == end - p->off)
		mark_present(p, p->end);
	for (i = p->next; i < p->end; i++)
		if (o->unit[i] == U_FETCHING)
			o->unit[i] = U_MISSING;
	for (pp = &o->streams; *pp; pp = &(*pp)->snext)
		if (*pp == p) {
			*pp = p->snext;
			break;
		}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

struct bgjob {
	struct live_cache *c;
	struct lobj *o; /* referenced */
	struct live_progress p;
	struct live_fetcher f; /* f.ctx: our copy */
};

static void *bg_main(void *arg)
{
	struct bgjob *j = arg;
	struct live_cache *c = j->c;

	fetch_units(c, j->o, &j->p, &j->f, j->f.ctx);
	j->f.free(j->f.ctx);
	obj_put(c, j->o);
	pthread_mutex_lock(&c->lock);
	c->bg--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->lock);
	free(j);
	return NULL;
}

/*
 * Run fetch @p (units marked U_FETCHING, or a stream to claim them) on a
 * background thread (lock held).  Returns false when that is not
 * possible: nothing changed, fetch the units yourself.
 */
static bool fetch_background(struct live_cache *c, struct lobj *o,
			     const struct live_progress *p,
			     const struct live_fetcher *f)
{
	pthread_attr_t attr;
	struct bgjob *j;
	pthread_t t;
	size_t i;
	int rc;

	if (!f->dup || !f->free || c->bg >= LIVE_BG_MAX)
		return false;
	j = calloc(1, sizeof(*j));
	if (!j)
		return false;
	*j = (struct bgjob){ c, o, *p, *f };
	j->f.ctx = f->dup(f->ctx);
	if (!j->f.ctx) {
		free(j);
		return false;
	}
	if (j->p.stream) {
		stream_claim(&j->p);
		j->p.snext = o->streams;
		o->streams = &j->p;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	o->refs++;
	c->bg++;
	rc = pthread_create(&t, &attr, bg_main, j);
	pthread_attr_destroy(&attr);
	if (rc == 0) {
		if (j->p.stream)
			c->st.streams++;
		return true;
	}
	o->refs--;
	c->bg--;
	if (j->p.stream) {
		o->streams = j->p.snext;
		for (i = j->p.next; i < j->p.end; i++)
			if (o->unit[i] == U_FETCHING)
				o->unit[i] = U_MISSING;
	}
	f->free(j->f.ctx);
	free(j);
	return false;
}

ssize_t live_cache_read(struct live_cache *c, const char *key, uint64_t size,
			void *out, size_t len, uint64_t off,
			const struct live_fetcher *f)
{
	struct lobj *o = NULL;
	struct live_progress wp;
	size_t u0, u1, i, b, e, wunits;
	bool fetched = false, seq;
	ssize_t ret;
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = obj_get(c, key, size, &o);
	if (rc < 0) {
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	while (o->size == LIVE_SIZE_UNKNOWN) {
		if (o->whole) {
			pthread_cond_wait(&c->cv, &c->lock);
			continue;
		}
		fetched = true;
		rc = fetch_whole(c, o, f);
		if (rc < 0)
			goto unlock;
	}
	if (off >= o->size || !len) {
		rc = 0;
		len = 0;
		goto unlock;
	}
	if (len > o->size - off)
		len = (size_t)(o->size - off);
	streams_note(c, o, off, off + len);
	u0 = (size_t)(off / LIVE_UNIT);
	u1 = (size_t)((off + len - 1) / LIVE_UNIT);
	/*
	 * Sequential: from the start, or shortly after units already read
	 * (the kernel's read-ahead requests may come out of order).
	 */
	seq = off == 0;
	for (i = u0 > SEQ_UNITS ? u0 - SEQ_UNITS : 0; !seq && i < u0; i++)
		seq = o->unit[i] != U_MISSING;
	for (i = u0; i <= u1;) {
		if (o->unit[i] == U_PRESENT) {
			i++;
			continue;
		}
		if (o->unit[i] == U_FETCHING) {
			pthread_cond_wait(&c->cv, &c->lock);
			continue;
		}
		fetched = true;
		/* a window starts right after what is there or coming */
		for (b = i; seq && b > 0 && o->unit[b - 1] == U_MISSING &&
			    i - b < SEQ_UNITS;
		     b--)
			;
		if (seq) {
			struct live_progress sp = {
				.c = c,
				.o = o,
				.off = (uint64_t)b * LIVE_UNIT,
				.next = b,
				.end = b,
				.stream = true,
				.rpos = off + len,
				.read_ms = util_mono_ms(),
			};

			if (fetch_background(c, o, &sp, f))
				continue;
		}
		if (seq) {
			o->window = o->window ? o->window * 4 : LIVE_WINDOW_MIN;
			if (o->window > LIVE_WINDOW_MAX)
				o->window = LIVE_WINDOW_MAX;
		} else {
			o->window = 0;
		}
		wunits = (size_t)(o->window / LIVE_UNIT);
		for (e = b; e < o->nunits && o->unit[e] == U_MISSING &&
			    (e <= u1 || e - b < wunits);
		     e++)
			o->unit[e] = U_FETCHING;
		/*
		 * A window goes to the background in one request: this read
		 * waits only for its own units (live_progress()).
		 */
		wp = (struct live_progress){ .c = c,
					     .o = o,
					     .off = (uint64_t)b * LIVE_UNIT,
					     .next = b,
					     .end = e };
		if (seq && e > u1 + 1 && fetch_background(c, o, &wp, f))
			continue;
		pthread_mutex_unlock(&c->lock);
		rc = fetch_units(c, o, &wp, f, f->ctx);
		pthread_mutex_lock(&c->lock);
		if (rc < 0)
			goto unlock;
	}
unlock:
	if (rc == 0 && !fetched)
		c->st.hits++;
	pthread_mutex_unlock(&c->lock);
	if (rc < 0) {
		obj_put(c, o);
		return rc;
	}
	ret = 0;
	if (len) {
		rc = util_pread_all(o->fd, out, len, (off_t)off);
		ret = rc < 0 ? rc : (ssize_t)len;
	}
	obj_put(c, o);
	return ret;
}

int live_cache_size(struct live_cache *c, const char *key, uint64_t *size)
{
	struct lobj *o;
	int rc = -ENOENT;

	pthread_mutex_lock(&c->lock);
	o = find(c, key);
	if (o && o->size != LIVE_SIZE_UNKNOWN) {
		*size = o->size;
		rc = 0;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

void live_cache_stats_get(struct live_cache *c, struct live_cache_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	pthread_mutex_unlock(&c->lock);
}
