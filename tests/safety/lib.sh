# shellcheck shell=bash disable=SC2034
# (SC2034: DB, ODB, PDB and the like are set here for the tests that source this file)
# Shared by the safety tests: assertions, a work directory and databases that are removed on
# exit, the platform database, schema dumps and the daemon. Source it after setting BIN (the
# prebuilds binary) and BASE (a superuser conninfo on the shared server; may be empty for
# SQLite-only tests). Every test prints "ok: ..." / "FAIL: ..." lines and exits non-zero when
# anything failed.
set -u
SAFETY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=platform_flows.sh
. "$SAFETY_DIR/platform_flows.sh"

WORK=$(mktemp -d /tmp/pbsafety.XXXXXX)
chmod 0755 "$WORK"
FAILS=0
PASSES=0
DBS=()
ROLES=()
PIDS=()
CLEANUP_HOOKS=()
OWNER=coder_owner

safety_cleanup() {
    local p h d r
    for h in "${CLEANUP_HOOKS[@]}"; do eval "$h" >/dev/null 2>&1; done
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for d in "${DBS[@]}"; do
        psql "$BASE" -qXc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1
    done
    for r in "${ROLES[@]}"; do
        psql "$BASE" -qXc "DROP ROLE IF EXISTS $r" >/dev/null 2>&1
    done
    rm -rf "$WORK"
}
trap safety_cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}
ok() {
    echo "ok: $* ($SECONDS s)"
    PASSES=$((PASSES + 1))
}
# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
    echo "$PASSES passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
    exit $?
}

# wait_until SECONDS COMMAND...: poll every 100 ms; 0 when the command succeeded in time.
wait_until() {
    local limit=$1
    shift
    local end=$((SECONDS + limit))
    while [ "$SECONDS" -le "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# run_pb NAME ARGS...: run the binary, stdout in $WORK/NAME.out, stderr in $WORK/NAME.err,
# exit code in RC (bounded: 60 s, then killed).
run_pb() {
    local name=$1
    shift
    timeout -s KILL 60 "$BIN" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
    RC=$?
    LAST=$name
}
# What the last run_pb printed, on one line, for failure messages.
said() { cat "$WORK/$LAST.out" "$WORK/$LAST.err" | tr '\n' '|' | cut -c1-400; }
lines() { grep -c '' "$1"; }

# expect_rc DESCRIPTION CODE NAME ARGS...: run_pb, and the exit code must be CODE.
expect_rc() {
    local what=$1 want=$2
    shift 2
    run_pb "$@"
    if [ "$RC" = "$want" ]; then ok "$what (exit $RC)"; else fail "$what: exit $RC, want $want: $(said)"; fi
}

# expect_clean NAME ARGS...: the command works (exit 0), or fails the documented way: an exit
# code from 2 to 6 (not 1, "unexpected", and never a signal) and exactly one line on stderr.
expect_clean() {
    local what=$1
    shift
    run_pb "$@"
    if [ "$RC" -eq 0 ]; then
        ok "$what: works"
    elif [ "$RC" -ge 2 ] && [ "$RC" -le 6 ] && [ "$(lines "$WORK/$LAST.err")" -eq 1 ]; then
        ok "$what: refused cleanly (exit $RC: $(cat "$WORK/$LAST.err"))"
    else
        fail "$what: exit $RC with $(lines "$WORK/$LAST.err") stderr line(s): $(tr '\n' '|' <"$WORK/$LAST.err" | cut -c1-300)"
    fi
}

# A conninfo for our own psql: search_path pinned to public, so objects a test plants in other
# schemas never catch the test's own queries.
own() { printf "%s dbname=%s options='-csearch_path=public'" "$BASE" "$1"; }
# sq DB SQL: one statement as the superuser; tuples only.
sq() { psql "$(own "$1")" -qXAt -v ON_ERROR_STOP=1 -c "$2"; }
# oq DB SQL: the same as the platform's role.
oq() { psql "$(own "$1") user=$OWNER" -qXAt -v ON_ERROR_STOP=1 -c "$2"; }

N_DB=0
# new_platform: a fresh platform database (load_platform.sh); sets PDB (its name), DB (superuser
# conninfo for prebuilds), ODB (the platform role's conninfo for prebuilds) and PF_DB.
new_platform() {
    N_DB=$((N_DB + 1))
    PDB="pbsafe_$$_$N_DB"
    DBS+=("$PDB")
    "$SAFETY_DIR/load_platform.sh" "$BASE" "$PDB" "$OWNER" || {
        fail "load_platform.sh $PDB"
        finish
    }
    DB="$BASE dbname=$PDB"
    ODB="$BASE dbname=$PDB user=$OWNER"
    PF_DB="$(own "$PDB") user=$OWNER"
}
# new_empty: a fresh empty database (prebuilds creates its own schema there); sets PDB and DB.
new_empty() {
    N_DB=$((N_DB + 1))
    PDB="pbsafe_$$_$N_DB"
    DBS+=("$PDB")
    psql "$BASE" -qXc "CREATE DATABASE $PDB" >/dev/null || {
        fail "CREATE DATABASE $PDB"
        finish
    }
    DB="$BASE dbname=$PDB"
}

# dump DB FILE [PG_DUMP ARGS]: the schema, for diffing: comments, blank lines and the random
# \restrict key of newer pg_dump releases left out.
dump() {
    local d=$1 f=$2
    shift 2
    pg_dump -d "$BASE dbname=$d" --schema-only "$@" 2>"$f.err" | grep -v '^--\|^$\|^\\restrict \|^\\unrestrict ' >"$f"
    [ -s "$f" ] || fail "pg_dump $d: $(head -n 1 "$f.err")"
}

# Catalog entries named prebuilds_*, one a line ("kind name owner"): what we installed.
ours() {
    sq "$1" "SELECT 'relation ' || c.relkind::text || ' ' || c.relname || ' ' || c.relowner::regrole::text
               FROM pg_class c WHERE c.relname LIKE '%prebuilds%'
             UNION ALL SELECT 'function ' || p.oid::regprocedure::text || ' ' || p.proowner::regrole::text
               FROM pg_proc p WHERE p.proname LIKE 'prebuilds%'
             UNION ALL SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text
               FROM pg_trigger t WHERE t.tgname LIKE 'prebuilds%'
             ORDER BY 1" || echo "(catalog query failed)"
}

converged() { [ -z "$(pf_not_converged)" ]; }

# start_daemon LOG ARGS...: `prebuilds ARGS` in the background; sets DPID.
start_daemon() {
    local log=$1
    shift
    "$BIN" "$@" >"$log" 2>&1 &
    DPID=$!
    PIDS+=("$DPID")
}
metrics_port() { sed -n 's/.*metrics_port=\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1; }
stop_daemon() {
    kill -TERM "$1" 2>/dev/null
    local i
    for i in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
