"""Helpers for the m365fs (FUSE daemon) tests: build source trees, import
them as snapshots with build/tests/test_fs_gen, mount and unmount.

Owned by the fs engineer; imported by tests/integration/test_fs*.py and
bench/fs/run.sh (through bench/fs/bench.py).
"""
import contextlib
import hashlib
import os
import pathlib
import random
import re
import shutil
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("M365_BUILD", ROOT / "build"))
M365FS = BUILD / "bin" / "m365fs"
GEN = BUILD / "tests" / "test_fs_gen"

# The daemon's peak RSS goal (issue 6: 100 MB).  Under the sanitizers
# memory is not representative (shadow memory, the allocator's
# quarantine of freed chunk buffers): twice the goal still catches leaks.
RSS_LIMIT_KIB = (200 if os.environ.get("M365_SANITIZE") else 100) * 1024

# Daemon stderr lines that are never acceptable.
BAD_LINES = re.compile(
    r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|"
    r"runtime error:|\berror\b|\bwarning\b|segfault|Segmentation",
    re.IGNORECASE)


def have_fuse():
    return os.path.exists("/dev/fuse") and shutil.which("fusermount3")


def gen_import(repo, src, key=None, encrypt=False, small_chunks=True,
               partial=None, check=True):
    """One snapshot of tree @src into @repo; returns the process."""
    cmd = [str(GEN), "import", str(repo), str(src)]
    if key:
        cmd += ["--key", str(key)]
    if encrypt:
        cmd += ["--encrypt"]
    if small_chunks:
        cmd += ["--small-chunks"]
    if partial:
        cmd += ["--partial", partial]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n"
                             f"{p.stdout}{p.stderr}")
    return p


def gen_damaged(repo, key=None):
    """Paths (in the newest snapshot) of files holding damaged chunks."""
    cmd = [str(GEN), "damaged", str(repo)]
    if key:
        cmd += ["--key", str(key)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return set(p.stdout.split("\n")) - {""}


def write(path, data, mtime=None):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    if mtime is not None:
        os.utime(path, ns=(mtime, mtime))


def eml(subject, body, when):
    return (f"From: Megan <megan@contoso.example>\r\n"
            f"To: Adele <adele@contoso.example>\r\n"
            f"Subject: {subject}\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(when))}\r\n"
            f"Message-ID: <{abs(hash(subject))}@contoso.example>\r\n"
            f"\r\n{body}\r\n")


def make_tree(root, seed=1, files_per_folder=20, folders=6, big_mb=3,
              big_folder=0, mails=40, marker="zebrafish"):
    """A tenant-shaped tree: sites/, onedrive/, mailboxes/ with files of
    many sizes, mtimes with nanoseconds, a big file, .eml messages and an
    optional folder of @big_folder small files.  Every seventh file holds
    @marker.  Returns the list of relative paths holding the marker."""
    rnd = random.Random(seed)
    root = pathlib.Path(root)
    marked = []
    base = 1_700_000_000
    n = 0
    for top, sub in (("sites", "contoso.example/sites/hr/Documents"),
                     ("onedrive", "adele@contoso.example"),
                     ("onedrive", "megan@contoso.example")):
        for f in range(folders):
            d = root / top / sub / f"Folder {f}"
            for i in range(files_per_folder):
                n += 1
                size = rnd.choice([0, 1, 100, 4095, 4096, 5000, 70_000,
                                   300_000])
                text = (f"file {n} in {d.name}\n" * (size // 20 + 1))
                data = text.encode()[:size] if size else b""
                if n % 7 == 0:
                    data += f"\nthe {marker} swims here\n".encode()
                    marked.append(str((d / f"doc {i}.txt").relative_to(root)))
                mt = base + rnd.randrange(0, 30_000_000) * 10 + 0
                write(d / f"doc {i}.txt", data,
                      mt * 1_000_000_000 + rnd.randrange(0, 10**9))
    # a big file of random (incompressible) and repeated parts
    big = root / "sites/contoso.example/sites/hr/Documents/big.bin"
    blob = rnd.randbytes(1 << 20)
    write(big, blob * big_mb + rnd.randbytes(12345),
          (base + 5) * 1_000_000_000)
    # mail
    for m in range(mails):
        when = base + m * 3600
        folder = "Inbox" if m % 3 else "Inbox/Projects"
        subj = f"status report {m}"
        body = f"hello {m}\n" * (m * 10 + 1)
        if m % 5 == 0:
            body += f"\nsee the {marker}\n"
            marked.append(f"mailboxes/adele@contoso.example/{folder}/"
                          f"{time.strftime('%Y-%m-%d %H%M', time.gmtime(when))} {subj} [{m:08x}].eml")
        write(root / "mailboxes/adele@contoso.example" / folder /
              f"{time.strftime('%Y-%m-%d %H%M', time.gmtime(when))} {subj} [{m:08x}].eml",
              eml(subj, body, when), when * 1_000_000_000)
    (root / "mailboxes/adele@contoso.example/Empty folder").mkdir(
        parents=True, exist_ok=True)
    if big_folder:
        d = root / "onedrive/megan@contoso.example/Big folder"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(big_folder):
            p = d / f"item {i:06d}.txt"
            p.write_bytes(f"item {i}\n".encode())
            os.utime(p, ns=((base + i) * 10**9, (base + i) * 10**9))
    return marked


def tree_digest(root):
    """{relative path: (sha256, size, mtime_ns)} of files, + dirs set."""
    root = pathlib.Path(root)
    files, dirs = {}, set()
    for dp, dns, fns in os.walk(root):
        for dn in dns:
            dirs.add(os.path.relpath(os.path.join(dp, dn), root))
        for fn in fns:
            p = os.path.join(dp, fn)
            st = os.lstat(p)
            with open(p, "rb") as f:
                h = hashlib.file_digest(f, "sha256").hexdigest()
            files[os.path.relpath(p, root)] = (h, st.st_size, st.st_mtime_ns)
    return files, dirs


def snapshot_id(d):
    """The id of the snapshot whose directory is @d."""
    return int(os.getxattr(d, "user.m365.snapshot.id"))


def snapshot_dirs(mnt):
    """The snapshot directories of mount @mnt, oldest first: ordered by
    the snapshot's id (those started in one second share a time, and
    their "~id" suffixes do not sort as numbers)."""
    top = pathlib.Path(mnt) / "snapshots"
    return sorted((top / n for n in os.listdir(top) if n != "latest"),
                  key=snapshot_id)


def thread_stacks(pid):
    """What the threads of @pid are doing: gdb's backtraces when gdb is
    installed, else each thread's kernel wait channel."""
    if shutil.which("gdb"):
        r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx", "-ex",
                            "thread apply all bt"], capture_output=True,
                           text=True, timeout=60, check=False)
        return "\n".join(ln for ln in r.stdout.splitlines()
                         if ln.startswith(("#", "Thread")))
    out = []
    for t in sorted(pathlib.Path(f"/proc/{pid}/task").glob("*")):
        try:
            out.append(f"{t.name} {(t / 'comm').read_text().strip()} "
                       f"{(t / 'wchan').read_text().strip()}")
        except OSError:
            pass
    return "\n".join(out)


class Mount:
    """m365fs REPO MNT in the foreground; stderr kept in a file."""

    def __init__(self, repo, mnt, *opts, log=None, env=None):
        self.repo, self.mnt = pathlib.Path(repo), pathlib.Path(mnt)
        self.opts = list(opts)
        self.log = pathlib.Path(log or f"{mnt}.log")
        self.env = env
        self.proc = None
        self.allowed = []  # regexes of expected error lines

    def start(self, timeout=10):
        self.mnt.mkdir(parents=True, exist_ok=True)
        self.logf = open(self.log, "w")
        cmd = [str(M365FS), "-f", *self.opts, str(self.repo), str(self.mnt)]
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=self.env)
        while not os.path.ismount(self.mnt):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"m365fs exited {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() - t0 > timeout:
                raise AssertionError("mount did not appear")
            time.sleep(0.01)
        self.mount_seconds = time.monotonic() - t0
        return self

    def output(self):
        if not self.logf.closed:
            self.logf.flush()
        return self.log.read_text(errors="replace")

    def rss_kib(self):
        """Peak resident set size of the daemon (VmHWM), KiB."""
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def stop(self, check=True):
        if self.proc is None:
            return
        umount_msg = ""
        t0 = time.monotonic()
        while os.path.ismount(self.mnt):
            # "busy" while a process of the test (a reader being torn
            # down, an exiting child) still holds something in the mount:
            # try again, and at last detach it (the daemon then exits)
            lazy = time.monotonic() - t0 > 10
            r = subprocess.run(["fusermount3", "-u"] + (["-z"] if lazy else [])
                               + [str(self.mnt)], capture_output=True,
                               text=True, check=False)
            if r.returncode == 0:
                break
            umount_msg = r.stderr.strip()
            if lazy:
                break
            time.sleep(0.2)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            stacks = thread_stacks(self.proc.pid)
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("m365fs did not exit after unmount"
                                 + (f" ({umount_msg})" if umount_msg else "")
                                 + f"\nits threads:\n{stacks}"
                                 + f"\nits log:\n{self.output()[-4000:]}")
        finally:
            self.proc = None
            self.logf.close()
        if check:
            assert rc == 0, f"m365fs exited {rc}:\n{self.output()}"
            bad = [ln for ln in self.output().splitlines()
                   if BAD_LINES.search(ln)
                   and not any(re.search(a, ln) for a in self.allowed)]
            assert not bad, "unexpected daemon output:\n" + "\n".join(bad)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] is not None and self.proc is not None:
            # the test failed: show what the daemon said (pytest prints
            # captured output of failing tests only)
            died = self.proc.poll()
            print(f"--- m365fs {'exited %d' % died if died is not None else 'running'}"
                  f", last lines of {self.log}:")
            print("\n".join(self.output().splitlines()[-80:]))
        self.stop(check=exc[0] is None)


@contextlib.contextmanager
def mounted(repo, mnt, *opts):
    m = Mount(repo, mnt, *opts)
    with m:
        yield m
