#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317,SC2016 # "check && pass || fail"; helpers run through wait_until
# A reference names exactly one object, on SQLite and on PostgreSQL: an exact id wins over a
# name that looks like it (so `member remove --org ID` never removes from the organization
# named like that id), a name that several objects share is refused with the candidates,
# every parent option takes an id or a name and may be narrowed by its own parent's, and an
# unknown parent is an error everywhere, listing commands included.
#
# usage: test_refs.sh PREBUILDS_BINARY [PG_CONNINFO]
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" "$@"

# refs BACKEND DB SQL_FN: the checks against one database (SQL_FN runs a query on it).
refs() {
    local be=$1 db=$2 q=$3
    expect_exit 0 -- "$PB" --db "$db" init
    # ---- an exact id wins over a name that spells it
    expect_exit 0 -- "$PB" --db "$db" org create victim || return
    local victim
    victim=$(cat "$OUT")
    expect_exit 0 -- "$PB" --db "$db" org create "$victim" # named like the victim's id
    local lookalike
    lookalike=$(cat "$OUT")
    for o in "$victim" "$lookalike"; do
        expect_exit 0 -- "$PB" --db "$db" template create web --org "$o"
        local t
        t=$(cat "$OUT")
        expect_exit 0 -- "$PB" --db "$db" version create v1 --template "$t"
        expect_exit 0 -- "$PB" --db "$db" preset create p1 --version "$(cat "$OUT")" \
            --desired-instances 1
    done
    expect_exit 0 -- "$PB" --db "$db" reconcile
    expect_exit 0 -- "$PB" --db "$db" member remove --org "$victim"
    expect_contains "$OUT" "in organization $victim"
    expect_eq "$be: the id's organization lost its membership" \
        "$($q "SELECT count(*) FROM organization_members WHERE organization_id = '$victim'")" 0
    expect_eq "$be: the organization named like the id kept its membership" \
        "$($q "SELECT count(*) FROM organization_members WHERE organization_id = '$lookalike'")" 1
    # the id in capitals is the same id
    expect_exit 0 -- "$PB" --db "$db" group remove --org "${victim^^}"
    expect_eq "$be: upper-case id: the id's group" \
        "$($q "SELECT count(*) FROM groups WHERE organization_id = '$victim'")" 0
    expect_eq "$be: upper-case id: the other group stays" \
        "$($q "SELECT count(*) FROM groups WHERE organization_id = '$lookalike'")" 1
    # the lookalike is still reachable by its own id
    expect_exit 0 -- "$PB" --db "$db" template list --org "$lookalike" --json
    expect_jq "$OUT" 'length == 1 and .[0].organization_id == $o' --arg o "$lookalike"

    # ---- names that repeat: refused with the candidates, narrowed by the parent
    expect_exit 5 -- "$PB" --db "$db" version create v2 --template web
    expect_contains "$ERR" 'template "web" is ambiguous'
    expect_contains "$ERR" "in organization \"victim\""
    expect_contains "$ERR" "use an id"
    expect_lines "$ERR" 1
    expect_exit 0 -- "$PB" --db "$db" version create v2 --template WEB --org victim
    local v2
    v2=$(cat "$OUT")
    expect_eq "$be: v2 is the victim's" "$($q "SELECT t.organization_id FROM template_versions v
        JOIN templates t ON t.id = v.template_id WHERE v.id = '$v2'")" "$victim"
    expect_exit 5 -- "$PB" --db "$db" preset create p2 --version v1
    expect_contains "$ERR" 'template version "v1" is ambiguous'
    expect_exit 0 -- "$PB" --db "$db" preset create p2 --version v1 --template web --org victim
    expect_exit 0 -- "$PB" --db "$db" preset create p3 --version v1 --org "$lookalike"
    expect_exit 0 -- "$PB" --db "$db" preset list --version v1 --template web --org victim --json
    expect_jq "$OUT" 'map(.name) | sort == ["p1", "p2"]'
    # every parent option takes a name: versions by template name, lists by parent names
    expect_exit 0 -- "$PB" --db "$db" version list --template web --org victim --json
    expect_jq "$OUT" 'map(.name) | sort == ["v1", "v2"]'
    # a narrowing option alone says what it narrows
    expect_exit 2 -- "$PB" --db "$db" version list --org victim
    expect_contains "$ERR" "--org only narrows --template"
    expect_exit 2 -- "$PB" --db "$db" preset list --template web
    expect_contains "$ERR" "--template only narrows --version"

    # ---- unknown parents are errors everywhere
    local nowhere=99999999-9999-4999-8999-999999999999
    for args in "template list --org nosuch" "template list --org $nowhere" \
        "version list --template nosuch" "version list --template $nowhere" \
        "preset list --version nosuch" "preset list --version $nowhere" \
        "version list --template web --org nosuch" "template create t --org nosuch" \
        "version create v --template nosuch" "preset create p --version nosuch" \
        "member remove --org nosuch" "group-member remove --org $nowhere" \
        "group remove --org nosuch"; do
        # shellcheck disable=SC2086 # the words of $args
        expect_exit 5 -- "$PB" --db "$db" $args
        expect_contains "$ERR" "not found"
        expect_lines "$OUT" 0
    done
    expect_exit 5 -- "$PB" --db "$db" version list --template web --org "$lookalike-x"
    expect_exit 5 -- "$PB" --db "$db" preset create p --version v2 --org "$lookalike"
    expect_contains "$ERR" "in organization \"$lookalike\""
    # a deleted organization is gone for references
    $q "UPDATE organizations SET deleted = true WHERE id = '$lookalike'" >/dev/null
    expect_exit 5 -- "$PB" --db "$db" template list --org "$lookalike"
    expect_exit 0 -- "$PB" --db "$db" version create v3 --template web # one left now
}

sq_bool() { sqlite3 -batch "$TMP/refs.db" "${1//= true/= 1}"; }
refs sqlite "sqlite:$TMP/refs.db" sq_bool

if [ -n "$PG_CONNINFO" ]; then
    pg_new_db PDB || fail "create a PostgreSQL database"
    pg_refs() { pgq "$PDB" "$1"; }
    refs postgresql "$PDB" pg_refs
fi
finish
