/*
 * Temporary: store_check() is declared in store.h but not yet on main.
 * A weak definition lets the tool link; the store's own (strong) one wins
 * as soon as it exists.  Remove this file then.
 */
#include <errno.h>

#include "store/store.h"

__attribute__((weak)) int
store_check(struct store *st, int flags,
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
