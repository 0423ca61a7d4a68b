/* Test database helpers; see tdb.h. PostgreSQL tests share the server the CTest
 * fixture started (its conninfo is in $PB_TEST_PG_DIR/conninfo) and each test gets a
 * database of its own, dropped at the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tdb.h"

static char pg_base[512];
static unsigned db_counter;
static unsigned db_live; /* made by tdb_create, not yet dropped by tdb_drop */
static bool group_ready, group_leaked;

pb_backend tdb_backend(void)
{
    const char *b = getenv("PB_TEST_BACKEND");
    return b != NULL && strcmp(b, "pg") == 0 ? PB_BACKEND_PG : PB_BACKEND_SQLITE;
}

const char *tdb_pg_base(void)
{
    if (pg_base[0] != '\0')
        return pg_base;
    const char *dir = getenv("PB_TEST_PG_DIR");
    if (dir == NULL)
        fail_msg("PB_TEST_PG_DIR is not set: run the PostgreSQL tests through ctest");
    char path[512];
    (void)snprintf(path, sizeof(path), "%s/conninfo", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot read %s: is the pg_start fixture running?", path);
    if (fgets(pg_base, sizeof(pg_base), f) == NULL)
        pg_base[0] = '\0';
    fclose(f);
    pg_base[strcspn(pg_base, "\r\n")] = '\0';
    return pg_base;
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *tdb_pg_admin(void)
{
    PGconn *c = PQconnectdb(tdb_pg_base());
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect to test server: %s", PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

long tdb_pg_lock_waiters(tdb *t, long *pid)
{
    long n = 0;
    *pid = 0;
    for (int i = 0; i < 500 && n == 0; i++) {
        usleep(10000);
        PGconn *adm = tdb_pg_admin();
        char sql[256];
        (void)snprintf(sql, sizeof(sql),
                       "SELECT count(*), coalesce(max(pid), 0) FROM pg_stat_activity"
                       " WHERE datname = '%s' AND wait_event_type = 'Lock'",
                       t->name);
        PGresult *r = PQexec(adm, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("pg_stat_activity: %s", PQerrorMessage(adm));
        n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        *pid = strtol(PQgetvalue(r, 0, 1), NULL, 10);
        PQclear(r);
        PQfinish(adm);
    }
    return n;
}

static void pg_admin_exec(const char *sql)
{
    PGconn *c = tdb_pg_admin();
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

void tdb_create(tdb *t, bool init)
{
    memset(t, 0, sizeof(*t));
    t->backend = tdb_backend();
    unsigned n = ++db_counter;
    if (t->backend == PB_BACKEND_SQLITE) {
        const char *tmp = getenv("TMPDIR");
        (void)snprintf(t->path, sizeof(t->path), "%s/pbtest-%d-%u.db", tmp ? tmp : "/tmp",
                       (int)getpid(), n);
        (void)unlink(t->path);
        (void)snprintf(t->url, sizeof(t->url), "sqlite:%s", t->path);
        if (sqlite3_open_v2(t->path, &t->sq, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK)
            fail_msg("open %s", t->path);
        db_live++;
        sqlite3_busy_timeout(t->sq, 10000);
        int on = 0;
        sqlite3_db_config(t->sq, SQLITE_DBCONFIG_ENABLE_FKEY, 1, &on);
    } else {
        (void)snprintf(t->name, sizeof(t->name), "pbtest_%d_%u", (int)getpid(), n);
        char sql[160];
        (void)snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", t->name);
        pg_admin_exec(sql);
        (void)snprintf(sql, sizeof(sql), "CREATE DATABASE %s", t->name);
        pg_admin_exec(sql);
        db_live++;
        (void)snprintf(t->url, sizeof(t->url), "%s dbname=%s", tdb_pg_base(), t->name);
        t->pg = PQconnectdb(t->url);
        if (PQstatus(t->pg) != CONNECTION_OK)
            fail_msg("connect %s: %s", t->name, PQerrorMessage(t->pg));
    }
    if (init) {
        pb_store *s = tdb_store(t);
        pb_target tg;
        pb_target_init_default(&tg);
        pb_init_opts o = {.create_user = true};
        pb_init_result r;
        pb_err err;
        if (pb_store_init(s, &tg, &o, &r, &err) != 0)
            fail_msg("init: %s", err.msg);
        pb_store_free(&s);
    }
}

void tdb_drop(tdb *t)
{
    if (t->sq != NULL) {
        sqlite3_close(t->sq);
        t->sq = NULL;
        char p[600];
        (void)unlink(t->path);
        (void)snprintf(p, sizeof(p), "%s-wal", t->path);
        (void)unlink(p);
        (void)snprintf(p, sizeof(p), "%s-shm", t->path);
        (void)unlink(p);
        db_live--;
    }
    if (t->pg != NULL) {
        PQfinish(t->pg);
        t->pg = NULL;
        char sql[160];
        (void)snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->name);
        pg_admin_exec(sql);
        db_live--;
    }
}

static int run(tdb *t, const char *sql, char *out, size_t out_len, char *errbuf, size_t errlen)
{
    if (out != NULL && out_len > 0)
        out[0] = '\0';
    if (t->backend == PB_BACKEND_SQLITE) {
        sqlite3_stmt *st = NULL;
        const char *tail = sql;
        int rc = 0;
        bool first = true;
        while (tail != NULL && *tail != '\0') {
            if (sqlite3_prepare_v2(t->sq, tail, -1, &st, &tail) != SQLITE_OK) {
                (void)snprintf(errbuf, errlen, "%s", sqlite3_errmsg(t->sq));
                return -1;
            }
            if (st == NULL)
                break;
            int step = sqlite3_step(st);
            if (step == SQLITE_ROW && first && out != NULL) {
                const unsigned char *v = sqlite3_column_text(st, 0);
                (void)snprintf(out, out_len, "%s", v ? (const char *)v : "");
                first = false;
            }
            while (step == SQLITE_ROW)
                step = sqlite3_step(st);
            if (step != SQLITE_DONE) {
                (void)snprintf(errbuf, errlen, "%s", sqlite3_errmsg(t->sq));
                rc = -1;
            }
            sqlite3_finalize(st);
            if (rc != 0)
                return rc;
        }
        return 0;
    }
    PGresult *r = PQexec(t->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        (void)snprintf(errbuf, errlen, "%s", PQerrorMessage(t->pg));
        PQclear(r);
        return -1;
    }
    if (out != NULL && st == PGRES_TUPLES_OK && PQntuples(r) > 0)
        (void)snprintf(out, out_len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static char *vformat(const char *fmt, va_list ap)
{
    char *sql = NULL;
    if (vasprintf(&sql, fmt, ap) < 0)
        fail_msg("out of memory");
    return sql;
}

void tdb_exec(tdb *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vformat(fmt, ap);
    va_end(ap);
    char errbuf[512];
    if (run(t, sql, NULL, 0, errbuf, sizeof(errbuf)) != 0)
        fail_msg("%s: %s", sql, errbuf);
    free(sql);
}

int tdb_try(tdb *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vformat(fmt, ap);
    va_end(ap);
    char errbuf[512];
    int rc = run(t, sql, NULL, 0, errbuf, sizeof(errbuf));
    free(sql);
    return rc;
}

void tdb_text(tdb *t, char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vformat(fmt, ap);
    va_end(ap);
    char errbuf[512];
    if (run(t, sql, buf, len, errbuf, sizeof(errbuf)) != 0)
        fail_msg("%s: %s", sql, errbuf);
    free(sql);
}

long tdb_long(tdb *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vformat(fmt, ap);
    va_end(ap);
    char out[64];
    tdb_text(t, out, sizeof(out), "%s", sql);
    free(sql);
    return strtol(out, NULL, 10);
}

pb_store *tdb_store(tdb *t)
{
    pb_dburl u;
    pb_err err;
    if (pb_dburl_parse(t->url, &u, &err) != 0)
        fail_msg("parse %s: %s", t->url, err.msg);
    pb_store *s = NULL;
    if (pb_store_open(&u, PB_OPEN_CREATE, &s, &err) != 0)
        fail_msg("open %s: %s", t->url, err.msg);
    pb_dburl_fini(&u);
    return s;
}

unsigned tdb_live(void)
{
    return db_live;
}

/* ---- cmocka fixtures ---- */

static int fx_make(void **state, bool init, bool store)
{
    fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    *state = f;
    tdb_create(&f->t, init);
    if (store)
        f->s = tdb_store(&f->t);
    return 0;
}

int fx_setup(void **state)
{
    return fx_make(state, true, true);
}

int fx_setup_bare(void **state)
{
    return fx_make(state, false, false);
}

int fx_setup_pg(void **state)
{
    *state = NULL;
    return tdb_backend() == PB_BACKEND_PG ? fx_make(state, true, true) : 0;
}

int fx_setup_pg_bare(void **state)
{
    *state = NULL;
    return tdb_backend() == PB_BACKEND_PG ? fx_make(state, false, false) : 0;
}

int fx_setup_sqlite(void **state)
{
    *state = NULL;
    return tdb_backend() == PB_BACKEND_SQLITE ? fx_make(state, true, true) : 0;
}

int fx_teardown(void **state)
{
    fx *f = *state;
    if (f == NULL)
        return 0;
    pb_store_free(&f->s);
    tdb_drop(&f->t);
    free(f);
    *state = NULL;
    return 0;
}

void fx_renew(fx *f)
{
    pb_store_free(&f->s);
    tdb_drop(&f->t);
    tdb_create(&f->t, true);
    f->s = tdb_store(&f->t);
}

int fx_group_setup(void **state)
{
    (void)state;
    if (tdb_backend() == PB_BACKEND_PG)
        PQfinish(tdb_pg_admin()); /* fails the group when the server is not there */
    group_ready = true;
    return 0;
}

int fx_group_teardown(void **state)
{
    (void)state;
    if (!group_ready) /* the group setup failed, and said why */
        return 0;
    long in_catalog = 0;
    if (tdb_backend() == PB_BACKEND_PG) {
        char sql[160];
        (void)snprintf(sql, sizeof(sql),
                       "SELECT count(*) FROM pg_database WHERE datname LIKE 'pbtest\\_%d\\_%%'",
                       (int)getpid());
        PGconn *c = tdb_pg_admin();
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            in_catalog = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        else
            in_catalog = -1;
        PQclear(r);
        PQfinish(c);
    }
    if (db_live != 0 || in_catalog != 0) {
        print_error("test databases left behind: %u not dropped, %ld in pg_database\n", db_live,
                    in_catalog);
        group_leaked = true;
        return -1;
    }
    return 0;
}

int fx_exit(int rc)
{
    return rc != 0 ? rc : group_leaked ? 1 : 0;
}
