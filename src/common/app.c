/* What every layer of the application shares: the exit codes, the parsed global options
 * and the one-line error reporting that maps a library error to an exit code. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "app.h"
#include "output.h"

int cli_exit_code(int code)
{
    switch (code) {
    case 0:
        return PB_EXIT_OK;
    case PB_EINVAL:
        return PB_EXIT_USAGE;
    case PB_ECONNECT:
    case PB_ENOSCHEMA:
        return PB_EXIT_UNAVAILABLE;
    case PB_EPRIVILEGE:
    case PB_ENOUSER:
    case PB_ECONFLICT:
    case PB_ENOTFOUND:
    case PB_ESCHEMA:
        return PB_EXIT_REFUSED;
    case PB_EPAUSED:
        return PB_EXIT_PAUSED;
    default:
        return PB_EXIT_ERROR;
    }
}

int cli_fail(const pb_err *err)
{
    char *msg = pb_escape_term(err->msg[0] != '\0' ? err->msg : pb_strerror(err->code));
    (void)fprintf(stderr, "prebuilds: %s\n", msg != NULL ? msg : pb_strerror(err->code));
    free(msg);
    return cli_exit_code(err->code);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    char *msg = pb_escape_term(buf);
    if (cmd != NULL)
        (void)fprintf(stderr, "prebuilds %s: %s (see 'prebuilds --help')\n", cmd,
                      msg != NULL ? msg : "");
    else
        (void)fprintf(stderr, "prebuilds: %s (see 'prebuilds --help')\n", msg != NULL ? msg : "");
    free(msg);
    return PB_EXIT_USAGE;
}

int cli_open(cli_ctx *c, unsigned flags, pb_store **out)
{
    pb_err err;
    pb_err_clear(&err);
    int rc = pb_store_open(&c->url, flags, out, &err);
    if (rc != 0)
        return cli_fail(&err);
    return PB_EXIT_OK;
}
