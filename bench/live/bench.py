"""live/ of m365fs against `rclone mount`, same library, same emulator.

Run by bench/live/run.sh inside a private mount + network namespace where
graph.microsoft.com, login.microsoftonline.com (127.0.0.1) and
contoso.sharepoint.com (127.0.0.2) are the emulator on port 443.

Workloads on the scale-1 tenant's Marketing library (1,314 files, a
folder of 1,200 files, four scans of 12-64 MB), each on a fresh mount
(cold: nothing cached, the library's own path already resolved), then
once more on the same mount (warm), and for the listings once more after
the listing cache expired (stale: both mounts keep listings TTL seconds)
and once more after it expired again with a file added to and one
renamed in the folder of 1,200 (changed; undone after the run):
  find   find LIB | wc -l
  ls-l   ls -l LIB/Wide folder
  cat    cat LIB/Scans/* > /dev/null   (141 MB)
A warm find or ls -l is timed as the median of WARM_RUNS runs in a row.
Then the cold ls -l once more, COLD_LS_RUNS times on each mount in turn
(live, rclone, rclone, live, ...): its time is mostly the emulator making
two pages of 999 and 201 items, which makes it noisy under load, so it
gets its ratio from many runs side by side.
Reports medians (seconds), the ratio live/rclone and the Graph requests
each needed, 302 redirects and downloads included (emulator /stats).
Asserts nothing about timing.
"""
import argparse
import hashlib
import json
import os
import pathlib
import shutil
import ssl
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

TOP = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TOP / "tests" / "integration"))
import fsutil  # noqa: E402

LIB = "sites/contoso.sharepoint.com/sites/Marketing/Documents"
TTL = 5  # seconds listings are kept, both mounts
WARM_RUNS = 11  # a warm listing is timed as the median of this many runs
COLD_LS_RUNS = 21  # cold ls -l runs of each mount, interleaved
WORKLOADS = [
    ("find", "find . | wc -l"),
    ("ls-l", "ls -l 'Wide folder' | wc -l"),
    ("cat", "cat Scans/* | sha256sum"),
]


def control(ready, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(ready["control_url"] + path, data=data,
                                 method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        b = r.read()
    return json.loads(b) if b else None


def start_emulator(work, scale):
    ready_file = work / "ready.json"
    if ready_file.exists():
        ready_file.unlink()
    log = open(work / "emulator.log", "w")
    proc = subprocess.Popen(
        ["/usr/bin/python3", str(TOP / "tests/emulator/emulator.py"),
         "--state", str(work / "state"), "--scale", str(scale),
         "--port", "443", "--ready-file", str(ready_file),
         "--extra-names", "graph.microsoft.com,login.microsoftonline.com,"
         "contoso.sharepoint.com,contoso-my.sharepoint.com",
         "--public-graph-url", "https://graph.microsoft.com",
         "--public-files-url", "https://contoso.sharepoint.com"],
        stdout=log, stderr=subprocess.STDOUT)
    t0 = time.monotonic()
    while not ready_file.exists():
        if proc.poll() is not None or time.monotonic() - t0 > 120:
            print((work / "emulator.log").read_text())
            raise SystemExit("the emulator did not start")
        time.sleep(0.1)
    return proc, json.loads(ready_file.read_text())


def token(ready):
    b = ready["apps"]["backup"]
    ctx = ssl.create_default_context(cafile=ready["ca_file"])
    form = urllib.parse.urlencode({
        "client_id": b["client_id"],
        "client_secret": open(b["secret_file"]).read().strip(),
        "scope": "https://graph.microsoft.com/.default",
        "grant_type": "client_credentials"}).encode()
    req = urllib.request.Request(
        "https://login.microsoftonline.com/%s/oauth2/v2.0/token" %
        ready["tenant_id"], data=form)
    return json.load(urllib.request.urlopen(req, context=ctx))["access_token"]


class LiveMount:
    name = "m365fs live/"

    def __init__(self, work, ready):
        self.work = work
        conf = work / "conf"
        conf.mkdir(mode=0o700, exist_ok=True)
        b = ready["apps"]["backup"]
        (conf / "emu.conf").write_text(
            "tenant = %s\nclient_id = %s\ncredential = secret\n"
            "secret_file = %s\ncloud = custom\n"
            "login_url = https://login.microsoftonline.com\n"
            "graph_url = https://graph.microsoft.com\nca_file = %s\n" % (
                ready["tenant_id"], b["client_id"], b["secret_file"],
                ready["ca_file"]))
        os.chmod(conf / "emu.conf", 0o600)
        self.env = dict(os.environ, M365FS_CONFIG_DIR=str(conf))
        self.repo = work / "repo"
        if not self.repo.exists():
            subprocess.run([str(fsutil.BUILD / "bin/m365-snapshot"), "init",
                            str(self.repo)], env=self.env, check=True,
                           capture_output=True)
        self.m = None

    def mount(self):
        shutil.rmtree(self.repo / "cache", ignore_errors=True)
        self.m = fsutil.Mount(self.repo, self.work / "mnt-live",
                              "-o", "connection=emu",
                              "-o", "live_ttl=%d" % TTL, env=self.env,
                              log=self.work / "m365fs.log")
        self.m.allowed = [r"retry \d+ in"]
        self.m.start(timeout=60)
        return self.m.mnt / "live" / LIB

    def umount(self):
        self.m.stop()


class RcloneMount:
    name = "rclone mount"

    def __init__(self, work, ready):
        self.work = work
        t = control(ready, "GET", "/truth")
        drive = [d for d in t["drives"] if d["path"] == LIB][0]
        self.env = dict(os.environ, RCLONE_CONFIG="/dev/null",
                        RCLONE_CONFIG_EMU_TYPE="onedrive",
                        RCLONE_CONFIG_EMU_DRIVE_ID=drive["id"],
                        RCLONE_CONFIG_EMU_DRIVE_TYPE="documentLibrary",
                        RCLONE_CONFIG_EMU_TOKEN=json.dumps({
                            "access_token": token(ready),
                            "token_type": "Bearer",
                            "expiry": "2099-01-01T00:00:00Z"}),
                        SSL_CERT_FILE=ready["ca_file"])
        self.mnt = work / "mnt-rclone"
        self.proc = None

    def mount(self):
        self.mnt.mkdir(exist_ok=True)
        self.log = open(self.work / "rclone.log", "a")
        self.proc = subprocess.Popen(
            ["rclone", "mount", "emu:", str(self.mnt), "--read-only",
             "--dir-cache-time", "%ds" % TTL, "--log-level", "ERROR"], env=self.env, stdout=self.log,
            stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None or time.monotonic() - t0 > 60:
                raise SystemExit("rclone mount failed: see rclone.log")
            time.sleep(0.05)
        return self.mnt

    def umount(self):
        subprocess.run(["fusermount", "-u", str(self.mnt)], check=False)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def run(cmd, cwd):
    t0 = time.monotonic()
    p = subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True,
                       text=True, timeout=900)
    dt = time.monotonic() - t0
    if p.returncode:
        raise SystemExit("%s failed in %s: %s" % (cmd, cwd, p.stderr))
    return dt, p.stdout.strip()


def phases(wname):
    return ("cold", "warm") if wname == "cat" else \
        ("cold", "warm", "stale", "changed")


WIDE = LIB + "/Wide folder"


def change(ready, undo=False):
    """Add a file to and rename one in the folder of 1,200 (or undo it)."""
    t = control(ready, "GET", "/truth")
    names = sorted(f["path"] for f in t["files"]
                   if f["path"].startswith(WIDE + "/"))
    if not undo:
        control(ready, "POST", "/mutate", {
            "op": "create_file", "path": WIDE + "/bench-added.txt",
            "content": "added while mounted\n"})
        control(ready, "POST", "/mutate", {
            "op": "rename", "path": names[0],
            "new_name": "bench-renamed " + names[0].rsplit("/", 1)[1]})
        return
    control(ready, "POST", "/mutate", {"op": "delete",
                                       "path": WIDE + "/bench-added.txt"})
    old = [n for n in names if "/bench-renamed " in n][0]
    control(ready, "POST", "/mutate", {
        "op": "rename", "path": old,
        "new_name": old.rsplit("/", 1)[1][len("bench-renamed "):]})


def cold_ls(tools, ready, runs):
    """Cold ls -l of the folder of 1,200, RUNS times on each mount,
    interleaved (ABBA, a fresh mount each time) -> {tool name: [(seconds,
    requests, ms the emulator took to make the responses)]}."""
    cmd = dict(WORKLOADS)["ls-l"]
    out = {t.name: [] for t in tools}
    for i in range(runs):
        for tool in (tools if i % 2 == 0 else tools[::-1]):
            root = tool.mount()
            os.stat(root)
            os.listdir(root)
            os.stat(root / "Wide folder")
            control(ready, "POST", "/stats/reset", {})
            dt, _ = run(cmd, root)
            st = control(ready, "GET", "/stats")
            out[tool.name].append((dt, st["total"], sum(
                x.get("made_ms", 0) for x in st["log"])))
            tool.umount()
    return out


def cold_ls_report(tools, res):
    lv, rc = res[tools[0].name], res[tools[1].name]
    med = statistics.median
    return [
        "cold ls -l of the folder of 1,200, %d interleaved runs each "
        "(fresh mounts), medians:" % len(lv),
        "%-14s %8s %8s %11s" % ("", "s", "requests", "emulator ms"),
        "%-14s %8.3f %8d %11.0f" % (tools[0].name, med(x[0] for x in lv),
                                    med(x[1] for x in lv),
                                    med(x[2] for x in lv)),
        "%-14s %8.3f %8d %11.0f" % (tools[1].name, med(x[0] for x in rc),
                                    med(x[1] for x in rc),
                                    med(x[2] for x in rc)),
        "ratio live/rclone: %.2f of the medians, %.2f the median of the "
        "runs side by side (quartiles %.2f-%.2f)" % (
            med(x[0] for x in lv) / med(x[0] for x in rc),
            med(a[0] / b[0] for a, b in zip(lv, rc)),
            *quartiles([a[0] / b[0] for a, b in zip(lv, rc)])),
        "(emulator ms: the time the emulator took to make the pages)"]


def quartiles(v):
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return q[0], q[2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--cold-ls", type=int, default=None,
                    help="interleaved cold ls -l runs (default 21, "
                    "--quick 5)")
    ap.add_argument("--cold-ls-only", action="store_true")
    a = ap.parse_args()
    if a.cold_ls is None:
        a.cold_ls = 5 if a.quick else COLD_LS_RUNS
    work = pathlib.Path(a.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    reps = 1 if a.quick else 3
    emu, ready = start_emulator(work, a.scale)
    try:
        tools = [LiveMount(work, ready), RcloneMount(work, ready)]
        if a.cold_ls_only:
            print("\n".join(cold_ls_report(
                tools, cold_ls(tools, ready, a.cold_ls)) + [
                "load %s" % " ".join("%.1f" % x for x in os.getloadavg())]))
            return
        res = {}  # (tool, workload, cold|warm) -> [seconds], requests
        outs = {}
        routes = {}  # "tool workload phase" -> requests by route (last run)
        for r in range(reps):
            for wname, cmd in WORKLOADS:
                for tool in tools:
                    root = tool.mount()
                    os.stat(root)  # the library's path: not measured
                    os.listdir(root)
                    if wname != "find":
                        os.stat(root / cmd.split("'")[1]
                                if "'" in cmd else root / "Scans")
                    for phase in phases(wname):
                        if phase == "changed":
                            change(ready)
                        if phase in ("stale", "changed"):
                            time.sleep(TTL + 0.5)
                        control(ready, "POST", "/stats/reset", {})
                        dt, out = run(cmd, root)
                        if phase == "warm" and wname != "cat":
                            # ~10 ms each: the median of WARM_RUNS
                            more = [run(cmd, root) for _ in
                                    range(WARM_RUNS - 1)]
                            dt = statistics.median([dt] + [
                                x[0] for x in more])
                        st = control(ready, "GET", "/stats")
                        k = (tool.name, wname, phase)
                        res.setdefault(k, []).append(
                            (dt, st["total"], st["bytes_downloaded"]))
                        routes["%s %s %s" % k] = [
                            "%s %s %s%s" % (x.get("status"), x.get("method"),
                                            x.get("path"),
                                            "?" + x["query"][:60]
                                            if x.get("query") else "")
                            for x in st["log"]]
                        outs.setdefault((wname, phase), set()).add(out)
                        if phase == "changed":
                            change(ready, undo=True)
                    tool.umount()
        lines = ["live/ vs rclone mount: scale-%d tenant, library %s, "
                 "%d repetition(s), medians, listings kept %d s, load %s" % (
                     a.scale, LIB, reps, TTL,
                     " ".join("%.1f" % x for x in os.getloadavg())), ""]
        lines.append("%-6s %-7s %10s %10s %7s %9s %9s %11s" % (
            "work", "phase", "live s", "rclone s", "ratio", "live req",
            "rcl req", "live MB dl"))
        for wname, _ in WORKLOADS:
            for phase in phases(wname):
                lv = res[(tools[0].name, wname, phase)]
                rc = res[(tools[1].name, wname, phase)]
                ml = statistics.median(x[0] for x in lv)
                mr = statistics.median(x[0] for x in rc)
                lines.append("%-6s %-7s %10.3f %10.3f %7.2f %9d %9d %11.1f"
                             % (wname, phase, ml, mr,
                                ml / mr if mr else float("nan"),
                                statistics.median(x[1] for x in lv),
                                statistics.median(x[1] for x in rc),
                                statistics.median(x[2] for x in lv) / 1e6))
        if a.cold_ls:
            lines.append("")
            lines.extend(cold_ls_report(tools, cold_ls(tools, ready,
                                                       a.cold_ls)))
            lines.append("load after: %s" % " ".join(
                "%.1f" % x for x in os.getloadavg()))
        same = all(len(v) == 1 for v in outs.values())
        lines.append("")
        lines.append("outputs identical between the two mounts: %s" %
                     ("yes" if same else "NO: %s" % outs))
        lines.append("ratio < 1: live/ is faster.  req: Graph + download "
                     "requests the workload caused.")
        text = "\n".join(lines)
        print(text)
        (work / "report.txt").write_text(text + "\n")
        (work / "requests.json").write_text(json.dumps(routes, indent=1))
        if not same:
            sys.exit(1)
    finally:
        emu.terminate()
        emu.wait()


if __name__ == "__main__":
    main()
