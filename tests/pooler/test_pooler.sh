#!/usr/bin/env bash
# Poolers: a real PgBouncer (Debian's, 1.18: no prepared statement support) that the test
# starts on loopback, in front of a database of its own on the shared server, with three
# pools: `session` (pool_mode = session), `txn` (pool_mode = transaction, ONE server
# connection, so every client and every probe shares it and whatever a client leaves on it
# shows) and `leaky` (the same, for the control). PgBouncer refuses our `options` startup
# parameter, so every connection here also exercises the fallback: no startup options,
# search_path and jit set in every transaction, checked with a planted schema.
#   session mode: one-shot commands and a daemon (with --listen) work unchanged;
#   transaction mode: one-shot commands work, run again and again on one server
#   connection; two daemons with --pooler transaction repair drift, one pass at a time (a
#   held lock makes both follow), leave nothing on the server connection, and log no error;
#   the control: a daemon in session mode through the transaction pool does leave its
#   session behind, so the probes can tell.
# Usage: test_pooler.sh BINARY CONNINFO (a superuser on the shared server)
# shellcheck disable=SC2317 # the predicates below run through check and wait_until
BIN=$1
BASE=$2
# shellcheck source=tests/failover/lib.sh
. "$(dirname "$0")/../failover/lib.sh"

command -v pgbouncer >/dev/null || die "pgbouncer is not installed (Debian package pgbouncer)"
echo "pgbouncer: $(pgbouncer --version | head -n 1)"
DBNAME=pbpool_$$
PGPORT=$(printf '%s\n' "$BASE" | sed -n 's/.*port=\([0-9]*\).*/\1/p')
psql "$BASE" -qXc "CREATE DATABASE $DBNAME" >/dev/null || die "create database $DBNAME"
CLEANUP+=("psql '$BASE' -qXc 'DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)'")
# Direct, for the test's own look at the data (the planted schema must not fool it).
DIRECT="$BASE dbname=$DBNAME options='-c search_path=public'"
q() { psql "$DIRECT" -qXAtc "$1"; }

# ---- PgBouncer: config in the work directory, a free loopback port, as postgres if root
PGB=$WORK/bouncer
mkdir -p "$PGB"
printf '"postgres" ""\n' >"$PGB/users.txt"
as_pgb() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
start_bouncer() {
    local port _
    for _ in 1 2 3 4 5; do
        port=$((40000 + (RANDOM * 32768 + RANDOM) % 20000))
        cat >"$PGB/pgbouncer.ini" <<EOF
[databases]
session = host=127.0.0.1 port=$PGPORT dbname=$DBNAME pool_mode=session
txn = host=127.0.0.1 port=$PGPORT dbname=$DBNAME pool_mode=transaction pool_size=1
leaky = host=127.0.0.1 port=$PGPORT dbname=$DBNAME pool_mode=transaction pool_size=1
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $PGB/users.txt
logfile = $PGB/pgbouncer.log
pidfile = $PGB/pgbouncer.pid
admin_users = postgres
max_client_conn = 100
default_pool_size = 4
EOF
        [ "$(id -u)" -eq 0 ] && chown -R postgres: "$PGB"
        if as_pgb pgbouncer -d -q "$PGB/pgbouncer.ini" 2>>"$PGB/start.err" &&
            wait_until 5 psql "host=127.0.0.1 port=$port user=postgres dbname=pgbouncer" \
                -XAtc 'SHOW VERSION'; then
            BOUNCER_PORT=$port
            return 0
        fi
        [ -f "$PGB/pgbouncer.pid" ] && kill "$(cat "$PGB/pgbouncer.pid")" 2>/dev/null
        sleep 0.2
    done
    return 1
}
CLEANUP=("[ -f '$PGB/pgbouncer.pid' ] && kill \$(cat '$PGB/pgbouncer.pid')" "${CLEANUP[@]}")
start_bouncer || die "pgbouncer did not start: $(cat "$PGB/start.err" "$PGB/pgbouncer.log" 2>/dev/null)"
via() { printf 'host=127.0.0.1 port=%s user=postgres dbname=%s' "$BOUNCER_PORT" "$1"; }
SESSION=$(via session)
TXN=$(via txn)
check "pgbouncer refuses our startup options (what the fallback is for)" \
    sh -c "! psql \"$TXN options='-c jit=off'\" -XAtc 'SELECT 1' 2>&1 | grep -q '^1$'"

USER_ID=c42fdf75-3097-471c-8c33-fb52454d81c0
converged() {
    [ "$(q "SELECT count(*) FROM organizations o
        JOIN organization_members m ON m.organization_id = o.id AND m.user_id = '$USER_ID'
        JOIN groups g ON g.organization_id = o.id AND g.name = 'coderprebuiltworkspaces'
        JOIN group_members gm ON gm.group_id = g.id AND gm.user_id = '$USER_ID'
        WHERE o.name = '$1'")" = 1 ]
}
run_pb() { "$BIN" --db "$1" "${@:2}" >"$WORK/cmd.out" 2>&1; }

# ---- 1. session mode: everything unchanged
check "session: init (with the notify triggers)" run_pb "$SESSION" init --triggers
check "session: seed" run_pb "$SESSION" seed --orgs 8 --prebuilds-fraction 1 --drift-fraction 0.5
check "session: reconcile repairs the seeded drift" run_pb "$SESSION" reconcile
check "session: status" run_pb "$SESSION" status --json
check "session: every organization converged" test "$(jq length "$WORK/cmd.out")" = 8 -a \
    "$(jq '[.[] | select(.has_prebuild_user_in_group)] | length' "$WORK/cmd.out")" = 8
DAEMON=(--log-level debug run --interval 500ms --metrics-addr 127.0.0.1:0)
start_daemon s1 --db "$SESSION" "${DAEMON[@]}" --listen
check "session: the daemon leads" wait_until 10 logged s1 'leading: holding the advisory lock'
run_pb "$SESSION" member remove --org seed1-org-0000001
check "session: drift repaired" wait_until 10 converged seed1-org-0000001
check "session: the daemon was notified (LISTEN through the pooler)" \
    test "$(metric s1 prebuilds_notifications_total)" -ge 1
stop_daemon s1
check "session: the daemon stops cleanly, nothing at error level" \
    test "$STOP_RC" = 0 -a "$(level_count s1 error)" = 0

# ---- 2. the planted schema: a database default that puts an empty copy of our tables
# first. New server connections get it; a client that did not pin search_path in its own
# transaction reads the copy (the probe below does, to show the trap works).
q "CREATE SCHEMA trap; CREATE TABLE trap.organizations (LIKE public.organizations);
   ALTER DATABASE $DBNAME SET search_path = trap, public" >/dev/null
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
   WHERE datname = '$DBNAME' AND pid <> pg_backend_pid()" >/dev/null
probe() { psql "$TXN" -XAtc "$1" 2>&1; }
check "the trap works: a plain client reads the empty copy" \
    test "$(probe 'SELECT count(*) FROM organizations')" = 0

# ---- 3. transaction mode: one-shot commands, on one shared server connection
for i in 1 2 3; do
    run_pb "$TXN" member remove --org "seed1-org-000000$((i + 1))" || fail "txn: member remove $i"
    check "txn: reconcile, run $i" run_pb "$TXN" reconcile
done
all_converged() {
    local o
    for o in "$@"; do converged "$o" || return 1; done
}
check "txn: the drift is repaired" all_converged seed1-org-0000002 seed1-org-0000003 \
    seed1-org-0000004
check "txn: status reads our tables, not the planted ones" run_pb "$TXN" status --json
check "txn: status lists the 8 organizations" test "$(jq length "$WORK/cmd.out")" = 8
check "txn: init again (idempotent)" run_pb "$TXN" init
check "txn: plan" run_pb "$TXN" plan --json

# What a client may leave on the shared server connection: named statements, session
# settings, LISTENs; and a leader lock held by an idle session.
leftovers() {
    probe "SELECT (SELECT count(*) FROM pg_prepared_statements),
             current_setting('statement_timeout'), current_setting('jit'),
             current_setting('search_path'), (SELECT count(*) FROM pg_listening_channels())"
}
CLEAN='0|0|on|trap, public|0'
idle_locks() {
    q "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
       WHERE l.locktype = 'advisory' AND a.datname = '$DBNAME' AND a.state = 'idle'"
}
check "txn: the one-shots left nothing on the server connection" test "$(leftovers)" = "$CLEAN"

# ---- 4. transaction mode: two daemons
TD=("${DAEMON[@]}" --pooler transaction)
start_daemon t1 --db "$TXN" "${TD[@]}"
start_daemon t2 --db "$TXN" "${TD[@]}" --listen
check "txn: both daemons run passes" wait_until 10 sh -c \
    "grep -q 'pass converged' '$WORK/t1.log' && grep -q 'pass converged' '$WORK/t2.log'"
check "txn: polling only, said once at info" \
    test "$(level_count t1 info 'polling only')" = 1 -a "$(level_count t2 info 'polling only')" = 1
check "txn: --listen is ignored, and says so" logged t2 'listen ignored'
repairs() { cat "$WORK/t1.log" "$WORK/t2.log" | grep -c 'pass repaired drift'; }
# Two organizations drift in one transaction, so that one pass sees both.
q "BEGIN;
   DELETE FROM organization_members WHERE user_id = '$USER_ID'
     AND organization_id = (SELECT id FROM organizations WHERE name = 'seed1-org-0000005');
   DELETE FROM groups WHERE name = 'coderprebuiltworkspaces'
     AND organization_id = (SELECT id FROM organizations WHERE name = 'seed1-org-0000006');
   COMMIT" >/dev/null || fail "txn: make drift"
check "txn: drift repaired by the daemons" \
    wait_until 10 all_converged seed1-org-0000005 seed1-org-0000006
sleep 1.2 # two more intervals: the other daemon's passes find nothing to do
check "txn: one pass repaired it, the other daemon's found it done" test "$(repairs)" = 1

# A new organization whose template appears now: the summary's changes log is folded by
# a pass (inside the pass's transaction), and the organization qualifies.
ORG=$("$BIN" --db "$TXN" org create pooled 2>/dev/null)
TPL=$("$BIN" --db "$TXN" template create --org pooled web 2>/dev/null)
VER=$("$BIN" --db "$TXN" version create --template "$TPL" v1 2>/dev/null)
"$BIN" --db "$TXN" preset create --version "$VER" small --desired-instances 1 >/dev/null 2>&1 ||
    fail "txn: create organization, template, version and preset ($ORG)"
check "txn: a new organization is reconciled" wait_until 10 converged pooled
check "txn: its template is in the summary (the fold ran)" \
    test "$(q "SELECT count(*) FROM prebuilds_configured_templates WHERE template_id = '$TPL'")" = 1

# One pass at a time: while another session holds the lock in its transaction, both
# daemons follow and nothing is written; once it commits, one of them repairs.
mkfifo "$WORK/hold"
psql "$DIRECT" -qX <"$WORK/hold" >/dev/null 2>&1 &
HOLDER=$!
PIDS+=("$HOLDER")
exec 3>"$WORK/hold" # the holder's input, open until the test commits
echo "BEGIN; SELECT pg_advisory_xact_lock(7);" >&3
held() { [ "$(q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                 AND objid = 7 AND pid <> pg_backend_pid()")" -ge 1 ]; }
wait_until 5 held || fail "txn: the test's holder did not take the lock"
NOT_RUN="pass not run: another replica's pass holds the lock"
F1=$(log_count t1 "$NOT_RUN") F2=$(log_count t2 "$NOT_RUN")
run_pb "$TXN" member remove --org seed1-org-0000007
sleep 1.5 # three intervals
not_converged() { ! converged "$1"; }
check "txn: while the lock is held elsewhere, nothing is repaired" not_converged seed1-org-0000007
check "txn: both daemons tried and followed meanwhile" \
    test "$(log_count t1 "$NOT_RUN")" -gt "$F1" -a "$(log_count t2 "$NOT_RUN")" -gt "$F2"
check "txn: neither claims to lead meanwhile" \
    test "$(metric t1 prebuilds_leader)" = 0 -a "$(metric t2 prebuilds_leader)" = 0
echo "COMMIT;" >&3
exec 3>&-
wait "$HOLDER"
check "txn: the lock released, a daemon repairs" wait_until 10 converged seed1-org-0000007
check "txn: each drift was repaired by exactly one pass" test "$(repairs)" = 3

# Between passes the shared server connection is as the server gave it.
check "txn: the daemons left nothing on the server connection" test "$(leftovers)" = "$CLEAN"
check "txn: no leader lock held by an idle session" test "$(idle_locks)" = 0
check "txn: both ready" test "$(metric t1 prebuilds_database_up)" = 1 -a \
    "$(metric t2 prebuilds_database_up)" = 1
stop_daemon t1
R1=$STOP_RC
stop_daemon t2
check "txn: both stop cleanly" test "$R1" = 0 -a "$STOP_RC" = 0
check "txn: nothing logged at error level" no_errors t1
check "txn: nothing logged at error level (t2)" no_errors t2
check "txn: no pass failed" test "$(log_count t1 'pass failed')" = 0 -a \
    "$(log_count t2 'pass failed')" = 0

# ---- 5. the control: session mode through a transaction pool leaves its session behind
LEAKY=$(via leaky)
start_daemon c1 --db "$LEAKY" "${DAEMON[@]}"
wait_until 10 logged c1 'pass converged' || fail "control: the daemon ran no pass"
check "control: session state is left on the transaction pool's server connection" \
    test "$(psql "$LEAKY" -XAtc "SELECT current_setting('statement_timeout')")" = 30s
check "control: and its leader lock, held by an idle session" test "$(idle_locks)" -ge 1
stop_daemon c1

# ---- 6. the setting itself
"$BIN" --db "sqlite:$WORK/x.db" run --pooler transaction --once 2>"$WORK/err"
RC=$?
check "--pooler transaction on SQLite: refused (exit 2)" test "$RC" = 2
"$BIN" --db "$TXN" run --pooler statement --once 2>"$WORK/err"
RC=$?
check "--pooler statement: refused (exit 2), naming the values" \
    test "$RC" = 2 -a "$(grep -c 'use session or transaction' "$WORK/err")" = 1
PREBUILDS_POOLER=transaction "$BIN" --db "$TXN" run --once >"$WORK/once.out" 2>&1
RC=$?
check "PREBUILDS_POOLER=transaction: --once through the transaction pool" \
    test "$RC" = 0 -a "$(grep -c 'pooler=transaction' "$WORK/once.out")" = 1
finish
