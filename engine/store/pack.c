/*
 * pack.c - chunk records and pack files (FORMAT.md "Packs").  Parsing
 * here must hold against any bytes: tests/fuzz/fuzz_pack.c feeds it.
 */
#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "store/store_i.h"
#include "util/log.h"
#include "util/util.h"

void le32_put(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

void le64_put(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t hdr_check(const unsigned char *h)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(h, 60, md);
	return le32_get(md);
}

void chunk_hdr_encode(const struct chunk_hdr *h, unsigned char *out)
{
	memset(out, 0, CHUNK_HDR_LEN);
	memcpy(out, CHUNK_MAGIC, 4);
	out[4] = h->flags;
	memcpy(out + 8, h->id, 32);
	le32_put(out + 40, h->plain);
	le32_put(out + 44, h->stored);
	memcpy(out + 48, h->nonce, GCM_NONCE_LEN);
	le32_put(out + 60, hdr_check(out));
}

uint64_t chunk_sum(const struct chunk_hdr *h, const void *p)
{
	return (h->flags & CHUNK_F_CHK2) ? chk2(p, h->stored)
					 : chk64(p, h->stored);
}

int chunk_hdr_decode(const unsigned char *in, struct chunk_hdr *h)
{
	uint32_t bound;

	if (memcmp(in, CHUNK_MAGIC, 4) || (in[4] & ~CHUNK_F_ALL) || in[5] ||
	    in[6] || in[7])
		return -EBADMSG;
	if (le32_get(in + 60) != hdr_check(in))
		return -EBADMSG;
	h->flags = in[4];
	if ((h->flags & CHUNK_F_ENC) && (h->flags & CHUNK_F_CHK2))
		return -EBADMSG;
	memcpy(h->id, in + 8, 32);
	h->plain = le32_get(in + 40);
	h->stored = le32_get(in + 44);
	memcpy(h->nonce, in + 48, GCM_NONCE_LEN);
	if (!h->plain || h->plain > CHUNK_LIMIT)
		return -EBADMSG;
	bound = (h->flags & CHUNK_F_LZ4)
			? (uint32_t)LZ4_compressBound((int)h->plain)
			: h->plain;
	if (h->flags & CHUNK_F_ENC)
		bound += GCM_TAG_LEN;
	if (h->stored > bound || !h->stored)
		return -EBADMSG;
	if (!(h->flags & CHUNK_F_LZ4) && h->stored != bound)
		return -EBADMSG;
	return 0;
}

/*
 * True when lz4 would not shrink @n bytes at @p by 3 %: four 16 KiB
 * samples spread over a large chunk (already compressed media, zip
 * containers) are tried first, so such chunks skip the full compression.
 * @tmp holds at least LZ4_compressBound(@n) bytes.
 */
static bool incompressible(const unsigned char *p, size_t n, void *lz4,
			   char *tmp)
{
	const size_t piece = 16 * 1024;
	size_t in = 0, out = 0;

	if (n < 16 * piece)
		return false;
	for (int i = 0; i < 4; i++) {
		size_t off = (n - piece) / 3 * (size_t)i;
		int c = LZ4_compress_fast_extState(
			lz4, (const char *)p + off, tmp, (int)piece,
			LZ4_compressBound((int)piece), 1);

		in += piece;
		out += c > 0 ? (size_t)c : piece;
	}
	return out * 100 >= in * 97;
}

uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Empty scratch @b with room for @n bytes: a buffer too small is replaced
 * rather than grown, so that what it held is not copied.
 */
static int scratch(struct buf *b, size_t n)
{
	buf_reset(b);
	if (b->alloc && b->alloc <= n)
		buf_release(b);
	return buf_grow(b, n);
}

int chunk_seal(const struct store_keys *k, const unsigned char *id,
	       const void *p, size_t n, void *lz4, struct buf *tmp,
	       struct chunk_rec *rec, uint64_t *ns)
{
	struct chunk_hdr h = { 0 };
	int bound = LZ4_compressBound((int)n), clen, ret;
	const unsigned char *src = p;
	unsigned char *out;
	size_t plen = n;
	uint64_t t0 = ns ? thread_cpu_ns() : 0, t1;

	if (!n || n > CHUNK_LIMIT)
		return -EINVAL;
	/* the lz4 output, or the sealed payload (+ tag) of either */
	ret = scratch(tmp, (size_t)bound + GCM_TAG_LEN);
	if (ret)
		return ret;
	out = (unsigned char *)tmp->data;
	clen = incompressible(p, n, lz4, tmp->data)
		       ? 0
		       : LZ4_compress_fast_extState(lz4, p, tmp->data, (int)n,
						    bound, 1);
	memcpy(h.id, id, 32);
	h.plain = (uint32_t)n;
	if (clen > 0 && (size_t)clen < n) {
		h.flags |= CHUNK_F_LZ4;
		src = out;
		plen = (size_t)clen;
	}
	if (ns) {
		t1 = thread_cpu_ns();
		ns[STORE_STAGE_LZ4] += t1 - t0;
		t0 = t1;
	}
	if (!k->enc) {
		h.stored = (uint32_t)plen;
		if (k->chk2)
			h.flags |= CHUNK_F_CHK2;
		le64_put(h.nonce, chunk_sum(&h, src));
		chunk_hdr_encode(&h, rec->hdr);
		rec->payload = src;
		rec->len = plen;
	} else {
		h.flags |= CHUNK_F_ENC;
		h.stored = (uint32_t)(plen + GCM_TAG_LEN);
		ret = util_random(h.nonce, GCM_NONCE_LEN);
		if (ret)
			return ret;
		chunk_hdr_encode(&h, rec->hdr);
		ret = gcm_seal_to(k->data_key, h.nonce, rec->hdr, CHUNK_AAD_LEN,
				  src, plen, out);
		rec->payload = out;
		rec->len = h.stored;
	}
	if (ns)
		ns[STORE_STAGE_SEAL] += thread_cpu_ns() - t0;
	return ret;
}

int chunk_decode(const struct store_keys *k, const unsigned char *raw,
		 const struct chunk_hdr *h, const void *payload, bool rehash,
		 struct buf *tmp, unsigned char *dst)
{
	const char *src = payload;
	size_t slen = h->stored;
	unsigned char id[32];
	int ret, n;

	if (!!(h->flags & CHUNK_F_ENC) != k->enc)
		return -EBADMSG;
	if (k->enc && !(h->flags & CHUNK_F_LZ4)) { /* straight into @dst */
		if (h->stored != h->plain + GCM_TAG_LEN)
			return -EBADMSG;
		ret = gcm_open_to(k->data_key, h->nonce, raw, CHUNK_AAD_LEN,
				  payload, h->stored, dst);
		if (ret)
			return ret;
		src = NULL;
		slen = 0;
	} else if (k->enc) {
		buf_reset(tmp);
		ret = gcm_open(k->data_key, h->nonce, raw, CHUNK_AAD_LEN,
			       payload, h->stored, tmp);
		if (ret)
			return ret;
		src = tmp->data;
		slen = tmp->len;
	} else if (le64_get(h->nonce) != chunk_sum(h, payload)) {
		return -EBADMSG;
	}
	if (h->flags & CHUNK_F_LZ4) {
		n = LZ4_decompress_safe(src, (char *)dst, (int)slen,
					(int)h->plain);
		if (n < 0 || (uint32_t)n != h->plain)
			return -EBADMSG;
	} else if (src) {
		if (slen != h->plain)
			return -EBADMSG;
		memcpy(dst, src, slen);
	}
	if (rehash) {
		ret = chunk_id(k, dst, h->plain, id);
		if (ret)
			return ret;
		if (memcmp(id, h->id, 32))
			return -EBADMSG;
	}
	return 0;
}

int chunk_unseal(const struct store_keys *k, const unsigned char *raw,
		 const struct chunk_hdr *h, const void *payload, bool rehash,
		 struct buf *out)
{
	struct buf tmp = BUF_INIT;
	size_t old = out->len;
	int ret;

	ret = buf_grow(out, h->plain);
	if (!ret)
		ret = chunk_decode(k, raw, h, payload, rehash, &tmp,
				   (unsigned char *)out->data + old);
	if (!ret) {
		out->len = old + h->plain;
		out->data[out->len] = 0;
	}
	buf_release(&tmp);
	return ret;
}

void pack_hdr_encode(unsigned char *out)
{
	memset(out, 0, PACK_HDR_LEN);
	memcpy(out, PACK_MAGIC, 8);
	le32_put(out + 8, PACK_VERSION);
}

int pack_hdr_check(const unsigned char *in)
{
	if (memcmp(in, PACK_MAGIC, 8) || le32_get(in + 8) != PACK_VERSION)
		return -EBADMSG;
	return 0;
}

/* Find the next offset > @from where a valid record header starts. */
static int resync(int fd, uint64_t from, uint64_t size, uint64_t *next)
{
	enum { WIN = 1 << 20 };
	unsigned char *w = malloc(WIN + CHUNK_HDR_LEN);
	struct chunk_hdr h;
	uint64_t pos = from;
	int ret = 0;

	if (!w)
		return -ENOMEM;
	*next = size;
	while (pos + CHUNK_HDR_LEN <= size) {
		size_t n = size - pos < WIN + CHUNK_HDR_LEN
				   ? (size_t)(size - pos)
				   : WIN + CHUNK_HDR_LEN;
		ret = util_pread_all(fd, w, n, (off_t)pos);
		if (ret)
			break;
		for (size_t i = 0; i + CHUNK_HDR_LEN <= n; i++) {
			if (w[i] != 'C' || memcmp(w + i, CHUNK_MAGIC, 4))
				continue;
			if (!chunk_hdr_decode(w + i, &h) &&
			    pos + i + CHUNK_HDR_LEN + h.stored <= size) {
				*next = pos + i;
				goto out;
			}
		}
		if (n < WIN + CHUNK_HDR_LEN)
			break;
		pos += WIN;
	}
out:
	free(w);
	return ret;
}

int pack_walk(int fd, uint64_t size, const struct pack_walk *pw)
{
	unsigned char raw[CHUNK_HDR_LEN];
	struct chunk_hdr h;
	uint64_t pos = PACK_HDR_LEN, next;
	int ret;

	if (size < PACK_HDR_LEN) {
		if (pw->bad)
			return pw->bad(pw->arg, 0, size);
		return 0;
	}
	ret = util_pread_all(fd, raw, PACK_HDR_LEN, 0);
	if (ret)
		return ret;
	if (pack_hdr_check(raw) && pw->bad) {
		ret = pw->bad(pw->arg, 0, PACK_HDR_LEN);
		if (ret)
			return ret;
	}
	while (pos < size) {
		if (pos + CHUNK_HDR_LEN <= size) {
			ret = util_pread_all(fd, raw, CHUNK_HDR_LEN,
					     (off_t)pos);
			if (ret)
				return ret;
			if (!chunk_hdr_decode(raw, &h) &&
			    pos + CHUNK_HDR_LEN + h.stored <= size) {
				if (pw->rec) {
					ret = pw->rec(pw->arg, pos, raw, &h);
					if (ret)
						return ret;
				}
				pos += CHUNK_HDR_LEN + h.stored;
				continue;
			}
		}
		ret = resync(fd, pos + 1, size, &next);
		if (ret)
			return ret;
		if (pw->bad) {
			ret = pw->bad(pw->arg, pos, next);
			if (ret)
				return ret;
		}
		pos = next;
	}
	return 0;
}
