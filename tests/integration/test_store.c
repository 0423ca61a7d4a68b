/* Integration tests of status, plan and reconcile on a real database: the same binary
 * runs against SQLite (PB_TEST_BACKEND=sqlite) and against the PostgreSQL server the
 * CTest fixture started (PB_TEST_BACKEND=pg). Races are made for real, with a second
 * connection or threads, and results are read back with raw SQL. */
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

#include "../summary_check.h"
#include "tdb.h"

#define UID   PB_DEFAULT_USER_ID
#define GROUP PB_DEFAULT_GROUP_NAME

static pb_target target(void)
{
    pb_target t;
    pb_target_init_default(&t);
    return t;
}

/* An organization with one template, version and preset. desired < 0: the preset has no
 * desired_instances, so the organization does not qualify. */
static void make_org(pb_store *s, const char *name, int64_t desired, char id[PB_UUID_LEN + 1],
                     char tpl_out[PB_UUID_LEN + 1])
{
    char tpl[PB_UUID_LEN + 1], ver[PB_UUID_LEN + 1], pre[PB_UUID_LEN + 1];
    pb_err err;
    assert_int_equal(pb_uuid_random(id, &err), 0);
    assert_int_equal(pb_uuid_random(tpl, &err), 0);
    assert_int_equal(pb_uuid_random(ver, &err), 0);
    assert_int_equal(pb_uuid_random(pre, &err), 0);
    if (pb_store_create(s, PB_OBJ_ORG, id, NULL, name, -1, NULL, &err) != 0 ||
        pb_store_create(s, PB_OBJ_TEMPLATE, tpl, id, "tpl", -1, UID, &err) != 0 ||
        pb_store_create(s, PB_OBJ_VERSION, ver, tpl, "v1", -1, UID, &err) != 0 ||
        pb_store_create(s, PB_OBJ_PRESET, pre, ver, "p1", desired, UID, &err) != 0)
        fail_msg("make_org %s: %s", name, err.msg);
    if (tpl_out != NULL)
        memcpy(tpl_out, tpl, PB_UUID_LEN + 1);
}

/* The same, written the way the platform writes: every NOT NULL column it requires
 * (default_org_member_roles included) supplied, as on the production schema. */
static void platform_org(tdb *t, const char *name, int64_t desired, char id[PB_UUID_LEN + 1])
{
    char tpl[PB_UUID_LEN + 1], ver[PB_UUID_LEN + 1], want[24] = "NULL";
    pb_err err;
    assert_int_equal(pb_uuid_random(id, &err), 0);
    assert_int_equal(pb_uuid_random(tpl, &err), 0);
    assert_int_equal(pb_uuid_random(ver, &err), 0);
    if (desired >= 0)
        (void)snprintf(want, sizeof(want), "%lld", (long long)desired);
    tdb_exec(t,
             "INSERT INTO organizations (id, name, display_name, description, created_at,"
             " updated_at, default_org_member_roles) VALUES ('%s', '%s', '%s', '', now(), now(),"
             " '{organization-workspace-access}')",
             id, name, name);
    tdb_exec(t,
             "INSERT INTO template_versions (id, template_id, organization_id, name, readme,"
             " job_id, created_by, created_at, updated_at) VALUES ('%s', NULL, '%s', 'v1', '',"
             " gen_random_uuid(), '%s', now(), now())",
             ver, id, UID);
    tdb_exec(t,
             "INSERT INTO template_version_presets (template_version_id, name, desired_instances)"
             " VALUES ('%s', 'p1', %s)",
             ver, want);
    tdb_exec(t,
             "INSERT INTO templates (id, organization_id, name, provisioner, active_version_id,"
             " created_by, created_at, updated_at) VALUES ('%s', '%s', 'tpl', 'terraform', '%s',"
             " '%s', now(), now())",
             tpl, id, ver, UID);
    tdb_exec(t, "UPDATE template_versions SET template_id = '%s' WHERE id = '%s'", tpl, ver);
}

static void add_member(tdb *t, const char *org)
{
    tdb_exec(t,
             "INSERT INTO organization_members (organization_id, user_id, created_at,"
             " updated_at) VALUES ('%s', '%s', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')",
             org, UID);
}

static void add_group(tdb *t, const char *org, char gid[PB_UUID_LEN + 1], int quota,
                      const char *display)
{
    pb_err err;
    assert_int_equal(pb_uuid_random(gid, &err), 0);
    tdb_exec(t,
             "INSERT INTO groups (id, name, organization_id, display_name, quota_allowance)"
             " VALUES ('%s', '%s', '%s', '%s', %d)",
             gid, GROUP, org, display, quota);
}

static void add_group_member(tdb *t, const char *gid)
{
    tdb_exec(t, "INSERT INTO group_members (user_id, group_id) VALUES ('%s', '%s')", UID, gid);
}

static long n_members(tdb *t, const char *org)
{
    return tdb_long(t,
                    "SELECT count(*) FROM organization_members WHERE organization_id = '%s'"
                    " AND user_id = '%s'",
                    org, UID);
}

static long n_groups(tdb *t, const char *org)
{
    return tdb_long(t, "SELECT count(*) FROM groups WHERE organization_id = '%s' AND name = '%s'",
                    org, GROUP);
}

static long n_in_group(tdb *t, const char *org)
{
    return tdb_long(t,
                    "SELECT count(*) FROM group_members gm JOIN groups g ON g.id = gm.group_id"
                    " WHERE g.organization_id = '%s' AND g.name = '%s' AND gm.user_id = '%s'",
                    org, GROUP, UID);
}

static void assert_converged(tdb *t, const char *org)
{
    assert_int_equal(n_members(t, org), 1);
    assert_int_equal(n_groups(t, org), 1);
    assert_int_equal(n_in_group(t, org), 1);
}

static long total_rows(tdb *t)
{
    return tdb_long(t, "SELECT (SELECT count(*) FROM organization_members) +"
                       " (SELECT count(*) FROM groups) + (SELECT count(*) FROM group_members)");
}

static int reconcile(pb_store *s, pb_report *r)
{
    pb_target tg = target();
    pb_err err;
    pb_report_init(r);
    int rc = pb_reconcile(s, &tg, NULL, r, &err);
    if (rc != 0)
        print_message("reconcile: %s\n", err.msg);
    return rc;
}

/* Fold what the summary's changes log holds (PostgreSQL), as the first pass after a
 * template change does, so the next pass is the converged one-statement pass. */
static void fold(pb_store *s)
{
    pb_err err;
    assert_int_equal(pb_store_fold(s, &err), 0);
}

/* ---- the matrix ---- */

static void test_matrix(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
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
                make_org(s, name, pre ? 1 : -1, c->id, NULL);
                if (mem)
                    add_member(&t, c->id);
                if (grp >= 1)
                    add_group(&t, c->id, c->gid, 0, "Prebuilt Workspaces");
                if (grp == 2)
                    add_group_member(&t, c->gid);
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
    assert_int_equal(pb_store_create(s, PB_OBJ_ORG, bare, NULL, "bare", -1, NULL, &err), 0);
    make_org(s, "zero", 0, zero, NULL);
    make_org(s, "gone", 3, gone, NULL);
    tdb_exec(&t, "UPDATE organizations SET deleted = true WHERE id = '%s'", gone);
    make_org(s, "dead-template", 2, dead_tpl, dead_tpl_id);
    tdb_exec(&t, "UPDATE templates SET deleted = true WHERE id = '%s'", dead_tpl_id);
    expect_members++, expect_groups++, expect_gm++; /* zero */

    long rows_before_unrelated =
        tdb_long(&t,
                 "SELECT (SELECT count(*) FROM organization_members WHERE organization_id IN"
                 " ('%s', '%s', '%s')) + (SELECT count(*) FROM groups WHERE organization_id IN"
                 " ('%s', '%s', '%s'))",
                 bare, gone, dead_tpl, bare, gone, dead_tpl);

    /* status sees exactly the qualifying organizations, in name order */
    pb_report r;
    assert_int_equal(reconcile(s, &r), 0);
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
            assert_converged(&t, c->id);
            if (c->group >= 1) /* the existing group was used, not replaced */
                assert_int_equal(tdb_long(&t,
                                          "SELECT count(*) FROM group_members WHERE group_id ="
                                          " '%s' AND user_id = '%s'",
                                          c->gid, UID),
                                 1);
        } else {
            assert_int_equal(n_members(&t, c->id), c->member);
            assert_int_equal(n_groups(&t, c->id), c->group >= 1);
            assert_int_equal(n_in_group(&t, c->id), c->group == 2);
        }
    }
    assert_converged(&t, zero);
    assert_int_equal(
        tdb_long(&t,
                 "SELECT (SELECT count(*) FROM organization_members WHERE organization_id IN"
                 " ('%s', '%s', '%s')) + (SELECT count(*) FROM groups WHERE organization_id IN"
                 " ('%s', '%s', '%s'))",
                 bare, gone, dead_tpl, bare, gone, dead_tpl),
        rows_before_unrelated);

    /* converged: one statement, nothing added */
    fold(s);
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.statements, 1);
    assert_int_equal(r.round_trips, 1);
    assert_int_equal(r.organizations_missing, 0);
    assert_int_equal(r.memberships_added + r.groups_created + r.group_memberships_added, 0);
    pb_report_fini(&r);
    pb_store_free(&s);
    assert_null(s);
    tdb_drop(&t);
}

/* ---- an admin's group is theirs ---- */

static void test_existing_group_keeps_quota(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    char org[PB_UUID_LEN + 1], gid[PB_UUID_LEN + 1];
    make_org(s, "acme", 1, org, NULL);
    add_group(&t, org, gid, 5, "Our own name");
    pb_report r;
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.groups_created, 0);
    assert_int_equal(r.group_memberships_added, 1);
    pb_report_fini(&r);
    assert_int_equal(tdb_long(&t, "SELECT quota_allowance FROM groups WHERE id = '%s'", gid), 5);
    char display[64];
    tdb_text(&t, display, sizeof(display), "SELECT display_name FROM groups WHERE id = '%s'", gid);
    assert_string_equal(display, "Our own name");
    assert_converged(&t, org);
    pb_store_free(&s);
    tdb_drop(&t);
}

static void test_new_group_has_defaults(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    char org[PB_UUID_LEN + 1];
    make_org(s, "acme", 1, org, NULL);
    pb_report r;
    assert_int_equal(reconcile(s, &r), 0);
    pb_report_fini(&r);
    char buf[128];
    tdb_text(&t, buf, sizeof(buf),
             "SELECT display_name || '|' || quota_allowance || '|' || avatar_url || '|' ||"
             " source FROM groups WHERE organization_id = '%s'",
             org);
    assert_string_equal(buf, "Prebuilt Workspaces|0||user");
    tdb_text(&t, buf, sizeof(buf), "SELECT id FROM groups WHERE organization_id = '%s'", org);
    char canon[PB_UUID_LEN + 1];
    pb_err err;
    assert_int_equal(pb_uuid_parse(buf, canon, "group id", &err), 0);
    assert_string_equal(buf, canon); /* lowercase canonical on both backends */
    assert_string_not_equal(buf, "00000000-0000-0000-0000-000000000000");
    pb_store_free(&s);
    tdb_drop(&t);
}

static long summary_mismatches(tdb *t);

/* ---- statement counts ---- */

/* Calls of statements whose text matches `pattern` (LIKE). */
static long server_calls_like(const char *dbname, const char *pattern)
{
    PGconn *c = tdb_pg_admin();
    char sql[512];
    (void)snprintf(sql, sizeof(sql),
                   "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_database d"
                   " ON d.oid = s.dbid WHERE s.toplevel AND d.datname = '%s' AND s.query LIKE '%s'",
                   dbname, pattern);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("pg_stat_statements: %s", PQerrorMessage(c));
    long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

static long server_calls(const char *dbname)
{
    return server_calls_like(dbname, "%");
}

static void server_reset(void)
{
    PGconn *c = tdb_pg_admin();
    PGresult *r = PQexec(c, "SELECT pg_stat_statements_reset()");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("pg_stat_statements_reset: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

static void seed(pb_store *s, int64_t orgs, double prebuilds, double drift)
{
    pb_target tg = target();
    pb_seed_opts o = {.orgs = orgs,
                      .templates_per_org = 2,
                      .versions_per_template = 2,
                      .presets_per_version = 2,
                      .prebuilds_fraction = prebuilds,
                      .drift_fraction = drift,
                      .seed = 7};
    pb_seed_result r;
    pb_err err;
    if (pb_store_seed(s, &tg, &o, &r, &err) != 0)
        fail_msg("seed: %s", err.msg);
    assert_int_equal(r.orgs, orgs);
}

static void test_converged_pass_is_one_statement(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    seed(s, 50, 0.5, 0.0);
    pb_store_free(&s);
    /* a new connection: the pass must not need any set-up statement either */
    s = tdb_store(&t);
    bool pg = t.backend == PB_BACKEND_PG;
    if (pg)
        server_reset();
    pb_report r;
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.organizations, 25);
    assert_int_equal(r.statements, 1);
    assert_int_equal(r.round_trips, 1);
    pb_report_fini(&r);
    if (pg) /* the server's own count, not ours */
        assert_int_equal(server_calls(t.name), 1);
    /* and again on the same connection (prepared statement reused), once the changes the
     * setup logged are folded in */
    fold(s);
    if (pg)
        server_reset();
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.statements, 1);
    pb_report_fini(&r);
    if (pg)
        assert_int_equal(server_calls(t.name), 1);
    pb_store_free(&s);
    tdb_drop(&t);
}

static void drifted_pass(int64_t orgs, pb_report *out)
{
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    seed(s, orgs, 1.0, 1.0);
    pb_store_free(&s);
    s = tdb_store(&t);
    if (t.backend == PB_BACKEND_PG)
        server_reset();
    assert_int_equal(reconcile(s, out), 0);
    assert_int_equal(out->organizations, orgs);
    if (t.backend == PB_BACKEND_PG)
        assert_int_equal(server_calls(t.name), (long)out->statements);
    /* all repaired */
    pb_report again;
    fold(s);
    assert_int_equal(reconcile(s, &again), 0);
    assert_int_equal(again.statements, 1);
    assert_int_equal(again.memberships_added + again.groups_created + again.group_memberships_added,
                     0);
    pb_report_fini(&again);
    pb_store_free(&s);
    tdb_drop(&t);
}

static void test_drift_cost_does_not_grow(void **state)
{
    (void)state;
    pb_report one, many;
    /* 1 org missing everything; 1000 orgs: the four drift variants, 250 times each */
    drifted_pass(1, &one);
    drifted_pass(1000, &many);
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
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *a = tdb_store(&t), *b = tdb_store(&t);
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
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM groups"), 40);
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM group_members"), 40);
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM organization_members"), 40);
    planned_fini(&pa);
    planned_fini(&pbp);
    pb_store_free(&a);
    pb_store_free(&b);
    tdb_drop(&t);
}

/* Another writer creates the group after we planned to create it: our group insert is
 * a conflict, and the membership goes into *their* group. */
static void test_group_created_by_someone_else(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    char org[PB_UUID_LEN + 1], gid[PB_UUID_LEN + 1];
    make_org(s, "acme", 1, org, NULL);
    planned p;
    plan_now(s, &p);
    assert_int_equal(p.ng, 1);
    add_group(&t, org, gid, 3, "theirs");
    pb_write_result res;
    assert_int_equal(apply_planned(s, &p, &res), 0);
    assert_int_equal(res.groups_created, 0);
    assert_int_equal(res.group_memberships_added, 1);
    assert_int_equal(
        tdb_long(&t, "SELECT count(*) FROM group_members WHERE group_id = '%s' AND user_id = '%s'",
                 gid, UID),
        1);
    assert_converged(&t, org);
    planned_fini(&p);
    pb_store_free(&s);
    tdb_drop(&t);
}

/* An organization deleted between our read and our write is skipped; the others are
 * repaired in the same pass. */
static void test_org_deleted_meanwhile(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    char a[PB_UUID_LEN + 1], b[PB_UUID_LEN + 1], c[PB_UUID_LEN + 1];
    make_org(s, "a", 1, a, NULL);
    make_org(s, "b", 1, b, NULL);
    make_org(s, "c", 1, c, NULL);
    planned p;
    plan_now(s, &p);
    assert_int_equal(p.nm, 3);
    tdb_exec(&t, "DELETE FROM organizations WHERE id = '%s'", a);
    tdb_exec(&t, "UPDATE organizations SET deleted = true WHERE id = '%s'", b);
    pb_write_result res;
    assert_int_equal(apply_planned(s, &p, &res), 0);
    assert_int_equal(res.memberships_added, 1);
    assert_int_equal(res.groups_created, 1);
    assert_int_equal(res.group_memberships_added, 1);
    assert_converged(&t, c);
    assert_int_equal(n_members(&t, b), 0);
    assert_int_equal(n_groups(&t, b), 0);
    planned_fini(&p);
    pb_store_free(&s);
    tdb_drop(&t);
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
    (void)state;
    enum { RACERS = 4, ROUNDS = 5, ORGS = 200 };
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    seed(s, ORGS, 1.0, 0.0);
    pb_store_free(&s);
    for (int round = 0; round < ROUNDS; round++) {
        /* drift everything again */
        tdb_exec(&t, "DELETE FROM group_members");
        tdb_exec(&t, "DELETE FROM groups");
        tdb_exec(&t, "DELETE FROM organization_members");
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, RACERS);
        racer r[RACERS];
        pthread_t th[RACERS];
        for (int i = 0; i < RACERS; i++) {
            memset(&r[i], 0, sizeof(r[i]));
            r[i].url = t.url;
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
        assert_int_equal(tdb_long(&t, "SELECT count(*) FROM groups"), ORGS);
        assert_int_equal(tdb_long(&t, "SELECT count(*) FROM group_members"), ORGS);
        assert_int_equal(tdb_long(&t, "SELECT count(*) FROM organization_members"), ORGS);
    }
    tdb_drop(&t);
}

/* PostgreSQL: the group is inserted by a transaction that is still open when we write.
 * Our insert waits for it, then uses its group. */
static void test_pg_uncommitted_group(void **state)
{
    (void)state;
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    char org[PB_UUID_LEN + 1], gid[PB_UUID_LEN + 1];
    make_org(s, "acme", 1, org, NULL);
    add_member(&t, org);
    pb_store_free(&s);
    pb_err err;
    assert_int_equal(pb_uuid_random(gid, &err), 0);
    tdb_exec(&t, "BEGIN");
    tdb_exec(&t,
             "INSERT INTO groups (id, name, organization_id, display_name) VALUES ('%s', '%s',"
             " '%s', 'theirs')",
             gid, GROUP, org);
    racer b = {.url = t.url};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, race_thread, &b), 0);
    /* wait until the reconciler is blocked on our uncommitted row */
    long pid = 0;
    long waiting = tdb_pg_lock_waiters(&t, &pid);
    assert_int_equal(waiting, 1);
    tdb_exec(&t, "COMMIT");
    pthread_join(th, NULL);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.report.groups_created, 0);
    assert_int_equal(b.report.group_memberships_added, 1);
    pb_report_fini(&b.report);
    assert_int_equal(
        tdb_long(&t, "SELECT count(*) FROM group_members WHERE group_id = '%s' AND user_id = '%s'",
                 gid, UID),
        1);
    assert_converged(&t, org);
    tdb_drop(&t);
}

/* ---- refusals ---- */

static void test_missing_user_writes_nothing(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    char org[PB_UUID_LEN + 1];
    make_org(s, "acme", 1, org, NULL);
    pb_target tg = target();
    pb__strlcpy(tg.user_id, "11111111-1111-4111-8111-111111111111", sizeof(tg.user_id));
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    assert_int_equal(pb_reconcile(s, &tg, NULL, &r, &err), PB_ENOUSER);
    assert_non_null(strstr(err.msg, "11111111-1111-4111-8111-111111111111"));
    assert_int_equal(r.organizations_missing, 1); /* found missing, left missing */
    assert_int_equal(r.n_errors, 1);
    pb_report_fini(&r);
    assert_int_equal(total_rows(&t), 0);
    pb_store_free(&s);
    tdb_drop(&t);
}

static void test_schema_missing(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, false);
    pb_store *s = tdb_store(&t);
    pb_target tg = target();
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    assert_int_equal(pb_reconcile(s, &tg, NULL, &r, &err), PB_ENOSCHEMA);
    assert_non_null(strstr(err.msg, "init"));
    pb_report_fini(&r);
    pb_store_free(&s);
    tdb_drop(&t);
}

static void test_init_is_idempotent(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    pb_target tg = target();
    pb_init_opts o = {.create_user = true};
    pb_init_result r;
    pb_err err;
    assert_int_equal(pb_store_init(s, &tg, &o, &r, &err), 0);
    assert_false(r.foreign_schema);
    assert_int_equal(r.schema_version_before, pb_schema_version_latest());
    assert_int_equal(r.schema_version_after, pb_schema_version_latest());
    assert_false(r.user_created);
    assert_true(r.user_exists);
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM users"), 1);
    char buf[128];
    tdb_text(&t, buf, sizeof(buf),
             "SELECT username || '|' || email || '|' || name || '|' || status || '|' ||"
             " login_type FROM users WHERE id = '%s'",
             UID);
    assert_string_equal(buf, "prebuilds|prebuilds@system|Prebuilds Owner|active|none");
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM users WHERE is_system = true"), 1);
    pb_store_free(&s);
    tdb_drop(&t);
}

static void test_dry_run_and_filter(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    char a[PB_UUID_LEN + 1], b[PB_UUID_LEN + 1];
    make_org(s, "a", 1, a, NULL);
    make_org(s, "b", 1, b, NULL);
    pb_target tg = target();
    pb_reconcile_opts o = {.dry_run = true};
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    assert_int_equal(pb_reconcile(s, &tg, &o, &r, &err), 0);
    assert_int_equal(r.memberships_planned, 2);
    assert_int_equal(r.groups_planned, 2);
    assert_int_equal(r.memberships_added, 0);
    assert_int_equal(r.statements, 1);
    pb_report_fini(&r);
    assert_int_equal(total_rows(&t), 0);

    const char *only[1] = {b};
    pb_reconcile_opts f = {.org_ids = only, .n_org_ids = 1};
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(s, &tg, &f, &r, &err), 0);
    assert_int_equal(r.organizations, 1);
    assert_int_equal(r.memberships_added, 1);
    pb_report_fini(&r);
    assert_converged(&t, b);
    assert_int_equal(n_members(&t, a), 0);

    const char *bad[1] = {"not-a-uuid"};
    pb_reconcile_opts fb = {.org_ids = bad, .n_org_ids = 1};
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(s, &tg, &fb, &r, &err), PB_EINVAL);
    pb_report_fini(&r);
    pb_store_free(&s);
    tdb_drop(&t);
}

/* ---- a production-shaped database we did not create (PostgreSQL) ---- */

static void load_sql_file(tdb *t, const char *file)
{
    const char *dir = getenv("PB_TEST_SQL_DIR");
    char path[512];
    (void)snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/sql", file);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("open %s", path);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(f);
    fclose(mem);
    PGresult *r = PQexec(t->pg, buf);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("load %s: %s", path, PQerrorMessage(t->pg));
    PQclear(r);
    free(buf);
}

static long schema_fingerprint(tdb *t)
{
    return tdb_long(
        t, "SELECT count(*) + coalesce(sum(hashtext(c.relname::text || c.relkind::text)), 0)"
           " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
           " WHERE n.nspname = 'public'");
}

static void test_pg_production_schema(void **state)
{
    (void)state;
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    tdb t;
    tdb_create(&t, false);
    load_sql_file(&t, "production_schema.sql");
    long before = schema_fingerprint(&t);
    long rows_before = tdb_long(&t, "SELECT count(*) FROM users");
    pb_store *s = tdb_store(&t);
    pb_target tg = target();
    pb_init_opts o = {.create_user = true};
    pb_init_result ir;
    pb_err err;
    /* init on a foreign schema: looks, changes nothing, not even the user */
    assert_int_equal(pb_store_init(s, &tg, &o, &ir, &err), 0);
    assert_true(ir.foreign_schema);
    assert_false(ir.user_exists);
    assert_false(ir.user_created);
    assert_int_equal(ir.indexes_missing, 1);
    assert_int_equal(schema_fingerprint(&t), before);
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM users"), rows_before);

    /* The platform creates its users itself. */
    tdb_exec(&t,
             "INSERT INTO users (id, email, username, name, hashed_password, created_at,"
             " updated_at, status, login_type, is_system) VALUES ('%s', 'prebuilds@system',"
             " 'prebuilds', 'Prebuilds Owner', '', now(), now(), 'active', 'none', true)",
             UID);
    char orgs[6][PB_UUID_LEN + 1];
    for (int i = 0; i < 6; i++) {
        char name[16];
        (void)snprintf(name, sizeof(name), "prod-%d", i);
        platform_org(&t, name, i < 4 ? 2 : -1, orgs[i]);
    }
    /* the AFTER INSERT trigger on organizations did its work */
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM custom_roles"), 12);
    add_member(&t, orgs[1]);
    char gid[PB_UUID_LEN + 1];
    add_group(&t, orgs[2], gid, 5, "Admins choice");
    pb_report r;
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.organizations, 4);
    assert_int_equal(r.memberships_added, 3);
    assert_int_equal(r.groups_created, 3);
    assert_int_equal(r.group_memberships_added, 4);
    pb_report_fini(&r);
    for (int i = 0; i < 4; i++)
        assert_converged(&t, orgs[i]);
    assert_int_equal(n_members(&t, orgs[4]), 0);
    assert_int_equal(tdb_long(&t, "SELECT quota_allowance FROM groups WHERE id = '%s'", gid), 5);
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM groups WHERE source = 'user'"
                                  " AND quota_allowance = 0"),
                     3);
    /* the production trigger: leaving the organization also leaves its groups */
    tdb_exec(&t, "DELETE FROM organization_members WHERE organization_id = '%s'", orgs[0]);
    assert_int_equal(n_in_group(&t, orgs[0]), 0);
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.memberships_added, 1);
    assert_int_equal(r.group_memberships_added, 1);
    pb_report_fini(&r);
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.statements, 1);
    pb_report_fini(&r);

    /* asked for, the recommended index is added, and only that */
    o.recommended_indexes = true;
    assert_int_equal(pb_store_init(s, &tg, &o, &ir, &err), 0);
    assert_int_equal(ir.indexes_created, 1);
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM pg_indexes WHERE indexname ="
                                  " 'template_version_presets_prebuilds_idx'"),
                     1);
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM pg_tables WHERE tablename ="
                                  " 'prebuilds_schema_migrations'"),
                     0);
    assert_int_equal(pb_store_init(s, &tg, &o, &ir, &err), 0);
    assert_int_equal(ir.indexes_created, 0);
    assert_int_equal(ir.indexes_missing, 0);
    assert_true(ir.summary_missing);
    assert_false(ir.summary_built);
    pb_store_free(&s);

    /* asked for, the summary is installed; a session's first pass finds it and reads it
     * through the probe form, the next ones read it natively (seen from the server's side) */
    o.summary = true;
    s = tdb_store(&t);
    assert_int_equal(pb_store_init(s, &tg, &o, &ir, &err), 0);
    assert_true(ir.summary_built);
    pb_store_free(&s);
    assert_int_equal(summary_mismatches(&t), 0);
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM prebuilds_configured_templates"), 4);
    s = tdb_store(&t);
    server_reset();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(reconcile(s, &r), 0);
        assert_int_equal(r.organizations, 4);
        assert_int_equal(r.statements, 1);
        pb_report_fini(&r);
    }
    assert_int_equal(server_calls(t.name), 3);
    assert_int_equal(server_calls_like(t.name, "%prebuilds_configured_templates c JOIN%"), 2);
    /* the platform keeps working through the triggers, as a role of its own would */
    platform_org(&t, "prod-late", 1, orgs[5]);
    assert_int_equal(summary_mismatches(&t), 0);
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.organizations, 5);
    assert_int_equal(r.memberships_added, 1);
    pb_report_fini(&r);
    pb_store_free(&s);
    tdb_drop(&t);
}

/* ---- the configured-templates summary ---- */

/* Rows in the summary that a recount from the tables disagrees with, either way.
 * SQLite's summary is exact at every commit. PostgreSQL's is exact as the status
 * statement reads it (summary and changes log together), and again once folded. */
static long summary_mismatches(tdb *t)
{
    if (t->backend != PB_BACKEND_PG)
        return tdb_long(t, "%s", PB_TEST_SUMMARY_MISMATCHES_SQL);
    long effective = tdb_long(t, "%s", PB_TEST_EFFECTIVE_MISMATCHES_SQL);
    pb_store *s = tdb_store(t);
    fold(s);
    pb_store_free(&s);
    /* folding changes how the answer is stored, never the answer */
    assert_int_equal(tdb_long(t, "%s", PB_TEST_SUMMARY_MISMATCHES_SQL), effective);
    return effective;
}

/* Qualifying organizations as a pass sees them, on a store of its own (whose first pass
 * reads the summary through the probe form) and again on the same store (which then reads
 * it natively). */
static void assert_passes_agree(tdb *t, size_t expect)
{
    pb_store *s = tdb_store(t);
    pb_report r1, r2;
    assert_int_equal(reconcile(s, &r1), 0);
    assert_int_equal(reconcile(s, &r2), 0);
    assert_int_equal(r1.organizations, expect);
    assert_int_equal(r2.organizations, expect);
    pb_report_fini(&r1);
    pb_report_fini(&r2);
    pb_store_free(&s);
}

#define SUMMARY_OK(t, n)                                                                           \
    do {                                                                                           \
        assert_int_equal(summary_mismatches(t), 0);                                                \
        assert_passes_agree(t, n);                                                                 \
    } while (0)

static void new_id(char id[PB_UUID_LEN + 1])
{
    pb_err err;
    assert_int_equal(pb_uuid_random(id, &err), 0);
}

static void add_version(tdb *t, const char *id, const char *tpl, const char *org, const char *name)
{
    tdb_exec(t,
             "INSERT INTO template_versions (id, template_id, organization_id, name, readme,"
             " job_id, created_by, created_at, updated_at) VALUES ('%s', %s%s%s, '%s', '%s', '',"
             " '%s', '%s', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')",
             id, tpl ? "'" : "", tpl ? tpl : "NULL", tpl ? "'" : "", org, name, id, UID);
}

static void add_preset(tdb *t, const char *id, const char *ver, const char *name, int desired)
{
    char d[16];
    (void)snprintf(d, sizeof(d), "%d", desired);
    tdb_exec(t,
             "INSERT INTO template_version_presets (id, template_version_id, name,"
             " desired_instances) VALUES ('%s', '%s', '%s', %s)",
             id, ver, name, desired < 0 ? "NULL" : d);
}

/* Every kind of change the triggers must follow, one at a time, each checked against a
 * recount from the tables and against a pass that reads the tables. */
static void test_summary_follows_changes(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    bool pg = t.backend == PB_BACKEND_PG;
    pb_store *s = tdb_store(&t);
    char a[PB_UUID_LEN + 1], b[PB_UUID_LEN + 1], ta[PB_UUID_LEN + 1], tb[PB_UUID_LEN + 1];
    make_org(s, "sum-a", 2, a, ta);  /* qualifies */
    make_org(s, "sum-b", -1, b, tb); /* has a preset, none configured */
    pb_store_free(&s);
    SUMMARY_OK(&t, 1);

    char v2[PB_UUID_LEN + 1], p2[PB_UUID_LEN + 1], p3[PB_UUID_LEN + 1];
    new_id(v2);
    new_id(p2);
    new_id(p3);
    /* a second version of b's template with a configured preset: b qualifies */
    add_version(&t, v2, tb, b, "v2");
    add_preset(&t, p2, v2, "p2", 0); /* 0 counts */
    SUMMARY_OK(&t, 2);
    /* unset, set again, change the count (no change for us) */
    tdb_exec(&t, "UPDATE template_version_presets SET desired_instances = NULL WHERE id = '%s'",
             p2);
    SUMMARY_OK(&t, 1);
    tdb_exec(&t, "UPDATE template_version_presets SET desired_instances = 3 WHERE id = '%s'", p2);
    tdb_exec(&t, "UPDATE template_version_presets SET desired_instances = 4 WHERE id = '%s'", p2);
    SUMMARY_OK(&t, 2);
    /* two configured presets; deleting one keeps b, deleting both drops it */
    add_preset(&t, p3, v2, "p3", 1);
    tdb_exec(&t, "DELETE FROM template_version_presets WHERE id = '%s'", p2);
    SUMMARY_OK(&t, 2);
    tdb_exec(&t, "DELETE FROM template_version_presets WHERE id = '%s'", p3);
    SUMMARY_OK(&t, 1);
    /* a preset moved to another version, and back */
    add_preset(&t, p3, v2, "p3", 1);
    SUMMARY_OK(&t, 2);
    char v1a[PB_UUID_LEN + 1];
    tdb_text(&t, v1a, sizeof(v1a), "SELECT id FROM template_versions WHERE template_id = '%s'", ta);
    tdb_exec(&t, "UPDATE template_version_presets SET template_version_id = '%s' WHERE id = '%s'",
             v1a, p3);
    SUMMARY_OK(&t, 1);
    tdb_exec(&t, "UPDATE template_version_presets SET template_version_id = '%s' WHERE id = '%s'",
             v2, p3);
    SUMMARY_OK(&t, 2);
    /* the platform's flow: a version made before its template, attached later */
    char v3[PB_UUID_LEN + 1], p4[PB_UUID_LEN + 1], c[PB_UUID_LEN + 1], tc[PB_UUID_LEN + 1];
    new_id(v3);
    new_id(p4);
    s = tdb_store(&t);
    make_org(s, "sum-c", -1, c, tc);
    pb_store_free(&s);
    add_version(&t, v3, NULL, c, "v3");
    add_preset(&t, p4, v3, "p4", 1);
    SUMMARY_OK(&t, 2);
    tdb_exec(&t, "UPDATE template_versions SET template_id = '%s' WHERE id = '%s'", tc, v3);
    SUMMARY_OK(&t, 3);
    /* a version moved from one template to another */
    tdb_exec(&t, "UPDATE template_versions SET template_id = '%s' WHERE id = '%s'", tb, v3);
    SUMMARY_OK(&t, 2);
    /* a soft-deleted template and organization stop qualifying, and come back */
    tdb_exec(&t, "UPDATE templates SET deleted = %s WHERE id = '%s'", pg ? "true" : "1", tb);
    SUMMARY_OK(&t, 1);
    tdb_exec(&t, "UPDATE templates SET deleted = %s WHERE id = '%s'", pg ? "false" : "0", tb);
    tdb_exec(&t, "UPDATE organizations SET deleted = %s WHERE id = '%s'", pg ? "true" : "1", a);
    SUMMARY_OK(&t, 1);
    tdb_exec(&t, "UPDATE organizations SET deleted = %s WHERE id = '%s'", pg ? "false" : "0", a);
    SUMMARY_OK(&t, 2);
    /* a version deleted (on PostgreSQL its presets go with it) */
    tdb_exec(&t, "DELETE FROM template_versions WHERE id = '%s'", v2);
    SUMMARY_OK(&t, 2); /* b still has v3 */
    tdb_exec(&t, "DELETE FROM template_versions WHERE id = '%s'", v3);
    SUMMARY_OK(&t, 1);
    if (pg) {
        /* a template and an organization deleted for good: the cascades reach the summary */
        tdb_exec(&t, "DELETE FROM templates WHERE id = '%s'", ta);
        SUMMARY_OK(&t, 0);
        assert_int_equal(tdb_long(&t, "SELECT count(*) FROM prebuilds_configured_templates"), 0);
        s = tdb_store(&t);
        make_org(s, "sum-d", 1, a, ta);
        pb_store_free(&s);
        SUMMARY_OK(&t, 1);
        tdb_exec(&t, "DELETE FROM organizations WHERE id = '%s'", a);
        SUMMARY_OK(&t, 0);
    }
    /* a bulk statement touching many rows at once */
    s = tdb_store(&t);
    seed(s, 40, 0.5, 0.0);
    pb_store_free(&s);
    SUMMARY_OK(&t, pg ? 20 : 21);
    tdb_exec(&t, "UPDATE template_version_presets SET desired_instances = NULL");
    SUMMARY_OK(&t, 0);
    tdb_exec(&t, "UPDATE template_version_presets SET desired_instances = 1");
    SUMMARY_OK(&t, pg ? 42 : 43);
    tdb_drop(&t);
}

/* A summary that has gone wrong (rows lost while triggers were off, for example) is put
 * right by `init --summary`. */
static void test_summary_rebuild(void **state)
{
    (void)state;
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    seed(s, 10, 1.0, 0.0);
    if (t.backend == PB_BACKEND_PG)
        fold(s);
    tdb_exec(&t, "DELETE FROM prebuilds_configured_templates");
    assert_int_equal(summary_mismatches(&t), 10 * 2);
    pb_target tg = target();
    pb_init_opts o = {.create_user = true, .summary = true};
    pb_init_result ir;
    pb_err err;
    assert_int_equal(pb_store_init(s, &tg, &o, &ir, &err), 0);
    assert_true(ir.summary_built);
    assert_int_equal(summary_mismatches(&t), 0);
    pb_store_free(&s);
    SUMMARY_OK(&t, 10);
    /* the reinstalled triggers keep following changes */
    tdb_exec(&t, "UPDATE template_version_presets SET desired_instances = NULL");
    SUMMARY_OK(&t, 0);
    tdb_drop(&t);
}

/* PostgreSQL: a template change costs the next pass one fold (one more round trip), after
 * which a converged pass is one statement again; folding never changes the answer. */
static void test_pg_summary_fold_cost(void **state)
{
    (void)state;
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    seed(s, 20, 0.5, 0.0);
    pb_report r;
    assert_int_equal(reconcile(s, &r), 0); /* the session's first pass: the tables form */
    pb_report_fini(&r);
    assert_int_equal(reconcile(s, &r), 0); /* the summary form, nothing to fold */
    assert_int_equal(r.statements, 1);
    assert_int_equal(r.organizations, 10);
    pb_report_fini(&r);
    tdb_exec(&t, "UPDATE template_version_presets SET desired_instances = 2"
                 " WHERE desired_instances IS NOT NULL");
    assert_true(tdb_long(&t, "SELECT count(*) FROM prebuilds_summary_changes") == 0);
    tdb_exec(&t, "UPDATE template_version_presets SET desired_instances = NULL");
    assert_true(tdb_long(&t, "SELECT count(*) FROM prebuilds_summary_changes") > 0);
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.organizations, 0);
    assert_int_equal(r.statements, 5); /* status, then BEGIN, lock, fold, COMMIT */
    assert_int_equal(r.round_trips, 2);
    pb_report_fini(&r);
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM prebuilds_summary_changes"), 0);
    assert_int_equal(tdb_long(&t, "SELECT count(*) FROM prebuilds_configured_templates"), 0);
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.statements, 1);
    pb_report_fini(&r);
    tdb_exec(&t,
             "UPDATE template_version_presets SET desired_instances = 1 WHERE name = 'preset-0'");
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.organizations, 20); /* every organization has a preset-0 */
    pb_report_fini(&r);
    assert_int_equal(summary_mismatches(&t), 0);
    pb_store_free(&s);
    tdb_drop(&t);
}

/* PostgreSQL: a summary whose trigger failed once, or whose trigger is disabled, is not
 * trusted: the same statement reads the tables instead, says so, and `init --summary`
 * makes it trusted again. */
static void test_pg_summary_untrusted(void **state)
{
    (void)state;
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    seed(s, 10, 1.0, 0.0);
    pb_report r;
    assert_int_equal(reconcile(s, &r), 0);
    pb_report_fini(&r);
    pb_status_info info;
    /* a fault recorded by a trigger's exception handler */
    tdb_exec(&t, "SELECT nextval('prebuilds_summary_faults')");
    tdb_exec(&t, "DELETE FROM prebuilds_configured_templates"); /* and a summary gone wrong */
    assert_int_equal(reconcile(s, &r), 0);
    pb_store_status_info(s, &info);
    assert_true(info.summary_untrusted);
    assert_false(info.summary_used);
    assert_int_equal(r.organizations, 10); /* the tables' answer, in one statement */
    assert_int_equal(r.statements, 1);
    pb_report_fini(&r);
    pb_target tg = target();
    pb_init_opts o = {.create_user = true, .summary = true};
    pb_init_result ir;
    pb_err err;
    assert_int_equal(pb_store_init(s, &tg, &o, &ir, &err), 0);
    assert_int_equal(reconcile(s, &r), 0); /* the first pass after init probes again */
    pb_report_fini(&r);
    assert_int_equal(reconcile(s, &r), 0);
    pb_store_status_info(s, &info);
    assert_true(info.summary_used);
    assert_int_equal(r.organizations, 10);
    pb_report_fini(&r);
    /* a disabled trigger: not trusted either */
    tdb_exec(&t,
             "ALTER TABLE template_version_presets DISABLE TRIGGER prebuilds_summary_presets_upd");
    assert_int_equal(reconcile(s, &r), 0);
    pb_store_status_info(s, &info);
    assert_true(info.summary_untrusted);
    assert_int_equal(r.organizations, 10);
    pb_report_fini(&r);
    pb_store_free(&s);
    tdb_drop(&t);
}

static void pg_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* Writers at REPEATABLE READ read an old snapshot. The triggers read nothing (they only log
 * what a statement changed), so the summary stays exact whatever the writers' isolation. */
static void test_pg_summary_repeatable_read(void **state)
{
    (void)state;
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    char a[PB_UUID_LEN + 1], ta[PB_UUID_LEN + 1], b[PB_UUID_LEN + 1], tb[PB_UUID_LEN + 1];
    char c[PB_UUID_LEN + 1], tc[PB_UUID_LEN + 1], d[PB_UUID_LEN + 1], td[PB_UUID_LEN + 1];
    make_org(s, "rr-a", 1, a, ta);
    make_org(s, "rr-b", 1, b, tb);
    make_org(s, "rr-c", -1, c, tc);
    make_org(s, "rr-d", -1, d, td);
    pb_store_free(&s);
    char va[PB_UUID_LEN + 1], vb[PB_UUID_LEN + 1], vc[PB_UUID_LEN + 1], id[PB_UUID_LEN + 1];
    char sql[512];
    tdb_text(&t, va, sizeof(va), "SELECT id FROM template_versions WHERE template_id = '%s'", ta);
    tdb_text(&t, vb, sizeof(vb), "SELECT id FROM template_versions WHERE template_id = '%s'", tb);
    tdb_text(&t, vc, sizeof(vc), "SELECT id FROM template_versions WHERE template_id = '%s'", tc);
    PGconn *rr = PQconnectdb(t.url);
    assert_int_equal(PQstatus(rr), CONNECTION_OK);

    /* 1. A removal at REPEATABLE READ misses a preset committed after its snapshot: it must
     * not drop the template. */
    pg_ok(rr, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    pg_ok(rr, "SELECT 1");
    new_id(id);
    add_preset(&t, id, va, "late", 1);
    (void)snprintf(sql, sizeof(sql),
                   "DELETE FROM template_version_presets WHERE template_version_id = '%s'"
                   " AND name = 'p1'",
                   va);
    pg_ok(rr, sql);
    pg_ok(rr, "COMMIT");
    assert_int_equal(summary_mismatches(&t), 0);

    /* 2. An addition at REPEATABLE READ after another writer removed the template's row
     * (its snapshot still shows the row): the row is back. */
    pg_ok(rr, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    pg_ok(rr, "SELECT 1");
    tdb_exec(&t, "DELETE FROM template_version_presets WHERE template_version_id = '%s'", vb);
    assert_int_equal(summary_mismatches(&t), 0);
    new_id(id);
    (void)snprintf(sql, sizeof(sql),
                   "INSERT INTO template_version_presets (id, template_version_id, name,"
                   " desired_instances) VALUES ('%s', '%s', 'rr', 1)",
                   id, vb);
    pg_ok(rr, sql);
    pg_ok(rr, "COMMIT");
    assert_int_equal(summary_mismatches(&t), 0);

    /* 3. A version moved at REPEATABLE READ after a preset was configured in it: the new
     * template counts, the old one may stay counted until a recount. */
    pg_ok(rr, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    pg_ok(rr, "SELECT 1");
    tdb_exec(&t,
             "UPDATE template_version_presets SET desired_instances = 2"
             " WHERE template_version_id = '%s'",
             vc);
    (void)snprintf(sql, sizeof(sql),
                   "UPDATE template_versions SET template_id = '%s', name = 'moved'"
                   " WHERE id = '%s'",
                   td, vc);
    pg_ok(rr, sql);
    pg_ok(rr, "COMMIT");
    assert_int_equal(summary_mismatches(&t), 0);
    PQfinish(rr);

    /* `init --summary` puts any such row right. */
    s = tdb_store(&t);
    pb_target tg = target();
    pb_init_opts o = {.create_user = true, .summary = true};
    pb_init_result ir;
    pb_err err;
    assert_int_equal(pb_store_init(s, &tg, &o, &ir, &err), 0);
    pb_store_free(&s);
    SUMMARY_OK(&t, 3); /* a (late preset), b (rr), d (moved version) */
    tdb_drop(&t);
}

/* ---- least privilege (PostgreSQL) ---- */

static void test_pg_privileges(void **state)
{
    (void)state;
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    char org[PB_UUID_LEN + 1];
    make_org(s, "acme", 1, org, NULL);
    pb_store_free(&s);
    char role[64];
    (void)snprintf(role, sizeof(role), "pb_reader_%d", (int)getpid());
    (void)tdb_try(&t, "DROP ROLE IF EXISTS %s", role);
    tdb_exec(&t, "CREATE ROLE %s LOGIN", role);
    tdb_exec(&t,
             "GRANT SELECT ON users, organizations, organization_members, groups,"
             " group_members, templates, template_versions, template_version_presets,"
             " site_configs TO %s",
             role);
    char url[1200];
    (void)snprintf(url, sizeof(url), "%s user=%s", t.url, role);
    pb_dburl u;
    pb_err err;
    assert_int_equal(pb_dburl_parse(url, &u, &err), 0);
    assert_int_equal(pb_store_open(&u, 0, &s, &err), 0);
    pb_target tg = target();
    pb_report r;
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(s, &tg, NULL, &r, &err), PB_EPRIVILEGE);
    assert_non_null(strstr(err.msg, "permission denied"));
    pb_report_fini(&r);
    assert_int_equal(total_rows(&t), 0);
    /* with INSERT on exactly the three tables we write, it works */
    tdb_exec(&t, "GRANT INSERT ON organization_members, groups, group_members TO %s", role);
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(s, &tg, NULL, &r, &err), 0);
    pb_report_fini(&r);
    assert_converged(&t, org);
    pb_store_free(&s);
    pb_dburl_fini(&u);
    tdb_drop(&t);
    PGconn *adm = tdb_pg_admin();
    char sql[128];
    (void)snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", role);
    PQclear(PQexec(adm, sql));
    PQfinish(adm);
}

/* ---- PostgreSQL: the connection dies between passes ---- */

static void test_pg_reconnects(void **state)
{
    (void)state;
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    tdb t;
    tdb_create(&t, true);
    pb_store *s = tdb_store(&t);
    char org[PB_UUID_LEN + 1];
    make_org(s, "acme", 1, org, NULL);
    pb_report r;
    assert_int_equal(reconcile(s, &r), 0);
    pb_report_fini(&r);
    tdb_exec(&t,
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
             " AND pid <> pg_backend_pid()",
             t.name);
    usleep(100000);
    tdb_exec(&t, "DELETE FROM organization_members");
    /* the first attempt finds the connection dead; the retry reconnects and prepares
     * its statements again */
    assert_int_equal(reconcile(s, &r), 0);
    assert_int_equal(r.memberships_added, 1);
    pb_report_fini(&r);
    assert_converged(&t, org);
    pb_store_free(&s);
    tdb_drop(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_existing_group_keeps_quota),
        cmocka_unit_test(test_new_group_has_defaults),
        cmocka_unit_test(test_converged_pass_is_one_statement),
        cmocka_unit_test(test_drift_cost_does_not_grow),
        cmocka_unit_test(test_race_between_read_and_write),
        cmocka_unit_test(test_group_created_by_someone_else),
        cmocka_unit_test(test_org_deleted_meanwhile),
        cmocka_unit_test(test_concurrent_reconcilers),
        cmocka_unit_test(test_pg_uncommitted_group),
        cmocka_unit_test(test_missing_user_writes_nothing),
        cmocka_unit_test(test_schema_missing),
        cmocka_unit_test(test_init_is_idempotent),
        cmocka_unit_test(test_dry_run_and_filter),
        cmocka_unit_test(test_pg_production_schema),
        cmocka_unit_test(test_summary_follows_changes),
        cmocka_unit_test(test_summary_rebuild),
        cmocka_unit_test(test_pg_summary_repeatable_read),
        cmocka_unit_test(test_pg_summary_fold_cost),
        cmocka_unit_test(test_pg_summary_untrusted),
        cmocka_unit_test(test_pg_privileges),
        cmocka_unit_test(test_pg_reconnects),
    };
    return cmocka_run_group_tests_name(tdb_backend() == PB_BACKEND_PG ? "postgresql" : "sqlite",
                                       tests, NULL, NULL);
}
