#include <errno.h>
#include <string.h>

#include "check.h"
#include "names/names.h"

static const char *map(struct buf *b, const char *s, size_t len)
{
	buf_reset(b);
	if (names_map(s, len, b) < 0)
		return "(error)";
	return b->data;
}

#define MAP(b, s) map((b), (s), sizeof(s) - 1)

static int safe(const char *s)
{
	return strlen(s) <= NAMES_MAX && !strchr(s, '/') && strcmp(s, ".") &&
	       strcmp(s, "..") && *s;
}

static void test_plain_names_unchanged(void)
{
	struct buf b = BUF_INIT;

	CHECK_STR(MAP(&b, "report.docx"), "report.docx");
	CHECK_STR(MAP(&b, "Präsentation Q3 – final 🎉.pptx"),
		  "Präsentation Q3 – final 🎉.pptx");
	CHECK_STR(MAP(&b, "100% sure #1.txt"), "100% sure #1.txt");
	CHECK_STR(MAP(&b, "trailing dot."), "trailing dot.");
	buf_release(&b);
}

static void test_hard_cases(void)
{
	struct buf b = BUF_INIT;

	CHECK_STR(MAP(&b, "a/b"), "a\xe2\x88\x95"
				  "b");
	CHECK_STR(MAP(&b, "."), "%2E");
	CHECK_STR(MAP(&b, ".."), "%2E%2E");
	CHECK_STR(MAP(&b, "..."), "...");
	CHECK_STR(map(&b, "", 0), "%00");
	CHECK_STR(MAP(&b, "tab\there"), "tab%09here");
	CHECK_STR(MAP(&b, "bad\xff\xfeutf8"), "bad%FF%FEutf8");
	/* overlong encoding and surrogate are not valid UTF-8 */
	CHECK_STR(MAP(&b, "x\xc0\xafy"), "x%C0%AFy");
	CHECK_STR(MAP(&b, "\xed\xa0\x80"), "%ED%A0%80");
	/* truncated sequence at the end */
	CHECK_STR(MAP(&b, "end\xe2\x88"), "end%E2%88");
	CHECK(safe(MAP(&b, "../../etc/passwd")));
	CHECK_STR(b.data, "..\xe2\x88\x95..\xe2\x88\x95"
			  "etc\xe2\x88\x95passwd");
	buf_release(&b);
}

static void test_long_names(void)
{
	struct buf b = BUF_INIT, c = BUF_INIT;
	char name[1000];

	memset(name, 'a', sizeof(name));
	memcpy(name + sizeof(name) - 5, ".docx", 5);
	CHECK_EQ(names_map(name, sizeof(name), &b), 0);
	CHECK(b.len <= NAMES_MAX);
	CHECK(b.len > NAMES_MAX - 4);
	CHECK(!strcmp(b.data + b.len - 5, ".docx"));
	CHECK(strchr(b.data, '~') != NULL);
	/* a different long name gets a different hash */
	name[3] = 'b';
	CHECK_EQ(names_map(name, sizeof(name), &c), 0);
	CHECK(strcmp(b.data, c.data) != 0);
	/* multi-byte characters are never split */
	buf_reset(&b);
	{
		char emoji[400 * 4 + 1];
		int i;

		for (i = 0; i < 400; i++)
			memcpy(emoji + 4 * i, "\xf0\x9f\x8e\x89", 4);
		CHECK_EQ(names_map(emoji, 1600, &b), 0);
		CHECK(b.len <= NAMES_MAX);
		buf_reset(&c);
		CHECK_EQ(names_map(b.data, b.len, &c), 0);
		CHECK_STR(c.data, b.data); /* valid UTF-8 maps to itself */
	}
	buf_release(&b);
	buf_release(&c);
}

static void test_uniquify(void)
{
	struct buf a = BUF_INIT, b = BUF_INIT;

	buf_adds(&a, "report.docx");
	buf_adds(&b, "report.docx");
	CHECK_EQ(names_uniquify(&a, "01ABC"), 0);
	CHECK_EQ(names_uniquify(&b, "01ABD"), 0);
	CHECK(strcmp(a.data, b.data) != 0);
	CHECK(!strncmp(a.data, "report [", 8));
	CHECK(!strcmp(a.data + a.len - 6, "].docx"));
	buf_reset(&a);
	buf_adds(&a, "README");
	CHECK_EQ(names_uniquify(&a, "x"), 0);
	CHECK_EQ(a.len, strlen("README [12345678]"));
	buf_release(&a);
	buf_release(&b);
}

static void test_message(void)
{
	struct buf b = BUF_INIT;

	CHECK_EQ(names_message(1505392493, "Re: Q3/Q4 plan", "AAMkA=", &b), 0);
	CHECK(!strncmp(b.data, "2017-09-14 1234 Re: Q3\xe2\x88\x95Q4 plan [",
		       strlen("2017-09-14 1234 Re: Q3\xe2\x88\x95Q4 plan [")));
	CHECK(!strcmp(b.data + b.len - 5, "].eml"));
	CHECK(safe(b.data));
	buf_reset(&b);
	CHECK_EQ(names_message(0, "", "id", &b), 0);
	CHECK(strstr(b.data, "(no subject)") != NULL);
	buf_release(&b);
}

static void test_unmap(void)
{
	struct buf b = BUF_INIT;

	CHECK_EQ(names_unmap("a\xe2\x88\x95"
			     "b%2E%FFc",
			     &b),
		 0);
	CHECK_STR(b.data, "a/b.\xff"
			  "c");
	buf_reset(&b);
	CHECK_EQ(names_unmap("100% sure", &b), 0);
	CHECK_STR(b.data, "100% sure");
	buf_reset(&b);
	CHECK_EQ(names_unmap("x%00", &b), -EINVAL);
	buf_release(&b);
}

static int collect(void *ctx, const char *c)
{
	struct buf *b = ctx;

	buf_adds(b, c);
	buf_addch(b, '|');
	return 0;
}

static void test_site_path(void)
{
	struct buf b = BUF_INIT;

	CHECK_EQ(names_site_path(
			 "https://contoso.sharepoint.com/sites/Mark%C3%A9ting",
			 collect, &b),
		 0);
	CHECK_STR(b.data, "contoso.sharepoint.com|sites|Markéting|");
	buf_reset(&b);
	CHECK_EQ(names_site_path("https://contoso.sharepoint.com", collect, &b),
		 0);
	CHECK_STR(b.data, "contoso.sharepoint.com|");
	buf_reset(&b);
	CHECK_EQ(names_site_path("https://h/sites/%2E%2E/x%2Fy", collect, &b),
		 0);
	CHECK_STR(b.data, "h|sites|%2E%2E|x|y|");
	CHECK_EQ(names_site_path("http://h/x", collect, &b), -EINVAL);
	CHECK_EQ(names_site_path("https:///x", collect, &b), -EINVAL);
	buf_release(&b);
}

int main(void)
{
	RUN(test_plain_names_unchanged);
	RUN(test_hard_cases);
	RUN(test_long_names);
	RUN(test_uniquify);
	RUN(test_message);
	RUN(test_unmap);
	RUN(test_site_path);
	return check_done();
}
