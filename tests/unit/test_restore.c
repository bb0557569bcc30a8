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
	RUN(test_resolve_without_graph);
	RUN(test_no_catalog);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", repo);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove '%s'\n", repo);
	return check_done();
}
