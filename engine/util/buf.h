/*
 * buf - growable byte buffer, always NUL-terminated (like git's strbuf).
 *
 * A struct buf starts as BUF_INIT (or buf_init()) and owns its memory until
 * buf_release() or buf_detach().  An optional cap bounds its length: data
 * that arrives from the network goes into capped buffers, and an append that
 * would pass the cap fails with -E2BIG and leaves the buffer unchanged.
 *
 * Thread safety: none; one buffer belongs to one thread at a time.
 * Errors: 0 or -errno (-ENOMEM, -E2BIG).
 */
#ifndef M365_BUF_H
#define M365_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* NUL-terminated; never NULL once initialised */
	size_t len; /* bytes used, not counting the terminating NUL */
	size_t alloc; /* bytes allocated, 0 while data points at a static "" */
	size_t cap; /* maximum len, 0 = unbounded */
};

extern char buf_empty[];
#define BUF_INIT                                                               \
	{                                                                      \
		buf_empty, 0, 0, 0                                             \
	}

/** Initialise @b as empty, with @cap as its maximum length (0: none). */
void buf_init(struct buf *b, size_t cap);

/** Free the memory of @b and make it empty again (cap kept). NULL is fine. */
void buf_release(struct buf *b);

/**
 * Give away the data of @b: caller owns the result, free with free().
 * @len_out (may be NULL) receives the length.  @b is empty afterwards.
 * Returns NULL only on allocation failure of an empty buffer.
 */
char *buf_detach(struct buf *b, size_t *len_out);

/** Make room for @extra more bytes. Returns 0, -ENOMEM or -E2BIG. */
int buf_grow(struct buf *b, size_t extra);

/** Append @len bytes of @data. Returns 0, -ENOMEM or -E2BIG. */
int buf_add(struct buf *b, const void *data, size_t len);

/** Append the C string @s. */
int buf_adds(struct buf *b, const char *s);

/** Append one byte. */
int buf_addch(struct buf *b, int c);

/** Append formatted text. */
int buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/** Set the length to @len (<= current length); keeps the allocation. */
void buf_truncate(struct buf *b, size_t len);

/** Empty the buffer, keeping its allocation. */
static inline void buf_reset(struct buf *b)
{
	buf_truncate(b, 0);
}

#endif
