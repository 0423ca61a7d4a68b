/* SQLite backend, data commands: the statements of admin_sql.h in SQLite's words, the
 * primitives src/lib/admin.c runs them with, and the seed. Not used by a pass. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sq.h"

/* ---- administration: the statements of admin_sql.h, in SQLite's words ---- */

#define SQL_P(n)       "?" #n
#define SQL_ID(n)      "?" #n
#define SQL_INT(n)     "CAST(?" #n " AS INTEGER)"
#define SQL_AS_TEXT(c) c
#define SQL_FALSE      "0"
#include "admin_sql.h"

/* The data commands' two primitives (src/lib/admin.c runs the commands over them). */

typedef struct cols_ctx {
    pb__cols_cb cb;
    void *arg;
} cols_ctx;

static int cols_row(sqlite3_stmt *st, void *arg)
{
    const cols_ctx *c = arg;
    const char *cols[4] = {NULL, NULL, NULL, NULL};
    int n_cols = sqlite3_column_count(st);
    for (int i = 0; i < n_cols && i < 4; i++)
        cols[i] = sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : pb__sq_col_text(st, i);
    return c->cb(cols, c->arg);
}
static int admin_exec(pb_store *base, const pb__stmt *q, const char *const *params,
                      int64_t *changes, bool *missing_ref, const char *what, pb_err *err)
{
    int n = 0;
    int rc = pb__sq_exec_bound((sqlite_store *)base, q->sql, params, q->n_params, &n, what, err);
    *changes = n;
    *missing_ref =
        rc == PB_ECONFLICT && err != NULL && err->db_code == SQLITE_CONSTRAINT_FOREIGNKEY;
    return rc;
}

static int admin_rows(pb_store *base, const pb__stmt *q, const char *const *params, pb__cols_cb cb,
                      void *arg, const char *what, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, q->sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pb__sq_map_error(s, rc, what, err);
    for (int i = 0; i < q->n_params; i++)
        if (params[i] != NULL)
            (void)sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC);
    cols_ctx c = {cb, arg};
    rc = pb__sq_each_row(s, st, cols_row, &c, what, err);
    sqlite3_finalize(st);
    return rc;
}

static int admin_check(pb_store *base, const char *what, pb_err *err)
{
    return pb__sq_require_own((sqlite_store *)base, what, err);
}

const pb__admin_ops pb__sq_admin_ops = {&admin_sql_set, admin_exec, admin_rows, admin_check};

#define SEED_STMTS 7

/* The seed's state: its statements (prepared once), its clock, its counts. */
typedef struct seeder {
    sqlite_store *s;
    const pb_target *t;
    const pb_seed_opts *o;
    sqlite3_stmt *st[SEED_STMTS];
    char now[32];
    pb_seed_result *res;
    pb_err *err;
} seeder;

/* The id PostgreSQL's seed makes on the server: md5('pb-seed:SEED:KIND:i[:j...]')::uuid. */
static void seed_id(const seeder *sd, const char *kind, const int64_t *ix, int n,
                    char out[PB_UUID_LEN + 1])
{
    char text[128];
    int used = snprintf(text, sizeof(text), "pb-seed:%u:%s", sd->o->seed, kind);
    for (int i = 0; i < n && used > 0 && (size_t)used < sizeof(text); i++)
        used += snprintf(text + used, sizeof(text) - (size_t)used, ":%" PRId64, ix[i]);
    pb__md5_uuid(text, out);
}

/* One row: text parameters (NULL binds NULL; SQLite's column affinity makes numbers). */
static int seed_row(seeder *sd, int which, const char *what, const char *const *v, int n)
{
    sqlite3_stmt *q = sd->st[which];
    for (int i = 0; i < n; i++) {
        if (v[i] == NULL)
            (void)sqlite3_bind_null(q, i + 1);
        else
            (void)sqlite3_bind_text(q, i + 1, v[i], -1, SQLITE_TRANSIENT);
    }
    int rc = sqlite3_step(q);
    int code = rc == SQLITE_DONE ? 0 : pb__sq_map_error(sd->s, rc, what, sd->err);
    (void)sqlite3_reset(q);
    (void)sqlite3_clear_bindings(q);
    return code;
}

/* An organization's templates, versions and presets; older versions archived (archived
 * versions still count), only the first preset of each version configured. */
static int seed_templates(seeder *sd, int64_t i, const char *org_id, bool prebuilds)
{
    const pb_seed_opts *o = sd->o;
    char tpl[PB_UUID_LEN + 1], ver[PB_UUID_LEN + 1], job[PB_UUID_LEN + 1], pre[PB_UUID_LEN + 1];
    char name[32];
    int rc = 0;
    for (int64_t ti = 0; ti < o->templates_per_org && rc == 0; ti++) {
        int64_t ix[4] = {i, ti, 0, 0};
        seed_id(sd, "tpl", ix, 2, tpl);
        (void)snprintf(name, sizeof(name), "template-%" PRId64, ti);
        const char *tv[5] = {tpl, org_id, name, sd->t->user_id, sd->now};
        if ((rc = seed_row(sd, 1, "seed template", tv, 5)) != 0)
            break;
        sd->res->templates++;
        for (int64_t vi = 0; vi < o->versions_per_template && rc == 0; vi++) {
            ix[2] = vi;
            seed_id(sd, "ver", ix, 3, ver);
            seed_id(sd, "job", ix, 3, job);
            (void)snprintf(name, sizeof(name), "v%" PRId64, vi);
            const char *vv[8] = {ver,     tpl,
                                 org_id,  name,
                                 job,     sd->t->user_id,
                                 sd->now, vi + 1 < o->versions_per_template ? "1" : "0"};
            if ((rc = seed_row(sd, 2, "seed template version", vv, 8)) != 0)
                break;
            sd->res->versions++;
            for (int64_t pi = 0; pi < o->presets_per_version && rc == 0; pi++) {
                ix[3] = pi;
                seed_id(sd, "pre", ix, 4, pre);
                (void)snprintf(name, sizeof(name), "preset-%" PRId64, pi);
                const char *pv[5] = {pre, ver, name, sd->now, prebuilds && pi == 0 ? "1" : NULL};
                if ((rc = seed_row(sd, 3, "seed preset", pv, 5)) == 0)
                    sd->res->presets++;
            }
        }
    }
    return rc;
}

/* Drifted organizations miss, in turn: everything, the membership, the group (and so its
 * membership), or only the group membership. */
static int seed_memberships(seeder *sd, int64_t i, const char *org_id)
{
    const pb_seed_opts *o = sd->o;
    int64_t k = sd->res->prebuild_orgs++;
    bool drifted =
        (int64_t)((double)(k + 1) * o->drift_fraction) > (int64_t)((double)k * o->drift_fraction);
    static const unsigned variants[] = {
        PB_ROW_MEMBER | PB_ROW_GROUP | PB_ROW_GROUP_MEMBER,
        PB_ROW_MEMBER,
        PB_ROW_GROUP | PB_ROW_GROUP_MEMBER,
        PB_ROW_GROUP_MEMBER,
    };
    unsigned missing = drifted ? variants[sd->res->drifted_orgs++ % 4] : 0;
    int rc = 0;
    if (!(missing & PB_ROW_MEMBER)) {
        const char *mv[3] = {org_id, sd->t->user_id, sd->now};
        rc = seed_row(sd, 4, "seed membership", mv, 3);
    }
    char group_id[PB_UUID_LEN + 1];
    int64_t ix[1] = {i};
    seed_id(sd, "grp", ix, 1, group_id);
    if (rc == 0 && !(missing & PB_ROW_GROUP)) {
        const char *gv[4] = {group_id, sd->t->group_name, org_id, sd->t->group_display_name};
        rc = seed_row(sd, 5, "seed group", gv, 4);
    }
    if (rc == 0 && !(missing & (PB_ROW_GROUP | PB_ROW_GROUP_MEMBER))) {
        const char *gmv[2] = {sd->t->user_id, group_id};
        rc = seed_row(sd, 6, "seed group membership", gmv, 2);
    }
    return rc;
}

static int seed_orgs(seeder *sd)
{
    const pb_seed_opts *o = sd->o;
    char org_id[PB_UUID_LEN + 1], name[48];
    for (int64_t i = 0; i < o->orgs; i++) {
        /* Spread exactly floor(orgs * fraction) organizations evenly over the range. */
        bool prebuilds = (int64_t)((double)(i + 1) * o->prebuilds_fraction) >
                         (int64_t)((double)i * o->prebuilds_fraction);
        int64_t ix[1] = {i};
        seed_id(sd, "org", ix, 1, org_id);
        (void)snprintf(name, sizeof(name), "seed%u-org-%07" PRId64, o->seed, i);
        const char *ov[3] = {org_id, name, sd->now};
        int rc = seed_row(sd, 0, "seed organization", ov, 3);
        if (rc == 0)
            sd->res->orgs++;
        if (rc == 0)
            rc = seed_templates(sd, i, org_id, prebuilds);
        if (rc == 0 && prebuilds && o->templates_per_org > 0 && o->versions_per_template > 0 &&
            o->presets_per_version > 0)
            rc = seed_memberships(sd, i, org_id);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int pb__sq_seed(pb_store *base, const pb_target *t, const pb_seed_opts *o, pb_seed_result *res,
                pb_err *err)
{
    static const char *const sqls[SEED_STMTS] = {
        "INSERT INTO organizations (id, name, display_name, description, created_at,"
        " updated_at) VALUES (?1, ?2, ?2, '', ?3, ?3)",
        "INSERT INTO templates (id, organization_id, name, provisioner, active_version_id,"
        " created_by, created_at, updated_at) VALUES (?1, ?2, ?3, 'terraform',"
        " '00000000-0000-0000-0000-000000000000', ?4, ?5, ?5)",
        "INSERT INTO template_versions (id, template_id, organization_id, name, readme, job_id,"
        " created_by, created_at, updated_at, archived)"
        " VALUES (?1, ?2, ?3, ?4, '', ?5, ?6, ?7, ?7, ?8)",
        "INSERT INTO template_version_presets (id, template_version_id, name, created_at,"
        " desired_instances) VALUES (?1, ?2, ?3, ?4, ?5)",
        "INSERT INTO organization_members (organization_id, user_id, created_at, updated_at,"
        " roles) VALUES (?1, ?2, ?3, ?3, '[]')",
        "INSERT INTO groups (id, name, organization_id, display_name) VALUES (?1, ?2, ?3, ?4)",
        "INSERT INTO group_members (user_id, group_id) VALUES (?1, ?2)",
    };
    seeder sd = {.s = (sqlite_store *)base, .t = t, .o = o, .res = res, .err = err};
    int rc = pb__admin_seed_check(base, o, err);
    if (rc != 0)
        return rc;
    time_t tt = time(NULL);
    struct tm tm;
    (void)gmtime_r(&tt, &tm);
    (void)strftime(sd.now, sizeof(sd.now), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    for (int i = 0; i < SEED_STMTS && rc == 0; i++) {
        int prc = sqlite3_prepare_v2(sd.s->db, sqls[i], -1, &sd.st[i], NULL);
        if (prc != SQLITE_OK)
            rc = pb__sq_map_error(sd.s, prc, "seed", err);
    }
    if (rc == 0)
        rc = pb__sq_exec_script(sd.s, "BEGIN IMMEDIATE", "seed", err);
    if (rc == 0)
        rc = seed_orgs(&sd);
    if (rc == 0)
        rc = pb__sq_exec_script(sd.s, "COMMIT", "seed", err);
    if (rc != 0 && !sqlite3_get_autocommit(sd.s->db))
        (void)sqlite3_exec(sd.s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != 0)
        memset(res, 0, sizeof(*res));
    for (int i = 0; i < SEED_STMTS; i++)
        sqlite3_finalize(sd.st[i]);
    return rc;
}
