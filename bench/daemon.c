/* Measurements on the real daemon process (`prebuilds run`): it runs as a child with JSON
 * debug logs on a pipe; passes are counted from its own log lines ("pass converged", "pass
 * repaired drift", "pass skipped: ..."), cross-checked with its /metrics; peak RSS is the
 * VmHWM of its /proc/PID/status. Nothing here asserts a time: figures go into the JSON and
 * the report judges them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "run.h"

#define BD_LONG_MS (600 * 1000) /* a pass over 100k organizations takes seconds */

static const char *const kind_names[BD_KINDS] = {"converged", "repaired", "skipped", "failed"};

/* ---- the child ---- */

static void db_url(const bench_db *db, char *buf, size_t len)
{
    if (db->backend == PB_BACKEND_PG)
        (void)snprintf(buf, len, "%s", db->target);
    else
        (void)snprintf(buf, len, "sqlite:%s", db->target);
}

/* A numeric field of a JSON log line: a number (the daemon types its fields), or a string
 * holding one; NAN when absent. */
static double num_field(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    if (json_is_number(v))
        return json_number_value(v);
    return json_is_string(v) ? strtod(json_string_value(v), NULL) : NAN;
}

static void handle_line(bdaemon *d, const char *line)
{
    json_t *j = json_loads(line, 0, NULL);
    if (j == NULL)
        return;
    const char *msg = json_string_value(json_object_get(j, "msg"));
    const char *level = json_string_value(json_object_get(j, "level"));
    if (msg == NULL)
        msg = "";
    if (level != NULL && (strcmp(level, "warn") == 0 || strcmp(level, "error") == 0))
        (void)snprintf(d->last_warning, sizeof(d->last_warning), "%.400s", line);
    if (strcmp(msg, "starting") == 0) {
        double port = num_field(j, "metrics_port");
        d->metrics_port = isnan(port) ? 0 : (int)port;
        if (d->metrics_port == 0)
            d->metrics_port = -1; /* started, metrics off */
        json_decref(j);
        return;
    }
    bd_pass p = {.kind = BD_KINDS, .duration_ms = NAN, .statements = NAN, .added = 0};
    if (strcmp(msg, "pass converged") == 0)
        p.kind = BD_CONVERGED;
    else if (strcmp(msg, "pass repaired drift") == 0)
        p.kind = BD_REPAIRED;
    else if (strncmp(msg, "pass skipped", 12) == 0)
        p.kind = BD_SKIPPED;
    else if (strcmp(msg, "pass failed") == 0)
        p.kind = BD_FAILED;
    if (p.kind == BD_KINDS) {
        json_decref(j);
        return;
    }
    const char *scope = json_string_value(json_object_get(j, "scope"));
    p.full = scope == NULL || strcmp(scope, "full") == 0; /* skipped passes are full ones */
    p.duration_ms = num_field(j, "duration_ms");
    p.statements = num_field(j, "statements");
    static const char *const added[] = {"memberships_added", "groups_created",
                                        "group_memberships_added"};
    for (size_t k = 0; k < 3; k++) {
        double v = num_field(j, added[k]);
        if (!isnan(v))
            p.added += v;
    }
    d->passes[p.kind]++;
    d->total++;
    if (d->on_pass != NULL)
        d->on_pass(d, &p, d->arg);
    json_decref(j);
}

int bd_pump(bdaemon *d, int timeout_ms, int extra_fd)
{
    struct pollfd fds[2] = {{.fd = d->log_fd, .events = POLLIN},
                            {.fd = extra_fd, .events = POLLIN}};
    int n = poll(fds, extra_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno != EINTR) {
        (void)snprintf(d->err, sizeof(d->err), "poll: %s", strerror(errno));
        return -1;
    }
    if (n <= 0 || (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        return 0;
    uint64_t before = d->total;
    for (;;) {
        ssize_t got = read(d->log_fd, d->buf + d->len, sizeof(d->buf) - 1 - d->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN)
            break;
        if (got <= 0) {
            (void)snprintf(d->err, sizeof(d->err), "the daemon exited%s%.400s",
                           d->last_warning[0] ? "; last warning: " : "", d->last_warning);
            return -1;
        }
        d->len += (size_t)got;
        d->buf[d->len] = '\0';
        char *start = d->buf, *nl;
        while ((nl = strchr(start, '\n')) != NULL) {
            *nl = '\0';
            handle_line(d, start);
            start = nl + 1;
        }
        d->len -= (size_t)(start - d->buf);
        memmove(d->buf, start, d->len);
        if (d->len == sizeof(d->buf) - 1)
            d->len = 0; /* a line longer than the buffer: drop it */
    }
    return (int)(d->total - before);
}

int bd_wait_passes(bdaemon *d, uint64_t total, int timeout_ms)
{
    double deadline = bench_now_ms() + timeout_ms;
    while (d->total < total) {
        double left = deadline - bench_now_ms();
        if (left <= 0) {
            (void)snprintf(d->err, sizeof(d->err),
                           "timed out after %d ms waiting for pass %llu%s%.400s", timeout_ms,
                           (unsigned long long)total, d->last_warning[0] ? "; last warning: " : "",
                           d->last_warning);
            return -1;
        }
        if (bd_pump(d, (int)left < 1000 ? (int)left + 1 : 1000, -1) < 0)
            return -1;
    }
    return 0;
}

int bd_start(bdaemon *d, const char *prebuilds, const bench_db *db, const char *const *args)
{
    memset(d, 0, sizeof(*d));
    d->pid = -1;
    d->log_fd = -1;
    char url[1100];
    db_url(db, url, sizeof(url));
    const char *argv[32] = {prebuilds,      "--db", url,   "--log-level",    "debug",
                            "--log-format", "json", "run", "--metrics-addr", "127.0.0.1:0"};
    size_t n = 10;
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        (void)snprintf(d->err, sizeof(d->err), "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        (void)snprintf(d->err, sizeof(d->err), "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        (void)dup2(null, 0);
        (void)dup2(null, 1);
        (void)dup2(fds[1], 2);
        (void)unsetenv("PREBUILDS_CONFIG");
        execv(prebuilds, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    d->pid = pid;
    d->log_fd = fds[0];
    (void)fcntl(d->log_fd, F_SETFL, fcntl(d->log_fd, F_GETFL) | O_NONBLOCK);
    double deadline = bench_now_ms() + 10000;
    while (d->metrics_port == 0) {
        if (bench_now_ms() > deadline || bd_pump(d, 200, -1) < 0) {
            if (d->err[0] == '\0')
                (void)snprintf(d->err, sizeof(d->err), "%s run did not start", prebuilds);
            (void)bd_stop(d);
            return -1;
        }
    }
    return 0;
}

int bd_stop(bdaemon *d)
{
    if (d->pid <= 0)
        return -1;
    (void)kill(d->pid, SIGTERM);
    double deadline = bench_now_ms() + 10000;
    while (d->log_fd >= 0 && bench_now_ms() < deadline && bd_pump(d, 200, -1) >= 0) {
    }
    int status = 0;
    pid_t got;
    while ((got = waitpid(d->pid, &status, WNOHANG)) == 0 && bench_now_ms() < deadline)
        (void)usleep(10000);
    if (got == 0) {
        (void)kill(d->pid, SIGKILL);
        (void)waitpid(d->pid, &status, 0);
    }
    if (d->log_fd >= 0)
        close(d->log_fd);
    d->log_fd = -1;
    d->pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- what /proc and /metrics say ---- */

void bd_mem_kb(const bdaemon *d, long *hwm_kb, long *rss_kb)
{
    *hwm_kb = -1;
    *rss_kb = -1;
    char path[64];
    (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0)
            *hwm_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

double bd_cpu_ms(const bdaemon *d)
{
    clockid_t clk;
    struct timespec ts;
    if (clock_getcpuclockid(d->pid, &clk) != 0 || clock_gettime(clk, &ts) != 0)
        return NAN;
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int64_t bd_rchar(const bdaemon *d)
{
    char path[64], line[128];
    (void)snprintf(path, sizeof(path), "/proc/%d/io", (int)d->pid);
    FILE *f = fopen(path, "r");
    int64_t v = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "rchar:", 6) == 0)
            v = strtoll(line + 6, NULL, 10);
    fclose(f);
    return v;
}

int bd_scrape(bdaemon *d, bd_metrics *m)
{
    memset(m, 0, sizeof(*m));
    if (d->metrics_port <= 0)
        return -1;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)d->metrics_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        write(s, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
        close(s);
        return -1;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    ssize_t got;
    while (buf != NULL && (got = read(s, buf + len, cap - 1 - len)) > 0) {
        len += (size_t)got;
        if (len == cap - 1) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
    }
    close(s);
    if (buf == NULL)
        return -1;
    buf[len] = '\0';
    int found = 0;
    for (char *line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *sp = strrchr(line, ' ');
        if (line[0] == '#' || sp == NULL)
            continue;
        double v = strtod(sp + 1, NULL);
        *sp = '\0';
        for (int k = 0; k < BD_KINDS; k++) {
            char name[80];
            (void)snprintf(name, sizeof(name), "prebuilds_passes_total{result=\"%s\"}",
                           kind_names[k]);
            if (strcmp(line, name) == 0) {
                m->passes[k] = v;
                found++;
            }
        }
        if (strcmp(line, "prebuilds_statements_total") == 0)
            m->statements = v;
        else if (strcmp(line, "prebuilds_pass_duration_seconds_sum") == 0)
            m->duration_sum_s = v;
        else if (strcmp(line, "prebuilds_pass_duration_seconds_count") == 0)
            m->duration_count = v;
        else if (strcmp(line, "prebuilds_pass_duration_seconds_bucket{le=\"0.001\"}") == 0)
            m->le_1ms = v;
    }
    free(buf);
    return found == BD_KINDS ? 0 : -1;
}

/* ---- samples ---- */

typedef struct samples {
    double *v;
    size_t n, cap;
} samples;

static void sample_add(samples *s, double v)
{
    if (isnan(v))
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        double *nv = realloc(s->v, cap * sizeof(*nv));
        if (nv == NULL)
            return;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile (p in 0..100); NAN when empty. Sorts the samples. */
static double pct(samples *s, double p)
{
    if (s->n == 0)
        return NAN;
    qsort(s->v, s->n, sizeof(*s->v), cmp_double);
    size_t rank = (size_t)ceil(p / 100.0 * (double)s->n);
    return s->v[rank == 0 ? 0 : rank - 1];
}

static json_t *num_or_null(double v)
{
    return isnan(v) ? json_null() : json_real(v);
}

/* ---- peak RSS at the big data set ---- */

typedef struct rss_ctx {
    json_t *passes;
} rss_ctx;

static void rss_on_pass(bdaemon *d, const bd_pass *p, void *arg)
{
    rss_ctx *c = arg;
    long hwm, rss;
    bd_mem_kb(d, &hwm, &rss);
    json_array_append_new(
        c->passes, json_pack("{s:s, s:b, s:o, s:o, s:f, s:I, s:I}", "result", kind_names[p->kind],
                             "full", p->full, "statements", num_or_null(p->statements),
                             "duration_ms", num_or_null(p->duration_ms), "added", p->added,
                             "hwm_kb", (json_int_t)hwm, "rss_kb", (json_int_t)rss));
}

static json_t *rss_entry(const bench_db *db, const pb_seed_opts *seed, double drift)
{
    return json_pack("{s:s, s:s, s:I, s:f, s:[]}", "backend", run_backend_name(db->backend),
                     "dataset", db->name, "prebuild_orgs", (json_int_t)seed->orgs, "drift", drift,
                     "passes");
}

static void rss_finish(json_t *e, bdaemon *d, int stop_rc)
{
    long hwm, rss;
    bd_mem_kb(d, &hwm, &rss);
    json_object_set_new(e, "hwm_kb", json_integer(hwm));
    json_object_set_new(e, "rss_kb", json_integer(rss));
    (void)stop_rc;
}

void daemon_rss(const run_cfg *cfg, const bench_db *db, const pb_seed_opts *seed, int passes,
                json_t *out)
{
    static const char *const args[] = {"--interval", "1h", NULL};
    json_t *e = rss_entry(db, seed, 0);
    json_array_append_new(out, e);
    rss_ctx ctx = {.passes = json_object_get(e, "passes")};
    bdaemon d;
    if (bd_start(&d, cfg->prebuilds, db, args) != 0) {
        json_object_set_new(e, "failed", json_string(d.err));
    } else {
        d.on_pass = rss_on_pass;
        d.arg = &ctx;
        /* The first pass runs at start; SIGUSR1 asks for each further one (and makes an
         * SQLite pass read even with no commit since the last). */
        int rc = bd_wait_passes(&d, 1, BD_LONG_MS);
        for (int k = 1; k < passes && rc == 0; k++) {
            (void)kill(d.pid, SIGUSR1);
            rc = bd_wait_passes(&d, (uint64_t)k + 1, BD_LONG_MS);
        }
        if (rc != 0)
            json_object_set_new(e, "failed", json_string(d.err));
        rss_finish(e, &d, 0);
        (void)bd_stop(&d);
    }

    /* 100% drift, repaired by the first pass of a fresh process. */
    e = rss_entry(db, seed, 1.0);
    json_array_append_new(out, e);
    ctx.passes = json_object_get(e, "passes");
    drifter dr;
    if (drifter_open(&dr, db, cfg->pg_base, seed, 1.0) != 0 || drifter_apply(&dr) != 0) {
        json_object_set_new(e, "failed", json_string(dr.conn.err));
        drifter_close(&dr);
        return;
    }
    json_object_set_new(e, "drifted_orgs", json_integer(dr.n_drifted));
    if (bd_start(&d, cfg->prebuilds, db, args) != 0) {
        json_object_set_new(e, "failed", json_string(d.err));
    } else {
        d.on_pass = rss_on_pass;
        d.arg = &ctx;
        if (bd_wait_passes(&d, 1, BD_LONG_MS) != 0)
            json_object_set_new(e, "failed", json_string(d.err));
        rss_finish(e, &d, 0);
        (void)bd_stop(&d);
    }
    int64_t missing = -1;
    if (drifter_missing(&dr, true, &missing) == 0)
        json_object_set_new(e, "missing_after", json_integer(missing));
    drifter_close(&dr);
}

/* ---- many passes ---- */

typedef struct soak_ctx {
    samples dur;
    double st_min, st_max;
} soak_ctx;

static void soak_on_pass(bdaemon *d, const bd_pass *p, void *arg)
{
    (void)d;
    soak_ctx *c = arg;
    sample_add(&c->dur, p->duration_ms);
    if (!isnan(p->statements)) {
        if (isnan(c->st_min) || p->statements < c->st_min)
            c->st_min = p->statements;
        if (isnan(c->st_max) || p->statements > c->st_max)
            c->st_max = p->statements;
    }
}

static json_t *kinds_json(const uint64_t *passes)
{
    json_t *o = json_object();
    for (int k = 0; k < BD_KINDS; k++)
        json_object_set_new(o, kind_names[k], json_integer((json_int_t)passes[k]));
    return o;
}

json_t *daemon_soak(const run_cfg *cfg, const bench_db *db)
{
    bool by_signal = db->backend == PB_BACKEND_SQLITE;
    const char *const args_interval[] = {"--interval", "1ms", NULL};
    const char *const args_signal[] = {"--interval", "1h", NULL};
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:s}", "backend", run_backend_name(db->backend), "dataset",
                  db->name, "driven_by", by_signal ? "SIGUSR1" : "--interval 1ms", "interval",
                  by_signal ? "1h" : "1ms");
    json_t *points = json_array();
    json_object_set_new(out, "checkpoints", points);
    soak_ctx ctx = {.st_min = NAN, .st_max = NAN};
    bdaemon d;
    if (bd_start(&d, cfg->prebuilds, db, by_signal ? args_signal : args_interval) != 0) {
        json_object_set_new(out, "failed", json_string(d.err));
        return out;
    }
    d.on_pass = soak_on_pass;
    d.arg = &ctx;
    static const uint64_t marks[] = {10, 100, 1000, 10000, 20000, 30000, 40000, 50000};
    size_t m = 0;
    double started = bench_now_ms();
    int rc = bd_wait_passes(&d, 1, BD_LONG_MS);
    while (rc == 0 && m < sizeof(marks) / sizeof(marks[0])) {
        uint64_t target = marks[m] < cfg->soak_passes ? marks[m] : cfg->soak_passes;
        if (d.total >= target) {
            long hwm, rss;
            bd_mem_kb(&d, &hwm, &rss);
            json_array_append_new(points,
                                  json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:I, s:I}", "passes",
                                            (json_int_t)d.total, "by_result", kinds_json(d.passes),
                                            "statements_min", num_or_null(ctx.st_min),
                                            "statements_max", num_or_null(ctx.st_max),
                                            "duration_median_ms", num_or_null(pct(&ctx.dur, 50)),
                                            "duration_p99_ms", num_or_null(pct(&ctx.dur, 99)),
                                            "hwm_kb", (json_int_t)hwm, "rss_kb", (json_int_t)rss));
            ctx.dur.n = 0; /* percentiles per stretch between checkpoints */
            if (target == cfg->soak_passes)
                break;
            m++;
            continue;
        }
        if (by_signal) {
            uint64_t next = d.total + 1;
            (void)kill(d.pid, SIGUSR1);
            rc = bd_wait_passes(&d, next, 10000);
        } else {
            rc = bd_pump(&d, 1000, -1) < 0 ? -1 : 0;
        }
    }
    if (rc != 0)
        json_object_set_new(out, "failed", json_string(d.err));
    bd_metrics met;
    if (bd_scrape(&d, &met) == 0) {
        json_t *mp = json_object();
        for (int k = 0; k < BD_KINDS; k++)
            json_object_set_new(mp, kind_names[k], json_real(met.passes[k]));
        json_object_set_new(out, "metrics_passes", mp);
    }
    json_object_set_new(out, "seconds", json_real((bench_now_ms() - started) / 1e3));
    (void)bd_stop(&d);
    free(ctx.dur.v);
    return out;
}

/* ---- --listen latency ---- */

static int run_child(const char *const argv[], char *err, size_t len)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        (void)dup2(null, 0);
        (void)dup2(null, 1);
        (void)dup2(null, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        (void)snprintf(err, len, "%s %s failed", argv[0], argv[3]);
        return -1;
    }
    return 0;
}

static int pg_ok(PGconn *c, const char *sql, char *err, size_t len)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        (void)snprintf(err, len, "%s", PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

typedef struct listen_ctx {
    samples dur, st;
    uint64_t notified;
} listen_ctx;

static void listen_on_pass(bdaemon *d, const bd_pass *p, void *arg)
{
    (void)d;
    listen_ctx *c = arg;
    if (p->full)
        return;
    c->notified++;
    sample_add(&c->dur, p->duration_ms);
    sample_add(&c->st, p->statements);
}

/* One brand-new organization with a template, a version and a preset with
 * desired_instances set, committed in one statement (as tests/daemon/listen_latency.c). */
static const char new_org_sql[] =
    "WITH o AS (INSERT INTO organizations (id, name, display_name, description,"
    " created_at, updated_at) VALUES (gen_random_uuid(), 'lat-' || $1, 'lat-' || $1, '',"
    " now(), now()) RETURNING id),"
    " t AS (INSERT INTO templates (id, organization_id, name, provisioner,"
    " active_version_id, created_by, created_at, updated_at) SELECT gen_random_uuid(),"
    " o.id, 'tpl', 'terraform', '00000000-0000-0000-0000-000000000000', $2::uuid, now(),"
    " now() FROM o RETURNING id, organization_id),"
    " v AS (INSERT INTO template_versions (id, template_id, organization_id, name, readme,"
    " job_id, created_by, created_at, updated_at) SELECT gen_random_uuid(), t.id,"
    " t.organization_id, 'v1', '', gen_random_uuid(), $2::uuid, now(), now() FROM t"
    " RETURNING id),"
    " p AS (INSERT INTO template_version_presets (template_version_id, name,"
    " desired_instances) SELECT v.id, 'small', 1 FROM v RETURNING 1)"
    " SELECT id::text FROM o";

json_t *daemon_listen(const run_cfg *cfg, const bench_db *db, int samples_n)
{
    json_t *out = json_pack("{s:s, s:s, s:i}", "backend", run_backend_name(db->backend), "dataset",
                            db->name, "samples", samples_n);
    char err[BENCH_ERR_MAX] = "";
    char url[1100];
    db_url(db, url, sizeof(url));
    const char *init[] = {cfg->prebuilds, "--db", url, "init", "--triggers", NULL};
    if (run_child(init, err, sizeof(err)) != 0) {
        json_object_set_new(out, "failed", json_string(err));
        return out;
    }
    PGconn *c = PQconnectdb(db->target);
    /* A bench-only trigger reports the commit of the group membership, the last of the
     * three rows the daemon adds in one transaction: NOTIFY is delivered at commit. */
    if (PQstatus(c) != CONNECTION_OK ||
        pg_ok(c,
              "CREATE OR REPLACE FUNCTION pb_bench_done() RETURNS trigger LANGUAGE plpgsql AS $$"
              " BEGIN PERFORM pg_notify('pb_bench_done', g.organization_id::text) FROM groups g"
              " WHERE g.id = NEW.group_id; RETURN NULL; END $$",
              err, sizeof(err)) != 0 ||
        pg_ok(c,
              "CREATE TRIGGER pb_bench_done AFTER INSERT ON group_members FOR EACH ROW"
              " EXECUTE FUNCTION pb_bench_done()",
              err, sizeof(err)) != 0 ||
        pg_ok(c, "LISTEN pb_bench_done", err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            (void)snprintf(err, sizeof(err), "%s", PQerrorMessage(c));
        json_object_set_new(out, "failed", json_string(err));
        PQfinish(c);
        return out;
    }
    static const char *const args[] = {"--listen", "--interval", "1h", NULL};
    bdaemon d;
    listen_ctx ctx = {0};
    samples lat = {0};
    int timeouts = 0;
    if (bd_start(&d, cfg->prebuilds, db, args) != 0) {
        json_object_set_new(out, "failed", json_string(d.err));
        goto done;
    }
    d.on_pass = listen_on_pass;
    d.arg = &ctx;
    /* The full pass every new session starts with; LISTEN was issued before it. */
    if (bd_wait_passes(&d, 1, BD_LONG_MS) != 0) {
        json_object_set_new(out, "failed", json_string(d.err));
        (void)bd_stop(&d);
        goto done;
    }
    int sock = PQsocket(c);
    bool dead = false;
    for (int i = 0; i < samples_n && !dead; i++) {
        char idx[32];
        (void)snprintf(idx, sizeof(idx), "%d-%d", (int)getpid(), i);
        const char *params[2] = {idx, PB_DEFAULT_USER_ID};
        PGresult *r = PQexecParams(c, new_org_sql, 2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            json_object_set_new(out, "failed", json_string(PQerrorMessage(c)));
            PQclear(r);
            break;
        }
        char org[64];
        (void)snprintf(org, sizeof(org), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        double t0 = bench_now_ms(); /* the preset is committed */
        bool seen = false;
        while (!seen) {
            double left = t0 + 10000 - bench_now_ms();
            if (left <= 0)
                break;
            if (bd_pump(&d, (int)left + 1, sock) < 0) {
                dead = true;
                break;
            }
            if (PQconsumeInput(c) != 1) {
                dead = true;
                break;
            }
            PGnotify *nt;
            while ((nt = PQnotifies(c)) != NULL) {
                if (strcmp(nt->extra, org) == 0)
                    seen = true;
                PQfreemem(nt);
            }
            if (seen)
                sample_add(&lat, bench_now_ms() - t0);
        }
        if (!seen && !dead)
            timeouts++;
    }
    if (dead)
        json_object_set_new(out, "failed", json_string(d.err[0] ? d.err : PQerrorMessage(c)));
    /* the notified passes' log lines may still be in the pipe */
    (void)bd_pump(&d, 200, -1);
    (void)bd_stop(&d);
    double sum = 0;
    for (size_t k = 0; k < lat.n; k++)
        sum += lat.v[k];
    json_object_set_new(out, "converged", json_integer((json_int_t)lat.n));
    json_object_set_new(out, "timeouts", json_integer(timeouts));
    json_object_set_new(out, "mean_ms", num_or_null(lat.n ? sum / (double)lat.n : NAN));
    json_object_set_new(out, "p50_ms", num_or_null(pct(&lat, 50)));
    json_object_set_new(out, "p90_ms", num_or_null(pct(&lat, 90)));
    json_object_set_new(out, "p99_ms", num_or_null(pct(&lat, 99)));
    json_object_set_new(out, "max_ms", num_or_null(pct(&lat, 100)));
    json_object_set_new(out, "notified_passes", json_integer((json_int_t)ctx.notified));
    json_object_set_new(out, "notified_pass_median_ms", num_or_null(pct(&ctx.dur, 50)));
    json_object_set_new(out, "notified_pass_statements_max", num_or_null(pct(&ctx.st, 100)));
done:
    (void)pg_ok(c, "DROP TRIGGER IF EXISTS pb_bench_done ON group_members", err, sizeof(err));
    (void)pg_ok(c, "DROP FUNCTION IF EXISTS pb_bench_done()", err, sizeof(err));
    PQfinish(c);
    free(lat.v);
    free(ctx.dur.v);
    free(ctx.st.v);
    return out;
}

/* ---- SQLite with no commit since the last pass ---- */

json_t *daemon_idle(const run_cfg *cfg, const bench_db *db, uint64_t passes)
{
    static const char *const args[] = {"--interval", "1ms", NULL};
    json_t *out = json_pack("{s:s, s:s, s:s}", "backend", run_backend_name(db->backend), "dataset",
                            db->name, "interval", "1ms");
    bdaemon d;
    if (bd_start(&d, cfg->prebuilds, db, args) != 0) {
        json_object_set_new(out, "failed", json_string(d.err));
        return out;
    }
    /* The first pass reads (nothing to compare data_version with). */
    int rc = bd_wait_passes(&d, 1, BD_LONG_MS);
    bd_metrics m0, m1;
    if (rc == 0 && bd_scrape(&d, &m0) != 0) {
        (void)snprintf(d.err, sizeof(d.err), "cannot read the daemon's /metrics");
        rc = -1;
    }
    uint64_t base_total = d.total, base_skipped = d.passes[BD_SKIPPED];
    /* Per skipped pass: the CPU time the daemon process used, read between log lines
     * that arrive one at a time (the daemon sleeps in poll() in between), and the bytes
     * it read from files (rchar). */
    samples cpu = {0};
    double cpu_prev = bd_cpu_ms(&d);
    int64_t rchar_first = bd_rchar(&d), rchar_prev = rchar_first, rchar_max = 0;
    double started = bench_now_ms();
    while (rc == 0 && d.passes[BD_SKIPPED] - base_skipped < passes) {
        uint64_t before_total = d.total, before_skipped = d.passes[BD_SKIPPED];
        int n = bd_pump(&d, 1000, -1);
        if (n < 0) {
            rc = -1;
            break;
        }
        if (n == 0)
            continue;
        double cpu_now = bd_cpu_ms(&d);
        int64_t rchar_now = bd_rchar(&d);
        if (n == 1 && d.passes[BD_SKIPPED] - before_skipped == 1 && d.total - before_total == 1) {
            sample_add(&cpu, cpu_now - cpu_prev);
            if (rchar_now - rchar_prev > rchar_max)
                rchar_max = rchar_now - rchar_prev;
        }
        cpu_prev = cpu_now;
        rchar_prev = rchar_now;
    }
    double seconds = (bench_now_ms() - started) / 1e3;
    uint64_t skipped = d.passes[BD_SKIPPED] - base_skipped;
    uint64_t others = d.total - base_total - skipped;
    int64_t rchar_total = bd_rchar(&d) - rchar_first;
    if (rc == 0 && bd_scrape(&d, &m1) != 0) {
        (void)snprintf(d.err, sizeof(d.err), "cannot read the daemon's /metrics");
        rc = -1;
    }
    if (rc != 0)
        json_object_set_new(out, "failed", json_string(d.err));
    json_object_set_new(out, "skipped_passes", json_integer((json_int_t)skipped));
    json_object_set_new(out, "other_passes", json_integer((json_int_t)others));
    json_object_set_new(out, "seconds", json_real(seconds));
    json_object_set_new(out, "cpu_samples", json_integer((json_int_t)cpu.n));
    json_object_set_new(out, "cpu_median_us", num_or_null(pct(&cpu, 50) * 1e3));
    json_object_set_new(out, "cpu_p99_us", num_or_null(pct(&cpu, 99) * 1e3));
    json_object_set_new(out, "cpu_max_us", num_or_null(pct(&cpu, 100) * 1e3));
    json_object_set_new(
        out, "rchar_per_pass",
        num_or_null(skipped > 0 && rchar_first >= 0 ? (double)rchar_total / (double)skipped : NAN));
    json_object_set_new(out, "rchar_max_sampled", json_integer(rchar_max));
    if (rc == 0) {
        double n_skip = m1.passes[BD_SKIPPED] - m0.passes[BD_SKIPPED];
        double n_all = m1.duration_count - m0.duration_count;
        json_object_set_new(
            out, "metrics",
            json_pack("{s:f, s:f, s:f, s:f, s:f}", "skipped", n_skip, "passes", n_all,
                      "statements_per_pass",
                      n_all > 0 ? (m1.statements - m0.statements) / n_all : NAN, "le_1ms",
                      m1.le_1ms - m0.le_1ms, "mean_ms",
                      n_all > 0 ? (m1.duration_sum_s - m0.duration_sum_s) / n_all * 1e3 : NAN));
    }
    (void)bd_stop(&d);
    free(cpu.v);
    return out;
}
