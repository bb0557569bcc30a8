"""m365-snapshot against the emulator: full and incremental snapshots equal
the ground truth, faults are survived, kills leave no damage, retention.

The whole file runs in a few minutes at scale 0.  Longer runs (more kill
points, scale 1) are behind M365_SNAPSHOT_LONG=1.
"""
import json
import os
import pathlib
import random
import signal
import subprocess
import time

import pytest

from conftest import binary

LONG = os.environ.get("M365_SNAPSHOT_LONG") == "1"
EXIT_PARTIAL = 3
EXIT_LOCKED = 4


# ---------------------------------------------------------------- helpers

class Tool:
    """m365-snapshot with a connection to one emulator."""

    def __init__(self, emu, tmp, name="emu"):
        self.emu = emu
        self.bin = binary("m365-snapshot")
        self.confdir = tmp / "conf"
        self.confdir.mkdir(mode=0o700, exist_ok=True)
        self.name = name
        backup = emu.apps["backup"]
        conf = self.confdir / (name + ".conf")
        conf.write_text(
            "tenant = %s\nclient_id = %s\ncredential = secret\n"
            "secret_file = %s\ncloud = custom\nlogin_url = %s\n"
            "graph_url = %s\nca_file = %s\n" % (
                emu.tenant_id, backup["client_id"], backup["secret_file"],
                emu.login_url, emu.graph_url, emu.ca_file))
        os.chmod(conf, 0o600)
        self.env = dict(os.environ, M365FS_CONFIG_DIR=str(self.confdir))
        self.env.pop("CREDENTIALS_DIRECTORY", None)

    def run(self, *args, check=None, timeout=300):
        p = subprocess.run([self.bin] + [str(a) for a in args],
                           env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if ("AddressSanitizer" in p.stderr or "LeakSanitizer" in p.stderr
                or "runtime error:" in p.stderr):
            pytest.fail("sanitizer report:\n" + p.stderr)
        if check is not None:
            assert p.returncode == check, "%s -> %d\n%s\n%s" % (
                args, p.returncode, p.stdout[-3000:], p.stderr[-3000:])
        return p

    def init(self, repo, *extra):
        return self.run("init", repo, *extra, check=0)

    def snapshot(self, repo, *extra, check=0):
        p = self.run("create", "--repo", repo, "--connection", self.name,
                     "--json", *extra, check=check)
        return json.loads(p.stdout) if p.stdout.strip() else None

    def dump(self, repo, snap="latest", read_data=False, *extra):
        args = ["dump", snap, "--repo", repo] + list(extra)
        if read_data:
            args.append("--read-data")
        p = self.run(*args, check=0)
        return [json.loads(line) for line in p.stdout.splitlines()]

    def snapshots(self, repo, *extra):
        return json.loads(self.run("list", "--repo", repo, "--json",
                                   *extra, check=0).stdout)


def safe(component):
    """True when names_map() leaves @component unchanged."""
    b = component.encode()
    return (0 < len(b) <= 255 and component not in (".", "..") and
            "/" not in component and
            all(ord(c) >= 0x20 and ord(c) != 0x7f for c in component))


def compare(truth, items, read_data=False):
    """Assert that the dumped snapshot @items equals ground truth @truth."""
    by_id = {}
    paths = {}
    for it in items:
        gid = it["meta"].get("id")
        if gid and not it["dir"]:
            by_id.setdefault(gid, []).append(it)
        paths[it["path"]] = it
        for c in it["path"].split("/"):
            assert c and c not in (".", "..") and len(c.encode()) <= 255

    for f in truth["files"]:
        got = by_id.get(f["id"])
        assert got, "file %s (%s) missing" % (f["path"], f["id"])
        assert len(got) == 1, "file %s twice" % f["path"]
        g = got[0]
        assert g["sha256"] == f["sha256"], f["path"]
        assert g["size"] == f["size"], f["path"]
        if read_data:
            assert g["read_sha256"] == f["sha256"], f["path"]
        if all(safe(c) for c in f["path"].split("/")):
            assert g["path"] == f["path"]
        assert g["meta"].get("quickXorHash") in (None,
                                                  f.get("quickXorHash"))
    nfiles = sum(1 for it in items if it["kind"] == 8)
    assert nfiles == len(truth["files"]), "extra files in the snapshot"

    for d in truth["folders"]:
        if all(safe(c) for c in d.split("/")):
            assert d in paths and paths[d]["dir"], "folder %s missing" % d

    msgs = truth.get("messages", [])
    for m in msgs:
        got = by_id.get(m.get("immutable_id") or m["id"])
        assert got, "message %s/%s missing" % (m["mailbox"],
                                               m["folder_path"])
        assert len(got) == 1
        g = got[0]
        assert g["sha256"] == m["sha256"]
        if read_data:
            assert g["read_sha256"] == m["sha256"]
        assert g["path"].endswith(".eml")
        want = "mailboxes/%s/%s/" % (m["mailbox"], m["folder_path"])
        if all(safe(c) for c in want.rstrip("/").split("/")):
            assert g["path"].startswith(want), (g["path"], want)
        assert g["meta"].get("isRead") == ("true" if m["isRead"]
                                           else "false")
    nmsgs = sum(1 for it in items if it["kind"] == 10)
    assert nmsgs == len(msgs), "extra messages in the snapshot"
    folders = {f["id"]: f for f in truth.get("mail_folders", [])}

    def chain(f):
        """Display names from the mailbox root down to @f; None inside a
        search folder."""
        names = []
        while f and f["path"]:
            if f["isSearchFolder"]:
                return None
            names.append(f["displayName"])
            f = folders.get(f["parentFolderId"])
        return names[::-1]

    for f in truth.get("mail_folders", []):
        if not f["path"]:
            continue  # the root of the mailbox
        names = chain(f)
        if names is None:
            continue
        p = "mailboxes/" + f["mailbox"] + "/" + "/".join(names)
        if all(safe(c) for c in names):
            assert p in paths and paths[p]["dir"], "mail folder %s" % p
    nfolders = sum(1 for f in truth.get("mail_folders", [])
                   if f["path"] and chain(f) is not None)
    assert nfolders == sum(1 for it in items if it["kind"] == 9)


def route_count(stats):
    return stats.get("total", 0)


@pytest.fixture
def tool(emulator, tmp_path):
    return Tool(emulator, tmp_path)


# ---------------------------------------------------------------- tests

def test_full_snapshot_equals_truth(emulator, tool, tmp_path):
    repo = tmp_path / "repo"
    tool.init(repo)
    s = tool.snapshot(repo)
    assert s["status"] == "complete"
    assert s["errors"] == 0
    truth = emulator.truth()
    compare(truth, tool.dump(repo, read_data=True), read_data=True)
    assert s["files"] == len(truth["files"])
    tool.run("check", "--repo", repo, "--read-data", check=0)
    shown = tool.run("show", "latest", "--repo", repo, check=0).stdout
    assert "complete" in shown
    # every file metadata the FUSE daemon shows as xattrs is there
    f = next(it for it in tool.dump(repo) if it["kind"] == 8)
    for k in ("id", "driveId", "webUrl", "eTag", "cTag", "author",
              "modifiedBy", "createdDateTime", "lastModifiedDateTime",
              "name"):
        assert k in f["meta"], k
    m = [it for it in tool.dump(repo) if it["kind"] == 10]
    if m:
        for k in ("id", "receivedDateTime", "sentDateTime", "from", "to",
                  "subject", "isRead", "flag", "internetMessageId",
                  "hasAttachments"):
            assert k in m[0]["meta"], k


def test_encrypted_repository_and_key(emulator, tool, tmp_path):
    repo = tmp_path / "repo"
    key = tmp_path / "key"
    p = tool.init(repo, "--encrypt", "--key-file", key)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    assert len(key.read_text().strip()) == 44
    assert key.read_text().strip() not in p.stdout + p.stderr
    # no key: a clear error
    p = tool.run("list", "--repo", repo, check=1)
    assert "encrypted" in p.stderr
    s = tool.snapshot(repo, "--key-file", key, "--service", "onedrive")
    assert s["status"] == "complete"
    # the key as a systemd credential
    cred = tmp_path / "cred"
    cred.mkdir()
    (cred / "m365fs-key").write_text(key.read_text())
    os.chmod(cred / "m365fs-key", 0o600)
    tool.env["CREDENTIALS_DIRECTORY"] = str(cred)
    assert len(tool.snapshots(repo)) == 1
    del tool.env["CREDENTIALS_DIRECTORY"]
    # init prints the key once when no file is given
    p = tool.init(tmp_path / "repo2", "--encrypt")
    assert len(p.stdout.strip()) == 44
    assert "0600" in p.stderr or "chmod 600" in p.stderr


def test_edge_tenant(emulator_factory, tmp_path):
    emu = emulator_factory(tenant="edge")
    try:
        tool = Tool(emu, tmp_path)
        repo = tmp_path / "repo"
        tool.init(repo)
        s = tool.snapshot(repo)
        assert s["status"] == "complete", s
        compare(emu.truth(), tool.dump(repo, read_data=True),
                read_data=True)
        tool.run("check", "--repo", repo, check=0)
    finally:
        emu.stop()


def test_users_without_mailbox_or_onedrive(emulator_factory, tmp_path):
    """A user without a mailbox (MailboxNotEnabledForRESTAPI) or without a
    OneDrive is noted at info level and counted, never an error."""
    emu = emulator_factory(tenant="edge")
    try:
        tool = Tool(emu, tmp_path)
        tool.env["M365_DEBUG"] = "1"
        repo = tmp_path / "repo"
        tool.init(repo)
        p = tool.run("create", "--repo", repo, "--connection", tool.name,
                     "--json", "--service", "onedrive", "--service", "mail",
                     check=0)
        s = json.loads(p.stdout)
        users = emu.truth()["users"]
        no_mbx = [u["userPrincipalName"] for u in users
                  if not u["has_mailbox"]]
        no_od = [u["userPrincipalName"] for u in users
                 if not u["has_onedrive"]]
        assert no_mbx and no_od, users
        assert s["status"] == "complete" and s["errors"] == 0, s
        assert s["container_errors"] == 0, s
        assert s["no_mailbox"] == len(no_mbx), (s, no_mbx)
        assert s["no_onedrive"] == len(no_od), (s, no_od)
        assert s["mailboxes"] == len(users) - len(no_mbx), s
        lines = p.stderr.splitlines()
        assert not [ln for ln in lines if ": error: " in ln], p.stderr
        for upns, what in ((no_mbx, "no mailbox"), (no_od, "no OneDrive")):
            for upn in upns:
                said = [ln for ln in lines if "'%s'" % upn in ln]
                assert any(": info: " in ln and what in ln
                           for ln in said), p.stderr[-3000:]
                assert not any(": error: " in ln or ": warning: " in ln
                               for ln in said), said
        shown = tool.run("show", "latest", "--repo", repo, check=0).stdout
        for upn in no_mbx + no_od:
            assert upn not in shown, shown
    finally:
        emu.stop()


def test_deleted_site_drive_and_mailbox_end(emulator_factory, tmp_path):
    """A site, a drive and a mailbox deleted between two snapshots leave
    the new snapshot and stay in the old one."""
    emu = emulator_factory(scale=0, seed=3)
    try:
        tool = Tool(emu, tmp_path)
        repo = tmp_path / "repo"
        tool.init(repo)
        s1 = tool.snapshot(repo)
        assert s1["status"] == "complete", s1
        before = tool.dump(repo, str(s1["snapshot"]))
        truth = emu.truth()
        site = first(truth["sites"], lambda x: not x["personal"] and
                     x["webUrl"].count("/") > 2)
        od = first(truth["drives"], lambda d: d["driveType"] == "business")
        mbx = first(truth["users"], lambda u: u["has_mailbox"] and
                    u["userPrincipalName"] != od["user"])
        emu.mutate(op="delete_site", site=site["id"])
        emu.mutate(op="delete_drive", drive=od["id"])
        emu.mutate(op="delete_mailbox", user=mbx["id"])
        gone = [site["webUrl"].replace("https://", "sites/"), od["path"],
                "mailboxes/" + mbx["userPrincipalName"]]
        for g in gone:
            assert any(it["path"].startswith(g + "/") for it in before), g

        s2 = tool.snapshot(repo)
        assert s2["status"] == "complete" and s2["errors"] == 0, s2
        assert s2["deleted"] > 0 and s2["no_mailbox"] == 1, s2
        after = tool.dump(repo)
        for g in gone:
            left = [it["path"] for it in after
                    if it["path"] == g or it["path"].startswith(g + "/")]
            assert not left, left[:5]
        # what was not deleted is still there
        compare(emu.truth(), after)
        assert any(it["path"].startswith("mailboxes/") for it in after)
        # the earlier snapshot is unchanged
        assert tool.dump(repo, str(s1["snapshot"])) == before
    finally:
        emu.stop()


def first(lst, pred):
    return next(x for x in lst if pred(x))


def test_incremental_after_mutations(emulator_factory, tmp_path):
    emu = emulator_factory(scale=0, seed=7)
    try:
        tool = Tool(emu, tmp_path)
        repo = tmp_path / "repo"
        tool.init(repo)
        emu.reset_stats()
        s1 = tool.snapshot(repo)
        full_requests = route_count(emu.stats())
        truth1 = emu.truth()
        dump1 = tool.dump(repo, "1")

        files = truth1["files"]
        a, b, c, d = files[0], files[1], files[2], files[3]
        folder = first(truth1["folders"],
                       lambda p: p.count("/") >= 4 and
                       p.startswith("sites/"))
        emu.mutate(op="create_file",
                   path=a["path"].rsplit("/", 1)[0] + "/new file.txt",
                   content="hello, world\n")
        emu.mutate(op="modify_file", id=b["id"], content="changed\n" * 100)
        emu.mutate(op="rename", id=c["id"], new_name="renamed.bin")
        emu.mutate(op="delete", id=d["id"])
        emu.mutate(op="create_folder",
                   path=folder + "/Brand new")
        # moves of a file and of a folder, deletion of a folder with
        # everything in it
        drv = {dr["id"]: dr["path"] for dr in truth1["drives"]}
        touched = {f["path"] for f in (a, b, c, d)}

        def under(p, q):
            return p == q or p.startswith(q + "/")

        def in_drive(p, f):
            return p.startswith(drv[f["drive"]] + "/")

        e = first(files[4:], lambda f: f["path"] not in touched and any(
            in_drive(p, f) and p != f["path"].rsplit("/", 1)[0]
            for p in truth1["folders"]))
        dest = first(truth1["folders"], lambda p: in_drive(p, e) and
                     p != e["path"].rsplit("/", 1)[0])
        emu.mutate(op="move", id=e["id"], dest=dest)
        busy = touched | {e["path"], dest, folder}
        pairs = [(p, q) for p in truth1["folders"]
                 for q in truth1["folders"]
                 if p not in drv.values() and
                 not any(under(x, p) or under(p, x) for x in busy) and
                 any(under(p, r) and under(q, r) for r in drv.values()) and
                 not under(q, p) and q != p.rsplit("/", 1)[0] and
                 not any(under(q, x) for x in busy)]
        mv, to = pairs[0]
        emu.mutate(op="move", path=mv, dest=to)
        busy |= {mv, to}
        free = [p for p in truth1["folders"] if p not in drv.values() and
                not any(under(x, p) or under(p, x) for x in busy)]
        full = [p for p in free if any(under(f["path"], p) for f in files)]
        gone = (full or free)[0]
        emu.mutate(op="delete", path=gone)
        msgs = truth1.get("messages", [])
        if msgs:
            emu.mutate(op="create_message", mailbox=msgs[0]["mailbox"],
                       folder=msgs[0]["folder_path"],
                       subject="incremental test")
            emu.mutate(op="delete_message", id=msgs[1]["id"])
            m2 = msgs[2]
            other = first(truth1["mail_folders"],
                          lambda f: f["mailbox"] == m2["mailbox"] and
                          f["path"] and not f["isSearchFolder"] and
                          f["path"] != m2["folder_path"])
            emu.mutate(op="move_message", id=m2["id"],
                       destination=other["path"])
            emu.mutate(op="create_mail_folder", mailbox=msgs[0]["mailbox"],
                       parent="inbox", name="Made by test")
            used = {msgs[0]["folder_path"], m2["folder_path"], other["path"],
                    "Inbox"}
            doomed = first(truth1["mail_folders"],
                           lambda f: "/" in f["path"] and
                           not f["isSearchFolder"] and not f["wellKnownName"]
                           and not any(u == f["path"] or
                                       u.startswith(f["path"] + "/")
                                       for u in used))
            emu.mutate(op="delete_mail_folder", mailbox=doomed["mailbox"],
                       folder=doomed["id"])
        emu.reset_stats()
        s2 = tool.snapshot(repo)
        inc_requests = route_count(emu.stats())
        assert s2["status"] == "complete"
        truth2 = emu.truth()
        compare(truth2, tool.dump(repo, read_data=True), read_data=True)
        # the earlier snapshot is unchanged
        assert tool.dump(repo, "1") == dump1
        compare(truth1, dump1)
        # fewer requests (what remains is one delta call per drive and per
        # mail folder), and only changed contents downloaded
        assert inc_requests < 0.7 * full_requests, (inc_requests,
                                                    full_requests)
        log = emu.stats()["log"]
        content = [r for r in log if "download.aspx" in r["path"] or
                   r["path"].endswith("/content") or
                   r["path"].endswith("/$value")]
        assert len(content) <= 3, content
        assert s2["downloads"] <= 3, s2
        assert s2["deleted"] >= 3
        # a rename keeps the item's identity
        item1 = first(dump1, lambda i: i["meta"].get("id") == c["id"])
        dump2 = tool.dump(repo)
        item2 = first(dump2, lambda i: i["meta"].get("id") == c["id"])
        assert item1["item"] == item2["item"]
        assert item2["path"].endswith("/renamed.bin")
        if msgs:
            mid = m2.get("immutable_id") or m2["id"]
            i1 = first(dump1, lambda i: i["meta"].get("id") == mid)
            i2 = first(dump2, lambda i: i["meta"].get("id") == mid)
            assert i1["item"] == i2["item"]  # a move keeps the identity
            assert "/%s/" % other["path"] in i2["path"]
        assert s1["files"] == len(files)
    finally:
        emu.stop()


def test_resync_after_410(emulator_factory, tmp_path):
    emu = emulator_factory(scale=0, seed=3)
    try:
        tool = Tool(emu, tmp_path)
        repo = tmp_path / "repo"
        tool.init(repo)
        tool.snapshot(repo)
        truth = emu.truth()
        emu.mutate(op="delete", id=truth["files"][0]["id"])
        emu.knobs(expire_delta_tokens=True)
        s = tool.snapshot(repo)
        assert s["status"] == "complete"
        assert s["resyncs"] >= 1
        assert s["downloads"] == 0  # everything reused
        compare(emu.truth(), tool.dump(repo))
    finally:
        emu.stop()


def test_throttling_and_dropped_connections(emulator, tool, tmp_path):
    repo = tmp_path / "repo"
    tool.init(repo)
    emulator.reset_stats()
    emulator.fault(path_regex=r".*/delta.*", status=429, retry_after="1.5",
                   count=3)
    emulator.fault(path_regex=r".*(content|download).*", status=503,
                   retry_after="1", count=4)
    emulator.fault(path_regex=r".*(content|download).*",
                   drop_after_bytes=100, count=3)
    t0 = time.time()
    s = tool.snapshot(repo, "--stall-timeout", "3")
    assert s["status"] == "complete", s
    st = emulator.stats()
    assert s["throttled"] >= 7
    assert s["waited_ms"] >= 1500
    assert time.time() - t0 >= 1.5
    compare(emulator.truth(), tool.dump(repo, read_data=True),
            read_data=True)
    # Retry-After respected: no request to the fenced route came back early
    log = st.get("log") or st.get("requests") or []
    t429 = [r for r in log if r.get("status") == 429]
    assert len(t429) >= 3 or st.get("429s", 0) >= 3


def test_expired_token_is_refreshed(emulator_factory, tmp_path):
    emu = emulator_factory(scale=0, seed=5, extra_args=("--token-lifetime",
                                                         "3"))
    try:
        tool = Tool(emu, tmp_path)
        repo = tmp_path / "repo"
        tool.init(repo)
        emu.fault(path_regex=r".*", latency_ms=150, count=40)
        s = tool.snapshot(repo)
        assert s["status"] == "complete"
        compare(emu.truth(), tool.dump(repo))
    finally:
        emu.stop()


def test_item_failure_is_partial(emulator, tool, tmp_path):
    repo = tmp_path / "repo"
    tool.init(repo)
    truth = emulator.truth()
    victim = truth["files"][-1]
    guid = victim["eTag"].split("{")[1].split("}")[0].lower()
    emulator.fault(path_regex="(UniqueId=%s|%s)" % (guid, victim["id"]),
                   status=500, count=100)
    s = tool.snapshot(repo, "--retries", "1", check=EXIT_PARTIAL)
    assert s["status"] == "partial"
    assert s["errors"] == 1
    shown = tool.run("show", "latest", "--repo", repo, "--json", check=0)
    errs = json.loads(shown.stdout)["error_list"]
    assert len(errs) == 1 and errs[0]["id"] == victim["id"]
    items = tool.dump(repo, read_data=True)
    ids = {i["meta"].get("id") for i in items}
    for f in truth["files"]:
        assert (f["id"] in ids) == (f["id"] != victim["id"])
    # the next run retries the failed file
    emulator.control("POST", "/faults", {"clear": True})
    s = tool.snapshot(repo, check=None)
    if s["status"] == "complete":
        compare(emulator.truth(), tool.dump(repo))


def test_lock_held_by_running_snapshot(emulator, tool, tmp_path):
    repo = tmp_path / "repo"
    tool.init(repo)
    emulator.fault(path_regex=r".*", latency_ms=300, count=30)
    first_run = subprocess.Popen(
        [tool.bin, "--repo", str(repo), "--connection", tool.name],
        env=tool.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        time.sleep(1.5)
        p = tool.run("--repo", repo, "--connection", tool.name)
        assert p.returncode == EXIT_LOCKED, p.stderr
        assert "locked by m365-snapshot" in p.stderr
        assert "pid %d" % first_run.pid in p.stderr
    finally:
        out, err = first_run.communicate(timeout=300)
    assert first_run.returncode == 0, err


def test_kill9_then_rerun(emulator, tool, tmp_path):
    repo = tmp_path / "repo"
    tool.init(repo)
    rnd = random.Random(42)
    kills = 40 if LONG else 20
    # how long a full run takes, to spread the kill points over it
    probe = tmp_path / "probe"
    tool.init(probe)
    t0 = time.time()
    tool.snapshot(probe)
    full = max(time.time() - t0, 0.3)
    for i in range(kills):
        p = subprocess.Popen(
            [tool.bin, "--repo", str(repo), "--connection", tool.name],
            env=tool.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.05, full * 1.1))
        p.send_signal(signal.SIGKILL)
        p.wait()
    finished_before = len(tool.snapshots(repo))
    s = tool.snapshot(repo)
    assert s["status"] == "complete"
    compare(emulator.truth(), tool.dump(repo, read_data=True),
            read_data=True)
    tool.run("check", "--repo", repo, "--read-data", check=0)
    # what the killed runs stored was reused, not downloaded again
    truth = emulator.truth()
    total = len(truth["files"]) + len(truth["messages"])
    if not finished_before:
        assert s["reused"] > 0
    assert s["downloads"] < total


def du(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*")
               if f.is_file())


def test_forget_and_prune(emulator_factory, tmp_path):
    emu = emulator_factory(scale=0, seed=11)
    try:
        tool = Tool(emu, tmp_path)
        repo = tmp_path / "repo"
        tool.init(repo)
        for i in range(4):
            truth = emu.truth()
            # a big unique file per snapshot, deleted before the next one
            emu.mutate(op="create_file",
                       path=truth["files"][0]["path"].rsplit("/", 1)[0] +
                       "/big%d.bin" % i,
                       content=os.urandom(1 << 20).hex())
            tool.snapshot(repo)
            created = first(emu.truth()["files"],
                            lambda f: f["path"].endswith("/big%d.bin" % i))
            emu.mutate(op="delete", id=created["id"])
        assert [s["id"] for s in tool.snapshots(repo)] == [1, 2, 3, 4]
        p = tool.run("forget", "--repo", repo, "--keep-last", "2",
                     "--dry-run", check=0)
        assert [s["id"] for s in tool.snapshots(repo)] == [1, 2, 3, 4]
        before = du(repo / "data")
        tool.run("forget", "--repo", repo, "--keep-last", "2", "--prune",
                 check=0)
        assert [s["id"] for s in tool.snapshots(repo)] == [3, 4]
        after = du(repo / "data")
        assert after < before - 3 * (1 << 20), (before, after)
        tool.run("check", "--repo", repo, "--read-data", check=0)
        assert len(tool.dump(repo, "3", True)) > 0
        p = tool.run("forget", "--repo", repo, check=2)
    finally:
        emu.stop()


def test_rebuild_catalog(emulator, tool, tmp_path):
    repo = tmp_path / "repo"
    tool.init(repo)
    tool.snapshot(repo)
    want = tool.dump(repo)
    os.unlink(repo / "catalog.db")
    for extra in ("catalog.db-wal", "catalog.db-shm"):
        if (repo / extra).exists():
            os.unlink(repo / extra)
    tool.run("rebuild-catalog", "--repo", repo, check=0)
    assert tool.dump(repo) == want


def test_usage_and_help(tool, tmp_path):
    p = tool.run("--help", check=0)
    assert "exit status" in p.stdout and "3 partial" in p.stdout
    tool.run("frobnicate", check=2)
    tool.run("create", "--repo", tmp_path / "nope", check=2)
    p = tool.run("create", "--repo", tmp_path / "nope", "--connection",
                 "emu", check=1)
    assert "init" in p.stderr


def test_check_names_what_a_damaged_chunk_affects(emulator, tool, tmp_path):
    repo = tmp_path / "repo"
    tool.init(repo)
    tool.snapshot(repo, "--service", "onedrive")
    tool.run("check", "--repo", repo, "--read-data", check=0)
    # damage the payload of the first chunk of the biggest pack: past the
    # 16-byte pack header and the 64-byte chunk header
    pack = max((repo / "data").rglob("*.pack"), key=lambda p: p.stat().st_size)
    with open(pack, "r+b") as f:
        f.seek(16 + 64 + 10)
        b = f.read(1)
        f.seek(16 + 64 + 10)
        f.write(bytes([b[0] ^ 0xFF]))
    p = tool.run("check", "--repo", repo, "--read-data", check=1)
    affected = [line for line in p.stdout.splitlines()
                if line.startswith("affected: ")]
    assert affected, p.stdout + p.stderr
    assert all(" snapshot 1: onedrive/" in line for line in affected)
    assert "damaged" in p.stderr
