#!/usr/bin/env bash
# FUSE passthrough (native/src/passthrough.c) against the addon's ordinary read path and local
# disk, on one image, before the mount uses it (issue 10: warm read and second read aims):
#   scripts/bench-passthrough.sh [--out FILE]     (default bench/results/passthrough.md)
# BENCH_IMAGE / BENCH_DATA_MIB (1000) as in scripts/lib/bench.sh, BENCH_RUNS (3). Per round and
# mode (pt, then plain; the order turned every other round): the addon mounted with a dispatch
# of its own (scripts/lib/passthrough-probe.mjs) serving the image as one file; drop_caches,
# dd bs=1M of it (warm), again (second); drop_caches, dd of the image (local), again (page).
# Root, /dev/fuse, a built dist/ and native addon.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
bench_settings bench/results/passthrough.md "$@"
[ "$(id -u)" -eq 0 ] || die "needs root (drop_caches, the mount)"
[ -c /dev/fuse ] || die "no /dev/fuse"
need dd node siftool cmp
[ -f native/build/Release/sreg_fuse.node ] || die "no native addon: run scripts/build-native.sh"
[ -f dist/src/fuse3/native.js ] || die "no dist/: run npm run build"
bench_init passthrough
mnt="$tmp/mnt"
mkdir -p "$mnt"
bench_cleanup_hook() { mountpoint -q "$mnt" && fusermount3 -uz "$mnt" || true; }
bench_image
declare -A got=()
for r in $(seq 1 "$runs"); do
  modes="pt plain"
  ((r % 2 == 0)) && modes="plain pt"
  for m in $modes; do
    node scripts/lib/passthrough-probe.mjs "$img" "$mnt" "$m" 1 >"$tmp/$m.$r.json" || die "the $m probe failed"
    line="$(head -n1 "$tmp/$m.$r.json")"
    for k in warm second local page; do got[$m.$k]+="$(jget "$line" "$k") "; done
    say "round $r $m: $line"
  done
done
med() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
local_med="$(med "${got[pt.local]} ${got[plain.local]}")"
page_med="$(med "${got[pt.page]} ${got[plain.page]}")"
counters="$(tail -n1 "$tmp/pt.$runs.json")"
{
  bench_report_head "FUSE passthrough in the native addon (not yet used by the mount)"
  cat <<EOT
| image | \`scripts/build-sif.sh --data-mib $data_mib\`: $size bytes, on $(df --output=source "$img" | tail -n1) ($(stat -f -c %T "$img")) |
| runs | $runs rounds, each mode in its own process (\`scripts/lib/passthrough-probe.mjs IMAGE MNT MODE 1\`), the order turned every other round |
| script time | $(($(date +%s) - script_t0)) s |

MB = 10⁶ bytes, medians of every round (each round's figures in brackets). **pt**: opens answered with
the image as their backing file (FOPEN_PASSTHROUGH); the kernel reads it itself. **plain**: the
ordinary FUSE path, each read answered by the addon's JavaScript side from the image (the
mount's fast path from block files answers on the FUSE thread instead, but through the same
kernel path: its second read is the same page-cache read as here).

| read (dd bs=1M) | pt | plain | local (either round) |
|---|---|---|---|
| warm: drop_caches, then the file | $(med "${got[pt.warm]}") MB/s, $(ratio "$(med "${got[pt.warm]}")" "$local_med") of local [${got[pt.warm]% }] | $(med "${got[plain.warm]}") MB/s, $(ratio "$(med "${got[plain.warm]}")" "$local_med") [${got[plain.warm]% }] | $local_med MB/s [${got[pt.local]}${got[plain.local]% }] |
| second: the same again (page cache) | $(med "${got[pt.second]}") MB/s, $(ratio "$(med "${got[pt.second]}")" "$page_med") of page [${got[pt.second]% }] | $(med "${got[plain.second]}") MB/s, $(ratio "$(med "${got[plain.second]}")" "$page_med") [${got[plain.second]% }] | $page_med MB/s [${got[pt.page]}${got[plain.page]% }] |

The addon's counters after the last pt round: \`$counters\`
EOT
} >"$out"
cat "$out"
say "wrote $out"
