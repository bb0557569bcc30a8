"""m365fs against the native file system, squashfuse_ll, `restic mount` and
`borg mount` on the same tree, in one run (bench/fs/run.sh).  Medians by
hyperfine; ratios against native.  "cold": page cache dropped and FUSE
daemons restarted before each run; "warm": after a warm-up run.

The data set: the emulator's scale-10 tenant (tests/emulator: 99,000
files, 2.8 GiB in 49 drives, among them a folder of 50,000 small files,
and 50,000 mails, 0.5 GiB) with one 200 MB file of binary data added
through the control port, snapshotted by m365-snapshot into the
repository m365fs mounts.  The native tree is an `rsync -a` copy of the
mounted snapshot; squashfs, restic and borg are built from the native
tree, so every target holds the same files.  Built once (about 4 minutes
here, most of it the snapshot; WORK/dataset.json marks it done,
WORK/setup.json says how long each step took) and reused by later runs.
--quick: the scale-1 tenant (3,000 files, 1,200 in one folder, 5,000
mails) and a 50 MB file.

Two workloads span two snapshots (an investigator's `diff -r` and
`grep -r` across backups): the tenant is changed between them (1 % of
the files rewritten, some added and deleted, mails added), and the
native second tree is an `rsync -a --link-dest` copy, its unchanged
files hard links to the first (as rsnapshot keeps backups).

Peers that are slow on a workload get a time cap per run: BENCH_CAP
seconds (default 30) or twice native's time on that workload, whichever
is longer. One probe run decides; over the cap the table says "> cap"
and the peer is not measured further on that workload.  Restic and borg repositories are unencrypted (restic: a
password file, borg: -e none) and use their default compression.

usage: bench.py OUTDIR [--quick]
environment: BENCH_CASES=stat,read (cases whose name holds a word),
BENCH_PEERS="squashfuse_ll restic borg", BENCH_CAP=seconds,
BENCH_M365FS="old=/path/to/m365fs;spin0=build/bin/m365fs -o spin=0": more
m365fs targets (NAME=COMMAND, the repository and mountpoint appended),
for A/B comparisons of binaries or options in the same run
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
import conftest  # noqa: E402
import fsutil  # noqa: E402
from test_snapshot import Tool  # noqa: E402

QUICK = "--quick" in sys.argv
OUT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build/bench/fs")
WORK = OUT / ("work-quick" if QUICK else "work")
SRC = WORK / "src"
SRC2 = WORK / "src2"  # the second snapshot (unchanged files: hard links)
SCALE = 1 if QUICK else 10
BIG_MB = 50 if QUICK else 200
MARKER = "zanzibar-quartz"  # tests/emulator/tenant.py puts it in some files
CAP = float(os.environ.get("BENCH_CAP", "10" if QUICK else "30"))
PEERS = os.environ.get("BENCH_PEERS",
                       "squashfuse_ll restic borg").split()


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def build_dataset():
    """The data set of every target, built once (dataset.json marks it
    done): the emulator's tenant (SCALE) with one BIG_MB file added,
    snapshotted by m365-snapshot into WORK/repo (m365fs's target), and
    SRC, an `rsync -a` copy of the mounted snapshot (the native target,
    and what the peers back up).  Returns the description."""
    done = WORK / "dataset.json"
    if done.exists():
        ds = json.loads(done.read_text())
        if "changes" in ds:
            print(f"data set: cached in {WORK} (delete it to rebuild)")
            return ds
        print(f"data set in {WORK} has one snapshot: rebuilt with two")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    emu = timed(f"emulator --scale {SCALE}: start",
                lambda: conftest.start_emulator(WORK / "emu", scale=SCALE,
                                                timeout=1200))
    try:
        truth = emu.truth()
        # the 200 MB file: next to the 50,000-entry folder
        wide = [f for f in truth["files"] if "/Wide folder/" in f["path"]]
        if not wide:
            raise RuntimeError(f"the scale-{SCALE} tenant has no "
                               "'Wide folder'")
        big_folder = os.path.dirname(wide[0]["path"])
        big_file = os.path.join(os.path.dirname(big_folder),
                                f"recording {BIG_MB} MB.mp4")
        timed(f"add a {BIG_MB} MB file", lambda: emu.mutate(
            op="create_file", path=big_file, size=BIG_MB << 20, text=False,
            seed=3))
        truth = emu.truth()
        tool = Tool(emu, WORK)
        repo = WORK / "repo"
        tool.init(repo)
        snapshot(tool, repo, "m365-snapshot create (full snapshot)")
        changes = timed("change the tenant",
                        lambda: change_tenant(emu, truth, big_file))
        truth2 = emu.truth()
        snapshot(tool, repo, "m365-snapshot create (second snapshot)")
    finally:
        emu.stop()
    shutil.rmtree(WORK / "emu", ignore_errors=True)
    with fsutil.Mount(repo, WORK / "mnt-copy") as m:
        snaps = fsutil.snapshot_dirs(m.mnt)
        if len(snaps) != 2:
            raise RuntimeError(f"the repository has snapshots {snaps}, "
                               "not two")
        timed("rsync -a of the mounted snapshot to disk",
              lambda: sh(f"rsync -a '{snaps[0]}/' '{SRC}/'"))
        timed("rsync -a --link-dest of the second snapshot",
              lambda: sh(f"rsync -a --link-dest='{SRC.resolve()}' "
                         f"'{snaps[1]}/' '{SRC2}/'"))
    msgs = truth.get("messages", [])
    ds = {"scale": SCALE, "files": len(truth["files"]),
          "file_bytes": sum(f["size"] for f in truth["files"]),
          "messages": len(msgs),
          "message_bytes": sum(m.get("size", 0) for m in msgs),
          "drives": len(truth["drives"]),
          "mailboxes": len({m["mailbox"] for m in msgs}),
          "big_folder": big_folder, "big_file": big_file}
    for tree, t in ((SRC, truth), (SRC2, truth2)):
        n = sum(1 for p in tree.rglob("*") if p.is_file())
        want = len(t["files"]) + len(t.get("messages", []))
        if n != want:
            raise RuntimeError(f"the copy {tree} of the mount has {n} "
                               f"files, the tenant {want} files and "
                               "messages")
    changes["linked"] = sum(1 for p in SRC2.rglob("*")
                            if p.is_file() and p.stat().st_nlink == 2)
    ds["changes"] = changes
    ds["marked"] = len(subprocess.run(
        ["grep", "-rlF", MARKER, str(SRC)], capture_output=True,
        text=True).stdout.splitlines())
    done.write_text(json.dumps(ds, indent=1) + "\n")
    return ds


def snapshot(tool, repo, label):
    """m365-snapshot create into @repo (timed under @label)."""
    p = timed(label, lambda: subprocess.run(
        [tool.bin, "create", "--repo", str(repo), "--connection",
         tool.name, "--json"], env=tool.env, capture_output=True,
        text=True))
    summary = json.loads(p.stdout or "{}")
    if p.returncode != 0 or summary.get("status") != "complete":
        raise RuntimeError(f"m365-snapshot failed ({p.returncode}):\n"
                           f"{p.stdout[-2000:]}{p.stderr[-3000:]}")


def change_tenant(emu, truth, big_file):
    """Between the two snapshots: rewrite 1 % of the files, delete a
    tenth as many, add a fifth as many (5 of them holding MARKER) and
    add mails (3 holding it), all chosen by a fixed seed.  Returns the
    counts."""
    rng = random.Random(11)
    files = [f for f in truth["files"] if f["path"] != big_file]
    n = max(10, len(files) // 100)
    picked = rng.sample(files, n + n // 10)
    for f in picked[:n]:
        emu.mutate(op="modify_file", path=f["path"], text=True,
                   size=f["size"] + rng.randrange(1, 4096),
                   seed=rng.randrange(1 << 62))
    for f in picked[n:]:
        emu.mutate(op="delete", path=f["path"])
    gone = {f["path"] for f in picked[n:]}
    folders = sorted({os.path.dirname(f["path"]) for f in files
                      if f["path"] not in gone})
    added = n // 5
    for i in range(added):
        emu.mutate(op="create_file",
                   path=f"{rng.choice(folders)}/added {i}.txt",
                   size=rng.randrange(1000, 200_000), text=True,
                   marker=i < 5, seed=rng.randrange(1 << 62))
    boxes = sorted({m["mailbox"] for m in truth.get("messages", [])})
    mails = len(truth.get("messages", [])) // 100 if boxes else 0
    for i in range(mails):
        body = f"Added between the snapshots, number {i}."
        emu.mutate(op="create_message", mailbox=rng.choice(boxes),
                   subject=f"Added message {i}",
                   body=body + (f" {MARKER}" if i < 3 else ""))
    return {"modified": n, "deleted": n // 10, "added": added,
            "added_marked": min(5, added), "mails": mails,
            "mails_marked": min(3, mails)}


class Target:
    def __init__(self, name, root, root2, mount=None, umount=None,
                 cap=None, pid_pattern=None):
        # root: the first snapshot's tree, root2: the second's
        self.name, self.root = name, pathlib.Path(root)
        self.root2 = pathlib.Path(root2)
        self.mount, self.umount = mount, umount
        self.cap = cap  # least seconds per run (measure()), None: no cap
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
    "[x]yz" pattern does not match the shell running this).  @cmd is
    tried again every second while it fails: right after a reader was
    killed (a run over the cap) the mount can still be busy."""
    return (f"n=0; until {cmd} 2>/dev/null; do n=$((n+1)); "
            f"[ $n -lt 60 ] || {{ {cmd}; exit 1; }}; sleep 1; done; "
            f"while pgrep -f '{pattern}' >/dev/null; do sleep 0.05; done")


def fresh_mountpoint(d):
    if os.path.ismount(d):
        subprocess.run(["fusermount3", "-u", str(d)])
    d.mkdir(exist_ok=True)


def timed(label, fn):
    """Runs @fn, prints and records (WORK/setup.json) how long it took
    under @label; returns what @fn returned."""
    t0 = time.monotonic()
    r = fn()
    dt = time.monotonic() - t0
    print(f"setup: {label}: {dt:.1f} s", flush=True)
    f = WORK / "setup.json"
    steps = json.loads(f.read_text()) if f.exists() else {}
    steps[label] = round(dt, 1)
    f.write_text(json.dumps(steps, indent=1) + "\n")
    return r


def setup_m365fs(targets, info, name="m365fs", cmd=None):
    repo = WORK / "repo"
    mnt = WORK / f"mnt-{name}"
    cmd = cmd or str(fsutil.M365FS)
    fresh_mountpoint(mnt)
    mount = f"{cmd} '{repo}' '{mnt}' && {wait_cmd(mnt)}"
    umount = f"fusermount3 -u '{mnt}'"
    sh(mount)
    sh(umount)
    t0 = time.monotonic()
    sh(mount)
    info.setdefault("mount_s", time.monotonic() - t0)
    snaps = fsutil.snapshot_dirs(mnt)
    targets.append(Target(name, snaps[0], snaps[1], mount, umount,
                          pid_pattern=f"{cmd} {repo}"))


def setup_squashfs(targets, info):
    # both trees in one image (identical files stored once): /src, /src2
    sqfs = WORK / "trees.sqfs"
    if not sqfs.exists():
        timed("mksquashfs -comp lz4", lambda: sh(
            f"mksquashfs '{SRC}' '{SRC2}' '{sqfs}' -comp lz4 -quiet "
            f"-no-progress >/dev/null"))
    mnt = WORK / "mnt-squashfs"
    fresh_mountpoint(mnt)
    mount = f"squashfuse_ll '{sqfs}' '{mnt}' && {wait_cmd(mnt)}"
    sh(mount)
    targets.append(Target("squashfuse_ll", mnt / SRC.name,
                          mnt / SRC2.name, mount,
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
        f"restic -q -r '{repo}' backup '{SRC.resolve()}' >/dev/null",
        f"restic -q -r '{repo}' backup '{SRC2.resolve()}' >/dev/null"])
    ids = {s["paths"][0]: s["short_id"] for s in json.loads(
        subprocess.run(["restic", "-q", "-r", str(repo), "snapshots",
                        "--json"], check=True, capture_output=True,
                       text=True).stdout)}
    # restic mount stays in the foreground: detach it; it exits when
    # unmounted
    mount = (f"setsid restic -q -r '{repo}' mount '{mnt}' "
             f">'{WORK}/restic-mount.log' 2>&1 </dev/null & {wait_cmd(mnt)}")
    pattern = f"[r]estic -q -r {repo} mount"
    umount = umount_cmd(f"fusermount3 -u '{mnt}'", pattern)
    sh(mount)
    root, root2 = (mnt / "ids" / ids[str(d.resolve())] /
                   str(d.resolve()).lstrip("/") for d in (SRC, SRC2))
    t0 = time.monotonic()
    while not root.is_dir():
        if time.monotonic() - t0 > 60:
            raise RuntimeError(f"restic mount shows no {root}")
        time.sleep(0.1)
    targets.append(Target("restic", root, root2, mount, umount, cap=CAP,
                          pid_pattern=pattern))


def setup_borg(targets, info):
    repo = WORK / "borg"
    os.environ["BORG_BASE_DIR"] = str(WORK / "borg-home")
    os.environ["BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK"] = "yes"
    mnt = build_once(repo, [
        f"borg init -e none '{repo}'",
        f"borg create '{repo}::bench' '{SRC.resolve()}'",
        f"borg create '{repo}::bench2' '{SRC2.resolve()}'"])
    # every archive: /bench and /bench2
    mount = f"borg mount '{repo}' '{mnt}' && {wait_cmd(mnt)}"
    pattern = f"[b]org mount {repo} "
    umount = umount_cmd(f"borg umount '{mnt}'", pattern)
    sh(mount)
    targets.append(Target("borg", mnt / "bench" /
                          str(SRC.resolve()).lstrip("/"),
                          mnt / "bench2" / str(SRC2.resolve()).lstrip("/"),
                          mount, umount, cap=CAP, pid_pattern=pattern))


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


def measure(t, cmd, mode, runs, native):
    """(median seconds, CPU seconds) of @cmd on target @t, or (None, cap)
    when over its cap: t.cap or twice @native's seconds, the longer."""
    prepare = t.restart_cmd() if mode == "cold" else None
    if t.cap:
        cap = max(t.cap, 2 * native[0]) if native else t.cap
        # one probe run (the warm-up of warm runs) decides about the cap
        if prepare:
            sh(prepare)
        t0, c0 = time.monotonic(), child_cpu()
        p = subprocess.run(["timeout", f"{cap:.3f}", "sh", "-c", cmd])
        dt, cpu = time.monotonic() - t0, child_cpu() - c0
        if p.returncode == 124 or dt >= cap:
            if mode == "cold":
                sh(t.restart_cmd())  # leave it usable
            return None, cap
        if dt > cap / 3:
            return dt, cpu  # slow: the probe is the measurement
        runs = max(2, runs - 1)
    return hyperfine(cmd, prepare, runs, 1 if mode == "warm" and
                     not t.cap else 0)


def fmt(m, native, i=0):
    """Cell for measurement @m against @native (i: 0 wall, 1 CPU)."""
    if m[0] is None:
        return f"> {m[1]:.3g} s"
    return f"{m[i]:.3f} s ({m[i] / native[i]:.2f}x)"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    ds = build_dataset()
    big_folder, big_file = ds["big_folder"], ds["big_file"]
    info = {}
    targets = [Target("native", SRC, SRC2)]
    setup_m365fs(targets, info)
    for ab in filter(None, os.environ.get("BENCH_M365FS", "").split(";")):
        name, _, cmd = ab.partition("=")
        setup_m365fs(targets, info, name.strip(), cmd.strip())
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
    n_big = len(os.listdir(SRC / big_folder))
    cases = [
        ("find (metadata walk)", "find {d} -printf '%s %T@\\n' >/dev/null"),
        (f"ls -l {n_big:,}-entry folder",
         f"ls -l '{{d}}/{big_folder}' >/dev/null"),
        ("grep -r", f"grep -r {MARKER} {{d}} >/dev/null"),
        ("rsync -a sites/ to disk",
         f"rm -rf {rsync_out}; rsync -a {{d}}/sites/ {rsync_out}/"),
        (f"read {BIG_MB} MB file", f"cat '{{d}}/{big_file}' >/dev/null"),
        ("tar of all mail", "tar -cf - -C {d} mailboxes | cat >/dev/null"),
        (f"stat {min(len(files), 10_000):,} files",
         f"cd {{d}} && xargs -d '\\n' -a {statlist} stat -c %s >/dev/null"),
        # across two snapshots ({d2}: the second); diff exits 1: changes
        ("diff -rq of two snapshots", "diff -rq {d} {d2} >/dev/null; "
         "test $? = 1"),
        ("grep -r over two snapshots", f"grep -r {MARKER} {{d}} {{d2}} "
         ">/dev/null"),
    ]
    only = os.environ.get("BENCH_CASES")
    if only:
        cases = [c for c in cases if any(w in c[0] for w in only.split(","))]
    runs = {"warm": 3, "cold": 2} if QUICK else {"warm": 5, "cold": 3}
    rows = []
    load0 = f"{os.getloadavg()[0]:.2f}"
    for name, tmpl in cases:
        for mode in ("warm", "cold"):
            meds = []
            for t in targets:
                cmd = tmpl.format(d=f"'{t.root}'", d2=f"'{t.root2}'")
                # native comes first
                meds.append(measure(t, cmd, mode, runs[mode],
                                    meds[0] if meds else None))
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
        fn = str(t.root / big_file).replace(":", "\\:")
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
    ch = ds["changes"]
    rep.append(f"Data: the emulator's scale-{ds['scale']} tenant, "
               f"snapshotted by m365-snapshot: {ds['files']:,} files "
               f"({ds['file_bytes'] / 2**30:.2f} GiB in {ds['drives']} "
               f"drives) and {ds['messages']:,} mails "
               f"({ds['message_bytes'] / 2**30:.2f} GiB in "
               f"{ds['mailboxes']} mailboxes), {n_files:,} files in all "
               f"({len(files):,} .txt, {n_big:,} in one folder, "
               f"{ds['marked']} holding the word grep looks for, one "
               f"{(SRC / big_file).stat().st_size >> 20} MB file added "
               f"before the snapshot); the native tree is an `rsync -a` "
               f"copy of the mounted snapshot, the peers back that up. "
               f"Between the two snapshots {ch['modified']:,} files were "
               f"rewritten, {ch['deleted']:,} deleted, {ch['added']:,} "
               f"added ({ch['added_marked']} holding the word) and "
               f"{ch['mails']:,} mails added ({ch['mails_marked']} holding "
               f"it); the native second tree is an `rsync -a --link-dest` "
               f"copy ({ch['linked']:,} files hard links to the first), "
               f"squashfuse_ll's image holds both trees, restic and borg "
               f"a snapshot or archive of each. "
               f"m365fs mount time {info['mount_s']:.3f} s; "
               f"peers capped per run at {CAP:.0f} s or twice native's "
               f"time; load average "
               f"before/after: {load0} / {os.getloadavg()[0]:.2f}.")
    steps = json.loads((WORK / "setup.json").read_text())
    rep.append("Setup (once; later runs reuse it): " + "; ".join(
        f"{k} {v:.0f} s" for k, v in steps.items()) + ".")
    rep.append("Ratios: time / native time (IOPS: IOPS / native IOPS). "
               "Cold: `sync; echo 3 > /proc/sys/vm/drop_caches` and the "
               "FUSE daemon restarted before each run.")
    rep += cpu
    rep.append("")
    rep.append("Commands ({d}: the first snapshot's tree in each "
               "target, {d2}: the second's):")
    for name, tmpl in cases:
        rep.append(f"* {name}: `{tmpl}`")
    rep.append(f"* random 4 KiB reads: `{fio_cmd}` (FILE: {big_file})")
    rep.append("")
    rep.append("Targets:")
    for t in targets:
        rep.append(f"* {t.name}: {t.root}, {t.root2}" +
                   (f" (mount: `{t.mount}`)" if t.mount else ""))
    (OUT / "report.md").write_text("\n".join(rep) + "\n")
    print("\n".join(rep))
    print(f"bench time: {time.monotonic() - t0:.0f} s")


if __name__ == "__main__":
    main()
