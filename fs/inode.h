/*
 * inode - inode numbers of the mounted tree, and the bounded table of
 * objects the daemon keeps per inode (file content descriptors, directory
 * listings).
 *
 * Inode numbers are computed, not allocated: a folder of the catalog seen
 * in snapshot S has the inode (S << INO_ITEM_BITS) | item id; a file or
 * message has the inode of its version, (F << INO_ITEM_BITS) | item id
 * where F is the first snapshot of that version, so a file unchanged
 * between snapshots is one inode in all of them: the kernel caches its
 * data once, and diff -r between snapshots skips it (same device and
 * inode).  The version is immutable, so whatever snapshot it is reached
 * through, F answers for it.  The same item in the same snapshot has the
 * same inode across remounts, and the daemon can answer any request from
 * the inode number alone (the catalog is the source of truth).  The
 * kernel's lookup counts therefore need no bookkeeping: the table below
 * is a cache, never the only copy.
 *
 *   1 the mount root, 2 snapshots/, 3 snapshots/latest (snapshot field 0);
 *   4 and 5 are kept for live/ and restore/ (later work)
 *   (S, CAT_ROOT)          the directory of snapshot S
 *   (S, INO_ITEM_PARTIAL)  its .partial marker file
 *
 * Thread safety: ino_* number helpers are pure; a struct ino_table may be
 * used from any number of threads (one internal mutex, never held while
 * the caller does I/O).
 * Errors: functions return NULL on allocation failure where noted.
 */
#ifndef M365_FS_INODE_H
#define M365_FS_INODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INO_ROOT      1u
#define INO_SNAPSHOTS 2u
#define INO_LATEST    3u

#define INO_ITEM_BITS	 40
#define INO_ITEM_MASK	 ((UINT64_C(1) << INO_ITEM_BITS) - 1)
#define INO_ITEM_PARTIAL INO_ITEM_MASK /* the .partial marker */
#define INO_SNAP_MAX	 ((INT64_C(1) << (64 - INO_ITEM_BITS)) - 1)

/** Inode of item @item in snapshot @snap; 0 when either is out of range. */
static inline uint64_t ino_make(int64_t snap, int64_t item)
{
	if (snap < 1 || snap > INO_SNAP_MAX || item < 1 ||
	    (uint64_t)item >= INO_ITEM_PARTIAL)
		return 0;
	return ((uint64_t)snap << INO_ITEM_BITS) | (uint64_t)item;
}

/** Snapshot of inode @ino (0 for the top-level inodes). */
static inline int64_t ino_snap(uint64_t ino)
{
	return (int64_t)(ino >> INO_ITEM_BITS);
}

/** Item (or INO_ITEM_PARTIAL) of inode @ino. */
static inline int64_t ino_item(uint64_t ino)
{
	return (int64_t)(ino & INO_ITEM_MASK);
}

/*
 * An object kept per inode.  Embed it first in the cached structure; the
 * table owns objects once added and frees them with the table's free
 * function when they are evicted and no longer referenced.
 */
struct ino_obj {
	uint64_t ino;
	size_t bytes; /* memory charged to the table */
	/* protected by the table's lock: */
	int refs;
	bool dead; /* evicted while referenced: freed by the last put */
	struct ino_obj *hnext, *lprev, *lnext;
};

struct ino_table;

/**
 * New table holding at most about @max_bytes of objects (least recently
 * used ones are evicted first); @free_obj frees one object.
 * Caller owns the result, free with ino_table_free().  NULL: no memory.
 */
struct ino_table *ino_table_new(size_t max_bytes,
				void (*free_obj)(struct ino_obj *o));

/** Free @t and every object in it (none may be referenced).  NULL fine. */
void ino_table_free(struct ino_table *t);

/**
 * The object of @ino, referenced (give it back with ino_table_put()),
 * or NULL when the table holds none.
 */
struct ino_obj *ino_table_get(struct ino_table *t, uint64_t ino);

/**
 * Add @o (its ino and bytes set by the caller; the table takes ownership).
 * When another thread added an object for the same inode first, @o is
 * freed and that object is returned instead.  Returns @o or the other
 * object, referenced.
 */
struct ino_obj *ino_table_add(struct ino_table *t, struct ino_obj *o);

/** Give back a reference from ino_table_get()/ino_table_add(). */
void ino_table_put(struct ino_table *t, struct ino_obj *o);

/** Drop the object of @ino (if any) from the table. */
void ino_table_drop(struct ino_table *t, uint64_t ino);

/** Bytes and objects currently held (for tests and debug logs). */
void ino_table_usage(struct ino_table *t, size_t *bytes, size_t *objects);

#endif
