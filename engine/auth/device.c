/* Device-code flow (GRAPH-API.md §1.6) for the admin's delegated token. */
#include "auth/auth_i.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/util.h"

void auth_user_token_release(struct auth_user_token *t)
{
	if (t->access.alloc)
		explicit_bzero(t->access.data, t->access.alloc);
	if (t->refresh.alloc)
		explicit_bzero(t->refresh.data, t->refresh.alloc);
	buf_release(&t->access);
	buf_release(&t->refresh);
	t->expires_at = 0;
}

static const char *str_of(const cJSON *j, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int int_of(const cJSON *j, const char *key, int dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);

	if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e6)
		return (int)v->valuedouble;
	/* some endpoints send numbers as strings */
	if (cJSON_IsString(v))
		return atoi(v->valuestring);
	return dflt;
}

/* Take access/refresh tokens of a token answer into @tok. */
static int take_tokens(const cJSON *j, struct auth_user_token *tok,
		       struct auth_status *st)
{
	const char *acc = str_of(j, "access_token"), *ref;
	int rc;

	if (!acc || !*acc)
		return auth_status_set(
			st, -EBADMSG, NULL,
			"the sign-in answer has no 'access_token'");
	ref = str_of(j, "refresh_token");
	auth_user_token_release(tok);
	rc = buf_adds(&tok->access, acc);
	if (!rc && ref)
		rc = buf_adds(&tok->refresh, ref);
	tok->expires_at = util_now() + int_of(j, "expires_in", 3599);
	return rc;
}

static void sleep_s(int s)
{
	struct timespec ts = { s, 0 };

	while (nanosleep(&ts, &ts) < 0)
		;
}

static void wipe_delete(cJSON *j)
{
	static const char *const keys[] = { "access_token", "refresh_token",
					    "id_token", "device_code" };
	size_t i;

	for (i = 0; j && i < ARRAY_SIZE(keys); i++) {
		cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[i]);

		if (cJSON_IsString(v))
			explicit_bzero(v->valuestring, strlen(v->valuestring));
	}
	cJSON_Delete(j);
}

int auth_device_login(struct http *h, const char *login_url, const char *tenant,
		      const char *client_id, const char *scopes,
		      auth_device_fn fn, void *ctx, int max_wait_s,
		      struct auth_user_token *tok, struct auth_status *st)
{
	struct auth_names names = { tenant, client_id, NULL, NULL };
	struct buf url = BUF_INIT, form = BUF_INIT, code = BUF_INIT;
	struct auth_device_prompt pr;
	cJSON *j = NULL;
	int64_t deadline;
	int interval, expires, ret;

	memset(st, 0, sizeof(*st));
	ret = buf_addf(&url, "%s/%s/oauth2/v2.0/devicecode", login_url, tenant);
	if (!ret)
		ret = auth_form_add(&form, "client_id", client_id);
	if (!ret)
		ret = auth_form_add(&form, "scope", scopes);
	if (ret < 0)
		goto out;
	ret = auth_post_form(h, url.data, NULL, &form, &names, &j, st);
	if (ret < 0)
		goto out;
	pr.user_code = str_of(j, "user_code");
	pr.verification_uri = str_of(j, "verification_uri");
	pr.message = str_of(j, "message");
	if (!str_of(j, "device_code") || !pr.user_code ||
	    !pr.verification_uri) {
		ret = auth_status_set(
			st, -EBADMSG, NULL,
			"the device-code answer lacks 'device_code', 'user_code' or 'verification_uri'");
		goto out;
	}
	ret = buf_adds(&code, str_of(j, "device_code"));
	if (ret < 0)
		goto out;
	interval = int_of(j, "interval", 5);
	if (interval < 1)
		interval = 1;
	expires = int_of(j, "expires_in", 900);
	pr.expires_in = expires;
	fn(ctx, &pr);
	cJSON_Delete(j);
	j = NULL;
	if (max_wait_s <= 0 || max_wait_s > expires)
		max_wait_s = expires;
	deadline = util_mono_ms() + (int64_t)max_wait_s * 1000;

	buf_reset(&url);
	ret = buf_addf(&url, "%s/%s/oauth2/v2.0/token", login_url, tenant);
	if (ret < 0)
		goto out;
	for (;;) {
		if (util_mono_ms() + interval * 1000 > deadline) {
			ret = auth_status_set(
				st, -ETIMEDOUT,
				"run the command again and complete the sign-in in time",
				"the sign-in was not completed within %d seconds",
				max_wait_s);
			goto out;
		}
		sleep_s(interval);
		buf_reset(&form);
		ret = auth_form_add(
			&form, "grant_type",
			"urn:ietf:params:oauth:grant-type:device_code");
		if (!ret)
			ret = auth_form_add(&form, "client_id", client_id);
		if (!ret)
			ret = auth_form_add(&form, "device_code", code.data);
		if (ret < 0)
			goto out;
		ret = auth_post_form(h, url.data, NULL, &form, &names, &j, st);
		if (!ret)
			break;
		if (ret == -EINPROGRESS)
			continue;
		if (ret == -EAGAIN && !strcmp(st->error, "slow_down")) {
			interval += 5;
			continue;
		}
		goto out;
	}
	ret = take_tokens(j, tok, st);
	if (!ret)
		memset(st, 0, sizeof(*st));
out:
	wipe_delete(j);
	if (code.alloc)
		explicit_bzero(code.data, code.alloc);
	buf_release(&code);
	buf_release(&form);
	buf_release(&url);
	return ret;
}

int auth_device_refresh(struct http *h, const char *login_url,
			const char *tenant, const char *client_id,
			const char *scopes, struct auth_user_token *tok,
			struct auth_status *st)
{
	struct auth_names names = { tenant, client_id, NULL, NULL };
	struct buf url = BUF_INIT, form = BUF_INIT;
	cJSON *j = NULL;
	int ret;

	memset(st, 0, sizeof(*st));
	if (!tok->refresh.len)
		return auth_status_set(st, -EINVAL,
				       "sign in again (ask for offline_access)",
				       "no refresh token");
	ret = buf_addf(&url, "%s/%s/oauth2/v2.0/token", login_url, tenant);
	if (!ret)
		ret = auth_form_add(&form, "grant_type", "refresh_token");
	if (!ret)
		ret = auth_form_add(&form, "client_id", client_id);
	if (!ret)
		ret = auth_form_add(&form, "scope", scopes);
	if (!ret)
		ret = auth_form_add(&form, "refresh_token", tok->refresh.data);
	if (ret < 0)
		goto out;
	ret = auth_post_form(h, url.data, NULL, &form, &names, &j, st);
	if (!ret)
		ret = take_tokens(j, tok, st);
out:
	wipe_delete(j);
	if (form.alloc)
		explicit_bzero(form.data, form.alloc);
	buf_release(&form);
	buf_release(&url);
	return ret;
}
