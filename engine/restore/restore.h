/*
 * restore - restoring by copying: the spool, the durable queue worker and
 * the uploaders (no FUSE here; fs/restore.c maps restore/ onto this).
 *
 * Paths are relative to MOUNT/restore/ and use the names of the mounted
 * tree (names.h; names_unmap() gives the tenant name back):
 *
 *   sites/<host>/<site path...>/<library>/<folders...>/<file>
 *   onedrive/<upn>/<folders...>/<file>
 *   mailboxes/<upn>/<folder>/<subfolder...>/<message>.eml
 *
 * restore_dir() resolves a directory path against Graph (host, site,
 * library, user and mail folder levels must exist in the tenant; folders
 * below a library or a mailbox may be created).  A file is written into a
 * spool file REPO/spool/<guid>.<policy> (restore_spool_open()), then
 * restore_commit() records it in the catalog's restore queue before
 * returning: from then on it survives a crash.  A file up to
 * RESTORE_INLINE_MAX goes into the catalog with its entry
 * (cat_restore_enqueue_data: one synchronous commit); it is written into
 * a memory spool (restore_spool_open_mem()) that becomes a spool file only
 * when it grows beyond that.  A larger file's spool file is fsynced with
 * the spool directory while the entry is recorded.  The entry is handed to the uploader threads in
 * memory (the catalog entry stays pending until it is done or failed: no
 * claim per file, so close() does not wait behind the uploaders'
 * commits); their results are recorded in batches by a recorder thread
 * (cat_restore_update_many), shown as uploading until then; a batch is
 * flushed to disk only when spool files are removed after it (a result
 * lost by a power failure leaves its entry pending: it is found in the
 * tenant at the next start).
 * restore_start() loads what an earlier process left pending.  Uploads:
 * one PUT up to GRAPH_SMALL_UPLOAD_MAX, else an upload session whose URL is
 * kept in the entry (remote_id "upload:<url>") so a restarted daemon
 * resumes it.  A
 * message (.eml into a mail folder) is imported from its MIME and moved
 * into the folder (Graph makes MIME imports drafts: see README).
 *
 * Conflict policy (enum restore_conflict) is fixed per file when it is
 * spooled (it is part of the spool file name, as is the read state of a
 * message: restore_spool_set_unread()).  rename: Graph renames
 * ("a (1).txt"); replace: the existing file is replaced; skip: an
 * existing file is kept and the entry is done with reason "skipped".
 * Exactly once: an entry retried, or left by an earlier process, is
 * first looked up in the target folder; a file with the same size and
 * quickXorHash (a message with the same internetMessageId) is taken as
 * already restored.
 *
 * Thread safety: every function may be called from any thread.
 * Errors: 0 or -errno; reasons for people are logged and stored in the
 * queue entry.
 */
#ifndef M365_RESTORE_H
#define M365_RESTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "graph/graph.h"
#include "util/buf.h"

struct restore;
struct restore_conn;

enum restore_conflict {
	RESTORE_RENAME = 0,
	RESTORE_REPLACE = 1,
	RESTORE_SKIP = 2,
};

/** Name of @c ("rename", ...). */
const char *restore_conflict_name(int c);

/** Parse "rename", "replace" or "skip": the policy, or -EINVAL. */
int restore_conflict_parse(const char *s);

#define RESTORE_DEFAULT_THREADS 4
#define RESTORE_MAX_ATTEMPTS	8
#define RESTORE_FRAGMENT	(32u * GRAPH_UPLOAD_UNIT) /* 10 MiB */
/* files up to this size are kept in the catalog with their queue entry */
#define RESTORE_INLINE_MAX (64u << 10)

struct restore_config {
	const char *repo; /* repository directory (spool/ lives there) */
	struct graph *graph; /* borrowed; must outlive the restore */
	unsigned threads; /* uploaders; 0 = RESTORE_DEFAULT_THREADS */
	size_t fragment; /* upload session fragment; 0 = RESTORE_FRAGMENT */
};

/**
 * Open REPO/catalog.db and REPO/spool/ for restoring.  No thread runs
 * yet.  Caller owns *@out (restore_free()).  Returns 0, -ENOENT (no
 * catalog: take a snapshot first), -ENOMEM or -errno.
 */
int restore_new(const struct restore_config *cfg, struct restore **out);

/**
 * Requeue entries a dead uploader left "uploading", hand every pending
 * entry to the uploaders and start them.  Returns 0 or -errno.
 */
int restore_start(struct restore *r);

/**
 * Make every failed entry pending again (its reason cleared): it is
 * retried by restore_start(), or within ten seconds by the uploaders of
 * a running daemon on the same repository.  *@count (may be NULL) receives
 * how many.  Returns 0 or -errno.
 */
int restore_retry_failed(struct restore *r, int *count);

/** Stop the uploaders (an upload in flight is finished or left to be
 * resumed) and free @r.  NULL is fine. */
void restore_free(struct restore *r);

/** The catalog of @r (borrowed). */
struct cat *restore_cat(struct restore *r);

/* Kinds of directories under restore/. */
enum restore_kind {
	RESTORE_K_ROOT = 0, /* restore/ itself */
	RESTORE_K_TOP, /* sites, onedrive, mailboxes */
	RESTORE_K_SITE_PATH, /* part of a site URL that is no site */
	RESTORE_K_SITE, /* a site (a host is its root site) */
	RESTORE_K_FOLDER, /* a library, a OneDrive, or a folder in one */
	RESTORE_K_MAILBOX,
	RESTORE_K_MAIL_FOLDER,
};

struct restore_loc {
	int kind; /* enum restore_kind */
	char *drive_id; /* FOLDER */
	char *item_id; /* FOLDER: the folder's driveItem id */
	char *site_id; /* SITE */
	char *user; /* MAILBOX, MAIL_FOLDER: user id */
	char *folder_id; /* MAIL_FOLDER */
};

/** Free the strings of @l. */
void restore_loc_release(struct restore_loc *l);

/**
 * Resolve directory @path (relative to restore/, "" = restore/) into
 * @out.  Tenant levels (host, site, library, user) must exist: -ENOENT
 * with a log line saying why.  Folders (in a library or OneDrive) and
 * mail folders are looked up, and created when @create.  Results are
 * cached.  Returns 0, -ENOENT, -EINVAL (a name that cannot be unmapped)
 * or a Graph error.
 */
int restore_dir(struct restore *r, const char *path, bool create,
		struct restore_loc *out);

typedef int (*restore_list_cb)(void *ctx, const char *name);

/**
 * What directory @path (resolved as by restore_dir()) holds in the tenant,
 * for the levels that are cheap to list: hosts, site paths, sites and
 * libraries (sites are listed once and remembered), users (onedrive/,
 * mailboxes/) and mail folders.  @fn gets each mapped name (a name may
 * come more than once); a non-0 return stops the listing and is returned.  Folders in a library or a
 * OneDrive are not listed (the restore queue shows what was restored
 * there).  Returns 0, a resolution error or a Graph error.
 */
int restore_list(struct restore *r, const char *path, restore_list_cb fn,
		 void *ctx);

/**
 * Create a new spool file for a restore under policy @conflict: *@fd is
 * open for reading and writing (caller closes), @spool receives its path.
 * Returns 0 or -errno.
 */
int restore_spool_open(struct restore *r, int conflict, struct buf *spool,
		       int *fd);

/**
 * As restore_spool_open(), for a file that may stay small: *@fd is a
 * memory file and the spool file @spool is not created yet (a file that
 * restore_commit() keeps in the catalog never needs one).  Before the
 * file grows beyond RESTORE_INLINE_MAX, or before its descriptor is
 * closed uncommitted, restore_spool_to_disk() moves it to @spool.
 * Returns 0 or -errno.
 */
int restore_spool_open_mem(struct restore *r, int conflict, struct buf *spool,
			   int *fd);

/**
 * Move the memory spool *@fd (restore_spool_open_mem()) into the new
 * spool file @spool: *@fd is replaced by a descriptor of that file (the
 * memory file is closed).  Returns 0, or -errno with *@fd unchanged.
 */
int restore_spool_to_disk(const char *spool, int *fd);

#define RESTORE_UNREAD_SUFFIX ".unread"

/**
 * Mark the spool file *@spool (not committed yet) as a message to restore
 * unread (@unread true: renamed to "<spool>.unread") or read (the
 * default: the suffix is removed).  *@spool (malloc'd) is replaced by the
 * new path.  The read state then travels with the spool file through the
 * queue.  Returns 0 or -errno.
 */
int restore_spool_set_unread(char **spool, bool unread);

/**
 * Record the restore of spool file @fd (@size bytes, path @spool) to
 * @target in the queue, durably with its data on return; then an
 * uploader gets it.  Up to RESTORE_INLINE_MAX bytes the data goes into
 * the catalog with the entry and the spool file, if any, is removed; else
 * the spool file (created now from a memory spool) and its directory are
 * fsynced while the entry is recorded.  @fd stays the caller's.
 * *@id (may be NULL) gets the entry id.  An entry whose spool file turns
 * out shorter than @size (the process died during this call) fails at
 * upload.
 */
int restore_commit(struct restore *r, int fd, const char *target,
		   const char *spool, int64_t size, int64_t *id);

/** Name of a queue status ("pending", "uploading", "done", "failed"). */
const char *restore_status_name(int status);

/**
 * Append the status of entry @id for people to @out ("done",
 * "failed: reason", ...).  Returns 0 or -ENOENT.
 */
int restore_entry_status(struct restore *r, int64_t id, struct buf *out);

/**
 * Append the whole queue to @out: one line per entry, "STATUS\tTARGET"
 * plus "\tREASON" when there is one.  Returns 0 or -errno.
 */
int restore_status_text(struct restore *r, struct buf *out);

/**
 * Wait until no entry is pending or uploading, at most @timeout_ms.
 * Returns 0, or -ETIMEDOUT.
 */
int restore_drain(struct restore *r, int timeout_ms);

/**
 * Build in @json (replaced) the Graph JSON that creates MIME message
 * @mime (@len bytes) as a received, read, non-draft message: subject,
 * from, to, cc, internetMessageId, the HTML (else text) body in UTF-8,
 * attachments inline as fileAttachment, singleValueExtendedProperties
 * 0x0E07 = 1, 0x0E06 (Received: time, else Date:) and 0x0039 (Date:).
 * Returns 0, -EBADMSG (not a message), -E2BIG (attachments over
 * @att_max bytes: too big for one request) or -ENOMEM.
 */
int restore_mime_json(const char *mime, size_t len, size_t att_max,
		      struct buf *json);

/* An attachment to add after the message is created (upload session). */
struct restore_att {
	char *name;
	char *content_type;
	struct buf data; /* decoded bytes */
};

struct restore_atts {
	struct restore_att *v;
	size_t n;
};

/** Free what @a holds and make it empty.  NULL is fine. */
void restore_atts_release(struct restore_atts *a);

/**
 * As restore_mime_json(), but attachments that would take the inline ones
 * over @att_max bytes (in MIME order) are not put in @json: they go to
 * @late (replaced; caller releases with restore_atts_release()), to be
 * added with attachment upload sessions once the message exists.  @late
 * NULL: as restore_mime_json().
 */
int restore_mime_parse(const char *mime, size_t len, size_t att_max,
		       struct buf *json, struct restore_atts *late);

#define RESTORE_MAIL_INLINE_MAX (2u << 20) /* attachments in one create */
#define RESTORE_ATT_FRAGMENT	(3u << 20) /* attachment upload PUTs */

/* ---- connections ------------------------------------------------------- */

/**
 * Open connection @name (NAME.conf in conf_dir()): http client with its
 * CA file, token provider (secret or certificate), Graph client; a token
 * is fetched at once so that a wrong setup fails here.  @why receives a
 * sentence for people on failure.  Caller owns *@out
 * (restore_conn_free()).  Returns 0 or -errno.
 */
int restore_conn_open(const char *name, struct restore_conn **out,
		      struct buf *why);

/** The Graph client of @c (borrowed). */
struct graph *restore_conn_graph(struct restore_conn *c);

/** Free @c (NULL is fine). */
void restore_conn_free(struct restore_conn *c);

#endif
