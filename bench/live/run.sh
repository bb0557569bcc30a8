#!/bin/sh
# live/ of m365fs against `rclone mount` of the same document library,
# both reading from one Graph emulator in one run (bench/live/bench.py).
#   bench/live/run.sh [OUTDIR [OPTIONS]]    BENCH_QUICK=1: fewer repetitions
#   OPTIONS: --cold-ls N (interleaved cold ls -l runs), --cold-ls-only
# rclone's onedrive backend cannot be given a Graph URL, so this runs in a
# private mount + network namespace where graph.microsoft.com and
# contoso.sharepoint.com name the emulator on port 443 (as
# tests/emulator/rclone-check.sh).  Needs root (or user namespaces),
# rclone and fusermount3.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v rclone >/dev/null 2>&1; then
	echo "bench live: rclone is not installed: skipped"
	exit 0
fi
if [ "${M365_LIVE_BENCH_INNER:-}" != 1 ]; then
	export M365_LIVE_BENCH_INNER=1
	export M365_OUTER_MNTNS="$(readlink /proc/self/ns/mnt)"
	if [ "$(id -u)" = 0 ]; then
		exec unshare -m -n -- "$0" "$@"
	fi
	exec unshare -m -n -r -- "$0" "$@"
fi
"$(dirname "$(realpath "$0")")/../../tests/emulator/detach-fuse.sh"
out=${1:-${M365_BUILD:-$top/build}/bench/live}
[ $# -gt 0 ] && shift
mkdir -p "$out"
ip link set lo up
cat >"$out/hosts" <<HOSTS
127.0.0.1 localhost
127.0.0.1 graph.microsoft.com login.microsoftonline.com
127.0.0.2 contoso.sharepoint.com contoso-my.sharepoint.com
HOSTS
mount --bind "$out/hosts" /etc/hosts
exec "${PYTHON:-/usr/bin/python3}" "$top/bench/live/bench.py" "$out" \
	${BENCH_QUICK:+--quick} "$@"
