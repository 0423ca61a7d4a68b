/* SQLite backend, schema: migrations from src/lib/sql/sqlite/, init, inspect and the pause
 * switch. An SQLite database is always prebuilds' own. */
#include <stdio.h>
#include <string.h>

#include "sq.h"

static const char *const migrations[] = {
    pb__sql_sqlite_migrate_1_tables,
    pb__sql_sqlite_migrate_2_index,
    pb__sql_sqlite_summary,
    pb__sql_sqlite_migrate_4_site_configs,
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == PB__SCHEMA_VERSION,
               "every backend has every migration");

static int count_tables(sqlite_store *s, int *n, pb_err *err)
{
    *n = 0;
    for (int i = 0; i < PB__N_TABLES_REQUIRED; i++) {
        int one = 0;
        int rc = pb__sq_query_int(s,
                                  "SELECT count(*) FROM sqlite_master"
                                  " WHERE type = 'table' AND name = ?1",
                                  pb__tables_required[i], &one, err);
        if (rc != 0)
            return rc;
        *n += one;
    }
    return 0;
}

static int create_user(sqlite_store *s, const pb_target *t, pb_init_result *res, pb_err *err)
{
    const char *p[1] = {t->user_id};
    int changes = 0;
    int rc = pb__sq_exec_bound(s,
                               "INSERT INTO users (id, email, username, name, hashed_password,"
                               " created_at, updated_at, status, rbac_roles, login_type, is_system)"
                               " VALUES (?1, 'prebuilds@system', 'prebuilds', 'Prebuilds Owner',"
                               " X'', " SQL_NOW ", " SQL_NOW ", 'active', '[]', 'none', 1)"
                               " ON CONFLICT DO NOTHING",
                               p, 1, &changes, "create prebuilds user", err);
    if (rc == 0)
        res->user_created = changes > 0;
    return rc;
}

static int look_up_user(sqlite_store *s, const pb_target *t, pb_init_result *res, pb_err *err)
{
    int state = 0;
    int rc = pb__sq_query_int(s,
                              "SELECT coalesce((SELECT CASE WHEN deleted THEN 1 ELSE 2 END"
                              " FROM users WHERE id = ?1), 0)",
                              t->user_id, &state, err);
    res->user_exists = state == 2;
    res->user_deleted = state == 1;
    return rc;
}

int pb__sq_init(pb_store *base, const pb_target *t, const pb_init_opts *o, pb_init_result *res,
                pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    int version = 0, n_tables = 0, rc;
    if ((rc = pb__sq_exec_script(s, "PRAGMA journal_mode=WAL", "enable WAL", err)) != 0)
        return rc;
    if ((rc = pb__sq_exec_script(s, "BEGIN IMMEDIATE", "begin migration", err)) != 0)
        return rc;
    if ((rc = pb__sq_query_int(s, "PRAGMA user_version", NULL, &version, err)) != 0)
        goto fail;
    if ((rc = count_tables(s, &n_tables, err)) != 0)
        goto fail;
    res->schema_version_before = version;
    if (version == 0 && n_tables > 0) {
        rc = pb__err_set(err, PB_ESCHEMA,
                         "init: %s has prebuilds tables but no schema version; refusing to "
                         "change a database we did not create",
                         s->path);
        goto fail;
    }
    if (version > N_MIGRATIONS) {
        rc = pb__err_set(err, PB_ESCHEMA,
                         "init: schema version %d is newer than this build knows (%d)", version,
                         N_MIGRATIONS);
        goto fail;
    }
    for (int v = version; v < N_MIGRATIONS; v++) {
        char what[64], pragma[64];
        (void)snprintf(what, sizeof(what), "apply migration %d", v + 1);
        if ((rc = pb__sq_exec_script(s, migrations[v], what, err)) != 0)
            goto fail;
        (void)snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
        if ((rc = pb__sq_exec_script(s, pragma, what, err)) != 0)
            goto fail;
    }
    res->schema_version_after = N_MIGRATIONS;
    /* The triggers again, then the rows, in this one transaction (a database restored
     * without them, or with rows written while they were missing). */
    if (o->summary) {
        if ((rc = pb__sq_exec_script(s, pb__sql_sqlite_summary, "rebuild summary", err)) != 0)
            goto fail;
        res->summary_built = true;
    }
    if (o->create_user && (rc = create_user(s, t, res, err)) != 0)
        goto fail;
    if ((rc = look_up_user(s, t, res, err)) != 0)
        goto fail;
    if ((rc = pb__sq_exec_script(s, "COMMIT", "commit migration", err)) != 0)
        goto fail;
    return 0;
fail:
    if (!sqlite3_get_autocommit(s->db))
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int pb__sq_inspect(pb_store *base, pb_schema_info *out, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    int version = 0, n = 0;
    int rc = pb__sq_query_int(s, "PRAGMA user_version", NULL, &version, err);
    if (rc == 0)
        rc = pb__sq_query_int(s, "SELECT count(*) FROM sqlite_master WHERE name = ?1",
                              "site_configs", &n, err);
    if (rc != 0)
        return rc;
    out->own = version > 0;
    out->version = version;
    out->site_configs = n > 0;
    out->summary = version >= 3;
    out->index = version >= 2;
    pb__strlcpy(out->schema, "main", sizeof(out->schema));
    return 0;
}

int pb__sq_set_paused(pb_store *base, bool paused, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    const char *p[1] = {paused ? "{\"reconciliation_paused\": true}"
                               : "{\"reconciliation_paused\": false}"};
    return pb__sq_exec_bound(
        s,
        "INSERT INTO site_configs (key, value) VALUES ('prebuilds_settings', ?1)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        p, 1, NULL, paused ? "pause" : "resume", err);
}
