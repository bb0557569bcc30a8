"""A real third-party Graph client (rclone's onedrive backend) lists,
copies and hash-checks a SharePoint library served by the emulator
(tests/emulator/rclone-check.sh: private mount + network namespace)."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

SCRIPT = ROOT / "tests" / "emulator" / "rclone-check.sh"


def namespaces_work():
    cmd = ["unshare", "-m", "-n", "true"] if os.geteuid() == 0 else \
        ["unshare", "-m", "-n", "-r", "true"]
    try:
        return subprocess.run(cmd, capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(shutil.which("rclone") is None,
                    reason="rclone is not installed")
def test_rclone_lists_copies_and_checks_hashes(tmp_path):
    if not namespaces_work():
        pytest.skip("no mount/network namespaces here (unshare failed)")
    r = subprocess.run([str(SCRIPT), str(tmp_path / "rc"), "0"],
                       capture_output=True, text=True, timeout=600)
    log = tmp_path / "rc" / "emulator.log"
    assert r.returncode == 0, "%s\n%s\n%s" % (
        r.stdout, r.stderr, log.read_text() if log.exists() else "")
    assert "files listed, copied and hash-checked" in r.stdout


def test_namespace_does_not_keep_other_fuse_mounts_alive(tmp_path):
    """A private mount namespace (rclone-check.sh, bench/live,
    bench/snapshot) starts with a copy of every mount: detach-fuse.sh drops
    the FUSE ones, so a daemon unmounted outside exits at once instead of
    when the namespace ends."""
    if os.geteuid() != 0 or not namespaces_work():
        pytest.skip("needs root and mount namespaces")
    import fsutil
    src = tmp_path / "src"
    fsutil.write(src / "onedrive/a/f.txt", "x")
    fsutil.gen_import(tmp_path / "repo", src)
    detach = ROOT / "tests" / "emulator" / "detach-fuse.sh"
    for use_detach, exits in ((True, True), (False, False)):
        m = fsutil.Mount(tmp_path / "repo", tmp_path / f"m{use_detach}")
        m.start()
        inner = (f"'{detach}' && " if use_detach else "") + \
            "echo ready && exec sleep 30"
        env = dict(os.environ,
                   M365_OUTER_MNTNS=os.readlink("/proc/self/ns/mnt"))
        ns = subprocess.Popen(["unshare", "-m", "sh", "-c", inner], env=env,
                              stdout=subprocess.PIPE, text=True)
        try:
            assert ns.stdout.readline().strip() == "ready"
            subprocess.run(["fusermount3", "-u", str(m.mnt)], check=True)
            try:
                m.proc.wait(timeout=5)
                exited = True
            except subprocess.TimeoutExpired:
                exited = False
            assert exited == exits
        finally:
            ns.kill()
            ns.wait()
            m.proc.wait(timeout=20)
            m.proc = None
            m.logf.close()
