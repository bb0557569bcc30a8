"""m365fs against the native file system and squashfuse_ll on the same
tree, in one run (bench/fs/run.sh).  Medians by hyperfine; ratios against
native.  "cold": page cache dropped and FUSE daemons restarted before each
run; "warm": after a warm-up run.

usage: bench.py OUTDIR [--quick]
"""
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]
                       / "tests/integration"))
import fsutil  # noqa: E402

QUICK = "--quick" in sys.argv
OUT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build/bench/fs")
WORK = OUT / "work"
SRC = WORK / "src"
BIG_FOLDER = "onedrive/megan@contoso.example/Big folder"
BIG_FILE = "sites/contoso.example/sites/hr/Documents/big.bin"
MARKER = "zebrafish"


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
    def __init__(self, name, root, mount=None, umount=None):
        self.name, self.root = name, pathlib.Path(root)
        self.mount, self.umount = mount, umount

    def restart_cmd(self):
        """Shell command run before each cold measurement."""
        parts = []
        if self.umount:
            parts.append(self.umount)
        parts.append("sync; echo 3 > /proc/sys/vm/drop_caches")
        if self.mount:
            parts.append(self.mount)
        return "; ".join(parts)


def wait_mounted(path, timeout=10):
    t0 = time.monotonic()
    while not os.path.ismount(path):
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"{path} did not mount")
        time.sleep(0.01)


def setup_targets():
    repo, sqfs = WORK / "repo", WORK / "tree.sqfs"
    if not (WORK / "repo.done").exists():
        shutil.rmtree(repo, ignore_errors=True)
        t0 = time.monotonic()
        fsutil.gen_import(repo, SRC, small_chunks=False)
        print(f"import into the repository: {time.monotonic() - t0:.1f} s")
        (WORK / "repo.done").touch()
    if not sqfs.exists():
        sh(f"mksquashfs '{SRC}' '{sqfs}' -comp lz4 -quiet -no-progress "
           f">/dev/null")
    m_mnt, q_mnt = WORK / "mnt-m365fs", WORK / "mnt-squashfs"
    for d in (m_mnt, q_mnt):
        if os.path.ismount(d):
            sh(f"fusermount3 -u '{d}'")
        d.mkdir(exist_ok=True)
    m_mount = (f"{fsutil.M365FS} '{repo}' '{m_mnt}' && "
               f"while ! mountpoint -q '{m_mnt}'; do sleep 0.01; done")
    q_mount = (f"squashfuse_ll '{sqfs}' '{q_mnt}' && "
               f"while ! mountpoint -q '{q_mnt}'; do sleep 0.01; done")
    sh(m_mount)
    t0 = time.monotonic()
    sh(f"fusermount3 -u '{m_mnt}'")
    sh(m_mount)
    mount_s = time.monotonic() - t0
    sh(q_mount)
    snap = m_mnt / "snapshots" / os.readlink(m_mnt / "snapshots/latest")
    return mount_s, [
        Target("native", SRC),
        Target("m365fs", snap, m_mount,
               f"fusermount3 -u '{m_mnt}'"),
        Target("squashfuse_ll", q_mnt, q_mount, f"fusermount3 -u '{q_mnt}'"),
    ]


def hyperfine(cmds, prepare, runs, warmup):
    js = WORK / "hf.json"
    args = ["hyperfine", "--shell=sh", "--style", "none",
            "--ignore-failure", "--runs", str(runs), "--warmup", str(warmup),
            "--export-json", str(js)]
    if prepare:
        args += ["--prepare", prepare]
    subprocess.run(args + cmds, check=True, stdout=subprocess.DEVNULL)
    return [r["median"] for r in json.loads(js.read_text())["results"]]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    build_tree()
    mount_s, targets = setup_targets()
    files = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.txt"))
    random.Random(5).shuffle(files)
    statlist = WORK / "stat.list"
    statlist.write_text("\n".join(files[:10_000]) + "\n")
    rsync_out = WORK / "rsync-out"
    cases = [
        ("find (metadata walk)", "find {d} -printf '%s %T@\\n' >/dev/null"),
        ("ls -l 50,000-entry folder",
         f"ls -l '{{d}}/{BIG_FOLDER}' >/dev/null"),
        ("grep -r", f"grep -r {MARKER} {{d}} >/dev/null"),
        ("rsync -a sites/ to disk",
         f"rm -rf {rsync_out}; rsync -a {{d}}/sites/ {rsync_out}/"),
        ("read 200 MB file", f"cat {{d}}/{BIG_FILE} >/dev/null"),
        ("tar of all mail", "tar -cf - -C {d} mailboxes | cat >/dev/null"),
        ("stat 10,000 files",
         f"cd {{d}} && xargs -d '\\n' -a {statlist} stat -c %s >/dev/null"),
    ]
    runs_warm, runs_cold = (3, 2) if QUICK else (5, 3)
    rows = []
    for name, tmpl in cases:
        for mode in ("warm", "cold"):
            meds = []
            for t in targets:
                cmd = tmpl.format(d=f"'{t.root}'")
                if mode == "warm":
                    m = hyperfine([cmd], None, runs_warm, 1)[0]
                else:
                    m = hyperfine([cmd], t.restart_cmd(), runs_cold, 0)[0]
                meds.append(m)
            rows.append((f"{name} ({mode})", meds))
            line = f"{name} ({mode}):" + "".join(
                f"  {t.name} {m:.3f}s ({m / meds[0]:.2f}x)"
                for t, m in zip(targets, meds))
            print(line, flush=True)
    # random 4 KiB reads with fio, cold (page cache dropped, daemons
    # restarted), IOPS
    iops = []
    for t in targets:
        sh(t.restart_cmd())
        p = subprocess.run(
            ["fio", "--name=rand",
             "--filename=" + str(t.root / BIG_FILE).replace(":", "\\:"),
             "--rw=randread", "--bs=4k", "--ioengine=psync",
             "--runtime=5" if not QUICK else "--runtime=2", "--time_based",
             "--readonly", "--output-format=json"],
            capture_output=True, text=True, check=True)
        iops.append(json.loads(p.stdout)["jobs"][0]["read"]["iops"])
    print("random 4 KiB reads (fio, cold start, IOPS):" + "".join(
        f"  {t.name} {v:.0f}" for t, v in zip(targets, iops)))
    pid = subprocess.run(["pgrep", "-f", f"{fsutil.M365FS} "],
                         capture_output=True, text=True).stdout.split()
    rss = 0
    for line in open(f"/proc/{pid[0]}/status") if pid else []:
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1]) // 1024
    for t in targets:
        if t.umount:
            subprocess.run(t.umount, shell=True)
    # report
    rep = ["| case | " + " | ".join(t.name for t in targets) + " |",
           "| --- |" + " --- |" * len(targets)]
    for name, meds in rows:
        rep.append(f"| {name} | " + " | ".join(
            f"{m:.3f} s ({m / meds[0]:.2f}x)" for m in meds) + " |")
    rep.append("| random 4 KiB reads, IOPS | " +
               " | ".join(f"{v:.0f}" for v in iops) + " |")
    rep.append(f"\nm365fs mount time: {mount_s:.3f} s; peak RSS of the "
               f"daemon since its last (cold) start: {rss} MiB; files: "
               f"{len(files)} .txt + mail + 200 MB file")
    (OUT / "report.md").write_text("\n".join(rep) + "\n")
    print("\n".join(rep))


if __name__ == "__main__":
    main()
