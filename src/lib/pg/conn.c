/* PostgreSQL backend, connection and execution: SQLSTATE classification, connecting and
 * reconnecting, the simple statements of init and administration, and opening and closing
 * a store. The pipeline engine every pass statement goes through is in pipeline.c.
 *
 * Poolers. Every call here keeps to what a transaction pooler (PgBouncer's pool_mode =
 * transaction) allows when the store is told so or cannot know: one-shot stores never name
 * a statement (a named one would stay on a server connection that the next transaction
 * may not get, and another client's statement of that name may be waiting on the one it
 * does get); when the server refuses our `options` startup parameter, as PgBouncer does,
 * the store connects without it and sets search_path and jit in every transaction. */
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
    if (strcmp(sqlstate, "25006") == 0) {
        /* A read-only server (a standby, or default_transaction_read_only): this session
         * cannot do the work, and trying again on it never will. */
        return PB_ECONNECT;
    }
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
    bool read_only = sqlstate != NULL && strcmp(sqlstate, "25006") == 0;
    if (read_only && s->manual)
        s->drop = true; /* look for a read-write server, as after a lost connection */
    if (code == PB_ENOSCHEMA)
        (void)pb__err_set(err, code, "%s: schema missing (%s): run 'prebuilds init'", what, msg);
    else if (read_only)
        (void)pb__err_set(err, code, "%s: %s (the server is read-only: a standby?)", what, msg);
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

/* The server refused who we are (a wrong or missing password, no pg_hba.conf entry, an
 * unknown role): a refusal, not an outage. libpq gives no SQLSTATE for a failed connection,
 * so its words are read (the server's own messages in English; others stay "unreachable"). */
static bool auth_refused(PGconn *conn, const char *msg)
{
    static const char *const words[] = {"password authentication failed",
                                        "authentication failed for user", "no pg_hba.conf entry",
                                        "pg_hba.conf rejects", "no password supplied"};
    if (conn != NULL && PQconnectionNeedsPassword(conn))
        return true;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(msg, words[i]) != NULL)
            return true;
    return strstr(msg, "role \"") != NULL && strstr(msg, "does not exist") != NULL;
}

int pb__pg_conn_error(pg_store *s, pb_err *err)
{
    char msg[PB_ERR_MSG_MAX];
    pb__strlcpy(msg, PQerrorMessage(s->conn), sizeof(msg));
    pb__first_line(msg);
    if (strstr(msg, "definition of service") != NULL || strstr(msg, "service file") != NULL)
        return pb__err_set(err, PB_EINVAL, "connect to %s: %s", s->where, msg); /* usage */
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_BAD && auth_refused(s->conn, msg)) {
        (void)pb__err_set(err, PB_EPRIVILEGE, "connect to %s: %s%s", s->where, msg,
                          PQconnectionNeedsPassword(s->conn)
                              ? " (give it in a password file, PGPASSFILE or ~/.pgpass, a service "
                                "file or the db key of the configuration file)"
                              : "");
        return PB_EPRIVILEGE;
    }
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
    s->no_site_configs = false; /* a new session probes natively again (pass.c) */
    if (s->manual)              /* a daemon: a server notice must not bypass its log */
        PQsetNoticeProcessor(s->conn, pb__pg_quiet_notices, NULL);
    pb__pg_drop_cancel(s);
    atomic_store(&s->cancel, PQgetCancel(s->conn));
}

/* Our defaults first, the user's string last: libpq lets later settings win. `options`
 * pins search_path to public (pg_catalog is still searched first), so that nobody who can
 * change the database's or a role's settings, or create a schema named after our role, can
 * put objects of their own in front of the tables and functions our SQL names: such an
 * object would run with our session's rights. PGOPTIONS, then the URL's own `options`, come
 * after ours and win (that is how to name another schema). Without `options` (a pooler
 * refused it), PB__PG_TXN_SETTINGS gives every transaction the same two settings. */
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
    vals[6] = s->no_options ? NULL : s->options; /* NULL: libpq skips the key */
    vals[7] = s->conninfo;
    vals[8] = NULL;
}

/* PgBouncer answers a startup packet holding a parameter it does not track with this
 * FATAL message and no other sign: a connection failure carries no SQLSTATE that libpq
 * hands out, so the text (a pooler's, not ours) is all there is to go by. */
bool pb__pg_options_refused(pg_store *s)
{
    if (s->no_options || s->conn == NULL ||
        strstr(PQerrorMessage(s->conn), "unsupported startup parameter: options") == NULL)
        return false;
    s->no_options = true;
    return true;
}

/* End a manual store's session on a read-only server (pb__pg_result_error asked for it):
 * the caller sees a lost connection and reconnects, which may reach another host. */
void pb__pg_drop_if_asked(pg_store *s)
{
    if (!s->drop)
        return;
    s->drop = false;
    pb__pg_forget_prepared(s);
    pb__pg_drop_cancel(s);
    PQfinish(s->conn);
    s->conn = NULL;
}

/* Reconnect when the connection broke; prepared statements die with it. A manual store
 * reports the loss instead: its caller reconnects and sets the new session up. */
int pb__pg_ensure_connected(pg_store *s, pb_err *err)
{
    pb__pg_drop_if_asked(s);
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

/* Whether the next statement starts a transaction that needs PB__PG_TXN_SETTINGS: our
 * startup options were refused, and nobody set the transaction up (under transaction
 * pooling, pb__pg_pass_begin does, and every statement runs inside its transaction). */
bool pb__pg_needs_txn_settings(const pg_store *s)
{
    return s->no_options && !s->txn_pooling && PQtransactionStatus(s->conn) == PQTRANS_IDLE;
}

/* ---- simple statements (init and administration) ---- */

/* PB__PG_TXN_SETTINGS, then the statement, in one pipeline: one round trip, one
 * transaction (a BEGIN there turns it into the caller's, keeping the settings). Returns the
 * first failed result, else the statement's; NULL when the connection failed. */
static PGresult *exec_with_settings(pg_store *s, const char *sql, int n_params,
                                    const char *const *params)
{
    if (PQenterPipelineMode(s->conn) != 1)
        return NULL;
    PGresult *failed = NULL, *last = NULL;
    int item = 0;
    if (PQsendQueryParams(s->conn, PB__PG_TXN_SETTINGS, 0, NULL, NULL, NULL, NULL, 0) == 1 &&
        PQsendQueryParams(s->conn, sql, n_params, NULL, params, NULL, NULL, 0) == 1 &&
        PQpipelineSync(s->conn) == 1) {
        s->base.stats.statements++;
        for (;;) {
            PGresult *res = PQgetResult(s->conn);
            if (res == NULL) {
                if (PQstatus(s->conn) == CONNECTION_BAD)
                    break;
                item++;
                continue;
            }
            ExecStatusType st = PQresultStatus(res);
            if (st == PGRES_PIPELINE_SYNC) {
                PQclear(res);
                break;
            }
            if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && failed == NULL &&
                st != PGRES_PIPELINE_ABORTED) {
                failed = res;
            } else if (item == 1 && st != PGRES_PIPELINE_ABORTED) {
                PQclear(last);
                last = res;
            } else {
                PQclear(res);
            }
        }
    }
    (void)PQexitPipelineMode(s->conn);
    if (failed != NULL) {
        PQclear(last);
        return failed;
    }
    return last;
}

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
    PGresult *res = NULL;
    bool alone = !pb__pg_needs_txn_settings(s);
    if (!alone) {
        res = exec_with_settings(s, sql, n_params, params);
        const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (state != NULL && strcmp(state, "25001") == 0) {
            /* It must run alone, outside any transaction (CREATE INDEX CONCURRENTLY):
             * then it cannot have the settings. It failed before doing anything. */
            PQclear(res);
            res = NULL;
            alone = true;
        }
    }
    if (alone)
        res = PQexecParams(s->conn, sql, n_params, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = pb__pg_result_error(s, res, what, err);
        PQclear(res);
        pb__pg_drop_if_asked(s);
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
    if (s->conn != NULL && PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(s->conn, "ROLLBACK");
        PQclear(res);
    }
}

int pb__pg_exec_script(pg_store *s, const char *sql, const char *what, pb_err *err)
{
    int rc = pb__pg_ensure_connected(s, err);
    if (rc != 0)
        return rc;
    /* The script's statements share one implicit transaction (none of ours has its own
     * BEGIN or COMMIT), so settings put first hold for all of them. */
    char *with = NULL;
    if (pb__pg_needs_txn_settings(s)) {
        size_t len = sizeof(PB__PG_TXN_SETTINGS ";\n") + strlen(sql);
        if ((with = pb__malloc(len)) == NULL)
            return pb__err_set(err, PB_ENOMEM, "%s: out of memory", what);
        (void)snprintf(with, len, "%s;\n%s", PB__PG_TXN_SETTINGS, sql);
        s->base.stats.statements++;
    }
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    /* "does not exist, skipping" from the scripts' DROP ... IF EXISTS is not news. */
    PQnoticeProcessor old_notice = PQsetNoticeProcessor(s->conn, pb__pg_quiet_notices, NULL);
    PGresult *r = PQexec(s->conn, with != NULL ? with : sql);
    (void)PQsetNoticeProcessor(s->conn, old_notice, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = pb__pg_result_error(s, r, what, err);
    PQclear(r);
    pb__free(with);
    pb__pg_drop_if_asked(s);
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
    .write = pb__pg_write,
    .init = pb__pg_init,
    .admin = &pb__pg_admin_ops,
    .seed = pb__pg_seed,
    .connect = pb__pg_connect,
    .connected = pb__pg_connected,
    .session = pb__pg_session,
    .pass_begin = pb__pg_pass_begin,
    .pass_end = pb__pg_pass_end,
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
    s->unnamed = !s->manual; /* one pass: naming its statements would buy nothing */
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
    if (s->conn != NULL && PQstatus(s->conn) != CONNECTION_OK && pb__pg_options_refused(s)) {
        PQfinish(s->conn);
        pb__pg_conn_values(s, vals);
        s->conn = PQconnectdbParams(pb__pg_conn_keys, vals, 1);
    }
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
