/*
 * snap_run(): one snapshot from start to commit, and the helpers the
 * walkers share (items, metadata, errors, progress, catalog copies).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "names/names.h"
#include "snapshot/snap_i.h"
#include "util/log.h"
#include "util/util.h"

/* ---- metadata ------------------------------------------------------- */

void meta_add(struct meta *m, const char *key, const char *val)
{
	char *v;

	if (!val || m->n >= META_MAX)
		return;
	v = strdup(val);
	if (!v)
		return;
	m->kv[m->n].key = key;
	m->kv[m->n].val = v;
	m->n++;
}

void meta_addf(struct meta *m, const char *key, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	if (buf_vaddf(&b, fmt, ap) == 0)
		meta_add(m, key, b.data);
	va_end(ap);
	buf_release(&b);
}

void meta_time(struct meta *m, const char *key, int64_t t)
{
	char s[32];

	if (!t)
		return;
	util_time_format(t, s, sizeof(s));
	meta_add(m, key, s);
}

void meta_free(struct meta *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free((char *)m->kv[i].val);
	m->n = 0;
}

void item_free(struct item *it)
{
	free(it->name);
	free(it->scope);
	free(it->graph_id);
	meta_free(&it->meta);
	memset(it, 0, sizeof(*it));
}

/* ---- id sets -------------------------------------------------------- */

int idset_add(struct idset *s, int64_t id)
{
	if (s->n == s->alloc) {
		size_t na = s->alloc ? 2 * s->alloc : 64;
		int64_t *v = realloc(s->v, na * sizeof(*v));

		if (!v)
			return -ENOMEM;
		s->v = v;
		s->alloc = na;
	}
	s->v[s->n++] = id;
	s->sorted = false;
	return 0;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

bool idset_has(struct idset *s, int64_t id)
{
	size_t lo = 0, hi;

	if (!s->n)
		return false;
	if (!s->sorted) {
		qsort(s->v, s->n, sizeof(*s->v), cmp64);
		s->sorted = true;
	}
	hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid] == id)
			return true;
		if (s->v[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void idset_free(struct idset *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* ---- names and items ------------------------------------------------ */

int map_name(const char *in, struct buf *out)
{
	buf_reset(out);
	return names_map(in ? in : "", in ? strlen(in) : 0, out);
}

static void count_kind(struct snap *s, int kind)
{
	s->stats.items++;
	if (kind == CAT_KIND_FILE)
		s->stats.files++;
	else if (kind == CAT_KIND_MESSAGE)
		s->stats.messages++;
	else if (kind == CAT_KIND_FOLDER || kind == CAT_KIND_MAIL_FOLDER)
		s->stats.folders++;
}

int put_item(struct snap *s, struct item *it, struct container *owner,
	     int64_t *id)
{
	struct cat_item_in in = {
		.parent = it->parent,
		.kind = it->kind,
		.name = it->name,
		.scope = it->graph_id ? it->scope : NULL,
		.graph_id = it->scope ? it->graph_id : NULL,
		.size = it->size,
		.mtime_sec = it->mtime,
		.mtime_nsec = it->mtime_ns,
		.btime_sec = it->btime,
		.btime_nsec = it->btime_ns,
		.content = it->content,
		.meta = it->meta.kv,
		.nmeta = it->meta.n,
	};
	struct buf name = BUF_INIT;
	int64_t got = 0;
	int result = 0, rc;

	rc = cat_item_put(s->c, &in, &got, &result);
	if (rc == -EEXIST) {
		/* another item already has this name in the folder */
		buf_adds(&name, it->name);
		rc = names_uniquify(&name,
				    it->graph_id ? it->graph_id : it->name);
		if (rc == 0) {
			in.name = name.data;
			rc = cat_item_put(s->c, &in, &got, &result);
		}
	}
	buf_release(&name);
	if (rc < 0) {
		item_error(s, owner ? owner->service : "m365", it->parent,
			   it->name, it->graph_id,
			   "cannot record the item in the catalog: %s",
			   strerror(-rc));
		if (rc != -EEXIST && rc != -ENOENT && rc != -EINVAL)
			s->fatal = rc; /* catalog I/O: give up */
		return rc;
	}
	count_kind(s, it->kind);
	if (result != CAT_PUT_UNCHANGED)
		s->stats.changed++;
	if (owner && owner->seen)
		idset_add(owner->seen, got);
	if (id)
		*id = got;
	return 0;
}

/* Path of item @id in the current tree, for messages ("" when unknown). */
static void path_of(struct snap *s, int64_t id, struct buf *out)
{
	char *parts[64];
	int n = 0, i;

	while (id != CAT_ROOT && id > 0 && n < 64) {
		struct cat_item it;

		if (cat_item_get(s->c, CAT_SNAP_CURRENT, id, &it) < 0)
			break;
		parts[n] = strdup(it.name);
		if (!parts[n])
			break;
		n++;
		id = it.parent;
	}
	for (i = n - 1; i >= 0; i--) {
		buf_addf(out, "%s%s", i == n - 1 ? "" : "/", parts[i]);
		free(parts[i]);
	}
}

void item_error(struct snap *s, const char *service, int64_t parent,
		const char *name, const char *graph_id, const char *fmt, ...)
{
	struct buf path = BUF_INIT, why = BUF_INIT;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	buf_vaddf(&why, fmt, ap);
	va_end(ap);
	if (parent > 0)
		path_of(s, parent, &path);
	if (name)
		buf_addf(&path, "%s%s", path.len ? "/" : "", name);
	log_warn("'%s': %s", path.data, why.data);
	rc = cat_snapshot_error(s->c, service, path.len ? path.data : NULL,
				graph_id, why.data);
	if (rc < 0)
		log_err("cannot record an error in the catalog: %s",
			strerror(-rc));
	s->stats.errors++;
	buf_release(&path);
	buf_release(&why);
}

int cached_content(struct snap *s, const char *key, struct cat_content *cc)
{
	unsigned char sha[32];

	if (dcache_get(s->cache, key, sha) < 0)
		return -ENOENT;
	return cat_content_find_sha256(s->c, sha, cc);
}

int lookup_or_put_dir(struct snap *s, int64_t parent, int kind,
		      const char *name, int64_t *id)
{
	struct cat_item cur;
	struct item it = { 0 };
	int rc;

	if (cat_lookup(s->c, CAT_SNAP_CURRENT, parent, name, &cur) == 0 &&
	    cat_kind_is_dir(cur.kind)) {
		*id = cur.id;
		idset_add(&s->containers, cur.id);
		return 0;
	}
	it.parent = parent;
	it.kind = kind;
	it.name = strdup(name);
	if (!it.name)
		return -ENOMEM;
	rc = put_item(s, &it, NULL, id);
	item_free(&it);
	if (rc == 0)
		idset_add(&s->containers, *id);
	return rc;
}

/* ---- progress ------------------------------------------------------- */

static void http_delta(struct snap *s)
{
	struct http_stats h;

	http_stats_get(graph_http(s->g), &h);
	s->stats.requests = (int64_t)(h.requests - s->http0.requests);
	s->stats.throttled = (int64_t)(h.throttled - s->http0.throttled);
	s->stats.waited_ms = h.waited_ms - s->http0.waited_ms;
	s->stats.elapsed_ms = util_mono_ms() - s->start_ms;
}

void progress(struct snap *s, bool force)
{
	int64_t now = util_mono_ms();

	if (!s->cfg.progress)
		return;
	if (!force && now - s->last_progress_ms < 200)
		return;
	s->last_progress_ms = now;
	http_delta(s);
	s->cfg.progress(s->cfg.progress_ctx, &s->stats);
}

/* ---- the run -------------------------------------------------------- */

static int flush_hook(void *ctx)
{
	return store_flush(ctx);
}

void walk_release(struct snap *s)
{
	pthread_mutex_unlock(&s->walk_lock);
}

void walk_acquire(struct snap *s)
{
	pthread_mutex_lock(&s->walk_lock);
}

/* The listing of the users failed: OneDrives and mailboxes not swept. */
static void users_failed(struct snap *s)
{
	log_err("cannot list the users of the tenant: %s",
		graph_last_error()->message);
	s->stats.container_errors++;
	if (s->cfg.services & SNAP_SVC_ONEDRIVE)
		s->enum_failed[1] = true;
	if (s->cfg.services & SNAP_SVC_MAIL)
		s->enum_failed[2] = true;
}

/*
 * The next selected user of the shared pager into @u: 1, 0 at the end or
 * -errno (the listing failed: reported here).  Walk lock held.
 */
static int next_user(struct snap *s, struct graph_user *u)
{
	const char *cand[5];
	int rc;

	for (;;) {
		walk_release(s);
		pthread_mutex_lock(&s->users_lock);
		rc = 0;
		if (!s->users_end) {
			rc = graph_pager_next_user(s->users, u);
			if (rc <= 0)
				s->users_end = true;
		}
		pthread_mutex_unlock(&s->users_lock);
		walk_acquire(s);
		if (rc < 0)
			users_failed(s);
		if (rc <= 0 || s->fatal)
			return rc;
		cand[0] = u->upn ? u->upn : u->id;
		cand[1] = u->mail ? u->mail : u->id;
		cand[2] = u->display_name ? u->display_name : u->id;
		cand[3] = u->id;
		cand[4] = NULL;
		if (snap_select_match(s->cfg.users, s->cfg.exclude_users, cand))
			return 1;
	}
}

/* Walk users until the pager is over.  Walk lock held. */
static void walk_users(struct snap *s)
{
	struct graph_user u = { 0 };

	while (!s->fatal && next_user(s, &u) > 0) {
		if (s->cfg.services & SNAP_SVC_ONEDRIVE)
			walk_user_drive(s, &u);
		if (s->fatal)
			break;
		if (s->cfg.services & SNAP_SVC_MAIL)
			walk_mailbox(s, &u);
	}
	graph_user_release(&u);
}

static void *user_walker(void *arg)
{
	struct snap *s = arg;

	walk_acquire(s);
	walk_users(s);
	walk_release(s);
	return NULL;
}

/*
 * Open the user listing and start up to SNAP_USER_WALKERS threads that
 * walk the users' OneDrives and mailboxes; *@n gets how many started (0:
 * the caller walks them itself with walk_users()).  Walk lock held.
 */
static int users_start(struct snap *s, pthread_t *t, unsigned *n)
{
	int rc;

	*n = 0;
	walk_release(s);
	rc = graph_users_open(s->g, NULL, &s->users);
	walk_acquire(s);
	if (rc < 0) {
		users_failed(s);
		s->users_end = true;
		return rc;
	}
	while (*n < SNAP_USER_WALKERS &&
	       pthread_create(&t[*n], NULL, user_walker, s) == 0)
		(*n)++;
	return 0;
}

static void users_join(struct snap *s, pthread_t *t, unsigned n)
{
	unsigned i;

	if (!s->users)
		return;
	if (!n)
		walk_users(s);
	walk_release(s);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	walk_acquire(s);
	graph_pager_free(s->users);
	s->users = NULL;
}

struct sweep_ctx {
	struct snap *s;
	struct idset dirs, gone;
};

static int sweep_cb(void *ctx, const struct cat_item *it)
{
	struct sweep_ctx *k = ctx;
	bool seen = idset_has(&k->s->containers, it->id);

	switch (it->kind) {
	case CAT_KIND_SITE_HOST:
	case CAT_KIND_SITE_PATH:
		return idset_add(seen ? &k->dirs : &k->gone, it->id);
	case CAT_KIND_DRIVE:
	case CAT_KIND_ONEDRIVE:
	case CAT_KIND_MAILBOX:
		return seen ? 0 : idset_add(&k->gone, it->id);
	default:
		return 0;
	}
}

static bool patterns(const char *const *v)
{
	return v && v[0];
}

/*
 * End the sites, libraries, OneDrives and mailboxes that Graph no longer
 * lists.  Only for services walked in full: with selection patterns, or
 * after any container failed, what was not seen is carried forward.
 */
static void sweep_containers(struct snap *s)
{
	size_t i, j;
	int svc;

	if (s->fatal || s->stats.container_errors)
		return;
	for (svc = 0; svc < 3; svc++) {
		struct sweep_ctx k = { .s = s };
		bool pat = svc == 0 ? patterns(s->cfg.sites) ||
					      patterns(s->cfg.exclude_sites)
				    : patterns(s->cfg.users) ||
					      patterns(s->cfg.exclude_users);

		if (!(s->cfg.services & (1u << svc)) || s->enum_failed[svc] ||
		    pat || !s->top[svc])
			continue;
		idset_add(&k.dirs, s->top[svc]);
		for (i = 0; i < k.dirs.n; i++)
			if (cat_list(s->c, CAT_SNAP_CURRENT, k.dirs.v[i], NULL,
				     sweep_cb, &k) < 0)
				goto next;
		for (j = 0; j < k.gone.n; j++) {
			int64_t n = 0;

			if (cat_item_delete(s->c, k.gone.v[j], &n) == 0)
				s->stats.deleted += n;
		}
next:
		idset_free(&k.dirs);
		idset_free(&k.gone);
	}
}

int snap_run(struct graph *g, struct store *st, struct cat *c,
	     const struct snap_config *cfg, struct snap_stats *stats,
	     int64_t *snap, int *status)
{
	static const char *const tops[3] = { "sites", "onedrive", "mailboxes" };
	struct snap *s;
	struct cat_counters n = { 0 };
	pthread_t walkers[SNAP_USER_WALKERS];
	unsigned nwalkers = 0;
	int st_out = CAT_SNAP_FAILED, rc, i, nsvc = 0, nfail = 0;
	bool pool_up = false;

	if (snap)
		*snap = 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->walk_lock, NULL);
	pthread_mutex_init(&s->users_lock, NULL);
	walk_acquire(s);
	s->g = g;
	s->st = st;
	s->c = c;
	if (cfg)
		s->cfg = *cfg;
	if (!s->cfg.services)
		s->cfg.services = SNAP_SVC_ALL;
	if (!s->cfg.parallel)
		s->cfg.parallel = SNAP_DEFAULT_PARALLEL;
	s->start_ms = util_mono_ms();
	http_stats_get(graph_http(g), &s->http0);
	cat_set_commit_hook(c, flush_hook, st);

	if (s->cfg.cache_file)
		dcache_open(s->cfg.cache_file, &s->cache); /* a hint only */
	rc = cat_snapshot_begin(c, &s->id);
	if (rc < 0) {
		log_err("cannot begin a snapshot in the catalog: %s",
			strerror(-rc));
		goto out;
	}
	if (snap)
		*snap = s->id;
	rc = pool_start(s, s->cfg.parallel);
	if (rc < 0)
		goto finish;
	pool_up = true;

	for (i = 0; i < 3; i++) {
		if (!(s->cfg.services & (1u << i)))
			continue;
		nsvc++;
		rc = lookup_or_put_dir(s, CAT_ROOT, CAT_KIND_TOP, tops[i],
				       &s->top[i]);
		if (rc < 0) {
			s->fatal = rc;
			goto finish;
		}
	}
	/* users on their own walkers, sites on this thread, at once */
	if (s->cfg.services & (SNAP_SVC_ONEDRIVE | SNAP_SVC_MAIL))
		users_start(s, walkers, &nwalkers);
	if (s->cfg.services & SNAP_SVC_FILES)
		walk_sites(s);
	users_join(s, walkers, nwalkers);
	pool_reap(s, NULL, true);
	sweep_containers(s);

finish:
	if (pool_up) {
		pool_reap(s, NULL, true);
		pool_stop(s);
	}
	http_delta(s);
	for (i = 0; i < 3; i++)
		if ((s->cfg.services & (1u << i)) && s->enum_failed[i])
			nfail++;
	n.items = s->stats.items;
	n.files = s->stats.files;
	n.messages = s->stats.messages;
	n.bytes_new = s->stats.bytes_new;
	n.bytes_reused = s->stats.bytes_reused;
	n.requests = s->stats.requests;
	n.throttled = s->stats.throttled;
	cat_snapshot_count(c, &n);
	if (s->fatal || (rc < 0 && !s->stats.items))
		st_out = CAT_SNAP_FAILED;
	else if (nsvc && nfail == nsvc)
		st_out = CAT_SNAP_FAILED;
	else if (s->stats.errors || s->stats.container_errors)
		st_out = CAT_SNAP_PARTIAL;
	else
		st_out = CAT_SNAP_COMPLETE;
	rc = cat_snapshot_finish(c, st_out);
	if (rc < 0) {
		log_err("cannot commit the snapshot: %s", strerror(-rc));
		st_out = CAT_SNAP_FAILED;
	} else if (st_out == CAT_SNAP_FAILED) {
		rc = s->fatal ? s->fatal : -EIO;
	}
	progress(s, true);
out:
	if (status)
		*status = st_out;
	if (stats)
		*stats = s->stats;
	idset_free(&s->containers);
	dcache_close(s->cache);
	walk_release(s);
	pthread_mutex_destroy(&s->walk_lock);
	pthread_mutex_destroy(&s->users_lock);
	free(s);
	return rc;
}

/* ---- catalog copies ------------------------------------------------- */

struct blob_pick {
	char *name;
	int64_t time;
	char **all;
	size_t n;
};

static int pick_cb(void *arg, const struct store_blob_info *b)
{
	struct blob_pick *p = arg;
	char **v;

	v = realloc(p->all, (p->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->all = v;
	p->all[p->n] = strdup(b->name);
	if (!p->all[p->n])
		return -ENOMEM;
	p->n++;
	if (!p->name || b->time > p->time ||
	    (b->time == p->time && strcmp(b->name, p->name) > 0)) {
		free(p->name);
		p->name = strdup(b->name);
		p->time = b->time;
	}
	return 0;
}

static void pick_free(struct blob_pick *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->all[i]);
	free(p->all);
	free(p->name);
}

int snap_catalog_backup(struct cat *c, struct store *st, const char *repo,
			const char *name)
{
	struct buf tmp = BUF_INIT;
	struct blob_pick pick = { 0 };
	size_t i;
	int rc;

	buf_addf(&tmp, "%s/catalog-copy.%d.tmp", repo, (int)getpid());
	rc = cat_copy(c, tmp.data);
	if (rc == 0)
		rc = store_blob_put_file(st, tmp.data, "catalog", name);
	unlink(tmp.data);
	if (rc < 0)
		goto out;
	/* keep only the newest copy: older ones would pin old chunks */
	if (store_blob_list(st, "catalog", pick_cb, &pick) == 0)
		for (i = 0; i < pick.n; i++)
			if (strcmp(pick.all[i], name))
				store_blob_delete(st, "catalog", pick.all[i]);
out:
	pick_free(&pick);
	buf_release(&tmp);
	return rc;
}

int snap_catalog_restore(struct store *st, const char *repo, char **name)
{
	struct buf tmp = BUF_INIT, path = BUF_INIT;
	struct blob_pick pick = { 0 };
	int rc;

	rc = store_blob_list(st, "catalog", pick_cb, &pick);
	if (rc < 0)
		goto out;
	if (!pick.name) {
		rc = -ENOENT;
		goto out;
	}
	buf_addf(&tmp, "%s/catalog-restore.%d.tmp", repo, (int)getpid());
	buf_addf(&path, "%s/%s", repo, CAT_FILE);
	unlink(tmp.data);
	rc = store_blob_get_file(st, "catalog", pick.name, tmp.data);
	if (rc == 0)
		rc = cat_import(tmp.data, path.data);
	unlink(tmp.data);
	if (rc == 0 && name) {
		*name = pick.name;
		pick.name = NULL;
	}
out:
	pick_free(&pick);
	buf_release(&tmp);
	buf_release(&path);
	return rc;
}
