/* The benchmark's shared declarations: a counted connection for code outside the library,
 * the three strategies compared (two reference ones written from the description of the
 * reference platform, and ours), the data sets with their drift, and the worker processes
 * that run passes so that each measurement has a process, and a peak RSS, of its own. */
#ifndef PB_BENCH_H
#define PB_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "prebuilds/prebuilds.h"

#define BENCH_ERR_MAX 512

/* ---- bconn: a connection that counts like the library does ---- */

/* Every statement executed counts one statement and one round trip (on SQLite, a round
 * trip is a call into the engine, as in the library). PostgreSQL statements go through
 * PQexecParams (unnamed statement: Parse, Bind, Execute in one exchange, as the reference
 * platform's driver does); SQLite statements are prepared once and cached. */
typedef struct bconn {
    pb_backend backend;
    PGconn *pg;
    sqlite3 *sq;
    struct bconn_stmt {
        const char *sql; /* the cache key is the address of a static string */
        sqlite3_stmt *st;
    } cache[24];
    size_t n_cache;
    uint64_t statements, round_trips;
    uint64_t changes; /* rows changed by the last statement */
    char sqlstate[6];
    char err[BENCH_ERR_MAX];
} bconn;

/* Outcomes of bconn_exec. A unique violation is its own outcome: the reference
 * strategies count it as success. */
enum { BQ_ERROR = -1, BQ_OK = 0, BQ_UNIQUE = 1 };

/* Called per row with the row's text values (NULL for SQL NULL), borrowed for the call. */
typedef int (*bq_row_fn)(int n_cols, const char *const *vals, void *arg);

/* `target` is a libpq conninfo or an SQLite file path. 0 or -1 (message in c->err). */
int bconn_open(bconn *c, pb_backend backend, const char *target);
void bconn_close(bconn *c);

/* One counted statement with text parameters ($n on PostgreSQL, ?n on SQLite). */
int bconn_exec(bconn *c, const char *sql, int n_params, const char *const *params, bq_row_fn fn,
               void *arg);

/* Uncounted: statements without parameters for setting up and tearing down. */
int bconn_script(bconn *c, const char *sql);

/* Uncounted: the first column of the first row as a double (0 when no row). */
int bconn_number(bconn *c, const char *sql, int n_params, const char *const *params, double *out);

/* ---- the strategies ---- */

typedef enum bench_strategy {
    BS_A = 0, /* reference before optimisation: per preset */
    BS_B = 1, /* reference after optimisation: one status read, then per organization */
    BS_C = 2, /* ours: pb_reconcile */
    BS_COUNT
} bench_strategy;

const char *bench_strategy_name(bench_strategy s); /* "a", "b", "c" */
const char *bench_strategy_title(bench_strategy s);

/* What one pass did and cost. */
typedef struct bench_pass {
    uint64_t statements, round_trips;
    double wall_ms;
    uint64_t inserts;        /* single-row inserts executed: (a) and (b) only */
    uint64_t considered;     /* presets (a) or organizations (b, c) the pass looked at */
    uint64_t added[3];       /* memberships, groups, group memberships really added */
    uint64_t errors;         /* statements that failed other than by a unique violation */
    char err[BENCH_ERR_MAX]; /* the first error, "" when none */
} bench_pass;

/* A database the strategies run against: an SQLite file or a PostgreSQL database. */
typedef struct bench_db {
    pb_backend backend;
    char name[64];     /* PostgreSQL database name, or the file's base name */
    char target[1024]; /* SQLite path or libpq conninfo */
} bench_db;

typedef struct bench_runner {
    bench_strategy strategy;
    pb_backend backend;
    pb_target target;
    bconn conn;      /* (a) and (b) */
    pb_store *store; /* (c) */
} bench_runner;

int runner_open(bench_runner *r, bench_strategy s, const bench_db *db, char *err, size_t len);
/* One pass, timed from the first statement to the last. 0, or -1 on a failure that
 * stops the pass (p->err says why); statements that fail and are skipped count in
 * p->errors instead. */
int runner_pass(bench_runner *r, bench_pass *p);
void runner_close(bench_runner *r);

/* The reference platform's formulation of the status question (strategy b), per backend:
 * $1/?1 the user id, $2/?2 the group name. Rows: org id, name, is member (t/f or 1/0),
 * group id or NULL, in group. */
const char *ref_status_sql(pb_backend b);

/* ---- data sets and drift ---- */

/* A fresh database (CREATE DATABASE, or a new file) initialised and seeded with the
 * library's own pb_store_seed, without drift; PostgreSQL is then vacuumed and analysed,
 * as autovacuum would leave it. */
int dataset_create(bench_db *db, pb_backend backend, const char *pg_base, const char *sqlite_dir,
                   const char *name, const pb_seed_opts *o, pb_seed_result *res, char *err,
                   size_t len);
void dataset_drop(const bench_db *db, const char *pg_base);

/* Re-creates the seed's drift (the same organizations miss the same rows as
 * `pb_store_seed --drift-fraction` would make them miss) on a connection of its own. */
typedef struct drifter {
    bconn conn;
    bconn admin; /* PostgreSQL: the maintenance database, for pg_stat_statements */
    char db_name[64];
    pb_backend backend;
    double drift;
    int64_t n_drifted; /* organizations drifted */
    int64_t n_rows;    /* rows deleted by one apply */
    char *trigger_sql; /* SQLite: the membership trigger, recreated after deletes */
    char trigger_name[128];
    pb_target target;
} drifter;

int drifter_open(drifter *d, const bench_db *db, const char *pg_base, const pb_seed_opts *seeded,
                 double drift);
/* Delete the rows the drift removes (nothing when drift is 0). */
int drifter_apply(drifter *d);
/* Organizations that miss something: among the drifted ones (cheap), or with `full`
 * among all qualifying ones, by the reference status question. */
int drifter_missing(drifter *d, bool full, int64_t *n_missing);
/* PostgreSQL: server execution time and completed statements so far in this database,
 * from pg_stat_statements (the snapshot statement itself excluded). -1 when unavailable. */
int drifter_server(drifter *d, double *exec_ms, double *calls);
void drifter_close(drifter *d);

/* The seed's drift formula in C, for the smoke test's cross-check: how many prebuild
 * organizations among `orgs` and how many of those drifted. */
void drift_expected(const pb_seed_opts *o, double drift, int64_t *prebuild_orgs, int64_t *drifted);

/* ---- worker processes ---- */

/* A child process running one strategy on one database, driven over pipes, so that its
 * peak RSS is the strategy's own. */
typedef struct worker {
    pid_t pid;
    FILE *to, *from;
    char err[BENCH_ERR_MAX];
} worker;

typedef struct worker_loop_result {
    uint64_t passes;
    uint64_t statements_min, statements_max;
    uint64_t round_trips_max;
    double wall_median_ms, wall_p99_ms, wall_max_ms;
    long hwm_kb, rss_kb;
} worker_loop_result;

int worker_start(worker *w, const char *self_exe, bench_strategy s, const bench_db *db);
int worker_pass(worker *w, bench_pass *p, long *hwm_kb, long *rss_kb);
int worker_loop(worker *w, uint64_t n, worker_loop_result *out);
/* Ask the child to quit, reap it; *maxrss_kb is the kernel's ru_maxrss of the child. */
int worker_stop(worker *w, long *maxrss_kb);

/* The child's side: reads commands on stdin until "quit". */
int worker_main(int argc, char **argv);

/* VmHWM and VmRSS of this process, in KiB (-1 when unknown). */
void bench_mem_kb(long *hwm_kb, long *rss_kb);

double bench_now_ms(void);

#endif
