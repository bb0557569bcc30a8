/*
 * test_fs_gen - writes snapshots of a directory tree into a repository
 * through the store and catalog APIs, as the snapshot walker would; the
 * FUSE daemon's integration tests and benchmark build their repositories
 * with it (tests/integration/fsutil.py).
 *
 *   test_fs_gen                       self-test (a unit test: make check-unit)
 *   test_fs_gen import REPO SRC [--key FILE] [--encrypt] [--small-chunks]
 *               [--partial REASON]
 *       One snapshot of the tree SRC (created REPO when missing; with
 *       --encrypt the new key is written to --key FILE, 0600).  SRC's
 *       first-level directories become the top-level directories, files
 *       named *.eml become messages; mtimes come from SRC; every item
 *       gets cold metadata (id, webUrl, eTag, name, author, and for
 *       messages subject/from/receivedDateTime).  A later import of the
 *       changed tree writes only the changes (what is gone is deleted).
 *   test_fs_gen damaged REPO [--key FILE]
 *       Reads every file of the newest snapshot through the store; prints
 *       the path of each one that cannot be read (damaged), one a line.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "check.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/util.h"

struct gen {
	struct store *st;
	struct cat *cat;
	int64_t snap;
	int64_t files, dirs, bytes;
};

static int flush_hook(void *ctx)
{
	return store_flush(ctx);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of directory @path (caller frees each and the array). */
static int read_names(const char *path, char ***out, size_t *n)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char **v = NULL;
	size_t len = 0, alloc = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (len == alloc) {
			alloc = alloc ? alloc * 2 : 64;
			v = realloc(v, alloc * sizeof(*v));
			if (!v)
				abort();
		}
		v[len++] = strdup(de->d_name);
	}
	closedir(d);
	if (len)
		qsort(v, len, sizeof(*v), cmp_str);
	*out = v;
	*n = len;
	return 0;
}

static void hex_id(const char *rel, char out[17])
{
	/* FNV-1a: a stable stand-in for a Graph id */
	uint64_t h = 1469598103934665603ull;

	for (; *rel; rel++)
		h = (h ^ (unsigned char)*rel) * 1099511628211ull;
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static int put_item(struct gen *g, int64_t parent, int kind, const char *name,
		    const char *rel, const struct stat *sb, int64_t content,
		    int64_t size, int64_t *id)
{
	char gid[17], etag[40], url[PATH_MAX + 64], when[40];
	struct cat_kv meta[10];
	struct cat_item_in in = { 0 };
	size_t n = 0;
	int rc;

	hex_id(rel, gid);
	snprintf(etag, sizeof(etag), "\"{%s},%lld\"", gid,
		 (long long)sb->st_mtim.tv_sec);
	snprintf(url, sizeof(url), "https://contoso.example/%s", rel);
	util_time_format(sb->st_mtim.tv_sec, when, sizeof(when));
	meta[n++] = (struct cat_kv){ CAT_META_GRAPH_ID, gid };
	meta[n++] = (struct cat_kv){ CAT_META_WEB_URL, url };
	meta[n++] = (struct cat_kv){ CAT_META_ETAG, etag };
	meta[n++] = (struct cat_kv){ "name", name };
	meta[n++] = (struct cat_kv){ CAT_META_AUTHOR, "Adele Vance" };
	meta[n++] = (struct cat_kv){ "lastModifiedDateTime", when };
	if (kind == CAT_KIND_MESSAGE) {
		meta[n++] = (struct cat_kv){ CAT_META_SUBJECT, name };
		meta[n++] = (struct cat_kv){ CAT_META_FROM,
					     "megan@contoso.example" };
		meta[n++] = (struct cat_kv){ CAT_META_RECEIVED, when };
	}
	in.parent = parent;
	in.kind = kind;
	in.name = name;
	in.scope = "gen";
	in.graph_id = gid;
	in.size = size;
	in.mtime_sec = sb->st_mtim.tv_sec;
	in.mtime_nsec = (int32_t)sb->st_mtim.tv_nsec;
	in.btime_sec = sb->st_mtim.tv_sec;
	in.content = content;
	in.meta = meta;
	in.nmeta = n;
	rc = cat_item_put(g->cat, &in, id, NULL);
	if (rc < 0)
		fprintf(stderr, "test_fs_gen: put '%s': %s\n", rel,
			strerror(-rc));
	return rc;
}

static int put_file(struct gen *g, int64_t parent, const char *path,
		    const char *rel, const char *name, const struct stat *sb)
{
	struct store_content res;
	size_t nl = strlen(name);
	int kind = nl > 4 && !strcmp(name + nl - 4, ".eml") ? CAT_KIND_MESSAGE
							    : CAT_KIND_FILE;
	int64_t cid = 0;
	int fd, rc;

	store_content_init(&res);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	rc = store_put_fd(g->st, fd, &res);
	close(fd);
	if (rc < 0) {
		fprintf(stderr, "test_fs_gen: store '%s': %s\n", rel,
			strerror(-rc));
		goto out;
	}
	rc = cat_content_put(g->cat, (int64_t)res.size, res.sha256, NULL,
			     res.desc.data, res.desc.len, &cid);
	if (rc < 0)
		goto out;
	rc = put_item(g, parent, kind, name, rel, sb, cid, (int64_t)res.size,
		      NULL);
	g->files++;
	g->bytes += (int64_t)res.size;
out:
	store_content_release(&res);
	return rc;
}

static int import_dir(struct gen *g, const char *path, const char *rel,
		      int64_t parent, int depth)
{
	char **names = NULL, sub[PATH_MAX], subrel[PATH_MAX];
	size_t n = 0, i;
	struct stat sb;
	int64_t id;
	int rc;

	rc = read_names(path, &names, &n);
	if (rc < 0)
		return rc;
	for (i = 0; i < n && rc >= 0; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", path, names[i]);
		snprintf(subrel, sizeof(subrel), "%s%s%s", rel, *rel ? "/" : "",
			 names[i]);
		if (lstat(sub, &sb) < 0) {
			rc = -errno;
			break;
		}
		if (S_ISDIR(sb.st_mode)) {
			rc = put_item(g, parent,
				      depth == 0 ? CAT_KIND_TOP
						 : CAT_KIND_FOLDER,
				      names[i], subrel, &sb, 0, 0, &id);
			if (rc >= 0)
				rc = import_dir(g, sub, subrel, id, depth + 1);
			g->dirs++;
		} else if (S_ISREG(sb.st_mode)) {
			rc = put_file(g, parent, sub, subrel, names[i], &sb);
		}
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int load_key(const char *file, unsigned char key[STORE_KEY_LEN])
{
	struct buf why = BUF_INIT;
	int rc = store_key_load_file(file, key, &why);

	if (rc < 0)
		fprintf(stderr, "test_fs_gen: key '%s': %s\n", file,
			why.len ? why.data : strerror(-rc));
	buf_release(&why);
	return rc;
}

struct opts {
	const char *key_file;
	bool encrypt, small_chunks;
	const char *partial;
};

static int open_repo(const char *repo, const struct opts *o, bool write,
		     struct gen *g)
{
	unsigned char key[STORE_KEY_LEN];
	struct store_open_opts so = { 0 };
	struct buf why = BUF_INIT;
	char path[PATH_MAX];
	struct stat sb;
	int rc;

	snprintf(path, sizeof(path), "%s/config", repo);
	if (write && stat(path, &sb) < 0) {
		struct store_create_opts co = { 0 };

		co.encrypt = o->encrypt;
		if (o->small_chunks) {
			co.chunk_min = 16 * 1024;
			co.chunk_avg = 64 * 1024;
			co.chunk_max = 256 * 1024;
		}
		rc = store_create(repo, &co, key, &why);
		if (rc < 0) {
			fprintf(stderr, "test_fs_gen: create '%s': %s\n", repo,
				why.len ? why.data : strerror(-rc));
			goto out;
		}
		if (o->encrypt) {
			char text[STORE_KEY_B64_LEN + 2];

			store_key_format(key, text);
			strcat(text, "\n");
			rc = util_write_file_atomic(o->key_file, text,
						    strlen(text), 0600);
			if (rc < 0)
				goto out;
		}
	}
	if (o->key_file) {
		rc = load_key(o->key_file, key);
		if (rc < 0)
			goto out;
		so.key = key;
	}
	so.flags = write ? STORE_OPEN_WRITE : 0;
	so.command = "test_fs_gen";
	rc = store_open(repo, &so, &g->st, &why);
	if (rc < 0) {
		fprintf(stderr, "test_fs_gen: open '%s': %s\n", repo,
			why.len ? why.data : strerror(-rc));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", repo, CAT_FILE);
	rc = cat_open(path,
		      write ? CAT_OPEN_WRITE | CAT_OPEN_CREATE : CAT_OPEN_READ,
		      &g->cat);
	if (rc < 0)
		fprintf(stderr, "test_fs_gen: catalog '%s': %s\n", path,
			strerror(-rc));
out:
	buf_release(&why);
	return rc;
}

static void close_repo(struct gen *g)
{
	cat_close(g->cat);
	store_close(g->st);
	g->cat = NULL;
	g->st = NULL;
}

static int do_import(const char *repo, const char *src, const struct opts *o)
{
	struct gen g = { 0 };
	int64_t gone = 0;
	int rc;

	rc = open_repo(repo, o, true, &g);
	if (rc < 0)
		goto out;
	cat_set_commit_hook(g.cat, flush_hook, g.st);
	rc = cat_snapshot_begin(g.cat, &g.snap);
	if (rc < 0)
		goto out;
	rc = cat_sweep_begin(g.cat, CAT_ROOT);
	if (rc < 0)
		goto out;
	rc = import_dir(&g, src, "", CAT_ROOT, 0);
	if (rc >= 0)
		rc = cat_sweep_end(g.cat, CAT_ROOT, &gone);
	if (rc >= 0) {
		struct cat_counters n = { 0 };

		n.items = g.files + g.dirs;
		n.files = g.files;
		n.bytes_new = g.bytes;
		rc = cat_snapshot_count(g.cat, &n);
	}
	if (rc >= 0 && o->partial)
		rc = cat_snapshot_error(g.cat, "onedrive", "onedrive/missing",
					NULL, o->partial);
	if (rc >= 0)
		rc = cat_snapshot_finish(g.cat, o->partial ? CAT_SNAP_PARTIAL
							   : CAT_SNAP_COMPLETE);
	else
		cat_snapshot_finish(g.cat, CAT_SNAP_FAILED);
	if (rc >= 0)
		printf("snapshot %lld: %lld files, %lld dirs, %lld bytes, %lld gone\n",
		       (long long)g.snap, (long long)g.files, (long long)g.dirs,
		       (long long)g.bytes, (long long)gone);
out:
	close_repo(&g);
	return rc;
}

/* ---- damaged: which files of the newest snapshot cannot be read ---- */

struct bad {
	struct gen *g;
	int64_t snap;
	struct buf path;
};

/* Read all of @desc through the store: 0, or the store's error. */
static int read_all(struct store *st, const struct buf *desc)
{
	static char chunk[1 << 20];
	uint64_t off = 0;
	ssize_t n;

	while ((n = store_read(st, desc->data, desc->len, off, chunk,
			       sizeof(chunk))) > 0)
		off += (uint64_t)n;
	return n < 0 ? (int)n : 0;
}

struct kids {
	struct cat_item *v;
	size_t n;
};

static int collect_kid(void *ctx, const struct cat_item *it)
{
	struct kids *k = ctx;

	k->v = realloc(k->v, (k->n + 1) * sizeof(*k->v));
	if (!k->v)
		return -ENOMEM;
	k->v[k->n++] = *it;
	return 0;
}

static int walk_bad(struct bad *b, int64_t dir)
{
	struct kids k = { NULL, 0 };
	struct buf desc = BUF_INIT;
	size_t i, len = b->path.len;
	int rc;

	rc = cat_list(b->g->cat, b->snap, dir, NULL, collect_kid, &k);
	for (i = 0; rc >= 0 && i < k.n; i++) {
		buf_truncate(&b->path, len);
		buf_addf(&b->path, "%s%s", len ? "/" : "", k.v[i].name);
		if (cat_kind_is_dir(k.v[i].kind)) {
			rc = walk_bad(b, k.v[i].id);
			continue;
		}
		if (!k.v[i].content)
			continue;
		buf_reset(&desc);
		rc = cat_content_get(b->g->cat, k.v[i].content, NULL, &desc);
		if (rc < 0)
			break;
		if (read_all(b->g->st, &desc) < 0)
			printf("%s\n", b->path.data);
	}
	buf_truncate(&b->path, len);
	buf_release(&desc);
	free(k.v);
	return rc;
}

static int do_damaged(const char *repo, const struct opts *o)
{
	struct gen g = { 0 };
	struct bad b = { 0 };
	int rc;

	rc = open_repo(repo, o, false, &g);
	if (rc < 0)
		goto out;
	b.g = &g;
	buf_init(&b.path, 0);
	rc = cat_snapshot_latest(g.cat, &b.snap);
	if (rc < 0)
		goto out;
	rc = walk_bad(&b, CAT_ROOT);
out:
	buf_release(&b.path);
	close_repo(&g);
	return rc;
}

/* ---- self-test ---------------------------------------------------------- */

static char tmpdir[] = "/tmp/test_fs_gen.XXXXXX";

static void write_src(const char *rel, const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/src/%s", tmpdir, rel);
	CHECK(util_write_file_atomic(path, text, strlen(text), 0644) == 0);
}

static int self_rc;

static void test_import_and_read(void)
{
	char src[256], repo[256], path[PATH_MAX];
	struct opts o = { 0 };
	struct gen g = { 0 };
	struct cat_item top, f;
	struct buf desc = BUF_INIT;
	char data[64];
	ssize_t n;
	int rc;

	snprintf(src, sizeof(src), "%s/src", tmpdir);
	snprintf(repo, sizeof(repo), "%s/repo", tmpdir);
	snprintf(path, sizeof(path), "%s/onedrive/u", src);
	CHECK(util_mkdir_p(path, 0755) == 0);
	write_src("onedrive/u/a.txt", "hello world\n");
	write_src("onedrive/u/b.eml", "Subject: hi\r\n\r\nbody\r\n");
	o.small_chunks = true;
	rc = do_import(repo, src, &o);
	if (rc == -ENOSYS) {
		self_rc = CHECK_SKIP; /* store or catalog not implemented */
		return;
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(open_repo(repo, &o, false, &g), 0);
	if (!g.cat)
		goto out;
	CHECK_EQ(cat_lookup(g.cat, 1, CAT_ROOT, "onedrive", &top), 0);
	CHECK(cat_kind_is_dir(top.kind));
	CHECK_EQ(cat_lookup(g.cat, 1, top.id, "u", &top), 0);
	CHECK_EQ(cat_lookup(g.cat, 1, top.id, "a.txt", &f), 0);
	CHECK_EQ(f.size, 12);
	CHECK_EQ(cat_content_get(g.cat, f.content, NULL, &desc), 0);
	n = store_read(g.st, desc.data, desc.len, 6, data, sizeof(data));
	CHECK_EQ(n, 6);
	CHECK(n == 6 && !memcmp(data, "world\n", 6));
	CHECK_EQ(cat_lookup(g.cat, 1, top.id, "b.eml", &f), 0);
	CHECK_EQ(f.kind, CAT_KIND_MESSAGE);
out:
	buf_release(&desc);
	close_repo(&g);
}

static int self_test(void)
{
	char cmd[PATH_MAX + 16];
	int ret;

	if (!mkdtemp(tmpdir))
		return 1;
	RUN(test_import_and_read);
	ret = self_rc == CHECK_SKIP ? CHECK_SKIP : check_done();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	if (ret == CHECK_SKIP)
		printf("store or catalog not implemented yet\n");
	return ret;
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	char *pos[2] = { NULL, NULL };
	int i, n = 0, rc;

	if (argc < 2)
		return self_test();
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--key") && i + 1 < argc)
			o.key_file = argv[++i];
		else if (!strcmp(argv[i], "--encrypt"))
			o.encrypt = true;
		else if (!strcmp(argv[i], "--small-chunks"))
			o.small_chunks = true;
		else if (!strcmp(argv[i], "--partial") && i + 1 < argc)
			o.partial = argv[++i];
		else if (argv[i][0] == '-' || n == 2)
			goto usage;
		else
			pos[n++] = argv[i];
	}
	if (o.encrypt && !o.key_file)
		goto usage;
	if (!strcmp(argv[1], "import") && n == 2)
		rc = do_import(pos[0], pos[1], &o);
	else if (!strcmp(argv[1], "damaged") && n == 1)
		rc = do_damaged(pos[0], &o);
	else
		goto usage;
	if (rc < 0) {
		fprintf(stderr, "test_fs_gen: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
usage:
	fprintf(stderr,
		"usage: test_fs_gen [import REPO SRC [--key FILE] [--encrypt] "
		"[--small-chunks] [--partial REASON] | damaged REPO [--key FILE]]\n");
	return 2;
}
