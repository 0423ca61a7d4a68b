#!/usr/bin/env bash
# `make bench-run`: starts a private PostgreSQL server (tests/pg_harness.sh), runs pb_bench at
# full size on both backends, draws the plots with gnuplot and regenerates docs/BENCHMARKS.md
# and docs/bench/. Knobs (environment): PB_BENCH_SIZES, PB_BENCH_ARGS, PB_BENCH_DATA.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUT=$ROOT/docs/bench
PGDIR=$BUILD/benchpg
DATA=${PB_BENCH_DATA:-$BUILD/bench-data} # SQLite files: several GB at 100k organizations
SIZES=${PB_BENCH_SIZES:-1000,10000,100000}
BENCH=$BUILD/bench/pb_bench

die() {
    echo "bench-run: $*" >&2
    exit 1
}

[ -x "$BENCH" ] || die "$BENCH missing: run 'make bench' first"
command -v gnuplot >/dev/null 2>&1 || die "gnuplot missing (apt-get install gnuplot-nox)"

mkdir -p "$OUT" "$DATA"
# A server left over by an interrupted run is ours to stop: the harness refuses a
# directory it did not create.
"$ROOT/tests/pg_harness.sh" stop "$PGDIR" >/dev/null 2>&1 || true
conninfo=$("$ROOT/tests/pg_harness.sh" start "$PGDIR") || die "cannot start PostgreSQL"
cleanup() {
    "$ROOT/tests/pg_harness.sh" stop "$PGDIR" >/dev/null 2>&1 || true
    rm -f "$DATA"/pbbench_*.db "$DATA"/pbbench_*.db-wal "$DATA"/pbbench_*.db-shm
}
trap cleanup EXIT

# shellcheck disable=SC2086 # PB_BENCH_ARGS is a list of options
"$BENCH" run --pg "$conninfo" --sqlite-dir "$DATA" --sizes "$SIZES" --out "$OUT" \
    ${PB_BENCH_ARGS:-}

gnuplot -e "dir='$OUT'" "$ROOT/bench/plot.gp"

# docs/BENCHMARKS.md: the prose of bench/BENCHMARKS.md.in with the generated results in
# place of its @RESULTS@ line (image links made relative to docs/).
awk -v results="$OUT/results.md" '
    $0 == "@RESULTS@" {
        while ((getline line < results) > 0) {
            gsub(/\]\(statements\.svg\)/, "](bench/statements.svg)", line)
            gsub(/\]\(wall\.svg\)/, "](bench/wall.svg)", line)
            print line
        }
        next
    }
    { print }
' "$ROOT/bench/BENCHMARKS.md.in" >"$ROOT/docs/BENCHMARKS.md.tmp"
mv "$ROOT/docs/BENCHMARKS.md.tmp" "$ROOT/docs/BENCHMARKS.md"
echo "bench-run: wrote docs/BENCHMARKS.md and $OUT"
