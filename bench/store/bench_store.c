/*
 * bench_store - ingest and warm-read throughput of the content store,
 * against the limits of its own stages measured alone on the same data.
 *
 *   bench_store DIR [MiB] [runs]
 *
 * Ingest (one thread, plain and encrypted repository): store_put() of
 * the data, versus the sum of the stage times (FastCDC chunking, SHA-256,
 * lz4, AES-256-GCM) each run alone over the same bytes: the stage limit
 * of the issue, goal >= 75%.  The store hashes twice (chunk ids, and the
 * SHA-256 of the whole content, which the catalog keeps), so its second
 * pass counts against it.  Warm read: sequential store_read() of the content in
 * 128 KiB pieces from a freshly opened store (64 MiB chunk cache, pack
 * files in the page cache), versus `cat` of the pack files.  Prints
 * medians and ratios; asserts nothing.
 */
#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "store/store_i.h"
#include "util/util.h"

#define MiB (1024.0 * 1024.0)

/*
 * CPU time of this thread (user + system): per-core throughput that other
 * jobs on a shared machine disturb much less than wall time.
 */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of finished children (for `cat`). */
static double child_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_CHILDREN, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Mixed data: 2/3 text-like (compressible), 1/3 random, in 1 MiB runs. */
static void gen(unsigned char *p, size_t n)
{
	static const char *const w[] = { "mail ",   "site ", "drive ", "the ",
					 "backup ", "of ",   "file\n", "to " };
	uint64_t s = 88172645463325252ULL;

	for (size_t off = 0; off < n; off += 1 << 20) {
		size_t end = off + (1 << 20) < n ? off + (1 << 20) : n;
		bool text = (off >> 20) % 3 != 2;

		for (size_t i = off; i < end;) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			if (!text) {
				size_t k = end - i < 8 ? end - i : 8;

				memcpy(p + i, &s, k);
				i += k;
				continue;
			}
			const char *x = w[s % 8];
			size_t l = strlen(x) < end - i ? strlen(x) : end - i;

			memcpy(p + i, x, l);
			i += l;
		}
	}
}

struct cuts {
	size_t *len;
	size_t n;
};

static double stage_chunk(const unsigned char *p, size_t n, struct cuts *c)
{
	struct cdc cdc;
	double t = now();
	size_t off = 0;

	cdc_init(&cdc, STORE_CHUNK_MIN, STORE_CHUNK_AVG, STORE_CHUNK_MAX);
	c->n = 0;
	while (off < n) {
		size_t l = cdc_cut(&cdc, p + off, n - off);

		c->len[c->n++] = l;
		off += l;
	}
	return now() - t;
}

static double stage_sha(const unsigned char *p, const struct cuts *c)
{
	unsigned char md[32];
	double t = now();
	size_t off = 0;

	for (size_t i = 0; i < c->n; i++) {
		SHA256(p + off, c->len[i], md);
		off += c->len[i];
	}
	return now() - t;
}

static double stage_lz4(const unsigned char *p, const struct cuts *c, char *dst)
{
	void *st = malloc((size_t)LZ4_sizeofState());
	double t = now();
	size_t off = 0;

	for (size_t i = 0; i < c->n; i++) {
		int b = LZ4_compressBound((int)c->len[i]);

		LZ4_compress_fast_extState(st, p + off, dst, (int)c->len[i], b,
					   1);
		off += c->len[i];
	}
	t = now() - t;
	free(st);
	return t;
}

static double stage_gcm(const unsigned char *p, const struct cuts *c)
{
	unsigned char key[32] = { 1 }, nonce[12] = { 2 };
	struct buf out = BUF_INIT;
	double t = now();
	size_t off = 0;

	for (size_t i = 0; i < c->n; i++) {
		buf_reset(&out);
		gcm_seal(key, nonce, p, 48, p + off, c->len[i], &out);
		off += c->len[i];
	}
	t = now() - t;
	buf_release(&out);
	return t;
}

static int run_cmd(const char *fmt, const char *arg)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd), fmt, arg);
	return system(cmd);
}

/* Ingest @n bytes into a new repository @repo; CPU seconds or < 0. */
static double ingest(const char *repo, bool enc, const unsigned char *data,
		     size_t n, unsigned char *key, struct store_content *sc)
{
	struct store_create_opts co = { .encrypt = enc };
	struct store_open_opts oo = { .flags = STORE_OPEN_WRITE, .key = key };
	struct store *st = NULL;
	double t;

	if (run_cmd("rm -rf '%s'", repo) ||
	    store_create(repo, &co, key, NULL) ||
	    store_open(repo, &oo, &st, NULL))
		return -1;
	t = now();
	if (store_put(st, data, n, sc))
		return -1;
	t = now() - t;
	if (store_close(st)) /* flush + fsync: I/O, reported apart */
		return -1;
	return t;
}

/*
 * Read all of @sc sequentially in 128 KiB pieces (as FUSE asks); CPU
 * seconds, wall seconds in *@w.  With @data the bytes are compared too
 * (outside any timed run).
 */
static double read_all(struct store *st, const struct store_content *sc,
		       const unsigned char *data, unsigned char *rb, double *w)
{
	uint64_t off = 0;
	double t = now(), t0 = wall();

	while (off < sc->size) {
		ssize_t got = store_read(st, sc->desc.data, sc->desc.len, off,
					 rb, 128 << 10);

		if (got <= 0 || (data && memcmp(rb, data + off, (size_t)got)))
			return -1;
		off += (uint64_t)got;
	}
	*w = wall() - t0;
	return now() - t;
}

/* Warm reads of @repo (@key or NULL) holding content @sc: print a line. */
static int read_bench(const char *label, const char *repo,
		      const unsigned char *key, const struct store_content *sc,
		      const unsigned char *data, unsigned char *rb, int runs)
{
	double tcat[16], wcat[16], trc[16], wrc[16], trw[16], wrw[16];
	double packbytes = 0, mib = (double)sc->size / MiB;
	char packs[700], cmd[900];
	FILE *f;

	snprintf(packs, sizeof(packs), "%s/data", repo);
	snprintf(
		cmd, sizeof(cmd),
		"find '%s' -name '*.pack' -printf '%%s\\n' | awk '{s+=$1} END {print s}'",
		packs);
	f = popen(cmd, "r");
	if (!f || fscanf(f, "%lf", &packbytes) != 1)
		return -1;
	pclose(f);
	if (run_cmd("find '%s' -name '*.pack' -exec cat {} + >/dev/null",
		    packs))
		return -1;
	{ /* correctness first, untimed */
		struct store_open_opts oo = { .key = key };
		struct store *st = NULL;
		double w;

		if (store_open(repo, &oo, &st, NULL) ||
		    read_all(st, sc, data, rb, &w) < 0)
			return -1;
		store_close(st);
	}
	for (int r = 0; r < runs; r++) {
		struct store_open_opts oo = { .key = key };
		struct store_open_opts big = {
			.key = key, .cache_bytes = sc->size + (sc->size >> 3)
		};
		struct store *st = NULL;
		double c0 = child_cpu(), w0 = wall();

		if (run_cmd("find '%s' -name '*.pack' -exec cat {} + >/dev/null",
			    packs))
			return -1;
		wcat[r] = wall() - w0;
		tcat[r] = child_cpu() - c0;
		/* chunk cache smaller than the data: every chunk decoded */
		if (store_open(repo, &oo, &st, NULL))
			return -1;
		trc[r] = read_all(st, sc, NULL, rb, &wrc[r]);
		store_close(st);
		/* chunk cache holding it all: the second pass */
		if (store_open(repo, &big, &st, NULL))
			return -1;
		if (read_all(st, sc, NULL, rb, &trw[r]) < 0)
			return -1;
		trw[r] = read_all(st, sc, NULL, rb, &wrw[r]);
		store_close(st);
		if (trc[r] < 0 || trw[r] < 0)
			return -1;
	}
	double pm = packbytes / MiB;
	double cat_w = pm / median(wcat, runs), cat_c = pm / median(tcat, runs);
	double rc_w = mib / median(wrc, runs), rc_c = mib / median(trc, runs);
	double rw_w = mib / median(wrw, runs), rw_c = mib / median(trw, runs);

	printf("%s: cat of the packs (%.0f MiB): %.0f MiB/s wall, %.0f MiB/s CPU\n",
	       label, pm, cat_w, cat_c);
	printf("%s: read, chunk cache cold: %.0f MiB/s wall (%.0f%% of cat), %.0f MiB/s CPU (%.0f%%)\n",
	       label, rc_w, 100 * rc_w / cat_w, rc_c, 100 * rc_c / cat_c);
	printf("%s: read, chunk cache warm: %.0f MiB/s wall (%.0f%% of cat), %.0f MiB/s CPU (%.0f%%)\n",
	       label, rw_w, 100 * rw_w / cat_w, rw_c, 100 * rw_c / cat_c);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp/bench_store";
	size_t mib = argc > 2 ? (size_t)atoi(argv[2]) : 256;
	int runs = argc > 3 ? atoi(argv[3]) : 3;
	size_t n = mib << 20;
	unsigned char *data = malloc(n), *rb = malloc(128 << 10), key[32];
	char *dst = malloc((size_t)LZ4_compressBound(STORE_CHUNK_MAX));
	struct cuts c = { malloc(sizeof(size_t) * (n / STORE_CHUNK_MIN + 2)),
			  0 };
	double tc[16], ts[16], tl[16], tg[16], tie[16], tip[16];
	struct store_content sp, se;
	char rp[512], re[512];

	if (!data || !rb || !dst || !c.len || runs < 1 || runs > 16)
		return 2;
	gen(data, n);
	snprintf(rp, sizeof(rp), "%s/plain", dir);
	snprintf(re, sizeof(re), "%s/encrypted", dir);
	store_content_init(&sp);
	store_content_init(&se);
	for (int r = 0; r < runs; r++) { /* interleaved: same load for all */
		tc[r] = stage_chunk(data, n, &c);
		ts[r] = stage_sha(data, &c);
		tl[r] = stage_lz4(data, &c, dst);
		tg[r] = stage_gcm(data, &c);
		tip[r] = ingest(rp, false, data, n, key, &sp);
		tie[r] = ingest(re, true, data, n, key, &se);
		if (tip[r] < 0 || tie[r] < 0)
			return 1;
	}
	double mc = median(tc, runs), ms = median(ts, runs);
	double ml = median(tl, runs), mg = median(tg, runs);
	/* the stage limit: one SHA-256 pass (the store makes two:
	 * chunk ids and the SHA-256 of the whole content) */
	double lim_p = mc + ms + ml, lim_e = lim_p + mg;
	double mie = median(tie, runs), mip = median(tip, runs);

	printf("data: %zu MiB (2/3 text, 1/3 random), %zu chunks, median of %d runs; CPU = CPU time of the thread(s)\n",
	       mib, c.n, runs);
	printf("stage alone (MiB/s CPU): chunker %.0f, sha-256 %.0f, lz4 %.0f, aes-256-gcm %.0f\n",
	       mib / mc, mib / ms, mib / ml, mib / mg);
	printf("ingest plain:     %.0f MiB/s CPU, stage limit %.0f MiB/s (chunker + sha-256 + lz4): %.0f%% (goal >= 75%%: %s)\n",
	       mib / mip, mib / lim_p, 100 * lim_p / mip,
	       lim_p / mip >= 0.75 ? "met" : "not met");
	printf("ingest encrypted: %.0f MiB/s CPU, stage limit %.0f MiB/s (+ aes-256-gcm): %.0f%% (goal >= 75%%: %s)\n",
	       mib / mie, mib / lim_e, 100 * lim_e / mie,
	       lim_e / mie >= 0.75 ? "met" : "not met");
	if (read_bench("plain", rp, NULL, &sp, data, rb, runs) ||
	    read_bench("encrypted", re, key, &se, data, rb, runs))
		return 1;
	store_content_release(&sp);
	store_content_release(&se);
	if (run_cmd("rm -rf '%s'", dir))
		return 1;
	free(data);
	free(rb);
	free(dst);
	free(c.len);
	return 0;
}
