#!/bin/sh
# Catalog benchmark: ingest, incremental snapshot, lookup/getattr latency,
# 50,000-entry listing and bytes per item at CAT_BENCH_ITEMS items
# (default 1000000; "1000000 10000000" runs both), then the time m365fs
# takes to mount a repository with that catalog and answer a first stat
# (cold: page cache dropped, as root; warm).
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
# mount_time DIR N: DIR/bench.db as the catalog of a repository, mounted
# three times cold and three times warm: mount + stat of a folder in it
mount_time() {
	repo=$1/repo mnt=$1/mnt
	rm -rf "$repo" && mkdir -p "$mnt"
	"$build/bin/m365-snapshot" init "$repo" >/dev/null 2>&1
	mv "$1/bench.db" "$repo/catalog.db"
	for mode in cold cold cold warm warm warm; do
		if [ $mode = cold ]; then
			[ "$(id -u)" -eq 0 ] || continue
			sync && echo 3 >/proc/sys/vm/drop_caches
		fi
		t0=$(date +%s%N)
		"$build/bin/m365fs" "$repo" "$mnt"
		stat "$mnt/snapshots/latest/sites/contoso.sharepoint.com/Shared Documents/Project 000001" >/dev/null
		t1=$(date +%s%N)
		rss=$(ps -o rss= -p "$(pgrep -f -- "m365fs $repo $mnt")")
		fusermount3 -u "$mnt"
		echo "mount_$mode $(( (t1 - t0) / 1000000 )) ms (catalog of $2 items, $(( $(stat -c %s "$repo/catalog.db") >> 20 )) MiB; daemon RSS ${rss} KiB)"
	done
	mv "$repo/catalog.db" "$1/bench.db"
	rm -rf "$repo"
}

for n in ${CAT_BENCH_ITEMS:-1000000}; do
	echo "-- $n items"
	"$bin" "$out" "$n"
	echo "-- $n items, readers again (warm)"
	"$bin" "$out" "$n" reuse
	mount_time "$out" "$n"
	rm -f "$out/bench.db" "$out/bench.db-wal" "$out/bench.db-shm"
done
