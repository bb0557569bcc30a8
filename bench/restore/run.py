#!/usr/bin/python3
"""Restore benchmark: cp -r of N small files (and one large file) into
MOUNT/restore/ against the emulator; prints the time until cp returns
(everything spooled and queued) and until the tenant has every file.

    /usr/bin/python3 bench/restore/run.py [--files 500] [--size 4096]
        [--big-mb 64] [--threads 4]
(build first: make -j2; uses build/ or $M365_BUILD)
"""
import argparse
import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/integration"))
from conftest import start_emulator  # noqa: E402
from test_restore import Env, libraries, truth_files, wait_done  # noqa


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--big-mb", type=int, default=64)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-restore-"))
    emu = start_emulator(tmp / "emu", scale=0)
    try:
        env = Env(emu, tmp)
        src = tmp / "src" / "bench"
        src.mkdir(parents=True)
        want = {}
        for i in range(a.files):
            d = os.urandom(a.size)
            (src / ("f%05d.bin" % i)).write_bytes(d)
            want["bench/f%05d.bin" % i] = hashlib.sha256(d).hexdigest()
        big = os.urandom(1 << 20) * a.big_mb
        lib = libraries(emu)[0]
        with env.mount("-o", "restore_threads=%d" % a.threads) as m:
            t0 = time.monotonic()
            subprocess.run(["cp", "-r", str(src), str(m.mnt / "restore" / lib)],
                           check=True)
            t1 = time.monotonic()
            wait_done(m.mnt, timeout=3600)
            t2 = time.monotonic()
            (m.mnt / "restore" / lib / "big.bin").write_bytes(big)
            t3 = time.monotonic()
            wait_done(m.mnt, timeout=3600)
            t4 = time.monotonic()
        got = truth_files(emu, lib)
        ok = all(got.get(k) == v for k, v in want.items()) and \
            got.get("big.bin") == hashlib.sha256(big).hexdigest()
        print("files: %d x %d B: cp returned after %.2fs, all restored "
              "after %.2fs (%.0f files/s)" % (a.files, a.size, t1 - t0,
                                              t2 - t0, a.files / (t2 - t0)))
        print("large: %d MiB: written in %.2fs, restored after %.2fs "
              "(%.1f MiB/s)" % (a.big_mb, t3 - t2, t4 - t2,
                                a.big_mb / (t4 - t2)))
        print("content check:", "ok" if ok else "MISMATCH")
        return 0 if ok else 1
    finally:
        emu.stop()


if __name__ == "__main__":
    sys.exit(main())
