/* The measurements. The status statement: ours as the library runs it (pb_store_status on a
 * store of its own, so its session's settings and prepared statements are the library's),
 * the reference's as its driver sends it (an unnamed statement, planned every time), in
 * rounds that rotate their order so a busy machine slows all alike. On PostgreSQL each
 * execution is read from pg_stat_statements (server execution and planning time, JIT
 * functions) and timed at the client (wall: planning, execution and the transfer of rows);
 * on SQLite it is timed in-process. Passes and the CLI: what the library and the binary
 * report, and the peak RSS the kernel accounted to the process. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "bench.h"

/* The reference platform's status question in its own shape: DISTINCT organizations over
 * the four-table join from the configured presets, then LEFT JOINs to the membership, the
 * group and the group membership. Like the reference it does not filter deleted rows. */
#define REF_SQL(U, G)                                                                              \
    "SELECT q.id, q.name, om.user_id IS NOT NULL, g.id, gm.user_id IS NOT NULL"                    \
    " FROM (SELECT DISTINCT o.id, o.name FROM organizations o"                                     \
    " JOIN templates t ON t.organization_id = o.id"                                                \
    " JOIN template_versions tv ON tv.template_id = t.id"                                          \
    " JOIN template_version_presets p ON p.template_version_id = tv.id"                            \
    " WHERE p.desired_instances IS NOT NULL) q"                                                    \
    " LEFT JOIN organization_members om ON om.organization_id = q.id AND om.user_id = " U          \
    " LEFT JOIN groups g ON g.organization_id = q.id AND g.name = " G                              \
    " LEFT JOIN group_members gm ON gm.group_id = g.id AND gm.user_id = " U
static const char ref_pg[] = REF_SQL("$1::uuid", "$2::text");
static const char ref_sq[] = REF_SQL("?1", "?2");

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { K_REF_JIT, K_REF, K_FIRST, K_LATER, K_REF_FRESH, K_N, K_BASE = K_N, MAX_ROUNDS = 64 };

/* The median of the first n samples (n <= MAX_ROUNDS), which stay in their order. */
double bench_median(const double *samples, int n)
{
    double v[MAX_ROUNDS];
    if (n <= 0 || n > MAX_ROUNDS)
        return NAN;
    memcpy(v, samples, (size_t)n * sizeof(*v));
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* K_REF_FRESH: the reference as the first statement of a fresh session, as our first pass
 * always is (context for the first pass's figures; the baseline stays the warm session's). */
static const char *const kind_names[K_N] = {"reference_jit_on", "reference_jit_off",
                                            "ours_first_pass", "ours_later_pass",
                                            "reference_fresh_session"};
enum { F_EXEC, F_PLAN, F_JIT, F_WALL, F_ROWS, F_N };
static const char *const field_names[F_N] = {"exec_ms", "plan_ms", "jit_functions", "wall_ms",
                                             "orgs"};

typedef struct ctx {
    const bench_db *db;
    PGconn *admin, *ref; /* PostgreSQL */
    sqlite3 *sq;         /* SQLite */
    sqlite3_stmt *sq_ref;
    pb_store *later; /* a store past its first pass */
    pb_target t;
    char *err;
} ctx;

/* What pg_stat_statements holds for the data set's database, top-level statements only
 * (the dynamic query of the probe's answer view runs nested inside ours and is counted in it). */
static int server_totals(ctx *c, double v[3])
{
    const char *p[1] = {c->db->name};
    PGresult *r = PQexecParams(c->admin,
                               "SELECT coalesce(sum(total_exec_time), 0),"
                               " coalesce(sum(total_plan_time), 0), coalesce(sum(jit_functions), 0)"
                               " FROM pg_stat_statements WHERE toplevel"
                               " AND dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
                               1, NULL, p, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? 0 : -1;
    for (int i = 0; i < 3 && rc == 0; i++)
        v[i] = strtod(PQgetvalue(r, 0, i), NULL);
    if (rc != 0)
        (void)snprintf(c->err, BENCH_ERR, "pg_stat_statements: %.400s", PQerrorMessage(c->admin));
    PQclear(r);
    return rc;
}

static int count_org(const pb_status_row *row, void *arg)
{
    (void)row;
    (*(double *)arg)++;
    return 0;
}

static int ours(ctx *c, pb_store *s, double *rows)
{
    pb_err e;
    int rc = pb_store_status(s, &c->t, NULL, 0, count_org, rows, &e);
    if (rc != 0)
        (void)snprintf(c->err, BENCH_ERR, "status: %.400s", e.msg);
    return rc;
}

static int reference(ctx *c, PGconn *conn, double *rows)
{
    if (c->sq_ref != NULL) {
        int step;
        while ((step = sqlite3_step(c->sq_ref)) == SQLITE_ROW)
            (*rows)++;
        (void)sqlite3_reset(c->sq_ref);
        if (step != SQLITE_DONE)
            (void)snprintf(c->err, BENCH_ERR, "reference: %.400s", sqlite3_errmsg(c->sq));
        return step == SQLITE_DONE ? 0 : -1;
    }
    const char *p[2] = {c->t.user_id, c->t.group_name};
    PGresult *r = PQexecParams(conn, ref_pg, 2, NULL, p, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
    *rows = PQntuples(r);
    if (rc != 0)
        (void)snprintf(c->err, BENCH_ERR, "reference: %.400s", PQerrorMessage(conn));
    PQclear(r);
    return rc;
}

/* A new session of the data set's database, with our sessions' jit=off; NULL on failure. */
static PGconn *fresh_session(ctx *c)
{
    char ci[sizeof(c->db->conninfo) + 32];
    (void)snprintf(ci, sizeof(ci), "%s options='-c jit=off'", c->db->conninfo);
    PGconn *conn = PQconnectdb(ci);
    if (PQstatus(conn) == CONNECTION_OK)
        return conn;
    (void)snprintf(c->err, BENCH_ERR, "connect to %s: %.400s", c->db->name, PQerrorMessage(conn));
    PQfinish(conn);
    return NULL;
}

static int run_one(ctx *c, int k, double f[F_N])
{
    double before[3] = {0}, after[3] = {0};
    pb_store *fresh = NULL;
    bool pg = c->db->backend == PB_BACKEND_PG;
    PGconn *ref = c->ref;
    if (pg && k <= K_REF)
        PQclear(PQexec(c->ref, k == K_REF_JIT ? "SET jit = on" : "SET jit = off"));
    if (k == K_REF_FRESH && (ref = fresh_session(c)) == NULL)
        return -1;
    if (k == K_FIRST && db_store(c->db, &fresh, false, c->err) != 0)
        return -1;
    f[F_ROWS] = 0;
    int rc = pg ? server_totals(c, before) : 0;
    double t0 = bench_now_ms();
    if (rc == 0)
        rc = k <= K_REF || k == K_REF_FRESH ? reference(c, ref, &f[F_ROWS])
                                            : ours(c, fresh ? fresh : c->later, &f[F_ROWS]);
    f[F_WALL] = bench_now_ms() - t0;
    if (rc == 0 && pg)
        rc = server_totals(c, after);
    for (int i = 0; i < 3; i++)
        f[i] = pg ? after[i] - before[i] : NAN;
    pb_store_free(&fresh);
    if (ref != c->ref)
        PQfinish(ref);
    return rc;
}

static int open_ctx(ctx *c, const bench_cfg *cfg, const bench_db *db, char *err)
{
    memset(c, 0, sizeof(*c));
    c->db = db;
    c->err = err;
    pb_target_init_default(&c->t);
    if (db->backend == PB_BACKEND_SQLITE) {
        if (sqlite3_open_v2(db->path, &c->sq, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(c->sq, ref_sq, -1, &c->sq_ref, NULL) != SQLITE_OK) {
            (void)snprintf(err, BENCH_ERR, "reference on %.60s: %.400s", db->name,
                           sqlite3_errmsg(c->sq));
            return -1;
        }
        (void)sqlite3_bind_text(c->sq_ref, 1, c->t.user_id, -1, SQLITE_STATIC);
        (void)sqlite3_bind_text(c->sq_ref, 2, c->t.group_name, -1, SQLITE_STATIC);
    } else {
        /* Planning time too, for every session of this database (the library's included). */
        char sql[160];
        (void)snprintf(sql, sizeof(sql),
                       "ALTER DATABASE %s SET pg_stat_statements.track_planning = on", db->name);
        c->admin = PQconnectdb(cfg->pg);
        c->ref = PQconnectdb(db->conninfo);
        PGresult *r = PQexec(c->admin, sql);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK && PQstatus(c->ref) == CONNECTION_OK;
        PQclear(r);
        if (!ok) {
            (void)snprintf(err, BENCH_ERR, "connect to %s: %.400s", db->name,
                           PQerrorMessage(c->admin));
            return -1;
        }
        PQfinish(c->ref); /* again, now with the setting */
        c->ref = PQconnectdb(db->conninfo);
    }
    double rows = 0;
    return db_store(db, &c->later, true, err) != 0 ? -1 : ours(c, c->later, &rows);
}

static void close_ctx(ctx *c)
{
    sqlite3_finalize(c->sq_ref);
    sqlite3_close(c->sq);
    PQfinish(c->admin);
    PQfinish(c->ref);
    pb_store_free(&c->later);
}

static json_t *medians(double v[K_N + 1][F_N][MAX_ROUNDS], int k, int rounds)
{
    json_t *o = json_object();
    for (int f = 0; f < F_N; f++)
        if (!isnan(v[k][f][0]))
            json_object_set_new(o, field_names[f], json_real(bench_median(v[k][f], rounds)));
    return o;
}

/* Per round, ours over the reference's baseline in the same round. */
static double ratio(double v[K_N + 1][F_N][MAX_ROUNDS], int k, int f, int rounds)
{
    double r[MAX_ROUNDS];
    for (int i = 0; i < rounds; i++)
        r[i] = v[k][f][i] / v[K_BASE][f][i];
    return bench_median(r, rounds);
}

/* The reference's baseline: the JIT setting that suited it better, or, when JIT compiled
 * nothing (both settings ran the same plan), the mean of the two runs of each round, so that
 * picking the luckier of two equal settings does not flatter it. */
static const char *baseline(double v[K_N + 1][F_N][MAX_ROUNDS], bool pg, int rounds)
{
    bool jit = pg && bench_median(v[K_REF_JIT][F_JIT], rounds) > 0;
    int best =
        jit && bench_median(v[K_REF_JIT][F_EXEC], rounds) < bench_median(v[K_REF][F_EXEC], rounds)
            ? K_REF_JIT
            : K_REF;
    for (int f = 0; f < F_N; f++)
        for (int i = 0; i < rounds; i++)
            v[K_BASE][f][i] =
                pg && !jit ? (v[K_REF_JIT][f][i] + v[K_REF][f][i]) / 2 : v[best][f][i];
    return !pg || !jit ? (pg ? "mean of JIT on and off (JIT compiled nothing)" : "reference")
           : best == K_REF_JIT ? "JIT on"
                               : "JIT off";
}

json_t *measure_status(const bench_cfg *cfg, const bench_db *db, bool summary, char *err)
{
    static double v[K_N + 1][F_N][MAX_ROUNDS];
    ctx c;
    int rc = open_ctx(&c, cfg, db, err);
    bool pg = db->backend == PB_BACKEND_PG;
    int kinds[K_N], n_kinds = 0;
    for (int k = 0; k < K_N; k++)
        if (pg || k == K_REF || k == K_LATER)
            kinds[n_kinds++] = k;
    /* One round to warm up, then measured rounds while the cell's budget lasts. */
    int rounds = -1;
    double start = 0;
    while (rc == 0 && rounds < cfg->rounds && rounds < MAX_ROUNDS) {
        if (rounds == 0)
            start = bench_now_ms();
        else if (rounds >= 3 && bench_now_ms() - start > cfg->cell_budget_ms)
            break;
        for (int i = 0; i < n_kinds && rc == 0; i++) {
            int k = kinds[(i + (rounds < 0 ? 0 : rounds)) % n_kinds];
            double f[F_N];
            rc = run_one(&c, k, f);
            for (int j = 0; j < F_N && rounds >= 0; j++)
                v[k][j][rounds] = f[j];
        }
        rounds++;
    }
    close_ctx(&c);
    if (rc != 0)
        return NULL;
    json_t *out = json_pack("{s:b, s:i}", "summary", summary, "rounds", rounds);
    json_object_set_new(out, "baseline", json_string(baseline(v, pg, rounds)));
    json_object_set_new(out, "reference", medians(v, K_BASE, rounds));
    for (int i = 0; i < n_kinds; i++)
        json_object_set_new(out, kind_names[kinds[i]], medians(v, kinds[i], rounds));
    for (int i = 0; i < n_kinds; i++) {
        int k = kinds[i];
        if (k < K_FIRST || k == K_REF_FRESH)
            continue;
        char key[64];
        (void)snprintf(key, sizeof(key), "%s_over_reference", kind_names[k] + 5);
        json_t *r = json_pack("{s:f}", "wall", ratio(v, k, F_WALL, rounds));
        if (pg)
            json_object_set_new(r, "exec", json_real(ratio(v, k, F_EXEC, rounds)));
        json_object_set_new(out, key, r);
    }
    if (pg) { /* both sides in a fresh session */
        double r[MAX_ROUNDS];
        for (int i = 0; i < rounds; i++)
            r[i] = v[K_FIRST][F_EXEC][i] / v[K_REF_FRESH][F_EXEC][i];
        json_object_set_new(out, "first_pass_over_fresh_reference",
                            json_pack("{s:f}", "exec", bench_median(r, rounds)));
    }
    return out;
}

static json_t *pass_json(pb_store *s, const pb_report *r)
{
    pb_status_info info;
    pb_store_status_info(s, &info);
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:b}", "organizations", (json_int_t)r->organizations, "statements",
        (json_int_t)r->statements, "round_trips", (json_int_t)r->round_trips, "added",
        (json_int_t)(r->memberships_added + r->groups_created + r->group_memberships_added),
        "summary_used", info.summary_used);
}

json_t *measure_passes(const bench_cfg *cfg, const bench_db *db, char *err)
{
    ctx c = {.db = db, .err = err};
    pb_target_init_default(&c.t);
    pb_store *s = NULL;
    double before[3] = {0}, after[3] = {0};
    bool pg = db->backend == PB_BACKEND_PG;
    if (pg)
        c.admin = PQconnectdb(cfg->pg);
    json_t *out = json_object();
    int rc = (pg ? server_totals(&c, before) : 0) || db_store(db, &s, true, err);
    for (int i = 0; i < 2 && rc == 0; i++) {
        pb_report r;
        pb_report_init(&r);
        pb_err e;
        if ((rc = pb_reconcile(s, &c.t, NULL, &r, &e)) != 0)
            (void)snprintf(err, BENCH_ERR, "pass: %.400s", e.msg);
        json_object_set_new(out, i == 0 ? "first" : "second", pass_json(s, &r));
        pb_report_fini(&r);
    }
    if (rc == 0 && pg && (rc = server_totals(&c, after)) == 0)
        json_object_set_new(out, "jit_functions", json_real(after[2] - before[2]));
    pb_store_free(&s);
    PQfinish(c.admin);
    if (rc != 0)
        json_decref(out);
    return rc == 0 ? out : NULL;
}

json_t *measure_cli(const bench_cfg *cfg, const bench_db *db, const char *const *args)
{
    const char *argv[16] = {cfg->prebuilds, "--db", db->url};
    size_t n = 3;
    char joined[256] = "";
    for (size_t i = 0; args[i] != NULL && n < 15; i++) {
        argv[n++] = args[i];
        (void)snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s%s",
                       i ? " " : "", args[i]);
    }
    argv[n] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        return json_pack("{s:s}", "failed", "pipe");
    double t0 = bench_now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        (void)dup2(null, 0);
        (void)dup2(fds[1], 1);
        (void)dup2(null, 2); /* one log line per added row */
        close(fds[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char buf[8192];
    size_t len = 0;
    ssize_t got;
    while ((got = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)got;
    buf[len] = '\0';
    close(fds[0]);
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    (void)wait4(pid, &st, 0, &ru);
    json_t *out = json_pack("{s:s, s:i, s:I, s:f}", "args", joined, "exit",
                            WIFEXITED(st) ? WEXITSTATUS(st) : -1, "maxrss_kb",
                            (json_int_t)ru.ru_maxrss, "wall_ms", bench_now_ms() - t0);
    json_t *report = buf[0] == '{' ? json_loads(buf, 0, NULL) : NULL;
    if (report != NULL)
        json_object_set_new(out, "report", report);
    return out;
}

static long vm_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    (void)snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f != NULL)
        fclose(f);
    return kb;
}

json_t *measure_soak(const bench_cfg *c, const bench_db *db, long passes)
{
    const char *argv[] = {c->prebuilds, "--db", db->url,          "--log-level", "debug", "run",
                          "--interval", "1ms",  "--metrics-addr", "off",         NULL};
    int fds[2];
    if (pipe(fds) != 0)
        return json_pack("{s:s}", "failed", "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        (void)dup2(null, 0);
        (void)dup2(null, 1);
        (void)dup2(fds[1], 2);
        close(fds[0]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char buf[65536];
    size_t len = 0;
    long seen = 0, early_kb = -1, end_kb = -1;
    double t0 = bench_now_ms();
    ssize_t got;
    while (seen < passes && bench_now_ms() - t0 < 600e3 &&
           (got = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0) {
        len += (size_t)got;
        buf[len] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            seen += strstr(line, "pass converged") != NULL;
            if (seen == passes / 10 && early_kb < 0)
                early_kb = vm_hwm_kb(pid);
            line = nl + 1;
        }
        len -= (size_t)(line - buf);
        memmove(buf, line, len);
    }
    end_kb = vm_hwm_kb(pid);
    (void)kill(pid, SIGTERM);
    while (read(fds[0], buf, sizeof(buf)) > 0) {
    }
    close(fds[0]);
    int st = 0;
    (void)waitpid(pid, &st, 0);
    return json_pack("{s:I, s:I, s:I, s:f, s:i}", "passes", (json_int_t)seen, "hwm_kb_early",
                     (json_int_t)early_kb, "hwm_kb_end", (json_int_t)end_kb, "seconds",
                     (bench_now_ms() - t0) / 1e3, "exit", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}
