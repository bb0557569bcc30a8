/*
 * loop - the daemon's receive loop (instead of fuse_session_loop_mt).
 *
 * A request costs the daemon one read and one write on /dev/fuse; what
 * costs time on an otherwise idle machine is waking a sleeping thread
 * (and, in a VM, the idle vCPU under it) for every request.  Programs
 * that look up many names (stat, ls -l of paths, tar) send the next
 * lookup a few microseconds after the answer to the previous one.  So
 * the thread that answered a lookup keeps reading the device without
 * sleeping (O_NONBLOCK: the read says EAGAIN) for a short, bounded time
 * (-o spin=USEC) before it sleeps in poll().  Between two reads it yields
 * the CPU; when other tasks want the CPU (a turn of the spin took long)
 * or several spins in a row found nothing, it stops spinning for a
 * while.  After data or a listing the client has work to do: no spin
 * (it would take CPU from the client, on a sibling hyperthread too).
 *
 * Only one thread reads the device at a time (the "reader"); the others
 * wait on a condition variable.  Another thread waiting in the kernel
 * would be woken by every request even when the spinning reader takes
 * it.  The reader keeps the device while it answers lookups and
 * attributes inside snapshots (from the catalog, within microseconds):
 * a serial workload then runs in one thread that never sleeps between
 * requests.  Before file data, live/, restore/ and the top directories
 * (decompression that runs in parallel, Graph, the kernel) it hands the
 * device to a waiting thread, or starts one (at most max_threads);
 * before a listing only when another request is waiting already (one
 * wakeup per listing, as in libfuse's loop, not two).
 *
 * Exit: unmounting makes reads fail with ENODEV (libfuse marks the
 * session exited); SIGINT/SIGTERM/SIGHUP run libfuse's handler, which
 * marks the session exited, in a thread that is not a worker (the
 * workers block them): the main thread sees it within a second.  Either
 * way the main thread wakes every worker through an eventfd and the
 * condition variable and joins them.
 */
#include "fs.h"
#include "live.h" /* INO_LIVE_SNAP */

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

/* a turn of the spin this long: another task ran on the CPU */
#define SPIN_BUSY_NS  20000
#define SPIN_PAUSE_NS 20000000 /* then no spinning for this long */
/* spins in a row that found nothing (the client thinks longer): pause */
#define SPIN_MISSES 8

struct loop {
	struct fuse_session *se;
	int fd, efd;
	int64_t spin_ns;
	unsigned max_threads;
	sem_t finish; /* posted by a worker that saw the session end */
	atomic_bool stop;
	/* statistics, for the debug log */
	atomic_ulong spun, slept, spin_ns_lost, busy;
	/* the reader's: */
	int64_t calm; /* no spinning before this time (ns) */
	unsigned misses; /* spins in a row that found nothing */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* protected by lock: */
	bool reading; /* a thread holds the device */
	unsigned waiting; /* threads in pthread_cond_wait */
	unsigned n; /* threads started */
	int error; /* first error of a read, -errno */
	pthread_t *th;
};

/* How long answering a request may take (kind()). */
enum kind {
	QUICK, /* from memory: lookups and attributes inside snapshots */
	LOCAL, /* short, may read the catalog from disk: listings */
	SLOW, /* file data (chunks decompressed in parallel), live/,
		 restore/ (Graph), the top (may wait for the kernel) */
};

static enum kind kind(const struct fuse_buf *b)
{
	const struct fuse_in_header *in = b->mem;
	int64_t snap;

	if ((b->flags & FUSE_BUF_IS_FD) || b->size < sizeof(*in))
		return SLOW;
	if (in->opcode == FUSE_FORGET || in->opcode == FUSE_BATCH_FORGET)
		return QUICK;
	snap = ino_snap(in->nodeid);
	if (snap <= 0 || snap == INO_LIVE_SNAP)
		return SLOW; /* the top, live/ and restore/ */
	switch (in->opcode) {
	case FUSE_LOOKUP:
	case FUSE_GETATTR:
	case FUSE_GETXATTR:
	case FUSE_LISTXATTR:
	case FUSE_READLINK:
	case FUSE_ACCESS:
		return QUICK;
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
	case FUSE_OPEN:
	case FUSE_OPENDIR:
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
	case FUSE_FLUSH:
		return LOCAL;
	default:
		return SLOW;
	}
}

/* Whether another request waits in the kernel. */
static bool pending(const struct loop *l)
{
	struct pollfd p = { .fd = l->fd, .events = POLLIN };

	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

static void finish(struct loop *l, int err)
{
	pthread_mutex_lock(&l->lock);
	if (err && !l->error)
		l->error = err;
	pthread_mutex_unlock(&l->lock);
	atomic_store(&l->stop, true);
	sem_post(&l->finish);
}

/*
 * Take the next request into @b as the reader: with @spin (the thread
 * has just answered a lookup) spin for spin_ns, then sleep in poll().
 * Returns its size, 0 when the loop stops, or -errno.
 *
 * Spinning pays only while a vCPU is free: between two reads it yields
 * (a client runnable on this CPU runs at once), and a turn that took long
 * with no request at the end means other tasks want the CPU, so spinning
 * stops and stays off for SPIN_PAUSE_NS; so it does after SPIN_MISSES
 * spins in a row that found nothing.
 */
static int take(struct loop *l, struct fuse_buf *b, bool spin)
{
	int64_t t = util_mono_ns(), prev, end = 0;
	struct pollfd p[2];
	int res;

	if (spin && t >= l->calm)
		end = t + l->spin_ns;
	for (;;) {
		if (atomic_load_explicit(&l->stop, memory_order_relaxed))
			return 0;
		res = fuse_session_receive_buf(l->se, b);
		if (res > 0) {
			atomic_fetch_add_explicit(end ? &l->spun : &l->slept, 1,
						  memory_order_relaxed);
			if (end)
				l->misses = 0;
			return res;
		}
		if (res == 0 || fuse_session_exited(l->se))
			return 0; /* unmounted (ENODEV) or a signal */
		if (res == -EINTR)
			continue;
		if (res != -EAGAIN)
			return res;
		if (end) {
			prev = t;
			t = util_mono_ns();
			if (t - prev > SPIN_BUSY_NS) {
				l->calm = t + SPIN_PAUSE_NS;
				atomic_fetch_add_explicit(&l->busy, 1,
							  memory_order_relaxed);
			} else if (t < end) {
				sched_yield();
				continue;
			} else if (++l->misses == SPIN_MISSES) {
				l->misses = 0;
				l->calm = t + SPIN_PAUSE_NS;
			}
			atomic_fetch_add_explicit(
				&l->spin_ns_lost,
				(unsigned long)(t - end + l->spin_ns),
				memory_order_relaxed);
			end = 0;
		}
		p[0] = (struct pollfd){ .fd = l->fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = l->efd, .events = POLLIN };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return -errno;
		if (p[0].revents & POLLNVAL)
			return -EBADF;
	}
}

static void *worker(void *arg);

/*
 * Give the device to a waiting thread, or start one.  Called with
 * l->lock held by the reader, which stops being it.
 */
static void hand_over(struct loop *l)
{
	sigset_t all, old;
	int rc;

	l->reading = false;
	if (l->waiting) {
		pthread_cond_signal(&l->cond);
		return;
	}
	if (l->n >= l->max_threads || atomic_load(&l->stop))
		return; /* the first thread done takes the device */
	/* the new thread does not take the signals meant for main() */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&l->th[l->n], NULL, worker, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		log_warn("cannot start a FUSE worker thread: %s", strerror(rc));
		return;
	}
	l->n++;
	l->reading = true; /* on behalf of the new thread */
}

static void *worker(void *arg)
{
	struct loop *l = arg;
	struct fuse_buf b = { 0 };
	bool reader = true; /* threads are started to read */
	bool spin = false; /* a thread woken up has answered nothing */
	enum kind k;
	int res;

	for (;;) {
		if (!reader) {
			pthread_mutex_lock(&l->lock);
			while (l->reading && !atomic_load(&l->stop)) {
				spin = false;
				l->waiting++;
				pthread_cond_wait(&l->cond, &l->lock);
				l->waiting--;
			}
			if (!atomic_load(&l->stop))
				l->reading = reader = true;
			pthread_mutex_unlock(&l->lock);
			if (!reader)
				break;
		}
		res = take(l, &b, spin);
		if (res <= 0) {
			finish(l, res);
			break;
		}
		k = kind(&b);
		if (k == SLOW || (k == LOCAL && pending(l))) {
			pthread_mutex_lock(&l->lock);
			hand_over(l);
			pthread_mutex_unlock(&l->lock);
			reader = false;
		}
		fuse_session_process_buf(l->se, &b);
		/*
		 * A quick answer is followed at once by the next request of
		 * a walk; after data or a listing the client has work to do,
		 * and spinning would take CPU from it (on the sibling
		 * hyperthread, too).
		 */
		spin = k == QUICK;
	}
	free(b.mem);
	return NULL;
}

int fs_loop(struct fuse_session *se, unsigned spin_us, unsigned max_threads)
{
	struct loop l = { 0 };
	struct timespec ts;
	uint64_t one = 1;
	unsigned i, n;
	int flags, rc = 0;

	l.se = se;
	l.fd = fuse_session_fd(se);
	l.efd = -1;
	l.spin_ns = (int64_t)spin_us * 1000;
	l.max_threads = max_threads ? max_threads : 1;
	atomic_init(&l.stop, false);
	pthread_mutex_init(&l.lock, NULL);
	pthread_cond_init(&l.cond, NULL);
	sem_init(&l.finish, 0, 0);
	l.th = calloc(l.max_threads, sizeof(*l.th));
	l.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	flags = fcntl(l.fd, F_GETFL);
	if (!l.th || l.efd < 0 || flags < 0 ||
	    fcntl(l.fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		rc = l.th ? -errno : -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&l.lock);
	hand_over(&l);
	pthread_mutex_unlock(&l.lock);
	if (!l.n) {
		rc = -EAGAIN;
		goto out;
	}
	/* a signal interrupts sem_timedwait; the timeout catches the rest */
	while (!atomic_load(&l.stop) && !fuse_session_exited(se)) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec++;
		sem_timedwait(&l.finish, &ts);
	}
	pthread_mutex_lock(&l.lock);
	atomic_store(&l.stop, true); /* no thread is started after this */
	pthread_cond_broadcast(&l.cond);
	n = l.n;
	pthread_mutex_unlock(&l.lock);
	/* the eventfd stays readable: every later poll() returns */
	if (write(l.efd, &one, sizeof(one)) < 0)
		log_warn("cannot wake the FUSE workers: %s", strerror(errno));
	for (i = 0; i < n; i++)
		pthread_join(l.th[i], NULL);
	rc = l.error;
	log_debug("loop: %lu requests taken spinning, %lu after sleeping, "
		  "%lu ms spun in vain, spinning paused %lu times, %u threads",
		  atomic_load(&l.spun), atomic_load(&l.slept),
		  atomic_load(&l.spin_ns_lost) / 1000000, atomic_load(&l.busy),
		  n);
	fcntl(l.fd, F_SETFL, flags);
	fuse_session_reset(se);
out:
	if (l.efd >= 0)
		close(l.efd);
	free(l.th);
	sem_destroy(&l.finish);
	pthread_cond_destroy(&l.cond);
	pthread_mutex_destroy(&l.lock);
	return rc;
}
