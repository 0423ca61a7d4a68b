/* Logging for the CLI (and later the daemon): one line per event, UTC time with
 * milliseconds, a level, a message and key=value fields, as text or JSON. The level
 * is checked before anything is formatted. */
#ifndef APP_LOG_H
#define APP_LOG_H

#include <stdbool.h>

typedef enum app_log_level {
    APP_LOG_DEBUG = 0,
    APP_LOG_INFO,
    APP_LOG_WARN,
    APP_LOG_ERROR,
} app_log_level;

typedef enum app_log_format { APP_LOG_TEXT = 0, APP_LOG_JSON } app_log_format;

int app_log_level_parse(const char *s, app_log_level *out);
int app_log_format_parse(const char *s, app_log_format *out);
void app_log_setup(app_log_level level, app_log_format format);
app_log_format app_log_format_get(void);
bool app_log_enabled(app_log_level level);

/* Fields are (key, value) string pairs ending with a NULL key. Values are borrowed. In JSON,
 * the fields log.c lists as numbers or booleans (statements, duration_ms, listen, ...) are
 * written as such when their text is one; every other value is a string. */
void app_log(app_log_level level, const char *msg, ...);

#endif
