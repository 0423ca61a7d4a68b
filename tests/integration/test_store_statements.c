/* Integration tests of what a pass costs, on SQLite and PostgreSQL (PB_TEST_BACKEND):
 * statements and round trips as the report counts them and, on PostgreSQL, as the
 * server's pg_stat_statements counts them. A converged pass is one statement; a drifted
 * pass costs the same for 1 organization as for 1,000. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tstore.h"

/* ---- statement counts ---- */

static void test_converged_pass_is_one_statement(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    seed(f->s, 50, 0.5, 0.0);
    pb_store_free(&f->s);
    /* a new connection: the pass must not need any set-up statement either */
    f->s = tdb_store(t);
    bool pg = t->backend == PB_BACKEND_PG;
    if (pg)
        server_reset();
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.organizations, 25);
    assert_int_equal(r.statements, 1);
    assert_int_equal(r.round_trips, 1);
    pb_report_fini(&r);
    if (pg) /* the server's own count, not ours */
        assert_int_equal(server_calls(t->name), 1);
    /* and again on the same connection (prepared statement reused), once the changes the
     * setup logged are folded in */
    fold(f->s);
    if (pg)
        server_reset();
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.statements, 1);
    pb_report_fini(&r);
    if (pg)
        assert_int_equal(server_calls(t->name), 1);
}

/* One drifted pass on the fixture's database (fresh, initialized, nothing seeded). */
static void drifted_pass(fx *f, int64_t orgs, pb_report *out)
{
    tdb *t = &f->t;
    seed(f->s, orgs, 1.0, 1.0);
    pb_store_free(&f->s);
    f->s = tdb_store(t);
    if (t->backend == PB_BACKEND_PG)
        server_reset();
    assert_int_equal(reconcile(f->s, out), 0);
    assert_int_equal(out->organizations, orgs);
    if (t->backend == PB_BACKEND_PG)
        assert_int_equal(server_calls(t->name), (long)out->statements);
    /* all repaired */
    pb_report again;
    fold(f->s);
    assert_int_equal(reconcile(f->s, &again), 0);
    assert_int_equal(again.statements, 1);
    assert_int_equal(again.memberships_added + again.groups_created + again.group_memberships_added,
                     0);
    pb_report_fini(&again);
}

static void test_drift_cost_does_not_grow(void **state)
{
    fx *f = *state;
    pb_report one, many;
    /* 1 org missing everything; 1000 orgs: the four drift variants, 250 times each */
    drifted_pass(f, 1, &one);
    fx_renew(f); /* each pass on a fresh database */
    drifted_pass(f, 1000, &many);
    assert_int_equal(one.statements, many.statements);
    assert_int_equal(one.round_trips, many.round_trips);
    assert_int_equal(many.memberships_added, 500);
    assert_int_equal(many.groups_created, 500);
    assert_int_equal(many.group_memberships_added, 750);
    if (tdb_backend() == PB_BACKEND_PG) {
        assert_int_equal(many.statements, 3);  /* status + two writes */
        assert_int_equal(many.round_trips, 2); /* status, then one pipeline */
    }
    print_message("drifted pass: %llu statements, %llu round trips for 1 and for 1000 orgs\n",
                  (unsigned long long)many.statements, (unsigned long long)many.round_trips);
    pb_report_fini(&one);
    pb_report_fini(&many);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_converged_pass_is_one_statement, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_drift_cost_does_not_grow, fx_setup, fx_teardown),
    };
    const char *group =
        tdb_backend() == PB_BACKEND_PG ? "statements-postgresql" : "statements-sqlite";
    return fx_exit(cmocka_run_group_tests_name(group, tests, fx_group_setup, fx_group_teardown));
}
