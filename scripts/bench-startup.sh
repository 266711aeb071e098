#!/usr/bin/env bash
# Measures `sreg mount` start-up alone (issue 10's "Start-up" aim: ≤ 0.3 s with 10,000 images
# synced), in under a minute: a shaped `sreg emulator` (as bench-mount.sh), BENCH_CATALOG small
# images uploaded once (shaping off), a first mount (the full listing), then BENCH_RUNS times:
# `sreg mount` (background; returns once the mount logged `ready`) until `ls MNT` answers, and
# `sreg unmount`. Prints each run and the median, and (from SREG_TRACE_START's trace, when the
# sreg under test has it) the CPU time of the `sreg mount` parent until it returned and of the
# mount process until it was ready: a busy machine inflates the wall time more than these.
#
#   scripts/bench-startup.sh
#
# Environment: BENCH_CATALOG (default 10000), BENCH_RUNS (default 5), BENCH_LATENCY_MS (20),
# BENCH_BANDWIDTH (40M), BENCH_SREG (dist | a git revision, see lib/bench.sh). Needs root and
# /dev/fuse. Everything it starts is stopped and its temp dir removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

BENCH_RUNS="${BENCH_RUNS:-5}"
bench_settings /dev/null "$@"
catalog_n="${BENCH_CATALOG:-10000}"
[[ "$catalog_n" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_CATALOG wants a positive whole number" >&2; exit 2; }
[ -c /dev/fuse ] || { echo "bench-startup: no /dev/fuse" >&2; exit 1; }
need curl node fusermount

bench_init startup
mnt="$tmp/mnt" d="$tmp/cat" mounted=""
bench_cleanup_hook() {
  if [ -n "$mounted" ] && mountpoint -q "$mnt"; then
    timeout 60 env "${senv[@]}" node "$cli" --quiet unmount "$mnt" >/dev/null 2>&1 || fusermount -uz "$mnt" 2>/dev/null || true
  fi
}
bench_private_sreg
bench_emulator

mkdir -p "$d/home" "$d/storage" "$d/db" "$d/cache" "$mnt"
senv=(HOME="$d/home" SREGISTRY_STORAGE="$d/storage" SREGISTRY_DATABASE="$d/db" SINGULARITY_CACHEDIR="$d/cache"
  SREGISTRY_DROPBOX_ENDPOINT="$url" SREGISTRY_DROPBOX_TOKEN="$DBX_TOKEN" SREGISTRY_PYTHON_THREADS="$threads"
  SREGISTRY_CLIENT_SECRETS="$d/home/.sregistry")
sreg() { env "${senv[@]}" SREG_TRACE_START=1 node "$cli" --quiet "$@"; }

say "uploading $catalog_n small images under /catalog (shaping off)"
shaping_off
node scripts/lib/seed-catalog.mjs "$url" "$catalog_n" || die "seeding the catalog failed"
shaping_on

# One mount + ls; prints "SECONDS PARENT_CPU_MS CHILD_CPU_MS" (the CPU figures "-" without a trace).
mount_ls() {
  local t0 t1 logf pc cc
  t0="$(now_ns)"
  sreg mount "$mnt" >"$tmp/mount.out" 2>"$tmp/mount.err" || { cat "$tmp/mount.out" "$tmp/mount.err" >&2; die "sreg mount failed"; }
  mounted=1
  ls "$mnt" >/dev/null
  t1="$(now_ns)"
  logf="$(sed -n 's/.*, log \(.*\)); stop it with.*/\1/p' "$tmp/mount.out" | head -n1)"
  pc="$(sed -n 's/.* cpu \([0-9]*\) parent: saw ready$/\1/p' "$tmp/mount.err" | tail -n1)"
  cc="$(sed -n 's/.* cpu \([0-9]*\) ready$/\1/p' "$logf.stderr" 2>/dev/null | tail -n1)"
  echo "$(secs "$t0" "$t1") ${pc:--} ${cc:--}"
  sreg unmount "$mnt" >/dev/null 2>&1 || die "sreg unmount failed"
  mounted=""
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
first="$(mount_ls | cut -d' ' -f1)"
say "first mount (full listing of $catalog_n images) until ls: $first s"
: >"$tmp/runs"
for run in $(seq 1 "$runs"); do
  r="$(mount_ls)"
  echo "$r" >>"$tmp/runs"
  set -- $r
  say "run $run: sreg mount with the catalog synced, until ls answers: $1 s (CPU ms: parent $2, mount until ready $3)"
done
all="$(cut -d' ' -f1 "$tmp/runs" | tr '\n' ' ')"
echo "remount-ls median of $runs: $(cut -d' ' -f1 "$tmp/runs" | median) s (runs: $all; first mount $first s; $catalog_n images, latency ${latency_ms} ms, load $(load1))"
if ! grep -q ' -' "$tmp/runs"; then
  echo "CPU medians: parent $(cut -d' ' -f2 "$tmp/runs" | median) ms, mount until ready $(cut -d' ' -f3 "$tmp/runs" | median) ms"
fi
