/*
 * desc.c - content descriptors (FORMAT.md "Descriptors"), id maps and
 * id sets.  Descriptor parsing must hold against any bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_i.h"

int array_grow(void *arr, size_t *alloc, size_t need, size_t elem)
{
	void **p = arr, *n;
	size_t a = *alloc ? *alloc : 8;

	if (need <= *alloc)
		return 0;
	while (a < need)
		a *= 2;
	n = realloc(*p, a * elem);
	if (!n)
		return -ENOMEM;
	*p = n;
	*alloc = a;
	return 0;
}

int desc_begin(struct buf *d)
{
	unsigned char h[DESC_HDR_LEN] = { 'D', 1, 0, 0, 0, 0, 0, 0 };

	buf_reset(d);
	return buf_add(d, h, sizeof(h));
}

int desc_add(struct buf *d, const unsigned char *id, uint64_t end)
{
	unsigned char e[DESC_ENTRY_LEN];

	memcpy(e, id, 32);
	le64_put(e + 32, end);
	return buf_add(d, e, sizeof(e));
}

int desc_end(struct buf *d, uint64_t count)
{
	if (count > UINT32_MAX || d->len < DESC_HDR_LEN)
		return -E2BIG;
	le32_put((unsigned char *)d->data + 4, (uint32_t)count);
	return 0;
}

void desc_entry(const void *desc, uint64_t i, const unsigned char **id,
		uint64_t *start, uint64_t *end)
{
	const unsigned char *e =
		(const unsigned char *)desc + DESC_HDR_LEN + i * DESC_ENTRY_LEN;

	*id = e;
	*end = le64_get(e + 32);
	*start = i ? le64_get(e + 32 - DESC_ENTRY_LEN) : 0;
}

int store_desc_parse(const void *desc, size_t len, uint64_t *size,
		     uint64_t *chunks)
{
	const unsigned char *d = desc;
	uint64_t n, prev = 0, end;

	if (!d || len < DESC_HDR_LEN || d[0] != 'D' || d[1] != 1 || d[2] ||
	    d[3])
		return -EBADMSG;
	n = le32_get(d + 4);
	if ((len - DESC_HDR_LEN) % DESC_ENTRY_LEN ||
	    (len - DESC_HDR_LEN) / DESC_ENTRY_LEN != n)
		return -EBADMSG;
	for (uint64_t i = 0; i < n; i++) {
		end = le64_get(d + DESC_HDR_LEN + i * DESC_ENTRY_LEN + 32);
		if (end <= prev || end - prev > CHUNK_LIMIT)
			return -EBADMSG;
		prev = end;
	}
	if (size)
		*size = prev;
	if (chunks)
		*chunks = n;
	return 0;
}

int store_desc_foreach(const void *desc, size_t len,
		       int (*fn)(void *arg, const unsigned char *id,
				 uint64_t off, uint32_t len),
		       void *arg)
{
	const unsigned char *id;
	uint64_t n, start, end;
	int ret;

	ret = store_desc_parse(desc, len, NULL, &n);
	if (ret)
		return ret;
	for (uint64_t i = 0; i < n; i++) {
		desc_entry(desc, i, &id, &start, &end);
		ret = fn(arg, id, start, (uint32_t)(end - start));
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- idmap: open addressing, linear probing, ids are uniform ---- */

void idmap_init(struct idmap *m)
{
	memset(m, 0, sizeof(*m));
}

void idmap_release(struct idmap *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	idmap_init(m);
}

void idmap_clear(struct idmap *m)
{
	if (m->used)
		memset(m->used, 0, m->cap);
	m->count = 0;
}

static size_t slot_of(const struct idmap *m, const unsigned char *id)
{
	uint64_t h;

	memcpy(&h, id, 8);
	h ^= h >> 29; /* ids of plain repos are SHA-256: uniform already */
	return (size_t)(h & (m->cap - 1));
}

static int idmap_grow(struct idmap *m)
{
	struct idmap n;
	size_t cap = m->cap ? m->cap * 2 : 64;

	idmap_init(&n);
	n.cap = cap;
	n.keys = malloc(cap * 32);
	n.vals = malloc(cap * sizeof(uint64_t));
	n.used = calloc(cap, 1);
	if (!n.keys || !n.vals || !n.used) {
		idmap_release(&n);
		return -ENOMEM;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->used[i])
			idmap_put(&n, m->keys + i * 32, m->vals[i]);
	idmap_release(m);
	*m = n;
	return 0;
}

int idmap_put(struct idmap *m, const unsigned char *id, uint64_t val)
{
	size_t i;
	int ret;

	if ((m->count + 1) * 4 > m->cap * 3) {
		ret = idmap_grow(m);
		if (ret)
			return ret;
	}
	for (i = slot_of(m, id); m->used[i]; i = (i + 1) & (m->cap - 1)) {
		if (!memcmp(m->keys + i * 32, id, 32)) {
			m->vals[i] = val;
			return 0;
		}
	}
	m->used[i] = 1;
	memcpy(m->keys + i * 32, id, 32);
	m->vals[i] = val;
	m->count++;
	return 0;
}

bool idmap_get(const struct idmap *m, const unsigned char *id, uint64_t *val)
{
	if (!m->cap)
		return false;
	for (size_t i = slot_of(m, id); m->used[i];
	     i = (i + 1) & (m->cap - 1)) {
		if (!memcmp(m->keys + i * 32, id, 32)) {
			if (val)
				*val = m->vals[i];
			return true;
		}
	}
	return false;
}

/* ---- id sets ---- */

struct store_idset {
	struct idmap m;
};

struct store_idset *store_idset_new(void)
{
	return calloc(1, sizeof(struct store_idset));
}

void store_idset_free(struct store_idset *s)
{
	if (!s)
		return;
	idmap_release(&s->m);
	free(s);
}

int store_idset_add(struct store_idset *s, const unsigned char *id)
{
	return idmap_put(&s->m, id, 0);
}

static int add_one(void *arg, const unsigned char *id, uint64_t off,
		   uint32_t len)
{
	(void)off;
	(void)len;
	return store_idset_add(arg, id);
}

int store_idset_add_desc(struct store_idset *s, const void *desc, size_t len)
{
	return store_desc_foreach(desc, len, add_one, s);
}

bool store_idset_has(const struct store_idset *s, const unsigned char *id)
{
	return idmap_get(&s->m, id, NULL);
}

size_t store_idset_count(const struct store_idset *s)
{
	return s->m.count;
}
