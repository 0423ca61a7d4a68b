/* The SQLite backend's private interface: the store struct, its cached statements and the
 * helpers every concern shares (conn.c). Files by concern: conn.c (errors, statement cache,
 * opening, data_version, interrupt), pass.c (status and writes), entries.c (the plan as
 * a table for the writes), schema.c (migrations, init, inspect, the pause switch),
 * admin.c (data commands and seed). */
#ifndef PB_SQ_H
#define PB_SQ_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <sqlite3.h>

#include "internal.h"
#include "sql.h"

/* An SQL expression for a random version-4 UUID in lowercase canonical text. */
#define SQL_UUID4                                                                                  \
    "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || "                            \
    "substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "       \
    "substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"
#define SQL_NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

enum {
    ST_STATUS,
    ST_STATUS_BY_ID,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_MISSING_MEMBER,
    ST_INS_MEMBER,
    ST_MISSING_GROUP,
    ST_INS_GROUP,
    ST_MISSING_GROUP_MEMBER,
    ST_INS_GROUP_MEMBER,
    ST_ADDED_NAMES,
    ST_DATA_VERSION,
    ST_COUNT
};

/* PRAGMA application_id of the files prebuilds creates: "pbdb". */
#define PB__SQ_APP_ID      0x70626462
#define PB__SQ_APP_ID_TEXT "1885496418"

/* The cached statements' SQL (pass.c). */
extern const char *const pb__sq_stmt_sql[ST_COUNT];

typedef struct sqlite_store {
    pb_store base;
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[ST_COUNT];
    /* the busy wait (conn.c): how long, since when, and whether to give up now */
    int lock_timeout_ms; /* 0: no bound */
    int64_t busy_since_ms;
    volatile sig_atomic_t interrupted; /* set by pb_store_interrupt, even in a signal handler */
    /* the file opened, so that one replaced or removed under us is noticed */
    bool have_ident, replaced;
    dev_t dev;
    ino_t ino;
} sqlite_store;

int pb__sq_map_error(sqlite_store *s, int rc, const char *what, pb_err *err);
/* 0 when the file is prebuilds' own; PB_ENOSCHEMA when it is empty, PB_ESCHEMA when it is
 * someone else's (schema.c). `what` names the refused call. */
int pb__sq_require_own(sqlite_store *s, const char *what, pb_err *err);
/* A statement found no table of ours (err says PB_ENOSCHEMA): when the file is another
 * application's (its application_id), that is the error instead, a refusal (PB_ESCHEMA)
 * rather than advice to run init, which would refuse too. Returns err's code. */
int pb__sq_explain_missing(sqlite_store *s, pb_err *err);
/* The cached statement `id`, prepared on first use and reset/cleared for reuse. */
int pb__sq_stmt_get(sqlite_store *s, int id, sqlite3_stmt **out, pb_err *err);
void pb__sq_stmt_done(sqlite3_stmt *st);
void pb__sq_count_statement(sqlite_store *s);
/* Step a bound statement to its end, counted as one statement: `row` for every row (a
 * non-zero return stops there and is returned), a failed step mapped to PB_E* naming
 * `what`. The statement is left for its owner to reset or finalize. */
typedef int (*pb__sq_row_fn)(sqlite3_stmt *st, void *arg);
int pb__sq_each_row(sqlite_store *s, sqlite3_stmt *st, pb__sq_row_fn row, void *arg,
                    const char *what, pb_err *err);
/* Run a cached statement that returns no rows we need. */
int pb__sq_exec_simple(sqlite_store *s, int id, const char *what, pb_err *err);
/* A multi-statement script, one engine call. */
int pb__sq_exec_script(sqlite_store *s, const char *sql, const char *what, pb_err *err);
const char *pb__sq_col_text(sqlite3_stmt *st, int col);
/* First column of the first row of `sql` as an int (0 when no row); `param` binds ?1. */
int pb__sq_query_int(sqlite_store *s, const char *sql, const char *param, int *out, pb_err *err);
/* One statement with text parameters (NULL binds NULL); *changes gets sqlite3_changes. */
int pb__sq_exec_bound(sqlite_store *s, const char *sql, const char *const *params, int n_params,
                      int *changes, const char *what, pb_err *err);

int pb__sq_status(pb_store *base, const pb_target *t, const char *const *ids, size_t n_ids,
                  bool by_id, pb_status_cb cb, void *arg, pb_err *err);
int pb__sq_write(pb_store *base, const pb_target *t, pb__wplan *p, pb_write_result *res,
                 pb_err *err);
/* The plan as a table, prebuilds_plan(?) (entries.c): ? binds the pb__wplan with
 * sqlite3_bind_pointer and this type. Registered on every connection we open. */
#define PB__SQ_PLAN_PTR "pb__wplan"
int pb__sq_register_plan(sqlite3 *db);
int pb__sq_added_names(pb_store *base, pb__wplan *p, pb__added_fn cb, void *arg, pb_err *err);
int pb__sq_init(pb_store *base, const pb_target *t, const pb_init_opts *o, pb_init_result *res,
                pb_err *err);
int pb__sq_inspect(pb_store *base, pb_schema_info *out, pb_err *err);
int pb__sq_set_paused(pb_store *base, bool paused, pb_err *err);
extern const pb__admin_ops pb__sq_admin_ops;
int pb__sq_seed(pb_store *base, const pb_target *t, const pb_seed_opts *o, pb_seed_result *res,
                pb_err *err);

#endif
