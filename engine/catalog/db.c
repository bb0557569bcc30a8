/*
 * db.c - opening, schema and migrations, the connection pool with its
 * cached statements, SQLite error mapping, writer batches.
 */
#include "catalog/cat_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define VER_COLS                                                               \
	"id,parent,fsnap,tsnap,kind,size,mtime,mtime_ns,btime,btime_ns,content,name"

static const char *const cat_sql[Q_MAX] = {
	[Q_LOOKUP] = "SELECT " VER_COLS " FROM ver WHERE parent=?1 AND name=?2"
		     " AND fsnap<=?3 AND (tsnap IS NULL OR tsnap>?3)"
		     " ORDER BY fsnap DESC LIMIT 1",
	[Q_GET] = "SELECT " VER_COLS " FROM ver INDEXED BY ver_id WHERE id=?1"
		  " AND fsnap<=?2 AND (tsnap IS NULL OR tsnap>?2)"
		  " ORDER BY fsnap DESC LIMIT 1",
	[Q_LIST] = "SELECT " VER_COLS " FROM ver WHERE parent=?1 AND name>?3"
		   " AND fsnap<=?2 AND (tsnap IS NULL OR tsnap>?2)"
		   " ORDER BY name",
	[Q_CUR_BY_ID] = "SELECT " VER_COLS " FROM ver INDEXED BY ver_id"
			" WHERE id=?1 AND tsnap IS NULL",
	[Q_CUR_BY_NAME] = "SELECT " VER_COLS " FROM ver WHERE parent=?1"
			  " AND name=?2 AND tsnap IS NULL",
	[Q_VER_INSERT] = "INSERT INTO ver(parent,name,fsnap,tsnap,id,kind,size,"
			 "mtime,mtime_ns,btime,btime_ns,content) VALUES"
			 "(?1,?2,?3,NULL,?4,?5,?6,?7,?8,?9,?10,?11)",
	[Q_VER_END] = "UPDATE ver SET tsnap=?4 WHERE parent=?1 AND name=?2"
		      " AND fsnap=?3",
	[Q_VER_DEL] =
		"DELETE FROM ver WHERE parent=?1 AND name=?2 AND fsnap=?3",
	[Q_VMETA_GET] = "SELECT kv FROM vmeta WHERE id=?1 AND fsnap=?2",
	[Q_VMETA_PUT] = "INSERT OR REPLACE INTO vmeta(id,fsnap,kv)"
			" VALUES(?1,?2,?3)",
	[Q_VMETA_DEL] = "DELETE FROM vmeta WHERE id=?1 AND fsnap=?2",
	[Q_MSG_GET] = "SELECT subject,sender FROM msgtext WHERE id=?1"
		      " AND fsnap=?2",
	[Q_MSG_PUT] = "INSERT OR REPLACE INTO msgtext(id,fsnap,subject,sender)"
		      " VALUES(?1,?2,?3,?4)",
	[Q_MSG_DEL] = "DELETE FROM msgtext WHERE id=?1 AND fsnap=?2",
	[Q_GID_GET] = "SELECT id FROM gid WHERE sid=?1 AND gid=?2",
	[Q_GID_PUT] = "INSERT INTO gid(sid,gid,id) VALUES(?1,?2,?3)",
	[Q_SCOPE_GET] = "SELECT sid FROM scope WHERE name=?1",
	[Q_SCOPE_PUT] = "INSERT INTO scope(name) VALUES(?1)",
	[Q_SEEN_PUT] =
		"INSERT OR REPLACE INTO temp.seen(id, gen) VALUES(?1,?2)",
	[Q_RUNLOG_PUT] = "INSERT OR IGNORE INTO runlog(id) VALUES(?1)",
	[Q_CHILDREN_CUR] = "SELECT id FROM ver WHERE parent=?1"
			   " AND tsnap IS NULL",
	[Q_CONTENT_SHA] = "SELECT id,size,sha256,qxh FROM content"
			  " WHERE sha256=?1",
	[Q_CONTENT_QXH] = "SELECT id,size,sha256,qxh FROM content"
			  " WHERE size=?1 AND qxh=?2",
	[Q_CONTENT_GET] = "SELECT id,size,sha256,qxh,desc FROM content"
			  " WHERE id=?1",
	[Q_CONTENT_PUT] = "INSERT INTO content(size,sha256,qxh,desc)"
			  " VALUES(?1,?2,?3,?4)",
	[Q_CONTENT_SET_QXH] = "UPDATE content SET qxh=?2 WHERE id=?1"
			      " AND qxh IS NULL",
	[Q_SNAP_GET] = "SELECT id,start,end,status,items,files,messages,"
		       "bytes_new,bytes_reused,requests,throttled,errors"
		       " FROM snap WHERE id=?1",
	[Q_SNAP_LATEST] = "SELECT max(id) FROM snap WHERE status IN (1,2)",
	[Q_RESTORE_ENQUEUE] = "INSERT INTO restore(target, spool, size, "
			      "status, created, updated) "
			      "VALUES(?1,?2,?3,0,?4,?4)",
	[Q_RESTORE_CLAIM] = "UPDATE restore SET status=1, attempts="
			    "attempts+1, updated=?1 WHERE id=(SELECT id "
			    "FROM restore WHERE status=0 ORDER BY id "
			    "LIMIT 1) RETURNING " CAT_RESTORE_COLS,
	[Q_RESTORE_UPDATE] = "UPDATE restore SET status=?2, reason="
			     "coalesce(?3, reason), remote_id=coalesce(?4,"
			     " remote_id), updated=?5 WHERE id=?1",
	[Q_RESTORE_GET] = "SELECT " CAT_RESTORE_COLS " FROM restore "
			  "WHERE id=?1",
	[Q_RESTORE_LIST] = "SELECT " CAT_RESTORE_COLS " FROM restore "
			   "ORDER BY id",
	[Q_RDATA_PUT] = "INSERT INTO restore_data(id, data) VALUES(?1,?2)",
	[Q_RDATA_GET] = "SELECT data FROM restore_data WHERE id=?1",
	[Q_RDATA_DEL] = "DELETE FROM restore_data WHERE id=?1",
};

/* Schema version 1; later versions add a migration below. */
static const char schema_v1[] =
	"CREATE TABLE kv(key TEXT PRIMARY KEY, val) WITHOUT ROWID;"
	"CREATE TABLE snap(id INTEGER PRIMARY KEY, start INTEGER NOT NULL,"
	" end INTEGER NOT NULL DEFAULT 0, status INTEGER NOT NULL,"
	" items INTEGER NOT NULL DEFAULT 0, files INTEGER NOT NULL DEFAULT 0,"
	" messages INTEGER NOT NULL DEFAULT 0,"
	" bytes_new INTEGER NOT NULL DEFAULT 0,"
	" bytes_reused INTEGER NOT NULL DEFAULT 0,"
	" requests INTEGER NOT NULL DEFAULT 0,"
	" throttled INTEGER NOT NULL DEFAULT 0,"
	" errors INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE snap_error(snap INTEGER NOT NULL, service TEXT,"
	" path TEXT, graph_id TEXT, reason TEXT);"
	"CREATE INDEX snap_error_snap ON snap_error(snap);"
	"CREATE TABLE scope(sid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE gid(sid INTEGER NOT NULL, gid TEXT NOT NULL,"
	" id INTEGER NOT NULL, PRIMARY KEY(sid, gid)) WITHOUT ROWID;"
	"CREATE TABLE ver(parent INTEGER NOT NULL, name TEXT NOT NULL,"
	" fsnap INTEGER NOT NULL, tsnap INTEGER, id INTEGER NOT NULL,"
	" kind INTEGER NOT NULL, size INTEGER NOT NULL,"
	" mtime INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
	" btime INTEGER NOT NULL, btime_ns INTEGER NOT NULL,"
	" content INTEGER, PRIMARY KEY(parent, name, fsnap)) WITHOUT ROWID;"
	"CREATE INDEX ver_id ON ver(id, fsnap);"
	"CREATE TABLE vmeta(id INTEGER NOT NULL, fsnap INTEGER NOT NULL,"
	" kv BLOB NOT NULL, PRIMARY KEY(id, fsnap)) WITHOUT ROWID;"
	"CREATE TABLE msgtext(id INTEGER NOT NULL, fsnap INTEGER NOT NULL,"
	" subject TEXT, sender TEXT, PRIMARY KEY(id, fsnap)) WITHOUT ROWID;"
	"CREATE TABLE content(id INTEGER PRIMARY KEY, size INTEGER NOT NULL,"
	" sha256 BLOB NOT NULL UNIQUE, qxh BLOB, desc BLOB NOT NULL);"
	"CREATE INDEX content_qxh ON content(size, qxh) WHERE qxh IS NOT NULL;"
	"CREATE TABLE delta(sid INTEGER NOT NULL, snap INTEGER NOT NULL,"
	" token TEXT, PRIMARY KEY(sid, snap)) WITHOUT ROWID;"
	"CREATE TABLE runlog(id INTEGER PRIMARY KEY);"
	"CREATE TABLE restore(id INTEGER PRIMARY KEY, target TEXT NOT NULL,"
	" spool TEXT NOT NULL, size INTEGER NOT NULL, status INTEGER NOT NULL,"
	" reason TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
	" created INTEGER NOT NULL, updated INTEGER NOT NULL, remote_id TEXT);"
	"CREATE INDEX restore_status ON restore(status, id);";

/*
 * migrations[v] turns schema version v into v + 1.  Version 1 is the
 * first; nothing to migrate yet.
 */
static const char *const migrations[CAT_SCHEMA_VERSION] = {
	[0] = schema_v1,
};

int cat_errno(sqlite3 *db, int rc, const char *what)
{
	int e;

	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		e = EBUSY;
		break;
	case SQLITE_NOMEM:
		e = ENOMEM;
		break;
	case SQLITE_READONLY:
		e = EROFS;
		break;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_FORMAT:
		e = EBADMSG;
		break;
	case SQLITE_FULL:
		e = ENOSPC;
		break;
	case SQLITE_CANTOPEN:
		e = ENOENT;
		break;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		e = EACCES;
		break;
	case SQLITE_CONSTRAINT:
		e = EEXIST;
		break;
	case SQLITE_TOOBIG:
		e = E2BIG;
		break;
	case SQLITE_INTERRUPT:
		e = EINTR;
		break;
	default:
		e = EIO;
		break;
	}
	log_err("catalog: %s failed: %s (sqlite %d)", what,
		db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
	return -e;
}

int cat_exec(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : cat_errno(db, rc, sql);
}

int cat_int_query(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *q = NULL;
	int rc, ret;

	rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
	if (rc != SQLITE_OK) {
		ret = cat_errno(db, rc, sql);
		goto out;
	}
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(q, 0);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		ret = cat_errno(db, rc, sql);
	}
out:
	sqlite3_finalize(q);
	return ret;
}

/*
 * The writer's page cache, KiB.  Fixed and small, so that a snapshot's
 * memory does not grow with the catalog (a 64 MiB cache filled on big
 * tenants: 176 vs 82 MiB peak RSS at 100,000 vs 3,000 files); the
 * kernel's page cache holds the rest, and commits every 0.5 s touch few
 * pages: ingest and 1% incremental at 300,000 items as fast as with
 * 64 MiB (bench/catalog, CAT_BENCH_BATCH=20000).
 */
#define CAT_WRITER_CACHE_KIB "8192"

int cat_db_open(const char *path, int sqlite_flags, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int rc, ret;

	rc = sqlite3_open_v2(path, &db, sqlite_flags | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		ret = cat_errno(db, rc, "open catalog");
		goto out;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
	sqlite3_busy_timeout(db, 10000);
	/*
	 * No mmap and 4 MiB of page cache per connection: a mapped catalog
	 * counts in the daemon's RSS (240 MB vs 9 MB after 300k lookups at
	 * 300k items) for 1.5 us less per lookup; the kernel caches anyway.
	 */
	ret = cat_exec(db, "PRAGMA cell_size_check=ON;"
			   "PRAGMA foreign_keys=OFF;"
			   "PRAGMA mmap_size=0;"
			   "PRAGMA cache_size=-4096");
	if (ret < 0)
		goto out;
	*out = db;
	db = NULL;
out:
	sqlite3_close(db);
	return ret;
}

/*
 * Check that @db is a catalog of a version we read; with @may_migrate
 * create it when empty and migrate an older one (writer only).
 */
int cat_schema_check(sqlite3 *db, bool may_migrate)
{
	int64_t ver = 0, app = 0, tables = 0;
	int ret;
	char sql[64];

	ret = cat_int_query(db, "PRAGMA user_version", &ver);
	if (ret == 0)
		ret = cat_int_query(db, "PRAGMA application_id", &app);
	if (ret == 0)
		ret = cat_int_query(db, "SELECT count(*) FROM sqlite_master",
				    &tables);
	if (ret < 0)
		return ret;
	if (ver == 0 && app == 0 && tables == 0 && may_migrate) {
		/* new file */
	} else if (app != CAT_APP_ID) {
		log_err("catalog: file is not an m365 catalog (application id "
			"%lld)",
			(long long)app);
		return -EBADMSG;
	}
	if (ver > CAT_SCHEMA_VERSION) {
		log_err("catalog: schema version %lld is newer than this "
			"program's (%d): upgrade m365fs",
			(long long)ver, CAT_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (ver == CAT_SCHEMA_VERSION)
		return 0;
	if (!may_migrate) {
		log_err("catalog: schema version %lld is older than %d: run "
			"'m365-snapshot' once to upgrade it",
			(long long)ver, CAT_SCHEMA_VERSION);
		return -EPROTO;
	}
	ret = cat_exec(db, "PRAGMA journal_mode=WAL");
	if (ret < 0)
		return ret;
	ret = cat_exec(db, "BEGIN IMMEDIATE");
	if (ret < 0)
		return ret;
	for (; ver < CAT_SCHEMA_VERSION; ver++) {
		ret = cat_exec(db, migrations[ver]);
		if (ret < 0)
			goto fail;
		log_info("catalog: schema migrated to version %lld",
			 (long long)ver + 1);
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
		 CAT_SCHEMA_VERSION);
	ret = cat_exec(db, sql);
	if (ret == 0) {
		snprintf(sql, sizeof(sql), "PRAGMA application_id=%d",
			 CAT_APP_ID);
		ret = cat_exec(db, sql);
	}
	if (ret == 0)
		ret = cat_exec(db, "COMMIT");
	if (ret == 0)
		return 0;
fail:
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

static void conn_free(struct conn *k)
{
	if (!k)
		return;
	for (int i = 0; i < Q_MAX; i++)
		sqlite3_finalize(k->st[i]);
	sqlite3_close(k->db);
	free(k);
}

/* WAL pages after which the checkpointer runs (SQLite's default) */
#define CAT_CKPT_PAGES	1000
#define CAT_CKPT_PASSES 16

/*
 * Checkpoint @db so that the next commit starts the WAL over (the file
 * stays at its size: no growth, and a commit's flush has no new file size
 * to write): passive passes copy the WAL into the database while commits
 * go on, until one catches up or CAT_CKPT_PASSES did not; a restart
 * checkpoint then copies what is left (commits wait for that only) and
 * checks that no reader of an older snapshot is left.
 */
static int ckpt_passes(sqlite3 *db)
{
	int rc = SQLITE_OK, pages = 0, done = 0, i;

	for (i = 0; i < CAT_CKPT_PASSES; i++) {
		rc = sqlite3_wal_checkpoint_v2(
			db, NULL, SQLITE_CHECKPOINT_PASSIVE, &pages, &done);
		if (rc != SQLITE_OK || done >= pages)
			break;
	}
	if (rc == SQLITE_OK)
		rc = sqlite3_wal_checkpoint_v2(
			db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
	return rc;
}

/*
 * The checkpointer: passive checkpoints on a connection of its own, so
 * that no commit of a pool connection (a close() in restore/ waiting for
 * its enqueue) copies the WAL into the database first.
 */
static void *ckpt_main(void *arg)
{
	struct cat *c = arg;
	sqlite3 *db = NULL;
	int rc;

	pthread_mutex_lock(&c->ckpt_lock);
	for (;;) {
		while (!c->ckpt_want && !c->ckpt_stop)
			pthread_cond_wait(&c->ckpt_cond, &c->ckpt_lock);
		if (c->ckpt_stop)
			break;
		c->ckpt_want = false;
		pthread_mutex_unlock(&c->ckpt_lock);
		if (!db && cat_db_open(c->path, SQLITE_OPEN_READWRITE, &db) < 0)
			db = NULL;
		/* no waiting: the restart checkpoint holds the write lock
		 * while it waits for readers (a browsing reader keeps its
		 * snapshot up to 100 ms); busy, it is tried again at the
		 * next commit */
		if (db)
			sqlite3_busy_timeout(db, 0);
		rc = db ? ckpt_passes(db) : SQLITE_CANTOPEN;
		if (rc != SQLITE_OK && rc != SQLITE_BUSY)
			log_debug("catalog: checkpoint of '%s': %s", c->path,
				  sqlite3_errstr(rc));
		pthread_mutex_lock(&c->ckpt_lock);
	}
	pthread_mutex_unlock(&c->ckpt_lock);
	sqlite3_close(db);
	return NULL;
}

/*
 * After each commit of a pool connection: @pages in the WAL.  Beyond
 * CAT_CKPT_PAGES the checkpointer is woken (once for all the commits
 * while it works) until the WAL has started over.
 */
static int wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
	struct cat *c = ctx;
	bool run;

	(void)name;
	if (pages < CAT_CKPT_PAGES)
		return SQLITE_OK;
	pthread_mutex_lock(&c->ckpt_lock);
	if (!c->ckpt_run && !c->ckpt_stop)
		c->ckpt_run = pthread_create(&c->ckpt, NULL, ckpt_main, c) == 0;
	run = c->ckpt_run;
	c->ckpt_want = true;
	pthread_cond_signal(&c->ckpt_cond);
	pthread_mutex_unlock(&c->ckpt_lock);
	/* without the thread, this commit checkpoints as SQLite would */
	if (!run)
		sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE,
					  NULL, NULL);
	return SQLITE_OK;
}

static int conn_new(struct cat *c, struct conn **out)
{
	struct conn *k;
	int ret, fl;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	fl = SQLITE_OPEN_READWRITE;
	if (c->writer)
		fl |= SQLITE_OPEN_CREATE;
	ret = cat_db_open(c->path, fl, &k->db);
	if (ret == -EROFS || ret == -EACCES)
		ret = cat_db_open(c->path, SQLITE_OPEN_READONLY, &k->db);
	if (ret < 0)
		goto out;
	if (!c->writer)
		/* restore-queue writes are durable before they return */
		ret = cat_exec(k->db, "PRAGMA synchronous=FULL");
	if (ret == 0 && !c->writer)
		sqlite3_wal_hook(k->db, wal_hook, c); /* no autocheckpoint */
out:
	if (ret < 0) {
		conn_free(k);
		k = NULL;
	}
	*out = k;
	return ret;
}

/* End the browse transaction of @k, if any; c->lock held. */
static void conn_unhold(struct cat *c, struct conn *k)
{
	if (!k->held_ms)
		return;
	if (!sqlite3_get_autocommit(k->db) &&
	    sqlite3_exec(k->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		sqlite3_exec(k->db, "ROLLBACK", NULL, NULL, NULL);
	k->held_ms = 0;
	c->held--;
}

static struct conn *conn_take(struct cat *c, bool browse)
{
	struct conn *k;
	int64_t now;

	pthread_mutex_lock(&c->lock);
	if (c->writer)
		return c->w; /* the lock stays held until cat_conn_put() */
	k = c->free;
	if (k) {
		c->free = k->next;
		now = browse ? util_mono_ms() : 0;
		if (k->held_ms && (!browse || now - k->held_ms >= c->hold_ms ||
				   k->held_gen != c->read_gen))
			conn_unhold(c, k);
	}
	pthread_mutex_unlock(&c->lock);
	if (!k && conn_new(c, &k) < 0)
		return NULL;
	k->next = NULL;
	return k;
}

struct conn *cat_conn_get(struct cat *c)
{
	return conn_take(c, false);
}

/*
 * A connection for the browse queries (lookup, get, list, content): with a read
 * hold set, they run in a read transaction that stays open on the
 * connection for up to hold_ms and until cat_read_refresh().  A statement
 * in an open transaction takes no locks; on its own it costs three system
 * calls (the WAL read mark's lock and unlock, a fstat), which were a tenth
 * of the daemon's time per cold lookup.  Every other call ends the
 * transaction first (cat_conn_get()), so it sees the newest commit.
 */
struct conn *cat_conn_browse(struct cat *c)
{
	struct conn *k = conn_take(c, true);

	if (!k || c->writer || !c->hold_ms)
		return k;
	if (k->held_ms && !sqlite3_get_autocommit(k->db))
		return k; /* still held: no second trip through the lock */
	pthread_mutex_lock(&c->lock);
	if (k->held_ms) {
		k->held_ms = 0; /* ended by an error */
		c->held--;
	}
	if (!k->held_ms &&
	    sqlite3_exec(k->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK) {
		k->held_ms = util_mono_ms();
		k->held_gen = c->read_gen;
		if (c->held++ == 0)
			pthread_cond_signal(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return k;
}

void cat_conn_put(struct cat *c, struct conn *k)
{
	if (c->writer) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (!k)
		return;
	pthread_mutex_lock(&c->lock);
	k->next = c->free;
	c->free = k;
	pthread_mutex_unlock(&c->lock);
}

void cat_conn_drop(struct cat *c, struct conn *k)
{
	if (c->writer)
		cat_conn_put(c, k);
	else
		conn_free(k);
}

int cat_stmt(struct conn *k, enum cat_q q, sqlite3_stmt **out)
{
	int rc;

	if (!k->st[q]) {
		rc = sqlite3_prepare_v3(k->db, cat_sql[q], -1,
					SQLITE_PREPARE_PERSISTENT, &k->st[q],
					NULL);
		if (rc != SQLITE_OK) {
			*out = NULL;
			return cat_errno(k->db, rc, cat_sql[q]);
		}
	}
	*out = k->st[q];
	return 0;
}

/* ---- writer batches ---- */

int cat_need_writer(struct cat *c)
{
	if (!c->writer) {
		log_err("catalog: write on a catalog opened read-only");
		return -EROFS;
	}
	return 0;
}

/*
 * Start (or continue) a write of the writer, lock held: with @need_snap a
 * snapshot must run; a run that lost a batch accepts no more writes.
 */
int cat_wbegin(struct cat *c, bool need_snap)
{
	if (need_snap && !c->snap) {
		log_err("catalog: no snapshot is running");
		return -EINVAL;
	}
	if (c->snap && c->run_err)
		return c->run_err;
	return cat_txn_ensure(c);
}

int cat_txn_ensure(struct cat *c)
{
	int ret;

	if (c->in_txn)
		return 0;
	if (c->qfd >= 0) { /* let a waiting restore enqueue go first */
		flock(c->qfd, LOCK_SH);
		flock(c->qfd, LOCK_UN);
	}
	ret = cat_exec(c->w->db, "BEGIN IMMEDIATE");
	if (ret < 0)
		return ret;
	c->in_txn = true;
	c->txn_start_ms = util_mono_ms();
	c->changes = 0;
	return 0;
}

static int kv_set_int(sqlite3 *db, const char *key, int64_t val)
{
	sqlite3_stmt *q = NULL;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(db,
				"INSERT OR REPLACE INTO kv(key,val) "
				"VALUES(?1,?2)",
				-1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, val);
		rc = sqlite3_step(q);
	}
	if (rc != SQLITE_DONE)
		ret = cat_errno(db, rc, "save next item id");
	sqlite3_finalize(q);
	return ret;
}

/* Commit the open batch: counters and next id, hook, COMMIT. */
int cat_txn_commit(struct cat *c)
{
	int ret;

	if (!c->in_txn)
		return 0;
	ret = cat_counters_flush(c);
	if (ret == 0)
		ret = kv_set_int(c->w->db, "next_item_id", c->next_id);
	if (ret == 0 && c->hook)
		ret = c->hook(c->hook_ctx);
	if (ret == 0)
		ret = cat_exec(c->w->db, "COMMIT");
	if (ret < 0) {
		/* the batch is lost: the run can only be rolled back now */
		sqlite3_exec(c->w->db, "ROLLBACK", NULL, NULL, NULL);
		c->in_txn = false;
		if (c->snap && !c->run_err) {
			c->run_err = ret;
			log_err("catalog: a batch of snapshot %lld could not be "
				"committed: the snapshot will be rolled back",
				(long long)c->snap);
		}
		return ret;
	}
	c->in_txn = false;
	c->changes = 0;
	return 0;
}

/* Count one change; commit the batch when it is large or old. */
int cat_note_change(struct cat *c)
{
	if (++c->changes >= c->batch_rows ||
	    util_mono_ms() - c->txn_start_ms > c->batch_ms)
		return cat_txn_commit(c);
	return 0;
}

void cat_set_batch(struct cat *c, unsigned rows, unsigned ms)
{
	pthread_mutex_lock(&c->lock);
	c->batch_rows = rows ? rows : CAT_BATCH_ROWS;
	c->batch_ms = ms ? ms : 500;
	pthread_mutex_unlock(&c->lock);
}

/*
 * The committer thread: a batch left open while the walker waits for the
 * network would hold the write lock (and block restore enqueues of the
 * daemon); commit it after a second of quiet.
 */
static void *committer_main(void *arg)
{
	struct cat *c = arg;
	struct timespec ts;
	int64_t now;

	pthread_mutex_lock(&c->lock);
	while (!c->committer_stop) {
		if (!c->writer && !c->held) {
			pthread_cond_wait(&c->cond, &c->lock);
			continue;
		}
		util_deadline_in(&ts, c->writer ? 250 : c->hold_ms);
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
		now = util_mono_ms();
		if (c->writer && c->in_txn &&
		    now - c->txn_start_ms > c->batch_ms)
			cat_txn_commit(c); /* errors logged; batch lost */
		/* a reader's idle browse transactions: the WAL cannot restart
		   past them */
		for (struct conn *k = c->free; k && !c->writer; k = k->next)
			if (k->held_ms && now - k->held_ms >= c->hold_ms)
				conn_unhold(c, k);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void cat_set_read_hold(struct cat *c, unsigned ms)
{
	pthread_mutex_lock(&c->lock);
	if (!c->writer && !c->committer_run && ms &&
	    pthread_create(&c->committer, NULL, committer_main, c) == 0)
		c->committer_run = true;
	if (c->committer_run && !c->writer)
		c->hold_ms = ms;
	pthread_mutex_unlock(&c->lock);
}

void cat_read_refresh(struct cat *c)
{
	pthread_mutex_lock(&c->lock);
	c->read_gen++;
	pthread_mutex_unlock(&c->lock);
}

/* Restore-queue writes on the writer: nothing of a batch may wait. */
void cat_restore_prepare(struct cat *c)
{
	if (c->writer && c->in_txn)
		cat_txn_commit(c);
}

/* ---- open / close ---- */

int cat_open(const char *path, int flags, struct cat **out)
{
	struct cat *c = NULL;
	struct conn *k = NULL;
	int64_t v = 0;
	int ret;

	*out = NULL;
	if (!(flags & CAT_OPEN_CREATE) && access(path, F_OK) < 0) {
		ret = -errno;
		if (ret != -ENOENT)
			log_err("catalog: cannot access '%s': %s", path,
				strerror(-ret));
		return ret;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->qlock, NULL);
	pthread_cond_init(&c->cond, NULL);
	pthread_mutex_init(&c->ckpt_lock, NULL);
	pthread_cond_init(&c->ckpt_cond, NULL);
	c->qfd = -1;
	c->batch_rows = CAT_BATCH_ROWS;
	c->batch_ms = 500;
	c->writer = flags & (CAT_OPEN_WRITE | CAT_OPEN_CREATE);
	c->copy = flags & CAT_OPEN_COPY;
	c->path = strdup(path);
	if (!c->path) {
		ret = -ENOMEM;
		goto out;
	}
	ret = conn_new(c, &k);
	if (ret < 0)
		goto out;
	{
		struct buf q = BUF_INIT;

		if (buf_addf(&q, "%s-rqlock", path) == 0)
			c->qfd = open(q.data, O_RDWR | O_CREAT | O_CLOEXEC,
				      0644);
		buf_release(&q);
	}
	ret = cat_schema_check(k->db, c->writer);
	if (ret < 0)
		goto out;
	if (!c->writer) {
		c->free = k;
		k = NULL;
		*out = c;
		c = NULL;
		goto out;
	}
	c->w = k;
	k = NULL;
	ret = cat_exec(c->w->db,
		       "PRAGMA journal_mode=WAL;"
		       "PRAGMA synchronous=FULL;"
		       "PRAGMA cache_size=-" CAT_WRITER_CACHE_KIB ";"
		       "PRAGMA temp_store=FILE;"
		       "CREATE TEMP TABLE IF NOT EXISTS seen"
		       "(id INTEGER PRIMARY KEY, gen INTEGER NOT NULL)");
	if (ret < 0)
		goto out;
	ret = cat_int_query(c->w->db,
			    "SELECT max(coalesce((SELECT val FROM kv WHERE "
			    "key='next_item_id'), 2), "
			    "coalesce((SELECT max(id) + 1 FROM ver), 2), "
			    "coalesce((SELECT max(id) + 1 FROM gid), 2))",
			    &v);
	if (ret < 0)
		goto out;
	c->next_id = v;
	ret = cat_recover(c, NULL);
	if (ret < 0)
		goto out;
	if (pthread_create(&c->committer, NULL, committer_main, c) != 0) {
		ret = -EAGAIN;
		goto out;
	}
	c->committer_run = true;
	*out = c;
	c = NULL;
out:
	conn_free(k);
	cat_close(c);
	return ret;
}

void cat_close(struct cat *c)
{
	struct conn *k;

	if (!c)
		return;
	pthread_mutex_lock(&c->ckpt_lock);
	c->ckpt_stop = true;
	pthread_cond_signal(&c->ckpt_cond);
	pthread_mutex_unlock(&c->ckpt_lock);
	if (c->ckpt_run)
		pthread_join(c->ckpt, NULL);
	if (c->committer_run) {
		pthread_mutex_lock(&c->lock);
		c->committer_stop = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->committer, NULL);
	}
	if (c->w) {
		/* a running snapshot stays running: cat_recover() later */
		if (c->in_txn)
			cat_txn_commit(c);
		conn_free(c->w);
	}
	while (c->free) {
		k = c->free;
		c->free = k->next;
		conn_unhold(c, k);
		conn_free(k);
	}
	if (c->qfd >= 0)
		close(c->qfd);
	free(c->sweeps);
	free(c->scope_name);
	free(c->path);
	pthread_cond_destroy(&c->cond);
	pthread_cond_destroy(&c->ckpt_cond);
	pthread_mutex_destroy(&c->ckpt_lock);
	pthread_mutex_destroy(&c->qlock);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void cat_set_commit_hook(struct cat *c, cat_commit_hook hook, void *ctx)
{
	pthread_mutex_lock(&c->lock);
	c->hook = hook;
	c->hook_ctx = ctx;
	pthread_mutex_unlock(&c->lock);
}

int cat_commit(struct cat *c)
{
	struct conn *k;
	int ret;

	ret = cat_need_writer(c);
	if (ret < 0)
		return ret;
	k = cat_conn_get(c);
	ret = cat_txn_commit(c);
	cat_conn_put(c, k);
	return ret;
}

/* Run @sql once with @n int64 parameters (?1..?n). */
int cat_exec_i(sqlite3 *db, const char *sql, int n, ...)
{
	sqlite3_stmt *q = NULL;
	va_list ap;
	int rc, ret = 0;

	rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
	if (rc != SQLITE_OK)
		return cat_errno(db, rc, sql);
	va_start(ap, n);
	for (int i = 1; i <= n; i++)
		sqlite3_bind_int64(q, i, va_arg(ap, int64_t));
	va_end(ap);
	rc = sqlite3_step(q);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		ret = cat_errno(db, rc, sql);
	sqlite3_finalize(q);
	return ret;
}

/*
 * Run @sql with @n int64 parameters @v and collect the first column of
 * every row into *@ids (caller frees with free()), *@count of them.
 */
int cat_ids(sqlite3 *db, const char *sql, int n, const int64_t *v,
	    int64_t **ids, size_t *count)
{
	sqlite3_stmt *q = NULL;
	size_t alloc = 0;
	int rc, ret = 0;

	*ids = NULL;
	*count = 0;
	rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
	if (rc != SQLITE_OK)
		return cat_errno(db, rc, sql);
	for (int i = 0; i < n; i++)
		sqlite3_bind_int64(q, i + 1, v[i]);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (*count == alloc) {
			int64_t *p;

			alloc = alloc ? 2 * alloc : 64;
			p = realloc(*ids, alloc * sizeof(**ids));
			if (!p) {
				ret = -ENOMEM;
				goto out;
			}
			*ids = p;
		}
		(*ids)[(*count)++] = sqlite3_column_int64(q, 0);
	}
	if (rc != SQLITE_DONE)
		ret = cat_errno(db, rc, sql);
out:
	sqlite3_finalize(q);
	if (ret < 0) {
		free(*ids);
		*ids = NULL;
		*count = 0;
	}
	return ret;
}
