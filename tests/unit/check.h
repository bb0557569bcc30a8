/*
 * check.h - the smallest unit-test harness that does the job.
 *
 *	#include "check.h"
 *	static void test_thing(void) { CHECK(1 + 1 == 2); CHECK_EQ(x, 3); }
 *	int main(void) { RUN(test_thing); return check_done(); }
 *
 * A failed CHECK prints file:line and the expression, counts the failure and
 * carries on; check_done() prints "N passed, N failed" and returns the exit
 * status (0, or 1 when anything failed).  A test program that cannot run here
 * returns CHECK_SKIP (77).
 */
#ifndef M365_CHECK_H
#define M365_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CHECK_SKIP 77

static int check_failed_, check_passed_, check_cur_failed_;
static const char *check_cur_name_;

#define CHECK(expr)                                                            \
	do {                                                                   \
		if (!(expr)) {                                                 \
			fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n",       \
				__FILE__, __LINE__, check_cur_name_, #expr);   \
			check_cur_failed_ = 1;                                 \
		}                                                              \
	} while (0)

#define CHECK_EQ(a, b)                                                                \
	do {                                                                          \
		long long a_ = (long long)(a), b_ = (long long)(b);                   \
		if (a_ != b_) {                                                       \
			fprintf(stderr,                                               \
				"%s:%d: %s: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
				__FILE__, __LINE__, check_cur_name_, #a, #b,          \
				a_, b_);                                              \
			check_cur_failed_ = 1;                                        \
		}                                                                     \
	} while (0)

#define CHECK_STR(a, b)                                                                \
	do {                                                                           \
		const char *a_ = (a), *b_ = (b);                                       \
		if (!a_ || !b_ || strcmp(a_, b_)) {                                    \
			fprintf(stderr,                                                \
				"%s:%d: %s: CHECK_STR(%s, %s) failed: '%s' != '%s'\n", \
				__FILE__, __LINE__, check_cur_name_, #a, #b,           \
				a_ ? a_ : "(null)", b_ ? b_ : "(null)");               \
			check_cur_failed_ = 1;                                         \
		}                                                                      \
	} while (0)

#define RUN(fn)                                                                \
	do {                                                                   \
		check_cur_name_ = #fn;                                         \
		check_cur_failed_ = 0;                                         \
		fn();                                                          \
		if (check_cur_failed_) {                                       \
			check_failed_++;                                       \
			fprintf(stderr, "not ok - %s\n", #fn);                 \
		} else {                                                       \
			check_passed_++;                                       \
			fprintf(stderr, "ok - %s\n", #fn);                     \
		}                                                              \
	} while (0)

static inline int check_done(void)
{
	printf("%d passed, %d failed\n", check_passed_, check_failed_);
	return check_failed_ ? 1 : 0;
}

#endif
