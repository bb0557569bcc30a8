/*
 * check.c - consistent copies, validation and import of copies, the
 * integrity check with the catalog's own invariants, statistics.
 */
#include "catalog/cat_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

/* Invariants: each query yields one row per problem (first column: text). */
static const char *const invariants[] = {
	"SELECT 'version ' || id || '@' || fsnap || ' ends before it starts'"
	" FROM ver WHERE tsnap IS NOT NULL AND tsnap <= fsnap",
	"SELECT 'item ' || a.id || ' has overlapping versions from ' ||"
	" a.fsnap || ' and ' || b.fsnap FROM ver a JOIN ver b INDEXED BY"
	" ver_id ON b.id = a.id AND b.fsnap > a.fsnap"
	" WHERE a.tsnap IS NULL OR a.tsnap > b.fsnap",
	"SELECT 'name ''' || a.name || ''' used twice in folder ' ||"
	" a.parent || ' at snapshot ' || b.fsnap FROM ver a JOIN ver b"
	" ON b.parent = a.parent AND b.name = a.name AND b.fsnap > a.fsnap"
	" WHERE a.tsnap IS NULL OR a.tsnap > b.fsnap",
	"SELECT 'item ' || v.id || ' has no current parent folder ' ||"
	" v.parent FROM ver v WHERE v.tsnap IS NULL AND v.parent != 1 AND"
	" NOT EXISTS (SELECT 1 FROM ver p INDEXED BY ver_id WHERE"
	" p.id = v.parent AND p.tsnap IS NULL AND p.kind NOT IN (8, 10))",
	"SELECT 'item ' || id || ' names missing content ' || content"
	" FROM ver WHERE content IS NOT NULL AND content NOT IN"
	" (SELECT id FROM content)",
	"SELECT 'item ' || id || ' was ended by failed snapshot ' || tsnap"
	" FROM ver WHERE tsnap IN (SELECT id FROM snap WHERE status = 3)",
	"SELECT 'item ' || id || ' has a version of failed snapshot ' ||"
	" fsnap FROM ver WHERE fsnap IN (SELECT id FROM snap WHERE"
	" status = 3)",
	"SELECT 'metadata of ' || m.id || '@' || m.fsnap || ' has no"
	" version' FROM vmeta m WHERE NOT EXISTS (SELECT 1 FROM ver v"
	" INDEXED BY ver_id WHERE v.id = m.id AND v.fsnap = m.fsnap)",
	"SELECT 'item ' || id || ' has an unknown kind ' || kind FROM ver"
	" WHERE kind NOT BETWEEN 1 AND 10",
	"SELECT 'content ' || id || ' has a bad SHA-256' FROM content"
	" WHERE typeof(sha256) != 'blob' OR length(sha256) != 32",
};

static int report(cat_problem_cb cb, void *ctx, int64_t *n, const char *s)
{
	(*n)++;
	log_warn("catalog check: %s", s);
	if (cb)
		cb(ctx, s);
	return 0;
}

int cat_check_db(sqlite3 *db, cat_problem_cb cb, void *ctx, int64_t *problems)
{
	sqlite3_stmt *q = NULL;
	int64_t n = 0;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check(100)", -1, &q,
				NULL);
	if (rc != SQLITE_OK) {
		ret = cat_errno(db, rc, "integrity check");
		goto out;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(q, 0);

		if (!s || strcmp(s, "ok"))
			report(cb, ctx, &n, s ? s : "integrity check failed");
	}
	if (rc != SQLITE_DONE) {
		ret = cat_errno(db, rc, "integrity check");
		goto out;
	}
	sqlite3_finalize(q);
	q = NULL;
	if (n)
		goto out; /* own checks on a damaged file tell nothing more */
	for (size_t i = 0; i < ARRAY_SIZE(invariants); i++) {
		rc = sqlite3_prepare_v2(db, invariants[i], -1, &q, NULL);
		if (rc != SQLITE_OK) {
			ret = cat_errno(db, rc, "catalog invariant");
			goto out;
		}
		while ((rc = sqlite3_step(q)) == SQLITE_ROW && n < 1000) {
			const char *s = (const char *)sqlite3_column_text(q, 0);

			report(cb, ctx, &n, s ? s : "invariant broken");
		}
		if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
			ret = cat_errno(db, rc, "catalog invariant");
			goto out;
		}
		sqlite3_finalize(q);
		q = NULL;
	}
out:
	sqlite3_finalize(q);
	if (problems)
		*problems = n;
	if (ret == 0 && n)
		ret = -EBADMSG;
	return ret;
}

int cat_check(struct cat *c, cat_problem_cb cb, void *ctx, int64_t *problems)
{
	struct conn *k;
	int ret;

	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	ret = cat_check_db(k->db, cb, ctx, problems);
	cat_conn_put(c, k);
	return ret;
}

static int fsync_path(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0 || fsync(fd) < 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		log_err("catalog: cannot sync '%s': %s", path, strerror(-ret));
	return ret;
}

int cat_copy(struct cat *c, const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	struct buf tmp = BUF_INIT;
	int rc, ret;

	ret = buf_addf(&tmp, "%s.tmp", path);
	if (ret < 0)
		return ret;
	if (unlink(tmp.data) < 0 && errno != ENOENT) {
		ret = -errno;
		goto out;
	}
	/* a connection of its own: committed state only, never a batch */
	ret = cat_db_open(c->path, SQLITE_OPEN_READWRITE, &db);
	if (ret == -EROFS || ret == -EACCES)
		ret = cat_db_open(c->path, SQLITE_OPEN_READONLY, &db);
	if (ret < 0)
		goto out;
	rc = sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(q, 1, tmp.data, -1, SQLITE_STATIC);
		rc = sqlite3_step(q);
	}
	if (rc != SQLITE_DONE) {
		ret = cat_errno(db, rc, "copy catalog");
		goto out;
	}
	ret = fsync_path(tmp.data);
	if (ret == 0 && rename(tmp.data, path) < 0) {
		ret = -errno;
		log_err("catalog: cannot rename '%s': %s", tmp.data,
			strerror(errno));
	}
out:
	sqlite3_finalize(q);
	sqlite3_close(db);
	if (ret < 0)
		unlink(tmp.data);
	buf_release(&tmp);
	return ret;
}

/* "file:" URI of @path opened immutable (no locks, no WAL, no writes). */
static int immutable_uri(const char *path, struct buf *uri)
{
	int ret = buf_adds(uri, "file:");

	for (const char *p = path; *p && ret == 0; p++) {
		if (*p == '?' || *p == '#' || *p == '%')
			ret = buf_addf(uri, "%%%02X", (unsigned char)*p);
		else
			ret = buf_addch(uri, *p);
	}
	if (ret == 0)
		ret = buf_adds(uri, "?immutable=1");
	return ret;
}

int cat_validate(const char *copy)
{
	sqlite3 *db = NULL;
	struct buf uri = BUF_INIT;
	char head[16];
	int fd, ret;

	fd = open(copy, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_err("catalog: cannot open copy '%s': %s", copy,
			strerror(errno));
		return ret;
	}
	ret = util_pread_all(fd, head, sizeof(head), 0);
	close(fd);
	if (ret < 0 || memcmp(head, "SQLite format 3", 16)) {
		log_err("catalog: '%s' is not a catalog copy", copy);
		return -EBADMSG;
	}
	ret = immutable_uri(copy, &uri);
	if (ret < 0)
		goto out;
	ret = cat_db_open(uri.data, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
			  &db);
	if (ret == 0)
		ret = cat_schema_check(db, false);
	if (ret == 0)
		ret = cat_check_db(db, NULL, NULL, NULL);
out:
	sqlite3_close(db);
	buf_release(&uri);
	if (ret < 0 && ret != -ENOMEM && ret != -EPROTO) {
		log_err("catalog: copy '%s' is damaged: run 'm365-snapshot "
			"check' on the repository",
			copy);
		ret = -EBADMSG;
	}
	return ret;
}

static int copy_file(const char *from, const char *to)
{
	char b[65536];
	int in = -1, out = -1, ret = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in >= 0)
		out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (in < 0 || out < 0) {
		ret = -errno;
		goto out;
	}
	while ((n = read(in, b, sizeof(b))) > 0) {
		ret = util_write_all(out, b, (size_t)n);
		if (ret < 0)
			goto out;
	}
	if (n < 0 || fsync(out) < 0)
		ret = -errno;
out:
	if (ret < 0)
		log_err("catalog: cannot copy '%s' to '%s': %s", from, to,
			strerror(-ret));
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ret;
}

int cat_import(const char *copy, const char *path)
{
	struct buf tmp = BUF_INIT, side = BUF_INIT;
	struct cat *c = NULL;
	int ret;

	ret = cat_validate(copy);
	if (ret < 0)
		return ret;
	ret = buf_addf(&tmp, "%s.import", path);
	if (ret < 0)
		goto out;
	unlink(tmp.data);
	ret = copy_file(copy, tmp.data);
	if (ret < 0)
		goto out;
	/* migrate, WAL mode, roll back runs that were open in the copy */
	ret = cat_open(tmp.data, CAT_OPEN_WRITE | CAT_OPEN_COPY, &c);
	if (ret < 0)
		goto out;
	cat_close(c);
	ret = fsync_path(tmp.data);
	if (ret < 0)
		goto out;
	/* a WAL left by the old file must never be applied to the new one */
	for (int i = 0; i < 2 && ret == 0; i++) {
		buf_reset(&side);
		ret = buf_addf(&side, "%s%s", path, i ? "-shm" : "-wal");
		if (ret == 0 && unlink(side.data) < 0 && errno != ENOENT)
			ret = -errno;
	}
	if (ret == 0 && rename(tmp.data, path) < 0)
		ret = -errno;
	if (ret < 0)
		log_err("catalog: cannot install '%s': %s", path,
			strerror(-ret));
out:
	if (ret < 0 && tmp.len)
		unlink(tmp.data);
	buf_release(&tmp);
	buf_release(&side);
	return ret;
}

int cat_stats(struct cat *c, struct cat_stats *out)
{
	static const char *const sql[] = {
		"SELECT count(*) FROM ver",
		"SELECT count(*) FROM (SELECT DISTINCT id FROM ver)",
		"SELECT count(*) FROM content",
		"SELECT count(*) FROM snap",
	};
	int64_t *dst[] = { &out->versions, &out->items, &out->contents,
			   &out->snapshots };
	struct conn *k;
	struct buf wal = BUF_INIT;
	struct stat st;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	k = cat_conn_get(c);
	if (!k)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(sql) && ret == 0; i++)
		ret = cat_int_query(k->db, sql[i], dst[i]);
	cat_conn_put(c, k);
	if (ret < 0)
		return ret;
	if (stat(c->path, &st) == 0)
		out->file_bytes = st.st_size;
	if (buf_addf(&wal, "%s-wal", c->path) == 0 && stat(wal.data, &st) == 0)
		out->file_bytes += st.st_size;
	buf_release(&wal);
	return 0;
}
