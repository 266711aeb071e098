#!/usr/bin/env bash
# Measures `sreg mount` on both FUSE adapters (the native addon over libfuse 3, and fuse-native
# over libfuse 2) against baselines taken in the same run, over `sreg emulator` shaped like a
# far-away Dropbox (added latency, per-connection bandwidth), and unshaped for the CPU cost.
# Needs root and /dev/fuse (real kernel mounts, a loop mount, drop_caches).
#
#   scripts/bench-mount.sh [--out bench/results/mount.md]
#
# Environment (all optional):
#   BENCH_ADAPTERS     the adapters to measure (default "native fuse-native"), each mount with
#                      `sreg mount --fuse A`; the mount's log must name it
#   BENCH_LATENCY_MS   emulator --latency-ms (default 20)
#   BENCH_BANDWIDTH    emulator --bandwidth, per connection (default 40M = 40·10⁶ B/s)
#   BENCH_RUNS         rounds (default 3; 2..9); in each, the adapters take turns (the order
#                      alternates from round to round)
#   BENCH_IMAGE        a SIF to use; built there (and kept) if missing
#   BENCH_DATA_MIB     --data-mib for the image (default 1000: a ~1 GiB SIF whose runscript is
#                      a small program beside a 1000 MiB data file it does not read)
#   BENCH_CATALOG      images in the big catalog (default 10000: 100 collections × 100)
#   SREGISTRY_PYTHON_THREADS  N: sreg's fetch workers and the baselines' parallel curls (default 9)
#   BENCH_SREG         which sreg to measure: `dist` (default) or a git revision (see lib/bench.sh)
#
# In each round (MB = 10⁶ bytes), every mount a fresh `sreg mount` (background) with its own
# HOME, sregistry.db and SINGULARITY_CACHEDIR unless said otherwise:
#   baselines: B = N ranged curls of equal parts at once (→ /dev/null), shaped; local = dd
#     bs=1M of the image from local disk (page cache dropped); page = the same dd again (the
#     image in the page cache); floor = the CPU of B unshaped plus `openssl dgst -sha256` of
#     the image (from the page cache); start-pull = `sreg pull` + a container start from local
#     disk; push = `sreg push --force`.
#   per adapter:
#   1. cold: a fresh mount, `dd if=MNT/bench/bench:big.simg of=/dev/null bs=1M` (bytes fetched
#      = the emulator's bytesSent meanwhile; the mount's CPU meanwhile).
#   2. second: the same dd again in the same mount (the page cache as the adapter leaves it),
#      three times (each a row), as the baseline page (three dd of the image from the page cache).
#   3. warm: the same cache after `sreg unmount` and a new `sreg mount`, page cache dropped, dd
#      again; then `cmp` of the mounted file with the image (outside the timing).
#   4. cold-cpu: shaping off, a fresh mount, dd: the mount's CPU per GiB against the floor.
#   5. container start, as Singularity runs a SIF: `siftool list` finds the primary system
#      partition, `mount -o loop,ro,offset=N`, `chroot DIR /.singularity.d/runscript`, umount;
#      from a fresh mount (cold cache).
#   6. cp: `cp IMG MNT/bench/` (until cp returns), then `sreg unmount` (until everything is
#      uploaded). The uploaded content_hash is checked.
#   then the catalog: BENCH_CATALOG small images uploaded once (shaping off); per adapter the
#   first mount (full listing), then per round `ls -lR MNT` twice (the second is "warm") and a
#   remount with the catalog already synced: `sreg mount` until `ls MNT` answers.
#   Peak memory of every mount process: its ru_maxrss over its whole life, which it logs when it
#   unmounts.
# Everything it starts is stopped, mounts unmounted and its temp dir removed on exit (trap
# EXIT), also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

bench_settings bench/results/mount.md "$@"
catalog_n="${BENCH_CATALOG:-10000}"
[[ "$catalog_n" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_CATALOG wants a positive whole number" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "bench-mount: needs root (a FUSE mount, a loop mount, drop_caches)" >&2; exit 1; }
[ -c /dev/fuse ] || { echo "bench-mount: no /dev/fuse" >&2; exit 1; }
need curl dd node git siftool chroot mount umount cmp fusermount

bench_init mount
read -r -a adapters <<<"${BENCH_ADAPTERS:-native fuse-native}"
((${#adapters[@]})) || { echo "BENCH_ADAPTERS is empty" >&2; exit 2; }
for a in "${adapters[@]}"; do
  case "$a" in native | fuse-native) ;; *) echo "BENCH_ADAPTERS: unknown adapter $a (native, fuse-native)" >&2; exit 2 ;; esac
done
need openssl

# The loop mount and the mount in use: unmounted at exit whatever happens.
loop_dir=""
bench_cleanup_hook() {
  if [ -n "$loop_dir" ] && mountpoint -q "$loop_dir"; then umount "$loop_dir" 2>/dev/null || umount -l "$loop_dir" || true; fi
  bench_unmount_hook
}

bench_private_sreg
bench_image
bench_emulator

local_hash="$(node --input-type=module -e "
  import { blockDigests, combineBlockDigests } from '$app/dist/src/dropbox/content-hash.js';
  process.stdout.write(combineBlockDigests(await blockDigests(process.argv[1], 0, Number(process.argv[2]))));
" "$img" "$size")"

results="$tmp/results.tsv" # kind adapter run seconds bytes_moved peak_kib load1 client_cpu_s emulator_cpu_s mount_cpu_s
: >"$results"
row() { # KIND ADAPTER RUN SECONDS BYTES PEAK_KIB MOUNT_CPU
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "$l" "$cpu_c" "$cpu_e" "$7" >>"$results"
  say "run $3: $1${2:+ ($2)} $4 s${5:+, $5 bytes}${7:+, mount CPU $7 s}"
}

rpath="/bench/bench:big.simg"
say "uploading the image to $rpath (shaping off)"
shaping_off
use_env "$tmp/seed"
sreg push --force "$img" --name bench/bench:big >"$tmp/seed/push.out" 2>&1 || { cat "$tmp/seed/push.out" >&2; die "seeding push failed"; }
shaping_on
meta="$(dbx_rpc "$url" files/get_metadata "{\"path\":\"$rpath\"}")" || die "get_metadata: HTTP $DBX_STATUS: $meta"
[ "$(jget "$meta" content_hash)" = "$local_hash" ] || die "the seeded image's content_hash differs: $meta"

# run_container FILE: what `singularity run FILE` does with a SIF, step by step.
run_container() {
  local f="$1" off
  off="$(siftool list "$f" | awk -F'|' '/System/ {split($4, a, "-"); gsub(/ /, "", a[1]); print a[1]; exit}')"
  [[ "$off" =~ ^[0-9]+$ ]] || die "no primary system partition in $f"
  mount -o "loop,ro,offset=$off" "$f" "$loop_dir"
  chroot "$loop_dir" /.singularity.d/runscript >"$tmp/run.out" 2>&1
  umount "$loop_dir"
  grep -q 'Hello from bench:big' "$tmp/run.out" || { cat "$tmp/run.out" >&2; die "the runscript did not run"; }
}

# timed_on_mount CMD...: CMD, timed, while the mount runs; sets $fetched (the emulator's
# bytesSent meanwhile) and $mount_cpu (the mount process's CPU seconds meanwhile).
timed_on_mount() {
  local mc0 mc1
  admin POST /stats/reset >/dev/null
  mc0="$(proc_cpu "$mpid")"
  start_timing
  track "$@"
  stop_timing
  mc1="$(proc_cpu "$mpid")"
  fetched="$(stats_bytes bytesSent)"
  mount_cpu="$(awk -v a="$mc0" -v b="$mc1" 'BEGIN { printf "%.2f", b - a }')"
}
timed_dd_from_mount() { timed_on_mount dd if="$mnt$rpath" of=/dev/null bs=1M status=none; }

mnt="$tmp/mnt"
loop_dir="$tmp/loop"
mkdir -p "$loop_dir"

# baselines RUN: what needs no mount.
baselines() {
  local run="$1" d
  start_timing
  track ranged_curls "$rpath"
  stop_timing
  row B "" "$run" "$(secs "$t0" "$t1")" "$size" "" ""

  drop_caches
  start_timing
  track dd if="$img" of=/dev/null bs=1M status=none
  stop_timing
  row local "" "$run" "$(secs "$t0" "$t1")" "" "" ""
  for _ in 1 2 3; do
    start_timing
    track dd if="$img" of=/dev/null bs=1M status=none
    stop_timing
    row page "" "$run" "$(secs "$t0" "$t1")" "" "" ""
  done

  # The floor of a cold read's CPU: the curls unshaped, and SHA-256 of the bytes by OpenSSL
  # (the CPU's SHA instructions, as Node's crypto), from the page cache.
  shaping_off
  start_timing
  track ranged_curls "$rpath"
  stop_timing
  row floor-curls "" "$run" "$(secs "$t0" "$t1")" "$size" "" ""
  start_timing
  track openssl dgst -sha256 "$img" >/dev/null
  stop_timing
  row floor-sha256 "" "$run" "$(secs "$t0" "$t1")" "" "" ""
  shaping_on

  d="$tmp/p-$run"
  rm -rf "$d"
  use_env "$d"
  drop_caches
  admin POST /stats/reset >/dev/null
  start_timing
  track sreg pull bench/bench:big >"$d/pull.out" 2>&1 || { cat "$d/pull.out" >&2; die "sreg pull failed"; }
  track run_container "$d/storage/bench-bench:big.simg"
  stop_timing
  row start-pull "" "$run" "$(secs "$t0" "$t1")" "$(stats_bytes bytesSent)" "" ""
  rm -rf "$d"

  d="$tmp/u-$run"
  rm -rf "$d"
  use_env "$d"
  admin POST /stats/reset >/dev/null
  start_timing
  track sreg push --force "$img" --name bench/bench:pushed >"$d/push.out" 2>&1 || { cat "$d/push.out" >&2; die "sreg push failed"; }
  stop_timing
  row push "" "$run" "$(secs "$t0" "$t1")" "$(stats_bytes bytesReceived)" "" ""
  rm -rf "$d"
}

# with_adapter A RUN: the mount's measurements on adapter A.
with_adapter() {
  local a="$1" run="$2" d cp_t0
  local cold_secs cold_fetched cold_cpu second_secs second_cpu secs_ fetched_ cpu_
  # 1-2. cold read, then a second read in the same mount --------------------------------------
  d="$tmp/m-$run-$a"
  rm -rf "$d"
  mount_up "$d" "$mnt" "$a"
  sync
  timed_dd_from_mount
  cold_secs="$(secs "$t0" "$t1")" cold_fetched="$fetched" cold_cpu="$mount_cpu"
  # A read from the page cache takes a tenth of a second: three of them, each a row.
  local second=()
  for _ in 1 2 3; do
    timed_dd_from_mount
    second+=("$(secs "$t0" "$t1") $mount_cpu $l $cpu_c $cpu_e")
  done
  mount_down
  row cold "$a" "$run" "$cold_secs" "$cold_fetched" "$peak_kib" "$cold_cpu"
  local x
  for x in "${second[@]}"; do
    read -r second_secs second_cpu l cpu_c cpu_e <<<"$x"
    row second "$a" "$run" "$second_secs" "" "" "$second_cpu"
  done

  # 3. warm read: the cache kept across a remount, the page cache dropped ---------------------
  mount_up "$d" "$mnt" "$a"
  drop_caches
  timed_dd_from_mount
  secs_="$(secs "$t0" "$t1")" fetched_="$fetched" cpu_="$mount_cpu"
  cmp -s "$mnt$rpath" "$img" || die "the mounted image's bytes differ from the image ($a)"
  mount_down
  row warm "$a" "$run" "$secs_" "$fetched_" "$peak_kib" "$cpu_"
  rm -rf "$d"

  # 4. the CPU of a cold read from the unshaped emulator -------------------------------------
  d="$tmp/x-$run-$a"
  rm -rf "$d"
  shaping_off
  mount_up "$d" "$mnt" "$a"
  sync
  timed_dd_from_mount
  secs_="$(secs "$t0" "$t1")" fetched_="$fetched" cpu_="$mount_cpu"
  mount_down
  shaping_on
  row cold-cpu "$a" "$run" "$secs_" "$fetched_" "$peak_kib" "$cpu_"
  rm -rf "$d"

  # 5. container start ------------------------------------------------------------------------
  d="$tmp/c-$run-$a"
  rm -rf "$d"
  mount_up "$d" "$mnt" "$a"
  drop_caches
  timed_on_mount run_container "$mnt$rpath"
  secs_="$(secs "$t0" "$t1")" fetched_="$fetched" cpu_="$mount_cpu"
  mount_down
  row start-mount "$a" "$run" "$secs_" "$fetched_" "$peak_kib" "$cpu_"
  rm -rf "$d"

  # 6. cp into the mount, then unmount (everything uploaded) ---------------------------------
  d="$tmp/w-$run-$a"
  rm -rf "$d"
  mount_up "$d" "$mnt" "$a"
  admin POST /stats/reset >/dev/null
  start_timing
  track cp "$img" "$mnt/bench/copied:run$run-$a.simg"
  stop_timing
  cp_t0="$t0"
  row cp "$a" "$run" "$(secs "$t0" "$t1")" "" "" ""
  start_timing
  mount_down
  stop_timing
  row cp+unmount "$a" "$run" "$(secs "$cp_t0" "$t1")" "$(stats_bytes bytesReceived)" "$peak_kib" "$m_cpu"
  meta="$(dbx_rpc "$url" files/get_metadata "{\"path\":\"/bench/copied:run$run-$a.simg\"}")" \
    || die "get_metadata after cp: HTTP $DBX_STATUS: $meta"
  [ "$(jget "$meta" content_hash)" = "$local_hash" ] || die "cp into the mount ($a): content_hash differs: $meta"
  rm -rf "$d"
}

# order RUN: the adapters in turn, reversed every other round (neither always goes first).
order() {
  if (($1 % 2)); then printf '%s\n' "${adapters[@]}"; else printf '%s\n' "${adapters[@]}" | tac; fi
}

for run in $(seq 1 "$runs"); do
  # Each round starts with a quiet disk: the last round left gigabytes of dirty pages (cp's
  # spool, adopted blocks, the pulled image), whose writeback made the next cold read (which
  # writes its blocks) up to 60 % slower.
  sync
  baselines "$run"
  for a in $(order "$run"); do sync; with_adapter "$a" "$run"; done
done

# --- the catalog: BENCH_CATALOG images ---------------------------------------------------------
say "uploading $catalog_n small images under /catalog (shaping off)"
shaping_off
node "$repo/scripts/lib/seed-catalog.mjs" "$url" "$catalog_n" || die "seeding the catalog failed"
shaping_on

for a in "${adapters[@]}"; do
  d="$tmp/cat-$a"
  rm -rf "$d"
  start_timing
  mount_up "$d" "$mnt" "$a"
  track ls "$mnt" >/dev/null
  stop_timing
  row first-mount "$a" 1 "$(secs "$t0" "$t1")" "" "" ""
  mount_down
done
for run in $(seq 1 "$runs"); do
  for a in $(order "$run"); do
    d="$tmp/cat-$a"
    mount_up "$d" "$mnt" "$a"
    start_timing
    track ls -lR "$mnt" >"$tmp/lsr.txt"
    stop_timing
    row ls-lR-first "$a" "$run" "$(secs "$t0" "$t1")" "" "" ""
    got="$(grep -c ':latest\.simg$' "$tmp/lsr.txt" || true)"
    [ "$got" = "$catalog_n" ] || die "ls -lR ($a) shows $got catalog images, not $catalog_n"
    start_timing
    track ls -lR "$mnt" >/dev/null
    stop_timing
    row ls-lR-warm "$a" "$run" "$(secs "$t0" "$t1")" "" "" ""
    mount_down
    row catalog-mount "$a" "$run" 0 "" "$peak_kib" "$m_cpu"
    # The remount: `sreg mount` with the catalog already synced, until `ls` answers.
    start_timing
    mount_up "$d" "$mnt" "$a"
    track ls "$mnt" >/dev/null
    stop_timing
    row remount-ls "$a" "$run" "$(secs "$t0" "$t1")" "" "" ""
    mount_down
  done
done

# sreg's fixed cost, for reference: `sreg status` (node start-up, the CLI's modules), no mount.
use_env "$tmp/start"
for run in $(seq 1 "$runs"); do
  start_timing
  track sreg status >/dev/null
  stop_timing
  row node-start "" "$run" "$(secs "$t0" "$t1")" "" "" ""
done

# --- report ------------------------------------------------------------------------------------
elapsed=$(($(date +%s) - script_t0))
mkdir -p "$(dirname "$out")"
node scripts/lib/mount-report.mjs "$results" "$size" "$threads" "$catalog_n" "${adapters[*]}" >"$tmp/tables.md" || die "the report failed"
{
  # shellcheck disable=SC2016 # literal backticks: Markdown
  bench_report_head '`sreg mount` benchmark'
  cat <<EOF
| software | node $(node --version), $(curl --version | head -n1 | cut -d' ' -f1-2), $(openssl version | cut -d' ' -f1-2), libfuse2 $(dpkg-query -W -f='${Version}' libfuse2 2>/dev/null || echo '?'), libfuse3 $(dpkg-query -W -f='${Version}' libfuse3-3 2>/dev/null || echo '?') |
| sreg | **$commit**: $sreg_desc |
| image | \`scripts/build-sif.sh --name bench --tag big --data-mib $data_mib IMG.sif\`: $size bytes, at $rpath (content_hash checked) |
| emulator | \`node dist/src/cli/index.js emulator --root TMP --port 0 --latency-ms $latency_ms --bandwidth $bandwidth\` ($bw_bytes B/s per connection, both directions; ${latency_ms} ms before every response); client and server on this machine (loopback) |
| N | SREGISTRY_PYTHON_THREADS=$threads (the mount's fetch limit, the baselines' connections) |
| adapters | ${adapters[*]} (\`sreg mount --fuse A\`; each mount's log checked to name it) |
| mount | \`sreg mount --cache-size 4Gi --fuse A MNT\` (background), fresh HOME, sregistry.db and SINGULARITY_CACHEDIR per mount unless said |
| runs | $runs rounds, each after a \`sync\`: the baselines (B, local, page, floor, start-pull, push), then per adapter in turn (order reversed every other round) cold, second, warm, cold-cpu, start-mount, cp; the catalog part after them |
| script time | ${elapsed} s in all |

MB = 10⁶ bytes. "bytes moved" is the emulator's \`bytesSent\` (reads) or \`bytesReceived\` (writes) over the
measurement, request and response bodies only. Peak RSS is the mount process's ru_maxrss over
its whole life, unmount and draining uploads included, from the line it logs when it unmounts.

## Commands

\`sreg\` is the private copy under test: \`node dist/src/cli/index.js --quiet\` with the environment above.

- **B**: for i in 0..$((threads - 1)) at once: \`curl --fail -r START_i-END_i -o /dev/null -X POST \$URL/2/files/download -H 'Dropbox-API-Arg: {"path":"$rpath"}'\`, equal parts.
- **cold read**: \`sreg mount MNT\`, then timed: \`dd if=MNT$rpath of=/dev/null bs=1M\`; the mount's CPU (user + sys from /proc/PID/stat) meanwhile.
- **second read**: the same \`dd\` again right after, in the same mount, three times.
- **page**: \`dd if=IMG of=/dev/null bs=1M\` right after the local read (the image in the page cache), three times.
- **cold-cpu and its floor**: the emulator's shaping off; the floor is the CPU of the $threads ranged curls (as B) plus \`openssl dgst -sha256 IMG\` (from the page cache); then a fresh mount and the cold \`dd\`: the mount's CPU per GiB (2³⁰ bytes) against the floor's.
- **warm read**: \`sreg unmount MNT; sreg mount MNT\` (same cache), \`sync; echo 3 > /proc/sys/vm/drop_caches\`, then timed: the same \`dd\`; after it, \`cmp MNT$rpath IMG\`.
- **local read**: drop_caches, then timed: \`dd if=IMG of=/dev/null bs=1M\`.
- **container start from the mount**: a fresh \`sreg mount\`, drop_caches, then timed: \`siftool list F\` (the primary system partition's offset N), \`mount -o loop,ro,offset=N F DIR\`, \`chroot DIR /.singularity.d/runscript\` (prints "Hello from bench:big"), \`umount DIR\`, with F = MNT$rpath.
- **container start after pull**: drop_caches, then timed: \`sreg pull bench/bench:big\` and the same steps with F = the pulled file.
- **cp**: a fresh \`sreg mount\`, then timed: \`cp IMG MNT/bench/copied:runR-A.simg\`; then timed on: \`sreg unmount MNT\`; the remote content_hash is checked.
- **sreg push**: \`sreg push --force IMG --name bench/bench:pushed\`.
- **catalog**: $catalog_n files \`/catalog/cNNN/imgNNN:latest.simg\` (100 per collection) uploaded once with shaping off (\`scripts/lib/seed-catalog.mjs\`); per adapter a fresh \`sreg mount\` timed until \`ls MNT\` answers (first mount: full listing); per round and adapter \`ls -lR MNT\` twice, then \`sreg unmount\` and, timed, \`sreg mount MNT\` + \`ls MNT\` with the catalog already in sregistry.db.

EOF
  cat "$tmp/tables.md"
} >"$out"
say "wrote $out (${elapsed} s)"
cat "$out"
