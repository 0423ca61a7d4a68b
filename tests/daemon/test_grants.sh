#!/usr/bin/env bash
# Least privilege: a role holding exactly what `prebuilds init --print-grants` prints
# (and nothing else) runs reconcile, `run --once` and `run --listen`; the same role
# without the INSERT grants is refused with exit 5 and writes nothing. The password in
# its URL appears in no output.
# Usage: test_grants.sh BINARY CONNINFO   (CONNINFO: a superuser on a running server)
set -u
BIN=$1
BASE=$2
DB_NAME="pbgrants_$$"
ROLE="pb_least_$$"
W=$(mktemp -d /tmp/pbgrants.XXXXXX)
PASS=0
FAIL=0
DPID=""
cleanup() {
    [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
    psql "$BASE" -qXc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1
    psql "$BASE" -qXc "DROP ROLE IF EXISTS $ROLE" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then PASS=$((PASS + 1)); else
        FAIL=$((FAIL + 1))
        echo "FAIL: $what" >&2
    fi
}
q() { psql "$BASE dbname=$DB_NAME" -qXAtc "$1"; }

psql "$BASE" -qXc "CREATE DATABASE $DB_NAME" || exit 1
psql "$BASE" -qXc "CREATE ROLE $ROLE LOGIN PASSWORD 'Sekr1tPw'" || exit 1
ADMIN="$BASE dbname=$DB_NAME"
"$BIN" --db "$ADMIN" init --triggers >/dev/null || exit 1
"$BIN" --db "$ADMIN" seed --orgs 10 --templates-per-org 1 --versions-per-template 1 \
    --presets-per-version 1 --prebuilds-fraction 1 --drift-fraction 1 >/dev/null || exit 1
"$BIN" --db "$ADMIN" init --print-grants "$ROLE" >"$W/grants.sql"
# reading and connecting need no more than the printed grants on a fresh database
q "REVOKE ALL ON DATABASE $DB_NAME FROM PUBLIC; GRANT CONNECT ON DATABASE $DB_NAME TO $ROLE" || exit 1
psql "$ADMIN" -qX -v ON_ERROR_STOP=1 -f "$W/grants.sql" || exit 1
# the password is not needed (trust), but it must never be printed either
AS_ROLE="postgresql://$ROLE:Sekr1tPw@$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$BASE"):$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$BASE")/$DB_NAME"

# without INSERT: refused, exit 5, nothing written
q "REVOKE INSERT ON organization_members, groups, group_members FROM $ROLE"
rows() { q "SELECT (SELECT count(*) FROM organization_members) + (SELECT count(*) FROM groups) + (SELECT count(*) FROM group_members)"; }
before=$(rows)
"$BIN" --db "$AS_ROLE" reconcile >"$W/out" 2>"$W/err"
check "reconcile without INSERT exits 5 (got $?)" test $? -eq 5
check "the refusal says permission denied" grep -q "permission denied" "$W/err"
check "nothing written without INSERT" test "$(rows)" = "$before"
check "there was drift to repair" test "$before" -lt 30
psql "$ADMIN" -qX -v ON_ERROR_STOP=1 -f "$W/grants.sql" || exit 1

# with exactly the printed grants: reconcile, run --once, run --listen
"$BIN" --db "$AS_ROLE" reconcile >"$W/out" 2>"$W/err"
check "reconcile with the printed grants exits 0" test $? -eq 0
check "reconcile converged" test "$(q 'SELECT count(*) FROM group_members')" = 10
"$BIN" --db "$ADMIN" member remove --org seed1-org-0000003 >/dev/null
"$BIN" --db "$AS_ROLE" run --once --metrics-addr off >"$W/once" 2>&1
check "run --once with the printed grants exits 0" test $? -eq 0
check "run --once repaired" test "$(q 'SELECT count(*) FROM organization_members')" = 10

"$BIN" --db "$AS_ROLE" --log-level debug run --listen --interval 1h --lock-id 4242 --metrics-addr off \
    >"$W/run" 2>&1 &
DPID=$!
# the first full pass is done before the drift, so only a notification can repair it
for _ in $(seq 1 100); do grep -q 'pass converged' "$W/run" && break; sleep 0.1; done
check "the daemon leads and finished its first pass" grep -q 'leading' "$W/run"
"$BIN" --db "$ADMIN" group-member remove --org seed1-org-0000005 >/dev/null
ok=no
for _ in $(seq 1 100); do
    [ "$(q 'SELECT count(*) FROM group_members')" = 10 ] && ok=yes && break
    sleep 0.1
done
check "run --listen repaired a notified drift with the printed grants" test "$ok" = yes
kill -TERM "$DPID"
wait "$DPID"
check "run --listen exits 0 on SIGTERM" test $? -eq 0
DPID=""
# the printed grants let the role read the summary, in the probe too (a fresh process)
"$BIN" --db "$AS_ROLE" status >"$W/st" 2>"$W/st.err"
check "status with the printed grants exits 0" test $? -eq 0
check "status with the printed grants trusts the summary" bash -c "! grep -q 'not trusted' '$W/st.err'"
# a reinstall of the summary keeps what the role was granted on it
"$BIN" --db "$ADMIN" init --summary >/dev/null || exit 1
"$BIN" --db "$AS_ROLE" status >"$W/st" 2>"$W/st.err"
check "after init --summary the role still trusts the summary" bash -c "! grep -q 'not trusted' '$W/st.err'"
check "no password in any output" bash -c "! grep -q Sekr1tPw '$W'/out '$W'/err '$W'/once '$W'/run"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
