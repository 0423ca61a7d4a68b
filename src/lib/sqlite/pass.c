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
 * order) with the user's state and the pause switch. */
#define STATUS_SQL                                                                                 \
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
    " UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, " USER_STATE ", " PAUSED " ORDER BY 2, 1"

/* Inside BEGIN IMMEDIATE nothing moves under us: the writes re-check the user and the
 * switch, so a soft delete or a pause committed since the read is obeyed exactly. */
#define WRITE_ALLOWED                                                                              \
    " AND EXISTS (SELECT 1 FROM users WHERE id = ?1 AND deleted = 0) AND NOT " PAUSED

/* The organizations of the list ?4 (see id_list) whose kind bits include K. */
#define IN_LIST(K)                                                                                 \
    " IN (WITH RECURSIVE n(i) AS (SELECT 0 WHERE length(?4) > 0"                                   \
    " UNION ALL SELECT i + 1 FROM n WHERE (i + 2) * 37 <= length(?4))"                             \
    " SELECT CAST(substr(?4, i * 37 + 1, 36) AS TEXT) FROM n"                                      \
    " WHERE CAST(CAST(substr(?4, i * 37 + 37, 1) AS TEXT) AS INTEGER) & " K ")"

/* Every insert binds ?1 user id, ?2 group name, ?3 group display name, ?4 the
 * organizations (one list for the three, see id_list). */
const char *const pb__sq_stmt_sql[ST_COUNT] = {
    [ST_STATUS] = STATUS_SQL,
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

int pb__sq_status(pb_store *base, const pb_target *t, const char *const *ids, size_t n_ids,
                  pb_status_cb cb, void *arg, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    char *ids_json = NULL;
    int rc = pb__sq_stmt_get(s, ST_STATUS, &st, err);
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
    pb__sq_count_statement(s);
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = pb__sq_map_error(s, step, "read status", err);
            break;
        }
        if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
            int user = sqlite3_column_int(st, 5);
            s->base.last.user = user == 2   ? PB_USER_OK
                                : user == 1 ? PB_USER_DELETED
                                            : PB_USER_MISSING;
            s->base.last.paused = sqlite3_column_int(st, 6) != 0;
            s->base.last.summary_used = true;
            continue;
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
        rc = cb(&row, arg);
        if (rc != 0) {
            if (err != NULL && err->msg[0] == '\0')
                (void)pb__err_set(err, rc, "status: %s", pb_strerror(rc));
            break;
        }
    }
    pb__sq_stmt_done(st);
    pb__free(ids_json);
    return rc;
}

/* The three id lists as one blob of 37-byte entries: the id's text, then its kind bits as a
 * digit. The lists are sorted (the lock order) and merged, so an organization missing all
 * three rows is held once, in a tenth of what three JSON arrays of it take. */
static char *id_list(const pb_write_set *w, size_t *len)
{
    const char *const *lists[3] = {w->member_orgs, w->group_orgs, w->group_member_orgs};
    size_t n[3] = {w->n_member_orgs, w->n_group_orgs, w->n_group_member_orgs}, at[3] = {0};
    char *out = pb__malloc((n[0] + n[1] + n[2]) * 37 + 1);
    if (out == NULL)
        return NULL;
    *len = 0;
    for (;;) {
        const char *least = NULL;
        for (int k = 0; k < 3; k++)
            if (at[k] < n[k] && (least == NULL || strcmp(lists[k][at[k]], least) < 0))
                least = lists[k][at[k]];
        if (least == NULL)
            break;
        unsigned kinds = 0;
        for (int k = 0; k < 3; k++)
            if (at[k] < n[k] && strcmp(lists[k][at[k]], least) == 0) {
                kinds |= 1u << k;
                at[k]++;
            }
        memcpy(out + *len, least, 36);
        out[*len + 36] = (char)('0' + kinds);
        *len += 37;
    }
    return out;
}

/* Run one of the INSERT ... RETURNING organization_id statements. */
static int run_insert(sqlite_store *s, int id, const pb_target *t, const char *list,
                      size_t list_len, pb_row_kind kind, pb_added_cb added, void *added_arg,
                      size_t *n_added, const char *what, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = pb__sq_stmt_get(s, id, &st, err);
    if (rc != 0)
        return rc;
    (void)sqlite3_bind_text(st, 1, t->user_id, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 2, t->group_name, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 3, t->group_display_name, -1, SQLITE_STATIC);
    (void)sqlite3_bind_blob(st, 4, list, (int)list_len, SQLITE_STATIC);
    pb__sq_count_statement(s);
    for (;;) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE)
            break;
        if (step != SQLITE_ROW) {
            rc = pb__sq_map_error(s, step, what, err);
            break;
        }
        (*n_added)++;
        if (added != NULL)
            added(kind, pb__sq_col_text(st, 0), added_arg);
    }
    pb__sq_stmt_done(st);
    return rc;
}

int pb__sq_apply(pb_store *base, const pb_target *t, const pb_write_set *w, pb_added_cb added,
                 void *added_arg, pb_write_result *res, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    bool in_tx = false;
    int rc;
    size_t len = 0;
    char *list = id_list(w, &len);
    if (list == NULL || len > INT_MAX) {
        rc = pb__err_set(err, PB_ENOMEM, "apply: out of memory");
        goto out;
    }
    if ((rc = pb__sq_exec_simple(s, ST_BEGIN, "begin write transaction", err)) != 0)
        goto out;
    in_tx = true;
    if (w->n_member_orgs > 0 &&
        (rc = run_insert(s, ST_INS_MEMBER, t, list, len, PB_ROW_MEMBER, added, added_arg,
                         &res->memberships_added, "insert organization memberships", err)) != 0)
        goto out;
    if (w->n_group_orgs > 0 &&
        (rc = run_insert(s, ST_INS_GROUP, t, list, len, PB_ROW_GROUP, added, added_arg,
                         &res->groups_created, "insert groups", err)) != 0)
        goto out;
    if (w->n_group_member_orgs > 0 &&
        (rc =
             run_insert(s, ST_INS_GROUP_MEMBER, t, list, len, PB_ROW_GROUP_MEMBER, added, added_arg,
                        &res->group_memberships_added, "insert group memberships", err)) != 0)
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
