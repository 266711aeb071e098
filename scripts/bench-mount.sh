#!/usr/bin/env bash
# Measures `sreg mount` against baselines taken in the same run, over `sreg emulator` shaped
# like a far-away Dropbox (added latency, per-connection bandwidth). Needs root and /dev/fuse
# (a real kernel mount, a loop mount, drop_caches).
#
#   scripts/bench-mount.sh [--out bench/results/mount.md]
#
# Environment (all optional):
#   BENCH_LATENCY_MS   emulator --latency-ms (default 20)
#   BENCH_BANDWIDTH    emulator --bandwidth, per connection (default 40M = 40·10⁶ B/s)
#   BENCH_RUNS         runs of each measurement (default 3; 2..9)
#   BENCH_IMAGE        a SIF to use; built there (and kept) if missing
#   BENCH_DATA_MIB     --data-mib for the image (default 1000: a ~1 GiB SIF whose runscript is
#                      a small program beside a 1000 MiB data file it does not read)
#   BENCH_CATALOG      images in the big catalog (default 10000: 100 collections × 100)
#   SREGISTRY_PYTHON_THREADS  N: sreg's fetch workers and the baseline's parallel curls (default 9)
#   BENCH_SREG         which sreg to measure: `dist` (default) or a git revision (see lib/bench.sh)
#
# What it does, in one run (MB = 10⁶ bytes), every mount a fresh `sreg mount` (background) with
# its own HOME, sregistry.db and SINGULARITY_CACHEDIR unless said otherwise:
#   1. cold read: B = N ranged curls of equal parts at once (→ /dev/null); then a fresh mount
#      and `dd if=MNT/bench/bench:big.simg of=/dev/null bs=1M` (bytes fetched = the emulator's
#      bytesSent over the dd).
#   2. warm read: the same mount's cache after `sreg unmount` and a new `sreg mount`, page cache
#      dropped, `dd bs=1M` again, against `dd bs=1M` of the local image (page cache dropped);
#      then `cmp` of the mounted file with the image (outside the timing).
#   3. container start, as Singularity runs a SIF: `siftool list` finds the primary system
#      partition, `mount -o loop,ro,offset=N`, `chroot DIR /.singularity.d/runscript`, umount;
#      from a fresh mount (cold cache) against `sreg pull` followed by the same from local disk.
#   4. cp: `cp IMG MNT/bench/` (until cp returns), then `sreg unmount` (until everything is
#      uploaded); against `sreg push --force IMG`. The uploaded content_hash is checked.
#   5. catalog: BENCH_CATALOG small images uploaded once (shaping off); the first mount (full
#      listing); then per run `ls -lR MNT` twice (the second is "warm"), and a remount with the
#      catalog already synced: `sreg mount` until `ls MNT` answers.
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

# The mount in use and its loop mount: unmounted at exit whatever happens.
active_mnt="" active_d="" mpid="" mlog="" loop_dir=""
bench_cleanup_hook() {
  if [ -n "$loop_dir" ] && mountpoint -q "$loop_dir"; then umount "$loop_dir" 2>/dev/null || umount -l "$loop_dir" || true; fi
  if [ -n "$active_mnt" ] && mountpoint -q "$active_mnt"; then
    use_env "$active_d"
    timeout 120 env "${senv[@]}" node "$cli" --quiet unmount "$active_mnt" >/dev/null 2>&1 \
      || fusermount -uz "$active_mnt" 2>/dev/null || umount -l "$active_mnt" 2>/dev/null || true
  fi
  [ -z "$mpid" ] || kill -KILL "$mpid" 2>/dev/null || true
}

bench_private_sreg
bench_image
bench_emulator

local_hash="$(node --input-type=module -e "
  import { blockDigests, combineBlockDigests } from '$app/dist/src/dropbox/content-hash.js';
  process.stdout.write(combineBlockDigests(await blockDigests(process.argv[1], 0, Number(process.argv[2]))));
" "$img" "$size")"

# --- sreg with a private environment D (HOME, sregistry.db, cache, storage) -------------------
senv=()
use_env() { # D: a fresh one unless it exists
  mkdir -p "$1/home" "$1/storage" "$1/db" "$1/cache"
  senv=(HOME="$1/home" SREGISTRY_STORAGE="$1/storage" SREGISTRY_DATABASE="$1/db" SINGULARITY_CACHEDIR="$1/cache"
    SREGISTRY_DROPBOX_ENDPOINT="$url" SREGISTRY_DROPBOX_TOKEN="$DBX_TOKEN" SREGISTRY_PYTHON_THREADS="$threads"
    SREGISTRY_CLIENT_SECRETS="$1/home/.sregistry")
}
sreg() { env "${senv[@]}" node "$cli" --quiet "$@"; } # the token reaches it through the env only

# mount_up D MNT: `sreg mount` (returns once the mount answers); sets $mpid.
mount_up() {
  use_env "$1"
  mkdir -p "$2"
  active_mnt="$2" active_d="$1"
  sreg mount --cache-size 4Gi "$2" >"$1/mount.out" 2>&1 || { cat "$1/mount.out" >&2; die "sreg mount $2 failed"; }
  mpid="$(sed -n 's/.*(pid \([0-9]*\),.*/\1/p' "$1/mount.out" | head -n1)"
  if [ -z "$mpid" ] || ! kill -0 "$mpid" 2>/dev/null; then cat "$1/mount.out" >&2; die "no mount process after sreg mount"; fi
  mlog="$(sed -n 's/.*, log \(.*\)); stop it with.*/\1/p' "$1/mount.out" | head -n1)"
  [ -f "$mlog" ] || die "no mount log in: $(cat "$1/mount.out")"
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
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

results="$tmp/results.tsv" # kind run seconds bytes_moved peak_kib load1 client_cpu_s emulator_cpu_s mount_cpu_s
: >"$results"
row() { # KIND RUN SECONDS BYTES PEAK_KIB MOUNT_CPU
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$l" "$cpu_c" "$cpu_e" "$6" >>"$results"
  say "run $2: $1 $3 s${4:+, $4 bytes}"
}

rpath="/bench/bench:big.simg"
say "uploading the image to $rpath (shaping off)"
shaping_off
use_env "$tmp/seed"
sreg push --force "$img" --name bench/bench:big >"$tmp/seed/push.out" 2>&1 || { cat "$tmp/seed/push.out" >&2; die "seeding push failed"; }
shaping_on
meta="$(dbx_rpc "$url" files/get_metadata "{\"path\":\"$rpath\"}")" || die "get_metadata: HTTP $DBX_STATUS: $meta"
[ "$(jget "$meta" content_hash)" = "$local_hash" ] || die "the seeded image's content_hash differs: $meta"

# baseline_b: N ranged curls of equal parts at once, into /dev/null (the best a client can do
# with N connections: no disk at all).
baseline_b() {
  local i start end per=$((size / threads)) pids=()
  for ((i = 0; i < threads; i++)); do
    start=$((i * per))
    end=$((i == threads - 1 ? size - 1 : (i + 1) * per - 1))
    dbx_curl --fail -r "$start-$end" -o /dev/null -X POST "$url/2/files/download" \
      -H "Dropbox-API-Arg: {\"path\":\"$rpath\"}" -w '%{size_download}\n' >"$tmp/b.$i.size" &
    pids+=($!)
    kids+=($!)
  done
  wait_all "${pids[@]}" || die "a ranged curl failed"
  [ "$(cat "$tmp"/b.*.size | awk '{s += $1} END {print s}')" = "$size" ] || die "baseline B did not get $size bytes"
}

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

# timed_dd_from_mount: `dd bs=1M` of the image from the mount, timed; sets $fetched (the
# emulator's bytesSent meanwhile) and $dd_mount_cpu (the mount process's CPU seconds meanwhile).
timed_dd_from_mount() {
  local mc0 mc1
  admin POST /stats/reset >/dev/null
  mc0="$(proc_cpu "$mpid")"
  start_timing
  track dd if="$mnt$rpath" of=/dev/null bs=1M status=none
  stop_timing
  mc1="$(proc_cpu "$mpid")"
  fetched="$(stats_bytes bytesSent)"
  dd_mount_cpu="$(awk -v a="$mc0" -v b="$mc1" 'BEGIN { printf "%.2f", b - a }')"
}

mnt="$tmp/mnt"
loop_dir="$tmp/loop"
mkdir -p "$loop_dir"

for run in $(seq 1 "$runs"); do
  # Each round starts with a quiet disk: the last round left gigabytes of dirty pages (cp's
  # spool, adopted blocks, the pulled image), whose writeback made the next cold read (which
  # writes its blocks) up to 60 % slower.
  sync
  # 1. cold sequential read ---------------------------------------------------------------
  start_timing
  track baseline_b
  stop_timing
  row B "$run" "$(secs "$t0" "$t1")" "$size" "" ""

  d="$tmp/m-$run"
  rm -rf "$d"
  mount_up "$d" "$mnt"
  sync
  timed_dd_from_mount
  mount_down
  row cold "$run" "$(secs "$t0" "$t1")" "$fetched" "$peak_kib" "$dd_mount_cpu"

  # 2. warm read: the cache kept across a remount, the page cache dropped ------------------
  mount_up "$d" "$mnt"
  drop_caches
  timed_dd_from_mount
  cmp -s "$mnt$rpath" "$img" || die "the mounted image's bytes differ from the image"
  mount_down
  row warm "$run" "$(secs "$t0" "$t1")" "$fetched" "$peak_kib" "$dd_mount_cpu"

  drop_caches
  start_timing
  track dd if="$img" of=/dev/null bs=1M status=none
  stop_timing
  row local "$run" "$(secs "$t0" "$t1")" "" "" ""
  rm -rf "$d"

  # 3. container start ---------------------------------------------------------------------
  d="$tmp/c-$run"
  rm -rf "$d"
  mount_up "$d" "$mnt"
  drop_caches
  admin POST /stats/reset >/dev/null
  start_timing
  track run_container "$mnt$rpath"
  stop_timing
  fetched="$(stats_bytes bytesSent)"
  mount_down
  row start-mount "$run" "$(secs "$t0" "$t1")" "$fetched" "$peak_kib" "$m_cpu"
  rm -rf "$d"

  d="$tmp/p-$run"
  rm -rf "$d"
  use_env "$d"
  drop_caches
  admin POST /stats/reset >/dev/null
  start_timing
  track sreg pull bench/bench:big >"$d/pull.out" 2>&1 || { cat "$d/pull.out" >&2; die "sreg pull failed"; }
  track run_container "$d/storage/bench-bench:big.simg"
  stop_timing
  fetched="$(stats_bytes bytesSent)"
  row start-pull "$run" "$(secs "$t0" "$t1")" "$fetched" "" ""
  rm -rf "$d"

  # 4. cp into the mount, then unmount (everything uploaded) -------------------------------
  d="$tmp/w-$run"
  rm -rf "$d"
  mount_up "$d" "$mnt"
  admin POST /stats/reset >/dev/null
  start_timing
  track cp "$img" "$mnt/bench/copied:run$run.simg"
  stop_timing
  cp_secs="$(secs "$t0" "$t1")"
  cp_t0="$t0"
  row cp "$run" "$cp_secs" "" "" ""
  start_timing
  mount_down
  stop_timing
  received="$(stats_bytes bytesReceived)"
  row cp+unmount "$run" "$(secs "$cp_t0" "$t1")" "$received" "$peak_kib" "$m_cpu"
  meta="$(dbx_rpc "$url" files/get_metadata "{\"path\":\"/bench/copied:run$run.simg\"}")" \
    || die "get_metadata after cp: HTTP $DBX_STATUS: $meta"
  [ "$(jget "$meta" content_hash)" = "$local_hash" ] || die "cp into the mount: content_hash differs: $meta"
  rm -rf "$d"

  d="$tmp/u-$run"
  rm -rf "$d"
  use_env "$d"
  admin POST /stats/reset >/dev/null
  start_timing
  track sreg push --force "$img" --name bench/bench:pushed >"$d/push.out" 2>&1 || { cat "$d/push.out" >&2; die "sreg push failed"; }
  stop_timing
  received="$(stats_bytes bytesReceived)"
  row push "$run" "$(secs "$t0" "$t1")" "$received" "" ""
  rm -rf "$d"
done

# --- 5. a catalog of BENCH_CATALOG images --------------------------------------------------------
say "uploading $catalog_n small images under /catalog (shaping off)"
shaping_off
node --input-type=module - "$url" "$catalog_n" <<'EOF' || die "seeding the catalog failed"
const [url, nText] = process.argv.slice(2);
const n = Number(nText);
const per = 100;
let next = 0;
async function worker() {
  for (;;) {
    const i = next++;
    if (i >= n) return;
    const path = `/catalog/c${String(Math.floor(i / per)).padStart(3, '0')}/img${String(i % per).padStart(3, '0')}:latest.simg`;
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${url}/2/files/upload`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${process.env.DBX_TOKEN}`, 'Content-Type': 'application/octet-stream', 'Dropbox-API-Arg': JSON.stringify({ path, mode: 'overwrite' }) },
        body: `image ${i}\n`,
      });
      const text = await res.text();
      if (res.ok) break;
      if (attempt >= 5) throw new Error(`${path}: HTTP ${res.status}: ${text}`);
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }
}
await Promise.all(Array.from({ length: 16 }, worker));
EOF
shaping_on

d="$tmp/cat"
rm -rf "$d"
start_timing
mount_up "$d" "$mnt"
track ls "$mnt" >/dev/null
stop_timing
row first-mount 1 "$(secs "$t0" "$t1")" "" "" ""
for run in $(seq 1 "$runs"); do
  start_timing
  track ls -lR "$mnt" >"$tmp/lsr.txt"
  stop_timing
  row ls-lR-first "$run" "$(secs "$t0" "$t1")" "" "" ""
  got="$(grep -c ':latest\.simg$' "$tmp/lsr.txt" || true)"
  [ "$got" = "$catalog_n" ] || die "ls -lR shows $got catalog images, not $catalog_n"
  start_timing
  track ls -lR "$mnt" >/dev/null
  stop_timing
  row ls-lR-warm "$run" "$(secs "$t0" "$t1")" "" "" ""
  mount_down
  cat_peak="$peak_kib"
  row catalog-mount "$run" 0 "" "$cat_peak" "$m_cpu"
  # The remount: `sreg mount` with the catalog already synced, until `ls` answers.
  start_timing
  mount_up "$d" "$mnt"
  track ls "$mnt" >/dev/null
  stop_timing
  row remount-ls "$run" "$(secs "$t0" "$t1")" "" "" ""
done
mount_down
row catalog-mount "$((runs + 1))" 0 "" "$peak_kib" "$m_cpu"

# sreg's fixed cost, for reference: `sreg status` (node start-up, the CLI's modules), no mount.
use_env "$tmp/start"
for run in $(seq 1 "$runs"); do
  start_timing
  track sreg status >/dev/null
  stop_timing
  row node-start "$run" "$(secs "$t0" "$t1")" "" "" ""
done

# --- report ------------------------------------------------------------------------------------
elapsed=$(($(date +%s) - script_t0))
mkdir -p "$(dirname "$out")"
node - "$results" "$size" "$threads" "$catalog_n" >"$tmp/tables.md" <<'EOF'
const fs = require('node:fs');
const [file, sizeText, n, catN] = process.argv.slice(2);
const size = Number(sizeText);
const rows = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => {
  const [kind, run, secs, bytes, peak, load, cpuC, cpuE, cpuM] = l.split('\t');
  return { kind, run: Number(run), secs: Number(secs), bytes: bytes === '' ? undefined : Number(bytes), peak: peak === '' ? undefined : Number(peak) / 1024, load, cpuC: Number(cpuC), cpuE: Number(cpuE), cpuM: cpuM === '' ? undefined : Number(cpuM) };
});
const of = (k) => rows.filter((r) => r.kind === k);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const med = (k) => median(of(k).map((r) => r.secs));
const best = (k) => Math.min(...of(k).map((r) => r.secs));
const mbs = (s) => (size / s / 1e6).toFixed(1);
const pct = (a, b) => `${(100 * a / b).toFixed(1)} %`;
const f2 = (x) => x.toFixed(2);
const yes = (b) => (b ? '**met**' : '**NOT met**');
const label = {
  B: `B: ${n} ranged curls at once → /dev/null`, cold: `cold read: dd bs=1M from the mount (fresh cache)`, warm: 'warm read: dd bs=1M from the mount (cached, page cache dropped, after a remount)',
  local: 'local read: dd bs=1M of the image on local disk (page cache dropped)',
  'start-mount': 'container start from the mount (cold cache)', 'start-pull': 'container start after sreg pull (pull + run from local disk)',
  cp: 'cp IMG MNT/bench/ (until cp returns)', 'cp+unmount': 'cp, then sreg unmount (until all is uploaded)', push: 'sreg push --force IMG',
  'first-mount': `first sreg mount of a ${catN}-image catalog, until ls answers (full listing)`, 'ls-lR-first': `ls -lR of the mount (${catN} images), first after mount`,
  'ls-lR-warm': `ls -lR again (warm)`, 'remount-ls': `sreg mount with the catalog synced, until ls answers`, 'node-start': 'reference: sreg status (node start-up, no mount)',
};
const kinds = Object.keys(label);
let md = '## Results\n\n| measurement | best s | median s | median MB/s of the image | bytes moved / image | mount peak RSS (MiB) |\n|---|---|---|---|---|---|\n';
for (const k of kinds) {
  const rs = of(k);
  if (!rs.length) continue;
  const moved = rs.filter((r) => r.bytes !== undefined).map((r) => (r.bytes / size).toFixed(4));
  const peaks = rs.map((r) => r.peak).filter((x) => x !== undefined);
  const rate = ['B', 'cold', 'warm', 'local', 'cp', 'cp+unmount', 'push'].includes(k) ? mbs(med(k)) : '–';
  md += `| ${label[k]} | ${f2(best(k))} | ${f2(med(k))} | ${rate} | ${moved.length ? [...new Set(moved)].join(', ') : '–'} | ${peaks.length ? Math.max(...peaks).toFixed(1) : '–'} |\n`;
}
const cold = of('cold');
const fetchedShare = Math.max(...cold.map((r) => r.bytes / size));
const startShare = Math.max(...of('start-mount').map((r) => r.bytes / size));
const peakAll = Math.max(...rows.map((r) => r.peak ?? 0));
md += '\n## Ratios and aims (medians)\n\n| what | figure | aim |\n|---|---|---|\n';
md += `| cold read / baseline B (throughput) | ${pct(med('B'), med('cold'))} | ≥ 85 %: ${yes(med('B') / med('cold') >= 0.85)} |\n`;
md += `| cold read: bytes fetched / bytes read (worst run) | ${fetchedShare.toFixed(4)} | ≤ 1.05: ${yes(fetchedShare <= 1.05)} |\n`;
md += `| container start: share of the image fetched (worst run) | ${pct(startShare, 1)} | < 5 %: ${yes(startShare < 0.05)} |\n`;
md += `| container start: mount / (pull + run) time | ${f2(med('start-mount'))} s / ${f2(med('start-pull'))} s = ${pct(med('start-mount'), med('start-pull'))} | (faster is better) |\n`;
md += `| warm read / local read (throughput) | ${pct(med('local'), med('warm'))} | ≥ 80 %: ${yes(med('local') / med('warm') >= 0.8)} |\n`;
md += `| cp returns / sreg push | ${f2(med('cp'))} s / ${f2(med('push'))} s | – |\n`;
md += `| cp + unmount (all uploaded) / sreg push | ${f2(med('cp+unmount'))} s / ${f2(med('push'))} s = ${pct(med('cp+unmount'), med('push'))} | – |\n`;
md += `| ls -lR of ${catN} images, warm | ${f2(med('ls-lR-warm'))} s | < 0.5 s: ${yes(med('ls-lR-warm') < 0.5)} |\n`;
md += `| sreg mount → working ls, catalog synced | ${f2(med('remount-ls'))} s | < 2 s: ${yes(med('remount-ls') < 2)} |\n`;
md += `| peak RSS of any mount process | ${peakAll.toFixed(1)} MiB | < 200 MiB: ${yes(peakAll < 200)} |\n`;
md += '\n## Every run\n\n| measurement | run | seconds | bytes moved | mount peak RSS (MiB) | load1 before | client CPU s | emulator CPU s | mount CPU s |\n|---|---|---|---|---|---|---|---|---|\n';
for (const r of rows) md += `| ${r.kind} | ${r.run} | ${f2(r.secs)} | ${r.bytes ?? '–'} | ${r.peak === undefined ? '–' : r.peak.toFixed(1)} | ${r.load} | ${f2(r.cpuC)} | ${f2(r.cpuE)} | ${r.cpuM === undefined ? '–' : f2(r.cpuM)} |\n`;
process.stdout.write(md);
EOF
{
  # shellcheck disable=SC2016 # literal backticks: Markdown
  bench_report_head '`sreg mount` benchmark'
  cat <<EOF
| software | node $(node --version), $(curl --version | head -n1 | cut -d' ' -f1-2), libfuse $(dpkg-query -W -f='${Version}' libfuse2 2>/dev/null || echo '?') |
| sreg | **$commit**: $sreg_desc |
| image | \`scripts/build-sif.sh --name bench --tag big --data-mib $data_mib IMG.sif\`: $size bytes, at $rpath (content_hash checked) |
| emulator | \`node dist/src/cli/index.js emulator --root TMP --port 0 --latency-ms $latency_ms --bandwidth $bandwidth\` ($bw_bytes B/s per connection, both directions; ${latency_ms} ms before every response); client and server on this machine (loopback) |
| N | SREGISTRY_PYTHON_THREADS=$threads (the mount's fetch limit, baseline B's connections) |
| mount | \`sreg mount --cache-size 4Gi MNT\` (background), fresh HOME, sregistry.db and SINGULARITY_CACHEDIR per mount unless said |
| runs | $runs rounds of (B, cold, warm, local, start-mount, start-pull, cp, push), each after a \`sync\`; the catalog part after them |
| script time | ${elapsed} s in all |

MB = 10⁶ bytes. "bytes moved" is the emulator's \`bytesSent\` (reads) or \`bytesReceived\` (writes) over the
measurement, request and response bodies only. Peak RSS is the mount process's ru_maxrss over
its whole life, unmount and draining uploads included, from the line it logs when it unmounts.

## Commands

\`sreg\` is the private copy under test: \`node dist/src/cli/index.js --quiet\` with the environment above.

- **B**: for i in 0..$((threads - 1)) at once: \`curl --fail -r START_i-END_i -o /dev/null -X POST \$URL/2/files/download -H 'Dropbox-API-Arg: {"path":"$rpath"}'\`, equal parts.
- **cold read**: \`sreg mount MNT\`, then timed: \`dd if=MNT$rpath of=/dev/null bs=1M\`.
- **warm read**: \`sreg unmount MNT; sreg mount MNT\` (same cache), \`sync; echo 3 > /proc/sys/vm/drop_caches\`, then timed: the same \`dd\`; after it, \`cmp MNT$rpath IMG\`.
- **local read**: drop_caches, then timed: \`dd if=IMG of=/dev/null bs=1M\`.
- **container start from the mount**: a fresh \`sreg mount\`, drop_caches, then timed: \`siftool list F\` (the primary system partition's offset N), \`mount -o loop,ro,offset=N F DIR\`, \`chroot DIR /.singularity.d/runscript\` (prints "Hello from bench:big"), \`umount DIR\`, with F = MNT$rpath.
- **container start after pull**: drop_caches, then timed: \`sreg pull bench/bench:big\` and the same steps with F = the pulled file.
- **cp**: a fresh \`sreg mount\`, then timed: \`cp IMG MNT/bench/copied:runR.simg\`; then timed on: \`sreg unmount MNT\`; the remote content_hash is checked.
- **sreg push**: \`sreg push --force IMG --name bench/bench:pushed\`.
- **catalog**: $catalog_n files \`/catalog/cNNN/imgNNN:latest.simg\` (100 per collection) uploaded once with shaping off; a fresh \`sreg mount\` timed until \`ls MNT\` answers (first mount: full listing); per run \`ls -lR MNT\` twice, then \`sreg unmount\` and, timed, \`sreg mount MNT\` + \`ls MNT\` with the catalog already in sregistry.db.

EOF
  cat "$tmp/tables.md"
} >"$out"
say "wrote $out (${elapsed} s)"
cat "$out"
