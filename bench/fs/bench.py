"""m365fs against the native file system, squashfuse_ll, `restic mount` and
`borg mount` on the same tree, in one run (bench/fs/run.sh).  Medians by
hyperfine; ratios against native.  "cold": page cache dropped and FUSE
daemons restarted before each run; "warm": after a warm-up run.

The tree (fsutil.make_tree): 7,500 documents of 0 B-300 KB in 30 folders,
a folder of 50,000 small files, 2,000 mails, a 200 MB file of random
data: about 60,000 files, the size of the issue's peer measurements
("same kind of data, 65k files"; an emulator scale-10 tenant takes longer
to snapshot than a bench run on this machine class is allowed).

Peers that are slow on a workload get a time cap per run
(BENCH_CAP seconds, default 30): one probe run decides; over the cap the
table says "> cap" and the peer is not measured further on that
workload.  Restic and borg repositories are unencrypted (restic: a
password file, borg: -e none) and use their default compression.

usage: bench.py OUTDIR [--quick]
"""
import json
import os
import pathlib
import random
import resource
import shutil
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]
                       / "tests/integration"))
import fsutil  # noqa: E402

QUICK = "--quick" in sys.argv
OUT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build/bench/fs")
WORK = OUT / ("work-quick" if QUICK else "work")
SRC = WORK / "src"
BIG_FOLDER = "onedrive/megan@contoso.example/Big folder"
BIG_FILE = "sites/contoso.example/sites/hr/Documents/big.bin"
MARKER = "zebrafish"
CAP = float(os.environ.get("BENCH_CAP", "10" if QUICK else "30"))
PEERS = os.environ.get("BENCH_PEERS",
                       "squashfuse_ll restic borg").split()


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def build_tree():
    if (WORK / "tree.done").exists():
        return
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    n_big = 5000 if QUICK else 50_000
    fsutil.make_tree(SRC, seed=7, files_per_folder=60 if QUICK else 250,
                     folders=10, big_mb=2, big_folder=n_big, mails=2000,
                     marker=MARKER)
    # one 200 MB file of random-ish data (compresses a little, like media)
    rnd = random.Random(3)
    block = rnd.randbytes(1 << 20)
    with open(SRC / BIG_FILE, "wb") as f:
        for i in range(50 if QUICK else 200):
            f.write(block[i % 7:] + block[:i % 7])
    (WORK / "tree.done").touch()


class Target:
    def __init__(self, name, root, mount=None, umount=None, cap=None,
                 pid_pattern=None):
        self.name, self.root = name, pathlib.Path(root)
        self.mount, self.umount = mount, umount
        self.cap = cap  # seconds per run, None: no cap
        self.pid_pattern = pid_pattern  # pgrep -f pattern of the daemon

    def restart_cmd(self):
        """Shell command run before each cold measurement."""
        parts = []
        if self.umount:
            parts.append(self.umount)
        parts.append("sync; echo 3 > /proc/sys/vm/drop_caches")
        if self.mount:
            parts.append(self.mount)
        return "; ".join(parts)

    def rss_mib(self):
        """Peak RSS (VmHWM) of the daemon since its last start, MiB."""
        if not self.pid_pattern:
            return None
        pids = subprocess.run(["pgrep", "-f", self.pid_pattern],
                              capture_output=True, text=True).stdout.split()
        rss = 0
        for pid in pids:
            try:
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmHWM:"):
                        rss = max(rss, int(line.split()[1]) // 1024)
            except OSError:
                pass
        return rss


def wait_cmd(mnt):
    return (f"t=0; while ! mountpoint -q '{mnt}'; do sleep 0.02; "
            f"t=$((t+1)); [ $t -lt 3000 ] || exit 1; done")


def umount_cmd(cmd, pattern):
    """@cmd, then wait until no process matches @pattern (pgrep -f; a
    "[x]yz" pattern does not match the shell running this)."""
    return (f"{cmd}; while pgrep -f '{pattern}' >/dev/null; "
            f"do sleep 0.05; done")


def fresh_mountpoint(d):
    if os.path.ismount(d):
        subprocess.run(["fusermount3", "-u", str(d)])
    d.mkdir(exist_ok=True)


def timed(label, fn):
    t0 = time.monotonic()
    fn()
    dt = time.monotonic() - t0
    print(f"{label}: {dt:.1f} s", flush=True)
    return dt


def setup_m365fs(targets, info):
    repo = WORK / "repo"
    if not (WORK / "repo.done").exists():
        shutil.rmtree(repo, ignore_errors=True)
        info["m365fs import"] = timed(
            "import into the m365fs repository",
            lambda: fsutil.gen_import(repo, SRC, small_chunks=False))
        (WORK / "repo.done").touch()
    mnt = WORK / "mnt-m365fs"
    fresh_mountpoint(mnt)
    mount = f"{fsutil.M365FS} '{repo}' '{mnt}' && {wait_cmd(mnt)}"
    umount = f"fusermount3 -u '{mnt}'"
    sh(mount)
    sh(umount)
    t0 = time.monotonic()
    sh(mount)
    info["mount_s"] = time.monotonic() - t0
    snap = mnt / "snapshots" / os.readlink(mnt / "snapshots/latest")
    targets.append(Target("m365fs", snap, mount, umount,
                          pid_pattern=f"{fsutil.M365FS} "))


def setup_squashfs(targets, info):
    sqfs = WORK / "tree.sqfs"
    if not sqfs.exists():
        timed("mksquashfs -comp lz4", lambda: sh(
            f"mksquashfs '{SRC}' '{sqfs}' -comp lz4 -quiet -no-progress "
            f">/dev/null"))
    mnt = WORK / "mnt-squashfs"
    fresh_mountpoint(mnt)
    mount = f"squashfuse_ll '{sqfs}' '{mnt}' && {wait_cmd(mnt)}"
    sh(mount)
    targets.append(Target("squashfuse_ll", mnt, mount,
                          f"fusermount3 -u '{mnt}'",
                          pid_pattern=f"squashfuse_ll '?{sqfs}"))


def build_once(repo, cmds):
    """Create the peer repository @repo with @cmds (the last one timed)
    unless done before; returns its fresh mountpoint."""
    name = repo.name
    if not (WORK / f"{name}.done").exists():
        shutil.rmtree(repo, ignore_errors=True)
        for c in cmds[:-1]:
            sh(c)
        timed(f"{name}: {cmds[-1].split(' ')[0]} backup",
              lambda: sh(cmds[-1]))
        (WORK / f"{name}.done").touch()
    mnt = WORK / f"mnt-{name}"
    fresh_mountpoint(mnt)
    return mnt


def setup_restic(targets, info):
    repo, pw = WORK / "restic", WORK / "restic.pw"
    os.environ["RESTIC_PASSWORD_FILE"] = str(pw)
    os.environ["RESTIC_CACHE_DIR"] = str(WORK / "restic-cache")
    pw.write_text("bench\n")
    mnt = build_once(repo, [
        f"restic -q -r '{repo}' init >/dev/null",
        f"restic -q -r '{repo}' backup '{SRC.resolve()}' >/dev/null"])
    # restic mount stays in the foreground: detach it; it exits when
    # unmounted
    mount = (f"setsid restic -q -r '{repo}' mount '{mnt}' "
             f">'{WORK}/restic-mount.log' 2>&1 </dev/null & {wait_cmd(mnt)}")
    pattern = f"[r]estic -q -r {repo} mount"
    umount = umount_cmd(f"fusermount3 -u '{mnt}'", pattern)
    sh(mount)
    root = mnt / "snapshots/latest" / str(SRC.resolve()).lstrip("/")
    t0 = time.monotonic()
    while not root.is_dir():
        if time.monotonic() - t0 > 60:
            raise RuntimeError(f"restic mount shows no {root}")
        time.sleep(0.1)
    targets.append(Target("restic", root, mount, umount, cap=CAP,
                          pid_pattern=pattern))


def setup_borg(targets, info):
    repo = WORK / "borg"
    os.environ["BORG_BASE_DIR"] = str(WORK / "borg-home")
    os.environ["BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK"] = "yes"
    mnt = build_once(repo, [
        f"borg init -e none '{repo}'",
        f"borg create '{repo}::bench' '{SRC.resolve()}'"])
    mount = f"borg mount '{repo}::bench' '{mnt}' && {wait_cmd(mnt)}"
    pattern = f"[b]org mount {repo}::"
    umount = umount_cmd(f"borg umount '{mnt}'", pattern)
    sh(mount)
    root = mnt / str(SRC.resolve()).lstrip("/")
    targets.append(Target("borg", root, mount, umount, cap=CAP,
                          pid_pattern=pattern))


def caches_dropped():
    """How often the page cache was dropped since boot (/proc/vmstat)."""
    with open("/proc/vmstat") as f:
        for line in f:
            if line.startswith("drop_pagecache "):
                return int(line.split()[1])
    return 0


def hyperfine(cmd, prepare, runs, warmup):
    """(median, CPU seconds) of @cmd.  A warm measurement (no @prepare)
    during which anything dropped the page cache (another benchmark's
    cold runs: drop_caches is machine-wide) is not warm: measured again,
    up to 3 times."""
    js = WORK / "hf.json"
    args = ["hyperfine", "--shell=sh", "--style", "none",
            "--ignore-failure", "--runs", str(runs), "--warmup", str(warmup),
            "--export-json", str(js)]
    if prepare:
        args += ["--prepare", prepare]
    for attempt in range(3):
        before = caches_dropped()
        subprocess.run(args + [cmd], check=True, stdout=subprocess.DEVNULL)
        if prepare or caches_dropped() == before:
            break
        print(f"  (the page cache was dropped during a warm run of "
              f"`{cmd[:60]}`: measured again)", flush=True)
    r = json.loads(js.read_text())["results"][0]
    return r["median"], r["user"] + r["system"]


def child_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measure(t, cmd, mode, runs):
    """(median seconds, CPU seconds) of @cmd on target @t, or None when
    over the cap."""
    prepare = t.restart_cmd() if mode == "cold" else None
    if t.cap:
        # one probe run (the warm-up of warm runs) decides about the cap
        if prepare:
            sh(prepare)
        t0, c0 = time.monotonic(), child_cpu()
        p = subprocess.run(["timeout", str(t.cap), "sh", "-c", cmd])
        dt, cpu = time.monotonic() - t0, child_cpu() - c0
        if p.returncode == 124 or dt >= t.cap:
            if mode == "cold":
                sh(t.restart_cmd())  # leave it usable
            return None
        if dt > t.cap / 3:
            return dt, cpu  # slow: the probe is the measurement
        runs = max(2, runs - 1)
    return hyperfine(cmd, prepare, runs, 1 if mode == "warm" and
                     not t.cap else 0)


def fmt(m, native, i=0):
    """Cell for measurement @m against @native (i: 0 wall, 1 CPU)."""
    if m is None:
        return f"> {CAP:.0f} s"
    return f"{m[i]:.3f} s ({m[i] / native[i]:.2f}x)"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    build_tree()
    info = {}
    targets = [Target("native", SRC)]
    setup_m365fs(targets, info)
    for peer, fn in (("squashfuse_ll", setup_squashfs),
                     ("restic", setup_restic), ("borg", setup_borg)):
        if peer not in PEERS:
            continue
        if not shutil.which(peer):
            print(f"{peer} is not installed: skipped "
                  f"(tools/deps.sh bench installs it)")
            continue
        fn(targets, info)
    files = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.txt"))
    n_files = sum(1 for p in SRC.rglob("*") if p.is_file())
    random.Random(5).shuffle(files)
    statlist = WORK / "stat.list"
    statlist.write_text("\n".join(files[:10_000]) + "\n")
    rsync_out = WORK / "rsync-out"
    n_big = len(os.listdir(SRC / BIG_FOLDER))
    cases = [
        ("find (metadata walk)", "find {d} -printf '%s %T@\\n' >/dev/null"),
        (f"ls -l {n_big:,}-entry folder",
         f"ls -l '{{d}}/{BIG_FOLDER}' >/dev/null"),
        ("grep -r", f"grep -r {MARKER} {{d}} >/dev/null"),
        ("rsync -a sites/ to disk",
         f"rm -rf {rsync_out}; rsync -a {{d}}/sites/ {rsync_out}/"),
        ("read 200 MB file" if not QUICK else "read 50 MB file",
         f"cat {{d}}/{BIG_FILE} >/dev/null"),
        ("tar of all mail", "tar -cf - -C {d} mailboxes | cat >/dev/null"),
        (f"stat {min(len(files), 10_000):,} files",
         f"cd {{d}} && xargs -d '\\n' -a {statlist} stat -c %s >/dev/null"),
    ]
    only = os.environ.get("BENCH_CASES")
    if only:
        cases = [c for c in cases if any(w in c[0] for w in only.split(","))]
    runs = {"warm": 3, "cold": 2} if QUICK else {"warm": 5, "cold": 3}
    rows = []
    for name, tmpl in cases:
        for mode in ("warm", "cold"):
            meds = []
            for t in targets:
                cmd = tmpl.format(d=f"'{t.root}'")
                meds.append(measure(t, cmd, mode, runs[mode]))
            rows.append((f"{name} ({mode})", meds))
            print(f"{name} ({mode}):" + "".join(
                f"  {t.name} {fmt(m, meds[0])}"
                for t, m in zip(targets, meds)), flush=True)
    # random 4 KiB reads with fio, cold (page cache dropped, daemons
    # restarted), IOPS
    iops = []
    fio_cmd = ("fio --name=rand --filename=FILE --rw=randread --bs=4k "
               "--ioengine=psync --runtime=%d --time_based --readonly "
               "--output-format=json" % (2 if QUICK else 5))
    for t in targets:
        sh(t.restart_cmd())
        fn = str(t.root / BIG_FILE).replace(":", "\\:")
        args = [a if a != "--filename=FILE" else "--filename=" + fn
                for a in fio_cmd.split()]
        p = subprocess.run(args, capture_output=True, text=True, check=True)
        iops.append(json.loads(p.stdout)["jobs"][0]["read"]["iops"])
    print("random 4 KiB reads (fio, cold start, IOPS):" + "".join(
        f"  {t.name} {v:.0f}" for t, v in zip(targets, iops)), flush=True)
    rss = {t.name: t.rss_mib() for t in targets}
    for t in targets:
        if t.umount:
            subprocess.run(t.umount, shell=True)
    # report
    names = [t.name for t in targets]
    rep = ["| case | " + " | ".join(names) + " |",
           "| --- |" + " --- |" * len(targets)]
    for name, meds in rows:
        rep.append(f"| {name} | " + " | ".join(
            fmt(m, meds[0]) for m in meds) + " |")
    cpu = ["", "CPU time of the commands (user + system, mean; the "
           "daemons' own CPU not included), less sensitive to a loaded "
           "machine than the wall times above:", "",
           rep[0], rep[1]]
    for name, meds in rows:
        cpu.append(f"| {name} | " + " | ".join(
            fmt(m, meds[0], 1) for m in meds) + " |")
    rep.append("| random 4 KiB reads, IOPS (cold start) | " + " | ".join(
        f"{v:.0f} ({v / iops[0]:.2f}x)" for v in iops) + " |")
    rep.append("| peak daemon RSS since the last cold start, MiB | " +
               " | ".join("-" if rss[n] is None else str(rss[n])
                          for n in names) + " |")
    rep.append("")
    rep.append(f"Data: {n_files:,} files ({len(files):,} .txt documents, "
               f"{n_big:,} in one folder, 2,000 mails, one "
               f"{(SRC / BIG_FILE).stat().st_size >> 20} MB file); "
               f"m365fs mount time {info['mount_s']:.3f} s; "
               f"peers capped at {CAP:.0f} s per run.")
    rep.append("Ratios: time / native time (IOPS: IOPS / native IOPS). "
               "Cold: `sync; echo 3 > /proc/sys/vm/drop_caches` and the "
               "FUSE daemon restarted before each run.")
    rep += cpu
    rep.append("")
    rep.append("Commands ({d}: the tree's root in each target):")
    for name, tmpl in cases:
        rep.append(f"* {name}: `{tmpl}`")
    rep.append(f"* random 4 KiB reads: `{fio_cmd}` (FILE: {BIG_FILE})")
    rep.append("")
    rep.append("Targets:")
    for t in targets:
        rep.append(f"* {t.name}: {t.root}" +
                   (f" (mount: `{t.mount}`)" if t.mount else ""))
    (OUT / "report.md").write_text("\n".join(rep) + "\n")
    print("\n".join(rep))
    print(f"bench time: {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
