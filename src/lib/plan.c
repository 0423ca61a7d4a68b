/* The pure heart of the reconciler: from one status row, which rows are missing.
 * No I/O happens here, so every combination of facts is covered by unit tests and the
 * stores only ever execute what this module decided. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

unsigned pb_plan_needs(const pb_status_row *row)
{
    unsigned needs = 0;
    if (!row->has_member)
        needs |= PB_ROW_MEMBER;
    if (!row->has_group)
        needs |= PB_ROW_GROUP | PB_ROW_GROUP_MEMBER; /* a new group has no members yet */
    else if (!row->in_group)
        needs |= PB_ROW_GROUP_MEMBER;
    return needs;
}

void pb_plan_init(pb_plan *p)
{
    memset(p, 0, sizeof(*p));
}

void pb_plan_fini(pb_plan *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_orgs; i++)
        pb__free(p->orgs[i].org_name);
    pb__free(p->orgs);
    memset(p, 0, sizeof(*p));
}

int pb_plan_add(pb_plan *p, const pb_status_row *row)
{
    p->n_considered++;
    unsigned needs = pb_plan_needs(row);
    if (needs == 0)
        return 0;
    if (p->n_orgs == p->cap) {
        size_t cap = p->cap == 0 ? 16 : p->cap * 2;
        pb_plan_org *orgs = pb__realloc(p->orgs, cap * sizeof(*orgs));
        if (orgs == NULL)
            return PB_ENOMEM;
        p->orgs = orgs;
        p->cap = cap;
    }
    pb_plan_org *o = &p->orgs[p->n_orgs];
    o->org_name = pb__strdup(row->org_name == NULL ? "" : row->org_name);
    if (o->org_name == NULL)
        return PB_ENOMEM;
    pb__strlcpy(o->org_id, row->org_id, sizeof(o->org_id));
    o->needs = needs;
    p->n_orgs++;
    if (needs & PB_ROW_MEMBER)
        p->n_member++;
    if (needs & PB_ROW_GROUP)
        p->n_group++;
    if (needs & PB_ROW_GROUP_MEMBER)
        p->n_group_member++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int pb_plan_org_ids(const pb_plan *p, pb_row_kind kind, const char ***out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    const char **ids = pb__calloc(p->n_orgs, sizeof(*ids));
    if (ids == NULL)
        return PB_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < p->n_orgs; i++) {
        if (p->orgs[i].needs & (unsigned)kind)
            ids[n++] = p->orgs[i].org_id;
    }
    /* Every writer inserts in id order, so concurrent reconcilers take the unique-index
     * locks in the same order and cannot deadlock each other. */
    qsort(ids, n, sizeof(*ids), cmp_str);
    *out = ids;
    *n_out = n;
    return 0;
}
