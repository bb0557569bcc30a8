"""Tenant model and deterministic generator.

generate(scale, seed, kind, state_dir) builds the whole tenant from
random.Random seeded with (scale, seed, kind): users, groups, sites with
subsites, document libraries and OneDrives with their driveItems.  File
bytes are never held in memory for generated files: GenContent derives them
block by block from a per-file seed; hashes are computed on first use and
cached on disk (STATE/hashes-*.json).

Every change to a drive goes through Drive.touch(item), which gives the item
a new sequence number (used by delta) and bumps eTag (and cTag for content).
Callers hold EMU.lock.
"""
import base64
import hashlib
import json
import math
import os
import random
import threading
import time
import unicodedata
import urllib.parse
import uuid

import quickxor

BLOCK = 64 * 1024
MARKER = "zanzibar-quartz"


def _guid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _item_id(rng):
    raw = rng.getrandbits(160).to_bytes(20, "little")
    return "01" + base64.b32encode(raw).decode().rstrip("=")


# --------------------------------------------------------------------------
# content


class _Pools:
    """Per-process pools of 64 KiB blocks (binary and text) that generated
    content is made of; each block of a file gets a unique 32-byte head."""

    def __init__(self):
        rng = random.Random("content-pools")
        self.binary = [rng.randbytes(BLOCK) for _ in range(32)]
        self.text = []
        for _ in range(32):
            out = []
            n = 0
            while n < BLOCK:
                line = " ".join(rng.choice(WORDS) for _ in range(
                    rng.randint(4, 14)))
                line = line[0].upper() + line[1:] + ".\n"
                out.append(line)
                n += len(line)
            self.text.append("".join(out).encode()[:BLOCK])
        self._folds = {}

    def folds(self, text):
        """quickXor folds of each pool block with its 32-byte head zeroed."""
        f = self._folds.get(text)
        if f is None:
            f = []
            for b in (self.text if text else self.binary):
                buf = bytes(32) + b[32:] + bytes((-BLOCK) % quickxor.WIDTH)
                f.append(quickxor.fold_bytes(buf))
            self._folds[text] = f
        return f


_pools = None
_pools_lock = threading.Lock()


def pools():
    global _pools
    with _pools_lock:
        if _pools is None:
            _pools = _Pools()
    return _pools


class GenContent:
    """Deterministic content: SIZE bytes derived from SEED."""
    kind_name = "gen"

    def __init__(self, seed, size, text=False, marker=False):
        self.seed = seed
        self.size = size
        self.text = text
        self.marker = marker

    def key(self):
        return "%d:%d:%d:%d" % (self.seed, self.size, self.text, self.marker)

    def block(self, k):
        head, idx = self.head_and_body(k)
        p = pools()
        return head + (p.text if self.text else p.binary)[idx][32:]

    def head_and_body(self, k):
        """Block K as (32-byte head, pool index) (see block())."""
        d = hashlib.sha256(b"%d:%d" % (self.seed, k)).digest()
        if self.text:
            if k == 0 and self.marker:
                head = ("%s %s\n" % (MARKER, d.hex()[:15])).encode()
            else:
                head = ("Ref %s\n" % d.hex()[:27]).encode()
        else:
            head = d
        return head, d[0] % 32

    def hashes(self):
        """(sha256 hex, quickXorHash) without building the whole stream:
        quickXorHash is linear, so each full block contributes its pool
        block's precomputed fold, rotated to the block's stream offset."""
        p = pools()
        folds = p.folds(self.text)
        sha = hashlib.sha256()
        folded = 0
        nfull, rem = divmod(self.size, BLOCK)
        bodies = p.text if self.text else p.binary
        for k in range(nfull):
            head, idx = self.head_and_body(k)
            sha.update(head)
            sha.update(memoryview(bodies[idx])[32:])
            f = folds[idx] ^ int.from_bytes(head, "little")
            folded ^= quickxor.rotate_folded(f, k * BLOCK)
        qx = quickxor.QuickXor()
        qx.folded = folded
        qx.length = nfull * BLOCK
        if rem:
            tail = self.block(nfull)[:rem]
            sha.update(tail)
            qx.update(tail)
        return sha.hexdigest(), qx.b64()

    def iter(self, start=0, end=None, chunk=1 << 20):
        """Yields the bytes [start, end) in pieces of about CHUNK bytes."""
        end = self.size if end is None else min(end, self.size)
        pos = start
        buf = []
        n = 0
        while pos < end:
            k, off = divmod(pos, BLOCK)
            take = min(BLOCK - off, end - pos)
            b = self.block(k)
            buf.append(b[off:off + take] if (off or take != BLOCK) else b)
            n += take
            pos += take
            if n >= chunk:
                yield b"".join(buf)
                buf, n = [], 0
        if buf:
            yield b"".join(buf)

    def read(self, start=0, end=None):
        return b"".join(self.iter(start, end))


class BlobContent:
    """Explicit content (uploads, mutations); large blobs live on disk."""
    kind_name = "blob"

    def __init__(self, data=None, path=None, size=None):
        self.data = data
        self.path = path
        self.size = len(data) if data is not None else size
        self.sha256 = None
        self.qxh = None

    def key(self):
        return None

    def iter(self, start=0, end=None, chunk=1 << 20):
        end = self.size if end is None else min(end, self.size)
        if self.data is not None:
            mv = memoryview(self.data)
            for i in range(start, end, chunk):
                yield bytes(mv[i:min(i + chunk, end)])
            return
        with open(self.path, "rb") as f:
            f.seek(start)
            pos = start
            while pos < end:
                b = f.read(min(chunk, end - pos))
                if not b:
                    break
                pos += len(b)
                yield b

    def read(self, start=0, end=None):
        return b"".join(self.iter(start, end))


def blob_from_bytes(tenant, data):
    """BlobContent for DATA; bodies above 1 MiB are written under STATE."""
    if len(data) <= (1 << 20) or not tenant.state_dir:
        b = BlobContent(data=bytes(data))
    else:
        d = os.path.join(tenant.state_dir, "blobs")
        os.makedirs(d, exist_ok=True)
        h = hashlib.sha256(data).hexdigest()
        path = os.path.join(d, h)
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)
        b = BlobContent(path=path, size=len(data))
        b.sha256 = h
    return b


def content_hashes(tenant, content):
    """-> (sha256 hex, quickXorHash base64), computed once and cached."""
    if isinstance(content, BlobContent) and content.qxh:
        return content.sha256, content.qxh
    key = content.key()
    if key is not None:
        hit = tenant.hash_cache.get(key)
        if hit:
            return hit[0], hit[1]
    if isinstance(content, GenContent):
        res = content.hashes()
    else:
        sha = hashlib.sha256()
        qx = quickxor.QuickXor()
        for chunk in content.iter(chunk=4 << 20):
            sha.update(chunk)
            qx.update(chunk)
        res = (sha.hexdigest(), qx.b64())
    if key is not None:
        with tenant.hash_lock:
            tenant.hash_cache[key] = res
            tenant.hash_dirty += 1
            if tenant.state_dir and not tenant.save_timer:
                tenant.save_timer = threading.Timer(2.0, save_cache,
                                                    (tenant,))
                tenant.save_timer.daemon = True
                tenant.save_timer.start()
    else:
        content.sha256, content.qxh = res
    return res


# --------------------------------------------------------------------------
# model


class Item:
    __slots__ = ("id", "name", "parent", "drive", "is_folder", "children",
                 "content", "ctime", "mtime", "etag_n", "ctag_n", "guid",
                 "seq", "own_seq", "changed_at", "deleted", "versions", "created_by",
                 "modified_by", "package", "_sorted")

    def __init__(self, drive, iid, name, parent, is_folder, content=None,
                 ctime=0.0, mtime=0.0, guid=None, user=None):
        self.id = iid
        self.name = name
        self.parent = parent
        self.drive = drive
        self.is_folder = is_folder
        self.children = {} if is_folder else None
        self.content = content
        self.ctime = ctime
        self.mtime = mtime
        self.etag_n = 1
        self.ctag_n = 1
        self.guid = guid or str(uuid.uuid4()).upper()
        self.seq = 0
        self.own_seq = 0  # last change of the item itself (not a child's)
        self.changed_at = 0.0
        self.deleted = False
        self.versions = []  # older versions: (label, content, mtime, user)
        self.created_by = user
        self.modified_by = user
        self.package = None
        self._sorted = None

    @property
    def size(self):
        if self.is_folder:
            return sum(c.size for c in self.children.values())
        return self.content.size

    def path_parts(self):
        """Names from the drive root (exclusive) down to this item."""
        parts = []
        it = self
        while it.parent is not None:
            parts.append(it.name)
            it = it.parent
        return parts[::-1]

    def depth(self):
        n = 0
        it = self
        while it.parent is not None:
            n += 1
            it = it.parent
        return n

    def sorted_children(self):
        if self._sorted is None:
            self._sorted = sorted(self.children.values(),
                                  key=lambda c: (not c.is_folder,
                                                 c.name.lower(), c.name))
        return self._sorted


def name_key(name):
    """SharePoint compares names case-insensitively."""
    return name.lower()


class Drive:
    def __init__(self, tenant, did, name, drive_type, owner, site=None,
                 user=None, group=None, web_url="", ctime=0.0):
        self.tenant = tenant
        self.id = did
        self.name = name
        self.drive_type = drive_type
        self.owner = owner  # {"user": {...}} or {"group": {...}}
        self.site = site
        self.user = user
        self.group = group
        self.web_url = web_url
        self.ctime = ctime
        self.items = {}
        self.seq = 0
        self.epoch = 0
        self.changes = []  # (seq, time) for timestamp tokens
        self.root = None
        self.quota_total = 1099511627776

    def truth_prefix(self):
        if self.user is not None:
            return "onedrive/%s" % self.user.upn
        return "sites/%s/%s" % (self.site.key(), self.name)

    def add(self, item):
        self.items[item.id] = item
        self.tenant.items_by_id[item.id] = item
        if item.parent is not None:
            item.parent.children[name_key(item.name)] = item
            item.parent._sorted = None
        self.touch(item, content=True, initial=True)
        return item

    def touch(self, item, content=False, initial=False, propagated=False):
        """Records a change of ITEM (new eTag; new cTag when CONTENT);
        PROPAGATED: only a child changed (Prefer: deltaExcludeParent)."""
        self.seq += 1
        item.seq = self.seq
        if not propagated:
            item.own_seq = self.seq
        now = time.time()
        item.changed_at = now
        self.changes.append((self.seq, now))
        if not initial:
            item.etag_n += 1
            if content:
                item.ctag_n += 1


class Site:
    def __init__(self, tenant, sid, host, path, name, display_name,
                 ctime=0.0, mtime=0.0, parent=None, personal=False,
                 description=""):
        self.tenant = tenant
        self.id = sid
        self.host = host
        self.path = path  # server-relative, "" for the root site
        self.name = name
        self.display_name = display_name
        self.ctime = ctime
        self.mtime = mtime
        self.parent = parent
        self.subsites = []
        self.drives = []
        self.personal = personal
        self.description = description
        self.group = None

    def key(self):
        return self.host + ("/" + self.path if self.path else "")

    @property
    def web_url(self):
        return "https://" + self.key()

    def collection_root(self):
        s = self
        while s.parent is not None:
            s = s.parent
        return s


class User:
    def __init__(self, uid, upn, display_name, given, surname, job,
                 has_mailbox=True, enabled=True, office=None, phone=None):
        self.id = uid
        self.upn = upn
        self.display_name = display_name
        self.given_name = given
        self.surname = surname
        self.job_title = job
        self.has_mailbox = has_mailbox
        self.mail = upn if has_mailbox else None
        self.account_enabled = enabled
        self.user_type = "Member"
        self.office = office
        self.phone = phone
        self.drive = None
        self.site = None

    def ref(self):
        return {"user": {"id": self.id, "displayName": self.display_name,
                         "email": self.upn}}


class Group:
    def __init__(self, gid, name, nickname, description, ctime, unified=True):
        self.id = gid
        self.display_name = name
        self.mail_nickname = nickname
        self.description = description
        self.ctime = ctime
        self.unified = unified
        self.mail = None
        self.site = None
        self.drive = None


class Tenant:
    def __init__(self, seed, scale, kind):
        rng = random.Random("tenant:%d:%d:%s" % (seed, scale, kind))
        self.rng = rng
        self.seed = seed
        self.scale = scale
        self.kind = kind or "standard"
        self.id = _guid(rng)
        self.name = "contoso"
        self.domain = "contoso.onmicrosoft.com"
        self.display_name = "Contoso"
        self.sp_host = "contoso.sharepoint.com"
        self.my_host = "contoso-my.sharepoint.com"
        self.admin_upn = "admin@" + self.domain
        self.users = []
        self.users_by_key = {}
        self.groups = []
        self.sites = []
        self.sites_by_id = {}
        self.drives = {}
        self.items_by_id = {}
        self.state_dir = None
        self.hash_cache = {}
        self.hash_lock = threading.Lock()
        self.hash_dirty = 0
        self.save_timer = None
        self.created = 1546300800.0  # 2019-01-01

    # lookups ---------------------------------------------------------------
    def user(self, key):
        return self.users_by_key.get(key.lower())

    def group(self, gid):
        for g in self.groups:
            if g.id == gid:
                return g
        return None

    def add_user(self, u):
        self.users.append(u)
        self.users_by_key[u.id.lower()] = u
        self.users_by_key[u.upn.lower()] = u

    def add_site(self, s):
        self.sites.append(s)
        self.sites_by_id[s.id.lower()] = s
        if s.parent is not None:
            s.parent.subsites.append(s)
        return s

    def new_site_id(self, host, rng, collection=None):
        coll = collection or _guid(rng)
        return "%s,%s,%s" % (host, coll, _guid(rng))

    def new_drive_id(self, rng):
        return "b!" + base64.urlsafe_b64encode(
            rng.getrandbits(384).to_bytes(48, "little")).decode()

    def item_by_path(self, truth_path):
        """Item for a /truth path ("sites/<host>/<site>/<lib>/a/b" or
        "onedrive/<upn>/a/b"), or None."""
        for d in self.drives.values():
            p = d.truth_prefix()
            if truth_path == p:
                return d.root
            if truth_path.startswith(p + "/"):
                it = d.root
                for part in truth_path[len(p) + 1:].split("/"):
                    it = it.children.get(name_key(part)) if it.is_folder \
                        else None
                    if it is None:
                        return None
                return it
        return None


# --------------------------------------------------------------------------
# generator vocabulary

WORDS = ("budget forecast quarterly review meeting agenda minutes project "
         "timeline milestone customer contract invoice supplier delivery "
         "design draft final approved revision summary analysis strategy "
         "marketing campaign launch product roadmap release feedback survey "
         "results hiring onboarding training policy compliance audit risk "
         "security incident report dashboard metrics revenue expenses growth "
         "café résumé naïve façade déjà coöperation Zürich Málaga Kraków "
         "Ærøskøbing São Paulo señor über straße jalapeño piñata").split()

FOLDER_NAMES = [
    "Projects", "Finance", "Rapports annuels", "Präsentationen",
    "Marketing 2024", "Photos 📷", "Équipe", "Contrats", "Archive",
    "Q3 Reviews", "Données clients", "Customer #42", "100% done",
    "Résumés", "Ångström Lab", "日本語のフォルダ", "Budget & Forecast",
    "Meeting notes", "Templates", "Drafts", "Old stuff (2019)", "HR",
    "Legal", "Design assets", "Señales", "Ölçüm verileri", "Exports",
    "Scratch", "Team offsite 🎉", "Invoices", "Specs", "Research",
]
STEMS = [
    "budget", "report", "meeting notes", "Übersicht", "café menu",
    "plan d'action", "señal", "Q1 summary", "roadmap", "invoice 1042",
    "contract draft", "Präsentation", "team photo", "logo", "backup",
    "notes", "todo", "README", "data export", "survey results",
    "résumé", "org chart", "pitch deck", "release notes", "minutes",
    "forecast #3", "100% final", "final (2)", "naïve approach", "hello 👋",
    "日本語の文書", "Ελληνικά", "Кириллица", "spec v2.1", "screenshot",
]
TEXT_EXT = [".txt", ".md", ".csv", ".json", ".log", ".html", ".xml"]
BIN_EXT = [".docx", ".xlsx", ".pptx", ".pdf", ".jpg", ".png", ".zip",
           ".mp4", ".one", ".bin"]
MIME = {".txt": "text/plain", ".md": "text/markdown", ".csv": "text/csv",
        ".json": "application/json", ".log": "text/plain",
        ".html": "text/html", ".xml": "application/xml",
        ".docx": "application/vnd.openxmlformats-officedocument."
                 "wordprocessingml.document",
        ".xlsx": "application/vnd.openxmlformats-officedocument."
                 "spreadsheetml.sheet",
        ".pptx": "application/vnd.openxmlformats-officedocument."
                 "presentationml.presentation",
        ".pdf": "application/pdf", ".jpg": "image/jpeg", ".png": "image/png",
        ".zip": "application/zip", ".mp4": "video/mp4"}

PEOPLE = [("Adele", "Vance"), ("Zoë", "Müller"), ("José", "García"),
          ("Ryan", "Gregg"), ("Aiko", "Tanaka"), ("Björn", "Ångström"),
          ("Chloé", "Dubois"), ("Grady", "Archie"), ("Nestor", "Wilke"),
          ("Łucja", "Wąs"), ("Priya", "Natarajan"), ("Omar", "Haddad"),
          ("Isaiah", "Langer"), ("Lidia", "Holloway"), ("Miriam", "Graham")]
JOBS = ["Retail Manager", "Marketing Assistant", "Developer", "CFO",
        "Paralegal", "HR Manager", "Product Manager", "Designer"]
SITE_NAMES = [("Marketing", "Marketing"), ("Finance", "Finance"),
              ("HR", "Human Resources"), ("Legal", "Légal & Conformité"),
              ("Engineering", "Engineering"), ("Sales", "Sales EMEA"),
              ("Projets", "Projets internationaux"),
              ("Design", "Design Studio"), ("Support", "Customer Support"),
              ("Research", "Research & Development"), ("Ops", "Operations"),
              ("Board", "Board of Directors"), ("IT", "IT Department"),
              ("Events", "Events 🎉"), ("Archive", "Archive"),
              ("Training", "Training"), ("Partners", "Partner Portal"),
              ("Quality", "Quality"), ("Facilities", "Facilities"),
              ("Comms", "Communications")]
SUBSITES = [("Campaigns", "Campaigns"), ("Budget2025", "Budget 2025"),
            ("Internal", "Internal"), ("Clients", "Clients")]


def _ts(rng, lo=1546300800.0, hi=1735689600.0):
    return float(int(rng.uniform(lo, hi)))


def _size(rng, big):
    # log-normal: median ~20 KB, long tail; caps keep totals bounded
    s = int(math.exp(rng.gauss(math.log(20000), 1.6)))
    return max(1, min(s, big))


class _Gen:
    def __init__(self, tenant, rng, scale):
        self.t = tenant
        self.rng = rng
        self.scale = scale
        self.file_seq = 0
        self.big = {0: 200 * 1024, 1: 8 << 20, 10: 8 << 20}.get(scale,
                                                                8 << 20)

    def content(self, name, size=None, marker=False):
        rng = self.rng
        ext = os.path.splitext(name)[1].lower()
        text = ext in TEXT_EXT
        if size is None:
            size = _size(rng, self.big)
            if text:
                size = max(40, size // 3)
        self.file_seq += 1
        seed = (self.t.seed << 40) ^ (self.t.scale << 32) ^ (
            hash_name(self.t.kind) << 24) ^ self.file_seq * 2654435761
        if marker:
            text = True
            size = max(size, 64)
        return GenContent(seed & ((1 << 62) - 1), size, text, marker)

    def file_name(self, taken):
        rng = self.rng
        for _ in range(50):
            stem = rng.choice(STEMS)
            ext = rng.choice(TEXT_EXT if rng.random() < 0.45 else BIN_EXT)
            name = stem + ext
            if rng.random() < 0.3:
                name = "%s %d%s" % (stem, rng.randint(2, 999), ext)
            if name_key(name) not in taken:
                return name
        return "file %d.bin" % self.file_seq

    def folder_name(self, taken):
        rng = self.rng
        for _ in range(50):
            name = rng.choice(FOLDER_NAMES)
            if rng.random() < 0.3:
                name += " %d" % rng.randint(1, 99)
            if name_key(name) not in taken:
                return name
        return "Folder %d" % rng.randint(1000, 99999)

    def item(self, drive, parent, name, folder, content=None, user=None):
        rng = self.rng
        ctime = _ts(rng)
        mtime = _ts(rng, ctime, 1735689600.0 + 1)
        it = Item(drive, _item_id(rng), name, parent, folder, content,
                  ctime, mtime, _guid(rng).upper(), user)
        drive.add(it)
        return it

    def file(self, drive, parent, name=None, size=None, marker=False,
             user=None):
        name = name or self.file_name(parent.children)
        c = self.content(name, size, marker)
        it = self.item(drive, parent, name, False, c, user)
        if self.rng.random() < 0.08:  # some files have older versions
            for v in range(self.rng.randint(1, 3)):
                old = self.content(name)
                it.versions.append(("%d.0" % (v + 1), old,
                                    it.ctime + v * 3600.0, user))
        return it

    def folder(self, drive, parent, name=None, user=None):
        name = name or self.folder_name(parent.children)
        return self.item(drive, parent, name, True, None, user)

    def fill(self, drive, nfiles, users, max_depth=5, nmarkers=1):
        """Random tree with NFILES files under DRIVE's root."""
        rng = self.rng
        folders = [drive.root]
        for _ in range(max(1, nfiles // 12)):
            parent = rng.choice(folders)
            if parent.depth() >= max_depth:
                continue
            folders.append(self.folder(drive, parent,
                                       user=rng.choice(users)))
        for i in range(nfiles):
            parent = rng.choice(folders)
            self.file(drive, parent, marker=i < nmarkers,
                      user=rng.choice(users))
        # an empty folder and an empty file
        self.folder(drive, drive.root, "Empty folder")
        self.file(drive, rng.choice(folders), "empty.txt", size=0)
        return folders


def hash_name(s):
    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:3], "little")


def _new_drive(t, rng, name, drive_type, site=None, user=None, group=None,
               owner_user=None):
    if user is not None:
        owner = {"user": {"id": user.id, "displayName": user.display_name,
                          "email": user.upn}}
    elif group is not None:
        owner = {"group": {"id": group.id, "email": group.mail,
                           "displayName": group.display_name}}
    else:
        ou = owner_user
        owner = {"user": {"id": ou.id, "displayName": ou.display_name}} \
            if ou else {"user": {"displayName": "System Account"}}
    url_name = "Shared Documents" if name == "Documents" and not user \
        else ("Documents" if user else name)
    web = (site.web_url if site else "") + "/" + urllib.parse.quote(url_name)
    d = Drive(t, t.new_drive_id(rng), name, drive_type, owner, site, user,
              group, web, _ts(rng, 1546300800.0, 1577836800.0))
    root = Item(d, _item_id(rng), "root", None, True, None, d.ctime,
                d.ctime, _guid(rng).upper(), user or owner_user)
    d.root = root
    d.add(root)
    t.drives[d.id] = d
    if site is not None:
        site.drives.append(d)
    return d


def _build(t, scale):
    rng = t.rng
    g = _Gen(t, rng, scale)
    n_users = {0: 2, 1: 5}.get(scale, 12)
    n_sites = {0: 1, 1: 7}.get(scale, 18)  # team sites besides the root
    n_files = {0: 16, 1: 107}.get(scale, 1300)  # per library (roughly)
    wide = {0: 0, 1: 1200}.get(scale, 50000)

    # users: first is the admin; the last has no OneDrive, the second last
    # (scale >= 1) no mailbox
    people = PEOPLE[:n_users]
    for i, (given, sur) in enumerate(people):
        if i == 0:
            upn = t.admin_upn
            display = "MOD Administrator"
        else:
            nick = unicodedata.normalize("NFKD", given + sur[0]).encode(
                "ascii", "ignore").decode()
            upn = "%s@%s" % (nick, t.domain)
            display = "%s %s" % (given, sur)
        u = User(_guid(rng), upn, display, given, sur, rng.choice(JOBS),
                 has_mailbox=not (scale >= 1 and i == n_users - 2),
                 office="%d/%d" % (rng.randint(1, 40), rng.randint(1000,
                                                                   3000)),
                 phone="+1 425 555 %04d" % rng.randint(0, 9999))
        t.add_user(u)
    users = t.users

    # root site + team sites (+ subsites), some with two libraries
    root = t.add_site(Site(t, t.new_site_id(t.sp_host, rng), t.sp_host, "",
                           "Communication site", "Communication site",
                           _ts(rng), _ts(rng, 1735689600.0)))
    sites = [root]
    for i in range(n_sites):
        nm, disp = SITE_NAMES[i % len(SITE_NAMES)]
        if i >= len(SITE_NAMES):
            nm, disp = "%s%d" % (nm, i), "%s %d" % (disp, i)
        s = t.add_site(Site(t, t.new_site_id(t.sp_host, rng), t.sp_host,
                            "sites/" + nm, nm, disp, _ts(rng, 1546300800.0, 1577836800.0),
                            _ts(rng, 1704067200.0),
                            description="%s team site" % disp))
        sites.append(s)
        if scale >= 1 and i % 3 == 0:
            for j in range(1 + (i % 2)):
                snm, sdisp = SUBSITES[(i + j) % len(SUBSITES)]
                coll = s.id.split(",")[1]
                sub = t.add_site(Site(
                    t, t.new_site_id(t.sp_host, rng, coll), t.sp_host,
                    s.path + "/" + snm, snm, sdisp, _ts(rng, 1546300800.0, 1577836800.0), _ts(rng, 1704067200.0),
                    parent=s))
                sites.append(sub)

    # M365 groups (scale >= 1): each has a team site + drive
    if scale >= 1:
        for i, (nm, disp) in enumerate([("ProjectX", "Project X"),
                                         ("Sales", "Sales Team")]):
            gr = Group(_guid(rng), disp, nm, "%s group" % disp, _ts(rng))
            gr.mail = "%s@%s" % (nm, t.domain)
            t.groups.append(gr)
            s = t.add_site(Site(t, t.new_site_id(t.sp_host, rng),
                                t.sp_host, "sites/grp-" + nm, "grp-" + nm,
                                disp, _ts(rng, 1546300800.0, 1577836800.0), _ts(rng, 1704067200.0)))
            s.group = gr
            gr.site = s
            sites.append(s)
    else:  # the team site belongs to an M365 group
        gr = Group(_guid(rng), sites[1].display_name, sites[1].name,
                   "%s group" % sites[1].display_name, _ts(rng))
        gr.mail = "%s@%s" % (sites[1].name, t.domain)
        t.groups.append(gr)
        sites[1].group = gr
        gr.site = sites[1]
    sec = Group(_guid(rng), "All Staff (security)", "allstaff",
                "security group", _ts(rng), unified=False)
    t.groups.append(sec)

    for k, s in enumerate(sites):
        d = _new_drive(t, rng, "Documents", "documentLibrary", site=s,
                       group=s.group, owner_user=users[0])
        if s.group is not None:
            s.group.drive = d
        g.fill(d, n_files if k else max(8, n_files // 2), users,
               nmarkers=1 if k < 3 else 0)
        if scale >= 1 and k % 4 == 1:
            d2 = _new_drive(t, rng, "Contracts", "documentLibrary", site=s,
                            owner_user=users[0])
            g.fill(d2, n_files // 3, users, nmarkers=0)

    # OneDrives (personal sites on the -my host)
    for i, u in enumerate(users):
        if i == len(users) - 1:
            continue  # no OneDrive provisioned
        path = "personal/" + u.upn.replace("@", "_").replace(".", "_")
        s = Site(t, t.new_site_id(t.my_host, rng), t.my_host, path,
                 u.display_name, u.display_name, _ts(rng, 1546300800.0, 1577836800.0), _ts(rng, 1704067200.0),
                 personal=True)
        t.add_site(s)
        u.site = s
        u.drive = _new_drive(t, rng, "OneDrive", "business", site=s, user=u)
        g.fill(u.drive, n_files // 2, [u], nmarkers=1 if i == 0 else 0)

    # special shapes in the first team site's library
    lib = sites[1].drives[0] if len(sites) > 1 else sites[0].drives[0]
    deep = lib.root
    for lvl in range(12 if scale else 6):
        deep = g.folder(lib, deep, "Level %d – ünïcode niveau" % lvl)
    g.file(lib, deep, "deep file.txt", size=123)
    long_name = ("Long name " + "x" * 300)[:250] + ".txt"
    g.file(lib, lib.root, long_name, size=300)
    if scale >= 1:
        big = g.folder(lib, lib.root, "Scans")
        for size in (12 << 20, 25 << 20, 40 << 20, 64 << 20):
            g.file(lib, big, "scan %d MB.pdf" % (size >> 20), size=size)
    if wide:
        wf = g.folder(lib, lib.root, "Wide folder")
        for i in range(wide):
            nm = "item %05d.txt" % i
            g.file(lib, wf, nm, size=g.rng.randint(10, 4000))


def _build_edge(t):
    """Edge cases on top of the scale-0 tenant."""
    rng = t.rng
    g = _Gen(t, rng, 0)
    _build(t, 0)
    root = t.sites[0]
    d = _new_drive(t, rng, "Edge Cases", "documentLibrary", site=root,
                   owner_user=t.users[0])
    r = d.root
    for name in ["trailing dots...", "hash #1.txt", "percent 100%.txt",
                 "caf\u00e9.txt", "cafe\u0301.txt",
                 "emoji 😀🎉.txt", "UPPER.TXT", "semi;colon.txt",
                 "amp & ersand.txt", "plus+sign.txt", "a" * 251 + ".txt",
                 "quote's.txt", "comma, here.txt", "brackets [1] {2}.txt",
                 "dollar $HOME.txt", "back`tick.txt", "equals=sign.txt",
                 "\u00c5ngstr\u00f6m NFC.txt", "A\u030angstro\u0308m NFD.txt",
                 ".hidden", "..double", "noext"]:
        g.file(d, r, name, size=rng.randint(0, 2000))
    g.file(d, r, "zero.bin", size=0)
    g.file(d, r, "exact 320KiB.bin", size=327680)
    g.file(d, r, "marker.txt", marker=True)
    g.folder(d, r, "empty folder")
    g.folder(d, r, "folder.with.dots.")
    nfc = g.folder(d, r, "R\u00e9sum\u00e9s")
    g.file(d, nfc, "inside nfc.txt", size=10)
    nfd = g.folder(d, r, "Re\u0301sume\u0301s")
    g.file(d, nfd, "inside nfd.txt", size=11)
    deep = r
    for lvl in range(30):
        deep = g.folder(d, deep, "d%02d" % lvl)
    g.file(d, deep, "bottom.txt", size=5)
    # path close to SharePoint's 400-character limit
    p = r
    for lvl in range(3):
        p = g.folder(d, p, ("long segment %d " % lvl) + "y" * 100)
    g.file(d, p, "end.txt", size=7)
    note = g.folder(d, r, "Team Notebook")
    note.package = {"type": "oneNote"}
    # a disabled user without mailbox and OneDrive
    u = User(_guid(rng), "disabled.user@" + t.domain, "Disabled User",
             "Disabled", "User", "Former employee", has_mailbox=False,
             enabled=False)
    t.add_user(u)


def generate(scale=0, seed=1, kind=None, state_dir=None):
    t = Tenant(seed, scale, kind)
    t.state_dir = state_dir
    if state_dir:
        load_cache(t)
    if kind == "edge":
        _build_edge(t)
    elif kind in (None, "", "standard"):
        _build(t, scale)
    else:
        raise SystemExit("emulator: unknown --tenant '%s' (use 'edge')" %
                         kind)
    return t


def _cache_path(t):
    return os.path.join(t.state_dir, "hashes-v1.json")


def load_cache(t):
    try:
        with open(_cache_path(t)) as f:
            t.hash_cache = {k: tuple(v) for k, v in json.load(f).items()}
    except (OSError, ValueError):
        t.hash_cache = {}


def save_cache(t):
    """Writes the hash cache (STATE/hashes-v1.json) when it changed."""
    if not t or not t.state_dir or not t.hash_dirty:
        t.save_timer = None
        return
    with t.hash_lock:
        data = json.dumps(t.hash_cache)
        t.hash_dirty = 0
        t.save_timer = None
    tmp = _cache_path(t) + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, _cache_path(t))
