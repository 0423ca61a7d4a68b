/* The status statement against the reference's formulation of the same question and
 * against the floor (counting the presets that ask for prebuilds), on one PostgreSQL
 * database, interleaved round by round so that noise on a shared machine hits all three
 * alike; with JIT as the server ships it and off, with our index and without it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bench.h"
#include "report.h"

#define MAX_ROUNDS 64

static const char floor_sql[] =
    "SELECT count(*) FROM template_version_presets WHERE desired_instances IS NOT NULL";

enum { Q_OURS, Q_REF, Q_FLOOR, Q_PROPOSED, Q_COUNT };
static const char *const q_keys[Q_COUNT] = {"ours", "reference", "floor", "proposed"};

typedef struct scmp {
    PGconn *conn;
    const char *sql[Q_COUNT]; /* NULL: not measured */
    const char *params[2];
    char err[BENCH_ERR_MAX];
} scmp;

static int fail(scmp *c, const char *what, PGresult *res)
{
    (void)snprintf(c->err, sizeof(c->err), "%s: %s", what, PQerrorMessage(c->conn));
    c->err[strcspn(c->err, "\n")] = '\0';
    PQclear(res);
    return -1;
}

static int simple(scmp *c, const char *sql)
{
    PGresult *res = PQexec(c->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return fail(c, sql, res);
    PQclear(res);
    return 0;
}

/* Ours and the proposal run as the library runs its status statement: prepared once on
 * the connection. The reference runs as an unnamed statement with parameters, as its
 * driver sends it. */
static int prepare(scmp *c)
{
    if (simple(c, "DEALLOCATE ALL") != 0)
        return -1;
    const char *names[Q_COUNT] = {"bench_ours", NULL, NULL, "bench_proposed"};
    for (int q = 0; q < Q_COUNT; q++) {
        if (names[q] == NULL || c->sql[q] == NULL)
            continue;
        PGresult *res = PQprepare(c->conn, names[q], c->sql[q], 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return fail(c, "prepare", res);
        PQclear(res);
    }
    return 0;
}

static PGresult *run_query(scmp *c, int q, bool explain)
{
    char sql[8192];
    if (q == Q_OURS || q == Q_PROPOSED) {
        const char *name = q == Q_OURS ? "bench_ours" : "bench_proposed";
        if (!explain)
            return PQexecPrepared(c->conn, name, 2, c->params, NULL, NULL, 0);
        /* EXECUTE takes its arguments as SQL expressions, not as bind parameters. */
        char *user = PQescapeLiteral(c->conn, c->params[0], strlen(c->params[0]));
        char *group = PQescapeLiteral(c->conn, c->params[1], strlen(c->params[1]));
        (void)snprintf(sql, sizeof(sql), "EXPLAIN (ANALYZE, BUFFERS) EXECUTE %s(%s, %s)", name,
                       user != NULL ? user : "NULL", group != NULL ? group : "NULL");
        PQfreemem(user);
        PQfreemem(group);
        return PQexec(c->conn, sql);
    }
    if (q == Q_REF) {
        if (!explain)
            return PQexecParams(c->conn, c->sql[q], 2, NULL, c->params, NULL, NULL, 0);
        (void)snprintf(sql, sizeof(sql), "EXPLAIN (ANALYZE, BUFFERS) %s", c->sql[q]);
        return PQexecParams(c->conn, sql, 2, NULL, c->params, NULL, NULL, 0);
    }
    if (!explain)
        return PQexec(c->conn, c->sql[q]);
    (void)snprintf(sql, sizeof(sql), "EXPLAIN (ANALYZE, BUFFERS) %s", c->sql[q]);
    return PQexec(c->conn, sql);
}

static int timed(scmp *c, int q, double *ms)
{
    double start = bench_now_ms();
    PGresult *res = run_query(c, q, false);
    *ms = bench_now_ms() - start;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(c, q_keys[q], res);
    PQclear(res);
    return 0;
}

static double after(const char *line, const char *key)
{
    const char *at = strstr(line, key);
    return at != NULL ? strtod(at + strlen(key), NULL) : -1;
}

/* EXPLAIN ANALYZE as text, with its planning, execution and JIT times picked out. */
static json_t *explain(scmp *c, int q)
{
    PGresult *res = run_query(c, q, true);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        (void)fail(c, "explain", res);
        return NULL;
    }
    size_t len = 1;
    for (int r = 0; r < PQntuples(res); r++)
        len += strlen(PQgetvalue(res, r, 0)) + 1;
    char *text = malloc(len);
    if (text == NULL) {
        PQclear(res);
        return NULL;
    }
    size_t used = 0;
    double planning = -1, execution = -1, jit = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *line = PQgetvalue(res, r, 0);
        used += (size_t)snprintf(text + used, len - used, "%s\n", line);
        if (strstr(line, "Planning Time:") != NULL)
            planning = after(line, "Planning Time:");
        else if (strstr(line, "Execution Time:") != NULL)
            execution = after(line, "Execution Time:");
        else if (strstr(line, "Timing:") != NULL && strstr(line, "Total") != NULL)
            jit = after(line, "Total");
    }
    PQclear(res);
    json_t *out = json_pack("{s:s, s:f, s:f, s:f}", "text", text, "planning_ms", planning,
                            "execution_ms", execution, "jit_ms", jit);
    free(text);
    return out;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    if (n <= 0)
        return -1;
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One setting: warm up, then `rounds` rounds, each running every statement once in an
 * order rotated per round. */
static json_t *measure(scmp *c, bool index_present, bool jit_off, int rounds)
{
    double samples[Q_COUNT][MAX_ROUNDS];
    double ratio_ref[MAX_ROUNDS], ratio_floor[MAX_ROUNDS], ratio_prop[MAX_ROUNDS];
    if (simple(c, jit_off ? "SET jit = off" : "RESET jit") != 0 || prepare(c) != 0)
        return NULL;
    for (int warm = 0; warm < 2; warm++)
        for (int q = 0; q < Q_COUNT; q++) {
            double ms;
            if (c->sql[q] != NULL && timed(c, q, &ms) != 0)
                return NULL;
        }
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < Q_COUNT; k++) {
            int q = (k + r) % Q_COUNT;
            if (c->sql[q] != NULL && timed(c, q, &samples[q][r]) != 0)
                return NULL;
        }
        ratio_ref[r] = samples[Q_OURS][r] / samples[Q_REF][r];
        ratio_floor[r] = samples[Q_OURS][r] / samples[Q_FLOOR][r];
        ratio_prop[r] = c->sql[Q_PROPOSED] != NULL ? samples[Q_PROPOSED][r] / samples[Q_REF][r] : 0;
    }
    json_t *v = json_pack("{s:b, s:s, s:i}", "our_index", index_present, "jit",
                          jit_off ? "off" : "server default", "rounds", rounds);
    json_t *st = json_object();
    for (int q = 0; q < Q_COUNT; q++) {
        if (c->sql[q] == NULL)
            continue;
        json_t *arr = json_array();
        for (int r = 0; r < rounds; r++)
            json_array_append_new(arr, json_real(samples[q][r]));
        double sorted[MAX_ROUNDS];
        memcpy(sorted, samples[q], sizeof(double) * (size_t)rounds);
        double med = median(sorted, rounds);
        json_t *e = explain(c, q);
        json_t *one = json_pack("{s:f, s:f, s:f, s:o}", "median_ms", med, "min_ms", sorted[0],
                                "max_ms", sorted[rounds - 1], "samples_ms", arr);
        if (e != NULL) {
            json_object_set(one, "explain_planning_ms", json_object_get(e, "planning_ms"));
            json_object_set(one, "explain_execution_ms", json_object_get(e, "execution_ms"));
            json_object_set(one, "explain_jit_ms", json_object_get(e, "jit_ms"));
            json_object_set(one, "explain", json_object_get(e, "text"));
            json_decref(e);
        } else {
            json_object_set_new(one, "explain_error", json_string(c->err));
            c->err[0] = '\0';
        }
        json_object_set_new(st, q_keys[q], one);
    }
    json_object_set_new(v, "statements", st);
    json_object_set_new(v, "ours_over_reference", json_real(median(ratio_ref, rounds)));
    json_object_set_new(v, "ours_over_floor", json_real(median(ratio_floor, rounds)));
    if (c->sql[Q_PROPOSED] != NULL)
        json_object_set_new(v, "proposed_over_reference", json_real(median(ratio_prop, rounds)));
    return v;
}

static int queryid_calls(int n_cols, const char *const *vals, void *arg)
{
    json_t *map = arg;
    if (n_cols >= 2 && vals[0] != NULL && vals[1] != NULL)
        json_object_set_new(map, vals[0], json_real(strtod(vals[1], NULL)));
    return 0;
}

static int stats_snapshot(bconn *admin, const char *db_name, json_t *map)
{
    const char *p[1] = {db_name};
    return bconn_exec(admin,
                      "SELECT queryid::text, calls FROM pg_stat_statements"
                      " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
                      1, p, queryid_calls, map) == BQ_OK
               ? 0
               : -1;
}

int status_sql_verify(const char *pg_base, const bench_db *db, const char *sql, char *err,
                      size_t len)
{
    /* pg_stat_statements keeps statements with their constants replaced, so the text the
     * library prepared cannot be read back; but the same statement gets the same queryid.
     * Run our copy once: if no new queryid appears and one the library already ran gains
     * a call, the copy is the library's statement. */
    bconn admin, c;
    int verdict = -1;
    json_t *before = json_object(), *after = json_object();
    if (bconn_open(&admin, PB_BACKEND_PG, pg_base) != 0) {
        (void)snprintf(err, len, "connect: %.400s", admin.err);
        goto out_json;
    }
    if (bconn_open(&c, PB_BACKEND_PG, db->target) != 0) {
        (void)snprintf(err, len, "connect: %.400s", c.err);
        bconn_close(&admin);
        goto out_json;
    }
    pb_target t;
    pb_target_init_default(&t);
    const char *params[2] = {t.user_id, t.group_name};
    if (stats_snapshot(&admin, db->name, before) != 0) {
        (void)snprintf(err, len, "read pg_stat_statements: %.400s", admin.err);
        goto out;
    }
    PGresult *res = PQprepare(c.pg, "bench_verify", sql, 0, NULL);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (ok) {
        res = PQexecPrepared(c.pg, "bench_verify", 2, params, NULL, NULL, 0);
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
    }
    if (!ok) {
        (void)snprintf(err, len, "run the library's status statement: %.400s",
                       PQerrorMessage(c.pg));
        goto out;
    }
    if (stats_snapshot(&admin, db->name, after) != 0) {
        (void)snprintf(err, len, "read pg_stat_statements: %.400s", admin.err);
        goto out;
    }
    verdict = 0;
    const char *key;
    json_t *v;
    json_object_foreach(after, key, v)
    {
        json_t *b = json_object_get(before, key);
        if (b == NULL) {
            verdict = 0; /* a statement the library never ran */
            break;
        }
        if (json_number_value(v) > json_number_value(b))
            verdict = 1;
    }
    if (verdict == 0)
        (void)snprintf(err, len,
                       "the statement compared is not the one the library ran (its queryid is new "
                       "to pg_stat_statements)");
out:
    bconn_close(&c);
    bconn_close(&admin);
out_json:
    json_decref(before);
    json_decref(after);
    return verdict;
}

static int settings_row(int n_cols, const char *const *vals, void *arg)
{
    if (n_cols >= 2 && vals[0] != NULL)
        json_object_set_new(arg, vals[0], json_string(vals[1] != NULL ? vals[1] : ""));
    return 0;
}

json_t *status_compare(const bench_db *db, const char *ours_sql, const char *proposed_sql,
                       int rounds, bool without_index, char *err, size_t len)
{
    scmp c;
    memset(&c, 0, sizeof(c));
    pb_target t;
    pb_target_init_default(&t);
    c.params[0] = t.user_id;
    c.params[1] = t.group_name;
    c.sql[Q_OURS] = ours_sql;
    c.sql[Q_REF] = ref_status_sql(PB_BACKEND_PG);
    c.sql[Q_FLOOR] = floor_sql;
    c.sql[Q_PROPOSED] = proposed_sql;
    if (rounds > MAX_ROUNDS)
        rounds = MAX_ROUNDS;
    bconn b;
    if (bconn_open(&b, PB_BACKEND_PG, db->target) != 0) {
        (void)snprintf(err, len, "connect: %s", b.err);
        return NULL;
    }
    c.conn = b.pg;
    json_t *out = json_object();
    json_t *settings = json_object();
    (void)bconn_exec(&b,
                     "SELECT name, setting FROM pg_settings WHERE name IN ('jit', 'jit_above_cost',"
                     " 'jit_inline_above_cost', 'jit_optimize_above_cost', 'work_mem',"
                     " 'shared_buffers', 'max_parallel_workers_per_gather', 'server_version',"
                     " 'random_page_cost', 'effective_cache_size', 'fsync', 'synchronous_commit')",
                     0, NULL, settings_row, settings);
    double jit_available = 0;
    (void)bconn_number(&b, "SELECT pg_jit_available()::int", 0, NULL, &jit_available);
    json_object_set_new(settings, "jit_available", json_boolean(jit_available > 0));
    json_object_set_new(out, "settings", settings);
    json_object_set_new(out, "database", json_string(db->name));
    json_object_set_new(out, "ours_sql", json_string(ours_sql));
    json_object_set_new(out, "reference_sql", json_string(c.sql[Q_REF]));
    json_object_set_new(out, "floor_sql", json_string(floor_sql));
    json_object_set_new(out, "proposed_sql",
                        proposed_sql ? json_string(proposed_sql) : json_null());
    double n_presets = 0, n_configured = 0, n_orgs = 0;
    (void)bconn_number(&b, "SELECT count(*) FROM template_version_presets", 0, NULL, &n_presets);
    (void)bconn_number(&b, floor_sql, 0, NULL, &n_configured);
    (void)bconn_number(&b, "SELECT count(*) FROM organizations", 0, NULL, &n_orgs);
    json_object_set_new(out, "organizations", json_integer((json_int_t)n_orgs));
    json_object_set_new(out, "presets", json_integer((json_int_t)n_presets));
    json_object_set_new(out, "configured_presets", json_integer((json_int_t)n_configured));
    json_t *variants = json_array();
    int rc = 0;
    for (int index_present = 1; index_present >= 0 && rc == 0; index_present--) {
        if (!index_present) {
            double present = 0;
            if (!without_index)
                break;
            (void)bconn_number(
                &b,
                "SELECT (to_regclass('template_version_presets_prebuilds_idx') IS NOT NULL)::int",
                0, NULL, &present);
            if (present == 0)
                break;
            /* Inside a transaction that is rolled back: the database is left as it was. */
            if (simple(&c, "BEGIN") != 0 ||
                simple(&c, "DROP INDEX template_version_presets_prebuilds_idx") != 0) {
                rc = -1;
                break;
            }
        }
        for (int jit_off = 0; jit_off <= 1 && rc == 0; jit_off++) {
            json_t *v = measure(&c, index_present != 0, jit_off != 0, rounds);
            if (v == NULL)
                rc = -1;
            else
                json_array_append_new(variants, v);
        }
        if (!index_present)
            (void)simple(&c, "ROLLBACK");
    }
    json_object_set_new(out, "variants", variants);
    if (rc != 0) {
        (void)snprintf(err, len, "%s", c.err);
        json_decref(out);
        out = NULL;
    }
    bconn_close(&b);
    return out;
}
