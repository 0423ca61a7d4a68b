/* The full run: seeds the data sets (both backends at once), measures every cell in worker
 * processes under the time budget, compares the status statement, measures memory over
 * long loops, and gathers everything into one JSON tree for the report. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "report.h"
#include "run.h"

const double run_drifts[N_DRIFTS] = {0.0, 0.01, 1.0};
const pb_backend run_backends[2] = {PB_BACKEND_PG, PB_BACKEND_SQLITE};

const char *run_backend_name(pb_backend b)
{
    return b == PB_BACKEND_PG ? "postgresql" : "sqlite";
}

bool run_backend_on(const run_cfg *cfg, int bi)
{
    return bi == 0 ? cfg->pg_base != NULL : cfg->sqlite_dir != NULL;
}

/* One seeded data set on each backend. */
typedef struct dset {
    char name[64];
    pb_seed_opts seed;
    bench_db db[2]; /* [0] PostgreSQL, [1] SQLite */
    bool ok[2];
} dset;

static void progress(const run_cfg *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void progress(const run_cfg *cfg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)fprintf(stderr, "[%7.1fs] ", (bench_now_ms() - cfg->started_ms) / 1e3);
    (void)vfprintf(stderr, fmt, ap);
    (void)fprintf(stderr, "\n");
    va_end(ap);
}

/* ---- seeding ---- */

static json_t *seed_json(const dset *d, int bi, const pb_seed_result *r, double seconds)
{
    return json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "name", d->name, "backend",
        run_backend_name(run_backends[bi]), "orgs", (json_int_t)r->orgs, "templates",
        (json_int_t)r->templates, "versions", (json_int_t)r->versions, "presets",
        (json_int_t)r->presets, "prebuild_orgs", (json_int_t)r->prebuild_orgs, "configured_presets",
        (json_int_t)(r->prebuild_orgs * d->seed.templates_per_org * d->seed.versions_per_template),
        "seed_seconds", seconds);
}

static int seed_one(const run_cfg *cfg, dset *d, int bi, json_t **out)
{
    pb_seed_result r;
    char err[BENCH_ERR_MAX];
    double start = bench_now_ms();
    if (dataset_create(&d->db[bi], run_backends[bi], cfg->pg_base, cfg->sqlite_dir, d->name,
                       &d->seed, &r, err, sizeof(err)) != 0) {
        progress(cfg, "seed %s on %s failed: %s", d->name, run_backend_name(run_backends[bi]), err);
        return -1;
    }
    *out = seed_json(d, bi, &r, (bench_now_ms() - start) / 1e3);
    return 0;
}

/* PostgreSQL generates its data on the server and SQLite in this process, so the two
 * seed at the same time on two cores: SQLite in a child, PostgreSQL here. */
static int seed_all(const run_cfg *cfg, dset *sets, int n_sets, json_t *datasets)
{
    int fds[2] = {-1, -1};
    pid_t child = -1;
    if (run_backend_on(cfg, 1)) {
        if (pipe(fds) != 0)
            return -1;
        fflush(NULL);
        child = fork();
        if (child < 0)
            return -1;
        if (child == 0) {
            close(fds[0]);
            FILE *f = fdopen(fds[1], "w");
            int rc = 0;
            for (int i = 0; i < n_sets && f != NULL; i++) {
                json_t *j = NULL;
                if (seed_one(cfg, &sets[i], 1, &j) != 0) {
                    rc = 1;
                    continue;
                }
                char *line = json_dumps(j, JSON_COMPACT);
                (void)fprintf(f, "%s\n", line);
                (void)fflush(f);
                free(line);
                json_decref(j);
            }
            if (f != NULL)
                fclose(f);
            _exit(rc);
        }
        close(fds[1]);
    }
    int rc = 0;
    for (int i = 0; i < n_sets && run_backend_on(cfg, 0); i++) {
        json_t *j = NULL;
        progress(cfg, "seeding %s on postgresql", sets[i].name);
        if (seed_one(cfg, &sets[i], 0, &j) != 0) {
            rc = -1;
            continue;
        }
        sets[i].ok[0] = true;
        json_array_append_new(datasets, j);
    }
    if (child > 0) {
        FILE *f = fdopen(fds[0], "r");
        char line[2048];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            json_t *j = json_loads(line, 0, NULL);
            if (j == NULL)
                continue;
            const char *name = json_string_value(json_object_get(j, "name"));
            for (int i = 0; i < n_sets && name != NULL; i++)
                if (strcmp(sets[i].name, name) == 0)
                    sets[i].ok[1] = true;
            json_array_append_new(datasets, j);
        }
        if (f != NULL)
            fclose(f);
        int status = 0;
        (void)waitpid(child, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            rc = -1;
        /* The child filled its own copy of the descriptors; fill ours the same way. */
        for (int i = 0; i < n_sets; i++) {
            sets[i].db[1].backend = PB_BACKEND_SQLITE;
            (void)snprintf(sets[i].db[1].name, sizeof(sets[i].db[1].name), "%.63s", sets[i].name);
            (void)snprintf(sets[i].db[1].target, sizeof(sets[i].db[1].target), "%.900s/%.63s.db",
                           cfg->sqlite_dir, sets[i].name);
        }
    }
    return rc;
}

/* ---- cells ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(const json_t *arr)
{
    size_t n = json_array_size(arr);
    if (n == 0)
        return -1;
    double *v = malloc(n * sizeof(*v));
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        v[i] = json_number_value(json_array_get(arr, i));
    qsort(v, n, sizeof(*v), cmp_double);
    double m = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    free(v);
    return m;
}

typedef struct cell_spec {
    const dset *set;
    int bi;
    double drift;
    bench_strategy strategy;
    int passes;
    bool warmup;
    const char *note;
} cell_spec;

static json_t *pass_json(const bench_pass *p)
{
    return json_pack("{s:I, s:I, s:f, s:I, s:I, s:[I, I, I], s:I, s:s}", "statements",
                     (json_int_t)p->statements, "round_trips", (json_int_t)p->round_trips,
                     "wall_ms", p->wall_ms, "inserts", (json_int_t)p->inserts, "considered",
                     (json_int_t)p->considered, "added", (json_int_t)p->added[0],
                     (json_int_t)p->added[1], (json_int_t)p->added[2], "errors",
                     (json_int_t)p->errors, "error", p->err);
}

/* Warm-up, then the measured passes, each after the drift was re-created. Returns the
 * cell as JSON (with "failed" set when something went wrong) and the warm-up's wall time. */
static json_t *run_cell(const run_cfg *cfg, const cell_spec *spec, double *warm_ms)
{
    const bench_db *db = &spec->set->db[spec->bi];
    json_t *cell = json_pack(
        "{s:s, s:s, s:I, s:I, s:f, s:s, s:b}", "backend", run_backend_name(run_backends[spec->bi]),
        "dataset", spec->set->name, "orgs", (json_int_t)spec->set->seed.orgs, "prebuild_orgs",
        (json_int_t)(int64_t)((double)spec->set->seed.orgs * spec->set->seed.prebuilds_fraction),
        "drift", spec->drift, "strategy", bench_strategy_name(spec->strategy), "warmup",
        spec->warmup);
    json_t *passes = json_array();
    json_object_set_new(cell, "passes", passes);
    drifter d;
    worker w;
    bool w_started = false, d_open = false;
    char err[BENCH_ERR_MAX] = "";
    long hwm_max = -1;
    *warm_ms = 0;
    if (drifter_open(&d, db, cfg->pg_base, &spec->set->seed, spec->drift) != 0) {
        (void)snprintf(err, sizeof(err), "drift: %.490s", d.conn.err);
        goto out;
    }
    d_open = true;
    json_object_set_new(cell, "drifted_orgs", json_integer(d.n_drifted));
    if (worker_start(&w, cfg->self, spec->strategy, db) != 0) {
        (void)snprintf(err, sizeof(err), "%s", w.err);
        goto out;
    }
    w_started = true;
    int n = spec->passes;
    for (int i = spec->warmup ? -1 : 0; i < n; i++) {
        if (drifter_apply(&d) != 0) {
            (void)snprintf(err, sizeof(err), "re-create drift: %.480s", d.conn.err);
            goto out;
        }
        json_object_set_new(cell, "drift_rows_deleted", json_integer(d.n_rows));
        double srv0 = -1, calls0 = -1, srv1 = -1, calls1 = -1;
        (void)drifter_server(&d, &srv0, &calls0);
        bench_pass p;
        long hwm, rss;
        if (worker_pass(&w, &p, &hwm, &rss) != 0) {
            (void)snprintf(err, sizeof(err), "%s", w.err);
            goto out;
        }
        (void)drifter_server(&d, &srv1, &calls1);
        hwm_max = hwm > hwm_max ? hwm : hwm_max;
        if (i < 0) {
            *warm_ms = p.wall_ms;
            json_object_set_new(cell, "warmup_pass", pass_json(&p));
            continue;
        }
        /* Judged on a measured pass, not on the warm-up, which may be cold. */
        if (i == 0 && p.wall_ms > cfg->slow_ms && n > 1) {
            n = 1;
            json_object_set_new(
                cell, "note",
                json_sprintf("1 measured pass: a pass takes %.0f s", p.wall_ms / 1e3));
        }
        json_t *pj = pass_json(&p);
        if (srv0 >= 0 && srv1 >= 0) {
            json_object_set_new(pj, "server_ms", json_real(srv1 - srv0));
            json_object_set_new(pj, "server_calls", json_real(calls1 - calls0));
        }
        json_object_set_new(pj, "hwm_kb", json_integer(hwm));
        json_array_append_new(passes, pj);
        if (p.err[0] != '\0' && err[0] == '\0')
            (void)snprintf(err, sizeof(err), "pass: %.490s", p.err);
    }
    if (spec->note != NULL)
        json_object_set_new(cell, "note", json_string(spec->note));
    int64_t missing = -1;
    if (spec->drift > 0 && drifter_missing(&d, false, &missing) == 0)
        json_object_set_new(cell, "missing_after", json_integer(missing));
out:
    if (w_started) {
        long maxrss = -1;
        (void)worker_stop(&w, &maxrss);
        json_object_set_new(cell, "maxrss_kb", json_integer(maxrss));
    }
    if (d_open)
        drifter_close(&d);
    json_object_set_new(cell, "hwm_kb", json_integer(hwm_max));
    if (err[0] != '\0')
        json_object_set_new(cell, "failed", json_string(err));
    /* Medians of the measured passes, for the tables. */
    static const char *const keys[] = {"statements", "round_trips", "wall_ms", "server_ms",
                                       "inserts"};
    json_t *med = json_object();
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        json_t *arr = json_array();
        size_t i;
        json_t *pj;
        json_array_foreach(passes, i, pj)
        {
            json_t *v = json_object_get(pj, keys[k]);
            if (v != NULL)
                json_array_append_new(arr, json_real(json_number_value(v)));
        }
        if (json_array_size(arr) > 0)
            json_object_set_new(med, keys[k], json_real(median_of(arr)));
        json_decref(arr);
    }
    json_object_set_new(cell, "median", med);
    return cell;
}

const char *run_cell_failed(const json_t *cell)
{
    return json_string_value(json_object_get(cell, "failed"));
}

/* ---- the whole run ---- */

static void machine_json(json_t *root, const run_cfg *cfg)
{
    json_t *m = json_object();
    struct utsname u;
    if (uname(&u) == 0)
        json_object_set_new(m, "kernel", json_sprintf("%s %s %s", u.sysname, u.release, u.machine));
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            char *v = strchr(line, ':');
            if (v != NULL) {
                v += 2;
                v[strcspn(v, "\n")] = '\0';
                json_object_set_new(m, "cpu", json_string(v));
            }
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    json_object_set_new(m, "cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
    f = fopen("/proc/meminfo", "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "MemTotal:", 9) == 0) {
            json_object_set_new(m, "memory_mib", json_integer(strtol(line + 9, NULL, 10) / 1024));
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    json_object_set_new(m, "sqlite", json_string(sqlite3_libversion()));
    json_object_set_new(m, "libpq", json_integer(PQlibVersion()));
    json_object_set_new(m, "compiler", json_string(__VERSION__));
    if (cfg->pg_base != NULL) {
        bconn c;
        char *v = NULL;
        if (bconn_open(&c, PB_BACKEND_PG, cfg->pg_base) == 0) {
            PGresult *r = PQexec(c.pg, "SELECT version()");
            if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
                v = strdup(PQgetvalue(r, 0, 0));
            PQclear(r);
            bconn_close(&c);
        }
        json_object_set_new(m, "postgresql", v != NULL ? json_string(v) : json_null());
        free(v);
    }
    time_t now = time(NULL);
    struct tm tm;
    char when[64];
    (void)gmtime_r(&now, &tm);
    (void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(root, "generated_at", json_string(when));
    json_object_set_new(root, "machine", m);
}

static dset make_set(const char *name, int64_t orgs, int64_t tpo, int64_t vpt, int64_t ppv,
                     double pf)
{
    dset d;
    memset(&d, 0, sizeof(d));
    (void)snprintf(d.name, sizeof(d.name), "%s", name);
    d.seed = (pb_seed_opts){
        .orgs = orgs,
        .templates_per_org = tpo,
        .versions_per_template = vpt,
        .presets_per_version = ppv,
        .prebuilds_fraction = pf,
        .drift_fraction = 0,
        .seed = 1,
    };
    return d;
}

/* SQLite with no commit since the last pass: what a pass costs today (it runs the status
 * statement), and what the check that would let it skip the read costs. */
static json_t *sqlite_idle(const dset *set)
{
    bconn c;
    if (bconn_open(&c, PB_BACKEND_SQLITE, set->db[1].target) != 0)
        return json_pack("{s:s}", "failed", c.err);
    double samples[1001];
    int n = 1001;
    for (int i = 0; i < n; i++) {
        double start = bench_now_ms();
        (void)bconn_exec(&c, "PRAGMA data_version", 0, NULL, NULL, NULL);
        samples[i] = (bench_now_ms() - start) * 1e3;
    }
    qsort(samples, (size_t)n, sizeof(samples[0]), cmp_double);
    json_t *out =
        json_pack("{s:s, s:f, s:f, s:i}", "dataset", set->name, "data_version_median_us",
                  samples[n / 2], "data_version_p99_us", samples[(n * 99) / 100], "samples", n);
    bconn_close(&c);
    return out;
}

json_t *run_all(run_cfg *cfg)
{
    json_t *root = json_object();
    machine_json(root, cfg);
    json_object_set_new(root, "config",
                        json_pack("{s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:b}", "passes",
                                  cfg->passes, "status_rounds", cfg->rounds, "soak_passes",
                                  (json_int_t)cfg->soak_passes, "soak_orgs",
                                  (json_int_t)cfg->soak_orgs, "rss_orgs", (json_int_t)cfg->rss_orgs,
                                  "templates_per_org", (json_int_t)cfg->templates_per_org,
                                  "versions_per_template", (json_int_t)cfg->versions_per_template,
                                  "presets_per_version", (json_int_t)cfg->presets_per_version,
                                  "slow_pass_ms", cfg->slow_ms, "smoke", cfg->smoke));
    json_t *sizes = json_array();
    for (int i = 0; i < cfg->n_sizes; i++)
        json_array_append_new(sizes, json_integer(cfg->sizes[i]));
    json_object_set_new(json_object_get(root, "config"), "sizes", sizes);
    json_object_set_new(json_object_get(root, "config"), "idle_passes",
                        json_integer((json_int_t)cfg->idle_passes));
    json_object_set_new(json_object_get(root, "config"), "listen_samples",
                        json_integer(cfg->listen_samples));

    /* Data sets: the matrix sizes, a small one for the long loop, one where every
     * organization has prebuilds (for the memory target). */
    dset sets[MAX_SIZES + 2];
    int n_sets = 0;
    char prefix[32];
    if (cfg->smoke)
        (void)snprintf(prefix, sizeof(prefix), "pbsmoke%d", (int)getpid());
    else
        (void)snprintf(prefix, sizeof(prefix), "pbbench");
    for (int i = 0; i < cfg->n_sizes; i++) {
        char name[64];
        (void)snprintf(name, sizeof(name), "%s_%" PRId64, prefix, cfg->sizes[i]);
        sets[n_sets++] = make_set(name, cfg->sizes[i], cfg->templates_per_org,
                                  cfg->versions_per_template, cfg->presets_per_version, 0.5);
    }
    int soak_set = -1, rss_set = -1;
    if (cfg->soak_passes > 0) {
        char name[64];
        (void)snprintf(name, sizeof(name), "%s_soak", prefix);
        soak_set = n_sets;
        sets[n_sets++] = make_set(name, cfg->soak_orgs, cfg->templates_per_org,
                                  cfg->versions_per_template, cfg->presets_per_version, 0.5);
    }
    if (cfg->rss_orgs > 0) {
        char name[64];
        (void)snprintf(name, sizeof(name), "%s_allpb", prefix);
        rss_set = n_sets;
        sets[n_sets++] = make_set(name, cfg->rss_orgs, 1, 1, 1, 1.0);
    }
    json_t *datasets = json_array();
    json_object_set_new(root, "datasets", datasets);
    progress(cfg, "seeding %d data sets", n_sets);
    if (seed_all(cfg, sets, n_sets, datasets) != 0)
        json_object_set_new(root, "seed_failed", json_true());
    progress(cfg, "seeded");

    json_t *cells = json_array();
    json_object_set_new(root, "cells", cells);
    for (int bi = 0; bi < 2; bi++) {
        if (!run_backend_on(cfg, bi))
            continue;
        double prev_wall[BS_COUNT] = {0}, prev_orgs = 0;
        for (int si = 0; si < cfg->n_sizes; si++) {
            if (!sets[si].ok[bi])
                continue;
            double orgs = (double)sets[si].seed.orgs;
            bool slow[BS_COUNT] = {false}, too_slow[BS_COUNT] = {false};
            double pass_ms[BS_COUNT] = {0};
            for (int di = 0; di < N_DRIFTS; di++) {
                static const bench_strategy order[BS_COUNT] = {BS_C, BS_B, BS_A};
                for (int k = 0; k < BS_COUNT; k++) {
                    bench_strategy s = order[k];
                    cell_spec spec = {
                        .set = &sets[si],
                        .bi = bi,
                        .drift = run_drifts[di],
                        .strategy = s,
                        .passes = cfg->passes,
                        .warmup = true,
                    };
                    char note[256] = "";
                    /* Budget rules, so the run stays within its time: a strategy whose
                     * passes are slow at this size gets one measured pass per cell (the
                     * cells before it warmed the caches), and its drifted cells are not
                     * measured when a single pass takes minutes. */
                    double expect = prev_orgs > 0 ? prev_wall[s] * orgs / prev_orgs : 0;
                    if (too_slow[s]) {
                        (void)snprintf(note, sizeof(note),
                                       "not measured: one pass takes %.0f s at this size "
                                       "(time budget)",
                                       pass_ms[s] / 1e3);
                        json_array_append_new(
                            cells,
                            json_pack("{s:s, s:s, s:I, s:f, s:s, s:s, s:[], s:{}}", "backend",
                                      run_backend_name(run_backends[bi]), "dataset", sets[si].name,
                                      "orgs", (json_int_t)orgs, "drift", run_drifts[di], "strategy",
                                      bench_strategy_name(s), "skipped", note, "passes", "median"));
                        progress(cfg, "%s %.0f orgs drift %g%% (%s): %s",
                                 run_backend_name(run_backends[bi]), orgs, run_drifts[di] * 100,
                                 bench_strategy_name(s), note);
                        continue;
                    }
                    if (slow[s]) {
                        spec.passes = 1;
                        spec.warmup = false;
                        (void)snprintf(note, sizeof(note),
                                       "1 measured pass, no warm-up of its own: a pass takes "
                                       "%.0f s here",
                                       pass_ms[s] / 1e3);
                    } else if (di == 0 && expect > cfg->slow_ms) {
                        spec.passes = 1;
                        spec.warmup = false;
                        (void)snprintf(note, sizeof(note),
                                       "1 measured pass, no warm-up of its own: the previous "
                                       "size took %.1f s per pass",
                                       prev_wall[s] / 1e3);
                    }
                    spec.note = note[0] != '\0' ? note : NULL;
                    double warm_ms = 0;
                    json_t *cell = run_cell(cfg, &spec, &warm_ms);
                    const json_t *med = json_object_get(cell, "median");
                    /* The measured passes, not the warm-up, which may be cold. */
                    double took = json_number_value(json_object_get(med, "wall_ms"));
                    if (took > pass_ms[s])
                        pass_ms[s] = took;
                    if (took > cfg->slow_ms)
                        slow[s] = true;
                    if (took > cfg->max_pass_ms)
                        too_slow[s] = true;
                    if (di == 0)
                        prev_wall[s] = json_number_value(json_object_get(med, "wall_ms"));
                    progress(cfg, "%s %.0f orgs drift %g%% (%s): %.0f statements, %.1f ms%s%s",
                             run_backend_name(run_backends[bi]), orgs, run_drifts[di] * 100,
                             bench_strategy_name(s),
                             json_number_value(json_object_get(med, "statements")),
                             json_number_value(json_object_get(med, "wall_ms")),
                             run_cell_failed(cell) ? " FAILED: " : "",
                             run_cell_failed(cell) ? run_cell_failed(cell) : "");
                    json_array_append_new(cells, cell);
                }
            }
            prev_orgs = orgs;
            /* The status statement, on the PostgreSQL data set nearest 10k organizations
             * (all settings) and on the largest one (fewer rounds, our index only), right
             * after its cells ran. */
            bool nearest = true;
            for (int sj = 0; sj < cfg->n_sizes; sj++)
                if (llabs(cfg->sizes[sj] - 10000) < llabs(cfg->sizes[si] - 10000))
                    nearest = false;
            bool largest = si == cfg->n_sizes - 1 && !nearest;
            if (bi == 0 && (nearest || largest) && cfg->rounds > 0) {
                char err[BENCH_ERR_MAX] = "";
                const char *key = nearest ? "status_compare" : "status_compare_large";
                progress(cfg, "status statement comparison on %s", sets[si].name);
                json_t *cmp = NULL;
                int verified = status_sql_verify(cfg->pg_base, &sets[si].db[0], cfg->ours_sql, err,
                                                 sizeof(err));
                if (verified != 0)
                    cmp = status_compare(&sets[si].db[0], cfg->ours_sql, cfg->proposed_sql,
                                         nearest ? cfg->rounds : 3, nearest, err, sizeof(err));
                if (cmp != NULL)
                    json_object_set_new(cmp, "ours_sql_verified", json_boolean(verified == 1));
                json_object_set_new(root, key,
                                    cmp != NULL ? cmp : json_pack("{s:s}", "failed", err));
            }
        }
    }

    /* The daemon itself: many passes on the small data set (PostgreSQL: a pass every
     * millisecond; SQLite: a pass per SIGUSR1, which makes it read). */
    json_t *soaks = json_array();
    json_object_set_new(root, "daemon_soak", soaks);
    for (int bi = 0; bi < 2 && soak_set >= 0; bi++) {
        if (!run_backend_on(cfg, bi) || !sets[soak_set].ok[bi])
            continue;
        progress(cfg, "daemon: %llu passes on %s (%s)", (unsigned long long)cfg->soak_passes,
                 sets[soak_set].name, run_backend_name(run_backends[bi]));
        json_t *s = daemon_soak(cfg, &sets[soak_set].db[bi]);
        json_object_set_new(s, "orgs", json_integer(sets[soak_set].seed.orgs));
        const json_t *pts = json_object_get(s, "checkpoints");
        const json_t *last = json_array_get(pts, json_array_size(pts) - 1);
        progress(cfg, "daemon: %lld passes, VmHWM %lld KiB%s%s",
                 (long long)json_integer_value(json_object_get(last, "passes")),
                 (long long)json_integer_value(json_object_get(last, "hwm_kb")),
                 json_object_get(s, "failed") ? " FAILED: " : "",
                 json_string_value(json_object_get(s, "failed")) ?: "");
        json_array_append_new(soaks, s);
    }

    /* Memory at the data set where every organization has prebuilds: the daemon, and
     * for comparison the library's pass and the reference's (b) in worker processes. */
    json_t *drss = json_array();
    json_object_set_new(root, "daemon_rss", drss);
    json_t *rss = json_array();
    json_object_set_new(root, "rss_cells", rss);
    for (int bi = 0; bi < 2 && rss_set >= 0; bi++) {
        if (!run_backend_on(cfg, bi) || !sets[rss_set].ok[bi])
            continue;
        static const bench_strategy order[2] = {BS_C, BS_B};
        for (int k = 0; k < 2; k++) {
            cell_spec spec = {
                .set = &sets[rss_set],
                .bi = bi,
                .drift = 0,
                .strategy = order[k],
                .passes = cfg->smoke ? 1 : 3,
                .warmup = true,
            };
            double warm_ms;
            json_t *cell = run_cell(cfg, &spec, &warm_ms);
            progress(cfg, "rss %s %" PRId64 " orgs with prebuilds (%s worker): VmHWM %lld KiB",
                     run_backend_name(run_backends[bi]), sets[rss_set].seed.orgs,
                     bench_strategy_name(order[k]),
                     (long long)json_integer_value(json_object_get(cell, "hwm_kb")));
            json_array_append_new(rss, cell);
        }
        size_t before = json_array_size(drss);
        daemon_rss(cfg, &sets[rss_set].db[bi], &sets[rss_set].seed, cfg->smoke ? 2 : 3, drss);
        for (size_t k = before; k < json_array_size(drss); k++) {
            const json_t *e = json_array_get(drss, k);
            progress(cfg, "daemon rss %s drift %g%%: VmHWM %lld KiB%s%s",
                     run_backend_name(run_backends[bi]),
                     json_number_value(json_object_get(e, "drift")) * 100,
                     (long long)json_integer_value(json_object_get(e, "hwm_kb")),
                     json_object_get(e, "failed") ? " FAILED: " : "",
                     json_string_value(json_object_get(e, "failed")) ?: "");
        }
        if (bi == 0 && cfg->listen_samples > 0) {
            progress(cfg, "daemon --listen: %d new organizations in %s", cfg->listen_samples,
                     sets[rss_set].name);
            json_t *l = daemon_listen(cfg, &sets[rss_set].db[0], cfg->listen_samples);
            progress(cfg, "daemon --listen: p50 %.1f ms, p99 %.1f ms%s%s",
                     json_number_value(json_object_get(l, "p50_ms")),
                     json_number_value(json_object_get(l, "p99_ms")),
                     json_object_get(l, "failed") ? " FAILED: " : "",
                     json_string_value(json_object_get(l, "failed")) ?: "");
            json_object_set_new(root, "daemon_listen", l);
        }
        if (bi == 1 && cfg->idle_passes > 0) {
            progress(cfg, "daemon on SQLite with no commit: %llu passes in %s",
                     (unsigned long long)cfg->idle_passes, sets[rss_set].name);
            json_t *l = daemon_idle(cfg, &sets[rss_set].db[1], cfg->idle_passes);
            progress(cfg, "daemon idle: %lld skipped passes, CPU median %.1f us, p99 %.1f us%s%s",
                     (long long)json_integer_value(json_object_get(l, "skipped_passes")),
                     json_number_value(json_object_get(l, "cpu_median_us")),
                     json_number_value(json_object_get(l, "cpu_p99_us")),
                     json_object_get(l, "failed") ? " FAILED: " : "",
                     json_string_value(json_object_get(l, "failed")) ?: "");
            json_object_set_new(root, "daemon_idle", l);
        }
    }

    if (run_backend_on(cfg, 1) && sets[0].ok[1])
        json_object_set_new(root, "sqlite_idle", sqlite_idle(&sets[0]));

    /* Leave no multi-gigabyte databases behind. */
    for (int i = 0; i < n_sets && !cfg->keep; i++)
        for (int bi = 0; bi < 2; bi++)
            if (run_backend_on(cfg, bi))
                dataset_drop(&sets[i].db[bi], cfg->pg_base);
    json_object_set_new(root, "elapsed_s", json_real((bench_now_ms() - cfg->started_ms) / 1e3));
    report_targets(root);
    return root;
}
