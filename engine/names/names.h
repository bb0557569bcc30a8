/*
 * names - the mapping from tenant names to names in the mounted tree.
 *
 * Names come from the tenant (file and folder names, mail folder names,
 * subjects, site URLs) and are untrusted: they may hold '/', control
 * characters, invalid UTF-8, be "." or "..", be empty or longer than a
 * Linux name may be.  Every name shown by m365fs goes through this module,
 * so snapshots/, live/ and restore/ agree on paths.  The mapping is
 * deterministic and documented in the README ("Names"):
 *
 *   '/'                       -> U+2215 DIVISION SLASH '∕'
 *   control bytes 0x01-0x1F, 0x7F, and bytes that are not valid UTF-8
 *                             -> "%XX" (upper-case hex)
 *   "." and ".."              -> "%2E" and "%2E%2E"
 *   ""                        -> "%00"
 *   longer than NAMES_MAX bytes -> cut at a character boundary, then
 *                                "~" and 8 hex digits of the SHA-256 of
 *                                the original name, extension kept
 *   two items with one name in a folder -> the later ones (by the caller's
 *                                order) get " [xxxxxxxx]" before the
 *                                extension: 8 hex digits of SHA-256 of
 *                                their Graph id
 *
 * A mapped name never contains '/' or NUL, is never "." or "..", and is at
 * most NAMES_MAX bytes.  The original name stays available as the
 * user.m365.name extended attribute.
 *
 * Thread safety: all functions are reentrant.
 * Errors: 0 or -errno (-ENOMEM, -E2BIG from a capped buffer).
 */
#ifndef M365_NAMES_H
#define M365_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define NAMES_MAX 255 /* bytes in one mapped name, as NAME_MAX */

/** Append the safe form of the tenant name @in (@len bytes) to @out. */
int names_map(const char *in, size_t len, struct buf *out);

/**
 * Make the mapped name in @name unique by inserting " [xxxxxxxx]" (from
 * SHA-256 of @graph_id) before its extension, keeping it within NAMES_MAX.
 */
int names_uniquify(struct buf *name, const char *graph_id);

/**
 * Append the file name of a message: "YYYY-MM-DD HHMM subject [xxxxxxxx].eml"
 * with the received time @received (UTC seconds), the mapped subject cut to
 * 120 bytes ("(no subject)" when empty) and 8 hex digits of the SHA-256 of
 * the message's @graph_id.
 */
int names_message(int64_t received, const char *subject, const char *graph_id,
		  struct buf *out);

/**
 * Reverse the mapping as far as it goes, for names written into restore/:
 * '∕' -> '/', "%XX" -> the byte, a trailing " [xxxxxxxx]" is kept.
 * Returns -EINVAL when the result would hold a NUL byte.
 */
int names_unmap(const char *in, struct buf *out);

/**
 * Split a site's webUrl ("https://contoso.sharepoint.com/sites/a/b") into
 * mapped path components ("contoso.sharepoint.com", "sites", "a", "b"),
 * percent-decoding the path first.  Calls @fn for each component in order;
 * stops at the first non-zero return and returns it.  -EINVAL when the URL
 * is not https://host[/path].
 */
int names_site_path(const char *web_url,
		    int (*fn)(void *ctx, const char *component), void *ctx);

#endif
