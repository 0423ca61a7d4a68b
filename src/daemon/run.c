/* The `run` command: its options and help, the configuration built from every layer, and
 * what the daemon starts (metrics, HTTP, signal handlers, the watchdog) before its loop
 * (daemon.c) and stops after it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "daemon.h"
#include "log.h"
#include "loop.h"

static const char run_usage[] =
    "usage: prebuilds [GLOBAL OPTIONS] run [OPTIONS]\n"
    "\n"
    "Reconcile continuously: a full pass every interval (+/-10% jitter), a pass for the\n"
    "organizations PostgreSQL notifies (--listen), one leader among replicas, reconnects\n"
    "with backoff when the database goes away (with a multi-host URL and\n"
    "target_session_attrs=read-write, to whichever server is the primary now).\n"
    "\n"
    "Options (each also a config file key and a PREBUILDS_* variable, e.g. interval,\n"
    "PREBUILDS_INTERVAL; precedence: option > config file > environment > default):\n"
    "  --interval DURATION        full pass period (default 1m; e.g. 500ms, 2s, 1m, 1h)\n"
    "  --listen                   PostgreSQL: LISTEN for the triggers of\n"
    "                             'prebuilds init --triggers' and reconcile the notified\n"
    "                             organizations at once (config: listen = true)\n"
    "  --lock-id N                advisory lock electing the leader (default 7)\n"
    "  --backoff-max DURATION     cap of the reconnect backoff (default 30s)\n"
    "  --statement-timeout DURATION\n"
    "                             bound on every statement of a pass (default 30s; 0: none)\n"
    "  --lock-timeout DURATION    bound on every lock wait (default 5s; 0: none)\n"
    "  --metrics-addr ADDR        HTTP for /metrics, /healthz, /readyz\n"
    "                             (default 127.0.0.1:9464; HOST:PORT, [IPV6]:PORT, :PORT, off)\n"
    "  --pooler session|transaction\n"
    "                             what is between the daemon and PostgreSQL (default\n"
    "                             session: nothing, or a session pooler). transaction:\n"
    "                             PgBouncer's pool_mode = transaction; the lock is taken\n"
    "                             per pass (pg_try_advisory_xact_lock), no LISTEN (polling\n"
    "                             only), no named statement, no session setting\n"
    "  --config FILE              key = value file (PREBUILDS_CONFIG), re-read on SIGHUP;\n"
    "                             keys: db, user_id, group_name, group_display_name,\n"
    "                             log_level, log_format, interval, listen, lock_id,\n"
    "                             backoff_max, statement_timeout, lock_timeout, metrics_addr,\n"
    "                             pooler\n"
    "  --once                     one pass (taking the lock if free), then exit with\n"
    "                             reconcile's exit code\n"
    "  --help\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop (a pass in flight is cancelled and rolled back, the lock\n"
    "released; exit 0); SIGHUP reloads the configuration (kept when invalid); SIGUSR1 runs\n"
    "a full pass now. systemd: Type=notify (READY=1, STATUS=, STOPPING=1, WATCHDOG=1).\n";

/* Global options given on the command line (not the environment): they keep precedence
 * over the config file, at start and at every reload. */
static void global_cli(pb_daemon *d, int argc, char **argv)
{
    optind = 0;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+", pb_global_options, NULL)) != -1) {
        if (ch >= 0 && ch < PB_CONF_N)
            d->cli[ch] = optarg;
    }
}

enum { O_CONFIG = 300, O_ONCE, O_HELP, O_NO_LISTEN, O_DONE = -1 };

/* The command's own options into d (and run_cli[key]). O_DONE to go on, O_HELP when
 * --help was printed, else the usage error's exit code. */
static int parse_options(pb_daemon *d, int argc, char **argv, const char *run_cli[PB_CONF_N])
{
    static const struct option opts[] = {
        {"interval", required_argument, NULL, PB_CONF_INTERVAL},
        {"listen", no_argument, NULL, PB_CONF_LISTEN},
        {"no-listen", no_argument, NULL, O_NO_LISTEN},
        {"lock-id", required_argument, NULL, PB_CONF_LOCK_ID},
        {"backoff-max", required_argument, NULL, PB_CONF_BACKOFF_MAX},
        {"statement-timeout", required_argument, NULL, PB_CONF_STATEMENT_TIMEOUT},
        {"lock-timeout", required_argument, NULL, PB_CONF_LOCK_TIMEOUT},
        {"metrics-addr", required_argument, NULL, PB_CONF_METRICS_ADDR},
        {"pooler", required_argument, NULL, PB_CONF_POOLER},
        {"config", required_argument, NULL, O_CONFIG},
        {"once", no_argument, NULL, O_ONCE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0}};
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (ch == O_HELP) {
            (void)fputs(run_usage, stdout);
            return O_HELP;
        } else if (ch == O_ONCE) {
            d->once = true;
        } else if (ch == O_CONFIG) {
            d->config_path = optarg;
        } else if (ch == PB_CONF_LISTEN) {
            run_cli[PB_CONF_LISTEN] = "true";
        } else if (ch == O_NO_LISTEN) {
            run_cli[PB_CONF_LISTEN] = "false";
        } else if (ch >= 0 && ch < PB_CONF_N) {
            run_cli[ch] = optarg;
        } else if (ch == ':') {
            return cli_usage_error("run", "option %s needs a value", argv[optind - 1]);
        } else {
            return cli_usage_error("run", "unknown option \"%s\"", argv[optind - 1]);
        }
    }
    if (optind != argc)
        return cli_usage_error("run", "unexpected argument \"%s\"", argv[optind]);
    return O_DONE;
}

/* Every layer of the configuration, checked before anything starts. An exit code. */
static int configure(pb_daemon *d)
{
    char msg[600];
    if (pb_daemon_conf_build(&d->conf, d->config_path, d->cli, msg, sizeof(msg)) != 0)
        return cli_usage_error("run", "%s", msg);
    const char *refused = NULL;
    if (d->conf.listen && d->conf.url.backend != PB_BACKEND_PG)
        refused = "--listen needs a PostgreSQL database (LISTEN/NOTIFY)";
    else if (dmn_txn_pooling(d) && d->conf.url.backend != PB_BACKEND_PG)
        refused = "--pooler transaction needs a PostgreSQL database";
    if (refused != NULL) {
        pb_daemon_conf_fini(&d->conf);
        return cli_usage_error("run", "%s", refused);
    }
    d->conf.target.group_name = d->conf.group_name;
    d->conf.target.group_display_name = d->conf.group_display_name;
    pb_log_setup(d->conf.log_level, d->conf.log_format);
    pb_backoff_init(&d->backoff, RECONNECT_BASE_MS, d->conf.backoff_max_ms);
    return PB_EXIT_OK;
}

/* Metrics, the pending list, signal handlers, HTTP and the watchdog. An exit code. */
static int start(pb_daemon *d)
{
    char msg[600];
    d->metrics = pb_metrics_new(d->conf.url.backend == PB_BACKEND_PG ? "postgres" : "sqlite");
    d->pending = calloc(MAX_PENDING, sizeof(*d->pending));
    if (d->metrics == NULL || d->pending == NULL) {
        (void)fprintf(stderr, "prebuilds run: out of memory\n");
        return PB_EXIT_ERROR;
    }
    if (dmn_signals_setup() != 0) {
        (void)fprintf(stderr, "prebuilds run: cannot install signal handlers: %s\n",
                      strerror(errno));
        return PB_EXIT_ERROR;
    }
    if (!d->once &&
        dmn_start_http(d->conf.metrics_addr, d->metrics, &d->http, msg, sizeof(msg)) != 0) {
        (void)fprintf(stderr, "prebuilds run: %s\n", msg);
        return PB_EXIT_ERROR;
    }
    uint64_t wd_usec = 0;
    if (!d->once && sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
        d->watchdog_ms = wd_usec / 1000 / 2; /* twice per period */
        if (d->watchdog_ms == 0)
            d->watchdog_ms = 1;
    }
    return PB_EXIT_OK;
}

static void log_start(const pb_daemon *d)
{
    char interval[32], port[16];
    pb_duration_format(d->conf.interval_ms, interval, sizeof(interval));
    (void)snprintf(port, sizeof(port), "%d", pb_http_port(d->http));
    pb_log(PB_LOG_INFO, d->once ? "running one pass" : "starting", "version", PB_VERSION, "backend",
           d->conf.url.backend == PB_BACKEND_PG ? "postgres" : "sqlite", "interval", interval,
           "listen", d->conf.listen ? "true" : "false", "pooler",
           dmn_txn_pooling(d) ? "transaction" : "session", "metrics_addr",
           d->http != NULL ? d->conf.metrics_addr : "off", "metrics_port",
           d->http != NULL ? port : "", NULL);
    if (dmn_txn_pooling(d))
        pb_log(PB_LOG_INFO,
               d->conf.listen ? "transaction pooling: listen ignored, polling only (no LISTEN); "
                                "the leader lock is taken per pass (pg_try_advisory_xact_lock)"
                              : "transaction pooling: polling only (no LISTEN); the leader lock "
                                "is taken per pass (pg_try_advisory_xact_lock)",
               NULL);
}

int cmd_run(cli_ctx *c, int argc, char **argv, int global_argc, char **global_argv)
{
    (void)c; /* the globals are re-read (with the config file) below */
    pb_daemon dm;
    pb_daemon *d = &dm;
    memset(d, 0, sizeof(*d));
    d->clock = pb_clock_system();
    d->config_path = getenv("PREBUILDS_CONFIG");
    if (d->config_path != NULL && d->config_path[0] == '\0')
        d->config_path = NULL;
    const char *run_cli[PB_CONF_N] = {0};
    int ex = parse_options(d, argc, argv, run_cli);
    if (ex != O_DONE)
        return ex == O_HELP ? PB_EXIT_OK : ex;
    global_cli(d, global_argc, global_argv);
    for (int k = 0; k < PB_CONF_N; k++)
        if (run_cli[k] != NULL)
            d->cli[k] = run_cli[k];
    if ((ex = configure(d)) != PB_EXIT_OK)
        return ex;
    if ((ex = start(d)) == PB_EXIT_OK) {
        log_start(d);
        dmn_status_line("connecting");
        d->next_connect_at = pb_clock_now(d->clock);
        dmn_loop(d);
        if (d->once)
            ex = d->once_exit;
        else
            (void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    }
    dmn_close_store(d);
    pb_http_stop(&d->http);
    dmn_signals_teardown();
    pb_metrics_free(&d->metrics);
    free(d->pending);
    pb_daemon_conf_fini(&d->conf);
    if (!d->once && ex == PB_EXIT_OK)
        pb_log(PB_LOG_INFO, "stopped", NULL);
    return ex;
}
