/*
 * push - hand chunks loaded for small reads to the kernel's page cache;
 * prefetch the repository's databases after mounting.
 *
 * A small read (random access: the kernel's readahead is off) of a file
 * costs a whole chunk (~1 MiB): the store reads, checks and decompresses
 * it, the reader gets its few KiB.  Instead of keeping the rest only in
 * the daemon's bounded chunk cache, one thread stores the whole chunk
 * into the kernel's page cache of the file (FUSE_NOTIFY_STORE), where
 * further reads of it cost no request at all and the memory is the
 * kernel's to reclaim.  Snapshots are immutable, so the pages never go
 * stale.
 *
 * The store happens in its own thread, after the read was answered: it
 * may wait for pages locked by reads still queued in the kernel, which
 * the worker threads answer meanwhile.  The queue is short; when it is
 * full a push is dropped (it is only an optimisation).  Queued views hold
 * references to cache entries: at most PUSH_QUEUE chunks of memory.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/log.h"
#include "util/util.h"

#define PUSH_QUEUE   4
#define PAGE	     4096u
#define STOP_WAIT_MS 2000

struct push_item {
	uint64_t ino;
	int64_t size; /* of the file */
	struct store_view v;
};

struct fs_push {
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* protected by lock: */
	bool stop, done;
	unsigned head, n;
	struct push_item q[PUSH_QUEUE];
	uint64_t pushed, dropped;
};

static void push_one(struct fs *fs, struct push_item *it)
{
	uint64_t start = (it->v.off + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	uint64_t end = it->v.off + it->v.len;
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(0);
	int rc;

	/* whole pages only, but the file's last page as it is */
	if ((int64_t)end != it->size)
		end &= ~(uint64_t)(PAGE - 1);
	if (end <= start)
		return;
	bv.buf[0].mem = (void *)(it->v.data + (start - it->v.off));
	bv.buf[0].size = (size_t)(end - start);
	rc = fuse_lowlevel_notify_store(fs->se, it->ino, (off_t)start, &bv, 0);
	if (rc < 0 && rc != -ENOENT)
		log_debug("push of %llu bytes of inode %llu: %s",
			  (unsigned long long)(end - start),
			  (unsigned long long)it->ino, strerror(-rc));
}

static void *push_main(void *arg)
{
	struct fs *fs = arg;
	struct fs_push *p = fs->push;
	struct push_item it;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->n && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		it = p->q[p->head];
		p->head = (p->head + 1) % PUSH_QUEUE;
		p->n--;
		pthread_mutex_unlock(&p->lock);
		push_one(fs, &it);
		store_view_put(&it.v);
		pthread_mutex_lock(&p->lock);
		p->pushed++;
	}
	p->done = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int fs_push_start(struct fs *fs)
{
	struct fs_push *p = calloc(1, sizeof(*p));
	pthread_attr_t attr;
	int rc;

	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	fs->push = p;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	rc = pthread_create(&p->th, &attr, push_main, fs);
	pthread_attr_destroy(&attr);
	if (rc) {
		fs->push = NULL;
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return -rc;
	}
	return 0;
}

bool fs_push(struct fs *fs, uint64_t ino, int64_t size, struct store_view *v)
{
	struct fs_push *p = fs->push;
	bool queued = false;

	if (!p || !fs->se)
		return false;
	pthread_mutex_lock(&p->lock);
	if (!p->stop && p->n < PUSH_QUEUE) {
		struct push_item *it = &p->q[(p->head + p->n) % PUSH_QUEUE];

		it->ino = ino;
		it->size = size;
		it->v = *v;
		memset(v, 0, sizeof(*v));
		p->n++;
		queued = true;
		pthread_cond_signal(&p->cond);
	} else {
		p->dropped++;
	}
	pthread_mutex_unlock(&p->lock);
	return queued;
}

void fs_push_stop(struct fs *fs)
{
	struct fs_push *p = fs->push;
	struct timespec until;
	bool done;

	if (!p)
		return;
	util_deadline_in(&until, STOP_WAIT_MS);
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	while (!p->done &&
	       pthread_cond_timedwait(&p->cond, &p->lock, &until) == 0)
		;
	done = p->done;
	log_debug("pushed %llu chunks to the page cache, dropped %llu",
		  (unsigned long long)p->pushed,
		  (unsigned long long)p->dropped);
	pthread_mutex_unlock(&p->lock);
	fs->push = NULL;
	if (!done) {
		/*
		 * Waiting in the kernel for a page of a read that will not be
		 * answered any more: leave it (and its memory) to the exit.
		 */
		log_warn("the page cache thread did not stop; exiting anyway");
		return;
	}
	pthread_join(p->th, NULL);
	for (; p->n; p->n--, p->head = (p->head + 1) % PUSH_QUEUE)
		store_view_put(&p->q[p->head].v);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---- metadata prefetch ---------------------------------------------- */

/*
 * A cold start answers every lookup, listing and first read with SQLite
 * queries in the catalog and the chunk index: B-tree pages scattered over
 * the files, one random disk read each.  Before opening them, ask the
 * kernel to read both databases ahead, sequentially, into the page cache
 * (up to 256 MiB each, a catalog of about 250,000 items: 141 MB for the
 * 150,000 of the scale-10 bench, where a cold stat of 10,000 names in one
 * folder took 0.84x the time with it read ahead, at 40-70 ms more to
 * mount); the random reads then find their pages there.
 * POSIX_FADV_WILLNEED only starts the reads, and one call reads no more
 * than the device's readahead (8 MiB here: a 16 MiB index was read half,
 * and every chunk lookup in the other half waited for the disk):
 * util_willneed() asks in pieces.
 *
 * This must run before SQLite opens the files in this process: closing
 * any descriptor of a file drops every POSIX lock the process holds on it,
 * SQLite's included.
 */
#define PREFETCH_MEM_SHARE 8 /* at most 1/8 of memory for both */
#define PREFETCH_MAX	   (256u << 20) /* per file: larger ones are skipped */

void fs_prefetch(const char *repo)
{
	static const char *const files[] = { CAT_FILE, "index.db" };
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	uint64_t budget = 0;
	char path[4096];

	if (pages > 0 && psize > 0)
		budget = (uint64_t)pages * (uint64_t)psize / PREFETCH_MEM_SHARE;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct stat st;
		int fd;

		snprintf(path, sizeof(path), "%s/%s", repo, files[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* the readahead is started here: keep the start quick */
		if (!fstat(fd, &st) && (uint64_t)st.st_size <= budget &&
		    (uint64_t)st.st_size <= PREFETCH_MAX) {
			budget -= (uint64_t)st.st_size;
			util_willneed(fd, 0, (uint64_t)st.st_size,
				      util_willneed_max(path));
		}
		close(fd);
	}
}
