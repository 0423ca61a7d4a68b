/* Metrics storage and the Prometheus text exposition (format 0.0.4); see metrics.h.
 * Names follow the Prometheus conventions promtool checks: counters end in _total,
 * units are base units (seconds), every family has HELP and TYPE. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "metrics.h"

static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10,   30};
#define N_BUCKETS (sizeof(buckets) / sizeof(buckets[0]))

/* Error families; PB_E* codes map onto them. */
enum { ERR_CONNECT, ERR_SCHEMA, ERR_REFUSED, ERR_TRANSIENT, ERR_DATABASE, ERR_OTHER, ERR_COUNT };
static const char *const err_names[ERR_COUNT] = {"connect",   "schema",   "refused",
                                                 "transient", "database", "other"};
/* Why an attempt of a pass was retried (cli_retry_kind). */
static const char *const retry_names[] = {"lock_timeout", "deadlock",   "serialization",
                                          "vanished",     "connection", "other"};
#define N_RETRY (sizeof(retry_names) / sizeof(retry_names[0]))
static const char *const result_names[DMN_PASS_RESULT_COUNT] = {"converged", "repaired", "failed",
                                                                "skipped", "paused"};

struct dmn_metrics {
    pthread_mutex_t mu;
    char backend[16];
    uint64_t passes[DMN_PASS_RESULT_COUNT];
    uint64_t errors[ERR_COUNT];
    uint64_t retries[N_RETRY];
    uint64_t bucket_counts[N_BUCKETS]; /* not cumulative; summed when rendered */
    uint64_t duration_count;
    double duration_sum;
    uint64_t orgs_considered;
    uint64_t orgs_last;        /* of the last full pass */
    uint64_t orgs_unconverged; /* of the last full pass that read: found missing, not repaired */
    uint64_t rows_member, rows_group, rows_group_member;
    uint64_t statements;
    uint64_t notifications;
    uint64_t reconnects;
    double last_success; /* unix seconds, 0 before the first */
    bool leader, db_up, paused;
};

const char *dmn_pass_result_name(dmn_pass_result r)
{
    return r < DMN_PASS_RESULT_COUNT ? result_names[r] : "unknown";
}

dmn_metrics *dmn_metrics_new(const char *backend)
{
    dmn_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    (void)snprintf(m->backend, sizeof(m->backend), "%s", backend);
    return m;
}

void dmn_metrics_free(dmn_metrics **m)
{
    if (m == NULL || *m == NULL)
        return;
    (void)pthread_mutex_destroy(&(*m)->mu);
    free(*m);
    *m = NULL;
}

void dmn_metrics_set_backend(dmn_metrics *m, const char *backend)
{
    (void)pthread_mutex_lock(&m->mu);
    (void)snprintf(m->backend, sizeof(m->backend), "%s", backend);
    (void)pthread_mutex_unlock(&m->mu);
}

void dmn_metrics_pass(dmn_metrics *m, dmn_pass_result result, double seconds, const pb_report *r,
                      bool full, double now_unix)
{
    (void)pthread_mutex_lock(&m->mu);
    if (result < DMN_PASS_RESULT_COUNT)
        m->passes[result]++;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        if (seconds <= buckets[i]) {
            m->bucket_counts[i]++;
            break;
        }
    }
    m->duration_count++;
    m->duration_sum += seconds;
    if (r != NULL) {
        m->orgs_considered += r->organizations;
        if (full && result != DMN_PASS_FAILED)
            m->orgs_last = r->organizations;
        /* The report cannot say which rows of a failed pass committed; its writes share one
         * transaction, so normally none did: count every organization it found missing. A
         * pass that succeeded leaves none behind (its rows or someone else's are there). A
         * failed pass that never read learnt nothing and keeps the last value. */
        if (full && result != DMN_PASS_FAILED && result != DMN_PASS_PAUSED)
            m->orgs_unconverged = 0;
        else if (full && (r->organizations_missing > 0 || result == DMN_PASS_PAUSED))
            m->orgs_unconverged = r->organizations_missing; /* paused: left as found */
        m->rows_member += r->memberships_added;
        m->rows_group += r->groups_created;
        m->rows_group_member += r->group_memberships_added;
    }
    if (result != DMN_PASS_FAILED && result != DMN_PASS_PAUSED)
        m->last_success = now_unix;
    (void)pthread_mutex_unlock(&m->mu);
}

void dmn_metrics_retry(dmn_metrics *m, const char *cause)
{
    size_t k = 0;
    while (k + 1 < N_RETRY && strcmp(retry_names[k], cause) != 0)
        k++; /* unknown causes count as the last, "other" */
    (void)pthread_mutex_lock(&m->mu);
    m->retries[k]++;
    (void)pthread_mutex_unlock(&m->mu);
}

void dmn_metrics_error(dmn_metrics *m, int code)
{
    int k;
    switch (code) {
    case PB_ECONNECT:
        k = ERR_CONNECT;
        break;
    case PB_ENOSCHEMA:
    case PB_ESCHEMA:
        k = ERR_SCHEMA;
        break;
    case PB_EPRIVILEGE:
    case PB_ENOUSER:
        k = ERR_REFUSED;
        break;
    case PB_ERETRY:
    case PB_ECONFLICT:
        k = ERR_TRANSIENT;
        break;
    case PB_EDB:
        k = ERR_DATABASE;
        break;
    default:
        k = ERR_OTHER;
        break;
    }
    (void)pthread_mutex_lock(&m->mu);
    m->errors[k]++;
    (void)pthread_mutex_unlock(&m->mu);
}

void dmn_metrics_statements(dmn_metrics *m, uint64_t n)
{
    (void)pthread_mutex_lock(&m->mu);
    m->statements += n;
    (void)pthread_mutex_unlock(&m->mu);
}

void dmn_metrics_notifications(dmn_metrics *m, uint64_t n)
{
    (void)pthread_mutex_lock(&m->mu);
    m->notifications += n;
    (void)pthread_mutex_unlock(&m->mu);
}

void dmn_metrics_reconnect(dmn_metrics *m)
{
    (void)pthread_mutex_lock(&m->mu);
    m->reconnects++;
    (void)pthread_mutex_unlock(&m->mu);
}

void dmn_metrics_set_state(dmn_metrics *m, bool db_up, bool leader)
{
    (void)pthread_mutex_lock(&m->mu);
    m->db_up = db_up;
    m->leader = leader;
    (void)pthread_mutex_unlock(&m->mu);
}

void dmn_metrics_set_paused(dmn_metrics *m, bool paused)
{
    (void)pthread_mutex_lock(&m->mu);
    m->paused = paused;
    (void)pthread_mutex_unlock(&m->mu);
}

bool dmn_metrics_paused(dmn_metrics *m)
{
    (void)pthread_mutex_lock(&m->mu);
    bool paused = m->paused;
    (void)pthread_mutex_unlock(&m->mu);
    return paused;
}

bool dmn_metrics_ready(dmn_metrics *m, bool *leader)
{
    (void)pthread_mutex_lock(&m->mu);
    bool ready = m->db_up;
    *leader = m->leader;
    (void)pthread_mutex_unlock(&m->mu);
    return ready;
}

/* A growing text buffer; `failed` sticks after the first allocation failure. */
typedef struct text {
    char *buf;
    size_t len, cap;
    bool failed;
} text;

__attribute__((format(printf, 2, 3))) static void put(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        char *b = app_grow(t->buf, &t->cap, t->len + (size_t)n + 1, 1);
        if (b == NULL) {
            t->failed = true;
            return;
        }
        t->buf = b;
    }
}

static void family(text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int dmn_metrics_render(dmn_metrics *m, char **out, size_t *len)
{
    text t = {0};
    t.cap = 4096;
    t.buf = malloc(t.cap);
    if (t.buf == NULL)
        return -1;
    t.buf[0] = '\0';
    (void)pthread_mutex_lock(&m->mu);
    family(&t, "prebuilds_build_info", "gauge", "Build and backend of this reconciler, always 1.");
    put(&t, "prebuilds_build_info{version=\"%s\",backend=\"%s\"} 1\n", PB_VERSION, m->backend);
    family(&t, "prebuilds_passes_total", "counter", "Reconciliation passes by result.");
    for (int i = 0; i < DMN_PASS_RESULT_COUNT; i++)
        put(&t, "prebuilds_passes_total{result=\"%s\"} %llu\n", result_names[i],
            (unsigned long long)m->passes[i]);
    family(&t, "prebuilds_errors_total", "counter", "Errors by kind, connection losses included.");
    for (int i = 0; i < ERR_COUNT; i++)
        put(&t, "prebuilds_errors_total{kind=\"%s\"} %llu\n", err_names[i],
            (unsigned long long)m->errors[i]);
    family(&t, "prebuilds_pass_retries_total", "counter",
           "Attempts of a pass that failed and were tried again, by cause.");
    for (size_t i = 0; i < N_RETRY; i++)
        put(&t, "prebuilds_pass_retries_total{cause=\"%s\"} %llu\n", retry_names[i],
            (unsigned long long)m->retries[i]);
    family(&t, "prebuilds_pass_duration_seconds", "histogram",
           "Duration of reconciliation passes.");
    uint64_t cum = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += m->bucket_counts[i];
        put(&t, "prebuilds_pass_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i],
            (unsigned long long)cum);
    }
    put(&t, "prebuilds_pass_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
        (unsigned long long)m->duration_count);
    put(&t, "prebuilds_pass_duration_seconds_sum %.6f\n", m->duration_sum);
    put(&t, "prebuilds_pass_duration_seconds_count %llu\n", (unsigned long long)m->duration_count);
    family(&t, "prebuilds_organizations_considered_total", "counter",
           "Qualifying organizations read by passes, summed over passes.");
    put(&t, "prebuilds_organizations_considered_total %llu\n",
        (unsigned long long)m->orgs_considered);
    family(&t, "prebuilds_organizations", "gauge",
           "Qualifying organizations seen by the last full pass.");
    put(&t, "prebuilds_organizations %llu\n", (unsigned long long)m->orgs_last);
    family(&t, "prebuilds_organizations_unconverged", "gauge",
           "Organizations the last full pass found missing a row and did not repair.");
    put(&t, "prebuilds_organizations_unconverged %llu\n", (unsigned long long)m->orgs_unconverged);
    family(&t, "prebuilds_rows_added_total", "counter", "Rows inserted and committed, by kind.");
    put(&t, "prebuilds_rows_added_total{kind=\"organization_member\"} %llu\n",
        (unsigned long long)m->rows_member);
    put(&t, "prebuilds_rows_added_total{kind=\"group\"} %llu\n", (unsigned long long)m->rows_group);
    put(&t, "prebuilds_rows_added_total{kind=\"group_member\"} %llu\n",
        (unsigned long long)m->rows_group_member);
    family(&t, "prebuilds_statements_total", "counter",
           "SQL statements executed, session setup and lock tries included.");
    put(&t, "prebuilds_statements_total %llu\n", (unsigned long long)m->statements);
    family(&t, "prebuilds_notifications_total", "counter",
           "Notifications received on the prebuilds_reconcile channel.");
    put(&t, "prebuilds_notifications_total %llu\n", (unsigned long long)m->notifications);
    family(&t, "prebuilds_database_reconnects_total", "counter",
           "Successful reconnections after a lost database connection.");
    put(&t, "prebuilds_database_reconnects_total %llu\n", (unsigned long long)m->reconnects);
    family(&t, "prebuilds_last_success_timestamp_seconds", "gauge",
           "Unix time of the last pass that did not fail, 0 before the first.");
    put(&t, "prebuilds_last_success_timestamp_seconds %.3f\n", m->last_success);
    family(&t, "prebuilds_leader", "gauge", "1 when this replica reconciles, 0 as a follower.");
    put(&t, "prebuilds_leader %d\n", m->leader ? 1 : 0);
    family(&t, "prebuilds_database_up", "gauge", "1 when the database connection is up.");
    put(&t, "prebuilds_database_up %d\n", m->db_up ? 1 : 0);
    family(&t, "prebuilds_paused", "gauge", "1 while reconciliation is paused, else 0.");
    put(&t, "prebuilds_paused %d\n", m->paused ? 1 : 0);
    (void)pthread_mutex_unlock(&m->mu);
    if (t.failed) {
        free(t.buf);
        return -1;
    }
    *out = t.buf;
    *len = t.len;
    return 0;
}
