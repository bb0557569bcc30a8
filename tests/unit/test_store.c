/*
 * test_store.c - the content store: round trips, dedup, keys, damage,
 * torn tails, killed writers, concurrency, blobs, check and prune.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "check.h"
#include "store/store_i.h"
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

/* A read-only store whose lookups share read transactions of @ms. */
static struct store *open_hold(const char *repo, const unsigned char *key,
			       unsigned ms)
{
	struct store_open_opts o = { .key = key, .read_hold_ms = ms };
	struct store *st = NULL;

	CHECK_EQ(store_open(repo, &o, &st, NULL), 0);
	return st;
}

static bool holding(struct store *st)
{
	bool held;

	pthread_mutex_lock(&st->db_lock);
	held = st->held_ms && !sqlite3_get_autocommit(st->db);
	pthread_mutex_unlock(&st->db_lock);
	return held;
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
		/* text shrinks; random data is stored raw (the sampling
		 * that skips lz4 on such chunks must not lose text) */
		if (n >= MiB && i % 2)
			CHECK(c[i].stored_bytes < n / 2);
		if (n >= MiB && !(i % 2))
			CHECK(c[i].stored_bytes <=
			      n + c[i].new_chunks * (64 + 16));
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
	void *p = malloc(n ? n : 1);

	if (!p)
		abort();
	return p;
}

static struct store *open_opts(const char *repo, const unsigned char *key,
			       int flags, size_t cache, uint64_t pack_target)
{
	struct store_open_opts o = { .flags = flags,
				     .key = key,
				     .cache_bytes = cache,
				     .command = "test_store",
				     .pack_target = pack_target };
	struct store *st = NULL;
	int rc = store_open(repo, &o, &st, NULL);

	if (rc)
		fprintf(stderr, "open '%s': %d\n", repo, rc);
	return st;
}

/* Call @fn with the path of each pack file of @repo until it says stop. */
static void walk_packs(const char *repo,
		       bool (*fn)(void *arg, const char *path), void *arg)
{
	char dir[300], path[1200];
	DIR *d, *s;
	struct dirent *de, *se;
	bool stop = false;

	snprintf(dir, sizeof(dir), "%s/data", repo);
	d = opendir(dir);
	while (d && !stop && (de = readdir(d))) {
		char sub[900];

		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
		s = opendir(sub);
		while (s && !stop && (se = readdir(s))) {
			if (!strstr(se->d_name, ".pack"))
				continue;
			snprintf(path, sizeof(path), "%s/%s", sub, se->d_name);
			stop = fn(arg, path);
		}
		if (s)
			closedir(s);
	}
	if (d)
		closedir(d);
}

struct first {
	char *out;
	size_t size;
	bool found;
};

static bool take_first(void *arg, const char *path)
{
	struct first *f = arg;

	snprintf(f->out, f->size, "%s", path);
	f->found = true;
	return true;
}

/* The first pack file of @repo (there is one in these tests). */
static bool first_pack(const char *repo, char *out, size_t size)
{
	struct first f = { out, size, false };

	walk_packs(repo, take_first, &f);
	return f.found;
}

static void test_keys(void)
{
	unsigned char key[32], back[32];
	char text[STORE_KEY_B64_LEN + 1], path[300], line[80];
	struct buf why = BUF_INIT;
	int fd;

	fill_random(key, 32, 99);
	store_key_format(key, text);
	CHECK_EQ(strlen(text), STORE_KEY_B64_LEN);
	CHECK_EQ(store_key_parse(text, back), 0);
	CHECK(!memcmp(key, back, 32));
	snprintf(line, sizeof(line), "  %s\n", text);
	CHECK_EQ(store_key_parse(line, back), 0);
	CHECK(!memcmp(key, back, 32));
	CHECK_EQ(store_key_parse("c2hvcnQ=", back), -EINVAL);
	text[5] = '*';
	CHECK_EQ(store_key_parse(text, back), -EINVAL);

	store_key_format(key, text);
	snprintf(path, sizeof(path), "%s/key", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	CHECK_EQ(write(fd, "\n", 1), 1);
	close(fd);
	chmod(path, 0644);
	memset(back, 0, 32);
	CHECK_EQ(store_key_load_file(path, back, &why), -EPERM);
	CHECK(strstr(why.data, "is readable by others: run 'chmod 600") !=
	      NULL);
	buf_reset(&why);
	chmod(path, 0600);
	CHECK_EQ(store_key_load_file(path, back, &why), 0);
	CHECK(!memcmp(key, back, 32));
	/* owned by another (non-root) user: refused, even with mode 0600 */
	if (geteuid() == 0) {
		buf_reset(&why);
		memset(back, 0, 32);
		CHECK_EQ(chown(path, 65534, (gid_t)-1), 0);
		CHECK_EQ(store_key_load_file(path, back, &why), -EPERM);
		CHECK(strstr(why.data, "belongs to another user (uid 65534)") !=
		      NULL);
		CHECK(memcmp(key, back, 32) != 0);
		CHECK_EQ(chown(path, 0, (gid_t)-1), 0);
		buf_reset(&why);
		CHECK_EQ(store_key_load_file(path, back, &why), 0);
		CHECK(!memcmp(key, back, 32));
	} else {
		fprintf(stderr, "# not root: key owner refusal not tested\n");
	}

	/* systemd credential */
	setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
	memset(back, 0, 32);
	CHECK_EQ(store_key_load_credential("key", back, NULL), 0);
	CHECK(!memcmp(key, back, 32));
	CHECK_EQ(store_key_load_credential("nokey", back, NULL), -ENOENT);
	unsetenv("CREDENTIALS_DIRECTORY");
	buf_reset(&why);
	CHECK_EQ(store_key_load_credential("key", back, &why), -ENOENT);
	CHECK(why.len > 0);
	buf_release(&why);
}

static void test_wrong_key(void)
{
	unsigned char key[32], other[32];
	struct store_open_opts o = { 0 };
	struct buf why = BUF_INIT;
	struct store *st = NULL;
	char *repo = new_repo();

	CHECK_EQ(make_repo(repo, true, key), 0);
	CHECK_EQ(make_repo(repo, true, other), -EEXIST);
	memcpy(other, key, 32);
	other[7] ^= 1;
	o.key = other;
	CHECK_EQ(store_open(repo, &o, &st, &why), -EKEYREJECTED);
	CHECK(st == NULL);
	CHECK(strstr(why.data, "not the key") != NULL);
	o.key = NULL;
	CHECK_EQ(store_open(repo, &o, &st, &why), -ENOKEY);
	o.key = key;
	CHECK_EQ(store_open(repo, &o, &st, &why), 0);
	store_close(st);
	st = NULL;
	CHECK_EQ(store_open("/nonexistent/repo", NULL, &st, &why), -ENOENT);
	buf_release(&why);
	free(repo);
}

static void test_lock(void)
{
	char *repo = new_repo();
	struct store *w, *w2 = NULL, *r;
	struct store_open_opts o = { .flags = STORE_OPEN_WRITE,
				     .command = "other" };
	struct buf why = BUF_INIT, holder = BUF_INIT;
	char want[64];

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	CHECK_EQ(store_lock_holder(repo, &holder), -ENOENT);
	w = open_rw(repo, NULL);
	CHECK(w != NULL);
	CHECK_EQ(store_open(repo, &o, &w2, &why), -EBUSY);
	snprintf(want, sizeof(want), "test_store (pid %ld on ", (long)getpid());
	CHECK(strstr(why.data, want) == why.data);
	CHECK(strstr(why.data, ", since 20") != NULL);
	CHECK_EQ(store_lock_holder(repo, &holder), 0);
	CHECK_STR(holder.data, why.data);
	r = open_ro(repo, NULL, 0); /* readers never block */
	CHECK(r != NULL);
	store_close(r);
	store_close(w);
	w2 = open_rw(repo, NULL);
	CHECK(w2 != NULL);
	store_close(w2);
	buf_release(&why);
	buf_release(&holder);
	free(repo);
}

/* An edited large file shares most of its chunks with the original. */
static void test_dedup_edit(void)
{
	const size_t n = 128 * MiB;
	unsigned char *a = xmalloc(n), *b = xmalloc(n + 8192);
	struct store_content ca, cb;
	char *repo = new_repo();
	struct store *st;
	size_t bn = 0, unchanged;
	const size_t cuts[][2] = { /* offset, deleted (0: insert 3000) */
				   { 20 * MiB, 0 },
				   { 50 * MiB + 77, 5000 },
				   { 64 * MiB + 1, 0 },
				   { 100 * MiB + 999, 10000 }
	};
	size_t pos = 0;

	fill_random(a, n, 7);
	unchanged = n;
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++) {
		memcpy(b + bn, a + pos, cuts[i][0] - pos);
		bn += cuts[i][0] - pos;
		pos = cuts[i][0];
		if (cuts[i][1]) {
			pos += cuts[i][1];
			unchanged -= cuts[i][1];
		} else {
			fill_random(b + bn, 3000, 1000 + i);
			bn += 3000;
		}
	}
	memcpy(b + bn, a + pos, n - pos);
	bn += n - pos;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	st = open_rw(repo, NULL);
	store_content_init(&ca);
	store_content_init(&cb);
	CHECK_EQ(store_put(st, a, n, &ca), 0);
	CHECK_EQ(store_put(st, b, bn, &cb), 0);
	CHECK_EQ(ca.new_bytes, n);
	CHECK_EQ(cb.size, bn);
	/* bytes of the edited file found already stored */
	double shared = (double)(cb.size - cb.new_bytes) / (double)unchanged;
	fprintf(stderr,
		"dedup: %.1f%% of unchanged bytes shared (%llu chunks, %llu new)\n",
		100 * shared, (unsigned long long)cb.chunks,
		(unsigned long long)cb.new_chunks);
	CHECK(shared >= 0.90);
	CHECK(read_equal(st, &cb, b, bn, 1 << 20));
	store_close(st);
	store_content_release(&ca);
	store_content_release(&cb);
	free(a);
	free(b);
	free(repo);
}

/* Contents of one chunk each, in one pack. */
#define NSMALL 12

static void store_smalls(struct store *st, unsigned char **src, size_t *len,
			 struct store_content *c)
{
	for (int i = 0; i < NSMALL; i++) {
		len[i] = 1000 + (size_t)(rnd() % (200 * 1024));
		src[i] = xmalloc(len[i]);
		if (i % 2)
			fill_text(src[i], len[i], 500 + i);
		else
			fill_random(src[i], len[i], 500 + i);
		store_content_init(&c[i]);
		CHECK_EQ(store_put(st, src[i], len[i], &c[i]), 0);
		CHECK_EQ(c[i].chunks, 1);
	}
}

static int count_chunk_problems;
static int count_tail_problems;

static void on_problem(void *arg, const struct store_problem *p)
{
	(void)arg;
	if (getenv("STORE_DEBUG"))
		fprintf(stderr,
			"problem: kind %d pack %s off %llu err %d: %s\n",
			p->kind, p->pack ? p->pack : "-",
			(unsigned long long)p->offset, p->err, p->what);
	if (p->kind == STORE_PROBLEM_CHUNK)
		count_chunk_problems++;
	if (p->kind == STORE_PROBLEM_TORN_TAIL)
		count_tail_problems++;
}

/* Rewrite the "format N" line of @repo's config. */
static void set_format(const char *repo, unsigned format)
{
	char path[300], *line;
	struct buf in = BUF_INIT, out = BUF_INIT;

	snprintf(path, sizeof(path), "%s/config", repo);
	CHECK_EQ(util_read_file(path, &in, 1 << 16), 0);
	for (char *save = NULL, *t = in.data; (line = strtok_r(t, "\n", &save));
	     t = NULL) {
		if (!strncmp(line, "format ", 7))
			buf_addf(&out, "format %u\n", format);
		else
			buf_addf(&out, "%s\n", line);
	}
	CHECK_EQ(util_write_file_atomic(path, out.data, out.len, 0600), 0);
	buf_release(&in);
	buf_release(&out);
}

struct flag_count {
	int recs, chk2;
};

static int count_flags(void *arg, uint64_t off, const unsigned char *raw,
		       const struct chunk_hdr *h)
{
	struct flag_count *f = arg;

	(void)off;
	(void)raw;
	f->recs++;
	f->chk2 += !!(h->flags & CHUNK_F_CHK2);
	return 0;
}

/* Records in @pack, and how many of them carry chk2. */
static struct flag_count pack_flags(const char *pack)
{
	struct flag_count f = { 0, 0 };
	struct pack_walk pw = { count_flags, NULL, &f };
	struct stat sb;
	int fd = open(pack, O_RDONLY);

	CHECK(fd >= 0 && !fstat(fd, &sb));
	if (fd >= 0) {
		CHECK_EQ(pack_walk(fd, (uint64_t)sb.st_size, &pw), 0);
		close(fd);
	}
	return f;
}

/*
 * A byte flipped anywhere in a pack of a repository of @format: that one
 * chunk reads as damaged, the others read right, check finds it.
 */
static void damage(bool enc, unsigned format)
{
	unsigned char key[32], *src[NSMALL], buf1[256 * 1024];
	struct store_content c[NSMALL];
	size_t len[NSMALL];
	char *repo = new_repo(), pack[1200];
	struct store *st;
	struct stat sb;
	int fd;

	struct store_info info;
	struct flag_count fl;

	CHECK_EQ(make_repo(repo, enc, key), 0);
	if (format != STORE_FORMAT)
		set_format(repo, format);
	st = open_rw(repo, enc ? key : NULL);
	store_info(st, &info);
	CHECK_EQ(info.format, format);
	store_smalls(st, src, len, c);
	CHECK_EQ(store_close(st), 0);
	CHECK(first_pack(repo, pack, sizeof(pack)));
	/* plain records of format 2 carry chk2, the others do not */
	fl = pack_flags(pack);
	CHECK_EQ(fl.recs, NSMALL);
	CHECK_EQ(fl.chk2, !enc && format >= 2 ? NSMALL : 0);
	fd = open(pack, O_RDWR);
	CHECK(fd >= 0 && !fstat(fd, &sb));
	for (int round = 0; round < 40; round++) {
		off_t at = 16 + (off_t)(rnd() % (uint64_t)(sb.st_size - 16));
		unsigned char orig, flipped;
		int bad = 0, ok = 0;

		CHECK_EQ(pread(fd, &orig, 1, at), 1);
		flipped = orig ^ (unsigned char)(1u << (rnd() % 8));
		CHECK_EQ(pwrite(fd, &flipped, 1, at), 1);
		st = open_ro(repo, enc ? key : NULL, 0);
		for (int i = 0; st && i < NSMALL; i++) {
			ssize_t r =
				store_read(st, c[i].desc.data, c[i].desc.len, 0,
					   buf1, sizeof(buf1));
			if (r == -EBADMSG)
				bad++;
			else if (r == (ssize_t)len[i] &&
				 !memcmp(buf1, src[i], len[i]))
				ok++;
		}
		CHECK_EQ(bad, 1);
		CHECK_EQ(ok, NSMALL - 1);
		count_chunk_problems = 0;
		CHECK_EQ(store_check(st, STORE_CHECK_READ_DATA, on_problem,
				     NULL, NULL),
			 -EBADMSG);
		CHECK_EQ(count_chunk_problems, 1);
		store_close(st);
		CHECK_EQ(pwrite(fd, &orig, 1, at), 1);
	}
	st = open_ro(repo, enc ? key : NULL, 0);
	CHECK_EQ(store_check(st, STORE_CHECK_READ_DATA, NULL, NULL, NULL), 0);
	store_close(st);
	close(fd);
	for (int i = 0; i < NSMALL; i++) {
		free(src[i]);
		store_content_release(&c[i]);
	}
	free(repo);
}

static void test_damage_plain(void)
{
	damage(false, STORE_FORMAT);
}

static void test_damage_encrypted(void)
{
	damage(true, STORE_FORMAT);
}

/* Format 1 repositories: still read, written with chk64, still checked. */
static void test_damage_format1(void)
{
	damage(false, 1);
	damage(true, 1);
}

/* A format this version does not know is refused, with its number. */
static void test_format_unknown(void)
{
	struct store_open_opts o = { 0 };
	struct buf why = BUF_INIT;
	struct store *st = NULL;
	char *repo = new_repo();

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	set_format(repo, STORE_FORMAT + 1);
	CHECK_EQ(store_open(repo, &o, &st, &why), -EPROTO);
	CHECK(why.data && strstr(why.data, "format 3"));
	set_format(repo, 0);
	CHECK_EQ(store_open(repo, &o, &st, NULL), -EPROTO);
	buf_release(&why);
	free(repo);
}

/*
 * chk2 as FORMAT.md states it, written for clarity: the bytes of each
 * word assembled one by one, the tail padded, 64-bit arithmetic.
 */
static uint64_t chk2_ref(const unsigned char *p, size_t n)
{
	static const uint64_t k[8] = {
		0x243F6A8885A308D3ULL, 0x13198A2E03707344ULL,
		0xA4093822299F31D0ULL, 0x082EFA98EC4E6C89ULL,
		0x452821E638D01377ULL, 0xBE5466CF34E90C6CULL,
		0xC0AC29B7C97C50DDULL, 0x3F84D5B5B5470917ULL,
	};
	const uint64_t p1 = 0x9E3779B185EBCA87ULL, p2 = 0xC2B2AE3D27D4EB4FULL,
		       p3 = 0x165667B19E3779F9ULL;
	uint64_t acc[8], h = n * p1;
	size_t stripes = (n + 63) / 64;

	for (int j = 0; j < 8; j++)
		acc[j] = k[j] * p1;
	for (size_t s = 0; s < stripes; s++) {
		uint64_t d[8] = { 0 };

		for (size_t b = 0; b < 64 && 64 * s + b < n; b++)
			d[b / 8] |= (uint64_t)p[64 * s + b] << (8 * (b % 8));
		for (int j = 0; j < 8; j++) {
			uint64_t dk = d[j] ^ k[j];

			acc[j] += d[j ^ 1] + (dk & 0xFFFFFFFFULL) * (dk >> 32);
		}
		if ((s + 1) % 16 == 0)
			for (int j = 0; j < 8; j++)
				acc[j] = (acc[j] ^ (acc[j] >> 47) ^ k[j]) *
					 0x9E3779B1ULL;
	}
	for (int j = 0; j < 8; j++) {
		h = (h ^ acc[j]) * p1;
		h = (h << 31) | (h >> 33);
	}
	h ^= h >> 33;
	h *= p2;
	h ^= h >> 29;
	h *= p3;
	h ^= h >> 32;
	return h;
}

static void test_chk2(void)
{
	const size_t big[] = { 1023, 1024, 1025, 64 * 1024 - 1, MiB + 13 };
	size_t cap = MiB + 64;
	unsigned char *b = malloc(cap), *t = malloc(cap);
	int diff = 0;

	fill_random(b, cap, 77);
	fill_text(t, cap, 78);
	/* the vector code, the portable code and the text agree */
	for (size_t n = 0; n <= 300; n++)
		for (size_t a = 0; a < 8; a += 3) {
			uint64_t r = chk2_ref(b + a, n);

			diff += chk2(b + a, n) != r ||
				chk2_scalar(b + a, n) != r;
			r = chk2_ref(t + a, n);
			diff += chk2(t + a, n) != r ||
				chk2_scalar(t + a, n) != r;
		}
	for (size_t i = 0; i < ARRAY_SIZE(big); i++) {
		uint64_t r = chk2_ref(b + 1, big[i]);

		diff += chk2(b + 1, big[i]) != r ||
			chk2_scalar(b + 1, big[i]) != r;
		r = chk2_ref(t, big[i]);
		diff += chk2(t, big[i]) != r || chk2_scalar(t, big[i]) != r;
	}
	CHECK_EQ(diff, 0);
	/* pinned: the value is part of the on-disk format */
	for (size_t i = 0; i < 1000; i++)
		t[i] = (unsigned char)i;
	CHECK_EQ(chk2(t, 1000), chk2_ref(t, 1000));
	CHECK_EQ(chk2(t, 1000), 0xb81562d725a77bd6ULL);
	/* every single flipped bit shows, and so does a zero appended */
	for (size_t n = 1; n <= 200; n += 199) {
		uint64_t r = chk2(b, n);

		for (size_t bit = 0; bit < 8 * n; bit++) {
			b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
			diff += chk2(b, n) == r;
			b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		}
	}
	for (int i = 0; i < 4000; i++) {
		size_t bit = (size_t)(rnd() % (8 * (uint64_t)MiB));
		uint64_t r = chk2(b, MiB);

		b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		diff += chk2(b, MiB) == r;
		b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
	}
	memset(t, 0, 130);
	for (size_t n = 0; n < 129; n++)
		diff += chk2(t, n) == chk2(t, n + 1);
	CHECK_EQ(diff, 0);
	free(b);
	free(t);
}

static void test_torn_tail(void)
{
	unsigned char *src[NSMALL], buf1[256 * 1024];
	struct store_content c[NSMALL];
	size_t len[NSMALL];
	char *repo = new_repo(), pack[1200];
	struct store *st;
	struct stat sb;
	int last = NSMALL - 1;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	st = open_rw(repo, NULL);
	store_smalls(st, src, len, c);
	CHECK_EQ(store_close(st), 0);
	CHECK(first_pack(repo, pack, sizeof(pack)));
	CHECK_EQ(stat(pack, &sb), 0);
	/* cut the last chunk in its middle */
	CHECK_EQ(truncate(pack, sb.st_size - (off_t)len[last] / 3 - 1), 0);
	st = open_ro(repo, NULL, 0);
	for (int i = 0; st && i < NSMALL; i++) {
		ssize_t r = store_read(st, c[i].desc.data, c[i].desc.len, 0,
				       buf1, sizeof(buf1));
		if (i == last) {
			CHECK_EQ(r, -EBADMSG);
		} else {
			CHECK_EQ(r, (ssize_t)len[i]);
			CHECK(r < 0 || !memcmp(buf1, src[i], len[i]));
		}
	}
	count_chunk_problems = count_tail_problems = 0;
	CHECK_EQ(store_check(st, 0, on_problem, NULL, NULL), -EBADMSG);
	CHECK_EQ(count_tail_problems, 1);
	CHECK_EQ(count_chunk_problems, 1);
	store_close(st);
	for (int i = 0; i < NSMALL; i++) {
		free(src[i]);
		store_content_release(&c[i]);
	}
	free(repo);
}

/* Content number @k of the kill test: its size and bytes from @k. */
static size_t kill_len(int k)
{
	return 1 + (size_t)(((uint64_t)k * 2654435761u) % (3 * MiB));
}

static void kill_child(const char *repo, int wfd, int first)
{
	struct store *st = open_opts(repo, NULL, STORE_OPEN_WRITE, 0, 4 * MiB);
	struct store_content c;
	unsigned char *b = xmalloc(3 * MiB + 1);

	if (!st)
		_exit(3);
	store_content_init(&c);
	for (int k = first;; k++) {
		size_t n = kill_len(k);
		uint32_t msg[2];

		if (k % 3)
			fill_random(b, n, (uint64_t)k);
		else
			fill_text(b, n, (uint64_t)k);
		if (store_put(st, b, n, &c))
			_exit(4);
		if (k % 2 && store_flush(st))
			_exit(5);
		if (!(k % 2))
			continue; /* not flushed: not acknowledged */
		msg[0] = (uint32_t)k;
		msg[1] = (uint32_t)c.desc.len;
		/* acknowledge the previous (flushed) content too */
		if (write(wfd, msg, sizeof(msg)) != sizeof(msg) ||
		    write(wfd, c.desc.data, c.desc.len) != (ssize_t)c.desc.len)
			_exit(6);
	}
}

struct acked {
	int k;
	struct buf desc;
};

/* Read one acknowledgement (number, descriptor) into the array. */
static bool read_ack(int fd, struct acked **acks, size_t *n, size_t *a)
{
	uint32_t msg[2];
	struct buf d = BUF_INIT;

	if (read(fd, msg, sizeof(msg)) != sizeof(msg) || buf_grow(&d, msg[1]))
		return false;
	if (read(fd, d.data, msg[1]) != (ssize_t)msg[1]) {
		buf_release(&d); /* cut short by the kill */
		return false;
	}
	d.len = msg[1];
	if (*n == *a) {
		*a = *a ? 2 * *a : 64;
		*acks = realloc(*acks, *a * sizeof(**acks));
		if (!*acks)
			abort();
	}
	(*acks)[*n].k = (int)msg[0];
	(*acks)[*n].desc = d;
	(*n)++;
	return true;
}

/*
 * Open @repo for writing once (its recovery cuts torn tails off), then
 * read-only: check every chunk, no problem allowed.  Returns the reader.
 */
static struct store *recover_and_check(const char *repo)
{
	struct store_check_stats cs;
	struct store *st = open_rw(repo, NULL);

	store_close(st);
	st = open_ro(repo, NULL, 0);
	count_chunk_problems = count_tail_problems = 0;
	CHECK_EQ(store_check(st, STORE_CHECK_READ_DATA, on_problem, NULL, &cs),
		 0);
	CHECK_EQ(count_tail_problems, 0);
	return st;
}

static void test_kill_writer(void)
{
	char *repo = new_repo();
	struct acked *acks = NULL;
	size_t nacks = 0, aacks = 0;
	int next = 0;
	struct store *st;
	unsigned char *b = xmalloc(3 * MiB + 1), *r = xmalloc(3 * MiB + 1);
	struct store_check_stats cs;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	for (int round = 0; round < 50; round++) {
		int p[2];
		pid_t pid;
		int status;

		CHECK_EQ(pipe(p), 0);
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			kill_child(repo, p[1], next);
			_exit(0);
		}
		close(p[1]);
		/* odd rounds: kill after the first flush; even rounds: at any
		 * time, even while the child opens (and recovers) the repo */
		if (round % 2 && read_ack(p[0], &acks, &nacks, &aacks))
			next = acks[nacks - 1].k + 1;
		usleep((useconds_t)(rnd() % 100000));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		CHECK(WIFSIGNALED(status));
		while (read_ack(p[0], &acks, &nacks, &aacks))
			next = acks[nacks - 1].k + 1;
		close(p[0]);
		next += 1000; /* fresh contents for the next child */
	}
	fprintf(stderr, "kill: %zu flushed contents acknowledged\n", nacks);
	CHECK(nacks > 0);
	/* a reader first: checks what is committed, no recovery */
	st = open_ro(repo, NULL, 0);
	CHECK_EQ(store_check(st, STORE_CHECK_READ_DATA, on_problem, NULL, &cs),
		 0);
	store_close(st);
	/* the next writer cuts the torn tails off */
	st = recover_and_check(repo);
	for (size_t i = 0; st && i < nacks; i++) {
		size_t n = kill_len(acks[i].k);
		ssize_t got;

		if (acks[i].k % 3)
			fill_random(b, n, (uint64_t)acks[i].k);
		else
			fill_text(b, n, (uint64_t)acks[i].k);
		got = store_read(st, acks[i].desc.data, acks[i].desc.len, 0, r,
				 3 * MiB + 1);
		CHECK_EQ(got, (ssize_t)n);
		CHECK(got < 0 || !memcmp(r, b, n));
	}
	store_close(st);
	for (size_t i = 0; i < nacks; i++)
		buf_release(&acks[i].desc);
	free(acks);
	free(b);
	free(r);
	free(repo);
}

/* 8 readers and 2 writers at once, with a cache far smaller than data. */
#define NCONT 6

struct conc {
	struct store *st;
	struct store_content c[NCONT];
	unsigned char *src[NCONT];
	size_t len[NCONT];
	int bad;
	uint64_t seed;
};

static void *reader_thread(void *arg)
{
	struct conc *x = arg;
	uint64_t s = x->seed;
	unsigned char *b = xmalloc(600 * 1024);

	for (int i = 0; i < 300; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		int k = (int)((s >> 33) % NCONT);
		uint64_t off = (s >> 7) % x->len[k];
		size_t n = (size_t)((s >> 17) % (600 * 1024)) + 1;
		ssize_t r = store_read(x->st, x->c[k].desc.data,
				       x->c[k].desc.len, off, b, n);
		size_t want = n < x->len[k] - off ? n : x->len[k] - off;

		if (r != (ssize_t)want || memcmp(b, x->src[k] + off, want))
			__atomic_add_fetch(&x->bad, 1, __ATOMIC_RELAXED);
	}
	free(b);
	return NULL;
}

static void *writer_thread(void *arg)
{
	struct conc *x = arg;
	struct store_writer *w = NULL;
	struct store_content c;
	unsigned char *b = xmalloc(MiB);

	store_content_init(&c);
	if (store_writer_new(x->st, &w))
		__atomic_add_fetch(&x->bad, 1, __ATOMIC_RELAXED);
	for (int i = 0; w && i < 6; i++) {
		fill_random(b, MiB, x->seed + (uint64_t)i);
		if (store_writer_add(w, b, MiB) || store_writer_add(w, b, 77) ||
		    store_writer_finish(w, &c) || store_flush(x->st))
			__atomic_add_fetch(&x->bad, 1, __ATOMIC_RELAXED);
	}
	store_writer_free(w);
	store_content_release(&c);
	free(b);
	return NULL;
}

static void test_concurrency(void)
{
	char *repo = new_repo();
	struct conc x = { 0 }, xs[10];
	struct store *ro;
	pthread_t t[10];

	CHECK_EQ(make_repo(repo, true, (unsigned char[32]){ 0 }), 0);
	/* the key of an encrypted repository comes back from create */
	unsigned char key[32];
	free(repo);
	repo = new_repo();
	CHECK_EQ(make_repo(repo, true, key), 0);
	x.st = open_opts(repo, key, STORE_OPEN_WRITE, 4 * MiB, 8 * MiB);
	CHECK(x.st != NULL);
	if (!x.st)
		return;
	for (int i = 0; i < NCONT; i++) {
		x.len[i] = (size_t)(i + 1) * 1500 * 1024 + 3;
		x.src[i] = xmalloc(x.len[i]);
		if (i % 2)
			fill_text(x.src[i], x.len[i], 900 + i);
		else
			fill_random(x.src[i], x.len[i], 900 + i);
		store_content_init(&x.c[i]);
		CHECK_EQ(store_put(x.st, x.src[i], x.len[i], &x.c[i]), 0);
	}
	CHECK_EQ(store_flush(x.st), 0);
	/* half the readers through a read-only store with short read holds */
	ro = open_hold(repo, key, 5);
	CHECK(ro != NULL);
	for (int i = 0; i < 10; i++) {
		xs[i] = x;
		if (i >= 4 && i < 8 && ro)
			xs[i].st = ro;
		xs[i].seed = 4242 + (uint64_t)i * 7919;
		CHECK_EQ(pthread_create(&t[i], NULL,
					i < 8 ? reader_thread : writer_thread,
					&xs[i]),
			 0);
	}
	for (int i = 0; i < 10; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(xs[i].bad, 0);
	}
	store_close(ro);
	{
		struct store_stats ss;

		store_stats(x.st, &ss);
		CHECK(ss.cache_bytes <= ss.cache_cap);
		CHECK_EQ(ss.cache_cap, 4 * MiB);
		CHECK(ss.cache_hits > 0 && ss.cache_misses > 0);
		CHECK(ss.fds_open >= 1 && ss.fds_open <= ss.fds_max);
	}
	CHECK_EQ(store_check(x.st, STORE_CHECK_READ_DATA, NULL, NULL, NULL), 0);
	store_close(x.st);
	for (int i = 0; i < NCONT; i++) {
		free(x.src[i]);
		store_content_release(&x.c[i]);
	}
	free(repo);
}

static int blob_count;

static int on_blob(void *arg, const struct store_blob_info *b)
{
	(void)arg;
	if (!strcmp(b->kind, "catalog"))
		blob_count++;
	return 0;
}

static bool file_equal(const char *path, const unsigned char *p, size_t n)
{
	struct buf b = BUF_INIT;
	bool eq = !util_read_file(path, &b, 64 * MiB) && b.len == n &&
		  !memcmp(b.data, p, n);

	buf_release(&b);
	return eq;
}

static void test_blobs(void)
{
	unsigned char key[32], *a = xmalloc(3 * MiB), *bb = xmalloc(5000);
	char *repo = new_repo(), in[300], out[300];
	struct buf got = BUF_INIT;
	struct store *st;

	fill_text(a, 3 * MiB, 1);
	fill_random(bb, 5000, 2);
	snprintf(in, sizeof(in), "%s/catalog.db", tmpdir);
	snprintf(out, sizeof(out), "%s/catalog.out", tmpdir);
	CHECK_EQ(util_write_file_atomic(in, a, 3 * MiB, 0600), 0);
	CHECK_EQ(make_repo(repo, true, key), 0);
	st = open_rw(repo, key);
	CHECK_EQ(store_blob_put_file(st, in, "catalog", "2026-11-21T02:00:00Z"),
		 0);
	CHECK_EQ(
		store_blob_put(st, "catalog", "2026-11-22T02:00:00Z", bb, 5000),
		0);
	CHECK_EQ(store_blob_put(st, "other", "x", bb, 10), 0);
	CHECK_EQ(store_blob_put(st, "", "x", bb, 10), -EINVAL);
	store_close(st);

	st = open_ro(repo, key, 0);
	blob_count = 0;
	CHECK_EQ(store_blob_list(st, "catalog", on_blob, NULL), 0);
	CHECK_EQ(blob_count, 2);
	CHECK_EQ(
		store_blob_get_file(st, "catalog", "2026-11-21T02:00:00Z", out),
		0);
	CHECK(file_equal(out, a, 3 * MiB));
	CHECK_EQ(store_blob_get(st, "catalog", "2026-11-22T02:00:00Z", &got),
		 0);
	CHECK(got.len == 5000 && !memcmp(got.data, bb, 5000));
	CHECK_EQ(store_blob_get(st, "catalog", "nope", &got), -ENOENT);
	CHECK_EQ(store_blob_delete(st, "other", "x"), -EROFS);
	store_close(st);

	st = open_rw(repo, key);
	CHECK_EQ(store_blob_put(st, "catalog", "2026-11-22T02:00:00Z", a, 100),
		 0);
	CHECK_EQ(store_blob_delete(st, "other", "x"), 0);
	CHECK_EQ(store_blob_delete(st, "other", "x"), -ENOENT);
	buf_reset(&got);
	CHECK_EQ(store_blob_get(st, "catalog", "2026-11-22T02:00:00Z", &got),
		 0);
	CHECK(got.len == 100 && !memcmp(got.data, a, 100));
	blob_count = 0;
	CHECK_EQ(store_blob_list(st, NULL, on_blob, NULL), 0);
	CHECK_EQ(blob_count, 2);
	store_close(st);
	buf_release(&got);
	free(a);
	free(bb);
	free(repo);
}

static uint64_t dir_bytes(const char *repo)
{
	char cmd[400];
	FILE *f;
	unsigned long long n = 0;

	snprintf(cmd, sizeof(cmd), "du -sb '%s/data' | cut -f1", repo);
	f = popen(cmd, "r");
	if (f) {
		if (fscanf(f, "%llu", &n) != 1)
			n = 0;
		pclose(f);
	}
	return n;
}

static void test_prune(void)
{
	char *repo = new_repo();
	struct store_content c[6];
	unsigned char *src[6];
	size_t len[6];
	struct store_idset *keep = store_idset_new();
	struct store_prune_stats ps;
	struct store *st;
	uint64_t before, after;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	st = open_opts(repo, NULL, STORE_OPEN_WRITE, 0, 3 * MiB);
	for (int i = 0; i < 6; i++) {
		len[i] = (size_t)(i + 1) * 700 * 1024;
		src[i] = xmalloc(len[i]);
		fill_random(src[i], len[i], 3000 + i);
		store_content_init(&c[i]);
		CHECK_EQ(store_put(st, src[i], len[i], &c[i]), 0);
		if (i % 2 == 0)
			CHECK_EQ(store_idset_add_desc(keep, c[i].desc.data,
						      c[i].desc.len),
				 0);
	}
	/* a blob is kept without being in the set */
	CHECK_EQ(store_blob_put(st, "catalog", "c1", src[1], 1000), 0);
	CHECK_EQ(store_flush(st), 0);
	before = dir_bytes(repo);
	CHECK_EQ(store_prune_ex(st, keep, 0, &ps), 0);
	after = dir_bytes(repo);
	fprintf(stderr,
		"prune: %llu -> %llu bytes, %llu packs rewritten, %llu deleted\n",
		(unsigned long long)before, (unsigned long long)after,
		(unsigned long long)ps.packs_rewritten,
		(unsigned long long)ps.packs_deleted);
	CHECK(after < before);
	CHECK(after < before * 6 / 10);
	CHECK_EQ(ps.bytes_after < ps.bytes_before, 1);
	for (int i = 0; i < 6; i++) {
		unsigned char *b = xmalloc(len[i]);
		ssize_t r = store_read(st, c[i].desc.data, c[i].desc.len, 0, b,
				       len[i]);

		if (i % 2 == 0) {
			CHECK_EQ(r, (ssize_t)len[i]);
			CHECK(r < 0 || !memcmp(b, src[i], len[i]));
		} else if (i != 1) {
			CHECK(r < 0);
		}
		free(b);
	}
	store_close(st);
	st = open_ro(repo, NULL, 0);
	CHECK_EQ(store_check(st, STORE_CHECK_READ_DATA, NULL, NULL, NULL), 0);
	{
		struct buf got = BUF_INIT;

		CHECK_EQ(store_blob_get(st, "catalog", "c1", &got), 0);
		CHECK(got.len == 1000 && !memcmp(got.data, src[1], 1000));
		buf_release(&got);
	}
	store_close(st);
	store_idset_free(keep);
	for (int i = 0; i < 6; i++) {
		free(src[i]);
		store_content_release(&c[i]);
	}
	free(repo);
}

/* true when all @n bytes of content @c read back equal to @src */
static bool readable(struct store *st, const struct store_content *c,
		     const unsigned char *src, size_t n)
{
	unsigned char *b = xmalloc(n);
	ssize_t r = store_read(st, c->desc.data, c->desc.len, 0, b, n);
	bool ok = r == (ssize_t)n && !memcmp(b, src, n);

	free(b);
	return ok;
}

/*
 * Prune's threshold: three packs of 20 single-chunk contents; a pack with
 * 5 % unused is left alone (its unused chunk still readable), one with
 * 30 % unused is rewritten, an unused one deleted; threshold 0 then
 * rewrites the first.
 */
static void test_prune_threshold(void)
{
	enum { N = 60, PER_PACK = 20, LEN = 200 * 1024 };
	const uint64_t rec = 64 + LEN; /* header + stored (random: raw) */
	char *repo = new_repo();
	struct store_content c[N];
	unsigned char *src[N];
	struct store_idset *keep = store_idset_new();
	struct store_prune_stats ps;
	struct store *st;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	/* 20 records of 200 KiB fit in a 4 MiB pack, the 21st does not */
	st = open_opts(repo, NULL, STORE_OPEN_WRITE, 0, 4 * MiB);
	CHECK(st != NULL);
	if (!st)
		return;
	for (int i = 0; i < N; i++) {
		src[i] = xmalloc(LEN);
		fill_random(src[i], LEN, 7000 + (uint64_t)i);
		store_content_init(&c[i]);
		CHECK_EQ(store_put(st, src[i], LEN, &c[i]), 0);
		CHECK_EQ(c[i].new_chunks, 1);
		/* pack 0: all but #0; pack 1: all but #20..25; pack 2: none */
		if ((i >= 1 && i < PER_PACK) || (i >= 26 && i < 2 * PER_PACK))
			CHECK_EQ(store_idset_add_desc(keep, c[i].desc.data,
						      c[i].desc.len),
				 0);
	}
	CHECK_EQ(store_flush(st), 0);
	CHECK_EQ(store_prune(st, keep, &ps), 0);
	CHECK_EQ(ps.packs_below_threshold, 1);
	CHECK_EQ(ps.bytes_unused_kept, rec);
	CHECK_EQ(ps.packs_rewritten, 1);
	CHECK_EQ(ps.packs_deleted, 2); /* the rewritten one and the unused */
	CHECK_EQ(ps.chunks_deleted, 6 + PER_PACK);
	CHECK_EQ(ps.chunks_kept, PER_PACK + 14);
	CHECK(readable(st, &c[0], src[0], LEN)); /* below the threshold */
	for (int i = 1; i < N; i++) {
		bool kept = i < 20 || i >= 26;

		CHECK_EQ(readable(st, &c[i], src[i], LEN), kept && i < 40);
	}
	/* threshold 0: the 5 % of pack 0 are reclaimed too */
	CHECK_EQ(store_prune_ex(st, keep, 0, &ps), 0);
	CHECK_EQ(ps.packs_below_threshold, 0);
	CHECK_EQ(ps.packs_rewritten, 1);
	CHECK_EQ(ps.chunks_deleted, 1);
	store_close(st);
	/* a new reader: the writer's chunk cache still holds #0 */
	st = open_ro(repo, NULL, 0);
	CHECK(!readable(st, &c[0], src[0], LEN));
	for (int i = 1; i < 40; i++)
		CHECK_EQ(readable(st, &c[i], src[i], LEN), i < 20 || i >= 26);
	CHECK_EQ(store_check(st, STORE_CHECK_READ_DATA, NULL, NULL, NULL), 0);
	store_close(st);
	store_idset_free(keep);
	for (int i = 0; i < N; i++) {
		free(src[i]);
		store_content_release(&c[i]);
	}
	free(repo);
}

static void test_rebuild(void)
{
	unsigned char key[32], *src[NSMALL];
	struct store_content c[NSMALL];
	size_t len[NSMALL];
	char *repo = new_repo(), path[400];
	struct store *st;

	CHECK_EQ(make_repo(repo, true, key), 0);
	st = open_rw(repo, key);
	store_smalls(st, src, len, c);
	store_close(st);
	snprintf(path, sizeof(path), "%s/index.db", repo);
	CHECK_EQ(unlink(path), 0);
	/* a reader cannot work without the index */
	CHECK(open_ro(repo, key, 0) == NULL);
	/* the next writer rebuilds it from the packs */
	st = open_rw(repo, key);
	CHECK(st != NULL);
	if (!st)
		return;
	CHECK(store_chunk_exists(st,
				 (const unsigned char *)c[0].desc.data + 8));
	CHECK_EQ(store_index_rebuild(st), 0); /* and on demand */
	for (int i = 0; i < NSMALL; i++) {
		CHECK(read_equal(st, &c[i], src[i], len[i], 65536));
		free(src[i]);
		store_content_release(&c[i]);
	}
	CHECK_EQ(store_check(st, STORE_CHECK_READ_DATA, NULL, NULL, NULL), 0);
	store_close(st);
	free(repo);
}

/* ~200 MB generated stream, fed in odd pieces, read back and compared. */
static void gen_block(unsigned char *p, size_t n, uint64_t blk)
{
	if (blk % 3 == 2)
		fill_random(p, n, blk);
	else
		fill_text(p, n, blk);
}

static void test_big_stream(void)
{
	const size_t total = 200u * 1000 * 1000, bs = 1 << 20;
	unsigned char key[32], *b = xmalloc(bs), *r = xmalloc(bs), md[32];
	char *repo = new_repo();
	struct store_writer *w = NULL;
	struct store_content c;
	struct store *st;
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	size_t done = 0;

	CHECK_EQ(make_repo(repo, true, key), 0);
	st = open_rw(repo, key);
	CHECK_EQ(store_writer_new(st, &w), 0);
	EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
	for (uint64_t blk = 0; done < total; blk++) {
		size_t n = total - done < bs ? total - done : bs;
		size_t off = 0;

		gen_block(b, n, blk);
		EVP_DigestUpdate(sha, b, n);
		while (off < n) {
			size_t piece = 1 + (size_t)(rnd() % 300000);

			if (piece > n - off)
				piece = n - off;
			CHECK_EQ(store_writer_add(w, b + off, piece), 0);
			off += piece;
		}
		done += n;
	}
	EVP_DigestFinal_ex(sha, md, NULL);
	EVP_MD_CTX_free(sha);
	store_content_init(&c);
	CHECK_EQ(store_writer_finish(w, &c), 0);
	CHECK_EQ(c.size, total);
	CHECK(!memcmp(md, c.sha256, 32));
	store_writer_free(w);
	store_close(st);

	st = open_ro(repo, key, 0);
	done = 0;
	for (uint64_t blk = 0; st && done < total; blk++) {
		size_t n = total - done < bs ? total - done : bs;

		gen_block(b, n, blk);
		CHECK_EQ(store_read(st, c.desc.data, c.desc.len, done, r, n),
			 (ssize_t)n);
		if (memcmp(b, r, n)) {
			CHECK(!"block differs");
			break;
		}
		done += n;
	}
	store_close(st);
	store_content_release(&c);
	free(b);
	free(r);
	free(repo);
}

/* Every chunk id of plain content @c is the SHA-256 of its bytes in @b. */
static bool ids_are_sha256(const struct store_content *c,
			   const unsigned char *b)
{
	unsigned char md[32];

	for (uint64_t i = 0; i < c->chunks; i++) {
		const unsigned char *id;
		uint64_t start, end;

		desc_entry(c->desc.data, i, &id, &start, &end);
		SHA256(b + start, end - start, md);
		if (memcmp(md, id, 32))
			return false;
	}
	return true;
}

/* store_put_fd() of a file holding @n bytes at @b. */
static int put_fd_of(struct store *st, const unsigned char *b, size_t n,
		     struct store_content *res)
{
	int fd = memfd_create("put_fd", MFD_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	if (write(fd, b, n) != (ssize_t)n || lseek(fd, 0, SEEK_SET))
		ret = -EIO;
	else
		ret = store_put_fd(st, fd, res);
	close(fd);
	return ret;
}

/*
 * Feed @n bytes at @b to @w in random pieces: copied in by
 * store_writer_add(), or (@direct) written into the room that
 * store_writer_space() gives, as a file read does.  Returns the most
 * bytes @w held meanwhile.
 */
static size_t feed(struct store_writer *w, const unsigned char *b, size_t n,
		   bool direct)
{
	size_t off = 0, peak = 0, room;
	void *p;

	while (off < n) {
		size_t piece = 1 + (size_t)(rnd() % 700000);

		if (piece > n - off)
			piece = n - off;
		if (direct) {
			CHECK_EQ(store_writer_space(w, &p, &room), 0);
			CHECK(room > 0);
			if (piece > room)
				piece = room;
			memcpy(p, b + off, piece);
			CHECK_EQ(store_writer_commit(w, piece), 0);
		} else {
			CHECK_EQ(store_writer_add(w, b + off, piece), 0);
		}
		if (store_writer_held(w) > peak)
			peak = store_writer_held(w);
		off += piece;
	}
	return peak;
}

/*
 * One writer reused for big and small contents (as a download thread
 * does), fed by copy or straight into its window, cuts the same chunks
 * as a fresh writer, with chunk ids and content hash that are SHA-256
 * of the bytes, and between contents holds a few MiB however big the
 * last content was.
 */
static void test_writer_reuse(void)
{
	static const size_t sizes[] = { 21u << 20, 100000,	   9u << 20,
					0,	   (5u << 20) + 3, 4096 };
	const size_t most = 21u << 20;
	unsigned char key[32], *b = xmalloc(most);
	char *repo = new_repo();
	struct store_writer *w = NULL;
	struct store_content c, ref;
	struct store *st;

	CHECK_EQ(make_repo(repo, false, key), 0);
	st = open_rw(repo, NULL);
	CHECK_EQ(store_writer_new(st, &w), 0);
	CHECK(store_writer_held(w) <= 64 * 1024);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], peak;
		unsigned char md[32];

		gen_block(b, n, 40 + i);
		peak = feed(w, b, n, i % 2);
		store_content_init(&c);
		store_content_init(&ref);
		CHECK_EQ(store_writer_finish(w, &c), 0);
		CHECK_EQ(store_put(st, b, n, &ref), 0);
		CHECK_EQ(c.size, n);
		CHECK_EQ(c.chunks, ref.chunks);
		CHECK_EQ(c.desc.len, ref.desc.len);
		CHECK(c.desc.len == ref.desc.len &&
		      !memcmp(c.desc.data, ref.desc.data, c.desc.len));
		CHECK(!memcmp(c.sha256, ref.sha256, 32));
		SHA256(b, n, md);
		CHECK(!memcmp(c.sha256, md, 32));
		CHECK(ids_are_sha256(&c, b));
		/* the window never exceeds two largest chunks, the chunk
		 * buffer one sealed chunk */
		CHECK(peak <= 2 * (size_t)STORE_CHUNK_MAX +
				      ((size_t)STORE_CHUNK_MAX + 65536) +
				      65536);
		if (n >= (5u << 20))
			CHECK(peak > (4u << 20)); /* it did grow */
		CHECK(store_writer_held(w) <= (2u << 20) + 65536);
		/* a file read straight into the window: the same content */
		store_content_release(&ref);
		store_content_init(&ref);
		CHECK_EQ(put_fd_of(st, b, n, &ref), 0);
		CHECK(c.desc.len == ref.desc.len &&
		      !memcmp(c.desc.data, ref.desc.data, c.desc.len));
		CHECK(!memcmp(c.sha256, ref.sha256, 32));
		store_content_release(&c);
		store_content_release(&ref);
	}
	/* more than the room is refused, and so is the content after it */
	{
		size_t room;
		void *p;

		CHECK_EQ(store_writer_space(w, &p, &room), 0);
		CHECK_EQ(store_writer_commit(w, room + 1), -EINVAL);
		CHECK_EQ(store_writer_add(w, b, 1), -EINVAL);
		store_writer_reset(w);
		CHECK_EQ(store_writer_add(w, b, 1), 0);
	}
	store_writer_free(w);
	store_close(st);
	free(b);
	free(repo);
}

/* The stage timers count what went through the writer. */
static void test_writer_stats(void)
{
	char *repo = new_repo();
	unsigned char *b = xmalloc(8 * MiB);
	struct store_writer_stats ws = { 0 }, off = { 0 };
	struct store_writer *w = NULL, *quiet = NULL;
	struct store_content c[3];
	uint64_t chunks = 0, fresh = 0;
	struct store *st;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	st = open_rw(repo, NULL);
	CHECK_EQ(store_writer_new(st, &w), 0);
	CHECK_EQ(store_writer_new(st, &quiet), 0);
	store_writer_timing(w, true);
	fill_text(b, 3 * MiB, 7);
	fill_random(b + 3 * MiB, 5 * MiB, 8);
	for (int i = 0; i < 3; i++) {
		/* text, random, the text again (all of it deduplicated) */
		size_t o = i == 1 ? 3 * MiB : 0, n = i == 1 ? 5 * MiB : 3 * MiB;

		store_content_init(&c[i]);
		CHECK_EQ(store_writer_add(w, b + o, n / 2), 0);
		CHECK_EQ(store_writer_add(w, b + o + n / 2, n - n / 2), 0);
		CHECK_EQ(store_writer_finish(w, &c[i]), 0);
		chunks += c[i].chunks;
		fresh += c[i].new_chunks;
	}
	CHECK_EQ(c[2].new_chunks, 0);
	CHECK(c[0].chunks > 1);
	store_writer_stats_add(w, &ws);
	CHECK_EQ(ws.bytes, 11 * MiB);
	CHECK_EQ(ws.chunks, chunks);
	CHECK_EQ(ws.new_chunks, fresh);
	for (int i = STORE_STAGE_CHUNK; i <= STORE_STAGE_APPEND; i++) {
		if (i == STORE_STAGE_CHUNK && sha2x_supported())
			CHECK_EQ(ws.ns[i], 0); /* the scan is inside "id" */
		else
			CHECK(ws.ns[i] > 0);
	}
	/* summed, not overwritten */
	store_writer_stats_add(w, &ws);
	CHECK_EQ(ws.bytes, 22 * MiB);
	/* without timing: counts, no times */
	CHECK_EQ(store_writer_add(quiet, b, MiB), 0);
	CHECK_EQ(store_writer_finish(quiet, &c[0]), 0);
	store_writer_stats_add(quiet, &off);
	CHECK_EQ(off.bytes, MiB);
	CHECK_EQ(off.chunks, c[0].chunks);
	for (int i = 0; i < STORE_STAGES; i++)
		CHECK_EQ(off.ns[i], 0);
	CHECK(!strcmp(store_stage_name(STORE_STAGE_LZ4), "lz4"));
	CHECK(!strcmp(store_stage_name(STORE_STAGES), "?"));
	CHECK(!strcmp(store_stage_name(-1), "?"));
	store_writer_free(w);
	store_writer_free(quiet);
	CHECK_EQ(store_close(st), 0);
	for (int i = 0; i < 3; i++)
		store_content_release(&c[i]);
	free(b);
	free(repo);
}

/*
 * The two-way SHA-256 against OpenSSL: every length up to a few blocks,
 * then random ones, fed as a stream in random pieces, each piece also
 * HMACed (the writer's chunk ids) in the same pass.
 */
static void test_sha2x(void)
{
	const size_t n = 3 * MiB;
	unsigned char *b = xmalloc(n), key[32], md[32], ref[32];
	struct sha2x_hmac hm;
	unsigned int l = 32;

	if (!sha2x_supported()) {
		fprintf(stderr, "sha2x: no SHA extensions, the writer uses "
				"OpenSSL\n");
		free(b);
		return;
	}
	fill_random(b, n, 99);
	fill_random(key, sizeof(key), 98);
	sha2x_hmac_init(&hm, key);
	for (int it = 0; it < 400; it++) {
		size_t len = it < 200 ? (size_t)it : (size_t)(rnd() % n);
		struct sha2x whole, one;
		size_t off = 0;

		sha2x_init(&one);
		sha2x_update(&one, b, len);
		sha2x_final(&one, md);
		SHA256(b, len, ref);
		CHECK(!memcmp(md, ref, 32));
		sha2x_init(&whole);
		while (off < len) {
			size_t k = (size_t)(rnd() % (it & 1 ? 300 : 300000));
			struct sha2x a = hm.inner;

			if (k > len - off)
				k = len - off;
			sha2x_update2(&a, &whole, b + off, k);
			sha2x_hmac_final(&hm, &a, md);
			HMAC(EVP_sha256(), key, 32, b + off, k, ref, &l);
			CHECK(!memcmp(md, ref, 32));
			off += k;
		}
		sha2x_final(&whole, md);
		SHA256(b, len, ref);
		CHECK(!memcmp(md, ref, 32));
	}
	free(b);
}

/*
 * sha2x_cdc() cuts where cdc_cut() does and hashes the chunk as
 * sha2x_update2() would, whatever the partial blocks of the two states,
 * for small and real chunk sizes, text and random data, and alone (@b
 * NULL).
 */
static void test_sha2x_cdc(void)
{
	const size_t n = 24 * MiB;
	unsigned char *b = xmalloc(n), md[32], ref[32];
	struct cdc cs[2];
	size_t cuts = 0;

	if (!sha2x_supported()) {
		free(b);
		return;
	}
	fill_text(b, n / 2, 3);
	fill_random(b + n / 2, n / 2, 4);
	cdc_init(&cs[0], 100, 1000, 4000);
	cdc_init(&cs[1], STORE_CHUNK_MIN, STORE_CHUNK_AVG, STORE_CHUNK_MAX);
	for (int it = 0; it < 300; it++) {
		const struct cdc *c = &cs[it & 1];
		size_t off = (size_t)(rnd() % (n - 1)), len = n - off;
		size_t pa = (size_t)(rnd() % 200), pb = (size_t)(rnd() % 200);
		struct sha2x a, b2, ra, rb;
		size_t want, got;

		if (it % 3 == 0 && len > 3 * (size_t)c->max)
			len = (size_t)(rnd() % (3 * c->max)); /* short ends */
		sha2x_init(&a);
		sha2x_init(&b2);
		sha2x_update(&a, b, pa); /* partial blocks of any length */
		sha2x_update(&b2, b + 7, pb);
		ra = a;
		rb = b2;
		want = cdc_cut(c, b + off, len);
		if (it & 2) {
			got = sha2x_cdc(c, b + off, len, &a, &b2);
			sha2x_update2(&ra, &rb, b + off, want);
		} else {
			got = sha2x_cdc(c, b + off, len, &a, NULL);
			sha2x_update(&ra, b + off, want);
		}
		CHECK_EQ(got, want);
		cuts += got < len;
		sha2x_final(&a, md);
		sha2x_final(&ra, ref);
		CHECK(!memcmp(md, ref, 32));
		sha2x_final(&b2, md);
		sha2x_final(&rb, ref);
		CHECK(!memcmp(md, ref, 32));
	}
	CHECK(cuts > 100); /* most calls found a cut inside the data */
	free(b);
}

/* Writers storing the same contents at once: each chunk stored once. */
struct same {
	struct store *st;
	const unsigned char *data;
	struct store_content c[4];
	uint64_t fresh;
	int bad;
};

static void *same_thread(void *arg)
{
	struct same *x = arg;
	struct store_writer *w = NULL;

	if (store_writer_new(x->st, &w)) {
		x->bad++;
		return NULL;
	}
	for (int i = 0; i < 4; i++) {
		store_content_init(&x->c[i]);
		if (store_writer_add(w, x->data + (size_t)i * 3 * MiB,
				     3 * MiB) ||
		    store_writer_finish(w, &x->c[i]))
			x->bad++;
		x->fresh += x->c[i].new_chunks;
	}
	store_writer_free(w);
	return NULL;
}

static void test_same_content_concurrent(void)
{
	char *repo = new_repo();
	unsigned char *b = xmalloc(12 * MiB), *r = xmalloc(3 * MiB);
	struct same xs[4];
	pthread_t t[4];
	uint64_t fresh = 0, chunks = 0;
	struct store *st;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	fill_random(b, 12 * MiB, 5);
	st = open_rw(repo, NULL);
	for (int i = 0; i < 4; i++) {
		xs[i] = (struct same){ .st = st, .data = b };
		CHECK_EQ(pthread_create(&t[i], NULL, same_thread, &xs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(xs[i].bad, 0);
		fresh += xs[i].fresh;
	}
	for (int i = 0; i < 4; i++)
		chunks += xs[0].c[i].chunks;
	CHECK_EQ(fresh, chunks);
	CHECK_EQ(store_flush(st), 0);
	for (int k = 0; k < 4; k++)
		for (int i = 0; i < 4; i++) {
			CHECK_EQ(store_read(st, xs[k].c[i].desc.data,
					    xs[k].c[i].desc.len, 0, r, 3 * MiB),
				 (ssize_t)(3 * MiB));
			CHECK(!memcmp(r, b + (size_t)i * 3 * MiB, 3 * MiB));
		}
	CHECK_EQ(store_close(st), 0);
	for (int k = 0; k < 4; k++)
		for (int i = 0; i < 4; i++)
			store_content_release(&xs[k].c[i]);
	free(b);
	free(r);
	free(repo);
}

/*
 * A pack write that fails (here: the file size limit) fails every later
 * append and flush of that store; what was flushed before stays, and the
 * next writer cuts the pack back to it.
 */
static void write_fail_child(const char *repo, int fd)
{
	unsigned char *b = xmalloc(2 * MiB);
	struct store_content c;
	struct rlimit rl = { 6 * MiB, 6 * MiB };
	struct store *st = open_rw(repo, NULL);
	int code = 0, ret = 0, i;

	store_content_init(&c);
	signal(SIGXFSZ, SIG_IGN);
	/* one content flushed before the limit */
	fill_random(b, 2 * MiB, 1000);
	if (!st || store_put(st, b, 2 * MiB, &c) || store_flush(st))
		_exit(10);
	if (write(fd, c.desc.data, c.desc.len) != (ssize_t)c.desc.len)
		_exit(11);
	if (setrlimit(RLIMIT_FSIZE, &rl))
		_exit(12);
	for (i = 1; i < 20 && !ret; i++) {
		fill_random(b, 2 * MiB, 1000 + (uint64_t)i);
		ret = store_put(st, b, 2 * MiB, &c);
	}
	if (ret != -EFBIG)
		code = 13;
	/* sticky: more contents and flushes fail too */
	fill_random(b, 2 * MiB, 2000);
	if (!code && store_put(st, b, 2 * MiB, &c) != -EFBIG)
		code = 14;
	if (!code && store_flush(st) != -EFBIG)
		code = 15;
	store_close(st);
	_exit(code);
}

static void test_write_fails(void)
{
	char *repo = new_repo();
	unsigned char *b = xmalloc(2 * MiB), *r = xmalloc(2 * MiB);
	unsigned char desc[4096];
	struct store *st;
	int p[2], status;
	ssize_t dlen;
	pid_t pid;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	CHECK_EQ(pipe(p), 0);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		write_fail_child(repo, p[1]);
	}
	close(p[1]);
	dlen = read(p[0], desc, sizeof(desc));
	close(p[0]);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	CHECK(dlen > 0);
	st = recover_and_check(repo);
	fill_random(b, 2 * MiB, 1000);
	if (dlen > 0)
		CHECK_EQ(store_read(st, desc, (size_t)dlen, 0, r, 2 * MiB),
			 (ssize_t)(2 * MiB));
	CHECK(!memcmp(r, b, 2 * MiB));
	store_close(st);
	free(b);
	free(r);
	free(repo);
}

/* Packs whose disk blocks reach more than 64 KiB past their end. */
struct roomy {
	int packs, roomy;
};

static bool count_roomy(void *arg, const char *path)
{
	struct roomy *r = arg;
	struct stat sb;

	r->packs++;
	if (stat(path, &sb) ||
	    (uint64_t)sb.st_blocks * 512 > (uint64_t)sb.st_size + 64 * 1024)
		r->roomy++;
	return false;
}

/*
 * Packs are preallocated whole while written, and give the room back
 * when closed: rotated ones at the flush, the last at the close.
 */
static void test_pack_room(void)
{
	char *repo = new_repo();
	unsigned char *b = xmalloc(MiB);
	struct store_content c;
	struct roomy r = { 0 };
	struct store *st;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	st = open_opts(repo, NULL, STORE_OPEN_WRITE, 0, 4 * MiB);
	store_content_init(&c);
	for (int i = 0; i < 10; i++) {
		fill_random(b, MiB, 300 + (uint64_t)i);
		CHECK_EQ(store_put(st, b, MiB, &c), 0);
	}
	CHECK_EQ(store_flush(st), 0);
	walk_packs(repo, count_roomy, &r);
	/* 3 records a pack; the current one may keep its room */
	CHECK_EQ(r.packs, 4);
	CHECK(r.roomy <= 1);
	CHECK_EQ(store_close(st), 0);
	r = (struct roomy){ 0 };
	walk_packs(repo, count_roomy, &r);
	CHECK_EQ(r.packs, 4);
	CHECK_EQ(r.roomy, 0);
	st = open_ro(repo, NULL, 0);
	CHECK(read_equal(st, &c, b, MiB, 100000));
	store_close(st);
	store_content_release(&c);
	free(b);
	free(repo);
}

/* A reader sees what another writer flushed, not before. */
static void test_reader_sees_flush(void)
{
	char *repo = new_repo();
	unsigned char *a = xmalloc(MiB), *b = xmalloc(MiB);
	struct store_content c;
	struct store *w, *r;

	fill_random(a, MiB, 77);
	CHECK_EQ(make_repo(repo, false, NULL), 0);
	w = open_rw(repo, NULL);
	r = open_ro(repo, NULL, 0);
	CHECK(w && r);
	if (!w || !r)
		return;
	store_content_init(&c);
	CHECK_EQ(store_put(w, a, MiB, &c), 0);
	CHECK_EQ(store_read(r, c.desc.data, c.desc.len, 0, b, MiB), -ENOENT);
	CHECK_EQ(store_flush(w), 0);
	CHECK_EQ(store_read(r, c.desc.data, c.desc.len, 0, b, MiB),
		 (ssize_t)MiB);
	CHECK(!memcmp(a, b, MiB));
	store_close(r);
	store_close(w);
	store_content_release(&c);
	free(a);
	free(b);
	free(repo);
}

/*
 * Read hold: lookups of a read-only store share one read transaction,
 * yet a chunk committed after it began is found, and so is a chunk a
 * prune moved to a new pack after it began; an idle hold ends by itself.
 */
static void test_read_hold(void)
{
	char *repo = new_repo();
	const size_t n = 700 * 1024;
	unsigned char *src[4], *b = xmalloc(n);
	struct store_content c[4]; /* held, moved, dropped, new */
	struct store_idset *keep = store_idset_new();
	struct store_prune_stats ps;
	struct store *w, *r;

	for (int i = 0; i < 4; i++) {
		src[i] = xmalloc(n);
		fill_random(src[i], n, 4100 + i);
		store_content_init(&c[i]);
	}
	CHECK_EQ(make_repo(repo, false, NULL), 0);
	w = open_rw(repo, NULL); /* the held content in a pack of its own */
	CHECK(w && store_put(w, src[0], n, &c[0]) == 0);
	CHECK_EQ(store_close(w), 0);
	w = open_rw(repo, NULL); /* the moved and the dropped one */
	CHECK(w && store_put(w, src[1], n, &c[1]) == 0 &&
	      store_put(w, src[2], n, &c[2]) == 0);
	CHECK_EQ(store_close(w), 0);

	r = open_hold(repo, NULL, 60000);
	w = open_rw(repo, NULL);
	CHECK(r && w);
	if (!w || !r)
		goto out;
	CHECK_EQ(store_read(r, c[0].desc.data, c[0].desc.len, 0, b, n),
		 (ssize_t)n);
	CHECK(holding(r));

	/* committed after the hold began (to a third pack) */
	CHECK_EQ(store_put(w, src[3], n, &c[3]), 0);
	CHECK_EQ(store_flush(w), 0);
	CHECK(store_chunk_exists(r, (const unsigned char *)c[3].desc.data +
					    DESC_HDR_LEN));
	CHECK_EQ(store_read(r, c[3].desc.data, c[3].desc.len, 0, b, n),
		 (ssize_t)n);
	CHECK(!memcmp(b, src[3], n));

	/* moved by a prune after the hold began (its old pack deleted) */
	CHECK(holding(r));
	for (int i = 0; i < 4; i++)
		if (i != 2)
			CHECK_EQ(store_idset_add_desc(keep, c[i].desc.data,
						      c[i].desc.len),
				 0);
	CHECK_EQ(store_prune_ex(w, keep, 0, &ps), 0);
	CHECK(ps.packs_rewritten + ps.packs_deleted >= 1);
	CHECK_EQ(store_read(r, c[1].desc.data, c[1].desc.len, 0, b, n),
		 (ssize_t)n);
	CHECK(!memcmp(b, src[1], n));
	store_close(r);
	r = NULL;

	/* an idle hold ends after its time */
	r = open_hold(repo, NULL, 50);
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ(store_read(r, c[0].desc.data, c[0].desc.len, 0, b, n),
			 (ssize_t)n);
		CHECK(holding(r));
		for (int i = 0; i < 100 && holding(r); i++)
			usleep(10000);
		CHECK(!holding(r));
	}
out:
	store_close(r);
	store_close(w);
	store_idset_free(keep);
	for (int i = 0; i < 4; i++) {
		free(src[i]);
		store_content_release(&c[i]);
	}
	free(b);
	free(repo);
}

/*
 * store_view_get(): each offset's chunk, its place in the content and
 * bytes; "loaded" only for the first view of a chunk; views outlive
 * eviction; -ERANGE past the end.
 */
/*
 * A new plain repository holding @n random bytes (@seed) at @a as content
 * @c, opened read-only with a chunk cache of @cache bytes; NULL on error.
 */
static struct store *ro_with_content(char *repo, unsigned char *a, size_t n,
				     uint64_t seed, size_t cache,
				     struct store_content *c)
{
	struct store *w;

	fill_random(a, n, seed);
	store_content_init(c);
	CHECK_EQ(make_repo(repo, false, NULL), 0);
	w = open_rw(repo, NULL);
	CHECK(w != NULL);
	if (!w)
		return NULL;
	CHECK_EQ(store_put(w, a, n, c), 0);
	CHECK_EQ(store_close(w), 0);
	return open_ro(repo, NULL, cache);
}

static void test_view(void)
{
	size_t n = 6 * MiB + 1234;
	char *repo = new_repo();
	unsigned char *a = xmalloc(n);
	struct store_content c;
	struct store_view v, keep;
	struct store *r;
	uint64_t off, chunks = 0, loaded = 0;

	r = ro_with_content(repo, a, n, 91, 2 * STORE_CHUNK_MAX, &c);
	CHECK(r != NULL);
	if (!r)
		return;
	CHECK_EQ(store_view_get(r, c.desc.data, c.desc.len, 0, &keep), 0);
	CHECK(keep.loaded);
	for (off = 0; off < n;) {
		CHECK_EQ(store_view_get(r, c.desc.data, c.desc.len, off, &v),
			 0);
		if (!v.data)
			break;
		chunks++;
		loaded += v.loaded;
		CHECK_EQ(v.off, off);
		CHECK(v.len > 0 && v.off + v.len <= n);
		CHECK(!memcmp(v.data, a + v.off, v.len));
		off = v.off + v.len;
		store_view_put(&v);
		CHECK(v.data == NULL);
	}
	CHECK_EQ(off, (uint64_t)n);
	CHECK_EQ(chunks, c.chunks);
	CHECK_EQ(loaded, c.chunks - 1); /* the first was loaded for keep */
	/* a view from the middle of the last chunk, then again: cached */
	CHECK_EQ(store_view_get(r, c.desc.data, c.desc.len, n - 1, &v), 0);
	CHECK(v.data && v.off + v.len == n && v.data[v.len - 1] == a[n - 1]);
	store_view_put(&v);
	CHECK_EQ(store_view_get(r, c.desc.data, c.desc.len, n - 1, &v), 0);
	CHECK(!v.loaded);
	store_view_put(&v);
	/* keep outlived the eviction of its chunk by the walk */
	CHECK(!memcmp(keep.data, a, keep.len));
	store_view_put(&keep);
	CHECK_EQ(store_view_get(r, c.desc.data, c.desc.len, n, &v), -ERANGE);
	CHECK(v.data == NULL);
	store_view_put(&v);
	store_close(r);
	store_content_release(&c);
	free(a);
	free(repo);
}

/* Readers of one content that start together (test_one_load_per_chunk). */
struct together {
	struct store *st;
	const struct store_content *c;
	const unsigned char *src;
	size_t n;
	pthread_barrier_t *go;
	int bad;
};

static void *together_reader(void *arg)
{
	struct together *x = arg;
	unsigned char *b = xmalloc(MiB);

	pthread_barrier_wait(x->go);
	for (size_t off = 0; off < x->n; off += MiB) {
		size_t want = x->n - off < MiB ? x->n - off : MiB;

		if (store_read(x->st, x->c->desc.data, x->c->desc.len, off, b,
			       MiB) != (ssize_t)want ||
		    memcmp(b, x->src + off, want))
			x->bad++;
	}
	free(b);
	return NULL;
}

/*
 * Threads reading the same chunks at the same time (the kernel's
 * readahead sends a sequential reader's requests to several threads at
 * once) load each chunk once: the others wait for that load.
 */
static void test_one_load_per_chunk(void)
{
	size_t n = 8 * MiB + 4321;
	char *repo = new_repo();
	unsigned char *a = xmalloc(n);
	struct store_content c;
	struct store_stats ss;
	struct store *r;
	pthread_barrier_t go;
	pthread_t t[8];
	struct together x[8];

	r = ro_with_content(repo, a, n, 95, 64 * MiB, &c); /* holds all */
	CHECK(r != NULL);
	if (!r)
		return;
	pthread_barrier_init(&go, NULL, 8);
	for (int i = 0; i < 8; i++) {
		x[i] = (struct together){ r, &c, a, n, &go, 0 };
		CHECK_EQ(pthread_create(&t[i], NULL, together_reader, &x[i]),
			 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(x[i].bad, 0);
	}
	pthread_barrier_destroy(&go);
	store_stats(r, &ss);
	CHECK_EQ(ss.cache_misses, c.chunks);
	store_close(r);
	store_content_release(&c);
	free(a);
	free(repo);
}

/*
 * Lanes: a large content stored while other writers store theirs lands
 * in one run of consecutive records (two when its pack fills up), so
 * that reading it back reads one region of one pack.
 */
struct lanes {
	struct store *st;
	atomic_int big_done; /* the large content is finished */
	atomic_int during; /* other contents finished while it was stored */
	int bad;
	uint64_t seed;
};

static void *lanes_other(void *arg)
{
	struct lanes *x = arg;
	struct store_writer *w = NULL;
	struct store_content c;
	unsigned char *b = xmalloc(700 * 1024);
	uint64_t seed = x->seed;

	store_content_init(&c);
	if (store_writer_new(x->st, &w))
		__atomic_add_fetch(&x->bad, 1, __ATOMIC_RELAXED);
	while (w && !atomic_load(&x->big_done)) {
		size_t n = 100 * 1024 + (size_t)(seed % (600 * 1024));

		fill_random(b, n, seed++);
		if (store_writer_add(w, b, n / 2) ||
		    store_writer_add(w, b + n / 2, n - n / 2) ||
		    store_writer_finish(w, &c))
			__atomic_add_fetch(&x->bad, 1, __ATOMIC_RELAXED);
		else if (!atomic_load(&x->big_done))
			atomic_fetch_add(&x->during, 1);
	}
	store_writer_free(w);
	store_content_release(&c);
	free(b);
	return NULL;
}

struct run_walk {
	struct store *st;
	struct loc prev;
	unsigned runs;
	uint64_t chunks;
	int bad;
};

static int run_step(void *arg, const unsigned char *id, uint64_t off,
		    uint32_t len)
{
	struct run_walk *r = arg;
	struct loc l;

	(void)off;
	(void)len;
	if (store_locate(r->st, id, &l)) {
		r->bad++;
		return 0;
	}
	if (!r->chunks || l.pack != r->prev.pack ||
	    l.off != r->prev.off + CHUNK_HDR_LEN + r->prev.stored)
		r->runs++;
	r->prev = l;
	r->chunks++;
	return 0;
}

static void test_lanes_contiguous(void)
{
	const size_t total = 40 * MiB, piece = 64 * 1024;
	char *repo = new_repo();
	unsigned char *b = xmalloc(total), *r = xmalloc(total);
	struct lanes x = { 0 }, xs[3];
	struct store_writer *w = NULL;
	struct store_content c;
	struct run_walk rw = { 0 };
	pthread_t t[3];
	int during;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	x.st = open_opts(repo, NULL, STORE_OPEN_WRITE, 0, 64 * MiB);
	CHECK(x.st != NULL);
	if (!x.st)
		return;
	fill_random(b, total, 77);
	store_content_init(&c);
	for (int i = 0; i < 3; i++) {
		xs[i] = x;
		xs[i].seed = 1000 + (uint64_t)i * 100000;
	}
	CHECK_EQ(store_writer_new(x.st, &w), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, lanes_other, &xs[i]), 0);
	/* in small pieces, so that the others append between its chunks */
	for (size_t off = 0; w && off < total; off += piece) {
		CHECK_EQ(store_writer_add(w, b + off, piece), 0);
		sched_yield();
	}
	CHECK_EQ(store_writer_finish(w, &c), 0);
	for (int i = 0; i < 3; i++)
		atomic_store(&xs[i].big_done, 1);
	during = 0;
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(xs[i].bad, 0);
		during += atomic_load(&xs[i].during);
	}
	store_writer_free(w);
	/* the others were storing all the while */
	CHECK(during >= 10);
	CHECK(c.chunks >= 20);
	CHECK_EQ(c.new_chunks, c.chunks);
	rw.st = x.st;
	CHECK_EQ(store_desc_foreach(c.desc.data, c.desc.len, run_step, &rw), 0);
	CHECK_EQ(rw.bad, 0);
	CHECK_EQ(rw.chunks, c.chunks);
	CHECK(rw.runs >= 1 && rw.runs <= 2);
	CHECK_EQ(store_flush(x.st), 0);
	CHECK_EQ(store_read(x.st, c.desc.data, c.desc.len, 0, r, total),
		 (ssize_t)total);
	CHECK(!memcmp(b, r, total));
	CHECK_EQ(store_close(x.st), 0);
	x.st = open_rw(repo, NULL);
	CHECK_EQ(store_check(x.st, STORE_CHECK_READ_DATA, NULL, NULL, NULL), 0);
	store_close(x.st);
	store_content_release(&c);
	free(b);
	free(r);
	free(repo);
}

/*
 * Chunks appended and not yet flushed are readable by the writing store
 * at once, wherever the writer keeps them before they reach the pack
 * (direct writes stage them), and appends go on after such a read.
 */
static void test_read_pending(void)
{
	static const size_t sz[] = { 100 * 1024, 5 * MiB / 2, 5 * MiB, 3,
				     9 * MiB };
	enum { N = sizeof(sz) / sizeof(sz[0]) };
	char *repo = new_repo();
	unsigned char *a[N], *b = xmalloc(9 * MiB);
	struct store_content c[N];
	struct store *st;

	CHECK_EQ(make_repo(repo, false, NULL), 0);
	st = open_rw(repo, NULL);
	CHECK(st != NULL);
	if (!st)
		return;
	for (int i = 0; i < N; i++) {
		a[i] = xmalloc(sz[i]);
		fill_random(a[i], sz[i], 500 + (uint64_t)i);
		store_content_init(&c[i]);
		CHECK_EQ(store_put(st, a[i], sz[i], &c[i]), 0);
		/* this one and every one before it, before any flush */
		for (int k = 0; k <= i; k++) {
			CHECK_EQ(store_read(st, c[k].desc.data, c[k].desc.len,
					    0, b, sz[k]),
				 (ssize_t)sz[k]);
			CHECK(!memcmp(a[k], b, sz[k]));
		}
	}
	CHECK_EQ(store_close(st), 0);
	st = open_ro(repo, NULL, 0);
	for (int i = 0; st && i < N; i++) {
		CHECK_EQ(store_read(st, c[i].desc.data, c[i].desc.len, 0, b,
				    sz[i]),
			 (ssize_t)sz[i]);
		CHECK(!memcmp(a[i], b, sz[i]));
	}
	CHECK_EQ(store_check(st, STORE_CHECK_READ_DATA, NULL, NULL, NULL), 0);
	store_close(st);
	for (int i = 0; i < N; i++) {
		free(a[i]);
		store_content_release(&c[i]);
	}
	free(b);
	free(repo);
}

/* `test_store NAME` runs only the tests whose name contains NAME. */
static const char *only;
#define RUN_IF(fn)                                                             \
	do {                                                                   \
		if (!only || strstr(#fn, only))                                \
			RUN(fn);                                               \
	} while (0)

int main(int argc, char **argv)
{
	only = argc > 1 ? argv[1] : NULL;
	if (!mkdtemp(tmpdir))
		return 1;
	log_init("test_store", getenv("STORE_DEBUG") ? LOG_DEBUG : LOG_CRIT);
	RUN_IF(test_keys);
	RUN_IF(test_roundtrip_plain);
	RUN_IF(test_roundtrip_encrypted);
	RUN_IF(test_wrong_key);
	RUN_IF(test_lock);
	RUN_IF(test_reader_sees_flush);
	RUN_IF(test_view);
	RUN_IF(test_one_load_per_chunk);
	RUN_IF(test_dedup_edit);
	RUN_IF(test_damage_plain);
	RUN_IF(test_damage_encrypted);
	RUN_IF(test_damage_format1);
	RUN_IF(test_format_unknown);
	RUN_IF(test_chk2);
	RUN_IF(test_torn_tail);
	RUN_IF(test_kill_writer);
	RUN_IF(test_concurrency);
	RUN_IF(test_blobs);
	RUN_IF(test_prune);
	RUN_IF(test_read_hold);
	RUN_IF(test_prune_threshold);
	RUN_IF(test_rebuild);
	RUN_IF(test_big_stream);
	RUN_IF(test_writer_reuse);
	RUN_IF(test_writer_stats);
	RUN_IF(test_sha2x);
	RUN_IF(test_sha2x_cdc);
	RUN_IF(test_same_content_concurrent);
	RUN_IF(test_write_fails);
	RUN_IF(test_pack_room);
	RUN_IF(test_lanes_contiguous);
	RUN_IF(test_read_pending);
	if (!getenv("KEEP")) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd))
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return check_done();
}
