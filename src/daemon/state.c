/* The daemon's state (dmn_state: disconnected, follower, leader) and its transitions:
 * dmn_enter() is the only place the state changes, and keeps the metrics, systemd's
 * status line and the log in step with it; outages are logged once and backed off. */
#include <stdarg.h>
#include <stdio.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "log.h"
#include "loop.h"

void dmn_status_line(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    (void)sd_notifyf(0, "STATUS=%s", buf);
}

bool dmn_txn_pooling(const dmn_daemon *d)
{
    return d->conf.pooler == APP_POOLER_TRANSACTION;
}

void dmn_count_statements(dmn_daemon *d)
{
    if (d->store == NULL)
        return;
    pb_store_stats st;
    pb_store_stats_get(d->store, &st);
    if (st.statements > d->stats_counted)
        dmn_metrics_statements(d->metrics, st.statements - d->stats_counted);
    d->stats_counted = st.statements;
}

pb_session_opts dmn_session_opts(const dmn_daemon *d)
{
    pb_session_opts o = {
        .statement_timeout_ms = (int)d->conf.statement_timeout_ms,
        .lock_timeout_ms = (int)d->conf.lock_timeout_ms,
        .leader_lock = true,
        .lock_id = d->conf.lock_id,
        .listen = d->conf.listen && !dmn_txn_pooling(d),
        .transaction_pooling = dmn_txn_pooling(d),
    };
    return o;
}

/* The database went away (or never came): log it once, back off, try again. */
static void outage(dmn_daemon *d, dmn_state from, const pb_err *err)
{
    int64_t now = app_clock_now(d->clock);
    dmn_count_statements(d);
    /* SQLite reopens the file; a PostgreSQL store object is kept and reconnects. */
    if (d->store != NULL && pb_store_backend(d->store) == PB_BACKEND_SQLITE) {
        pb_store_free(&d->store);
        d->stats_counted = 0;
    }
    int64_t delay = app_backoff_next(&d->backoff, d->clock);
    d->next_connect_at = now + delay;
    char retry[32];
    app_duration_format(delay, retry, sizeof(retry));
    if (!d->outage) {
        d->outage = true;
        d->outage_since = now;
        dmn_metrics_error(d->metrics, PB_ECONNECT);
        app_log(APP_LOG_WARN,
                from != DS_DISCONNECTED ? "database connection lost" : "database unreachable",
                "error", err->msg[0] != '\0' ? err->msg : pb_strerror(err->code), "retry_in", retry,
                NULL);
    } else if (app_log_enabled(APP_LOG_DEBUG)) {
        app_log(APP_LOG_DEBUG, "database still unreachable", "error", err->msg, "retry_in", retry,
                NULL);
    }
    dmn_status_line("database unreachable, retrying in %s", retry);
}

/* A session began: the outage (if any) is over, and it starts with a full pass, since it
 * may have missed notifications. */
static void session_began(dmn_daemon *d)
{
    int64_t now = app_clock_now(d->clock);
    if (d->outage) {
        char down[32];
        app_duration_format(now - d->outage_since, down, sizeof(down));
        app_log(APP_LOG_INFO, "database reachable again", "outage", down, NULL);
        dmn_metrics_reconnect(d->metrics);
    } else if (!d->ever_connected) {
        app_log(APP_LOG_INFO, "connected", "backend",
                pb_store_backend(d->store) == PB_BACKEND_PG ? "postgres" : "sqlite", NULL);
    }
    d->outage = false;
    app_backoff_reset(&d->backoff);
    d->trust_unchanged = false;
    if (!d->ever_connected) {
        d->ever_connected = true;
        if (!d->once)
            (void)sd_notify(0, "READY=1");
    }
    d->next_full_at = now;
    d->next_try_at = now + app_jitter(d->clock, d->conf.interval_ms / 2, JITTER);
}

/* Leading or following, said once per change. Under transaction pooling the role moves
 * with every pass (replicas take turns), so only the debug log follows it. */
static void role_changed(dmn_daemon *d, dmn_state to)
{
    if (pb_store_backend(d->store) != PB_BACKEND_PG)
        return;
    char lock[24];
    (void)snprintf(lock, sizeof(lock), "%lld", (long long)d->conf.lock_id);
    bool txn = dmn_txn_pooling(d);
    app_log_level level = txn ? APP_LOG_DEBUG : APP_LOG_INFO;
    if (to == DS_LEADER) {
        app_log(level,
                txn ? "leading this pass: holding the transaction's advisory lock"
                    : "leading: holding the advisory lock",
                "lock_id", lock, NULL);
        dmn_status_line(txn ? "leader of the last pass (lock %s)" : "leader (lock %s)", lock);
    } else {
        app_log(level,
                txn ? "following: another replica's pass holds the advisory lock"
                    : "following: another replica holds the advisory lock",
                "lock_id", lock, NULL);
        dmn_status_line("follower (lock %s held elsewhere)", lock);
    }
}

void dmn_enter(dmn_daemon *d, dmn_state to, const pb_err *why)
{
    dmn_state from = d->state;
    d->state = to;
    if (d->metrics != NULL)
        dmn_metrics_set_state(d->metrics, to != DS_DISCONNECTED, to == DS_LEADER);
    if (to == DS_DISCONNECTED) {
        d->listening = false;
        if (why != NULL)
            outage(d, from, why);
        return;
    }
    if (from == DS_DISCONNECTED)
        session_began(d);
    else if (to == DS_LEADER && from == DS_FOLLOWER && !dmn_txn_pooling(d))
        d->next_full_at = app_clock_now(d->clock); /* just took over: a full pass now */
    if (from == DS_DISCONNECTED && dmn_txn_pooling(d))
        dmn_status_line("connected; the lock is taken per pass (transaction pooling)");
    else if (from != to)
        role_changed(d, to);
}

void dmn_close_store(dmn_daemon *d)
{
    dmn_count_statements(d);
    pb_store_free(&d->store); /* ends the session: the server releases the lock */
    d->stats_counted = 0;
    dmn_enter(d, DS_DISCONNECTED, NULL);
}
