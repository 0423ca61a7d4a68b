/* The data commands (create, list, remove, resolve), written once for both backends. Each
 * backend supplies its statements (admin_sql.h in its dialect) and two primitives, one that
 * writes and one that reads rows; the checks, the messages and the decisions are here. The
 * seed stays in each backend: PostgreSQL generates the rows on the server, SQLite in a loop,
 * from the same formulas (same ids for one --seed). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* "create organization \"acme\"": the object in messages. */
static void create_what(pb_obj_kind kind, const char *name, char *what, size_t len)
{
    static const char *const words[] = {[PB_OBJ_ORG] = "organization",
                                        [PB_OBJ_TEMPLATE] = "template",
                                        [PB_OBJ_VERSION] = "template version",
                                        [PB_OBJ_PRESET] = "preset"};
    (void)snprintf(what, len, "create %s \"%.100s\"", words[kind], name);
}

int pb__admin_create(pb_store *s, pb_obj_kind kind, const char *id, const char *parent_id,
                     const char *name, int64_t desired, const char *created_by, pb_err *err)
{
    if (kind < PB_OBJ_ORG || kind > PB_OBJ_PRESET)
        return pb__err_set(err, PB_EINVAL, "create: unknown object kind");
    char desired_buf[32], what[160];
    (void)snprintf(desired_buf, sizeof(desired_buf), "%" PRId64, desired);
    /* $1 id, $2 parent (an organization: its name), $3 name, $4 creator or desired count */
    const char *params[4] = {id, kind == PB_OBJ_ORG ? name : parent_id, name,
                             kind == PB_OBJ_PRESET ? (desired >= 0 ? desired_buf : NULL)
                                                   : created_by};
    create_what(kind, name, what, sizeof(what));
    int rc = s->vt->admin->check(s, what, err);
    if (rc != 0)
        return rc;
    int64_t changes = 0;
    bool missing_ref = false;
    rc = s->vt->admin->exec(s, &s->vt->admin->sql->create[kind], params, &changes, &missing_ref,
                            what, err);
    if (rc == 0 && changes == 0) /* only a version, which takes its row from its template */
        rc = pb__err_set(err, PB_ENOTFOUND, "%s: template %s not found", what, parent_id);
    if (rc == PB_ECONFLICT && err != NULL)
        (void)pb__err_set(err, rc, "%s: %s", what,
                          missing_ref ? "parent or creating user not found" : "already exists");
    return rc;
}

typedef struct list_ctx {
    pb_obj_cb cb;
    void *arg;
} list_ctx;

static int list_row(const char *const *cols, void *arg)
{
    const list_ctx *c = arg;
    pb_obj_row row = {.id = cols[0], .parent_id = cols[1], .name = cols[2], .extra = cols[3]};
    return c->cb(&row, c->arg);
}

int pb__admin_list(pb_store *s, pb_obj_kind kind, const char *parent_id, pb_obj_cb cb, void *arg,
                   pb_err *err)
{
    if (kind < PB_OBJ_ORG || kind > PB_OBJ_PRESET)
        return pb__err_set(err, PB_EINVAL, "list: unknown object kind");
    const char *params[1] = {parent_id};
    list_ctx c = {cb, arg};
    return s->vt->admin->rows(s, &s->vt->admin->sql->list[kind], params, list_row, &c, "list", err);
}

int pb__admin_remove(pb_store *s, const pb_target *t, pb_row_kind kind, const char *org_id,
                     size_t *n_removed, pb_err *err)
{
    const pb__stmt *q = kind == PB_ROW_MEMBER || kind == PB_ROW_GROUP || kind == PB_ROW_GROUP_MEMBER
                            ? s->vt->admin->sql->remove[kind]
                            : NULL;
    if (q == NULL)
        return pb__err_set(err, PB_EINVAL, "remove: unknown row kind");
    const char *params[3] = {t->user_id, org_id, t->group_name};
    int64_t changes = 0;
    bool missing_ref = false;
    int rc = s->vt->admin->check(s, "remove", err);
    if (rc == 0)
        rc = s->vt->admin->exec(s, q, params, &changes, &missing_ref, "remove", err);
    if (rc == 0)
        *n_removed = (size_t)changes;
    return rc;
}

typedef struct resolve_ctx {
    pb__ref_row rows[PB__REF_MAX + 1];
    size_t n;
} resolve_ctx;

static int resolve_row(const char *const *cols, void *arg)
{
    resolve_ctx *c = arg;
    if (c->n == PB__REF_MAX + 1)
        return 0; /* enough to say it is ambiguous */
    pb__ref_row *r = &c->rows[c->n++];
    pb__strlcpy(r->id, cols[0], sizeof(r->id));
    pb__strlcpy(r->name, cols[1] != NULL ? cols[1] : "", sizeof(r->name));
    pb__strlcpy(r->parent, cols[2] != NULL ? cols[2] : "", sizeof(r->parent));
    return 0;
}

int pb__admin_resolve(pb_store *s, pb_obj_kind kind, const char *ref, const pb_ref_scope *scope,
                      char out[PB_UUID_LEN + 1], pb_err *err)
{
    if (kind != PB_OBJ_ORG && kind != PB_OBJ_TEMPLATE && kind != PB_OBJ_VERSION)
        return pb__err_set(err, PB_EINVAL, "resolve: unsupported object kind");
    const char *params[3] = {ref, scope->org_id, scope->template_id};
    resolve_ctx c = {.n = 0};
    int rc = s->vt->admin->rows(s, &s->vt->admin->sql->resolve[kind], params, resolve_row, &c,
                                "find object", err);
    return rc != 0 ? rc : pb__ref_decide(kind, ref, c.rows, c.n, out, err);
}

static int count_col(const char *const *cols, void *arg)
{
    *(long long *)arg = cols[0] != NULL ? strtoll(cols[0], NULL, 10) : 0;
    return 0;
}

int pb__admin_seed_check(pb_store *s, const pb_seed_opts *o, pb_err *err)
{
    int rc = s->vt->admin->check(s, "seed", err);
    if (rc != 0 || o->orgs == 0)
        return rc;
    char first[48];
    (void)snprintf(first, sizeof(first), "seed%u-org-0000000", o->seed);
    const char *params[1] = {first};
    long long n = 0;
    if ((rc = s->vt->admin->rows(s, s->vt->admin->sql->seed_taken, params, count_col, &n, "seed",
                                 err)) != 0)
        return rc;
    if (n > 0)
        return pb__err_set(err, PB_ECONFLICT,
                           "seed: the data set of --seed %u is here already (organization \"%s\" "
                           "exists); seed again with another --seed",
                           o->seed, first);
    return 0;
}
