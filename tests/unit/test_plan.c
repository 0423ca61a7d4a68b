/* Unit tests of the pure planner: every combination of the three facts, the counters,
 * and the sorted id lists the stores rely on for lock ordering. No database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static pb_status_row row_of(const char *id, bool member, bool group, bool in_group)
{
    pb_status_row r;
    memset(&r, 0, sizeof(r));
    pb__strlcpy(r.org_id, id, sizeof(r.org_id));
    r.org_name = "acme";
    r.has_member = member;
    r.has_group = group;
    if (group)
        pb__strlcpy(r.group_id, "aaaaaaaa-0000-4000-8000-000000000000", sizeof(r.group_id));
    r.in_group = in_group;
    return r;
}

/* The full table: (member, group, in group) -> needed rows. In-group without a group
 * cannot come from the status statement; the planner still treats it as "no group". */
static void test_needs_every_combination(void **state)
{
    (void)state;
    static const struct {
        bool member, group, in_group;
        unsigned needs;
    } cases[] = {
        {true, true, true, 0},
        {true, true, false, PB_ROW_GROUP_MEMBER},
        {true, false, false, PB_ROW_GROUP | PB_ROW_GROUP_MEMBER},
        {true, false, true, PB_ROW_GROUP | PB_ROW_GROUP_MEMBER},
        {false, true, true, PB_ROW_MEMBER},
        {false, true, false, PB_ROW_MEMBER | PB_ROW_GROUP_MEMBER},
        {false, false, false, PB_ROW_MEMBER | PB_ROW_GROUP | PB_ROW_GROUP_MEMBER},
        {false, false, true, PB_ROW_MEMBER | PB_ROW_GROUP | PB_ROW_GROUP_MEMBER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pb_status_row r = row_of("00000000-0000-4000-8000-000000000001", cases[i].member,
                                 cases[i].group, cases[i].in_group);
        assert_int_equal(pb_plan_needs(&r), cases[i].needs);
    }
}

static void test_plan_keeps_only_drift(void **state)
{
    (void)state;
    pb_plan p;
    pb_plan_init(&p);
    pb_status_row a = row_of("00000000-0000-4000-8000-00000000000c", true, true, true);
    pb_status_row b = row_of("00000000-0000-4000-8000-00000000000b", false, true, true);
    pb_status_row c = row_of("00000000-0000-4000-8000-00000000000a", false, false, false);
    pb_status_row d = row_of("00000000-0000-4000-8000-000000000009", true, true, false);
    assert_int_equal(pb_plan_add(&p, &a), 0);
    assert_int_equal(pb_plan_add(&p, &b), 0);
    assert_int_equal(pb_plan_add(&p, &c), 0);
    assert_int_equal(pb_plan_add(&p, &d), 0);
    assert_int_equal(p.n_considered, 4);
    assert_int_equal(p.n_orgs, 3);
    assert_int_equal(p.n_member, 2);
    assert_int_equal(p.n_group, 1);
    assert_int_equal(p.n_group_member, 2);

    const char **ids = NULL;
    size_t n = 0;
    assert_int_equal(pb_plan_org_ids(&p, PB_ROW_MEMBER, &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "00000000-0000-4000-8000-00000000000a");
    assert_string_equal(ids[1], "00000000-0000-4000-8000-00000000000b");
    pb__free(ids);
    assert_int_equal(pb_plan_org_ids(&p, PB_ROW_GROUP_MEMBER, &ids, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "00000000-0000-4000-8000-000000000009");
    assert_string_equal(ids[1], "00000000-0000-4000-8000-00000000000a");
    pb__free(ids);
    pb_plan_fini(&p);
    assert_int_equal(p.n_orgs, 0);
}

static void test_plan_grows_and_copies_names(void **state)
{
    (void)state;
    pb_plan p;
    pb_plan_init(&p);
    char name[32];
    for (int i = 0; i < 1000; i++) {
        char id[PB_UUID_LEN + 1];
        (void)snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", i);
        pb_status_row r = row_of(id, false, false, false);
        (void)snprintf(name, sizeof(name), "org-%d", i);
        r.org_name = name; /* borrowed: the plan must copy it */
        assert_int_equal(pb_plan_add(&p, &r), 0);
    }
    (void)snprintf(name, sizeof(name), "overwritten");
    assert_int_equal(p.n_orgs, 1000);
    assert_string_equal(p.orgs[0].org_name, "org-0");
    assert_string_equal(p.orgs[999].org_name, "org-999");
    pb_plan_fini(&p);
}

static void test_plan_out_of_memory(void **state)
{
    (void)state;
    /* Fail each allocation in turn: the plan reports ENOMEM and frees cleanly. */
    for (unsigned long n = 1; n <= 3; n++) {
        pb_plan p;
        pb_plan_init(&p);
        pb__alloc_fail_at(n);
        int rc = 0;
        for (int i = 0; i < 20 && rc == 0; i++) {
            pb_status_row r = row_of("00000000-0000-4000-8000-000000000001", false, true, true);
            rc = pb_plan_add(&p, &r);
        }
        pb__alloc_fail_at(0);
        assert_int_equal(rc, PB_ENOMEM);
        pb_plan_fini(&p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_needs_every_combination),
        cmocka_unit_test(test_plan_keeps_only_drift),
        cmocka_unit_test(test_plan_grows_and_copies_names),
        cmocka_unit_test(test_plan_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
