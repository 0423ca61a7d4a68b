#!/usr/bin/env bash
# The platform keeps migrating its schema after prebuilds installed its index, summary and
# triggers: every ALTER the platform's role runs must still succeed (nothing of ours depends on
# a platform column), the platform's write flows must still succeed afterwards (our triggers
# never raise), and `prebuilds reconcile` must either work, and then converge every qualifying
# organization, or fail the documented way: one line on stderr, exit 2 to 6, never a signal.
# At the end `prebuilds uninstall` removes everything of ours.
# Usage: test_migrations.sh BINARY CONNINFO   (CONNINFO: a superuser on a running server)
BIN=$1
BASE=$2
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

new_platform
pf_run_all m0 >/dev/null || fail "platform flows before the install"

# Everything of ours, installed by a superuser (init switches to the owner role for it).
for what in --recommended-indexes --summary --triggers; do
    expect_rc "init $what as a superuser" 0 "init$what" --db "$DB" init "$what"
done
expect_rc "reconcile after the install" 0 reconcile0 --db "$DB" reconcile
check "converged after the install" test -z "$(pf_not_converged)"
[ -n "$(ours "$PDB")" ] || fail "nothing named prebuilds_* installed"

STEP=0
# alter DESCRIPTION SQL: the platform's role runs one migration (one transaction).
alter() {
    local what=$1 sql=$2
    if psql "$(own "$PDB") user=$OWNER" -qX -v ON_ERROR_STOP=1 -1 -c "$sql" \
        >/dev/null 2>"$WORK/alter.err"; then
        ok "migration succeeds: $what"
    else
        fail "migration refused: $what: $(head -n 1 "$WORK/alter.err")"
    fi
}
# after DESCRIPTION [converge]: the platform's flows, then reconcile (and, when asked and it
# worked, every qualifying organization converged).
after() {
    local what=$1 want=${2:-}
    STEP=$((STEP + 1))
    if pf_run_all "m$STEP" >/dev/null 2>"$WORK/flows.err"; then
        ok "platform flows after: $what"
    else
        fail "platform flows after $what: $(grep -v '^ERROR\|^DETAIL\|^CONTEXT\|^HINT\|^LINE\|^ *^\|^ *$' "$WORK/flows.err" | head -n 1) ($(grep -m1 '^ERROR' "$WORK/flows.err"))"
    fi
    expect_clean "reconcile after $what" "reconcile$STEP" --db "$DB" reconcile
    if [ "$RC" -eq 0 ] && [ "$want" = converge ]; then
        local left
        left=$(pf_not_converged | wc -l)
        [ "$left" -eq 0 ] && ok "converged after $what" ||
            fail "after $what: reconcile exited 0 but $left qualifying organization(s) not converged"
    fi
    expect_clean "init (check only) after $what" "check$STEP" --db "$DB" init
}

# 1. a new column on every table we read or write
for t in users organizations organization_members groups group_members templates \
    template_versions template_version_presets site_configs; do
    alter "add a column to $t" "ALTER TABLE $t ADD COLUMN migrated_$t text NOT NULL DEFAULT 'x'"
done
after "new columns" converge

# 2. columns we read change type
alter "desired_instances integer -> bigint" \
    "ALTER TABLE template_version_presets ALTER COLUMN desired_instances TYPE bigint"
after "desired_instances bigint" converge
alter "groups.name text -> varchar(255)" "ALTER TABLE groups ALTER COLUMN name TYPE varchar(255)"
alter "organization_members.user_id rewritten in place" \
    "ALTER TABLE organization_members ALTER COLUMN user_id TYPE uuid USING user_id::text::uuid"
alter "template_versions.template_id rewritten in place" \
    "ALTER TABLE template_versions ALTER COLUMN template_id TYPE uuid USING template_id::text::uuid"
alter "users.deleted rewritten in place" \
    "ALTER TABLE users ALTER COLUMN deleted TYPE boolean USING deleted::text::boolean"
after "type changes" converge

# 3. columns we read renamed, then renamed back (the platform's code follows its schema, so
# the flows use the new name meanwhile; the platform's own trigger on organizations reads
# templates.deleted, so organizations are not deleted while it is renamed)
alter "rename templates.deleted -> is_deleted" "ALTER TABLE templates RENAME COLUMN deleted TO is_deleted"
PF_COL_TDELETED=is_deleted PF_SKIP=org_delete after "templates.deleted renamed"
alter "rename templates.is_deleted -> deleted" "ALTER TABLE templates RENAME COLUMN is_deleted TO deleted"
after "templates.deleted renamed back" converge
alter "rename desired_instances -> desired_prebuild_instances" \
    "ALTER TABLE template_version_presets RENAME COLUMN desired_instances TO desired_prebuild_instances"
PF_COL_DESIRED=desired_prebuild_instances after "desired_instances renamed"
alter "rename desired_prebuild_instances -> desired_instances" \
    "ALTER TABLE template_version_presets RENAME COLUMN desired_prebuild_instances TO desired_instances"
after "desired_instances renamed back" converge
alter "rename template_versions.template_id -> tpl_id and back" \
    "ALTER TABLE template_versions RENAME COLUMN template_id TO tpl_id;
     ALTER TABLE template_versions RENAME COLUMN tpl_id TO template_id"
alter "rename groups.name -> group_name" "ALTER TABLE groups RENAME COLUMN name TO group_name"
expect_clean "reconcile while groups.name is renamed" reconcile_gname --db "$DB" reconcile
alter "rename groups.group_name -> name" "ALTER TABLE groups RENAME COLUMN group_name TO name"
after "groups.name renamed back" converge

# 4. columns we read dropped and added again, in one migration each (their data is gone, so
# the flows that follow configure new presets)
alter "drop and re-add template_version_presets.desired_instances" \
    "ALTER TABLE template_version_presets DROP COLUMN desired_instances;
     ALTER TABLE template_version_presets ADD COLUMN desired_instances integer"
after "desired_instances dropped and re-added" converge
alter "drop and re-add templates.deleted" \
    "ALTER TABLE templates DROP COLUMN deleted;
     ALTER TABLE templates ADD COLUMN deleted boolean NOT NULL DEFAULT false;
     CREATE UNIQUE INDEX templates_organization_id_name_idx ON templates (organization_id, lower(name))
         WHERE deleted = false"
after "templates.deleted dropped and re-added" converge
alter "drop and re-add organizations.deleted" \
    "ALTER TABLE organizations DROP COLUMN deleted;
     ALTER TABLE organizations ADD COLUMN deleted boolean NOT NULL DEFAULT false;
     CREATE UNIQUE INDEX idx_organization_name_lower ON organizations (lower(name)) WHERE deleted = false"
after "organizations.deleted dropped and re-added" converge
alter "drop and re-add template_versions.template_id" \
    "ALTER TABLE template_versions DROP COLUMN template_id;
     ALTER TABLE template_versions ADD COLUMN template_id uuid REFERENCES templates (id) ON DELETE CASCADE;
     ALTER TABLE template_versions ADD UNIQUE (template_id, name)"
after "template_versions.template_id dropped and re-added" converge
alter "drop and re-add groups.name" \
    "ALTER TABLE groups DROP COLUMN name;
     ALTER TABLE groups ADD COLUMN name text;
     UPDATE groups SET name = id::text;
     ALTER TABLE groups ALTER COLUMN name SET NOT NULL;
     ALTER TABLE groups ADD UNIQUE (name, organization_id)"
after "groups.name dropped and re-added"
# the site settings table replaced by the platform
alter "drop and re-create site_configs" \
    "DROP TABLE site_configs;
     CREATE TABLE site_configs (key varchar(256) NOT NULL UNIQUE, value text NOT NULL)"
after "site_configs re-created"

# 5. out again: everything of ours goes, the platform's tables stay
expect_rc "uninstall after the migrations" 0 uninstall --db "$DB" uninstall
left=$(ours "$PDB")
[ -z "$left" ] && ok "nothing named prebuilds_* left" || fail "left after uninstall: $(echo "$left" | tr '\n' ',')"
pf_run_all m_end >/dev/null && ok "platform flows after uninstall" || fail "platform flows after uninstall"
finish
