#!/usr/bin/env bash
# Measures `sreg emulator`'s download throughput and shaping with curl.
#
#   scripts/bench-emulator.sh [--size-mib 1024] [--out bench/results/emulator.md]
#
# Starts its own emulator (port 0, temp root), uploads a random file through an upload
# session (128 MiB requests), then measures:
#   a. unshaped: 3 full downloads (POST /2/files/download), best and median MB/s
#   b. shaped: bandwidthBytesPerSec = 10M, 40M, 100M via POST /__emulator/config, a
#      200 MB range (Range: bytes=0-199999999) each; achieved bytes/s vs asked
#   c. latency: latencyMs = 20; how much longer a small RPC takes (median of 7)
# and writes Markdown to --out (and stdout). The emulator and the temp files always go
# (trap EXIT). MB = 10^6 bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

size_mib=1024
out="bench/results/emulator.md"
while (($#)); do
  case "$1" in
    --size-mib) size_mib="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--size-mib N] [--out FILE]" >&2; exit 2 ;;
  esac
done
[[ "$size_mib" =~ ^[1-9][0-9]*$ ]] || { echo "--size-mib wants a positive whole number" >&2; exit 2; }
cli="$repo/dist/src/cli/index.js"
[ -f "$cli" ] || { echo "bench: $cli is missing; run npm run build" >&2; exit 1; }

bench_init emulator

# --- the file --------------------------------------------------------------------------------
size=$((size_mib * 1024 * 1024))
chunk=$((128 * 1024 * 1024))
say "making a ${size_mib} MiB random file"
head -c "$size" /dev/urandom >"$tmp/big.bin"
mkdir "$tmp/chunks"
split -b "$chunk" -d -a 4 "$tmp/big.bin" "$tmp/chunks/c"
local_hash="$(node --input-type=module -e "
  import { ContentHasher } from '$repo/dist/src/dropbox/content-hash.js';
  import { createReadStream } from 'node:fs';
  const h = new ContentHasher();
  for await (const c of createReadStream(process.argv[1], { highWaterMark: 8 << 20 })) h.update(c);
  process.stdout.write(h.digest());
" "$tmp/big.bin")"

# --- the emulator (unshaped: each measurement below shapes it through the admin API) -------
bandwidth=""
bench_emulator

# --- upload (session: start, append_v2, finish; 128 MiB per request) ------------------------
say "uploading /big.bin through an upload session"
mapfile -t chunks < <(cd "$tmp/chunks" && printf "%s\n" c* | sort)
t0="$(date +%s.%N)"
offset=0
session=""
n=${#chunks[@]}
for i in "${!chunks[@]}"; do
  f="$tmp/chunks/${chunks[$i]}"
  len="$(stat -c %s "$f")"
  if ((i == 0 && n > 1)); then
    res="$(dbx_upload_file "$url" files/upload_session/start '{"close":false}' "$f")" \
      || die "upload_session/start: HTTP $DBX_STATUS: $res"
    session="$(jget "$res" session_id)"
  elif ((i == 0)); then
    res="$(dbx_upload_file "$url" files/upload '{"path":"/big.bin","mode":"overwrite"}' "$f")" \
      || die "files/upload: HTTP $DBX_STATUS: $res"
  elif ((i < n - 1)); then
    res="$(dbx_upload_file "$url" files/upload_session/append_v2 \
      "{\"cursor\":{\"session_id\":\"$session\",\"offset\":$offset},\"close\":false}" "$f")" \
      || die "upload_session/append_v2 at $offset: HTTP $DBX_STATUS: $res"
  else
    res="$(dbx_upload_file "$url" files/upload_session/finish \
      "{\"cursor\":{\"session_id\":\"$session\",\"offset\":$offset},\"commit\":{\"path\":\"/big.bin\",\"mode\":\"overwrite\"}}" "$f")" \
      || die "upload_session/finish at $offset: HTTP $DBX_STATUS: $res"
  fi
  offset=$((offset + len))
done
t1="$(date +%s.%N)"
[ "$(jget "$res" size)" = "$size" ] || die "the uploaded file's size is not $size: $res"
[ "$(jget "$res" content_hash)" = "$local_hash" ] || die "content_hash mismatch: local $local_hash, emulator $res"
upload_secs="$(node -e 'process.stdout.write((process.argv[2] - process.argv[1]).toFixed(2))' "$t0" "$t1")"
upload_mbs="$(node -e 'process.stdout.write((process.argv[1] / process.argv[2] / 1e6).toFixed(1))' "$size" "$upload_secs")"
say "uploaded $size bytes in ${n} requests, ${upload_secs} s (${upload_mbs} MB/s); content_hash matches"
rm -rf "$tmp/chunks"

# download [RANGE]: prints "speed_download time_total size_download http_code time_starttransfer"
download() {
  local range_args=()
  [ $# -ge 1 ] && range_args=(-H "Range: bytes=$1")
  dbx_curl -o /dev/null -w '%{speed_download} %{time_total} %{size_download} %{http_code} %{time_starttransfer}\n' \
    -X POST "$url/2/files/download" -H 'Dropbox-API-Arg: {"path":"/big.bin"}' "${range_args[@]}"
}

# One unmeasured download, checked: the bytes that come back hash to what was uploaded.
say "checking a full download's content_hash"
got_hash="$(dbx_curl -X POST "$url/2/files/download" -H 'Dropbox-API-Arg: {"path":"/big.bin"}' \
  | node --input-type=module -e "
    import { ContentHasher } from '$repo/dist/src/dropbox/content-hash.js';
    const h = new ContentHasher();
    for await (const c of process.stdin) h.update(c);
    process.stdout.write(h.digest() + ' ' + h.bytes);
  ")"
[ "$got_hash" = "$local_hash $size" ] || die "downloaded bytes differ: got '$got_hash', want '$local_hash $size'"

# --- a. unshaped -----------------------------------------------------------------------------
admin POST /config '{"bandwidthBytesPerSec":0,"latencyMs":0}' >/dev/null
speeds=()
runs_md=""
for run in 1 2 3; do
  read -r speed total got code _ < <(download)
  [ "$code" = 200 ] && [ "$got" = "$size" ] || die "unshaped download $run: HTTP $code, $got bytes"
  mbs="$(node -e 'process.stdout.write((process.argv[1] / 1e6).toFixed(1))' "$speed")"
  speeds+=("$mbs")
  runs_md+="| $run | $total | $mbs |"$'\n'
  say "unshaped run $run: ${mbs} MB/s (${total} s)"
done
read -r best median < <(printf '%s\n' "${speeds[@]}" | sort -g | awk '{a[NR]=$1} END {print a[NR], a[int((NR+1)/2)]}')

# --- b. shaped -------------------------------------------------------------------------------
range_bytes=200000000
shaped_md=""
for bw in 10000000 40000000 100000000; do
  cfg="$(admin POST /config "{\"bandwidthBytesPerSec\":$bw}")"
  [ "$(jget "$cfg" bandwidthBytesPerSec)" = "$bw" ] || die "config did not take: $cfg"
  read -r speed total got code ttfb < <(download "0-$((range_bytes - 1))")
  [ "$code" = 206 ] && [ "$got" = "$range_bytes" ] || die "shaped download at $bw: HTTP $code, $got bytes"
  pct="$(node -e 'process.stdout.write((100 * process.argv[1] / process.argv[2]).toFixed(1))' "$speed" "$bw")"
  shaped_md+="| $((bw / 1000000)) MB/s ($bw) | $total | $ttfb | $speed | $pct % |"$'\n'
  say "shaped at $bw B/s: achieved $speed B/s = $pct % in $total s"
done
admin POST /config '{"bandwidthBytesPerSec":0}' >/dev/null

# --- c. latency ------------------------------------------------------------------------------
small_rpc() { # prints time_total in seconds
  dbx_curl -o /dev/null -w '%{time_total} %{http_code}\n' -X POST "$url/2/files/get_metadata" \
    -H 'Content-Type: application/json' --data-binary '{"path":"/big.bin"}'
}
median_ms() { # 7 runs of small_rpc → median ms
  local ts=() t code
  small_rpc >/dev/null # warm the connection path
  for _ in 1 2 3 4 5 6 7; do
    read -r t code < <(small_rpc)
    [ "$code" = 200 ] || die "files/get_metadata: HTTP $code"
    ts+=("$t")
  done
  printf '%s\n' "${ts[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.1f", a[4] * 1000}'
}
admin POST /config '{"latencyMs":0}' >/dev/null
lat0="$(median_ms)"
admin POST /config '{"latencyMs":20}' >/dev/null
lat20="$(median_ms)"
admin POST /config '{"latencyMs":0}' >/dev/null
delta="$(node -e 'process.stdout.write((process.argv[2] - process.argv[1]).toFixed(1))' "$lat0" "$lat20")"
say "latency: ${lat0} ms → ${lat20} ms with latencyMs 20 (+${delta} ms)"

# --- report ----------------------------------------------------------------------------------
mkdir -p "$(dirname "$out")"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- src 2>/dev/null || commit="$commit (src/ has uncommitted changes)"
[ -z "$(git ls-files --others --exclude-standard src 2>/dev/null)" ] || commit="${commit% (*} (src/ has uncommitted changes)"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
cat >"$out" <<EOF
# \`sreg emulator\` download benchmark

| | |
|---|---|
| date | $(date -u '+%Y-%m-%d %H:%M:%S UTC') |
| machine | nproc $(nproc), ${cpu:-unknown CPU}, $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo) |
| software | node $(node --version), $(curl --version | head -n1 | cut -d' ' -f1-2), sreg $commit |
| file | /big.bin, $size bytes (${size_mib} MiB, /dev/urandom) |
| upload | upload_session start + append_v2 + finish, $n requests of ≤ 128 MiB: ${upload_secs} s (${upload_mbs} MB/s); content_hash checked, and once more on a full download |

MB = 10⁶ bytes. Emulator started as
\`SREG_EMULATOR_TOKEN=… node dist/src/cli/index.js emulator --root TMP --port 0\`,
client and server on the same machine (loopback).

## a. Unshaped full download

\`curl -o /dev/null -w '%{speed_download} %{time_total}' -X POST \$URL/2/files/download -H 'Authorization: Bearer …' -H 'Dropbox-API-Arg: {"path":"/big.bin"}'\`

| run | seconds | MB/s |
|---|---|---|
${runs_md}
**best ${best} MB/s, median ${median} MB/s**

## b. Shaped: 200 MB range

\`POST /__emulator/config {"bandwidthBytesPerSec": B}\`, then the same download with
\`-H 'Range: bytes=0-199999999'\` (206, 200000000 bytes).

| asked | seconds | time to first byte (s) | achieved B/s | achieved / asked |
|---|---|---|---|---|
${shaped_md}
## c. Latency

\`POST /__emulator/config {"latencyMs": 20}\`; \`POST /2/files/get_metadata {"path":"/big.bin"}\`,
median of 7 (after one warm-up request):

| latencyMs | median time_total (ms) |
|---|---|
| 0 | $lat0 |
| 20 | $lat20 |

Added: **${delta} ms** (asked 20).
EOF
say "wrote $out"
cat "$out"
