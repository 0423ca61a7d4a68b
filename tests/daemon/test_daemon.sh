#!/usr/bin/env bash
# End-to-end tests of `prebuilds run` on real databases: drift repaired within an
# interval, at once with --listen, leader handover, surviving `pg_ctl stop`/`start`, the
# signals, /metrics under promtool, and no secret in any log. Timing bounds are generous
# (seconds for sub-second work) so a loaded machine does not make them flake; latency
# figures come from tests/daemon/listen_latency.c instead.
# Usage: test_daemon.sh BINARY sqlite
#        test_daemon.sh BINARY pg CONNINFO HARNESS   (HARNESS: tests/pg_harness.sh)
set -u

BIN=$1
MODE=$2
BASE=${3:-}
HARNESS=${4:-}
WORK=$(mktemp -d /tmp/pbdaemon.XXXXXX)
chmod 0755 "$WORK" # the private server runs as postgres when we are root
PIDS=()
FAILS=0
PRIVATE_PG=""

cleanup() {
    echo "cleanup at $SECONDS s"
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    [ -n "$PRIVATE_PG" ] && "$HARNESS" stop "$PRIVATE_PG" >/dev/null 2>&1
    [ -n "${HOLDER:-}" ] && kill "$HOLDER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}
ok() { echo "ok: $* ($SECONDS s)"; }

# wait_until SECONDS COMMAND...: poll every 50 ms; 0 when the command succeeded in time.
wait_until() {
    local limit=$1
    shift
    local end=$((SECONDS + limit))
    while [ "$SECONDS" -le "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

# start_daemon LOG ARGS...: run the daemon in the background; sets DPID.
start_daemon() {
    local log=$1
    shift
    "$BIN" "$@" >"$log" 2>&1 &
    DPID=$!
    PIDS+=("$DPID")
}

metrics_port() { sed -n 's/.*metrics_port=\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1; }

# stop_daemon PID: SIGTERM, then the exit code and the seconds it took (STOP_RC, STOP_S).
stop_daemon() {
    local t0 t1
    t0=$(date +%s%N)
    kill -TERM "$1"
    wait "$1"
    STOP_RC=$?
    t1=$(date +%s%N)
    STOP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
}

# ---------------------------------------------------------------- SQLite
if [ "$MODE" = sqlite ]; then
    DB="sqlite:$WORK/t.db"
    "$BIN" --db "$DB" init >/dev/null || fail "sqlite init"
    "$BIN" --db "$DB" seed --orgs 6 --prebuilds-fraction 1 --drift-fraction 0 >/dev/null
    "$BIN" --db "$DB" run --interval 0s 2>"$WORK/err"
    [ $? -eq 2 ] && grep -q 'must be positive' "$WORK/err" && ok "--interval 0s refused" ||
        fail "--interval 0s: $(cat "$WORK/err")"
    "$BIN" --db "$DB" run --interval 10 2>"$WORK/err"
    [ $? -eq 2 ] && grep -q 'missing unit' "$WORK/err" && ok "--interval without unit refused" ||
        fail "--interval 10"
    "$BIN" --db "$DB" run --listen 2>/dev/null
    [ $? -eq 2 ] && ok "--listen on SQLite refused" || fail "--listen on SQLite"
    "$BIN" --db "$DB" init --triggers 2>/dev/null
    [ $? -eq 2 ] && ok "init --triggers on SQLite refused" || fail "init --triggers on SQLite"
    "$BIN" --db "$DB" run --once >/dev/null 2>&1 && ok "--once exit 0" || fail "--once"
    "$BIN" --db "sqlite:$WORK/missing.db" run --once 2>/dev/null
    [ $? -eq 3 ] && ok "--once on a missing file: exit 3" || fail "--once missing file"

    start_daemon "$WORK/s.log" --db "$DB" --log-level debug run --interval 200ms \
        --metrics-addr 127.0.0.1:0
    wait_until 5 grep -q 'pass skipped' "$WORK/s.log" &&
        ok "idle SQLite passes read no table (data_version)" || fail "no skipped pass"
    "$BIN" --db "$DB" member remove --org seed1-org-0000002 >/dev/null
    has_member() {
        [ "$(sqlite3 "$WORK/t.db" "SELECT count(*) FROM organization_members m JOIN organizations o ON o.id = m.organization_id WHERE o.name = 'seed1-org-0000002'")" = 1 ]
    }
    wait_until 5 has_member && ok "SQLite drift repaired within the interval" ||
        fail "SQLite drift not repaired"
    PORT=$(metrics_port "$WORK/s.log")
    curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/m.txt" &&
        promtool check metrics <"$WORK/m.txt" >/dev/null 2>&1 && ok "promtool (sqlite)" ||
        fail "promtool (sqlite)"
    grep -q 'prebuilds_passes_total{result="skipped"} [1-9]' "$WORK/m.txt" ||
        fail "skipped passes not counted"
    stop_daemon "$DPID"
    [ "$STOP_RC" = 0 ] && ok "SIGTERM: exit 0 in ${STOP_S}s" || fail "SIGTERM rc=$STOP_RC"

    # --- systemd's notify protocol: READY=1, STATUS=, WATCHDOG=1 from a healthy loop,
    # STOPPING=1 on SIGTERM (socat stands in for systemd's socket)
    NSOCK="$WORK/notify.sock"
    socat -u UNIX-RECV:"$NSOCK" OPEN:"$WORK/notify.log",creat,append &
    PIDS+=("$!")
    wait_until 5 test -S "$NSOCK" || fail "notify socket not created"
    env NOTIFY_SOCKET="$NSOCK" WATCHDOG_USEC=400000 "$BIN" --db "$DB" run --interval 200ms \
        --metrics-addr off >"$WORK/n.log" 2>&1 &
    DPID=$!
    PIDS+=("$DPID")
    wait_until 5 grep -q 'READY=1' "$WORK/notify.log" && ok "sd_notify READY=1" ||
        fail "no READY=1: $(cat "$WORK/notify.log")"
    wait_until 5 grep -q 'WATCHDOG=1' "$WORK/notify.log" && ok "sd_notify WATCHDOG=1" ||
        fail "no WATCHDOG=1"
    grep -q 'STATUS=' "$WORK/notify.log" && ok "sd_notify STATUS=" || fail "no STATUS="
    stop_daemon "$DPID"
    wait_until 5 grep -q 'STOPPING=1' "$WORK/notify.log" && ok "sd_notify STOPPING=1" ||
        fail "no STOPPING=1"
    [ $FAILS -eq 0 ] && echo "all SQLite daemon tests passed"
    exit $((FAILS > 0))
fi

# ---------------------------------------------------------------- PostgreSQL
[ "$MODE" = pg ] || {
    echo "usage: $0 BINARY sqlite | BINARY pg CONNINFO HARNESS" >&2
    exit 2
}
N=0
# new_db: a fresh database with our schema, the triggers and 6 converged organizations.
new_db() {
    N=$((N + 1))
    local name="pbd_$$_$N"
    psql "$BASE" -qXc "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null
    DB="$BASE dbname=$name"
    "$BIN" --db "$DB" init --triggers >/dev/null || fail "init --triggers"
    "$BIN" --db "$DB" seed --orgs 6 --prebuilds-fraction 1 --drift-fraction 0 >/dev/null
}
q() { psql "$DB" -qXAtc "$1"; }
converged_org() { # name: member, group and group member all there
    [ "$(q "SELECT count(*) FROM organizations o
        JOIN organization_members m ON m.organization_id = o.id
        JOIN groups g ON g.organization_id = o.id AND g.name = 'coderprebuiltworkspaces'
        JOIN group_members gm ON gm.group_id = g.id AND gm.user_id = m.user_id
        WHERE o.name = '$1' AND m.user_id = 'c42fdf75-3097-471c-8c33-fb52454d81c0'")" = 1 ]
}
drift() { "$BIN" --db "$DB" "$1" remove --org "$2" >/dev/null || fail "drift $1 $2"; }

# --- periodic repair, HTTP endpoints, one statement per converged pass
new_db
start_daemon "$WORK/p.log" --db "$DB" --log-level debug run --interval 300ms \
    --metrics-addr 127.0.0.1:0
wait_until 10 grep -q 'leading' "$WORK/p.log" || fail "no leader: $(cat "$WORK/p.log")"
drift member seed1-org-0000001
drift group seed1-org-0000002
wait_until 5 converged_org seed1-org-0000001 && wait_until 5 converged_org seed1-org-0000002 &&
    ok "drift repaired within the interval" || fail "periodic repair"
wait_until 5 grep -q 'pass converged scope=full organizations=6 statements=1 ' "$WORK/p.log" &&
    ok "converged leader pass: one statement" || fail "converged pass not one statement"
PORT=$(metrics_port "$WORK/p.log")
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/m.txt" || fail "GET /metrics"
if promtool check metrics <"$WORK/m.txt" >"$WORK/promtool.out" 2>&1; then
    ok "promtool check metrics"
else
    fail "promtool: $(cat "$WORK/promtool.out")"
fi
for series in 'prebuilds_leader 1' 'prebuilds_database_up 1' \
    'prebuilds_rows_added_total{kind="group"} 1' 'prebuilds_errors_total{kind="connect"} 0'; do
    grep -qF "$series" "$WORK/m.txt" || fail "metrics lack: $series"
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/healthz")" = 200 ] || fail healthz
[ "$(curl -s "http://127.0.0.1:$PORT/readyz")" = "ready: leader" ] || fail readyz
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nope")" = 404 ] || fail "404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d x "http://127.0.0.1:$PORT/metrics")" = 404 ] ||
    fail "POST not 404"
big=$(head -c 40000 /dev/zero | tr '\0' a)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "http://127.0.0.1:$PORT/metrics")
[ "$code" != 200 ] && ok "oversized request refused ($code)" || fail "oversized request served"
ok "HTTP endpoints"
stop_daemon "$DPID"
[ "$STOP_RC" = 0 ] && ok "SIGTERM: exit 0 in ${STOP_S}s" || fail "SIGTERM rc=$STOP_RC"

# --- --listen: notified organizations repaired without waiting for the interval
new_db
start_daemon "$WORK/l.log" --db "$DB" run --listen --interval 1h --metrics-addr off
wait_until 10 grep -q 'leading' "$WORK/l.log" || fail "listen: no leader"
sleep 0.3 # the first full pass
ORG=$("$BIN" --db "$DB" org create brand-new)
TPL=$("$BIN" --db "$DB" template create --org "$ORG" web)
VER=$("$BIN" --db "$DB" version create --template "$TPL" v1)
"$BIN" --db "$DB" preset create --version "$VER" small --desired-instances 1 >/dev/null
wait_until 5 converged_org brand-new && ok "--listen: a new organization converged at once" ||
    fail "--listen: new organization not converged: $(cat "$WORK/l.log")"
drift group-member seed1-org-0000003
wait_until 5 converged_org seed1-org-0000003 && ok "--listen: group membership repaired" ||
    fail "--listen: group membership"
q "UPDATE groups SET name = 'renamed' WHERE name = 'coderprebuiltworkspaces' AND organization_id = (SELECT id FROM organizations WHERE name = 'seed1-org-0000004')"
wait_until 5 converged_org seed1-org-0000004 && ok "--listen: renamed group replaced" ||
    fail "--listen: renamed group"
grep -q 'scope=notified' "$WORK/l.log" || fail "--listen: no notified pass"
stop_daemon "$DPID"

# --- SIGUSR1 runs a pass now; SIGHUP reloads and refuses an invalid file
new_db
CONF="$WORK/prebuilds.conf"
printf 'interval = 1h\nlog_level = info\n' >"$CONF"
start_daemon "$WORK/h.log" --db "$DB" run --config "$CONF" --metrics-addr 127.0.0.1:0
wait_until 10 grep -q 'leading' "$WORK/h.log" || fail "hup: no leader"
sleep 0.3
drift member seed1-org-0000005
sleep 0.5
converged_org seed1-org-0000005 && fail "repaired before SIGUSR1 (interval 1h, no --listen)"
kill -USR1 "$DPID"
wait_until 5 converged_org seed1-org-0000005 && ok "SIGUSR1: pass now" || fail "SIGUSR1"
printf 'interval = 300ms\nlog_level = debug\n' >"$CONF"
kill -HUP "$DPID"
wait_until 5 grep -q 'configuration reloaded interval=300ms' "$WORK/h.log" &&
    wait_until 5 grep -q 'pass converged' "$WORK/h.log" && ok "SIGHUP: new interval and level" ||
    fail "SIGHUP reload: $(cat "$WORK/h.log")"
printf 'interval = 0s\n' >"$CONF"
kill -HUP "$DPID"
wait_until 5 grep -q 'reload refused, configuration unchanged error=.*interval: must be positive' \
    "$WORK/h.log" && ok "SIGHUP: invalid file refused" || fail "SIGHUP invalid: $(cat "$WORK/h.log")"
drift member seed1-org-0000000
wait_until 5 converged_org seed1-org-0000000 && kill -0 "$DPID" &&
    ok "still running on the old configuration" || fail "after refused reload"
stop_daemon "$DPID"

# --- leader handover: kill -9 the leader, the follower takes over within an interval
new_db
start_daemon "$WORK/a.log" --db "$DB" run --interval 500ms --metrics-addr off
A=$DPID
wait_until 10 grep -q 'leading' "$WORK/a.log" || fail "handover: no leader"
start_daemon "$WORK/b.log" --db "$DB" run --interval 500ms --metrics-addr 127.0.0.1:0
B=$DPID
wait_until 10 grep -q 'following' "$WORK/b.log" && ok "second replica follows" ||
    fail "no follower: $(cat "$WORK/b.log")"
BPORT=$(metrics_port "$WORK/b.log")
[ "$(curl -s "http://127.0.0.1:$BPORT/readyz")" = "ready: follower" ] || fail "follower readyz"
kill -9 "$A"
wait "$A" 2>/dev/null
drift member seed1-org-0000001
wait_until 5 grep -q 'leading' "$WORK/b.log" && wait_until 5 converged_org seed1-org-0000001 &&
    ok "follower took over and repaired" || fail "handover: $(cat "$WORK/b.log")"

# --- SIGTERM during a pass stuck on a lock: cancelled, rolled back, lock released
psql "$DB" -qXc "BEGIN; LOCK TABLE organizations IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(60)" \
    >/dev/null 2>&1 &
HOLDER=$!
stuck() { [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'prebuilds' AND wait_event_type = 'Lock'")" -ge 1 ]; }
stop_daemon "$B" # first stop the old follower-turned-leader, then a fresh one that blocks
start_daemon "$WORK/t.log" --db "$DB" run --interval 200ms --statement-timeout 0 \
    --lock-timeout 0 --metrics-addr off
wait_until 10 stuck || fail "the pass never blocked"
stop_daemon "$DPID"
if [ "$STOP_RC" = 0 ] && awk -v s="$STOP_S" 'BEGIN { exit !(s < 5) }'; then
    ok "SIGTERM during a stuck pass: exit 0 in ${STOP_S}s"
else
    fail "SIGTERM stuck pass: rc=$STOP_RC in ${STOP_S}s: $(cat "$WORK/t.log")"
fi
[ "$(q 'SELECT pg_try_advisory_lock(7)')" = t ] && ok "lock released" || fail "lock still held"
q "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%'
   AND pid <> pg_backend_pid()" >/dev/null
wait "$HOLDER" 2>/dev/null
HOLDER=""

# --- a statement timeout bounds a stuck pass; the loop goes on
psql "$DB" -qXc "BEGIN; LOCK TABLE organizations IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2)" \
    >/dev/null 2>&1 &
HOLDER=$!
start_daemon "$WORK/o.log" --db "$DB" run --interval 200ms --lock-timeout 300ms --metrics-addr off
wait_until 10 grep -q 'pass failed.*lock timeout' "$WORK/o.log" &&
    ok "lock_timeout ends a stuck pass" || fail "no lock timeout: $(cat "$WORK/o.log")"
wait "$HOLDER" 2>/dev/null
HOLDER=""
drift member seed1-org-0000002
wait_until 5 converged_org seed1-org-0000002 && ok "the loop went on after the timeout" ||
    fail "after timeout"
stop_daemon "$DPID"

# --- --once
"$BIN" --db "$DB" run --once >/dev/null 2>&1 && ok "--once: exit 0" || fail "--once"
PGPORT_BASE=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$BASE")

# --- secrets: a password in the URL appears in no log, error or metric
SECRET=hunter2secret
start_daemon "$WORK/x.log" --db "postgresql://postgres:$SECRET@127.0.0.1:$PGPORT_BASE/pbd_$$_$N" \
    --log-format json run --interval 300ms --metrics-addr 127.0.0.1:0
wait_until 10 grep -q 'leading' "$WORK/x.log" || fail "secret: no leader: $(cat "$WORK/x.log")"
XPORT=$(metrics_port "$WORK/x.log")
curl -sf "http://127.0.0.1:$XPORT/metrics" >"$WORK/xm.txt"
jq -e . "$WORK/x.log" >/dev/null && ok "JSON log lines" || fail "JSON log lines"
stop_daemon "$DPID"
"$BIN" --db "postgresql://postgres:$SECRET@127.0.0.1:1/nodb" run --once 2>"$WORK/once.err"
[ $? -eq 3 ] && ok "--once unreachable: exit 3" || fail "--once unreachable"
start_daemon "$WORK/y.log" --db "postgresql://postgres:$SECRET@127.0.0.1:1/nodb" run \
    --metrics-addr 127.0.0.1:0
wait_until 5 grep -q 'database unreachable' "$WORK/y.log" || fail "no outage line"
YPORT=$(metrics_port "$WORK/y.log")
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$YPORT/readyz")" = 503 ] ||
    fail "readyz not 503 while unreachable"
stop_daemon "$DPID"
[ "$STOP_RC" = 0 ] || fail "SIGTERM while unreachable: rc=$STOP_RC"
if grep -l "$SECRET" "$WORK"/x.log "$WORK"/xm.txt "$WORK"/once.err "$WORK"/y.log; then
    fail "the password leaked"
else
    ok "no password in logs, errors or metrics"
fi

# --- a private server stopped and started under a running daemon
PRIVATE_PG="$WORK/pg"
"$HARNESS" start "$PRIVATE_PG" >/dev/null || fail "private server"
PCONN=$(cat "$PRIVATE_PG/conninfo")
PPORT=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$PCONN")
DB="$PCONN"
"$BIN" --db "$DB" init --triggers >/dev/null && "$BIN" --db "$DB" seed --orgs 6 \
    --prebuilds-fraction 1 --drift-fraction 0 >/dev/null || fail "private init"
PGBIN=$(pg_config --bindir 2>/dev/null)
[ -x "$PGBIN/pg_ctl" ] || PGBIN=/usr/lib/postgresql/15/bin
as_owner() { if [ "$(id -u)" = 0 ]; then (cd "$PRIVATE_PG" && runuser -u postgres -- "$@"); else "$@"; fi; }
start_daemon "$WORK/r.log" --db "$DB" run --listen --interval 300ms --backoff-max 1s \
    --metrics-addr 127.0.0.1:0
wait_until 10 grep -q 'leading' "$WORK/r.log" || fail "restart: no leader"
RPORT=$(metrics_port "$WORK/r.log")
as_owner "$PGBIN/pg_ctl" stop -D "$PRIVATE_PG/data" -m fast -w >/dev/null || fail "pg_ctl stop"
wait_until 5 grep -q 'database connection lost' "$WORK/r.log" || fail "outage not logged"
sleep 1.5
kill -0 "$DPID" 2>/dev/null && ok "alive while the server is down" || fail "died with the server"
curl -s "http://127.0.0.1:$RPORT/metrics" | grep -q '^prebuilds_database_up 0' ||
    fail "database_up not 0"
as_owner "$PGBIN/pg_ctl" start -D "$PRIVATE_PG/data" -l "$PRIVATE_PG/server.log" \
    -o "-p $PPORT" -w >/dev/null || fail "pg_ctl start"
wait_until 10 grep -q 'database reachable again' "$WORK/r.log" || fail "recovery not logged"
drift member seed1-org-0000003
wait_until 5 converged_org seed1-org-0000003 && ok "repaired after pg_ctl stop/start" ||
    fail "after restart: $(cat "$WORK/r.log")"
[ "$(grep -c 'database connection lost\|database unreachable' "$WORK/r.log")" = 1 ] &&
    [ "$(grep -c 'database reachable again' "$WORK/r.log")" = 1 ] &&
    ok "outage logged once, recovery once" || fail "outage lines: $(cat "$WORK/r.log")"
curl -s "http://127.0.0.1:$RPORT/metrics" | grep -q '^prebuilds_database_reconnects_total 1' ||
    fail "reconnect not counted"
stop_daemon "$DPID"
[ "$STOP_RC" = 0 ] || fail "SIGTERM after restart rc=$STOP_RC"

[ $FAILS -eq 0 ] && echo "all PostgreSQL daemon tests passed"
exit $((FAILS > 0))
