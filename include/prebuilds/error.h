/* Error codes and the caller-owned error record shared by every prebuilds module.
 * The library never prints or exits: it fills a pb_err and returns a negative code,
 * and the CLI or daemon decides what to say and which exit code follows. */
#ifndef PREBUILDS_ERROR_H
#define PREBUILDS_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__GNUC__)
#define PB_MUST_CHECK __attribute__((warn_unused_result))
#else
#define PB_MUST_CHECK
#endif

/* X(name, value, description). Values are stable: they are part of the ABI. */
#define PB_ERRNO_MAP(X)                                                                            \
    X(OK, 0, "success")                                                                            \
    X(NOMEM, -1, "out of memory")                                                                  \
    X(INVAL, -2, "invalid argument")                                                               \
    X(CONNECT, -3, "database unreachable")                                                         \
    X(NOSCHEMA, -4, "schema missing")                                                              \
    X(PRIVILEGE, -5, "insufficient privilege")                                                     \
    X(NOUSER, -6, "prebuilds user not found")                                                      \
    X(CONFLICT, -7, "conflicting row")                                                             \
    X(RETRY, -8, "transient database error")                                                       \
    X(DB, -9, "database error")                                                                    \
    X(NOTFOUND, -10, "not found")                                                                  \
    X(SCHEMA, -11, "schema mismatch")                                                              \
    X(IO, -12, "i/o error")                                                                        \
    X(INTERNAL, -13, "internal error")                                                             \
    X(PAUSED, -14, "reconciliation paused")                                                        \
    X(INTERRUPTED, -15, "interrupted")

enum {
#define PB_ERRNO_ENUM(name, value, text) PB_E##name = (value),
    PB_ERRNO_MAP(PB_ERRNO_ENUM)
#undef PB_ERRNO_ENUM
};

#define PB_ERR_MSG_MAX 512

/* Filled by a failing call; the caller owns it (usually on the stack). */
typedef struct pb_err {
    int code;                 /* one of PB_E*, 0 when nothing failed */
    char sqlstate[6];         /* PostgreSQL SQLSTATE or "" (SQLite: "") */
    int db_code;              /* SQLite extended result code, 0 otherwise */
    bool retryable;           /* another attempt may succeed (deadlock, serialization, busy) */
    char msg[PB_ERR_MSG_MAX]; /* one line, lowercase, names the object and the cause */
} pb_err;

/* Static description of a PB_E* code; never NULL. */
const char *pb_strerror(int code);

/* Reset an error record to "no error". Accepts NULL. */
void pb_err_clear(pb_err *err);

#endif
