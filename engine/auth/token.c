/* App-only access tokens: client credentials with a secret or a certificate. */
#include "auth/auth_i.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http.h"
#include "util/log.h"
#include "util/util.h"

#define REFRESH_MARGIN_S 300 /* refresh within 5 minutes of expiry */
#define TOKEN_CAP	 (64 * 1024)

struct auth {
	struct http *http;
	char *login_url, *tenant, *client_id, *scope, *connection;
	char *secret; /* wiped on free */
	const struct auth_cert *cert;
	char thumbprint[41];
	int propagation_s;
	int64_t (*clock)(void);

	pthread_mutex_t refresh; /* one token request at a time; outer */
	pthread_mutex_t lock; /* protects the fields below; inner */
	struct buf token;
	int64_t expires_at;
	int64_t refresh_at; /* expiry - 5 min, or half the lifetime if short */
	struct auth_status last;
};

int auth_form_add(struct buf *b, const char *key, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	int rc = 0;

	if (b->len)
		rc = buf_addch(b, '&');
	if (!rc)
		rc = buf_adds(b, key);
	if (!rc)
		rc = buf_addch(b, '=');
	for (p = (const unsigned char *)value; *p && !rc; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		    *p == '_' || *p == '~') {
			rc = buf_addch(b, *p);
		} else if (*p == ' ') {
			rc = buf_addch(b, '+');
		} else {
			rc = buf_addch(b, '%');
			if (!rc)
				rc = buf_addch(b, hex[*p >> 4]);
			if (!rc)
				rc = buf_addch(b, hex[*p & 15]);
		}
	}
	return rc;
}

int auth_post_form(struct http *h, const char *url, const char *ca_hint,
		   const struct buf *body, const struct auth_names *names,
		   cJSON **out, struct auth_status *st)
{
	static const char *const hdrs[] = {
		"Content-Type: application/x-www-form-urlencoded",
		"Accept: application/json", NULL
	};
	struct http_request req = {
		.method = "POST",
		.url = url,
		.headers = hdrs,
		.body = body->data,
		.body_len = body->len,
		.body_cap = TOKEN_CAP,
	};
	struct http_response resp;
	int rc;

	*out = NULL;
	memset(st, 0, sizeof(*st));
	http_response_init(&resp);
	rc = http_do(h, &req, &resp);
	if (rc < 0) {
		auth_error_transport(rc, url, ca_hint, st);
		goto out;
	}
	st->http_status = resp.status;
	if (resp.status != 200) {
		rc = auth_error_parse(resp.status, resp.body.data, names, st);
		goto out;
	}
	*out = cJSON_ParseWithLength(resp.body.data, resp.body.len);
	if (!*out || !cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		rc = auth_status_set(
			st, -EBADMSG, "check login_url of the connection",
			"the sign-in service answered with something that is not a token");
	}
out:
	http_response_release(&resp);
	return rc;
}

static char *dup_or_null(const char *s, int *rc)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*rc = -ENOMEM;
	return d;
}

int auth_new(const struct auth_config *cfg, struct http *h, struct auth **out)
{
	struct auth *a;
	int rc = 0;

	*out = NULL;
	if (!cfg->login_url || !cfg->tenant || !cfg->client_id || !cfg->scope ||
	    (!cfg->secret && !cfg->cert) || !h)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->http = h;
	a->login_url = dup_or_null(cfg->login_url, &rc);
	a->tenant = dup_or_null(cfg->tenant, &rc);
	a->client_id = dup_or_null(cfg->client_id, &rc);
	a->scope = dup_or_null(cfg->scope, &rc);
	a->connection = dup_or_null(cfg->connection, &rc);
	a->secret = dup_or_null(cfg->secret, &rc);
	a->cert = cfg->cert;
	a->propagation_s = cfg->propagation_s;
	a->clock = cfg->clock ? cfg->clock : util_now;
	buf_init(&a->token, TOKEN_CAP);
	pthread_mutex_init(&a->refresh, NULL);
	pthread_mutex_init(&a->lock, NULL);
	if (a->cert) {
		struct auth_cert_info in;

		auth_cert_info(a->cert, &in);
		memcpy(a->thumbprint, in.thumbprint, sizeof(a->thumbprint));
	}
	if (rc < 0) {
		auth_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

static void wipe_buf(struct buf *b)
{
	if (b->alloc)
		explicit_bzero(b->data, b->alloc);
	buf_release(b);
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	if (a->secret) {
		explicit_bzero(a->secret, strlen(a->secret));
		free(a->secret);
	}
	wipe_buf(&a->token);
	free(a->login_url);
	free(a->tenant);
	free(a->client_id);
	free(a->scope);
	free(a->connection);
	pthread_mutex_destroy(&a->refresh);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

static void names_of(const struct auth *a, struct auth_names *n)
{
	n->tenant = a->tenant;
	n->client_id = a->client_id;
	n->thumbprint = a->thumbprint[0] ? a->thumbprint : NULL;
	n->connection = a->connection;
}

/* One request to the token endpoint; on success the new token is cached. */
static int fetch(struct auth *a, struct auth_status *st)
{
	struct buf url = BUF_INIT, form = BUF_INIT, jwt = BUF_INIT;
	struct auth_names names;
	const cJSON *tok, *exp;
	cJSON *j = NULL;
	int64_t now = a->clock(), life;
	int ret;

	names_of(a, &names);
	ret = buf_addf(&url, "%s/%s/oauth2/v2.0/token", a->login_url,
		       a->tenant);
	if (!ret)
		ret = auth_form_add(&form, "client_id", a->client_id);
	if (!ret)
		ret = auth_form_add(&form, "scope", a->scope);
	if (!ret)
		ret = auth_form_add(&form, "grant_type", "client_credentials");
	if (ret < 0)
		goto out;
	if (a->cert) {
		ret = auth_cert_check(a->cert, now, st);
		if (ret < 0)
			goto out;
		ret = auth_jwt_assertion(a->cert, a->client_id, url.data, now,
					 &jwt);
		if (!ret)
			ret = auth_form_add(
				&form, "client_assertion_type",
				"urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
		if (!ret)
			ret = auth_form_add(&form, "client_assertion",
					    jwt.data);
	} else {
		ret = auth_form_add(&form, "client_secret", a->secret);
	}
	if (ret < 0)
		goto out;
	log_debug("token: requesting an app-only token for '%s' (%s) from %s",
		  a->client_id, a->cert ? "certificate" : "client secret",
		  url.data);
	ret = auth_post_form(a->http, url.data, NULL, &form, &names, &j, st);
	if (ret < 0)
		goto out;
	tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
	if (!cJSON_IsString(tok) || !*tok->valuestring ||
	    !cJSON_IsNumber(exp) || exp->valuedouble < 0) {
		ret = auth_status_set(
			st, -EBADMSG, "check login_url of the connection",
			"the token answer has no 'access_token' or 'expires_in'");
		goto out;
	}
	pthread_mutex_lock(&a->lock);
	wipe_buf(&a->token);
	buf_init(&a->token, TOKEN_CAP);
	ret = buf_adds(&a->token, tok->valuestring);
	life = (int64_t)exp->valuedouble;
	a->expires_at = ret ? 0 : now + life;
	a->refresh_at = ret ? 0
			    : now + (life > 2 * REFRESH_MARGIN_S
					     ? life - REFRESH_MARGIN_S
					     : life / 2);
	pthread_mutex_unlock(&a->lock);
	log_debug("token: received, valid for %lld s", (long long)life);
out:
	if (j) {
		/* the token text is in the parse tree: wipe it */
		tok = cJSON_GetObjectItemCaseSensitive(j, "access_token");
		if (cJSON_IsString(tok))
			explicit_bzero(tok->valuestring,
				       strlen(tok->valuestring));
		cJSON_Delete(j);
	}
	if (form.alloc)
		explicit_bzero(form.data, form.alloc);
	buf_release(&form);
	wipe_buf(&jwt);
	buf_release(&url);
	return ret;
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0)
		;
}

/* Copy the cached token if it is fresh enough; true when copied. */
static bool cached(struct auth *a, struct buf *token, int *rc)
{
	bool ok;

	pthread_mutex_lock(&a->lock);
	ok = a->token.len && a->refresh_at > a->clock();
	if (ok) {
		buf_reset(token);
		*rc = buf_add(token, a->token.data, a->token.len);
	}
	pthread_mutex_unlock(&a->lock);
	return ok;
}

int auth_token_get(struct auth *a, struct buf *token)
{
	struct auth_status st;
	int64_t start = util_mono_ms(), delay = 2000;
	int rc = 0;

	if (cached(a, token, &rc))
		return rc;
	pthread_mutex_lock(&a->refresh);
	/* another thread may have refreshed while we waited */
	if (cached(a, token, &rc))
		goto out;
	for (;;) {
		memset(&st, 0, sizeof(st));
		rc = fetch(a, &st);
		if (!rc || (st.aadsts != 700016 && st.aadsts != 7000215 &&
			    rc != -EAGAIN))
			break;
		/* propagation after registration, or throttling: retry */
		if (util_mono_ms() - start + delay >
		    (int64_t)a->propagation_s * 1000)
			break;
		log_info("token: %s; retrying in %lld s", st.what,
			 (long long)(delay / 1000));
		sleep_ms(delay);
		if (delay < 16000)
			delay *= 2;
	}
	pthread_mutex_lock(&a->lock);
	a->last = st;
	pthread_mutex_unlock(&a->lock);
	if (rc < 0) {
		log_err("%s", st.what);
		goto out;
	}
	pthread_mutex_lock(&a->lock);
	buf_reset(token);
	rc = buf_add(token, a->token.data, a->token.len);
	pthread_mutex_unlock(&a->lock);
out:
	pthread_mutex_unlock(&a->refresh);
	return rc;
}

void auth_token_invalidate(struct auth *a, const char *token)
{
	pthread_mutex_lock(&a->lock);
	if (token && a->token.len && !strcmp(a->token.data, token)) {
		explicit_bzero(a->token.data, a->token.len);
		buf_reset(&a->token);
		a->expires_at = a->refresh_at = 0;
	}
	pthread_mutex_unlock(&a->lock);
}

void auth_last_status(struct auth *a, struct auth_status *st)
{
	pthread_mutex_lock(&a->lock);
	*st = a->last;
	pthread_mutex_unlock(&a->lock);
}

int64_t auth_token_expiry(struct auth *a)
{
	int64_t t;

	pthread_mutex_lock(&a->lock);
	t = a->token.len ? a->expires_at : 0;
	pthread_mutex_unlock(&a->lock);
	return t;
}
