/*
 * snaps - the catalog and the snapshot list behind snapshots/.
 *
 * The list is an immutable, reference-counted array swapped under
 * fs->lock: readers keep using the copy they got while a reload builds the
 * next one.  A refresh asks the catalog for the newest visible snapshot
 * (one indexed query); the whole list is reloaded when that changed or the
 * last reload is older than RELOAD_MS (to notice forgotten snapshots).
 */
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define CHECK_MS  2 /* at most one latest-snapshot query per CHECK_MS */
#define RELOAD_MS 2000
#define REOPEN_MS 1000 /* retry opening a missing catalog */

static struct fs_snaps *snaps_alloc(size_t n)
{
	struct fs_snaps *l = calloc(1, sizeof(*l) + n * sizeof(l->s[0]));

	if (l)
		l->refs = 1;
	return l;
}

int fs_init(struct fs *fs)
{
	fs->uid = getuid();
	fs->gid = getgid();
	fs->mount_time = util_now();
	pthread_mutex_init(&fs->lock, NULL);
	fs->snaps = snaps_alloc(0);
	if (!fs->snaps || fs_ops_init(fs) < 0)
		return -ENOMEM;
	if (fs_push_start(fs) < 0) /* an optimisation: go on without */
		log_debug("no page cache thread: %s", strerror(errno));
	if (!fs_cat(fs)) /* no catalog yet: empty snapshots/ until one is */
		log_info("repository '%s' has no snapshots yet", fs->o.repo);
	return 0;
}

void fs_release(struct fs *fs)
{
	fs_push_stop(fs);
	cat_close(fs->cat);
	fs->cat = NULL;
	free(fs->snaps);
	fs->snaps = NULL;
	ino_table_free(fs->files);
	ino_table_free(fs->dirs);
	fs->files = fs->dirs = NULL;
	pthread_mutex_destroy(&fs->lock);
}

struct cat *fs_cat(struct fs *fs)
{
	struct cat *c, *mine = NULL;
	char path[4096];
	int64_t now = util_mono_ms();
	int rc;

	pthread_mutex_lock(&fs->lock);
	c = fs->cat;
	if (!c && fs->cat_tried_ms && now - fs->cat_tried_ms < REOPEN_MS) {
		pthread_mutex_unlock(&fs->lock);
		return NULL;
	}
	fs->cat_tried_ms = now;
	pthread_mutex_unlock(&fs->lock);
	if (c)
		return c;

	snprintf(path, sizeof(path), "%s/%s", fs->o.repo, CAT_FILE);
	rc = cat_open(path, CAT_OPEN_READ, &mine);
	if (rc < 0) {
		if (rc != -ENOENT)
			log_err("cannot open catalog '%s': %s", path,
				strerror(-rc));
		return NULL;
	}
	cat_set_read_hold(mine, FS_HOLD_MS);
	pthread_mutex_lock(&fs->lock);
	if (!fs->cat) {
		fs->cat = mine;
		mine = NULL;
	}
	c = fs->cat;
	pthread_mutex_unlock(&fs->lock);
	cat_close(mine);
	return c;
}

const char *fs_snap_status_name(int status)
{
	switch (status) {
	case CAT_SNAP_RUNNING:
		return "running";
	case CAT_SNAP_COMPLETE:
		return "complete";
	case CAT_SNAP_PARTIAL:
		return "partial";
	case CAT_SNAP_FAILED:
		return "failed";
	}
	return "unknown";
}

struct collect {
	struct fs_snap *s;
	size_t n, alloc;
};

static int collect_one(void *ctx, const struct cat_snapshot *s)
{
	struct collect *c = ctx;
	struct fs_snap *e;

	if (s->status != CAT_SNAP_COMPLETE && s->status != CAT_SNAP_PARTIAL)
		return 0;
	if (c->n == c->alloc) {
		size_t na = c->alloc ? c->alloc * 2 : 64;
		struct fs_snap *ns = realloc(c->s, na * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		c->s = ns;
		c->alloc = na;
	}
	e = &c->s[c->n++];
	memset(e, 0, sizeof(*e));
	e->id = s->id;
	e->s = *s;
	util_time_format(s->start, e->name, sizeof(e->name));
	if (c->n > 1 && !strncmp(c->s[c->n - 2].name, e->name, 20)) {
		/* two snapshots started in the same second */
		size_t len = strlen(e->name);

		snprintf(e->name + len, sizeof(e->name) - len, "~%lld",
			 (long long)s->id);
	}
	return 0;
}

static bool same_list(const struct fs_snaps *l, const struct collect *c)
{
	size_t i;

	if (l->n != c->n)
		return false;
	for (i = 0; i < c->n; i++)
		if (l->s[i].id != c->s[i].id ||
		    l->s[i].s.status != c->s[i].s.status ||
		    l->s[i].s.end != c->s[i].s.end)
			return false;
	return true;
}

/* Build a new list from the catalog; NULL when it did not change. */
static struct fs_snaps *reload(struct fs *fs, struct cat *cat,
			       const struct fs_snaps *old)
{
	struct collect c = { 0 };
	struct fs_snaps *l = NULL;
	size_t i;
	int rc;

	rc = cat_snapshot_list(cat, false, collect_one, &c);
	if (rc < 0) {
		log_err("cannot list the snapshots of '%s': %s", fs->o.repo,
			strerror(-rc));
		goto out;
	}
	if (same_list(old, &c))
		goto out;
	l = snaps_alloc(c.n);
	if (!l)
		goto out;
	l->n = c.n;
	if (c.n)
		memcpy(l->s, c.s, c.n * sizeof(c.s[0]));
	for (i = 0; i < c.n; i++)
		if (l->s[i].s.end > l->mtime)
			l->mtime = l->s[i].s.end;
	l->latest = c.n ? l->s[c.n - 1].id : 0;
out:
	free(c.s);
	return l;
}

struct fs_snaps *fs_snaps_get(struct fs *fs, bool refresh)
{
	struct fs_snaps *l, *nl, *gone = NULL;
	struct cat *cat;
	int64_t now = util_mono_ms(), latest = 0;
	bool full;
	int rc;

	pthread_mutex_lock(&fs->lock);
	l = fs->snaps;
	l->refs++;
	if (refresh && now - fs->snaps_checked_ms < CHECK_MS)
		refresh = false;
	if (refresh)
		fs->snaps_checked_ms = now;
	pthread_mutex_unlock(&fs->lock);
	if (!refresh)
		return l;

	cat = fs_cat(fs);
	if (!cat)
		return l;
	rc = cat_snapshot_latest(cat, &latest);
	if (rc < 0 && rc != -ENOENT) {
		log_err("cannot read the snapshots of '%s': %s", fs->o.repo,
			strerror(-rc));
		return l;
	}
	pthread_mutex_lock(&fs->lock);
	full = latest != l->latest || now - fs->snaps_reloaded_ms >= RELOAD_MS;
	if (full)
		fs->snaps_reloaded_ms = now;
	pthread_mutex_unlock(&fs->lock);
	if (!full)
		return l;
	nl = reload(fs, cat, l);
	if (!nl)
		return l;
	/* browse queries about the new snapshots must see them */
	cat_read_refresh(cat);

	pthread_mutex_lock(&fs->lock);
	nl->gen = ++fs->snaps_gen;
	if (nl->latest != l->latest)
		fs->latest_moved = true;
	if (--fs->snaps->refs == 0)
		gone = fs->snaps;
	fs->snaps = nl;
	nl->refs++; /* the caller's */
	if (--l->refs == 0 && l != gone)
		free(l);
	pthread_mutex_unlock(&fs->lock);
	free(gone);
	log_debug("snapshot list reloaded: %zu visible, latest %lld", nl->n,
		  (long long)nl->latest);
	return nl;
}

void fs_snaps_put(struct fs *fs, struct fs_snaps *l)
{
	bool release;

	if (!l)
		return;
	pthread_mutex_lock(&fs->lock);
	release = --l->refs == 0;
	pthread_mutex_unlock(&fs->lock);
	if (release)
		free(l);
}

void fs_latest_inval(struct fs *fs)
{
	bool moved;
	int rc;

	pthread_mutex_lock(&fs->lock);
	moved = fs->latest_moved;
	fs->latest_moved = false;
	pthread_mutex_unlock(&fs->lock);
	if (!moved || !fs->se)
		return;
	rc = fuse_lowlevel_notify_inval_inode(fs->se, INO_LATEST, 0, 0);
	if (rc < 0 && rc != -ENOENT)
		log_debug("cannot invalidate snapshots/latest: %s",
			  strerror(-rc));
}

const struct fs_snap *fs_snaps_from(const struct fs_snaps *l, int64_t id)
{
	size_t lo = 0, hi = l->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (l->s[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < l->n ? &l->s[lo] : NULL;
}

const struct fs_snap *fs_snaps_find_id(const struct fs_snaps *l, int64_t id)
{
	const struct fs_snap *s = fs_snaps_from(l, id);

	return s && s->id == id ? s : NULL;
}

const struct fs_snap *fs_snaps_find_name(const struct fs_snaps *l,
					 const char *name)
{
	size_t i;

	for (i = l->n; i-- > 0;)
		if (!strcmp(l->s[i].name, name))
			return &l->s[i];
	return NULL;
}

#define PATH_DEPTH_MAX 256

int fs_path(struct fs *fs, uint64_t ino, struct buf *out)
{
	int64_t snap = ino_snap(ino), id = ino_item(ino);
	struct cat *cat = fs_cat(fs);
	struct fs_snaps *l;
	const struct fs_snap *s;
	char *names[PATH_DEPTH_MAX];
	struct cat_item it;
	int n = 0, i, rc = 0;

	if (snap == 0)
		return buf_adds(out, ino == INO_ROOT	 ? "."
				     : ino == INO_LATEST ? "snapshots/latest"
							 : "snapshots");
	l = fs_snaps_get(fs, false);
	/*
	 * A file's inode names the first snapshot of its version (inode.h);
	 * when that one was forgotten, the version is in a later one.
	 */
	s = id == CAT_ROOT || id == INO_ITEM_PARTIAL ? fs_snaps_find_id(l, snap)
						     : fs_snaps_from(l, snap);
	if (s)
		snap = s->id;
	else
		rc = -ENOENT;
	if (buf_addf(out, "snapshots/%s", s ? s->name : "?") < 0)
		rc = -ENOMEM;
	fs_snaps_put(fs, l);
	if (id == INO_ITEM_PARTIAL)
		return buf_adds(out, "/.partial") < 0 ? -ENOMEM : rc;
	if (!cat)
		rc = -ENOENT;
	while (cat && id != CAT_ROOT) {
		if (n == PATH_DEPTH_MAX) {
			rc = -ELOOP;
			break;
		}
		if (cat_item_get(cat, snap, id, &it) < 0) {
			names[n++] = NULL;
			rc = -ENOENT;
			break;
		}
		names[n++] = strdup(it.name);
		id = it.parent;
	}
	for (i = n; i-- > 0;) {
		if (!names[i] && rc == 0)
			rc = -ENOMEM;
		if (buf_addf(out, "/%s", names[i] ? names[i] : "?") < 0)
			rc = -ENOMEM;
		free(names[i]);
	}
	return rc;
}
