"""m365fs's receive loop (fs/loop.c): workers that read the next request
without sleeping for -o spin=USEC after answering one, one reader of the
device at a time, at most max_threads workers; and the libfuse loop
(-o spin=0) beside it.  Both must answer many readers in parallel with the
right bytes and stop cleanly on unmount and on signals.
"""
import hashlib
import os
import random
import re
import signal
import subprocess
import threading

import pytest

import fsutil
from fsutil import Mount, gen_import, make_tree, tree_digest

pytestmark = pytest.mark.skipif(not fsutil.have_fuse(),
                                reason="needs /dev/fuse and fusermount3")

LOOP_LINE = re.compile(r"loop: (\d+) requests taken spinning, (\d+) after "
                       r"sleeping, .* (\d+) threads")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("loop")
    src = base / "src"
    make_tree(src, seed=11, files_per_folder=25, folders=5, big_mb=4,
              big_folder=400)
    if gen_import(base / "repo", src, check=False).returncode != 0:
        pytest.skip("store or catalog not implemented yet")
    files, _ = tree_digest(src)
    return dict(repo=base / "repo", files=files)


def snapshot_root(mnt):
    return mnt / "snapshots" / os.readlink(mnt / "snapshots/latest")


def read_all_in_parallel(root, files, nthreads=8):
    """@nthreads threads stat and read every file (each in its own
    order); returns the mismatches."""
    errors = []

    def reader(k):
        names = sorted(files)
        random.Random(k).shuffle(names)
        for rel in names:
            want, size, mtime_ns = files[rel]
            p = root / rel
            try:
                st = os.lstat(p)
                if os.path.islink(p):
                    continue
                with open(p, "rb") as f:
                    got = hashlib.file_digest(f, "sha256").hexdigest()
            except OSError as e:
                errors.append(f"{rel}: {e}")
                continue
            if (got, st.st_size, st.st_mtime_ns) != (want, size, mtime_ns):
                errors.append(f"{rel}: differs")

    threads = [threading.Thread(target=reader, args=(k,))
               for k in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.parametrize("spin", ["0", "50", "1000"])
def test_loop_parallel_readers_get_the_right_bytes(tree, tmp_path, spin):
    m = Mount(tree["repo"], tmp_path / "mnt", "-d",
              "-o", f"spin={spin},max_threads=3")
    m.allowed = [r"unique: \d+, error: "]  # libfuse's request trace
    with m:
        root = snapshot_root(m.mnt)
        errors = read_all_in_parallel(root, tree["files"])
        assert not errors, errors[:10]
        # a serial walk afterwards (what the spin is for) sees it all too
        p = subprocess.run(["find", str(root), "-type", "f"],
                           capture_output=True, text=True, check=True)
        assert len(p.stdout.splitlines()) == sum(
            1 for rel in tree["files"] if not os.path.islink(root / rel))
    stats = LOOP_LINE.findall(m.output())
    if spin == "0":
        assert not stats, "-o spin=0 runs libfuse's own loop"
        return
    assert len(stats) == 1, m.output()[-2000:]
    spun, slept, threads = map(int, stats[0])
    # every file was read: at least one request per file went through
    assert spun + slept > len(tree["files"])
    # reads are handed to other workers, but never more than max_threads
    assert 2 <= threads <= 3


@pytest.mark.parametrize("spin", ["0", "50"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT,
                                 signal.SIGHUP])
def test_loop_stops_cleanly_on_signals(tree, tmp_path, spin, sig):
    mnt = tmp_path / "mnt"
    m = Mount(tree["repo"], mnt, "-o", f"spin={spin}").start()
    try:
        # workers exist, some asleep: one reading, the others waiting
        assert not read_all_in_parallel(snapshot_root(mnt), dict(
            list(tree["files"].items())[:60]), nthreads=4)
        m.proc.send_signal(sig)
        rc = m.proc.wait(timeout=20)
    except BaseException:
        m.stop(check=False)
        raise
    m.proc = None
    m.logf.close()
    assert rc == 0, m.output()
    assert not os.path.ismount(mnt), "the daemon left its mount behind"
    assert not [ln for ln in m.output().splitlines()
                if fsutil.BAD_LINES.search(ln)], m.output()


def test_loop_spin_limits(tree, tmp_path):
    (tmp_path / "mnt").mkdir()
    p = subprocess.run([str(fsutil.M365FS), "-o", "spin=5000",
                        str(tree["repo"]), str(tmp_path / "mnt")],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 2, p.stderr
    assert "-o spin=5000" in p.stderr and "at most 1000" in p.stderr
    assert not os.path.ismount(tmp_path / "mnt")
