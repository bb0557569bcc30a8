/*
 * maint.c - check, index rebuild and prune.  None of them may run while
 * writers of the same store are active (store.h).
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

struct pack_row {
	int64_t id;
	char *name;
	uint64_t size;
	bool sealed;
};

struct chunk_row {
	unsigned char id[32];
	struct loc loc;
};

static void pack_rows_free(struct pack_row *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].name);
	free(p);
}

static int packs_load(struct store *st, const char *where,
		      struct pack_row **out, size_t *n)
{
	struct pack_row *v = NULL;
	sqlite3_stmt *q = NULL;
	char sql[160];
	size_t a = 0;
	int rc, ret = 0;

	*n = 0;
	snprintf(sql, sizeof(sql),
		 "SELECT id, name, size, sealed FROM packs %s ORDER BY id",
		 where);
	pthread_mutex_lock(&st->db_lock);
	rc = sqlite3_prepare_v2(st->db, sql, -1, &q, NULL);
	if (rc != SQLITE_OK) {
		ret = index_errno(st, rc, "prepare packs");
		goto out;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		ret = array_grow(&v, &a, *n + 1, sizeof(*v));
		if (ret)
			goto out;
		v[*n].id = sqlite3_column_int64(q, 0);
		v[*n].name = strdup((const char *)sqlite3_column_text(q, 1));
		v[*n].size = (uint64_t)sqlite3_column_int64(q, 2);
		v[*n].sealed = sqlite3_column_int(q, 3);
		if (!v[*n].name) {
			ret = -ENOMEM;
			goto out;
		}
		(*n)++;
	}
	if (rc != SQLITE_DONE)
		ret = index_errno(st, rc, "packs");
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->db_lock);
	if (ret) {
		pack_rows_free(v, *n);
		v = NULL;
		*n = 0;
	}
	*out = v;
	return ret;
}

static int chunks_load(struct store *st, int64_t pack, struct chunk_row **out,
		       size_t *n)
{
	struct chunk_row *v = NULL;
	sqlite3_stmt *q = NULL;
	size_t a = 0;
	int rc, ret = 0;

	*n = 0;
	pthread_mutex_lock(&st->db_lock);
	rc = sqlite3_prepare_v2(
		st->db,
		"SELECT id, off, stored, plain, flags FROM chunks"
		" WHERE pack = ? ORDER BY off",
		-1, &q, NULL);
	if (rc != SQLITE_OK) {
		ret = index_errno(st, rc, "prepare chunks");
		goto out;
	}
	sqlite3_bind_int64(q, 1, pack);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (sqlite3_column_bytes(q, 0) != 32)
			continue;
		ret = array_grow(&v, &a, *n + 1, sizeof(*v));
		if (ret)
			goto out;
		memcpy(v[*n].id, sqlite3_column_blob(q, 0), 32);
		v[*n].loc.pack = pack;
		v[*n].loc.off = (uint64_t)sqlite3_column_int64(q, 1);
		v[*n].loc.stored = (uint32_t)sqlite3_column_int64(q, 2);
		v[*n].loc.plain = (uint32_t)sqlite3_column_int64(q, 3);
		v[*n].loc.flags = (uint8_t)sqlite3_column_int(q, 4);
		(*n)++;
	}
	if (rc != SQLITE_DONE)
		ret = index_errno(st, rc, "chunks");
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->db_lock);
	if (ret) {
		free(v);
		v = NULL;
		*n = 0;
	}
	*out = v;
	return ret;
}

static int pack_file(struct store *st, const char *name, struct buf *out)
{
	buf_reset(out);
	return buf_addf(out, "%s/data/%s", st->repo, name);
}

/* ---- check ---- */

struct check {
	struct store *st;
	void (*fn)(void *arg, const struct store_problem *p);
	void *arg;
	struct store_check_stats stats;
	const char *pack;
	uint64_t size;
	struct idmap seen; /* id -> offset of records that parse */
};

static void problem(struct check *c, enum store_problem_kind kind,
		    const unsigned char *id, uint64_t off, int err,
		    const char *what)
{
	struct store_problem p = { kind, id, c->pack, off, err, what };

	c->stats.problems++;
	if (kind != STORE_PROBLEM_CHUNK)
		log_warn("store: pack '%s' at offset %llu: %s", c->pack,
			 (unsigned long long)off, what);
	if (c->fn)
		c->fn(c->arg, &p);
}

static int check_rec(void *arg, uint64_t off, const unsigned char *raw,
		     const struct chunk_hdr *h)
{
	struct check *c = arg;

	(void)raw;
	c->stats.chunks++;
	c->stats.bytes += CHUNK_HDR_LEN + h->stored;
	return idmap_put(&c->seen, h->id, off);
}

static int check_bad(void *arg, uint64_t off, uint64_t end)
{
	struct check *c = arg;

	if (end >= c->size)
		problem(c, STORE_PROBLEM_TORN_TAIL, NULL, off, -EBADMSG,
			"pack ends in an incomplete record");
	else
		problem(c, STORE_PROBLEM_PACK, NULL, off, -EBADMSG,
			"unparsable bytes in pack");
	return 0;
}

static int check_pack(struct check *c, const struct pack_row *p, int flags)
{
	struct pack_walk pw = { check_rec, check_bad, c };
	struct buf path = BUF_INIT, tmp = BUF_INIT;
	struct chunk_row *rows = NULL;
	struct stat sb;
	size_t n = 0;
	uint64_t off;
	int fd = -1, ret;

	c->pack = p->name;
	idmap_clear(&c->seen);
	ret = chunks_load(c->st, p->id, &rows, &n);
	if (!ret)
		ret = pack_file(c->st, p->name, &path);
	if (ret)
		goto out;
	c->stats.packs++;
	if (!p->sealed && !n)
		goto out; /* a writer's new pack, nothing committed yet */
	fd = open(path.data, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		problem(c, STORE_PROBLEM_PACK, NULL, 0, -errno,
			"pack missing or unreadable");
		for (size_t i = 0; i < n; i++)
			problem(c, STORE_PROBLEM_CHUNK, rows[i].id,
				rows[i].loc.off, -ENOENT, "pack missing");
		goto out;
	}
	c->size = (uint64_t)sb.st_size;
	if (!p->sealed && c->size > p->size)
		c->size = p->size; /* a writer is still appending */
	ret = pack_walk(fd, c->size, &pw);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!idmap_get(&c->seen, rows[i].id, &off) ||
		    off != rows[i].loc.off) {
			problem(c, STORE_PROBLEM_CHUNK, rows[i].id,
				rows[i].loc.off, -EBADMSG,
				"chunk record not found where the index says");
			continue;
		}
		if (!(flags & STORE_CHECK_READ_DATA))
			continue;
		buf_reset(&tmp);
		ret = store_chunk_load(c->st, rows[i].id, &rows[i].loc, true,
				       &tmp, NULL);
		if (ret == -EBADMSG || ret == -ENOENT || ret == -EIO)
			problem(c, STORE_PROBLEM_CHUNK, rows[i].id,
				rows[i].loc.off, ret, "chunk damaged");
		else if (ret)
			goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(rows);
	buf_release(&path);
	buf_release(&tmp);
	return ret;
}

/* Index rows whose pack is not in the packs table. */
static int check_strays(struct check *c)
{
	struct store *st = c->st;
	sqlite3_stmt *q = NULL;
	unsigned char(*ids)[32] = NULL;
	size_t n = 0, a = 0;
	int rc, ret = 0;

	pthread_mutex_lock(&st->db_lock);
	rc = sqlite3_prepare_v2(st->db,
				"SELECT id FROM chunks WHERE pack NOT IN"
				" (SELECT id FROM packs)",
				-1, &q, NULL);
	if (rc != SQLITE_OK) {
		ret = index_errno(st, rc, "prepare strays");
		goto out;
	}
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		ret = array_grow(&ids, &a, n + 1, 32);
		if (ret)
			goto out;
		if (sqlite3_column_bytes(q, 0) == 32)
			memcpy(ids[n++], sqlite3_column_blob(q, 0), 32);
	}
	if (rc != SQLITE_DONE)
		ret = index_errno(st, rc, "strays");
out:
	sqlite3_finalize(q);
	pthread_mutex_unlock(&st->db_lock);
	c->pack = NULL;
	for (size_t i = 0; i < n; i++)
		problem(c, STORE_PROBLEM_CHUNK, ids[i], 0, -ENOENT,
			"index names a pack that does not exist");
	free(ids);
	return ret;
}

int store_check(struct store *st, int flags,
		void (*fn)(void *arg, const struct store_problem *p), void *arg,
		struct store_check_stats *stats)
{
	struct check c = { .st = st, .fn = fn, .arg = arg };
	struct pack_row *packs = NULL;
	size_t n = 0;
	int ret;

	idmap_init(&c.seen);
	ret = packs_load(st, "", &packs, &n);
	for (size_t i = 0; !ret && i < n; i++)
		ret = check_pack(&c, &packs[i], flags);
	if (!ret)
		ret = check_strays(&c);
	if (!ret)
		ret = roots_check(st, fn, arg, &c.stats.problems);
	pack_rows_free(packs, n);
	idmap_release(&c.seen);
	if (stats)
		*stats = c.stats;
	if (!ret && c.stats.problems)
		ret = -EBADMSG;
	return ret;
}

/* ---- pack files on disk ---- */

/* Call @fn with each "xx/name.pack" under REPO/data. */
static int packs_on_disk(struct store *st,
			 int (*fn)(void *arg, const char *rel), void *arg)
{
	struct buf dir = BUF_INIT, sub = BUF_INIT, rel = BUF_INIT;
	DIR *d = NULL, *s = NULL;
	struct dirent *de, *se;
	int ret;

	ret = store_path(st, "data", &dir);
	if (ret)
		goto out;
	d = opendir(dir.data);
	if (!d) {
		ret = -errno;
		goto out;
	}
	while ((de = readdir(d))) {
		if (strlen(de->d_name) != 2)
			continue;
		buf_reset(&sub);
		ret = buf_addf(&sub, "%s/%s", dir.data, de->d_name);
		if (ret)
			goto out;
		s = opendir(sub.data);
		if (!s)
			continue;
		while ((se = readdir(s))) {
			size_t l = strlen(se->d_name);

			if (l < 6 || strcmp(se->d_name + l - 5, ".pack"))
				continue;
			buf_reset(&rel);
			ret = buf_addf(&rel, "%s/%s", de->d_name, se->d_name);
			if (!ret)
				ret = fn(arg, rel.data);
			if (ret)
				goto out;
		}
		closedir(s);
		s = NULL;
	}
	ret = 0;
out:
	if (s)
		closedir(s);
	if (d)
		closedir(d);
	buf_release(&dir);
	buf_release(&sub);
	buf_release(&rel);
	return ret;
}

/* ---- rebuild ---- */

struct rebuild {
	struct store *st;
	int fd;
	const char *pack;
	sqlite3_stmt *ins;
	int64_t pack_id;
	struct buf rec, plain;
	uint64_t chunks, skipped;
};

static int rebuild_rec(void *arg, uint64_t off, const unsigned char *raw,
		       const struct chunk_hdr *h)
{
	struct rebuild *r = arg;
	int ret, rc;

	buf_reset(&r->rec);
	buf_reset(&r->plain);
	ret = buf_grow(&r->rec, h->stored);
	if (ret)
		return ret;
	ret = util_pread_all(r->fd, r->rec.data, h->stored,
			     (off_t)(off + CHUNK_HDR_LEN));
	if (!ret)
		ret = chunk_unseal(&r->st->keys, raw, h, r->rec.data, true,
				   &r->plain);
	if (ret) {
		log_warn(
			"store: rebuild: skipping damaged chunk in pack '%s' at offset %llu",
			r->pack, (unsigned long long)off);
		r->skipped++;
		return ret == -ENOMEM ? ret : 0;
	}
	sqlite3_bind_blob(r->ins, 1, h->id, 32, SQLITE_STATIC);
	sqlite3_bind_int64(r->ins, 2, r->pack_id);
	sqlite3_bind_int64(r->ins, 3, (int64_t)off);
	sqlite3_bind_int64(r->ins, 4, h->stored);
	sqlite3_bind_int64(r->ins, 5, h->plain);
	sqlite3_bind_int(r->ins, 6, h->flags);
	rc = sqlite3_step(r->ins);
	sqlite3_reset(r->ins);
	if (rc != SQLITE_DONE)
		return index_errno(r->st, rc, "rebuild insert");
	r->chunks++;
	return 0;
}

static int rebuild_bad(void *arg, uint64_t off, uint64_t end)
{
	struct rebuild *r = arg;

	log_warn(
		"store: rebuild: skipping unparsable bytes %llu-%llu of pack '%s'",
		(unsigned long long)off, (unsigned long long)end, r->pack);
	return 0;
}

static int rebuild_pack(void *arg, const char *rel)
{
	struct rebuild *r = arg;
	struct pack_walk pw = { rebuild_rec, rebuild_bad, r };
	struct buf path = BUF_INIT;
	sqlite3_stmt *q = NULL;
	struct stat sb;
	int rc, ret;

	r->pack = rel;
	ret = pack_file(r->st, rel, &path);
	if (ret)
		goto out;
	r->fd = open(path.data, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0 || fstat(r->fd, &sb) < 0) {
		ret = -errno;
		goto out;
	}
	rc = sqlite3_prepare_v2(r->st->db,
				"INSERT INTO packs(name, size, sealed)"
				" VALUES(?, ?, 1)",
				-1, &q, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(q, 1, rel, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, sb.st_size);
		rc = sqlite3_step(q);
	}
	if (rc != SQLITE_DONE) {
		ret = index_errno(r->st, rc, "rebuild pack");
		goto out;
	}
	r->pack_id = sqlite3_last_insert_rowid(r->st->db);
	ret = pack_walk(r->fd, (uint64_t)sb.st_size, &pw);
out:
	sqlite3_finalize(q);
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	buf_release(&path);
	return ret;
}

int store_index_rebuild(struct store *st)
{
	struct rebuild r = { .st = st, .fd = -1 };
	int rc, ret;

	if (!st->info.writable)
		return -EROFS;
	ret = store_flush(st);
	if (!ret)
		ret = store_seal_pack(st);
	if (ret)
		return ret;
	fdpool_drop(st, -1); /* pack ids change */
	buf_init(&r.rec, 0);
	buf_init(&r.plain, 0);
	pthread_mutex_lock(&st->db_lock);
	ret = index_exec(st, "BEGIN IMMEDIATE;"
			     "DELETE FROM chunks; DELETE FROM packs;");
	if (ret)
		goto out;
	rc = sqlite3_prepare_v2(st->db,
				"INSERT OR IGNORE INTO chunks"
				" VALUES(?, ?, ?, ?, ?, ?)",
				-1, &r.ins, NULL);
	if (rc != SQLITE_OK) {
		ret = index_errno(st, rc, "prepare rebuild");
		goto rollback;
	}
	ret = packs_on_disk(st, rebuild_pack, &r);
	if (ret)
		goto rollback;
	ret = index_exec(st, "COMMIT");
	if (!ret) {
		log_info(
			"store: index rebuilt: %llu chunks, %llu damaged skipped",
			(unsigned long long)r.chunks,
			(unsigned long long)r.skipped);
		goto out;
	}
rollback:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
out:
	sqlite3_finalize(r.ins);
	pthread_mutex_unlock(&st->db_lock);
	buf_release(&r.rec);
	buf_release(&r.plain);
	return ret;
}

/* ---- prune ---- */

static int drop_pack(struct store *st, const struct pack_row *p)
{
	struct buf path = BUF_INIT;
	char sql[160];
	int ret;

	snprintf(sql, sizeof(sql),
		 "BEGIN IMMEDIATE; DELETE FROM chunks WHERE pack = %lld;"
		 " DELETE FROM packs WHERE id = %lld; COMMIT;",
		 (long long)p->id, (long long)p->id);
	pthread_mutex_lock(&st->db_lock);
	ret = index_exec(st, sql);
	if (ret)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	pthread_mutex_unlock(&st->db_lock);
	if (ret)
		return ret;
	fdpool_drop(st, p->id);
	ret = pack_file(st, p->name, &path);
	if (!ret && unlink(path.data) < 0 && errno != ENOENT)
		ret = -errno;
	buf_release(&path);
	return ret;
}

static uint64_t file_size(struct store *st, const char *rel)
{
	struct buf path = BUF_INIT;
	struct stat sb;
	uint64_t n = 0;

	if (!pack_file(st, rel, &path) && !stat(path.data, &sb))
		n = (uint64_t)sb.st_size;
	buf_release(&path);
	return n;
}

/* Copy the kept chunks of @p to a pack lane; false if damaged. */
static int copy_kept(struct store *st, const struct chunk_row *rows, size_t n,
		     const struct store_idset *keep,
		     const struct store_idset *roots, bool *damaged,
		     uint64_t *kept)
{
	struct buf rec = BUF_INIT, plain = BUF_INIT;
	struct lane *lane = NULL;
	struct chunk_hdr h;
	bool dup;
	int ret = 0;

	*damaged = false;
	for (size_t i = 0; i < n; i++) {
		if (!store_idset_has(keep, rows[i].id) &&
		    !store_idset_has(roots, rows[i].id))
			continue;
		buf_reset(&rec);
		buf_reset(&plain);
		ret = store_record_read(st, &rows[i].loc, &rec);
		if (!ret)
			ret = chunk_hdr_decode((unsigned char *)rec.data, &h);
		if (!ret && memcmp(h.id, rows[i].id, 32))
			ret = -EBADMSG;
		if (!ret)
			ret = chunk_unseal(&st->keys, (unsigned char *)rec.data,
					   &h, rec.data + CHUNK_HDR_LEN, false,
					   &plain);
		if (ret == -EBADMSG) {
			*damaged = true;
			ret = 0;
			break;
		}
		if (!ret)
			ret = store_append(
				st, &lane, (unsigned char *)rec.data,
				(unsigned char *)rec.data + CHUNK_HDR_LEN,
				rec.len - CHUNK_HDR_LEN, false, &dup);
		if (ret)
			break;
		(*kept)++;
	}
	store_lane_release(st, &lane);
	buf_release(&rec);
	buf_release(&plain);
	return ret;
}

struct orphans {
	struct store *st;
	struct pack_row *packs;
	size_t n;
	struct store_prune_stats *stats;
};

static int orphan_one(void *arg, const char *rel)
{
	struct orphans *o = arg;
	struct buf path = BUF_INIT;
	int ret = 0;

	for (size_t i = 0; i < o->n; i++)
		if (!strcmp(o->packs[i].name, rel))
			return 0;
	if (!pack_file(o->st, rel, &path)) {
		log_info(
			"store: prune: removing pack '%s' the index does not know",
			rel);
		o->stats->bytes_before += file_size(o->st, rel);
		if (unlink(path.data) < 0)
			ret = -errno;
		o->stats->packs_deleted++;
	}
	buf_release(&path);
	return ret;
}

int store_prune(struct store *st, const struct store_idset *keep,
		struct store_prune_stats *stats)
{
	return store_prune_ex(st, keep, STORE_PRUNE_MIN_UNUSED, stats);
}

int store_prune_ex(struct store *st, const struct store_idset *keep,
		   unsigned min_unused_pct, struct store_prune_stats *stats)
{
	struct store_prune_stats s = { 0 };
	struct store_idset *roots = NULL;
	struct pack_row *packs = NULL;
	struct chunk_row *rows = NULL;
	struct orphans o;
	size_t n = 0, nrows;
	int ret;

	if (!st->info.writable)
		return -EROFS;
	ret = store_flush(st);
	if (!ret)
		ret = store_seal_pack(st);
	if (ret)
		return ret;
	roots = store_idset_new();
	if (!roots)
		return -ENOMEM;
	ret = roots_keep(st, roots);
	if (!ret)
		ret = packs_load(st, "", &packs, &n);
	if (ret)
		goto out;
	o = (struct orphans){ st, packs, n, &s };
	ret = packs_on_disk(st, orphan_one, &o);
	if (ret)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct pack_row *p = &packs[i];
		uint64_t used = 0, kept = 0, size, unused = 0;
		bool damaged;

		size = file_size(st, p->name);
		s.bytes_before += size;
		free(rows);
		rows = NULL;
		ret = chunks_load(st, p->id, &rows, &nrows);
		if (ret)
			goto out;
		for (size_t k = 0; k < nrows; k++)
			if (store_idset_has(keep, rows[k].id) ||
			    store_idset_has(roots, rows[k].id))
				used++;
			else
				unused += CHUNK_HDR_LEN + rows[k].loc.stored;
		if (used == nrows && nrows) {
			s.chunks_kept += used;
			continue;
		}
		if (used && unused * 100 <= (uint64_t)min_unused_pct * size) {
			s.chunks_kept += nrows; /* not worth a rewrite yet */
			s.packs_below_threshold++;
			s.bytes_unused_kept += unused;
			continue;
		}
		s.chunks_deleted += nrows - used;
		if (used) {
			ret = copy_kept(st, rows, nrows, keep, roots, &damaged,
					&kept);
			if (!ret)
				ret = store_flush(st); /* new copies durable */
			if (ret)
				goto out;
			if (damaged) {
				log_err("store: prune: pack '%s' holds a damaged chunk: kept as it is (run 'm365-snapshot check --read-data')",
					p->name);
				s.chunks_deleted -= nrows - used;
				s.chunks_kept += used;
				continue;
			}
			s.chunks_kept += kept;
			s.packs_rewritten++;
		}
		ret = drop_pack(st, p);
		if (ret)
			goto out;
		s.packs_deleted++;
	}
	ret = store_seal_pack(st);
out:
	if (!ret) {
		pack_rows_free(packs, n);
		packs = NULL;
		n = 0;
		if (!packs_load(st, "", &packs, &n))
			for (size_t i = 0; i < n; i++)
				s.bytes_after += file_size(st, packs[i].name);
	}
	if (stats)
		*stats = s;
	free(rows);
	pack_rows_free(packs, n);
	store_idset_free(roots);
	return ret;
}
