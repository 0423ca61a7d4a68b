/* PostgreSQL backend, schema: `prebuilds init` - our migrations on a database we create,
 * and on a database we did not create only what the operator asks for (the recommended
 * index, the summary, the notify triggers), each reported - and `prebuilds uninstall`,
 * which takes all of that out again. The SQL lives in src/lib/sql/pg/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

#define INIT_LOCK_ID "7260101" /* serialises concurrent `init` and `uninstall` runs */

/* Our migrations, one script each (both backends carry the same list, one for one). The
 * summary script is idempotent, so migration 4 also brings a summary of the first design
 * (exact counts under locks) up to the current one. */
static const char *const migrations[] = {
    pb__sql_pg_migrate_1_tables,
    pb__sql_pg_migrate_2_index,
    pb__sql_pg_summary,
    pb__sql_pg_migrate_4_site_configs,
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == PB__SCHEMA_VERSION,
               "every backend has every migration");

typedef struct inspect_row {
    int n_tables;
    bool own;
    pb_schema_info info;
    int n_owners;
    char owners[128];
    bool can_own;
    int n_relations;          /* other tables and views (see inspect.sql) */
    char relation_names[200]; /* the first three, for messages */
} inspect_row;

static int inspect(pg_store *s, inspect_row *out, pb_err *err)
{
    memset(out, 0, sizeof(*out));
    PGresult *res = NULL;
    int rc = pb__pg_exec_params(s, pb__sql_pg_inspect, 0, NULL, &res, "inspect schema", err);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 1) {
        out->n_tables = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
        out->own = PQgetvalue(res, 0, 1)[0] == 't';
        pb__strlcpy(out->info.schema, PQgetvalue(res, 0, 2), sizeof(out->info.schema));
        out->info.site_configs = PQgetvalue(res, 0, 3)[0] == 't';
        out->info.summary = PQgetvalue(res, 0, 4)[0] == 't';
        out->info.notify_triggers = (int)strtol(PQgetvalue(res, 0, 5), NULL, 10);
        out->info.index = PQgetvalue(res, 0, 6)[0] == 't';
        out->n_owners = (int)strtol(PQgetvalue(res, 0, 7), NULL, 10);
        pb__strlcpy(out->owners, PQgetvalue(res, 0, 8), sizeof(out->owners));
        out->can_own = PQgetvalue(res, 0, 9)[0] == 't';
        out->n_relations = (int)strtol(PQgetvalue(res, 0, 10), NULL, 10);
        pb__strlcpy(out->relation_names, PQgetvalue(res, 0, 11), sizeof(out->relation_names));
    }
    PQclear(res);
    out->info.own = out->own;
    out->info.foreign = !out->own && out->n_tables == PB__N_TABLES_REQUIRED;
    return 0;
}

int pb__pg_inspect(pb_store *base, pb_schema_info *out, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    inspect_row row;
    int rc = inspect(s, &row, err);
    if (rc == 0)
        *out = row.info;
    return rc;
}

/* Inside an install transaction on a platform's database: act as the role that owns the
 * platform's tables, so that everything we create is that role's and our SECURITY DEFINER
 * functions never run with more rights than the platform already has. A bounded lock wait:
 * our DDL must never queue behind a long platform transaction while the platform's own
 * statements queue behind us. */
static int become_owner(pg_store *s, const char *what, pb_init_result *res, pb_err *err)
{
    inspect_row row;
    int rc = inspect(s, &row, err);
    if (rc != 0)
        return rc;
    if (row.n_owners != 1)
        return pb__err_set(err, PB_EPRIVILEGE,
                           "%s: the platform's tables have more than one owner (%s); prebuilds "
                           "installs its objects as their owner, so give them one owner first",
                           what, row.owners);
    if (!row.can_own)
        return pb__err_set(err, PB_EPRIVILEGE,
                           "%s: the platform's tables are owned by role \"%s\"; run this as that "
                           "role (or a member of it) or as a superuser",
                           what, row.owners);
    pb__strlcpy(res->owner, row.owners, sizeof(res->owner));
    const char *p[1] = {row.owners};
    return pb__pg_exec_params(s,
                              "SELECT set_config('role', $1, true),"
                              " set_config('lock_timeout', '5s', true)",
                              1, p, NULL, what, err);
}

/* Run one install script in its own transaction, as the tables' owner on a platform's
 * database. `settings` are (name, value) pairs the script reads with current_setting(). */
static int install_script(pg_store *s, bool foreign, const char *script, const char *what,
                          const char *const *settings, int n_settings, pb_init_result *res,
                          pb_err *err)
{
    int rc = pb__pg_exec_simple(s, "BEGIN", what, err);
    if (rc != 0)
        return rc;
    if (foreign && (rc = become_owner(s, what, res, err)) != 0)
        goto fail;
    for (int i = 0; i + 1 < n_settings * 2; i += 2) {
        const char *p[2] = {settings[i], settings[i + 1]};
        if ((rc = pb__pg_exec_params(s, "SELECT set_config($1, $2, true)", 2, p, NULL, what,
                                     err)) != 0)
            goto fail;
    }
    if ((rc = pb__pg_exec_script(s, script, what, err)) != 0)
        goto fail;
    if ((rc = pb__pg_exec_simple(s, "COMMIT", what, err)) != 0)
        goto fail;
    return 0;
fail:
    pb__pg_rollback_quietly(s);
    return rc;
}

int pb__pg_summary_install(pg_store *s, bool foreign, pb_init_result *res, pb_err *err)
{
    int rc = install_script(s, foreign, pb__sql_pg_summary, "install summary", NULL, 0, res, err);
    if (rc == 0) {
        res->summary_built = true;
        s->summary = false; /* the next pass probes again */
    }
    return rc;
}

int pb__pg_notify_install(pg_store *s, bool foreign, const pb_target *t, pb_init_result *res,
                          pb_err *err)
{
    const char *settings[4] = {"prebuilds.user_id", t->user_id, "prebuilds.group_name",
                               t->group_name};
    int rc = install_script(s, foreign, pb__sql_pg_notify, "install notify triggers", settings, 2,
                            res, err);
    if (rc != 0)
        return rc;
    inspect_row row;
    if ((rc = inspect(s, &row, err)) != 0)
        return rc;
    res->triggers_installed = row.info.notify_triggers;
    return 0;
}

/* Apply the migrations this database lacks, inside the caller's transaction. */
static int migrate(pg_store *s, int version, pb_err *err)
{
    int rc;
    if (version == 0 && (rc = pb__pg_exec_script(s, pb__sql_pg_migrations_table,
                                                 "create migrations table", err)) != 0)
        return rc;
    for (int v = version; v < N_MIGRATIONS; v++) {
        char what[64], vbuf[16];
        (void)snprintf(what, sizeof(what), "apply migration %d", v + 1);
        if ((rc = pb__pg_exec_script(s, migrations[v], what, err)) != 0)
            return rc;
        (void)snprintf(vbuf, sizeof(vbuf), "%d", v + 1);
        const char *p[1] = {vbuf};
        if ((rc = pb__pg_exec_params(s,
                                     "INSERT INTO prebuilds_schema_migrations (version)"
                                     " VALUES ($1)",
                                     1, p, NULL, what, err)) != 0)
            return rc;
    }
    return 0;
}

static int create_user(pg_store *s, const pb_target *t, pb_init_result *res, pb_err *err)
{
    const char *uid[1] = {t->user_id};
    PGresult *r = NULL;
    int rc = pb__pg_exec_params(s,
                                "INSERT INTO users (id, email, username, name, hashed_password,"
                                " created_at, updated_at, status, rbac_roles, login_type,"
                                " is_system) VALUES ($1::uuid, 'prebuilds@system', 'prebuilds',"
                                " 'Prebuilds Owner', '\\x'::bytea, now(), now(), 'active', '{}',"
                                " 'none', true) ON CONFLICT DO NOTHING",
                                1, uid, &r, "create prebuilds user", err);
    if (rc == 0)
        res->user_created = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return rc;
}

static int look_up_user(pg_store *s, const pb_target *t, pb_init_result *res, pb_err *err)
{
    const char *uid[1] = {t->user_id};
    int state = 0;
    int rc = pb__pg_query_int(s,
                              "SELECT coalesce((SELECT CASE WHEN deleted THEN 1 ELSE 2 END"
                              " FROM users WHERE id = $1::uuid), 0)",
                              1, uid, &state, "look up prebuilds user", err);
    res->user_exists = state == 2;
    res->user_deleted = state == 1;
    return rc;
}

/* The schema part of init, in one transaction under the init lock. */
static int init_schema(pg_store *s, const pb_target *t, const pb_init_opts *o, pb_init_result *res,
                       pb_err *err)
{
    int rc, version = 0;
    if ((rc = pb__pg_exec_simple(s, "BEGIN", "begin init", err)) != 0)
        return rc;
    if ((rc = pb__pg_exec_simple(s, "SELECT pg_advisory_xact_lock(" INIT_LOCK_ID ")", "lock init",
                                 err)) != 0)
        goto fail;
    inspect_row row;
    if ((rc = inspect(s, &row, err)) != 0)
        goto fail;
    if (row.own) {
        if ((rc = pb__pg_query_int(s,
                                   "SELECT coalesce(max(version), 0)"
                                   " FROM prebuilds_schema_migrations",
                                   0, NULL, &version, "read schema version", err)) != 0)
            goto fail;
    } else if (row.n_tables == PB__N_TABLES_REQUIRED) {
        res->foreign_schema = true;
        /* Before anything else: whether this role may install what was asked for. */
        if ((o->summary || o->triggers) && !row.can_own) {
            rc = pb__err_set(err, PB_EPRIVILEGE,
                             "init --%s: the platform's tables are owned by role \"%s\"; run "
                             "this as that role (or a member of it) or as a superuser",
                             o->summary ? "summary" : "triggers", row.owners);
            goto fail;
        }
    } else if (row.n_tables > 0) {
        rc = pb__err_set(err, PB_ESCHEMA,
                         "init: found %d of the %d tables and no prebuilds migrations; refusing "
                         "to change a partial schema we did not create",
                         row.n_tables, PB__N_TABLES_REQUIRED);
        goto fail;
    } else if (row.n_relations > 0 && !o->add_to_existing) {
        /* a database of something else (a mistyped dbname?): never filled unasked */
        rc = pb__err_set(err, PB_ESCHEMA,
                         "init: this database holds %d %s prebuilds did not create (%s%s) and "
                         "none of the platform's; to add prebuilds' tables beside them, run "
                         "'prebuilds init --add-to-existing'",
                         row.n_relations, row.n_relations == 1 ? "table" : "tables",
                         row.relation_names, row.n_relations > 3 ? ", ..." : "");
        goto fail;
    }
    res->schema_version_before = version;
    res->schema_version_after = version;
    if (version > N_MIGRATIONS) {
        rc = pb__err_set(err, PB_ESCHEMA,
                         "init: schema version %d is newer than this build knows (%d)", version,
                         N_MIGRATIONS);
        goto fail;
    }
    if (!res->foreign_schema) {
        if ((rc = migrate(s, version, err)) != 0)
            goto fail;
        res->schema_version_after = N_MIGRATIONS;
        if (o->create_user && (rc = create_user(s, t, res, err)) != 0)
            goto fail;
    }
    if ((rc = look_up_user(s, t, res, err)) != 0)
        goto fail;
    if ((rc = pb__pg_exec_simple(s, "COMMIT", "commit init", err)) != 0)
        goto fail;
    return 0;
fail:
    pb__pg_rollback_quietly(s);
    return rc;
}

int pb__pg_init(pb_store *base, const pb_target *t, const pb_init_opts *o, pb_init_result *res,
                pb_err *err)
{
    pg_store *s = (pg_store *)base;
    int rc = init_schema(s, t, o, res, err);
    if (rc != 0)
        return rc;
    inspect_row row;
    if ((rc = inspect(s, &row, err)) != 0)
        return rc;
    /* The recommended index: present, missing, or (when asked) built, outside any
     * transaction (CONCURRENTLY), so the platform keeps writing meanwhile. */
    if (!row.info.index && !o->recommended_indexes) {
        res->indexes_missing++;
    } else if (!row.info.index) {
        if ((rc = pb__pg_exec_simple(s, pb__sql_pg_recommended_index,
                                     "create index template_version_presets_prebuilds_idx", err)) !=
            0)
            return rc;
        res->indexes_created++;
    }
    if (o->summary) {
        if ((rc = pb__pg_summary_install(s, res->foreign_schema, res, err)) != 0)
            return rc;
    } else if (!row.info.summary) {
        res->summary_missing = true;
    }
    if (o->triggers)
        return pb__pg_notify_install(s, res->foreign_schema, t, res, err);
    return 0;
}

/* ---- uninstall ---- */

int pb__pg_uninstall(pb_store *base, pb_removed_cb cb, void *arg, size_t *n_removed, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    inspect_row row;
    int rc = inspect(s, &row, err);
    if (rc != 0)
        return rc;
    if (row.own)
        return pb__err_set(err, PB_ESCHEMA,
                           "uninstall: this database was created by prebuilds (it has "
                           "prebuilds_schema_migrations): drop the database instead");
    PGresult *objs = NULL;
    if ((rc = pb__pg_exec_simple(s, "BEGIN", "uninstall", err)) != 0)
        return rc;
    if ((rc = pb__pg_exec_params(s,
                                 "SELECT pg_advisory_xact_lock(" INIT_LOCK_ID "),"
                                 " set_config('lock_timeout', '5s', true)",
                                 0, NULL, NULL, "uninstall", err)) != 0)
        goto fail;
    if ((rc = pb__pg_exec_params(s, pb__sql_pg_installed_objects, 0, NULL, &objs,
                                 "list installed objects", err)) != 0)
        goto fail;
    /* Triggers, views, functions, tables and the sequence in this transaction, in that order, so
     * the platform never sees a trigger without its function; the index after it. */
    int n = PQntuples(objs);
    for (int i = 0; i < n; i++) {
        const char *kind = PQgetvalue(objs, i, 0), *name = PQgetvalue(objs, i, 1);
        if (strcmp(kind, "index") == 0)
            continue;
        char sql[600], what[400];
        (void)snprintf(sql, sizeof(sql), "DROP %s IF EXISTS %s", kind, name);
        (void)snprintf(what, sizeof(what), "remove %s %s", kind, name);
        if ((rc = pb__pg_exec_simple(s, sql, what, err)) != 0)
            goto fail;
    }
    if ((rc = pb__pg_exec_simple(s, "COMMIT", "uninstall", err)) != 0)
        goto fail;
    for (int i = 0; i < n; i++) {
        const char *kind = PQgetvalue(objs, i, 0), *name = PQgetvalue(objs, i, 1);
        if (strcmp(kind, "index") == 0) {
            char sql[600];
            (void)snprintf(sql, sizeof(sql), "DROP INDEX CONCURRENTLY IF EXISTS %s", name);
            if ((rc = pb__pg_exec_simple(s, sql, "remove index", err)) != 0)
                break;
        }
        if (cb != NULL)
            cb(kind, name, arg);
        (*n_removed)++;
    }
    PQclear(objs);
    s->summary = false;
    return rc;
fail:
    PQclear(objs);
    pb__pg_rollback_quietly(s);
    return rc;
}

/* ---- the pause switch on our own schema ---- */

int pb__pg_set_paused(pb_store *base, bool paused, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    inspect_row row;
    int rc = inspect(s, &row, err);
    if (rc != 0)
        return rc;
    if (!row.own)
        return pb__err_set(err, PB_ESCHEMA,
                           "%s: this database was not created by prebuilds: its pause switch is "
                           "the platform's to set",
                           paused ? "pause" : "resume");
    const char *p[1] = {paused ? "{\"reconciliation_paused\": true}"
                               : "{\"reconciliation_paused\": false}"};
    return pb__pg_exec_params(s,
                              "INSERT INTO site_configs (key, value)"
                              " VALUES ('prebuilds_settings', $1)"
                              " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                              1, p, NULL, paused ? "pause" : "resume", err);
}
