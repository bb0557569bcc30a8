/*
 * test_catalog - the catalog against a brute-force in-memory model:
 * random create/modify/rename/move/delete/sweep/forget sequences, killed
 * writers, readers in another process and in many threads, copies,
 * contents, delta tokens and the restore queue.
 */
#include "catalog/catalog.h"

#include <errno.h>
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
		if (c && rndn(m, 2))
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

int main(void)
{
	log_init("test_catalog", LOG_ERR);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return CHECK_SKIP;
	}
	RUN(test_basic);
	RUN(test_model);
	return check_done();
}
