/*
 * Private header of the snapshot module.
 *
 * DESIGN: walker threads enumerate Graph, talk to the catalog and decide
 * what needs downloading: the caller of snap_run() walks the sites, and
 * SNAP_USER_WALKERS threads take users one at a time from one shared
 * pager and walk their OneDrive and mailbox, so several mailboxes are
 * listed and downloaded at once.  Walkers run one at a time under
 * struct snap's walk lock (the catalog, the counters and the containers
 * are walker state) and release it only around Graph requests and waits
 * (walk_release()/walk_acquire()), so the walkers' requests overlap.
 *
 * A pool of download threads (struct pool) runs the downloads, each
 * streaming into its own store writer and verifying the quickXorHash;
 * they never take the walk lock.  Finished downloads come back to the
 * walkers, which record the content and the item in the catalog.  Job
 * queues are bounded (memory stays bounded whatever the tenant size), the
 * number of downloads at once (the window) halves on throttling and grows
 * back slowly, and the jobs of one mailbox are a group with its own limit
 * (Outlook allows 4 concurrent requests per mailbox: 3 downloads + the
 * listing).  A drive's listing does not wait for its downloads: the drive
 * is finalized (deletions, delta token) when its last download ends.
 */
#ifndef M365_SNAP_I_H
#define M365_SNAP_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "graph/graph.h"
#include "snapshot/snapshot.h"
#include "store/store.h"
#include "util/buf.h"

struct snap;

#define META_MAX 24

#define SNAP_USER_WALKERS 4 /* users (OneDrive + mailbox) walked at once */
#define SNAP_MAIL_DOWNLOADS                                                    \
	(SNAP_MAIL_PARALLEL - 1) /* per mailbox, besides its listing */

/* Cold metadata being built: owned copies of the values. */
struct meta {
	struct cat_kv kv[META_MAX];
	size_t n;
};

void meta_add(struct meta *m, const char *key, const char *val);
void meta_addf(struct meta *m, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void meta_time(struct meta *m, const char *key, int64_t t);
void meta_free(struct meta *m);

/* A sorted set of int64 (item ids). */
struct idset {
	int64_t *v;
	size_t n, alloc;
	bool sorted;
};
int idset_add(struct idset *s, int64_t id);
bool idset_has(struct idset *s, int64_t id);
void idset_free(struct idset *s);

/*
 * A container being walked (a drive, a mail folder): counts its jobs
 * still running and whether any item failed (then its delta token is not
 * advanced, so the next run sees the failed items again).
 */
struct container {
	int pending; /* jobs not yet completed */
	int errors; /* per-item errors */
	struct idset *seen; /* item ids put, or NULL */
	const char *service; /* "sharepoint", "onedrive", "exchange" */
	bool closed; /* listing over: finalize once pending is 0 */
	/* runs on the walker thread when closed and nothing is pending;
	 * may free the container (NULL: nothing to do) */
	void (*finalize)(struct snap *s, struct container *ct);
};

/* The listing of @ct is over: finalize it now or when its last job ends. */
void container_close(struct snap *s, struct container *ct);

/* One item as it will be put into the catalog (owned strings). */
struct item {
	int64_t parent;
	int kind;
	char *name;
	char *scope;
	char *graph_id;
	int64_t size;
	int64_t mtime, btime;
	int32_t mtime_ns, btime_ns;
	int64_t content;
	struct meta meta;
};
void item_free(struct item *it);

enum job_type { JOB_FILE = 1, JOB_MESSAGE };

/* Jobs that share a limit of concurrent downloads (one mailbox).  Its
 * counters are under the pool's lock. */
struct jgroup {
	unsigned limit; /* downloads at once */
	unsigned running, queued;
};

struct job {
	struct job *next;
	enum job_type type;
	char *drive_id; /* JOB_FILE */
	char *src_id; /* item id or message id */
	char *download_url; /* may be NULL */
	char *user; /* JOB_MESSAGE */
	int64_t expect_size; /* -1: unknown */
	char qxh[29]; /* Graph's quickXorHash, "" when none */
	bool office; /* Office file: size/hash may differ (GRAPH-API 5.1) */
	struct item item;
	struct container *owner;
	struct jgroup *group; /* or NULL */
	char *cache_key; /* download cache key, or NULL */
	/* results (set by the worker) */
	int rc;
	char reason[512];
	struct store_content content;
	char got_qxh[29];
	unsigned char qxh_raw[20];
	bool has_qxh;
	uint64_t got;
};

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work; /* workers wait for jobs */
	pthread_cond_t done_cv; /* the walker waits for completions */
	struct job *queue, *queue_tail; /* waiting to run */
	struct job *done; /* completed, for the walker */
	unsigned queued, running, ndone;
	unsigned queued_plain; /* queued jobs without a group */
	unsigned window; /* downloads allowed at once */
	unsigned max; /* upper bound of the window */
	unsigned ok_streak;
	bool stop;
	pthread_t *threads;
	unsigned nthreads;
	struct snap *s;
	uint64_t last_throttled;
};

struct snap {
	pthread_mutex_t walk_lock; /* held by the walker that runs */
	struct graph *g;
	struct store *st;
	struct cat *c;
	struct snap_config cfg;
	int64_t id;
	struct snap_stats stats;
	struct pool pool;
	int64_t top[3]; /* sites, onedrive, mailboxes */
	int64_t start_ms, last_progress_ms;
	struct http_stats http0;
	int fatal; /* a failure that fails the whole snapshot */
	struct idset containers; /* container items seen (sites, drives...) */
	bool enum_failed[3]; /* enumeration of a service failed */
	struct dcache *cache; /* may be NULL */
	/* users: one pager shared by the user walkers */
	pthread_mutex_t users_lock; /* the pager, taken without walk_lock */
	struct graph_pager *users;
	bool users_end; /* the pager is over (or failed) */
};

/* Give up / take back the walk lock around a Graph request or a wait:
 * in between, touch nothing but what the calling walker owns. */
void walk_release(struct snap *s);
void walk_acquire(struct snap *s);

/* cache.c: Graph identity -> SHA-256 of the content last downloaded */
struct dcache;
int dcache_open(const char *path, struct dcache **out);
void dcache_close(struct dcache *d);
int dcache_get(struct dcache *d, const char *key, unsigned char sha[32]);
void dcache_put(struct dcache *d, const char *key, const unsigned char sha[32]);

/* snapshot.c */
int put_item(struct snap *s, struct item *it, struct container *owner,
	     int64_t *id);
void item_error(struct snap *s, const char *service, int64_t parent,
		const char *name, const char *graph_id, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void progress(struct snap *s, bool force);
int map_name(const char *in, struct buf *out);
/* Content that the download cache names for @key and the catalog has. */
int cached_content(struct snap *s, const char *key, struct cat_content *cc);
int lookup_or_put_dir(struct snap *s, int64_t parent, int kind,
		      const char *name, int64_t *id);

/* pool.c */
int pool_start(struct snap *s, unsigned n);
void pool_stop(struct snap *s);
/* Queue @j (takes ownership); waits (reaping) while the queue is full
 * (the queue of @j->group when set). */
int pool_submit(struct snap *s, struct job *j);
/* Process completed jobs; with @wait block until @owner has none
 * pending (or, @owner NULL, until nothing is pending at all). */
void pool_reap(struct snap *s, struct container *owner, bool wait);
void job_free(struct job *j);

/* files.c */
int walk_sites(struct snap *s);
int walk_user_drive(struct snap *s, const struct graph_user *u);

/* mail.c */
int walk_mailbox(struct snap *s, const struct graph_user *u);

#endif
