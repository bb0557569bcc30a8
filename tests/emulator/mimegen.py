"""Deterministic MIME messages for the mail emulator.

A message is described by a small "fields" dict (subject, from, to, cc,
times, charset, bodies, attachments); render() turns it into RFC 5322 /
MIME bytes with CRLF line ends, and body_spec() derives the bulky parts
(bodies, attachment bytes) from a seed so that the generator only has to
keep the seed in memory. parse() reads an imported .eml back into fields.
"""
import base64
import datetime
import email
import email.header
import email.policy
import email.utils
import hashlib
import quopri
import random
import re

WORDS = ("meeting budget quarterly report schedule review project plan "
         "draft update customer invoice contract deadline launch release "
         "roadmap team offsite agenda notes summary travel approval feedback "
         "design proposal estimate migration backup server storage policy "
         "security training onboarding hiring expense forecast").split()
UTF8_WORDS = ["Grüße", "naïve", "façade", "日本語", "Ελληνικά", "😀",
              "Crème brûlée", "Łódź", "привет", "Ærøskøbing"]
LATIN1_WORDS = ["café", "Zürich", "Ångström", "señor", "garçon", "Müller",
                "déjà vu", "Øresund"]
ATTACHMENTS = [("report.pdf", "application/pdf"),
               ("data.csv", "text/csv"),
               ("photo.jpg", "image/jpeg"),
               ("Übersicht.xlsx", "application/vnd.openxmlformats-"
                "officedocument.spreadsheetml.sheet"),
               ("notes.txt", "text/plain"),
               ("archive.zip", "application/zip")]


def _words(rng, n, charset):
    extra = UTF8_WORDS if charset == "utf-8" else (
        LATIN1_WORDS if charset == "iso-8859-1" else [])
    out = rng.choices(WORDS, k=n)
    if extra and n:
        for i in rng.sample(range(n), rng.randint(0, max(1, n // 8))):
            out[i] = rng.choice(extra)
    return out


def body_spec(seed, charset, kind, n_att):
    """(text body, html body or None, attachments) derived from SEED.
    kind: "plain" | "alt" (multipart/alternative); attachments are
    [{"name", "contentType", "data", "isInline", "contentId"}]."""
    rng = random.Random(seed)
    paras = []
    for _ in range(rng.randint(1, 4)):
        s = " ".join(_words(rng, rng.randint(8, 40), charset))
        paras.append(s[0].upper() + s[1:] + ".")
    text = "Hello,\n\n" + "\n\n".join(paras) + "\n\nRegards\n"
    html = None
    if kind == "alt":
        html = ("<html><head><meta http-equiv=\"Content-Type\" content=\""
                "text/html; charset=%s\"></head><body>\r\n<p>Hello,</p>\r\n"
                % charset + "".join("<p>%s</p>\r\n" % p for p in paras) +
                "<p>Regards</p>\r\n</body></html>\r\n")
    atts = []
    for i in range(n_att):
        name, ctype = ATTACHMENTS[rng.randrange(len(ATTACHMENTS))]
        size = rng.choice([120, 900, 4000, 15000, 40000])
        if ctype.startswith("text/"):
            w = _words(rng, size // 6 + 5, "us-ascii")
            data = "\r\n".join(",".join(w[i:i + 5]) for i in range(
                0, len(w), 5)).encode()[:size]
        else:
            data = rng.getrandbits(8 * size).to_bytes(size, "little")
        if i:
            stem, dot, ext = name.rpartition(".")
            name = "%s %d.%s" % (stem, i, ext)
        atts.append({"name": name, "contentType": ctype, "data": data,
                     "isInline": False, "contentId": None})
    return text, html, atts


def _hdr(value, charset):
    """Header text, RFC 2047 encoded when it is not ASCII."""
    try:
        value.encode("ascii")
        return value
    except UnicodeEncodeError:
        cs = charset if charset in ("utf-8", "iso-8859-1") else "utf-8"
        try:
            value.encode(cs)
        except UnicodeEncodeError:
            cs = "utf-8"
        return email.header.Header(value, cs).encode(linesep="\r\n")


def _addr(a, charset):
    name, address = a
    if not name:
        return address
    try:
        name.encode("ascii")
        if re.search(r'[()<>@,;:\\".\[\]]', name):
            name = '"%s"' % name.replace("\\", "\\\\").replace('"', '\\"')
        return "%s <%s>" % (name, address)
    except UnicodeEncodeError:
        return "%s <%s>" % (_hdr(name, charset), address)


def _qp(text, charset):
    if charset == "us-ascii":
        try:
            return "7bit", text.replace("\n", "\r\n").encode("ascii")
        except UnicodeEncodeError:
            charset = "utf-8"
    raw = text.replace("\r\n", "\n").encode(charset, "replace")
    enc = quopri.encodestring(raw, quotetabs=False)
    return "quoted-printable", enc.replace(b"\r\n", b"\n").replace(
        b"\n", b"\r\n")


def _b64lines(data):
    b = base64.b64encode(data)
    return b"\r\n".join(b[i:i + 76] for i in range(0, len(b), 76))


def _text_part(ctype, text, charset):
    cte, body = _qp(text, charset)
    if cte == "7bit":
        charset = "us-ascii"
    return (b"Content-Type: %s; charset=\"%s\"\r\nContent-Transfer-Encoding:"
            b" %s\r\n\r\n" % (ctype.encode(), charset.encode(), cte.encode())
            + body)


def _attachment_part(a):
    name = a["name"]
    try:
        name.encode("ascii")
        disp = 'filename="%s"' % name
        ctname = 'name="%s"' % name
    except UnicodeEncodeError:
        q = email.utils.encode_rfc2231(name, "utf-8")
        disp = "filename*=%s" % q
        ctname = 'name="%s"' % _hdr(name, "utf-8")
    head = "Content-Type: %s; %s\r\nContent-Description: %s\r\n" \
           "Content-Disposition: %s; %s; size=%d\r\n" % (
               a["contentType"], ctname, _hdr(name, "utf-8"),
               "inline" if a.get("isInline") else "attachment", disp,
               len(a["data"]))
    if a.get("contentId"):
        head += "Content-ID: <%s>\r\n" % a["contentId"]
    head += "Content-Transfer-Encoding: base64\r\n\r\n"
    return head.encode() + _b64lines(a["data"])


def _multipart(subtype, parts, boundary):
    out = b"Content-Type: multipart/%s;\r\n\tboundary=\"%s\"\r\n\r\n" % (
        subtype.encode(), boundary.encode())
    for p in parts:
        out += b"--" + boundary.encode() + b"\r\n" + p + b"\r\n"
    return out + b"--" + boundary.encode() + b"--\r\n"


def render(f):
    """MIME bytes of a message described by fields F: subject, from
    (name, address), to/cc [(name, address)], sent, received (epoch),
    message_id, charset, text, html (or None), attachments, importance."""
    cs = f.get("charset") or "utf-8"
    bseed = hashlib.sha1(f["message_id"].encode()).hexdigest()
    lines = [
        "Received: from EMU01.prod.outlook.emulator (10.0.0.1) by "
        "EMU02.prod.outlook.emulator with Microsoft SMTP Server; %s" %
        email.utils.formatdate(f["received"], usegmt=True),
        "From: %s" % _addr(f["from"], cs) if f.get("from") else None,
        "To: %s" % ",\r\n\t".join(_addr(a, cs) for a in f["to"])
        if f.get("to") else None,
        "Cc: %s" % ",\r\n\t".join(_addr(a, cs) for a in f["cc"])
        if f.get("cc") else None,
        "Subject: %s" % _hdr(f.get("subject") or "", cs),
        "Date: %s" % email.utils.format_datetime(
            datetime.datetime.fromtimestamp(f["sent"], datetime.timezone.utc)
        ).replace("-0000", "+0000"),
        "Message-ID: %s" % f["message_id"],
        "Importance: %s" % f["importance"]
        if f.get("importance", "normal") != "normal" else None,
        "Content-Language: en-US",
        "MIME-Version: 1.0",
    ]
    head = "\r\n".join(x for x in lines if x is not None).encode() + b"\r\n"
    text_part = _text_part("text/plain", f.get("text") or "", cs)
    if f.get("html"):
        body = _multipart("alternative", [
            text_part, _text_part("text/html", f["html"], cs)],
            "_000_%s_" % bseed[:24])
    else:
        body = text_part
    atts = f.get("attachments") or []
    if atts:
        body = _multipart("mixed", [body] + [_attachment_part(a)
                                             for a in atts],
                          "_004_%s_" % bseed[:24])
    return head + body


def preview(text, n=255):
    """bodyPreview: whitespace collapsed, at most N characters."""
    return re.sub(r"\s+", " ", text or "").strip()[:n]


def _decode(h):
    if h is None:
        return None
    return str(email.header.make_header(email.header.decode_header(str(h))))


def _addrs(h):
    if not h:
        return []
    return [(_decode(n) or "", a) for n, a in email.utils.getaddresses(
        [str(h)]) if a]


def parse(raw):
    """Fields of an imported message (RFC 822 bytes); None if RAW has no
    header block at all."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    if not msg.keys():
        return None
    f = {"subject": _decode(msg.get("Subject")) or "",
         "from": (_addrs(msg.get("From")) or [None])[0],
         "to": _addrs(msg.get("To")), "cc": _addrs(msg.get("Cc")),
         "bcc": _addrs(msg.get("Bcc")),
         "reply_to": _addrs(msg.get("Reply-To")),
         "message_id": msg.get("Message-ID"), "sent": None,
         "text": "", "html": None, "attachments": [],
         "importance": (msg.get("Importance") or "normal").lower(),
         "headers": [(k, str(v)) for k, v in msg.items()]}
    if msg.get("Date"):
        try:
            f["sent"] = email.utils.parsedate_to_datetime(
                msg["Date"]).timestamp()
        except (TypeError, ValueError):
            pass
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disp = (part.get("Content-Disposition") or "").lower()
        fname = part.get_filename()
        payload = part.get_payload(decode=True) or b""
        if fname or disp.startswith("attachment"):
            cid = (part.get("Content-ID") or "").strip("<> ") or None
            f["attachments"].append({
                "name": _decode(fname) or "attachment", "contentType": ctype,
                "data": payload, "isInline": disp.startswith("inline"),
                "contentId": cid})
            continue
        cs = part.get_content_charset() or "us-ascii"
        try:
            text = payload.decode(cs, "replace")
        except LookupError:
            text = payload.decode("latin-1")
        if ctype == "text/html" and f["html"] is None:
            f["html"] = text
        elif ctype == "text/plain" and not f["text"]:
            f["text"] = text
    return f
