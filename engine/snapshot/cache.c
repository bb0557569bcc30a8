/*
 * The download cache: which content (SHA-256) a message or a file without
 * a quickXorHash had when it was last downloaded, keyed by its Graph
 * identity.  The catalog forgets the items of a run that was killed, but
 * keeps their contents; this small SQLite file lets the next run find
 * those contents again instead of downloading them a second time.  It is
 * a hint only: losing it costs downloads, never correctness (the content
 * must still exist in the catalog to be reused).
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/snap_i.h"
#include "util/log.h"

#define CACHE_BATCH 500 /* inserts per transaction */

struct dcache {
	sqlite3 *db;
	sqlite3_stmt *get, *put;
	unsigned pending;
};

int dcache_open(const char *path, struct dcache **out)
{
	struct dcache *d;
	int rc;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	rc = sqlite3_open_v2(path, &d->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(d->db,
				  "PRAGMA journal_mode=WAL;"
				  "PRAGMA synchronous=NORMAL;"
				  "CREATE TABLE IF NOT EXISTS seen(key TEXT "
				  "PRIMARY KEY, sha256 BLOB NOT NULL) "
				  "WITHOUT ROWID;",
				  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(d->db,
					"SELECT sha256 FROM seen WHERE key=?",
					-1, &d->get, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
			d->db, "INSERT OR REPLACE INTO seen VALUES(?,?)", -1,
			&d->put, NULL);
	if (rc != SQLITE_OK) {
		log_warn("download cache '%s' unusable: %s", path,
			 d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
		dcache_close(d);
		return -EIO;
	}
	*out = d;
	return 0;
}

void dcache_close(struct dcache *d)
{
	if (!d)
		return;
	if (d->pending)
		sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
	sqlite3_finalize(d->get);
	sqlite3_finalize(d->put);
	sqlite3_close(d->db);
	free(d);
}

int dcache_get(struct dcache *d, const char *key, unsigned char sha[32])
{
	int rc = -ENOENT;

	if (!d)
		return -ENOENT;
	sqlite3_bind_text(d->get, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(d->get) == SQLITE_ROW &&
	    sqlite3_column_bytes(d->get, 0) == 32) {
		memcpy(sha, sqlite3_column_blob(d->get, 0), 32);
		rc = 0;
	}
	sqlite3_reset(d->get);
	return rc;
}

void dcache_put(struct dcache *d, const char *key, const unsigned char sha[32])
{
	if (!d)
		return;
	if (!d->pending)
		sqlite3_exec(d->db, "BEGIN", NULL, NULL, NULL);
	sqlite3_bind_text(d->put, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(d->put, 2, sha, 32, SQLITE_STATIC);
	sqlite3_step(d->put);
	sqlite3_reset(d->put);
	if (++d->pending >= CACHE_BATCH) {
		sqlite3_exec(d->db, "COMMIT", NULL, NULL, NULL);
		d->pending = 0;
	}
}
