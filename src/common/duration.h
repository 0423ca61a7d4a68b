/* Time for the daemon: durations as people type them (500ms, 2s, 1m, 1h, 1m30s), the
 * jitter of the pass interval and the reconnect backoff. All of it runs on a app_clock,
 * so tests replace the monotonic clock and the random source and check exact bounds. */
#ifndef APP_DURATION_H
#define APP_DURATION_H

#include <stddef.h>
#include <stdint.h>

typedef struct app_clock {
    int64_t (*now_ms)(void *arg); /* monotonic milliseconds */
    double (*random)(void *arg);  /* uniform in [0, 1) */
    void *arg;
} app_clock;

/* CLOCK_MONOTONIC and a xorshift generator seeded from the time and the pid. */
const app_clock *app_clock_system(void);

static inline int64_t app_clock_now(const app_clock *c)
{
    return c->now_ms(c->arg);
}

/* Parse a sequence of <number><unit> (units ms, s, m, h; decimals allowed, "1m30s") into
 * milliseconds. A leading '-' is accepted so callers can say "must be positive". Returns
 * 0, or -1 with a one-line reason in msg. */
int app_duration_parse(const char *s, int64_t *ms, char *msg, size_t msg_len);

/* Shortest exact form: 1h, 1m30s, 2s, 500ms. */
void app_duration_format(int64_t ms, char *buf, size_t len);

/* interval_ms scaled by a uniform factor in [1 - fraction, 1 + fraction]. */
int64_t app_jitter(const app_clock *c, int64_t interval_ms, double fraction);

/* Capped exponential backoff with "equal jitter": the n-th delay (n from 0) is drawn
 * uniformly from [d/2, d] where d = min(cap, base * 2^n); never above the cap, never
 * below half of it once reached, so replicas that lost the same server spread out. */
typedef struct app_backoff {
    int64_t base_ms, cap_ms;
    unsigned attempt;
} app_backoff;

void app_backoff_init(app_backoff *b, int64_t base_ms, int64_t cap_ms);
int64_t app_backoff_ceiling(const app_backoff *b); /* d for the next delay */
int64_t app_backoff_next(app_backoff *b, const app_clock *c);
void app_backoff_reset(app_backoff *b);

#endif
