/* The store's reconcile contract: the only place that speaks SQL. Two backends (SQLite,
 * PostgreSQL) behind one interface, so the reconcile core stays pure and the CLI never sees
 * a backend. Daemon sessions are in session.h, schema in schema.h, data commands in
 * admin.h. Every call here owns its statements; rows handed to callbacks are borrowed. */
#ifndef PREBUILDS_STORE_H
#define PREBUILDS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "model.h"
#include "parse.h"

typedef struct pb_store pb_store;

/* Called once per row, in (name, id) order. Return 0 to go on, a negative PB_E* to stop
 * (the store then returns that code). */
typedef int (*pb_status_cb)(const pb_status_row *row, void *arg);

/* Called once per row actually inserted (not for conflicts). org_id is borrowed. */
typedef void (*pb_added_cb)(pb_row_kind kind, const char *org_id, void *arg);

/* Statement and round-trip counters, added to by every store call. */
typedef struct pb_store_stats {
    uint64_t statements;  /* SQL statements executed (transaction control included) */
    uint64_t round_trips; /* client/server exchanges; on SQLite, calls into the engine */
} pb_store_stats;

/* Flags for pb_store_open. */
enum {
    PB_OPEN_CREATE = 1, /* SQLite: create the file when missing (init, seed) */
    /* PostgreSQL, for long-running use: do not connect in pb_store_open (pb_store_connect
     * does), and never reconnect implicitly: after a lost connection every call fails with
     * PB_ECONNECT until pb_store_connect, so the caller knows a new session began (its
     * advisory locks, LISTENs and settings are gone) before any statement runs on it. */
    PB_OPEN_MANUAL = 2,
};

/* Open a store. No SQL statement is executed: the first statement of a pass is the
 * pass's own (SQLite's per-connection settings go through the C API, not SQL).
 * On success the caller owns *out (free with pb_store_free). */
PB_MUST_CHECK int pb_store_open(const pb_dburl *url, unsigned flags, pb_store **out, pb_err *err);

/* Close and free; accepts NULL and a pointer to NULL, sets *s to NULL. */
void pb_store_free(pb_store **s);

pb_backend pb_store_backend(const pb_store *s);

/* How long a statement may wait for a lock another connection holds, in milliseconds (0: no
 * bound). SQLite: the busy wait of every statement (default 5000), which pb_store_interrupt
 * cuts short. PostgreSQL: nothing here; the daemon's sessions set lock_timeout
 * (pb_store_session) and one-shot commands keep the server's. */
void pb_store_set_lock_timeout(pb_store *s, int timeout_ms);

/* Counters since open (or since the last reset). */
void pb_store_stats_get(const pb_store *s, pb_store_stats *out);
void pb_store_stats_reset(pb_store *s);

/* ONE statement: every qualifying organization (optionally restricted to `org_ids`,
 * n_org_ids > 0) with its membership facts, streamed to `cb` in (name, id) order. */
PB_MUST_CHECK int pb_store_status(pb_store *s, const pb_target *t, const char *const *org_ids,
                                  size_t n_org_ids, pb_status_cb cb, void *arg, pb_err *err);

/* The pass facts read by the last successful pb_store_status (zeroed before it). */
void pb_store_status_info(const pb_store *s, pb_status_info *out);

/* Fold the changes the summary's triggers logged into the summary (PostgreSQL, when
 * pb_status_info.summary_pending said so); a no-op elsewhere. One round trip. */
PB_MUST_CHECK int pb_store_fold(pb_store *s, pb_err *err);

/* The writes for a set of organizations, set-based and atomic: organization
 * memberships for `member_orgs`, groups for `group_orgs`, group memberships for
 * `group_member_orgs` (the group is looked up after it was created, so a group another
 * writer created meanwhile is found and used). Conflicts are success; organizations
 * deleted meanwhile are skipped. Each org id list is sorted by the caller (lock order). */
typedef struct pb_write_set {
    const char *const *member_orgs;
    size_t n_member_orgs;
    const char *const *group_orgs;
    size_t n_group_orgs;
    const char *const *group_member_orgs;
    size_t n_group_member_orgs;
} pb_write_set;

typedef struct pb_write_result {
    size_t memberships_added;
    size_t groups_created;
    size_t group_memberships_added;
} pb_write_result;

PB_MUST_CHECK int pb_store_apply(pb_store *s, const pb_target *t, const pb_write_set *w,
                                 pb_added_cb added, void *added_arg, pb_write_result *res,
                                 pb_err *err);

#endif
