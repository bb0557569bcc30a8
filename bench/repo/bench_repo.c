/*
 * bench_repo - first backup of a local tree into a new repository through
 * the store's writer API, as the snapshot engine uses it (one
 * store_writer per worker thread, each file one content, store_flush()
 * at the end), for the peer comparison of bench/repo/run.sh.  Files are
 * read straight into the writer's chunker window (store_writer_add_fd(),
 * as store_put_fd()); the engine's downloads arrive in curl's buffers
 * and are copied in (store_writer_add(), the "copy" stage).
 *
 *	bench_repo TREE REPO THREADS plain|encrypted [timed]
 *
 * Prints one line: "files F bytes B wall S cpu S flush S open_cpu S
 * close_cpu S" (wall from the first file opened to the last pack
 * fsynced and the index committed; cpu of the whole process over that
 * time: the writer threads, file reads included, and store_open() and
 * store_close(); flush: the wall of the final store_close(); open_cpu
 * and close_cpu: the CPU of those two calls, index commit included),
 * and, with "timed", where the writers' CPU time went: "stages NAME S
 * ..." (the store's stage timers summed over the threads; "wait" is wall
 * time waiting for the pack).  The timers read the thread's CPU clock,
 * a system call, several times per chunk: they cost a few per cent of
 * the CPU time, so an untimed run measures the ingest.  Then the stage limit on the same data: each
 * file read into memory, then the chunker, SHA-256 of each chunk, lz4
 * of each chunk and AES-256-GCM of what lz4 left, each stage timed
 * alone in one thread: "limit chunk S sha S lz4 S gcm S read S" (CPU
 * seconds; read: the file reads, which the other four leave out),
 * and what the writer threads spent on a CPU and waiting for one (the
 * run queue: other jobs on a shared machine), summed over the threads,
 * from /proc/thread-self/schedstat: "sched cpu S runqueue S threads N".
 * Then every content is read back once from a new read-only store,
 * opened as m365fs opens it (32 MiB chunk cache, read transactions kept
 * for 100 ms), packs in the page cache, in 128 KiB pieces as FUSE asks,
 * and the packs are read by `cat`: "read wall S cpu S cat_wall S cat_cpu
 * S packs B par_wall S par_cpu S par_threads N" (cpu: of the reading
 * thread, of cat; par_: the same read back by THREADS threads from
 * another new store, as the FUSE daemon's workers read).  Catalog rows
 * are not written (a few per file).
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <lz4.h>
#include <openssl/sha.h>

#include "store/store_i.h"
#include "util/log.h"

static char **paths;
static size_t npaths, cap;
static atomic_size_t next_file;
static atomic_ullong total_bytes;
static struct store *st;
static struct store_content *cont; /* per file */
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_writer_stats stats; /* of all writers */
static bool timed; /* stage timers on */
static double sched_cpu, sched_queue; /* of all writers, seconds */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int collect(const char *path, const struct stat *sb, int type,
		   struct FTW *f)
{
	(void)sb;
	(void)f;
	if (type != FTW_F)
		return 0;
	if (npaths == cap) {
		cap = cap ? 2 * cap : 1024;
		paths = realloc(paths, cap * sizeof(*paths));
		if (!paths)
			return -1;
	}
	paths[npaths] = strdup(path);
	return paths[npaths++] ? 0 : -1;
}

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
	struct store_writer *w = NULL;
	intptr_t ret = store_writer_new(st, &w);
	size_t i;

	(void)arg;
	if (w)
		store_writer_timing(w, timed);
	while (!ret && (i = atomic_fetch_add(&next_file, 1)) < npaths) {
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);

		if (fd < 0) {
			ret = -errno;
			break;
		}
		ret = store_writer_add_fd(w, fd);
		close(fd);
		if (!ret)
			ret = store_writer_finish(w, &cont[i]);
		if (!ret)
			atomic_fetch_add(&total_bytes, cont[i].size);
	}
	if (ret)
		fprintf(stderr, "bench_repo: %s\n", strerror((int)-ret));
	if (w) {
		FILE *f = fopen("/proc/thread-self/schedstat", "r");
		unsigned long long run = 0, queue = 0;

		if (f && fscanf(f, "%llu %llu", &run, &queue) != 2)
			run = queue = 0;
		if (f)
			fclose(f);
		pthread_mutex_lock(&stats_lock);
		store_writer_stats_add(w, &stats);
		sched_cpu += (double)run / 1e9;
		sched_queue += (double)queue / 1e9;
		pthread_mutex_unlock(&stats_lock);
	}
	store_writer_free(w);
	return (void *)ret;
}

static double elapsed(double *t)
{
	double now = clock_s(CLOCK_THREAD_CPUTIME_ID), d = now - *t;

	*t = now;
	return d;
}

/*
 * The stages alone over the same files, one thread: print the CPU
 * seconds of each.  The file reads are not timed.
 */
static int stage_limit(int cdc_min, int cdc_avg, int cdc_max)
{
	unsigned char key[32] = { 1 }, nonce[GCM_NONCE_LEN] = { 2 }, md[32];
	double tc = 0, ts = 0, tl = 0, tg = 0, tr = 0, t;
	size_t cap = 0, *cuts = NULL, *packed = NULL, ncap = 0;
	unsigned char *data = NULL;
	char *dst = malloc((size_t)LZ4_compressBound(cdc_max));
	void *lz = malloc((size_t)LZ4_sizeofState());
	struct buf out = BUF_INIT;
	struct cdc cdc;
	int ret = -1;

	cdc_init(&cdc, (uint32_t)cdc_min, (uint32_t)cdc_avg, (uint32_t)cdc_max);
	for (size_t i = 0; dst && lz && i < npaths; i++) {
		size_t n = 0, nc = 0, off;
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		ssize_t got;

		if (fd < 0)
			goto out;
		t = clock_s(CLOCK_THREAD_CPUTIME_ID);
		for (;;) {
			if (n == cap) {
				unsigned char *d;

				cap = cap ? 2 * cap : 1 << 20;
				d = realloc(data, cap);
				if (!d) {
					close(fd);
					goto out;
				}
				data = d;
			}
			got = read(fd, data + n, cap - n);
			if (got <= 0)
				break;
			n += (size_t)got;
		}
		close(fd);
		tr += elapsed(&t);
		if (got < 0)
			goto out;
		if (ncap < n / (size_t)cdc_min + 2) {
			free(cuts);
			free(packed);
			ncap = n / (size_t)cdc_min + 2;
			cuts = malloc(ncap * sizeof(*cuts));
			packed = malloc(ncap * sizeof(*packed));
			if (!cuts || !packed)
				goto out;
		}
		t = clock_s(CLOCK_THREAD_CPUTIME_ID);
		for (off = 0; off < n; off += cuts[nc++])
			cuts[nc] = cdc_cut(&cdc, data + off, n - off);
		tc += elapsed(&t);
		for (size_t c = 0, o = 0; c < nc; o += cuts[c++])
			SHA256(data + o, cuts[c], md);
		ts += elapsed(&t);
		for (size_t c = 0, o = 0; c < nc; o += cuts[c++]) {
			int b = LZ4_compressBound((int)cuts[c]);
			int l = LZ4_compress_fast_extState(
				lz, (const char *)data + o, dst, (int)cuts[c],
				b, 1);

			packed[c] = l > 0 && (size_t)l < cuts[c] ? (size_t)l
								 : cuts[c];
		}
		tl += elapsed(&t);
		for (size_t c = 0, o = 0; c < nc; o += cuts[c++]) {
			/* what the store seals: the lz4 output when smaller
			 * (its bytes do not matter for the time) */
			buf_reset(&out);
			if (gcm_seal(key, nonce, md, 32, data + o, packed[c],
				     &out))
				goto out;
		}
		tg += elapsed(&t);
	}
	printf("limit chunk %.3f sha %.3f lz4 %.3f gcm %.3f read %.3f\n", tc,
	       ts, tl, tg, tr);
	ret = 0;
out:
	buf_release(&out);
	free(data);
	free(cuts);
	free(packed);
	free(dst);
	free(lz);
	return ret;
}

/* CPU seconds of finished children (cat). */
static double child_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static atomic_size_t next_read;
static _Atomic double read_cpu; /* CPU seconds of the reader threads */

/* Read whole contents, taken in turn, in 128 KiB pieces as FUSE asks. */
static void *reader(void *arg)
{
	char *b = malloc(128 << 10);
	double c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), sum;
	void *ret = NULL;
	size_t i;

	(void)arg;
	while (b && !ret && (i = atomic_fetch_add(&next_read, 1)) < npaths)
		for (uint64_t off = 0; off < cont[i].size;) {
			ssize_t got =
				store_read(st, cont[i].desc.data,
					   cont[i].desc.len, off, b, 128 << 10);

			if (got <= 0) {
				ret = (void *)1;
				break;
			}
			off += (uint64_t)got;
		}
	sum = atomic_load(&read_cpu);
	while (!atomic_compare_exchange_weak(
		&read_cpu, &sum, sum + clock_s(CLOCK_THREAD_CPUTIME_ID) - c0))
		;
	free(b);
	return b ? ret : (void *)1;
}

/*
 * Read every content back with @nth threads from a new store (its chunk
 * cache cold); wall and CPU seconds in @wall and @cpu.
 */
static int read_all(const char *repo, const unsigned char *key, int nth,
		    double *wall, double *cpu)
{
	/* as m365fs opens it (its default -o cache_size, FS_HOLD_MS) */
	struct store_open_opts oo = { .key = key,
				      .cache_bytes = 32u << 20,
				      .read_hold_ms = 100 };
	pthread_t th[64];
	double w0;
	int bad = 0, n = 0;

	if (store_open(repo, &oo, &st, NULL))
		return -1;
	atomic_store(&next_read, 0);
	atomic_store(&read_cpu, 0);
	w0 = clock_s(CLOCK_MONOTONIC);
	while (n < nth && !pthread_create(&th[n], NULL, reader, NULL))
		n++;
	for (int i = 0; i < n; i++) {
		void *r;

		pthread_join(th[i], &r);
		bad |= r != NULL;
	}
	*wall = clock_s(CLOCK_MONOTONIC) - w0;
	*cpu = atomic_load(&read_cpu);
	store_close(st);
	return bad || n < nth ? -1 : 0;
}

/*
 * Read every content back in one thread, then cat the packs, then read
 * back again with @nth threads (as the FUSE daemon's workers answer the
 * kernel's reads); print the times.
 */
static int read_back(const char *repo, const unsigned char *key, int nth)
{
	char cmd[4200];
	double c0, w0, rw, rc, cw, pw, pc;
	uint64_t packs = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd),
		 "find '%s/data' -name '*.pack' -printf '%%s\\n' | "
		 "awk '{s+=$1} END {print s}'",
		 repo);
	f = popen(cmd, "r");
	if (!f || fscanf(f, "%llu", (unsigned long long *)&packs) != 1)
		return -1;
	pclose(f);
	snprintf(cmd, sizeof(cmd),
		 "find '%s/data' -name '*.pack' -exec cat {} + >/dev/null",
		 repo);
	if (system(cmd)) /* into the page cache, untimed */
		return -1;
	if (read_all(repo, key, 1, &rw, &rc))
		return -1;
	c0 = child_cpu();
	w0 = clock_s(CLOCK_MONOTONIC);
	if (system(cmd))
		return -1;
	cw = clock_s(CLOCK_MONOTONIC) - w0;
	c0 = child_cpu() - c0;
	if (read_all(repo, key, nth, &pw, &pc))
		return -1;
	printf("read wall %.3f cpu %.3f cat_wall %.3f cat_cpu %.3f packs "
	       "%llu par_wall %.3f par_cpu %.3f par_threads %d\n",
	       rw, rc, cw, c0, (unsigned long long)packs, pw, pc, nth);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char key[STORE_KEY_LEN];
	struct store_create_opts co = { 0 };
	struct store_open_opts oo = { .flags = STORE_OPEN_WRITE,
				      .command = "bench_repo" };
	pthread_t th[64];
	double w0, c0, wj, co0, cc0, open_cpu, close_cpu;
	int nth, ret = 0;

	if ((argc != 5 && argc != 6) || (nth = atoi(argv[3])) < 1 || nth > 64 ||
	    (argc == 6 && strcmp(argv[5], "timed"))) {
		fprintf(stderr, "usage: bench_repo TREE REPO THREADS "
				"plain|encrypted [timed]\n");
		return 2;
	}
	timed = argc == 6;
	log_init("bench_repo", LOG_WARNING);
	co.encrypt = !strcmp(argv[4], "encrypted");
	if (nftw(argv[1], collect, 64, FTW_PHYS)) {
		perror("bench_repo: walk");
		return 1;
	}
	qsort(paths, npaths, sizeof(*paths), cmp_str);
	cont = calloc(npaths ? npaths : 1, sizeof(*cont));
	if (!cont)
		return 1;
	for (size_t i = 0; i < npaths; i++)
		store_content_init(&cont[i]);
	if (store_create(argv[2], &co, key, NULL)) {
		fprintf(stderr, "bench_repo: cannot create '%s'\n", argv[2]);
		return 1;
	}
	oo.key = co.encrypt ? key : NULL;
	w0 = clock_s(CLOCK_MONOTONIC);
	c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
	co0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	if (store_open(argv[2], &oo, &st, NULL)) {
		fprintf(stderr, "bench_repo: cannot open '%s'\n", argv[2]);
		return 1;
	}
	open_cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - co0;
	for (int i = 0; i < nth; i++)
		if (pthread_create(&th[i], NULL, worker, NULL))
			return 1;
	for (int i = 0; i < nth; i++) {
		void *r;

		pthread_join(th[i], &r);
		if (r)
			ret = 1;
	}
	wj = clock_s(CLOCK_MONOTONIC);
	cc0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	if (store_close(st))
		ret = 1;
	close_cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - cc0;
	printf("files %zu bytes %llu wall %.3f cpu %.3f flush %.3f open_cpu "
	       "%.3f close_cpu %.3f\n",
	       npaths, (unsigned long long)atomic_load(&total_bytes),
	       clock_s(CLOCK_MONOTONIC) - w0,
	       clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0,
	       clock_s(CLOCK_MONOTONIC) - wj, open_cpu, close_cpu);
	printf("sched cpu %.3f runqueue %.3f threads %d\n", sched_cpu,
	       sched_queue, nth);
	if (timed) {
		printf("stages");
		for (int i = 0; i < STORE_STAGES; i++)
			printf(" %s %.3f", store_stage_name(i),
			       (double)stats.ns[i] / 1e9);
		printf("\n");
	}
	if (!ret &&
	    stage_limit(STORE_CHUNK_MIN, STORE_CHUNK_AVG, STORE_CHUNK_MAX)) {
		fprintf(stderr, "bench_repo: measuring the stages failed\n");
		ret = 1;
	}
	if (!ret && read_back(argv[2], co.encrypt ? key : NULL, nth)) {
		fprintf(stderr, "bench_repo: reading back failed\n");
		ret = 1;
	}
	for (size_t i = 0; i < npaths; i++) {
		free(paths[i]);
		store_content_release(&cont[i]);
	}
	free(paths);
	free(cont);
	return ret;
}
