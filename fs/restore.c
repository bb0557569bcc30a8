/*
 * fs/restore - MOUNT/restore/ (see restore.h).
 */
#include "restore.h"

#include "live.h" /* live/ beside restore/ in the root */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "names/names.h"
#include "restore/restore.h"
#include "util/log.h"
#include "util/util.h"

#define TIMEOUT	      1.0
#define XATTR_STATUS  "user.m365.restore"
#define XATTR_POLICY  "user.m365.conflict"
#define XATTR_PREFIX  "user.m365."
#define XATTR_IS_READ "user.m365.isRead"

struct rnode {
	uint64_t ino;
	uint64_t parent;
	char *name;
	bool dir;
	bool gone; /* unlinked */
	int conflict; /* directories: -1 = inherit */
	/* files */
	char *spool; /* spool path, NULL before the first write open */
	int fd; /* spool fd while open for writing, else -1 */
	bool mem; /* fd is a memory spool: no spool file yet */
	int64_t size;
	int64_t mtime;
	int64_t entry; /* queue entry once committed, else 0 */
	bool committed;
	bool listed; /* directories: the tenant's names were added */
	struct rnode *child, *next, *prev; /* first child; siblings */
	struct rnode *hnext; /* chain in R.hash: (parent, name) */
};

static struct {
	char *connection;
	char *conflict_s;
	unsigned threads;
	int conflict;
	const struct fuse_lowlevel_ops *base;
	struct fuse_lowlevel_ops ops;
	struct fs *fs;
	struct restore_conn *conn;
	struct restore *r;
	pthread_mutex_t lock;
	struct rnode **nodes; /* [0] = restore/, [i] = ino 15 + i */
	size_t n, cap;
	/* linked nodes by (parent, name): a cp -r of 100,000 files into one
	 * folder looks each name up, and rsync renames each temporary file */
	struct rnode **hash;
	size_t hcap, hn;
} R = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- options ----------------------------------------------------------- */

#define RO(t, p)                                                               \
	{                                                                      \
		t, offsetof(struct ropts, p), 1                                \
	}
struct ropts {
	char *connection;
	char *conflict;
	unsigned threads;
};

static const struct fuse_opt ropt_spec[] = {
	RO("connection=%s", connection),
	RO("conflict=%s", conflict),
	RO("restore_threads=%u", threads),
	FUSE_OPT_END,
};

static int keep_other(void *data, const char *arg, int key,
		      struct fuse_args *outargs)
{
	(void)data;
	(void)arg;
	(void)key;
	(void)outargs;
	return 1;
}

int fs_restore_opts(struct fuse_args *args)
{
	struct ropts o = { 0 };

	if (fuse_opt_parse(args, &o, ropt_spec, keep_other) < 0)
		return -1;
	R.connection = o.connection;
	R.conflict_s = o.conflict;
	R.threads = o.threads;
	R.conflict = RESTORE_RENAME;
	if (o.conflict) {
		R.conflict = restore_conflict_parse(o.conflict);
		if (R.conflict < 0) {
			log_err("conflict policy '%s' is not rename, replace or skip",
				o.conflict);
			return -1;
		}
	}
	if (o.conflict && !o.connection)
		log_warn(
			"-o conflict needs -o connection=NAME to enable restore/");
	return 0;
}

bool fs_restore_enabled(void)
{
	return R.connection != NULL;
}

/* ---- nodes ------------------------------------------------------------- */

static uint64_t node_ino(size_t i)
{
	return i ? INO_RESTORE_FIRST - 1 + i : INO_RESTORE;
}

/* The node of @ino, or NULL (lock held). */
static struct rnode *node_get(uint64_t ino)
{
	size_t i;

	if (ino == INO_RESTORE)
		i = 0;
	else if (ino >= INO_RESTORE_FIRST)
		i = ino - INO_RESTORE_FIRST + 1;
	else
		return NULL;
	if (i >= R.n || !R.nodes[i] || R.nodes[i]->gone)
		return NULL;
	return R.nodes[i];
}

static bool is_mine(uint64_t ino)
{
	return R.r && (ino == INO_RESTORE || ino == INO_RESTORE_STATUS ||
		       (ino >= INO_RESTORE_FIRST && ino_snap(ino) == 0));
}

static size_t hash_of(uint64_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return (size_t)(h ^ (h >> 29));
}

/* Double the table at one node per bucket; without memory keep chaining. */
static void hash_grow(void)
{
	size_t cap = R.hcap * 2, i;
	struct rnode **t = calloc(cap, sizeof(*t)), *n, *next;

	if (!t)
		return;
	for (i = 0; i < R.hcap; i++)
		for (n = R.hash[i]; n; n = next) {
			size_t b = hash_of(n->parent, n->name) & (cap - 1);

			next = n->hnext;
			n->hnext = t[b];
			t[b] = n;
		}
	free(R.hash);
	R.hash = t;
	R.hcap = cap;
}

/* Link @n as a child of @dir under its name (lock held). */
static void child_link(struct rnode *dir, struct rnode *n)
{
	size_t b;

	n->parent = dir->ino;
	n->prev = NULL;
	n->next = dir->child;
	if (dir->child)
		dir->child->prev = n;
	dir->child = n;
	if (R.hn >= R.hcap)
		hash_grow();
	b = hash_of(n->parent, n->name) & (R.hcap - 1);
	n->hnext = R.hash[b];
	R.hash[b] = n;
	R.hn++;
}

static void child_unlink(struct rnode *dir, struct rnode *n)
{
	struct rnode **pp;

	if (n->prev)
		n->prev->next = n->next;
	else if (dir->child == n)
		dir->child = n->next;
	if (n->next)
		n->next->prev = n->prev;
	n->next = n->prev = NULL;
	pp = &R.hash[hash_of(n->parent, n->name) & (R.hcap - 1)];
	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == n) {
			*pp = n->hnext;
			R.hn--;
			break;
		}
	n->hnext = NULL;
}

static struct rnode *child_find(struct rnode *dir, const char *name)
{
	struct rnode *c;

	for (c = R.hash[hash_of(dir->ino, name) & (R.hcap - 1)]; c;
	     c = c->hnext)
		if (c->parent == dir->ino && !c->gone && !strcmp(c->name, name))
			return c;
	return NULL;
}

/* Add a node under @parent (lock held).  NULL: no memory. */
static struct rnode *node_add(struct rnode *parent, const char *name, bool dir)
{
	struct rnode *n, **v;

	if (R.n == R.cap) {
		size_t cap = R.cap ? R.cap * 2 : 256;

		v = realloc(R.nodes, cap * sizeof(*v));
		if (!v)
			return NULL;
		R.nodes = v;
		R.cap = cap;
	}
	n = calloc(1, sizeof(*n));
	if (!n || !(n->name = strdup(name))) {
		free(n);
		return NULL;
	}
	n->ino = node_ino(R.n);
	n->dir = dir;
	n->conflict = -1;
	n->fd = -1;
	n->mtime = util_now();
	R.nodes[R.n++] = n;
	if (parent)
		child_link(parent, n);
	return n;
}

/* Path of @n below restore/ into @out (lock held). */
static int node_path(struct rnode *n, struct buf *out)
{
	const char *parts[256];
	int k = 0;

	buf_truncate(out, 0);
	while (n && n->ino != INO_RESTORE && k < 256) {
		parts[k++] = n->name;
		n = node_get(n->parent);
	}
	if (k == 256)
		return -ENAMETOOLONG;
	buf_adds(out, "");
	while (k--)
		buf_addf(out, "%s%s", parts[k], k ? "/" : "");
	return out->data ? 0 : -ENOMEM;
}

/* The conflict policy that applies under directory @n (lock held). */
static int node_policy(struct rnode *n)
{
	while (n) {
		if (n->conflict >= 0)
			return n->conflict;
		if (n->ino == INO_RESTORE)
			break;
		n = node_get(n->parent);
	}
	return R.conflict;
}

static void node_attr(const struct rnode *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = n->dir ? S_IFDIR | 0700 : S_IFREG | 0600;
	st->st_nlink = n->dir ? 2 : 1;
	st->st_uid = R.fs->uid;
	st->st_gid = R.fs->gid;
	st->st_size = n->dir ? 0 : n->size;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = n->mtime;
}

static void status_attr(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = INO_RESTORE_STATUS;
	st->st_mode = S_IFREG | 0400;
	st->st_nlink = 1;
	st->st_uid = R.fs->uid;
	st->st_gid = R.fs->gid;
	st->st_size = 0; /* generated at open: read with direct I/O */
	st->st_mtim.tv_sec = util_now();
}

static void reply_node(fuse_req_t req, const struct stat *st)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = st->st_ino;
	e.attr = *st;
	e.attr_timeout = TIMEOUT;
	e.entry_timeout = TIMEOUT;
	fuse_reply_entry(req, &e);
}

/* ---- committing a file ------------------------------------------------- */

static bool deferred(const char *name)
{
	return name[0] == '.'; /* rsync's temporary files: wait for rename */
}

/* Commit @n (lock held; drops and retakes it). */
static int node_commit(struct rnode *n)
{
	struct buf path = BUF_INIT;
	char *spool;
	int64_t size, id = 0;
	int fd, rc;
	bool close_fd = false;

	if (n->committed || !n->spool)
		return 0;
	rc = node_path(n, &path);
	if (rc < 0)
		goto out;
	fd = n->fd;
	if (fd < 0) {
		fd = open(n->spool, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			goto out;
		}
		close_fd = true;
	}
	spool = strdup(n->spool);
	size = n->size;
	n->committed = true; /* no second commit while unlocked */
	pthread_mutex_unlock(&R.lock);
	rc = spool ? restore_commit(R.r, fd, path.data, spool, size, &id)
		   : -ENOMEM;
	pthread_mutex_lock(&R.lock);
	free(spool);
	if (close_fd)
		close(fd);
	if (rc < 0)
		n->committed = false;
	else
		n->entry = id;
out:
	buf_release(&path);
	return rc;
}

/* Give a memory spool of @n its spool file (lock held): before it grows
 * beyond what the catalog keeps, or is closed uncommitted. */
static int node_to_disk(struct rnode *n)
{
	int rc;

	if (!n->mem)
		return 0;
	rc = restore_spool_to_disk(n->spool, &n->fd);
	if (rc == 0)
		n->mem = false;
	return rc;
}

/* ---- operations -------------------------------------------------------- */

static void rop_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	R.base->init(userdata, conn);
	/* restore/ files are opened for writing: opens must be sent */
	conn->want &= ~(unsigned)(FUSE_CAP_NO_OPEN_SUPPORT |
				  FUSE_CAP_NO_OPENDIR_SUPPORT);
	fs->no_open = false;
	fs->no_opendir = false;
}

static void rop_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct restore_loc loc = { 0 };
	struct rnode *d, *c;
	struct buf path = BUF_INIT;
	struct stat st;
	int rc;

	if (parent == INO_ROOT && !strcmp(name, "restore") && R.r) {
		pthread_mutex_lock(&R.lock);
		node_attr(R.nodes[0], &st);
		pthread_mutex_unlock(&R.lock);
		reply_node(req, &st);
		return;
	}
	if (!is_mine(parent)) {
		R.base->lookup(req, parent, name);
		return;
	}
	if (parent == INO_RESTORE && !strcmp(name, ".status")) {
		status_attr(&st);
		reply_node(req, &st);
		return;
	}
	pthread_mutex_lock(&R.lock);
	d = node_get(parent);
	c = d && d->dir ? child_find(d, name) : NULL;
	if (c)
		node_attr(c, &st);
	else if (d && d->dir)
		rc = node_path(d, &path);
	pthread_mutex_unlock(&R.lock);
	if (c) {
		reply_node(req, &st);
		goto out;
	}
	if (!d || !d->dir) {
		fuse_reply_err(req, d ? ENOTDIR : ENOENT);
		goto out;
	}
	/*
	 * Below a library, a OneDrive or a mailbox a miss is just a miss
	 * (mkdir finds or creates the folder): no Graph call per new file.
	 * Above, the tenant's hosts, sites, libraries and users are looked
	 * up in Graph.
	 */
	rc = path.data ? restore_dir(R.r, path.data, false, &loc) : -ENOMEM;
	if (rc < 0 || loc.kind == RESTORE_K_FOLDER ||
	    loc.kind == RESTORE_K_MAILBOX ||
	    loc.kind == RESTORE_K_MAIL_FOLDER) {
		fuse_reply_err(req, rc < 0 ? -rc : ENOENT);
		goto out;
	}
	restore_loc_release(&loc);
	if (path.len)
		buf_addch(&path, '/');
	buf_adds(&path, name);
	rc = path.data ? restore_dir(R.r, path.data, false, &loc) : -ENOMEM;
	if (rc < 0) {
		log_debug("restore: lookup of '%s': %s", path.data,
			  strerror(-rc));
		fuse_reply_err(req,
			       rc == -ENOTDIR || rc == -EINVAL ? ENOENT : -rc);
		goto out;
	}
	pthread_mutex_lock(&R.lock);
	c = child_find(d, name);
	if (!c)
		c = node_add(d, name, true);
	if (c)
		node_attr(c, &st);
	pthread_mutex_unlock(&R.lock);
	if (c)
		reply_node(req, &st);
	else
		fuse_reply_err(req, ENOMEM);
out:
	restore_loc_release(&loc);
	buf_release(&path);
}

static void rop_getattr(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct rnode *n;
	struct stat st;

	if (!is_mine(ino)) {
		R.base->getattr(req, ino, fi);
		return;
	}
	if (ino == INO_RESTORE_STATUS) {
		status_attr(&st);
		fuse_reply_attr(req, &st, 0);
		return;
	}
	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (n)
		node_attr(n, &st);
	pthread_mutex_unlock(&R.lock);
	if (n)
		fuse_reply_attr(req, &st, TIMEOUT);
	else
		fuse_reply_err(req, ENOENT);
}

static void rop_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			int to_set, struct fuse_file_info *fi)
{
	struct rnode *n;
	struct stat st;
	int rc = 0;

	if (!is_mine(ino)) {
		R.base->setattr(req, ino, attr, to_set, fi);
		return;
	}
	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (!n) {
		rc = -ENOENT;
	} else if (to_set & FUSE_SET_ATTR_SIZE) {
		if (n->dir)
			rc = -EISDIR;
		else if (n->committed || n->fd < 0)
			rc = -EBUSY;
		else if (attr->st_size > (off_t)RESTORE_INLINE_MAX)
			rc = node_to_disk(n);
		if (rc == 0 && !n->dir && ftruncate(n->fd, attr->st_size) < 0)
			rc = -errno;
		else if (rc == 0 && !n->dir)
			n->size = attr->st_size;
	}
	if (n && rc == 0 && (to_set & FUSE_SET_ATTR_MTIME))
		n->mtime = attr->st_mtim.tv_sec; /* shown only */
	if (n && rc == 0)
		node_attr(n, &st);
	pthread_mutex_unlock(&R.lock);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static void rop_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode)
{
	struct restore_loc loc = { 0 };
	struct buf path = BUF_INIT;
	struct rnode *d, *c = NULL;
	struct stat st;
	int rc = 0;

	if (!is_mine(parent)) {
		R.base->mkdir(req, parent, name, mode);
		return;
	}
	pthread_mutex_lock(&R.lock);
	d = node_get(parent);
	if (!d || !d->dir)
		rc = d ? -ENOTDIR : -ENOENT;
	else if (child_find(d, name))
		rc = -EEXIST;
	else
		rc = node_path(d, &path);
	pthread_mutex_unlock(&R.lock);
	if (rc == 0) {
		if (path.len)
			buf_addch(&path, '/');
		buf_adds(&path, name);
		rc = path.data ? restore_dir(R.r, path.data, true, &loc)
			       : -ENOMEM;
		if (rc == -ENOTDIR)
			rc = -EEXIST; /* a file of that name in the tenant */
	}
	if (rc == 0) {
		log_info("restore: folder '%s' ready", path.data);
		pthread_mutex_lock(&R.lock);
		c = child_find(d, name);
		if (!c)
			c = node_add(d, name, true);
		if (c)
			node_attr(c, &st);
		pthread_mutex_unlock(&R.lock);
		rc = c ? 0 : -ENOMEM;
	}
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		reply_node(req, &st);
	restore_loc_release(&loc);
	buf_release(&path);
}

/* Start a new spool for @n (lock held). */
static int node_spool(struct rnode *n, struct rnode *dir)
{
	struct buf spool = BUF_INIT;
	int fd, rc;

	/* a small file needs no spool file (kept in the catalog); rsync's
	 * temporary files are committed by path after their rename */
	if (deferred(n->name))
		rc = restore_spool_open(R.r, node_policy(dir), &spool, &fd);
	else
		rc = restore_spool_open_mem(R.r, node_policy(dir), &spool, &fd);
	if (rc < 0)
		return rc;
	if (n->fd >= 0)
		close(n->fd);
	if (n->spool && !n->committed && !n->mem)
		unlink(n->spool);
	free(n->spool);
	n->spool = strdup(spool.data);
	buf_release(&spool);
	n->fd = fd;
	n->mem = !deferred(n->name);
	n->size = 0;
	n->entry = 0;
	n->committed = false;
	n->mtime = util_now();
	return 0;
}

static void rop_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, struct fuse_file_info *fi)
{
	struct restore_loc loc = { 0 };
	struct buf path = BUF_INIT;
	struct rnode *d, *n = NULL;
	struct fuse_entry_param e;
	size_t len = strlen(name);
	int rc;

	if (!is_mine(parent)) {
		R.base->create(req, parent, name, mode, fi);
		return;
	}
	pthread_mutex_lock(&R.lock);
	d = node_get(parent);
	rc = !d ? -ENOENT : !d->dir ? -ENOTDIR : node_path(d, &path);
	pthread_mutex_unlock(&R.lock);
	if (rc == 0)
		rc = restore_dir(R.r, path.data, false, &loc);
	if (rc == 0 && loc.kind != RESTORE_K_FOLDER &&
	    !(loc.kind == RESTORE_K_MAIL_FOLDER && len > 4 &&
	      !strcmp(name + len - 4, ".eml"))) {
		log_warn(
			"restore: cannot restore '%s' into '%s': files go into a library, a OneDrive or a folder in one; messages (.eml) into a mail folder",
			name, path.data);
		rc = -EACCES;
	}
	if (rc == 0) {
		pthread_mutex_lock(&R.lock);
		n = child_find(d, name);
		if (n && n->dir)
			rc = -EISDIR;
		else if (!n && !(n = node_add(d, name, false)))
			rc = -ENOMEM;
		if (rc == 0)
			rc = node_spool(n, d);
		if (rc == 0) {
			memset(&e, 0, sizeof(e));
			e.ino = n->ino;
			node_attr(n, &e.attr);
			e.attr_timeout = e.entry_timeout = TIMEOUT;
		}
		pthread_mutex_unlock(&R.lock);
	}
	fi->direct_io = 1; /* see rop_open() */
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (fuse_reply_create(req, &e, fi) == -ENOENT)
		log_debug("restore: create of '%s' interrupted", name);
	restore_loc_release(&loc);
	buf_release(&path);
}

struct status_buf {
	struct buf b;
};

static void rop_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct status_buf *sb;
	struct rnode *n, *d;
	int rc = 0;

	if (!is_mine(ino)) {
		R.base->open(req, ino, fi);
		return;
	}
	if (ino == INO_RESTORE_STATUS) {
		if ((fi->flags & O_ACCMODE) != O_RDONLY) {
			fuse_reply_err(req, EACCES);
			return;
		}
		sb = calloc(1, sizeof(*sb));
		rc = sb ? restore_status_text(R.r, &sb->b) : -ENOMEM;
		if (rc < 0) {
			if (sb)
				buf_release(&sb->b);
			free(sb);
			fuse_reply_err(req, -rc);
			return;
		}
		fi->fh = (uintptr_t)sb;
		fi->direct_io = 1;
		fuse_reply_open(req, fi);
		return;
	}
	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (!n)
		rc = -ENOENT;
	else if (n->dir)
		rc = -EISDIR;
	else if ((fi->flags & O_ACCMODE) == O_RDONLY)
		rc = n->fd >= 0 ? 0 : -EACCES; /* restored: not readable */
	else if (n->committed || n->fd < 0) {
		d = node_get(n->parent);
		rc = d ? node_spool(n, d) : -ENOENT; /* a new restore */
	} else if (fi->flags & O_TRUNC) {
		if (ftruncate(n->fd, 0) < 0)
			rc = -errno;
		else
			n->size = 0;
	}
	pthread_mutex_unlock(&R.lock);
	fi->fh = 0;
	/*
	 * Unbuffered: each write comes here as it is made (as it would
	 * without a write-back cache), and the kernel leaves clearing
	 * set-user-ID bits to us instead of asking for security.capability
	 * before the first write of every file (one request per file less
	 * in a cp -r).  Shared writable mmap() is not supported then.
	 */
	fi->direct_io = 1;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_open(req, fi);
}

static void rop_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct status_buf *sb;
	struct rnode *n;
	char *p;
	ssize_t got = -1;
	int fd = -1;

	if (!is_mine(ino)) {
		R.base->read(req, ino, size, off, fi);
		return;
	}
	if (ino == INO_RESTORE_STATUS) {
		sb = (struct status_buf *)(uintptr_t)fi->fh;
		if (!sb || off < 0 || (size_t)off >= sb->b.len) {
			fuse_reply_buf(req, NULL, 0);
			return;
		}
		if (size > sb->b.len - (size_t)off)
			size = sb->b.len - (size_t)off;
		/*
		 * Reply from a copy: once the kernel has the data the reader
		 * may close, and release frees @sb while this thread is still
		 * returning from writev (AddressSanitizer inspects the iovec
		 * after the call).
		 */
		p = malloc(size);
		if (!p) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		memcpy(p, sb->b.data + off, size);
		fuse_reply_buf(req, p, size);
		free(p);
		return;
	}
	p = malloc(size ? size : 1);
	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (n && n->fd >= 0 && p) {
		fd = n->fd;
		got = pread(fd, p, size, off);
	}
	pthread_mutex_unlock(&R.lock);
	if (got < 0)
		fuse_reply_err(req, fd < 0 ? EACCES : errno);
	else
		fuse_reply_buf(req, p, (size_t)got);
	free(p);
}

static void rop_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		      size_t size, off_t off, struct fuse_file_info *fi)
{
	struct rnode *n;
	ssize_t w = -1;
	int err = EBADF;

	if (!is_mine(ino)) {
		R.base->write(req, ino, buf, size, off, fi);
		return;
	}
	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (n && n->fd >= 0 && !n->committed &&
	    off + (off_t)size > (off_t)RESTORE_INLINE_MAX &&
	    node_to_disk(n) < 0) {
		err = EIO;
	} else if (n && n->fd >= 0 && !n->committed) {
		w = pwrite(n->fd, buf, size, off);
		if (w < 0)
			err = errno;
		else if (off + w > n->size)
			n->size = off + w;
	} else if (n && n->committed) {
		err = EBUSY; /* already queued: write a new copy */
	}
	pthread_mutex_unlock(&R.lock);
	if (w < 0)
		fuse_reply_err(req, err);
	else
		fuse_reply_write(req, (size_t)w);
}

/* flush, fsync: the restore is recorded before they return. */
static void commit_req(fuse_req_t req, fuse_ino_t ino)
{
	struct rnode *n;
	int rc = 0;

	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (n && !n->dir && n->fd >= 0 && !n->committed && !deferred(n->name))
		rc = node_commit(n);
	pthread_mutex_unlock(&R.lock);
	fuse_reply_err(req, rc < 0 ? EIO : 0);
}

static void rop_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!is_mine(ino)) {
		if (R.base->flush)
			R.base->flush(req, ino, fi);
		else
			fuse_reply_err(req, 0);
		return;
	}
	commit_req(req, ino);
}

static void rop_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		      struct fuse_file_info *fi)
{
	if (!is_mine(ino)) {
		if (R.base->fsync)
			R.base->fsync(req, ino, datasync, fi);
		else
			fuse_reply_err(req, 0);
		return;
	}
	commit_req(req, ino);
}

static void rop_release(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct status_buf *sb;
	struct rnode *n;

	if (!is_mine(ino)) {
		if (R.base->release)
			R.base->release(req, ino, fi);
		else
			fuse_reply_err(req, 0);
		return;
	}
	if (ino == INO_RESTORE_STATUS) {
		sb = (struct status_buf *)(uintptr_t)fi->fh;
		if (sb)
			buf_release(&sb->b);
		free(sb);
		fuse_reply_err(req, 0);
		return;
	}
	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (n && !n->dir && n->fd >= 0 && (fi->flags & O_ACCMODE) != O_RDONLY) {
		if (!n->committed && !deferred(n->name))
			node_commit(n);
		if (!n->committed)
			node_to_disk(n); /* committed later, by path */
		close(n->fd);
		n->fd = -1;
	}
	pthread_mutex_unlock(&R.lock);
	fuse_reply_err(req, 0);
}

static void rop_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rnode *d, *n;
	int rc = 0;

	if (!is_mine(parent)) {
		R.base->unlink(req, parent, name);
		return;
	}
	pthread_mutex_lock(&R.lock);
	d = node_get(parent);
	n = d ? child_find(d, name) : NULL;
	if (!n)
		rc = ENOENT;
	else if (n->dir && n->child)
		rc = ENOTEMPTY;
	else {
		/* forget it here; the tenant keeps what was restored */
		if (!n->dir && !n->committed && n->spool && !n->mem)
			unlink(n->spool);
		if (n->fd >= 0)
			close(n->fd);
		n->fd = -1;
		child_unlink(d, n);
		n->gone = true;
	}
	pthread_mutex_unlock(&R.lock);
	fuse_reply_err(req, rc);
}

static void rop_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		       fuse_ino_t newparent, const char *newname,
		       unsigned int flags)
{
	struct rnode *d, *nd, *n, *old;
	int rc = 0;

	if (!is_mine(parent) && !is_mine(newparent)) {
		R.base->rename(req, parent, name, newparent, newname, flags);
		return;
	}
	pthread_mutex_lock(&R.lock);
	d = node_get(parent);
	nd = node_get(newparent);
	n = d ? child_find(d, name) : NULL;
	if (!n || !nd)
		rc = -ENOENT;
	else if (n->dir || n->committed)
		rc = -EXDEV; /* only spooled files can be renamed */
	else if ((old = child_find(nd, newname))) {
		if (old->dir || (flags & RENAME_NOREPLACE))
			rc = -EEXIST;
		else {
			child_unlink(nd, old);
			old->gone = true;
		}
	}
	if (rc == 0) {
		char *nn = strdup(newname);

		if (!nn) {
			rc = -ENOMEM;
		} else {
			child_unlink(d, n);
			free(n->name);
			n->name = nn;
			child_link(nd, n);
			/* rsync: the temporary file got its real name */
			if (n->fd < 0 && !deferred(n->name))
				rc = node_commit(n) < 0 ? -EIO : 0;
		}
	}
	pthread_mutex_unlock(&R.lock);
	fuse_reply_err(req, -rc);
}

static int add_listed(void *ctx, const char *name)
{
	struct rnode *d = ctx;
	int rc = 0;

	pthread_mutex_lock(&R.lock);
	if (!child_find(d, name) && !node_add(d, name, true))
		rc = -ENOMEM;
	pthread_mutex_unlock(&R.lock);
	return rc;
}

/*
 * Add what directory @ino holds in the tenant (hosts, sites, libraries,
 * users, mail folders: restore_list()) once per mount, so that restore/
 * can be browsed.  Nodes are never freed before unmount, so @d stays
 * valid without the lock.
 */
static void list_tenant(fuse_ino_t ino)
{
	struct buf path = BUF_INIT;
	struct rnode *d;
	int rc = 0;

	pthread_mutex_lock(&R.lock);
	d = node_get(ino);
	if (!d || !d->dir || d->listed || d->ino == INO_RESTORE)
		d = NULL;
	else
		rc = node_path(d, &path);
	if (d && rc == 0)
		d->listed = true; /* a failed listing is not retried */
	pthread_mutex_unlock(&R.lock);
	if (!d || rc < 0)
		goto out;
	rc = restore_list(R.r, path.data, add_listed, d);
	if (rc < 0)
		log_debug("restore: cannot list '%s' in the tenant: %s",
			  path.data, strerror(-rc));
out:
	buf_release(&path);
}

static void rop_opendir(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	if (!is_mine(ino)) {
		R.base->opendir(req, ino, fi);
		return;
	}
	list_tenant(ino);
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

struct dent {
	const char *name;
	char *owned; /* name when allocated */
	struct stat st;
};

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       bool plus)
{
	struct dent *v = NULL;
	struct rnode *d, *c;
	size_t n = 0, cap = 0, i, used = 0, len;
	char *p = malloc(size);
	int rc = 0;

	pthread_mutex_lock(&R.lock);
	d = ino == INO_ROOT ? NULL : node_get(ino);
	if (ino != INO_ROOT && (!d || !d->dir))
		rc = d ? ENOTDIR : ENOENT;
	cap = 5;
	for (c = d ? d->child : NULL; c; c = c->next)
		cap++;
	v = calloc(cap, sizeof(*v));
	if (!v || !p)
		rc = ENOMEM;
	if (!rc) {
		v[n].name = ".";
		v[n].st.st_ino = ino;
		v[n++].st.st_mode = S_IFDIR | 0700;
		v[n].name = "..";
		v[n].st.st_ino = ino == INO_ROOT	 ? INO_ROOT
				 : d->ino == INO_RESTORE ? INO_ROOT
							 : d->parent;
		v[n++].st.st_mode = S_IFDIR | 0700;
		if (ino == INO_ROOT) {
			v[n].name = "snapshots";
			v[n].st.st_ino = INO_SNAPSHOTS;
			v[n++].st.st_mode = S_IFDIR | 0555;
			v[n].name = "restore";
			node_attr(R.nodes[0], &v[n++].st);
			if (fs_live_enabled()) { /* live */
				v[n].name = "live";
				v[n].st.st_ino = INO_LIVE;
				v[n++].st.st_mode = S_IFDIR | 0555;
			}
		} else {
			if (d->ino == INO_RESTORE) {
				v[n].name = ".status";
				status_attr(&v[n++].st);
			}
			for (c = d->child; c && n < cap; c = c->next) {
				v[n].name = v[n].owned = strdup(c->name);
				if (!v[n].name)
					rc = ENOMEM;
				node_attr(c, &v[n++].st);
			}
		}
	}
	pthread_mutex_unlock(&R.lock);
	for (i = off > 0 ? (size_t)off : 0; !rc && i < n; i++) {
		if (plus) {
			struct fuse_entry_param e;
			bool real = strcmp(v[i].name, ".") &&
				    strcmp(v[i].name, "..") &&
				    v[i].st.st_ino != INO_SNAPSHOTS;

			memset(&e, 0, sizeof(e));
			e.attr = v[i].st;
			if (real) {
				e.ino = v[i].st.st_ino;
				e.attr_timeout = e.entry_timeout = TIMEOUT;
			}
			len = fuse_add_direntry_plus(req, p + used, size - used,
						     v[i].name, &e,
						     (off_t)i + 1);
		} else {
			len = fuse_add_direntry(req, p + used, size - used,
						v[i].name, &v[i].st,
						(off_t)i + 1);
		}
		if (len > size - used)
			break;
		used += len;
	}
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_buf(req, p, used);
	for (i = 0; v && i < n; i++)
		free(v[i].owned);
	free(v);
	free(p);
}

static void rop_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	if (!is_mine(ino) && !(ino == INO_ROOT && R.r)) {
		R.base->readdir(req, ino, size, off, fi);
		return;
	}
	do_readdir(req, ino, size, off, false);
}

static void rop_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			    off_t off, struct fuse_file_info *fi)
{
	if (!is_mine(ino) && !(ino == INO_ROOT && R.r)) {
		R.base->readdirplus(req, ino, size, off, fi);
		return;
	}
	do_readdir(req, ino, size, off, true);
}

static void rop_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 size_t size)
{
	struct buf v = BUF_INIT;
	struct rnode *n;
	int64_t entry = 0;
	int rc = 0;
	bool file = false;

	if (!is_mine(ino)) {
		R.base->getxattr(req, ino, name, size);
		return;
	}
	if (ino == INO_RESTORE_STATUS) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (!n) {
		rc = ENOENT;
	} else if (!strcmp(name, XATTR_POLICY)) {
		buf_adds(&v,
			 restore_conflict_name(
				 n->dir ? node_policy(n)
					: node_policy(node_get(n->parent))));
	} else if (!strcmp(name, XATTR_STATUS) && !n->dir) {
		file = true;
		entry = n->entry;
		if (!n->committed)
			buf_adds(&v, deferred(n->name)
					     ? "spooling: waiting for a rename"
					     : "spooling");
	} else {
		rc = ENODATA;
	}
	pthread_mutex_unlock(&R.lock);
	if (!rc && file && entry && restore_entry_status(R.r, entry, &v) < 0)
		rc = EIO;
	if (!rc && !v.data)
		buf_adds(&v, "");
	if (rc)
		fuse_reply_err(req, rc);
	else if (!size)
		fuse_reply_xattr(req, v.len);
	else if (size < v.len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v.data, v.len);
	buf_release(&v);
}

static void rop_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	static const char both[] = XATTR_POLICY "\0" XATTR_STATUS;
	static const char dir[] = XATTR_POLICY;
	struct rnode *n;
	size_t len = 0;

	if (!is_mine(ino)) {
		R.base->listxattr(req, ino, size);
		return;
	}
	if (ino == INO_RESTORE_STATUS) {
		fuse_reply_xattr(req, 0);
		return;
	}
	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (n)
		len = n->dir ? sizeof(dir) : sizeof(both);
	pthread_mutex_unlock(&R.lock);
	if (!n)
		fuse_reply_err(req, ENOENT);
	else if (!size)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, len == sizeof(dir) ? dir : both, len);
}

/*
 * user.m365.* set on a file being spooled, e.g. by cp -a or rsync -X from
 * snapshots/: user.m365.isRead = false restores a message unread; the
 * others (ids, URLs, hashes of the source) are accepted and ignored.
 */
static void file_xattr(fuse_req_t req, fuse_ino_t ino, const char *name,
		       const char *value, size_t size)
{
	struct rnode *n;
	bool unread = size >= 5 && !strncmp(value, "false", 5);
	int rc = 0;

	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (!n || n->dir)
		rc = n ? -ENOTSUP : -ENOENT;
	else if (strcmp(name, XATTR_IS_READ))
		rc = 0;
	else if (n->committed || !n->spool)
		rc = -EBUSY; /* queued already: too late to change */
	else
		rc = node_to_disk(n);
	if (rc == 0 && n && !n->dir && !strcmp(name, XATTR_IS_READ))
		rc = restore_spool_set_unread(&n->spool, unread);
	pthread_mutex_unlock(&R.lock);
	fuse_reply_err(req, -rc);
}

static void rop_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 const char *value, size_t size, int flags)
{
	char v[16];
	struct rnode *n;
	int c, rc = 0;

	if (!is_mine(ino)) {
		R.base->setxattr(req, ino, name, value, size, flags);
		return;
	}
	if (!strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) &&
	    strcmp(name, XATTR_POLICY)) {
		file_xattr(req, ino, name, value, size);
		return;
	}
	if (strcmp(name, XATTR_POLICY)) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (size >= sizeof(v)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(v, value, size);
	v[size] = 0;
	if (size && v[size - 1] == '\n')
		v[size - 1] = 0;
	c = restore_conflict_parse(v);
	if (c < 0) {
		log_warn(
			"restore: conflict policy '%s' is not rename, replace or skip",
			v);
		fuse_reply_err(req, EINVAL);
		return;
	}
	pthread_mutex_lock(&R.lock);
	n = node_get(ino);
	if (!n || !n->dir)
		rc = n ? ENOTSUP : ENOENT;
	else
		n->conflict = c;
	pthread_mutex_unlock(&R.lock);
	fuse_reply_err(req, rc);
}

static void rop_statfs(fuse_req_t req, fuse_ino_t ino)
{
	R.base->statfs(req, is_mine(ino) ? INO_ROOT : ino);
}

const struct fuse_lowlevel_ops *
fs_restore_ops(const struct fuse_lowlevel_ops *base)
{
	if (!fs_restore_enabled())
		return base;
	R.base = base;
	R.ops = *base;
	R.ops.init = rop_init;
	R.ops.lookup = rop_lookup;
	R.ops.getattr = rop_getattr;
	R.ops.setattr = rop_setattr;
	R.ops.mkdir = rop_mkdir;
	R.ops.create = rop_create;
	R.ops.open = rop_open;
	R.ops.read = rop_read;
	R.ops.write = rop_write;
	R.ops.flush = rop_flush;
	R.ops.fsync = rop_fsync;
	R.ops.release = rop_release;
	R.ops.unlink = rop_unlink;
	R.ops.rmdir = rop_unlink;
	R.ops.rename = rop_rename;
	R.ops.opendir = rop_opendir;
	R.ops.readdir = rop_readdir;
	R.ops.readdirplus = rop_readdirplus;
	R.ops.getxattr = rop_getxattr;
	R.ops.listxattr = rop_listxattr;
	R.ops.setxattr = rop_setxattr;
	R.ops.statfs = rop_statfs;
	return &R.ops;
}

int fs_restore_check(void)
{
	struct restore_conn *c = NULL;
	struct buf why = BUF_INIT;
	int rc;

	if (!fs_restore_enabled())
		return 0;
	rc = restore_conn_open(R.connection, &c, &why);
	restore_conn_free(c);
	if (rc < 0)
		fprintf(stderr, "m365fs: error: -o connection=%s: %s\n",
			R.connection, why.data ? why.data : strerror(-rc));
	buf_release(&why);
	return rc;
}

/* One queue entry into the tree: its folders and the file (the latest
 * entry of a target wins). */
static int add_entry(void *ctx, const struct cat_restore *e)
{
	struct rnode *d = R.nodes[0], *c = NULL;
	const char *p = e->target, *slash;
	char name[NAMES_MAX + 1];
	size_t len;

	(void)ctx;
	pthread_mutex_lock(&R.lock);
	while (d && *p) {
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (!len || len > NAMES_MAX)
			break;
		memcpy(name, p, len);
		name[len] = 0;
		c = child_find(d, name);
		if (!c)
			c = node_add(d, name, slash != NULL);
		if (!c || c->dir != (slash != NULL))
			break; /* no memory, or a file and a folder of one name */
		if (!slash) {
			c->committed = true;
			c->entry = e->id;
			c->size = e->size;
			c->mtime = e->updated;
			break;
		}
		d = c;
		p = slash + 1;
	}
	pthread_mutex_unlock(&R.lock);
	return 0;
}

int fs_restore_start(struct fs *fs)
{
	struct restore_config rc_cfg = { 0 };
	struct buf why = BUF_INIT;
	struct rnode *root, *top;
	static const char *const tops[] = { "sites", "onedrive", "mailboxes" };
	struct restore *r = NULL;
	size_t i;
	int rc;

	if (!fs_restore_enabled())
		return 0;
	R.fs = fs;
	rc = restore_conn_open(R.connection, &R.conn, &why);
	if (rc < 0) {
		log_err("restore/ is not available: %s",
			why.data ? why.data : strerror(-rc));
		goto out;
	}
	rc_cfg.repo = fs->o.repo;
	rc_cfg.graph = restore_conn_graph(R.conn);
	rc_cfg.threads = R.threads;
	rc = restore_new(&rc_cfg, &r);
	if (rc < 0) {
		log_err("restore/ is not available: cannot open the restore queue: %s",
			strerror(-rc));
		goto out;
	}
	pthread_mutex_lock(&R.lock);
	R.hash = calloc(1024, sizeof(*R.hash));
	R.hcap = R.hash ? 1024 : 0; /* grows: a power of two */
	root = R.hash ? node_add(NULL, "", true) : NULL;
	for (i = 0; root && i < 3; i++) {
		top = node_add(root, tops[i], true);
		if (!top)
			break;
	}
	pthread_mutex_unlock(&R.lock);
	if (!root || i < 3) {
		rc = -ENOMEM;
		goto out;
	}
	/* what the queue holds (earlier mounts too) is shown in restore/ */
	rc = cat_restore_list(restore_cat(r), add_entry, NULL);
	if (rc < 0)
		log_warn("restore: cannot read the restore queue: %s",
			 strerror(-rc));
	rc = restore_start(r);
	if (rc < 0) {
		log_err("restore/ is not available: cannot start the uploaders: %s",
			strerror(-rc));
		goto out;
	}
	R.r = r;
	r = NULL;
	log_info("restore/ is ready (connection '%s', conflict policy %s)",
		 R.connection, restore_conflict_name(R.conflict));
out:
	restore_free(r);
	buf_release(&why);
	return rc;
}

struct graph *fs_restore_graph(void)
{
	return R.conn ? restore_conn_graph(R.conn) : NULL;
}

void fs_restore_stop(void)
{
	size_t i;

	restore_free(R.r);
	R.r = NULL;
	restore_conn_free(R.conn);
	R.conn = NULL;
	for (i = 0; i < R.n; i++) {
		if (R.nodes[i]->fd >= 0)
			close(R.nodes[i]->fd);
		free(R.nodes[i]->name);
		free(R.nodes[i]->spool);
		free(R.nodes[i]);
	}
	free(R.nodes);
	R.nodes = NULL;
	R.n = R.cap = 0;
	free(R.hash);
	R.hash = NULL;
	R.hcap = R.hn = 0;
	free(R.connection);
	free(R.conflict_s);
	R.connection = R.conflict_s = NULL;
}
