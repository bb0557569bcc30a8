#!/bin/sh
# make bench: run every benchmark under bench/*/run.sh in turn and collect
# their reports in build/bench/.  Each one compares against a baseline
# measured in the same run (native disk or a peer tool) and prints medians
# and ratios; none of them asserts a timing.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${M365_BUILD:-$top/build}/bench
mkdir -p "$out"
status=0
for b in "$top"/bench/*/run.sh; do
	[ -f "$b" ] || continue
	name=$(basename "$(dirname "$b")")
	if [ -n "${BENCH:-}" ] && [ "$BENCH" != "$name" ]; then
		continue
	fi
	echo "== bench $name"
	if sh "$b" "$out/$name" 2>&1 | tee "$out/$name.txt"; then :; else
		echo "bench $name failed" >&2
		status=1
	fi
done
echo "reports in $out/"
exit $status
