#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317 # "check && pass || fail"; helpers run through wait_until
# shellcheck disable=SC2016 # jq filters use $variables passed with --arg
# End-to-end test of the `prebuilds` CLI binary.
#
# usage: test_cli.sh PREBUILDS_BINARY [PG_CONNINFO]
#
# Runs the SQLite cases always; with PG_CONNINFO (libpq key=value string of a running
# server, superuser) also creates a fresh database, runs the PostgreSQL cases and drops it.
# Prints one line "N passed, M failed" at the end and exits non-zero if any check failed.
# Needs: bash, jq, sqlite3 (and psql for the PostgreSQL cases). The other tests/cli/ files
# take one class of behaviour each (references, foreign databases, configuration, reports,
# the terminal, SQLite waits, secrets, the documents).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" "$@"

DBF=$TMP/x.db
DB="sqlite:$DBF"
sq() { sqlite3 -batch "$DBF" "$@"; }
OTHER_USER=11111111-1111-4111-8111-111111111111

# ---------------------------------------------------------------- global options
expect_exit 0 -- "$PB" --help
for c in init status plan reconcile org template version preset member group-member group seed; do
    if grep -Eq "^  $c( |\$)" "$OUT"; then pass; else fail "--help does not describe command $c"; fi
done
expect_contains "$OUT" "Exit codes"
expect_exit 0 -- "$PB" --version && expect_true "--version prints 'prebuilds VERSION'" \
    grep -Eqx 'prebuilds [0-9][^ ]*' "$OUT"
expect_exit 2 -- "$PB" --db "$DB" frobnicate && expect_contains "$ERR" frobnicate
expect_exit 2 -- "$PB" --frobnicate status && expect_contains "$ERR" frobnicate
expect_exit 2 -- "$PB" --db "$DB"
expect_contains "$ERR" "missing command"
expect_exit 2 -- "$PB" status --frobnicate
expect_exit 2 -- "$PB" --log-level loud status
expect_exit 2 -- "$PB" --log-format xml status

# ---------------------------------------------------------------- invalid values
NEVER=$TMP/never.db
expect_exit 2 -- "$PB" --db "sqlite:$NEVER" --user-id nope status
expect_lines "$ERR" 1
expect_contains "$ERR" "prebuilds user id"
expect_true "invalid value must not create the database file" test ! -e "$NEVER"
expect_exit 2 -- "$PB" --db "sqlite:$NEVER" --group-name '' status
expect_contains "$ERR" "group name"
LONG=$(printf 'g%.0s' $(seq 300))
expect_exit 2 -- "$PB" --db "sqlite:$NEVER" --group-name "$LONG" status
expect_lines "$ERR" 1
expect_exit 2 -- "$PB" --db "sqlite:$NEVER" --group-display-name $'a\tb' status
expect_exit 2 -- "$PB" --db mysql://x status
expect_contains "$ERR" '"mysql"'
expect_exit 2 -- "$PB" --db '' status
# libpq's URI parser accepts "postgres://host:notaport/db" (the port is only checked at
# connect time), so the syntax check uses URLs libpq itself rejects.
expect_exit 2 -- "$PB" --db 'postgresql://[::1' status
expect_contains "$ERR" "malformed database URL"
expect_exit 2 -- "$PB" --db "host='unterminated dbname=x" status
# A port that is not a number must fail before anything else, whatever the code.
got=0
"$PB" --db 'postgres://host:notaport/db' status >"$OUT" 2>"$ERR" || got=$?
if [ "$got" = 2 ] || [ "$got" = 3 ]; then pass; else
    fail "--db postgres://host:notaport/db: expected exit 2 or 3, got $got"
    indent "$ERR"
fi
expect_contains "$ERR" notaport
# Passwords never reach the terminal, whatever the failure.
for cmd in status reconcile init; do
    expect_exit 3 -- "$PB" --db 'postgresql://u:SECRETPW@127.0.0.1:1/db' "$cmd"
    expect_not_contains "$ERR" SECRETPW
done
expect_exit 3 -- "$PB" --log-level debug --db 'host=127.0.0.1 port=1 user=u password=SECRETPW dbname=db' status
expect_not_contains "$ERR" SECRETPW
expect_exit 2 -- "$PB" --db 'postgresql://u:SECRETPW@[::1/db' status
expect_not_contains "$ERR" SECRETPW
expect_true "no database file created by the checks above" test ! -e "$NEVER"

# ---------------------------------------------------------------- missing schema
MISSING=$TMP/missing.db
for cmd in status plan reconcile; do
    expect_exit 3 -- "$PB" --db "sqlite:$MISSING" "$cmd"
    expect_contains "$ERR" init
done
expect_exit 3 -- "$PB" --db "sqlite:$MISSING" org create acme
expect_exit 3 -- "$PB" --db "sqlite:$MISSING" seed --orgs 1
expect_true "status/plan/reconcile/org/seed left no file behind (missing.db*)" \
    test -z "$(find "$TMP" -maxdepth 1 -name 'missing.db*')"
# The default database is sqlite:prebuilds.db in the working directory.
expect_exit 3 -- "$PB" status
expect_true "default database not created by status" test ! -e "$TMP/prebuilds.db"

EMPTY=$TMP/empty.db
sqlite3 "$EMPTY" 'select 1' >/dev/null
[ -e "$EMPTY" ] || : >"$EMPTY"
expect_exit 3 -- "$PB" --db "sqlite:$EMPTY" status
expect_contains "$ERR" init
expect_lines "$ERR" 1
expect_exit 3 -- "$PB" --db "sqlite:$EMPTY" reconcile
expect_contains "$ERR" init
expect_eq "tables in empty.db after status/reconcile" "$(sqlite3 "$EMPTY" .tables)" ""

# ---------------------------------------------------------------- init
expect_exit 0 -- "$PB" --db "$DB" init
expect_contains "$OUT" "created prebuilds user $PBU"
expect_exit 0 -- "$PB" --db "$DB" init
expect_contains "$OUT" "up to date"
expect_eq "prebuilds user row" "$(sq "SELECT username, is_system FROM users WHERE id = '$PBU'")" \
    "prebuilds|1"

# ---------------------------------------------------------------- data commands
expect_exit 0 -- "$PB" --db "$DB" org create acme && expect_true "org create prints an id" is_uuid "$OUT"
ACME=$(cat "$OUT")
expect_exit 0 -- "$PB" --db "$DB" template create --org acme t1 &&
    expect_true "template create prints an id" is_uuid "$OUT"
TID=$(cat "$OUT")
expect_exit 0 -- "$PB" --db "$DB" version create --template "$TID" v1 &&
    expect_true "version create prints an id" is_uuid "$OUT"
VID=$(cat "$OUT")
# --help documents `preset create --version VERSION_ID NAME [--desired-instances N]`.
if expect_exit 0 -- "$PB" --db "$DB" preset create --version "$VID" p1 --desired-instances 0; then
    expect_true "preset create prints an id" is_uuid "$OUT"
else
    # Keep going with the options before the name so that the rest can run.
    "$PB" --db "$DB" preset create --version "$VID" --desired-instances 0 p1 >"$OUT" 2>"$ERR"
fi
PID=$(cat "$OUT")
expect_exit 2 -- "$PB" --db "$DB" preset create --version "$VID" p2 --desired-instances -1
expect_exit 2 -- "$PB" --db "$DB" preset create --version "$VID" --desired-instances x p2
expect_exit 5 -- "$PB" --db "$DB" preset create --version nope p2 # a name, and none has it
expect_exit 2 -- "$PB" --db "$DB" org create
expect_exit 5 -- "$PB" --db "$DB" template create --org nosuchorg t1

# An unrelated organization: a preset without desired instances.
expect_exit 0 -- "$PB" --db "$DB" org create other
OTHER=$(cat "$OUT")
expect_exit 0 -- "$PB" --db "$DB" template create --org "$OTHER" t1
OTID=$(cat "$OUT")
expect_exit 0 -- "$PB" --db "$DB" version create --template "$OTID" v1
OVID=$(cat "$OUT")
expect_exit 0 -- "$PB" --db "$DB" preset create --version "$OVID" p1

expect_exit 0 -- "$PB" --db "$DB" org list --json
expect_jq "$OUT" 'type == "array" and length == 2'
expect_jq "$OUT" 'map(.name) | sort == ["acme", "other"]'
expect_exit 0 -- "$PB" --db "$DB" org list
expect_contains "$OUT" acme
expect_exit 0 -- "$PB" --db "$DB" template list --json
expect_jq "$OUT" 'type == "array" and length == 2'
expect_jq "$OUT" 'any(.[]; .id == $t and .organization_id == $o)' --arg t "$TID" --arg o "$ACME"
expect_exit 0 -- "$PB" --db "$DB" template list --org acme --json
expect_jq "$OUT" 'length == 1 and .[0].id == $t' --arg t "$TID"
expect_exit 0 -- "$PB" --db "$DB" version list --json
expect_jq "$OUT" 'type == "array" and length == 2'
expect_exit 0 -- "$PB" --db "$DB" preset list --json
expect_jq "$OUT" 'type == "array" and length == 2'
expect_jq "$OUT" '(.[] | select(.template_version_id == $v) | .desired_instances) == 0' --arg v "$VID"
expect_jq "$OUT" '(.[] | select(.template_version_id == $v) | .desired_instances) == null' --arg v "$OVID"
expect_exit 0 -- "$PB" --db "$DB" preset list --version "$VID" --json
expect_jq "$OUT" 'length == 1 and .[0].id == $p' --arg p "$PID"

# ---------------------------------------------------------------- status, plan, dry run
status_json() { "$PB" --db "$DB" status --json >"$TMP/st" 2>"$TMP/st.err"; }
# org_field ORG_ID FIELD: one field of the status row of ORG_ID (after status_json).
org_field() { jq -c --arg o "$1" ".[] | select(.organization_id == \$o) | .$2" "$TMP/st"; }
other_untouched() {
    expect_eq "rows written for the unrelated org 'other'" \
        "$(sq "SELECT (SELECT count(*) FROM organization_members WHERE organization_id = '$OTHER')
                    + (SELECT count(*) FROM groups WHERE organization_id = '$OTHER')")" 0
}

expect_exit 0 -- "$PB" --db "$DB" status --json
expect_jq "$OUT" 'type == "array" and length == 1'
expect_jq "$OUT" '.[0] | keys == ["has_prebuild_user", "has_prebuild_user_in_group",
    "organization_id", "organization_name", "prebuilds_group_id"]'
expect_jq "$OUT" '.[0] | .organization_id == $a and .organization_name == "acme"' --arg a "$ACME"
expect_jq "$OUT" '.[0] | .prebuilds_group_id == null and .has_prebuild_user == false
    and .has_prebuild_user_in_group == false'
expect_exit 0 -- "$PB" --db "$DB" status
expect_contains "$OUT" "$ACME"
expect_not_contains "$OUT" "$OTHER"

expect_exit 0 -- "$PB" --db "$DB" plan
expect_contains "$OUT" acme
expect_contains "$OUT" "1 of 1 organization needs changes"
expect_exit 0 -- "$PB" --db "$DB" plan --json
expect_jq "$OUT" 'length == 1 and .[0].organization_id == $a and .[0].add_membership
    and .[0].create_group and .[0].add_group_membership' --arg a "$ACME"

expect_exit 0 -- "$PB" --db "$DB" reconcile --dry-run --json
expect_jq "$OUT" '.dry_run == true and .memberships_added == 0 and .groups_created == 0
    and .group_memberships_added == 0'
expect_jq "$OUT" '.memberships_planned == 1 and .groups_planned == 1
    and .group_memberships_planned == 1'
expect_exit 0 -- "$PB" --db "$DB" reconcile --dry-run
expect_lines "$OUT" 1
expect_contains "$OUT" "dry run"
status_json
expect_eq "has_prebuild_user after dry run" "$(org_field "$ACME" has_prebuild_user)" false
expect_eq "group after dry run" "$(org_field "$ACME" prebuilds_group_id)" null
expect_eq "rows written by dry run" "$(sq "SELECT (SELECT count(*) FROM organization_members)
    + (SELECT count(*) FROM groups) + (SELECT count(*) FROM group_members)")" 0

# ---------------------------------------------------------------- reconcile
expect_exit 0 -- "$PB" --db "$DB" reconcile --json
expect_jq "$OUT" '.memberships_added == 1 and .groups_created == 1
    and .group_memberships_added == 1 and .errors == [] and .dry_run == false'
expect_jq "$OUT" 'has("organizations") and has("statements") and has("round_trips")
    and has("duration_ms")'
expect_jq "$OUT" '.organizations == 1'
status_json
expect_eq "has_prebuild_user after reconcile" "$(org_field "$ACME" has_prebuild_user)" true
expect_eq "has_prebuild_user_in_group after reconcile" \
    "$(org_field "$ACME" has_prebuild_user_in_group)" true
GID1=$(org_field "$ACME" prebuilds_group_id | tr -d '"')
expect_true "group id after reconcile is a uuid" is_uuid <(echo "$GID1")
expect_eq "group created" \
    "$(sq "SELECT name || '|' || display_name || '|' || quota_allowance FROM groups WHERE id = '$GID1'")" \
    "coderprebuiltworkspaces|Prebuilt Workspaces|0"
other_untouched

expect_exit 0 -- "$PB" --db "$DB" reconcile --json
expect_jq "$OUT" '.statements == 1 and .round_trips == 1'
expect_jq "$OUT" '.memberships_added == 0 and .groups_created == 0
    and .group_memberships_added == 0 and .errors == []'

# Drift and repair.
expect_exit 0 -- "$PB" --db "$DB" member remove --org acme
status_json
expect_eq "has_prebuild_user after member remove" "$(org_field "$ACME" has_prebuild_user)" false
expect_eq "has_prebuild_user_in_group after member remove (trigger)" \
    "$(org_field "$ACME" has_prebuild_user_in_group)" false
expect_exit 0 -- "$PB" --db "$DB" reconcile --json
expect_jq "$OUT" '.memberships_added == 1 and .groups_created == 0 and .group_memberships_added == 1'
status_json
expect_jq "$TMP/st" '.[0].has_prebuild_user and .[0].has_prebuild_user_in_group
    and .[0].prebuilds_group_id == $g' --arg g "$GID1"

expect_exit 0 -- "$PB" --db "$DB" group-member remove --org "$ACME"
status_json
expect_jq "$TMP/st" '.[0].has_prebuild_user and (.[0].has_prebuild_user_in_group | not)'
expect_exit 0 -- "$PB" --db "$DB" reconcile --json
expect_jq "$OUT" '.memberships_added == 0 and .groups_created == 0 and .group_memberships_added == 1'
status_json
expect_jq "$TMP/st" '.[0].has_prebuild_user_in_group'

expect_exit 0 -- "$PB" --db "$DB" group remove --org acme
status_json
expect_eq "group after group remove" "$(org_field "$ACME" prebuilds_group_id)" null
expect_exit 0 -- "$PB" --db "$DB" reconcile --json
expect_jq "$OUT" '.memberships_added == 0 and .groups_created == 1 and .group_memberships_added == 1'
status_json
GID2=$(org_field "$ACME" prebuilds_group_id | tr -d '"')
expect_true "new group id is a uuid" is_uuid <(echo "$GID2")
expect_true "group remove then reconcile makes a new group ($GID1 vs $GID2)" test "$GID1" != "$GID2"
expect_jq "$TMP/st" '.[0].has_prebuild_user_in_group'
expect_exit 5 -- "$PB" --db "$DB" member remove --org nosuchorg
expect_exit 2 -- "$PB" --db "$DB" member remove

expect_exit 0 -- "$PB" --db "$DB" reconcile
expect_lines "$OUT" 1
expect_true "plain reconcile prints 'reconciled ...'" grep -q '^reconciled' "$OUT"
other_untouched

# ---------------------------------------------------------------- prebuilds user missing
expect_exit 5 -- "$PB" --db "$DB" --user-id "$OTHER_USER" reconcile
expect_lines "$ERR" 1
expect_contains "$ERR" "$OTHER_USER"
expect_eq "organization_members rows for a missing user" \
    "$(sq "SELECT count(*) FROM organization_members WHERE user_id = '$OTHER_USER'")" 0
expect_exit 5 -- "$PB" --db "$DB" --user-id "$OTHER_USER" reconcile --json
expect_jq "$OUT" '.errors | length == 1'

# ---------------------------------------------------------------- partial failure
sq "CREATE TRIGGER boom BEFORE INSERT ON group_members BEGIN SELECT RAISE(ABORT, 'boom'); END;"
expect_exit 0 -- "$PB" --db "$DB" member remove --org acme
expect_exit 4 -- "$PB" --db "$DB" reconcile
expect_lines "$ERR" 1
expect_contains "$ERR" boom
expect_eq "organization_members row for the prebuilds user in acme after a failed pass" \
    "$(sq "SELECT count(*) FROM organization_members WHERE organization_id = '$ACME' AND user_id = '$PBU'")" 0
expect_exit 4 -- "$PB" --db "$DB" reconcile --json
expect_jq "$OUT" '(.errors | length == 1) and (.errors[0] | contains("boom"))
    and .memberships_added == 0'
sq "DROP TRIGGER boom;"
expect_exit 0 -- "$PB" --db "$DB" reconcile --json
expect_jq "$OUT" '.memberships_added == 1 and .group_memberships_added == 1 and .errors == []'

# ---------------------------------------------------------------- hostile names
N_ORGS=$(sq "SELECT count(*) FROM organizations")
for bad in $'q"uote\\back\ttab\x01ctl\xffend' $'tab\there' $'ctl\x01here' $'bad\xffutf8' $'del\x7f'; do
    expect_exit 2 -- "$PB" --db "$DB" org create "$bad"
    expect_lines "$ERR" 1
    expect_no_byte "$ERR" 001 '\x01'
    expect_no_byte "$ERR" 377 '\xff'
done
expect_exit 2 -- "$PB" --db "$DB" template create --org acme $'t\nx'
expect_eq "organizations after refused creates" "$(sq "SELECT count(*) FROM organizations")" "$N_ORGS"

# Inserted behind the CLI's back: quote, backslash, newline, \x01, SQL, invalid UTF-8.
EVIL_NAME=$'ev"il\\na\nme\x01'"'; DROP TABLE users; --"$'\xff!'
EVIL_HEX=$(printf '%s' "$EVIL_NAME" | od -An -v -tx1 | tr -d ' \n')
EVIL=22222222-2222-4222-8222-222222222222
ETID=33333333-3333-4333-8333-333333333333
EVID=44444444-4444-4444-8444-444444444444
sq "INSERT INTO organizations (id, name, description, display_name, created_at, updated_at)
        VALUES ('$EVIL', CAST(X'$EVIL_HEX' AS TEXT), '', 'evil', '2024-01-01', '2024-01-01');
    INSERT INTO templates (id, created_at, updated_at, organization_id, name, provisioner,
                           active_version_id, created_by)
        VALUES ('$ETID', '2024-01-01', '2024-01-01', '$EVIL', 'et', 'terraform', '$EVID', '$PBU');
    INSERT INTO template_versions (id, template_id, organization_id, created_at, updated_at,
                                   name, readme, job_id, created_by)
        VALUES ('$EVID', '$ETID', '$EVIL', '2024-01-01', '2024-01-01', 'ev', '', '$EVID', '$PBU');
    INSERT INTO template_version_presets (template_version_id, name, desired_instances)
        VALUES ('$EVID', 'ep', 2);"
expect_eq "hostile name stored as given" "$(sq "SELECT hex(name) FROM organizations WHERE id = '$EVIL'")" \
    "$(printf '%s' "$EVIL_HEX" | tr a-f A-F)"
# jq -r prints the name with the invalid byte replaced by U+FFFD, the rest unchanged.
printf '%s' "${EVIL_NAME%$'\xff!'}"$'\xef\xbf\xbd!' >"$TMP/evil.expected"

expect_exit 0 -- "$PB" --db "$DB" status
expect_lines "$OUT" 3 # header, acme, evil
expect_no_byte "$OUT" 001 '\x01'
expect_no_byte "$OUT" 377 '\xff'
expect_contains "$OUT" "DROP TABLE users"
expect_exit 0 -- "$PB" --db "$DB" status --json
expect_jq "$OUT" 'length == 2'
jq -j --arg e "$EVIL" '.[] | select(.organization_id == $e) | .organization_name' "$OUT" >"$TMP/evil.got"
expect_true "status --json round-trips the hostile name" cmp -s "$TMP/evil.got" "$TMP/evil.expected"
expect_exit 0 -- "$PB" --db "$DB" plan
expect_lines "$OUT" 3 # header, evil, summary
expect_no_byte "$OUT" 001 '\x01'
expect_exit 0 -- "$PB" --db "$DB" plan --json
jq -j '.[0].organization_name' "$OUT" >"$TMP/evil.got"
expect_true "plan --json round-trips the hostile name" cmp -s "$TMP/evil.got" "$TMP/evil.expected"
expect_exit 0 -- "$PB" --db "$DB" org list
expect_lines "$OUT" 4 # header, acme, other, evil
expect_no_byte "$OUT" 001 '\x01'

# Reconcile logs the name: one line per added row, escaped, in text and in JSON.
expect_exit 0 -- "$PB" --db "$DB" reconcile
expect_lines "$ERR" 3
expect_no_byte "$ERR" 001 '\x01'
expect_no_byte "$ERR" 377 '\xff'
# A double quote inside a quoted logfmt value must be escaped, or the line is ambiguous.
expect_contains "$ERR" 'ev\"il'
expect_exit 0 -- "$PB" --db "$DB" member remove --org "$EVIL"
expect_exit 0 -- "$PB" --db "$DB" --log-format json reconcile
expect_lines "$ERR" 2
expect_true "JSON log lines parse" jq -e . "$ERR"
jq -j 'select(.msg == "added organization membership") | .organization_name' "$ERR" >"$TMP/evil.got"
expect_true "JSON log round-trips the hostile name" cmp -s "$TMP/evil.got" "$TMP/evil.expected"
expect_eq "users table survives" "$(sq "SELECT count(*) FROM users WHERE id = '$PBU'")" 1
status_json
expect_jq "$TMP/st" 'all(.[]; .has_prebuild_user and .has_prebuild_user_in_group)'

# ---------------------------------------------------------------- environment fallbacks
expect_exit 0 -- env PREBUILDS_DB="$DB" "$PB" status --json
expect_jq "$OUT" 'length == 2 and any(.[]; .organization_id == $a)' --arg a "$ACME"
expect_exit 0 -- env PREBUILDS_DB="sqlite:$TMP/nothere.db" "$PB" --db "$DB" status
expect_true "--db wins over PREBUILDS_DB" test ! -e "$TMP/nothere.db"
expect_exit 2 -- env PREBUILDS_USER_ID=nope "$PB" --db "$DB" status
expect_contains "$ERR" "prebuilds user id"
expect_exit 5 -- env PREBUILDS_USER_ID="$OTHER_USER" "$PB" --db "$DB" reconcile
expect_contains "$ERR" "$OTHER_USER"
expect_exit 0 -- env PREBUILDS_GROUP_NAME=envgroup "$PB" --db "$DB" reconcile --json
expect_jq "$OUT" '.groups_created == 2'
expect_eq "groups named by PREBUILDS_GROUP_NAME" \
    "$(sq "SELECT count(*) FROM groups WHERE name = 'envgroup'")" 2
expect_exit 2 -- env PREBUILDS_LOG_LEVEL=loud "$PB" --db "$DB" status

# ---------------------------------------------------------------- seed
SDB="sqlite:$TMP/seed.db"
expect_exit 0 -- "$PB" --db "$SDB" init
expect_exit 0 -- "$PB" --db "$SDB" seed --orgs 20 --drift-fraction 0.5
SEED_LINE=$(cat "$OUT")
DRIFTED=$(sed -n 's/.*[(, ]\([0-9][0-9]*\) drifted.*/\1/p' "$OUT")
WITH_PB=$(sed -n 's/.*(\([0-9][0-9]*\) with prebuilds.*/\1/p' "$OUT")
expect_true "seed reports drifted and prebuild organizations: $SEED_LINE" \
    test -n "$DRIFTED" -a -n "$WITH_PB"
expect_true "seed drifted some organizations ($DRIFTED)" test "${DRIFTED:-0}" -gt 0
expect_exit 0 -- "$PB" --db "$SDB" plan --json
expect_eq "plan --json length after seed" "$(jq length "$OUT")" "${DRIFTED:-?}"
expect_exit 0 -- "$PB" --db "$SDB" status --json
expect_eq "status --json length after seed" "$(jq length "$OUT")" "${WITH_PB:-?}"
expect_exit 0 -- "$PB" --db "$SDB" reconcile
expect_exit 0 -- "$PB" --db "$SDB" plan
expect_contains "$OUT" "0 of ${WITH_PB:-?} organizations need changes"
expect_exit 0 -- "$PB" --db "$SDB" plan --json
expect_jq "$OUT" 'length == 0'
N_SEED=$(sqlite3 "$TMP/seed.db" "SELECT count(*) FROM organizations")
expect_exit 2 -- "$PB" --db "$SDB" seed --orgs -1
expect_exit 2 -- "$PB" --db "$SDB" seed --orgs 1 --prebuilds-fraction 1.5
expect_contains "$ERR" "prebuilds-fraction"
expect_exit 2 -- "$PB" --db "$SDB" seed --orgs 1 --drift-fraction -0.1
expect_exit 2 -- "$PB" --db "$SDB" seed
expect_eq "organizations after refused seeds" \
    "$(sqlite3 "$TMP/seed.db" "SELECT count(*) FROM organizations")" "$N_SEED"

# ---------------------------------------------------------------- PostgreSQL
PG_DB=""
if [ -n "$PG_CONNINFO" ]; then
    if pg_new_db PDB 2>"$ERR"; then
        pass
        PG_DB=yes
    else
        fail "create a database:"
        indent "$ERR"
    fi
fi
if [ -n "$PG_DB" ]; then
    # A later keyword wins in a libpq connection string (pg_new_db appends dbname).
    for cmd in status plan reconcile; do
        expect_exit 3 -- "$PB" --db "$PDB" "$cmd"
        expect_contains "$ERR" init
    done
    expect_exit 3 -- "$PB" --db "$PDB" seed --orgs 1
    expect_exit 0 -- "$PB" --db "$PDB" init
    expect_exit 0 -- "$PB" --db "$PDB" init
    expect_contains "$OUT" "up to date"
    expect_exit 0 -- "$PB" --db "$PDB" seed --orgs 20 --drift-fraction 0.5
    PG_DRIFTED=$(sed -n 's/.*[(, ]\([0-9][0-9]*\) drifted.*/\1/p' "$OUT")
    PG_WITH_PB=$(sed -n 's/.*(\([0-9][0-9]*\) with prebuilds.*/\1/p' "$OUT")
    expect_exit 0 -- "$PB" --db "$PDB" status --json
    expect_jq "$OUT" 'type == "array"'
    expect_eq "pg status --json length" "$(jq length "$OUT")" "${PG_WITH_PB:-?}"
    expect_exit 0 -- "$PB" --db "$PDB" status
    expect_exit 0 -- "$PB" --db "$PDB" plan --json
    expect_eq "pg plan --json length" "$(jq length "$OUT")" "${PG_DRIFTED:-?}"
    expect_exit 0 -- "$PB" --db "$PDB" reconcile --json
    expect_jq "$OUT" '.errors == [] and (.memberships_added + .groups_created
        + .group_memberships_added) > 0'
    expect_exit 0 -- "$PB" --db "$PDB" reconcile --json
    expect_jq "$OUT" '.statements == 1 and .round_trips == 1'
    expect_jq "$OUT" '.memberships_added == 0 and .groups_created == 0
        and .group_memberships_added == 0 and .errors == []'
    expect_exit 0 -- "$PB" --db "$PDB" plan --json
    expect_jq "$OUT" 'length == 0'
    # Drift one organization and repair it.
    expect_exit 0 -- "$PB" --db "$PDB" status --json
    PORG=$(jq -r '.[0].organization_id' "$OUT")
    expect_exit 0 -- "$PB" --db "$PDB" member remove --org "$PORG"
    expect_exit 0 -- "$PB" --db "$PDB" reconcile --json
    expect_jq "$OUT" '.memberships_added == 1 and .group_memberships_added == 1'
    # A failing insert: exit 4 (as on SQLite), one line, nothing of the pass written.
    psql "$PDB" -qAt -v ON_ERROR_STOP=1 -c "CREATE FUNCTION boom() RETURNS trigger
        LANGUAGE plpgsql AS \$\$BEGIN RAISE EXCEPTION 'boom'; END\$\$;
        CREATE TRIGGER boom BEFORE INSERT ON group_members FOR EACH ROW EXECUTE FUNCTION boom();" \
        >/dev/null
    expect_exit 0 -- "$PB" --db "$PDB" member remove --org "$PORG"
    expect_exit 4 -- "$PB" --db "$PDB" reconcile
    expect_lines "$ERR" 1
    expect_contains "$ERR" boom
    expect_eq "pg membership after a failed pass" "$(psql "$PDB" -qAt -c "SELECT count(*)
        FROM organization_members WHERE organization_id = '$PORG' AND user_id = '$PBU'")" 0
    psql "$PDB" -qAt -c "DROP TRIGGER boom ON group_members" >/dev/null
    expect_exit 0 -- "$PB" --db "$PDB" reconcile --json
    expect_jq "$OUT" '.memberships_added == 1 and .group_memberships_added == 1'
    expect_exit 5 -- "$PB" --db "$PDB" --user-id "$OTHER_USER" reconcile
    expect_eq "pg organization_members rows for a missing user" \
        "$(psql "$PDB" -qAt -c "SELECT count(*) FROM organization_members WHERE user_id = '$OTHER_USER'")" 0
fi

finish
