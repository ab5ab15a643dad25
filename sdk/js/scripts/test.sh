#!/bin/sh
# Type-checks the SDK and its tests, compiles them to a temporary folder and
# runs them under Node with the host stand-in (node/register.mjs).
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
# Default: the toolchain `cargo xtask build-plugins` (or `moat build`) installed.
TSC=${TSC:-$(ls -d "$HERE"/../../target/toolchains/jco-*/node_modules/.bin/tsc 2>/dev/null | tail -n 1)}
[ -n "$TSC" ] || { echo "no tsc: run cargo xtask build-plugins, or set TSC" >&2; exit 1; }
OUT=$(mktemp -d "${TMPDIR:-/tmp}/moat-sdk-test-XXXXXX")
trap 'rm -rf "$OUT"' EXIT
"$TSC" -p "$HERE/tsconfig.json" --noEmit
"$TSC" -p "$HERE/tsconfig.json" --outDir "$OUT" --rootDir "$HERE" --noEmit false
node --import "$HERE/node/register.mjs" --test "$OUT"/test/*.test.js
