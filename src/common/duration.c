/* Durations, jitter and backoff; see duration.h. Pure arithmetic on a app_clock, so the
 * unit tests drive it with a fake clock and a scripted random source. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "duration.h"

static int64_t system_now(void *arg)
{
    (void)arg;
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Jitter needs spread, not secrecy: xorshift64*, seeded once. */
static double system_random(void *arg)
{
    static uint64_t state;
    (void)arg;
    if (state == 0) {
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
        if (state == 0)
            state = 0x9e3779b97f4a7c15ULL;
    }
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (double)((state * 0x2545f4914f6cdd1dULL) >> 11) / 9007199254740992.0; /* 2^53 */
}

const app_clock *app_clock_system(void)
{
    static const app_clock c = {system_now, system_random, NULL};
    return &c;
}

static const struct {
    const char *name;
    int64_t ms;
} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};

#define DURATION_MAX_MS ((int64_t)366 * 24 * 3600000) /* a year is plenty for any setting */

/* The input as shown in an error: at most 40 bytes, control bytes as '?', so a message
 * stays one line whatever was typed. */
static const char *shown(const char *in, char buf[41])
{
    size_t i = 0;
    for (; in[i] != '\0' && i < 40; i++)
        buf[i] = ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) ? '?' : in[i];
    buf[i] = '\0';
    return buf;
}

int app_duration_parse(const char *in, int64_t *ms, char *msg, size_t msg_len)
{
    char shown_buf[41];
    const char *s = shown(in, shown_buf);
    const char *p = in;
    bool negative = false;
    double total = 0;
    *ms = 0;
    if (*p == '-' || *p == '+') {
        negative = *p == '-';
        p++;
    }
    if (*p == '\0')
        goto bad;
    if (strcmp(p, "0") == 0)
        return 0; /* zero needs no unit */
    while (*p != '\0') {
        if (!isdigit((unsigned char)*p) && *p != '.')
            goto bad;
        double value = 0, scale = 1;
        bool digits = false, dot = false;
        for (; isdigit((unsigned char)*p) || *p == '.'; p++) {
            if (*p == '.') {
                if (dot)
                    goto bad;
                dot = true;
                continue;
            }
            digits = true;
            if (dot) {
                scale /= 10;
                value += (*p - '0') * scale;
            } else {
                value = value * 10 + (*p - '0');
            }
            if (value > (double)DURATION_MAX_MS)
                goto too_big;
        }
        if (!digits)
            goto bad;
        size_t n = 0;
        while (isalpha((unsigned char)p[n]))
            n++;
        if (n == 0) {
            (void)snprintf(msg, msg_len,
                           "invalid duration \"%s\": missing unit (use ms, s, m or h, e.g. 2s)", s);
            return -1;
        }
        int64_t unit = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strlen(units[i].name) == n && strncmp(p, units[i].name, n) == 0)
                unit = units[i].ms;
        }
        if (unit == 0) {
            (void)snprintf(msg, msg_len,
                           "invalid duration \"%s\": unknown unit \"%.*s\" (use ms, "
                           "s, m or h)",
                           s, (int)n, p);
            return -1;
        }
        total += value * (double)unit;
        if (total > (double)DURATION_MAX_MS)
            goto too_big;
        p += n;
    }
    *ms = (int64_t)(total + 0.5);
    if (negative)
        *ms = -*ms;
    return 0;
bad:
    (void)snprintf(msg, msg_len,
                   "invalid duration \"%s\": use a number and a unit, e.g. 500ms, 2s, 1m, 1h", s);
    return -1;
too_big:
    (void)snprintf(msg, msg_len, "invalid duration \"%s\": longer than a year", s);
    return -1;
}

void app_duration_format(int64_t ms, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    if (ms < 0) {
        used += (size_t)snprintf(buf, len, "-");
        ms = -ms;
    }
    if (ms == 0) {
        (void)snprintf(buf + used, len - used, "0s");
        return;
    }
    for (int i = 3; i >= 0 && used < len; i--) {
        int64_t n = ms / units[i].ms;
        if (n == 0)
            continue;
        used += (size_t)snprintf(buf + used, len - used, "%lld%s", (long long)n, units[i].name);
        ms -= n * units[i].ms;
    }
}

int64_t app_jitter(const app_clock *c, int64_t interval_ms, double fraction)
{
    double r = c->random(c->arg); /* [0, 1) */
    double factor = 1.0 + fraction * (2.0 * r - 1.0);
    int64_t v = (int64_t)((double)interval_ms * factor + 0.5);
    return v < 1 ? 1 : v;
}

void app_backoff_init(app_backoff *b, int64_t base_ms, int64_t cap_ms)
{
    b->base_ms = base_ms > 0 ? base_ms : 1;
    b->cap_ms = cap_ms > b->base_ms ? cap_ms : b->base_ms;
    b->attempt = 0;
}

int64_t app_backoff_ceiling(const app_backoff *b)
{
    int64_t d = b->base_ms;
    for (unsigned i = 0; i < b->attempt && d < b->cap_ms; i++)
        d *= 2;
    return d < b->cap_ms ? d : b->cap_ms;
}

int64_t app_backoff_next(app_backoff *b, const app_clock *c)
{
    int64_t d = app_backoff_ceiling(b);
    if (b->attempt < 64)
        b->attempt++;
    int64_t half = d / 2;
    int64_t v = half + (int64_t)((double)(d - half) * c->random(c->arg));
    return v < 1 ? 1 : v > d ? d : v;
}

void app_backoff_reset(app_backoff *b)
{
    b->attempt = 0;
}
