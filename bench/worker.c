/* Worker processes: each strategy runs its passes in a child of its own, driven over two
 * pipes by the parent, which re-creates the drift between passes on another connection.
 * So a worker's peak RSS is the strategy's alone, and nothing the parent does is timed. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define LOOP_MAX 10000

/* ---- parent side ---- */

int worker_start(worker *w, const char *self_exe, bench_strategy s, const bench_db *db)
{
    memset(w, 0, sizeof(*w));
    w->pid = -1;
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0) {
        (void)snprintf(w->err, sizeof(w->err), "pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe(from_child) != 0) {
        (void)snprintf(w->err, sizeof(w->err), "pipe: %s", strerror(errno));
        close(to_child[0]);
        close(to_child[1]);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        (void)snprintf(w->err, sizeof(w->err), "fork: %s", strerror(errno));
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        return -1;
    }
    if (pid == 0) {
        /* A fresh image, so the peak RSS counts nothing of the parent's. */
        (void)dup2(to_child[0], STDIN_FILENO);
        (void)dup2(from_child[1], STDOUT_FILENO);
        close(to_child[0]);
        close(to_child[1]);
        close(from_child[0]);
        close(from_child[1]);
        char *const argv[] = {(char *)"pb_bench",
                              (char *)"worker",
                              (char *)bench_strategy_name(s),
                              (char *)(db->backend == PB_BACKEND_PG ? "pg" : "sqlite"),
                              (char *)db->target,
                              NULL};
        execv(self_exe, argv);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    w->pid = pid;
    w->to = fdopen(to_child[1], "w");
    w->from = fdopen(from_child[0], "r");
    if (w->to == NULL || w->from == NULL) {
        (void)snprintf(w->err, sizeof(w->err), "fdopen: %s", strerror(errno));
        return -1;
    }
    char line[BENCH_ERR_MAX + 64];
    if (fgets(line, sizeof(line), w->from) == NULL) {
        (void)snprintf(w->err, sizeof(w->err), "worker exited before it was ready");
        return -1;
    }
    if (strncmp(line, "ready", 5) != 0) {
        line[strcspn(line, "\n")] = '\0';
        (void)snprintf(w->err, sizeof(w->err), "worker: %.480s", line);
        return -1;
    }
    return 0;
}

/* The value after " key=" in a reply line, as text up to the next space. */
static const char *kv(const char *line, const char *key, char *buf, size_t len)
{
    char pat[32];
    (void)snprintf(pat, sizeof(pat), " %s=", key);
    const char *at = strstr(line, pat);
    buf[0] = '\0';
    if (at == NULL)
        return buf;
    at += strlen(pat);
    size_t n = strcspn(at, " \n");
    if (n >= len)
        n = len - 1;
    memcpy(buf, at, n);
    buf[n] = '\0';
    return buf;
}

static uint64_t kv_u64(const char *line, const char *key)
{
    char buf[40];
    return strtoull(kv(line, key, buf, sizeof(buf)), NULL, 10);
}

static double kv_double(const char *line, const char *key)
{
    char buf[40];
    return strtod(kv(line, key, buf, sizeof(buf)), NULL);
}

static int request(worker *w, const char *cmd, char *line, size_t len)
{
    if (fprintf(w->to, "%s\n", cmd) < 0 || fflush(w->to) != 0) {
        (void)snprintf(w->err, sizeof(w->err), "worker gone: %s", strerror(errno));
        return -1;
    }
    if (fgets(line, (int)len, w->from) == NULL) {
        (void)snprintf(w->err, sizeof(w->err), "worker exited during \"%s\"", cmd);
        return -1;
    }
    if (strncmp(line, "ok", 2) != 0) {
        line[strcspn(line, "\n")] = '\0';
        (void)snprintf(w->err, sizeof(w->err), "worker: %.480s", line);
        return -1;
    }
    return 0;
}

int worker_pass(worker *w, bench_pass *p, long *hwm_kb, long *rss_kb)
{
    char line[BENCH_ERR_MAX + 400];
    memset(p, 0, sizeof(*p));
    if (request(w, "pass", line, sizeof(line)) != 0)
        return -1;
    p->statements = kv_u64(line, "st");
    p->round_trips = kv_u64(line, "rt");
    p->wall_ms = kv_double(line, "wall");
    p->inserts = kv_u64(line, "ins");
    p->considered = kv_u64(line, "cons");
    p->added[0] = kv_u64(line, "am");
    p->added[1] = kv_u64(line, "ag");
    p->added[2] = kv_u64(line, "agm");
    p->errors = kv_u64(line, "errs");
    *hwm_kb = (long)kv_u64(line, "hwm");
    *rss_kb = (long)kv_u64(line, "rss");
    const char *msg = strstr(line, " msg=");
    if (msg != NULL) {
        (void)snprintf(p->err, sizeof(p->err), "%s", msg + 5);
        p->err[strcspn(p->err, "\n")] = '\0';
    }
    return 0;
}

int worker_loop(worker *w, uint64_t n, worker_loop_result *out)
{
    char cmd[64], line[512];
    (void)snprintf(cmd, sizeof(cmd), "loop %llu", (unsigned long long)n);
    memset(out, 0, sizeof(*out));
    if (request(w, cmd, line, sizeof(line)) != 0)
        return -1;
    out->passes = kv_u64(line, "n");
    out->statements_min = kv_u64(line, "stmin");
    out->statements_max = kv_u64(line, "stmax");
    out->round_trips_max = kv_u64(line, "rtmax");
    out->wall_median_ms = kv_double(line, "med");
    out->wall_p99_ms = kv_double(line, "p99");
    out->wall_max_ms = kv_double(line, "max");
    out->hwm_kb = (long)kv_u64(line, "hwm");
    out->rss_kb = (long)kv_u64(line, "rss");
    return 0;
}

int worker_stop(worker *w, long *maxrss_kb)
{
    *maxrss_kb = -1;
    if (w->to != NULL) {
        (void)fprintf(w->to, "quit\n");
        fclose(w->to);
        w->to = NULL;
    }
    if (w->from != NULL) {
        fclose(w->from);
        w->from = NULL;
    }
    if (w->pid <= 0)
        return 0;
    int status = 0;
    struct rusage ru;
    pid_t got;
    do {
        got = wait4(w->pid, &status, 0, &ru);
    } while (got < 0 && errno == EINTR);
    w->pid = -1;
    if (got < 0)
        return -1;
    *maxrss_kb = ru.ru_maxrss;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- child side ---- */

static double loop_wall[LOOP_MAX];

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void reply_pass(const bench_pass *p)
{
    long hwm, rss;
    bench_mem_kb(&hwm, &rss);
    (void)printf("ok st=%llu rt=%llu wall=%.6f ins=%llu cons=%llu am=%llu ag=%llu agm=%llu "
                 "errs=%llu hwm=%ld rss=%ld",
                 (unsigned long long)p->statements, (unsigned long long)p->round_trips, p->wall_ms,
                 (unsigned long long)p->inserts, (unsigned long long)p->considered,
                 (unsigned long long)p->added[0], (unsigned long long)p->added[1],
                 (unsigned long long)p->added[2], (unsigned long long)p->errors, hwm, rss);
    if (p->err[0] != '\0')
        (void)printf(" msg=%s", p->err);
    (void)printf("\n");
    (void)fflush(stdout);
}

static void run_loop(bench_runner *r, uint64_t n)
{
    if (n == 0 || n > LOOP_MAX) {
        (void)printf("err loop count must be 1 to %d\n", LOOP_MAX);
        (void)fflush(stdout);
        return;
    }
    uint64_t st_min = UINT64_MAX, st_max = 0, rt_max = 0;
    for (uint64_t i = 0; i < n; i++) {
        bench_pass p;
        if (runner_pass(r, &p) != 0) {
            (void)printf("err pass %llu: %s\n", (unsigned long long)i, p.err);
            (void)fflush(stdout);
            return;
        }
        loop_wall[i] = p.wall_ms;
        st_min = p.statements < st_min ? p.statements : st_min;
        st_max = p.statements > st_max ? p.statements : st_max;
        rt_max = p.round_trips > rt_max ? p.round_trips : rt_max;
    }
    qsort(loop_wall, n, sizeof(loop_wall[0]), cmp_double);
    size_t p99 = (size_t)((double)n * 0.99);
    if (p99 >= n)
        p99 = n - 1;
    long hwm, rss;
    bench_mem_kb(&hwm, &rss);
    (void)printf("ok n=%llu stmin=%llu stmax=%llu rtmax=%llu med=%.6f p99=%.6f max=%.6f hwm=%ld "
                 "rss=%ld\n",
                 (unsigned long long)n, (unsigned long long)st_min, (unsigned long long)st_max,
                 (unsigned long long)rt_max, loop_wall[n / 2], loop_wall[p99], loop_wall[n - 1],
                 hwm, rss);
    (void)fflush(stdout);
}

int worker_main(int argc, char **argv)
{
    if (argc != 5) {
        (void)printf("err usage: worker a|b|c pg|sqlite TARGET\n");
        return 2;
    }
    bench_strategy s = BS_COUNT;
    for (int i = 0; i < BS_COUNT; i++)
        if (strcmp(argv[2], bench_strategy_name((bench_strategy)i)) == 0)
            s = (bench_strategy)i;
    bench_db db;
    memset(&db, 0, sizeof(db));
    db.backend = strcmp(argv[3], "pg") == 0 ? PB_BACKEND_PG : PB_BACKEND_SQLITE;
    (void)snprintf(db.target, sizeof(db.target), "%s", argv[4]);
    if (s == BS_COUNT) {
        (void)printf("err unknown strategy \"%s\"\n", argv[2]);
        return 2;
    }
    /* Touch the loop's buffer now, so it is part of the baseline and not of the growth
     * a long loop is meant to show. */
    memset(loop_wall, 0, sizeof(loop_wall));
    bench_runner r;
    char err[BENCH_ERR_MAX];
    if (runner_open(&r, s, &db, err, sizeof(err)) != 0) {
        (void)printf("err %s\n", err);
        return 1;
    }
    (void)printf("ready\n");
    (void)fflush(stdout);
    char line[128];
    int rc = 0;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (strncmp(line, "pass", 4) == 0) {
            bench_pass p;
            (void)runner_pass(&r, &p);
            reply_pass(&p);
        } else if (strncmp(line, "loop ", 5) == 0) {
            run_loop(&r, strtoull(line + 5, NULL, 10));
        } else if (strncmp(line, "quit", 4) == 0) {
            break;
        } else {
            (void)printf("err unknown command\n");
            (void)fflush(stdout);
        }
    }
    runner_close(&r);
    return rc;
}
