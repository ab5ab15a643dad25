#!/bin/sh
# Regenerates src/wit/ (the WIT binding types) from the WIT with `jco guest-types`.
# usage: scripts/gen-wit-types.sh [WIT_DIR]   (default: the repository's wit/v0.1.2)
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
JCO=${JCO:-/tmp/tc/js/node_modules/.bin/jco}
WIT=${1:-$HERE/../../wit/v0.1.2}
rm -rf "$HERE/src/wit"
"$JCO" guest-types "$WIT" --world-name plugin --out-dir "$HERE/src/wit" --quiet
