/* The log writer. Text lines quote and escape values that need it; JSON lines come from
 * jansson, so names with quotes, control bytes or invalid UTF-8 cannot break a line. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "output.h"

static app_log_level min_level = APP_LOG_INFO;
static app_log_format fmt = APP_LOG_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int app_log_level_parse(const char *s, app_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (app_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = APP_LOG_WARN;
        return 0;
    }
    return -1;
}

int app_log_format_parse(const char *s, app_log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = APP_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = APP_LOG_JSON;
    else
        return -1;
    return 0;
}

void app_log_setup(app_log_level level, app_log_format format)
{
    min_level = level;
    fmt = format;
}

app_log_format app_log_format_get(void)
{
    return fmt;
}

/* The fields whose values are numbers or booleans, by name: the log's schema. */
static const char *const number_fields[] = {
    "organizations", "memberships_added", "groups_created", "group_memberships_added",
    "statements",    "round_trips",       "duration_ms",    "attempt",
    "attempts",      "metrics_port",      "lock_id",        "exit_code",
};
static const char *const bool_fields[] = {"listen", "new_session", "dry_run", "leader", "paused"};

static bool listed(const char *key, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(key, names[i]) == 0)
            return true;
    return false;
}

/* A JSON number when the whole text is one (no leading '+', no hex, no inf/nan). */
static json_t *json_number(const char *v)
{
    const char *p = v;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return NULL;
    char *end = NULL;
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (*end == '\0' && errno == 0)
        return json_integer((json_int_t)i);
    double d = strtod(v, &end);
    if (*end == '\0' && isfinite(d) && strpbrk(v, "xXnN") == NULL)
        return json_real(d);
    return NULL;
}

static json_t *json_value(const char *key, const char *v)
{
    json_t *typed = NULL;
    if (listed(key, number_fields, sizeof(number_fields) / sizeof(number_fields[0])))
        typed = json_number(v);
    else if (listed(key, bool_fields, sizeof(bool_fields) / sizeof(bool_fields[0])) &&
             (strcmp(v, "true") == 0 || strcmp(v, "false") == 0))
        typed = json_boolean(v[0] == 't');
    return typed != NULL ? typed : app_json_string(v);
}

bool app_log_enabled(app_log_level level)
{
    return level >= min_level;
}

static void timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    (void)gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    (void)snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static bool needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' || *p >= 0x7f)
            return true;
    }
    return false;
}

void app_log(app_log_level level, const char *msg, ...)
{
    if (!app_log_enabled(level))
        return;
    char ts[40];
    timestamp(ts, sizeof(ts));
    va_list ap;
    va_start(ap, msg);
    if (fmt == APP_LOG_JSON) {
        json_t *o = json_object();
        if (o == NULL) {
            va_end(ap);
            return;
        }
        (void)json_object_set_new(o, "ts", json_string(ts));
        (void)json_object_set_new(o, "level", json_string(level_names[level]));
        (void)json_object_set_new(o, "msg", app_json_string(msg));
        for (;;) {
            const char *k = va_arg(ap, const char *);
            if (k == NULL)
                break;
            const char *v = va_arg(ap, const char *);
            (void)json_object_set_new(o, k, json_value(k, v == NULL ? "" : v));
        }
        char *line = app_json_term_safe(
            json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)));
        if (line != NULL) {
            (void)fprintf(stderr, "%s\n", line);
            free(line);
        }
        json_decref(o);
    } else {
        char *m = app_escape_term(msg);
        (void)fprintf(stderr, "%s %-5s %s", ts, level_names[level], m ? m : "");
        free(m);
        for (;;) {
            const char *k = va_arg(ap, const char *);
            if (k == NULL)
                break;
            const char *v = va_arg(ap, const char *);
            char *e = app_escape_term(v == NULL ? "" : v);
            if (needs_quotes(v == NULL ? "" : v)) {
                /* inside quotes a quote is escaped too (backslashes already are) */
                (void)fprintf(stderr, " %s=\"", k);
                for (const char *c = e ? e : ""; *c != '\0'; c++) {
                    if (*c == '"')
                        (void)fputc('\\', stderr);
                    (void)fputc(*c, stderr);
                }
                (void)fputc('"', stderr);
            } else {
                (void)fprintf(stderr, " %s=%s", k, e ? e : "");
            }
            free(e);
        }
        (void)fputc('\n', stderr);
    }
    va_end(ap);
}
