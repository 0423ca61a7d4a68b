/* A benchmark run: its configuration, the cells it measures and the JSON tree it returns,
 * shared by the command line (main.c), the full run (run.c) and the smoke test (smoke.c),
 * which runs the same code at toy size and checks the counts. */
#ifndef PB_BENCH_RUN_H
#define PB_BENCH_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "bench.h"

#define MAX_SIZES 8
#define N_DRIFTS  3

/* The drifts every size is measured at: converged, 1% and 100% of the organizations with
 * prebuilds. */
extern const double run_drifts[N_DRIFTS];
/* [0] PostgreSQL, [1] SQLite: the order of the tables and of every per-backend array. */
extern const pb_backend run_backends[2];

typedef struct run_cfg {
    const char *pg_base;    /* NULL: no PostgreSQL */
    const char *sqlite_dir; /* NULL: no SQLite */
    int64_t sizes[MAX_SIZES];
    int n_sizes;
    int64_t templates_per_org, versions_per_template, presets_per_version;
    int passes;
    int rounds;
    uint64_t soak_passes; /* daemon passes in the long runs */
    int64_t soak_orgs;
    uint64_t idle_passes;  /* SQLite skipped passes timed */
    int listen_samples;    /* new organizations timed with --listen */
    const char *prebuilds; /* the `prebuilds` binary whose daemon is measured */
    int64_t rss_orgs;      /* the data set where every organization has prebuilds */
    double slow_ms;        /* a pass slower than this: one measured pass per cell */
    double max_pass_ms;    /* a pass slower than this: its drifted cells are not measured */
    char *ours_sql;        /* the library's summary-form status statement */
    char *proposed_sql;    /* the tables form, or --proposed FILE */
    bool smoke;
    bool keep; /* leave the databases behind */
    char self[1024];
    double started_ms;
} run_cfg;

/* "postgresql" or "sqlite", as the JSON names them. */
const char *run_backend_name(pb_backend b);
bool run_backend_on(const run_cfg *cfg, int bi);
/* The failure recorded in a cell, NULL when it ran. */
const char *run_cell_failed(const json_t *cell);

/* Seed, measure every cell, compare the status statement, measure memory, judge the
 * targets. The caller owns the returned tree (json_decref). */
json_t *run_all(run_cfg *cfg);

typedef struct smoke_counts {
    int passed, failed;
} smoke_counts;

void smoke_check(smoke_counts *c, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The smoke test's assertions on a toy-sized run: counts, never times. */
void smoke_checks(const run_cfg *cfg, const json_t *root, smoke_counts *c);

#endif
