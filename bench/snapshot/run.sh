#!/bin/sh
# bench/snapshot: full snapshot throughput against a raw parallel download
# of the same files (curl --parallel) in the same run, incrementals with no
# changes and with 1% changed, rclone copy of the largest library as a
# peer, and peak RSS at two tenant sizes.  Usage: run.sh OUTDIR
# SCALE=1 (default) or 10; SCALE2 (second size for RSS: 0, or 1 when
# SCALE > 1); PARALLEL=8; RCLONE=0 skips the peer (it needs unshare -m -n).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top/build/bench/snapshot}
mkdir -p "$out"
exec ${PYTHON:-/usr/bin/python3} "$top/bench/snapshot/bench.py" "$out"
