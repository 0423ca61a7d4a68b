/* Data sets for the benchmark: fresh databases seeded by the library's own pb_store_seed,
 * and the drift, re-created between measured passes by deleting exactly the rows the
 * seed's drift would have left out (same organizations, same variants), so every drifted
 * pass starts from the same state without seeding again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static void db_target(bench_db *db, pb_backend backend, const char *pg_base, const char *sqlite_dir,
                      const char *name)
{
    memset(db, 0, sizeof(*db));
    db->backend = backend;
    (void)snprintf(db->name, sizeof(db->name), "%s", name);
    if (backend == PB_BACKEND_PG)
        (void)snprintf(db->target, sizeof(db->target), "%s dbname=%s", pg_base, name);
    else
        (void)snprintf(db->target, sizeof(db->target), "%s/%s.db", sqlite_dir, name);
}

static void unlink_sqlite(const char *path)
{
    char p[1100];
    (void)unlink(path);
    (void)snprintf(p, sizeof(p), "%s-wal", path);
    (void)unlink(p);
    (void)snprintf(p, sizeof(p), "%s-shm", path);
    (void)unlink(p);
}

static int admin_exec(const char *pg_base, const char *sql, char *err, size_t len)
{
    bconn c;
    if (bconn_open(&c, PB_BACKEND_PG, pg_base) != 0) {
        (void)snprintf(err, len, "connect to %s: %s", pg_base, c.err);
        return -1;
    }
    int rc = bconn_script(&c, sql);
    if (rc != 0)
        (void)snprintf(err, len, "%s: %s", sql, c.err);
    bconn_close(&c);
    return rc;
}

void dataset_drop(const bench_db *db, const char *pg_base)
{
    if (db->backend == PB_BACKEND_SQLITE) {
        unlink_sqlite(db->target);
        return;
    }
    char sql[160], err[BENCH_ERR_MAX];
    (void)snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    (void)admin_exec(pg_base, sql, err, sizeof(err));
}

int dataset_create(bench_db *db, pb_backend backend, const char *pg_base, const char *sqlite_dir,
                   const char *name, const pb_seed_opts *o, pb_seed_result *res, char *err,
                   size_t len)
{
    db_target(db, backend, pg_base, sqlite_dir, name);
    dataset_drop(db, pg_base);
    if (backend == PB_BACKEND_PG) {
        char sql[160];
        (void)snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
        if (admin_exec(pg_base, sql, err, len) != 0)
            return -1;
    }
    char url[1100];
    if (backend == PB_BACKEND_SQLITE)
        (void)snprintf(url, sizeof(url), "sqlite:%s", db->target);
    else
        (void)snprintf(url, sizeof(url), "%s", db->target);
    pb_dburl u;
    pb_err e;
    pb_store *s = NULL;
    if (pb_dburl_parse(url, &u, &e) != 0) {
        (void)snprintf(err, len, "%s: %s", name, e.msg);
        return -1;
    }
    int rc = pb_store_open(&u, PB_OPEN_CREATE, &s, &e);
    pb_dburl_fini(&u);
    pb_target t;
    pb_target_init_default(&t);
    pb_init_opts io = {.create_user = true};
    pb_init_result ir;
    if (rc == 0)
        rc = pb_store_init(s, &t, &io, &ir, &e);
    if (rc == 0)
        rc = pb_store_seed(s, &t, o, res, &e);
    pb_store_free(&s);
    if (rc != 0) {
        (void)snprintf(err, len, "seed %s: %s", name, e.msg);
        return -1;
    }
    if (backend == PB_BACKEND_PG) {
        /* The seed analysed the tables; a vacuum also sets the visibility map, as
         * autovacuum would on a live database, so index-only scans can skip the heap. */
        bconn c;
        if (bconn_open(&c, PB_BACKEND_PG, db->target) != 0) {
            (void)snprintf(err, len, "connect to %s: %s", name, c.err);
            return -1;
        }
        rc = bconn_script(&c, "VACUUM ANALYZE");
        if (rc != 0)
            (void)snprintf(err, len, "vacuum %s: %s", name, c.err);
        bconn_close(&c);
    }
    return rc;
}

/* ---- drift ---- */

/* The seed's arithmetic: organization i (by the number in its name) has prebuilds when
 * floor((i + 1) f) > floor(i f); it is then the k-th such, k = floor(i f); the k-th
 * drifts when floor((k + 1) d) > floor(k d), with variant floor(k d) mod 4: 0 misses
 * everything, 1 the membership, 2 the group (and so its membership), 3 the group
 * membership. The same expressions in both dialects, double precision like the seed. */
static const char drift_fill_pg[] =
    "INSERT INTO bench_drift (org_id, variant)"
    " SELECT id, (floor(k * $3::float8)::bigint % 4)::int FROM ("
    "  SELECT id, floor(i * $2::float8)::bigint AS k FROM ("
    "   SELECT id, substring(name from '-org-([0-9]+)$')::bigint AS i FROM organizations"
    "   WHERE name LIKE 'seed' || $1 || '-org-%') o"
    "  WHERE floor((i + 1) * $2::float8) > floor(i * $2::float8)) p"
    " WHERE floor((k + 1) * $3::float8) > floor(k * $3::float8)";
static const char drift_fill_sq[] =
    "INSERT INTO temp.bench_drift (org_id, variant)"
    " SELECT id, CAST(k * CAST(?3 AS REAL) AS INTEGER) % 4 FROM ("
    "  SELECT id, CAST(i * CAST(?2 AS REAL) AS INTEGER) AS k FROM ("
    "   SELECT id, CAST(substr(name, instr(name, '-org-') + 5) AS INTEGER) AS i"
    "   FROM organizations WHERE name LIKE 'seed' || ?1 || '-org-%') o"
    "  WHERE CAST((i + 1) * CAST(?2 AS REAL) AS INTEGER) > CAST(i * CAST(?2 AS REAL) AS INTEGER)) p"
    " WHERE CAST((k + 1) * CAST(?3 AS REAL) AS INTEGER) > CAST(k * CAST(?3 AS REAL) AS INTEGER)";

/* Deletes, in an order that needs no cascade: group memberships, groups, memberships. */
static const char del_gm_pg[] =
    "DELETE FROM group_members gm USING groups g, bench_drift d"
    " WHERE gm.group_id = g.id AND g.organization_id = d.org_id AND g.name = $2::text"
    " AND gm.user_id = $1::uuid AND d.variant IN (0, 2, 3)";
static const char del_group_pg[] = "DELETE FROM groups g USING bench_drift d"
                                   " WHERE g.organization_id = d.org_id AND g.name = $2::text"
                                   " AND $1::uuid IS NOT NULL AND d.variant IN (0, 2)";
static const char del_member_pg[] = "DELETE FROM organization_members m USING bench_drift d"
                                    " WHERE m.organization_id = d.org_id AND m.user_id = $1::uuid"
                                    " AND $2::text IS NOT NULL AND d.variant IN (0, 1)";
static const char del_gm_sq[] =
    "DELETE FROM group_members WHERE user_id = ?1 AND group_id IN (SELECT g.id FROM groups g"
    " JOIN temp.bench_drift d ON d.org_id = g.organization_id WHERE g.name = ?2"
    " AND d.variant IN (0, 2, 3))";
static const char del_group_sq[] =
    "DELETE FROM groups WHERE name = ?2 AND ?1 IS NOT NULL AND organization_id IN"
    " (SELECT org_id FROM temp.bench_drift WHERE variant IN (0, 2))";
static const char del_member_sq[] =
    "DELETE FROM organization_members WHERE user_id = ?1 AND ?2 IS NOT NULL AND organization_id IN"
    " (SELECT org_id FROM temp.bench_drift WHERE variant IN (0, 1))";

/* Drifted organizations that still miss something. */
static const char missing_pg[] =
    "SELECT count(*) FROM bench_drift d"
    " LEFT JOIN groups g ON g.organization_id = d.org_id AND g.name = $2::text"
    " WHERE NOT EXISTS (SELECT 1 FROM organization_members m"
    "  WHERE m.organization_id = d.org_id AND m.user_id = $1::uuid)"
    " OR g.id IS NULL OR NOT EXISTS (SELECT 1 FROM group_members gm"
    "  WHERE gm.group_id = g.id AND gm.user_id = $1::uuid)";
static const char missing_sq[] =
    "SELECT count(*) FROM temp.bench_drift d"
    " LEFT JOIN groups g ON g.organization_id = d.org_id AND g.name = ?2"
    " WHERE NOT EXISTS (SELECT 1 FROM organization_members m"
    "  WHERE m.organization_id = d.org_id AND m.user_id = ?1)"
    " OR g.id IS NULL OR NOT EXISTS (SELECT 1 FROM group_members gm"
    "  WHERE gm.group_id = g.id AND gm.user_id = ?1)";

#define DPICK(d, name) ((d)->backend == PB_BACKEND_PG ? name##_pg : name##_sq)

static int copy_trigger(int n_cols, const char *const *vals, void *arg)
{
    drifter *d = arg;
    if (n_cols < 2 || vals[0] == NULL || vals[1] == NULL || d->trigger_sql != NULL)
        return 0;
    (void)snprintf(d->trigger_name, sizeof(d->trigger_name), "%s", vals[0]);
    d->trigger_sql = strdup(vals[1]);
    return d->trigger_sql == NULL ? -1 : 0;
}

int drifter_open(drifter *d, const bench_db *db, const char *pg_base, const pb_seed_opts *seeded,
                 double drift)
{
    memset(d, 0, sizeof(*d));
    d->backend = db->backend;
    d->drift = drift;
    pb_target_init_default(&d->target);
    (void)snprintf(d->db_name, sizeof(d->db_name), "%s", db->name);
    if (bconn_open(&d->conn, db->backend, db->target) != 0)
        return -1;
    if (db->backend == PB_BACKEND_PG && pg_base != NULL &&
        bconn_open(&d->admin, PB_BACKEND_PG, pg_base) != 0) {
        (void)snprintf(d->conn.err, sizeof(d->conn.err), "%s", d->admin.err);
        return -1;
    }
    if (db->backend == PB_BACKEND_PG) {
        /* Replica mode: no trigger fires on this session, neither the membership trigger
         * nor the foreign-key actions; the deletes name every row themselves. */
        if (bconn_script(&d->conn, "SET session_replication_role = replica") != 0 ||
            bconn_script(&d->conn, "CREATE TEMP TABLE bench_drift"
                                   " (org_id uuid PRIMARY KEY, variant int NOT NULL)") != 0)
            return -1;
    } else {
        /* No foreign-key actions on this connection: the deletes name every row. */
        if (bconn_script(&d->conn, "PRAGMA foreign_keys = OFF") != 0 ||
            bconn_script(&d->conn, "CREATE TEMP TABLE bench_drift"
                                   " (org_id TEXT PRIMARY KEY, variant INTEGER NOT NULL)") != 0)
            return -1;
        if (bconn_exec(&d->conn,
                       "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                       " AND tbl_name = 'organization_members'",
                       0, NULL, copy_trigger, d) != BQ_OK)
            return -1;
    }
    if (drift <= 0)
        return 0;
    char seed[16], pf[40], df[40];
    (void)snprintf(seed, sizeof(seed), "%u", seeded->seed);
    (void)snprintf(pf, sizeof(pf), "%.17g", seeded->prebuilds_fraction);
    (void)snprintf(df, sizeof(df), "%.17g", drift);
    const char *p[3] = {seed, pf, df};
    if (bconn_exec(&d->conn, DPICK(d, drift_fill), 3, p, NULL, NULL) != BQ_OK)
        return -1;
    d->n_drifted = (int64_t)d->conn.changes;
    if (db->backend == PB_BACKEND_PG && bconn_script(&d->conn, "ANALYZE bench_drift") != 0)
        return -1;
    return 0;
}

int drifter_apply(drifter *d)
{
    if (d->drift <= 0 || d->n_drifted == 0)
        return 0;
    const char *p[2] = {d->target.user_id, d->target.group_name};
    const char *dels[3] = {DPICK(d, del_gm), DPICK(d, del_group), DPICK(d, del_member)};
    bool sqlite_trigger = d->backend == PB_BACKEND_SQLITE && d->trigger_sql != NULL;
    int rc = bconn_script(&d->conn, d->backend == PB_BACKEND_PG ? "BEGIN" : "BEGIN IMMEDIATE");
    if (rc != 0)
        return -1;
    if (sqlite_trigger) {
        /* SQLite cannot switch a trigger off, and this one scans the groups table once
         * per deleted membership; dropping and recreating it in the same transaction
         * costs the other connections one schema reload instead. */
        char sql[200];
        (void)snprintf(sql, sizeof(sql), "DROP TRIGGER \"%s\"", d->trigger_name);
        rc = bconn_script(&d->conn, sql);
    }
    d->n_rows = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        rc = bconn_exec(&d->conn, dels[i], 2, p, NULL, NULL) == BQ_OK ? 0 : -1;
        d->n_rows += (int64_t)d->conn.changes;
    }
    if (rc == 0 && sqlite_trigger)
        rc = bconn_script(&d->conn, d->trigger_sql);
    if (rc == 0)
        rc = bconn_script(&d->conn, "COMMIT");
    if (rc != 0) {
        char saved[BENCH_ERR_MAX];
        (void)snprintf(saved, sizeof(saved), "%s", d->conn.err);
        (void)bconn_script(&d->conn, "ROLLBACK");
        (void)snprintf(d->conn.err, sizeof(d->conn.err), "%s", saved);
        return -1;
    }
    /* Keep the three small tables' statistics and free space as they were: without
     * this, dead rows pile up over the passes and later passes plan and run differently. */
    if (d->backend == PB_BACKEND_PG &&
        bconn_script(&d->conn, "VACUUM ANALYZE organization_members, groups, group_members") != 0)
        return -1;
    return 0;
}

static int count_missing(int n_cols, const char *const *vals, void *arg)
{
    int64_t *n = arg;
    if (n_cols >= 5 &&
        (vals[2] == NULL || (vals[2][0] != 't' && vals[2][0] != '1') || vals[3] == NULL ||
         vals[4] == NULL || (vals[4][0] != 't' && vals[4][0] != '1')))
        (*n)++;
    return 0;
}

int drifter_missing(drifter *d, bool full, int64_t *n_missing)
{
    const char *p[2] = {d->target.user_id, d->target.group_name};
    *n_missing = 0;
    if (full)
        return bconn_exec(&d->conn, ref_status_sql(d->backend), 2, p, count_missing, n_missing) ==
                       BQ_OK
                   ? 0
                   : -1;
    if (d->drift <= 0)
        return 0;
    double n = 0;
    if (bconn_number(&d->conn, DPICK(d, missing), 2, p, &n) != 0)
        return -1;
    *n_missing = (int64_t)n;
    return 0;
}

static int two_numbers(int n_cols, const char *const *vals, void *arg)
{
    double *out = arg;
    for (int i = 0; i < 2 && i < n_cols; i++)
        out[i] = vals[i] != NULL ? strtod(vals[i], NULL) : 0;
    return 0;
}

int drifter_server(drifter *d, double *exec_ms, double *calls)
{
    *exec_ms = -1;
    *calls = -1;
    if (d->backend != PB_BACKEND_PG || d->admin.pg == NULL)
        return -1;
    double v[2] = {-1, -1};
    const char *p[1] = {d->db_name};
    if (bconn_exec(&d->admin,
                   "SELECT coalesce(sum(total_exec_time + total_plan_time), 0),"
                   " coalesce(sum(calls), 0) FROM pg_stat_statements"
                   " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)",
                   1, p, two_numbers, v) != BQ_OK)
        return -1;
    *exec_ms = v[0];
    *calls = v[1];
    return 0;
}

void drifter_close(drifter *d)
{
    bconn_close(&d->conn);
    bconn_close(&d->admin);
    free(d->trigger_sql);
    d->trigger_sql = NULL;
}

void drift_expected(const pb_seed_opts *o, double drift, int64_t *prebuild_orgs, int64_t *drifted)
{
    *prebuild_orgs = 0;
    *drifted = 0;
    for (int64_t i = 0; i < o->orgs; i++) {
        if ((int64_t)((double)(i + 1) * o->prebuilds_fraction) <=
            (int64_t)((double)i * o->prebuilds_fraction))
            continue;
        int64_t k = (*prebuild_orgs)++;
        if ((int64_t)((double)(k + 1) * drift) > (int64_t)((double)k * drift))
            (*drifted)++;
    }
}
