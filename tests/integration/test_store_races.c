/* Integration tests of racing writers, on SQLite and PostgreSQL (PB_TEST_BACKEND). Races
 * are made for real, with a second connection or threads, and results are read back with
 * raw SQL: a second reconciler that planned the same rows, a group or a deletion that
 * lands between our read and our write, several reconcilers at once, a transaction still
 * open on the group we insert, and a connection that dies between passes. */
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

#include "tstore.h"

/* ---- races ---- */

typedef struct planned {
    pb_plan plan;
    const char **m, **g, **gm;
    size_t nm, ng, ngm;
} planned;

static int to_plan(const pb_status_row *row, void *arg)
{
    return pb_plan_add(arg, row);
}

static void plan_now(pb_store *s, planned *p)
{
    pb_target tg = target();
    pb_err err;
    memset(p, 0, sizeof(*p));
    pb_plan_init(&p->plan);
    assert_int_equal(pb_store_status(s, &tg, NULL, 0, to_plan, &p->plan, &err), 0);
    assert_int_equal(pb_plan_org_ids(&p->plan, PB_ROW_MEMBER, &p->m, &p->nm), 0);
    assert_int_equal(pb_plan_org_ids(&p->plan, PB_ROW_GROUP, &p->g, &p->ng), 0);
    assert_int_equal(pb_plan_org_ids(&p->plan, PB_ROW_GROUP_MEMBER, &p->gm, &p->ngm), 0);
}

static int apply_planned(pb_store *s, planned *p, pb_write_result *res)
{
    pb_target tg = target();
    pb_err err;
    pb_write_set w = {p->m, p->nm, p->g, p->ng, p->gm, p->ngm};
    int rc = pb_store_apply(s, &tg, &w, NULL, NULL, res, &err);
    if (rc != 0)
        print_message("apply: %s\n", err.msg);
    return rc;
}

static void planned_fini(planned *p)
{
    pb__free(p->m);
    pb__free(p->g);
    pb__free(p->gm);
    pb_plan_fini(&p->plan);
}

/* Two reconcilers read the same drift; the first writes; the second writes what it had
 * planned into rows that now exist. It succeeds, adds nothing, duplicates nothing. */
static void test_race_between_read_and_write(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    pb_store *a = f->s, *b = tdb_store(t);
    seed(a, 40, 1.0, 1.0);
    planned pa, pbp;
    plan_now(a, &pa);
    plan_now(b, &pbp);
    assert_int_equal(pa.plan.n_orgs, 40);
    pb_write_result ra, rb;
    assert_int_equal(apply_planned(a, &pa, &ra), 0);
    assert_int_equal(apply_planned(b, &pbp, &rb), 0);
    assert_int_equal(ra.memberships_added, 20);
    assert_int_equal(ra.groups_created, 20);
    assert_int_equal(ra.group_memberships_added, 30);
    assert_int_equal(rb.memberships_added + rb.groups_created + rb.group_memberships_added, 0);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM groups"), 40);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM group_members"), 40);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM organization_members"), 40);
    planned_fini(&pa);
    planned_fini(&pbp);
    pb_store_free(&b);
}

/* Another writer creates the group after we planned to create it: our group insert is
 * a conflict, and the membership goes into *their* group. */
static void test_group_created_by_someone_else(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    char org[PB_UUID_LEN + 1], gid[PB_UUID_LEN + 1];
    make_org(f->s, "acme", 1, org, NULL);
    planned p;
    plan_now(f->s, &p);
    assert_int_equal(p.ng, 1);
    add_group(t, org, gid, 3, "theirs");
    pb_write_result res;
    assert_int_equal(apply_planned(f->s, &p, &res), 0);
    assert_int_equal(res.groups_created, 0);
    assert_int_equal(res.group_memberships_added, 1);
    assert_int_equal(
        tdb_long(t, "SELECT count(*) FROM group_members WHERE group_id = '%s' AND user_id = '%s'",
                 gid, UID),
        1);
    assert_converged(t, org);
    planned_fini(&p);
}

/* An organization deleted between our read and our write is skipped; the others are
 * repaired in the same pass. */
static void test_org_deleted_meanwhile(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    char a[PB_UUID_LEN + 1], b[PB_UUID_LEN + 1], c[PB_UUID_LEN + 1];
    make_org(f->s, "a", 1, a, NULL);
    make_org(f->s, "b", 1, b, NULL);
    make_org(f->s, "c", 1, c, NULL);
    planned p;
    plan_now(f->s, &p);
    assert_int_equal(p.nm, 3);
    tdb_exec(t, "DELETE FROM organizations WHERE id = '%s'", a);
    tdb_exec(t, "UPDATE organizations SET deleted = true WHERE id = '%s'", b);
    pb_write_result res;
    assert_int_equal(apply_planned(f->s, &p, &res), 0);
    assert_int_equal(res.memberships_added, 1);
    assert_int_equal(res.groups_created, 1);
    assert_int_equal(res.group_memberships_added, 1);
    assert_converged(t, c);
    assert_int_equal(n_members(t, b), 0);
    assert_int_equal(n_groups(t, b), 0);
    planned_fini(&p);
}

/* An organization soft-deleted between our read and our write, whose group is there:
 * the membership is skipped, and the group membership still goes into the group that
 * exists (the writes join the group, not the organization). */
static void test_org_deleted_meanwhile_keeps_its_group(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    char org[PB_UUID_LEN + 1], gid[PB_UUID_LEN + 1];
    make_org(f->s, "acme", 1, org, NULL);
    add_group(t, org, gid, 0, "theirs");
    planned p;
    plan_now(f->s, &p);
    assert_int_equal(p.nm, 1);
    assert_int_equal(p.ng, 0);
    assert_int_equal(p.ngm, 1);
    tdb_exec(t, "UPDATE organizations SET deleted = true WHERE id = '%s'", org);
    pb_write_result res;
    assert_int_equal(apply_planned(f->s, &p, &res), 0);
    assert_int_equal(res.memberships_added, 0);
    assert_int_equal(res.groups_created, 0);
    assert_int_equal(res.group_memberships_added, 1);
    assert_int_equal(n_members(t, org), 0);
    assert_int_equal(n_in_group(t, org), 1);
    planned_fini(&p);
}

typedef struct racer {
    const char *url;
    pb_report report;
    int rc;
    pthread_barrier_t *start;
} racer;

static void *race_thread(void *arg)
{
    racer *r = arg;
    pb_dburl u;
    pb_err err;
    pb_store *s = NULL;
    r->rc = pb_dburl_parse(r->url, &u, &err);
    if (r->rc == 0)
        r->rc = pb_store_open(&u, 0, &s, &err);
    pb_dburl_fini(&u);
    if (r->start != NULL)
        pthread_barrier_wait(r->start);
    if (r->rc == 0) {
        pb_target tg = target();
        pb_report_init(&r->report);
        r->rc = pb_reconcile(s, &tg, NULL, &r->report, &err);
        if (r->rc != 0)
            fprintf(stderr, "racer: %s\n", err.msg);
    }
    pb_store_free(&s);
    return NULL;
}

/* Several reconcilers at once on the same drift, over several rounds. */
static void test_concurrent_reconcilers(void **state)
{
    enum { RACERS = 4, ROUNDS = 5, ORGS = 200 };
    fx *f = *state;
    tdb *t = &f->t;
    seed(f->s, ORGS, 1.0, 0.0);
    pb_store_free(&f->s);
    for (int round = 0; round < ROUNDS; round++) {
        /* drift everything again */
        tdb_exec(t, "DELETE FROM group_members");
        tdb_exec(t, "DELETE FROM groups");
        tdb_exec(t, "DELETE FROM organization_members");
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, RACERS);
        racer r[RACERS];
        pthread_t th[RACERS];
        for (int i = 0; i < RACERS; i++) {
            memset(&r[i], 0, sizeof(r[i]));
            r[i].url = t->url;
            r[i].start = &start;
            assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
        }
        size_t members = 0, groups = 0, gms = 0;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(th[i], NULL);
            assert_int_equal(r[i].rc, 0);
            members += r[i].report.memberships_added;
            groups += r[i].report.groups_created;
            gms += r[i].report.group_memberships_added;
            pb_report_fini(&r[i].report);
        }
        pthread_barrier_destroy(&start);
        /* every row was added exactly once, by someone */
        assert_int_equal(members, ORGS);
        assert_int_equal(groups, ORGS);
        assert_int_equal(gms, ORGS);
        assert_int_equal(tdb_long(t, "SELECT count(*) FROM groups"), ORGS);
        assert_int_equal(tdb_long(t, "SELECT count(*) FROM group_members"), ORGS);
        assert_int_equal(tdb_long(t, "SELECT count(*) FROM organization_members"), ORGS);
    }
}

/* PostgreSQL: the group is inserted by a transaction that is still open when we write.
 * Our insert waits for it, then uses its group. */
static void test_pg_uncommitted_group(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    char org[PB_UUID_LEN + 1], gid[PB_UUID_LEN + 1];
    make_org(f->s, "acme", 1, org, NULL);
    add_member(t, org);
    pb_store_free(&f->s);
    pb_err err;
    assert_int_equal(pb_uuid_random(gid, &err), 0);
    tdb_exec(t, "BEGIN");
    tdb_exec(t,
             "INSERT INTO groups (id, name, organization_id, display_name) VALUES ('%s', '%s',"
             " '%s', 'theirs')",
             gid, GROUP, org);
    racer b = {.url = t->url};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, race_thread, &b), 0);
    /* wait until the reconciler is blocked on our uncommitted row */
    long pid = 0;
    long waiting = tdb_pg_lock_waiters(t, &pid);
    assert_int_equal(waiting, 1);
    tdb_exec(t, "COMMIT");
    pthread_join(th, NULL);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.report.groups_created, 0);
    assert_int_equal(b.report.group_memberships_added, 1);
    pb_report_fini(&b.report);
    assert_int_equal(
        tdb_long(t, "SELECT count(*) FROM group_members WHERE group_id = '%s' AND user_id = '%s'",
                 gid, UID),
        1);
    assert_converged(t, org);
}

/* ---- PostgreSQL: the connection dies between passes ---- */

static void test_pg_reconnects(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    char org[PB_UUID_LEN + 1];
    make_org(f->s, "acme", 1, org, NULL);
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0);
    pb_report_fini(&r);
    tdb_exec(t,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
             " AND pid <> pg_backend_pid()",
             t->name);
    /* until the server has ended the store's session (not a fixed sleep) */
    long others = 1;
    for (int i = 0; i < 500 && others > 0; i++) {
        others = tdb_long(t,
                          "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
                          " AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
                          t->name);
        if (others > 0)
            usleep(10000);
    }
    assert_int_equal(others, 0);
    tdb_exec(t, "DELETE FROM organization_members");
    /* the first attempt finds the connection dead; the retry reconnects and prepares
     * its statements again */
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(r.memberships_added, 1);
    pb_report_fini(&r);
    assert_converged(t, org);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_race_between_read_and_write, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_group_created_by_someone_else, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_org_deleted_meanwhile, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_org_deleted_meanwhile_keeps_its_group, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_reconcilers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_uncommitted_group, fx_setup_pg, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_reconnects, fx_setup_pg, fx_teardown),
    };
    const char *group = tdb_backend() == PB_BACKEND_PG ? "races-postgresql" : "races-sqlite";
    return fx_exit(cmocka_run_group_tests_name(group, tests, fx_group_setup, fx_group_teardown));
}
