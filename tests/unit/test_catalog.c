/*
 * test_catalog - the catalog against a brute-force in-memory model:
 * random create/modify/rename/move/delete/sweep/forget sequences, killed
 * writers, readers in another process and in many threads, copies,
 * contents, delta tokens and the restore queue.
 */
#include "catalog/catalog.h"

#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "util/log.h"
#include "util/util.h"

static char tmpdir[] = "/tmp/test_catalog.XXXXXX";
static char dbpath[256];

static void fresh_db(const char *name)
{
	snprintf(dbpath, sizeof(dbpath), "%s/%s", tmpdir, name);
	unlink(dbpath);
}

/* ---- the model ---- */

#define MAXI  3000
#define SCOPE "drive:test"

struct mitem {
	int parent; /* model index, -1 = root */
	int kind;
	int64_t size, mtime;
	int cnum; /* content number, 0 = none */
	int etag;
	bool alive;
	char name[24];
};

struct model {
	struct mitem it[MAXI];
	int n;
	uint64_t rng;
	int names;
};

static uint64_t rnd(struct model *m)
{
	uint64_t z = (m->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int rndn(struct model *m, int n)
{
	return (int)(rnd(m) % (uint64_t)n);
}

static void fake_sha(int cnum, unsigned char sha[32])
{
	struct model t = { .rng = (uint64_t)cnum * 7919 };

	for (int i = 0; i < 32; i += 8) {
		uint64_t v = rnd(&t);
		memcpy(sha + i, &v, 8);
	}
}

static void gid_of(int i, char out[16])
{
	snprintf(out, 16, "g%d", i);
}

/* Catalog id of model item @i (current state). */
static int64_t cat_id_of(struct cat *c, struct model *m, int i)
{
	struct cat_item it;
	char gid[16];

	if (i < 0)
		return CAT_ROOT;
	if (m->it[i].kind == CAT_KIND_TOP) {
		if (cat_lookup(c, CAT_SNAP_CURRENT, CAT_ROOT, m->it[i].name,
			       &it) < 0)
			return -1;
		return it.id;
	}
	gid_of(i, gid);
	if (cat_item_find(c, SCOPE, gid, &it) < 0)
		return -1;
	return it.id;
}

/* Put model item @i into the catalog; returns the put result or -errno. */
static int put(struct cat *c, struct model *m, int i)
{
	struct mitem *x = &m->it[i];
	struct cat_item_in in = { 0 };
	struct cat_kv kv[2];
	char gid[16], etag[16], desc[32];
	unsigned char sha[32];
	int64_t content = 0, id;
	int ret, res = -1;

	if (!c)
		return 0;
	in.parent = cat_id_of(c, m, x->parent);
	if (in.parent < 0)
		return -ENOENT;
	in.kind = x->kind;
	in.name = x->name;
	if (x->kind != CAT_KIND_TOP) {
		gid_of(i, gid);
		in.scope = SCOPE;
		in.graph_id = gid;
	}
	in.size = x->size;
	in.mtime_sec = x->mtime;
	in.mtime_nsec = (int32_t)(x->mtime % 1000) * 1000;
	in.btime_sec = 1000;
	if (x->cnum) {
		fake_sha(x->cnum, sha);
		snprintf(desc, sizeof(desc), "d%d", x->cnum);
		ret = cat_content_put(c, x->size, sha, NULL, desc,
				      strlen(desc) + 1, &content);
		if (ret < 0)
			return ret;
	}
	in.content = content;
	snprintf(etag, sizeof(etag), "e%d", x->etag);
	kv[0] = (struct cat_kv){ CAT_META_ETAG, etag };
	kv[1] = (struct cat_kv){ CAT_META_GRAPH_ID, in.graph_id };
	in.meta = kv;
	in.nmeta = 2;
	ret = cat_item_put(c, &in, &id, &res);
	return ret < 0 ? ret : res;
}

static bool in_subtree(struct model *m, int i, int root)
{
	for (; i >= 0; i = m->it[i].parent)
		if (i == root)
			return true;
	return false;
}

static int pick(struct model *m, bool (*ok)(const struct mitem *))
{
	int cand[MAXI], n = 0;

	for (int i = 0; i < m->n; i++)
		if (m->it[i].alive && ok(&m->it[i]))
			cand[n++] = i;
	return n ? cand[rndn(m, n)] : -1;
}

static bool is_container(const struct mitem *x)
{
	return x->kind == CAT_KIND_DRIVE || x->kind == CAT_KIND_FOLDER;
}
static bool is_file(const struct mitem *x)
{
	return x->kind == CAT_KIND_FILE;
}
static bool is_movable(const struct mitem *x)
{
	return x->kind == CAT_KIND_FILE || x->kind == CAT_KIND_FOLDER;
}
static bool is_drive(const struct mitem *x)
{
	return x->kind == CAT_KIND_DRIVE;
}

static void kill_subtree(struct model *m, int root)
{
	for (int i = 0; i < m->n; i++)
		if (m->it[i].alive && in_subtree(m, i, root))
			m->it[i].alive = false;
}

static int add_item(struct model *m, int parent, int kind)
{
	struct mitem *x;

	if (m->n >= MAXI)
		return -1;
	x = &m->it[m->n];
	memset(x, 0, sizeof(*x));
	x->parent = parent;
	x->kind = kind;
	x->alive = true;
	snprintf(x->name, sizeof(x->name), "n%d", m->names++);
	if (kind == CAT_KIND_FILE) {
		x->size = rndn(m, 100000);
		x->cnum = 1 + rndn(m, 400); /* shared contents dedup */
	}
	x->mtime = 1700000000 + rndn(m, 1000000);
	return m->n++;
}

/* Sweep of one drive: items missing from the walk go away. */
static int op_sweep(struct cat *c, struct model *m, int d)
{
	int64_t did = c ? cat_id_of(c, m, d) : 0, ended = 0;
	int ret = 0;
	bool seen[MAXI] = { false };

	if (c && (ret = cat_sweep_begin(c, did)) < 0)
		return ret;
	/* walk pre-order: parents before children (index order is that) */
	for (int i = 0; i < m->n; i++) {
		struct mitem *x = &m->it[i];

		if (!x->alive || i == d || !in_subtree(m, i, d))
			continue;
		if (x->parent != d && !seen[x->parent])
			continue; /* parent missing from the walk */
		if (rndn(m, 100) < 8)
			continue; /* missing: deleted in the tenant */
		seen[i] = true;
		if (rndn(m, 2) && c)
			ret = cat_item_touch(c, cat_id_of(c, m, i));
		else
			ret = put(c, m, i) < 0 ? -EIO : 0;
		if (ret < 0)
			return ret;
	}
	if (c && (ret = cat_sweep_end(c, did, &ended)) < 0)
		return ret;
	for (int i = 0; i < m->n; i++)
		if (m->it[i].alive && i != d && in_subtree(m, i, d) && !seen[i])
			m->it[i].alive = false;
	return 0;
}

/*
 * Apply one random operation to @m and (when @c) the catalog.  Parents
 * precede children in index order except after a move; a moved item gets
 * re-created order-wise by keeping parents older (we only move into
 * folders with a smaller index).
 */
static int op(struct cat *c, struct model *m)
{
	int r = rndn(m, 100), i, p, ret;

	if (r < 35) { /* create */
		p = pick(m, is_container);
		if (p < 0)
			return 0;
		i = add_item(m, p,
			     rndn(m, 10) < 3 ? CAT_KIND_FOLDER : CAT_KIND_FILE);
		if (i < 0)
			return 0;
		ret = put(c, m, i);
		return ret < 0 ? ret : (c && ret != CAT_PUT_NEW ? -EPROTO : 0);
	}
	if (r < 55) { /* modify */
		i = pick(m, is_file);
		if (i < 0)
			return 0;
		m->it[i].size = rndn(m, 100000);
		m->it[i].mtime++;
		if (rndn(m, 2))
			m->it[i].cnum = 1 + rndn(m, 400);
		else
			m->it[i].etag++;
		ret = put(c, m, i);
		return ret < 0 ? ret : 0;
	}
	if (r < 65) { /* rename */
		i = pick(m, is_movable);
		if (i < 0)
			return 0;
		snprintf(m->it[i].name, sizeof(m->it[i].name), "n%d",
			 m->names++);
		ret = put(c, m, i);
		return ret < 0 ? ret
			       : (c && ret != CAT_PUT_CHANGED ? -EPROTO : 0);
	}
	if (r < 75) { /* move, keeping parents at smaller indices */
		i = pick(m, is_movable);
		p = pick(m, is_container);
		if (i < 0 || p < 0 || p >= i || in_subtree(m, p, i) ||
		    p == m->it[i].parent)
			return 0;
		m->it[i].parent = p;
		ret = put(c, m, i);
		return ret < 0 ? ret : 0;
	}
	if (r < 85) { /* delete, with the subtree */
		int64_t n = 0;

		i = pick(m, is_movable);
		if (i < 0)
			return 0;
		if (c) {
			ret = cat_item_delete(c, cat_id_of(c, m, i), &n);
			if (ret < 0)
				return ret;
		}
		kill_subtree(m, i);
		return 0;
	}
	if (r < 95) { /* unchanged put */
		i = pick(m, is_movable);
		if (i < 0)
			return 0;
		ret = put(c, m, i);
		return ret < 0 ? ret
			       : (c && ret != CAT_PUT_UNCHANGED ? -EPROTO : 0);
	}
	if (r < 97) { /* full walk of a drive */
		i = pick(m, is_drive);
		return i < 0 ? 0 : op_sweep(c, m, i);
	}
	/* a new drive under the top directory */
	i = add_item(m, 0, CAT_KIND_DRIVE);
	if (i < 0)
		return 0;
	ret = put(c, m, i);
	return ret < 0 ? ret : 0;
}

static void model_init(struct model *m, uint64_t seed)
{
	memset(m, 0, sizeof(*m));
	m->rng = seed;
	add_item(m, -1, CAT_KIND_TOP); /* 0: "n0" top */
	add_item(m, 0, CAT_KIND_DRIVE); /* 1 */
	add_item(m, 0, CAT_KIND_DRIVE); /* 2 */
}

/* First snapshot: everything. */
static int model_put_all(struct cat *c, struct model *m)
{
	for (int i = 0; i < m->n; i++) {
		int ret = put(c, m, i);

		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- comparing the catalog with the model ---- */

struct lst {
	struct cat_item it[MAXI];
	int n;
};

static int lst_cb(void *ctx, const struct cat_item *it)
{
	struct lst *l = ctx;

	if (l->n >= MAXI)
		return -E2BIG;
	l->it[l->n++] = *it;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	const struct mitem *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

/* Compare directory @mi (model) / @ci (catalog) at @snap, recursively. */
static int verify_dir(struct cat *c, int64_t snap, const struct model *m,
		      int mi, int64_t ci, int depth)
{
	struct lst *l = malloc(sizeof(*l));
	const struct mitem **kids = malloc(MAXI * sizeof(*kids));
	struct cat_item one;
	struct buf b = BUF_INIT;
	int nk = 0, bad = 0, ret;

	if (!l || !kids || depth > 50) {
		free(l);
		free(kids);
		return 1;
	}
	l->n = 0;
	for (int i = 0; i < m->n; i++)
		if (m->it[i].alive && m->it[i].parent == mi)
			kids[nk++] = &m->it[i];
	qsort(kids, (size_t)nk, sizeof(*kids), cmp_name);
	ret = cat_list(c, snap, ci, NULL, lst_cb, l);
	if (ret < 0 || l->n != nk) {
		fprintf(stderr, "snap %lld dir %lld: %d entries, model %d\n",
			(long long)snap, (long long)ci, l->n, nk);
		bad++;
		goto out;
	}
	for (int i = 0; i < nk && !bad; i++) {
		const struct mitem *x = kids[i];
		struct cat_item *y = &l->it[i];
		char want[32];
		const char *etag;

		if (strcmp(x->name, y->name) || x->kind != y->kind ||
		    x->size != y->size || x->mtime != y->mtime_sec ||
		    y->parent != ci) {
			fprintf(stderr, "snap %lld: '%s' differs ('%s')\n",
				(long long)snap, x->name, y->name);
			bad++;
			break;
		}
		buf_reset(&b);
		if (x->cnum) {
			snprintf(want, sizeof(want), "d%d", x->cnum);
			if (cat_content_get(c, y->content, NULL, &b) < 0 ||
			    strcmp(b.data, want)) {
				fprintf(stderr, "content of '%s'\n", x->name);
				bad++;
			}
		} else if (y->content) {
			bad++;
		}
		buf_reset(&b);
		snprintf(want, sizeof(want), "e%d", x->etag);
		if (cat_item_meta(c, y->id, y->from_snap, &b) < 0)
			bad++;
		etag = cat_meta_find(b.data, b.len, CAT_META_ETAG);
		if (!etag || strcmp(etag, want)) {
			fprintf(stderr, "etag of '%s'\n", x->name);
			bad++;
		}
		if (cat_lookup(c, snap, ci, x->name, &one) < 0 ||
		    one.id != y->id || one.from_snap != y->from_snap)
			bad++;
		if (cat_item_get(c, snap, y->id, &one) < 0 ||
		    strcmp(one.name, y->name) || one.parent != ci)
			bad++;
		if (!bad && cat_kind_is_dir(x->kind))
			bad += verify_dir(c, snap, m, (int)(x - m->it), y->id,
					  depth + 1);
	}
	if (cat_lookup(c, snap, ci, "no such name", &one) != -ENOENT)
		bad++;
out:
	buf_release(&b);
	free(l);
	free(kids);
	return bad;
}

static int verify(struct cat *c, int64_t snap, const struct model *m)
{
	return verify_dir(c, snap, m, -1, CAT_ROOT, 0);
}

/* ---- tests ---- */

static void test_basic(void)
{
	struct cat *c = NULL, *r = NULL;
	struct cat_item it, it2;
	struct cat_kv kv[] = { { CAT_META_SUBJECT, "hello there" },
			       { CAT_META_FROM, "a@b.c" },
			       { CAT_META_IS_READ, "true" } };
	struct cat_item_in in = { .parent = CAT_ROOT,
				  .kind = CAT_KIND_TOP,
				  .name = "mailboxes" };
	struct buf b = BUF_INIT;
	int64_t s1, top, mf, msg, dup, content;
	unsigned char sha[32] = { 1, 2, 3 }, qxh[20] = { 9, 8, 7 };
	struct cat_content ct;
	int res;

	fresh_db("basic.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &c), -ENOENT);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &r), 0);
	CHECK_EQ(cat_snapshot_latest(r, &s1), -ENOENT);
	CHECK_EQ(cat_item_put(c, &in, &top, &res), -EINVAL); /* no snapshot */
	CHECK_EQ(cat_snapshot_begin(c, &s1), 0);
	CHECK_EQ(s1, 1);
	CHECK_EQ(cat_item_put(c, &in, &top, &res), 0);
	CHECK_EQ(res, CAT_PUT_NEW);
	in = (struct cat_item_in){ .parent = top,
				   .kind = CAT_KIND_MAIL_FOLDER,
				   .name = "Inbox",
				   .scope = "mail:u1",
				   .graph_id = "AAMkInbox" };
	CHECK_EQ(cat_item_put(c, &in, &mf, &res), 0);
	CHECK_EQ(cat_content_put(c, 42, sha, NULL, "desc", 4, &content), 0);
	CHECK_EQ(cat_content_put(c, 42, sha, qxh, "desc", 4, &dup), 0);
	CHECK_EQ(dup, content);
	in = (struct cat_item_in){ .parent = mf,
				   .kind = CAT_KIND_MESSAGE,
				   .name = "2026-11-21 0200 hello [1].eml",
				   .scope = "mail:u1",
				   .graph_id = "AAMkMsg1",
				   .size = 42,
				   .mtime_sec = 1763690400,
				   .mtime_nsec = 5,
				   .content = content,
				   .meta = kv,
				   .nmeta = 3 };
	CHECK_EQ(cat_item_put(c, &in, &msg, &res), 0);
	/* same name, other graph id: refused */
	in.graph_id = "AAMkMsg2";
	CHECK_EQ(cat_item_put(c, &in, NULL, NULL), -EEXIST);
	/* a file is not a parent */
	in.parent = msg;
	in.name = "x";
	CHECK_EQ(cat_item_put(c, &in, NULL, NULL), -ENOENT);
	in.parent = top;
	in.name = "a/b";
	CHECK_EQ(cat_item_put(c, &in, NULL, NULL), -EINVAL);
	CHECK_EQ(cat_delta_set(c, "mail:u1/inbox", "tok1"), 0);
	CHECK_EQ(cat_snapshot_error(c, "exchange", "/x", "AAMk", "denied"), 0);
	/* not visible before the end */
	CHECK_EQ(cat_snapshot_latest(r, &dup), -ENOENT);
	CHECK_EQ(cat_delta_get(r, "mail:u1/inbox", &b), -ENOENT);
	CHECK_EQ(cat_commit(c), 0);
	CHECK_EQ(cat_snapshot_latest(r, &dup), -ENOENT);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_PARTIAL), 0);
	CHECK_EQ(cat_snapshot_latest(r, &dup), 0);
	CHECK_EQ(dup, s1);
	CHECK_EQ(cat_delta_get(r, "mail:u1/inbox", &b), 0);
	CHECK_STR(b.data, "tok1");

	CHECK_EQ(cat_lookup(r, s1, mf, "2026-11-21 0200 hello [1].eml", &it),
		 0);
	CHECK_EQ(it.id, msg);
	CHECK_EQ(it.size, 42);
	CHECK_EQ(it.mtime_nsec, 5);
	CHECK_EQ(it.kind, CAT_KIND_MESSAGE);
	CHECK_EQ(it.to_snap, 0);
	CHECK(!cat_kind_is_dir(it.kind));
	CHECK(cat_kind_is_dir(CAT_KIND_MAILBOX));
	buf_reset(&b);
	CHECK_EQ(cat_item_meta(r, it.id, it.from_snap, &b), 0);
	CHECK_STR(cat_meta_find(b.data, b.len, CAT_META_SUBJECT),
		  "hello there");
	CHECK_STR(cat_meta_find(b.data, b.len, CAT_META_FROM), "a@b.c");
	CHECK_STR(cat_meta_find(b.data, b.len, CAT_META_IS_READ), "true");
	CHECK(cat_meta_find(b.data, b.len, "nope") == NULL);
	CHECK_EQ(cat_content_get(r, it.content, &ct, NULL), 0);
	CHECK_EQ(ct.size, 42);
	CHECK(ct.has_qxh);
	CHECK_EQ(cat_content_find_qxh(r, 42, qxh, &ct), 0);
	CHECK_EQ(ct.id, content);
	CHECK_EQ(cat_content_find_qxh(r, 43, qxh, &ct), -ENOENT);
	CHECK_EQ(cat_content_find_sha256(r, sha, &ct), 0);
	CHECK_EQ(cat_item_find(c, "mail:u1", "AAMkMsg1", &it2), 0);
	CHECK_EQ(it2.id, msg);
	CHECK_EQ(cat_item_find(c, "mail:u1", "nope", &it2), -ENOENT);
	CHECK_EQ(cat_item_get(r, s1, CAT_ROOT, &it2), 0);
	CHECK(cat_kind_is_dir(it2.kind));

	/* snapshot 2: the message is read (metadata), then the folder goes */
	CHECK_EQ(cat_snapshot_begin(c, &s1), 0);
	CHECK_EQ(s1, 2);
	kv[2].val = "false";
	in.parent = mf;
	in.name = "2026-11-21 0200 hello [1].eml";
	in.graph_id = "AAMkMsg1";
	CHECK_EQ(cat_item_put(c, &in, NULL, &res), 0);
	CHECK_EQ(res, CAT_PUT_CHANGED);
	CHECK_EQ(cat_item_put(c, &in, NULL, &res), 0);
	CHECK_EQ(res, CAT_PUT_UNCHANGED);
	CHECK_EQ(cat_item_delete(c, mf, &dup), 0);
	CHECK_EQ(dup, 2);
	CHECK_EQ(cat_item_delete(c, mf, &dup), -ENOENT);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	CHECK_EQ(cat_lookup(r, 2, top, "Inbox", &it), -ENOENT);
	CHECK_EQ(cat_lookup(r, 1, top, "Inbox", &it), 0);
	CHECK_EQ(it.to_snap, 2);
	CHECK_EQ(cat_item_find(c, "mail:u1", "AAMkMsg1", &it2), -ENOENT);
	CHECK_EQ(cat_check(r, NULL, NULL, NULL), 0);

	/* snapshot 3 fails: rolled back, listed as failed, errors kept */
	CHECK_EQ(cat_snapshot_begin(c, &s1), 0);
	in.parent = top;
	in.kind = CAT_KIND_MAIL_FOLDER;
	in.name = "Later";
	in.graph_id = "AAMkLater";
	CHECK_EQ(cat_item_put(c, &in, NULL, NULL), 0);
	CHECK_EQ(cat_snapshot_error(c, "exchange", NULL, NULL, "boom"), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_FAILED), 0);
	{
		struct cat_snapshot s;

		CHECK_EQ(cat_snapshot_get(r, 3, &s), 0);
		CHECK_EQ(s.status, CAT_SNAP_FAILED);
		CHECK_EQ(s.n.errors, 1);
		CHECK_EQ(cat_snapshot_latest(r, &dup), 0);
		CHECK_EQ(dup, 2);
	}
	CHECK_EQ(cat_lookup(r, CAT_SNAP_CURRENT, top, "Later", &it), -ENOENT);
	CHECK_EQ(cat_check(r, NULL, NULL, NULL), 0);
	buf_release(&b);
	cat_close(r);
	cat_close(c);
}

static void test_model(void)
{
	struct cat *c = NULL;
	struct model *m = malloc(sizeof(*m));
	struct model **saved = calloc(64, sizeof(*saved));
	bool live[64] = { false };
	int64_t snap, problems = -1;
	int ret;

	fresh_db("model.db");
	CHECK(m && saved);
	if (!m || !saved)
		goto out;
	model_init(m, 12345);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	for (int s = 1; s < 40 && c; s++) {
		CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
		CHECK_EQ(snap, s);
		ret = 0;
		if (s == 1)
			ret = model_put_all(c, m);
		else
			for (int k = 0; k < 40 && ret == 0; k++)
				ret = op(c, m);
		CHECK_EQ(ret, 0);
		if (ret < 0)
			break;
		if (rndn(m, 3) == 0)
			CHECK_EQ(cat_commit(c), 0);
		CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
		saved[s] = malloc(sizeof(*m));
		if (saved[s])
			memcpy(saved[s], m, sizeof(*m));
		live[s] = true;
		/* forget a random older snapshot now and then */
		if (s > 3 && rndn(m, 3) == 0) {
			int f = 1 + rndn(m, s);

			if (live[f]) {
				CHECK_EQ(cat_snapshot_forget(c, f), 0);
				live[f] = false;
			}
		}
		if (s % 8 == 0 || s == 39) {
			for (int t = 1; t <= s; t++)
				if (live[t] && saved[t])
					CHECK_EQ(verify(c, t, saved[t]), 0);
			CHECK_EQ(cat_check(c, NULL, NULL, &problems), 0);
			CHECK_EQ(problems, 0);
		}
	}
	CHECK_EQ(verify(c, CAT_SNAP_CURRENT, m), 0);
	{
		struct cat_stats st;

		CHECK_EQ(cat_stats(c, &st), 0);
		CHECK(st.versions >= st.items);
		CHECK(st.items > 100);
	}
out:
	cat_close(c);
	for (int i = 0; i < 64 && saved; i++)
		free(saved[i]);
	free(saved);
	free(m);
}

/* ---- killed writers ---- */

#define KILL_OPS 60

/* A writer run; with @kill_at >= 0 it kills itself before op @kill_at. */
static int child_run(struct model *m, uint64_t seed, int kill_at)
{
	struct cat *c = NULL;
	int64_t s;

	m->rng = seed;
	if (cat_open(dbpath, CAT_OPEN_WRITE, &c) < 0)
		return 1;
	if (cat_snapshot_begin(c, &s) < 0)
		return 2;
	for (int k = 0; k < KILL_OPS; k++) {
		if (k == kill_at)
			kill(getpid(), SIGKILL);
		if (op(c, m) < 0)
			return 3;
		if (k % 15 == 14 && cat_commit(c) < 0)
			return 4;
	}
	if (cat_snapshot_finish(c, CAT_SNAP_COMPLETE) < 0)
		return 5;
	cat_close(c);
	return 0;
}

static void model_apply(struct model *m, uint64_t seed)
{
	m->rng = seed;
	for (int k = 0; k < KILL_OPS; k++)
		op(NULL, m);
}

static int64_t latest(void)
{
	struct cat *r = NULL;
	int64_t s = 0;

	if (cat_open(dbpath, CAT_OPEN_READ, &r) == 0)
		cat_snapshot_latest(r, &s);
	cat_close(r);
	return s;
}

static void test_killed(void)
{
	struct model *m = malloc(sizeof(*m));
	struct model **saved = calloc(256, sizeof(*saved));
	struct cat *c = NULL;
	int64_t snap = 0, last, t0, dur;
	int status, kills = 0, commits = 0, early = 0;
	pid_t pid;

	fresh_db("killed.db");
	CHECK(m && saved);
	if (!m || !saved)
		goto out;
	model_init(m, 777);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(model_put_all(c, m), 0);
	for (int k = 0; k < 200; k++) /* a tree worth killing runs in */
		CHECK_EQ(op(c, m), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	cat_close(c);
	c = NULL;
	saved[snap] = malloc(sizeof(*m));
	memcpy(saved[snap], m, sizeof(*m));
	last = snap;

	/* how long does an undisturbed run take? */
	t0 = util_mono_ms();
	pid = fork();
	if (pid == 0)
		_exit(child_run(m, 5000, -1));
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	dur = util_mono_ms() - t0 + 1;
	model_apply(m, 5000);
	last = latest();
	saved[last] = malloc(sizeof(*m));
	memcpy(saved[last], m, sizeof(*m));

	for (int iter = 0; kills < 55 && iter < 200 && last < 250; iter++) {
		uint64_t seed = 6000 + (uint64_t)iter;
		struct model t = { .rng = (uint64_t)iter * 31 + 1 };
		int64_t now;

		pid = fork();
		/* odd runs die at an operation boundary, even ones anywhere */
		if (pid == 0)
			_exit(child_run(m, seed,
					iter % 2 ? (int)(rnd(&t) % KILL_OPS)
						 : -1));
		if (iter % 2 == 0)
			usleep((useconds_t)(rnd(&t) % (uint64_t)(dur * 1500)));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		if (WIFSIGNALED(status))
			kills++;
		else if (WEXITSTATUS(status) != 0)
			early++;
		now = latest();
		CHECK(now >= last);
		if (now != last) {
			commits++;
			model_apply(m, seed);
			last = now;
			if (last < 256 && !saved[last]) {
				saved[last] = malloc(sizeof(*m));
				if (saved[last])
					memcpy(saved[last], m, sizeof(*m));
			}
		}
		/* readers see exactly the last committed snapshot */
		CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &c), 0);
		if (c) {
			CHECK_EQ(verify(c, last, m), 0);
			if (iter % 25 == 0) /* and never lose older ones */
				for (int64_t s = 1; s < last; s++)
					if (saved[s])
						CHECK_EQ(verify(c, s, saved[s]),
							 0);
		}
		cat_close(c);
		c = NULL;
		/* the next writer rolls back; the catalog is clean */
		CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE, &c), 0);
		if (c)
			CHECK_EQ(cat_check(c, NULL, NULL, NULL), 0);
		if (c && iter % 10 == 0)
			CHECK_EQ(verify(c, CAT_SNAP_CURRENT, m), 0);
		cat_close(c);
		c = NULL;
	}
	fprintf(stderr, "killed %d runs, %d committed, %d failed early\n",
		kills, commits, early);
	CHECK(kills >= 50);
	CHECK_EQ(early, 0);
out:
	for (int i = 0; i < 256 && saved; i++)
		free(saved[i]);
	free(saved);
	free(m);
}

/* ---- a reader in another process ---- */

static void test_reader_process(void)
{
	struct cat *c = NULL, *r = NULL;
	struct cat_item_in in = { .parent = CAT_ROOT,
				  .kind = CAT_KIND_TOP,
				  .name = "sites" };
	struct cat_item it;
	int p1[2], p2[2], status;
	int64_t snap = 0, s2 = 0, l = 0;
	char ch = 0;
	pid_t pid;

	fresh_db("reader.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(cat_item_put(c, &in, NULL, NULL), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	cat_close(c);
	c = NULL;
	CHECK_EQ(pipe(p1), 0);
	CHECK_EQ(pipe(p2), 0);
	pid = fork();
	if (pid == 0) {
		int rc = 1;

		if (cat_open(dbpath, CAT_OPEN_WRITE, &c) == 0 &&
		    cat_snapshot_begin(c, &s2) == 0) {
			in.name = "onedrive";
			rc = cat_item_put(c, &in, NULL, NULL) ? 2 : 0;
			if (!rc)
				rc = cat_commit(c) ? 3 : 0;
			if (write(p1[1], "a", 1) != 1 ||
			    read(p2[0], &ch, 1) != 1)
				rc = 4;
			if (!rc)
				rc = cat_snapshot_finish(c, CAT_SNAP_COMPLETE)
					     ? 5
					     : 0;
			if (write(p1[1], "d", 1) != 1)
				rc = 6;
			if (read(p2[0], &ch, 1) != 1)
				rc = 7;
		}
		cat_close(c);
		_exit(rc);
	}
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &r), 0);
	CHECK_EQ(read(p1[0], &ch, 1), 1);
	CHECK_EQ(cat_snapshot_latest(r, &l), 0);
	CHECK_EQ(l, snap); /* running: invisible, and we did not block */
	{
		/* a live run is never rolled back by a second writer */
		struct cat *w = NULL;

		CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE, &w), -EBUSY);
		cat_close(w);
	}
	CHECK_EQ(cat_lookup(r, snap, CAT_ROOT, "onedrive", &it), -ENOENT);
	CHECK_EQ(write(p2[1], "g", 1), 1);
	CHECK_EQ(read(p1[0], &ch, 1), 1);
	CHECK_EQ(ch, 'd');
	CHECK_EQ(cat_snapshot_latest(r, &l), 0);
	CHECK_EQ(l, snap + 1); /* visible as soon as it committed */
	CHECK_EQ(cat_lookup(r, l, CAT_ROOT, "onedrive", &it), 0);
	CHECK_EQ(cat_lookup(r, l, CAT_ROOT, "sites", &it), 0);
	CHECK_EQ(cat_lookup(r, snap, CAT_ROOT, "onedrive", &it), -ENOENT);
	CHECK_EQ(write(p2[1], "x", 1), 1);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cat_close(r);
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
}

/* ---- many reader threads while a writer works ---- */

struct rt {
	struct cat *r;
	const struct model *m;
	int64_t snap;
	int bad;
};

static void *reader_thread(void *arg)
{
	struct rt *t = arg;

	for (int k = 0; k < 3; k++)
		t->bad += verify(t->r, t->snap, t->m);
	return NULL;
}

static void test_threads(void)
{
	struct model *m = malloc(sizeof(*m)), *m1 = malloc(sizeof(*m));
	struct cat *c = NULL, *r = NULL;
	struct rt t[8];
	pthread_t th[8];
	int64_t snap;

	fresh_db("threads.db");
	CHECK(m && m1);
	if (!m || !m1)
		goto out;
	model_init(m, 4242);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(model_put_all(c, m), 0);
	for (int k = 0; k < 300; k++)
		CHECK_EQ(op(c, m), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	memcpy(m1, m, sizeof(*m));
	CHECK_EQ(verify(c, snap, m1), 0);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &r), 0);
	for (int i = 0; i < 8; i++) {
		t[i] = (struct rt){ r, m1, snap, 0 };
		CHECK_EQ(pthread_create(&th[i], NULL, reader_thread, &t[i]), 0);
	}
	/* the writer goes on meanwhile */
	for (int s = 0; s < 4; s++) {
		int64_t sn;

		CHECK_EQ(cat_snapshot_begin(c, &sn), 0);
		for (int k = 0; k < 50; k++)
			CHECK_EQ(op(c, m), 0);
		CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(t[i].bad, 0);
	}
	CHECK_EQ(cat_snapshot_latest(r, &snap), 0);
	CHECK_EQ(verify(r, snap, m), 0);
out:
	cat_close(r);
	cat_close(c);
	free(m);
	free(m1);
}

/* ---- copies ---- */

static void test_copy(void)
{
	struct model *m = malloc(sizeof(*m));
	struct cat *c = NULL, *r = NULL;
	char copy[300], back[300], junk[300];
	struct buf b = BUF_INIT;
	int64_t snap;

	CHECK(m != NULL);
	if (!m)
		return;
	fresh_db("copy.db");
	model_init(m, 99);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(model_put_all(c, m), 0);
	for (int k = 0; k < 200; k++)
		CHECK_EQ(op(c, m), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	/* a running snapshot is in the file but not in what the copy shows */
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(cat_commit(c), 0);
	snprintf(copy, sizeof(copy), "%s/copy.cat", tmpdir);
	snprintf(back, sizeof(back), "%s/back.db", tmpdir);
	snprintf(junk, sizeof(junk), "%s/junk.cat", tmpdir);
	CHECK_EQ(cat_copy(c, copy), 0);
	CHECK_EQ(cat_validate(copy), 0);
	CHECK_EQ(cat_import(copy, back), 0);
	CHECK_EQ(cat_open(back, CAT_OPEN_READ, &r), 0);
	CHECK_EQ(cat_snapshot_latest(r, &snap), 0);
	CHECK_EQ(snap, 1);
	if (r)
		CHECK_EQ(verify(r, snap, m), 0);
	cat_close(r);
	r = NULL;

	/* damaged copies are errors, never crashes */
	CHECK_EQ(util_read_file(copy, &b, 64 << 20), 0);
	CHECK_EQ(util_write_file_atomic(junk, b.data, b.len / 2, 0600), 0);
	CHECK_EQ(cat_validate(junk), -EBADMSG);
	CHECK_EQ(cat_import(junk, back), -EBADMSG);
	CHECK_EQ(util_write_file_atomic(junk, "SQLite format 3", 16, 0600), 0);
	CHECK_EQ(cat_validate(junk), -EBADMSG);
	CHECK_EQ(util_write_file_atomic(junk, "hello", 5, 0600), 0);
	CHECK_EQ(cat_validate(junk), -EBADMSG);
	for (int i = 0; i < 30; i++) {
		struct model t = { .rng = (uint64_t)i + 1 };
		size_t at = 100 + rnd(&t) % (b.len - 100);
		int ret;

		b.data[at] ^= (char)(1 + rnd(&t) % 255);
		CHECK_EQ(util_write_file_atomic(junk, b.data, b.len, 0600), 0);
		ret = cat_validate(junk);
		CHECK(ret == 0 || ret == -EBADMSG);
		b.data[at] ^= 0; /* keep the damage: it accumulates */
	}
	/* the imported catalog was not touched by the failed imports */
	CHECK_EQ(cat_open(back, CAT_OPEN_READ, &r), 0);
	if (r)
		CHECK_EQ(verify(r, 1, m), 0);
	cat_close(r);
	cat_close(c);
	buf_release(&b);
	free(m);
}

/* ---- restore queue, contents for prune ---- */

static int count_cb(void *ctx, int64_t id, const void *desc, size_t len)
{
	int *n = ctx;

	(void)id;
	(void)desc;
	(void)len;
	(*n)++;
	return 0;
}

static int restore_cb(void *ctx, const struct cat_restore *e)
{
	int *n = ctx;

	(*n)++;
	return e->target ? 0 : -1;
}

static void test_restore_and_prune(void)
{
	struct cat *c = NULL, *r = NULL;
	struct cat_restore e = { 0 };
	struct cat_content ct;
	struct cat_item_in in = { .parent = CAT_ROOT,
				  .kind = CAT_KIND_FILE,
				  .name = "f" };
	unsigned char a[32] = { 'a' }, b[32] = { 'b' };
	int64_t id1, id2, id3, ca, cb, snap;
	int n = 0;

	fresh_db("restore.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &r), 0);
	CHECK_EQ(cat_restore_claim(r, &e), -ENOENT);
	CHECK_EQ(cat_restore_enqueue(r, "/restore/a", "/spool/1", 10, &id1), 0);
	CHECK_EQ(cat_restore_enqueue(r, "/restore/b", "/spool/2", 20, &id2), 0);
	CHECK_EQ(cat_restore_enqueue(c, "/restore/c", "/spool/3", 30, &id3), 0);
	CHECK_EQ(cat_restore_claim(r, &e), 0);
	CHECK_EQ(e.id, id1);
	CHECK_EQ(e.status, CAT_RESTORE_UPLOADING);
	CHECK_EQ(e.attempts, 1);
	CHECK_STR(e.spool, "/spool/1");
	cat_restore_release(&e);
	CHECK_EQ(cat_restore_update(r, id1, CAT_RESTORE_DONE, NULL, "01ABC"),
		 0);
	CHECK_EQ(cat_restore_update(r, 999, CAT_RESTORE_DONE, NULL, NULL),
		 -ENOENT);
	CHECK_EQ(cat_restore_claim(r, &e), 0);
	CHECK_EQ(e.id, id2);
	cat_restore_release(&e);
	CHECK_EQ(cat_restore_requeue(r, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(cat_restore_get(r, id2, &e), 0);
	CHECK_EQ(e.status, CAT_RESTORE_PENDING);
	CHECK_EQ(e.attempts, 1);
	cat_restore_release(&e);
	CHECK_EQ(cat_restore_update(r, id3, CAT_RESTORE_FAILED, "no space",
				    NULL),
		 0);
	CHECK_EQ(cat_restore_get(c, id3, &e), 0);
	CHECK_STR(e.reason, "no space");
	cat_restore_release(&e);
	CHECK_EQ(cat_restore_get(r, id1, &e), 0);
	CHECK_STR(e.remote_id, "01ABC");
	cat_restore_release(&e);
	n = 0;
	CHECK_EQ(cat_restore_list(r, restore_cb, &n), 0);
	CHECK_EQ(n, 3);

	/* contents: one used, one only by a failed run */
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(cat_content_put(c, 1, a, NULL, "A", 1, &ca), 0);
	in.content = ca;
	in.size = 1;
	CHECK_EQ(cat_item_put(c, &in, NULL, NULL), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(cat_content_put(c, 2, b, NULL, "B", 1, &cb), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_FAILED), 0);
	CHECK_EQ(cat_content_find_sha256(r, b, &ct), 0); /* survives */
	n = 0;
	CHECK_EQ(cat_content_referenced(r, false, count_cb, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(cat_content_referenced(r, true, count_cb, &n), -EROFS);
	n = 0;
	CHECK_EQ(cat_content_referenced(c, true, count_cb, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(cat_content_find_sha256(r, b, &ct), -ENOENT);
	CHECK_EQ(cat_content_find_sha256(r, a, &ct), 0);
	/* forgetting the only snapshot keeps current versions */
	CHECK_EQ(cat_snapshot_forget(c, 1), 0);
	CHECK_EQ(cat_snapshot_latest(r, &snap), -ENOENT);
	n = 0;
	CHECK_EQ(cat_content_referenced(c, true, count_cb, &n), 0);
	CHECK_EQ(n, 1);
	cat_close(r);
	cat_close(c);
}

/* ---- edges: identity, cycles, nested sweeps, tokens after forget ---- */

static int64_t mk(struct cat *c, int64_t parent, int kind, const char *name,
		  const char *gid)
{
	struct cat_item_in in = { .parent = parent,
				  .kind = kind,
				  .name = name,
				  .scope = gid ? "drive:e" : NULL,
				  .graph_id = gid };
	int64_t id = -1;

	CHECK_EQ(cat_item_put(c, &in, &id, NULL), 0);
	return id;
}

static void test_edges(void)
{
	struct cat *c = NULL;
	struct cat_item it;
	struct buf b = BUF_INIT;
	int64_t snap, top, d, f1, f2, x, y, n;
	struct cat_item_in in = { 0 };
	int res;

	fresh_db("edges.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	if (!c)
		return;
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(cat_snapshot_begin(c, &n), -EALREADY);
	top = mk(c, CAT_ROOT, CAT_KIND_TOP, "sites", NULL);
	/* without a graph id, (parent, name) is the identity */
	CHECK_EQ(mk(c, CAT_ROOT, CAT_KIND_TOP, "sites", NULL), top);
	d = mk(c, top, CAT_KIND_DRIVE, "Documents", "D");
	f1 = mk(c, d, CAT_KIND_FOLDER, "a", "F1");
	f2 = mk(c, f1, CAT_KIND_FOLDER, "b", "F2");
	x = mk(c, f2, CAT_KIND_FILE, "x", "X");
	y = mk(c, d, CAT_KIND_FILE, "y", "Y");
	CHECK_EQ(cat_delta_set(c, "drive:e", "t1"), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);

	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	/* a folder cannot move into its own subtree */
	in = (struct cat_item_in){ .parent = f2,
				   .kind = CAT_KIND_FOLDER,
				   .name = "a",
				   .scope = "drive:e",
				   .graph_id = "F1" };
	CHECK_EQ(cat_item_put(c, &in, NULL, NULL), -EINVAL);
	/* renaming onto a taken name is refused, elsewhere it works */
	in = (struct cat_item_in){ .parent = d,
				   .kind = CAT_KIND_FILE,
				   .name = "a",
				   .scope = "drive:e",
				   .graph_id = "Y" };
	CHECK_EQ(cat_item_put(c, &in, NULL, NULL), -EEXIST);
	in.name = "y2";
	CHECK_EQ(cat_item_put(c, &in, &n, &res), 0);
	CHECK_EQ(n, y);
	CHECK_EQ(res, CAT_PUT_CHANGED);
	/* deleted then seen again: the same item comes back */
	CHECK_EQ(cat_item_delete(c, x, &n), 0);
	CHECK_EQ(n, 1);
	CHECK_EQ(mk(c, f2, CAT_KIND_FILE, "x", "X"), x);
	/* nested sweeps: an item seen by the outer walk before the inner
	 * one began does not count for the inner one */
	CHECK_EQ(cat_sweep_begin(c, d), 0);
	CHECK_EQ(cat_item_touch(c, f1), 0);
	CHECK_EQ(cat_item_touch(c, f2), 0);
	CHECK_EQ(cat_item_touch(c, x), 0);
	CHECK_EQ(cat_sweep_begin(c, f1), 0);
	CHECK_EQ(cat_item_touch(c, f2), 0); /* x not seen again */
	CHECK_EQ(cat_sweep_end(c, f1, &n), 0);
	CHECK_EQ(n, 1); /* x */
	CHECK_EQ(cat_sweep_end(c, f1, &n), -EINVAL);
	CHECK_EQ(cat_sweep_end(c, d, &n), 0);
	CHECK_EQ(n, 1); /* y was not seen by the outer walk */
	CHECK_EQ(cat_lookup(c, CAT_SNAP_CURRENT, f2, "x", &it), -ENOENT);
	CHECK_EQ(cat_lookup(c, CAT_SNAP_CURRENT, d, "y2", &it), -ENOENT);
	CHECK_EQ(cat_lookup(c, CAT_SNAP_CURRENT, d, "a", &it), 0);
	CHECK_EQ(cat_delta_set(c, "drive:e", NULL), 0); /* 410: none */
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	CHECK_EQ(cat_delta_get(c, "drive:e", &b), -ENOENT);

	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(cat_delta_set(c, "drive:e", "t3"), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	/* forgetting the snapshot that holds the newest token keeps it */
	CHECK_EQ(cat_snapshot_forget(c, 3), 0);
	CHECK_EQ(cat_snapshot_forget(c, 3), -ENOENT);
	buf_reset(&b);
	CHECK_EQ(cat_delta_get(c, "drive:e", &b), 0);
	CHECK_STR(b.data, "t3");
	/* snapshot 1 still shows x and y where they were */
	CHECK_EQ(cat_lookup(c, 1, f2, "x", &it), 0);
	CHECK_EQ(cat_lookup(c, 1, d, "y", &it), 0);
	CHECK_EQ(cat_lookup(c, 2, d, "y2", &it), -ENOENT);
	CHECK_EQ(cat_snapshot_forget(c, 1), 0);
	CHECK_EQ(cat_lookup(c, 1, d, "y", &it), -ENOENT); /* gone for good */
	CHECK_EQ(cat_lookup(c, 2, d, "a", &it), 0);
	CHECK_EQ(cat_check(c, NULL, NULL, NULL), 0);
	buf_release(&b);
	cat_close(c);
}

/* ---- browse queries in held read transactions ---- */

/* busy flag of a TRUNCATE checkpoint through a connection of our own */
static int checkpoint_busy(void)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int busy = -1;

	if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL) ==
		    SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &q,
			       NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		busy = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return busy;
}

static void snap_with(struct cat *c, const char *name)
{
	int64_t snap;

	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	mk(c, CAT_ROOT, CAT_KIND_TOP, name, NULL);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
}

static void test_read_hold(void)
{
	struct cat *c = NULL, *r = NULL, *q = NULL;
	struct cat_item it;
	int64_t latest = 0, id = 0;

	fresh_db("hold.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &r), 0);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &q), 0);
	if (!c || !r || !q)
		return;
	snap_with(c, "sites");
	cat_set_read_hold(r, 600000); /* held for the whole test */
	CHECK_EQ(cat_lookup(r, 1, CAT_ROOT, "sites", &it), 0);
	snap_with(c, "onedrive");
	/* the other calls see the newest commit at once ... */
	CHECK_EQ(cat_snapshot_latest(r, &latest), 0);
	CHECK_EQ(latest, 2);
	/* ... a restore-queue write ends the held transaction first ... */
	CHECK_EQ(cat_restore_enqueue(r, "/restore/a", "/spool/1", 1, &id), 0);
	/* ... and a browse query holds a transaction again, begun before
	   the next snapshot commits */
	CHECK_EQ(cat_lookup(r, 2, CAT_ROOT, "onedrive", &it), 0);
	snap_with(c, "mailboxes");
	CHECK_EQ(cat_lookup(r, 3, CAT_ROOT, "mailboxes", &it), -ENOENT);
	CHECK_EQ(checkpoint_busy(), 1); /* the held reader pins the WAL */
	/* a content row is a browse query too (the daemon reads one at
	   each file): the transaction stays */
	CHECK_EQ(cat_content_get(r, 999, NULL, NULL), -ENOENT);
	CHECK_EQ(checkpoint_busy(), 1);
	cat_read_refresh(r);
	CHECK_EQ(cat_lookup(r, 3, CAT_ROOT, "mailboxes", &it), 0);
	cat_close(r);
	CHECK_EQ(checkpoint_busy(), 0);

	/* an idle held transaction ends by itself */
	cat_set_read_hold(q, 50);
	CHECK_EQ(cat_lookup(q, 3, CAT_ROOT, "mailboxes", &it), 0);
	snap_with(c, "more");
	for (int i = 0; i < 100 && checkpoint_busy() != 0; i++)
		usleep(20000);
	CHECK_EQ(checkpoint_busy(), 0);
	CHECK_EQ(cat_lookup(q, 4, CAT_ROOT, "more", &it), 0);
	cat_close(q);
	cat_close(c);
}

/* ---- a failing commit hook (store flush) loses the run, not data ---- */

static int hook_calls, hook_fail;

static int hook(void *ctx)
{
	(void)ctx;
	hook_calls++;
	return hook_fail ? -EIO : 0;
}

static void test_hook(void)
{
	struct cat *c = NULL;
	struct cat_item it;
	struct cat_snapshot s;
	int64_t snap, top;

	fresh_db("hook.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	if (!c)
		return;
	cat_set_commit_hook(c, hook, NULL);
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	top = mk(c, CAT_ROOT, CAT_KIND_TOP, "sites", NULL);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	CHECK(hook_calls >= 2); /* begin and finish at least */
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	mk(c, top, CAT_KIND_SITE_HOST, "a", NULL);
	hook_fail = 1;
	CHECK_EQ(cat_commit(c), -EIO);
	hook_fail = 0;
	{
		struct cat_item_in in = { .parent = top,
					  .kind = CAT_KIND_SITE_HOST,
					  .name = "b" };

		CHECK_EQ(cat_item_put(c, &in, NULL, NULL), -EIO);
	}
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), -EIO);
	CHECK_EQ(cat_snapshot_get(c, snap, &s), 0);
	CHECK_EQ(s.status, CAT_SNAP_FAILED);
	CHECK_EQ(cat_snapshot_latest(c, &snap), 0);
	CHECK_EQ(snap, 1);
	CHECK_EQ(cat_lookup(c, CAT_SNAP_CURRENT, top, "a", &it), -ENOENT);
	CHECK_EQ(cat_lookup(c, 1, CAT_ROOT, "sites", &it), 0);
	/* the next run works again */
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	mk(c, top, CAT_KIND_SITE_HOST, "c", NULL);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	CHECK_EQ(cat_lookup(c, snap, top, "c", &it), 0);
	CHECK_EQ(cat_check(c, NULL, NULL, NULL), 0);
	cat_close(c);
}

/* @n site hosts "@prefix0".. under @top; returns the hook calls made. */
static int put_hosts(struct cat *c, int64_t top, const char *prefix, int n)
{
	int before = hook_calls;
	char name[16];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%d", prefix, i);
		mk(c, top, CAT_KIND_SITE_HOST, name, NULL);
	}
	return hook_calls - before;
}

/* cat_set_batch(): a batch is committed (hook run) every N changes */
static void test_batch_size(void)
{
	struct cat *c = NULL;
	struct cat_item it;
	int64_t snap, top;

	fresh_db("batch.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	if (!c)
		return;
	cat_set_commit_hook(c, hook, NULL);
	cat_set_batch(c, 5, 600000); /* 5 rows; the timer never fires */
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	top = mk(c, CAT_ROOT, CAT_KIND_TOP, "sites", NULL);
	/* 25 changes since begin: 5 batches of 5 rows */
	CHECK_EQ(put_hosts(c, top, "h", 24), 5);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	CHECK_EQ(cat_lookup(c, snap, top, "h23", &it), 0);
	/* back to the default: 24 more rows make no batch commit */
	cat_set_batch(c, 0, 0);
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(put_hosts(c, top, "g", 24), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	cat_close(c);
}

/*
 * The writer's memory does not grow with the catalog: SQLite's memory
 * after 30 MB of items stays near its fixed page cache (8 MiB), as it
 * does after the first 2 MB.
 */
static void test_writer_memory(void)
{
	char name[48], gid[48], url[200];
	struct cat_kv kv[2] = { { "webUrl", url }, { "eTag", gid } };
	struct cat_item_in in = { .kind = CAT_KIND_FILE,
				  .name = name,
				  .scope = "drive:mem",
				  .graph_id = gid,
				  .size = 1000,
				  .meta = kv,
				  .nmeta = 2 };
	struct cat *c = NULL;
	sqlite3_int64 cur, hi, small = 0;
	int64_t snap, top, dir = 0, id;
	struct stat st;

	fresh_db("mem.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	if (!c)
		return;
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	top = mk(c, CAT_ROOT, CAT_KIND_TOP, "sites", NULL);
	for (int i = 0; i < 120000; i++) {
		if (i % 1000 == 0) {
			snprintf(name, sizeof(name), "folder %d", i / 1000);
			dir = mk(c, top, CAT_KIND_SITE_HOST, name, NULL);
		}
		snprintf(name, sizeof(name), "Document %07d.docx", i);
		snprintf(gid, sizeof(gid), "01MEM%030d", i * 7919);
		snprintf(url, sizeof(url),
			 "https://contoso.sharepoint.com/sites/mem/Shared%%20"
			 "Documents/folder%%20%d/Document%%20%07d.docx",
			 i / 1000, i);
		in.parent = dir;
		in.mtime_sec = 1700000000 + i;
		CHECK_EQ(cat_item_put(c, &in, &id, NULL), 0);
		if (i == 5000) {
			CHECK_EQ(cat_commit(c), 0);
			sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &small, &hi,
					 0);
		}
	}
	CHECK_EQ(cat_commit(c), 0);
	sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, 0);
	CHECK_EQ(stat(dbpath, &st), 0);
	CHECK(st.st_size > 30 * 1000 * 1000);
	if (cur > small + 12 * 1024 * 1024)
		fprintf(stderr,
			"sqlite memory %lld after 5,000 items, %lld "
			"after 120,000\n",
			(long long)small, (long long)cur);
	CHECK(cur <= small + 12 * 1024 * 1024);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	cat_close(c);
}

/* ---- restore enqueues while a writer process runs a snapshot ---- */

/* Entry @id of @r has @status (and @remote_id unless NULL). */
static void check_entry(struct cat *r, int64_t id, int status,
			const char *remote_id)
{
	struct cat_restore e = { 0 };

	CHECK_EQ(cat_restore_get(r, id, &e), 0);
	CHECK_EQ(e.status, status);
	if (remote_id)
		CHECK_STR(e.remote_id, remote_id);
	cat_restore_release(&e);
}

/* Small files kept with their entry; results recorded in one commit. */
static void test_restore_data_and_batch(void)
{
	struct cat *c = NULL, *r = NULL;
	struct cat_restore e = { 0 };
	struct buf b = BUF_INIT;
	char big[5000];
	int64_t id1, id2, id3;

	memset(big, 'x', sizeof(big));
	fresh_db("rdata.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	cat_close(c);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &r), 0);
	/* not ready yet: no data kept, no data found */
	CHECK_EQ(cat_restore_enqueue_data(r, "/r/a", "/s/a", "abc", 3, &id1),
		 -ENOTSUP);
	CHECK_EQ(cat_restore_data(r, 1, &b), -ENOENT);
	CHECK_EQ(cat_restore_data_init(r), 0);
	CHECK_EQ(cat_restore_data_init(r), 0); /* again: already there */
	CHECK_EQ(cat_restore_enqueue_data(r, "/r/a", "/s/a", "abc", 3, &id1),
		 0);
	CHECK_EQ(cat_restore_enqueue_data(r, "/r/b", "/s/b", big, sizeof(big),
					  &id2),
		 0);
	CHECK_EQ(cat_restore_enqueue(r, "/r/c", "/s/c", 7, &id3), 0);
	CHECK_EQ(cat_restore_data(r, id1, &b), 0);
	CHECK_EQ(b.len, 3u);
	CHECK(!memcmp(b.data, "abc", 3));
	buf_truncate(&b, 0);
	CHECK_EQ(cat_restore_data(r, id2, &b), 0);
	CHECK_EQ(b.len, sizeof(big));
	CHECK(!memcmp(b.data, big, sizeof(big)));
	CHECK_EQ(cat_restore_data(r, id3, &b), -ENOENT);
	CHECK_EQ(cat_restore_get(r, id2, &e), 0);
	CHECK_EQ(e.size, (int64_t)sizeof(big));
	CHECK_STR(e.spool, "/s/b");
	CHECK_EQ(e.status, CAT_RESTORE_PENDING);
	cat_restore_release(&e);

	/* a batch: all or nothing; done drops the data, failed keeps it */
	{
		struct cat_restore_set bad[] = {
			{ id1, CAT_RESTORE_DONE, "", "X1" },
			{ id2, 9, NULL, NULL },
		};
		struct cat_restore_set v[] = {
			{ id1, CAT_RESTORE_DONE, "", "X1" },
			{ 999, CAT_RESTORE_DONE, NULL,
			  NULL }, /* gone: skipped */
			{ id2, CAT_RESTORE_FAILED, "no space", NULL },
			{ id3, CAT_RESTORE_DONE, NULL, "X3" },
		};

		CHECK_EQ(cat_restore_update_many(r, bad, 2, true), -EINVAL);
		CHECK_EQ(cat_restore_get(r, id1, &e), 0);
		CHECK_EQ(e.status, CAT_RESTORE_PENDING);
		cat_restore_release(&e);
		CHECK_EQ(cat_restore_update_many(r, v, 4, true), 0);
	}
	check_entry(r, id1, CAT_RESTORE_DONE, "X1");
	CHECK_EQ(cat_restore_get(r, id2, &e), 0);
	CHECK_EQ(e.status, CAT_RESTORE_FAILED);
	CHECK_STR(e.reason, "no space");
	cat_restore_release(&e);
	check_entry(r, id3, CAT_RESTORE_DONE, NULL);
	buf_truncate(&b, 0);
	CHECK_EQ(cat_restore_data(r, id1, &b), -ENOENT);
	CHECK_EQ(cat_restore_data(r, id2, &b), 0); /* to retry it */
	CHECK_EQ(b.len, sizeof(big));
	buf_release(&b);
	cat_close(r);
	/* a writer of the same file still opens it */
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE, &c), 0);
	cat_close(c);
}

/*
 * A default SQLite VFS that counts flushes to disk (xSync) and writes to
 * the database file: the unix VFS with the method tables of its files
 * (one for the database, one for its journals) copied, xSync and xWrite
 * counted.
 */
static sqlite3_vfs *real_vfs, count_vfs;
static struct {
	const sqlite3_io_methods *real;
	sqlite3_io_methods copy;
	bool main_db; /* the database file's (not a journal's) */
} count_io[4];
static int syncs;
/* writes to the database file (checkpoints) by this thread, by others */
static int db_writes_here, db_writes_other;
static pthread_t test_thread;

/* The method table entry of @f. */
static size_t io_of(const sqlite3_file *f)
{
	size_t i;

	for (i = 0; &count_io[i].copy != f->pMethods; i++)
		;
	return i;
}

static int count_sync(sqlite3_file *f, int flags)
{
	__atomic_add_fetch(&syncs, 1, __ATOMIC_RELAXED);
	return count_io[io_of(f)].real->xSync(f, flags);
}

static int count_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	size_t i = io_of(f);

	if (count_io[i].main_db)
		__atomic_add_fetch(pthread_equal(pthread_self(), test_thread)
					   ? &db_writes_here
					   : &db_writes_other,
				   1, __ATOMIC_RELAXED);
	return count_io[i].real->xWrite(f, p, n, off);
}

static int count_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f,
		      int flags, int *out)
{
	int rc = real_vfs->xOpen(real_vfs, name, f, flags, out);
	size_t i;

	(void)v;
	if (rc != SQLITE_OK || !f->pMethods)
		return rc;
	for (i = 0; i < 4; i++) {
		if (!count_io[i].real) { /* tests run in one thread */
			count_io[i].real = f->pMethods;
			count_io[i].copy = *f->pMethods;
			count_io[i].copy.xSync = count_sync;
			count_io[i].copy.xWrite = count_write;
			count_io[i].main_db = flags & SQLITE_OPEN_MAIN_DB;
		}
		if (count_io[i].real == f->pMethods) {
			f->pMethods = &count_io[i].copy;
			break;
		}
	}
	return rc;
}

/* Make the counting VFS the default (count_vfs_off() undoes it). */
static bool count_vfs_on(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	CHECK(real_vfs != NULL);
	if (!real_vfs)
		return false;
	count_vfs = *real_vfs;
	count_vfs.zName = "m365-count-sync";
	count_vfs.xOpen = count_open;
	test_thread = pthread_self();
	CHECK_EQ(sqlite3_vfs_register(&count_vfs, 1), SQLITE_OK);
	return true;
}

static void count_vfs_off(void)
{
	sqlite3_vfs_unregister(&count_vfs);
	sqlite3_vfs_register(real_vfs, 1);
}

/* Results recorded lazily are not flushed, and leave the connection
 * flushing the next enqueue; durable ones are flushed. */
static void test_restore_batch_durable(void)
{
	struct cat *c = NULL, *r = NULL;
	int64_t id1, id2, id3;
	int before;

	if (!count_vfs_on())
		return;
	fresh_db("durable.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	cat_close(c);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &r), 0);
	CHECK_EQ(cat_restore_data_init(r), 0);
	before = syncs;
	CHECK_EQ(cat_restore_enqueue_data(r, "/r/a", "/s/a", "abc", 3, &id1),
		 0);
	CHECK(syncs > before); /* the check works: an enqueue is flushed */
	CHECK_EQ(cat_restore_enqueue_data(r, "/r/b", "/s/b", "de", 2, &id2), 0);
	{
		struct cat_restore_set v[] = {
			{ id1, CAT_RESTORE_DONE, "", "X1" },
		};
		struct cat_restore_set w[] = {
			{ id2, CAT_RESTORE_DONE, "", "X2" },
		};

		before = syncs;
		CHECK_EQ(cat_restore_update_many(r, v, 1, false), 0);
		CHECK_EQ(syncs, before);
		/* the same pooled connection flushes the next enqueue */
		CHECK_EQ(cat_restore_enqueue_data(r, "/r/c", "/s/c", "f", 1,
						  &id3),
			 0);
		CHECK(syncs > before);
		before = syncs;
		CHECK_EQ(cat_restore_update_many(r, w, 1, true), 0);
		CHECK(syncs > before);
	}
	cat_close(r);
	/* committed all the same: another process sees it */
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &r), 0);
	check_entry(r, id1, CAT_RESTORE_DONE, "X1");
	check_entry(r, id2, CAT_RESTORE_DONE, "X2");
	check_entry(r, id3, CAT_RESTORE_PENDING, NULL);
	cat_close(r);
	count_vfs_off();
}

/* Enqueues never checkpoint (copy the WAL into the database file)
 * themselves: the checkpointer thread does. */
static void test_restore_checkpoint(void)
{
	struct cat *c = NULL, *r = NULL;
	char data[3000];
	int64_t id = 0;
	int i;

	if (!count_vfs_on())
		return;
	memset(data, 'd', sizeof(data));
	fresh_db("ckpt.db");
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	cat_close(c);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &r), 0);
	CHECK_EQ(cat_restore_data_init(r), 0);
	db_writes_here = db_writes_other = 0;
	/* some 2 WAL pages each: SQLite would checkpoint at 1000 */
	for (i = 0; i < 1200; i++)
		CHECK_EQ(cat_restore_enqueue_data(r, "/r/a", "/s/a", data,
						  sizeof(data), &id),
			 0);
	for (i = 0;
	     i < 500 && !__atomic_load_n(&db_writes_other, __ATOMIC_RELAXED);
	     i++)
		usleep(10 * 1000);
	/* the checkpoint thread may still be writing: atomic reads */
	CHECK(__atomic_load_n(&db_writes_other, __ATOMIC_RELAXED) > 0);
	CHECK_EQ(__atomic_load_n(&db_writes_here, __ATOMIC_RELAXED), 0);
	check_entry(r, id, CAT_RESTORE_PENDING, NULL);
	cat_close(r);
	count_vfs_off();
}

static void test_restore_during_run(void)
{
	struct cat *c = NULL, *r = NULL;
	struct model *m = malloc(sizeof(*m));
	int p1[2], status, ok = 0;
	int64_t snap, t0, worst = 0;
	char ch;
	pid_t pid;

	fresh_db("busy.db");
	CHECK(m != NULL);
	if (!m)
		return;
	model_init(m, 31337);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	CHECK_EQ(cat_snapshot_begin(c, &snap), 0);
	CHECK_EQ(model_put_all(c, m), 0);
	CHECK_EQ(cat_snapshot_finish(c, CAT_SNAP_COMPLETE), 0);
	cat_close(c);
	c = NULL;
	CHECK_EQ(pipe(p1), 0);
	pid = fork();
	if (pid == 0) {
		int rc = 1;

		/* a busy writer: many small batches for three seconds */
		if (cat_open(dbpath, CAT_OPEN_WRITE, &c) == 0 &&
		    cat_snapshot_begin(c, &snap) == 0) {
			int64_t end = util_mono_ms() + 3000;

			rc = write(p1[1], "s", 1) == 1 ? 0 : 2;
			while (!rc && util_mono_ms() < end) {
				for (int k = 0; k < 20 && !rc; k++)
					rc = op(c, m) < 0 ? 3 : 0;
				if (!rc)
					rc = cat_commit(c) ? 4 : 0;
			}
			if (!rc)
				rc = cat_snapshot_finish(c, CAT_SNAP_COMPLETE)
					     ? 5
					     : 0;
		}
		cat_close(c);
		_exit(rc);
	}
	CHECK_EQ(read(p1[0], &ch, 1), 1);
	CHECK_EQ(cat_open(dbpath, CAT_OPEN_READ, &r), 0);
	for (int i = 0; i < 40 && r; i++) {
		char t[32];

		snprintf(t, sizeof(t), "/restore/f%d", i);
		t0 = util_mono_ms();
		ok += cat_restore_enqueue(r, t, "/spool/x", i, NULL) == 0;
		if (util_mono_ms() - t0 > worst)
			worst = util_mono_ms() - t0;
		usleep(20000);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ(ok, 40);
	/* a batch lasts at most 0.5 s: nobody waits for the whole run */
	CHECK(worst < 2000);
	fprintf(stderr, "40 enqueues beside a busy writer, slowest %lld ms\n",
		(long long)worst);
	CHECK_EQ(cat_snapshot_latest(r, &snap), 0);
	CHECK_EQ(snap, 2);
	cat_close(r);
	close(p1[0]);
	close(p1[1]);
	free(m);
}

static int rm_cb(const char *path, const struct stat *st, int flag,
		 struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	int ret;

	log_init("test_catalog", LOG_ERR);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return CHECK_SKIP;
	}
	RUN(test_basic);
	RUN(test_model);
	RUN(test_edges);
	RUN(test_read_hold);
	RUN(test_hook);
	RUN(test_batch_size);
	RUN(test_writer_memory);
	RUN(test_killed);
	RUN(test_reader_process);
	RUN(test_threads);
	RUN(test_copy);
	RUN(test_restore_and_prune);
	RUN(test_restore_during_run);
	RUN(test_restore_data_and_batch);
	RUN(test_restore_batch_durable);
	RUN(test_restore_checkpoint);
	ret = check_done();
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return ret;
}
