/* The pure plan: status rows in, the rows that are missing out. No I/O and no store, so
 * every combination is unit tested without a database. */
#ifndef PREBUILDS_PLAN_H
#define PREBUILDS_PLAN_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "model.h"

/* Bits of pb_row_kind that a status row still needs. Pure; no I/O. */
unsigned pb_plan_needs(const pb_status_row *row);

typedef struct pb_plan_org {
    char org_id[PB_UUID_LEN + 1];
    char *org_name; /* owned by the plan */
    unsigned needs; /* pb_row_kind bits */
} pb_plan_org;

/* The changes one pass needs: only organizations that need something are kept, so its
 * size follows the drift, not the data. Embedded: pb_plan_init / pb_plan_fini. */
typedef struct pb_plan {
    pb_plan_org *orgs;
    size_t n_orgs, cap;
    size_t n_considered;
    size_t n_member, n_group, n_group_member;
} pb_plan;

void pb_plan_init(pb_plan *p);
void pb_plan_fini(pb_plan *p);

/* Add one status row (borrowed) to the plan. */
PB_MUST_CHECK int pb_plan_add(pb_plan *p, const pb_status_row *row);

/* Org ids of the plan that need `kind`, sorted; the array is owned by the caller
 * (free()), the strings are borrowed from the plan. */
PB_MUST_CHECK int pb_plan_org_ids(const pb_plan *p, pb_row_kind kind, const char ***out,
                                  size_t *n_out);

#endif
