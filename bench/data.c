/* The data sets. On PostgreSQL a production-shaped database: the tests' own fixture
 * (tests/safety/load_platform.sh loads tests/sql/production_schema.sql as the platform's
 * role, with its prebuilds user), so nothing of ours is installed, filled here in the shape
 * asked for. On SQLite our own schema, which always has the summary, seeded by the library
 * (pb_store_seed). Both are converged by one library pass: what is measured afterwards is
 * the converged cost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "bench.h"

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int pg_run(const char *conninfo, const char *sql, const char *p1, const char *p2,
                  double *out, char *err)
{
    PGconn *conn = PQconnectdb(conninfo);
    (void)PQsetNoticeProcessor(conn, quiet, NULL); /* "does not exist, skipping" */
    const char *params[2] = {p1, p2};
    int n = p2 != NULL ? 2 : p1 != NULL ? 1 : 0;
    PGresult *r = PQstatus(conn) == CONNECTION_OK
                      ? PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0)
                      : NULL;
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc != 0)
        (void)snprintf(err, BENCH_ERR, "%.200s: %.290s", sql, PQerrorMessage(conn));
    else if (out != NULL)
        *out = PQntuples(r) > 0 ? strtod(PQgetvalue(r, 0, 0), NULL) : 0;
    PQclear(r);
    PQfinish(conn);
    return rc;
}

static int sq_run(const char *path, const char *sql, const char *p1, const char *p2, double *out,
                  char *err)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        (void)sqlite3_bind_text(st, 1, p1, -1, SQLITE_STATIC);
        (void)sqlite3_bind_text(st, 2, p2, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && out != NULL)
            *out = sqlite3_column_double(st, 0);
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK)
        (void)snprintf(err, BENCH_ERR, "%.200s: %.290s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -1;
}

int db_exec(const bench_db *db, const char *sql, const char *p1, const char *p2, double *out,
            char *err)
{
    if (db->backend == PB_BACKEND_PG)
        return pg_run(db->conninfo, sql, p1, p2, out, err);
    return sq_run(db->path, sql, p1, p2, out, err);
}

int db_store(const bench_db *db, pb_store **s, bool daemon, char *err)
{
    pb_dburl u;
    pb_err e;
    *s = NULL;
    int rc = pb_dburl_parse(db->url, &u, &e);
    if (rc == 0) {
        rc = pb_store_open(&u, PB_OPEN_CREATE | (daemon ? PB_OPEN_MANUAL : 0), s, &e);
        pb_dburl_fini(&u);
    }
    if (rc == 0 && daemon && (rc = pb_store_connect(*s, -1, 10000, &e)) != 0)
        pb_store_free(s);
    if (rc != 0)
        (void)snprintf(err, BENCH_ERR, "open %s: %.400s", db->name, e.msg);
    return rc;
}

static void names(const bench_cfg *c, const bench_shape *sh, pb_backend b, bench_db *db)
{
    memset(db, 0, sizeof(*db));
    db->backend = b;
    (void)snprintf(db->name, sizeof(db->name), "%s_%s", c->prefix, sh->name);
    if (b == PB_BACKEND_PG) {
        (void)snprintf(db->conninfo, sizeof(db->conninfo), "%s dbname=%s", c->pg, db->name);
        (void)snprintf(db->url, sizeof(db->url), "%s", db->conninfo);
    } else {
        (void)snprintf(db->path, sizeof(db->path), "%s/%s.db", c->sqlite_dir, db->name);
        (void)snprintf(db->url, sizeof(db->url), "sqlite:%s", db->path);
    }
}

void db_drop(const bench_cfg *c, const bench_db *db)
{
    char sql[128], err[BENCH_ERR];
    if (db->backend == PB_BACKEND_PG) {
        (void)snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
        (void)pg_run(c->pg, sql, NULL, NULL, NULL, err);
        return;
    }
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[1100];
        (void)snprintf(p, sizeof(p), "%s%s", db->path, suffixes[i]);
        (void)unlink(p);
    }
}

/* The platform's database, as the tests build it (its own role, its prebuilds user), filled
 * the way the platform writes it. pb_store_seed writes only into prebuilds' own schema, so
 * the shape is generated here: the same counts, and the same organizations configured (the
 * first preset of every version of organization i when floor((i + 1) f) > floor(i f)). */
static int pg_platform(const bench_cfg *c, const bench_db *db, const bench_shape *sh, char *err)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", c->platform_sh, c->pg, db->name, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        (void)snprintf(err, BENCH_ERR, "%s %s failed", c->platform_sh, db->name);
        return -1;
    }
    pb_target t;
    pb_target_init_default(&t);
    char sql[4][900];
    (void)snprintf(sql[0], sizeof(sql[0]),
                   "INSERT INTO organizations (id, name, display_name, description, created_at,"
                   " updated_at, default_org_member_roles) SELECT md5('o' || i)::uuid,"
                   " 'org-' || lpad(i::text, 7, '0'), 'org ' || i, '', now(), now(),"
                   " '{organization-workspace-access}' FROM generate_series(0, %lld) i",
                   (long long)sh->orgs - 1);
    (void)snprintf(sql[1], sizeof(sql[1]),
                   "INSERT INTO templates (id, organization_id, name, provisioner,"
                   " active_version_id, created_by, created_at, updated_at)"
                   " SELECT md5('t' || i || ':' || ti)::uuid, md5('o' || i)::uuid,"
                   " 'template-' || ti, 'terraform', '00000000-0000-0000-0000-000000000000', $1,"
                   " now(), now() FROM generate_series(0, %lld) i, generate_series(0, %lld) ti",
                   (long long)sh->orgs - 1, (long long)sh->templates - 1);
    (void)snprintf(sql[2], sizeof(sql[2]),
                   "INSERT INTO template_versions (id, template_id, organization_id, name, readme,"
                   " job_id, created_by, created_at, updated_at)"
                   " SELECT md5('v' || i || ':' || ti || ':' || vi)::uuid,"
                   " md5('t' || i || ':' || ti)::uuid, md5('o' || i)::uuid, 'v' || vi, '',"
                   " gen_random_uuid(), $1, now(), now() FROM generate_series(0, %lld) i,"
                   " generate_series(0, %lld) ti, generate_series(0, %lld) vi",
                   (long long)sh->orgs - 1, (long long)sh->templates - 1,
                   (long long)sh->versions - 1);
    (void)snprintf(sql[3], sizeof(sql[3]),
                   "INSERT INTO template_version_presets (id, template_version_id, name,"
                   " desired_instances) SELECT md5('p' || i || ':' || ti || ':' || vi || ':' ||"
                   " pi)::uuid, md5('v' || i || ':' || ti || ':' || vi)::uuid, 'preset-' || pi,"
                   " CASE WHEN pi = 0 AND floor((i + 1) * %.17g) > floor(i * %.17g) THEN 1 END"
                   " FROM generate_series(0, %lld) i, generate_series(0, %lld) ti,"
                   " generate_series(0, %lld) vi, generate_series(0, %lld) pi",
                   sh->fraction, sh->fraction, (long long)sh->orgs - 1,
                   (long long)sh->templates - 1, (long long)sh->versions - 1,
                   (long long)sh->presets - 1);
    for (int i = 0; i < 4; i++)
        if (pg_run(db->conninfo, sql[i], i > 0 && i < 3 ? t.user_id : NULL, NULL, NULL, err) != 0)
            return -1;
    return 0;
}

/* `few` templates get one configured preset each. */
static int configure_few(const bench_db *db, int64_t few, char *err)
{
    char sql[600];
    (void)snprintf(sql, sizeof(sql),
                   "UPDATE template_version_presets SET desired_instances = 1 WHERE id IN"
                   " (SELECT (SELECT p.id FROM template_versions tv JOIN template_version_presets"
                   " p ON p.template_version_id = tv.id WHERE tv.template_id = t.id"
                   " ORDER BY tv.id, p.id LIMIT 1)"
                   " FROM (SELECT id FROM templates ORDER BY id LIMIT %lld) t)",
                   (long long)few);
    return db_exec(db, sql, NULL, NULL, NULL, err);
}

static int converge(const bench_db *db, char *err)
{
    pb_store *s = NULL;
    pb_target t;
    pb_target_init_default(&t);
    pb_report r;
    pb_report_init(&r);
    pb_err e;
    int rc = db_store(db, &s, false, err);
    if (rc == 0 && (rc = pb_reconcile(s, &t, NULL, &r, &e)) != 0)
        (void)snprintf(err, BENCH_ERR, "converge %s: %.400s", db->name, e.msg);
    pb_report_fini(&r);
    pb_store_free(&s);
    return rc;
}

int db_create(const bench_cfg *c, const bench_shape *sh, pb_backend b, bench_db *db, json_t *info,
              char *err)
{
    names(c, sh, b, db);
    db_drop(c, db);
    pb_target t;
    pb_target_init_default(&t);
    pb_seed_opts so = {.orgs = sh->orgs,
                       .templates_per_org = sh->templates,
                       .versions_per_template = sh->versions,
                       .presets_per_version = sh->presets,
                       .prebuilds_fraction = sh->fraction,
                       .seed = 1};
    pb_seed_result sr;
    pb_init_opts io = {.create_user = true};
    pb_init_result ir;
    pb_err e;
    pb_store *s = NULL;
    double start = bench_now_ms();
    int rc = 0;
    if (b == PB_BACKEND_PG) {
        rc = pg_platform(c, db, sh, err);
    } else if ((rc = db_store(db, &s, false, err)) == 0) {
        if ((rc = pb_store_init(s, &t, &io, &ir, &e)) != 0 ||
            (rc = pb_store_seed(s, &t, &so, &sr, &e)) != 0)
            (void)snprintf(err, BENCH_ERR, "seed %s: %.400s", db->name, e.msg);
        pb_store_free(&s);
    }
    if (rc == 0 && sh->few > 0)
        rc = configure_few(db, sh->few, err);
    if (rc == 0)
        rc = converge(db, err);
    if (rc == 0 && b == PB_BACKEND_PG)
        rc = db_exec(db, "VACUUM ANALYZE", NULL, NULL, NULL, err);
    double configured = 0;
    if (rc == 0)
        rc = db_exec(db,
                     "SELECT count(*) FROM template_version_presets"
                     " WHERE desired_instances IS NOT NULL",
                     NULL, NULL, &configured, err);
    json_object_set_new(
        info, "data",
        json_pack("{s:I, s:I, s:I, s:I, s:f, s:f}", "orgs", (json_int_t)sh->orgs, "templates",
                  (json_int_t)(sh->orgs * sh->templates), "versions",
                  (json_int_t)(sh->orgs * sh->templates * sh->versions), "presets",
                  (json_int_t)(sh->orgs * sh->templates * sh->versions * sh->presets),
                  "configured_presets", configured, "seed_s", (bench_now_ms() - start) / 1e3));
    return rc;
}

int db_install_summary(const bench_db *db, char *err)
{
    pb_store *s = NULL;
    pb_target t;
    pb_target_init_default(&t);
    pb_init_opts io = {.summary = true};
    pb_init_result ir;
    pb_err e;
    int rc = db_store(db, &s, false, err);
    if (rc == 0 && (rc = pb_store_init(s, &t, &io, &ir, &e)) != 0)
        (void)snprintf(err, BENCH_ERR, "init --summary %s: %.400s", db->name, e.msg);
    pb_store_free(&s);
    return rc == 0 ? db_exec(db, "ANALYZE", NULL, NULL, NULL, err) : rc;
}

int db_drift_all(const bench_db *db, char *err)
{
    pb_target t;
    pb_target_init_default(&t);
    if (db_exec(db, "DELETE FROM group_members WHERE user_id = $1", t.user_id, NULL, NULL, err) ||
        db_exec(db, "DELETE FROM groups WHERE name = $1", t.group_name, NULL, NULL, err) ||
        db_exec(db, "DELETE FROM organization_members WHERE user_id = $1", t.user_id, NULL, NULL,
                err))
        return -1;
    return db->backend == PB_BACKEND_PG ? db_exec(db, "VACUUM ANALYZE", NULL, NULL, NULL, err) : 0;
}
