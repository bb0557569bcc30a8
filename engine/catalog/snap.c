/*
 * snap.c - snapshots: begin, counters, errors, finish, rollback of dead
 * runs, listing, forget; delta tokens.
 */
#include "catalog/cat_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define I64(x) ((int64_t)(x))

int cat_counters_flush(struct cat *c)
{
	struct cat_counters *n = &c->n;
	int ret;

	if (!c->snap)
		return 0;
	ret = cat_exec_i(c->w->db,
			 "UPDATE snap SET items=items+?2, files=files+?3,"
			 " messages=messages+?4, bytes_new=bytes_new+?5,"
			 " bytes_reused=bytes_reused+?6,"
			 " requests=requests+?7, throttled=throttled+?8,"
			 " errors=errors+?9 WHERE id=?1",
			 9, c->snap, n->items, n->files, n->messages,
			 n->bytes_new, n->bytes_reused, n->requests,
			 n->throttled, n->errors);
	if (ret == 0)
		memset(n, 0, sizeof(*n));
	return ret;
}

/*
 * Undo what snapshot @snap wrote: the items it touched are in runlog.
 * Runs inside the caller's transaction.
 */
int cat_rollback_snap(struct cat *c, int64_t snap)
{
	static const char *const sql[] = {
		"DELETE FROM vmeta WHERE fsnap=?1 AND id IN "
		"(SELECT id FROM runlog)",
		"DELETE FROM msgtext WHERE fsnap=?1 AND id IN "
		"(SELECT id FROM runlog)",
		"DELETE FROM ver WHERE fsnap=?1 AND id IN "
		"(SELECT id FROM runlog)",
		"UPDATE ver SET tsnap=NULL WHERE tsnap=?1 AND id IN "
		"(SELECT id FROM runlog)",
		"DELETE FROM delta WHERE snap=?1",
		"UPDATE snap SET status=3, end=CASE WHEN end=0 THEN ?2"
		" ELSE end END WHERE id=?1",
	};
	int ret;

	for (size_t i = 0; i < ARRAY_SIZE(sql); i++) {
		ret = cat_exec_i(c->w->db, sql[i], 2, snap, I64(util_now()));
		if (ret < 0)
			return ret;
	}
	log_warn("catalog: snapshot %lld did not finish: rolled back",
		 (long long)snap);
	return 0;
}

/* Start time (clock ticks since boot) of process @pid, 0 if none. */
static unsigned long long proc_start(long pid)
{
	struct buf b = BUF_INIT;
	char path[64];
	const char *p;
	unsigned long long t = 0;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (util_read_file(path, &b, 4096) == 0) {
		p = strrchr(b.data, ')');
		/* fields after "(comm)": state is 3, starttime is 22 */
		for (int f = 3; p && f <= 22; f++)
			p = strchr(p + 1, ' ');
		if (p)
			t = strtoull(p + 1, NULL, 10);
	}
	buf_release(&b);
	return t;
}

/* Who writes a run: "host pid starttime". */
static int owner_get(struct buf *out)
{
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	return buf_addf(out, "%s %ld %llu", host, (long)getpid(),
			proc_start(getpid()));
}

/* Is the writer named by @owner (owner_get()) still running here? */
static bool owner_alive(const char *owner)
{
	char host[256] = "", me[256] = "";
	long pid = 0;
	unsigned long long start = 0;

	if (!owner || sscanf(owner, "%255s %ld %llu", host, &pid, &start) != 3)
		return false;
	gethostname(me, sizeof(me) - 1);
	if (strcmp(host, me) || pid <= 0 || pid == (long)getpid())
		return false; /* other hosts: the repository lock decides */
	return start && proc_start(pid) == start;
}

int cat_recover_locked(struct cat *c, int *rolled_back)
{
	sqlite3_stmt *q = NULL;
	int64_t *ids = NULL;
	size_t n = 0;
	int ret;

	if (rolled_back)
		*rolled_back = 0;
	if (c->snap) /* our own run is alive */
		return 0;
	ret = cat_txn_commit(c);
	if (ret == 0)
		ret = cat_ids(c->w->db, "SELECT id FROM snap WHERE status=0", 0,
			      NULL, &ids, &n);
	if (ret < 0 || n == 0)
		goto out;
	/* never roll back a run whose writer still lives (no repo lock?) */
	if (!c->copy &&
	    sqlite3_prepare_v2(c->w->db,
			       "SELECT val FROM kv WHERE key='run_owner'", -1,
			       &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW &&
	    owner_alive((const char *)sqlite3_column_text(q, 0))) {
		log_err("catalog: snapshot %lld is being written by process "
			"'%s': not touching it; is the repository lock held?",
			(long long)ids[0], sqlite3_column_text(q, 0));
		ret = -EBUSY;
		goto out;
	}
	ret = cat_exec(c->w->db, "BEGIN IMMEDIATE");
	if (ret < 0)
		goto out;
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = cat_rollback_snap(c, ids[i]);
	if (ret == 0)
		ret = cat_exec(c->w->db, "DELETE FROM runlog");
	if (ret == 0)
		ret = cat_exec(c->w->db, "COMMIT");
	if (ret < 0) {
		sqlite3_exec(c->w->db, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
	if (rolled_back)
		*rolled_back = (int)n;
out:
	sqlite3_finalize(q);
	free(ids);
	return ret;
}

int cat_recover(struct cat *c, int *rolled_back)
{
	struct conn *k;
	int ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	k = cat_conn_get(c);
	ret = cat_recover_locked(c, rolled_back);
	cat_conn_put(c, k);
	return ret;
}

static int owner_save(sqlite3 *db)
{
	struct buf b = BUF_INIT;
	sqlite3_stmt *q = NULL;
	int rc, ret;

	ret = owner_get(&b);
	if (ret < 0)
		return ret;
	rc = sqlite3_prepare_v2(db,
				"INSERT OR REPLACE INTO kv(key, val) "
				"VALUES('run_owner', ?1)",
				-1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(q, 1, b.data, -1, SQLITE_STATIC);
		rc = sqlite3_step(q);
	}
	if (rc != SQLITE_DONE)
		ret = cat_errno(db, rc, "record the writer");
	sqlite3_finalize(q);
	buf_release(&b);
	return ret;
}

int cat_snapshot_begin(struct cat *c, int64_t *snap)
{
	struct conn *k;
	int64_t id = 0;
	int ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	k = cat_conn_get(c);
	if (c->snap) {
		ret = -EALREADY;
		goto out;
	}
	ret = cat_recover_locked(c, NULL);
	if (ret < 0)
		goto out;
	ret = cat_exec(k->db, "DELETE FROM temp.seen");
	if (ret < 0)
		goto out;
	ret = cat_txn_ensure(c);
	if (ret < 0)
		goto out;
	/* ids are never reused, even after the newest one was forgotten */
	ret = cat_int_query(
		k->db,
		"SELECT max(coalesce((SELECT max(id) FROM snap), 0),"
		" coalesce((SELECT val FROM kv WHERE key = "
		"'last_snap'), 0)) + 1",
		&id);
	if (ret == 0)
		ret = cat_exec_i(k->db,
				 "INSERT INTO snap(id, start, status) "
				 "VALUES(?1, ?2, 0)",
				 2, id, I64(util_now()));
	if (ret == 0)
		ret = cat_exec_i(k->db,
				 "INSERT OR REPLACE INTO kv(key, val) "
				 "VALUES('last_snap', ?1)",
				 1, id);
	if (ret == 0)
		ret = owner_save(k->db);
	if (ret == 0) {
		/* the snapshot row is durable before any of its items */
		c->snap = id;
		ret = cat_txn_commit(c);
		if (ret < 0)
			c->snap = 0;
	}
	if (ret < 0)
		goto out;
	memset(&c->n, 0, sizeof(c->n));
	c->run_err = 0;
	c->nsweeps = 0;
	c->parent_ok = 0;
	*snap = id;
out:
	cat_conn_put(c, k);
	return ret;
}

int cat_snapshot_count(struct cat *c, const struct cat_counters *d)
{
	struct conn *k;
	int ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	k = cat_conn_get(c);
	if (!c->snap) {
		ret = -EINVAL;
	} else {
		c->n.items += d->items;
		c->n.files += d->files;
		c->n.messages += d->messages;
		c->n.bytes_new += d->bytes_new;
		c->n.bytes_reused += d->bytes_reused;
		c->n.requests += d->requests;
		c->n.throttled += d->throttled;
		c->n.errors += d->errors;
	}
	cat_conn_put(c, k);
	return ret;
}

static void bind_opt_text(sqlite3_stmt *q, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(q, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(q, i);
}

int cat_snapshot_error(struct cat *c, const char *service, const char *path,
		       const char *graph_id, const char *reason)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	int rc, ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	k = cat_conn_get(c);
	ret = cat_wbegin(c, true);
	if (ret < 0)
		goto out;
	rc = sqlite3_prepare_v2(k->db,
				"INSERT INTO snap_error(snap, service, path, "
				"graph_id, reason) VALUES(?1,?2,?3,?4,?5)",
				-1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, c->snap);
		bind_opt_text(q, 2, service);
		bind_opt_text(q, 3, path);
		bind_opt_text(q, 4, graph_id);
		bind_opt_text(q, 5, reason);
		rc = sqlite3_step(q);
	}
	if (rc != SQLITE_DONE) {
		ret = cat_errno(k->db, rc, "record snapshot error");
		goto out;
	}
	c->n.errors++;
	ret = cat_note_change(c);
out:
	sqlite3_finalize(q);
	cat_conn_put(c, k);
	return ret;
}

int cat_snapshot_finish(struct cat *c, int status)
{
	struct conn *k;
	int ret, lost;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	if (status != CAT_SNAP_COMPLETE && status != CAT_SNAP_PARTIAL &&
	    status != CAT_SNAP_FAILED)
		return -EINVAL;
	k = cat_conn_get(c);
	/* after a lost batch what is left cannot become a snapshot */
	lost = c->snap ? c->run_err : 0;
	c->run_err = 0;
	ret = cat_wbegin(c, true);
	if (ret < 0)
		goto out;
	if (lost)
		status = CAT_SNAP_FAILED;
	if (status == CAT_SNAP_FAILED) {
		ret = cat_counters_flush(c);
		if (ret == 0)
			ret = cat_rollback_snap(c, c->snap);
	} else {
		ret = cat_exec_i(
			k->db, "UPDATE snap SET status=?2, end=?3 WHERE id=?1",
			3, c->snap, I64(status), I64(util_now()));
	}
	if (ret == 0)
		ret = cat_exec(k->db, "DELETE FROM runlog");
	/* synchronous=FULL: durable when we return */
	if (ret == 0)
		ret = cat_txn_commit(c);
	if (ret < 0) {
		log_err("catalog: snapshot %lld could not be finished: it is "
			"rolled back by the next run",
			(long long)c->snap);
	}
	c->snap = 0;
	c->nsweeps = 0;
	cat_exec(k->db, "DELETE FROM temp.seen");
	if (ret == 0 && lost)
		ret = lost;
out:
	cat_conn_put(c, k);
	return ret;
}

static void snap_read(sqlite3_stmt *q, struct cat_snapshot *s)
{
	s->id = sqlite3_column_int64(q, 0);
	s->start = sqlite3_column_int64(q, 1);
	s->end = sqlite3_column_int64(q, 2);
	s->status = sqlite3_column_int(q, 3);
	s->n.items = sqlite3_column_int64(q, 4);
	s->n.files = sqlite3_column_int64(q, 5);
	s->n.messages = sqlite3_column_int64(q, 6);
	s->n.bytes_new = sqlite3_column_int64(q, 7);
	s->n.bytes_reused = sqlite3_column_int64(q, 8);
	s->n.requests = sqlite3_column_int64(q, 9);
	s->n.throttled = sqlite3_column_int64(q, 10);
	s->n.errors = sqlite3_column_int64(q, 11);
}

int cat_snapshot_get(struct cat *c, int64_t snap, struct cat_snapshot *out)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	int rc, ret;

	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, Q_SNAP_GET, &q);
	if (ret < 0)
		goto out;
	sqlite3_bind_int64(q, 1, snap);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		snap_read(q, out);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		ret = cat_errno(k->db, rc, "read snapshot");
	}
out:
	sqlite3_reset(q);
	cat_conn_put(c, k);
	return ret;
}

int cat_snapshot_latest(struct cat *c, int64_t *snap)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	int rc, ret;

	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, Q_SNAP_LATEST, &q);
	if (ret < 0)
		goto out;
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		ret = cat_errno(k->db, rc, "find latest snapshot");
		goto out;
	}
	if (sqlite3_column_type(q, 0) == SQLITE_NULL) {
		ret = -ENOENT;
		goto out;
	}
	*snap = sqlite3_column_int64(q, 0);
out:
	sqlite3_reset(q);
	cat_conn_put(c, k);
	return ret;
}

int cat_snapshot_list(struct cat *c, bool all, cat_snapshot_cb cb, void *ctx)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	struct cat_snapshot s;
	int rc, ret = 0;

	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	rc = sqlite3_prepare_v2(k->db,
				all ? "SELECT id,start,end,status,items,files,"
				      "messages,bytes_new,bytes_reused,"
				      "requests,throttled,errors FROM snap "
				      "ORDER BY id"
				    : "SELECT id,start,end,status,items,files,"
				      "messages,bytes_new,bytes_reused,"
				      "requests,throttled,errors FROM snap "
				      "WHERE status IN (1,2) ORDER BY id",
				-1, &q, NULL);
	if (rc != SQLITE_OK) {
		ret = cat_errno(k->db, rc, "list snapshots");
		goto out;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		snap_read(q, &s);
		ret = cb(ctx, &s);
		if (ret)
			goto out;
	}
	if (rc != SQLITE_DONE)
		ret = cat_errno(k->db, rc, "list snapshots");
out:
	sqlite3_finalize(q);
	cat_conn_put(c, k);
	return ret;
}

static const char *col_text(sqlite3_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(q, i);
}

int cat_snapshot_errors(struct cat *c, int64_t snap, cat_error_cb cb, void *ctx)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	struct cat_snap_error e;
	int rc, ret = 0;

	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	rc = sqlite3_prepare_v2(k->db,
				"SELECT service, path, graph_id, reason FROM "
				"snap_error WHERE snap=?1 ORDER BY rowid",
				-1, &q, NULL);
	if (rc != SQLITE_OK) {
		ret = cat_errno(k->db, rc, "list snapshot errors");
		goto out;
	}
	sqlite3_bind_int64(q, 1, snap);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		e.snap = snap;
		e.service = col_text(q, 0);
		e.path = col_text(q, 1);
		e.graph_id = col_text(q, 2);
		e.reason = col_text(q, 3);
		if (!e.service)
			e.service = "";
		if (!e.reason)
			e.reason = "";
		ret = cb(ctx, &e);
		if (ret)
			goto out;
	}
	if (rc != SQLITE_DONE)
		ret = cat_errno(k->db, rc, "list snapshot errors");
out:
	sqlite3_finalize(q);
	cat_conn_put(c, k);
	return ret;
}

/*
 * Forget: with prev/next the nearest remaining visible snapshots around
 * @snap, a version [from, to) with prev < from and to <= next is visible
 * in no remaining snapshot and goes; current versions always stay.
 */
int cat_snapshot_forget(struct cat *c, int64_t snap)
{
	static const char *const sql[] = {
		"CREATE TEMP TABLE IF NOT EXISTS gone(id INTEGER, fsnap INTEGER,"
		" PRIMARY KEY(id, fsnap)) WITHOUT ROWID",
		"DELETE FROM temp.gone",
		"INSERT INTO temp.gone SELECT id, fsnap FROM ver WHERE "
		"fsnap > ?1 AND tsnap IS NOT NULL AND tsnap <= ?2",
		"DELETE FROM vmeta WHERE (id, fsnap) IN "
		"(SELECT id, fsnap FROM temp.gone)",
		"DELETE FROM msgtext WHERE (id, fsnap) IN "
		"(SELECT id, fsnap FROM temp.gone)",
		"DELETE FROM ver WHERE fsnap > ?1 AND tsnap IS NOT NULL AND "
		"tsnap <= ?2",
		"DELETE FROM gid WHERE id IN (SELECT id FROM temp.gone) AND NOT "
		"EXISTS (SELECT 1 FROM ver INDEXED BY ver_id WHERE "
		"ver.id = gid.id)",
		"DELETE FROM snap_error WHERE snap = ?3",
		/* keep only the newest delta token of each scope */
		"DELETE FROM delta WHERE snap = ?3 AND EXISTS (SELECT 1 FROM "
		"delta d2 WHERE d2.sid = delta.sid AND d2.snap > ?3)",
		"DELETE FROM snap WHERE id = ?3",
		"DELETE FROM temp.gone",
	};
	struct conn *k;
	struct cat_snapshot s;
	int64_t prev = 0, next = INT64_MAX;
	int ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	ret = cat_snapshot_get(c, snap, &s);
	if (ret < 0)
		return ret;
	k = cat_conn_get(c);
	if (c->snap || s.status == CAT_SNAP_RUNNING) {
		ret = -EBUSY;
		goto out;
	}
	ret = cat_txn_commit(c);
	if (ret == 0) {
		sqlite3_stmt *q = NULL;
		int rc = sqlite3_prepare_v2(
			k->db,
			"SELECT (SELECT coalesce(max(id), 0) FROM snap WHERE "
			"status IN (1,2) AND id < ?1), (SELECT min(id) FROM "
			"snap WHERE status IN (1,2) AND id > ?1)",
			-1, &q, NULL);

		if (rc == SQLITE_OK) {
			sqlite3_bind_int64(q, 1, snap);
			rc = sqlite3_step(q);
		}
		if (rc == SQLITE_ROW) {
			prev = sqlite3_column_int64(q, 0);
			if (sqlite3_column_type(q, 1) != SQLITE_NULL)
				next = sqlite3_column_int64(q, 1);
		} else {
			ret = cat_errno(k->db, rc, "forget snapshot");
		}
		sqlite3_finalize(q);
	}
	if (ret < 0)
		goto out;
	ret = cat_exec(k->db, "BEGIN IMMEDIATE");
	if (ret < 0)
		goto out;
	for (size_t i = 0; i < ARRAY_SIZE(sql) && ret == 0; i++)
		ret = cat_exec_i(k->db, sql[i], 3, prev, next, snap);
	if (ret == 0)
		ret = cat_exec(k->db, "COMMIT");
	if (ret < 0)
		sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
	else
		log_info("catalog: snapshot %lld forgotten", (long long)snap);
out:
	cat_conn_put(c, k);
	return ret;
}

/* ---- delta tokens ---- */

int cat_delta_set(struct cat *c, const char *scope, const char *token)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	int64_t sid;
	int rc, ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	k = cat_conn_get(c);
	ret = cat_wbegin(c, true);
	if (ret == 0)
		ret = cat_scope_id(c, k, scope, true, &sid);
	if (ret < 0)
		goto out;
	rc = sqlite3_prepare_v2(k->db,
				"INSERT OR REPLACE INTO delta(sid, snap, token)"
				" VALUES(?1, ?2, ?3)",
				-1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, sid);
		sqlite3_bind_int64(q, 2, c->snap);
		bind_opt_text(q, 3, token);
		rc = sqlite3_step(q);
	}
	if (rc != SQLITE_DONE) {
		ret = cat_errno(k->db, rc, "save delta token");
		goto out;
	}
	ret = cat_note_change(c);
out:
	sqlite3_finalize(q);
	cat_conn_put(c, k);
	return ret;
}

int cat_delta_get(struct cat *c, const char *scope, struct buf *out)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	int64_t sid;
	int rc, ret;

	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	ret = cat_scope_id(c, k, scope, false, &sid);
	if (ret < 0)
		goto out;
	rc = sqlite3_prepare_v2(k->db,
				"SELECT d.token FROM delta d LEFT JOIN snap s "
				"ON s.id = d.snap WHERE d.sid = ?1 AND "
				"(s.id IS NULL OR s.status IN (1,2)) "
				"ORDER BY d.snap DESC LIMIT 1",
				-1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, sid);
		rc = sqlite3_step(q);
	}
	if (rc == SQLITE_DONE ||
	    (rc == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_NULL)) {
		ret = -ENOENT;
	} else if (rc != SQLITE_ROW) {
		ret = cat_errno(k->db, rc, "read delta token");
	} else {
		ret = buf_add(out, sqlite3_column_text(q, 0),
			      (size_t)sqlite3_column_bytes(q, 0));
	}
out:
	sqlite3_finalize(q);
	cat_conn_put(c, k);
	return ret;
}
