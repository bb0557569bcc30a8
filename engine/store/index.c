/*
 * index.c - REPO/index.db, the chunk index (FORMAT.md "Index").  SQLite
 * errors are mapped here only.  One connection per struct store, used
 * under st->db_lock.
 *
 * Read hold (read-only stores that ask for it, the file system daemon):
 * a lookup on its own is a read transaction of its own, three system
 * calls (lock and unlock of the WAL read mark, a fstat) for a query
 * answered from memory.  With a hold, lookups share one read transaction
 * for up to hold_ms; a thread ends an idle one after hold_ms so that a
 * writer's WAL can restart.  A held view may predate a chunk or pack the
 * writer committed since: a miss ends the hold and asks again, and so
 * does a caller whose chunk was moved (index_unhold()).
 */
#include <errno.h>
#include <string.h>

#include "store/store_i.h"
#include "util/log.h"
#include "util/util.h"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT);"
	"CREATE TABLE IF NOT EXISTS packs(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" name TEXT NOT NULL UNIQUE, size INTEGER NOT NULL,"
	" sealed INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS chunks(id BLOB PRIMARY KEY,"
	" pack INTEGER NOT NULL, off INTEGER NOT NULL,"
	" stored INTEGER NOT NULL, plain INTEGER NOT NULL,"
	" flags INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS chunks_pack ON chunks(pack, off);"
	"INSERT OR IGNORE INTO meta VALUES('format', '1');";

int index_errno(struct store *st, int rc, const char *what)
{
	const char *msg = st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);

	log_err("store: index '%s/index.db': %s: %s", st->repo, what, msg);
	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

int index_exec(struct store *st, const char *sql)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return index_errno(st, rc, sql);
	return 0;
}

int index_open(struct store *st, bool create)
{
	struct buf path = BUF_INIT;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	int rc, ret;

	if (create)
		flags |= SQLITE_OPEN_CREATE;
	ret = store_path(st, "index.db", &path);
	if (ret)
		goto out;
	rc = sqlite3_open_v2(path.data, &st->db, flags, NULL);
	if (rc != SQLITE_OK && !create) {
		/* a reader without write access to the repository */
		sqlite3_close(st->db);
		st->db = NULL;
		rc = sqlite3_open_v2(path.data, &st->db,
				     SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
				     NULL);
	}
	if (rc != SQLITE_OK) {
		ret = index_errno(st, rc, "open");
		sqlite3_close(st->db);
		st->db = NULL;
		goto out;
	}
	sqlite3_busy_timeout(st->db, 10000);
	ret = index_exec(st, "PRAGMA journal_mode=WAL;"
			     "PRAGMA synchronous=FULL;");
	if (!ret && create)
		ret = index_exec(st, schema);
out:
	buf_release(&path);
	return ret;
}

/* End the held read transaction, if any; st->db_lock held. */
static void hold_end(struct store *st)
{
	if (!st->held_ms)
		return;
	st->held_ms = 0;
	if (!sqlite3_get_autocommit(st->db) &&
	    sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Before a lookup: renew an old hold, or start one; st->db_lock held. */
static void hold_enter(struct store *st)
{
	int64_t now;

	if (!st->hold_ms)
		return;
	now = util_mono_ms();
	if (st->held_ms && (now - st->held_ms >= st->hold_ms ||
			    sqlite3_get_autocommit(st->db)))
		hold_end(st);
	if (!st->held_ms &&
	    sqlite3_exec(st->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK) {
		st->held_ms = now;
		pthread_cond_signal(&st->hold_cv);
	}
}

/*
 * Step lookup @q in the held transaction, and once more outside it when
 * the held view has no row: the row may have been committed since.
 */
static int hold_step(struct store *st, sqlite3_stmt *q)
{
	int rc;

	hold_enter(st);
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW && st->held_ms) {
		sqlite3_reset(q); /* keeps the bindings */
		hold_end(st);
		rc = sqlite3_step(q);
	}
	return rc;
}

void index_unhold(struct store *st)
{
	if (!st->hold_ms)
		return;
	pthread_mutex_lock(&st->db_lock);
	hold_end(st);
	pthread_mutex_unlock(&st->db_lock);
}

static void *hold_reaper(void *arg)
{
	struct store *st = arg;
	struct timespec ts;

	pthread_mutex_lock(&st->db_lock);
	while (!st->hold_stop) {
		int64_t left;

		if (!st->held_ms) {
			pthread_cond_wait(&st->hold_cv, &st->db_lock);
			continue;
		}
		left = st->held_ms + st->hold_ms - util_mono_ms();
		if (left <= 0) {
			hold_end(st);
			continue;
		}
		util_deadline_in(&ts, left);
		pthread_cond_timedwait(&st->hold_cv, &st->db_lock, &ts);
	}
	hold_end(st);
	pthread_mutex_unlock(&st->db_lock);
	return NULL;
}

int index_hold_start(struct store *st, unsigned ms)
{
	int rc;

	if (!ms || st->info.writable || st->hold_ms)
		return 0;
	pthread_cond_init(&st->hold_cv, NULL);
	st->hold_ms = ms;
	rc = pthread_create(&st->hold_thread, NULL, hold_reaper, st);
	if (rc) {
		st->hold_ms = 0;
		pthread_cond_destroy(&st->hold_cv);
		return -rc;
	}
	return 0;
}

void index_close(struct store *st)
{
	if (st->hold_ms) { /* the reaper runs */
		pthread_mutex_lock(&st->db_lock);
		st->hold_stop = true;
		pthread_cond_signal(&st->hold_cv);
		pthread_mutex_unlock(&st->db_lock);
		pthread_join(st->hold_thread, NULL);
		pthread_cond_destroy(&st->hold_cv);
		st->hold_ms = 0;
	}
	sqlite3_finalize(st->q_get);
	st->q_get = NULL;
	sqlite3_close(st->db);
	st->db = NULL;
}

int index_get(struct store *st, const unsigned char *id, struct loc *loc)
{
	sqlite3_stmt *q = NULL;
	int rc, ret;

	pthread_mutex_lock(&st->db_lock);
	if (!st->q_get) {
		rc = sqlite3_prepare_v3(st->db,
					"SELECT pack, off, stored, plain, flags"
					" FROM chunks WHERE id = ?",
					-1, SQLITE_PREPARE_PERSISTENT,
					&st->q_get, NULL);
		if (rc != SQLITE_OK) {
			ret = index_errno(st, rc, "prepare lookup");
			goto out;
		}
	}
	q = st->q_get;
	sqlite3_bind_blob(q, 1, id, 32, SQLITE_STATIC);
	rc = hold_step(st, q);
	if (rc == SQLITE_DONE) {
		ret = -ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = index_errno(st, rc, "lookup");
		goto out;
	}
	loc->pack = sqlite3_column_int64(q, 0);
	loc->off = (uint64_t)sqlite3_column_int64(q, 1);
	loc->stored = (uint32_t)sqlite3_column_int64(q, 2);
	loc->plain = (uint32_t)sqlite3_column_int64(q, 3);
	loc->flags = (uint8_t)sqlite3_column_int(q, 4);
	ret = 0;
out:
	sqlite3_reset(q);
	pthread_mutex_unlock(&st->db_lock);
	return ret;
}

int index_pack_name(struct store *st, int64_t pack, struct buf *name)
{
	sqlite3_stmt *q = NULL;
	int rc, ret;

	pthread_mutex_lock(&st->db_lock);
	rc = sqlite3_prepare_v2(st->db, "SELECT name FROM packs WHERE id = ?",
				-1, &q, NULL);
	if (rc != SQLITE_OK) {
		ret = index_errno(st, rc, "prepare pack name");
		goto out;
	}
	sqlite3_bind_int64(q, 1, pack);
	rc = hold_step(st, q);
	if (rc == SQLITE_DONE) {
		ret = -ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = index_errno(st, rc, "pack name");
		goto out;
	}
	ret = buf_adds(name, (const char *)sqlite3_column_text(q, 0));
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->db_lock);
	return ret;
}
