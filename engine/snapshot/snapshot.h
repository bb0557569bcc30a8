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
