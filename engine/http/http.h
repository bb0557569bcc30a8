/*
 * http - HTTPS client over libcurl's multi interface.
 *
 * One struct http owns one libcurl multi handle and one event-loop thread
 * that runs every transfer: HTTP/2 with multiplexing and connection reuse
 * (HTTP/1.1 when the server does not speak h2), a bounded number of
 * transfers in flight, TLS verification always on (optionally against a
 * private CA bundle, which is how the tests reach the emulator).
 *
 * On top of libcurl this module adds what every Microsoft endpoint needs:
 *  - retries with jittered exponential backoff on transient failures
 *    (connection errors, timeouts, 500/502/503/504, truncated bodies) for
 *    idempotent requests (GET, HEAD, PUT, DELETE, OPTIONS, or any request
 *    flagged HTTP_F_IDEMPOTENT);
 *  - throttling: a 429, 503 or 509 with Retry-After (integer or fractional
 *    seconds, or an HTTP date) fences *every* request to that origin
 *    (scheme, host, port) until the time passes; the throttled request itself is retried afterwards
 *    (also when it is not idempotent: a throttled request was not executed);
 *  - a client-request-id header (random GUID) on every request; failures are
 *    logged with method, path (never the query), status, request-id and
 *    client-request-id;
 *  - redirects are followed by this code, never by libcurl, and the
 *    redirected request never carries the Authorization header (a 302 from
 *    /content points at a pre-authenticated URL on another host);
 *  - per-request timeouts (total, connect, low speed), an overall deadline
 *    for the whole struct http, and a size cap on bodies kept in memory;
 *  - counters for the tools (requests, retries, throttled, time waited).
 *
 * Thread safety: http_do(), http_submit(), http_stats_get() and
 * http_deadline_set() may be called from any number of threads at once on
 * one struct http.  http_new()/http_free() are not concurrent with anything
 * else.  Callbacks (sink, source, done) run as documented at each one and
 * must never call http_do() on the loop thread (it would deadlock: -EDEADLK).
 *
 * Errors: 0 or -errno.  A request that got an HTTP response returns 0
 * whatever the status; the caller looks at resp->status and maps it with
 * http_status_errno() / http_fail().  Transport failures after all retries:
 * -ETIMEDOUT (timeout or deadline), -ECONNREFUSED, -EHOSTUNREACH (DNS or
 * route), -ECONNRESET (dropped connection, truncated body), -EPROTO (TLS
 * or protocol error), -EPERM (certificate verification failed), -E2BIG
 * (body over the cap), -ECANCELED (a sink or source returned an error; that
 * error is returned instead when it is a -errno), -ELOOP (more than
 * HTTP_MAX_REDIRECTS redirects), -ENOMEM, -EINVAL (bad request: no URL,
 * bad scheme).
 */
#ifndef M365_HTTP_H
#define M365_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

struct http;

/* Defaults used when a field of struct http_config is 0. */
#define HTTP_DEFAULT_MAX_INFLIGHT 16
#define HTTP_DEFAULT_MAX_RETRIES  6
#define HTTP_DEFAULT_BACKOFF_MS	  500 /* first retry after ~0.5 s */
#define HTTP_DEFAULT_BACKOFF_MAX  30000 /* never more than 30 s */
#define HTTP_DEFAULT_CONNECT_MS	  15000
#define HTTP_DEFAULT_TIMEOUT_MS	  300000 /* total per attempt */
#define HTTP_DEFAULT_LOW_SPEED_S  60 /* below 1 byte/s for 60 s */
#define HTTP_DEFAULT_BODY_CAP	  (64u << 20) /* in-memory bodies */
#define HTTP_MAX_REDIRECTS	  5
#define HTTP_RETRY_AFTER_MAX_MS	  (15 * 60 * 1000) /* clamp server waits */

struct http_config {
	const char *ca_file; /* PEM CA bundle (CURLOPT_CAINFO); NULL:
				     the system store.  Copied. */
	const char *user_agent; /* NULL: "m365fs/VERSION".  Copied. */
	unsigned max_inflight; /* transfers running at once */
	unsigned max_retries; /* attempts after the first one */
	unsigned backoff_ms; /* base of the exponential backoff */
	unsigned backoff_max_ms; /* ceiling of one backoff wait */
	unsigned connect_timeout_ms;
	unsigned timeout_ms; /* default total time of one attempt */
	unsigned low_speed_time_s; /* abort an attempt slower than 1 byte/s
				      for this long (then retried) */
	bool http1_only; /* never negotiate HTTP/2 */
};

/**
 * Create a client and start its event-loop thread.  @cfg may be NULL
 * (all defaults).  Caller owns *@out, free with http_free().
 * The first call sets SIGPIPE to ignored if it is at its default
 * (transfers run without libcurl's signal handling).  Returns 0, -ENOMEM, -EIO (libcurl could not be initialised) or the
 * error of pthread_create().
 */
int http_new(const struct http_config *cfg, struct http **out);

/**
 * Stop the loop thread and free @h.  Requests still running fail with
 * -ECANCELED (their done callbacks run, blocking callers return) before
 * this returns.  NULL is fine.
 */
void http_free(struct http *h);

/**
 * Set an overall deadline, in util_mono_ms() milliseconds, after which
 * every running and new request fails with -ETIMEDOUT (0 = none).  Retries
 * and Retry-After waits that would end after it fail at once.
 */
void http_deadline_set(struct http *h, int64_t mono_ms);

/*
 * Body sink: receives the body of a 2xx response as it arrives (downloads
 * into the store).  The body of any other status goes to resp->body (capped)
 * so that the caller can read the error JSON; the sink never sees it.
 *
 * Where it runs: for http_do() on the *calling* thread (the loop thread
 * copies each received block once into a bounded hand-over buffer and
 * pauses the transfer while that is full, so a slow sink - chunking,
 * compression - slows only its own transfer, never the loop); for
 * http_submit() on the loop thread, directly on libcurl's buffer (no copy;
 * the sink must then be quick).
 *
 * write: called with the next @len (> 0) bytes.  Return 0 to go on or
 *        -errno to abort the request (http_do() returns that error).
 * reset: called before a retry replays the body from the start, after some
 *        bytes already went to write(): discard them and return 0, or
 *        -errno to give up.  NULL: a transfer that breaks after bytes were
 *        delivered is not retried (-ECONNRESET).
 */
struct http_sink {
	int (*write)(void *ctx, const void *data, size_t len);
	int (*reset)(void *ctx);
	void *ctx;
};

/*
 * Body source: the request body read on demand (uploads from a file or a
 * spool), with its length known in advance (sent as Content-Length).
 * read: copy up to @len bytes at offset @off of the body into @dst; return
 * the count (> 0 unless @off == length), or -errno to abort.  Offsets
 * restart at 0 when a retry resends the body.  Runs on the loop thread; it
 * should be a pread() of a local file, nothing slower.
 */
struct http_source {
	ssize_t (*read)(void *ctx, void *dst, size_t len, uint64_t off);
	void *ctx;
	uint64_t len;
};

/**
 * Fill @src to read @len bytes of file @fd starting at @off with pread().
 * The fd stays owned by the caller and must stay open until the request
 * completes.  @ctx holds the state (caller-provided, same lifetime).
 */
struct http_fd_source {
	int fd;
	uint64_t off;
};
void http_source_fd(struct http_source *src, struct http_fd_source *ctx, int fd,
		    uint64_t off, uint64_t len);

/* Request flags. */
#define HTTP_F_IDEMPOTENT 0x1u /* retry transient failures even for POST */
#define HTTP_F_NO_RETRY                                                        \
	0x2u /* never retry (throttling fences still
				  delay the start) */
#define HTTP_F_FOLLOW                                                          \
	0x4u /* follow 301/302/303/307/308 (up to
				  HTTP_MAX_REDIRECTS), without Authorization
				  and without the request's extra headers
				  except Range/Accept */

/*
 * One request.  Every pointer is borrowed: it must stay valid until
 * http_do() returns or the done callback of http_submit() has run.
 */
struct http_request {
	const char *method; /* "GET", "POST", ...; NULL = "GET" */
	const char *url; /* absolute http(s) URL, already escaped */
	const char *bearer; /* access token: "Authorization: Bearer
				      <bearer>" to this URL only (never to
				      redirects); NULL = no Authorization */
	const char *const *headers; /* extra "Name: value" lines, NULL-
				       terminated array; may be NULL */
	const void *body; /* in-memory request body, or NULL */
	size_t body_len;
	const struct http_source *source; /* streamed body instead of @body */
	const struct http_sink *sink; /* stream a 2xx body here instead of
					 resp->body; NULL = keep in memory */
	size_t body_cap; /* cap of resp->body; 0 = default cap */
	unsigned timeout_ms; /* total per attempt; 0 = the config's
				timeout_ms, or none when a sink or source
				is set (streams may take long: the
				low-speed limit guards them) */
	unsigned flags; /* HTTP_F_* */
	uint64_t range_off; /* with range_len or alone: ask for bytes
			       [range_off, range_off + range_len) with a
			       Range header (kept across redirects); a 200
			       that ignores it is trimmed here, so a sink
			       sees exactly that range; a 206 starting
			       elsewhere fails with -EPROTO */
	uint64_t range_len; /* 0 = to the end */
};

/*
 * The outcome.  Initialise with http_response_init() before use; release
 * with http_response_release().  Reusing one response for another request
 * is fine: http_do() resets it first.
 */
struct http_response {
	long status; /* final HTTP status, 0 if none arrived */
	int http_version; /* 11 or 2 (HTTP/1.1, HTTP/2) */
	struct buf body; /* body unless it went to a sink (capped) */
	struct buf headers; /* private: use http_response_header() */
	char client_request_id[37]; /* the GUID sent with the last attempt */
	char request_id[64]; /* "request-id" response header, or "" */
	char *url; /* final URL after redirects, caller owns via
				 http_response_release() */
	uint64_t body_bytes; /* body bytes received (memory or sink) */
	unsigned attempts; /* 1 + retries */
	int64_t waited_ms; /* time spent in backoff and throttling fences */
};

/** Make @r empty.  Never fails. */
void http_response_init(struct http_response *r);

/** Free what @r holds and make it empty again.  NULL is fine. */
void http_response_release(struct http_response *r);

/**
 * Value of response header @name (case-insensitive) of the final response,
 * or NULL.  Borrowed: valid until @r is released or reused.  When a header
 * repeats, the first one.
 */
const char *http_response_header(const struct http_response *r,
				 const char *name);

/**
 * Run @req and wait for it on this thread (condition variable; the loop
 * thread does the work).  Retries, fences and redirects happen inside.
 * Returns 0 when an HTTP response arrived (any status: see @resp->status),
 * else -errno as in the module comment.  @resp is filled in both cases as
 * far as known.  Must not be called from a sink/source/done callback.
 */
int http_do(struct http *h, const struct http_request *req,
	    struct http_response *resp);

/**
 * Completion of an asynchronous request, on the loop thread: @rc is what
 * http_do() would have returned.  It must be quick and must not call
 * http_do(); it may call http_submit().
 */
typedef void (*http_done_fn)(void *ctx, int rc, struct http_response *resp);

/**
 * Start @req without waiting; @done(@ctx, rc, @resp) runs exactly once on
 * the loop thread when it is over (also when http_free() cancels it).
 * A sink of an asynchronous request runs on the loop thread.
 * Returns 0 (the request is queued) or -errno (nothing queued, @done not
 * called).
 */
int http_submit(struct http *h, const struct http_request *req,
		struct http_response *resp, http_done_fn done, void *ctx);

struct http_stats {
	uint64_t requests; /* attempts sent (each retry counts) */
	uint64_t retries; /* attempts that were retries */
	uint64_t throttled; /* 429/503/509 responses seen */
	uint64_t failures; /* requests that ended in -errno */
	uint64_t redirects; /* redirects followed */
	uint64_t bytes_in; /* response body bytes */
	uint64_t bytes_out; /* request body bytes */
	uint64_t h2; /* attempts that ran over HTTP/2 */
	int64_t waited_ms; /* sum of backoff + throttling waits */
	unsigned inflight_max; /* most transfers running at once */
	uint64_t connects; /* new connections opened (HTTP/2 streams and
				  reused connections open none) */
	uint64_t short_bodies; /* 2xx bodies that ended shorter (or longer)
				  than announced: retried or failed */
};

/** Copy the counters of @h into @st. */
void http_stats_get(struct http *h, struct http_stats *st);

/**
 * Map an HTTP status to -errno: 2xx/3xx 0, 400 -EINVAL, 401 -EACCES,
 * 403 -EPERM, 404/410 -ENOENT, 405/501 -EOPNOTSUPP, 408/504 -ETIMEDOUT,
 * 409/412 -EEXIST, 411/415/422 -EINVAL, 413 -EFBIG, 416 -ERANGE,
 * 423 -EBUSY, 429/509 -EAGAIN, 500/502 -EIO, 503 -EAGAIN, 507 -ENOSPC,
 * other 4xx -EINVAL, other 5xx -EIO.  (410 is -ENOENT here; graph turns
 * the delta 410 into its own result.)
 */
int http_status_errno(long status);

/**
 * Log a failed request (method, path without query, status, request-id,
 * client-request-id, and @rc when no response arrived) at error level and
 * return the -errno for it: @rc when < 0, else http_status_errno().
 */
int http_fail(const struct http_request *req, const struct http_response *resp,
	      int rc);

/**
 * Parse a Retry-After value: delay-seconds (integer or fractional, rounded
 * up to whole milliseconds) or an HTTP date (IMF-fixdate, RFC 850 or
 * asctime) relative to @now (seconds since the epoch).  Dates in the past
 * give 0.  The result is clamped to HTTP_RETRY_AFTER_MAX_MS.
 * Returns 0 and sets *@ms, or -EINVAL.
 */
int http_retry_after_parse(const char *value, int64_t now, int64_t *ms);

/**
 * Append @s percent-encoded for one URL path segment or query value:
 * everything but A-Z a-z 0-9 - . _ ~ becomes %XX ('/' -> %2F, '+' -> %2B,
 * '=' -> %3D, ' ' -> %20).  Returns 0, -ENOMEM or -E2BIG.
 */
int http_escape(struct buf *out, const char *s);

/**
 * Copy the "scheme://host[:port]" of absolute URL @url into @out (lower
 * case, default port removed).  Returns 0, -EINVAL (not an absolute
 * http(s) URL, or userinfo present) or -ENAMETOOLONG (@size too small).
 */
int http_url_origin(const char *url, char *out, size_t size);

/**
 * Copy the path of @url without query and fragment into @out (truncated
 * to @size - 1 bytes; "/" when empty): what logs may show of a URL, whose
 * query can hold a token (pre-authenticated download URLs).
 */
void http_url_path(const char *url, char *out, size_t size);

/** True when @a and @b are valid URLs with the same origin. */
bool http_url_same_origin(const char *a, const char *b);

#endif
