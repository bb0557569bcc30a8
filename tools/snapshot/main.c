/*
 * m365-snapshot: create, list, show, forget, prune and check snapshots of
 * a Microsoft 365 tenant in a repository.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/catalog.h"
#include "common/cli.h"
#include "snapshot/snapshot.h"
#include "snapshot/tool.h"
#include "store/store.h"
#include "util/log.h"
#include "util/util.h"

#define MAXPAT 64

struct opts {
	const char *repo;
	const char *connection;
	const char *key_file;
	bool encrypt, json, read_data, dry_run, prune, all, quiet;
	unsigned services;
	unsigned parallel;
	int retries; /* -1: default */
	unsigned stall; /* seconds, 0: default */
	const char *sites[MAXPAT + 1], *xsites[MAXPAT + 1];
	const char *users[MAXPAT + 1], *xusers[MAXPAT + 1];
	int nsites, nxsites, nusers, nxusers;
	unsigned xservices;
	struct snap_keep keep;
};

enum {
	O_REPO = 256,
	O_CONN,
	O_KEYFILE,
	O_ENCRYPT,
	O_JSON,
	O_SITE,
	O_XSITE,
	O_USER,
	O_XUSER,
	O_SERVICE,
	O_XSERVICE,
	O_PARALLEL,
	O_RETRIES,
	O_STALL,
	O_READ_DATA,
	O_DRY,
	O_PRUNE,
	O_ALL,
	O_K_LAST,
	O_K_HOURLY,
	O_K_DAILY,
	O_K_WEEKLY,
	O_K_MONTHLY,
	O_K_YEARLY,
};

static const struct cli_opt create_opts[] = {
	{ "repo", 'r', "REPO", "repository directory" },
	{ "connection", 'c', "NAME", "connection to back up (NAME.conf)" },
	{ "key-file", O_KEYFILE, "FILE",
	  "repository key (0600 file); default: systemd credential "
	  "'m365fs-key'" },
	{ "site", O_SITE, "PATTERN",
	  "only sites matching (URL, name or id; fnmatch; repeatable)" },
	{ "exclude-site", O_XSITE, "PATTERN", "skip matching sites" },
	{ "user", O_USER, "PATTERN",
	  "only users matching (UPN, mail, name or id; repeatable)" },
	{ "exclude-user", O_XUSER, "PATTERN", "skip matching users" },
	{ "service", O_SERVICE, "SVC",
	  "files, onedrive or mail (repeatable; default: the connection's)" },
	{ "exclude-service", O_XSERVICE, "SVC", "skip a service" },
	{ "parallel", O_PARALLEL, "N", "downloads in flight (default 8)" },
	{ "retries", O_RETRIES, "N",
	  "retries of a failing request before its item fails (default 6)" },
	{ "stall-timeout", O_STALL, "SECONDS",
	  "retry a transfer that received nothing for this long (default "
	  "60)" },
	{ "json", O_JSON, NULL, "print a JSON summary on stdout" },
	{ NULL, 0, NULL, NULL },
};

static const struct cli_opt init_opts[] = {
	{ "encrypt", O_ENCRYPT, NULL, "encrypt the repository (new key)" },
	{ "key-file", O_KEYFILE, "FILE",
	  "write the new key to FILE (mode 0600)" },
	{ NULL, 0, NULL, NULL },
};

static const struct cli_opt repo_opts[] = {
	{ "repo", 'r', "REPO", "repository directory" },
	{ "key-file", O_KEYFILE, "FILE", "repository key" },
	{ "json", O_JSON, NULL, "JSON output" },
	{ "all", O_ALL, NULL, "list: also failed snapshots" },
	{ NULL, 0, NULL, NULL },
};

static const struct cli_opt check_opts[] = {
	{ "repo", 'r', "REPO", "repository directory" },
	{ "key-file", O_KEYFILE, "FILE", "repository key" },
	{ "read-data", O_READ_DATA, NULL,
	  "read, decrypt and re-hash every chunk" },
	{ NULL, 0, NULL, NULL },
};

static const struct cli_opt forget_opts[] = {
	{ "repo", 'r', "REPO", "repository directory" },
	{ "key-file", O_KEYFILE, "FILE", "repository key" },
	{ "keep-last", O_K_LAST, "N", "keep the newest N snapshots" },
	{ "keep-hourly", O_K_HOURLY, "N", "keep the newest of N hours" },
	{ "keep-daily", O_K_DAILY, "N", "keep the newest of N days" },
	{ "keep-weekly", O_K_WEEKLY, "N", "keep the newest of N weeks" },
	{ "keep-monthly", O_K_MONTHLY, "N", "keep the newest of N months" },
	{ "keep-yearly", O_K_YEARLY, "N", "keep the newest of N years" },
	{ "prune", O_PRUNE, NULL, "prune the repository afterwards" },
	{ "dry-run", O_DRY, NULL, "only show what would be forgotten" },
	{ "json", O_JSON, NULL, "JSON output" },
	{ NULL, 0, NULL, NULL },
};

static int svc_bit(const char *s, unsigned *bit)
{
	if (!strcmp(s, "files") || !strcmp(s, "sharepoint") ||
	    !strcmp(s, "sites"))
		*bit = SNAP_SVC_FILES;
	else if (!strcmp(s, "onedrive"))
		*bit = SNAP_SVC_ONEDRIVE;
	else if (!strcmp(s, "mail") || !strcmp(s, "exchange"))
		*bit = SNAP_SVC_MAIL;
	else
		return cli_usage(NULL,
				 "unknown service '%s' (files, onedrive, mail)",
				 s);
	return 0;
}

static int add_pat(const char **v, int *n, const char *p, const char *opt)
{
	if (*n >= MAXPAT)
		return cli_usage(NULL, "too many --%s patterns", opt);
	v[(*n)++] = p;
	v[*n] = NULL;
	return 0;
}

static int keep_val(const char *arg, const char *name, unsigned *out)
{
	uint64_t v;
	int rc = cli_parse_u64(arg, name, 1000000, &v);

	if (rc == 0)
		*out = (unsigned)v;
	return rc;
}

static int on_opt(void *ctx, const struct cli_opt *o, const char *arg)
{
	struct opts *op = ctx;
	unsigned bit = 0;
	uint64_t v = 0;
	int rc;

	switch (o->key) {
	case 'r':
		op->repo = arg;
		return 0;
	case 'c':
		op->connection = arg;
		return 0;
	case O_KEYFILE:
		op->key_file = arg;
		return 0;
	case O_ENCRYPT:
		op->encrypt = true;
		return 0;
	case O_JSON:
		op->json = true;
		return 0;
	case O_READ_DATA:
		op->read_data = true;
		return 0;
	case O_DRY:
		op->dry_run = true;
		return 0;
	case O_PRUNE:
		op->prune = true;
		return 0;
	case O_ALL:
		op->all = true;
		return 0;
	case O_SITE:
		return add_pat(op->sites, &op->nsites, arg, o->name);
	case O_XSITE:
		return add_pat(op->xsites, &op->nxsites, arg, o->name);
	case O_USER:
		return add_pat(op->users, &op->nusers, arg, o->name);
	case O_XUSER:
		return add_pat(op->xusers, &op->nxusers, arg, o->name);
	case O_SERVICE:
	case O_XSERVICE:
		rc = svc_bit(arg, &bit);
		if (rc)
			return rc;
		if (o->key == O_SERVICE)
			op->services |= bit;
		else
			op->xservices |= bit;
		return 0;
	case O_PARALLEL:
		rc = cli_parse_u64(arg, o->name, 64, &v);
		if (rc == 0 && v == 0)
			return cli_usage(NULL, "--parallel must be at least 1");
		op->parallel = (unsigned)v;
		return rc;
	case O_RETRIES:
		rc = cli_parse_u64(arg, o->name, 20, &v);
		if (rc == 0 && v == 0)
			return cli_usage(NULL, "--retries must be at least 1");
		op->retries = (int)v;
		return rc;
	case O_STALL:
		rc = cli_parse_u64(arg, o->name, 3600, &v);
		if (rc == 0 && v == 0)
			return cli_usage(NULL,
					 "--stall-timeout must be at least 1");
		op->stall = (unsigned)v;
		return rc;
	case O_K_LAST:
		return keep_val(arg, o->name, &op->keep.last);
	case O_K_HOURLY:
		return keep_val(arg, o->name, &op->keep.hourly);
	case O_K_DAILY:
		return keep_val(arg, o->name, &op->keep.daily);
	case O_K_WEEKLY:
		return keep_val(arg, o->name, &op->keep.weekly);
	case O_K_MONTHLY:
		return keep_val(arg, o->name, &op->keep.monthly);
	case O_K_YEARLY:
		return keep_val(arg, o->name, &op->keep.yearly);
	}
	return 0;
}

/* ---- repository --------------------------------------------------- */

struct repo {
	struct store *st;
	struct cat *c;
	unsigned char key[STORE_KEY_LEN];
	bool has_key;
};

static int load_key(const struct opts *op, struct repo *r)
{
	struct buf why = BUF_INIT;
	int rc = 0;

	if (op->key_file) {
		rc = store_key_load_file(op->key_file, r->key, &why);
		if (rc < 0) {
			cli_error("cannot read the key file '%s': %s",
				  op->key_file,
				  why.len ? why.data : strerror(-rc));
			goto out;
		}
		r->has_key = true;
	} else {
		rc = store_key_load_credential("m365fs-key", r->key, &why);
		if (rc == 0) {
			r->has_key = true;
		} else if (rc != -ENOENT) {
			cli_error("cannot read the systemd credential "
				  "'m365fs-key': %s",
				  why.len ? why.data : strerror(-rc));
			goto out;
		}
		rc = 0;
	}
out:
	buf_release(&why);
	return rc;
}

/* Open the repository: returns 0 or an exit code (reported). */
static int repo_open(const struct opts *op, struct repo *r, bool write,
		     bool catalog)
{
	struct store_open_opts so = { 0 };
	struct buf why = BUF_INIT, path = BUF_INIT;
	int rc, ret = CLI_EXIT_FAIL;

	memset(r, 0, sizeof(*r));
	if (!op->repo) {
		ret = cli_usage(NULL, "no repository given (--repo REPO)");
		goto out;
	}
	if (load_key(op, r) < 0)
		goto out;
	so.flags = write ? STORE_OPEN_WRITE : 0;
	so.key = r->has_key ? r->key : NULL;
	so.command = "m365-snapshot";
	rc = store_open(op->repo, &so, &r->st, &why);
	if (rc == -EBUSY) {
		cli_error("repository '%s' is locked by %s", op->repo,
			  why.len ? why.data : "another process");
		cli_hint("wait for it to finish; a snapshot that is still "
			 "running will commit on its own");
		ret = EXIT_LOCKED;
		goto out;
	}
	if (rc == -ENOKEY) {
		cli_error("repository '%s' is encrypted and no key was given",
			  op->repo);
		cli_hint("pass --key-file FILE or the systemd credential "
			 "'m365fs-key'");
		goto out;
	}
	if (rc == -EKEYREJECTED) {
		cli_error("the key given is not the key of repository '%s'",
			  op->repo);
		goto out;
	}
	if (rc < 0) {
		cli_error("cannot open repository '%s': %s", op->repo,
			  why.len ? why.data : strerror(-rc));
		if (rc == -ENOENT)
			cli_hint("create it with 'm365-snapshot init %s'",
				 op->repo);
		goto out;
	}
	if (catalog) {
		buf_addf(&path, "%s/%s", op->repo, CAT_FILE);
		rc = cat_open(path.data,
			      write ? CAT_OPEN_WRITE | CAT_OPEN_CREATE
				    : CAT_OPEN_READ,
			      &r->c);
		if (rc < 0) {
			cli_error("cannot open the catalog '%s': %s", path.data,
				  strerror(-rc));
			if (rc == -EBADMSG || rc == -ENOENT)
				cli_hint("run 'm365-snapshot rebuild-catalog "
					 "--repo %s'",
					 op->repo);
			goto out;
		}
	}
	ret = 0;
out:
	if (ret) {
		cat_close(r->c);
		store_close(r->st);
		r->c = NULL;
		r->st = NULL;
	}
	OPENSSL_cleanse(r->key, sizeof(r->key));
	buf_release(&why);
	buf_release(&path);
	return ret;
}

static int repo_close(struct repo *r)
{
	int rc;

	cat_close(r->c);
	rc = store_close(r->st);
	if (rc < 0)
		cli_error("cannot flush the repository: %s", strerror(-rc));
	return rc;
}

/* ---- init ----------------------------------------------------------- */

static int cmd_init(int argc, char **argv)
{
	static const char usage[] =
		"m365-snapshot init REPO [--encrypt [--key-file FILE]]";
	struct opts op = { 0 };
	struct store_create_opts co = { 0 };
	unsigned char key[STORE_KEY_LEN];
	char b64[STORE_KEY_B64_LEN + 1];
	struct buf why = BUF_INIT, path = BUF_INIT;
	struct cat *c = NULL;
	int npos = 0, rc, ret = CLI_EXIT_FAIL;

	rc = cli_parse(argc, argv, "init", usage, init_opts, on_opt, &op,
		       &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos != 1)
		return cli_usage("init", "give exactly one REPO directory");
	if (op.key_file && !op.encrypt)
		return cli_usage("init", "--key-file needs --encrypt");
	if (op.key_file && access(op.key_file, F_OK) == 0)
		return cli_usage("init", "key file '%s' already exists",
				 op.key_file);
	co.encrypt = op.encrypt;
	rc = store_create(argv[0], &co, key, &why);
	if (rc < 0) {
		cli_error("cannot create repository '%s': %s", argv[0],
			  why.len ? why.data : strerror(-rc));
		goto out;
	}
	buf_addf(&path, "%s/%s", argv[0], CAT_FILE);
	rc = cat_open(path.data, CAT_OPEN_WRITE | CAT_OPEN_CREATE, &c);
	cat_close(c);
	if (rc < 0) {
		cli_error("cannot create the catalog '%s': %s", path.data,
			  strerror(-rc));
		goto out;
	}
	if (op.encrypt) {
		store_key_format(key, b64);
		if (op.key_file) {
			int fd = open(op.key_file,
				      O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
				      0600);

			if (fd < 0 || util_write_all(fd, b64, strlen(b64)) ||
			    util_write_all(fd, "\n", 1) || fsync(fd)) {
				cli_error("cannot write key file '%s': %s",
					  op.key_file, strerror(errno));
				if (fd >= 0)
					close(fd);
				printf("%s\n", b64);
				cli_hint("the key is printed above: store it "
					 "now, it is not kept anywhere else");
				goto out;
			}
			close(fd);
			fprintf(stderr,
				"created encrypted repository '%s'; key "
				"written to '%s'\n",
				argv[0], op.key_file);
			fprintf(stderr, "hint: keep a copy of the key file "
					"elsewhere: without it the backups "
					"cannot be read\n");
		} else {
			printf("%s\n", b64);
			fflush(stdout);
			fprintf(stderr,
				"created encrypted repository '%s'; its key "
				"is printed above, once\n",
				argv[0]);
			fprintf(stderr,
				"hint: store it in a file only you can read "
				"(umask 077; cat > key; chmod 600 key) and "
				"keep a copy elsewhere: without it the "
				"backups cannot be read\n");
		}
	} else {
		fprintf(stderr, "created repository '%s'\n", argv[0]);
	}
	ret = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(b64, sizeof(b64));
	buf_release(&why);
	buf_release(&path);
	return ret;
}

/* ---- create --------------------------------------------------------- */

struct prog {
	struct cli_progress p;
};

static void on_progress(void *ctx, const struct snap_stats *st)
{
	struct prog *pr = ctx;
	char b[32], r[32];
	double sec = st->elapsed_ms / 1000.0;

	cli_human_bytes((uint64_t)st->bytes_down, b, sizeof(b));
	cli_human_bytes(sec > 0 ? (uint64_t)(st->bytes_down / sec) : 0, r,
			sizeof(r));
	cli_progress_update(&pr->p,
			    "%lld items (%lld files, %lld messages), %s "
			    "downloaded (%s/s), %lld requests, throttled %lld "
			    "(%.0fs waited), %lld errors",
			    (long long)st->items, (long long)st->files,
			    (long long)st->messages, b, r,
			    (long long)st->requests, (long long)st->throttled,
			    st->waited_ms / 1000.0, (long long)st->errors);
}

static const char *status_name(int s)
{
	switch (s) {
	case CAT_SNAP_RUNNING:
		return "running";
	case CAT_SNAP_COMPLETE:
		return "complete";
	case CAT_SNAP_PARTIAL:
		return "partial";
	default:
		return "failed";
	}
}

static void summary_json(int64_t snap, int status, const struct snap_stats *st)
{
	cJSON *j = cJSON_CreateObject();

	if (!j)
		return;
	cli_json_num(j, "snapshot", (double)snap);
	cli_json_str(j, "status", status_name(status));
	cli_json_num(j, "items", (double)st->items);
	cli_json_num(j, "files", (double)st->files);
	cli_json_num(j, "messages", (double)st->messages);
	cli_json_num(j, "folders", (double)st->folders);
	cli_json_num(j, "drives", (double)st->drives);
	cli_json_num(j, "mailboxes", (double)st->mailboxes);
	cli_json_num(j, "no_onedrive", (double)st->no_onedrive);
	cli_json_num(j, "no_mailbox", (double)st->no_mailbox);
	cli_json_num(j, "changed", (double)st->changed);
	cli_json_num(j, "deleted", (double)st->deleted);
	cli_json_num(j, "downloads", (double)st->downloads);
	cli_json_num(j, "reused", (double)st->reused);
	cli_json_num(j, "bytes_downloaded", (double)st->bytes_down);
	cli_json_num(j, "bytes_new", (double)st->bytes_new);
	cli_json_num(j, "bytes_reused", (double)st->bytes_reused);
	cli_json_num(j, "requests", (double)st->requests);
	cli_json_num(j, "throttled", (double)st->throttled);
	cli_json_num(j, "waited_ms", (double)st->waited_ms);
	cli_json_num(j, "errors", (double)st->errors);
	cli_json_num(j, "container_errors", (double)st->container_errors);
	cli_json_num(j, "full_walks", (double)st->full_walks);
	cli_json_num(j, "resyncs", (double)st->resyncs);
	cli_json_num(j, "duration_s", st->elapsed_ms / 1000.0);
	cli_json_print(j);
	cJSON_Delete(j);
}

static int cmd_create(int argc, char **argv)
{
	static const char usage[] =
		"m365-snapshot [create] --repo REPO --connection NAME "
		"[options]\n"
		"exit status: 0 complete, 3 partial (per-item errors, see "
		"'show'), 1 failed, 2 usage, 4 repository locked";
	struct opts op = { .retries = -1 };
	struct tool_conn tc = { 0 };
	struct http_config hc = { 0 };
	struct repo r = { 0 };
	struct snap_config cfg = { 0 };
	struct snap_stats st = { 0 };
	struct prog pr;
	int64_t snap = 0;
	int status = CAT_SNAP_FAILED, npos = 0, rc, ret;
	char name[64], b1[32], b2[32], d[32], cache[PATH_MAX];

	rc = cli_parse(argc, argv, "create", usage, create_opts, on_opt, &op,
		       &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos)
		return cli_usage("create", "unexpected argument '%s'", argv[0]);
	if (!op.connection)
		return cli_usage("create", "no connection given "
					   "(--connection NAME)");
	ret = repo_open(&op, &r, true, true);
	if (ret)
		return ret;
	if (op.retries > 0)
		hc.max_retries = (unsigned)op.retries;
	hc.low_speed_time_s = op.stall;
	if (tool_connect(op.connection, &hc, &tc) < 0) {
		repo_close(&r);
		return CLI_EXIT_FAIL;
	}
	cfg.services =
		(op.services ? op.services : tc.services) & ~op.xservices;
	if (!cfg.services) {
		tool_disconnect(&tc);
		repo_close(&r);
		return cli_usage("create", "every service is excluded");
	}
	cfg.sites = op.sites;
	cfg.exclude_sites = op.xsites;
	cfg.users = op.users;
	cfg.exclude_users = op.xusers;
	cfg.parallel = op.parallel;
	snprintf(cache, sizeof(cache), "%s/snapshot-cache.db", op.repo);
	cfg.cache_file = cache;
	cli_progress_init(&pr.p);
	cfg.progress = on_progress;
	cfg.progress_ctx = &pr;
	rc = snap_run(tc.graph, r.st, r.c, &cfg, &st, &snap, &status);
	cli_progress_clear(&pr.p);
	if (rc == 0) {
		snprintf(name, sizeof(name), "%lld", (long long)snap);
		rc = snap_catalog_backup(r.c, r.st, op.repo, name);
		if (rc < 0)
			cli_warn("cannot store a copy of the catalog in the "
				 "repository: %s",
				 strerror(-rc));
	}
	tool_disconnect(&tc);
	if (repo_close(&r) < 0)
		status = CAT_SNAP_FAILED;
	cli_human_bytes((uint64_t)st.bytes_new, b1, sizeof(b1));
	cli_human_bytes((uint64_t)st.bytes_reused, b2, sizeof(b2));
	cli_human_duration((uint64_t)(st.elapsed_ms / 1000), d, sizeof(d));
	if (status == CAT_SNAP_FAILED) {
		cli_error("snapshot %lld failed after %s: nothing of it was "
			  "committed",
			  (long long)snap, d);
		cli_hint("see the messages above; the next run reuses what "
			 "was already stored");
	} else {
		fprintf(stderr,
			"snapshot %lld %s: %lld items (%lld files, %lld "
			"messages), %lld changed, %lld deleted, %s new, %s "
			"reused, %lld requests, %lld throttled, %lld errors, "
			"%s\n",
			(long long)snap, status_name(status),
			(long long)st.items, (long long)st.files,
			(long long)st.messages, (long long)st.changed,
			(long long)st.deleted, b1, b2, (long long)st.requests,
			(long long)st.throttled, (long long)st.errors, d);
		if (status == CAT_SNAP_PARTIAL)
			cli_hint("run 'm365-snapshot show %lld --repo %s' "
				 "for the errors",
				 (long long)snap, op.repo);
	}
	if (op.json)
		summary_json(snap, status, &st);
	if (status == CAT_SNAP_COMPLETE)
		return CLI_EXIT_OK;
	return status == CAT_SNAP_PARTIAL ? EXIT_PARTIAL : CLI_EXIT_FAIL;
}

/* ---- list / show ---------------------------------------------------- */

static void iso(int64_t t, char *out, size_t n)
{
	if (t)
		util_time_format(t, out, n);
	else
		snprintf(out, n, "-");
}

struct list_ctx {
	cJSON *arr;
};

static cJSON *snap_json(const struct cat_snapshot *s)
{
	cJSON *j = cJSON_CreateObject();
	char t[32];

	iso(s->start, t, sizeof(t));
	cli_json_num(j, "id", (double)s->id);
	cli_json_str(j, "time", t);
	iso(s->end, t, sizeof(t));
	cli_json_str(j, "end", s->end ? t : NULL);
	cli_json_str(j, "status", status_name(s->status));
	cli_json_num(j, "items", (double)s->n.items);
	cli_json_num(j, "files", (double)s->n.files);
	cli_json_num(j, "messages", (double)s->n.messages);
	cli_json_num(j, "bytes_new", (double)s->n.bytes_new);
	cli_json_num(j, "bytes_reused", (double)s->n.bytes_reused);
	cli_json_num(j, "requests", (double)s->n.requests);
	cli_json_num(j, "throttled", (double)s->n.throttled);
	cli_json_num(j, "errors", (double)s->n.errors);
	return j;
}

static int list_cb(void *ctx, const struct cat_snapshot *s)
{
	struct list_ctx *k = ctx;
	char t[32];

	if (k->arr) {
		cJSON_AddItemToArray(k->arr, snap_json(s));
		return 0;
	}
	iso(s->start, t, sizeof(t));
	printf("%-6lld %-20s %-8s %8lld items %8lld files %8lld messages "
	       "%6lld errors\n",
	       (long long)s->id, t, status_name(s->status),
	       (long long)s->n.items, (long long)s->n.files,
	       (long long)s->n.messages, (long long)s->n.errors);
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	static const char usage[] = "m365-snapshot list --repo REPO [--json]";
	struct opts op = { 0 };
	struct repo r;
	struct list_ctx k = { 0 };
	int npos = 0, rc;

	rc = cli_parse(argc, argv, "list", usage, repo_opts, on_opt, &op,
		       &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	rc = repo_open(&op, &r, false, true);
	if (rc)
		return rc;
	if (op.json)
		k.arr = cJSON_CreateArray();
	rc = cat_snapshot_list(r.c, op.all, list_cb, &k);
	if (k.arr) {
		cli_json_print(k.arr);
		cJSON_Delete(k.arr);
	}
	repo_close(&r);
	if (rc < 0) {
		cli_error("cannot list the snapshots: %s", strerror(-rc));
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

/* "latest", an id, or a start time as listed. */
static int resolve_snap(struct cat *c, const char *s, int64_t *id)
{
	struct cat_snapshot cs;
	char *end;
	long long v;
	int64_t t;
	int32_t ns;

	if (!strcmp(s, "latest"))
		return cat_snapshot_latest(c, id);
	v = strtoll(s, &end, 10);
	if (*s && !*end && v > 0) {
		*id = v;
		return cat_snapshot_get(c, v, &cs);
	}
	if (util_time_parse(s, &t, &ns) == 0) {
		int64_t cand = 0;

		if (cat_snapshot_latest(c, &cand) < 0)
			return -ENOENT;
		for (; cand > 0; cand--)
			if (cat_snapshot_get(c, cand, &cs) == 0 &&
			    cs.start == t) {
				*id = cand;
				return 0;
			}
	}
	return -ENOENT;
}

struct err_ctx {
	cJSON *arr;
	int n;
};

static int err_cb(void *ctx, const struct cat_snap_error *e)
{
	struct err_ctx *k = ctx;

	k->n++;
	if (k->arr) {
		cJSON *j = cJSON_CreateObject();

		cli_json_str(j, "service", e->service);
		cli_json_str(j, "path", e->path);
		cli_json_str(j, "id", e->graph_id);
		cli_json_str(j, "reason", e->reason);
		cJSON_AddItemToArray(k->arr, j);
		return 0;
	}
	printf("  %s: %s: %s\n", e->service, e->path ? e->path : "-",
	       e->reason);
	return 0;
}

static int cmd_show(int argc, char **argv)
{
	static const char usage[] =
		"m365-snapshot show SNAPSHOT --repo REPO [--json]\n"
		"SNAPSHOT: an id, a time as listed, or 'latest'";
	struct opts op = { 0 };
	struct repo r;
	struct cat_snapshot s;
	struct err_ctx k = { 0 };
	int64_t id = 0;
	int npos = 0, rc;
	char t[32], e[32], b1[32], b2[32];

	rc = cli_parse(argc, argv, "show", usage, repo_opts, on_opt, &op,
		       &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos != 1)
		return cli_usage("show", "give one SNAPSHOT");
	rc = repo_open(&op, &r, false, true);
	if (rc)
		return rc;
	if (resolve_snap(r.c, argv[0], &id) < 0 ||
	    cat_snapshot_get(r.c, id, &s) < 0) {
		cli_error("no snapshot '%s' in '%s'", argv[0], op.repo);
		cli_hint("'m365-snapshot list --repo %s' lists them", op.repo);
		repo_close(&r);
		return CLI_EXIT_FAIL;
	}
	if (op.json) {
		cJSON *j = snap_json(&s);

		k.arr = cJSON_AddArrayToObject(j, "error_list");
		cat_snapshot_errors(r.c, id, err_cb, &k);
		cli_json_print(j);
		cJSON_Delete(j);
	} else {
		iso(s.start, t, sizeof(t));
		iso(s.end, e, sizeof(e));
		cli_human_bytes((uint64_t)s.n.bytes_new, b1, sizeof(b1));
		cli_human_bytes((uint64_t)s.n.bytes_reused, b2, sizeof(b2));
		printf("snapshot %lld\n  started   %s\n  ended     %s\n"
		       "  status    %s\n  items     %lld (%lld files, %lld "
		       "messages)\n  new data  %s\n  reused    %s\n"
		       "  requests  %lld (%lld throttled)\n  errors    %lld\n",
		       (long long)s.id, t, e, status_name(s.status),
		       (long long)s.n.items, (long long)s.n.files,
		       (long long)s.n.messages, b1, b2, (long long)s.n.requests,
		       (long long)s.n.throttled, (long long)s.n.errors);
		cat_snapshot_errors(r.c, id, err_cb, &k);
	}
	repo_close(&r);
	return CLI_EXIT_OK;
}

/* ---- forget / prune ------------------------------------------------- */

struct snaps {
	struct cat_snapshot *v;
	size_t n;
};

static int collect_cb(void *ctx, const struct cat_snapshot *s)
{
	struct snaps *k = ctx;
	struct cat_snapshot *v = realloc(k->v, (k->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	k->v = v;
	k->v[k->n++] = *s;
	return 0;
}

static int add_desc_cb(void *ctx, int64_t id, const void *desc, size_t len)
{
	(void)id;
	return store_idset_add_desc(ctx, desc, len);
}

static int do_prune(struct repo *r, const char *repo)
{
	struct store_idset *keep = store_idset_new();
	struct store_prune_stats ps = { 0 };
	char b1[32], b2[32];
	int rc;

	if (!keep)
		return -ENOMEM;
	rc = cat_content_referenced(r->c, true, add_desc_cb, keep);
	if (rc < 0) {
		cli_error("cannot read the contents of the catalog: %s",
			  strerror(-rc));
		goto out;
	}
	/* the catalog copy must not name forgotten snapshots */
	rc = snap_catalog_backup(r->c, r->st, repo, "prune");
	if (rc < 0) {
		cli_error("cannot store a copy of the catalog: %s",
			  strerror(-rc));
		goto out;
	}
	rc = store_prune(r->st, keep, &ps);
	if (rc < 0) {
		cli_error("prune failed: %s", strerror(-rc));
		cli_hint("the repository is still valid; run 'm365-snapshot "
			 "check --repo %s'",
			 repo);
		goto out;
	}
	cli_human_bytes(ps.bytes_before, b1, sizeof(b1));
	cli_human_bytes(ps.bytes_after, b2, sizeof(b2));
	fprintf(stderr,
		"pruned: %llu chunks deleted, %llu kept; packs %s -> %s "
		"(%llu rewritten, %llu deleted)\n",
		(unsigned long long)ps.chunks_deleted,
		(unsigned long long)ps.chunks_kept, b1, b2,
		(unsigned long long)ps.packs_rewritten,
		(unsigned long long)ps.packs_deleted);
out:
	store_idset_free(keep);
	return rc;
}

static int cmd_forget(int argc, char **argv)
{
	static const char usage[] =
		"m365-snapshot forget --repo REPO --keep-last N "
		"[--keep-hourly N] [--keep-daily N] [--keep-weekly N] "
		"[--keep-monthly N] [--keep-yearly N] [--prune] [--dry-run]";
	struct opts op = { 0 };
	struct repo r;
	struct snaps k = { 0 };
	int64_t *times = NULL;
	unsigned *why = NULL;
	cJSON *j = NULL, *ka = NULL, *fa = NULL;
	size_t i;
	int npos = 0, rc, ret = CLI_EXIT_FAIL, forgotten = 0;
	char t[32];

	rc = cli_parse(argc, argv, "forget", usage, forget_opts, on_opt, &op,
		       &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (snap_keep_empty(&op.keep))
		return cli_usage("forget", "give a policy (--keep-last N, "
					   "--keep-daily N, ...): forgetting "
					   "every snapshot is not allowed");
	rc = repo_open(&op, &r, !op.dry_run, true);
	if (rc)
		return rc;
	rc = cat_snapshot_list(r.c, false, collect_cb, &k);
	if (rc < 0)
		goto out;
	times = calloc(k.n + 1, sizeof(*times));
	why = calloc(k.n + 1, sizeof(*why));
	if (!times || !why)
		goto out;
	for (i = 0; i < k.n; i++)
		times[i] = k.v[i].start;
	if (snap_retention(times, k.n, &op.keep, why) < 0)
		goto out;
	if (op.json) {
		j = cJSON_CreateObject();
		ka = cJSON_AddArrayToObject(j, "keep");
		fa = cJSON_AddArrayToObject(j, "forget");
	}
	for (i = 0; i < k.n; i++) {
		iso(k.v[i].start, t, sizeof(t));
		if (why[i]) {
			if (ka)
				cJSON_AddItemToArray(
					ka,
					cJSON_CreateNumber((double)k.v[i].id));
			else
				printf("keep   %lld %s\n", (long long)k.v[i].id,
				       t);
			continue;
		}
		if (fa)
			cJSON_AddItemToArray(
				fa, cJSON_CreateNumber((double)k.v[i].id));
		else
			printf("forget %lld %s%s\n", (long long)k.v[i].id, t,
			       op.dry_run ? " (dry run)" : "");
		if (op.dry_run)
			continue;
		rc = cat_snapshot_forget(r.c, k.v[i].id);
		if (rc < 0) {
			cli_error("cannot forget snapshot %lld: %s",
				  (long long)k.v[i].id, strerror(-rc));
			goto out;
		}
		forgotten++;
	}
	if (!op.dry_run && forgotten) {
		rc = snap_catalog_backup(r.c, r.st, op.repo, "forget");
		if (rc < 0)
			cli_warn("cannot store a copy of the catalog: %s",
				 strerror(-rc));
	}
	if (!op.dry_run && op.prune && do_prune(&r, op.repo) < 0)
		goto out;
	ret = CLI_EXIT_OK;
out:
	if (j) {
		cli_json_print(j);
		cJSON_Delete(j);
	}
	if (repo_close(&r) < 0)
		ret = CLI_EXIT_FAIL;
	free(times);
	free(why);
	free(k.v);
	return ret;
}

static int cmd_prune(int argc, char **argv)
{
	static const char usage[] = "m365-snapshot prune --repo REPO";
	struct opts op = { 0 };
	struct repo r;
	int npos = 0, rc;

	rc = cli_parse(argc, argv, "prune", usage, repo_opts, on_opt, &op,
		       &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	rc = repo_open(&op, &r, true, true);
	if (rc)
		return rc;
	rc = do_prune(&r, op.repo);
	if (repo_close(&r) < 0)
		rc = -EIO;
	return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ---- check ---------------------------------------------------------- */

struct check_ctx {
	struct store_idset *bad; /* damaged chunk ids */
	uint64_t problems;
	struct cat *c;
	struct repo *r;
	int64_t *contents; /* affected content ids */
	size_t ncontents;
};

static void problem_cb(void *arg, const struct store_problem *p)
{
	struct check_ctx *k = arg;
	char hex[65] = "";

	k->problems++;
	if (p->id) {
		util_hex(hex, p->id, 16, false);
		store_idset_add(k->bad, p->id);
	}
	printf("damaged: %s%s%s%s at %s offset %llu: %s\n",
	       p->kind == STORE_PROBLEM_CHUNK ? "chunk " : "", hex,
	       hex[0] ? "..." : "", "", p->pack ? p->pack : "-",
	       (unsigned long long)p->offset, p->what ? p->what : "");
}

struct chunk_hit {
	struct store_idset *bad;
	bool hit;
};

static int chunk_cb(void *arg, const unsigned char *id, uint64_t off,
		    uint32_t len)
{
	struct chunk_hit *h = arg;

	(void)off;
	(void)len;
	if (store_idset_has(h->bad, id)) {
		h->hit = true;
		return 1;
	}
	return 0;
}

static int affected_cb(void *ctx, int64_t id, const void *desc, size_t len)
{
	struct check_ctx *k = ctx;
	struct chunk_hit h = { k->bad, false };
	int64_t *v;

	store_desc_foreach(desc, len, chunk_cb, &h);
	if (!h.hit)
		return 0;
	v = realloc(k->contents, (k->ncontents + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	k->contents = v;
	k->contents[k->ncontents++] = id;
	return 0;
}

struct walk_ctx {
	struct check_ctx *k;
	int64_t snap;
	struct buf path;
	uint64_t affected;
};

static int walk_cb(void *ctx, const struct cat_item *it)
{
	struct walk_ctx *w = ctx;
	size_t len = w->path.len, i;

	buf_addf(&w->path, "/%s", it->name);
	if (cat_kind_is_dir(it->kind)) {
		cat_list(w->k->c, w->snap, it->id, NULL, walk_cb, w);
	} else if (it->content) {
		for (i = 0; i < w->k->ncontents; i++)
			if (w->k->contents[i] == it->content) {
				printf("affected: snapshot %lld: %s\n",
				       (long long)w->snap, w->path.data + 1);
				w->affected++;
				break;
			}
	}
	buf_truncate(&w->path, len);
	return 0;
}

static void cat_problem(void *ctx, const char *problem)
{
	(void)ctx;
	printf("catalog: %s\n", problem);
}

static int cmd_check(int argc, char **argv)
{
	static const char usage[] =
		"m365-snapshot check --repo REPO [--read-data]";
	struct opts op = { 0 };
	struct repo r;
	struct check_ctx k = { 0 };
	struct store_check_stats cs = { 0 };
	struct snaps sn = { 0 };
	int64_t cprob = 0;
	size_t i;
	int npos = 0, rc, crc, ret = CLI_EXIT_FAIL;
	uint64_t affected = 0;

	rc = cli_parse(argc, argv, "check", usage, check_opts, on_opt, &op,
		       &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	rc = repo_open(&op, &r, false, true);
	if (rc)
		return rc;
	k.bad = store_idset_new();
	k.c = r.c;
	if (!k.bad)
		goto out;
	rc = store_check(r.st, op.read_data ? STORE_CHECK_READ_DATA : 0,
			 problem_cb, &k, &cs);
	if (rc < 0 && rc != -EBADMSG) {
		cli_error("the check could not run: %s", strerror(-rc));
		goto out;
	}
	crc = cat_check(r.c, cat_problem, NULL, &cprob);
	if (crc < 0 && crc != -EBADMSG) {
		cli_error("the catalog check could not run: %s",
			  strerror(-crc));
		goto out;
	}
	if (store_idset_count(k.bad)) {
		cat_content_referenced(r.c, false, affected_cb, &k);
		cat_snapshot_list(r.c, false, collect_cb, &sn);
		for (i = 0; i < sn.n; i++) {
			struct walk_ctx w = { .k = &k, .snap = sn.v[i].id };

			buf_init(&w.path, 0);
			cat_list(r.c, w.snap, CAT_ROOT, NULL, walk_cb, &w);
			affected += w.affected;
			buf_release(&w.path);
		}
	}
	fprintf(stderr,
		"checked %llu packs, %llu chunks%s: %llu problems in the "
		"store, %lld in the catalog, %llu files/messages "
		"affected\n",
		(unsigned long long)cs.packs, (unsigned long long)cs.chunks,
		op.read_data ? " (data read)" : "",
		(unsigned long long)k.problems, (long long)cprob,
		(unsigned long long)affected);
	if (k.problems || cprob) {
		cli_error("repository '%s' is damaged", op.repo);
		cli_hint("the next snapshot stores again what it still finds "
			 "in the tenant; 'rebuild-catalog' restores a lost "
			 "catalog");
		goto out;
	}
	ret = CLI_EXIT_OK;
out:
	store_idset_free(k.bad);
	free(k.contents);
	free(sn.v);
	repo_close(&r);
	return ret;
}

/* ---- rebuild-catalog ------------------------------------------------ */

static int cmd_rebuild(int argc, char **argv)
{
	static const char usage[] =
		"m365-snapshot rebuild-catalog --repo REPO [--key-file FILE]";
	struct opts op = { 0 };
	struct repo r;
	char *name = NULL;
	int npos = 0, rc;

	rc = cli_parse(argc, argv, "rebuild-catalog", usage, repo_opts, on_opt,
		       &op, &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	rc = repo_open(&op, &r, true, false);
	if (rc)
		return rc;
	rc = snap_catalog_restore(r.st, op.repo, &name);
	if (rc == -ENOENT)
		cli_error("repository '%s' holds no copy of the catalog",
			  op.repo);
	else if (rc < 0)
		cli_error("cannot rebuild the catalog: %s", strerror(-rc));
	else
		fprintf(stderr, "catalog rebuilt from its copy '%s'\n", name);
	free(name);
	repo_close(&r);
	return rc < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ---- dump / cat (reading back, for people and tests) ---------------- */

struct dump_ctx {
	struct repo *r;
	int64_t snap;
	struct buf path;
	bool read_data;
	int errors;
};

static void sha_hex(const unsigned char *d, char *out)
{
	util_hex(out, d, 32, false);
}

static int read_sha(struct repo *r, int64_t content, char out[65])
{
	struct buf desc = BUF_INIT;
	unsigned char md[32];
	unsigned char *p = NULL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t off = 0;
	int rc;

	rc = cat_content_get(r->c, content, NULL, &desc);
	p = malloc(1 << 20);
	if (rc < 0 || !p || !ctx) {
		rc = rc < 0 ? rc : -ENOMEM;
		goto out;
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (;;) {
		ssize_t n =
			store_read(r->st, desc.data, desc.len, off, p, 1 << 20);

		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, p, (size_t)n);
		off += (uint64_t)n;
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	sha_hex(md, out);
out:
	EVP_MD_CTX_free(ctx);
	free(p);
	buf_release(&desc);
	return rc;
}

static int dump_cb(void *ctx, const struct cat_item *it)
{
	struct dump_ctx *d = ctx;
	size_t len = d->path.len;
	struct buf meta = BUF_INIT;
	cJSON *j = cJSON_CreateObject(), *m;
	char *s;
	int rc;

	buf_addf(&d->path, "%s%s", len ? "/" : "", it->name);
	cli_json_str(j, "path", d->path.data);
	cli_json_num(j, "kind", it->kind);
	cli_json_bool(j, "dir", cat_kind_is_dir(it->kind));
	cli_json_num(j, "size", (double)it->size);
	cli_json_num(j, "mtime", (double)it->mtime_sec);
	cli_json_num(j, "btime", (double)it->btime_sec);
	cli_json_num(j, "item", (double)it->id);
	if (it->content) {
		struct cat_content cc;
		char hex[65];

		if (cat_content_get(d->r->c, it->content, &cc, NULL) == 0) {
			sha_hex(cc.sha256, hex);
			cli_json_str(j, "sha256", hex);
		}
		if (d->read_data) {
			rc = read_sha(d->r, it->content, hex);
			if (rc < 0) {
				d->errors++;
				cli_json_str(j, "read_error", strerror(-rc));
			} else {
				cli_json_str(j, "read_sha256", hex);
			}
		}
	}
	m = cJSON_AddObjectToObject(j, "meta");
	if (cat_item_meta(d->r->c, it->id, it->from_snap, &meta) == 0) {
		size_t pos = 0;
		const char *k, *v;

		while (cat_meta_next(meta.data, meta.len, &pos, &k, &v) == 1)
			cli_json_str(m, k, v);
	}
	buf_release(&meta);
	s = cJSON_PrintUnformatted(j);
	if (s)
		printf("%s\n", s);
	free(s);
	cJSON_Delete(j);
	if (cat_kind_is_dir(it->kind))
		cat_list(d->r->c, d->snap, it->id, NULL, dump_cb, d);
	buf_truncate(&d->path, len);
	return 0;
}

static const struct cli_opt dump_opts[] = {
	{ "repo", 'r', "REPO", "repository directory" },
	{ "key-file", O_KEYFILE, "FILE", "repository key" },
	{ "read-data", O_READ_DATA, NULL,
	  "read every content back and print its SHA-256" },
	{ NULL, 0, NULL, NULL },
};

static int cmd_dump(int argc, char **argv)
{
	static const char usage[] =
		"m365-snapshot dump SNAPSHOT --repo REPO [--read-data]\n"
		"prints one JSON object per item (path, kind, size, times, "
		"sha256, metadata)";
	struct opts op = { 0 };
	struct repo r;
	struct dump_ctx d = { 0 };
	int64_t id = 0;
	int npos = 0, rc;

	rc = cli_parse(argc, argv, "dump", usage, dump_opts, on_opt, &op,
		       &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos != 1)
		return cli_usage("dump", "give one SNAPSHOT");
	rc = repo_open(&op, &r, false, true);
	if (rc)
		return rc;
	if (resolve_snap(r.c, argv[0], &id) < 0) {
		cli_error("no snapshot '%s' in '%s'", argv[0], op.repo);
		repo_close(&r);
		return CLI_EXIT_FAIL;
	}
	d.r = &r;
	d.snap = id;
	d.read_data = op.read_data;
	buf_init(&d.path, 0);
	rc = cat_list(r.c, id, CAT_ROOT, NULL, dump_cb, &d);
	buf_release(&d.path);
	repo_close(&r);
	if (rc < 0 || d.errors) {
		cli_error("cannot read snapshot %lld completely",
			  (long long)id);
		return CLI_EXIT_FAIL;
	}
	return CLI_EXIT_OK;
}

static int cmd_cat(int argc, char **argv)
{
	static const char usage[] =
		"m365-snapshot cat SNAPSHOT PATH --repo REPO\n"
		"writes the content of a file or message to stdout";
	struct opts op = { 0 };
	struct repo r;
	struct cat_item it = { .id = CAT_ROOT };
	struct buf desc = BUF_INIT;
	int64_t id = 0;
	char *path, *save = NULL, *comp;
	int npos = 0, rc, ret = CLI_EXIT_FAIL;

	rc = cli_parse(argc, argv, "cat", usage, repo_opts, on_opt, &op, &npos);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (npos != 2)
		return cli_usage("cat", "give SNAPSHOT and PATH");
	rc = repo_open(&op, &r, false, true);
	if (rc)
		return rc;
	if (resolve_snap(r.c, argv[0], &id) < 0) {
		cli_error("no snapshot '%s' in '%s'", argv[0], op.repo);
		goto out;
	}
	path = argv[1];
	for (comp = strtok_r(path, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		struct cat_item next;

		if (cat_lookup(r.c, id, it.id, comp, &next) < 0) {
			cli_error("no '%s' in snapshot %lld", comp,
				  (long long)id);
			goto out;
		}
		it = next;
	}
	if (!it.content) {
		cli_error("'%s' is not a file", argv[1]);
		goto out;
	}
	rc = cat_content_get(r.c, it.content, NULL, &desc);
	if (rc == 0)
		rc = store_read_fd(r.st, desc.data, desc.len, STDOUT_FILENO);
	if (rc < 0) {
		cli_error("cannot read '%s': %s", argv[1], strerror(-rc));
		goto out;
	}
	ret = CLI_EXIT_OK;
out:
	buf_release(&desc);
	repo_close(&r);
	return ret;
}

/* ---- main ----------------------------------------------------------- */

static void main_help(void)
{
	printf("usage: m365-snapshot [create] --repo REPO --connection NAME "
	       "[options]\n"
	       "       m365-snapshot init REPO [--encrypt [--key-file FILE]]\n"
	       "       m365-snapshot list|show|forget|prune|check|"
	       "rebuild-catalog|dump|cat ... --repo REPO\n"
	       "\n"
	       "commands:\n"
	       "  init             create a repository\n"
	       "  create           take a snapshot (the default command)\n"
	       "  list             list the snapshots\n"
	       "  show SNAP        counts and errors of a snapshot\n"
	       "  forget           forget snapshots by a --keep-* policy\n"
	       "  prune            free the space of forgotten data\n"
	       "  check            check the repository ([--read-data])\n"
	       "  rebuild-catalog  restore the catalog from its copy in the "
	       "repository\n"
	       "  dump SNAP        print every item of a snapshot as JSON "
	       "lines\n"
	       "  cat SNAP PATH    write a file or message to stdout\n"
	       "\n"
	       "The key of an encrypted repository comes from --key-file or "
	       "the systemd\ncredential 'm365fs-key' "
	       "($CREDENTIALS_DIRECTORY/m365fs-key).\n"
	       "\n"
	       "exit status: 0 complete, 3 partial (the snapshot committed "
	       "with per-item\nerrors), 1 failed, 2 usage, 4 repository "
	       "locked by another writer\n"
	       "'m365-snapshot COMMAND --help' shows the options of a "
	       "command.\n");
}

int cmd_restore_queue(int argc, char **argv); /* restore_queue.c */

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "init", cmd_init },
		{ "create", cmd_create },
		{ "list", cmd_list },
		{ "show", cmd_show },
		{ "forget", cmd_forget },
		{ "prune", cmd_prune },
		{ "check", cmd_check },
		{ "rebuild-catalog", cmd_rebuild },
		{ "dump", cmd_dump },
		{ "cat", cmd_cat },
		{ "restore-queue", cmd_restore_queue },
	};
	size_t i;

	/* Downloads allocate and free multi-MiB chunk buffers on several
	 * threads: a fixed mmap threshold returns them to the system at once
	 * (glibc's adaptive one would park them in per-thread arenas), so
	 * the peak memory does not creep up with the amount backed up. */
	mallopt(M_MMAP_THRESHOLD, 512 * 1024);
	mallopt(M_ARENA_MAX, 4);
	cli_init("m365-snapshot");
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
			 !strcmp(argv[1], "help"))) {
		main_help();
		return CLI_EXIT_OK;
	}
	if (argc > 1 && argv[1][0] != '-') {
		for (i = 0; i < ARRAY_SIZE(cmds); i++)
			if (!strcmp(argv[1], cmds[i].name))
				return cmds[i].fn(argc - 1, argv + 1);
		return cli_usage(NULL, "unknown command '%s'", argv[1]);
	}
	return cmd_create(argc, argv);
}
