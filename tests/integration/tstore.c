/* What the store's integration tests share; see tstore.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../summary_check.h"
#include "tstore.h"

pb_target target(void)
{
    pb_target t;
    pb_target_init_default(&t);
    return t;
}

/* An organization with one template, version and preset. desired < 0: the preset has no
 * desired_instances, so the organization does not qualify. */
void make_org(pb_store *s, const char *name, int64_t desired, char id[PB_UUID_LEN + 1],
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

void add_member(tdb *t, const char *org)
{
    tdb_exec(t,
             "INSERT INTO organization_members (organization_id, user_id, created_at,"
             " updated_at) VALUES ('%s', '%s', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')",
             org, UID);
}

void add_group(tdb *t, const char *org, char gid[PB_UUID_LEN + 1], int quota, const char *display)
{
    pb_err err;
    assert_int_equal(pb_uuid_random(gid, &err), 0);
    tdb_exec(t,
             "INSERT INTO groups (id, name, organization_id, display_name, quota_allowance)"
             " VALUES ('%s', '%s', '%s', '%s', %d)",
             gid, GROUP, org, display, quota);
}

void add_group_member(tdb *t, const char *gid)
{
    tdb_exec(t, "INSERT INTO group_members (user_id, group_id) VALUES ('%s', '%s')", UID, gid);
}

long n_members(tdb *t, const char *org)
{
    return tdb_long(t,
                    "SELECT count(*) FROM organization_members WHERE organization_id = '%s'"
                    " AND user_id = '%s'",
                    org, UID);
}

long n_groups(tdb *t, const char *org)
{
    return tdb_long(t, "SELECT count(*) FROM groups WHERE organization_id = '%s' AND name = '%s'",
                    org, GROUP);
}

long n_in_group(tdb *t, const char *org)
{
    return tdb_long(t,
                    "SELECT count(*) FROM group_members gm JOIN groups g ON g.id = gm.group_id"
                    " WHERE g.organization_id = '%s' AND g.name = '%s' AND gm.user_id = '%s'",
                    org, GROUP, UID);
}

void assert_converged(tdb *t, const char *org)
{
    assert_int_equal(n_members(t, org), 1);
    assert_int_equal(n_groups(t, org), 1);
    assert_int_equal(n_in_group(t, org), 1);
}

long total_rows(tdb *t)
{
    return tdb_long(t, "SELECT (SELECT count(*) FROM organization_members) +"
                       " (SELECT count(*) FROM groups) + (SELECT count(*) FROM group_members)");
}

int reconcile(pb_store *s, pb_report *r)
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
void fold(pb_store *s)
{
    pb_err err;
    assert_int_equal(pb_store_fold(s, &err), 0);
}

void seed(pb_store *s, int64_t orgs, double prebuilds, double drift)
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

/* Calls of statements whose text matches `pattern` (LIKE). */
long server_calls_like(const char *dbname, const char *pattern)
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

long server_calls(const char *dbname)
{
    return server_calls_like(dbname, "%");
}

void server_reset(void)
{
    PGconn *c = tdb_pg_admin();
    PGresult *r = PQexec(c, "SELECT pg_stat_statements_reset()");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("pg_stat_statements_reset: %s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* Rows in the summary that a recount from the tables disagrees with, either way.
 * SQLite's summary is exact at every commit. PostgreSQL's is exact as the status
 * statement reads it (summary and changes log together), and again once folded. */
long summary_mismatches(tdb *t)
{
    if (t->backend != PB_BACKEND_PG)
        return tdb_long(t, "%s", PB_TEST_SUMMARY_MISMATCHES_SQL);
    long effective = tdb_long(t, "%s", PB_TEST_EFFECTIVE_MISMATCHES_SQL);
    pb_store *s = tdb_store(t);
    fold(s);
    pb_store_free(&s);
    /* folding changes how the answer is stored, never the answer */
    assert_int_equal(tdb_long(t, "%s", PB_TEST_SUMMARY_MISMATCHES_SQL), effective);
    /* and every row folded in carries its template's organization */
    assert_int_equal(tdb_long(t, "%s", PB_TEST_ORG_MISMATCHES_SQL), 0);
    return effective;
}
