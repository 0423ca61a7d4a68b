/* `prebuilds run`: the long-lived reconciler. A single-threaded loop waits on a monotonic
 * clock, the database socket and a self-pipe fed by signal handlers; it reconciles every
 * interval (with jitter), on notifications (--listen) and on SIGUSR1, follows or leads
 * other replicas through an advisory lock, and survives database outages. */
#ifndef DMN_DAEMON_H
#define DMN_DAEMON_H

#include "app.h"

/* `c` holds what the command line gave (the settings, the configuration file, --once), which
 * keeps precedence over the file at every reload. Returns an exit code. */
int cmd_run(cli_ctx *c);

#endif
