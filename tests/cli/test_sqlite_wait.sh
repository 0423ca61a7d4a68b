#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317 # "check && pass || fail"; helpers run through wait_until
# SQLite stops and waits like PostgreSQL. Every wait for another writer's lock is bounded by
# lock_timeout (not a fixed 5 s), each attempt that ran out is retried, logged with its cause
# and counted (prebuilds_pass_retries_total), and the report says how many attempts it took.
# SIGTERM during such a wait ends the daemon within 2 s with the pass cancelled: nothing of it
# is committed once the lock is free. A database file replaced under a running daemon is
# noticed, and the daemon goes on with the new file.
#
# usage: test_sqlite_wait.sh PREBUILDS_BINARY
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" "$@"

DBF=$TMP/w.db
DB="sqlite:$DBF"
members() { sqlite3 -batch "$DBF" "SELECT count(*) FROM organization_members"; }
expect_exit 0 -- "$PB" --db "$DB" init
expect_exit 0 -- "$PB" --db "$DB" seed --orgs 3 --templates-per-org 1 --versions-per-template 1 \
    --presets-per-version 1 --prebuilds-fraction 1 --drift-fraction 1
DRIFTED=$(members)

# ---- a one-shot reconcile waits lock_timeout per attempt, retries, says so
sqlite_writer "$DBF" 8 || fail "the writer did not take the lock"
start=$(now_ms)
expect_exit 4 -- env PREBUILDS_LOCK_TIMEOUT=400ms "$PB" --db "$DB" reconcile --json
took=$(($(now_ms) - start))
expect_true "three attempts of 400 ms, not 5 s each (took $took ms)" \
    test "$took" -ge 1100 -a "$took" -lt 4000
expect_jq "$OUT" '.attempts == 3 and (.errors[0] | contains("held the lock for 400 ms"))'
expect_eq "retries logged with their cause" "$(grep -c 'pass retried attempt=[12] cause=lock_timeout' "$ERR")" 2
expect_eq "nothing written while locked" "$(members)" "$DRIFTED"
# the same bound in the configuration file
printf 'lock_timeout = 300ms\n' >"$TMP/w.conf"
start=$(now_ms)
expect_exit 4 -- "$PB" --config "$TMP/w.conf" --db "$DB" reconcile
took=$(($(now_ms) - start))
expect_true "lock_timeout from the file (took $took ms)" test "$took" -ge 800 -a "$took" -lt 3000
expect_contains "$ERR" "held the lock for 300 ms"
expect_lines "$ERR" 3 # two retries and the error
kill "$WRITER_PID" 2>/dev/null
wait "$WRITER_PID" 2>/dev/null

# ---- the daemon: SIGTERM within 2 s while a pass waits for the lock, nothing committed
sqlite_writer "$DBF" 20 || fail "the writer did not take the lock"
"$PB" --db "$DB" run --interval 200ms --lock-timeout 30s --metrics-addr off 2>"$TMP/d1.log" &
DPID=$!
BG_PIDS+=("$DPID")
wait_until 10 grep -q "connected" "$TMP/d1.log" || fail "daemon: $(cat "$TMP/d1.log")"
sleep 1 # its first pass read the drift and now waits for the lock (30 s allowed)
start=$(now_ms)
kill -TERM "$DPID"
wait "$DPID"
rc=$?
took=$(($(now_ms) - start))
expect_eq "SIGTERM during a lock wait: exit code" "$rc" 0
expect_true "SIGTERM during a lock wait: stopped within 2 s (took $took ms)" test "$took" -lt 2000
echo "measured: SIGTERM during a lock wait to exit: $took ms"
expect_true "the pass was cancelled" grep -q "pass cancelled for shutdown" "$TMP/d1.log"
kill "$WRITER_PID" 2>/dev/null
wait "$WRITER_PID" 2>/dev/null
expect_eq "nothing committed after the signal" "$(members)" "$DRIFTED"

# ---- retries counted in the metrics by cause, attempts in the pass's log line
sqlite_writer "$DBF" 1.5 || fail "the writer did not take the lock"
"$PB" --db "$DB" run --interval 100ms --lock-timeout 400ms --metrics-addr 127.0.0.1:0 \
    2>"$TMP/d2.log" &
DPID=$!
BG_PIDS+=("$DPID")
wait_until 10 grep -q "metrics_port=" "$TMP/d2.log" || fail "daemon 2: $(cat "$TMP/d2.log")"
PORT=$(sed -n 's/.*metrics_port=\([0-9]*\).*/\1/p' "$TMP/d2.log" | head -n1)
retried() { curl -s "http://127.0.0.1:$PORT/metrics" | grep -Eq '^prebuilds_pass_retries_total\{cause="lock_timeout"\} [1-9]'; }
expect_true "prebuilds_pass_retries_total{cause=\"lock_timeout\"} counts the retries" wait_until 5 retried
expect_true "the daemon logs each retry with its cause" \
    grep -q 'pass retried attempt=1 cause=lock_timeout' "$TMP/d2.log"
wait "$WRITER_PID" 2>/dev/null
attempts_said() { grep -Eq 'pass (repaired drift|failed).*attempts=[23]' "$TMP/d2.log"; }
expect_true "the pass that retried says how many attempts" wait_until 10 attempts_said
expect_true "the daemon repaired once the lock was free" \
    wait_until 10 grep -q "pass repaired drift" "$TMP/d2.log"

# ---- the file replaced under the running daemon: noticed, and the new file is reconciled
NEW=$TMP/new.db
expect_exit 0 -- "$PB" --db "sqlite:$NEW" init
expect_exit 0 -- "$PB" --db "sqlite:$NEW" seed --orgs 2 --seed 7 --templates-per-org 1 \
    --versions-per-template 1 --presets-per-version 1 --prebuilds-fraction 1 --drift-fraction 1
rm -f "$NEW-wal" "$NEW-shm"
mv "$NEW" "$DBF"
noticed() { grep -q "database file $DBF was replaced" "$TMP/d2.log"; }
expect_true "the daemon noticed the replaced file" wait_until 10 noticed
new_converged() {
    [ "$(sqlite3 "$DBF" "SELECT count(*) FROM organization_members m JOIN organizations o
        ON o.id = m.organization_id WHERE o.name LIKE 'seed7-%'")" = 2 ]
}
expect_true "the daemon reconciled the new file" wait_until 10 new_converged
kill -TERM "$DPID"
wait "$DPID" 2>/dev/null
finish
