/* Integration tests of the configured-templates summary, on SQLite and PostgreSQL
 * (PB_TEST_BACKEND): it follows every kind of change the triggers must follow, is rebuilt
 * by `init --summary`, stays exact under writers at REPEATABLE READ, costs one fold after a
 * template change, and is not trusted once a trigger failed or was disabled, or when an
 * older prebuilds built it. Each check
 * compares it with a recount from the tables (summary_mismatches, in tstore.c). */
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

/* ---- the configured-templates summary ---- */

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

static int count_row(const pb_status_row *row, void *arg)
{
    (void)row;
    (*(int *)arg)++;
    return 0;
}

/* The status before any fold, with the changes still in the log: a fresh store's probe,
 * then the same store's summary form (status alone never folds). */
/* The organizations one pb_store_status reports: all of them (n 0), or of these ids (the
 * "some" forms). */
static int status_count(pb_store *s, const char *const *ids, size_t n)
{
    pb_target tg = target();
    pb_err err;
    int rows = 0;
    assert_int_equal(pb_store_status(s, &tg, ids, n, count_row, &rows, &err), 0);
    return rows;
}

static void assert_unfolded_reads(tdb *t, int expect)
{
    pb_store *s = tdb_store(t);
    assert_int_equal(status_count(s, NULL, 0), expect); /* the probe */
    assert_int_equal(status_count(s, NULL, 0), expect); /* the summary form, if trusted */
    pb_store_free(&s);
}

#define SUMMARY_OK(t, n)                                                                           \
    do {                                                                                           \
        assert_unfolded_reads(t, (int)(n));                                                        \
        assert_int_equal(summary_mismatches(t), 0);                                                \
        assert_passes_agree(t, n);                                                                 \
    } while (0)

/* `init --summary` on this store: it rebuilds the summary. */
static void rebuild_summary(pb_store *s)
{
    pb_target tg = target();
    pb_init_opts o = {.create_user = true, .summary = true};
    pb_init_result ir;
    pb_err err;
    assert_int_equal(pb_store_init(s, &tg, &o, &ir, &err), 0);
    assert_true(ir.summary_built);
}

enum { READ_SUMMARY, READ_TABLES_UNTRUSTED };

/* One pass on `s` that finds `orgs` organizations, read from the summary or, the summary
 * not trusted, from the tables in the same single statement. */
static void pass_reads(pb_store *s, size_t orgs, int from)
{
    pb_report r;
    pb_status_info info;
    assert_int_equal(reconcile(s, &r), 0);
    pb_store_status_info(s, &info);
    assert_int_equal(r.organizations, orgs);
    if (from == READ_SUMMARY) {
        assert_true(info.summary_used);
    } else {
        assert_true(info.summary_untrusted);
        assert_false(info.summary_used);
        assert_int_equal(r.statements, 1);
    }
    pb_report_fini(&r);
}

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
    fx *f = *state;
    tdb *t = &f->t;
    bool pg = t->backend == PB_BACKEND_PG;
    char a[PB_UUID_LEN + 1], b[PB_UUID_LEN + 1], ta[PB_UUID_LEN + 1], tb[PB_UUID_LEN + 1];
    make_org(f->s, "sum-a", 2, a, ta);  /* qualifies */
    make_org(f->s, "sum-b", -1, b, tb); /* has a preset, none configured */
    pb_store_free(&f->s);
    SUMMARY_OK(t, 1);

    char v2[PB_UUID_LEN + 1], p2[PB_UUID_LEN + 1], p3[PB_UUID_LEN + 1];
    new_id(v2);
    new_id(p2);
    new_id(p3);
    /* a second version of b's template with a configured preset: b qualifies */
    add_version(t, v2, tb, b, "v2");
    add_preset(t, p2, v2, "p2", 0); /* 0 counts */
    SUMMARY_OK(t, 2);
    /* unset, set again, change the count (no change for us) */
    tdb_exec(t, "UPDATE template_version_presets SET desired_instances = NULL WHERE id = '%s'", p2);
    SUMMARY_OK(t, 1);
    tdb_exec(t, "UPDATE template_version_presets SET desired_instances = 3 WHERE id = '%s'", p2);
    tdb_exec(t, "UPDATE template_version_presets SET desired_instances = 4 WHERE id = '%s'", p2);
    SUMMARY_OK(t, 2);
    /* two configured presets; deleting one keeps b, deleting both drops it */
    add_preset(t, p3, v2, "p3", 1);
    tdb_exec(t, "DELETE FROM template_version_presets WHERE id = '%s'", p2);
    SUMMARY_OK(t, 2);
    tdb_exec(t, "DELETE FROM template_version_presets WHERE id = '%s'", p3);
    SUMMARY_OK(t, 1);
    /* a preset moved to another version, and back */
    add_preset(t, p3, v2, "p3", 1);
    SUMMARY_OK(t, 2);
    char v1a[PB_UUID_LEN + 1];
    tdb_text(t, v1a, sizeof(v1a), "SELECT id FROM template_versions WHERE template_id = '%s'", ta);
    tdb_exec(t, "UPDATE template_version_presets SET template_version_id = '%s' WHERE id = '%s'",
             v1a, p3);
    SUMMARY_OK(t, 1);
    tdb_exec(t, "UPDATE template_version_presets SET template_version_id = '%s' WHERE id = '%s'",
             v2, p3);
    SUMMARY_OK(t, 2);
    /* the platform's flow: a version made before its template, attached later */
    char v3[PB_UUID_LEN + 1], p4[PB_UUID_LEN + 1], c[PB_UUID_LEN + 1], tc[PB_UUID_LEN + 1];
    new_id(v3);
    new_id(p4);
    f->s = tdb_store(t);
    make_org(f->s, "sum-c", -1, c, tc);
    pb_store_free(&f->s);
    add_version(t, v3, NULL, c, "v3");
    add_preset(t, p4, v3, "p4", 1);
    SUMMARY_OK(t, 2);
    tdb_exec(t, "UPDATE template_versions SET template_id = '%s' WHERE id = '%s'", tc, v3);
    SUMMARY_OK(t, 3);
    /* a version moved from one template to another */
    tdb_exec(t, "UPDATE template_versions SET template_id = '%s' WHERE id = '%s'", tb, v3);
    SUMMARY_OK(t, 2);
    /* a soft-deleted template and organization stop qualifying, and come back */
    tdb_exec(t, "UPDATE templates SET deleted = %s WHERE id = '%s'", pg ? "true" : "1", tb);
    SUMMARY_OK(t, 1);
    tdb_exec(t, "UPDATE templates SET deleted = %s WHERE id = '%s'", pg ? "false" : "0", tb);
    tdb_exec(t, "UPDATE organizations SET deleted = %s WHERE id = '%s'", pg ? "true" : "1", a);
    SUMMARY_OK(t, 1);
    tdb_exec(t, "UPDATE organizations SET deleted = %s WHERE id = '%s'", pg ? "false" : "0", a);
    SUMMARY_OK(t, 2);
    /* a version deleted (on PostgreSQL its presets go with it) */
    tdb_exec(t, "DELETE FROM template_versions WHERE id = '%s'", v2);
    SUMMARY_OK(t, 2); /* b still has v3 */
    tdb_exec(t, "DELETE FROM template_versions WHERE id = '%s'", v3);
    SUMMARY_OK(t, 1);
    if (pg) {
        /* a template and an organization deleted for good: the cascades reach the summary */
        tdb_exec(t, "DELETE FROM templates WHERE id = '%s'", ta);
        SUMMARY_OK(t, 0);
        assert_int_equal(tdb_long(t, "SELECT count(*) FROM prebuilds_configured_templates"), 0);
        f->s = tdb_store(t);
        make_org(f->s, "sum-d", 1, a, ta);
        pb_store_free(&f->s);
        SUMMARY_OK(t, 1);
        tdb_exec(t, "DELETE FROM organizations WHERE id = '%s'", a);
        SUMMARY_OK(t, 0);
    }
    /* a bulk statement touching many rows at once */
    f->s = tdb_store(t);
    seed(f->s, 40, 0.5, 0.0);
    pb_store_free(&f->s);
    SUMMARY_OK(t, pg ? 20 : 21);
    tdb_exec(t, "UPDATE template_version_presets SET desired_instances = NULL");
    SUMMARY_OK(t, 0);
    tdb_exec(t, "UPDATE template_version_presets SET desired_instances = 1");
    SUMMARY_OK(t, pg ? 42 : 43);
}

/* A summary that has gone wrong (rows lost while triggers were off, for example) is put
 * right by `init --summary`. */
static void test_summary_rebuild(void **state)
{
    fx *f = *state;
    tdb *t = &f->t;
    seed(f->s, 10, 1.0, 0.0);
    if (t->backend == PB_BACKEND_PG)
        fold(f->s);
    tdb_exec(t, "DELETE FROM prebuilds_configured_templates");
    assert_int_equal(summary_mismatches(t), 10 * 2);
    rebuild_summary(f->s);
    assert_int_equal(summary_mismatches(t), 0);
    pb_store_free(&f->s);
    SUMMARY_OK(t, 10);
    /* the reinstalled triggers keep following changes */
    tdb_exec(t, "UPDATE template_version_presets SET desired_instances = NULL");
    SUMMARY_OK(t, 0);
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
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    char a[PB_UUID_LEN + 1], ta[PB_UUID_LEN + 1], b[PB_UUID_LEN + 1], tb[PB_UUID_LEN + 1];
    char c[PB_UUID_LEN + 1], tc[PB_UUID_LEN + 1], d[PB_UUID_LEN + 1], td[PB_UUID_LEN + 1];
    make_org(f->s, "rr-a", 1, a, ta);
    make_org(f->s, "rr-b", 1, b, tb);
    make_org(f->s, "rr-c", -1, c, tc);
    make_org(f->s, "rr-d", -1, d, td);
    pb_store_free(&f->s);
    char va[PB_UUID_LEN + 1], vb[PB_UUID_LEN + 1], vc[PB_UUID_LEN + 1], id[PB_UUID_LEN + 1];
    char sql[512];
    tdb_text(t, va, sizeof(va), "SELECT id FROM template_versions WHERE template_id = '%s'", ta);
    tdb_text(t, vb, sizeof(vb), "SELECT id FROM template_versions WHERE template_id = '%s'", tb);
    tdb_text(t, vc, sizeof(vc), "SELECT id FROM template_versions WHERE template_id = '%s'", tc);
    PGconn *rr = PQconnectdb(t->url);
    assert_int_equal(PQstatus(rr), CONNECTION_OK);

    /* 1. A removal at REPEATABLE READ misses a preset committed after its snapshot: it must
     * not drop the template. */
    pg_ok(rr, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    pg_ok(rr, "SELECT 1");
    new_id(id);
    add_preset(t, id, va, "late", 1);
    (void)snprintf(sql, sizeof(sql),
                   "DELETE FROM template_version_presets WHERE template_version_id = '%s'"
                   " AND name = 'p1'",
                   va);
    pg_ok(rr, sql);
    pg_ok(rr, "COMMIT");
    assert_int_equal(summary_mismatches(t), 0);

    /* 2. An addition at REPEATABLE READ after another writer removed the template's row
     * (its snapshot still shows the row): the row is back. */
    pg_ok(rr, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    pg_ok(rr, "SELECT 1");
    tdb_exec(t, "DELETE FROM template_version_presets WHERE template_version_id = '%s'", vb);
    assert_int_equal(summary_mismatches(t), 0);
    new_id(id);
    (void)snprintf(sql, sizeof(sql),
                   "INSERT INTO template_version_presets (id, template_version_id, name,"
                   " desired_instances) VALUES ('%s', '%s', 'rr', 1)",
                   id, vb);
    pg_ok(rr, sql);
    pg_ok(rr, "COMMIT");
    assert_int_equal(summary_mismatches(t), 0);

    /* 3. A version moved at REPEATABLE READ after a preset was configured in it: the new
     * template counts, the old one may stay counted until a recount. */
    pg_ok(rr, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    pg_ok(rr, "SELECT 1");
    tdb_exec(t,
             "UPDATE template_version_presets SET desired_instances = 2"
             " WHERE template_version_id = '%s'",
             vc);
    (void)snprintf(sql, sizeof(sql),
                   "UPDATE template_versions SET template_id = '%s', name = 'moved'"
                   " WHERE id = '%s'",
                   td, vc);
    pg_ok(rr, sql);
    pg_ok(rr, "COMMIT");
    assert_int_equal(summary_mismatches(t), 0);
    PQfinish(rr);

    /* `init --summary` puts any such row right. */
    f->s = tdb_store(t);
    rebuild_summary(f->s);
    pb_store_free(&f->s);
    SUMMARY_OK(t, 3); /* a (late preset), b (rr), d (moved version) */
}

/* PostgreSQL: a template change costs the next pass one fold (one more round trip), after
 * which a converged pass is one statement again; folding never changes the answer. */
static void test_pg_summary_fold_cost(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    seed(f->s, 20, 0.5, 0.0);
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0); /* the session's first pass: the tables form */
    pb_report_fini(&r);
    assert_int_equal(reconcile(f->s, &r), 0); /* the summary form, nothing to fold */
    assert_int_equal(r.statements, 1);
    assert_int_equal(r.organizations, 10);
    pb_report_fini(&r);
    tdb_exec(t, "UPDATE template_version_presets SET desired_instances = 2"
                " WHERE desired_instances IS NOT NULL");
    assert_true(tdb_long(t, "SELECT count(*) FROM prebuilds_summary_changes") == 0);
    tdb_exec(t, "UPDATE template_version_presets SET desired_instances = NULL");
    assert_true(tdb_long(t, "SELECT count(*) FROM prebuilds_summary_changes") > 0);
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.organizations, 0);
    assert_int_equal(r.statements, 5); /* status, then BEGIN, lock, fold, COMMIT */
    assert_int_equal(r.round_trips, 2);
    pb_report_fini(&r);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM prebuilds_summary_changes"), 0);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM prebuilds_configured_templates"), 0);
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.statements, 1);
    pb_report_fini(&r);
    tdb_exec(t,
             "UPDATE template_version_presets SET desired_instances = 1 WHERE name = 'preset-0'");
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.organizations, 20); /* every organization has a preset-0 */
    pb_report_fini(&r);
    assert_int_equal(summary_mismatches(t), 0);
}

/* PostgreSQL: a summary whose trigger failed once, or whose trigger is disabled, is not
 * trusted: the same statement reads the tables instead, says so, and `init --summary`
 * makes it trusted again. */
static void test_pg_summary_untrusted(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    seed(f->s, 10, 1.0, 0.0);
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0);
    pb_report_fini(&r);
    /* a fault recorded by a trigger's exception handler */
    tdb_exec(t, "SELECT nextval('prebuilds_summary_faults')");
    tdb_exec(t, "DELETE FROM prebuilds_configured_templates"); /* and a summary gone wrong */
    pass_reads(f->s, 10, READ_TABLES_UNTRUSTED);
    rebuild_summary(f->s);
    pass_reads(f->s, 10, READ_SUMMARY); /* the first pass after init probes again */
    pass_reads(f->s, 10, READ_SUMMARY); /* the next one reads it natively */
    /* a disabled trigger: not trusted either */
    tdb_exec(t,
             "ALTER TABLE template_version_presets DISABLE TRIGGER prebuilds_summary_presets_upd");
    pass_reads(f->s, 10, READ_TABLES_UNTRUSTED);
}

/* A summary built by an older prebuilds has no organization per row: the status statement
 * does not read it (nor fail on it), says it is not trusted, and `init --summary` brings it
 * up to date in place. Rows an older prebuilds still folds in (a replica not yet upgraded)
 * have no organization either: theirs is looked up, in every form. */
static void test_pg_summary_older_version(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    seed(f->s, 10, 0.5, 0.0);
    pb_report r;
    assert_int_equal(reconcile(f->s, &r), 0);
    pb_report_fini(&r);
    tdb_exec(t, "ALTER TABLE prebuilds_configured_templates DROP COLUMN organization_id");
    pb_store *s = tdb_store(t);
    pass_reads(s, 5, READ_TABLES_UNTRUSTED); /* a fresh store's probe */
    pass_reads(s, 5, READ_TABLES_UNTRUSTED); /* and again: it probes every time */
    pb_store_free(&s);
    /* a store that was reading it natively fails once, as when the summary is removed
     * under it, and probes from then on */
    assert_int_equal(reconcile(f->s, &r), PB_ENOSCHEMA);
    pb_report_fini(&r);
    assert_int_equal(reconcile(f->s, &r), 0);
    assert_int_equal(r.organizations, 5);
    pb_report_fini(&r);
    rebuild_summary(f->s);
    assert_int_equal(tdb_long(t, "SELECT count(*) FROM prebuilds_configured_templates"
                                 " WHERE organization_id IS NULL"),
                     0);
    pb_store_free(&f->s);
    SUMMARY_OK(t, 5);
    f->s = tdb_store(t);
    pass_reads(f->s, 5, READ_SUMMARY); /* the probe */
    pass_reads(f->s, 5, READ_SUMMARY); /* the summary form */
    /* rows folded in by an older prebuilds */
    tdb_exec(t, "UPDATE prebuilds_configured_templates SET organization_id = NULL");
    char ids[2][PB_UUID_LEN + 1];
    tdb_text(t, ids[0], sizeof(ids[0]),
             "SELECT min(t.organization_id::text) FROM prebuilds_configured_templates c"
             " JOIN templates t ON t.id = c.template_id");
    tdb_text(t, ids[1], sizeof(ids[1]), "SELECT min(id::text) FROM organizations");
    const char *some[2] = {ids[0], ids[1]};
    long expect = tdb_long(t,
                           "SELECT count(DISTINCT t.organization_id) FROM"
                           " prebuilds_configured_templates c JOIN templates t"
                           " ON t.id = c.template_id WHERE t.organization_id IN ('%s', '%s')",
                           ids[0], ids[1]);
    s = tdb_store(t); /* a fresh store: the probe, for some and for all */
    assert_int_equal(status_count(s, some, 2), expect);
    pb_store_free(&s);
    s = tdb_store(t);
    pass_reads(s, 5, READ_SUMMARY);
    pb_store_free(&s);
    /* a store past its probe: the summary form, for all and for some */
    pass_reads(f->s, 5, READ_SUMMARY);
    assert_int_equal(status_count(f->s, some, 2), expect);
}

/* Every status row as text, in the order the store gave them. */
typedef struct rows_text {
    char buf[8192];
    size_t len;
} rows_text;

static int append_row(const pb_status_row *row, void *arg)
{
    rows_text *rt = arg;
    int n = snprintf(rt->buf + rt->len, sizeof(rt->buf) - rt->len, "%s %s %d %d %s %d\n",
                     row->org_id, row->org_name, row->has_member, row->has_group,
                     row->has_group ? row->group_id : "-", row->in_group);
    assert_true(n > 0 && (size_t)n < sizeof(rt->buf) - rt->len);
    rt->len += (size_t)n;
    return 0;
}

static void status_text(pb_store *s, rows_text *rt, bool expect_summary)
{
    pb_target tg = target();
    pb_err err;
    pb_status_info info;
    rt->len = 0;
    rt->buf[0] = '\0';
    assert_int_equal(pb_store_status(s, &tg, NULL, 0, append_row, rt, &err), 0);
    pb_store_status_info(s, &info);
    assert_int_equal(info.summary_used, expect_summary);
}

/* The probe carries the qualifying ids out of the summary's answer view as bytes, which
 * table_to_xml writes in base64, or in hex where the session says xmlbinary = hex: every
 * form gives the same rows (ids, names, facts, in order) either way, from the summary and
 * from the tables (the summary not trusted), the drifted organizations included. */
static void test_pg_status_xmlbinary(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    seed(f->s, 24, 0.5, 0.5);
    static rows_text want, got;
    for (int summary = 1; summary >= 0; summary--) {
        if (!summary)
            tdb_exec(t, "ALTER TABLE template_version_presets DISABLE TRIGGER"
                        " prebuilds_summary_presets_upd");
        tdb_exec(t, "ALTER DATABASE %s RESET xmlbinary", t->name);
        pb_store *s = tdb_store(t);
        status_text(s, &want, summary); /* the probe, base64 */
        assert_true(want.len > 0);
        status_text(s, &got, summary); /* the summary form, or the probe again */
        assert_string_equal(got.buf, want.buf);
        pb_store_free(&s);
        tdb_exec(t, "ALTER DATABASE %s SET xmlbinary = hex", t->name);
        s = tdb_store(t);
        status_text(s, &got, summary); /* the probe, hex */
        assert_string_equal(got.buf, want.buf);
        pb_store_free(&s);
    }
    tdb_exec(t, "ALTER DATABASE %s RESET xmlbinary", t->name);
}

/* The probe's plan, on this test's own connection, as EXPLAIN prints it (with ANALYZE: run),
 * with parallel query made as cheap as it goes, so that any plan that may use workers does. */
static void probe_plan(tdb *t, bool analyze, char *out, size_t len)
{
    tdb_exec(t, "SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;"
                " SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2");
    PGresult *r = PQprepare(t->pg, "probe_plan", pb__status_sql(PB_BACKEND_PG, false), 0, NULL);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    char sql[200];
    (void)snprintf(sql, sizeof(sql), "EXPLAIN (%s) EXECUTE probe_plan('%s', '%s')",
                   analyze ? "ANALYZE, TIMING off, COSTS off" : "COSTS off", UID, GROUP);
    r = PQexec(t->pg, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < PQntuples(r) && used + 1 < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s\n", PQgetvalue(r, i, 0));
    PQclear(r);
    tdb_exec(t, "DEALLOCATE probe_plan; RESET parallel_setup_cost; RESET parallel_tuple_cost;"
                " RESET min_parallel_table_scan_size; RESET max_parallel_workers_per_gather");
}

/* Whether the plan's line for the parallel scan of the presets says `what`. */
static bool presets_scan_ran(const char *plan, const char *what)
{
    const char *l = strstr(plan, "Parallel Seq Scan on template_version_presets");
    const char *end = l != NULL ? strchr(l, '\n') : NULL;
    const char *w = l != NULL ? strstr(l, what) : NULL;
    if (w == NULL || (end != NULL && w > end))
        (void)fprintf(stderr, "no '%s' in the presets scan of:\n%s", what, plan);
    return w != NULL && (end == NULL || w < end);
}

/* The probe keeps to functions that let a statement use parallel workers (query_to_xml, say,
 * would keep all of it serial), so its scan of the platform's tables is planned with
 * workers as the reference's is; with a trusted summary that scan is gated off above its
 * workers, which never start; with the summary untrusted they do, and the same rows come. */
static void test_pg_probe_parallel(void **state)
{
    if (tdb_backend() != PB_BACKEND_PG)
        skip();
    fx *f = *state;
    tdb *t = &f->t;
    seed(f->s, 40, 0.5, 0.5);
    tdb_exec(t, "ANALYZE");
    static char plan[65536];
    probe_plan(t, false, plan, sizeof(plan));
    assert_non_null(strstr(plan, "Workers Planned"));
    assert_non_null(strstr(plan, "Parallel Seq Scan on template_version_presets"));
    static rows_text want, got;
    pb_store *s = tdb_store(t);
    status_text(s, &want, true);
    pb_store_free(&s);
    probe_plan(t, true, plan, sizeof(plan));
    assert_true(presets_scan_ran(plan, "(never executed)"));
    assert_non_null(strstr(plan, "Function Scan on generate_series")); /* the summary's ids */
    tdb_exec(t, "ALTER TABLE template_version_presets DISABLE TRIGGER"
                " prebuilds_summary_presets_upd");
    probe_plan(t, true, plan, sizeof(plan));
    assert_true(presets_scan_ran(plan, "(actual rows="));
    s = tdb_store(t);
    status_text(s, &got, false);
    pb_store_free(&s);
    assert_string_equal(got.buf, want.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_summary_follows_changes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_summary_rebuild, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_summary_repeatable_read, fx_setup_pg, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_summary_fold_cost, fx_setup_pg, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_summary_untrusted, fx_setup_pg, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_summary_older_version, fx_setup_pg, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_status_xmlbinary, fx_setup_pg, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pg_probe_parallel, fx_setup_pg, fx_teardown),
    };
    const char *group = tdb_backend() == PB_BACKEND_PG ? "summary-postgresql" : "summary-sqlite";
    return fx_exit(cmocka_run_group_tests_name(group, tests, fx_group_setup, fx_group_teardown));
}
