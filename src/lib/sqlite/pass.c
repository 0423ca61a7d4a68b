/* SQLite backend, the pass: the status statement (always the summary form: our schema
 * always has it) and the writes, three INSERT ... SELECT inside BEGIN IMMEDIATE. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sq.h"

/* The prebuilds user (0 missing, 1 soft-deleted, 2 usable) and the pause switch. */
#define USER_STATE                                                                                 \
    "coalesce((SELECT CASE WHEN deleted THEN 1 ELSE 2 END FROM users WHERE id = ?1), 0)"
#define PAUSED                                                                                     \
    "coalesce((SELECT CASE WHEN json_valid(value)"                                                 \
    " THEN json_extract(value, '$.reconciliation_paused') IS 1 ELSE 0 END"                         \
    " FROM site_configs WHERE key = 'prebuilds_settings'), 0)"

/* One row per qualifying organization, then one facts row (its id NULL: first in SQLite's
 * order) with the user's state and the pause switch. ORDER is (name, id) for
 * pb_store_status; a pass's plan takes the rows by id, which the primary key gives without
 * a sorter (one would hold up to the page cache's size of rows while the plan grows). */
#define STATUS_SQL(ORDER)                                                                          \
    "SELECT o.id, o.name,"                                                                         \
    " EXISTS (SELECT 1 FROM organization_members om"                                               \
    "  WHERE om.organization_id = o.id AND om.user_id = ?1),"                                      \
    " g.id,"                                                                                       \
    " g.id IS NOT NULL AND EXISTS (SELECT 1 FROM group_members gm"                                 \
    "  WHERE gm.group_id = g.id AND gm.user_id = ?1),"                                             \
    " NULL, NULL"                                                                                  \
    " FROM organizations o"                                                                        \
    " LEFT JOIN groups g ON g.organization_id = o.id AND g.name = ?2"                              \
    " WHERE o.deleted = 0"                                                                         \
    " AND (?3 IS NULL OR o.id IN (SELECT value FROM json_each(?3)))"                               \
    " AND EXISTS (SELECT 1 FROM prebuilds_configured_templates c"                                  \
    "  JOIN templates t ON t.id = c.template_id"                                                   \
    "  WHERE t.organization_id = o.id AND t.deleted = 0)"                                          \
    " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, " USER_STATE ", " PAUSED " ORDER BY " ORDER

/* Inside BEGIN IMMEDIATE nothing moves under us: the writes re-check the user and the
 * switch, so a soft delete or a pause committed since the read is obeyed exactly. */
#define WRITE_ALLOWED                                                                              \
    " AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND deleted = 0) AND NOT " PAUSED

/* The organizations of the list ?4 (see plan_list) whose kind bits include K. */
#define IN_LIST(K)                                                                                 \
    " IN (WITH RECURSIVE n(i) AS (SELECT 0 WHERE length(?4) > 0"                                   \
    " UNION ALL SELECT i + 1 FROM n WHERE (i + 2) * 37 <= length(?4))"                             \
    " SELECT CAST(substr(?4, i * 37 + 1, 36) AS TEXT) FROM n"                                      \
    " WHERE CAST(CAST(substr(?4, i * 37 + 37, 1) AS TEXT) AS INTEGER) & " K ")"

/* Every insert binds ?1 user id, ?2 group name, ?3 group display name, ?4 the
 * planned organizations (one list for the three, see plan_list). */
const char *const pb__sq_stmt_sql[ST_COUNT] = {
    [ST_STATUS] = STATUS_SQL("2, 1"),
    [ST_STATUS_BY_ID] = STATUS_SQL("1"),
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    /* Only live organizations: one deleted since the status read is skipped, not an error. */
    [ST_INS_MEMBER] = "INSERT INTO organization_members"
                      " (organization_id, user_id, created_at, updated_at, roles)"
                      " SELECT o.id, ?1, " SQL_NOW ", " SQL_NOW ", '[]' FROM organizations o"
                      " WHERE o.id" IN_LIST(
                          "1") " AND o.deleted = 0" WRITE_ALLOWED
                               " ORDER BY o.id ON CONFLICT DO NOTHING RETURNING organization_id",
    [ST_INS_GROUP] = "INSERT INTO groups"
                     " (id, name, organization_id, display_name, avatar_url, quota_allowance,"
                     " source)"
                     " SELECT " SQL_UUID4 ", ?2, o.id, ?3, '', 0, 'user' FROM organizations o"
                     " WHERE o.id" IN_LIST(
                         "2") " AND o.deleted = 0" WRITE_ALLOWED
                              " ORDER BY o.id ON CONFLICT DO NOTHING RETURNING organization_id",
    /* The group is looked up by name here, after the insert above: whoever created it,
     * this finds it. */
    [ST_INS_GROUP_MEMBER] =
        "INSERT INTO group_members (user_id, group_id)"
        " SELECT ?1, g.id FROM groups g"
        " WHERE g.organization_id" IN_LIST(
            "4") " AND g.name = ?2" WRITE_ALLOWED " ORDER BY g.organization_id"
                 " ON CONFLICT DO NOTHING"
                 " RETURNING (SELECT organization_id FROM groups WHERE id = group_id)",
    /* Changes when another connection commits; reads the file header, no table. */
    [ST_DATA_VERSION] = "PRAGMA data_version",
};

const char *pb__sq_status_sql(void)
{
    return pb__sq_stmt_sql[ST_STATUS];
}

typedef struct status_ctx {
    sqlite_store *s;
    pb_status_cb cb;
    void *arg;
    pb_err *err;
} status_ctx;

/* One row of the status statement: the facts row (organization id NULL) into the store's
 * last facts, any other to the caller. */
static int status_row(sqlite3_stmt *st, void *arg)
{
    status_ctx *c = arg;
    if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
        int user = sqlite3_column_int(st, 5);
        c->s->base.last.user = user == 2   ? PB_USER_OK
                               : user == 1 ? PB_USER_DELETED
                                           : PB_USER_MISSING;
        c->s->base.last.paused = sqlite3_column_int(st, 6) != 0;
        c->s->base.last.summary_used = true;
        return 0;
    }
    pb_status_row row;
    memset(&row, 0, sizeof(row));
    pb__strlcpy(row.org_id, pb__sq_col_text(st, 0), sizeof(row.org_id));
    row.org_name = pb__sq_col_text(st, 1);
    row.has_member = sqlite3_column_int(st, 2) != 0;
    row.has_group = sqlite3_column_type(st, 3) != SQLITE_NULL;
    if (row.has_group)
        pb__strlcpy(row.group_id, pb__sq_col_text(st, 3), sizeof(row.group_id));
    row.in_group = sqlite3_column_int(st, 4) != 0;
    int rc = c->cb(&row, c->arg);
    if (rc != 0 && c->err != NULL && c->err->msg[0] == '\0')
        (void)pb__err_set(c->err, rc, "status: %s", pb_strerror(rc));
    return rc;
}

int pb__sq_status(pb_store *base, const pb_target *t, const char *const *ids, size_t n_ids,
                  bool by_id, pb_status_cb cb, void *arg, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    char *ids_json = NULL;
    int rc = pb__sq_stmt_get(s, by_id ? ST_STATUS_BY_ID : ST_STATUS, &st, err);
    if (rc != 0)
        return rc;
    if (n_ids > 0) {
        ids_json = pb__ids_json(ids, n_ids);
        if (ids_json == NULL)
            return pb__err_set(err, PB_ENOMEM, "status: out of memory");
    }
    (void)sqlite3_bind_text(st, 1, t->user_id, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 2, t->group_name, -1, SQLITE_STATIC);
    if (ids_json != NULL)
        (void)sqlite3_bind_text(st, 3, ids_json, -1, SQLITE_STATIC);
    else
        (void)sqlite3_bind_null(st, 3);
    status_ctx c = {s, cb, arg, err};
    rc = pb__sq_each_row(s, st, status_row, &c, "read status", err);
    pb__sq_stmt_done(st);
    pb__free(ids_json);
    return rc;
}

/* The cached statement `id`, prepared on first use and reset/cleared for reuse. */
int pb__sq_stmt_get(sqlite_store *s, int id, sqlite3_stmt **out, pb_err *err)
{
    if (s->stmts[id] == NULL) {
        int rc = sqlite3_prepare_v3(s->db, pb__sq_stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                    &s->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            rc = pb__sq_map_error(s, rc, "prepare statement", err);
            return rc == PB_ENOSCHEMA ? pb__sq_explain_missing(s, err) : rc;
        }
    }
    *out = s->stmts[id];
    return 0;
}

void pb__sq_stmt_done(sqlite3_stmt *st)
{
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

/* Run a statement that returns no rows we need. */
int pb__sq_exec_simple(sqlite_store *s, int id, const char *what, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = pb__sq_stmt_get(s, id, &st, err);
    if (rc != 0)
        return rc;
    pb__sq_count_statement(s);
    rc = sqlite3_step(st);
    pb__sq_stmt_done(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return pb__sq_map_error(s, rc, what, err);
    return 0;
}

/* The plan as one blob of 37-byte entries: the id's text, then its kind bits as a digit.
 * The writes bind it whole: a fixed number of statements whatever the drift. Writing in
 * chunks would bound what the statements hold (the list, the index SQLite builds over it,
 * the rows RETURNING gathers): at 100,000 drifted organizations, chunks of 1,024 peaked at
 * 16.5 MiB against 25.8 MiB whole, for 297 statements instead of 6. */
static size_t plan_list(const pb__wplan *p, char *out)
{
    size_t len = 0;
    for (size_t i = 0; i < p->n; i++) {
        pb__uuid_format(pb__wplan_id(p, i), out + len);
        out[len + 36] = (char)('0' + pb__wplan_kinds(p, i));
        len += 37;
    }
    return len;
}

typedef struct insert_ctx {
    pb__wplan *plan;
    pb_row_kind kind;
    size_t *n_added;
} insert_ctx;

/* A row an insert returned: counted, and marked added in its plan entry. */
static int inserted_row(sqlite3_stmt *st, void *arg)
{
    const insert_ctx *ic = arg;
    (*ic->n_added)++;
    ptrdiff_t at = pb__wplan_find(ic->plan, 0, ic->plan->n, pb__sq_col_text(st, 0));
    if (at >= 0)
        ic->plan->added[at] |= (uint8_t)ic->kind;
    return 0;
}

/* Run one of the INSERT ... RETURNING organization_id statements over the plan's list. */
static int run_insert(sqlite_store *s, int id, const pb_target *t, pb__wplan *p, const char *list,
                      size_t len, pb_row_kind kind, size_t *n_added, const char *what, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = pb__sq_stmt_get(s, id, &st, err);
    if (rc != 0)
        return rc;
    (void)sqlite3_bind_text(st, 1, t->user_id, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 2, t->group_name, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 3, t->group_display_name, -1, SQLITE_STATIC);
    (void)sqlite3_bind_blob(st, 4, list, (int)len, SQLITE_STATIC);
    insert_ctx ic = {p, kind, n_added};
    rc = pb__sq_each_row(s, st, inserted_row, &ic, what, err);
    pb__sq_stmt_done(st);
    return rc;
}

int pb__sq_write(pb_store *base, const pb_target *t, pb__wplan *p, pb_write_result *res,
                 pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    bool in_tx = false;
    int rc;
    char *list = pb__malloc(p->n * 37 + 1);
    if (list == NULL) {
        rc = pb__err_set(err, PB_ENOMEM, "apply: out of memory");
        goto out;
    }
    if ((rc = pb__sq_exec_simple(s, ST_BEGIN, "begin write transaction", err)) != 0)
        goto out;
    in_tx = true;
    /* The three inserts in id order; the groups exist before the group memberships look
     * them up. */
    size_t len = plan_list(p, list);
    if (p->n_kind[0] > 0)
        rc = run_insert(s, ST_INS_MEMBER, t, p, list, len, PB_ROW_MEMBER, &res->memberships_added,
                        "insert organization memberships", err);
    if (rc == 0 && p->n_kind[1] > 0)
        rc = run_insert(s, ST_INS_GROUP, t, p, list, len, PB_ROW_GROUP, &res->groups_created,
                        "insert groups", err);
    if (rc == 0 && p->n_kind[2] > 0)
        rc = run_insert(s, ST_INS_GROUP_MEMBER, t, p, list, len, PB_ROW_GROUP_MEMBER,
                        &res->group_memberships_added, "insert group memberships", err);
    if (rc != 0)
        goto out;
    if ((rc = pb__sq_exec_simple(s, ST_COMMIT, "commit write transaction", err)) != 0)
        goto out;
    in_tx = false;
out:
    if (in_tx && !sqlite3_get_autocommit(s->db)) {
        pb_err ignored;
        (void)pb__sq_exec_simple(s, ST_ROLLBACK, "rollback", &ignored);
    }
    if (rc != 0)
        memset(res, 0, sizeof(*res)); /* rolled back: nothing was added */
    pb__free(list);
    return rc;
}
