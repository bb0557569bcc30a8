/*
 * crypt.c - keys, chunk ids, AES-256-GCM, the plain-payload checksum and
 * the key helpers of the tools.  OpenSSL errors are mapped here only.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/sha.h>

#include "store/store_i.h"
#include "util/log.h"
#include "util/util.h"

int ssl_errno(const char *what)
{
	unsigned long e = ERR_get_error();
	char msg[256];

	if (!e) {
		log_err("store: %s failed", what);
		return -EIO;
	}
	ERR_error_string_n(e, msg, sizeof(msg));
	ERR_clear_error();
	log_err("store: %s failed: %s", what, msg);
	if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
		return -ENOMEM;
	return -EIO;
}

static int hkdf(const unsigned char *key, const unsigned char salt[16],
		const char *info, unsigned char out[32])
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t len = 32;
	int ret = 0;

	if (!c || EVP_PKEY_derive_init(c) <= 0 ||
	    EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) <= 0 ||
	    EVP_PKEY_CTX_set1_hkdf_salt(c, salt, 16) <= 0 ||
	    EVP_PKEY_CTX_set1_hkdf_key(c, key, STORE_KEY_LEN) <= 0 ||
	    EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)info,
					(int)strlen(info)) <= 0 ||
	    EVP_PKEY_derive(c, out, &len) <= 0 || len != 32)
		ret = ssl_errno("hkdf");
	EVP_PKEY_CTX_free(c);
	return ret;
}

int keys_derive(struct store_keys *k, const unsigned char *key,
		const unsigned char repo_id[16])
{
	int ret;

	memset(k, 0, sizeof(*k));
	k->enc = true;
	ret = hkdf(key, repo_id, "m365fs chunk id", k->id_key);
	if (!ret)
		ret = hkdf(key, repo_id, "m365fs data", k->data_key);
	if (!ret)
		ret = hkdf(key, repo_id, "m365fs key check", k->check);
	return ret;
}

int chunk_id(const struct store_keys *k, const void *p, size_t n,
	     unsigned char id[32])
{
	unsigned int len = 32;

	if (!k->enc) {
		if (!SHA256(p, n, id))
			return ssl_errno("sha-256");
		return 0;
	}
	if (!HMAC(EVP_sha256(), k->id_key, 32, p, n, id, &len))
		return ssl_errno("hmac-sha-256");
	return 0;
}

/*
 * Each thread keeps one AES-256-GCM context with its key schedule: a
 * chunk then costs a new nonce, not a context allocated and a key
 * expanded (about a tenth of sealing a 100 KB chunk).  Freed, and the key
 * wiped, when the thread ends.
 */
struct gcm_tl {
	EVP_CIPHER_CTX *c;
	unsigned char key[32];
	int enc; /* -1: no key set */
};

static pthread_key_t gcm_tl_key;
static pthread_once_t gcm_tl_once = PTHREAD_ONCE_INIT;
static int gcm_tl_ok;

static void gcm_tl_free(void *arg)
{
	struct gcm_tl *t = arg;

	EVP_CIPHER_CTX_free(t->c);
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

static void gcm_tl_init(void)
{
	gcm_tl_ok = pthread_key_create(&gcm_tl_key, gcm_tl_free) == 0;
}

/* This thread's context, ready for @nonce under @key (@seal); NULL: none. */
static EVP_CIPHER_CTX *gcm_ctx(bool seal, const unsigned char key[32],
			       const unsigned char *nonce)
{
	struct gcm_tl *t;

	pthread_once(&gcm_tl_once, gcm_tl_init);
	if (!gcm_tl_ok)
		return NULL;
	t = pthread_getspecific(gcm_tl_key);
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return NULL;
		t->c = EVP_CIPHER_CTX_new();
		if (!t->c || pthread_setspecific(gcm_tl_key, t)) {
			EVP_CIPHER_CTX_free(t->c);
			free(t);
			return NULL;
		}
		t->enc = -1;
	}
	if (t->enc == (int)seal && !CRYPTO_memcmp(t->key, key, 32)) {
		if (EVP_CipherInit_ex(t->c, NULL, NULL, NULL, nonce, seal) == 1)
			return t->c;
	} else if (EVP_CipherInit_ex(t->c, EVP_aes_256_gcm(), NULL, key, nonce,
				     seal) == 1) {
		memcpy(t->key, key, 32);
		t->enc = seal;
		return t->c;
	}
	t->enc = -1; /* set up afresh next time */
	return NULL;
}

/*
 * AES-256-GCM of @n bytes at @p into @dst: sealing writes the ciphertext
 * and the tag (@n + 16 bytes), opening checks the tag at the end of @p
 * and writes @n - 16 bytes.
 */
static int gcm_to(bool seal, const unsigned char key[32],
		  const unsigned char *nonce, const void *aad, size_t aad_len,
		  const void *p, size_t n, unsigned char *dst)
{
	EVP_CIPHER_CTX *c;
	size_t body = seal ? n : n - GCM_TAG_LEN;
	int len, ret = 0;

	if (!seal && n < GCM_TAG_LEN)
		return -EBADMSG;
	c = gcm_ctx(seal, key, nonce);
	if (!c)
		return ssl_errno("aes-256-gcm");
	if (EVP_CipherUpdate(c, NULL, &len, aad, (int)aad_len) != 1 ||
	    EVP_CipherUpdate(c, dst, &len, p, (int)body) != 1) {
		ret = ssl_errno("aes-256-gcm");
		goto out;
	}
	if (seal) {
		if (EVP_CipherFinal_ex(c, dst + len, &len) != 1 ||
		    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN,
					dst + body) != 1)
			ret = ssl_errno("aes-256-gcm seal");
	} else {
		if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN,
					(unsigned char *)p + body) != 1) {
			ret = ssl_errno("aes-256-gcm tag");
		} else if (EVP_CipherFinal_ex(c, dst + len, &len) != 1) {
			ERR_clear_error();
			ret = -EBADMSG; /* the tag does not match */
		}
	}
out:
	if (ret) { /* the context is set up afresh next time */
		struct gcm_tl *t = pthread_getspecific(gcm_tl_key);

		if (t)
			t->enc = -1;
	}
	return ret;
}

static int gcm(bool seal, const unsigned char key[32],
	       const unsigned char *nonce, const void *aad, size_t aad_len,
	       const void *p, size_t n, struct buf *out)
{
	size_t body = seal ? n + GCM_TAG_LEN : n - GCM_TAG_LEN;
	int ret;

	if (!seal && n < GCM_TAG_LEN)
		return -EBADMSG;
	ret = buf_grow(out, seal ? body : n);
	if (!ret)
		ret = gcm_to(seal, key, nonce, aad, aad_len, p, n,
			     (unsigned char *)out->data + out->len);
	if (ret)
		return ret;
	out->len += body;
	out->data[out->len] = 0;
	return 0;
}

int gcm_open_to(const unsigned char key[32], const unsigned char *nonce,
		const void *aad, size_t aad_len, const void *p, size_t n,
		unsigned char *dst)
{
	return gcm_to(false, key, nonce, aad, aad_len, p, n, dst);
}

int gcm_seal_to(const unsigned char key[32], const unsigned char *nonce,
		const void *aad, size_t aad_len, const void *p, size_t n,
		unsigned char *dst)
{
	return gcm_to(true, key, nonce, aad, aad_len, p, n, dst);
}

int gcm_seal(const unsigned char key[32], const unsigned char *nonce,
	     const void *aad, size_t aad_len, const void *p, size_t n,
	     struct buf *out)
{
	return gcm(true, key, nonce, aad, aad_len, p, n, out);
}

int gcm_open(const unsigned char key[32], const unsigned char *nonce,
	     const void *aad, size_t aad_len, const void *p, size_t n,
	     struct buf *out)
{
	return gcm(false, key, nonce, aad, aad_len, p, n, out);
}

/*
 * chk64: four lanes of 64-bit multiply-rotate over 32-byte blocks, then
 * the tail byte by byte, then a final mix (FORMAT.md).  Detects damage,
 * not tampering: encrypted repositories rely on the GCM tag.
 */
#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* The last steps of both checksums: every bit of @h reaches every bit. */
static inline uint64_t chk_final(uint64_t h)
{
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

uint64_t chk64(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t a = P1, b = P2, c = P3, d = P1 ^ P2, h;
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		a = rotl(a + le64_get(s + i) * P2, 31) * P1;
		b = rotl(b + le64_get(s + i + 8) * P2, 31) * P1;
		c = rotl(c + le64_get(s + i + 16) * P2, 31) * P1;
		d = rotl(d + le64_get(s + i + 24) * P2, 31) * P1;
	}
	h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + n;
	for (; i < n; i++)
		h = rotl(h ^ (s[i] * P3), 11) * P1;
	return chk_final(h);
}

/*
 * chk2: the plain-payload checksum of format 2 (FORMAT.md "chk2").  Eight
 * 64-bit lanes, one 64-byte stripe at a time: each lane adds its
 * neighbour's word and the product of the two 32-bit halves of its own
 * word xored with a key; a scramble every 16 stripes; the zero-padded
 * tail is the last stripe.  A stripe is one vector operation of each
 * kind with AVX-512 (chk64's lanes are a chain of 64-bit multiplies):
 * about four times chk64's speed, and the same result everywhere.
 */
#define CHK2_PRIME 0x9E3779B1ULL

static const uint64_t chk2_key[8] = {
	0x243F6A8885A308D3ULL, 0x13198A2E03707344ULL, 0xA4093822299F31D0ULL,
	0x082EFA98EC4E6C89ULL, 0x452821E638D01377ULL, 0xBE5466CF34E90C6CULL,
	0xC0AC29B7C97C50DDULL, 0x3F84D5B5B5470917ULL,
};

/* @n stripes of @p into @acc, scrambling after each 16th (@s counts). */
static void chk2_stripes(uint64_t acc[8], const unsigned char *p, size_t n,
			 size_t *s)
{
	for (size_t i = 0; i < n; i++, p += 64) {
		uint64_t d[8];

		for (int j = 0; j < 8; j++)
			d[j] = le64_get(p + 8 * j);
		for (int j = 0; j < 8; j++) {
			uint64_t dk = d[j] ^ chk2_key[j];

			acc[j] += d[j ^ 1] + (dk & 0xFFFFFFFFu) * (dk >> 32);
		}
		if (++*s % 16 == 0)
			for (int j = 0; j < 8; j++)
				acc[j] = (acc[j] ^ (acc[j] >> 47) ^
					  chk2_key[j]) *
					 CHK2_PRIME;
	}
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CHK2_AVX512 1

/* chk2_stripes() with one AVX-512 register for the eight lanes. */
__attribute__((target("avx512f"))) static void
chk2_stripes512(uint64_t acc[8], const unsigned char *p, size_t n, size_t *s)
{
	const __m512i key = _mm512_loadu_si512((const void *)chk2_key);
	const __m512i prime = _mm512_set1_epi64((long long)CHK2_PRIME);
	__m512i a = _mm512_loadu_si512((const void *)acc);

	for (size_t i = 0; i < n; i++, p += 64) {
		__m512i d = _mm512_loadu_si512((const void *)p);
		__m512i dk = _mm512_xor_si512(d, key);
		__m512i prod = _mm512_mul_epu32(dk, _mm512_srli_epi64(dk, 32));
		/* each 64-bit word with its neighbour: d[j ^ 1] */
		__m512i sw = _mm512_shuffle_epi32(d, (_MM_PERM_ENUM)0x4E);

		a = _mm512_add_epi64(a, _mm512_add_epi64(sw, prod));
		if (++*s % 16 == 0) {
			__m512i x = _mm512_xor_si512(
				_mm512_xor_si512(a, _mm512_srli_epi64(a, 47)),
				key);
			/* x * prime mod 2^64, prime < 2^32 */
			__m512i lo = _mm512_mul_epu32(x, prime);
			__m512i hi = _mm512_mul_epu32(_mm512_srli_epi64(x, 32),
						      prime);

			a = _mm512_add_epi64(lo, _mm512_slli_epi64(hi, 32));
		}
	}
	_mm512_storeu_si512((void *)acc, a);
}
#endif

/* chk2 of @p[0..n); @simd: with the vector unit where there is one. */
static uint64_t chk2_impl(const void *p, size_t n, bool simd)
{
	void (*stripes)(uint64_t *, const unsigned char *, size_t, size_t *) =
		chk2_stripes;
	const unsigned char *s = p;
	uint64_t acc[8], h = n * P1;
	unsigned char last[64];
	size_t full = n / 64, done = 0;

#ifdef CHK2_AVX512
	if (simd && __builtin_cpu_supports("avx512f")) /* a flag's load */
		stripes = chk2_stripes512;
#else
	(void)simd;
#endif
	for (int j = 0; j < 8; j++)
		acc[j] = chk2_key[j] * P1;
	stripes(acc, s, full, &done);
	if (n % 64) {
		memset(last, 0, sizeof(last));
		memcpy(last, s + 64 * full, n % 64);
		stripes(acc, last, 1, &done);
	}
	for (int j = 0; j < 8; j++)
		h = rotl((h ^ acc[j]) * P1, 31);
	return chk_final(h);
}

uint64_t chk2_scalar(const void *p, size_t n)
{
	return chk2_impl(p, n, false);
}

uint64_t chk2(const void *p, size_t n)
{
	return chk2_impl(p, n, true);
}

/* ---- key helpers for the tools ---- */

int store_key_parse(const char *text, unsigned char key[STORE_KEY_LEN])
{
	struct buf b = BUF_INIT;
	size_t len;
	int ret;

	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	len = strlen(text);
	while (len && (text[len - 1] == ' ' || text[len - 1] == '\t' ||
		       text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (len != STORE_KEY_B64_LEN)
		return -EINVAL;
	ret = util_b64_decode(&b, text, len);
	if (!ret && b.len != STORE_KEY_LEN)
		ret = -EINVAL;
	if (!ret)
		memcpy(key, b.data, STORE_KEY_LEN);
	OPENSSL_cleanse(b.data, b.len);
	buf_release(&b);
	return ret;
}

void store_key_format(const unsigned char key[STORE_KEY_LEN],
		      char out[STORE_KEY_B64_LEN + 1])
{
	struct buf b = BUF_INIT;

	out[0] = 0;
	if (!util_b64_encode(&b, key, STORE_KEY_LEN, false) &&
	    b.len == STORE_KEY_B64_LEN)
		memcpy(out, b.data, STORE_KEY_B64_LEN + 1);
	OPENSSL_cleanse(b.data, b.len);
	buf_release(&b);
}

int store_key_load_file(const char *path, unsigned char key[STORE_KEY_LEN],
			struct buf *why)
{
	char text[256];
	struct stat sb;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		if (why)
			buf_addf(why, "cannot open key file '%s': %s", path,
				 strerror(-ret));
		return ret;
	}
	if (fstat(fd, &sb) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		ret = -EINVAL;
		if (why)
			buf_addf(why, "key file '%s' is not a regular file",
				 path);
		goto out;
	}
	if (sb.st_mode & 077) {
		ret = -EPERM;
		if (why)
			buf_addf(
				why,
				"key file '%s' is readable by others: run 'chmod 600 %s'",
				path, path);
		goto out;
	}
	/* like ssh: a file another user can replace is not our key */
	if (sb.st_uid != geteuid() && sb.st_uid != 0) {
		ret = -EPERM;
		if (why)
			buf_addf(
				why,
				"key file '%s' belongs to another user (uid %u): run 'chown %u %s' if it is yours",
				path, (unsigned)sb.st_uid, (unsigned)geteuid(),
				path);
		goto out;
	}
	n = read(fd, text, sizeof(text) - 1);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	text[n] = 0;
	ret = store_key_parse(text, key);
	if (ret && why)
		buf_addf(
			why,
			"key file '%s' does not hold a key (44 base64 characters)",
			path);
	OPENSSL_cleanse(text, sizeof(text));
out:
	if (ret && why && !why->len)
		buf_addf(why, "cannot read key file '%s': %s", path,
			 strerror(-ret));
	close(fd);
	return ret;
}

int store_key_load_credential(const char *name,
			      unsigned char key[STORE_KEY_LEN], struct buf *why)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	struct buf path = BUF_INIT;
	int ret;

	if (!dir || !*dir) {
		if (why)
			buf_addf(
				why,
				"no systemd credentials: $CREDENTIALS_DIRECTORY is not set (use LoadCredential=%s:... in the unit)",
				name);
		return -ENOENT;
	}
	if (!*name || strchr(name, '/'))
		return -EINVAL;
	ret = buf_addf(&path, "%s/%s", dir, name);
	if (!ret)
		ret = store_key_load_file(path.data, key, why);
	buf_release(&path);
	return ret;
}
