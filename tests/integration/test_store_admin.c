/* Integration tests of the data commands (src/lib/admin.c over each backend's primitives),
 * on SQLite and PostgreSQL (PB_TEST_BACKEND): the same calls give the same rows, the same
 * codes and the same messages on both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tstore.h"

#define ORG     "0a000000-0000-4000-8000-000000000001"
#define TPL     "0b000000-0000-4000-8000-000000000001"
#define VER     "0c000000-0000-4000-8000-000000000001"
#define PRESET  "0d000000-0000-4000-8000-000000000001"
#define NOWHERE "0e000000-0000-4000-8000-00000000dead"

typedef struct seen {
    int n;
    char ids[8][PB_UUID_LEN + 1];
    char extra[8][32];
    bool parent_null[8];
} seen;

static int collect(const pb_obj_row *row, void *arg)
{
    seen *s = arg;
    if (s->n < 8) {
        (void)snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", row->id);
        (void)snprintf(s->extra[s->n], sizeof(s->extra[0]), "%s",
                       row->extra != NULL ? row->extra : "(null)");
        s->parent_null[s->n] = row->parent_id == NULL;
    }
    s->n++;
    return 0;
}

/* One of each object, then the listing of each kind reads them back. */
static void test_create_and_list(void **state)
{
    fx *f = *state;
    pb_target t;
    pb_target_init_default(&t);
    pb_err e;
    assert_int_equal(pb_store_create(f->s, PB_OBJ_ORG, ORG, NULL, "acme", -1, NULL, &e), 0);
    assert_int_equal(pb_store_create(f->s, PB_OBJ_TEMPLATE, TPL, ORG, "docker", -1, t.user_id, &e),
                     0);
    assert_int_equal(pb_store_create(f->s, PB_OBJ_VERSION, VER, TPL, "v1", -1, t.user_id, &e), 0);
    assert_int_equal(pb_store_create(f->s, PB_OBJ_PRESET, PRESET, VER, "small", 2, NULL, &e), 0);
    static const pb_obj_kind kinds[] = {PB_OBJ_ORG, PB_OBJ_TEMPLATE, PB_OBJ_VERSION, PB_OBJ_PRESET};
    static const char *const ids[] = {ORG, TPL, VER, PRESET};
    for (int i = 0; i < 4; i++) {
        seen s = {0};
        assert_int_equal(pb_store_list(f->s, kinds[i], NULL, collect, &s, &e), 0);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.ids[0], ids[i]);
        assert_true(s.parent_null[0] == (kinds[i] == PB_OBJ_ORG)); /* SQL NULL reaches us */
    }
    seen s = {0};
    assert_int_equal(pb_store_list(f->s, PB_OBJ_PRESET, VER, collect, &s, &e), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.extra[0], "2"); /* desired_instances, as text on both backends */
    memset(&s, 0, sizeof(s));
    assert_int_equal(pb_store_list(f->s, PB_OBJ_TEMPLATE, NOWHERE, collect, &s, &e), 0);
    assert_int_equal(s.n, 0);
}

/* A key already taken and a parent that is not there: both conflicts, told apart by the
 * backend's own code (a foreign key violation), never by its message. */
static void test_conflicts_named(void **state)
{
    fx *f = *state;
    pb_target t;
    pb_target_init_default(&t);
    pb_err e;
    assert_int_equal(pb_store_create(f->s, PB_OBJ_ORG, ORG, NULL, "acme", -1, NULL, &e), 0);
    assert_int_equal(pb_store_create(f->s, PB_OBJ_ORG, ORG, NULL, "acme2", -1, NULL, &e),
                     PB_ECONFLICT);
    assert_string_equal(e.msg, "create organization \"acme2\": already exists");
    assert_int_equal(
        pb_store_create(f->s, PB_OBJ_TEMPLATE, TPL, NOWHERE, "docker", -1, t.user_id, &e),
        PB_ECONFLICT);
    assert_string_equal(e.msg, "create template \"docker\": parent or creating user not found");
    /* a version takes its organization from its template: no template, no row */
    assert_int_equal(pb_store_create(f->s, PB_OBJ_VERSION, VER, NOWHERE, "v1", -1, t.user_id, &e),
                     PB_ENOTFOUND);
    assert_string_equal(e.msg, "create template version \"v1\": template " NOWHERE " not found");
    assert_int_equal(pb_store_create(f->s, (pb_obj_kind)99, ORG, NULL, "x", -1, NULL, &e),
                     PB_EINVAL);
    seen s = {0};
    assert_int_equal(pb_store_list(f->s, PB_OBJ_TEMPLATE, NULL, collect, &s, &e), 0);
    assert_int_equal(s.n, 0); /* nothing half-written */
}

/* remove takes out exactly the row asked for, and counts it. */
static void test_remove_counts(void **state)
{
    fx *f = *state;
    pb_target t;
    pb_target_init_default(&t);
    seed(f->s, 4, 1.0, 0.0);
    pb_err e;
    seen orgs = {0};
    assert_int_equal(pb_store_list(f->s, PB_OBJ_ORG, NULL, collect, &orgs, &e), 0);
    assert_int_equal(orgs.n, 4);
    static const pb_row_kind kinds[] = {PB_ROW_GROUP_MEMBER, PB_ROW_MEMBER, PB_ROW_GROUP};
    for (int i = 0; i < 3; i++) {
        size_t n = 9;
        assert_int_equal(pb_store_remove(f->s, &t, kinds[i], orgs.ids[i], &n, &e), 0);
        assert_int_equal(n, 1);
        assert_int_equal(pb_store_remove(f->s, &t, kinds[i], orgs.ids[i], &n, &e), 0);
        assert_int_equal(n, 0);
    }
    size_t n = 9;
    assert_int_equal(pb_store_remove(f->s, &t, (pb_row_kind)3, orgs.ids[0], &n, &e), PB_EINVAL);
    assert_int_equal(n, 0);
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0);
    /* what was removed, and nothing else: leaving the organization and deleting the group
     * each took the group membership along, as on the platform */
    assert_int_equal(r.memberships_added, 1);
    assert_int_equal(r.groups_created, 1);
    assert_int_equal(r.group_memberships_added, 3);
    pb_report_fini(&r);
}

/* References: an exact id wins, a name is case-insensitive, ambiguity names the candidates. */
static void test_resolve(void **state)
{
    fx *f = *state;
    pb_target t;
    pb_target_init_default(&t);
    pb_err e;
    char out[PB_UUID_LEN + 1];
    assert_int_equal(pb_store_create(f->s, PB_OBJ_ORG, ORG, NULL, "Acme", -1, NULL, &e), 0);
    assert_int_equal(pb_store_create(f->s, PB_OBJ_ORG, NOWHERE, NULL, ORG, -1, NULL, &e), 0);
    assert_int_equal(pb_store_resolve(f->s, PB_OBJ_ORG, "acme", NULL, out, &e), 0);
    assert_string_equal(out, ORG);
    /* the other organization is named like the first one's id: the id wins */
    assert_int_equal(pb_store_resolve(f->s, PB_OBJ_ORG, ORG, NULL, out, &e), 0);
    assert_string_equal(out, ORG);
    assert_int_equal(pb_store_create(f->s, PB_OBJ_TEMPLATE, TPL, ORG, "docker", -1, t.user_id, &e),
                     0);
    assert_int_equal(pb_store_create(f->s, PB_OBJ_TEMPLATE, "0b000000-0000-4000-8000-000000000002",
                                     NOWHERE, "Docker", -1, t.user_id, &e),
                     0);
    assert_int_equal(pb_store_resolve(f->s, PB_OBJ_TEMPLATE, "docker", NULL, out, &e),
                     PB_ECONFLICT);
    assert_non_null(strstr(e.msg, "Acme"));
    pb_ref_scope scope = {.org_id = ORG};
    assert_int_equal(pb_store_resolve(f->s, PB_OBJ_TEMPLATE, "docker", &scope, out, &e), 0);
    assert_string_equal(out, TPL);
    assert_int_equal(pb_store_resolve(f->s, PB_OBJ_VERSION, "nope", NULL, out, &e), PB_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_list, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_conflicts_named, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_remove_counts, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_resolve, fx_setup, fx_teardown),
    };
    return fx_exit(cmocka_run_group_tests_name("admin", tests, fx_group_setup, fx_group_teardown));
}
