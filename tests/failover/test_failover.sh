#!/usr/bin/env bash
# Failover: two real PostgreSQL servers with streaming replication (tests/pg_harness.sh
# start, then standby). A daemon given both hosts and target_session_attrs=read-write leads
# on the primary; the primary crashes, the standby is promoted, and the daemon reconnects
# to it, leads again and repairs drift within a few backoff steps. A daemon given only the
# standby never loops on it: "read-only" is an outage, logged once, retried with backoff,
# over as soon as the standby is promoted. A primary turned read-only under a live session
# (SQLSTATE 25006 on the writes) ends the session the same way.
# Usage: test_failover.sh BINARY HARNESS
# shellcheck disable=SC2317 # the predicates below run through check and wait_until
BIN=$1
HARNESS=$2
# shellcheck source=tests/failover/lib.sh
. "$(dirname "$0")/lib.sh"

P=$WORK/primary
S=$WORK/standby
CLEANUP+=("'$HARNESS' stop '$P'" "'$HARNESS' stop '$S'")
"$HARNESS" start "$P" >/dev/null || die "the primary did not start"
PP=$(sed -n 's/.* port=\([0-9]*\) .*/\1/p' "$P/conninfo")
psql "$(cat "$P/conninfo")" -qXc "CREATE DATABASE pbfail" >/dev/null
P_DB="host=127.0.0.1 port=$PP user=postgres dbname=pbfail"
if ! "$BIN" --db "$P_DB" init >/dev/null ||
    ! "$BIN" --db "$P_DB" seed --orgs 6 --prebuilds-fraction 1 --drift-fraction 0 >/dev/null ||
    ! "$BIN" --db "$P_DB" reconcile >/dev/null; then
    fail "init, seed and reconcile on the primary"
fi
"$HARNESS" standby "$S" "$P" >/dev/null || die "the standby did not start"
SP=$(sed -n 's/.* port=\([0-9]*\) .*/\1/p' "$S/conninfo")
S_DB="host=127.0.0.1 port=$SP user=postgres dbname=pbfail"
check "the standby streams from the primary" \
    test "$(psql "$S_DB" -XAtc 'SELECT pg_is_in_recovery()')" = t

q() { psql "$1" -qXAtc "$2"; }
# converged DB ORG: membership, group and group membership all there.
converged() {
    [ "$(q "$1" "SELECT count(*) FROM organizations o
        JOIN organization_members m ON m.organization_id = o.id
        JOIN groups g ON g.organization_id = o.id AND g.name = 'coderprebuiltworkspaces'
        JOIN group_members gm ON gm.group_id = g.id AND gm.user_id = m.user_id
        WHERE o.name = '$2' AND m.user_id = 'c42fdf75-3097-471c-8c33-fb52454d81c0'")" = 1 ]
}
replayed() { [ "$(q "$S_DB" "SELECT count(*) FROM organization_members")" = "$1" ]; }

# The failover URL, in both spellings libpq accepts; the daemon gets the key=value one.
MULTI="host=127.0.0.1,127.0.0.1 port=$PP,$SP user=postgres dbname=pbfail target_session_attrs=read-write"
MULTI_URI="postgresql://postgres@127.0.0.1:$PP,127.0.0.1:$SP/pbfail?target_session_attrs=read-write"
uri_status() { "$BIN" --db "$MULTI_URI" status --json >"$WORK/uri.out" 2>&1; }
check "the URI form of a multi-host URL reaches the primary" uri_status
COMMON=(--log-level debug run --interval 1s --backoff-max 1s --metrics-addr 127.0.0.1:0)
start_daemon d1 --db "$MULTI" "${COMMON[@]}"
# The standby alone, another lock: it must not lead, fail passes, or retry without pause.
start_daemon d2 --db "$S_DB" "${COMMON[@]}" --lock-id 8

# ---- 1. before: d1 leads on the primary, d2 waits for a read-write server
check "d1 leads on the primary" wait_until 10 logged d1 'leading: holding the advisory lock'
"$BIN" --db "$P_DB" member remove --org seed1-org-0000001 >/dev/null
check "d1 repairs drift on the primary" wait_until 10 converged "$P_DB" seed1-org-0000001
check "d2 sees a read-only server" wait_until 10 logged d2 'the server is read-only'
sleep 3
check "d2: one warning for the standby, nothing else" \
    test "$(level_count d2 warn)" = 1 -a "$(level_count d2 warn 'read-only')" = 1
ATTEMPTS=$(log_count d2 'database still unreachable')
check "d2 backs off on the read-only server ($ATTEMPTS retries in about 4 s)" \
    test "$ATTEMPTS" -ge 2 -a "$ATTEMPTS" -le 15
check "d2 never led nor ran a pass" \
    test "$(log_count d2 'leading')" = 0 -a "$(log_count d2 'pass ')" = 0
check "d2 reports itself down" test "$(metric d2 prebuilds_database_up)" = 0
wait_until 10 replayed "$(q "$P_DB" "SELECT count(*) FROM organization_members")" ||
    fail "the standby did not replay the repair"

# ---- 2. the primary crashes; the standby is promoted
"$HARNESS" crash "$P" || fail "crash the primary"
check "d1 notices the lost primary" wait_until 10 logged d1 'database connection lost'
sleep 2 # d1 now meets a refused primary and a standby libpq skips (read-write)
check "d1 does not lead on the standby" test "$(log_count d1 'leading')" = 1
T0=$(now_ms)
"$HARNESS" promote "$S" || fail "promote the standby"
T1=$(now_ms)
"$BIN" --db "$S_DB" member remove --org seed1-org-0000002 >/dev/null
"$BIN" --db "$S_DB" group-member remove --org seed1-org-0000003 >/dev/null
"$BIN" --db "$S_DB" group remove --org seed1-org-0000004 >/dev/null
repaired() {
    converged "$S_DB" seed1-org-0000002 && converged "$S_DB" seed1-org-0000003 &&
        converged "$S_DB" seed1-org-0000004
}
check "drift on the new primary repaired" wait_until 15 repaired
T2=$(now_ms)
echo "measured: promote took $((T1 - T0)) ms; drift repaired $((T2 - T1)) ms after promotion"
check "d1 reconnects to the new primary and leads again" \
    wait_until 10 count_is d1 'leading: holding the advisory lock' 2
T3=$(now_ms)
echo "measured: d1 led the new primary $((T3 - T1)) ms after promotion (backoff cap 1s)"
check "d1 said the outage ended" logged d1 'database reachable again'
check "d2 reached the promoted server and leads lock 8" \
    wait_until 10 logged d2 'leading: holding the advisory lock lock_id=8'
check "d1: the outage was one warning" test "$(level_count d1 warn)" = 1
check "no pass failed" test "$(log_count d1 'pass failed')" = 0 -a "$(log_count d2 'pass failed')" = 0

# ---- 3. the primary turns read-only under live sessions: the writes fail with 25006
q "$S_DB" "ALTER SYSTEM SET default_transaction_read_only = on" >/dev/null
q "$S_DB" "SELECT pg_reload_conf()" >/dev/null
read_only_now() { [ "$(q "$S_DB" 'SHOW default_transaction_read_only')" = on ]; }
wait_until 5 read_only_now || fail "the server did not turn read-only"
sleep 0.5 # every backend has read the new setting
PGOPTIONS='-c default_transaction_read_only=off' q "$S_DB" \
    "DELETE FROM organization_members WHERE user_id = 'c42fdf75-3097-471c-8c33-fb52454d81c0'
     AND organization_id = (SELECT id FROM organizations WHERE name = 'seed1-org-0000005')"
check "d1 ends its session on the read-only server" \
    wait_until 10 count_is d1 'database connection lost' 2
check "d2 ends its session on the read-only server" \
    wait_until 10 count_is d2 'database connection lost' 1
logged d1 'the server is read-only' || fail "d1 did not say why"
sleep 3
D1_RETRIES=$(log_count d1 'database still unreachable')
check "both back off, no pass fails ($D1_RETRIES retries by d1 so far)" \
    test "$(log_count d1 'pass failed')" = 0 -a "$(log_count d2 'pass failed')" = 0 -a \
    "$(level_count d1 warn)" = 2 -a "$(level_count d2 warn)" = 2
q "$S_DB" "ALTER SYSTEM RESET default_transaction_read_only" >/dev/null
q "$S_DB" "SELECT pg_reload_conf()" >/dev/null
check "read-write again: the drift is repaired" wait_until 15 converged "$S_DB" seed1-org-0000005
check "d1 leads again after the read-only spell" \
    wait_until 10 count_is d1 'leading: holding the advisory lock' 3
check "nothing logged at error level" no_errors d1
check "nothing logged at error level (d2)" no_errors d2
stop_daemon d1
check "d1 stops cleanly" test "$STOP_RC" = 0
stop_daemon d2
finish
