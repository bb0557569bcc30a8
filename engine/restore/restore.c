/*
 * restore - spool, queue worker and uploaders (see restore.h).
 */
#include "restore/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "names/names.h"
#include "util/log.h"
#include "util/util.h"

#define CACHE_BUCKETS 1024
#define MAIL_MAX      (150u << 20) /* largest message imported */
#define THREADS_MAX   32
#define RESCAN_S      10 /* idle uploaders look for pending entries */
#define REC_LINGER_MS 10 /* results arriving within this share a commit */
#define SPOOL_SHORT                                                            \
	"the spool file is incomplete (m365fs stopped while the file was "     \
	"being copied): copy it again"

struct cache_ent;
struct sync_req;
struct result;

struct restore {
	char *repo;
	char *spool_dir;
	dev_t spool_dev; /* of spool_dir: a descriptor elsewhere is memory */
	struct graph *graph;
	struct cat *cat;
	unsigned threads;
	size_t fragment;
	bool inline_ok; /* small files are kept in the catalog */
	pthread_t tid[THREADS_MAX];
	pthread_t syncer;
	bool syncer_on;
	pthread_cond_t sync_wake; /* a spool file to fsync, or stop */
	pthread_cond_t sync_done;
	struct sync_req *syncq; /* protected by lock */
	pthread_t recorder;
	bool recorder_on;
	pthread_cond_t rec_wake; /* a result to record, or workers gone */
	/* protected by lock: results waiting for the recorder, the batch it
	 * commits now, whether the uploaders have ended */
	struct result *recq, **recq_tail;
	struct result *recording;
	bool rec_linger; /* the recorder waits for more: no wake-up needed */
	bool workers_gone;
	unsigned started;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* work queued, or stop */
	pthread_cond_t quit; /* stop (ends a backoff) */
	/* protected by lock: */
	bool stop;
	struct cache_ent *cache[CACHE_BUCKETS];
	struct job *ready; /* entries to upload, FIFO from ready_head */
	size_t ready_head, ready_n, ready_cap;
	int64_t busy[THREADS_MAX]; /* entry each uploader works on, or 0 */
	bool scanning; /* an idle uploader rescans the queue */
	int64_t scanned_ms; /* when it last did (monotonic) */
	char **sites; /* site paths "host/sites/a" (mapped), listed once */
	size_t nsites;
	bool sites_listed;
};

/*
 * Work is handed to the uploaders in memory: restore_commit() appends the
 * new entry, restore_start() the entries an earlier process left pending.
 * The queue in the catalog stays the record (pending until done or
 * failed) but is not claimed entry by entry: a claim would be one more
 * synchronous commit per file, and close() waits for the catalog lock.
 */
struct job {
	int64_t id;
	int attempts; /* in this process, including this one */
	bool again; /* may have been uploaded before: look first */
};

static void push_job(struct restore *r, const struct job *j);

static const char *const conflict_names[] = { "rename", "replace", "skip" };

const char *restore_conflict_name(int c)
{
	return c >= 0 && c <= RESTORE_SKIP ? conflict_names[c] : "?";
}

int restore_conflict_parse(const char *s)
{
	int i;

	for (i = 0; s && i <= RESTORE_SKIP; i++)
		if (!strcmp(s, conflict_names[i]))
			return i;
	return -EINVAL;
}

const char *restore_status_name(int status)
{
	switch (status) {
	case CAT_RESTORE_PENDING:
		return "pending";
	case CAT_RESTORE_UPLOADING:
		return "uploading";
	case CAT_RESTORE_DONE:
		return "done";
	case CAT_RESTORE_FAILED:
		return "failed";
	}
	return "?";
}

/* ---- locations and their cache ---------------------------------------- */

/* The private fields of a location (struct restore_loc plus the names
 * needed to go one level down): kept in the cache only. */
struct loc_ext {
	char top; /* 's', 'o', 'm' or 0 */
	char *host; /* SITE, SITE_PATH */
	char *spath; /* server-relative site path ("" = root site) */
	char *dpath; /* FOLDER: drive-relative path ("" = root) */
};

struct cloc {
	struct restore_loc l;
	struct loc_ext x;
};

void restore_loc_release(struct restore_loc *l)
{
	if (!l)
		return;
	free(l->drive_id);
	free(l->item_id);
	free(l->site_id);
	free(l->user);
	free(l->folder_id);
	memset(l, 0, sizeof(*l));
}

static void cloc_release(struct cloc *c)
{
	restore_loc_release(&c->l);
	free(c->x.host);
	free(c->x.spath);
	free(c->x.dpath);
	memset(c, 0, sizeof(*c));
}

static char *sdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int loc_copy(struct restore_loc *dst, const struct restore_loc *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->kind = src->kind;
	dst->drive_id = sdup(src->drive_id);
	dst->item_id = sdup(src->item_id);
	dst->site_id = sdup(src->site_id);
	dst->user = sdup(src->user);
	dst->folder_id = sdup(src->folder_id);
	if ((src->drive_id && !dst->drive_id) ||
	    (src->item_id && !dst->item_id) ||
	    (src->site_id && !dst->site_id) || (src->user && !dst->user) ||
	    (src->folder_id && !dst->folder_id)) {
		restore_loc_release(dst);
		return -ENOMEM;
	}
	return 0;
}

static int cloc_copy(struct cloc *dst, const struct cloc *src)
{
	int rc = loc_copy(&dst->l, &src->l);

	dst->x.top = src->x.top;
	dst->x.host = sdup(src->x.host);
	dst->x.spath = sdup(src->x.spath);
	dst->x.dpath = sdup(src->x.dpath);
	if (rc == 0 &&
	    ((src->x.host && !dst->x.host) || (src->x.spath && !dst->x.spath) ||
	     (src->x.dpath && !dst->x.dpath)))
		rc = -ENOMEM;
	if (rc < 0)
		cloc_release(dst);
	return rc;
}

struct cache_ent {
	char *path;
	struct cloc c;
	struct cache_ent *next;
};

static unsigned hash_str(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % CACHE_BUCKETS;
}

static bool cache_get(struct restore *r, const char *path, struct cloc *out)
{
	struct cache_ent *e;
	bool found = false;

	pthread_mutex_lock(&r->lock);
	for (e = r->cache[hash_str(path)]; e; e = e->next)
		if (!strcmp(e->path, path)) {
			found = cloc_copy(out, &e->c) == 0;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	return found;
}

static void cache_put(struct restore *r, const char *path, const struct cloc *c)
{
	struct cache_ent *e = calloc(1, sizeof(*e));
	unsigned h = hash_str(path);

	if (!e)
		return;
	e->path = strdup(path);
	if (!e->path || cloc_copy(&e->c, c) < 0) {
		free(e->path);
		free(e);
		return;
	}
	pthread_mutex_lock(&r->lock);
	e->next = r->cache[h];
	r->cache[h] = e;
	pthread_mutex_unlock(&r->lock);
}

/* Forget @path and everything below it (the tenant changed). */
static void cache_drop(struct restore *r, const char *path)
{
	struct cache_ent **pp, *e;
	size_t len = strlen(path);
	unsigned i;

	pthread_mutex_lock(&r->lock);
	for (i = 0; i < CACHE_BUCKETS; i++)
		for (pp = &r->cache[i]; (e = *pp);) {
			if (!strncmp(e->path, path, len) &&
			    (!e->path[len] || e->path[len] == '/')) {
				*pp = e->next;
				free(e->path);
				cloc_release(&e->c);
				free(e);
			} else {
				pp = &e->next;
			}
		}
	pthread_mutex_unlock(&r->lock);
}

static void cache_free(struct restore *r)
{
	struct cache_ent *e, *n;
	unsigned i;

	for (i = 0; i < CACHE_BUCKETS; i++)
		for (e = r->cache[i]; e; e = n) {
			n = e->next;
			free(e->path);
			cloc_release(&e->c);
			free(e);
		}
}

/* ---- resolving directories ---------------------------------------------- */

static int set_folder(struct cloc *out, const char *drive, const char *item,
		      const char *dpath)
{
	out->l.kind = RESTORE_K_FOLDER;
	out->l.drive_id = strdup(drive);
	out->l.item_id = strdup(item);
	out->x.dpath = strdup(dpath);
	return out->l.drive_id && out->l.item_id && out->x.dpath ? 0 : -ENOMEM;
}

/* The library named @name of site @site_id, into @out. */
static int find_library(struct restore *r, const char *site_id,
			const char *name, struct cloc *out)
{
	struct graph_pager *p = NULL;
	struct graph_drive d = { 0 };
	struct graph_item root = { 0 };
	int rc;

	rc = graph_drives_open(r->graph, GRAPH_OWNER_SITE, site_id, &p);
	while (rc == 0 && (rc = graph_pager_next_drive(p, &d)) == 1) {
		if (d.name && !strcmp(d.name, name))
			break;
		rc = 0;
	}
	if (rc == 1) {
		rc = graph_item_get(r->graph, d.id, "root", &root);
		if (rc == 0)
			rc = set_folder(out, d.id, root.id, "");
	} else if (rc == 0) {
		rc = -ENOENT;
	}
	graph_pager_free(p);
	graph_drive_release(&d);
	graph_item_release(&root);
	return rc;
}

static int find_site(struct restore *r, const char *host, const char *spath,
		     struct cloc *out)
{
	struct graph_site s = { 0 };
	int rc;

	rc = graph_site_get_by_path(r->graph, host, spath[0] ? spath : "/", &s);
	if (rc == 0) {
		out->l.kind = RESTORE_K_SITE;
		out->l.site_id = strdup(s.id);
		out->x.host = strdup(host);
		out->x.spath = strdup(spath);
		if (!out->l.site_id || !out->x.host || !out->x.spath)
			rc = -ENOMEM;
	}
	graph_site_release(&s);
	return rc;
}

static int find_mail_folder(struct restore *r, const char *user,
			    const char *parent, const char *name, bool create,
			    struct cloc *out)
{
	struct graph_pager *p = NULL;
	struct graph_mail_folder f = { 0 };
	int rc, tries;

	for (tries = 0; tries < 2; tries++) {
		rc = graph_mail_folders_open(r->graph, user, parent, true, &p);
		while (rc == 0 &&
		       (rc = graph_pager_next_mail_folder(p, &f)) == 1) {
			if (!strcmp(f.display_name, name))
				break;
			rc = 0;
		}
		graph_pager_free(p);
		p = NULL;
		if (rc != 0 || !create || tries)
			break;
		rc = graph_mail_folder_create(r->graph, user, parent, name, &f);
		if (rc == 0) {
			rc = 1;
			break;
		}
		if (rc != -EEXIST)
			break;
	}
	if (rc == 1) {
		out->l.kind = RESTORE_K_MAIL_FOLDER;
		out->l.user = strdup(user);
		out->l.folder_id = strdup(f.id);
		rc = out->l.user && out->l.folder_id ? 0 : -ENOMEM;
	} else if (rc == 0) {
		rc = -ENOENT;
	}
	graph_mail_folder_release(&f);
	return rc;
}

static int find_item(struct restore *r, const struct cloc *parent,
		     const char *name, bool create, struct cloc *out)
{
	struct graph_item it = { 0 };
	struct buf dp = BUF_INIT;
	int rc;

	buf_addf(&dp, "%s/%s", parent->x.dpath, name);
	if (!dp.data)
		return -ENOMEM;
	rc = graph_item_get_by_path(r->graph, parent->l.drive_id, dp.data, &it);
	if (rc == -ENOENT && create) {
		rc = graph_folder_create(r->graph, parent->l.drive_id,
					 parent->l.item_id, name,
					 GRAPH_CONFLICT_FAIL, &it);
		if (rc == -EEXIST)
			rc = graph_item_get_by_path(
				r->graph, parent->l.drive_id, dp.data, &it);
	}
	if (rc == 0 && it.kind != GRAPH_ITEM_FOLDER)
		rc = -ENOTDIR;
	if (rc == 0)
		rc = set_folder(out, parent->l.drive_id, it.id, dp.data);
	graph_item_release(&it);
	buf_release(&dp);
	return rc;
}

/* One level down from @parent (resolved @ppath) to the tenant name @raw. */
static int resolve_child(struct restore *r, const char *ppath,
			 const struct cloc *parent, const char *raw,
			 bool create, struct cloc *out)
{
	struct graph_user u = { 0 };
	struct graph_drive d = { 0 };
	struct graph_item root = { 0 };
	struct buf sp = BUF_INIT;
	int rc = -ENOENT;

	out->x.top = parent->x.top;
	switch (parent->l.kind) {
	case RESTORE_K_ROOT:
		if (!strcmp(raw, "sites") || !strcmp(raw, "onedrive") ||
		    !strcmp(raw, "mailboxes")) {
			out->l.kind = RESTORE_K_TOP;
			out->x.top = raw[0];
			return 0;
		}
		log_warn("restore: '%s' is not sites, onedrive or mailboxes",
			 raw);
		return -ENOENT;
	case RESTORE_K_TOP:
		if (parent->x.top == 's') {
			rc = find_site(r, raw, "", out);
			if (rc == -ENOENT)
				log_warn(
					"restore: no SharePoint host '%s' in the tenant",
					raw);
		} else if (parent->x.top == 'o') {
			rc = graph_drive_get_default(r->graph, GRAPH_OWNER_USER,
						     raw, &d);
			if (rc == 0)
				rc = graph_item_get(r->graph, d.id, "root",
						    &root);
			if (rc == 0)
				rc = set_folder(out, d.id, root.id, "");
			else
				log_warn(
					"restore: no OneDrive for user '%s' in the tenant",
					raw);
		} else {
			rc = graph_user_get(r->graph, raw, &u);
			if (rc == 0) {
				out->l.kind = RESTORE_K_MAILBOX;
				out->l.user = strdup(u.id);
				rc = out->l.user ? 0 : -ENOMEM;
			} else {
				log_warn(
					"restore: no mailbox user '%s' in the tenant",
					raw);
			}
		}
		break;
	case RESTORE_K_SITE:
	case RESTORE_K_SITE_PATH:
		if (parent->l.kind == RESTORE_K_SITE) {
			rc = find_library(r, parent->l.site_id, raw, out);
			if (rc != -ENOENT)
				break;
		}
		buf_addf(&sp, "%s/%s", parent->x.spath, raw);
		if (!sp.data) {
			rc = -ENOMEM;
			break;
		}
		rc = find_site(r, parent->x.host, sp.data, out);
		if (rc == -ENOENT && !parent->x.spath[0] &&
		    (!strcmp(raw, "sites") || !strcmp(raw, "teams") ||
		     !strcmp(raw, "personal"))) {
			out->l.kind = RESTORE_K_SITE_PATH;
			out->x.host = strdup(parent->x.host);
			out->x.spath = strdup(sp.data);
			rc = out->x.host && out->x.spath ? 0 : -ENOMEM;
		}
		if (rc == -ENOENT)
			log_warn(
				"restore: '%s/%s' is neither a library nor a site in the tenant",
				ppath, raw);
		break;
	case RESTORE_K_FOLDER:
		rc = find_item(r, parent, raw, create, out);
		break;
	case RESTORE_K_MAILBOX:
	case RESTORE_K_MAIL_FOLDER:
		rc = find_mail_folder(r, parent->l.user,
				      parent->l.kind == RESTORE_K_MAILBOX
					      ? NULL
					      : parent->l.folder_id,
				      raw, create, out);
		break;
	}
	graph_user_release(&u);
	graph_drive_release(&d);
	graph_item_release(&root);
	buf_release(&sp);
	return rc;
}

static int resolve(struct restore *r, const char *path, bool create,
		   struct cloc *out)
{
	struct cloc parent = { 0 };
	struct buf pp = BUF_INIT, raw = BUF_INIT;
	const char *slash;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!path[0])
		return 0; /* RESTORE_K_ROOT */
	if (cache_get(r, path, out))
		return 0;
	slash = strrchr(path, '/');
	rc = buf_add(&pp, path, slash ? (size_t)(slash - path) : 0);
	if (rc == 0 && !pp.data)
		rc = buf_adds(&pp, "");
	if (rc == 0)
		rc = names_unmap(slash ? slash + 1 : path, &raw);
	if (rc < 0)
		goto out;
	if (!raw.len) {
		rc = -EINVAL;
		goto out;
	}
	rc = resolve(r, pp.data, create, &parent);
	if (rc == 0)
		rc = resolve_child(r, pp.data, &parent, raw.data, create, out);
	log_debug("restore: resolve '%s' (parent kind %d): %d kind %d", path,
		  parent.l.kind, rc, out->l.kind);
	if (rc == 0)
		cache_put(r, path, out);
	else
		cloc_release(out);
out:
	cloc_release(&parent);
	buf_release(&pp);
	buf_release(&raw);
	return rc;
}

int restore_dir(struct restore *r, const char *path, bool create,
		struct restore_loc *out)
{
	struct cloc c;
	int rc;

	rc = resolve(r, path, create, &c);
	if (rc == 0) {
		*out = c.l;
		memset(&c.l, 0, sizeof(c.l));
	} else {
		memset(out, 0, sizeof(*out));
	}
	cloc_release(&c);
	return rc;
}

/* ---- listing what the tenant holds ------------------------------------ */

/* A growing array of strings. */
struct strv {
	char **v;
	size_t n;
};

static int strv_add(struct strv *sv, const char *str)
{
	char **v = realloc(sv->v, (sv->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	sv->v = v;
	sv->v[sv->n] = strdup(str);
	if (!sv->v[sv->n])
		return -ENOMEM;
	sv->n++;
	return 0;
}

static void strv_free(struct strv *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof(*sv));
}

static int site_comp(void *ctx, const char *comp)
{
	struct buf *b = ctx;

	if (b->len)
		buf_addch(b, '/');
	return buf_adds(b, comp);
}

/* The path of @site below restore/sites/ ("host/sites/a") into @out. */
static int site_rel(const struct graph_site *site, struct buf *out)
{
	buf_truncate(out, 0);
	return names_site_path(site->web_url ? site->web_url : "", site_comp,
			       out);
}

/* List the (non-personal) sites of the tenant once. */
static int list_sites(struct restore *r)
{
	struct graph_pager *p = NULL;
	struct graph_site site = { 0 };
	struct strv set = { 0 };
	struct buf rel = BUF_INIT;
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = r->sites_listed;
	pthread_mutex_unlock(&r->lock);
	if (rc)
		return 0;
	rc = graph_sites_all_open(r->graph, &p);
	if (rc < 0 && rc != -EACCES && rc != -EPERM)
		rc = graph_sites_search_open(r->graph, "*", &p);
	while (rc == 0 && (rc = graph_pager_next_site(p, &site)) == 1) {
		rc = 0;
		if (!site.personal && site_rel(&site, &rel) == 0 && rel.len)
			rc = strv_add(&set, rel.data);
	}
	graph_pager_free(p);
	graph_site_release(&site);
	buf_release(&rel);
	if (rc < 0) {
		strv_free(&set);
		return rc;
	}
	pthread_mutex_lock(&r->lock);
	if (!r->sites_listed) {
		r->sites = set.v;
		r->nsites = set.n;
		r->sites_listed = true;
		set.v = NULL;
		set.n = 0;
	}
	pthread_mutex_unlock(&r->lock);
	strv_free(&set);
	return 0;
}

/* Emit the component after "@prefix/" of site path @rel. */
static int emit_next(const char *rel, const char *prefix, restore_list_cb fn,
		     void *ctx)
{
	size_t len = strlen(prefix);
	const char *a, *slash;
	char *name;
	int rc;

	if (len && (strncmp(rel, prefix, len) || rel[len] != '/'))
		return 0;
	a = rel + len + (len ? 1 : 0);
	slash = strchr(a, '/');
	name = slash ? strndup(a, (size_t)(slash - a)) : strdup(a);
	if (!name)
		return -ENOMEM;
	rc = fn(ctx, name);
	free(name);
	return rc;
}

static int list_site_level(struct restore *r, const struct cloc *c,
			   restore_list_cb fn, void *ctx)
{
	struct graph_pager *p = NULL;
	struct graph_drive d = { 0 };
	struct graph_site sub = { 0 };
	struct buf prefix = BUF_INIT, rel = BUF_INIT, name = BUF_INIT;
	size_t i;
	int rc;

	rc = list_sites(r);
	if (rc < 0)
		return rc;
	if (c->l.kind == RESTORE_K_TOP)
		buf_adds(&prefix, "");
	else
		buf_addf(&prefix, "%s%s%s", c->x.host,
			 c->x.spath[0] == '/' || !c->x.spath[0] ? "" : "/",
			 c->x.spath);
	if (!prefix.data) {
		rc = -ENOMEM;
		goto out;
	}
	/* sites below this one (the list does not change: no lock needed) */
	for (i = 0; rc >= 0 && i < r->nsites; i++)
		rc = emit_next(r->sites[i], prefix.data, fn, ctx);
	if (rc < 0 || c->l.kind != RESTORE_K_SITE)
		goto out;
	rc = graph_drives_open(r->graph, GRAPH_OWNER_SITE, c->l.site_id, &p);
	while (rc == 0 && (rc = graph_pager_next_drive(p, &d)) == 1) {
		buf_truncate(&name, 0);
		rc = names_map(d.name ? d.name : "",
			       strlen(d.name ? d.name : ""), &name);
		if (rc == 0 && name.len)
			rc = fn(ctx, name.data);
	}
	graph_pager_free(p);
	p = NULL;
	if (rc < 0)
		goto out;
	rc = graph_subsites_open(r->graph, c->l.site_id, &p);
	while (rc == 0 && (rc = graph_pager_next_site(p, &sub)) == 1) {
		rc = 0;
		if (site_rel(&sub, &rel) == 0)
			rc = emit_next(rel.data, prefix.data, fn, ctx);
	}
out:
	graph_pager_free(p);
	graph_drive_release(&d);
	graph_site_release(&sub);
	buf_release(&prefix);
	buf_release(&rel);
	buf_release(&name);
	return rc < 0 ? rc : 0;
}

int restore_list(struct restore *r, const char *path, restore_list_cb fn,
		 void *ctx)
{
	struct graph_pager *p = NULL;
	struct graph_user u = { 0 };
	struct graph_mail_folder f = { 0 };
	struct buf name = BUF_INIT;
	struct cloc c;
	int rc;

	rc = resolve(r, path, false, &c);
	if (rc < 0)
		return rc;
	if ((c.l.kind == RESTORE_K_TOP && c.x.top == 's') ||
	    c.l.kind == RESTORE_K_SITE || c.l.kind == RESTORE_K_SITE_PATH) {
		rc = list_site_level(r, &c, fn, ctx);
		goto out;
	}
	if (c.l.kind == RESTORE_K_TOP) {
		rc = graph_users_open(r->graph, NULL, &p);
		while (rc == 0 && (rc = graph_pager_next_user(p, &u)) == 1) {
			buf_truncate(&name, 0);
			rc = u.upn ? names_map(u.upn, strlen(u.upn), &name) : 0;
			if (rc == 0 && name.len)
				rc = fn(ctx, name.data);
		}
	} else if (c.l.kind == RESTORE_K_MAILBOX ||
		   c.l.kind == RESTORE_K_MAIL_FOLDER) {
		rc = graph_mail_folders_open(
			r->graph, c.l.user,
			c.l.kind == RESTORE_K_MAILBOX ? NULL : c.l.folder_id,
			true, &p);
		while (rc == 0 &&
		       (rc = graph_pager_next_mail_folder(p, &f)) == 1) {
			buf_truncate(&name, 0);
			rc = names_map(f.display_name, strlen(f.display_name),
				       &name);
			if (rc == 0 && name.len)
				rc = fn(ctx, name.data);
		}
	}
out:
	graph_pager_free(p);
	graph_user_release(&u);
	graph_mail_folder_release(&f);
	buf_release(&name);
	cloc_release(&c);
	return rc < 0 ? rc : 0;
}

/* ---- spool and queue --------------------------------------------------- */

/* The name of a new spool file under policy @conflict into @spool. */
static int spool_name(struct restore *r, int conflict, struct buf *spool)
{
	char guid[37];
	int rc;

	if (conflict < 0 || conflict > RESTORE_SKIP)
		return -EINVAL;
	rc = util_guid_new(guid);
	if (rc < 0)
		return rc;
	buf_truncate(spool, 0);
	return buf_addf(spool, "%s/%s.%s", r->spool_dir, guid,
			conflict_names[conflict]);
}

static int spool_create(const char *path, int *fd)
{
	int rc;

	*fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd >= 0)
		return 0;
	rc = -errno;
	log_err("restore: cannot create spool file '%s': %s", path,
		strerror(-rc));
	return rc;
}

int restore_spool_open(struct restore *r, int conflict, struct buf *spool,
		       int *fd)
{
	int rc;

	*fd = -1;
	rc = spool_name(r, conflict, spool);
	return rc < 0 ? rc : spool_create(spool->data, fd);
}

int restore_spool_open_mem(struct restore *r, int conflict, struct buf *spool,
			   int *fd)
{
	int rc;

	*fd = -1;
	rc = spool_name(r, conflict, spool);
	if (rc < 0)
		return rc;
	*fd = memfd_create("m365-spool", MFD_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

int restore_spool_to_disk(const char *spool, int *fd)
{
	struct stat st;
	struct buf data = BUF_INIT;
	int to = -1, rc;

	if (fstat(*fd, &st) < 0)
		return -errno;
	rc = buf_grow(&data, (size_t)st.st_size + 1);
	if (rc == 0)
		rc = util_pread_all(*fd, data.data, (size_t)st.st_size, 0);
	if (rc == 0)
		rc = spool_create(spool, &to);
	if (rc == 0)
		rc = util_write_all(to, data.data, (size_t)st.st_size);
	buf_release(&data);
	if (rc < 0) {
		if (to >= 0) {
			close(to);
			unlink(spool);
		}
		return rc;
	}
	close(*fd);
	*fd = to;
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Is @fd a memory spool (restore_spool_open_mem()), no spool file? */
static bool in_memory(const struct restore *r, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && st.st_dev != r->spool_dev;
}

/*
 * The syncer thread makes spool files durable (fsync of the file, then of
 * the spool directory) while restore_commit() records the entry in the
 * catalog: the two flushes overlap instead of adding up, and close() of a
 * small file in restore/ returns sooner.  restore_commit() returns only
 * when both are done.  Should the daemon die in between, the entry may
 * exist while its spool file is short: uploads check the size first.
 */
struct sync_req {
	int fd;
	int rc;
	bool done;
	struct sync_req *next;
};

static void *syncer(void *arg)
{
	struct restore *r = arg;
	struct sync_req *batch, *q;
	int drc;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		if (!r->syncq) {
			if (r->stop)
				break;
			pthread_cond_wait(&r->sync_wake, &r->lock);
			continue;
		}
		batch = r->syncq;
		r->syncq = NULL;
		pthread_mutex_unlock(&r->lock);
		for (q = batch; q; q = q->next)
			q->rc = fsync(q->fd) < 0 ? -errno : 0;
		drc = fsync_dir(r->spool_dir);
		pthread_mutex_lock(&r->lock);
		for (q = batch; q; q = q->next) {
			if (q->rc == 0)
				q->rc = drc;
			q->done = true;
		}
		pthread_cond_broadcast(&r->sync_done);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/*
 * A small file goes into the catalog with its entry: one synchronous
 * commit makes both durable, where a spool file needs a flush of itself
 * and of the spool directory besides the commit.  The spool file is not
 * needed any more then.  -ENOTSUP: keep the spool file (it could not be
 * read back).
 */
static int commit_inline(struct restore *r, int fd, const char *target,
			 const char *spool, int64_t size, int64_t *id)
{
	struct buf data = BUF_INIT;
	int rc;

	rc = buf_grow(&data, (size_t)size + 1);
	if (rc == 0)
		rc = util_pread_all(fd, data.data, (size_t)size, 0);
	if (rc < 0) {
		buf_release(&data);
		return -ENOTSUP;
	}
	rc = cat_restore_enqueue_data(r->cat, target, spool, data.data, size,
				      id);
	buf_release(&data);
	if (rc == 0 && !in_memory(r, fd))
		unlink(spool);
	return rc;
}

/* Make the spool file durable (the syncer) while the entry is recorded. */
static int commit_spooled(struct restore *r, int fd, const char *target,
			  const char *spool, int64_t size, int64_t *id)
{
	struct sync_req sr = { .fd = fd };
	int rc;

	pthread_mutex_lock(&r->lock);
	if (r->syncer_on) {
		sr.next = r->syncq;
		r->syncq = &sr;
		pthread_cond_signal(&r->sync_wake);
	}
	pthread_mutex_unlock(&r->lock);
	if (!r->syncer_on) {
		sr.rc = fsync(fd) < 0 ? -errno : fsync_dir(r->spool_dir);
		sr.done = true;
	}
	rc = cat_restore_enqueue(r->cat, target, spool, size, id);
	pthread_mutex_lock(&r->lock);
	while (!sr.done)
		pthread_cond_wait(&r->sync_done, &r->lock);
	pthread_mutex_unlock(&r->lock);
	if (rc == 0 && sr.rc < 0) {
		cat_restore_update(
			r->cat, *id, CAT_RESTORE_FAILED,
			"the spool file could not be written to disk", NULL);
		rc = sr.rc;
	}
	return rc;
}

int restore_commit(struct restore *r, int fd, const char *target,
		   const char *spool, int64_t size, int64_t *id)
{
	struct job j = { 0, 1, false };
	int rc = -ENOTSUP;

	if (r->inline_ok && size <= (int64_t)RESTORE_INLINE_MAX)
		rc = commit_inline(r, fd, target, spool, size, &j.id);
	if (rc == -ENOTSUP && in_memory(r, fd)) {
		/* a memory spool that cannot go into the catalog */
		int dfd = dup(fd);

		rc = dfd < 0 ? -errno : restore_spool_to_disk(spool, &dfd);
		if (rc == 0)
			rc = commit_spooled(r, dfd, target, spool, size, &j.id);
		if (dfd >= 0)
			close(dfd);
	} else if (rc == -ENOTSUP) {
		rc = commit_spooled(r, fd, target, spool, size, &j.id);
	}
	if (rc < 0) {
		log_err("restore: cannot record the restore of '%s': %s",
			target, strerror(-rc));
		return rc;
	}
	log_info("restore: '%s' (%" PRId64 " bytes) queued", target, size);
	if (id)
		*id = j.id;
	push_job(r, &j);
	return 0;
}

/*
 * The bytes to restore for @e: kept in the catalog (small files: *@kept
 * set true), else the spool file.  A descriptor to read them (caller
 * closes), or -errno with @reason set.
 */
static int spool_fd(struct restore *r, const struct cat_restore *e,
		    struct buf *reason, bool *kept)
{
	struct buf data = BUF_INIT;
	int fd = -1, rc;

	rc = cat_restore_data(r->cat, e->id, &data);
	if (rc == 0) {
		*kept = true;
		fd = memfd_create("m365-restore", MFD_CLOEXEC);
		rc = fd < 0 ? -errno : util_write_all(fd, data.data, data.len);
		if (rc < 0 && fd >= 0)
			close(fd);
		if (rc < 0)
			buf_addf(reason, "cannot read the restore data: %s",
				 strerror(-rc));
	} else if (rc == -ENOENT) {
		fd = open(e->spool, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? -errno : 0;
		if (rc < 0)
			buf_addf(reason, "spool file '%s' is gone: %s",
				 e->spool, strerror(-rc));
		if (rc == -ENOENT)
			rc = -EBADMSG;
	} else {
		buf_addf(reason, "cannot read the restore queue: %s",
			 strerror(-rc));
	}
	buf_release(&data);
	return rc < 0 ? rc : fd;
}

/* A result of an uploader, to be recorded (see recorder()). */
struct result {
	int64_t id;
	int status;
	char *reason;
	char *remote_id;
	char *spool; /* spool file, NULL for none: removed once done is
		      * recorded */
	struct result *next;
};

static void result_free(struct result *q)
{
	struct result *n;

	for (; q; q = n) {
		n = q->next;
		free(q->reason);
		free(q->remote_id);
		free(q->spool);
		free(q);
	}
}

static size_t count_results(const struct result *q)
{
	size_t n = 0;

	for (; q; q = q->next)
		n++;
	return n;
}

static bool in_results(const struct result *q, int64_t id)
{
	for (; q; q = q->next)
		if (q->id == id)
			return true;
	return false;
}

/* Ids of entries in progress: an uploader has them, or their result waits
 * to be recorded.  Sorted. */
struct open_ids {
	int64_t *v;
	size_t n;
};

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Fill @o (release with free(o->v)).  Returns 0 or -ENOMEM. */
static int open_ids_get(struct restore *r, struct open_ids *o)
{
	const struct result *q;
	size_t cap, i;

	o->n = 0;
	pthread_mutex_lock(&r->lock);
	cap = THREADS_MAX + count_results(r->recq) +
	      count_results(r->recording);
	o->v = malloc(cap * sizeof(*o->v));
	if (!o->v) {
		pthread_mutex_unlock(&r->lock);
		return -ENOMEM;
	}
	for (i = 0; i < THREADS_MAX; i++)
		if (r->busy[i])
			o->v[o->n++] = r->busy[i];
	for (q = r->recq; q; q = q->next)
		o->v[o->n++] = q->id;
	for (q = r->recording; q; q = q->next)
		o->v[o->n++] = q->id;
	pthread_mutex_unlock(&r->lock);
	qsort(o->v, o->n, sizeof(*o->v), cmp_id);
	return 0;
}

/* The status to show for @e: pending entries in progress are uploading. */
static int shown_status(const struct cat_restore *e, const struct open_ids *o)
{
	if (e->status == CAT_RESTORE_PENDING && o->n &&
	    bsearch(&e->id, o->v, o->n, sizeof(*o->v), cmp_id))
		return CAT_RESTORE_UPLOADING;
	return e->status;
}

int restore_entry_status(struct restore *r, int64_t id, struct buf *out)
{
	struct cat_restore e = { 0 };
	struct open_ids o;
	int rc;

	rc = open_ids_get(r, &o);
	if (rc < 0)
		return rc;
	rc = cat_restore_get(r->cat, id, &e);
	if (rc == 0) {
		buf_adds(out, restore_status_name(shown_status(&e, &o)));
		if (e.reason && e.reason[0])
			buf_addf(out, ": %s", e.reason);
	}
	cat_restore_release(&e);
	free(o.v);
	return rc;
}

struct status_ctx {
	struct buf *out;
	struct open_ids open;
};

static int status_line(void *ctx, const struct cat_restore *e)
{
	struct status_ctx *sc = ctx;
	struct buf *out = sc->out;

	buf_addf(out, "%s\t%s", restore_status_name(shown_status(e, &sc->open)),
		 e->target);
	if (e->reason && e->reason[0])
		buf_addf(out, "\t%s", e->reason);
	return buf_addch(out, '\n');
}

int restore_status_text(struct restore *r, struct buf *out)
{
	struct status_ctx sc = { .out = out };
	int rc;

	rc = open_ids_get(r, &sc.open);
	if (rc < 0)
		return rc;
	rc = cat_restore_list(r->cat, status_line, &sc);
	free(sc.open.v);
	return rc;
}

static int count_open(void *ctx, const struct cat_restore *e)
{
	if (e->status == CAT_RESTORE_PENDING ||
	    e->status == CAT_RESTORE_UPLOADING)
		++*(int *)ctx;
	return 0;
}

int restore_drain(struct restore *r, int timeout_ms)
{
	int64_t end = util_mono_ms() + timeout_ms;
	int n, rc;

	for (;;) {
		n = 0;
		rc = cat_restore_list(r->cat, count_open, &n);
		if (rc < 0)
			return rc;
		if (!n)
			return 0;
		if (util_mono_ms() >= end)
			return -ETIMEDOUT;
		usleep(100 * 1000);
	}
}

/* Does @q leave a spool file to remove once it is recorded? */
static bool drops_file(const struct result *q)
{
	return q->status == CAT_RESTORE_DONE && q->spool;
}

/*
 * Record @batch (lock not held): 0 or -errno.  The commit is flushed to
 * disk only when a spool file goes after it: a result lost by a power
 * failure leaves its entry pending, and the next start finds it in the
 * tenant (not restored twice) as long as its bytes are still there.
 */
static int record(struct restore *r, struct result *batch)
{
	struct cat_restore_set *v;
	struct result *q;
	size_t n = count_results(batch), i = 0;
	bool durable = false;
	int rc;

	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (q = batch; q; q = q->next) {
		v[i++] = (struct cat_restore_set){ q->id, q->status, q->reason,
						   q->remote_id };
		durable |= drops_file(q);
	}
	rc = cat_restore_update_many(r->cat, v, n, durable);
	free(v);
	if (rc < 0)
		return rc;
	for (q = batch; q; q = q->next)
		if (drops_file(q))
			unlink(q->spool);
	return 0;
}

/* Put @batch back at the head of the results to record, in order (lock
 * held). */
static void unrecord(struct restore *r, struct result *batch)
{
	struct result *last = batch;

	while (last->next)
		last = last->next;
	last->next = r->recq;
	if (!r->recq)
		r->recq_tail = &last->next;
	r->recq = batch;
}

/*
 * The recorder thread writes the uploaders' results (done, failed) to the
 * queue in batches: one commit for all the results that arrived while the
 * previous batch was committed or within REC_LINGER_MS of the first one,
 * instead of one commit and one wake-up per file, and the uploader goes
 * on with the next file at once.  A result is
 * shown as "uploading" until it is recorded; the spool file of a done
 * entry is removed only then.  Should the daemon die in between, the
 * entry is pending at the next start and found in the tenant (the lookup
 * of retried entries): not restored twice.
 */
static void *recorder(void *arg)
{
	struct restore *r = arg;
	struct result *batch;
	struct timespec ts;
	int rc, fails = 0;
	bool lingered = false;

	pthread_mutex_lock(&r->lock);
	for (;;) {
		if (!r->recq) {
			if (r->workers_gone)
				break;
			pthread_cond_wait(&r->rec_wake, &r->lock);
			continue;
		}
		if (!lingered && !r->workers_gone) {
			lingered = true;
			r->rec_linger = true;
			util_deadline_in(&ts, REC_LINGER_MS);
			pthread_cond_timedwait(&r->rec_wake, &r->lock, &ts);
			r->rec_linger = false;
			continue;
		}
		lingered = false;
		batch = r->recq;
		r->recq = NULL;
		r->recq_tail = &r->recq;
		r->recording = batch;
		pthread_mutex_unlock(&r->lock);
		rc = record(r, batch);
		pthread_mutex_lock(&r->lock);
		r->recording = NULL;
		if (rc == 0) {
			fails = 0;
			result_free(batch);
			continue;
		}
		if (r->workers_gone && ++fails > 2) {
			/* the entries stay pending: the next start looks
			 * them up in the tenant */
			log_err("restore: cannot record %zu finished "
				"restore(s) in the queue: %s",
				count_results(batch), strerror(-rc));
			result_free(batch);
			continue;
		}
		log_warn("restore: cannot record %zu finished restore(s) in "
			 "the queue (%s): trying again",
			 count_results(batch), strerror(-rc));
		unrecord(r, batch);
		util_deadline_in(&ts, 1000);
		pthread_cond_timedwait(&r->quit, &r->lock, &ts);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/*
 * The result of entry @id: done or failed, with @reason and @remote_id
 * (may be NULL), recorded by the recorder (or here when it does not run).
 * @spool: its spool file, NULL when its bytes were kept in the catalog.
 */
static void finish(struct restore *r, int64_t id, int status,
		   const char *reason, const char *remote_id, const char *spool)
{
	struct result *q = calloc(1, sizeof(*q));

	if (q) {
		q->id = id;
		q->status = status;
		q->reason = sdup(reason);
		q->remote_id = sdup(remote_id);
		q->spool = sdup(spool);
	}
	if (!q || (reason && !q->reason) || (remote_id && !q->remote_id) ||
	    (spool && !q->spool) || !r->recorder_on) {
		result_free(q);
		if (cat_restore_update(r->cat, id, status, reason, remote_id) ==
			    0 &&
		    status == CAT_RESTORE_DONE && spool)
			unlink(spool);
		return;
	}
	pthread_mutex_lock(&r->lock);
	*r->recq_tail = q;
	r->recq_tail = &q->next;
	if (!r->rec_linger)
		pthread_cond_signal(&r->rec_wake);
	pthread_mutex_unlock(&r->lock);
}

/* ---- uploads ---------------------------------------------------------- */

static enum graph_conflict graph_policy(int c)
{
	return c == RESTORE_REPLACE ? GRAPH_CONFLICT_REPLACE
	       : c == RESTORE_SKIP  ? GRAPH_CONFLICT_FAIL
				    : GRAPH_CONFLICT_RENAME;
}

static bool spool_unread(const char *spool)
{
	size_t n = strlen(spool), k = strlen(RESTORE_UNREAD_SUFFIX);

	return n > k && !strcmp(spool + n - k, RESTORE_UNREAD_SUFFIX);
}

/* The policy in "<dir>/<guid>.<policy>[.unread]". */
static int policy_of_spool(const char *spool)
{
	const char *base = strrchr(spool, '/');
	const char *dot = strchr(base ? base : spool, '.');
	char name[16];
	size_t len;
	int c = -EINVAL;

	if (dot) {
		len = strcspn(dot + 1, ".");
		if (len < sizeof(name)) {
			memcpy(name, dot + 1, len);
			name[len] = 0;
			c = restore_conflict_parse(name);
		}
	}
	return c < 0 ? RESTORE_RENAME : c;
}

int restore_spool_set_unread(char **spool, bool unread)
{
	struct buf to = BUF_INIT;
	size_t k = strlen(RESTORE_UNREAD_SUFFIX);
	char *path;
	int rc;

	if (spool_unread(*spool) == unread)
		return 0;
	rc = unread ? buf_addf(&to, "%s%s", *spool, RESTORE_UNREAD_SUFFIX)
		    : buf_add(&to, *spool, strlen(*spool) - k);
	path = rc == 0 ? buf_detach(&to, NULL) : NULL;
	buf_release(&to);
	if (!path)
		return -ENOMEM;
	if (rename(*spool, path) < 0) {
		rc = -errno;
		free(path);
		return rc;
	}
	free(*spool);
	*spool = path;
	return 0;
}

/* Make the message JSON @json one that creates an unread message. */
static int json_unread(struct buf *json)
{
	cJSON *j = cJSON_Parse(json->data), *p;
	const char *id;
	char *txt = NULL;
	int rc = -ENOMEM;

	if (!j)
		return -EBADMSG;
	cJSON_ReplaceItemInObject(j, "isRead", cJSON_CreateFalse());
	cJSON_ArrayForEach(
		p, cJSON_GetObjectItem(j, "singleValueExtendedProperties"))
	{
		id = cJSON_GetStringValue(cJSON_GetObjectItem(p, "id"));
		if (id && !strcmp(id, "Integer 0x0E07"))
			cJSON_ReplaceItemInObject(p, "value",
						  cJSON_CreateString("0"));
	}
	txt = cJSON_PrintUnformatted(j);
	if (txt) {
		buf_truncate(json, 0);
		rc = buf_adds(json, txt);
	}
	free(txt);
	cJSON_Delete(j);
	return rc;
}

static int spool_qxh(int fd, char out[29])
{
	struct graph_qxh q;
	char *b = malloc(1u << 20);
	off_t off = 0;
	ssize_t n;

	if (!b)
		return -ENOMEM;
	graph_qxh_init(&q);
	while ((n = pread(fd, b, 1u << 20, off)) > 0) {
		graph_qxh_update(&q, b, (size_t)n);
		off += n;
	}
	free(b);
	if (n < 0)
		return -errno;
	graph_qxh_final(&q, out);
	return 0;
}

/* Does @name come from uploading @raw: itself, or renamed by Graph to
 * "stem (N).ext" (SharePoint) or "stem N.ext" (OneDrive)? */
static bool name_from(const char *name, const char *raw)
{
	const char *dot = strrchr(raw, '.');
	size_t stem = dot && dot != raw ? (size_t)(dot - raw) : strlen(raw);
	const char *p, *d;
	bool paren;

	if (!strcmp(name, raw))
		return true;
	if (strncmp(name, raw, stem) || name[stem] != ' ')
		return false;
	p = name + stem + 1;
	paren = *p == '(';
	p += paren;
	for (d = p; *p >= '0' && *p <= '9'; p++)
		;
	if (p == d || (paren && *p++ != ')'))
		return false;
	return !strcmp(p, raw + stem);
}

/*
 * Exactly once: before uploading an entry again, look for a file that an
 * earlier attempt made (same size and quickXorHash, name @raw or the
 * renamed form).  1 (found, @id filled), 0 or -errno.
 */
static int find_done(struct restore *r, const struct restore_loc *loc,
		     const char *raw, int fd, int64_t size, struct buf *id)
{
	struct graph_pager *p = NULL;
	struct graph_item it = { 0 };
	char qxh[29];
	int rc;

	rc = spool_qxh(fd, qxh);
	if (rc < 0)
		return rc;
	rc = graph_children_open(r->graph, loc->drive_id, loc->item_id, &p);
	while (rc == 0 && (rc = graph_pager_next_item(p, &it)) == 1) {
		if (it.kind == GRAPH_ITEM_FILE && it.size == size &&
		    it.quickxor && !strcmp(it.quickxor, qxh) &&
		    name_from(it.name, raw)) {
			buf_truncate(id, 0);
			buf_adds(id, it.id);
			break;
		}
		rc = 0;
	}
	graph_pager_free(p);
	graph_item_release(&it);
	return rc;
}

static void set_reason(struct buf *reason, int rc, const char *what)
{
	const struct graph_error *ge = graph_last_error();

	buf_truncate(reason, 0);
	if (ge->rc == rc && ge->message[0])
		buf_addf(reason, "%s", ge->message);
	else
		buf_addf(reason, "%s: %s", what, strerror(-rc));
}

static void backoff(struct restore *r, int attempt)
{
	struct timespec ts;
	int ms = attempt < 6 ? 250 << attempt : 8000;

	util_deadline_in(&ts, ms);
	pthread_mutex_lock(&r->lock);
	if (!r->stop)
		pthread_cond_timedwait(&r->quit, &r->lock, &ts);
	pthread_mutex_unlock(&r->lock);
}

static bool stopping(struct restore *r)
{
	bool s;

	pthread_mutex_lock(&r->lock);
	s = r->stop;
	pthread_mutex_unlock(&r->lock);
	return s;
}

static int upload_session(struct restore *r, const struct cat_restore *e,
			  const struct restore_loc *loc, const char *raw,
			  int conflict, int fd, struct buf *id,
			  struct buf *reason)
{
	struct graph_upload u = { 0 };
	struct graph_item it = { 0 };
	struct http_source src;
	struct http_fd_source sctx;
	struct buf saved = BUF_INIT;
	int rc = 0, errors = 0;
	uint64_t len;

	http_source_fd(&src, &sctx, fd, 0, (uint64_t)e->size);
	if (e->remote_id && !strncmp(e->remote_id, "upload:", 7)) {
		u.url = strdup(e->remote_id + 7);
		u.size = (uint64_t)e->size;
		rc = u.url ? graph_upload_status(r->graph, &u) : -ENOMEM;
		if (rc == 0)
			log_info(
				"restore: resuming the upload of '%s' at byte %" PRIu64,
				e->target, u.next);
		else
			graph_upload_release(&u);
	}
	while (!u.done && !stopping(r)) {
		if (!u.url) {
			rc = graph_upload_create(r->graph, loc->drive_id,
						 loc->item_id, raw,
						 graph_policy(conflict),
						 (uint64_t)e->size, 0, 0, &u);
			if (rc < 0) {
				set_reason(reason, rc, "create upload session");
				break;
			}
			buf_truncate(&saved, 0);
			buf_addf(&saved, "upload:%s", u.url);
			rc = cat_restore_update(restore_cat(r), e->id,
						CAT_RESTORE_UPLOADING, NULL,
						saved.data);
			if (rc < 0)
				break;
		}
		len = (uint64_t)e->size - u.next;
		if (len > r->fragment)
			len = r->fragment;
		rc = graph_upload_put(r->graph, &u, &src, len, &it);
		if (rc == 0) {
			errors = 0;
			continue;
		}
		set_reason(reason, rc, "upload");
		if (rc == -EEXIST || ++errors > 12)
			break;
		if (rc == -ENOENT) { /* session expired: start over */
			graph_upload_release(&u);
			continue;
		}
		log_warn("restore: upload of '%s' interrupted at byte %" PRIu64
			 " (%s): resuming",
			 e->target, u.next, strerror(-rc));
		backoff(r, errors);
		rc = graph_upload_status(r->graph, &u);
		if (rc == -ENOENT)
			graph_upload_release(&u);
	}
	if (u.done && rc == 0 && it.id)
		buf_adds(id, it.id);
	else if (u.done && rc == 0)
		buf_adds(id, "?");
	else if (rc == 0)
		rc = -EINTR; /* stopping: resumed at the next start */
	graph_item_release(&it);
	graph_upload_release(&u);
	buf_release(&saved);
	return rc;
}

static int upload_file(struct restore *r, const struct cat_restore *e,
		       bool again, const struct restore_loc *loc,
		       const char *raw, int conflict, struct buf *id,
		       struct buf *reason, bool *kept)
{
	struct graph_item it = { 0 };
	struct http_source src;
	struct http_fd_source sctx;
	struct stat st;
	int fd, rc;

	fd = spool_fd(r, e, reason, kept);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || st.st_size != e->size) {
		buf_adds(reason, SPOOL_SHORT);
		rc = -EBADMSG;
		goto out;
	}
	if (again && !(e->remote_id && !strncmp(e->remote_id, "upload:", 7))) {
		rc = find_done(r, loc, raw, fd, e->size, id);
		if (rc == 1) {
			log_info(
				"restore: '%s' was uploaded before the restart",
				e->target);
			rc = 0;
			goto out;
		}
	}
	if (e->size <= (int64_t)GRAPH_SMALL_UPLOAD_MAX) {
		http_source_fd(&src, &sctx, fd, 0, (uint64_t)e->size);
		rc = graph_upload_small(r->graph, loc->drive_id, loc->item_id,
					raw, graph_policy(conflict), &src, &it);
		if (rc == 0)
			buf_adds(id, it.id ? it.id : "?");
		else
			set_reason(reason, rc, "upload");
	} else {
		rc = upload_session(r, e, loc, raw, conflict, fd, id, reason);
	}
out:
	close(fd);
	graph_item_release(&it);
	return rc;
}

/*
 * Exactly once for messages: before importing an entry again, look for
 * a message with the same internetMessageId in the target folder.
 * 1 (found, @id filled), 0 or -errno.
 */
static int find_message(struct restore *r, const struct restore_loc *loc,
			const char *json, struct buf *id)
{
	struct graph_pager *p = NULL;
	struct graph_message m = { 0 };
	cJSON *j = cJSON_Parse(json);
	const char *mid = cJSON_GetStringValue(
		cJSON_GetObjectItemCaseSensitive(j, "internetMessageId"));
	int rc = 0;

	if (mid)
		rc = graph_message_delta_open(r->graph, loc->user,
					      loc->folder_id,
					      "internetMessageId", NULL, &p);
	while (mid && rc == 0 && (rc = graph_pager_next_message(p, &m)) == 1) {
		if (m.internet_message_id &&
		    !strcmp(m.internet_message_id, mid)) {
			buf_truncate(id, 0);
			buf_adds(id, m.id);
			break;
		}
		rc = 0;
	}
	graph_pager_free(p);
	graph_message_release(&m);
	cJSON_Delete(j);
	return rc;
}

/* PUT the fragments of @a to the attachment upload session @url. */
static int put_attachment(struct restore *r, const char *url,
			  const struct restore_att *a)
{
	struct http_request req = { 0 };
	struct http_response resp;
	const char *hdrs[3] = { "Content-Type: application/octet-stream", NULL,
				NULL };
	char range[96];
	size_t off = 0, n;
	int rc = 0;

	http_response_init(&resp);
	req.method = "PUT";
	req.url = url; /* pre-authenticated: no bearer */
	req.headers = hdrs;
	do {
		n = a->data.len - off;
		if (n > RESTORE_ATT_FRAGMENT)
			n = RESTORE_ATT_FRAGMENT;
		snprintf(range, sizeof(range),
			 "Content-Range: bytes %zu-%zu/%zu", off, off + n - 1,
			 a->data.len);
		hdrs[1] = range;
		req.body = a->data.data + off;
		req.body_len = n;
		rc = http_do(graph_http(r->graph), &req, &resp);
		if (rc < 0)
			rc = http_fail(&req, &resp, rc);
		if (rc == 0 && (resp.status < 200 || resp.status > 299))
			rc = http_fail(&req, &resp, 0);
		off += n;
	} while (rc == 0 && off < a->data.len);
	http_response_release(&resp);
	return rc;
}

/* Add attachment @a to message @msg of @user with an upload session
 * (GRAPH-API.md 6.6). */
static int upload_attachment(struct restore *r, const char *user,
			     const char *msg, const struct restore_att *a)
{
	struct buf path = BUF_INIT;
	cJSON *b = cJSON_CreateObject(), *it, *resp = NULL;
	const char *url;
	char *body = NULL;
	int rc = -ENOMEM;

	if (!a->data.len)
		return 0; /* Exchange refuses empty sessions; nothing to add */
	it = b ? cJSON_AddObjectToObject(b, "AttachmentItem") : NULL;
	if (!it || !cJSON_AddStringToObject(it, "attachmentType", "file") ||
	    !cJSON_AddStringToObject(it, "name", a->name) ||
	    !cJSON_AddNumberToObject(it, "size", (double)a->data.len) ||
	    !cJSON_AddStringToObject(it, "contentType", a->content_type))
		goto out;
	body = cJSON_PrintUnformatted(b);
	buf_adds(&path, "/users/");
	http_escape(&path, user);
	buf_adds(&path, "/messages/");
	http_escape(&path, msg);
	buf_adds(&path, "/attachments/createUploadSession");
	if (!body || !path.data)
		goto out;
	rc = graph_call(r->graph, "POST", path.data, body, NULL, &resp);
	if (rc < 0)
		goto out;
	url = cJSON_GetStringValue(cJSON_GetObjectItem(resp, "uploadUrl"));
	rc = url ? put_attachment(r, url, a) : -EPROTO;
out:
	cJSON_Delete(b);
	cJSON_Delete(resp);
	free(body);
	buf_release(&path);
	return rc;
}

/* Does message @msg already have an attachment like @a (a retry)? */
static bool has_attachment(const cJSON *list, const struct restore_att *a)
{
	const cJSON *x;
	const char *name;

	cJSON_ArrayForEach(x, list)
	{
		name = cJSON_GetStringValue(cJSON_GetObjectItem(x, "name"));
		if (name && !strcmp(name, a->name) &&
		    cJSON_GetNumberValue(cJSON_GetObjectItem(x, "size")) ==
			    (double)a->data.len)
			return true;
	}
	return false;
}

/* Add the @late attachments to message @msg; after a restart (@fresh
 * false) those it has already are skipped. */
static int add_attachments(struct restore *r, const char *user, const char *msg,
			   const struct restore_atts *late, bool fresh)
{
	struct buf path = BUF_INIT;
	cJSON *have = NULL;
	size_t i;
	int rc = 0;

	if (!fresh) {
		buf_adds(&path, "/users/");
		http_escape(&path, user);
		buf_adds(&path, "/messages/");
		http_escape(&path, msg);
		buf_adds(&path, "/attachments?$select=name,size");
		rc = path.data ? graph_call(r->graph, "GET", path.data, NULL,
					    NULL, &have)
			       : -ENOMEM;
	}
	for (i = 0; rc == 0 && i < late->n; i++)
		if (!have || !has_attachment(cJSON_GetObjectItem(have, "value"),
					     &late->v[i]))
			rc = upload_attachment(r, user, msg, &late->v[i]);
	cJSON_Delete(have);
	buf_release(&path);
	return rc;
}

static int import_mail(struct restore *r, const struct cat_restore *e,
		       bool again, const struct restore_loc *loc,
		       struct buf *id, struct buf *reason, bool *kept)
{
	struct graph_message m = { 0 }, moved = { 0 };
	struct buf mime = BUF_INIT, json = BUF_INIT, saved = BUF_INIT;
	struct restore_atts late = { 0 };
	const char *draft = NULL, *rid = e->remote_id ? e->remote_id : "";
	bool fresh = false;
	int rc;

	if (!strncmp(rid, "draft:", 6)) {
		draft = rid + 6; /* created before a restart */
		goto move;
	}
	rc = cat_restore_data(r->cat, e->id, &mime);
	if (rc == 0)
		*kept = true;
	else if (rc == -ENOENT)
		rc = util_read_file(e->spool, &mime, MAIL_MAX);
	if (rc < 0) {
		buf_addf(reason, "cannot read spool file '%s': %s", e->spool,
			 strerror(-rc));
		goto out;
	}
	if ((int64_t)mime.len != e->size) {
		buf_adds(reason, SPOOL_SHORT);
		rc = -EBADMSG;
		goto out;
	}
	/*
	 * A received, non-draft message from JSON; attachments that do not
	 * fit in one request are added afterwards with upload sessions.
	 */
	rc = restore_mime_parse(mime.data, mime.len, RESTORE_MAIL_INLINE_MAX,
				&json, &late);
	if (rc == 0 && spool_unread(e->spool))
		rc = json_unread(&json);
	if (rc == 0 && !strncmp(rid, "msg:", 4)) {
		buf_adds(id, rid + 4); /* created before a restart */
	} else if (rc == 0 && again &&
		   find_message(r, loc, json.data, id) == 1) {
		log_info("restore: '%s' was imported before the restart",
			 e->target);
	} else if (rc == 0) {
		rc = graph_message_create_json(r->graph, loc->user,
					       loc->folder_id, json.data, &m);
		if (rc == 0) {
			buf_adds(id, m.id);
			fresh = true;
			if (late.n) { /* a retry adds what is missing */
				buf_addf(&saved, "msg:%s", m.id);
				cat_restore_update(r->cat, e->id,
						   CAT_RESTORE_PENDING, NULL,
						   saved.data);
			}
		} else {
			set_reason(reason, rc, "import the message");
			if (rc != -EINVAL && rc != -EBADMSG)
				goto out;
			log_warn(
				"restore: '%s': JSON import refused (%s): imported from MIME as a draft",
				e->target, reason->data);
			buf_truncate(reason, 0);
			goto mime;
		}
	} else {
		log_warn("restore: '%s': MIME not understood: imported from "
			 "MIME as a draft",
			 e->target);
		goto mime;
	}
	if (late.n) {
		rc = add_attachments(r, loc->user, id->data, &late, fresh);
		if (rc < 0)
			set_reason(reason, rc, "add a large attachment");
	}
	goto out;
mime:
	rc = graph_message_create_mime(r->graph, loc->user, mime.data, mime.len,
				       &m);
	if (rc < 0) {
		set_reason(reason, rc, "import the message");
		goto out;
	}
	buf_addf(id, "draft:%s", m.id);
	cat_restore_update(r->cat, e->id, CAT_RESTORE_PENDING, NULL, id->data);
	draft = m.id;
move:
	rc = graph_message_move(r->graph, loc->user, draft, loc->folder_id,
				&moved);
	if (rc < 0) {
		set_reason(reason, rc, "move the message into its folder");
		goto out;
	}
	buf_truncate(id, 0);
	buf_adds(id, moved.id);
	buf_adds(reason, "imported from MIME as a draft");
out:
	graph_message_release(&m);
	graph_message_release(&moved);
	restore_atts_release(&late);
	buf_release(&mime);
	buf_release(&json);
	buf_release(&saved);
	return rc;
}

static bool transient(int rc)
{
	switch (-rc) {
	case EAGAIN:
	case ETIMEDOUT:
	case ECONNRESET:
	case ECONNREFUSED:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
	case EPIPE:
	case EIO:
	case EACCES:
	case EINTR:
	case ENOTCONN:
		return true;
	}
	return false;
}

static void process(struct restore *r, struct cat_restore *e,
		    const struct job *j)
{
	struct restore_loc loc = { 0 };
	struct buf parent = BUF_INIT, raw = BUF_INIT, id = BUF_INIT,
		   reason = BUF_INIT;
	const char *slash = strrchr(e->target, '/');
	int conflict = policy_of_spool(e->spool), rc, status;
	bool kept = false; /* the bytes were in the catalog: no spool file */

	buf_add(&parent, e->target, slash ? (size_t)(slash - e->target) : 0);
	buf_adds(&parent, "");
	rc = names_unmap(slash ? slash + 1 : e->target, &raw);
	if (rc == 0 && parent.data)
		rc = restore_dir(r, parent.data, true, &loc);
	else if (rc == 0)
		rc = -ENOMEM;
	if (rc < 0) {
		set_reason(&reason, rc, "find the target folder");
	} else if (loc.kind == RESTORE_K_FOLDER) {
		rc = upload_file(r, e, j->again, &loc, raw.data, conflict, &id,
				 &reason, &kept);
		if (rc == -EEXIST && conflict == RESTORE_SKIP) {
			buf_truncate(&reason, 0);
			buf_addf(&reason,
				 "skipped: '%s' exists (conflict policy skip)",
				 raw.data);
			rc = 0;
		}
	} else if (loc.kind == RESTORE_K_MAIL_FOLDER) {
		rc = import_mail(r, e, j->again, &loc, &id, &reason, &kept);
	} else {
		rc = -EINVAL;
		buf_adds(
			&reason,
			"files can only be restored into a library, a OneDrive or a mail folder");
	}
	if (rc == -ENOENT && (loc.kind == RESTORE_K_FOLDER ||
			      loc.kind == RESTORE_K_MAIL_FOLDER)) {
		/* the folder went away in the tenant since it was resolved:
		 * a retry resolves (and creates) it again */
		cache_drop(r, parent.data);
		buf_truncate(&reason, 0);
		buf_addf(&reason,
			 "the folder '%s' is not in the tenant any more "
			 "(deleted while the restore waited?): 'm365-snapshot "
			 "restore-queue --retry-failed' creates it again",
			 parent.data);
	}
	if (rc == 0) {
		status = CAT_RESTORE_DONE;
		log_info("restore: '%s' restored%s%s", e->target,
			 reason.len ? ": " : "", reason.len ? reason.data : "");
	} else if (rc == -EINTR && stopping(r)) {
		status = CAT_RESTORE_PENDING;
	} else if (transient(rc) && j->attempts < RESTORE_MAX_ATTEMPTS) {
		status = CAT_RESTORE_PENDING;
		log_warn("restore: '%s' failed (%s), will retry", e->target,
			 reason.len ? reason.data : strerror(-rc));
		backoff(r, j->attempts);
	} else {
		status = CAT_RESTORE_FAILED;
		log_err("restore: '%s' failed: %s", e->target,
			reason.len ? reason.data : strerror(-rc));
	}
	if (status == CAT_RESTORE_PENDING)
		cat_restore_update(r->cat, e->id, status,
				   reason.len ? reason.data : NULL,
				   id.len ? id.data : NULL);
	else
		finish(r, e->id, status,
		       reason.len ? reason.data
				  : (status == CAT_RESTORE_DONE ? "" : NULL),
		       id.len ? id.data : NULL, kept ? NULL : e->spool);
	if (status == CAT_RESTORE_PENDING && rc != -EINTR) {
		struct job next = { e->id, j->attempts + 1, true };

		push_job(r, &next);
	}
	restore_loc_release(&loc);
	buf_release(&parent);
	buf_release(&raw);
	buf_release(&id);
	buf_release(&reason);
}

/* Append @j to the ready queue and wake an uploader. */
static void push_job(struct restore *r, const struct job *j)
{
	struct job *v;
	size_t cap;

	pthread_mutex_lock(&r->lock);
	if (r->ready_head && r->ready_head + r->ready_n == r->ready_cap) {
		memmove(r->ready, r->ready + r->ready_head,
			r->ready_n * sizeof(*v));
		r->ready_head = 0;
	}
	if (r->ready_n == r->ready_cap) {
		cap = r->ready_cap ? r->ready_cap * 2 : 256;
		v = realloc(r->ready, cap * sizeof(*v));
		if (!v) {
			pthread_mutex_unlock(&r->lock);
			log_err("restore: out of memory: entry %" PRId64
				" waits for the next start",
				j->id);
			return;
		}
		r->ready = v;
		r->ready_cap = cap;
	}
	r->ready[r->ready_head + r->ready_n++] = *j;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
}

/* Is entry @id in progress (lock held): an uploader has it, or its result
 * waits to be recorded? */
static bool is_busy(const struct restore *r, int64_t id)
{
	unsigned i;

	for (i = 0; i < THREADS_MAX; i++)
		if (r->busy[i] == id)
			return true;
	return in_results(r->recq, id) || in_results(r->recording, id);
}

/* The next job for uploader @slot (lock held): 1, or 0 when none. */
static int pop_job(struct restore *r, unsigned slot, struct job *j)
{
	while (r->ready_n) {
		*j = r->ready[r->ready_head++];
		if (!--r->ready_n)
			r->ready_head = 0;
		if (is_busy(r, j->id))
			continue; /* found twice (a rescan): one uploader is enough */
		r->busy[slot] = j->id;
		return 1;
	}
	return 0;
}

/* Rescan (lock not held): pending entries nobody has (e.g. failed ones
 * that 'm365-snapshot restore-queue --retry-failed' made pending again). */
static int rescan_cb(void *ctx, const struct cat_restore *e)
{
	struct restore *r = ctx;
	struct job j = { e->id, 1, true };
	bool mine;

	if (e->status != CAT_RESTORE_PENDING)
		return 0;
	pthread_mutex_lock(&r->lock);
	mine = is_busy(r, e->id);
	pthread_mutex_unlock(&r->lock);
	if (!mine)
		push_job(r, &j);
	return 0;
}

struct worker_arg {
	struct restore *r;
	unsigned slot;
};

static void *worker(void *arg)
{
	struct restore *r = ((struct worker_arg *)arg)->r;
	unsigned slot = ((struct worker_arg *)arg)->slot;
	struct cat_restore e = { 0 };
	struct timespec ts;
	struct job j;
	int rc;

	free(arg);
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		if (!pop_job(r, slot, &j)) {
			util_deadline_in(&ts, RESCAN_S * 1000);
			if (pthread_cond_timedwait(&r->wake, &r->lock, &ts) !=
				    ETIMEDOUT ||
			    r->ready_n || r->scanning ||
			    util_mono_ms() - r->scanned_ms < RESCAN_S * 1000)
				continue; /* one scan per period, not per uploader */
			r->scanning = true;
			r->scanned_ms = util_mono_ms();
			pthread_mutex_unlock(&r->lock);
			cat_restore_list(r->cat, rescan_cb, r);
			pthread_mutex_lock(&r->lock);
			r->scanning = false;
			continue;
		}
		pthread_mutex_unlock(&r->lock);
		rc = cat_restore_get(r->cat, j.id, &e);
		if (rc == 0 && e.status != CAT_RESTORE_DONE &&
		    e.status != CAT_RESTORE_FAILED)
			process(r, &e, &j);
		else if (rc < 0)
			log_warn("restore: cannot read entry %" PRId64
				 " of the queue: %s",
				 j.id, strerror(-rc));
		cat_restore_release(&e);
		memset(&e, 0, sizeof(e));
		pthread_mutex_lock(&r->lock);
		r->busy[slot] = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* ---- life cycle -------------------------------------------------------- */

int restore_new(const struct restore_config *cfg, struct restore **out)
{
	struct restore *r;
	struct buf path = BUF_INIT;
	struct stat st;
	int rc;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	pthread_cond_init(&r->quit, NULL);
	pthread_cond_init(&r->sync_wake, NULL);
	pthread_cond_init(&r->sync_done, NULL);
	pthread_cond_init(&r->rec_wake, NULL);
	r->recq_tail = &r->recq;
	r->graph = cfg->graph;
	r->threads = cfg->threads ? cfg->threads : RESTORE_DEFAULT_THREADS;
	if (r->threads > THREADS_MAX)
		r->threads = THREADS_MAX;
	r->fragment = cfg->fragment ? cfg->fragment : RESTORE_FRAGMENT;
	r->fragment -= r->fragment % GRAPH_UPLOAD_UNIT;
	if (!r->fragment)
		r->fragment = GRAPH_UPLOAD_UNIT;
	r->repo = strdup(cfg->repo);
	buf_addf(&path, "%s/spool", cfg->repo);
	r->spool_dir = path.data ? strdup(path.data) : NULL;
	if (!r->repo || !r->spool_dir) {
		rc = -ENOMEM;
		goto out;
	}
	rc = util_mkdir_p(r->spool_dir, 0700);
	if (rc == 0 && stat(r->spool_dir, &st) < 0)
		rc = -errno;
	if (rc < 0) {
		log_err("restore: cannot create '%s': %s", r->spool_dir,
			strerror(-rc));
		goto out;
	}
	r->spool_dev = st.st_dev;
	buf_truncate(&path, 0);
	buf_addf(&path, "%s/%s", cfg->repo, CAT_FILE);
	rc = cat_open(path.data, CAT_OPEN_READ, &r->cat);
	if (rc < 0) {
		log_err("restore: cannot open the catalog '%s': %s%s",
			path.data, strerror(-rc),
			rc == -ENOENT ? " (take a snapshot first)" : "");
		goto out;
	}
	r->inline_ok = cat_restore_data_init(r->cat) == 0;
	if (!r->inline_ok)
		log_debug("restore: small files are not kept in the catalog "
			  "(it is read-only?): spool files are flushed each");
	r->syncer_on = pthread_create(&r->syncer, NULL, syncer, r) == 0;
	r->recorder_on = pthread_create(&r->recorder, NULL, recorder, r) == 0;
	*out = r;
	r = NULL;
out:
	buf_release(&path);
	restore_free(r);
	return rc;
}

static int load_pending(void *ctx, const struct cat_restore *e)
{
	struct restore *r = ctx;
	struct job j = { e->id, 1, true };

	if (e->status == CAT_RESTORE_PENDING)
		push_job(r, &j);
	return 0;
}

int restore_start(struct restore *r)
{
	struct worker_arg *wa;
	int n = 0, rc;

	rc = cat_restore_requeue(r->cat, &n);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&r->lock);
	r->ready_n = r->ready_head = 0; /* all in the queue: loaded below */
	pthread_mutex_unlock(&r->lock);
	rc = cat_restore_list(r->cat, load_pending, r);
	if (rc < 0)
		return rc;
	if (r->ready_n)
		log_info("restore: %zu restore(s) of an earlier run resume "
			 "(%d interrupted while uploading)",
			 r->ready_n, n);
	while (r->started < r->threads) {
		wa = malloc(sizeof(*wa));
		if (!wa)
			return -ENOMEM;
		wa->r = r;
		wa->slot = r->started;
		rc = -pthread_create(&r->tid[r->started], NULL, worker, wa);
		if (rc < 0) {
			free(wa);
			return rc;
		}
		r->started++;
	}
	return 0;
}

struct retry_ctx {
	int64_t *ids;
	size_t n, cap;
};

static int failed_cb(void *ctx, const struct cat_restore *e)
{
	struct retry_ctx *rc = ctx;
	int64_t *v;

	if (e->status != CAT_RESTORE_FAILED)
		return 0;
	if (rc->n == rc->cap) {
		rc->cap = rc->cap ? rc->cap * 2 : 64;
		v = realloc(rc->ids, rc->cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rc->ids = v;
	}
	rc->ids[rc->n++] = e->id;
	return 0;
}

int restore_retry_failed(struct restore *r, int *count)
{
	struct retry_ctx f = { 0 };
	size_t i;
	int rc;

	if (count)
		*count = 0;
	rc = cat_restore_list(r->cat, failed_cb, &f);
	for (i = 0; rc == 0 && i < f.n; i++) {
		rc = cat_restore_update(r->cat, f.ids[i], CAT_RESTORE_PENDING,
					"", NULL);
		if (rc == 0 && count)
			++*count;
	}
	free(f.ids);
	if (rc < 0)
		log_err("restore: cannot queue the failed restores again: %s",
			strerror(-rc));
	return rc;
}

struct cat *restore_cat(struct restore *r)
{
	return r->cat;
}

void restore_free(struct restore *r)
{
	unsigned i;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->wake);
	pthread_cond_broadcast(&r->quit);
	pthread_cond_broadcast(&r->sync_wake);
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < r->started; i++)
		pthread_join(r->tid[i], NULL);
	/* the uploaders' last results are recorded before the end */
	pthread_mutex_lock(&r->lock);
	r->workers_gone = true;
	pthread_cond_broadcast(&r->rec_wake);
	pthread_mutex_unlock(&r->lock);
	if (r->recorder_on)
		pthread_join(r->recorder, NULL);
	if (r->syncer_on)
		pthread_join(r->syncer, NULL);
	cat_close(r->cat);
	cache_free(r);
	for (i = 0; i < r->nsites; i++)
		free(r->sites[i]);
	free(r->sites);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->quit);
	pthread_cond_destroy(&r->sync_wake);
	pthread_cond_destroy(&r->sync_done);
	pthread_cond_destroy(&r->rec_wake);
	result_free(r->recq);
	free(r->ready);
	free(r->repo);
	free(r->spool_dir);
	free(r);
}
