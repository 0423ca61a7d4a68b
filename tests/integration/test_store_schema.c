/* Integration tests of the store and the schema it finds, on SQLite and PostgreSQL
 * (PB_TEST_BACKEND): init and its idempotence, the refusals (no user, no schema), least
 * privilege, and a production-shaped PostgreSQL database that prebuilds did not create. */
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

/* The prebuilds user's row, as the platform writes it itself. */
static void platform_user(tdb *t)
{
    tdb_exec(t,
             "INSERT INTO users (id, email, username, name, hashed_password, created_at,"
             " updated_at, status, login_type, is_system) VALUES ('%s', 'prebuilds@system',"
             " 'prebuilds', 'Prebuilds Owner', '', now(), now(), 'active', 'none', true)",
             UID);
}

/* ---- refusals ---- */

static void test_missing_user_writes_nothing(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    char org[PB_UUID_LEN + 1];
    make_org(f->s, "acme", 1, org, NULL);
    pb_target tg = target();
    pb__strlcpy(tg.user_id, "11111111-1111-4111-8111-111111111111", sizeof(tg.user_id));
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    assert_int_equal(pb_reconcile(f->s, &tg, NULL, &r, &err), PB_ENOUSER);
    assert_non_null(strstr(err.msg, "11111111-1111-4111-8111-111111111111"));
    assert_int_equal(r.organizations_missing, 1); /* found missing, left missing */
    assert_int_equal(r.n_errors, 1);
    pb_report_fini(&r);
    assert_int_equal(total_rows(t), 0);
}

static void test_schema_missing(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    f->s = tdb_store(t);
    pb_target tg = target();
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    assert_int_equal(pb_reconcile(f->s, &tg, NULL, &r, &err), PB_ENOSCHEMA);
    assert_non_null(strstr(err.msg, "init"));
    pb_report_fini(&r);
}

static void test_init_is_idempotent(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    pb_target tg = target();
    pb_init_opts o = {.create_user = true};
    pb_init_result r;
    pb_err err;
    assert_int_equal(pb_store_init(f->s, &tg, &o, &r, &err), 0);
    assert_false(r.foreign_schema);
    assert_int_equal(r.schema_version_before, pb_schema_version_latest());
    assert_int_equal(r.schema_version_after, pb_schema_version_latest());
    assert_false(r.user_created);
    assert_true(r.user_exists);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM users"), 1);
    char buf[128];
    tdb_text(t, buf, sizeof(buf),
             "SELECT username || '|' || email || '|' || name || '|' || status || '|' ||"
             " login_type FROM users WHERE id = '%s'",
             UID);
    assert_string_equal(buf, "prebuilds|prebuilds@system|Prebuilds Owner|active|none");
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM users WHERE is_system = true"), 1);
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
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    load_sql_file(t, "production_schema.sql");
    long before = schema_fingerprint(t);
    long rows_before = tdb_long(t, "SELECT count(*) FROM users");
    f->s = tdb_store(t);
    pb_target tg = target();
    pb_init_opts o = {.create_user = true};
    pb_init_result ir;
    pb_err err;
    /* init on a foreign schema: looks, changes nothing, not even the user */
    assert_int_equal(pb_store_init(f->s, &tg, &o, &ir, &err), 0);
    assert_true(ir.foreign_schema);
    assert_false(ir.user_exists);
    assert_false(ir.user_created);
    assert_int_equal(ir.indexes_missing, 1);
    assert_int_equal(schema_fingerprint(t), before);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM users"), rows_before);

    /* The platform creates its users itself. */
    platform_user(t);
    char orgs[6][PB_UUID_LEN + 1];
    for (int i = 0; i < 6; i++) {
        char name[16];
        (void)snprintf(name, sizeof(name), "prod-%d", i);
        platform_org(t, name, i < 4 ? 2 : -1, orgs[i]);
    }
    /* the AFTER INSERT trigger on organizations did its work */
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM custom_roles"), 12);
    add_member(t, orgs[1]);
    char gid[PB_UUID_LEN + 1];
    add_group(t, orgs[2], gid, 5, "Admins choice");
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.organizations, 4);
    assert_int_equal(r.memberships_added, 3);
    assert_int_equal(r.groups_created, 3);
    assert_int_equal(r.group_memberships_added, 4);
    pb_report_fini(&r);
    for (int i = 0; i < 4; i++)
        assert_converged(t, orgs[i]);
    assert_int_equal(n_members(t, orgs[4]), 0);
    assert_int_equal(tdb_long(t, "SELECT quota_allowance FROM groups WHERE id = '%s'", gid), 5);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM groups WHERE source = 'user'"
                                 " AND quota_allowance = 0"),
                     3);
    /* the production trigger: leaving the organization also leaves its groups */
    tdb_exec(t, "DELETE FROM organization_members WHERE organization_id = '%s'", orgs[0]);
    assert_int_equal(n_in_group(t, orgs[0]), 0);
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.memberships_added, 1);
    assert_int_equal(r.group_memberships_added, 1);
    pb_report_fini(&r);
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.statements, 1);
    pb_report_fini(&r);

    /* asked for, the recommended index is added, and only that */
    o.recommended_indexes = true;
    assert_int_equal(pb_store_init(f->s, &tg, &o, &ir, &err), 0);
    assert_int_equal(ir.indexes_created, 1);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM pg_indexes WHERE indexname ="
                                 " 'template_version_presets_prebuilds_idx'"),
                     1);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM pg_tables WHERE tablename ="
                                 " 'prebuilds_schema_migrations'"),
                     0);
    assert_int_equal(pb_store_init(f->s, &tg, &o, &ir, &err), 0);
    assert_int_equal(ir.indexes_created, 0);
    assert_int_equal(ir.indexes_missing, 0);
    assert_true(ir.summary_missing);
    assert_false(ir.summary_built);
    pb_store_free(&f->s);

    /* asked for, the summary is installed; a session's first pass finds it and reads it
     * through the probe form, the next ones read it natively (seen from the server's side) */
    o.summary = true;
    f->s = tdb_store(t);
    assert_int_equal(pb_store_init(f->s, &tg, &o, &ir, &err), 0);
    assert_true(ir.summary_built);
    pb_store_free(&f->s);
    assert_int_equal(summary_mismatches(t), 0);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM prebuilds_configured_templates"), 4);
    f->s = tdb_store(t);
    server_reset();
    for (int i = 0; i < 3; i++) {
        assert_int_equal(reconcile(f->s, &r), 0);
        assert_int_equal(r.organizations, 4);
        assert_int_equal(r.statements, 1);
        pb_report_fini(&r);
    }
    assert_int_equal(server_calls(t->name), 3);
    assert_int_equal(server_calls_like(t->name, "%FROM prebuilds_configured_templates c) t%"), 2);
    /* the platform keeps working through the triggers, as a role of its own would */
    platform_org(t, "prod-late", 1, orgs[5]);
    assert_int_equal(summary_mismatches(t), 0);
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.organizations, 5);
    assert_int_equal(r.memberships_added, 1);
    pb_report_fini(&r);
}

/* The pause switch where site_configs comes and goes: the probe names the table, and a
 * session that finds it missing goes on with the form that looks it up first, which still
 * sees the switch when the table comes back; a new session names it again. */
static void switch_pass(tdb *t, pb_store *s, const char *org, bool paused, uint64_t round_trips)
{
    tdb_exec(t, "DELETE FROM organization_members WHERE organization_id = '%s' AND user_id = '%s'",
             org, UID);
    pb_report r;
    assert_int_equal(reconcile(s, &r), paused ? PB_EPAUSED : 0);
    assert_int_equal(r.paused, paused);
    assert_int_equal(r.organizations, 1);
    assert_int_equal(r.memberships_added, paused ? 0 : 1);
    assert_int_equal(r.round_trips, round_trips + (paused ? 0 : 1));
    pb_report_fini(&r);
    assert_int_equal(n_members(t, org), paused ? 0 : 1);
}

static void test_pg_switch_table(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    load_sql_file(t, "production_schema.sql");
    platform_user(t);
    char org[PB_UUID_LEN + 1], other[PB_UUID_LEN + 1];
    platform_org(t, "switch-on", 1, org);
    platform_org(t, "switch-off", -1, other);
    f->s = tdb_store(t);
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.groups_created, 1);
    pb_report_fini(&r);
    const char *on = "INSERT INTO site_configs VALUES ('prebuilds_settings',"
                     " '{\"reconciliation_paused\": true}')";
    /* the table there: one read, natively */
    switch_pass(t, f->s, org, false, 1);
    tdb_exec(t, "%s", on);
    switch_pass(t, f->s, org, true, 1);
    /* the table gone under a session that named it: the pass still reads, one round trip
     * more, and the session keeps the other form */
    tdb_exec(t, "DROP TABLE site_configs");
    switch_pass(t, f->s, org, false, 2);
    switch_pass(t, f->s, org, false, 1);
    /* back, switched on: that form sees it */
    tdb_exec(t, "CREATE TABLE site_configs (key varchar(256) NOT NULL UNIQUE, value text)");
    tdb_exec(t, "%s", on);
    switch_pass(t, f->s, org, true, 1);
    tdb_exec(t, "UPDATE site_configs SET value = '{\"reconciliation_paused\": false}'");
    switch_pass(t, f->s, org, false, 1);
    pb_store_free(&f->s);
    /* a new session without the table: its first pass reads in two round trips, the next
     * in one; with the table back, a new session names it again */
    tdb_exec(t, "DROP TABLE site_configs");
    f->s = tdb_store(t);
    switch_pass(t, f->s, org, false, 2);
    switch_pass(t, f->s, org, false, 1);
    pb_store_free(&f->s);
    tdb_exec(t, "CREATE TABLE site_configs (key varchar(256) NOT NULL UNIQUE, value text)");
    tdb_exec(t, "%s", on);
    f->s = tdb_store(t);
    server_reset();
    switch_pass(t, f->s, org, true, 1);
    assert_int_equal(server_calls_like(t->name, "%FROM site_configs WHERE key =%"), 1);
    assert_int_equal(
        server_calls_like(t->name, "%split_part(split_part(table_to_xml(to_regclass(%"), 0);
    /* another table missing is reported as such, after the other form found it missing too */
    tdb_exec(t, "ALTER TABLE group_members RENAME TO group_members_gone");
    assert_int_equal(reconcile(f->s, &r), PB_ENOSCHEMA);
    pb_report_fini(&r);
}

/* ---- least privilege (PostgreSQL) ---- */

static void test_pg_privileges(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    char org[PB_UUID_LEN + 1];
    make_org(f->s, "acme", 1, org, NULL);
    pb_store_free(&f->s);
    char role[64];
    (void)snprintf(role, sizeof(role), "pb_reader_%d", (int)getpid());
    (void)tdb_try(t, "DROP ROLE IF EXISTS %s", role);
    tdb_exec(t, "CREATE ROLE %s LOGIN", role);
    tdb_exec(t,
             "GRANT SELECT ON users, organizations, organization_members, groups,"
             " group_members, templates, template_versions, template_version_presets,"
             " site_configs TO %s",
             role);
    char url[1200];
    (void)snprintf(url, sizeof(url), "%s user=%s", t->url, role);
    pb_dburl u;
    pb_err err;
    assert_int_equal(pb_dburl_parse(url, &u, &err), 0);
    assert_int_equal(pb_store_open(&u, 0, &f->s, &err), 0);
    pb_target tg = target();
    pb_report r;
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(f->s, &tg, NULL, &r, &err), PB_EPRIVILEGE);
    assert_non_null(strstr(err.msg, "permission denied"));
    pb_report_fini(&r);
    assert_int_equal(total_rows(t), 0);
    /* with INSERT on exactly the three tables we write, it works */
    tdb_exec(t, "GRANT INSERT ON organization_members, groups, group_members TO %s", role);
    pb_report_init(&r);
    assert_int_equal(pb_reconcile(f->s, &tg, NULL, &r, &err), 0);
    pb_report_fini(&r);
    assert_converged(t, org);
    pb_store_free(&f->s);
    pb_dburl_fini(&u);
    tdb_drop(t);
    PGconn *adm = tdb_pg_admin();
    char sql[128];
    (void)snprintf(sql, sizeof(sql), "DROP ROLE IF EXISTS %s", role);
    PQclear(PQexec(adm, sql));
    PQfinish(adm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_missing_user_writes_nothing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_schema_missing, fx_setup_bare, fx_teardown),
        cmocka_unit_test_setup_teardown(test_init_is_idempotent, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_production_schema, fx_setup_pg_bare, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_switch_table, fx_setup_pg_bare, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_privileges, fx_setup_pg, fx_teardown),
    };
    const char *group = tdb_backend() == PB_BACKEND_PG ? "schema-postgresql" : "schema-sqlite";
    return fx_exit(cmocka_run_group_tests_name(group, tests, fx_group_setup, fx_group_teardown));
}
