/*
 * cat_i.h - private to engine/catalog: the struct cat, its connections and
 * their cached statements, shared helpers.
 *
 * Thread safety: see catalog.h.  A struct conn belongs to one thread
 * between cat_conn_get() and cat_conn_put().
 */
#ifndef M365_CAT_I_H
#define M365_CAT_I_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"

/* 'M365' little hint in the SQLite header: this file is a catalog. */
#define CAT_APP_ID 0x4d333643

/* Private cat_open() flag: runs in this file are dead (an imported copy). */
#define CAT_OPEN_COPY (1 << 8)

/* Columns of a restore-queue row, in restore.c's restore_read() order. */
#define CAT_RESTORE_COLS                                                       \
	"id,target,spool,size,status,reason,attempts,created,updated,remote_id"

/* Cached statements; SQL texts in db.c (cat_sql[]). */
enum cat_q {
	Q_LOOKUP,
	Q_GET,
	Q_LIST,
	Q_CUR_BY_ID,
	Q_CUR_BY_NAME,
	Q_VER_INSERT,
	Q_VER_END,
	Q_VER_DEL,
	Q_VMETA_GET,
	Q_VMETA_PUT,
	Q_VMETA_DEL,
	Q_MSG_GET,
	Q_MSG_PUT,
	Q_MSG_DEL,
	Q_GID_GET,
	Q_GID_PUT,
	Q_SCOPE_GET,
	Q_SCOPE_PUT,
	Q_SEEN_PUT,
	Q_RUNLOG_PUT,
	Q_CHILDREN_CUR,
	Q_CONTENT_SHA,
	Q_CONTENT_QXH,
	Q_CONTENT_GET,
	Q_CONTENT_PUT,
	Q_CONTENT_SET_QXH,
	Q_SNAP_GET,
	Q_SNAP_LATEST,
	Q_RESTORE_ENQUEUE,
	Q_RESTORE_CLAIM,
	Q_RESTORE_UPDATE,
	Q_RESTORE_GET,
	Q_RESTORE_LIST,
	Q_RDATA_PUT,
	Q_RDATA_GET,
	Q_RDATA_DEL,
	Q_MAX
};

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[Q_MAX];
	struct conn *next; /* free list; protected by cat->lock */
	int64_t held_ms; /* reader: browse transaction open since, 0 = none */
	uint64_t held_gen; /* cat->read_gen when it began */
};

/* A full walk in progress: items seen since generation @gen count. */
struct sweep {
	int64_t root;
	int64_t gen;
};

struct cat {
	char *path;
	bool writer;
	bool copy; /* CAT_OPEN_COPY: every running snapshot is dead */
	/*
	 * PATH-rqlock: restore-queue writers of other processes hold it
	 * exclusively while they wait for SQLite's write lock; the writer
	 * passes it (shared) before each batch, so a busy run cannot starve
	 * them.  -1 when it cannot be opened (read-only repository).
	 */
	int qfd;
	pthread_mutex_t qlock; /* one restore write of this process at once */
	bool rdata; /* restore_data exists (cat_restore_data_init()) */
	pthread_mutex_t lock; /* writer: all calls; reader: the free list */
	struct conn *free; /* reader pool */
	struct conn *w; /* writer connection */

	/* Writer state below: protected by lock. */
	bool in_txn; /* a batch transaction is open */
	int64_t txn_start_ms; /* when it began */
	int64_t changes; /* changes in the open batch */
	int64_t batch_rows, batch_ms; /* automatic commit: cat_set_batch() */
	int64_t snap; /* running snapshot, 0 = none */
	int run_err; /* a batch of the run was lost: only rollback */
	struct cat_counters n; /* counter increments not yet written */
	int64_t next_id; /* next item id to give */
	struct sweep *sweeps; /* active sweeps */
	size_t nsweeps;
	int64_t sweep_gen; /* generation of the newest sweep */
	int64_t parent_ok; /* last parent found to be a current dir */
	char *scope_name; /* last scope looked up ... */
	int64_t scope_sid; /* ... and its id */
	cat_commit_hook hook;
	void *hook_ctx;
	/* Reader: browse transactions held open (cat_set_read_hold()). */
	int64_t hold_ms; /* 0: every statement is its own transaction */
	uint64_t read_gen; /* cat_read_refresh() count */
	int held; /* connections with a browse transaction open */
	pthread_t committer; /* writer: commits batches left idle;
				reader: ends browse transactions left idle */
	bool committer_run;
	bool committer_stop;
	pthread_cond_t cond;

	/*
	 * Pool connections do not checkpoint when they commit (a restore
	 * enqueue would wait for it in close()): the checkpointer thread,
	 * started at the first large WAL, does.  Protected by ckpt_lock.
	 */
	pthread_mutex_t ckpt_lock;
	pthread_cond_t ckpt_cond;
	pthread_t ckpt;
	bool ckpt_run, ckpt_want, ckpt_stop;
};

/* db.c */
int cat_errno(sqlite3 *db, int rc, const char *what);
struct conn *cat_conn_get(struct cat *c);
struct conn *cat_conn_browse(struct cat *c);
void cat_conn_put(struct cat *c, struct conn *k);
/* Close pool connection @k instead of giving it back (the writer's is
 * given back). */
void cat_conn_drop(struct cat *c, struct conn *k);
int cat_stmt(struct conn *k, enum cat_q q, sqlite3_stmt **out);
int cat_exec(sqlite3 *db, const char *sql);
int cat_exec_i(sqlite3 *db, const char *sql, int n, ...);
int cat_ids(sqlite3 *db, const char *sql, int n, const int64_t *v,
	    int64_t **ids, size_t *count);
int cat_int_query(sqlite3 *db, const char *sql, int64_t *out);
int cat_db_open(const char *path, int sqlite_flags, sqlite3 **out);
int cat_schema_check(sqlite3 *db, bool may_migrate);
int cat_txn_ensure(struct cat *c);
int cat_txn_commit(struct cat *c);
int cat_note_change(struct cat *c);
int cat_need_writer(struct cat *c);
int cat_wbegin(struct cat *c, bool need_snap);
void cat_restore_prepare(struct cat *c);

/* snap.c */
int cat_rollback_snap(struct cat *c, int64_t snap);
int cat_recover_locked(struct cat *c, int *rolled_back);
int cat_counters_flush(struct cat *c);

/* item.c */
int cat_scope_id(struct cat *c, struct conn *k, const char *name, bool create,
		 int64_t *sid);
int cat_end_subtree(struct cat *c, int64_t id, int64_t *count);
void cat_item_read(sqlite3_stmt *q, int col, struct cat_item *it);

/* check.c */
int cat_check_db(sqlite3 *db, cat_problem_cb cb, void *ctx, int64_t *problems);

#endif
