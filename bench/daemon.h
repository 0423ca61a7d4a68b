/* The real daemon (`prebuilds run`) under measurement: started as a child process with
 * JSON debug logs on a pipe, its passes counted from its own log lines, its peak RSS read
 * from /proc, its counters read from its /metrics. */
#ifndef PB_BENCH_DAEMON_H
#define PB_BENCH_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "bench.h"

/* The daemon's pass results, as its log lines name them. */
typedef enum bd_kind { BD_CONVERGED, BD_REPAIRED, BD_SKIPPED, BD_FAILED, BD_KINDS } bd_kind;

typedef struct bd_pass {
    bd_kind kind;
    bool full;          /* scope=full (else notified) */
    double duration_ms; /* as logged; NAN for a skipped pass, whose line has none */
    double statements;  /* as logged; NAN for a skipped pass */
    double added;       /* rows added, repaired passes only */
} bd_pass;

typedef struct bdaemon bdaemon;
typedef void (*bd_pass_fn)(bdaemon *d, const bd_pass *p, void *arg);

struct bdaemon {
    pid_t pid;
    int log_fd; /* read end of the daemon's stderr */
    char buf[16384];
    size_t len;
    int metrics_port; /* 0: off */
    uint64_t passes[BD_KINDS];
    uint64_t total; /* pass lines seen */
    bd_pass_fn on_pass;
    void *arg;
    char last_warning[BENCH_ERR_MAX];
    char err[BENCH_ERR_MAX];
};

/* Starts `prebuilds --db DB --log-level debug --log-format json run
 * --metrics-addr 127.0.0.1:0 ARGS...` and waits for its "starting" line. 0 or -1. */
int bd_start(bdaemon *d, const char *prebuilds, const bench_db *db, const char *const *args);
/* Reads and handles the log lines that arrive within timeout_ms (or fewer when one
 * arrives earlier). Returns the number of pass lines handled, or -1 when the daemon's
 * log ended (it exited). `extra_fd` (>= 0) also ends the wait when readable. */
int bd_pump(bdaemon *d, int timeout_ms, int extra_fd);
/* Pumps until `total` pass lines were seen in all, or timeout_ms passes. 0 or -1. */
int bd_wait_passes(bdaemon *d, uint64_t total, int timeout_ms);
/* SIGTERM, then waits for the exit. The exit status, or -1. */
int bd_stop(bdaemon *d);

/* VmHWM and VmRSS of the daemon in KiB (-1 when unknown). */
void bd_mem_kb(const bdaemon *d, long *hwm_kb, long *rss_kb);
/* CPU time of the daemon process so far, all threads, in ms (NAN when unknown). */
double bd_cpu_ms(const bdaemon *d);
/* Bytes the daemon read through read(2)-like calls so far (rchar of /proc/PID/io), -1. */
int64_t bd_rchar(const bdaemon *d);

/* Counters of the daemon's /metrics. */
typedef struct bd_metrics {
    double passes[BD_KINDS];
    double statements;
    double duration_sum_s, duration_count;
    double le_1ms; /* passes in the histogram's 0.001 s bucket */
} bd_metrics;
int bd_scrape(bdaemon *d, bd_metrics *m);

struct run_cfg;
/* Peak RSS of the daemon on the data set where every organization has prebuilds: `passes`
 * converged passes (the first at start, the others on SIGUSR1), then in a fresh process
 * a first pass repairing 100% drift. Appends two entries to `out`. */
void daemon_rss(const struct run_cfg *cfg, const bench_db *db, const pb_seed_opts *seed, int passes,
                json_t *out);
/* Peak RSS across cfg->soak_passes passes, with checkpoints. PostgreSQL: a pass every
 * --interval 1ms; SQLite: a pass per SIGUSR1 (which makes it read; with no commit the
 * interval's passes would all be skipped). */
json_t *daemon_soak(const struct run_cfg *cfg, const bench_db *db);
/* PostgreSQL, --listen: notify-to-converged latency of `samples` brand-new organizations. */
json_t *daemon_listen(const struct run_cfg *cfg, const bench_db *db, int samples);
/* SQLite, --interval 1ms, no commit: `passes` skipped passes, timed and counted. */
json_t *daemon_idle(const struct run_cfg *cfg, const bench_db *db, uint64_t passes);

#endif
