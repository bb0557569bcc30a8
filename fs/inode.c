#include "inode.h"

#include <pthread.h>
#include <stdlib.h>

struct ino_table {
	pthread_mutex_t lock;
	void (*free_obj)(struct ino_obj *o);
	size_t max_bytes;
	/* protected by lock: */
	struct ino_obj **bucket;
	size_t nbucket; /* a power of two */
	size_t count, bytes;
	struct ino_obj lru; /* lru.lnext: most recent; lru.lprev: oldest */
};

static size_t slot(const struct ino_table *t, uint64_t ino)
{
	uint64_t h = ino * UINT64_C(0x9E3779B97F4A7C15);

	return (size_t)(h >> 32) & (t->nbucket - 1);
}

static void lru_unlink(struct ino_obj *o)
{
	o->lprev->lnext = o->lnext;
	o->lnext->lprev = o->lprev;
	o->lprev = o->lnext = o;
}

static void lru_front(struct ino_table *t, struct ino_obj *o)
{
	o->lnext = t->lru.lnext;
	o->lprev = &t->lru;
	t->lru.lnext->lprev = o;
	t->lru.lnext = o;
}

struct ino_table *ino_table_new(size_t max_bytes,
				void (*free_obj)(struct ino_obj *o))
{
	struct ino_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->nbucket = 1024;
	t->bucket = calloc(t->nbucket, sizeof(*t->bucket));
	if (!t->bucket) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->free_obj = free_obj;
	t->max_bytes = max_bytes;
	t->lru.lnext = t->lru.lprev = &t->lru;
	return t;
}

void ino_table_free(struct ino_table *t)
{
	struct ino_obj *o, *next;

	if (!t)
		return;
	for (o = t->lru.lnext; o != &t->lru; o = next) {
		next = o->lnext;
		t->free_obj(o);
	}
	free(t->bucket);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Double the buckets when chains grow long; on no memory keep the old. */
static void grow(struct ino_table *t)
{
	size_t n = t->nbucket * 2, i, old = t->nbucket;
	struct ino_obj **nb = calloc(n, sizeof(*nb)), **ob = t->bucket, *o;

	if (!nb)
		return;
	t->bucket = nb;
	t->nbucket = n;
	for (i = 0; i < old; i++) {
		while (ob[i]) {
			o = ob[i];
			ob[i] = o->hnext;
			o->hnext = nb[slot(t, o->ino)];
			nb[slot(t, o->ino)] = o;
		}
	}
	free(ob);
}

static struct ino_obj *find(struct ino_table *t, uint64_t ino,
			    struct ino_obj ***link)
{
	struct ino_obj **p = &t->bucket[slot(t, ino)];

	while (*p && (*p)->ino != ino)
		p = &(*p)->hnext;
	if (link)
		*link = p;
	return *p;
}

/* Remove @o from hash and LRU; the caller frees it or marks it dead. */
static void unhash(struct ino_table *t, struct ino_obj *o)
{
	struct ino_obj **p;

	if (find(t, o->ino, &p) == o)
		*p = o->hnext;
	o->hnext = NULL;
	lru_unlink(o);
	t->count--;
	t->bytes -= o->bytes;
}

/*
 * Evict the oldest objects while over budget; returns a list to free.
 * The newest object always stays, even alone over budget: a listing
 * larger than the budget is still read once, not rebuilt per reply.
 */
static struct ino_obj *evict(struct ino_table *t)
{
	struct ino_obj *o, *prev, *gone = NULL;

	for (o = t->lru.lprev;
	     o != &t->lru && o != t->lru.lnext && t->bytes > t->max_bytes;
	     o = prev) {
		prev = o->lprev;
		unhash(t, o);
		if (o->refs) {
			o->dead = true;
			continue;
		}
		o->hnext = gone;
		gone = o;
	}
	return gone;
}

static void free_list(struct ino_table *t, struct ino_obj *o)
{
	struct ino_obj *next;

	for (; o; o = next) {
		next = o->hnext;
		t->free_obj(o);
	}
}

struct ino_obj *ino_table_get(struct ino_table *t, uint64_t ino)
{
	struct ino_obj *o;

	pthread_mutex_lock(&t->lock);
	o = find(t, ino, NULL);
	if (o) {
		o->refs++;
		lru_unlink(o);
		lru_front(t, o);
	}
	pthread_mutex_unlock(&t->lock);
	return o;
}

struct ino_obj *ino_table_add(struct ino_table *t, struct ino_obj *o)
{
	struct ino_obj *old, **link, *gone;

	pthread_mutex_lock(&t->lock);
	old = find(t, o->ino, &link);
	if (old) {
		old->refs++;
		pthread_mutex_unlock(&t->lock);
		t->free_obj(o);
		return old;
	}
	o->refs = 1;
	o->dead = false;
	o->hnext = NULL;
	*link = o;
	lru_front(t, o);
	t->count++;
	t->bytes += o->bytes;
	if (t->count > t->nbucket * 2)
		grow(t);
	gone = evict(t);
	pthread_mutex_unlock(&t->lock);
	free_list(t, gone);
	return o;
}

void ino_table_put(struct ino_table *t, struct ino_obj *o)
{
	bool release;

	if (!o)
		return;
	pthread_mutex_lock(&t->lock);
	release = --o->refs == 0 && o->dead;
	pthread_mutex_unlock(&t->lock);
	if (release)
		t->free_obj(o);
}

void ino_table_drop(struct ino_table *t, uint64_t ino)
{
	struct ino_obj *o;
	bool release = false;

	pthread_mutex_lock(&t->lock);
	o = find(t, ino, NULL);
	if (o) {
		unhash(t, o);
		if (o->refs)
			o->dead = true;
		else
			release = true;
	}
	pthread_mutex_unlock(&t->lock);
	if (release)
		t->free_obj(o);
}

void ino_table_usage(struct ino_table *t, size_t *bytes, size_t *objects)
{
	pthread_mutex_lock(&t->lock);
	if (bytes)
		*bytes = t->bytes;
	if (objects)
		*objects = t->count;
	pthread_mutex_unlock(&t->lock);
}
