"""Exchange Online mail through Graph: mailboxes, mail folders (hidden and
search folders), messages with real MIME ($value), message and folder
delta, JSON and MIME import, move, attachments and Outlook-style
attachment upload sessions, the 4-concurrent-requests limit.

State: one MailStore per tenant (tenant.mailstore), guarded by
core.EMU.lock. generate() fills it deterministically from an rng;
truth() and mutate() serve the control API. See README.md ("Mail").
"""
import base64
import binascii
import hashlib
import json
import random
import re
import secrets
import time
import urllib.parse

try:
    from . import core, entra, mimegen
except ImportError:  # run as a script from tests/emulator
    import core
    import entra
    import mimegen

MSG_PREFIX = b"\x00\x03\x24\x00"  # "AAMkA..." like Exchange item ids
IMM_PREFIX = b"\x00\x09\x00\x2e"  # "AAkALg..." like immutable ids
FOLDER_PREFIX = b"\x00\x01\x2e\x00"  # "AAEuAA..."
BASE_TIME = 1793491200  # 2026-11-01T00:00:00Z: generated mail is older
DEFAULT_PAGE = 10
MAX_TOP = 1000

WELL_KNOWN = [  # (well-known name, display name, hidden)
    ("archive", "Archive", False),
    ("conversationhistory", "Conversation History", False),
    ("deleteditems", "Deleted Items", False),
    ("drafts", "Drafts", False),
    ("inbox", "Inbox", False),
    ("junkemail", "Junk Email", False),
    ("outbox", "Outbox", False),
    ("sentitems", "Sent Items", False),
    ("syncissues", "Sync Issues", False),
    ("scheduled", "Scheduled", False),
    ("clutter", "Clutter", True),
]
WELL_KNOWN_NAMES = {"archive", "clutter", "conflicts",
                    "conversationhistory", "deleteditems", "drafts",
                    "inbox", "junkemail", "localfailures", "msgfolderroot",
                    "outbox", "recoverableitemsdeletions", "scheduled",
                    "searchfolders", "sentitems", "serverfailures",
                    "syncissues"}

MESSAGE_PROPS = [
    "createdDateTime", "lastModifiedDateTime", "changeKey", "categories",
    "receivedDateTime", "sentDateTime", "hasAttachments",
    "internetMessageId", "subject", "bodyPreview", "importance",
    "parentFolderId", "conversationId", "conversationIndex",
    "isDeliveryReceiptRequested", "isReadReceiptRequested", "isRead",
    "isDraft", "webLink", "inferenceClassification", "body", "sender",
    "from", "toRecipients", "ccRecipients", "bccRecipients", "replyTo",
    "flag", "uniqueBody", "internetMessageHeaders"]
FOLDER_PROPS = ["displayName", "parentFolderId", "childFolderCount",
                "unreadItemCount", "totalItemCount", "isHidden"]

SUBJECTS = ["Quarterly report", "Project {w} status", "Re: {w} review",
            "Fwd: {w} schedule", "Team offsite", "Invoice {n}",
            "Weekly digest #{n}", "Lunch?", "Re: Re: {w}",
            "Action required: {w} approval"]
SUBJECTS_UTF8 = ["Grüße aus München 🎉", "Réunion {w} — ordre du jour",
                 "日本語の件名 {n}", "Ελληνικά: {w}"]
SUBJECTS_LATIN1 = ["Café in Zürich", "Señor {w}: déjà vu",
                   "Ångström {n}"]


# ------------------------------------------------------------------ model
class Folder:
    __slots__ = ("id", "name", "parent", "hidden", "search", "wk", "seq",
                 "mbx")

    def __init__(self, mbx, fid, name, parent, hidden=False, search=None,
                 wk=None):
        self.mbx, self.id, self.name, self.parent = mbx, fid, name, parent
        self.hidden, self.search, self.wk = hidden, search, wk
        self.seq = 0


class Msg:
    __slots__ = ("id", "imm", "folder", "seq", "created", "modified",
                 "received", "sent", "subject", "frm", "to", "cc",
                 "is_read", "is_draft", "importance", "flag", "categories",
                 "seed", "charset", "kind", "n_att", "raw", "fields",
                 "internet_id", "digest", "size", "extra_atts",
                 "ext_props")

    def __init__(self):
        self.raw = self.fields = self.digest = self.size = None
        self.extra_atts = []
        self.ext_props = []
        self.categories = []
        self.flag = "notFlagged"
        self.importance = "normal"


class Mailbox:
    """Folders and messages of one user."""

    def __init__(self, index, user_id, upn, name):
        self.index, self.user_id, self.upn, self.name = \
            index, user_id, upn, name
        self.folders = {}  # id -> Folder (insertion ordered)
        self.children = {}  # folder id -> [child folder ids]
        self.msgs = {}  # current regular id -> Msg
        self.imm = {}  # immutable id -> Msg
        self.by_folder = {}  # folder id -> {imm id: Msg}
        self.tomb = {}  # folder id -> [(seq, regular id, immutable id)]
        self.folder_tomb = []  # [(seq, folder id)]
        self.seq = 1
        self.counter = 0
        self.wk = {}  # well-known name -> folder id
        self.root = None
        self.inflight = 0
        self.hash = hashlib.sha1(("mbx:%s" % user_id).encode()).digest()

    def next_seq(self):
        self.seq += 1
        return self.seq

    def new_id(self, prefix, kind):
        self.counter += 1
        h = hashlib.sha1(b"%s:%s:%d" % (self.hash, kind.encode(),
                                        self.counter)).digest()
        return base64.b64encode(prefix + self.hash[:8] + h[:12] +
                                self.counter.to_bytes(4, "big")).decode()

    def add_folder(self, name, parent, hidden=False, search=None, wk=None):
        f = Folder(self, self.new_id(FOLDER_PREFIX, "f"), name, parent,
                   hidden, search, wk)
        f.seq = self.next_seq()
        self.folders[f.id] = f
        self.children.setdefault(f.id, [])
        self.by_folder[f.id] = {}
        self.tomb[f.id] = []
        if parent:
            self.children[parent].append(f.id)
        if wk:
            self.wk[wk] = f.id
        return f

    def path(self, fid):
        parts = []
        while fid and fid != self.root:
            f = self.folders[fid]
            parts.append(f.name)
            fid = f.parent
        return "/".join(reversed(parts))

    def add_msg(self, m, folder_id):
        m.id = self.new_id(MSG_PREFIX, "m")
        if not getattr(m, "imm", None):
            m.imm = self.new_id(IMM_PREFIX, "i")
        m.folder = folder_id
        m.seq = self.next_seq()
        self.msgs[m.id] = m
        self.imm[m.imm] = m
        self.by_folder[folder_id][m.imm] = m

    def remove_msg(self, m):
        del self.msgs[m.id]
        del self.imm[m.imm]
        del self.by_folder[m.folder][m.imm]
        self.tomb[m.folder].append((self.next_seq(), m.id, m.imm))

    def move_msg(self, m, dest):
        self.remove_msg(m)
        self.add_msg(m, dest)

    def search_members(self, f):
        """Messages a search folder shows (they live in other folders)."""
        q = f.search.get("_needle", "")
        out = []
        todo = list(f.search["sourceFolderIds"])
        seen = set()
        while todo:
            fid = todo.pop(0)
            if fid in seen or fid not in self.folders:
                continue
            seen.add(fid)
            for m in self.by_folder[fid].values():
                if q in (m.subject or "").lower():
                    out.append(m)
            if f.search.get("includeNestedFolders"):
                todo.extend(c for c in self.children[fid]
                            if not self.folders[c].search)
        return out


class MailStore:
    def __init__(self):
        self.mailboxes = {}  # user id (lower) -> Mailbox
        self.by_upn = {}  # upn (lower) -> Mailbox
        self.no_mailbox = set()  # user ids / upns (lower) without one
        self.rounds = {}  # delta round id -> round state
        self.round_order = []
        self.epoch = 0
        self.knob_seen = None
        self.sessions = {}  # attachment upload session id -> state


def store(tenant=None):
    t = tenant if tenant is not None else core.EMU.tenant
    if isinstance(t, dict):
        return t.get("mailstore")
    return getattr(t, "mailstore", None)


# -------------------------------------------------------------- generator
def _has_mailbox(u):
    v = entra.tget(u, "has_mailbox", "mailbox", "mailboxEnabled")
    if v is not None:
        return bool(v)
    return bool(entra.tget(u, "mail"))


def _pick_subject(rng, charset, n):
    w = rng.choice(mimegen.WORDS)
    if charset == "utf-8" and rng.random() < 0.5:
        t = rng.choice(SUBJECTS_UTF8)
    elif charset == "iso-8859-1" and rng.random() < 0.6:
        t = rng.choice(SUBJECTS_LATIN1)
    else:
        t = rng.choice(SUBJECTS)
    return t.format(w=w.capitalize(), n=n % 7 + 1)


def _gen_message(mb, rng, folder_id, people, draft=False, subject=None,
                 sent_by_owner=False):
    m = Msg()
    m.charset = rng.choice(["utf-8", "utf-8", "iso-8859-1", "us-ascii"])
    m.kind = rng.choice(["plain", "alt", "alt"])
    m.n_att = rng.choice([0, 0, 0, 0, 1, 1, 2])
    m.seed = rng.getrandbits(64)
    m.subject = subject if subject is not None else _pick_subject(
        rng, m.charset, rng.randrange(1000))
    m.received = BASE_TIME - rng.randrange(700 * 86400)
    m.sent = m.received - rng.randrange(1, 300)
    m.created = m.modified = m.received
    other = rng.choice(people) if people else ("Someone", "someone@"
                                               "example.com")
    owner = (mb.name, mb.upn)
    if sent_by_owner or draft:
        m.frm, m.to = owner, [other]
    else:
        m.frm, m.to = other, [owner]
    m.cc = [rng.choice(people)] if people and rng.random() < 0.3 else []
    m.is_draft = draft
    m.is_read = True if (draft or sent_by_owner) else rng.random() < 0.8
    m.importance = rng.choice(["normal"] * 9 + ["high", "low"])
    m.flag = "flagged" if rng.random() < 0.05 else "notFlagged"
    m.internet_id = "<%s@EMU01.prod.outlook.emulator>" % hashlib.sha1(
        b"%d" % m.seed).hexdigest()[:24].upper()
    mb.add_msg(m, folder_id)
    return m


def _gen_mailbox(mb, rng, n_msgs, people, full):
    root = mb.add_folder("Top of Information Store", None,
                         wk="msgfolderroot")
    mb.root = root.id
    for wk, name, hidden in WELL_KNOWN:
        mb.add_folder(name, root.id, hidden=hidden, wk=wk)
    inbox, arch = mb.wk["inbox"], mb.wk["archive"]
    user_folders = []
    if full or rng.random() < 0.7:
        proj = mb.add_folder("Projects", inbox)
        alpha = mb.add_folder("Alpha", proj.id)
        user_folders += [proj.id, alpha.id, mb.add_folder("Beta",
                                                          proj.id).id]
        user_folders.append(mb.add_folder("Old", alpha.id).id)
        mb.add_folder("Empty subfolder", alpha.id)
    if full or rng.random() < 0.5:
        user_folders.append(mb.add_folder("A/B tests", inbox).id)
        user_folders.append(mb.add_folder("Réunions", inbox).id)
    if full or rng.random() < 0.5:
        user_folders.append(mb.add_folder("2025", arch).id)
    mb.add_folder("Empty", inbox)
    hidden = mb.add_folder("Clutters", inbox, hidden=True)
    for i in range(rng.randint(0, 3) if not full else 2):
        user_folders.append(mb.add_folder("Receipts %d" % (i + 1),
                                          root.id).id)
    sf = mb.add_folder("Weekly digests", inbox, search={
        "isSupported": True,
        "filterQuery": "contains(subject, 'weekly digest')",
        "includeNestedFolders": True, "sourceFolderIds": [inbox],
        "_needle": "weekly digest"})
    assert sf
    # messages: every feature at least once in a "full" mailbox
    plan = []
    if full:
        plan += [(inbox, {}), (inbox, {"subject": "Weekly digest #1"}),
                 (hidden.id, {}), (mb.wk["drafts"], {"draft": True}),
                 (mb.wk["sentitems"], {"sent_by_owner": True})]
        if user_folders:
            plan.append((user_folders[0], {}))
    weights = [(inbox, 45), (mb.wk["sentitems"], 15), (arch, 5),
               (mb.wk["deleteditems"], 3), (mb.wk["drafts"], 2),
               (mb.wk["junkemail"], 2), (hidden.id, 3)]
    weights += [(f, 25.0 / max(1, len(user_folders))) for f in user_folders]
    ids, ws = zip(*weights)
    for _ in range(max(0, n_msgs - len(plan))):
        plan.append((rng.choices(ids, ws)[0], {}))
    for fid, kw in plan:
        if fid == mb.wk["drafts"]:
            kw = dict(kw, draft=True)
        if fid == mb.wk["sentitems"]:
            kw = dict(kw, sent_by_owner=True)
        _gen_message(mb, rng, fid, people, **kw)
    if full:
        # duplicate subjects and all charsets/attachment shapes
        a = _gen_message(mb, rng, inbox, people, subject="Same subject")
        b = _gen_message(mb, rng, inbox, people, subject="Same subject")
        a.charset, a.kind, a.n_att = "iso-8859-1", "plain", 1
        b.charset, b.kind, b.n_att = "utf-8", "alt", 2
        c = _gen_message(mb, rng, inbox, people,
                         subject="Grüße aus München 🎉")
        c.charset, c.kind = "utf-8", "alt"
        d = _gen_message(mb, rng, inbox, people, subject="Café in Zürich")
        d.charset, d.kind = "iso-8859-1", "alt"


EDGE_FOLDERS = [".", "..", "trailing dot.", " leading space", "CON",
                "back\\slash", "Emoji 📁", "L" * 250, "inbox"]
EDGE_SUBJECTS = ["", "../../etc/passwd", "a/b\\c:d*e?f\"g<h>i|j",
                 "Long " + "subject " * 60, "Tab\tand\u00a0nbsp",
                 "Twin", "Twin"]


def _gen_edge(mb, rng, people):
    """Names and subjects that stress a file-system mapping (edge tenant):
    dot names, reserved names, very long ones, identical twins."""
    inbox = mb.wk["inbox"]
    for name in EDGE_FOLDERS:
        f = mb.add_folder(name, inbox)
        _gen_message(mb, rng, f.id, people)
    twins = []
    for subj in EDGE_SUBJECTS:
        twins.append(_gen_message(mb, rng, inbox, people, subject=subj))
    twins[-1].received, twins[-1].sent = twins[-2].received, twins[-2].sent
    big = _gen_message(mb, rng, inbox, people, subject="Big attachment")
    big.n_att, big.kind = 1, "plain"
    big.fields = dict(_fields(big, mb))
    big.fields["attachments"] = [{
        "name": "big.bin", "contentType": "application/octet-stream",
        "data": random.Random(big.seed).getrandbits(8 * 3 << 20).to_bytes(
            3 << 20, "little"), "isInline": False, "contentId": None}]


def generate(tenant, rng, scale):
    """Mailboxes for the tenant's users that have one (tenant.mailstore).
    About 5,000 messages at scale 1 (proportional above), a few per
    mailbox at scale 0; every folder/MIME feature in the first mailbox."""
    st = MailStore()
    users = entra.tenant_users(tenant)
    if not users:  # placeholder tenants: the admin gets a mailbox
        upn = entra.tget(tenant, "admin_upn", default="admin@" + entra.tget(
            tenant, "domain", "tenant_domain", default="contoso.com"))
        users = [{"id": str(__import__("uuid").uuid5(
            __import__("uuid").NAMESPACE_DNS, upn)),
            "userPrincipalName": upn, "displayName": "MOD Administrator",
            "mail": upn}]
    with_mb = [u for u in users if _has_mailbox(u)]
    for u in users:
        if not _has_mailbox(u):
            st.no_mailbox.add(str(entra.user_id(u)).lower())
            st.no_mailbox.add(entra.user_upn(u).lower())
    people = [(entra.user_name(u),
               entra.tget(u, "mail", default=entra.user_upn(u)))
              for u in with_mb] + [("External Partner",
                                    "partner@fabrikam.example"),
                                   ("Jürgen Müller",
                                    "j.mueller@example.de")]
    try:
        sc = float(scale)
    except (TypeError, ValueError):
        sc = 0
    total = int(5000 * sc)
    n = max(1, len(with_mb))
    shares = [rng.random() + 0.2 for _ in with_mb]
    ssum = sum(shares) or 1
    for i, u in enumerate(with_mb):
        mb = Mailbox(i, str(entra.user_id(u)), entra.user_upn(u),
                     entra.user_name(u))
        count = int(total * shares[i] / ssum) if total else rng.randint(
            2, 4)
        _gen_mailbox(mb, rng, count, people, full=(i == 0 or sc == 0 and
                                                   i < 2 and n > 1))
        if i == 0 and entra.tget(tenant, "kind") == "edge":
            _gen_edge(mb, rng, people)
        st.mailboxes[mb.user_id.lower()] = mb
        st.by_upn[mb.upn.lower()] = mb
    if isinstance(tenant, dict):
        tenant["mailstore"] = st
    else:
        tenant.mailstore = st
    return st


# ------------------------------------------------------- message content
def _fields(m, mb):
    """Render fields of a message (explicit for imported/created ones)."""
    if m.fields is not None:
        return m.fields
    text, html, atts = mimegen.body_spec(m.seed, m.charset, m.kind, m.n_att)
    return {"subject": m.subject, "from": m.frm, "to": m.to, "cc": m.cc,
            "sent": m.sent, "received": m.received,
            "message_id": m.internet_id, "charset": m.charset,
            "text": text, "html": html, "attachments": atts,
            "importance": m.importance}


def mime_of(m, mb):
    if m.raw is not None:
        return m.raw
    return mimegen.render(_fields(m, mb))


def digest_of(m, mb):
    if m.digest is None:
        raw = mime_of(m, mb)
        m.digest, m.size = hashlib.sha256(raw).hexdigest(), len(raw)
    return m.digest, m.size


def attachments_of(m, mb):
    f = _fields(m, mb)
    out = []
    for i, a in enumerate(list(f.get("attachments") or []) + m.extra_atts):
        aid = base64.b64encode(b"\x00\x03\x24\x00att" + m.imm.encode()[:12]
                               + i.to_bytes(2, "big")).decode()
        out.append(dict(a, id=aid))
    return out


def _email(a):
    if not a:
        return None
    return {"emailAddress": {"name": a[0] or a[1], "address": a[1]}}


def _etag_ck(mb, m):
    ck = base64.b64encode(b"\x09\x00\x00\x00\x16\x00\x00\x00" +
                          mb.hash[:12] + m.seq.to_bytes(4, "big")).decode()
    return 'W/"%s"' % ck, ck


def message_json(mb, m, imm, select=None):
    """Graph message JSON (message-get.json shape); SELECT limits it."""
    etag, ck = _etag_ck(mb, m)
    need_body = select is None or {"body", "bodyPreview", "uniqueBody",
                                   "hasAttachments",
                                   "internetMessageHeaders"} & set(select)
    f = _fields(m, mb) if need_body else None
    mid = m.imm if imm else m.id
    conv = hashlib.sha1(re.sub(r"^((re|fwd?):\s*)+", "", m.subject or "",
                               flags=re.I).lower().encode()).digest()
    o = {"@odata.etag": etag, "id": mid,
         "createdDateTime": core.iso(m.created),
         "lastModifiedDateTime": core.iso(m.modified),
         "changeKey": ck, "categories": list(m.categories),
         "receivedDateTime": core.iso(m.received),
         "sentDateTime": core.iso(m.sent) if m.sent else None,
         "hasAttachments": bool(f["attachments"] or m.extra_atts)
         if f else bool(m.n_att or m.extra_atts),
         "internetMessageId": m.internet_id, "subject": m.subject,
         "bodyPreview": mimegen.preview(f["text"] or re.sub(
             r"<[^>]+>", " ", f["html"] or "")) if f else None,
         "importance": m.importance, "parentFolderId": m.folder,
         "conversationId": base64.b64encode(b"\x00\x10" + conv[:16] +
                                            mb.hash[:4]).decode(),
         "conversationIndex": base64.b64encode(b"\x01" + conv[:21]).decode(),
         "isDeliveryReceiptRequested": False,
         "isReadReceiptRequested": False, "isRead": m.is_read,
         "isDraft": m.is_draft,
         "webLink": "https://outlook.office365.com/owa/?ItemID=%s&exvsurl="
                    "1&viewmodel=ReadMessageItem" % urllib.parse.quote(
                        mid, safe=""),
         "inferenceClassification": "focused",
         "body": ({"contentType": "html", "content": f["html"]}
                  if f and f["html"] else
                  {"contentType": "text", "content": f["text"]})
         if f else None,
         "sender": _email(m.frm), "from": _email(m.frm),
         "toRecipients": [_email(a) for a in m.to],
         "ccRecipients": [_email(a) for a in m.cc],
         "bccRecipients": [], "replyTo": [],
         "flag": {"flagStatus": m.flag}}
    if select is None:
        return o
    out = {"@odata.etag": etag, "id": mid}
    for p in select:
        if p == "internetMessageHeaders":
            hdrs = mimegen.parse(mime_of(m, mb))["headers"]
            out[p] = [{"name": k, "value": v} for k, v in hdrs]
        elif p == "uniqueBody":
            out[p] = o["body"]
        else:
            out[p] = o[p]
    return out


def folder_json(mb, f, full=False):
    if f.search:
        members = mb.search_members(f)
        total = len(members)
        unread = sum(1 for m in members if not m.is_read)
    else:
        total = len(mb.by_folder[f.id])
        unread = sum(1 for m in mb.by_folder[f.id].values()
                     if not m.is_read)
    o = {}
    if f.search:
        o["@odata.type"] = "#microsoft.graph.mailSearchFolder"
    o.update({"id": f.id, "displayName": f.name, "parentFolderId": f.parent,
              "childFolderCount": len(mb.children[f.id]),
              "unreadItemCount": unread, "totalItemCount": total,
              "isHidden": f.hidden})
    if f.search:
        o["isSupported"] = f.search["isSupported"]
        o["filterQuery"] = f.search["filterQuery"]
        if full:
            o["includeNestedFolders"] = f.search["includeNestedFolders"]
            o["sourceFolderIds"] = list(f.search["sourceFolderIds"])
    return o


# ---------------------------------------------------------------- errors
def _err(status, code, msg, headers=None):
    return core.HTTPError(core.graph_error(status, code, msg,
                                           headers=headers))


def _not_found():
    return _err(404, "ErrorItemNotFound",
                "The specified object was not found in the store.")


def _malformed():
    return _err(400, "ErrorInvalidIdMalformed", "Id is malformed.")


# --------------------------------------------------------------- request
class Ctx:
    """Per-request view: mailbox, id type, page size."""

    def __init__(self, req, mb, claims):
        self.req, self.mb, self.claims = req, mb, claims
        prefer = req.headers.get("prefer", "")
        self.imm = bool(re.search(r'idtype\s*=\s*"?immutableid"?', prefer,
                                  re.I))
        pm = re.search(r"odata\.maxpagesize\s*=\s*(\d+)", prefer, re.I)
        self.maxpage = int(pm.group(1)) if pm else None
        self.applied = []
        if self.imm:
            self.applied.append('IdType="ImmutableId"')

    def headers(self):
        return {"Preference-Applied": ", ".join(self.applied)} \
            if self.applied else {}

    def mid(self, m):
        return m.imm if self.imm else m.id

    def user_ctx(self):
        return "users('%s')" % urllib.parse.quote(self.mb.user_id, safe="")

    def ok(self, status, obj, extra=None):
        h = self.headers()
        h.update(extra or {})
        return core.Response.json(status, obj, h)


def _segments(raw_path):
    """Decoded path segments after /v1.0/users/{u} (or /me); OData key
    syntax name('key') becomes name, key."""
    out = []
    for s in raw_path.split("/")[1:]:
        m = re.fullmatch(r"([A-Za-z.$]+)\((?:'|%27)(.*)(?:'|%27)\)", s)
        if m:
            out.append(urllib.parse.unquote(m.group(1)))
            out.append(urllib.parse.unquote(m.group(2)).replace("''", "'"))
        else:
            out.append(urllib.parse.unquote(s))
    return out


def _resolve_user(st, key, claims):
    k = key.lower()
    if k == "me":
        if "scp" not in claims:
            raise _err(400, "BadRequest", "/me request is only valid with "
                       "delegated authentication flow.")
        k = str(claims.get("oid", "")).lower()
    mb = st.mailboxes.get(k) or st.by_upn.get(k)
    if mb is not None:
        return mb
    if k in st.no_mailbox:
        raise _err(404, "MailboxNotEnabledForRESTAPI",
                   "The mailbox is either inactive, soft-deleted, or is "
                   "hosted on-premise.")
    if entra.find_user(core.EMU.tenant, key) is not None:
        raise _err(404, "MailboxNotEnabledForRESTAPI",
                   "The mailbox is either inactive, soft-deleted, or is "
                   "hosted on-premise.")
    raise _err(404, "ErrorInvalidUser",
               "The requested user '%s' is invalid." % key)


def _check_id(s):
    try:
        base64.b64decode(s.replace("-", "+").replace("_", "/"),
                         validate=True)
    except (binascii.Error, ValueError):
        raise _malformed()


def _folder(mb, key):
    k = key.lower()
    if k in WELL_KNOWN_NAMES:
        if k in mb.wk:
            return mb.folders[mb.wk[k]]
        raise _not_found()
    f = mb.folders.get(key) or mb.folders.get(
        key.replace("-", "+").replace("_", "/"))
    if f is None:
        _check_id(key)
        raise _not_found()
    return f


def _message(mb, key):
    m = mb.msgs.get(key) or mb.imm.get(key)
    if m is None:
        alt = key.replace("-", "+").replace("_", "/")
        m = mb.msgs.get(alt) or mb.imm.get(alt)
    if m is None:
        _check_id(key)
        raise _not_found()
    return m


def _select(req, allowed):
    sel = req.query.get("$select")
    if not sel:
        return None
    names = [s.strip() for s in sel.split(",") if s.strip()]
    for n in names:
        if n not in allowed and n != "id":
            raise _err(400, "RequestBroker--ParseUri",
                       "Could not find a property named '%s' on type "
                       "'microsoft.graph.%s'." % (
                           n, "message" if allowed is MESSAGE_PROPS
                           else "mailFolder"))
    return [n for n in names if n != "id"]


def _page_params(req, default=DEFAULT_PAGE):
    try:
        top = int(req.query.get("$top", default))
        skip = int(req.query.get("$skip", 0))
    except ValueError:
        raise _err(400, "ErrorInvalidUrlQuery",
                   "The value of $top or $skip is not valid.")
    if top < 1 or skip < 0:
        raise _err(400, "ErrorInvalidUrlQuery",
                   "The value of $top or $skip is not valid.")
    return min(top, MAX_TOP), skip


def _page(ctx, items, render, context, default=None):
    req = ctx.req
    kp = core.EMU.knobs.get("page_size")
    top, skip = _page_params(req, default or kp or DEFAULT_PAGE)
    chunk = items[skip:skip + top]
    out = {"@odata.context": context, "value": [render(i) for i in chunk]}
    if skip + top < len(items):
        q = dict(req.query)
        q["$skip"] = str(skip + top)
        q["$top"] = str(top)
        out["@odata.nextLink"] = req.url(req.raw_path + "?" +
                                         urllib.parse.urlencode(
                                             q, safe="$,'",
                                             quote_via=urllib.parse.quote))
    return ctx.ok(200, out)


def _ctx_url(ctx, what):
    return "https://graph.microsoft.com/v1.0/$metadata#%s/%s" % (
        ctx.user_ctx(), what)


def _visible(mb, fid, req):
    hidden_ok = req.query.get("includeHiddenFolders", "").lower() == "true"
    return [mb.folders[c] for c in mb.children[fid]
            if hidden_ok or not mb.folders[c].hidden]


# ----------------------------------------------------------- the handler
MAIL_PATH = (r"(?i)/v1\.0/(?:users/[^/]+|me)/(?:mailfolders|messages)"
             r"(?:[/(].*)?")


@core.route("graph", "GET", MAIL_PATH)
@core.route("graph", "POST", MAIL_PATH)
@core.route("graph", "PATCH", MAIL_PATH)
@core.route("graph", "DELETE", MAIL_PATH)
def mail_handler(req, m):
    read = req.method in ("GET", "HEAD")
    claims = core.require_auth(req, core.MAIL_READ if read
                               else core.MAIL_WRITE)
    segs = _segments(req.raw_path)
    # segs: ["v1.0", "users", u, ...] or ["v1.0", "me", ...]
    if segs[1].lower() == "me":
        ukey, rest = "me", segs[2:]
    else:
        ukey, rest = segs[2], segs[3:]
    with core.EMU.lock:
        st = store()
        if st is None:
            raise _err(503, "ServiceUnavailable", "mail is not generated")
        mb = _resolve_user(st, ukey, claims)
        limit = core.EMU.knobs.get("mail_concurrency_limit")
        if limit:
            limit = 4 if limit is True else int(limit)
            if mb.inflight >= limit:
                core.EMU.stats["throttled"] = core.EMU.stats.get(
                    "throttled", 0) + 1
                raise _err(429, "ApplicationThrottled",
                           "Application is over its MailboxConcurrency "
                           "limit.", headers={"Retry-After": "1"})
        mb.inflight += 1
    try:
        lat = core.EMU.knobs.get("mail_latency_ms")
        if lat:
            time.sleep(float(lat) / 1000.0)
        with core.EMU.lock:
            _check_epoch(st)
            return _route(Ctx(req, mb, claims), [s for s in rest])
    finally:
        with core.EMU.lock:
            mb.inflight -= 1


def _route(ctx, rest):
    req, mb = ctx.req, ctx.mb
    meth = req.method if req.method != "HEAD" else "GET"
    low = [s.lower() for s in rest]
    if low[0] == "mailfolders":
        if len(rest) == 1:
            if meth == "GET":
                return _list_folders(ctx, mb.root)
            if meth == "POST":
                return _create_folder(ctx, mb.root)
            raise _method()
        if low[1] == "delta" and len(rest) == 2:
            if meth != "GET":
                raise _method()
            return _folder_delta(ctx)
        f = _folder(mb, rest[1])
        i = 2
        while i < len(rest) and low[i] == "childfolders":
            if i + 1 == len(rest):
                if meth == "GET":
                    return _list_folders(ctx, f.id)
                if meth == "POST":
                    return _create_folder(ctx, f.id)
                raise _method()
            f = _folder(mb, rest[i + 1])
            i += 2
        tail, ltail = rest[i:], low[i:]
        if not tail:
            if meth == "GET":
                return ctx.ok(200, dict({"@odata.context": _ctx_url(
                    ctx, "mailFolders/$entity")}, **_sel_folder(
                        ctx, folder_json(mb, f, full=True))))
            if meth == "PATCH":
                return _patch_folder(ctx, f)
            if meth == "DELETE":
                _delete_folder(mb, f)
                return core.Response(204, ctx.headers(), b"")
            raise _method()
        if ltail[0] == "messages":
            if len(tail) == 1:
                if meth == "GET":
                    return _list_messages(ctx, f)
                if meth == "POST":
                    return _create_message(ctx, f)
                raise _method()
            if ltail[1] == "delta" and len(tail) == 2:
                if meth != "GET":
                    raise _method()
                return _message_delta(ctx, f)
            return _message_ops(ctx, tail[1:], ltail[1:])
        if ltail[0] == "move" and meth == "POST":
            raise _err(400, "ErrorInvalidRequest",
                       "Moving folders is not supported by the emulator.")
        raise _unknown(tail[0])
    # /messages...
    if len(rest) == 1:
        if meth == "GET":
            return _list_messages(ctx, None)
        if meth == "POST":
            return _create_message(ctx, None)
        raise _method()
    return _message_ops(ctx, rest[1:], low[1:])


def _method():
    return _err(405, "ErrorInvalidRequest",
                "The OData request is not supported.")


def _unknown(seg):
    return _err(400, "BadRequest",
                "Resource not found for the segment '%s'." % seg)


def _sel_folder(ctx, o):
    sel = _select(ctx.req, FOLDER_PROPS)
    if sel is None:
        return o
    return {k: v for k, v in o.items() if k in ("id", "@odata.type")
            or k in sel}


# ----------------------------------------------------------------- folders
def _list_folders(ctx, fid):
    mb = ctx.mb
    items = _visible(mb, fid, ctx.req)
    what = "mailFolders" if fid == mb.root else \
        "mailFolders('%s')/childFolders" % fid
    return _page(ctx, items, lambda f: _sel_folder(ctx, folder_json(mb, f)),
                 _ctx_url(ctx, what))


def _create_folder(ctx, parent):
    mb = ctx.mb
    body = ctx.req.json() or {}
    name = body.get("displayName") if isinstance(body, dict) else None
    if not name or not isinstance(name, str):
        raise _err(400, "ErrorInvalidRequest",
                   "The displayName property is required.")
    return ctx.ok(201, dict({"@odata.context": _ctx_url(
        ctx, "mailFolders('%s')/childFolders/$entity" % parent)},
        **folder_json(mb, create_folder(mb, parent, name,
                                        bool(body.get("isHidden"))))))


def create_folder(mb, parent, name, hidden=False):
    for c in mb.children[parent]:
        if mb.folders[c].name.lower() == name.lower():
            raise _err(409, "ErrorFolderExists",
                       "A folder with the specified name already exists.")
    return mb.add_folder(name, parent, hidden=hidden)


def _patch_folder(ctx, f):
    body = ctx.req.json() or {}
    if "displayName" in body:
        rename_folder(ctx.mb, f, body["displayName"])
    return ctx.ok(200, dict({"@odata.context": _ctx_url(
        ctx, "mailFolders/$entity")}, **folder_json(ctx.mb, f)))


def rename_folder(mb, f, name):
    if f.wk:
        raise _err(403, "ErrorAccessDenied",
                   "Access is denied. Check credentials and try again.")
    for c in mb.children[f.parent]:
        if c != f.id and mb.folders[c].name.lower() == name.lower():
            raise _err(409, "ErrorFolderExists",
                       "A folder with the specified name already exists.")
    f.name = name
    f.seq = mb.next_seq()


def _delete_folder(mb, f):
    if f.wk:
        raise _err(403, "ErrorDeleteDistinguishedFolder",
                   "Distinguished folders cannot be deleted.")
    for c in list(mb.children[f.id]):
        _delete_folder(mb, mb.folders[c])
    for m in list(mb.by_folder[f.id].values()):
        mb.remove_msg(m)
    mb.children[f.parent].remove(f.id)
    del mb.folders[f.id]
    mb.folder_tomb.append((mb.next_seq(), f.id))


def _walk(mb, fid):
    for c in mb.children[fid]:
        yield mb.folders[c]
        yield from _walk(mb, c)


# ------------------------------------------------------------ message lists
def _list_messages(ctx, f):
    mb = ctx.mb
    sel = _select(ctx.req, MESSAGE_PROPS)
    if f is None:
        msgs = [m for fid in mb.folders for m in mb.by_folder[fid].values()]
        what = "messages"
    elif f.search:
        msgs = mb.search_members(f)
        what = "mailFolders('%s')/messages" % f.id
    else:
        msgs = list(mb.by_folder[f.id].values())
        what = "mailFolders('%s')/messages" % f.id
    ob = ctx.req.query.get("$orderby", "receivedDateTime desc")
    asc = ob.strip().lower().endswith(" asc")
    msgs.sort(key=lambda m: (m.received, m.imm), reverse=not asc)
    return _page(ctx, msgs, lambda m: message_json(mb, m, ctx.imm, sel),
                 _ctx_url(ctx, what))


# ----------------------------------------------------------------- delta
def _check_epoch(st):
    """The expire_delta_tokens knob invalidates every issued token once
    per change of its value (True, a counter, a time...)."""
    v = core.EMU.knobs.get("expire_delta_tokens")
    if v and v != st.knob_seen:
        st.epoch += 1
    st.knob_seen = v
    if core.EMU.knobs.get("expire_mail_delta_tokens"):
        st.epoch += 1
        core.EMU.knobs["expire_mail_delta_tokens"] = False


def expire_tokens():
    """Invalidate every issued mail delta token (410 on next use)."""
    st = store()
    if st is not None:
        with core.EMU.lock:
            st.epoch += 1


def _token(st, **kw):
    kw["e"] = st.epoch
    return base64.urlsafe_b64encode(json.dumps(
        kw, separators=(",", ":")).encode()).decode().rstrip("=")


def _untoken(st, tok):
    try:
        t = json.loads(base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)))
        if t["e"] != st.epoch:
            t = None
    except (ValueError, KeyError, TypeError, binascii.Error):
        t = None
    if t is None:
        raise _err(410, "syncStateNotFound",
                   "The sync state generation is not found. The delta token "
                   "is expired and data must be synchronized again.")
    return t


_OPS = {"ge": lambda a, b: a >= b, "gt": lambda a, b: a > b,
        "le": lambda a, b: a <= b, "lt": lambda a, b: a < b}


def _received_filter(ctx, f):
    """Predicate for the one $filter message delta supports
    (receivedDateTime ge|gt|le|lt <time>); kept in the tokens."""
    m = re.fullmatch(r"\s*receivedDateTime\s+(ge|gt|le|lt)\s+(\S+)\s*", f)
    t = entra.parse_time(m.group(2)) if m else None
    if t is None:
        raise _err(400, "ErrorInvalidUrlQueryFilter",
                   "The filter expression is not supported for delta; only "
                   "receivedDateTime can be filtered on.")
    op = _OPS[m.group(1)]

    def keep(entry):
        msg = ctx.mb.imm.get(entry[1]) if entry[0] == "m" else None
        return msg is not None and op(msg.received, t)

    return keep


def _new_round(st, entries):
    rid = secrets.token_hex(8)
    st.rounds[rid] = entries
    st.round_order.append(rid)
    while len(st.round_order) > 500:
        st.rounds.pop(st.round_order.pop(0), None)
    return rid


def _delta_page(ctx, tok_fields, entries_fn, render, link_base, context):
    """Shared delta mechanics: first call (no token) or deltatoken -> a new
    round of entries; skiptoken -> continue a round. entries_fn(since)
    returns (entries, seq now); render(entry) -> JSON object."""
    req, st = ctx.req, store()
    skip, delta = req.query.get("$skiptoken"), req.query.get("$deltatoken")
    fl = None
    if skip:
        t = _untoken(st, skip)
        entries = st.rounds.get(t.get("r"))
        if entries is None:
            _untoken(st, "")
        off, upto, sel, fl = t["o"], t["u"], t.get("s"), t.get("f")
    else:
        since = 0
        if delta:
            t = _untoken(st, delta)
            since, sel, fl = t["u"], t.get("s"), t.get("f")
        else:
            sel = _select(req, tok_fields)
            if tok_fields is MESSAGE_PROPS:
                fl = req.query.get("$filter")
        entries, upto = entries_fn(since)
        if fl:
            keep = _received_filter(ctx, fl)
            entries = [e for e in entries if e[0] == "r" or keep(e)]
        off = 0
        t = {"r": None}
    size = ctx.maxpage or core.EMU.knobs.get("page_size") or DEFAULT_PAGE
    if ctx.maxpage:
        ctx.applied.append("odata.maxpagesize=%d" % ctx.maxpage)
    if t["r"] is None and len(entries) > size:
        t["r"] = _new_round(st, entries)  # only rounds with several pages
    chunk = entries[off:off + size]
    out = {"@odata.context": context,
           "value": [render(e, sel) for e in chunk]}
    out["value"] = [v for v in out["value"] if v is not None]
    if off + size < len(entries):
        tok = _token(st, r=t["r"], o=off + size, u=upto, s=sel, f=fl)
        out["@odata.nextLink"] = req.url(link_base + "?$skiptoken=" + tok)
    else:
        tok = _token(st, u=upto, s=sel, f=fl)
        out["@odata.deltaLink"] = req.url(link_base + "?$deltatoken=" + tok)
    return ctx.ok(200, out)


def _message_delta(ctx, f):
    mb = ctx.mb

    def entries(since):
        if f.search:
            msgs = mb.search_members(f)
        else:
            msgs = list(mb.by_folder[f.id].values())
        ch = [("m", m.imm) for m in sorted(msgs, key=lambda m: (m.seq,
                                                                m.imm))
              if m.seq > since]
        if since:
            gone = [("r", rid, imm) for seq, rid, imm in mb.tomb[f.id]
                    if seq > since]
            ch = gone + ch
        return ch, mb.seq

    def render(e, sel):
        if e[0] == "r" or e[1] not in mb.imm or \
                mb.imm[e[1]].folder != f.id:
            if e[0] == "r":
                rid, imm = e[1], e[2]
            else:
                return None  # gone since the round started: next round
            return {"@odata.type": "#microsoft.graph.message",
                    "id": imm if ctx.imm else rid,
                    "@removed": {"reason": "deleted"}}
        o = message_json(mb, mb.imm[e[1]], ctx.imm, sel)
        return dict({"@odata.type": "#microsoft.graph.message"}, **o)

    base = "/v1.0/%s/mailFolders/%s/messages/delta" % (
        "users/" + urllib.parse.quote(mb.user_id, safe=""),
        urllib.parse.quote(f.id, safe=""))
    return _delta_page(ctx, MESSAGE_PROPS, entries, render, base,
                       "https://graph.microsoft.com/v1.0/$metadata#"
                       "Collection(message)")


def _folder_delta(ctx):
    mb = ctx.mb

    def entries(since):
        fs = sorted((f for f in _walk(mb, mb.root) if f.seq > since),
                    key=lambda f: f.seq)
        ch = [("f", f.id) for f in fs]
        if since:
            ch = [("r", fid) for seq, fid in mb.folder_tomb
                  if seq > since] + ch
        return ch, mb.seq

    def render(e, sel):
        if e[0] == "r" or e[1] not in mb.folders:
            if e[0] != "r":
                return None
            return {"id": e[1], "@removed": {"reason": "deleted"}}
        o = folder_json(mb, mb.folders[e[1]])
        if sel:
            o = {k: v for k, v in o.items() if k in ("id", "@odata.type")
                 or k in sel}
        return o

    base = "/v1.0/users/%s/mailFolders/delta" % urllib.parse.quote(
        mb.user_id, safe="")
    return _delta_page(ctx, FOLDER_PROPS, entries, render, base,
                       "https://graph.microsoft.com/v1.0/$metadata#"
                       "Collection(mailFolder)")


# ------------------------------------------------------------- messages
def _message_ops(ctx, rest, low):
    req, mb = ctx.req, ctx.mb
    meth = req.method if req.method != "HEAD" else "GET"
    m = _message(mb, rest[0])
    if len(rest) == 1:
        if meth == "GET":
            return ctx.ok(200, dict({"@odata.context": _ctx_url(
                ctx, "messages/$entity")}, **message_json(
                    mb, m, ctx.imm, _select(req, MESSAGE_PROPS))))
        if meth == "PATCH":
            return _patch_message(ctx, m)
        if meth == "DELETE":
            mb.remove_msg(m)
            return core.Response(204, ctx.headers(), b"")
        raise _method()
    op = low[1]
    if op == "$value" and len(rest) == 2 and meth == "GET":
        raw = mime_of(m, mb)
        return core.Response(200, dict(ctx.headers(), **{
            "Content-Type": "text/plain"}), raw)
    if op == "move" and len(rest) == 2 and meth == "POST":
        body = req.json() or {}
        dest = _folder(mb, str(body.get("destinationId") or ""))
        move_message(mb, m, dest)
        return ctx.ok(201, dict({"@odata.context": _ctx_url(
            ctx, "messages/$entity")}, **message_json(mb, m, ctx.imm)))
    if op == "attachments":
        return _attachment_ops(ctx, m, rest[2:], low[2:])
    raise _unknown(rest[1])


def move_message(mb, m, dest):
    if dest.search or dest.id == mb.root:
        raise _err(400, "ErrorInvalidRequest",
                   "Items cannot be moved to this folder.")
    if dest.id != m.folder:
        mb.move_msg(m, dest.id)
        m.modified = core.EMU.now()


def _patch_message(ctx, m):
    body = ctx.req.json() or {}
    if not isinstance(body, dict):
        raise _err(400, "ErrorInvalidRequest", "Invalid request body.")
    if "isRead" in body:
        m.is_read = bool(body["isRead"])
    if "categories" in body:
        m.categories = list(body["categories"] or [])
    if "flag" in body and isinstance(body["flag"], dict):
        m.flag = body["flag"].get("flagStatus", m.flag)
    if "importance" in body:
        m.importance = body["importance"]
    if m.is_draft and m.fields is not None:
        if "subject" in body:
            m.subject = m.fields["subject"] = body["subject"] or ""
        if isinstance(body.get("body"), dict):
            _set_body(m.fields, body["body"])
        if m.raw is None or m.fields.get("_synth"):
            m.raw = None
            m.digest = None
    m.modified = core.EMU.now()
    m.seq = ctx.mb.next_seq()
    return ctx.ok(200, dict({"@odata.context": _ctx_url(
        ctx, "messages/$entity")}, **message_json(ctx.mb, m, ctx.imm)))


def _set_body(fields, b):
    content = b.get("content") or ""
    if (b.get("contentType") or "text").lower() == "html":
        fields["html"] = content
        fields["text"] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ",
                                                    content)).strip()
    else:
        fields["text"], fields["html"] = content, None


def _addr_in(o):
    if not isinstance(o, dict):
        return None
    e = o.get("emailAddress") or {}
    if not e.get("address"):
        return None
    return (e.get("name") or "", e["address"])


def _ext_props(body):
    out = {}
    for p in body.get("singleValueExtendedProperties") or []:
        if not isinstance(p, dict):
            continue
        pid = re.sub(r"\s+", " ", str(p.get("id", ""))).strip().lower()
        mm = re.fullmatch(r"(integer|systemtime|string|boolean) (0x[0-9a-f]+)",
                          pid)
        if mm:
            out[int(mm.group(2), 16)] = p.get("value")
    return out


def _create_message(ctx, f):
    req, mb = ctx.req, ctx.mb
    ctype = req.headers.get("content-type", "application/json").lower()
    if f is not None and (f.search or f.id == mb.root):
        raise _err(400, "ErrorInvalidRequest",
                   "Items cannot be created in this folder.")
    if ctype.startswith("text/plain"):
        m = import_mime(mb, f, req.body)
    else:
        body = req.json()
        if not isinstance(body, dict):
            raise _err(400, "ErrorInvalidRequest", "Invalid request body.")
        m = create_json(mb, f, body)
    return ctx.ok(201, dict({"@odata.context": _ctx_url(
        ctx, "messages/$entity")}, **message_json(mb, m, ctx.imm)))


def _internet_id(mb):
    return "<%s@EMU01.prod.outlook.emulator>" % secrets.token_hex(12).upper()


def create_json(mb, f, body):
    """A message from Graph JSON; singleValueExtendedProperties 0x0E07
    (flags: no 0x8 -> not a draft, 0x1 -> read), 0x0E06 / 0x0039
    (received / sent times) honoured at creation."""
    now = core.EMU.now()
    props = _ext_props(body)
    m = Msg()
    m.seed = 0
    m.charset, m.kind, m.n_att = "utf-8", "alt", 0
    m.subject = body.get("subject") or ""
    m.frm = _addr_in(body.get("from")) or _addr_in(body.get("sender")) or (
        mb.name, mb.upn)
    m.to = [a for a in map(_addr_in, body.get("toRecipients") or []) if a]
    m.cc = [a for a in map(_addr_in, body.get("ccRecipients") or []) if a]
    m.importance = body.get("importance") or "normal"
    m.categories = list(body.get("categories") or [])
    if isinstance(body.get("flag"), dict):
        m.flag = body["flag"].get("flagStatus", "notFlagged")
    m.is_draft, m.is_read = True, True
    if 0x0E07 in props:
        try:
            flags = int(str(props[0x0E07]), 0)
        except ValueError:
            raise _err(400, "ErrorInvalidExtendedPropertyValue",
                       "The extended property value is invalid.")
        m.is_draft = bool(flags & 0x8)
        m.is_read = bool(flags & 0x1)
    elif "isRead" in body:
        m.is_read = bool(body["isRead"])
    m.received = entra.parse_time(props.get(0x0E06)) or now
    m.sent = entra.parse_time(props.get(0x0039)) or (
        None if m.is_draft else m.received)
    m.created = m.modified = now
    m.internet_id = body.get("internetMessageId") or _internet_id(mb)
    m.ext_props = [p for p in body.get("singleValueExtendedProperties") or []
                   if isinstance(p, dict)]
    fields = {"subject": m.subject, "from": m.frm, "to": m.to, "cc": m.cc,
              "sent": m.sent or now, "received": m.received,
              "message_id": m.internet_id, "charset": "utf-8",
              "text": "", "html": None, "attachments": [],
              "importance": m.importance, "_synth": True}
    _set_body(fields, body.get("body") or {})
    for a in body.get("attachments") or []:
        fields["attachments"].append(_attachment_in(a))
    m.fields = fields
    dest = f.id if f is not None else mb.wk["drafts"]
    mb.add_msg(m, dest)
    return m


def _attachment_in(a):
    if not isinstance(a, dict) or "contentBytes" not in a:
        raise _err(400, "ErrorInvalidRequest",
                   "Only fileAttachment with contentBytes is supported.")
    try:
        data = base64.b64decode(a["contentBytes"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise _err(400, "ErrorInvalidRequest",
                   "Invalid base64 string for attachment content.")
    return {"name": a.get("name") or "attachment",
            "contentType": a.get("contentType") or
            "application/octet-stream", "data": data,
            "isInline": bool(a.get("isInline")),
            "contentId": a.get("contentId")}


def import_mime(mb, f, payload):
    """A draft from a base64 MIME body (POST .../messages, text/plain)."""
    text = re.sub(rb"\s+", b"", payload or b"")
    try:
        if not text:
            raise ValueError("empty")
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _err(400, "ErrorMimeContentInvalidBase64String",
                   "Invalid base64 string for MIME content.")
    fields = mimegen.parse(raw)
    if fields is None:
        raise _err(400, "ErrorMimeContentConversionFailed",
                   "The MIME content could not be converted.")
    now = core.EMU.now()
    m = Msg()
    m.seed, m.charset, m.kind, m.n_att = 0, "utf-8", "plain", 0
    m.subject = fields["subject"]
    m.frm = fields["from"]
    m.to, m.cc = fields["to"], fields["cc"]
    m.importance = fields["importance"] if fields["importance"] in (
        "low", "normal", "high") else "normal"
    m.is_draft, m.is_read = True, True
    m.received, m.sent = now, fields["sent"] or now
    m.created = m.modified = now
    m.internet_id = fields["message_id"] or _internet_id(mb)
    fields.update(received=now, sent=m.sent, message_id=m.internet_id)
    m.fields, m.raw = fields, raw
    mb.add_msg(m, f.id if f is not None else mb.wk["drafts"])
    return m


# ----------------------------------------------------------- attachments
def _att_json(a, with_bytes=True):
    o = {"@odata.type": "#microsoft.graph.fileAttachment",
         "@odata.mediaContentType": a["contentType"], "id": a["id"],
         "lastModifiedDateTime": core.iso(core.EMU.now()),
         "name": a["name"], "contentType": a["contentType"],
         "size": len(a["data"]), "isInline": bool(a.get("isInline")),
         "contentId": a.get("contentId"), "contentLocation": None}
    if with_bytes:
        o["contentBytes"] = base64.b64encode(a["data"]).decode()
    return o


def _attachment_ops(ctx, m, rest, low):
    req, mb = ctx.req, ctx.mb
    meth = req.method if req.method != "HEAD" else "GET"
    atts = attachments_of(m, mb)
    base = "messages('%s')/attachments" % ctx.mid(m)
    if not rest:
        if meth == "GET":
            return ctx.ok(200, {"@odata.context": _ctx_url(ctx, base),
                                "value": [_att_json(a) for a in atts]})
        if meth == "POST":
            a = _attachment_in(req.json())
            _add_attachment(mb, m, a)
            a = attachments_of(m, mb)[-1]
            return ctx.ok(201, dict({"@odata.context": _ctx_url(
                ctx, base + "/$entity")}, **_att_json(a)))
        raise _method()
    if low[0] == "createuploadsession" and meth == "POST":
        return _create_att_session(ctx, m)
    a = next((x for x in atts if x["id"] == rest[0]), None)
    if a is None:
        raise _not_found()
    if len(rest) == 1 and meth == "GET":
        return ctx.ok(200, dict({"@odata.context": _ctx_url(
            ctx, base + "/$entity")}, **_att_json(a)))
    if len(rest) == 2 and low[1] == "$value" and meth == "GET":
        return core.Response(200, dict(ctx.headers(), **{
            "Content-Type": a["contentType"]}), a["data"])
    raise _method()


def _add_attachment(mb, m, a):
    if m.fields is not None and m.raw is None:
        m.fields["attachments"].append(a)
    else:
        m.extra_atts.append(a)
    m.digest = None
    m.seq = mb.next_seq()
    m.modified = core.EMU.now()


def _create_att_session(ctx, m):
    body = ctx.req.json() or {}
    item = body.get("AttachmentItem") or body.get("attachmentItem") or {}
    try:
        size = int(item.get("size"))
    except (TypeError, ValueError):
        raise _err(400, "ErrorInvalidRequest",
                   "AttachmentItem.size is required.")
    if item.get("attachmentType", "file") != "file" or not item.get("name"):
        raise _err(400, "ErrorInvalidRequest",
                   "AttachmentItem needs attachmentType 'file' and a name.")
    if size > 150 * 1024 * 1024:
        raise _err(413, "ErrorAttachmentSizeLimitExceeded",
                   "The attachment exceeds the maximum size.")
    st = store()
    sid = base64.b64encode(secrets.token_bytes(18)).decode().replace(
        "/", "_").replace("+", "-")
    auth = secrets.token_urlsafe(24)
    exp = core.EMU.now() + float(core.EMU.knobs.get(
        "upload_session_lifetime") or 3600)
    st.sessions[sid] = {"mb": ctx.mb.user_id, "imm": m.imm, "name":
                        item["name"], "size": size, "auth": auth,
                        "contentType": item.get("contentType") or
                        "application/octet-stream",
                        "isInline": bool(item.get("isInline")),
                        "contentId": item.get("contentId"),
                        "data": bytearray(), "exp": exp}
    who = "%s@%s" % (ctx.mb.user_id, entra.tget(core.EMU.tenant, "id",
                                                "tenant_id", default=""))
    url = ctx.req.url("/api/v2.0/Users('%s')/Messages('%s')/"
                      "AttachmentSessions('%s')?authtoken=%s" % (
                          urllib.parse.quote(who, safe="@"),
                          urllib.parse.quote(ctx.mid(m), safe=""), sid,
                          auth), host="files")
    return ctx.ok(201, {"@odata.context": "https://graph.microsoft.com/v1.0/"
                        "$metadata#microsoft.graph.uploadSession",
                        "uploadUrl": url,
                        "expirationDateTime": core.iso(exp),
                        "nextExpectedRanges": ["0-"]})


_SESSION = r"(?i)/api/v2\.0/.*/AttachmentSessions\('(?P<sid>[^']+)'\)"


def _session(req, m):
    st = store()
    s = st.sessions.get(m.group("sid")) if st else None
    if s is None or s["exp"] < core.EMU.now():
        raise _err(404, "ErrorItemNotFound",
                   "The upload session was not found or has expired.")
    if req.query.get("authtoken") != s["auth"]:
        raise _err(401, "InvalidAuthenticationToken",
                   "The authtoken of the upload URL is not valid.")
    return st, s


def _outlook_json(status, obj, headers=None):
    h = {"Content-Type": "application/json;odata.metadata=minimal;"
         "odata.streaming=true;IEEE754Compatible=false;charset=utf-8"}
    h.update(headers or {})
    return core.Response(status, h, json.dumps(obj).encode())


@core.route("files", "PUT", _SESSION)
def att_session_put(req, m):
    with core.EMU.lock:
        st, s = _session(req, m)
        cr = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)",
                          req.headers.get("content-range", "").strip())
        if not cr:
            raise _err(400, "ErrorInvalidRequest",
                       "A valid Content-Range header is required.")
        a, b, total = map(int, cr.groups())
        if total != s["size"] or b < a or b >= total or \
                b - a + 1 != len(req.body):
            raise _err(400, "ErrorInvalidRequest",
                       "The Content-Range header does not match the "
                       "session or the body.")
        if a != len(s["data"]):
            raise _err(416, "ErrorInvalidRange",
                       "The fragment does not start at the next expected "
                       "byte %d." % len(s["data"]))
        s["data"] += req.body
        ctxurl = ("https://outlook.office.com/api/v2.0/$metadata#Users('%s')"
                  "/Messages('%s')/AttachmentSessions/$entity" % (
                      urllib.parse.quote(s["mb"], safe=""),
                      urllib.parse.quote(s["imm"], safe="")))
        if len(s["data"]) < s["size"]:
            return _outlook_json(200, {
                "@odata.context": ctxurl,
                "ExpirationDateTime": core.iso(s["exp"]),
                "NextExpectedRanges": [str(len(s["data"]))]})
        mb = st.mailboxes.get(s["mb"].lower())
        msg = mb.imm.get(s["imm"]) if mb else None
        del st.sessions[m.group("sid")]
        if msg is None:
            raise _not_found()
        _add_attachment(mb, msg, {
            "name": s["name"], "contentType": s["contentType"],
            "data": bytes(s["data"]), "isInline": s["isInline"],
            "contentId": s["contentId"]})
        aid = attachments_of(msg, mb)[-1]["id"]
        loc = req.url("/api/v2.0/Users('%s')/Messages('%s')/Attachments"
                      "('%s')" % (urllib.parse.quote(s["mb"], safe=""),
                                  urllib.parse.quote(s["imm"], safe=""),
                                  urllib.parse.quote(aid, safe="")))
        return core.Response(201, {"Location": loc}, b"")


@core.route("files", "DELETE", _SESSION)
def att_session_delete(req, m):
    with core.EMU.lock:
        st, s = _session(req, m)
        del st.sessions[m.group("sid")]
        return core.Response(204, {}, b"")


@core.route("files", "GET", _SESSION)
def att_session_get(req, m):
    with core.EMU.lock:
        st, s = _session(req, m)
        return _outlook_json(200, {
            "ExpirationDateTime": core.iso(s["exp"]),
            "NextExpectedRanges": [str(len(s["data"]))]})


# ------------------------------------------------ control: truth / mutate
def truth(tenant):
    """The "messages" and "mail_folders" parts of GET /truth."""
    st = store(tenant)
    msgs, folders = [], []
    if st is None:
        return {"messages": msgs, "mail_folders": folders}
    with core.EMU.lock:
        for mb in st.mailboxes.values():
            for f in _walk(mb, mb.root):
                path = mb.path(f.id)
                o = folder_json(mb, f, full=True)
                folders.append({
                    "mailbox": mb.upn, "path": path, "id": f.id,
                    "displayName": f.name, "parentFolderId": f.parent,
                    "isHidden": f.hidden, "isSearchFolder": bool(f.search),
                    "wellKnownName": f.wk,
                    "totalItemCount": o["totalItemCount"],
                    "unreadItemCount": o["unreadItemCount"],
                    "childFolderCount": o["childFolderCount"]})
                if f.search:
                    continue
                for m in mb.by_folder[f.id].values():
                    sha, size = digest_of(m, mb)
                    msgs.append({
                        "mailbox": mb.upn, "folder_path": path,
                        "folder_id": f.id, "id": m.id,
                        "immutable_id": m.imm, "sha256": sha, "size": size,
                        "receivedDateTime": core.iso(m.received),
                        "sentDateTime": core.iso(m.sent) if m.sent
                        else None, "subject": m.subject,
                        "isRead": m.is_read, "isDraft": m.is_draft,
                        "hasAttachments": bool(m.n_att or m.extra_atts or (
                            m.fields or {}).get("attachments")),
                        "internetMessageId": m.internet_id})
    return {"messages": msgs, "mail_folders": folders}


def remove_mailbox(tenant, user_id, upn, user_deleted):
    """The mailbox of USER_ID / UPN goes away with its messages (they
    leave /truth).  While the user exists (USER_DELETED false: the licence
    was removed) Graph answers 404 MailboxNotEnabledForRESTAPI; after the
    user is deleted 404 ErrorInvalidUser."""
    st = store(tenant)
    if st is None:
        return
    keys = (str(user_id).lower(), str(upn).lower())
    with core.EMU.lock:
        for k in keys:
            st.mailboxes.pop(k, None)
            st.by_upn.pop(k, None)
            if user_deleted:
                st.no_mailbox.discard(k)
            else:
                st.no_mailbox.add(k)


def _mb_arg(st, args):
    key = args.get("mailbox") or args.get("user")
    if key:
        mb = st.mailboxes.get(str(key).lower()) or st.by_upn.get(
            str(key).lower())
        if mb is None:
            raise _bad("no mailbox '%s'" % key, 404)
        return mb
    mid = args.get("id") or args.get("message_id")
    for mb in st.mailboxes.values():
        if mid and (mid in mb.msgs or mid in mb.imm or mid in mb.folders):
            return mb
    if len(st.mailboxes) and not mid:
        return next(iter(st.mailboxes.values()))
    raise _bad("no mailbox given or found for id '%s'" % mid, 404)


def _folder_arg(mb, spec, default=None):
    """Folder by id, well-known name or path ("Inbox/Projects")."""
    if spec is None:
        if default is None:
            raise _bad("folder missing")
        return mb.folders[mb.wk[default]]
    if spec in mb.folders:
        return mb.folders[spec]
    if spec.lower() in mb.wk:
        return mb.folders[mb.wk[spec.lower()]]
    for f in _walk(mb, mb.root):
        if mb.path(f.id).lower() == spec.strip("/").lower():
            return f
    raise _bad("no mail folder '%s'" % spec, 404)


def mutate(tenant, op, args):
    """Control-API mutations: create_message, move_message,
    delete_message, set_read, create_mail_folder, rename_mail_folder,
    delete_mail_folder. Returns {"ok": True, "id": ...}; raises
    core.HTTPError (JSON {"ok": false, "error"}) on bad arguments."""
    st = store(tenant)
    with core.EMU.lock:
        if op not in OPS:
            raise _bad("unknown op '%s'" % op)
        mb = _mb_arg(st, args)
        try:
            if op == "create_message":
                f = _folder_arg(mb, args.get("folder"), "inbox")
                body = {"subject": args.get("subject", "Mutation message"),
                        "body": {"contentType": "text",
                                 "content": args.get("body", "Hello.")},
                        "from": {"emailAddress": {
                            "name": args.get("from_name", "Mutator"),
                            "address": args.get("from",
                                                "mutator@example.com")}},
                        "toRecipients": [{"emailAddress": {
                            "name": mb.name, "address": mb.upn}}],
                        "singleValueExtendedProperties": [
                            {"id": "Integer 0x0E07", "value": "1" if
                             args.get("isRead", False) else "0"}]}
                if args.get("receivedDateTime"):
                    body["singleValueExtendedProperties"].append(
                        {"id": "SystemTime 0x0E06",
                         "value": args["receivedDateTime"]})
                if args.get("attachments"):
                    body["attachments"] = args["attachments"]
                m = create_json(mb, f, body)
                return {"ok": True, "id": m.id, "immutable_id": m.imm}
            if op == "move_message":
                m = _message(mb, args["id"])
                move_message(mb, m, _folder_arg(mb, args.get(
                    "destination") or args.get("folder")))
                return {"ok": True, "id": m.id, "immutable_id": m.imm}
            if op == "delete_message":
                m = _message(mb, args["id"])
                mb.remove_msg(m)
                return {"ok": True, "id": m.id, "immutable_id": m.imm}
            if op == "set_read":
                m = _message(mb, args["id"])
                m.is_read = bool(args.get("isRead", args.get("read", True)))
                m.seq = mb.next_seq()
                m.modified = core.EMU.now()
                return {"ok": True, "id": m.id, "immutable_id": m.imm}
            if op == "create_mail_folder":
                parent = _folder_arg(mb, args.get("parent"), "msgfolderroot")
                f = create_folder(mb, parent.id, args["name"],
                                  bool(args.get("hidden")))
                return {"ok": True, "id": f.id}
            if op == "rename_mail_folder":
                f = _folder_arg(mb, args.get("id") or args.get("folder"))
                rename_folder(mb, f, args["name"])
                return {"ok": True, "id": f.id}
            if op == "delete_mail_folder":
                f = _folder_arg(mb, args.get("id") or args.get("folder"))
                _delete_folder(mb, f)
                return {"ok": True, "id": f.id}
        except core.HTTPError as e:
            err = json.loads(e.response.body).get("error")
            if not isinstance(err, dict):
                raise
            raise _bad(err.get("message"), e.response.status)
        except (KeyError, ValueError) as e:
            raise _bad("%s: bad or missing argument %s" % (op, e))
    raise _bad("unknown op '%s'" % op)


def _bad(msg, status=400):
    return core.HTTPError(core.Response.json(status, {"ok": False,
                                                     "error": msg}))


OPS = ("create_message", "move_message", "delete_message", "set_read",
       "create_mail_folder", "rename_mail_folder", "delete_mail_folder")
