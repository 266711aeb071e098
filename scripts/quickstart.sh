#!/usr/bin/env bash
# Try sreg without a Dropbox account: a local `sreg emulator` seeded with four real SIF images.
#
#   scripts/quickstart.sh          set up, build the seed images, start (or reuse) the
#                                  emulator, upload the images, list them, search them with
#                                  sreg, mount the registry and run an image from the mount,
#                                  print how to use it
#   scripts/quickstart.sh stop     unmount, and stop the emulator this script started
#   scripts/quickstart.sh status   say whether it is running
#
# Everything lives in .sreg-quickstart/ (gitignored):
#   token          the emulator's access token (mode 0600; made once, reused)
#   images/        the seed images, /<collection>/<name>:<tag>.simg
#   emulator/      the emulator's --root (files, SQLite)
#   emulator.log   its stdout and stderr
#   emulator.pid   its pid
#   emulator.url   the URL it listens on
#
# Environment: SREG_PORT (default 8765), SREG_HOST (default 127.0.0.1),
# SREG_QUICKSTART_SKIP_SETUP=1 skips scripts/setup.sh (when you know it is done).
# The token reaches the emulator only through SREG_EMULATOR_TOKEN and curl only through a
# config on stdin; it is never on a command line and is printed masked.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/lib/dbx-curl.sh
. scripts/lib/dbx-curl.sh

qs="$repo/.sreg-quickstart"
pidfile="$qs/emulator.pid"
logfile="$qs/emulator.log"
urlfile="$qs/emulator.url"
tokenfile="$qs/token"
port="${SREG_PORT:-8765}"
host="${SREG_HOST:-127.0.0.1}"
cli="$repo/dist/src/cli/index.js"

say() { printf '[quickstart] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }
mask() { local s="$1"; printf '%s…(%d chars)' "${s:0:6}" "${#s}"; }

# The pid in the pid file, if that process is alive and is our emulator (not a reused pid).
running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid cmd
  pid="$(cat "$pidfile" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *" emulator "* && "$cmd" == *"$qs/emulator"* ]] || return 1
  echo "$pid"
}

stop_emulator() {
  local pid
  if pid="$(running_pid)"; then
    say "stopping the emulator (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "it did not stop within 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  else
    say "no quickstart emulator is running"
  fi
  rm -f "$pidfile" "$urlfile"
}

# sreg's own state for the demo stays in .sreg-quickstart/ too: nothing in your ~ is touched.
sreg_env() {
  env SREGISTRY_DROPBOX_ENDPOINT="$(cat "$urlfile" 2>/dev/null)" SREGISTRY_DROPBOX_TOKEN="$(cat "$tokenfile" 2>/dev/null)" \
    SREGISTRY_DATABASE="$qs/db" SINGULARITY_CACHEDIR="$qs/cache" SREGISTRY_STORAGE="$qs/storage" \
    SREGISTRY_CLIENT_SECRETS="$qs/sregistry.json" node "$cli" "$@"
}
mnt="$qs/mnt"

unmount_demo() {
  if grep -q " $mnt " /proc/mounts 2>/dev/null; then
    say "unmounting $mnt (pending uploads first)"
    sreg_env unmount "$mnt" || fusermount -uz "$mnt" 2>/dev/null || true
  fi
}

case "${1:-start}" in
  stop) unmount_demo; stop_emulator; exit 0 ;;
  status)
    if pid="$(running_pid)"; then
      say "running: pid $pid, $(cat "$urlfile" 2>/dev/null || echo '?'), log $logfile"
    else
      say "not running"; exit 1
    fi
    exit 0 ;;
  start) ;;
  -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown command '$1' (start, stop, status)" ;;
esac

# --- 1. dependencies and build -------------------------------------------------------------
if [ "${SREG_QUICKSTART_SKIP_SETUP:-}" = 1 ]; then
  say "skipping scripts/setup.sh (SREG_QUICKSTART_SKIP_SETUP=1)"
else
  say "running scripts/setup.sh (Debian and npm packages, build)"
  scripts/setup.sh
fi
[ -f "$cli" ] || die "$cli is missing: the build did not produce the CLI"

mkdir -p "$qs"
chmod 0700 "$qs"

# --- 2. seed images ------------------------------------------------------------------------
say "building the seed images into .sreg-quickstart/images"
mapfile -t images < <(scripts/build-seed-images.sh "$qs/images")
((${#images[@]})) || die "no seed images were built"

# --- 3. token ------------------------------------------------------------------------------
new_token=0
if [ ! -s "$tokenfile" ]; then
  (umask 077; node -e 'process.stdout.write("sreg-qs-" + require("node:crypto").randomBytes(24).toString("base64url"))' >"$tokenfile.tmp")
  mv -f "$tokenfile.tmp" "$tokenfile"
  new_token=1
fi
chmod 0600 "$tokenfile"
DBX_TOKEN="$(cat "$tokenfile")"
[[ "$DBX_TOKEN" =~ ^[A-Za-z0-9._~+/=-]+$ ]] || die "$tokenfile does not hold a usable token"
export DBX_TOKEN

# --- 4. emulator ---------------------------------------------------------------------------
# Reuse a running one if it answers on the asked port and accepts our token; else restart.
url=""
if pid="$(running_pid)"; then
  old_url="$(cat "$urlfile" 2>/dev/null || true)"
  if ((new_token == 0)) && [ "$old_url" = "http://$host:$port" ] \
    && dbx_curl -o /dev/null -f --max-time 5 -X POST "$old_url/2/users/get_current_account" 2>/dev/null; then
    url="$old_url"
    say "reusing the running emulator (pid $pid) at $url"
  else
    say "the running emulator (pid $pid) does not match this run (port, token or health); restarting it"
    stop_emulator
  fi
else
  rm -f "$pidfile" "$urlfile"
fi

if [ -z "$url" ]; then
  mkdir -p "$qs/emulator"
  : >"$logfile"
  say "starting the emulator on $host:$port (log: .sreg-quickstart/emulator.log)"
  # setsid: its own session, so it outlives this script and a closed terminal.
  SREG_EMULATOR_TOKEN="$DBX_TOKEN" setsid node "$cli" emulator --root "$qs/emulator" \
    --host "$host" --port "$port" >>"$logfile" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pidfile"
  for _ in $(seq 1 300); do
    url="$(sed -n 's/^listening on \(http:\/\/[^[:space:]]*\).*/\1/p' "$logfile" | head -n1)"
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    rm -f "$pidfile"
    say "the emulator did not start; the end of its log:"
    tail -n 20 "$logfile" >&2
    exit 1
  fi
  echo "$url" >"$urlfile"
  say "emulator pid $pid listening on $url"
  if grep -qF -- "$DBX_TOKEN" "$logfile"; then
    say "WARNING: the token appears in $logfile"
  fi
fi

# --- 5. seed ---------------------------------------------------------------------------------
say "uploading the seed images (POST /2/files/upload, mode overwrite)"
for file in "${images[@]}"; do
  dbx_path="/${file#"$qs/images/"}"
  arg="{\"path\":$(dbx_json_string "$dbx_path"),\"mode\":\"overwrite\"}"
  if ! result="$(dbx_upload_file "$url" files/upload "$arg" "$file")"; then
    say "upload of $dbx_path failed: HTTP $DBX_STATUS"
    printf '%s\n' "$result" >&2
    exit 1
  fi
  # The answer must describe what was sent: path, size and content_hash (dropbox-api.md §6).
  got="$(node -e 'const m = JSON.parse(process.argv[1]); process.stdout.write(`${m.path_display} ${m.size} ${m.content_hash}`)' "$result")"
  want="$dbx_path $(stat -c %s "$file") $(node --input-type=module -e "
    import { contentHash } from '$repo/dist/src/dropbox/content-hash.js';
    import { readFileSync } from 'node:fs';
    process.stdout.write(contentHash(readFileSync(process.argv[1])));
  " "$file")"
  [ "$got" = "$want" ] || die "upload of $dbx_path: the answer ($got) does not match the file ($want): $result"
  say "  $dbx_path ($(stat -c %s "$file") bytes)"
done

# --- 6. show it ------------------------------------------------------------------------------
pages="$(mktemp -d)"
trap 'rm -rf "$pages"' EXIT
n=0
dbx_rpc "$url" files/list_folder '{"path":"","recursive":true}' "$pages/$n.json" \
  || die "files/list_folder failed: HTTP $DBX_STATUS: $(cat "$pages/$n.json")"
# Follow has_more with list_folder/continue, one file per page.
while node -e 'process.exit(JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")).has_more ? 0 : 1)' "$pages/$n.json"; do
  cursor="$(node -e 'process.stdout.write(JSON.stringify(JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8")).cursor))' "$pages/$n.json")"
  n=$((n + 1))
  ((n < 1000)) || die "files/list_folder/continue: has_more never became false"
  dbx_rpc "$url" files/list_folder/continue "{\"cursor\":$cursor}" "$pages/$n.json" \
    || die "files/list_folder/continue failed: HTTP $DBX_STATUS: $(cat "$pages/$n.json")"
done

echo
echo "Images in the emulator's app folder (POST $url/2/files/list_folder, recursive):"
echo
node -e '
  const fs = require("node:fs");
  const files = process.argv.slice(1)
    .flatMap((p) => JSON.parse(fs.readFileSync(p, "utf8")).entries)
    .filter((e) => e[".tag"] === "file");
  files.sort((a, b) => a.path_lower.localeCompare(b.path_lower));
  const w = Math.max(4, ...files.map((f) => f.path_display.length));
  console.log(`  ${"PATH".padEnd(w)}  ${"SIZE".padStart(10)}`);
  for (const f of files) console.log(`  ${f.path_display.padEnd(w)}  ${String(f.size).padStart(10)}`);
  console.log(`  (${files.length} files)`);
' "$pages"/*.json

# --- 7. the registry commands, and the registry as a filesystem -------------------------------
echo
echo "\$ sreg search"
sreg_env search
unmount_demo
mkdir -p "$mnt"
echo
echo "\$ sreg mount $mnt"
sreg_env mount "$mnt" || die "sreg mount failed (see $qs/cache/sreg/logs/)"
echo
echo "\$ ls -l $mnt/pusheen"
ls -l "$mnt/pusheen"
echo
echo "\$ getfattr -n user.sregistry.uri $mnt/pusheen/asaurus:red.simg"
getfattr -n user.sregistry.uri "$mnt/pusheen/asaurus:red.simg" 2>/dev/null || true
if [ "$(id -u)" -eq 0 ]; then
  # Run an image the way Singularity does: loop-mount the SIF's system partition, read-only,
  # straight from the file on the mount (only the blocks it needs are fetched), and run its
  # runscript inside it.
  offset="$(node --input-type=module -e "
    import { readSif, primaryPartition } from '$repo/dist/src/sif/index.js';
    process.stdout.write(String(primaryPartition(await readSif(process.argv[1])).offset));
  " "$mnt/pusheen/asaurus:red.simg")"
  root="$(mktemp -d)"
  echo
  echo "\$ mount -o loop,ro,offset=$offset $mnt/pusheen/asaurus:red.simg $root && chroot $root /.singularity.d/runscript"
  if mount -o loop,ro,offset="$offset" "$mnt/pusheen/asaurus:red.simg" "$root"; then
    chroot "$root" /.singularity.d/runscript || true
    umount "$root"
  fi
  rmdir "$root"
fi

cat <<EOF

The emulator is running (pid $(cat "$pidfile"), token $(mask "$DBX_TOKEN")), and the registry
is mounted on $mnt. Point sreg at the emulator:

  export SREGISTRY_DROPBOX_ENDPOINT=$url
  export SREGISTRY_DROPBOX_TOKEN="\$(cat .sreg-quickstart/token)"

sreg is \`node dist/src/cli/index.js\` (or \`npm link\` puts \`sreg\` on your PATH). Try: sreg search;
sreg pull pusheen/asaurus:red; cp some.simg $mnt/vsoch/; sreg status
Logs: .sreg-quickstart/emulator.log, .sreg-quickstart/cache/sreg/logs/
Stop both with: scripts/quickstart.sh stop
EOF
