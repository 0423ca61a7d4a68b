/* Race stress: several reconciler processes run passes on one database while a chaos
 * process keeps removing memberships, group memberships and groups and adding new
 * organizations with presets. Afterwards every pass must have succeeded, no row may be
 * duplicated, and one final pass must find nothing to do. Small in `make test`, large
 * in `make stress`. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "../summary_check.h"
#include "prebuilds/prebuilds.h"

typedef struct opts {
    const char *db;
    int reconcilers;
    double seconds;
    int64_t orgs;
} opts;

static double now_s(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pb_store *open_store(const char *db, unsigned flags)
{
    pb_dburl u;
    pb_err err;
    pb_store *s = NULL;
    if (pb_dburl_parse(db, &u, &err) != 0 || pb_store_open(&u, flags, &s, &err) != 0) {
        (void)fprintf(stderr, "stress: open: %s\n", err.msg);
        exit(2);
    }
    pb_dburl_fini(&u);
    return s;
}

/* One reconciler: passes until the deadline; reports "passes failures" on fd. */
static void reconciler(const opts *o, double deadline, int fd)
{
    pb_store *s = open_store(o->db, 0);
    pb_target t;
    pb_target_init_default(&t);
    long passes = 0, failures = 0;
    while (now_s() < deadline) {
        pb_report r;
        pb_err err;
        pb_report_init(&r);
        pb_reconcile_opts ro = {.max_attempts = 5};
        if (pb_reconcile(s, &t, &ro, &r, &err) != 0) {
            failures++;
            (void)fprintf(stderr, "stress: pass failed: %s\n", err.msg);
        }
        pb_report_fini(&r);
        passes++;
    }
    pb_store_free(&s);
    char line[64];
    int n = snprintf(line, sizeof(line), "%ld %ld\n", passes, failures);
    if (write(fd, line, (size_t)n) != n)
        _exit(3);
    _exit(0);
}

/* Organization ids collected from pb_store_list, to pick chaos victims from. */
typedef struct org_ids {
    char (*ids)[PB_UUID_LEN + 1];
    size_t n, cap;
} org_ids;

static int collect_org(const pb_obj_row *row, void *arg)
{
    org_ids *c = arg;
    if (c->n == c->cap) {
        size_t cap = c->cap == 0 ? 256 : c->cap * 2;
        char(*ids)[PB_UUID_LEN + 1] = realloc(c->ids, cap * sizeof(*ids));
        if (ids == NULL)
            return PB_ENOMEM;
        c->ids = ids;
        c->cap = cap;
    }
    (void)snprintf(c->ids[c->n++], PB_UUID_LEN + 1, "%s", row->id);
    return 0;
}

/* A new organization with one template, version and preset asking for instances. */
static int add_org(pb_store *s, const pb_target *t, unsigned *seed, pb_err *err)
{
    char org[PB_UUID_LEN + 1], tpl[PB_UUID_LEN + 1], ver[PB_UUID_LEN + 1], pre[PB_UUID_LEN + 1];
    char name[64];
    int rc;
    if ((rc = pb_uuid_random(org, err)) != 0 || (rc = pb_uuid_random(tpl, err)) != 0 ||
        (rc = pb_uuid_random(ver, err)) != 0 || (rc = pb_uuid_random(pre, err)) != 0)
        return rc;
    (void)snprintf(name, sizeof(name), "chaos-%d-%u", (int)getpid(), (unsigned)rand_r(seed));
    if ((rc = pb_store_create(s, PB_OBJ_ORG, org, NULL, name, -1, NULL, err)) != 0 ||
        (rc = pb_store_create(s, PB_OBJ_TEMPLATE, tpl, org, "t", -1, t->user_id, err)) != 0 ||
        (rc = pb_store_create(s, PB_OBJ_VERSION, ver, tpl, "v", -1, t->user_id, err)) != 0 ||
        (rc = pb_store_create(s, PB_OBJ_PRESET, pre, ver, "p", 1, t->user_id, err)) != 0)
        return rc;
    return 0;
}

/* The chaos writer: without pause, break something or add an organization. Its own
 * errors are counted, not fatal: it races the reconcilers too (a busy SQLite file). */
static void chaos(const opts *o, double deadline, int fd)
{
    pb_store *s = open_store(o->db, 0);
    pb_target t;
    pb_target_init_default(&t);
    unsigned seed = (unsigned)getpid();
    long actions = 0, errors = 0, added = 0, removed = 0;
    org_ids c = {0};
    while (now_s() < deadline) {
        pb_err err;
        if (actions % 50 == 0) {
            c.n = 0;
            if (pb_store_list(s, PB_OBJ_ORG, NULL, collect_org, &c, &err) != 0) {
                errors++;
                continue;
            }
        }
        actions++;
        int what = rand_r(&seed) % 10;
        if (what == 0 || c.n == 0) {
            if (add_org(s, &t, &seed, &err) != 0)
                errors++;
            else
                added++;
            continue;
        }
        const char *victim = c.ids[(size_t)rand_r(&seed) % c.n];
        pb_row_kind kind = what <= 3   ? PB_ROW_MEMBER
                           : what <= 7 ? PB_ROW_GROUP_MEMBER
                                       : PB_ROW_GROUP;
        size_t n = 0;
        if (pb_store_remove(s, &t, kind, victim, &n, &err) != 0)
            errors++;
        else
            removed += (long)n;
    }
    free(c.ids);
    pb_store_free(&s);
    char line[96];
    int len =
        snprintf(line, sizeof(line), "chaos %ld %ld %ld %ld\n", actions, errors, added, removed);
    if (write(fd, line, (size_t)len) != len)
        _exit(3);
    _exit(0);
}

/* Raw SQL on either backend, for the template chaos writers and the final checks. */
typedef struct raw_db {
    PGconn *pg;
    sqlite3 *sq;
} raw_db;

static int raw_open(raw_db *r, const char *db)
{
    pb_dburl u;
    pb_err err;
    memset(r, 0, sizeof(*r));
    if (pb_dburl_parse(db, &u, &err) != 0)
        return -1;
    int rc = 0;
    if (u.backend == PB_BACKEND_PG) {
        r->pg = PQconnectdb(u.target);
        rc = PQstatus(r->pg) == CONNECTION_OK ? 0 : -1;
    } else {
        rc = sqlite3_open_v2(u.target, &r->sq, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK ? 0 : -1;
        if (rc == 0)
            (void)sqlite3_busy_timeout(r->sq, 5000);
    }
    pb_dburl_fini(&u);
    return rc;
}

static void raw_close(raw_db *r)
{
    PQfinish(r->pg);
    sqlite3_close(r->sq);
}

/* Run `sql`; the first column of the first row, or -1 on error (0 without rows). */
static long raw_long(raw_db *r, const char *sql)
{
    long n = -1;
    if (r->pg != NULL) {
        PGresult *res = PQexec(r->pg, sql);
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_TUPLES_OK)
            n = PQntuples(res) > 0 ? strtol(PQgetvalue(res, 0, 0), NULL, 10) : 0;
        else if (st == PGRES_COMMAND_OK)
            n = 0;
        PQclear(res);
    } else {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(r->sq, sql, -1, &st, NULL) == SQLITE_OK) {
            int rc = sqlite3_step(st);
            if (rc == SQLITE_ROW)
                n = sqlite3_column_int(st, 0);
            else if (rc == SQLITE_DONE)
                n = 0;
        }
        sqlite3_finalize(st);
    }
    return n;
}

/* The template chaos writer: keeps changing which templates have a configured preset,
 * the way a platform and its admins do: presets configured and unconfigured, deleted and
 * added, versions attached to another template or deleted. Every change goes through
 * the summary's triggers, racing the other writer's. Reports "tchaos actions errors". */
static void template_chaos(const opts *o, double deadline, int fd)
{
    raw_db r;
    if (raw_open(&r, o->db) != 0)
        _exit(3);
    unsigned seed = (unsigned)getpid();
    long actions = 0, errors = 0;
    while (now_s() < deadline) {
        /* Out of 10: 4 toggles, 2 deletes, 2 additions, 1 move, 1 version deleted. */
        int pick = rand_r(&seed) % 10;
        char sql[512];
        if (pick < 4) {
            (void)snprintf(sql, sizeof(sql), "%s",
                           "UPDATE template_version_presets SET desired_instances = CASE WHEN"
                           " desired_instances IS NULL THEN 1 ELSE NULL END WHERE id = (SELECT id"
                           " FROM template_version_presets ORDER BY random() LIMIT 1)");
        } else if (pick < 6) {
            (void)snprintf(sql, sizeof(sql), "%s",
                           "DELETE FROM template_version_presets WHERE id = (SELECT id FROM"
                           " template_version_presets WHERE desired_instances IS NOT NULL"
                           " ORDER BY random() LIMIT 1)");
        } else if (pick < 8) {
            pb_err err;
            char uuid[PB_UUID_LEN + 1];
            if (pb_uuid_random(uuid, &err) != 0)
                _exit(3);
            (void)snprintf(sql, sizeof(sql),
                           "INSERT INTO template_version_presets (id, template_version_id, name,"
                           " desired_instances) SELECT '%s', id, 'chaos-%u', 2 FROM"
                           " template_versions ORDER BY random() LIMIT 1",
                           uuid, (unsigned)rand_r(&seed));
        } else if (pick < 9) {
            (void)snprintf(sql, sizeof(sql),
                           "UPDATE template_versions SET template_id = (SELECT id FROM templates"
                           " ORDER BY random() LIMIT 1), name = 'moved-%u' WHERE id = (SELECT id"
                           " FROM template_versions ORDER BY random() LIMIT 1)",
                           (unsigned)rand_r(&seed));
        } else {
            (void)snprintf(sql, sizeof(sql), "%s",
                           "DELETE FROM template_versions WHERE id = (SELECT id FROM"
                           " template_versions ORDER BY random() LIMIT 1)");
        }
        actions++;
        if (raw_long(&r, sql) < 0)
            errors++; /* a deadlock with the other writer or a busy file: counted */
    }
    raw_close(&r);
    char line[96];
    int len = snprintf(line, sizeof(line), "tchaos %ld %ld\n", actions, errors);
    if (write(fd, line, (size_t)len) != len)
        _exit(3);
    _exit(0);
}

/* Templates on which the summary and a recount from the tables disagree, either way. On
 * PostgreSQL: the summary as the status statement reads it (with the changes log not yet
 * folded in laid over it), and the stored summary too (the final passes folded the log). */
static long summary_mismatches(const char *db)
{
    raw_db r;
    if (raw_open(&r, db) != 0)
        return -1;
    long n = raw_long(&r, PB_TEST_SUMMARY_MISMATCHES_SQL);
    if (r.pg != NULL)
        n += raw_long(&r, PB_TEST_EFFECTIVE_MISMATCHES_SQL);
    raw_close(&r);
    return n;
}

/* Rows that appear more than once, counted with raw SQL around the library. */
static long duplicates_in(const char *db)
{
    static const char *const sql =
        "SELECT (SELECT count(*) FROM (SELECT organization_id, user_id FROM organization_members"
        " GROUP BY 1, 2 HAVING count(*) > 1) a) + (SELECT count(*) FROM (SELECT organization_id,"
        " name FROM groups GROUP BY 1, 2 HAVING count(*) > 1) b) + (SELECT count(*) FROM"
        " (SELECT user_id, group_id FROM group_members GROUP BY 1, 2 HAVING count(*) > 1) c)";
    pb_dburl u;
    pb_err err;
    if (pb_dburl_parse(db, &u, &err) != 0)
        return -1;
    long n = -1;
    if (u.backend == PB_BACKEND_PG) {
        PGconn *c = PQconnectdb(u.target);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
    } else {
        sqlite3 *db3 = NULL;
        sqlite3_stmt *st = NULL;
        if (sqlite3_open_v2(u.target, &db3, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db3, sql, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db3);
    }
    pb_dburl_fini(&u);
    return n;
}

static void usage(void)
{
    (void)fprintf(stderr, "usage: stress --db URL [--reconcilers N] [--seconds S] [--orgs N]\n");
    exit(2);
}

#define TEMPLATE_CHAOS 2 /* writers racing each other through the summary's triggers */

int main(int argc, char **argv)
{
    opts o = {.reconcilers = 8, .seconds = 3, .orgs = 200};
    static const struct option lo[] = {{"db", required_argument, NULL, 'd'},
                                       {"reconcilers", required_argument, NULL, 'r'},
                                       {"seconds", required_argument, NULL, 's'},
                                       {"orgs", required_argument, NULL, 'o'},
                                       {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end = NULL;
        if (ch == 'd')
            o.db = optarg;
        else if (ch == 'r')
            o.reconcilers = (int)strtol(optarg, &end, 10);
        else if (ch == 's')
            o.seconds = strtod(optarg, &end);
        else if (ch == 'o')
            o.orgs = strtoll(optarg, &end, 10);
        else
            usage();
        if (end != NULL && *end != '\0')
            usage();
    }
    if (o.db == NULL || o.reconcilers < 1 || o.reconcilers > 64 || o.seconds <= 0 || o.orgs < 1)
        usage();

    /* A schema, the user, and an entirely drifted data set. */
    pb_store *s = open_store(o.db, PB_OPEN_CREATE);
    pb_target t;
    pb_target_init_default(&t);
    pb_err err;
    pb_init_opts io = {.create_user = true};
    pb_init_result ir;
    pb_seed_opts so = {.orgs = o.orgs,
                       .templates_per_org = 2,
                       .versions_per_template = 2,
                       .presets_per_version = 2,
                       .prebuilds_fraction = 0.8,
                       .drift_fraction = 1.0,
                       .seed = (uint32_t)getpid()};
    pb_seed_result sr;
    if (pb_store_init(s, &t, &io, &ir, &err) != 0 || pb_store_seed(s, &t, &so, &sr, &err) != 0) {
        (void)fprintf(stderr, "stress: set up: %s\n", err.msg);
        return 2;
    }
    pb_store_free(&s);

    int fds[2];
    if (pipe(fds) != 0)
        return 2;
    double start = now_s();
    double chaos_end = start + o.seconds;
    double end = chaos_end + 1.0; /* the reconcilers get a moment after the chaos */
    for (int i = 0; i < o.reconcilers; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            reconciler(&o, end, fds[1]);
        }
        if (pid < 0)
            return 2;
    }
    pid_t cp = fork();
    if (cp == 0) {
        close(fds[0]);
        chaos(&o, chaos_end, fds[1]);
    }
    for (int i = 0; i < TEMPLATE_CHAOS; i++) {
        pid_t tp = fork();
        if (tp == 0) {
            close(fds[0]);
            template_chaos(&o, chaos_end, fds[1]);
        }
        if (tp < 0)
            return 2;
    }
    close(fds[1]);
    int failed_children = 0;
    for (int i = 0; i < o.reconcilers + 1 + TEMPLATE_CHAOS; i++) {
        int status = 0;
        if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed_children++;
    }
    long passes = 0, pass_failures = 0, chaos_actions = 0, chaos_errors = 0, chaos_added = 0,
         chaos_removed = 0, tchaos_actions = 0, tchaos_errors = 0;
    FILE *in = fdopen(fds[0], "r");
    char line[128];
    while (in != NULL && fgets(line, sizeof(line), in) != NULL) {
        long a, b, c, d;
        if (sscanf(line, "tchaos %ld %ld", &a, &b) == 2) {
            tchaos_actions += a;
            tchaos_errors += b;
        } else if (sscanf(line, "chaos %ld %ld %ld %ld", &a, &b, &c, &d) == 4) {
            chaos_actions = a, chaos_errors = b, chaos_added = c, chaos_removed = d;
        } else if (sscanf(line, "%ld %ld", &a, &b) == 2) {
            passes += a;
            pass_failures += b;
        }
    }
    if (in != NULL)
        fclose(in);

    /* The final pass must find nothing to do. */
    s = open_store(o.db, 0);
    pb_report r;
    pb_report_init(&r);
    int rc = pb_reconcile(s, &t, NULL, &r, &err);
    size_t final_added = r.memberships_added + r.groups_created + r.group_memberships_added;
    size_t final_orgs = r.organizations;
    pb_report_fini(&r);
    /* The session's first pass read the tables; this one reads the summary. */
    pb_report_init(&r);
    int rc2 = pb_reconcile(s, &t, NULL, &r, &err);
    size_t summary_orgs = r.organizations;
    pb_report_fini(&r);
    pb_store_free(&s);
    long dups = duplicates_in(o.db);
    long mismatches = summary_mismatches(o.db);

    (void)printf("stress: %d reconcilers, %.1f s: %ld passes, %ld failed; chaos: %ld actions "
                 "(%ld organizations added, %ld rows removed, %ld own errors); final pass: %zu "
                 "organizations, %zu rows added; duplicate rows: %ld\n",
                 o.reconcilers, o.seconds, passes, pass_failures, chaos_actions, chaos_added,
                 chaos_removed, chaos_errors, final_orgs, final_added, dups);
    (void)printf("stress: template chaos: %ld changes to presets and versions (%ld refused: "
                 "deadlock, busy or constraint); summary: %ld templates disagree with the "
                 "tables; organizations from the tables %zu, from the summary %zu\n",
                 tchaos_actions, tchaos_errors, mismatches, final_orgs, summary_orgs);
    int passed = 0, failed = 0;
#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            (void)printf("FAILED: %s\n", what);                                                    \
        }                                                                                          \
    } while (0)
    CHECK(failed_children == 0, "every child exited cleanly");
    CHECK(passes > o.reconcilers, "the reconcilers ran passes");
    CHECK(pass_failures == 0, "every pass succeeded");
    CHECK(chaos_actions > 0, "the chaos writer acted");
    CHECK(rc == 0, "the final pass succeeded");
    CHECK(final_added == 0, "the final pass found nothing to do");
    CHECK(dups == 0, "no duplicate rows");
    CHECK(tchaos_actions > tchaos_errors, "the template chaos writers changed templates");
    CHECK(mismatches == 0, "the summary agrees with the tables");
    CHECK(rc2 == 0 && summary_orgs == final_orgs, "a pass reading the summary agrees");
    (void)printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
