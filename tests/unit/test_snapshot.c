#include <errno.h>
#include <string.h>

#include "check.h"
#include "snapshot/snap_i.h"
#include "snapshot/snapshot.h"
#include "util/util.h"

static int64_t T(const char *iso)
{
	int64_t s = 0;
	int32_t ns;

	if (util_time_parse(iso, &s, &ns) < 0)
		return -1;
	return s;
}

static void test_retention_last(void)
{
	int64_t t[5];
	unsigned r[5];
	struct snap_keep k = { .last = 2 };
	int i;

	for (i = 0; i < 5; i++)
		t[i] = 1000000 + i * 60; /* oldest first */
	CHECK_EQ(snap_retention(t, 5, &k, r), 0);
	CHECK_EQ(r[4], SNAP_KEEP_LAST);
	CHECK_EQ(r[3], SNAP_KEEP_LAST);
	CHECK_EQ(r[2], 0);
	CHECK_EQ(r[1], 0);
	CHECK_EQ(r[0], 0);
}

static void test_retention_daily_hourly(void)
{
	int64_t t[] = {
		T("2026-11-20T01:00:00Z"), T("2026-11-20T23:30:00Z"),
		T("2026-11-21T02:00:00Z"), T("2026-11-21T02:30:00Z"),
		T("2026-11-21T03:10:00Z"),
	};
	unsigned r[5];
	struct snap_keep k = { .daily = 2, .hourly = 2 };

	CHECK_EQ(snap_retention(t, 5, &k, r), 0);
	/* newest of 21st (03:10) is daily + hourly; 02:30 newest of hour 02 */
	CHECK_EQ(r[4], SNAP_KEEP_DAILY | SNAP_KEEP_HOURLY);
	CHECK_EQ(r[3], SNAP_KEEP_HOURLY);
	CHECK_EQ(r[2], 0);
	CHECK_EQ(r[1], SNAP_KEEP_DAILY);
	CHECK_EQ(r[0], 0);
}

static void test_retention_weekly_monthly_yearly(void)
{
	/* 2026-01-01 is a Thursday: ISO week 2026-W01; 2025-12-29 (Monday)
	 * belongs to the same ISO week 2026-W01 */
	int64_t t[] = {
		T("2024-06-01T00:00:00Z"),
		T("2025-12-29T00:00:00Z"),
		T("2026-01-01T00:00:00Z"),
		T("2026-01-20T00:00:00Z"),
	};
	unsigned r[4];
	struct snap_keep k = { .weekly = 3, .monthly = 1, .yearly = 5 };

	CHECK_EQ(snap_retention(t, 4, &k, r), 0);
	CHECK_EQ(r[3], SNAP_KEEP_WEEKLY | SNAP_KEEP_MONTHLY | SNAP_KEEP_YEARLY);
	CHECK_EQ(r[2], SNAP_KEEP_WEEKLY); /* W01, same year as [3] */
	CHECK_EQ(r[1], SNAP_KEEP_YEARLY); /* W01 again; year 2025 */
	CHECK_EQ(r[0], SNAP_KEEP_WEEKLY | SNAP_KEEP_YEARLY);
}

static void test_retention_empty_policy(void)
{
	int64_t t[] = { 1, 2 };
	unsigned r[2] = { 9, 9 };
	struct snap_keep k = { 0 };

	CHECK(snap_keep_empty(&k));
	CHECK_EQ(snap_retention(t, 2, &k, r), 0);
	CHECK_EQ(r[0], 0);
	CHECK_EQ(r[1], 0);
	k.yearly = 1;
	CHECK(!snap_keep_empty(&k));
}

static void test_select(void)
{
	const char *cand[] = { "alice@contoso.com", "Alice Example", NULL };
	const char *inc[] = { "a*@contoso.com", NULL };
	const char *inc2[] = { "bob*", NULL };
	const char *exc[] = { "ALICE@*", NULL };

	CHECK(snap_select_match(NULL, NULL, cand));
	CHECK(snap_select_match(inc, NULL, cand));
	CHECK(!snap_select_match(inc2, NULL, cand));
	CHECK(!snap_select_match(inc, exc, cand));
	CHECK(!snap_select_match(NULL, exc, cand));
}

static void test_idset(void)
{
	struct idset s = { 0 };
	int64_t i;

	for (i = 1000; i > 0; i -= 3)
		CHECK_EQ(idset_add(&s, i), 0);
	CHECK(idset_has(&s, 1000));
	CHECK(idset_has(&s, 1));
	CHECK(!idset_has(&s, 999));
	CHECK(!idset_has(&s, 0));
	/* adding after a lookup sorts again */
	CHECK_EQ(idset_add(&s, 999), 0);
	CHECK(idset_has(&s, 999));
	CHECK_EQ(s.n, 335);
	idset_free(&s);
	CHECK(!idset_has(&s, 1));
}

static void test_meta(void)
{
	struct meta m = { 0 };

	meta_add(&m, "id", "abc");
	meta_add(&m, "skipped", NULL);
	meta_addf(&m, "from", "%s <%s>", "A", "a@b");
	meta_time(&m, "t", 0); /* unknown time: skipped */
	meta_time(&m, "createdDateTime", 86400);
	CHECK_EQ(m.n, 3);
	CHECK_STR(m.kv[0].val, "abc");
	CHECK_STR(m.kv[1].key, "from");
	CHECK_STR(m.kv[1].val, "A <a@b>");
	CHECK_STR(m.kv[2].val, "1970-01-02T00:00:00Z");
	meta_free(&m);
	CHECK_EQ(m.n, 0);
}

int main(void)
{
	RUN(test_retention_last);
	RUN(test_retention_daily_hourly);
	RUN(test_retention_weekly_monthly_yearly);
	RUN(test_retention_empty_policy);
	RUN(test_select);
	RUN(test_idset);
	RUN(test_meta);
	return check_done();
}
