/* What every layer of the application shares: the exit codes, the settings a command runs
 * with, and the one-line reports of errors and warnings (app.c), which follow --log-format. */
#ifndef APP_H
#define APP_H

#include <stdbool.h>

#include "config.h"
#include "prebuilds/prebuilds.h"

/* Exit codes, documented in the README, the man page and --help. */
enum {
    APP_EXIT_OK = 0,
    APP_EXIT_ERROR = 1,       /* unexpected error, or output that could not be written */
    APP_EXIT_USAGE = 2,       /* bad option, argument or value */
    APP_EXIT_UNAVAILABLE = 3, /* database unreachable or schema missing */
    APP_EXIT_PARTIAL = 4,     /* reconcile ran and did not converge everything */
    APP_EXIT_REFUSED = 5,     /* refused: privileges, password, read-only, missing user, conflict */
    APP_EXIT_PAUSED = 6,      /* the platform's pause switch is on: nothing was written */
};

typedef struct cli_ctx {
    app_daemon_conf conf;        /* the settings: option > file > environment > default */
    const char *cli[APP_CONF_N]; /* the values given on the command line (NULL: not given) */
    const char *config_path;     /* the configuration file read; NULL for none */
    bool once;                   /* run --once */
} cli_ctx;

/* Print err as one line on stderr and return the matching exit code. */
int cli_fail(const pb_err *err);
int cli_exit_code(int code);
/* The exit code of a pass (reconcile, run --once): 0, or for a failure its cause's own code
 * when it has one (unavailable, refused, usage, paused; a read-only server is a refusal),
 * else APP_EXIT_PARTIAL: the pass started and could not finish its writes. */
int cli_pass_exit_code(int rc, const pb_err *err);
/* One error line; returns `exit_code`. */
int cli_error(int exit_code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One usage error line naming the command ("prebuilds org create: ..."; NULL: none) and
 * where its help is; returns APP_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A warning (level warn) or a note (level info): "prebuilds: warning: ..." as text, a log
 * line with --log-format json; shown as the log level says. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Open the store named by the configuration (SQLite: with its lock timeout); prints the
 * error itself. Returns an exit code. */
int cli_open(cli_ctx *c, unsigned flags, pb_store **out);

/* What a retried attempt waited for, as a metric label and log field: lock_timeout,
 * deadlock, serialization, vanished (a row we referenced went away), connection, other. */
const char *cli_retry_kind(const pb_err *err);

/* The library's callbacks of a pass, logged the same way by every command: a row added
 * (info) and a retried attempt (warn, with its cause). `arg` is unused. */
void cli_log_added(pb_row_kind kind, const char *org_id, const char *org_name, void *arg);
void cli_log_retry(unsigned attempt, const pb_err *err, void *arg);

#endif
