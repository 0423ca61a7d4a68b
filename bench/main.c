/* pb_bench: seeds data sets, runs the three strategies on both backends pass by pass in
 * worker processes, compares the status statement with the reference's, and writes the
 * results. `smoke` runs the same code at toy size and checks the counts, for `make test`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "report.h"
#include "run.h"

/* ---- command line ---- */

static int usage(void)
{
    (void)fprintf(
        stderr,
        "usage: pb_bench run --out DIR [--pg CONNINFO] [--sqlite-dir DIR] [--sizes N,N,..]\n"
        "                    [--passes N] [--rounds N] [--soak-passes N] [--rss-orgs N]\n"
        "                    [--slow-pass-s S] [--max-pass-s S]\n"
        "                    [--proposed FILE] [--keep 0|1] [--idle-passes N]\n"
        "                    [--listen-samples N] [--prebuilds PATH]\n"
        "       pb_bench smoke [--pg CONNINFO | --pg-file FILE] [--sqlite-dir DIR]\n");
    return 2;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    return buf;
}

static bool parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0)
        return false;
    *out = v;
    return true;
}

static int parse_args(run_cfg *cfg, int argc, char **argv, const char **out_dir)
{
    static char pg_buf[1024];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t n = 0;
        if (v == NULL)
            return usage();
        i++;
        if (strcmp(a, "--out") == 0) {
            *out_dir = v;
        } else if (strcmp(a, "--pg") == 0) {
            cfg->pg_base = v;
        } else if (strcmp(a, "--pg-file") == 0) {
            /* the CTest fixture writes the server's conninfo into a file */
            char *text = read_file(v);
            if (text == NULL) {
                (void)fprintf(stderr, "pb_bench: cannot read %s\n", v);
                return 2;
            }
            text[strcspn(text, "\r\n")] = '\0';
            (void)snprintf(pg_buf, sizeof(pg_buf), "%s", text);
            free(text);
            cfg->pg_base = pg_buf;
        } else if (strcmp(a, "--sqlite-dir") == 0) {
            cfg->sqlite_dir = v;
        } else if (strcmp(a, "--sizes") == 0) {
            cfg->n_sizes = 0;
            for (const char *at = v; *at != '\0';) {
                char *end;
                errno = 0;
                long long size = strtoll(at, &end, 10);
                if (errno != 0 || end == at || size < 1 || cfg->n_sizes == MAX_SIZES ||
                    (*end != ',' && *end != '\0'))
                    return usage();
                cfg->sizes[cfg->n_sizes++] = size;
                at = *end == ',' ? end + 1 : end;
            }
        } else if (strcmp(a, "--passes") == 0 && parse_i64(v, &n) && n >= 1) {
            cfg->passes = (int)n;
        } else if (strcmp(a, "--rounds") == 0 && parse_i64(v, &n) && n <= 64) {
            cfg->rounds = (int)n;
        } else if (strcmp(a, "--soak-passes") == 0 && parse_i64(v, &n) && n <= 50000) {
            cfg->soak_passes = (uint64_t)n;
        } else if (strcmp(a, "--idle-passes") == 0 && parse_i64(v, &n) && n <= 1000000) {
            cfg->idle_passes = (uint64_t)n;
        } else if (strcmp(a, "--listen-samples") == 0 && parse_i64(v, &n) && n <= 100000) {
            cfg->listen_samples = (int)n;
        } else if (strcmp(a, "--prebuilds") == 0) {
            cfg->prebuilds = v;
        } else if (strcmp(a, "--rss-orgs") == 0 && parse_i64(v, &n)) {
            cfg->rss_orgs = n;
        } else if (strcmp(a, "--max-pass-s") == 0 && parse_i64(v, &n)) {
            cfg->max_pass_ms = (double)n * 1e3;
        } else if (strcmp(a, "--keep") == 0 && parse_i64(v, &n)) {
            cfg->keep = n != 0;
        } else if (strcmp(a, "--slow-pass-s") == 0 && parse_i64(v, &n)) {
            cfg->slow_ms = (double)n * 1e3;
        } else if (strcmp(a, "--proposed") == 0) {
            cfg->proposed_sql = read_file(v);
            if (cfg->proposed_sql == NULL) {
                (void)fprintf(stderr, "pb_bench: cannot read %s\n", v);
                return 2;
            }
        } else {
            return usage();
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "worker") == 0)
        return worker_main(argc, argv);
    if (argc < 2 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "smoke") != 0))
        return usage();
    run_cfg cfg = {
        .sizes = {1000, 10000, 100000},
        .n_sizes = 3,
        .templates_per_org = 3,
        .versions_per_template = 5,
        .presets_per_version = 4,
        .passes = 5,
        .rounds = 15,
        .soak_passes = 11000, /* 1,000 to settle, then the 10,000 judged */
        .idle_passes = 10000,
        .listen_samples = 200,
        .prebuilds = PB_BENCH_PREBUILDS,
        .soak_orgs = 100,
        .rss_orgs = 100000,
        .slow_ms = 10000,
        .max_pass_ms = 60000,
        .smoke = strcmp(argv[1], "smoke") == 0,
    };
    cfg.started_ms = bench_now_ms();
    ssize_t len = readlink("/proc/self/exe", cfg.self, sizeof(cfg.self) - 1);
    if (len <= 0) {
        (void)fprintf(stderr, "pb_bench: cannot find its own executable\n");
        return 1;
    }
    cfg.self[len] = '\0';
    const char *out_dir = NULL;
    if (cfg.smoke) {
        /* Toy sizes: every code path of a real run, in a few seconds. */
        cfg.sizes[0] = 200; /* the smallest size where a 1% drift drifts an organization */
        cfg.n_sizes = 1;
        cfg.templates_per_org = 2;
        cfg.versions_per_template = 2;
        cfg.presets_per_version = 2;
        cfg.passes = 1;
        cfg.rounds = 3;
        cfg.soak_passes = 20;
        cfg.soak_orgs = 10;
        cfg.idle_passes = 20;
        cfg.listen_samples = 5;
        cfg.rss_orgs = 20;
    }
    int rc = parse_args(&cfg, argc, argv, &out_dir);
    if (rc != 0)
        return rc;
    if (cfg.pg_base == NULL && cfg.sqlite_dir == NULL)
        return usage();
    /* The library's own statements, never a copy: ours is the summary form, and the tables
     * form (a session's first pass, a database without the summary) is compared beside it. */
    cfg.ours_sql = strdup(pb__status_sql(PB_BACKEND_PG, true));
    if (cfg.proposed_sql == NULL)
        cfg.proposed_sql = strdup(pb__status_sql(PB_BACKEND_PG, false));
    if (cfg.ours_sql == NULL || cfg.proposed_sql == NULL)
        return 1;
    if (!cfg.smoke && out_dir == NULL)
        return usage();
    char smoke_dir[256] = "";
    if (cfg.smoke && out_dir == NULL) {
        const char *tmp = getenv("TMPDIR");
        (void)snprintf(smoke_dir, sizeof(smoke_dir), "%s/pb_bench_smoke_%d", tmp ? tmp : "/tmp",
                       (int)getpid());
        if (mkdir(smoke_dir, 0700) != 0) {
            (void)fprintf(stderr, "pb_bench: mkdir %s: %s\n", smoke_dir, strerror(errno));
            return 1;
        }
        out_dir = smoke_dir;
    }
    json_t *root = run_all(&cfg);
    char err[BENCH_ERR_MAX];
    int wrote = report_write(root, out_dir, err, sizeof(err));
    if (wrote != 0)
        (void)fprintf(stderr, "pb_bench: %s\n", err);
    if (!cfg.smoke) {
        (void)fprintf(stderr, "pb_bench: results written to %s\n", out_dir);
        json_decref(root);
        free(cfg.proposed_sql);
        free(cfg.ours_sql);
        return wrote == 0 ? 0 : 1;
    }
    smoke_counts c = {0, 0};
    smoke_check(&c, wrote == 0, "results written (%s)", wrote == 0 ? out_dir : err);
    smoke_checks(&cfg, root, &c);
    if (smoke_dir[0] != '\0') {
        static const char *const files[] = {"results.json", "results.md", "plot.dat", "plot.gpi"};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
            char file[400];
            (void)snprintf(file, sizeof(file), "%s/%s", smoke_dir, files[i]);
            (void)unlink(file);
        }
        (void)rmdir(smoke_dir);
    }
    json_decref(root);
    free(cfg.proposed_sql);
    free(cfg.ours_sql);
    (void)printf("%d passed, %d failed\n", c.passed, c.failed);
    return c.failed == 0 ? 0 : 1;
}
