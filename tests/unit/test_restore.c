/*
 * Unit tests of engine/restore without Graph: policies, the spool, the
 * durable queue records and status text, and resolution of names that
 * need no Graph call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "catalog/catalog.h"
#include "check.h"
#include "restore/restore.h"
#include "util/util.h"

static char repo[64];

static void make_repo(void)
{
	char db[128];
	struct cat *c = NULL;

	snprintf(repo, sizeof(repo), "/tmp/test_restore.XXXXXX");
	CHECK(mkdtemp(repo) != NULL);
	snprintf(db, sizeof(db), "%s/%s", repo, CAT_FILE);
	CHECK_EQ(cat_open(db, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c), 0);
	cat_close(c);
}

static void test_policies(void)
{
	CHECK_EQ(restore_conflict_parse("rename"), RESTORE_RENAME);
	CHECK_EQ(restore_conflict_parse("replace"), RESTORE_REPLACE);
	CHECK_EQ(restore_conflict_parse("skip"), RESTORE_SKIP);
	CHECK_EQ(restore_conflict_parse("overwrite"), -EINVAL);
	CHECK_EQ(restore_conflict_parse(""), -EINVAL);
	CHECK_EQ(restore_conflict_parse(NULL), -EINVAL);
	CHECK_STR(restore_conflict_name(RESTORE_SKIP), "skip");
	CHECK_STR(restore_conflict_name(7), "?");
	CHECK_STR(restore_status_name(CAT_RESTORE_FAILED), "failed");
}

static void test_spool_and_queue(void)
{
	struct restore_config cfg = { 0 };
	struct restore *r = NULL;
	struct buf spool = BUF_INIT, st = BUF_INIT, one = BUF_INIT;
	struct stat sb;
	int64_t id = 0;
	int fd = -1;

	cfg.repo = repo;
	CHECK_EQ(restore_new(&cfg, &r), 0);
	if (!r)
		return;
	CHECK_EQ(restore_spool_open(r, 9, &spool, &fd), -EINVAL);
	CHECK_EQ(restore_spool_open(r, RESTORE_SKIP, &spool, &fd), 0);
	CHECK(fd >= 0);
	CHECK(strstr(spool.data, "/spool/") != NULL);
	CHECK(strlen(spool.data) > 5 &&
	      !strcmp(spool.data + strlen(spool.data) - 5, ".skip"));
	CHECK_EQ(stat(spool.data, &sb), 0);
	CHECK_EQ(sb.st_mode & 0777, 0600);
	CHECK_EQ(util_write_all(fd, "hello", 5), 0);
	CHECK_EQ(
		restore_commit(r, fd, "onedrive/u@x/a.txt", spool.data, 5, &id),
		0);
	CHECK(id > 0);
	close(fd);
	/* small: kept in the catalog, the spool file is not needed */
	CHECK_EQ(stat(spool.data, &sb), -1);
	CHECK_EQ(restore_status_text(r, &st), 0);
	CHECK_STR(st.data, "pending\tonedrive/u@x/a.txt\n");
	CHECK_EQ(restore_entry_status(r, id, &one), 0);
	CHECK_STR(one.data, "pending");
	CHECK_EQ(restore_entry_status(r, id + 100, &one), -ENOENT);
	CHECK_EQ(restore_drain(r, 50), -ETIMEDOUT);
	restore_free(r);

	/* durable: a new instance sees the entry */
	r = NULL;
	CHECK_EQ(restore_new(&cfg, &r), 0);
	buf_truncate(&st, 0);
	if (r)
		CHECK_EQ(restore_status_text(r, &st), 0);
	CHECK_STR(st.data, "pending\tonedrive/u@x/a.txt\n");
	restore_free(r);
	unlink(spool.data);
	buf_release(&spool);
	buf_release(&st);
	buf_release(&one);
}

/* A memory spool: no spool file for a small file, one once it grows. */
static void test_memory_spool(void)
{
	struct restore_config cfg = { 0 };
	struct restore *r = NULL;
	struct buf spool = BUF_INIT, got = BUF_INIT;
	char big[RESTORE_INLINE_MAX + 10];
	struct stat sb;
	int64_t id = 0;
	int fd = -1, fd2;

	cfg.repo = repo;
	CHECK_EQ(restore_new(&cfg, &r), 0);
	if (!r)
		return;
	CHECK_EQ(restore_spool_open_mem(r, RESTORE_RENAME, &spool, &fd), 0);
	CHECK(fd >= 0);
	CHECK(strstr(spool.data, "/spool/") != NULL);
	CHECK_EQ(stat(spool.data, &sb), -1); /* not created */
	CHECK_EQ(util_write_all(fd, "small", 5), 0);
	CHECK_EQ(
		restore_commit(r, fd, "onedrive/u@x/m.txt", spool.data, 5, &id),
		0);
	close(fd);
	CHECK_EQ(stat(spool.data, &sb), -1); /* in the catalog instead */
	CHECK_EQ(cat_restore_data(restore_cat(r), id, &got), 0);
	CHECK(got.len == 5 && !memcmp(got.data, "small", 5));

	/* grows: moved to its spool file with what it had */
	memset(big, 'b', sizeof(big));
	CHECK_EQ(restore_spool_open_mem(r, RESTORE_RENAME, &spool, &fd), 0);
	CHECK_EQ(util_write_all(fd, "head", 4), 0);
	fd2 = fd;
	CHECK_EQ(restore_spool_to_disk(spool.data, &fd), 0);
	CHECK(fd != fd2);
	CHECK_EQ(pwrite(fd, big, sizeof(big), 4), (ssize_t)sizeof(big));
	CHECK_EQ(restore_commit(r, fd, "onedrive/u@x/g.txt", spool.data,
				(int64_t)sizeof(big) + 4, &id),
		 0);
	close(fd);
	CHECK_EQ(stat(spool.data, &sb), 0);
	CHECK_EQ(sb.st_size, (off_t)sizeof(big) + 4);
	buf_truncate(&got, 0);
	CHECK_EQ(util_read_file(spool.data, &got, 1 << 20), 0);
	CHECK(got.len == sizeof(big) + 4 && !memcmp(got.data, "head", 4));
	buf_truncate(&got, 0);
	CHECK_EQ(cat_restore_data(restore_cat(r), id, &got), -ENOENT);
	/* an existing spool file is not overwritten */
	CHECK_EQ(restore_spool_open_mem(r, RESTORE_RENAME, &got, &fd2), 0);
	CHECK_EQ(restore_spool_to_disk(spool.data, &fd2), -EEXIST);
	close(fd2);
	restore_free(r);
	unlink(spool.data);
	buf_release(&spool);
	buf_release(&got);
}

static void test_resolve_without_graph(void)
{
	struct restore_config cfg = { 0 };
	struct restore *r = NULL;
	struct restore_loc loc = { 0 };

	cfg.repo = repo;
	CHECK_EQ(restore_new(&cfg, &r), 0);
	if (!r)
		return;
	CHECK_EQ(restore_dir(r, "", false, &loc), 0);
	CHECK_EQ(loc.kind, RESTORE_K_ROOT);
	CHECK_EQ(restore_dir(r, "sites", false, &loc), 0);
	CHECK_EQ(loc.kind, RESTORE_K_TOP);
	restore_loc_release(&loc);
	CHECK_EQ(restore_dir(r, "mailboxes", true, &loc), 0);
	CHECK_EQ(loc.kind, RESTORE_K_TOP);
	restore_loc_release(&loc);
	CHECK_EQ(restore_dir(r, "elsewhere", true, &loc), -ENOENT);
	CHECK_EQ(restore_dir(r, "elsewhere/deeper", true, &loc), -ENOENT);
	restore_free(r);
}

static void test_mime_json(void)
{
	static const char eml[] =
		"Received: from a by b; Tue, 16 Sep 2025 08:00:00 GMT\r\n"
		"From: =?iso-8859-1?Q?J=F6rg_M=FCller?= <jm@example.com>\r\n"
		"To: \"A, B\" <ab@example.com>,\r\n\tc@example.com\r\n"
		"Subject: =?utf-8?B?R3LDvMOfZQ==?= =?utf-8?Q?_und_mehr?=\r\n"
		"Date: Tue, 16 Sep 2025 09:59:00 +0200\r\n"
		"Message-ID: <x1@example.com>\r\n"
		"MIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n"
		"--BB\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
		"Gr=FC=DFe=\r\n aus Z=FCrich\r\n"
		"--BB\r\nContent-Type: text/csv; name=\"d.csv\"\r\n"
		"Content-Disposition: attachment; filename=\"d.csv\"\r\n"
		"Content-Transfer-Encoding: base64\r\n\r\n"
		"YSxiCjEs\r\nMgo=\r\n--BB--\r\n";
	struct buf j = BUF_INIT;
	struct restore_atts late = { 0 };
	cJSON *o, *x;

	CHECK_EQ(restore_mime_json(eml, sizeof(eml) - 1, 1 << 20, &j), 0);
	o = j.data ? cJSON_Parse(j.data) : NULL;
	CHECK(o != NULL);
	if (!o)
		goto out;
	x = cJSON_GetObjectItem(o, "subject");
	CHECK_STR(cJSON_GetStringValue(x), "Grüße und mehr");
	x = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "from"), "emailAddress");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(x, "name")),
		  "Jörg Müller");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(x, "address")),
		  "jm@example.com");
	x = cJSON_GetObjectItem(o, "toRecipients");
	CHECK_EQ(cJSON_GetArraySize(x), 2);
	x = cJSON_GetObjectItem(cJSON_GetArrayItem(x, 0), "emailAddress");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(x, "name")), "A, B");
	x = cJSON_GetObjectItem(o, "body");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(x, "contentType")),
		  "text");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(x, "content")),
		  "Grüße aus Zürich");
	x = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "attachments"), 0);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(x, "name")),
		  "d.csv");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(x, "contentBytes")),
		  "YSxiCjEsMgo=");
	x = cJSON_GetObjectItem(o, "singleValueExtendedProperties");
	CHECK_EQ(cJSON_GetArraySize(x), 3);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(
			  cJSON_GetArrayItem(x, 0), "value")),
		  "1");
	CHECK(strstr(j.data, "2025-09-16T08:00:00") != NULL); /* received */
	CHECK(strstr(j.data, "2025-09-16T07:59:00") != NULL); /* sent */
	cJSON_Delete(o);
	CHECK_EQ(restore_mime_json(eml, sizeof(eml) - 1, 3, &j), -E2BIG);
	/* too large to inline: kept for an upload session instead */
	CHECK_EQ(restore_mime_parse(eml, sizeof(eml) - 1, 3, &j, &late), 0);
	CHECK_EQ(late.n, 1);
	if (late.n == 1) {
		CHECK_STR(late.v[0].name, "d.csv");
		CHECK_STR(late.v[0].content_type, "text/csv");
		CHECK_EQ(late.v[0].data.len, 8);
		CHECK(late.v[0].data.data &&
		      !memcmp(late.v[0].data.data, "a,b\n1,2\n", 8));
	}
	CHECK(j.data && !strstr(j.data, "\"attachments\""));
	CHECK(j.data && strstr(j.data, "Grüße aus Zürich") != NULL);
	restore_atts_release(&late);
	CHECK_EQ(late.n, 0);
	/* fits: inline, nothing late */
	CHECK_EQ(restore_mime_parse(eml, sizeof(eml) - 1, 1 << 20, &j, &late),
		 0);
	CHECK_EQ(late.n, 0);
	CHECK(j.data && strstr(j.data, "YSxiCjEsMgo=") != NULL);
	restore_atts_release(&late);
	CHECK_EQ(restore_mime_json("no header here", 14, 1 << 20, &j),
		 -EBADMSG);
out:
	buf_release(&j);
}

static void test_no_catalog(void)
{
	struct restore_config cfg = { 0 };
	struct restore *r = NULL;
	char dir[] = "/tmp/test_restore_nocat.XXXXXX";
	char sp[64];

	CHECK(mkdtemp(dir) != NULL);
	cfg.repo = dir;
	CHECK_EQ(restore_new(&cfg, &r), -ENOENT);
	CHECK(r == NULL);
	snprintf(sp, sizeof(sp), "%s/spool", dir);
	rmdir(sp);
	rmdir(dir);
}

int main(void)
{
	char cmd[128];

	make_repo();
	RUN(test_policies);
	RUN(test_spool_and_queue);
	RUN(test_memory_spool);
	RUN(test_resolve_without_graph);
	RUN(test_no_catalog);
	RUN(test_mime_json);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", repo);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove '%s'\n", repo);
	return check_done();
}
