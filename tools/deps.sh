#!/bin/sh
# Install the Debian packages a make target needs, or say how to.
#   tools/deps.sh build|test|bench ...
# As root, missing packages are installed with apt-get; otherwise the exact
# 'sudo apt-get install' line is printed and the script fails.
set -eu

pkgs_build="build-essential pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev
libcjson-dev liblz4-dev libssl-dev libsqlite3-dev"
pkgs_test="python3 python3-pytest python3-hypercorn python3-h2
python3-cryptography attr rsync curl openssl sqlite3 clang libclang-rt-14-dev
clang-format rclone"
pkgs_bench="hyperfine fio restic borgbackup squashfuse squashfs-tools rclone"

want=""
for group in "$@"; do
	case "$group" in
	build) want="$want $pkgs_build" ;;
	test) want="$want $pkgs_build $pkgs_test" ;;
	bench) want="$want $pkgs_build $pkgs_test $pkgs_bench" ;;
	*) echo "deps.sh: unknown group '$group' (build, test, bench)" >&2; exit 2 ;;
	esac
done

missing=""
for p in $want; do
	case " $missing " in *" $p "*) continue ;; esac
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$st" in ii*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "missing Debian packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# a fresh machine has no package lists yet; refresh them once when needed
if ! apt-get install -y -qq $missing >/dev/null 2>&1; then
	apt-get update -qq
	apt-get install -y -qq $missing
fi
