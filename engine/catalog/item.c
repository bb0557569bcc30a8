/*
 * item.c - versioned items: the writer's put/delete/sweep and the
 * readers' lookup, getattr, listing and metadata.
 */
#include "catalog/cat_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/util.h"

bool cat_kind_is_dir(int kind)
{
	return kind != CAT_KIND_FILE && kind != CAT_KIND_MESSAGE;
}

static bool kind_valid(int kind)
{
	return kind >= CAT_KIND_TOP && kind <= CAT_KIND_MESSAGE;
}

/* Columns as in VER_COLS (db.c), starting at @col. */
void cat_item_read(sqlite3_stmt *q, int col, struct cat_item *it)
{
	const unsigned char *name;
	int n;

	it->id = sqlite3_column_int64(q, col + 0);
	it->parent = sqlite3_column_int64(q, col + 1);
	it->from_snap = sqlite3_column_int64(q, col + 2);
	it->to_snap = sqlite3_column_int64(q, col + 3); /* NULL -> 0 */
	it->kind = sqlite3_column_int(q, col + 4);
	it->size = sqlite3_column_int64(q, col + 5);
	it->mtime_sec = sqlite3_column_int64(q, col + 6);
	it->mtime_nsec = sqlite3_column_int(q, col + 7);
	it->btime_sec = sqlite3_column_int64(q, col + 8);
	it->btime_nsec = sqlite3_column_int(q, col + 9);
	it->content = sqlite3_column_int64(q, col + 10);
	name = sqlite3_column_text(q, col + 11);
	n = sqlite3_column_bytes(q, col + 11);
	if (!name || n < 0)
		n = 0;
	if (n > CAT_NAME_MAX)
		n = CAT_NAME_MAX; /* only a damaged catalog has these */
	memcpy(it->name, name ? (const char *)name : "", (size_t)n);
	it->name[n] = '\0';
}

/* Step @q once: 0 with *@it filled, -ENOENT, or an error. Resets @q. */
static int step_item(struct conn *k, sqlite3_stmt *q, struct cat_item *it,
		     const char *what)
{
	int rc = sqlite3_step(q), ret = 0;

	if (rc == SQLITE_ROW)
		cat_item_read(q, 0, it);
	else if (rc == SQLITE_DONE)
		ret = -ENOENT;
	else
		ret = cat_errno(k->db, rc, what);
	sqlite3_reset(q);
	return ret;
}

static int cur_by_id(struct conn *k, int64_t id, struct cat_item *it)
{
	sqlite3_stmt *q;
	int ret = cat_stmt(k, Q_CUR_BY_ID, &q);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, id);
	return step_item(k, q, it, "read current item");
}

static int cur_by_name(struct conn *k, int64_t parent, const char *name,
		       struct cat_item *it)
{
	sqlite3_stmt *q;
	int ret = cat_stmt(k, Q_CUR_BY_NAME, &q);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, parent);
	sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
	return step_item(k, q, it, "look up current item");
}

/* Run cached statement @qi with int64 binds (then an optional text). */
static int run_q(struct conn *k, enum cat_q qi, int n, const int64_t *v,
		 const char *what)
{
	sqlite3_stmt *q;
	int rc, ret = cat_stmt(k, qi, &q);

	if (ret < 0)
		return ret;
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(q, i + 1, v[i]);
	rc = sqlite3_step(q);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = cat_errno(k->db, rc, what);
	sqlite3_reset(q);
	return ret;
}

int cat_scope_id(struct cat *c, struct conn *k, const char *name, bool create,
		 int64_t *sid)
{
	sqlite3_stmt *q;
	int rc, ret;

	if (c->writer && c->scope_name && !strcmp(c->scope_name, name)) {
		*sid = c->scope_sid;
		return 0;
	}
	ret = cat_stmt(k, Q_SCOPE_GET, &q);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*sid = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE && !create)
		return -ENOENT;
	if (rc == SQLITE_DONE) {
		ret = cat_stmt(k, Q_SCOPE_PUT, &q);
		if (ret < 0)
			return ret;
		sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(q);
		sqlite3_reset(q);
		*sid = sqlite3_last_insert_rowid(k->db);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return cat_errno(k->db, rc, "scope");
	if (c->writer) {
		char *s = strdup(name);

		if (s) {
			free(c->scope_name);
			c->scope_name = s;
			c->scope_sid = *sid;
		}
	}
	return 0;
}

static int gid_get(struct conn *k, int64_t sid, const char *gid, int64_t *id)
{
	sqlite3_stmt *q;
	int rc, ret = cat_stmt(k, Q_GID_GET, &q);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, sid);
	sqlite3_bind_text(q, 2, gid, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(q, 0);
	else if (rc == SQLITE_DONE)
		ret = -ENOENT;
	else
		ret = cat_errno(k->db, rc, "look up graph id");
	sqlite3_reset(q);
	return ret;
}

static int gid_put(struct conn *k, int64_t sid, const char *gid, int64_t id)
{
	sqlite3_stmt *q;
	int rc, ret = cat_stmt(k, Q_GID_PUT, &q);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, sid);
	sqlite3_bind_text(q, 2, gid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, id);
	rc = sqlite3_step(q);
	if (rc != SQLITE_DONE)
		ret = cat_errno(k->db, rc, "record graph id");
	sqlite3_reset(q);
	return ret;
}

/* The cold part of a version: metadata blob and message text columns. */
struct cold {
	struct buf kv;
	char *subject, *sender; /* borrowed from the caller or owned below */
	bool own;
};

static void cold_release(struct cold *m)
{
	buf_release(&m->kv);
	if (m->own) {
		free(m->subject);
		free(m->sender);
	}
	m->subject = m->sender = NULL;
}

static int cold_encode(const struct cat_item_in *in, struct cold *m)
{
	int ret;

	for (size_t i = 0; i < in->nmeta; i++) {
		const struct cat_kv *p = &in->meta[i];

		if (!p->key || !*p->key)
			return -EINVAL;
		if (!p->val)
			continue;
		if (in->kind == CAT_KIND_MESSAGE &&
		    !strcmp(p->key, CAT_META_SUBJECT)) {
			m->subject = (char *)p->val;
			continue;
		}
		if (in->kind == CAT_KIND_MESSAGE &&
		    !strcmp(p->key, CAT_META_FROM)) {
			m->sender = (char *)p->val;
			continue;
		}
		ret = buf_add(&m->kv, p->key, strlen(p->key) + 1);
		if (ret == 0)
			ret = buf_add(&m->kv, p->val, strlen(p->val) + 1);
		if (ret < 0)
			return ret;
	}
	return 0;
}

static char *col_dup(sqlite3_stmt *q, int i)
{
	const unsigned char *s = sqlite3_column_text(q, i);

	return s ? strdup((const char *)s) : NULL;
}

/* Read the cold part of version (@id, @fsnap) into @m (owned copies). */
static int cold_read(struct conn *k, int64_t id, int64_t fsnap, struct cold *m)
{
	sqlite3_stmt *q;
	int rc, ret;

	m->own = true;
	ret = cat_stmt(k, Q_VMETA_GET, &q);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, fsnap);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		ret = buf_add(&m->kv, sqlite3_column_blob(q, 0),
			      (size_t)sqlite3_column_bytes(q, 0));
	else if (rc != SQLITE_DONE)
		ret = cat_errno(k->db, rc, "read metadata");
	sqlite3_reset(q);
	if (ret < 0)
		return ret;
	ret = cat_stmt(k, Q_MSG_GET, &q);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, fsnap);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		m->subject = col_dup(q, 0);
		m->sender = col_dup(q, 1);
	} else if (rc != SQLITE_DONE) {
		ret = cat_errno(k->db, rc, "read message text");
	}
	sqlite3_reset(q);
	return ret;
}

static bool str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return !strcmp(a, b);
}

static bool cold_eq(const struct cold *a, const struct cold *b)
{
	return a->kv.len == b->kv.len &&
	       !memcmp(a->kv.data, b->kv.data, a->kv.len) &&
	       str_eq(a->subject, b->subject) && str_eq(a->sender, b->sender);
}

/*
 * Write the cold part of the new version (@id, @fsnap).  No older rows of
 * that key exist: ver_end() removed those of a version this run replaced.
 */
static int cold_write(struct conn *k, int64_t id, int64_t fsnap,
		      const struct cold *m)
{
	sqlite3_stmt *q;
	int rc, ret;

	if (m->kv.len) {
		ret = cat_stmt(k, Q_VMETA_PUT, &q);
		if (ret < 0)
			return ret;
		sqlite3_bind_int64(q, 1, id);
		sqlite3_bind_int64(q, 2, fsnap);
		sqlite3_bind_blob(q, 3, m->kv.data, (int)m->kv.len,
				  SQLITE_STATIC);
		rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (rc != SQLITE_DONE)
			return cat_errno(k->db, rc, "write metadata");
	}
	if (!m->subject && !m->sender)
		return 0;
	ret = cat_stmt(k, Q_MSG_PUT, &q);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, fsnap);
	if (m->subject)
		sqlite3_bind_text(q, 3, m->subject, -1, SQLITE_STATIC);
	if (m->sender)
		sqlite3_bind_text(q, 4, m->sender, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_clear_bindings(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return cat_errno(k->db, rc, "write message text");
	return 0;
}

static int ver_insert(struct conn *k, const struct cat_item_in *in, int64_t id,
		      int64_t snap)
{
	sqlite3_stmt *q;
	int rc, ret = cat_stmt(k, Q_VER_INSERT, &q);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, in->parent);
	sqlite3_bind_text(q, 2, in->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, snap);
	sqlite3_bind_int64(q, 4, id);
	sqlite3_bind_int(q, 5, in->kind);
	sqlite3_bind_int64(q, 6, in->size);
	sqlite3_bind_int64(q, 7, in->mtime_sec);
	sqlite3_bind_int(q, 8, in->mtime_nsec);
	sqlite3_bind_int64(q, 9, in->btime_sec);
	sqlite3_bind_int(q, 10, in->btime_nsec);
	if (in->content)
		sqlite3_bind_int64(q, 11, in->content);
	else
		sqlite3_bind_null(q, 11);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return cat_errno(k->db, rc, "write item version");
	return 0;
}

/* End (or, when written by this run, remove) the current version @cur. */
static int ver_end(struct cat *c, struct conn *k, const struct cat_item *cur)
{
	sqlite3_stmt *q;
	enum cat_q qi = cur->from_snap == c->snap ? Q_VER_DEL : Q_VER_END;
	int64_t v[2] = { cur->id, cur->from_snap };
	int rc, ret = cat_stmt(k, qi, &q);

	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, cur->parent);
	sqlite3_bind_text(q, 2, cur->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, cur->from_snap);
	if (qi == Q_VER_END)
		sqlite3_bind_int64(q, 4, c->snap);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return cat_errno(k->db, rc, "end item version");
	if (qi == Q_VER_END)
		return 0;
	ret = run_q(k, Q_VMETA_DEL, 2, v, "delete metadata");
	if (ret == 0)
		ret = run_q(k, Q_MSG_DEL, 2, v, "delete message text");
	return ret;
}

/* Record that the run touched @id (rollback) and saw it (sweeps). */
static int mark(struct cat *c, struct conn *k, int64_t id, bool changed)
{
	int ret = 0;

	if (changed)
		ret = run_q(k, Q_RUNLOG_PUT, 1, &id, "journal item");
	if (ret == 0 && c->nsweeps) {
		int64_t v[2] = { id, c->sweep_gen };

		ret = run_q(k, Q_SEEN_PUT, 2, v, "mark item seen");
	}
	return ret;
}

static bool name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n > 0 && n <= CAT_NAME_MAX && !strchr(name, '/') &&
	       strcmp(name, ".") && strcmp(name, "..");
}

/* Is @anc an ancestor of (or equal to) @id among current items? */
static int is_ancestor(struct conn *k, int64_t anc, int64_t id, bool *yes)
{
	struct cat_item it;
	int ret, depth = 0;

	*yes = false;
	while (id != CAT_ROOT && depth++ < 10000) {
		if (id == anc) {
			*yes = true;
			return 0;
		}
		ret = cur_by_id(k, id, &it);
		if (ret == -ENOENT)
			return 0;
		if (ret < 0)
			return ret;
		id = it.parent;
	}
	return 0;
}

int cat_item_put(struct cat *c, const struct cat_item_in *in, int64_t *idp,
		 int *result)
{
	struct conn *k;
	struct cold nw = { BUF_INIT, NULL, NULL, false };
	struct cold old = { BUF_INIT, NULL, NULL, true };
	struct cat_item cur, other;
	bool have_cur = false, by_gid, cycle;
	int64_t id = 0, sid = 0;
	int ret, res;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	if (!name_valid(in->name) || !kind_valid(in->kind) ||
	    (!in->scope != !in->graph_id) || in->size < 0) {
		log_err("catalog: bad item '%s' (kind %d) given to put",
			in->name ? in->name : "(null)", in->kind);
		return -EINVAL;
	}
	by_gid = in->graph_id != NULL;
	k = cat_conn_get(c);
	ret = cat_wbegin(c, true);
	if (ret < 0)
		goto out;
	if (in->parent != CAT_ROOT && in->parent != c->parent_ok) {
		ret = cur_by_id(k, in->parent, &other);
		if (ret == 0 && !cat_kind_is_dir(other.kind))
			ret = -ENOENT;
		if (ret < 0)
			goto out;
		c->parent_ok = in->parent;
	}
	ret = cold_encode(in, &nw);
	if (ret < 0)
		goto out;
	if (by_gid) {
		ret = cat_scope_id(c, k, in->scope, true, &sid);
		if (ret == 0)
			ret = gid_get(k, sid, in->graph_id, &id);
		if (ret == 0) {
			ret = cur_by_id(k, id, &cur);
			have_cur = ret == 0;
		}
		if (ret < 0 && ret != -ENOENT)
			goto out;
	}
	ret = cur_by_name(k, in->parent, in->name, &other);
	if (ret == 0) {
		if (!by_gid) {
			id = other.id;
			cur = other;
			have_cur = true;
		} else if (other.id != id) {
			ret = -EEXIST;
			goto out;
		}
	} else if (ret != -ENOENT) {
		goto out;
	}
	if (id &&
	    (in->parent == id || (have_cur && cur.parent != in->parent))) {
		ret = is_ancestor(k, id, in->parent, &cycle);
		if (ret < 0)
			goto out;
		if (cycle) {
			log_err("catalog: moving item %lld into its own subtree",
				(long long)id);
			ret = -EINVAL;
			goto out;
		}
	}
	if (!id) {
		id = c->next_id++;
		if (by_gid) {
			ret = gid_put(k, sid, in->graph_id, id);
			if (ret < 0)
				goto out;
		}
	}
	res = CAT_PUT_NEW;
	if (have_cur) {
		ret = cold_read(k, id, cur.from_snap, &old);
		if (ret < 0)
			goto out;
		if (cur.parent == in->parent && cur.kind == in->kind &&
		    !strcmp(cur.name, in->name) && cur.size == in->size &&
		    cur.mtime_sec == in->mtime_sec &&
		    cur.mtime_nsec == in->mtime_nsec &&
		    cur.btime_sec == in->btime_sec &&
		    cur.btime_nsec == in->btime_nsec &&
		    cur.content == in->content && cold_eq(&old, &nw)) {
			res = CAT_PUT_UNCHANGED;
			ret = mark(c, k, id, false);
			goto done;
		}
		ret = ver_end(c, k, &cur);
		if (ret < 0)
			goto out;
		res = CAT_PUT_CHANGED;
	}
	ret = ver_insert(k, in, id, c->snap);
	if (ret == 0)
		ret = cold_write(k, id, c->snap, &nw);
	if (ret == 0)
		ret = mark(c, k, id, true);
	if (ret < 0)
		goto out;
	if (id == c->parent_ok && !cat_kind_is_dir(in->kind))
		c->parent_ok = 0;
	ret = cat_note_change(c);
done:
	if (ret == 0) {
		if (idp)
			*idp = id;
		if (result)
			*result = res;
	}
out:
	cold_release(&nw);
	cold_release(&old);
	cat_conn_put(c, k);
	return ret;
}

int cat_item_touch(struct cat *c, int64_t id)
{
	struct conn *k;
	struct cat_item cur;
	int ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	k = cat_conn_get(c);
	ret = cat_wbegin(c, true);
	if (ret == 0)
		ret = cur_by_id(k, id, &cur);
	if (ret == 0)
		ret = mark(c, k, id, false);
	cat_conn_put(c, k);
	return ret;
}

/*
 * Current ids of the subtree of @root (itself included) into @ids; with
 * @unseen_since > 0 only those below @root not seen since that sweep
 * generation.
 */
static int subtree(struct conn *k, int64_t root, int64_t unseen_since,
		   int64_t **ids, size_t *n)
{
	static const char *const sql[2] = {
		"WITH RECURSIVE sub(id) AS (SELECT ?1 UNION SELECT v.id FROM "
		"ver v JOIN sub ON v.parent = sub.id WHERE v.tsnap IS NULL) "
		"SELECT id FROM sub",
		"WITH RECURSIVE sub(id) AS (SELECT ?1 UNION SELECT v.id FROM "
		"ver v JOIN sub ON v.parent = sub.id WHERE v.tsnap IS NULL) "
		"SELECT id FROM sub WHERE id != ?1 AND id NOT IN "
		"(SELECT id FROM temp.seen WHERE gen >= ?2)",
	};
	int64_t v[2] = { root, unseen_since };

	return cat_ids(k->db, sql[unseen_since > 0], unseen_since > 0 ? 2 : 1,
		       v, ids, n);
}

/* End item @id and its current descendants (writer lock held). */
int cat_end_subtree(struct cat *c, int64_t id, int64_t *count)
{
	struct conn *k = c->w;
	struct cat_item cur;
	int64_t *ids = NULL;
	size_t n = 0;
	int ret;

	ret = cur_by_id(k, id, &cur);
	if (ret < 0)
		return ret;
	ret = subtree(k, id, 0, &ids, &n);
	for (size_t i = 0; i < n && ret == 0; i++) {
		ret = cur_by_id(k, ids[i], &cur);
		if (ret == -ENOENT) {
			ret = 0;
			continue;
		}
		if (ret == 0)
			ret = ver_end(c, k, &cur);
		if (ret == 0)
			ret = mark(c, k, ids[i], true);
		if (ret == 0) {
			(*count)++;
			ret = cat_note_change(c);
		}
	}
	c->parent_ok = 0;
	free(ids);
	return ret;
}

int cat_item_delete(struct cat *c, int64_t id, int64_t *count)
{
	struct conn *k;
	int64_t n = 0;
	int ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	if (id == CAT_ROOT)
		return -EINVAL;
	k = cat_conn_get(c);
	ret = cat_wbegin(c, true);
	if (ret == 0)
		ret = cat_end_subtree(c, id, &n);
	if (count)
		*count = n;
	cat_conn_put(c, k);
	return ret;
}

int cat_item_find(struct cat *c, const char *scope, const char *graph_id,
		  struct cat_item *out)
{
	struct conn *k;
	int64_t sid, id;
	int ret;

	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	ret = cat_scope_id(c, k, scope, false, &sid);
	if (ret == 0)
		ret = gid_get(k, sid, graph_id, &id);
	if (ret == 0)
		ret = cur_by_id(k, id, out);
	cat_conn_put(c, k);
	return ret;
}

int cat_sweep_begin(struct cat *c, int64_t root)
{
	struct conn *k;
	struct cat_item it;
	struct sweep *p;
	int ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	k = cat_conn_get(c);
	ret = c->snap ? 0 : -EINVAL;
	if (ret == 0 && root != CAT_ROOT)
		ret = cur_by_id(k, root, &it);
	if (ret < 0)
		goto out;
	p = realloc(c->sweeps, (c->nsweeps + 1) * sizeof(*p));
	if (!p) {
		ret = -ENOMEM;
		goto out;
	}
	c->sweeps = p;
	c->sweeps[c->nsweeps].root = root;
	c->sweeps[c->nsweeps++].gen = ++c->sweep_gen;
out:
	cat_conn_put(c, k);
	return ret;
}

int cat_sweep_end(struct cat *c, int64_t root, int64_t *count)
{
	struct conn *k;
	int64_t *ids = NULL, n = 0;
	size_t nids = 0, i;
	int ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	k = cat_conn_get(c);
	for (i = 0; i < c->nsweeps && c->sweeps[i].root != root; i++)
		;
	if (i == c->nsweeps) {
		ret = -EINVAL;
		log_err("catalog: no sweep of item %lld is active",
			(long long)root);
		goto out;
	}
	ret = cat_wbegin(c, true);
	if (ret == 0)
		ret = subtree(k, root, c->sweeps[i].gen, &ids, &nids);
	for (i = 0; i < nids && ret == 0; i++) {
		ret = cat_end_subtree(c, ids[i], &n);
		if (ret == -ENOENT) /* ended with an ancestor */
			ret = 0;
	}
	if (ret < 0)
		goto out;
	for (i = 0; i < c->nsweeps && c->sweeps[i].root != root; i++)
		;
	c->sweeps[i] = c->sweeps[--c->nsweeps];
	if (count)
		*count = n;
out:
	free(ids);
	cat_conn_put(c, k);
	return ret;
}

/* ---- readers ---- */

int cat_lookup(struct cat *c, int64_t snap, int64_t parent, const char *name,
	       struct cat_item *out)
{
	struct conn *k;
	sqlite3_stmt *q;
	int ret;

	k = cat_conn_browse(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, Q_LOOKUP, &q);
	if (ret == 0) {
		sqlite3_bind_int64(q, 1, parent);
		sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 3, snap);
		ret = step_item(k, q, out, "lookup");
	}
	cat_conn_put(c, k);
	return ret;
}

int cat_item_get(struct cat *c, int64_t snap, int64_t id, struct cat_item *out)
{
	struct conn *k;
	sqlite3_stmt *q;
	int ret;

	if (id == CAT_ROOT) {
		memset(out, 0, sizeof(*out));
		out->id = CAT_ROOT;
		out->parent = CAT_ROOT;
		out->kind = CAT_KIND_TOP;
		return 0;
	}
	k = cat_conn_browse(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, Q_GET, &q);
	if (ret == 0) {
		sqlite3_bind_int64(q, 1, id);
		sqlite3_bind_int64(q, 2, snap);
		ret = step_item(k, q, out, "read item");
	}
	cat_conn_put(c, k);
	return ret;
}

int cat_list(struct cat *c, int64_t snap, int64_t parent, const char *after,
	     cat_list_cb cb, void *ctx)
{
	struct conn *k;
	sqlite3_stmt *q;
	struct cat_item it;
	int rc, ret;

	k = cat_conn_browse(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, Q_LIST, &q);
	if (ret < 0)
		goto out;
	sqlite3_bind_int64(q, 1, parent);
	sqlite3_bind_int64(q, 2, snap);
	sqlite3_bind_text(q, 3, after ? after : "", -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		cat_item_read(q, 0, &it);
		ret = cb(ctx, &it);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_DONE)
		ret = cat_errno(k->db, rc, "list folder");
	sqlite3_reset(q);
out:
	cat_conn_put(c, k);
	return ret;
}

int cat_item_meta(struct cat *c, int64_t id, int64_t from_snap, struct buf *out)
{
	struct conn *k;
	struct cold m = { BUF_INIT, NULL, NULL, true };
	size_t len0 = out->len;
	int ret;

	k = cat_conn_browse(c);
	if (!k)
		return -ENOMEM;
	ret = cold_read(k, id, from_snap, &m);
	if (ret == 0)
		ret = buf_add(out, m.kv.data, m.kv.len);
	if (ret == 0 && m.subject)
		ret = buf_add(out, CAT_META_SUBJECT, sizeof(CAT_META_SUBJECT));
	if (ret == 0 && m.subject)
		ret = buf_add(out, m.subject, strlen(m.subject) + 1);
	if (ret == 0 && m.sender)
		ret = buf_add(out, CAT_META_FROM, sizeof(CAT_META_FROM));
	if (ret == 0 && m.sender)
		ret = buf_add(out, m.sender, strlen(m.sender) + 1);
	if (ret < 0)
		buf_truncate(out, len0);
	cold_release(&m);
	cat_conn_put(c, k);
	return ret;
}

int cat_meta_next(const char *p, size_t len, size_t *pos, const char **key,
		  const char **val)
{
	const char *k, *v, *e;

	if (*pos >= len)
		return 0;
	k = p + *pos;
	e = memchr(k, '\0', len - *pos);
	if (!e || e == k)
		return -EBADMSG;
	v = e + 1;
	if ((size_t)(v - p) >= len)
		return -EBADMSG;
	e = memchr(v, '\0', len - (size_t)(v - p));
	if (!e)
		return -EBADMSG;
	*key = k;
	*val = v;
	*pos = (size_t)(e + 1 - p);
	return 1;
}

const char *cat_meta_find(const char *p, size_t len, const char *key)
{
	const char *k, *v;
	size_t pos = 0;

	while (cat_meta_next(p, len, &pos, &k, &v) == 1)
		if (!strcmp(k, key))
			return v;
	return NULL;
}
