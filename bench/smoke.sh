#!/bin/sh
# ctest's bench_smoke_*: pb_bench at toy size in a directory of its own (removed afterwards),
# then the report template over its results. Usage: smoke.sh PB_BENCH DIR ARGS...
set -eu
pb=$1 dir=$2
shift 2
rm -rf "$dir"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
"$pb" smoke --out "$dir" "$@"
jq -r -f "$(dirname "$0")/report.jq" "$dir/results.json" >/dev/null
