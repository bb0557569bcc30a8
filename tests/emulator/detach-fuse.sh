#!/bin/sh
# Detach, in a private mount namespace only, the FUSE mounts it was
# created with.  `unshare -m` copies every mount of the parent namespace,
# and mounts here are private: a FUSE file system that another program
# unmounts in the parent namespace would stay alive in this copy, and its
# daemon would not exit, until this namespace ends.
#   export M365_OUTER_MNTNS=$(readlink /proc/self/ns/mnt)   (before unshare)
#   unshare -m ... ; detach-fuse.sh                          (inside)
# Refuses to run unless this namespace differs from M365_OUTER_MNTNS.
set -eu
outer=${M365_OUTER_MNTNS:-}
if [ -z "$outer" ] || [ "$(readlink /proc/self/ns/mnt)" = "$outer" ]; then
	echo "detach-fuse.sh: not in a new mount namespace (M365_OUTER_MNTNS):" \
		"nothing done" >&2
	exit 1
fi
findmnt -rn -o TARGET,FSTYPE | while read -r target fstype; do
	case $fstype in
	fuse | fuse.*) umount -l "$(printf '%b' "$target")" 2>/dev/null || true ;;
	esac
done
