/* `prebuilds run`: the long-lived reconciler. A single-threaded loop waits on a monotonic
 * clock, the database socket and a self-pipe fed by signal handlers; it reconciles every
 * interval (with jitter), on notifications (--listen) and on SIGUSR1, follows or leads
 * other replicas through an advisory lock, and survives database outages. */
#ifndef PB_CLI_DAEMON_H
#define PB_CLI_DAEMON_H

#include "app.h"

/* argv/argc: the command and its options ("run", ...). global_argv/global_argc: the
 * program name and the global options before the command, re-read so that the command
 * line keeps precedence over the config file on every reload. Returns an exit code. */
int cmd_run(cli_ctx *c, int argc, char **argv, int global_argc, char **global_argv);

#endif
