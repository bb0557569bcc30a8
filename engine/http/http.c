/*
 * http.c - the event loop over libcurl multi.
 *
 * DESIGN: one thread (loop()) owns the CURLM handle and every easy handle.
 * Other threads talk to it only through locks: they append a struct xfer
 * to h->queue under h->lock (http_submit), or set want_unpause/abort_rc in
 * their struct handover under its lock, then curl_multi_wakeup().  Lock
 * order: h->lock before a handover's lock.  Each attempt of a request
 * gets a fresh easy handle (connections and TLS sessions are reused by the
 * multi handle's pool, HTTP/2 streams multiplexed with PIPEWAIT); retries,
 * redirects and Retry-After fences are decided in finish() when an attempt
 * ends, by putting the xfer back on the queue with a start time.
 *
 * Blocking requests (http_do) with a sink hand the body to the calling
 * thread through a bounded buffer (struct handover): the loop copies each
 * block once, pauses the transfer when the buffer is full, and the caller
 * runs the sink outside every lock and asks for an unpause when it drained
 * the buffer.  A paused block is handed to write_cb() again on unpause, so
 * everything write_cb() counts for it (range skip/limit, wire bytes) is
 * undone when it pauses.  finish() checks every 2xx body against its
 * Content-Length / Content-Range span and retries a mismatch like a dropped
 * connection: no caller ever gets a short body as a success.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http.h"
#include "util/log.h"
#include "util/util.h"

#define HANDOVER_CAP (1u << 20) /* pause the transfer beyond this */
#define HANDOVER_MIN (64u << 10) /* first allocation: small files stay small */
#define HEADERS_CAP  (64u << 10)
#define FENCE_MAX    32

struct handover {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *data; /* filled by the loop, drained by the caller */
	size_t len;
	size_t size; /* allocated size of data */
	unsigned gen; /* bumped when a retry restarts the body */
	unsigned seen_gen; /* gen the caller has delivered under */
	bool paused; /* the loop paused the transfer: buffer full */
	bool want_unpause; /* the caller drained the buffer: resume */
	bool done; /* the request is over: rc is final */
	int rc;
	int abort_rc; /* set by the caller: the sink failed */
};

struct xfer {
	struct xfer *next; /* h->queue or h->running list */
	struct http *h;
	const struct http_request *req;
	struct http_response *resp;
	http_done_fn done;
	void *ctx;
	struct handover *ho; /* blocking request with a sink, else NULL */

	CURL *easy;
	struct curl_slist *hdrs;
	char *url; /* current URL (changes with redirects) */
	bool with_auth; /* false after a redirect */
	unsigned redirects;
	unsigned retries;
	int64_t start_at; /* mono ms: do not start before */
	int64_t waited_ms;
	int64_t attempt_bytes; /* body bytes to the sink in this attempt */
	uint64_t wire_bytes; /* body bytes libcurl handed over, this attempt */
	uint64_t sent; /* request body bytes read in this attempt */
	long redirect_status; /* status of the last redirect followed */
	int64_t sink_bytes; /* body bytes delivered to the sink, all attempts */
	bool to_sink; /* current response body goes to the sink */
	uint64_t skip; /* 200 to a range request: bytes to drop */
	uint64_t limit; /* 200 to a range request: bytes to keep */
	bool range_done; /* all of the range arrived; rest dropped */
	bool status_known;
	int err; /* -errno from a callback: no retry */
};

struct fence {
	char origin[256];
	int64_t until;
};

struct http {
	CURLM *multi;
	pthread_t thread;
	pthread_mutex_t lock;
	bool stop;
	struct xfer *queue; /* protected by lock: waiting to start */
	struct xfer *running; /* loop thread only */

	unsigned nrunning; /* loop thread only */
	int64_t deadline; /* protected by lock */
	struct fence fences[FENCE_MAX]; /* loop thread only */
	struct http_stats st; /* protected by lock */
	struct http_config cfg;
	char *ca_file;
	char *user_agent;
};

/* ---- response helpers --------------------------------------------------- */

void http_response_init(struct http_response *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
	buf_init(&r->headers, HEADERS_CAP);
}

void http_response_release(struct http_response *r)
{
	if (!r)
		return;
	buf_release(&r->body);
	buf_release(&r->headers);
	free(r->url);
	http_response_init(r);
}

const char *http_response_header(const struct http_response *r,
				 const char *name)
{
	const char *p = r->headers.data, *end = p + r->headers.len;

	while (p < end) {
		const char *v = p + strlen(p) + 1;

		if (v >= end)
			break;
		if (!strcasecmp(p, name))
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

/* ---- small helpers ------------------------------------------------------ */

static const char *method_of(const struct http_request *req)
{
	return req->method ? req->method : "GET";
}

static bool idempotent(const struct http_request *req)
{
	const char *m = method_of(req);

	if (req->flags & HTTP_F_IDEMPOTENT)
		return true;
	return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") ||
	       !strcmp(m, "DELETE") || !strcmp(m, "OPTIONS");
}

void http_url_path(const char *url, char *out, size_t size)
{
	const char *p = strstr(url ? url : "", "://");
	size_t n;

	p = p ? p + 3 : (url ? url : "");
	p += strcspn(p, "/?#");
	n = strcspn(p, "?#");
	if (n >= size)
		n = size - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	if (!n && size > 1)
		strcpy(out, "/");
}

static int curl_errno(CURLcode c)
{
	switch (c) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return -EPERM;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_WEIRD_SERVER_REPLY:
		return -EPROTO;
	case CURLE_URL_MALFORMAT:
		return -EINVAL;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_FILESIZE_EXCEEDED:
		return -E2BIG;
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_WRITE_ERROR:
	case CURLE_READ_ERROR:
		return -ECANCELED;
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_HTTP2_STREAM:
	default:
		return -ECONNRESET;
	}
}

static bool curl_transient(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_WEIRD_SERVER_REPLY:
		return true;
	default:
		return false;
	}
}

int http_fail(const struct http_request *req, const struct http_response *resp,
	      int rc)
{
	char path[256];

	http_url_path(resp && resp->url ? resp->url : req->url, path,
		      sizeof(path));
	if (rc < 0) {
		log_err("%s %s failed: %s (client-request-id %s, %u attempts)",
			method_of(req), path, strerror(-rc),
			resp ? resp->client_request_id : "-",
			resp ? resp->attempts : 0);
		return rc;
	}
	rc = http_status_errno(resp->status);
	log_err("%s %s: HTTP %ld (request-id %s, client-request-id %s)",
		method_of(req), path, resp->status,
		resp->request_id[0] ? resp->request_id : "-",
		resp->client_request_id);
	return rc;
}

/* ---- fences --------------------------------------------------------------- */

static struct fence *fence_find(struct http *h, const char *origin, bool add)
{
	struct fence *oldest = &h->fences[0];

	for (int i = 0; i < FENCE_MAX; i++) {
		struct fence *f = &h->fences[i];

		if (f->origin[0] && !strcmp(f->origin, origin))
			return f;
		if (f->until < oldest->until)
			oldest = f;
	}
	if (!add)
		return NULL;
	snprintf(oldest->origin, sizeof(oldest->origin), "%s", origin);
	oldest->until = 0;
	return oldest;
}

static int64_t fence_until(struct http *h, const char *url)
{
	char origin[256];
	struct fence *f;

	if (http_url_origin(url, origin, sizeof(origin)) < 0)
		return 0;
	f = fence_find(h, origin, false);
	return f ? f->until : 0;
}

static void fence_set(struct http *h, const char *url, int64_t until)
{
	char origin[256];
	struct fence *f;

	if (http_url_origin(url, origin, sizeof(origin)) < 0)
		return;
	f = fence_find(h, origin, true);
	if (f->until < until)
		f->until = until;
}

/* ---- callbacks (loop thread) --------------------------------------------- */

static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	struct buf *hb = &x->resp->headers;
	size_t n = size * nmemb, len = n, nl, vl;
	const char *colon, *v;

	while (len && (ptr[len - 1] == '\n' || ptr[len - 1] == '\r'))
		len--;
	if (len >= 5 && !strncmp(ptr, "HTTP/", 5)) {
		buf_reset(hb); /* a new response (1xx, or the final one) */
		return n;
	}
	colon = memchr(ptr, ':', len);
	if (!colon || colon == ptr)
		return n;
	nl = (size_t)(colon - ptr);
	v = colon + 1;
	while (v < ptr + len && (*v == ' ' || *v == '\t'))
		v++;
	vl = (size_t)(ptr + len - v);
	while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (memchr(ptr, '\0', len))
		return n; /* a NUL in a header: ignore the line */
	if (buf_grow(hb, nl + vl + 2) < 0)
		return n; /* over the cap: ignore the rest of the headers */
	for (size_t i = 0; i < nl; i++)
		buf_addch(hb, tolower((unsigned char)ptr[i]));
	buf_addch(hb, '\0');
	buf_add(hb, v, vl);
	buf_addch(hb, '\0');
	return n;
}

static bool status_ok(long st)
{
	return st >= 200 && st < 300;
}

/* A range was asked for: a 200 gets trimmed, a 206 must start there. */
static int check_range(struct xfer *x, long st)
{
	const struct http_request *req = x->req;
	const char *cr;
	unsigned long long a;

	x->skip = 0;
	x->limit = UINT64_MAX;
	if (!req->range_off && !req->range_len)
		return 0;
	if (st == 200) {
		x->skip = req->range_off;
		if (req->range_len)
			x->limit = req->range_len;
		return 0;
	}
	if (st != 206)
		return 0;
	cr = http_response_header(x->resp, "content-range");
	if (!cr || sscanf(cr, "bytes %llu-", &a) != 1 || a != req->range_off) {
		log_err("a range response starts at the wrong offset ('%s')",
			cr ? cr : "");
		return -EPROTO;
	}
	if (req->range_len)
		x->limit = req->range_len;
	return 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	size_t n = size * nmemb;
	uint64_t skip0, limit0;
	int rc;

	x->wire_bytes += n;
	if (!x->status_known) {
		long st = 0;

		curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &st);
		x->to_sink = x->req->sink && status_ok(st);
		x->status_known = true;
		rc = check_range(x, st);
		if (rc < 0) {
			x->err = rc;
			return 0;
		}
	}
	skip0 = x->skip; /* a paused block comes again: undo then */
	limit0 = x->limit;
	if (x->skip) {
		size_t k = x->skip < n ? (size_t)x->skip : n;

		x->skip -= k;
		ptr += k;
		n -= k;
		if (!n)
			return size * nmemb;
	}
	if (x->limit != UINT64_MAX) {
		if (!x->limit) {
			x->range_done = true;
			return 0; /* stop the transfer: we have the range */
		}
		if (n > x->limit)
			n = (size_t)x->limit;
		x->limit -= n;
	}
	if (!x->to_sink) {
		rc = buf_add(&x->resp->body, ptr, n);
		if (rc < 0) {
			x->err = rc;
			return 0;
		}
		return size * nmemb;
	}
	if (x->ho) {
		struct handover *ho = x->ho;

		pthread_mutex_lock(&ho->lock);
		if (ho->abort_rc) {
			x->err = ho->abort_rc;
			pthread_mutex_unlock(&ho->lock);
			return 0;
		}
		if (ho->len + n > HANDOVER_CAP && ho->len) {
			ho->paused = true;
			pthread_mutex_unlock(&ho->lock);
			x->wire_bytes -= size * nmemb;
			x->skip = skip0;
			x->limit = limit0;
			log_debug("transfer paused: the consumer is behind");
			return CURL_WRITEFUNC_PAUSE;
		}
		if (ho->len + n > ho->size) {
			/* grow by doubling up to the cap (a single block
			 * larger than the cap gets exactly its size) */
			size_t want = ho->len + n;
			size_t ns = ho->size ? ho->size : HANDOVER_MIN;
			char *p;

			while (ns < want)
				ns *= 2;
			if (ns > HANDOVER_CAP)
				ns = want > HANDOVER_CAP ? want : HANDOVER_CAP;
			p = realloc(ho->data, ns);
			if (!p) {
				pthread_mutex_unlock(&ho->lock);
				x->err = -ENOMEM;
				return 0;
			}
			ho->data = p;
			ho->size = ns;
		}
		memcpy(ho->data + ho->len, ptr, n);
		ho->len += n;
		pthread_cond_signal(&ho->cond);
		pthread_mutex_unlock(&ho->lock);
	} else {
		rc = x->req->sink->write(x->req->sink->ctx, ptr, n);
		if (rc < 0) {
			x->err = rc;
			return 0;
		}
	}
	x->attempt_bytes += (int64_t)n;
	x->sink_bytes += (int64_t)n;
	return size * nmemb;
}

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *ud)
{
	struct xfer *x = ud;
	const struct http_source *src = x->req->source;
	size_t n = size * nmemb;
	ssize_t got;

	if (x->sent >= src->len)
		return 0;
	if (x->sent + n > src->len)
		n = (size_t)(src->len - x->sent);
	got = src->read(src->ctx, dst, n, x->sent);
	if (got < 0) {
		x->err = (int)got;
		return CURL_READFUNC_ABORT;
	}
	if (got == 0) {
		x->err = -EIO; /* the source is shorter than announced */
		return CURL_READFUNC_ABORT;
	}
	if ((size_t)got > n)
		got = (ssize_t)n;
	x->sent += (uint64_t)got;
	return (size_t)got;
}

/* ---- attempts ------------------------------------------------------------ */

static void attempt_cleanup(struct xfer *x)
{
	if (x->easy) {
		curl_multi_remove_handle(x->h->multi, x->easy);
		curl_easy_cleanup(x->easy);
		x->easy = NULL;
	}
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
}

static bool header_kept_on_redirect(const char *line)
{
	return !strncasecmp(line, "Range:", 6) ||
	       !strncasecmp(line, "Accept:", 7);
}

static int attempt_start(struct http *h, struct xfer *x, int64_t now)
{
	const struct http_request *req = x->req;
	const char *m = method_of(req);
	struct curl_slist *l;
	struct buf line = BUF_INIT;
	/* streamed bodies may take long: only the low-speed limit applies */
	unsigned timeout = req->timeout_ms	      ? req->timeout_ms
			   : req->sink || req->source ? 0
						      : h->cfg.timeout_ms;
	int64_t deadline;
	CURL *e;
	int rc = 0;

	e = curl_easy_init();
	if (!e)
		return -ENOMEM;
	x->easy = e;
	x->attempt_bytes = 0;
	x->wire_bytes = 0;
	x->sent = 0;
	x->status_known = false;
	x->to_sink = false;
	x->range_done = false;
	buf_reset(&x->resp->body);
	buf_reset(&x->resp->headers);
	x->resp->status = 0;

	pthread_mutex_lock(&h->lock);
	deadline = h->deadline;
	pthread_mutex_unlock(&h->lock);
	if (deadline && (!timeout || deadline - now < (int64_t)timeout))
		timeout = deadline > now ? (unsigned)(deadline - now) : 1;

	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
			 h->cfg.http1_only ? (long)CURL_HTTP_VERSION_1_1
					   : (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)h->cfg.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
			 (long)h->cfg.low_speed_time_s);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	if (req->sink)
		curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 128L * 1024);
	else
		curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");

	/* a 303 turns the request into a GET without body */
	if (x->redirects && x->redirect_status == 303)
		m = "GET";
	if (!strcmp(m, "HEAD")) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (req->source && !x->redirects) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(e, CURLOPT_READDATA, x);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)req->source->len);
		if (strcmp(m, "PUT"))
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	} else if ((req->body || !strcmp(m, "POST")) && !x->redirects) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)req->body_len);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS,
				 req->body ? (const char *)req->body : "");
		if (strcmp(m, "POST"))
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "GET")) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	}

	/* headers */
	if (buf_addf(&line, "client-request-id: %s",
		     x->resp->client_request_id) < 0)
		goto nomem;
	l = curl_slist_append(x->hdrs, line.data);
	if (!l)
		goto nomem;
	x->hdrs = l;
	l = curl_slist_append(x->hdrs, "Expect:");
	if (!l)
		goto nomem;
	x->hdrs = l;
	if (x->with_auth && req->bearer) {
		buf_reset(&line);
		if (buf_addf(&line, "Authorization: Bearer %s", req->bearer) <
		    0)
			goto nomem;
		l = curl_slist_append(x->hdrs, line.data);
		if (!l)
			goto nomem;
		x->hdrs = l;
	}
	if (req->range_off || req->range_len) {
		buf_reset(&line);
		if (req->range_len)
			rc = buf_addf(&line,
				      "Range: bytes=%" PRIu64 "-%" PRIu64,
				      req->range_off,
				      req->range_off + req->range_len - 1);
		else
			rc = buf_addf(&line, "Range: bytes=%" PRIu64 "-",
				      req->range_off);
		if (rc < 0)
			goto nomem;
		l = curl_slist_append(x->hdrs, line.data);
		if (!l)
			goto nomem;
		x->hdrs = l;
	}
	for (size_t i = 0; req->headers && req->headers[i]; i++) {
		if (x->redirects && !header_kept_on_redirect(req->headers[i]))
			continue;
		if (!strncasecmp(req->headers[i], "Authorization:", 14))
			continue; /* only through @bearer */
		l = curl_slist_append(x->hdrs, req->headers[i]);
		if (!l)
			goto nomem;
		x->hdrs = l;
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	explicit_bzero(line.data, line.len); /* it held the token */
	buf_release(&line);

	if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
		rc = -ENOMEM;
		goto fail;
	}
	x->next = h->running;
	h->running = x;
	h->nrunning++;
	pthread_mutex_lock(&h->lock);
	h->st.requests++;
	if (h->nrunning > h->st.inflight_max)
		h->st.inflight_max = h->nrunning;
	pthread_mutex_unlock(&h->lock);
	return 0;
nomem:
	rc = -ENOMEM;
	explicit_bzero(line.data, line.len);
	buf_release(&line);
fail:
	attempt_cleanup(x);
	return rc;
}

static void complete(struct http *h, struct xfer *x, int rc)
{
	attempt_cleanup(x);
	x->resp->waited_ms = x->waited_ms;
	x->resp->body_bytes =
		x->to_sink ? (uint64_t)x->sink_bytes : x->resp->body.len;
	free(x->resp->url);
	x->resp->url = x->url;
	x->url = NULL;
	pthread_mutex_lock(&h->lock);
	if (rc < 0)
		h->st.failures++;
	h->st.waited_ms += x->waited_ms;
	pthread_mutex_unlock(&h->lock);
	x->done(x->ctx, rc, x->resp);
	free(x);
}

static void enqueue(struct http *h, struct xfer *x)
{
	struct xfer **pp;

	pthread_mutex_lock(&h->lock);
	for (pp = &h->queue; *pp; pp = &(*pp)->next)
		;
	x->next = NULL;
	*pp = x;
	pthread_mutex_unlock(&h->lock);
}

static int64_t backoff_ms(struct http *h, unsigned retry)
{
	uint64_t base = h->cfg.backoff_ms, r = 0;
	unsigned shift = retry > 16 ? 16 : retry;
	uint64_t d = base << shift;

	if (d > h->cfg.backoff_max_ms)
		d = h->cfg.backoff_max_ms;
	util_random(&r, sizeof(r));
	/* full jitter between d/2 and d */
	return (int64_t)(d / 2 + (d ? r % (d / 2 + 1) : 0));
}

/* Retry @x after @wait ms if allowed; false when it must complete. */
static bool retry_later(struct http *h, struct xfer *x, int64_t wait,
			int64_t now, const char *why)
{
	const struct http_request *req = x->req;
	char path[256];
	int64_t deadline;

	if (req->flags & HTTP_F_NO_RETRY)
		return false;
	if (x->retries >= h->cfg.max_retries)
		return false;
	if (x->attempt_bytes > 0 && x->to_sink && !req->sink->reset)
		return false;
	pthread_mutex_lock(&h->lock);
	deadline = h->deadline;
	pthread_mutex_unlock(&h->lock);
	if (deadline && now + wait >= deadline)
		return false;
	if (x->to_sink && x->sink_bytes > 0) {
		/* the body restarts from byte 0: the sink must forget */
		if (x->ho) {
			pthread_mutex_lock(&x->ho->lock);
			x->ho->len = 0;
			x->ho->gen++;
			x->ho->paused = false;
			pthread_mutex_unlock(&x->ho->lock);
		} else if (req->sink->reset(req->sink->ctx) < 0) {
			return false;
		}
		x->sink_bytes = 0;
	}
	x->retries++;
	http_url_path(x->url, path, sizeof(path));
	log_warn("%s %s: %s, retry %u in %" PRId64 " ms (client-request-id %s)",
		 method_of(req), path, why, x->retries, wait,
		 x->resp->client_request_id);
	x->start_at = now + wait;
	x->waited_ms += wait;
	x->resp->attempts++;
	pthread_mutex_lock(&h->lock);
	h->st.retries++;
	pthread_mutex_unlock(&h->lock);
	enqueue(h, x);
	return true;
}

static int follow_redirect(struct xfer *x, const char *loc)
{
	CURLU *u = curl_url();
	char *next = NULL;
	int rc = -EPROTO;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, x->url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_set(u, CURLUPART_URL, loc, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_URL, &next, 0) != CURLUE_OK)
		goto out;
	if (strncasecmp(next, "https://", 8) && strncasecmp(next, "http://", 7))
		goto out;
	free(x->url);
	x->url = strdup(next);
	rc = x->url ? 0 : -ENOMEM;
out:
	curl_free(next);
	curl_url_cleanup(u);
	return rc;
}

/*
 * The body length a 2xx response announced (Content-Range span of a 206,
 * else Content-Length) into *@want; false when nothing can be checked: no
 * body (HEAD, 204), no length, a body libcurl decoded, or a range we cut
 * short ourselves.
 */
static bool body_expected(const struct xfer *x, long st, uint64_t *want)
{
	const struct http_response *r = x->resp;
	const char *ce = http_response_header(r, "content-encoding");
	const char *cl = http_response_header(r, "content-length");
	const char *cr = http_response_header(r, "content-range");
	unsigned long long a, b;
	char *end;

	if (!status_ok(st) || st == 204 || x->range_done ||
	    !strcmp(method_of(x->req), "HEAD"))
		return false;
	if (ce && *ce && strcasecmp(ce, "identity"))
		return false;
	if (st == 206 && cr && sscanf(cr, "bytes %llu-%llu", &a, &b) == 2 &&
	    b >= a) {
		*want = b - a + 1;
		return true;
	}
	if (!cl || !isdigit((unsigned char)*cl))
		return false;
	errno = 0;
	*want = strtoull(cl, &end, 10);
	return !errno && !*end;
}

/* An attempt ended: complete, retry, or redirect. */
static void finish(struct http *h, struct xfer *x, CURLcode cc, int64_t now)
{
	struct http_response *r = x->resp;
	long st = 0, ver = 0, conns = 0;
	const char *ra, *rid, *loc;
	int64_t wait;
	uint64_t want = 0;
	char why[96], path[256];

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &ver);
	curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &conns);
	r->status = st;
	r->http_version = ver == CURL_HTTP_VERSION_2_0 ? 2 : 11;
	if (ver == CURL_HTTP_VERSION_2_0) {
		pthread_mutex_lock(&h->lock);
		h->st.h2++;
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_lock(&h->lock);
	h->st.connects += conns > 0 ? (uint64_t)conns : 0;
	h->st.bytes_in += (uint64_t)(x->to_sink ? x->attempt_bytes
						: (int64_t)r->body.len);
	if (x->req->source && x->redirects == 0)
		h->st.bytes_out += x->req->source->len;
	else if (x->req->body && x->redirects == 0)
		h->st.bytes_out += x->req->body_len;
	pthread_mutex_unlock(&h->lock);
	rid = http_response_header(r, "request-id");
	snprintf(r->request_id, sizeof(r->request_id), "%s", rid ? rid : "");
	attempt_cleanup(x);

	if (x->range_done && cc == CURLE_WRITE_ERROR)
		cc = CURLE_OK; /* we stopped it: the range is complete */
	if (x->err) {
		complete(h, x, x->err);
		return;
	}
	if (cc != CURLE_OK) {
		int rc = curl_errno(cc);

		if (curl_transient(cc) && idempotent(x->req)) {
			snprintf(why, sizeof(why), "%s",
				 curl_easy_strerror(cc));
			if (retry_later(h, x, backoff_ms(h, x->retries), now,
					why))
				return;
		}
		r->status = 0;
		complete(h, x, rc);
		return;
	}

	/*
	 * Throttling: 429, 503 and 509, and SharePoint's 403
	 * activityLimitReached, told from a real "access denied" by the
	 * Retry-After it carries.
	 */
	if (st == 429 || st == 503 || st == 509 ||
	    (st == 403 && http_response_header(r, "retry-after"))) {
		pthread_mutex_lock(&h->lock);
		h->st.throttled++;
		pthread_mutex_unlock(&h->lock);
		ra = http_response_header(r, "retry-after");
		snprintf(why, sizeof(why), "HTTP %ld", st);
		if (ra && http_retry_after_parse(ra, util_now(), &wait) == 0) {
			fence_set(h, x->url, now + wait);
			/* a throttled request was not executed: retry it */
			if (retry_later(h, x, wait, now, why))
				return;
		} else if (st == 429 || idempotent(x->req)) {
			if (retry_later(h, x, backoff_ms(h, x->retries), now,
					why))
				return;
		}
		complete(h, x, 0);
		return;
	}
	if ((st == 500 || st == 502 || st == 504) && idempotent(x->req)) {
		snprintf(why, sizeof(why), "HTTP %ld", st);
		if (retry_later(h, x, backoff_ms(h, x->retries), now, why))
			return;
		complete(h, x, 0);
		return;
	}
	loc = http_response_header(r, "location");
	if ((x->req->flags & HTTP_F_FOLLOW) && loc && !x->req->body &&
	    !x->req->source &&
	    (st == 301 || st == 302 || st == 303 || st == 307 || st == 308)) {
		int rc;

		if (x->redirects >= HTTP_MAX_REDIRECTS) {
			complete(h, x, -ELOOP);
			return;
		}
		rc = follow_redirect(x, loc);
		if (rc < 0) {
			complete(h, x, rc);
			return;
		}
		x->redirects++;
		x->redirect_status = st;
		x->with_auth = false; /* never to the redirect target */
		pthread_mutex_lock(&h->lock);
		h->st.redirects++;
		pthread_mutex_unlock(&h->lock);
		x->start_at = now;
		enqueue(h, x);
		return;
	}
	/*
	 * A 2xx body must be as long as announced.  libcurl catches a short
	 * body over HTTP/1.1 (error 18), but 7.88 over HTTP/2 can end a
	 * paused stream as a success with its last blocks never delivered:
	 * retry that like a dropped connection, never hand it on.
	 */
	if (body_expected(x, st, &want) && x->wire_bytes != want) {
		pthread_mutex_lock(&h->lock);
		h->st.short_bodies++;
		pthread_mutex_unlock(&h->lock);
		snprintf(why, sizeof(why),
			 "body of %" PRIu64 " bytes, %" PRIu64
			 " announced (HTTP/%s)",
			 x->wire_bytes, want,
			 r->http_version == 2 ? "2" : "1.1");
		if (idempotent(x->req) &&
		    retry_later(h, x, backoff_ms(h, x->retries), now, why))
			return;
		http_url_path(x->url, path, sizeof(path));
		log_warn("%s %s: %s, giving up (client-request-id %s)",
			 method_of(x->req), path, why, r->client_request_id);
		r->status = 0;
		complete(h, x, -ECONNRESET);
		return;
	}
	complete(h, x, 0);
}

/* Start what is due in the queue; return ms until the next start. */
static int64_t start_due(struct http *h, int64_t now)
{
	struct xfer **pp, *x;
	int64_t next = 1000, until;
	struct xfer *due = NULL, **tail = &due;
	int64_t deadline;

	/* first take out what was aborted or cannot start in time */
	pthread_mutex_lock(&h->lock);
	deadline = h->deadline;
	for (pp = &h->queue; *pp;) {
		int ab = 0;

		x = *pp;
		if (x->ho) {
			pthread_mutex_lock(&x->ho->lock);
			ab = x->ho->abort_rc;
			pthread_mutex_unlock(&x->ho->lock);
		}
		if (!ab && deadline &&
		    (now >= deadline || fence_until(h, x->url) >= deadline ||
		     x->start_at >= deadline))
			ab = -ETIMEDOUT;
		if (ab) {
			x->err = ab;
			*pp = x->next;
			x->next = NULL;
			*tail = x;
			tail = &x->next;
			continue;
		}
		pp = &x->next;
	}
	pthread_mutex_unlock(&h->lock);
	for (x = due; x;) {
		struct xfer *n = x->next;

		complete(h, x, x->err);
		x = n;
	}

	for (;;) {
		x = NULL;
		pthread_mutex_lock(&h->lock);
		for (pp = &h->queue; *pp; pp = &(*pp)->next) {
			int64_t t = (*pp)->start_at;

			until = fence_until(h, (*pp)->url);
			if (until > t) {
				(*pp)->waited_ms += until - (t > now ? t : now);
				(*pp)->start_at = until;
				t = until;
			}
			if (t <= now) {
				if (h->nrunning >= h->cfg.max_inflight)
					break;
				x = *pp;
				*pp = x->next;
				x->next = NULL;
				break;
			}
			if (t - now < next)
				next = t - now;
		}
		pthread_mutex_unlock(&h->lock);
		if (!x)
			break;
		int rc = attempt_start(h, x, now);

		if (rc < 0)
			complete(h, x, rc);
	}
	return next < 0 ? 0 : next;
}

static void unlink_running(struct http *h, struct xfer *x)
{
	for (struct xfer **pp = &h->running; *pp; pp = &(*pp)->next) {
		if (*pp == x) {
			*pp = x->next;
			x->next = NULL;
			h->nrunning--;
			return;
		}
	}
}

static void control_running(struct http *h, int64_t now)
{
	struct xfer *x, *n;
	int64_t deadline;

	pthread_mutex_lock(&h->lock);
	deadline = h->deadline;
	pthread_mutex_unlock(&h->lock);
	for (x = h->running; x; x = n) {
		bool unpause, abort_rc;
		int ab;

		n = x->next;
		unpause = false;
		ab = 0;
		if (x->ho) {
			pthread_mutex_lock(&x->ho->lock);
			unpause = x->ho->want_unpause;
			x->ho->want_unpause = false;
			ab = x->ho->abort_rc;
			pthread_mutex_unlock(&x->ho->lock);
		}
		abort_rc = ab != 0;
		if (!abort_rc && deadline && now >= deadline)
			ab = -ETIMEDOUT, abort_rc = true;
		if (abort_rc) {
			unlink_running(h, x);
			attempt_cleanup(x);
			complete(h, x, ab);
			continue;
		}
		if (unpause)
			curl_easy_pause(x->easy, CURLPAUSE_CONT);
	}
}

static void *loop(void *arg)
{
	struct http *h = arg;
	CURLMsg *msg;
	int left, still;
	bool stop = false;

	while (!stop) {
		int64_t now = util_mono_ms(), wait;

		control_running(h, now);
		wait = start_due(h, now);
		curl_multi_perform(h->multi, &still);
		while ((msg = curl_multi_info_read(h->multi, &left))) {
			struct xfer *x = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
					  (char **)&x);
			unlink_running(h, x);
			finish(h, x, msg->data.result, util_mono_ms());
			wait = 0; /* something may be due now */
		}
		pthread_mutex_lock(&h->lock);
		stop = h->stop;
		pthread_mutex_unlock(&h->lock);
		if (stop)
			break;
		if (wait > 0)
			curl_multi_poll(h->multi, NULL, 0, (int)wait, NULL);
	}
	/* cancel everything */
	while (h->running) {
		struct xfer *x = h->running;

		unlink_running(h, x);
		attempt_cleanup(x);
		complete(h, x, -ECANCELED);
	}
	for (;;) {
		struct xfer *x;

		pthread_mutex_lock(&h->lock);
		x = h->queue;
		if (x)
			h->queue = x->next;
		pthread_mutex_unlock(&h->lock);
		if (!x)
			break;
		complete(h, x, -ECANCELED);
	}
	return NULL;
}

/* ---- public ---------------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	struct sigaction sa;

	/*
	 * Transfers run with CURLOPT_NOSIGNAL (we are multi-threaded), so
	 * libcurl does not shield its socket writes from SIGPIPE: a peer that
	 * drops the connection while we send would kill the process.  Ignore
	 * SIGPIPE unless the program installed a handler of its own.
	 */
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		sa.sa_handler = SIG_IGN;
		sa.sa_flags = 0;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGPIPE, &sa, NULL);
	}
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_new(const struct http_config *cfg, struct http **out)
{
	struct http *h;
	int rc;

	*out = NULL;
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -EIO;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	if (cfg)
		h->cfg = *cfg;
	if (!h->cfg.max_inflight)
		h->cfg.max_inflight = HTTP_DEFAULT_MAX_INFLIGHT;
	if (!h->cfg.max_retries)
		h->cfg.max_retries = HTTP_DEFAULT_MAX_RETRIES;
	if (!h->cfg.backoff_ms)
		h->cfg.backoff_ms = HTTP_DEFAULT_BACKOFF_MS;
	if (!h->cfg.backoff_max_ms)
		h->cfg.backoff_max_ms = HTTP_DEFAULT_BACKOFF_MAX;
	if (!h->cfg.connect_timeout_ms)
		h->cfg.connect_timeout_ms = HTTP_DEFAULT_CONNECT_MS;
	if (!h->cfg.timeout_ms)
		h->cfg.timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
	if (!h->cfg.low_speed_time_s)
		h->cfg.low_speed_time_s = HTTP_DEFAULT_LOW_SPEED_S;
	h->ca_file = cfg && cfg->ca_file ? strdup(cfg->ca_file) : NULL;
	h->user_agent =
		strdup(cfg && cfg->user_agent ? cfg->user_agent : "m365fs/0.1");
	h->cfg.ca_file = NULL;
	h->cfg.user_agent = NULL;
	if ((cfg && cfg->ca_file && !h->ca_file) || !h->user_agent) {
		rc = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&h->lock, NULL);
	h->multi = curl_multi_init();
	if (!h->multi) {
		rc = -EIO;
		goto fail_lock;
	}
	curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
			  (long)h->cfg.max_inflight);
	rc = pthread_create(&h->thread, NULL, loop, h);
	if (rc) {
		rc = -rc;
		curl_multi_cleanup(h->multi);
		goto fail_lock;
	}
	*out = h;
	return 0;
fail_lock:
	pthread_mutex_destroy(&h->lock);
fail:
	free(h->ca_file);
	free(h->user_agent);
	free(h);
	return rc;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_mutex_unlock(&h->lock);
	curl_multi_wakeup(h->multi);
	pthread_join(h->thread, NULL);
	curl_multi_cleanup(h->multi);
	pthread_mutex_destroy(&h->lock);
	free(h->ca_file);
	free(h->user_agent);
	free(h);
}

void http_deadline_set(struct http *h, int64_t mono_ms)
{
	pthread_mutex_lock(&h->lock);
	h->deadline = mono_ms;
	pthread_mutex_unlock(&h->lock);
	curl_multi_wakeup(h->multi);
}

void http_stats_get(struct http *h, struct http_stats *st)
{
	pthread_mutex_lock(&h->lock);
	*st = h->st;
	pthread_mutex_unlock(&h->lock);
}

static int submit(struct http *h, const struct http_request *req,
		  struct http_response *resp, http_done_fn done, void *ctx,
		  struct handover *ho)
{
	struct xfer *x;
	int rc;

	if (!req->url || (strncasecmp(req->url, "https://", 8) &&
			  strncasecmp(req->url, "http://", 7)))
		return -EINVAL;
	if (req->source && req->body)
		return -EINVAL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->url = strdup(req->url);
	if (!x->url) {
		free(x);
		return -ENOMEM;
	}
	buf_release(&resp->body);
	buf_release(&resp->headers);
	free(resp->url);
	http_response_init(resp);
	resp->body.cap = req->body_cap ? req->body_cap : HTTP_DEFAULT_BODY_CAP;
	rc = util_guid_new(resp->client_request_id);
	if (rc < 0) {
		free(x->url);
		free(x);
		return rc;
	}
	resp->attempts = 1;
	x->h = h;
	x->req = req;
	x->resp = resp;
	x->done = done;
	x->ctx = ctx;
	x->ho = ho;
	x->with_auth = true;
	x->start_at = util_mono_ms();
	enqueue(h, x);
	curl_multi_wakeup(h->multi);
	return 0;
}

int http_submit(struct http *h, const struct http_request *req,
		struct http_response *resp, http_done_fn done, void *ctx)
{
	return submit(h, req, resp, done, ctx, NULL);
}

static void blocking_done(void *ctx, int rc, struct http_response *resp)
{
	struct handover *ho = ctx;

	(void)resp;
	pthread_mutex_lock(&ho->lock);
	ho->done = true;
	ho->rc = rc;
	pthread_cond_signal(&ho->cond);
	pthread_mutex_unlock(&ho->lock);
}

int http_do(struct http *h, const struct http_request *req,
	    struct http_response *resp)
{
	struct handover ho = { 0 };
	const struct http_sink *sink = req->sink;
	char *spare = NULL; /* the buffer the caller is not reading */
	size_t spare_size = 0;
	int rc;

	if (pthread_equal(pthread_self(), h->thread))
		return -EDEADLK;
	pthread_mutex_init(&ho.lock, NULL);
	pthread_cond_init(&ho.cond, NULL);
	rc = submit(h, req, resp, blocking_done, &ho, sink ? &ho : NULL);
	if (rc < 0)
		goto out;
	pthread_mutex_lock(&ho.lock);
	for (;;) {
		if (ho.len) {
			char *blk = ho.data;
			size_t blk_size = ho.size;
			size_t n = ho.len;
			bool was_paused = ho.paused;
			bool need_reset = ho.gen != ho.seen_gen;
			bool aborted = ho.abort_rc != 0;
			int src = 0;

			/* take the block, give the loop the spare buffer */
			ho.data = spare;
			ho.size = spare_size;
			ho.len = 0;
			ho.paused = false;
			ho.seen_gen = ho.gen;
			if (was_paused)
				ho.want_unpause = true;
			pthread_mutex_unlock(&ho.lock);
			if (was_paused)
				curl_multi_wakeup(h->multi);
			if (!aborted && need_reset)
				src = sink->reset ? sink->reset(sink->ctx)
						  : -ECONNRESET;
			/* a block that a later retry made stale is harmless:
			 * the retry's first block comes with a reset */
			if (!aborted && !src)
				src = sink->write(sink->ctx, blk, n);
			pthread_mutex_lock(&ho.lock);
			if (src < 0 && !ho.abort_rc) {
				ho.abort_rc = src;
				pthread_mutex_unlock(&ho.lock);
				curl_multi_wakeup(h->multi);
				pthread_mutex_lock(&ho.lock);
			}
			spare = blk;
			spare_size = blk_size;
			continue;
		}
		if (ho.done)
			break;
		pthread_cond_wait(&ho.cond, &ho.lock);
	}
	rc = ho.abort_rc ? ho.abort_rc : ho.rc;
	if (rc == 0 && sink && ho.gen != ho.seen_gen) {
		/* a retry succeeded with an empty body after bytes of an
		 * earlier attempt went out: those must go */
		rc = sink->reset ? sink->reset(sink->ctx) : -ECONNRESET;
	}
	pthread_mutex_unlock(&ho.lock);
out:
	free(ho.data);
	free(spare);
	pthread_cond_destroy(&ho.cond);
	pthread_mutex_destroy(&ho.lock);
	return rc;
}

static ssize_t fd_read(void *ctx, void *dst, size_t len, uint64_t off)
{
	struct http_fd_source *fs = ctx;
	ssize_t n;

	do {
		n = pread(fs->fd, dst, len, (off_t)(fs->off + off));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n;
}

void http_source_fd(struct http_source *src, struct http_fd_source *ctx, int fd,
		    uint64_t off, uint64_t len)
{
	ctx->fd = fd;
	ctx->off = off;
	src->read = fd_read;
	src->ctx = ctx;
	src->len = len;
}
