/*
 * Pure parts of the snapshot module: retention policy and selection.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot/snapshot.h"

/* Bucket key of @t for one retention period (UTC). */
static int64_t bucket(int64_t t, int period)
{
	struct tm tm;
	time_t tt = (time_t)t;
	int64_t y;

	gmtime_r(&tt, &tm);
	y = tm.tm_year + 1900;
	switch (period) {
	case SNAP_KEEP_HOURLY:
		return ((y * 1000 + tm.tm_yday) * 100) + tm.tm_hour;
	case SNAP_KEEP_DAILY:
		return y * 1000 + tm.tm_yday;
	case SNAP_KEEP_WEEKLY: {
		/* ISO 8601 week: Thursday of the week decides the year */
		char s[16];

		strftime(s, sizeof(s), "%G%V", &tm);
		return strtoll(s, NULL, 10);
	}
	case SNAP_KEEP_MONTHLY:
		return y * 100 + tm.tm_mon;
	default:
		return y;
	}
}

struct ord {
	int64_t time;
	size_t idx;
};

static int by_time_desc(const void *a, const void *b)
{
	const struct ord *x = a, *y = b;

	if (x->time != y->time)
		return x->time < y->time ? 1 : -1;
	return x->idx < y->idx ? 1 : (x->idx > y->idx ? -1 : 0);
}

int snap_retention(const int64_t *times, size_t n, const struct snap_keep *keep,
		   unsigned *reasons)
{
	struct ord *o;
	const unsigned *limit[] = { &keep->hourly, &keep->daily, &keep->weekly,
				    &keep->monthly, &keep->yearly };
	int64_t last[5];
	unsigned count[5] = { 0 };
	unsigned kept_last = 0;
	size_t i;
	int p;

	for (i = 0; i < n; i++)
		reasons[i] = 0;
	if (!n)
		return 0;
	o = calloc(n, sizeof(*o));
	if (!o)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		o[i].time = times[i];
		o[i].idx = i;
	}
	qsort(o, n, sizeof(*o), by_time_desc);
	for (p = 0; p < 5; p++)
		last[p] = INT64_MIN;
	for (i = 0; i < n; i++) {
		unsigned *r = &reasons[o[i].idx];

		if (kept_last < keep->last) {
			kept_last++;
			*r |= SNAP_KEEP_LAST;
		}
		for (p = 0; p < 5; p++) {
			int64_t k = bucket(o[i].time, SNAP_KEEP_HOURLY << p);

			if (count[p] >= *limit[p] || k == last[p])
				continue;
			last[p] = k;
			count[p]++;
			*r |= SNAP_KEEP_HOURLY << p;
		}
	}
	free(o);
	return 0;
}

bool snap_keep_empty(const struct snap_keep *k)
{
	return !k->last && !k->hourly && !k->daily && !k->weekly &&
	       !k->monthly && !k->yearly;
}

static bool any_match(const char *const *pats, const char *const *cand)
{
	size_t i, j;

	for (i = 0; pats && pats[i]; i++)
		for (j = 0; cand[j]; j++)
			if (!fnmatch(pats[i], cand[j], FNM_CASEFOLD))
				return true;
	return false;
}

bool snap_select_match(const char *const *include, const char *const *exclude,
		       const char *const *candidates)
{
	if (include && include[0] && !any_match(include, candidates))
		return false;
	return !any_match(exclude, candidates);
}
