#!/usr/bin/env bash
# Measures `sreg pull` and `sreg push` against curl baselines, over `sreg emulator` shaped
# like a far-away Dropbox (added latency, per-connection bandwidth).
#
#   scripts/bench-registry.sh [--out bench/results/registry.md]
#
# Environment (all optional):
#   BENCH_LATENCY_MS   emulator --latency-ms (default 20)
#   BENCH_BANDWIDTH    emulator --bandwidth, per connection (default 40M = 40·10⁶ B/s)
#   BENCH_RUNS         runs of each measurement (default 3; 2..9)
#   BENCH_IMAGE        a SIF to use; built there (and kept) if missing. Without it the image
#                      is built in the temp dir and removed at the end.
#   BENCH_DATA_MIB     --data-mib for the image (default 1000: a ~1 GiB SIF)
#   SREGISTRY_PYTHON_THREADS  N, sreg's workers and baseline B's parallel curls (default 9)
#   BENCH_SREG         which sreg to measure: `dist` (default: a copy of ./dist/src taken at the
#                      start, so a rebuild meanwhile cannot change it) or a git revision
#                      (`HEAD`, a commit: its src/ is exported and compiled with tsc in the
#                      temp dir, leaving the working tree alone)
#
# What it does, in one run (MB = 10⁶ bytes):
#   1. builds the image (scripts/build-sif.sh --name bench --tag big --data-mib 1000)
#   2. starts its own emulator (port 0, temp root, token only via SREG_EMULATOR_TOKEN)
#   3. pull: uploads the image once to /bench/bench:big.simg with shaping off, then per run
#        A  one curl of the whole file (POST /2/files/download) into a local file
#        B  N curls of equal ranges at once, each piped into `dd conv=notrunc seek=OFFSET` of
#           one output file (the same work as sreg: one file, written at offsets)
#        sreg pull bench/bench:big (fresh SREGISTRY_STORAGE, SREGISTRY_DATABASE and HOME)
#      every output is fsync'ed inside the timing (sreg fsyncs too) and compared with the image
#      outside it; sreg's bytes fetched = the emulator's bytesSent delta.
#   4. push: per run
#        C  one upload session by curl, one request at a time: start, append_v2 of the same
#           chunks sreg's concurrent session uses (src/dropbox/upload.ts), finish
#        sreg push --force IMG --name bench/bench:pushed
#   5. writes Markdown to --out and prints it.
# Peak memory of sreg: /usr/bin/time -v "Maximum resident set size" (or VmHWM polled from
# /proc when /usr/bin/time is missing). Everything it starts is stopped and its temp dir
# removed on exit (trap EXIT), also on failure or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

bench_settings bench/results/registry.md "$@"

need curl dd node git
time_bin=""
[ -x /usr/bin/time ] && time_bin=/usr/bin/time

bench_init registry

# --- 0. the sreg under test: a private copy, in $app ------------------------------------------
bench_private_sreg

# --- 1. the image ----------------------------------------------------------------------------
bench_image

# --- 2. the emulator -------------------------------------------------------------------------
bench_emulator

# --- the upload plan: the chunks sreg's session uses (src/dropbox/upload.ts) -----------------
# Concurrent session (N > 1): planChunks(size, N, max(2, ceil(size / 128 MiB / N))), the last
# chunk closes the session; sequential (N = 1): 32 MiB chunks. Files up to 8 MiB go in one
# files/upload request (not benchmarked here: the image is far larger).
mapfile -t plan < <(node --input-type=module -e "
  import { planChunks } from '$app/dist/src/dropbox/download.js';
  const [size, n] = process.argv.slice(1).map(Number);
  const M = 1024 * 1024;
  let chunks;
  if (n > 1) chunks = planChunks(size, n, Math.max(2, Math.ceil(size / (128 * M) / n)));
  else { chunks = []; for (let s = 0; s < size; s += 32 * M) chunks.push({ start: s, end: Math.min(size, s + 32 * M) }); }
  for (const c of chunks) console.log(c.start + ' ' + (c.end - c.start));
" "$size" "$threads")
((${#plan[@]} > 0)) || die "could not compute the upload plan"
mkdir "$tmp/chunks"
: >"$tmp/empty"
for i in "${!plan[@]}"; do
  read -r start len <<<"${plan[$i]}"
  dd if="$img" of="$tmp/chunks/$(printf '%04d' "$i")" bs=4M iflag=skip_bytes,count_bytes \
    skip="$start" count="$len" status=none
done
chunk_desc="$(printf '%s\n' "${plan[@]}" | awk '{n++; if ($2 > mx) mx = $2; if (mn == "" || $2 < mn) mn = $2} END {printf "%d chunks of %.1f–%.1f MiB", n, mn / 1048576, mx / 1048576}')"
say "upload plan: $chunk_desc"

# upload_req ROUTE ARG_JSON FILE: one content-upload request, FILE as the body. ARG_JSON must
# be compact ASCII (it is here), so it goes into Dropbox-API-Arg as is: no node start-up per
# request inside the timing. Prints the answer; non-zero unless HTTP 200 ($DBX_STATUS).
upload_req() {
  local status
  status="$(dbx_curl -o "$tmp/upload.json" -w '%{http_code}' -X POST "$url/2/$1" \
    -H 'Content-Type: application/octet-stream' -H "Dropbox-API-Arg: $2" -H 'Expect:' -T "$3")" \
    || { DBX_STATUS=000; return 1; }
  DBX_STATUS="$status"
  cat "$tmp/upload.json"
  [ "$status" = 200 ]
}

# session_upload DROPBOX_PATH: start (empty body), append_v2 of every chunk in order (the last
# one closes), finish (empty body); one request at a time. Prints finish's answer.
session_upload() {
  local dest="$1" res session offset=0 i n=${#plan[@]} start len close
  res="$(upload_req files/upload_session/start '{"close":false}' "$tmp/empty")" \
    || die "upload_session/start: HTTP $DBX_STATUS: $res"
  session="$(sed -n 's/.*"session_id": *"\([^"]*\)".*/\1/p' <<<"$res")"
  [ -n "$session" ] || die "upload_session/start: no session_id in $res"
  for i in "${!plan[@]}"; do
    read -r start len <<<"${plan[$i]}"
    close=false
    ((i == n - 1)) && close=true
    res="$(upload_req files/upload_session/append_v2 \
      "{\"cursor\":{\"session_id\":\"$session\",\"offset\":$start},\"close\":$close}" "$tmp/chunks/$(printf '%04d' "$i")")" \
      || die "upload_session/append_v2 at $start: HTTP $DBX_STATUS: $res"
    offset=$((start + len))
  done
  res="$(upload_req files/upload_session/finish \
    "{\"cursor\":{\"session_id\":\"$session\",\"offset\":$offset},\"commit\":{\"path\":\"$dest\",\"mode\":\"overwrite\"}}" "$tmp/empty")" \
    || die "upload_session/finish: HTTP $DBX_STATUS: $res"
  printf '%s' "$res"
}

# --- 3. pull ---------------------------------------------------------------------------------
say "uploading the image to /bench/bench:big.simg (shaping off)"
shaping_off
seed="$(session_upload /bench/bench:big.simg)"
shaping_on
[ "$(jget "$seed" size)" = "$size" ] || die "the uploaded image's size is not $size: $seed"
remote_hash="$(jget "$seed" content_hash)"
local_hash="$(node --input-type=module -e "
  import { blockDigests, combineBlockDigests } from '$app/dist/src/dropbox/content-hash.js';
  process.stdout.write(combineBlockDigests(await blockDigests(process.argv[1], 0, Number(process.argv[2]))));
" "$img" "$size")"
[ "$remote_hash" = "$local_hash" ] || die "content_hash: emulator $remote_hash, local $local_hash"

results="$tmp/results.tsv" # kind run seconds maxrss_kib bytes_moved load1 client_cpu_s emulator_cpu_s

: >"$results"
row() { # KIND RUN PEAK_KIB BYTES: one line of $results for the measurement just timed
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(secs "$t0" "$t1")" "$3" "$4" "$l" "$cpu_c" "$cpu_e" >>"$results"
}

# measure_sreg LOG CMD...: runs `node $cli CMD...` under /usr/bin/time -v (or polls VmHWM);
# sets $peak_kib.
measure_sreg() {
  local log="$1"; shift
  peak_kib=""
  if [ -n "$time_bin" ]; then
    track "$time_bin" -v -o "$log.time" node "$cli" "$@" >"$log" 2>&1 \
      || { cat "$log" >&2; die "sreg $* failed (log above)"; }
    peak_kib="$(sed -n 's/^[[:space:]]*Maximum resident set size (kbytes): //p' "$log.time")"
  else
    node "$cli" "$@" >"$log" 2>&1 &
    local pid=$! hwm rc=0
    kids+=("$pid")
    peak_kib=0
    while kill -0 "$pid" 2>/dev/null; do
      hwm="$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || true)"
      [ -n "$hwm" ] && ((hwm > peak_kib)) && peak_kib="$hwm"
      sleep 0.05
    done
    wait "$pid" || rc=$?
    untrack "$pid"
    ((rc == 0)) || { cat "$log" >&2; die "sreg $* failed (log above)"; }
  fi
  [ -n "$peak_kib" ] || die "no peak memory for sreg $*"
}

# sreg_env DIR: a fresh home, storage and database for one sreg run.
sreg_env() {
  rm -rf "$1"
  mkdir -p "$1/home" "$1/storage" "$1/db"
}
run_sreg() { # DIR CMD...: sreg with the run's env (the token reaches it through the env only)
  local d="$1"; shift
  HOME="$d/home" SREGISTRY_STORAGE="$d/storage" SREGISTRY_DATABASE="$d/db" \
    SREGISTRY_DROPBOX_ENDPOINT="$url" SREGISTRY_DROPBOX_TOKEN="$DBX_TOKEN" \
    SREGISTRY_PYTHON_THREADS="$threads" SREGISTRY_CLIENT_SECRETS="$d/home/.sregistry" \
    measure_sreg "$d/log" "$@"
}

download_arg="{\"path\":\"/bench/bench:big.simg\"}"

baseline_a() { # OUT
  dbx_curl --fail -o "$1" -X POST "$url/2/files/download" -H "Dropbox-API-Arg: $download_arg"
  sync "$1"
}

# baseline_b OUT: N ranged curls at once, each into OUT at its offset (dd conv=notrunc).
baseline_b() {
  local outf="$1" i start end per=$((size / threads)) pids=()
  : >"$outf"
  for ((i = 0; i < threads; i++)); do
    start=$((i * per))
    end=$((i == threads - 1 ? size - 1 : (i + 1) * per - 1))
    (
      set -o pipefail
      dbx_curl --fail -r "$start-$end" -X POST "$url/2/files/download" -H "Dropbox-API-Arg: $download_arg" \
        -w '%{stderr}%{http_code} %{size_download}\n' 2>"$tmp/b.$i.status" \
        | dd of="$outf" bs=4M iflag=fullblock oflag=seek_bytes seek="$start" conv=notrunc status=none
    ) &
    pids+=($!)
    kids+=($!)
  done
  wait_all "${pids[@]}" || { cat "$tmp"/b.*.status >&2; die "a ranged curl failed"; }
  sync "$outf"
}

check_same() { # FILE WHAT
  cmp -s "$1" "$img" || die "$2: the bytes differ from the image"
}


for run in $(seq 1 "$runs"); do
  # A: one curl, whole file
  rm -f "$tmp/a.out"
  start_timing
  track baseline_a "$tmp/a.out"
  stop_timing
  check_same "$tmp/a.out" "baseline A"; rm -f "$tmp/a.out"
  row A "$run" "" "$size"
  say "pull run $run: A (1 curl) $(secs "$t0" "$t1") s"

  # B: N ranged curls into one file
  rm -f "$tmp/b.out"
  start_timing
  baseline_b "$tmp/b.out"
  stop_timing
  check_same "$tmp/b.out" "baseline B"; rm -f "$tmp/b.out"
  row B "$run" "" "$size"
  say "pull run $run: B ($threads ranged curls) $(secs "$t0" "$t1") s"

  # sreg pull
  d="$tmp/sreg-pull"
  sreg_env "$d"
  admin POST /stats/reset >/dev/null
  start_timing
  run_sreg "$d" pull bench/bench:big
  stop_timing
  fetched="$(stats_bytes bytesSent)"
  check_same "$d/storage/bench-bench:big.simg" "sreg pull"
  row pull "$run" "$peak_kib" "$fetched"
  say "pull run $run: sreg pull $(secs "$t0" "$t1") s, peak $((peak_kib / 1024)) MiB, fetched $fetched bytes"
  rm -rf "$d"
done

# sreg's fixed cost, for reference: `sreg images` on an empty HOME (node start-up, the CLI's
# modules, opening sregistry.db), no network.
for run in $(seq 1 "$runs"); do
  d="$tmp/sreg-start"
  sreg_env "$d"
  start_timing
  run_sreg "$d" images
  stop_timing
  row start "$run" "$peak_kib" 0
  rm -rf "$d"
done

# --- 4. push ---------------------------------------------------------------------------------
for run in $(seq 1 "$runs"); do
  admin POST /stats/reset >/dev/null
  start_timing
  res="$(session_upload /bench/baseline-c.bin)"
  stop_timing
  received="$(stats_bytes bytesReceived)"
  [ "$(jget "$res" content_hash)" = "$local_hash" ] || die "baseline C: content_hash differs: $res"
  row C "$run" "" "$received"
  say "push run $run: C (1 curl session) $(secs "$t0" "$t1") s"

  d="$tmp/sreg-push"
  sreg_env "$d"
  admin POST /stats/reset >/dev/null
  start_timing
  run_sreg "$d" push --force "$img" --name bench/bench:pushed
  stop_timing
  received="$(stats_bytes bytesReceived)"
  meta="$(dbx_rpc "$url" files/get_metadata '{"path":"/bench/bench:pushed.simg"}')" \
    || die "get_metadata after push: HTTP $DBX_STATUS: $meta"
  [ "$(jget "$meta" content_hash)" = "$local_hash" ] || die "sreg push: content_hash differs: $meta"
  row push "$run" "$peak_kib" "$received"
  say "push run $run: sreg push $(secs "$t0" "$t1") s, peak $((peak_kib / 1024)) MiB"
  rm -rf "$d"
done

# --- 5. report -------------------------------------------------------------------------------
elapsed=$(($(date +%s) - script_t0))
mem_how="/usr/bin/time -v, Maximum resident set size"
[ -n "$time_bin" ] || mem_how="VmHWM from /proc/PID/status, polled every 50 ms"
mkdir -p "$(dirname "$out")"
node - "$results" "$size" "$threads" >"$tmp/tables.md" <<'EOF'
const fs = require('node:fs');
const [file, sizeText, nText] = process.argv.slice(2);
const size = Number(sizeText);
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => {
  const [kind, run, secs, rss, bytes, load, cpuC, cpuE] = l.split('\t');
  return { kind, run: Number(run), secs: Number(secs), rss: rss ? Number(rss) / 1024 : undefined, bytes: Number(bytes), load, cpuC: Number(cpuC), cpuE: Number(cpuE) };
});
const of = (k) => rows.filter((r) => r.kind === k);
const mbs = (r) => size / r.secs / 1e6;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const sum = (k) => { const rs = of(k); const v = rs.map(mbs); const mem = rs.map((r) => r.rss).filter((x) => x !== undefined);
  return { best: Math.max(...v), median: median(v), bestS: Math.min(...rs.map((r) => r.secs)), medianS: median(rs.map((r) => r.secs)), mem: mem.length ? Math.max(...mem) : undefined,
    cpuC: median(rs.map((r) => r.cpuC)), cpuE: median(rs.map((r) => r.cpuE)), busy: median(rs.map((r) => (r.cpuC + r.cpuE) / r.secs)) }; };
const f1 = (x) => x.toFixed(1);
const S = { A: sum('A'), B: sum('B'), pull: sum('pull'), C: sum('C'), push: sum('push') };
const n = nText;
const label = { A: 'A: 1 curl, whole file', B: `B: ${n} ranged curls → one file`, pull: `sreg pull (${n} workers)`, C: 'C: 1 curl upload session, sequential', push: `sreg push --force (${n} workers)` };
let md = '## Results\n\n| measurement | best s | median s | best MB/s | median MB/s | peak RSS (MiB) | bytes moved / size | client CPU s | emulator CPU s | cores busy |\n|---|---|---|---|---|---|---|---|---|---|\n';
for (const k of ['A', 'B', 'pull', 'C', 'push']) {
  const s = S[k];
  const moved = [...new Set(of(k).map((r) => (r.bytes / size).toFixed(4)))].join(', ');
  md += `| ${label[k]} | ${s.bestS.toFixed(2)} | ${s.medianS.toFixed(2)} | ${f1(s.best)} | ${f1(s.median)} | ${s.mem === undefined ? '–' : f1(s.mem)} | ${moved} | ${s.cpuC.toFixed(2)} | ${s.cpuE.toFixed(2)} | ${s.busy.toFixed(2)} |\n`;
}
const pct = (a, b) => (100 * a / b).toFixed(1);
const rPullB = S.pull.median / S.B.median, rPullBBest = S.pull.best / S.B.best;
const rPush = S.push.median / S.C.median, rPushBest = S.push.best / S.C.best;
md += '\n| ratio | best / best | median / median |\n|---|---|---|\n';
md += `| sreg pull / baseline B | ${pct(S.pull.best, S.B.best)} % | ${pct(S.pull.median, S.B.median)} % |\n`;
md += `| sreg pull / baseline A | ${f1(S.pull.best / S.A.best)}× | ${f1(S.pull.median / S.A.median)}× |\n`;
md += `| sreg push / baseline C | ${rPushBest.toFixed(2)}× | ${rPush.toFixed(2)}× |\n`;
const yes = (b) => (b ? '**met**' : '**NOT met**');
md += '\n## Aims (judged on medians)\n\n';
md += `- pull ≥ 90 % of the parallel baseline B: ${yes(rPullB >= 0.9)} (${pct(S.pull.median, S.B.median)} %; best/best ${pct(S.pull.best, S.B.best)} %)\n`;
md += `- push ≥ 3× the single-stream baseline C: ${yes(rPush >= 3)} (${rPush.toFixed(2)}×; best/best ${rPushBest.toFixed(2)}×)\n`;
md += `- peak memory < 150 MiB: pull ${yes(S.pull.mem < 150)} (${f1(S.pull.mem)} MiB), push ${yes(S.push.mem < 150)} (${f1(S.push.mem)} MiB)\n`;
const st = median(of('start').map((r) => r.secs));
md += `\nsreg's fixed cost, for reference: \`sreg images\` on an empty HOME (node start-up, modules, sregistry.db; no network) takes ${st.toFixed(2)} s (median), ${pct(st, S.pull.medianS)} % of the pull's median wall time; the curl baselines have no such cost.\n`;
md += '\nPeak RSS is the highest of the runs; CPU columns are medians (client = curl and dd, or sreg; cores busy = (client + emulator CPU) / wall, out of 2 on this machine).\n';
md += '\n## Every run\n\n| measurement | run | seconds | MB/s | peak RSS (MiB) | bytes moved | load1 before | client CPU s | emulator CPU s |\n|---|---|---|---|---|---|---|---|---|\n';
for (const r of rows.filter((x) => x.kind !== 'start')) md += `| ${label[r.kind]} | ${r.run} | ${r.secs.toFixed(2)} | ${f1(mbs(r))} | ${r.rss === undefined ? '–' : f1(r.rss)} | ${r.bytes} | ${r.load} | ${r.cpuC.toFixed(2)} | ${r.cpuE.toFixed(2)} |\n`;
process.stdout.write(md);
EOF
{
  # shellcheck disable=SC2016 # literal backticks: Markdown
  bench_report_head '`sreg pull` / `sreg push` benchmark'
  cat <<EOF
| software | node $(node --version), $(curl --version | head -n1 | cut -d' ' -f1-2) |
| sreg | **$commit**: $sreg_desc |
| image | \`scripts/build-sif.sh --name bench --tag big --data-mib $data_mib IMG.sif\`: $size bytes, uploaded as /bench/bench:big.simg (content_hash checked) |
| emulator | \`SREG_EMULATOR_TOKEN=… node dist/src/cli/index.js emulator --root TMP --port 0 --latency-ms $latency_ms --bandwidth $bandwidth\` ($bw_bytes B/s per connection, both directions; ${latency_ms} ms before every response); client and server on this machine (loopback) |
| N | SREGISTRY_PYTHON_THREADS=$threads |
| runs | $runs of each, in rounds (A, B, pull) × $runs, then (C, push) × $runs |
| peak memory | $mem_how |
| script time | ${elapsed} s in all (image build, upload, every run) |

MB = 10⁶ bytes; MB/s = image size / wall seconds. Every download is fsync'ed inside its timing
(\`sync FILE\`; sreg fsyncs before its rename) and compared with the image byte for byte outside
it; every upload's content_hash is checked against the image's.

## Commands

\`dist/src/cli/index.js\` is the private copy of the sreg under test (row "sreg" above).

- **A** (1 connection): \`curl --fail -o OUT -X POST \$URL/2/files/download -H 'Dropbox-API-Arg: {"path":"/bench/bench:big.simg"}'; sync OUT\`
- **B** ($threads connections): for i in 0..$((threads - 1)), at once:
  \`curl --fail -r START_i-END_i -X POST \$URL/2/files/download -H 'Dropbox-API-Arg: …' | dd of=OUT bs=4M iflag=fullblock oflag=seek_bytes seek=START_i conv=notrunc\`,
  equal ranges of size/$threads bytes (the last takes the remainder); then \`sync OUT\`.
  Fair to sreg: the same number of connections, and the same end product (one file written at
  offsets, flushed to disk), with no concatenation or extra copy of the file afterwards.
  (sreg does more: 4 ranged requests per worker, and it hashes every byte.)
- **sreg pull**: \`HOME=D/home SREGISTRY_STORAGE=D/storage SREGISTRY_DATABASE=D/db SREGISTRY_PYTHON_THREADS=$threads SREGISTRY_DROPBOX_ENDPOINT=\$URL SREGISTRY_DROPBOX_TOKEN=… node dist/src/cli/index.js pull bench/bench:big\`, D fresh each run; bytes moved = the emulator's \`bytesSent\` over the run (\`/__emulator/stats\`).
- **C** (1 connection, one request at a time): \`upload_session/start\` (empty), \`append_v2\` × ${#plan[@]} in order (the same chunks as sreg's concurrent session: $chunk_desc; the last closes), \`finish\` (empty), each \`curl -X POST \$URL/2/files/… -H 'Dropbox-API-Arg: …' -T CHUNK\`; chunks cut from the image beforehand, outside the timing.
- **sreg push**: \`… node dist/src/cli/index.js push --force IMG --name bench/bench:pushed\` with the same environment as pull (fresh D); bytes moved = \`bytesReceived\`.
- **start-up reference**: \`… node dist/src/cli/index.js images\`, same environment (fresh D), $runs times.

EOF
  cat "$tmp/tables.md"
} >"$out"
say "wrote $out (${elapsed} s)"
cat "$out"
