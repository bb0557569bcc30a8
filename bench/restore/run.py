#!/usr/bin/python3
"""Restore benchmark against the emulator, compared with a raw curl upload
of the same data to the same emulator in the same run.

  many small files: `cp -r` of N files into MOUNT/restore/<library>/ until
      the tenant has every one, against `curl --parallel` of the same simple
      PUTs (…/items/<folder>:/<name>:/content with a bearer token from the
      emulator's token endpoint), with the same number of parallel uploads;
  one large file: cp of one file into MOUNT/restore/<library>/ until it is
      in the tenant, against createUploadSession + curl PUTs of the same
      fragments (10 MiB, Content-Range) in one curl process.

Each measurement is repeated (--runs, median reported); ratio = curl time /
our time (1.0 = as fast as curl; the goal is >= 0.80).  Our time includes
spooling: the data is fsynced and queued before close() returns.

    /usr/bin/python3 bench/restore/run.py [OUTDIR] [--files 1000]
        [--size 2048] [--big-mb 100] [--threads 4] [--runs 3]
(build first: make -j2; uses build/ or $M365_BUILD)
"""
import argparse
import hashlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/integration"))
from conftest import start_emulator  # noqa: E402
from test_restore import Env, libraries, truth_files, wait_done  # noqa

FRAGMENT = 32 * 327680  # RESTORE_FRAGMENT: 10 MiB
# restore/.status is read this often to see the end: a coarser poll would
# add half of it on average to our time, which curl does not pay
POLL = 0.02


def lib_drive(emu, lib):
    for d in emu.truth()["drives"]:
        if d["path"] == lib:
            return d["id"]
    raise SystemExit("no drive for library '%s'" % lib)


def mkfolder(emu, drive, name):
    st, _, body = emu.request(
        "POST", "/drives/%s/root/children" % drive,
        {"name": name, "folder": {},
         "@microsoft.graph.conflictBehavior": "fail"})
    assert st == 201, (st, body)


def curl(args, cfg):
    t0 = time.monotonic()
    p = subprocess.run(["curl", "-sS", "--fail-with-body"] + args +
                       ["-K", str(cfg)], capture_output=True, text=True)
    t = time.monotonic() - t0
    if p.returncode:
        raise SystemExit("curl failed (%d): %s %s" % (
            p.returncode, p.stderr[-2000:], p.stdout[-2000:]))
    return t


def curl_small(emu, work, drive, folder, src, parallel):
    """PUT every file of @src into @folder (made first, not timed)."""
    mkfolder(emu, drive, folder)
    cfg = work / "curl-small.cfg"
    with open(cfg, "w") as fh:
        fh.write('header = "Authorization: Bearer %s"\n' % emu.token())
        for f in sorted(src.iterdir()):
            fh.write('url = "%s/v1.0/drives/%s/root:/%s/%s:/content"\n'
                     'upload-file = "%s"\noutput = "/dev/null"\n' % (
                         emu.graph_url, drive, folder,
                         urllib.parse.quote(f.name), f))
    return curl(["--parallel", "--parallel-max", str(parallel),
                 "--cacert", emu.ca_file], cfg)


def curl_big(emu, work, drive, name, src):
    """createUploadSession, then the fragments in order (split first,
    not timed)."""
    size = src.stat().st_size
    frags = work / "frags"
    frags.mkdir(exist_ok=True)
    cfg = work / "curl-big.cfg"
    parts = []
    with open(src, "rb") as f:
        off = 0
        while off < size:
            d = f.read(FRAGMENT)
            p = frags / ("%06d" % len(parts))
            p.write_bytes(d)
            parts.append((p, off, off + len(d) - 1))
            off += len(d)
    t0 = time.monotonic()
    st, _, body = emu.request(
        "POST", "/drives/%s/root:/%s:/createUploadSession" % (drive, name),
        {"item": {"@microsoft.graph.conflictBehavior": "rename"}})
    assert st == 200, (st, body)
    url = json.loads(body)["uploadUrl"]
    with open(cfg, "w") as fh:
        for i, (p, a, b) in enumerate(parts):
            if i:
                fh.write("next\n")
            fh.write('url = "%s"\nupload-file = "%s"\noutput = "/dev/null"\n'
                     'header = "Content-Range: bytes %d-%d/%d"\n'
                     'cacert = "%s"\n' % (url, p, a, b, size, emu.ca_file))
    t = time.monotonic() - t0 + curl([], cfg)
    shutil.rmtree(frags)
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--big-mb", type=int, default=100)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-restore-"))
    emu = start_emulator(tmp / "emu", scale=0)
    try:
        return run(a, emu, tmp)
    finally:
        emu.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run(a, emu, tmp):
    env = Env(emu, tmp)
    lib = libraries(emu)[0]
    drive = lib_drive(emu, lib)
    src = tmp / "src" / "small"
    src.mkdir(parents=True)
    want = {}
    for i in range(a.files):
        d = os.urandom(a.size)
        (src / ("f%05d.bin" % i)).write_bytes(d)
        want["f%05d.bin" % i] = hashlib.sha256(d).hexdigest()
    big = tmp / "src" / "big.bin"
    with open(big, "wb") as f:
        for _ in range(a.big_mb):
            f.write(os.urandom(1 << 20))
    with open(big, "rb") as f:
        big_sha = hashlib.file_digest(f, "sha256").hexdigest()
    res = {k: [] for k in ("curl_small", "ours_small", "spool_small",
                           "curl_big", "ours_big", "spool_big")}
    ok = True
    with env.mount("-o", "restore_threads=%d" % a.threads) as m:
        for r in range(a.runs):
            res["curl_small"].append(curl_small(
                emu, tmp, drive, "curl-%d" % r, src, a.threads))
            dest = m.mnt / "restore" / lib / ("ours-%d" % r)
            t0 = time.monotonic()
            subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
            res["spool_small"].append(time.monotonic() - t0)
            by = wait_done(m.mnt, timeout=3600, poll=POLL)
            res["ours_small"].append(time.monotonic() - t0)
            ok &= not by["failed"]
            ok &= truth_files(emu, "%s/ours-%d" % (lib, r)) == want
            ok &= truth_files(emu, "%s/curl-%d" % (lib, r)) == want

            res["curl_big"].append(curl_big(emu, tmp, drive,
                                            "curl-%d.bin" % r, big))
            t0 = time.monotonic()
            shutil.copyfile(big, m.mnt / "restore" / lib /
                            ("ours-%d.bin" % r))
            res["spool_big"].append(time.monotonic() - t0)
            by = wait_done(m.mnt, timeout=3600, poll=POLL)
            res["ours_big"].append(time.monotonic() - t0)
            ok &= not by["failed"]
            tf = truth_files(emu, lib)
            ok &= tf.get("ours-%d.bin" % r) == big_sha
            ok &= tf.get("curl-%d.bin" % r) == big_sha
    med = {k: statistics.median(v) for k, v in res.items()}
    mib = a.big_mb
    lines = [
        "restore bench: emulator scale 0, %d parallel uploads (ours: "
        "-o restore_threads, curl: --parallel-max), median of %d runs" % (
            a.threads, a.runs),
        "%-34s %10s %10s %12s %8s" % ("workload", "curl s", "ours s",
                                      "ours rate", "ratio"),
        "%-34s %10.2f %10.2f %8.0f f/s %8.2f" % (
            "%d x %d B files (cp -r)" % (a.files, a.size), med["curl_small"],
            med["ours_small"], a.files / med["ours_small"],
            med["curl_small"] / med["ours_small"]),
        "%-34s %10.2f %10.2f %6.1f MiB/s %8.2f" % (
            "1 x %d MiB file (upload session)" % mib, med["curl_big"],
            med["ours_big"], mib / med["ours_big"],
            med["curl_big"] / med["ours_big"]),
        "ours, until cp returned (spooled, durable): small %.2f s "
        "(%.1f ms/file), large %.2f s" % (
            med["spool_small"], 1000 * med["spool_small"] / a.files,
            med["spool_big"]),
        "runs (s): " + json.dumps({k: [round(x, 2) for x in v]
                                   for k, v in res.items()}),
        "ratio = curl time / our time; goal >= 0.80",
        "content check (sha256 of every file in the tenant): %s" % (
            "ok" if ok else "MISMATCH"),
    ]
    print("\n".join(lines))
    if a.outdir:
        out = pathlib.Path(a.outdir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.txt").write_text("\n".join(lines) + "\n")
        (out / "results.json").write_text(json.dumps(
            {"files": a.files, "size": a.size, "big_mb": a.big_mb,
             "threads": a.threads, "runs": res, "median": med,
             "ok": ok}, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
