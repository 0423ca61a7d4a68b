/* SQLite backend, schema: migrations from src/lib/sql/sqlite/, init, inspect, the pause switch
 * and whose a file is. prebuilds marks the files it creates (PRAGMA application_id, beside
 * the version in user_version); a file with tables of its own and no mark is someone else's,
 * and nothing here writes to it, not even the journal mode, unless asked. */
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

/* What a file holds, read without writing anything. */
typedef struct sq_look {
    int app_id, version;
    int n_tables;    /* tables, SQLite's own excepted */
    int n_ours;      /* of the platform's eight */
    char names[160]; /* the first tables' names, for messages */
} sq_look;

static int look(sqlite_store *s, sq_look *out, pb_err *err)
{
    memset(out, 0, sizeof(*out));
    int rc = pb__sq_query_int(s, "PRAGMA application_id", NULL, &out->app_id, err);
    if (rc == 0)
        rc = pb__sq_query_int(s, "PRAGMA user_version", NULL, &out->version, err);
    if (rc != 0)
        return rc;
    sqlite3_stmt *st = NULL;
    rc =
        sqlite3_prepare_v2(s->db,
                           "SELECT name, name IN ('users', 'organizations', 'organization_members',"
                           " 'groups', 'group_members', 'templates', 'template_versions',"
                           " 'template_version_presets') FROM sqlite_master WHERE type = 'table'"
                           " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
                           -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pb__sq_map_error(s, rc, "read schema", err);
    pb__sq_count_statement(s);
    size_t used = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out->n_tables++;
        out->n_ours += sqlite3_column_int(st, 1);
        if (out->n_tables <= 3 && used < sizeof(out->names))
            used += (size_t)snprintf(out->names + used, sizeof(out->names) - used, "%s%.40s",
                                     used > 0 ? ", " : "", pb__sq_col_text(st, 0));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return pb__sq_map_error(s, rc, "read schema", err);
    if (out->n_tables > 3 && used < sizeof(out->names))
        (void)snprintf(out->names + used, sizeof(out->names) - used, ", ...");
    return 0;
}

static bool is_own(const sq_look *l)
{
    /* files from before the mark: a version and the platform's tables */
    return l->app_id == PB__SQ_APP_ID || (l->app_id == 0 && l->version > 0 && l->n_ours == 8);
}

static bool is_empty(const sq_look *l)
{
    return l->app_id == 0 && l->version == 0 && l->n_tables == 0;
}

int pb__sq_explain_missing(sqlite_store *s, pb_err *err)
{
    sq_look l;
    pb_err quiet;
    if (err == NULL || err->code != PB_ENOSCHEMA || look(s, &l, &quiet) != 0 || l.app_id == 0 ||
        l.app_id == PB__SQ_APP_ID)
        return err != NULL ? err->code : PB_ENOSCHEMA;
    return pb__err_set(err, PB_ESCHEMA,
                       "%s belongs to another application (application_id %d); prebuilds "
                       "neither reads nor changes it",
                       s->path, l.app_id);
}

/* May init create or migrate our schema in this file? */
static int may_init(sqlite_store *s, const sq_look *l, bool add_to_existing, pb_err *err)
{
    if (is_own(l) || is_empty(l))
        return 0;
    if (l->app_id != 0)
        return pb__err_set(err, PB_ESCHEMA,
                           "init: %s belongs to another application (application_id %d); "
                           "refusing to change it",
                           s->path, l->app_id);
    if (l->n_ours > 0)
        return pb__err_set(err, PB_ESCHEMA,
                           "init: %s has %d of the platform's tables but was not created by "
                           "prebuilds; refusing to change a database we did not create",
                           s->path, l->n_ours);
    if (l->version != 0)
        return pb__err_set(err, PB_ESCHEMA,
                           "init: %s has tables of its own (%s) and a user_version (%d) that is "
                           "not prebuilds'; refusing to change it",
                           s->path, l->names, l->version);
    if (!add_to_existing)
        return pb__err_set(err, PB_ESCHEMA,
                           "init: %s holds %d %s prebuilds did not create (%s); to add prebuilds' "
                           "tables beside them, run 'prebuilds init --add-to-existing'",
                           s->path, l->n_tables, l->n_tables == 1 ? "table" : "tables", l->names);
    return 0;
}

int pb__sq_require_own(sqlite_store *s, const char *what, pb_err *err)
{
    sq_look l;
    int rc = look(s, &l, err);
    if (rc != 0)
        return rc;
    if (is_own(&l))
        return 0;
    if (is_empty(&l))
        return pb__err_set(err, PB_ENOSCHEMA, "%s: %s has no schema: run 'prebuilds init'", what,
                           s->path);
    return pb__err_set(err, PB_ESCHEMA,
                       "%s: %s was not created by prebuilds: the data commands only write to "
                       "prebuilds' own schema",
                       what, s->path);
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
    sq_look l;
    int rc;
    /* Whose file it is, before the journal mode (which writes the file) changes */
    if ((rc = look(s, &l, err)) != 0 || (rc = may_init(s, &l, o->add_to_existing, err)) != 0)
        return rc;
    if ((rc = pb__sq_exec_script(s, "PRAGMA journal_mode=WAL", "enable WAL", err)) != 0)
        return rc;
    if ((rc = pb__sq_exec_script(s, "BEGIN IMMEDIATE", "begin migration", err)) != 0)
        return rc;
    /* again under the write lock: another process may have written meanwhile */
    if ((rc = look(s, &l, err)) != 0 || (rc = may_init(s, &l, o->add_to_existing, err)) != 0)
        goto fail;
    int version = is_own(&l) ? l.version : 0;
    res->schema_version_before = version;
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
    if (l.app_id != PB__SQ_APP_ID &&
        (rc = pb__sq_exec_script(s, "PRAGMA application_id = " PB__SQ_APP_ID_TEXT, "mark the file",
                                 err)) != 0)
        goto fail;
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
    sq_look l;
    int n = 0;
    int rc = look(s, &l, err);
    if (rc == 0)
        rc = pb__sq_query_int(s, "SELECT count(*) FROM sqlite_master WHERE name = ?1",
                              "site_configs", &n, err);
    if (rc != 0)
        return rc;
    out->own = is_own(&l);
    out->foreign = !out->own && l.n_ours == PB__N_TABLES_REQUIRED;
    out->version = out->own ? l.version : 0;
    out->site_configs = n > 0;
    out->summary = out->own && l.version >= 3;
    out->index = out->own && l.version >= 2;
    pb__strlcpy(out->schema, "main", sizeof(out->schema));
    return 0;
}

int pb__sq_set_paused(pb_store *base, bool paused, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    int rc = pb__sq_require_own(s, paused ? "pause" : "resume", err);
    if (rc != 0)
        return rc;
    const char *p[1] = {paused ? "{\"reconciliation_paused\": true}"
                               : "{\"reconciliation_paused\": false}"};
    return pb__sq_exec_bound(
        s,
        "INSERT INTO site_configs (key, value) VALUES ('prebuilds_settings', ?1)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        p, 1, NULL, paused ? "pause" : "resume", err);
}
