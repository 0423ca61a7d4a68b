/* Integration tests of a pass on a real database, SQLite or PostgreSQL (PB_TEST_BACKEND):
 * which organizations qualify and which rows a pass adds, the group it creates or the
 * admin's group it finds, a dry run and an organization filter. Each test has a fresh
 * database of its own (the fixtures in tdb.h). */
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

/* ---- the matrix ---- */

static void test_matrix(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    /* (prebuilds) x (member) x (group: none, exists without us, exists with us) */
    struct org_case {
        char id[PB_UUID_LEN + 1];
        char gid[PB_UUID_LEN + 1];
        bool prebuilds, member;
        int group;
    } cases[12];
    int n = 0;
    long expect_members = 0, expect_groups = 0, expect_gm = 0;
    for (int pre = 0; pre < 2; pre++) {
        for (int mem = 0; mem < 2; mem++) {
            for (int grp = 0; grp < 3; grp++) {
                struct org_case *c = &cases[n];
                char name[32];
                (void)snprintf(name, sizeof(name), "org-%d%d%d", pre, mem, grp);
                c->prebuilds = pre;
                c->member = mem;
                c->group = grp;
                make_org(f->s, name, pre ? 1 : -1, c->id, NULL);
                if (mem)
                    add_member(t, c->id);
                if (grp >= 1)
                    add_group(t, c->id, c->gid, 0, "Prebuilt Workspaces");
                if (grp == 2)
                    add_group_member(t, c->gid);
                if (pre) {
                    expect_members += !mem;
                    expect_groups += grp == 0;
                    expect_gm += grp != 2;
                }
                n++;
            }
        }
    }
    /* Beside them: an organization with nothing at all, one with desired_instances 0 (it
     * counts), one soft-deleted, one whose only template is deleted, one whose version
     * has no template. */
    char bare[PB_UUID_LEN + 1], zero[PB_UUID_LEN + 1], gone[PB_UUID_LEN + 1];
    char dead_tpl[PB_UUID_LEN + 1], dead_tpl_id[PB_UUID_LEN + 1];
    pb_err err;
    assert_int_equal(pb_uuid_random(bare, &err), 0);
    assert_int_equal(pb_store_create(f->s, PB_OBJ_ORG, bare, NULL, "bare", -1, NULL, &err), 0);
    make_org(f->s, "zero", 0, zero, NULL);
    make_org(f->s, "gone", 3, gone, NULL);
    tdb_exec(t, "UPDATE organizations SET deleted = true WHERE id = '%s'", gone);
    make_org(f->s, "dead-template", 2, dead_tpl, dead_tpl_id);
    tdb_exec(t, "UPDATE templates SET deleted = true WHERE id = '%s'", dead_tpl_id);
    expect_members++, expect_groups++, expect_gm++; /* zero */

    long rows_before_unrelated =
        tdb_long(t,
                 "SELECT (SELECT count(*) FROM organization_members WHERE organization_id IN"
                 " ('%s', '%s', '%s')) + (SELECT count(*) FROM groups WHERE organization_id IN"
                 " ('%s', '%s', '%s'))",
                 bare, gone, dead_tpl, bare, gone, dead_tpl);

    /* status sees exactly the qualifying organizations, in name order */
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.organizations, 7);
    assert_int_equal(r.organizations_missing, 6); /* all but org-112 */
    assert_int_equal(r.memberships_added, expect_members);
    assert_int_equal(r.groups_created, expect_groups);
    assert_int_equal(r.group_memberships_added, expect_gm);
    assert_int_equal(r.n_errors, 0);
    pb_report_fini(&r);

    for (int i = 0; i < n; i++) {
        struct org_case *c = &cases[i];
        if (c->prebuilds) {
            assert_converged(t, c->id);
            if (c->group >= 1) /* the existing group was used, not replaced */
                assert_int_equal(tdb_long(t,
                                          "SELECT count(*) FROM group_members WHERE group_id ="
                                          " '%s' AND user_id = '%s'",
                                          c->gid, UID),
                                 1);
        } else {
            assert_int_equal(n_members(t, c->id), c->member);
            assert_int_equal(n_groups(t, c->id), c->group >= 1);
            assert_int_equal(n_in_group(t, c->id), c->group == 2);
        }
    }
    assert_converged(t, zero);
    assert_int_equal(
        tdb_long(t,
                 "SELECT (SELECT count(*) FROM organization_members WHERE organization_id IN"
                 " ('%s', '%s', '%s')) + (SELECT count(*) FROM groups WHERE organization_id IN"
                 " ('%s', '%s', '%s'))",
                 bare, gone, dead_tpl, bare, gone, dead_tpl),
        rows_before_unrelated);

    /* converged: one statement, nothing added */
    fold(f->s);
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.statements, 1);
    assert_int_equal(r.round_trips, 1);
    assert_int_equal(r.organizations_missing, 0);
    assert_int_equal(r.memberships_added + r.groups_created + r.group_memberships_added, 0);
    pb_report_fini(&r);
    pb_store_free(&f->s);
    assert_null(f->s);
}

/* ---- an admin's group is theirs ---- */

static void test_existing_group_keeps_quota(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    char org[PB_UUID_LEN + 1], gid[PB_UUID_LEN + 1];
    make_org(f->s, "acme", 1, org, NULL);
    add_group(t, org, gid, 5, "Our own name");
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.groups_created, 0);
    assert_int_equal(r.group_memberships_added, 1);
    pb_report_fini(&r);
    assert_int_equal(tdb_long(t, "SELECT quota_allowance FROM groups WHERE id = '%s'", gid), 5);
    char display[64];
    tdb_text(t, display, sizeof(display), "SELECT display_name FROM groups WHERE id = '%s'", gid);
    assert_string_equal(display, "Our own name");
    assert_converged(t, org);
}

static void test_new_group_has_defaults(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    char org[PB_UUID_LEN + 1];
    make_org(f->s, "acme", 1, org, NULL);
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0);
    pb_report_fini(&r);
    char buf[128];
    tdb_text(t, buf, sizeof(buf),
             "SELECT display_name || '|' || quota_allowance || '|' || avatar_url || '|' ||"
             " source FROM groups WHERE organization_id = '%s'",
             org);
    assert_string_equal(buf, "Prebuilt Workspaces|0||user");
    tdb_text(t, buf, sizeof(buf), "SELECT id FROM groups WHERE organization_id = '%s'", org);
    char canon[PB_UUID_LEN + 1];
    pb_err err;
    assert_int_equal(pb_uuid_parse(buf, canon, "group id", &err), 0);
    assert_string_equal(buf, canon); /* lowercase canonical on both backends */
    assert_string_not_equal(buf, "00000000-0000-0000-0000-000000000000");
}

/* ---- what a pass reports as added ---- */

typedef struct added_log {
    int n;
    pb_row_kind kind[16];
    char id[16][PB_UUID_LEN + 1];
    char name[16][32];
} added_log;

static void log_added(pb_row_kind kind, const char *org_id, const char *org_name, void *arg)
{
    added_log *l = arg;
    assert_true(l->n < 16);
    l->kind[l->n] = kind;
    pb__strlcpy(l->id[l->n], org_id, sizeof(l->id[0]));
    pb__strlcpy(l->name[l->n], org_name, sizeof(l->name[0]));
    l->n++;
}

/* Every row added is reported once, after the commit, kind by kind (memberships, groups,
 * group memberships), each in id order, with its organization's name: on SQLite the
 * names are read back after the commit rather than kept in the plan. */
static void test_added_rows_reported_in_order_with_names(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    static const char *const names[3] = {"zeta", "alpha", "mid"};
    char ids[3][PB_UUID_LEN + 1], gid[PB_UUID_LEN + 1];
    for (int i = 0; i < 3; i++)
        make_org(f->s, names[i], 1, ids[i], NULL);
    add_group(t, ids[2], gid, 0, "theirs"); /* mid: a membership and a group membership */
    added_log l;
    memset(&l, 0, sizeof(l));
    pb_target tg = target();
    pb_reconcile_opts o = {.added = log_added, .added_arg = &l};
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    assert_int_equal(pb_reconcile(f->s, &tg, &o, &r, &err), 0);
    assert_int_equal(r.memberships_added, 3);
    assert_int_equal(r.groups_created, 2);
    assert_int_equal(r.group_memberships_added, 3);
    pb_report_fini(&r);
    assert_int_equal(l.n, 8);
    static const pb_row_kind order[8] = {
        PB_ROW_MEMBER, PB_ROW_MEMBER,       PB_ROW_MEMBER,       PB_ROW_GROUP,
        PB_ROW_GROUP,  PB_ROW_GROUP_MEMBER, PB_ROW_GROUP_MEMBER, PB_ROW_GROUP_MEMBER};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(l.kind[i], order[i]);
        if (i > 0 && l.kind[i] == l.kind[i - 1])
            assert_true(strcmp(l.id[i - 1], l.id[i]) < 0);
        int which = -1;
        for (int k = 0; k < 3; k++)
            if (strcmp(l.id[i], ids[k]) == 0)
                which = k;
        assert_true(which >= 0);
        assert_string_equal(l.name[i], names[which]);
        if (l.kind[i] == PB_ROW_GROUP)
            assert_int_not_equal(which, 2);
    }
    for (int k = 0; k < 3; k++)
        assert_converged(t, ids[k]);
}

/* ---- a dry run, and a filter ---- */

static void test_dry_run_and_filter(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    char a[PB_UUID_LEN + 1], b[PB_UUID_LEN + 1];
    make_org(f->s, "a", 1, a, NULL);
    make_org(f->s, "b", 1, b, NULL);
    pb_target tg = target();
    pb_reconcile_opts o = {.dry_run = true};
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    assert_int_equal(pb_reconcile(f->s, &tg, &o, &r, &err), 0);
    assert_int_equal(r.memberships_planned, 2);
    assert_int_equal(r.groups_planned, 2);
    assert_int_equal(r.memberships_added, 0);
    assert_int_equal(r.statements, 1);
    pb_report_fini(&r);
    assert_int_equal(total_rows(t), 0);

    const char *only[1] = {b};
    pb_reconcile_opts filter = {.org_ids = only, .n_org_ids = 1};
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(f->s, &tg, &filter, &r, &err), 0);
    assert_int_equal(r.organizations, 1);
    assert_int_equal(r.memberships_added, 1);
    pb_report_fini(&r);
    assert_converged(t, b);
    assert_int_equal(n_members(t, a), 0);

    const char *bad[1] = {"not-a-uuid"};
    pb_reconcile_opts fb = {.org_ids = bad, .n_org_ids = 1};
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(f->s, &tg, &fb, &r, &err), PB_EINVAL);
    pb_report_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_matrix, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_existing_group_keeps_quota, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_new_group_has_defaults, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_added_rows_reported_in_order_with_names, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_dry_run_and_filter, fx_setup, fx_teardown),
    };
    const char *group =
        tdb_backend() == PB_BACKEND_PG ? "reconcile-postgresql" : "reconcile-sqlite";
    return fx_exit(cmocka_run_group_tests_name(group, tests, fx_group_setup, fx_group_teardown));
}
