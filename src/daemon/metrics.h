/* The daemon's metrics, kept in one mutex-guarded block: the loop (one thread) updates
 * them, the HTTP server's thread renders them in the Prometheus text format. Every series
 * exists from the start, at 0, so a dashboard never sees a gap before the first event. */
#ifndef PB_CLI_METRICS_H
#define PB_CLI_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prebuilds/prebuilds.h"

typedef enum pb_pass_result {
    PB_PASS_CONVERGED = 0, /* nothing was missing */
    PB_PASS_REPAIRED,      /* rows were added */
    PB_PASS_FAILED,        /* the pass ended with an error */
    PB_PASS_SKIPPED,       /* SQLite: no commit since the last pass, no table read */
    PB_PASS_PAUSED,        /* the platform's pause switch is on: read, nothing written */
    PB_PASS_RESULT_COUNT
} pb_pass_result;

const char *pb_pass_result_name(pb_pass_result r);

typedef struct pb_metrics pb_metrics;

/* `backend` ("sqlite" or "postgres") goes into prebuilds_build_info. NULL on no memory. */
pb_metrics *pb_metrics_new(const char *backend);
void pb_metrics_free(pb_metrics **m);

/* One finished pass: its result, its report (may be NULL for a skipped pass) and whether
 * it covered every organization (the organizations and unconverged gauges only follow
 * full passes). */
void pb_metrics_pass(pb_metrics *m, pb_pass_result result, double seconds, const pb_report *r,
                     bool full, double now_unix);
/* One retried attempt, by cause: lock_timeout, deadlock, serialization, vanished,
 * connection, other (see cli_retry_kind). */
void pb_metrics_retry(pb_metrics *m, const char *cause);
/* One error, counted by PB_E* code family. */
void pb_metrics_error(pb_metrics *m, int code);
void pb_metrics_statements(pb_metrics *m, uint64_t n);
void pb_metrics_notifications(pb_metrics *m, uint64_t n);
void pb_metrics_reconnect(pb_metrics *m);
void pb_metrics_set_state(pb_metrics *m, bool db_up, bool leader);
/* Whether reconciliation is paused (prebuilds_paused); 0 until someone says otherwise. */
void pb_metrics_set_paused(pb_metrics *m, bool paused);
void pb_metrics_set_backend(pb_metrics *m, const char *backend);

/* Health for /readyz: the database answered and this replica is the leader or a ready
 * follower (connected, trying the lock). */
bool pb_metrics_ready(pb_metrics *m, bool *leader);
/* Whether the last pass found the pause switch on (for /readyz's body). */
bool pb_metrics_paused(pb_metrics *m);

/* The exposition text; the caller frees *out (free()). Returns 0 or -1 (no memory). */
int pb_metrics_render(pb_metrics *m, char **out, size_t *len);

#endif
