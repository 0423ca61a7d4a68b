#!/usr/bin/env bash
# The pause switch (site_configs key prebuilds_settings, {"reconciliation_paused": true}) and the
# prebuilds user's soft delete stop every write, and lifting them repairs by itself:
#  - paused: reconcile and run --once exit 6, say so, write nothing; the daemon keeps serving,
#    writes nothing, shows prebuilds_paused 1 and a /readyz body that says paused, and repairs
#    within seconds once the switch is lifted; pause/resume set the switch on our own schema
#    and refuse (exit 5) on the platform's;
#  - prebuilds user soft-deleted (the platform's trigger takes its memberships away) or missing:
#    reconcile, plan, reconcile --dry-run and run --once exit 5 with one line, write nothing;
#    a daemon beside it does not add the memberships back; restored, the daemon repairs.
# Usage: test_pause_user.sh BINARY pg CONNINFO | test_pause_user.sh BINARY sqlite
BIN=$1
MODE=$2
BASE=${3:-}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
UID_PB=c42fdf75-3097-471c-8c33-fb52454d81c0
PAUSED='{"reconciliation_paused": true}'
RUNNING='{"reconciliation_paused": false}'

metric() { curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" | grep -q "^$1\$"; }
readyz_paused() { curl -s --max-time 5 "http://127.0.0.1:$PORT/readyz" | grep -qi paused; }
# the command line without its --db URL, for messages
cmdline() {
    [ "$1" = --db ] && shift 2
    echo "$*"
}
# expect_paused NAME ARGS...: exit 6, says paused, and ROWS (a command) unchanged
expect_paused() {
    local name=$1 before
    shift
    before=$($ROWS)
    run_pb "$name" "$@"
    set -- "$(cmdline "$@")"
    [ "$RC" -eq 6 ] && ok "paused: $* exits 6" || fail "paused: $*: exit $RC, want 6: $(said)"
    grep -qi paused "$WORK/$name.out" "$WORK/$name.err" && ok "paused: $* says paused" ||
        fail "paused: $* does not say paused: $(said)"
    [ "$($ROWS)" = "$before" ] && ok "paused: $* wrote nothing" || fail "paused: $* wrote rows ($before -> $($ROWS))"
}
# expect_no_user NAME ARGS...: exit 5, one line (run --once: a line among its log lines)
# naming the user, ROWS unchanged
expect_no_user() {
    local name=$1 before
    shift
    before=$($ROWS)
    run_pb "$name" "$@"
    set -- "$(cmdline "$@")"
    [ "$RC" -eq 5 ] && ok "user gone: $* exits 5" || fail "user gone: $*: exit $RC, want 5: $(said)"
    case "$*" in
    *"run --once"*)
        grep -qiE 'prebuilds user|deleted' "$WORK/$name.err" && ok "user gone: $* names the user: $(grep -iE -m1 'prebuilds user|deleted' "$WORK/$name.err" | cut -c1-200)" ||
            fail "user gone: $* does not say why: $(said)" ;;
    *)
        [ "$(lines "$WORK/$name.err")" -eq 1 ] && ok "user gone: $* says so in one line: $(cat "$WORK/$name.err")" ||
            fail "user gone: $*: $(lines "$WORK/$name.err") stderr lines: $(said)" ;;
    esac
    [ "$($ROWS)" = "$before" ] && ok "user gone: $* wrote nothing" || fail "user gone: $* wrote rows ($before -> $($ROWS))"
}
# the daemon's checks while paused: serving, gauge 1, readyz says paused, no row written
daemon_paused() {
    local what=$1 before
    before=$($ROWS)
    wait_until 10 metric 'prebuilds_paused 1' && ok "$what: prebuilds_paused 1" ||
        fail "$what: no 'prebuilds_paused 1' on /metrics: $(curl -s --max-time 5 "http://127.0.0.1:$PORT/metrics" | grep -m1 paused)"
    wait_until 5 readyz_paused && ok "$what: /readyz says paused" ||
        fail "$what: /readyz does not say paused: $(curl -s --max-time 5 "http://127.0.0.1:$PORT/readyz")"
    sleep 3 # three intervals
    [ "$($ROWS)" = "$before" ] && ok "$what: the daemon wrote nothing in 3 s" || fail "$what: the daemon wrote rows ($before -> $($ROWS))"
    kill -0 "$DPID" 2>/dev/null && ok "$what: the daemon keeps running" || fail "$what: the daemon exited: $(tail -n 2 "$DLOG")"
}

if [ "$MODE" = pg ]; then
    # ------------------------------------------------------------ platform database, paused
    new_platform
    ROWS=pf_prebuilds_rows
    pf_run_all p0 >/dev/null || fail "platform flows"
    run_pb init --db "$DB" init --triggers
    [ "$RC" -eq 0 ] || fail "init --triggers: $(said)"
    [ -n "$(pf_expected_qualifying)" ] || fail "no organization qualifies: nothing to hold back"
    oq "$PDB" "INSERT INTO site_configs (key, value) VALUES ('prebuilds_settings', '$PAUSED')"
    expect_paused rec --db "$DB" reconcile
    expect_paused once --db "$DB" run --once --lock-id 4901 --metrics-addr off
    DLOG=$WORK/daemon1.log
    start_daemon "$DLOG" --db "$DB" --log-level debug run --listen --interval 1s --lock-id 4901 \
        --metrics-addr 127.0.0.1:0
    wait_until 10 grep -q metrics_port= "$DLOG" || fail "daemon: no metrics port: $(tail -n 3 "$DLOG")"
    PORT=$(metrics_port "$DLOG")
    daemon_paused "paused daemon"
    pf_template_new "$(pf_org_create p0-new)" web "small=1" >/dev/null # more drift, notified
    daemon_paused "paused daemon after a notified change"
    oq "$PDB" "UPDATE site_configs SET value = '$RUNNING' WHERE key = 'prebuilds_settings'"
    wait_until 15 converged && ok "switch lifted: the daemon repaired by itself" ||
        fail "switch lifted: not converged after 15 s ($(pf_not_converged | wc -l) left)"
    wait_until 5 metric 'prebuilds_paused 0' && ok "switch lifted: prebuilds_paused 0" || fail "switch lifted: prebuilds_paused not 0"
    wait_until 5 readyz_paused && fail "switch lifted: /readyz still says paused" || ok "switch lifted: /readyz no longer says paused"
    # paused again, then the row removed altogether: not paused either
    oq "$PDB" "UPDATE site_configs SET value = '$PAUSED' WHERE key = 'prebuilds_settings'"
    wait_until 10 metric 'prebuilds_paused 1' || fail "paused again: gauge not 1"
    pf_sql -c "DELETE FROM organization_members WHERE user_id = '$UID_PB'" >/dev/null
    daemon_paused "paused again, memberships removed"
    oq "$PDB" "DELETE FROM site_configs WHERE key = 'prebuilds_settings'"
    wait_until 15 converged && ok "switch removed: the daemon repaired by itself" ||
        fail "switch removed: not converged after 15 s"
    # pause and resume belong to our own schema
    oq "$PDB" "INSERT INTO site_configs (key, value) VALUES ('prebuilds_settings', '$RUNNING')"
    expect_rc "pause on the platform's schema is refused" 5 pause --db "$DB" pause
    expect_rc "resume on the platform's schema is refused" 5 resume --db "$DB" resume
    check "refused pause/resume left the switch alone" test "$(oq "$PDB" "SELECT value FROM site_configs WHERE key = 'prebuilds_settings'")" = "$RUNNING"

    # ------------------------------------------------------------ the prebuilds user soft-deleted
    check "converged before the soft delete" converged
    pf_user_soft_delete >/dev/null || fail "soft-deleting the prebuilds user"
    # the platform's trigger removed the memberships; the daemon, notified, must not add them back
    check "no membership left for the soft-deleted user" \
        test "$(oq "$PDB" "SELECT count(*) FROM organization_members WHERE user_id = '$UID_PB'") $(oq "$PDB" "SELECT count(*) FROM group_members WHERE user_id = '$UID_PB'")" = "0 0"
    sleep 3 # the notified passes and a few intervals of the daemon
    check "the daemon did not add memberships back for a soft-deleted user" \
        test "$(oq "$PDB" "SELECT count(*) FROM organization_members WHERE user_id = '$UID_PB'")" = 0
    expect_no_user u_rec --db "$DB" reconcile
    expect_no_user u_plan --db "$DB" plan
    expect_no_user u_dry --db "$DB" reconcile --dry-run
    expect_no_user u_once --db "$DB" run --once --lock-id 4902 --metrics-addr off
    kill -USR1 "$DPID" 2>/dev/null # a full pass now
    sleep 2
    check "nor after a full pass" test "$(oq "$PDB" "SELECT count(*) FROM organization_members WHERE user_id = '$UID_PB'")" = 0
    check "the daemon keeps running while the user is deleted" kill -0 "$DPID"
    pf_user_restore >/dev/null || fail "restoring the prebuilds user"
    wait_until 15 converged && ok "user restored: the daemon repaired by itself" ||
        fail "user restored: not converged after 15 s ($(pf_not_converged | wc -l) left)"
    stop_daemon "$DPID"
    # a user that does not exist at all
    pf_sql -c "DELETE FROM organization_members WHERE user_id = '$UID_PB'" >/dev/null
    expect_no_user m_rec --db "$DB" --user-id 7e57f00d-0000-4000-8000-000000000000 reconcile
    expect_no_user m_once --db "$DB" --user-id 7e57f00d-0000-4000-8000-000000000000 run --once --lock-id 4903 --metrics-addr off

    # ------------------------------------------------------------ our own PostgreSQL schema
    new_empty
    rows_own() { sq "$PDB" "SELECT (SELECT count(*) FROM organization_members) + (SELECT count(*) FROM groups) + (SELECT count(*) FROM group_members)"; }
    ROWS=rows_own
    run_pb own_init --db "$DB" init
    "$BIN" --db "$DB" seed --orgs 4 --prebuilds-fraction 1 --drift-fraction 1 >/dev/null 2>&1
    expect_rc "pause on our own PostgreSQL schema" 0 own_pause --db "$DB" pause
    check "pause set the switch" test "$(sq "$PDB" "SELECT (value::jsonb ->> 'reconciliation_paused') FROM site_configs WHERE key = 'prebuilds_settings'")" = true
    expect_paused own_rec --db "$DB" reconcile
    expect_paused own_once --db "$DB" run --once --lock-id 4904 --metrics-addr off
    expect_rc "resume on our own PostgreSQL schema" 0 own_resume --db "$DB" resume
    check "resume lifted the switch" test "$(sq "$PDB" "SELECT coalesce((SELECT value::jsonb ->> 'reconciliation_paused' FROM site_configs WHERE key = 'prebuilds_settings'), 'false')")" = false
    expect_rc "reconcile after resume" 0 own_rec2 --db "$DB" reconcile
    finish
fi

[ "$MODE" = sqlite ] || {
    echo "usage: $0 BINARY pg CONNINFO | $0 BINARY sqlite" >&2
    exit 2
}
# ---------------------------------------------------------------- SQLite (our own schema)
F=$WORK/t.db
DB="sqlite:$F"
s3() { sqlite3 -cmd '.timeout 5000' "$F" "$1"; }
rows_sqlite() { s3 "SELECT (SELECT count(*) FROM organization_members) + (SELECT count(*) FROM groups) + (SELECT count(*) FROM group_members)"; }
sqlite_converged() { [ "$(rows_sqlite)" = 12 ]; }
ROWS=rows_sqlite
"$BIN" --db "$DB" init >/dev/null 2>&1 || fail "sqlite init"
"$BIN" --db "$DB" seed --orgs 4 --prebuilds-fraction 1 --drift-fraction 1 >/dev/null 2>&1 || fail "sqlite seed"
s3 "DELETE FROM group_members; DELETE FROM organization_members; DELETE FROM groups"
expect_rc "pause on SQLite" 0 pause --db "$DB" pause
check "pause set the switch" test "$(s3 "SELECT json_extract(value, '\$.reconciliation_paused') FROM site_configs WHERE key = 'prebuilds_settings'")" = 1
expect_paused rec --db "$DB" reconcile
expect_paused once --db "$DB" run --once --metrics-addr off
DLOG=$WORK/daemon.log
start_daemon "$DLOG" --db "$DB" --log-level debug run --interval 1s --metrics-addr 127.0.0.1:0
wait_until 10 grep -q metrics_port= "$DLOG" || fail "daemon: no metrics port: $(tail -n 3 "$DLOG")"
PORT=$(metrics_port "$DLOG")
daemon_paused "paused SQLite daemon"
expect_rc "resume on SQLite" 0 resume --db "$DB" resume
wait_until 15 sqlite_converged && ok "resumed: the SQLite daemon repaired by itself" ||
    fail "resumed: SQLite not converged after 15 s (rows $(rows_sqlite), want 12)"
wait_until 5 metric 'prebuilds_paused 0' && ok "resumed: prebuilds_paused 0" || fail "resumed: prebuilds_paused not 0"
# the prebuilds user soft-deleted, its memberships gone with it (as the platform does)
s3 "UPDATE users SET deleted = 1 WHERE id = '$UID_PB'; DELETE FROM organization_members WHERE user_id = '$UID_PB'; DELETE FROM group_members WHERE user_id = '$UID_PB'"
sleep 3
check "the SQLite daemon did not add memberships back for a soft-deleted user" \
    test "$(s3 "SELECT count(*) FROM organization_members WHERE user_id = '$UID_PB'")" = 0
expect_no_user u_rec --db "$DB" reconcile
expect_no_user u_plan --db "$DB" plan
expect_no_user u_dry --db "$DB" reconcile --dry-run
expect_no_user u_once --db "$DB" run --once --metrics-addr off
check "the SQLite daemon keeps running while the user is deleted" kill -0 "$DPID"
s3 "UPDATE users SET deleted = 0 WHERE id = '$UID_PB'"
wait_until 15 sqlite_converged && ok "user restored: the SQLite daemon repaired by itself" ||
    fail "user restored: SQLite not converged after 15 s (rows $(rows_sqlite), want 12)"
stop_daemon "$DPID"
finish
