/* PostgreSQL backend, the pipeline engine: the statements of one call sent as one pipeline
 * with one Sync (one round trip, one implicit transaction), named statements prepared in
 * the same round trip on a connection's first use, unnamed ones where a pooler may stand
 * between us and the server (see conn.c), results read back in order. */
#include <string.h>

#include "pg.h"

/* ---- pipelines ---- */

#define PIPE_MAX 8

/* The pipeline as sent: the caller's items, less their own BEGIN and COMMIT when the
 * caller's transaction is already open (a pass under transaction pooling, which stays one
 * transaction), and with the settings first when a new transaction needs them. */
typedef struct pipe_plan {
    pipe_item items[PIPE_MAX];
    int orig[PIPE_MAX];          /* the caller's index of each item; -1 for ours */
    bool with_prepare[PIPE_MAX]; /* a Parse of a named statement went before this item */
    bool sent_prepare[PST_COUNT];
    bool prepare_failed[PST_COUNT];
    int n;
} pipe_plan;

static int plan_pipeline(pg_store *s, const pipe_item *items, int n_items, pipe_plan *p,
                         pb_err *err)
{
    memset(p, 0, sizeof(*p));
    if (n_items + 1 > PIPE_MAX)
        return pb__err_set(err, PB_EINTERNAL, "pipeline of %d statements: too long", n_items);
    if (pb__pg_needs_txn_settings(s)) {
        p->items[p->n] = (pipe_item){.stmt = -1, .sql = PB__PG_TXN_SETTINGS, .what = "settings"};
        p->orig[p->n++] = -1;
    }
    bool in_txn = PQtransactionStatus(s->conn) == PQTRANS_INTRANS;
    for (int i = 0; i < n_items; i++) {
        if (in_txn && items[i].sql == NULL &&
            (items[i].stmt == PST_BEGIN || items[i].stmt == PST_COMMIT))
            continue;
        p->items[p->n] = items[i];
        p->orig[p->n++] = i;
    }
    return 0;
}

/* Queue every item: an unnamed statement (Parse, Bind, Execute) or, on a store that names
 * them, the Parse of a statement this connection has not prepared and then its Execute. */
static int send_items(pg_store *s, pipe_plan *p, pb_err *err)
{
    for (int i = 0; i < p->n; i++) {
        const pipe_item *it = &p->items[i];
        int ok;
        if (it->sql != NULL || s->unnamed) {
            const char *sql = it->sql != NULL ? it->sql : pb__pg_stmts[it->stmt].sql;
            ok = PQsendQueryParams(s->conn, sql, it->n_params, NULL, it->params, it->lengths,
                                   it->formats, it->binary ? 1 : 0);
        } else {
            const pb__pg_stmt *st = &pb__pg_stmts[it->stmt];
            if (!s->prepared[it->stmt] && !p->sent_prepare[it->stmt]) {
                if (PQsendPrepare(s->conn, st->name, st->sql, 0, NULL) != 1)
                    return pb__pg_conn_error(s, err);
                p->sent_prepare[it->stmt] = true;
                p->with_prepare[i] = true;
            }
            ok = PQsendQueryPrepared(s->conn, st->name, it->n_params, it->params, it->lengths,
                                     it->formats, it->binary ? 1 : 0);
        }
        if (ok != 1)
            return pb__pg_conn_error(s, err);
        s->base.stats.statements++;
    }
    return 0;
}

/* One result of item `i` (its Parse's when `is_prepare`): rows to `on_row`, the first
 * error into *rc. */
static void take_result(pg_store *s, pipe_plan *p, int i, bool is_prepare, PGresult *res,
                        row_fn on_row, void *arg, int *rc, pb_err *err)
{
    ExecStatusType st = PQresultStatus(res);
    const char *what = i < p->n ? p->items[i].what : "pipeline";
    if (is_prepare) {
        if (st != PGRES_COMMAND_OK) {
            p->prepare_failed[p->items[i].stmt] = true;
            if (*rc == 0 && st != PGRES_PIPELINE_ABORTED)
                *rc = pb__pg_result_error(s, res, what, err);
        }
    } else if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
        if (*rc == 0 && on_row != NULL && p->orig[i] >= 0 && PQntuples(res) > 0)
            *rc = on_row(res, p->orig[i], arg);
    } else if (st == PGRES_COMMAND_OK || st == PGRES_PIPELINE_ABORTED) {
        /* nothing to read, or an earlier error already explains it */
    } else if (*rc == 0) {
        *rc = pb__pg_result_error(s, res, what, err);
    }
}

/* Results come back in order: per item, [its Parse's result, NULL], then its rows and
 * final status, NULL; then the Sync. */
static int read_results(pg_store *s, pipe_plan *p, row_fn on_row, void *arg, pb_err *err)
{
    int rc = 0, item = 0;
    bool expect_prepare = p->n > 0 && p->with_prepare[0];
    bool row_mode_set = false;
    for (;;) {
        /* Single-row mode is chosen just before the first result of that query. */
        if (!expect_prepare && item < p->n && p->items[item].single_row && !row_mode_set) {
            row_mode_set = true;
            if (PQsetSingleRowMode(s->conn) != 1 && rc == 0)
                rc = pb__err_set(err, PB_EINTERNAL, "%s: single-row mode refused",
                                 p->items[item].what);
        }
        PGresult *res = PQgetResult(s->conn);
        if (res == NULL) {
            if (PQstatus(s->conn) == CONNECTION_BAD) {
                if (rc == 0)
                    rc = pb__pg_conn_error(s, err);
                break;
            }
            if (expect_prepare) { /* end of one query's results */
                expect_prepare = false;
            } else {
                item++;
                row_mode_set = false;
                expect_prepare = item < p->n && p->with_prepare[item];
            }
            continue;
        }
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        take_result(s, p, item, expect_prepare, res, on_row, arg, &rc, err);
        PQclear(res);
    }
    return rc;
}

/* Send the items as one pipeline with one Sync (one round trip, one implicit
 * transaction), preparing statements this connection has not seen, and hand every
 * row to `on_row`. The first error wins; the rest of the pipeline is drained. */
int pb__pg_run_pipeline(pg_store *s, const pipe_item *items, int n_items, row_fn on_row, void *arg,
                        pb_err *err)
{
    int rc = pb__pg_ensure_connected(s, err);
    if (rc != 0)
        return rc;
    pipe_plan p;
    if ((rc = plan_pipeline(s, items, n_items, &p, err)) != 0)
        return rc;
    if (PQenterPipelineMode(s->conn) != 1)
        return pb__err_set(err, PB_EINTERNAL, "enter pipeline mode: %s", PQerrorMessage(s->conn));
    rc = send_items(s, &p, err);
    if (rc == 0 && PQpipelineSync(s->conn) != 1)
        rc = pb__pg_conn_error(s, err);
    if (rc != 0) {
        (void)PQexitPipelineMode(s->conn);
        pb__pg_reset_connection(s);
        return rc;
    }
    s->base.stats.round_trips++;
    rc = read_results(s, &p, on_row, arg, err);
    for (int id = 0; id < PST_COUNT; id++) {
        if (p.sent_prepare[id] && !p.prepare_failed[id] && PQstatus(s->conn) == CONNECTION_OK)
            s->prepared[id] = true;
    }
    if (PQexitPipelineMode(s->conn) != 1 && rc == 0)
        rc = pb__err_set(err, PB_EINTERNAL, "exit pipeline mode: %s", PQerrorMessage(s->conn));
    if (PQstatus(s->conn) == CONNECTION_BAD)
        pb__pg_forget_prepared(s);
    pb__pg_drop_if_asked(s);
    return rc;
}
