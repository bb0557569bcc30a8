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
 * committed; cpu of the whole process; flush: the final store_close()).  Catalog rows are not written (a few per file).
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
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/log.h"

static char **paths;
static size_t npaths, cap;
static atomic_size_t next_file;
static atomic_ullong total_bytes;
static struct store *st;

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
	struct store_content c;
	size_t bsize = 1 << 20, i;
	char *b = malloc(bsize);
	intptr_t ret = b ? store_writer_new(st, &w) : -ENOMEM;

	(void)arg;
	store_content_init(&c);
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
			ret = store_writer_finish(w, &c);
		if (!ret)
			atomic_fetch_add(&total_bytes, c.size);
	}
	if (ret)
		fprintf(stderr, "bench_repo: %s\n", strerror((int)-ret));
	store_content_release(&c);
	store_writer_free(w);
	free(b);
	return (void *)ret;
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
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	return ret;
}
