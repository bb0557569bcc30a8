/*
 * ops - the FUSE low-level operations of m365fs.
 *
 * Every request gets exactly one reply.  Requests are answered from the
 * inode number (inode.h): top-level inodes from the snapshot list,
 * snapshot trees from the catalog.  Two ino_tables cache what costs
 * catalog queries on hot paths: content descriptors of files being read
 * and the listings of directories being read (readdir offsets index into
 * the listing, so a listing is built once, not once per reply buffer).
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include "store/store.h"
#include "util/log.h"
#include "util/util.h"

#define XATTR_PREFIX	 "user.m365."
#define XATTR_PREFIX_LEN (sizeof(XATTR_PREFIX) - 1)
#define BLKSIZE		 (128 * 1024) /* st_blksize: cp and rsync buffers */
#define TOP_TIMEOUT	 1.0 /* attributes of snapshots/, latest; misses in / */
#define SNAPDIR_TIMEOUT	 60.0 /* entries of snapshots/ (forget) */
#define MARKER_MAX	 (1u << 20) /* bytes of the .partial marker */
#define STATFS_MS	 30000
#define PUSH_READ_MAX	 (64 * 1024) /* larger reads: the kernel reads ahead */
#define READ_VIEWS	 8 /* chunks one read answers from the cache */

/* ---- cached objects ----------------------------------------------------- */

/* A file being read: its size and content descriptor. */
struct file_obj {
	struct ino_obj o;
	int64_t size;
	int err_logged; /* set once a read failure was logged */
	size_t desc_len;
	unsigned char desc[];
};

/* One entry of a directory listing. */
struct dir_ent {
	uint64_t ino;
	int64_t size;
	int64_t mtime;
	int32_t mtime_nsec;
	uint32_t name; /* offset in dir_obj.names */
	uint8_t kind; /* enum cat_kind, 0 for "." and "..", INO_MARKER */
};
#define KIND_MARKER 0xfe /* the .partial marker file */

/* The listing of one directory in one snapshot. */
struct dir_obj {
	struct ino_obj o;
	size_t n, alloc;
	struct dir_ent *e;
	struct buf names;
};

static void free_obj(struct ino_obj *o)
{
	free(o);
}

static void free_dir(struct ino_obj *o)
{
	struct dir_obj *d = (struct dir_obj *)o;

	free(d->e);
	buf_release(&d->names);
	free(d);
}

int fs_ops_init(struct fs *fs)
{
	fs->files = ino_table_new(FS_FILE_CACHE_BYTES, free_obj);
	fs->dirs = ino_table_new((size_t)fs->o.dir_cache_mb << 20, free_dir);
	return fs->files && fs->dirs ? 0 : -ENOMEM;
}

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- attributes --------------------------------------------------------- */

static void attr_base(struct fs *fs, uint64_t ino, bool dir, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = dir ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_nlink = 1; /* directories: unknown, as btrfs (find -noleaf) */
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = BLKSIZE;
}

static void attr_times(struct stat *st, int64_t sec, int32_t nsec)
{
	st->st_mtim.tv_sec = sec;
	st->st_mtim.tv_nsec = nsec;
	st->st_atim = st->st_ctim = st->st_mtim;
}

static void attr_item(struct fs *fs, uint64_t ino, int kind, int64_t size,
		      int64_t mtime, int32_t mtime_nsec, struct stat *st)
{
	attr_base(fs, ino, kind != KIND_MARKER && cat_kind_is_dir(kind), st);
	if (S_ISREG(st->st_mode)) {
		st->st_size = size;
		st->st_blocks = (size + 511) / 512;
	}
	attr_times(st, mtime, mtime_nsec);
}

static void attr_snapdir(struct fs *fs, const struct fs_snap *s,
			 struct stat *st)
{
	attr_base(fs, ino_make(s->id, CAT_ROOT), true, st);
	attr_times(st, s->s.end ? s->s.end : s->s.start, 0);
}

/*
 * Attributes of a top-level inode.  snapshots/ takes the time of the
 * newest snapshot and, as nanoseconds, the list's generation: any change
 * of the list changes its mtime, which resets the kernel's cached listing.
 */
static void attr_top(struct fs *fs, uint64_t ino, const struct fs_snaps *l,
		     struct stat *st)
{
	const struct fs_snap *s;

	attr_base(fs, ino, ino != INO_LATEST, st);
	switch (ino) {
	case INO_ROOT:
		st->st_nlink = 3;
		attr_times(st, fs->mount_time, 0);
		break;
	case INO_SNAPSHOTS:
		st->st_nlink = 2 + l->n;
		attr_times(st, l->mtime ? l->mtime : fs->mount_time,
			   (int32_t)(l->gen % 1000000000u));
		break;
	case INO_LATEST:
		s = fs_snaps_find_id(l, l->latest);
		st->st_mode = S_IFLNK | 0777;
		st->st_size = s ? (off_t)strlen(s->name) : 0;
		attr_times(st, s ? s->s.end : fs->mount_time, 0);
		break;
	}
}

/* Text of the .partial marker of snapshot @s (caller releases @out). */
struct marker_ctx {
	struct buf *out;
	int64_t n;
};

static int marker_line(void *ctx, const struct cat_snap_error *e)
{
	struct marker_ctx *m = ctx;

	m->n++;
	if (m->out->len > MARKER_MAX - 4096)
		return 0; /* keep counting, stop writing */
	return buf_addf(m->out, "%s\t%s\t%s\n", e->service,
			e->path	      ? e->path
			: e->graph_id ? e->graph_id
				      : "-",
			e->reason);
}

static int marker_text(struct fs *fs, const struct fs_snap *s, struct buf *out)
{
	struct marker_ctx m = { out, 0 };
	struct cat *cat = fs_cat(fs);
	int rc;

	buf_addf(out,
		 "snapshot %s is partial: %lld item(s) could not be saved.\n"
		 "service\tpath\treason\n",
		 s->name, (long long)s->s.n.errors);
	if (!cat)
		return -EIO;
	rc = cat_snapshot_errors(cat, s->id, marker_line, &m);
	if (rc < 0)
		return rc;
	if (out->len > MARKER_MAX)
		buf_truncate(out, MARKER_MAX);
	return 0;
}

/*
 * Attributes of any inode into @st; @timeout receives the attribute
 * timeout.  Returns 0, -ENOENT or -errno.
 */
static int getattr_ino(struct fs *fs, uint64_t ino, struct stat *st,
		       double *timeout)
{
	int64_t snap = ino_snap(ino), id = ino_item(ino);
	struct fs_snaps *l;
	const struct fs_snap *s;
	struct cat_item it;
	struct cat *cat;
	int rc = 0;

	*timeout = fs->o.timeout;
	if (snap == 0) {
		if (ino < INO_ROOT || ino > INO_LATEST)
			return -ENOENT;
		l = fs_snaps_get(fs, ino != INO_ROOT);
		fs_latest_inval(fs);
		if (ino == INO_LATEST && !l->latest)
			rc = -ENOENT;
		else
			attr_top(fs, ino, l, st);
		fs_snaps_put(fs, l);
		if (ino != INO_ROOT)
			*timeout = TOP_TIMEOUT;
		return rc;
	}
	if (id == CAT_ROOT || id == INO_ITEM_PARTIAL) {
		l = fs_snaps_get(fs, false);
		s = fs_snaps_find_id(l, snap);
		if (!s) {
			fs_snaps_put(fs, l);
			l = fs_snaps_get(fs, true);
			s = fs_snaps_find_id(l, snap);
		}
		if (!s) {
			rc = -ENOENT;
		} else if (id == CAT_ROOT) {
			attr_snapdir(fs, s, st);
		} else if (s->s.status != CAT_SNAP_PARTIAL) {
			rc = -ENOENT;
		} else {
			struct buf text = BUF_INIT;

			rc = marker_text(fs, s, &text);
			attr_item(fs, ino, KIND_MARKER, (int64_t)text.len,
				  s->s.end, 0, st);
			buf_release(&text);
		}
		fs_snaps_put(fs, l);
		return rc;
	}
	cat = fs_cat(fs);
	if (!cat)
		return -ENOENT;
	rc = cat_item_get(cat, snap, id, &it);
	if (rc < 0)
		return rc;
	attr_item(fs, ino, it.kind, it.size, it.mtime_sec, it.mtime_nsec, st);
	return 0;
}

/* ---- lookup, getattr, readlink, forget ---------------------------------- */

/*
 * The kernel offers FUSE at most its default readahead (128 KiB) at INIT;
 * sequential reads of large files go much faster with 1 MiB requests
 * (max_pages allows them).  Raise the read_ahead_kb of the mount's bdi
 * before the INIT reply (the kernel keeps the smaller of it and ours),
 * found through /proc/self/mountinfo (a stat() of the mountpoint would
 * wait for this very INIT).  Best effort: needs root.
 */
static void set_readahead(const char *mnt, unsigned kb)
{
	char line[8192], path[128], want[PATH_MAX], *p, *q;
	unsigned maj = 0, min = 0;
	bool found = false;
	FILE *f;

	if (!kb || !realpath(mnt, want))
		return;
	f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		/* id parent major:minor root mountpoint ... */
		p = strchr(line, ' ');
		p = p ? strchr(p + 1, ' ') : NULL;
		if (!p || sscanf(p + 1, "%u:%u", &maj, &min) != 2)
			continue;
		p = strchr(p + 1, ' ');
		p = p ? strchr(p + 1, ' ') : NULL;
		q = p ? strchr(p + 1, ' ') : NULL;
		if (!q)
			continue;
		*q = 0;
		if (!strcmp(p + 1, want) && strstr(q + 1, "fuse.m365fs"))
			found = true; /* the last one is the newest */
	}
	fclose(f);
	if (!found)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", maj,
		 min);
	f = fopen(path, "w");
	if (!f) {
		log_debug("cannot raise readahead: %s: %s", path,
			  strerror(errno));
		return;
	}
	fprintf(f, "%u\n", kb);
	if (fclose(f) == 0)
		log_debug("readahead of the mount: %u KiB", kb);
}

static void fsop_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;
	unsigned want = FUSE_CAP_READDIRPLUS | FUSE_CAP_NO_OPEN_SUPPORT |
			FUSE_CAP_NO_OPENDIR_SUPPORT | FUSE_CAP_AUTO_INVAL_DATA |
			FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS |
			FUSE_CAP_CACHE_SYMLINKS;

	/*
	 * No POSIX_ACL: ACLs are "not supported" (fsop_getxattr), so ls -l
	 * asks once per run, not once per entry (the kernel caches absent
	 * ACLs only per inode: a cold ls -l of 50,000 entries cost 50,000
	 * requests).  Permissions: -o default_permissions (main.c).
	 */
	conn->want &= ~FUSE_CAP_POSIX_ACL;
	conn->want |= want & conn->capable;
	/* immutable directories: always readdirplus, never "auto" */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* large reads: the kernel reads up to max_pages (1 MiB) at once */
	if (fs->o.readahead_kb)
		conn->max_readahead = fs->o.readahead_kb * 1024;
	set_readahead(fs->mountpoint, fs->o.readahead_kb);
	fs->no_open = !!(conn->want & FUSE_CAP_NO_OPEN_SUPPORT);
	fs->no_opendir = !!(conn->want & FUSE_CAP_NO_OPENDIR_SUPPORT);
	log_debug("fuse: capable 0x%x want 0x%x max_readahead %u",
		  conn->capable, conn->want, conn->max_readahead);
}

static void reply_entry(fuse_req_t req, uint64_t ino, const struct stat *st,
			double entry_timeout, double attr_timeout)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = ino;
	if (st)
		e.attr = *st;
	e.attr_timeout = attr_timeout;
	e.entry_timeout = entry_timeout;
	fuse_reply_entry(req, &e); /* ino 0: a miss, cached for the timeout */
}

static void lookup_top(fuse_req_t req, struct fs *fs, fuse_ino_t parent,
		       const char *name)
{
	struct fs_snaps *l = NULL;
	const struct fs_snap *s;
	struct stat st;

	if (parent == INO_ROOT) {
		if (strcmp(name, "snapshots")) {
			reply_entry(req, 0, NULL, TOP_TIMEOUT, 0);
			return;
		}
		l = fs_snaps_get(fs, true);
		attr_top(fs, INO_SNAPSHOTS, l, &st);
		reply_entry(req, INO_SNAPSHOTS, &st, fs->o.timeout,
			    TOP_TIMEOUT);
		goto out;
	}
	if (parent != INO_SNAPSHOTS) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	l = fs_snaps_get(fs, true);
	fs_latest_inval(fs);
	if (!strcmp(name, "latest") && l->latest) {
		/* looked up again each second: a new snapshot moves it */
		attr_top(fs, INO_LATEST, l, &st);
		reply_entry(req, INO_LATEST, &st, TOP_TIMEOUT, TOP_TIMEOUT);
		goto out;
	}
	s = fs_snaps_find_name(l, name);
	if (!s) {
		reply_entry(req, 0, NULL, 0, 0); /* may appear any time */
		goto out;
	}
	attr_snapdir(fs, s, &st);
	reply_entry(req, st.st_ino, &st, SNAPDIR_TIMEOUT, fs->o.timeout);
out:
	fs_snaps_put(fs, l);
}

/*
 * The inode of item @it seen in snapshot @snap (inode.h): a folder's is
 * per snapshot, a file's that of its version.  0: beyond the range.
 */
static uint64_t item_ino(int64_t snap, const struct cat_item *it)
{
	uint64_t ino;

	if (cat_kind_is_dir(it->kind) || it->from_snap < 1 ||
	    it->from_snap > snap)
		ino = ino_make(snap, it->id);
	else
		ino = ino_make(it->from_snap, it->id);
	if (!ino)
		log_err("item %lld of snapshot %lld is beyond the inode range",
			(long long)it->id, (long long)snap);
	return ino;
}

static void fsop_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	int64_t snap = ino_snap(parent), id = ino_item(parent);
	struct cat_item it;
	struct stat st;
	struct cat *cat;
	uint64_t ino;
	double t;
	int rc;

	if (snap == 0) {
		lookup_top(req, fs, parent, name);
		return;
	}
	if (id == CAT_ROOT && !strcmp(name, ".partial")) {
		ino = (uint64_t)snap << INO_ITEM_BITS | INO_ITEM_PARTIAL;
		rc = getattr_ino(fs, ino, &st, &t);
		if (rc == -ENOENT)
			reply_entry(req, 0, NULL, fs->o.timeout, 0);
		else if (rc < 0)
			fuse_reply_err(req, -rc);
		else
			reply_entry(req, ino, &st, fs->o.timeout, t);
		return;
	}
	cat = fs_cat(fs);
	if (!cat) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	rc = cat_lookup(cat, snap, id, name, &it);
	if (rc == -ENOENT) {
		reply_entry(req, 0, NULL, fs->o.timeout, 0);
		return;
	}
	if (rc < 0) {
		fuse_reply_err(req, -rc);
		return;
	}
	ino = item_ino(snap, &it);
	if (!ino) {
		fuse_reply_err(req, EOVERFLOW);
		return;
	}
	attr_item(fs, ino, it.kind, it.size, it.mtime_sec, it.mtime_nsec, &st);
	reply_entry(req, ino, &st, fs->o.timeout, fs->o.timeout);
	fs_push_lookup(fs, parent);
}

static void fsop_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req); /* inodes are computed: nothing to free */
}

static void fsop_forget_multi(fuse_req_t req, size_t count,
			      struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

static void fsop_getattr(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct stat st;
	double t;
	int rc;

	(void)fi;
	rc = getattr_ino(fs_of(req), ino, &st, &t);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, t);
}

static void fsop_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct fs_snaps *l;
	const struct fs_snap *s;

	if (ino != INO_LATEST) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	l = fs_snaps_get(fs, true);
	s = fs_snaps_find_id(l, l->latest);
	if (s)
		fuse_reply_readlink(req, s->name);
	else
		fuse_reply_err(req, ENOENT);
	fs_snaps_put(fs, l);
}

/* ---- open, read --------------------------------------------------------- */

static void fsop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);

	(void)ino;
	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_APPEND))) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (fs->no_open) {
		fuse_reply_err(req, ENOSYS); /* no more opens are sent */
		return;
	}
	fi->keep_cache = 1;
	fi->noflush = 1; /* read-only: close() has nothing to report */
	fuse_reply_open(req, fi);
}

/* The content descriptor of file @ino, referenced; NULL with *@err. */
static struct file_obj *file_get(struct fs *fs, uint64_t ino, int *err)
{
	struct file_obj *f;
	struct ino_obj *o;
	struct cat_item it;
	struct buf desc = BUF_INIT;
	struct cat *cat;
	int rc;

	o = ino_table_get(fs->files, ino);
	if (o)
		return (struct file_obj *)o;
	cat = fs_cat(fs);
	if (!cat) {
		*err = -ENOENT;
		return NULL;
	}
	rc = cat_item_get(cat, ino_snap(ino), ino_item(ino), &it);
	if (rc < 0)
		goto fail;
	if (cat_kind_is_dir(it.kind)) {
		rc = -EISDIR;
		goto fail;
	}
	if (it.content) {
		rc = cat_content_get(cat, it.content, NULL, &desc);
		if (rc < 0) {
			log_err("content %lld of item %lld is missing from the catalog: %s",
				(long long)it.content, (long long)it.id,
				strerror(-rc));
			rc = -EIO;
			goto fail;
		}
	}
	f = malloc(sizeof(*f) + desc.len);
	if (!f) {
		rc = -ENOMEM;
		goto fail;
	}
	memset(f, 0, sizeof(*f));
	f->o.ino = ino;
	f->o.bytes = sizeof(*f) + desc.len;
	f->size = it.size;
	f->desc_len = desc.len;
	memcpy(f->desc, desc.data, desc.len);
	buf_release(&desc);
	return (struct file_obj *)ino_table_add(fs->files, &f->o);
fail:
	buf_release(&desc);
	*err = rc;
	return NULL;
}

/* One read buffer per thread, kept for the life of the thread. */
static pthread_key_t rbuf_key;
static pthread_once_t rbuf_once = PTHREAD_ONCE_INIT;
struct rbuf {
	size_t size;
	char data[];
};

static void rbuf_key_init(void)
{
	pthread_key_create(&rbuf_key, free);
}

static char *rbuf_get(size_t size)
{
	struct rbuf *b;

	pthread_once(&rbuf_once, rbuf_key_init);
	b = pthread_getspecific(rbuf_key);
	if (b && b->size >= size)
		return b->data;
	free(b);
	b = malloc(sizeof(*b) + size);
	pthread_setspecific(rbuf_key, b);
	if (!b)
		return NULL;
	b->size = size;
	return b->data;
}

static void read_failed(struct fs *fs, struct file_obj *f, uint64_t ino, int rc)
{
	struct buf path = BUF_INIT;

	if (__atomic_exchange_n(&f->err_logged, 1, __ATOMIC_RELAXED))
		return;
	fs_path(fs, ino, &path);
	if (rc == -EBADMSG)
		log_err("cannot read '%s': its data in repository '%s' is damaged; run 'm365-snapshot check --read-data' to list what is affected",
			path.data, fs->o.repo);
	else if (rc == -ENOENT)
		log_err("cannot read '%s': its data is missing from repository '%s'; run 'm365-snapshot check' to list what is affected",
			path.data, fs->o.repo);
	else
		log_err("cannot read '%s': %s", path.data, strerror(-rc));
	buf_release(&path);
}

static void read_marker(fuse_req_t req, struct fs *fs, uint64_t ino,
			size_t size, off_t off)
{
	struct fs_snaps *l = fs_snaps_get(fs, false);
	const struct fs_snap *s = fs_snaps_find_id(l, ino_snap(ino));
	struct buf text = BUF_INIT;
	int rc = s ? marker_text(fs, s, &text) : -ENOENT;

	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if ((size_t)off >= text.len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, text.data + off,
			       text.len - off < size ? text.len - off : size);
	buf_release(&text);
	fs_snaps_put(fs, l);
}

/*
 * Answer a read straight from the store's cache (no copy in the daemon):
 * the pieces of the chunks it covers, up to READ_VIEWS of them, go to
 * the kernel in one reply.  A small read that had to load its chunk
 * hands the chunk to the kernel's page cache (push.c): random reads then
 * cost one chunk load per chunk, not per read.  Returns false when the
 * read spans more chunks (or failed to get one: the caller retries and
 * reports).
 */
static bool read_view(fuse_req_t req, struct fs *fs, struct file_obj *f,
		      uint64_t ino, size_t size, off_t off)
{
	struct store_view v[READ_VIEWS];
	struct iovec iov[READ_VIEWS] = { { 0 } };
	uint64_t pos = (uint64_t)off, end = (uint64_t)off + size;
	unsigned n = 0, kept = 0;
	bool ok = true;

	while (pos < end) {
		uint64_t stop;

		if (n == READ_VIEWS ||
		    store_view_get(fs->st, f->desc, f->desc_len, pos, &v[n]) <
			    0) {
			ok = false;
			break;
		}
		stop = v[n].off + v[n].len < end ? v[n].off + v[n].len : end;
		iov[n].iov_base = (void *)(v[n].data + (pos - v[n].off));
		iov[n].iov_len = (size_t)(stop - pos);
		pos = stop;
		n++;
	}
	if (ok)
		fuse_reply_iov(req, iov, (int)n);
	/* a pushed chunk's view is released by the push thread */
	if (ok && n == 1 && v[0].loaded && size <= PUSH_READ_MAX &&
	    v[0].len > size && fs_push(fs, ino, f->size, &v[0]))
		kept = 1;
	for (unsigned i = kept; i < n; i++)
		store_view_put(&v[i]);
	return ok;
}

static void fsop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct file_obj *f;
	ssize_t n;
	char *p;
	int rc = 0;

	(void)fi;
	if (ino_snap(ino) == 0) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (ino_item(ino) == INO_ITEM_PARTIAL) {
		read_marker(req, fs, ino, size, off);
		return;
	}
	f = file_get(fs, ino, &rc);
	if (!f) {
		fuse_reply_err(req, -rc);
		return;
	}
	if (off < 0 || off >= f->size || !size) {
		ino_table_put(fs->files, &f->o);
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if ((uint64_t)size > (uint64_t)(f->size - off))
		size = (size_t)(f->size - off);
	if (read_view(req, fs, f, ino, size, off)) {
		ino_table_put(fs->files, &f->o);
		return;
	}
	p = rbuf_get(size);
	if (!p) {
		ino_table_put(fs->files, &f->o);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = store_read(fs->st, f->desc, f->desc_len, (uint64_t)off, p, size);
	if (n < 0) {
		read_failed(fs, f, ino, (int)n);
		ino_table_put(fs->files, &f->o);
		fuse_reply_err(req, EIO);
		return;
	}
	ino_table_put(fs->files, &f->o);
	fuse_reply_buf(req, p, (size_t)n);
}

/* ---- directories -------------------------------------------------------- */

static int dir_add(struct dir_obj *d, const char *name, uint64_t ino, int kind,
		   int64_t size, int64_t mtime, int32_t mtime_nsec)
{
	struct dir_ent *e;
	size_t off = d->names.len;
	int rc;

	if (d->n == d->alloc) {
		size_t na = d->alloc ? d->alloc * 2 : 16;
		struct dir_ent *ne = realloc(d->e, na * sizeof(*ne));

		if (!ne)
			return -ENOMEM;
		d->e = ne;
		d->alloc = na;
	}
	rc = buf_add(&d->names, name, strlen(name) + 1);
	if (rc < 0)
		return rc;
	e = &d->e[d->n++];
	e->ino = ino;
	e->kind = (uint8_t)kind;
	e->size = size;
	e->mtime = mtime;
	e->mtime_nsec = mtime_nsec;
	e->name = (uint32_t)off;
	return 0;
}

struct list_ctx {
	struct dir_obj *d;
	int64_t snap;
};

static int list_one(void *ctx, const struct cat_item *it)
{
	struct list_ctx *c = ctx;
	uint64_t ino = item_ino(c->snap, it);

	if (!ino)
		return 0;
	return dir_add(c->d, it->name, ino, it->kind, it->size, it->mtime_sec,
		       it->mtime_nsec);
}

static struct dir_obj *dir_new(void)
{
	struct dir_obj *d = calloc(1, sizeof(*d));

	if (d)
		buf_init(&d->names, 0);
	return d;
}

/*
 * The listing of a directory of snapshot @snap, referenced (from the
 * table, or built and added).  NULL with *@err.
 */
static struct dir_obj *dir_get(struct fs *fs, uint64_t ino, int *err)
{
	int64_t snap = ino_snap(ino), id = ino_item(ino);
	struct dir_obj *d = NULL;
	struct ino_obj *o;
	struct cat_item self;
	struct fs_snaps *l = NULL;
	const struct fs_snap *s;
	struct list_ctx lc;
	struct cat *cat;
	uint64_t up;
	int rc;

	o = ino_table_get(fs->dirs, ino);
	if (o)
		return (struct dir_obj *)o;
	cat = fs_cat(fs);
	if (!cat) {
		rc = -ENOENT;
		goto fail;
	}
	rc = cat_item_get(cat, snap, id, &self);
	if (rc < 0)
		goto fail;
	if (!cat_kind_is_dir(self.kind)) {
		rc = -ENOTDIR;
		goto fail;
	}
	d = dir_new();
	if (!d) {
		rc = -ENOMEM;
		goto fail;
	}
	up = id == CAT_ROOT ? INO_SNAPSHOTS : ino_make(snap, self.parent);
	rc = dir_add(d, ".", ino, CAT_KIND_FOLDER, 0, 0, 0);
	if (!rc)
		rc = dir_add(d, "..", up ? up : ino, CAT_KIND_FOLDER, 0, 0, 0);
	if (rc < 0)
		goto fail;
	if (id == CAT_ROOT) {
		l = fs_snaps_get(fs, false);
		s = fs_snaps_find_id(l, snap);
		if (s && s->s.status == CAT_SNAP_PARTIAL) {
			struct buf text = BUF_INIT;

			marker_text(fs, s, &text);
			rc = dir_add(d, ".partial",
				     (uint64_t)snap << INO_ITEM_BITS |
					     INO_ITEM_PARTIAL,
				     KIND_MARKER, (int64_t)text.len, s->s.end,
				     0);
			buf_release(&text);
			if (rc < 0)
				goto fail;
		}
	}
	lc.d = d;
	lc.snap = snap;
	rc = cat_list(cat, snap, id, NULL, list_one, &lc);
	if (rc < 0)
		goto fail;
	d->o.ino = ino;
	d->o.bytes = sizeof(*d) + d->alloc * sizeof(d->e[0]) + d->names.alloc;
	fs_snaps_put(fs, l);
	return (struct dir_obj *)ino_table_add(fs->dirs, &d->o);
fail:
	fs_snaps_put(fs, l);
	if (d)
		free_dir(&d->o);
	*err = rc;
	return NULL;
}

int64_t fs_dir_entries(struct fs *fs, uint64_t ino)
{
	struct dir_obj *d;
	int64_t n;
	int rc = 0;

	d = dir_get(fs, ino, &rc);
	if (!d)
		return rc;
	n = (int64_t)d->n - 2;
	ino_table_put(fs->dirs, &d->o);
	return n;
}

/* Fill @st for entry @e of a listing. */
static void dir_ent_attr(struct fs *fs, const struct dir_ent *e,
			 struct stat *st)
{
	attr_item(fs, e->ino, e->kind, e->size, e->mtime, e->mtime_nsec, st);
}

/*
 * A reply buffer of readdir entries; each added entry gets the offset of
 * the next one.
 */
struct dirbuf {
	fuse_req_t req;
	bool plus;
	char *p;
	size_t size, len;
};

/* Add one entry; returns false when the buffer is full. */
static bool dirbuf_add(struct dirbuf *b, const char *name,
		       const struct stat *st, double entry_timeout,
		       double attr_timeout, off_t next)
{
	size_t need;

	if (b->plus) {
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.ino = st->st_ino;
		e.attr = *st;
		e.attr_timeout = attr_timeout;
		e.entry_timeout = entry_timeout;
		need = fuse_add_direntry_plus(b->req, b->p + b->len,
					      b->size - b->len, name, &e, next);
	} else {
		need = fuse_add_direntry(b->req, b->p + b->len,
					 b->size - b->len, name, st, next);
	}
	if (need > b->size - b->len)
		return false;
	b->len += need;
	return true;
}

static void readdir_snap(fuse_req_t req, struct fs *fs, fuse_ino_t ino,
			 struct dirbuf *b, off_t off)
{
	struct dir_obj *d;
	struct stat st;
	size_t i;
	int rc = 0;

	d = dir_get(fs, ino, &rc);
	if (!d) {
		fuse_reply_err(req, -rc);
		return;
	}
	for (i = off < 0 ? 0 : (size_t)off; i < d->n; i++) {
		dir_ent_attr(fs, &d->e[i], &st);
		if (!dirbuf_add(b, d->names.data + d->e[i].name, &st,
				fs->o.timeout, fs->o.timeout, (off_t)i + 1))
			break;
	}
	ino_table_put(fs->dirs, &d->o);
	fuse_reply_buf(req, b->p, b->len);
}

static void readdir_top(fuse_req_t req, struct fs *fs, fuse_ino_t ino,
			struct dirbuf *b, off_t off)
{
	struct fs_snaps *l = fs_snaps_get(fs, ino == INO_SNAPSHOTS && !off);
	struct stat st;
	size_t i, n;

	fs_latest_inval(fs);
	/* entries: ".", "..", then root: snapshots; snapshots/: each, latest */
	n = 2 + (ino == INO_ROOT ? 1 : l->n + (l->latest ? 1 : 0));
	for (i = off < 0 ? 0 : (size_t)off; i < n; i++) {
		const char *name;
		double et = fs->o.timeout;

		if (i < 2) {
			attr_top(fs, i == 0 ? ino : INO_ROOT, l, &st);
			name = i == 0 ? "." : "..";
		} else if (ino == INO_ROOT) {
			attr_top(fs, INO_SNAPSHOTS, l, &st);
			name = "snapshots";
		} else if (i - 2 < l->n) {
			attr_snapdir(fs, &l->s[i - 2], &st);
			name = l->s[i - 2].name;
			et = SNAPDIR_TIMEOUT;
		} else {
			attr_top(fs, INO_LATEST, l, &st);
			name = "latest";
			et = TOP_TIMEOUT;
		}
		if (!dirbuf_add(b, name, &st, et,
				S_ISDIR(st.st_mode) && st.st_ino != INO_ROOT &&
						st.st_ino != INO_SNAPSHOTS
					? fs->o.timeout
					: TOP_TIMEOUT,
				(off_t)i + 1))
			break;
	}
	fs_snaps_put(fs, l);
	fuse_reply_buf(req, b->p, b->len);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       bool plus)
{
	struct fs *fs = fs_of(req);
	struct dirbuf b = { req, plus, NULL, size, 0 };

	if (ino_snap(ino) == 0 && ino == INO_LATEST) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	b.p = malloc(size);
	if (!b.p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (ino_snap(ino) == 0)
		readdir_top(req, fs, ino, &b, off);
	else
		readdir_snap(req, fs, ino, &b, off);
	free(b.p);
}

static void fsop_opendir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);

	if (fs->no_opendir) {
		fuse_reply_err(req, ENOSYS); /* no more opendirs are sent */
		return;
	}
	if (ino_snap(ino) != 0) {
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	fuse_reply_open(req, fi);
}

static void fsop_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

static void fsop_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			     off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

/* ---- statfs ------------------------------------------------------------- */

static uint64_t walk_bytes;

static int walk_one(const char *path, const struct stat *st, int type,
		    struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (type == FTW_F)
		walk_bytes += (uint64_t)st->st_blocks * 512;
	return 0;
}

/* Bytes used by the repository (its files), recomputed every STATFS_MS. */
static uint64_t repo_bytes(struct fs *fs)
{
	static pthread_mutex_t walk_lock = PTHREAD_MUTEX_INITIALIZER;
	int64_t now = util_mono_ms();
	uint64_t bytes;
	bool stale;

	pthread_mutex_lock(&fs->lock);
	stale = !fs->statfs_ms || now - fs->statfs_ms > STATFS_MS;
	bytes = fs->repo_bytes;
	pthread_mutex_unlock(&fs->lock);
	if (!stale)
		return bytes;
	pthread_mutex_lock(&walk_lock); /* nftw's callback has no context */
	walk_bytes = 0;
	nftw(fs->o.repo, walk_one, 16, FTW_PHYS);
	bytes = walk_bytes;
	pthread_mutex_unlock(&walk_lock);
	pthread_mutex_lock(&fs->lock);
	fs->repo_bytes = bytes;
	fs->statfs_ms = now;
	pthread_mutex_unlock(&fs->lock);
	return bytes;
}

static void fsop_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fs_of(req);
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_blocks = (repo_bytes(fs) + 4095) / 4096;
	sv.f_namemax = CAT_NAME_MAX;
	sv.f_flag = ST_RDONLY;
	fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes ------------------------------------------------ */

static void kv_add(struct buf *out, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void kv_add(struct buf *out, const char *key, const char *fmt, ...)
{
	va_list ap;

	buf_addf(out, XATTR_PREFIX "%s", key);
	buf_addch(out, 0);
	va_start(ap, fmt);
	buf_vaddf(out, fmt, ap);
	va_end(ap);
	buf_addch(out, 0);
}

static void snap_xattrs(const struct fs_snap *s, struct buf *out)
{
	char t[40];

	kv_add(out, "snapshot.id", "%lld", (long long)s->id);
	kv_add(out, "snapshot.status", "%s", fs_snap_status_name(s->s.status));
	util_time_format(s->s.start, t, sizeof(t));
	kv_add(out, "snapshot.start", "%s", t);
	util_time_format(s->s.end, t, sizeof(t));
	kv_add(out, "snapshot.end", "%s", t);
	kv_add(out, "snapshot.items", "%lld", (long long)s->s.n.items);
	kv_add(out, "snapshot.files", "%lld", (long long)s->s.n.files);
	kv_add(out, "snapshot.messages", "%lld", (long long)s->s.n.messages);
	kv_add(out, "snapshot.bytes_new", "%lld", (long long)s->s.n.bytes_new);
	kv_add(out, "snapshot.bytes_reused", "%lld",
	       (long long)s->s.n.bytes_reused);
	kv_add(out, "snapshot.errors", "%lld", (long long)s->s.n.errors);
}

/*
 * The snapshots that have version @it of an item (all of them show the
 * same file, one inode): the first, the last, and how many.
 */
static void version_xattrs(struct fs *fs, const struct cat_item *it,
			   struct buf *out)
{
	struct fs_snaps *l = fs_snaps_get(fs, false);
	const struct fs_snap *first = fs_snaps_from(l, it->from_snap);
	/* the list is ordered by id: [first, end) have the version */
	const struct fs_snap *end =
		it->to_snap ? fs_snaps_from(l, it->to_snap) : NULL;

	if (!end)
		end = l->s + l->n;
	if (first && end > first) {
		kv_add(out, "version.first", "%s", first->name);
		kv_add(out, "version.last", "%s", end[-1].name);
		kv_add(out, "version.snapshots", "%lld",
		       (long long)(end - first));
	}
	fs_snaps_put(fs, l);
}

/*
 * All extended attributes of @ino as "name\0value\0" pairs appended to
 * @out.  Returns 0 or -errno.
 */
static int xattrs_of(struct fs *fs, uint64_t ino, struct buf *out)
{
	int64_t snap = ino_snap(ino), id = ino_item(ino);
	struct buf meta = BUF_INIT;
	struct fs_snaps *l;
	const struct fs_snap *s;
	struct cat_item it;
	struct cat_content ct;
	const char *k, *v;
	struct cat *cat;
	size_t pos = 0;
	int rc;

	if (snap == 0 || id == INO_ITEM_PARTIAL)
		return 0;
	if (id == CAT_ROOT) {
		l = fs_snaps_get(fs, false);
		s = fs_snaps_find_id(l, snap);
		if (s)
			snap_xattrs(s, out);
		fs_snaps_put(fs, l);
		return s ? 0 : -ENOENT;
	}
	cat = fs_cat(fs);
	if (!cat)
		return -ENOENT;
	rc = cat_item_get(cat, snap, id, &it);
	if (rc < 0)
		return rc;
	rc = cat_item_meta(cat, it.id, it.from_snap, &meta);
	if (rc < 0 && rc != -ENOENT)
		goto out;
	while ((rc = cat_meta_next(meta.data, meta.len, &pos, &k, &v)) > 0)
		kv_add(out, k, "%s", v);
	if (rc < 0)
		goto out;
	if (it.content && !cat_content_get(cat, it.content, &ct, NULL)) {
		char hex[65];

		util_hex(hex, ct.sha256, sizeof(ct.sha256), false);
		kv_add(out, "sha256", "%s", hex);
	}
	version_xattrs(fs, &it, out);
	rc = 0;
out:
	buf_release(&meta);
	return rc;
}

/* The error for an xattr name outside user.m365. (see fsop_getxattr). */
static int foreign_xattr_errno(const char *name)
{
	if (!strncmp(name, "security.", 9) ||
	    !strncmp(name, "system.posix_acl_", 17))
		return EOPNOTSUPP;
	return ENODATA;
}

static void fsop_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  size_t size)
{
	struct buf all = BUF_INIT;
	const char *k, *v = NULL;
	size_t pos = 0, vlen;
	int rc;

	/*
	 * Names we never serve are answered without the catalog.  security.*
	 * and system.posix_acl_* get "not supported" (no security labels, no
	 * ACLs here): ls remembers that per device and stops asking for
	 * every entry, which keeps ls -l of a large folder at one request.
	 * The rest gets ENODATA.
	 */
	if (strncmp(name, XATTR_PREFIX, XATTR_PREFIX_LEN)) {
		fuse_reply_err(req, foreign_xattr_errno(name));
		return;
	}
	rc = xattrs_of(fs_of(req), ino, &all);
	while (rc >= 0 &&
	       (rc = cat_meta_next(all.data, all.len, &pos, &k, &v)) > 0)
		if (!strcmp(k, name))
			break;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (rc == 0)
		fuse_reply_err(req, ENODATA);
	else if (!size)
		fuse_reply_xattr(req, strlen(v));
	else if ((vlen = strlen(v)) > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, vlen);
	buf_release(&all);
}

static void fsop_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct buf all = BUF_INIT, names = BUF_INIT;
	const char *k, *v;
	size_t pos = 0;
	int rc;

	rc = xattrs_of(fs_of(req), ino, &all);
	while (rc >= 0 &&
	       (rc = cat_meta_next(all.data, all.len, &pos, &k, &v)) > 0)
		buf_add(&names, k, strlen(k) + 1);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (!size)
		fuse_reply_xattr(req, names.len);
	else if (names.len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, names.data, names.len);
	buf_release(&names);
	buf_release(&all);
}

/* ---- writes: a read-only file system ------------------------------------ */

static void fsop_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			 int to_set, struct fuse_file_info *fi)
{
	(void)ino, (void)attr, (void)to_set, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void fsop_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	fuse_reply_err(req, EROFS);
}

static void fsop_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode)
{
	(void)parent, (void)name, (void)mode;
	fuse_reply_err(req, EROFS);
}

static void fsop_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	fuse_reply_err(req, EROFS);
}

static void fsop_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			 const char *name)
{
	(void)link, (void)parent, (void)name;
	fuse_reply_err(req, EROFS);
}

static void fsop_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname,
			unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	fuse_reply_err(req, EROFS);
}

static void fsop_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		      const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	fuse_reply_err(req, EROFS);
}

static void fsop_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		       size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)ino, (void)buf, (void)size, (void)off, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void fsop_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	fuse_reply_err(req, EROFS);
}

static void fsop_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  const char *value, size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	fuse_reply_err(req, EROFS);
}

static void fsop_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	fuse_reply_err(req, EROFS);
}

static void fsop_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
			   off_t offset, off_t length,
			   struct fuse_file_info *fi)
{
	(void)ino, (void)mode, (void)offset, (void)length, (void)fi;
	fuse_reply_err(req, EROFS);
}

const struct fuse_lowlevel_ops fs_ll_ops = {
	.init = fsop_init,
	.lookup = fsop_lookup,
	.forget = fsop_forget,
	.forget_multi = fsop_forget_multi,
	.getattr = fsop_getattr,
	.readlink = fsop_readlink,
	.open = fsop_open,
	.read = fsop_read,
	.opendir = fsop_opendir,
	.readdir = fsop_readdir,
	.readdirplus = fsop_readdirplus,
	.statfs = fsop_statfs,
	.getxattr = fsop_getxattr,
	.listxattr = fsop_listxattr,
	.setattr = fsop_setattr,
	.mknod = fsop_mknod,
	.mkdir = fsop_mkdir,
	.unlink = fsop_unlink,
	.rmdir = fsop_unlink,
	.symlink = fsop_symlink,
	.rename = fsop_rename,
	.link = fsop_link,
	.write = fsop_write,
	.create = fsop_create,
	.setxattr = fsop_setxattr,
	.removexattr = fsop_removexattr,
	.fallocate = fsop_fallocate,
};
