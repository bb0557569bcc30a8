/*
 * http.c - the event loop over libcurl multi (work in progress: stubs).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"

int http_new(const struct http_config *cfg, struct http **out)
{
	(void)cfg;
	*out = NULL;
	return -ENOSYS;
}

void http_free(struct http *h)
{
	(void)h;
}

void http_deadline_set(struct http *h, int64_t mono_ms)
{
	(void)h;
	(void)mono_ms;
}

void http_response_init(struct http_response *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
	buf_init(&r->headers, 0);
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
	(void)r;
	(void)name;
	return NULL;
}

int http_do(struct http *h, const struct http_request *req,
	    struct http_response *resp)
{
	(void)h;
	(void)req;
	(void)resp;
	return -ENOSYS;
}

int http_submit(struct http *h, const struct http_request *req,
		struct http_response *resp, http_done_fn done, void *ctx)
{
	(void)h;
	(void)req;
	(void)resp;
	(void)done;
	(void)ctx;
	return -ENOSYS;
}

void http_stats_get(struct http *h, struct http_stats *st)
{
	(void)h;
	memset(st, 0, sizeof(*st));
}

int http_fail(const struct http_request *req, const struct http_response *resp,
	      int rc)
{
	(void)req;
	if (rc < 0)
		return rc;
	return http_status_errno(resp ? resp->status : 0);
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
