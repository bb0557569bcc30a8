#!/bin/sh
# Catalog benchmark: ingest, incremental snapshot, lookup/getattr latency,
# 50,000-entry listing and bytes per item at CAT_BENCH_ITEMS items
# (default 1000000; "1000000 10000000" runs both).
#   sh bench/catalog/run.sh [OUTDIR]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${M365_BUILD:-$top/build}
out=${1:-$build/bench/catalog}
mkdir -p "$out"
[ -f "$build/libm365.a" ] || make -C "$top" -j2 "$build/libm365.a" >/dev/null
bin=$out/bench_catalog
cc -std=c17 -D_GNU_SOURCE -O2 -g -pthread -I"$top/engine" \
	-o "$bin" "$top/bench/catalog/bench_catalog.c" "$build/libm365.a" \
	$(pkg-config --libs sqlite3) -lm
for n in ${CAT_BENCH_ITEMS:-1000000}; do
	echo "-- $n items"
	"$bin" "$out" "$n"
	echo "-- $n items, readers again (warm)"
	"$bin" "$out" "$n" reuse
	rm -f "$out/bench.db" "$out/bench.db-wal" "$out/bench.db-shm"
done
