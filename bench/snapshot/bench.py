"""Snapshot benchmark (see run.sh).  Prints a report table; asserts
nothing about timings.

In one emulator run (scale SCALE): a raw parallel download of every drive
file (curl --parallel), a files-only snapshot of the same files, then the
mail into the same repository (together the full snapshot: the files are
downloaded once), an incremental with no changes, an incremental
after 1% of the files and messages changed, and `rclone copy` of the
largest library as a peer.  Then a full snapshot at a second scale
(SCALE2, files-only and mail runs as at SCALE) so that the peak RSS of two
tenant sizes can be compared: the verdict line says whether the peak stays
within 512 MiB and does not grow with the tenant (RSS_GROWTH_MAX).

rclone's OneDrive backend cannot be given a Graph URL: when RCLONE=1 (the
default) and `unshare -m -n` works, the benchmark runs inside a private
mount + network namespace where graph.microsoft.com and
contoso.sharepoint.com name the emulator (as tests/emulator/
rclone-check.sh does); otherwise it runs without the peer.
"""
import json
import os
import pathlib
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import conftest  # noqa: E402
from test_snapshot import Tool  # noqa: E402

BUILD = pathlib.Path(os.environ.get("M365_BUILD", ROOT / "build"))
SCALE = int(os.environ.get("SCALE", "1"))
SCALE2 = int(os.environ.get("SCALE2", "0" if SCALE <= 1 else "1"))
PARALLEL = os.environ.get("PARALLEL", "8")
RCLONE = os.environ.get("RCLONE", "1") == "1"
INNER = os.environ.get("M365_BENCH_NS") == "1"
MIB = 1 << 20
# peak RSS of the full snapshot at SCALE (files-only and mail runs)
RSS_FULL = []
# "does not grow with tenant size": the bigger tenant's peak RSS within
# this factor of the smaller one's (a run's peak varies by ~10%)
RSS_GROWTH_MAX = 1.15
HOSTS = ("127.0.0.1 localhost\n"
         "127.0.0.1 graph.microsoft.com login.microsoftonline.com\n"
         "127.0.0.2 contoso.sharepoint.com contoso-my.sharepoint.com\n")
NS_ARGS = ["--port", "443", "--extra-names",
           "graph.microsoft.com,login.microsoftonline.com,"
           "contoso.sharepoint.com,contoso-my.sharepoint.com",
           "--public-graph-url", "https://graph.microsoft.com",
           "--public-files-url", "https://contoso.sharepoint.com"]


def timed(args, env=None):
    """Run ARGS under /usr/bin/time -v -> (seconds, peak RSS KiB, proc)."""
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-v"] + args, env=env,
                       capture_output=True, text=True)
    dt = time.time() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return dt, int(m.group(1)) if m else -1, p


def ratio(a, b):
    return a / b if b > 0 else float("nan")


class Snap:
    """m365-snapshot with a connection to one emulator."""

    def __init__(self, emu, work):
        work.mkdir(parents=True, exist_ok=True)
        tool = Tool(emu, work)
        self.env, self.bin, self.name = tool.env, tool.bin, tool.name

    def init(self, repo):
        shutil.rmtree(repo, ignore_errors=True)
        subprocess.run([self.bin, "init", str(repo)], env=self.env,
                       check=True, capture_output=True)

    def create(self, repo, *extra):
        """One snapshot -> (seconds, peak RSS KiB, --json summary)."""
        dt, rss, p = timed([self.bin, "--repo", str(repo), "--connection",
                            self.name, "--json", "--parallel", PARALLEL] +
                           list(extra), env=self.env)
        if p.returncode not in (0, 3):
            sys.exit("m365-snapshot failed (%d):\n%s" % (
                p.returncode, p.stderr[-3000:]))
        return dt, rss, json.loads(p.stdout)


def enter_namespace():
    """Re-run this script in a private mount + network namespace; True
    when it ran there."""
    if INNER or not RCLONE or not shutil.which("rclone"):
        return False
    un = ["unshare", "-m", "-n"] + ([] if os.getuid() == 0 else ["-r"])
    if subprocess.run(un + ["true"], capture_output=True).returncode:
        print("note: unshare -m -n is not allowed here: no rclone peer")
        return False
    env = dict(os.environ, M365_BENCH_NS="1",
               M365_OUTER_MNTNS=os.readlink("/proc/self/ns/mnt"))
    rc = subprocess.call(un + [sys.executable, __file__] + sys.argv[1:],
                         env=env)
    sys.exit(rc)


def namespace_setup(work):
    subprocess.run([ROOT / "tests/emulator/detach-fuse.sh"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    hosts = work / "hosts"
    hosts.write_text(HOSTS)
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"],
                   check=True)


def main():
    out = pathlib.Path(sys.argv[1]).resolve()
    enter_namespace()
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows = []
    if INNER:
        namespace_setup(work)
    emu = conftest.start_emulator(work / "emu", scale=SCALE,
                                  extra_args=NS_ARGS if INNER else (),
                                  timeout=600)
    try:
        run(emu, work, rows)
    finally:
        emu.stop()
    shutil.rmtree(work / "emu", ignore_errors=True)
    # peak RSS of a full snapshot at another tenant size
    # (files-only then mail, as at SCALE, so that the runs compare)
    emu2 = conftest.start_emulator(work / "emu2", scale=SCALE2, timeout=600)
    try:
        snap = Snap(emu2, work / "s2")
        repo = work / "s2" / "repo"
        snap.init(repo)
        t2f, rss2f, f2 = snap.create(repo, "--service", "files",
                                     "--service", "onedrive")
        t2m, rss2m, m2 = snap.create(repo, "--service", "mail")
        truth2 = emu2.truth()
        rss2 = max(rss2f, rss2m)
        rows.append(("full snapshot, scale %d (for RSS)" % SCALE2,
                     "%.1f s, %d files, %d messages, peak RSS %.0f MiB "
                     "(files %.0f, mail %.0f), %s/%s" % (
                         t2f + t2m, len(truth2["files"]),
                         len(truth2.get("messages", [])), rss2 / 1024,
                         rss2f / 1024, rss2m / 1024, f2["status"],
                         m2["status"])))
    finally:
        emu2.stop()
    rss1 = max(RSS_FULL)
    grow = ratio(rss1, rss2)
    if SCALE2 < 1:
        verdict = "no verdict: scale 0 is too small, run SCALE=10"
    elif rss1 <= 512 * 1024 and grow <= RSS_GROWTH_MAX:
        verdict = "met"
    else:
        verdict = "NOT met"
    rows.append(("peak RSS scale %d vs scale %d" % (SCALE, SCALE2),
                 "%.0f MiB vs %.0f MiB = %.2f (goal <= 512 MiB and <= %.2f:"
                 " %s)" % (rss1 / 1024, rss2 / 1024, grow, RSS_GROWTH_MAX,
                           verdict)))
    shutil.rmtree(work, ignore_errors=True)
    print("")
    for k, v in rows:
        print("%-44s %s" % (k, v))


def drive_urls(emu, truth):
    """Pre-authenticated download URL of every drive file (not timed)."""
    urls = []
    for d in sorted({f["drive"] for f in truth["files"]}):
        link = "/drives/%s/root/delta" % d
        while link:
            j = emu.get_json(link)
            urls += [i["@microsoft.graph.downloadUrl"] for i in j["value"]
                     if "file" in i and "@microsoft.graph.downloadUrl" in i]
            link = j.get("@odata.nextLink")
    return urls


def curl_all(emu, urls, work):
    cfg = work / "curl.cfg"
    dl = work / "dl"
    dl.mkdir()
    with open(cfg, "w") as fh:
        for i, u in enumerate(urls):
            fh.write('url = "%s"\noutput = "%s/%d"\n' % (u, dl, i))
    t, rss, p = timed(["curl", "-s", "--http2", "--parallel",
                       "--parallel-max", PARALLEL, "--cacert", emu.ca_file,
                       "-K", str(cfg)])
    got = sum(f.stat().st_size for f in dl.iterdir())
    shutil.rmtree(dl)
    return t, got


def mutate_one_percent(emu, truth, rng):
    """Change 1% of the files (new versions) and of the messages (a third
    each created, moved, deleted) -> (files changed, bytes, messages)."""
    files = truth["files"]
    nf = max(1, len(files) // 100)
    nbytes = 0
    for f in rng.sample(files, nf):
        emu.mutate(op="modify_file", id=f["id"])
        nbytes += f["size"] + 17
    msgs = truth.get("messages", [])
    nm = max(3, len(msgs) // 100) if msgs else 0
    picked = rng.sample(msgs, min(nm, len(msgs)))
    for i, m in enumerate(picked):
        if i % 3 == 0:
            emu.mutate(op="create_message", mailbox=m["mailbox"],
                       subject="bench %d" % i)
        elif i % 3 == 1:
            emu.mutate(op="move_message", id=m["id"],
                       destination="archive")
        else:
            emu.mutate(op="delete_message", id=m["id"])
    return nf, nbytes, len(picked)


def rclone_copy(emu, truth, work):
    """rclone copy of the largest library -> (seconds, bytes, files,
    requests) or None."""
    by = {}
    for f in truth["files"]:
        by[f["drive"]] = by.get(f["drive"], 0) + f["size"]
    libs = [d for d in truth["drives"]
            if d.get("driveType") == "documentLibrary" and d["id"] in by]
    if not libs:
        return None
    drive = max(libs, key=lambda d: by[d["id"]])
    b = emu.apps["backup"]
    form = urllib.parse.urlencode({
        "client_id": b["client_id"],
        "client_secret": open(b["secret_file"]).read().strip(),
        "scope": "https://graph.microsoft.com/.default",
        "grant_type": "client_credentials"}).encode()
    req = urllib.request.Request("%s/%s/oauth2/v2.0/token" % (
        emu.login_url, emu.tenant_id), data=form)
    tok = json.load(urllib.request.urlopen(req, context=emu.ssl))
    env = dict(os.environ, SSL_CERT_FILE=emu.ca_file, RCLONE_CONFIG="/dev/null",
               RCLONE_CONFIG_EMU_TYPE="onedrive",
               RCLONE_CONFIG_EMU_DRIVE_ID=drive["id"],
               RCLONE_CONFIG_EMU_DRIVE_TYPE="documentLibrary",
               RCLONE_CONFIG_EMU_TOKEN=json.dumps({
                   "access_token": tok["access_token"],
                   "token_type": "Bearer",
                   "expiry": "2099-01-01T00:00:00Z"}))
    dest = work / "rclone-copy"
    emu.reset_stats()
    t, rss, p = timed(["rclone", "copy", "emu:", str(dest), "--transfers",
                       PARALLEL, "--log-level", "ERROR"], env=env)
    if p.returncode:
        print("rclone failed:\n" + p.stderr[-2000:])
        return None
    got = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    n = sum(1 for f in dest.rglob("*") if f.is_file())
    shutil.rmtree(dest)
    return t, got, n, emu.stats().get("total", -1), drive, by[drive["id"]]


def run(emu, work, rows):
    snap = Snap(emu, work)
    truth = emu.truth()
    file_bytes = sum(f["size"] for f in truth["files"])
    msgs = truth.get("messages", [])
    nbytes = file_bytes + sum(m.get("size", 0) for m in msgs)
    rows.append(("tenant", "scale %d: %d files (%.1f MiB), %d messages, "
                 "%d drives%s" % (SCALE, len(truth["files"]),
                                  file_bytes / MIB, len(msgs),
                                  len(truth["drives"]),
                                  ", rclone peer" if INNER else "")))

    # 1. raw parallel download of the same files
    urls = drive_urls(emu, truth)
    t_curl, curl_bytes = curl_all(emu, urls, work)
    rows.append(("curl --parallel %s, every drive file" % PARALLEL,
                 "%.1f s, %.1f MiB/s (%d files)" % (
                     t_curl, curl_bytes / MIB / t_curl, len(urls))))

    # 2. files-only snapshot of what curl downloaded (the first part of
    # the full snapshot: the files are downloaded once in this run)
    repo = work / "repo"
    snap.init(repo)
    emu.reset_stats()
    t_files, rss_files, fo = snap.create(repo, "--service", "files",
                                         "--service", "onedrive")
    conc = emu.stats().get("concurrent_max", -1)
    rows.append(("files-only snapshot",
                 "%.1f s, %.1f MiB/s, %d requests, %d in flight at most, "
                 "peak RSS %.0f MiB, %s" % (
                     t_files, file_bytes / MIB / t_files, fo["requests"],
                     conc, rss_files / 1024, fo["status"])))
    rows.append(("  throughput vs curl (goal >= 0.90)",
                 "%.2f" % ratio(t_curl, t_files)))

    # 3. the mail into the same repository: full = files + mail
    emu.reset_stats()
    t_mail, rss_mail, mo = snap.create(repo, "--service", "mail")
    conc = emu.stats().get("concurrent_max", -1)
    t_full = t_files + t_mail
    mbytes = sum(m.get("size", 0) for m in msgs)
    rows.append(("mail snapshot (same repository)",
                 "%.1f s, %.0f messages/s, %.1f MiB/s, %d requests, %d "
                 "mailboxes, %d in flight at most, peak RSS %.0f MiB, %s" % (
                     t_mail, mo["messages"] / t_mail, mbytes / MIB / t_mail,
                     mo["requests"], mo["mailboxes"], conc,
                     rss_mail / 1024, mo["status"])))
    RSS_FULL.extend([rss_files, rss_mail])
    rows.append(("full snapshot = files + mail",
                 "%.1f s, %.1f MiB/s" % (t_full, nbytes / MIB / t_full)))

    # 4. incremental, no changes
    t_inc, rss_inc, inc = snap.create(repo)
    containers = fo["drives"] + sum(
        1 for f in truth.get("mail_folders", []) if f["path"])
    rows.append(("incremental, no changes",
                 "%.2f s, %d requests, %d downloads, peak RSS %.0f MiB, %s"
                 % (t_inc, inc["requests"], inc["downloads"],
                    rss_inc / 1024, inc["status"])))
    rows.append(("  time vs full (goal <= 0.05)",
                 "%.3f" % ratio(t_inc, t_full)))
    rows.append(("  requests per drive + mail folder",
                 "%.2f (%d drives + mail folders)" % (
                     ratio(inc["requests"], containers), containers)))

    # 5. incremental after 1% changed
    nf, nb, nm = mutate_one_percent(emu, truth, random.Random(1))
    t_pct, rss_pct, pct = snap.create(repo)
    rows.append(("incremental, 1%% changed (%d files, %d msgs)" % (nf, nm),
                 "%.2f s, %d requests, %d downloads, %.1f MiB down, "
                 "peak RSS %.0f MiB, %s" % (
                     t_pct, pct["requests"], pct["downloads"],
                     pct["bytes_downloaded"] / MIB, rss_pct / 1024,
                     pct["status"])))
    rows.append(("  time vs full", "%.3f" % ratio(t_pct, t_full)))

    # 6. the peer: rclone copy of the largest library
    if INNER:
        r = rclone_copy(emu, truth, work)
        if r:
            t_rc, got, n, reqs, drive, dbytes = r
            rows.append(("rclone copy --transfers %s (peer)" % PARALLEL,
                         "%.1f s, %.1f MiB/s, %d files of '%s', %d "
                         "requests" % (t_rc, got / MIB / t_rc, n,
                                       drive["path"], reqs)))
            rows.append(("  snapshot MiB/s vs rclone MiB/s",
                         "%.2f" % ratio(file_bytes / t_files,
                                        got / t_rc)))


if __name__ == "__main__":
    main()
