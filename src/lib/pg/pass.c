/* PostgreSQL backend, the pass: the status statement in its two forms (a probe that works on
 * any database, and the native read of our summary of configured templates) and the
 * set-based writes, all prepared once per connection and sent through pb__pg_run_pipeline. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

/* The status statement comes in two forms, each for all organizations and for some.
 *
 * The probe form (PST_STATUS_*) works on any database: with or without our
 * configured-templates summary, readable or not. A statement cannot name a table that may
 * not exist, so it reads the platform's tables natively (they are always there: planned
 * with the statement, in parallel where the data is large) and reads our summary, and the
 * pause switch, through table_to_xml(), which only such a table's name reaches: the answer
 * view's one row (the organization ids' bytes and their count) is decoded and joined back
 * here. Everything the view runs runs in the statement's snapshot. Which branch runs is
 * decided by facts the statement reads first: the summary when this session may read it
 * and it is trusted, the tables otherwise; the other branch never starts.
 *
 * The summary form (PST_SUMMARY_*) asks the summary natively, without that detour: a
 * session runs it once a probe found the summary readable and trusted.
 *
 * Both start from what qualifies and join the membership facts to it set by set, as the
 * reference does, instead of probing organization by organization; both end with the
 * facts row (organization id NULL): col 2 whether the summary is readable, col 4 whether the
 * probe's answer came back whole (as many ids as its query counted), col 5 the prebuilds
 * user, col 6 the pause switch, col 7 the summary trusted, col 8 changes pending. */

/* The membership facts of the qualifying organizations. The three lookups are unique
 * (primary key; UNIQUE (name, organization_id); UNIQUE (user_id, group_id)): one row each. */
#define STATUS_SELECT                                                                              \
    "SELECT o.id, o.name COLLATE \"C\", om.user_id IS NOT NULL, g.id, gm.user_id IS NOT NULL,"     \
    " NULL::int, NULL::boolean, NULL::boolean, NULL::boolean"
#define LOOKUPS                                                                                    \
    " LEFT JOIN organization_members om ON om.organization_id = o.id AND om.user_id = $1::uuid"    \
    " LEFT JOIN groups g ON g.organization_id = o.id AND g.name = $2::text"                        \
    " LEFT JOIN group_members gm ON gm.group_id = g.id AND gm.user_id = $1::uuid"                  \
    " WHERE NOT o.deleted"

/* The same lookups where the planner cannot know how many organizations qualify (the probe
 * for all of them: it estimates the ids it decodes at a thousand rows, whatever they are).
 * Each lookup reads the user's own rows on its own (OFFSET 0: no join condition goes into
 * it, and its table's index led by user or by name finds them), so it is joined whole to
 * the qualifying organizations, never probed once per organization: at 25,000 of them those
 * probes (75,000, planned for the thousand) cost more than the summary's whole read. The
 * probe for some organizations keeps LOOKUPS: it knows how many it asks for. */
#define PROBE_LOOKUPS                                                                              \
    " LEFT JOIN (SELECT organization_id, user_id FROM organization_members"                        \
    " WHERE user_id = $1::uuid OFFSET 0) om ON om.organization_id = o.id"                          \
    " LEFT JOIN (SELECT id, organization_id FROM groups WHERE name = $2::text OFFSET 0) g"         \
    " ON g.organization_id = o.id"                                                                 \
    " LEFT JOIN (SELECT group_id, user_id FROM group_members WHERE user_id = $1::uuid"             \
    " OFFSET 0) gm ON gm.group_id = g.id"                                                          \
    " WHERE NOT o.deleted"

/* The prebuilds user: 0 missing, 1 soft-deleted, 2 usable. */
#define USER_STATE                                                                                 \
    "coalesce((SELECT CASE WHEN u.deleted THEN 1 ELSE 2 END FROM users u"                          \
    " WHERE u.id = $1::uuid), 0)"

/* The platform's pause switch, as the summary form reads it (the probe asks it with its
 * facts). An older platform schema may lack site_configs, so the row is read through
 * query_to_xml only when the table is there (a missing privilege is still an error: the
 * switch is never ignored silently). The value is matched, not parsed: a value that is not
 * JSON does not fail our statement. */
/* The row of the switch, as the text of a dynamic query, and how its value is matched. */
#define SWITCH_ROW "SELECT value FROM site_configs WHERE key = ''prebuilds_settings''"
#define SWITCH_ON  "'\"reconciliation_paused\"\\s*:\\s*true'"
#define PAUSED                                                                                     \
    "CASE WHEN to_regclass('site_configs') IS NULL THEN false ELSE query_to_xml('" SWITCH_ROW      \
    "', false, false, '')::text ~ " SWITCH_ON " END"

/* Which organizations qualify, from the platform's tables (R restricts the templates `t`):
 * joined up from the configured presets, as the reference does, so each table is read once
 * whatever the shape of the data (probing organization by organization scans the presets
 * once per organization: there is no index to find a version's presets). One flat join, so
 * that the DISTINCT over its organization ids is taken in each parallel worker and only
 * those few rows are gathered (deduplicating templates first made the planner gather every
 * joined row, or give up on workers, from a million presets on). */
#define TABLES_ORGS(R)                                                                             \
    "SELECT t.organization_id FROM template_version_presets p JOIN template_versions tv"           \
    " ON tv.id = p.template_version_id JOIN templates t ON t.id = tv.template_id"                  \
    " WHERE p.desired_instances IS NOT NULL AND NOT t.deleted" R

/* The summary holds the templates with a configured preset as of its last fold, each with
 * its organization; the changes log names the versions and templates written since. So a
 * template counts if it is in the summary, no change names it and it is not soft-deleted
 * (the platform soft-deletes and restores templates with an UPDATE that no trigger of ours
 * follows; the few deleted ones join the changed ones in one hashed NOT IN, where a join
 * to every template would cost a probe per configured one; none of those ids is NULL, so
 * NOT IN means what it says), or if a change names it and a recount finds a
 * configured preset now. The summary is trusted only while its five triggers fire and none
 * of them ever failed; otherwise the tables are read. Q is the quote of the text this goes
 * in. */
#define CHANGED                                                                                    \
    "changed AS MATERIALIZED (SELECT tv.template_id FROM prebuilds_summary_changes c"              \
    " JOIN template_versions tv ON tv.id = c.version_id WHERE tv.template_id IS NOT NULL"          \
    " UNION SELECT c.template_id FROM prebuilds_summary_changes c"                                 \
    " WHERE c.template_id IS NOT NULL)"
#define TRIGGERS_FIRE(Q)                                                                           \
    "(SELECT count(*) FROM pg_trigger WHERE tgrelid IN (to_regclass(" Q "template_versions" Q      \
    "), to_regclass(" Q "template_version_presets" Q ")) AND starts_with(tgname::text, " Q         \
    "prebuilds_summary_" Q ") AND tgenabled IN (" Q "O" Q ", " Q "A" Q ")) = 5"
#define PENDING "EXISTS (SELECT 1 FROM prebuilds_summary_changes)"
#define SUMMARY_CHANGED(Q)                                                                         \
    CHANGED ", f AS MATERIALIZED (SELECT (SELECT NOT is_called FROM prebuilds_summary_faults)"     \
            " AND " TRIGGERS_FIRE(Q) " AS trusted, " PENDING " AS pending)"

/* The organizations a trusted summary says qualify (R restricts `t`: the templates, and in
 * the first branch the summary's rows, which carry the organization too); then the same
 * with the tables' answer when it is not trusted. The probe's prebuilds_summary_ids_clean()
 * and prebuilds_summary_ids_pending() (src/lib/sql/pg/summary.sql) ask the same of the
 * summary in SQL functions whose text is parsed when they run: keep the three in step. */
#define SUMMARY_ROWS                                                                               \
    "SELECT t.organization_id FROM (SELECT c.template_id, coalesce(c.organization_id,"             \
    " (SELECT d.organization_id FROM templates d WHERE d.id = c.template_id)) AS organization_id"  \
    " FROM prebuilds_configured_templates c) t"
#define SUMMARY_ORGS_TRUSTED(R)                                                                    \
    SUMMARY_ROWS                                                                                   \
    " WHERE t.template_id NOT IN (SELECT template_id FROM changed UNION ALL SELECT d.id"           \
    " FROM templates d WHERE d.deleted) AND (SELECT trusted FROM f)" R                             \
    " UNION SELECT t.organization_id FROM templates t WHERE NOT t.deleted" R                       \
    " AND (SELECT trusted AND pending FROM f) AND t.id IN (SELECT tv.template_id"                  \
    " FROM template_version_presets p JOIN template_versions tv"                                   \
    " ON tv.id = p.template_version_id WHERE p.desired_instances IS NOT NULL"                      \
    " AND tv.template_id IN (SELECT template_id FROM changed))"
#define SUMMARY_ORGS(R)                                                                            \
    SUMMARY_ORGS_TRUSTED(R) " UNION " TABLES_ORGS(R) " AND NOT (SELECT trusted FROM f)"

/* ---- the probe form ---- */

/* The probe names no table that may be missing, and calls no function that would keep the
 * whole statement serial (query_to_xml is parallel-unsafe: one call anywhere in a statement
 * and none of it gets a worker). What it reads of our summary it reads through
 * table_to_xml(), which runs in the leader beside the workers: the one row of the view
 * prebuilds_summary_answer, whose function asks the platform's tables in dynamic SQL. So with
 * nothing installed (or a summary it may not use) the platform's tables are scanned right
 * here, planned with the statement when it is bound, in parallel as the reference's scan
 * is; with a summary, that scan is gated off before any worker starts and the view's answer
 * is decoded instead. */
#define ANSWER_VIEW "to_regclass('prebuilds_summary_answer')"
#define SUMMARY_READABLE                                                                           \
    "coalesce(has_table_privilege(to_regclass('prebuilds_configured_templates'), 'SELECT')"        \
    " AND has_table_privilege(to_regclass('prebuilds_summary_changes'), 'SELECT')"                 \
    " AND has_sequence_privilege(to_regclass('prebuilds_summary_faults'), 'SELECT'), false)"
/* A summary built by an older prebuilds lacks the organization of each row, or the answer
 * view (or this session may not read the view): the probe does not read it (its texts
 * would fail there) and reports it untrusted until `init --summary` rebuilds it. Rows an
 * older prebuilds folded in since have no organization either: theirs is looked up (see
 * SUMMARY_ROWS). */
#define SUMMARY_CURRENT                                                                            \
    "EXISTS (SELECT FROM pg_attribute WHERE attrelid = "                                           \
    "to_regclass('prebuilds_configured_templates')"                                                \
    " AND attname = 'organization_id' AND NOT attisdropped)"                                       \
    " AND coalesce(has_table_privilege(" ANSWER_VIEW ", 'SELECT'), false)"
#define XML_VALUE(V, tag) "split_part(split_part(" V ", '<" tag ">', 2), '</" tag ">', 1)"
/* table_to_xml writes a bytea in base64 (broken into lines, which decode skips), or in hex
 * where the session has xmlbinary = hex. */
#define XML_BYTES(V, tag)                                                                          \
    "decode(" XML_VALUE(V, tag) ", CASE current_setting('xmlbinary') WHEN 'hex' THEN 'hex'"        \
                                " ELSE 'base64' END)"
/* The pause switch's value, matched by FACT_PAUSED. Every platform schema with prebuilds
 * has site_configs, so the probe names it and reads its one row by the key's unique index
 * (planned at Bind, with the rest). Where the table is missing (an older platform schema)
 * that text cannot be parsed: the session then probes with SWITCH_XML, which looks the
 * table up first and reads the row out of the whole of it (a few rows of settings). Either
 * way a missing privilege is an error: the switch is never ignored silently. In the XML an
 * element's text has its `<` escaped, so the key cannot be faked by a value. */
#define SWITCH_NATIVE "(SELECT value FROM site_configs WHERE key = 'prebuilds_settings')"
#define SWITCH_XML                                                                                 \
    "CASE WHEN to_regclass('site_configs') IS NOT NULL THEN split_part(split_part("                \
    "table_to_xml(to_regclass('site_configs'), false, false, '')::text,"                           \
    " '<key>prebuilds_settings</key>', 2), '</row>', 1) END"

/* The catalog facts: the summary readable, current and its five triggers enabled (only
 * then is the view read), the view's answer, the switch; then all of it read. Trusted: the
 * view also says no trigger ever failed. `intact`: the ids decoded to as many as the view
 * counted. */
#define PROBE_FACTS                                                                                \
    "s AS MATERIALIZED (SELECT readable, CASE WHEN readable AND current THEN " TRIGGERS_FIRE(      \
        "'") " ELSE false END AS usable FROM (SELECT " SUMMARY_READABLE                            \
             " AS readable, " SUMMARY_CURRENT " AS current) r)"
#define PROBE_ANSWER(SW)                                                                           \
    "a AS MATERIALIZED (SELECT readable, usable, CASE WHEN usable THEN table_to_xml(" ANSWER_VIEW  \
    ", false, false, '')::text END AS x, " SW " AS sw FROM s)"
#define FACT_TRUSTED "coalesce(usable AND " XML_VALUE("x", "faulted") " = 'false', false)"
#define FACT_PENDING XML_VALUE("x", "pending") " = 'true'"
#define FACT_PAUSED  "coalesce(sw ~ " SWITCH_ON ", false)"
#define FACT_COUNT   "nullif(" XML_VALUE("x", "n") ", '')::bigint"
#define PROBE_DECODED                                                                              \
    "SELECT readable, " FACT_TRUSTED " AS trusted, " FACT_PENDING " AS pending, " FACT_PAUSED      \
    " AS paused, " XML_BYTES("x", "orgs") " AS orgs, " FACT_COUNT " AS n FROM a"
#define PROBE_READ                                                                                 \
    "f AS MATERIALIZED (SELECT readable, trusted, trusted AND coalesce(pending, false)"            \
    " AS pending, paused, orgs, CASE WHEN trusted THEN coalesce(length(orgs) = 16 * n, false)"     \
    " ELSE true END AS intact FROM (" PROBE_DECODED ") d)"
/* The ids back as uuids, each parsed once: OFFSET 0 keeps the cast out of the join's
 * condition, where the hash join would evaluate it again for every match. */
#define PROBE_IDS                                                                                  \
    "(SELECT encode(substring(f.orgs FROM i * 16 + 1 FOR 16), 'hex')::uuid AS id FROM f,"          \
    " generate_series(0, length(f.orgs) / 16 - 1) AS i OFFSET 0)"
#define PROBE_FACTS_ROW                                                                            \
    " UNION ALL SELECT NULL, NULL, readable, NULL, intact, " USER_STATE ", paused, trusted,"       \
    " pending FROM f ORDER BY 2, 1"

/* Two branches, each gated as a whole by the facts: the platform's tables unless the summary
 * is trusted (the DISTINCT taken in each worker, as TABLES_ORGS says), the summary's ids if
 * it is. R restricts the templates `t`, O the organizations `o`; L are the lookups of the
 * summary's ids. */
#define PROBE_TABLES_BRANCH(R, O)                                                                  \
    STATUS_SELECT                                                                                  \
    " FROM organizations o JOIN (SELECT DISTINCT organization_id FROM (" TABLES_ORGS(              \
        R) ") b) q(id) ON q.id = o.id" LOOKUPS O " AND NOT (SELECT trusted FROM f)"
#define PROBE_SUMMARY_BRANCH(L, O)                                                                 \
    STATUS_SELECT " FROM organizations o JOIN " PROBE_IDS " AS q ON q.id = o.id" L O               \
                  " AND (SELECT trusted FROM f)"
#define PROBE(R, L, O, SW)                                                                         \
    "WITH " PROBE_FACTS ", " PROBE_ANSWER(SW) ", " PROBE_READ " " PROBE_TABLES_BRANCH(             \
        R, O) " UNION ALL " PROBE_SUMMARY_BRANCH(L, O) PROBE_FACTS_ROW

/* ---- the summary form ---- */

#define SUMMARY(R, O)                                                                              \
    "WITH " SUMMARY_CHANGED("'") ", q AS (" SUMMARY_ORGS(                                          \
        R) ") " STATUS_SELECT " FROM organizations o JOIN q ON q.organization_id = o.id" LOOKUPS O \
           " UNION ALL SELECT NULL, NULL, true, NULL, true, " USER_STATE ", " PAUSED ","           \
           " trusted, pending FROM f ORDER BY 2, 1"

#define BY_IDS    " AND o.id = ANY ($3::uuid[])"
#define SOME_ORGS " AND t.organization_id = ANY ($3::uuid[])"

/* The writes skip everything when the user is gone or the switch went on since the read. */
/* Asked once per statement, in a CTE of its own: the pause switch is read through
 * query_to_xml, which is volatile, so as a condition of each row it ran once per row (300,001
 * times in a 100%-drift pass at 100,000 organizations, most of its 36 s). */
#define ALLOWED                                                                                    \
    " ok AS MATERIALIZED (SELECT EXISTS (SELECT 1 FROM users u WHERE u.id = $1::uuid"              \
    " AND NOT u.deleted) AND NOT (" PAUSED ") AS allowed),"
#define WRITE_ALLOWED " AND (SELECT allowed FROM ok)"

/* The plan parameter (see pb__pg_write), in binary: its entries as rows (id, kind bits). */
#define LIST(P)                                                                                    \
    "(SELECT encode(substring(d.b FROM i * 17 + 1 FOR 16), 'hex')::uuid AS id,"                    \
    " get_byte(d.b, i * 17 + 16) AS k FROM (VALUES (" P "::bytea)) AS d(b),"                       \
    " generate_series(0, length(d.b) / 17 - 1) AS i)"

/* The rows of table T (alias A) whose column C is an id of the list `x`, one index probe per
 * id: the list drives, whatever the statistics say (after a large drift they may say the
 * table is empty), never a scan of the list per row. */
#define BY_LIST(T, A, C, WHERE)                                                                    \
    " FROM x CROSS JOIN LATERAL (SELECT * FROM " T " " A " WHERE " A "." C " = x.id" WHERE         \
    " OFFSET 0) " A

const pb__pg_stmt pb__pg_stmts[PST_COUNT] = {
    [PST_STATUS_ALL] = {"pb_status_all", PROBE("", PROBE_LOOKUPS, "", SWITCH_NATIVE)},
    /* Separate statements for some organizations, so each gets its own good plan. */
    [PST_STATUS_SOME] = {"pb_status_some", PROBE(SOME_ORGS, LOOKUPS, BY_IDS, SWITCH_NATIVE)},
    [PST_STATUS_ALL_XML] = {"pb_status_all_xml", PROBE("", PROBE_LOOKUPS, "", SWITCH_XML)},
    [PST_STATUS_SOME_XML] = {"pb_status_some_xml", PROBE(SOME_ORGS, LOOKUPS, BY_IDS, SWITCH_XML)},
    [PST_SUMMARY_ALL] = {"pb_summary_all", SUMMARY("", "")},
    [PST_SUMMARY_SOME] = {"pb_summary_some", SUMMARY(SOME_ORGS, BY_IDS)},
    /* Memberships and groups in one statement. Organizations deleted since the status
     * read are skipped by the join; rows others inserted meanwhile are conflicts. */
    [PST_WRITE_ORG] =
        {"pb_write_org",
         "WITH x AS MATERIALIZED " LIST(
             "$2") "," ALLOWED " m AS (INSERT INTO organization_members"
                   " (organization_id, user_id, created_at, updated_at, roles)"
                   " SELECT o.id, $1::uuid, now(), now(), '{}'::text[]" BY_LIST(
                       "organizations", "o", "id",
                       " AND NOT o.deleted") " WHERE x.k & 1 <> 0" WRITE_ALLOWED
                                             " ORDER BY o.id ON CONFLICT DO NOTHING RETURNING "
                                             "organization_id),"
                                             " g AS (INSERT INTO groups"
                                             " (id, name, organization_id, display_name, "
                                             "avatar_url, quota_allowance)"
                                             " SELECT gen_random_uuid(), $3::text, o.id, $4::text, "
                                             "'', 0" BY_LIST(
                                                 "organizations", "o", "id",
                                                 " AND NOT o.deleted") " WHERE x.k & 2 <> "
                                                                       "0" WRITE_ALLOWED
                                                                       " ORDER BY o.id ON CONFLICT "
                                                                       "DO NOTHING RETURNING "
                                                                       "organization_id)"
                                                                       " SELECT 1, organization_id "
                                                                       "FROM m"
                                                                       " UNION ALL SELECT 2, "
                                                                       "organization_id FROM g"},
    /* A later statement, so a later snapshot: it sees the groups inserted just above and
     * any group another reconciler committed meanwhile, and joins them by name. */
    [PST_WRITE_GROUP_MEMBER] =
        {"pb_write_group_member",
         "WITH x AS " LIST(
             "$3") "," ALLOWED " gm AS (INSERT INTO group_members (user_id, group_id)"
                   " SELECT $1::uuid, g.id" BY_LIST(
                       "groups", "g", "organization_id",
                       " AND g.name = $2::text") " WHERE x.k & 4 <> 0" WRITE_ALLOWED
                                                 " ORDER BY g.organization_id"
                                                 " ON CONFLICT DO NOTHING RETURNING group_id)"
                                                 " SELECT 4, g.organization_id FROM gm"
                                                 " JOIN groups g ON g.id = gm.group_id"},
    /* Fold the changes log into the summary, under our own advisory lock (two folds never
     * interleave) and with a snapshot taken after it: every change the statement deletes is
     * counted by it; later ones stay in the log for the next fold. */
    [PST_FOLD_LOCK] = {"pb_fold_lock", "SELECT pg_advisory_xact_lock(1886545250, 1)"},
    [PST_FOLD] = {"pb_fold", "WITH gone AS (DELETE FROM prebuilds_summary_changes"
                             " RETURNING version_id, template_id),"
                             " changed AS (SELECT tv.template_id FROM gone g"
                             "  JOIN template_versions tv ON tv.id = g.version_id"
                             "  WHERE tv.template_id IS NOT NULL"
                             "  UNION SELECT template_id FROM gone WHERE template_id IS NOT NULL),"
                             " configured AS (SELECT DISTINCT tv.template_id, t.organization_id"
                             "  FROM template_version_presets p"
                             "  JOIN template_versions tv ON tv.id = p.template_version_id"
                             "  JOIN templates t ON t.id = tv.template_id"
                             "  WHERE p.desired_instances IS NOT NULL"
                             "  AND tv.template_id IN (SELECT template_id FROM changed)),"
                             " dropped AS (DELETE FROM prebuilds_configured_templates c"
                             "  WHERE c.template_id IN (SELECT template_id FROM changed)"
                             "  AND c.template_id NOT IN (SELECT template_id FROM configured)"
                             "  RETURNING 1),"
                             " added AS (INSERT INTO prebuilds_configured_templates"
                             "  (template_id, organization_id) SELECT template_id, organization_id"
                             "  FROM configured ON CONFLICT DO NOTHING RETURNING 1)"
                             " SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM dropped),"
                             " (SELECT count(*) FROM added)"},
    [PST_BEGIN] = {"pb_begin", "BEGIN"},
    [PST_COMMIT] = {"pb_commit", "COMMIT"},
};

const char *pb__pg_status_sql(bool summary)
{
    return pb__pg_stmts[summary ? PST_SUMMARY_ALL : PST_STATUS_ALL].sql;
}

/* ---- status ---- */

typedef struct status_ctx {
    pb_status_cb cb;
    void *arg;
    pb_err *err;
    pb_status_info *info;
    bool use_summary; /* the facts say: the next pass may run the summary form */
    bool any_row;     /* a row reached status_rows */
} status_ctx;

/* The status rows come in binary format: an id is its 16 bytes where its text takes 36
 * (no uuid_out on the server for each organization's and group's id, less to send, and no
 * text to parse here), a boolean one byte, the user's state an int4 in network order. Each
 * column's type is fixed by the statement (every NULL is cast), and checked once per
 * result. */
enum { ST_COLS = 9 };
static const Oid st_types[ST_COLS] = {
    2950 /* uuid */, 25 /* text */, 16 /* bool */, 2950, 16, 23 /* int4 */, 16, 16, 16};

static bool col_true(const PGresult *res, int row, int col)
{
    return PQgetlength(res, row, col) == 1 && PQgetvalue(res, row, col)[0] != 0;
}

static bool col_uuid(const PGresult *res, int row, int col, char out[PB_UUID_LEN + 1])
{
    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 16)
        return false;
    pb__uuid_format((const uint8_t *)PQgetvalue(res, row, col), out);
    return true;
}

static long col_int4(const PGresult *res, int row, int col)
{
    if (PQgetlength(res, row, col) != 4)
        return 0;
    const unsigned char *v = (const unsigned char *)PQgetvalue(res, row, col);
    return (long)(int32_t)((uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 |
                           (uint32_t)v[3]);
}

static bool status_shape_ok(const PGresult *res)
{
    if (PQnfields(res) != ST_COLS)
        return false;
    for (int c = 0; c < ST_COLS; c++)
        if (PQfformat(res, c) != 1 || PQftype(res, c) != st_types[c])
            return false;
    return true;
}

/* The facts row: the one whose organization id is NULL. */
static int status_facts(status_ctx *ctx, const PGresult *res, int r)
{
    /* Nothing is dropped on the way: an answer that did not decode to the ids its query
     * counted fails the read instead of reporting fewer organizations. */
    if (!col_true(res, r, 4))
        return pb__err_set(ctx->err, PB_EINTERNAL,
                           "read status: the probe's list of organizations did not decode whole");
    long user = col_int4(res, r, 5);
    ctx->info->user = user == 2 ? PB_USER_OK : user == 1 ? PB_USER_DELETED : PB_USER_MISSING;
    ctx->info->paused = col_true(res, r, 6);
    bool readable = col_true(res, r, 2), trusted = col_true(res, r, 7);
    ctx->info->summary_used = readable && trusted;
    ctx->info->summary_untrusted = readable && !trusted;
    ctx->info->summary_pending = readable && trusted && col_true(res, r, 8);
    ctx->use_summary = readable && trusted;
    return 0;
}

static int status_rows(const PGresult *res, int item, void *arg)
{
    (void)item;
    status_ctx *ctx = arg;
    ctx->any_row = true;
    if (!status_shape_ok(res))
        return pb__err_set(ctx->err, PB_EINTERNAL,
                           "read status: unexpected result shape (%d columns)", PQnfields(res));
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        if (PQgetisnull(res, r, 0)) {
            int rc = status_facts(ctx, res, r);
            if (rc != 0)
                return rc;
            continue;
        }
        pb_status_row row;
        memset(&row, 0, sizeof(row));
        if (!col_uuid(res, r, 0, row.org_id))
            return pb__err_set(ctx->err, PB_EINTERNAL, "read status: malformed organization id");
        row.org_name = PQgetvalue(res, r, 1);
        row.has_member = col_true(res, r, 2);
        row.has_group = !PQgetisnull(res, r, 3);
        if (row.has_group && !col_uuid(res, r, 3, row.group_id))
            return pb__err_set(ctx->err, PB_EINTERNAL, "read status: malformed group id");
        row.in_group = col_true(res, r, 4);
        int rc = ctx->cb(&row, ctx->arg);
        if (rc != 0) {
            if (ctx->err != NULL && ctx->err->msg[0] == '\0')
                (void)pb__err_set(ctx->err, rc, "status: %s", pb_strerror(rc));
            return rc;
        }
    }
    return 0;
}

int pb__pg_status(pb_store *base, const pb_target *t, const char *const *ids, size_t n_ids,
                  bool by_id, pb_status_cb cb, void *arg, pb_err *err)
{
    (void)by_id; /* the server sorts: (name, id) order costs us nothing */
    pg_store *s = (pg_store *)base;
    char *ids_arr = NULL;
    if (n_ids > 0) {
        ids_arr = pb__ids_pgarray(ids, n_ids);
        if (ids_arr == NULL)
            return pb__err_set(err, PB_ENOMEM, "status: out of memory");
    }
    bool summary = s->summary, some = n_ids > 0;
    pipe_item item = {
        .n_params = some ? 3 : 2,
        .params = {t->user_id, t->group_name, ids_arr},
        .single_row = true,
        .binary = true,
        .what = "read status",
    };
    status_ctx ctx = {.cb = cb, .arg = arg, .err = err, .info = &s->base.last};
    /* Inside a transaction (a pass under transaction pooling) a failed statement would take
     * the transaction with it: there the probe never guesses. */
    PGTransactionStatusType ts = s->conn != NULL ? PQtransactionStatus(s->conn) : PQTRANS_IDLE;
    bool native = !summary && !s->no_site_configs && ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR;
    item.stmt = summary  ? (some ? PST_SUMMARY_SOME : PST_SUMMARY_ALL)
                : native ? (some ? PST_STATUS_SOME : PST_STATUS_ALL)
                         : (some ? PST_STATUS_SOME_XML : PST_STATUS_ALL_XML);
    int rc = pb__pg_run_pipeline(s, &item, 1, status_rows, &ctx, err);
    /* A table the native probe names is missing. If it is site_configs, the form that looks
     * it up first reads the rest; if it is another, that form fails the same way and its
     * error is the one reported. Nothing reached the caller yet: the statement fails when it
     * is parsed (or, prepared before a migration, planned again). */
    if (native && rc == PB_ENOSCHEMA && !ctx.any_row) {
        s->no_site_configs = true;
        pb_err_clear(err);
        item.stmt = some ? PST_STATUS_SOME_XML : PST_STATUS_ALL_XML;
        rc = pb__pg_run_pipeline(s, &item, 1, status_rows, &ctx, err);
    }
    pb__free(ids_arr);
    if (rc == 0)
        s->summary = ctx.use_summary; /* the form of the next pass */
    else if (rc == PB_ENOSCHEMA || rc == PB_EPRIVILEGE)
        s->summary = false; /* dropped or revoked under us: the next pass probes again */
    return rc;
}

int pb__pg_fold(pb_store *base, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    pipe_item items[4] = {
        {.stmt = PST_BEGIN, .what = "fold summary changes"},
        {.stmt = PST_FOLD_LOCK, .what = "fold summary changes"},
        {.stmt = PST_FOLD, .what = "fold summary changes"},
        {.stmt = PST_COMMIT, .what = "fold summary changes"},
    };
    int rc = pb__pg_run_pipeline(s, items, 4, NULL, NULL, err);
    if (rc != 0)
        pb__pg_rollback_quietly(s);
    return rc;
}

/* ---- writes ---- */

typedef struct write_ctx {
    pb__wplan *plan;
    pb_write_result *res;
} write_ctx;

static int write_rows(const PGresult *res, int item, void *arg)
{
    (void)item;
    write_ctx *ctx = arg;
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        int kind = PQgetvalue(res, r, 0)[0] - '0'; /* 1, 2 or 4 */
        if (kind == PB_ROW_MEMBER)
            ctx->res->memberships_added++;
        else if (kind == PB_ROW_GROUP)
            ctx->res->groups_created++;
        else if (kind == PB_ROW_GROUP_MEMBER)
            ctx->res->group_memberships_added++;
        ptrdiff_t at = pb__wplan_find(ctx->plan, 0, ctx->plan->n, PQgetvalue(res, r, 1));
        if (at >= 0)
            ctx->plan->added[at] |= (uint8_t)kind;
    }
    return 0;
}

/* The plan's own array of entries is the one binary parameter (bytea) of both statements
 * (each takes the kinds it writes): per organization its id's 16 bytes and one byte of kind
 * bits, in id order. 17 bytes an organization where the id's text alone takes 37, with no
 * encoding on either side and no copy of ours; libpq copies it into its output buffer once
 * per statement, and sends that out before it queues the next (pipeline mode flushes a
 * buffer past 64 KiB), so one copy exists at a time. */
int pb__pg_write(pb_store *base, const pb_target *t, pb__wplan *p, pb_write_result *res,
                 pb_err *err)
{
    pg_store *s = (pg_store *)base;
    if (p->n > INT_MAX / PB__WENTRY)
        return pb__err_set(err, PB_ENOMEM, "apply: %zu organizations: too many", p->n);
    const char *list = (const char *)p->wire;
    int len = (int)(p->n * PB__WENTRY);
    pipe_item items[2];
    int n = 0;
    if (p->n_kind[0] > 0 || p->n_kind[1] > 0)
        items[n++] = (pipe_item){
            .stmt = PST_WRITE_ORG,
            .n_params = 4,
            .params = {t->user_id, list, t->group_name, t->group_display_name},
            .lengths = {0, len},
            .formats = {0, 1},
            .single_row = true, /* streamed: nothing grows with the drift here */
            .what = "insert organization memberships and groups",
        };
    if (p->n_kind[2] > 0)
        items[n++] = (pipe_item){
            .stmt = PST_WRITE_GROUP_MEMBER,
            .n_params = 3,
            .params = {t->user_id, t->group_name, list},
            .lengths = {0, 0, len},
            .formats = {0, 0, 1},
            .single_row = true,
            .what = "insert group memberships",
        };
    write_ctx ctx = {p, res};
    return pb__pg_run_pipeline(s, items, n, write_rows, &ctx, err);
}
