/* PostgreSQL backend, data commands: create, list and remove objects, find an
 * organization, and the server-side seed. Not used by a reconcile pass. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

/* ---- administration ---- */

int pb__pg_create(pb_store *base, pb_obj_kind kind, const char *id, const char *parent_id,
                  const char *name, int64_t desired, const char *created_by, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    char desired_buf[32];
    const char *desired_txt = NULL;
    if (desired >= 0) {
        (void)snprintf(desired_buf, sizeof(desired_buf), "%" PRId64, desired);
        desired_txt = desired_buf;
    }
    /* $1 id, $2 parent (or name for organizations), $3 name, $4 creator or desired */
    const char *params[4] = {id, parent_id, name, created_by};
    int n_params = 4;
    char what[160];
    const char *sql;
    switch (kind) {
    case PB_OBJ_ORG:
        params[1] = name;
        n_params = 2;
        sql = "INSERT INTO organizations (id, name, display_name, description, created_at,"
              " updated_at) VALUES ($1::uuid, $2, $2, '', now(), now())";
        (void)snprintf(what, sizeof(what), "create organization \"%.100s\"", name);
        break;
    case PB_OBJ_TEMPLATE:
        sql = "INSERT INTO templates (id, organization_id, name, provisioner, active_version_id,"
              " created_by, created_at, updated_at) VALUES ($1::uuid, $2::uuid, $3, 'terraform',"
              " '00000000-0000-0000-0000-000000000000', $4::uuid, now(), now())";
        (void)snprintf(what, sizeof(what), "create template \"%.100s\"", name);
        break;
    case PB_OBJ_VERSION:
        sql = "INSERT INTO template_versions (id, template_id, organization_id, name, readme,"
              " job_id, created_by, created_at, updated_at)"
              " SELECT $1::uuid, t.id, t.organization_id, $3, '', gen_random_uuid(), $4::uuid,"
              " now(), now() FROM templates t WHERE t.id = $2::uuid";
        (void)snprintf(what, sizeof(what), "create template version \"%.100s\"", name);
        break;
    case PB_OBJ_PRESET:
        params[3] = desired_txt;
        sql = "INSERT INTO template_version_presets (id, template_version_id, name,"
              " desired_instances) VALUES ($1::uuid, $2::uuid, $3, $4::integer)";
        (void)snprintf(what, sizeof(what), "create preset \"%.100s\"", name);
        break;
    default:
        return pb__err_set(err, PB_EINVAL, "create: unknown object kind");
    }
    PGresult *res = NULL;
    int rc = pb__pg_exec_params(s, sql, n_params, params, &res, what, err);
    if (rc == 0 && strcmp(PQcmdTuples(res), "0") == 0)
        rc = pb__err_set(err, PB_ENOTFOUND, "%s: template %s not found", what, parent_id);
    PQclear(res);
    if (rc == PB_ECONFLICT && err != NULL)
        (void)pb__err_set(err, rc, "%s: %s", what,
                          strcmp(err->sqlstate, "23503") == 0 ? "parent or creating user not found"
                                                              : "already exists");
    return rc;
}

int pb__pg_list(pb_store *base, pb_obj_kind kind, const char *parent_id, pb_obj_cb cb, void *arg,
                pb_err *err)
{
    pg_store *s = (pg_store *)base;
    const char *sql;
    switch (kind) {
    case PB_OBJ_ORG:
        sql = "SELECT id, NULL, name, NULL FROM organizations WHERE NOT deleted"
              " AND ($1::uuid IS NULL OR id = $1::uuid) ORDER BY name, id";
        break;
    case PB_OBJ_TEMPLATE:
        sql = "SELECT id, organization_id, name, NULL FROM templates WHERE NOT deleted"
              " AND ($1::uuid IS NULL OR organization_id = $1::uuid)"
              " ORDER BY organization_id, name, id";
        break;
    case PB_OBJ_VERSION:
        sql = "SELECT id, template_id, name, NULL FROM template_versions"
              " WHERE ($1::uuid IS NULL OR template_id = $1::uuid) ORDER BY template_id, name, id";
        break;
    case PB_OBJ_PRESET:
        sql = "SELECT id, template_version_id, name, coalesce(desired_instances::text, '')"
              " FROM template_version_presets"
              " WHERE ($1::uuid IS NULL OR template_version_id = $1::uuid)"
              " ORDER BY template_version_id, name, id";
        break;
    default:
        return pb__err_set(err, PB_EINVAL, "list: unknown object kind");
    }
    PGresult *res = NULL;
    const char *p[1] = {parent_id};
    int rc = pb__pg_exec_params(s, sql, 1, p, &res, "list", err);
    if (rc != 0)
        return rc;
    for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
        pb_obj_row row = {
            .id = PQgetvalue(res, r, 0),
            .parent_id = PQgetisnull(res, r, 1) ? NULL : PQgetvalue(res, r, 1),
            .name = PQgetvalue(res, r, 2),
            .extra = PQgetisnull(res, r, 3) ? NULL : PQgetvalue(res, r, 3),
        };
        rc = cb(&row, arg);
    }
    PQclear(res);
    return rc;
}

int pb__pg_remove(pb_store *base, const pb_target *t, pb_row_kind kind, const char *org_id,
                  size_t *n_removed, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    const char *params[3] = {t->user_id, org_id, t->group_name};
    PGresult *res = NULL;
    int rc;
    if (kind == PB_ROW_MEMBER)
        rc = pb__pg_exec_params(s,
                                "DELETE FROM organization_members WHERE user_id = $1::uuid"
                                " AND organization_id = $2::uuid",
                                2, params, &res, "remove organization membership", err);
    else if (kind == PB_ROW_GROUP_MEMBER)
        rc = pb__pg_exec_params(s,
                                "DELETE FROM group_members WHERE user_id = $1::uuid AND group_id IN"
                                " (SELECT id FROM groups WHERE organization_id = $2::uuid"
                                " AND name = $3)",
                                3, params, &res, "remove group membership", err);
    else if (kind == PB_ROW_GROUP)
        rc = pb__pg_exec_params(s,
                                "DELETE FROM groups WHERE $1::uuid IS NOT NULL"
                                " AND organization_id = $2::uuid AND name = $3",
                                3, params, &res, "remove group", err);
    else
        return pb__err_set(err, PB_EINVAL, "remove: unknown row kind");
    if (rc == 0)
        *n_removed = (size_t)strtoul(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return rc;
}

int pb__pg_find_org(pb_store *base, const char *id_or_name, char out[PB_UUID_LEN + 1], pb_err *err)
{
    pg_store *s = (pg_store *)base;
    const char *p[1] = {id_or_name};
    PGresult *res = NULL;
    int rc =
        pb__pg_exec_params(s,
                           "SELECT id FROM organizations WHERE NOT deleted AND"
                           " (id::text = lower($1) OR lower(name) = lower($1)) ORDER BY id LIMIT 1",
                           1, p, &res, "find organization", err);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 0)
        rc = pb__err_set(err, PB_ENOTFOUND, "organization \"%.100s\" not found", id_or_name);
    else
        pb__strlcpy(out, PQgetvalue(res, 0, 0), PB_UUID_LEN + 1);
    PQclear(res);
    return rc;
}

/* ---- seed ---- */

/* Server-side generation: the same shape and the same exact counts as the SQLite seed
 * (floor arithmetic spreads organizations evenly), at a fraction of the round trips. */
int pb__pg_seed(pb_store *base, const pb_target *t, const pb_seed_opts *o, pb_seed_result *res,
                pb_err *err)
{
    pg_store *s = (pg_store *)base;
    char seed[16], orgs[24], tpo[24], vpt[24], ppv[24], pf[40], df[40];
    (void)snprintf(seed, sizeof(seed), "%u", o->seed);
    (void)snprintf(orgs, sizeof(orgs), "%" PRId64, o->orgs);
    (void)snprintf(tpo, sizeof(tpo), "%" PRId64, o->templates_per_org);
    (void)snprintf(vpt, sizeof(vpt), "%" PRId64, o->versions_per_template);
    (void)snprintf(ppv, sizeof(ppv), "%" PRId64, o->presets_per_version);
    (void)snprintf(pf, sizeof(pf), "%.17g", o->prebuilds_fraction);
    (void)snprintf(df, sizeof(df), "%.17g", o->drift_fraction);
    const char *p[9] = {seed, orgs, tpo, vpt, ppv, pf, df, t->user_id, t->group_name};
    const char *gdn = t->group_display_name;
    int rc;
    /* Per organization i: whether it has prebuilds, its index k among those, whether
     * it drifted and (by the number of drifted before it) which rows it misses. */
    static const char *const org_cte =
        "WITH args AS (SELECT $8::uuid AS user_id, $9::text AS group_name,"
        "  $10::text AS group_display_name),"
        " org AS ("
        " SELECT i, md5('pb-seed:' || $1 || ':org:' || i)::uuid AS id,"
        "  floor((i + 1) * $6::float8) > floor(i * $6::float8) AND $3::int > 0"
        "   AND $4::int > 0 AND $5::int > 0 AS prebuilds,"
        "  floor(i * $6::float8)::bigint AS k"
        " FROM generate_series(0, $2::bigint - 1) AS i),"
        " pre AS ("
        " SELECT org.*, floor((k + 1) * $7::float8) > floor(k * $7::float8) AS drifted,"
        "  (floor(k * $7::float8)::bigint % 4)::int AS variant"
        " FROM org WHERE prebuilds),"
        " miss AS ("
        " SELECT pre.*, drifted AND variant IN (0, 1) AS no_member,"
        "  drifted AND variant IN (0, 2) AS no_group,"
        "  drifted AND variant IN (0, 2, 3) AS no_group_member FROM pre) ";
    static const char *const steps[][2] = {
        {"seed organizations",
         "INSERT INTO organizations (id, name, display_name, description, created_at,"
         " updated_at) SELECT id, 'seed' || $1 || '-org-' || lpad(i::text, 7, '0'),"
         " 'seed' || $1 || '-org-' || lpad(i::text, 7, '0'), '', now(), now() FROM org"},
        {"seed templates",
         "INSERT INTO templates (id, organization_id, name, provisioner, active_version_id,"
         " created_by, created_at, updated_at)"
         " SELECT md5('pb-seed:' || $1 || ':tpl:' || i || ':' || ti)::uuid, org.id,"
         " 'template-' || ti, 'terraform', '00000000-0000-0000-0000-000000000000',"
         " $8::uuid, now(), now() FROM org, generate_series(0, $3::int - 1) AS ti"},
        {"seed template versions",
         "INSERT INTO template_versions (id, template_id, organization_id, name, readme, job_id,"
         " created_by, created_at, updated_at, archived)"
         " SELECT md5('pb-seed:' || $1 || ':ver:' || i || ':' || ti || ':' || vi)::uuid,"
         " md5('pb-seed:' || $1 || ':tpl:' || i || ':' || ti)::uuid, org.id, 'v' || vi, '',"
         " md5('pb-seed:' || $1 || ':job:' || i || ':' || ti || ':' || vi)::uuid, $8::uuid,"
         " now(), now(), vi + 1 < $4::int FROM org, generate_series(0, $3::int - 1) AS ti,"
         " generate_series(0, $4::int - 1) AS vi"},
        {"seed presets",
         "INSERT INTO template_version_presets (id, template_version_id, name, created_at,"
         " desired_instances)"
         " SELECT md5('pb-seed:' || $1 || ':pre:' || i || ':' || ti || ':' || vi || ':' ||"
         " pi)::uuid, md5('pb-seed:' || $1 || ':ver:' || i || ':' || ti || ':' || vi)::uuid,"
         " 'preset-' || pi, now(), CASE WHEN prebuilds AND pi = 0 THEN 1 END"
         " FROM org, generate_series(0, $3::int - 1) AS ti, generate_series(0, $4::int - 1) AS vi,"
         " generate_series(0, $5::int - 1) AS pi"},
        {"seed memberships",
         "INSERT INTO organization_members (organization_id, user_id, created_at, updated_at,"
         " roles) SELECT id, $8::uuid, now(), now(), '{}'::text[] FROM miss WHERE NOT no_member"},
        {"seed groups", "INSERT INTO groups (id, name, organization_id, display_name)"
                        " SELECT md5('pb-seed:' || $1 || ':grp:' || i)::uuid, $9, id, $10 FROM miss"
                        " WHERE NOT no_group"},
        {"seed group memberships",
         "INSERT INTO group_members (user_id, group_id)"
         " SELECT $8::uuid, md5('pb-seed:' || $1 || ':grp:' || i)::uuid FROM miss"
         " WHERE NOT no_group_member"},
    };
    if ((rc = pb__pg_exec_simple(s, "BEGIN", "seed", err)) != 0)
        return rc;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        size_t len = strlen(org_cte) + strlen(steps[i][1]) + 1;
        char *sql = pb__malloc(len);
        if (sql == NULL) {
            rc = pb__err_set(err, PB_ENOMEM, "%s: out of memory", steps[i][0]);
            goto fail;
        }
        (void)snprintf(sql, len, "%s%s", org_cte, steps[i][1]);
        const char *pp[10] = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], gdn};
        PGresult *r = NULL;
        rc = pb__pg_exec_params(s, sql, 10, pp, &r, steps[i][0], err);
        pb__free(sql);
        if (rc != 0)
            goto fail;
        int64_t n = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        if (i == 0)
            res->orgs = n;
        else if (i == 1)
            res->templates = n;
        else if (i == 2)
            res->versions = n;
        else if (i == 3)
            res->presets = n;
    }
    PGresult *r = NULL;
    const char *pc[7] = {p[0], p[1], p[2], p[3], p[4], p[5], p[6]};
    rc = pb__pg_exec_params(
        s,
        "WITH org AS (SELECT i, floor((i + 1) * $6::float8) > floor(i * $6::float8)"
        " AND $3::int > 0 AND $4::int > 0 AND $5::int > 0 AS prebuilds,"
        " floor(i * $6::float8)::bigint AS k, $1::text AS seed"
        " FROM generate_series(0, $2::bigint - 1) AS i)"
        " SELECT count(*), count(*) FILTER (WHERE floor((k + 1) * $7::float8) >"
        " floor(k * $7::float8)) FROM org WHERE prebuilds",
        7, pc, &r, "seed", err);
    if (rc != 0)
        goto fail;
    res->prebuild_orgs = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    res->drifted_orgs = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if ((rc = pb__pg_exec_simple(s, "COMMIT", "seed", err)) != 0)
        goto fail;
    /* Fold what the triggers logged for the new presets into the summary, so the first
     * passes over a fresh data set are the converged ones (a database without the summary
     * has nothing to fold). */
    if (pb__pg_fold(base, err) != 0 && err->code != PB_ENOSCHEMA)
        return err->code;
    /* Fresh statistics, so the planner sees the new data at once. */
    (void)pb__pg_exec_simple(s,
                             "ANALYZE organizations, templates, template_versions,"
                             " template_version_presets, organization_members, groups,"
                             " group_members",
                             "analyze", err);
    pb_err_clear(err);
    return 0;
fail:
    pb__pg_rollback_quietly(s);
    memset(res, 0, sizeof(*res));
    return rc;
}
