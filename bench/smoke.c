/* The smoke test behind `ctest -R bench`: the whole benchmark at toy size (every code path
 * of a real run in a few seconds), then assertions on what it counted, never on times, plus
 * a check that the re-created drift is the seed's own. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run.h"

/* ---- smoke: the same code at toy size, checking counts (never times) ---- */

void smoke_check(smoke_counts *c, bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)printf("%s - ", ok ? "ok" : "not ok");
    (void)vprintf(fmt, ap);
    (void)printf("\n");
    va_end(ap);
    if (ok)
        c->passed++;
    else
        c->failed++;
}

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* The drift the benchmark re-creates must be the seed's own: seed one database with
 * drift, another without and re-create the drift there, and compare organization by
 * organization (by name: SQLite's ids depend on how many rows the seed made). */
typedef struct org_state {
    char name[96];
    char bits[4];
} org_state;

typedef struct org_states {
    org_state rows[256];
    int n;
} org_states;

static int collect_state(int n_cols, const char *const *vals, void *arg)
{
    org_states *s = arg;
    if (n_cols < 5 || s->n >= 256)
        return 0;
    org_state *o = &s->rows[s->n++];
    (void)snprintf(o->name, sizeof(o->name), "%s", vals[1] != NULL ? vals[1] : "");
    o->bits[0] = vals[2] != NULL && (vals[2][0] == 't' || vals[2][0] == '1') ? 'm' : '-';
    o->bits[1] = vals[3] != NULL ? 'g' : '-';
    o->bits[2] = vals[4] != NULL && (vals[4][0] == 't' || vals[4][0] == '1') ? 'i' : '-';
    o->bits[3] = '\0';
    return 0;
}

static int cmp_state(const void *a, const void *b)
{
    return strcmp(((const org_state *)a)->name, ((const org_state *)b)->name);
}

static void smoke_drift(const run_cfg *cfg, int bi, smoke_counts *c)
{
    pb_seed_opts o = {.orgs = 40,
                      .templates_per_org = 2,
                      .versions_per_template = 2,
                      .presets_per_version = 2,
                      .prebuilds_fraction = 0.5,
                      .drift_fraction = 0.5,
                      .seed = 1};
    const char *be = run_backend_name(run_backends[bi]);
    bench_db seeded, remade;
    pb_seed_result r1, r2;
    char err[BENCH_ERR_MAX];
    char n1[64], n2[64];
    (void)snprintf(n1, sizeof(n1), "pbsmoke_seeddrift_%d", (int)getpid());
    (void)snprintf(n2, sizeof(n2), "pbsmoke_remade_%d", (int)getpid());
    if (dataset_create(&seeded, run_backends[bi], cfg->pg_base, cfg->sqlite_dir, n1, &o, &r1, err,
                       sizeof(err)) != 0) {
        smoke_check(c, false, "%s: seed with drift: %s", be, err);
        return;
    }
    pb_seed_opts o0 = o;
    o0.drift_fraction = 0;
    if (dataset_create(&remade, run_backends[bi], cfg->pg_base, cfg->sqlite_dir, n2, &o0, &r2, err,
                       sizeof(err)) != 0) {
        smoke_check(c, false, "%s: seed without drift: %s", be, err);
        dataset_drop(&seeded, cfg->pg_base);
        return;
    }
    drifter d;
    int64_t exp_pre, exp_drifted;
    drift_expected(&o, o.drift_fraction, &exp_pre, &exp_drifted);
    bool ok = drifter_open(&d, &remade, cfg->pg_base, &o0, o.drift_fraction) == 0;
    ok = ok && drifter_apply(&d) == 0;
    smoke_check(c, ok && d.n_drifted == exp_drifted && exp_drifted == r1.drifted_orgs,
                "%s: drift set has %lld organizations, the seed drifted %lld, expected %lld", be,
                (long long)d.n_drifted, (long long)r1.drifted_orgs, (long long)exp_drifted);
    static org_states a, b;
    a.n = b.n = 0;
    pb_target t;
    pb_target_init_default(&t);
    const char *p[2] = {t.user_id, t.group_name};
    bconn s;
    if (ok && bconn_open(&s, run_backends[bi], seeded.target) == 0) {
        (void)bconn_exec(&s, ref_status_sql(run_backends[bi]), 2, p, collect_state, &a);
        bconn_close(&s);
    }
    if (ok)
        (void)bconn_exec(&d.conn, ref_status_sql(run_backends[bi]), 2, p, collect_state, &b);
    qsort(a.rows, (size_t)a.n, sizeof(a.rows[0]), cmp_state);
    qsort(b.rows, (size_t)b.n, sizeof(b.rows[0]), cmp_state);
    bool same = ok && a.n == b.n && a.n > 0;
    for (int i = 0; same && i < a.n; i++)
        same = strcmp(a.rows[i].name, b.rows[i].name) == 0 &&
               strcmp(a.rows[i].bits, b.rows[i].bits) == 0;
    smoke_check(c, same,
                "%s: re-created drift equals the seed's, organization by organization (%d)", be,
                a.n);
    drifter_close(&d);
    dataset_drop(&seeded, cfg->pg_base);
    dataset_drop(&remade, cfg->pg_base);
}

static const json_t *find_cell(const json_t *cells, const char *backend, double drift,
                               const char *strategy)
{
    size_t i;
    json_t *cell;
    json_array_foreach(cells, i, cell)
    {
        if (strcmp(json_string_value(json_object_get(cell, "backend")), backend) == 0 &&
            num(cell, "drift") == drift &&
            strcmp(json_string_value(json_object_get(cell, "strategy")), strategy) == 0)
            return cell;
    }
    return NULL;
}

static void smoke_cells(const json_t *root, int bi, smoke_counts *c)
{
    const char *be = run_backend_name(run_backends[bi]);
    const json_t *cells = json_object_get(root, "cells");
    const json_t *ds = NULL;
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(root, "datasets"), i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "backend")), be) == 0 &&
            strstr(json_string_value(json_object_get(d, "name")), "_soak") == NULL &&
            strstr(json_string_value(json_object_get(d, "name")), "_allpb") == NULL)
            ds = d;
    }
    double configured = ds != NULL ? num(ds, "configured_presets") : 0;
    for (int di = 0; di < N_DRIFTS; di++) {
        for (int s = 0; s < BS_COUNT; s++) {
            const char *sn = bench_strategy_name((bench_strategy)s);
            const json_t *cell = find_cell(cells, be, run_drifts[di], sn);
            const json_t *pass = cell ? json_array_get(json_object_get(cell, "passes"), 0) : NULL;
            if (cell == NULL || pass == NULL || run_cell_failed(cell) != NULL) {
                smoke_check(c, false, "%s drift %g (%s): ran: %s", be, run_drifts[di], sn,
                            cell && run_cell_failed(cell) ? run_cell_failed(cell) : "no pass");
                continue;
            }
            double st = num(pass, "statements"), rt = num(pass, "round_trips");
            double ins = num(pass, "inserts"), cons = num(pass, "considered");
            if (run_drifts[di] > 0)
                smoke_check(
                    c, num(cell, "missing_after") == 0,
                    "%s drift %g (%s): converged, %.0f drifted organizations missing nothing", be,
                    run_drifts[di], sn, num(cell, "drifted_orgs"));
            if (s == BS_C && run_drifts[di] == 0)
                smoke_check(c, st == 1 && rt == 1,
                            "%s converged (c): 1 statement, 1 round trip (%.0f, %.0f)", be, st, rt);
            if (s == BS_C && run_drifts[di] > 0 && bi == 0)
                smoke_check(c, rt <= 2 && st == 3,
                            "%s drift %g (c): at most 2 round trips, 3 statements (%.0f, %.0f)", be,
                            run_drifts[di], rt, st);
            if (s == BS_C && run_drifts[di] > 0 && bi == 1)
                smoke_check(c, st <= 6, "%s drift %g (c): at most 6 statements (%.0f)", be,
                            run_drifts[di], st);
            if (s == BS_A && run_drifts[di] == 0)
                smoke_check(
                    c, configured > 0 && st >= 2 * configured,
                    "%s converged (a): at least 2 statements per configured preset (%.0f for %.0f)",
                    be, st, configured);
            if (s == BS_A)
                smoke_check(
                    c, st == 2 + cons + ins && cons == configured,
                    "%s drift %g (a): 2 reads + one group lookup per preset + inserts (%.0f)", be,
                    run_drifts[di], st);
            if (s == BS_B)
                smoke_check(c, st == 1 + ins && rt == st && (run_drifts[di] == 0) == (ins == 0),
                            "%s drift %g (b): 1 + %.0f single-row inserts = %.0f statements", be,
                            run_drifts[di], ins, st);
        }
    }
}

void smoke_checks(const run_cfg *cfg, const json_t *root, smoke_counts *c)
{
    for (int bi = 0; bi < 2; bi++) {
        if (!run_backend_on(cfg, bi))
            continue;
        smoke_cells(root, bi, c);
        smoke_drift(cfg, bi, c);
    }
    size_t i;
    json_t *s;
    /* The daemon: counts from its own logs and /metrics, never times. */
    json_array_foreach(json_object_get(root, "daemon_soak"), i, s)
    {
        const json_t *pts = json_object_get(s, "checkpoints");
        const json_t *last = json_array_get(pts, json_array_size(pts) - 1);
        const json_t *by = json_object_get(last, "by_result");
        smoke_check(c,
                    json_object_get(s, "failed") == NULL && last != NULL &&
                        num(last, "passes") >= (double)cfg->soak_passes &&
                        num(by, "converged") == num(last, "passes") &&
                        num(last, "statements_max") == 1 && num(last, "hwm_kb") > 0,
                    "%s daemon: %.0f converged passes of 1 statement each, by its logs%s%s",
                    json_string_value(json_object_get(s, "backend")),
                    last ? num(last, "passes") : 0, json_object_get(s, "failed") ? ": " : "",
                    json_string_value(json_object_get(s, "failed"))
                        ? json_string_value(json_object_get(s, "failed"))
                        : "");
    }
    json_array_foreach(json_object_get(root, "daemon_rss"), i, s)
    {
        bool conv = num(s, "drift") == 0;
        smoke_check(c,
                    json_object_get(s, "failed") == NULL && num(s, "hwm_kb") > 0 &&
                        json_array_size(json_object_get(s, "passes")) > 0 &&
                        (conv || num(s, "missing_after") == 0),
                    "%s daemon all-prebuilds drift %g: peak RSS measured%s%s",
                    json_string_value(json_object_get(s, "backend")), num(s, "drift"),
                    json_object_get(s, "failed") ? ": " : "",
                    json_string_value(json_object_get(s, "failed"))
                        ? json_string_value(json_object_get(s, "failed"))
                        : "");
    }
    const json_t *lt = json_object_get(root, "daemon_listen");
    if (cfg->pg_base != NULL)
        smoke_check(c,
                    lt != NULL && json_object_get(lt, "failed") == NULL &&
                        num(lt, "converged") == (double)cfg->listen_samples &&
                        num(lt, "notified_passes") >= 1,
                    "daemon --listen: %.0f of %d new organizations converged%s%s",
                    lt ? num(lt, "converged") : 0, cfg->listen_samples,
                    lt && json_object_get(lt, "failed") ? ": " : "",
                    lt && json_string_value(json_object_get(lt, "failed"))
                        ? json_string_value(json_object_get(lt, "failed"))
                        : "");
    const json_t *idle = json_object_get(root, "daemon_idle");
    if (cfg->sqlite_dir != NULL) {
        const json_t *mt = json_object_get(idle, "metrics");
        smoke_check(c,
                    idle != NULL && json_object_get(idle, "failed") == NULL &&
                        num(idle, "skipped_passes") >= (double)cfg->idle_passes &&
                        num(idle, "other_passes") == 0 && num(mt, "statements_per_pass") == 1,
                    "daemon on SQLite with no commit: %.0f passes skipped, 1 statement each%s%s",
                    idle ? num(idle, "skipped_passes") : 0,
                    idle && json_object_get(idle, "failed") ? ": " : "",
                    idle && json_string_value(json_object_get(idle, "failed"))
                        ? json_string_value(json_object_get(idle, "failed"))
                        : "");
    }
    json_array_foreach(json_object_get(root, "rss_cells"), i, s)
    {
        smoke_check(c, run_cell_failed(s) == NULL && num(s, "hwm_kb") > 0,
                    "%s all-prebuilds %s drift %g: peak RSS measured",
                    json_string_value(json_object_get(s, "backend")),
                    json_string_value(json_object_get(s, "strategy")), num(s, "drift"));
    }
    if (cfg->pg_base != NULL) {
        const json_t *cmp = json_object_get(root, "status_compare");
        const json_t *v = json_array_get(json_object_get(cmp, "variants"), 0);
        smoke_check(c,
                    v != NULL && num(v, "ours_over_reference") > 0 && num(v, "ours_over_floor") > 0,
                    "status comparison ran: %s",
                    v != NULL ? "ratios measured"
                    : json_string_value(json_object_get(cmp, "failed")) != NULL
                        ? json_string_value(json_object_get(cmp, "failed"))
                        : "missing");
    }
    size_t n_targets = json_array_size(json_object_get(root, "targets"));
    smoke_check(c, n_targets > 0, "targets judged (%zu)", n_targets);
}
