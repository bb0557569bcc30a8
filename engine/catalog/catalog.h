/*
 * catalog - the SQLite catalog of snapshots and versioned items
 * (REPO/catalog.db, WAL mode; the format is in engine/catalog/SCHEMA.md).
 *
 * The tree.  Every snapshot shows one tree of items.  An item has a stable
 * item id (int64, never reused) across snapshots; each change (content,
 * metadata, rename, move) writes a new *version* of the item, valid in the
 * snapshots [from_snap, to_snap) (to_snap 0 = still valid).  The root of
 * every snapshot is the implicit item CAT_ROOT (never stored, always a
 * directory); the walker creates the top-level directories ("sites",
 * "onedrive", "mailboxes") under it.  Names are stored as given: the
 * walker maps tenant names to safe, unique names before calling us; the
 * catalog refuses a second current item with the same name in a folder.
 *
 * Readers (the FUSE daemon, list/check tools) open with CAT_OPEN_READ and
 * ask questions about one visible snapshot id: only complete and partial
 * snapshots are visible, a running or failed one never is.  A new snapshot
 * becomes visible to readers in other processes exactly when its final
 * transaction commits (cat_snapshot_finish()); readers never block it and
 * are never blocked by it.
 *
 * The writer (the snapshot walker; the caller holds the repository's
 * writer lock from the store) opens with CAT_OPEN_WRITE, calls
 * cat_snapshot_begin(), then cat_item_put()/cat_item_delete() for what it
 * sees (an unchanged item costs a lookup and no write), optional
 * cat_sweep_begin()/cat_sweep_end() around a full walk of a scope,
 * cat_delta_set() for each delta token it consumed, and finally
 * cat_snapshot_finish().  Rows are committed in batches during the run
 * (cat_commit(), or automatically every CAT_BATCH_ROWS changes or 0.5 s,
 * cat_set_batch() to change, after the commit hook, e.g. store_flush(),
 * succeeded) so the WAL and memory stay bounded.  A run that dies (killed, crashed) or finishes as failed is
 * rolled back by the next writer (cat_snapshot_begin() or
 * cat_recover()): its item versions and delta tokens go away, the
 * versions it ended are valid again, and it stays in the list as "failed"
 * with its errors and counters.
 * Contents (cat_content_put()) survive a rolled-back run, so the next run
 * never downloads them again.
 *
 * Thread safety: a struct cat may be used from any number of threads at
 * once.  CAT_OPEN_READ keeps a small pool of SQLite connections
 * (SQLITE_OPEN_NOMUTEX), each with its own cached prepared statements; a
 * call borrows one for its duration, so a connection is never used by two
 * threads at the same time and calls run in parallel.  CAT_OPEN_WRITE has
 * one connection and serialises calls with an internal mutex.  Callbacks
 * run in the calling thread while the connection is borrowed: they must
 * not call back into the same struct cat.  Memory: each reader connection
 * caches at most 4 MiB of pages (no mmap), the writer 8 MiB.
 *
 * Errors: 0 or -errno.  -ENOENT: no such item/snapshot/content (an answer,
 * not logged).  -EEXIST: name already used in that folder.  -EBUSY: the
 * database is locked by another process for too long.  -EBADMSG: the
 * catalog (or a copy being imported) is corrupt or fails its invariants.
 * -EROFS: a writer call on a read-only catalog.  -EPROTO: unsupported
 * schema version (newer program needed).  -EINVAL: bad argument (logged).
 * SQLite errors are mapped to errno in one place, which logs the detail.
 */
#ifndef M365_CATALOG_H
#define M365_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct cat;

/* File name of the catalog inside the repository directory. */
#define CAT_FILE "catalog.db"

/* Current schema version (PRAGMA user_version); SCHEMA.md has the list. */
#define CAT_SCHEMA_VERSION 1

/* The implicit root directory of every snapshot. */
#define CAT_ROOT ((int64_t)1)

/*
 * Pseudo snapshot id for "the current state": the versions that are still
 * valid (to_snap 0), including those written by the running snapshot.
 * Meant for the writer; readers use the ids of visible snapshots.
 */
#define CAT_SNAP_CURRENT INT64_MAX

/* Longest name of an item, in bytes (without the NUL). */
#define CAT_NAME_MAX 255

/* Changes between two automatic batch commits during a run. */
#define CAT_BATCH_ROWS 20000

/* ---- opening ---------------------------------------------------------- */

enum cat_open_flags {
	CAT_OPEN_READ = 0, /* readers; restore-queue calls are allowed */
	CAT_OPEN_WRITE = 1, /* the one writer (caller holds the repo lock) */
	CAT_OPEN_CREATE = 2, /* with CAT_OPEN_WRITE: create when missing */
};

/**
 * Open the catalog database file @path (usually REPO/CAT_FILE) with
 * @flags (enum cat_open_flags).  Migrates an older schema when opened for
 * writing; a reader refuses an older or newer schema with -EPROTO.
 * A writer rolls back runs that died (see cat_recover()); a run whose
 * writer process still lives on this host is refused with -EBUSY instead
 * (the repository lock should have prevented the second writer).
 * On success *@out is the catalog: caller owns it, free with cat_close().
 * Returns 0, -ENOENT (no such file, no CAT_OPEN_CREATE), -EPROTO, -EBUSY,
 * -EBADMSG (not a catalog), -ENOMEM or -EIO.
 */
int cat_open(const char *path, int flags, struct cat **out);

/**
 * Close @c and free it; a running snapshot is left to cat_recover().
 * NULL is fine.
 */
void cat_close(struct cat *c);

/**
 * Roll back every snapshot left running by a dead writer: remove its
 * versions and delta tokens (errors and counters stay), make the versions
 * it ended valid again, mark it failed.  cat_open() (write) and
 * cat_snapshot_begin() call it; exposed for tools.  @rolled_back (may be
 * NULL) receives the number of snapshots rolled back.
 * Returns 0, -EROFS, -EBUSY (the writer of that run still runs on this
 * host) or an I/O error.
 */
int cat_recover(struct cat *c, int *rolled_back);

/* ---- snapshots -------------------------------------------------------- */

enum cat_snap_status {
	CAT_SNAP_RUNNING = 0,
	CAT_SNAP_COMPLETE = 1,
	CAT_SNAP_PARTIAL = 2, /* finished with per-item errors; visible */
	CAT_SNAP_FAILED = 3, /* rolled back; listed for its errors only */
};

/* Counters of one snapshot (totals, or increments for _count()). */
struct cat_counters {
	int64_t items; /* items seen (any kind) */
	int64_t files; /* files seen */
	int64_t messages; /* messages seen */
	int64_t bytes_new; /* content bytes stored for the first time */
	int64_t bytes_reused; /* content bytes found already stored */
	int64_t requests; /* Graph requests made */
	int64_t throttled; /* waits on 429/503 */
	int64_t errors; /* per-item errors recorded */
};

struct cat_snapshot {
	int64_t id; /* increasing; the first snapshot is 1 */
	int64_t start; /* UTC seconds since the epoch */
	int64_t end; /* 0 while running */
	int status; /* enum cat_snap_status */
	struct cat_counters n;
};

/**
 * Start a new snapshot (status running), first rolling back dead runs.
 * *@snap receives its id, which is larger than every earlier id.
 * Returns 0, -EROFS, -EALREADY (this struct cat already runs one).
 */
int cat_snapshot_begin(struct cat *c, int64_t *snap);

/**
 * Add @delta to the counters of the running snapshot (committed with the
 * next batch).  Returns 0 or -EINVAL (no running snapshot).
 */
int cat_snapshot_count(struct cat *c, const struct cat_counters *delta);

/**
 * Record a per-item error of the running snapshot: @service ("sharepoint",
 * "onedrive", "exchange"), @path (mounted path, may be NULL), @graph_id
 * (may be NULL), @reason (a sentence for people).  Strings are copied.
 * Also counts it in n.errors.  Returns 0, -EINVAL or an I/O error.
 */
int cat_snapshot_error(struct cat *c, const char *service, const char *path,
		       const char *graph_id, const char *reason);

/**
 * Finish the running snapshot with @status CAT_SNAP_COMPLETE or
 * CAT_SNAP_PARTIAL (it becomes visible, atomically, when this returns 0)
 * or CAT_SNAP_FAILED (rolled back now).  Calls the commit hook first.
 * Returns 0, -EINVAL (no running snapshot, bad status), the error that
 * lost a batch earlier in the run (the run is rolled back now), or an I/O
 * error of the final commit (the run stays "running" in the file and the
 * next writer rolls it back).  Either way the run is over for @c.
 */
int cat_snapshot_finish(struct cat *c, int status);

/**
 * Read snapshot @snap into *@out.  Any status.  Returns 0 or -ENOENT.
 */
int cat_snapshot_get(struct cat *c, int64_t snap, struct cat_snapshot *out);

/**
 * *@snap = id of the newest visible (complete or partial) snapshot.
 * Returns 0 or -ENOENT (none yet).
 */
int cat_snapshot_latest(struct cat *c, int64_t *snap);

typedef int (*cat_snapshot_cb)(void *ctx, const struct cat_snapshot *s);

/**
 * Call @cb for each snapshot in increasing id order: only visible ones,
 * or all (running and failed too) when @all.  @s is borrowed for the call.
 * A non-zero return of @cb stops the walk and is returned.
 */
int cat_snapshot_list(struct cat *c, bool all, cat_snapshot_cb cb, void *ctx);

/* One per-item error; path and graph_id may be NULL. */
struct cat_snap_error {
	int64_t snap;
	const char *service, *path, *graph_id, *reason;
};
typedef int (*cat_error_cb)(void *ctx, const struct cat_snap_error *e);

/** Call @cb for each error recorded for @snap (borrowed for the call). */
int cat_snapshot_errors(struct cat *c, int64_t snap, cat_error_cb cb,
			void *ctx);

/**
 * Forget snapshot @snap (retention): it disappears from the list, versions
 * visible in no other remaining snapshot are deleted, still-valid versions
 * are always kept (the next snapshot compares against them).  Afterwards
 * call cat_content_referenced() for the store's prune.  Writer only; not
 * while a snapshot runs.  Returns 0, -ENOENT, -EBUSY (running) or -EROFS.
 */
int cat_snapshot_forget(struct cat *c, int64_t snap);

/* ---- items ------------------------------------------------------------ */

enum cat_kind {
	CAT_KIND_TOP = 1, /* root-level dir: sites, onedrive, mailboxes */
	CAT_KIND_SITE_HOST = 2, /* virtual dir: contoso.sharepoint.com */
	CAT_KIND_SITE_PATH = 3, /* virtual dir: one site path component */
	CAT_KIND_MAILBOX = 4, /* virtual dir: a user's mailbox */
	CAT_KIND_ONEDRIVE = 5, /* virtual dir: a user's OneDrive */
	CAT_KIND_DRIVE = 6, /* document library / drive root */
	CAT_KIND_FOLDER = 7, /* drive folder */
	CAT_KIND_FILE = 8, /* drive file (has content) */
	CAT_KIND_MAIL_FOLDER = 9,
	CAT_KIND_MESSAGE = 10, /* one .eml (has content: the MIME) */
};

/** True for the kinds shown as directories (all but file and message). */
bool cat_kind_is_dir(int kind);

/* One version of one item, as readers get it (self-contained copy). */
struct cat_item {
	int64_t id; /* stable item id */
	int64_t parent; /* item id of the parent; CAT_ROOT at the top */
	int64_t from_snap; /* (id, from_snap) names this version */
	int64_t to_snap; /* 0: still valid */
	int kind; /* enum cat_kind */
	int64_t size; /* bytes (content size; 0 for directories) */
	int64_t mtime_sec; /* lastModifiedDateTime */
	int32_t mtime_nsec;
	int64_t btime_sec; /* createdDateTime (0 = unknown) */
	int32_t btime_nsec;
	int64_t content; /* content id (cat_content_*), 0 = none */
	char name[CAT_NAME_MAX + 1];
};

/*
 * Cold metadata of a version: key/value strings, served as extended
 * attributes.  Keys are Graph's property names; the well-known ones are
 * below.  Messages' CAT_META_SUBJECT and CAT_META_FROM are also kept in
 * text columns ready for full-text search.
 */
struct cat_kv {
	const char *key; /* non-empty, no NUL inside */
	const char *val; /* NULL: pair skipped */
};
#define CAT_META_GRAPH_ID     "id"
#define CAT_META_DRIVE_ID     "driveId"
#define CAT_META_WEB_URL      "webUrl"
#define CAT_META_ETAG	      "eTag"
#define CAT_META_CTAG	      "cTag"
#define CAT_META_QUICKXORHASH "quickXorHash"
#define CAT_META_AUTHOR	      "author"
#define CAT_META_RECEIVED     "receivedDateTime"
#define CAT_META_FROM	      "from"
#define CAT_META_SUBJECT      "subject"
#define CAT_META_IS_READ      "isRead"
#define CAT_META_FLAG	      "flag"

/* What the writer knows about an item now (all borrowed for the call). */
struct cat_item_in {
	int64_t parent; /* existing item id, or CAT_ROOT */
	int kind; /* enum cat_kind */
	const char *name; /* safe unique name, 1..CAT_NAME_MAX bytes, no '/' */
	const char *scope; /* e.g. "drive:<driveId>", "mail:<mailboxId>"; */
	const char *graph_id; /*   both NULL for items without a Graph id */
	int64_t size;
	int64_t mtime_sec;
	int32_t mtime_nsec;
	int64_t btime_sec;
	int32_t btime_nsec;
	int64_t content; /* content id or 0 */
	const struct cat_kv *meta; /* @nmeta pairs (may be NULL) */
	size_t nmeta;
};

/*
 * Result of cat_item_put(): UNCHANGED = same as the current version,
 * nothing written; NEW = a new item (or one deleted earlier, back again);
 * CHANGED = a new version (content, metadata, name or parent differ).
 */
enum cat_put_result {
	CAT_PUT_UNCHANGED = 0,
	CAT_PUT_NEW = 1,
	CAT_PUT_CHANGED = 2,
};

/**
 * Make @in the current state of an item in the running snapshot.  The item
 * is found by (@in->scope, @in->graph_id) when given, else by
 * (@in->parent, @in->name) among the current items.  A version is written
 * only when something differs from the current one; otherwise the item is
 * only marked seen for a sweep.  *@id (may be NULL) receives the item id,
 * *@result (may be NULL) an enum cat_put_result.
 * Returns 0, -EEXIST (another current item already has that name in that
 * parent: the walker picks another name or removes the other first),
 * -ENOENT (@in->parent is not a current directory), -EINVAL (bad name or
 * kind, no running snapshot, a move into the item's own subtree), -EROFS,
 * the error of a batch lost earlier in the run, or an I/O error.
 */
int cat_item_put(struct cat *c, const struct cat_item_in *in, int64_t *id,
		 int *result);

/**
 * Mark item @id (and nothing else) seen for the active sweeps without
 * changing it.  Returns 0 or -ENOENT.
 */
int cat_item_touch(struct cat *c, int64_t id);

/**
 * Delete item @id in the running snapshot: its validity ends, and so does
 * that of every descendant still valid.  *@count (may be NULL) receives
 * the number of items ended.  Returns 0, -ENOENT (not current), -EINVAL
 * (no running snapshot, CAT_ROOT) or an I/O error.
 */
int cat_item_delete(struct cat *c, int64_t id, int64_t *count);

/**
 * Find the current item of (@scope, @graph_id) for the writer (delta gives
 * Graph ids).  *@out receives its current version.  Returns 0 or -ENOENT
 * (unknown, or deleted: a later put with that id revives the same item).
 */
int cat_item_find(struct cat *c, const char *scope, const char *graph_id,
		  struct cat_item *out);

/**
 * Begin a full walk of the subtree of @root (a drive, a mail folder, a
 * folder after 410 resync): from now on every item put or touched is
 * marked seen.  Returns 0, -ENOENT or -EINVAL (no running snapshot).
 */
int cat_sweep_begin(struct cat *c, int64_t root);

/**
 * End the full walk of @root: every current item below @root (not @root
 * itself) that was not put or touched since cat_sweep_begin() is deleted
 * as by cat_item_delete().  *@count (may be NULL) receives how many.
 * Returns 0, -EINVAL (no such sweep) or an I/O error.
 */
int cat_sweep_end(struct cat *c, int64_t root, int64_t *count);

/**
 * Look up @name in directory @parent as of snapshot @snap (a visible id or
 * CAT_SNAP_CURRENT) into *@out.  An indexed query on a cached statement.
 * Returns 0 or -ENOENT.
 */
int cat_lookup(struct cat *c, int64_t snap, int64_t parent, const char *name,
	       struct cat_item *out);

/**
 * The version of item @id valid in snapshot @snap into *@out (getattr).
 * @id CAT_ROOT gives a synthetic directory.  Returns 0 or -ENOENT.
 */
int cat_item_get(struct cat *c, int64_t snap, int64_t id, struct cat_item *out);

typedef int (*cat_list_cb)(void *ctx, const struct cat_item *it);

/**
 * List directory @parent as of snapshot @snap, in byte order of names,
 * starting after the name @after (NULL or "": from the start; for readdir
 * offsets).  @cb gets each child (borrowed for the call); a non-zero
 * return stops the listing and is returned by cat_list().
 * Returns 0, the value of @cb, or an I/O error.
 */
int cat_list(struct cat *c, int64_t snap, int64_t parent, const char *after,
	     cat_list_cb cb, void *ctx);

/**
 * Append the cold metadata of version (@id, @from_snap) to @out as
 * "key\0value\0"... pairs (iterate with cat_meta_next()).  @out belongs to
 * the caller.  Returns 0 (nothing appended when the version has no
 * metadata or does not exist), -ENOMEM or an I/O error.
 */
int cat_item_meta(struct cat *c, int64_t id, int64_t from_snap,
		  struct buf *out);

/**
 * Iterate the pairs of a metadata blob @p[0..@len): start with *@pos = 0;
 * each call sets *@key and *@val (pointers into @p) and advances *@pos.
 * Returns 1 for a pair, 0 at the end, -EBADMSG when malformed.
 */
int cat_meta_next(const char *p, size_t len, size_t *pos, const char **key,
		  const char **val);

/** Value of @key in a metadata blob, or NULL (pointer into @p). */
const char *cat_meta_find(const char *p, size_t len, const char *key);

/* ---- contents --------------------------------------------------------- */

struct cat_content {
	int64_t id;
	int64_t size;
	unsigned char sha256[32];
	bool has_qxh;
	unsigned char qxh[20]; /* quickXorHash (OneDrive), when known */
};

/**
 * Record a stored content: its @size, @sha256 of the whole content,
 * @qxh (20 bytes, may be NULL) and the store's content descriptor @desc
 * (@desc_len bytes, opaque, copied).  The same SHA-256 and size return the
 * existing id (adding @qxh when it was unknown).  *@id receives the id.
 * Committed with the next batch; survives a rolled-back run.
 * The store must have flushed the data before the commit (commit hook).
 * Returns 0, -EROFS or an I/O error.
 */
int cat_content_put(struct cat *c, int64_t size, const unsigned char sha256[32],
		    const unsigned char *qxh, const void *desc, size_t desc_len,
		    int64_t *id);

/** Find content by SHA-256 into *@out. Returns 0 or -ENOENT. */
int cat_content_find_sha256(struct cat *c, const unsigned char sha256[32],
			    struct cat_content *out);

/** Find content by (@size, quickXorHash @qxh). Returns 0 or -ENOENT. */
int cat_content_find_qxh(struct cat *c, int64_t size,
			 const unsigned char qxh[20], struct cat_content *out);

/**
 * Content @id into *@out (may be NULL) and its descriptor appended to
 * @desc (may be NULL; belongs to the caller).  Returns 0 or -ENOENT.
 */
int cat_content_get(struct cat *c, int64_t id, struct cat_content *out,
		    struct buf *desc);

typedef int (*cat_content_cb)(void *ctx, int64_t id, const void *desc,
			      size_t desc_len);

/**
 * Call @cb for every content still referenced by some version (for the
 * store's prune; @desc borrowed for the call).  With @drop_unreferenced
 * (writer only) the other content rows are deleted first.  A non-zero
 * return of @cb stops and is returned.
 */
int cat_content_referenced(struct cat *c, bool drop_unreferenced,
			   cat_content_cb cb, void *ctx);

/* ---- delta tokens ----------------------------------------------------- */

/**
 * Record @token (NULL: forget it, e.g. after 410) as the delta token of
 * @scope ("drive:<id>", "mail:<mailbox>/<folder id>") consumed by the
 * running snapshot.  Readable by cat_delta_get() only once that snapshot
 * is finished complete or partial, never before its items.
 * Returns 0, -EINVAL (no running snapshot) or an I/O error.
 */
int cat_delta_set(struct cat *c, const char *scope, const char *token);

/**
 * Append to @out the delta token of @scope from the newest finished
 * snapshot that recorded one.  Returns 0, -ENOENT (none, or forgotten).
 */
int cat_delta_get(struct cat *c, const char *scope, struct buf *out);

/* ---- batches ---------------------------------------------------------- */

typedef int (*cat_commit_hook)(void *ctx);

/**
 * Set the hook run before every commit of the writer (batch, finish):
 * e.g. store_flush(), so rows never point at data that is not on disk.
 * It may run on the catalog's internal committer thread (a batch older
 * than half a second is committed there), never on two threads at once.
 * A failing hook fails the commit: that batch is lost, so the running
 * snapshot refuses further writes and cat_snapshot_finish() rolls it
 * back and returns the hook's error.
 */
void cat_set_commit_hook(struct cat *c, cat_commit_hook hook, void *ctx);

/**
 * Commit what the running snapshot wrote so far (hook first).  Batches are
 * also committed automatically every CAT_BATCH_ROWS changes.  Nothing
 * becomes visible to readers before cat_snapshot_finish().
 * Returns 0, -EROFS or an I/O error.
 */
int cat_commit(struct cat *c);

/**
 * Writer: commit the open batch automatically after @rows changes or when
 * it is @ms milliseconds old (0: CAT_BATCH_ROWS, 500 ms).  Bulk loads (a
 * first snapshot of millions of items with no network wait between
 * rows) commit less often; a batch holds the write lock while open.
 */
void cat_set_batch(struct cat *c, unsigned rows, unsigned ms);

/**
 * Reader: run the browse queries (cat_lookup(), cat_item_get(),
 * cat_list(), cat_item_meta()) in read transactions held open for up to
 * @ms milliseconds per connection (0: off, the default), which saves
 * their locking system calls.  A held transaction sees the catalog as it
 * was when it began: call cat_read_refresh() when a new snapshot was seen
 * (cat_snapshot_latest() and the other calls always see the newest), so
 * that browse queries about it find its items.  Idle transactions are
 * ended after @ms by a thread, so the WAL can be reset.
 */
void cat_set_read_hold(struct cat *c, unsigned ms);
void cat_read_refresh(struct cat *c);

/* ---- restore queue ---------------------------------------------------- */

enum cat_restore_status {
	CAT_RESTORE_PENDING = 0,
	CAT_RESTORE_UPLOADING = 1,
	CAT_RESTORE_DONE = 2,
	CAT_RESTORE_FAILED = 3,
};

struct cat_restore {
	int64_t id;
	char *target; /* path under restore/ */
	char *spool; /* spool file */
	int64_t size;
	int status; /* enum cat_restore_status */
	char *reason; /* NULL unless failed (or retried) */
	int attempts;
	int64_t created; /* UTC seconds */
	int64_t updated;
	char *remote_id; /* Graph id once uploaded, else NULL */
};

/** Free the strings of @r (not @r itself). NULL is fine. */
void cat_restore_release(struct cat_restore *r);

/**
 * Add a pending restore of spool file @spool (@size bytes) to @target.
 * Durable (synchronous commit) when it returns 0.  Allowed on a reader;
 * beside a running snapshot writer it waits at most for the writer's
 * batch in progress (half a second), not for the run.
 * *@id (may be NULL) receives the entry id.  Returns 0, -EBUSY or -EIO.
 */
int cat_restore_enqueue(struct cat *c, const char *target, const char *spool,
			int64_t size, int64_t *id);

/**
 * As cat_restore_enqueue(), and keep the file's bytes (@data, @size bytes)
 * in the catalog beside the entry, in the same synchronous commit: the
 * spool file need not be made durable (cat_restore_data() gives the bytes
 * back; they are dropped when the entry is done).  Meant for small files.
 * Returns 0, -ENOTSUP (no cat_restore_data_init()), -EBUSY or -EIO.
 */
int cat_restore_enqueue_data(struct cat *c, const char *target,
			     const char *spool, const void *data, int64_t size,
			     int64_t *id);

/**
 * Make the catalog ready to keep restore data (creates its table, which
 * catalogs written before it existed lack; older programs ignore it).
 * Call before other threads use @c.  Returns 0, or -errno (e.g. a
 * read-only catalog): then only cat_restore_enqueue() works.
 */
int cat_restore_data_init(struct cat *c);

/**
 * Append the bytes kept for entry @id (cat_restore_enqueue_data()) to
 * @out.  Returns 0, -ENOENT (none kept: the spool file has them) or -EIO.
 */
int cat_restore_data(struct cat *c, int64_t id, struct buf *out);

/**
 * Claim the oldest pending entry: status becomes uploading, attempts + 1.
 * *@out receives it (caller frees with cat_restore_release()).
 * Returns 0, -ENOENT (nothing pending) or an I/O error.
 */
int cat_restore_claim(struct cat *c, struct cat_restore *out);

/**
 * Set the @status of entry @id, with @reason and @remote_id (each may be
 * NULL: kept as is).  Durable when it returns 0.  Returns 0 or -ENOENT.
 */
int cat_restore_update(struct cat *c, int64_t id, int status,
		       const char *reason, const char *remote_id);

struct cat_restore_set {
	int64_t id;
	int status; /* enum cat_restore_status */
	const char *reason; /* NULL: kept as is */
	const char *remote_id; /* NULL: kept as is */
};

/**
 * As cat_restore_update() for @n entries in one transaction (group commit
 * of uploaders' results).  All or nothing; entries that no longer exist
 * are skipped.  @durable: the commit is flushed to disk before this
 * returns; else it is not (WAL with synchronous=NORMAL): a killed process
 * loses nothing, a power failure may lose the whole transaction, never a
 * part of it, and the next durable commit flushes it too.  Returns 0,
 * -EINVAL (a bad status), -EBUSY or -EIO.
 */
int cat_restore_update_many(struct cat *c, const struct cat_restore_set *v,
			    size_t n, bool durable);

/**
 * Entries left uploading by a dead uploader become pending again.
 * *@count (may be NULL) receives how many.
 */
int cat_restore_requeue(struct cat *c, int *count);

/** Entry @id into *@out (free with cat_restore_release()). 0 or -ENOENT. */
int cat_restore_get(struct cat *c, int64_t id, struct cat_restore *out);

typedef int (*cat_restore_cb)(void *ctx, const struct cat_restore *r);

/** Call @cb for every entry in id order (borrowed for the call). */
int cat_restore_list(struct cat *c, cat_restore_cb cb, void *ctx);

/* ---- copy, import, check ---------------------------------------------- */

/**
 * Write a consistent copy of the committed catalog to the new file @path
 * (replaced if it exists), e.g. for store_blob_put_file() after each
 * snapshot.  Returns 0 or an I/O error.
 */
int cat_copy(struct cat *c, const char *path);

/**
 * Validate the catalog copy @copy (a file made by cat_copy()): SQLite
 * header, schema version, PRAGMA integrity_check and the catalog's own
 * invariants.  Never crashes on garbage.
 * Returns 0, -EBADMSG (corrupt or not a catalog), -EPROTO (newer schema)
 * or -EIO.
 */
int cat_validate(const char *copy);

/**
 * Rebuild catalog file @path from the copy @copy: validated as by
 * cat_validate(), then installed atomically in place of @path (no
 * process may have @path open).  Dead runs in the copy are rolled back.
 * Returns 0, -EBADMSG, -EPROTO or -EIO; @path is untouched on error.
 */
int cat_import(const char *copy, const char *path);

typedef void (*cat_problem_cb)(void *ctx, const char *problem);

/**
 * Check @c: PRAGMA integrity_check, then the invariants (version ranges
 * well formed, at most one valid version per item and snapshot, unique
 * names per folder, parents exist as directories, contents exist, no rows
 * of failed runs).  @cb (may be NULL) gets each problem as a sentence.
 * *@problems (may be NULL) receives how many.  Returns 0 when clean,
 * -EBADMSG when problems were found, or an I/O error.
 */
int cat_check(struct cat *c, cat_problem_cb cb, void *ctx, int64_t *problems);

/* ---- statistics ------------------------------------------------------- */

struct cat_stats {
	int64_t versions; /* item version rows */
	int64_t items; /* distinct item ids */
	int64_t contents; /* content rows */
	int64_t snapshots; /* snapshot rows (any status) */
	int64_t file_bytes; /* size of catalog.db (+ WAL) */
};

/** Fill *@out (counts scan the tables: slow on large catalogs). */
int cat_stats(struct cat *c, struct cat_stats *out);

#endif
