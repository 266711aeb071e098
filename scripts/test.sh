#!/usr/bin/env bash
# The README's test command: installs what is missing (scripts/setup.sh, idempotent), then
# runs everything: type-check + build (tsc), lint (eslint), and every ava test, including
# the end-to-end ones that start real emulator processes.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# Nothing a test leaves behind may survive it: run in a private temp dir removed at exit.
TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/sreg-test.XXXXXX")"
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT
npm test --silent -- "$@"
# The end-to-end suite again on the other adapter: the first run used the default (native when
# its addon is built), this one fuse-native (libfuse 2), so both stay tested. Only when no
# particular files were asked for.
if [ "$#" -eq 0 ] && [ -f native/build/Release/sreg_fuse.node ]; then
  SREG_FUSE=fuse-native npx ava 'dist/test/e2e/**/*.test.js'
fi
