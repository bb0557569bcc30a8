/*
 * sha2x.c - SHA-256 (FIPS 180-4) of two messages in one pass with the
 * x86 SHA extensions.
 *
 * A writer hashes every byte twice: once for the chunk id (SHA-256, or
 * the inner hash of HMAC-SHA-256) and once for the SHA-256 of the whole
 * content.  One SHA-256 stream is bound by the latency of the
 * SHA256RNDS2 instruction, so the rounds of the two hashes are
 * interleaved block by block: about 1.3 times the time of one (measured
 * on AMD Zen 5), 1.25 times when the two see the same blocks and share
 * their message schedule.  Only used when the CPU has the extensions
 * (sha2x_supported()); otherwise the writer hashes with OpenSSL as
 * before.
 */
#include <string.h>

#include "store/store_i.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define SHA2X_NI 1
#define NI	 __attribute__((target("sha,sse4.1,ssse3")))
#endif

static const uint32_t k256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t h0[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

#ifdef SHA2X_NI

bool sha2x_supported(void)
{
	static int cached = -1;
	unsigned a, b, c, d;
	int ok = 0;

	if (cached >= 0)
		return cached;
	if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSSE3) &&
	    (c & bit_SSE4_1) && __get_cpuid_count(7, 0, &a, &b, &c, &d))
		ok = !!(b & bit_SHA);
	cached = ok;
	return ok;
}

/* State words a..h into the ABEF / CDGH order of SHA256RNDS2. */
NI static inline void ni_load(const uint32_t s[8], __m128i *abef, __m128i *cdgh)
{
	__m128i t = _mm_loadu_si128((const __m128i *)s); /* DCBA */
	__m128i u = _mm_loadu_si128((const __m128i *)(s + 4)); /* HGFE */

	t = _mm_shuffle_epi32(t, 0xB1); /* CDAB */
	u = _mm_shuffle_epi32(u, 0x1B); /* EFGH */
	*abef = _mm_alignr_epi8(t, u, 8);
	*cdgh = _mm_blend_epi16(u, t, 0xF0);
}

NI static inline void ni_store(uint32_t s[8], __m128i abef, __m128i cdgh)
{
	__m128i t = _mm_shuffle_epi32(abef, 0x1B); /* FEBA */

	cdgh = _mm_shuffle_epi32(cdgh, 0xB1); /* DCHG */
	_mm_storeu_si128((__m128i *)s, _mm_blend_epi16(t, cdgh, 0xF0));
	_mm_storeu_si128((__m128i *)(s + 4), _mm_alignr_epi8(cdgh, t, 8));
}

/* Message words 4i..4i+3 of the block, from the window @m of four. */
#define NI_SCHEDULE(m, p, i)                                                   \
	((i) < 4 ? _mm_shuffle_epi8(                                           \
			   _mm_loadu_si128((const __m128i *)((p) + 16 * (i))), \
			   bswap)                                              \
		 : _mm_sha256msg2_epu32(                                       \
			   _mm_add_epi32(                                      \
				   _mm_sha256msg1_epu32(m[(i)&3],              \
							m[((i) + 1) & 3]),     \
				   _mm_alignr_epi8(m[((i) + 3) & 3],           \
						   m[((i) + 2) & 3], 4)),      \
			   m[((i) + 3) & 3]))

/* Four rounds with message words @w (already scheduled). */
#define NI_ROUNDS(abef, cdgh, w, i)                                            \
	do {                                                                   \
		__m128i t_ = _mm_add_epi32(                                    \
			w,                                                     \
			_mm_loadu_si128((const __m128i *)(k256 + 4 * (i))));   \
		cdgh = _mm_sha256rnds2_epu32(cdgh, abef, t_);                  \
		abef = _mm_sha256rnds2_epu32(abef, cdgh,                       \
					     _mm_shuffle_epi32(t_, 0x0E));     \
	} while (0)

/*
 * Up to @n blocks of @p into state @st, and of @q into @t when @two, the
 * rounds of the two interleaved.  @same: the two are the same bytes (@q
 * is @p), so each block's message schedule is computed once for both: a
 * chunk that starts its content, or starts block-aligned in it, as every
 * chunk does for its id's HMAC.
 *
 * With @scan, each block is hashed while the gear hash *@fp rolls over the
 * 64 bytes at @s + 64 * i with @mask, four of its steps between each
 * four rounds, so that the chunker's chain of additions runs in the
 * shadow of the rounds' latency.  Stops after the first block whose bytes
 * at @s hold a cut: how many blocks were done, and in *@cut the offset
 * just past the cut in the last one's bytes at @s (0: no cut).  The
 * blocks at @p and @q must end where the bytes at @s begin or before.
 */
NI static inline __attribute__((always_inline)) size_t
scan_any(uint32_t st[8], const unsigned char *p, uint32_t t[8],
	 const unsigned char *q, bool two, bool same, bool scan,
	 const unsigned char *s, size_t n, const uint64_t *gear, uint64_t mask,
	 uint64_t *fp, unsigned *cut)
{
	const __m128i bswap =
		_mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i abef, cdgh, xabef = _mm_setzero_si128(),
			    xcdgh = _mm_setzero_si128();
	uint64_t h = scan ? *fp : 0, hit = 0;
	size_t done = 0;

	ni_load(st, &abef, &cdgh);
	if (two)
		ni_load(t, &xabef, &xcdgh);
	while (done < n && !hit) {
		__m128i sa = abef, sc = cdgh, xa = xabef, xc = xcdgh;
		__m128i m[4], x[4] = { 0 };

#pragma GCC unroll 16
		for (int i = 0; i < 16; i++) {
			m[i & 3] = NI_SCHEDULE(m, p, i);
			if (two && same) {
				__m128i k = _mm_add_epi32(
					m[i & 3],
					_mm_loadu_si128(
						(const __m128i *)(k256 +
								  4 * i)));
				__m128i k2 = _mm_shuffle_epi32(k, 0x0E);

				cdgh = _mm_sha256rnds2_epu32(cdgh, abef, k);
				xcdgh = _mm_sha256rnds2_epu32(xcdgh, xabef, k);
				abef = _mm_sha256rnds2_epu32(abef, cdgh, k2);
				xabef = _mm_sha256rnds2_epu32(xabef, xcdgh, k2);
			} else {
				NI_ROUNDS(abef, cdgh, m[i & 3], i);
				if (two) {
					x[i & 3] = NI_SCHEDULE(x, q, i);
					NI_ROUNDS(xabef, xcdgh, x[i & 3], i);
				}
			}
#pragma GCC unroll 4
			for (int j = 0; scan && j < 4; j++) {
				h = (h << 1) + gear[s[4 * i + j]];
				hit |= (uint64_t) !(h & mask) << (4 * i + j);
			}
		}
		abef = _mm_add_epi32(abef, sa);
		cdgh = _mm_add_epi32(cdgh, sc);
		if (two) {
			xabef = _mm_add_epi32(xabef, xa);
			xcdgh = _mm_add_epi32(xcdgh, xc);
		}
		p += 64;
		q += 64;
		s += scan ? 64 : 0;
		done++;
	}
	ni_store(st, abef, cdgh);
	if (two)
		ni_store(t, xabef, xcdgh);
	if (scan) {
		*fp = h;
		*cut = hit ? (unsigned)__builtin_ctzll(hit) + 1 : 0;
	}
	return done;
}

NI static void blocks1(uint32_t st[8], const unsigned char *p, size_t n)
{
	scan_any(st, p, NULL, p, false, false, false, p, n, NULL, 0, NULL,
		 NULL);
}

NI static void blocks2(uint32_t st[8], const unsigned char *p, uint32_t t[8],
		       const unsigned char *q, size_t n)
{
	if (p == q)
		scan_any(st, p, t, p, true, true, false, p, n, NULL, 0, NULL,
			 NULL);
	else
		scan_any(st, p, t, q, true, false, false, p, n, NULL, 0, NULL,
			 NULL);
}

NI static size_t scan_blocks(uint32_t st[8], const unsigned char *p,
			     uint32_t t[8], const unsigned char *q,
			     const unsigned char *s, size_t n,
			     const uint64_t *gear, uint64_t mask, uint64_t *fp,
			     unsigned *cut)
{
	if (!t)
		return scan_any(st, p, NULL, p, false, false, true, s, n, gear,
				mask, fp, cut);
	if (p == q)
		return scan_any(st, p, t, p, true, true, true, s, n, gear, mask,
				fp, cut);
	return scan_any(st, p, t, q, true, false, true, s, n, gear, mask, fp,
			cut);
}

#else /* no SHA extensions: never called (sha2x_supported() is false) */

bool sha2x_supported(void)
{
	return false;
}

static void blocks1(uint32_t s[8], const unsigned char *p, size_t n)
{
	(void)s;
	(void)p;
	(void)n;
}

static void blocks2(uint32_t s[8], const unsigned char *p, uint32_t t[8],
		    const unsigned char *q, size_t n)
{
	(void)s;
	(void)p;
	(void)t;
	(void)q;
	(void)n;
}

static size_t scan_blocks(uint32_t st[8], const unsigned char *p, uint32_t t[8],
			  const unsigned char *q, const unsigned char *s,
			  size_t n, const uint64_t *gear, uint64_t mask,
			  uint64_t *fp, unsigned *cut)
{
	(void)st;
	(void)p;
	(void)t;
	(void)q;
	(void)s;
	(void)gear;
	(void)mask;
	(void)n;
	(void)fp;
	*cut = 0;
	return 0; /* no block done: scan() rolls the gear hash alone */
}

#endif

void sha2x_init(struct sha2x *c)
{
	memcpy(c->h, h0, sizeof(h0));
	c->nbuf = 0;
	c->total = 0;
}

/* Take bytes of @p into the partial block of @c; how many were taken. */
static size_t fill(struct sha2x *c, const unsigned char *p, size_t n)
{
	size_t take;

	if (!c->nbuf)
		return 0;
	take = 64 - c->nbuf < n ? 64 - c->nbuf : n;
	memcpy(c->buf + c->nbuf, p, take);
	c->nbuf += take;
	if (c->nbuf == 64) {
		blocks1(c->h, c->buf, 1);
		c->nbuf = 0;
	}
	return take;
}

/* Whole blocks done elsewhere: keep the tail of @p[0..n) in @c. */
static void tail(struct sha2x *c, const unsigned char *p, size_t n)
{
	size_t full = n & ~(size_t)63;

	memcpy(c->buf, p + full, n - full);
	c->nbuf = n - full;
}

void sha2x_update(struct sha2x *c, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t k = fill(c, p, n);

	c->total += n;
	p += k;
	n -= k;
	if (!n)
		return;
	blocks1(c->h, p, n / 64);
	tail(c, p, n);
}

void sha2x_update2(struct sha2x *a, struct sha2x *b, const void *data, size_t n)
{
	const unsigned char *p = data, *pa, *pb;
	size_t ka = fill(a, p, n), kb = fill(b, p, n), na, nb, both;

	a->total += n;
	b->total += n;
	pa = p + ka;
	pb = p + kb;
	na = (n - ka) / 64;
	nb = (n - kb) / 64;
	both = na < nb ? na : nb;
	blocks2(a->h, pa, b->h, pb, both);
	blocks1(a->h, pa + 64 * both, na - both);
	blocks1(b->h, pb + 64 * both, nb - both);
	if (n > ka)
		tail(a, pa, n - ka);
	if (n > kb)
		tail(b, pb, n - kb);
}

/*
 * Hash the whole blocks of @a (next block at *@ha) and @b (at *@hb, or
 * NULL) that end at or before @end, the two interleaved where both have
 * one.
 */
static void blocks_upto(struct sha2x *a, size_t *ha, struct sha2x *b,
			size_t *hb, const unsigned char *p, size_t end)
{
	size_t na = (end - *ha) / 64, nb = b ? (end - *hb) / 64 : 0;
	size_t both = na < nb ? na : nb;

	if (both)
		blocks2(a->h, p + *ha, b->h, p + *hb, both);
	if (na > both)
		blocks1(a->h, p + *ha + 64 * both, na - both);
	if (nb > both)
		blocks1(b->h, p + *hb + 64 * both, nb - both);
	*ha += 64 * na;
	*hb += 64 * nb;
}

/*
 * Roll the gear hash over @p[*i..end) with @mask, the whole blocks of @a
 * and @b that lie before the scanned bytes hashed alongside
 * (scan_blocks()) where there are 64 bytes to scan for each: the cut
 * found, or 0 with *@i moved to @end.  Needs *@ha + 64 <= *@i and
 * *@hb + 64 <= *@i (the hashed blocks are in the chunk).
 */
static size_t scan(const struct cdc *c, uint64_t mask, const unsigned char *p,
		   size_t *i, size_t end, struct sha2x *a, size_t *ha,
		   struct sha2x *b, size_t *hb, uint64_t *fp)
{
	size_t n = (end - *i) / 64, done;
	unsigned cut;

	done = scan_blocks(a->h, p + *ha, b ? b->h : NULL, p + *hb, p + *i, n,
			   c->gear, mask, fp, &cut);
	*ha += 64 * done;
	if (b)
		*hb += 64 * done;
	if (cut)
		return *i + 64 * (done - 1) + cut;
	*i += 64 * done;
	cut = (unsigned)cdc_roll(c, fp, mask, p, *i, end); /* < 64 left */
	*i = end;
	return cut;
}

size_t sha2x_cdc(const struct cdc *c, const unsigned char *p, size_t n,
		 struct sha2x *a, struct sha2x *b)
{
	size_t normal = c->avg, limit = c->max, cut, i, ha, hb = 0;
	uint64_t fp = 0;

	if (n <= c->min + 64 ||
	    c->avg < c->min + 64) { /* too short to run ahead */
		cut = cdc_cut(c, p, n);
		if (b)
			sha2x_update2(a, b, p, cut);
		else
			sha2x_update(a, p, cut);
		return cut;
	}
	if (limit > n)
		limit = n;
	if (normal > limit)
		normal = limit;
	/*
	 * The chunk has more than min bytes: the partial blocks fill, the
	 * blocks below min are hashed, and the scan of one block runs ahead
	 * of the hashing from then on.
	 */
	ha = fill(a, p, 64);
	if (b)
		hb = fill(b, p, 64);
	blocks_upto(a, &ha, b, &hb, p, c->min);
	i = c->min + 64 < normal ? c->min + 64 : normal;
	cut = cdc_roll(c, &fp, c->mask_s, p, c->min, i);
	if (!cut)
		cut = scan(c, c->mask_s, p, &i, normal, a, &ha, b, &hb, &fp);
	if (!cut)
		cut = scan(c, c->mask_l, p, &i, limit, a, &ha, b, &hb, &fp);
	if (!cut)
		cut = limit;
	blocks_upto(a, &ha, b, &hb, p, cut);
	a->total += cut;
	tail(a, p + ha, cut - ha);
	if (b) {
		b->total += cut;
		tail(b, p + hb, cut - hb);
	}
	return cut;
}

void sha2x_final(struct sha2x *c, unsigned char md[32])
{
	unsigned char pad[128] = { 0x80 };
	uint64_t bits = c->total * 8;
	size_t padlen = (c->nbuf < 56 ? 56 : 120) - c->nbuf;

	for (int i = 0; i < 8; i++)
		pad[padlen + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
	/* the length counts only message bytes */
	c->total -= padlen + 8;
	sha2x_update(c, pad, padlen + 8);
	for (int i = 0; i < 8; i++) {
		md[4 * i] = (unsigned char)(c->h[i] >> 24);
		md[4 * i + 1] = (unsigned char)(c->h[i] >> 16);
		md[4 * i + 2] = (unsigned char)(c->h[i] >> 8);
		md[4 * i + 3] = (unsigned char)c->h[i];
	}
}

void sha2x_hmac_init(struct sha2x_hmac *m, const unsigned char key[32])
{
	unsigned char pad[64];

	for (int k = 0; k < 2; k++) {
		struct sha2x *c = k ? &m->outer : &m->inner;

		memset(pad, k ? 0x5c : 0x36, sizeof(pad));
		for (int i = 0; i < 32; i++)
			pad[i] ^= key[i];
		sha2x_init(c);
		sha2x_update(c, pad, sizeof(pad));
	}
	memset(pad, 0, sizeof(pad));
}

void sha2x_hmac_final(const struct sha2x_hmac *m, struct sha2x *inner,
		      unsigned char md[32])
{
	struct sha2x outer = m->outer;
	unsigned char in[32];

	sha2x_final(inner, in);
	sha2x_update(&outer, in, sizeof(in));
	sha2x_final(&outer, md);
}
