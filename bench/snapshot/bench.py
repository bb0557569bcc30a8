"""Snapshot benchmark (see run.sh).  Prints a small report; asserts
nothing about timings."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import conftest  # noqa: E402

BUILD = pathlib.Path(os.environ.get("M365_BUILD", ROOT / "build"))
SCALE = int(os.environ.get("SCALE", "1"))
PARALLEL = os.environ.get("PARALLEL", "8")


def timed(args, env=None):
    """Run ARGS under /usr/bin/time -v -> (seconds, peak RSS KiB, proc)."""
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-v"] + args, env=env,
                       capture_output=True, text=True)
    dt = time.time() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return dt, int(m.group(1)) if m else -1, p


def main():
    out = pathlib.Path(sys.argv[1])
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    emu = conftest.start_emulator(work / "emu", scale=SCALE)
    try:
        run(emu, work)
    finally:
        emu.stop()


def run(emu, work):
    confdir = work / "conf"
    confdir.mkdir(mode=0o700)
    b = emu.apps["backup"]
    conf = confdir / "bench.conf"
    conf.write_text(
        "tenant = %s\nclient_id = %s\ncredential = secret\n"
        "secret_file = %s\ncloud = custom\nlogin_url = %s\n"
        "graph_url = %s\nca_file = %s\n" % (
            emu.tenant_id, b["client_id"], b["secret_file"], emu.login_url,
            emu.graph_url, emu.ca_file))
    os.chmod(conf, 0o600)
    env = dict(os.environ, M365FS_CONFIG_DIR=str(confdir))
    snap = str(BUILD / "bin" / "m365-snapshot")
    repo = work / "repo"
    subprocess.run([snap, "init", str(repo)], env=env, check=True,
                   capture_output=True)
    truth = emu.truth()
    nbytes = sum(f["size"] for f in truth["files"])
    nbytes += sum(m.get("size", 0) for m in truth.get("messages", []))
    nfiles = len(truth["files"])
    nmsgs = len(truth.get("messages", []))

    # 1. raw parallel download of the same files: curl --parallel over
    # their pre-authenticated download URLs (listed first, not timed)
    urls = []
    for d in {f["drive"] for f in truth["files"]}:
        link = "/drives/%s/root/delta" % d
        while link:
            j = emu.get_json(link)
            urls += [i["@microsoft.graph.downloadUrl"] for i in j["value"]
                     if "file" in i and "@microsoft.graph.downloadUrl" in i]
            link = j.get("@odata.nextLink")
    cfg = work / "curl.cfg"
    dl = work / "dl"
    dl.mkdir()
    with open(cfg, "w") as fh:
        for i, u in enumerate(urls):
            fh.write('url = "%s"\noutput = "%s/%d"\n' % (u, dl, i))
    t_curl, rss_curl, p = timed(["curl", "-s", "--http2", "--parallel",
                                 "--parallel-max", PARALLEL, "--cacert",
                                 emu.ca_file, "-K", str(cfg)])
    curl_bytes = sum(f.stat().st_size for f in dl.iterdir())
    shutil.rmtree(dl)

    # 2. full snapshot of the files only (what curl downloaded), then of
    # everything
    frepo = work / "repo-files"
    subprocess.run([snap, "init", str(frepo)], env=env, check=True,
                   capture_output=True)
    emu.reset_stats()
    t_files, rss_files, p = timed([snap, "--repo", str(frepo),
                                   "--connection", "bench", "--json",
                                   "--service", "files", "--service",
                                   "onedrive", "--parallel", PARALLEL],
                                  env=env)
    files_only = json.loads(p.stdout)
    files_conc = emu.stats().get("concurrent_max", -1)
    shutil.rmtree(frepo)
    emu.reset_stats()
    t_full, rss_full, p = timed([snap, "--repo", str(repo), "--connection",
                                 "bench", "--json", "--parallel", PARALLEL],
                                env=env)
    full = json.loads(p.stdout)
    # 3. incremental with no changes
    emu.reset_stats()
    t_inc, rss_inc, p = timed([snap, "--repo", str(repo), "--connection",
                               "bench", "--json"], env=env)
    inc = json.loads(p.stdout)

    mib = 1 << 20
    file_bytes = sum(f["size"] for f in truth["files"])
    print("scale %d: %d files (%.1f MiB), %d messages" % (
        SCALE, nfiles, file_bytes / mib, nmsgs))
    print("raw curl --parallel %s (files only): %.2f s, %.1f MiB/s, "
          "peak RSS %d KiB" % (PARALLEL, t_curl,
                               curl_bytes / mib / max(t_curl, 1e-6),
                               rss_curl))
    print("files-only snapshot: %.2f s, %.1f MiB/s, %d requests, %d "
          "requests in flight at most, peak RSS %d KiB, status %s" % (
              t_files, file_bytes / mib / max(t_files, 1e-6),
              files_only["requests"], files_conc, rss_files,
              files_only["status"]))
    print("full snapshot: %.2f s, %.1f MiB/s (all %d bytes incl. mail), "
          "%d requests, peak RSS %d KiB, status %s" % (
              t_full, nbytes / mib / max(t_full, 1e-6), nbytes,
              full["requests"], rss_full, full["status"]))
    print("incremental, no changes: %.2f s, %d requests, %d downloads, "
          "peak RSS %d KiB, status %s" % (
              t_inc, inc["requests"], inc["downloads"], rss_inc,
              inc["status"]))
    print("ratio files-only snapshot / raw download time: %.2f" % (
        t_files / max(t_curl, 1e-6)))


if __name__ == "__main__":
    main()
