/* The daemon's metrics, kept in one mutex-guarded block: the loop (one thread) updates
 * them, the HTTP server's thread renders them in the Prometheus text format. Every series
 * exists from the start, at 0, so a dashboard never sees a gap before the first event. */
#ifndef DMN_METRICS_H
#define DMN_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prebuilds/prebuilds.h"

typedef enum dmn_pass_result {
    DMN_PASS_CONVERGED = 0, /* nothing was missing */
    DMN_PASS_REPAIRED,      /* rows were added */
    DMN_PASS_FAILED,        /* the pass ended with an error */
    DMN_PASS_SKIPPED,       /* SQLite: no commit since the last pass, no table read */
    DMN_PASS_PAUSED,        /* the platform's pause switch is on: read, nothing written */
    DMN_PASS_RESULT_COUNT
} dmn_pass_result;

const char *dmn_pass_result_name(dmn_pass_result r);

typedef struct dmn_metrics dmn_metrics;

/* `backend` ("sqlite" or "postgres") goes into prebuilds_build_info. NULL on no memory. */
dmn_metrics *dmn_metrics_new(const char *backend);
void dmn_metrics_free(dmn_metrics **m);

/* One finished pass: its result, its report (may be NULL for a skipped pass) and whether
 * it covered every organization (the organizations and unconverged gauges only follow
 * full passes). */
void dmn_metrics_pass(dmn_metrics *m, dmn_pass_result result, double seconds, const pb_report *r,
                      bool full, double now_unix);
/* One retried attempt, by cause: lock_timeout, deadlock, serialization, vanished,
 * connection, other (see cli_retry_kind). */
void dmn_metrics_retry(dmn_metrics *m, const char *cause);
/* One error, counted by PB_E* code family. */
void dmn_metrics_error(dmn_metrics *m, int code);
void dmn_metrics_statements(dmn_metrics *m, uint64_t n);
void dmn_metrics_notifications(dmn_metrics *m, uint64_t n);
void dmn_metrics_reconnect(dmn_metrics *m);
void dmn_metrics_set_state(dmn_metrics *m, bool db_up, bool leader);
/* Whether reconciliation is paused (prebuilds_paused); 0 until someone says otherwise. */
void dmn_metrics_set_paused(dmn_metrics *m, bool paused);
void dmn_metrics_set_backend(dmn_metrics *m, const char *backend);

/* Health for /readyz: the database answered and this replica is the leader or a ready
 * follower (connected, trying the lock). */
bool dmn_metrics_ready(dmn_metrics *m, bool *leader);
/* Whether the last pass found the pause switch on (for /readyz's body). */
bool dmn_metrics_paused(dmn_metrics *m);

/* The exposition text; the caller frees *out (free()). Returns 0 or -1 (no memory). */
int dmn_metrics_render(dmn_metrics *m, char **out, size_t *len);

#endif
