#!/usr/bin/env bash
# What prebuilds installs never runs with more rights than the role that owns the platform's
# tables, whoever installs it and whoever writes:
#  (a) installed by a superuser, every prebuilds_* function, table and sequence belongs to the
#      platform's role (coder_owner), the functions are SECURITY DEFINER with a fixed
#      search_path (pg_catalog, public, pg_temp);
#  (b) the platform's role plants objects meant to hijack our functions (a schema first in its
#      search_path with functions and operators named like built-ins, a schema named after the
#      superuser with views named like the tables, temporary views), then writes as the
#      platform and as a superuser so that our triggers fire: nothing of ours, and no prebuilds
#      session, ever runs the planted code as a superuser (the planted code would make the
#      platform's role a superuser if it did), and the platform's role still cannot do what
#      only a superuser can;
#  (c) a third role, neither superuser nor member of coder_owner: `init --summary` and
#      `init --triggers` refuse, exit 5, one line naming coder_owner, nothing created; tables
#      with different owners: refused, exit 5;
#  (d) `init --print-grants ROLE` in each state of a database applies with ON_ERROR_STOP as
#      the owner, and a LOGIN role holding exactly those grants runs `reconcile` and
#      `run --once`.
# Usage: test_privilege.sh BINARY CONNINFO   (CONNINFO: a superuser on a running server)
BIN=$1
BASE=$2
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
SUPER=$(psql "$BASE" -qXAtc "SELECT current_user")
# The hijack attempts (b) run against a platform role of their own, so that a successful one
# (it makes that role a superuser) cannot touch the coder_owner role other tests share.
HIJACK_OWNER="pbsafe_hj_$$"
CLEANUP_HOOKS+=("psql \"\$BASE\" -qXc 'ALTER ROLE $HIJACK_OWNER NOSUPERUSER'")

# ---------------------------------------------------------------- (a) ownership
new_platform

pf_run_all a >/dev/null || fail "platform flows before the install"
for what in --recommended-indexes --summary --triggers; do
    expect_rc "init $what as the superuser $SUPER" 0 "a_init$what" --db "$DB" init "$what"
done
nfun=$(sq "$PDB" "SELECT count(*) FROM pg_proc WHERE proname LIKE 'prebuilds%'")
[ "$nfun" -gt 0 ] && ok "$nfun prebuilds_* functions installed" || fail "no prebuilds_* function installed"
bad=$(sq "$PDB" "SELECT string_agg(p.oid::regprocedure::text || ' owned by ' || p.proowner::regrole::text, ', ')
                 FROM pg_proc p WHERE p.proname LIKE 'prebuilds%' AND p.proowner <> '$OWNER'::regrole")
[ -z "$bad" ] && ok "every prebuilds_* function is owned by $OWNER" || fail "functions not owned by $OWNER: $bad"
bad=$(sq "$PDB" "SELECT string_agg(c.relname || ' (' || c.relkind::text || ') owned by ' || c.relowner::regrole::text, ', ')
                 FROM pg_class c WHERE c.relname LIKE '%prebuilds%' AND c.relowner <> '$OWNER'::regrole")
[ -z "$bad" ] && ok "every prebuilds table, sequence and index is owned by $OWNER" ||
    fail "relations not owned by $OWNER: $bad"
for kind in r S; do
    n=$(sq "$PDB" "SELECT count(*) FROM pg_class WHERE relname LIKE 'prebuilds%' AND relkind = '$kind'")
    [ "$n" -gt 0 ] && ok "$n relation(s) of kind $kind installed" || fail "no prebuilds_* relation of kind $kind installed"
done
bad=$(sq "$PDB" "SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
                 JOIN pg_roles r ON r.oid = p.proowner
                 WHERE p.proname LIKE 'prebuilds%' AND r.rolsuper")
[ -z "$bad" ] && ok "no prebuilds_* function is owned by a superuser" || fail "owned by a superuser: $bad"
# Trigger functions run for whoever writes the platform's tables: SECURITY DEFINER (as the
# tables' owner, checked above). Any other function of ours runs with its caller's rights.
# Every one of them has the fixed search path.
bad=$(sq "$PDB" "SELECT string_agg(p.oid::regprocedure::text || ' ' || coalesce(array_to_string(p.proconfig, ';'), 'no SET'), ', ')
                 FROM pg_proc p WHERE p.proname LIKE 'prebuilds%'
                 AND (p.prosecdef <> (p.prorettype = 'trigger'::regtype) OR p.proconfig IS NULL OR NOT EXISTS (
                      SELECT 1 FROM unnest(p.proconfig) c
                      WHERE replace(replace(c, ' ', ''), '\"', '') = 'search_path=pg_catalog,public,pg_temp'))")
[ -z "$bad" ] && ok "every prebuilds_* trigger function is SECURITY DEFINER, every other one SECURITY INVOKER, all with search_path pg_catalog, public, pg_temp" ||
    fail "functions with the wrong security or without the fixed search path: $bad"
# The summary's answer view reads with its reader's rights, and nobody may read it unasked.
bad=$(sq "$PDB" "SELECT string_agg(c.relname, ', ') FROM pg_class c WHERE c.relname LIKE 'prebuilds%'
                 AND c.relkind = 'v' AND (NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
                 OR has_table_privilege('public', c.oid, 'SELECT'))")
nview=$(sq "$PDB" "SELECT count(*) FROM pg_class WHERE relname LIKE 'prebuilds%' AND relkind = 'v'")
[ "$nview" -gt 0 ] && [ -z "$bad" ] && ok "$nview prebuilds_* view(s), security_invoker and not readable by PUBLIC" ||
    fail "views lending rights or readable by anyone: ${bad:-no view installed}"

# ---------------------------------------------------------------- (b) hijack attempts
# A platform database like the first, owned by a role of its own (see HIJACK_OWNER).
ROLES+=("$HIJACK_OWNER")
OWNER=$HIJACK_OWNER
new_platform
pf_run_all a >/dev/null || fail "platform flows before the install (b)"
for what in --recommended-indexes --summary --triggers; do
    expect_rc "init $what as the superuser (b)" 0 "b_init$what" --db "$DB" init "$what"
done
# The planted code: records who runs it, and, run as a superuser, makes coder_owner one.
oq "$PDB" "
CREATE TABLE public.hijack_log (n bigserial, via text, cur name, sess name, super boolean, app text, ctx text,
    query text);
GRANT SELECT, INSERT ON public.hijack_log TO PUBLIC;
GRANT USAGE ON SEQUENCE public.hijack_log_n_seq TO PUBLIC;
CREATE SCHEMA hijack;
GRANT USAGE ON SCHEMA hijack TO PUBLIC;
CREATE FUNCTION hijack.note(via text) RETURNS boolean LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog AS \$\$
DECLARE ctx text; su boolean;
BEGIN
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    SELECT rolsuper INTO su FROM pg_roles WHERE rolname = current_user;
    INSERT INTO public.hijack_log (via, cur, sess, super, app, ctx, query) VALUES (via, current_user,
        session_user, su, current_setting('application_name'), ctx, left(current_query(), 160));
    IF su THEN
        EXECUTE 'ALTER ROLE $OWNER SUPERUSER';
    END IF;
    RETURN true;
END \$\$;
" || fail "planting the recorder"

# Built-ins our SQL may call, shadowed in schema hijack (each records, then does the real work).
shadow() { # shadow NAME ARGTYPES RESULT CALL
    local body="RETURN $4;"
    [ "$3" = void ] && body="PERFORM $4; RETURN;"
    oq "$PDB" "CREATE FUNCTION hijack.$1($2) RETURNS $3 LANGUAGE plpgsql VOLATILE AS \$\$
               BEGIN PERFORM hijack.note('function $1'); $body END \$\$" ||
        fail "planting hijack.$1($2)"
}
shadow pg_notify "text, text" void 'pg_catalog.pg_notify($1, $2)'
shadow hashtext "text" integer 'pg_catalog.hashtext($1)'
shadow hashtextextended "text, bigint" bigint 'pg_catalog.hashtextextended($1, $2)'
shadow current_setting "text" text 'pg_catalog.current_setting($1)'
shadow current_setting "text, boolean" text 'pg_catalog.current_setting($1, $2)'
shadow set_config "text, text, boolean" text 'pg_catalog.set_config($1, $2, $3)'
shadow nextval "regclass" bigint 'pg_catalog.nextval($1)'
shadow now "" timestamptz 'pg_catalog.now()'
shadow lower "text" text 'pg_catalog.lower($1)'
shadow pg_trigger_depth "" integer 'pg_catalog.pg_trigger_depth()'
shadow pg_advisory_xact_lock "integer, integer" void 'pg_catalog.pg_advisory_xact_lock($1, $2)'
shadow pg_advisory_xact_lock_shared "integer, integer" void 'pg_catalog.pg_advisory_xact_lock_shared($1, $2)'
shadow pg_advisory_xact_lock "bigint" void 'pg_catalog.pg_advisory_xact_lock($1)'
shadow txid_current "" bigint 'pg_catalog.txid_current()'
shadow jsonb_extract_path_text "jsonb, VARIADIC text[]" text 'pg_catalog.jsonb_extract_path_text($1, VARIADIC $2)'
shadow to_jsonb "text" jsonb 'pg_catalog.to_jsonb($1)'
# Operators too: = on uuid, text and boolean, ->> on jsonb.
oq "$PDB" "
CREATE FUNCTION hijack.eq_uuid(uuid, uuid) RETURNS boolean LANGUAGE sql VOLATILE
    AS \$\$ SELECT hijack.note('operator = uuid') AND pg_catalog.uuid_eq(\$1, \$2) \$\$;
CREATE OPERATOR hijack.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = hijack.eq_uuid);
CREATE FUNCTION hijack.eq_text(text, text) RETURNS boolean LANGUAGE sql VOLATILE
    AS \$\$ SELECT hijack.note('operator = text') AND pg_catalog.texteq(\$1, \$2) \$\$;
CREATE OPERATOR hijack.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hijack.eq_text);
CREATE FUNCTION hijack.eq_bool(boolean, boolean) RETURNS boolean LANGUAGE sql VOLATILE
    AS \$\$ SELECT hijack.note('operator = boolean') AND pg_catalog.booleq(\$1, \$2) \$\$;
CREATE OPERATOR hijack.= (LEFTARG = boolean, RIGHTARG = boolean, FUNCTION = hijack.eq_bool);
CREATE FUNCTION hijack.jsonb_field(jsonb, text) RETURNS text LANGUAGE sql VOLATILE
    AS \$\$ SELECT CASE WHEN hijack.note('operator ->>') THEN pg_catalog.jsonb_object_field_text(\$1, \$2) END \$\$;
CREATE OPERATOR hijack.->> (LEFTARG = jsonb, RIGHTARG = text, FUNCTION = hijack.jsonb_field);
" || fail "planting the operators"
# The platform's role puts that schema first, before pg_catalog, for its sessions here.
sq "$PDB" "ALTER ROLE $OWNER IN DATABASE $PDB SET search_path = hijack, pg_catalog, public" ||
    fail "ALTER ROLE ... SET search_path"
# A schema named after the superuser comes first in the superuser's default search_path
# ("\$user", public): views there, named like the tables we read and our own, run the recorder.
# (groups and group_members are left out: the platform's own trigger on organization_members
# reads them, and that is the platform's code, not ours.)
oq "$PDB" "CREATE SCHEMA \"$SUPER\"; GRANT USAGE ON SCHEMA \"$SUPER\" TO PUBLIC" || fail "planting schema $SUPER"
for t in users organizations templates template_versions template_version_presets site_configs \
    prebuilds_configured_templates prebuilds_summary_changes; do
    if [ "$(sq "$PDB" "SELECT to_regclass('public.$t') IS NOT NULL")" = t ]; then
        oq "$PDB" "CREATE VIEW \"$SUPER\".$t AS SELECT * FROM public.$t WHERE hijack.note('view $t');
                   GRANT SELECT ON \"$SUPER\".$t TO PUBLIC" || fail "planting view $SUPER.$t"
    fi
done

# The platform writes, as its role (its search_path now starts with hijack): every flow.
PF_DB="$BASE dbname=$PDB user=$OWNER"
pf_run_all b1 >/dev/null 2>"$WORK/b1.err" && ok "platform flows with the planted objects" ||
    fail "platform flows with the planted objects: $(grep -m1 ERROR "$WORK/b1.err")"
[ "$(psql "$PF_DB" -qXAtc 'SHOW search_path')" = "hijack, pg_catalog, public" ] ||
    fail "the platform role's sessions do not start with schema hijack"
# ... in one session with temporary views over the tables (pg_temp comes first for relations
# unless a search_path places it), writing through schema-qualified names.
{
    for t in users organizations templates template_versions template_version_presets groups \
        group_members organization_members site_configs prebuilds_configured_templates \
        prebuilds_summary_changes; do
        [ "$(sq "$PDB" "SELECT to_regclass('public.$t') IS NOT NULL")" = t ] &&
            echo "CREATE TEMP VIEW $t AS SELECT * FROM public.$t WHERE hijack.note('temp view $t');"
    done
    org=$(pf_uuid) tpl=$(pf_uuid) ver=$(pf_uuid)
    cat <<SQL
INSERT INTO public.organizations (id, name, display_name, description, created_at, updated_at,
    default_org_member_roles) VALUES ('$org', 'tempviews', 'tempviews', '', now(), now(), '{}');
INSERT INTO public.template_versions (id, template_id, organization_id, created_at, updated_at,
    name, readme, job_id, created_by) VALUES ('$ver', NULL, '$org', now(), now(), 'v1', '',
    gen_random_uuid(), '$PF_ADMIN');
INSERT INTO public.template_version_presets (template_version_id, name, desired_instances)
    VALUES ('$ver', 'p', 1);
INSERT INTO public.templates (id, created_at, updated_at, organization_id, name, provisioner,
    active_version_id, created_by) VALUES ('$tpl', now(), now(), '$org', 'web', 'terraform',
    '$ver', '$PF_ADMIN');
UPDATE public.template_versions SET template_id = '$tpl' WHERE id = '$ver';
UPDATE public.template_version_presets SET desired_instances = 3 WHERE template_version_id = '$ver';
INSERT INTO public.site_configs (key, value) VALUES ('hijack_probe', 'x')
    ON CONFLICT (key) DO UPDATE SET value = 'y';
UPDATE public.users SET deleted = true WHERE id = '$PF_PREBUILDS_USER';
UPDATE public.users SET deleted = false WHERE id = '$PF_PREBUILDS_USER';
DELETE FROM public.template_versions WHERE id = '$ver';
SQL
} | psql "$PF_DB" -qX -v ON_ERROR_STOP=1 >/dev/null 2>"$WORK/b2.err" &&
    ok "platform writes in a session with temporary views over the tables" ||
    fail "platform writes with temporary views: $(grep -m1 ERROR "$WORK/b2.err")"
# The superuser writes too (an operator's manual fix): our triggers fire in a superuser session
# whose default search_path finds the views first. Only writes the platform's own triggers do
# not follow into tables (those are the platform's code).
SUPER_DB="$BASE dbname=$PDB"
v=$(psql "$SUPER_DB" -qXAtc "SELECT active_version_id FROM public.templates WHERE NOT deleted LIMIT 1")
psql "$SUPER_DB" -qX -v ON_ERROR_STOP=1 >/dev/null 2>"$WORK/b3.err" <<SQL && ok "superuser writes that fire our triggers" || fail "superuser writes: $(grep -m1 ERROR "$WORK/b3.err")"
INSERT INTO public.template_version_presets (template_version_id, name, desired_instances)
    VALUES ('$v', 'by-superuser', 2);
UPDATE public.template_version_presets SET desired_instances = NULL WHERE name = 'by-superuser';
UPDATE public.template_version_presets SET desired_instances = 5 WHERE name = 'by-superuser';
DELETE FROM public.group_members WHERE user_id = '$PF_PREBUILDS_USER';
UPDATE public.groups SET display_name = 'x' WHERE name = 'coderprebuiltworkspaces';
INSERT INTO public.site_configs (key, value) VALUES ('prebuilds_settings', '{"reconciliation_paused": false}')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
DELETE FROM public.template_version_presets WHERE name = 'by-superuser';
SQL
# prebuilds itself, as the superuser, in this database: the reconciler, the daemon, init again.
expect_clean "reconcile as the superuser beside the planted objects" b_reconcile --db "$DB" reconcile
expect_clean "run --once as the superuser beside the planted objects" b_once --db "$DB" run --once --lock-id 4711 --metrics-addr off
expect_clean "init --summary --triggers again as the superuser beside the planted objects" b_init --db "$DB" init --summary --triggers
# ... and init as the platform's role, whose sessions now start with schema hijack: what it
# creates keeps the fixed search_path.
expect_rc "init --summary --triggers as $OWNER (search_path starting with hijack)" 0 b_init_owner \
    --db "$ODB" init --summary --triggers
bad=$(sq "$PDB" "SELECT string_agg(p.proname || ' ' || array_to_string(p.proconfig, ';'), ', ') FROM pg_proc p
                 WHERE p.proname LIKE 'prebuilds%' AND array_to_string(p.proconfig, ';') LIKE '%hijack%'")
[ -z "$bad" ] && ok "functions created by $OWNER do not take its search_path" || fail "search_path taken from the session: $bad"
pf_run_all b4 >/dev/null 2>"$WORK/b4.err" && ok "platform flows after the re-install" ||
    fail "platform flows after the re-install: $(grep -m1 ERROR "$WORK/b4.err")"

total=$(sq "$PDB" "SELECT count(*) FROM hijack_log")
[ "$total" -gt 0 ] && ok "the planted code ran $total time(s) (the attempts reached it)" ||
    fail "the planted code never ran: the hijack attempts are not exercised"
ours_super=$(sq "$PDB" "SELECT string_agg(DISTINCT via || ' as ' || cur || ' (session ' || sess || ', ' || app || ') in ' ||
                        coalesce(substring(ctx from 'function (prebuilds[a-z_0-9]*)'), 'a prebuilds session'), '; ')
                        FROM hijack_log WHERE super AND (ctx LIKE '%prebuilds%' OR app LIKE 'prebuilds%')")
first=$(sq "$PDB" "SELECT via || ' as ' || cur || ' (session ' || sess || ', ' || app || '): ' || replace(ctx, E'\n', ' <- ')
                   || ' (statement: ' || regexp_replace(query, '\s+', ' ', 'g') || ')'
                   FROM hijack_log WHERE super ORDER BY n LIMIT 1")
[ -z "$ours_super" ] && ok "no planted code ran as a superuser in our functions or sessions" ||
    fail "planted code ran as a superuser: first: $first; all: $ours_super"
other=$(sq "$PDB" "SELECT count(*) FROM hijack_log WHERE super AND NOT (ctx LIKE '%prebuilds%' OR app LIKE 'prebuilds%')")
[ "$other" -eq 0 ] || echo "note: $other superuser run(s) of planted code outside prebuilds (the test's or the platform's own)"
ran_ours=$(sq "$PDB" "SELECT count(*) FROM hijack_log WHERE ctx LIKE '%prebuilds%'")
echo "note: planted code ran $ran_ours time(s) inside prebuilds_* functions (as $OWNER at most)"

# The platform's role is still no superuser.
check "$OWNER is still no superuser" test "$(sq "$PDB" "SELECT rolsuper FROM pg_roles WHERE rolname = '$OWNER'")" = f
if oq "$PDB" "CREATE ROLE pbsafe_evil_$$ SUPERUSER" >/dev/null 2>&1; then
    fail "$OWNER created a superuser role"
    ROLES+=("pbsafe_evil_$$")
else ok "$OWNER still cannot create a superuser role"; fi
if oq "$PDB" "SELECT count(*) FROM pg_authid" >/dev/null 2>&1; then
    fail "$OWNER can read pg_authid"
else ok "$OWNER still cannot read pg_authid"; fi
if oq "$PDB" "COPY (SELECT 1) TO PROGRAM 'true'" >/dev/null 2>&1; then
    fail "$OWNER can run programs on the server"
else ok "$OWNER still cannot COPY TO PROGRAM"; fi

# Undo any escalation now, so the rest of the test runs with a plain platform role.
psql "$BASE" -qXc "ALTER ROLE $OWNER NOSUPERUSER" >/dev/null
sq "$PDB" "ALTER ROLE $OWNER IN DATABASE $PDB RESET search_path"
OWNER=coder_owner

# ---------------------------------------------------------------- (c) a role that does not qualify
THIRD="pbsafe_third_$$"
psql "$BASE" -qXc "CREATE ROLE $THIRD LOGIN" >/dev/null || fail "CREATE ROLE $THIRD"
ROLES+=("$THIRD")
new_platform
before=$(ours "$PDB")
for what in --summary --triggers; do
    expect_rc "init $what as $THIRD (not superuser, not in $OWNER) is refused" 5 "c_init$what" \
        --db "$BASE dbname=$PDB user=$THIRD" init "$what"
    n=$(lines "$WORK/c_init$what.err")
    [ "$n" -eq 1 ] && ok "init $what refusal is one line" || fail "init $what refusal: $n stderr lines: $(said)"
    grep -q "$OWNER" "$WORK/c_init$what.err" && ok "init $what refusal names $OWNER" ||
        fail "init $what refusal does not name $OWNER: $(said)"
done
[ "$(ours "$PDB")" = "$before" ] && ok "nothing created by the refused role" || fail "the refused role created: $(ours "$PDB" | tr '\n' ',')"
# tables of two owners: refused
OTHER_OWNER="pbsafe_owner2_$$"
psql "$BASE" -qXc "CREATE ROLE $OTHER_OWNER" >/dev/null || fail "CREATE ROLE $OTHER_OWNER"
ROLES+=("$OTHER_OWNER")
sq "$PDB" "ALTER TABLE groups OWNER TO $OTHER_OWNER" || fail "ALTER TABLE groups OWNER"
expect_rc "init --summary on tables of two owners is refused" 5 c_two --db "$DB" init --summary
[ "$(lines "$WORK/c_two.err")" -eq 1 ] && ok "the two-owner refusal is one line" || fail "two-owner refusal: $(said)"
expect_rc "init --triggers on tables of two owners is refused" 5 c_two_t --db "$DB" init --triggers
[ "$(ours "$PDB")" = "$before" ] && ok "nothing created on tables of two owners" || fail "created on tables of two owners: $(ours "$PDB" | tr '\n' ',')"
sq "$PDB" "ALTER TABLE groups OWNER TO $OWNER"

# ---------------------------------------------------------------- (d) the printed grants, per state
N_ROLE=0
# grants_state DESCRIPTION OWNER_CONNINFO DRIFT_CMD: print the grants for a new LOGIN role, apply
# them as the owner, then reconcile and run --once as that role.
grants_state() {
    local what=$1 owner_db=$2 drift=$3 role
    N_ROLE=$((N_ROLE + 1))
    role="prebuilds_reconciler_$$_$N_ROLE"
    psql "$BASE" -qXc "CREATE ROLE $role LOGIN" >/dev/null || fail "CREATE ROLE $role"
    ROLES+=("$role")
    sq "$PDB" "REVOKE ALL ON DATABASE $PDB FROM PUBLIC; GRANT CONNECT ON DATABASE $PDB TO $role"
    expect_rc "$what: init --print-grants" 0 "d${N_ROLE}_grants" --db "$DB" init --print-grants "$role"
    [ -s "$WORK/d${N_ROLE}_grants.out" ] || fail "$what: no grants printed"
    if psql "$owner_db" -qX -v ON_ERROR_STOP=1 -f "$WORK/d${N_ROLE}_grants.out" >/dev/null 2>"$WORK/d$N_ROLE.apply"; then
        ok "$what: the printed grants apply with ON_ERROR_STOP as the owner"
    else
        fail "$what: the printed grants do not apply: $(grep -m1 ERROR "$WORK/d$N_ROLE.apply")"
    fi
    local as_role="$BASE dbname=$PDB user=$role"
    $drift
    expect_rc "$what: reconcile as $role with exactly the printed grants" 0 "d${N_ROLE}_rec" --db "$as_role" reconcile
    $drift
    expect_rc "$what: run --once as $role with exactly the printed grants" 0 "d${N_ROLE}_once" \
        --db "$as_role" run --once --lock-id 4712 --metrics-addr off
    if [ "$drift" = platform_drift ]; then
        local left
        left=$(pf_not_converged | wc -l)
        [ "$left" -eq 0 ] && ok "$what: converged as $role" || fail "$what: $left organization(s) not converged as $role"
    fi
    [ "$(grep -c 'permission denied' "$WORK/d${N_ROLE}_rec.err" "$WORK/d${N_ROLE}_once.out" "$WORK/d${N_ROLE}_once.err" | awk -F: '{s += $2} END {print s}')" -eq 0 ] ||
        fail "$what: permission denied: $(grep -h -m1 'permission denied' "$WORK/d${N_ROLE}_rec.err" "$WORK/d${N_ROLE}_once.out" "$WORK/d${N_ROLE}_once.err" | head -n 1)"
}
platform_drift() { # a new qualifying organization, and one existing organization loses the user
    pf_template_new "$(pf_org_create "drift-$(pf_uuid | cut -c1-8)")" web "small=1" >/dev/null
    pf_sql -c "DELETE FROM organization_members WHERE user_id = '$PF_PREBUILDS_USER'
               AND organization_id = (SELECT organization_id FROM organization_members
                                      WHERE user_id = '$PF_PREBUILDS_USER' LIMIT 1)" >/dev/null
}
own_drift() { "$BIN" --db "$DB" member remove --org "seed1-org-0000001" >/dev/null 2>&1; }

new_platform
oq "$PDB" "DROP TABLE site_configs"
pf_run_all d0 >/dev/null
grants_state "platform database, nothing installed, no site_configs" "$(own "$PDB") user=$OWNER" platform_drift

new_platform
pf_run_all d1 >/dev/null
oq "$PDB" "INSERT INTO site_configs VALUES ('prebuilds_settings', '{\"reconciliation_paused\": false}')"
grants_state "platform database with site_configs, nothing installed" "$(own "$PDB") user=$OWNER" platform_drift

new_platform
pf_run_all d2 >/dev/null
run_pb d2_init --db "$DB" init --summary
grants_state "platform database with the summary" "$(own "$PDB") user=$OWNER" platform_drift

new_platform
pf_run_all d3 >/dev/null
run_pb d3_init --db "$DB" init --triggers
grants_state "platform database with the notify triggers" "$(own "$PDB") user=$OWNER" platform_drift

new_platform
pf_run_all d4 >/dev/null
run_pb d4_init --db "$DB" init --recommended-indexes
run_pb d4_init --db "$DB" init --summary --triggers
grants_state "platform database with everything installed" "$(own "$PDB") user=$OWNER" platform_drift

new_empty
run_pb d5_init --db "$DB" init --triggers
[ "$RC" -eq 0 ] || fail "init on an empty database: $(said)"
run_pb d5_seed --db "$DB" seed --orgs 5 --prebuilds-fraction 1 --drift-fraction 1
grants_state "our own schema (prebuilds init on an empty database)" "$(own "$PDB")" own_drift
finish
