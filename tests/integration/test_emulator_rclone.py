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
