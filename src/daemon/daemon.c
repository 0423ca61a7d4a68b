/* The reconciliation daemon (`prebuilds run`): its state, the transitions between states,
 * connecting, leading, reloading, and the loop. One thread runs everything that touches
 * the database and the log: a loop that sleeps in poll() on the self-pipe the signal
 * handlers write to and on the database socket, until the next deadline of a monotonic
 * clock. libmicrohttpd serves /metrics from its own thread, reading a mutex-guarded block.
 *
 * Leadership (PostgreSQL): the leader holds a session-level advisory lock
 * (pg_try_advisory_lock) taken in the one statement that sets a new session up; it is
 * never re-checked while the session lives, because the server releases it exactly when
 * the session ends, and the store never reconnects behind our back (PB_OPEN_MANUAL): a
 * lost connection reaches this loop, which reconnects and tries the lock again before
 * any pass. This keeps a converged leader pass at ONE statement; pipelining a lock try
 * with every status read would make it two. Followers try the lock twice per interval,
 * so one takes over within an interval of the leader's session ending.
 *
 * Behind a transaction pooler (--pooler transaction) a session is not ours to keep: each
 * pass takes a transaction-level lock in its own transaction (passes.c), and there is no
 * LISTEN; every replica tries a pass every interval, and passes never overlap.
 *
 * Here: connecting, leading, reloading and the loop; the state and its transitions are in
 * state.c, the signals in signals.c, the passes in passes.c. */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "log.h"
#include "loop.h"

/* ---- connecting and leading ---- */

static void notified(const char *channel, const char *payload, void *arg)
{
    dmn_daemon *d = arg;
    dmn_metrics_notifications(d->metrics, 1);
    if (strcmp(channel, PB_NOTIFY_CHANNEL) != 0 || d->state != DS_LEADER)
        return;
    if (strcmp(payload, "*") == 0) {
        /* every organization may be concerned (the prebuilds user came back, the pause
         * switch moved): the next pass is a full one */
        d->pending_overflow = true;
        return;
    }
    char id[PB_UUID_LEN + 1];
    pb_err err;
    if (pb_uuid_parse(payload, id, "notified organization id", &err) != 0) {
        app_log(APP_LOG_DEBUG, "ignoring notification", "payload", payload, NULL);
        return;
    }
    for (size_t i = 0; i < d->n_pending; i++)
        if (strcmp(d->pending[i], id) == 0)
            return;
    if (d->n_pending == MAX_PENDING) {
        d->pending_overflow = true;
        return;
    }
    memcpy(d->pending[d->n_pending++], id, sizeof(id));
}

/* Read what the socket holds: notifications, or the news that the server is gone. */
static void drain(dmn_daemon *d)
{
    if (d->store == NULL || d->state == DS_DISCONNECTED)
        return;
    pb_err err;
    if (pb_store_poll(d->store, notified, d, &err) != 0)
        dmn_enter(d, DS_DISCONNECTED, &err);
}

static void try_connect(dmn_daemon *d)
{
    pb_err err;
    pb_err_clear(&err);
    int rc = 0;
    if (d->store == NULL) {
        unsigned flags = d->conf.url.backend == PB_BACKEND_PG ? PB_OPEN_MANUAL : 0;
        rc = pb_store_open(&d->conf.url, flags, &d->store, &err);
    }
    if (rc == 0)
        rc = pb_store_connect(d->store, dmn_signal_fd(), CONNECT_TIMEOUT_MS, &err);
    pb_session_info info = {0};
    pb_session_opts so = dmn_session_opts(d);
    if (rc == 0)
        rc = pb_store_session(d->store, &so, &info, &err);
    dmn_count_statements(d);
    if (rc == PB_EINTERRUPTED && !d->once) {
        d->next_connect_at = app_clock_now(d->clock); /* a signal: handle it, then retry */
        return;
    }
    if (rc != 0 && d->once) {
        d->stop = true;
        if (rc == PB_EINTERRUPTED)
            err.code = PB_ECONNECT; /* no pass ran: the database was not reached */
        d->once_exit = cli_fail(&err);
        return;
    }
    if (rc != 0) {
        dmn_enter(d, DS_DISCONNECTED, &err);
        return;
    }
    d->listening = info.listening;
    dmn_enter(d, info.leader ? DS_LEADER : DS_FOLLOWER, NULL);
    if (so.listen && info.leader && !info.triggers_found && !d->triggers_warned) {
        d->triggers_warned = true;
        app_log(APP_LOG_WARN,
                "--listen: no notify triggers found; run 'prebuilds init --triggers' (the "
                "periodic pass still runs)",
                NULL);
    }
}

static void try_lead(dmn_daemon *d)
{
    pb_err err;
    pb_session_info info = {0};
    pb_session_opts so = dmn_session_opts(d);
    int rc = pb_store_try_leader(d->store, &so, &info, &err);
    dmn_count_statements(d);
    if (rc != 0) {
        if (rc == PB_ECONNECT || !pb_store_connected(d->store))
            dmn_enter(d, DS_DISCONNECTED, &err);
        else
            app_log(APP_LOG_WARN, "leader lock try failed", "error", err.msg, NULL);
    } else {
        d->listening = info.listening;
        dmn_enter(d, info.leader ? DS_LEADER : DS_FOLLOWER, NULL);
    }
    d->next_try_at =
        app_clock_now(d->clock) + app_jitter(d->clock, d->conf.interval_ms / 2, JITTER);
}

/* ---- configuration ---- */

static void reload(dmn_daemon *d)
{
    app_daemon_conf nc;
    char msg[600];
    if (app_daemon_conf_build(&nc, d->config_path, d->cli, msg, sizeof(msg)) != 0) {
        app_log(APP_LOG_ERROR, "reload refused, configuration unchanged", "error", msg, NULL);
        return;
    }
    const char *refused = NULL;
    if (d->conf.url.backend != nc.url.backend)
        refused = "changing the backend needs a restart";
    else if (nc.listen && nc.url.backend != PB_BACKEND_PG)
        refused = "listen needs a PostgreSQL database";
    else if (nc.pooler == APP_POOLER_TRANSACTION && nc.url.backend != PB_BACKEND_PG)
        refused = "pooler = transaction needs a PostgreSQL database";
    if (refused != NULL) {
        app_log(APP_LOG_ERROR, "reload refused, configuration unchanged", "error", refused, NULL);
        app_daemon_conf_fini(&nc);
        return;
    }
    dmn_http *http = d->http;
    bool new_http = strcmp(nc.metrics_addr, d->conf.metrics_addr) != 0;
    if (new_http) {
        dmn_http_stop(&d->http); /* the new address may reuse the old port */
        if (dmn_start_http(nc.metrics_addr, d->metrics, &http, msg, sizeof(msg)) != 0) {
            app_log(APP_LOG_ERROR, "reload refused, configuration unchanged", "error", msg, NULL);
            (void)dmn_start_http(d->conf.metrics_addr, d->metrics, &d->http, msg, sizeof(msg));
            app_daemon_conf_fini(&nc);
            return;
        }
        d->http = http;
    }
    bool new_session = strcmp(nc.db, d->conf.db) != 0 || nc.lock_id != d->conf.lock_id ||
                       nc.listen != d->conf.listen || nc.pooler != d->conf.pooler ||
                       nc.statement_timeout_ms != d->conf.statement_timeout_ms ||
                       nc.lock_timeout_ms != d->conf.lock_timeout_ms;
    bool new_interval = nc.interval_ms != d->conf.interval_ms;
    char changed[400];
    app_daemon_conf_changes(&d->conf, &nc, changed, sizeof(changed));
    app_daemon_conf_fini(&d->conf);
    d->conf = nc;
    d->conf.target.group_name = d->conf.group_name; /* they pointed into `nc` */
    d->conf.target.group_display_name = d->conf.group_display_name;
    app_log_setup(d->conf.log_level, d->conf.log_format);
    app_backoff_init(&d->backoff, RECONNECT_BASE_MS, d->conf.backoff_max_ms);
    char interval[32];
    app_duration_format(d->conf.interval_ms, interval, sizeof(interval));
    char port[16];
    (void)snprintf(port, sizeof(port), "%d", dmn_http_port(d->http));
    app_log(APP_LOG_INFO, "configuration reloaded", "interval", interval, "listen",
            d->conf.listen ? "true" : "false", "new_session", new_session ? "true" : "false",
            "changed", changed[0] ? changed : "nothing", "metrics_addr",
            d->http != NULL ? d->conf.metrics_addr : "off", "metrics_port",
            d->http != NULL ? port : "", NULL);
    int64_t now = app_clock_now(d->clock);
    if (new_session) {
        dmn_close_store(d);
        d->next_connect_at = now;
    }
    d->force_read = true; /* the target may have changed: read, do not trust data_version */
    if (new_interval || !new_session)
        d->next_full_at = now;
}

/* ---- the loop ---- */

static void handle_signals(dmn_daemon *d)
{
    unsigned char buf[64];
    ssize_t n;
    while ((n = read(dmn_signal_fd(), buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == SIGTERM || buf[i] == SIGINT) {
                if (!d->stop)
                    app_log(APP_LOG_INFO, "stopping", "signal",
                            buf[i] == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
                d->stop = true;
            } else if (buf[i] == SIGHUP) {
                app_log(APP_LOG_INFO, "reloading configuration", "signal", "SIGHUP", NULL);
                (void)sd_notify(0, "RELOADING=1");
                reload(d);
                (void)sd_notify(0, "READY=1");
            } else if (buf[i] == SIGUSR1) {
                app_log(APP_LOG_INFO, "pass requested", "signal", "SIGUSR1", NULL);
                d->pass_now = true;
                d->force_read = true;
            }
        }
    }
}

static void wait_for_work(dmn_daemon *d, int64_t deadline)
{
    int64_t now = app_clock_now(d->clock);
    if (d->watchdog_ms > 0 && d->next_watchdog_at < deadline)
        deadline = d->next_watchdog_at;
    int64_t timeout = deadline - now;
    if (timeout < 0)
        timeout = 0;
    if (timeout > 60000)
        timeout = 60000;
    int db_fd = d->state != DS_DISCONNECTED ? pb_store_wait_fd(d->store) : -1;
    struct pollfd fds[2] = {{.fd = dmn_signal_fd(), .events = POLLIN},
                            {.fd = db_fd, .events = POLLIN}};
    int n = poll(fds, db_fd >= 0 ? 2 : 1, (int)timeout);
    if (n > 0 && db_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
        drain(d);
}

static void watchdog(dmn_daemon *d)
{
    if (d->watchdog_ms == 0)
        return;
    int64_t now = app_clock_now(d->clock);
    if (now >= d->next_watchdog_at) {
        (void)sd_notify(0, "WATCHDOG=1");
        d->next_watchdog_at = now + (int64_t)d->watchdog_ms;
    }
}

/* A full pass when it is due, else a pass for the notified organizations; whether one ran. */
static bool pass_if_due(dmn_daemon *d, int64_t now)
{
    if (d->pass_now || now >= d->next_full_at || d->pending_overflow) {
        d->pass_now = false;
        dmn_run_pass(d, true);
        d->next_full_at =
            app_clock_now(d->clock) + app_jitter(d->clock, d->conf.interval_ms, JITTER);
        drain(d); /* notifications that arrived during the pass */
        return true;
    }
    if (d->n_pending > 0 && d->state == DS_LEADER) {
        dmn_run_pass(d, false);
        drain(d);
        return true;
    }
    return false;
}

/* One turn of the loop for the state the daemon is in; false when the loop should end. */
static bool step(dmn_daemon *d)
{
    int64_t now = app_clock_now(d->clock);
    if (d->state == DS_DISCONNECTED) {
        if (d->pass_now || now >= d->next_connect_at) {
            d->pass_now = false;
            try_connect(d);
        } else {
            wait_for_work(d, d->next_connect_at);
        }
        return true;
    }
    if (d->state == DS_FOLLOWER && !dmn_txn_pooling(d)) {
        if (d->once) {
            app_log(APP_LOG_INFO, "another replica holds the leader lock: nothing to do", NULL);
            d->once_exit = APP_EXIT_OK;
            return false;
        }
        if (d->pass_now || now >= d->next_try_at) {
            d->pass_now = false;
            try_lead(d);
        } else {
            wait_for_work(d, d->next_try_at);
        }
        return true;
    }
    /* The leader, or any replica under transaction pooling (its pass tries the lock). */
    if (pass_if_due(d, now))
        return !d->once;
    wait_for_work(d, d->next_full_at);
    return true;
}

void dmn_loop(dmn_daemon *d)
{
    while (!d->stop) {
        handle_signals(d);
        if (d->once && d->once_exit != 0)
            return; /* --once could not connect */
        if (d->stop)
            break;
        /* Only this loop pings the watchdog: a stuck pass (or loop) stops the pings. */
        watchdog(d);
        if (!step(d))
            return;
    }
}
