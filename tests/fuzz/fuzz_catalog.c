/*
 * fuzz_catalog - the import path of catalog copies: whatever bytes a
 * damaged or hostile repository gives us, cat_validate() and cat_import()
 * answer 0 or an error, never crash; an accepted copy opens and lists.
 */
#include "catalog/catalog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static char dir[] = "/tmp/fuzz_catalog.XXXXXX";
static char copy[64], db[64];

static int list_cb(void *ctx, const struct cat_item *it)
{
	int *n = ctx;

	(void)it;
	return ++*n > 1000; /* enough */
}

static void cleanup(void)
{
	char side[80];

	unlink(copy);
	unlink(db);
	snprintf(side, sizeof(side), "%s-wal", db);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", db);
	unlink(side);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static int ready;
	struct cat *c = NULL;
	int64_t snap;
	int n = 0;

	if (!ready) {
		log_init("fuzz_catalog", LOG_CRIT);
		if (!mkdtemp(dir))
			abort();
		snprintf(copy, sizeof(copy), "%s/copy", dir);
		snprintf(db, sizeof(db), "%s/catalog.db", dir);
		atexit(cleanup);
		ready = 1;
	}
	if (util_write_file_atomic(copy, data, size, 0600) < 0)
		return 0;
	if (cat_import(copy, db) == 0 && cat_open(db, CAT_OPEN_READ, &c) == 0) {
		if (cat_snapshot_latest(c, &snap) == 0)
			cat_list(c, snap, CAT_ROOT, NULL, list_cb, &n);
		cat_check(c, NULL, NULL, NULL);
		cat_close(c);
	}
	unlink(copy);
	return 0;
}
