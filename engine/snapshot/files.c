/*
 * SharePoint sites, document libraries and OneDrives: enumeration and the
 * delta walk of one drive.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "names/names.h"
#include "snapshot/snap_i.h"
#include "util/log.h"
#include "util/util.h"

/*
 * One drive being walked.  Its listing does not wait for its downloads:
 * drive_done() finalizes it (deferred deletions, sweep, delta token)
 * when the last one ends, while the walker lists the next drive.
 */
struct dwalk {
	struct container ct; /* first: drive_done() casts back */
	char *drive_id;
	char *scope; /* "drive:<id>" */
	char *root_id; /* Graph id of the drive's root item */
	int64_t drive_item; /* catalog item of the drive */
	struct idset deferred; /* folders deleted: ended at the end */
	char *link; /* deltaLink to commit, or NULL */
	bool listed; /* the listing went through to its end */
	bool sweeping; /* full walk of a drive we had: end what it missed */
};

static void identity(struct meta *m, const char *key,
		     const struct graph_identity *id)
{
	if (id->display_name && id->email)
		meta_addf(m, key, "%s <%s>", id->display_name, id->email);
	else if (id->display_name)
		meta_add(m, key, id->display_name);
	else if (id->email)
		meta_add(m, key, id->email);
	else
		meta_add(m, key, id->id);
}

static bool is_office(const struct graph_item *it)
{
	static const char *const ext[] = { "doc",  "docx", "docm", "dot",
					   "dotx", "xls",  "xlsx", "xlsm",
					   "xlsb", "ppt",  "pptx", "pptm",
					   "pps",  "ppsx", "vsd",  "vsdx",
					   "one",  NULL };
	const char *dot = it->name ? strrchr(it->name, '.') : NULL;
	size_t i;

	if (it->mime_type && (strstr(it->mime_type, "officedocument") ||
			      strstr(it->mime_type, "msword") ||
			      strstr(it->mime_type, "ms-excel") ||
			      strstr(it->mime_type, "ms-powerpoint")))
		return true;
	if (!dot)
		return false;
	for (i = 0; ext[i]; i++)
		if (!strcasecmp(dot + 1, ext[i]))
			return true;
	return false;
}

static int qxh_raw(const char *b64, unsigned char raw[20])
{
	struct buf b = BUF_INIT;
	int rc = util_b64_decode(&b, b64, strlen(b64));

	if (rc == 0 && b.len != 20)
		rc = -EINVAL;
	if (rc == 0)
		memcpy(raw, b.data, 20);
	buf_release(&b);
	return rc;
}

/* Content already stored for @it, without downloading: 0 and *@cid. */
static int find_content(struct snap *s, struct dwalk *w,
			const struct graph_item *it, struct cat_content *cc)
{
	unsigned char raw[20];
	struct cat_item cur;
	struct buf meta = BUF_INIT;
	int rc = -ENOENT;

	if (it->quickxor && it->size >= 0 && qxh_raw(it->quickxor, raw) == 0 &&
	    cat_content_find_qxh(s->c, it->size, raw, cc) == 0)
		return 0;
	/* same cTag as the version we have: the content did not change */
	if (!it->ctag || cat_item_find(s->c, w->scope, it->id, &cur) < 0 ||
	    !cur.content)
		return -ENOENT;
	if (cat_item_meta(s->c, cur.id, cur.from_snap, &meta) == 0) {
		const char *ct =
			cat_meta_find(meta.data, meta.len, CAT_META_CTAG);

		if (ct && !strcmp(ct, it->ctag) &&
		    cat_content_get(s->c, cur.content, cc, NULL) == 0)
			rc = 0;
	}
	buf_release(&meta);
	return rc;
}

static int handle_item(struct snap *s, struct dwalk *w, struct graph_item *it)
{
	struct cat_item cur;
	struct cat_content cc;
	struct item in = { 0 };
	struct buf name = BUF_INIT;
	struct job *j;
	char *key = NULL;
	int64_t parent, n = 0;
	int rc = 0;

	if (it->is_root || it->remote)
		return 0;
	if (it->deleted) {
		if (cat_item_find(s->c, w->scope, it->id, &cur) < 0)
			return 0;
		if (cat_kind_is_dir(cur.kind))
			return idset_add(&w->deferred, cur.id);
		if (cat_item_delete(s->c, cur.id, &n) == 0)
			s->stats.deleted += n;
		return 0;
	}
	if (it->kind != GRAPH_ITEM_FILE && it->kind != GRAPH_ITEM_FOLDER &&
	    it->kind != GRAPH_ITEM_PACKAGE)
		return 0;
	if (it->parent_id && w->root_id && !strcmp(it->parent_id, w->root_id))
		parent = w->drive_item;
	else if (it->parent_id &&
		 cat_item_find(s->c, w->scope, it->parent_id, &cur) == 0)
		parent = cur.id;
	else {
		item_error(s, w->ct.service, w->drive_item, it->name, it->id,
			   "its folder is not in the snapshot");
		w->ct.errors++;
		return 0;
	}
	rc = map_name(it->name, &name);
	if (rc < 0)
		goto out;
	in.parent = parent;
	in.name = buf_detach(&name, NULL);
	in.scope = strdup(w->scope);
	in.graph_id = strdup(it->id);
	if (!in.name || !in.scope || !in.graph_id) {
		rc = -ENOMEM;
		goto out;
	}
	in.mtime = it->modified;
	in.mtime_ns = (int32_t)it->modified_ns;
	in.btime = it->created;
	in.btime_ns = (int32_t)it->created_ns;
	meta_add(&in.meta, CAT_META_GRAPH_ID, it->id);
	meta_add(&in.meta, CAT_META_DRIVE_ID,
		 it->drive_id ? it->drive_id : w->drive_id);
	meta_add(&in.meta, CAT_META_WEB_URL, it->web_url);
	meta_add(&in.meta, CAT_META_ETAG, it->etag);
	meta_add(&in.meta, CAT_META_CTAG, it->ctag);
	meta_add(&in.meta, CAT_META_QUICKXORHASH, it->quickxor);
	identity(&in.meta, CAT_META_AUTHOR, &it->created_by);
	identity(&in.meta, "modifiedBy", &it->modified_by);
	meta_time(&in.meta, "createdDateTime", it->created);
	meta_time(&in.meta, "lastModifiedDateTime", it->modified);
	meta_add(&in.meta, "name", it->name);
	if (it->kind != GRAPH_ITEM_FILE) {
		in.kind = CAT_KIND_FOLDER;
		rc = put_item(s, &in, &w->ct, NULL);
		goto out;
	}
	in.kind = CAT_KIND_FILE;
	if (!it->quickxor && it->ctag &&
	    asprintf(&key, "%s/%s/%s", w->scope, it->id, it->ctag) < 0) {
		key = NULL;
		rc = -ENOMEM;
		goto out;
	}
	if (find_content(s, w, it, &cc) == 0 ||
	    (key && cached_content(s, key, &cc) == 0)) {
		in.content = cc.id;
		in.size = cc.size;
		s->stats.reused++;
		s->stats.bytes_reused += cc.size;
		rc = put_item(s, &in, &w->ct, NULL);
		goto out;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		rc = -ENOMEM;
		goto out;
	}
	store_content_init(&j->content);
	j->type = JOB_FILE;
	j->drive_id = strdup(w->drive_id);
	j->src_id = strdup(it->id);
	j->download_url = it->download_url ? strdup(it->download_url) : NULL;
	j->expect_size = it->size;
	if (it->quickxor && strlen(it->quickxor) < sizeof(j->qxh))
		strcpy(j->qxh, it->quickxor);
	j->office = is_office(it);
	j->cache_key = key;
	key = NULL;
	j->owner = &w->ct;
	j->item = in;
	memset(&in, 0, sizeof(in));
	if (!j->drive_id || !j->src_id) {
		job_free(j);
		rc = -ENOMEM;
		goto out;
	}
	rc = pool_submit(s, j);
out:
	free(key);
	item_free(&in);
	buf_release(&name);
	return rc;
}

static int drive_root_id(struct snap *s, struct dwalk *w, bool existed,
			 const struct cat_item *cur)
{
	struct graph_item root = { 0 };
	struct buf meta = BUF_INIT;
	int rc;

	if (existed &&
	    cat_item_meta(s->c, cur->id, cur->from_snap, &meta) == 0) {
		const char *r = cat_meta_find(meta.data, meta.len, "rootId");

		if (r)
			w->root_id = strdup(r);
	}
	buf_release(&meta);
	if (w->root_id)
		return 0;
	walk_release(s);
	rc = graph_item_get(s->g, w->drive_id, "root", &root);
	walk_acquire(s);
	if (rc == 0) {
		w->root_id = strdup(root.id);
		if (!w->root_id)
			rc = -ENOMEM;
	}
	graph_item_release(&root);
	return rc;
}

/* The drive's listing is over and its last download ended. */
static void drive_done(struct snap *s, struct container *ct)
{
	struct dwalk *w = (struct dwalk *)ct;
	size_t i;
	int64_t n;

	if (!s->fatal && w->listed) {
		for (i = 0; i < w->deferred.n; i++) {
			n = 0;
			if (cat_item_delete(s->c, w->deferred.v[i], &n) == 0)
				s->stats.deleted += n;
		}
	}
	if (w->sweeping) {
		n = 0;
		if (!s->fatal && w->listed &&
		    cat_sweep_end(s->c, w->drive_item, &n) == 0)
			s->stats.deleted += n;
	}
	if (!w->ct.errors && w->link && !s->fatal)
		cat_delta_set(s->c, w->scope, w->link);
	free(w->link);
	free(w->drive_id);
	free(w->scope);
	free(w->root_id);
	idset_free(&w->deferred);
	free(w);
}

static int drive_delta_open(struct snap *s, const char *id, const char *token,
			    struct graph_pager **p)
{
	int rc;

	walk_release(s);
	rc = graph_drive_delta_open(s->g, id, token, p);
	walk_acquire(s);
	return rc;
}

/* Walk drive @d shown as directory @name (kind @kind) under @parent. */
static int walk_drive(struct snap *s, int64_t parent, int kind,
		      const char *name, const struct graph_drive *d,
		      const char *service)
{
	struct dwalk *w;
	struct item in = { 0 };
	struct cat_item cur;
	struct graph_pager *p = NULL;
	struct graph_item it = { 0 };
	struct buf token = BUF_INIT;
	bool existed, full;
	int rc;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->ct.service = service;
	w->ct.finalize = drive_done;
	w->drive_id = strdup(d->id);
	if (!w->drive_id || asprintf(&w->scope, "drive:%s", d->id) < 0) {
		w->scope = NULL;
		rc = -ENOMEM;
		goto out;
	}
	s->stats.drives++;
	existed = cat_item_find(s->c, w->scope, d->id, &cur) == 0;
	rc = drive_root_id(s, w, existed, &cur);
	if (rc < 0) {
		item_error(s, service, parent, name, d->id,
			   "cannot read the drive: %s",
			   graph_last_error()->message);
		s->stats.container_errors++;
		goto out;
	}
	in.parent = parent;
	in.kind = kind;
	in.name = strdup(name);
	in.scope = strdup(w->scope);
	in.graph_id = strdup(d->id);
	in.mtime = d->modified;
	in.btime = d->created;
	meta_add(&in.meta, CAT_META_GRAPH_ID, d->id);
	meta_add(&in.meta, CAT_META_DRIVE_ID, d->id);
	meta_add(&in.meta, CAT_META_WEB_URL, d->web_url);
	meta_add(&in.meta, "name", d->name);
	meta_add(&in.meta, "driveType", d->drive_type);
	meta_add(&in.meta, "rootId", w->root_id);
	meta_time(&in.meta, "createdDateTime", d->created);
	identity(&in.meta, CAT_META_AUTHOR, &d->owner);
	if (!in.name || !in.scope || !in.graph_id) {
		rc = -ENOMEM;
		goto out;
	}
	rc = put_item(s, &in, NULL, &w->drive_item);
	if (rc < 0)
		goto out;
	idset_add(&s->containers, w->drive_item);

	full = !existed || cat_delta_get(s->c, w->scope, &token) < 0;
again:
	if (full)
		s->stats.full_walks++;
	rc = drive_delta_open(s, d->id, full ? NULL : token.data, &p);
	if (rc == -ESTALE && !full) {
		log_info("delta token of drive '%s' expired: walking it all",
			 name);
		s->stats.resyncs++;
		full = true;
		goto again;
	}
	if (rc < 0)
		goto failed;
	if (full && existed && !w->sweeping)
		w->sweeping = cat_sweep_begin(s->c, w->drive_item) == 0;
	for (;;) {
		walk_release(s);
		rc = graph_pager_next_item(p, &it);
		walk_acquire(s);
		if (rc <= 0 || s->fatal)
			break;
		rc = handle_item(s, w, &it);
		if (rc < 0)
			break;
		pool_reap(s, NULL, false);
	}
	if (rc == -ESTALE && !full) {
		graph_pager_free(p);
		p = NULL;
		pool_reap(s, &w->ct, true);
		log_info("delta token of drive '%s' expired: walking it all",
			 name);
		s->stats.resyncs++;
		full = true;
		goto again;
	}
	if (rc < 0)
		goto failed;
	if (graph_pager_delta_link(p)) {
		w->link = strdup(graph_pager_delta_link(p));
		if (!w->link)
			w->ct.errors++;
	}
	w->listed = true;
	rc = 0;
	goto out;
failed:
	item_error(s, service, parent, name, d->id, "cannot walk the drive: %s",
		   graph_last_error()->message);
	s->stats.container_errors++;
	w->ct.errors++;
out:
	graph_item_release(&it);
	graph_pager_free(p);
	item_free(&in);
	buf_release(&token);
	container_close(s, &w->ct); /* may free @w */
	return rc;
}

int walk_user_drive(struct snap *s, const struct graph_user *u)
{
	struct graph_drive d = { 0 };
	struct buf name = BUF_INIT;
	const char *upn = u->upn ? u->upn : u->id;
	int rc;

	walk_release(s);
	rc = graph_drive_get_default(s->g, GRAPH_OWNER_USER, u->id, &d);
	walk_acquire(s);
	if (rc == -ENOENT || rc == -EPERM) {
		/* not provisioned ("mysite not found") or not licensed: noted
		 * and counted, not an error */
		log_info("user '%s' has no OneDrive: %s", upn,
			 graph_last_error()->message);
		s->stats.no_onedrive++;
		rc = 0;
		goto out;
	}
	if (rc < 0) {
		item_error(s, "onedrive", s->top[1], upn, u->id,
			   "cannot read the OneDrive: %s",
			   graph_last_error()->message);
		s->stats.container_errors++;
		goto out;
	}
	rc = map_name(upn, &name);
	if (rc == 0)
		rc = walk_drive(s, s->top[1], CAT_KIND_ONEDRIVE, name.data, &d,
				"onedrive");
out:
	graph_drive_release(&d);
	buf_release(&name);
	return rc;
}

/* ---- sites ---------------------------------------------------------- */

struct comps {
	char *v[64];
	int n;
};

static int comp_cb(void *ctx, const char *component)
{
	struct comps *c = ctx;

	if (c->n >= 64)
		return -E2BIG;
	c->v[c->n] = strdup(component);
	if (!c->v[c->n])
		return -ENOMEM;
	c->n++;
	return 0;
}

/* The directory of site @site: sites/<host>/<path...>. */
static int site_dir(struct snap *s, const struct graph_site *site, int64_t *dir)
{
	struct comps c = { .n = 0 };
	struct item in = { 0 };
	int64_t parent = s->top[0];
	int rc, i;

	rc = names_site_path(site->web_url ? site->web_url : "", comp_cb, &c);
	if (rc == 0 && c.n == 0)
		rc = -EINVAL;
	for (i = 0; rc == 0 && i < c.n - 1; i++)
		rc = lookup_or_put_dir(
			s, parent, i ? CAT_KIND_SITE_PATH : CAT_KIND_SITE_HOST,
			c.v[i], &parent);
	if (rc < 0)
		goto out;
	/* the site's own directory carries its metadata */
	in.parent = parent;
	in.kind = c.n == 1 ? CAT_KIND_SITE_HOST : CAT_KIND_SITE_PATH;
	in.name = strdup(c.v[c.n - 1]);
	in.mtime = site->modified;
	in.btime = site->created;
	meta_add(&in.meta, CAT_META_GRAPH_ID, site->id);
	meta_add(&in.meta, CAT_META_WEB_URL, site->web_url);
	meta_add(&in.meta, "name", site->display_name);
	meta_time(&in.meta, "createdDateTime", site->created);
	if (!in.name) {
		rc = -ENOMEM;
		goto out;
	}
	rc = put_item(s, &in, NULL, dir);
	if (rc == 0)
		idset_add(&s->containers, *dir);
out:
	item_free(&in);
	for (i = 0; i < c.n; i++)
		free(c.v[i]);
	return rc;
}

struct strset {
	char **v;
	size_t n;
};

static bool strset_add(struct strset *set, const char *s)
{
	char **v;
	size_t i;

	for (i = 0; i < set->n; i++)
		if (!strcmp(set->v[i], s))
			return false;
	v = realloc(set->v, (set->n + 1) * sizeof(*v));
	if (!v)
		return false;
	set->v = v;
	set->v[set->n] = strdup(s);
	if (!set->v[set->n])
		return false;
	set->n++;
	return true;
}

static void strset_free(struct strset *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		free(set->v[i]);
	free(set->v);
}

static void walk_site(struct snap *s, const struct graph_site *site,
		      struct strset *done, int depth)
{
	struct graph_pager *p = NULL;
	struct graph_drive d = { 0 };
	struct graph_site sub = { 0 };
	struct buf name = BUF_INIT;
	const char *url = site->web_url ? site->web_url : "";
	const char *bare = strstr(url, "://") ? strstr(url, "://") + 3 : url;
	const char *cand[5] = { bare, url,
				site->display_name ? site->display_name : url,
				site->id, NULL };
	int64_t dir;
	int rc;

	if (site->personal || !strset_add(done, site->id) || depth > 32)
		return;
	if (!snap_select_match(s->cfg.sites, s->cfg.exclude_sites, cand))
		goto subsites;
	rc = site_dir(s, site, &dir);
	if (rc < 0) {
		item_error(s, "sharepoint", s->top[0], url, site->id,
			   "cannot record the site: %s", strerror(-rc));
		s->stats.container_errors++;
		goto subsites;
	}
	walk_release(s);
	rc = graph_drives_open(s->g, GRAPH_OWNER_SITE, site->id, &p);
	walk_acquire(s);
	while (rc == 0 && !s->fatal) {
		walk_release(s);
		rc = graph_pager_next_drive(p, &d);
		walk_acquire(s);
		if (rc <= 0)
			break;
		rc = map_name(d.name ? d.name : d.id, &name);
		if (rc == 0)
			walk_drive(s, dir, CAT_KIND_DRIVE, name.data, &d,
				   "sharepoint");
		rc = 0;
	}
	if (rc < 0) {
		item_error(s, "sharepoint", dir, NULL, site->id,
			   "cannot list the document libraries: %s",
			   graph_last_error()->message);
		s->stats.container_errors++;
	}
	graph_pager_free(p);
	p = NULL;
subsites:
	if (s->fatal)
		goto out;
	walk_release(s);
	rc = graph_subsites_open(s->g, site->id, &p);
	walk_acquire(s);
	while (rc == 0 && !s->fatal) {
		walk_release(s);
		rc = graph_pager_next_site(p, &sub);
		walk_acquire(s);
		if (rc <= 0)
			break;
		rc = 0;
		walk_site(s, &sub, done, depth + 1);
	}
	if (rc < 0) {
		item_error(s, "sharepoint", s->top[0], url, site->id,
			   "cannot list the subsites: %s",
			   graph_last_error()->message);
		s->stats.container_errors++;
	}
out:
	graph_pager_free(p);
	graph_drive_release(&d);
	graph_site_release(&sub);
	buf_release(&name);
}

int walk_sites(struct snap *s)
{
	struct graph_pager *p = NULL;
	struct graph_site site = { 0 };
	struct strset done = { 0 };
	int rc;

	walk_release(s);
	rc = graph_sites_all_open(s->g, &p);
	if (rc < 0 && rc != -EACCES && rc != -EPERM) {
		/* getAllSites is not everywhere: fall back to search */
		rc = graph_sites_search_open(s->g, "*", &p);
	}
	walk_acquire(s);
	while (rc == 0 && !s->fatal) {
		walk_release(s);
		rc = graph_pager_next_site(p, &site);
		walk_acquire(s);
		if (rc <= 0)
			break;
		rc = 0;
		walk_site(s, &site, &done, 0);
	}
	if (rc < 0) {
		log_err("cannot list the SharePoint sites: %s",
			graph_last_error()->message);
		s->stats.container_errors++;
		s->enum_failed[0] = true;
	}
	graph_site_release(&site);
	graph_pager_free(p);
	strset_free(&done);
	return rc < 0 ? rc : 0;
}
