/* pb_bench: builds each shape of data on both backends, measures the converged status
 * statement (PostgreSQL: with nothing installed, then with the summary), the library's
 * passes, and the CLI repairing 100% drift, and writes results.json. `smoke` does all of it
 * at toy size and checks the counts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "bench.h"

/* The shapes of issue 12 and the growth curve (3 x 5 x 4, half configured, like "small"). */
static const bench_shape full[] = {
    {"small", "many small organizations", 10000, 3, 5, 4, 0.5, 0, true, 0},
    {"deep", "few organizations, deep history", 10, 100, 100, 3, 0, 5, false, 0},
    {"sparse", "many organizations, few with prebuilds", 5000, 4, 10, 2, 0.1, 0, false, 0},
    {"c10k", "curve", 170, 3, 5, 4, 0.5, 0, true, 11000},
    {"c30k", "curve", 500, 3, 5, 4, 0.5, 0, true, 0},
    {"c100k", "curve", 1700, 3, 5, 4, 0.5, 0, true, 0},
    {"c300k", "curve", 5000, 3, 5, 4, 0.5, 0, true, 0},
    {"c1m", "curve", 17000, 3, 5, 4, 0.5, 0, true, 0},
    {"c3m", "curve", 50000, 3, 5, 4, 0.5, 0, true, 0},
};
static const bench_shape smoke[] = {
    {"small", "many small organizations", 40, 3, 2, 2, 0.5, 0, true, 0},
    {"deep", "few organizations, deep history", 3, 4, 6, 2, 0, 2, false, 0},
    {"sparse", "many organizations, few with prebuilds", 40, 2, 3, 2, 0.1, 0, false, 0},
    {"c1", "curve", 10, 3, 2, 2, 0.5, 0, true, 200},
};
/* 100% drift: every organization has prebuilds and misses all three rows. */
static const bench_shape drift_full = {"drift", "100% drift", 100000, 1, 1, 1, 1.0, 0, false, 0};
static const bench_shape drift_smoke = {"drift", "100% drift", 30, 1, 1, 1, 1.0, 0, false, 0};

static void progress(const bench_cfg *c, double t0, const char *what, const char *name,
                     pb_backend b, const char *err)
{
    (void)c;
    (void)fprintf(stderr, "[%7.1fs] %s %s on %s%s%s\n", (bench_now_ms() - t0) / 1e3, what, name,
                  b == PB_BACKEND_PG ? "postgresql" : "sqlite", err ? ": " : "", err ? err : "");
}

static const char *backend_name(pb_backend b)
{
    return b == PB_BACKEND_PG ? "postgresql" : "sqlite";
}

/* One shape on one backend: seeded, measured, dropped. */
static json_t *run_cell(const bench_cfg *c, const bench_shape *sh, pb_backend b, double t0)
{
    json_t *cell = json_pack("{s:s, s:s, s:b, s:s}", "shape", sh->name, "title", sh->title, "curve",
                             sh->curve, "backend", backend_name(b));
    char err[BENCH_ERR] = "";
    bench_db db;
    progress(c, t0, "seeding", sh->name, b, NULL);
    int rc = db_create(c, sh, b, &db, cell, err);
    static const char *const states[2] = {"nothing", "summary"};
    for (int si = 0; si < 2 && rc == 0; si++) {
        bool summary = si == 1 || b == PB_BACKEND_SQLITE;
        if (si == 1 && b == PB_BACKEND_PG && (rc = db_install_summary(&db, err)) != 0)
            break;
        progress(c, t0, summary ? "measuring (summary)" : "measuring (nothing installed)", sh->name,
                 b, NULL);
        json_t *m = measure_status(c, &db, summary, err);
        json_t *p = m != NULL ? measure_passes(c, &db, err) : NULL;
        if (m == NULL || p == NULL) {
            json_decref(m);
            rc = -1;
            break;
        }
        json_object_set_new(m, "passes", p);
        json_object_set_new(cell, b == PB_BACKEND_SQLITE ? "summary" : states[si], m);
        if (summary && b == PB_BACKEND_PG && sh->soak > 0) {
            progress(c, t0, "daemon passes", sh->name, b, NULL);
            json_object_set_new(cell, "soak", measure_soak(c, &db, sh->soak));
        }
        if (b == PB_BACKEND_SQLITE)
            break; /* our own schema: the summary is always there */
    }
    if (rc != 0) {
        progress(c, t0, "FAILED", sh->name, b, err);
        json_object_set_new(cell, "failed", json_string(err));
    }
    db_drop(c, &db);
    return cell;
}

static json_t *run_drift(const bench_cfg *c, const bench_shape *sh, pb_backend b, double t0)
{
    json_t *out = json_pack("{s:s}", "backend", backend_name(b));
    char err[BENCH_ERR] = "";
    bench_db db;
    progress(c, t0, "seeding", sh->name, b, NULL);
    int rc = db_create(c, sh, b, &db, out, err);
    static const char *const oneshot[] = {"reconcile", "--json", NULL};
    static const char *const daemon[] = {"run", "--once", "--metrics-addr", "off", NULL};
    if (rc == 0 && (rc = db_drift_all(&db, err)) == 0) {
        progress(c, t0, "repairing 100% drift (reconcile)", sh->name, b, NULL);
        json_object_set_new(out, "oneshot", measure_cli(c, &db, oneshot));
    }
    if (rc == 0 && (rc = db_drift_all(&db, err)) == 0) {
        progress(c, t0, "repairing 100% drift (run --once)", sh->name, b, NULL);
        json_object_set_new(out, "daemon", measure_cli(c, &db, daemon));
        json_object_set_new(out, "daemon_converged", measure_cli(c, &db, daemon));
    }
    if (rc != 0)
        json_object_set_new(out, "failed", json_string(err));
    db_drop(c, &db);
    return out;
}

static json_t *machine(const bench_cfg *c)
{
    char line[512], cpu[256] = "", when[32];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':') != NULL) {
            (void)snprintf(cpu, sizeof(cpu), "%s", strchr(line, ':') + 2);
            cpu[strcspn(cpu, "\n")] = '\0';
            break;
        }
    if (f != NULL)
        fclose(f);
    struct utsname u;
    (void)uname(&u);
    time_t now = time(NULL);
    (void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    json_t *m =
        json_pack("{s:s, s:s, s:i, s:I, s:s, s:s}", "date", when, "cpu", cpu, "cpus",
                  (int)sysconf(_SC_NPROCESSORS_ONLN), "memory_mib",
                  (json_int_t)(sysconf(_SC_PHYS_PAGES) / 1024 * sysconf(_SC_PAGESIZE) / 1024),
                  "kernel", u.release, "sqlite", sqlite3_libversion());
    PGconn *conn = c->pg != NULL ? PQconnectdb(c->pg) : NULL;
    PGresult *r = conn != NULL ? PQexec(conn, "SELECT version(), current_setting('jit'),"
                                              " current_setting('max_parallel_workers_per_gather'),"
                                              " current_setting('shared_buffers'),"
                                              " current_setting('work_mem')")
                               : NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        json_object_set_new(m, "postgresql",
                            json_pack("{s:s, s:s, s:s, s:s, s:s}", "version", PQgetvalue(r, 0, 0),
                                      "jit", PQgetvalue(r, 0, 1), "parallel_workers_per_gather",
                                      PQgetvalue(r, 0, 2), "shared_buffers", PQgetvalue(r, 0, 3),
                                      "work_mem", PQgetvalue(r, 0, 4)));
    PQclear(r);
    PQfinish(conn);
    return m;
}

static int usage(void)
{
    (void)fprintf(stderr,
                  "usage: pb_bench run|smoke --out DIR [--pg CONNINFO | --pg-file FILE]\n"
                  "                [--sqlite-dir DIR] [--platform SCRIPT] [--prebuilds PATH]\n"
                  "                [--rounds N] [--cell-budget-s S] [--max-presets N]\n");
    return 2;
}

static char *read_line(const char *path)
{
    static char buf[1024];
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(buf, sizeof(buf), f) == NULL) {
        if (f != NULL)
            fclose(f);
        return NULL;
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

/* --only LIST: the shapes named in the comma-separated LIST run ("drift" the drift runs). */
static bool selected(const char *only, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = only; p != NULL; p = strchr(p, ',') != NULL ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return only == NULL;
}

static int parse_args(bench_cfg *c, int argc, char **argv, const char **out_dir,
                      double *max_presets, const char **only)
{
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--out") == 0)
            *out_dir = v;
        else if (strcmp(a, "--pg") == 0)
            c->pg = v;
        else if (strcmp(a, "--pg-file") == 0)
            c->pg = read_line(v);
        else if (strcmp(a, "--sqlite-dir") == 0)
            c->sqlite_dir = v;
        else if (strcmp(a, "--platform") == 0)
            c->platform_sh = v;
        else if (strcmp(a, "--prebuilds") == 0)
            c->prebuilds = v;
        else if (strcmp(a, "--rounds") == 0)
            c->rounds = (int)strtol(v, NULL, 10);
        else if (strcmp(a, "--cell-budget-s") == 0)
            c->cell_budget_ms = strtod(v, NULL) * 1e3;
        else if (strcmp(a, "--max-presets") == 0)
            *max_presets = strtod(v, NULL);
        else if (strcmp(a, "--only") == 0)
            *only = v;
        else if (strncmp(a, "--", 2) == 0)
            return -1;
    }
    /* an unreadable --pg-file leaves no server */
    return *out_dir == NULL || (c->pg == NULL && c->sqlite_dir == NULL) || c->rounds < 1 ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "smoke") != 0))
        return usage();
    bench_cfg c = {.platform_sh = PB_BENCH_PLATFORM,
                   .prebuilds = PB_BENCH_PREBUILDS,
                   .rounds = 11,
                   .cell_budget_ms = 60000,
                   .smoke = strcmp(argv[1], "smoke") == 0};
    const char *out_dir = NULL;
    double max_presets = 1e12;
    const char *only = NULL;
    if (parse_args(&c, argc, argv, &out_dir, &max_presets, &only) != 0)
        return usage();
    if (c.smoke)
        c.rounds = 2;
    (void)snprintf(c.prefix, sizeof(c.prefix), c.smoke ? "pbbs%d" : "pbbench", (int)getpid());
    double t0 = bench_now_ms();
    const bench_shape *shapes = c.smoke ? smoke : full;
    size_t n_shapes = c.smoke ? sizeof(smoke) / sizeof(smoke[0]) : sizeof(full) / sizeof(full[0]);
    json_t *root = json_pack("{s:o, s:{s:i, s:f, s:f, s:b}, s:[], s:[]}", "machine", machine(&c),
                             "config", "rounds", c.rounds, "cell_budget_s", c.cell_budget_ms / 1e3,
                             "max_presets", max_presets, "smoke", c.smoke, "cells", "drift");
    json_t *skipped = json_array();
    for (int bi = 0; bi < 2; bi++) {
        pb_backend b = bi == 0 ? PB_BACKEND_PG : PB_BACKEND_SQLITE;
        if (b == PB_BACKEND_PG ? c.pg == NULL : c.sqlite_dir == NULL)
            continue;
        for (size_t i = 0; i < n_shapes; i++) {
            const bench_shape *sh = &shapes[i];
            if (!selected(only, sh->name))
                continue;
            if ((double)(sh->orgs * sh->templates * sh->versions * sh->presets) > max_presets) {
                if (bi == 0)
                    json_array_append_new(skipped, json_string(sh->name));
                continue;
            }
            json_array_append_new(json_object_get(root, "cells"), run_cell(&c, sh, b, t0));
        }
        if (selected(only, "drift"))
            json_array_append_new(json_object_get(root, "drift"),
                                  run_drift(&c, c.smoke ? &drift_smoke : &drift_full, b, t0));
    }
    json_object_set_new(json_object_get(root, "config"), "skipped", skipped);
    json_object_set_new(root, "elapsed_s", json_real((bench_now_ms() - t0) / 1e3));
    json_object_set_new(root, "targets", judge_targets(&c, root));
    char path[1100];
    (void)snprintf(path, sizeof(path), "%s/results.json", out_dir);
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        return 1;
    int rc = json_dump_file(root, path, JSON_INDENT(1) | JSON_SORT_KEYS) == 0 ? 0 : 1;
    if (rc == 0 && c.smoke)
        rc = smoke_checks(root) == 0 ? 0 : 1;
    (void)fprintf(stderr, "pb_bench: %s written in %.0f s\n", path, (bench_now_ms() - t0) / 1e3);
    json_decref(root);
    return rc;
}
