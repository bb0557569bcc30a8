/*
 * test_fs_inode - inode numbers and the bounded inode table of m365fs
 * (fs/inode.c is compiled into this program: fs/ is not in libm365.a).
 */
#include <pthread.h>
#include <stdlib.h>

#include "../../fs/inode.c"
#include "check.h"

static int freed;

struct obj {
	struct ino_obj o;
	int value;
};

static void free_obj(struct ino_obj *o)
{
	__atomic_add_fetch(&freed, 1, __ATOMIC_RELAXED);
	free(o);
}

static struct ino_obj *mk(uint64_t ino, size_t bytes, int value)
{
	struct obj *p = calloc(1, sizeof(*p));

	p->o.ino = ino;
	p->o.bytes = bytes;
	p->value = value;
	return &p->o;
}

static void test_numbers(void)
{
	uint64_t ino = ino_make(7, 12345);

	CHECK_EQ(ino_snap(ino), 7);
	CHECK_EQ(ino_item(ino), 12345);
	CHECK(ino > INO_LATEST);
	CHECK_EQ(ino_make(0, 5), 0); /* no snapshot 0 */
	CHECK_EQ(ino_make(1, 0), 0);
	CHECK_EQ(ino_make(1, (int64_t)INO_ITEM_PARTIAL), 0);
	CHECK_EQ(ino_make(INO_SNAP_MAX + 1, 2), 0);
	CHECK_EQ(ino_snap(ino_make(INO_SNAP_MAX, 2)), INO_SNAP_MAX);
	CHECK(ino_make(1, 2) != ino_make(2, 2)); /* per snapshot */
}

static void test_get_add_put(void)
{
	struct ino_table *t = ino_table_new(1000, free_obj);
	struct ino_obj *a, *b;
	size_t bytes, n;

	freed = 0;
	CHECK(ino_table_get(t, 5) == NULL);
	a = ino_table_add(t, mk(5, 100, 1));
	CHECK_EQ(((struct obj *)a)->value, 1);
	/* a second add for the same inode returns the first, frees the new */
	b = ino_table_add(t, mk(5, 100, 2));
	CHECK(a == b);
	CHECK_EQ(freed, 1);
	ino_table_put(t, a);
	ino_table_put(t, b);
	b = ino_table_get(t, 5);
	CHECK(b == a);
	ino_table_put(t, b);
	ino_table_usage(t, &bytes, &n);
	CHECK_EQ(bytes, 100);
	CHECK_EQ(n, 1);
	ino_table_drop(t, 5);
	CHECK(ino_table_get(t, 5) == NULL);
	CHECK_EQ(freed, 2);
	ino_table_free(t);
}

static void test_eviction_keeps_referenced(void)
{
	struct ino_table *t = ino_table_new(1000, free_obj);
	struct ino_obj *held, *o;
	size_t bytes, n;
	uint64_t i;

	freed = 0;
	held = ino_table_add(t, mk(1, 400, 1)); /* keep a reference */
	for (i = 2; i <= 20; i++)
		ino_table_put(t, ino_table_add(t, mk(i, 400, (int)i)));
	ino_table_usage(t, &bytes, &n);
	CHECK(bytes <= 1000);
	/* the newest survive, the oldest went; the held one is still valid */
	o = ino_table_get(t, 20);
	CHECK(o != NULL);
	ino_table_put(t, o);
	CHECK(ino_table_get(t, 2) == NULL);
	CHECK_EQ(((struct obj *)held)->value, 1);
	CHECK(ino_table_get(t, 1) == NULL); /* evicted but not freed */
	n = (size_t)freed;
	ino_table_put(t, held); /* last reference: freed now */
	CHECK_EQ((size_t)freed, n + 1);
	ino_table_free(t);
	CHECK_EQ(freed, 20);
}

static void test_newest_stays(void)
{
	struct ino_table *t = ino_table_new(1000, free_obj);
	struct ino_obj *o;

	ino_table_put(t, ino_table_add(t, mk(1, 100, 1)));
	ino_table_put(t, ino_table_add(t, mk(2, 5000, 2))); /* over budget */
	o = ino_table_get(t, 2);
	CHECK(o != NULL);
	ino_table_put(t, o);
	CHECK(ino_table_get(t, 1) == NULL);
	ino_table_put(t, ino_table_add(t, mk(3, 10, 3)));
	CHECK(ino_table_get(t, 2) == NULL); /* the next add evicts it */
	ino_table_free(t);
}

static void test_grow(void)
{
	struct ino_table *t = ino_table_new(1u << 30, free_obj);
	struct ino_obj *o;
	uint64_t i;
	int misses = 0;

	for (i = 1; i <= 10000; i++)
		ino_table_put(t, ino_table_add(t, mk(i << 40 | i, 1, (int)i)));
	for (i = 1; i <= 10000; i++) {
		o = ino_table_get(t, i << 40 | i);
		if (!o || ((struct obj *)o)->value != (int)i)
			misses++;
		ino_table_put(t, o);
	}
	CHECK_EQ(misses, 0);
	ino_table_free(t);
}

static struct ino_table *shared;

static void *worker(void *arg)
{
	uintptr_t seed = (uintptr_t)arg;
	struct ino_obj *o;
	int i;

	for (i = 0; i < 20000; i++) {
		uint64_t ino = 1 + (seed * 7919 + (uint64_t)i * 104729) % 300;

		o = ino_table_get(shared, ino);
		if (!o)
			o = ino_table_add(shared, mk(ino, 64, (int)ino));
		if (((struct obj *)o)->value != (int)ino)
			abort();
		ino_table_put(shared, o);
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[8];
	uintptr_t i;

	shared = ino_table_new(64 * 100, free_obj); /* evicts all the time */
	for (i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	ino_table_free(shared);
	CHECK(1);
}

int main(void)
{
	RUN(test_numbers);
	RUN(test_get_add_put);
	RUN(test_eviction_keeps_referenced);
	RUN(test_newest_stays);
	RUN(test_grow);
	RUN(test_threads);
	return check_done();
}
