#!/usr/bin/env bash
# Builds the native FUSE adapter (native/, an N-API addon over libfuse 3's low-level API) with
# node-gyp, offline, against the Node headers installed on this machine (/usr/include/node, or
# the running Node's own include folder). Output: native/build/Release/sreg_fuse.node.
# Exit status 0 when built; otherwise the mount falls back to fuse-native (libfuse 2).
set -euo pipefail
cd "$(dirname "$0")/../native"
say() { printf '[build-native] %s\n' "$*" >&2; }
pkg-config --exists fuse3 || { say "libfuse3-dev is missing (apt-get install libfuse3-dev pkg-config): not built"; exit 1; }
nodedir=""
for d in "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")" /usr /usr/local; do
  if [ -f "$d/include/node/node_api.h" ] && [ -f "$d/include/node/common.gypi" ]; then nodedir="$d"; break; fi
done
[ -n "$nodedir" ] || { say "no Node headers (include/node/common.gypi) found: not built"; exit 1; }
gyp=""
npm_root="$(dirname "$(readlink -f "$(command -v npm)")")/.."
for g in "$npm_root/node_modules/node-gyp/bin/node-gyp.js" "$(command -v node-gyp || true)"; do
  if [ -n "$g" ] && [ -f "$g" ]; then gyp="$g"; break; fi
done
[ -n "$gyp" ] || { say "node-gyp not found (it comes with npm): not built"; exit 1; }
say "node-gyp rebuild (headers from $nodedir/include/node)"
node "$gyp" rebuild --nodedir="$nodedir" --loglevel=warn >&2
node -e "require('./build/Release/sreg_fuse.node').version()" >/dev/null
say "built native/build/Release/sreg_fuse.node"
