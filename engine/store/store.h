/*
 * store - the content store of a repository (DESIGN.md "The repository",
 * on-disk format in engine/store/FORMAT.md).
 *
 * Content (a file, a mail) is split into chunks by content-defined
 * chunking (FastCDC, ~1 MiB average).  A chunk is named by the SHA-256 of
 * its plaintext (HMAC-SHA-256 with a key derived from the repository key
 * when the repository is encrypted), lz4-compressed (kept raw when that
 * does not help), sealed with AES-256-GCM when encrypted, and appended to
 * a pack file under REPO/data/.  A chunk already stored is not written
 * again.  REPO/index.db maps chunk ids to their place in the packs; it can
 * be rebuilt from the packs alone.
 *
 * A stored content is named by its *content descriptor*: a small opaque
 * blob (the list of its chunks) that the catalog keeps; reads take the
 * descriptor, an offset and a length.
 *
 * One process at a time opens a repository for writing (it takes the
 * lock in REPO/locks/); any number of readers open it read-only and never
 * block nor are blocked.  Data written becomes durable and visible to
 * other processes with store_flush().
 *
 * Thread safety: one struct store may be used by any number of threads at
 * once (reads, writers, flush, blob functions).  A struct store_writer
 * belongs to one thread at a time; use one writer per thread.
 * store_check(), store_index_rebuild() and store_prune() must not run
 * while writers of the same struct store are active.
 *
 * Errors: 0 or -errno.  Notable codes:
 *   -EBADMSG       a chunk or record failed its integrity check (damaged
 *                  pack, wrong data); pack and offset are logged
 *   -EKEYREJECTED  the key given is not the key of this repository
 *   -ENOKEY        the repository is encrypted and no key was given
 *   -EBUSY         the repository is locked by another writer
 *   -EROFS         a write function on a store opened read-only
 *   -ENOENT        no such chunk, blob or repository
 *   -EPROTO        not a repository, or an unsupported format version
 */
#ifndef M365_STORE_H
#define M365_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

#define STORE_KEY_LEN	  32 /* bytes of a repository key */
#define STORE_KEY_B64_LEN 44 /* base64 characters of a key, with padding */
#define STORE_ID_LEN	  32 /* bytes of a chunk id */
#define STORE_FORMAT	  2 /* repository format version (FORMAT.md) */
#define STORE_FORMAT_MIN  1 /* the oldest this version reads and writes */

/* Chunker defaults (bytes); recorded in REPO/config at creation. */
#define STORE_CHUNK_MIN (256u * 1024)
#define STORE_CHUNK_AVG (1024u * 1024)
#define STORE_CHUNK_MAX (4096u * 1024)

struct store;
struct store_writer;
struct store_idset;

/* ------------------------------------------------------------------ */
/* Keys                                                                 */

/**
 * Parse a key written as 44 base64 characters (standard alphabet, with
 * padding; surrounding white space and one trailing newline are
 * accepted) into @key.  Returns 0 or -EINVAL.
 */
int store_key_parse(const char *text, unsigned char key[STORE_KEY_LEN]);

/** Write @key as 44 base64 characters and a NUL into @out. */
void store_key_format(const unsigned char key[STORE_KEY_LEN],
		      char out[STORE_KEY_B64_LEN + 1]);

/**
 * Read a key file (the 44-character base64 form) into @key.  Like ssh, a
 * key file readable or writable by group or others, or owned by a user
 * other than the effective user and root, is refused with -EPERM.  On failure a sentence for people ("key file '%s' is readable
 * by others: run 'chmod 600 %s'") is appended to @why (may be NULL).
 * Returns 0, -ENOENT, -EPERM, -EINVAL (not a key) or -errno.
 */
int store_key_load_file(const char *path, unsigned char key[STORE_KEY_LEN],
			struct buf *why);

/**
 * Read the key from the systemd credential @name
 * ($CREDENTIALS_DIRECTORY/@name).  Returns 0, -ENOENT (no
 * $CREDENTIALS_DIRECTORY or no such credential) or as
 * store_key_load_file(); @why as there.
 */
int store_key_load_credential(const char *name,
			      unsigned char key[STORE_KEY_LEN],
			      struct buf *why);

/* ------------------------------------------------------------------ */
/* Creating and opening                                                 */

struct store_create_opts {
	bool encrypt; /* generate a key; seal every chunk */
	uint32_t chunk_min; /* 0: STORE_CHUNK_MIN (tests may use smaller) */
	uint32_t chunk_avg; /* 0: STORE_CHUNK_AVG; a power of two */
	uint32_t chunk_max; /* 0: STORE_CHUNK_MAX */
};

/**
 * Create a new repository in directory @repo (created if missing; it
 * must be empty or hold no `config`).  @opts may be NULL (plain, default
 * chunker).  With encryption a fresh random key is written to @key_out
 * (required then; show it once with store_key_format(): it is never
 * stored).  Returns 0, -EEXIST (already a repository), -EINVAL or -errno;
 * @why (may be NULL) gets a sentence for people on failure.
 */
int store_create(const char *repo, const struct store_create_opts *opts,
		 unsigned char key_out[STORE_KEY_LEN], struct buf *why);

enum {
	STORE_OPEN_WRITE = 1 << 0, /* take the writer lock; allow writes */
};

struct store_open_opts {
	int flags; /* STORE_OPEN_* */
	const unsigned char *key; /* STORE_KEY_LEN bytes, or NULL (plain) */
	size_t cache_bytes; /* decompressed-chunk cache; 0: 64 MiB */
	unsigned max_fds; /* pack descriptor pool; 0: 64 */
	const char *command; /* lock holder name, e.g. "m365-snapshot" */
	uint64_t pack_target; /* pack size for writers; 0: 64 MiB */
	/*
	 * Read-only stores: index lookups share one read transaction for up
	 * to this long (ms; 0: each lookup is its own).  Saves three system
	 * calls per lookup; a chunk written since is still found (a miss
	 * asks again outside the shared transaction).
	 */
	unsigned read_hold_ms;
};

/**
 * Open repository @repo.  @opts may be NULL (read-only, plain, defaults).
 * The key is borrowed only during the call.  With STORE_OPEN_WRITE the
 * writer lock is taken (flock: a crashed holder never blocks), packs
 * left unfinished by a crashed writer are cut back to their last
 * committed chunk, a missing index.db is rebuilt from the packs, and
 * write functions are allowed.
 *
 * On success *@out is the store (caller owns, free with store_close()).
 * On failure *@out is NULL and @why (may be NULL) gets a sentence for
 * people; on -EBUSY it gets only the holder description, e.g.
 * "m365-snapshot (pid 1234 on host, since 2026-11-21T02:00:00Z)", so
 * the tool can say "repository '%s' is locked by %s".
 * Returns 0, -ENOENT, -EPROTO, -ENOKEY, -EKEYREJECTED, -EBUSY or -errno.
 */
int store_open(const char *repo, const struct store_open_opts *opts,
	       struct store **out, struct buf *why);

/**
 * Flush (as store_flush()) when writable, release the lock, free @st.
 * Writers of @st must have been freed.  NULL is fine.  Returns the
 * result of the final flush (0 for read-only stores).
 */
int store_close(struct store *st);

struct store_info {
	char repo_id[33]; /* 32 hex digits */
	unsigned format; /* of the repository: STORE_FORMAT_MIN..STORE_FORMAT */
	bool encrypted;
	bool writable;
	uint32_t chunk_min, chunk_avg, chunk_max;
};

/** Fill @info about the open repository. */
void store_info(struct store *st, struct store_info *info);

struct store_stats {
	uint64_t cache_bytes; /* decompressed chunks held now */
	uint64_t cache_cap; /* the cache's budget */
	uint64_t cache_hits; /* chunk lookups served from the cache */
	uint64_t cache_misses; /* chunk loads from packs */
	unsigned fds_open; /* pack descriptors held by the pool */
	unsigned fds_max; /* the pool's size */
};

/** Fill @stats with counters of @st (approximate while threads run). */
void store_stats(struct store *st, struct store_stats *stats);

/**
 * Describe the current holder of the writer lock of @repo into @out
 * ("m365-snapshot (pid 1234 on host, since ...)").  Returns 0, -ENOENT
 * (not locked) or -errno.  Does not take the lock.
 */
int store_lock_holder(const char *repo, struct buf *out);

/**
 * Make everything written so far durable and visible: fsync the packs,
 * then commit the index rows.  Call it before committing catalog rows
 * that point at the data.  Safe to call from any thread, concurrently
 * with writers (it covers what they appended before the call).
 * Returns 0, -EROFS or -errno.  After a failed pack write (a full disk)
 * every later flush and append of this struct store fails with that
 * error: nothing written after the failure commits; close the store
 * and open it again (the writer's recovery cuts the pack back).
 */
int store_flush(struct store *st);

/* ------------------------------------------------------------------ */
/* Writing content                                                      */

struct store_content {
	struct buf desc; /* content descriptor (caller owns) */
	uint64_t size; /* bytes of content */
	unsigned char sha256[32]; /* SHA-256 of the whole content */
	uint64_t chunks; /* chunks in the descriptor */
	uint64_t new_chunks; /* of which newly stored */
	uint64_t new_bytes; /* plaintext bytes newly stored */
	uint64_t stored_bytes; /* bytes appended to packs */
};

/** Initialise @c (empty descriptor). */
void store_content_init(struct store_content *c);

/** Free the descriptor of @c. NULL is fine. */
void store_content_release(struct store_content *c);

/**
 * New streaming writer for one thread (caller owns, free with
 * store_writer_free()).  Returns 0, -EROFS or -ENOMEM.
 */
int store_writer_new(struct store *st, struct store_writer **out);

/**
 * Add @n bytes of content (any piece size, 0 is fine).  Chunking,
 * hashing, compression and sealing run in the calling thread; completed
 * chunks are appended to the pack the writer holds while its content is
 * stored (so they lie one after the other on disk, whatever other writers
 * append meanwhile).  Returns 0 or -errno; after an
 * error the content is abandoned (store_writer_reset() to start over).
 */
int store_writer_add(struct store_writer *w, const void *p, size_t n);

/**
 * Add content without copying it: store_writer_space() gives the free
 * room at the end of the writer's own buffer (*@p, *@n > 0 bytes) to
 * read the next bytes into, store_writer_commit() then adds the first @n
 * of them (@n no more than that room; 0 is fine) as store_writer_add()
 * would.  The room is valid until the next call on @w.  Both return 0 or
 * -errno (-EINVAL: @n beyond the room).
 */
int store_writer_space(struct store_writer *w, void **p, size_t *n);
int store_writer_commit(struct store_writer *w, size_t n);

/**
 * Add the rest of the open file @fd (from its current position to its
 * end), read straight into the writer's buffer.  Returns 0 or -errno.
 */
int store_writer_add_fd(struct store_writer *w, int fd);

/**
 * End the content: store its last chunk and fill @res (its descriptor is
 * replaced; @res must have been initialised).  The writer is ready for
 * the next content afterwards.  The chunks become durable and visible to
 * other processes at the next store_flush().  Returns 0 or -errno.
 */
int store_writer_finish(struct store_writer *w, struct store_content *res);

/*
 * Where a writer's time went, per stage, for benchmarks and tuning.
 * Stage times are CPU seconds of the writer's thread, in nanoseconds,
 * counted only after store_writer_timing(w, true); the byte and chunk
 * counts always.  STORE_STAGE_WAIT is wall time, not CPU: what the pack
 * append took beyond its CPU time (waiting for the lock, the disk or a
 * CPU).  Where the CPU has the SHA extensions, the SHA-256 of the whole
 * content is computed in the same pass as the chunk ids and counts to
 * STORE_STAGE_ID.
 */
enum store_stage {
	STORE_STAGE_COPY, /* into the chunker window */
	STORE_STAGE_CHUNK, /* FastCDC cut points */
	STORE_STAGE_ID, /* chunk ids: SHA-256 or HMAC-SHA-256 */
	STORE_STAGE_WHOLE, /* SHA-256 of the whole content */
	STORE_STAGE_LOOKUP, /* dedup: pending chunks, then the index */
	STORE_STAGE_LZ4, /* incompressibility samples and lz4 */
	STORE_STAGE_SEAL, /* AES-256-GCM, or the checksum of plain chunks */
	STORE_STAGE_APPEND, /* the pack write */
	STORE_STAGE_WAIT, /* append wall time beyond its CPU time */
	STORE_STAGES
};

struct store_writer_stats {
	uint64_t bytes; /* content bytes added */
	uint64_t chunks, new_chunks; /* chunks cut; of which stored */
	uint64_t ns[STORE_STAGES];
};

/** Short name of stage @s ("chunk", "lz4", ...); "?" when out of range. */
const char *store_stage_name(int s);

/** Count stage times from now on (@on) or stop counting them. */
void store_writer_timing(struct store_writer *w, bool on);

/**
 * Add the counts of @w since its creation to @out (so the stats of
 * several writers can be summed into one).
 */
void store_writer_stats_add(const struct store_writer *w,
			    struct store_writer_stats *out);

/** Abandon the content being written; the writer starts afresh. */
void store_writer_reset(struct store_writer *w);

/**
 * Bytes of buffers @w holds now.  Between contents (after finish or
 * reset) at most a few MiB, whatever the size of the contents it stored.
 */
size_t store_writer_held(const struct store_writer *w);

/** Free @w (abandoning unfinished content).  NULL is fine. */
void store_writer_free(struct store_writer *w);

/**
 * Store @n bytes at @p as one content (a writer, add, finish).
 * Fills @res as store_writer_finish().  Returns 0 or -errno.
 */
int store_put(struct store *st, const void *p, size_t n,
	      struct store_content *res);

/**
 * Store the content of the open file @fd (read from its current position
 * to its end) as one content.  Returns 0 or -errno.
 */
int store_put_fd(struct store *st, int fd, struct store_content *res);

/* ------------------------------------------------------------------ */
/* Reading content                                                      */

/**
 * Check that @desc (@len bytes) is a well-formed descriptor and give its
 * content size (@size) and chunk count (@chunks); either may be NULL.
 * Returns 0 or -EBADMSG.
 */
int store_desc_parse(const void *desc, size_t len, uint64_t *size,
		     uint64_t *chunks);

/**
 * Call @fn for each chunk of @desc in order: id, offset of the chunk in
 * the content, plaintext length.  A non-zero return of @fn stops the
 * walk and is returned.  Returns 0, -EBADMSG or @fn's value.
 */
int store_desc_foreach(const void *desc, size_t len,
		       int (*fn)(void *arg, const unsigned char *id,
				 uint64_t off, uint32_t len),
		       void *arg);

/**
 * Read up to @n bytes at offset @off of the content named by @desc into
 * @p.  Returns the number of bytes read (less than @n only at the end of
 * the content, 0 at or past it), -EBADMSG (malformed descriptor or a
 * damaged chunk: the read fails, other chunks stay readable), -ENOENT (a
 * chunk is missing from the repository) or -errno.  Decompressed chunks
 * go through the store's bounded cache; any number of threads may read
 * at once.
 */
ssize_t store_read(struct store *st, const void *desc, size_t desc_len,
		   uint64_t off, void *p, size_t n);

/*
 * A referenced view of one decompressed chunk of a content, from the
 * store's cache (store_view_get()); the bytes stay valid until
 * store_view_put(), even if the cache evicts the chunk meanwhile.
 */
struct store_view {
	const unsigned char *data; /* the chunk's plaintext */
	uint64_t off; /* offset of the chunk in the content */
	size_t len; /* bytes at @data */
	bool loaded; /* this call read it from a pack (it was not cached) */
	void *priv; /* the cache entry */
};

/**
 * The chunk of content @desc that holds offset @off, referenced into @v
 * (give it back with store_view_put()).  Lets a reader answer from the
 * cache without a copy, and learn whether the chunk had to be loaded.
 * Returns 0, -ERANGE (@off at or past the end), or as store_read().
 */
int store_view_get(struct store *st, const void *desc, size_t desc_len,
		   uint64_t off, struct store_view *v);

/**
 * Give back the reference of @v (zeroed).  A zeroed view is fine.  Every
 * view must be given back before its store is closed.
 */
void store_view_put(struct store_view *v);

/**
 * Read the whole content of @desc and write it to @fd.
 * Returns 0 or -errno as store_read().
 */
int store_read_fd(struct store *st, const void *desc, size_t desc_len, int fd);

/**
 * Append the plaintext of chunk @id to @out (bypasses the cache).
 * @out is left unchanged on error.
 * Returns 0, -ENOENT (no such chunk), -EBADMSG or -EIO.
 */
int store_chunk_get(struct store *st, const unsigned char id[STORE_ID_LEN],
		    struct buf *out);

/** True when chunk @id is in the repository (index or unflushed). */
bool store_chunk_exists(struct store *st, const unsigned char id[STORE_ID_LEN]);

/* ------------------------------------------------------------------ */
/* Named blobs (root records): the catalog copy after each snapshot    */

struct store_blob_info {
	const char *kind; /* e.g. "catalog" (borrowed: the call) */
	const char *name; /* e.g. "2026-11-21T02:00:00Z" */
	int64_t time; /* seconds since the epoch when stored */
	uint64_t size; /* content bytes */
	unsigned char sha256[32]; /* of the content */
	const void *desc; /* content descriptor (borrowed: the call) */
	size_t desc_len;
};

/**
 * Store @n bytes as the blob (@kind, @name) replacing any earlier blob of
 * that kind and name: the content goes through the chunk/pack path, is
 * flushed, then a small (encrypted) root record under REPO/roots/ names
 * it.  @kind and @name: 1-200 bytes, no NUL.  Returns 0, -EROFS,
 * -EINVAL or -errno.
 */
int store_blob_put(struct store *st, const char *kind, const char *name,
		   const void *p, size_t n);

/** As store_blob_put() with the content of the file at @path. */
int store_blob_put_file(struct store *st, const char *path, const char *kind,
			const char *name);

/**
 * Call @fn for every blob (of @kind only, unless @kind is NULL), in no
 * particular order.  A non-zero return of @fn stops the walk and is
 * returned.  Damaged root records are logged and skipped.
 * Returns 0, @fn's value or -errno.
 */
int store_blob_list(struct store *st, const char *kind,
		    int (*fn)(void *arg, const struct store_blob_info *b),
		    void *arg);

/**
 * Write the content of blob (@kind, @name) to a new file @path (mode
 * 0600, written atomically).  Returns 0, -ENOENT, -EBADMSG or -errno.
 */
int store_blob_get_file(struct store *st, const char *kind, const char *name,
			const char *path);

/**
 * Read blob (@kind, @name) into @out (appended).
 * Returns 0, -ENOENT, -EBADMSG or -errno.
 */
int store_blob_get(struct store *st, const char *kind, const char *name,
		   struct buf *out);

/**
 * Remove the root record of blob (@kind, @name); its chunks go at the
 * next prune.  Returns 0, -ENOENT, -EROFS or -errno.
 */
int store_blob_delete(struct store *st, const char *kind, const char *name);

/* ------------------------------------------------------------------ */
/* Sets of chunk ids (for prune)                                        */

/** New empty set (caller owns, free with store_idset_free()). */
struct store_idset *store_idset_new(void);

/** Free @s. NULL is fine. */
void store_idset_free(struct store_idset *s);

/** Add @id. Returns 0 or -ENOMEM. */
int store_idset_add(struct store_idset *s, const unsigned char *id);

/** Add every chunk of descriptor @desc. Returns 0, -EBADMSG or -ENOMEM. */
int store_idset_add_desc(struct store_idset *s, const void *desc, size_t len);

/** True when @id is in @s. */
bool store_idset_has(const struct store_idset *s, const unsigned char *id);

/** Number of ids in @s. */
size_t store_idset_count(const struct store_idset *s);

/* ------------------------------------------------------------------ */
/* Maintenance                                                          */

enum {
	STORE_CHECK_READ_DATA = 1 << 0, /* decrypt, decompress, re-hash all */
};

enum store_problem_kind {
	STORE_PROBLEM_CHUNK = 1, /* a chunk is damaged or missing */
	STORE_PROBLEM_TORN_TAIL, /* a pack ends in an incomplete record */
	STORE_PROBLEM_PACK, /* a pack is missing or unreadable */
	STORE_PROBLEM_ROOT, /* a root record is damaged */
};

struct store_problem {
	enum store_problem_kind kind;
	const unsigned char *id; /* the chunk (STORE_PROBLEM_CHUNK), or NULL */
	/* pack path relative to REPO/data ("xx/<hex>.pack"), the root file
	 * (STORE_PROBLEM_ROOT, or a blob's missing chunk), or NULL */
	const char *pack;
	uint64_t offset; /* offset in the pack */
	int err; /* -EBADMSG, -ENOENT, -EIO, ... */
	const char *what; /* short description for people */
};

struct store_check_stats {
	uint64_t packs, chunks, bytes; /* examined */
	uint64_t problems; /* reported through the callback */
};

/**
 * Check the repository: every index entry's pack exists and the entry
 * parses there; every pack parses to its end; with
 * STORE_CHECK_READ_DATA every chunk is read, decrypted, decompressed and
 * re-hashed; root records decrypt.  Each problem is passed to @fn (may be
 * NULL) so the tool can name the affected files; @stats may be NULL.
 * Returns 0 when clean, -EBADMSG when problems were found, or -errno
 * when the check itself failed.
 */
int store_check(struct store *st, int flags,
		void (*fn)(void *arg, const struct store_problem *p), void *arg,
		struct store_check_stats *stats);

/**
 * Rebuild REPO/index.db from the packs alone (each chunk is verified;
 * damaged chunks and torn tails are skipped and logged).
 * Needs a writable store.  Returns 0, -EROFS or -errno.
 */
int store_index_rebuild(struct store *st);

/* Prune rewrites a pack once more than this % of its bytes is unused. */
#define STORE_PRUNE_MIN_UNUSED 10

struct store_prune_stats {
	uint64_t packs_rewritten, packs_deleted;
	uint64_t chunks_kept, chunks_deleted;
	uint64_t bytes_before, bytes_after; /* total pack bytes */
	/* packs left as they are though they hold unused chunks (not more
	 * than the threshold), and the bytes of those chunks */
	uint64_t packs_below_threshold, bytes_unused_kept;
};

/**
 * Remove chunks that are neither in @keep nor referenced by a blob (root
 * record): a pack with no chunk in use is deleted; a pack of which more
 * than STORE_PRUNE_MIN_UNUSED % of the bytes is unused is rewritten (its
 * kept chunks copied to new packs, fsynced and indexed) and then
 * deleted; a pack with less waste is left as it is (copying most of a
 * pack to reclaim a little of it is not worth the I/O) and its unused
 * chunks stay readable until a later prune.  Packs no index entry points
 * to are deleted.  A crash at any point leaves a valid repository.
 * Needs a writable store with no active writers.  @stats may be NULL.
 * Returns 0, -EROFS or -errno.
 */
int store_prune(struct store *st, const struct store_idset *keep,
		struct store_prune_stats *stats);

/**
 * As store_prune() with the threshold @min_unused_pct (0..100) instead of
 * STORE_PRUNE_MIN_UNUSED: 0 rewrites every pack with any unused chunk.
 */
int store_prune_ex(struct store *st, const struct store_idset *keep,
		   unsigned min_unused_pct, struct store_prune_stats *stats);

#endif
