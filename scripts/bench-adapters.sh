#!/usr/bin/env bash
# Reads of one cached image through each FUSE adapter, in one run (about a minute):
#   scripts/bench-adapters.sh [MiB]        (default 256)
# For each adapter: a fresh cache, a cold read (from the local emulator, unshaped), two reads
# with the file's page cache dropped (dd iflag=nocache count=0: the blocks are on local disk;
# native answers them without JavaScript), two reads with the page cache as the adapter leaves
# it; then `dd` of the same bytes from a local file's page cache. Root, /dev/fuse, a built dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${1:-256}"
CLI="$PWD/dist/src/cli/index.js"
work="$(mktemp -d "${TMPDIR:-/tmp}/sreg-bench-adapters.XXXXXX")"
emu_pid=""
cleanup() {
  mountpoint -q "$work/home/containers" 2>/dev/null && { node "$CLI" unmount "$work/home/containers" >/dev/null 2>&1 || fusermount -uz "$work/home/containers" 2>/dev/null || true; }
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/emu" "$work/home/containers"
port=$((20000 + RANDOM % 20000))
SREG_EMULATOR_TOKEN=bench node "$CLI" emulator --root "$work/emu" --port "$port" >"$work/emu.log" 2>&1 &
emu_pid=$!
for _ in $(seq 50); do grep -q listening "$work/emu.log" && break; sleep 0.1; done
export HOME="$work/home" SREGISTRY_DROPBOX_ENDPOINT="http://127.0.0.1:$port" SREGISTRY_DROPBOX_TOKEN=bench \
  SREGISTRY_CLIENT_SECRETS="$work/home/.sregistry" SREGISTRY_DATABASE="$work/home/.singularity" SINGULARITY_CACHEDIR="$work/home/.singularity"
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$work/big.simg"
node "$CLI" push "$work/big.simg" --name bench/big:latest >/dev/null
M="$work/home/containers"
F="$M/bench/big:latest.simg"
rate() { dd if="$1" of=/dev/null bs=1M 2>&1 | tail -1 | sed 's/.*copied, //'; }
for a in native fuse-native; do
  rm -rf "$work/home/.singularity/sreg/blocks"
  node "$CLI" mount "$M" --fuse "$a" >/dev/null
  echo "$a cold:                $(rate "$F")"
  for i in 1 2; do
    dd if="$F" iflag=nocache count=0 status=none
    echo "$a page cache dropped $i: $(rate "$F")"
  done
  for i in 1 2; do echo "$a again $i:              $(rate "$F")"; done
  node "$CLI" status --json | tr -d ' \n' | grep -o '"adapter":"[^"]*"\|"nativeReads":{[^}]*}' || true
  node "$CLI" unmount "$M" >/dev/null
done
cat "$work/big.simg" >/dev/null
echo "local page cache:         $(rate "$work/big.simg")"
