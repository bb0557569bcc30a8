"""restore/: copying into MOUNT/restore/ restores to the tenant (emulator).

Each test snapshots the scale-0 emulator, mounts the repository with
-o connection=emu and copies files back with cp; the emulator's ground
truth (/truth) must then hold them byte for byte.  The 100 MB upload runs
only with M365_RESTORE_LONG=1.
"""
import collections
import hashlib
import os
import shutil
import signal
import subprocess
import time

import pytest

import fsutil
from fsutil import Mount
from test_snapshot import Tool, safe

pytestmark = pytest.mark.skipif(not fsutil.have_fuse(),
                                reason="needs /dev/fuse and fusermount3")

LONG = os.environ.get("M365_RESTORE_LONG") == "1"
INLINE_MAX = 64 << 10  # RESTORE_INLINE_MAX: kept in the catalog
DEBUG = ["-o", "debug"] if os.environ.get("M365_RESTORE_DEBUG") else []


def sha(data):
    return hashlib.sha256(data).hexdigest()


def file_sha(p):
    with open(p, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Env:
    """A snapshot of @emu in a fresh repository, and mounts of it."""

    def __init__(self, emu, tmp):
        self.emu, self.tmp = emu, tmp
        self.tool = Tool(emu, tmp)
        self.repo = tmp / "repo"
        self.tool.init(self.repo)
        s = self.tool.snapshot(self.repo)
        assert s["status"] == "complete", s
        self.n = 0

    def mount(self, *opts):
        self.n += 1
        m = Mount(self.repo, self.tmp / ("mnt%d" % self.n),
                  "-o", "connection=emu", *opts, *DEBUG, env=self.tool.env)
        # restore's own log lines about bad targets are expected
        m.allowed = [r"restore: (no |'.*' is |cannot restore|.* failed)",
                     r"will retry", r"interrupted at byte",
                     r"nameAlreadyExists", r"conflict policy '",
                     r"Timeout was reached", r"invalidRange",
                     r"PUT /up/", r"as a draft"]
        return m


def wait_done(mnt, timeout=120, poll=0.2):
    """Wait until restore/.status lists nothing pending or uploading
    (read every @poll seconds); -> {status: [lines]}."""
    t0 = time.monotonic()
    while True:
        text = (mnt / "restore/.status").read_text()
        by = collections.defaultdict(list)
        for line in text.splitlines():
            by[line.split("\t")[0]].append(line)
        if not by["pending"] and not by["uploading"]:
            return by
        assert time.monotonic() - t0 < timeout, text
        time.sleep(poll)


def truth_files(emu, prefix):
    """{path below @prefix: sha256} of the files in the tenant now."""
    out = {}
    for f in emu.truth()["files"]:
        if f["path"].startswith(prefix + "/"):
            out[f["path"][len(prefix) + 1:]] = f["sha256"]
    return out


def tree(root):
    """{relative path: sha256} of the files under @root."""
    out = {}
    for dp, dns, fns in os.walk(root):
        for fn in fns:
            p = os.path.join(dp, fn)
            out[os.path.relpath(p, root)] = file_sha(p)
    return out


def libraries(emu):
    """Library paths (sites/host/.../lib): folders whose parent is none."""
    t = emu.truth()
    fs = set(t["folders"])
    return [d for d in t["folders"] if d.startswith("sites/")
            and d.rsplit("/", 1)[0] not in fs]


def pick_folder(emu, min_files=2):
    """A SharePoint folder (not a library) with files, safe names."""
    t = emu.truth()
    fs = set(t["folders"])
    count = collections.Counter()
    for f in t["files"]:
        parts = f["path"].split("/")
        if parts[0] != "sites" or not all(safe(c) for c in parts):
            continue
        for d in fs:
            if f["path"].startswith(d + "/") and d.rsplit("/", 1)[0] in fs:
                count[d] += 1
    for d, n in sorted(count.items(), key=lambda x: (-x[1], x[0])):
        if n >= min_files:
            return d
    pytest.skip("no suitable folder in the tenant")


@pytest.fixture(scope="module")
def env(emulator, tmp_path_factory):
    return Env(emulator, tmp_path_factory.mktemp("restore"))


def test_cp_r_to_original_place_and_other_site(env):
    emu = env.emu
    folder = pick_folder(emu)
    lib, name = folder.rsplit("/", 1)
    with env.mount() as m:
        src = m.mnt / "snapshots/latest" / folder
        want = tree(src)
        assert want
        # the folder is lost in the tenant ...
        emu.mutate(op="delete", path=folder)
        assert not truth_files(emu, folder)
        # ... and copied back
        t0 = time.monotonic()
        subprocess.run(["cp", "-r", str(src), str(m.mnt / "restore" / lib)],
                       check=True)
        spooled = time.monotonic() - t0
        by = wait_done(m.mnt)
        assert not by["failed"], by["failed"]
        assert truth_files(emu, folder) == want
        for rel in want:
            x = os.getxattr(m.mnt / "restore" / lib / name / rel,
                            "user.m365.restore").decode()
            assert x == "done", (rel, x)
        # into another site's library, under a new folder name
        others = [x for x in libraries(emu) if not x.startswith(
            lib.rsplit("/", 1)[0] + "/")]
        other = others[0] if others else lib
        dest = m.mnt / "restore" / other / "restored-copy"
        subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
        by = wait_done(m.mnt)
        assert not by["failed"], by["failed"]
        assert truth_files(emu, other + "/restored-copy") == want
    print("cp -r of %d files spooled in %.2fs" % (len(want), spooled))


def test_rsync(env):
    """rsync writes '.name.XXXXXX' and renames it: restored once, under
    the real name."""
    emu = env.emu
    lib = libraries(emu)[-1]
    src = env.tmp / "rs"
    (src / "sub").mkdir(parents=True)
    want = {}
    for i in range(5):
        d = os.urandom(3000 + i)
        (src / "sub" / ("r%d.dat" % i)).write_bytes(d)
        want["rs/sub/r%d.dat" % i] = sha(d)
    with env.mount() as m:
        subprocess.run(["rsync", "-r", str(src), str(m.mnt / "restore" /
                                                     lib) + "/"],
                       check=True, capture_output=True)
        by = wait_done(m.mnt)
        assert not by["failed"], by["failed"]
    got = {k: v for k, v in truth_files(emu, lib).items()
           if k.startswith("rs/")}
    assert got == want


def test_conflict_policies(env):
    emu = env.emu
    folder = pick_folder(emu)
    truth = truth_files(emu, folder)
    rel = sorted(r for r in truth if "/" not in r)[0]
    base, ext = os.path.splitext(rel)
    new = b"restored content\n" * 100
    with env.mount() as m:
        d = m.mnt / "restore" / folder
        # below a library, folders appear once made (or found) by mkdir,
        # or when the queue has restored something there
        os.makedirs(d, exist_ok=True)
        assert os.getxattr(d, "user.m365.conflict") == b"rename"
        # rename (default): the existing file stays, the copy is renamed
        (d / rel).write_bytes(new)
        wait_done(m.mnt)
        now = truth_files(emu, folder)
        assert now[rel] == truth[rel]
        # Graph picks the new name: OneDrive says "a 1.txt" (the
        # emulator too), SharePoint "a (1).txt"
        renamed = [n for n in ("%s 1%s" % (base, ext),
                               "%s (1)%s" % (base, ext)) if n in now]
        assert len(renamed) == 1 and now[renamed[0]] == sha(new), now
        # skip (per directory xattr): nothing changes, status says why
        os.setxattr(d, "user.m365.conflict", b"skip")
        (d / rel).write_bytes(new + b"2")
        wait_done(m.mnt)
        assert truth_files(emu, folder)[rel] == truth[rel]
        st = os.getxattr(d / rel, "user.m365.restore").decode()
        assert st.startswith("done: skipped"), st
        # replace
        os.setxattr(d, "user.m365.conflict", b"replace")
        (d / rel).write_bytes(new + b"3")
        wait_done(m.mnt)
        assert truth_files(emu, folder)[rel] == sha(new + b"3")
        with pytest.raises(OSError):
            os.setxattr(d, "user.m365.conflict", b"overwrite")
    # the mount option sets the default
    with env.mount("-o", "conflict=replace") as m:
        d = m.mnt / "restore" / folder
        os.makedirs(d, exist_ok=True)
        assert os.getxattr(d, "user.m365.conflict") == b"replace"
        (d / rel).write_bytes(new + b"4")
        wait_done(m.mnt)
        assert truth_files(emu, folder)[rel] == sha(new + b"4")
        assert len(truth_files(emu, folder)) == len(truth) + 1


def test_bad_targets(env):
    emu = env.emu
    lib = libraries(emu)[0]
    host = lib.split("/")[1]
    with env.mount() as m:
        r = m.mnt / "restore"
        assert sorted(os.listdir(r)) == [".status", "mailboxes", "onedrive",
                                        "sites"]
        assert "restore" in os.listdir(m.mnt)
        for bad in ["sites/nohost.example.com",
                    "sites/%s/sites/no-such-site" % host,
                    "onedrive/nobody@contoso.onmicrosoft.com",
                    "mailboxes/nobody@contoso.onmicrosoft.com",
                    "elsewhere"]:
            with pytest.raises(FileNotFoundError):
                os.makedirs(r / bad)
        # a file where only tenant objects can be
        with pytest.raises(PermissionError):
            (r / "sites" / host / "x.txt").write_bytes(b"x")
        with pytest.raises(PermissionError):
            (r / "sites" / "x.txt").write_bytes(b"x")
        by = wait_done(m.mnt)
        assert not by["failed"] and not by["done"] or True
    folders = emu.truth()["folders"]
    assert not [f for f in folders if "no-such-site" in f]


def test_large_file_with_dropped_connections(env):
    emu = env.emu
    lib = libraries(emu)[0]
    size = (100 if LONG else 24) << 20
    data = os.urandom(1 << 20) * (size >> 20)
    src = env.tmp / "big.bin"
    src.write_bytes(data)
    with env.mount() as m:
        emu.reset_stats()
        # the answer to one fragment are cut off: the client must
        # find out what arrived and go on from there
        emu.fault(path_regex=r"^/up/", drop_after_bytes=5, count=1)
        t0 = time.monotonic()
        shutil.copy(src, m.mnt / "restore" / lib / "big.bin")
        spooled = time.monotonic() - t0
        by = wait_done(m.mnt, timeout=300)
        took = time.monotonic() - t0
        assert not by["failed"], by["failed"]
    assert truth_files(emu, lib)["big.bin"] == sha(data)
    log = emu.stats()["log"]
    puts = [r for r in log if r.get("method") == "PUT"
            and r.get("path", "").startswith("/up/")]
    assert len(puts) >= (size // (10 << 20)) + 1
    assert sum(1 for r in puts if r.get("dropped")) == 1
    assert not any(r.get("had_authorization") for r in puts)
    print("%d MiB: spooled in %.2fs, restored in %.2fs" % (
        size >> 20, spooled, took))


def spool_then_kill(env, sub, n=60, size=2000):
    """Write @n files of about @size bytes into restore/<library>/<sub>/
    with slow uploads, kill -9 the daemon; -> (library, {relative path:
    sha256}, number of restores still open at the kill)."""
    emu = env.emu
    lib = libraries(emu)[0]
    files = {"%s/f%03d.txt" % (sub, i): os.urandom(size + i)
             for i in range(n)}
    m = env.mount("-o", "restore_threads=2")
    m.start()
    try:
        emu.fault(path_regex=r"f0\d\d\.txt", latency_ms=2000, count=1000)
        (m.mnt / "restore" / lib / sub).mkdir()
        for rel, data in files.items():
            (m.mnt / "restore" / lib / rel).write_bytes(data)
        time.sleep(1.0)
        status = (m.mnt / "restore/.status").read_text()
    finally:
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait()
        subprocess.run(["fusermount3", "-u", str(m.mnt)], check=False)
        m.logf.close()
        m.proc = None
    emu.control("POST", "/faults", {"clear": True})
    open_before = sum(1 for ln in status.splitlines()
                      if "/%s/" % sub in ln and not ln.startswith("done"))
    # the emulator applies a request before its (delayed) answer: files
    # may exist in the tenant whose restore the daemon never saw finish
    assert open_before, "the kill came too late to matter:\n" + status
    want = {rel[len(sub) + 1:]: sha(d) for rel, d in files.items()}
    return lib, want, open_before


def test_kill9_resumes_exactly_once(env):
    lib, want, open_before = spool_then_kill(env, "k9")
    done_before = len(truth_files(env.emu, lib + "/k9"))
    with env.mount() as m2:
        by = wait_done(m2.mnt, timeout=180)
        assert not by["failed"], by["failed"]
    assert truth_files(env.emu, lib + "/k9") == want
    print("at the kill: %d of %d restores open, %d files in the tenant" % (
        open_before, len(want), done_before))


def test_kill9_then_resume_command(env):
    lib, want, _ = spool_then_kill(env, "k9cmd", n=20)
    p = env.tool.run("restore-queue", "--repo", env.repo, check=1)
    assert "pending\t" in p.stdout or "uploading\t" in p.stdout
    p = env.tool.run("restore-queue", "--resume", "--repo", env.repo,
                     "--connection", "emu", "--timeout", "120", check=0)
    assert "pending" not in p.stdout and "uploading" not in p.stdout
    assert truth_files(env.emu, lib + "/k9cmd") == want
    env.tool.run("restore-queue", "--resume", "--repo", env.repo, check=2)


def test_eml_into_mail_folder(env):
    emu = env.emu
    t = emu.truth()
    msgs = [x for x in t["messages"] if not x["isDraft"]]
    if not msgs:
        pytest.skip("no received message in the tenant")
    mbox = collections.Counter(x["mailbox"] for x in msgs).most_common()[0][0]
    msgs = [x for x in msgs if x["mailbox"] == mbox]
    by_sha = {x["sha256"]: x for x in msgs}
    with env.mount() as m:
        snapdir = m.mnt / "snapshots/latest/mailboxes" / mbox
        srcs = [p for p in snapdir.rglob("*.eml") if file_sha(p) in by_sha]
        assert len(srcs) == len(msgs)
        dest = m.mnt / "restore/mailboxes" / mbox / "Restored"
        dest.mkdir()
        for p in srcs:
            shutil.copy(p, dest / p.name)
        by = wait_done(m.mnt)
        assert not by["failed"], by["failed"]
        assert not [ln for ln in by["done"] if "as a draft" in ln], by["done"]
    got = [x for x in emu.truth()["messages"] if x["mailbox"] == mbox
           and x["folder_path"] == "Restored"]
    assert len(got) == len(msgs)
    # created from JSON (0x0E07 without the unsent bit): received, read
    # messages with the original times and ids; their MIME is Exchange's
    key = lambda x: x["internetMessageId"]
    for g, w in zip(sorted(got, key=key), sorted(msgs, key=key)):
        assert g["isDraft"] is False and g["isRead"] is True, g
        for k in ("subject", "receivedDateTime", "sentDateTime",
                  "internetMessageId", "hasAttachments"):
            assert g[k] == w[k], (k, g, w)
    print("restored %d messages, %d with attachments" % (
        len(got), sum(1 for g in got if g["hasAttachments"])))


def test_kill9_mail_exactly_once(env):
    emu = env.emu
    msgs = [x for x in emu.truth()["messages"] if not x["isDraft"]]
    mbox = collections.Counter(x["mailbox"] for x in msgs).most_common()[0][0]
    want = sorted(x["internetMessageId"] for x in msgs
                  if x["mailbox"] == mbox and x["folder_path"] != "Restored")
    m = env.mount("-o", "restore_threads=2")
    m.start()
    try:
        snapdir = m.mnt / "snapshots/latest/mailboxes" / mbox
        srcs = sorted(snapdir.rglob("*.eml"))
        emu.fault(path_regex=r"/mailFolders/[^/]+/messages$",
                  method="POST", latency_ms=2000, count=1000)
        dest = m.mnt / "restore/mailboxes" / mbox / "K9mail"
        dest.mkdir()
        for p in srcs:
            shutil.copy(p, dest / p.name)
        time.sleep(1.0)
    finally:
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait()
        subprocess.run(["fusermount3", "-u", str(m.mnt)], check=False)
        m.logf.close()
        m.proc = None
    emu.control("POST", "/faults", {"clear": True})
    with env.mount() as m2:
        by = wait_done(m2.mnt, timeout=180)
        assert not by["failed"], by["failed"]
    got = sorted(x["internetMessageId"] for x in emu.truth()["messages"]
                 if x["mailbox"] == mbox and x["folder_path"] == "K9mail")
    assert len(srcs) == len(got)
    assert len(set(got)) == len(got), "a message was imported twice"


def test_bad_connection_fails_at_mount(env):
    """-o connection= is checked before the daemon forks: a mount with a
    connection that does not exist, or whose secret is wrong, fails with
    the remedy on stderr (not just a log line of a running daemon)."""
    mnt = env.tmp / "mnt-badconn"
    mnt.mkdir()
    p = subprocess.run([str(fsutil.M365FS), "-o", "connection=nosuch",
                        str(env.repo), str(mnt)], env=env.tool.env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "connection=nosuch" in p.stderr and "m365-connect" in p.stderr, \
        p.stderr
    assert not os.path.ismount(mnt)
    # a connection whose secret the tenant refuses
    conf = env.tool.confdir / "emu.conf"
    bad = env.tool.confdir / "wrongsecret.conf"
    sec = env.tmp / "wrong.secret"
    sec.write_text("not-the-secret\n")
    os.chmod(sec, 0o600)
    bad.write_text("".join(
        "secret_file = %s\n" % sec if ln.startswith("secret_file") else
        ln + "\n" for ln in conf.read_text().splitlines()))
    os.chmod(bad, 0o600)
    p = subprocess.run([str(fsutil.M365FS), "-o", "connection=wrongsecret",
                        str(env.repo), str(mnt)], env=env.tool.env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "cannot sign in with connection 'wrongsecret'" in p.stderr, \
        p.stderr
    assert not os.path.ismount(mnt)


def test_retry_failed(env):
    """The target folder is deleted in the tenant while the restore waits:
    the restore fails and says why; 'm365-snapshot restore-queue
    --retry-failed' queues it again and the mounted daemon's idle
    uploaders pick it up by themselves, creating the folder again."""
    emu = env.emu
    lib = libraries(emu)[0]
    drive = [d["id"] for d in emu.truth()["drives"] if d["path"] == lib][0]
    data = os.urandom(4000)
    with env.mount() as m:
        m.allowed += [r"restore: '.*retryme.bin' failed", r"itemNotFound"]
        d = m.mnt / "restore" / lib / "gone-folder"
        d.mkdir()
        assert any(f == lib + "/gone-folder" for f in emu.truth()["folders"])
        emu.mutate(op="delete", drive=drive, path="gone-folder")
        p = d / "retryme.bin"
        p.write_bytes(data)
        by = wait_done(m.mnt)
        assert [ln for ln in by["failed"] if "retryme.bin" in ln
                and "not in the tenant any more" in ln], by
        st = os.getxattr(p, "user.m365.restore").decode()
        assert st.startswith("failed: the folder"), st
        r = env.tool.run("restore-queue", "--repo", env.repo,
                         "--retry-failed", check=1)
        assert "1 failed restore(s) queued again" in r.stderr, r.stderr
        # the daemon's idle uploaders find it within ten seconds
        t0 = time.monotonic()
        while os.getxattr(p, "user.m365.restore") != b"done":
            assert time.monotonic() - t0 < 120, os.getxattr(
                p, "user.m365.restore")
            time.sleep(0.2)
    assert truth_files(emu, lib + "/gone-folder") == {"retryme.bin":
                                                       sha(data)}
    r = env.tool.run("restore-queue", "--repo", env.repo, "--retry-failed")
    assert "0 failed restore(s) queued again" in r.stderr, r.stderr


def test_listing_after_remount(env):
    """restore/ after a remount: the tenant's hosts, libraries, users and
    mail folders are listed, and what the queue holds (restored earlier,
    or failed) is shown with its status."""
    emu = env.emu
    lib = libraries(emu)[0]
    host, libname = lib.split("/")[1], lib.rsplit("/", 1)[1]
    drive = [d["id"] for d in emu.truth()["drives"] if d["path"] == lib][0]
    files = {"f%d.txt" % i: os.urandom(1000 + i) for i in range(3)}
    with env.mount() as m:
        m.allowed += [r"restore: '.*lost.txt' failed", r"itemNotFound"]
        d = m.mnt / "restore" / lib / "persist" / "sub"
        os.makedirs(d)
        for n, data in files.items():
            (d / n).write_bytes(data)
        (m.mnt / "restore" / lib / "vanishing").mkdir()
        emu.mutate(op="delete", drive=drive, path="vanishing")
        (m.mnt / "restore" / lib / "vanishing" / "lost.txt").write_bytes(
            b"x" * 10)
        wait_done(m.mnt)
    msgs = [x for x in emu.truth()["messages"]]
    with env.mount() as m:
        r = m.mnt / "restore"
        assert host in os.listdir(r / "sites")
        assert libname in os.listdir(r / "sites" / host)
        assert "persist" in os.listdir(r / lib)
        assert os.listdir(r / lib / "persist") == ["sub"]
        assert sorted(os.listdir(r / lib / "persist" / "sub")) == \
            sorted(files)
        for n, data in files.items():
            p = r / lib / "persist" / "sub" / n
            assert os.getxattr(p, "user.m365.restore") == b"done"
            assert os.stat(p).st_size == len(data)
        st = os.getxattr(r / lib / "vanishing" / "lost.txt",
                         "user.m365.restore").decode()
        assert st.startswith("failed: the folder"), st
        users = {u["userPrincipalName"] for u in emu.truth()["users"]}
        assert set(os.listdir(r / "onedrive")) <= users
        assert set(os.listdir(r / "mailboxes")) & users
        if msgs:
            mbox = msgs[0]["mailbox"]
            folders = os.listdir(r / "mailboxes" / mbox)
            assert msgs[0]["folder_path"].split("/")[0] in folders, folders
        # leave no failure behind for the next tests of the module
        env.tool.run("restore-queue", "--repo", env.repo, "--retry-failed",
                     check=1)
        t0 = time.monotonic()
        while os.getxattr(r / lib / "vanishing" / "lost.txt",
                          "user.m365.restore") != b"done":
            assert time.monotonic() - t0 < 120
            time.sleep(0.2)


def test_eml_with_large_attachment(env):
    """An .eml whose attachments do not fit in one request (> 2 MiB) is
    still created as a received, non-draft message: the small attachment
    inline, the large one through an attachment upload session."""
    import base64
    import urllib.parse
    from email.message import EmailMessage
    emu = env.emu
    mbox = next(u["userPrincipalName"] for u in emu.truth()["users"]
                if u["has_mailbox"])
    big, small = os.urandom((3 << 20) + 12345), os.urandom(5000)
    msg = EmailMessage()
    msg["From"] = "Big Sender <big@example.com>"
    msg["To"] = mbox
    msg["Subject"] = "large attachment restore"
    msg["Date"] = "Tue, 16 Sep 2025 09:59:00 +0200"
    msg["Message-ID"] = "<bigatt-%s@example.com>" % os.urandom(4).hex()
    msg.set_content("see the attachments\n")
    msg.add_attachment(small, maintype="application", subtype="octet-stream",
                       filename="small.bin")
    msg.add_attachment(big, maintype="application", subtype="octet-stream",
                       filename="big.bin")
    eml = env.tmp / "bigatt.eml"
    eml.write_bytes(msg.as_bytes())
    with env.mount() as m:
        dest = m.mnt / "restore/mailboxes" / mbox / "BigAtt"
        dest.mkdir()
        shutil.copy(eml, dest / "bigatt.eml")
        wait_done(m.mnt, timeout=300)
        st = os.getxattr(dest / "bigatt.eml", "user.m365.restore")
        assert st == b"done", st
    got = [x for x in emu.truth()["messages"] if x["mailbox"] == mbox
           and x["folder_path"] == "BigAtt"]
    assert len(got) == 1, got
    g = got[0]
    assert g["isDraft"] is False and g["hasAttachments"] is True, g
    assert g["internetMessageId"] == msg["Message-ID"], g
    q = urllib.parse.quote
    user = next(u["id"] for u in emu.truth()["users"]
                if u["userPrincipalName"] == mbox)
    folders = emu.get_json("/users/%s/mailFolders?$top=100" % q(user))
    fid = next(f["id"] for f in folders["value"]
               if f["displayName"] == "BigAtt")
    msgs = emu.get_json("/users/%s/mailFolders/%s/messages" % (
        q(user), q(fid, safe="")))["value"]
    assert len(msgs) == 1
    atts = emu.get_json("/users/%s/messages/%s/attachments" % (
        q(user), q(msgs[0]["id"], safe="")))["value"]
    by_name = {a["name"]: base64.b64decode(a["contentBytes"]) for a in atts}
    assert sha(by_name.get("small.bin", b"")) == sha(small)
    assert sha(by_name.get("big.bin", b"")) == sha(big)
    log = emu.stats()["log"]
    assert any("AttachmentSessions" in r.get("path", "") for r in log), \
        "the large attachment did not go through an upload session"


def test_eml_read_state_with_xattrs(env):
    """cp --preserve=xattr (cp -a, rsync -X) from snapshots/ carries
    user.m365.isRead: an unread message is restored unread, a read one
    read; the other user.m365.* attributes are accepted and ignored."""
    emu = env.emu
    msgs = [x for x in emu.truth()["messages"] if not x["isDraft"]
            and x["folder_path"] not in ("Restored", "K9mail", "BigAtt")]
    unread = [x for x in msgs if not x["isRead"]]
    read = [x for x in msgs if x["isRead"]]
    if not unread or not read:
        pytest.skip("needs a read and an unread message")
    with env.mount() as m:
        snap = m.mnt / "snapshots/latest/mailboxes"
        want = {}
        for x in (unread[0], read[0]):
            src = [p for p in (snap / x["mailbox"]).rglob("*.eml")
                   if file_sha(p) == x["sha256"]]
            assert len(src) == 1, x
            assert os.getxattr(src[0], "user.m365.isRead") == (
                b"true" if x["isRead"] else b"false")
            dest = m.mnt / "restore/mailboxes" / x["mailbox"] / "ReadState"
            dest.mkdir(exist_ok=True)
            subprocess.run(["cp", "--preserve=xattr", str(src[0]),
                            str(dest)], check=True)
            want[x["internetMessageId"]] = x["isRead"]
        wait_done(m.mnt)
    got = {x["internetMessageId"]: x for x in emu.truth()["messages"]
           if x["folder_path"] == "ReadState"}
    assert set(got) == set(want)
    for mid, is_read in want.items():
        assert got[mid]["isRead"] is is_read, got[mid]
        assert got[mid]["isDraft"] is False, got[mid]


def test_small_files_kept_in_catalog(env):
    """A small file is recorded with its bytes in the catalog (one durable
    commit, no spool file left); a larger one keeps a spool file.  Both
    arrive intact, and nothing is left behind once they are done."""
    import sqlite3
    emu = env.emu
    lib = libraries(emu)[0]
    files = {"small.bin": os.urandom(3000),
             "edge.bin": os.urandom(INLINE_MAX),
             "large.bin": os.urandom(INLINE_MAX + 1)}

    def catalog():
        db = sqlite3.connect("file:%s?mode=ro" % (env.repo / "catalog.db"),
                             uri=True)
        try:
            return db.execute(
                "SELECT r.target, r.spool, r.status, length(d.data) FROM "
                "restore r LEFT JOIN restore_data d ON d.id = r.id WHERE "
                "r.target LIKE '%/inl/%'").fetchall()
        finally:
            db.close()

    with env.mount() as m:
        emu.fault(path_regex=r"(small|edge|large)\.bin",
                  latency_ms=1500, count=100)
        try:
            (m.mnt / "restore" / lib / "inl").mkdir()
            for name, data in files.items():
                (m.mnt / "restore" / lib / "inl" / name).write_bytes(data)
            rows = {r[0].rsplit("/", 1)[1]: r for r in catalog()}
            assert set(rows) == set(files)
            for name, (_, sp, status, kept) in rows.items():
                assert status != 2, rows[name]  # the answers are slow
                if name == "large.bin":
                    assert kept is None and os.path.getsize(sp) == len(
                        files[name]), rows[name]
                else:
                    assert kept == len(files[name]), rows[name]
                    assert not os.path.exists(sp), rows[name]
            by = wait_done(m.mnt)
        finally:
            emu.control("POST", "/faults", {"clear": True})
        bad = [ln for ln in by["failed"] if "/inl/" in ln]
        assert not bad, bad
    assert truth_files(emu, lib + "/inl") == {
        n: sha(d) for n, d in files.items()}
    rows = catalog()
    assert all(r[2] == 2 and r[3] is None for r in rows), rows
    left = [r[1] for r in rows if os.path.exists(r[1])]
    assert not left, left


def test_short_spool_after_crash_is_not_uploaded(env):
    """The spool file of a queued restore that is shorter than recorded
    (the daemon died while close() was making it durable) fails with a
    reason instead of restoring a truncated file.  Runs last: it leaves a
    failed entry in the module's queue.  The files are larger than what
    the catalog keeps itself: they have spool files."""
    import sqlite3
    lib, want, _ = spool_then_kill(env, "k9short", n=10,
                                   size=INLINE_MAX + 1000)
    db = sqlite3.connect("file:%s?mode=ro" % (env.repo / "catalog.db"),
                         uri=True)
    rows = db.execute("SELECT target, spool, size FROM restore WHERE "
                      "target LIKE ? AND status IN (0, 1) ORDER BY id",
                      ("%/k9short/%",)).fetchall()
    db.close()
    assert rows
    target, spool, size = rows[-1]
    os.truncate(spool, size // 2)
    with env.mount() as m:
        m.allowed += [r"restore: '.*k9short.*' failed"]
        by = wait_done(m.mnt, timeout=180)
        bad = [ln for ln in by["failed"] if "k9short" in ln]
        assert len(bad) == 1 and target in bad[0] and \
            "incomplete" in bad[0], by["failed"]
    got = truth_files(env.emu, lib + "/k9short")
    name = target.rsplit("/", 1)[1]
    for n, h in want.items():
        if n != name:
            assert got.get(n) == h, n
    assert got.get(name) in (None, want[name])
