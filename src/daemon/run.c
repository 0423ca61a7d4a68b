/* The `run` command: the configuration built from every layer (its options and help are the
 * CLI's command table, src/cli/commands.c, which parses them), and what the daemon starts
 * (metrics, HTTP, signal handlers, the watchdog) before its loop (daemon.c) and stops after
 * it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "log.h"
#include "loop.h"

/* Every layer of the configuration, checked before anything starts. An exit code. */
static int configure(dmn_daemon *d)
{
    char msg[600];
    if (app_daemon_conf_build(&d->conf, d->config_path, d->cli, msg, sizeof(msg)) != 0)
        return cli_usage_error("run", "%s", msg);
    const char *refused = NULL;
    if (d->conf.listen && d->conf.url.backend != PB_BACKEND_PG)
        refused = "--listen needs a PostgreSQL database (LISTEN/NOTIFY)";
    else if (dmn_txn_pooling(d) && d->conf.url.backend != PB_BACKEND_PG)
        refused = "--pooler transaction needs a PostgreSQL database";
    if (refused != NULL) {
        app_daemon_conf_fini(&d->conf);
        return cli_usage_error("run", "%s", refused);
    }
    d->conf.target.group_name = d->conf.group_name;
    d->conf.target.group_display_name = d->conf.group_display_name;
    app_log_setup(d->conf.log_level, d->conf.log_format);
    app_backoff_init(&d->backoff, RECONNECT_BASE_MS, d->conf.backoff_max_ms);
    return APP_EXIT_OK;
}

/* Metrics, the pending list, signal handlers, HTTP and the watchdog. An exit code. */
static int start(dmn_daemon *d)
{
    char msg[600];
    d->metrics = dmn_metrics_new(d->conf.url.backend == PB_BACKEND_PG ? "postgres" : "sqlite");
    d->pending = calloc(MAX_PENDING, sizeof(*d->pending));
    if (d->metrics == NULL || d->pending == NULL) {
        (void)fprintf(stderr, "prebuilds run: out of memory\n");
        return APP_EXIT_ERROR;
    }
    if (dmn_signals_setup() != 0) {
        (void)fprintf(stderr, "prebuilds run: cannot install signal handlers: %s\n",
                      strerror(errno));
        return APP_EXIT_ERROR;
    }
    if (!d->once &&
        dmn_start_http(d->conf.metrics_addr, d->metrics, &d->http, msg, sizeof(msg)) != 0) {
        (void)fprintf(stderr, "prebuilds run: %s\n", msg);
        return APP_EXIT_ERROR;
    }
    uint64_t wd_usec = 0;
    if (!d->once && sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
        d->watchdog_ms = wd_usec / 1000 / 2; /* twice per period */
        if (d->watchdog_ms == 0)
            d->watchdog_ms = 1;
    }
    return APP_EXIT_OK;
}

static void log_start(const dmn_daemon *d)
{
    char interval[32], port[16];
    app_duration_format(d->conf.interval_ms, interval, sizeof(interval));
    (void)snprintf(port, sizeof(port), "%d", dmn_http_port(d->http));
    app_log(APP_LOG_INFO, d->once ? "running one pass" : "starting", "version", PB_VERSION,
            "backend", d->conf.url.backend == PB_BACKEND_PG ? "postgres" : "sqlite", "interval",
            interval, "listen", d->conf.listen ? "true" : "false", "pooler",
            dmn_txn_pooling(d) ? "transaction" : "session", "metrics_addr",
            d->http != NULL ? d->conf.metrics_addr : "off", "metrics_port",
            d->http != NULL ? port : "", NULL);
    if (dmn_txn_pooling(d))
        app_log(APP_LOG_INFO,
                d->conf.listen ? "transaction pooling: listen ignored, polling only (no LISTEN); "
                                 "the leader lock is taken per pass (pg_try_advisory_xact_lock)"
                               : "transaction pooling: polling only (no LISTEN); the leader lock "
                                 "is taken per pass (pg_try_advisory_xact_lock)",
                NULL);
}

int cmd_run(cli_ctx *c)
{
    dmn_daemon dm;
    dmn_daemon *d = &dm;
    memset(d, 0, sizeof(*d));
    d->clock = app_clock_system();
    /* the CLI parsed the options; they keep precedence over the file at every reload */
    d->config_path = c->config_path;
    d->once = c->once;
    for (int k = 0; k < APP_CONF_N; k++)
        d->cli[k] = c->cli[k];
    int ex;
    if ((ex = configure(d)) != APP_EXIT_OK)
        return ex;
    if ((ex = start(d)) == APP_EXIT_OK) {
        log_start(d);
        dmn_status_line("connecting");
        d->next_connect_at = app_clock_now(d->clock);
        dmn_loop(d);
        if (d->once)
            ex = d->once_exit;
        else
            (void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    }
    dmn_close_store(d);
    dmn_http_stop(&d->http);
    dmn_signals_teardown();
    dmn_metrics_free(&d->metrics);
    free(d->pending);
    app_daemon_conf_fini(&d->conf);
    if (!d->once && ex == APP_EXIT_OK)
        app_log(APP_LOG_INFO, "stopped", NULL);
    return ex;
}
