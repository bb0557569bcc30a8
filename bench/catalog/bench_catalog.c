/*
 * bench_catalog - catalog speed at scale: ingest of N items through the
 * writer API, an incremental snapshot changing 1%, lookup and getattr
 * latency (median, p99), listing of a 50,000-entry folder, bytes per item.
 *
 *	bench_catalog DIR N [reuse]
 *
 * With "reuse" an existing DIR/bench.db of N items is measured again
 * (readers only).
 * Prints one "name value unit" line per measurement.
 */
#include "catalog/catalog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define BIG	50000 /* entries of the big folder */
#define PER_DIR 200 /* files per ordinary folder */
#define LOOKUPS 100000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: what a listing costs without the wait for a
 * core on a shared machine. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void die(const char *what, int ret)
{
	fprintf(stderr, "bench_catalog: %s: %s\n", what, strerror(-ret));
	exit(1);
}

static void file_name(char *out, size_t n, int64_t i)
{
	snprintf(out, n, "Document-%07lld-quarterly report.docx", (long long)i);
}

/* Put file @i (version @v) under @parent with realistic metadata. */
static void put_file(struct cat *c, int64_t parent, int64_t i, int v,
		     const char *folder)
{
	char name[64], gid[40], etag[64], ctag[64], url[200], qxh[32];
	char gsize[24];
	unsigned char sha[32], q[20];
	int64_t content;
	struct cat_kv kv[6];
	struct cat_item_in in = { 0 };
	char desc[72];
	int ret;

	file_name(name, sizeof(name), i);
	snprintf(gid, sizeof(gid), "01BYE5RZ%026llX", (unsigned long long)i);
	snprintf(etag, sizeof(etag), "\"{3B8B5C1F-%04X-4D2A-9E8B-%012llX},%d\"",
		 (unsigned)(i & 0xffff), (unsigned long long)i, v);
	snprintf(ctag, sizeof(ctag),
		 "\"c:{3B8B5C1F-%04X-4D2A-9E8B-%012llX},%d\"",
		 (unsigned)(i & 0xffff), (unsigned long long)i, v);
	snprintf(url, sizeof(url),
		 "https://contoso.sharepoint.com/sites/finance/Shared%%20"
		 "Documents/%s/%s",
		 folder, name);
	for (int k = 0; k < 32; k += 8) {
		uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ULL + (uint64_t)v +
			     (uint64_t)k;
		memcpy(sha + k, &x, 8);
	}
	memcpy(q, sha, 20);
	snprintf(qxh, sizeof(qxh), "%.27s=", "aGVsbG8gd29ybGQgaGVsbG8gd29y");
	snprintf(gsize, sizeof(gsize), "%d", v);
	memset(desc, 'd', sizeof(desc));
	ret = cat_content_put(c, 1000 + i % 100000 + v, sha, q, desc,
			      sizeof(desc), &content);
	if (ret < 0)
		die("content put", ret);
	kv[0] = (struct cat_kv){ CAT_META_GRAPH_ID, gid };
	kv[1] = (struct cat_kv){ CAT_META_ETAG, etag };
	kv[2] = (struct cat_kv){ CAT_META_CTAG, ctag };
	kv[3] = (struct cat_kv){ CAT_META_WEB_URL, url };
	kv[4] = (struct cat_kv){ CAT_META_QUICKXORHASH, qxh };
	kv[5] = (struct cat_kv){ CAT_META_AUTHOR, "Megan Bowen" };
	in.parent = parent;
	in.kind = CAT_KIND_FILE;
	in.name = name;
	in.scope = "drive:b!finance";
	in.graph_id = gid;
	in.size = 1000 + i % 100000 + v;
	in.mtime_sec = 1700000000 + i + v;
	in.mtime_nsec = 0;
	in.btime_sec = 1600000000 + i;
	in.content = content;
	in.meta = kv;
	in.nmeta = 6;
	ret = cat_item_put(c, &in, NULL, NULL);
	if (ret < 0)
		die("item put", ret);
}

static int64_t put_dir(struct cat *c, int64_t parent, int kind,
		       const char *name, const char *gid)
{
	struct cat_item_in in = { .parent = parent,
				  .kind = kind,
				  .name = name,
				  .mtime_sec = 1700000000 };
	int64_t id;
	int ret;

	if (gid) {
		in.scope = "drive:b!finance";
		in.graph_id = gid;
	}
	ret = cat_item_put(c, &in, &id, NULL);
	if (ret < 0)
		die("dir put", ret);
	return id;
}

struct count {
	int64_t n;
};

static int count_cb(void *ctx, const struct cat_item *it)
{
	struct count *n = ctx;

	n->n += it->size > 0;
	return 0;
}

int main(int argc, char **argv)
{
	struct cat *c = NULL, *r = NULL;
	int64_t n, snap, drive, big, nfolders, *folders, done = 0;
	double t0, t1, *lat;
	char path[4096], name[64], gid[40];
	struct stat st;
	int ret;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: bench_catalog DIR N [reuse]\n");
		return 2;
	}
	log_init("bench_catalog", LOG_WARNING);
	n = atoll(argv[2]);
	if (n < BIG + PER_DIR)
		n = BIG + PER_DIR;
	snprintf(path, sizeof(path), "%s/bench.db", argv[1]);
	nfolders = (n - BIG + PER_DIR - 1) / PER_DIR;
	folders = calloc((size_t)nfolders, sizeof(*folders));
	if (argc == 4 && access(path, F_OK) == 0) {
		done = n;
		goto readers;
	}
	unlink(path);
	ret = cat_open(path, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c);
	if (ret < 0)
		die("open", ret);
	/* a bulk load: big transactions (CAT_BENCH_BATCH rows, 0: default) */
	cat_set_batch(c,
		      getenv("CAT_BENCH_BATCH")
			      ? (unsigned)atoi(getenv("CAT_BENCH_BATCH"))
			      : 500000,
		      30000);

	/* snapshot 1: everything */
	t0 = now_s();
	if ((ret = cat_snapshot_begin(c, &snap)) < 0)
		die("begin", ret);
	drive = put_dir(c, CAT_ROOT, CAT_KIND_TOP, "sites", NULL);
	drive = put_dir(c, drive, CAT_KIND_SITE_HOST, "contoso.sharepoint.com",
			NULL);
	drive = put_dir(c, drive, CAT_KIND_DRIVE, "Shared Documents",
			"b!drive");
	big = put_dir(c, drive, CAT_KIND_FOLDER, "big", "01BIG");
	for (int64_t i = 0; i < BIG; i++)
		put_file(c, big, i, 0, "big");
	done = BIG;
	for (int64_t f = 0; f < nfolders; f++) {
		snprintf(name, sizeof(name), "Project %06lld", (long long)f);
		snprintf(gid, sizeof(gid), "01DIR%06lld", (long long)f);
		folders[f] = put_dir(c, drive, CAT_KIND_FOLDER, name, gid);
		for (int k = 0; k < PER_DIR && done < n; k++, done++)
			put_file(c, folders[f], done, 0, name);
	}
	if ((ret = cat_snapshot_finish(c, CAT_SNAP_COMPLETE)) < 0)
		die("finish", ret);
	t1 = now_s();
	printf("items %lld\n", (long long)(done + nfolders + 4));
	printf("ingest_full %.1f s (%.0f items/s)\n", t1 - t0,
	       (double)done / (t1 - t0));

	/* snapshot 2: 1% of the files change, the rest is compared */
	t0 = now_s();
	if ((ret = cat_snapshot_begin(c, &snap)) < 0)
		die("begin", ret);
	for (int64_t i = BIG; i < done; i += 100) {
		int64_t f = (i - BIG) / PER_DIR;

		snprintf(name, sizeof(name), "Project %06lld", (long long)f);
		put_file(c, folders[f], i, 1, name);
	}
	if ((ret = cat_snapshot_finish(c, CAT_SNAP_COMPLETE)) < 0)
		die("finish", ret);
	t1 = now_s();
	printf("ingest_incremental_1pct %.2f s (%lld changes)\n", t1 - t0,
	       (long long)((done - BIG) / 100));
	cat_close(c); /* checkpoints the WAL */
	c = NULL;
	if (stat(path, &st) == 0)
		printf("bytes_per_item %.0f B (file %.1f MiB, %lld items, 2 "
		       "snapshots)\n",
		       (double)st.st_size / (double)(done + nfolders),
		       (double)st.st_size / 1048576.0,
		       (long long)(done + nfolders));

readers:
	ret = cat_open(path, CAT_OPEN_READ, &r);
	if (ret < 0)
		die("open read", ret);
	cat_snapshot_latest(r, &snap);
	if (argc == 4) { /* find the folders again */
		struct cat_item it;

		cat_lookup(r, snap, CAT_ROOT, "sites", &it);
		cat_lookup(r, snap, it.id, "contoso.sharepoint.com", &it);
		cat_lookup(r, snap, it.id, "Shared Documents", &it);
		drive = it.id;
		cat_lookup(r, snap, drive, "big", &it);
		big = it.id;
		for (int64_t f = 0; f < nfolders; f++) {
			snprintf(name, sizeof(name), "Project %06lld",
				 (long long)f);
			if (cat_lookup(r, snap, drive, name, &it) < 0)
				die("find folder", -ENOENT);
			folders[f] = it.id;
		}
	}
	lat = calloc(LOOKUPS, sizeof(*lat));
	if (argc == 4 && !strcmp(argv[3], "list"))
		goto list;
	{
		struct cat_item it;
		int64_t found = 0;

		for (int i = 0; i < LOOKUPS; i++) {
			int64_t x =
				BIG + (int64_t)(rnd() % (uint64_t)(done - BIG));
			int64_t f = (x - BIG) / PER_DIR;
			double a, b;

			file_name(name, sizeof(name), x);
			a = now_s();
			ret = cat_lookup(r, snap, folders[f], name, &it);
			b = now_s();
			found += ret == 0;
			lat[i] = (b - a) * 1e6;
		}
		qsort(lat, LOOKUPS, sizeof(*lat), cmp_d);
		printf("lookup_median %.2f us (p99 %.2f us, %lld/%d found)\n",
		       lat[LOOKUPS / 2], lat[LOOKUPS * 99 / 100],
		       (long long)found, LOOKUPS);
		for (int i = 0; i < LOOKUPS; i++) {
			int64_t id = 5 + (int64_t)(rnd() % (uint64_t)done);
			double a, b;

			a = now_s();
			ret = cat_item_get(r, snap, id, &it);
			b = now_s();
			lat[i] = (b - a) * 1e6;
		}
		qsort(lat, LOOKUPS, sizeof(*lat), cmp_d);
		printf("getattr_median %.2f us (p99 %.2f us)\n",
		       lat[LOOKUPS / 2], lat[LOOKUPS * 99 / 100]);
		/* an older snapshot: lookups that meet ended versions */
		for (int i = 0; i < LOOKUPS; i++) {
			int64_t x =
				BIG + (int64_t)(rnd() % (uint64_t)(done - BIG));
			int64_t f = (x - BIG) / PER_DIR;
			double a, b;

			file_name(name, sizeof(name), x);
			a = now_s();
			cat_lookup(r, snap - 1, folders[f], name, &it);
			b = now_s();
			lat[i] = (b - a) * 1e6;
		}
		qsort(lat, LOOKUPS, sizeof(*lat), cmp_d);
		printf("lookup_old_snapshot_median %.2f us\n",
		       lat[LOOKUPS / 2]);
	}
list : {
	double l[31], cpu[31], c0;
	int reps = argc == 4 && !strcmp(argv[3], "list") ? 31 : 7;
	struct count cnt;

	for (int k = 0; k < reps; k++) {
		cnt.n = 0;
		t0 = now_s();
		c0 = cpu_s();
		ret = cat_list(r, snap, big, NULL, count_cb, &cnt);
		cpu[k] = (cpu_s() - c0) * 1e3;
		t1 = now_s();
		if (ret < 0 || cnt.n != BIG)
			die("list", ret < 0 ? ret : -EIO);
		l[k] = (t1 - t0) * 1e3;
	}
	qsort(l, (size_t)reps, sizeof(*l), cmp_d);
	qsort(cpu, (size_t)reps, sizeof(*cpu), cmp_d);
	printf("list_50000_median %.1f ms (min %.1f, max %.1f; cpu "
	       "median %.1f ms)\n",
	       l[reps / 2], l[0], l[reps - 1], cpu[reps / 2]);
}
	free(lat);
	free(folders);
	cat_close(r);
	return 0;
}
