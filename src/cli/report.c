/* The reconciler's reports: status (the facts per organization), plan (what a pass would add)
 * and reconcile (one pass). They tell the same truth reconcile acts on: a prebuilds user that
 * is missing or soft-deleted, and the pause switch, end status and plan with reconcile's own
 * exit code after they printed what they found. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "log.h"
#include "output.h"

static const char *yes_no(bool b)
{
    return b ? "yes" : "no";
}

typedef struct status_out {
    bool json, is_plan;
    json_t *arr;
    app_table table;
    pb_plan plan;
    size_t n_rows;
} status_out;

static int on_status_row(const pb_status_row *row, void *arg)
{
    status_out *so = arg;
    so->n_rows++;
    if (so->is_plan)
        return pb_plan_add(&so->plan, row);
    if (so->json) {
        json_t *o = json_object();
        if (o == NULL)
            return PB_ENOMEM;
        (void)json_object_set_new(o, "organization_id", json_string(row->org_id));
        (void)json_object_set_new(o, "organization_name", app_json_string(row->org_name));
        (void)json_object_set_new(o, "has_prebuild_user", json_boolean(row->has_member));
        (void)json_object_set_new(o, "prebuilds_group_id",
                                  row->has_group ? json_string(row->group_id) : json_null());
        (void)json_object_set_new(o, "has_prebuild_user_in_group", json_boolean(row->in_group));
        return json_array_append_new(so->arr, o) == 0 ? 0 : PB_ENOMEM;
    }
    const char *cells[5] = {row->org_id, row->org_name, yes_no(row->has_member),
                            row->has_group ? row->group_id : "-", yes_no(row->in_group)};
    return app_table_add(&so->table, cells) == 0 ? 0 : PB_ENOMEM;
}

/* The pass facts as reconcile would act on them: warnings, and the exit code it would end
 * with (0 when it would write). */
static int facts(const pb_status_info *info, const pb_target *t)
{
    int ex = APP_EXIT_OK;
    if (info->user != PB_USER_OK) {
        if (info->user == PB_USER_DELETED)
            cli_warn("prebuilds user %s is soft-deleted (users.deleted): reconcile writes nothing "
                     "until the platform restores it",
                     t->user_id);
        else
            cli_warn("prebuilds user %s not found in users: reconcile refuses until it exists "
                     "(run init, or pass the right --user-id)",
                     t->user_id);
        ex = APP_EXIT_REFUSED;
    }
    if (info->paused) {
        cli_warn("reconciliation is paused (site_configs prebuilds_settings): reconcile writes "
                 "nothing");
        if (ex == APP_EXIT_OK)
            ex = APP_EXIT_PAUSED;
    }
    if (info->summary_untrusted)
        cli_warn("the configured-templates summary is not trusted (a trigger failed or is "
                 "disabled, an older prebuilds built it, or this role may not read its view "
                 "prebuilds_summary_answer): the tables were read; run "
                 "'prebuilds init --summary'");
    return ex;
}

static void print_plan(const status_out *so)
{
    const pb_plan *p = &so->plan;
    if (so->json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < p->n_orgs; i++) {
            const pb_plan_org *po = &p->orgs[i];
            json_t *o = json_object();
            (void)json_object_set_new(o, "organization_id", json_string(po->org_id));
            (void)json_object_set_new(o, "organization_name", app_json_string(po->org_name));
            (void)json_object_set_new(o, "add_membership", json_boolean(po->needs & PB_ROW_MEMBER));
            (void)json_object_set_new(o, "create_group", json_boolean(po->needs & PB_ROW_GROUP));
            (void)json_object_set_new(o, "add_group_membership",
                                      json_boolean(po->needs & PB_ROW_GROUP_MEMBER));
            (void)json_array_append_new(arr, o);
        }
        (void)app_json_print(arr);
        json_decref(arr);
        return;
    }
    static const char *const hdr[5] = {"ORGANIZATION ID", "NAME", "ADD MEMBERSHIP", "CREATE GROUP",
                                       "ADD GROUP MEMBERSHIP"};
    app_table t;
    if (p->n_orgs > 0 && app_table_init(&t, 5, hdr) == 0) {
        for (size_t i = 0; i < p->n_orgs; i++) {
            const pb_plan_org *po = &p->orgs[i];
            const char *cells[5] = {po->org_id, po->org_name, yes_no(po->needs & PB_ROW_MEMBER),
                                    yes_no(po->needs & PB_ROW_GROUP),
                                    yes_no(po->needs & PB_ROW_GROUP_MEMBER)};
            (void)app_table_add(&t, cells);
        }
        app_table_print(&t, stdout);
        app_table_fini(&t);
    }
    (void)printf("%zu of %zu %s %s changes: %zu %s, %zu %s, %zu %s\n", p->n_orgs, p->n_considered,
                 app_plural(p->n_considered, "organization", "organizations"),
                 p->n_orgs == 1 ? "needs" : "need", p->n_member,
                 app_plural(p->n_member, "membership", "memberships"), p->n_group,
                 app_plural(p->n_group, "group", "groups"), p->n_group_member,
                 app_plural(p->n_group_member, "group membership", "group memberships"));
}

static int status_or_plan(cli_ctx *c, const cli_cmd *cmd, const app_args *a, bool is_plan)
{
    status_out so;
    memset(&so, 0, sizeof(so));
    so.is_plan = is_plan;
    so.json = cli_opt(cmd, a, "json") != NULL;
    pb_store *s = NULL;
    int ex = cli_open(c, 0, &s);
    if (ex != 0)
        return ex;
    static const char *const hdr[5] = {"ORGANIZATION ID", "NAME", "MEMBER", "GROUP ID", "IN GROUP"};
    pb_plan_init(&so.plan);
    if (!is_plan && so.json)
        so.arr = json_array();
    else if (!is_plan)
        (void)app_table_init(&so.table, 5, hdr);
    pb_err err;
    int rc = pb_store_status(s, &c->conf.target, NULL, 0, on_status_row, &so, &err);
    pb_status_info info;
    pb_store_status_info(s, &info);
    pb_store_free(&s);
    if (rc != 0) {
        ex = cli_fail(&err);
        goto out;
    }
    if (is_plan && info.user != PB_USER_OK) {
        ex = facts(&info, &c->conf.target); /* plan plans writes that would be refused */
        goto out;
    }
    if (is_plan)
        print_plan(&so);
    else if (so.json)
        (void)app_json_print(so.arr);
    else if (so.n_rows == 0)
        (void)printf("no organization has prebuilds configured (a template with a preset whose "
                     "desired_instances is set)\n");
    else
        app_table_print(&so.table, stdout);
    ex = facts(&info, &c->conf.target);
out:
    if (so.arr != NULL)
        json_decref(so.arr);
    if (!is_plan && !so.json)
        app_table_fini(&so.table);
    pb_plan_fini(&so.plan);
    return ex;
}

int cmd_status(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    return status_or_plan(c, cmd, a, false);
}

int cmd_plan(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    return status_or_plan(c, cmd, a, true);
}

/* ---- reconcile ---- */

static void print_json(const pb_report *r)
{
    json_t *j = json_object();
    (void)json_object_set_new(j, "organizations", json_integer((json_int_t)r->organizations));
    (void)json_object_set_new(j, "memberships_added",
                              json_integer((json_int_t)r->memberships_added));
    (void)json_object_set_new(j, "groups_created", json_integer((json_int_t)r->groups_created));
    (void)json_object_set_new(j, "group_memberships_added",
                              json_integer((json_int_t)r->group_memberships_added));
    (void)json_object_set_new(j, "dry_run", json_boolean(r->dry_run));
    (void)json_object_set_new(j, "paused", json_boolean(r->paused));
    (void)json_object_set_new(j, "memberships_planned",
                              json_integer((json_int_t)r->memberships_planned));
    (void)json_object_set_new(j, "groups_planned", json_integer((json_int_t)r->groups_planned));
    (void)json_object_set_new(j, "group_memberships_planned",
                              json_integer((json_int_t)r->group_memberships_planned));
    (void)json_object_set_new(j, "statements", json_integer((json_int_t)r->statements));
    (void)json_object_set_new(j, "round_trips", json_integer((json_int_t)r->round_trips));
    (void)json_object_set_new(j, "attempts", json_integer((json_int_t)r->attempts));
    /* to the microsecond: the clock says no more */
    (void)json_object_set_new(
        j, "duration_ms", json_real((double)(long long)(r->duration_ms * 1000.0 + 0.5) / 1000.0));
    json_t *errs = json_array();
    for (size_t i = 0; i < r->n_errors; i++)
        (void)json_array_append_new(errs, app_json_string(r->errors[i]));
    (void)json_object_set_new(j, "errors", errs);
    (void)app_json_print(j);
    json_decref(j);
}

/* "(3 statements, 2 round trips, 2 attempts, 4.1 ms)" */
static void print_costs(const pb_report *r)
{
    (void)printf(" (%llu %s, %llu %s", (unsigned long long)r->statements,
                 app_plural(r->statements, "statement", "statements"),
                 (unsigned long long)r->round_trips,
                 app_plural(r->round_trips, "round trip", "round trips"));
    if (r->attempts > 1)
        (void)printf(", %u attempts", r->attempts);
    (void)printf(", %.1f ms)\n", r->duration_ms);
}

int cmd_reconcile(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    bool json = cli_opt(cmd, a, "json") != NULL, dry_run = cli_opt(cmd, a, "dry-run") != NULL;
    pb_store *s = NULL;
    int ex = cli_open(c, 0, &s);
    if (ex != 0)
        return ex;
    pb_reconcile_opts o = {.dry_run = dry_run, .added = cli_log_added, .retried = cli_log_retry};
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    int rc = pb_reconcile(s, &c->conf.target, &o, &r, &err);
    pb_store_free(&s);
    if (json) {
        print_json(&r);
    } else if (rc == 0 && dry_run) {
        (void)printf(
            "dry run: %zu %s, would add %zu %s, create %zu %s, add %zu %s", r.organizations,
            app_plural(r.organizations, "organization", "organizations"), r.memberships_planned,
            app_plural(r.memberships_planned, "membership", "memberships"), r.groups_planned,
            app_plural(r.groups_planned, "group", "groups"), r.group_memberships_planned,
            app_plural(r.group_memberships_planned, "group membership", "group memberships"));
        print_costs(&r);
    } else if (rc == 0) {
        (void)printf(
            "reconciled %zu %s: %zu %s added, %zu %s created, %zu %s added", r.organizations,
            app_plural(r.organizations, "organization", "organizations"), r.memberships_added,
            app_plural(r.memberships_added, "membership", "memberships"), r.groups_created,
            app_plural(r.groups_created, "group", "groups"), r.group_memberships_added,
            app_plural(r.group_memberships_added, "group membership", "group memberships"));
        print_costs(&r);
    }
    pb_report_fini(&r);
    if (rc == 0)
        return APP_EXIT_OK;
    (void)cli_fail(&err);
    return cli_pass_exit_code(rc, &err);
}
