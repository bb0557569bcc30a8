/*
 * m365-snapshot restore-queue: show the restore queue of a repository,
 * or resume it without mounting (uploads what a killed m365fs left).
 *
 *   m365-snapshot restore-queue --repo REPO [--retry-failed]
 *                               [--resume --connection NAME
 *                               [--timeout SECONDS] [--threads N]]
 *
 * Do not resume while an m365fs with -o connection= is mounted on the
 * same repository: both would take over each other's unfinished uploads.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "restore/restore.h"
#include "snapshot/tool.h"
#include "util/log.h"

int cmd_restore_queue(int argc, char **argv);

static const char usage_text[] =
	"usage: m365-snapshot restore-queue --repo REPO [--retry-failed]\n"
	"       m365-snapshot restore-queue --resume --repo REPO --connection NAME\n"
	"                                   [--retry-failed] [--timeout SECONDS]\n"
	"                                   [--threads N]\n"
	"\n"
	"Show the restore queue (status, target, reason), or upload what is\n"
	"still pending (e.g. after m365fs was killed) and wait for it.\n"
	"--retry-failed makes the failed restores pending again first: an\n"
	"m365fs mounted on REPO with -o connection= retries them within ten\n"
	"seconds, else the next mount or --resume does.\n"
	"Exit status 0 when nothing is pending or failed, 1 otherwise.\n";

struct counts {
	int open, failed;
};

static int count_cb(void *ctx, const struct cat_restore *e)
{
	struct counts *k = ctx;

	if (e->status == CAT_RESTORE_PENDING ||
	    e->status == CAT_RESTORE_UPLOADING)
		k->open++;
	else if (e->status == CAT_RESTORE_FAILED)
		k->failed++;
	return 0;
}

int cmd_restore_queue(int argc, char **argv)
{
	const char *repo = NULL, *conn = NULL;
	struct restore_config cfg = { 0 };
	struct tool_conn tc = { 0 };
	struct restore *r = NULL;
	struct buf st = BUF_INIT;
	struct counts k = { 0 };
	bool resume = false, retry = false;
	long timeout = 3600;
	int i, rc, ret = CLI_EXIT_FAIL;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return CLI_EXIT_OK;
		} else if (!strcmp(a, "--resume")) {
			resume = true;
		} else if (!strcmp(a, "--retry-failed")) {
			retry = true;
		} else if (i + 1 < argc && !strcmp(a, "--repo")) {
			repo = argv[++i];
		} else if (i + 1 < argc && !strcmp(a, "--connection")) {
			conn = argv[++i];
		} else if (i + 1 < argc && !strcmp(a, "--timeout")) {
			timeout = strtol(argv[++i], NULL, 10);
		} else if (i + 1 < argc && !strcmp(a, "--threads")) {
			cfg.threads = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			return cli_usage("restore-queue",
					 "unexpected argument '%s'", a);
		}
	}
	if (!repo)
		return cli_usage("restore-queue",
				 "no repository given (--repo)");
	if (resume && !conn)
		return cli_usage("restore-queue",
				 "--resume needs --connection NAME");
	if (timeout <= 0)
		timeout = 3600;
	if (resume && tool_connect(conn, NULL, &tc) < 0)
		return CLI_EXIT_FAIL;
	cfg.repo = repo;
	cfg.graph = tc.graph;
	rc = restore_new(&cfg, &r);
	if (rc < 0) {
		cli_error("cannot open the restore queue of '%s': %s", repo,
			  strerror(-rc));
		goto out;
	}
	if (retry) {
		int n = 0;

		rc = restore_retry_failed(r, &n);
		if (rc < 0) {
			cli_error("cannot queue the failed restores again: %s",
				  strerror(-rc));
			goto out;
		}
		fprintf(stderr, "%d failed restore(s) queued again%s\n", n,
			resume || !n ? ""
				     : ": a mounted m365fs retries them now,"
				       " else the next mount or --resume");
	}
	if (resume) {
		rc = restore_start(r);
		if (rc == 0)
			rc = restore_drain(r, (int)(timeout * 1000));
		if (rc == -ETIMEDOUT)
			cli_error("restores still pending after %ld s",
				  timeout);
		else if (rc < 0)
			cli_error("cannot resume the restore queue: %s",
				  strerror(-rc));
		restore_free(r); /* stop the uploaders before reading */
		r = NULL;
		rc = restore_new(&cfg, &r);
		if (rc < 0)
			goto out;
	}
	rc = restore_status_text(r, &st);
	if (rc == 0)
		rc = cat_restore_list(restore_cat(r), count_cb, &k);
	if (rc < 0) {
		cli_error("cannot read the restore queue: %s", strerror(-rc));
		goto out;
	}
	fputs(st.data ? st.data : "", stdout);
	ret = k.open || k.failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
out:
	restore_free(r);
	tool_disconnect(&tc);
	buf_release(&st);
	return ret;
}
