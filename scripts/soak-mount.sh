#!/usr/bin/env bash
# Soak of `sreg mount`: several processes at once on a real kernel mount over `sreg emulator`
# (unshaped), then `sreg unmount` (drains uploads) and a file-by-file comparison of the
# expected tree with what Dropbox holds (content_hash). Needs root and /dev/fuse.
#
#   scripts/soak-mount.sh [--seconds N] [--fsx N] [--tree N] [--out bench/results/soak.md]
#
#   --seconds  how long the workers run (default 180)
#   --fsx      fsx-style workers (default 2): random write/read/truncate/fsync/close on 3 files,
#              every operation also applied to a local copy, every read checked against it
#   --tree     fsstress-style workers (default 2): mkdir, create, write, rename (files and
#              folders, also onto existing names), unlink, rmdir, truncate, fsync in a tree
#              (at most 12 folders and 40 files); each worker has its own subfolder
#   BENCH_SREG which sreg to test: `dist` (default) or a git revision (see lib/bench.sh)
# The workers are scripts/lib/soak.mjs. Exit 1 on any mismatch. Everything it starts is
# stopped, the mount unmounted and its temp dir removed on exit (trap EXIT).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh

seconds=180 n_fsx=2 n_tree=2 out=bench/results/soak.md
usage() { echo "usage: $0 [--seconds N] [--fsx N] [--tree N] [--out FILE]" >&2; exit 2; }
while (($#)); do
  [ $# -ge 2 ] || usage
  case "$1" in
    --seconds) seconds="$2" ;; --fsx) n_fsx="$2" ;; --tree) n_tree="$2" ;; --out) out="$2" ;;
    *) usage ;;
  esac
  shift 2
done
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "--seconds wants a positive whole number" >&2; exit 2; }
[[ "$n_fsx" =~ ^[0-9]$ && "$n_tree" =~ ^[0-9]$ ]] || { echo "--fsx and --tree want 0..9" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "soak-mount: needs root (a FUSE mount)" >&2; exit 1; }
[ -c /dev/fuse ] || { echo "soak-mount: no /dev/fuse" >&2; exit 1; }
need node curl fusermount mountpoint
cmdline="scripts/soak-mount.sh --seconds $seconds --fsx $n_fsx --tree $n_tree"

bench_init soak
mnt="$tmp/mnt" d="$tmp/env" expect="$tmp/expect" mpid="" mounted=""
bench_cleanup_hook() {
  if [ -n "$mounted" ] && mountpoint -q "$mnt"; then
    timeout 120 env "${senv[@]}" node "$cli" --quiet unmount "$mnt" >/dev/null 2>&1 \
      || fusermount -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  fi
  [ -z "$mpid" ] || kill -KILL "$mpid" 2>/dev/null || true
}

bench_private_sreg
bandwidth="" # unshaped
bench_emulator

mkdir -p "$d/home" "$d/storage" "$d/db" "$d/cache" "$mnt" "$expect"
senv=(HOME="$d/home" SREGISTRY_STORAGE="$d/storage" SREGISTRY_DATABASE="$d/db" SINGULARITY_CACHEDIR="$d/cache"
  SREGISTRY_DROPBOX_ENDPOINT="$url" SREGISTRY_DROPBOX_TOKEN="$DBX_TOKEN" SREGISTRY_CLIENT_SECRETS="$d/home/.sregistry")
sreg() { env "${senv[@]}" node "$cli" --quiet "$@"; }

mounted=1
sreg mount "$mnt" >"$d/mount.out" 2>&1 || { cat "$d/mount.out" >&2; die "sreg mount failed"; }
mpid="$(sed -n 's/.*(pid \([0-9]*\),.*/\1/p' "$d/mount.out" | head -n1)"
mlog="$(sed -n 's/.*, log \(.*\)); stop it with.*/\1/p' "$d/mount.out" | head -n1)"
say "mounted $mnt (pid $mpid); $n_fsx fsx + $n_tree tree workers for $seconds s"

pids=() names=()
start_workers() { # KIND COUNT
  local i
  for ((i = 1; i <= $2; i++)); do
    mkdir "$mnt/$1$i" "$expect/$1$i"
    timeout $((seconds + 300)) node scripts/lib/soak.mjs "$1" "$mnt/$1$i" "$expect/$1$i" "$seconds" "$RANDOM$i" \
      >"$tmp/$1$i.json" 2>"$tmp/$1$i.err" &
    pids+=($!) names+=("$1$i"); kids+=($!)
  done
}
t0="$(now_ns)"
start_workers fsx "$n_fsx"
start_workers tree "$n_tree"
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { failed=1; say "worker ${names[$i]} failed: $(tail -n5 "$tmp/${names[$i]}.err")"; }
  untrack "${pids[$i]}"
done
t1="$(now_ns)"
say "workers done in $(secs "$t0" "$t1") s; unmounting (drains the uploads)"
u0="$(now_ns)"
sreg unmount "$mnt" >"$d/unmount.out" 2>&1 || { cat "$d/unmount.out" >&2; die "sreg unmount failed"; }
u1="$(now_ns)"
for _ in $(seq 1 300); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
mountpoint -q "$mnt" && die "$mnt is still mounted after sreg unmount"
mounted="" mpid=""
node scripts/lib/soak.mjs compare "$expect" "$url" >"$tmp/compare.json" 2>"$tmp/compare.err" \
  || { cat "$tmp/compare.err" >&2; die "the comparison with Dropbox failed to run"; }

# Sum the workers' counts; list every mismatch; write the report.
results=()
for n in "${names[@]}"; do results+=("$tmp/$n.json"); done
results+=("$tmp/compare.json")
node -e '
  const fs = require("node:fs"); const tot = {}; const mis = [];
  const [out, secs, drain, cmd, ...files] = process.argv.slice(1);
  for (const f of files) {
    const who = f.split("/").pop().replace(".json", "");
    let j; try { j = JSON.parse(fs.readFileSync(f, "utf8")); } catch { mis.push(`${who}: no result`); continue; }
    for (const [k, v] of Object.entries(j.ops)) tot[k] = (tot[k] ?? 0) + v;
    for (const m of j.mismatches) mis.push(`${who}: ${m}`);
  }
  const { files: nf = 0, folders = 0, ...ops } = tot;
  const n = Object.values(ops).reduce((a, b) => a + b, 0);
  const rows = Object.entries(ops).map(([k, v]) => `| ${k} | ${v} |`).join("\n");
  fs.appendFileSync(out, `| workers ran | ${secs} s |\n| sreg unmount (drain) | ${drain} s |\n| operations | ${n} |\n| files / folders compared with Dropbox | ${nf} / ${folders} |\n| mismatches | ${mis.length} |\n\n| operation | count |\n|---|---|\n${rows}\n\n` +
    (mis.length ? "## Mismatches\n\n```\n" + mis.join("\n") + "\n```\n" : "No mismatch: every read matched the local copy, every outcome (success or errno) matched, and Dropbox holds exactly the expected tree (content_hash per file).\n"));
  console.error(`[soak] ${n} operations, ${nf} files / ${folders} folders compared, ${mis.length} mismatches`);
  for (const m of mis) console.error(`[soak] MISMATCH ${m}`);
  process.exitCode = mis.length || files.length === 0 ? 1 : 0;
' "$tmp/report.md" "$(secs "$t0" "$t1")" "$(secs "$u0" "$u1")" "$cmdline" "${results[@]}" 2>"$tmp/summary.err" && ok=1 || ok=0
cat "$tmp/summary.err" >&2
{
  bench_report_head "Soak of sreg mount"
  echo "| sreg | $sreg_desc ($commit) |"
  echo "| command | \`$cmdline\` |"
  echo "| workers | $n_fsx fsx (random I/O on 3 files each), $n_tree tree (fsstress-style), one process and subfolder each |"
  cat "$tmp/report.md"
} >"$tmp/final.md"
mkdir -p "$(dirname "$out")"
cp "$tmp/final.md" "$out"
say "report: $out"
((ok && !failed)) || exit 1
