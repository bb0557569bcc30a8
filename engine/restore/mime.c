/*
 * mime - turn an RFC 5322 / MIME message into the Graph JSON that creates
 * it as a received, non-draft message (GRAPH-API.md 6.5 A): headers,
 * the first text/html (else text/plain) body converted to UTF-8, small
 * attachments inline, PR_MESSAGE_FLAGS without the unsent bit and the
 * delivery / submit times.
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cJSON.h>

#include "restore/restore.h"
#include "util/util.h"

#define MAX_DEPTH 8

struct mime_out {
	struct buf text, html;
	bool have_text, have_html;
	bool html_found;
	cJSON *atts;
	size_t att_bytes; /* inline */
	size_t att_max;
	struct restore_atts *late; /* NULL: everything inline */
};

void restore_atts_release(struct restore_atts *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->n; i++) {
		free(a->v[i].name);
		free(a->v[i].content_type);
		buf_release(&a->v[i].data);
	}
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* Keep attachment @data (moved out) for an upload session. */
static int add_late(struct restore_atts *late, const char *name,
		    const char *type, struct buf *data)
{
	struct restore_att *v = realloc(late->v, (late->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	late->v = v;
	v += late->n;
	memset(v, 0, sizeof(*v));
	v->name = strdup(name);
	v->content_type = strdup(type);
	if (!v->name || !v->content_type) {
		free(v->name);
		free(v->content_type);
		return -ENOMEM;
	}
	v->data = *data;
	memset(data, 0, sizeof(*data));
	late->n++;
	return 0;
}

/* The value of header @name in the header block @h (@hl bytes), unfolded,
 * into @out.  Returns true when present. */
static bool header(const char *h, size_t hl, const char *name, struct buf *out)
{
	size_t nl = strlen(name), i = 0, e;

	buf_truncate(out, 0);
	while (i < hl) {
		for (e = i; e < hl && h[e] != '\n'; e++)
			;
		if (e - i > nl && !strncasecmp(h + i, name, nl) &&
		    h[i + nl] == ':') {
			size_t s = i + nl + 1;

			for (;;) {
				size_t k = s;

				while (k < e && (h[k] == ' ' || h[k] == '\t'))
					k++;
				if (out->len && k > s)
					buf_addch(out, ' ');
				buf_add(out, h + k,
					e - k - (e > k && h[e - 1] == '\r'));
				if (e + 1 < hl &&
				    (h[e + 1] == ' ' || h[e + 1] == '\t')) {
					s = e + 1;
					for (e = s; e < hl && h[e] != '\n'; e++)
						;
					continue;
				}
				break;
			}
			buf_adds(out, "");
			return true;
		}
		i = e + 1;
	}
	return false;
}

/* Parameter @name of a header value ("text/plain; charset=x"). */
static bool param(const char *v, const char *name, struct buf *out)
{
	size_t nl = strlen(name);
	const char *p = v;

	buf_truncate(out, 0);
	while ((p = strchr(p, ';'))) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!strncasecmp(p, name, nl) && p[nl] == '=') {
			p += nl + 1;
			if (*p == '"') {
				const char *q = strchr(++p, '"');

				buf_add(out, p,
					q ? (size_t)(q - p) : strlen(p));
			} else {
				buf_add(out, p, strcspn(p, "; \t"));
			}
			buf_adds(out, "");
			return true;
		}
	}
	return false;
}

static bool utf8_valid(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c < 0x80	    ? 0
			   : (c >> 5) == 6  ? 1
			   : (c >> 4) == 14 ? 2
			   : (c >> 3) == 30 ? 3
					    : 9;

		if (k == 9 || i + k >= n + (k ? 0 : 1))
			return false;
		for (i++; k; k--, i++)
			if (((unsigned char)s[i] >> 6) != 2)
				return false;
	}
	return true;
}

/* Append @n bytes in @charset to @out as UTF-8 (latin-1 when unknown). */
static void to_utf8(const char *charset, const char *s, size_t n,
		    struct buf *out)
{
	iconv_t cd = (iconv_t)-1;
	size_t i;

	if (!charset || !*charset || !strcasecmp(charset, "utf-8") ||
	    !strcasecmp(charset, "us-ascii")) {
		if (utf8_valid(s, n)) {
			buf_add(out, s, n);
			return;
		}
		charset = "iso-8859-1";
	}
	cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1)
		cd = iconv_open("UTF-8", "ISO-8859-1");
	if (cd != (iconv_t)-1) {
		char *in = (char *)s, tmp[4096];
		size_t inl = n;

		while (inl) {
			char *o = tmp;
			size_t ol = sizeof(tmp);
			size_t r = iconv(cd, &in, &inl, &o, &ol);

			buf_add(out, tmp, sizeof(tmp) - ol);
			if (r == (size_t)-1 && errno != E2BIG) {
				buf_adds(out, "?");
				in++;
				inl--;
			}
		}
		iconv_close(cd);
		return;
	}
	for (i = 0; i < n; i++) /* latin-1 by hand */
		if ((unsigned char)s[i] < 0x80) {
			buf_addch(out, s[i]);
		} else {
			buf_addch(out, 0xC0 | ((unsigned char)s[i] >> 6));
			buf_addch(out, 0x80 | ((unsigned char)s[i] & 0x3F));
		}
}

static int hexval(int c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
				      : -1;
}

static void qp_decode(const char *s, size_t n, bool header_q, struct buf *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '=' && i + 1 < n &&
		    (s[i + 1] == '\r' || s[i + 1] == '\n')) {
			i += s[i + 1] == '\r' && i + 2 < n && s[i + 2] == '\n'
				     ? 2
				     : 1;
		} else if (s[i] == '=' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
			   hexval(s[i + 2]) >= 0) {
			buf_addch(out,
				  hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else if (header_q && s[i] == '_') {
			buf_addch(out, ' ');
		} else {
			buf_addch(out, s[i]);
		}
	}
}

static int b64_loose(const char *s, size_t n, struct buf *out)
{
	struct buf clean = BUF_INIT;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			buf_addch(&clean, s[i]);
	rc = util_b64_decode(out, clean.data ? clean.data : "", clean.len);
	buf_release(&clean);
	return rc;
}

/* RFC 2047 encoded words in header value @v, to UTF-8 in @out. */
static void decode_words(const char *v, struct buf *out)
{
	const char *p = v, *prev_end = NULL;

	buf_truncate(out, 0);
	while (*p) {
		const char *q1, *q2, *end;

		if (p[0] == '=' && p[1] == '?' && (q1 = strchr(p + 2, '?')) &&
		    q1[1] && q1[2] == '?' && (end = strstr(q1 + 3, "?="))) {
			struct buf cs = BUF_INIT, raw = BUF_INIT;
			char enc = (char)toupper((unsigned char)q1[1]);

			q2 = q1 + 3;
			buf_add(&cs, p + 2, (size_t)(q1 - p - 2));
			buf_adds(&cs, "");
			if (enc == 'B')
				b64_loose(q2, (size_t)(end - q2), &raw);
			else
				qp_decode(q2, (size_t)(end - q2), true, &raw);
			if (prev_end) /* drop blanks between encoded words */
				while (out->len &&
				       (out->data[out->len - 1] == ' ' ||
					out->data[out->len - 1] == '\t'))
					buf_truncate(out, out->len - 1);
			to_utf8(cs.data, raw.data ? raw.data : "", raw.len,
				out);
			buf_release(&cs);
			buf_release(&raw);
			p = end + 2;
			prev_end = p;
			continue;
		}
		if (*p != ' ' && *p != '\t')
			prev_end = NULL;
		to_utf8(NULL, p, 1, out);
		p++;
	}
	buf_adds(out, "");
}

/* Add the addresses of header value @v to JSON array @arr. */
static void addresses(const char *v, cJSON *arr)
{
	struct buf one = BUF_INIT, dec = BUF_INIT;
	const char *p = v;
	bool quoted = false;
	int angle = 0;

	for (;; p++) {
		if (*p && (quoted || angle || *p != ',')) {
			if (*p == '"')
				quoted = !quoted;
			else if (*p == '<')
				angle++;
			else if (*p == '>' && angle)
				angle--;
			buf_addch(&one, *p);
			continue;
		}
		buf_adds(&one, "");
		{
			char *s = one.data, *lt = strchr(s, '<'), *gt;
			cJSON *a, *e;
			struct buf name = BUF_INIT, addr = BUF_INIT;

			if (lt && (gt = strchr(lt, '>'))) {
				buf_add(&addr, lt + 1, (size_t)(gt - lt - 1));
				buf_add(&name, s, (size_t)(lt - s));
			} else {
				buf_adds(&addr, s);
			}
			buf_adds(&addr, "");
			buf_adds(&name, "");
			decode_words(name.data, &dec);
			/* trim blanks and quotes */
			{
				char *n = dec.data, *z;

				while (*n == ' ' || *n == '"')
					n++;
				z = n + strlen(n);
				while (z > n && (z[-1] == ' ' || z[-1] == '"'))
					*--z = 0;
				{
					char *ad = addr.data, *az;

					while (*ad == ' ')
						ad++;
					az = ad + strlen(ad);
					while (az > ad && az[-1] == ' ')
						*--az = 0;
					if (*ad && strchr(ad, '@')) {
						a = cJSON_CreateObject();
						e = cJSON_AddObjectToObject(
							a, "emailAddress");
						if (*n)
							cJSON_AddStringToObject(
								e, "name", n);
						cJSON_AddStringToObject(
							e, "address", ad);
						cJSON_AddItemToArray(arr, a);
					}
				}
			}
			buf_release(&name);
			buf_release(&addr);
		}
		buf_truncate(&one, 0);
		if (!*p)
			break;
	}
	buf_release(&one);
	buf_release(&dec);
}

/* RFC 5322 date ("Mon, 15 Sep 2025 10:45:30 +0200" or "... GMT"). */
static int64_t parse_date(const char *v)
{
	struct tm tm;
	const char *p = strchr(v, ',');
	char *end;
	long off = 0;

	memset(&tm, 0, sizeof(tm));
	p = p ? p + 1 : v;
	while (*p == ' ' || *p == '\t')
		p++;
	end = strptime(p, "%d %b %Y %H:%M:%S", &tm);
	if (!end)
		return 0;
	while (*end == ' ')
		end++;
	if ((end[0] == '+' || end[0] == '-') &&
	    isdigit((unsigned char)end[1]) && isdigit((unsigned char)end[2]) &&
	    isdigit((unsigned char)end[3]) && isdigit((unsigned char)end[4])) {
		off = ((end[1] - '0') * 10 + (end[2] - '0')) * 3600 +
		      ((end[3] - '0') * 10 + (end[4] - '0')) * 60;
		if (end[0] == '-')
			off = -off;
	}
	return (int64_t)timegm(&tm) - off;
}

static int walk(const char *s, size_t n, int depth, struct mime_out *o);

/* A leaf part: header block @h (@hl), body @b (@bl). */
static int leaf(const char *h, size_t hl, const char *b, size_t bl,
		struct mime_out *o)
{
	struct buf ct = BUF_INIT, cte = BUF_INIT, disp = BUF_INIT,
		   fname = BUF_INIT, cs = BUF_INIT, data = BUF_INIT,
		   dec = BUF_INIT, b64 = BUF_INIT;
	bool attachment;
	int rc = 0;

	if (!header(h, hl, "Content-Type", &ct))
		buf_adds(&ct, "text/plain");
	header(h, hl, "Content-Transfer-Encoding", &cte);
	header(h, hl, "Content-Disposition", &disp);
	if (!(disp.len && param(disp.data, "filename", &fname)))
		param(ct.data, "name", &fname);
	attachment = fname.len ||
		     (disp.len && !strncasecmp(disp.data, "attachment", 10));
	if (cte.len && !strncasecmp(cte.data, "base64", 6))
		rc = b64_loose(b, bl, &data);
	else if (cte.len && !strncasecmp(cte.data, "quoted-printable", 16))
		qp_decode(b, bl, false, &data);
	else
		buf_add(&data, b, bl);
	if (rc < 0)
		goto out;
	if (attachment && o->late && o->att_bytes + data.len > o->att_max) {
		char *type = strndup(ct.data, strcspn(ct.data, "; \t"));

		decode_words(fname.len ? fname.data : "attachment", &dec);
		rc = type ? add_late(o->late, dec.data, type, &data) : -ENOMEM;
		free(type);
	} else if (attachment) {
		cJSON *a = cJSON_CreateObject();
		char *type = strndup(ct.data, strcspn(ct.data, "; \t"));

		decode_words(fname.len ? fname.data : "attachment", &dec);
		util_b64_encode(&b64, data.data ? data.data : "", data.len,
				false);
		cJSON_AddStringToObject(a, "@odata.type",
					"#microsoft.graph.fileAttachment");
		cJSON_AddStringToObject(a, "name", dec.data);
		cJSON_AddStringToObject(a, "contentType",
					type ? type
					     : "application/octet-stream");
		cJSON_AddStringToObject(a, "contentBytes",
					b64.data ? b64.data : "");
		cJSON_AddItemToArray(o->atts, a);
		o->att_bytes += data.len;
		free(type);
	} else if (!strncasecmp(ct.data, "text/html", 9) && !o->have_html) {
		param(ct.data, "charset", &cs);
		to_utf8(cs.data, data.data ? data.data : "", data.len,
			&o->html);
		o->have_html = true;
	} else if (!strncasecmp(ct.data, "text/", 5) && !o->have_text) {
		param(ct.data, "charset", &cs);
		to_utf8(cs.data, data.data ? data.data : "", data.len,
			&o->text);
		o->have_text = true;
	}
out:
	buf_release(&ct);
	buf_release(&cte);
	buf_release(&disp);
	buf_release(&fname);
	buf_release(&cs);
	buf_release(&data);
	buf_release(&dec);
	buf_release(&b64);
	return rc;
}

/* Split header block and body of @s (@n bytes). */
static void split(const char *s, size_t n, size_t *hl, const char **b,
		  size_t *bl)
{
	size_t i;

	for (i = 0; i + 1 < n; i++) {
		if (s[i] == '\n' && s[i + 1] == '\n') {
			*hl = i + 1;
			*b = s + i + 2;
			*bl = n - i - 2;
			return;
		}
		if (s[i] == '\n' && s[i + 1] == '\r' && i + 2 < n &&
		    s[i + 2] == '\n') {
			*hl = i + 1;
			*b = s + i + 3;
			*bl = n - i - 3;
			return;
		}
	}
	*hl = n;
	*b = s + n;
	*bl = 0;
}

static int walk(const char *s, size_t n, int depth, struct mime_out *o)
{
	struct buf ct = BUF_INIT, bnd = BUF_INIT, delim = BUF_INIT;
	const char *b, *p, *start = NULL, *end;
	size_t hl, bl;
	int rc = 0;

	if (depth > MAX_DEPTH)
		return -EBADMSG;
	split(s, n, &hl, &b, &bl);
	if (!header(s, hl, "Content-Type", &ct) ||
	    strncasecmp(ct.data, "multipart/", 10) ||
	    !param(ct.data, "boundary", &bnd)) {
		rc = leaf(s, hl, b, bl, o);
		goto out;
	}
	buf_addf(&delim, "--%s", bnd.data);
	end = b + bl;
	for (p = b; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl + 1 : end;

		if ((size_t)(end - p) >= delim.len &&
		    !memcmp(p, delim.data, delim.len)) {
			if (start) {
				const char *pe = p;

				if (pe > start && pe[-1] == '\n')
					pe--;
				if (pe > start && pe[-1] == '\r')
					pe--;
				rc = walk(start, (size_t)(pe - start),
					  depth + 1, o);
				if (rc < 0)
					goto out;
			}
			if (p + delim.len + 1 < end && p[delim.len] == '-' &&
			    p[delim.len + 1] == '-')
				break;
			start = le;
		}
		p = le;
	}
out:
	buf_release(&ct);
	buf_release(&bnd);
	buf_release(&delim);
	return rc;
}

int restore_mime_json(const char *mime, size_t len, size_t att_max,
		      struct buf *json)
{
	return restore_mime_parse(mime, len, att_max, json, NULL);
}

int restore_mime_parse(const char *mime, size_t len, size_t att_max,
		       struct buf *json, struct restore_atts *late)
{
	struct mime_out o = { 0 };
	struct buf v = BUF_INIT, dec = BUF_INIT;
	cJSON *j = cJSON_CreateObject(), *props, *p, *body;
	const char *b;
	size_t hl, bl;
	int64_t sent = 0, received = 0;
	char when[40];
	char *txt = NULL;
	int rc;

	o.atts = cJSON_CreateArray();
	o.att_max = att_max;
	o.late = late;
	if (late)
		memset(late, 0, sizeof(*late));
	if (!j || !o.atts) {
		rc = -ENOMEM;
		goto out;
	}
	split(mime, len, &hl, &b, &bl);
	if (hl == len || !header(mime, hl, "From", &v)) {
		rc = -EBADMSG; /* not a message */
		goto out;
	}
	{
		cJSON *from = cJSON_CreateArray();

		addresses(v.data, from);
		if (cJSON_GetArraySize(from) > 0)
			cJSON_AddItemToObject(
				j, "from",
				cJSON_Duplicate(cJSON_GetArrayItem(from, 0),
						true));
		cJSON_Delete(from);
	}
	if (header(mime, hl, "Subject", &v)) {
		decode_words(v.data, &dec);
		cJSON_AddStringToObject(j, "subject", dec.data);
	}
	if (header(mime, hl, "To", &v))
		addresses(v.data, cJSON_AddArrayToObject(j, "toRecipients"));
	if (header(mime, hl, "Cc", &v))
		addresses(v.data, cJSON_AddArrayToObject(j, "ccRecipients"));
	if (header(mime, hl, "Message-ID", &v))
		cJSON_AddStringToObject(j, "internetMessageId", v.data);
	if (header(mime, hl, "Date", &v))
		sent = parse_date(v.data);
	if (header(mime, hl, "Received", &v) && strrchr(v.data, ';'))
		received = parse_date(strrchr(v.data, ';') + 1);
	if (!received)
		received = sent;
	rc = walk(mime, len, 0, &o);
	if (rc < 0)
		goto out;
	if (o.att_bytes > att_max) {
		rc = -E2BIG;
		goto out;
	}
	body = cJSON_AddObjectToObject(j, "body");
	cJSON_AddStringToObject(body, "contentType",
				o.have_html ? "html" : "text");
	buf_adds(o.have_html ? &o.html : &o.text, "");
	cJSON_AddStringToObject(body, "content",
				o.have_html ? o.html.data : o.text.data);
	cJSON_AddBoolToObject(j, "isRead", true);
	props = cJSON_AddArrayToObject(j, "singleValueExtendedProperties");
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "id", "Integer 0x0E07");
	cJSON_AddStringToObject(p, "value", "1"); /* read, not unsent */
	cJSON_AddItemToArray(props, p);
	if (received) {
		util_time_format(received, when, sizeof(when));
		p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "id", "SystemTime 0x0E06");
		cJSON_AddStringToObject(p, "value", when);
		cJSON_AddItemToArray(props, p);
	}
	if (sent) {
		util_time_format(sent, when, sizeof(when));
		p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "id", "SystemTime 0x0039");
		cJSON_AddStringToObject(p, "value", when);
		cJSON_AddItemToArray(props, p);
	}
	if (cJSON_GetArraySize(o.atts) > 0) {
		cJSON_AddItemToObject(j, "attachments", o.atts);
		o.atts = NULL;
	}
	txt = cJSON_PrintUnformatted(j);
	if (!txt) {
		rc = -ENOMEM;
		goto out;
	}
	buf_truncate(json, 0);
	rc = buf_adds(json, txt);
out:
	free(txt);
	cJSON_Delete(j);
	cJSON_Delete(o.atts);
	if (rc < 0)
		restore_atts_release(late);
	buf_release(&o.text);
	buf_release(&o.html);
	buf_release(&v);
	buf_release(&dec);
	return rc;
}
