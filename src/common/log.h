/* Logging for the CLI (and later the daemon): one line per event, UTC time with
 * milliseconds, a level, a message and key=value fields, as text or JSON. The level
 * is checked before anything is formatted. */
#ifndef PB_CLI_LOG_H
#define PB_CLI_LOG_H

#include <stdbool.h>

typedef enum pb_log_level {
    PB_LOG_DEBUG = 0,
    PB_LOG_INFO,
    PB_LOG_WARN,
    PB_LOG_ERROR,
} pb_log_level;

typedef enum pb_log_format { PB_LOG_TEXT = 0, PB_LOG_JSON } pb_log_format;

int pb_log_level_parse(const char *s, pb_log_level *out);
int pb_log_format_parse(const char *s, pb_log_format *out);
void pb_log_setup(pb_log_level level, pb_log_format format);
pb_log_format pb_log_format_get(void);
bool pb_log_enabled(pb_log_level level);

/* Fields are (key, value) string pairs ending with a NULL key. Values are borrowed. In JSON,
 * the fields log.c lists as numbers or booleans (statements, duration_ms, listen, ...) are
 * written as such when their text is one; every other value is a string. */
void pb_log(pb_log_level level, const char *msg, ...);

#endif
