/* What every layer of the application shares: the mapping of library errors to exit codes
 * and the one-line reports of errors, usage errors, warnings and notes. As text they read
 * "prebuilds: ..."; with --log-format json they are log lines like every other. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "app.h"
#include "log.h"
#include "output.h"

int cli_exit_code(int code)
{
    switch (code) {
    case 0:
        return APP_EXIT_OK;
    case PB_EINVAL:
        return APP_EXIT_USAGE;
    case PB_ECONNECT:
    case PB_ENOSCHEMA:
        return APP_EXIT_UNAVAILABLE;
    case PB_EPRIVILEGE:
    case PB_ENOUSER:
    case PB_ECONFLICT:
    case PB_ENOTFOUND:
    case PB_ESCHEMA:
        return APP_EXIT_REFUSED;
    case PB_EPAUSED:
        return APP_EXIT_PAUSED;
    default:
        return APP_EXIT_ERROR;
    }
}

/* One line at `level`: text "prebuilds: <prefix><msg>", or a JSON log line. */
static void report(app_log_level level, const char *prefix, const char *msg, int exit_code)
{
    if (app_log_format_get() == APP_LOG_JSON) {
        char code[16];
        (void)snprintf(code, sizeof(code), "%d", exit_code);
        if (exit_code >= 0)
            app_log(level, msg, "exit_code", code, NULL);
        else
            app_log(level, msg, NULL);
        return;
    }
    if (level < APP_LOG_ERROR && !app_log_enabled(level))
        return;
    char *e = app_escape_term(msg);
    (void)fprintf(stderr, "prebuilds: %s%s\n", prefix, e != NULL ? e : msg);
    free(e);
}

int cli_fail(const pb_err *err)
{
    /* A read-only server (SQLSTATE 25006) is an outage to the daemon, which looks for the
     * primary, and a refusal to a command: it will not take the writes. */
    int ex = strcmp(err->sqlstate, "25006") == 0 ? APP_EXIT_REFUSED : cli_exit_code(err->code);
    report(APP_LOG_ERROR, "", err->msg[0] != '\0' ? err->msg : pb_strerror(err->code), ex);
    return ex;
}

int cli_pass_exit_code(int rc, const pb_err *err)
{
    if (rc == 0)
        return APP_EXIT_OK;
    if (strcmp(err->sqlstate, "25006") == 0)
        return APP_EXIT_REFUSED;
    switch (rc) {
    case PB_ECONNECT:
    case PB_ENOSCHEMA:
    case PB_EPRIVILEGE:
    case PB_ENOUSER:
    case PB_EINVAL:
    case PB_EPAUSED:
    case PB_ESCHEMA:
        return cli_exit_code(rc);
    default:
        return APP_EXIT_PARTIAL;
    }
}

int cli_error(int exit_code, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    report(APP_LOG_ERROR, "", buf, exit_code);
    return exit_code;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char buf[640], line[800];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (cmd != NULL)
        (void)snprintf(line, sizeof(line), "%s: %s (see 'prebuilds %s --help')", cmd, buf, cmd);
    else
        (void)snprintf(line, sizeof(line), "%s (see 'prebuilds --help')", buf);
    if (app_log_format_get() == APP_LOG_JSON) {
        report(APP_LOG_ERROR, "", line, APP_EXIT_USAGE);
    } else {
        /* "prebuilds org create: ..." reads as the command line did */
        char *e = app_escape_term(line);
        (void)fprintf(stderr, "prebuilds%s%s\n", cmd != NULL ? " " : ": ", e != NULL ? e : line);
        free(e);
    }
    return APP_EXIT_USAGE;
}

void cli_warn(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    report(APP_LOG_WARN, "warning: ", buf, -1);
}

void cli_note(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    report(APP_LOG_INFO, "note: ", buf, -1);
}

int cli_open(cli_ctx *c, unsigned flags, pb_store **out)
{
    pb_err err;
    pb_err_clear(&err);
    int rc = pb_store_open(&c->conf.url, flags, out, &err);
    if (rc != 0)
        return cli_fail(&err);
    pb_store_set_lock_timeout(*out, (int)c->conf.lock_timeout_ms);
    return APP_EXIT_OK;
}

const char *cli_retry_kind(const pb_err *err)
{
    static const struct {
        const char *sqlstate;
        const char *kind;
    } states[] = {{"55P03", "lock_timeout"},
                  {"40P01", "deadlock"},
                  {"40001", "serialization"},
                  {"23503", "vanished"}};
    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        if (strcmp(err->sqlstate, states[i].sqlstate) == 0)
            return states[i].kind;
    if (err->db_code != 0) { /* SQLite: its extended result code */
        if ((err->db_code & 0xff) == SQLITE_BUSY || (err->db_code & 0xff) == SQLITE_LOCKED)
            return "lock_timeout"; /* the busy wait (lock_timeout) ran out */
        if (err->db_code == SQLITE_CONSTRAINT_FOREIGNKEY)
            return "vanished";
    }
    if (err->code == PB_ECONNECT)
        return "connection";
    return "other";
}

void cli_log_added(pb_row_kind kind, const char *org_id, const char *org_name, void *arg)
{
    (void)arg;
    const char *what = kind == PB_ROW_MEMBER  ? "added organization membership"
                       : kind == PB_ROW_GROUP ? "created prebuilds group"
                                              : "added group membership";
    app_log(APP_LOG_INFO, what, "organization_id", org_id, "organization_name", org_name, NULL);
}

void cli_log_retry(unsigned attempt, const pb_err *err, void *arg)
{
    (void)arg;
    char n[16];
    (void)snprintf(n, sizeof(n), "%u", attempt);
    app_log(APP_LOG_WARN, "pass retried", "attempt", n, "cause", cli_retry_kind(err), "error",
            err->msg, NULL);
}
