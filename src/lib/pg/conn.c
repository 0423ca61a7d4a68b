/* PostgreSQL backend, connection and execution: SQLSTATE classification, connecting and
 * reconnecting, the pipeline engine every pass statement goes through, the simple statements
 * of init and administration, and opening and closing a store. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

static int classify(const char *sqlstate, bool *retryable)
{
    *retryable = false;
    if (sqlstate == NULL || sqlstate[0] == '\0') {
        *retryable = true;
        return PB_ECONNECT;
    }
    if (strcmp(sqlstate, "42P01") == 0 || strcmp(sqlstate, "42703") == 0 ||
        strcmp(sqlstate, "3F000") == 0 || strcmp(sqlstate, "42704") == 0)
        return PB_ENOSCHEMA;
    if (strcmp(sqlstate, "42501") == 0)
        return PB_EPRIVILEGE;
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 ||
        strcmp(sqlstate, "55P03") == 0) {
        *retryable = true;
        return PB_ERETRY;
    }
    if (strcmp(sqlstate, "23503") == 0) {
        /* A referenced organization, group or user vanished under us: read again. */
        *retryable = true;
        return PB_ECONFLICT;
    }
    if (strncmp(sqlstate, "23", 2) == 0)
        return PB_ECONFLICT;
    if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
        strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0) {
        *retryable = true;
        return PB_ECONNECT;
    }
    return PB_EDB;
}

int pb__pg_result_error(pg_store *s, const PGresult *res, const char *what, pb_err *err)
{
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[PB_ERR_MSG_MAX];
    if (primary != NULL)
        pb__strlcpy(msg, primary, sizeof(msg));
    else
        pb__strlcpy(msg, PQerrorMessage(s->conn), sizeof(msg));
    pb__first_line(msg);
    if (msg[0] == '\0')
        pb__strlcpy(msg, "connection lost", sizeof(msg));
    bool retryable;
    int code = classify(sqlstate, &retryable);
    if (code == PB_ENOSCHEMA)
        (void)pb__err_set(err, code, "%s: schema missing (%s): run 'prebuilds init'", what, msg);
    else if (code == PB_EPRIVILEGE)
        (void)pb__err_set(err, code, "%s: %s (see 'prebuilds init --print-grants ROLE')", what,
                          msg);
    else
        (void)pb__err_set(err, code, "%s: %s", what, msg);
    if (err != NULL) {
        err->retryable = retryable;
        if (sqlstate != NULL)
            pb__strlcpy(err->sqlstate, sqlstate, sizeof(err->sqlstate));
    }
    return code;
}

/* ---- connection ---- */

void pb__pg_forget_prepared(pg_store *s)
{
    memset(s->prepared, 0, sizeof(s->prepared));
    s->summary = false; /* a new session looks again */
}

int pb__pg_conn_error(pg_store *s, pb_err *err)
{
    char msg[PB_ERR_MSG_MAX];
    pb__strlcpy(msg, PQerrorMessage(s->conn), sizeof(msg));
    pb__first_line(msg);
    (void)pb__err_set(err, PB_ECONNECT, "connect to %s: %s", s->where, msg);
    if (err != NULL)
        err->retryable = true;
    return PB_ECONNECT;
}

void pb__pg_drop_cancel(pg_store *s)
{
    PGcancel *old = atomic_exchange(&s->cancel, NULL);
    if (old != NULL)
        PQfreeCancel(old);
}

void pb__pg_quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* A new session started: remember how to cancel its statements. */
void pb__pg_session_started(pg_store *s)
{
    pb__pg_forget_prepared(s);
    if (s->manual) /* a daemon: a server notice must not bypass its log */
        PQsetNoticeProcessor(s->conn, pb__pg_quiet_notices, NULL);
    pb__pg_drop_cancel(s);
    atomic_store(&s->cancel, PQgetCancel(s->conn));
}

/* Our defaults first, the user's string last: libpq lets later settings win. `options`
 * pins search_path to public (pg_catalog is still searched first), so that nobody who can
 * change the database's or a role's settings, or create a schema named after our role, can
 * put objects of their own in front of the tables and functions our SQL names: such an
 * object would run with our session's rights. PGOPTIONS, then the URL's own `options`, come
 * after ours and win (that is how to name another schema). */
const char *const pb__pg_conn_keys[] = {"fallback_application_name",
                                        "connect_timeout",
                                        "keepalives",
                                        "keepalives_idle",
                                        "keepalives_interval",
                                        "keepalives_count",
                                        "options",
                                        "dbname",
                                        NULL};

void pb__pg_conn_values(const pg_store *s, const char *vals[PB__PG_N_CONN])
{
    static const char *const defaults[] = {"prebuilds", "10", "1", "30", "10", "3"};
    for (int i = 0; i < 6; i++)
        vals[i] = defaults[i];
    vals[6] = s->options;
    vals[7] = s->conninfo;
    vals[8] = NULL;
}

/* Reconnect when the connection broke; prepared statements die with it. A manual store
 * reports the loss instead: its caller reconnects and sets the new session up. */
int pb__pg_ensure_connected(pg_store *s, pb_err *err)
{
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    pb__pg_forget_prepared(s);
    if (s->manual || s->conn == NULL) {
        (void)pb__err_set(err, PB_ECONNECT, "connection to %s lost", s->where);
        if (err != NULL)
            err->retryable = true;
        return PB_ECONNECT;
    }
    pb__pg_drop_cancel(s);
    PQreset(s->conn);
    if (PQstatus(s->conn) != CONNECTION_OK)
        return pb__pg_conn_error(s, err);
    pb__pg_session_started(s);
    return 0;
}

/* After a protocol failure nothing reliable can be read back: start a new session (or,
 * for a manual store, leave it lost until the caller reconnects). */
void pb__pg_reset_connection(pg_store *s)
{
    pb__pg_forget_prepared(s);
    pb__pg_drop_cancel(s);
    if (s->manual) {
        PQfinish(s->conn);
        s->conn = NULL;
        return;
    }
    PQreset(s->conn);
    if (PQstatus(s->conn) == CONNECTION_OK)
        pb__pg_session_started(s);
}

/* ---- pipelines ---- */

/* Send the items as one pipeline with one Sync (one round trip, one implicit
 * transaction), preparing statements this connection has not seen, and hand every
 * row to `on_row`. The first error wins; the rest of the pipeline is drained. */
int pb__pg_run_pipeline(pg_store *s, const pipe_item *items, int n_items, row_fn on_row, void *arg,
                        pb_err *err)
{
    int rc = pb__pg_ensure_connected(s, err);
    if (rc != 0)
        return rc;
    bool sent_prepare[PST_COUNT] = {0};
    if (PQenterPipelineMode(s->conn) != 1)
        return pb__err_set(err, PB_EINTERNAL, "enter pipeline mode: %s", PQerrorMessage(s->conn));
    for (int i = 0; i < n_items && rc == 0; i++) {
        int id = items[i].stmt;
        if (!s->prepared[id] && !sent_prepare[id]) {
            if (PQsendPrepare(s->conn, pb__pg_stmts[id].name, pb__pg_stmts[id].sql, 0, NULL) != 1)
                rc = pb__pg_conn_error(s, err);
            sent_prepare[id] = true;
        }
        if (rc == 0 && PQsendQueryPrepared(s->conn, pb__pg_stmts[id].name, items[i].n_params,
                                           items[i].params, NULL, NULL, 0) != 1)
            rc = pb__pg_conn_error(s, err);
        if (rc == 0)
            s->base.stats.statements++;
    }
    if (rc == 0 && PQpipelineSync(s->conn) != 1)
        rc = pb__pg_conn_error(s, err);
    if (rc != 0) {
        (void)PQexitPipelineMode(s->conn);
        pb__pg_reset_connection(s);
        return rc;
    }
    s->base.stats.round_trips++;

    /* Results come back in order: per item, [prepare result, NULL], then its rows and
     * final status, NULL; then the Sync. */
    int item = 0;
    bool expect_prepare = n_items > 0 && sent_prepare[items[0].stmt];
    bool prepare_failed[PST_COUNT] = {0};
    bool row_mode_set = false;
    for (;;) {
        /* Single-row mode is chosen just before the first result of that query. */
        if (!expect_prepare && item < n_items && items[item].single_row && !row_mode_set) {
            row_mode_set = true;
            if (PQsetSingleRowMode(s->conn) != 1 && rc == 0)
                rc =
                    pb__err_set(err, PB_EINTERNAL, "%s: single-row mode refused", items[item].what);
        }
        PGresult *res = PQgetResult(s->conn);
        if (res == NULL) {
            if (PQstatus(s->conn) == CONNECTION_BAD) {
                if (rc == 0)
                    rc = pb__pg_conn_error(s, err);
                break;
            }
            /* End of one query's results. */
            if (expect_prepare) {
                expect_prepare = false;
            } else {
                item++;
                row_mode_set = false;
                if (item < n_items) {
                    int id = items[item].stmt;
                    /* A statement's prepare was sent only before its first use. */
                    bool first_use = true;
                    for (int j = 0; j < item; j++)
                        if (items[j].stmt == id)
                            first_use = false;
                    expect_prepare = sent_prepare[id] && first_use;
                }
            }
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (expect_prepare) {
            int id = items[item].stmt;
            if (st != PGRES_COMMAND_OK) {
                prepare_failed[id] = true;
                if (rc == 0 && st != PGRES_PIPELINE_ABORTED)
                    rc = pb__pg_result_error(s, res, items[item].what, err);
            }
        } else if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            if (rc == 0 && on_row != NULL && PQntuples(res) > 0)
                rc = on_row(res, item, arg);
        } else if (st == PGRES_COMMAND_OK) {
            /* nothing to read */
        } else if (st == PGRES_PIPELINE_ABORTED) {
            /* an earlier error already explains this */
        } else if (rc == 0) {
            rc = pb__pg_result_error(s, res, item < n_items ? items[item].what : "pipeline", err);
        }
        PQclear(res);
    }
    for (int id = 0; id < PST_COUNT; id++) {
        if (sent_prepare[id] && !prepare_failed[id] && PQstatus(s->conn) == CONNECTION_OK)
            s->prepared[id] = true;
    }
    if (PQexitPipelineMode(s->conn) != 1 && rc == 0)
        rc = pb__err_set(err, PB_EINTERNAL, "exit pipeline mode: %s", PQerrorMessage(s->conn));
    if (PQstatus(s->conn) == CONNECTION_BAD)
        pb__pg_forget_prepared(s);
    return rc;
}

/* ---- simple statements (init and administration) ---- */

/* Execute one statement with text parameters; *out (if given) receives the result,
 * which the caller PQclears. Checks the result has the expected shape. */
int pb__pg_exec_params(pg_store *s, const char *sql, int n_params, const char *const *params,
                       PGresult **out, const char *what, pb_err *err)
{
    if (out != NULL)
        *out = NULL;
    int rc = pb__pg_ensure_connected(s, err);
    if (rc != 0)
        return rc;
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    PGresult *res = PQexecParams(s->conn, sql, n_params, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = pb__pg_result_error(s, res, what, err);
        PQclear(res);
        return rc;
    }
    if (out != NULL)
        *out = res;
    else
        PQclear(res);
    return 0;
}

int pb__pg_exec_simple(pg_store *s, const char *sql, const char *what, pb_err *err)
{
    return pb__pg_exec_params(s, sql, 0, NULL, NULL, what, err);
}

int pb__pg_query_int(pg_store *s, const char *sql, int n_params, const char *const *params,
                     int *out, const char *what, pb_err *err)
{
    PGresult *res = NULL;
    int rc = pb__pg_exec_params(s, sql, n_params, params, &res, what, err);
    if (rc != 0)
        return rc;
    *out = 0;
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        *out = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

void pb__pg_rollback_quietly(pg_store *s)
{
    if (PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(s->conn, "ROLLBACK");
        PQclear(res);
    }
}

int pb__pg_exec_script(pg_store *s, const char *sql, const char *what, pb_err *err)
{
    int rc = pb__pg_ensure_connected(s, err);
    if (rc != 0)
        return rc;
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    /* "does not exist, skipping" from the scripts' DROP ... IF EXISTS is not news. */
    PQnoticeProcessor old_notice = PQsetNoticeProcessor(s->conn, pb__pg_quiet_notices, NULL);
    PGresult *r = PQexec(s->conn, sql);
    (void)PQsetNoticeProcessor(s->conn, old_notice, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = pb__pg_result_error(s, r, what, err);
    PQclear(r);
    return rc;
}

static void pb__pg_close(pb_store *base)
{
    pg_store *s = (pg_store *)base;
    pb__pg_drop_cancel(s);
    if (s->conn != NULL)
        PQfinish(s->conn);
    pb__free(s->conninfo);
    pb__free(s->options);
    pb__free(s);
}

static const struct pb_store_vtable pg_vt = {
    .close = pb__pg_close,
    .status = pb__pg_status,
    .apply = pb__pg_apply,
    .init = pb__pg_init,
    .create = pb__pg_create,
    .list = pb__pg_list,
    .remove = pb__pg_remove,
    .find_org = pb__pg_find_org,
    .seed = pb__pg_seed,
    .connect = pb__pg_connect,
    .connected = pb__pg_connected,
    .session = pb__pg_session,
    .wait_fd = pb__pg_wait_fd,
    .poll = pb__pg_poll,
    .interrupt = pb__pg_interrupt,
    .fold = pb__pg_fold,
    .inspect = pb__pg_inspect,
    .uninstall = pb__pg_uninstall,
    .set_paused = pb__pg_set_paused,
};

int pb__store_pg_open(const char *conninfo, unsigned flags, pb_store **out, pb_err *err)
{
    pg_store *s = pb__calloc(1, sizeof(*s));
    if (s == NULL)
        return pb__err_set(err, PB_ENOMEM, "connect: out of memory");
    s->base.vt = &pg_vt;
    s->base.backend = PB_BACKEND_PG;
    s->manual = (flags & PB_OPEN_MANUAL) != 0;
    atomic_init(&s->cancel, NULL);
    pb_dburl_redact(conninfo, s->where, sizeof(s->where));
    s->conninfo = pb__strdup(conninfo);
    const char *env = getenv("PGOPTIONS");
    size_t olen = sizeof(PB__PG_SEARCH_PATH) + (env != NULL ? strlen(env) + 1 : 0);
    s->options = pb__malloc(olen);
    if (s->options != NULL)
        (void)snprintf(s->options, olen, "%s%s%s", PB__PG_SEARCH_PATH, env != NULL ? " " : "",
                       env != NULL ? env : "");
    if (s->conninfo == NULL || s->options == NULL) {
        pb__pg_close(&s->base);
        return pb__err_set(err, PB_ENOMEM, "connect: out of memory");
    }
    if (s->manual) {
        *out = &s->base; /* pb_store_connect connects */
        return 0;
    }
    const char *vals[PB__PG_N_CONN];
    pb__pg_conn_values(s, vals);
    s->conn = PQconnectdbParams(pb__pg_conn_keys, vals, 1);
    if (s->conn == NULL) {
        pb__pg_close(&s->base);
        return pb__err_set(err, PB_ENOMEM, "connect: out of memory");
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        int rc = pb__pg_conn_error(s, err);
        pb__pg_close(&s->base);
        return rc;
    }
    pb__pg_session_started(s);
    *out = &s->base;
    return 0;
}
