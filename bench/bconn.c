/* A counted database connection for the code of the benchmark that is not the library:
 * the two reference strategies and the data set tooling. It counts statements and round
 * trips the way the library's store does, so the three strategies compare like for like. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static void set_err(bconn *c, const char *msg)
{
    (void)snprintf(c->err, sizeof(c->err), "%s", msg != NULL ? msg : "unknown error");
    c->err[strcspn(c->err, "\n")] = '\0';
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int bconn_open(bconn *c, pb_backend backend, const char *target)
{
    memset(c, 0, sizeof(*c));
    c->backend = backend;
    if (backend == PB_BACKEND_PG) {
        const char *const keys[] = {"application_name", "dbname", NULL};
        const char *const vals[] = {"pb_bench", target, NULL};
        c->pg = PQconnectdbParams(keys, vals, 1);
        if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
            set_err(c, c->pg != NULL ? PQerrorMessage(c->pg) : "out of memory");
            bconn_close(c);
            return -1;
        }
        PQsetNoticeProcessor(c->pg, quiet_notices, NULL);
        return 0;
    }
    int rc = sqlite3_open_v2(target, &c->sq, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        set_err(c, c->sq != NULL ? sqlite3_errmsg(c->sq) : sqlite3_errstr(rc));
        bconn_close(c);
        return -1;
    }
    /* The same connection settings as the library's SQLite store. */
    (void)sqlite3_extended_result_codes(c->sq, 1);
    (void)sqlite3_busy_timeout(c->sq, 5000);
    int enabled = 0;
    (void)sqlite3_db_config(c->sq, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &enabled);
    return 0;
}

void bconn_close(bconn *c)
{
    for (size_t i = 0; i < c->n_cache; i++)
        sqlite3_finalize(c->cache[i].st);
    c->n_cache = 0;
    if (c->sq != NULL)
        (void)sqlite3_close(c->sq);
    c->sq = NULL;
    if (c->pg != NULL)
        PQfinish(c->pg);
    c->pg = NULL;
}

static int pg_exec(bconn *c, const char *sql, int n_params, const char *const *params, bq_row_fn fn,
                   void *arg)
{
    PGresult *res = PQexecParams(c->pg, sql, n_params, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    int rc = BQ_OK;
    c->sqlstate[0] = '\0';
    c->changes = strtoull(PQcmdTuples(res), NULL, 10);
    if (st == PGRES_TUPLES_OK && fn != NULL) {
        int n_cols = PQnfields(res);
        const char *vals[16];
        if (n_cols > 16)
            n_cols = 16;
        for (int r = 0; r < PQntuples(res) && rc == BQ_OK; r++) {
            for (int k = 0; k < n_cols; k++)
                vals[k] = PQgetisnull(res, r, k) ? NULL : PQgetvalue(res, r, k);
            if (fn(n_cols, vals, arg) != 0) {
                set_err(c, "row callback failed");
                rc = BQ_ERROR;
            }
        }
    } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        (void)snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state != NULL ? state : "");
        set_err(c, PQerrorMessage(c->pg));
        rc = strcmp(c->sqlstate, "23505") == 0 ? BQ_UNIQUE : BQ_ERROR;
    }
    PQclear(res);
    return rc;
}

static sqlite3_stmt *sq_cached(bconn *c, const char *sql)
{
    for (size_t i = 0; i < c->n_cache; i++)
        if (c->cache[i].sql == sql)
            return c->cache[i].st;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(c->sq, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
        set_err(c, sqlite3_errmsg(c->sq));
        return NULL;
    }
    if (c->n_cache < sizeof(c->cache) / sizeof(c->cache[0])) {
        c->cache[c->n_cache].sql = sql;
        c->cache[c->n_cache].st = st;
        c->n_cache++;
    }
    return st;
}

static bool sq_is_cached(const bconn *c, const sqlite3_stmt *st)
{
    for (size_t i = 0; i < c->n_cache; i++)
        if (c->cache[i].st == st)
            return true;
    return false;
}

static int sq_exec(bconn *c, const char *sql, int n_params, const char *const *params, bq_row_fn fn,
                   void *arg)
{
    sqlite3_stmt *st = sq_cached(c, sql);
    if (st == NULL)
        return BQ_ERROR;
    for (int i = 0; i < n_params; i++) {
        if (params[i] == NULL)
            (void)sqlite3_bind_null(st, i + 1);
        else
            (void)sqlite3_bind_text(st, i + 1, params[i], -1, SQLITE_STATIC);
    }
    int rc = BQ_OK;
    c->sqlstate[0] = '\0';
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            set_err(c, sqlite3_errmsg(c->sq));
            rc = (step == SQLITE_CONSTRAINT_UNIQUE || step == SQLITE_CONSTRAINT_PRIMARYKEY)
                     ? BQ_UNIQUE
                     : BQ_ERROR;
            break;
        }
        if (fn == NULL)
            continue;
        int n_cols = sqlite3_column_count(st);
        const char *vals[16];
        if (n_cols > 16)
            n_cols = 16;
        for (int k = 0; k < n_cols; k++)
            vals[k] = (const char *)sqlite3_column_text(st, k);
        if (fn(n_cols, vals, arg) != 0) {
            set_err(c, "row callback failed");
            rc = BQ_ERROR;
            break;
        }
    }
    c->changes = (uint64_t)sqlite3_changes64(c->sq);
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
    if (!sq_is_cached(c, st))
        sqlite3_finalize(st);
    return rc;
}

int bconn_exec(bconn *c, const char *sql, int n_params, const char *const *params, bq_row_fn fn,
               void *arg)
{
    c->statements++;
    c->round_trips++;
    if (c->backend == PB_BACKEND_PG)
        return pg_exec(c, sql, n_params, params, fn, arg);
    return sq_exec(c, sql, n_params, params, fn, arg);
}

int bconn_script(bconn *c, const char *sql)
{
    if (c->backend == PB_BACKEND_PG) {
        PGresult *res = PQexec(c->pg, sql);
        ExecStatusType st = PQresultStatus(res);
        int rc = 0;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            set_err(c, PQerrorMessage(c->pg));
            rc = -1;
        }
        PQclear(res);
        return rc;
    }
    char *msg = NULL;
    if (sqlite3_exec(c->sq, sql, NULL, NULL, &msg) != SQLITE_OK) {
        set_err(c, msg != NULL ? msg : sqlite3_errmsg(c->sq));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int first_number(int n_cols, const char *const *vals, void *arg)
{
    double *out = arg;
    if (n_cols > 0 && vals[0] != NULL)
        *out = strtod(vals[0], NULL);
    return 0;
}

int bconn_number(bconn *c, const char *sql, int n_params, const char *const *params, double *out)
{
    uint64_t statements = c->statements, round_trips = c->round_trips;
    *out = 0;
    int rc = bconn_exec(c, sql, n_params, params, first_number, out);
    c->statements = statements;
    c->round_trips = round_trips;
    return rc == BQ_OK ? 0 : -1;
}

double bench_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void bench_mem_kb(long *hwm_kb, long *rss_kb)
{
    *hwm_kb = -1;
    *rss_kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}
