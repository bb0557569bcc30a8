/*
 * Driver for tests/integration/test_connect.py: the token provider against
 * the emulator (cache, invalidate, concurrent callers, refresh before
 * expiry).  Needs $M365_EMU_READY (the emulator's ready file) and a mode
 * argument; without them it exits 77 (make check-unit does not run it).
 *
 *	test_auth_emu cache	get twice (one request), invalidate, 8 threads
 *				get at once (one more request)
 *	test_auth_emu refresh	get, sleep 2.5 s, get (the emulator's token
 *				lifetime is 4 s: a second request)
 *
 * pytest counts the token requests in the emulator's /stats.
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "check.h"
#include "http/http.h"
#include "util/util.h"

static struct auth *auth;
static char tokens[8][4096];

static const char *jstr(const cJSON *j, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static void *getter(void *arg)
{
	struct buf t = BUF_INIT;
	char *slot = arg;

	if (auth_token_get(auth, &t) == 0)
		snprintf(slot, sizeof(tokens[0]), "%s", t.data);
	buf_release(&t);
	return NULL;
}

static void test_cache(void)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	pthread_t th[8];
	int i;

	CHECK_EQ(auth_token_get(auth, &a), 0);
	CHECK_EQ(auth_token_get(auth, &b), 0);
	CHECK(a.len > 0);
	CHECK_STR(a.data, b.data);
	CHECK(auth_token_expiry(auth) > util_now());
	auth_token_invalidate(auth, "not the cached token");
	CHECK(auth_token_expiry(auth) > 0);
	auth_token_invalidate(auth, a.data);
	CHECK_EQ(auth_token_expiry(auth), 0);
	for (i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, getter, tokens[i]);
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 8; i++)
		CHECK_STR(tokens[i], tokens[0]);
	CHECK(tokens[0][0] != '\0');
	buf_release(&a);
	buf_release(&b);
}

static void test_refresh(void)
{
	struct buf a = BUF_INIT;
	int64_t e1, e2;

	CHECK_EQ(auth_token_get(auth, &a), 0);
	e1 = auth_token_expiry(auth);
	usleep(2500 * 1000);
	CHECK_EQ(auth_token_get(auth, &a), 0);
	e2 = auth_token_expiry(auth);
	CHECK(e2 > e1); /* a new token with a later expiry */
	buf_release(&a);
}

int main(int argc, char **argv)
{
	const char *ready = getenv("M365_EMU_READY");
	struct buf text = BUF_INIT;
	struct auth_cert *cert = NULL;
	struct auth_status st;
	struct auth_config cfg = { 0 };
	struct http_config hc = { 0 };
	struct http *h = NULL;
	cJSON *j, *b;

	if (!ready || argc < 2)
		return CHECK_SKIP;
	if (util_read_file(ready, &text, 1 << 20) < 0)
		return 1;
	j = cJSON_Parse(text.data);
	b = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(j, "apps"), "backup");
	if (auth_cert_load_pem(jstr(b, "cert_file"), jstr(b, "key_file"), &cert,
			       &st) < 0) {
		fprintf(stderr, "%s\n", st.what);
		return 1;
	}
	hc.ca_file = jstr(j, "ca_file");
	if (http_new(&hc, &h) < 0)
		return 1;
	cfg.login_url = jstr(j, "login_url");
	cfg.tenant = jstr(j, "tenant_id");
	cfg.client_id = jstr(b, "client_id");
	cfg.scope = "https://graph.microsoft.com/.default";
	cfg.cert = cert;
	if (auth_new(&cfg, h, &auth) < 0)
		return 1;
	if (!strcmp(argv[1], "cache"))
		RUN(test_cache);
	else if (!strcmp(argv[1], "refresh"))
		RUN(test_refresh);
	auth_free(auth);
	http_free(h);
	auth_cert_free(cert);
	cJSON_Delete(j);
	buf_release(&text);
	return check_done();
}
