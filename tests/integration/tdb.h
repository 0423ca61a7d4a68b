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

/* How many databases tdb_create made that tdb_drop has not dropped yet. */
unsigned tdb_live(void);

/* cmocka fixtures, for cmocka_unit_test_setup_teardown(test, fx_setup..., fx_teardown).
 * Each test gets a fresh database of its own in *state (an fx): fx_setup runs the
 * library's init on it and opens a store on it; the bare ones leave it empty, with no
 * store. The _pg and _sqlite ones make nothing on the other backend, where *state is
 * NULL and the test skips. fx_teardown frees the store (the test may have freed or
 * replaced it) and drops the database, whether the test passed or not. */
typedef struct fx {
    tdb t;
    pb_store *s;
} fx;

int fx_setup(void **state);
int fx_setup_bare(void **state);
int fx_setup_pg(void **state);
int fx_setup_pg_bare(void **state);
int fx_setup_sqlite(void **state);
int fx_teardown(void **state);

/* Drop the fixture's database and make a fresh one in its place, as fx_setup did. */
void fx_renew(fx *f);

/* Group fixtures, for cmocka_run_group_tests_name(..., fx_group_setup, fx_group_teardown):
 * before the first test, the backend is reachable (PostgreSQL: the server the CTest
 * fixture started); after the last, every database the tests made has been dropped.
 * cmocka (1.1) reports a failed group teardown without failing the run: main returns
 * fx_exit(cmocka_run_group_tests_name(...)), which does. */
int fx_group_setup(void **state);
int fx_group_teardown(void **state);
int fx_exit(int rc);

#endif
