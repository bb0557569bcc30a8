/* Temporary stubs: every function of store.h, returning -ENOSYS. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int store_key_parse(const char *text, unsigned char key[STORE_KEY_LEN])
{
	(void)text;
	(void)key;
	return -ENOSYS;
}

void store_key_format(const unsigned char key[STORE_KEY_LEN],
		      char out[STORE_KEY_B64_LEN + 1])
{
	(void)key;
	out[0] = 0;
}

int store_key_load_file(const char *path, unsigned char key[STORE_KEY_LEN],
			struct buf *why)
{
	(void)path;
	(void)key;
	(void)why;
	return -ENOSYS;
}

int store_key_load_credential(const char *name,
			      unsigned char key[STORE_KEY_LEN], struct buf *why)
{
	(void)name;
	(void)key;
	(void)why;
	return -ENOSYS;
}

int store_create(const char *repo, const struct store_create_opts *opts,
		 unsigned char key_out[STORE_KEY_LEN], struct buf *why)
{
	(void)repo;
	(void)opts;
	(void)key_out;
	(void)why;
	return -ENOSYS;
}

int store_open(const char *repo, const struct store_open_opts *opts,
	       struct store **out, struct buf *why)
{
	(void)repo;
	(void)opts;
	(void)why;
	*out = NULL;
	return -ENOSYS;
}

int store_close(struct store *st)
{
	(void)st;
	return 0;
}

void store_info(struct store *st, struct store_info *info)
{
	(void)st;
	memset(info, 0, sizeof(*info));
}

int store_lock_holder(const char *repo, struct buf *out)
{
	(void)repo;
	(void)out;
	return -ENOSYS;
}

int store_flush(struct store *st)
{
	(void)st;
	return -ENOSYS;
}

void store_content_init(struct store_content *c)
{
	memset(c, 0, sizeof(*c));
	buf_init(&c->desc, 0);
}

void store_content_release(struct store_content *c)
{
	if (c)
		buf_release(&c->desc);
}

int store_writer_new(struct store *st, struct store_writer **out)
{
	(void)st;
	*out = NULL;
	return -ENOSYS;
}

int store_writer_add(struct store_writer *w, const void *p, size_t n)
{
	(void)w;
	(void)p;
	(void)n;
	return -ENOSYS;
}

int store_writer_finish(struct store_writer *w, struct store_content *res)
{
	(void)w;
	(void)res;
	return -ENOSYS;
}

void store_writer_reset(struct store_writer *w)
{
	(void)w;
}

void store_writer_free(struct store_writer *w)
{
	(void)w;
}

int store_put(struct store *st, const void *p, size_t n,
	      struct store_content *res)
{
	(void)st;
	(void)p;
	(void)n;
	(void)res;
	return -ENOSYS;
}

int store_put_fd(struct store *st, int fd, struct store_content *res)
{
	(void)st;
	(void)fd;
	(void)res;
	return -ENOSYS;
}

int store_desc_parse(const void *desc, size_t len, uint64_t *size,
		     uint64_t *chunks)
{
	(void)desc;
	(void)len;
	(void)size;
	(void)chunks;
	return -ENOSYS;
}

int store_desc_foreach(const void *desc, size_t len,
		       int (*fn)(void *arg, const unsigned char *id,
				 uint64_t off, uint32_t len),
		       void *arg)
{
	(void)desc;
	(void)len;
	(void)fn;
	(void)arg;
	return -ENOSYS;
}

ssize_t store_read(struct store *st, const void *desc, size_t desc_len,
		   uint64_t off, void *p, size_t n)
{
	(void)st;
	(void)desc;
	(void)desc_len;
	(void)off;
	(void)p;
	(void)n;
	return -ENOSYS;
}

int store_read_fd(struct store *st, const void *desc, size_t desc_len, int fd)
{
	(void)st;
	(void)desc;
	(void)desc_len;
	(void)fd;
	return -ENOSYS;
}

int store_chunk_get(struct store *st, const unsigned char id[STORE_ID_LEN],
		    struct buf *out)
{
	(void)st;
	(void)id;
	(void)out;
	return -ENOSYS;
}

bool store_chunk_exists(struct store *st, const unsigned char id[STORE_ID_LEN])
{
	(void)st;
	(void)id;
	return false;
}

int store_blob_put(struct store *st, const char *kind, const char *name,
		   const void *p, size_t n)
{
	(void)st;
	(void)kind;
	(void)name;
	(void)p;
	(void)n;
	return -ENOSYS;
}

int store_blob_put_file(struct store *st, const char *path, const char *kind,
			const char *name)
{
	(void)st;
	(void)path;
	(void)kind;
	(void)name;
	return -ENOSYS;
}

int store_blob_list(struct store *st, const char *kind,
		    int (*fn)(void *arg, const struct store_blob_info *b),
		    void *arg)
{
	(void)st;
	(void)kind;
	(void)fn;
	(void)arg;
	return -ENOSYS;
}

int store_blob_get_file(struct store *st, const char *kind, const char *name,
			const char *path)
{
	(void)st;
	(void)kind;
	(void)name;
	(void)path;
	return -ENOSYS;
}

int store_blob_get(struct store *st, const char *kind, const char *name,
		   struct buf *out)
{
	(void)st;
	(void)kind;
	(void)name;
	(void)out;
	return -ENOSYS;
}

int store_blob_delete(struct store *st, const char *kind, const char *name)
{
	(void)st;
	(void)kind;
	(void)name;
	return -ENOSYS;
}

struct store_idset *store_idset_new(void)
{
	return NULL;
}

void store_idset_free(struct store_idset *s)
{
	(void)s;
}

int store_idset_add(struct store_idset *s, const unsigned char *id)
{
	(void)s;
	(void)id;
	return -ENOSYS;
}

int store_idset_add_desc(struct store_idset *s, const void *desc, size_t len)
{
	(void)s;
	(void)desc;
	(void)len;
	return -ENOSYS;
}

bool store_idset_has(const struct store_idset *s, const unsigned char *id)
{
	(void)s;
	(void)id;
	return false;
}

size_t store_idset_count(const struct store_idset *s)
{
	(void)s;
	return 0;
}

int store_check(struct store *st, int flags,
		void (*fn)(void *arg, const struct store_problem *p), void *arg,
		struct store_check_stats *stats)
{
	(void)st;
	(void)flags;
	(void)fn;
	(void)arg;
	(void)stats;
	return -ENOSYS;
}

int store_index_rebuild(struct store *st)
{
	(void)st;
	return -ENOSYS;
}

int store_prune(struct store *st, const struct store_idset *keep,
		struct store_prune_stats *stats)
{
	(void)st;
	(void)keep;
	(void)stats;
	return -ENOSYS;
}
