/*
 * quickxor.c - the OneDrive quickXorHash (GRAPH-API.md 5.6): a 160-bit
 * accumulator; byte i is XORed in at bit (11 * i) mod 160, rotating; the
 * length is XORed into the last 8 bytes at the end.  Written from the
 * description, processed per bit position like the reference: for each of
 * the 160 positions the bytes that land there are XORed first.
 */
#include <string.h>

#include "graph.h"
#include "util/util.h"

#define QX_BITS	 160
#define QX_SHIFT 11

void graph_qxh_init(struct graph_qxh *q)
{
	memset(q, 0, sizeof(*q));
}

void graph_qxh_update(struct graph_qxh *q, const void *data, size_t n)
{
	const unsigned char *p = data;
	unsigned idx = q->shift / 64, off = q->shift % 64;
	size_t iters = n < QX_BITS ? n : QX_BITS;

	for (size_t i = 0; i < iters; i++) {
		bool last = idx == 2;
		unsigned width = last ? 32 : 64;
		unsigned char x = 0;

		for (size_t j = i; j < n; j += QX_BITS)
			x ^= p[j];
		if (off <= width - 8) {
			q->cell[idx] ^= (uint64_t)x << off;
		} else {
			unsigned next = last ? 0 : idx + 1;

			q->cell[idx] ^= (uint64_t)x << off;
			q->cell[next] ^= (uint64_t)x >> (width - off);
		}
		off += QX_SHIFT;
		if (off >= width) {
			idx = last ? 0 : idx + 1;
			off -= width;
		}
	}
	q->shift = (unsigned)((q->shift + QX_SHIFT * (n % QX_BITS)) % QX_BITS);
	q->len += n;
}

void graph_qxh_final(struct graph_qxh *q, char out[29])
{
	unsigned char d[20];
	struct buf b = BUF_INIT;

	for (int c = 0; c < 2; c++)
		for (int k = 0; k < 8; k++)
			d[c * 8 + k] = (unsigned char)(q->cell[c] >> (8 * k));
	for (int k = 0; k < 4; k++)
		d[16 + k] = (unsigned char)(q->cell[2] >> (8 * k));
	for (int k = 0; k < 8; k++)
		d[12 + k] ^= (unsigned char)(q->len >> (8 * k));
	out[0] = '\0';
	if (util_b64_encode(&b, d, sizeof(d), false) == 0 && b.len == 28)
		memcpy(out, b.data, 29);
	buf_release(&b);
}
