/* The reconciliation daemon (`prebuilds run`). One thread runs everything that touches
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
 * so one takes over within an interval of the leader's session ending. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "config.h"
#include "daemon.h"
#include "duration.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

static const char run_usage[] =
    "usage: prebuilds [GLOBAL OPTIONS] run [OPTIONS]\n"
    "\n"
    "Reconcile continuously: a full pass every interval (+/-10% jitter), a pass for the\n"
    "organizations PostgreSQL notifies (--listen), one leader among replicas, reconnects\n"
    "with backoff when the database goes away.\n"
    "\n"
    "Options (each also a config file key and a PREBUILDS_* variable, e.g. interval,\n"
    "PREBUILDS_INTERVAL; precedence: option > config file > environment > default):\n"
    "  --interval DURATION        full pass period (default 1m; e.g. 500ms, 2s, 1m, 1h)\n"
    "  --listen                   PostgreSQL: LISTEN for the triggers of\n"
    "                             'prebuilds init --triggers' and reconcile the notified\n"
    "                             organizations at once (config: listen = true)\n"
    "  --lock-id N                advisory lock electing the leader (default 7)\n"
    "  --backoff-max DURATION     cap of the reconnect backoff (default 30s)\n"
    "  --statement-timeout DURATION\n"
    "                             bound on every statement of a pass (default 30s; 0: none)\n"
    "  --lock-timeout DURATION    bound on every lock wait (default 5s; 0: none)\n"
    "  --metrics-addr ADDR        HTTP for /metrics, /healthz, /readyz\n"
    "                             (default 127.0.0.1:9464; HOST:PORT, [IPV6]:PORT, :PORT, off)\n"
    "  --config FILE              key = value file (PREBUILDS_CONFIG), re-read on SIGHUP;\n"
    "                             keys: db, user_id, group_name, group_display_name,\n"
    "                             log_level, log_format, interval, listen, lock_id,\n"
    "                             backoff_max, statement_timeout, lock_timeout, metrics_addr\n"
    "  --once                     one pass (taking the lock if free), then exit with\n"
    "                             reconcile's exit code\n"
    "  --help\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop (a pass in flight is cancelled and rolled back, the lock\n"
    "released; exit 0); SIGHUP reloads the configuration (kept when invalid); SIGUSR1 runs\n"
    "a full pass now. systemd: Type=notify (READY=1, STATUS=, STOPPING=1, WATCHDOG=1).\n";

#define RECONNECT_BASE_MS  100
#define CONNECT_TIMEOUT_MS 10000
#define MAX_PENDING        1024 /* notified organizations per pass; more: a full pass */
#define JITTER             0.10

typedef struct pb_daemon {
    pb_daemon_conf conf;
    const char *config_path;
    const char *cli[PB_CONF_N]; /* borrowed from argv */
    bool once;
    const pb_clock *clock;

    pb_store *store;
    pb_metrics *metrics;
    pb_http *http;

    bool db_up, leader, listening, triggers_warned;
    bool ever_connected, outage;
    int64_t outage_since;
    bool stop, pass_now, force_read;
    bool role_known, was_leader;
    pb_backoff backoff;
    int64_t next_connect_at, next_full_at, next_try_at;
    uint64_t watchdog_ms;
    int64_t next_watchdog_at;
    bool trust_unchanged; /* the last full pass succeeded: an unchanged store needs no pass */
    bool paused;          /* the last pass found the platform's pause switch on */
    bool user_refused;    /* the last pass found the prebuilds user missing or soft-deleted */
    char (*pending)[PB_UUID_LEN + 1];
    size_t n_pending;
    bool pending_overflow;
    uint64_t stats_counted;
    int once_exit;
} pb_daemon;

/* ---- signals ---- */

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t in_pass, stop_requested;
static pb_store *volatile pass_store;

static void on_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    (void)!write(sig_pipe[1], &b, 1);
    /* Cancel the statement in flight so shutdown does not wait for it; its transaction
     * rolls back. PQcancel and sqlite3_interrupt are safe here. */
    if (sig == SIGTERM || sig == SIGINT) {
        stop_requested = 1;
        if (in_pass && pass_store != NULL)
            pb_store_interrupt(pass_store);
    }
    errno = saved;
}

static int signals_setup(void)
{
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            return -1;
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

static void signals_teardown(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        (void)sigaction(sigs[i], &sa, NULL);
    for (int i = 0; i < 2; i++) {
        if (sig_pipe[i] >= 0)
            (void)close(sig_pipe[i]);
        sig_pipe[i] = -1;
    }
}

/* ---- logging helpers (only this thread logs) ---- */

static void log_added(pb_row_kind kind, const char *org_id, const char *org_name, void *arg)
{
    (void)arg;
    const char *what = kind == PB_ROW_MEMBER  ? "added organization membership"
                       : kind == PB_ROW_GROUP ? "created prebuilds group"
                                              : "added group membership";
    pb_log(PB_LOG_INFO, what, "organization_id", org_id, "organization_name", org_name, NULL);
}

static double unix_now(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fmt_ms(char *buf, size_t len, double ms)
{
    (void)snprintf(buf, len, "%.1f", ms);
}

static void status_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void status_line(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    (void)sd_notifyf(0, "STATUS=%s", buf);
}

/* ---- the store's connection ---- */

static void count_statements(pb_daemon *d)
{
    if (d->store == NULL)
        return;
    pb_store_stats st;
    pb_store_stats_get(d->store, &st);
    if (st.statements > d->stats_counted)
        pb_metrics_statements(d->metrics, st.statements - d->stats_counted);
    d->stats_counted = st.statements;
}

static void close_store(pb_daemon *d)
{
    count_statements(d);
    pb_store_free(&d->store); /* ends the session: the server releases the lock */
    d->stats_counted = 0;
    d->db_up = d->leader = d->listening = false;
    pb_metrics_set_state(d->metrics, false, false);
}

static pb_session_opts session_opts(const pb_daemon *d)
{
    pb_session_opts o = {
        .statement_timeout_ms = (int)d->conf.statement_timeout_ms,
        .lock_timeout_ms = (int)d->conf.lock_timeout_ms,
        .leader_lock = true,
        .lock_id = d->conf.lock_id,
        .listen = d->conf.listen,
    };
    return o;
}

static void set_role(pb_daemon *d, bool leader)
{
    d->leader = leader;
    pb_metrics_set_state(d->metrics, d->db_up, leader);
    if (d->role_known && d->was_leader == leader)
        return;
    d->role_known = true;
    d->was_leader = leader;
    char lock[24];
    (void)snprintf(lock, sizeof(lock), "%lld", (long long)d->conf.lock_id);
    if (pb_store_backend(d->store) != PB_BACKEND_PG)
        return;
    if (leader) {
        pb_log(PB_LOG_INFO, "leading: holding the advisory lock", "lock_id", lock, NULL);
        status_line("leader (lock %s)", lock);
    } else {
        pb_log(PB_LOG_INFO, "following: another replica holds the advisory lock", "lock_id", lock,
               NULL);
        status_line("follower (lock %s held elsewhere)", lock);
    }
}

/* The database went away (or never came): log it once, back off, try again. */
static void lost(pb_daemon *d, const pb_err *err)
{
    int64_t now = pb_clock_now(d->clock);
    bool was_up = d->db_up;
    /* SQLite reopens the file; a PostgreSQL store object is kept and reconnects. */
    if (d->store != NULL && pb_store_backend(d->store) == PB_BACKEND_SQLITE)
        close_store(d);
    count_statements(d);
    d->db_up = d->leader = d->listening = false;
    d->role_known = false;
    pb_metrics_set_state(d->metrics, false, false);
    int64_t delay = pb_backoff_next(&d->backoff, d->clock);
    d->next_connect_at = now + delay;
    char retry[32];
    pb_duration_format(delay, retry, sizeof(retry));
    if (!d->outage) {
        d->outage = true;
        d->outage_since = now;
        pb_metrics_error(d->metrics, PB_ECONNECT);
        pb_log(PB_LOG_WARN, was_up ? "database connection lost" : "database unreachable", "error",
               err->msg[0] != '\0' ? err->msg : pb_strerror(err->code), "retry_in", retry, NULL);
    } else if (pb_log_enabled(PB_LOG_DEBUG)) {
        pb_log(PB_LOG_DEBUG, "database still unreachable", "error", err->msg, "retry_in", retry,
               NULL);
    }
    status_line("database unreachable, retrying in %s", retry);
}

static void notified(const char *channel, const char *payload, void *arg)
{
    pb_daemon *d = arg;
    pb_metrics_notifications(d->metrics, 1);
    if (strcmp(channel, PB_NOTIFY_CHANNEL) != 0 || !d->leader)
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
        pb_log(PB_LOG_DEBUG, "ignoring notification", "payload", payload, NULL);
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
static void drain(pb_daemon *d)
{
    if (d->store == NULL || !d->db_up)
        return;
    pb_err err;
    if (pb_store_poll(d->store, notified, d, &err) != 0)
        lost(d, &err);
}

static void try_connect(pb_daemon *d)
{
    pb_err err;
    pb_err_clear(&err);
    int rc = 0;
    if (d->store == NULL) {
        unsigned flags = d->conf.url.backend == PB_BACKEND_PG ? PB_OPEN_MANUAL : 0;
        rc = pb_store_open(&d->conf.url, flags, &d->store, &err);
    }
    if (rc == 0)
        rc = pb_store_connect(d->store, sig_pipe[0], CONNECT_TIMEOUT_MS, &err);
    pb_session_info info = {0};
    pb_session_opts so = session_opts(d);
    if (rc == 0)
        rc = pb_store_session(d->store, &so, &info, &err);
    count_statements(d);
    if (rc != 0) {
        if (d->once) {
            d->stop = true;
            d->once_exit = cli_fail(&err);
            return;
        }
        if (strstr(err.msg, "interrupted") != NULL) {
            d->next_connect_at = pb_clock_now(d->clock); /* a signal: handle it, then retry */
            return;
        }
        lost(d, &err);
        return;
    }
    int64_t now = pb_clock_now(d->clock);
    if (d->outage) {
        char down[32];
        pb_duration_format(now - d->outage_since, down, sizeof(down));
        pb_log(PB_LOG_INFO, "database reachable again", "outage", down, NULL);
        pb_metrics_reconnect(d->metrics);
    } else if (!d->ever_connected) {
        pb_log(PB_LOG_INFO, "connected", "backend",
               pb_store_backend(d->store) == PB_BACKEND_PG ? "postgres" : "sqlite", NULL);
    }
    d->outage = false;
    pb_backoff_reset(&d->backoff);
    d->db_up = true;
    d->listening = info.listening;
    d->trust_unchanged = false;
    set_role(d, info.leader);
    if (d->conf.listen && info.leader && !info.triggers_found && !d->triggers_warned) {
        d->triggers_warned = true;
        pb_log(PB_LOG_WARN,
               "--listen: no notify triggers found; run 'prebuilds init --triggers' (the "
               "periodic pass still runs)",
               NULL);
    }
    if (!d->ever_connected) {
        d->ever_connected = true;
        if (!d->once)
            (void)sd_notify(0, "READY=1");
    }
    /* A new session may have missed notifications: start with a full pass. */
    d->next_full_at = now;
    d->next_try_at = now + pb_jitter(d->clock, d->conf.interval_ms / 2, JITTER);
}

static void try_lead(pb_daemon *d)
{
    pb_err err;
    pb_session_info info = {0};
    pb_session_opts so = session_opts(d);
    int rc = pb_store_try_leader(d->store, &so, &info, &err);
    count_statements(d);
    if (rc != 0) {
        if (rc == PB_ECONNECT || !pb_store_connected(d->store))
            lost(d, &err);
        else
            pb_log(PB_LOG_WARN, "leader lock try failed", "error", err.msg, NULL);
    } else {
        d->listening = info.listening;
        set_role(d, info.leader);
        if (info.leader)
            d->next_full_at = pb_clock_now(d->clock);
    }
    d->next_try_at = pb_clock_now(d->clock) + pb_jitter(d->clock, d->conf.interval_ms / 2, JITTER);
}

/* ---- one pass ---- */

static int once_exit_code(int rc)
{
    if (rc == 0)
        return PB_EXIT_OK;
    if (rc == PB_ECONNECT || rc == PB_ENOSCHEMA || rc == PB_EPRIVILEGE || rc == PB_ENOUSER ||
        rc == PB_EINVAL || rc == PB_EPAUSED)
        return cli_exit_code(rc);
    return PB_EXIT_PARTIAL;
}

/* The platform's pause switch and the prebuilds user are states, not errors to repeat:
 * each change is logged once, the gauge and the systemd status follow it, and nothing is
 * written meanwhile (the platform's own cleanup of a deleted user is never fought). */
static void follow_states(pb_daemon *d, int rc, const pb_report *r, const pb_err *err)
{
    bool paused = rc == PB_EPAUSED;
    bool refused = rc == PB_ENOUSER;
    bool read = rc == 0 || paused || refused;
    if (!read)
        return;
    if (paused != d->paused) {
        d->paused = paused;
        pb_metrics_set_paused(d->metrics, paused);
        pb_log(paused ? PB_LOG_WARN : PB_LOG_INFO,
               paused ? "reconciliation paused by the platform's switch (site_configs "
                        "prebuilds_settings): writing nothing until it is lifted"
                      : "reconciliation resumed: the platform's pause switch was lifted",
               NULL);
    }
    if (refused != d->user_refused) {
        d->user_refused = refused;
        if (refused)
            pb_log(PB_LOG_WARN, "writing nothing: the prebuilds user is unusable", "error",
                   err->msg, NULL);
        else
            pb_log(PB_LOG_INFO, "the prebuilds user is usable again", NULL);
    }
    if (paused)
        status_line("leader: paused by the platform's switch, writing nothing");
    else if (refused)
        status_line("leader: prebuilds user %s, writing nothing",
                    r->user == PB_USER_DELETED ? "soft-deleted" : "missing");
}

static void run_pass(pb_daemon *d, bool full)
{
    const char **ids = NULL;
    size_t n_ids = 0;
    if (!full) {
        ids = malloc(d->n_pending * sizeof(*ids));
        if (ids == NULL)
            full = true;
        for (size_t i = 0; ids != NULL && i < d->n_pending; i++)
            ids[n_ids++] = d->pending[i];
    }
    int64_t start = pb_clock_now(d->clock);
    pb_err err;
    pb_err_clear(&err);
    pb_report r;
    pb_report_init(&r);

    /* Nothing committed by anyone else since our last successful full pass means nothing
     * can be missing (our own commits do not count, and they repaired what we saw). The
     * store says whether it can tell (SQLite's data_version) or not (always "changed"). */
    bool changed = true;
    if (full && pb_store_changed(d->store, &changed, &err) == 0 && !changed && d->trust_unchanged &&
        !d->force_read) {
        count_statements(d);
        pb_metrics_pass(d->metrics, PB_PASS_SKIPPED, (double)(pb_clock_now(d->clock) - start) / 1e3,
                        NULL, true, unix_now());
        pb_log(PB_LOG_DEBUG, "pass skipped: no commit since the last pass", NULL);
        goto out;
    }
    pb_err_clear(&err);
    pb_reconcile_opts o = {.org_ids = ids, .n_org_ids = n_ids, .added = log_added};
    pass_store = d->store;
    in_pass = 1;
    int rc = pb_reconcile(d->store, &d->conf.target, &o, &r, &err);
    in_pass = 0;
    count_statements(d);
    double secs = r.duration_ms / 1e3;
    size_t added = r.memberships_added + r.groups_created + r.group_memberships_added;
    pb_pass_result result = rc == PB_EPAUSED ? PB_PASS_PAUSED
                            : rc != 0        ? PB_PASS_FAILED
                            : added > 0      ? PB_PASS_REPAIRED
                                             : PB_PASS_CONVERGED;
    follow_states(d, rc, &r, &err);
    pb_metrics_pass(d->metrics, result, secs, &r, full, unix_now());
    char orgs[24], stmts[24], dur[24], n_m[24], n_g[24], n_gm[24];
    (void)snprintf(orgs, sizeof(orgs), "%zu", r.organizations);
    (void)snprintf(stmts, sizeof(stmts), "%llu", (unsigned long long)r.statements);
    fmt_ms(dur, sizeof(dur), r.duration_ms);
    const char *scope = full ? "full" : "notified";
    if (rc == 0) {
        d->force_read = false;
        if (full)
            d->trust_unchanged = true;
        if (result == PB_PASS_CONVERGED) {
            if (pb_log_enabled(PB_LOG_DEBUG))
                pb_log(PB_LOG_DEBUG, "pass converged", "scope", scope, "organizations", orgs,
                       "statements", stmts, "duration_ms", dur, NULL);
        } else {
            (void)snprintf(n_m, sizeof(n_m), "%zu", r.memberships_added);
            (void)snprintf(n_g, sizeof(n_g), "%zu", r.groups_created);
            (void)snprintf(n_gm, sizeof(n_gm), "%zu", r.group_memberships_added);
            pb_log(PB_LOG_INFO, "pass repaired drift", "scope", scope, "organizations", orgs,
                   "memberships_added", n_m, "groups_created", n_g, "group_memberships_added", n_gm,
                   "statements", stmts, "duration_ms", dur, NULL);
            status_line("leader: repaired %zu rows in %zu organizations", added, r.organizations);
        }
    } else if (rc == PB_EPAUSED || (rc == PB_ENOUSER && !stop_requested)) {
        d->trust_unchanged = false; /* read again next time: the switch or the user may move */
        if (rc == PB_ENOUSER)
            pb_metrics_error(d->metrics, rc);
    } else {
        d->trust_unchanged = false;
        pb_metrics_error(d->metrics, rc);
        if (stop_requested) {
            pb_log(PB_LOG_INFO, "pass cancelled for shutdown; its writes were rolled back", NULL);
        } else if (!pb_store_connected(d->store)) {
            lost(d, &err);
        } else {
            pb_log(PB_LOG_WARN, "pass failed", "scope", scope, "error", err.msg, "duration_ms", dur,
                   NULL);
            status_line("leader: last pass failed: %s", err.msg);
        }
    }
    if (d->once)
        d->once_exit = once_exit_code(rc);
out:
    pb_report_fini(&r);
    free(ids);
    if (!full || d->pending_overflow) {
        d->n_pending = 0;
        d->pending_overflow = false;
    }
}

/* ---- configuration ---- */

static void block_signals(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    (void)pthread_sigmask(SIG_BLOCK, &set, old);
}

/* The HTTP thread must never take our signals: start it with them blocked. */
static int start_http(const char *addr, pb_metrics *m, pb_http **out, char *msg, size_t len)
{
    sigset_t old;
    block_signals(&old);
    int rc = pb_http_start(addr, m, out, msg, len);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static void reload(pb_daemon *d)
{
    pb_daemon_conf nc;
    char msg[600];
    if (pb_daemon_conf_build(&nc, d->config_path, d->cli, msg, sizeof(msg)) != 0) {
        pb_log(PB_LOG_ERROR, "reload refused, configuration unchanged", "error", msg, NULL);
        return;
    }
    if (d->conf.url.backend != nc.url.backend || (nc.listen && nc.url.backend != PB_BACKEND_PG)) {
        pb_log(PB_LOG_ERROR, "reload refused, configuration unchanged", "error",
               nc.listen && nc.url.backend != PB_BACKEND_PG
                   ? "listen needs a PostgreSQL database"
                   : "changing the backend needs a restart",
               NULL);
        pb_daemon_conf_fini(&nc);
        return;
    }
    pb_http *http = d->http;
    bool new_http = strcmp(nc.metrics_addr, d->conf.metrics_addr) != 0;
    if (new_http) {
        pb_http_stop(&d->http); /* the new address may reuse the old port */
        if (start_http(nc.metrics_addr, d->metrics, &http, msg, sizeof(msg)) != 0) {
            pb_log(PB_LOG_ERROR, "reload refused, configuration unchanged", "error", msg, NULL);
            (void)start_http(d->conf.metrics_addr, d->metrics, &d->http, msg, sizeof(msg));
            pb_daemon_conf_fini(&nc);
            return;
        }
        d->http = http;
    }
    bool new_session = strcmp(nc.db, d->conf.db) != 0 || nc.lock_id != d->conf.lock_id ||
                       nc.listen != d->conf.listen ||
                       nc.statement_timeout_ms != d->conf.statement_timeout_ms ||
                       nc.lock_timeout_ms != d->conf.lock_timeout_ms;
    bool new_interval = nc.interval_ms != d->conf.interval_ms;
    pb_daemon_conf_fini(&d->conf);
    d->conf = nc;
    d->conf.target.group_name = d->conf.group_name; /* they pointed into `nc` */
    d->conf.target.group_display_name = d->conf.group_display_name;
    pb_log_setup(d->conf.log_level, d->conf.log_format);
    pb_backoff_init(&d->backoff, RECONNECT_BASE_MS, d->conf.backoff_max_ms);
    char interval[32];
    pb_duration_format(d->conf.interval_ms, interval, sizeof(interval));
    pb_log(PB_LOG_INFO, "configuration reloaded", "interval", interval, "listen",
           d->conf.listen ? "true" : "false", "new_session", new_session ? "true" : "false", NULL);
    int64_t now = pb_clock_now(d->clock);
    if (new_session) {
        close_store(d);
        d->role_known = false;
        d->next_connect_at = now;
    }
    d->force_read = true; /* the target may have changed: read, do not trust data_version */
    if (new_interval || !new_session)
        d->next_full_at = now;
}

/* ---- the loop ---- */

static void handle_signals(pb_daemon *d)
{
    unsigned char buf[64];
    ssize_t n;
    while ((n = read(sig_pipe[0], buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == SIGTERM || buf[i] == SIGINT) {
                if (!d->stop)
                    pb_log(PB_LOG_INFO, "stopping", "signal",
                           buf[i] == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
                d->stop = true;
            } else if (buf[i] == SIGHUP) {
                pb_log(PB_LOG_INFO, "reloading configuration", "signal", "SIGHUP", NULL);
                (void)sd_notify(0, "RELOADING=1");
                reload(d);
                (void)sd_notify(0, "READY=1");
            } else if (buf[i] == SIGUSR1) {
                pb_log(PB_LOG_INFO, "pass requested", "signal", "SIGUSR1", NULL);
                d->pass_now = true;
                d->force_read = true;
            }
        }
    }
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static void wait_for_work(pb_daemon *d, int64_t deadline)
{
    int64_t now = pb_clock_now(d->clock);
    if (d->watchdog_ms > 0)
        deadline = min64(deadline, d->next_watchdog_at);
    int64_t timeout = deadline - now;
    if (timeout < 0)
        timeout = 0;
    if (timeout > 60000)
        timeout = 60000;
    int db_fd = d->db_up ? pb_store_wait_fd(d->store) : -1;
    struct pollfd fds[2] = {{.fd = sig_pipe[0], .events = POLLIN}, {.fd = db_fd, .events = POLLIN}};
    int n = poll(fds, db_fd >= 0 ? 2 : 1, (int)timeout);
    if (n > 0 && db_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
        drain(d);
}

static void watchdog(pb_daemon *d)
{
    if (d->watchdog_ms == 0)
        return;
    int64_t now = pb_clock_now(d->clock);
    if (now >= d->next_watchdog_at) {
        (void)sd_notify(0, "WATCHDOG=1");
        d->next_watchdog_at = now + (int64_t)d->watchdog_ms;
    }
}

static void loop(pb_daemon *d)
{
    while (!d->stop) {
        handle_signals(d);
        if (d->once && d->once_exit != 0)
            return; /* --once could not connect */
        if (d->stop)
            break;
        /* Only this loop pings the watchdog: a stuck pass (or loop) stops the pings. */
        watchdog(d);
        int64_t now = pb_clock_now(d->clock);
        if (!d->db_up) {
            if (d->pass_now || now >= d->next_connect_at) {
                d->pass_now = false;
                try_connect(d);
                continue;
            }
            wait_for_work(d, d->next_connect_at);
            continue;
        }
        if (!d->leader) {
            if (d->once) {
                pb_log(PB_LOG_INFO, "another replica holds the leader lock: nothing to do", NULL);
                d->once_exit = PB_EXIT_OK;
                return;
            }
            if (d->pass_now || now >= d->next_try_at) {
                d->pass_now = false;
                try_lead(d);
                continue;
            }
            wait_for_work(d, d->next_try_at);
            continue;
        }
        if (d->pass_now || now >= d->next_full_at || d->pending_overflow) {
            d->pass_now = false;
            run_pass(d, true);
            d->next_full_at =
                pb_clock_now(d->clock) + pb_jitter(d->clock, d->conf.interval_ms, JITTER);
            drain(d); /* notifications that arrived during the pass */
            if (d->once)
                return;
            continue;
        }
        if (d->n_pending > 0) {
            run_pass(d, false);
            drain(d);
            continue;
        }
        wait_for_work(d, d->next_full_at);
    }
}

/* ---- options ---- */

/* Global options given on the command line (not the environment): they keep precedence
 * over the config file, at start and at every reload. */
static void global_cli(pb_daemon *d, int argc, char **argv)
{
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+", pb_global_options, NULL)) != -1) {
        if (ch >= 0 && ch < PB_CONF_N)
            d->cli[ch] = optarg;
    }
}

int cmd_run(cli_ctx *c, int argc, char **argv, int global_argc, char **global_argv)
{
    (void)c; /* the globals are re-read (with the config file) below */
    pb_daemon dm;
    pb_daemon *d = &dm;
    memset(d, 0, sizeof(*d));
    d->clock = pb_clock_system();
    d->config_path = getenv("PREBUILDS_CONFIG");
    if (d->config_path != NULL && d->config_path[0] == '\0')
        d->config_path = NULL;
    enum { O_CONFIG = 300, O_ONCE, O_HELP, O_NO_LISTEN };
    static const struct option opts[] = {
        {"interval", required_argument, NULL, PB_CONF_INTERVAL},
        {"listen", no_argument, NULL, PB_CONF_LISTEN},
        {"no-listen", no_argument, NULL, O_NO_LISTEN},
        {"lock-id", required_argument, NULL, PB_CONF_LOCK_ID},
        {"backoff-max", required_argument, NULL, PB_CONF_BACKOFF_MAX},
        {"statement-timeout", required_argument, NULL, PB_CONF_STATEMENT_TIMEOUT},
        {"lock-timeout", required_argument, NULL, PB_CONF_LOCK_TIMEOUT},
        {"metrics-addr", required_argument, NULL, PB_CONF_METRICS_ADDR},
        {"config", required_argument, NULL, O_CONFIG},
        {"once", no_argument, NULL, O_ONCE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0}};
    const char *run_cli[PB_CONF_N] = {0};
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (ch == O_HELP) {
            (void)fputs(run_usage, stdout);
            return PB_EXIT_OK;
        } else if (ch == O_ONCE) {
            d->once = true;
        } else if (ch == O_CONFIG) {
            d->config_path = optarg;
        } else if (ch == PB_CONF_LISTEN) {
            run_cli[PB_CONF_LISTEN] = "true";
        } else if (ch == O_NO_LISTEN) {
            run_cli[PB_CONF_LISTEN] = "false";
        } else if (ch >= 0 && ch < PB_CONF_N) {
            run_cli[ch] = optarg;
        } else if (ch == ':') {
            return cli_usage_error("run", "option %s needs a value", argv[optind - 1]);
        } else {
            return cli_usage_error("run", "unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage_error("run", "unexpected argument \"%s\"", argv[optind]);
    global_cli(d, global_argc, global_argv);
    for (int k = 0; k < PB_CONF_N; k++)
        if (run_cli[k] != NULL)
            d->cli[k] = run_cli[k];
    char msg[600];
    if (pb_daemon_conf_build(&d->conf, d->config_path, d->cli, msg, sizeof(msg)) != 0)
        return cli_usage_error("run", "%s", msg);
    if (d->conf.listen && d->conf.url.backend != PB_BACKEND_PG) {
        pb_daemon_conf_fini(&d->conf);
        return cli_usage_error("run", "--listen needs a PostgreSQL database (LISTEN/NOTIFY)");
    }
    d->conf.target.group_name = d->conf.group_name;
    d->conf.target.group_display_name = d->conf.group_display_name;
    pb_log_setup(d->conf.log_level, d->conf.log_format);
    pb_backoff_init(&d->backoff, RECONNECT_BASE_MS, d->conf.backoff_max_ms);
    int ex = PB_EXIT_OK;
    d->metrics = pb_metrics_new(d->conf.url.backend == PB_BACKEND_PG ? "postgres" : "sqlite");
    d->pending = calloc(MAX_PENDING, sizeof(*d->pending));
    if (d->metrics == NULL || d->pending == NULL) {
        (void)fprintf(stderr, "prebuilds run: out of memory\n");
        ex = PB_EXIT_ERROR;
        goto out;
    }
    if (signals_setup() != 0) {
        (void)fprintf(stderr, "prebuilds run: cannot install signal handlers: %s\n",
                      strerror(errno));
        ex = PB_EXIT_ERROR;
        goto out;
    }
    if (!d->once && start_http(d->conf.metrics_addr, d->metrics, &d->http, msg, sizeof(msg)) != 0) {
        (void)fprintf(stderr, "prebuilds run: %s\n", msg);
        ex = PB_EXIT_ERROR;
        goto out;
    }
    uint64_t wd_usec = 0;
    if (!d->once && sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
        d->watchdog_ms = wd_usec / 1000 / 2; /* twice per period */
        if (d->watchdog_ms == 0)
            d->watchdog_ms = 1;
    }
    {
        char interval[32], port[16];
        pb_duration_format(d->conf.interval_ms, interval, sizeof(interval));
        (void)snprintf(port, sizeof(port), "%d", pb_http_port(d->http));
        pb_log(PB_LOG_INFO, d->once ? "running one pass" : "starting", "version", PB_VERSION,
               "backend", d->conf.url.backend == PB_BACKEND_PG ? "postgres" : "sqlite", "interval",
               interval, "listen", d->conf.listen ? "true" : "false", "metrics_addr",
               d->http != NULL ? d->conf.metrics_addr : "off", "metrics_port",
               d->http != NULL ? port : "", NULL);
    }
    status_line("connecting");
    d->next_connect_at = pb_clock_now(d->clock);
    loop(d);
    if (d->once)
        ex = d->once_exit;
    if (!d->once)
        (void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
out:
    close_store(d);
    pb_http_stop(&d->http);
    signals_teardown();
    pb_metrics_free(&d->metrics);
    free(d->pending);
    pb_daemon_conf_fini(&d->conf);
    if (!d->once && ex == PB_EXIT_OK)
        pb_log(PB_LOG_INFO, "stopped", NULL);
    return ex;
}
