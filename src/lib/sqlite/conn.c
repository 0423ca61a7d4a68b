/* SQLite backend, connection and execution: result codes to PB_E* codes, the statement
 * cache, simple statements and scripts, opening and closing, data_version, and the waits:
 * a busy handler of our own bounds every lock wait by the lock timeout and gives up at once
 * when interrupted (sqlite3_interrupt does not wake SQLite's own busy sleep), and the file's
 * identity is checked at every pass, so a database replaced or removed under a running
 * daemon is noticed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* The cached statement `id`, prepared on first use and reset/cleared for reuse. */
int pb__sq_stmt_get(sqlite_store *s, int id, sqlite3_stmt **out, pb_err *err)
{
    if (s->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(s->db, pb__sq_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            rc = pb__sq_map_error(s, rc, "prepare statement", err);
            return rc == PB_ENOSCHEMA ? pb__sq_explain_missing(s, err) : rc;
        }
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

/* The file at our path is still the one we opened. */
static int check_file(sqlite_store *s, pb_err *err)
{
    if (!s->have_ident)
        return 0;
    struct stat st;
    bool gone = stat(s->path, &st) != 0;
    if (!gone && st.st_dev == s->dev && st.st_ino == s->ino)
        return 0;
    s->replaced = true;
    (void)pb__err_set(err, PB_ECONNECT,
                      gone ? "database file %s was removed since it was opened"
                           : "database file %s was replaced since it was opened",
                      s->path);
    if (err != NULL)
        err->retryable = false;
    return PB_ECONNECT;
}

static bool pb__sq_connected(const pb_store *base)
{
    const sqlite_store *s = (const sqlite_store *)base;
    return s->db != NULL && !s->replaced;
}

static int status_checked(pb_store *base, const pb_target *t, const char *const *ids, size_t n_ids,
                          bool by_id, pb_status_cb cb, void *arg, pb_err *err)
{
    int rc = check_file((sqlite_store *)base, err);
    return rc != 0 ? rc : pb__sq_status(base, t, ids, n_ids, by_id, cb, arg, err);
}

static int pb__sq_data_version(pb_store *base, int64_t *out, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int rc = check_file(s, err);
    if (rc != 0)
        return rc;
    rc = pb__sq_stmt_get(s, ST_DATA_VERSION, &st, err);
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
    s->interrupted = 1; /* the busy wait and the progress handler give up on it */
    if (s->db != NULL)
        sqlite3_interrupt(s->db); /* sets a flag the running statement checks */
}

/* SQLite calls this while another connection holds the lock; `count` restarts at 0 for
 * every new wait. Short sleeps first (most waits are short), then 20 ms, so that an
 * interrupt (a signal also ends the sleep early) is seen within 20 ms. 0 gives up. */
static int busy_wait(void *arg, int count)
{
    sqlite_store *s = arg;
    if (s->interrupted)
        return 0;
    int64_t now = (int64_t)pb__mono_ms();
    if (count == 0)
        s->busy_since_ms = now;
    int64_t slice = count < 5 ? 1 : count < 15 ? 5 : 20;
    if (s->lock_timeout_ms > 0) {
        int64_t left = s->busy_since_ms + s->lock_timeout_ms - now;
        if (left <= 0)
            return 0;
        if (slice > left)
            slice = left;
    }
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
    (void)nanosleep(&ts, NULL);
    return s->interrupted ? 0 : 1;
}

/* Called every few hundred virtual machine steps: a long statement notices an interrupt
 * that came before it started (sqlite3_interrupt only stops statements already running). */
static int check_interrupt(void *arg)
{
    const sqlite_store *s = arg;
    return s->interrupted ? 1 : 0;
}

static void pb__sq_set_lock_timeout(pb_store *base, int timeout_ms)
{
    ((sqlite_store *)base)->lock_timeout_ms = timeout_ms;
}

/* A daemon session: nothing to set up but the lock timeout; every SQLite daemon leads. */
static int pb__sq_session(pb_store *base, const pb_session_opts *o, bool try_only,
                          pb_session_info *info, pb_err *err)
{
    (void)try_only;
    (void)err;
    pb__sq_set_lock_timeout(base, o->lock_timeout_ms > 0 ? o->lock_timeout_ms : 0);
    info->leader = true;
    return 0;
}

static const struct pb_store_vtable sqlite_vt = {
    .close = pb__sq_close,
    .status = status_checked,
    .write = pb__sq_write,
    .init = pb__sq_init,
    .admin = &pb__sq_admin_ops,
    .seed = pb__sq_seed,
    .data_version = pb__sq_data_version,
    .interrupt = pb__sq_interrupt,
    .inspect = pb__sq_inspect,
    .set_paused = pb__sq_set_paused,
    .set_lock_timeout = pb__sq_set_lock_timeout,
    .connected = pb__sq_connected,
    .session = pb__sq_session,
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
    s->lock_timeout_ms = 5000;
    (void)sqlite3_busy_handler(s->db, busy_wait, s);
    sqlite3_progress_handler(s->db, 500, check_interrupt, s);
    struct stat st;
    if (stat(path, &st) == 0) {
        s->have_ident = true;
        s->dev = st.st_dev;
        s->ino = st.st_ino;
    }
    int enabled = 0;
    (void)sqlite3_db_config(s->db, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &enabled);
    *out = &s->base;
    return 0;
}
