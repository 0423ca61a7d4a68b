/* What every layer of the application shares: the parsed global options, the exit codes
 * and the one-line report of a library error (app.c). */
#ifndef PB_APP_H
#define PB_APP_H

#include "prebuilds/prebuilds.h"

/* Exit codes, documented in the README and in --help. */
enum {
    PB_EXIT_OK = 0,
    PB_EXIT_ERROR = 1,       /* unexpected error */
    PB_EXIT_USAGE = 2,       /* bad option, argument or value */
    PB_EXIT_UNAVAILABLE = 3, /* database unreachable or schema missing */
    PB_EXIT_PARTIAL = 4,     /* reconcile ran and did not converge everything */
    PB_EXIT_REFUSED = 5,     /* the database refused: privileges, missing user, conflict */
    PB_EXIT_PAUSED = 6,      /* the platform's pause switch is on: nothing was written */
};

typedef struct cli_ctx {
    const char *db; /* as given; never printed (may hold a password) */
    pb_dburl url;
    pb_target target;
    char group_name[PB_GROUP_NAME_MAX + 1];
    char group_display_name[PB_GROUP_NAME_MAX + 1];
} cli_ctx;

/* Print err as one line on stderr and return the matching exit code. */
int cli_fail(const pb_err *err);
int cli_exit_code(int code);
/* Open the store named by --db; prints the error itself. Returns an exit code. */
int cli_open(cli_ctx *c, unsigned flags, pb_store **out);
/* One-line usage error on stderr; returns PB_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
