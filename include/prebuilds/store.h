/* The store: the only place that speaks SQL. Two backends (SQLite, PostgreSQL) behind
 * one interface, so the reconcile core stays pure and the CLI never sees a backend.
 * Every call here owns its statements; rows handed to callbacks are borrowed. */
#ifndef PREBUILDS_STORE_H
#define PREBUILDS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "parse.h"

typedef struct pb_store pb_store;

/* What the reconciler maintains: which user, which group. Borrowed by every call. */
typedef struct pb_target {
    char user_id[PB_UUID_LEN + 1];
    const char *group_name;
    const char *group_display_name;
} pb_target;

#define PB_DEFAULT_USER_ID            "c42fdf75-3097-471c-8c33-fb52454d81c0"
#define PB_DEFAULT_GROUP_NAME         "coderprebuiltworkspaces"
#define PB_DEFAULT_GROUP_DISPLAY_NAME "Prebuilt Workspaces"

/* Fill `t` with the reference platform's defaults. */
void pb_target_init_default(pb_target *t);

/* One qualifying organization as the status statement sees it. */
typedef struct pb_status_row {
    char org_id[PB_UUID_LEN + 1];
    const char *org_name;           /* borrowed: valid only during the callback */
    bool has_member;                /* the prebuilds user is an organization member */
    bool has_group;                 /* the prebuilds group exists */
    char group_id[PB_UUID_LEN + 1]; /* "" when !has_group */
    bool in_group;                  /* the prebuilds user is in the group */
    bool user_exists;               /* the prebuilds user row exists in users */
} pb_status_row;

/* Called once per row, in (name, id) order. Return 0 to go on, a negative PB_E* to stop
 * (the store then returns that code). */
typedef int (*pb_status_cb)(const pb_status_row *row, void *arg);

/* Kinds of rows the reconciler adds. */
typedef enum pb_row_kind {
    PB_ROW_MEMBER = 1,       /* organization_members */
    PB_ROW_GROUP = 2,        /* groups */
    PB_ROW_GROUP_MEMBER = 4, /* group_members */
} pb_row_kind;

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

/* Counters since open (or since the last reset). */
void pb_store_stats_get(const pb_store *s, pb_store_stats *out);
void pb_store_stats_reset(pb_store *s);

/* ONE statement: every qualifying organization (optionally restricted to `org_ids`,
 * n_org_ids > 0) with its membership facts, streamed to `cb` in (name, id) order. */
PB_MUST_CHECK int pb_store_status(pb_store *s, const pb_target *t, const char *const *org_ids,
                                  size_t n_org_ids, pb_status_cb cb, void *arg, pb_err *err);

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

/* ---- long-running use (the daemon) ---- */

/* The channel the triggers of `init --triggers` notify, with an organization id as payload. */
#define PB_NOTIFY_CHANNEL "prebuilds_reconcile"

/* (Re)connect a store opened with PB_OPEN_MANUAL, without blocking longer than
 * `timeout_ms` and returning early (PB_ECONNECT, "interrupted") as soon as `cancel_fd`
 * (-1: none) is readable. Prepared statements are forgotten and prepared again on first
 * use. A no-op when connected, and on SQLite. */
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

/* The socket to wait on for notifications and for the server closing the connection;
 * -1 when there is none (SQLite, or not connected). */
int pb_store_wait_fd(const pb_store *s);

/* Called once per notification; channel and payload are borrowed for the call. */
typedef void (*pb_notify_cb)(const char *channel, const char *payload, void *arg);

/* Read whatever arrived on the socket without blocking and hand out the notifications
 * queued so far (including those that arrived during the last statement). Fails with
 * PB_ECONNECT when the connection turned out to be lost. No-op on SQLite. */
PB_MUST_CHECK int pb_store_poll(pb_store *s, pb_notify_cb cb, void *arg, pb_err *err);

/* SQLite: `PRAGMA data_version` (one statement that reads no table): it changes when
 * another connection committed. PostgreSQL: PB_EINVAL. */
PB_MUST_CHECK int pb_store_data_version(pb_store *s, int64_t *out, pb_err *err);

/* Ask the statement in flight to stop (PostgreSQL: a cancel request; SQLite:
 * sqlite3_interrupt). Safe to call from a signal handler on the thread that runs the
 * store's calls; the interrupted call fails and its transaction is rolled back. */
void pb_store_interrupt(pb_store *s);

/* ---- schema ---- */

typedef struct pb_init_opts {
    bool recommended_indexes; /* on a foreign (e.g. Coder) database, add our indexes */
    bool create_user;         /* create the prebuilds user row when missing (own schema) */
    bool triggers; /* PostgreSQL: install the notify triggers (`init --triggers`), opt-in */
    /* Install (on a foreign PostgreSQL schema, opt-in) or rebuild (anywhere) the summary of
     * templates with configured presets that the fast status statement reads. */
    bool summary;
} pb_init_opts;

typedef struct pb_init_result {
    bool foreign_schema;       /* tables existed and were not created by us */
    int schema_version_before; /* our migration version, 0 when none */
    int schema_version_after;
    bool user_created;
    bool user_exists;
    int indexes_created;
    int indexes_missing; /* recommended indexes still absent */
    int triggers_installed;
    bool summary_built;   /* the summary was installed or rebuilt by this call */
    bool summary_missing; /* a foreign schema without the summary: status reads the tables */
} pb_init_result;

PB_MUST_CHECK int pb_store_init(pb_store *s, const pb_target *t, const pb_init_opts *o,
                                pb_init_result *res, pb_err *err);

/* Latest migration version this build knows. */
int pb_schema_version_latest(void);

/* ---- administration (the CLI's admin commands; not used by reconcile) ---- */

typedef struct pb_obj_row {
    const char *id;        /* borrowed during the callback */
    const char *parent_id; /* organization / template / version id, or NULL */
    const char *name;
    const char *extra; /* desired_instances for presets ("" = NULL), else NULL */
} pb_obj_row;
typedef int (*pb_obj_cb)(const pb_obj_row *row, void *arg);

typedef enum pb_obj_kind {
    PB_OBJ_ORG = 1,
    PB_OBJ_TEMPLATE,
    PB_OBJ_VERSION,
    PB_OBJ_PRESET,
} pb_obj_kind;

/* Create an object. `id` is the new id (caller generates it); `parent_id` is the owning
 * organization/template/version; `desired` is used for presets (< 0 means NULL);
 * `created_by` is the creating user for templates and versions. */
PB_MUST_CHECK int pb_store_create(pb_store *s, pb_obj_kind kind, const char *id,
                                  const char *parent_id, const char *name, int64_t desired,
                                  const char *created_by, pb_err *err);

/* List objects of a kind, optionally only those under `parent_id`. */
PB_MUST_CHECK int pb_store_list(pb_store *s, pb_obj_kind kind, const char *parent_id, pb_obj_cb cb,
                                void *arg, pb_err *err);

/* Remove the prebuilds user from an organization (kind PB_ROW_MEMBER) or from its
 * prebuilds group (PB_ROW_GROUP_MEMBER), to make drift. *n_removed tells how many rows. */
PB_MUST_CHECK int pb_store_remove(pb_store *s, const pb_target *t, pb_row_kind kind,
                                  const char *org_id, size_t *n_removed, pb_err *err);

/* Resolve an organization given by id or by name into its id. */
PB_MUST_CHECK int pb_store_find_org(pb_store *s, const char *id_or_name, char out[PB_UUID_LEN + 1],
                                    pb_err *err);

/* A synthetic data set. Ids are deterministic for a given seed. */
typedef struct pb_seed_opts {
    int64_t orgs;
    int64_t templates_per_org;
    int64_t versions_per_template;
    int64_t presets_per_version;
    double prebuilds_fraction; /* organizations with desired_instances set */
    double drift_fraction;     /* of those, organizations missing something */
    uint32_t seed;
} pb_seed_opts;

typedef struct pb_seed_result {
    int64_t orgs, templates, versions, presets;
    int64_t prebuild_orgs, drifted_orgs;
} pb_seed_result;

PB_MUST_CHECK int pb_store_seed(pb_store *s, const pb_target *t, const pb_seed_opts *o,
                                pb_seed_result *res, pb_err *err);

#endif
