#!/usr/bin/env bash
# valgrind memcheck over a daemon doing PASSES passes (default 1000) on a PostgreSQL
# server of its own, with drift made every half second so the write path runs too.
# Passes when the daemon exits 0 on SIGTERM and memcheck reports no error and no
# definite or indirect leak. Part of `make stress` (it takes minutes under valgrind).
# Usage: valgrind_daemon.sh BINARY HARNESS [PASSES]
set -u
BIN=$1
HARNESS=$2
PASSES=${3:-1000}
W=$(mktemp -d /tmp/pbvalgrind.XXXXXX)
chmod 0755 "$W"
PG="$W/pg"
DAEMON=""
DRIFTER=""
cleanup() {
    [ -n "$DRIFTER" ] && kill "$DRIFTER" 2>/dev/null
    [ -n "$DAEMON" ] && kill -9 "$DAEMON" 2>/dev/null
    "$HARNESS" stop "$PG" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT

"$HARNESS" start "$PG" >/dev/null || exit 1
BASE=$(cat "$PG/conninfo")
psql "$BASE" -qc "CREATE DATABASE vg" || exit 1
DB="$BASE dbname=vg"
"$BIN" --db "$DB" init >/dev/null || exit 1
"$BIN" --db "$DB" seed --orgs 40 --templates-per-org 1 --versions-per-template 1 \
    --presets-per-version 1 --prebuilds-fraction 1 --drift-fraction 0 >/dev/null || exit 1

valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --log-file="$W/vg.log" \
    "$BIN" --db "$DB" run --interval 20ms --metrics-addr 127.0.0.1:0 >"$W/d.log" 2>&1 &
DAEMON=$!

( while :; do
      sleep 0.5
      n=$(( (RANDOM % 40) + 1 ))
      "$BIN" --db "$DB" member remove --org "seed1-org-$(printf '%07d' $((n - 1)))" >/dev/null 2>&1
  done ) &
DRIFTER=$!

port=""
for _ in $(seq 1 600); do
    port=$(sed -n 's/.*metrics_port=\([0-9][0-9]*\).*/\1/p' "$W/d.log" | head -n 1)
    [ -n "$port" ] && break
    sleep 0.5
done
[ -n "$port" ] || { echo "valgrind: the daemon never served metrics"; cat "$W/d.log"; exit 1; }
passes=0
start=$SECONDS
while [ "$passes" -lt "$PASSES" ] && [ $((SECONDS - start)) -lt 1200 ]; do
    sleep 2
    passes=$(curl -sf "http://127.0.0.1:$port/metrics" |
        awk '/^prebuilds_passes_total/ { s += $2 } END { printf "%d", s }')
done
kill "$DRIFTER" 2>/dev/null
DRIFTER=""
kill -TERM "$DAEMON"
wait "$DAEMON"
rc=$?
DAEMON=""
added=$(grep -c 'added organization membership' "$W/d.log")
echo "valgrind: $passes passes in $((SECONDS - start)) s, $added memberships repaired, daemon exit $rc"
grep -E "ERROR SUMMARY|definitely lost|indirectly lost" "$W/vg.log" || true
if [ "$rc" -eq 0 ] && [ "$passes" -ge "$PASSES" ] && ! grep -q "ERROR SUMMARY: [1-9]" "$W/vg.log"; then
    echo "1 passed, 0 failed"
    exit 0
fi
cat "$W/vg.log"
echo "0 passed, 1 failed"
exit 1
