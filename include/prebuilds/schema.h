/* The store's schema: creating and migrating our own, inspecting a platform's, what
 * `init` installs there on request, and taking it out again. */
#ifndef PREBUILDS_SCHEMA_H
#define PREBUILDS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "store.h"

/* ---- schema ---- */

typedef struct pb_init_opts {
    bool recommended_indexes; /* on a foreign (e.g. Coder) database, add our indexes */
    bool create_user;         /* create the prebuilds user row when missing (own schema) */
    bool triggers; /* PostgreSQL: install the notify triggers (`init --triggers`), opt-in */
    /* Install (on a foreign PostgreSQL schema, opt-in) or rebuild (anywhere) the summary of
     * templates with configured presets that the fast status statement reads. */
    bool summary;
    /* Create prebuilds' own schema in a database that holds other tables (none of the
     * platform's): refused without it, so a mistyped database is never filled. */
    bool add_to_existing;
} pb_init_opts;

typedef struct pb_init_result {
    bool foreign_schema;       /* tables existed and were not created by us */
    int schema_version_before; /* our migration version, 0 when none */
    int schema_version_after;
    bool user_created;
    bool user_exists;
    int indexes_created;
    int indexes_missing; /* recommended indexes still absent */
    int triggers_installed;
    bool summary_built;   /* the summary was installed or rebuilt by this call */
    bool summary_missing; /* a foreign schema without the summary: status reads the tables */
    bool user_deleted;    /* the prebuilds user row exists but is soft-deleted */
    char owner[64];       /* PostgreSQL, foreign schema: the role our objects belong to */
} pb_init_result;

PB_MUST_CHECK int pb_store_init(pb_store *s, const pb_target *t, const pb_init_opts *o,
                                pb_init_result *res, pb_err *err);

/* Latest migration version this build knows. */
int pb_schema_version_latest(void);

/* What is in the database now: the base of `init --print-grants`. */
typedef struct pb_schema_info {
    bool own;            /* created by prebuilds (our migrations are recorded) */
    bool foreign;        /* the platform's tables, not created by prebuilds */
    int version;         /* our migration version (own schema) */
    char schema[64];     /* PostgreSQL: the schema the tables live in */
    bool site_configs;   /* the pause switch's table exists */
    bool summary;        /* the configured-templates summary is installed */
    int notify_triggers; /* notify triggers installed (PostgreSQL) */
    bool index;          /* the recommended index exists */
} pb_schema_info;

PB_MUST_CHECK int pb_store_inspect(pb_store *s, pb_schema_info *out, pb_err *err);

/* Called once per object `pb_store_uninstall` removed; strings borrowed for the call. */
typedef void (*pb_removed_cb)(const char *kind, const char *name, void *arg);

/* Remove everything prebuilds installed in a database it did not create (summary, notify
 * triggers, their functions, the recommended index). Refuses (PB_ESCHEMA) on a database
 * prebuilds created, and on SQLite: drop the database instead. */
PB_MUST_CHECK int pb_store_uninstall(pb_store *s, pb_removed_cb cb, void *arg, size_t *n_removed,
                                     pb_err *err);

/* The pause switch on a schema prebuilds created (site_configs, key prebuilds_settings);
 * refused (PB_ESCHEMA) on a platform's database, where the platform owns the switch. */
PB_MUST_CHECK int pb_store_set_paused(pb_store *s, bool paused, pb_err *err);

#endif
