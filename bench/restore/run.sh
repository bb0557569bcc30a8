#!/bin/sh
# bench/restore: restore throughput (cp into MOUNT/restore/) of many small
# files and of one large file against a raw curl upload of the same data to
# the same emulator in the same run (bench/restore/run.py).
#   run.sh [OUTDIR]     FILES=1000 SIZE=2048 BIG_MB=100 RUNS=3 THREADS=4
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-${M365_BUILD:-$top/build}/bench/restore}
exec "${PYTHON:-/usr/bin/python3}" "$top/bench/restore/run.py" "$out" \
	--files "${FILES:-1000}" --size "${SIZE:-2048}" \
	--big-mb "${BIG_MB:-100}" --runs "${RUNS:-3}" \
	--threads "${THREADS:-4}"
