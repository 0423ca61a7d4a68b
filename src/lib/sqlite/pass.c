/* SQLite backend, the pass: the status statement (always the summary form: our schema
 * always has it) and the writes inside BEGIN IMMEDIATE, per kind of row a read of the rows
 * missing and the INSERT ... SELECT of those, then the names of what was added. */
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

/* The writes read the plan through prebuilds_plan(?4) (entries.c), first in FROM and
 * then CROSS or LEFT JOIN, so it is the outer loop: the entries one at a time in the
 * plan's order (by id, the lock order), nothing gathered, no sorter. */
#define PLAN " FROM prebuilds_plan(?4) e"

/* Each kind is read, then inserted, under the write lock: the read marks in
 * pb__wplan.added the entries whose row is missing, and the insert takes exactly those.
 * Nothing else writes until our COMMIT, so the insert adds every row the read found
 * (its count is compared), and needs no check of its own: the organization's id is the
 * entry's. Memberships and groups for live organizations only (one deleted since the
 * status read is skipped, not an error); nothing while the user is unusable or the
 * switch is on. */
#define MISSING(FROM_WHERE, ROW)                                                                   \
    "SELECT e.i" PLAN FROM_WHERE WRITE_ALLOWED " AND NOT EXISTS (SELECT 1 FROM " ROW ")"
/* The group is looked up by name, after the group insert: whoever created it, this finds
 * it. */
#define IN_GROUP " CROSS JOIN groups g ON g.organization_id = e.id AND g.name = ?2"

/* Every write binds ?1 user id, ?2 group name, ?3 group display name, ?4 the plan. */
const char *const pb__sq_stmt_sql[ST_COUNT] = {
    [ST_STATUS] = STATUS_SQL("2, 1"),
    [ST_STATUS_BY_ID] = STATUS_SQL("1"),
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_MISSING_MEMBER] = MISSING(" CROSS JOIN organizations o ON o.id = e.id"
                                  " WHERE e.kinds & 1 AND o.deleted = 0",
                                  "organization_members x WHERE x.organization_id = o.id"
                                  " AND x.user_id = ?1"),
    [ST_INS_MEMBER] = "INSERT INTO organization_members"
                      " (organization_id, user_id, created_at, updated_at, roles)"
                      " SELECT e.id, ?1, " SQL_NOW ", " SQL_NOW ", '[]'" PLAN
                      " WHERE e.added & 1 ON CONFLICT DO NOTHING",
    [ST_MISSING_GROUP] = MISSING(" CROSS JOIN organizations o ON o.id = e.id"
                                 " WHERE e.kinds & 2 AND o.deleted = 0",
                                 "groups x WHERE x.organization_id = o.id AND x.name = ?2"),
    [ST_INS_GROUP] = "INSERT INTO groups"
                     " (id, name, organization_id, display_name, avatar_url, quota_allowance,"
                     " source)"
                     " SELECT " SQL_UUID4 ", ?2, e.id, ?3, '', 0, 'user'" PLAN
                     " WHERE e.added & 2 ON CONFLICT DO NOTHING",
    [ST_MISSING_GROUP_MEMBER] =
        MISSING(IN_GROUP " WHERE e.kinds & 4", "group_members x WHERE x.group_id = g.id"
                                               " AND x.user_id = ?1"),
    [ST_INS_GROUP_MEMBER] =
        "INSERT INTO group_members (user_id, group_id)"
        " SELECT ?1, g.id" PLAN IN_GROUP " WHERE e.added & 4 ON CONFLICT DO NOTHING",
    /* After the COMMIT: the names of the organizations of the rows added, kind by kind
     * (the outer loop, k 1, 2, 4), each in the plan's order. */
    [ST_ADDED_NAMES] = "SELECT k.k, e.i, o.name FROM (SELECT 1 AS k UNION ALL SELECT 2"
                       " UNION ALL SELECT 4) k"
                       " CROSS JOIN prebuilds_plan(?4) e"
                       " LEFT JOIN organizations o ON o.id = e.id WHERE e.added & k.k",
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

/* The writes read the plan in place (prebuilds_plan): a fixed number of statements
 * whatever the drift, and nothing held for them but the plan. Measured at 100,000
 * drifted organizations (300,000 rows), kernel peak RSS of `prebuilds reconcile`, of
 * which about 9 MiB are the shared libraries:
 * - the plan as one text list bound whole, read through IN (...) (an index of the list
 *   built per insert, 3.6 MB), inserts with RETURNING (SQLite gathers every returned row
 *   before the first step, 1.8 MB), the list itself (3.7 MB) and the plan's names
 *   (1.8 MB + 0.4 MB of offsets): 25.3-25.9 MiB, 6 statements;
 * - the same in chunks of 1,024 organizations: 16.5 MiB, but 297 statements;
 * - now, per kind a read of the rows missing (into pb__wplan.added) then the insert of
 *   those without RETURNING, and the names read back after the COMMIT
 *   (pb__sq_added_names): 13.6-13.9 MiB (heap peak 4.6 MiB: the plan's ids, 2.2 MiB of
 *   capacity, and the page cache, 2.0 MiB), 10 statements (status, BEGIN, read and
 *   insert for each of the three kinds, COMMIT, the names; 9 without an `added`
 *   callback), about 10% more CPU than the first (each row is looked up by the read
 *   and by the names read). */

typedef struct missing_ctx {
    pb__wplan *plan;
    uint8_t kind;
    size_t n;
} missing_ctx;

static int missing_row(sqlite3_stmt *st, void *arg)
{
    missing_ctx *c = arg;
    sqlite3_int64 i = sqlite3_column_int64(st, 0);
    if (i < 0 || (size_t)i >= c->plan->n || (c->plan->added[i] & c->kind))
        return 0;
    c->plan->added[i] |= c->kind;
    c->n++;
    return 0;
}

static void bind_target(sqlite3_stmt *st, const pb_target *t, pb__wplan *p)
{
    (void)sqlite3_bind_text(st, 1, t->user_id, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 2, t->group_name, -1, SQLITE_STATIC);
    (void)sqlite3_bind_text(st, 3, t->group_display_name, -1, SQLITE_STATIC);
    (void)sqlite3_bind_pointer(st, 4, p, PB__SQ_PLAN_PTR, NULL);
}

/* One kind: the read of the rows missing (marked in p->added), then their insert, which
 * must add as many. */
static int write_kind(sqlite_store *s, int read_id, int insert_id, const pb_target *t, pb__wplan *p,
                      uint8_t kind, size_t *n_added, const char *what, pb_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = pb__sq_stmt_get(s, read_id, &st, err);
    if (rc != 0)
        return rc;
    bind_target(st, t, p);
    missing_ctx c = {p, kind, 0};
    rc = pb__sq_each_row(s, st, missing_row, &c, what, err);
    pb__sq_stmt_done(st);
    if (rc != 0 || (rc = pb__sq_stmt_get(s, insert_id, &st, err)) != 0)
        return rc;
    bind_target(st, t, p);
    pb__sq_count_statement(s);
    int step = sqlite3_step(st);
    if (step != SQLITE_DONE) {
        rc = pb__sq_map_error(s, step, what, err);
    } else if ((size_t)sqlite3_changes(s->db) != c.n) {
        /* something of our own connection (a trigger) wrote rows of this kind meanwhile;
         * read again */
        rc = pb__err_set(err, PB_ECONFLICT, "%s: %d rows added where %zu were missing", what,
                         sqlite3_changes(s->db), c.n);
        if (err != NULL)
            err->retryable = true;
    } else {
        *n_added = c.n;
    }
    pb__sq_stmt_done(st);
    return rc;
}

int pb__sq_write(pb_store *base, const pb_target *t, pb__wplan *p, pb_write_result *res,
                 pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    bool in_tx = false;
    int rc;
    if ((rc = pb__sq_exec_simple(s, ST_BEGIN, "begin write transaction", err)) != 0)
        goto out;
    in_tx = true;
    /* The three kinds in order, each in id order; the groups exist before the group
     * memberships look them up. A kind the plan does not hold costs nothing. */
    static const int reads[3] = {ST_MISSING_MEMBER, ST_MISSING_GROUP, ST_MISSING_GROUP_MEMBER};
    static const int inserts[3] = {ST_INS_MEMBER, ST_INS_GROUP, ST_INS_GROUP_MEMBER};
    static const char *const what[3] = {"insert organization memberships", "insert groups",
                                        "insert group memberships"};
    size_t *added[3] = {&res->memberships_added, &res->groups_created,
                        &res->group_memberships_added};
    for (int k = 0; k < 3 && rc == 0; k++)
        if (p->n_kind[k] > 0)
            rc = write_kind(s, reads[k], inserts[k], t, p, (uint8_t)(1u << k), added[k], what[k],
                            err);
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
    return rc;
}

typedef struct names_ctx {
    pb__wplan *plan;
    pb__added_fn cb;
    void *arg;
} names_ctx;

static int named_row(sqlite3_stmt *st, void *arg)
{
    const names_ctx *c = arg;
    unsigned kind = (unsigned)sqlite3_column_int(st, 0);
    sqlite3_int64 i = sqlite3_column_int64(st, 1);
    if (i < 0 || (size_t)i >= c->plan->n ||
        (kind != PB_ROW_MEMBER && kind != PB_ROW_GROUP && kind != PB_ROW_GROUP_MEMBER))
        return 0;
    if (!(c->plan->added[i] & kind))
        return 0;
    c->plan->added[i] &= (uint8_t)~kind;
    c->cb((pb_row_kind)kind, (size_t)i, pb__sq_col_text(st, 2), c->arg);
    return 0;
}

int pb__sq_added_names(pb_store *base, pb__wplan *p, pb__added_fn cb, void *arg, pb_err *err)
{
    sqlite_store *s = (sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int rc = pb__sq_stmt_get(s, ST_ADDED_NAMES, &st, err);
    if (rc != 0)
        return rc;
    /* named_row clears the bit of a (kind, entry) reported; the kinds after it still
     * read theirs */
    (void)sqlite3_bind_pointer(st, 4, p, PB__SQ_PLAN_PTR, NULL);
    names_ctx c = {p, cb, arg};
    rc = pb__sq_each_row(s, st, named_row, &c, "read the names of the organizations", err);
    pb__sq_stmt_done(st);
    if (rc == PB_EINTERRUPTED)
        s->interrupted = 1; /* still for the caller to see: this read only reports */
    return rc;
}
