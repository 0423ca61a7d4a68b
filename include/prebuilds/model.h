/* The model the reconciler works on, apart from any database: what it maintains (the
 * target), what the status statement says about one organization, the pass's facts, and the
 * kinds of rows it adds. The pure plan (plan.h) needs nothing else. */
#ifndef PREBUILDS_MODEL_H
#define PREBUILDS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parse.h"

/* What the reconciler maintains: which user, which group. Borrowed by every call. */
typedef struct pb_target {
    char user_id[PB_UUID_LEN + 1];
    const char *group_name;
    const char *group_display_name;
} pb_target;

#define PB_DEFAULT_USER_ID            "c42fdf75-3097-471c-8c33-fb52454d81c0"
#define PB_DEFAULT_GROUP_NAME         "coderprebuiltworkspaces"
#define PB_DEFAULT_GROUP_DISPLAY_NAME "Prebuilt Workspaces"

/* Fill `t` with the reference platform's defaults. */
void pb_target_init_default(pb_target *t);

/* One qualifying organization as the status statement sees it. */
typedef struct pb_status_row {
    char org_id[PB_UUID_LEN + 1];
    const char *org_name;           /* borrowed: valid only during the callback */
    bool has_member;                /* the prebuilds user is an organization member */
    bool has_group;                 /* the prebuilds group exists */
    char group_id[PB_UUID_LEN + 1]; /* "" when !has_group */
    bool in_group;                  /* the prebuilds user is in the group */
} pb_status_row;

/* The prebuilds user as the status statement found it. */
typedef enum pb_user_state {
    PB_USER_MISSING = 0, /* no row in users */
    PB_USER_DELETED,     /* soft-deleted (users.deleted): the platform removes its rows */
    PB_USER_OK,
} pb_user_state;

/* Facts of the whole pass, read by the same status statement (one extra row). */
typedef struct pb_status_info {
    pb_user_state user;
    bool paused;            /* the platform's pause switch (site_configs prebuilds_settings) */
    bool summary_used;      /* qualification was read from the configured-templates summary */
    bool summary_untrusted; /* the summary exists but a trigger failed or is disabled, or
                               an older prebuilds built it: the tables were read instead;
                               run 'prebuilds init --summary' */
    bool summary_pending;   /* changes wait to be folded into the summary (pb_store_fold) */
} pb_status_info;

/* Kinds of rows the reconciler adds. */
typedef enum pb_row_kind {
    PB_ROW_MEMBER = 1,       /* organization_members */
    PB_ROW_GROUP = 2,        /* groups */
    PB_ROW_GROUP_MEMBER = 4, /* group_members */
} pb_row_kind;

#endif
