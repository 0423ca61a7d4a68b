/* Test databases: a fresh SQLite file or a fresh PostgreSQL database per test, on the
 * real engines, with raw SQL helpers that go around the library so tests can check
 * and disturb the tables directly. */
#ifndef PB_TEST_TDB_H
#define PB_TEST_TDB_H

#include <stdbool.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "internal.h"

typedef struct tdb {
    pb_backend backend;
    char name[64];  /* PostgreSQL database name */
    char path[512]; /* SQLite file */
    char url[1024]; /* what pb_dburl_parse gets */
    sqlite3 *sq;
    PGconn *pg;
} tdb;

/* Which backend this run tests (PB_TEST_BACKEND=sqlite|pg). */
pb_backend tdb_backend(void);
/* Base conninfo of the test server (PostgreSQL runs only). */
const char *tdb_pg_base(void);
/* A libpq connection to the maintenance database, for cluster-wide checks. */
PGconn *tdb_pg_admin(void);

/* PostgreSQL: poll (up to 5 s) until a backend of this test's database waits on a lock;
 * returns how many do and, in *pid, one of them (0 when none did in time). */
long tdb_pg_lock_waiters(tdb *t, long *pid);

/* Create a fresh, empty database; with `init`, run the library's init on it. */
void tdb_create(tdb *t, bool init);
void tdb_drop(tdb *t);

/* Raw SQL. tdb_exec fails the test on error; tdb_try returns 0 or -1. */
void tdb_exec(tdb *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tdb_try(tdb *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* First column of the first row as a number (0 when no row). */
long tdb_long(tdb *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* First column of the first row as text, copied into buf ("" when no row or NULL). */
void tdb_text(tdb *t, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A new store on this database; fails the test when it cannot open. */
pb_store *tdb_store(tdb *t);

#endif
