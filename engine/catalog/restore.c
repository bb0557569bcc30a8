/*
 * restore.c - the durable restore queue (written by the daemon and the
 * uploaders, possibly while a snapshot runs in another process).
 */
#include "catalog/cat_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "util/log.h"
#include "util/util.h"

void cat_restore_release(struct cat_restore *r)
{
	if (!r)
		return;
	free(r->target);
	free(r->spool);
	free(r->reason);
	free(r->remote_id);
	r->target = r->spool = r->reason = r->remote_id = NULL;
}

static char *dup_col(sqlite3_stmt *q, int i)
{
	const unsigned char *s = sqlite3_column_text(q, i);

	return s ? strdup((const char *)s) : NULL;
}

static int restore_read(sqlite3_stmt *q, struct cat_restore *r, bool copy)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(q, 0);
	r->size = sqlite3_column_int64(q, 3);
	r->status = sqlite3_column_int(q, 4);
	r->attempts = sqlite3_column_int(q, 6);
	r->created = sqlite3_column_int64(q, 7);
	r->updated = sqlite3_column_int64(q, 8);
	if (!copy) {
		r->target = (char *)sqlite3_column_text(q, 1);
		r->spool = (char *)sqlite3_column_text(q, 2);
		r->reason = (char *)sqlite3_column_text(q, 5);
		r->remote_id = (char *)sqlite3_column_text(q, 9);
		return 0;
	}
	r->target = dup_col(q, 1);
	r->spool = dup_col(q, 2);
	r->reason = dup_col(q, 5);
	r->remote_id = dup_col(q, 9);
	if (!r->target || !r->spool ||
	    (sqlite3_column_type(q, 5) != SQLITE_NULL && !r->reason) ||
	    (sqlite3_column_type(q, 9) != SQLITE_NULL && !r->remote_id)) {
		cat_restore_release(r);
		return -ENOMEM;
	}
	return 0;
}

/* Give back cached statement @q: reset it and drop its bindings. */
static void stmt_done(sqlite3_stmt *q)
{
	if (!q)
		return;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
}

static void qunlock(struct cat *c)
{
	if (c->writer)
		return;
	if (c->qfd >= 0)
		flock(c->qfd, LOCK_UN);
	pthread_mutex_unlock(&c->qlock);
}

/*
 * Borrow a connection ready for a small durable write; give it back with
 * wconn_put().  Readers queue on PATH-rqlock so that a snapshot writer in
 * another process lets them in between two batches.
 */
static struct conn *wconn(struct cat *c)
{
	struct conn *k;

	if (!c->writer) {
		pthread_mutex_lock(&c->qlock);
		if (c->qfd >= 0)
			flock(c->qfd, LOCK_EX);
	}
	k = cat_conn_get(c);
	if (!k) {
		qunlock(c);
		return NULL;
	}
	cat_restore_prepare(c);
	return k;
}

static void wconn_put(struct cat *c, struct conn *k)
{
	cat_conn_put(c, k);
	qunlock(c);
}

/* Insert the entry (and its @data unless NULL) on @k, in the caller's
 * transaction if one is open. */
static int insert(struct conn *k, const char *target, const char *spool,
		  int64_t size, const void *data, int64_t *id)
{
	sqlite3_stmt *q = NULL;
	int64_t rowid;
	int rc, ret;

	ret = cat_stmt(k, Q_RESTORE_ENQUEUE, &q);
	if (ret < 0)
		return ret;
	sqlite3_bind_text(q, 1, target, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, spool, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, size);
	sqlite3_bind_int64(q, 4, util_now());
	rc = sqlite3_step(q);
	stmt_done(q);
	if (rc != SQLITE_DONE)
		return cat_errno(k->db, rc, "enqueue restore");
	rowid = sqlite3_last_insert_rowid(k->db);
	if (data) {
		ret = cat_stmt(k, Q_RDATA_PUT, &q);
		if (ret < 0)
			return ret;
		sqlite3_bind_int64(q, 1, rowid);
		sqlite3_bind_blob64(q, 2, data, (sqlite3_uint64)size,
				    SQLITE_STATIC);
		rc = sqlite3_step(q);
		stmt_done(q);
		if (rc != SQLITE_DONE)
			return cat_errno(k->db, rc, "keep restore data");
	}
	if (id)
		*id = rowid;
	return 0;
}

int cat_restore_enqueue(struct cat *c, const char *target, const char *spool,
			int64_t size, int64_t *id)
{
	return cat_restore_enqueue_data(c, target, spool, NULL, size, id);
}

int cat_restore_enqueue_data(struct cat *c, const char *target,
			     const char *spool, const void *data, int64_t size,
			     int64_t *id)
{
	struct conn *k;
	int ret;

	if (!target || !spool || size < 0)
		return -EINVAL;
	if (data && !c->rdata)
		return -ENOTSUP;
	k = wconn(c);
	if (!k)
		return -ENOMEM;
	if (!data) {
		ret = insert(k, target, spool, size, NULL, id);
		goto out;
	}
	ret = cat_exec(k->db, "BEGIN IMMEDIATE");
	if (ret == 0)
		ret = insert(k, target, spool, size, data, id);
	if (ret == 0)
		ret = cat_exec(k->db, "COMMIT");
	if (ret < 0 && !sqlite3_get_autocommit(k->db))
		sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
out:
	wconn_put(c, k);
	return ret;
}

int cat_restore_data_init(struct cat *c)
{
	struct conn *k;
	int64_t n = 0;
	int ret;

	k = wconn(c);
	if (!k)
		return -ENOMEM;
	ret = cat_exec(k->db, "CREATE TABLE IF NOT EXISTS restore_data("
			      "id INTEGER PRIMARY KEY, data BLOB NOT NULL)");
	if (ret < 0 &&
	    cat_int_query(k->db,
			  "SELECT count(*) FROM sqlite_master WHERE "
			  "type='table' AND name='restore_data'",
			  &n) == 0 &&
	    n == 1)
		ret = 0; /* there, but not ours to create (read-only) */
	c->rdata = ret == 0;
	wconn_put(c, k);
	return ret;
}

int cat_restore_data(struct cat *c, int64_t id, struct buf *out)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	int rc, ret;

	if (!c->rdata)
		return -ENOENT;
	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, Q_RDATA_GET, &q);
	if (ret < 0)
		goto out;
	sqlite3_bind_int64(q, 1, id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE)
		ret = -ENOENT;
	else if (rc != SQLITE_ROW)
		ret = cat_errno(k->db, rc, "read restore data");
	else
		ret = buf_add(out, sqlite3_column_blob(q, 0),
			      (size_t)sqlite3_column_bytes(q, 0));
out:
	stmt_done(q);
	cat_conn_put(c, k);
	return ret;
}

int cat_restore_claim(struct cat *c, struct cat_restore *out)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	int rc, ret;

	k = wconn(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, Q_RESTORE_CLAIM, &q);
	if (ret < 0)
		goto out;
	sqlite3_bind_int64(q, 1, util_now());
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		ret = -ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = cat_errno(k->db, rc, "claim restore");
		goto out;
	}
	ret = restore_read(q, out, true);
	/* finish the statement so that the update commits */
	rc = sqlite3_step(q);
	if (rc != SQLITE_DONE) {
		cat_restore_release(out);
		ret = cat_errno(k->db, rc, "claim restore");
	}
out:
	stmt_done(q);
	wconn_put(c, k);
	return ret;
}

/* One UPDATE of the queue on @k: 0, -ENOENT (no entry @u->id) or -errno. */
static int update_one(struct cat *c, struct conn *k,
		      const struct cat_restore_set *u)
{
	sqlite3_stmt *q = NULL;
	int rc, ret;

	ret = cat_stmt(k, Q_RESTORE_UPDATE, &q);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, u->id);
	sqlite3_bind_int(q, 2, u->status);
	if (u->reason)
		sqlite3_bind_text(q, 3, u->reason, -1, SQLITE_STATIC);
	if (u->remote_id)
		sqlite3_bind_text(q, 4, u->remote_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, util_now());
	rc = sqlite3_step(q);
	if (rc != SQLITE_DONE)
		ret = cat_errno(k->db, rc, "update restore");
	else if (sqlite3_changes(k->db) == 0)
		ret = -ENOENT;
	stmt_done(q);
	if (ret < 0 || u->status != CAT_RESTORE_DONE || !c->rdata)
		return ret;
	/* restored: its data is not needed any more */
	ret = cat_stmt(k, Q_RDATA_DEL, &q);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(q, 1, u->id);
	rc = sqlite3_step(q);
	if (rc != SQLITE_DONE)
		ret = cat_errno(k->db, rc, "drop restore data");
	stmt_done(q);
	return ret;
}

static bool status_ok(int status)
{
	return status >= CAT_RESTORE_PENDING && status <= CAT_RESTORE_FAILED;
}

int cat_restore_update(struct cat *c, int64_t id, int status,
		       const char *reason, const char *remote_id)
{
	struct cat_restore_set u = { id, status, reason, remote_id };
	struct conn *k;
	int ret;

	if (!status_ok(status))
		return -EINVAL;
	k = wconn(c);
	if (!k)
		return -ENOMEM;
	ret = update_one(c, k, &u);
	wconn_put(c, k);
	return ret;
}

int cat_restore_update_many(struct cat *c, const struct cat_restore_set *v,
			    size_t n, bool durable)
{
	struct conn *k;
	size_t i;
	int ret;

	for (i = 0; i < n; i++)
		if (!status_ok(v[i].status))
			return -EINVAL;
	if (!n)
		return 0;
	k = wconn(c);
	if (!k)
		return -ENOMEM;
	/* every connection that writes the queue is synchronous=FULL; the
	 * writer's stays so (its batches are not the queue's) */
	durable |= c->writer;
	ret = durable ? 0 : cat_exec(k->db, "PRAGMA synchronous=NORMAL");
	if (ret == 0)
		ret = cat_exec(k->db, "BEGIN IMMEDIATE");
	for (i = 0; ret == 0 && i < n; i++) {
		ret = update_one(c, k, &v[i]);
		if (ret == -ENOENT) /* gone (queue cleared): nothing to do */
			ret = 0;
	}
	if (ret == 0)
		ret = cat_exec(k->db, "COMMIT");
	if (ret < 0 && !sqlite3_get_autocommit(k->db))
		sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
	if (!durable && cat_exec(k->db, "PRAGMA synchronous=FULL") < 0) {
		/* not back in the pool: its next commit would not be flushed */
		cat_conn_drop(c, k);
		qunlock(c);
		return ret;
	}
	wconn_put(c, k);
	return ret;
}

int cat_restore_requeue(struct cat *c, int *count)
{
	struct conn *k;
	int ret;

	k = wconn(c);
	if (!k)
		return -ENOMEM;
	ret = cat_exec_i(k->db,
			 "UPDATE restore SET status=0, updated=?1 WHERE "
			 "status=1",
			 1, (int64_t)util_now());
	if (ret == 0 && count)
		*count = sqlite3_changes(k->db);
	wconn_put(c, k);
	return ret;
}

/* Query entries; @id 0 = all.  @copy: give owned strings to one entry. */
static int restore_query(struct cat *c, int64_t id, cat_restore_cb cb,
			 void *ctx, struct cat_restore *one)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	struct cat_restore r;
	int rc, ret = 0;

	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, one ? Q_RESTORE_GET : Q_RESTORE_LIST, &q);
	if (ret < 0)
		goto out;
	if (one)
		sqlite3_bind_int64(q, 1, id);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (one) {
			ret = restore_read(q, one, true);
			goto out;
		}
		restore_read(q, &r, false);
		ret = cb(ctx, &r);
		if (ret)
			goto out;
	}
	if (rc != SQLITE_DONE)
		ret = cat_errno(k->db, rc, "read restore queue");
	else if (one)
		ret = -ENOENT;
out:
	stmt_done(q);
	cat_conn_put(c, k);
	return ret;
}

int cat_restore_get(struct cat *c, int64_t id, struct cat_restore *out)
{
	return restore_query(c, id, NULL, NULL, out);
}

int cat_restore_list(struct cat *c, cat_restore_cb cb, void *ctx)
{
	return restore_query(c, 0, cb, ctx, NULL);
}
