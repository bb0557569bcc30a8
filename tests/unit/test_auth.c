/*
 * Unit tests of engine/auth without network: certificates (generated here
 * with OpenSSL; no key is committed), the JWT client assertion verified
 * with OpenSSL against the certificate, AADSTS mapping, form encoding.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth_i.h"
#include "check.h"
#include "util/util.h"

static struct auth_cert *cert; /* RSA 2048, made once */
static char dir[] = "/tmp/test_auth_XXXXXX";
static const char *const made[] = { "c.pem", "c.key", "both.pem", "o.pem",
				    "o.key", "c.pfx", "l.pfx" };

static char *path_in(const char *name)
{
	static char p[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void test_generate_save_load(void)
{
	struct auth_cert *c = NULL;
	struct auth_cert_info a, b;
	struct auth_status st = { 0 };
	struct stat sb;

	CHECK_EQ(auth_cert_generate("m365fs test", 2048, 365, &cert), 0);
	if (!cert)
		return;
	auth_cert_info(cert, &a);
	CHECK_STR(a.subject, "CN=m365fs test");
	CHECK_EQ(a.bits, 2048);
	CHECK(a.not_after - a.not_before >= 365 * 86400);
	CHECK_EQ(strlen(a.thumbprint), 40);
	CHECK_EQ(strlen(a.x5t), 27);
	CHECK_EQ(strlen(a.x5t_s256), 43);
	CHECK_EQ(auth_cert_check(cert, util_now(), &st), 0);

	/* two files, both 0600 */
	CHECK_EQ(auth_cert_save(cert, path_in("c.pem"), path_in("c.key")), 0);
	CHECK_EQ(stat(path_in("c.pem"), &sb), 0);
	CHECK_EQ(sb.st_mode & 0777, 0600);
	CHECK_EQ(stat(path_in("c.key"), &sb), 0);
	CHECK_EQ(sb.st_mode & 0777, 0600);
	CHECK_EQ(
		auth_cert_load_pem(path_in("c.pem"), path_in("c.key"), &c, &st),
		0);
	if (c) {
		auth_cert_info(c, &b);
		CHECK_STR(a.thumbprint, b.thumbprint);
	}
	auth_cert_free(c);

	/* one file with both */
	CHECK_EQ(auth_cert_save(cert, path_in("both.pem"), NULL), 0);
	CHECK_EQ(auth_cert_load_pem(path_in("both.pem"), NULL, &c, &st), 0);
	auth_cert_free(c);

	/* the certificate alone has no key */
	CHECK_EQ(auth_cert_load_pem(path_in("c.pem"), NULL, &c, &st), -EBADMSG);
	CHECK(c == NULL);
	CHECK(strstr(st.what, "no (unencrypted) PEM private key") != NULL);
	CHECK_EQ(auth_cert_load_pem(path_in("missing.pem"), NULL, &c, &st),
		 -ENOENT);
}

/* The thumbprint is SHA-1 of the DER in upper-case hex (as Entra shows). */
static void test_thumbprint(void)
{
	struct buf der = BUF_INIT, b = BUF_INIT;
	struct auth_cert_info in;
	unsigned char md[SHA_DIGEST_LENGTH], md256[SHA256_DIGEST_LENGTH];
	char hex[41];

	if (!cert)
		return;
	auth_cert_info(cert, &in);
	CHECK_EQ(auth_cert_der(cert, &der), 0);
	SHA1((unsigned char *)der.data, der.len, md);
	util_hex(hex, md, sizeof(md), true);
	CHECK_STR(in.thumbprint, hex);
	util_b64_encode(&b, md, sizeof(md), true);
	CHECK_STR(in.x5t, b.data);
	buf_reset(&b);
	SHA256((unsigned char *)der.data, der.len, md256);
	util_b64_encode(&b, md256, sizeof(md256), true);
	CHECK_STR(in.x5t_s256, b.data);
	buf_release(&b);
	buf_release(&der);
}

static void test_key_mismatch(void)
{
	struct auth_cert *other = NULL, *c = NULL;
	struct auth_status st = { 0 };

	if (!cert)
		return;
	CHECK_EQ(auth_cert_generate("other", 2048, 30, &other), 0);
	if (!other)
		return;
	CHECK_EQ(auth_cert_save(other, path_in("o.pem"), path_in("o.key")), 0);
	CHECK_EQ(
		auth_cert_load_pem(path_in("c.pem"), path_in("o.key"), &c, &st),
		-EKEYREJECTED);
	CHECK(strstr(st.what, "does not belong") != NULL);
	auth_cert_free(other);
}

static void test_short_and_expired(void)
{
	struct auth_cert *weak = NULL;
	struct auth_status st = { 0 };
	struct auth_cert_info in;

	CHECK_EQ(auth_cert_generate("weak", 1024, 30, &weak), 0);
	if (weak) {
		CHECK_EQ(auth_cert_check(weak, util_now(), &st), -EKEYREJECTED);
		CHECK(strstr(st.what, "1024 bits") != NULL);
	}
	auth_cert_free(weak);
	if (!cert)
		return;
	auth_cert_info(cert, &in);
	CHECK_EQ(auth_cert_check(cert, in.not_after + 1, &st), -EKEYEXPIRED);
	CHECK(strstr(st.what, "expired on") != NULL);
	CHECK(strstr(st.what, in.thumbprint) != NULL);
	CHECK_EQ(auth_cert_check(cert, in.not_before - 1, &st), -EKEYREJECTED);
	CHECK(strstr(st.hint, "NTP") != NULL);
}

static void test_pfx(void)
{
	struct auth_cert *c = NULL;
	struct auth_status st = { 0 };
	struct auth_cert_info a, b;
	PKCS12 *p12;
	FILE *f;

	if (!cert)
		return;
	p12 = PKCS12_create("pw 1", "m365fs", cert->key, cert->x509, NULL, 0, 0,
			    0, 0, 0);
	CHECK(p12 != NULL);
	if (!p12)
		return;
	f = fopen(path_in("c.pfx"), "wb");
	CHECK(f != NULL);
	if (f) {
		i2d_PKCS12_fp(f, p12);
		fclose(f);
	}
	PKCS12_free(p12);
	CHECK_EQ(auth_cert_load_pfx(path_in("c.pfx"), "pw 1", &c, &st), 0);
	if (c) {
		auth_cert_info(c, &b);
		auth_cert_info(cert, &a);
		CHECK_STR(a.thumbprint, b.thumbprint);
	}
	auth_cert_free(c);
	CHECK_EQ(auth_cert_load_pfx(path_in("c.pfx"), "wrong", &c, &st),
		 -EACCES);
	CHECK(strstr(st.what, "wrong password") != NULL);
	CHECK_EQ(auth_cert_load_pfx(path_in("c.pem"), "", &c, &st), -EBADMSG);
}

/* an RC2-protected PFX as older Windows exports it (OpenSSL's legacy
   provider), made by the openssl command so this process has not loaded
   that provider before the call */
static void test_pfx_legacy(void)
{
	struct auth_cert *c = NULL;
	struct auth_status st = { 0 };
	struct auth_cert_info a, b;
	char cmd[1024];

	if (!cert)
		return;
	snprintf(cmd, sizeof(cmd),
		 "openssl pkcs12 -export -legacy -in '%s' -inkey '%s' "
		 "-out '%s' -passout pass:pw >/dev/null 2>&1",
		 path_in("c.pem"), path_in("c.key"), path_in("l.pfx"));
	CHECK_EQ(system(cmd), 0);
	CHECK_EQ(auth_cert_load_pfx(path_in("l.pfx"), "pw", &c, &st), 0);
	if (c) {
		auth_cert_info(c, &b);
		auth_cert_info(cert, &a);
		CHECK_STR(a.thumbprint, b.thumbprint);
	}
	auth_cert_free(c);
}

static cJSON *decode_part(const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	cJSON *j = NULL;

	if (util_b64_decode(&b, s, n) == 0)
		j = cJSON_ParseWithLength(b.data, b.len);
	buf_release(&b);
	return j;
}

static const char *jstr(const cJSON *j, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *j, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Verify the assertion the way Entra does, with OpenSSL directly. */
static void test_jwt(void)
{
	static const char aud[] =
		"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
	static const char cid[] = "01234567-89ab-cdef-0123-456789abcdef";
	struct buf jwt = BUF_INIT, sig = BUF_INIT, jwt2 = BUF_INIT;
	struct auth_cert_info in;
	const char *d1, *d2;
	cJSON *hdr = NULL, *cl = NULL, *cl2 = NULL;
	EVP_MD_CTX *md;
	EVP_PKEY *pub;
	int64_t now = 1795226400;

	if (!cert)
		return;
	auth_cert_info(cert, &in);
	CHECK_EQ(auth_jwt_assertion(cert, cid, aud, now, &jwt), 0);
	d1 = strchr(jwt.data, '.');
	d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	CHECK(d1 && d2 && !strchr(d2 + 1, '.'));
	if (!d1 || !d2)
		goto out;
	CHECK(!strpbrk(jwt.data, "=+/")); /* base64url, no padding */

	hdr = decode_part(jwt.data, (size_t)(d1 - jwt.data));
	CHECK_STR(jstr(hdr, "alg"), "RS256");
	CHECK_STR(jstr(hdr, "typ"), "JWT");
	CHECK_STR(jstr(hdr, "x5t"), in.x5t);
	CHECK_STR(jstr(hdr, "x5t#S256"), in.x5t_s256);

	cl = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
	CHECK_STR(jstr(cl, "aud"), aud);
	CHECK_STR(jstr(cl, "iss"), cid);
	CHECK_STR(jstr(cl, "sub"), cid);
	CHECK(jstr(cl, "jti") && util_guid_valid(jstr(cl, "jti")));
	CHECK_EQ((int64_t)jnum(cl, "nbf"), now);
	CHECK_EQ((int64_t)jnum(cl, "iat"), now);
	CHECK_EQ((int64_t)jnum(cl, "exp"), now + 600);

	/* signature: RS256 over "header.payload" with the cert's public key */
	CHECK_EQ(util_b64_decode(&sig, d2 + 1, strlen(d2 + 1)), 0);
	pub = X509_get0_pubkey(cert->x509);
	md = EVP_MD_CTX_new();
	CHECK_EQ(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
	CHECK_EQ(EVP_DigestVerify(md, (unsigned char *)sig.data, sig.len,
				  (unsigned char *)jwt.data,
				  (size_t)(d2 - jwt.data)),
		 1);
	/* and a tampered payload fails */
	CHECK_EQ(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub), 1);
	CHECK(EVP_DigestVerify(md, (unsigned char *)sig.data, sig.len,
			       (unsigned char *)jwt.data,
			       (size_t)(d2 - jwt.data) - 1) != 1);
	EVP_MD_CTX_free(md);

	/* every assertion gets its own jti */
	CHECK_EQ(auth_jwt_assertion(cert, cid, aud, now, &jwt2), 0);
	CHECK_EQ(auth_jwt_claims(jwt2.data, &cl2), 0);
	CHECK(jstr(cl2, "jti") && jstr(cl, "jti") &&
	      strcmp(jstr(cl2, "jti"), jstr(cl, "jti")));
out:
	cJSON_Delete(hdr);
	cJSON_Delete(cl);
	cJSON_Delete(cl2);
	buf_release(&sig);
	buf_release(&jwt);
	buf_release(&jwt2);
}

static void test_error_map(void)
{
	static const struct {
		long code;
		const char *error;
		int rc;
		const char *word; /* in what or hint */
	} cases[] = {
		{ 90002, "invalid_request", -ENXIO,
		  "tenant 'T' was not found" },
		{ 900023, "invalid_request", -ENXIO, "neither a GUID" },
		{ 700016, "unauthorized_client", -ENOENT,
		  "application 'C' was not found" },
		{ 7000215, "invalid_client", -EACCES, "not its Secret ID" },
		{ 7000222, "invalid_client", -EKEYEXPIRED, "has expired" },
		{ 7000218, "invalid_request", -EINVAL, "no client credential" },
		{ 700027, "invalid_client", -EKEYREJECTED, "thumbprint ABCD" },
		{ 700024, "invalid_client", -ETIME, "NTP" },
		{ 50027, "invalid_client", -EPROTO, "malformed" },
		{ 50048, "invalid_client", -EPROTO, "malformed" },
		{ 500011, "invalid_resource", -EREMOTE, "--cloud" },
		{ 1002012, "invalid_scope", -EINVAL, "scope" },
		{ 70011, "invalid_scope", -EINVAL, "scope" },
		{ 65001, "invalid_grant", -EPERM, "m365-connect grant work" },
		{ 50196, "invalid_request", -ELOOP, "too many" },
		{ 90055, "", -EAGAIN, "throttled" },
		{ 70016, "authorization_pending", -EINPROGRESS, "waiting" },
		{ 70019, "expired_token", -ETIMEDOUT, "expired" },
		{ 0, "slow_down", -EAGAIN, "polling" },
		{ 70016, "slow_down", -EAGAIN, "polling" },
		{ 0, "authorization_declined", -ECANCELED, "declined" },
		{ 0, "bad_verification_code", -EINVAL, "not accepted" },
		{ 12345, "invalid_client", -EACCES, "AADSTS12345" },
	};
	struct auth_names nm = { "T", "C", "ABCD", "work" };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct auth_status st = { 0 };
		char both[1600];
		int rc =
			auth_error_map(cases[i].code, cases[i].error, &nm, &st);

		snprintf(both, sizeof(both), "%s | %s", st.what, st.hint);
		if (rc != cases[i].rc || !strstr(both, cases[i].word))
			fprintf(stderr, "case %ld: rc %d '%s'\n", cases[i].code,
				rc, both);
		CHECK_EQ(rc, cases[i].rc);
		CHECK_EQ(st.rc, rc);
		CHECK(strstr(both, cases[i].word) != NULL);
	}
}

/* The §1.4 shape: code from error_codes, detail = first line only. */
static void test_error_parse(void)
{
	static const char body[] =
		"{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: Invalid client secret provided.\\r\\nTrace ID: 1\\r\\nCorrelation ID: 2\",\"error_codes\":[7000215],\"timestamp\":\"2016-01-09 02:02:12Z\"}";
	static const char nocodes[] =
		"{\"error\":\"invalid_request\",\"error_description\":\"AADSTS90002: Tenant 'x' not found.\\r\\nTrace ID: 1\"}";
	struct auth_status st = { 0 };

	CHECK_EQ(auth_error_parse(401, body, NULL, &st), -EACCES);
	CHECK_EQ(st.aadsts, 7000215);
	CHECK_EQ(st.http_status, 401);
	CHECK_STR(st.error, "invalid_client");
	CHECK_STR(st.detail, "AADSTS7000215: Invalid client secret provided.");
	CHECK_EQ(auth_error_parse(400, nocodes, NULL, &st), -ENXIO);
	CHECK_EQ(st.aadsts, 90002);
	CHECK_EQ(auth_error_parse(502, "<html>", NULL, &st), -EIO);
	CHECK_EQ(auth_error_parse(429, "", NULL, &st), -EAGAIN);
}

static void test_transport_errors(void)
{
	struct auth_status st = { 0 };

	CHECK_EQ(auth_error_transport(-EPERM, "https://127.0.0.1:8443/t/x",
				      "/tmp/ca.pem", &st),
		 -EPERM);
	CHECK(strstr(st.what,
		     "TLS certificate of '127.0.0.1:8443' is not trusted") !=
	      NULL);
	CHECK(strstr(st.what, "/tmp/ca.pem") != NULL);
	CHECK_EQ(auth_error_transport(-ECONNREFUSED, "https://h/", NULL, &st),
		 -ECONNREFUSED);
	CHECK(strstr(st.what, "'h' was refused") != NULL);
}

static void test_form(void)
{
	struct buf b = BUF_INIT;

	CHECK_EQ(auth_form_add(&b, "scope",
			       "https://graph.microsoft.com/.default"),
		 0);
	CHECK_EQ(auth_form_add(&b, "s", "a b&c=d+e~"), 0);
	CHECK_STR(
		b.data,
		"scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&s=a+b%26c%3Dd%2Be~");
	buf_release(&b);
}

static void test_roles(void)
{
	const struct auth_role *r;
	size_t n = 0, i;
	int user = 0;

	r = auth_roles_needed(0x7, &n);
	CHECK_EQ(n, 4);
	for (i = 0; i < n; i++) {
		CHECK(auth_role_by_name(r[i].name) != NULL);
		CHECK_STR(auth_role_by_name(r[i].name)->id, r[i].id);
		user += !strcmp(r[i].name, "User.Read.All");
	}
	CHECK_EQ(user, 1); /* no duplicate */
	CHECK(r[n].name == NULL);
	r = auth_roles_needed(0x4, &n);
	CHECK_EQ(n, 2);
	CHECK_STR(r[0].name, "Mail.ReadWrite");
	CHECK_STR(auth_role_by_name("Sites.Read.All")->id,
		  "332a536c-c7ef-4017-ab91-336970924f0d");
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(test_generate_save_load);
	RUN(test_thumbprint);
	RUN(test_key_mismatch);
	RUN(test_short_and_expired);
	RUN(test_pfx);
	RUN(test_pfx_legacy);
	RUN(test_jwt);
	RUN(test_error_map);
	RUN(test_error_parse);
	RUN(test_transport_errors);
	RUN(test_form);
	RUN(test_roles);
	auth_cert_free(cert);
	for (size_t i = 0; i < ARRAY_SIZE(made); i++)
		unlink(path_in(made[i]));
	rmdir(dir);
	return check_done();
}
