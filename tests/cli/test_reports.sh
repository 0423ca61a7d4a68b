#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317 # "check && pass || fail"; helpers run through wait_until
# shellcheck disable=SC2016 # jq filters
# Reports tell the truth and read right. status, plan and --dry-run end as reconcile would
# (5 for a missing or soft-deleted prebuilds user, 6 while paused) after printing what they
# found; output that cannot be written is an error (exit 1), whatever the command; exit
# codes follow the cause (bad URL values are usage errors found before connecting, a
# read-only server is a refusal); JSON logs carry numbers and booleans, and errors and
# warnings follow --log-format json; words agree with their numbers; an empty result says so;
# seeding twice says why in one line; a reload says what changed and which port it serves.
#
# usage: test_reports.sh PREBUILDS_BINARY [PG_CONNINFO]
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" "$@"

DBF=$TMP/r.db
DB="sqlite:$DBF"
OTHER=11111111-1111-4111-8111-111111111111
sq() { sqlite3 -batch "$DBF" "$1"; }

# ---- empty results say so
expect_exit 0 -- "$PB" --db "$DB" init
expect_exit 0 -- "$PB" --db "$DB" status
expect_eq "an empty status" "$(cat "$OUT")" \
    "no organization has prebuilds configured (a template with a preset whose desired_instances is set)"
expect_exit 0 -- "$PB" --db "$DB" org list
expect_eq "an empty org list" "$(cat "$OUT")" "no organizations"
expect_exit 0 -- "$PB" --db "$DB" preset list
expect_eq "an empty preset list" "$(cat "$OUT")" "no presets"
expect_exit 0 -- "$PB" --db "$DB" status --json
expect_eq "an empty status --json" "$(cat "$OUT")" "[]"

# ---- words agree with their numbers
expect_exit 0 -- "$PB" --db "$DB" seed --orgs 1 --templates-per-org 1 --versions-per-template 1 \
    --presets-per-version 1 --prebuilds-fraction 1 --drift-fraction 1
expect_eq "seed line" "$(cat "$OUT")" \
    "seeded 1 organization (1 with prebuilds, 1 drifted), 1 template, 1 version, 1 preset"
expect_exit 5 -- "$PB" --db "$DB" seed --orgs 1
expect_lines "$ERR" 1
expect_contains "$ERR" 'the data set of --seed 1 is here already'
expect_not_contains "$ERR" "UNIQUE"
expect_exit 0 -- "$PB" --db "$DB" plan
expect_contains "$OUT" "1 of 1 organization needs changes: 1 membership, 1 group, 1 group membership"
expect_exit 0 -- "$PB" --db "$DB" reconcile --dry-run
expect_contains "$OUT" "dry run: 1 organization, would add 1 membership, create 1 group, add 1 group membership ("
expect_exit 0 -- "$PB" --db "$DB" reconcile
expect_contains "$OUT" "reconciled 1 organization: 1 membership added, 1 group created, 1 group membership added ("
expect_exit 0 -- "$PB" --db "$DB" reconcile
expect_contains "$OUT" "0 memberships added, 0 groups created, 0 group memberships added (1 statement, 1 round trip, "
expect_exit 0 -- "$PB" --db "$DB" member remove --org seed1-org-0000000
expect_contains "$OUT" "removed 1 organization membership of the prebuilds user"
expect_exit 0 -- "$PB" --db "$DB" member remove --org seed1-org-0000000
expect_contains "$OUT" "removed 0 organization memberships"
expect_exit 0 -- "$PB" --db "$DB" reconcile --json
expect_true "duration_ms: at most three decimals" \
    grep -Eq '"duration_ms": [0-9]+(\.[0-9]{1,3})?,$' "$OUT"
cat "$TMP"/out "$TMP"/err >"$TMP/all-words"
expect_not_contains "$TMP/all-words" "(s)"

# ---- the prebuilds user missing or soft-deleted: the reports end as reconcile would
for state in missing deleted; do
    ARGS=(--db "$DB")
    if [ "$state" = missing ]; then
        ARGS+=(--user-id "$OTHER")
        WORD="not found"
    else
        sq "UPDATE users SET deleted = 1 WHERE id = '$PBU'"
        WORD="soft-deleted"
    fi
    expect_exit 5 -- "$PB" "${ARGS[@]}" status
    expect_contains "$OUT" "seed1-org-0000000"
    expect_contains "$ERR" "$WORD"
    expect_lines "$ERR" 1
    expect_exit 5 -- "$PB" "${ARGS[@]}" status --json
    expect_jq "$OUT" 'length == 1'
    expect_exit 5 -- "$PB" "${ARGS[@]}" plan
    expect_contains "$ERR" "$WORD"
    expect_exit 5 -- "$PB" "${ARGS[@]}" reconcile --dry-run
    expect_exit 5 -- "$PB" "${ARGS[@]}" reconcile
done
sq "UPDATE users SET deleted = 0 WHERE id = '$PBU'"

# ---- paused: 6, and the reports say so
expect_exit 0 -- "$PB" --db "$DB" pause
for cmd in status plan "reconcile --dry-run" reconcile "status --json"; do
    # shellcheck disable=SC2086
    expect_exit 6 -- "$PB" --db "$DB" $cmd
    expect_contains "$ERR" "paused"
done
expect_exit 0 -- "$PB" --db "$DB" resume
expect_exit 0 -- "$PB" --db "$DB" status

# ---- output that cannot be written
for cmd in status "status --json" plan "org list" "org list --json" reconcile --help \
    --version "status --help" "org create full-disk"; do
    # shellcheck disable=SC2086
    expect_exit 1 -- sh -c "exec \"\$@\" >/dev/full" sh "$PB" --db "$DB" $cmd
    expect_contains "$ERR" "write standard output: No space left on device"
done
expect_eq "the organization was created all the same" \
    "$(sq "SELECT count(*) FROM organizations WHERE name = 'full-disk'")" 1
expect_exit 1 -- sh -c "exec \"\$@\" >&-" sh "$PB" --db "$DB" status
expect_contains "$ERR" "write standard output"

# ---- JSON logs: numbers and booleans; errors and warnings too
expect_exit 0 -- "$PB" --db "$DB" --log-format json --log-level debug run --once --metrics-addr off
expect_true "every line of run --once is JSON" jq -e . "$ERR"
jq -c 'select(.msg == "pass converged" or .msg == "pass repaired drift")' "$ERR" >"$TMP/pass.json"
expect_jq "$TMP/pass.json" '(.statements | type) == "number" and (.duration_ms | type) == "number"
    and (.attempts | type) == "number" and (.organizations | type) == "number"'
jq -c 'select(.msg == "running one pass")' "$ERR" >"$TMP/start.json"
expect_jq "$TMP/start.json" '(.listen | type) == "boolean" and (.version | type) == "string"'
expect_exit 3 -- "$PB" --db "sqlite:$TMP/none.db" --log-format json status
expect_lines "$ERR" 1
expect_jq "$ERR" '.level == "error" and .exit_code == 3 and (.msg | contains("init"))'
expect_exit 5 -- "$PB" --db "$DB" --log-format json --user-id "$OTHER" status
expect_jq "$ERR" '.level == "warn" and (.msg | contains("not found"))'
expect_exit 2 -- "$PB" --db "$DB" --log-format json status --js
expect_jq "$ERR" '.level == "error" and .exit_code == 2 and (.msg | contains("--js"))'
expect_exit 2 -- env PREBUILDS_LOG_FORMAT=json "$PB" --db "$DB" status --js
expect_jq "$ERR" '.level == "error" and .exit_code == 2'

# ---- exit codes by cause: values in the URL are usage errors, before any connection
for url in "host=127.0.0.1 port=1 sslmode=bogus" "host=127.0.0.1 port=1 connect_timeout=soon" \
    "postgresql://127.0.0.1:1/db?target_session_attrs=writable" "postgresql://127.0.0.1:70000/db"; do
    start=$(now_ms)
    expect_exit 2 -- "$PB" --db "$url" status
    expect_true "bad URL value refused at once ($url)" test $(($(now_ms) - start)) -lt 2000
done
expect_exit 3 -- "$PB" --db "host=127.0.0.1 port=1 connect_timeout=2" status
expect_contains "$ERR" "connect to"

# ---- a reload says what changed and where it serves
CONF=$TMP/daemon.conf
printf 'interval = 1h\nlog_level = info\n' >"$CONF"
"$PB" --db "$DB" run --config "$CONF" --metrics-addr 127.0.0.1:0 2>"$TMP/d.log" &
DPID=$!
BG_PIDS+=("$DPID")
wait_until 10 grep -q "metrics_port=" "$TMP/d.log" || fail "daemon did not start: $(cat "$TMP/d.log")"
printf 'interval = 2h\nlog_level = info\nlock_timeout = 3s\n' >"$CONF"
kill -HUP "$DPID"
wait_until 5 grep -q "configuration reloaded" "$TMP/d.log" || fail "no reload line"
grep "configuration reloaded" "$TMP/d.log" >"$TMP/reload.line"
expect_contains "$TMP/reload.line" 'changed="interval, lock_timeout"'
expect_true "the reload names the port" grep -Eq 'metrics_port=[0-9]+' "$TMP/reload.line"
kill -HUP "$DPID"
wait_until 5 sh -c "[ \$(grep -c 'configuration reloaded' '$TMP/d.log') -ge 2 ]" ||
    fail "no second reload line"
expect_true "an unchanged reload says nothing changed" grep -q 'changed=nothing' "$TMP/d.log"
kill -TERM "$DPID"
wait "$DPID" 2>/dev/null

if [ -n "$PG_CONNINFO" ]; then
    # ---- a read-only server refuses writes: 5, not a partial failure
    pg_new_db PDB || fail "create a database"
    expect_exit 0 -- "$PB" --db "$PDB" init
    expect_exit 0 -- "$PB" --db "$PDB" seed --orgs 2 --prebuilds-fraction 1 --drift-fraction 1
    pgq "$PG_CONNINFO" "ALTER DATABASE \"$PG_NAME\" SET default_transaction_read_only = on" >/dev/null
    expect_exit 5 -- "$PB" --db "$PDB" reconcile
    expect_contains "$ERR" "read-only"
    expect_lines "$ERR" 1
    expect_exit 5 -- "$PB" --db "$PDB" run --once --metrics-addr off
    expect_exit 0 -- "$PB" --db "$PDB" plan
    pgq "$PG_CONNINFO" "ALTER DATABASE \"$PG_NAME\" RESET default_transaction_read_only" >/dev/null
    expect_exit 0 -- "$PB" --db "$PDB" reconcile
    expect_contains "$OUT" "reconciled 2 organizations"
fi
finish
