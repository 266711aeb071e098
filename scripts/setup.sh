#!/usr/bin/env bash
# Installs everything sreg needs on a fresh Debian machine of this kind, then builds it.
# Idempotent: each step is skipped when what it provides is already there.
#   Debian: libfuse2 (fuse-native) fuse3 libfuse3-dev pkg-config (the native adapter; fuse3
#           replaces Debian's `fuse` and provides fusermount3 and a fusermount link) attr squashfs-tools siftool busybox-static rsync fio curl strace
#           python3-sqlalchemy (a test checks the Python client reads the sregistry.db we write)
#           util-linux-extra (fincore: a test says how much of a file the page cache holds)
#           python3-dropbox, openssl (the official Python SDK drives the emulator over TLS, with
#           a throwaway certificate the test makes with openssl)
#   npm:    `npm ci` (better-sqlite3 and fuse-native are compiled against Node's headers;
#           package.json's allowScripts lets npm 11 run their install scripts)
#   build:  `npm run build` (tsc → dist/), then `npm run build:native` (native/ with node-gyp,
#           offline); if the addon does not build, mounts fall back to fuse-native (libfuse 2)
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(libfuse2 fuse3 libfuse3-dev pkg-config attr squashfs-tools siftool busybox-static rsync fio curl strace python3-sqlalchemy python3-dropbox openssl util-linux-extra)

say() { printf '[setup] %s\n' "$*" >&2; }

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { say "need root (or sudo) to install: ${missing[*]}"; exit 1; }
    SUDO="sudo"
  fi
  say "installing Debian packages: ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund 2>&1 | grep -v 'Unknown user config' >&2 || true
  [ -d node_modules ] || { say "npm ci failed"; exit 1; }
fi

# The two native addons must load; a silent skip of their install scripts shows up here.
node -e "require('better-sqlite3')(':memory:').close()" \
  || { say "better-sqlite3 did not build: run 'npm rebuild better-sqlite3' and read its output"; exit 1; }
node -e "require('fuse-native')" \
  || { say "fuse-native does not load (is libfuse2 installed?)"; exit 1; }

say "building (tsc)"
npm run --silent build
say "building the native FUSE adapter"
./scripts/build-native.sh || say "the native FUSE adapter did not build: mounts will use fuse-native (libfuse 2)"
say "ready"
