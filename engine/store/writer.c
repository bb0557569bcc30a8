/*
 * writer.c - streaming content writers: chunking, hashing, compression
 * and sealing in the calling thread; the pack append only reserves its
 * place under the store's lock and writes without it (store_append()),
 * in a pack lane the writer holds until its content ends.
 * Where the CPU has the SHA extensions, the chunker's scan, the chunk
 * ids and the SHA-256 of the whole content are one pass (sha2x.c).
 */
#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "store/store_i.h"
#include "util/log.h"
#include "util/util.h"

/*
 * Memory: the chunker window grows from WINDOW_FIRST to twice the largest
 * chunk only for contents that need it, and a window or chunk buffer
 * above WRITER_KEEP is returned when its content ends, so that an idle
 * writer holds at most a few MiB however large the files it stored were
 * (a snapshot keeps one writer per download thread).
 */
#define WINDOW_FIRST (256u << 10)
#define WRITER_KEEP  (1u << 20)

struct store_writer {
	struct store *st;
	unsigned char *buf; /* chunker window: [start, len) not yet cut */
	size_t start, len, cap; /* cap 0: no window yet */
	EVP_MD_CTX *whole; /* SHA-256 of the whole content */
	bool x2; /* SHA extensions: ids and whole hashed in one pass */
	struct sha2x wx; /* then the whole content's SHA-256 here */
	struct sha2x_hmac hm; /* and the id key's HMAC states */
	bool whole_is_id; /* one chunk, plain: its id is that SHA-256 */
	unsigned char id0[32]; /* the id of that chunk */
	struct buf desc;
	uint64_t size, chunks, new_chunks, new_bytes, stored_bytes;
	void *lz4;
	struct buf tmp; /* the sealed payload of a chunk */
	struct lane *lane; /* held while a content is written: its chunks
			    * lie one after the other in one pack */
	int err;
	bool timed; /* count stage times */
	struct store_writer_stats stats;
};

static const char *const stage_names[STORE_STAGES] = {
	[STORE_STAGE_COPY] = "copy",	 [STORE_STAGE_CHUNK] = "chunk",
	[STORE_STAGE_ID] = "id",	 [STORE_STAGE_WHOLE] = "whole",
	[STORE_STAGE_LOOKUP] = "lookup", [STORE_STAGE_LZ4] = "lz4",
	[STORE_STAGE_SEAL] = "seal",	 [STORE_STAGE_APPEND] = "append",
	[STORE_STAGE_WAIT] = "wait",
};

const char *store_stage_name(int s)
{
	return s >= 0 && s < STORE_STAGES ? stage_names[s] : "?";
}

void store_writer_timing(struct store_writer *w, bool on)
{
	w->timed = on;
}

void store_writer_stats_add(const struct store_writer *w,
			    struct store_writer_stats *out)
{
	out->bytes += w->stats.bytes;
	out->chunks += w->stats.chunks;
	out->new_chunks += w->stats.new_chunks;
	for (int i = 0; i < STORE_STAGES; i++)
		out->ns[i] += w->stats.ns[i];
}

/* End the current stage (begun at CPU time @t0): count it to @stage. */
static uint64_t lap(struct store_writer *w, enum store_stage stage, uint64_t t0)
{
	uint64_t t;

	if (!w->timed)
		return 0;
	t = thread_cpu_ns();
	w->stats.ns[stage] += t - t0;
	return t;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void store_content_init(struct store_content *c)
{
	memset(c, 0, sizeof(*c));
	buf_init(&c->desc, 0);
}

void store_content_release(struct store_content *c)
{
	if (c)
		buf_release(&c->desc);
}

void store_writer_reset(struct store_writer *w)
{
	store_lane_release(w->st, &w->lane);
	if (w->cap > WRITER_KEEP) {
		free(w->buf);
		w->buf = NULL;
		w->cap = 0;
	}
	if (w->tmp.alloc > WRITER_KEEP)
		buf_release(&w->tmp);
	w->start = w->len = 0;
	w->size = w->chunks = w->new_chunks = w->new_bytes = 0;
	w->stored_bytes = 0;
	w->whole_is_id = false;
	w->err = desc_begin(&w->desc);
	if (w->x2)
		sha2x_init(&w->wx);
	else if (!w->err &&
		 EVP_DigestInit_ex(w->whole, EVP_sha256(), NULL) != 1)
		w->err = ssl_errno("sha-256");
}

int store_writer_new(struct store *st, struct store_writer **out)
{
	struct store_writer *w;

	*out = NULL;
	if (!st->info.writable)
		return -EROFS;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->st = st;
	w->x2 = sha2x_supported();
	if (w->x2 && st->keys.enc)
		sha2x_hmac_init(&w->hm, st->keys.id_key);
	w->whole = EVP_MD_CTX_new();
	w->lz4 = malloc((size_t)LZ4_sizeofState());
	buf_init(&w->desc, 0);
	buf_init(&w->tmp, 0);
	if (!w->whole || !w->lz4) {
		store_writer_free(w);
		return -ENOMEM;
	}
	store_writer_reset(w);
	if (w->err) {
		int ret = w->err;

		store_writer_free(w);
		return ret;
	}
	*out = w;
	return 0;
}

size_t store_writer_held(const struct store_writer *w)
{
	return w->cap + w->tmp.alloc + w->desc.alloc;
}

void store_writer_free(struct store_writer *w)
{
	if (!w)
		return;
	store_lane_release(w->st, &w->lane);
	free(w->buf);
	EVP_MD_CTX_free(w->whole);
	free(w->lz4);
	buf_release(&w->desc);
	buf_release(&w->tmp);
	OPENSSL_cleanse(&w->hm, sizeof(w->hm));
	free(w);
}

/*
 * Cut the next chunk of @p[0..n) (@n >= the largest chunk unless at the
 * end of the content) and compute its id into @id, feeding the chunk to
 * the SHA-256 of the whole content, in one pass over its bytes
 * (sha2x_cdc()).  In a plain repository the first chunk's SHA-256 is a
 * prefix of the whole content's: that chunk is hashed once, into the
 * whole content's state, whose copy then ends as the id (and when it is
 * the only chunk, the id is the whole content's SHA-256).
 */
static size_t cut_x2(struct store_writer *w, const unsigned char *p, size_t n,
		     unsigned char id[32])
{
	const struct cdc *c = &w->st->cdc;
	struct sha2x a;
	size_t cut;

	if (w->st->keys.enc) {
		a = w->hm.inner;
		cut = sha2x_cdc(c, p, n, &a, &w->wx);
		sha2x_hmac_final(&w->hm, &a, id);
		return cut;
	}
	if (!w->chunks) {
		cut = sha2x_cdc(c, p, n, &w->wx, NULL);
		a = w->wx;
	} else {
		sha2x_init(&a);
		cut = sha2x_cdc(c, p, n, &a, &w->wx);
	}
	sha2x_final(&a, id);
	return cut;
}

/*
 * Store the next chunk of the window (@finish: no more bytes will come).
 * Without the SHA extensions the chunker and the two hashes are separate
 * passes; the SHA-256 of the whole content is fed chunk by chunk, while
 * the chunk is in the CPU cache, and when a plain repository's content is
 * a single chunk, its id already is that SHA-256 and is not computed
 * twice.  Stage times: with the extensions the chunker's scan is counted
 * in "id" (it runs inside the hashing).
 */
static int emit(struct store_writer *w, bool finish)
{
	struct store *st = w->st;
	const unsigned char *p = w->buf + w->start;
	size_t n = w->len - w->start;
	unsigned char id[32];
	struct chunk_rec rec;
	struct loc loc;
	uint64_t t = w->timed ? thread_cpu_ns() : 0, wall = 0;
	bool only, dup;
	int ret;

	if (w->x2) {
		n = cut_x2(w, p, n, id);
	} else {
		n = cdc_cut(&st->cdc, p, n);
		t = lap(w, STORE_STAGE_CHUNK, t);
		ret = chunk_id(&st->keys, p, n, id);
		if (ret)
			return ret;
	}
	t = lap(w, STORE_STAGE_ID, t);
	w->start += n;
	only = finish && w->start == w->len && !w->chunks && !st->keys.enc;
	if (only) {
		memcpy(w->id0, id, 32);
		w->whole_is_id = true;
	} else if (!w->x2 && EVP_DigestUpdate(w->whole, p, n) != 1) {
		return ssl_errno("sha-256");
	}
	t = lap(w, STORE_STAGE_WHOLE, t);
	w->size += n;
	w->chunks++;
	w->stats.chunks++;
	ret = desc_add(&w->desc, id, w->size);
	if (ret)
		return ret;
	ret = store_locate(st, id, &loc);
	t = lap(w, STORE_STAGE_LOOKUP, t);
	if (!ret)
		return 0; /* dedup: already stored */
	if (ret != -ENOENT)
		return ret;
	ret = chunk_seal(&st->keys, id, p, n, w->lz4, &w->tmp, &rec,
			 w->timed ? w->stats.ns : NULL);
	if (ret)
		return ret;
	if (w->timed) {
		t = thread_cpu_ns();
		wall = wall_ns();
	}
	ret = store_append(st, &w->lane, rec.hdr, rec.payload, rec.len, true,
			   &dup);
	if (w->timed) {
		uint64_t cpu = thread_cpu_ns() - t, all = wall_ns() - wall;

		w->stats.ns[STORE_STAGE_APPEND] += cpu;
		w->stats.ns[STORE_STAGE_WAIT] += all > cpu ? all - cpu : 0;
	}
	if (ret || dup)
		return ret;
	w->stats.new_chunks++;
	w->new_chunks++;
	w->new_bytes += n;
	w->stored_bytes += CHUNK_HDR_LEN + rec.len;
	return 0;
}

/*
 * Make room in a full window: grow it (up to twice the largest chunk), or
 * at that size move the bytes not yet cut to its front (a cut is made as
 * soon as a largest chunk is in, so at least half of it is free then).
 */
static int window_room(struct store_writer *w)
{
	size_t full = 2 * (size_t)w->st->cdc.max, ncap;
	unsigned char *nb;

	if (w->cap >= full) {
		memmove(w->buf, w->buf + w->start, w->len - w->start);
		w->len -= w->start;
		w->start = 0;
		return 0;
	}
	ncap = w->cap ? 2 * w->cap : WINDOW_FIRST;
	if (ncap > full)
		ncap = full;
	nb = realloc(w->buf, ncap);
	if (!nb)
		return -ENOMEM;
	w->buf = nb;
	w->cap = ncap;
	return 0;
}

int store_writer_space(struct store_writer *w, void **p, size_t *n)
{
	uint64_t t;

	if (w->err)
		return w->err;
	if (w->len == w->cap) {
		t = w->timed ? thread_cpu_ns() : 0;
		w->err = window_room(w);
		if (w->err)
			return w->err;
		lap(w, STORE_STAGE_COPY, t);
	}
	*p = w->buf + w->len;
	*n = w->cap - w->len;
	return 0;
}

int store_writer_commit(struct store_writer *w, size_t n)
{
	if (w->err)
		return w->err;
	if (n > w->cap - w->len)
		return w->err = -EINVAL;
	w->len += n;
	w->stats.bytes += n;
	while (w->len - w->start >= w->st->cdc.max) {
		w->err = emit(w, false);
		if (w->err)
			return w->err;
	}
	return 0;
}

int store_writer_add(struct store_writer *w, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t take;
	void *room;
	uint64_t t;
	int ret;

	while (n) {
		ret = store_writer_space(w, &room, &take);
		if (ret)
			return ret;
		if (take > n)
			take = n;
		t = w->timed ? thread_cpu_ns() : 0;
		memcpy(room, s, take);
		lap(w, STORE_STAGE_COPY, t);
		ret = store_writer_commit(w, take);
		if (ret)
			return ret;
		s += take;
		n -= take;
	}
	return w->err;
}

int store_writer_finish(struct store_writer *w, struct store_content *res)
{
	unsigned int mdlen = 32;
	struct buf tmp;
	int ret;

	while (!w->err && w->len > w->start)
		w->err = emit(w, true);
	if (!w->err)
		w->err = desc_end(&w->desc, w->chunks);
	if (!w->err && w->whole_is_id)
		memcpy(res->sha256, w->id0, 32);
	else if (!w->err && w->x2)
		sha2x_final(&w->wx, res->sha256);
	else if (!w->err &&
		 EVP_DigestFinal_ex(w->whole, res->sha256, &mdlen) != 1)
		w->err = ssl_errno("sha-256");
	ret = w->err;
	if (!ret) {
		tmp = res->desc;
		res->desc = w->desc;
		w->desc = tmp;
		res->size = w->size;
		res->chunks = w->chunks;
		res->new_chunks = w->new_chunks;
		res->new_bytes = w->new_bytes;
		res->stored_bytes = w->stored_bytes;
	}
	store_writer_reset(w);
	return ret;
}

int store_put(struct store *st, const void *p, size_t n,
	      struct store_content *res)
{
	struct store_writer *w = NULL;
	int ret;

	ret = store_writer_new(st, &w);
	if (!ret)
		ret = store_writer_add(w, p, n);
	if (!ret)
		ret = store_writer_finish(w, res);
	store_writer_free(w);
	return ret;
}

int store_writer_add_fd(struct store_writer *w, int fd)
{
	ssize_t n = 1;
	size_t room;
	void *p;
	int ret = 0;

	while (!ret && n) { /* read straight into the chunker window */
		ret = store_writer_space(w, &p, &room);
		if (ret)
			break;
		n = read(fd, p, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = -errno;
		else
			ret = store_writer_commit(w, (size_t)n);
	}
	return ret;
}

int store_put_fd(struct store *st, int fd, struct store_content *res)
{
	struct store_writer *w = NULL;
	int ret;

	ret = store_writer_new(st, &w);
	if (!ret)
		ret = store_writer_add_fd(w, fd);
	if (!ret)
		ret = store_writer_finish(w, res);
	store_writer_free(w);
	return ret;
}
