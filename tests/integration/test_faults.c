/* Fault injection: every allocation of a pass made to fail in turn, lock and statement
 * timeouts, and the server killing our connection in the middle of a pass. Each must
 * end in a clean error or a successful retry, with the database either untouched or
 * converged: never half written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "tdb.h"

#define ORGS 12

static void drift_all(tdb *t)
{
    tdb_exec(t, "DELETE FROM group_members");
    tdb_exec(t, "DELETE FROM groups");
    tdb_exec(t, "DELETE FROM organization_members");
}

static long total_rows(tdb *t)
{
    return tdb_long(t, "SELECT (SELECT count(*) FROM organization_members) +"
                       " (SELECT count(*) FROM groups) + (SELECT count(*) FROM group_members)");
}

static void seed(pb_store *s)
{
    pb_target tg;
    pb_target_init_default(&tg);
    pb_seed_opts o = {.orgs = ORGS,
                      .templates_per_org = 1,
                      .versions_per_template = 1,
                      .presets_per_version = 1,
                      .prebuilds_fraction = 1.0,
                      .drift_fraction = 1.0,
                      .seed = 3};
    pb_seed_result r;
    pb_err err;
    if (pb_store_seed(s, &tg, &o, &r, &err) != 0)
        fail_msg("seed: %s", err.msg);
}

/* Every organization qualifies and misses all three rows. */
static void seed_drifted(tdb *t, pb_store *s)
{
    seed(s);
    drift_all(t);
}

static void count_added(pb_row_kind kind, const char *org_id, const char *org_name, void *arg)
{
    (void)kind;
    (void)org_id;
    (void)org_name;
    (*(size_t *)arg)++;
}

/* Fail allocation 1, 2, 3, ... of a drifted pass until a pass completes without reaching
 * the failing allocation. Every failed pass leaves nothing written (the writes are one
 * transaction) or everything written; the report and the error say what happened. */
static void test_out_of_memory_at_every_allocation(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    seed(f->s);
    pb_target tg;
    pb_target_init_default(&tg);
    unsigned long n;
    unsigned long failures = 0;
    for (n = 1; n < 10000; n++) {
        drift_all(t);
        size_t added_calls = 0;
        pb_reconcile_opts o = {.added = count_added, .added_arg = &added_calls};
        pb_report r;
        pb_report_init(&r);
        pb_err err;
        pb__alloc_fail_at(n);
        int rc = pb_reconcile(f->s, &tg, &o, &r, &err);
        bool injected = pb__alloc_failed();
        pb__alloc_fail_at(0);
        long rows = total_rows(t);
        if (rc == 0) {
            /* converged, and told about every row */
            assert_int_equal(rows, 3 * ORGS);
            assert_int_equal(r.memberships_added + r.groups_created + r.group_memberships_added,
                             3 * ORGS);
        } else {
            failures++;
            assert_true(injected);
            assert_int_equal(rc, PB_ENOMEM);
            assert_true(err.msg[0] != '\0');
            assert_true(rows == 0 || rows == 3 * ORGS);
            assert_int_equal(r.memberships_added + r.groups_created + r.group_memberships_added, 0);
        }
        pb_report_fini(&r);
        if (!injected)
            break;
    }
    print_message("%lu allocations in a drifted pass; %lu injected failures ended cleanly\n", n - 1,
                  failures);
    assert_true(n > 1);
    assert_true(n < 10000);
}

static pb_store *store_with(tdb *t, const char *extra)
{
    char url[1400];
    (void)snprintf(url, sizeof(url), "%s %s", t->url, extra);
    pb_dburl u;
    pb_err err;
    pb_store *s = NULL;
    assert_int_equal(pb_dburl_parse(url, &u, &err), 0);
    if (pb_store_open(&u, 0, &s, &err) != 0)
        fail_msg("open: %s", err.msg);
    pb_dburl_fini(&u);
    return s;
}

/* A table locked by someone else: the pass gives up after lock_timeout instead of
 * hanging, writes nothing, and succeeds once the lock is gone. */
static void test_pg_lock_timeout(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    seed_drifted(t, f->s);
    pb_store_free(&f->s);
    f->s = store_with(t, "options='-c lock_timeout=200'");
    tdb_exec(t, "BEGIN");
    tdb_exec(t, "LOCK TABLE group_members IN SHARE MODE"); /* reads pass, inserts wait */
    pb_target tg;
    pb_target_init_default(&tg);
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    int rc = pb_reconcile(f->s, &tg, NULL, &r, &err);
    assert_int_equal(rc, PB_ERETRY);
    assert_non_null(strstr(err.msg, "lock timeout"));
    assert_int_equal(r.attempts, 3);
    pb_report_fini(&r);
    tdb_exec(t, "COMMIT");
    assert_int_equal(total_rows(t), 0);
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(f->s, &tg, NULL, &r, &err), 0);
    assert_int_equal(r.memberships_added, ORGS);
    pb_report_fini(&r);
}

static void test_pg_statement_timeout(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    seed_drifted(t, f->s);
    pb_store_free(&f->s);
    f->s = store_with(t, "options='-c statement_timeout=200'");
    tdb_exec(t, "BEGIN");
    tdb_exec(t, "LOCK TABLE groups IN ACCESS EXCLUSIVE MODE"); /* even the read waits */
    pb_target tg;
    pb_target_init_default(&tg);
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    int rc = pb_reconcile(f->s, &tg, NULL, &r, &err);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err.msg, "statement timeout"));
    assert_string_equal(err.sqlstate, "57014");
    assert_int_equal(r.n_errors, 1);
    pb_report_fini(&r);
    tdb_exec(t, "COMMIT");
    assert_int_equal(total_rows(t), 0);
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(f->s, &tg, NULL, &r, &err), 0);
    pb_report_fini(&r);
    assert_int_equal(total_rows(t), 3 * ORGS);
}

typedef struct bg {
    pb_store *s;
    int rc;
    pb_report r;
    pb_err err;
} bg;

static void *bg_pass(void *arg)
{
    bg *b = arg;
    pb_target tg;
    pb_target_init_default(&tg);
    pb_report_init(&b->r);
    b->rc = pb_reconcile(b->s, &tg, NULL, &b->r, &b->err);
    return NULL;
}

/* The server kills our backend while the pass waits inside its write transaction. The
 * half-done transaction is rolled back by the server; the retry reconnects, prepares its
 * statements again and converges. */
static void test_pg_connection_killed_mid_pass(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    bg b = {.s = f->s};
    seed_drifted(t, b.s);
    tdb_exec(t, "BEGIN");
    tdb_exec(t, "LOCK TABLE group_members IN SHARE MODE");
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bg_pass, &b), 0);
    long pid = 0;
    (void)tdb_pg_lock_waiters(t, &pid);
    assert_true(pid > 0);
    PGconn *adm = tdb_pg_admin();
    char sql[128];
    (void)snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%ld)", pid);
    PQclear(PQexec(adm, sql));
    PQfinish(adm);
    tdb_exec(t, "COMMIT");
    pthread_join(th, NULL);
    if (b.rc != 0)
        fail_msg("pass after the kill: %s", b.err.msg);
    assert_true(b.r.attempts >= 2);
    assert_int_equal(b.r.memberships_added, ORGS);
    assert_int_equal(b.r.groups_created, ORGS);
    assert_int_equal(b.r.group_memberships_added, ORGS);
    pb_report_fini(&b.r);
    assert_int_equal(total_rows(t), 3 * ORGS);
}

/* SQLite: another process holds the write lock longer than the busy timeout. */
static void test_sqlite_busy(void **state)
{
    if (tdb_backend() != PB_BACKEND_SQLITE)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    seed_drifted(t, f->s);
    tdb_exec(t, "BEGIN IMMEDIATE");
    pb_target tg;
    pb_target_init_default(&tg);
    pb_reconcile_opts o = {.max_attempts = 1};
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    int rc = pb_reconcile(f->s, &tg, &o, &r, &err);
    assert_int_equal(rc, PB_ERETRY);
    assert_true(err.retryable);
    pb_report_fini(&r);
    tdb_exec(t, "COMMIT");
    assert_int_equal(total_rows(t), 0);
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(f->s, &tg, NULL, &r, &err), 0);
    pb_report_fini(&r);
    assert_int_equal(total_rows(t), 3 * ORGS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_out_of_memory_at_every_allocation, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_lock_timeout, fx_setup_pg, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_statement_timeout, fx_setup_pg, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_connection_killed_mid_pass, fx_setup_pg,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_busy, fx_setup_sqlite, fx_teardown),
    };
    const char *group = tdb_backend() == PB_BACKEND_PG ? "faults-postgresql" : "faults-sqlite";
    return fx_exit(cmocka_run_group_tests_name(group, tests, fx_group_setup, fx_group_teardown));
}
