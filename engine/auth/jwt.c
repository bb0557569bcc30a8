/* JWT client assertion (RS256) and claims decoding. */
#include "auth/auth_i.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <string.h>

#include "util/util.h"

/* Append base64url(JSON of @j). */
static int add_json_b64(struct buf *out, const cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);
	int rc;

	if (!s)
		return -ENOMEM;
	rc = util_b64_encode(out, s, strlen(s), true);
	cJSON_free(s);
	return rc;
}

int auth_jwt_assertion(const struct auth_cert *c, const char *client_id,
		       const char *aud, int64_t now, struct buf *out)
{
	struct auth_cert_info in;
	cJSON *hdr = cJSON_CreateObject(), *cl = cJSON_CreateObject();
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *sig = NULL;
	size_t siglen = 0, start = out->len;
	char jti[37];
	int ret = -ENOMEM;

	if (!hdr || !cl || !md)
		goto out;
	auth_cert_info(c, &in);
	ret = util_guid_new(jti);
	if (ret < 0)
		goto out;
	ret = -ENOMEM;
	if (!cJSON_AddStringToObject(hdr, "alg", "RS256") ||
	    !cJSON_AddStringToObject(hdr, "typ", "JWT") ||
	    !cJSON_AddStringToObject(hdr, "x5t", in.x5t) ||
	    !cJSON_AddStringToObject(hdr, "x5t#S256", in.x5t_s256))
		goto out;
	if (!cJSON_AddStringToObject(cl, "aud", aud) ||
	    !cJSON_AddStringToObject(cl, "iss", client_id) ||
	    !cJSON_AddStringToObject(cl, "sub", client_id) ||
	    !cJSON_AddStringToObject(cl, "jti", jti) ||
	    !cJSON_AddNumberToObject(cl, "nbf", (double)now) ||
	    !cJSON_AddNumberToObject(cl, "iat", (double)now) ||
	    !cJSON_AddNumberToObject(cl, "exp", (double)(now + 600)))
		goto out;
	ret = add_json_b64(out, hdr);
	if (!ret)
		ret = buf_addch(out, '.');
	if (!ret)
		ret = add_json_b64(out, cl);
	if (ret < 0)
		goto out;
	ret = -EIO;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, c->key) != 1 ||
	    EVP_DigestSign(md, NULL, &siglen,
			   (const unsigned char *)out->data + start,
			   out->len - start) != 1)
		goto out;
	sig = OPENSSL_malloc(siglen);
	if (!sig) {
		ret = -ENOMEM;
		goto out;
	}
	if (EVP_DigestSign(md, sig, &siglen,
			   (const unsigned char *)out->data + start,
			   out->len - start) != 1)
		goto out;
	ret = buf_addch(out, '.');
	if (!ret)
		ret = util_b64_encode(out, sig, siglen, true);
out:
	if (ret == -EIO)
		auth_ssl_fail(NULL, ret, "signing the client assertion");
	if (ret < 0)
		buf_truncate(out, start);
	OPENSSL_free(sig);
	EVP_MD_CTX_free(md);
	cJSON_Delete(hdr);
	cJSON_Delete(cl);
	return ret;
}

int auth_jwt_claims(const char *token, cJSON **out)
{
	const char *a = strchr(token, '.'), *b;
	struct buf json = BUF_INIT;
	int ret;

	*out = NULL;
	if (!a)
		return -EINVAL;
	b = strchr(a + 1, '.');
	if (!b)
		return -EINVAL;
	ret = util_b64_decode(&json, a + 1, (size_t)(b - a - 1));
	if (ret < 0)
		goto out;
	*out = cJSON_ParseWithLength(json.data, json.len);
	ret = *out && cJSON_IsObject(*out) ? 0 : -EINVAL;
	if (ret < 0) {
		cJSON_Delete(*out);
		*out = NULL;
	}
out:
	buf_release(&json);
	return ret;
}
