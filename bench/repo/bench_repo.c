/*
 * bench_repo - first backup of a local tree into a new repository through
 * the store's writer API, as the snapshot engine uses it (one
 * store_writer per worker thread, each file one content, store_flush()
 * at the end), for the peer comparison of bench/repo/run.sh.
 *
 *	bench_repo TREE REPO THREADS plain|encrypted
 *
 * Prints one line: "files F bytes B wall S cpu S flush S" (wall from
 * the first file opened to the last pack fsynced and the index
 * committed; cpu of the whole process; flush: the final store_close()).
 * Then every content is read back once from a new read-only store (64
 * MiB chunk cache, packs in the page cache) in 128 KiB pieces as FUSE
 * asks, and the packs are read by `cat`: "read wall S cpu S cat_wall S
 * cat_cpu S packs B" (cpu: of the reading thread, of cat).  Catalog rows are not written (a few per file).
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

#include "store/store.h"
#include "util/log.h"

static char **paths;
static size_t npaths, cap;
static atomic_size_t next_file;
static atomic_ullong total_bytes;
static struct store *st;
static struct store_content *cont; /* per file */

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
	size_t bsize = 1 << 20, i;
	char *b = malloc(bsize);
	intptr_t ret = b ? store_writer_new(st, &w) : -ENOMEM;

	(void)arg;
	while (!ret && (i = atomic_fetch_add(&next_file, 1)) < npaths) {
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		ssize_t n;

		if (fd < 0) {
			ret = -errno;
			break;
		}
		while (!ret && (n = read(fd, b, bsize)) > 0)
			ret = store_writer_add(w, b, (size_t)n);
		close(fd);
		if (!ret)
			ret = store_writer_finish(w, &cont[i]);
		if (!ret)
			atomic_fetch_add(&total_bytes, cont[i].size);
	}
	if (ret)
		fprintf(stderr, "bench_repo: %s\n", strerror((int)-ret));
	store_writer_free(w);
	free(b);
	return (void *)ret;
}

/* CPU seconds of finished children (cat). */
static double child_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Read every content back, then cat the packs; print the times. */
static int read_back(const char *repo, const unsigned char *key)
{
	struct store_open_opts oo = { .key = key };
	char *b = malloc(128 << 10), cmd[4200];
	double w0, c0, rw, rc, cw;
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
	if (!b || store_open(repo, &oo, &st, NULL))
		return -1;
	w0 = clock_s(CLOCK_MONOTONIC);
	c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	for (size_t i = 0; i < npaths; i++)
		for (uint64_t off = 0; off < cont[i].size;) {
			ssize_t got =
				store_read(st, cont[i].desc.data,
					   cont[i].desc.len, off, b, 128 << 10);

			if (got <= 0)
				return -1;
			off += (uint64_t)got;
		}
	rc = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
	rw = clock_s(CLOCK_MONOTONIC) - w0;
	store_close(st);
	free(b);
	c0 = child_cpu();
	w0 = clock_s(CLOCK_MONOTONIC);
	if (system(cmd))
		return -1;
	cw = clock_s(CLOCK_MONOTONIC) - w0;
	printf("read wall %.3f cpu %.3f cat_wall %.3f cat_cpu %.3f packs "
	       "%llu\n",
	       rw, rc, cw, child_cpu() - c0, (unsigned long long)packs);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned char key[STORE_KEY_LEN];
	struct store_create_opts co = { 0 };
	struct store_open_opts oo = { .flags = STORE_OPEN_WRITE,
				      .command = "bench_repo" };
	pthread_t th[64];
	double w0, c0, wj;
	int nth, ret = 0;

	if (argc != 5 || (nth = atoi(argv[3])) < 1 || nth > 64) {
		fprintf(stderr, "usage: bench_repo TREE REPO THREADS "
				"plain|encrypted\n");
		return 2;
	}
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
	if (store_open(argv[2], &oo, &st, NULL)) {
		fprintf(stderr, "bench_repo: cannot open '%s'\n", argv[2]);
		return 1;
	}
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
	if (store_close(st))
		ret = 1;
	printf("files %zu bytes %llu wall %.3f cpu %.3f flush %.3f\n", npaths,
	       (unsigned long long)atomic_load(&total_bytes),
	       clock_s(CLOCK_MONOTONIC) - w0,
	       clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0,
	       clock_s(CLOCK_MONOTONIC) - wj);
	if (!ret && read_back(argv[2], co.encrypt ? key : NULL)) {
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
