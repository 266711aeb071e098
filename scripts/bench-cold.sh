#!/usr/bin/env bash
# The mount's CPU per GiB on a cold read from an UNSHAPED emulator, against its floor measured
# in the same run: the CPU of N ranged curls of the same bytes (→ /dev/null) plus
# `openssl dgst -sha256` of them. A quick, focused part of bench-mount.sh (issue 10's aim
# "mount CPU ≤ 1.6× the floor"); needs root and /dev/fuse.
#
#   scripts/bench-cold.sh
#
# Environment (all optional):
#   BENCH_IMAGE        a SIF to use; built there (and kept) if missing
#   BENCH_DATA_MIB     --data-mib for the image (default 250: a ~256 MiB SIF)
#   BENCH_RUNS         rounds (default 3; 2..9), each: curls, openssl, a fresh mount's cold dd
#   BENCH_CPU_PROF     a folder: the mount runs with --cpu-prof there (one .cpuprofile per mount)
#   BENCH_PERF         a file name: `perf record -g` of the mount process during each cold dd,
#                      to FILE.RUN (`perf report -i FILE.RUN` shows kernel time too)
#   BENCH_SHAPED       1: keep the emulator shaped (BENCH_LATENCY_MS, default 20; BENCH_BANDWIDTH per
#                      connection, default 40M), as bench-mount.sh's "cold read, shaped": the
#                      summary then also gives the curls' MB/s and the ratio mount / curls
#   SREGISTRY_PYTHON_THREADS  N: sreg's fetch workers and the floor's parallel curls (default 9)
#   BENCH_SREG         which sreg to measure: `dist` (default) or a git revision (see lib/bench.sh)
# Prints one line per measurement and a summary (medians): CPU s/GiB of the mount, of the
# curls, of openssl, the ratio mount / floor, the cold read's MB/s, and the mount's peak RSS
# (ru_maxrss, which it logs at unmount). The mount gets the caller's environment, so glibc
# settings (MALLOC_ARENA_MAX=…, MALLOC_TRIM_THRESHOLD_=…) can be compared run against run.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

BENCH_DATA_MIB="${BENCH_DATA_MIB:-250}"
export BENCH_DATA_MIB
bench_settings /dev/null
[ "${BENCH_SHAPED:-0}" = 1 ] || bandwidth="" # unshaped
[ "$(id -u)" -eq 0 ] || { echo "bench-cold: needs root (a FUSE mount)" >&2; exit 1; }
need curl dd node openssl fusermount
bench_init cold

bench_cleanup_hook() { bench_unmount_hook; }

bench_private_sreg
bench_image
bench_emulator

rpath="/bench/bench:big.simg"
use_env "$tmp/seed"
sreg push --force "$img" --name bench/bench:big >"$tmp/seed/push.out" 2>&1 || { cat "$tmp/seed/push.out" >&2; die "seeding push failed"; }
gib="$(awk -v s="$size" 'BEGIN { print s / 1073741824 }')"
per_gib() { awk -v c="$1" -v g="$gib" 'BEGIN { printf "%.2f", c / g }'; }

results="$tmp/results.tsv"
: >"$results"
mnt="$tmp/mnt"
for run in $(seq 1 "$runs"); do
  sync
  start_timing
  track ranged_curls "$rpath"
  stop_timing
  c_curl="$cpu_c"
  curl_mbs="$(awk -v s="$size" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", s / ((b - a) / 1e9) / 1e6 }')"
  cat "$img" >/dev/null # openssl reads from the page cache: its CPU is the hashing
  start_timing
  track openssl dgst -sha256 "$img" >/dev/null
  stop_timing
  c_ssl="$cpu_c"

  d="$tmp/m-$run"
  use_env "$d"
  mkdir -p "$mnt"
  active_mnt="$mnt" active_d="$d"
  if [ -n "${BENCH_CPU_PROF:-}" ]; then
    # --cpu-prof is not allowed in NODE_OPTIONS: the mount runs in the foreground here.
    mkdir -p "$BENCH_CPU_PROF"
    env "${senv[@]}" node --cpu-prof --cpu-prof-dir="$BENCH_CPU_PROF" "$cli" --quiet mount "$mnt" --foreground \
      --cache-size 4Gi --log-file "$d/mount.log" >"$d/mount.out" 2>&1 &
    mpid=$!
    for _ in $(seq 1 300); do [ -e "$mnt$rpath" ] && break; kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
    [ -e "$mnt$rpath" ] || die "the mount did not come up: $(cat "$d/mount.out")"
  else
    sreg mount --cache-size 4Gi "$mnt" >"$d/mount.out" 2>&1 || { cat "$d/mount.out" >&2; die "sreg mount failed"; }
    mpid="$(sed -n 's/.*(pid \([0-9]*\),.*/\1/p' "$d/mount.out" | head -n1)"
  fi
  [ -n "$mpid" ] || die "no mount pid: $(cat "$d/mount.out")"
  sync
  mc0="$(proc_cpu "$mpid")"
  ms0="$(awk -v hz="$clk_tck" '{ printf "%.3f", $15 / hz }' "/proc/$mpid/stat")"
  mf0="$(awk '{ print $10 }' "/proc/$mpid/stat")"
  t0="$(now_ns)"
  perf_pid=""
  if [ -n "${BENCH_PERF:-}" ]; then
    perf record -q -g -p "$mpid" -o "$BENCH_PERF.$run" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  track dd if="$mnt$rpath" of=/dev/null bs=1M status=none
  t1="$(now_ns)"
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  # Where the mount's memory is right after the read: anonymous (of it, glibc's brk heap) and file-backed.
  mem="$(awk '/^RssAnon/ { a = $2 } /^RssFile/ { f = $2 } END { printf "anon %d MiB, file %d MiB", a / 1024, f / 1024 }' "/proc/$mpid/status")"
  heap="$(awk '/\[heap\]/ { h = 1; next } h && /^Rss:/ { printf "%d", $2 / 1024; exit }' "/proc/$mpid/smaps" 2>/dev/null || echo '?')"
  mc1="$(proc_cpu "$mpid")"
  ms1="$(awk -v hz="$clk_tck" '{ printf "%.3f", $15 / hz }' "/proc/$mpid/stat")"
  mf1="$(awk '{ print $10 }' "/proc/$mpid/stat")"
  sreg unmount "$mnt" >"$d/unmount.out" 2>&1 || { cat "$d/unmount.out" >&2; die "sreg unmount failed"; }
  if [ -n "${BENCH_CPU_PROF:-}" ]; then wait "$mpid" || true; fi # our child: a zombie until waited for
  for _ in $(seq 1 300); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
  active_mnt="" mpid=""
  # The mount's peak RSS over its life (ru_maxrss), from the line it logs when it unmounts.
  mlog="$d/mount.log"
  [ -n "${BENCH_CPU_PROF:-}" ] || mlog="$(sed -n 's/.*, log \(.*\)); stop it with.*/\1/p' "$d/mount.out" | head -n1)"
  peak="$(sed -n 's/.* unmounted .* (peak memory \([0-9.]*\) MiB)$/\1/p' "$mlog" 2>/dev/null | tail -n1)"
  peak="${peak:-0}"
  c_mount="$(awk -v a="$mc0" -v b="$mc1" 'BEGIN { printf "%.3f", b - a }')"
  mbs="$(awk -v s="$size" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", s / ((b - a) / 1e9) / 1e6 }')"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(per_gib "$c_mount")" "$(per_gib "$c_curl")" "$(per_gib "$c_ssl")" "$mbs" "$peak" "$curl_mbs" >>"$results"
  c_sys="$(awk -v a="$ms0" -v b="$ms1" 'BEGIN { printf "%.3f", b - a }')"
  say "run $run: mount $(per_gib "$c_mount") s/GiB (sys $(per_gib "$c_sys")), curls $(per_gib "$c_curl"), openssl $(per_gib "$c_ssl"), cold read $mbs MB/s (curls $curl_mbs), peak RSS $peak MiB ($mem, heap ${heap:-?} MiB after the read), $((mf1 - mf0)) minor page faults"
  rm -rf "$d"
done
median() { cut -f"$1" "$results" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
m_mount="$(median 1)" m_curl="$(median 2)" m_ssl="$(median 3)" m_mbs="$(median 4)" m_peak="$(median 5)" m_curl_mbs="$(median 6)"
floor="$(awk -v a="$m_curl" -v b="$m_ssl" 'BEGIN { printf "%.2f", a + b }')"
ratio="$(awk -v m="$m_mount" -v f="$floor" 'BEGIN { printf "%.2f", m / f }')"
shaping="unshaped"
[ -z "$bandwidth" ] || shaping="shaped: ${latency_ms} ms, $bandwidth B/s per connection"
echo "sreg $sreg_desc ($commit); image $size bytes; $threads fetches; emulator $shaping; medians of $runs"
echo "mount CPU ${m_mount} s/GiB; floor ${floor} s/GiB (curls ${m_curl} + openssl ${m_ssl}); ratio ${ratio}; cold read ${m_mbs} MB/s; peak RSS ${m_peak} MiB"
[ -z "$bandwidth" ] || echo "cold read / ${threads} ranged curls (${m_curl_mbs} MB/s): $(awk -v a="$m_mbs" -v b="$m_curl_mbs" 'BEGIN { printf "%.2f", a / b }')"
