/* SQLite backend, connection and execution: result codes to PB_E* codes, the statement
 * cache, simple statements and scripts, opening and closing, data_version, interrupt. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sq.h"

int pb__sq_map_error(sqlite_store *s, int rc, const char *what, pb_err *err)
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
int pb__sq_stmt_get(sqlite_store *s, int id, sqlite3_stmt **out, pb_err *err)
{
    if (s->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(s->db, pb__sq_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmts[id], NULL);
        if (rc != SQLITE_OK)
            return pb__sq_map_error(s, rc, "prepare statement", err);
    }
    *out = s->stmts[id];
    return 0;
}

void pb__sq_stmt_done(sqlite3_stmt *st)
{
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

void pb__sq_count_statement(sqlite_store *s)
{
    s->base.stats.statements++;
    s->base.stats.round_trips++;
}

/* Run a statement that returns no rows we need. */
int pb__sq_exec_simple(sqlite_store *s, int id, const char *what, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = pb__sq_stmt_get(s, id, &st, err);
    if (rc != 0)
        return rc;
    pb__sq_count_statement(s);
    rc = sqlite3_step(st);
    pb__sq_stmt_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return pb__sq_map_error(s, rc, what, err);
    return 0;
}

int pb__sq_exec_script(sqlite_store *s, const char *sql, const char *what, pb_err *err)
{
    char *msg = NULL;
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        int code = pb__sq_map_error(s, rc, what, err);
        sqlite3_free(msg);
        return code;
    }
    return 0;
}

const char *pb__sq_col_text(sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    return v == NULL ? "" : (const char *)v;
}

/* First column of the first row of `sql` as an int (0 when no row); `param` binds ?1. */
int pb__sq_query_int(sqlite_store *s, const char *sql, const char *param, int *out, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pb__sq_map_error(s, rc, "read schema", err);
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
        rc = pb__sq_map_error(s, rc, "read schema", err);
    }
    sqlite3_finalize(st);
    return rc;
}

int pb__sq_exec_bound(sqlite_store *s, const char *sql, const char *const *params, int n_params,
                      int *changes, const char *what, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return pb__sq_map_error(s, rc, what, err);
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
        rc = pb__sq_map_error(s, rc, what, err);
    }
    sqlite3_finalize(st);
    return rc;
}

static void pb__sq_close(pb_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    if (s->db != NULL)
        (void)sqlite3_close(s->db);
    pb__free(s->path);
    pb__free(s);
}

static int pb__sq_data_version(pb_store *base, int64_t *out, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int rc = pb__sq_stmt_get(s, ST_DATA_VERSION, &st, err);
    if (rc != 0)
        return rc;
    pb__sq_count_statement(s);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = pb__sq_map_error(s, step, "read data version", err);
    pb__sq_stmt_done(st);
    return rc;
}

static void pb__sq_interrupt(pb_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    if (s->db != NULL)
        sqlite3_interrupt(s->db); /* sets a flag the running statement checks */
}

static const struct pb_store_vtable sqlite_vt = {
    .close = pb__sq_close,
    .status = pb__sq_status,
    .apply = pb__sq_apply,
    .init = pb__sq_init,
    .create = pb__sq_create,
    .list = pb__sq_list,
    .remove = pb__sq_remove,
    .find_org = pb__sq_find_org,
    .seed = pb__sq_seed,
    .data_version = pb__sq_data_version,
    .interrupt = pb__sq_interrupt,
    .inspect = pb__sq_inspect,
    .set_paused = pb__sq_set_paused,
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
        pb__sq_close(&s->base);
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
        pb__sq_close(&s->base);
        return code;
    }
    (void)sqlite3_extended_result_codes(s->db, 1);
    (void)sqlite3_busy_timeout(s->db, 5000);
    int enabled = 0;
    (void)sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &enabled);
    *out = &s->base;
    return 0;
}
