#!/usr/bin/env bash
# The warm read through each FUSE adapter against local disk, medians of $BENCH_RUNS (3):
#   scripts/bench-warm.sh            (BENCH_DATA_MIB=1000 by default; BENCH_IMAGE, BENCH_SREG as
#                                     in scripts/lib/bench.sh)
#   BENCH_WARM_ADAPTERS=native        the adapters to compare (default "native fuse-native")
#   BENCH_ADDON=FILE                  the native addon to mount with (default native/build/Release's;
#                                     another build of it: an A/B of native/ changes)
# Per adapter: a fresh cache filled by one cold read (unshaped emulator), then per run
# `sreg unmount; sreg mount` (the same cache), `sync; echo 3 >/proc/sys/vm/drop_caches`, and a
# timed `dd bs=1M` of the image from the mount (its bytes compared after); per run also `dd` of
# the image from local disk after drop_caches. The rounds interleave (native, fuse-native,
# local). Prints MB/s per run, the medians and each adapter's ratio to local; and the mount's
# `nativeReads` of the last warm read. Root, /dev/fuse, a built dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
bench_settings /dev/null "$@"
bandwidth="" # unshaped
[ "$(id -u)" -eq 0 ] || die "needs root (drop_caches)"
need dd node siftool cmp
bench_init warm
mnt="$tmp/mnt"
bench_cleanup_hook() { mountpoint -q "$mnt" && { sreg unmount "$mnt" >/dev/null 2>&1 || fusermount3 -uz "$mnt" || true; }; }
bench_private_sreg
# The addon beside the private copy (dist/src/fuse3 looks in ../../../native/build/Release).
addon="${BENCH_ADDON:-$repo/native/build/Release/sreg_fuse.node}"
adapters="${BENCH_WARM_ADAPTERS:-native fuse-native}"
for a in $adapters; do
  case "$a" in native | fuse-native) ;; *) die "BENCH_WARM_ADAPTERS: no adapter $a (native, fuse-native)" ;; esac
done
[ -f "$addon" ] || die "no $addon: run scripts/build-native.sh"
mkdir -p "$app/native/build/Release" && cp "$addon" "$app/native/build/Release/"
bench_image
bench_emulator
senv=()
use_env() { # D
  mkdir -p "$1/home" "$1/storage" "$1/db" "$1/cache" "$mnt"
  senv=(HOME="$1/home" SREGISTRY_STORAGE="$1/storage" SREGISTRY_DATABASE="$1/db" SINGULARITY_CACHEDIR="$1/cache"
    SREGISTRY_DROPBOX_ENDPOINT="$url" SREGISTRY_DROPBOX_TOKEN="$DBX_TOKEN" SREGISTRY_PYTHON_THREADS="$threads"
    SREGISTRY_CLIENT_SECRETS="$1/home/.sregistry")
}
sreg() { env "${senv[@]}" node "$cli" --quiet "$@"; }
mount_as() { sreg mount --fuse "$1" --cache-size 4Gi "$mnt" >/dev/null; } # ADAPTER
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
rate() { # FILE: MB/s of dd bs=1M
  local t0 t1
  t0="$(now_ns)"
  dd if="$1" of=/dev/null bs=1M status=none
  t1="$(now_ns)"
  awk -v b="$size" -v ns="$((t1 - t0))" 'BEGIN { printf "%.0f", b / ns * 1000 }'
}
rpath="/bench/bench:big.simg"
use_env "$tmp/seed"
sreg push --force "$img" --name bench/bench:big >/dev/null
for a in $adapters; do # the cache each adapter reads warm
  use_env "$tmp/$a"
  mount_as "$a"
  dd if="$mnt$rpath" of=/dev/null bs=1M status=none
  t0="$(now_ns)"
  sreg unmount "$mnt" >/dev/null # seals (fsyncs) the blocks just written
  say "$a: sreg unmount after the cold read: $(secs "$t0" "$(now_ns)") s"
done
declare -A got=()
for run in $(seq 1 "$runs"); do
  line=""
  for a in $adapters; do
    use_env "$tmp/$a"
    mount_as "$a"
    drop_caches
    r="$(rate "$mnt$rpath")"
    got[$a]+="$r "
    line+=" $a $r"
    cmp -s "$mnt$rpath" "$img" || die "$a: the mounted image's bytes differ"
    [ "$run" = "$runs" ] && say "$a: $(sreg status --json | tr -d ' \n' | grep -o '"nativeReads":{[^}]*}' || echo 'no nativeReads')"
    sreg unmount "$mnt" >/dev/null
  done
  drop_caches
  r="$(rate "$img")"
  got[local]+="$r "
  say "run $run:$line local $r MB/s"
done
med() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
loc="$(med "${got[local]}")"
echo "warm read, $size bytes, dd bs=1M after drop_caches, MB/s (runs; median; ratio to local)"
for k in $adapters local; do
  m="$(med "${got[$k]}")"
  printf '%-12s %-22s median %5s  %s\n' "$k" "${got[$k]}" "$m" "$(awk -v m="$m" -v l="$loc" 'BEGIN { printf "%.2f", m / l }')"
done
