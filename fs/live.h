/*
 * fs/live - MOUNT/live/: the tenant as it is now, read-only, with the
 * layout, names (names.h) and user.m365.* extended attributes of
 * snapshots/<time>/, so that `diff -r live/x snapshots/latest/x` shows
 * what changed since the snapshot.
 *
 * Enabled by -o connection=NAME (the connection restore/ opens: one
 * Graph client, one connection pool and Retry-After fence for both).
 * Nothing is copied ahead: listing a directory lists that level in Graph
 * (children of a folder, paged; the sites, libraries, users, mail
 * folders or messages above), reading a file fetches the byte ranges
 * read (Range on the pre-authenticated download URL) into the block cache
 * of engine/live (REPO/cache/live/), reading an .eml fetches its MIME
 * once.
 *
 * Caching: a listing and the attributes that came with it are reused for
 * -o live_ttl=SECONDS (default 30), and the kernel is told the same
 * timeout for entries and attributes; the cache is keyed by item id and
 * cTag (messages: id, and change key for drafts), so changed content is
 * fetched again; the kernel keeps a file's pages across opens only while
 * its cTag stays the same.  -o live_cache=MIB caps the block cache
 * (default 1024).
 *
 * Inodes: live/ is INO_LIVE; every node below it has the snapshot field
 * INO_LIVE_SNAP (never a real snapshot id) and a node number that stays
 * the same for the life of the mount (nodes are kept by Graph id).
 *
 * Thread safety: one mutex guards the node table; it is never held across
 * Graph calls or fuse_reply_*.  A directory is listed by one thread at a
 * time; others wait for that listing.
 */
#ifndef M365_FS_LIVE_H
#define M365_FS_LIVE_H

#include "fs.h"

struct graph;

#define INO_LIVE	      4u
#define INO_LIVE_SNAP	      INO_SNAP_MAX
#define LIVE_DEFAULT_TTL      30.0
#define LIVE_DEFAULT_CACHE_MB 1024u

/**
 * Take the live options (live_ttl, live_cache) out of @args.  Returns 0,
 * or -1 after logging a bad value.
 */
int fs_live_opts(struct fuse_args *args);

/**
 * The operations to run the session with: @base when no connection was
 * given (fs_restore_enabled()), else a copy of @base with live/ wrapped
 * in (static storage).
 */
const struct fuse_lowlevel_ops *
fs_live_ops(const struct fuse_lowlevel_ops *base);

/** Whether live/ is shown (a connection was given). */
bool fs_live_enabled(void);

/**
 * Start live/ over Graph client @g (borrowed; NULL: the connection could
 * not be opened, live/ answers EIO) with its cache in REPO/cache/live.
 * Returns 0 or -errno (logged).
 */
int fs_live_start(struct fs *fs, struct graph *g);

/** Free everything of live/ (after the session ended). */
void fs_live_stop(void);

#endif
