/* Every command of `prebuilds` in one table: synopsis, help and options, read by the parser,
 * by `--help` and by the overview. The options that are settings (the global ones and most
 * of `run`'s) come from config.c's table, with their variable and default. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define ID_OPT                                                                                     \
    {                                                                                              \
        "id", "UUID", "the new object's id (default: a random one)", 0                             \
    }
#define JSON_OPT                                                                                   \
    {                                                                                              \
        "json", NULL, "print JSON instead of a table", 0                                           \
    }
#define ORG_HELP "the organization, by id or by name"

static const char org_text[] =
    "ORG, TEMPLATE and VERSION are ids or names. An id that matches wins; a name is compared\n"
    "without regard to case and must name exactly one object, or the command is refused\n"
    "with the candidates listed. --org narrows a --template, --template (or --org) a\n"
    "--version, for names that repeat across organizations or templates. The data commands\n"
    "that write refuse to run on a database prebuilds did not create.";

static cli_cmd commands[] = {
    {"init",
     NULL,
     0,
     "create or migrate the schema; on a platform's database, only check it",
     "Create prebuilds' schema in an empty database, or migrate it. On a database with the\n"
     "platform's tables that prebuilds did not create, change nothing but what is asked\n"
     "for (the recommended index, the summary, the notify triggers); check that the\n"
     "prebuilds user exists. A database that holds other tables is refused unless\n"
     "--add-to-existing says to add prebuilds' tables beside them.",
     {{"recommended-indexes", NULL, "on a platform's database, add the recommended index", 0},
      {"no-create-user", NULL, "do not create the prebuilds user (prebuilds' own schema)", 0},
      {"print-grants", "ROLE",
       "PostgreSQL: print the GRANTs a reconciler role needs here, change nothing", 0},
      {"triggers", NULL, "PostgreSQL: install the NOTIFY triggers 'run --listen' reacts to", 0},
      {"summary", NULL, "install or rebuild the configured-templates summary", 0},
      {"add-to-existing", NULL, "create prebuilds' tables in a database that holds other tables",
       0},
      {NULL, NULL, NULL, 0}},
     cmd_init,
     false},
    {"status",
     NULL,
     0,
     "one row per qualifying organization",
     "One row per organization that has prebuilds configured: whether the prebuilds user is\n"
     "a member, the prebuilds group, whether the user is in it. Exits 5 when the prebuilds\n"
     "user is missing or soft-deleted and 6 when reconciliation is paused, as reconcile\n"
     "would, after printing what it found.",
     {JSON_OPT, {NULL, NULL, NULL, 0}},
     cmd_status,
     false},
    {"plan",
     NULL,
     0,
     "what a reconcile would add",
     "What a reconcile would add, per organization, and a summary line. Exits as reconcile\n"
     "would refuse: 5 when the prebuilds user is missing or soft-deleted, 6 when paused.",
     {JSON_OPT, {NULL, NULL, NULL, 0}},
     cmd_plan,
     false},
    {"reconcile",
     NULL,
     0,
     "add what is missing",
     "One pass: read the status (one statement), add what is missing with a fixed number of\n"
     "set-based statements, print one summary line and log one line per row added. A lock\n"
     "wait that times out, a deadlock or a vanished row retries the pass (3 attempts), each\n"
     "retry logged with its cause.",
     {JSON_OPT, {"dry-run", NULL, "read and plan, write nothing", 0}, {NULL, NULL, NULL, 0}},
     cmd_reconcile,
     false},
    {"run",
     NULL,
     0,
     "the reconciliation daemon",
     "Reconcile continuously: a full pass every interval (+/-10% jitter), a pass for the\n"
     "organizations PostgreSQL notifies (--listen), one leader among replicas, reconnects\n"
     "with backoff when the database goes away (with a multi-host URL and\n"
     "target_session_attrs=read-write, to whichever server is the primary now). Signals:\n"
     "SIGTERM/SIGINT stop (a pass in flight is cancelled and rolled back, exit 0 within\n"
     "2 s); SIGHUP reloads the configuration (kept when invalid); SIGUSR1 runs a full pass\n"
     "now. systemd: Type=notify (READY=1, STATUS=, STOPPING=1, WATCHDOG=1).",
     {{NULL, NULL, NULL, 0}}, /* filled from config.c's table */
     cmd_run_cli,
     false},
    {"uninstall",
     NULL,
     0,
     "remove what init installed on a platform's database",
     "Remove everything init installed in a database prebuilds did not create (the summary,\n"
     "the notify triggers, their functions, the recommended index). Refused on prebuilds'\n"
     "own schema: drop that database (or delete the SQLite file) instead.",
     {{NULL, NULL, NULL, 0}},
     cmd_uninstall,
     false},
    {"pause",
     NULL,
     0,
     "set the pause switch (prebuilds' own schema)",
     "Set the pause switch (site_configs prebuilds_settings) on prebuilds' own schema:\n"
     "reconcile and the daemon write nothing until resume. On a platform's database the\n"
     "switch is the platform's, and this is refused.",
     {{NULL, NULL, NULL, 0}},
     cmd_pause,
     false},
    {"resume",
     NULL,
     0,
     "lift the pause switch (prebuilds' own schema)",
     "Lift the pause switch that pause set.",
     {{NULL, NULL, NULL, 0}},
     cmd_resume,
     false},
    {"org create",
     "NAME",
     1,
     "create an organization; prints its id",
     org_text,
     {ID_OPT, {NULL, NULL, NULL, 0}},
     cmd_create,
     true},
    {"org list",
     NULL,
     0,
     "list the organizations",
     org_text,
     {JSON_OPT, {NULL, NULL, NULL, 0}},
     cmd_list,
     true},
    {"template create",
     "NAME",
     1,
     "create a template in an organization; prints its id",
     org_text,
     {{"org", "ORG", ORG_HELP, APP_OPT_REQUIRED}, ID_OPT, {NULL, NULL, NULL, 0}},
     cmd_create,
     true},
    {"template list",
     NULL,
     0,
     "list the templates",
     org_text,
     {{"org", "ORG", "only this organization's", 0}, JSON_OPT, {NULL, NULL, NULL, 0}},
     cmd_list,
     true},
    {"version create",
     "NAME",
     1,
     "create a template version; prints its id",
     org_text,
     {{"template", "TEMPLATE", "the template, by id or by name", APP_OPT_REQUIRED},
      {"org", "ORG", "the template's organization", 0},
      ID_OPT,
      {NULL, NULL, NULL, 0}},
     cmd_create,
     true},
    {"version list",
     NULL,
     0,
     "list the template versions",
     org_text,
     {{"template", "TEMPLATE", "only this template's", 0},
      {"org", "ORG", "the template's organization", 0},
      JSON_OPT,
      {NULL, NULL, NULL, 0}},
     cmd_list,
     true},
    {"preset create",
     "NAME",
     1,
     "create a preset; prints its id",
     org_text,
     {{"version", "VERSION", "the template version, by id or by name", APP_OPT_REQUIRED},
      {"template", "TEMPLATE", "the version's template", 0},
      {"org", "ORG", "the version's organization", 0},
      {"desired-instances", "N", "desired_instances (default: not set)", 0},
      ID_OPT,
      {NULL, NULL, NULL, 0}},
     cmd_create,
     true},
    {"preset list",
     NULL,
     0,
     "list the presets",
     org_text,
     {{"version", "VERSION", "only this version's", 0},
      {"template", "TEMPLATE", "the version's template", 0},
      {"org", "ORG", "the version's organization", 0},
      JSON_OPT,
      {NULL, NULL, NULL, 0}},
     cmd_list,
     true},
    {"member remove",
     NULL,
     0,
     "remove the prebuilds user from an organization (drift)",
     org_text,
     {{"org", "ORG", ORG_HELP, APP_OPT_REQUIRED}, {NULL, NULL, NULL, 0}},
     cmd_remove,
     true},
    {"group-member remove",
     NULL,
     0,
     "remove the prebuilds user from the group (drift)",
     org_text,
     {{"org", "ORG", ORG_HELP, APP_OPT_REQUIRED}, {NULL, NULL, NULL, 0}},
     cmd_remove,
     true},
    {"group remove",
     NULL,
     0,
     "delete the organization's prebuilds group (drift)",
     org_text,
     {{"org", "ORG", ORG_HELP, APP_OPT_REQUIRED}, {NULL, NULL, NULL, 0}},
     cmd_remove,
     true},
    {"seed",
     NULL,
     0,
     "build a synthetic data set",
     "A synthetic data set with deterministic ids for a given --seed, the same on both\n"
     "backends: exactly\n"
     "floor(orgs x prebuilds-fraction) organizations get desired_instances on the first\n"
     "preset of every version, and of those floor(n x drift-fraction) miss something (in\n"
     "turn: everything, the membership, the group, the group membership). Seeding the same\n"
     "--seed twice is refused.",
     {{"orgs", "N", "organizations to create", APP_OPT_REQUIRED},
      {"templates-per-org", "N", "default 3", 0},
      {"versions-per-template", "N", "default 5", 0},
      {"presets-per-version", "N", "default 4", 0},
      {"prebuilds-fraction", "F", "of the organizations, with prebuilds (default 0.5)", 0},
      {"drift-fraction", "F", "of those, drifted (default 0.1)", 0},
      {"seed", "N", "the data set (default 1)", 0},
      {NULL, NULL, NULL, 0}},
     cmd_seed,
     true},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* ---- the options that are settings ---- */

static app_opt global_opts[APP_CONF_N + 5];
static char opt_names[APP_CONF_N][32];
static char opt_help[APP_CONF_N][400];

/* The option of setting k: its name, metavar and help with its variable and default. */
static app_opt setting_opt(int k)
{
    const app_conf_info *in = app_conf_key_info(k);
    char env[64];
    app_conf_key_option(k, opt_names[k], sizeof(opt_names[k]));
    app_conf_key_env(k, env, sizeof(env));
    (void)snprintf(opt_help[k], sizeof(opt_help[k]), "%s\n(%s; default %s)", in->help, env,
                   app_conf_key_default(k));
    app_opt o = {opt_names[k] + 2, in->metavar, opt_help[k], 0};
    return o;
}

static void init_tables(void)
{
    static bool done = false;
    if (done)
        return;
    done = true;
    size_t g = 0, r = 0;
    cli_cmd *run = NULL;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, "run") == 0)
            run = &commands[i];
    for (int k = 0; k < APP_CONF_N; k++) {
        if (app_conf_key_info(k)->global)
            global_opts[g++] = setting_opt(k);
        else if (r + 5 < CLI_MAX_OPTS)
            run->opts[r++] = setting_opt(k);
    }
    static const app_opt global_rest[] = {
        {"config", "FILE",
         "the configuration file (PREBUILDS_CONFIG;\ndefault " APP_CONF_DEFAULT_PATH
         " when it exists)",
         0},
        {"no-config", NULL, "read no configuration file", 0},
        {"version", NULL, "print the version", 0},
        {"help", NULL, "this help ('prebuilds COMMAND --help' for a command's)", 0},
    };
    memcpy(&global_opts[g], global_rest, sizeof(global_rest));
    static const app_opt run_rest[] = {
        {"no-listen", NULL, "do not LISTEN, whatever the file or the environment say", 0},
        {"config", "FILE", "the configuration file, as the global --config", APP_OPT_HIDDEN},
        {"once", NULL, "one pass (taking the lock if free), then exit with reconcile's code", 0},
    };
    memcpy(&run->opts[r], run_rest, sizeof(run_rest));
}

const app_opt *cli_global_opts(void)
{
    init_tables();
    return global_opts;
}

int cli_setting_of(const char *name)
{
    init_tables();
    for (int k = 0; k < APP_CONF_N; k++)
        if (strcmp(opt_names[k] + 2, name) == 0)
            return k;
    return -1;
}

const char *cli_opt(const cli_cmd *cmd, const app_args *a, const char *name)
{
    return app_args_get(cmd->opts, a, name);
}

const cli_cmd *cli_find(int argc, char *const *argv, int *used, const char **family)
{
    init_tables();
    *family = NULL;
    *used = 0;
    if (argc < 1)
        return NULL;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const char *name = commands[i].name;
        const char *sp = strchr(name, ' ');
        if (sp == NULL) {
            if (strcmp(name, argv[0]) == 0) {
                *used = 1;
                return &commands[i];
            }
            continue;
        }
        size_t flen = (size_t)(sp - name);
        if (strlen(argv[0]) != flen || strncmp(name, argv[0], flen) != 0)
            continue;
        *family = name; /* "org ..." : the family's first entry */
        if (argc >= 2 && strcmp(sp + 1, argv[1]) == 0) {
            *used = 2;
            return &commands[i];
        }
    }
    return NULL;
}

/* ---- help ---- */

/* "org create NAME [--id UUID]", wrapped before column 80 with continuation lines indented
 * by `indent` (the first line starts at column `col`). */
static void synopsis(const cli_cmd *cmd, FILE *f, int col, int indent)
{
    col += fprintf(f, "%s%s%s", cmd->name, cmd->args ? " " : "", cmd->args ? cmd->args : "");
    for (int k = 0; cmd->opts[k].name != NULL; k++) {
        const app_opt *o = &cmd->opts[k];
        if (o->flags & APP_OPT_HIDDEN)
            continue;
        bool req = (o->flags & APP_OPT_REQUIRED) != 0;
        char word[96];
        int n = snprintf(word, sizeof(word), "%s--%s%s%s%s", req ? "" : "[", o->name,
                         o->metavar ? " " : "", o->metavar ? o->metavar : "", req ? "" : "]");
        if (col + 1 + n > 80) {
            (void)fprintf(f, "\n%*s", indent, "");
            col = indent;
        } else {
            (void)fputc(' ', f);
            col++;
        }
        col += fprintf(f, "%s", word);
    }
}

void cli_print_help(const cli_cmd *cmd, FILE *f)
{
    (void)fputs("usage: prebuilds [GLOBAL OPTIONS] ", f);
    synopsis(cmd, f, 34, 6);
    (void)fprintf(f, "\n\n%s\n", cmd->text);
    if (cmd->opts[0].name != NULL) {
        (void)fputs("\nOptions:\n", f);
        app_args_print_help(cmd->opts, 30, f);
    }
    (void)fputs("\nGlobal options go before the command: 'prebuilds --help' lists them.\n", f);
}

void cli_print_family(const char *family, FILE *f)
{
    size_t flen = strcspn(family, " ");
    (void)fprintf(f, "usage: prebuilds [GLOBAL OPTIONS] %.*s VERB ...\n\n", (int)flen, family);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strncmp(commands[i].name, family, flen) != 0 || commands[i].name[flen] != ' ')
            continue;
        (void)fputs("  ", f);
        synopsis(&commands[i], f, 2, 6);
        (void)fprintf(f, "\n      %s\n", commands[i].summary);
    }
    (void)fprintf(f, "\n'prebuilds %.*s VERB --help' tells more.\n", (int)flen, family);
}

void cli_print_overview(FILE *f)
{
    init_tables();
    (void)fputs("usage: prebuilds [GLOBAL OPTIONS] COMMAND [COMMAND OPTIONS]\n"
                "\n"
                "Keeps the prebuilds user a member of every organization with prebuilds\n"
                "configured, and of that organization's prebuilds group.\n"
                "\n"
                "Global options (before the command). Each setting is also a key of the\n"
                "configuration file (--user-id is user_id) and a variable; the option wins over\n"
                "the file, the file over the variable, the variable over the default:\n",
                f);
    app_args_print_help(global_opts, 28, f);
    (void)fputs("\nReconciler commands:\n", f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!commands[i].data)
            (void)fprintf(f, "  %-26s%s\n", commands[i].name, commands[i].summary);
    (void)fputs("\nData commands (ORG, TEMPLATE, VERSION: an id or a name):\n", f);
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (!commands[i].data)
            continue;
        (void)fputs("  ", f);
        synopsis(&commands[i], f, 2, 6);
        (void)fputc('\n', f);
    }
    (void)fputs("\n'prebuilds COMMAND --help' tells more about a command.\n"
                "\n"
                "Exit codes: 0 success, 1 unexpected error or output that could not be written,\n"
                "2 usage or invalid value, 3 database unreachable or schema missing,\n"
                "4 reconcile did not converge everything, 5 refused (privileges, password,\n"
                "read-only server, prebuilds user missing or soft-deleted, conflict, not found,\n"
                "ambiguous reference, a database prebuilds did not create), 6 reconciliation\n"
                "paused: nothing written.\n",
                f);
}
