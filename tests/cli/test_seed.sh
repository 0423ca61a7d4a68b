#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317 # "check && pass || fail"; helpers run through wait_until
# shellcheck disable=SC2016 # jq filters
# One --seed gives the same data set on both backends: the same organizations, templates,
# versions and presets with the same ids and names, the same drift, so the same status; a
# different --seed gives other ids. The ids are md5('pb-seed:SEED:KIND:i...')::uuid, computed
# on the server by PostgreSQL and in the library on SQLite.
#
# usage: test_seed.sh PREBUILDS_BINARY PG_CONNINFO
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" "$@"

SEED=(seed --orgs 12 --templates-per-org 2 --versions-per-template 2 --presets-per-version 2
    --prebuilds-fraction 0.75 --drift-fraction 0.5 --seed 42)
# dump DB DIR: every list and the status, sorted, into DIR
dump() {
    mkdir -p "$2"
    local what
    for what in org template version preset; do
        "$PB" --db "$1" "$what" list --json | jq -S 'sort_by(.id)' >"$2/$what.json" ||
            fail "$what list on $1"
    done
    "$PB" --db "$1" status --json | jq -S 'sort_by(.organization_id)
        | map(.prebuilds_group_id |= (. != null))' >"$2/status.json"
}

expect_exit 0 -- "$PB" --db "sqlite:$TMP/a.db" init
expect_exit 0 -- "$PB" --db "sqlite:$TMP/a.db" "${SEED[@]}"
cp "$OUT" "$TMP/sqlite.line"
dump "sqlite:$TMP/a.db" "$TMP/sqlite"
expect_jq "$TMP/sqlite/org.json" 'length == 12'
expect_jq "$TMP/sqlite/preset.json" 'length == 96 and (map(select(.desired_instances == 1))
    | length) == 36'
# the first organization's id is md5('pb-seed:42:org:0') as a uuid
want=$(printf '%s' 'pb-seed:42:org:0' | md5sum | cut -c1-32 |
    sed -E 's/(.{8})(.{4})(.{4})(.{4})(.{12})/\1-\2-\3-\4-\5/')
expect_eq "the first organization's id" \
    "$(jq -r '.[] | select(.name == "seed42-org-0000000") | .id' "$TMP/sqlite/org.json")" "$want"
# another seed, other ids
expect_exit 0 -- "$PB" --db "sqlite:$TMP/a.db" seed --orgs 1 --seed 43
expect_exit 0 -- "$PB" --db "sqlite:$TMP/a.db" org list --json
expect_jq "$OUT" '[.[] | select(.name | startswith("seed43-"))] | length == 1
    and .[0].id != $w' --arg w "$want"

if [ -n "$PG_CONNINFO" ]; then
    pg_new_db PDB || fail "create a database"
    expect_exit 0 -- "$PB" --db "$PDB" init
    expect_exit 0 -- "$PB" --db "$PDB" "${SEED[@]}"
    expect_eq "the same seed line" "$(cat "$OUT")" "$(cat "$TMP/sqlite.line")"
    dump "$PDB" "$TMP/pg"
    for f in org template version preset status; do
        if cmp -s "$TMP/sqlite/$f.json" "$TMP/pg/$f.json"; then
            pass
        else
            fail "$f: SQLite and PostgreSQL differ for the same --seed:"
            diff "$TMP/sqlite/$f.json" "$TMP/pg/$f.json" | head -n 10 >&2
        fi
    done
fi
finish
