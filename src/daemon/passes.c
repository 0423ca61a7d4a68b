/* One pass of the daemon: skipped when the store says nothing changed, else pb_reconcile
 * (under transaction pooling inside the pass's own transaction, whose lock makes it the
 * only pass running among the replicas), then what the pass tells the metrics, the log and
 * systemd: rows added, the pause switch and the prebuilds user as states, failures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "log.h"
#include "loop.h"

/* A retried attempt is news: what it waited for, logged and counted. */
static void log_retry(unsigned attempt, const pb_err *err, void *arg)
{
    dmn_daemon *d = arg;
    dmn_metrics_retry(d->metrics, cli_retry_kind(err));
    cli_log_retry(attempt, err, NULL);
}

static double unix_now(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The platform's pause switch and the prebuilds user are states, not errors to repeat:
 * each change is logged once, the gauge and the systemd status follow it, and nothing is
 * written meanwhile (the platform's own cleanup of a deleted user is never fought). */
static void follow_states(dmn_daemon *d, int rc, const pb_report *r, const pb_err *err)
{
    bool paused = rc == PB_EPAUSED;
    bool refused = rc == PB_ENOUSER;
    bool read = rc == 0 || paused || refused;
    if (!read)
        return;
    if (paused != d->paused) {
        d->paused = paused;
        dmn_metrics_set_paused(d->metrics, paused);
        app_log(paused ? APP_LOG_WARN : APP_LOG_INFO,
                paused ? "reconciliation paused by the platform's switch (site_configs "
                         "prebuilds_settings): writing nothing until it is lifted"
                       : "reconciliation resumed: the platform's pause switch was lifted",
                NULL);
    }
    if (refused != d->user_refused) {
        d->user_refused = refused;
        if (refused)
            app_log(APP_LOG_WARN, "writing nothing: the prebuilds user is unusable", "error",
                    err->msg, NULL);
        else
            app_log(APP_LOG_INFO, "the prebuilds user is usable again", NULL);
    }
    if (paused)
        dmn_status_line("leader: paused by the platform's switch, writing nothing");
    else if (refused)
        dmn_status_line("leader: prebuilds user %s, writing nothing",
                        r->user == PB_USER_DELETED ? "soft-deleted" : "missing");
}

/* Nothing committed by anyone else since our last successful full pass means nothing can
 * be missing (our own commits do not count, and they repaired what we saw). The store says
 * whether it can tell (SQLite's data_version) or not (always "changed"). */
static bool skipped(dmn_daemon *d, int64_t start)
{
    pb_err err;
    bool changed = true;
    if (pb_store_changed(d->store, &changed, &err) != 0 || changed || !d->trust_unchanged ||
        d->force_read)
        return false;
    dmn_count_statements(d);
    dmn_metrics_pass(d->metrics, DMN_PASS_SKIPPED, (double)(app_clock_now(d->clock) - start) / 1e3,
                     NULL, true, unix_now());
    app_log(APP_LOG_DEBUG, "pass skipped: no commit since the last pass", NULL);
    return true;
}

/* Transaction pooling: the pass in a transaction of its own that first tries the lock
 * (*led: it was taken). A retryable failure rolls back and begins again, up to the three
 * attempts pb_reconcile makes on a session, each with its own transaction and lock. */
static int reconcile_in_txn(dmn_daemon *d, const pb_reconcile_opts *o, pb_report *r, pb_err *err,
                            bool *led)
{
    pb_session_opts so = dmn_session_opts(d);
    pb_reconcile_opts one = *o;
    one.max_attempts = 1;
    int rc = 0;
    for (unsigned attempt = 1; attempt <= 3; attempt++) {
        if ((rc = pb_store_pass_begin(d->store, &so, led, err)) != 0 || !*led)
            return rc;
        pb_report_fini(r);
        pb_report_init(r);
        rc = pb_reconcile(d->store, &d->conf.target, &one, r, err);
        pb_err end_err;
        int end = pb_store_pass_end(d->store, rc == 0, &end_err);
        if (rc == 0 && end != 0) {
            rc = end;
            *err = end_err;
        }
        r->attempts = attempt;
        if (rc == 0 || !err->retryable || dmn_stop_requested || !pb_store_connected(d->store))
            break;
        if (o->retried != NULL && attempt < 3)
            o->retried(attempt, err, o->retried_arg);
    }
    return rc;
}

/* What a finished pass says: metrics, one log line (debug when converged), systemd. */
static void report(dmn_daemon *d, int rc, const pb_report *r, const pb_err *err, bool full)
{
    size_t added = r->memberships_added + r->groups_created + r->group_memberships_added;
    dmn_pass_result result = rc == PB_EPAUSED ? DMN_PASS_PAUSED
                             : rc != 0        ? DMN_PASS_FAILED
                             : added > 0      ? DMN_PASS_REPAIRED
                                              : DMN_PASS_CONVERGED;
    follow_states(d, rc, r, err);
    dmn_metrics_pass(d->metrics, result, r->duration_ms / 1e3, r, full, unix_now());
    char orgs[24], stmts[24], dur[24], n_m[24], n_g[24], n_gm[24], tries[16];
    (void)snprintf(tries, sizeof(tries), "%u", r->attempts);
    (void)snprintf(orgs, sizeof(orgs), "%zu", r->organizations);
    (void)snprintf(stmts, sizeof(stmts), "%llu", (unsigned long long)r->statements);
    (void)snprintf(dur, sizeof(dur), "%.1f", r->duration_ms);
    const char *scope = full ? "full" : "notified";
    if (rc == 0) {
        d->force_read = false;
        if (full)
            d->trust_unchanged = true;
        if (result == DMN_PASS_CONVERGED) {
            /* converged after retries is not the quiet case: say what it took */
            app_log_level lv = r->attempts > 1 ? APP_LOG_INFO : APP_LOG_DEBUG;
            if (app_log_enabled(lv))
                app_log(lv, "pass converged", "scope", scope, "organizations", orgs, "statements",
                        stmts, "attempts", tries, "duration_ms", dur, NULL);
            return;
        }
        (void)snprintf(n_m, sizeof(n_m), "%zu", r->memberships_added);
        (void)snprintf(n_g, sizeof(n_g), "%zu", r->groups_created);
        (void)snprintf(n_gm, sizeof(n_gm), "%zu", r->group_memberships_added);
        app_log(APP_LOG_INFO, "pass repaired drift", "scope", scope, "organizations", orgs,
                "memberships_added", n_m, "groups_created", n_g, "group_memberships_added", n_gm,
                "statements", stmts, "attempts", tries, "duration_ms", dur, NULL);
        dmn_status_line("leader: repaired %zu rows in %zu organizations", added, r->organizations);
        return;
    }
    d->trust_unchanged = false; /* read again next time: the switch or the user may move */
    if (rc == PB_EPAUSED || (rc == PB_ENOUSER && !dmn_stop_requested)) {
        if (rc == PB_ENOUSER)
            dmn_metrics_error(d->metrics, rc);
        return;
    }
    dmn_metrics_error(d->metrics, rc);
    if (dmn_stop_requested) {
        app_log(APP_LOG_INFO, "pass cancelled for shutdown; its writes were rolled back", NULL);
    } else if (!pb_store_connected(d->store)) {
        dmn_enter(d, DS_DISCONNECTED, err);
    } else {
        app_log(APP_LOG_WARN, "pass failed", "scope", scope, "error", err->msg, "attempts", tries,
                "duration_ms", dur, NULL);
        dmn_status_line("leader: last pass failed: %s", err->msg);
    }
}

void dmn_run_pass(dmn_daemon *d, bool full)
{
    const char **ids = NULL;
    size_t n_ids = 0;
    if (!full) {
        ids = malloc(d->n_pending * sizeof(*ids));
        if (ids == NULL)
            full = true;
        for (size_t i = 0; ids != NULL && i < d->n_pending; i++)
            ids[n_ids++] = d->pending[i];
    }
    int64_t start = app_clock_now(d->clock);
    pb_err err;
    pb_err_clear(&err);
    pb_report r;
    pb_report_init(&r);
    if (full && skipped(d, start))
        goto out;
    pb_reconcile_opts o = {.org_ids = ids,
                           .n_org_ids = n_ids,
                           .added = cli_log_added,
                           .retried = log_retry,
                           .retried_arg = d};
    bool led = true;
    dmn_pass_store = d->store;
    dmn_in_pass = 1;
    int rc = dmn_txn_pooling(d) ? reconcile_in_txn(d, &o, &r, &err, &led)
                                : pb_reconcile(d->store, &d->conf.target, &o, &r, &err);
    dmn_in_pass = 0;
    dmn_count_statements(d);
    if (rc == 0 && !led) { /* another replica's pass holds the lock: not ours to run */
        dmn_enter(d, DS_FOLLOWER, NULL);
        app_log(APP_LOG_DEBUG, "pass not run: another replica's pass holds the lock", NULL);
        if (d->once) {
            app_log(APP_LOG_INFO, "another replica's pass holds the lock: nothing to do", NULL);
            d->once_exit = APP_EXIT_OK;
        }
        goto out;
    }
    if (led && (rc == 0 || pb_store_connected(d->store)))
        dmn_enter(d, DS_LEADER, NULL); /* transaction pooling: this pass held the lock */
    report(d, rc, &r, &err, full);
    if (d->once)
        d->once_exit = cli_pass_exit_code(rc, &err);
out:
    pb_report_fini(&r);
    free(ids);
    if (!full || d->pending_overflow) {
        d->n_pending = 0;
        d->pending_overflow = false;
    }
}
