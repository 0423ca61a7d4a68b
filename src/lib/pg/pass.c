/* PostgreSQL backend, the pass: the status statement in its two forms (the platform's
 * tables, or our summary of configured templates) and the set-based writes, all prepared once
 * per connection and sent through pb__pg_run_pipeline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

/* The status columns of one organization; the last four columns are the pass facts row's. */
#define STATUS_SELECT                                                                              \
    "SELECT o.id, o.name,"                                                                         \
    " EXISTS (SELECT 1 FROM organization_members om"                                               \
    "  WHERE om.organization_id = o.id AND om.user_id = $1::uuid),"                                \
    " g.id,"                                                                                       \
    " g.id IS NOT NULL AND EXISTS (SELECT 1 FROM group_members gm"                                 \
    "  WHERE gm.group_id = g.id AND gm.user_id = $1::uuid),"                                       \
    " NULL::int, NULL::boolean, NULL::boolean, NULL::boolean"

#define STATUS_FROM                                                                                \
    " FROM organizations o"                                                                        \
    " LEFT JOIN groups g ON g.organization_id = o.id AND g.name = $2::text"                        \
    " WHERE NOT o.deleted"

/* The prebuilds user: 0 missing, 1 soft-deleted, 2 usable. */
#define USER_STATE                                                                                 \
    "coalesce((SELECT CASE WHEN u.deleted THEN 1 ELSE 2 END FROM users u"                          \
    " WHERE u.id = $1::uuid), 0)"

/* The platform's pause switch. An older platform schema may lack site_configs, and a
 * statement cannot name a table that may not exist, so the row is read through
 * query_to_xml only when the table is there (a missing privilege is still an error: the
 * switch is never ignored silently). The value is matched, not parsed: a value that is not
 * JSON does not fail our statement. */
#define PAUSED                                                                                     \
    "CASE WHEN to_regclass('site_configs') IS NULL THEN false ELSE"                                \
    " query_to_xml('SELECT value FROM site_configs WHERE key = ''prebuilds_settings''',"           \
    " false, false, '')::text ~ '\"reconciliation_paused\"\\s*:\\s*true' END"

/* Which organizations qualify, read from the production tables: what runs on a database
 * without our summary (a Coder database before `init --summary`). */
#define QUALIFY_TABLES                                                                             \
    "EXISTS (SELECT 1 FROM templates t"                                                            \
    " JOIN template_versions tv ON tv.template_id = t.id"                                          \
    " JOIN template_version_presets p ON p.template_version_id = tv.id"                            \
    " WHERE t.organization_id = o.id AND NOT t.deleted AND p.desired_instances IS NOT NULL)"

/* The tables form's facts row also says whether this session may read the summary (its
 * objects are readable); the summary form checks the rest itself, on every pass. */
#define TABLES_FACTS                                                                               \
    " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, " USER_STATE ", " PAUSED ","                  \
    " coalesce(has_table_privilege(to_regclass('prebuilds_configured_templates'), 'SELECT')"       \
    " AND has_table_privilege(to_regclass('prebuilds_summary_changes'), 'SELECT')"                 \
    " AND has_sequence_privilege(to_regclass('prebuilds_summary_faults'), 'SELECT'), false),"      \
    " false"

/* The summary form. The summary holds the templates with a configured preset as of its last
 * fold; the changes log names the versions and templates written since. So a template
 * counts if it is in the summary and no change names it, or if a change names it and a
 * recount finds a configured preset now. The summary is trusted only while its five
 * triggers fire and none of them ever failed; otherwise the tables are read, in this same
 * statement. */
#define SUMMARY_WITH                                                                               \
    "WITH changed AS MATERIALIZED ("                                                               \
    " SELECT tv.template_id FROM prebuilds_summary_changes c"                                      \
    "  JOIN template_versions tv ON tv.id = c.version_id WHERE tv.template_id IS NOT NULL"         \
    " UNION SELECT c.template_id FROM prebuilds_summary_changes c"                                 \
    "  WHERE c.template_id IS NOT NULL),"                                                          \
    " recounted AS MATERIALIZED ("                                                                 \
    " SELECT DISTINCT tv.template_id FROM template_version_presets p"                              \
    "  JOIN template_versions tv ON tv.id = p.template_version_id"                                 \
    "  WHERE p.desired_instances IS NOT NULL"                                                      \
    "  AND tv.template_id IN (SELECT template_id FROM changed)"                                    \
    "  AND EXISTS (SELECT 1 FROM prebuilds_summary_changes)),"                                     \
    " facts AS MATERIALIZED (SELECT"                                                               \
    " (SELECT NOT is_called FROM prebuilds_summary_faults)"                                        \
    " AND (SELECT count(*) FROM pg_trigger WHERE tgrelid IN"                                       \
    "  (to_regclass('template_versions'), to_regclass('template_version_presets'))"                \
    "  AND tgname LIKE 'prebuilds\\_summary\\_%' AND tgenabled IN ('O', 'A')) = 5 AS trusted,"     \
    " EXISTS (SELECT 1 FROM prebuilds_summary_changes) AS pending) "

#define QUALIFY_SUMMARY                                                                            \
    "((SELECT trusted FROM facts) AND ("                                                           \
    " EXISTS (SELECT 1 FROM prebuilds_configured_templates c JOIN templates t"                     \
    "  ON t.id = c.template_id WHERE t.organization_id = o.id AND NOT t.deleted"                   \
    "  AND c.template_id NOT IN (SELECT template_id FROM changed))"                                \
    " OR o.id IN (SELECT t.organization_id FROM templates t WHERE NOT t.deleted"                   \
    "  AND t.id IN (SELECT template_id FROM recounted)))"                                          \
    " OR NOT (SELECT trusted FROM facts) AND " QUALIFY_TABLES ")"

#define SUMMARY_FACTS                                                                              \
    " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, " USER_STATE ", " PAUSED ","                  \
    " (SELECT trusted FROM facts), (SELECT pending FROM facts)"

#define BY_IDS  " AND o.id = ANY ($3::uuid[])"
#define ORDERED " ORDER BY 2, 1" /* name, id; the facts row (NULLs) sorts last */

/* The writes skip everything when the user is gone or the switch went on since the read. */
#define WRITE_ALLOWED                                                                              \
    " AND EXISTS (SELECT 1 FROM users u WHERE u.id = $1::uuid AND NOT u.deleted)"                  \
    " AND NOT (" PAUSED ")"

const pb__pg_stmt pb__pg_stmts[PST_COUNT] = {
    [PST_STATUS_ALL] = {"pb_status_all",
                        STATUS_SELECT STATUS_FROM " AND " QUALIFY_TABLES TABLES_FACTS ORDERED},
    /* A separate statement for the filtered form, so each gets its own good plan. */
    [PST_STATUS_SOME] = {"pb_status_some", STATUS_SELECT STATUS_FROM
                         " AND " QUALIFY_TABLES BY_IDS TABLES_FACTS ORDERED},
    [PST_SUMMARY_ALL] = {"pb_summary_all", SUMMARY_WITH STATUS_SELECT STATUS_FROM
                         " AND " QUALIFY_SUMMARY SUMMARY_FACTS ORDERED},
    [PST_SUMMARY_SOME] = {"pb_summary_some", SUMMARY_WITH STATUS_SELECT STATUS_FROM
                          " AND " QUALIFY_SUMMARY BY_IDS SUMMARY_FACTS ORDERED},
    /* Memberships and groups in one statement. Organizations deleted since the status
     * read are skipped by the join; rows others inserted meanwhile are conflicts. */
    [PST_WRITE_ORG] = {"pb_write_org",
                       "WITH m AS ("
                       " INSERT INTO organization_members"
                       " (organization_id, user_id, created_at, updated_at, roles)"
                       " SELECT o.id, $1::uuid, now(), now(), '{}'::text[] FROM organizations o"
                       " WHERE o.id = ANY ($2::uuid[]) AND NOT o.deleted" WRITE_ALLOWED
                       " ORDER BY o.id ON CONFLICT DO NOTHING RETURNING organization_id),"
                       " g AS ("
                       " INSERT INTO groups"
                       " (id, name, organization_id, display_name, avatar_url, quota_allowance)"
                       " SELECT gen_random_uuid(), $3::text, o.id, $4::text, '', 0"
                       " FROM organizations o"
                       " WHERE o.id = ANY ($5::uuid[]) AND NOT o.deleted" WRITE_ALLOWED
                       " ORDER BY o.id ON CONFLICT DO NOTHING RETURNING organization_id)"
                       " SELECT 1, organization_id FROM m"
                       " UNION ALL SELECT 2, organization_id FROM g"},
    /* A later statement, so a later snapshot: it sees the groups inserted just above and
     * any group another reconciler committed meanwhile, and joins them by name. */
    [PST_WRITE_GROUP_MEMBER] =
        {"pb_write_group_member",
         "WITH gm AS ("
         " INSERT INTO group_members (user_id, group_id)"
         " SELECT $1::uuid, g.id FROM groups g"
         " WHERE g.organization_id = ANY ($3::uuid[]) AND g.name = $2::text" WRITE_ALLOWED
         " ORDER BY g.organization_id"
         " ON CONFLICT DO NOTHING RETURNING group_id)"
         " SELECT 4, g.organization_id FROM gm"
         " JOIN groups g ON g.id = gm.group_id"},
    /* Fold the changes log into the summary, under our own advisory lock (two folds never
     * interleave) and with a snapshot taken after it: every change the statement deletes is
     * counted by it; later ones stay in the log for the next fold. */
    [PST_FOLD_LOCK] = {"pb_fold_lock", "SELECT pg_advisory_xact_lock(1886545250, 1)"},
    [PST_FOLD] = {"pb_fold",
                  "WITH gone AS (DELETE FROM prebuilds_summary_changes"
                  " RETURNING version_id, template_id),"
                  " changed AS (SELECT tv.template_id FROM gone g"
                  "  JOIN template_versions tv ON tv.id = g.version_id"
                  "  WHERE tv.template_id IS NOT NULL"
                  "  UNION SELECT template_id FROM gone WHERE template_id IS NOT NULL),"
                  " configured AS (SELECT DISTINCT tv.template_id"
                  "  FROM template_version_presets p"
                  "  JOIN template_versions tv ON tv.id = p.template_version_id"
                  "  WHERE p.desired_instances IS NOT NULL"
                  "  AND tv.template_id IN (SELECT template_id FROM changed)),"
                  " dropped AS (DELETE FROM prebuilds_configured_templates c"
                  "  WHERE c.template_id IN (SELECT template_id FROM changed)"
                  "  AND c.template_id NOT IN (SELECT template_id FROM configured)"
                  "  RETURNING 1),"
                  " added AS (INSERT INTO prebuilds_configured_templates (template_id)"
                  "  SELECT template_id FROM configured ON CONFLICT DO NOTHING RETURNING 1)"
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
    bool tables_form;
    pb_status_info *info;
    bool summary_readable; /* the tables form's probe */
} status_ctx;

static bool is_true(const PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col)[0] == 't';
}

/* The facts row: the one whose organization id is NULL. */
static void status_facts(status_ctx *ctx, const PGresult *res, int r)
{
    long user = strtol(PQgetvalue(res, r, 5), NULL, 10);
    ctx->info->user = user == 2 ? PB_USER_OK : user == 1 ? PB_USER_DELETED : PB_USER_MISSING;
    ctx->info->paused = is_true(res, r, 6);
    if (ctx->tables_form) {
        ctx->summary_readable = is_true(res, r, 7);
        return;
    }
    bool trusted = is_true(res, r, 7);
    ctx->info->summary_used = trusted;
    ctx->info->summary_untrusted = !trusted;
    ctx->info->summary_pending = trusted && is_true(res, r, 8);
}

static int status_rows(const PGresult *res, int item, void *arg)
{
    (void)item;
    status_ctx *ctx = arg;
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        if (PQgetisnull(res, r, 0)) {
            status_facts(ctx, res, r);
            continue;
        }
        pb_status_row row;
        memset(&row, 0, sizeof(row));
        pb__strlcpy(row.org_id, PQgetvalue(res, r, 0), sizeof(row.org_id));
        row.org_name = PQgetvalue(res, r, 1);
        row.has_member = is_true(res, r, 2);
        row.has_group = !PQgetisnull(res, r, 3);
        if (row.has_group)
            pb__strlcpy(row.group_id, PQgetvalue(res, r, 3), sizeof(row.group_id));
        row.in_group = is_true(res, r, 4);
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
                  pb_status_cb cb, void *arg, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    char *ids_arr = NULL;
    if (n_ids > 0) {
        ids_arr = pb__ids_pgarray(ids, n_ids);
        if (ids_arr == NULL)
            return pb__err_set(err, PB_ENOMEM, "status: out of memory");
    }
    bool summary = s->summary;
    pipe_item item = {
        .stmt = summary ? (n_ids > 0 ? PST_SUMMARY_SOME : PST_SUMMARY_ALL)
                        : (n_ids > 0 ? PST_STATUS_SOME : PST_STATUS_ALL),
        .n_params = n_ids > 0 ? 3 : 2,
        .params = {t->user_id, t->group_name, ids_arr},
        .single_row = true,
        .what = "read status",
    };
    status_ctx ctx = {
        .cb = cb, .arg = arg, .err = err, .tables_form = !summary, .info = &s->base.last};
    int rc = pb__pg_run_pipeline(s, &item, 1, status_rows, &ctx, err);
    pb__free(ids_arr);
    if (!summary && rc == 0 && ctx.summary_readable)
        s->summary = true; /* from the next pass on */
    else if (summary && (rc == PB_ENOSCHEMA || rc == PB_EPRIVILEGE))
        s->summary = false; /* dropped or revoked under us: the next pass reads the tables */
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

typedef struct apply_ctx {
    pb_write_result *res;
    pb_added_cb added;
    void *added_arg;
} apply_ctx;

static int apply_rows(const PGresult *res, int item, void *arg)
{
    (void)item;
    apply_ctx *ctx = arg;
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        int kind = PQgetvalue(res, r, 0)[0] - '0'; /* 1, 2 or 4 */
        const char *org_id = PQgetvalue(res, r, 1);
        if (kind == PB_ROW_MEMBER)
            ctx->res->memberships_added++;
        else if (kind == PB_ROW_GROUP)
            ctx->res->groups_created++;
        else if (kind == PB_ROW_GROUP_MEMBER)
            ctx->res->group_memberships_added++;
        if (ctx->added != NULL)
            ctx->added((pb_row_kind)kind, org_id, ctx->added_arg);
    }
    return 0;
}

int pb__pg_apply(pb_store *base, const pb_target *t, const pb_write_set *w, pb_added_cb added,
                 void *added_arg, pb_write_result *res, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    char *member_arr = pb__ids_pgarray(w->member_orgs, w->n_member_orgs);
    char *group_arr = pb__ids_pgarray(w->group_orgs, w->n_group_orgs);
    char *gm_arr = pb__ids_pgarray(w->group_member_orgs, w->n_group_member_orgs);
    int rc;
    if (member_arr == NULL || group_arr == NULL || gm_arr == NULL) {
        rc = pb__err_set(err, PB_ENOMEM, "apply: out of memory");
        goto out;
    }
    pipe_item items[2];
    int n = 0;
    if (w->n_member_orgs > 0 || w->n_group_orgs > 0)
        items[n++] = (pipe_item){
            .stmt = PST_WRITE_ORG,
            .n_params = 5,
            .params = {t->user_id, member_arr, t->group_name, t->group_display_name, group_arr},
            .what = "insert organization memberships and groups",
        };
    if (w->n_group_member_orgs > 0)
        items[n++] = (pipe_item){
            .stmt = PST_WRITE_GROUP_MEMBER,
            .n_params = 3,
            .params = {t->user_id, t->group_name, gm_arr},
            .what = "insert group memberships",
        };
    apply_ctx ctx = {res, added, added_arg};
    rc = pb__pg_run_pipeline(s, items, n, apply_rows, &ctx, err);
out:
    pb__free(member_arr);
    pb__free(group_arr);
    pb__free(gm_arr);
    return rc;
}
