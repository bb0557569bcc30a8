/*
 * fs/live - MOUNT/live/ (see live.h).
 *
 * The tree is built as it is browsed: a node per name seen, kept for the
 * life of the mount; a directory's children come from one Graph listing
 * of that directory, redone when older than the TTL.  The levels and
 * their metadata follow engine/snapshot (files.c, mail.c) so that paths
 * and xattrs line up with snapshots/.
 */
#include "live.h"
#include "restore.h" /* the connection */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/graph.h"
#include "live/live.h"
#include "names/names.h"
#include "util/log.h"
#include "util/util.h"

#define XATTR_PREFIX	 "user.m365."
#define XATTR_PREFIX_LEN (sizeof(XATTR_PREFIX) - 1)
#define BLKSIZE		 (128 * 1024)
#define WAIT_MS		 60000 /* a throttled request waits this long */
#define SITE_DEPTH	 32
#define MSG_SELECT                                                             \
	"id,subject,receivedDateTime,sentDateTime,createdDateTime,"            \
	"lastModifiedDateTime,from,toRecipients,isRead,isDraft,flag,"          \
	"internetMessageId,hasAttachments,parentFolderId,changeKey,"           \
	"importance,conversationId"

/* Node numbers 0..3: live/, sites/, onedrive/, mailboxes/. */
#define N_ROOT	    0u
#define N_SITES	    1u
#define N_ONEDRIVE  2u
#define N_MAILBOXES 3u

struct lnode {
	uint64_t ino;
	uint32_t parent;
	uint8_t kind; /* CAT_KIND_* */
	bool gone; /* no longer in its parent's listing */
	char *name; /* mapped */
	char *mapped; /* when @name got a " [hash]" (uniquify): as mapped */
	char *id; /* Graph id of what the node shows, NULL: a path dir */
	char *drive; /* DRIVE, ONEDRIVE, FOLDER, FILE */
	char *user; /* MAILBOX, MAIL_FOLDER, MESSAGE: user id */
	char *tag; /* FILE: cTag (else eTag); MESSAGE: "" or change key */
	char *url; /* FILE: downloadUrl */
	char *open_tag; /* FILE: tag at the last open */
	int64_t size, mtime, btime;
	int32_t mtime_ns;
	int64_t child_count; /* MAIL_FOLDER */
	int64_t folders_ms; /* MAIL_FOLDER: its subfolders listed, 0: never */
	struct buf meta; /* "key\0value\0"... */
	char *root_id; /* DRIVE, ONEDRIVE: id of the root item, once seen */
	char *link; /* MAIL_FOLDER: deltaLink of its messages, once listed */
	/* directories: */
	uint32_t *kids, *byname;
	size_t nkids;
	int64_t listed_ms; /* 0: never listed */
	uint32_t gen; /* changes with every change of the children */
	int64_t kernel_ms; /* listed_ms and gen when the kernel last */
	uint32_t kernel_gen; /* cached the entries */
	bool listing;
};

/* A drive whose folders were listed: how to ask it what changed. */
struct ldrive {
	char *id;
	char *link; /* deltaLink of the last refresh, NULL: none yet */
	int64_t link_ms; /* when the refresh that gave @link began */
	bool busy; /* a refresh or enumeration runs */
	bool no_delta; /* delta failed: folders are listed one by one */
	unsigned descents; /* folders listed right after their parent */
	bool enumerated; /* enumerated once (or tried: too large) */
};

struct lsite {
	char *path; /* mapped components joined by '/' */
	char *id, *web_url, *name;
	int64_t created, modified;
	bool sub; /* found as a subsite (getAllSites does not list it) */
};

static struct {
	double ttl;
	unsigned cache_mb;
	bool enabled;
	const struct fuse_lowlevel_ops *base;
	struct fuse_lowlevel_ops ops;
	struct fs *fs;
	struct graph *g;
	struct live_cache *cache;
	pthread_mutex_t lock;
	pthread_cond_t cv; /* a listing ended */
	struct lnode **nodes;
	size_t n, cap;
	struct lsite *sites;
	size_t nsites;
	int64_t sites_ms;
	bool sites_busy;
	struct ldrive *drives;
	size_t ndrives;
} L = { .lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* ---- options ----------------------------------------------------------- */

struct lopts {
	double ttl;
	unsigned cache_mb;
};

static const struct fuse_opt lopt_spec[] = {
	{ "live_ttl=%lf", offsetof(struct lopts, ttl), 1 },
	{ "live_cache=%u", offsetof(struct lopts, cache_mb), 1 },
	FUSE_OPT_END,
};

static int keep_other(void *data, const char *arg, int key,
		      struct fuse_args *outargs)
{
	(void)data, (void)arg, (void)key, (void)outargs;
	return 1;
}

int fs_live_opts(struct fuse_args *args)
{
	struct lopts o = { -1.0, 0 };

	if (fuse_opt_parse(args, &o, lopt_spec, keep_other) < 0)
		return -1;
	if (o.ttl != -1.0 && (o.ttl < 0 || o.ttl > 86400)) {
		log_err("live_ttl=%g is not between 0 and 86400 seconds",
			o.ttl);
		return -1;
	}
	L.ttl = o.ttl < 0 ? LIVE_DEFAULT_TTL : o.ttl;
	L.cache_mb = o.cache_mb ? o.cache_mb : LIVE_DEFAULT_CACHE_MB;
	return 0;
}

bool fs_live_enabled(void)
{
	return L.enabled;
}

/* ---- nodes ------------------------------------------------------------- */

static uint64_t node_ino(size_t i)
{
	return i == N_ROOT ? INO_LIVE
			   : ((uint64_t)INO_LIVE_SNAP << INO_ITEM_BITS) | i;
}

static bool is_live(uint64_t ino)
{
	return L.enabled &&
	       (ino == INO_LIVE || ino_snap(ino) == (int64_t)INO_LIVE_SNAP);
}

/* The node of @ino, or NULL (lock held). */
static struct lnode *node_get(uint64_t ino)
{
	size_t i = ino == INO_LIVE ? N_ROOT : (size_t)ino_item(ino);

	if (!is_live(ino) || i >= L.n || L.nodes[i]->gone)
		return NULL;
	return L.nodes[i];
}

static void node_fields_free(struct lnode *n)
{
	free(n->name);
	free(n->mapped);
	free(n->id);
	free(n->drive);
	free(n->user);
	free(n->tag);
	free(n->url);
	buf_release(&n->meta);
}

static void node_free(struct lnode *n)
{
	if (!n)
		return;
	node_fields_free(n);
	free(n->open_tag);
	free(n->root_id);
	free(n->link);
	free(n->kids);
	free(n->byname);
	free(n);
}

static struct lnode *node_new(const char *name, int kind)
{
	struct lnode *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->kind = (uint8_t)kind;
	n->name = strdup(name);
	buf_init(&n->meta, 0);
	if (!n->name) {
		free(n);
		return NULL;
	}
	return n;
}

/* Put @n into the table (lock held; takes ownership).  -ENOMEM. */
static int node_add(struct lnode *n, uint32_t parent)
{
	if (L.n == L.cap) {
		size_t cap = L.cap ? L.cap * 2 : 1024;
		struct lnode **v = realloc(L.nodes, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		L.nodes = v;
		L.cap = cap;
	}
	if ((uint64_t)L.n >= INO_ITEM_PARTIAL)
		return -EOVERFLOW;
	n->ino = node_ino(L.n);
	n->parent = parent;
	L.nodes[L.n++] = n;
	return 0;
}

static void meta_add(struct lnode *n, const char *key, const char *val)
{
	if (!val)
		return;
	buf_add(&n->meta, key, strlen(key) + 1);
	buf_add(&n->meta, val, strlen(val) + 1);
}

static void meta_time(struct lnode *n, const char *key, int64_t t)
{
	char s[32];

	if (!t)
		return;
	util_time_format(t, s, sizeof(s));
	meta_add(n, key, s);
}

/* As engine/snapshot: "Name <mail>", else whichever is known. */
static void meta_identity(struct lnode *n, const char *key,
			  const struct graph_identity *id)
{
	struct buf b = BUF_INIT;

	if (id->display_name && id->email)
		buf_addf(&b, "%s <%s>", id->display_name, id->email);
	meta_add(n, key,
		 b.data		    ? b.data
		 : id->display_name ? id->display_name
		 : id->email	    ? id->email
				    : id->id);
	buf_release(&b);
}

static char *sdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ---- errors and throttling --------------------------------------------- */

static bool transient(int rc)
{
	return rc == -EAGAIN || rc == -ETIMEDOUT || rc == -ECONNRESET;
}

/*
 * After a transient failure that began at @t0: wait a little and return
 * true to try again, or false when WAIT_MS are over.
 */
static bool wait_again(int rc, int64_t t0, unsigned *attempt)
{
	unsigned ms = 250u << (*attempt < 5 ? *attempt : 5);

	if (!transient(rc) || util_mono_ms() - t0 + ms > WAIT_MS)
		return false;
	(*attempt)++;
	log_debug("live: throttled or timed out (%s), trying again in %u ms",
		  strerror(-rc), ms);
	usleep(ms * 1000u);
	return true;
}

/* The errno a FUSE request gets for Graph error @rc. */
static int fuse_errno(int rc)
{
	switch (rc) {
	case -ENOENT:
	case -ENOTDIR:
	case -ENOMEM:
	case -EISDIR:
		return -rc;
	case -EACCES:
	case -EPERM:
		return EACCES;
	default:
		return EIO;
	}
}

/* ---- listing: the levels ------------------------------------------------ */

/* One item of a delta round. */
struct dchange {
	char *id, *parent;
	bool deleted, root;
	struct lnode *n; /* as a listing would show it, or NULL */
};

struct dchanges {
	struct dchange *v;
	size_t n, alloc;
};

static void dchanges_release(struct dchanges *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->v[i].id);
		free(c->v[i].parent);
		node_free(c->v[i].n);
	}
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/* A new, zeroed entry at the end of @c, or NULL: ENOMEM. */
static struct dchange *dchange_new(struct dchanges *c)
{
	struct dchange *x;

	if (c->n == c->alloc) {
		size_t na = c->alloc ? c->alloc * 2 : 64;
		struct dchange *v = realloc(c->v, na * sizeof(*v));

		if (!v)
			return NULL;
		c->v = v;
		c->alloc = na;
	}
	x = &c->v[c->n++];
	memset(x, 0, sizeof(*x));
	return x;
}

/* What a listing needs to know of the directory (copied out of the lock). */
struct dinfo {
	uint32_t idx;
	int kind;
	char *id, *drive, *user;
	int64_t child_count;
	struct buf path; /* site dirs: mapped components below sites/ */
	char *root_id; /* out: drives: parent id of their top items */
	char *link; /* mail folders: the saved deltaLink, or NULL */
	char *next; /* out: mail folders: the new deltaLink */
	struct dchanges changes; /* out: what @link said changed */
	bool patch; /* out: @changes (and not all children) were read */
	bool folders; /* mail folders: list the subfolders (else kept) */
};

static void dinfo_release(struct dinfo *d)
{
	free(d->id);
	free(d->drive);
	free(d->user);
	free(d->root_id);
	free(d->link);
	free(d->next);
	dchanges_release(&d->changes);
	buf_release(&d->path);
}

struct kids {
	struct lnode **v;
	size_t n, alloc;
};

static int kids_add(struct kids *k, struct lnode *n)
{
	if (!n)
		return -ENOMEM;
	if (k->n == k->alloc) {
		size_t na = k->alloc ? k->alloc * 2 : 64;
		struct lnode **v = realloc(k->v, na * sizeof(*v));

		if (!v) {
			node_free(n);
			return -ENOMEM;
		}
		k->v = v;
		k->alloc = na;
	}
	k->v[k->n++] = n;
	return 0;
}

static void kids_release(struct kids *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		node_free(k->v[i]);
	free(k->v);
	memset(k, 0, sizeof(*k));
}

static int map(const char *in, struct buf *out)
{
	buf_reset(out);
	return names_map(in ? in : "", in ? strlen(in) : 0, out);
}

/* A drive shown as a directory (a library, a OneDrive), as walk_drive(). */
static struct lnode *drive_node(const struct graph_drive *d, const char *name,
				int kind)
{
	struct lnode *n = node_new(name, kind);

	if (!n)
		return NULL;
	n->id = strdup(d->id);
	n->drive = strdup(d->id);
	n->mtime = d->modified;
	n->btime = d->created;
	meta_add(n, CAT_META_GRAPH_ID, d->id);
	meta_add(n, CAT_META_DRIVE_ID, d->id);
	meta_add(n, CAT_META_WEB_URL, d->web_url);
	meta_add(n, "name", d->name);
	meta_add(n, "driveType", d->drive_type);
	meta_time(n, "createdDateTime", d->created);
	meta_identity(n, CAT_META_AUTHOR, &d->owner);
	if (!n->id || !n->drive) {
		node_free(n);
		return NULL;
	}
	return n;
}

/* A driveItem, as handle_item(); NULL with *@skip for items not shown. */
static struct lnode *item_node(const struct graph_item *it, const char *drive,
			       bool *skip)
{
	struct buf name = BUF_INIT;
	struct lnode *n = NULL;

	*skip = it->is_root || it->remote || it->deleted ||
		(it->kind != GRAPH_ITEM_FILE && it->kind != GRAPH_ITEM_FOLDER &&
		 it->kind != GRAPH_ITEM_PACKAGE);
	if (*skip)
		return NULL;
	if (map(it->name, &name) < 0)
		goto out;
	n = node_new(name.data, it->kind == GRAPH_ITEM_FILE ? CAT_KIND_FILE
							    : CAT_KIND_FOLDER);
	if (!n)
		goto out;
	n->id = strdup(it->id);
	n->drive = strdup(it->drive_id ? it->drive_id : drive);
	n->mtime = it->modified;
	n->mtime_ns = (int32_t)it->modified_ns;
	n->btime = it->created;
	if (it->kind == GRAPH_ITEM_FILE) {
		n->size = it->size > 0 ? it->size : 0;
		n->tag = sdup(it->ctag ? it->ctag : it->etag ? it->etag : "");
		n->url = sdup(it->download_url);
	}
	meta_add(n, CAT_META_GRAPH_ID, it->id);
	meta_add(n, CAT_META_DRIVE_ID, it->drive_id ? it->drive_id : drive);
	meta_add(n, CAT_META_WEB_URL, it->web_url);
	meta_add(n, CAT_META_ETAG, it->etag);
	meta_add(n, CAT_META_CTAG, it->ctag);
	meta_add(n, CAT_META_QUICKXORHASH, it->quickxor);
	meta_identity(n, CAT_META_AUTHOR, &it->created_by);
	meta_identity(n, "modifiedBy", &it->modified_by);
	meta_time(n, "createdDateTime", it->created);
	meta_time(n, "lastModifiedDateTime", it->modified);
	meta_add(n, "name", it->name);
	if (!n->id || !n->drive || (it->kind == GRAPH_ITEM_FILE && !n->tag)) {
		node_free(n);
		n = NULL;
	}
out:
	buf_release(&name);
	return n;
}

/*
 * Children of a drive folder, 999 a page (the connection's default page
 * is Graph's 200: a folder of 1,200 files would take 6 requests).
 */
#define CHILDREN_PAGE 999

static int list_children(struct dinfo *d, struct kids *k)
{
	struct graph_pager *p = NULL;
	struct graph_item it = { 0 };
	const cJSON *e;
	struct lnode *n;
	bool skip;
	int rc;

	rc = graph_children_open_ahead(
		L.g, d->drive, d->kind == CAT_KIND_FOLDER ? d->id : "root",
		CHILDREN_PAGE, &p);
	while (rc == 0 && (rc = graph_pager_next_json(p, &e)) == 1) {
		rc = graph_parse_item(e, &it);
		if (rc < 0)
			break;
		n = item_node(&it, d->drive, &skip);
		if (d->kind != CAT_KIND_FOLDER && !d->root_id && it.parent_id)
			d->root_id = strdup(it.parent_id);
		rc = skip ? 0 : kids_add(k, n);
	}
	graph_pager_free(p);
	graph_item_release(&it);
	return rc;
}

/* The message file of @m (@raw: its JSON), as handle_message(). */
static struct lnode *message_node(const struct graph_message *m,
				  const cJSON *raw, const char *user)
{
	struct buf name = BUF_INIT, b = BUF_INIT;
	struct lnode *n = NULL;
	const cJSON *to, *r;

	if (names_message(m->received, m->subject ? m->subject : "", m->id,
			  &name) < 0)
		goto out;
	n = node_new(name.data, CAT_KIND_MESSAGE);
	if (!n)
		goto out;
	n->id = strdup(m->id);
	n->user = strdup(user);
	n->tag = strdup(m->is_draft && m->change_key ? m->change_key : "");
	n->mtime = m->received ? m->received : m->modified;
	n->btime = m->created;
	meta_add(n, CAT_META_GRAPH_ID, m->id);
	meta_time(n, CAT_META_RECEIVED, m->received);
	meta_time(n, "sentDateTime", m->sent);
	meta_time(n, "createdDateTime", m->created);
	meta_time(n, "lastModifiedDateTime", m->modified);
	if (m->from.display_name && m->from.email) {
		buf_addf(&b, "%s <%s>", m->from.display_name, m->from.email);
		meta_add(n, CAT_META_FROM, b.data);
	} else {
		meta_add(n, CAT_META_FROM,
			 m->from.email ? m->from.email : m->from.display_name);
	}
	to = raw ? cJSON_GetObjectItemCaseSensitive(raw, "toRecipients") : NULL;
	if (cJSON_IsArray(to)) {
		buf_reset(&b);
		cJSON_ArrayForEach(r, to)
		{
			const cJSON *ea = cJSON_GetObjectItemCaseSensitive(
				r, "emailAddress");
			const cJSON *nm =
				cJSON_GetObjectItemCaseSensitive(ea, "name");
			const cJSON *ad =
				cJSON_GetObjectItemCaseSensitive(ea, "address");

			if (b.len)
				buf_adds(&b, ", ");
			if (cJSON_IsString(nm) && cJSON_IsString(ad))
				buf_addf(&b, "%s <%s>", nm->valuestring,
					 ad->valuestring);
			else if (cJSON_IsString(ad))
				buf_adds(&b, ad->valuestring);
			else if (cJSON_IsString(nm))
				buf_adds(&b, nm->valuestring);
		}
		meta_add(n, "to", b.data);
	}
	meta_add(n, CAT_META_SUBJECT, m->subject);
	meta_add(n, CAT_META_IS_READ, m->is_read ? "true" : "false");
	meta_add(n, CAT_META_FLAG,
		 m->flag_status ? m->flag_status : "notFlagged");
	meta_add(n, "internetMessageId", m->internet_message_id);
	meta_add(n, "hasAttachments", m->has_attachments ? "true" : "false");
	if (m->is_draft)
		meta_add(n, "isDraft", "true");
	meta_add(n, "changeKey", m->change_key);
	meta_add(n, "name", m->subject);
	if (!n->id || !n->user || !n->tag) {
		node_free(n);
		n = NULL;
	}
out:
	buf_release(&name);
	buf_release(&b);
	return n;
}

static void cache_key(const struct lnode *n, struct buf *out)
{
	buf_reset(out);
	if (n->kind == CAT_KIND_MESSAGE)
		buf_addf(out, "m/%s/%s/%s", n->user, n->id, n->tag);
	else
		buf_addf(out, "f/%s/%s/%s", n->drive, n->id, n->tag);
}

/*
 * The messages of mail folder @d through its message delta: all of them
 * into @k, or with a saved deltaLink (@d->link) what changed since into
 * @d->changes (@d->patch).  @d->next receives the new deltaLink.
 */
static int list_messages(struct dinfo *d, struct kids *k)
{
	struct graph_pager *p = NULL;
	struct graph_message m = { 0 };
	struct buf key = BUF_INIT;
	struct dchange *x;
	struct lnode *n;
	uint64_t size;
	int rc;

	d->patch = d->link != NULL;
	rc = graph_message_delta_open(L.g, d->user, d->id, MSG_SELECT, d->link,
				      &p);
	while (rc == 0) {
		const cJSON *raw = NULL;

		rc = graph_pager_next_json(p, &raw);
		if (rc <= 0)
			break;
		rc = graph_parse_message(raw, &m);
		if (rc < 0)
			break;
		if (m.removed && !d->patch)
			continue;
		n = m.removed ? NULL : message_node(&m, raw, d->user);
		if (n) {
			/* the MIME's size, once it was read */
			cache_key(n, &key);
			if (key.data &&
			    live_cache_size(L.cache, key.data, &size) == 0)
				n->size = (int64_t)size;
		}
		if (!d->patch) {
			rc = kids_add(k, n);
			continue;
		}
		x = dchange_new(&d->changes);
		if (!x) {
			node_free(n);
			rc = -ENOMEM;
			break;
		}
		x->id = sdup(m.id);
		x->deleted = m.removed;
		x->n = n;
		if (!x->id || (!m.removed && !n))
			rc = -ENOMEM;
	}
	free(d->next);
	d->next = rc == 0 ? sdup(graph_pager_delta_link(p)) : NULL;
	graph_message_release(&m);
	graph_pager_free(p);
	buf_release(&key);
	return rc;
}

/* Mail folders of @user below @parent (NULL: top level), as do_folder(). */
static int list_mail_folders(const char *user, const char *parent,
			     struct kids *k)
{
	struct graph_pager *p = NULL;
	struct graph_mail_folder f = { 0 };
	struct buf name = BUF_INIT;
	struct lnode *n;
	int rc;

	rc = graph_mail_folders_open(L.g, user, parent, true, &p);
	while (rc == 0 && (rc = graph_pager_next_mail_folder(p, &f)) > 0) {
		rc = 0;
		if (f.search_folder)
			continue;
		rc = map(f.display_name, &name);
		if (rc < 0)
			break;
		n = node_new(name.data, CAT_KIND_MAIL_FOLDER);
		if (n) {
			n->id = strdup(f.id);
			n->user = strdup(user);
			n->child_count = f.child_count;
			meta_add(n, CAT_META_GRAPH_ID, f.id);
			meta_add(n, "name", f.display_name);
			if (f.hidden)
				meta_add(n, "isHidden", "true");
			if (!n->id || !n->user) {
				node_free(n);
				n = NULL;
			}
		}
		rc = kids_add(k, n);
	}
	graph_mail_folder_release(&f);
	graph_pager_free(p);
	buf_release(&name);
	return rc;
}

/*
 * onedrive/ or mailboxes/: the users that have one, found with $batch
 * (20 users per request): GET /users/{id}/drive, or the mail folders.
 */
static int list_users(bool mail, struct kids *k)
{
	struct graph_pager *p = NULL;
	struct graph_user u = { 0 };
	struct graph_batch_item bi[GRAPH_BATCH_MAX];
	char *ids[GRAPH_BATCH_MAX], *upns[GRAPH_BATCH_MAX];
	char *mails[GRAPH_BATCH_MAX], *dnames[GRAPH_BATCH_MAX];
	struct buf url[GRAPH_BATCH_MAX], name = BUF_INIT;
	struct graph_drive d = { 0 };
	size_t nb = 0, i;
	bool end = false;
	int rc;

	memset(bi, 0, sizeof(bi));
	for (i = 0; i < GRAPH_BATCH_MAX; i++) {
		buf_init(&url[i], 0);
		ids[i] = upns[i] = mails[i] = dnames[i] = NULL;
	}
	rc = graph_users_open(L.g, NULL, &p);
	while (rc == 0 && !end) {
		rc = graph_pager_next_user(p, &u);
		if (rc < 0)
			break;
		end = rc == 0;
		rc = 0;
		if (!end) {
			buf_reset(&url[nb]);
			buf_adds(&url[nb], "/users/");
			http_escape(&url[nb], u.id);
			buf_adds(
				&url[nb],
				mail ? "/mailFolders?includeHiddenFolders=true&$top=1"
				     : "/drive");
			ids[nb] = strdup(u.id);
			upns[nb] = strdup(u.upn ? u.upn : u.id);
			mails[nb] = sdup(u.mail);
			dnames[nb] = sdup(u.display_name);
			if (!url[nb].data || !ids[nb] || !upns[nb]) {
				rc = -ENOMEM;
				nb++;
				break;
			}
			bi[nb].method = "GET";
			bi[nb].url = url[nb].data;
			nb++;
		}
		if (nb < GRAPH_BATCH_MAX && !end)
			continue;
		rc = nb ? graph_batch(L.g, bi, nb) : 0;
		for (i = 0; rc == 0 && i < nb; i++) {
			struct lnode *n;

			if (bi[i].status == 429 || bi[i].status == 503) {
				rc = -EAGAIN;
				break;
			}
			if (bi[i].status != 200)
				continue; /* no OneDrive or no mailbox */
			rc = map(upns[i], &name);
			if (rc < 0)
				break;
			if (mail) {
				n = node_new(name.data, CAT_KIND_MAILBOX);
				if (n) {
					n->id = strdup(ids[i]);
					n->user = strdup(ids[i]);
					meta_add(n, CAT_META_GRAPH_ID, ids[i]);
					meta_add(n, "name", upns[i]);
					meta_add(n, "mail", mails[i]);
					meta_add(n, "displayName", dnames[i]);
				}
			} else {
				rc = graph_parse_drive(bi[i].response, &d);
				if (rc < 0)
					break;
				n = drive_node(&d, name.data,
					       CAT_KIND_ONEDRIVE);
			}
			rc = kids_add(k, n);
		}
		graph_batch_release(bi, nb);
		for (i = 0; i < nb; i++) {
			free(ids[i]);
			free(upns[i]);
			free(mails[i]);
			free(dnames[i]);
			ids[i] = upns[i] = mails[i] = dnames[i] = NULL;
		}
		memset(bi, 0, sizeof(bi));
		nb = 0;
	}
	for (i = 0; i < nb; i++) {
		free(ids[i]);
		free(upns[i]);
		free(mails[i]);
		free(dnames[i]);
	}
	for (i = 0; i < GRAPH_BATCH_MAX; i++)
		buf_release(&url[i]);
	graph_user_release(&u);
	graph_drive_release(&d);
	graph_pager_free(p);
	buf_release(&name);
	return rc;
}

/* ---- sites ------------------------------------------------------------- */

/*
 * The lists of sites and of a site's libraries change seldom and every
 * path below sites/ goes through them: they are kept SITES_TTL times the
 * TTL.  So are the lists of users of onedrive/ and mailboxes/ (each one a
 * request plus a $batch per 20 users) and of the folders of a mailbox (a
 * mail folder's messages keep the TTL: kept_subfolders()).
 */
#define SITES_TTL    10
#define SITES_TTL_MS ((int64_t)(L.ttl * 1000 * SITES_TTL))

/* How long the listing of directory node @i is kept, ms (lock held). */
static int64_t ttl_ms(uint32_t i)
{
	int kind = L.nodes[i]->kind;

	if (i == N_SITES || i == N_ONEDRIVE || i == N_MAILBOXES ||
	    kind == CAT_KIND_SITE_HOST || kind == CAT_KIND_SITE_PATH ||
	    kind == CAT_KIND_MAILBOX)
		return SITES_TTL_MS;
	return (int64_t)(L.ttl * 1000);
}

static int comp_cb(void *ctx, const char *component)
{
	struct buf *b = ctx;

	if (b->len)
		buf_addch(b, '/');
	return buf_adds(b, component);
}

static void sites_free(struct lsite *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].id);
		free(v[i].web_url);
		free(v[i].name);
	}
	free(v);
}

/* Append site @s to @v (size *@n) unless its id is there. */
static int site_add(struct lsite **v, size_t *n, const struct graph_site *s,
		    bool sub)
{
	struct buf path = BUF_INIT;
	struct lsite *nv, *e;
	size_t i;
	int rc;

	if (s->personal)
		return 0;
	for (i = 0; i < *n; i++)
		if (!strcmp((*v)[i].id, s->id))
			return 0;
	rc = names_site_path(s->web_url ? s->web_url : "", comp_cb, &path);
	if (rc < 0 || !path.len) {
		buf_release(&path);
		return 0; /* not https://host/...: not shown */
	}
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (!nv) {
		buf_release(&path);
		return -ENOMEM;
	}
	*v = nv;
	e = &nv[(*n)++];
	memset(e, 0, sizeof(*e));
	e->path = buf_detach(&path, NULL);
	e->id = strdup(s->id);
	e->web_url = sdup(s->web_url);
	e->name = sdup(s->display_name);
	e->created = s->created;
	e->modified = s->modified;
	e->sub = sub;
	return e->path && e->id ? 0 : -ENOMEM;
}

/* Refresh the site collections when older than the TTL. */
static int sites_refresh(void)
{
	struct graph_pager *p = NULL;
	struct graph_site s = { 0 };
	struct lsite *v = NULL;
	size_t n = 0, i;
	int64_t now = util_mono_ms();
	int rc;

	pthread_mutex_lock(&L.lock);
	while (L.sites_busy)
		pthread_cond_wait(&L.cv, &L.lock);
	if (L.sites_ms && now - L.sites_ms < SITES_TTL_MS) {
		pthread_mutex_unlock(&L.lock);
		return 0;
	}
	L.sites_busy = true;
	pthread_mutex_unlock(&L.lock);

	rc = graph_sites_all_open(L.g, &p);
	if (rc < 0 && rc != -EACCES && rc != -EPERM && !transient(rc))
		rc = graph_sites_search_open(L.g, "*", &p);
	while (rc == 0 && (rc = graph_pager_next_site(p, &s)) > 0)
		rc = site_add(&v, &n, &s, false);
	graph_site_release(&s);
	graph_pager_free(p);

	pthread_mutex_lock(&L.lock);
	if (rc == 0) {
		/* keep the subsites found so far */
		for (i = 0; i < L.nsites && rc == 0; i++) {
			struct graph_site gs = { 0 };

			if (!L.sites[i].sub)
				continue;
			gs.id = L.sites[i].id;
			gs.web_url = L.sites[i].web_url;
			gs.display_name = L.sites[i].name;
			gs.created = L.sites[i].created;
			gs.modified = L.sites[i].modified;
			rc = site_add(&v, &n, &gs, true);
		}
	}
	if (rc == 0) {
		sites_free(L.sites, L.nsites);
		L.sites = v;
		L.nsites = n;
		L.sites_ms = util_mono_ms();
		v = NULL;
		n = 0;
	}
	L.sites_busy = false;
	pthread_cond_broadcast(&L.cv);
	pthread_mutex_unlock(&L.lock);
	sites_free(v, n);
	return rc;
}

/* Subsites of site @id into the index (they carry their own paths). */
static int subsites_add(const char *id)
{
	struct graph_pager *p = NULL;
	struct graph_site s = { 0 };
	int rc;

	rc = graph_subsites_open(L.g, id, &p);
	while (rc == 0 && (rc = graph_pager_next_site(p, &s)) > 0) {
		pthread_mutex_lock(&L.lock);
		rc = site_add(&L.sites, &L.nsites, &s, true);
		pthread_mutex_unlock(&L.lock);
	}
	graph_site_release(&s);
	graph_pager_free(p);
	return rc;
}

/*
 * The directories below site path @path ("" = sites/) from the index:
 * one per next component; the one that is a site carries its metadata
 * (as site_dir() of the snapshot).
 */
static int list_site_paths(const char *path, struct kids *k)
{
	size_t plen = strlen(path), i, j, clen;
	struct lnode *n;
	int depth = 0, rc = 0;
	const char *c;

	for (c = path; *c; c++)
		depth += *c == '/';
	if (plen)
		depth++;
	pthread_mutex_lock(&L.lock);
	for (i = 0; i < L.nsites && rc == 0; i++) {
		const struct lsite *s = &L.sites[i];
		bool site;

		if (plen &&
		    (strncmp(s->path, path, plen) || s->path[plen] != '/'))
			continue;
		c = s->path + plen + (plen ? 1 : 0);
		if (!*c)
			continue;
		clen = strcspn(c, "/");
		site = c[clen] == 0;
		n = NULL;
		for (j = 0; j < k->n; j++)
			if (strlen(k->v[j]->name) == clen &&
			    !strncmp(k->v[j]->name, c, clen))
				n = k->v[j];
		if (n && (!site || n->id))
			continue;
		if (!n) {
			char *name = strndup(c, clen);

			n = name ? node_new(name, depth ? CAT_KIND_SITE_PATH
							: CAT_KIND_SITE_HOST)
				 : NULL;
			free(name);
			rc = kids_add(k, n);
			if (rc < 0)
				break;
		}
		if (site) {
			n->id = strdup(s->id);
			n->mtime = s->modified;
			n->btime = s->created;
			meta_add(n, CAT_META_GRAPH_ID, s->id);
			meta_add(n, CAT_META_WEB_URL, s->web_url);
			meta_add(n, "name", s->name);
			meta_time(n, "createdDateTime", s->created);
			if (!n->id)
				rc = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&L.lock);
	return rc;
}

static int list_site_dir(const struct dinfo *d, struct kids *k)
{
	struct graph_pager *p = NULL;
	struct graph_drive dr = { 0 };
	struct buf name = BUF_INIT;
	int rc = 0;

	rc = sites_refresh();
	if (rc < 0)
		return rc;
	if (d->id) {
		/* a site: its libraries, then what lies below its path */
		rc = graph_drives_open(L.g, GRAPH_OWNER_SITE, d->id, &p);
		while (rc == 0 && (rc = graph_pager_next_drive(p, &dr)) > 0) {
			rc = map(dr.name ? dr.name : dr.id, &name);
			if (rc == 0)
				rc = kids_add(k, drive_node(&dr, name.data,
							    CAT_KIND_DRIVE));
		}
		graph_drive_release(&dr);
		graph_pager_free(p);
		buf_release(&name);
		if (rc == 0)
			rc = subsites_add(d->id);
		if (rc < 0)
			return rc;
	}
	return list_site_paths(d->path.data ? d->path.data : "", k);
}

/* Fetch the children of directory @d from Graph. */
static int fetch_kids(struct dinfo *d, struct kids *k)
{
	int rc;

	switch (d->kind) {
	case CAT_KIND_TOP:
		if (d->idx == N_SITES)
			return list_site_dir(d, k);
		return list_users(d->idx == N_MAILBOXES, k);
	case CAT_KIND_SITE_HOST:
	case CAT_KIND_SITE_PATH:
		return list_site_dir(d, k);
	case CAT_KIND_DRIVE:
	case CAT_KIND_ONEDRIVE:
	case CAT_KIND_FOLDER:
		return list_children(d, k);
	case CAT_KIND_MAILBOX:
		return list_mail_folders(d->user, NULL, k);
	case CAT_KIND_MAIL_FOLDER:
		rc = list_messages(d, k);
		if (rc == 0 && d->folders)
			rc = list_mail_folders(d->user, d->id, k);
		return rc;
	}
	return -ENOTDIR;
}

/* ---- listing: merging into the tree ------------------------------------- */

static bool is_dir_kind(int kind)
{
	return cat_kind_is_dir(kind);
}

/* Identity of a child across listings: kind and Graph id (else name). */
static int same_child(const struct lnode *a, const struct lnode *b)
{
	bool path_a =
		a->kind == CAT_KIND_SITE_HOST || a->kind == CAT_KIND_SITE_PATH;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (path_a || !a->id || !b->id)
		return strcmp(a->name, b->name);
	return strcmp(a->id, b->id);
}

static int cmp_old(const void *x, const void *y)
{
	return same_child(L.nodes[*(const uint32_t *)x],
			  L.nodes[*(const uint32_t *)y]);
}

static int cmp_name(const void *x, const void *y)
{
	return strcmp(L.nodes[*(const uint32_t *)x]->name,
		      L.nodes[*(const uint32_t *)y]->name);
}

/* Move the fields of @from (a fresh listing) into @to (lock held). */
static void node_update(struct lnode *to, struct lnode *from)
{
	node_fields_free(to);
	to->name = from->name;
	to->mapped = from->mapped;
	to->id = from->id;
	to->drive = from->drive;
	to->user = from->user;
	to->tag = from->tag;
	to->url = from->url;
	to->meta = from->meta;
	to->size = from->size;
	to->mtime = from->mtime;
	to->mtime_ns = from->mtime_ns;
	to->btime = from->btime;
	to->child_count = from->child_count;
	to->gone = false;
	from->name = from->mapped = from->id = from->drive = from->user =
		from->tag = from->url = NULL;
	buf_init(&from->meta, 0);
}

/* Names unique in the listing: later ones get " [hash]" (names.h). */
static uint32_t *uniq_v;

static int cmp_pos(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	int c = strcmp(L.nodes[uniq_v[a]]->name, L.nodes[uniq_v[b]]->name);

	return c ? c : a < b ? -1 : a > b;
}

static void uniquify(uint32_t *v, size_t n)
{
	size_t *pos = n > 1 ? malloc(n * sizeof(*pos)) : NULL;
	struct buf b = BUF_INIT;
	size_t i;

	if (!pos)
		return;
	for (i = 0; i < n; i++)
		pos[i] = i;
	uniq_v = v; /* the lock is held: one merge at a time */
	qsort(pos, n, sizeof(*pos), cmp_pos);
	for (i = n; i-- > 1;) {
		struct lnode *c = L.nodes[v[pos[i]]];

		if (strcmp(c->name, L.nodes[v[pos[i - 1]]]->name))
			continue;
		buf_reset(&b);
		buf_adds(&b, c->name);
		if (names_uniquify(&b, c->id ? c->id : c->name) == 0 &&
		    b.data) {
			if (c->mapped)
				free(c->name);
			else
				c->mapped = c->name;
			c->name = buf_detach(&b, NULL);
		}
	}
	uniq_v = NULL;
	buf_release(&b);
	free(pos);
}

/* Merge fresh children @k into directory @d (lock held). */
static int merge(struct lnode *d, uint32_t idx, struct kids *k)
{
	uint32_t *old = NULL, *kids = NULL, *byname = NULL;
	size_t nold = d->nkids, i;
	int rc = 0;

	if (nold) {
		old = malloc(nold * sizeof(*old));
		if (!old)
			return -ENOMEM;
		memcpy(old, d->kids, nold * sizeof(*old));
		qsort(old, nold, sizeof(*old), cmp_old);
	}
	kids = malloc((k->n ? k->n : 1) * sizeof(*kids));
	byname = malloc((k->n ? k->n : 1) * sizeof(*byname));
	if (!kids || !byname) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nold; i++)
		L.nodes[old[i]]->gone = true;
	for (i = 0; i < k->n; i++) {
		struct lnode *c = k->v[i];
		uint32_t *hit = NULL;
		size_t lo = 0, hi = nold;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int cmp = same_child(c, L.nodes[old[mid]]);

			if (!cmp) {
				hit = &old[mid];
				break;
			}
			if (cmp < 0)
				hi = mid;
			else
				lo = mid + 1;
		}
		if (hit && L.nodes[*hit]->gone) {
			node_update(L.nodes[*hit], c);
			kids[i] = *hit;
			continue;
		}
		rc = node_add(c, idx);
		if (rc < 0)
			break;
		kids[i] = (uint32_t)(L.n - 1);
		k->v[i] = NULL; /* now in the table */
	}
	if (rc < 0) {
		for (i = 0; i < nold; i++)
			L.nodes[old[i]]->gone = false;
		goto out;
	}
	uniquify(kids, k->n);
	memcpy(byname, kids, k->n * sizeof(*byname));
	qsort(byname, k->n, sizeof(*byname), cmp_name);
	free(d->kids);
	free(d->byname);
	d->kids = kids;
	d->byname = byname;
	d->nkids = k->n;
	d->gen++;
	kids = byname = NULL;
out:
	free(old);
	free(kids);
	free(byname);
	return rc;
}

/* Site path of node @i below sites/ into @out (lock held). */
static void site_path(uint32_t i, struct buf *out)
{
	const char *parts[SITE_DEPTH + 2];
	int n = 0;

	buf_reset(out);
	while (i != N_SITES && i != N_ROOT && n < SITE_DEPTH + 2) {
		parts[n++] = L.nodes[i]->name;
		i = L.nodes[i]->parent;
	}
	buf_adds(out, "");
	while (n--)
		buf_addf(out, "%s%s", parts[n], n ? "/" : "");
}

/* ---- listing: delta refresh of a drive's folders ---------------------- */

/*
 * When cached listings of a drive expire, one delta call (the drive's
 * saved deltaLink, or at first a time token older than every listing of
 * the drive) tells what changed: the listings it touches get its
 * changes (items added, changed, renamed, deleted, moved in or out),
 * and all are kept for another TTL without a request; a listing is
 * listed again when next used only when the delta does not say where an
 * item went, or when the listing is older than the saved deltaLink.
 * That is done when at least DELTA_MIN_EXPIRED listings of the drive
 * expired (one is as cheap to list again as to ask about).
 */
#define DELTA_MIN_EXPIRED 2
#define DELTA_MARGIN_S	  10 /* the time token: clocks may differ */

static bool is_drive_dir(int kind)
{
	return kind == CAT_KIND_DRIVE || kind == CAT_KIND_ONEDRIVE ||
	       kind == CAT_KIND_FOLDER;
}

/* The state of drive @id, created when missing (lock held); NULL: ENOMEM. */
static struct ldrive *drive_state(const char *id)
{
	struct ldrive *v;
	size_t i;

	for (i = 0; i < L.ndrives; i++)
		if (!strcmp(L.drives[i].id, id))
			return &L.drives[i];
	v = realloc(L.drives, (L.ndrives + 1) * sizeof(*v));
	if (!v)
		return NULL;
	L.drives = v;
	v = &L.drives[L.ndrives];
	memset(v, 0, sizeof(*v));
	v->id = strdup(id);
	if (!v->id)
		return NULL;
	L.ndrives++;
	return v;
}

/*
 * Read a delta round of @drive (@link, else @token, else all of the
 * drive) into @c, at most @max_pages pages (0: no limit; more: -EFBIG);
 * *@next receives its deltaLink.
 */
static int delta_read(const char *drive, const char *link, const char *token,
		      unsigned max_pages, struct dchanges *c, char **next)
{
	struct graph_pager *p = NULL;
	struct graph_item it = { 0 };
	struct dchange *x;
	bool skip;
	int rc;

	/* reading ahead up to the page that tells there are too many */
	rc = link ? graph_drive_delta_open(L.g, drive, link, &p)
		  : graph_drive_delta_top_open(
			    L.g, drive, token,
			    max_pages ? max_pages + 1 : UINT_MAX, &p);
	while (rc == 0 && (rc = graph_pager_next_item(p, &it)) > 0) {
		rc = 0;
		if (max_pages && graph_pager_pages(p) > max_pages) {
			rc = -EFBIG;
			break;
		}
		x = dchange_new(c);
		if (!x) {
			rc = -ENOMEM;
			break;
		}
		x->id = sdup(it.id);
		x->parent = sdup(it.parent_id);
		x->deleted = it.deleted;
		x->root = it.is_root;
		x->n = item_node(&it, drive, &skip);
		if (!x->id || (!skip && !x->n))
			rc = -ENOMEM;
	}
	if (rc == 0) {
		*next = sdup(graph_pager_delta_link(p));
		if (!*next)
			rc = -EBADMSG;
	}
	graph_item_release(&it);
	graph_pager_free(p);
	return rc;
}

/* Graph id of the folder that lists node @n (lock held), or NULL. */
static const char *parent_gid(const struct lnode *n)
{
	const struct lnode *p = L.nodes[n->parent];

	return p->kind == CAT_KIND_FOLDER ? p->id : p->root_id;
}

/* Does fresh node @f show @n otherwise than it is cached? (lock held) */
static bool node_differs(const struct lnode *n, const struct lnode *f)
{
	return n->kind != f->kind || n->size != f->size ||
	       n->mtime != f->mtime || n->mtime_ns != f->mtime_ns ||
	       n->btime != f->btime || n->meta.len != f->meta.len ||
	       memcmp(n->meta.data, f->meta.data, n->meta.len) ||
	       strcmp(n->tag ? n->tag : "", f->tag ? f->tag : "");
}

static int cmp_id(const void *x, const void *y)
{
	return strcmp(L.nodes[*(const uint32_t *)x]->id,
		      L.nodes[*(const uint32_t *)y]->id);
}

/* Nodes of @ix (@n, sorted by id) with Graph id @id: *@first, count. */
static size_t ix_find(const uint32_t *ix, size_t n, const char *id,
		      size_t *first)
{
	size_t lo = 0, hi = n, e;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(L.nodes[ix[mid]]->id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (e = lo; e < n && !strcmp(L.nodes[ix[e]]->id, id); e++)
		;
	*first = lo;
	return e - lo;
}

/* A copy of what a listing shows of @n (not its children), or NULL. */
static struct lnode *node_clone(const struct lnode *n)
{
	struct lnode *c = node_new(n->mapped ? n->mapped : n->name, n->kind);

	if (!c)
		return NULL;
	c->id = sdup(n->id);
	c->drive = sdup(n->drive);
	c->user = sdup(n->user);
	c->tag = sdup(n->tag);
	c->url = sdup(n->url);
	buf_add(&c->meta, n->meta.data, n->meta.len);
	c->size = n->size;
	c->mtime = n->mtime;
	c->mtime_ns = n->mtime_ns;
	c->btime = n->btime;
	c->child_count = n->child_count;
	if ((n->id && !c->id) || (n->drive && !c->drive) ||
	    (n->user && !c->user) || (n->tag && !c->tag) ||
	    (n->url && !c->url) || c->meta.len != n->meta.len) {
		node_free(c);
		return NULL;
	}
	return c;
}

static const struct dchanges *by_id_c; /* lock held: one sort at once */

static int cmp_change_id(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	int c = strcmp(by_id_c->v[a].id, by_id_c->v[b].id);

	return c ? c : a < b ? -1 : a > b;
}

/* The last change of @c for Graph id @id; @ord: its @n ids, sorted. */
static const struct dchange *change_find(const struct dchanges *c,
					 const size_t *ord, size_t n,
					 const char *id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->v[ord[mid]].id, id);

		if (!cmp)
			return &c->v[ord[mid]];
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * The children of directory @d as listing it again would show them,
 * after the changes @c of its drive or mail folder (lock held): its
 * children of kind @kind (0: all) with the changes applied (changed,
 * renamed, deleted, moved elsewhere) and the items whose parent is @gid
 * (NULL: every item of @c) added, copied into @k.  Returns 0, 1 when @c
 * does not say where an item went (list @d instead), or -ENOMEM.
 */
static int patched_kids(const struct lnode *d, const char *gid,
			const struct dchanges *c, int kind, struct kids *k)
{
	size_t *ord = malloc((c->n ? c->n : 1) * sizeof(*ord));
	uint32_t *ids = malloc((d->nkids ? d->nkids : 1) * sizeof(*ids));
	size_t n = 0, nids = 0, i, j, f;
	int rc = 0;

	if (!ord || !ids) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < c->n; i++)
		if (c->v[i].id)
			ord[n++] = i;
	by_id_c = c;
	qsort(ord, n, sizeof(*ord), cmp_change_id);
	by_id_c = NULL;
	for (i = j = 0; i < n; i++) /* the last change of each item wins */
		if (i + 1 == n || strcmp(c->v[ord[i]].id, c->v[ord[i + 1]].id))
			ord[j++] = ord[i];
	n = j;
	for (i = 0; i < d->nkids && rc == 0; i++) {
		const struct lnode *o = L.nodes[d->kids[i]];
		const struct dchange *x;

		if (kind && o->kind != kind)
			continue;
		x = o->id ? change_find(c, ord, n, o->id) : NULL;
		if (o->id)
			ids[nids++] = d->kids[i];
		if (!x)
			rc = kids_add(k, node_clone(o));
		else if (x->deleted || !x->n)
			; /* deleted */
		else if (gid && !x->parent)
			rc = 1;
		else if (!gid || !strcmp(x->parent, gid))
			rc = kids_add(k, node_clone(x->n)); /* changed */
		/* else moved elsewhere */
	}
	qsort(ids, nids, sizeof(*ids), cmp_id);
	for (i = 0; i < n && rc == 0; i++) {
		const struct dchange *x = &c->v[ord[i]];

		if (x->deleted || !x->n || x->root ||
		    (gid && (!x->parent || strcmp(x->parent, gid))) ||
		    ix_find(ids, nids, x->id, &f))
			continue;
		rc = kids_add(k, node_clone(x->n)); /* added or moved in */
	}
out:
	free(ord);
	free(ids);
	return rc;
}

/* Mark the directories of the drive that list folder @gid (lock held). */
static void mark_folder(const uint32_t *ix, size_t n, const uint32_t *tops,
			size_t ntops, const char *gid, unsigned char *mark)
{
	size_t i, f, k;

	if (!gid)
		return;
	for (k = ix_find(ix, n, gid, &f), i = f; i < f + k; i++)
		if (L.nodes[ix[i]]->kind == CAT_KIND_FOLDER)
			mark[ix[i]] = 1;
	for (i = 0; i < ntops; i++)
		if (!L.nodes[tops[i]]->root_id ||
		    !strcmp(L.nodes[tops[i]]->root_id, gid))
			mark[tops[i]] = 1;
}

/*
 * Mark (@mark[i] = 1) the directories of drive @drive whose listing
 * changes @c touch (lock held).  -ENOMEM.
 */
static int delta_mark(const char *drive, const struct dchanges *c,
		      unsigned char *mark)
{
	uint32_t *ix = malloc((L.n ? L.n : 1) * sizeof(*ix)), *tops;
	size_t n = 0, ntops = 0, i, j, f, k;

	if (!ix)
		return -ENOMEM;
	tops = malloc((L.n ? L.n : 1) * sizeof(*tops));
	if (!tops) {
		free(ix);
		return -ENOMEM;
	}
	for (i = 0; i < L.n; i++) {
		const struct lnode *d = L.nodes[i];

		if (d->gone || !d->drive || !d->id || strcmp(d->drive, drive))
			continue;
		if (d->kind == CAT_KIND_FILE || d->kind == CAT_KIND_FOLDER)
			ix[n++] = (uint32_t)i;
		else if (is_drive_dir(d->kind))
			tops[ntops++] = (uint32_t)i;
	}
	qsort(ix, n, sizeof(*ix), cmp_id);
	for (j = 0; j < c->n; j++) {
		const struct dchange *x = &c->v[j];
		bool moved = false;

		if (x->root) {
			for (i = 0; i < ntops; i++)
				if (!L.nodes[tops[i]]->root_id)
					L.nodes[tops[i]]->root_id =
						strdup(x->id);
			continue;
		}
		k = ix_find(ix, n, x->id, &f);
		for (i = f; i < f + k; i++) {
			const struct lnode *d = L.nodes[ix[i]];
			const char *pg = parent_gid(d);

			if (!pg || !x->parent || strcmp(pg, x->parent))
				moved = true;
			if (x->deleted || !x->n || moved ||
			    node_differs(d, x->n))
				mark[d->parent] = 1;
		}
		if (!x->deleted && x->n && (!k || moved))
			mark_folder(ix, n, tops, ntops, x->parent, mark);
	}
	free(ix);
	free(tops);
	return 0;
}

/*
 * Apply the changes @c of its drive to the listing of folder @d (node
 * @idx, lock held).  Returns 0, else nonzero: list it again.
 */
static int delta_patch(struct lnode *d, uint32_t idx, const struct dchanges *c)
{
	const char *gid = d->kind == CAT_KIND_FOLDER ? d->id : d->root_id;
	struct kids k = { 0 };
	int rc = gid ? patched_kids(d, gid, c, 0, &k) : 1;

	if (rc == 0)
		rc = merge(d, idx, &k);
	kids_release(&k);
	return rc;
}

/*
 * The end of a refresh or an enumeration of drive @dr (L.lock held, given
 * up here): wake the threads that waited for it.  Returns 1 when it
 * succeeded (@rc 0), else 0.
 */
static int drive_done(struct ldrive *dr, struct dchanges *c, int rc)
{
	if (dr)
		dr->busy = false;
	pthread_cond_broadcast(&L.cv);
	pthread_mutex_unlock(&L.lock);
	dchanges_release(c);
	return rc == 0 ? 1 : 0;
}

/*
 * Folders of drive @drive that moved, as the delta round @c of @t0 told
 * (lock held): the node at the new place (one of those from node @from
 * on, never listed) takes over the listing of the node at the old place
 * (gone now) when that listing is covered by @c (as of @since_ms or
 * later), with @c applied to it.
 */
static void moved_listings(const char *drive, size_t from,
			   const struct dchanges *c, int64_t t0,
			   int64_t since_ms)
{
	size_t i, j, k;

	for (i = from; i < L.n; i++) {
		struct lnode *to = L.nodes[i];

		if (to->gone || to->kind != CAT_KIND_FOLDER || to->listed_ms ||
		    !to->id)
			continue;
		for (j = 0; j < from; j++) {
			struct lnode *o = L.nodes[j];

			if (!o->gone || o->kind != CAT_KIND_FOLDER ||
			    o->listed_ms < since_ms || o->listing || !o->id ||
			    strcmp(o->id, to->id) || !o->drive ||
			    strcmp(o->drive, drive))
				continue;
			to->kids = o->kids;
			to->byname = o->byname;
			to->nkids = o->nkids;
			to->gen++;
			o->kids = o->byname = NULL;
			o->nkids = 0;
			o->listed_ms = 0;
			for (k = 0; k < to->nkids; k++)
				L.nodes[to->kids[k]]->parent = (uint32_t)i;
			to->listed_ms =
				delta_patch(to, (uint32_t)i, c) ? 0 : t0;
			break;
		}
	}
}

/*
 * Cached listings of drive @drive expired: renew them with one delta
 * call when that is cheaper (see above).  Returns 1: done (or done by
 * another thread meanwhile: look again), 0: not done (list the folder).
 */
static int drive_refresh(const char *drive)
{
	struct dchanges c = { 0 };
	struct ldrive *dr;
	unsigned char *mark = NULL;
	char *link = NULL, *next = NULL;
	int64_t now = util_mono_ms(), ttl = (int64_t)(L.ttl * 1000);
	int64_t oldest = now, link_ms = 0, t0;
	size_t expired = 0, i;
	unsigned attempt = 0;
	char since[32];
	int rc;

	pthread_mutex_lock(&L.lock);
	dr = drive_state(drive);
	if (!dr || dr->no_delta) {
		pthread_mutex_unlock(&L.lock);
		return 0;
	}
	if (dr->busy) {
		while (dr->busy) {
			pthread_cond_wait(&L.cv, &L.lock);
			dr = drive_state(drive);
			if (!dr)
				break;
		}
		pthread_mutex_unlock(&L.lock);
		return 1;
	}
	for (i = 0; i < L.n; i++) {
		const struct lnode *d = L.nodes[i];

		if (d->gone || !d->listed_ms || !is_drive_dir(d->kind) ||
		    !d->drive || strcmp(d->drive, drive))
			continue;
		if (d->listed_ms < oldest)
			oldest = d->listed_ms;
		if (now - d->listed_ms >= ttl && !d->listing)
			expired++;
	}
	if (expired < DELTA_MIN_EXPIRED) {
		pthread_mutex_unlock(&L.lock);
		return 0;
	}
	dr->busy = true;
	link = sdup(dr->link);
	link_ms = dr->link_ms;
	pthread_mutex_unlock(&L.lock);

	util_time_format(util_now() - (now - oldest) / 1000 - DELTA_MARGIN_S,
			 since, sizeof(since));
	t0 = util_mono_ms();
	do {
		dchanges_release(&c);
		free(next);
		next = NULL;
		rc = delta_read(drive, link, since, 0, &c, &next);
	} while (rc < 0 && wait_again(rc, t0, &attempt));

	pthread_mutex_lock(&L.lock);
	dr = drive_state(drive);
	if (rc == 0 && dr) {
		mark = calloc(L.n ? L.n : 1, 1);
		rc = mark ? delta_mark(drive, &c, mark) : -ENOMEM;
	}
	if (rc == 0 && dr) {
		size_t changed = 0, patched = 0, kept = 0, n = L.n;

		for (i = 0; i < n; i++) {
			struct lnode *d = L.nodes[i];

			if (d->gone || !d->listed_ms || d->listing ||
			    !is_drive_dir(d->kind) || !d->drive ||
			    strcmp(d->drive, drive) || d->listed_ms > t0)
				continue; /* (listed after the delta: newer) */
			/* listed before the saved link: not covered by it */
			if (link && d->listed_ms < link_ms) {
				d->listed_ms = 0;
				changed++;
			} else if (mark[i] && delta_patch(d, (uint32_t)i, &c)) {
				d->listed_ms = 0;
				changed++;
			} else {
				d->listed_ms = t0;
				*(mark[i] ? &patched : &kept) += 1;
			}
		}
		moved_listings(drive, n, &c, t0, link ? link_ms : oldest);
		free(dr->link);
		dr->link = next;
		dr->link_ms = t0;
		next = NULL;
		log_debug("live: drive %s: %zu changes, %zu folders kept, "
			  "%zu patched, %zu to list again",
			  drive, c.n, kept, patched, changed);
	} else if (dr) {
		if (rc == -ESTALE) {
			free(dr->link); /* expired: a time token next time */
			dr->link = NULL;
		} else if (!transient(rc) && rc != -ENOMEM) {
			log_info("live: drive %s cannot tell its changes (%s): "
				 "its folders are listed one by one",
				 drive, strerror(-rc));
			dr->no_delta = true;
		}
	}
	free(mark);
	free(link);
	free(next);
	return drive_done(dr, &c, rc);
}

/* ---- listing: a recursive walk enumerates the drive --------------------- */

/*
 * A walk that lists WALK_DESCENTS folders of a drive right after their
 * parent (within WALK_MS) looks recursive (find, ls -R, du, diff -r): the
 * rest of the drive is then read through one delta enumeration, 999 items
 * a page, instead of a listing per folder.  Once per drive and mount; a
 * drive of more than ENUM_MAX_PAGES pages is left to folder listings (the
 * enumeration stops there).
 */
#define WALK_DESCENTS  3
#define WALK_MS	       5000
#define ENUM_MAX_PAGES 8

static const struct dchanges *by_parent_c; /* lock held: one sort at once */

static int cmp_parent(const void *x, const void *y)
{
	const struct dchange *a = &by_parent_c->v[*(const size_t *)x];
	const struct dchange *b = &by_parent_c->v[*(const size_t *)y];
	int c = strcmp(a->parent ? a->parent : "", b->parent ? b->parent : "");

	if (c)
		return c;
	return a < b ? -1 : a > b; /* stable: the server's order */
}

static int queue_push(uint32_t **q, size_t *n, size_t *cap, uint32_t v)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		uint32_t *nq = realloc(*q, nc * sizeof(*nq));

		if (!nq)
			return -ENOMEM;
		*q = nq;
		*cap = nc;
	}
	(*q)[(*n)++] = v;
	return 0;
}

/*
 * Fill the listings of drive @drive from its enumeration @c, from its top
 * directories down (lock held): every directory reached is listed as of
 * @t0.  -ENOMEM.
 */
static int enum_apply(const char *drive, struct dchanges *c, int64_t t0)
{
	size_t *ord = malloc((c->n ? c->n : 1) * sizeof(*ord));
	uint32_t *queue = NULL;
	size_t nq = 0, qcap = 0, qi, i, j;
	const char *root = NULL;
	int rc = 0;

	if (!ord)
		return -ENOMEM;
	for (i = 0; i < c->n; i++) {
		ord[i] = i;
		if (c->v[i].root && !root)
			root = c->v[i].id;
	}
	by_parent_c = c;
	qsort(ord, c->n, sizeof(*ord), cmp_parent);
	by_parent_c = NULL;
	for (i = 0; i < L.n && rc == 0; i++) {
		struct lnode *d = L.nodes[i];

		if (d->gone || !is_drive_dir(d->kind) ||
		    d->kind == CAT_KIND_FOLDER || !d->drive ||
		    strcmp(d->drive, drive))
			continue;
		if (!d->root_id && root)
			d->root_id = strdup(root);
		rc = queue_push(&queue, &nq, &qcap, (uint32_t)i);
	}
	for (qi = 0; qi < nq && rc == 0; qi++) {
		struct lnode *d = L.nodes[queue[qi]];
		const char *gid =
			d->kind == CAT_KIND_FOLDER ? d->id : d->root_id;
		struct kids k = { 0 };
		size_t lo = 0, hi = c->n;

		if (!gid || d->listing || d->gone)
			continue;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			const char *p = c->v[ord[mid]].parent;

			if (strcmp(p ? p : "", gid) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (j = lo; j < c->n && rc == 0; j++) {
			struct dchange *x = &c->v[ord[j]];

			if (!x->parent || strcmp(x->parent, gid))
				break;
			if (x->deleted || !x->n)
				continue;
			rc = kids_add(&k, x->n);
			x->n = NULL;
		}
		if (rc == 0)
			rc = merge(d, queue[qi], &k);
		kids_release(&k);
		if (rc < 0)
			break;
		d->listed_ms = t0;
		for (j = 0; j < d->nkids && rc == 0; j++)
			if (L.nodes[d->kids[j]]->kind == CAT_KIND_FOLDER)
				rc = queue_push(&queue, &nq, &qcap, d->kids[j]);
	}
	free(queue);
	free(ord);
	return rc;
}

/*
 * Directory @idx of a drive is about to be listed: when the walk looks
 * recursive, enumerate the drive instead.  Returns 1: done (look again),
 * 0: list the folder.
 */
static int drive_walk(uint32_t idx)
{
	struct dchanges c = { 0 };
	struct ldrive *dr;
	const struct lnode *d, *p;
	char *drive, *next = NULL;
	int64_t t0 = util_mono_ms();
	unsigned attempt = 0;
	int rc;

	pthread_mutex_lock(&L.lock);
	d = L.nodes[idx];
	p = L.nodes[d->parent];
	drive = sdup(d->drive);
	dr = drive ? drive_state(drive) : NULL;
	if (!dr || dr->enumerated || dr->busy || d->kind != CAT_KIND_FOLDER ||
	    !is_drive_dir(p->kind) || !p->drive || strcmp(p->drive, drive) ||
	    !p->listed_ms || t0 - p->listed_ms > WALK_MS ||
	    ++dr->descents < WALK_DESCENTS) {
		pthread_mutex_unlock(&L.lock);
		free(drive);
		return 0;
	}
	dr->busy = true;
	dr->enumerated = true;
	pthread_mutex_unlock(&L.lock);

	do {
		dchanges_release(&c);
		free(next);
		next = NULL;
		rc = delta_read(drive, NULL, NULL, ENUM_MAX_PAGES, &c, &next);
	} while (rc < 0 && wait_again(rc, t0, &attempt));

	pthread_mutex_lock(&L.lock);
	dr = drive_state(drive);
	if (rc == 0)
		rc = enum_apply(drive, &c, t0);
	if (rc == 0 && dr) {
		free(dr->link);
		dr->link = next;
		dr->link_ms = t0;
		next = NULL;
		log_debug("live: drive %s enumerated: %zu items", drive, c.n);
	} else if (rc == -EFBIG) {
		log_debug("live: drive %s: more than %d pages, listed folder "
			  "by folder",
			  drive, ENUM_MAX_PAGES);
	}
	free(next);
	free(drive);
	return drive_done(dr, &c, rc);
}

/*
 * Mail folder @d was asked for its changes @c, its subfolders listed
 * into @k: add its messages with the changes applied to @k (lock held).
 */
static int patch_messages(const struct lnode *d, const struct dchanges *c,
			  struct kids *k)
{
	struct kids all = { 0 };
	size_t i;
	int rc = patched_kids(d, NULL, c, CAT_KIND_MESSAGE, &all);

	for (i = 0; rc == 0 && i < k->n; i++) {
		rc = kids_add(&all, k->v[i]);
		k->v[i] = NULL;
	}
	kids_release(k);
	*k = all;
	return rc;
}

/*
 * Mail folder @d's subfolders as they are listed now, copied into @k
 * (lock held): kept SITES_TTL times the TTL, like the folders of the
 * mailbox, while its messages are renewed every TTL.  0 or -ENOMEM.
 */
static int kept_subfolders(const struct lnode *d, struct kids *k)
{
	size_t i;
	int rc = 0;

	for (i = 0; rc == 0 && i < d->nkids; i++)
		if (L.nodes[d->kids[i]]->kind == CAT_KIND_MAIL_FOLDER)
			rc = kids_add(k, node_clone(L.nodes[d->kids[i]]));
	return rc;
}

/*
 * Make sure directory node @idx has a listing younger than the TTL
 * (listing it in Graph when not; other threads wait for that listing).
 * Returns 0 or -errno.
 */
static int ensure_listed(uint32_t idx)
{
	struct dinfo di = { 0 };
	struct kids k = { 0 };
	struct lnode *d;
	int64_t t0;
	unsigned attempt = 0;
	bool asked = false, expired;
	int rc = 0;

	buf_init(&di.path, 0);
	pthread_mutex_lock(&L.lock);
	for (;;) {
		d = L.nodes[idx];
		if (d->gone) {
			rc = -ENOENT;
			goto unlock;
		}
		if (!is_dir_kind(d->kind) && d->kind != CAT_KIND_TOP) {
			rc = -ENOTDIR;
			goto unlock;
		}
		if (idx == N_ROOT ||
		    (d->listed_ms &&
		     util_mono_ms() - d->listed_ms < ttl_ms(idx)))
			goto unlock;
		if (d->listing) {
			pthread_cond_wait(&L.cv, &L.lock);
			continue;
		}
		if (asked || !is_drive_dir(d->kind) || !d->drive || !L.g)
			break;
		asked = true;
		expired = d->listed_ms != 0;
		di.drive = sdup(d->drive);
		pthread_mutex_unlock(&L.lock);
		if (!di.drive)
			; /* list it */
		else if (expired)
			drive_refresh(di.drive); /* changed? */
		else
			drive_walk(idx); /* a recursive walk? */
		free(di.drive);
		di.drive = NULL;
		pthread_mutex_lock(&L.lock);
	}
	d->listing = true;
	di.idx = idx;
	di.kind = d->kind;
	di.id = sdup(d->id);
	di.drive = sdup(d->drive);
	di.user = sdup(d->user);
	di.child_count = d->child_count;
	di.link = d->listed_ms ? sdup(d->link) : NULL;
	if (d->kind == CAT_KIND_MAIL_FOLDER)
		di.folders = d->child_count > 0 &&
			     (!d->folders_ms ||
			      util_mono_ms() - d->folders_ms >= SITES_TTL_MS);
	if (d->kind == CAT_KIND_SITE_HOST || d->kind == CAT_KIND_SITE_PATH)
		site_path(idx, &di.path);
	pthread_mutex_unlock(&L.lock);

	t0 = util_mono_ms();
	if (!L.g) {
		rc = -EIO;
	} else {
		for (;;) {
			kids_release(&k);
			dchanges_release(&di.changes);
			rc = fetch_kids(&di, &k);
			if (rc == -ESTALE && di.link) {
				/* the deltaLink expired: list them all */
				free(di.link);
				di.link = NULL;
				continue;
			}
			if (rc >= 0 || !wait_again(rc, t0, &attempt))
				break;
		}
	}
	if (rc > 0)
		rc = 0;

	pthread_mutex_lock(&L.lock);
	d = L.nodes[idx];
	if (rc == 0 && d->kind == CAT_KIND_MAIL_FOLDER && !di.folders &&
	    di.child_count > 0)
		rc = kept_subfolders(d, &k);
	if (rc == 0 && di.patch)
		rc = patch_messages(d, &di.changes, &k);
	if (rc == 0)
		rc = merge(d, idx, &k);
	if (rc == 0 && d->kind == CAT_KIND_MAIL_FOLDER) {
		free(d->link);
		d->link = di.next;
		di.next = NULL;
	}
	if (rc == 0 && di.root_id && !d->root_id) {
		d->root_id = di.root_id;
		di.root_id = NULL;
	}
	if (rc == 0 && di.folders)
		d->folders_ms = t0;
	if (rc == 0)
		d->listed_ms = t0; /* as of when it was asked for */
	else if (rc == -ENOENT)
		d->gone = true; /* the folder went away */
	d->listing = false;
	pthread_cond_broadcast(&L.cv);
unlock:
	pthread_mutex_unlock(&L.lock);
	kids_release(&k);
	dinfo_release(&di);
	return rc;
}

/* ---- attributes --------------------------------------------------------- */

static void node_attr(const struct lnode *n, struct stat *st)
{
	bool dir = n->kind == CAT_KIND_TOP || is_dir_kind(n->kind) ||
		   n->ino == INO_LIVE;

	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = dir ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_uid = L.fs->uid;
	st->st_gid = L.fs->gid;
	st->st_blksize = BLKSIZE;
	if (!dir) {
		st->st_size = n->size;
		st->st_blocks = (n->size + 511) / 512;
	}
	st->st_mtim.tv_sec = n->ino == INO_LIVE ? L.fs->mount_time : n->mtime;
	st->st_mtim.tv_nsec = n->mtime_ns;
	st->st_atim = st->st_ctim = st->st_mtim;
}

/*
 * Attributes of live node @ino, its parent's listing refreshed when
 * older than the TTL.  Returns 0, -ENOENT or -errno.
 */
static int live_getattr(uint64_t ino, struct stat *st)
{
	struct lnode *n;
	uint32_t parent = 0;
	bool top;
	int rc;

	pthread_mutex_lock(&L.lock);
	n = node_get(ino);
	top = n && (n->ino == INO_LIVE || n->kind == CAT_KIND_TOP);
	if (n)
		parent = n->parent;
	pthread_mutex_unlock(&L.lock);
	if (!n)
		return -ENOENT;
	if (!top) {
		rc = ensure_listed(parent);
		if (rc < 0)
			return rc;
	}
	pthread_mutex_lock(&L.lock);
	n = node_get(ino);
	if (n)
		node_attr(n, st);
	pthread_mutex_unlock(&L.lock);
	return n ? 0 : -ENOENT;
}

/* ---- operations --------------------------------------------------------- */

static void reply_entry(fuse_req_t req, const struct stat *st)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (st) {
		e.ino = st->st_ino;
		e.attr = *st;
		e.attr_timeout = L.ttl;
	}
	e.entry_timeout = L.ttl; /* a miss is cached as long */
	fuse_reply_entry(req, &e);
}

static void lop_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	L.base->init(userdata, conn);
	/* live/ files need open (keep_cache, direct_io) and opendir */
	conn->want &= ~(unsigned)(FUSE_CAP_NO_OPEN_SUPPORT |
				  FUSE_CAP_NO_OPENDIR_SUPPORT);
	fs->no_open = false;
	fs->no_opendir = false;
}

static void lop_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct lnode *d, *c = NULL;
	struct stat st;
	uint32_t idx = 0, key;
	int rc;

	if (parent == INO_ROOT && !strcmp(name, "live")) {
		pthread_mutex_lock(&L.lock);
		node_attr(L.nodes[N_ROOT], &st);
		pthread_mutex_unlock(&L.lock);
		reply_entry(req, &st);
		return;
	}
	if (!is_live(parent)) {
		L.base->lookup(req, parent, name);
		return;
	}
	pthread_mutex_lock(&L.lock);
	d = node_get(parent);
	if (d)
		idx = parent == INO_LIVE ? N_ROOT : (uint32_t)ino_item(parent);
	pthread_mutex_unlock(&L.lock);
	if (!d) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	rc = ensure_listed(idx);
	if (rc < 0) {
		fuse_reply_err(req, fuse_errno(rc));
		return;
	}
	pthread_mutex_lock(&L.lock);
	d = L.nodes[idx];
	{
		size_t lo = 0, hi = d->nkids;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int cmp;

			key = d->byname[mid];
			cmp = strcmp(name, L.nodes[key]->name);
			if (!cmp) {
				c = L.nodes[key];
				break;
			}
			if (cmp < 0)
				hi = mid;
			else
				lo = mid + 1;
		}
	}
	if (c)
		node_attr(c, &st);
	pthread_mutex_unlock(&L.lock);
	reply_entry(req, c ? &st : NULL);
}

static void lop_getattr(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct stat st;
	int rc;

	if (!is_live(ino)) {
		L.base->getattr(req, ino, fi);
		return;
	}
	rc = live_getattr(ino, &st);
	if (rc < 0)
		fuse_reply_err(req, fuse_errno(rc));
	else
		fuse_reply_attr(req, &st, L.ttl);
}

/* The file or message of @ino, or NULL with *@err (lock held). */
static struct lnode *file_node(uint64_t ino, int *err)
{
	struct lnode *n = node_get(ino);

	if (!n)
		*err = ENOENT;
	else if (n->kind != CAT_KIND_FILE && n->kind != CAT_KIND_MESSAGE)
		*err = EISDIR;
	else
		return n;
	return NULL;
}

static void lop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct lnode *n;
	int err = 0;

	if (!is_live(ino)) {
		L.base->open(req, ino, fi);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_APPEND))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	pthread_mutex_lock(&L.lock);
	n = file_node(ino, &err);
	if (!n) {
		/* err set */
	} else if (n->kind == CAT_KIND_MESSAGE) {
		/* the size is not known before the MIME is read */
		fi->direct_io = 1;
	} else {
		/* pages stay valid while the content is the same */
		fi->keep_cache =
			n->open_tag && n->tag && !strcmp(n->open_tag, n->tag);
		if (!fi->keep_cache && n->tag) {
			free(n->open_tag);
			n->open_tag = strdup(n->tag);
		}
	}
	pthread_mutex_unlock(&L.lock);
	fi->fh = 0;
	fi->noflush = 1; /* read-only: close() has nothing to report */
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_open(req, fi);
}

/* What a read needs of its node (copied out of the lock). */
struct rctx {
	uint64_t ino;
	int kind;
	char *drive, *id, *user, *url;
};

struct sink_ctx {
	int fd;
	uint64_t start, pos;
	uint64_t off; /* first byte of the whole fetch */
	struct live_progress *pr;
};

static int sink_write(void *ctx, const void *data, size_t len)
{
	struct sink_ctx *s = ctx;
	const char *p = data;
	ssize_t w;

	while (len) {
		w = pwrite(s->fd, p, len, (off_t)s->pos);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
		s->pos += (uint64_t)w;
	}
	return live_progress(s->pr, s->pos - s->off);
}

static int sink_reset(void *ctx)
{
	struct sink_ctx *s = ctx;

	s->pos = s->start;
	return 0;
}

/* A new download URL for the file of @r (the old one expired). */
static int refresh_url(struct rctx *r)
{
	struct graph_item it = { 0 };
	struct lnode *n;
	int rc;

	rc = graph_item_get(L.g, r->drive, r->id, &it);
	if (rc == 0) {
		free(r->url);
		r->url = sdup(it.download_url);
		pthread_mutex_lock(&L.lock);
		n = node_get(r->ino);
		if (n && n->url && r->url) {
			free(n->url);
			n->url = strdup(r->url);
		}
		pthread_mutex_unlock(&L.lock);
	}
	graph_item_release(&it);
	return rc;
}

static void *rctx_dup(const void *ctx)
{
	const struct rctx *r = ctx;
	struct rctx *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->ino = r->ino;
	d->kind = r->kind;
	d->drive = sdup(r->drive);
	d->id = sdup(r->id);
	d->user = sdup(r->user);
	d->url = sdup(r->url);
	return d;
}

static void rctx_release(struct rctx *r)
{
	free(r->drive);
	free(r->id);
	free(r->user);
	free(r->url);
}

static void rctx_free(void *ctx)
{
	rctx_release(ctx);
	free(ctx);
}

static int fetch(void *ctx, int fd, uint64_t off, uint64_t len, uint64_t *got,
		 struct live_progress *pr)
{
	struct rctx *r = ctx;
	struct sink_ctx s = { fd, off, off, off, pr };
	/* a ranged fetch that breaks is not replayed from its start by the
	 * http client (no reset): it goes on from where it broke below */
	struct http_sink sink = { sink_write, len ? NULL : sink_reset, &s };
	int64_t t0 = util_mono_ms();
	unsigned attempt = 0, short_reads = 0, resumed = 0;
	bool refreshed = false;
	uint64_t cur = off;
	int rc;

	for (;;) {
		s.start = s.pos = cur;
		if (r->kind == CAT_KIND_MESSAGE)
			rc = graph_message_mime(L.g, r->user, r->id, &sink,
						NULL);
		else
			rc = graph_item_download(L.g, r->drive, r->id, r->url,
						 cur, off + len - cur, &sink,
						 NULL);
		if (rc == -EACCES && r->url && !refreshed) {
			/* the pre-authenticated URL expired */
			refreshed = true;
			rc = refresh_url(r);
			if (rc == 0)
				continue;
		}
		if (rc == 0 && len && s.pos < off + len && s.pos > cur &&
		    ++short_reads < 8) {
			/* a short body: ask for the rest */
			log_debug("live: %llu bytes short, asking again",
				  (unsigned long long)(off + len - s.pos));
			cur = s.pos;
			continue;
		}
		if (transient(rc) && len && s.pos > cur && ++resumed < 16) {
			/* the connection broke after some bytes: the rest */
			log_debug("live: a download broke at %llu, going on",
				  (unsigned long long)s.pos);
			cur = s.pos;
			continue;
		}
		if (rc == 0 || !wait_again(rc, t0, &attempt))
			break;
	}
	*got = s.pos - off;
	return rc;
}

static void lop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct rctx r = { .ino = ino };
	struct buf key = BUF_INIT;
	struct lnode *n;
	uint64_t fsize = 0;
	char *p = NULL;
	ssize_t got;
	int err = 0;

	if (!is_live(ino)) {
		L.base->read(req, ino, size, off, fi);
		return;
	}
	pthread_mutex_lock(&L.lock);
	n = file_node(ino, &err);
	if (n) {
		r.kind = n->kind;
		r.drive = sdup(n->drive);
		r.id = sdup(n->id);
		r.user = sdup(n->user);
		r.url = sdup(n->url);
		fsize = n->kind == CAT_KIND_MESSAGE ? LIVE_SIZE_UNKNOWN
						    : (uint64_t)n->size;
		cache_key(n, &key);
		if (!key.data || !r.id)
			err = ENOMEM;
	}
	pthread_mutex_unlock(&L.lock);
	if (!err && (!L.g || !L.cache))
		err = EIO;
	if (!err) {
		p = malloc(size ? size : 1);
		if (!p)
			err = ENOMEM;
	}
	if (!err) {
		struct live_fetcher f = { fetch, rctx_dup, rctx_free, &r };

		got = live_cache_read(L.cache, key.data, fsize, p, size,
				      (uint64_t)off, &f);
		if (got < 0) {
			err = fuse_errno((int)got);
		} else {
			if (r.kind == CAT_KIND_MESSAGE &&
			    live_cache_size(L.cache, key.data, &fsize) == 0) {
				pthread_mutex_lock(&L.lock);
				n = node_get(ino);
				if (n)
					n->size = (int64_t)fsize;
				pthread_mutex_unlock(&L.lock);
			}
			fuse_reply_buf(req, p, (size_t)got);
		}
	}
	if (err)
		fuse_reply_err(req, err);
	free(p);
	rctx_release(&r);
	buf_release(&key);
}

/* An open directory: its entries as of opendir. */
struct dent {
	char *name;
	struct stat st;
	bool real; /* an entry of live/ (cache it); "." ".." "snapshots" not */
};

struct dhandle {
	struct dent *e;
	size_t n;
	int64_t listed_ms; /* of the listing the entries came from */
	uint32_t gen;
};

static void dhandle_free(struct dhandle *h)
{
	size_t i;

	if (!h)
		return;
	for (i = 0; i < h->n; i++)
		free(h->e[i].name);
	free(h->e);
	free(h);
}

static int dent_add(struct dhandle *h, size_t *cap, const char *name,
		    const struct stat *st, bool real)
{
	if (h->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct dent *v = realloc(h->e, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		h->e = v;
		*cap = nc;
	}
	h->e[h->n].name = strdup(name);
	if (!h->e[h->n].name)
		return -ENOMEM;
	h->e[h->n].st = *st;
	h->e[h->n].real = real;
	h->n++;
	return 0;
}

/* Entries of the mount root: live/ next to snapshots/ (no restore/). */
static int root_entries(struct dhandle *h, size_t *cap)
{
	struct stat st;
	int rc;

	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR | 0555;
	st.st_ino = INO_ROOT;
	rc = dent_add(h, cap, ".", &st, false);
	if (rc == 0)
		rc = dent_add(h, cap, "..", &st, false);
	st.st_ino = INO_SNAPSHOTS;
	if (rc == 0)
		rc = dent_add(h, cap, "snapshots", &st, false);
	pthread_mutex_lock(&L.lock);
	node_attr(L.nodes[N_ROOT], &st);
	pthread_mutex_unlock(&L.lock);
	if (rc == 0)
		rc = dent_add(h, cap, "live", &st, true);
	return rc;
}

static int dir_entries(uint64_t ino, struct dhandle *h, size_t *cap)
{
	struct lnode *d;
	struct stat st;
	uint32_t idx;
	size_t i;
	int rc;

	pthread_mutex_lock(&L.lock);
	d = node_get(ino);
	idx = ino == INO_LIVE ? N_ROOT : (uint32_t)ino_item(ino);
	pthread_mutex_unlock(&L.lock);
	if (!d)
		return -ENOENT;
	rc = ensure_listed(idx);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&L.lock);
	d = L.nodes[idx];
	h->listed_ms = d->listed_ms;
	h->gen = d->gen;
	node_attr(d, &st);
	rc = dent_add(h, cap, ".", &st, false);
	memset(&st, 0, sizeof(st));
	st.st_mode = S_IFDIR | 0555;
	st.st_ino = idx == N_ROOT ? INO_ROOT : L.nodes[d->parent]->ino;
	if (rc == 0)
		rc = dent_add(h, cap, "..", &st, false);
	for (i = 0; rc == 0 && i < d->nkids; i++) {
		node_attr(L.nodes[d->kids[i]], &st);
		rc = dent_add(h, cap, L.nodes[d->kids[i]]->name, &st, true);
	}
	pthread_mutex_unlock(&L.lock);
	return rc;
}

/*
 * Let the kernel keep the entries of directory @ino (opened with @fi) in
 * its page cache, and reuse the entries it kept from the last opendir
 * while the listing they came from is still the current one: a warm
 * ls -l then costs an opendir and a releasedir, no readdir.  Once the
 * listing was renewed (after the TTL) the kernel reads it again, with
 * readdirplus, which also renews the attributes of every entry.
 */
static void kernel_cache(uint64_t ino, const struct dhandle *h,
			 struct fuse_file_info *fi)
{
	struct lnode *d;

	pthread_mutex_lock(&L.lock);
	d = node_get(ino);
	if (d && h->listed_ms) {
		fi->cache_readdir = 1;
		fi->keep_cache =
			d->kernel_ms == h->listed_ms && d->kernel_gen == h->gen;
		d->kernel_ms = h->listed_ms;
		d->kernel_gen = h->gen;
	}
	pthread_mutex_unlock(&L.lock);
}

static void lop_opendir(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct dhandle *h;
	size_t cap = 0;
	int rc;

	if (!is_live(ino) && ino != INO_ROOT) {
		L.base->opendir(req, ino, fi);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = ino == INO_ROOT ? root_entries(h, &cap)
			     : dir_entries(ino, h, &cap);
	if (rc < 0) {
		dhandle_free(h);
		fuse_reply_err(req, fuse_errno(rc));
		return;
	}
	if (ino != INO_ROOT)
		kernel_cache(ino, h, fi);
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi) == -ENOENT)
		dhandle_free(h); /* interrupted */
}

static void do_readdir(fuse_req_t req, struct dhandle *h, size_t size,
		       off_t off, bool plus)
{
	char *p = malloc(size ? size : 1);
	size_t used = 0, len, i;

	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (i = off > 0 ? (size_t)off : 0; i < h->n; i++) {
		if (plus) {
			struct fuse_entry_param e;

			memset(&e, 0, sizeof(e));
			e.attr = h->e[i].st;
			if (h->e[i].real) {
				e.ino = h->e[i].st.st_ino;
				e.attr_timeout = e.entry_timeout = L.ttl;
			}
			len = fuse_add_direntry_plus(req, p + used, size - used,
						     h->e[i].name, &e,
						     (off_t)i + 1);
		} else {
			len = fuse_add_direntry(req, p + used, size - used,
						h->e[i].name, &h->e[i].st,
						(off_t)i + 1);
		}
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, p, used);
	free(p);
}

static void lop_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	if ((!is_live(ino) && ino != INO_ROOT) || !fi->fh) {
		L.base->readdir(req, ino, size, off, fi);
		return;
	}
	do_readdir(req, (struct dhandle *)(uintptr_t)fi->fh, size, off, false);
}

static void lop_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			    off_t off, struct fuse_file_info *fi)
{
	if ((!is_live(ino) && ino != INO_ROOT) || !fi->fh) {
		L.base->readdirplus(req, ino, size, off, fi);
		return;
	}
	do_readdir(req, (struct dhandle *)(uintptr_t)fi->fh, size, off, true);
}

static void lop_releasedir(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	if ((is_live(ino) || ino == INO_ROOT) && fi->fh) {
		dhandle_free((struct dhandle *)(uintptr_t)fi->fh);
		fi->fh = 0;
		fuse_reply_err(req, 0);
		return;
	}
	if (L.base->releasedir)
		L.base->releasedir(req, ino, fi);
	else
		fuse_reply_err(req, 0);
}

/* All xattrs of @ino as "name\0value\0" (user.m365. names). */
static int xattrs_of(uint64_t ino, struct buf *out)
{
	struct lnode *n;
	size_t pos = 0;
	int rc;

	rc = live_getattr(ino, &(struct stat){ 0 });
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&L.lock);
	n = node_get(ino);
	while (n && pos < n->meta.len) {
		const char *k = n->meta.data + pos;
		const char *v = k + strlen(k) + 1;

		buf_addf(out, XATTR_PREFIX "%s", k);
		buf_addch(out, 0);
		buf_add(out, v, strlen(v) + 1);
		pos = (size_t)(v - n->meta.data) + strlen(v) + 1;
	}
	if (n && n->root_id) {
		buf_adds(out, XATTR_PREFIX "rootId");
		buf_addch(out, 0);
		buf_add(out, n->root_id, strlen(n->root_id) + 1);
	}
	pthread_mutex_unlock(&L.lock);
	return n ? 0 : -ENOENT;
}

static void lop_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 size_t size)
{
	struct buf all = BUF_INIT;
	const char *v = NULL;
	size_t pos = 0, vlen;
	int rc;

	if (!is_live(ino) || strncmp(name, XATTR_PREFIX, XATTR_PREFIX_LEN)) {
		L.base->getxattr(req, ino, name, size);
		return;
	}
	rc = xattrs_of(ino, &all);
	while (rc == 0 && pos < all.len) {
		const char *k = all.data + pos;

		v = k + strlen(k) + 1;
		pos = (size_t)(v - all.data) + strlen(v) + 1;
		if (!strcmp(k, name))
			break;
		v = NULL;
	}
	if (rc < 0)
		fuse_reply_err(req, fuse_errno(rc));
	else if (!v)
		fuse_reply_err(req, ENODATA);
	else if (!size)
		fuse_reply_xattr(req, strlen(v));
	else if ((vlen = strlen(v)) > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, vlen);
	buf_release(&all);
}

static void lop_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct buf all = BUF_INIT, names = BUF_INIT;
	size_t pos = 0;
	int rc;

	if (!is_live(ino)) {
		L.base->listxattr(req, ino, size);
		return;
	}
	rc = xattrs_of(ino, &all);
	while (rc == 0 && pos < all.len) {
		const char *k = all.data + pos;
		const char *v = k + strlen(k) + 1;

		buf_add(&names, k, strlen(k) + 1);
		pos = (size_t)(v - all.data) + strlen(v) + 1;
	}
	if (rc < 0)
		fuse_reply_err(req, fuse_errno(rc));
	else if (!size)
		fuse_reply_xattr(req, names.len);
	else if (names.len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, names.data, names.len);
	buf_release(&names);
	buf_release(&all);
}

static void lop_statfs(fuse_req_t req, fuse_ino_t ino)
{
	L.base->statfs(req, is_live(ino) ? INO_ROOT : ino);
}

const struct fuse_lowlevel_ops *
fs_live_ops(const struct fuse_lowlevel_ops *base)
{
	if (!fs_restore_enabled())
		return base;
	L.enabled = true;
	L.base = base;
	L.ops = *base;
	L.ops.init = lop_init;
	L.ops.lookup = lop_lookup;
	L.ops.getattr = lop_getattr;
	L.ops.open = lop_open;
	L.ops.read = lop_read;
	L.ops.opendir = lop_opendir;
	L.ops.readdir = lop_readdir;
	L.ops.readdirplus = lop_readdirplus;
	L.ops.releasedir = lop_releasedir;
	L.ops.getxattr = lop_getxattr;
	L.ops.listxattr = lop_listxattr;
	L.ops.statfs = lop_statfs;
	return &L.ops;
}

int fs_live_start(struct fs *fs, struct graph *g)
{
	static const char *const tops[] = { "sites", "onedrive", "mailboxes" };
	struct buf dir = BUF_INIT;
	struct lnode *n;
	size_t i;
	int rc = 0;

	if (!L.enabled)
		return 0;
	L.fs = fs;
	L.g = g;
	pthread_mutex_lock(&L.lock);
	n = node_new("live", CAT_KIND_TOP);
	rc = n ? node_add(n, N_ROOT) : -ENOMEM;
	for (i = 0; rc == 0 && i < 3; i++) {
		n = node_new(tops[i], CAT_KIND_TOP);
		rc = n ? node_add(n, N_ROOT) : -ENOMEM;
		if (rc == 0)
			n->mtime = fs->mount_time;
	}
	if (rc == 0) {
		L.nodes[N_ROOT]->nkids = 3;
		L.nodes[N_ROOT]->kids = calloc(3, sizeof(uint32_t));
		L.nodes[N_ROOT]->byname = calloc(3, sizeof(uint32_t));
		if (!L.nodes[N_ROOT]->kids || !L.nodes[N_ROOT]->byname) {
			rc = -ENOMEM;
		} else {
			/* by name: mailboxes, onedrive, sites */
			for (i = 0; i < 3; i++) {
				L.nodes[N_ROOT]->kids[i] = (uint32_t)i + 1;
				L.nodes[N_ROOT]->byname[i] = 3 - (uint32_t)i;
			}
		}
	}
	pthread_mutex_unlock(&L.lock);
	if (rc < 0)
		goto out;
	if (!g) {
		log_err("live/ is not available: the connection could not be opened");
		goto out;
	}
	buf_addf(&dir, "%s/cache/live", fs->o.repo);
	rc = dir.data ? live_cache_new(dir.data, (uint64_t)L.cache_mb << 20,
				       &L.cache)
		      : -ENOMEM;
	if (rc < 0) {
		log_err("live/ cannot read files: cannot create the cache '%s': %s",
			dir.data ? dir.data : "?", strerror(-rc));
		goto out;
	}
	log_info("live/ is ready (listings kept %.0f s, cache %u MiB in '%s')",
		 L.ttl, L.cache_mb, dir.data);
out:
	buf_release(&dir);
	return rc;
}

void fs_live_stop(void)
{
	size_t i;

	live_cache_free(L.cache);
	L.cache = NULL;
	for (i = 0; i < L.n; i++)
		node_free(L.nodes[i]);
	free(L.nodes);
	L.nodes = NULL;
	L.n = L.cap = 0;
	sites_free(L.sites, L.nsites);
	L.sites = NULL;
	L.nsites = 0;
	for (i = 0; i < L.ndrives; i++) {
		free(L.drives[i].id);
		free(L.drives[i].link);
	}
	free(L.drives);
	L.drives = NULL;
	L.ndrives = 0;
	L.g = NULL;
}
