/* SQLite backend, data commands: create, list and remove objects, find an organization,
 * and the deterministic seed. Not used by a reconcile pass. */
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

/* "create organization \"acme\"": the object in messages. */
static void create_what(pb_obj_kind kind, const char *name, char *what, size_t len)
{
    static const char *const words[] = {[PB_OBJ_ORG] = "organization",
                                        [PB_OBJ_TEMPLATE] = "template",
                                        [PB_OBJ_VERSION] = "template version",
                                        [PB_OBJ_PRESET] = "preset"};
    (void)snprintf(what, len, "create %s \"%.100s\"", words[kind], name);
}

int pb__sq_create(pb_store *base, pb_obj_kind kind, const char *id, const char *parent_id,
                  const char *name, int64_t desired, const char *created_by, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    if (kind < PB_OBJ_ORG || kind > PB_OBJ_PRESET)
        return pb__err_set(err, PB_EINVAL, "create: unknown object kind");
    char desired_buf[32], what[160];
    (void)snprintf(desired_buf, sizeof(desired_buf), "%" PRId64, desired);
    const char *params[4] = {id, kind == PB_OBJ_ORG ? name : parent_id, name,
                             kind == PB_OBJ_PRESET ? (desired >= 0 ? desired_buf : NULL)
                                                   : created_by};
    create_what(kind, name, what, sizeof(what));
    int changes = 0;
    int rc = pb__sq_require_own(s, what, err);
    if (rc != 0)
        return rc;
    rc = pb__sq_exec_bound(s, admin_create[kind].sql, params, admin_create[kind].n_params, &changes,
                           what, err);
    if (rc == 0 && changes == 0)
        rc = pb__err_set(err, PB_ENOTFOUND, "%s: template %s not found", what, parent_id);
    if (rc == PB_ECONFLICT && err != NULL)
        (void)pb__err_set(err, rc, "%s: %s", what,
                          strstr(err->msg, "FOREIGN KEY") ? "parent or creating user not found"
                                                          : "already exists");
    return rc;
}

int pb__sq_list(pb_store *base, pb_obj_kind kind, const char *parent_id, pb_obj_cb cb, void *arg,
                pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    if (kind < PB_OBJ_ORG || kind > PB_OBJ_PRESET)
        return pb__err_set(err, PB_EINVAL, "list: unknown object kind");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, admin_list[kind], -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pb__sq_map_error(s, rc, "list", err);
    if (parent_id != NULL)
        (void)sqlite3_bind_text(st, 1, parent_id, -1, SQLITE_STATIC);
    pb__sq_count_statement(s);
    rc = 0;
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = pb__sq_map_error(s, step, "list", err);
            break;
        }
        pb_obj_row row = {
            .id = pb__sq_col_text(st, 0),
            .parent_id = sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : pb__sq_col_text(st, 1),
            .name = pb__sq_col_text(st, 2),
            .extra = sqlite3_column_type(st, 3) == SQLITE_NULL ? NULL : pb__sq_col_text(st, 3),
        };
        if ((rc = cb(&row, arg)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

int pb__sq_remove(pb_store *base, const pb_target *t, pb_row_kind kind, const char *org_id,
                  size_t *n_removed, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    const char *params[3] = {t->user_id, org_id, t->group_name};
    const admin_sql *q = kind == PB_ROW_MEMBER         ? &admin_remove_member
                         : kind == PB_ROW_GROUP_MEMBER ? &admin_remove_group_member
                         : kind == PB_ROW_GROUP        ? &admin_remove_group
                                                       : NULL;
    if (q == NULL)
        return pb__err_set(err, PB_EINVAL, "remove: unknown row kind");
    int changes = 0;
    int rc = pb__sq_require_own(s, "remove", err);
    if (rc == 0)
        rc = pb__sq_exec_bound(s, q->sql, params, q->n_params, &changes, "remove", err);
    if (rc == 0)
        *n_removed = (size_t)changes;
    return rc;
}

int pb__sq_admin_check(pb_store *base, const char *what, pb_err *err)
{
    return pb__sq_require_own((sqlite_store *)base, what, err);
}

int pb__sq_resolve(pb_store *base, pb_obj_kind kind, const char *ref, const pb_ref_scope *scope,
                   char out[PB_UUID_LEN + 1], pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    if (kind != PB_OBJ_ORG && kind != PB_OBJ_TEMPLATE && kind != PB_OBJ_VERSION)
        return pb__err_set(err, PB_EINVAL, "resolve: unsupported object kind");
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, admin_resolve[kind].sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pb__sq_map_error(s, rc, "find object", err);
    const char *p[3] = {ref, scope->org_id, scope->template_id};
    for (int i = 0; i < admin_resolve[kind].n_params; i++)
        if (p[i] != NULL)
            (void)sqlite3_bind_text(st, i + 1, p[i], -1, SQLITE_STATIC);
    pb__sq_count_statement(s);
    pb__ref_row rows[PB__REF_MAX + 1];
    size_t n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < PB__REF_MAX + 1) {
        pb__strlcpy(rows[n].id, pb__sq_col_text(st, 0), sizeof(rows[n].id));
        pb__strlcpy(rows[n].name, pb__sq_col_text(st, 1), sizeof(rows[n].name));
        pb__strlcpy(rows[n].parent, pb__sq_col_text(st, 2), sizeof(rows[n].parent));
        n++;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = pb__sq_map_error(s, rc, "find object", err);
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_finalize(st);
    return pb__ref_decide(kind, ref, rows, n, out, err);
}

/* Our own schema, and no organization of this --seed yet. */
static int seed_check(sqlite_store *s, const pb_seed_opts *o, pb_err *err)
{
    int rc = pb__sq_require_own(s, "seed", err);
    if (rc != 0 || o->orgs == 0)
        return rc;
    char first[48];
    int n = 0;
    (void)snprintf(first, sizeof(first), "seed%u-org-0000000", o->seed);
    if ((rc = pb__sq_query_int(s, "SELECT count(*) FROM organizations WHERE name = ?1", first, &n,
                               err)) != 0)
        return rc;
    if (n > 0)
        return pb__err_set(err, PB_ECONFLICT,
                           "seed: the data set of --seed %u is here already (organization \"%s\" "
                           "exists); seed again with another --seed",
                           o->seed, first);
    return 0;
}

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
    int rc = seed_check(sd.s, o, err);
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
