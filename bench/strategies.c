/* The three strategies the benchmark compares, each one pass at a time. (a) and (b) are the
 * reference platform's two designs, written here from their description (see DOMAIN.md):
 * they live only in bench/ and speak SQL directly; (c) is the library's pb_reconcile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* ---- SQL of the reference strategies, per backend ---- */

/* The reference's own question, in its own shape: DISTINCT organizations over the
 * four-table join, then LEFT JOINs to the membership, the group and the group membership.
 * Like the reference, it does not filter deleted organizations or templates. */
static const char ref_status_pg[] =
    "SELECT q.id, q.name, om.user_id IS NOT NULL, g.id, gm.user_id IS NOT NULL"
    " FROM (SELECT DISTINCT o.id, o.name FROM organizations o"
    " JOIN templates t ON t.organization_id = o.id"
    " JOIN template_versions tv ON tv.template_id = t.id"
    " JOIN template_version_presets p ON p.template_version_id = tv.id"
    " WHERE p.desired_instances IS NOT NULL) q"
    " LEFT JOIN organization_members om ON om.organization_id = q.id AND om.user_id = $1::uuid"
    " LEFT JOIN groups g ON g.organization_id = q.id AND g.name = $2::text"
    " LEFT JOIN group_members gm ON gm.group_id = g.id AND gm.user_id = $1::uuid";
static const char ref_status_sq[] =
    "SELECT q.id, q.name, om.user_id IS NOT NULL, g.id, gm.user_id IS NOT NULL"
    " FROM (SELECT DISTINCT o.id, o.name FROM organizations o"
    " JOIN templates t ON t.organization_id = o.id"
    " JOIN template_versions tv ON tv.template_id = t.id"
    " JOIN template_version_presets p ON p.template_version_id = tv.id"
    " WHERE p.desired_instances IS NOT NULL) q"
    " LEFT JOIN organization_members om ON om.organization_id = q.id AND om.user_id = ?1"
    " LEFT JOIN groups g ON g.organization_id = q.id AND g.name = ?2"
    " LEFT JOIN group_members gm ON gm.group_id = g.id AND gm.user_id = ?1";

const char *ref_status_sql(pb_backend b)
{
    return b == PB_BACKEND_PG ? ref_status_pg : ref_status_sq;
}

/* (a) reads the user's memberships once, and every preset that asks for prebuilds. */
static const char a_members_pg[] =
    "SELECT organization_id FROM organization_members WHERE user_id = $1::uuid";
static const char a_members_sq[] = "SELECT organization_id FROM organization_members"
                                   " WHERE user_id = ?1";
static const char a_presets_pg[] =
    "SELECT t.organization_id, p.id FROM template_version_presets p"
    " JOIN template_versions tv ON tv.id = p.template_version_id"
    " JOIN templates t ON t.id = tv.template_id WHERE p.desired_instances IS NOT NULL";
static const char a_presets_sq[] =
    "SELECT t.organization_id, p.id FROM template_version_presets p"
    " JOIN template_versions tv ON tv.id = p.template_version_id"
    " JOIN templates t ON t.id = tv.template_id WHERE p.desired_instances IS NOT NULL";
static const char a_group_pg[] =
    "SELECT id FROM groups WHERE organization_id = $1::uuid AND name = $2::text";
static const char a_group_sq[] = "SELECT id FROM groups WHERE organization_id = ?1 AND name = ?2";

/* Single-row inserts shared by (a) and (b): plain INSERTs, a unique violation is success. */
static const char ins_member_pg[] =
    "INSERT INTO organization_members (organization_id, user_id, created_at, updated_at, roles)"
    " VALUES ($1::uuid, $2::uuid, now(), now(), '{}'::text[])";
static const char ins_member_sq[] =
    "INSERT INTO organization_members (organization_id, user_id, created_at, updated_at, roles)"
    " VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
    " strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), '[]')";
static const char ins_group_pg[] =
    "INSERT INTO groups (id, name, organization_id, display_name, avatar_url, quota_allowance)"
    " VALUES ($1::uuid, $2::text, $3::uuid, $4::text, '', 0)";
static const char ins_group_sq[] =
    "INSERT INTO groups (id, name, organization_id, display_name, avatar_url, quota_allowance)"
    " VALUES (?1, ?2, ?3, ?4, '', 0)";
static const char ins_gm_pg[] =
    "INSERT INTO group_members (user_id, group_id) VALUES ($1::uuid, $2::uuid)";
static const char ins_gm_sq[] = "INSERT INTO group_members (user_id, group_id) VALUES (?1, ?2)";

#define PICK(r, name) ((r)->backend == PB_BACKEND_PG ? name##_pg : name##_sq)

const char *bench_strategy_name(bench_strategy s)
{
    static const char *const names[BS_COUNT] = {"a", "b", "c"};
    return s < BS_COUNT ? names[s] : "?";
}

const char *bench_strategy_title(bench_strategy s)
{
    static const char *const titles[BS_COUNT] = {
        "(a) reference, per preset",
        "(b) reference, status + per organization",
        "(c) ours, pb_reconcile",
    };
    return s < BS_COUNT ? titles[s] : "?";
}

static bool is_true(const char *v)
{
    return v != NULL && (v[0] == 't' || v[0] == '1');
}

static void note_error(bench_pass *p, const char *what, const char *msg)
{
    p->errors++;
    if (p->err[0] == '\0')
        (void)snprintf(p->err, sizeof(p->err), "%.60s: %.400s", what, msg);
}

/* One single-row insert: counted, a unique violation is success (not added). */
static bool insert_row(bench_runner *r, bench_pass *p, const char *sql, int n,
                       const char *const *params, int kind, const char *what)
{
    p->inserts++;
    int rc = bconn_exec(&r->conn, sql, n, params, NULL, NULL);
    if (rc == BQ_OK) {
        p->added[kind]++;
        return true;
    }
    if (rc == BQ_ERROR)
        note_error(p, what, r->conn.err);
    return false;
}

/* ---- a set of organization ids (open addressing) for (a)'s membership check ---- */

typedef struct idset {
    char (*slots)[PB_UUID_LEN + 1];
    size_t cap, n;
} idset;

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int idset_grow(idset *set)
{
    size_t cap = set->cap == 0 ? 1024 : set->cap * 2;
    char(*slots)[PB_UUID_LEN + 1] = calloc(cap, sizeof(*slots));
    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < set->cap; i++) {
        if (set->slots[i][0] == '\0')
            continue;
        size_t j = hash_id(set->slots[i]) & (cap - 1);
        while (slots[j][0] != '\0')
            j = (j + 1) & (cap - 1);
        memcpy(slots[j], set->slots[i], sizeof(slots[j]));
    }
    free(set->slots);
    set->slots = slots;
    set->cap = cap;
    return 0;
}

static bool idset_has(const idset *set, const char *id)
{
    if (set->cap == 0)
        return false;
    size_t j = hash_id(id) & (set->cap - 1);
    while (set->slots[j][0] != '\0') {
        if (strcmp(set->slots[j], id) == 0)
            return true;
        j = (j + 1) & (set->cap - 1);
    }
    return false;
}

static int idset_add(idset *set, const char *id)
{
    if (idset_has(set, id))
        return 0;
    if ((set->n + 1) * 2 > set->cap && idset_grow(set) != 0)
        return -1;
    size_t j = hash_id(id) & (set->cap - 1);
    while (set->slots[j][0] != '\0')
        j = (j + 1) & (set->cap - 1);
    (void)snprintf(set->slots[j], sizeof(set->slots[j]), "%s", id);
    set->n++;
    return 0;
}

/* ---- (a): per preset ---- */

typedef struct preset_row {
    char org_id[PB_UUID_LEN + 1];
    char preset_id[PB_UUID_LEN + 1];
} preset_row;

typedef struct preset_list {
    preset_row *rows;
    size_t n, cap;
} preset_list;

static int collect_member(int n_cols, const char *const *vals, void *arg)
{
    return n_cols >= 1 && vals[0] != NULL ? idset_add(arg, vals[0]) : 0;
}

static int collect_preset(int n_cols, const char *const *vals, void *arg)
{
    preset_list *l = arg;
    if (n_cols < 2 || vals[0] == NULL)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap == 0 ? 1024 : l->cap * 2;
        preset_row *rows = realloc(l->rows, cap * sizeof(*rows));
        if (rows == NULL)
            return -1;
        l->rows = rows;
        l->cap = cap;
    }
    (void)snprintf(l->rows[l->n].org_id, sizeof(l->rows[l->n].org_id), "%s", vals[0]);
    (void)snprintf(l->rows[l->n].preset_id, sizeof(l->rows[l->n].preset_id), "%s",
                   vals[1] != NULL ? vals[1] : "");
    l->n++;
    return 0;
}

static int copy_first(int n_cols, const char *const *vals, void *arg)
{
    char *out = arg;
    if (n_cols >= 1 && vals[0] != NULL)
        (void)snprintf(out, PB_UUID_LEN + 1, "%s", vals[0]);
    return 0;
}

static int pass_a(bench_runner *r, bench_pass *p)
{
    idset members = {0};
    preset_list presets = {0};
    const char *uid[1] = {r->target.user_id};
    int rc = 0;
    /* The user's memberships once, then every preset that asks for prebuilds, read into
     * memory before the loop (as the reference holds its rows in a slice). */
    if (bconn_exec(&r->conn, PICK(r, a_members), 1, uid, collect_member, &members) != BQ_OK ||
        bconn_exec(&r->conn, PICK(r, a_presets), 0, NULL, collect_preset, &presets) != BQ_OK) {
        (void)snprintf(p->err, sizeof(p->err), "read: %.480s", r->conn.err);
        rc = -1;
        goto out;
    }
    p->considered = presets.n;
    for (size_t i = 0; i < presets.n; i++) {
        const char *org = presets.rows[i].org_id;
        if (!idset_has(&members, org)) {
            const char *mp[2] = {org, r->target.user_id};
            (void)insert_row(r, p, PICK(r, ins_member), 2, mp, 0, "insert organization member");
            if (idset_add(&members, org) != 0) {
                (void)snprintf(p->err, sizeof(p->err), "out of memory");
                rc = -1;
                goto out;
            }
        }
        char group_id[PB_UUID_LEN + 1] = "";
        const char *gp[2] = {org, r->target.group_name};
        if (bconn_exec(&r->conn, PICK(r, a_group), 2, gp, copy_first, group_id) != BQ_OK) {
            note_error(p, "look up group", r->conn.err);
            continue;
        }
        if (group_id[0] == '\0') {
            char new_id[PB_UUID_LEN + 1];
            pb_err e;
            if (pb_uuid_random(new_id, &e) != 0) {
                note_error(p, "generate group id", e.msg);
                continue;
            }
            const char *ip[4] = {new_id, r->target.group_name, org, r->target.group_display_name};
            if (!insert_row(r, p, PICK(r, ins_group), 4, ip, 1, "insert group"))
                continue; /* lost a race or failed: the next pass looks it up again */
            memcpy(group_id, new_id, sizeof(group_id));
        }
        const char *mp[2] = {r->target.user_id, group_id};
        (void)insert_row(r, p, PICK(r, ins_gm), 2, mp, 2, "insert group member");
    }
out:
    free(members.slots);
    free(presets.rows);
    return rc;
}

/* ---- (b): one status statement, then up to three inserts per organization ---- */

typedef struct status_row {
    char org_id[PB_UUID_LEN + 1];
    char *org_name;
    bool is_member, has_group, in_group;
    char group_id[PB_UUID_LEN + 1];
} status_row;

typedef struct status_list {
    status_row *rows;
    size_t n, cap;
} status_list;

static int collect_status(int n_cols, const char *const *vals, void *arg)
{
    status_list *l = arg;
    if (n_cols < 5 || vals[0] == NULL)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap == 0 ? 1024 : l->cap * 2;
        status_row *rows = realloc(l->rows, cap * sizeof(*rows));
        if (rows == NULL)
            return -1;
        l->rows = rows;
        l->cap = cap;
    }
    status_row *row = &l->rows[l->n];
    memset(row, 0, sizeof(*row));
    (void)snprintf(row->org_id, sizeof(row->org_id), "%s", vals[0]);
    row->org_name = strdup(vals[1] != NULL ? vals[1] : "");
    if (row->org_name == NULL)
        return -1;
    row->is_member = is_true(vals[2]);
    row->has_group = vals[3] != NULL;
    if (row->has_group)
        (void)snprintf(row->group_id, sizeof(row->group_id), "%s", vals[3]);
    row->in_group = is_true(vals[4]);
    l->n++;
    return 0;
}

static int pass_b(bench_runner *r, bench_pass *p)
{
    status_list rows = {0};
    const char *sp[2] = {r->target.user_id, r->target.group_name};
    int rc = 0;
    if (bconn_exec(&r->conn, ref_status_sql(r->backend), 2, sp, collect_status, &rows) != BQ_OK) {
        (void)snprintf(p->err, sizeof(p->err), "read status: %.480s", r->conn.err);
        rc = -1;
        goto out;
    }
    p->considered = rows.n;
    /* No transaction: each insert commits on its own, errors are collected and the next
     * pass repairs what this one could not. */
    for (size_t i = 0; i < rows.n; i++) {
        status_row *row = &rows.rows[i];
        if (!row->is_member) {
            const char *mp[2] = {row->org_id, r->target.user_id};
            (void)insert_row(r, p, PICK(r, ins_member), 2, mp, 0, "insert organization member");
        }
        char group_id[PB_UUID_LEN + 1];
        memcpy(group_id, row->group_id, sizeof(group_id));
        if (!row->has_group) {
            char new_id[PB_UUID_LEN + 1];
            pb_err e;
            if (pb_uuid_random(new_id, &e) != 0) {
                note_error(p, "generate group id", e.msg);
                continue;
            }
            const char *ip[4] = {new_id, r->target.group_name, row->org_id,
                                 r->target.group_display_name};
            /* The reference's weakness, kept on purpose: after losing the race for the
             * group it goes on with an empty id, so the membership insert below fails
             * until the next pass. No race happens in this benchmark. */
            if (insert_row(r, p, PICK(r, ins_group), 4, ip, 1, "insert group"))
                memcpy(group_id, new_id, sizeof(group_id));
            else
                (void)snprintf(group_id, sizeof(group_id), "%s",
                               "00000000-0000-0000-0000-000000000000");
        }
        if (!row->in_group) {
            const char *mp[2] = {r->target.user_id, group_id};
            (void)insert_row(r, p, PICK(r, ins_gm), 2, mp, 2, "insert group member");
        }
    }
out:
    for (size_t i = 0; i < rows.n; i++)
        free(rows.rows[i].org_name);
    free(rows.rows);
    return rc;
}

/* ---- (c): ours ---- */

static int pass_c(bench_runner *r, bench_pass *p)
{
    pb_report rep;
    pb_report_init(&rep);
    pb_err err;
    int rc = pb_reconcile(r->store, &r->target, NULL, &rep, &err);
    p->statements = rep.statements;
    p->round_trips = rep.round_trips;
    p->considered = rep.organizations;
    p->added[0] = rep.memberships_added;
    p->added[1] = rep.groups_created;
    p->added[2] = rep.group_memberships_added;
    p->errors = rep.n_errors;
    if (rc != 0)
        (void)snprintf(p->err, sizeof(p->err), "reconcile: %.480s", err.msg);
    pb_report_fini(&rep);
    return rc != 0 ? -1 : 0;
}

/* ---- runner ---- */

int runner_open(bench_runner *r, bench_strategy s, const bench_db *db, char *err, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->strategy = s;
    r->backend = db->backend;
    pb_target_init_default(&r->target);
    if (s != BS_C) {
        if (bconn_open(&r->conn, db->backend, db->target) != 0) {
            (void)snprintf(err, len, "connect: %.480s", r->conn.err);
            return -1;
        }
        return 0;
    }
    char url[1100];
    if (db->backend == PB_BACKEND_SQLITE)
        (void)snprintf(url, sizeof(url), "sqlite:%s", db->target);
    else
        (void)snprintf(url, sizeof(url), "%s", db->target);
    pb_dburl u;
    pb_err e;
    if (pb_dburl_parse(url, &u, &e) != 0) {
        (void)snprintf(err, len, "database url: %s", e.msg);
        return -1;
    }
    int rc = pb_store_open(&u, 0, &r->store, &e);
    pb_dburl_fini(&u);
    if (rc != 0) {
        (void)snprintf(err, len, "open store: %s", e.msg);
        return -1;
    }
    return 0;
}

int runner_pass(bench_runner *r, bench_pass *p)
{
    memset(p, 0, sizeof(*p));
    uint64_t statements = r->conn.statements, round_trips = r->conn.round_trips;
    double start = bench_now_ms();
    int rc;
    switch (r->strategy) {
    case BS_A:
        rc = pass_a(r, p);
        break;
    case BS_B:
        rc = pass_b(r, p);
        break;
    default:
        rc = pass_c(r, p);
        break;
    }
    p->wall_ms = bench_now_ms() - start;
    if (r->strategy != BS_C) {
        p->statements = r->conn.statements - statements;
        p->round_trips = r->conn.round_trips - round_trips;
    }
    return rc;
}

void runner_close(bench_runner *r)
{
    bconn_close(&r->conn);
    pb_store_free(&r->store);
}
