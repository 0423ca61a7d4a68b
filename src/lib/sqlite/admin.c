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

/* ---- administration ---- */

int pb__sq_create(pb_store *base, pb_obj_kind kind, const char *id, const char *parent_id,
                  const char *name, int64_t desired, const char *created_by, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    char desired_buf[32];
    const char *desired_txt = NULL;
    if (desired >= 0) {
        (void)snprintf(desired_buf, sizeof(desired_buf), "%" PRId64, desired);
        desired_txt = desired_buf;
    }
    const char *params[5] = {id, parent_id, name, created_by, desired_txt};
    char what[160];
    int changes = 0;
    const char *sql;
    switch (kind) {
    case PB_OBJ_ORG:
        params[1] = name;
        sql = "INSERT INTO organizations (id, name, display_name, description, created_at,"
              " updated_at) VALUES (?1, ?2, ?2, '', " SQL_NOW ", " SQL_NOW ")";
        (void)snprintf(what, sizeof(what), "create organization \"%.100s\"", name);
        break;
    case PB_OBJ_TEMPLATE:
        sql =
            "INSERT INTO templates (id, organization_id, name, provisioner, active_version_id,"
            " created_by, created_at, updated_at)"
            " VALUES (?1, ?2, ?3, 'terraform', '00000000-0000-0000-0000-000000000000', ?4, " SQL_NOW
            ", " SQL_NOW ")";
        (void)snprintf(what, sizeof(what), "create template \"%.100s\"", name);
        break;
    case PB_OBJ_VERSION:
        sql = "INSERT INTO template_versions (id, template_id, organization_id, name, readme,"
              " job_id, created_by, created_at, updated_at)"
              " SELECT ?1, t.id, t.organization_id, ?3, '', " SQL_UUID4 ", ?4, " SQL_NOW
              ", " SQL_NOW " FROM templates t WHERE t.id = ?2";
        (void)snprintf(what, sizeof(what), "create template version \"%.100s\"", name);
        break;
    case PB_OBJ_PRESET:
        sql = "INSERT INTO template_version_presets (id, template_version_id, name,"
              " desired_instances) VALUES (?1, ?2, ?3, CAST(?5 AS INTEGER))";
        (void)snprintf(what, sizeof(what), "create preset \"%.100s\"", name);
        break;
    default:
        return pb__err_set(err, PB_EINVAL, "create: unknown object kind");
    }
    int rc = pb__sq_exec_bound(s, sql, params, 5, &changes, what, err);
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
    const char *sql;
    switch (kind) {
    case PB_OBJ_ORG:
        sql = "SELECT id, NULL, name, NULL FROM organizations WHERE deleted = 0"
              " AND (?1 IS NULL OR id = ?1) ORDER BY name, id";
        break;
    case PB_OBJ_TEMPLATE:
        sql = "SELECT id, organization_id, name, NULL FROM templates WHERE deleted = 0"
              " AND (?1 IS NULL OR organization_id = ?1) ORDER BY organization_id, name, id";
        break;
    case PB_OBJ_VERSION:
        sql = "SELECT id, template_id, name, NULL FROM template_versions"
              " WHERE (?1 IS NULL OR template_id = ?1) ORDER BY template_id, name, id";
        break;
    case PB_OBJ_PRESET:
        sql = "SELECT id, template_version_id, name, coalesce(desired_instances, '')"
              " FROM template_version_presets WHERE (?1 IS NULL OR template_version_id = ?1)"
              " ORDER BY template_version_id, name, id";
        break;
    default:
        return pb__err_set(err, PB_EINVAL, "list: unknown object kind");
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pb__sq_map_error(s, rc, "list", err);
    if (parent_id != NULL)
        (void)sqlite3_bind_text(st, 1, parent_id, -1, SQLITE_STATIC);
    s->base.stats.statements++;
    s->base.stats.round_trips++;
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
    int changes = 0;
    int rc;
    if (kind == PB_ROW_MEMBER)
        rc = pb__sq_exec_bound(s,
                               "DELETE FROM organization_members WHERE user_id = ?1"
                               " AND organization_id = ?2",
                               params, 2, &changes, "remove organization membership", err);
    else if (kind == PB_ROW_GROUP_MEMBER)
        rc = pb__sq_exec_bound(s,
                               "DELETE FROM group_members WHERE user_id = ?1 AND group_id IN"
                               " (SELECT id FROM groups WHERE organization_id = ?2 AND name = ?3)",
                               params, 3, &changes, "remove group membership", err);
    else if (kind == PB_ROW_GROUP)
        rc = pb__sq_exec_bound(s, "DELETE FROM groups WHERE organization_id = ?2 AND name = ?3",
                               params, 3, &changes, "remove group", err);
    else
        return pb__err_set(err, PB_EINVAL, "remove: unknown row kind");
    if (rc == 0)
        *n_removed = (size_t)changes;
    return rc;
}

int pb__sq_find_org(pb_store *base, const char *id_or_name, char out[PB_UUID_LEN + 1], pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT id FROM organizations WHERE deleted = 0 AND"
                                " (id = lower(?1) OR lower(name) = lower(?1)) ORDER BY id LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pb__sq_map_error(s, rc, "find organization", err);
    (void)sqlite3_bind_text(st, 1, id_or_name, -1, SQLITE_STATIC);
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        pb__strlcpy(out, pb__sq_col_text(st, 0), PB_UUID_LEN + 1);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = pb__err_set(err, PB_ENOTFOUND, "organization \"%.100s\" not found", id_or_name);
    } else {
        rc = pb__sq_map_error(s, rc, "find organization", err);
    }
    sqlite3_finalize(st);
    return rc;
}

/* splitmix64: a tiny deterministic generator, so a seed always yields the same data. */
static uint64_t next_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rand_uuid(uint64_t *state, char out[PB_UUID_LEN + 1])
{
    uint64_t hi = next_rand(state), lo = next_rand(state);
    hi = (hi & ~0xf000ULL) | 0x4000ULL;
    lo = (lo & ~(3ULL << 62)) | (2ULL << 62);
    (void)snprintf(out, PB_UUID_LEN + 1, "%08x-%04x-%04x-%04x-%012llx", (unsigned)(hi >> 32),
                   (unsigned)((hi >> 16) & 0xffff), (unsigned)(hi & 0xffff), (unsigned)(lo >> 48),
                   (unsigned long long)(lo & 0xffffffffffffULL));
}

#define SEED_STMTS 7

int pb__sq_seed(pb_store *base, const pb_target *t, const pb_seed_opts *o, pb_seed_result *res,
                pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    static const char *const sqls[SEED_STMTS] = {
        "INSERT INTO organizations (id, name, display_name, description, created_at,"
        " updated_at) VALUES (?1, ?2, ?2, '', ?3, ?3)",
        "INSERT INTO templates (id, organization_id, name, provisioner, active_version_id,"
        " created_by, created_at, updated_at) VALUES (?1, ?2, ?3, 'terraform',"
        " '00000000-0000-0000-0000-000000000000', ?4, ?5, ?5)",
        "INSERT INTO template_versions (id, template_id, organization_id, name, readme, job_id,"
        " created_by, created_at, updated_at, archived)"
        " VALUES (?1, ?2, ?3, ?4, '', ?1, ?5, ?6, ?6, ?7)",
        "INSERT INTO template_version_presets (id, template_version_id, name, created_at,"
        " desired_instances) VALUES (?1, ?2, ?3, ?4, ?5)",
        "INSERT INTO organization_members (organization_id, user_id, created_at, updated_at,"
        " roles) VALUES (?1, ?2, ?3, ?3, '[]')",
        "INSERT INTO groups (id, name, organization_id, display_name) VALUES (?1, ?2, ?3, ?4)",
        "INSERT INTO group_members (user_id, group_id) VALUES (?1, ?2)",
    };
    sqlite3_stmt *st[SEED_STMTS] = {0};
    uint64_t rng = 0x5eed0000ULL ^ o->seed;
    int rc = 0;
    char now[32];
    {
        time_t tt = time(NULL);
        struct tm tm;
        (void)gmtime_r(&tt, &tm);
        (void)strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    }
    for (int i = 0; i < SEED_STMTS; i++) {
        int prc = sqlite3_prepare_v2(s->db, sqls[i], -1, &st[i], NULL);
        if (prc != SQLITE_OK) {
            rc = pb__sq_map_error(s, prc, "seed", err);
            goto out;
        }
    }
    if ((rc = pb__sq_exec_script(s, "BEGIN IMMEDIATE", "seed", err)) != 0)
        goto out;
    char org_id[PB_UUID_LEN + 1], tpl_id[PB_UUID_LEN + 1], ver_id[PB_UUID_LEN + 1];
    char preset_id[PB_UUID_LEN + 1], group_id[PB_UUID_LEN + 1];
    char name[96];
    for (int64_t i = 0; i < o->orgs; i++) {
        /* Spread exactly floor(orgs * fraction) organizations evenly over the range. */
        bool prebuilds = (int64_t)((double)(i + 1) * o->prebuilds_fraction) >
                         (int64_t)((double)i * o->prebuilds_fraction);
        rand_uuid(&rng, org_id);
        (void)snprintf(name, sizeof(name), "seed%u-org-%07" PRId64, o->seed, i);
        sqlite3_stmt *q = st[0];
        sqlite3_bind_text(q, 1, org_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, now, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE) {
            rc = pb__sq_map_error(s, sqlite3_errcode(s->db), "seed organization", err);
            goto rollback;
        }
        sqlite3_reset(q);
        res->orgs++;
        for (int64_t ti = 0; ti < o->templates_per_org; ti++) {
            rand_uuid(&rng, tpl_id);
            (void)snprintf(name, sizeof(name), "template-%" PRId64, ti);
            q = st[1];
            sqlite3_bind_text(q, 1, tpl_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, org_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 3, name, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 4, t->user_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 5, now, -1, SQLITE_STATIC);
            if (sqlite3_step(q) != SQLITE_DONE) {
                rc = pb__sq_map_error(s, sqlite3_errcode(s->db), "seed template", err);
                goto rollback;
            }
            sqlite3_reset(q);
            res->templates++;
            for (int64_t vi = 0; vi < o->versions_per_template; vi++) {
                rand_uuid(&rng, ver_id);
                (void)snprintf(name, sizeof(name), "v%" PRId64, vi);
                q = st[2];
                sqlite3_bind_text(q, 1, ver_id, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 2, tpl_id, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 3, org_id, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 4, name, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 5, t->user_id, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 6, now, -1, SQLITE_STATIC);
                /* older versions archived: archived versions still count */
                sqlite3_bind_int(q, 7, vi + 1 < o->versions_per_template ? 1 : 0);
                if (sqlite3_step(q) != SQLITE_DONE) {
                    rc = pb__sq_map_error(s, sqlite3_errcode(s->db), "seed template version", err);
                    goto rollback;
                }
                sqlite3_reset(q);
                res->versions++;
                for (int64_t pi = 0; pi < o->presets_per_version; pi++) {
                    rand_uuid(&rng, preset_id);
                    (void)snprintf(name, sizeof(name), "preset-%" PRId64, pi);
                    q = st[3];
                    sqlite3_bind_text(q, 1, preset_id, -1, SQLITE_STATIC);
                    sqlite3_bind_text(q, 2, ver_id, -1, SQLITE_STATIC);
                    sqlite3_bind_text(q, 3, name, -1, SQLITE_STATIC);
                    sqlite3_bind_text(q, 4, now, -1, SQLITE_STATIC);
                    /* In an organization with prebuilds only the first preset of each
                     * version asks for instances; the others are plain presets. */
                    if (prebuilds && pi == 0)
                        sqlite3_bind_int(q, 5, 1);
                    else
                        sqlite3_bind_null(q, 5);
                    if (sqlite3_step(q) != SQLITE_DONE) {
                        rc = pb__sq_map_error(s, sqlite3_errcode(s->db), "seed preset", err);
                        goto rollback;
                    }
                    sqlite3_reset(q);
                    res->presets++;
                }
            }
        }
        if (!prebuilds || o->templates_per_org == 0 || o->versions_per_template == 0 ||
            o->presets_per_version == 0)
            continue;
        int64_t k = res->prebuild_orgs++;
        bool drifted = (int64_t)((double)(k + 1) * o->drift_fraction) >
                       (int64_t)((double)k * o->drift_fraction);
        /* Drifted organizations miss one of: everything, the membership, the group
         * (and so its membership), or only the group membership. */
        unsigned missing = 0;
        if (drifted) {
            static const unsigned variants[] = {
                PB_ROW_MEMBER | PB_ROW_GROUP | PB_ROW_GROUP_MEMBER,
                PB_ROW_MEMBER,
                PB_ROW_GROUP | PB_ROW_GROUP_MEMBER,
                PB_ROW_GROUP_MEMBER,
            };
            missing = variants[res->drifted_orgs % 4];
            res->drifted_orgs++;
        }
        if (!(missing & PB_ROW_MEMBER)) {
            q = st[4];
            sqlite3_bind_text(q, 1, org_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, t->user_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 3, now, -1, SQLITE_STATIC);
            if (sqlite3_step(q) != SQLITE_DONE) {
                rc = pb__sq_map_error(s, sqlite3_errcode(s->db), "seed membership", err);
                goto rollback;
            }
            sqlite3_reset(q);
        }
        if (!(missing & PB_ROW_GROUP)) {
            rand_uuid(&rng, group_id);
            q = st[5];
            sqlite3_bind_text(q, 1, group_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, t->group_name, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 3, org_id, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 4, t->group_display_name, -1, SQLITE_STATIC);
            if (sqlite3_step(q) != SQLITE_DONE) {
                rc = pb__sq_map_error(s, sqlite3_errcode(s->db), "seed group", err);
                goto rollback;
            }
            sqlite3_reset(q);
            if (!(missing & PB_ROW_GROUP_MEMBER)) {
                q = st[6];
                sqlite3_bind_text(q, 1, t->user_id, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 2, group_id, -1, SQLITE_STATIC);
                if (sqlite3_step(q) != SQLITE_DONE) {
                    rc = pb__sq_map_error(s, sqlite3_errcode(s->db), "seed group membership", err);
                    goto rollback;
                }
                sqlite3_reset(q);
            }
        }
    }
    if ((rc = pb__sq_exec_script(s, "COMMIT", "seed", err)) != 0)
        goto rollback;
    goto out;
rollback:
    if (!sqlite3_get_autocommit(s->db))
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != 0)
        memset(res, 0, sizeof(*res));
out:
    for (int i = 0; i < SEED_STMTS; i++)
        sqlite3_finalize(st[i]);
    return rc;
}
