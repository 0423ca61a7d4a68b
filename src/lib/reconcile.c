/* One reconciliation pass: the status statement streams rows into the plan, and only
 * when the plan is non-empty do the store's set-based writes run. A transient failure
 * (deadlock, serialization, an organization deleted under us) re-reads and retries. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

void pb_report_init(pb_report *r)
{
    memset(r, 0, sizeof(*r));
}

void pb_report_fini(pb_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n_errors; i++)
        pb__free(r->errors[i]);
    pb__free(r->errors);
    memset(r, 0, sizeof(*r));
}

static void report_error(pb_report *r, const char *msg)
{
    /* the capacity follows from the count (pb_report keeps none): 16, then powers of two */
    size_t cap = r->n_errors == 0 ? 0 : 16;
    while (cap < r->n_errors)
        cap *= 2;
    char **errors = pb__grow(r->errors, &cap, r->n_errors + 1, sizeof(*errors));
    if (errors == NULL)
        return; /* the pass still fails with its code; the list is best effort */
    r->errors = errors;
    char *copy = pb__strdup(msg);
    if (copy == NULL)
        return;
    r->errors[r->n_errors++] = copy;
}

static int status_to_plan(const pb_status_row *row, void *arg)
{
    return pb__wplan_add(arg, row);
}

/* The pass's facts, as the status statement read them: refuse while the platform's pause
 * switch is on or the prebuilds user is unusable (nothing is written either way). */
static int check_facts(pb_store *s, const pb_target *t, pb_report *r, pb_status_info *info,
                       pb_err *err)
{
    pb_store_status_info(s, info);
    r->paused = info->paused;
    r->user = info->user;
    if (info->paused)
        return pb__err_set(err, PB_EPAUSED,
                           "reconciliation is paused (site_configs \"prebuilds_settings\" has "
                           "\"reconciliation_paused\": true): nothing written");
    if (info->user != PB_USER_OK)
        return pb__err_set(err, PB_ENOUSER,
                           info->user == PB_USER_DELETED
                               ? "prebuilds user %s is soft-deleted (users.deleted): nothing "
                                 "written until the platform restores it"
                               : "prebuilds user %s not found in users: run init or pass the "
                                 "right --user-id",
                           t->user_id);
    return 0;
}

typedef struct added_ctx {
    const pb_reconcile_opts *o;
    const pb__wplan *plan;
} added_ctx;

static void report_added(pb_row_kind kind, size_t entry, const char *org_name, void *arg)
{
    const added_ctx *c = arg;
    char id[PB_UUID_LEN + 1];
    pb__uuid_format(pb__wplan_id(c->plan, entry), id);
    c->o->added(kind, id, org_name, c->o->added_arg);
}

/* The plan's writes, set-based, in id order (the lock order). The rows they added are
 * reported once the transaction committed, kind by kind in id order, with the names the
 * status read or, for a nameless plan, the names the store reads back after the commit.
 * That read failing fails nothing (the rows are committed): what it did not report is
 * reported without a name. */
static int write_plan(pb_store *s, const pb_target *t, const pb_reconcile_opts *o, pb__wplan *plan,
                      pb_report *r, pb_err *err)
{
    static const pb_row_kind kinds[3] = {PB_ROW_MEMBER, PB_ROW_GROUP, PB_ROW_GROUP_MEMBER};
    pb__wplan_sort(plan);
    pb_write_result res;
    int rc = pb__store_write(s, t, plan, &res, err);
    if (rc != 0)
        return rc;
    r->memberships_added = res.memberships_added;
    r->groups_created = res.groups_created;
    r->group_memberships_added = res.group_memberships_added;
    if (o->added == NULL)
        return 0;
    added_ctx c = {o, plan};
    if (plan->nameless &&
        res.memberships_added + res.groups_created + res.group_memberships_added > 0) {
        pb_err ignored;
        (void)s->vt->added_names(s, plan, report_added, &c, &ignored);
    }
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < plan->n; i++)
            if (plan->added[i] & kinds[k])
                report_added(kinds[k], i, pb__wplan_name(plan, i), &c);
    return 0;
}

/* One attempt: read, plan, check the facts, fold the summary's log if it has changes,
 * write. */
static int attempt(pb_store *s, const pb_target *t, const pb_reconcile_opts *o, pb_report *r,
                   pb_err *err)
{
    pb__wplan plan;
    pb__wplan_init(&plan);
    plan.nameless = s->vt->added_names != NULL; /* read back after the commit instead */
    pb_status_info info;
    int rc = pb__store_status_plan(s, t, o->org_ids, o->n_org_ids, status_to_plan, &plan, err);
    if (rc == PB_ENOMEM && err->msg[0] == '\0')
        pb__err_set(err, rc, "plan: out of memory");
    if (rc != 0)
        goto out;
    r->organizations = plan.n_considered;
    r->organizations_missing = plan.n;
    r->memberships_planned = plan.n_kind[0];
    r->groups_planned = plan.n_kind[1];
    r->group_memberships_planned = plan.n_kind[2];
    if ((rc = check_facts(s, t, r, &info, err)) != 0)
        goto out;
    if (info.summary_pending && !o->dry_run && (rc = pb_store_fold(s, err)) != 0)
        goto out;
    if (plan.n > 0 && !o->dry_run)
        rc = write_plan(s, t, o, &plan, r, err);
out:
    pb__wplan_fini(&plan);
    return rc;
}

int pb_reconcile(pb_store *s, const pb_target *t, const pb_reconcile_opts *o, pb_report *r,
                 pb_err *err)
{
    static const pb_reconcile_opts defaults = {0};
    if (o == NULL)
        o = &defaults;
    pb_err_clear(err);
    pb_store_stats before;
    pb_store_stats_get(s, &before);
    double start = pb__mono_ms();
    unsigned max_attempts = o->max_attempts == 0 ? 3 : o->max_attempts;
    r->dry_run = o->dry_run;
    int rc = 0;
    for (unsigned i = 0; i < max_attempts; i++) {
        r->attempts = i + 1;
        pb_err_clear(err);
        rc = attempt(s, t, o, r, err);
        if (rc == 0 || !err->retryable)
            break;
        if (o->retried != NULL && i + 1 < max_attempts)
            o->retried(i + 1, err, o->retried_arg);
    }
    if (rc != 0)
        report_error(r, err->msg[0] != '\0' ? err->msg : pb_strerror(rc));
    pb_store_stats after;
    pb_store_stats_get(s, &after);
    r->statements = after.statements - before.statements;
    r->round_trips = after.round_trips - before.round_trips;
    r->duration_ms = pb__mono_ms() - start;
    return rc;
}
