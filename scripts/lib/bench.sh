# shellcheck shell=bash
# shellcheck disable=SC2034  # variables set here are read by the scripts that source this file
# shellcheck disable=SC2154  # $repo, $data_mib, $latency_ms, $bandwidth are the sourcing script's
# The parts every benchmark in scripts/ shares (and dbx-curl.sh's helpers), sourced after `cd`
# to the repo (with $repo set): a private copy of the sreg under test, the test image, a shaped `sreg emulator` of
# its own, its admin API, timing with CPU accounting, and a clean-up that leaves nothing
# running. Not run on its own.
#
#   bench_settings OUT "$@"   --out and the BENCH_* settings, checked;  need TOOL...  on PATH
#   bench_init NAME            temp dir ($tmp), start time, traps (EXIT: bench_cleanup_hook,
#                              then every tracked job and the emulator are stopped, $tmp removed)
#   bench_private_sreg         $app, $cli, $sreg_desc, $commit (from BENCH_SREG: dist | a revision)
#   bench_image                $img, $size (BENCH_IMAGE / BENCH_DATA_MIB, as $data_mib)
#   bench_emulator             $url, $emu_pid, $DBX_TOKEN, $bw_bytes (--latency-ms $latency_ms
#                              --bandwidth $bandwidth)
#   admin METHOD PATH [JSON]   the emulator's /__emulator API;  jget JSON a.b  a field
#   track CMD...               runs CMD as a tracked background job and waits for it
#   wait_all PID...            waits for tracked jobs started with `&` + kids+=($!)
#   bench_report_head TITLE    a report's heading and its date, machine and load rows
#   start_timing / stop_timing $t0 $t1 (ns), $l (load1 before), $cpu_c $cpu_e (CPU seconds of
#                              this shell's finished children and of the emulator)


# shellcheck source=scripts/lib/dbx-curl.sh
. scripts/lib/dbx-curl.sh

say() { printf '[bench] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

now_ns() { date +%s%N; }
secs() { node -e 'process.stdout.write(((process.argv[2] - process.argv[1]) / 1e9).toFixed(3))' "$1" "$2"; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# bench_settings DEFAULT_OUT "$@": --out FILE (else DEFAULT_OUT) into $out, and the shaping and
# run settings every benchmark shares, from the environment, checked: $latency_ms $bandwidth
# $runs $data_mib $threads (see the scripts' headers).
bench_settings() {
  out="$1"; shift
  while (($#)); do
    case "$1" in
      --out) [ $# -ge 2 ] || { echo "usage: $0 [--out FILE]" >&2; exit 2; }; out="$2"; shift 2 ;;
      *) echo "usage: $0 [--out FILE]" >&2; exit 2 ;;
    esac
  done
  latency_ms="${BENCH_LATENCY_MS:-20}"
  bandwidth="${BENCH_BANDWIDTH:-40M}"
  runs="${BENCH_RUNS:-3}"
  data_mib="${BENCH_DATA_MIB:-1000}"
  threads="${SREGISTRY_PYTHON_THREADS:-9}"
  [[ "$latency_ms" =~ ^[0-9]+$ ]] || { echo "BENCH_LATENCY_MS wants a whole number" >&2; exit 2; }
  [[ "$runs" =~ ^[2-9]$ ]] || { echo "BENCH_RUNS wants 2..9" >&2; exit 2; }
  [[ "$data_mib" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_DATA_MIB wants a positive whole number" >&2; exit 2; }
  if ! [[ "$threads" =~ ^[1-9][0-9]*$ ]] || ((threads > 64)); then
    echo "SREGISTRY_PYTHON_THREADS wants 1..64" >&2; exit 2
  fi
}

# need TOOL...: each must be on PATH.
need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (run scripts/setup.sh)" >&2; exit 1; }
  done
}

# bench_init NAME: the temp dir and the traps. A script defines bench_cleanup_hook (run first
# at exit, e.g. to unmount) to stop what only it knows about.
bench_init() {
  script_t0="$(date +%s)"
  load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/sreg-bench-$1.XXXXXX")"
  emu_pid=""
  kids=() # background jobs started by this script (each killed with its descendants)
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}
bench_cleanup_hook() { :; }

# kill_tree PID: PID and every process below it (children first), by id.
kill_tree() {
  local pid="$1" child
  [ -n "$pid" ] || return 0
  for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill_tree "$child"; done
  kill -TERM "$pid" 2>/dev/null || true
}
untrack() { # PID: forget a finished background job
  local i
  for i in "${!kids[@]}"; do [ "${kids[$i]}" != "$1" ] || unset 'kids[i]'; done
}
bench_cleanup() {
  local rc=$? pid
  bench_cleanup_hook || true
  for pid in "${kids[@]}"; do kill_tree "$pid"; done
  if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$emu_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$emu_pid" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  rm -rf "$tmp"
  exit "$rc"
}

# track CMD...: runs CMD in the background (so a signal reaches the trap at once) and waits.
track() {
  "$@" &
  local pid=$!
  kids+=("$pid")
  local rc=0
  wait "$pid" || rc=$?
  untrack "$pid"
  return "$rc"
}

# wait_all PID...: waits for these tracked background jobs; non-zero if any failed.
wait_all() {
  local p rc=0
  for p in "$@"; do
    wait "$p" || rc=1
    untrack "$p"
  done
  return "$rc"
}

# bench_private_sreg: the sreg under test, a private copy in $app (BENCH_SREG: `dist`, a copy of
# ./dist/src taken now, so a rebuild meanwhile cannot change it; or a git revision whose src/
# is compiled with tsc in $tmp, leaving the working tree alone).
bench_private_sreg() {
  local sreg_from="${BENCH_SREG:-dist}" rev
  app="$tmp/app"
  mkdir -p "$app/dist"
  ln -s "$repo/node_modules" "$app/node_modules"
  if [ "$sreg_from" = dist ]; then
    [ -f "$repo/dist/src/cli/index.js" ] || die "dist/src/cli/index.js is missing; run npm run build (or BENCH_SREG=HEAD)"
    cp "$repo/package.json" "$app/"
    cp -r "$repo/dist/src" "$app/dist/src"
    # The emulator reads Dropbox's API specification from spec/ at start.
    cp -r "$repo/spec" "$app/spec"
    # The native FUSE adapter (src/fuse3 looks for it at ../../../native/build from its dist
    # file): without it every mount of the copy would fall back to fuse-native.
    if [ -f "$repo/native/build/Release/sreg_fuse.node" ]; then
      mkdir -p "$app/native/build/Release"
      cp "$repo/native/build/Release/sreg_fuse.node" "$app/native/build/Release/"
    fi
    sreg_desc="./dist as built from the working tree, copied at $(date -u '+%H:%M:%S UTC')"
    commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if ! git diff --quiet HEAD -- src 2>/dev/null || [ -n "$(git ls-files --others --exclude-standard src 2>/dev/null)" ]; then
      commit="$commit + uncommitted changes in src/"
    fi
  else
    rev="$(git rev-parse --verify --quiet "$sreg_from^{commit}")" || die "BENCH_SREG: no such revision: $sreg_from"
    say "compiling src/ of $sreg_from (${rev:0:7}) in $app"
    local parts=(src package.json tsconfig.json)
    git cat-file -e "$rev:spec" 2>/dev/null && parts+=(spec)
    git cat-file -e "$rev:native" 2>/dev/null && parts+=(native scripts/build-native.sh)
    git archive "$rev" "${parts[@]}" | tar -x -C "$app"
    if [ -d "$app/native" ]; then
      say "building the native FUSE adapter of $sreg_from"
      bash "$app/scripts/build-native.sh" 2>"$tmp/native.err" || say "its native adapter did not build: $(tail -n1 "$tmp/native.err")"
    fi
    cat >"$app/tsconfig.bench.json" <<'JSON'
{ "extends": "./tsconfig.json", "compilerOptions": { "sourceMap": false }, "include": ["src/**/*.ts"] }
JSON
    "$repo/node_modules/.bin/tsc" -p "$app/tsconfig.bench.json" || die "tsc failed on $sreg_from"
    sreg_desc="src/ of $sreg_from, compiled with tsc at the start"
    commit="${rev:0:7}"
  fi
  sreg_desc="$sreg_desc (BENCH_SREG=$sreg_from)"
  cli="$app/dist/src/cli/index.js"
  node "$cli" --help >/dev/null 2>"$tmp/help.err" \
    || { cat "$tmp/help.err" >&2; die "this sreg does not start (a build in progress? try again, or BENCH_SREG=HEAD)"; }
  say "sreg under test: $sreg_desc ($commit)"
}

# bench_image: $img (BENCH_IMAGE, built there and kept if missing; else built in $tmp) and $size.
bench_image() {
  if [ -n "${BENCH_IMAGE:-}" ]; then
    img="$(realpath -m "$BENCH_IMAGE")"
    if [ -s "$img" ]; then
      say "reusing $img (BENCH_IMAGE)"
    else
      say "building $img (BENCH_IMAGE; kept for later runs)"
      scripts/build-sif.sh --name bench --tag big --data-mib "$data_mib" "$img" >/dev/null
    fi
  else
    img="$tmp/bench.sif"
    say "building a ${data_mib} MiB-data SIF in $tmp"
    scripts/build-sif.sh --name bench --tag big --data-mib "$data_mib" "$img" >/dev/null
  fi
  size="$(stat -c %s "$img")"
  say "image: $size bytes"
}

# bench_emulator: our own emulator (port 0, a temp root, the token only through the
# environment), shaped with --latency-ms $latency_ms --bandwidth $bandwidth (unshaped when
# $bandwidth is empty: $bw_bytes is then 0).
bench_emulator() {
  local shaping lat_set shape=()
  [ -z "${bandwidth:-}" ] || shape=(--latency-ms "$latency_ms" --bandwidth "$bandwidth")
  DBX_TOKEN="bench-$(node -e 'process.stdout.write(require("node:crypto").randomBytes(16).toString("hex"))')"
  export DBX_TOKEN
  mkdir "$tmp/root"
  SREG_EMULATOR_TOKEN="$DBX_TOKEN" node "$cli" emulator --root "$tmp/root" --port 0 "${shape[@]}" \
    >"$tmp/emulator.out" 2>"$tmp/emulator.err" </dev/null &
  emu_pid=$!
  url=""
  for _ in $(seq 1 300); do
    url="$(sed -n 's/^listening on \(http:\/\/[^[:space:]]*\).*/\1/p' "$tmp/emulator.out" | head -n1)"
    [ -n "$url" ] && break
    kill -0 "$emu_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$tmp/emulator.err" >&2; die "the emulator did not start"; }
  say "emulator at $url (pid $emu_pid) ${shape[*]}"
  bw_bytes=0
  ((${#shape[@]})) || return 0
  shaping="$(admin GET /config)"
  bw_bytes="$(jget "$shaping" bandwidthBytesPerSec)"
  lat_set="$(jget "$shaping" latencyMs)"
  [ "$lat_set" = "$latency_ms" ] || die "the emulator's latencyMs is $lat_set, not $latency_ms"
  ((bw_bytes > 0)) || die "the emulator is not shaping bandwidth (--bandwidth $bandwidth)"
}

admin() { # METHOD PATH [JSON]: prints the answer
  local status
  if [ $# -ge 3 ]; then
    status="$(curl -sS -o "$tmp/admin.json" -w '%{http_code}' -X "$1" "$url/__emulator$2" \
      -H 'Content-Type: application/json' --data-binary "$3")"
  else
    status="$(curl -sS -o "$tmp/admin.json" -w '%{http_code}' -X "$1" "$url/__emulator$2")"
  fi
  [ "$status" = 200 ] || die "admin $1 $2 ${3:-}: HTTP $status: $(cat "$tmp/admin.json")"
  cat "$tmp/admin.json"
}
jget() { node -e 'const v = JSON.parse(process.argv[1]); process.stdout.write(String(process.argv[2].split(".").reduce((o, k) => o?.[k], v)))' "$1" "$2"; }
stats_bytes() { jget "$(admin GET /stats)" "$1"; }
shaping_off() { admin POST /config '{"bandwidthBytesPerSec":0,"latencyMs":0}' >/dev/null; }
shaping_on() { admin POST /config "{\"bandwidthBytesPerSec\":$bw_bytes,\"latencyMs\":$latency_ms}" >/dev/null; }

# CPU seconds: the client's = user + sys of this shell's finished children (`times`, run in
# this shell, not a subshell, so it sees them: curl, dd, sreg), the emulator's from its
# /proc/PID/stat. start_timing / stop_timing set $l (load1 before), $t0 $t1, $cpu_c $cpu_e.
clk_tck="$(getconf CLK_TCK)"
times_children() { # FILE (the output of `times`): user + sys seconds of the children
  awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.3f", s }' "$1"
}
proc_cpu() { awk -v hz="$clk_tck" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; } # PID
emu_cpu() { proc_cpu "$emu_pid"; }
start_timing() {
  l="$(load1)"
  times >"$tmp/times0"
  e0="$(emu_cpu)"
  t0="$(now_ns)"
}
stop_timing() {
  t1="$(now_ns)"
  times >"$tmp/times"
  local c0 c1 e1
  e1="$(emu_cpu)"
  c0="$(times_children "$tmp/times0")"
  c1="$(times_children "$tmp/times")"
  cpu_c="$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')"
  cpu_e="$(awk -v a="$e0" -v b="$e1" 'BEGIN { printf "%.2f", b - a }')"
}

# bench_report_head TITLE: the report's heading and the rows every benchmark has (date,
# machine, load average from bench_init to now); the script's own rows follow.
bench_report_head() {
  local cpu
  cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  cat <<EOF
# $1

| | |
|---|---|
| date | $(date -u '+%Y-%m-%d %H:%M:%S UTC') |
| machine | nproc $(nproc), ${cpu:-unknown CPU}, $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo), $(uname -r) |
| load average | at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) |
EOF
}

# --- sreg with a private environment, and its mounts ------------------------------------------
# use_env D: sreg's environment in $senv (HOME, sregistry.db, cache, storage under D, made if
# missing); the token reaches sreg through the environment only, never argv.
senv=()
use_env() {
  mkdir -p "$1/home" "$1/storage" "$1/db" "$1/cache"
  senv=(HOME="$1/home" SREGISTRY_STORAGE="$1/storage" SREGISTRY_DATABASE="$1/db" SINGULARITY_CACHEDIR="$1/cache"
    SREGISTRY_DROPBOX_ENDPOINT="$url" SREGISTRY_DROPBOX_TOKEN="$DBX_TOKEN" SREGISTRY_PYTHON_THREADS="$threads"
    SREGISTRY_CLIENT_SECRETS="$1/home/.sregistry")
}
sreg() { env "${senv[@]}" node "$cli" --quiet "$@"; }

# mount_up D MNT [ADAPTER]: `sreg mount --cache-size 4Gi [--fuse ADAPTER] MNT` in environment D
# (returns once the mount answers); sets $mpid, $mlog, $active_mnt, $active_d. With ADAPTER,
# the mount's log must name it (no silent fallback is measured as the adapter asked for).
active_mnt="" active_d="" mpid="" mlog=""
mount_up() {
  local fuse=()
  [ -z "${3:-}" ] || fuse=(--fuse "$3")
  use_env "$1"
  mkdir -p "$2"
  active_mnt="$2" active_d="$1"
  sreg mount --cache-size 4Gi "${fuse[@]}" "$2" >"$1/mount.out" 2>&1 || { cat "$1/mount.out" >&2; die "sreg mount $2 failed"; }
  mpid="$(sed -n 's/.*(pid \([0-9]*\),.*/\1/p' "$1/mount.out" | head -n1)"
  if [ -z "$mpid" ] || ! kill -0 "$mpid" 2>/dev/null; then cat "$1/mount.out" >&2; die "no mount process after sreg mount"; fi
  mlog="$(sed -n 's/.*, log \(.*\)); stop it with.*/\1/p' "$1/mount.out" | head -n1)"
  [ -f "$mlog" ] || die "no mount log in: $(cat "$1/mount.out")"
  if [ -n "${3:-}" ]; then
    grep -q "FUSE adapter: $3 " "$mlog" || die "the mount does not use the $3 adapter: $(grep 'FUSE adapter' "$mlog" || cat "$mlog")"
  fi
}
# mount_down: `sreg unmount` (uploads what is pending first) and waits for the process to go;
# sets $peak_kib (the mount's peak RSS over its life, ru_maxrss, from its last log line: polling
# /proc/PID/status for VmHWM 10 times a second made a cold read 2-3 s slower) and $m_cpu (its
# CPU seconds, user + sys, just before the unmount).
mount_down() {
  m_cpu="$(proc_cpu "$mpid" 2>/dev/null || echo 0)"
  sreg unmount "$active_mnt" >"$active_d/unmount.out" 2>&1 \
    || { cat "$active_d/unmount.out" >&2; die "sreg unmount $active_mnt failed"; }
  for _ in $(seq 1 300); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$mpid" 2>/dev/null && die "the mount process $mpid is still alive after unmount"
  peak_kib="$(sed -n "s/.* unmounted .* (peak memory \([0-9.]*\) MiB)\$/\1/p" "$mlog" | tail -n1)"
  [ -n "$peak_kib" ] || die "no peak memory in $mlog"
  peak_kib="$(awk -v m="$peak_kib" 'BEGIN { printf "%d", m * 1024 }')"
  mountpoint -q "$active_mnt" && die "$active_mnt is still mounted after sreg unmount"
  active_mnt="" mpid=""
}
# bench_unmount_hook: for bench_cleanup_hook: the mount in use, unmounted whatever happens.
bench_unmount_hook() {
  if [ -n "$active_mnt" ] && mountpoint -q "$active_mnt"; then
    use_env "$active_d"
    timeout 120 env "${senv[@]}" node "$cli" --quiet unmount "$active_mnt" >/dev/null 2>&1 \
      || fusermount -uz "$active_mnt" 2>/dev/null || umount -l "$active_mnt" 2>/dev/null || true
  fi
  [ -z "$mpid" ] || kill -KILL "$mpid" 2>/dev/null || true
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# ranged_curls RPATH: N ($threads) ranged curls of equal parts of RPATH ($size bytes) at once,
# into /dev/null: the best a client can do with N connections, no disk at all.
ranged_curls() {
  local i start end per=$((size / threads)) pids=()
  for ((i = 0; i < threads; i++)); do
    start=$((i * per))
    end=$((i == threads - 1 ? size - 1 : (i + 1) * per - 1))
    dbx_curl --fail -r "$start-$end" -o /dev/null -X POST "$url/2/files/download" \
      -H "Dropbox-API-Arg: {\"path\":\"$1\"}" -w '%{size_download}\n' >"$tmp/b.$i.size" &
    pids+=($!)
    kids+=($!)
  done
  wait_all "${pids[@]}" || die "a ranged curl failed"
  [ "$(cat "$tmp"/b.*.size | awk '{s += $1} END {print s}')" = "$size" ] || die "the ranged curls did not get $size bytes"
}
