#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317 # "check && pass || fail"; helpers run through wait_until
# A database prebuilds did not create is left alone. SQLite: init refuses a file of another
# application, a file with tables of its own (unless --add-to-existing) and a file that is not
# a database, without writing a byte (not even the journal mode). A mistyped URL is a usage
# error, never a new file. The data commands that write refuse a schema prebuilds did not
# create, on SQLite and on a production-shaped PostgreSQL schema; listing still works.
# PostgreSQL: init refuses a database that holds tables of its own (unless asked).
#
# usage: test_foreign.sh PREBUILDS_BINARY [PG_CONNINFO]
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" "$@"

digest() { sha256sum "$1" | cut -d' ' -f1; }
no_wal() { test ! -e "$1-wal" -a ! -e "$1-shm"; }

# ---- SQLite: a file with tables of its own
F=$TMP/app.db
sqlite3 "$F" 'CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT);
              INSERT INTO accounts (email) VALUES ('"'a@example.com'"');'
BEFORE=$(digest "$F")
for args in "init" "init --summary" "init --recommended-indexes"; do
    # shellcheck disable=SC2086
    expect_exit 5 -- "$PB" --db "sqlite:$F" $args
    expect_contains "$ERR" "holds 1 table prebuilds did not create (accounts)"
    expect_contains "$ERR" "--add-to-existing"
    expect_lines "$ERR" 1
done
expect_eq "a refused init wrote nothing" "$(digest "$F")" "$BEFORE"
expect_true "a refused init left no WAL files" no_wal "$F"
expect_eq "journal mode untouched" "$(sqlite3 "$F" 'PRAGMA journal_mode')" delete
for args in "org create x" "seed --orgs 1" "member remove --org x" "pause"; do
    # shellcheck disable=SC2086
    expect_exit 5 -- "$PB" --db "sqlite:$F" $args
    expect_contains "$ERR" "was not created by prebuilds"
done
expect_eq "refused data commands wrote nothing" "$(digest "$F")" "$BEFORE"
expect_exit 0 -- "$PB" --db "sqlite:$F" init --add-to-existing
expect_eq "--add-to-existing: the application's rows are there" \
    "$(sqlite3 "$F" 'SELECT email FROM accounts')" a@example.com
expect_eq "--add-to-existing: prebuilds' tables beside them" \
    "$(sqlite3 "$F" "SELECT count(*) FROM sqlite_master WHERE name = 'organizations'")" 1
expect_exit 0 -- "$PB" --db "sqlite:$F" init
expect_contains "$OUT" "up to date"
expect_exit 0 -- "$PB" --db "sqlite:$F" org create acme

# ---- SQLite: another application's file (its application_id), a file that is no database
G=$TMP/other.db
sqlite3 "$G" 'PRAGMA application_id = 12345; PRAGMA user_version = 3; CREATE TABLE t (a);'
BEFORE=$(digest "$G")
expect_exit 5 -- "$PB" --db "sqlite:$G" init --add-to-existing
expect_contains "$ERR" "another application"
expect_exit 5 -- "$PB" --db "sqlite:$G" org create x
expect_eq "another application's file: unchanged" "$(digest "$G")" "$BEFORE"
expect_true "another application's file: no WAL" no_wal "$G"
H=$TMP/notes.txt
printf 'not a database\n' >"$H"
expect_exit 5 -- "$PB" --db "sqlite:$H" init
expect_contains "$ERR" "is not an SQLite database"
expect_exit 5 -- "$PB" --db "sqlite:$H" status
# a pass refused before it started exits as the refusal, one-shot or daemon alike
for args in "reconcile" "run --once --metrics-addr off"; do
    for db in "$G" "$H"; do
        # shellcheck disable=SC2086
        expect_exit 5 -- "$PB" --db "sqlite:$db" $args
    done
    expect_contains "$ERR" "is not an SQLite database"
done
expect_exit 5 -- "$PB" --db "sqlite:$G" status
expect_contains "$ERR" "belongs to another application (application_id 12345)"
expect_lines "$ERR" 1
expect_eq "another application's file: still unchanged" "$(digest "$G")" "$BEFORE"
expect_eq "a text file: unchanged" "$(cat "$H")" "not a database"

# ---- SQLite: the platform's tables, made by someone else (no version, no mark)
P=$TMP/platform.db
sqlite3 "$P" <"$SRC_DIR/src/lib/sql/sqlite/migrate_1_tables.sql"
sqlite3 "$P" "INSERT INTO organizations (id, name, display_name, description, created_at,
    updated_at) VALUES ('11111111-1111-4111-8111-111111111111', 'theirs', 'theirs', '', 'x', 'x')"
BEFORE=$(digest "$P")
expect_exit 5 -- "$PB" --db "sqlite:$P" init
expect_contains "$ERR" "has 8 of the platform's tables but was not created by prebuilds"
for args in "org create x" "template create t --org theirs" "seed --orgs 1" \
    "member remove --org theirs" "group-member remove --org theirs" "group remove --org theirs"; do
    # shellcheck disable=SC2086
    expect_exit 5 -- "$PB" --db "sqlite:$P" $args
    expect_contains "$ERR" "was not created by prebuilds"
    expect_lines "$ERR" 1
done
expect_eq "the platform's file: unchanged" "$(digest "$P")" "$BEFORE"
expect_exit 0 -- "$PB" --db "sqlite:$P" org list --json
expect_jq "$OUT" 'length == 1 and .[0].name == "theirs"'

# ---- mistyped URLs: usage errors, and no file anywhere
mkdir "$TMP/cwd" && cd "$TMP/cwd" || exit 1
for url in postgresql:localhost postgres:/host/db 'postgres:/u:SECRETPW@h/db' pg:/var/db \
    mysql:db 'postgresql:host=h'; do
    for cmd in init status "org create x" seed; do
        # shellcheck disable=SC2086
        expect_exit 2 -- "$PB" --db "$url" $cmd
        expect_not_contains "$ERR" SECRETPW
    done
done
expect_eq "no file made by a mistyped URL" "$(ls -A)" ""
cd "$TMP" || exit 1

if [ -n "$PG_CONNINFO" ]; then
    # ---- PostgreSQL: a database of something else
    pg_new_db ADB || fail "create a database"
    pgq "$ADB" "CREATE TABLE accounts (id serial PRIMARY KEY); CREATE VIEW v AS SELECT 1 AS one;
        CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
    expect_exit 5 -- "$PB" --db "$ADB" init
    expect_contains "$ERR" "holds 2 tables prebuilds did not create (public.accounts, public.v)"
    expect_lines "$ERR" 1
    expect_eq "pg: a refused init created nothing" \
        "$(pgq "$ADB" "SELECT count(*) FROM pg_class WHERE relname LIKE 'prebuilds%'
            OR relname = 'organizations'")" 0
    expect_exit 0 -- "$PB" --db "$ADB" init --add-to-existing
    expect_exit 0 -- "$PB" --db "$ADB" org create acme
    # ---- an empty database with only an extension is empty
    pg_new_db EDB || fail "create a database"
    pgq "$EDB" "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
    expect_exit 0 -- "$PB" --db "$EDB" init

    # ---- PostgreSQL: the platform's production-shaped schema
    pg_new_db PDB || fail "create a database"
    PNAME=$PG_NAME
    psql "$PDB" -qAtX -v ON_ERROR_STOP=1 -f "$SRC_DIR/tests/sql/production_schema.sql" \
        >/dev/null 2>"$ERR" || { fail "load production_schema.sql"; indent "$ERR"; }
    pgq "$PDB" "INSERT INTO organizations (id, name, display_name, description, created_at,
        updated_at, default_org_member_roles) VALUES ('11111111-1111-4111-8111-111111111111',
        'theirs', 'theirs', '', now(), now(), '{organization-workspace-access}')" >/dev/null
    count_rows() {
        pgq "$PDB" "SELECT (SELECT count(*) FROM organizations) + (SELECT count(*) FROM templates)
            + (SELECT count(*) FROM organization_members) + (SELECT count(*) FROM groups)"
    }
    BEFORE=$(count_rows)
    for args in "org create x" "template create t --org theirs" "seed --orgs 1" \
        "member remove --org theirs" "group remove --org theirs" "pause"; do
        # shellcheck disable=SC2086
        expect_exit 5 -- "$PB" --db "$PDB" $args
        expect_contains "$ERR" "not created by prebuilds"
    done
    expect_eq "pg: the platform's rows unchanged ($PNAME)" "$(count_rows)" "$BEFORE"
    expect_exit 0 -- "$PB" --db "$PDB" org list --json
    expect_jq "$OUT" 'length == 1 and .[0].name == "theirs"'
    expect_exit 0 -- "$PB" --db "$PDB" template list --org theirs
fi
finish
