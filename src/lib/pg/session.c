/* PostgreSQL backend, the daemon's session: a non-blocking connect that a signal can
 * interrupt and that refuses a read-only server, the one statement that sets a session up
 * (timeouts, leader lock, triggers found), LISTEN, notifications, cancelling a statement
 * in flight, and under transaction pooling the pass's own transaction instead. */
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pg.h"

/* ---- long-running use ---- */

/* Poll PQconnectPoll until the connection is made or failed, the deadline passed or
 * `cancel_fd` became readable. Returns 0, or a PB_E* with err set (conn left to the caller). */
static int connect_poll(pg_store *s, int cancel_fd, int64_t deadline, int timeout_ms, pb_err *err)
{
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(s->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        struct pollfd fds[2] = {
            {.fd = PQsocket(s->conn), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT},
            {.fd = cancel_fd, .events = POLLIN},
        };
        int64_t left = deadline - (int64_t)pb__mono_ms();
        if (left <= 0)
            return pb__err_set(err, PB_ECONNECT, "connect to %s: timeout after %d ms", s->where,
                               timeout_ms);
        int n = poll(fds, cancel_fd >= 0 ? 2 : 1, (int)left);
        if (n < 0)
            continue; /* EINTR: a signal; the cancel fd says whether it matters */
        if (cancel_fd >= 0 && (fds[1].revents & POLLIN))
            return pb__err_set(err, PB_EINTERRUPTED, "connect to %s: interrupted", s->where);
        if (n > 0)
            st = PQconnectPoll(s->conn);
    }
    return PQstatus(s->conn) == CONNECTION_OK ? 0 : pb__pg_conn_error(s, err);
}

/* The daemon must write: a server that reports itself read-only when the session starts
 * (PostgreSQL 14 and later send both) is no use, however long the session lasts. With a
 * multi-host URL, target_session_attrs=read-write makes libpq skip it; without, this does. */
static int refuse_read_only(pg_store *s, pb_err *err)
{
    const char *standby = PQparameterStatus(s->conn, "in_hot_standby");
    const char *ro = PQparameterStatus(s->conn, "default_transaction_read_only");
    bool is_standby = standby != NULL && strcmp(standby, "on") == 0;
    if (!is_standby && (ro == NULL || strcmp(ro, "on") != 0))
        return 0;
    (void)pb__err_set(err, PB_ECONNECT, "connect to %s: the server is read-only (%s)", s->where,
                      is_standby ? "in_hot_standby=on: a standby"
                                 : "default_transaction_read_only=on");
    if (err != NULL) /* what a write would have met: the CLI's exit code says refused */
        pb__strlcpy(err->sqlstate, "25006", sizeof(err->sqlstate));
    return PB_ECONNECT;
}

/* A non-blocking connect (PQconnectStartParams + PQconnectPoll), so a daemon waiting for
 * an unreachable server still answers its signals: `cancel_fd` becoming readable ends
 * the wait (PB_EINTERRUPTED). connect_timeout does not apply to this API; `timeout_ms`
 * does. A refusal of our startup options (a pooler) is followed at once by an attempt
 * without them. */
int pb__pg_connect(pb_store *base, int cancel_fd, int timeout_ms, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK && !s->drop)
        return 0;
    s->drop = false;
    pb__pg_forget_prepared(s);
    pb__pg_drop_cancel(s);
    int64_t deadline = (int64_t)pb__mono_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
    int rc;
    do {
        if (s->conn != NULL)
            PQfinish(s->conn);
        const char *vals[PB__PG_N_CONN];
        pb__pg_conn_values(s, vals);
        s->conn = PQconnectStartParams(pb__pg_conn_keys, vals, 1);
        if (s->conn == NULL)
            return pb__err_set(err, PB_ENOMEM, "connect: out of memory");
        rc = connect_poll(s, cancel_fd, deadline, timeout_ms, err);
    } while (rc == PB_ECONNECT && pb__pg_options_refused(s));
    if (rc == 0)
        rc = refuse_read_only(s, err);
    if (rc != 0) {
        if (err != NULL)
            err->retryable = true;
        PQfinish(s->conn);
        s->conn = NULL;
        return rc;
    }
    pb__pg_session_started(s);
    return 0;
}

bool pb__pg_connected(const pb_store *base)
{
    const pg_store *s = (const pg_store *)base;
    return s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK;
}

/* The timeouts (0: none) and the lock id as the text parameters the statements take. */
static void opts_text(const pb_session_opts *o, char st_ms[24], char lk_ms[24], char lock_id[24])
{
    (void)snprintf(st_ms, 24, "%d", o->statement_timeout_ms > 0 ? o->statement_timeout_ms : 0);
    (void)snprintf(lk_ms, 24, "%d", o->lock_timeout_ms > 0 ? o->lock_timeout_ms : 0);
    (void)snprintf(lock_id, 24, "%" PRId64, o->lock_id);
}

int pb__pg_session(pb_store *base, const pb_session_opts *o, bool try_only, pb_session_info *info,
                   pb_err *err)
{
    pg_store *s = (pg_store *)base;
    s->txn_pooling = o->transaction_pooling;
    s->unnamed = o->transaction_pooling || !s->manual;
    if (o->transaction_pooling) {
        /* Nothing may outlive a transaction: no lock, no setting, no LISTEN here. Each
         * pass takes them in its own transaction (pb__pg_pass_begin). */
        info->leader = false;
        return 0;
    }
    char st_ms[24], lk_ms[24], lock_id[24];
    opts_text(o, st_ms, lk_ms, lock_id);
    PGresult *res = NULL;
    int rc;
    if (try_only) {
        const char *p[1] = {lock_id};
        rc = pb__pg_exec_params(s, "SELECT pg_try_advisory_lock($1::bigint), true, false", 1, p,
                                &res, "try the leader lock", err);
    } else {
        /* Session-level lock: held for as long as this connection lives, released by the
         * server the moment it ends, so a follower's next try wins. The timeouts bound
         * every statement of every pass on this session. JIT is off for this session
         * only: compiling the status statement costs more than it saves (docs/BENCHMARKS.md:
         * at 10k organizations 33 ms of compilation for a 31 ms statement). */
        const char *p[4] = {st_ms, lk_ms, o->leader_lock ? "true" : "false", lock_id};
        rc = pb__pg_exec_params(s,
                                "SELECT CASE WHEN $3::bool THEN pg_try_advisory_lock($4::bigint)"
                                " ELSE true END,"
                                " set_config('statement_timeout', $1, false) IS NOT NULL"
                                " AND set_config('lock_timeout', $2, false) IS NOT NULL"
                                " AND set_config('jit', 'off', false) IS NOT NULL,"
                                " EXISTS (SELECT 1 FROM pg_catalog.pg_trigger"
                                "  WHERE tgname = 'prebuilds_notify_template_version_presets_ins')",
                                4, p, &res, "set up session", err);
    }
    if (rc != 0)
        return rc;
    info->leader = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    info->triggers_found = PQntuples(res) == 1 && PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);
    if (info->leader && o->listen) {
        if ((rc = pb__pg_exec_params(s, "LISTEN " PB_NOTIFY_CHANNEL, 0, NULL, NULL, "listen",
                                     err)) != 0)
            return rc;
        info->listening = true;
    }
    return 0;
}

/* ---- transaction pooling: one transaction per pass ---- */

/* What the startup options and the session statement give a session, for this
 * transaction only, and the leader lock for as long as it lasts (Coder's own reconciler
 * takes the same kind of lock for each of its passes). */
#define PASS_SETUP                                                                                 \
    "SELECT pg_catalog.set_config('statement_timeout', $1, true) IS NOT NULL"                      \
    " AND pg_catalog.set_config('lock_timeout', $2, true) IS NOT NULL"                             \
    " AND pg_catalog.set_config('search_path', 'public', true) IS NOT NULL"                        \
    " AND pg_catalog.set_config('jit', 'off', true) IS NOT NULL,"                                  \
    " pg_catalog.pg_try_advisory_xact_lock($3::bigint)"

static int lock_row(const PGresult *res, int item, void *arg)
{
    if (item == 1 && PQntuples(res) == 1)
        *(bool *)arg = PQgetvalue(res, 0, 1)[0] == 't';
    return 0;
}

int pb__pg_pass_begin(pb_store *base, const pb_session_opts *o, bool *leader, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    *leader = !s->txn_pooling;
    if (!s->txn_pooling)
        return 0;
    char st_ms[24], lk_ms[24], lock_id[24];
    opts_text(o, st_ms, lk_ms, lock_id);
    pipe_item items[2] = {
        {.stmt = -1, .sql = "BEGIN", .what = "begin pass"},
        {.stmt = -1,
         .sql = PASS_SETUP,
         .n_params = 3,
         .params = {st_ms, lk_ms, lock_id},
         .what = "take the pass lock"},
    };
    int rc = pb__pg_run_pipeline(s, items, 2, lock_row, leader, err);
    if (rc != 0 || !*leader)
        (void)pb__pg_pass_end(base, false, NULL); /* failed, or another replica's pass runs */
    return rc;
}

/* COMMIT (or ROLLBACK) the pass's transaction, releasing its lock. Nothing to end when the
 * transaction is already gone (the connection too, or a failed statement's rollback). */
int pb__pg_pass_end(pb_store *base, bool commit, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    if (!s->txn_pooling || s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK)
        return 0;
    PGTransactionStatusType ts = PQtransactionStatus(s->conn);
    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)
        return 0;
    bool failed = commit && ts == PQTRANS_INERROR; /* a statement failed unnoticed */
    commit = commit && !failed;
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    PGresult *res = PQexec(s->conn, commit ? "COMMIT" : "ROLLBACK");
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pb__pg_result_error(s, res, commit ? "commit pass" : "roll back pass", err);
    else if (failed || (commit && strcmp(PQcmdStatus(res), "COMMIT") != 0))
        rc = pb__err_set(err, PB_EDB, "commit pass: the transaction failed and was rolled back");
    PQclear(res);
    return rc;
}

int pb__pg_wait_fd(const pb_store *base)
{
    const pg_store *s = (const pg_store *)base;
    return pb__pg_connected(base) ? PQsocket(s->conn) : -1;
}

int pb__pg_poll(pb_store *base, pb_notify_cb cb, void *arg, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    int rc = pb__pg_ensure_connected(s, err);
    if (rc != 0)
        return rc;
    if (PQconsumeInput(s->conn) != 1 || PQstatus(s->conn) != CONNECTION_OK) {
        rc = pb__pg_conn_error(s, err);
        pb__pg_reset_connection(s);
        return rc;
    }
    PGnotify *n;
    while ((n = PQnotifies(s->conn)) != NULL) {
        if (cb != NULL)
            cb(n->relname, n->extra, arg);
        PQfreemem(n);
    }
    return 0;
}

void pb__pg_interrupt(pb_store *base)
{
    pg_store *s = (pg_store *)base;
    PGcancel *c = atomic_load(&s->cancel);
    if (c != NULL) {
        char errbuf[256]; /* PQcancel is async-signal-safe; its message is not needed */
        (void)PQcancel(c, errbuf, (int)sizeof(errbuf));
    }
}
