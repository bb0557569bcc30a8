#!/usr/bin/python3
"""HTTP/1.1 vs HTTP/2 cost of the emulator, measured with curl.

    /usr/bin/python3 tests/emulator/bench_http.py [--rounds N] [--mib M]

Starts a scale-0 emulator with EMU_H2_TUNE=0 (plain hypercorn) and one with
the transport.py tuning (the default), and for each protocol runs 300
small GETs on one connection, 3 downloads of an M MiB file and 2 uploads
of 30 MiB in 10 MiB fragments.  Prints the emulator's CPU seconds
(utime + stime: a loaded machine disturbs them less than wall time) and
the wall time of each.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from conftest import start_emulator  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def curl(emu, proto, *args):
    p = subprocess.run(["curl", "-sS", proto, "--cacert", emu.ca_file] +
                       list(args), capture_output=True, text=True)
    if p.returncode:
        raise SystemExit("curl failed: %s" % p.stderr)
    return p.stdout


def bench(tune, work, mib):
    os.environ["EMU_H2_TUNE"] = tune
    emu = start_emulator(os.path.join(work, "emu-" + tune))
    try:
        drive = emu.get_json("/users/%s/drive" % emu.admin_user)["id"]
        made = emu.mutate(op="create_file", drive=drive, path="/big.bin",
                          size=mib << 20, text=False, conflict="replace")
        url = emu.get_json("/drives/%s/items/%s" % (
            drive, made["id"]))["@microsoft.graph.downloadUrl"]
        curl(emu, "--http1.1", "-o", "/dev/null", url)  # hashes, caches
        cfg = os.path.join(work, "urls-%s.cfg" % tune)
        with open(cfg, "w") as f:
            f.write('header = "Authorization: Bearer %s"\n' % emu.token())
            for _ in range(300):
                f.write('url = "%s/v1.0/sites/root"\noutput = "/dev/null"\n'
                        % emu.graph_url)
        frag = 10 << 20
        blob = os.path.join(work, "fragment.bin")
        if not os.path.exists(blob):
            with open(blob, "wb") as f:
                f.write(os.urandom(frag))
        for proto in ("--http1.1", "--http2"):
            def small():
                out = curl(emu, proto, "-K", cfg, "-w", "%{http_code}\n")
                assert out.split().count("200") == 300, out[:300]

            def down():
                for _ in range(3):
                    n = curl(emu, proto, "-o", "/dev/null", "-w",
                             "%{size_download}", url)
                    assert int(n) == mib << 20

            def up():
                for i in range(2):
                    st, _, body = emu.request(
                        "POST", "/drives/%s/root:/up%d.bin:/"
                        "createUploadSession" % (drive, i),
                        body={"item": {"@microsoft.graph.conflictBehavior":
                                       "replace"}})
                    assert st == 200, body
                    upload = json.loads(body)["uploadUrl"]
                    for k in range(3):
                        code = curl(emu, proto, "-X", "PUT", "--data-binary",
                                    "@" + blob, "-H", "Content-Range: bytes "
                                    "%d-%d/%d" % (k * frag, (k + 1) * frag - 1,
                                                  3 * frag), "-o",
                                    "/dev/null", "-w", "%{http_code}",
                                    upload)
                        assert code in ("200", "201", "202"), code

            for label, fn in (("300 small GETs", small),
                              ("3 x %d MiB down" % mib, down),
                              ("2 x 30 MiB up", up)):
                c0, t0 = cpu(emu.proc.pid), time.time()
                fn()
                print("h2-tune=%s %-9s %-17s cpu %5.2f s  wall %5.2f s" % (
                    tune, proto[2:], label, cpu(emu.proc.pid) - c0,
                    time.time() - t0), flush=True)
    finally:
        emu.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--mib", type=int, default=64)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="emu-bench-") as work:
        for _ in range(a.rounds):
            for tune in ("0", "1"):
                bench(tune, work, a.mib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
