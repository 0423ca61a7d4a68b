/* The daemon's private parts, shared by daemon.c (its state, the transitions between
 * states, connecting, leading, reloading and the loop), passes.c (one pass and what it
 * reports) and run.c (the `run` command: options, start and stop). */
#ifndef DMN_LOOP_H
#define DMN_LOOP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "duration.h"
#include "http.h"
#include "metrics.h"

#define RECONNECT_BASE_MS  100
#define CONNECT_TIMEOUT_MS 10000
#define MAX_PENDING        1024 /* notified organizations per pass; more: a full pass */
#define JITTER             0.10

/* Where the daemon stands with the database: the one value the loop decides on. Every
 * change goes through dmn_enter, which keeps the metrics, systemd's status and the log in
 * step with it.
 *
 *   DISCONNECTED --connect, lock taken--> LEADER
 *   DISCONNECTED --connect, lock held elsewhere--> FOLLOWER --lock try won--> LEADER
 *   FOLLOWER, LEADER --connection lost, read-only server, reload--> DISCONNECTED
 *
 * Under transaction pooling the lock lives for one pass: a connected daemon is FOLLOWER
 * until a pass takes it, and each pass leaves LEADER or FOLLOWER as its lock try went. */
typedef enum dmn_state {
    DS_DISCONNECTED, /* no session: connecting, or backing off after a failure */
    DS_FOLLOWER,     /* connected; another replica holds the lock */
    DS_LEADER,       /* connected and holding the lock: this replica reconciles */
} dmn_state;

typedef struct dmn_daemon {
    app_daemon_conf conf;
    const char *config_path;
    const char *cli[APP_CONF_N]; /* borrowed from argv */
    bool once;
    const app_clock *clock;

    pb_store *store;
    dmn_metrics *metrics;
    dmn_http *http;

    dmn_state state;
    bool listening; /* LISTEN is active on this (leader's) session */
    bool outage;    /* an outage was logged and its end not yet */
    int64_t outage_since;
    bool ever_connected; /* "connected" logged, READY=1 sent */
    bool triggers_warned;
    bool stop, pass_now, force_read;
    app_backoff backoff;
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
} dmn_daemon;

/* Set by the signal handlers (daemon.c) and around a pass (passes.c), so that SIGTERM can
 * cancel the statement in flight. */
/* The read end of the signals' self-pipe (signals.c). */
int dmn_signal_fd(void);
extern volatile sig_atomic_t dmn_in_pass, dmn_stop_requested;
extern pb_store *volatile dmn_pass_store;

/* ---- daemon.c ---- */

/* Move to `to`. `why` is the failure that ends a session or a connection attempt (the
 * outage is logged once, a reconnect scheduled with backoff); NULL for a deliberate close
 * (a reload, shutdown) or a successful connect or lock try. */
void dmn_enter(dmn_daemon *d, dmn_state to, const pb_err *why);
bool dmn_txn_pooling(const dmn_daemon *d);
pb_session_opts dmn_session_opts(const dmn_daemon *d);
void dmn_count_statements(dmn_daemon *d);
void dmn_status_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Close the store (ending the session: the server releases the lock); DISCONNECTED. */
void dmn_close_store(dmn_daemon *d);
int dmn_signals_setup(void);
void dmn_signals_teardown(void);
/* The HTTP thread must never take our signals: started with them blocked. */
int dmn_start_http(const char *addr, dmn_metrics *m, dmn_http **out, char *msg, size_t len);
/* Until stopped (or, with --once, one pass done). */
void dmn_loop(dmn_daemon *d);

/* ---- passes.c ---- */

/* One pass, full or for the notified organizations; under transaction pooling inside its
 * own transaction, which first takes the lock. Reports to the metrics and the log. */
void dmn_run_pass(dmn_daemon *d, bool full);

#endif
