/*
 * util - small helpers shared by every module: random bytes, GUIDs,
 * base64, hex, ISO 8601 times, clocks.
 *
 * Thread safety: all functions are reentrant.
 * Errors: 0 or -errno.
 */
#ifndef M365_UTIL_H
#define M365_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "buf.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/** Fill @p with @n bytes from the kernel's CSPRNG. Returns 0 or -errno. */
int util_random(void *p, size_t n);

/** Write a new random (version 4) GUID, lower case, to @out (37 bytes). */
int util_guid_new(char out[37]);

/** True when @s is a GUID: 8-4-4-4-12 hex digits, any case, nothing else. */
bool util_guid_valid(const char *s);

/**
 * Append base64 of @p[0..n) to @out.  @url selects the URL-safe alphabet
 * without padding (JWT); otherwise the standard alphabet with padding.
 */
int util_b64_encode(struct buf *out, const void *p, size_t n, bool url);

/**
 * Append the bytes decoded from base64 text @s (@len chars) to @out.
 * Accepts both alphabets, with or without padding; white space is not
 * allowed.  Returns 0, -EINVAL (not base64) or -ENOMEM.
 */
int util_b64_decode(struct buf *out, const char *s, size_t len);

/** Write 2*@n hex digits and a NUL to @out. */
void util_hex(char *out, const void *p, size_t n, bool upper);

/** Parse 2*@n hex digits of @s into @p. Returns 0 or -EINVAL. */
int util_unhex(void *p, size_t n, const char *s);

/**
 * Parse an ISO 8601 UTC time as Graph writes it ("2017-09-14T12:34:53Z",
 * with optional fraction of up to 9 digits, 'Z' or "+00:00" offsets) into
 * seconds and nanoseconds since the epoch.  Returns 0 or -EINVAL.
 */
int util_time_parse(const char *s, int64_t *sec, int32_t *nsec);

/** Format @sec as "YYYY-MM-DDTHH:MM:SSZ" into @out (at least 32 bytes). */
void util_time_format(int64_t sec, char *out, size_t size);

/** Milliseconds of CLOCK_MONOTONIC. */
int64_t util_mono_ms(void);
/** Nanoseconds of CLOCK_MONOTONIC. */
int64_t util_mono_ns(void);
/** The CLOCK_REALTIME time @ms from now, for pthread_cond_timedwait(). */
void util_deadline_in(struct timespec *ts, int64_t ms);

/** Seconds since the epoch (CLOCK_REALTIME). */
int64_t util_now(void);

/** Write all of @p to @fd, retrying short writes and EINTR. */
int util_write_all(int fd, const void *p, size_t n);

/** Read exactly @n bytes at @off; -EIO on a short read (end of file). */
int util_pread_all(int fd, void *p, size_t n, off_t off);

/**
 * The most one POSIX_FADV_WILLNEED call reads of a file at @path (the
 * kernel caps it at the device's readahead, read_ahead_kb): found in
 * sysfs, at least 128 KiB (the kernel's default, also when unknown).
 */
uint64_t util_willneed_max(const char *path);

/**
 * Start reading @len bytes of @fd at @off into the page cache
 * (POSIX_FADV_WILLNEED), without waiting for them, in calls of at most
 * @piece bytes (util_willneed_max(): more would be cut off).  Best effort.
 */
void util_willneed(int fd, uint64_t off, uint64_t len, uint64_t piece);

/**
 * Read a whole small file into @out (capped at @max bytes: -E2BIG beyond).
 */
int util_read_file(const char *path, struct buf *out, size_t max);

/**
 * Write @n bytes to @path atomically: a temporary file in the same
 * directory with mode @mode, fsync, rename, fsync of the directory.
 */
int util_write_file_atomic(const char *path, const void *p, size_t n,
			   mode_t mode);

/** mkdir -p with @mode for the directories it creates. */
int util_mkdir_p(const char *path, mode_t mode);

#endif
