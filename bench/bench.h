/* pb_bench: the status statement of the reference platform against ours, on shapes of data
 * and along a growth curve, on PostgreSQL (a production-shaped database with nothing
 * installed, then with our summary) and on SQLite (our own schema), plus a pass repairing
 * 100% drift. It writes results.json; bench/report.jq turns that into docs/BENCHMARKS.md.
 * `pb_bench smoke` runs all of it at toy size and checks counts, never times. */
#ifndef PB_BENCH_H
#define PB_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "prebuilds/prebuilds.h"

#define BENCH_ERR 512

typedef struct bench_cfg {
    const char *pg;          /* libpq conninfo of the server's maintenance database; NULL: no PG */
    const char *sqlite_dir;  /* NULL: no SQLite */
    const char *platform_sh; /* tests/safety/load_platform.sh: the production-shaped schema */
    const char *prebuilds;   /* the CLI whose one-shot and daemon passes are measured */
    int rounds;              /* measured rounds per cell, at most */
    double cell_budget_ms;   /* fewer rounds when one round is slow */
    double scale;            /* multiplies the number of organizations of every shape */
    bool smoke;
    char prefix[32]; /* of database and file names */
} bench_cfg;

/* A shape of data: pb_seed_opts plus `few`, templates configured afterwards when the seed
 * configures none (prebuilds fraction 0). */
typedef struct bench_shape {
    const char *name, *title;
    int64_t orgs, templates, versions, presets;
    double fraction;
    int64_t few;
    bool curve; /* a point of the growth curve (else one of the named shapes) */
    long soak;  /* this many daemon passes on it, for the flat-memory check (0: none) */
} bench_shape;

typedef struct bench_db {
    pb_backend backend;
    char name[64];
    char conninfo[1024]; /* PostgreSQL */
    char path[1024];     /* SQLite */
    char url[1100];      /* as the CLI takes it */
} bench_db;

/* ---- data.c ---- */

/* A fresh data set of the shape, seeded by the library and converged by one library pass. */
int db_create(const bench_cfg *c, const bench_shape *sh, pb_backend b, bench_db *db, json_t *info,
              char *err);
void db_drop(const bench_cfg *c, const bench_db *db);
/* `prebuilds init --summary` through the library (PostgreSQL). */
int db_install_summary(const bench_db *db, char *err);
/* Every organization loses the user's membership, the group and the group membership. */
int db_drift_all(const bench_db *db, char *err);
/* A library store on the data set: as a one-shot command opens it, or as the daemon does
 * (PB_OPEN_MANUAL, connected: its statements are prepared once per session). */
int db_store(const bench_db *db, pb_store **s, bool daemon, char *err);
/* One statement with text parameters ($1, $2 on both backends); `out` gets the first
 * column of the first row as a number when given. */
int db_exec(const bench_db *db, const char *sql, const char *p1, const char *p2, double *out,
            char *err);

/* ---- measure.c ---- */

/* The converged status statement, ours and the reference's, in interleaved rounds. */
json_t *measure_status(const bench_cfg *c, const bench_db *db, bool summary, char *err);
/* Two library passes on one store, then one on a fresh store: counts and facts. */
json_t *measure_passes(const bench_cfg *c, const bench_db *db, char *err);
/* The CLI as a child process (`reconcile --json` or `run --once`): peak RSS, output. */
json_t *measure_cli(const bench_cfg *c, const bench_db *db, const char *const *args);
/* The daemon (`run --interval 1ms`) for `passes` converged passes: its peak RSS (VmHWM)
 * after the first tenth of them and at the end. */
json_t *measure_soak(const bench_cfg *c, const bench_db *db, long passes);

/* ---- judge.c ---- */

json_t *judge_targets(const bench_cfg *c, const json_t *root);
/* The smoke test's assertions; returns the number that failed. */
int smoke_checks(const json_t *root);

static inline double bench_now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
double bench_median(const double *samples, int n);

#endif
