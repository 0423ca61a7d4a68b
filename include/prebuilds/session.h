/* The store in long-running use (the daemon): sessions that survive outages, leadership
 * among replicas, notifications, interruption, and whether a pass can be skipped. */
#ifndef PREBUILDS_SESSION_H
#define PREBUILDS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* ---- long-running use (the daemon) ---- */

/* The channel the triggers of `init --triggers` notify, with an organization id as payload. */
#define PB_NOTIFY_CHANNEL "prebuilds_reconcile"

/* (Re)connect a store opened with PB_OPEN_MANUAL, without blocking longer than
 * `timeout_ms` and returning early (PB_EINTERRUPTED) as soon as `cancel_fd` (-1: none) is
 * readable. Prepared statements are forgotten and prepared again on first use. A server
 * that reports itself read-only (a standby) is refused (PB_ECONNECT, retryable): the
 * caller backs off and connects again, which with a multi-host URL may reach another
 * host. A server that refuses the `options` startup parameter (PgBouncer) is connected to
 * again without it. A no-op when connected, and on SQLite.
 *
 * On a manual store, a statement that fails because the server is read-only (SQLSTATE
 * 25006) fails with PB_ECONNECT and ends the session, as a lost connection would. */
PB_MUST_CHECK int pb_store_connect(pb_store *s, int cancel_fd, int timeout_ms, pb_err *err);

/* Whether the store believes its connection is usable (always true on SQLite). */
bool pb_store_connected(const pb_store *s);

/* Per-session settings, applied once after each connection (PostgreSQL). */
typedef struct pb_session_opts {
    int statement_timeout_ms; /* > 0: bounds every statement of a pass */
    int lock_timeout_ms;      /* > 0: bounds every lock wait */
    bool leader_lock;         /* try the session-level advisory lock `lock_id` */
    int64_t lock_id;
    bool listen; /* when holding the lock (or not asking for it): LISTEN PB_NOTIFY_CHANNEL */
    /* Behind a transaction pooler (PgBouncer's pool_mode = transaction): nothing may
     * outlive a transaction, so pb_store_session sets nothing, takes no lock and does not
     * LISTEN (leader_lock and listen are ignored), statements are never named, and each
     * pass runs between pb_store_pass_begin and pb_store_pass_end. */
    bool transaction_pooling;
} pb_session_opts;

typedef struct pb_session_info {
    bool leader;         /* holds the lock (or did not ask for it) */
    bool listening;      /* LISTEN is active on this session */
    bool triggers_found; /* the notify triggers of `init --triggers` exist */
} pb_session_info;

/* ONE statement sets the timeouts, tries the lock and looks for the triggers; a LISTEN
 * follows in the same round trip when asked and leader. SQLite: nothing to do, leader. */
PB_MUST_CHECK int pb_store_session(pb_store *s, const pb_session_opts *o, pb_session_info *info,
                                   pb_err *err);

/* A follower's one statement: try the session-level advisory lock again; on success,
 * LISTEN (when o->listen) in the same round trip. */
PB_MUST_CHECK int pb_store_try_leader(pb_store *s, const pb_session_opts *o, pb_session_info *info,
                                      pb_err *err);

/* Transaction pooling: open the pass's transaction. ONE round trip: BEGIN, then one
 * statement that sets statement_timeout, lock_timeout, search_path (public) and jit (off)
 * for this transaction only and tries the transaction-level advisory lock `lock_id`
 * (pg_try_advisory_xact_lock). *leader tells whether it was taken; if not (or on failure)
 * the transaction is rolled back at once (a second round trip). When leader, run the pass,
 * then pb_store_pass_end. Otherwise (SQLite, a session not in transaction pooling): no
 * statement, *leader true. */
PB_MUST_CHECK int pb_store_pass_begin(pb_store *s, const pb_session_opts *o, bool *leader,
                                      pb_err *err);

/* End the pass's transaction: COMMIT when `commit`, else ROLLBACK; either releases the
 * lock. One round trip; none when there is no transaction left to end (a lost connection,
 * or nothing begun). Rows a pass reported added before a COMMIT that failed were rolled
 * back with it. */
PB_MUST_CHECK int pb_store_pass_end(pb_store *s, bool commit, pb_err *err);

/* The socket to wait on for notifications and for the server closing the connection;
 * -1 when there is none (SQLite, or not connected). */
int pb_store_wait_fd(const pb_store *s);

/* Called once per notification; channel and payload are borrowed for the call. */
typedef void (*pb_notify_cb)(const char *channel, const char *payload, void *arg);

/* Read whatever arrived on the socket without blocking and hand out the notifications
 * queued so far (including those that arrived during the last statement). Fails with
 * PB_ECONNECT when the connection turned out to be lost. No-op on SQLite. */
PB_MUST_CHECK int pb_store_poll(pb_store *s, pb_notify_cb cb, void *arg, pb_err *err);

/* Has anything changed since the last call? SQLite: `PRAGMA data_version` (one statement
 * that reads no table) moved, i.e. another connection committed; a pass may then be
 * skipped. PostgreSQL cannot tell cheaply: always true, no statement. *changed is true on
 * the first call. */
PB_MUST_CHECK int pb_store_changed(pb_store *s, bool *changed, pb_err *err);

/* Ask the statement in flight to stop (PostgreSQL: a cancel request; SQLite:
 * sqlite3_interrupt). Safe to call from a signal handler on the thread that runs the
 * store's calls; the interrupted call fails and its transaction is rolled back. */
void pb_store_interrupt(pb_store *s);

#endif
