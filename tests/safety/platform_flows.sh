# shellcheck shell=bash
# The platform's own write flows, as it performs them, for tests to source:
#
#   . tests/safety/platform_flows.sh
#   PF_DB="host=... port=... dbname=D user=coder_owner"   # the platform's role
#   org=$(pf_org_create acme)
#   tpl=$(pf_template_new "$org" web "small=1 large=null")
#
# Every function runs its statements in one psql session as PF_DB, with ON_ERROR_STOP, and
# returns non-zero (with psql's message on stderr) when the platform's write fails. Functions
# that create a row print its id and nothing else. PRESETS arguments are space-separated
# NAME=DESIRED words; DESIRED is a number or "null" (a preset without prebuilds).
#
# The flows (see the production schema's comments):
#   new template     pf_version_import (version with template_id NULL, its presets in the same
#                    transaction), later pf_template_create (template row with that version
#                    active, then UPDATE template_versions SET template_id); pf_template_new
#                    does both.
#   new version      pf_version_new: version row with template_id set, then its presets one
#                    statement each, then the template's active version.
#   presets          pf_preset_desired, pf_preset_invalidate, pf_preset_add.
#   versions         pf_version_archive, pf_version_unarchive, pf_version_delete.
#   soft deletes     pf_template_soft_delete/_restore, pf_org_soft_delete/_restore (the
#                    platform empties the organization first, as its trigger demands),
#                    pf_user_soft_delete/_restore (the users trigger drops the memberships).
#   bulk             pf_multi_template_presets: several templates' presets in one transaction.
#   everything       pf_run_all PREFIX: each flow once, on fresh organizations.

PF_DB=${PF_DB:-}
PF_PREBUILDS_USER=${PF_PREBUILDS_USER:-c42fdf75-3097-471c-8c33-fb52454d81c0}
PF_ADMIN=${PF_ADMIN:-00000000-0000-4000-8000-00000000a001}
PF_DEFAULT_ORG=${PF_DEFAULT_ORG:-00000000-0000-4000-8000-0000000000d0}

pf_uuid() { cat /proc/sys/kernel/random/uuid; }

# Column names the flows use that a platform migration may rename (the platform's code follows
# its schema): PF_COL_DESIRED for template_version_presets.desired_instances, PF_COL_TDELETED
# for templates.deleted.
pf_c_desired() { echo "${PF_COL_DESIRED:-desired_instances}"; }
pf_c_tdeleted() { echo "${PF_COL_TDELETED:-deleted}"; }

# pf_sql [PSQL ARGS]: run SQL from stdin (or -c) as the platform; tuples only, unaligned.
pf_sql() {
    [ -n "$PF_DB" ] || {
        echo "platform_flows: PF_DB is not set" >&2
        return 2
    }
    psql "$PF_DB" -qXAt -v ON_ERROR_STOP=1 "$@"
}

# pf_presets_sql VERSION PRESETS: one INSERT per preset, as the platform's import writes them.
pf_presets_sql() {
    local v=$1 p name desired
    for p in $2; do
        name=${p%%=*}
        desired=${p#*=}
        [ "$desired" = "$p" ] && desired=null
        printf "INSERT INTO template_version_presets (id, template_version_id, name, %s," "$(pf_c_desired)"
        printf " invalidate_after_secs) VALUES ('%s', '%s', '%s', %s, 0);\n" "$(pf_uuid)" "$v" "$name" "$desired"
    done
}

# pf_org_create NAME [ID]: the organization, its everyone group (id = organization id) and the
# administrator as its first member, in one transaction. Prints the id.
pf_org_create() {
    local id=${2:-$(pf_uuid)}
    pf_sql <<SQL || return 1
BEGIN;
INSERT INTO organizations (id, name, display_name, description, created_at, updated_at,
                           default_org_member_roles)
VALUES ('$id', '$1', '$1', '', now(), now(), '{organization-workspace-access}');
INSERT INTO groups (id, name, organization_id, display_name, quota_allowance)
VALUES ('$id', 'Everyone', '$id', '', 0);
INSERT INTO organization_members (user_id, organization_id, created_at, updated_at, roles)
VALUES ('$PF_ADMIN', '$id', now(), now(), '{organization-admin}');
COMMIT;
SQL
    echo "$id"
}

# pf_version_import ORG NAME PRESETS: a version not attached to any template yet (what the
# platform imports before the template exists) and its presets, one transaction.
pf_version_import() {
    local v
    v=$(pf_uuid)
    {
        echo "BEGIN;"
        echo "INSERT INTO template_versions (id, template_id, organization_id, created_at, updated_at,"
        echo " name, readme, job_id, created_by) VALUES ('$v', NULL, '$1', now(), now(), '$2', '',"
        echo " '$(pf_uuid)', '$PF_ADMIN');"
        pf_presets_sql "$v" "$3"
        echo "COMMIT;"
    } | pf_sql || return 1
    echo "$v"
}

# pf_template_create ORG NAME VERSION: the template, with VERSION active, then the version
# attached to it (the moment the organization starts to qualify).
pf_template_create() {
    local t
    t=$(pf_uuid)
    pf_sql <<SQL || return 1
BEGIN;
INSERT INTO templates (id, created_at, updated_at, organization_id, name, provisioner,
                       active_version_id, created_by)
VALUES ('$t', now(), now(), '$1', '$2', 'terraform', '$3', '$PF_ADMIN');
UPDATE template_versions SET template_id = '$t', updated_at = now() WHERE id = '$3';
COMMIT;
SQL
    echo "$t"
}

# pf_template_new ORG NAME PRESETS: the whole new-template flow; prints the template id
# (pf_active_version TEMPLATE gives its version).
pf_template_new() {
    local v
    v=$(pf_version_import "$1" "$2-v1" "$3") || return 1
    pf_template_create "$1" "$2" "$v"
}

pf_active_version() { pf_sql -c "SELECT active_version_id FROM templates WHERE id = '$1'"; }

# pf_version_new TEMPLATE NAME PRESETS: a new version of an existing template (prints its id).
pf_version_new() {
    local v
    v=$(pf_uuid)
    {
        echo "INSERT INTO template_versions (id, template_id, organization_id, created_at, updated_at,"
        echo " name, readme, job_id, created_by) SELECT '$v', t.id, t.organization_id, now(), now(),"
        echo " '$2', '', '$(pf_uuid)', '$PF_ADMIN' FROM templates t WHERE t.id = '$1';"
        pf_presets_sql "$v" "$3"
        echo "UPDATE templates SET active_version_id = '$v', updated_at = now() WHERE id = '$1';"
    } | pf_sql || return 1
    echo "$v"
}

# pf_preset_add VERSION NAME DESIRED: one more preset on an existing version.
pf_preset_add() { pf_presets_sql "$1" "$2=$3" | pf_sql; }

# pf_preset_desired VERSION PRESET N|null: the platform changes desired_instances.
pf_preset_desired() {
    pf_sql -c "UPDATE template_version_presets SET $(pf_c_desired) = $3
               WHERE template_version_id = '$1' AND name = '$2'"
}

# pf_preset_invalidate VERSION PRESET: the platform marks a preset's prebuilds stale.
pf_preset_invalidate() {
    pf_sql -c "UPDATE template_version_presets SET last_invalidated_at = now()
               WHERE template_version_id = '$1' AND name = '$2'"
}

pf_version_archive() { pf_sql -c "UPDATE template_versions SET archived = true, updated_at = now() WHERE id = '$1'"; }
pf_version_unarchive() { pf_sql -c "UPDATE template_versions SET archived = false, updated_at = now() WHERE id = '$1'"; }
# Deleting a version cascades to its presets.
pf_version_delete() { pf_sql -c "DELETE FROM template_versions WHERE id = '$1'"; }

pf_template_soft_delete() { pf_sql -c "UPDATE templates SET $(pf_c_tdeleted) = true, updated_at = now() WHERE id = '$1'"; }
pf_template_restore() { pf_sql -c "UPDATE templates SET $(pf_c_tdeleted) = false, updated_at = now() WHERE id = '$1'"; }

# pf_org_soft_delete ORG: what the platform does to delete an organization. Its trigger refuses
# while templates are live, groups other than everyone exist or members other than one remain,
# so the platform deletes the templates first, then the other groups and members (ours among
# them), then flags the organization; each step its own statement, as the API does them.
pf_org_soft_delete() {
    pf_sql <<SQL
UPDATE templates SET $(pf_c_tdeleted) = true, updated_at = now() WHERE organization_id = '$1' AND NOT $(pf_c_tdeleted);
DELETE FROM groups WHERE organization_id = '$1' AND id <> '$1';
DELETE FROM organization_members WHERE organization_id = '$1' AND user_id <> '$PF_ADMIN';
UPDATE organizations SET deleted = true, updated_at = now() WHERE id = '$1';
SQL
}

# pf_org_restore ORG [TEMPLATE...]: the organization back, and the given templates with it.
pf_org_restore() {
    local org=$1 t
    shift
    {
        echo "BEGIN;"
        echo "UPDATE organizations SET deleted = false, updated_at = now() WHERE id = '$org';"
        for t in "$@"; do
            echo "UPDATE templates SET $(pf_c_tdeleted) = false, updated_at = now() WHERE id = '$t';"
        done
        echo "COMMIT;"
    } | pf_sql
}

# pf_user_soft_delete [USER]: the platform soft-deletes a user; its trigger on users removes the
# memberships (and, through organization_members' trigger, the group memberships).
pf_user_soft_delete() {
    pf_sql -c "UPDATE users SET deleted = true, updated_at = now() WHERE id = '${1:-$PF_PREBUILDS_USER}'"
}
pf_user_restore() {
    pf_sql -c "UPDATE users SET deleted = false, updated_at = now() WHERE id = '${1:-$PF_PREBUILDS_USER}'"
}

# pf_multi_template_presets TEMPLATE...: one transaction touching the presets of every given
# template's active version, in reverse order, then forward: a configured preset added to each,
# then every preset of the first template switched off and on again.
pf_multi_template_presets() {
    local t i n=$#
    local -a ts=("$@")
    {
        echo "BEGIN;"
        for ((i = n - 1; i >= 0; i--)); do
            t=${ts[$i]}
            echo "INSERT INTO template_version_presets (id, template_version_id, name, $(pf_c_desired))"
            echo " SELECT '$(pf_uuid)', active_version_id, 'bulk-$(pf_uuid | cut -c1-8)', $((i + 1))"
            echo " FROM templates WHERE id = '$t';"
        done
        for t in "$@"; do
            echo "UPDATE template_version_presets p SET $(pf_c_desired) = NULL FROM templates t"
            echo " WHERE t.id = '$t' AND p.template_version_id = t.active_version_id;"
            echo "UPDATE template_version_presets p SET $(pf_c_desired) = 2 FROM templates t"
            echo " WHERE t.id = '$t' AND p.template_version_id = t.active_version_id;"
        done
        echo "COMMIT;"
    } | pf_sql
}

# pf_run_all PREFIX: every flow once on fresh organizations whose names start with PREFIX, in
# the order the platform would. Leaves PREFIX-a, PREFIX-b (two templates each) and PREFIX-c
# qualifying; PREFIX-d (its only template deleted) and PREFIX-e (soft-deleted) not; PREFIX-f
# goes through delete and restore and qualifies again. Names in PF_SKIP (space-separated:
# template_delete org_delete user_delete) are left out. One line on stderr naming the failed
# step, and non-zero, on the first failure.
pf_run_all() {
    local p=$1 a b c d e f ta tb ta2 tb2 c_t td tf v1 v2 vdel
    _pf_step() {
        local what=$1
        shift
        "$@" >/dev/null || {
            echo "platform flow failed: $what" >&2
            return 1
        }
    }
    _pf_skip() { case " ${PF_SKIP:-} " in *" $1 "*) return 0 ;; esac; return 1; }
    a=$(pf_org_create "$p-a") || { echo "platform flow failed: create organization" >&2; return 1; }
    b=$(pf_org_create "$p-b") || return 1
    c=$(pf_org_create "$p-c") || return 1
    d=$(pf_org_create "$p-d") || return 1
    e=$(pf_org_create "$p-e") || return 1
    f=$(pf_org_create "$p-f") || return 1
    # new templates: import, then create and attach
    ta=$(pf_template_new "$a" web "small=1 large=null") || { echo "platform flow failed: new template" >&2; return 1; }
    v1=$(pf_active_version "$ta") || return 1
    tb=$(pf_template_new "$b" web "small=0") || return 1
    td=$(pf_template_new "$d" web "small=1") || return 1
    tf=$(pf_template_new "$f" web "small=1") || return 1
    pf_template_new "$e" web "small=1" >/dev/null || return 1
    # an imported version that no template has claimed yet: does not qualify c
    _pf_step "import an unattached version" pf_version_import "$c" "pending" "small=3" || return 1
    # new versions of existing templates
    v2=$(pf_version_new "$ta" v2 "small=2 medium=null") || { echo "platform flow failed: new version" >&2; return 1; }
    # presets: desired_instances changes, invalidation
    _pf_step "preset desired_instances update" pf_preset_desired "$v2" medium 4 || return 1
    _pf_step "preset switched off" pf_preset_desired "$v1" small null || return 1
    _pf_step "preset invalidated" pf_preset_invalidate "$v2" small || return 1
    _pf_step "preset added" pf_preset_add "$v1" extra 1 || return 1
    # versions: archive, unarchive, delete
    _pf_step "archive a version" pf_version_archive "$v1" || return 1
    _pf_step "unarchive a version" pf_version_unarchive "$v1" || return 1
    vdel=$(pf_version_new "$tb" doomed "small=5") || return 1
    pf_version_new "$tb" v3 "small=0" >/dev/null || return 1 # the deleted one is not active
    _pf_step "delete a version" pf_version_delete "$vdel" || return 1
    # several templates' presets in one transaction
    ta2=$(pf_template_new "$a" api "small=null") || return 1
    tb2=$(pf_template_new "$b" api "small=1") || return 1
    c_t=$(pf_template_new "$c" web "small=null") || return 1
    _pf_step "several templates' presets in one transaction" \
        pf_multi_template_presets "$ta" "$ta2" "$tb" "$tb2" "$c_t" || return 1
    if ! _pf_skip template_delete; then
        _pf_step "soft-delete a template" pf_template_soft_delete "$td" || return 1
        _pf_step "restore a template" pf_template_restore "$td" || return 1
        _pf_step "soft-delete a template again" pf_template_soft_delete "$td" || return 1
    fi
    if ! _pf_skip org_delete; then
        _pf_step "soft-delete an organization" pf_org_soft_delete "$e" || return 1
        _pf_step "soft-delete an organization to restore it" pf_org_soft_delete "$f" || return 1
        _pf_step "restore an organization and its template" pf_org_restore "$f" "$tf" || return 1
    fi
    if ! _pf_skip user_delete; then
        _pf_step "soft-delete the prebuilds user" pf_user_soft_delete || return 1
        _pf_step "restore the prebuilds user" pf_user_restore || return 1
    fi
    return 0
}

# pf_expected_qualifying: ids of the organizations that qualify, counted straight from the
# platform's tables by the rule (live organization, live template, any version, a preset with
# desired_instances set), one a line, sorted.
pf_expected_qualifying() {
    pf_sql -c "SELECT DISTINCT o.id FROM organizations o
               JOIN templates t ON t.organization_id = o.id AND NOT t.$(pf_c_tdeleted)
               JOIN template_versions tv ON tv.template_id = t.id
               JOIN template_version_presets p ON p.template_version_id = tv.id
               WHERE NOT o.deleted AND p.$(pf_c_desired) IS NOT NULL ORDER BY 1"
}

# pf_not_converged [GROUP_NAME]: qualifying organizations that miss the membership, the group or
# the group membership of the prebuilds user, one id a line (empty when converged).
pf_not_converged() {
    local g=${1:-coderprebuiltworkspaces}
    pf_sql -c "WITH q AS (SELECT DISTINCT o.id FROM organizations o
                 JOIN templates t ON t.organization_id = o.id AND NOT t.$(pf_c_tdeleted)
                 JOIN template_versions tv ON tv.template_id = t.id
                 JOIN template_version_presets p ON p.template_version_id = tv.id
                 WHERE NOT o.deleted AND p.$(pf_c_desired) IS NOT NULL)
               SELECT q.id FROM q WHERE NOT EXISTS (
                 SELECT 1 FROM organization_members m
                 JOIN groups g ON g.organization_id = m.organization_id AND g.name = '$g'
                 JOIN group_members gm ON gm.group_id = g.id AND gm.user_id = m.user_id
                 WHERE m.organization_id = q.id AND m.user_id = '$PF_PREBUILDS_USER')
               ORDER BY 1"
}

# pf_prebuilds_rows: how many rows the reconciler may have written (memberships of the prebuilds
# user, prebuilds groups, group memberships of the prebuilds user), as one number.
pf_prebuilds_rows() {
    local g=${1:-coderprebuiltworkspaces}
    pf_sql -c "SELECT (SELECT count(*) FROM organization_members WHERE user_id = '$PF_PREBUILDS_USER')
                    + (SELECT count(*) FROM groups WHERE name = '$g')
                    + (SELECT count(*) FROM group_members WHERE user_id = '$PF_PREBUILDS_USER')"
}
