/*
 * fuzz_pack.c - libFuzzer target for the store's parsers: chunk headers,
 * pack walks (with resync after damage), chunk payload checks (plain
 * keys) and content descriptors.  The first byte picks the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "store/store_i.h"

static int on_rec(void *arg, uint64_t off, const unsigned char *raw,
		  const struct chunk_hdr *h)
{
	const unsigned char *data = ((const unsigned char **)arg)[0];
	size_t size = (size_t)(uintptr_t)((const unsigned char **)arg)[1];
	struct store_keys k = { 0 };
	struct buf out = BUF_INIT;

	/* pack_walk promises the payload is within the file */
	if (off + CHUNK_HDR_LEN + h->stored > size)
		abort();
	chunk_unseal(&k, raw, h, data + off + CHUNK_HDR_LEN, true, &out);
	buf_release(&out);
	return 0;
}

static int on_bad(void *arg, uint64_t off, uint64_t end)
{
	size_t size = (size_t)(uintptr_t)((const unsigned char **)arg)[1];

	if (end > size || (off >= end && size > 0))
		abort(); /* an empty file is one empty bad range */
	return 0;
}

static int on_chunk(void *arg, const unsigned char *id, uint64_t off,
		    uint32_t len)
{
	(void)arg;
	(void)id;
	(void)off;
	(void)len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chunk_hdr h;
	uint64_t total, count;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0: { /* one record: header + payload */
		struct store_keys k = { 0 };
		struct buf out = BUF_INIT;

		if (size < 1 + CHUNK_HDR_LEN)
			return 0;
		if (chunk_hdr_decode(data + 1, &h))
			return 0;
		if (size - 1 - CHUNK_HDR_LEN < h.stored)
			return 0;
		chunk_unseal(&k, data + 1, &h, data + 1 + CHUNK_HDR_LEN, true,
			     &out);
		buf_release(&out);
		return 0;
	}
	case 1: { /* a whole pack */
		const unsigned char *arg[2] = {
			data + 1, (const unsigned char *)(uintptr_t)(size - 1)
		};
		struct pack_walk pw = { on_rec, on_bad, arg };
		int fd = memfd_create("pack", 0);

		if (fd < 0)
			return 0;
		if (write(fd, data + 1, size - 1) == (ssize_t)(size - 1))
			pack_walk(fd, size - 1, &pw);
		close(fd);
		return 0;
	}
	case 3: { /* a root record of a plain repository */
		struct store st = { 0 };
		struct buf f = BUF_INIT, body = BUF_INIT;
		struct root r;

		if (!buf_add(&f, data + 1, size - 1) &&
		    !root_decode(&st, &f, &body, &r) &&
		    (strlen(r.kind) > NAME_MAX_LEN ||
		     store_desc_parse(r.desc, r.desc_len, NULL, NULL)))
			abort(); /* decode accepted what it must not */
		buf_release(&f);
		buf_release(&body);
		return 0;
	}
	default: /* a content descriptor */
		if (!store_desc_parse(data + 1, size - 1, &total, &count)) {
			if (store_desc_foreach(data + 1, size - 1, on_chunk,
					       NULL))
				abort(); /* parse said it is well-formed */
		}
		return 0;
	}
}
