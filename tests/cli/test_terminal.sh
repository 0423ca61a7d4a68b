#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317 # "check && pass || fail"; helpers run through wait_until
# The terminal is safe, on SQLite and on PostgreSQL: organization names that hold C1 controls
# (U+009B is CSI on a terminal that takes 8-bit controls), bidirectional overrides and
# isolates, or line separators reach no output raw: tables, logs and JSON show them as \uNNNN
# (JSON parsers read the same string back). Tables align by display width: wide CJK letters,
# emoji and combining marks keep the columns straight.
#
# usage: test_terminal.sh PREBUILDS_BINARY [PG_CONNINFO]
# shellcheck disable=SC2016 # jq filters
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" "$@"

CSI=$'evil\xc2\x9b31mred'
RLO=$'invoice\xe2\x80\xaegpj.exe'
ISO=$'a\xe2\x81\xa6b\xe2\x81\xa9c'
SEP=$'line\xe2\x80\xa8two'
CJK=$'\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e'   # three wide letters: 6 columns
EMOJI=$'rocket\xf0\x9f\x9a\x80'
MARK=$'cafe\xcc\x81'                       # "café" with a combining accent: 4 columns
UNSAFE="c29b e280ae e281a6 e281a9 e280a8"   # the raw sequences that must never show

# check_outputs LABEL: none of the unsafe sequences in $OUT and $ERR; the escapes shown.
check_outputs() {
    local f u
    for f in "$OUT" "$ERR"; do
        for u in $UNSAFE; do expect_no_bytes "$f" "$u" "U+$u ($1)"; done
    done
}

# terminal DB SQL_FN: hostile and wide names inserted behind the CLI's back, then every view.
terminal() {
    local db=$1 q=$2 name i=0
    expect_exit 0 -- "$PB" --db "$db" init
    for name in "$CSI" "$RLO" "$ISO" "$SEP" "$CJK" "$EMOJI" "$MARK" plain; do
        i=$((i + 1))
        local hex
        hex=$(printf '%s' "$name" | od -An -v -tx1 | tr -d ' \n')
        local org
        org=$(printf '%08d-0000-4000-8000-000000000000' "$i")
        # shellcheck disable=SC2059 # the statement is the format
        $q "$(printf "$4" "$org" "$hex")" >/dev/null || fail "insert $name"
        expect_exit 0 -- "$PB" --db "$db" template create t --org "$org"
        local t
        t=$(cat "$OUT")
        expect_exit 0 -- "$PB" --db "$db" version create v --template "$t"
        expect_exit 0 -- "$PB" --db "$db" preset create p --version "$(cat "$OUT")" \
            --desired-instances 1
    done
    for cmd in status plan "org list" "template list" "status --json" "plan --json" \
        "org list --json"; do
        # shellcheck disable=SC2086
        expect_exit 0 -- "$PB" --db "$db" $cmd
        check_outputs "$3 $cmd"
    done
    expect_exit 0 -- "$PB" --db "$db" org list
    expect_contains "$OUT" 'evil\u009b31mred'
    expect_contains "$OUT" 'invoice\u202egpj.exe'
    expect_contains "$OUT" 'a\u2066b\u2069c'
    expect_contains "$OUT" 'line\u2028two'
    expect_contains "$OUT" "$CJK"
    expect_contains "$OUT" "$MARK"
    expect_exit 0 -- "$PB" --db "$db" org list --json
    jq -j '.[] | select(.name | startswith("invoice")) | .name' "$OUT" >"$TMP/got"
    printf '%s' "$RLO" >"$TMP/want"
    expect_true "$3: JSON reads the name back unchanged" cmp -s "$TMP/got" "$TMP/want"
    expect_true "$3: JSON escapes it on the way" grep -qF 'invoice\u202egpj.exe' "$OUT"
    # alignment: the text before the MEMBER column has one display width on every line
    expect_exit 0 -- "$PB" --db "$db" status
    sed -E 's/(MEMBER  .*|(yes|no) +([0-9a-f-]{36}|-) +(yes|no))$//' "$OUT" >"$TMP/prefixes"
    local widths
    widths=$(while IFS= read -r line; do
        printf '%s|\n' "$line" | LC_ALL=C.UTF-8 wc -L
    done <"$TMP/prefixes" | sort -u | wc -l)
    expect_eq "$3: status columns aligned by display width" "$widths" 1
    expect_eq "$3: status rows" "$(wc -l <"$OUT")" 9
    # the logs of a reconcile, text and JSON
    expect_exit 0 -- "$PB" --db "$db" reconcile
    check_outputs "$3 reconcile"
    expect_contains "$ERR" 'organization_name="invoice\u202egpj.exe"'
    expect_exit 0 -- "$PB" --db "$db" member remove --org 00000001-0000-4000-8000-000000000000
    expect_exit 0 -- "$PB" --db "$db" --log-format json reconcile
    check_outputs "$3 reconcile, JSON logs"
    expect_true "$3: JSON log lines parse" jq -e . "$ERR"
}

sq() { sqlite3 -batch "$TMP/t.db" "$1"; }
SQ_ORG="INSERT INTO organizations (id, name, display_name, description, created_at, updated_at)
    VALUES ('%s', CAST(X'%s' AS TEXT), 'x', '', 'x', 'x')"
terminal "sqlite:$TMP/t.db" sq sqlite "$SQ_ORG"

if [ -n "$PG_CONNINFO" ]; then
    pg_new_db PDB || fail "create a database"
    pq() { pgq "$PDB" "$1"; }
    PG_ORG="INSERT INTO organizations (id, name, display_name, description, created_at, updated_at)
        VALUES ('%s', convert_from('\\\\x%s', 'UTF8'), 'x', '', now(), now())"
    terminal "$PDB" pq postgresql "$PG_ORG"
fi
finish
