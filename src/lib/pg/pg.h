/* The PostgreSQL backend's private interface: the store struct, the prepared statements of
 * a pass, and the connection and execution helpers every concern of the backend shares
 * (conn.c). Files by concern: conn.c (errors, connection, simple statements), pipeline.c,
 * pass.c (status, writes, the summary's fold), schema.c (init, migrations, what init
 * installs on a platform's database, uninstall, the pause switch), admin.c (data commands
 * and seed), session.c (the daemon's session). */
#ifndef PB_PG_H
#define PB_PG_H

#include <stdatomic.h>
#include <stdbool.h>

#include <libpq-fe.h>

#include "internal.h"
#include "sql.h"

enum {
    PST_STATUS_ALL, /* the probe, reading the pause switch in site_configs natively */
    PST_STATUS_SOME,
    PST_STATUS_ALL_XML, /* the same where site_configs may be missing (pass.c) */
    PST_STATUS_SOME_XML,
    PST_SUMMARY_ALL,
    PST_SUMMARY_SOME,
    PST_WRITE_ORG,
    PST_WRITE_GROUP_MEMBER,
    PST_FOLD_LOCK,
    PST_FOLD,
    PST_BEGIN,
    PST_COMMIT,
    PST_COUNT
};

typedef struct pb__pg_stmt {
    const char *name;
    const char *sql;
} pb__pg_stmt;

/* The pass's statements, prepared once per connection (pass.c). */
extern const pb__pg_stmt pb__pg_stmts[PST_COUNT];

typedef struct pg_store {
    pb_store base;
    PGconn *conn; /* NULL before the first pb_store_connect of a PB_OPEN_MANUAL store */
    bool prepared[PST_COUNT];
    bool summary; /* this session's join-form status found a summary it can trust */
    /* The native probe found no site_configs (an older platform schema): this session
     * probes with the form that looks the table up first (pass.c). */
    bool no_site_configs;
    bool manual; /* PB_OPEN_MANUAL: never reconnect behind the caller's back */
    /* Statements are never named (Parse, Bind, Execute of the unnamed statement, in the
     * same round trip): one-shot stores, and a daemon behind a transaction pooler, where a
     * named statement would outlive the transaction that prepared it (conn.c). */
    bool unnamed;
    bool txn_pooling; /* pb_session_opts.transaction_pooling: every statement is in a pass
                       * transaction that pb__pg_pass_begin opened (session.c) */
    /* The server refused the `options` startup parameter (PgBouncer does): connect without
     * it, and put search_path and jit in every transaction instead (conn.c). */
    bool no_options;
    bool drop;       /* a manual store met a read-only server: end the session after this call */
    char *conninfo;  /* owned copy, for reconnecting; holds secrets: never printed */
    char *options;   /* the startup options: our search_path, then PGOPTIONS */
    char where[256]; /* host/port/db, never the password, for messages */
    /* For pb_store_interrupt from a signal handler: swapped atomically, and cleared
     * before the object it points to is freed. */
    _Atomic(PGcancel *) cancel;
} pg_store;

/* ---- conn.c (and pipeline.c) ---- */

/* Classify a failed result by SQLSTATE into a PB_E* code, with a message naming `what`. */
int pb__pg_result_error(pg_store *s, const PGresult *res, const char *what, pb_err *err);
int pb__pg_conn_error(pg_store *s, pb_err *err);
void pb__pg_forget_prepared(pg_store *s);
void pb__pg_drop_cancel(pg_store *s);
void pb__pg_quiet_notices(void *arg, const char *message);
void pb__pg_session_started(pg_store *s);
extern const char *const pb__pg_conn_keys[];
#define PB__PG_N_CONN 9
/* Startup options: search_path pinned (see conn.c), and no JIT compilation for our
 * statements (it costs more than it saves on them; see docs/BENCHMARKS.md): both cost no
 * statement. */
#define PB__PG_SEARCH_PATH "-c search_path=public -c jit=off"
void pb__pg_conn_values(const pg_store *s, const char *vals[PB__PG_N_CONN]);
/* After a failed connection attempt: whether the server refused our startup `options` (a
 * pooler's refusal of an unknown startup parameter); if so, later attempts go without it. */
bool pb__pg_options_refused(pg_store *s);
/* The settings our startup options carry, for one transaction (pooler fallback, and
 * transaction pooling). Schema-qualified: search_path is not ours yet when it runs. */
#define PB__PG_TXN_SETTINGS                                                                        \
    "SELECT pg_catalog.set_config('search_path', 'public', true),"                                 \
    " pg_catalog.set_config('jit', 'off', true)"
int pb__pg_ensure_connected(pg_store *s, pb_err *err);
void pb__pg_reset_connection(pg_store *s);
/* End a manual store's session when a read-only server asked for it (s->drop): the
 * caller then sees a lost connection. Called at the end of every execution helper. */
void pb__pg_drop_if_asked(pg_store *s);
/* Whether the next statement starts a transaction that needs PB__PG_TXN_SETTINGS. */
bool pb__pg_needs_txn_settings(const pg_store *s);

typedef struct pipe_item {
    int stmt;        /* PST_*, or -1 with `sql` */
    const char *sql; /* an ad-hoc statement, always unnamed (stmt -1) */
    int n_params;
    const char *params[6];
    int lengths[6];   /* of binary parameters */
    int formats[6];   /* 1: binary (lengths[i] bytes), 0: text */
    bool single_row;  /* stream rows one by one */
    bool binary;      /* rows in binary format (the status read: see pass.c) */
    const char *what; /* for errors */
} pipe_item;

typedef int (*row_fn)(const PGresult *res, int item, void *arg);

/* Send the items as one pipeline with one Sync (one round trip, one implicit
 * transaction), preparing statements this connection has not seen, and hand every row to
 * `on_row`. The first error wins; the rest of the pipeline is drained. */
int pb__pg_run_pipeline(pg_store *s, const pipe_item *items, int n_items, row_fn on_row, void *arg,
                        pb_err *err);

/* One statement with text parameters; *out (if given) receives the result, which the caller
 * PQclears. Checks the result has a command or tuples status. */
int pb__pg_exec_params(pg_store *s, const char *sql, int n_params, const char *const *params,
                       PGresult **out, const char *what, pb_err *err);
int pb__pg_exec_simple(pg_store *s, const char *sql, const char *what, pb_err *err);
int pb__pg_query_int(pg_store *s, const char *sql, int n_params, const char *const *params,
                     int *out, const char *what, pb_err *err);
/* A multi-statement script (simple query protocol), server notices silenced. */
int pb__pg_exec_script(pg_store *s, const char *sql, const char *what, pb_err *err);
void pb__pg_rollback_quietly(pg_store *s);

/* ---- the vtable, by concern ---- */

int pb__pg_status(pb_store *base, const pb_target *t, const char *const *ids, size_t n_ids,
                  bool by_id, pb_status_cb cb, void *arg, pb_err *err);
int pb__pg_fold(pb_store *base, pb_err *err);
int pb__pg_write(pb_store *base, const pb_target *t, pb__wplan *p, pb_write_result *res,
                 pb_err *err);
int pb__pg_init(pb_store *base, const pb_target *t, const pb_init_opts *o, pb_init_result *res,
                pb_err *err);
extern const pb__admin_ops pb__pg_admin_ops;
int pb__pg_seed(pb_store *base, const pb_target *t, const pb_seed_opts *o, pb_seed_result *res,
                pb_err *err);
int pb__pg_connect(pb_store *base, int cancel_fd, int timeout_ms, pb_err *err);
bool pb__pg_connected(const pb_store *base);
int pb__pg_session(pb_store *base, const pb_session_opts *o, bool try_only, pb_session_info *info,
                   pb_err *err);
int pb__pg_pass_begin(pb_store *base, const pb_session_opts *o, bool *leader, pb_err *err);
int pb__pg_pass_end(pb_store *base, bool commit, pb_err *err);
int pb__pg_wait_fd(const pb_store *base);
int pb__pg_poll(pb_store *base, pb_notify_cb cb, void *arg, pb_err *err);
void pb__pg_interrupt(pb_store *base);

/* schema.c: install (or rebuild) the summary and the notify triggers, as the platform
 * tables' owner when `foreign`; what is there; uninstall; the pause switch. */
int pb__pg_summary_install(pg_store *s, bool foreign, pb_init_result *res, pb_err *err);
int pb__pg_notify_install(pg_store *s, bool foreign, const pb_target *t, pb_init_result *res,
                          pb_err *err);
int pb__pg_inspect(pb_store *base, pb_schema_info *out, pb_err *err);
int pb__pg_uninstall(pb_store *base, pb_removed_cb cb, void *arg, size_t *n_removed, pb_err *err);
int pb__pg_set_paused(pb_store *base, bool paused, pb_err *err);

#endif
