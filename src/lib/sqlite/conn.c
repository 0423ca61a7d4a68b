/* SQLite backend, execution: result codes to PB_E* codes, scripts, statements with bound
 * text, single numbers. The statement cache is the pass's (pass.c); opening, closing and
 * the waits are open.c's. */
#include <string.h>

#include "sq.h"

int pb__sq_map_error(sqlite_store *s, int rc, const char *what, pb_err *err)
{
    const char *msg = sqlite3_errmsg(s->db);
    int code = PB_EDB;
    bool retryable = false;
    if (s->interrupted && ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_INTERRUPT)) {
        s->interrupted = 0; /* this failure is the interruption: the store is usable again */
        (void)pb__err_set(err, PB_EINTERRUPTED, "%s: interrupted", what);
        if (err != NULL)
            err->db_code = rc;
        return PB_EINTERRUPTED;
    }
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        code = PB_ERETRY;
        retryable = true;
        if (s->lock_timeout_ms > 0) {
            (void)pb__err_set(err, code, "%s: %s (another connection held the lock for %d ms)",
                              what, msg, s->lock_timeout_ms);
            if (err != NULL) {
                err->db_code = rc;
                err->retryable = true;
            }
            return code;
        }
        break;
    case SQLITE_INTERRUPT:
        code = PB_EINTERRUPTED;
        break;
    case SQLITE_NOTADB:
        code = PB_ESCHEMA;
        (void)pb__err_set(err, code, "%s: %s is not an SQLite database (%s)", what, s->path, msg);
        if (err != NULL)
            err->db_code = rc;
        return code;
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

void pb__sq_count_statement(sqlite_store *s)
{
    s->base.stats.statements++;
    s->base.stats.round_trips++;
}

int pb__sq_each_row(sqlite_store *s, sqlite3_stmt *st, pb__sq_row_fn row, void *arg,
                    const char *what, pb_err *err)
{
    pb__sq_count_statement(s);
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            return 0;
        if (step != SQLITE_ROW)
            return pb__sq_map_error(s, step, what, err);
        int rc = row(st, arg);
        if (rc != 0)
            return rc;
    }
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
