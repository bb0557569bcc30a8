#!/bin/sh
# Runs rclone (a real third-party Graph client) against the emulator: lists
# a SharePoint library with 'rclone lsjson -R', copies it, and checks the
# quickXorHash of every file with 'rclone check'.  rclone cannot be given a
# Graph URL, so this runs in a private mount + network namespace (root or
# unprivileged user namespaces needed) where /etc/hosts names
# graph.microsoft.com, login.microsoftonline.com -> 127.0.0.1 and
# contoso.sharepoint.com -> 127.0.0.2, the emulator listens on port 443 of
# both with those names in its certificate, and SSL_CERT_FILE points at the
# test CA.  Usage: rclone-check.sh WORKDIR [SCALE]   (exit 0 = all good)
set -eu
if [ "${M365_RCLONE_INNER:-}" != 1 ]; then
	export M365_RCLONE_INNER=1
	export M365_OUTER_MNTNS="$(readlink /proc/self/ns/mnt)"
	if [ "$(id -u)" = 0 ]; then
		exec unshare -m -n -- "$0" "$@"
	fi
	exec unshare -m -n -r -- "$0" "$@"
fi
"$(dirname "$(realpath "$0")")/detach-fuse.sh"
work=$(realpath "$1")
scale=${2:-0}
here=$(dirname "$(realpath "$0")")
mkdir -p "$work"
ip link set lo up
cat >"$work/hosts" <<HOSTS
127.0.0.1 localhost
127.0.0.1 graph.microsoft.com login.microsoftonline.com
127.0.0.2 contoso.sharepoint.com contoso-my.sharepoint.com
HOSTS
mount --bind "$work/hosts" /etc/hosts
rm -f "$work/ready.json"
/usr/bin/python3 "$here/emulator.py" --state "$work/state" --scale "$scale" \
	--port 443 --ready-file "$work/ready.json" \
	--extra-names graph.microsoft.com,login.microsoftonline.com,contoso.sharepoint.com,contoso-my.sharepoint.com \
	--public-graph-url https://graph.microsoft.com \
	--public-files-url https://contoso.sharepoint.com \
	>"$work/emulator.log" 2>&1 &
emu=$!
trap 'kill $emu 2>/dev/null; wait $emu 2>/dev/null || true' EXIT
n=0
while [ ! -f "$work/ready.json" ]; do
	n=$((n + 1))
	if [ $n -gt 600 ] || ! kill -0 $emu 2>/dev/null; then
		cat "$work/emulator.log" >&2
		exit 1
	fi
	sleep 0.1
done
export SSL_CERT_FILE="$work/state/ca.pem"
/usr/bin/python3 - "$work" <<'PY'
import json, ssl, sys, urllib.parse, urllib.request
work = sys.argv[1]
r = json.load(open(work + "/ready.json"))
ctx = ssl.create_default_context(cafile=r["ca_file"])
tok = "emulator-test-token"
b = (r.get("apps") or {}).get("backup")
if b:
    form = urllib.parse.urlencode({
        "client_id": b["client_id"],
        "client_secret": open(b["secret_file"]).read().strip(),
        "scope": "https://graph.microsoft.com/.default",
        "grant_type": "client_credentials"}).encode()
    req = urllib.request.Request(
        "https://login.microsoftonline.com/%s/oauth2/v2.0/token" %
        r["tenant_id"], data=form)
    tok = json.load(urllib.request.urlopen(req, context=ctx))["access_token"]
truth = json.load(urllib.request.urlopen(r["control_url"] + "/truth"))
drive = [d for d in truth["drives"]
         if d["path"].endswith("/sites/Marketing/Documents")][0]
with open(work + "/rclone.env", "w") as f:
    f.write("RCLONE_CONFIG_EMU_TYPE=onedrive\n")
    f.write("RCLONE_CONFIG_EMU_DRIVE_ID=%s\n" % drive["id"])
    f.write("RCLONE_CONFIG_EMU_DRIVE_TYPE=documentLibrary\n")
    f.write("RCLONE_CONFIG_EMU_TOKEN='%s'\n" % json.dumps({
        "access_token": tok, "token_type": "Bearer",
        "expiry": "2099-01-01T00:00:00Z"}))
files = {f["path"][len(drive["path"]) + 1:]: f for f in truth["files"]
         if f["drive"] == drive["id"]}
json.dump(files, open(work + "/expected.json", "w"))
PY
set -a
. "$work/rclone.env"
set +a
export RCLONE_CONFIG=/dev/null
rclone lsjson -R --hash emu: >"$work/lsjson.json"
rm -rf "$work/copy"
rclone copy emu: "$work/copy" --transfers 4 --log-level ERROR
rclone check emu: "$work/copy" --log-level ERROR
/usr/bin/python3 - "$work" <<'PY'
import base64, json, os, sys, urllib.request
work = sys.argv[1]
r = json.load(open(work + "/ready.json"))
stats = json.load(urllib.request.urlopen(r["control_url"] + "/stats"))
json.dump(stats, open(work + "/stats.json", "w"), indent=1)
errors = [e for e in stats["log"] if e["status"] >= 400]
exp = json.load(open(work + "/expected.json"))
ls = {e["Path"]: e for e in json.load(open(work + "/lsjson.json"))
      if not e["IsDir"]}
bad = []
for p, f in exp.items():
    e = ls.get(p)
    if e is None:
        bad.append("missing in lsjson: " + p)
        continue
    if e["Size"] != f["size"]:
        bad.append("size differs: " + p)
    h = (e.get("Hashes") or {}).get("quickxor") or ""
    if not h:
        bad.append("no quickxor hash from rclone: " + p)
    elif base64.b64encode(bytes.fromhex(h)).decode() != \
            f["quickXorHash"]:
        bad.append("quickXorHash differs: %s %s" % (p, h))
    local = os.path.join(work, "copy", p)
    if not os.path.exists(local) or os.path.getsize(local) != f["size"]:
        bad.append("copy wrong: " + p)
if errors:
    bad.append("emulator answered errors: %s" % errors[:5])
print("rclone: %d requests, %d with Authorization on the files host" % (
    stats["total"], stats["files_authorization_seen"]))
extra = set(ls) - set(exp)
if extra:
    bad.append("unexpected in lsjson: %s" % sorted(extra))
print("rclone: %d files listed, copied and hash-checked" % len(exp))
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY
