/* SQLite backend: a pass's plan as a table for its writes. prebuilds_plan(?) is an
 * eponymous virtual table over the pb__wplan bound to ? as a pointer
 * (sqlite3_bind_pointer, type PB__SQ_PLAN_PTR): one row per entry, in the plan's order
 * (by id), read in place, so a statement over 100,000 organizations holds nothing for its
 * list: no text to parse, no index built over it, and no SQL to turn 16 bytes into the
 * id's text. Columns: i (the entry's index), id (canonical text, as the tables hold it),
 * kinds (pb_row_kind bits the plan wants), added (the bits in pb__wplan.added, read as
 * the statement runs). */
#include <string.h>

#include "sq.h"

/* The columns, in the order src/lib/sql/sqlite/plan_vtab.sql declares them. */
enum { COL_I, COL_ID, COL_KINDS, COL_ADDED, COL_PLAN };

typedef struct plan_cursor {
    sqlite3_vtab_cursor base;
    const pb__wplan *plan; /* NULL: no rows */
    size_t i;
    char id[PB_UUID_LEN + 1];
} plan_cursor;

static int plan_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **err)
{
    (void)aux;
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(db, pb__sql_sqlite_plan_vtab);
    if (rc != SQLITE_OK)
        return rc;
    /* not for the schema's views and triggers: only our statements bind a plan */
    (void)sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    sqlite3_vtab *v = sqlite3_malloc(sizeof(*v));
    if (v == NULL)
        return SQLITE_NOMEM;
    memset(v, 0, sizeof(*v));
    *out = v;
    return SQLITE_OK;
}

static int plan_disconnect(sqlite3_vtab *v)
{
    sqlite3_free(v);
    return SQLITE_OK;
}

/* Usable only with the plan given: prebuilds_plan(?) or WHERE plan = ?. */
static int plan_best_index(sqlite3_vtab *v, sqlite3_index_info *info)
{
    (void)v;
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &info->aConstraint[i];
        if (c->iColumn != COL_PLAN || c->op != SQLITE_INDEX_CONSTRAINT_EQ)
            continue;
        if (!c->usable)
            return SQLITE_CONSTRAINT;
        info->aConstraintUsage[i].argvIndex = 1;
        info->aConstraintUsage[i].omit = 1;
        info->idxNum = 1;
        info->estimatedCost = 1000;
        info->estimatedRows = 1000;
        return SQLITE_OK;
    }
    return SQLITE_CONSTRAINT;
}

static int plan_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out)
{
    (void)v;
    plan_cursor *c = sqlite3_malloc(sizeof(*c));
    if (c == NULL)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof(*c));
    *out = &c->base;
    return SQLITE_OK;
}

static int plan_close(sqlite3_vtab_cursor *cur)
{
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int plan_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc,
                       sqlite3_value **argv)
{
    (void)idx_str;
    plan_cursor *c = (plan_cursor *)cur;
    c->plan = idx_num == 1 && argc == 1 ? sqlite3_value_pointer(argv[0], PB__SQ_PLAN_PTR) : NULL;
    c->i = 0;
    return SQLITE_OK;
}

static int plan_next(sqlite3_vtab_cursor *cur)
{
    ((plan_cursor *)cur)->i++;
    return SQLITE_OK;
}

static int plan_eof(sqlite3_vtab_cursor *cur)
{
    const plan_cursor *c = (const plan_cursor *)cur;
    return c->plan == NULL || c->i >= c->plan->n;
}

static int plan_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    plan_cursor *c = (plan_cursor *)cur;
    switch (col) {
    case COL_I:
        sqlite3_result_int64(ctx, (sqlite3_int64)c->i);
        break;
    case COL_ID:
        pb__uuid_format(pb__wplan_id(c->plan, c->i), c->id);
        sqlite3_result_text(ctx, c->id, PB_UUID_LEN, SQLITE_TRANSIENT);
        break;
    case COL_KINDS:
        sqlite3_result_int(ctx, (int)pb__wplan_kinds(c->plan, c->i));
        break;
    case COL_ADDED:
        sqlite3_result_int(ctx, c->plan->added[c->i]);
        break;
    default:
        sqlite3_result_null(ctx);
        break;
    }
    return SQLITE_OK;
}

static int plan_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *out)
{
    *out = (sqlite3_int64)((const plan_cursor *)cur)->i;
    return SQLITE_OK;
}

static const sqlite3_module plan_module = {
    .iVersion = 0,
    .xCreate = NULL, /* eponymous only: no CREATE VIRTUAL TABLE */
    .xConnect = plan_connect,
    .xBestIndex = plan_best_index,
    .xDisconnect = plan_disconnect,
    .xDestroy = plan_disconnect,
    .xOpen = plan_open,
    .xClose = plan_close,
    .xFilter = plan_filter,
    .xNext = plan_next,
    .xEof = plan_eof,
    .xColumn = plan_column,
    .xRowid = plan_rowid,
};

int pb__sq_register_plan(sqlite3 *db)
{
    return sqlite3_create_module_v2(db, "prebuilds_plan", &plan_module, NULL, NULL);
}
