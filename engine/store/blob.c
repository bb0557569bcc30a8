/*
 * blob.c - named blobs: content stored through the chunk/pack path and
 * named by a small root record in REPO/roots/ (FORMAT.md "Roots"), so
 * that the catalog can be rebuilt from the repository alone.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_i.h"
#include "util/log.h"
#include "util/util.h"

#define ROOT_HDR_LEN 16
#define ROOT_MAX     (256u * 1024 * 1024)

static int name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 1 && n <= NAME_MAX_LEN ? 0 : -EINVAL;
}

/* REPO/roots/<hex>.root for (@kind, @name) into @out. */
static int root_path(struct store *st, const char *kind, const char *name,
		     struct buf *out)
{
	struct buf key = BUF_INIT;
	unsigned char id[32];
	char hex[33];
	int ret;

	ret = buf_adds(&key, kind);
	if (!ret)
		ret = buf_addch(&key, 0);
	if (!ret)
		ret = buf_adds(&key, name);
	if (!ret)
		ret = chunk_id(&st->keys, key.data, key.len, id);
	buf_release(&key);
	if (ret)
		return ret;
	util_hex(hex, id, 16, false);
	buf_reset(out);
	return buf_addf(out, "%s/roots/%s.root", st->repo, hex);
}

static int add_str(struct buf *b, const char *s)
{
	unsigned char l[2];
	size_t n = strlen(s);

	l[0] = (unsigned char)n;
	l[1] = (unsigned char)(n >> 8);
	int ret = buf_add(b, l, 2);

	return ret ? ret : buf_add(b, s, n);
}

static int root_encode(struct store *st, const char *kind, const char *name,
		       const struct store_content *c, struct buf *out)
{
	unsigned char hdr[ROOT_HDR_LEN], v[8], nonce[GCM_NONCE_LEN];
	struct buf body = BUF_INIT;
	int ret;

	memcpy(hdr, ROOT_MAGIC, 8);
	le32_put(hdr + 8, 1);
	le32_put(hdr + 12, st->keys.enc ? 1 : 0);
	ret = add_str(&body, kind);
	if (!ret)
		ret = add_str(&body, name);
	le64_put(v, (uint64_t)util_now());
	if (!ret)
		ret = buf_add(&body, v, 8);
	le64_put(v, c->size);
	if (!ret)
		ret = buf_add(&body, v, 8);
	if (!ret)
		ret = buf_add(&body, c->sha256, 32);
	le32_put(v, (uint32_t)c->desc.len);
	if (!ret)
		ret = buf_add(&body, v, 4);
	if (!ret)
		ret = buf_add(&body, c->desc.data, c->desc.len);
	if (ret)
		goto out;
	buf_reset(out);
	ret = buf_add(out, hdr, sizeof(hdr));
	if (ret)
		goto out;
	if (st->keys.enc) {
		ret = util_random(nonce, sizeof(nonce));
		if (!ret)
			ret = buf_add(out, nonce, sizeof(nonce));
		if (!ret)
			ret = gcm_seal(st->keys.data_key, nonce, hdr,
				       sizeof(hdr), body.data, body.len, out);
	} else {
		le64_put(v, chk64(body.data, body.len));
		ret = buf_add(out, body.data, body.len);
		if (!ret)
			ret = buf_add(out, v, 8);
	}
out:
	buf_release(&body);
	return ret;
}

static int get_str(const unsigned char **p, const unsigned char *end, char *out)
{
	size_t n;

	if (end - *p < 2)
		return -EBADMSG;
	n = (size_t)(*p)[0] | (size_t)(*p)[1] << 8;
	*p += 2;
	if (n < 1 || n > NAME_MAX_LEN || (size_t)(end - *p) < n ||
	    memchr(*p, 0, n))
		return -EBADMSG;
	memcpy(out, *p, n);
	out[n] = 0;
	*p += n;
	return 0;
}

int root_decode(struct store *st, const struct buf *f, struct buf *body,
		struct root *r)
{
	const unsigned char *u = (const unsigned char *)f->data, *p, *end;
	uint32_t dlen;
	int ret;

	if (f->len < ROOT_HDR_LEN + 8 || memcmp(u, ROOT_MAGIC, 8) ||
	    le32_get(u + 8) != 1 ||
	    le32_get(u + 12) != (st->keys.enc ? 1u : 0u))
		return -EBADMSG;
	buf_reset(body);
	if (st->keys.enc) {
		if (f->len < ROOT_HDR_LEN + GCM_NONCE_LEN + GCM_TAG_LEN)
			return -EBADMSG;
		ret = gcm_open(st->keys.data_key, u + ROOT_HDR_LEN, u,
			       ROOT_HDR_LEN, u + ROOT_HDR_LEN + GCM_NONCE_LEN,
			       f->len - ROOT_HDR_LEN - GCM_NONCE_LEN, body);
		if (ret)
			return ret;
	} else {
		size_t n = f->len - ROOT_HDR_LEN - 8;

		if (chk64(u + ROOT_HDR_LEN, n) != le64_get(u + f->len - 8))
			return -EBADMSG;
		ret = buf_add(body, u + ROOT_HDR_LEN, n);
		if (ret)
			return ret;
	}
	p = (const unsigned char *)body->data;
	end = p + body->len;
	if (get_str(&p, end, r->kind) || get_str(&p, end, r->name))
		return -EBADMSG;
	if (end - p < 8 + 8 + 32 + 4)
		return -EBADMSG;
	r->time = (int64_t)le64_get(p);
	r->size = le64_get(p + 8);
	memcpy(r->sha256, p + 16, 32);
	dlen = le32_get(p + 48);
	p += 52;
	if ((size_t)(end - p) != dlen)
		return -EBADMSG;
	r->desc = p;
	r->desc_len = dlen;
	uint64_t size;

	if (store_desc_parse(r->desc, r->desc_len, &size, NULL) ||
	    size != r->size)
		return -EBADMSG;
	return 0;
}

static int root_write(struct store *st, const char *kind, const char *name,
		      const struct store_content *c)
{
	struct buf path = BUF_INIT, rec = BUF_INIT;
	int ret;

	ret = store_flush(st); /* the data first, then the name */
	if (!ret)
		ret = root_path(st, kind, name, &path);
	if (!ret)
		ret = root_encode(st, kind, name, c, &rec);
	if (!ret)
		ret = util_write_file_atomic(path.data, rec.data, rec.len,
					     0600);
	buf_release(&path);
	buf_release(&rec);
	return ret;
}

int store_blob_put(struct store *st, const char *kind, const char *name,
		   const void *p, size_t n)
{
	struct store_content c;
	int ret;

	if (!st->info.writable)
		return -EROFS;
	if (name_ok(kind) || name_ok(name))
		return -EINVAL;
	store_content_init(&c);
	ret = store_put(st, p, n, &c);
	if (!ret)
		ret = root_write(st, kind, name, &c);
	store_content_release(&c);
	return ret;
}

int store_blob_put_file(struct store *st, const char *path, const char *kind,
			const char *name)
{
	struct store_content c;
	int fd, ret;

	if (!st->info.writable)
		return -EROFS;
	if (name_ok(kind) || name_ok(name))
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_err("store: cannot open '%s': %s", path, strerror(errno));
		return ret;
	}
	store_content_init(&c);
	ret = store_put_fd(st, fd, &c);
	close(fd);
	if (!ret)
		ret = root_write(st, kind, name, &c);
	store_content_release(&c);
	return ret;
}

/* Read and decode root file @path. */
static int root_load(struct store *st, const char *path, struct buf *f,
		     struct buf *body, struct root *r)
{
	int ret;

	buf_reset(f);
	ret = util_read_file(path, f, ROOT_MAX);
	if (ret)
		return ret;
	ret = root_decode(st, f, body, r);
	if (ret == -EBADMSG)
		log_err("store: root record '%s' is damaged", path);
	return ret;
}

/* Call @fn for each root file: its path and decode result. */
static int roots_walk(struct store *st,
		      int (*fn)(void *arg, const char *path, int err,
				const struct root *r),
		      void *arg)
{
	struct buf dir = BUF_INIT, path = BUF_INIT, f = BUF_INIT;
	struct buf body = BUF_INIT;
	struct dirent *de;
	struct root r;
	DIR *d = NULL;
	int ret, err;

	ret = store_path(st, "roots", &dir);
	if (ret)
		goto out;
	d = opendir(dir.data);
	if (!d) {
		ret = errno == ENOENT ? 0 : -errno;
		goto out;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (l < 6 || strcmp(de->d_name + l - 5, ".root"))
			continue;
		buf_reset(&path);
		ret = buf_addf(&path, "%s/%s", dir.data, de->d_name);
		if (ret)
			goto out;
		err = root_load(st, path.data, &f, &body, &r);
		if (err == -ENOENT)
			continue; /* deleted meanwhile */
		ret = fn(arg, path.data, err, &r);
		if (ret)
			goto out;
	}
	ret = 0;
out:
	if (d)
		closedir(d);
	buf_release(&dir);
	buf_release(&path);
	buf_release(&f);
	buf_release(&body);
	return ret;
}

struct list_ctx {
	const char *kind;
	int (*fn)(void *arg, const struct store_blob_info *b);
	void *arg;
};

static int list_one(void *arg, const char *path, int err, const struct root *r)
{
	struct list_ctx *c = arg;
	struct store_blob_info b;

	(void)path;
	if (err)
		return 0; /* logged by root_load */
	if (c->kind && strcmp(c->kind, r->kind))
		return 0;
	b.kind = r->kind;
	b.name = r->name;
	b.time = r->time;
	b.size = r->size;
	memcpy(b.sha256, r->sha256, 32);
	b.desc = r->desc;
	b.desc_len = r->desc_len;
	return c->fn(c->arg, &b);
}

int store_blob_list(struct store *st, const char *kind,
		    int (*fn)(void *arg, const struct store_blob_info *b),
		    void *arg)
{
	struct list_ctx c = { kind, fn, arg };

	return roots_walk(st, list_one, &c);
}

static int keep_one(void *arg, const char *path, int err, const struct root *r)
{
	(void)path;
	if (err)
		return 0;
	return store_idset_add_desc(arg, r->desc, r->desc_len);
}

int roots_keep(struct store *st, struct store_idset *set)
{
	return roots_walk(st, keep_one, set);
}

struct check_ctx {
	void (*fn)(void *arg, const struct store_problem *p);
	void *arg;
	uint64_t problems;
	struct store *st;
};

static int check_root(void *arg, const char *path, int err,
		      const struct root *r)
{
	struct check_ctx *c = arg;
	struct store_problem p = { .kind = STORE_PROBLEM_ROOT, .err = err };
	const unsigned char *id;
	uint64_t n, start, end;

	if (err) {
		p.pack = path;
		p.what = "root record damaged";
		c->problems++;
		if (c->fn)
			c->fn(c->arg, &p);
		return 0;
	}
	store_desc_parse(r->desc, r->desc_len, NULL, &n);
	for (uint64_t i = 0; i < n; i++) {
		desc_entry(r->desc, i, &id, &start, &end);
		if (store_chunk_exists(c->st, id))
			continue;
		p.kind = STORE_PROBLEM_CHUNK;
		p.id = id;
		p.err = -ENOENT;
		p.pack = path;
		p.what = "chunk of a blob is missing";
		c->problems++;
		if (c->fn)
			c->fn(c->arg, &p);
	}
	return 0;
}

int roots_check(struct store *st,
		void (*fn)(void *arg, const struct store_problem *p), void *arg,
		uint64_t *problems)
{
	struct check_ctx c = { fn, arg, 0, st };
	int ret = roots_walk(st, check_root, &c);

	*problems += c.problems;
	return ret;
}

static int find_root(struct store *st, const char *kind, const char *name,
		     struct buf *f, struct buf *body, struct root *r)
{
	struct buf path = BUF_INIT;
	int ret;

	if (name_ok(kind) || name_ok(name))
		return -EINVAL;
	ret = root_path(st, kind, name, &path);
	if (!ret)
		ret = root_load(st, path.data, f, body, r);
	if (!ret && (strcmp(r->kind, kind) || strcmp(r->name, name)))
		ret = -EBADMSG;
	buf_release(&path);
	return ret;
}

int store_blob_get(struct store *st, const char *kind, const char *name,
		   struct buf *out)
{
	struct buf f = BUF_INIT, body = BUF_INIT;
	size_t old = out->len;
	struct root r;
	ssize_t n;
	int ret;

	ret = find_root(st, kind, name, &f, &body, &r);
	if (ret)
		goto out;
	ret = buf_grow(out, r.size);
	if (ret)
		goto out;
	n = r.size ? store_read(st, r.desc, r.desc_len, 0, out->data + old,
				r.size)
		   : 0;
	if (n < 0 || (uint64_t)n != r.size) {
		ret = n < 0 ? (int)n : -EIO;
		goto out;
	}
	out->len = old + r.size;
	out->data[out->len] = 0;
out:
	buf_release(&f);
	buf_release(&body);
	return ret;
}

int store_blob_get_file(struct store *st, const char *kind, const char *name,
			const char *path)
{
	struct buf f = BUF_INIT, body = BUF_INIT, tmp = BUF_INIT;
	struct root r;
	int fd = -1, ret;

	ret = find_root(st, kind, name, &f, &body, &r);
	if (ret)
		goto out;
	ret = buf_addf(&tmp, "%s.tmp.XXXXXX", path);
	if (ret)
		goto out;
	fd = mkostemp(tmp.data, O_CLOEXEC); /* mode 0600 */
	if (fd < 0) {
		ret = -errno;
		log_err("store: cannot create '%s': %s", tmp.data,
			strerror(errno));
		goto out;
	}
	ret = store_read_fd(st, r.desc, r.desc_len, fd);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	if (!ret && rename(tmp.data, path) < 0)
		ret = -errno;
out:
	if (fd >= 0) {
		close(fd);
		if (ret)
			unlink(tmp.data);
	}
	buf_release(&f);
	buf_release(&body);
	buf_release(&tmp);
	return ret;
}

int store_blob_delete(struct store *st, const char *kind, const char *name)
{
	struct buf path = BUF_INIT;
	int ret;

	if (!st->info.writable)
		return -EROFS;
	if (name_ok(kind) || name_ok(name))
		return -EINVAL;
	ret = root_path(st, kind, name, &path);
	if (!ret && unlink(path.data) < 0)
		ret = -errno;
	buf_release(&path);
	return ret;
}
