/*
 * test_http - the pure parts of engine/http: Retry-After, escaping, URL
 * origins, status mapping, response headers, client lifecycle (no network).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http/http.h"

static void test_retry_after(void)
{
	int64_t ms = -1;
	/* Sun, 06 Nov 1994 08:49:37 GMT */
	const int64_t t = 784111777;

	CHECK_EQ(http_retry_after_parse("2", 0, &ms), 0);
	CHECK_EQ(ms, 2000);
	CHECK_EQ(http_retry_after_parse("2.128", 0, &ms), 0);
	CHECK_EQ(ms, 2128);
	CHECK_EQ(http_retry_after_parse(" 0.0001 ", 0, &ms), 0);
	CHECK_EQ(ms, 1); /* rounded up */
	CHECK_EQ(http_retry_after_parse("0", 0, &ms), 0);
	CHECK_EQ(ms, 0);
	CHECK_EQ(http_retry_after_parse("99999999", 0, &ms), 0);
	CHECK_EQ(ms, HTTP_RETRY_AFTER_MAX_MS);
	CHECK_EQ(http_retry_after_parse("1e400", 0, &ms), -EINVAL);
	CHECK_EQ(http_retry_after_parse("-3", 0, &ms), -EINVAL);
	CHECK_EQ(http_retry_after_parse("3s", 0, &ms), -EINVAL);
	CHECK_EQ(http_retry_after_parse("", 0, &ms), -EINVAL);
	CHECK_EQ(http_retry_after_parse(NULL, 0, &ms), -EINVAL);
	CHECK_EQ(http_retry_after_parse("nan", 0, &ms), -EINVAL);

	CHECK_EQ(http_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", t - 5,
					&ms),
		 0);
	CHECK_EQ(ms, 5000);
	CHECK_EQ(http_retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", t - 7,
					&ms),
		 0);
	CHECK_EQ(ms, 7000);
	CHECK_EQ(http_retry_after_parse("Sun Nov  6 08:49:37 1994", t - 1, &ms),
		 0);
	CHECK_EQ(ms, 1000);
	/* in the past: no wait */
	CHECK_EQ(http_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT",
					t + 100, &ms),
		 0);
	CHECK_EQ(ms, 0);
	CHECK_EQ(
		http_retry_after_parse("Sun, 06 Foo 1994 08:49:37 GMT", t, &ms),
		-EINVAL);
	CHECK_EQ(
		http_retry_after_parse("Sun, 06 Nov 1994 25:49:37 GMT", t, &ms),
		-EINVAL);
	CHECK_EQ(http_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT x", t,
					&ms),
		 -EINVAL);
}

static void test_escape(void)
{
	struct buf b = BUF_INIT;

	CHECK_EQ(http_escape(&b, "AAMk/AD+x=="), 0);
	CHECK_STR(b.data, "AAMk%2FAD%2Bx%3D%3D");
	buf_reset(&b);
	CHECK_EQ(http_escape(&b, "a b-c_d.e~f"), 0);
	CHECK_STR(b.data, "a%20b-c_d.e~f");
	buf_reset(&b);
	CHECK_EQ(http_escape(&b, "\xc3\xa4?#&%"), 0);
	CHECK_STR(b.data, "%C3%A4%3F%23%26%25");
	buf_release(&b);
	buf_init(&b, 4);
	CHECK_EQ(http_escape(&b, "//"), -E2BIG);
	buf_release(&b);
}

static void test_origin(void)
{
	char o[64];

	CHECK_EQ(http_url_origin("https://Graph.Microsoft.com/v1.0/x?y", o,
				 sizeof(o)),
		 0);
	CHECK_STR(o, "https://graph.microsoft.com");
	CHECK_EQ(http_url_origin("https://127.0.0.1:8443", o, sizeof(o)), 0);
	CHECK_STR(o, "https://127.0.0.1:8443");
	CHECK_EQ(http_url_origin("https://h:443/a", o, sizeof(o)), 0);
	CHECK_STR(o, "https://h");
	CHECK_EQ(http_url_origin("http://h:80?x", o, sizeof(o)), 0);
	CHECK_STR(o, "http://h");
	CHECK_EQ(http_url_origin("ftp://h/", o, sizeof(o)), -EINVAL);
	CHECK_EQ(http_url_origin("https:///x", o, sizeof(o)), -EINVAL);
	CHECK_EQ(http_url_origin("https://user@evil/x", o, sizeof(o)), -EINVAL);
	CHECK_EQ(http_url_origin("/v1.0/x", o, sizeof(o)), -EINVAL);
	CHECK_EQ(http_url_origin("https://graph.microsoft.com/", o, 8),
		 -ENAMETOOLONG);

	CHECK(http_url_same_origin("https://a.b/x", "https://A.B:443/y?z"));
	CHECK(!http_url_same_origin("https://a.b/x", "https://a.b.evil/x"));
	CHECK(!http_url_same_origin("https://a.b/x", "http://a.b/x"));
	CHECK(!http_url_same_origin("https://a.b:1/x", "https://a.b:2/x"));
	CHECK(!http_url_same_origin("https://a.b@c.d/", "https://a.b/"));
}

static void test_status(void)
{
	CHECK_EQ(http_status_errno(200), 0);
	CHECK_EQ(http_status_errno(206), 0);
	CHECK_EQ(http_status_errno(302), 0);
	CHECK_EQ(http_status_errno(400), -EINVAL);
	CHECK_EQ(http_status_errno(401), -EACCES);
	CHECK_EQ(http_status_errno(403), -EPERM);
	CHECK_EQ(http_status_errno(404), -ENOENT);
	CHECK_EQ(http_status_errno(409), -EEXIST);
	CHECK_EQ(http_status_errno(416), -ERANGE);
	CHECK_EQ(http_status_errno(429), -EAGAIN);
	CHECK_EQ(http_status_errno(503), -EAGAIN);
	CHECK_EQ(http_status_errno(507), -ENOSPC);
	CHECK_EQ(http_status_errno(418), -EINVAL);
	CHECK_EQ(http_status_errno(599), -EIO);
	CHECK_EQ(http_status_errno(0), -EIO);
}

static void test_lifecycle(void)
{
	struct http_config cfg = { 0 };
	struct http *h = NULL;
	struct http_request req = { 0 };
	struct http_response resp;
	struct http_stats st;

	http_response_init(&resp);
	CHECK(http_response_header(&resp, "x") == NULL);
	cfg.ca_file = "/nonexistent/ca.pem";
	CHECK_EQ(http_new(&cfg, &h), 0);
	CHECK(h != NULL);
	req.url = "ftp://example/";
	CHECK_EQ(http_do(h, &req, &resp), -EINVAL);
	req.url = NULL;
	CHECK_EQ(http_do(h, &req, &resp), -EINVAL);
	/* a closed port on loopback: refused, counted as a failure */
	req.url = "http://127.0.0.1:1/x";
	req.flags = HTTP_F_NO_RETRY;
	CHECK_EQ(http_do(h, &req, &resp), -ECONNREFUSED);
	CHECK_EQ(resp.status, 0);
	CHECK_EQ(strlen(resp.client_request_id), 36);
	http_stats_get(h, &st);
	CHECK_EQ(st.failures, 1);
	CHECK_EQ(st.requests, 1);
	http_response_release(&resp);
	http_free(h);
	http_free(NULL);
}

int main(void)
{
	RUN(test_retry_after);
	RUN(test_escape);
	RUN(test_origin);
	RUN(test_status);
	RUN(test_lifecycle);
	return check_done();
}
