#include "catalog/catalog.h"

#include <errno.h>

int cat_open(const char *path, int flags, struct cat **out)
{
	(void)path;
	(void)flags;
	(void)out;
	return -ENOSYS;
}

void cat_close(struct cat *c)
{
	(void)c;
}

int cat_recover(struct cat *c, int *rolled_back)
{
	(void)c;
	(void)rolled_back;
	return -ENOSYS;
}

int cat_snapshot_begin(struct cat *c, int64_t *snap)
{
	(void)c;
	(void)snap;
	return -ENOSYS;
}

int cat_snapshot_count(struct cat *c, const struct cat_counters *delta)
{
	(void)c;
	(void)delta;
	return -ENOSYS;
}

int cat_snapshot_error(struct cat *c, const char *service, const char *path,
		       const char *graph_id, const char *reason)
{
	(void)c;
	(void)service;
	(void)path;
	(void)graph_id;
	(void)reason;
	return -ENOSYS;
}

int cat_snapshot_finish(struct cat *c, int status)
{
	(void)c;
	(void)status;
	return -ENOSYS;
}

int cat_snapshot_get(struct cat *c, int64_t snap, struct cat_snapshot *out)
{
	(void)c;
	(void)snap;
	(void)out;
	return -ENOSYS;
}

int cat_snapshot_latest(struct cat *c, int64_t *snap)
{
	(void)c;
	(void)snap;
	return -ENOSYS;
}

int cat_snapshot_list(struct cat *c, bool all, cat_snapshot_cb cb, void *ctx)
{
	(void)c;
	(void)all;
	(void)cb;
	(void)ctx;
	return -ENOSYS;
}

int cat_snapshot_errors(struct cat *c, int64_t snap, cat_error_cb cb, void *ctx)
{
	(void)c;
	(void)snap;
	(void)cb;
	(void)ctx;
	return -ENOSYS;
}

int cat_snapshot_forget(struct cat *c, int64_t snap)
{
	(void)c;
	(void)snap;
	return -ENOSYS;
}

bool cat_kind_is_dir(int kind)
{
	(void)kind;
	return false;
}

int cat_item_put(struct cat *c, const struct cat_item_in *in, int64_t *id,
		 int *result)
{
	(void)c;
	(void)in;
	(void)id;
	(void)result;
	return -ENOSYS;
}

int cat_item_touch(struct cat *c, int64_t id)
{
	(void)c;
	(void)id;
	return -ENOSYS;
}

int cat_item_delete(struct cat *c, int64_t id, int64_t *count)
{
	(void)c;
	(void)id;
	(void)count;
	return -ENOSYS;
}

int cat_item_find(struct cat *c, const char *scope, const char *graph_id,
		  struct cat_item *out)
{
	(void)c;
	(void)scope;
	(void)graph_id;
	(void)out;
	return -ENOSYS;
}

int cat_sweep_begin(struct cat *c, int64_t root)
{
	(void)c;
	(void)root;
	return -ENOSYS;
}

int cat_sweep_end(struct cat *c, int64_t root, int64_t *count)
{
	(void)c;
	(void)root;
	(void)count;
	return -ENOSYS;
}

int cat_lookup(struct cat *c, int64_t snap, int64_t parent, const char *name,
	       struct cat_item *out)
{
	(void)c;
	(void)snap;
	(void)parent;
	(void)name;
	(void)out;
	return -ENOSYS;
}

int cat_item_get(struct cat *c, int64_t snap, int64_t id, struct cat_item *out)
{
	(void)c;
	(void)snap;
	(void)id;
	(void)out;
	return -ENOSYS;
}

int cat_list(struct cat *c, int64_t snap, int64_t parent, const char *after,
	     cat_list_cb cb, void *ctx)
{
	(void)c;
	(void)snap;
	(void)parent;
	(void)after;
	(void)cb;
	(void)ctx;
	return -ENOSYS;
}

int cat_item_meta(struct cat *c, int64_t id, int64_t from_snap, struct buf *out)
{
	(void)c;
	(void)id;
	(void)from_snap;
	(void)out;
	return -ENOSYS;
}

int cat_meta_next(const char *p, size_t len, size_t *pos, const char **key,
		  const char **val)
{
	(void)p;
	(void)len;
	(void)pos;
	(void)key;
	(void)val;
	return -ENOSYS;
}

const char *cat_meta_find(const char *p, size_t len, const char *key)
{
	(void)p;
	(void)len;
	(void)key;
	return NULL;
}

int cat_content_put(struct cat *c, int64_t size, const unsigned char sha256[32],
		    const unsigned char *qxh, const void *desc, size_t desc_len,
		    int64_t *id)
{
	(void)c;
	(void)size;
	(void)sha256;
	(void)qxh;
	(void)desc;
	(void)desc_len;
	(void)id;
	return -ENOSYS;
}

int cat_content_find_sha256(struct cat *c, const unsigned char sha256[32],
			    struct cat_content *out)
{
	(void)c;
	(void)sha256;
	(void)out;
	return -ENOSYS;
}

int cat_content_find_qxh(struct cat *c, int64_t size,
			 const unsigned char qxh[20], struct cat_content *out)
{
	(void)c;
	(void)size;
	(void)qxh;
	(void)out;
	return -ENOSYS;
}

int cat_content_get(struct cat *c, int64_t id, struct cat_content *out,
		    struct buf *desc)
{
	(void)c;
	(void)id;
	(void)out;
	(void)desc;
	return -ENOSYS;
}

int cat_content_referenced(struct cat *c, bool drop_unreferenced,
			   cat_content_cb cb, void *ctx)
{
	(void)c;
	(void)drop_unreferenced;
	(void)cb;
	(void)ctx;
	return -ENOSYS;
}

int cat_delta_set(struct cat *c, const char *scope, const char *token)
{
	(void)c;
	(void)scope;
	(void)token;
	return -ENOSYS;
}

int cat_delta_get(struct cat *c, const char *scope, struct buf *out)
{
	(void)c;
	(void)scope;
	(void)out;
	return -ENOSYS;
}

void cat_set_commit_hook(struct cat *c, cat_commit_hook hook, void *ctx)
{
	(void)c;
	(void)hook;
	(void)ctx;
}

int cat_commit(struct cat *c)
{
	(void)c;
	return -ENOSYS;
}

void cat_restore_release(struct cat_restore *r)
{
	(void)r;
}

int cat_restore_enqueue(struct cat *c, const char *target, const char *spool,
			int64_t size, int64_t *id)
{
	(void)c;
	(void)target;
	(void)spool;
	(void)size;
	(void)id;
	return -ENOSYS;
}

int cat_restore_claim(struct cat *c, struct cat_restore *out)
{
	(void)c;
	(void)out;
	return -ENOSYS;
}

int cat_restore_update(struct cat *c, int64_t id, int status,
		       const char *reason, const char *remote_id)
{
	(void)c;
	(void)id;
	(void)status;
	(void)reason;
	(void)remote_id;
	return -ENOSYS;
}

int cat_restore_requeue(struct cat *c, int *count)
{
	(void)c;
	(void)count;
	return -ENOSYS;
}

int cat_restore_get(struct cat *c, int64_t id, struct cat_restore *out)
{
	(void)c;
	(void)id;
	(void)out;
	return -ENOSYS;
}

int cat_restore_list(struct cat *c, cat_restore_cb cb, void *ctx)
{
	(void)c;
	(void)cb;
	(void)ctx;
	return -ENOSYS;
}

int cat_copy(struct cat *c, const char *path)
{
	(void)c;
	(void)path;
	return -ENOSYS;
}

int cat_validate(const char *copy)
{
	(void)copy;
	return -ENOSYS;
}

int cat_import(const char *copy, const char *path)
{
	(void)copy;
	(void)path;
	return -ENOSYS;
}

int cat_check(struct cat *c, cat_problem_cb cb, void *ctx, int64_t *problems)
{
	(void)c;
	(void)cb;
	(void)ctx;
	(void)problems;
	return -ENOSYS;
}

int cat_stats(struct cat *c, struct cat_stats *out)
{
	(void)c;
	(void)out;
	return -ENOSYS;
}
