/*
 * fs/restore - MOUNT/restore/: the writable tree whose files are restored
 * to the tenant (engine/restore does the work; this maps FUSE onto it).
 *
 * Enabled by -o connection=NAME.  The low-level operations of the daemon
 * are wrapped: requests on restore/ inodes (top-level numbers from
 * INO_RESTORE up, snapshot field 0) are answered here, everything else
 * goes to the wrapped table unchanged.  restore/ is a tree in memory,
 * built at mount from the restore queue (every target restored through
 * this repository, with its status, and the folders along its path) and
 * grown by what the tenant holds where that is cheap to list (hosts,
 * sites, libraries, users, mail folders: added when a directory is first
 * opened), by lookups that resolve against the tenant, by mkdir and by
 * create.  Folders inside libraries are not listed from the tenant.
 *
 * Options: -o connection=NAME, -o conflict=rename|replace|skip (default
 * rename), -o restore_threads=N.
 *
 * Thread safety: one mutex guards the node table; it is never held across
 * Graph or catalog calls or fuse_reply_*.
 */
#ifndef M365_FS_RESTORE_H
#define M365_FS_RESTORE_H

#include "fs.h"

#define INO_RESTORE	   5u
#define INO_RESTORE_STATUS 6u
#define INO_RESTORE_FIRST  16u /* first inode of a restore/ node */

/**
 * Take the restore options out of @args (before the daemon parses its
 * own).  Returns 0, or -1 after reporting a bad value on stderr.
 */
int fs_restore_opts(struct fuse_args *args);

/** Whether -o connection= was given. */
bool fs_restore_enabled(void);

/**
 * The operations to run the session with: @base when restore is off, else
 * a copy of @base with restore/ wrapped in (static storage).
 */
const struct fuse_lowlevel_ops *
fs_restore_ops(const struct fuse_lowlevel_ops *base);

/**
 * Check that the connection of -o connection= works (sign-in included),
 * before the daemon mounts and forks: on failure the reason and its remedy
 * are printed on stderr.  Returns 0 (also when restore is off) or -errno.
 */
int fs_restore_check(void);

/**
 * Connect, open the queue and start the uploaders (after the fork into
 * the background).  Failures are logged; restore/ then answers EIO.
 * Returns 0 or -errno.
 */
int fs_restore_start(struct fs *fs);

/**
 * The Graph client of the connection (borrowed, valid until
 * fs_restore_stop()), or NULL when it could not be opened.  live/ uses
 * it too: one connection pool and Retry-After fence for both.
 */
struct graph *fs_restore_graph(void);

/** Stop the uploaders and free everything (before fs_release()). */
void fs_restore_stop(void);

#endif
