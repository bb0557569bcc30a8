/*
 * store_i.h - private declarations shared by the files of engine/store/.
 * On-disk layouts are described in FORMAT.md; keep both in step.
 *
 * Lock order (outer first): st->flush_lock, st->wlock, st->db_lock;
 * the cache shard locks and st->fds.lock are leaves.  No lock is held
 * while reading pack data.
 */
#ifndef M365_STORE_I_H
#define M365_STORE_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <endian.h>
#include <stdint.h>
#include <string.h>
#include <sqlite3.h>

#include "store/store.h"
#include "util/buf.h"

#define PACK_MAGIC     "M365PACK"
#define PACK_HDR_LEN   16
#define PACK_VERSION   1
#define CHUNK_MAGIC    "CHK1"
#define CHUNK_HDR_LEN  64
#define CHUNK_AAD_LEN  48 /* magic .. stored size */
#define CHUNK_F_LZ4    0x01
#define CHUNK_F_ENC    0x02
#define CHUNK_F_CHK2   0x04 /* plain payload checked by chk2, not chk64 */
#define CHUNK_F_ALL    (CHUNK_F_LZ4 | CHUNK_F_ENC | CHUNK_F_CHK2)
#define CHUNK_LIMIT    (16u * 1024 * 1024) /* largest plaintext chunk */
#define GCM_NONCE_LEN  12
#define GCM_TAG_LEN    16
#define DESC_HDR_LEN   8
#define DESC_ENTRY_LEN 40
#define ROOT_MAGIC     "M365ROOT"
#define CACHE_SHARDS   16

/* ---- keys and crypto (crypt.c) ---- */

struct store_keys {
	bool enc;
	bool chk2; /* plain payloads get chk2 (format 2), else chk64 */
	unsigned char id_key[32]; /* HMAC key for chunk ids */
	unsigned char data_key[32]; /* AES-256-GCM key */
	unsigned char check[32]; /* key check value */
};

/* Derive the keys of repository @repo_id (16 bytes) from @key. */
int keys_derive(struct store_keys *k, const unsigned char *key,
		const unsigned char repo_id[16]);

/* Chunk id of @n bytes at @p (SHA-256 or HMAC-SHA-256). */
int chunk_id(const struct store_keys *k, const void *p, size_t n,
	     unsigned char id[32]);

/* AES-256-GCM: seal @n bytes into @out (ciphertext + tag appended). */
int gcm_seal(const unsigned char key[32], const unsigned char *nonce,
	     const void *aad, size_t aad_len, const void *p, size_t n,
	     struct buf *out);
/* Open @n bytes (ciphertext + tag) into @out; -EBADMSG on a bad tag. */
int gcm_open(const unsigned char key[32], const unsigned char *nonce,
	     const void *aad, size_t aad_len, const void *p, size_t n,
	     struct buf *out);
/* As gcm_seal() into @dst (@n + 16 bytes; @dst may be @p). */
int gcm_seal_to(const unsigned char key[32], const unsigned char *nonce,
		const void *aad, size_t aad_len, const void *p, size_t n,
		unsigned char *dst);
/* As gcm_open() into @dst (@n - 16 bytes), without a buffer. */
int gcm_open_to(const unsigned char key[32], const unsigned char *nonce,
		const void *aad, size_t aad_len, const void *p, size_t n,
		unsigned char *dst);

/* Log OpenSSL's error queue with @what; returns -EIO (or -ENOMEM). */
int ssl_errno(const char *what);

/* Fast 64-bit checksums of plain payloads (FORMAT.md "chk64", "chk2"). */
uint64_t chk64(const void *p, size_t n);
uint64_t chk2(const void *p, size_t n);
/* chk2() without the vector unit (the tests compare the two). */
uint64_t chk2_scalar(const void *p, size_t n);

/* ---- two SHA-256 in one pass (sha2x.c) ---- */

struct cdc;

struct sha2x {
	uint32_t h[8];
	unsigned char buf[64]; /* partial block */
	size_t nbuf;
	uint64_t total; /* message bytes */
};

/* HMAC-SHA-256 with a 32-byte key: the states after the padded keys. */
struct sha2x_hmac {
	struct sha2x inner, outer;
};

/* True when the CPU has the SHA extensions; the rest needs them. */
bool sha2x_supported(void);
void sha2x_init(struct sha2x *c);
void sha2x_update(struct sha2x *c, const void *p, size_t n);
/* Feed the same @n bytes to @a and @b, the two hashes interleaved. */
void sha2x_update2(struct sha2x *a, struct sha2x *b, const void *p, size_t n);
/*
 * The length of the next chunk of @p[0..n), as cdc_cut() finds it, with
 * that chunk fed to @a and, unless NULL, @b (as sha2x_update2() and
 * sha2x_update() would): each 64-byte block is hashed right after the
 * gear hash has rolled over it, so that the chunker's chain of
 * dependent additions runs beside the SHA-256 rounds instead of before
 * them.
 */
size_t sha2x_cdc(const struct cdc *c, const unsigned char *p, size_t n,
		 struct sha2x *a, struct sha2x *b);
/* The digest of @c (which is spent). */
void sha2x_final(struct sha2x *c, unsigned char md[32]);
void sha2x_hmac_init(struct sha2x_hmac *m, const unsigned char key[32]);
/*
 * HMAC of a message fed to @inner, a copy of m->inner (spent); @m is
 * left as it was.
 */
void sha2x_hmac_final(const struct sha2x_hmac *m, struct sha2x *inner,
		      unsigned char md[32]);

/* ---- chunker (chunker.c) ---- */

struct cdc {
	uint32_t min, avg, max;
	uint64_t mask_s, mask_l;
	const uint64_t *gear; /* the gear table (FORMAT.md) */
};

void cdc_init(struct cdc *c, uint32_t min, uint32_t avg, uint32_t max);
/* Length of the next chunk of @p[0..n); @n >= max unless at the end. */
size_t cdc_cut(const struct cdc *c, const unsigned char *p, size_t n);

/*
 * Roll the gear hash *@fp over @p[i..end): the offset just past the
 * first byte after which the bits of @mask are all zero (a cut), or 0
 * when there is none.  Both cdc_cut() and sha2x_cdc() scan with it.
 */
static inline size_t cdc_roll(const struct cdc *c, uint64_t *fp, uint64_t mask,
			      const unsigned char *p, size_t i, size_t end)
{
	uint64_t h = *fp;

	for (; i < end; i++) {
		h = (h << 1) + c->gear[p[i]];
		if (!(h & mask)) {
			*fp = h;
			return i + 1;
		}
	}
	*fp = h;
	return 0;
}

/* ---- chunk records (pack.c) ---- */

struct chunk_hdr {
	uint8_t flags;
	unsigned char id[32];
	uint32_t plain; /* plaintext bytes */
	uint32_t stored; /* payload bytes after the header */
	unsigned char
		nonce[GCM_NONCE_LEN]; /* or chk64/chk2 of plain payloads */
};

void le32_put(unsigned char *p, uint32_t v);
void le64_put(unsigned char *p, uint64_t v);

/* Little-endian loads; inline, the checksums run them over every payload. */
static inline uint32_t le32_get(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static inline uint64_t le64_get(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

void chunk_hdr_encode(const struct chunk_hdr *h, unsigned char *out);
/* The checksum of plain record @h's payload (@h->stored bytes at @p). */
uint64_t chunk_sum(const struct chunk_hdr *h, const void *p);
/* Parse and validate a header; -EBADMSG when it is not one. */
int chunk_hdr_decode(const unsigned char *in, struct chunk_hdr *h);

/* A sealed chunk record: its header, then its payload. */
struct chunk_rec {
	unsigned char hdr[CHUNK_HDR_LEN];
	const unsigned char *payload; /* the chunk itself, or in the scratch */
	size_t len; /* of the payload */
};

/*
 * Seal plaintext chunk @p (@n bytes, id @id) into @rec: lz4 and AES-GCM
 * write into @tmp (per-thread scratch; encryption in place), a plain chunk
 * stored raw is not copied at all (@rec->payload is @p then).  @lz4 is
 * per-thread lz4 state.  @ns: NULL, or stage times (enum store_stage) to
 * add the lz4 and sealing CPU time to.
 */
int chunk_seal(const struct store_keys *k, const unsigned char *id,
	       const void *p, size_t n, void *lz4, struct buf *tmp,
	       struct chunk_rec *rec, uint64_t *ns);

/* CPU time of the calling thread in nanoseconds (stage timers). */
uint64_t thread_cpu_ns(void);

/*
 * Verify record payload @payload of header @h and append the plaintext
 * to @out.  @raw is the header as stored (AAD).  @rehash: recompute the
 * id from the plaintext.  Returns 0 or -EBADMSG.
 */
int chunk_unseal(const struct store_keys *k, const unsigned char *raw,
		 const struct chunk_hdr *h, const void *payload, bool rehash,
		 struct buf *out);
/* As chunk_unseal() into @dst (h->plain bytes), with @tmp as scratch. */
int chunk_decode(const struct store_keys *k, const unsigned char *raw,
		 const struct chunk_hdr *h, const void *payload, bool rehash,
		 struct buf *tmp, unsigned char *dst);

void pack_hdr_encode(unsigned char *out);
int pack_hdr_check(const unsigned char *in);

/*
 * Walk the records of the pack open at @fd (@size bytes).  @rec gets
 * each record that parses (header and payload within the file); @bad
 * gets each range that does not [off, end).  Either may be NULL; a
 * non-zero return stops the walk and is returned.
 */
struct pack_walk {
	int (*rec)(void *arg, uint64_t off, const unsigned char *raw,
		   const struct chunk_hdr *h);
	int (*bad)(void *arg, uint64_t off, uint64_t end);
	void *arg;
};
int pack_walk(int fd, uint64_t size, const struct pack_walk *pw);

/*
 * Make room for @need elements of @elem bytes in the array *@arr that has
 * room for *@alloc (doubling).  Returns 0 or -ENOMEM (array unchanged).
 */
int array_grow(void *arr, size_t *alloc, size_t need, size_t elem);

/* ---- descriptors and id sets (desc.c) ---- */

int desc_begin(struct buf *d);
int desc_add(struct buf *d, const unsigned char *id, uint64_t end);
int desc_end(struct buf *d, uint64_t count);
/* Entry @i of a checked descriptor: id and [start, end). */
void desc_entry(const void *desc, uint64_t i, const unsigned char **id,
		uint64_t *start, uint64_t *end);

/* A hash map from 32-byte id to a 64-bit value. */
struct idmap {
	unsigned char *keys; /* cap * 32 */
	uint64_t *vals;
	unsigned char *used;
	size_t cap, count;
};
void idmap_init(struct idmap *m);
void idmap_release(struct idmap *m);
void idmap_clear(struct idmap *m);
int idmap_put(struct idmap *m, const unsigned char *id, uint64_t val);
bool idmap_get(const struct idmap *m, const unsigned char *id, uint64_t *val);

/* ---- index (index.c) ---- */

struct loc {
	int64_t pack;
	uint64_t off;
	uint32_t stored, plain;
	uint8_t flags;
};

int index_open(struct store *st, bool create);
void index_close(struct store *st);
/* Look @id up; 0, -ENOENT or -EIO.  Takes st->db_lock. */
int index_get(struct store *st, const unsigned char *id, struct loc *loc);
/* Pack path relative to REPO for @pack. Takes st->db_lock. */
int index_pack_name(struct store *st, int64_t pack, struct buf *name);
int index_errno(struct store *st, int rc, const char *what);
/* Read-only stores: lookups share read transactions of @ms (index.c). */
int index_hold_start(struct store *st, unsigned ms);
/* End the shared read transaction: the next lookup sees the newest commit. */
void index_unhold(struct store *st);
/* Run @sql (no rows); caller holds st->db_lock. */
int index_exec(struct store *st, const char *sql);

/* ---- the store (store.c) ---- */

struct pending {
	unsigned char id[32];
	struct loc loc;
	bool busy; /* its record is still being written */
};

struct unsynced {
	int fd;
	int64_t pack;
	uint64_t size;
};

/*
 * A lane: one open pack being appended to, held by one appender (a
 * writer, while it stores a content) at a time, so that the records of
 * one content lie one after the other in the pack however many writers
 * append at once.  Fields are protected by st->wlock.
 */
struct lane {
	int fd; /* -1: no pack yet (the next append creates one) */
	int64_t pack; /* its index id */
	uint64_t off; /* its size */
	uint64_t wb; /* writeback started up to here (hint only) */
	bool held; /* by an appender */
	/*
	 * Where the file system takes direct I/O, records are gathered in
	 * @stage and written in whole blocks past the page cache (@dfd);
	 * the partial last block stays staged, written through the page
	 * cache only when the records must be readable (a reader of a
	 * pending chunk, flush, rotation).  @stage holds the pack's bytes
	 * [stage_off, off), and [0, disk) is in the file.  @busy: its
	 * appender or a reader is filling or writing the stage; others wait
	 * on st->wcond.
	 */
	int dfd; /* the pack opened O_DIRECT; -1: through the page cache */
	unsigned char *stage; /* STAGE_CAP bytes, STAGE_ALIGN aligned */
	uint64_t stage_off; /* a multiple of STAGE_ALIGN */
	uint64_t disk;
	bool busy;
};

#define STAGE_ALIGN 4096u /* direct I/O: offsets, sizes and memory */
#define STAGE_WRITE (4u << 20) /* write the stage out from this size */
#define STAGE_CAP   (8u << 20) /* room of a lane's stage */

/* A plaintext buffer of the chunk cache and its allocated size. */
struct cbuf {
	unsigned char *p;
	size_t cap;
};

#define CBUF_POOL  4 /* evicted buffers kept for the next loads */
#define LOAD_SLOTS 16 /* chunks being loaded, that others wait for */

struct cache_ent {
	unsigned char id[32];
	struct store *st; /* whose buffer pool gets data back */
	unsigned char *data;
	size_t cap; /* bytes allocated at data (counted by the cache) */
	uint32_t len;
	atomic_int refs;
	struct cache_ent *hnext, *prev, *next;
};

struct cache_shard {
	pthread_mutex_t lock;
	struct cache_ent **bucket; /* protected by lock */
	size_t nbucket;
	struct cache_ent *head, *tail; /* LRU: head is newest */
};

struct fd_slot {
	int64_t pack; /* -1: free */
	int fd; /* -1 while opening */
	unsigned refs;
	uint64_t used;
};

struct fd_pool {
	pthread_mutex_t lock;
	struct fd_slot *slot; /* protected by lock */
	unsigned n;
	uint64_t tick;
};

struct store {
	char *repo;
	struct store_info info;
	struct store_keys keys;
	struct cdc cdc;
	int lock_fd;
	uint64_t pack_target;

	pthread_mutex_t db_lock;
	sqlite3 *db; /* protected by db_lock */
	sqlite3_stmt *q_get; /* chunk lookup, protected by db_lock */
	/* read hold (index.c), protected by db_lock */
	unsigned hold_ms; /* 0: none, else the reaper thread runs */
	int64_t held_ms; /* start of the held transaction, 0: none */
	bool hold_stop;
	pthread_cond_t hold_cv;
	pthread_t hold_thread;

	pthread_mutex_t flush_lock; /* one flush (or prune step) at a time */
	pthread_mutex_t wlock;
	/*
	 * Appends reserve their place in the pack under wlock and write it
	 * without: @inflight of them are writing now.  A flush sets
	 * @flushing (no new reservations) and waits for @inflight to drop
	 * to 0 on @wcond; so do readers of a pending chunk still busy.
	 * @werr: a pack write failed; appends and flushes fail with it
	 * from then on (the next writer's recovery cuts the pack back).
	 */
	unsigned inflight;
	bool flushing;
	int werr;
	pthread_cond_t wcond;
	bool no_direct; /* the file system refused O_DIRECT */
	struct lane **lanes; /* open packs (protected by wlock) */
	size_t nlanes, alanes;
	struct unsynced *uns; /* rotated packs awaiting fsync */
	size_t nuns, auns;
	struct pending *pend; /* appended, not yet committed */
	size_t npend, apend;
	struct idmap pendmap; /* id -> index in pend */

	struct cache_shard shard[CACHE_SHARDS];
	size_t cache_cap; /* bytes, for all shards together */
	atomic_size_t cache_bytes; /* bytes cached now */
	atomic_uint cache_rotor; /* next shard to evict from */
	atomic_uint_fast64_t cache_hits, cache_misses;
	pthread_mutex_t cbuf_lock; /* the pool below */
	struct cbuf cbuf[CBUF_POOL]; /* reused so loads fault in no pages */
	unsigned ncbuf;
	pthread_mutex_t load_lock; /* the chunks being loaded: */
	pthread_cond_t load_done;
	unsigned char loading[LOAD_SLOTS][32];
	bool load_busy[LOAD_SLOTS];
	struct fd_pool fds;
};

/*
 * Append a finished record, header @rec and @plen bytes of @payload, to
 * the pack of lane *@lane (rotating it as needed); when *@lane is NULL,
 * a free lane is taken first and left in *@lane, held until
 * store_lane_release().  @dedup: a chunk already pending is not written
 * again (*@dup is then true).
 */
int store_append(struct store *st, struct lane **lane, const unsigned char *rec,
		 const unsigned char *payload, size_t plen, bool dedup,
		 bool *dup);
/* Give lane *@lane back for other appenders (NULL: nothing held). */
void store_lane_release(struct store *st, struct lane **lane);
/* Locate @id: pending rows first, then the index. */
int store_locate(struct store *st, const unsigned char *id, struct loc *loc);
/* As store_locate(), and a pending record is made readable in its pack. */
int store_locate_data(struct store *st, const unsigned char *id,
		      struct loc *loc);
/*
 * Read, verify and decode the chunk at @loc into @out (appended), or,
 * when @out is NULL, into a buffer of the cache's pool *@data (caller
 * owns: cbuf_put() or free()).
 */
int store_chunk_load(struct store *st, const unsigned char *id,
		     const struct loc *loc, bool rehash, struct buf *out,
		     struct cbuf *data);
/* Read the raw record at @loc (header + payload) into @out. */
int store_record_read(struct store *st, const struct loc *loc, struct buf *out);
/* Path of REPO/@rel into @out. */
int store_path(const struct store *st, const char *rel, struct buf *out);
int store_seal_pack(struct store *st);

/* ---- read side (read.c) ---- */

int cache_init(struct store *st, size_t bytes);
void cache_release(struct store *st);
int fdpool_init(struct fd_pool *p, unsigned n);
void fdpool_release(struct fd_pool *p);
/* Forget pool descriptors of @pack (before it is deleted; < 0: all). */
void fdpool_drop(struct store *st, int64_t pack);

/* ---- roots (blob.c) ---- */

#define NAME_MAX_LEN 200 /* of a blob's kind and name */

struct root {
	char kind[NAME_MAX_LEN + 1], name[NAME_MAX_LEN + 1];
	int64_t time;
	uint64_t size;
	unsigned char sha256[32];
	const unsigned char *desc; /* points into the decoded body */
	size_t desc_len;
};

/*
 * Decode root file contents @f into @r; the body lands in @body (r->desc
 * points into it).  Returns 0, -EBADMSG or -ENOMEM.
 */
int root_decode(struct store *st, const struct buf *f, struct buf *body,
		struct root *r);

/* Add the chunks of every blob to @set. */
int roots_keep(struct store *st, struct store_idset *set);
/* Check every root record (decodes, its chunks exist); counts problems. */
int roots_check(struct store *st,
		void (*fn)(void *arg, const struct store_problem *p), void *arg,
		uint64_t *problems);

#endif
