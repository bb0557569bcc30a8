/*
 * m365fs - mount the snapshots of an m365fs repository.
 *
 *   m365fs [options] REPO MOUNTPOINT
 *   m365fs [options] -o repo=REPO MOUNTPOINT     (fstab, systemd mount)
 *
 * The repository and its catalog are opened (and the key checked) before
 * mounting, so a wrong path or key is reported with exit status 1 before
 * anything is mounted.  They are closed again and reopened after the fork
 * into the background: SQLite connections must not cross a fork.
 */
#include "fs.h"
#include "live.h" /* live/: hooks marked "live" */
#include "restore.h" /* restore/: hooks marked "restore" */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "util/log.h"
#include "util/util.h"

#define PROG		  "m365fs"
#define DEFAULT_CRED_NAME "m365fs-key"

static void say(const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void say(const char *prefix, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	buf_adds(&b, prefix);
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	buf_addch(&b, '\n');
	util_write_all(2, b.data, b.len);
	buf_release(&b);
}
#define error(...) say(PROG ": error: ", __VA_ARGS__)
#define hint(...)  say("hint: ", __VA_ARGS__)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [options] REPO MOUNTPOINT\n"
		"       " PROG " [options] -o repo=REPO MOUNTPOINT\n"
		"\n"
		"Mount every snapshot of the m365fs repository REPO, read-only, at\n"
		"MOUNTPOINT/snapshots/<time>/ (see m365fs(1)).\n"
		"\n"
		"m365fs options:\n"
		"    -o repo=REPO           the repository (instead of the first argument)\n"
		"    -o key_file=FILE       key of an encrypted repository (a 0600 file)\n"
		"    -o key_credential=NAME systemd credential holding the key\n"
		"                           (default: " DEFAULT_CRED_NAME
		" when $CREDENTIALS_DIRECTORY is set)\n"
		"    -o cache_size=MIB      decompressed-chunk cache (default %u)\n"
		"    -o dir_cache=MIB       directory listing cache (default %u)\n"
		"    -o timeout=SECONDS     kernel cache timeout in snapshots (default %.0f)\n"
		"    -o readahead=KIB       kernel readahead, needs root (default %u)\n"
		"    -o spin=USEC           after a lookup, a worker waits for the next\n"
		"                           request this long without sleeping\n"
		"                           (default %u; 0: libfuse's loop)\n"
		"    -o list_ahead=N        list a folder once lookups found 1/N of\n"
		"                           its entries (default %u; 0: never)\n"
		"    -o connection=NAME     enable live/ and restore/ through connection NAME\n"
		"    -o conflict=POLICY     restore/ name clashes: rename (default),\n"
		"                           replace or skip\n"
		"    -o restore_threads=N   parallel uploads (default 4)\n"
		"    -o live_ttl=SECONDS    live/: listings and attributes kept (default 30)\n"
		"    -o live_cache=MIB      live/: file block cache in REPO/cache/live\n"
		"                           (default 1024)\n"
		"    -f                     stay in the foreground, log to stderr\n"
		"    -o debug, -d           debug log (implies -f)\n"
		"    -s                     single-threaded\n"
		"    -h, --help             this help\n"
		"    -V, --version          versions\n"
		"\n"
		"FUSE options:\n",
		FS_DEFAULT_CACHE_MB, FS_DEFAULT_DIR_CACHE_MB,
		FS_DEFAULT_TIMEOUT, FS_DEFAULT_READAHEAD_KB, FS_DEFAULT_SPIN_US,
		FS_DEFAULT_LIST_AHEAD);
}

#define FS_OPT(t, p)                                                           \
	{                                                                      \
		t, offsetof(struct fs_opts, p), 1                              \
	}
static const struct fuse_opt opt_spec[] = {
	FS_OPT("repo=%s", repo),
	FS_OPT("key_file=%s", key_file),
	FS_OPT("key_credential=%s", key_credential),
	FS_OPT("cache_size=%u", cache_mb),
	FS_OPT("dir_cache=%u", dir_cache_mb),
	FS_OPT("timeout=%lf", timeout),
	FS_OPT("readahead=%u", readahead_kb),
	FS_OPT("spin=%u", spin_us),
	FS_OPT("list_ahead=%u", list_ahead),
	FUSE_OPT_END,
};

/* Arguments that are not options: REPO and MOUNTPOINT. */
static struct nonopts {
	char *arg[2];
	int n;
	int extra;
} nonopts;

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct nonopts *no = &nonopts;

	(void)data;
	(void)outargs;
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1; /* keep: for libfuse */
	if (no->n == 2) {
		no->extra++;
		return 0;
	}
	no->arg[no->n++] = strdup(arg);
	return 0;
}

/* Load the key as the options say into @key; *@have false: none given. */
static int load_key(struct fs_opts *o, unsigned char key[STORE_KEY_LEN],
		    bool *have)
{
	struct buf why = BUF_INIT;
	const char *cred = o->key_credential;
	int rc = 0;

	*have = false;
	if (o->key_file) {
		rc = store_key_load_file(o->key_file, key, &why);
		if (rc < 0) {
			error("cannot read key file '%s': %s", o->key_file,
			      why.len ? why.data : strerror(-rc));
			goto out;
		}
		*have = true;
		goto out;
	}
	if (!cred && getenv("CREDENTIALS_DIRECTORY"))
		cred = DEFAULT_CRED_NAME;
	if (!cred)
		goto out;
	rc = store_key_load_credential(cred, key, &why);
	if (rc == -ENOENT && !o->key_credential) {
		rc = 0; /* the default credential is optional */
		goto out;
	}
	if (rc < 0) {
		error("cannot read credential '%s': %s", cred,
		      why.len ? why.data : strerror(-rc));
		goto out;
	}
	*have = true;
out:
	buf_release(&why);
	return rc;
}

static int open_store(struct fs_opts *o, const unsigned char *key,
		      struct store **st)
{
	struct store_open_opts so = { 0 };
	struct buf why = BUF_INIT;
	int rc;

	so.key = key;
	so.cache_bytes = (size_t)o->cache_mb << 20;
	so.max_fds = 32;
	so.read_hold_ms = FS_HOLD_MS;
	so.command = PROG;
	rc = store_open(o->repo, &so, st, &why);
	switch (rc) {
	case 0:
		break;
	case -ENOENT:
		error("repository '%s' not found%s%s", o->repo,
		      why.len ? ": " : "", why.data);
		hint("check the path, or create a repository with 'm365-snapshot init %s'",
		     o->repo);
		break;
	case -ENOKEY:
		error("repository '%s' is encrypted and no key was given",
		      o->repo);
		hint("give its key with -o key_file=FILE (or the systemd credential '%s')",
		     DEFAULT_CRED_NAME);
		break;
	case -EKEYREJECTED:
		error("the key given does not open repository '%s'", o->repo);
		hint("use the key printed by 'm365-snapshot init' for this repository");
		break;
	case -EPROTO:
		error("'%s' is not an m365fs repository this version can read%s%s",
		      o->repo, why.len ? ": " : "", why.data);
		break;
	default:
		error("cannot open repository '%s': %s", o->repo,
		      why.len ? why.data : strerror(-rc));
		break;
	}
	buf_release(&why);
	return rc;
}

/* The catalog is optional (no snapshot yet); a damaged one is an error. */
static int check_catalog(struct fs_opts *o)
{
	struct cat *c = NULL;
	char path[PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", o->repo, CAT_FILE);
	rc = cat_open(path, CAT_OPEN_READ, &c);
	cat_close(c);
	if (rc == 0 || rc == -ENOENT)
		return 0;
	if (rc == -EPROTO) {
		error("catalog '%s' has a newer format than this m365fs reads",
		      path);
		hint("install the m365fs version that wrote it");
	} else {
		error("cannot open catalog '%s': %s", path, strerror(-rc));
		if (rc == -EBADMSG)
			hint("rebuild it with 'm365-snapshot rebuild-catalog --repo %s'",
			     o->repo);
	}
	return rc;
}

static int check_mountpoint(const char *mnt)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int rc = 0;

	if (stat(mnt, &st) < 0) {
		error("mountpoint '%s': %s", mnt, strerror(errno));
		if (errno == ENOENT)
			hint("create it with 'mkdir -p %s'", mnt);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		error("mountpoint '%s' is not a directory", mnt);
		return -1;
	}
	d = opendir(mnt);
	if (!d) {
		error("mountpoint '%s': %s", mnt, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			error("mountpoint '%s' is not empty", mnt);
			hint("mount on an empty directory");
			rc = -1;
			break;
		}
	closedir(d);
	return rc;
}

/*
 * fuse_daemonize() points stderr at /dev/null.  Under systemd (a mount
 * unit, $JOURNAL_STREAM) keep it: it is the journal.
 */
static int daemonize_keep_stderr(void)
{
	int saved = getenv("JOURNAL_STREAM") ? dup(2) : -1, rc;

	rc = fuse_daemonize(0);
	if (saved >= 0) {
		dup2(saved, 2);
		close(saved);
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts copts = { 0 };
	struct fuse_loop_config *lcfg = NULL;
	struct fuse_session *se = NULL;
	const struct fuse_lowlevel_ops *ops;
	struct nonopts no = { 0 };
	unsigned char key[STORE_KEY_LEN];
	struct fs fs = { 0 };
	struct store *st = NULL;
	char repo_abs[PATH_MAX], fsname[PATH_MAX + 16];
	bool have_key = false, mounted = false, inited = false;
	int ret = 1, rc;

	log_init(PROG, LOG_INFO);
	fs.o.cache_mb = FS_DEFAULT_CACHE_MB;
	fs.o.dir_cache_mb = FS_DEFAULT_DIR_CACHE_MB;
	fs.o.timeout = FS_DEFAULT_TIMEOUT;
	fs.o.readahead_kb = FS_DEFAULT_READAHEAD_KB;
	fs.o.spin_us = FS_DEFAULT_SPIN_US;
	fs.o.list_ahead = FS_DEFAULT_LIST_AHEAD;
	if (fs_restore_opts(&args) < 0) { /* restore */
		ret = 2;
		goto out;
	}
	if (fs_live_opts(&args) < 0) { /* live */
		ret = 2;
		goto out;
	}
	if (fuse_opt_parse(&args, &fs.o, opt_spec, opt_proc) < 0) {
		ret = 2;
		goto out;
	}
	no = nonopts;
	if (no.n == 2) {
		if (fs.o.repo) {
			error("the repository is given twice ('%s' and -o repo=%s)",
			      no.arg[0], fs.o.repo);
			ret = 2;
			goto out;
		}
		fs.o.repo = no.arg[0];
	}
	/* before libfuse, which would say "bad mount point" */
	if (no.n && check_mountpoint(no.arg[no.n - 1]) < 0)
		goto out;
	if (no.n && fuse_opt_add_arg(&args, no.arg[no.n - 1]) < 0)
		goto out;
	if (fuse_parse_cmdline(&args, &copts) != 0) {
		ret = 2;
		goto out;
	}
	if (copts.show_help) {
		usage(stdout);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		ret = 0;
		goto out;
	}
	if (copts.show_version) {
		printf(PROG " (libfuse %s)\n", fuse_pkgversion());
		fuse_lowlevel_version();
		ret = 0;
		goto out;
	}
	if (no.extra || !fs.o.repo || !copts.mountpoint) {
		error(no.extra	   ? "too many arguments"
		      : !fs.o.repo ? "no repository given"
				   : "no mountpoint given");
		hint("see '" PROG " --help'");
		ret = 2;
		goto out;
	}
	if (fs.o.spin_us > FS_MAX_SPIN_US) {
		error("-o spin=%u: a worker would spin up to %u ms after every "
		      "request",
		      fs.o.spin_us, fs.o.spin_us / 1000);
		hint("give at most %u microseconds, or 0 to turn spinning off",
		     FS_MAX_SPIN_US);
		ret = 2;
		goto out;
	}
	if (fs.o.list_ahead > FS_MAX_LIST_AHEAD) {
		error("-o list_ahead=%u: a folder would be listed after 4 "
		      "lookups whatever its size",
		      fs.o.list_ahead);
		hint("give 1 to %u (a folder is listed once lookups found "
		     "1/N of it), or 0 to never list ahead",
		     FS_MAX_LIST_AHEAD);
		ret = 2;
		goto out;
	}
	if (copts.debug) {
		fs.o.debug = 1;
		log_set_level(LOG_DEBUG);
	}
	if (!realpath(fs.o.repo, repo_abs)) {
		error("repository '%s' not found: %s", fs.o.repo,
		      strerror(errno));
		hint("check the path, or create a repository with 'm365-snapshot init %s'",
		     fs.o.repo);
		goto out;
	}
	if (fs.o.repo != no.arg[0])
		free(fs.o.repo); /* from -o repo= */
	fs.o.repo = repo_abs;

	/* everything that can be wrong is reported before mounting */
	if (load_key(&fs.o, key, &have_key) < 0)
		goto out;
	if (open_store(&fs.o, have_key ? key : NULL, &st) < 0)
		goto out;
	store_close(st);
	st = NULL;
	if (check_catalog(&fs.o) < 0 || fs_restore_check() < 0 /* restore */)
		goto out;

	snprintf(fsname, sizeof(fsname), "-ofsname=%s", fs.o.repo);
	/* the kernel checks modes (no ACLs: ops.c fsop_init) */
	if (fuse_opt_add_arg(&args, "-odefault_permissions") < 0)
		goto out;
	if (fuse_opt_add_arg(&args, fs_restore_enabled() /* restore */
					    ? "-osubtype=" PROG
					    : "-oro,subtype=" PROG) < 0 ||
	    fuse_opt_add_arg(&args, fsname) < 0)
		goto out;
	/* restore/ and live/ wrap the snapshot operations */
	ops = fs_restore_ops(fs_live_ops(&fs_ll_ops));
	se = fuse_session_new(&args, ops, sizeof(fs_ll_ops), &fs);
	if (!se) {
		ret = 2; /* libfuse said which option it did not know */
		goto out;
	}
	fs.se = se;
	fs.mountpoint = copts.mountpoint;
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	if (fuse_session_mount(se, copts.mountpoint) != 0) {
		error("cannot mount on '%s'", copts.mountpoint);
		goto out;
	}
	mounted = true;
	if (!copts.foreground && daemonize_keep_stderr() < 0)
		goto out;
	fs_prefetch(fs.o.repo); /* before the databases are opened */

	if (open_store(&fs.o, have_key ? key : NULL, &st) < 0)
		goto out;
	fs.st = st;
	rc = fs_init(&fs);
	inited = true;
	if (rc < 0) {
		error("cannot start: %s", strerror(-rc));
		goto out;
	}
	log_info("mounted repository '%s' on '%s'", fs.o.repo,
		 copts.mountpoint);
	fs_restore_start(&fs); /* restore: failures are logged */
	fs_live_start(&fs, fs_restore_graph()); /* live: the same */

	if (copts.singlethread) {
		rc = fuse_session_loop(se);
	} else if (fs.o.spin_us) {
		rc = fs_loop(se, fs.o.spin_us,
			     copts.max_threads && copts.max_threads != UINT_MAX
				     ? copts.max_threads
				     : FS_DEFAULT_THREADS);
	} else {
		lcfg = fuse_loop_cfg_create();
		if (!lcfg)
			goto out;
		fuse_loop_cfg_set_clone_fd(lcfg, copts.clone_fd);
		if (copts.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(lcfg,
						       copts.max_idle_threads);
		if (copts.max_threads && copts.max_threads != UINT_MAX)
			fuse_loop_cfg_set_max_threads(lcfg, copts.max_threads);
		rc = fuse_session_loop_mt(se, lcfg);
	}
	if (rc > 0) { /* libfuse's loops: the signal that stopped them */
		log_info("stopped by signal %d (%s)", rc, strsignal(rc));
		rc = 0;
	}
	ret = rc == 0 ? 0 : 1;
	if (rc < 0)
		log_err("the FUSE session ended: %s", strerror(-rc));
out:
	explicit_bzero(key, sizeof(key));
	if (inited)
		fs_push_stop(&fs); /* it uses the session */
	if (mounted)
		fuse_session_unmount(se);
	/* uploaders stop while SIGPIPE is still ignored */
	fs_live_stop(); /* live: before the connection goes */
	fs_restore_stop(); /* restore */
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fuse_loop_cfg_destroy(lcfg);
	if (inited)
		fs_release(&fs);
	store_close(st);
	if (fs.o.repo != repo_abs && fs.o.repo != no.arg[0])
		free(fs.o.repo);
	free(fs.o.key_file);
	free(fs.o.key_credential);
	free(copts.mountpoint);
	free(no.arg[0]);
	free(no.arg[1]);
	fuse_opt_free_args(&args);
	return ret;
}
