"""Deterministic tree of office files and mail for the peer benchmark.

    /usr/bin/python3 gen_tree.py DIR [MB]

Writes about MB megabytes (default 665) under DIR, always the same bytes
for the same MB:
  docs/   .docx/.xlsx/.pptx: zip containers (deflated XML parts and
          stored media, as Office writes them)
  pdf/    PDF-like files: text objects, deflated content streams, images
  text/   .txt/.csv/.html/.md: plain, compressible text
  mail/   .eml: RFC 5322 messages, quoted text bodies, base64 attachments
          (documents and PDFs from the tree and photos)
  copies/ files copied or lightly edited from the others (shares keep a
          few versions and copies of the same document)
Shares by bytes: docs 30 %, pdf 18 %, text 12 %, mail 32 %, copies 8 %.
"""
import base64
import io
import os
import random
import sys
import zipfile
import zlib

WORDS = ("meeting budget quarterly report schedule review project plan "
         "draft update customer invoice contract deadline launch release "
         "roadmap team offsite agenda notes summary travel approval feedback "
         "design proposal estimate migration backup server storage policy "
         "security training onboarding hiring expense forecast the of and "
         "to in for with on by from revenue margin north south region "
         "sales total pending approved rejected Contoso Fabrikam Northwind "
         "Megan Bowen Alex Wilber Adele Vance Lee Gu Diego Siciliani").split()
NAMES = ["Megan Bowen", "Alex Wilber", "Adele Vance", "Lee Gu",
         "Diego Siciliani", "Isaiah Langer", "Johanna Lorenz", "Nestor Wilke"]


def words(rng, n):
    return " ".join(rng.choices(WORDS, k=n))


def paragraphs(rng, n):
    out = []
    for _ in range(n):
        s = words(rng, rng.randint(12, 60))
        out.append(s[0].upper() + s[1:] + ".")
    return out


def media(rng, n):
    """Bytes of an already-compressed image: incompressible."""
    return rng.randbytes(n)


def office(rng, kind, size):
    paras = paragraphs(rng, max(4, size // 4000))
    if kind == "xlsx":
        rows = []
        for r in range(max(10, size // 300)):
            rows.append("<row r=\"%d\">%s</row>" % (r + 1, "".join(
                "<c r=\"%s%d\" t=\"n\"><v>%d.%02d</v></c>" % (
                    "ABCDEFGH"[c], r + 1, rng.randint(0, 99999),
                    rng.randint(0, 99)) for c in range(8))))
        body = ("<worksheet xmlns=\"http://schemas.openxmlformats.org/"
                "spreadsheetml/2006/main\"><sheetData>%s</sheetData>"
                "</worksheet>" % "".join(rows))
        part = "xl/worksheets/sheet1.xml"
    else:
        body = ("<w:document xmlns:w=\"http://schemas.openxmlformats.org/"
                "wordprocessingml/2006/main\"><w:body>%s</w:body>"
                "</w:document>" % "".join(
                    "<w:p><w:r><w:rPr><w:lang w:val=\"en-US\"/></w:rPr>"
                    "<w:t xml:space=\"preserve\">%s</w:t></w:r></w:p>" % p
                    for p in paras))
        part = "word/document.xml" if kind == "docx" else \
            "ppt/slides/slide1.xml"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<?xml version=\"1.0\"?><Types/>")
        z.writestr("docProps/core.xml",
                   "<cp:coreProperties><dc:creator>%s</dc:creator>"
                   "</cp:coreProperties>" % rng.choice(NAMES))
        z.writestr(part, body)
        left = size - buf.tell() - len(body) // 5
        i = 1
        while left > 4096:  # pictures, stored (already compressed)
            n = min(left, rng.choice([30000, 120000, 400000, 1500000]))
            z.writestr(zipfile.ZipInfo("word/media/image%d.jpeg" % i),
                       media(rng, n), zipfile.ZIP_STORED)
            left -= n
            i += 1
    return buf.getvalue()


def pdf(rng, size):
    out = [b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"]
    n = 1
    total = 0
    while total < size:
        if rng.random() < 0.35:  # uncompressed text object
            text = " ".join("(%s) Tj T*" % words(rng, 10)
                            for _ in range(rng.randint(20, 200)))
            data = ("BT /F1 11 Tf 72 720 Td %s ET" % text).encode()
            filt = b""
        elif rng.random() < 0.6:  # deflated content stream
            data = zlib.compress(" ".join(paragraphs(rng, 30)).encode(), 6)
            filt = b"/Filter /FlateDecode "
        else:  # image
            data = media(rng, rng.choice([20000, 80000, 300000]))
            filt = b"/Subtype /Image /Filter /DCTDecode "
        obj = b"%d 0 obj\n<< %s/Length %d >>\nstream\n%s\nendstream\nendobj\n" \
            % (n, filt, len(data), data)
        out.append(obj)
        total += len(obj)
        n += 1
    out.append(b"trailer\n<< /Size %d >>\n%%%%EOF\n" % n)
    return b"".join(out)


def text(rng, ext, size):
    if ext == "csv":
        lines = ["id,date,customer,region,amount,status"]
        while sum(map(len, lines)) < size:
            lines.append("%d,2026-%02d-%02d,%s,%s,%d.%02d,%s" % (
                rng.randint(1, 10**6), rng.randint(1, 12), rng.randint(1, 28),
                rng.choice(NAMES), rng.choice(["north", "south", "east"]),
                rng.randint(0, 9999), rng.randint(0, 99),
                rng.choice(["pending", "approved", "rejected"])))
        return ("\r\n".join(lines) + "\r\n").encode()
    paras = []
    while sum(map(len, paras)) < size:
        paras += paragraphs(rng, 8)
    if ext == "html":
        return ("<html><body>%s</body></html>" % "".join(
            "<p>%s</p>\n" % p for p in paras)).encode()
    return "\n\n".join(paras).encode()


def b64(data):
    s = base64.b64encode(data)
    return b"\r\n".join(s[i:i + 76] for i in range(0, len(s), 76))


def mail(rng, i, attach_pool):
    sender, to = rng.sample(NAMES, 2)
    subject = words(rng, rng.randint(3, 8))
    body = "\r\n\r\n".join(paragraphs(rng, rng.randint(1, 6)))
    quoted = "\r\n".join("> " + line for line in
                         "\r\n".join(paragraphs(rng, rng.randint(0, 8)))
                         .split("\r\n"))
    boundary = "=_m365_%08x" % rng.getrandbits(32)
    hdr = ("Message-ID: <%d.%08x@contoso.com>\r\nDate: Mon, %d Nov 2026 "
           "%02d:%02d:00 +0000\r\nFrom: %s <%s@contoso.com>\r\nTo: %s "
           "<%s@contoso.com>\r\nSubject: %s\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n" % (
               i, rng.getrandbits(32), rng.randint(1, 28), rng.randint(0, 23),
               rng.randint(0, 59), sender, sender.split()[0].lower(), to,
               to.split()[0].lower(), subject, boundary))
    parts = [hdr.encode(), b"--%s\r\nContent-Type: text/plain; "
             b"charset=utf-8\r\n\r\n%s\r\n\r\n%s\r\n" % (
                 boundary.encode(), body.encode(), quoted.encode())]
    if rng.random() < 0.55:
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            name, data = rng.choice(attach_pool)
            parts.append(b"--%s\r\nContent-Type: application/octet-stream; "
                         b"name=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n"
                         b"Content-Disposition: attachment; filename=\"%s\"\r\n"
                         b"\r\n%s\r\n" % (boundary.encode(), name.encode(),
                                          name.encode(), b64(data)))
    parts.append(b"--%s--\r\n" % boundary.encode())
    return b"".join(parts)


def main():
    top = sys.argv[1]
    total = int(float(sys.argv[2]) * 1e6) if len(sys.argv) > 2 else 665000000
    rng = random.Random(665)
    written = 0
    files = []

    def put(rel, data):
        nonlocal written
        path = os.path.join(top, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        written += len(data)
        files.append(rel)

    def fill(share, make):
        goal = written + int(total * share)
        k = 0
        while written < goal:
            make(k)
            k += 1

    attach_pool = []

    def doc(k):
        kind = rng.choice(["docx", "docx", "xlsx", "pptx"])
        size = int(rng.lognormvariate(11.5, 1.2))
        size = max(8000, min(size, 12000000))
        data = office(rng, kind, size)
        put("docs/Project %03d/%s %05d.%s" % (k % 40, words(rng, 2), k, kind),
            data)
        if len(data) < 3000000 and rng.random() < 0.3:
            attach_pool.append(("%s.%s" % (words(rng, 1), kind), data))

    def pdfs(k):
        size = max(20000, min(int(rng.lognormvariate(12, 1.1)), 15000000))
        data = pdf(rng, size)
        put("pdf/%s/%s %05d.pdf" % (rng.choice(["Invoices", "Contracts",
                                                  "Reports"]),
                                    words(rng, 2), k), data)
        if len(data) < 3000000 and rng.random() < 0.3:
            attach_pool.append(("%s.pdf" % words(rng, 1), data))

    def texts(k):
        ext = rng.choice(["txt", "csv", "csv", "html", "md"])
        size = max(500, min(int(rng.lognormvariate(10, 1.3)), 8000000))
        put("text/%s %05d.%s" % (words(rng, 2), k, ext), text(rng, ext, size))

    def mails(k):
        if rng.random() < 0.3 or not attach_pool:  # a fresh photo
            attach_pool.append(("IMG_%04d.jpg" % k,
                                media(rng, rng.choice([60000, 250000,
                                                       900000]))))
        put("mail/%s/%06d.eml" % (rng.choice(["Inbox", "Sent Items",
                                              "Archive", "Projects"]), k),
            mail(rng, k, attach_pool))

    def copies(k):
        src = rng.choice(files)
        with open(os.path.join(top, src), "rb") as f:
            data = f.read()
        if rng.random() < 0.5 and len(data) > 1000:  # an edited version
            at = rng.randrange(len(data))
            data = data[:at] + rng.randbytes(rng.randint(1, 5000)) + \
                data[at + rng.randint(0, 5000):]
        put("copies/%05d %s" % (k, os.path.basename(src)), data)

    fill(0.30, doc)
    fill(0.18, pdfs)
    fill(0.12, texts)
    fill(0.32, mails)
    while written < total:
        copies(len(files))
    print("%d files, %d bytes" % (len(files), written))


if __name__ == "__main__":
    main()
