/*
 * fs - m365fs, the FUSE daemon: every snapshot of a repository as a
 * read-only directory tree (DESIGN.md "Names in the mounted tree").
 *
 *   MOUNT/snapshots/<UTC ISO time>/sites|onedrive|mailboxes/...
 *   MOUNT/snapshots/latest -> <newest visible snapshot>
 *
 * Low-level libfuse API, multi-threaded loop.  Inode numbers are computed
 * from (snapshot, item) (inode.h), so any request is answered from the
 * inode number and the catalog; the daemon only caches (content
 * descriptors, directory listings, the snapshot list) within fixed
 * budgets.  Snapshots are immutable: the kernel is told to cache entries,
 * attributes, listings and data for a long time.  snapshots/ itself
 * changes when a snapshot commits: its attributes are cached for a
 * second only and its mtime changes with the list, which resets the
 * kernel's cached listing (FUSE_CAP_AUTO_INVAL_DATA); misses there are
 * not cached, so a new snapshot can be entered by name at once.
 *
 * Thread safety: every fsop_* may run beside any other.  Lock order:
 * fs->lock, then an ino_table's lock; no lock is held across catalog or
 * store calls or fuse_reply_*.
 */
#ifndef M365_FS_FS_H
#define M365_FS_FS_H

/* The oldest libfuse 3 we support: Debian 12 ships 3.14. */
#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "inode.h"

struct store;

/* Options (-o name=value); strings owned by the option parser. */
struct fs_opts {
	char *repo;
	char *key_file; /* -o key_file=FILE (0600 file, 44 base64 chars) */
	char *key_credential; /* -o key_credential=NAME (systemd) */
	unsigned cache_mb; /* decompressed-chunk cache of the store */
	unsigned dir_cache_mb; /* directory listings kept for readdir */
	double timeout; /* entry/attr timeout inside snapshots, seconds */
	unsigned readahead_kb; /* kernel readahead of the mount (root) */
	unsigned spin_us; /* loop.c: reading without sleeping, 0: off */
	unsigned list_ahead; /* push.c: 1/N of a folder looked up: list it */
	int debug;
};

#define FS_DEFAULT_CACHE_MB	32
#define FS_DEFAULT_DIR_CACHE_MB 16
#define FS_DEFAULT_TIMEOUT	86400.0
#define FS_DEFAULT_READAHEAD_KB 1024
#define FS_DEFAULT_SPIN_US	0 /* measured: wins only under load */
#define FS_MAX_SPIN_US		1000
#define FS_DEFAULT_LIST_AHEAD	32
#define FS_MAX_LIST_AHEAD	65536
/* catalog and index lookups share a read transaction that long (ms) */
#define FS_HOLD_MS	    100
#define FS_DEFAULT_THREADS  10 /* -o max_threads, as libfuse's */
#define FS_FILE_CACHE_BYTES (4u << 20) /* content descriptors */

/* One visible snapshot, as shown in snapshots/. */
struct fs_snap {
	int64_t id;
	struct cat_snapshot s;
	char name[40]; /* "2026-11-21T02:00:00Z", "~<id>" on a clash */
};

/* An immutable, reference-counted copy of the snapshot list. */
struct fs_snaps {
	int refs; /* protected by fs->lock */
	size_t n;
	int64_t latest; /* id of the newest visible snapshot, 0: none */
	int64_t mtime; /* of snapshots/: newest end time */
	uint32_t gen; /* changes with every reload that changed the list */
	struct fs_snap s[]; /* by increasing id */
};

struct fs {
	struct fs_opts o;
	struct store *st;
	struct fuse_session *se;
	const char *mountpoint;
	uid_t uid;
	gid_t gid;
	int64_t mount_time;
	bool no_open, no_opendir; /* granted by the kernel at init */
	struct ino_table *files; /* content descriptors by inode */
	struct ino_table *dirs; /* directory listings by inode */
	struct fs_push *push; /* push.c */
	pthread_mutex_t lock;
	/* protected by lock: */
	struct cat *cat; /* opened lazily when catalog.db appears */
	struct fs_snaps *snaps;
	int64_t cat_tried_ms;
	int64_t snaps_checked_ms, snaps_reloaded_ms;
	uint32_t snaps_gen;
	bool latest_moved; /* the kernel's copy of latest's target is old */
	int64_t statfs_ms;
	uint64_t repo_bytes;
};

/* ops.c */
extern const struct fuse_lowlevel_ops fs_ll_ops;

/** Create the inode tables of @fs.  Returns 0 or -ENOMEM. */
int fs_ops_init(struct fs *fs);

/**
 * Number of entries of directory @ino of a snapshot ("." and ".." not
 * counted), or -errno.  The listing stays cached for readdir.
 */
int64_t fs_dir_entries(struct fs *fs, uint64_t ino);

/* loop.c */

/**
 * Answer the requests of @se until it is unmounted or a signal ends it,
 * in at most @max_threads threads; the thread that answered a lookup
 * reads the next request without sleeping for @spin_us microseconds
 * first.
 * Returns 0 or -errno (the device failed).
 */
int fs_loop(struct fuse_session *se, unsigned spin_us, unsigned max_threads);

/* push.c */
struct store_view;

/** Start the thread that fills the kernel's page cache.  0 or -errno. */
int fs_push_start(struct fs *fs);

/**
 * Queue chunk @v of file @ino (@size bytes) for the kernel's page cache;
 * on success the reference of @v is taken (and @v zeroed).  Returns
 * false when the queue is full (@v left to the caller).
 */
bool fs_push(struct fs *fs, uint64_t ino, int64_t size, struct store_view *v);

/**
 * Note a lookup that found an entry of directory @dir (of a snapshot):
 * once the lookups in @dir reach 1/fs->o.list_ahead of its entries, the
 * thread lists it in a detached copy of the mount, so the kernel learns
 * every entry from a few READDIRPLUS replies instead of one LOOKUP round
 * trip per name.
 */
void fs_push_lookup(struct fs *fs, uint64_t dir);

/** Stop the thread (before the session goes).  Idempotent. */
void fs_push_stop(struct fs *fs);

/**
 * Have the kernel read the catalog and the chunk index of @repo ahead
 * into the page cache (skipped when large against memory).  Call it
 * before the process opens them with SQLite (see push.c).
 */
void fs_prefetch(const char *repo);

/* snaps.c */

/**
 * Set up @fs (fs->o, fs->st filled by the caller) and open the catalog if
 * the repository has one.  Returns 0 or -errno (not -ENOENT).
 */
int fs_init(struct fs *fs);

/** Free what fs_init() and the ops set up (not fs->st). */
void fs_release(struct fs *fs);

/**
 * The catalog, or NULL when the repository has none yet (borrowed: valid
 * until fs_release()).
 */
struct cat *fs_cat(struct fs *fs);

/**
 * The current snapshot list, referenced (give it back with
 * fs_snaps_put()).  With @refresh the catalog is asked whether a snapshot
 * was added or forgotten (one indexed query, the list is reloaded only on
 * change; at most every few milliseconds).  Never NULL: on errors the
 * previous (or an empty) list is returned.
 */
struct fs_snaps *fs_snaps_get(struct fs *fs, bool refresh);

/** Give back a list from fs_snaps_get().  NULL is fine. */
void fs_snaps_put(struct fs *fs, struct fs_snaps *l);

/**
 * The kernel caches the target of snapshots/latest: when fs_snaps_get()
 * saw a new latest snapshot, drop that copy.  Never from readlink (the
 * kernel holds the page being filled until readlink answers).
 */
void fs_latest_inval(struct fs *fs);

/** The first entry of @l whose id is @id or more, or NULL. */
const struct fs_snap *fs_snaps_from(const struct fs_snaps *l, int64_t id);

/** The entry of snapshot @id in @l, or NULL. */
const struct fs_snap *fs_snaps_find_id(const struct fs_snaps *l, int64_t id);

/** The entry named @name in @l, or NULL. */
const struct fs_snap *fs_snaps_find_name(const struct fs_snaps *l,
					 const char *name);

/** Name of a snapshot status for people and xattrs ("complete"...). */
const char *fs_snap_status_name(int status);

/**
 * Append the path of @ino below the mount ("snapshots/<time>/sites/...")
 * to @out.  Best effort, for messages: unknown parts become "?".
 * Returns 0 when every part was known, else -ENOENT (a part unknown),
 * -ELOOP (deeper than any tree) or -ENOMEM.
 */
int fs_path(struct fs *fs, uint64_t ino, struct buf *out);

#endif
