/*
 * test_store.c - the content store: round trips, dedup, keys, damage,
 * torn tails, killed writers, concurrency, blobs, check and prune.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "check.h"
#include "store/store.h"
#include "util/log.h"
#include "util/util.h"

#define MiB (1024u * 1024)

static char tmpdir[] = "/tmp/test_store.XXXXXX";
static int repo_seq;

/* ---- helpers ---- */

static uint64_t rng_state = 0x1234567;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static void fill_random(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t s = seed, z;

	for (size_t i = 0; i < n; i += 8) {
		z = (s += 0x9E3779B97F4A7C15ULL);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		z ^= z >> 31;
		memcpy(p + i, &z, n - i < 8 ? n - i : 8);
	}
}

/* Compressible text: words from a small vocabulary. */
static void fill_text(unsigned char *p, size_t n, uint64_t seed)
{
	static const char *const words[] = {
		"mail ",   "site ",  "drive ",	  "backup ",
		"the ",	   "of ",    "snapshot ", "restore ",
		"tenant ", "file\n", "chunk ",	  "pack ",
		"and ",	   "a ",     "to ",	  "microsoft ",
	};
	uint64_t s = seed;
	size_t i = 0;

	while (i < n) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		const char *w = words[(s >> 33) % ARRAY_SIZE(words)];
		size_t l = strlen(w);

		if (l > n - i)
			l = n - i;
		memcpy(p + i, w, l);
		i += l;
	}
}

static char *new_repo(void)
{
	char *path = malloc(256);

	snprintf(path, 256, "%s/repo%d", tmpdir, ++repo_seq);
	return path;
}

static struct store *open_rw(const char *repo, const unsigned char *key)
{
	struct store_open_opts o = { .flags = STORE_OPEN_WRITE,
				     .key = key,
				     .command = "test_store" };
	struct store *st = NULL;
	struct buf why = BUF_INIT;
	int rc = store_open(repo, &o, &st, &why);

	if (rc)
		fprintf(stderr, "open '%s': %d %s\n", repo, rc, why.data);
	buf_release(&why);
	return st;
}

static struct store *open_ro(const char *repo, const unsigned char *key,
			     size_t cache)
{
	struct store_open_opts o = { .key = key, .cache_bytes = cache };
	struct store *st = NULL;
	int rc = store_open(repo, &o, &st, NULL);

	if (rc)
		fprintf(stderr, "open ro '%s': %d\n", repo, rc);
	return st;
}

static int make_repo(const char *repo, bool enc, unsigned char key[32])
{
	struct store_create_opts o = { .encrypt = enc };
	struct buf why = BUF_INIT;
	int rc = store_create(repo, &o, key, &why);

	if (rc)
		fprintf(stderr, "create: %d %s\n", rc, why.data);
	buf_release(&why);
	return rc;
}

/* Read all of @c back in pieces of @piece bytes and compare. */
static bool read_equal(struct store *st, const struct store_content *c,
		       const unsigned char *src, size_t n, size_t piece)
{
	unsigned char *b = malloc(piece ? piece : 1);
	uint64_t off = 0;
	bool ok = true;

	while (off < n) {
		ssize_t r = store_read(st, c->desc.data, c->desc.len, off, b,
				       piece);
		if (r <= 0 || memcmp(b, src + off, (size_t)r)) {
			fprintf(stderr, "read at %llu: %zd\n",
				(unsigned long long)off, r);
			ok = false;
			break;
		}
		off += (uint64_t)r;
	}
	if (ok && store_read(st, c->desc.data, c->desc.len, n, b, piece) != 0)
		ok = false;
	free(b);
	return ok;
}

/* ---- tests ---- */

static void roundtrip(bool enc)
{
	const size_t sizes[] = {
		0, 1, STORE_CHUNK_MIN - 1, STORE_CHUNK_MIN, MiB, 7 * MiB + 12345
	};
	unsigned char key[32];
	char *repo = new_repo();
	struct store *st;
	struct store_content c[2 * ARRAY_SIZE(sizes)];
	unsigned char *src[2 * ARRAY_SIZE(sizes)];

	CHECK_EQ(make_repo(repo, enc, key), 0);
	st = open_rw(repo, enc ? key : NULL);
	CHECK(st != NULL);
	if (!st)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		size_t n = sizes[i / 2];
		unsigned char md[32];

		src[i] = malloc(n + 1);
		if (i % 2)
			fill_text(src[i], n, i);
		else
			fill_random(src[i], n, i);
		store_content_init(&c[i]);
		CHECK_EQ(store_put(st, src[i], n, &c[i]), 0);
		CHECK_EQ(c[i].size, n);
		SHA256(src[i], n, md);
		CHECK(!memcmp(md, c[i].sha256, 32));
		/* readable before the flush, from this process */
		CHECK(read_equal(st, &c[i], src[i], n, 65536));
	}
	CHECK_EQ(store_close(st), 0);

	st = open_ro(repo, enc ? key : NULL, 0);
	CHECK(st != NULL);
	for (size_t i = 0; st && i < ARRAY_SIZE(c); i++) {
		size_t n = sizes[i / 2];
		uint64_t size = 1, chunks = 0;

		CHECK_EQ(store_desc_parse(c[i].desc.data, c[i].desc.len, &size,
					  &chunks),
			 0);
		CHECK_EQ(size, n);
		CHECK_EQ(chunks, c[i].chunks);
		if (n && n <= STORE_CHUNK_MIN)
			CHECK_EQ(chunks, 1);
		CHECK(read_equal(st, &c[i], src[i], n, 4096 * 3 + 7));
		/* odd offsets */
		for (int k = 0; n && k < 20; k++) {
			uint64_t off = rnd() % n;
			size_t len = (size_t)(rnd() % (2 * MiB)) + 1;
			unsigned char *b = malloc(len);
			ssize_t r = store_read(st, c[i].desc.data,
					       c[i].desc.len, off, b, len);
			size_t want = len < n - off ? len : (size_t)(n - off);

			CHECK_EQ(r, (ssize_t)want);
			CHECK(r < 0 || !memcmp(b, src[i] + off, (size_t)r));
			free(b);
		}
	}
	store_close(st);
	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		store_content_release(&c[i]);
		free(src[i]);
	}
	free(repo);
}

static void test_roundtrip_plain(void)
{
	roundtrip(false);
}

static void test_roundtrip_encrypted(void)
{
	roundtrip(true);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		abort();
	return p;
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 1;
	log_init("test_store", getenv("STORE_DEBUG") ? LOG_DEBUG : LOG_ERR);
	(void)xmalloc;
	RUN(test_roundtrip_plain);
	RUN(test_roundtrip_encrypted);
	if (!getenv("KEEP")) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd))
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return check_done();
}
