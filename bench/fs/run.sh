#!/bin/sh
# m365fs against native disk, squashfuse_ll, restic and borg on a snapshot
# of the emulator's scale-10 tenant (bench/fs/bench.py).
#   bench/fs/run.sh [OUTDIR]      BENCH_QUICK=1 for the scale-1 tenant
# Needs root (drop_caches), hyperfine, fio, squashfuse, squashfs-tools.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-${M365_BUILD:-$top/build}/bench/fs}
exec "${PYTHON:-/usr/bin/python3}" "$top/bench/fs/bench.py" "$out" \
	${BENCH_QUICK:+--quick}
