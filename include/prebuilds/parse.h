/* Parsers for everything a user types: database URLs, UUIDs, names, counts.
 * They are pure functions, so every one of them is unit tested and fuzzable; each
 * fills a pb_err with a one-line message naming the bad value and why it is bad. */
#ifndef PREBUILDS_PARSE_H
#define PREBUILDS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define PB_UUID_LEN       36 /* canonical text form, without the terminating NUL */
#define PB_GROUP_NAME_MAX 255

typedef enum pb_backend { PB_BACKEND_SQLITE = 1, PB_BACKEND_PG = 2 } pb_backend;

/* A classified database location. `target` is the SQLite path or the libpq
 * connection string (URL or key=value) exactly as libpq should receive it. */
typedef struct pb_dburl {
    pb_backend backend;
    char *target; /* owned; free with pb_dburl_fini */
} pb_dburl;

/* Classify and validate `url`: postgres:// and postgresql:// URLs and libpq key=value
 * strings select PostgreSQL (checked with libpq's own parser, then every value libpq would
 * only check when connecting: port, sslmode and the other enumerated parameters, the
 * timeouts); sqlite:PATH, file:PATH or a bare path select SQLite. Any other scheme is
 * refused, and so is anything that starts like one ("postgresql:host", "pg:/db"): a
 * mistyped URL never becomes a new SQLite file. */
PB_MUST_CHECK int pb_dburl_parse(const char *url, pb_dburl *out, pb_err *err);
void pb_dburl_fini(pb_dburl *u);

/* Whether `url` (PostgreSQL) carries a password itself, which then shows in `ps` when it
 * is given on a command line. */
bool pb_dburl_has_password(const char *url);

/* Copy `url` into `buf` with any password replaced by "***", so it can be logged. */
void pb_dburl_redact(const char *url, char *buf, size_t buf_len);

/* Parse a UUID in canonical 8-4-4-4-12 form (either case, optional braces not
 * accepted) into lowercase canonical text. `what` names the value in errors. */
PB_MUST_CHECK int pb_uuid_parse(const char *in, char out[PB_UUID_LEN + 1], const char *what,
                                pb_err *err);

/* The UTF-8 sequence at s (NUL-terminated): its length in bytes, with its code point in
 * *cp, or 0 when it is not well formed (truncated, overlong, a surrogate, past U+10FFFF).
 * The one decoder of the library and the application. */
size_t pb_utf8_decode(const char *s, uint32_t *cp);

/* A name: non-empty, at most max_len bytes, valid UTF-8, no control characters (C0, DEL,
 * C1). */
PB_MUST_CHECK int pb_name_check(const char *name, const char *what, size_t max_len, pb_err *err);

/* A non-negative decimal integer no larger than `max`. */
PB_MUST_CHECK int pb_count_parse(const char *in, int64_t max, int64_t *out, const char *what,
                                 pb_err *err);

/* A fraction in [0, 1], written as a decimal ("0.5", "1", "0"). */
PB_MUST_CHECK int pb_fraction_parse(const char *in, double *out, const char *what, pb_err *err);

/* Generate a random version-4 UUID in lowercase canonical text. */
PB_MUST_CHECK int pb_uuid_random(char out[PB_UUID_LEN + 1], pb_err *err);

#endif
