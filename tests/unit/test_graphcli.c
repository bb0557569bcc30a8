/*
 * test_graphcli - a driver for the http and graph modules, run by
 * tests/integration/test_http*.py and test_graph*.py against the emulator.
 * Without arguments it exits 77 (make check-unit does not run it).
 *
 *   test_graphcli [options] COMMAND ARGS...
 *   options: --ca FILE  --token TOK  --base URL (graph base, no /v1.0)
 *            --max-inflight N  --retries N  --backoff MS  --http1
 *            --timeout MS  --deadline MS (overall, from now)
 *   http commands (print one JSON object per request on stdout):
 *     get URL [range A-B] [follow] [sink] [threads N] [count N]
 *         [delay MS] (thread i starts i * MS later) [roff N] [rlen N]
 *     put URL SIZE            (streamed source of SIZE bytes 'x')
 *   graph commands:
 *     users | groups | sites | drives-site ID | drives-user ID
 *     children DRIVE ITEM | delta DRIVE [LINK] | item DRIVE ITEM
 *     children-ahead DRIVE ITEM TOP [N] (reading ahead; N: read N items
 *         and stop)
 *     download DRIVE ITEM [URL] [OFF LEN] | folders USER [PARENT]
 *     mdelta USER FOLDER [LINK] | mime USER MSG | qxh FILE
 *     call METHOD PATH [BODY] | batch PATH...
 *     upload DRIVE PARENT NAME FILE [FRAGMENT]
 *   Each prints JSON on stdout; the last line is {"rc": N, "stats": {...}}.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "graph/graph.h"
#include "http/http.h"
#include "util/log.h"
#include "util/util.h"

static struct http *H;
static struct graph *G;
static const char *TOKEN;
static const char *STALE; /* handed out until invalidated (--stale) */
static int INVALIDATED;

struct hash_sink {
	EVP_MD_CTX *md;
	struct graph_qxh q;
	uint64_t n;
	unsigned resets;
	unsigned writes;
	unsigned slow_ms; /* sleep per write: a slow consumer */
	uint64_t fail_after; /* fail with -ENOSPC past this many bytes */
};

static int hs_write(void *ctx, const void *p, size_t n)
{
	struct hash_sink *s = ctx;

	if (s->slow_ms)
		usleep(s->slow_ms * 1000);
	s->writes++;
	if (s->fail_after && s->n + n > s->fail_after)
		return -ENOSPC;
	EVP_DigestUpdate(s->md, p, n);
	graph_qxh_update(&s->q, p, n);
	s->n += n;
	return 0;
}

static int hs_reset(void *ctx)
{
	struct hash_sink *s = ctx;

	EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
	graph_qxh_init(&s->q);
	s->n = 0;
	s->resets++;
	return 0;
}

static void hs_init(struct hash_sink *s)
{
	memset(s, 0, sizeof(*s));
	s->md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(s->md, EVP_sha256(), NULL);
	graph_qxh_init(&s->q);
}

static void hs_done(struct hash_sink *s, char hex[65], char qx[29])
{
	unsigned char d[32];
	unsigned int dl = 32;

	EVP_DigestFinal_ex(s->md, d, &dl);
	EVP_MD_CTX_free(s->md);
	util_hex(hex, d, 32, false);
	graph_qxh_final(&s->q, qx);
}

static void print_stats(int rc)
{
	struct http_stats st;

	http_stats_get(H, &st);
	printf("{\"rc\": %d, \"stats\": {\"requests\": %" PRIu64
	       ", \"retries\": %" PRIu64 ", \"throttled\": %" PRIu64
	       ", \"failures\": %" PRIu64 ", \"redirects\": %" PRIu64
	       ", \"bytes_in\": %" PRIu64 ", \"bytes_out\": %" PRIu64
	       ", \"h2\": %" PRIu64 ", \"waited_ms\": %" PRId64
	       ", \"inflight_max\": %u, \"connects\": %" PRIu64
	       ", \"short_bodies\": %" PRIu64 "}}\n",
	       rc, st.requests, st.retries, st.throttled, st.failures,
	       st.redirects, st.bytes_in, st.bytes_out, st.h2, st.waited_ms,
	       st.inflight_max, st.connects, st.short_bodies);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* ---- http commands ------------------------------------------------------ */

struct get_args {
	const char *url;
	const char *range;
	bool follow, sink;
	unsigned slow_ms;
	uint64_t fail_after;
	int count;
	int delay_ms;
	uint64_t roff, rlen;
	size_t cap;
	pthread_mutex_t *out_lock;
	int rc;
};

static void *get_thread(void *arg)
{
	struct get_args *a = arg;
	char hdr[96];
	const char *headers[2] = { NULL, NULL };
	struct http_request req = { 0 };
	struct http_response resp;
	struct hash_sink hs;
	struct http_sink sink = { hs_write, hs_reset, &hs };

	http_response_init(&resp);
	if (a->delay_ms)
		usleep((useconds_t)a->delay_ms * 1000);
	if (a->range) {
		snprintf(hdr, sizeof(hdr), "Range: bytes=%s", a->range);
		headers[0] = hdr;
	}
	req.url = a->url;
	req.bearer = TOKEN;
	req.headers = headers;
	req.flags = a->follow ? HTTP_F_FOLLOW : 0;
	req.range_off = a->roff;
	req.body_cap = a->cap;
	req.range_len = a->rlen;
	for (int i = 0; i < a->count; i++) {
		char hex[65] = "", qx[29] = "";
		int64_t t0 = util_mono_ms(), t1;
		int rc;

		hs_init(&hs);
		hs.slow_ms = a->slow_ms;
		hs.fail_after = a->fail_after;
		req.sink = a->sink ? &sink : NULL;
		rc = http_do(H, &req, &resp);
		t1 = util_mono_ms();
		if (!a->sink)
			hs_write(&hs, resp.body.data, resp.body.len);
		hs_done(&hs, hex, qx);
		if (rc < 0)
			http_fail(&req, &resp, rc);
		pthread_mutex_lock(a->out_lock);
		printf("{\"rc\": %d, \"status\": %ld, \"http_version\": %d, "
		       "\"attempts\": %u, \"waited_ms\": %" PRId64
		       ", \"elapsed_ms\": %" PRId64 ", \"bytes\": %" PRIu64
		       ", \"sha256\": \"%s\", \"quickxor\": \"%s\", "
		       "\"resets\": %u, \"writes\": %u, "
		       "\"client_request_id\": \"%s\", \"url\": ",
		       rc, resp.status, resp.http_version, resp.attempts,
		       resp.waited_ms, t1 - t0, resp.body_bytes, hex, qx,
		       hs.resets, hs.writes, resp.client_request_id);
		json_str(resp.url);
		printf(", \"content_range\": ");
		json_str(http_response_header(&resp, "content-range"));
		printf("}\n");
		fflush(stdout);
		pthread_mutex_unlock(a->out_lock);
		if (rc < 0)
			a->rc = rc;
	}
	http_response_release(&resp);
	return NULL;
}

static int cmd_get(int argc, char **argv)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct get_args a = { 0 };
	pthread_t th[64];
	int threads = 1;
	int rc = 0;

	if (argc < 2)
		return -EINVAL;
	a.url = argv[1];
	a.count = 1;
	a.out_lock = &lock;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "range") && i + 1 < argc)
			a.range = argv[++i];
		else if (!strcmp(argv[i], "follow"))
			a.follow = true;
		else if (!strcmp(argv[i], "sink"))
			a.sink = true;
		else if (!strcmp(argv[i], "slow") && i + 1 < argc)
			a.slow_ms = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "failafter") && i + 1 < argc)
			a.fail_after = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "cap") && i + 1 < argc)
			a.cap = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "roff") && i + 1 < argc)
			a.roff = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "rlen") && i + 1 < argc)
			a.rlen = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "delay") && i + 1 < argc)
			a.delay_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "count") && i + 1 < argc)
			a.count = atoi(argv[++i]);
		else
			return -EINVAL;
	}
	if (threads < 1 || threads > 64)
		return -EINVAL;
	struct get_args per[64];

	for (int i = 0; i < threads; i++) {
		per[i] = a;
		per[i].delay_ms = a.delay_ms * i;
		pthread_create(&th[i], NULL, get_thread, &per[i]);
	}
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		if (per[i].rc < 0)
			rc = per[i].rc;
	}
	return rc;
}

static ssize_t x_read(void *ctx, void *dst, size_t len, uint64_t off)
{
	(void)ctx;
	(void)off;
	memset(dst, 'x', len);
	return (ssize_t)len;
}

static int cmd_put(int argc, char **argv)
{
	struct http_request req = { 0 };
	struct http_response resp;
	struct http_source src = { x_read, NULL, 0 };
	int rc;

	if (argc < 3)
		return -EINVAL;
	src.len = strtoull(argv[2], NULL, 10);
	http_response_init(&resp);
	req.method = "PUT";
	req.url = argv[1];
	req.source = &src;
	rc = http_do(H, &req, &resp);
	printf("{\"rc\": %d, \"status\": %ld, \"attempts\": %u, \"body\": ", rc,
	       resp.status, resp.attempts);
	json_str(resp.body.data);
	printf("}\n");
	http_response_release(&resp);
	return rc;
}

/* ---- main --------------------------------------------------------------- */

static int tok_get(void *ctx, struct buf *tok)
{
	(void)ctx;
	buf_reset(tok);
	if (STALE && !INVALIDATED)
		return buf_adds(tok, STALE);
	return buf_adds(tok, TOKEN ? TOKEN : "");
}

static void tok_invalidate(void *ctx, const char *tok)
{
	(void)ctx;
	if (STALE && !strcmp(tok, STALE))
		INVALIDATED++;
}

static int graphcli_graph(int argc, char **argv);

int main(int argc, char **argv)
{
	struct http_config cfg = { 0 };
	struct graph_config gcfg = { 0 };
	const char *base = NULL;
	int64_t deadline = 0;
	int i, rc;

	if (argc < 2)
		return 77; /* a driver for the integration tests */
	log_init("test_graphcli", LOG_INFO);
	for (i = 1; i < argc && !strncmp(argv[i], "--", 2); i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

		if (!strcmp(o, "--http1")) {
			cfg.http1_only = true;
			continue;
		}
		if (!strcmp(o, "--debug")) {
			log_set_level(LOG_DEBUG);
			continue;
		}
		i++;
		if (!strcmp(o, "--ca"))
			cfg.ca_file = v;
		else if (!strcmp(o, "--token"))
			TOKEN = v;
		else if (!strcmp(o, "--stale"))
			STALE = v;
		else if (!strcmp(o, "--base"))
			base = v;
		else if (!strcmp(o, "--max-inflight"))
			cfg.max_inflight = (unsigned)atoi(v);
		else if (!strcmp(o, "--retries"))
			cfg.max_retries = (unsigned)atoi(v);
		else if (!strcmp(o, "--backoff"))
			cfg.backoff_ms = (unsigned)atoi(v);
		else if (!strcmp(o, "--timeout"))
			cfg.timeout_ms = (unsigned)atoi(v);
		else if (!strcmp(o, "--low-speed"))
			cfg.low_speed_time_s = (unsigned)atoi(v);
		else if (!strcmp(o, "--mail-page"))
			gcfg.mail_page_size = (unsigned)atoi(v);
		else if (!strcmp(o, "--page"))
			gcfg.page_size = (unsigned)atoi(v);
		else if (!strcmp(o, "--deadline"))
			deadline = atoll(v);
		else {
			fprintf(stderr, "unknown option '%s'\n", o);
			return 2;
		}
	}
	if (i >= argc)
		return 2;
	rc = http_new(&cfg, &H);
	if (rc < 0) {
		fprintf(stderr, "http_new: %s\n", strerror(-rc));
		return 1;
	}
	if (deadline)
		http_deadline_set(H, util_mono_ms() + deadline);
	gcfg.base_url = base;
	gcfg.token.get = tok_get;
	gcfg.token.invalidate = tok_invalidate;
	if (base) {
		rc = graph_new(H, &gcfg, &G);
		if (rc < 0) {
			fprintf(stderr, "graph_new: %s\n", strerror(-rc));
			http_free(H);
			return 1;
		}
	}
	if (!strcmp(argv[i], "get"))
		rc = cmd_get(argc - i, argv + i);
	else if (!strcmp(argv[i], "put"))
		rc = cmd_put(argc - i, argv + i);
	else
		rc = graphcli_graph(argc - i, argv + i);
	print_stats(rc);
	graph_free(G);
	http_free(H);
	return rc < 0 ? 1 : 0;
}

/* ---- graph commands ------------------------------------------------------ */

static void kv_str(const char *k, const char *v, bool comma)
{
	printf("\"%s\": ", k);
	if (v)
		json_str(v);
	else
		printf("null");
	if (comma)
		printf(", ");
}

static void print_item(const struct graph_item *it)
{
	printf("{\"type\": \"item\", ");
	kv_str("id", it->id, true);
	kv_str("name", it->name, true);
	kv_str("parent_id", it->parent_id, true);
	kv_str("parent_path", it->parent_path, true);
	kv_str("quickxor", it->quickxor, true);
	kv_str("download_url", it->download_url, true);
	kv_str("ctag", it->ctag, true);
	printf("\"kind\": %d, \"root\": %s, \"deleted\": %s, \"size\": %" PRId64
	       ", \"child_count\": %" PRId64 ", \"modified\": %" PRId64 "}\n",
	       it->kind, it->is_root ? "true" : "false",
	       it->deleted ? "true" : "false", it->size, it->child_count,
	       it->modified);
}

static void print_user(const struct graph_user *u)
{
	printf("{\"type\": \"user\", ");
	kv_str("id", u->id, true);
	kv_str("upn", u->upn, true);
	kv_str("mail", u->mail, true);
	kv_str("display_name", u->display_name, false);
	printf("}\n");
}

static void print_group(const struct graph_group *gr)
{
	printf("{\"type\": \"group\", ");
	kv_str("id", gr->id, true);
	kv_str("display_name", gr->display_name, true);
	printf("\"unified\": %s}\n", gr->unified ? "true" : "false");
}

static void print_site(const struct graph_site *st)
{
	printf("{\"type\": \"site\", ");
	kv_str("id", st->id, true);
	kv_str("name", st->name, true);
	kv_str("web_url", st->web_url, true);
	kv_str("hostname", st->hostname, true);
	printf("\"root\": %s, \"personal\": %s}\n",
	       st->is_root ? "true" : "false", st->personal ? "true" : "false");
}

static void print_drive(const struct graph_drive *d)
{
	printf("{\"type\": \"drive\", ");
	kv_str("id", d->id, true);
	kv_str("name", d->name, true);
	kv_str("drive_type", d->drive_type, false);
	printf("}\n");
}

static void print_folder(const struct graph_mail_folder *f)
{
	printf("{\"type\": \"mail_folder\", ");
	kv_str("id", f->id, true);
	kv_str("display_name", f->display_name, true);
	kv_str("parent_id", f->parent_id, true);
	printf("\"child_count\": %" PRId64 ", \"total\": %" PRId64
	       ", \"hidden\": %s}\n",
	       f->child_count, f->total_count, f->hidden ? "true" : "false");
}

static void print_message(const struct graph_message *m)
{
	printf("{\"type\": \"message\", ");
	kv_str("id", m->id, true);
	kv_str("subject", m->subject, true);
	kv_str("from", m->from.email, true);
	kv_str("internet_message_id", m->internet_message_id, true);
	kv_str("parent_folder_id", m->parent_folder_id, true);
	printf("\"removed\": %s, \"is_read\": %s, \"is_draft\": %s, "
	       "\"received\": %" PRId64 "}\n",
	       m->removed ? "true" : "false", m->is_read ? "true" : "false",
	       m->is_draft ? "true" : "false", m->received);
}

static void print_error(int rc)
{
	const struct graph_error *e = graph_last_error();

	printf("{\"type\": \"error\", \"rc\": %d, \"status\": %ld, ", rc,
	       e->status);
	kv_str("code", e->code, true);
	kv_str("inner_code", e->inner_code, true);
	kv_str("request_id", e->request_id, true);
	kv_str("message", e->message, false);
	printf("}\n");
}

/* Drain a pager, printing each item; then its links. */
static int drain(struct graph_pager *p, const char *kind)
{
	int rc = 1, n = 0;

	while (rc == 1) {
		if (!strcmp(kind, "item")) {
			struct graph_item it = { 0 };

			rc = graph_pager_next_item(p, &it);
			if (rc == 1)
				print_item(&it);
			graph_item_release(&it);
		} else if (!strcmp(kind, "user")) {
			struct graph_user u = { 0 };

			rc = graph_pager_next_user(p, &u);
			if (rc == 1)
				print_user(&u);
			graph_user_release(&u);
		} else if (!strcmp(kind, "group")) {
			struct graph_group gr = { 0 };

			rc = graph_pager_next_group(p, &gr);
			if (rc == 1)
				print_group(&gr);
			graph_group_release(&gr);
		} else if (!strcmp(kind, "site")) {
			struct graph_site st = { 0 };

			rc = graph_pager_next_site(p, &st);
			if (rc == 1)
				print_site(&st);
			graph_site_release(&st);
		} else if (!strcmp(kind, "drive")) {
			struct graph_drive d = { 0 };

			rc = graph_pager_next_drive(p, &d);
			if (rc == 1)
				print_drive(&d);
			graph_drive_release(&d);
		} else if (!strcmp(kind, "folder")) {
			struct graph_mail_folder f = { 0 };

			rc = graph_pager_next_mail_folder(p, &f);
			if (rc == 1)
				print_folder(&f);
			graph_mail_folder_release(&f);
		} else {
			struct graph_message m = { 0 };

			rc = graph_pager_next_message(p, &m);
			if (rc == 1)
				print_message(&m);
			graph_message_release(&m);
		}
		n += rc == 1;
	}
	printf("{\"type\": \"end\", \"count\": %d, \"pages\": %u, ", n,
	       graph_pager_pages(p));
	kv_str("delta_link", graph_pager_delta_link(p), false);
	printf("}\n");
	return rc;
}

/* Read @n items of @p, printing them, and leave the rest unread. */
static int read_some(struct graph_pager *p, int n)
{
	struct graph_item it = { 0 };
	int rc = 1;

	for (int i = 0; i < n && rc == 1; i++) {
		rc = graph_pager_next_item(p, &it);
		if (rc == 1)
			print_item(&it);
		graph_item_release(&it);
	}
	printf("{\"type\": \"end\", \"pages\": %u}\n", graph_pager_pages(p));
	return rc < 0 ? rc : 0;
}

/* @pp, not the pager: the open call in the same argument list sets it. */
static int open_drain(int rc, struct graph_pager **pp, const char *kind)
{
	if (rc == 0)
		rc = drain(*pp, kind);
	graph_pager_free(*pp);
	*pp = NULL;
	return rc;
}

static enum graph_owner owner_of(const char *s)
{
	if (!strcmp(s, "user"))
		return GRAPH_OWNER_USER;
	if (!strcmp(s, "group"))
		return GRAPH_OWNER_GROUP;
	return GRAPH_OWNER_SITE;
}

static enum graph_conflict conflict_of(const char *s)
{
	if (s && !strcmp(s, "replace"))
		return GRAPH_CONFLICT_REPLACE;
	if (s && !strcmp(s, "rename"))
		return GRAPH_CONFLICT_RENAME;
	return GRAPH_CONFLICT_FAIL;
}

static const char *opt(int argc, char **argv, int i)
{
	return i < argc && strcmp(argv[i], "-") ? argv[i] : NULL;
}

static int cmd_download(int argc, char **argv, bool mime)
{
	struct hash_sink hs;
	struct http_sink sink = { hs_write, hs_reset, &hs };
	uint64_t got = 0, off = 0, len = 0;
	char hex[65], qx[29];
	int rc;

	hs_init(&hs);
	if (mime) {
		rc = graph_message_mime(G, argv[1], argv[2], &sink, &got);
	} else {
		if (argc > 5) {
			off = strtoull(argv[4], NULL, 10);
			len = strtoull(argv[5], NULL, 10);
		}
		rc = graph_item_download(G, argv[1], argv[2],
					 opt(argc, argv, 3), off, len, &sink,
					 &got);
	}
	hs_done(&hs, hex, qx);
	printf("{\"type\": \"download\", \"rc\": %d, \"bytes\": %" PRIu64
	       ", \"got\": %" PRIu64
	       ", \"sha256\": \"%s\", \"quickxor\": \"%s\", \"resets\": %u}\n",
	       rc, hs.n, got, hex, qx, hs.resets);
	return rc;
}

static int file_source(const char *path, int *fd, struct http_source *src,
		       struct http_fd_source *fs)
{
	struct stat st;

	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0 || fstat(*fd, &st) < 0)
		return -errno;
	http_source_fd(src, fs, *fd, 0, (uint64_t)st.st_size);
	return 0;
}

static int cmd_upload(int argc, char **argv)
{
	struct graph_upload u = { 0 };
	struct graph_item it = { 0 };
	struct http_source src;
	struct http_fd_source fs;
	uint64_t frag = argc > 5 ? strtoull(argv[5], NULL, 10) : 327680;
	int stop_after = argc > 6 ? atoi(argv[6]) : -1, parts = 0;
	bool cancel = argc > 7 && !strcmp(argv[7], "cancel");
	bool replay = argc > 7 && !strcmp(argv[7], "replay");
	int fd = -1, rc;

	rc = file_source(argv[4], &fd, &src, &fs);
	if (rc < 0)
		goto out;
	rc = graph_upload_create(G, argv[1], argv[2], argv[3],
				 GRAPH_CONFLICT_RENAME, src.len, 0, 0, &u);
	if (rc < 0)
		goto out;
	while (!u.done && rc == 0) {
		uint64_t n = u.size - u.next < frag ? u.size - u.next : frag;

		if (parts == stop_after && cancel) {
			rc = graph_upload_cancel(G, &u);
			printf("{\"type\": \"cancel\", \"rc\": %d}\n", rc);
			if (rc == 0)
				rc = graph_upload_status(G, &u);
			break;
		}
		if (parts == stop_after && replay) {
			/* send the previous fragment again: the server says
			 * 416, graph asks where to go on */
			u.next -= frag;
			stop_after = -1;
			rc = graph_upload_put(G, &u, &src, frag, &it);
			printf("{\"type\": \"replay\", \"rc\": %d, "
			       "\"next\": %" PRIu64 "}\n",
			       rc, u.next);
			continue;
		}
		if (parts == stop_after) {
			/* resume as after a crash: ask the server */
			u.next = 0;
			rc = graph_upload_status(G, &u);
			printf("{\"type\": \"resume\", \"next\": %" PRIu64
			       "}\n",
			       u.next);
			stop_after = -1;
			continue;
		}
		rc = graph_upload_put(G, &u, &src, n, &it);
		parts++;
	}
	printf("{\"type\": \"upload\", \"rc\": %d, \"parts\": %d, \"done\": "
	       "%s}\n",
	       rc, parts, u.done ? "true" : "false");
	if (rc == 0 && it.id)
		print_item(&it);
out:
	if (fd >= 0)
		close(fd);
	graph_item_release(&it);
	graph_upload_release(&u);
	return rc;
}

static int cmd_batch(int argc, char **argv)
{
	struct graph_batch_item items[GRAPH_BATCH_MAX] = { 0 };
	size_t n = 0;
	int rc;

	for (int i = 1; i < argc && n < GRAPH_BATCH_MAX; i++)
		items[n++].url = argv[i];
	rc = graph_batch(G, items, n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char *b = items[i].response
				  ? cJSON_PrintUnformatted(items[i].response)
				  : NULL;

		printf("{\"type\": \"batch\", \"status\": %ld, ",
		       items[i].status);
		kv_str("location", items[i].location, true);
		kv_str("body", b, false);
		printf("}\n");
		free(b);
	}
	graph_batch_release(items, n);
	return rc;
}

static int read_text(const char *path, struct buf *b)
{
	return util_read_file(path, b, 64 << 20);
}

static int graphcli_graph(int argc, char **argv)
{
	struct graph_pager *p = NULL;
	const char *c = argv[0];
	int rc = -EINVAL;

	if (!G)
		return -EINVAL; /* --base is needed */
	if (!strcmp(c, "org")) {
		struct graph_org o = { 0 };

		rc = graph_org_get(G, &o);
		if (rc == 0) {
			printf("{\"type\": \"org\", ");
			kv_str("id", o.id, true);
			kv_str("default_domain", o.default_domain, false);
			printf("}\n");
		}
		graph_org_release(&o);
	} else if (!strcmp(c, "users")) {
		rc = open_drain(graph_users_open(G, opt(argc, argv, 1), &p), &p,
				"user");
	} else if (!strcmp(c, "user") && argc > 1) {
		struct graph_user u = { 0 };

		rc = graph_user_get(G, argv[1], &u);
		if (rc == 0)
			print_user(&u);
		graph_user_release(&u);
	} else if (!strcmp(c, "groups")) {
		rc = open_drain(graph_groups_open(G, &p), &p, "group");
	} else if (!strcmp(c, "sites")) {
		rc = open_drain(graph_sites_all_open(G, &p), &p, "site");
	} else if (!strcmp(c, "search") && argc > 1) {
		rc = open_drain(graph_sites_search_open(G, argv[1], &p), &p,
				"site");
	} else if (!strcmp(c, "subsites") && argc > 1) {
		rc = open_drain(graph_subsites_open(G, argv[1], &p), &p,
				"site");
	} else if ((!strcmp(c, "site") && argc > 1) ||
		   (!strcmp(c, "site-path") && argc > 2)) {
		struct graph_site st = { 0 };

		rc = argc > 2 ? graph_site_get_by_path(G, argv[1], argv[2], &st)
			      : graph_site_get(G, argv[1], &st);
		if (rc == 0)
			print_site(&st);
		graph_site_release(&st);
	} else if (!strcmp(c, "drives") && argc > 2) {
		rc = open_drain(
			graph_drives_open(G, owner_of(argv[1]), argv[2], &p),
			&p, "drive");
	} else if ((!strcmp(c, "drive-default") && argc > 2) ||
		   (!strcmp(c, "drive") && argc > 1)) {
		struct graph_drive d = { 0 };

		rc = argc > 2 ? graph_drive_get_default(G, owner_of(argv[1]),
							argv[2], &d)
			      : graph_drive_get(G, argv[1], &d);
		if (rc == 0)
			print_drive(&d);
		graph_drive_release(&d);
	} else if ((!strcmp(c, "item") || !strcmp(c, "item-path")) &&
		   argc > 2) {
		struct graph_item it = { 0 };

		rc = !strcmp(c, "item")
			     ? graph_item_get(G, argv[1], argv[2], &it)
			     : graph_item_get_by_path(G, argv[1], argv[2], &it);
		if (rc == 0)
			print_item(&it);
		graph_item_release(&it);
	} else if (!strcmp(c, "children") && argc > 2) {
		rc = open_drain(graph_children_open(G, argv[1], argv[2], &p),
				&p, "item");
	} else if (!strcmp(c, "children-ahead") && argc > 3) {
		rc = graph_children_open_ahead(G, argv[1], argv[2],
					       (unsigned)atoi(argv[3]), &p);
		if (rc == 0 && argc > 4)
			rc = read_some(p, atoi(argv[4]));
		else if (rc == 0)
			rc = drain(p, "item");
		graph_pager_free(p);
		p = NULL;
	} else if (!strcmp(c, "delta") && argc > 1) {
		rc = open_drain(graph_drive_delta_open(G, argv[1],
						       opt(argc, argv, 2), &p),
				&p, "item");
	} else if (!strcmp(c, "download") && argc > 2) {
		rc = cmd_download(argc, argv, false);
	} else if (!strcmp(c, "mime") && argc > 2) {
		rc = cmd_download(argc, argv, true);
	} else if (!strcmp(c, "folders") && argc > 1) {
		rc = open_drain(graph_mail_folders_open(
					G, argv[1], opt(argc, argv, 2),
					argc > 3 && !strcmp(argv[3], "hidden"),
					&p),
				&p, "folder");
	} else if (!strcmp(c, "mfolder") && argc > 2) {
		struct graph_mail_folder f = { 0 };

		rc = graph_mail_folder_get(G, argv[1], argv[2], &f);
		if (rc == 0)
			print_folder(&f);
		graph_mail_folder_release(&f);
	} else if (!strcmp(c, "mdelta") && argc > 2) {
		rc = open_drain(
			graph_message_delta_open(G, argv[1], argv[2], NULL,
						 opt(argc, argv, 3), &p),
			&p, "message");
	} else if (!strcmp(c, "mkdir") && argc > 3) {
		struct graph_item it = { 0 };

		rc = graph_folder_create(G, argv[1], argv[2], argv[3],
					 conflict_of(opt(argc, argv, 4)), &it);
		if (rc == 0)
			print_item(&it);
		graph_item_release(&it);
	} else if (!strcmp(c, "put-small") && argc > 4) {
		struct graph_item it = { 0 };
		struct http_source src;
		struct http_fd_source fs;
		int fd = -1;

		rc = file_source(argv[4], &fd, &src, &fs);
		if (rc == 0)
			rc = graph_upload_small(G, argv[1], argv[2], argv[3],
						conflict_of(opt(argc, argv, 5)),
						&src, &it);
		if (rc == 0)
			print_item(&it);
		if (fd >= 0)
			close(fd);
		graph_item_release(&it);
	} else if (!strcmp(c, "upload") && argc > 4) {
		rc = cmd_upload(argc, argv);
	} else if (!strcmp(c, "mail-mkdir") && argc > 3) {
		struct graph_mail_folder f = { 0 };

		rc = graph_mail_folder_create(G, argv[1], opt(argc, argv, 2),
					      argv[3], &f);
		if (rc == 0)
			print_folder(&f);
		graph_mail_folder_release(&f);
	} else if ((!strcmp(c, "msg-json") && argc > 3) ||
		   (!strcmp(c, "msg-mime") && argc > 2)) {
		struct graph_message m = { 0 };
		struct buf b = BUF_INIT;
		bool js = !strcmp(c, "msg-json");

		rc = read_text(argv[js ? 3 : 2], &b);
		if (rc == 0)
			rc = js ? graph_message_create_json(G, argv[1], argv[2],
							    b.data, &m)
				: graph_message_create_mime(G, argv[1], b.data,
							    b.len, &m);
		if (rc == 0)
			print_message(&m);
		buf_release(&b);
		graph_message_release(&m);
	} else if (!strcmp(c, "msg-move") && argc > 3) {
		struct graph_message m = { 0 };

		rc = graph_message_move(G, argv[1], argv[2], argv[3], &m);
		if (rc == 0)
			print_message(&m);
		graph_message_release(&m);
	} else if (!strcmp(c, "call") && argc > 2) {
		cJSON *j = NULL;

		rc = graph_call(G, argv[1], argv[2], opt(argc, argv, 3), NULL,
				&j);
		if (rc == 0) {
			char *t = j ? cJSON_PrintUnformatted(j) : NULL;

			printf("{\"type\": \"json\", \"body\": %s}\n",
			       t ? t : "null");
			free(t);
		}
		cJSON_Delete(j);
	} else if (!strcmp(c, "batch") && argc > 1) {
		rc = cmd_batch(argc, argv);
	} else if (!strcmp(c, "qxh") && argc > 1) {
		struct buf b = BUF_INIT;
		char qx[29];

		rc = read_text(argv[1], &b);
		if (rc == 0) {
			struct graph_qxh q;

			graph_qxh_init(&q);
			graph_qxh_update(&q, b.data, b.len);
			graph_qxh_final(&q, qx);
			printf("{\"type\": \"qxh\", \"quickxor\": \"%s\"}\n",
			       qx);
		}
		buf_release(&b);
	}
	if (rc < 0)
		print_error(rc);
	return rc;
}
