#!/bin/sh
# Regenerates src/wit/ (the WIT binding types) from the WIT with `jco guest-types`.
# usage: scripts/gen-wit-types.sh [WIT_DIR]   (default: the repository's wit/v0.1.2)
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
# Default: the toolchain `cargo xtask build-plugins` (or `moat build`) installed.
JCO=${JCO:-$(ls -d "$HERE"/../../target/toolchains/jco-*/node_modules/.bin/jco 2>/dev/null | tail -n 1)}
[ -n "$JCO" ] || { echo "no jco: run cargo xtask build-plugins, or set JCO" >&2; exit 1; }
WIT=${1:-$HERE/../../wit/v0.1.2}
rm -rf "$HERE/src/wit"
"$JCO" guest-types "$WIT" --world-name plugin --out-dir "$HERE/src/wit" --quiet
