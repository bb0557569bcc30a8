#!/bin/sh
# bench/store: content store ingest and warm-read throughput against the
# limits of its own stages (see bench_store.c).  Usage: run.sh [OUTDIR]
# Env: STORE_BENCH_MIB (data size, default 256), STORE_BENCH_RUNS (3).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${M365_BUILD:-$top/build}
out=${1:-$build/bench/store}
mkdir -p "$out"
[ -f "$build/libm365.a" ] || make -C "$top" -j2 "$build/libm365.a" >/dev/null
cc -std=c17 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O2 -g -pthread \
	-I"$top/engine" -o "$out/bench_store" "$top/bench/store/bench_store.c" \
	"$build/libm365.a" $(pkg-config --libs sqlite3 liblz4 libcrypto) -lm
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_store.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$out/bench_store" "$work" "${STORE_BENCH_MIB:-256}" "${STORE_BENCH_RUNS:-3}"
