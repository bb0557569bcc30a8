/*
 * read.c - the read side: a bounded pool of pack descriptors, a sharded
 * cache of decompressed chunks, and random-access content reads.
 *
 * DESIGN: a read looks the chunk up in the cache (shard lock held only
 * for the hash lookup); on a miss it finds the chunk (pending rows, then
 * the index: a miss there is re-checked on every call, so chunks flushed
 * by another process become visible), borrows a pack descriptor from the
 * pool, reads the record with no lock held, verifies and decompresses
 * it, and inserts it into the cache.  A thread missing a chunk that
 * another thread is loading waits for that load instead of reading the
 * chunk a second time (concurrent sequential reads of one file often
 * need the same chunk at once); with more than LOAD_SLOTS loads at once,
 * two threads may both load a chunk and the second insert is dropped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/store_i.h"
#include "util/log.h"
#include "util/util.h"

#define CACHE_BUCKETS 256

/* ---- descriptor pool ---- */

int fdpool_init(struct fd_pool *p, unsigned n)
{
	pthread_mutex_init(&p->lock, NULL);
	p->slot = calloc(n, sizeof(*p->slot));
	if (!p->slot)
		return -ENOMEM;
	p->n = n;
	for (unsigned i = 0; i < n; i++) {
		p->slot[i].pack = -1;
		p->slot[i].fd = -1;
	}
	return 0;
}

void fdpool_release(struct fd_pool *p)
{
	if (!p->slot)
		return;
	for (unsigned i = 0; i < p->n; i++)
		if (p->slot[i].fd >= 0)
			close(p->slot[i].fd);
	free(p->slot);
	p->slot = NULL;
	pthread_mutex_destroy(&p->lock);
}

void fdpool_drop(struct store *st, int64_t pack)
{
	struct fd_pool *p = &st->fds;

	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->n; i++) {
		struct fd_slot *s = &p->slot[i];

		if ((pack < 0 || s->pack == pack) && s->fd >= 0 && !s->refs) {
			close(s->fd);
			s->fd = -1;
			s->pack = -1;
		}
	}
	pthread_mutex_unlock(&p->lock);
}

static int pack_open(struct store *st, int64_t pack)
{
	struct buf rel = BUF_INIT, path = BUF_INIT;
	int fd = -1, ret;

	ret = index_pack_name(st, pack, &rel);
	if (!ret)
		ret = buf_addf(&path, "%s/data/%s", st->repo, rel.data);
	if (ret)
		goto out;
	fd = open(path.data, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (ret != -ENOENT)
			log_err("store: cannot open pack '%s': %s", path.data,
				strerror(errno));
	}
out:
	buf_release(&rel);
	buf_release(&path);
	return ret ? ret : fd;
}

/* Borrow a descriptor of @pack: *@slot is the pool slot or -1 (private). */
static int fd_get(struct store *st, int64_t pack, int *slot)
{
	struct fd_pool *p = &st->fds;
	struct fd_slot *s, *victim = NULL;
	int fd, old = -1;

	pthread_mutex_lock(&p->lock);
	for (unsigned i = 0; i < p->n; i++) {
		s = &p->slot[i];
		if (s->pack == pack && s->fd >= 0) {
			s->refs++;
			s->used = ++p->tick;
			*slot = (int)i;
			fd = s->fd;
			pthread_mutex_unlock(&p->lock);
			return fd;
		}
		if (s->refs || (s->pack >= 0 && s->fd < 0))
			continue; /* busy, or being opened */
		if (!victim || s->used < victim->used)
			victim = s;
	}
	if (victim) {
		old = victim->fd;
		victim->pack = pack;
		victim->fd = -1;
		victim->refs = 1;
		victim->used = ++p->tick;
	}
	pthread_mutex_unlock(&p->lock);
	if (old >= 0)
		close(old);
	fd = pack_open(st, pack);
	if (!victim) {
		*slot = -1;
		return fd;
	}
	pthread_mutex_lock(&p->lock);
	if (fd < 0) {
		victim->pack = -1;
		victim->refs = 0;
	} else {
		victim->fd = fd;
	}
	pthread_mutex_unlock(&p->lock);
	*slot = (int)(victim - p->slot);
	return fd;
}

static void fd_put(struct store *st, int fd, int slot)
{
	if (slot < 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&st->fds.lock);
	st->fds.slot[slot].refs--;
	pthread_mutex_unlock(&st->fds.lock);
}

int store_record_read(struct store *st, const struct loc *loc, struct buf *out)
{
	size_t len = CHUNK_HDR_LEN + (size_t)loc->stored;
	int fd, slot, ret;

	ret = buf_grow(out, len);
	if (ret)
		return ret;
	fd = fd_get(st, loc->pack, &slot);
	if (fd < 0)
		return fd;
	ret = util_pread_all(fd, out->data + out->len, len, (off_t)loc->off);
	fd_put(st, fd, slot);
	if (ret)
		return ret == -EIO ? -EBADMSG : ret; /* short: pack cut off */
	out->len += len;
	out->data[out->len] = 0;
	return 0;
}

static void log_damage(struct store *st, const unsigned char *id,
		       const struct loc *loc, const char *what)
{
	struct buf rel = BUF_INIT;
	char hex[65];

	util_hex(hex, id, 32, false);
	if (index_pack_name(st, loc->pack, &rel))
		buf_addf(&rel, "#%lld", (long long)loc->pack);
	log_err("store: chunk %s in pack '%s' at offset %llu is damaged (%s): run 'm365-snapshot check --read-data'",
		hex, rel.data, (unsigned long long)loc->off, what);
	buf_release(&rel);
}

/*
 * Per-thread scratch for the record and the decrypted payload, so that
 * reads do not fault in fresh pages for every chunk.  Freed when the
 * thread exits (at most two chunk records per reading thread).
 */
struct scratch {
	struct buf rec, tmp;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
	struct scratch *s = p;

	buf_release(&s->rec);
	buf_release(&s->tmp);
	free(s);
}

static void scratch_init(void)
{
	if (pthread_key_create(&scratch_key, scratch_free))
		abort(); /* only when the process is out of keys */
}

static struct scratch *scratch_get(void)
{
	struct scratch *s;

	pthread_once(&scratch_once, scratch_init);
	s = pthread_getspecific(scratch_key);
	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	buf_init(&s->rec, 0);
	buf_init(&s->tmp, 0);
	if (pthread_setspecific(scratch_key, s)) {
		scratch_free(s);
		return NULL;
	}
	return s;
}

/* ---- plaintext buffers ---- */

#define CBUF_ROUND (64u * 1024)
#define CBUF_MAP   (256u * 1024) /* from here on, mappings of their own */

/*
 * Buffers of CBUF_MAP bytes or more are mappings of their own, not
 * malloc()'s: a pooled one too small for a chunk grows with mremap(),
 * which keeps the pages it has (malloc() may copy them, or hand out
 * fresh ones that fault in again).
 */
static unsigned char *cbuf_alloc(size_t cap)
{
	void *p;

	if (cap < CBUF_MAP)
		return malloc(cap ? cap : 1);
	p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void cbuf_free(unsigned char *p, size_t cap)
{
	if (p && cap >= CBUF_MAP)
		munmap(p, cap);
	else
		free(p);
}

/*
 * A buffer of at least @need bytes: the best fitting one of the pool of
 * buffers given back by evictions, or the largest of them grown, or a
 * new one.  Reusing them spares the kernel zeroing fresh pages for every
 * chunk loaded (a cold read of a 200 MB file took 61 MB of new buffers,
 * half of them for chunks larger than any pooled one: 14,000 page faults
 * of the daemon, 11,000 now that those grow).
 */
static int cbuf_get(struct store *st, size_t need, struct cbuf *out)
{
	size_t cap = (need + CBUF_ROUND - 1) / CBUF_ROUND * CBUF_ROUND;
	int best = -1, big = -1;

	pthread_mutex_lock(&st->cbuf_lock);
	for (unsigned i = 0; i < st->ncbuf; i++) {
		if (st->cbuf[i].cap >= need &&
		    (best < 0 || st->cbuf[i].cap < st->cbuf[best].cap))
			best = (int)i;
		if (big < 0 || st->cbuf[i].cap > st->cbuf[big].cap)
			big = (int)i;
	}
	if (best < 0 && big >= 0 && cap >= CBUF_MAP &&
	    st->cbuf[big].cap >= CBUF_MAP)
		best = big; /* grown below */
	if (best >= 0) {
		*out = st->cbuf[best];
		st->cbuf[best] = st->cbuf[--st->ncbuf];
	}
	pthread_mutex_unlock(&st->cbuf_lock);
	if (best >= 0 && out->cap >= need)
		return 0;
	if (best >= 0) {
		void *p = mremap(out->p, out->cap, cap, MREMAP_MAYMOVE);

		if (p != MAP_FAILED) {
			out->p = p;
			out->cap = cap;
			return 0;
		}
		cbuf_free(out->p, out->cap);
	}
	out->cap = cap;
	out->p = cbuf_alloc(cap);
	return out->p ? 0 : -ENOMEM;
}

/* Give @b back to the pool, or free it (the pool keeps the largest). */
static void cbuf_put(struct store *st, unsigned char *p, size_t cap)
{
	unsigned small = 0;

	if (!p)
		return;
	pthread_mutex_lock(&st->cbuf_lock);
	if (st->ncbuf < CBUF_POOL && cap <= st->cache_cap / 8) {
		st->cbuf[st->ncbuf++] = (struct cbuf){ p, cap };
		p = NULL;
	} else if (st->ncbuf) {
		for (unsigned i = 1; i < st->ncbuf; i++)
			if (st->cbuf[i].cap < st->cbuf[small].cap)
				small = i;
		if (st->cbuf[small].cap < cap && cap <= st->cache_cap / 8) {
			struct cbuf old = st->cbuf[small];

			st->cbuf[small] = (struct cbuf){ p, cap };
			p = old.p;
			cap = old.cap;
		}
	}
	pthread_mutex_unlock(&st->cbuf_lock);
	cbuf_free(p, cap);
}

/*
 * Read a plain, uncompressed chunk's payload straight into @dst (no copy
 * through the scratch record), its header into @hdr.
 */
static int record_read_direct(struct store *st, const struct loc *loc,
			      unsigned char *hdr, unsigned char *dst)
{
	int fd, slot, ret;

	fd = fd_get(st, loc->pack, &slot);
	if (fd < 0)
		return fd;
	ret = util_pread_all(fd, hdr, CHUNK_HDR_LEN, (off_t)loc->off);
	if (!ret)
		ret = util_pread_all(fd, dst, loc->stored,
				     (off_t)(loc->off + CHUNK_HDR_LEN));
	fd_put(st, fd, slot);
	return ret == -EIO ? -EBADMSG : ret; /* short: pack cut off */
}

int store_chunk_load(struct store *st, const unsigned char *id,
		     const struct loc *loc, bool rehash, struct buf *out,
		     struct cbuf *data)
{
	struct scratch *s = scratch_get();
	struct cbuf cb = { NULL, 0 };
	unsigned char *dst = NULL, hdr[CHUNK_HDR_LEN], *raw;
	struct chunk_hdr h;
	const char *what = NULL;
	bool direct = !out && !st->keys.enc &&
		      !(loc->flags & (CHUNK_F_LZ4 | CHUNK_F_ENC)) &&
		      loc->plain == loc->stored && loc->plain <= CHUNK_LIMIT;
	int ret;

	if (!s)
		return -ENOMEM;
	if (direct) {
		ret = cbuf_get(st, loc->plain, &cb);
		if (ret)
			return ret;
		dst = cb.p;
		raw = hdr;
		ret = record_read_direct(st, loc, hdr, dst);
	} else {
		buf_reset(&s->rec);
		ret = store_record_read(st, loc, &s->rec);
		raw = (unsigned char *)s->rec.data;
	}
	if (ret == -EBADMSG)
		what = "pack too short";
	if (ret)
		goto out;
	ret = chunk_hdr_decode(raw, &h);
	if (ret) {
		what = "bad header";
		goto out;
	}
	if (memcmp(h.id, id, 32) || h.plain != loc->plain ||
	    h.stored != loc->stored ||
	    (direct && (h.flags & (CHUNK_F_LZ4 | CHUNK_F_ENC)))) {
		ret = -EBADMSG;
		what = "header does not match the index";
		goto out;
	}
	if (direct) {
		/* as chunk_decode() of a plain raw chunk, in place */
		if (le64_get(h.nonce) != chunk_sum(&h, dst)) {
			ret = -EBADMSG;
		} else if (rehash) {
			unsigned char md[32];

			ret = chunk_id(&st->keys, dst, h.plain, md);
			if (!ret && memcmp(md, h.id, 32))
				ret = -EBADMSG;
		}
	} else {
		if (out) {
			ret = buf_grow(out, h.plain);
			dst = (unsigned char *)out->data + out->len;
		} else {
			ret = cbuf_get(st, h.plain, &cb);
			dst = cb.p;
		}
		if (!ret)
			ret = chunk_decode(&st->keys, raw, &h,
					   s->rec.data + CHUNK_HDR_LEN, rehash,
					   &s->tmp, dst);
	}
	if (ret == -EBADMSG)
		what = "bad checksum, tag or content";
	if (ret)
		goto out;
	if (out) {
		out->len += h.plain;
		out->data[out->len] = 0;
	} else {
		*data = cb;
		cb.p = NULL;
	}
out:
	cbuf_put(st, cb.p, cb.cap);
	if (ret == -EBADMSG)
		log_damage(st, id, loc, what);
	/* keep big scratch buffers from pinning memory forever */
	if (s->rec.alloc > 8u * 1024 * 1024)
		buf_release(&s->rec);
	if (s->tmp.alloc > 8u * 1024 * 1024)
		buf_release(&s->tmp);
	return ret;
}

/* Locate and load @id; retries once when a pack vanished (prune). */
static int chunk_fetch(struct store *st, const unsigned char *id, bool rehash,
		       struct buf *out, struct cbuf *data, uint32_t *len)
{
	struct loc loc;
	int ret, tries = 0;

	do {
		if (tries)
			index_unhold(st); /* moved by a prune since the hold? */
		ret = store_locate_data(st, id, &loc);
		if (!ret)
			ret = store_chunk_load(st, id, &loc, rehash, out, data);
	} while (ret == -ENOENT && ++tries < 2);
	if (!ret && len)
		*len = loc.plain; /* equal to the header's: checked */
	if (ret == -ENOENT) {
		char hex[65];

		util_hex(hex, id, 32, false);
		log_err("store: chunk %s is missing from repository '%s'", hex,
			st->repo);
	}
	return ret;
}

int store_chunk_get(struct store *st, const unsigned char id[STORE_ID_LEN],
		    struct buf *out)
{
	return chunk_fetch(st, id, true, out, NULL, NULL);
}

bool store_chunk_exists(struct store *st, const unsigned char id[STORE_ID_LEN])
{
	struct loc loc;

	return !store_locate(st, id, &loc);
}

/* ---- cache ---- */

int cache_init(struct store *st, size_t bytes)
{
	for (int i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &st->shard[i];

		pthread_mutex_init(&s->lock, NULL);
		s->nbucket = CACHE_BUCKETS;
		s->bucket = calloc(CACHE_BUCKETS, sizeof(*s->bucket));
		if (!s->bucket)
			return -ENOMEM;
	}
	st->cache_cap = bytes;
	pthread_mutex_init(&st->cbuf_lock, NULL);
	st->ncbuf = 0;
	pthread_mutex_init(&st->load_lock, NULL);
	pthread_cond_init(&st->load_done, NULL);
	atomic_init(&st->cache_bytes, 0);
	atomic_init(&st->cache_hits, 0);
	atomic_init(&st->cache_misses, 0);
	atomic_init(&st->cache_rotor, 0);
	return 0;
}

static void ent_put(struct cache_ent *e)
{
	if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
		cbuf_put(e->st, e->data, e->cap);
		free(e);
	}
}

void cache_release(struct store *st)
{
	for (int i = 0; i < CACHE_SHARDS; i++) {
		struct cache_shard *s = &st->shard[i];
		struct cache_ent *e, *next;

		if (!s->bucket)
			continue;
		for (e = s->head; e; e = next) {
			next = e->next;
			cbuf_free(e->data, e->cap);
			free(e);
		}
		free(s->bucket);
		s->bucket = NULL;
		pthread_mutex_destroy(&s->lock);
	}
	for (unsigned i = 0; i < st->ncbuf; i++)
		cbuf_free(st->cbuf[i].p, st->cbuf[i].cap);
	st->ncbuf = 0;
	pthread_mutex_destroy(&st->cbuf_lock);
	pthread_mutex_destroy(&st->load_lock);
	pthread_cond_destroy(&st->load_done);
}

static struct cache_shard *shard_of(struct store *st, const unsigned char *id)
{
	return &st->shard[id[0] % CACHE_SHARDS];
}

static size_t bucket_of(const struct cache_shard *s, const unsigned char *id)
{
	return ((size_t)id[1] << 8 | id[2]) % s->nbucket;
}

static void lru_unlink(struct cache_shard *s, struct cache_ent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct cache_shard *s, struct cache_ent *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head)
		s->head->prev = e;
	s->head = e;
	if (!s->tail)
		s->tail = e;
}

static struct cache_ent *cache_get(struct store *st, const unsigned char *id)
{
	struct cache_shard *s = shard_of(st, id);
	struct cache_ent *e;

	pthread_mutex_lock(&s->lock);
	for (e = s->bucket[bucket_of(s, id)]; e; e = e->hnext)
		if (!memcmp(e->id, id, 32))
			break;
	if (e) {
		atomic_fetch_add(&e->refs, 1);
		if (s->head != e) {
			lru_unlink(s, e);
			lru_push(s, e);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return e;
}

static void hash_unlink(struct cache_shard *s, struct cache_ent *e)
{
	struct cache_ent **pp = &s->bucket[bucket_of(s, e->id)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	e->hnext = NULL;
}

/*
 * Insert @e (one reference for the caller); returns the entry to use.
 * The byte budget is global: after an insert, shards give up their least
 * recently used entry in turn (one shard lock at a time) until the cache
 * fits again, so that no shard's share is capped.
 */
static struct cache_ent *cache_insert(struct store *st, struct cache_ent *e)
{
	struct cache_shard *s = shard_of(st, e->id);
	struct cache_ent *old;
	size_t b;

	if (e->cap > st->cache_cap)
		return e; /* too large for the cache: caller only */
	pthread_mutex_lock(&s->lock);
	b = bucket_of(s, e->id);
	for (old = s->bucket[b]; old; old = old->hnext)
		if (!memcmp(old->id, e->id, 32))
			break;
	if (old) {
		atomic_fetch_add(&old->refs, 1);
		pthread_mutex_unlock(&s->lock);
		ent_put(e);
		return old;
	}
	atomic_fetch_add(&e->refs, 1); /* the cache's reference */
	e->hnext = s->bucket[b];
	s->bucket[b] = e;
	lru_push(s, e);
	atomic_fetch_add(&st->cache_bytes, e->cap);
	pthread_mutex_unlock(&s->lock);

	for (int tries = 0; tries < 4 * CACHE_SHARDS &&
			    atomic_load(&st->cache_bytes) > st->cache_cap;
	     tries++) {
		unsigned i = atomic_fetch_add(&st->cache_rotor, 1);
		struct cache_shard *v = &st->shard[i % CACHE_SHARDS];
		struct cache_ent *x;

		pthread_mutex_lock(&v->lock);
		x = v->tail;
		if (x == e) /* keep what we just loaded */
			x = x->prev;
		if (x) {
			lru_unlink(v, x);
			hash_unlink(v, x);
			atomic_fetch_sub(&st->cache_bytes, x->cap);
		}
		pthread_mutex_unlock(&v->lock);
		ent_put(x); /* outside the lock */
	}
	return e;
}

/*
 * Claim the load of @id.  Returns its slot (give it back with
 * load_release()), -1 when another thread was loading it and is done
 * (look in the cache again), or LOAD_SLOTS when every slot is taken
 * (load it without a claim).
 */
static int load_claim(struct store *st, const unsigned char *id)
{
	int free_slot;
	bool waited = false;

	pthread_mutex_lock(&st->load_lock);
	for (;;) {
		int busy = -1;

		free_slot = LOAD_SLOTS;
		for (int i = 0; i < LOAD_SLOTS; i++) {
			if (!st->load_busy[i]) {
				if (free_slot == LOAD_SLOTS)
					free_slot = i;
			} else if (!memcmp(st->loading[i], id, 32)) {
				busy = i;
			}
		}
		if (busy < 0)
			break;
		pthread_cond_wait(&st->load_done, &st->load_lock);
		waited = true;
	}
	if (waited) {
		free_slot = -1; /* loaded meanwhile: look again */
	} else if (free_slot < LOAD_SLOTS) {
		memcpy(st->loading[free_slot], id, 32);
		st->load_busy[free_slot] = true;
	}
	pthread_mutex_unlock(&st->load_lock);
	return free_slot;
}

static void load_release(struct store *st, int slot)
{
	if (slot < 0 || slot >= LOAD_SLOTS)
		return;
	pthread_mutex_lock(&st->load_lock);
	st->load_busy[slot] = false;
	pthread_cond_broadcast(&st->load_done);
	pthread_mutex_unlock(&st->load_lock);
}

/*
 * A referenced cache entry holding the plaintext of @id; *@loaded (may be
 * NULL) tells whether it was read from a pack.
 */
static int chunk_cached(struct store *st, const unsigned char *id,
			struct cache_ent **out, bool *loaded)
{
	struct cache_ent *e;
	struct cbuf data = { NULL, 0 };
	uint32_t len = 0;
	int ret, slot = LOAD_SLOTS;

	for (;;) {
		e = cache_get(st, id);
		if (e)
			break;
		slot = load_claim(st, id);
		if (slot < 0)
			continue; /* another thread loaded it meanwhile */
		/* or loaded it between our miss and our claim */
		e = cache_get(st, id);
		if (!e)
			break;
		load_release(st, slot);
		break;
	}
	if (e) {
		if (loaded)
			*loaded = false;
		atomic_fetch_add(&st->cache_hits, 1);
		*out = e;
		return 0;
	}
	if (loaded)
		*loaded = true;
	atomic_fetch_add(&st->cache_misses, 1);
	e = calloc(1, sizeof(*e));
	if (!e) {
		load_release(st, slot);
		return -ENOMEM;
	}
	ret = chunk_fetch(st, id, false, NULL, &data, &len);
	if (ret) {
		load_release(st, slot);
		free(e);
		return ret;
	}
	memcpy(e->id, id, 32);
	e->st = st;
	e->data = data.p;
	e->cap = data.cap;
	e->len = len;
	atomic_init(&e->refs, 1);
	*out = cache_insert(st, e);
	load_release(st, slot);
	return 0;
}

/* ---- content reads ---- */

/* O(1) shape check of a descriptor; entries are checked as used. */
static int desc_shape(const void *desc, size_t len, uint64_t *count,
		      uint64_t *size)
{
	const unsigned char *d = desc;

	if (!d || len < DESC_HDR_LEN || d[0] != 'D' || d[1] != 1 || d[2] ||
	    d[3])
		return -EBADMSG;
	*count = le32_get(d + 4);
	if ((len - DESC_HDR_LEN) / DESC_ENTRY_LEN != *count ||
	    (len - DESC_HDR_LEN) % DESC_ENTRY_LEN)
		return -EBADMSG;
	*size = *count ? le64_get(d + len - 8) : 0;
	return 0;
}

/* Index of the first chunk of @desc whose end is past @off. */
static uint64_t desc_find(const void *desc, uint64_t count, uint64_t off)
{
	const unsigned char *id;
	uint64_t lo = 0, hi = count, start, end;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		desc_entry(desc, mid, &id, &start, &end);
		if (end <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

ssize_t store_read(struct store *st, const void *desc, size_t desc_len,
		   uint64_t off, void *p, size_t n)
{
	const unsigned char *id;
	uint64_t count, size, start, end, pos = off;
	size_t done = 0;
	int ret;

	ret = desc_shape(desc, desc_len, &count, &size);
	if (ret)
		return ret;
	if (off >= size || !n)
		return 0;
	if (n > size - off)
		n = (size_t)(size - off);
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	for (uint64_t i = desc_find(desc, count, off); done < n && i < count;
	     i++) {
		struct cache_ent *e = NULL;
		size_t take;

		desc_entry(desc, i, &id, &start, &end);
		if (end <= start || end - start > CHUNK_LIMIT || pos < start ||
		    pos >= end)
			return -EBADMSG;
		ret = chunk_cached(st, id, &e, NULL);
		if (ret)
			return ret;
		if (e->len != end - start) {
			ent_put(e);
			return -EBADMSG;
		}
		take = (size_t)(end - pos);
		if (take > n - done)
			take = n - done;
		memcpy((char *)p + done, e->data + (pos - start), take);
		ent_put(e);
		done += take;
		pos += take;
	}
	return (ssize_t)done;
}

int store_view_get(struct store *st, const void *desc, size_t desc_len,
		   uint64_t off, struct store_view *v)
{
	const unsigned char *id;
	struct cache_ent *e = NULL;
	uint64_t count, size, start, end, i;
	int ret;

	memset(v, 0, sizeof(*v));
	ret = desc_shape(desc, desc_len, &count, &size);
	if (ret)
		return ret;
	if (off >= size)
		return -ERANGE;
	i = desc_find(desc, count, off);
	if (i >= count)
		return -EBADMSG;
	desc_entry(desc, i, &id, &start, &end);
	if (end <= start || end - start > CHUNK_LIMIT || off < start ||
	    off >= end)
		return -EBADMSG;
	ret = chunk_cached(st, id, &e, &v->loaded);
	if (ret)
		return ret;
	if (e->len != end - start) {
		ent_put(e);
		return -EBADMSG;
	}
	v->data = e->data;
	v->off = start;
	v->len = e->len;
	v->priv = e;
	return 0;
}

void store_view_put(struct store_view *v)
{
	ent_put(v->priv);
	memset(v, 0, sizeof(*v));
}

int store_read_fd(struct store *st, const void *desc, size_t desc_len, int fd)
{
	struct buf b = BUF_INIT;
	const unsigned char *id;
	uint64_t count, size, start, end;
	int ret;

	ret = store_desc_parse(desc, desc_len, &size, &count);
	if (ret)
		return ret;
	for (uint64_t i = 0; i < count; i++) {
		desc_entry(desc, i, &id, &start, &end);
		buf_reset(&b);
		ret = chunk_fetch(st, id, false, &b, NULL, NULL);
		if (!ret && b.len != end - start)
			ret = -EBADMSG;
		if (!ret)
			ret = util_write_all(fd, b.data, b.len);
		if (ret)
			break;
	}
	buf_release(&b);
	return ret;
}

void store_stats(struct store *st, struct store_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	stats->cache_bytes = atomic_load(&st->cache_bytes);
	stats->cache_cap = st->cache_cap;
	stats->cache_hits = atomic_load(&st->cache_hits);
	stats->cache_misses = atomic_load(&st->cache_misses);
	pthread_mutex_lock(&st->fds.lock);
	for (unsigned i = 0; i < st->fds.n; i++)
		if (st->fds.slot[i].fd >= 0)
			stats->fds_open++;
	stats->fds_max = st->fds.n;
	pthread_mutex_unlock(&st->fds.lock);
}
