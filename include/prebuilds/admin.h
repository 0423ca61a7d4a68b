/* Data commands of the CLI (create, list, remove, seed): test and demo data. Not used by
 * reconcile. Every call that writes (create, remove, seed) is refused with PB_ESCHEMA on a
 * schema prebuilds did not create: a platform has rules of its own for its rows (roles for
 * a new organization, an active version for a template) that these calls do not follow.
 * Listing and resolving references only read, and work anywhere. */
#ifndef PREBUILDS_ADMIN_H
#define PREBUILDS_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* ---- administration (the CLI's admin commands; not used by reconcile) ---- */

typedef struct pb_obj_row {
    const char *id;        /* borrowed during the callback */
    const char *parent_id; /* organization / template / version id, or NULL */
    const char *name;
    const char *extra; /* desired_instances for presets ("" = NULL), else NULL */
} pb_obj_row;
typedef int (*pb_obj_cb)(const pb_obj_row *row, void *arg);

typedef enum pb_obj_kind {
    PB_OBJ_ORG = 1,
    PB_OBJ_TEMPLATE,
    PB_OBJ_VERSION,
    PB_OBJ_PRESET,
} pb_obj_kind;

/* Create an object. `id` is the new id (caller generates it); `parent_id` is the owning
 * organization/template/version; `desired` is used for presets (< 0 means NULL);
 * `created_by` is the creating user for templates and versions. */
PB_MUST_CHECK int pb_store_create(pb_store *s, pb_obj_kind kind, const char *id,
                                  const char *parent_id, const char *name, int64_t desired,
                                  const char *created_by, pb_err *err);

/* List objects of a kind, optionally only those under `parent_id` (organization, template or
 * version: resolve it first, so an unknown parent is an error, not an empty list). */
PB_MUST_CHECK int pb_store_list(pb_store *s, pb_obj_kind kind, const char *parent_id, pb_obj_cb cb,
                                void *arg, pb_err *err);

/* Remove the prebuilds user from an organization (kind PB_ROW_MEMBER) or from its
 * prebuilds group (PB_ROW_GROUP_MEMBER), to make drift. *n_removed tells how many rows. */
PB_MUST_CHECK int pb_store_remove(pb_store *s, const pb_target *t, pb_row_kind kind,
                                  const char *org_id, size_t *n_removed, pb_err *err);

/* Whether the calls that write may run here: 0 on prebuilds' own schema, PB_ENOSCHEMA when
 * there is no schema yet, PB_ESCHEMA on a schema prebuilds did not create. `what` names
 * the refused command in the message. Each writing call checks this itself too. */
PB_MUST_CHECK int pb_store_admin_check(pb_store *s, const char *what, pb_err *err);

/* Where a reference is looked for: templates within an organization, versions within a
 * template (or, without one, within an organization). NULL members: anywhere. */
typedef struct pb_ref_scope {
    const char *org_id;
    const char *template_id;
} pb_ref_scope;

/* Resolve a reference a user typed (`ref`, an id or a name) to exactly one live object of
 * `kind` (organizations and templates not deleted, in `scope` when given, NULL: anywhere).
 * An object whose id is `ref` (any case) wins. Otherwise the objects named `ref`, compared
 * case-insensitively: none is PB_ENOTFOUND, several PB_ECONFLICT, with a message naming
 * the candidates (up to five, with their ids and parents). */
PB_MUST_CHECK int pb_store_resolve(pb_store *s, pb_obj_kind kind, const char *ref,
                                   const pb_ref_scope *scope, char out[PB_UUID_LEN + 1],
                                   pb_err *err);

/* pb_store_resolve for an organization, anywhere. */
PB_MUST_CHECK int pb_store_find_org(pb_store *s, const char *id_or_name, char out[PB_UUID_LEN + 1],
                                    pb_err *err);

/* A synthetic data set. Ids are deterministic for a given seed. */
typedef struct pb_seed_opts {
    int64_t orgs;
    int64_t templates_per_org;
    int64_t versions_per_template;
    int64_t presets_per_version;
    double prebuilds_fraction; /* organizations with desired_instances set */
    double drift_fraction;     /* of those, organizations missing something */
    uint32_t seed;
} pb_seed_opts;

typedef struct pb_seed_result {
    int64_t orgs, templates, versions, presets;
    int64_t prebuild_orgs, drifted_orgs;
} pb_seed_result;

/* Seeding a data set whose organizations exist already (the same --seed twice) is refused
 * with PB_ECONFLICT before anything is written. */
PB_MUST_CHECK int pb_store_seed(pb_store *s, const pb_target *t, const pb_seed_opts *o,
                                pb_seed_result *res, pb_err *err);

#endif
