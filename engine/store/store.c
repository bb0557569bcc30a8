/*
 * store.c - repository config, create/open/close, the writer lock, pack
 * appends and flush (FORMAT.md "Config", "Packs", "Locks").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <lz4.h>
#include <openssl/crypto.h>

#include "store/store_i.h"
#include "util/log.h"
#include "util/util.h"

#define CONFIG_MAX     (64 * 1024)
#define WRITEBACK_STEP (4u << 20) /* start pack writeback every 4 MiB */

int store_path(const struct store *st, const char *rel, struct buf *out)
{
	buf_reset(out);
	return buf_addf(out, "%s/%s", st->repo, rel);
}

static void why_set(struct buf *why, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void why_set(struct buf *why, const char *fmt, ...)
{
	va_list ap;

	if (!why)
		return;
	buf_reset(why);
	va_start(ap, fmt);
	buf_vaddf(why, fmt, ap);
	va_end(ap);
}

/* ---- config ---- */

struct config {
	unsigned format;
	unsigned char id[16];
	uint32_t min, avg, max;
	bool enc;
	unsigned char check[32];
};

static int config_write(const char *repo, const struct config *c)
{
	struct buf text = BUF_INIT, path = BUF_INIT;
	char id[33], check[65];
	int ret;

	util_hex(id, c->id, 16, false);
	util_hex(check, c->check, 32, false);
	ret = buf_addf(&text,
		       "m365fs repository\n"
		       "format %u\n"
		       "id %s\n"
		       "chunker fastcdc %u %u %u\n"
		       "encryption %s\n",
		       c->format, id, c->min, c->avg, c->max,
		       c->enc ? "aes-256-gcm" : "none");
	if (!ret && c->enc)
		ret = buf_addf(&text, "keycheck %s\n", check);
	if (!ret)
		ret = buf_addf(&path, "%s/config", repo);
	if (!ret)
		ret = util_write_file_atomic(path.data, text.data, text.len,
					     0644);
	buf_release(&text);
	buf_release(&path);
	return ret;
}

static int config_parse(char *text, struct config *c)
{
	char *line, *save = NULL, word[32], arg[80];
	bool magic = false, have_id = false, have_chunker = false;
	bool have_enc = false, have_check = false;

	memset(c, 0, sizeof(*c));
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "m365fs repository")) {
			magic = true;
		} else if (sscanf(line, "format %u", &c->format) == 1) {
		} else if (sscanf(line, "id %32s", arg) == 1) {
			if (strlen(arg) != 32 || util_unhex(c->id, 16, arg))
				return -EPROTO;
			have_id = true;
		} else if (sscanf(line, "chunker fastcdc %u %u %u", &c->min,
				  &c->avg, &c->max) == 3) {
			have_chunker = true;
		} else if (sscanf(line, "encryption %31s", word) == 1) {
			if (!strcmp(word, "aes-256-gcm"))
				c->enc = true;
			else if (strcmp(word, "none"))
				return -EPROTO;
			have_enc = true;
		} else if (sscanf(line, "keycheck %64s", arg) == 1) {
			if (strlen(arg) != 64 || util_unhex(c->check, 32, arg))
				return -EPROTO;
			have_check = true;
		}
		/* unknown lines: ignored (later minor additions) */
	}
	if (!magic || !have_id || !have_chunker || !have_enc ||
	    (c->enc && !have_check))
		return -EPROTO;
	if (c->min < 64 || c->avg < c->min || c->max < c->avg ||
	    c->max > CHUNK_LIMIT || (c->avg & (c->avg - 1)))
		return -EPROTO;
	return 0;
}

/* ---- create ---- */

int store_create(const char *repo, const struct store_create_opts *opts,
		 unsigned char key_out[STORE_KEY_LEN], struct buf *why)
{
	static const char *const dirs[] = { "data", "locks", "roots" };
	struct store_create_opts def = { 0 };
	struct store tmp = { 0 };
	struct store_keys keys;
	struct buf path = BUF_INIT;
	struct config c = { 0 };
	struct stat sb;
	int ret;

	if (!opts)
		opts = &def;
	c.format = STORE_FORMAT;
	c.min = opts->chunk_min ? opts->chunk_min : STORE_CHUNK_MIN;
	c.avg = opts->chunk_avg ? opts->chunk_avg : STORE_CHUNK_AVG;
	c.max = opts->chunk_max ? opts->chunk_max : STORE_CHUNK_MAX;
	c.enc = opts->encrypt;
	if (c.min < 64 || c.avg < c.min || c.max < c.avg ||
	    c.max > CHUNK_LIMIT || (c.avg & (c.avg - 1)) ||
	    (c.enc && !key_out)) {
		why_set(why, "invalid repository parameters for '%s'", repo);
		return -EINVAL;
	}
	ret = util_mkdir_p(repo, 0700);
	if (ret) {
		why_set(why, "cannot create directory '%s': %s", repo,
			strerror(-ret));
		return ret;
	}
	ret = buf_addf(&path, "%s/config", repo);
	if (ret)
		goto out;
	if (!stat(path.data, &sb)) {
		why_set(why, "'%s' is already a repository", repo);
		ret = -EEXIST;
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		buf_reset(&path);
		ret = buf_addf(&path, "%s/%s", repo, dirs[i]);
		if (!ret)
			ret = util_mkdir_p(path.data, 0700);
		if (ret) {
			why_set(why, "cannot create directory '%s': %s",
				path.data, strerror(-ret));
			goto out;
		}
	}
	ret = util_random(c.id, sizeof(c.id));
	if (ret)
		goto out;
	if (c.enc) {
		ret = util_random(key_out, STORE_KEY_LEN);
		if (!ret)
			ret = keys_derive(&keys, key_out, c.id);
		if (ret)
			goto out;
		memcpy(c.check, keys.check, 32);
		OPENSSL_cleanse(&keys, sizeof(keys));
	}
	tmp.repo = (char *)repo;
	ret = index_open(&tmp, true);
	index_close(&tmp);
	if (ret) {
		why_set(why, "cannot create the index of '%s': %s", repo,
			strerror(-ret));
		goto out;
	}
	ret = config_write(repo, &c);
	if (ret)
		why_set(why, "cannot write '%s/config': %s", repo,
			strerror(-ret));
out:
	buf_release(&path);
	return ret;
}

/* ---- lock ---- */

static int lock_path(const char *repo, struct buf *out)
{
	buf_reset(out);
	return buf_addf(out, "%s/locks/writer", repo);
}

/* "m365-snapshot (pid 1234 on host, since ...)" from the lock file. */
static int holder_read(int fd, struct buf *out)
{
	char text[1024], cmd[256] = "?", host[256] = "?", since[64] = "?";
	char *line, *save = NULL;
	long pid = 0;
	ssize_t n;

	n = pread(fd, text, sizeof(text) - 1, 0);
	if (n < 0)
		return -errno;
	text[n] = 0;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "pid %ld", &pid) == 1)
			continue;
		if (!strncmp(line, "host ", 5))
			snprintf(host, sizeof(host), "%s", line + 5);
		else if (!strncmp(line, "command ", 8))
			snprintf(cmd, sizeof(cmd), "%s", line + 8);
		else if (!strncmp(line, "since ", 6))
			snprintf(since, sizeof(since), "%s", line + 6);
	}
	if (!pid) /* the holder has not written its line yet */
		return buf_adds(out, "another process");
	return buf_addf(out, "%s (pid %ld on %s, since %s)", cmd, pid, host,
			since);
}

static int lock_take(struct store *st, const char *command, struct buf *why)
{
	struct buf path = BUF_INIT, text = BUF_INIT;
	char host[256] = "", since[32];
	int fd = -1, ret;

	ret = lock_path(st->repo, &path);
	if (ret)
		goto out;
	fd = open(path.data, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		why_set(why, "cannot open lock file '%s': %s", path.data,
			strerror(-ret));
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		if (ret == -EWOULDBLOCK) {
			ret = -EBUSY;
			if (why) {
				buf_reset(why);
				holder_read(fd, why);
			}
		} else {
			why_set(why, "cannot lock '%s': %s", path.data,
				strerror(-ret));
		}
		goto out;
	}
	gethostname(host, sizeof(host) - 1);
	util_time_format(util_now(), since, sizeof(since));
	ret = buf_addf(&text, "pid %ld\nhost %s\ncommand %s\nsince %s\n",
		       (long)getpid(), host, command ? command : "m365fs",
		       since);
	if (ret)
		goto out;
	if (ftruncate(fd, 0) < 0 ||
	    pwrite(fd, text.data, text.len, 0) != (ssize_t)text.len) {
		ret = -errno;
		goto out;
	}
	st->lock_fd = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	buf_release(&path);
	buf_release(&text);
	return ret;
}

int store_lock_holder(const char *repo, struct buf *out)
{
	struct buf path = BUF_INIT;
	int fd = -1, ret;

	ret = lock_path(repo, &path);
	if (ret)
		goto out;
	fd = open(path.data, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	if (!flock(fd, LOCK_SH | LOCK_NB)) {
		ret = -ENOENT; /* nobody holds it */
		goto out;
	}
	ret = holder_read(fd, out);
out:
	if (fd >= 0)
		close(fd);
	buf_release(&path);
	return ret;
}

/* ---- open / close ---- */

/*
 * Give back the room a pack was given beyond its end (pack_new()
 * preallocates it, to spare the file system's per-page allocation on
 * every append).  Only a hint: errors are ignored.
 */
static void pack_trim(int fd)
{
	struct stat sb;

	if (!fstat(fd, &sb) && ftruncate(fd, sb.st_size) < 0)
		log_debug("store: cannot trim a pack: %s", strerror(errno));
}

/* Cut packs a crashed writer left unsealed back to their last chunk. */
static int recover(struct store *st)
{
	sqlite3_stmt *q = NULL;
	struct buf path = BUF_INIT, rel = BUF_INIT;
	int64_t *ids = NULL;
	int64_t *ends = NULL;
	size_t n = 0, a = 0, a_ends = 0;
	int rc, ret = 0;

	pthread_mutex_lock(&st->db_lock);
	rc = sqlite3_prepare_v2(st->db,
				"SELECT p.id, (SELECT max(off + 64 + stored)"
				" FROM chunks c WHERE c.pack = p.id)"
				" FROM packs p WHERE sealed = 0",
				-1, &q, NULL);
	if (rc != SQLITE_OK) {
		ret = index_errno(st, rc, "prepare recovery");
		goto out;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		ret = array_grow(&ids, &a, n + 1, sizeof(*ids));
		if (!ret)
			ret = array_grow(&ends, &a_ends, n + 1, sizeof(*ends));
		if (ret)
			goto out;
		ids[n] = sqlite3_column_int64(q, 0);
		ends[n] = sqlite3_column_type(q, 1) == SQLITE_NULL
				  ? 0
				  : sqlite3_column_int64(q, 1);
		n++;
	}
	if (rc != SQLITE_DONE)
		ret = index_errno(st, rc, "recovery");
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->db_lock);
	for (size_t i = 0; !ret && i < n; i++) {
		char sql[160];

		buf_reset(&rel);
		ret = index_pack_name(st, ids[i], &rel);
		if (ret)
			break;
		ret = store_path(st, "data/", &path);
		if (!ret)
			ret = buf_adds(&path, rel.data);
		if (ret)
			break;
		if (!ends[i]) {
			log_info(
				"store: removing pack '%s' left empty by an interrupted writer",
				rel.data);
			if (unlink(path.data) < 0 && errno != ENOENT) {
				ret = -errno;
				break;
			}
			snprintf(sql, sizeof(sql),
				 "DELETE FROM packs WHERE id = %lld",
				 (long long)ids[i]);
		} else {
			int fd = open(path.data, O_WRONLY | O_CLOEXEC);
			struct stat sb;

			if (fd >= 0 && !fstat(fd, &sb) &&
			    sb.st_size > ends[i]) {
				log_info(
					"store: cutting pack '%s' back to its last committed chunk (%lld of %lld bytes)",
					rel.data, (long long)ends[i],
					(long long)sb.st_size);
				if (ftruncate(fd, ends[i]) < 0 || fsync(fd) < 0)
					ret = -errno;
			} else if (fd >= 0) {
				pack_trim(fd); /* its preallocated room */
			}
			if (fd >= 0)
				close(fd);
			if (ret)
				break;
			snprintf(sql, sizeof(sql),
				 "UPDATE packs SET sealed = 1, size = %lld"
				 " WHERE id = %lld",
				 (long long)ends[i], (long long)ids[i]);
		}
		pthread_mutex_lock(&st->db_lock);
		ret = index_exec(st, sql);
		pthread_mutex_unlock(&st->db_lock);
	}
	free(ids);
	free(ends);
	buf_release(&path);
	buf_release(&rel);
	return ret;
}

int store_open(const char *repo, const struct store_open_opts *opts,
	       struct store **out, struct buf *why)
{
	struct store_open_opts def = { 0 };
	struct buf path = BUF_INIT, text = BUF_INIT;
	struct store *st = NULL;
	bool no_index;
	struct config c;
	int ret;

	*out = NULL;
	if (!opts)
		opts = &def;
	ret = buf_addf(&path, "%s/config", repo);
	if (ret)
		goto out;
	ret = util_read_file(path.data, &text, CONFIG_MAX);
	if (ret) {
		if (ret == -ENOENT)
			why_set(why, "'%s' is not a repository (no 'config')",
				repo);
		else
			why_set(why, "cannot read '%s': %s", path.data,
				strerror(-ret));
		goto out;
	}
	ret = config_parse(text.data, &c);
	if (!ret && (c.format < STORE_FORMAT_MIN || c.format > STORE_FORMAT))
		ret = -EPROTO;
	if (ret) {
		why_set(why,
			"'%s' is not a repository of a format this version reads (format %u)",
			repo, c.format);
		goto out;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		ret = -ENOMEM;
		goto out;
	}
	st->lock_fd = -1;
	pthread_mutex_init(&st->db_lock, NULL);
	pthread_mutex_init(&st->flush_lock, NULL);
	pthread_mutex_init(&st->wlock, NULL);
	pthread_cond_init(&st->wcond, NULL);
	idmap_init(&st->pendmap);
	st->repo = strdup(repo);
	if (!st->repo) {
		ret = -ENOMEM;
		goto out;
	}
	util_hex(st->info.repo_id, c.id, 16, false);
	st->info.format = c.format;
	st->info.encrypted = c.enc;
	st->info.chunk_min = c.min;
	st->info.chunk_avg = c.avg;
	st->info.chunk_max = c.max;
	cdc_init(&st->cdc, c.min, c.avg, c.max);
	st->pack_target =
		opts->pack_target ? opts->pack_target : 64ull * 1024 * 1024;
	if (c.enc) {
		if (!opts->key) {
			why_set(why,
				"repository '%s' is encrypted: give its key",
				repo);
			ret = -ENOKEY;
			goto out;
		}
		ret = keys_derive(&st->keys, opts->key, c.id);
		if (ret)
			goto out;
		if (CRYPTO_memcmp(st->keys.check, c.check, 32)) {
			why_set(why,
				"the key given is not the key of repository '%s'",
				repo);
			log_err("store: the key given is not the key of repository '%s'",
				repo);
			ret = -EKEYREJECTED;
			goto out;
		}
	}
	/* format 1 repositories stay readable by the versions that made them */
	st->keys.chk2 = !c.enc && c.format >= 2;
	if (opts->flags & STORE_OPEN_WRITE) {
		ret = lock_take(st, opts->command, why);
		if (ret)
			goto out;
		st->info.writable = true;
	}
	buf_reset(&path);
	ret = buf_addf(&path, "%s/index.db", repo);
	if (ret)
		goto out;
	no_index = access(path.data, F_OK) < 0 && errno == ENOENT;
	if (no_index && st->info.writable) {
		/* a journal left without its database must not be replayed
		 * onto the new one */
		static const char *const sfx[] = { "-wal", "-shm" };

		for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
			buf_reset(&text);
			if (!buf_addf(&text, "%s%s", path.data, sfx[i]))
				unlink(text.data);
		}
	}
	ret = index_open(st, st->info.writable);
	if (ret) {
		why_set(why,
			no_index
				? "the index of repository '%s' is missing: open it for writing to rebuild it (%s)"
				: "cannot open the index of repository '%s': %s",
			repo, strerror(-ret));
		goto out;
	}
	ret = cache_init(st, opts->cache_bytes ? opts->cache_bytes
					       : 64ull * 1024 * 1024);
	if (!ret)
		ret = fdpool_init(&st->fds, opts->max_fds ? opts->max_fds : 64);
	if (!ret)
		ret = index_hold_start(st, opts->read_hold_ms);
	if (ret)
		goto out;
	if (st->info.writable) {
		ret = recover(st);
		if (ret) {
			why_set(why,
				"cannot recover unfinished packs of '%s': %s",
				repo, strerror(-ret));
			goto out;
		}
	}
	if (st->info.writable && no_index) {
		log_warn(
			"store: the index of repository '%s' is missing: rebuilding it from the packs",
			repo);
		ret = store_index_rebuild(st);
		if (ret) {
			why_set(why, "cannot rebuild the index of '%s': %s",
				repo, strerror(-ret));
			goto out;
		}
	}
	*out = st;
	st = NULL;
out:
	if (st)
		store_close(st);
	buf_release(&path);
	buf_release(&text);
	return ret;
}

void store_info(struct store *st, struct store_info *info)
{
	*info = st->info;
}

int store_close(struct store *st)
{
	int ret = 0;

	if (!st)
		return 0;
	if (st->info.writable && st->db) {
		ret = store_flush(st);
		if (!ret)
			ret = store_seal_pack(st);
	}
	for (size_t i = 0; i < st->nlanes; i++) {
		if (st->lanes[i]->fd >= 0)
			close(st->lanes[i]->fd);
		if (st->lanes[i]->dfd >= 0)
			close(st->lanes[i]->dfd);
		free(st->lanes[i]->stage);
		free(st->lanes[i]);
	}
	free(st->lanes);
	for (size_t i = 0; i < st->nuns; i++)
		close(st->uns[i].fd);
	free(st->uns);
	free(st->pend);
	idmap_release(&st->pendmap);
	fdpool_release(&st->fds);
	cache_release(st);
	index_close(st);
	if (st->lock_fd >= 0) {
		/* a clean release leaves no stale holder description */
		if (ftruncate(st->lock_fd, 0) < 0)
			log_debug("store: cannot clear the lock file");
		close(st->lock_fd);
	}
	pthread_mutex_destroy(&st->db_lock);
	pthread_mutex_destroy(&st->flush_lock);
	pthread_mutex_destroy(&st->wlock);
	pthread_cond_destroy(&st->wcond);
	OPENSSL_cleanse(&st->keys, sizeof(st->keys));
	free(st->repo);
	free(st);
	return ret;
}

/* ---- packs ---- */

static void direct_open(struct store *st, struct lane *l, const char *path,
			const unsigned char *hdr);

/* Create a new pack for lane @l; caller holds st->wlock. */
static int pack_new(struct store *st, struct lane *l)
{
	int64_t id = 0;
	unsigned char rnd[32], hdr[PACK_HDR_LEN];
	char hex[65];
	struct buf rel = BUF_INIT, path = BUF_INIT;
	sqlite3_stmt *q = NULL;
	int fd = -1, dfd = -1, rc, ret;

	ret = util_random(rnd, sizeof(rnd));
	if (ret)
		goto out;
	util_hex(hex, rnd, sizeof(rnd), false);
	ret = buf_addf(&rel, "%.2s/%s.pack", hex, hex);
	if (!ret)
		ret = buf_addf(&path, "%s/data/%.2s", st->repo, hex);
	if (!ret)
		ret = util_mkdir_p(path.data, 0700);
	if (ret)
		goto out;
	pthread_mutex_lock(&st->db_lock);
	rc = sqlite3_prepare_v2(st->db,
				"INSERT INTO packs(name, size, sealed)"
				" VALUES(?, ?, 0)",
				-1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(q, 1, rel.data, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, PACK_HDR_LEN);
		rc = sqlite3_step(q);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		ret = index_errno(st, rc, "add pack");
	else
		id = sqlite3_last_insert_rowid(st->db);
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->db_lock);
	if (ret)
		goto out;
	dfd = open(path.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = buf_addf(&path, "/%s.pack", hex);
	if (ret)
		goto out;
	fd = open(path.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		log_err("store: cannot create pack '%s': %s", path.data,
			strerror(errno));
		goto out;
	}
	/* room for the whole pack at once; pack_trim() gives back the rest
	 * (where the file system cannot, appends allocate as they go) */
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)st->pack_target) < 0)
		log_debug("store: cannot preallocate a pack: %s",
			  strerror(errno));
	pack_hdr_encode(hdr);
	ret = util_write_all(fd, hdr, sizeof(hdr));
	if (ret)
		goto out;
	if (dfd >= 0 && fsync(dfd) < 0) {
		ret = -errno;
		goto out;
	}
	l->fd = fd;
	l->pack = id;
	l->off = PACK_HDR_LEN;
	l->disk = PACK_HDR_LEN;
	l->wb = 0;
	fd = -1;
	direct_open(st, l, path.data, hdr);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	buf_release(&rel);
	buf_release(&path);
	return ret;
}

/* Write the @cnt buffers of @iov (changed) whole to @off of @fd. */
static int pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t off)
{
	while (cnt) {
		ssize_t w = pwritev(fd, iov, cnt, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (!w)
			return -EIO;
		off += (uint64_t)w;
		for (; cnt && (size_t)w >= iov->iov_len; cnt--, iov++)
			w -= (ssize_t)iov->iov_len;
		if (cnt) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/*
 * Write record header @hdr and then @n payload bytes at @p to @off of
 * @fd, in one system call when the kernel takes them whole.
 */
static int pwrite_rec(int fd, const unsigned char *hdr, const unsigned char *p,
		      size_t n, uint64_t off)
{
	struct iovec iov[2] = { { (void *)hdr, CHUNK_HDR_LEN },
				{ (void *)p, n } };

	return pwritev_all(fd, iov, 2, off);
}

/*
 * Open the new pack of lane @l (at @path, header @hdr written) for direct
 * writes too, where the file system takes them; otherwise the lane
 * appends through the page cache.  Caller holds wlock.
 */
static void direct_open(struct store *st, struct lane *l, const char *path,
			const unsigned char *hdr)
{
	void *p;

	l->dfd = -1;
	if (st->no_direct)
		return;
	if (!l->stage) {
		if (posix_memalign(&p, STAGE_ALIGN, STAGE_CAP))
			return;
		l->stage = p;
	}
	l->dfd = open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (l->dfd < 0) {
		log_debug("store: packs are written through the page cache: %s",
			  strerror(errno));
		st->no_direct = true;
		return;
	}
	memcpy(l->stage, hdr, PACK_HDR_LEN);
	l->stage_off = 0;
}

/*
 * Write the staged bytes of lane @l up to @end: its whole blocks past the
 * page cache, the partial last block too when @all (through the page
 * cache), which then stays staged for the next records.  A file system
 * that refuses the direct write gets everything through the page cache
 * and the lane appends that way from then on.  Caller owns the stage
 * (l->busy, or wlock with the lane idle); l->disk is the caller's.
 */
static int stage_out(struct store *st, struct lane *l, uint64_t end, bool all)
{
	size_t n = (size_t)(end - l->stage_off);
	size_t whole = n / STAGE_ALIGN * STAGE_ALIGN;
	struct iovec iov;
	int ret = 0;

	if (whole) {
		iov = (struct iovec){ l->stage, whole };
		ret = pwritev_all(l->dfd, &iov, 1, l->stage_off);
	}
	if (ret == -EINVAL) {
		log_info(
			"store: the file system refuses direct writes to packs: writing them through the page cache");
		st->no_direct = true;
		close(l->dfd);
		l->dfd = -1;
		iov = (struct iovec){ l->stage, n };
		return pwritev_all(l->fd, &iov, 1, l->stage_off);
	}
	if (!ret && all && n > whole) {
		iov = (struct iovec){ l->stage + whole, n - whole };
		ret = pwritev_all(l->fd, &iov, 1, l->stage_off + whole);
	}
	if (!ret && whole) {
		memmove(l->stage, l->stage + whole, n - whole);
		l->stage_off += whole;
	}
	return ret;
}

/*
 * Stage record @rec (header) and @plen bytes of @payload at @off of lane
 * @l (held, busy), writing whole blocks out once STAGE_WRITE are staged.
 * A record larger than the stage's room goes through the page cache.
 * Sets *@disk to what is in the file now.
 */
static int stage_rec(struct store *st, struct lane *l, const unsigned char *rec,
		     const unsigned char *payload, size_t plen, uint64_t off,
		     uint64_t *disk)
{
	uint64_t end = off + CHUNK_HDR_LEN + plen;
	int ret = 0;

	*disk = 0;
	if (end - l->stage_off > STAGE_CAP) {
		ret = stage_out(st, l, off, true);
		*disk = off;
	}
	if (!ret && l->dfd >= 0 && end - l->stage_off > STAGE_CAP) {
		/* too large to stage: the partial block it ends in stays */
		uint64_t blk = end / STAGE_ALIGN * STAGE_ALIGN;

		ret = pwrite_rec(l->fd, rec, payload, plen, off);
		if (!ret) {
			memcpy(l->stage, payload + plen - (end - blk),
			       (size_t)(end - blk));
			l->stage_off = blk;
			*disk = end;
		}
		return ret;
	}
	if (!ret && l->dfd < 0) { /* no longer direct */
		ret = pwrite_rec(l->fd, rec, payload, plen, off);
		*disk = end;
	}
	if (ret || l->dfd < 0)
		return ret;
	memcpy(l->stage + (off - l->stage_off), rec, CHUNK_HDR_LEN);
	memcpy(l->stage + (off - l->stage_off) + CHUNK_HDR_LEN, payload, plen);
	if (end - l->stage_off >= STAGE_WRITE) {
		ret = stage_out(st, l, end, false);
		if (!ret && l->stage_off > *disk)
			*disk = l->stage_off;
		if (!ret && l->dfd < 0)
			*disk = end;
	}
	return ret;
}

/*
 * Make the records of lane @l readable: write out its staged bytes
 * (waiting for its appender).  Caller holds wlock, released meanwhile.
 */
static int lane_drain(struct store *st, struct lane *l)
{
	uint64_t end;
	int ret;

	while (l->busy && !st->werr)
		pthread_cond_wait(&st->wcond, &st->wlock);
	if (st->werr)
		return st->werr;
	if (l->dfd < 0 || l->disk >= l->off)
		return 0;
	end = l->off;
	l->busy = true;
	pthread_mutex_unlock(&st->wlock);
	ret = stage_out(st, l, end, true);
	pthread_mutex_lock(&st->wlock);
	l->busy = false;
	if (!ret && end > l->disk)
		l->disk = end;
	if (ret && !st->werr) {
		log_err("store: cannot append to a pack: %s", strerror(-ret));
		st->werr = ret;
	}
	pthread_cond_broadcast(&st->wcond);
	return ret;
}

/*
 * Rotate lane @l to a new pack when @len more bytes would overflow its
 * pack, and reserve @len bytes in it for the record of header @rec: its
 * pending row (busy until written), its place in *@fd at *@off.  Caller
 * holds wlock.
 */
static int reserve(struct store *st, struct lane *l, const unsigned char *rec,
		   size_t len, int *fd, uint64_t *off)
{
	struct pending *p;
	int ret;

	if (l->fd >= 0 && l->off > PACK_HDR_LEN &&
	    l->off + len > st->pack_target) {
		ret = array_grow(&st->uns, &st->auns, st->nuns + 1,
				 sizeof(*st->uns));
		if (!ret && l->dfd >= 0 && l->disk < l->off) {
			ret = stage_out(st, l, l->off, true);
			if (ret) { /* a hole: nothing after it may commit */
				log_err("store: cannot append to a pack: %s",
					strerror(-ret));
				st->werr = ret;
			}
		}
		if (ret)
			return ret;
		l->disk = l->off;
		if (l->dfd >= 0)
			close(l->dfd);
		l->dfd = -1;
		st->uns[st->nuns].fd = l->fd;
		st->uns[st->nuns].pack = l->pack;
		st->uns[st->nuns].size = l->off;
		st->nuns++;
		l->fd = -1;
	}
	if (l->fd < 0) {
		ret = pack_new(st, l);
		if (ret)
			return ret;
	}
	ret = array_grow(&st->pend, &st->apend, st->npend + 1,
			 sizeof(*st->pend));
	if (!ret)
		ret = idmap_put(&st->pendmap, rec + 8, st->npend);
	if (ret)
		return ret;
	p = &st->pend[st->npend++];
	memcpy(p->id, rec + 8, 32);
	p->loc.pack = l->pack;
	p->loc.off = l->off;
	p->loc.flags = rec[4];
	p->loc.plain = le32_get(rec + 40);
	p->loc.stored = le32_get(rec + 44);
	p->busy = true;
	*fd = l->fd;
	*off = l->off;
	l->off += len;
	st->inflight++;
	return 0;
}

/*
 * A free lane for an appender, preferring one with an open pack (a new
 * lane only when every one is held); caller holds wlock.
 */
static int lane_take(struct store *st, struct lane **out)
{
	struct lane *l = NULL;
	int ret;

	for (size_t i = 0; i < st->nlanes; i++) {
		if (st->lanes[i]->held)
			continue;
		if (!l || (l->fd < 0 && st->lanes[i]->fd >= 0))
			l = st->lanes[i];
	}
	if (!l) {
		ret = array_grow(&st->lanes, &st->alanes, st->nlanes + 1,
				 sizeof(*st->lanes));
		if (ret)
			return ret;
		l = calloc(1, sizeof(*l));
		if (!l)
			return -ENOMEM;
		l->fd = -1;
		l->dfd = -1;
		st->lanes[st->nlanes++] = l;
	}
	l->held = true;
	*out = l;
	return 0;
}

void store_lane_release(struct store *st, struct lane **lane)
{
	if (!*lane)
		return;
	pthread_mutex_lock(&st->wlock);
	(*lane)->held = false;
	pthread_mutex_unlock(&st->wlock);
	*lane = NULL;
}

int store_append(struct store *st, struct lane **lane, const unsigned char *rec,
		 const unsigned char *payload, size_t plen, bool dedup,
		 bool *dup)
{
	uint64_t off, wb = 0, wb_end = 0, v, disk = 0;
	size_t len = CHUNK_HDR_LEN + plen;
	struct lane *l = NULL;
	bool direct = false;
	int fd = -1, ret;

	*dup = false;
	pthread_mutex_lock(&st->wlock);
	for (;;) {
		while (st->flushing && !st->werr)
			pthread_cond_wait(&st->wcond, &st->wlock);
		ret = st->werr;
		if (!ret && dedup && idmap_get(&st->pendmap, rec + 8, &v)) {
			*dup = true;
			goto out;
		}
		if (!ret && !*lane)
			ret = lane_take(st, lane);
		if (ret)
			goto out;
		l = *lane;
		if (!l->busy) /* else a reader writes its stage out */
			break;
		pthread_cond_wait(&st->wcond, &st->wlock);
	}
	ret = reserve(st, l, rec, len, &fd, &off);
	if (ret)
		goto out;
	direct = l->dfd >= 0;
	if (direct) {
		l->busy = true;
	} else if (l->off - l->wb >= WRITEBACK_STEP) {
		/*
		 * Start writing back what was appended while the next chunks
		 * are prepared, so that store_flush() finds little left to
		 * write: its fsync is then short.  Only a hint; errors show
		 * up at the fsync.
		 */
		wb = l->wb;
		wb_end = l->off;
		l->wb = l->off;
	}
	pthread_mutex_unlock(&st->wlock);

	/* other writers append meanwhile; a flush waits for this one */
	if (direct)
		ret = stage_rec(st, l, rec, payload, plen, off, &disk);
	else
		ret = pwrite_rec(fd, rec, payload, plen, off);
	if (!ret && wb_end)
		sync_file_range(fd, (off_t)wb, (off_t)(wb_end - wb),
				SYNC_FILE_RANGE_WRITE);

	pthread_mutex_lock(&st->wlock);
	st->inflight--;
	if (direct) {
		l->busy = false;
		if (disk > l->disk)
			l->disk = disk;
	}
	if (ret) {
		/* a hole in the pack now: nothing after it may commit */
		log_err("store: cannot append to a pack: %s", strerror(-ret));
		if (!st->werr)
			st->werr = ret;
	} else if (idmap_get(&st->pendmap, rec + 8, &v)) {
		st->pend[v].busy = false;
	}
	pthread_cond_broadcast(&st->wcond);
out:
	pthread_mutex_unlock(&st->wlock);
	return ret;
}

/* store_locate(); @data: and make its record readable in the pack. */
static int locate(struct store *st, const unsigned char *id, struct loc *loc,
		  bool data)
{
	uint64_t v;
	bool hit;
	int ret = 0;

	pthread_mutex_lock(&st->wlock);
	/* a chunk being written is there once its write is done */
	while ((hit = idmap_get(&st->pendmap, id, &v)) && st->pend[v].busy &&
	       !st->werr)
		pthread_cond_wait(&st->wcond, &st->wlock);
	if (hit && st->pend[v].busy)
		ret = st->werr;
	else if (hit)
		*loc = st->pend[v].loc;
	for (size_t i = 0; hit && !ret && data && i < st->nlanes; i++) {
		struct lane *l = st->lanes[i];

		if (l->fd >= 0 && l->pack == loc->pack &&
		    l->disk < loc->off + CHUNK_HDR_LEN + loc->stored)
			ret = lane_drain(st, l);
	}
	pthread_mutex_unlock(&st->wlock);
	if (hit)
		return ret;
	return index_get(st, id, loc);
}

int store_locate(struct store *st, const unsigned char *id, struct loc *loc)
{
	return locate(st, id, loc, false);
}

int store_locate_data(struct store *st, const unsigned char *id,
		      struct loc *loc)
{
	return locate(st, id, loc, true);
}

/*
 * Commit the index rows @rows (@n) and the sizes of the packs: @uns
 * (@nuns, sealed now) and @open (@nopen, still appended to).
 */
static int commit_rows(struct store *st, const struct pending *rows, size_t n,
		       const struct unsynced *uns, size_t nuns,
		       const struct unsynced *open, size_t nopen)
{
	sqlite3_stmt *ins = NULL, *upd = NULL;
	int rc, ret;

	pthread_mutex_lock(&st->db_lock);
	ret = index_exec(st, "BEGIN IMMEDIATE");
	if (ret)
		goto out;
	rc = sqlite3_prepare_v2(st->db,
				"INSERT OR REPLACE INTO chunks"
				" VALUES(?, ?, ?, ?, ?, ?)",
				-1, &ins, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(st->db,
					"UPDATE packs SET size = ?,"
					" sealed = sealed OR ? WHERE id = ?",
					-1, &upd, NULL);
	if (rc != SQLITE_OK) {
		ret = index_errno(st, rc, "prepare commit");
		goto rollback;
	}
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_blob(ins, 1, rows[i].id, 32, SQLITE_STATIC);
		sqlite3_bind_int64(ins, 2, rows[i].loc.pack);
		sqlite3_bind_int64(ins, 3, (int64_t)rows[i].loc.off);
		sqlite3_bind_int64(ins, 4, rows[i].loc.stored);
		sqlite3_bind_int64(ins, 5, rows[i].loc.plain);
		sqlite3_bind_int(ins, 6, rows[i].loc.flags);
		rc = sqlite3_step(ins);
		sqlite3_reset(ins);
		if (rc != SQLITE_DONE) {
			ret = index_errno(st, rc, "insert chunk");
			goto rollback;
		}
	}
	for (size_t i = 0; i < nuns + nopen; i++) {
		const struct unsynced *u = i < nuns ? &uns[i] : &open[i - nuns];

		sqlite3_bind_int64(upd, 1, (int64_t)u->size);
		sqlite3_bind_int(upd, 2, i < nuns);
		sqlite3_bind_int64(upd, 3, u->pack);
		rc = sqlite3_step(upd);
		sqlite3_reset(upd);
		if (rc != SQLITE_DONE) {
			ret = index_errno(st, rc, "update pack");
			goto rollback;
		}
	}
	ret = index_exec(st, "COMMIT");
	if (!ret)
		goto out;
rollback:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
	sqlite3_finalize(ins);
	sqlite3_finalize(upd);
	pthread_mutex_unlock(&st->db_lock);
	return ret;
}

/* fsync (@data: fdatasync) the packs @u (@n); 0 or -errno. */
static int packs_sync(const struct unsynced *u, size_t n, bool data)
{
	for (size_t i = 0; i < n; i++) {
		if ((data ? fdatasync(u[i].fd) : fsync(u[i].fd)) < 0) {
			int ret = -errno;

			log_err("store: cannot fsync a pack: %s",
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int store_flush(struct store *st)
{
	struct pending *rows = NULL;
	struct unsynced *uns = NULL, *open = NULL;
	size_t n, nuns, nopen = 0;
	int ret = 0;

	if (!st->info.writable)
		return -EROFS;
	pthread_mutex_lock(&st->flush_lock);
	pthread_mutex_lock(&st->wlock);
	/* the appends reserved so far finish writing; new ones wait */
	st->flushing = true;
	while (st->inflight)
		pthread_cond_wait(&st->wcond, &st->wlock);
	/* staged records into the packs, so that the fsync covers them */
	for (size_t i = 0; !st->werr && i < st->nlanes; i++)
		if (st->lanes[i]->fd >= 0)
			lane_drain(st, st->lanes[i]);
	st->flushing = false;
	pthread_cond_broadcast(&st->wcond);
	if (st->werr) {
		ret = st->werr;
		pthread_mutex_unlock(&st->wlock);
		pthread_mutex_unlock(&st->flush_lock);
		return ret;
	}
	n = st->npend;
	nuns = st->nuns;
	if (n) {
		rows = malloc(n * sizeof(*rows));
		if (rows)
			memcpy(rows, st->pend, n * sizeof(*rows));
	}
	if (st->nlanes)
		open = malloc(st->nlanes * sizeof(*open));
	for (size_t i = 0; open && i < st->nlanes; i++) {
		const struct lane *l = st->lanes[i];

		if (l->fd >= 0)
			open[nopen++] =
				(struct unsynced){ l->fd, l->pack, l->off };
	}
	uns = st->uns;
	st->uns = NULL;
	st->nuns = st->auns = 0;
	pthread_mutex_unlock(&st->wlock);
	if ((n && !rows) || (st->nlanes && !open)) {
		ret = -ENOMEM;
		goto out;
	}
	/* a lane's pack stays open until this flush is over (flush_lock) */
	ret = packs_sync(uns, nuns, false);
	if (!ret)
		ret = packs_sync(open, nopen, true);
	if (ret)
		goto out;
	if (!n && !nuns)
		goto out;
	ret = commit_rows(st, rows, n, uns, nuns, open, nopen);
	if (ret)
		goto out;
	pthread_mutex_lock(&st->wlock);
	memmove(st->pend, st->pend + n, (st->npend - n) * sizeof(*st->pend));
	st->npend -= n;
	idmap_clear(&st->pendmap);
	for (size_t i = 0; i < st->npend; i++)
		idmap_put(&st->pendmap, st->pend[i].id, i);
	pthread_mutex_unlock(&st->wlock);
	for (size_t i = 0; i < nuns; i++) {
		pack_trim(uns[i].fd);
		close(uns[i].fd);
	}
	nuns = 0;
out:
	if (nuns) {
		/* keep them for the next flush */
		pthread_mutex_lock(&st->wlock);
		for (size_t i = 0; i < nuns; i++) {
			if (array_grow(&st->uns, &st->auns, st->nuns + 1,
				       sizeof(*st->uns))) {
				close(uns[i].fd);
				continue;
			}
			st->uns[st->nuns++] = uns[i];
		}
		pthread_mutex_unlock(&st->wlock);
	}
	free(uns);
	free(open);
	free(rows);
	pthread_mutex_unlock(&st->flush_lock);
	return ret;
}

int store_seal_pack(struct store *st)
{
	char sql[128];
	int ret = 0;

	pthread_mutex_lock(&st->flush_lock);
	pthread_mutex_lock(&st->wlock);
	for (size_t i = 0;
	     !ret && !st->npend && !st->nuns && !st->inflight && i < st->nlanes;
	     i++) {
		struct lane *l = st->lanes[i];

		if (l->fd < 0 || l->held)
			continue;
		snprintf(sql, sizeof(sql),
			 "UPDATE packs SET sealed = 1, size = %llu"
			 " WHERE id = %lld",
			 (unsigned long long)l->off, (long long)l->pack);
		pthread_mutex_lock(&st->db_lock);
		ret = index_exec(st, sql);
		pthread_mutex_unlock(&st->db_lock);
		if (!ret) {
			pack_trim(l->fd);
			close(l->fd);
			l->fd = -1;
			if (l->dfd >= 0)
				close(l->dfd);
			l->dfd = -1;
		}
	}
	pthread_mutex_unlock(&st->wlock);
	pthread_mutex_unlock(&st->flush_lock);
	return ret;
}
