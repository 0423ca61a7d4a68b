/* The commands of the `prebuilds` binary: main.c holds the reconciler's (init, status,
 * plan, reconcile), admin.c the data commands; the daemon's `run` is in src/daemon/. */
#ifndef PB_CLI_H
#define PB_CLI_H

#include "app.h"

int cmd_org(cli_ctx *c, int argc, char **argv);
int cmd_template(cli_ctx *c, int argc, char **argv);
int cmd_version(cli_ctx *c, int argc, char **argv);
int cmd_preset(cli_ctx *c, int argc, char **argv);
int cmd_member(cli_ctx *c, int argc, char **argv);
int cmd_group_member(cli_ctx *c, int argc, char **argv);
int cmd_group(cli_ctx *c, int argc, char **argv);
int cmd_seed(cli_ctx *c, int argc, char **argv);
/* schema.c: init (and --print-grants), uninstall, pause, resume */
int cmd_init(cli_ctx *c, int argc, char **argv);
int cmd_uninstall(cli_ctx *c, int argc, char **argv);
int cmd_pause(cli_ctx *c, int argc, char **argv);
int cmd_resume(cli_ctx *c, int argc, char **argv);

#endif
