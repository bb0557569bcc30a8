"""m365fs holds no file descriptor per inode or per open file.

The open-file limit on these machines is 20,000 and cannot be raised: a
daemon that keeps a descriptor per inode (libfuse's passthrough_ll) fails
after about 20,000 files.  Here more than 25,000 files are looked up,
opened, read and stat'ed, up to 12,000 of them open at the same time, and
the daemon's /proc/PID/fd must stay at a small, fixed size.
"""
import os
import resource

import pytest

import fsutil
from fsutil import Mount, gen_import, make_tree

pytestmark = pytest.mark.skipif(not fsutil.have_fuse(),
                                reason="needs /dev/fuse and fusermount3")

N_FILES = 26_000
OPEN_AT_ONCE = 12_000
FD_LIMIT = 64  # pack pool (32), catalog connections, /dev/fuse, stdio


def daemon_fds(m):
    return len(os.listdir(f"/proc/{m.proc.pid}/fd"))


def test_fs_fds_bounded(tmp_path):
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    at_once = min(OPEN_AT_ONCE, soft - 200)
    src = tmp_path / "src"
    make_tree(src, folders=1, files_per_folder=5, mails=5,
              big_folder=N_FILES)
    gen_import(tmp_path / "repo", src)
    with Mount(tmp_path / "repo", tmp_path / "mnt") as m:
        base = daemon_fds(m)
        big = (m.mnt / "snapshots/latest/onedrive/megan@contoso.example"
               / "Big folder")
        names = sorted(os.listdir(big))
        assert len(names) == N_FILES
        most = base
        for lo in range(0, N_FILES, at_once):
            fds = []
            try:
                for name in names[lo:lo + at_once]:
                    fd = os.open(big / name, os.O_RDONLY)
                    fds.append(fd)
                    i = int(name[5:11])
                    assert os.pread(fd, 64, 0) == f"item {i}\n".encode()
                    assert os.fstat(fd).st_size == len(f"item {i}\n")
                most = max(most, daemon_fds(m))
            finally:
                for fd in fds:
                    os.close(fd)
        for name in names:  # stat every one again (by path)
            assert os.stat(big / name).st_size > 0
        most = max(most, daemon_fds(m))
        assert most <= FD_LIMIT, (
            f"the daemon held {most} descriptors (at start: {base}) "
            f"with {at_once} files open: {os.listdir(f'/proc/{m.proc.pid}/fd')}")
