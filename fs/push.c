/*
 * push - hand chunks loaded for small reads to the kernel's page cache,
 * list folders whose names are being looked up one by one, and prefetch
 * the repository's databases after mounting.
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
 *
 * The same thread fills the kernel's dentry cache.  A program that looks
 * up many names of one folder without listing it (stat of a list of
 * paths, rsync --files-from, a script's test -e) costs one LOOKUP round
 * trip per name, and a round trip is two wakeups of threads on other
 * CPUs: on a virtual machine whose idle CPUs halt, about 30 us.  Listing
 * the folder through the mount makes the kernel take every entry with
 * its attributes from a few READDIRPLUS replies (128 KiB each), about
 * 3 us per entry.  So lookups that found an entry are counted per folder
 * (a small 4-way table; a folder that loses its slot starts counting
 * again), and once they reach 1/list_ahead of the folder's entries (and
 * LIST_MIN) the thread reads the folder to its end, like `ls -U`; the
 * program's remaining lookups there are then answered by the kernel.
 * The bet is bounded: the listing stops when no lookup of the folder
 * came for LIST_IDLE_NS (the program is done), and its next lookup
 * queues the folder again.
 *
 * The folder is opened in a detached copy of the mount (open_tree(2)
 * with OPEN_TREE_CLONE), not under the mountpoint: a descriptor there
 * would make an unmount in that moment fail as busy, while the copy
 * only keeps the connection up until the listing ends.  Copying a
 * mount needs CAP_SYS_ADMIN; without it folders are not listed ahead.
 */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/log.h"
#include "util/util.h"

#define PUSH_QUEUE   4
#define PAGE	     4096u
#define STOP_WAIT_MS 2000
#define LIST_SLOTS   256 /* folders whose lookups are counted */
#define LIST_WAYS    4 /* slots a folder may take */
#define LIST_MIN     4 /* lookups before a folder is considered */
#define LIST_BUF     (64u << 10) /* getdents buffer: ~400 entries, ~1 ms */
#define LIST_IDLE_NS (20 * 1000000) /* no lookup in the folder: stop */

enum push_kind { PUSH_CHUNK, PUSH_LIST };

struct push_item {
	enum push_kind kind;
	uint64_t ino; /* PUSH_CHUNK: the file; PUSH_LIST: the folder */
	int64_t size; /* of the file */
	struct store_view v;
};

enum list_state { LIST_COUNTING, LIST_QUEUED, LIST_LISTING, LIST_DONE };

/* Lookups that found an entry of folder @dir. */
struct list_slot {
	uint64_t dir; /* 0: free */
	uint32_t lookups;
	uint8_t state; /* enum list_state */
	int64_t entries; /* -1: not counted yet */
	int64_t last_ns; /* of the latest lookup */
};

struct fs_push {
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* protected by lock: */
	bool stop, done;
	unsigned head, n;
	struct push_item q[PUSH_QUEUE];
	uint64_t pushed, dropped, listed;
	bool list_off; /* no listing ahead (not allowed here) */
	struct list_slot slots[LIST_SLOTS];
	char *dents; /* the thread's getdents buffer */
};

/* Queue @it; false when the queue is full or stopping.  Lock held. */
static bool push_queue(struct fs_push *p, const struct push_item *it)
{
	if (p->stop || p->n == PUSH_QUEUE)
		return false;
	p->q[(p->head + p->n) % PUSH_QUEUE] = *it;
	p->n++;
	pthread_cond_signal(&p->cond);
	return true;
}

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

/*
 * The slot of folder @dir, or NULL.  With @add a missing folder takes
 * the free slot of its set, else the one with the fewest lookups that
 * is not queued or being listed.  Lock held.
 */
static struct list_slot *list_slot(struct fs_push *p, uint64_t dir, bool add)
{
	size_t set = (size_t)((dir * UINT64_C(0x9e3779b97f4a7c15)) >> 32) %
		     (LIST_SLOTS / LIST_WAYS);
	struct list_slot *s = &p->slots[set * LIST_WAYS], *victim = NULL;

	for (size_t i = 0; i < LIST_WAYS; i++) {
		if (s[i].dir == dir)
			return &s[i];
		if (s[i].state == LIST_QUEUED || s[i].state == LIST_LISTING)
			continue;
		if (!victim || !s[i].dir ||
		    (victim->dir && s[i].lookups < victim->lookups))
			victim = &s[i];
	}
	if (!add || !victim)
		return NULL;
	*victim = (struct list_slot){ .dir = dir, .entries = -1 };
	return victim;
}

/* May folder @s be listed now?  Lock held. */
static bool list_due(const struct list_slot *s, unsigned ratio)
{
	return s->lookups >= LIST_MIN &&
	       (s->entries < 0 ||
		(uint64_t)s->lookups * ratio >= (uint64_t)s->entries);
}

/*
 * Go on listing folder @dir?  Not when stopping, nor when no lookup of
 * the folder came for LIST_IDLE_NS: the program making them is done, or
 * finds its names among those listed so far.  Its next lookup queues the
 * folder again; the kernel keeps what was listed (its readdir cache and
 * the entries).
 */
static bool list_going(struct fs_push *p, uint64_t dir)
{
	struct list_slot *s;
	bool go;

	pthread_mutex_lock(&p->lock);
	s = list_slot(p, dir, false);
	go = !p->stop && s && util_mono_ns() - s->last_ns <= LIST_IDLE_NS;
	if (!go && s)
		s->state = LIST_COUNTING;
	pthread_mutex_unlock(&p->lock);
	return go;
}

/*
 * Read folder @rel (inode @dir) below the mount to its end, or until
 * list_going() says no.  Returns 1 (read to the end), 0 (stopped) or
 * -errno.
 */
static int list_read(struct fs *fs, struct fs_push *p, const char *rel,
		     uint64_t dir, int64_t *entries)
{
	struct stat st;
	ssize_t got;
	int tree, fd, rc = 1;

	if (!p->dents)
		return -ENOMEM;
	/* a detached copy of the mount: see the top of this file */
	tree = open_tree(AT_FDCWD, fs->mountpoint,
			 OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (tree < 0)
		return -errno;
	fd = openat(tree, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	rc = fd < 0 ? -errno : 1;
	close(tree);
	if (fd < 0)
		return rc;
	/* the path leads to @dir (snapshots are immutable: always) */
	if (fstat(fd, &st) < 0 || st.st_ino != dir) {
		close(fd);
		return -ESTALE;
	}
	log_debug("listing '%s' ahead", rel);
	while ((got = getdents64(fd, p->dents, LIST_BUF)) > 0) {
		for (ssize_t o = 0; o < got;) {
			o += ((struct dirent64 *)(p->dents + o))->d_reclen;
			++*entries;
		}
		if (!list_going(p, dir)) {
			rc = 0;
			break;
		}
	}
	if (got < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * The folder @dir's turn: count its entries (the listing is then cached
 * for the READDIRPLUS requests to come); list it when its lookups are
 * still due against that count.
 */
static void list_one(struct fs *fs, struct fs_push *p, uint64_t dir)
{
	int64_t n = fs_dir_entries(fs, dir);
	struct list_slot *s;
	struct buf path = BUF_INIT;
	int64_t got = 0, t0 = util_mono_ms();
	uint32_t lookups = 0;
	bool go = false;
	int rc;

	pthread_mutex_lock(&p->lock);
	s = list_slot(p, dir, false);
	if (s) {
		s->entries = n < 0 ? 0 : n;
		lookups = s->lookups;
		go = n > 0 && list_due(s, fs->o.list_ahead);
		s->state = go	   ? LIST_LISTING
			   : n < 0 ? LIST_DONE
				   : LIST_COUNTING;
	}
	pthread_mutex_unlock(&p->lock);
	if (!go)
		return;
	rc = fs_path(fs, dir, &path);
	if (rc >= 0)
		rc = list_read(fs, p, path.data, dir, &got);
	got = got > 2 ? got - 2 : 0; /* "." and ".." */
	if (rc == -EPERM || rc == -ENOSYS) {
		log_info("folders are not listed ahead: copying the mount "
			 "(open_tree) needs CAP_SYS_ADMIN");
		pthread_mutex_lock(&p->lock);
		p->list_off = true;
		pthread_mutex_unlock(&p->lock);
	} else if (rc < 0) {
		log_debug("cannot list '%s' ahead: %s",
			  path.len ? path.data : "?", strerror(-rc));
	} else {
		log_debug("listed '%s' ahead%s: %lld of %lld entries after "
			  "%u lookups, %lld ms",
			  path.data, rc ? "" : " (the lookups stopped)",
			  (long long)got, (long long)n, lookups,
			  (long long)(util_mono_ms() - t0));
	}
	buf_release(&path);
	pthread_mutex_lock(&p->lock);
	p->listed += rc > 0;
	s = list_slot(p, dir, false);
	if (s && s->state == LIST_LISTING)
		s->state = LIST_DONE; /* read to the end, or failed */
	pthread_mutex_unlock(&p->lock);
}

void fs_push_lookup(struct fs *fs, uint64_t dir)
{
	struct fs_push *p = fs->push;
	struct list_slot *s;

	if (!p || !fs->o.list_ahead || !fs->mountpoint)
		return;
	pthread_mutex_lock(&p->lock);
	s = p->list_off ? NULL : list_slot(p, dir, true);
	if (!s)
		goto out;
	if (s->lookups < UINT32_MAX)
		s->lookups++; /* while queued too: the count job may come late */
	s->last_ns = util_mono_ns();
	if (s->state == LIST_COUNTING && list_due(s, fs->o.list_ahead) &&
	    push_queue(p, &(struct push_item){ .kind = PUSH_LIST, .ino = dir }))
		s->state = LIST_QUEUED;
out:
	pthread_mutex_unlock(&p->lock);
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
		if (it.kind == PUSH_LIST) {
			list_one(fs, p, it.ino);
			pthread_mutex_lock(&p->lock);
			continue;
		}
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
	p->dents = malloc(LIST_BUF); /* NULL: no listing ahead */
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
		free(p->dents);
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
	queued = push_queue(p, &(struct push_item){ .kind = PUSH_CHUNK,
						    .ino = ino,
						    .size = size,
						    .v = *v });
	if (queued)
		memset(v, 0, sizeof(*v));
	else
		p->dropped++;
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
	log_debug("pushed %llu chunks to the page cache, dropped %llu; "
		  "listed %llu folders ahead",
		  (unsigned long long)p->pushed, (unsigned long long)p->dropped,
		  (unsigned long long)p->listed);
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
	free(p->dents);
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
