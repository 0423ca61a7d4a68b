/* The `prebuilds` command: global options, then one command. This file holds the
 * reconciler's commands (init, status, plan, reconcile); admin.c holds the commands
 * that create and break data. Everything is validated before the database is touched. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "output.h"

static const char usage_text[] =
    "usage: prebuilds [GLOBAL OPTIONS] COMMAND [COMMAND OPTIONS]\n"
    "\n"
    "Keeps the prebuilds user a member of every organization with prebuilds configured,\n"
    "and of that organization's prebuilds group.\n"
    "\n"
    "Global options (before the command; each has an environment fallback):\n"
    "  --db URL                  database (PREBUILDS_DB; default sqlite:prebuilds.db):\n"
    "                            postgres://..., postgresql://..., libpq key=value,\n"
    "                            sqlite:PATH, file:PATH or a plain path\n"
    "  --user-id UUID            prebuilds user (PREBUILDS_USER_ID;\n"
    "                            default " PB_DEFAULT_USER_ID ")\n"
    "  --group-name NAME         prebuilds group (PREBUILDS_GROUP_NAME;\n"
    "                            default " PB_DEFAULT_GROUP_NAME ")\n"
    "  --group-display-name NAME display name of a group we create\n"
    "                            (PREBUILDS_GROUP_DISPLAY_NAME; default "
    "\"" PB_DEFAULT_GROUP_DISPLAY_NAME "\")\n"
    "  --log-level LEVEL         debug, info, warn, error (PREBUILDS_LOG_LEVEL; default info)\n"
    "  --log-format FORMAT       text or json (PREBUILDS_LOG_FORMAT; default text)\n"
    "  --help, --version\n"
    "\n"
    "Reconciler commands:\n"
    "  init [--recommended-indexes] [--no-create-user] [--print-grants ROLE] [--triggers]\n"
    "       [--summary]          create or migrate the schema; on a database we did not\n"
    "                            create, only check it (and add our indexes when asked);\n"
    "                            --triggers (PostgreSQL) installs the NOTIFY triggers\n"
    "                            that 'run --listen' reacts to; --summary installs (or\n"
    "                            rebuilds) the configured-templates summary that makes\n"
    "                            status cheap\n"
    "  status [--json]           one row per qualifying organization\n"
    "  plan [--json]             what a reconcile would add\n"
    "  reconcile [--json] [--dry-run]\n"
    "                            add what is missing\n"
    "  run [--interval D] [--listen] [--once] [--config FILE] [--metrics-addr ADDR] ...\n"
    "                            the reconciliation daemon ('prebuilds run --help')\n"
    "  uninstall                 remove everything init installed in a database prebuilds\n"
    "                            did not create (summary, triggers, functions, index)\n"
    "  pause | resume            set the pause switch on a schema prebuilds created (on a\n"
    "                            platform's database the switch is the platform's)\n"
    "\n"
    "Data commands:\n"
    "  org create NAME [--id UUID] | org list [--json]\n"
    "  template create --org ORG NAME [--id UUID] | template list [--org ORG] [--json]\n"
    "  version create --template TEMPLATE_ID NAME [--id UUID]\n"
    "  version list [--template TEMPLATE_ID] [--json]\n"
    "  preset create --version VERSION_ID NAME [--desired-instances N] [--id UUID]\n"
    "  preset list [--version VERSION_ID] [--json]\n"
    "  member remove --org ORG         remove the prebuilds user from an organization\n"
    "  group-member remove --org ORG   remove the prebuilds user from the group\n"
    "  group remove --org ORG          delete the organization's prebuilds group\n"
    "  seed --orgs N [--templates-per-org N] [--versions-per-template N]\n"
    "       [--presets-per-version N] [--prebuilds-fraction F] [--drift-fraction F] [--seed N]\n"
    "\n"
    "ORG is an organization id or name.\n"
    "\n"
    "Exit codes: 0 success, 1 unexpected error, 2 usage or invalid value,\n"
    "3 database unreachable or schema missing, 4 reconcile did not converge everything,\n"
    "5 refused (privileges, prebuilds user missing or soft-deleted, conflict, not found,\n"
    "a database prebuilds did not create), 6 reconciliation paused: nothing written.\n";

/* ---- status and plan ---- */

static const char *yes_no(bool b)
{
    return b ? "yes" : "no";
}

typedef struct status_out {
    bool json;
    json_t *arr;
    pb_table table;
    pb_plan plan; /* for `plan` */
    bool is_plan;
} status_out;

static int on_status_row(const pb_status_row *row, void *arg)
{
    status_out *so = arg;
    if (so->is_plan)
        return pb_plan_add(&so->plan, row);
    if (so->json) {
        json_t *o = json_object();
        if (o == NULL)
            return PB_ENOMEM;
        (void)json_object_set_new(o, "organization_id", json_string(row->org_id));
        (void)json_object_set_new(o, "organization_name", pb_json_string(row->org_name));
        (void)json_object_set_new(o, "has_prebuild_user", json_boolean(row->has_member));
        (void)json_object_set_new(o, "prebuilds_group_id",
                                  row->has_group ? json_string(row->group_id) : json_null());
        (void)json_object_set_new(o, "has_prebuild_user_in_group", json_boolean(row->in_group));
        if (json_array_append_new(so->arr, o) != 0)
            return PB_ENOMEM;
        return 0;
    }
    const char *cells[5] = {row->org_id, row->org_name, yes_no(row->has_member),
                            row->has_group ? row->group_id : "-", yes_no(row->in_group)};
    return pb_table_add(&so->table, cells) == 0 ? 0 : PB_ENOMEM;
}

static int parse_json_flag(const char *cmd, int argc, char **argv, bool *json, bool *dry_run)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"dry-run", no_argument, NULL, 'n'}, {NULL, 0, NULL, 0}};
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (ch == 'j')
            *json = true;
        else if (ch == 'n' && dry_run != NULL)
            *dry_run = true;
        else
            return cli_usage_error(cmd, "unknown option");
    }
    if (optind != argc)
        return cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    return 0;
}

static int cmd_status_or_plan(cli_ctx *c, int argc, char **argv, bool is_plan)
{
    const char *cmd = is_plan ? "plan" : "status";
    status_out so;
    memset(&so, 0, sizeof(so));
    so.is_plan = is_plan;
    int ex = parse_json_flag(cmd, argc, argv, &so.json, NULL);
    if (ex != 0)
        return ex;
    pb_store *s = NULL;
    if ((ex = cli_open(c, 0, &s)) != 0)
        return ex;
    static const char *const status_hdr[5] = {"ORGANIZATION ID", "NAME", "MEMBER", "GROUP ID",
                                              "IN GROUP"};
    pb_plan_init(&so.plan);
    if (!is_plan && so.json)
        so.arr = json_array();
    else if (!is_plan && pb_table_init(&so.table, 5, status_hdr) != 0)
        so.arr = NULL;
    pb_err err;
    int rc = pb_store_status(s, &c->target, NULL, 0, on_status_row, &so, &err);
    pb_status_info info;
    pb_store_status_info(s, &info);
    pb_store_free(&s);
    if (rc != 0) {
        ex = cli_fail(&err);
        goto out;
    }
    if (info.user != PB_USER_OK) {
        /* plan plans writes, and they would be refused: say so as reconcile would */
        (void)fprintf(stderr, "prebuilds%s%s: prebuilds user %s %s\n", is_plan ? " " : "",
                      is_plan ? cmd : ": warning", c->target.user_id,
                      info.user == PB_USER_DELETED
                          ? "is soft-deleted (users.deleted): reconcile writes nothing until the "
                            "platform restores it"
                          : "not found in users: reconcile refuses until it exists");
        if (is_plan) {
            ex = PB_EXIT_REFUSED;
            goto out;
        }
    }
    if (info.paused)
        (void)fprintf(stderr, "prebuilds: note: reconciliation is paused (site_configs "
                              "prebuilds_settings): reconcile writes nothing\n");
    if (info.summary_untrusted)
        (void)fprintf(stderr, "prebuilds: warning: the configured-templates summary is not "
                              "trusted (a trigger failed or is disabled): the tables were read; "
                              "run 'prebuilds init --summary'\n");
    if (is_plan) {
        if (so.json) {
            json_t *arr = json_array();
            for (size_t i = 0; i < so.plan.n_orgs; i++) {
                const pb_plan_org *po = &so.plan.orgs[i];
                json_t *o = json_object();
                (void)json_object_set_new(o, "organization_id", json_string(po->org_id));
                (void)json_object_set_new(o, "organization_name", pb_json_string(po->org_name));
                (void)json_object_set_new(o, "add_membership",
                                          json_boolean(po->needs & PB_ROW_MEMBER));
                (void)json_object_set_new(o, "create_group",
                                          json_boolean(po->needs & PB_ROW_GROUP));
                (void)json_object_set_new(o, "add_group_membership",
                                          json_boolean(po->needs & PB_ROW_GROUP_MEMBER));
                (void)json_array_append_new(arr, o);
            }
            (void)pb_json_print(arr);
            json_decref(arr);
        } else {
            static const char *const hdr[5] = {"ORGANIZATION ID", "NAME", "ADD MEMBERSHIP",
                                               "CREATE GROUP", "ADD GROUP MEMBERSHIP"};
            pb_table t;
            if (pb_table_init(&t, 5, hdr) == 0) {
                for (size_t i = 0; i < so.plan.n_orgs; i++) {
                    const pb_plan_org *po = &so.plan.orgs[i];
                    const char *cells[5] = {
                        po->org_id, po->org_name, yes_no(po->needs & PB_ROW_MEMBER),
                        yes_no(po->needs & PB_ROW_GROUP), yes_no(po->needs & PB_ROW_GROUP_MEMBER)};
                    (void)pb_table_add(&t, cells);
                }
                if (so.plan.n_orgs > 0)
                    pb_table_print(&t, stdout);
                pb_table_fini(&t);
            }
            (void)printf("%zu of %zu organizations need changes: %zu memberships, %zu groups, "
                         "%zu group memberships\n",
                         so.plan.n_orgs, so.plan.n_considered, so.plan.n_member, so.plan.n_group,
                         so.plan.n_group_member);
        }
    } else if (so.json) {
        (void)pb_json_print(so.arr);
    } else {
        pb_table_print(&so.table, stdout);
    }
    ex = PB_EXIT_OK;
out:
    if (so.arr != NULL)
        json_decref(so.arr);
    if (!is_plan && !so.json)
        pb_table_fini(&so.table);
    pb_plan_fini(&so.plan);
    return ex;
}

/* ---- reconcile ---- */

static void log_added(pb_row_kind kind, const char *org_id, const char *org_name, void *arg)
{
    (void)arg;
    const char *what = kind == PB_ROW_MEMBER  ? "added organization membership"
                       : kind == PB_ROW_GROUP ? "created prebuilds group"
                                              : "added group membership";
    pb_log(PB_LOG_INFO, what, "organization_id", org_id, "organization_name", org_name, NULL);
}

static int cmd_reconcile(cli_ctx *c, int argc, char **argv)
{
    bool json = false, dry_run = false;
    int ex = parse_json_flag("reconcile", argc, argv, &json, &dry_run);
    if (ex != 0)
        return ex;
    pb_store *s = NULL;
    if ((ex = cli_open(c, 0, &s)) != 0)
        return ex;
    pb_reconcile_opts o = {.dry_run = dry_run, .added = log_added};
    pb_report r;
    pb_report_init(&r);
    pb_err err;
    int rc = pb_reconcile(s, &c->target, &o, &r, &err);
    pb_store_free(&s);
    if (json) {
        json_t *j = json_object();
        (void)json_object_set_new(j, "organizations", json_integer((json_int_t)r.organizations));
        (void)json_object_set_new(j, "memberships_added",
                                  json_integer((json_int_t)r.memberships_added));
        (void)json_object_set_new(j, "groups_created", json_integer((json_int_t)r.groups_created));
        (void)json_object_set_new(j, "group_memberships_added",
                                  json_integer((json_int_t)r.group_memberships_added));
        (void)json_object_set_new(j, "dry_run", json_boolean(r.dry_run));
        (void)json_object_set_new(j, "paused", json_boolean(r.paused));
        (void)json_object_set_new(j, "memberships_planned",
                                  json_integer((json_int_t)r.memberships_planned));
        (void)json_object_set_new(j, "groups_planned", json_integer((json_int_t)r.groups_planned));
        (void)json_object_set_new(j, "group_memberships_planned",
                                  json_integer((json_int_t)r.group_memberships_planned));
        (void)json_object_set_new(j, "statements", json_integer((json_int_t)r.statements));
        (void)json_object_set_new(j, "round_trips", json_integer((json_int_t)r.round_trips));
        (void)json_object_set_new(j, "attempts", json_integer((json_int_t)r.attempts));
        (void)json_object_set_new(j, "duration_ms", json_real(r.duration_ms));
        json_t *errs = json_array();
        for (size_t i = 0; i < r.n_errors; i++)
            (void)json_array_append_new(errs, pb_json_string(r.errors[i]));
        (void)json_object_set_new(j, "errors", errs);
        (void)pb_json_print(j);
        json_decref(j);
    } else if (rc == 0 && dry_run) {
        (void)printf("dry run: %zu organizations, would add %zu memberships, create %zu groups, "
                     "add %zu group memberships (%llu statements, %llu round trips, %.1f ms)\n",
                     r.organizations, r.memberships_planned, r.groups_planned,
                     r.group_memberships_planned, (unsigned long long)r.statements,
                     (unsigned long long)r.round_trips, r.duration_ms);
    } else if (rc == 0) {
        (void)printf("reconciled %zu organizations: %zu memberships added, %zu groups created, "
                     "%zu group memberships added (%llu statements, %llu round trips, %.1f ms)\n",
                     r.organizations, r.memberships_added, r.groups_created,
                     r.group_memberships_added, (unsigned long long)r.statements,
                     (unsigned long long)r.round_trips, r.duration_ms);
    }
    pb_report_fini(&r);
    if (rc == 0)
        return PB_EXIT_OK;
    ex = cli_fail(&err);
    /* A pass that started and could not finish its writes is a partial failure, unless
     * the cause has an exit code of its own (unreachable, no schema, refused, usage). */
    if (rc == PB_ECONNECT || rc == PB_ENOSCHEMA || rc == PB_EPRIVILEGE || rc == PB_ENOUSER ||
        rc == PB_EINVAL || rc == PB_EPAUSED)
        return ex;
    return PB_EXIT_PARTIAL;
}

/* ---- global options ---- */

static const char *env_or(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : dflt;
}

int main(int argc, char **argv)
{
    cli_ctx c;
    memset(&c, 0, sizeof(c));
    const char *user_id = env_or("PREBUILDS_USER_ID", PB_DEFAULT_USER_ID);
    const char *group_name = env_or("PREBUILDS_GROUP_NAME", PB_DEFAULT_GROUP_NAME);
    const char *group_display =
        env_or("PREBUILDS_GROUP_DISPLAY_NAME", PB_DEFAULT_GROUP_DISPLAY_NAME);
    const char *log_level = env_or("PREBUILDS_LOG_LEVEL", "info");
    const char *log_format = env_or("PREBUILDS_LOG_FORMAT", "text");
    c.db = env_or("PREBUILDS_DB", "sqlite:prebuilds.db");

    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+h", pb_global_options, NULL)) != -1) {
        switch (ch) {
        case PB_CONF_DB:
            c.db = optarg;
            break;
        case PB_CONF_USER_ID:
            user_id = optarg;
            break;
        case PB_CONF_GROUP_NAME:
            group_name = optarg;
            break;
        case PB_CONF_GROUP_DISPLAY_NAME:
            group_display = optarg;
            break;
        case PB_CONF_LOG_LEVEL:
            log_level = optarg;
            break;
        case PB_CONF_LOG_FORMAT:
            log_format = optarg;
            break;
        case 'h':
        case PB_OPT_HELP:
            (void)fputs(usage_text, stdout);
            return PB_EXIT_OK;
        case PB_OPT_VERSION:
            (void)printf("prebuilds %s\n", PB_VERSION);
            return PB_EXIT_OK;
        case ':':
            return cli_usage_error(NULL, "option %s needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(NULL, "unknown option \"%s\"", argv[optind - 1]);
        }
    }
    pb_log_level level;
    pb_log_format format;
    if (pb_log_level_parse(log_level, &level) != 0)
        return cli_usage_error(NULL, "invalid log level \"%s\": use debug, info, warn or error",
                               log_level);
    if (pb_log_format_parse(log_format, &format) != 0)
        return cli_usage_error(NULL, "invalid log format \"%s\": use text or json", log_format);
    pb_log_setup(level, format);

    pb_err err;
    pb_err_clear(&err);
    if (pb_uuid_parse(user_id, c.target.user_id, "prebuilds user id", &err) != 0 ||
        pb_name_check(group_name, "group name", PB_GROUP_NAME_MAX, &err) != 0 ||
        pb_name_check(group_display, "group display name", PB_GROUP_NAME_MAX, &err) != 0)
        return cli_fail(&err);
    (void)snprintf(c.group_name, sizeof(c.group_name), "%s", group_name);
    (void)snprintf(c.group_display_name, sizeof(c.group_display_name), "%s", group_display);
    c.target.group_name = c.group_name;
    c.target.group_display_name = c.group_display_name;

    if (optind >= argc)
        return cli_usage_error(NULL, "missing command");
    const char *cmd = argv[optind];
    int sub_argc = argc - optind;
    char **sub_argv = argv + optind;
    if (strcmp(cmd, "help") == 0) {
        (void)fputs(usage_text, stdout);
        return PB_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*fn)(cli_ctx *, int, char **);
    } cmds[] = {
        {"init", cmd_init},         {"reconcile", cmd_reconcile},       {"org", cmd_org},
        {"template", cmd_template}, {"version", cmd_version},           {"preset", cmd_preset},
        {"member", cmd_member},     {"group-member", cmd_group_member}, {"group", cmd_group},
        {"seed", cmd_seed},         {"uninstall", cmd_uninstall},       {"pause", cmd_pause},
        {"resume", cmd_resume},
    };
    int (*fn)(cli_ctx *, int, char **) = NULL;
    bool is_status = strcmp(cmd, "status") == 0, is_plan = strcmp(cmd, "plan") == 0;
    bool is_run = strcmp(cmd, "run") == 0;
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(cmd, cmds[i].name) == 0)
            fn = cmds[i].fn;
    }
    if (fn == NULL && !is_status && !is_plan && !is_run)
        return cli_usage_error(NULL, "unknown command \"%s\"", cmd);
    if (pb_dburl_parse(c.db, &c.url, &err) != 0)
        return cli_fail(&err);
    int ex;
    if (is_status || is_plan)
        ex = cmd_status_or_plan(&c, sub_argc, sub_argv, is_plan);
    else if (is_run)
        ex = cmd_run(&c, sub_argc, sub_argv, optind, argv);
    else
        ex = fn(&c, sub_argc, sub_argv);
    pb_dburl_fini(&c.url);
    return ex;
}
