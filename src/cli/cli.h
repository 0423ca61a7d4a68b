/* The commands of the `prebuilds` binary, described by one table (commands.c): each has its
 * synopsis, its help, its options and its function, so that parsing, `--help` and the
 * overview can never disagree. main.c holds the global options and the dispatch; report.c
 * status, plan and reconcile; schema.c init, uninstall, pause and resume; admin.c the data
 * commands; the daemon's `run` is in src/daemon/. */
#ifndef CLI_H
#define CLI_H

#include "app.h"
#include "args.h"

#define CLI_MAX_OPTS 16

typedef struct cli_cmd cli_cmd;
typedef int (*cli_fn)(cli_ctx *c, const cli_cmd *cmd, const app_args *a);

struct cli_cmd {
    const char *name;    /* "status", "org create" */
    const char *args;    /* the positional words in the synopsis ("NAME"); NULL: none */
    size_t n_args;       /* how many positional words it takes (all required) */
    const char *summary; /* one line for the overview */
    const char *text;    /* its --help: what it does, in full */
    app_opt opts[CLI_MAX_OPTS];
    cli_fn fn;
    bool data; /* a data command (listed apart) */
};

/* The command named by argv[0] (and argv[1] for "org create" and the others with a verb):
 * *used gets how many words the name took. NULL when unknown; *family is then set when
 * argv[0] alone names a family ("org") whose verb is missing or unknown. */
const cli_cmd *cli_find(int argc, char *const *argv, int *used, const char **family);
/* The options of the command line before the command (built once from config.c's table). */
const app_opt *cli_global_opts(void);
/* The settings behind the options of `cmd` and the global ones: the app_conf_key of option
 * `name`, or -1 when it is not a setting. */
int cli_setting_of(const char *name);

/* --help texts. */
void cli_print_overview(FILE *f);
void cli_print_help(const cli_cmd *cmd, FILE *f);
void cli_print_family(const char *family, FILE *f);
/* The value of option `name` of `cmd` (NULL: not given). */
const char *cli_opt(const cli_cmd *cmd, const app_args *a, const char *name);

/* The commands. */
int cmd_status(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_plan(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_reconcile(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_init(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_uninstall(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_pause(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_resume(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_create(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_list(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_remove(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_seed(cli_ctx *c, const cli_cmd *cmd, const app_args *a);
int cmd_run_cli(cli_ctx *c, const cli_cmd *cmd, const app_args *a);

#endif
