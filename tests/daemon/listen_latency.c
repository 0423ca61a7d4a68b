/* Latency benchmark of `prebuilds run --listen`: how long after a preset commits in a
 * brand-new organization do the membership, the group and the group membership commit?
 * It starts the daemon itself on a database it prepares, commits one new organization at
 * a time (organization, template, version, preset in one statement), and waits for a
 * bench-only trigger on group_members to NOTIFY at the daemon's commit. It prints
 * percentiles and asserts nothing about them: timing belongs in measurements, not tests.
 * Usage: listen_latency PREBUILDS_BINARY CONNINFO [ITERATIONS] */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define USER_ID "c42fdf75-3097-471c-8c33-fb52454d81c0"

static double now_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(PGconn *c, const char *what)
{
    (void)fprintf(stderr, "listen_latency: %s: %s", what, c ? PQerrorMessage(c) : "\n");
    exit(1);
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die(c, sql);
    PQclear(r);
}

static int run(const char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    (void)waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, int n, double p)
{
    int i = (int)(p / 100.0 * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        (void)fprintf(stderr, "usage: %s PREBUILDS_BINARY CONNINFO [ITERATIONS]\n", argv[0]);
        return 2;
    }
    const char *bin = argv[1];
    int n = argc > 3 ? atoi(argv[3]) : 200;
    if (n < 1)
        n = 1;
    char dbname[64], conninfo[1024];
    (void)snprintf(dbname, sizeof(dbname), "pb_latency_%d", (int)getpid());
    PGconn *admin = PQconnectdb(argv[2]);
    if (PQstatus(admin) != CONNECTION_OK)
        die(admin, "connect");
    char sql[256];
    (void)snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    exec_ok(admin, sql);
    (void)snprintf(conninfo, sizeof(conninfo), "%s dbname=%s", argv[2], dbname);

    const char *init[] = {bin, "--db", conninfo, "init", "--triggers", NULL};
    if (run(init) != 0)
        die(NULL, "prebuilds init --triggers failed");
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        die(c, "connect");
    exec_ok(c, "CREATE FUNCTION pb_bench_done() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
               " PERFORM pg_notify('pb_bench_done', g.organization_id::text) FROM groups g"
               " WHERE g.id = NEW.group_id; RETURN NULL; END $$");
    exec_ok(c, "CREATE TRIGGER pb_bench_done AFTER INSERT ON group_members FOR EACH ROW"
               " EXECUTE FUNCTION pb_bench_done()");
    exec_ok(c, "LISTEN pb_bench_done");

    pid_t daemon = fork();
    if (daemon == 0) {
        execl(bin, bin, "--db", conninfo, "--log-level", "warn", "run", "--listen", "--interval",
              "1h", "--metrics-addr", "off", (char *)NULL);
        _exit(127);
    }
    /* Ready when it holds the leader lock; then give its first full pass a moment. */
    double deadline = now_ms() + 10000;
    for (;;) {
        PGresult *r = PQexec(c, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                " AND objid = 7 AND granted");
        int held = PQresultStatus(r) == PGRES_TUPLES_OK && atoi(PQgetvalue(r, 0, 0)) > 0;
        PQclear(r);
        if (held)
            break;
        if (now_ms() > deadline)
            die(NULL, "the daemon never took the leader lock");
        (void)usleep(20000);
    }
    (void)usleep(300000);

    double *lat = calloc((size_t)n, sizeof(*lat));
    int timeouts = 0;
    for (int i = 0; i < n; i++) {
        char idx[16];
        (void)snprintf(idx, sizeof(idx), "%d", i);
        const char *params[2] = {idx, USER_ID};
        PGresult *r = PQexecParams(
            c,
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
            " SELECT id::text FROM o",
            2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            die(c, "create organization");
        char org[64];
        (void)snprintf(org, sizeof(org), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        double t0 = now_ms(); /* the preset is committed */
        bool done = false;
        while (!done) {
            double left = t0 + 10000 - now_ms();
            if (left <= 0)
                break;
            struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
            if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
                die(NULL, "poll");
            if (PQconsumeInput(c) != 1)
                die(c, "read");
            PGnotify *nt;
            while ((nt = PQnotifies(c)) != NULL) {
                if (strcmp(nt->extra, org) == 0)
                    done = true;
                PQfreemem(nt);
            }
        }
        if (!done) {
            timeouts++;
            continue;
        }
        lat[i - timeouts] = now_ms() - t0;
    }
    int got = n - timeouts;
    (void)kill(daemon, SIGTERM);
    (void)waitpid(daemon, NULL, 0);
    PQfinish(c);
    (void)snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", dbname);
    exec_ok(admin, sql);
    PQfinish(admin);
    if (got > 0) {
        qsort(lat, (size_t)got, sizeof(*lat), cmp);
        double sum = 0;
        for (int i = 0; i < got; i++)
            sum += lat[i];
        (void)printf("listen latency, preset commit -> group membership commit, %d new "
                     "organizations: mean %.1f ms, p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, "
                     "max %.1f ms\n",
                     got, sum / got, pct(lat, got, 50), pct(lat, got, 90), pct(lat, got, 99),
                     lat[got - 1]);
    }
    free(lat);
    if (timeouts > 0) {
        (void)printf("%d of %d organizations were not converged within 10 s\n", timeouts, n);
        return 1;
    }
    return 0;
}
