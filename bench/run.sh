#!/usr/bin/env bash
# `make bench-run`: a private PostgreSQL server (tests/pg_harness.sh), pb_bench at full size
# on both backends into docs/bench/results.json, then the report (bench/report.jq) and the
# curve (bench/plot.gp, gnuplot). PB_BENCH_ARGS passes options to pb_bench (--rounds N,
# --cell-budget-s S, --max-presets N); PB_BENCH_DATA is where the SQLite files go.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OUT=$ROOT/docs/bench
PGDIR=$BUILD/benchpg
DATA=${PB_BENCH_DATA:-$BUILD/bench-data}

[ -x "$BUILD/bench/pb_bench" ] || { echo "bench-run: run 'make bench' first" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "bench-run: gnuplot missing (gnuplot-nox)" >&2; exit 1; }
mkdir -p "$OUT" "$DATA"
# A server left by an interrupted run is ours to stop (the harness refuses other directories).
"$ROOT/tests/pg_harness.sh" stop "$PGDIR" >/dev/null 2>&1 || true
conninfo=$("$ROOT/tests/pg_harness.sh" start "$PGDIR")
trap '"$ROOT/tests/pg_harness.sh" stop "$PGDIR" >/dev/null 2>&1 || true; rm -f "$DATA"/pbbench*' EXIT

# shellcheck disable=SC2086 # PB_BENCH_ARGS is a list of options
"$BUILD/bench/pb_bench" run --pg "$conninfo" --sqlite-dir "$DATA" --out "$OUT" ${PB_BENCH_ARGS:-}
jq -r -f "$ROOT/bench/curve.jq" "$OUT/results.json" >"$OUT/curve.dat"
gnuplot -e "dir='$OUT'" "$ROOT/bench/plot.gp"
jq -r -f "$ROOT/bench/report.jq" "$OUT/results.json" >"$ROOT/docs/BENCHMARKS.md"
echo "bench-run: wrote docs/BENCHMARKS.md and docs/bench/"
