/* Planning and reconciling. The plan is pure (status rows in, needed changes out) so
 * every combination is unit tested without a database; reconcile ties status, plan and
 * the store's set-based writes together and reports what one pass did. */
#ifndef PREBUILDS_RECONCILE_H
#define PREBUILDS_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "plan.h"
#include "store.h"

typedef struct pb_report {
    size_t organizations; /* qualifying organizations considered */
    /* of those, how many missed at least one row (from the last read that succeeded; 0
     * when none did). Whether they still miss it follows from the result: a pass that
     * returned 0 committed its writes, or found the rows added by someone else. */
    size_t organizations_missing;
    size_t memberships_added;
    size_t groups_created;
    size_t group_memberships_added;
    /* with dry_run: what would be added */
    size_t memberships_planned;
    size_t groups_planned;
    size_t group_memberships_planned;
    uint64_t statements;
    uint64_t round_trips;
    double duration_ms;
    unsigned attempts;
    bool dry_run;
    bool paused;        /* the pause switch was on: nothing was written */
    pb_user_state user; /* the prebuilds user as the status statement found it */
    size_t n_errors;
    char **errors; /* owned; pb_report_fini frees */
} pb_report;

void pb_report_init(pb_report *r);
void pb_report_fini(pb_report *r);

typedef struct pb_reconcile_opts {
    bool dry_run;
    const char *const *org_ids; /* restrict the pass to these organizations (NULL: all) */
    size_t n_org_ids;
    unsigned max_attempts; /* 0: default (3) */
    /* optional, once per row inserted and committed; strings borrowed for the call */
    void (*added)(pb_row_kind kind, const char *org_id, const char *org_name, void *arg);
    void *added_arg;
    /* optional, once per attempt that failed and is tried again (a lock wait that timed out,
     * a deadlock, a serialization failure, a row that vanished, a lost connection):
     * `attempt` is the one that failed (1-based), `err` why; borrowed for the call */
    void (*retried)(unsigned attempt, const pb_err *err, void *arg);
    void *retried_arg;
} pb_reconcile_opts;

/* One pass: status (one statement), plan, writes (a fixed number of statements when
 * anything is missing). Returns 0 when the pass converged what it found; otherwise a
 * negative code, with the report's errors naming what failed. The report is filled in
 * both cases (caller-owned, initialised with pb_report_init). */
PB_MUST_CHECK int pb_reconcile(pb_store *s, const pb_target *t, const pb_reconcile_opts *o,
                               pb_report *r, pb_err *err);

#endif
