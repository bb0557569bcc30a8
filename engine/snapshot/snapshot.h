/*
 * snapshot - the snapshot walker: Microsoft Graph -> store + catalog.
 *
 * snap_run() enumerates the selected SharePoint sites (every site
 * collection and subsite, every document library), OneDrives and Exchange
 * mailboxes of a tenant and records them as one new snapshot of a
 * repository: content goes into the store (streamed, deduplicated),
 * items and their metadata into the catalog.  The first snapshot walks
 * everything; later ones follow Graph delta from the tokens the previous
 * snapshot committed.  The tree it writes is
 *
 *	sites/<host>/<site path components>/<library>/<folders...>/<file>
 *	onedrive/<user principal name>/<folders...>/<file>
 *	mailboxes/<user principal name>/<folder>/<subfolder...>/<message>.eml
 *
 * with every name mapped by names/names.h.
 *
 * Failure model: a failure of one item (download, hash mismatch) is
 * recorded in the catalog as a per-item error and the snapshot still
 * commits (partial).  A failure that makes a whole drive or mailbox
 * unreadable is an error of that container; its previous state and delta
 * token are carried forward unchanged.  Data is flushed to the store
 * before the catalog commit that references it; delta tokens are
 * committed with the snapshot, never before.
 *
 * Users without a OneDrive or a mailbox are noted at info level and
 * counted (snap_stats.no_onedrive, no_mailbox), never errors.
 *
 * Thread safety: snap_run() runs its own worker threads; one snap_run()
 * per repository at a time (the store's writer lock).  The pure helpers
 * (snap_retention(), snap_select_match()) are reentrant.
 * Errors: 0 or -errno.
 */
#ifndef M365_SNAPSHOT_H
#define M365_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct graph;
struct store;
struct cat;

/* Services (same bits as CONF_SVC_* of config.h). */
#define SNAP_SVC_FILES	  0x1u /* SharePoint sites: sites/ */
#define SNAP_SVC_ONEDRIVE 0x2u /* OneDrive for Business: onedrive/ */
#define SNAP_SVC_MAIL	  0x4u /* Exchange mailboxes: mailboxes/ */
#define SNAP_SVC_ALL	  0x7u

#define SNAP_DEFAULT_PARALLEL 8 /* downloads in flight */
#define SNAP_MAIL_PARALLEL                                                     \
	4 /* Outlook: 4 concurrent requests per
				     mailbox (listing + downloads) */

/* Counters of one run (also shown as progress). */
struct snap_stats {
	int64_t items; /* items seen (put, any kind) */
	int64_t files; /* drive files seen */
	int64_t messages; /* messages seen */
	int64_t folders; /* drive folders and mail folders seen */
	int64_t drives; /* drives walked (libraries and OneDrives) */
	int64_t mailboxes; /* mailboxes walked */
	int64_t no_onedrive; /* users without a OneDrive (not an error) */
	int64_t no_mailbox; /* users without a mailbox (not an error) */
	int64_t changed; /* items with a new version in this snapshot */
	int64_t deleted; /* items whose validity ended */
	int64_t downloads; /* contents downloaded */
	int64_t reused; /* contents found already stored (no download) */
	int64_t bytes_down; /* bytes downloaded */
	int64_t bytes_new; /* bytes of contents stored for the first time */
	int64_t bytes_reused; /* bytes of contents reused without download */
	int64_t requests; /* HTTP attempts */
	int64_t throttled; /* 429/503/509 answers */
	int64_t waited_ms; /* time spent waiting on throttling/backoff */
	int64_t errors; /* per-item errors recorded */
	int64_t container_errors; /* drives/mailboxes/folders that failed */
	int64_t full_walks; /* drives or folders walked without a token */
	int64_t resyncs; /* 410 answers handled by a full walk */
	int64_t elapsed_ms;
};

struct snap_config {
	unsigned services; /* SNAP_SVC_*; 0 = all */
	/* Selection patterns (NULL-terminated arrays, may be NULL, borrowed):
	 * sites match the site's URL without scheme ("contoso.sharepoint.com/
	 * sites/x"), its webUrl, display name and id; users their principal
	 * name, mail, display name and id. */
	const char *const *sites;
	const char *const *exclude_sites;
	const char *const *users;
	const char *const *exclude_users;
	unsigned parallel; /* downloads in flight; 0 = SNAP_DEFAULT_PARALLEL */
	const char *cache_file; /* download cache (REPO/snapshot-cache.db):
				   lets a run after a killed one find the
				   messages it stored; NULL = none */
	/* Called about every 200 ms on one of the walker threads (the
	 * caller's or one snap_run() started), never on two at once (may be
	 * NULL). */
	void (*progress)(void *ctx, const struct snap_stats *st);
	void *progress_ctx;
};

/**
 * Take one snapshot: walk Graph through @g, store contents in @st (opened
 * for writing) and record the snapshot in @c (opened for writing).  @cfg
 * may be NULL (everything).  Sets the catalog's commit hook to
 * store_flush(@st).  On return *@snap (may be NULL) is the snapshot id
 * (0 if none was begun), *@status (may be NULL) the catalog status it
 * finished with (CAT_SNAP_COMPLETE, CAT_SNAP_PARTIAL or CAT_SNAP_FAILED)
 * and @stats (may be NULL) the counters.
 * Returns 0 when the snapshot committed (complete or partial), or -errno
 * when it failed (nothing of it became visible; an error was logged).
 */
int snap_run(struct graph *g, struct store *st, struct cat *c,
	     const struct snap_config *cfg, struct snap_stats *stats,
	     int64_t *snap, int *status);

/**
 * Store a copy of the committed catalog @c in @st as the blob
 * ("catalog", @name), using the temporary directory @tmpdir (NULL: the
 * repository's directory @repo), and delete older catalog blobs.
 * Returns 0 or -errno.
 */
int snap_catalog_backup(struct cat *c, struct store *st, const char *repo,
			const char *name);

/**
 * Rebuild REPO/catalog.db from the newest catalog blob in @st (the
 * repository @repo; the catalog must not be open).  *@name (may be NULL,
 * caller frees) receives the blob's name.  Returns 0, -ENOENT (no copy)
 * or -errno.
 */
int snap_catalog_restore(struct store *st, const char *repo, char **name);

/* ------------------------------------------------------------------ */
/* Retention (forget)                                                   */

/* Reasons a snapshot is kept, as bits. */
#define SNAP_KEEP_LAST	  0x01u
#define SNAP_KEEP_HOURLY  0x02u
#define SNAP_KEEP_DAILY	  0x04u
#define SNAP_KEEP_WEEKLY  0x08u
#define SNAP_KEEP_MONTHLY 0x10u
#define SNAP_KEEP_YEARLY  0x20u

/* A retention policy: how many of each to keep (0 = none by that rule). */
struct snap_keep {
	unsigned last; /* the newest N snapshots */
	unsigned hourly; /* the newest snapshot of each of the N newest
			    hours that have one (UTC) */
	unsigned daily, weekly, monthly, yearly; /* same per day, ISO week,
						  month, year */
};

/**
 * Apply policy @keep to @n snapshots with start times @times (seconds,
 * any order).  @reasons[i] gets the SNAP_KEEP_* bits that keep snapshot
 * i; 0 means forget it.  As restic: each rule walks the snapshots from
 * newest to oldest and keeps the newest one of each period until it has
 * kept N.  Returns 0 or -ENOMEM.
 */
int snap_retention(const int64_t *times, size_t n, const struct snap_keep *keep,
		   unsigned *reasons);

/** True when @k keeps nothing (no rule given). */
bool snap_keep_empty(const struct snap_keep *k);

/* ------------------------------------------------------------------ */
/* Selection                                                            */

/**
 * True when one of @candidates (NULL-terminated: the names an object is
 * known by, e.g. a user's principal name, mail address and id) matches a
 * pattern of @include (fnmatch, case-insensitive; NULL or empty: all)
 * and none matches a pattern of @exclude (may be NULL).
 */
bool snap_select_match(const char *const *include, const char *const *exclude,
		       const char *const *candidates);

#endif
