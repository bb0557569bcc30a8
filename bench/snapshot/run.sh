#!/bin/sh
# bench/snapshot: full snapshot throughput against a raw parallel download
# of the same files (curl --parallel) in the same run, an incremental
# snapshot with no changes, and peak RSS.  Usage: run.sh OUTDIR
# SCALE=1 (default) or SCALE=10; PARALLEL=8.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top/build/bench/snapshot}
mkdir -p "$out"
exec ${PYTHON:-/usr/bin/python3} "$top/bench/snapshot/bench.py" "$out"
