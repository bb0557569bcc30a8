/*
 * content.c - content rows: id -> size, SHA-256, quickXorHash and the
 * store's opaque descriptor; lookups that avoid downloading again.
 */
#include "catalog/cat_i.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"

static void content_read(sqlite3_stmt *q, struct cat_content *out)
{
	const void *p;

	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(q, 0);
	out->size = sqlite3_column_int64(q, 1);
	p = sqlite3_column_blob(q, 2);
	if (p && sqlite3_column_bytes(q, 2) == 32)
		memcpy(out->sha256, p, 32);
	p = sqlite3_column_blob(q, 3);
	if (p && sqlite3_column_bytes(q, 3) == 20) {
		memcpy(out->qxh, p, 20);
		out->has_qxh = true;
	}
}

/* Step @q (bound by the caller) for one content row; resets @q. */
static int content_step(struct conn *k, sqlite3_stmt *q,
			struct cat_content *out, struct buf *desc)
{
	int rc = sqlite3_step(q), ret = 0;

	if (rc == SQLITE_ROW) {
		if (out)
			content_read(q, out);
		if (desc)
			ret = buf_add(desc, sqlite3_column_blob(q, 4),
				      (size_t)sqlite3_column_bytes(q, 4));
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		ret = cat_errno(k->db, rc, "read content");
	}
	sqlite3_reset(q);
	return ret;
}

int cat_content_find_sha256(struct cat *c, const unsigned char sha256[32],
			    struct cat_content *out)
{
	struct conn *k;
	sqlite3_stmt *q;
	int ret;

	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, Q_CONTENT_SHA, &q);
	if (ret == 0) {
		sqlite3_bind_blob(q, 1, sha256, 32, SQLITE_STATIC);
		ret = content_step(k, q, out, NULL);
	}
	cat_conn_put(c, k);
	return ret;
}

int cat_content_find_qxh(struct cat *c, int64_t size,
			 const unsigned char qxh[20], struct cat_content *out)
{
	struct conn *k;
	sqlite3_stmt *q;
	int ret;

	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, Q_CONTENT_QXH, &q);
	if (ret == 0) {
		sqlite3_bind_int64(q, 1, size);
		sqlite3_bind_blob(q, 2, qxh, 20, SQLITE_STATIC);
		ret = content_step(k, q, out, NULL);
	}
	cat_conn_put(c, k);
	return ret;
}

/*
 * A browse query: the daemon asks for the content of an item it has just
 * read through cat_conn_browse(), and a content row is committed with (or
 * before) the first item that refers to it.  Taking a plain connection
 * here would end the browse transaction at every file read.
 */
int cat_content_get(struct cat *c, int64_t id, struct cat_content *out,
		    struct buf *desc)
{
	struct conn *k;
	sqlite3_stmt *q;
	int ret;

	k = cat_conn_browse(c);
	if (!k)
		return -ENOMEM;
	ret = cat_stmt(k, Q_CONTENT_GET, &q);
	if (ret == 0) {
		sqlite3_bind_int64(q, 1, id);
		ret = content_step(k, q, out, desc);
	}
	cat_conn_put(c, k);
	return ret;
}

int cat_content_put(struct cat *c, int64_t size, const unsigned char sha256[32],
		    const unsigned char *qxh, const void *desc, size_t desc_len,
		    int64_t *id)
{
	struct conn *k;
	struct cat_content have;
	sqlite3_stmt *q;
	int rc, ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	if (size < 0 || desc_len > INT32_MAX)
		return -EINVAL;
	k = cat_conn_get(c);
	ret = cat_wbegin(c, false);
	if (ret < 0)
		goto out;
	ret = cat_stmt(k, Q_CONTENT_SHA, &q);
	if (ret < 0)
		goto out;
	sqlite3_bind_blob(q, 1, sha256, 32, SQLITE_STATIC);
	ret = content_step(k, q, &have, NULL);
	if (ret == 0) {
		if (have.size != size)
			log_warn("catalog: content %lld has size %lld, not "
				 "%lld, for the same SHA-256",
				 (long long)have.id, (long long)have.size,
				 (long long)size);
		*id = have.id;
		if (!qxh || have.has_qxh)
			goto out;
		ret = cat_stmt(k, Q_CONTENT_SET_QXH, &q);
		if (ret < 0)
			goto out;
		sqlite3_bind_int64(q, 1, have.id);
		sqlite3_bind_blob(q, 2, qxh, 20, SQLITE_STATIC);
		rc = sqlite3_step(q);
		sqlite3_reset(q);
		if (rc != SQLITE_DONE)
			ret = cat_errno(k->db, rc, "add quickXorHash");
		else
			ret = cat_note_change(c);
		goto out;
	}
	if (ret != -ENOENT)
		goto out;
	ret = cat_stmt(k, Q_CONTENT_PUT, &q);
	if (ret < 0)
		goto out;
	sqlite3_bind_int64(q, 1, size);
	sqlite3_bind_blob(q, 2, sha256, 32, SQLITE_STATIC);
	if (qxh)
		sqlite3_bind_blob(q, 3, qxh, 20, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, 3);
	sqlite3_bind_blob(q, 4, desc ? desc : "", (int)desc_len, SQLITE_STATIC);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE) {
		ret = cat_errno(k->db, rc, "record content");
		goto out;
	}
	*id = sqlite3_last_insert_rowid(k->db);
	ret = cat_note_change(c);
out:
	cat_conn_put(c, k);
	return ret;
}

int cat_content_referenced(struct cat *c, bool drop_unreferenced,
			   cat_content_cb cb, void *ctx)
{
	struct conn *k;
	sqlite3_stmt *q = NULL;
	int rc, ret = 0;

	if (drop_unreferenced) {
		ret = cat_need_writer(c);
		if (ret < 0)
			return ret;
	}
	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	if (drop_unreferenced) {
		if (c->snap) {
			ret = -EBUSY; /* a run may still point at them */
			goto out;
		}
		ret = cat_txn_commit(c);
		if (ret == 0)
			ret = cat_exec(k->db,
				       "DELETE FROM content WHERE id NOT IN "
				       "(SELECT content FROM ver WHERE content "
				       "IS NOT NULL)");
		if (ret < 0)
			goto out;
	}
	rc = sqlite3_prepare_v2(k->db,
				"SELECT id, desc FROM content WHERE id IN "
				"(SELECT content FROM ver WHERE content IS NOT "
				"NULL) ORDER BY id",
				-1, &q, NULL);
	if (rc != SQLITE_OK) {
		ret = cat_errno(k->db, rc, "list referenced contents");
		goto out;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		ret = cb(ctx, sqlite3_column_int64(q, 0),
			 sqlite3_column_blob(q, 1),
			 (size_t)sqlite3_column_bytes(q, 1));
		if (ret)
			goto out;
	}
	if (rc != SQLITE_DONE)
		ret = cat_errno(k->db, rc, "list referenced contents");
out:
	sqlite3_finalize(q);
	cat_conn_put(c, k);
	return ret;
}
