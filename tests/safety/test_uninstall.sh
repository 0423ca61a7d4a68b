#!/usr/bin/env bash
# `prebuilds uninstall` takes out of a platform database exactly what prebuilds put in: the
# schema dump after it (with and without owners) equals the dump before the first install,
# after index, summary, triggers, platform flows, reconciles and a daemon. Installing twice
# changes nothing the second time; uninstalling twice reports nothing to remove; another role
# that qualifies installs again after an uninstall; leftovers of older versions go too. On a
# database prebuilds created itself, and on SQLite, uninstall refuses (exit 5) and changes
# nothing. No init says "unchanged" when the catalog did change.
# Usage: test_uninstall.sh BINARY CONNINFO   (CONNINFO: a superuser on a running server)
BIN=$1
BASE=$2
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# pb_init NAME CONNINFO ARGS...: `init ARGS` must exit 0; when the schema changed, its output
# must not say "unchanged".
pb_init() {
    local name=$1 conn=$2
    shift 2
    dump "$PDB" "$WORK/$name.before"
    run_pb "$name" --db "$conn" init "$@"
    [ "$RC" -eq 0 ] && ok "init $* (exit 0)" || fail "init $*: exit $RC: $(said)"
    dump "$PDB" "$WORK/$name.after"
    if ! cmp -s "$WORK/$name.before" "$WORK/$name.after"; then
        if grep -qi 'unchanged' "$WORK/$name.out" "$WORK/$name.err"; then
            fail "init $* changed the schema but says: $(grep -hi -m1 'unchanged' "$WORK/$name.out" "$WORK/$name.err")"
        else
            ok "init $* changed the schema and does not say unchanged"
        fi
    fi
}
same() { # same DESCRIPTION FILE1 FILE2
    if diff -u "$2" "$3" >"$WORK/diff" 2>&1; then ok "$1"; else
        fail "$1: $(grep '^[-+][^-+]' "$WORK/diff" | head -n 3 | tr '\n' '|' | cut -c1-300)"
    fi
}

new_platform
pf_run_all u0 >/dev/null || fail "platform flows before the install"
dump "$PDB" "$WORK/d0" --no-owner
dump "$PDB" "$WORK/d0o"
pb_init plain "$DB"
same "plain init on the platform database changes nothing" "$WORK/d0o" "$WORK/plain.after"

# install everything, as the superuser
pb_init i1 "$DB" --recommended-indexes
pb_init i2 "$DB" --summary
pb_init i3 "$DB" --triggers
dump "$PDB" "$WORK/d1"
[ -n "$(ours "$PDB")" ] || fail "nothing of ours installed"
# ... and again: nothing changes
pb_init j1 "$DB" --recommended-indexes
pb_init j2 "$DB" --summary
pb_init j3 "$DB" --triggers
pb_init j4 "$DB" --recommended-indexes --summary --triggers
dump "$PDB" "$WORK/d2"
same "installing a second time changes nothing" "$WORK/d1" "$WORK/d2"

# use it: flows, reconcile, a daemon with --listen
expect_rc "reconcile" 0 rec1 --db "$DB" reconcile
start_daemon "$WORK/daemon.log" --db "$DB" --log-level debug run --listen --interval 1s \
    --lock-id 4801 --metrics-addr off
wait_until 15 grep -q 'leading' "$WORK/daemon.log" || fail "the daemon does not lead: $(tail -n 3 "$WORK/daemon.log")"
pf_run_all u1 >/dev/null || fail "platform flows beside the daemon"
wait_until 15 converged && ok "the daemon converged the flows' organizations" ||
    fail "the daemon did not converge: $(pf_not_converged | wc -l) left"

# out again, while the daemon runs
run_pb un1 --db "$DB" uninstall
[ "$RC" -eq 0 ] && ok "uninstall (exit 0)" || fail "uninstall: exit $RC: $(said)"
[ -s "$WORK/un1.out" ] && ok "uninstall says what it removed: $(head -n 1 "$WORK/un1.out")" ||
    fail "uninstall printed nothing"
kill -0 "$DPID" 2>/dev/null && ok "the daemon survives the uninstall" || fail "the daemon died during the uninstall"
pf_run_all u2 >/dev/null && ok "platform flows after the uninstall" || fail "platform flows after the uninstall"
stop_daemon "$DPID"
dump "$PDB" "$WORK/d3" --no-owner
dump "$PDB" "$WORK/d3o"
same "after uninstall the schema (no owners) equals the one before the first install" "$WORK/d0" "$WORK/d3"
same "after uninstall the schema (with owners) equals the one before the first install" "$WORK/d0o" "$WORK/d3o"
[ -z "$(ours "$PDB")" ] && ok "nothing named prebuilds left" || fail "left: $(ours "$PDB" | tr '\n' ',')"

run_pb un2 --db "$DB" uninstall
[ "$RC" -eq 0 ] && ok "second uninstall (exit 0)" || fail "second uninstall: exit $RC: $(said)"
grep -qi 'nothing' "$WORK/un2.out" "$WORK/un2.err" && ok "second uninstall reports nothing to remove" ||
    fail "second uninstall does not say nothing to remove: $(said)"
dump "$PDB" "$WORK/d4"
same "second uninstall changes nothing" "$WORK/d3o" "$WORK/d4"

# the other role that qualifies: the platform's role installs, then uninstalls
pb_init o1 "$ODB" --recommended-indexes
pb_init o2 "$ODB" --summary --triggers
bad=$(sq "$PDB" "SELECT count(*) FROM pg_proc WHERE proname LIKE 'prebuilds%' AND proowner <> '$OWNER'::regrole")
[ "$bad" = 0 ] && ok "installed by $OWNER: its functions are $OWNER's" || fail "$bad function(s) not owned by $OWNER"
[ -n "$(ours "$PDB")" ] && ok "installed again by $OWNER after the uninstall" || fail "nothing installed by $OWNER"
expect_rc "reconcile after the install by $OWNER" 0 rec2 --db "$DB" reconcile
run_pb un3 --db "$ODB" uninstall
[ "$RC" -eq 0 ] && ok "uninstall by $OWNER (exit 0)" || fail "uninstall by $OWNER: exit $RC: $(said)"
dump "$PDB" "$WORK/d5o"
same "after install and uninstall by $OWNER the schema equals the first one" "$WORK/d0o" "$WORK/d5o"
# ... and the superuser again after that
pb_init s1 "$DB" --summary --triggers
run_pb un4 --db "$DB" uninstall
[ "$RC" -eq 0 ] && ok "uninstall by the superuser after reinstalling (exit 0)" || fail "uninstall: exit $RC: $(said)"

# leftovers of an older version of prebuilds, named prebuilds_*, go too
oq "$PDB" "
CREATE FUNCTION prebuilds_configured_preset() RETURNS trigger LANGUAGE plpgsql
    AS \$\$ BEGIN RETURN NULL; END \$\$;
CREATE TRIGGER prebuilds_configured_preset_insert AFTER INSERT ON template_version_presets
    FOR EACH ROW WHEN (NEW.desired_instances IS NOT NULL) EXECUTE FUNCTION prebuilds_configured_preset();
CREATE FUNCTION prebuilds_configured_bucket(t uuid) RETURNS integer LANGUAGE sql IMMUTABLE
    AS \$\$ SELECT hashtext(t::text) & 1023 \$\$;
CREATE TABLE prebuilds_configured_templates (template_id uuid PRIMARY KEY);
CREATE SEQUENCE prebuilds_leftover_faults;
" || fail "planting leftovers"
run_pb un5 --db "$DB" uninstall
[ "$RC" -eq 0 ] && ok "uninstall with older leftovers (exit 0)" || fail "uninstall with leftovers: exit $RC: $(said)"
[ -z "$(ours "$PDB")" ] && ok "older leftovers removed" || fail "leftovers not removed: $(ours "$PDB" | tr '\n' ',')"
dump "$PDB" "$WORK/d6o"
same "after removing the leftovers the schema equals the first one" "$WORK/d0o" "$WORK/d6o"

# our own schema: refused, nothing changed
new_empty
run_pb own_init --db "$DB" init --triggers
[ "$RC" -eq 0 ] || fail "init on an empty database: $(said)"
"$BIN" --db "$DB" seed --orgs 3 --prebuilds-fraction 1 >/dev/null 2>&1
dump "$PDB" "$WORK/own0"
rows0=$(sq "$PDB" "SELECT (SELECT count(*) FROM organizations) + (SELECT count(*) FROM organization_members)")
expect_rc "uninstall on our own PostgreSQL schema is refused" 5 own_un --db "$DB" uninstall
[ "$(lines "$WORK/own_un.err")" -eq 1 ] && ok "one line" || fail "refusal is not one line: $(said)"
grep -qi 'drop the database' "$WORK/own_un.err" && ok "the refusal says to drop the database" ||
    fail "the refusal does not say to drop the database: $(said)"
dump "$PDB" "$WORK/own1"
same "refused uninstall changed nothing (PostgreSQL)" "$WORK/own0" "$WORK/own1"
check "refused uninstall kept the rows" test "$(sq "$PDB" "SELECT (SELECT count(*) FROM organizations) + (SELECT count(*) FROM organization_members)")" = "$rows0"

# SQLite: refused, nothing changed
SQ="$WORK/t.db"
"$BIN" --db "sqlite:$SQ" init >/dev/null 2>&1 || fail "sqlite init"
"$BIN" --db "sqlite:$SQ" seed --orgs 3 --prebuilds-fraction 1 >/dev/null 2>&1
sqlite3 "$SQ" .dump >"$WORK/sq0"
expect_rc "uninstall on SQLite is refused" 5 sq_un --db "sqlite:$SQ" uninstall
[ "$(lines "$WORK/sq_un.err")" -eq 1 ] && ok "one line (SQLite)" || fail "SQLite refusal is not one line: $(said)"
# (for a file, "delete the file" is the same advice)
grep -qiE 'drop the database|delete the file' "$WORK/sq_un.err" && ok "the SQLite refusal says to drop the database" ||
    fail "the SQLite refusal does not say to drop the database: $(said)"
sqlite3 "$SQ" .dump >"$WORK/sq1"
same "refused uninstall changed nothing (SQLite)" "$WORK/sq0" "$WORK/sq1"
finish
