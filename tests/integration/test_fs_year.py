"""A year of daily snapshots of one small tenant-shaped tree, each day a
little different, browsed through one mount: every snapshot shows its
own day, an unchanged file is one inode across the year, the version
xattrs count the days, and `find` and `grep -r` over the whole year see
exactly what each day had."""
import os
import random
import subprocess

import pytest

import fsutil

pytestmark = pytest.mark.skipif(not fsutil.have_fuse(),
                                reason="needs /dev/fuse and fusermount3")

DAYS = 365
WORD = "narwhal"
SAMPLE = (0, 1, 99, 100, 180, 249, 250, 364)  # days compared in full
DOCS = "sites/contoso.example/sites/hr/Documents"
WATCHED = f"{DOCS}/Folder 0/doc 0.txt"  # rewritten on days 100 and 250
STILL = f"{DOCS}/big.bin"  # never changed
FOUND = f"{DOCS}/Monthly/found.txt"  # added on day 200, holds WORD


def year_of_snapshots(src, repo):
    """Import @src into @repo once a day for DAYS days: every day one
    file of onedrive/ is rewritten, WATCHED on days 100 and 250, a report
    is added every 30 days (the first deleted on day 300), FOUND on day
    200.  Returns ({day: tree digest} for SAMPLE, files per day)."""
    fsutil.make_tree(src, seed=5, files_per_folder=5, folders=2, big_mb=1,
                     mails=10)
    daily = sorted(str(p.relative_to(src))
                   for p in (src / "onedrive").rglob("*.txt"))
    rnd = random.Random(9)
    digests, counts = {}, []
    for day in range(DAYS):
        when = (1_700_000_000 + day * 86_400) * 10**9 + day
        if day:
            fsutil.write(src / rnd.choice(daily),
                         f"rewritten on day {day}\n" * rnd.randrange(1, 50),
                         when)
        if day in (100, 250):
            fsutil.write(src / WATCHED, f"the version of day {day}\n", when)
        if day % 30 == 29:
            fsutil.write(src / f"{DOCS}/Monthly/report {day}.txt",
                         f"the report of day {day}\n", when)
        if day == 200:
            fsutil.write(src / FOUND, f"a {WORD} was seen\n", when)
        if day == 300:
            os.remove(src / f"{DOCS}/Monthly/report 29.txt")
        fsutil.gen_import(repo, src)
        if day in SAMPLE:
            digests[day] = fsutil.tree_digest(src)
        counts.append(sum(len(f) for _, _, f in os.walk(src)))
    return digests, counts


def version(p):
    """user.m365.version.{first,last,snapshots} of @p."""
    return tuple(os.getxattr(p, f"user.m365.version.{k}").decode()
                 for k in ("first", "last", "snapshots"))


def test_fs_a_year_of_daily_snapshots(tmp_path):
    digests, counts = year_of_snapshots(tmp_path / "src", tmp_path / "repo")
    with fsutil.Mount(tmp_path / "repo", tmp_path / "mnt") as m:
        top = m.mnt / "snapshots"
        # imports within one second share a time: ordered by id
        snaps = fsutil.snapshot_dirs(m.mnt)
        names = [s.name for s in snaps]
        ids = [fsutil.snapshot_id(s) for s in snaps]
        assert len(names) == DAYS
        assert os.readlink(top / "latest") == names[-1]
        for day in SAMPLE:
            assert fsutil.tree_digest(snaps[day]) == digests[day], day
        # every day's tree, listed through the mount
        found = subprocess.run(["find", str(top), "-type", "f"],
                               capture_output=True, text=True, check=True)
        assert len(found.stdout.splitlines()) == sum(counts)
        # one inode per version, across the year
        assert len({os.stat(s / STILL).st_ino for s in snaps}) == 1
        ino = [os.stat(s / WATCHED).st_ino for s in snaps]
        assert len(set(ino[:100])) == len(set(ino[100:250])) == 1
        assert len(set(ino[250:])) == 1
        assert len({ino[0], ino[100], ino[250]}) == 3
        assert version(snaps[180] / STILL) == (names[0], names[-1],
                                               str(DAYS))
        assert version(snaps[120] / WATCHED) == (names[100], names[249],
                                                 "150")
        assert version(snaps[300] / WATCHED) == (names[250], names[-1],
                                                 str(DAYS - 250))
        # grep -r over the whole year finds the word in each day that had
        # it (the `latest` symlink is not followed)
        p = subprocess.run(["grep", "-rlF", WORD, str(top)],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert sorted(p.stdout.splitlines()) == sorted(
            str(snaps[d] / FOUND) for d in range(200, DAYS))
        assert m.rss_kib() < fsutil.RSS_LIMIT_KIB
    # keep the last 100 days: a version that began in a forgotten
    # snapshot now counts from the first one still there
    subprocess.run([str(fsutil.BUILD / "bin/m365-snapshot"), "forget",
                    "--repo", str(tmp_path / "repo"), "--keep-last", "100"],
                   check=True, capture_output=True)
    with fsutil.Mount(tmp_path / "repo", tmp_path / "mnt") as m:
        kept = fsutil.snapshot_dirs(m.mnt)
        # (by id: the name of one started in the second of a forgotten
        # one loses its "~id" suffix)
        assert [fsutil.snapshot_id(s) for s in kept] == ids[-100:]
        first, last = kept[0].name, kept[-1].name
        assert version(kept[0] / STILL) == (first, last, "100")
        assert version(kept[-1] / WATCHED) == (first, last, "100")
        assert os.stat(kept[0] / STILL).st_ino == \
            os.stat(kept[-1] / STILL).st_ino
