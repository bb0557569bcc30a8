"""live/: the tenant as it is now, through m365fs -o connection=NAME.

Each test mounts a repository with the scale-0 emulator as the tenant and
compares live/ with the emulator's ground truth (/truth), its byte
counters (/stats) and with a snapshot of the same tenant.
"""
import hashlib
import os
import re
import subprocess
import time

import pytest

import fsutil
from fsutil import Mount
from test_snapshot import Tool, safe

pytestmark = pytest.mark.skipif(not fsutil.have_fuse(),
                                reason="needs /dev/fuse and fusermount3")

DEBUG = ["-o", "debug"] if os.environ.get("M365_LIVE_DEBUG") else []
ADMIN = "admin@contoso.onmicrosoft.com"
MIB = 1 << 20


def file_sha(p):
    with open(p, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def msg_name(m):
    """names_message() for a message of the truth with a safe subject."""
    t = time.strptime(m["receivedDateTime"], "%Y-%m-%dT%H:%M:%SZ")
    h = hashlib.sha256(m["immutable_id"].encode()).hexdigest()[:8]
    return "%s %s [%s].eml" % (time.strftime("%Y-%m-%d %H%M", t),
                               m["subject"] or "(no subject)", h)


class Env:
    def __init__(self, emu, tmp, snapshot=False):
        self.emu, self.tmp = emu, tmp
        self.tool = Tool(emu, tmp)
        self.repo = tmp / "repo"
        self.tool.init(self.repo)
        if snapshot:
            s = self.tool.snapshot(self.repo)
            assert s["status"] == "complete", s
        self.n = 0

    def mount(self, *opts, ttl=None):
        self.n += 1
        if ttl is not None:
            opts = ("-o", "live_ttl=%g" % ttl) + opts
        m = Mount(self.repo, self.tmp / ("mnt%d" % self.n),
                  "-o", "connection=emu", *opts, *DEBUG, env=self.tool.env)
        m.allowed = [r"retry \d+ in", r"HTTP (429|503)", r"throttled"]
        return m


def wait_for(pred, what, timeout=60):
    t0 = time.monotonic()
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() - t0 < timeout, "timed out waiting: " + what
        time.sleep(0.3)


def test_live_equals_truth_without_snapshots(emulator, tmp_path):
    """A repository with no snapshot mounts; live/ lists exactly the
    tenant's files, folders and messages, with their bytes."""
    env = Env(emulator, tmp_path)
    t = emulator.truth()
    with env.mount() as m:
        live = m.mnt / "live"
        assert sorted(os.listdir(m.mnt)) == ["live", "restore", "snapshots"]
        assert os.listdir(m.mnt / "snapshots") == []
        assert sorted(os.listdir(live)) == ["mailboxes", "onedrive", "sites"]
        files, dirs = {}, set()
        for dp, dns, fns in os.walk(live):
            for dn in dns:
                dirs.add(os.path.relpath(os.path.join(dp, dn), live))
            for fn in fns:
                p = os.path.join(dp, fn)
                files[os.path.relpath(p, live)] = p
        want = {f["path"]: f for f in t["files"]
                if all(safe(c) for c in f["path"].split("/"))}
        assert want, "the tenant has no files with plain names"
        drive_files = {k for k in files if not k.startswith("mailboxes/")}
        assert drive_files >= set(want), sorted(set(want) - drive_files)
        assert len(drive_files) == len(t["files"])
        for path, f in want.items():
            st = os.stat(files[path])
            assert st.st_size == f["size"], path
            assert file_sha(files[path]) == f["sha256"], path
        for d in t["folders"]:
            if all(safe(c) for c in d.split("/")):
                assert d in dirs, d
        msgs = [x for x in t["messages"]
                if safe(x["subject"] or "x") and len(x["subject"]) < 100]
        assert msgs
        for x in msgs:
            p = live / "mailboxes" / x["mailbox"] / x["folder_path"] / \
                msg_name(x)
            assert file_sha(p) == x["sha256"], p
            assert os.stat(p).st_size == x["size"], p  # known once read
        # xattrs like snapshots/
        f = next(iter(want.values()))
        p = files[f["path"]]
        assert os.getxattr(p, "user.m365.id").decode() == f["id"]
        assert os.getxattr(p, "user.m365.cTag").decode() == f["cTag"]
        assert os.getxattr(p, "user.m365.quickXorHash").decode() == \
            f["quickXorHash"]
        with pytest.raises(OSError):
            open(p, "r+b")


def big_file(emulator, name, size):
    """A file of @size bytes in the admin's OneDrive -> its SHA-256."""
    r = emulator.mutate(op="create_file", size=size,
                        path="onedrive/%s/%s" % (ADMIN, name))
    assert r["ok"], r
    return next(f["sha256"] for f in emulator.truth()["files"]
                if f["path"].endswith("/" + name))


def test_live_range_read_downloads_only_that_range(emulator, tmp_path):
    """4 KiB from the middle of a 60 MB file costs about 4 KiB of download;
    the whole file then reads back with the tenant's hash."""
    env = Env(emulator, tmp_path)
    size = 60 * 1000 * 1000
    sha = big_file(emulator, "live-big.bin", size)
    with env.mount() as m:
        p = m.mnt / "live/onedrive" / ADMIN / "live-big.bin"
        assert os.stat(p).st_size == size
        emulator.reset_stats()
        with open(p, "rb") as f:
            f.seek(size // 2 + 12345)
            mid = f.read(4096)
        s = emulator.stats()
        assert len(mid) == 4096
        dl = [x for x in s["log"] if x["path"].startswith("/_layouts")]
        assert dl, s["log"]
        assert all(not x["had_authorization"] for x in dl)
        assert all(x["range"] for x in dl), dl
        assert s["bytes_downloaded"] <= 1 * MIB, s["bytes_downloaded"]
        emulator.reset_stats()
        assert file_sha(p) == sha
        s = emulator.stats()
        # read-ahead in large blocks: few requests, nothing twice
        n = len([x for x in s["log"] if x["path"].startswith("/_layouts")])
        assert n <= size // MIB // 2, n
        assert s["bytes_downloaded"] <= size + 2 * MIB
        with open(p, "rb") as f:
            f.seek(size // 2 + 12345)
            assert f.read(4096) == mid


def test_live_cold_cat_is_one_request(emulator, tmp_path):
    """Reading a large file from start to end costs one ranged request on
    its download URL (redirects would count too): one stream, consumed as
    the reader advances, every byte once."""
    env = Env(emulator, tmp_path)
    size = 40 * 1000 * 1000 + 4321
    sha = big_file(emulator, "live-stream.bin", size)
    with env.mount(ttl=600) as m:
        p = m.mnt / "live/onedrive" / ADMIN / "live-stream.bin"
        assert os.stat(p).st_size == size
        emulator.reset_stats()
        assert file_sha(p) == sha
        s = emulator.stats()
        assert s["total"] == 1, s["log"]
        (x,) = s["log"]
        assert x["path"].startswith("/_layouts") and x["status"] == 206, x
        assert x["range"].replace(" ", "") in ("bytes=0-%d" % (size - 1),
                                               "bytes=0-"), x
        assert s["bytes_downloaded"] == size
        # read again: from the cache, no request
        emulator.reset_stats()
        assert file_sha(p) == sha
        assert emulator.stats()["total"] == 0


def test_live_broken_stream_goes_on_where_it_broke(emulator, tmp_path):
    """A download whose connection drops halfway is asked again for the
    rest only: the file reads back right, about once downloaded."""
    env = Env(emulator, tmp_path)
    size = 30 * 1000 * 1000
    sha = big_file(emulator, "live-drop.bin", size)
    with env.mount(ttl=600) as m:
        p = m.mnt / "live/onedrive" / ADMIN / "live-drop.bin"
        assert os.stat(p).st_size == size
        emulator.reset_stats()
        emulator.control("POST", "/faults", [
            dict(path_regex="download", host="files",
                 drop_after_bytes=size // 2, count=1)])
        assert file_sha(p) == sha
        s = emulator.stats()
        dl = [x for x in s["log"] if x.get("host") == "files"]
        assert len(dl) == 2, dl
        start = int(re.match(r"bytes=(\d+)-", dl[1]["range"]).group(1))
        assert start >= size // 2 - 2 * MIB, dl  # not from the start
        assert s["bytes_downloaded"] <= size + 2 * MIB, s["bytes_downloaded"]
        emulator.fault(clear=True)


def test_live_mutations_appear_after_ttl(emulator, tmp_path):
    env = Env(emulator, tmp_path)
    base = "onedrive/%s" % ADMIN
    with env.mount(ttl=1) as m:
        d = m.mnt / "live" / base
        before = set(os.listdir(d))
        assert "live-new.txt" not in before
        emulator.mutate(op="create_file", path=base + "/live-new.txt",
                        content="made after the mount\n")
        wait_for(lambda: "live-new.txt" in os.listdir(d), "new file")
        assert (d / "live-new.txt").read_text() == "made after the mount\n"
        emulator.mutate(op="modify_file", path=base + "/live-new.txt",
                        content="changed content, longer than before\n")
        wait_for(lambda: (d / "live-new.txt").read_text()
                 == "changed content, longer than before\n", "new content")
        emulator.mutate(op="rename", path=base + "/live-new.txt",
                        new_name="live-renamed.txt")
        wait_for(lambda: "live-renamed.txt" in os.listdir(d), "rename")
        # the kernel may keep the old name for one more TTL
        wait_for(lambda: not (d / "live-new.txt").exists(), "old name")
        emulator.mutate(op="delete", path=base + "/live-renamed.txt")
        wait_for(lambda: not (d / "live-renamed.txt").exists(), "delete")
        assert set(os.listdir(d)) == before


def fuse_ops(m, start):
    """Opcodes of the FUSE requests the daemon (-o debug) logged after
    byte @start of its log -> {opcode: count}."""
    ops = {}
    for op in re.findall(r"opcode: (\w+)", m.output()[start:]):
        ops[op] = ops.get(op, 0) + 1
    return ops


def test_read_only_files_close_without_a_request(emulator, tmp_path):
    """With a connection the kernel sends open and release for every file
    (live/ and restore/ need them), but not a flush on each close() of a
    snapshot or live/ file: they are read-only, so close() waits for
    nothing.  restore/ files still get theirs (it is where a restore
    reports its errors)."""
    env = Env(emulator, tmp_path, snapshot=True)
    m = env.mount("-o", "debug")
    m.allowed = [r"error: -\d+"]
    with m:
        snap = m.mnt / "snapshots" / "latest" / "onedrive" / ADMIN
        live = m.mnt / "live" / "onedrive" / ADMIN
        files = [p for p in snap.rglob("*") if p.is_file()][:5]
        assert files
        for root in (snap, live):
            for f in files:
                (root / f.relative_to(snap)).read_bytes()  # names listed
            start = len(m.output())
            for f in files:
                with open(root / f.relative_to(snap), "rb") as fh:
                    fh.read(1)
            ops = fuse_ops(m, start)
            assert ops.get("OPEN") == len(files), ops
            assert "FLUSH" not in ops, ops
        start = len(m.output())
        (m.mnt / "restore" / "onedrive" / ADMIN / "flush-probe.txt") \
            .write_bytes(b"probe\n")
        assert fuse_ops(m, start).get("FLUSH", 0) >= 1


def test_live_warm_ls_l_is_answered_by_the_kernel(emulator, tmp_path):
    """Within the TTL the kernel keeps a folder's entries and attributes:
    ls -l again costs no readdir, lookup or getattr (only opendir,
    releasedir and ls's two ACL/label probes, answered without Graph);
    once the listing was
    renewed after the TTL, ls -l shows the tenant's changes (a new file,
    a deleted one, a new size)."""
    env = Env(emulator, tmp_path)
    base = "onedrive/%s/wide" % ADMIN
    emulator.mutate(op="create_folder", path=base)
    for i in range(40):
        emulator.mutate(op="create_file", path="%s/f%02d.txt" % (base, i),
                        content="file %d\n" % i)

    def ls_l(d):
        p = subprocess.run(["ls", "-l", str(d)], capture_output=True,
                           text=True, check=True)
        return {ln.split()[-1]: int(ln.split()[4])
                for ln in p.stdout.splitlines()[1:]}

    m = env.mount("-o", "debug", ttl=600)
    m.allowed = [r"error: -\d+"]
    with m:
        d = m.mnt / "live" / base
        first = ls_l(d)
        assert first == {"f%02d.txt" % i: len("file %d\n" % i)
                         for i in range(40)}
        # the kernel marks the folder's atime stale after a readdir it
        # sent: this ls -l asks for the folder's attributes once
        assert ls_l(d) == first
        emulator.reset_stats()
        for _ in range(3):
            start = len(m.output())
            assert ls_l(d) == first
            ops = fuse_ops(m, start)
            assert not {"READDIR", "READDIRPLUS", "LOOKUP", "GETATTR"} \
                & set(ops), ops
            assert ops.get("OPENDIR") == 1, ops
        assert emulator.stats()["total"] == 0
    with env.mount(ttl=1) as m:
        d = m.mnt / "live" / base
        assert ls_l(d) == first
        assert ls_l(d) == first
        emulator.mutate(op="create_file", path=base + "/new.txt",
                        content="new\n")
        emulator.mutate(op="delete", path=base + "/f00.txt")
        emulator.mutate(op="modify_file", path=base + "/f01.txt",
                        content="a longer second version\n")
        want = dict(first, **{"new.txt": 4, "f01.txt": 24})
        del want["f00.txt"]
        wait_for(lambda: ls_l(d) == want, "the changes in ls -l")


def test_live_listing_in_pages_reads_ahead(emulator, tmp_path):
    """A folder that comes in several pages lists completely with one
    request a page (the next one asked for while the last is worked
    through, none twice); a page that fails fails the listing (EIO-like
    errno, a log line), and the next ls lists it whole."""
    env = Env(emulator, tmp_path)
    base = "onedrive/%s/paged" % ADMIN
    emulator.mutate(op="create_folder", path=base)
    other = "onedrive/%s/paged2" % ADMIN
    emulator.mutate(op="create_folder", path=other)
    names = ["p%02d.txt" % i for i in range(40)]
    for i, n in enumerate(names):
        emulator.mutate(op="create_file", path="%s/%s" % (base, n),
                        content=n)
        if i < 20:
            emulator.mutate(op="create_file", path="%s/%s" % (other, n),
                            content=n)
    emulator.knobs(max_page_size=7)
    try:
        m = env.mount(ttl=600)
        m.allowed = [r"list children: "]
        with m:
            d = m.mnt / "live" / base
            os.stat(d)
            emulator.reset_stats()
            assert sorted(os.listdir(d)) == names
            calls = graph_calls(emulator.stats(), "/children")
            assert len(calls) == 6, calls
            assert len({c["query"] for c in calls}) == 6, calls
            assert os.stat(d / "p39.txt").st_size == len("p39.txt")

            d2 = m.mnt / "live" / other
            os.stat(d2)
            emulator.fault(path_regex=r"/children\?.*skiptoken", status=403,
                           count=1)
            with pytest.raises(OSError):
                os.listdir(d2)
            assert sorted(os.listdir(d2)) == names[:20]
    finally:
        emulator.knobs(max_page_size=None)


def test_live_user_lists_are_kept_longer(emulator, tmp_path):
    """onedrive/ and mailboxes/ (a users request plus a $batch per 20
    users each) are listed again only after ten times the TTL, like
    sites/; the drives below them keep the TTL."""
    env = Env(emulator, tmp_path)
    ttl = 0.5
    with env.mount(ttl=ttl) as m:
        live = m.mnt / "live"
        users = sorted(os.listdir(live / "onedrive"))
        boxes = sorted(os.listdir(live / "mailboxes"))
        assert ADMIN in users and ADMIN in boxes
        os.listdir(live / "onedrive" / ADMIN)
        t0 = time.monotonic()
        time.sleep(ttl + 0.5)
        emulator.reset_stats()
        assert sorted(os.listdir(live / "onedrive")) == users
        assert sorted(os.listdir(live / "mailboxes")) == boxes
        os.listdir(live / "onedrive" / ADMIN)
        s = emulator.stats()
        assert graph_calls(s, "/users") == [], s["log"]
        assert graph_calls(s, "/$batch") == [], s["log"]
        assert graph_calls(s, "/children") or graph_calls(s, "/delta"), \
            s["log"]
        time.sleep(max(0.0, t0 + 10 * ttl + 0.5 - time.monotonic()))
        emulator.reset_stats()
        assert sorted(os.listdir(live / "onedrive")) == users
        s = emulator.stats()
        assert len(graph_calls(s, "/users")) == 1, s["log"]


def walk(top):
    """Every file under @top -> its bytes, and the folders."""
    files, dirs = {}, []
    for dp, dns, fns in os.walk(top):
        dirs.extend(os.path.join(dp, d) for d in dns)
        for fn in fns:
            p = os.path.join(dp, fn)
            with open(p, "rb") as f:
                files[os.path.relpath(p, top)] = f.read()
    return files, dirs


def graph_calls(s, what):
    return [x for x in s["log"] if x.get("host") != "files"
            and x["path"].endswith(what)]


def drive_tree(emulator, name, n, sub=""):
    """Folders NAME/d0..dN-1 in the admin's OneDrive, each with f.txt
    (in SUB below it when given) -> the truth and the admin's files
    {path below the drive: sha256}."""
    base = "onedrive/%s/%s" % (ADMIN, name)
    emulator.mutate(op="create_folder", path=base)
    for i in range(n):
        emulator.mutate(op="create_folder", path="%s/d%d" % (base, i))
        if sub:
            emulator.mutate(op="create_folder",
                            path="%s/d%d%s" % (base, i, sub))
        emulator.mutate(op="create_file",
                        path="%s/d%d%s/f.txt" % (base, i, sub),
                        content="file %d\n" % i)
    t = emulator.truth()
    prefix = "onedrive/%s/" % ADMIN
    return t, {f["path"][len(prefix):]: f["sha256"] for f in t["files"]
               if f["path"].startswith(prefix)}


def test_live_recursive_walk_enumerates_the_drive(emulator, tmp_path):
    """A recursive walk of a drive costs a few listings and one delta
    enumeration, not a listing per folder; what it shows equals the
    tenant.  A single folder's listing does not enumerate its drive."""
    env = Env(emulator, tmp_path)
    _, want = drive_tree(emulator, "walk", 8, "/e")
    with env.mount(ttl=600) as m:
        top = m.mnt / "live/onedrive" / ADMIN
        emulator.reset_stats()
        assert "walk" in os.listdir(top)
        assert len(os.listdir(top / "walk")) == 8
        s = emulator.stats()
        assert graph_calls(s, "/delta") == [], s["log"]
        emulator.reset_stats()
        files, dirs = walk(top)
        s = emulator.stats()
        assert len(dirs) >= 17, dirs
        enum = graph_calls(s, "/delta")
        assert len(enum) == 1 and "token" not in enum[0]["query"], enum
        assert len(graph_calls(s, "/children")) <= 3, s["log"]
        assert {k: hashlib.sha256(v).hexdigest() for k, v in files.items()
                if all(safe(c) for c in k.split("/"))} == \
            {k: v for k, v in want.items()
             if all(safe(c) for c in k.split("/"))}
        assert len(files) == len(want)


def test_live_enumeration_reads_ahead_up_to_its_limit(emulator, tmp_path):
    """The delta enumeration of a walk asks for each next page while the
    last one is worked through, one request a page; a drive of more pages
    than the enumeration takes costs the same requests as without reading
    ahead (it stops at the page that tells), and is listed folder by
    folder."""
    env = Env(emulator, tmp_path)
    t, want = drive_tree(emulator, "ahead", 4)
    items = 1 + len(want) + len([d for d in t["folders"] if d.startswith(
        "onedrive/%s/" % ADMIN)])
    size = -(-items // 6)
    for cap, pages in ((size, -(-items // size)), (1, 9)):
        emulator.knobs(max_page_size=cap)
        try:
            with env.mount(ttl=600) as m:
                top = m.mnt / "live/onedrive" / ADMIN
                os.listdir(top)
                emulator.reset_stats()
                files, _ = walk(top)
                s = emulator.stats()
        finally:
            emulator.knobs(max_page_size=None)
        enum = graph_calls(s, "/delta")
        assert len(enum) == pages, (cap, enum)
        assert len({x["query"] for x in enum}) == pages, enum
        assert {k: hashlib.sha256(v).hexdigest() for k, v in files.items()
                } == want


def test_live_refresh_through_delta(emulator, tmp_path):
    """When a drive's cached listings expire, one delta call tells what
    changed: with nothing changed no folder is listed again; after
    mutations the delta's items are applied to the folders they touched,
    still without a listing, and the mutations show."""
    env = Env(emulator, tmp_path)
    base = "onedrive/%s/dlt" % ADMIN
    emulator.mutate(op="create_folder", path=base)
    for sub in ("a", "b", "c"):
        emulator.mutate(op="create_folder", path="%s/%s" % (base, sub))
        emulator.mutate(op="create_file", path="%s/%s/f.txt" % (base, sub),
                        content="first %s\n" % sub)
    ttl = 2
    with env.mount(ttl=ttl) as m:
        top = m.mnt / "live/onedrive" / ADMIN
        files, dirs = walk(top)
        assert files["dlt/b/f.txt"] == b"first b\n"
        assert len(dirs) >= 4, dirs
        # nothing changed: one delta call, no listing, no download
        time.sleep(ttl + 0.5)
        emulator.reset_stats()
        assert walk(top) == (files, dirs)
        s = emulator.stats()
        assert len(graph_calls(s, "/delta")) == 1, s["log"]
        assert graph_calls(s, "/children") == [], s["log"]
        assert not [x for x in s["log"] if x.get("host") == "files"]
        # a new file in a/, new content in b/: applied from the delta
        emulator.mutate(op="create_file", path=base + "/a/new.txt",
                        content="new\n")
        emulator.mutate(op="modify_file", path=base + "/b/f.txt",
                        content="second b, longer\n")
        time.sleep(ttl + 0.5)
        emulator.reset_stats()
        files2, dirs2 = walk(top)
        s = emulator.stats()
        assert files2["dlt/a/new.txt"] == b"new\n"
        assert files2["dlt/b/f.txt"] == b"second b, longer\n"
        assert dirs2 == dirs
        assert set(files2) - set(files) == {"dlt/a/new.txt"}
        assert len(graph_calls(s, "/delta")) == 1, s["log"]
        assert graph_calls(s, "/children") == [], s["log"]
        # a deletion shows too
        emulator.mutate(op="delete", path=base + "/a/new.txt")
        time.sleep(ttl + 0.5)
        wait_for(lambda: not (top / "dlt/a/new.txt").exists(), "delete")
        assert sorted(os.listdir(top / "dlt/a")) == ["f.txt"]


def test_live_delta_changes_are_applied_to_the_listings(emulator, tmp_path):
    """After the TTL, one delta call renews the drive's listings with
    every kind of change applied to them, no folder listed again: a new
    file, a deleted one, a renamed file and folder, a file and a folder
    moved between folders (the folder keeps its listing at the new
    place), a folder deleted with its contents.  What live/ shows then
    equals the tenant."""
    env = Env(emulator, tmp_path)
    rel = "onedrive/%s" % ADMIN
    base = rel + "/pat"
    for d in ("", "/a", "/a/sub", "/b", "/b/c", "/gone"):
        emulator.mutate(op="create_folder", path=base + d)
    for f in ("a/f1.txt", "a/f2.txt", "a/sub/h.txt", "b/g.txt",
              "b/c/i.txt", "gone/j.txt"):
        emulator.mutate(op="create_file", path="%s/%s" % (base, f),
                        content="%s\n" % f)

    def truth():
        t = emulator.truth()
        files = {f["path"][len(base) + 1:]: f["sha256"] for f in t["files"]
                 if f["path"].startswith(base + "/")}
        dirs = {d[len(base) + 1:] for d in t["folders"]
                if d.startswith(base + "/")}
        return files, dirs

    def shown(top):
        files, dirs = walk(top)
        return ({k: hashlib.sha256(v).hexdigest() for k, v in files.items()},
                {os.path.relpath(d, top) for d in dirs})

    ttl = 2
    with env.mount(ttl=ttl) as m:
        top = m.mnt / "live" / base
        assert shown(top) == truth()
        emulator.mutate(op="create_file", path=base + "/a/new.txt",
                        content="new\n")
        emulator.mutate(op="delete", path=base + "/a/f2.txt")
        emulator.mutate(op="rename", path=base + "/a/f1.txt",
                        new_name="renamed.txt")
        emulator.mutate(op="rename", path=base + "/a/sub",
                        new_name="sub2")
        emulator.mutate(op="move", path=base + "/b/g.txt", dest=base + "/a")
        emulator.mutate(op="move", path=base + "/b/c", dest=base + "/a")
        emulator.mutate(op="delete", path=base + "/gone")
        time.sleep(ttl + 0.5)
        emulator.reset_stats()
        want = truth()
        assert "a/renamed.txt" in want[0] and "a/c/i.txt" in want[0]
        assert shown(top) == want
        s = emulator.stats()
        assert len(graph_calls(s, "/delta")) == 1, s["log"]
        assert graph_calls(s, "/children") == [], s["log"]
        assert not os.path.exists(top / "gone")
        assert sorted(os.listdir(top / "b")) == []


def test_live_mail_folder_renewed_through_message_delta(emulator, tmp_path):
    """An expired message listing is renewed with one messages/delta call
    (the folder's saved deltaLink), not listed again: a new message and a
    removed one show, and the folder equals the tenant."""
    env = Env(emulator, tmp_path)
    t = emulator.truth()
    folders = {}
    for x in t["messages"]:
        folders.setdefault((x["mailbox"], x["folder_path"]), []).append(x)
    (mbx, path), msgs = max(
        ((k, v) for k, v in folders.items()
         if all(safe(c) for c in k[1].split("/"))
         and all(safe(x["subject"] or "x") and len(x["subject"] or "") < 100
                 for x in v)), key=lambda kv: len(kv[1]))
    assert len(msgs) >= 2

    def want():
        return {msg_name(x) for x in emulator.truth()["messages"]
                if (x["mailbox"], x["folder_path"]) == (mbx, path)}

    def message_calls(s):
        return [x for x in s["log"] if "/messages" in x["path"]]

    ttl = 2
    with env.mount(ttl=ttl) as m:
        d = m.mnt / "live/mailboxes" / mbx / path
        assert set(os.listdir(d)) >= want()
        subfolders = {n for n in os.listdir(d) if (d / n).is_dir()}
        r = emulator.mutate(op="create_message", mailbox=mbx, folder=path,
                            subject="arrived after the mount")
        assert r["ok"], r
        emulator.mutate(op="delete_message", mailbox=mbx, id=msgs[0]["id"])
        time.sleep(ttl + 0.5)
        emulator.reset_stats()
        names = set(os.listdir(d))
        s = emulator.stats()
        assert names - subfolders == want()
        assert msg_name(msgs[0]) not in names
        (new,) = [x for x in emulator.truth()["messages"]
                  if x["id"] == r["id"]]
        assert msg_name(new) in names
        (call,) = message_calls(s)
        assert call["path"].endswith("/messages/delta"), call
        assert "deltatoken" in call.get("query", ""), call
        assert file_sha(d / msg_name(new)) == new["sha256"]
        # nothing changed: one delta call again, nothing else of messages
        time.sleep(ttl + 0.5)
        emulator.reset_stats()
        assert set(os.listdir(d)) == names
        (call,) = message_calls(emulator.stats())
        assert "deltatoken" in call.get("query", ""), call
        # a deltaLink the server no longer knows (410): one full listing
        emulator.knobs(expire_mail_delta_tokens=True)
        emulator.mutate(op="delete_message", mailbox=mbx, id=r["id"])
        time.sleep(ttl + 0.5)
        emulator.reset_stats()
        assert set(os.listdir(d)) - subfolders == want()
        assert msg_name(new) not in os.listdir(d)
        gone, full = message_calls(emulator.stats())
        assert gone["status"] == 410 and full["status"] == 200, (gone, full)
        assert "deltatoken" not in full.get("query", ""), full


def test_live_mail_subfolders_are_kept_longer(emulator, tmp_path):
    """A mail folder's messages are renewed every TTL (one delta call),
    its subfolders, like the folders of the mailbox, only after ten: no
    childFolders or mailFolders request until then, and a new subfolder
    shows after that."""
    env = Env(emulator, tmp_path)
    for path in ("Kept", "Kept/A", "Kept/B"):
        parent, _, name = path.rpartition("/")
        r = emulator.mutate(op="create_mail_folder", mailbox=ADMIN,
                            parent=parent or None, name=name)
        assert r["ok"], r

    def folder_calls(s):
        return [x for x in s["log"] if "/mailFolders" in x["path"]
                and "/messages" not in x["path"]]

    ttl = 0.5
    with env.mount(ttl=ttl) as m:
        d = m.mnt / "live/mailboxes" / ADMIN / "Kept"
        t0 = time.monotonic()
        assert sorted(os.listdir(d)) == ["A", "B"]
        emulator.mutate(op="create_message", mailbox=ADMIN, folder="Kept",
                        subject="kept folders")
        emulator.mutate(op="create_mail_folder", mailbox=ADMIN,
                        parent="Kept", name="C")
        time.sleep(ttl + 0.5)
        emulator.reset_stats()
        names = os.listdir(d)
        s = emulator.stats()
        assert sorted(n for n in names if (d / n).is_dir()) == ["A", "B"]
        assert [n for n in names if "kept folders" in n], names
        assert folder_calls(s) == [], s["log"]
        (call,) = [x for x in s["log"] if "/messages" in x["path"]]
        assert "deltatoken" in call.get("query", ""), call
        time.sleep(max(0.0, t0 + 10 * ttl + 0.5 - time.monotonic()))
        emulator.reset_stats()
        names = os.listdir(d)
        assert sorted(n for n in names if (d / n).is_dir()) == \
            ["A", "B", "C"]
        calls = folder_calls(emulator.stats())
        assert [x for x in calls if x["path"].endswith("/childFolders")], \
            calls


def test_live_first_refresh_through_a_time_token(emulator, tmp_path):
    """Two folders listed (no recursive walk, so no deltaLink yet) are
    renewed by a delta call with a time token; a move from one to the
    other shows in both through the next delta call alone, without
    listing either again."""
    env = Env(emulator, tmp_path)
    base = "onedrive/%s/tok" % ADMIN
    emulator.mutate(op="create_folder", path=base)
    emulator.mutate(op="create_file", path=base + "/x.txt", content="x\n")
    ttl = 2
    with env.mount(ttl=ttl) as m:
        top = m.mnt / "live/onedrive" / ADMIN
        names = set(os.listdir(top))
        assert "tok" in names and "x.txt" not in names
        assert os.listdir(top / "tok") == ["x.txt"]
        time.sleep(ttl + 0.5)
        emulator.reset_stats()
        assert set(os.listdir(top)) == names
        assert os.listdir(top / "tok") == ["x.txt"]
        s = emulator.stats()
        (d,) = graph_calls(s, "/delta")
        assert re.search(r"token=\d{4}-", d["query"]), d
        assert graph_calls(s, "/children") == [], s["log"]
        emulator.mutate(op="move", path=base + "/x.txt",
                        dest="onedrive/%s" % ADMIN)
        time.sleep(ttl + 0.5)
        emulator.reset_stats()
        assert os.listdir(top / "tok") == []
        assert set(os.listdir(top)) == names | {"x.txt"}
        assert (top / "x.txt").read_text() == "x\n"
        s = emulator.stats()
        (d,) = graph_calls(s, "/delta")
        assert "token=" in d["query"] and not re.search(
            r"token=\d{4}-", d["query"]), d  # the saved deltaLink
        assert graph_calls(s, "/children") == [], s["log"]


def test_live_diff_against_snapshot_lists_the_mutations(emulator, tmp_path):
    env = Env(emulator, tmp_path, snapshot=True)
    t = emulator.truth()
    base = "onedrive/%s" % ADMIN
    files = sorted(f["path"] for f in t["files"]
                   if f["path"].startswith(base + "/")
                   and all(safe(c) for c in f["path"].split("/"))
                   and f["size"] > 0)
    assert len(files) >= 2
    changed, gone = files[0], files[1]
    emulator.mutate(op="modify_file", path=changed)
    emulator.mutate(op="delete", path=gone)
    emulator.mutate(op="create_file", path=base + "/diff-new.txt",
                    content="new since the snapshot\n")
    with env.mount(ttl=1) as m:
        live = m.mnt / "live"
        snap = m.mnt / "snapshots/latest"
        p = subprocess.run(["diff", "-rq", str(live / "onedrive"),
                            str(snap / "onedrive")],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 1, p.stderr
        got = set()
        for line in p.stdout.splitlines():
            mo = re.match(r"Files (.*) and (.*) differ$", line)
            if mo:
                got.add(("differ", os.path.relpath(mo.group(1), live)))
                continue
            mo = re.match(r"Only in (.*): (.*)$", line)
            assert mo, line
            side = "live" if mo.group(1).startswith(str(live)) else "snap"
            root = live if side == "live" else snap
            got.add((side, os.path.relpath(
                os.path.join(mo.group(1), mo.group(2)), root)))
        assert got == {("differ", changed), ("snap", gone),
                       ("live", base + "/diff-new.txt")}, p.stdout
        # the rest of the tenant did not change: no difference at all
        p = subprocess.run(["diff", "-r", str(live / "sites"),
                            str(snap / "sites")],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        p = subprocess.run(["diff", "-r", str(live / "mailboxes"),
                            str(snap / "mailboxes")],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        # same extended attributes as the snapshot (content hashes and
        # the snapshots that have the version aside)
        same = next(f for f in files if f not in (changed, gone))
        lx = {k: os.getxattr(live / same, k) for k in os.listxattr(live / same)}
        sx = {k: os.getxattr(snap / same, k) for k in os.listxattr(snap / same)
              if not k.startswith("user.m365.version.")}
        sx.pop("user.m365.sha256", None)
        assert lx == sx


def test_live_throttling_storm_slows_but_does_not_fail(emulator, tmp_path):
    env = Env(emulator, tmp_path)
    t = emulator.truth()
    want = {f["path"]: f["sha256"] for f in t["files"]
            if f["path"].startswith("sites/")
            and all(safe(c) for c in f["path"].split("/"))}
    assert want
    with env.mount() as m:
        live = m.mnt / "live"
        emulator.reset_stats()
        # every other Graph call and download is answered 429 or 503 for
        # a while: the reads wait (Retry-After) instead of failing
        emulator.control("POST", "/faults", [
            dict(path_regex="^/v1.0/", status=429, retry_after="0.2",
                 count=40),
            dict(path_regex="download", status=503, retry_after="0.1",
                 count=20, host="files")])
        for path, sha in want.items():
            assert file_sha(live / path) == sha, path
        s = emulator.stats()
        assert s["throttled"] > 0 or s["by_status"].get("503"), s
        emulator.fault(clear=True)
