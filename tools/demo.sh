#!/bin/sh
# make demo: the product end to end on the built-in demo tenant.
#   tools/demo.sh start | stop
# State lives in ./.demo (emulator, repository, connection); the demo
# snapshot is mounted on ./demo.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
BIN=${M365_BUILD:-$top/build}/bin
PYTHON=${PYTHON:-/usr/bin/python3}
STATE=$top/.demo
MNT=$top/demo
SCALE=${DEMO_SCALE:-1}

say() { printf '%s\n' "$*"; }

stop() {
	if [ -d "$MNT" ] && mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || umount "$MNT" || true
	fi
	if [ -f "$STATE/emulator.pid" ]; then
		pid=$(cat "$STATE/emulator.pid")
		kill "$pid" 2>/dev/null || true
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1; i=$((i + 1))
		done
		rm -f "$STATE/emulator.pid"
	fi
	say "demo: stopped"
}

json() { # json FILE KEY.SUB ... -> value
	"$PYTHON" -c 'import json,sys
v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"
}

start() {
	stop >/dev/null
	mkdir -p "$STATE/emulator" "$MNT"
	rm -f "$STATE/ready.json"
	say "demo: starting the Microsoft Graph emulator (demo tenant, scale $SCALE)"
	"$PYTHON" "$top/tests/emulator/emulator.py" --state "$STATE/emulator" \
		--scale "$SCALE" --ready-file "$STATE/ready.json" \
		>"$STATE/emulator.log" 2>&1 &
	echo $! >"$STATE/emulator.pid"
	i=0
	while [ ! -s "$STATE/ready.json" ]; do
		if ! kill -0 "$(cat "$STATE/emulator.pid")" 2>/dev/null; then
			say "demo: the emulator did not start; its log:" >&2
			tail -n 30 "$STATE/emulator.log" >&2
			exit 1
		fi
		i=$((i + 1))
		[ $i -lt 600 ] || { say "demo: the emulator did not get ready in 60 s" >&2; exit 1; }
		sleep 0.1
	done
	R=$STATE/ready.json
	say "demo: emulator ready"
	say "  Graph:    $(json "$R" graph_url)/v1.0"
	say "  login:    $(json "$R" login_url)"
	say "  control:  $(json "$R" control_url)   (ground truth: GET /truth)"
	say "  CA file:  $(json "$R" ca_file)"
	say "  tenant:   $(json "$R" tenant_id)"
	say "  app:      $(json "$R" apps.backup.client_id) (secret in $(json "$R" apps.backup.secret_file))"

	export M365FS_CONFIG_DIR="$STATE/config"
	rm -rf "$STATE/config" "$STATE/repo"
	step "m365-connect add demo (client secret, emulator endpoints)"
	"$BIN/m365-connect" add demo --tenant "$(json "$R" tenant_id)" \
		--client-id "$(json "$R" apps.backup.client_id)" \
		--secret-file "$(json "$R" apps.backup.secret_file)" \
		--cloud custom --login-url "$(json "$R" login_url)" \
		--graph-url "$(json "$R" graph_url)" --ca-file "$(json "$R" ca_file)"
	step "m365-connect test demo"
	"$BIN/m365-connect" test demo
	step "m365-snapshot init $STATE/repo"
	"$BIN/m365-snapshot" init "$STATE/repo"
	step "m365-snapshot create --repo $STATE/repo --connection demo"
	"$BIN/m365-snapshot" create --repo "$STATE/repo" --connection demo
	step "m365fs -o connection=demo $STATE/repo $MNT"
	"$BIN/m365fs" -o connection=demo "$STATE/repo" "$MNT"
	say ""
	say "demo: the demo snapshot is mounted on ./demo:"
	say "  ls demo/snapshots/latest/"
	say "  find demo/snapshots/latest/sites | head"
	say "  grep -rl zanzibar-quartz demo/snapshots/latest/"
	say "  getfattr -d demo/snapshots/latest/onedrive/*/* | head"
	say "the tenant as it is now, beside the snapshot:"
	say "  diff -r demo/live/sites demo/snapshots/latest/sites && echo unchanged"
	say "restore by copying into demo/restore/ (status: cat demo/restore/.status):"
	say "  cp -r demo/snapshots/latest/onedrive/ZoeM@contoso.onmicrosoft.com/Invoices demo/restore/sites/contoso.sharepoint.com/Documents/"
	say "more snapshots: M365FS_CONFIG_DIR=$STATE/config $BIN/m365-snapshot create --repo $STATE/repo --connection demo"
	say "demo: stop everything with 'make demo-stop'"
}

step() { say ""; say "demo: \$ $*"; }

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) say "usage: demo.sh start|stop" >&2; exit 2 ;;
esac
