#include "names.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

#define DIV_SLASH "\xe2\x88\x95" /* U+2215 */

/* Length of the valid UTF-8 sequence at @s (at most @n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void short_hash(const char *s, size_t len, char out[9])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)s, len, md);
	util_hex(out, md, 4, false);
}

/* Byte offset of the extension ('.' and after) of a mapped name, or len. */
static size_t ext_start(const char *s, size_t len)
{
	size_t i = len;

	while (i > 1 && len - i < 16) {
		i--;
		if (s[i] == '.')
			return s[i - 1] == '.' ? len : i;
		if (s[i] == ' ')
			break;
	}
	return len;
}

/* Largest cut <= @max that does not split a UTF-8 sequence of @s. */
static size_t char_boundary(const char *s, size_t max)
{
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/*
 * Replace @b (from @start on) by its head cut to fit @room bytes before
 * @insert and the extension: head + insert + ext.
 */
static int fit_with(struct buf *b, size_t start, const char *insert)
{
	char ext[32];
	size_t len = b->len - start, e = ext_start(b->data + start, len);
	size_t elen = len - e, ilen = strlen(insert), head;

	if (elen >= sizeof(ext))
		elen = 0, e = len;
	memcpy(ext, b->data + start + e, elen);
	ext[elen] = '\0';
	head = e;
	if (head + ilen + elen > NAMES_MAX)
		head = char_boundary(b->data + start, NAMES_MAX - ilen - elen);
	buf_truncate(b, start + head);
	if (buf_adds(b, insert) < 0 || buf_adds(b, ext) < 0)
		return -ENOMEM;
	return 0;
}

int names_map(const char *in, size_t len, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t start = out->len, i = 0;
	int rc = 0;

	if (len == 0)
		return buf_adds(out, "%00");
	if ((len == 1 && in[0] == '.') || (len == 2 && !memcmp(in, "..", 2)))
		return buf_adds(out, len == 1 ? "%2E" : "%2E%2E");
	while (i < len && rc == 0) {
		size_t k = s[i] ? utf8_len(s + i, len - i) : 0;

		if (s[i] == '/') {
			rc = buf_adds(out, DIV_SLASH);
			i++;
		} else if (k == 0 || s[i] < 0x20 || s[i] == 0x7f) {
			rc = buf_addf(out, "%%%02X", s[i]);
			i++;
		} else {
			rc = buf_add(out, s + i, k);
			i += k;
		}
	}
	if (rc < 0) {
		buf_truncate(out, start);
		return rc;
	}
	if (out->len - start > NAMES_MAX) {
		char h[11];

		h[0] = '~';
		short_hash(in, len, h + 1);
		rc = fit_with(out, start, h);
	}
	return rc;
}

int names_uniquify(struct buf *name, const char *graph_id)
{
	char tag[12], h[9];

	short_hash(graph_id, strlen(graph_id), h);
	snprintf(tag, sizeof(tag), " [%s]", h);
	return fit_with(name, 0, tag);
}

int names_message(int64_t received, const char *subject, const char *graph_id,
		  struct buf *out)
{
	struct buf subj = BUF_INIT;
	time_t t = (time_t)received;
	char when[32], h[9];
	struct tm tm;
	size_t cut;
	int rc;

	if (!gmtime_r(&t, &tm) ||
	    !strftime(when, sizeof(when), "%Y-%m-%d %H%M", &tm))
		snprintf(when, sizeof(when), "0000-00-00 0000");
	if (!subject || !*subject)
		subject = "(no subject)";
	rc = names_map(subject, strlen(subject), &subj);
	if (rc < 0)
		goto out;
	cut = subj.len > 120 ? char_boundary(subj.data, 120) : subj.len;
	short_hash(graph_id, strlen(graph_id), h);
	rc = buf_addf(out, "%s %.*s [%s].eml", when, (int)cut, subj.data, h);
out:
	buf_release(&subj);
	return rc;
}

static int hexdigit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int names_unmap(const char *in, struct buf *out)
{
	size_t start = out->len, n = strlen(in), i = 0;
	int rc = 0;

	while (i < n && rc == 0) {
		if (!strncmp(in + i, DIV_SLASH, 3)) {
			rc = buf_addch(out, '/');
			i += 3;
		} else if (in[i] == '%' && i + 2 < n &&
			   hexdigit((unsigned char)in[i + 1]) >= 0 &&
			   hexdigit((unsigned char)in[i + 2]) >= 0) {
			int v = hexdigit((unsigned char)in[i + 1]) << 4 |
				hexdigit((unsigned char)in[i + 2]);

			if (v == 0) {
				buf_truncate(out, start);
				return -EINVAL;
			}
			rc = buf_addch(out, v);
			i += 3;
		} else {
			rc = buf_addch(out, in[i]);
			i++;
		}
	}
	if (rc < 0)
		buf_truncate(out, start);
	return rc;
}

int names_site_path(const char *web_url,
		    int (*fn)(void *ctx, const char *component), void *ctx)
{
	struct buf dec = BUF_INIT, comp = BUF_INIT;
	const char *p, *host_end;
	size_t i;
	int rc = 0;

	if (!web_url || strncmp(web_url, "https://", 8))
		return -EINVAL;
	p = web_url + 8;
	host_end = p + strcspn(p, "/?#");
	if (host_end == p)
		return -EINVAL;
	/* percent-decode the path; a %00 or bad escape stays as it is */
	for (i = (size_t)(host_end - web_url);
	     web_url[i] && web_url[i] != '?' && web_url[i] != '#' && !rc; i++) {
		int hi = -1, lo = -1;

		if (web_url[i] == '%') {
			hi = hexdigit((unsigned char)web_url[i + 1]);
			if (hi >= 0)
				lo = hexdigit((unsigned char)web_url[i + 2]);
		}
		if (hi >= 0 && lo >= 0 && (hi | lo)) {
			rc = buf_addch(&dec, hi << 4 | lo);
			i += 2;
		} else {
			rc = buf_addch(&dec, web_url[i]);
		}
	}
	if (rc < 0)
		goto out;
	rc = names_map(p, (size_t)(host_end - p), &comp);
	if (rc == 0)
		rc = fn(ctx, comp.data);
	for (p = dec.data; rc == 0 && *p;) {
		size_t k = strcspn(p, "/");

		if (k > 0) {
			buf_reset(&comp);
			rc = names_map(p, k, &comp);
			if (rc == 0)
				rc = fn(ctx, comp.data);
		}
		p += k;
		if (*p == '/')
			p++;
	}
out:
	buf_release(&dec);
	buf_release(&comp);
	return rc;
}
