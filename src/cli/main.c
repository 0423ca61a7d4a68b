/* The `prebuilds` command: global options, then one command with its own options, each
 * parsed strictly (args.c) against the command table (commands.c). Every command then gets
 * the same configuration: option > configuration file > environment > default, the winner
 * checked, before the database is touched. Output that cannot be written is an error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "log.h"

/* A word that was not an option here: say where it belongs, when it belongs elsewhere. */
static int misplaced(const char *cmd, const app_args *a, const char *msg, bool global)
{
    char name[64] = "";
    if (a->bad != NULL && strncmp(a->bad, "--", 2) == 0 && strncmp(msg, "unknown option", 14) == 0)
        (void)snprintf(name, sizeof(name), "%.*s", (int)strcspn(a->bad + 2, "="), a->bad + 2);
    int key = name[0] != '\0' ? cli_setting_of(name) : -1;
    bool run_opt = key >= 0 && !app_conf_key_info(key)->global;
    if (!global && name[0] != '\0' && app_args_find(cli_global_opts(), name) >= 0)
        return cli_usage_error(cmd,
                               "--%s is a global option: put it before the command "
                               "(prebuilds --%s ... %s)",
                               name, name, cmd);
    if (run_opt)
        return cli_usage_error(global ? NULL : cmd,
                               "--%s is an option of run: put it after 'run' (prebuilds run --%s "
                               "...), or set %s in the configuration file",
                               name, name, app_conf_key_name(key));
    if (global && name[0] != '\0')
        return cli_usage_error(NULL,
                               "%s: not a global option (command options go after the "
                               "command)",
                               msg);
    return cli_usage_error(cmd, "%s", msg);
}

/* The command-line values that are settings, from the global options and the command's. */
static int take_settings(cli_ctx *c, const app_opt *opts, const app_args *a, const char *cmd)
{
    for (int k = 0; opts[k].name != NULL; k++) {
        int key = cli_setting_of(opts[k].name);
        const char *v = a->value[k];
        if (strcmp(opts[k].name, "no-listen") == 0 && v != NULL) {
            key = APP_CONF_LISTEN;
            if (c->cli[key] != NULL)
                return cli_usage_error(cmd, "--listen and --no-listen contradict each other");
        }
        if (key < 0 || v == NULL)
            continue;
        if (opts[k].metavar == NULL) /* a flag: --listen or --no-listen */
            v = strcmp(opts[k].name, "no-listen") == 0 ? "false" : "true";
        c->cli[key] = v;
    }
    return 0;
}

/* The configuration file named by the command line (global or run's --config). */
static int config_file(const app_args *g, const cli_cmd *cmd, const app_args *a, const char **path)
{
    const app_opt *gopts = cli_global_opts();
    const char *given = app_args_get(gopts, g, "config");
    bool none = app_args_get(gopts, g, "no-config") != NULL;
    int k = app_args_find(cmd->opts, "config");
    if (k >= 0 && a->value[k] != NULL) {
        if (given != NULL || none)
            return cli_usage_error(cmd->name, "--config given before and after the command");
        given = a->value[k];
    }
    if (given != NULL && none)
        return cli_usage_error(NULL, "--config and --no-config contradict each other");
    *path = app_conf_path(given, none);
    return 0;
}

static int run_command(cli_ctx *c, const app_args *g, int argc, char **argv)
{
    int used = 0;
    const char *family = NULL;
    const cli_cmd *cmd = cli_find(argc, argv, &used, &family);
    if (cmd == NULL && family != NULL) {
        bool help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
        if (help) {
            cli_print_family(family, stdout);
            return APP_EXIT_OK;
        }
        size_t flen = strcspn(family, " ");
        return cli_usage_error(NULL,
                               argc < 2 ? "%.*s: missing verb ('prebuilds %.*s --help')"
                                        : "%.*s: unknown verb ('prebuilds %.*s --help')",
                               (int)flen, family, (int)flen, family);
    }
    if (cmd == NULL)
        return cli_usage_error(NULL, "unknown command \"%s\"", argv[0]);
    app_args a;
    char msg[512];
    if (app_args_parse(cmd->opts, argc - used, argv + used, cmd->n_args, false, &a, msg,
                       sizeof(msg)) != 0)
        return misplaced(cmd->name, &a, msg, false);
    if (a.help) {
        cli_print_help(cmd, stdout);
        return APP_EXIT_OK;
    }
    if (a.n_pos < cmd->n_args)
        return cli_usage_error(cmd->name, "missing %s", cmd->args);
    int ex = take_settings(c, cli_global_opts(), g, NULL);
    if (ex == 0)
        ex = take_settings(c, cmd->opts, &a, cmd->name);
    if (ex == 0)
        ex = config_file(g, cmd, &a, &c->config_path);
    if (ex != 0)
        return ex;
    c->once = app_args_find(cmd->opts, "once") >= 0 && cli_opt(cmd, &a, "once") != NULL;
    if (app_daemon_conf_build(&c->conf, c->config_path, c->cli, msg, sizeof(msg)) != 0)
        return cli_error(APP_EXIT_USAGE, "%s", msg); /* it names the option, variable or line */
    app_log_setup(c->conf.log_level, c->conf.log_format);
    if (c->cli[APP_CONF_DB] != NULL && pb_dburl_has_password(c->cli[APP_CONF_DB]))
        cli_warn("the password in --db can be read by every user of this machine (ps, /proc): "
                 "put it in a password file (PGPASSFILE, ~/.pgpass), a service file "
                 "(service=NAME) or the configuration file's db key");
    ex = cmd->fn(c, cmd, &a);
    app_daemon_conf_fini(&c->conf);
    return ex;
}

int cmd_run_cli(cli_ctx *c, const cli_cmd *cmd, const app_args *a)
{
    (void)cmd;
    (void)a; /* parsed into c: the settings, the file, --once */
    return cmd_run(c);
}

/* Standard output carries the result: a result that did not reach it is a failure. */
static int finish(int ex)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int e = errno;
        int code = cli_error(APP_EXIT_ERROR, "write standard output: %s",
                             e != 0 ? strerror(e) : "write error");
        return ex != APP_EXIT_OK ? ex : code;
    }
    return ex;
}

/* Usage errors come before the configuration is built: they follow the log format the
 * command line or the environment asks for already (the file's counts from then on). */
static void early_log_format(const app_args *g)
{
    const char *v = app_args_get(cli_global_opts(), g, "log-format");
    if (v == NULL)
        v = getenv("PREBUILDS_LOG_FORMAT");
    app_log_format f;
    if (v != NULL && app_log_format_parse(v, &f) == 0)
        app_log_setup(APP_LOG_INFO, f);
}

int main(int argc, char **argv)
{
    cli_ctx c;
    memset(&c, 0, sizeof(c));
    app_args g;
    char msg[512];
    const app_opt *gopts = cli_global_opts();
    int n = argc > 0 ? argc - 1 : 0;
    char **words = argv + (argc > 0 ? 1 : 0);
    if (app_args_parse(gopts, n, words, 0, true, &g, msg, sizeof(msg)) != 0)
        return misplaced(NULL, &g, msg, true);
    if (g.help || (g.next < n && strcmp(words[g.next], "help") == 0 && g.next + 1 == n)) {
        cli_print_overview(stdout);
        return finish(APP_EXIT_OK);
    }
    if (app_args_get(gopts, &g, "version") != NULL) {
        (void)printf("prebuilds %s\n", PB_VERSION);
        return finish(APP_EXIT_OK);
    }
    early_log_format(&g);
    if (g.next >= n)
        return cli_usage_error(NULL, "missing command");
    if (strcmp(words[g.next], "help") == 0) { /* prebuilds help COMMAND ... */
        char *help_argv[4] = {NULL, NULL, "--help", NULL};
        int k = 0;
        for (int i = g.next + 1; i < n && k < 2; i++)
            help_argv[k++] = words[i];
        help_argv[k] = "--help";
        return finish(run_command(&c, &g, k + 1, help_argv));
    }
    return finish(run_command(&c, &g, n - g.next, words + g.next));
}
