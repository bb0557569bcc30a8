/* Certificates: load (PEM, PKCS#12), check, generate, save. */
#include "auth/auth_i.h"

#include <errno.h>
#include <pthread.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/util.h"

int auth_status_set(struct auth_status *st, int rc, const char *hint,
		    const char *fmt, ...)
{
	va_list ap;

	if (!st)
		return rc;
	st->rc = rc;
	va_start(ap, fmt);
	vsnprintf(st->what, sizeof(st->what), fmt, ap);
	va_end(ap);
	snprintf(st->hint, sizeof(st->hint), "%s", hint ? hint : "");
	return rc;
}

int auth_ssl_fail(struct auth_status *st, int rc, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char detail[256] = "";

	if (e)
		ERR_error_string_n(e, detail, sizeof(detail));
	log_debug("openssl: %s: %s", what, detail);
	ERR_clear_error();
	if (st)
		snprintf(st->detail, sizeof(st->detail), "%s", detail);
	return auth_status_set(st, rc, NULL, "%s", what);
}

void auth_cert_free(struct auth_cert *c)
{
	if (!c)
		return;
	X509_free(c->x509);
	EVP_PKEY_free(c->key);
	free(c);
}

static BIO *open_file(const char *path, const char *what,
		      struct auth_status *st, int *rc)
{
	BIO *b;
	FILE *f = fopen(path, "rb");

	if (!f) {
		*rc = -errno;
		auth_status_set(
			st, *rc, *rc == -ENOENT ? "check the path" : NULL,
			"cannot open %s '%s': %s", what, path, strerror(-*rc));
		return NULL;
	}
	b = BIO_new_fp(f, BIO_CLOSE);
	if (!b) {
		fclose(f);
		*rc = -ENOMEM;
	}
	return b;
}

/* The key must be RSA and belong to the certificate. */
static int check_pair(struct auth_cert *c, const char *path,
		      struct auth_status *st)
{
	if (EVP_PKEY_get_base_id(c->key) != EVP_PKEY_RSA)
		return auth_status_set(
			st, -EKEYREJECTED,
			"Entra ID client assertions here use RSA keys: create one with 'm365-connect cert new'",
			"the private key in '%s' is not an RSA key", path);
	if (X509_check_private_key(c->x509, c->key) != 1) {
		ERR_clear_error();
		return auth_status_set(
			st, -EKEYREJECTED,
			"give the key file that was created with this certificate",
			"the private key does not belong to the certificate in '%s'",
			path);
	}
	return 0;
}

int auth_cert_load_pem(const char *cert_path, const char *key_path,
		       struct auth_cert **out, struct auth_status *st)
{
	struct auth_cert *c = calloc(1, sizeof(*c));
	BIO *b = NULL;
	int ret = 0;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	b = open_file(cert_path, "certificate file", st, &ret);
	if (!b)
		goto out;
	c->x509 = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (!c->x509) {
		ret = auth_ssl_fail(st, -EBADMSG, "no PEM certificate");
		auth_status_set(
			st, -EBADMSG,
			"give a PEM file with '-----BEGIN CERTIFICATE-----', or a .pfx with --pfx",
			"'%s' holds no PEM certificate", cert_path);
		goto out;
	}
	if (key_path && strcmp(key_path, cert_path)) {
		BIO_free(b);
		b = open_file(key_path, "key file", st, &ret);
		if (!b)
			goto out;
	} else {
		key_path = cert_path;
		BIO_free(b);
		b = open_file(cert_path, "certificate file", st, &ret);
		if (!b)
			goto out;
	}
	c->key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	if (!c->key) {
		ret = auth_ssl_fail(st, -EBADMSG, "no PEM key");
		auth_status_set(
			st, -EBADMSG,
			"give the private key with --key FILE (unencrypted PEM)",
			"'%s' holds no (unencrypted) PEM private key",
			key_path);
		goto out;
	}
	ret = check_pair(c, key_path, st);
out:
	BIO_free(b);
	if (ret < 0)
		auth_cert_free(c);
	else
		*out = c;
	return ret;
}

/*
 * PFX files exported by older Windows versions protect the certificate with
 * RC2 or 40-bit RC4, which OpenSSL 3 keeps in its "legacy" provider.  Load
 * it (and "default", which loading any provider explicitly would otherwise
 * switch off) the first time such a file is met.
 */
static pthread_once_t legacy_once = PTHREAD_ONCE_INIT;
static bool legacy_loaded;
static OSSL_PROVIDER *legacy_prov, *default_prov; /* kept for the process */

static void load_legacy(void)
{
	legacy_prov = OSSL_PROVIDER_load(NULL, "legacy");
	default_prov = OSSL_PROVIDER_load(NULL, "default");
	legacy_loaded = legacy_prov && default_prov;
	ERR_clear_error();
}

static bool parse_pfx(PKCS12 *p12, const char *password, struct auth_cert *c)
{
	if (PKCS12_parse(p12, password, &c->key, &c->x509, NULL) && c->key &&
	    c->x509)
		return true;
	EVP_PKEY_free(c->key);
	X509_free(c->x509);
	c->key = NULL;
	c->x509 = NULL;
	ERR_clear_error();
	pthread_once(&legacy_once, load_legacy);
	return legacy_loaded &&
	       PKCS12_parse(p12, password, &c->key, &c->x509, NULL) && c->key &&
	       c->x509;
}

int auth_cert_load_pfx(const char *path, const char *password,
		       struct auth_cert **out, struct auth_status *st)
{
	struct auth_cert *c = calloc(1, sizeof(*c));
	PKCS12 *p12 = NULL;
	BIO *b = NULL;
	int ret = 0;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	if (!password)
		password = "";
	b = open_file(path, "PFX file", st, &ret);
	if (!b)
		goto out;
	p12 = d2i_PKCS12_bio(b, NULL);
	if (!p12) {
		ret = auth_ssl_fail(st, -EBADMSG, "not PKCS#12");
		auth_status_set(
			st, -EBADMSG,
			"give a .pfx/.p12 file, or PEM files with --cert/--key",
			"'%s' is not a PKCS#12 (.pfx) file", path);
		goto out;
	}
	if (!PKCS12_verify_mac(p12, password, -1)) {
		ERR_clear_error();
		ret = auth_status_set(
			st, -EACCES,
			"give the password the .pfx was exported with (--password-file FILE)",
			"wrong password for PFX file '%s'", path);
		goto out;
	}
	if (!parse_pfx(p12, password, c)) {
		ret = auth_ssl_fail(st, -EBADMSG, "PKCS12_parse");
		auth_status_set(
			st, -EBADMSG,
			"export the certificate with its private key (and a modern cipher: AES-256)",
			"PFX file '%s' does not hold a certificate and its private key (or uses an unsupported cipher)",
			path);
		goto out;
	}
	ret = check_pair(c, path, st);
out:
	PKCS12_free(p12);
	BIO_free(b);
	if (ret < 0)
		auth_cert_free(c);
	else
		*out = c;
	return ret;
}

static int64_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

void auth_cert_info(const struct auth_cert *c, struct auth_cert_info *info)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	struct buf b = BUF_INIT;
	BIO *mem;
	char *p;
	long len;

	memset(info, 0, sizeof(*info));
	mem = BIO_new(BIO_s_mem());
	if (mem) {
		X509_NAME_print_ex(mem, X509_get_subject_name(c->x509), 0,
				   XN_FLAG_RFC2253);
		len = BIO_get_mem_data(mem, &p);
		if (len > 0)
			snprintf(info->subject, sizeof(info->subject), "%.*s",
				 (int)len, p);
		BIO_free(mem);
	}
	if (X509_digest(c->x509, EVP_sha1(), md, &n) == 1 && n == 20) {
		util_hex(info->thumbprint, md, n, true);
		if (util_b64_encode(&b, md, n, true) == 0)
			snprintf(info->x5t, sizeof(info->x5t), "%s", b.data);
	}
	buf_reset(&b);
	if (X509_digest(c->x509, EVP_sha256(), md, &n) == 1 && n == 32 &&
	    util_b64_encode(&b, md, n, true) == 0)
		snprintf(info->x5t_s256, sizeof(info->x5t_s256), "%s", b.data);
	buf_release(&b);
	info->not_before = asn1_time(X509_get0_notBefore(c->x509));
	info->not_after = asn1_time(X509_get0_notAfter(c->x509));
	info->bits = EVP_PKEY_get_bits(c->key);
}

int auth_cert_check(const struct auth_cert *c, int64_t now,
		    struct auth_status *st)
{
	struct auth_cert_info in;
	char when[32];

	auth_cert_info(c, &in);
	if (in.bits < AUTH_MIN_RSA_BITS)
		return auth_status_set(
			st, -EKEYREJECTED,
			"Entra ID requires RSA keys of at least 2048 bits: create a new certificate with 'm365-connect cert new'",
			"the key of certificate '%s' has %d bits, fewer than %d",
			in.subject, in.bits, AUTH_MIN_RSA_BITS);
	if (in.not_after && now > in.not_after) {
		util_time_format(in.not_after, when, sizeof(when));
		return auth_status_set(
			st, -EKEYEXPIRED,
			"create a new certificate and register it on the app ('m365-connect cert renew NAME')",
			"certificate '%s' (thumbprint %s) expired on %s",
			in.subject, in.thumbprint, when);
	}
	if (in.not_before && now < in.not_before) {
		util_time_format(in.not_before, when, sizeof(when));
		return auth_status_set(
			st, -EKEYREJECTED,
			"check the system clock (NTP), or wait until the certificate becomes valid",
			"certificate '%s' (thumbprint %s) is not valid before %s",
			in.subject, in.thumbprint, when);
	}
	return 0;
}

int auth_cert_der(const struct auth_cert *c, struct buf *out)
{
	unsigned char *der = NULL;
	int n = i2d_X509(c->x509, &der), rc;

	if (n <= 0)
		return -ENOMEM;
	rc = buf_add(out, der, (size_t)n);
	OPENSSL_free(der);
	return rc;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EINVAL;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -ENOMEM;
}

int auth_cert_generate(const char *cn, int bits, int days,
		       struct auth_cert **out)
{
	struct auth_cert *c = calloc(1, sizeof(*c));
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	X509_NAME *name;
	int ret = -EIO;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	if (bits < 1024 || bits > 8192 || days < 1 || days > 3650 || !*cn) {
		ret = -EINVAL;
		goto out;
	}
	c->key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	c->x509 = X509_new();
	if (!c->key || !c->x509)
		goto out;
	ret = util_random(serial, sizeof(serial));
	if (ret < 0)
		goto out;
	ret = -EIO;
	serial[0] &= 0x7f; /* positive */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c->x509)))
		goto out;
	if (!X509_set_version(c->x509, 2) ||
	    !X509_gmtime_adj(X509_getm_notBefore(c->x509), -300) ||
	    !X509_gmtime_adj(X509_getm_notAfter(c->x509), (long)days * 86400L))
		goto out;
	name = X509_get_subject_name(c->x509);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
					(const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(c->x509, name) ||
	    !X509_set_pubkey(c->x509, c->key))
		goto out;
	if (add_ext(c->x509, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(c->x509, NID_key_usage,
		    "critical,digitalSignature,keyEncipherment") ||
	    add_ext(c->x509, NID_ext_key_usage, "clientAuth") ||
	    add_ext(c->x509, NID_subject_key_identifier, "hash"))
		goto out;
	if (!X509_sign(c->x509, c->key, EVP_sha256()))
		goto out;
	ret = 0;
out:
	BN_free(bn);
	if (ret < 0) {
		auth_ssl_fail(NULL, ret, "certificate generation");
		auth_cert_free(c);
	} else {
		*out = c;
	}
	return ret;
}

static int pem_to(BIO *mem, struct buf *out)
{
	char *p;
	long len = BIO_get_mem_data(mem, &p);

	if (len <= 0)
		return -EIO;
	return buf_add(out, p, (size_t)len);
}

int auth_cert_save(const struct auth_cert *c, const char *cert_path,
		   const char *key_path)
{
	struct buf cert = BUF_INIT, key = BUF_INIT;
	BIO *mem = BIO_new(BIO_s_mem()), *kmem = BIO_new(BIO_s_mem());
	int ret = -EIO;

	if (!mem || !kmem) {
		ret = -ENOMEM;
		goto out;
	}
	if (!PEM_write_bio_X509(mem, c->x509) ||
	    !PEM_write_bio_PrivateKey(kmem, c->key, NULL, NULL, 0, NULL, NULL))
		goto out;
	ret = pem_to(mem, &cert);
	if (!ret)
		ret = pem_to(kmem, &key);
	if (ret < 0)
		goto out;
	if (!key_path || !strcmp(key_path, cert_path)) {
		ret = buf_add(&cert, key.data, key.len);
		if (!ret)
			ret = util_write_file_atomic(cert_path, cert.data,
						     cert.len, 0600);
		goto out;
	}
	ret = util_write_file_atomic(key_path, key.data, key.len, 0600);
	if (!ret)
		ret = util_write_file_atomic(cert_path, cert.data, cert.len,
					     0600);
out:
	if (key.alloc)
		OPENSSL_cleanse(key.data, key.alloc);
	buf_release(&key);
	buf_release(&cert);
	if (kmem) {
		char *p;
		long len = BIO_get_mem_data(kmem, &p);

		if (len > 0)
			OPENSSL_cleanse(p, (size_t)len);
	}
	BIO_free(kmem);
	BIO_free(mem);
	ERR_clear_error();
	return ret;
}
