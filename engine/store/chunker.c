/*
 * chunker.c - FastCDC content-defined chunking with normalised chunking
 * (Xia et al., "FastCDC", USENIX ATC 2016; level 2 normalisation).
 *
 * A gear hash fp = (fp << 1) + gear[byte] rolls over the data; a cut is
 * made after the byte where the top bits selected by a mask are all zero.
 * Before the average size a harder mask (log2(avg) + 2 bits) is used,
 * after it an easier one (log2(avg) - 2 bits), which narrows the size
 * distribution.  The gear table comes from splitmix64 with a fixed seed,
 * so chunk boundaries are part of the format (FORMAT.md).
 */
#include "store/store_i.h"

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void gear_fill(void)
{
	uint64_t x = 0x6d3336356673ULL; /* "m365fs" */

	for (int i = 0; i < 256; i++) {
		uint64_t z = (x += 0x9E3779B97F4A7C15ULL);

		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		gear[i] = z ^ (z >> 31);
	}
}

static uint64_t top_mask(unsigned bits)
{
	return bits >= 64 ? ~0ULL : ((1ULL << bits) - 1) << (64 - bits);
}

void cdc_init(struct cdc *c, uint32_t min, uint32_t avg, uint32_t max)
{
	unsigned bits = 0;

	pthread_once(&gear_once, gear_fill);
	while ((1u << (bits + 1)) <= avg)
		bits++;
	c->min = min;
	c->avg = avg;
	c->max = max;
	c->mask_s = top_mask(bits + 2);
	c->mask_l = top_mask(bits > 2 ? bits - 2 : 1);
	c->gear = gear;
}

size_t cdc_cut(const struct cdc *c, const unsigned char *p, size_t n)
{
	size_t normal = c->avg, limit = c->max, cut;
	uint64_t fp = 0;

	if (n <= c->min)
		return n;
	if (limit > n)
		limit = n;
	if (normal > limit)
		normal = limit;
	cut = cdc_roll(c, &fp, c->mask_s, p, c->min, normal);
	if (!cut)
		cut = cdc_roll(c, &fp, c->mask_l, p, normal, limit);
	return cut ? cut : limit;
}
