#!/usr/bin/env bash
# Builds the project's four seed images in the registry's Dropbox layout
# (/<collection>/<name>:<tag>.simg):
#
#   scripts/build-seed-images.sh OUTDIR
#     OUTDIR/pusheen/asaurus:red.simg
#     OUTDIR/pusheen/asaurus:blue.simg
#     OUTDIR/pusheen/asaurus:green.simg
#     OUTDIR/vsoch/hello-world:tacos.simg
#
# An image is rebuilt only when it is missing or older than this script or build-sif.sh.
# Prints the paths of the images, one per line, on stdout.
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
outdir="$1"
here="$(cd "$(dirname "$0")" && pwd)"
build_sif="$here/build-sif.sh"
self="$here/$(basename "$0")"

SEED_IMAGES=(
  "pusheen/asaurus:red"
  "pusheen/asaurus:blue"
  "pusheen/asaurus:green"
  "vsoch/hello-world:tacos"
)

for image in "${SEED_IMAGES[@]}"; do
  name="${image%:*}"
  tag="${image##*:}"
  out="$outdir/$name:$tag.simg"
  if [ -s "$out" ] && [ "$out" -nt "$build_sif" ] && [ "$out" -nt "$self" ]; then
    echo "[seed] $image: up to date" >&2
  else
    echo "[seed] $image: building" >&2
    "$build_sif" --name "$name" --tag "$tag" "$out"
  fi
  echo "$out"
done
