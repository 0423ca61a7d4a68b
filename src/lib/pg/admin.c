/* PostgreSQL backend, data commands: the statements of admin_sql.h in PostgreSQL's words, the
 * primitives src/lib/admin.c runs them with, and the server-side seed. Not used by a pass. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

/* ---- administration ---- */

/* The data commands write only to prebuilds' own schema (see admin.h). */
static int require_own(pg_store *s, const char *what, pb_err *err)
{
    int state = 0;
    int rc = pb__pg_query_int(s,
                              "SELECT CASE WHEN to_regclass('prebuilds_schema_migrations') IS NOT"
                              " NULL THEN 2 WHEN to_regclass('organizations') IS NOT NULL THEN 1"
                              " ELSE 0 END",
                              0, NULL, &state, what, err);
    if (rc != 0 || state == 2)
        return rc;
    if (state == 0)
        return pb__err_set(err, PB_ENOSCHEMA, "%s: schema missing: run 'prebuilds init'", what);
    return pb__err_set(err, PB_ESCHEMA,
                       "%s: this database was not created by prebuilds (it is the platform's): "
                       "the data commands only write to prebuilds' own schema",
                       what);
}

/* The statements of admin_sql.h, in PostgreSQL's words. */
#define SQL_P(n)       "$" #n
#define SQL_ID(n)      "$" #n "::uuid"
#define SQL_INT(n)     "$" #n "::integer"
#define SQL_AS_TEXT(c) c "::text"
#define SQL_FALSE      "false"
#define SQL_NOW        "now()"
#define SQL_UUID4      "gen_random_uuid()"
#include "admin_sql.h"

/* The data commands' two primitives (src/lib/admin.c runs the commands over them). */
static int admin_exec(pb_store *base, const pb__stmt *q, const char *const *params,
                      int64_t *changes, bool *missing_ref, const char *what, pb_err *err)
{
    PGresult *res = NULL;
    int rc = pb__pg_exec_params((pg_store *)base, q->sql, q->n_params, params, &res, what, err);
    if (rc == 0)
        *changes = strtoll(PQcmdTuples(res), NULL, 10);
    *missing_ref = rc == PB_ECONFLICT && err != NULL && strcmp(err->sqlstate, "23503") == 0;
    PQclear(res);
    return rc;
}

static int admin_rows(pb_store *base, const pb__stmt *q, const char *const *params, pb__cols_cb cb,
                      void *arg, const char *what, pb_err *err)
{
    PGresult *res = NULL;
    int rc = pb__pg_exec_params((pg_store *)base, q->sql, q->n_params, params, &res, what, err);
    int n_cols = rc == 0 ? PQnfields(res) : 0;
    for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
        const char *cols[4] = {NULL, NULL, NULL, NULL};
        for (int c = 0; c < n_cols && c < 4; c++)
            cols[c] = PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
        rc = cb(cols, arg);
    }
    PQclear(res);
    return rc;
}

static int admin_check(pb_store *base, const char *what, pb_err *err)
{
    return require_own((pg_store *)base, what, err);
}

const pb__admin_ops pb__pg_admin_ops = {&admin_sql_set, admin_exec, admin_rows, admin_check};

/* Server-side generation: the same shape and the same exact counts as the SQLite seed
 * (floor arithmetic spreads organizations evenly), at a fraction of the round trips. */
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

/* The steps, in one transaction: each INSERT ... SELECT behind the same CTE of organizations. */
static int seed_steps(pg_store *s, const char *const pp[10], pb_seed_result *res, pb_err *err)
{
    int64_t *counts[] = {&res->orgs, &res->templates, &res->versions, &res->presets};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        size_t len = strlen(org_cte) + strlen(steps[i][1]) + 1;
        char *sql = pb__malloc(len);
        if (sql == NULL)
            return pb__err_set(err, PB_ENOMEM, "%s: out of memory", steps[i][0]);
        (void)snprintf(sql, len, "%s%s", org_cte, steps[i][1]);
        PGresult *r = NULL;
        int rc = pb__pg_exec_params(s, sql, 10, pp, &r, steps[i][0], err);
        pb__free(sql);
        if (rc != 0)
            return rc;
        if (i < sizeof(counts) / sizeof(counts[0]))
            *counts[i] = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
    }
    PGresult *r = NULL;
    int rc = pb__pg_exec_params(
        s,
        "WITH org AS (SELECT i, floor((i + 1) * $6::float8) > floor(i * $6::float8)"
        " AND $3::int > 0 AND $4::int > 0 AND $5::int > 0 AS prebuilds,"
        " floor(i * $6::float8)::bigint AS k, $1::text AS seed"
        " FROM generate_series(0, $2::bigint - 1) AS i)"
        " SELECT count(*), count(*) FILTER (WHERE floor((k + 1) * $7::float8) >"
        " floor(k * $7::float8)) FROM org WHERE prebuilds",
        7, pp, &r, "seed", err);
    if (rc != 0)
        return rc;
    res->prebuild_orgs = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    res->drifted_orgs = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return 0;
}

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
    const char *pp[10] = {seed, orgs, tpo,        vpt,           ppv,
                          pf,   df,   t->user_id, t->group_name, t->group_display_name};
    int rc = pb__admin_seed_check(base, o, err);
    if (rc == 0)
        rc = pb__pg_exec_simple(s, "BEGIN", "seed", err);
    if (rc != 0)
        return rc;
    if ((rc = seed_steps(s, pp, res, err)) != 0 ||
        (rc = pb__pg_exec_simple(s, "COMMIT", "seed", err)) != 0) {
        pb__pg_rollback_quietly(s);
        memset(res, 0, sizeof(*res));
        return rc;
    }
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
}
