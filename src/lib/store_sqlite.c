/* The embedded backend: an SQLite file whose schema mirrors the production PostgreSQL
 * tables column for column (uuids as lowercase text, booleans 0/1, ISO-8601 UTC text
 * times, arrays as JSON text). Writes run in one BEGIN IMMEDIATE transaction. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "internal.h"

/* An SQL expression for a random version-4 UUID in lowercase canonical text. */
#define SQL_UUID4                                                                                  \
    "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || "                            \
    "substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "       \
    "substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
#define SQL_NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

#define SUMMARY_TABLE "prebuilds_configured_templates"

/* Does template X have a configured preset in any version? */
#define CONFIGURED(X)                                                                              \
    "EXISTS (SELECT 1 FROM template_versions tv"                                                   \
    " JOIN template_version_presets p ON p.template_version_id = tv.id"                            \
    " WHERE tv.template_id = " X " AND p.desired_instances IS NOT NULL)"
/* Statements that bring template X's row up to date (X an SQL expression). */
#define RECOUNT_DROP(X)                                                                            \
    " DELETE FROM " SUMMARY_TABLE " WHERE template_id = " X " AND NOT " CONFIGURED(X) ";"
#define RECOUNT_ADD(X)                                                                             \
    " INSERT OR IGNORE INTO " SUMMARY_TABLE " (template_id) SELECT " X " WHERE " X                 \
    " IS NOT NULL AND " CONFIGURED(X) ";"
#define TEMPLATE_OF(V) "(SELECT template_id FROM template_versions WHERE id = " V ")"

#define SUMMARY_TABLE_SQL                                                                          \
    "CREATE TABLE IF NOT EXISTS " SUMMARY_TABLE " (template_id TEXT PRIMARY KEY NOT NULL)"         \
    " WITHOUT ROWID;"
/* Each trigger dropped first, so `init --summary` installs this build's definitions. */
#define REPLACE_TRIGGER(NAME, WHAT, BODY)                                                          \
    "DROP TRIGGER IF EXISTS " NAME "; CREATE TRIGGER " NAME " " WHAT " BEGIN" BODY " END;"
// clang-format off
#define SUMMARY_TRIGGERS_SQL                                                                       \
    REPLACE_TRIGGER("prebuilds_configured_preset_insert",                                          \
        "AFTER INSERT ON template_version_presets WHEN NEW.desired_instances IS NOT NULL",         \
        RECOUNT_ADD(TEMPLATE_OF("NEW.template_version_id")))                                       \
    REPLACE_TRIGGER("prebuilds_configured_preset_delete",                                          \
        "AFTER DELETE ON template_version_presets WHEN OLD.desired_instances IS NOT NULL",         \
        RECOUNT_DROP(TEMPLATE_OF("OLD.template_version_id")))                                      \
    REPLACE_TRIGGER("prebuilds_configured_preset_update",                                          \
        "AFTER UPDATE OF desired_instances, template_version_id ON template_version_presets"       \
        " WHEN (OLD.desired_instances IS NULL) <> (NEW.desired_instances IS NULL)"                 \
        " OR (NEW.desired_instances IS NOT NULL"                                                   \
        " AND OLD.template_version_id IS NOT NEW.template_version_id)",                            \
        RECOUNT_DROP(TEMPLATE_OF("OLD.template_version_id"))                                       \
        RECOUNT_ADD(TEMPLATE_OF("NEW.template_version_id")))                                       \
    REPLACE_TRIGGER("prebuilds_configured_version_insert",                                         \
        "AFTER INSERT ON template_versions WHEN NEW.template_id IS NOT NULL",                      \
        RECOUNT_ADD("NEW.template_id"))                                                            \
    REPLACE_TRIGGER("prebuilds_configured_version_delete",                                         \
        "AFTER DELETE ON template_versions WHEN OLD.template_id IS NOT NULL",                      \
        RECOUNT_DROP("OLD.template_id"))                                                           \
    REPLACE_TRIGGER("prebuilds_configured_version_update",                                         \
        "AFTER UPDATE OF id, template_id ON template_versions"                                     \
        " WHEN OLD.template_id IS NOT NEW.template_id OR OLD.id IS NOT NEW.id",                    \
        RECOUNT_DROP("OLD.template_id") RECOUNT_ADD("NEW.template_id"))
// clang-format on
#define SUMMARY_REBUILD_SQL                                                                        \
    "DELETE FROM " SUMMARY_TABLE ";"                                                               \
    "INSERT INTO " SUMMARY_TABLE " (template_id) SELECT DISTINCT tv.template_id"                   \
    " FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id"  \
    " WHERE p.desired_instances IS NOT NULL AND tv.template_id IS NOT NULL;"

/* Migration 1: the tables, as in production. Migration 2: our recommended indexes. */
static const char *const migrations[] = {
    "CREATE TABLE users ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " email TEXT NOT NULL,"
    " username TEXT NOT NULL DEFAULT '' CHECK (username <> ''),"
    " hashed_password BLOB NOT NULL,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'dormant' CHECK (status IN ('active', 'dormant', 'suspended')),"
    " rbac_roles TEXT NOT NULL DEFAULT '[]',"
    " login_type TEXT NOT NULL DEFAULT 'password',"
    " avatar_url TEXT NOT NULL DEFAULT '',"
    " deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),"
    " name TEXT NOT NULL DEFAULT '',"
    " is_system INTEGER NOT NULL DEFAULT 0 CHECK (is_system IN (0, 1)));"
    "CREATE TABLE organizations ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " description TEXT NOT NULL,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL,"
    " is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),"
    " display_name TEXT NOT NULL,"
    " icon TEXT NOT NULL DEFAULT '',"
    " deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)));"
    "CREATE UNIQUE INDEX organizations_single_default_org ON organizations (is_default)"
    " WHERE is_default = 1;"
    "CREATE UNIQUE INDEX idx_organization_name_lower ON organizations (lower(name))"
    " WHERE deleted = 0;"
    "CREATE TABLE organization_members ("
    " user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL,"
    " roles TEXT NOT NULL DEFAULT '[]',"
    " PRIMARY KEY (organization_id, user_id));"
    "CREATE INDEX idx_organization_member_organization_id_uuid"
    " ON organization_members (organization_id);"
    "CREATE INDEX idx_organization_member_user_id_uuid ON organization_members (user_id);"
    "CREATE TABLE groups ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,"
    " avatar_url TEXT NOT NULL DEFAULT '',"
    " quota_allowance INTEGER NOT NULL DEFAULT 0,"
    " display_name TEXT NOT NULL DEFAULT '',"
    " source TEXT NOT NULL DEFAULT 'user' CHECK (source IN ('user', 'oidc')),"
    " UNIQUE (name, organization_id));"
    "CREATE TABLE group_members ("
    " user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,"
    " UNIQUE (user_id, group_id));"
    /* As in production: leaving an organization also leaves its groups. */
    "CREATE TRIGGER trigger_delete_group_members_on_org_member_delete"
    " BEFORE DELETE ON organization_members BEGIN"
    " DELETE FROM group_members WHERE user_id = OLD.user_id"
    " AND group_id IN (SELECT id FROM groups WHERE organization_id = OLD.organization_id);"
    " END;"
    "CREATE TABLE templates ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL,"
    " organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,"
    " deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),"
    " name TEXT NOT NULL,"
    " provisioner TEXT NOT NULL,"
    " active_version_id TEXT NOT NULL,"
    " description TEXT NOT NULL DEFAULT '',"
    " created_by TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT);"
    "CREATE UNIQUE INDEX idx_templates_name_lower ON templates (organization_id, lower(name))"
    " WHERE deleted = 0;"
    "CREATE TABLE template_versions ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " template_id TEXT REFERENCES templates (id) ON DELETE CASCADE,"
    " organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,"
    " created_at TEXT NOT NULL,"
    " updated_at TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " readme TEXT NOT NULL,"
    " job_id TEXT NOT NULL,"
    " created_by TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,"
    " archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),"
    " UNIQUE (template_id, name));"
    "CREATE TABLE template_version_presets ("
    " id TEXT PRIMARY KEY NOT NULL DEFAULT (" SQL_UUID4 "),"
    " template_version_id TEXT NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " created_at TEXT NOT NULL DEFAULT (" SQL_NOW "),"
    " desired_instances INTEGER,"
    " UNIQUE (name, template_version_id));",

    /* The status statement's EXISTS walks presets by version: production has no index led
     * by template_version_id, so we add a partial one holding only configured presets. */
    "CREATE INDEX IF NOT EXISTS template_version_presets_prebuilds_idx"
    " ON template_version_presets (template_version_id) WHERE desired_instances IS NOT NULL;",

    /* The templates with a configured preset in any version, kept by triggers (SQLite has
     * one writer at a time, so each trigger simply recounts what it may have changed). */
    SUMMARY_TABLE_SQL SUMMARY_TRIGGERS_SQL SUMMARY_REBUILD_SQL,
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == PB__SCHEMA_VERSION,
               "every backend has every migration");

#define STATUS_SQL                                                                                 \
    "SELECT o.id, o.name,"                                                                         \
    " EXISTS (SELECT 1 FROM organization_members om"                                               \
    "  WHERE om.organization_id = o.id AND om.user_id = ?1),"                                      \
    " g.id,"                                                                                       \
    " g.id IS NOT NULL AND EXISTS (SELECT 1 FROM group_members gm"                                 \
    "  WHERE gm.group_id = g.id AND gm.user_id = ?1),"                                             \
    " EXISTS (SELECT 1 FROM users u WHERE u.id = ?1)"                                              \
    " FROM organizations o"                                                                        \
    " LEFT JOIN groups g ON g.organization_id = o.id AND g.name = ?2"                              \
    " WHERE o.deleted = 0"                                                                         \
    " AND (?3 IS NULL OR o.id IN (SELECT value FROM json_each(?3)))"                               \
    " AND EXISTS (SELECT 1 FROM " SUMMARY_TABLE " c JOIN templates t ON t.id = c.template_id"      \
    "  WHERE t.organization_id = o.id AND t.deleted = 0)"                                          \
    " ORDER BY o.name, o.id"

enum {
    ST_STATUS,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INS_MEMBER,
    ST_INS_GROUP,
    ST_INS_GROUP_MEMBER,
    ST_DATA_VERSION,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_STATUS] = STATUS_SQL,
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    /* Only live organizations: one deleted since the status read is skipped, not an error. */
    [ST_INS_MEMBER] = "INSERT INTO organization_members"
                      " (organization_id, user_id, created_at, updated_at, roles)"
                      " SELECT o.id, ?1, " SQL_NOW ", " SQL_NOW ", '[]' FROM organizations o"
                      " WHERE o.id IN (SELECT value FROM json_each(?2)) AND o.deleted = 0"
                      " ORDER BY o.id ON CONFLICT DO NOTHING RETURNING organization_id",
    [ST_INS_GROUP] = "INSERT INTO groups"
                     " (id, name, organization_id, display_name, avatar_url, quota_allowance,"
                     " source)"
                     " SELECT " SQL_UUID4 ", ?1, o.id, ?2, '', 0, 'user' FROM organizations o"
                     " WHERE o.id IN (SELECT value FROM json_each(?3)) AND o.deleted = 0"
                     " ORDER BY o.id ON CONFLICT DO NOTHING RETURNING organization_id",
    /* The group is looked up by name here, after the insert above: whoever created it,
     * this finds it. */
    [ST_INS_GROUP_MEMBER] = "INSERT INTO group_members (user_id, group_id)"
                            " SELECT ?1, g.id FROM groups g"
                            " WHERE g.organization_id IN (SELECT value FROM json_each(?3))"
                            " AND g.name = ?2 ORDER BY g.organization_id"
                            " ON CONFLICT DO NOTHING"
                            " RETURNING (SELECT organization_id FROM groups WHERE id = group_id)",
    /* Changes when another connection commits; reads the file header, no table. */
    [ST_DATA_VERSION] = "PRAGMA data_version",
};

typedef struct sqlite_store {
    pb_store base;
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[ST_COUNT];
} sqlite_store;

static int map_error(sqlite_store *s, int rc, const char *what, pb_err *err)
{
    const char *msg = sqlite3_errmsg(s->db);
    int code = PB_EDB;
    bool retryable = false;
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = PB_ERETRY;
        retryable = true;
        break;
    case SQLITE_NOMEM:
        code = PB_ENOMEM;
        break;
    case SQLITE_CONSTRAINT:
        /* Only key violations are conflicts; a trigger's RAISE or a CHECK is an error. */
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
            code = PB_ECONFLICT;
        } else if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
            code = PB_ECONFLICT; /* something we reference vanished: read again */
            retryable = true;
        }
        break;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        code = PB_EPRIVILEGE;
        break;
    case SQLITE_CANTOPEN:
        code = PB_ECONNECT;
        break;
    case SQLITE_IOERR:
    case SQLITE_FULL:
        code = PB_EIO;
        break;
    case SQLITE_ERROR:
        if (strstr(msg, "no such table") != NULL || strstr(msg, "no such column") != NULL) {
            code = PB_ENOSCHEMA;
            (void)pb__err_set(err, code, "%s: schema missing (%s): run 'prebuilds init'", what,
                              msg);
            err->db_code = rc;
            return code;
        }
        break;
    default:
        break;
    }
    (void)pb__err_set(err, code, "%s: %s", what, msg);
    if (err != NULL) {
        err->db_code = rc;
        err->retryable = retryable;
    }
    return code;
}

/* The cached statement `id`, prepared on first use and reset/cleared for reuse. */
static int stmt_get(sqlite_store *s, int id, sqlite3_stmt **out, pb_err *err)
{
    if (s->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmts[id], NULL);
        if (rc != SQLITE_OK)
            return map_error(s, rc, "prepare statement", err);
    }
    *out = s->stmts[id];
    return 0;
}

static void stmt_done(sqlite3_stmt *st)
{
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

static void count_statement(sqlite_store *s)
{
    s->base.stats.statements++;
    s->base.stats.round_trips++;
}

/* Run a statement that returns no rows we need. */
static int exec_simple(sqlite_store *s, int id, const char *what, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, id, &st, err);
    if (rc != 0)
        return rc;
    count_statement(s);
    rc = sqlite3_step(st);
    stmt_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return map_error(s, rc, what, err);
    return 0;
}

static int exec_script(sqlite_store *s, const char *sql, const char *what, pb_err *err)
{
    char *msg = NULL;
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int code = map_error(s, rc, what, err);
        sqlite3_free(msg);
        return code;
    }
    return 0;
}

static const char *col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    return v == NULL ? "" : (const char *)v;
}

static int sq_status(pb_store *base, const pb_target *t, const char *const *ids, size_t n_ids,
                     pb_status_cb cb, void *arg, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    char *ids_json = NULL;
    int rc = stmt_get(s, ST_STATUS, &st, err);
    if (rc != 0)
        return rc;
    if (n_ids > 0) {
        ids_json = pb__ids_json(ids, n_ids);
        if (ids_json == NULL)
            return pb__err_set(err, PB_ENOMEM, "status: out of memory");
    }
    (void)sqlite3_bind_text(st, 1, t->user_id, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 2, t->group_name, -1, SQLITE_STATIC);
    if (ids_json != NULL)
        (void)sqlite3_bind_text(st, 3, ids_json, -1, SQLITE_STATIC);
    else
        (void)sqlite3_bind_null(st, 3);
    count_statement(s);
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = map_error(s, step, "read status", err);
            break;
        }
        pb_status_row row;
        memset(&row, 0, sizeof(row));
        pb__strlcpy(row.org_id, col_text(st, 0), sizeof(row.org_id));
        row.org_name = col_text(st, 1);
        row.has_member = sqlite3_column_int(st, 2) != 0;
        row.has_group = sqlite3_column_type(st, 3) != SQLITE_NULL;
        if (row.has_group)
            pb__strlcpy(row.group_id, col_text(st, 3), sizeof(row.group_id));
        row.in_group = sqlite3_column_int(st, 4) != 0;
        row.user_exists = sqlite3_column_int(st, 5) != 0;
        rc = cb(&row, arg);
        if (rc != 0) {
            if (err != NULL && err->msg[0] == '\0')
                (void)pb__err_set(err, rc, "status: %s", pb_strerror(rc));
            break;
        }
    }
    stmt_done(st);
    pb__free(ids_json);
    return rc;
}

/* Run one of the INSERT ... RETURNING organization_id statements. */
static int run_insert(sqlite_store *s, int id, const pb_target *t, const char *ids_json,
                      pb_row_kind kind, pb_added_cb added, void *added_arg, size_t *n_added,
                      const char *what, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, id, &st, err);
    if (rc != 0)
        return rc;
    /* Memberships: ?1 user, ?2 organizations. Groups: ?1 name, ?2 display name,
     * ?3 organizations. Group memberships: ?1 user, ?2 group name, ?3 organizations. */
    (void)sqlite3_bind_text(st, 1, id == ST_INS_GROUP ? t->group_name : t->user_id, -1,
                            SQLITE_STATIC);
    if (id == ST_INS_MEMBER) {
        (void)sqlite3_bind_text(st, 2, ids_json, -1, SQLITE_STATIC);
    } else {
        (void)sqlite3_bind_text(st, 2, id == ST_INS_GROUP ? t->group_display_name : t->group_name,
                                -1, SQLITE_STATIC);
        (void)sqlite3_bind_text(st, 3, ids_json, -1, SQLITE_STATIC);
    }
    count_statement(s);
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = map_error(s, step, what, err);
            break;
        }
        (*n_added)++;
        if (added != NULL)
            added(kind, col_text(st, 0), added_arg);
    }
    stmt_done(st);
    return rc;
}

static int sq_apply(pb_store *base, const pb_target *t, const pb_write_set *w, pb_added_cb added,
                    void *added_arg, pb_write_result *res, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    char *member_json = NULL, *group_json = NULL, *gm_json = NULL;
    bool in_tx = false;
    int rc;
    member_json = pb__ids_json(w->member_orgs, w->n_member_orgs);
    group_json = pb__ids_json(w->group_orgs, w->n_group_orgs);
    gm_json = pb__ids_json(w->group_member_orgs, w->n_group_member_orgs);
    if (member_json == NULL || group_json == NULL || gm_json == NULL) {
        rc = pb__err_set(err, PB_ENOMEM, "apply: out of memory");
        goto out;
    }
    if ((rc = exec_simple(s, ST_BEGIN, "begin write transaction", err)) != 0)
        goto out;
    in_tx = true;
    if (w->n_member_orgs > 0 &&
        (rc = run_insert(s, ST_INS_MEMBER, t, member_json, PB_ROW_MEMBER, added, added_arg,
                         &res->memberships_added, "insert organization memberships", err)) != 0)
        goto out;
    if (w->n_group_orgs > 0 &&
        (rc = run_insert(s, ST_INS_GROUP, t, group_json, PB_ROW_GROUP, added, added_arg,
                         &res->groups_created, "insert groups", err)) != 0)
        goto out;
    if (w->n_group_member_orgs > 0 &&
        (rc = run_insert(s, ST_INS_GROUP_MEMBER, t, gm_json, PB_ROW_GROUP_MEMBER, added, added_arg,
                         &res->group_memberships_added, "insert group memberships", err)) != 0)
        goto out;
    if ((rc = exec_simple(s, ST_COMMIT, "commit write transaction", err)) != 0)
        goto out;
    in_tx = false;
out:
    if (in_tx && !sqlite3_get_autocommit(s->db)) {
        pb_err ignored;
        (void)exec_simple(s, ST_ROLLBACK, "rollback", &ignored);
    }
    if (rc != 0)
        memset(res, 0, sizeof(*res)); /* rolled back: nothing was added */
    pb__free(member_json);
    pb__free(group_json);
    pb__free(gm_json);
    return rc;
}

/* First column of the first row of `sql` as an int (0 when no row); `param` binds ?1. */
static int query_int(sqlite_store *s, const char *sql, const char *param, int *out, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return map_error(s, rc, "read schema", err);
    if (param != NULL)
        (void)sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        *out = 0;
        rc = 0;
    } else {
        rc = map_error(s, rc, "read schema", err);
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_init(pb_store *base, const pb_target *t, const pb_init_opts *o, pb_init_result *res,
                   pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    int version = 0, n_tables = 0, rc;
    if ((rc = exec_script(s, "PRAGMA journal_mode=WAL", "enable WAL", err)) != 0)
        return rc;
    if ((rc = exec_script(s, "BEGIN IMMEDIATE", "begin migration", err)) != 0)
        return rc;
    if ((rc = query_int(s, "PRAGMA user_version", NULL, &version, err)) != 0)
        goto fail;
    if ((rc = query_int(s,
                        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN"
                        " ('users', 'organizations', 'organization_members', 'groups',"
                        " 'group_members', 'templates', 'template_versions',"
                        " 'template_version_presets')",
                        NULL, &n_tables, err)) != 0)
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
        char what[64];
        (void)snprintf(what, sizeof(what), "apply migration %d", v + 1);
        if ((rc = exec_script(s, migrations[v], what, err)) != 0)
            goto fail;
        char pragma[64];
        (void)snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
        if ((rc = exec_script(s, pragma, what, err)) != 0)
            goto fail;
    }
    res->schema_version_after = N_MIGRATIONS;
    if (o->summary) {
        /* Triggers first (a database our migration 3 did not create, for example
         * restored without them), then the rows, in this one transaction. */
        if ((rc = exec_script(s, SUMMARY_TABLE_SQL SUMMARY_TRIGGERS_SQL SUMMARY_REBUILD_SQL,
                              "rebuild summary", err)) != 0)
            goto fail;
        res->summary_built = true;
    }
    if (o->create_user) {
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(
            s->db,
            "INSERT INTO users (id, email, username, name, hashed_password, created_at,"
            " updated_at, status, rbac_roles, login_type, is_system)"
            " VALUES (?1, 'prebuilds@system', 'prebuilds', 'Prebuilds Owner', X'', " SQL_NOW
            ", " SQL_NOW ", 'active', '[]', 'none', 1) ON CONFLICT DO NOTHING",
            -1, &st, NULL);
        if (rc != SQLITE_OK) {
            rc = map_error(s, rc, "create prebuilds user", err);
            goto fail;
        }
        (void)sqlite3_bind_text(st, 1, t->user_id, -1, SQLITE_STATIC);
        s->base.stats.statements++;
        s->base.stats.round_trips++;
        int step = sqlite3_step(st);
        sqlite3_finalize(st);
        if (step != SQLITE_DONE) {
            rc = map_error(s, step, "create prebuilds user", err);
            goto fail;
        }
        res->user_created = sqlite3_changes(s->db) > 0;
    }
    res->user_exists = true;
    if (!o->create_user) {
        int n = 0;
        if ((rc = query_int(s, "SELECT count(*) FROM users WHERE id = ?1", t->user_id, &n, err)) !=
            0)
            goto fail;
        res->user_exists = n > 0;
    }
    if ((rc = exec_script(s, "COMMIT", "commit migration", err)) != 0)
        goto fail;
    return 0;
fail:
    if (!sqlite3_get_autocommit(s->db))
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* ---- administration ---- */

static int exec_bound(sqlite_store *s, const char *sql, const char *const *params, int n_params,
                      int *changes, const char *what, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return map_error(s, rc, what, err);
    for (int i = 0; i < n_params; i++) {
        if (params[i] == NULL)
            (void)sqlite3_bind_null(st, i + 1);
        else
            (void)sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC);
    }
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        if (changes != NULL)
            *changes = sqlite3_changes(s->db);
        rc = 0;
    } else {
        rc = map_error(s, rc, what, err);
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_create(pb_store *base, pb_obj_kind kind, const char *id, const char *parent_id,
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
    int rc = exec_bound(s, sql, params, 5, &changes, what, err);
    if (rc == 0 && changes == 0)
        rc = pb__err_set(err, PB_ENOTFOUND, "%s: template %s not found", what, parent_id);
    if (rc == PB_ECONFLICT && err != NULL)
        (void)pb__err_set(err, rc, "%s: %s", what,
                          strstr(err->msg, "FOREIGN KEY") ? "parent or creating user not found"
                                                          : "already exists");
    return rc;
}

static int sq_list(pb_store *base, pb_obj_kind kind, const char *parent_id, pb_obj_cb cb, void *arg,
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
        return map_error(s, rc, "list", err);
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
            rc = map_error(s, step, "list", err);
            break;
        }
        pb_obj_row row = {
            .id = col_text(st, 0),
            .parent_id = sqlite3_column_type(st, 1) == SQLITE_NULL ? NULL : col_text(st, 1),
            .name = col_text(st, 2),
            .extra = sqlite3_column_type(st, 3) == SQLITE_NULL ? NULL : col_text(st, 3),
        };
        if ((rc = cb(&row, arg)) != 0)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

static int sq_remove(pb_store *base, const pb_target *t, pb_row_kind kind, const char *org_id,
                     size_t *n_removed, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    const char *params[3] = {t->user_id, org_id, t->group_name};
    int changes = 0;
    int rc;
    if (kind == PB_ROW_MEMBER)
        rc = exec_bound(s,
                        "DELETE FROM organization_members WHERE user_id = ?1"
                        " AND organization_id = ?2",
                        params, 2, &changes, "remove organization membership", err);
    else if (kind == PB_ROW_GROUP_MEMBER)
        rc = exec_bound(s,
                        "DELETE FROM group_members WHERE user_id = ?1 AND group_id IN"
                        " (SELECT id FROM groups WHERE organization_id = ?2 AND name = ?3)",
                        params, 3, &changes, "remove group membership", err);
    else if (kind == PB_ROW_GROUP)
        rc = exec_bound(s, "DELETE FROM groups WHERE organization_id = ?2 AND name = ?3", params, 3,
                        &changes, "remove group", err);
    else
        return pb__err_set(err, PB_EINVAL, "remove: unknown row kind");
    if (rc == 0)
        *n_removed = (size_t)changes;
    return rc;
}

static int sq_find_org(pb_store *base, const char *id_or_name, char out[PB_UUID_LEN + 1],
                       pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT id FROM organizations WHERE deleted = 0 AND"
                                " (id = lower(?1) OR lower(name) = lower(?1)) ORDER BY id LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return map_error(s, rc, "find organization", err);
    (void)sqlite3_bind_text(st, 1, id_or_name, -1, SQLITE_STATIC);
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        pb__strlcpy(out, col_text(st, 0), PB_UUID_LEN + 1);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = pb__err_set(err, PB_ENOTFOUND, "organization \"%.100s\" not found", id_or_name);
    } else {
        rc = map_error(s, rc, "find organization", err);
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

static int sq_seed(pb_store *base, const pb_target *t, const pb_seed_opts *o, pb_seed_result *res,
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
            rc = map_error(s, prc, "seed", err);
            goto out;
        }
    }
    if ((rc = exec_script(s, "BEGIN IMMEDIATE", "seed", err)) != 0)
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
            rc = map_error(s, sqlite3_errcode(s->db), "seed organization", err);
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
                rc = map_error(s, sqlite3_errcode(s->db), "seed template", err);
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
                    rc = map_error(s, sqlite3_errcode(s->db), "seed template version", err);
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
                        rc = map_error(s, sqlite3_errcode(s->db), "seed preset", err);
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
                rc = map_error(s, sqlite3_errcode(s->db), "seed membership", err);
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
                rc = map_error(s, sqlite3_errcode(s->db), "seed group", err);
                goto rollback;
            }
            sqlite3_reset(q);
            if (!(missing & PB_ROW_GROUP_MEMBER)) {
                q = st[6];
                sqlite3_bind_text(q, 1, t->user_id, -1, SQLITE_STATIC);
                sqlite3_bind_text(q, 2, group_id, -1, SQLITE_STATIC);
                if (sqlite3_step(q) != SQLITE_DONE) {
                    rc = map_error(s, sqlite3_errcode(s->db), "seed group membership", err);
                    goto rollback;
                }
                sqlite3_reset(q);
            }
        }
    }
    if ((rc = exec_script(s, "COMMIT", "seed", err)) != 0)
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

static void sq_close(pb_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    if (s->db != NULL)
        (void)sqlite3_close(s->db);
    pb__free(s->path);
    pb__free(s);
}

static int sq_data_version(pb_store *base, int64_t *out, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int rc = stmt_get(s, ST_DATA_VERSION, &st, err);
    if (rc != 0)
        return rc;
    count_statement(s);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = map_error(s, step, "read data version", err);
    stmt_done(st);
    return rc;
}

static void sq_interrupt(pb_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    if (s->db != NULL)
        sqlite3_interrupt(s->db); /* sets a flag the running statement checks */
}

static const struct pb_store_vtable sqlite_vt = {
    .close = sq_close,
    .status = sq_status,
    .apply = sq_apply,
    .init = sq_init,
    .create = sq_create,
    .list = sq_list,
    .remove = sq_remove,
    .find_org = sq_find_org,
    .seed = sq_seed,
    .data_version = sq_data_version,
    .interrupt = sq_interrupt,
};

int pb__store_sqlite_open(const char *path, unsigned flags, pb_store **out, pb_err *err)
{
    sqlite_store *s = pb__calloc(1, sizeof(*s));
    if (s == NULL)
        return pb__err_set(err, PB_ENOMEM, "open %s: out of memory", path);
    s->base.vt = &sqlite_vt;
    s->base.backend = PB_BACKEND_SQLITE;
    s->path = pb__strdup(path);
    if (s->path == NULL) {
        pb__free(s);
        return pb__err_set(err, PB_ENOMEM, "open %s: out of memory", path);
    }
    if (!(flags & PB_OPEN_CREATE) && access(path, F_OK) != 0) {
        int e = errno;
        sq_close(&s->base);
        if (e == ENOENT)
            return pb__err_set(err, PB_ENOSCHEMA,
                               "open sqlite database %s: file not found: run 'prebuilds init'",
                               path);
        return pb__err_set(err, PB_ECONNECT, "open sqlite database %s: %s", path, strerror(e));
    }
    int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
    if (flags & PB_OPEN_CREATE)
        oflags |= SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &s->db, oflags, NULL);
    if (rc != SQLITE_OK) {
        int code = pb__err_set(err, rc == SQLITE_NOMEM ? PB_ENOMEM : PB_ECONNECT,
                               "open sqlite database %s: %s", path,
                               s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sq_close(&s->base);
        return code;
    }
    (void)sqlite3_extended_result_codes(s->db, 1);
    (void)sqlite3_busy_timeout(s->db, 5000);
    int enabled = 0;
    (void)sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &enabled);
    *out = &s->base;
    return 0;
}
