/* Temporary stubs: every function of store.h, returning -ENOSYS. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

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
