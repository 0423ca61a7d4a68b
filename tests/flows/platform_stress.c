/* The platform's real write load beside everything prebuilds installs and runs.
 *
 * On a platform database (tests/safety/load_platform.sh: the platform's schema owned by a
 * non-superuser role; `init
 * --recommended-indexes --summary --triggers` run as a superuser), several connections as
 * the platform's role run the platform's own write patterns in random order for the whole
 * duration, some at READ COMMITTED, one at REPEATABLE READ and one at SERIALIZABLE:
 * the new-template flow (version with template_id NULL and its presets, then the template
 * and the attaching UPDATE); new versions of existing templates with presets; preset
 * updates (desired_instances NULL <-> N, last_invalidated_at); several templates' presets
 * changed in one transaction in random order; archiving; deleting versions (presets
 * cascade); soft-deleting and restoring templates and organizations; admins removing the
 * prebuilds user's rows; new organizations; and the platform's own reconciler (a READ ONLY
 * REPEATABLE READ transaction with pg_try_advisory_xact_lock(7) for its read, then one
 * INSERT ... ON CONFLICT DO NOTHING per row, each its own statement). Meanwhile two
 * daemons (`run --listen --lock-id 4243`) and a loop of one-shot `prebuilds reconcile` run
 * on the same database.
 *
 * Every failed platform transaction is classified: a serialization failure or deadlock
 * among the platform's own sessions is the platform's concurrency (retried, counted);
 * an organization soft delete refused by the platform's trigger is the platform's rule
 * (counted); a foreign-key or unique violation between two platform writers is the
 * platform's race (counted). An error naming a prebuilds_ object, or a deadlock with a
 * session that is not a platform writer (or on an advisory lock), is ours.
 *
 * At the end (writers and daemons stopped, one `prebuilds reconcile`) it asserts:
 *   (i)   no platform transaction failed because of us, nothing unexplained;
 *   (ii)  `prebuilds status --json` equals a recount from the tables;
 *   (iii) the summary table equals a recount of templates with a configured preset;
 *   (iv)  no prebuilds_ function raised: prebuilds_summary_faults was never called;
 *   (v)   every qualifying organization is converged; every one-shot reconcile during the
 *         run exited 0 and no daemon pass failed;
 *   (vi)  before that, once the writers stop, the daemons alone converge everything within
 *         5 s (interval 1 s, and --listen).
 *
 * Usage: platform_stress PREBUILDS_BINARY CONNINFO LOAD_PLATFORM_SH [--seconds S] [--writers W]
 *                        [--orgs N] [--seed X]
 * ctest runs 20 s; run it longer by hand, e.g. from the build directory:
 *   tests/flows/platform_stress ./prebuilds "$(cat pgtest/conninfo)" \
 *       ../tests/safety/load_platform.sh --seconds 600 --writers 8 --orgs 200 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../summary_check.h"
#include "flows_common.h"

#define MAX_WRITERS  32
#define MAX_ATTEMPTS 5

enum op {
    OP_NEW_TEMPLATE,
    OP_NEW_VERSION,
    OP_PRESET_UPDATE,
    OP_MULTI_PRESET,
    OP_ARCHIVE,
    OP_DELETE_VERSION,
    OP_TEMPLATE_TOGGLE,
    OP_ORG_DELETE,
    OP_ORG_RESTORE,
    OP_PLATFORM_RECONCILER,
    OP_ADMIN_DRIFT,
    OP_NEW_ORG,
    N_OPS
};

static const char *const op_names[N_OPS] = {
    "new template (version first, attached later)",
    "new version of a template, with presets",
    "preset update (desired_instances / last_invalidated_at)",
    "several templates' presets in one transaction",
    "version archived / unarchived",
    "version deleted (presets cascade)",
    "template soft-deleted / restored",
    "organization soft-deleted (the platform's four steps)",
    "organization restored",
    "the platform's reconciler (RR read, lock 7, then inserts)",
    "admin removes a prebuilds row",
    "new organization",
};
static const int op_weight[N_OPS] = {3, 3, 5, 3, 1, 1, 2, 1, 1, 2, 1, 1};

enum cls { C_OK, C_SERIALIZATION, C_DEADLOCK, C_RULE, C_CONFLICT, C_OURS, C_OTHER };

typedef struct counts {
    long ops[N_OPS];
    long committed;
    long serialization;  /* platform's own serialization failures, retried */
    long deadlock;       /* deadlocks among platform sessions only, retried */
    long gave_up;        /* platform transactions abandoned after MAX_ATTEMPTS */
    long rule;           /* refused by the platform's own trigger, of which: */
    long rule_templates; /*  a live template came back (another platform writer) */
    long rule_ours_back; /*  the prebuilds group or membership was there again */
    long rule_others;    /*  any other group or member */
    long conflict;       /* FK / unique violations between platform writers */
    long ours;           /* failures because of prebuilds: the test fails */
    long other;          /* unexplained: the test fails */
    long skipped;        /* nothing to pick */
    double max_tx_ms;    /* the slowest committed platform transaction */
    char first_ours[600];
    char first_other[600];
} counts;

typedef struct writer {
    int idx;
    PGconn *c;
    const char *level;
    double deadline;
    unsigned seed;
    int fd;
    counts n;
    PGresult *err;    /* the failed statement's result */
    char cur_org[64]; /* the organization being soft-deleted, for a refusal's breakdown */
} writer;

static bool failed(writer *w);

static int backend_pids[MAX_WRITERS];
static int n_backends;

/* ------------------------------------------------------------------ error classification */

static bool mentions_us(const char *s)
{
    if (s == NULL)
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (strncasecmp(p, "prebuilds_", 10) == 0)
            return true;
    return false;
}

static bool platform_pid(int pid)
{
    for (int i = 0; i < n_backends; i++)
        if (backend_pids[i] == pid)
            return true;
    return false;
}

/* A deadlock is the platform's own when every process in its report is a platform writer
 * and no advisory lock (prebuilds' triggers and daemons take those) is in the cycle. */
static bool deadlock_is_platforms(const char *detail)
{
    if (detail == NULL || strstr(detail, "advisory lock") != NULL)
        return false;
    bool any = false;
    for (const char *p = detail; (p = strcasestr(p, "process ")) != NULL;) {
        p += 8;
        if (!isdigit((unsigned char)*p))
            continue;
        any = true;
        if (!platform_pid(atoi(p)))
            return false;
    }
    return any;
}

static enum cls classify(const PGresult *r, char *text, size_t len)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    const char *detail = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
    const char *ctx = PQresultErrorField(r, PG_DIAG_CONTEXT);
    const char *hint = PQresultErrorField(r, PG_DIAG_MESSAGE_HINT);
    const char *obj[] = {PQresultErrorField(r, PG_DIAG_TABLE_NAME),
                         PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME),
                         PQresultErrorField(r, PG_DIAG_SCHEMA_NAME)};
    (void)snprintf(text, len, "%s: %s%s%s%s%s", state ? state : "?", msg ? msg : "?",
                   detail ? " DETAIL: " : "", detail ? detail : "", ctx ? " CONTEXT: " : "",
                   ctx ? ctx : "");
    for (char *p = text; *p != '\0'; p++)
        if (*p == '\n')
            *p = ' ';
    state = state ? state : "";
    if (mentions_us(msg) || mentions_us(detail) || mentions_us(ctx) || mentions_us(hint) ||
        mentions_us(obj[0]) || mentions_us(obj[1]) || mentions_us(obj[2]))
        return C_OURS;
    if (strcmp(state, "40P01") == 0)
        return deadlock_is_platforms(detail) ? C_DEADLOCK : C_OURS;
    if (strcmp(state, "40001") == 0)
        return C_SERIALIZATION;
    if (strcmp(state, "P0001") == 0 && msg != NULL && strstr(msg, "cannot delete organization"))
        return C_RULE;
    if (strcmp(state, "23503") == 0 || strcmp(state, "23505") == 0)
        return C_CONFLICT;
    return C_OTHER;
}

/* ------------------------------------------------------------------ statements */

/* Run one statement; false (result kept in w->err) on error. The first value of the
 * first row is copied into out when given. */
static bool q(writer *w, const char *sql, int n, const char *const *v, char *out, size_t len)
{
    PGresult *r = PQexecParams(w->c, sql, n, NULL, v, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        if (PQstatus(w->c) != CONNECTION_OK)
            fl_die("writer %d lost its connection: %s", w->idx, PQerrorMessage(w->c));
        PQclear(w->err);
        w->err = r;
        return false;
    }
    if (out != NULL)
        (void)snprintf(out, len, "%s",
                       PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return true;
}

#define Q0(sql)            q(w, sql, 0, NULL, NULL, 0)
#define QV(sql, n, v)      q(w, sql, n, v, NULL, 0)
#define QS(sql, n, v, out) q(w, sql, n, v, out, sizeof(out))

static int rnd(writer *w, int n)
{
    return n <= 1 ? 0 : rand_r(&w->seed) % n;
}

/* A random desired_instances: NULL one time in five, else 0 to 3; buf holds 16 bytes. */
static const char *desired(writer *w, char buf[16])
{
    int x = rnd(w, 5);
    if (x == 0)
        return NULL;
    (void)snprintf(buf, 16, "%d", x - 1);
    return buf;
}

#define INS_ORG                                                                                    \
    "INSERT INTO organizations (id, name, display_name, description, created_at, updated_at,"      \
    " default_org_member_roles) VALUES (gen_random_uuid(), $1, $1, '', now(), now(),"              \
    " '{organization-workspace-access}') RETURNING id"
#define INS_EVERYONE                                                                               \
    "INSERT INTO groups (id, name, organization_id, display_name, quota_allowance)"                \
    " VALUES ($1, 'Everyone', $1, '', 0)"
#define INS_ADMIN_MEMBER                                                                           \
    "INSERT INTO organization_members (user_id, organization_id, created_at, updated_at, roles)"   \
    " VALUES ('" FL_ADMIN_ID "', $1, now(), now(), '{organization-admin}')"
#define INS_VERSION                                                                                \
    "INSERT INTO template_versions (id, template_id, organization_id, created_at, updated_at,"     \
    " name, readme, job_id, created_by) VALUES (gen_random_uuid(), $1, $2, now(), now(), $3, '',"  \
    " gen_random_uuid(), '" FL_ADMIN_ID "') RETURNING id"
#define INS_TEMPLATE                                                                               \
    "INSERT INTO templates (id, created_at, updated_at, organization_id, name, provisioner,"       \
    " active_version_id, created_by) VALUES (gen_random_uuid(), now(), now(), $1, $2,"             \
    " 'terraform', $3, '" FL_ADMIN_ID "') RETURNING id"
#define INS_PRESET                                                                                 \
    "INSERT INTO template_version_presets (template_version_id, name, desired_instances)"          \
    " VALUES ($1, $2, $3::int)"

static void uniq(writer *w, const char *prefix, char *out, size_t len)
{
    (void)snprintf(out, len, "%s-%d-%u-%u", prefix, w->idx, (unsigned)rand_r(&w->seed),
                   (unsigned)rand_r(&w->seed));
}

/* 1 to 3 presets, each configured or not. */
static bool presets(writer *w, const char *ver)
{
    int k = 1 + rnd(w, 3);
    for (int i = 0; i < k; i++) {
        char name[16], d[16];
        (void)snprintf(name, sizeof(name), "p%d", i);
        const char *v[] = {ver, name, desired(w, d)};
        if (!QV(INS_PRESET, 3, v))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ the platform's writes
 * Each step is one transaction (or one statement); it returns false on an error, which
 * the caller classifies, rolls back and, for the platform's retryable errors, repeats.
 * Picks happen in their own statement before the transaction. */

typedef struct ctx {
    char org[64], tpl[64], ver[64], ids[4][64];
    int nids;
} ctx;

static bool pick(writer *w, const char *sql, char *out, size_t len)
{
    return q(w, sql, 0, NULL, out, len);
}

static bool tx(writer *w, bool (*body)(writer *, ctx *), ctx *x)
{
    if (!Q0("BEGIN"))
        return false;
    if (!body(w, x))
        return false;
    return Q0("COMMIT");
}

static bool b_new_template_1(writer *w, ctx *x)
{
    char name[64];
    uniq(w, "v", name, sizeof(name));
    const char *v[] = {NULL, x->org, name};
    return QS(INS_VERSION, 3, v, x->ver) && presets(w, x->ver);
}

static bool b_new_template_2(writer *w, ctx *x)
{
    char name[64];
    uniq(w, "t", name, sizeof(name));
    const char *v[] = {x->org, name, x->ver};
    const char *a[] = {x->ver, x->tpl};
    return QS(INS_TEMPLATE, 3, v, x->tpl) &&
           QV("UPDATE template_versions SET template_id = $2, updated_at = now() WHERE id = $1", 2,
              a);
}

static bool b_new_version(writer *w, ctx *x)
{
    char name[64];
    uniq(w, "v", name, sizeof(name));
    const char *v[] = {x->tpl, x->org, name};
    if (!QS(INS_VERSION, 3, v, x->ver) || !presets(w, x->ver))
        return false;
    const char *a[] = {x->tpl, x->ver};
    return QV("UPDATE templates SET active_version_id = $2, updated_at = now() WHERE id = $1", 2,
              a);
}

static bool b_preset_update(writer *w, ctx *x)
{
    char d[16];
    const char *v[] = {x->ids[0], desired(w, d)};
    if (rnd(w, 3) == 0) /* a prebuild invalidated, nothing else changed */
        return QV("UPDATE template_version_presets SET last_invalidated_at = now() WHERE id = $1",
                  1, v);
    return QV("UPDATE template_version_presets SET desired_instances = $2::int,"
              " last_invalidated_at = CASE WHEN $2 IS NULL THEN last_invalidated_at ELSE now()"
              " END WHERE id = $1",
              2, v);
}

static bool b_multi_preset(writer *w, ctx *x)
{
    for (int i = 0; i < x->nids; i++) {
        char d[16];
        const char *v[] = {x->ids[i], desired(w, d)};
        if (!QV("UPDATE template_version_presets SET desired_instances = $2::int WHERE id = $1", 2,
                v))
            return false;
    }
    return true;
}

static bool b_archive(writer *w, ctx *x)
{
    const char *v[] = {x->ver};
    return QV("UPDATE template_versions SET archived = NOT archived, updated_at = now()"
              " WHERE id = $1",
              1, v);
}

static bool b_delete_version(writer *w, ctx *x)
{
    const char *v[] = {x->ver};
    return QV("DELETE FROM template_versions WHERE id = $1", 1, v);
}

static bool b_template_toggle(writer *w, ctx *x)
{
    const char *v[] = {x->tpl};
    return QV("UPDATE templates SET deleted = NOT deleted, updated_at = now() WHERE id = $1", 1, v);
}

/* The platform's organization delete, each step its own statement as its API does them:
 * templates, then every group but everyone and every member but the administrator (ours
 * among them), then the flag, which its trigger refuses if anything came back meanwhile. */
static bool org_delete(writer *w, ctx *x)
{
    static const char *const steps[] = {
        "UPDATE templates SET deleted = true, updated_at = now() WHERE organization_id = $1"
        " AND NOT deleted",
        "DELETE FROM groups WHERE organization_id = $1 AND id <> $1",
        "DELETE FROM organization_members WHERE organization_id = $1 AND user_id <> '" FL_ADMIN_ID
        "'",
        "UPDATE organizations SET deleted = true, updated_at = now() WHERE id = $1"};
    const char *v[] = {x->org};
    (void)snprintf(w->cur_org, sizeof(w->cur_org), "%s", x->org);
    for (int i = 0; i < 4; i++) {
        bool ok = false;
        for (int a = 0; a < MAX_ATTEMPTS && !ok; a++) {
            ok = QV(steps[i], 1, v);
            if (!ok && !failed(w))
                return false;
        }
        if (!ok) {
            w->n.gave_up++;
            return false;
        }
        w->n.committed++;
    }
    return true;
}

/* The organization back, with its templates (all or one), in one transaction. */
static bool b_org_restore(writer *w, ctx *x)
{
    const char *v[] = {x->org};
    if (!QV("UPDATE organizations SET deleted = false, updated_at = now() WHERE id = $1", 1, v))
        return false;
    if (rnd(w, 2) == 0)
        return QV("UPDATE templates SET deleted = false, updated_at = now()"
                  " WHERE organization_id = $1",
                  1, v);
    return QV("UPDATE templates SET deleted = false, updated_at = now() WHERE id = (SELECT id"
              " FROM templates WHERE organization_id = $1 ORDER BY random() LIMIT 1)",
              1, v);
}

/* The platform reconciler's read: per organization with a configured preset (it does not
 * filter deleted ones), the membership facts. */
#define PLATFORM_STATUS                                                                            \
    "WITH owp AS (SELECT DISTINCT o.id FROM organizations o JOIN templates t"                      \
    " ON t.organization_id = o.id JOIN template_versions tv ON tv.template_id = t.id"              \
    " JOIN template_version_presets p ON p.template_version_id = tv.id"                            \
    " WHERE p.desired_instances IS NOT NULL)"                                                      \
    " SELECT owp.id, EXISTS (SELECT 1 FROM organization_members m WHERE m.organization_id ="       \
    " owp.id AND m.user_id = '" FL_USER_ID "'), (SELECT g.id FROM groups g WHERE"                  \
    " g.organization_id = owp.id AND g.name = '" FL_GROUP "'), EXISTS (SELECT 1 FROM groups g"     \
    " JOIN group_members gm ON gm.group_id = g.id WHERE g.organization_id = owp.id"                \
    " AND g.name = '" FL_GROUP "' AND gm.user_id = '" FL_USER_ID "') FROM owp"

/* Returns false on an error of its read transaction or of one insert; the inserts are
 * independent statements, so an error ends the pass there (the next one repairs). */
static bool platform_reconciler(writer *w)
{
    if (!Q0("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        return false;
    char got[8];
    if (!q(w, "SELECT pg_try_advisory_xact_lock(7)", 0, NULL, got, sizeof(got)))
        return false;
    if (strcmp(got, "t") != 0)
        return Q0("COMMIT");
    PGresult *r = PQexec(w->c, PLATFORM_STATUS);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(w->err);
        w->err = r;
        return false;
    }
    if (!Q0("COMMIT")) {
        PQclear(r);
        return false;
    }
    bool ok = true;
    for (int i = 0; ok && i < PQntuples(r); i++) {
        const char *v[] = {PQgetvalue(r, i, 0)};
        if (strcmp(PQgetvalue(r, i, 1), "f") == 0)
            ok = QV("INSERT INTO organization_members (organization_id, user_id, created_at,"
                    " updated_at, roles) VALUES ($1, '" FL_USER_ID "', now(), now(), '{}')"
                    " ON CONFLICT DO NOTHING",
                    1, v);
        if (ok && PQgetisnull(r, i, 2))
            ok = QV("INSERT INTO groups (id, name, display_name, organization_id,"
                    " quota_allowance) VALUES (gen_random_uuid(), '" FL_GROUP "',"
                    " 'Prebuilt Workspaces', $1, 0) ON CONFLICT DO NOTHING",
                    1, v);
        if (ok && strcmp(PQgetvalue(r, i, 3), "f") == 0)
            ok = QV("INSERT INTO group_members (user_id, group_id) SELECT '" FL_USER_ID "', g.id"
                    " FROM groups g WHERE g.organization_id = $1 AND g.name = '" FL_GROUP "'"
                    " ON CONFLICT DO NOTHING",
                    1, v);
    }
    PQclear(r);
    return ok;
}

static bool b_admin_drift(writer *w, ctx *x)
{
    const char *v[] = {x->org};
    switch (rnd(w, 3)) {
    case 0:
        return QV("DELETE FROM organization_members WHERE organization_id = $1"
                  " AND user_id = '" FL_USER_ID "'",
                  1, v);
    case 1:
        return QV("DELETE FROM group_members WHERE user_id = '" FL_USER_ID "' AND group_id IN"
                  " (SELECT id FROM groups WHERE organization_id = $1 AND name = '" FL_GROUP "')",
                  1, v);
    default:
        return QV("DELETE FROM groups WHERE organization_id = $1 AND name = '" FL_GROUP "'", 1, v);
    }
}

/* The organization, its everyone group (id = organization id) and the administrator. */
static bool b_new_org(writer *w, ctx *x)
{
    char name[64];
    uniq(w, "org", name, sizeof(name));
    const char *v[] = {name};
    if (!QS(INS_ORG, 1, v, x->org))
        return false;
    const char *o[] = {x->org};
    return QV(INS_EVERYONE, 1, o) && QV(INS_ADMIN_MEMBER, 1, o);
}

/* Count a failed step; true when it is worth repeating (the platform's own retryable
 * concurrency). */
static bool failed(writer *w)
{
    char text[600];
    enum cls c = classify(w->err, text, sizeof(text));
    if (PQtransactionStatus(w->c) != PQTRANS_IDLE)
        PQclear(PQexec(w->c, "ROLLBACK"));
    switch (c) {
    case C_SERIALIZATION:
        w->n.serialization++;
        return true;
    case C_DEADLOCK:
        w->n.deadlock++;
        return true;
    case C_RULE:
        w->n.rule++;
        if (strstr(text, "template") != NULL) {
            w->n.rule_templates++;
        } else {
            const char *v[] = {w->cur_org};
            char back[8] = "";
            (void)q(w,
                    "SELECT EXISTS (SELECT 1 FROM groups WHERE organization_id = $1 AND name = "
                    "'" FL_GROUP
                    "') OR EXISTS (SELECT 1 FROM organization_members WHERE organization_id = $1"
                    " AND user_id = '" FL_USER_ID "')",
                    1, v, back, sizeof(back));
            if (strcmp(back, "t") == 0)
                w->n.rule_ours_back++;
            else
                w->n.rule_others++;
        }
        return false;
    case C_CONFLICT:
        w->n.conflict++;
        return false;
    case C_OURS:
        if (w->n.ours++ == 0)
            (void)snprintf(w->n.first_ours, sizeof(w->n.first_ours), "%s", text);
        (void)fprintf(stderr, "platform_stress: writer %d: FAILED BECAUSE OF US: %s\n", w->idx,
                      text);
        return false;
    default:
        if (w->n.other++ == 0)
            (void)snprintf(w->n.first_other, sizeof(w->n.first_other), "%s", text);
        (void)fprintf(stderr, "platform_stress: writer %d: unexplained error: %s\n", w->idx, text);
        return false;
    }
}

/* One transaction with the platform's retries; false when it did not commit. */
static bool run_tx(writer *w, bool (*body)(writer *, ctx *), ctx *x)
{
    for (int a = 0; a < MAX_ATTEMPTS; a++) {
        double t0 = fl_now_ms();
        if (tx(w, body, x)) {
            w->n.committed++;
            double dt = fl_now_ms() - t0;
            if (dt > w->n.max_tx_ms)
                w->n.max_tx_ms = dt;
            return true;
        }
        if (!failed(w))
            return false;
    }
    w->n.gave_up++;
    return false;
}

static bool run_reconciler(writer *w)
{
    for (int a = 0; a < MAX_ATTEMPTS; a++) {
        if (platform_reconciler(w)) {
            w->n.committed++;
            return true;
        }
        if (!failed(w))
            return false;
    }
    w->n.gave_up++;
    return false;
}

/* A pick that finds nothing skips the operation; a pick that fails is classified. */
static bool picked(writer *w, const char *sql, char *out, size_t len)
{
    for (int a = 0; a < MAX_ATTEMPTS; a++) {
        if (pick(w, sql, out, len)) {
            if (out[0] == '\0')
                w->n.skipped++;
            return out[0] != '\0';
        }
        if (!failed(w))
            return false;
    }
    w->n.gave_up++;
    return false;
}

static bool pick_pair(writer *w, const char *sql, char *a, char *b)
{
    char both[140];
    if (!picked(w, sql, both, sizeof(both)))
        return false;
    char *sp = strchr(both, ' ');
    if (sp == NULL)
        return false;
    *sp = '\0';
    (void)snprintf(a, 64, "%.63s", both);
    (void)snprintf(b, 64, "%.63s", sp + 1);
    return true;
}

static bool pick_presets(writer *w, ctx *x)
{
    int k = 2 + rnd(w, 3);
    char sql[512];
    (void)snprintf(sql, sizeof(sql),
                   "SELECT string_agg(id::text, ' ') FROM (SELECT id FROM (SELECT DISTINCT ON"
                   " (tv.template_id) p.id FROM template_version_presets p JOIN template_versions"
                   " tv ON tv.id = p.template_version_id WHERE tv.template_id IS NOT NULL ORDER"
                   " BY tv.template_id, random()) d ORDER BY random() LIMIT %d) s",
                   k);
    char all[400];
    if (!picked(w, sql, all, sizeof(all)))
        return false;
    x->nids = 0;
    for (char *tok = strtok(all, " "); tok != NULL && x->nids < 4; tok = strtok(NULL, " "))
        (void)snprintf(x->ids[x->nids++], 64, "%s", tok);
    return x->nids > 0;
}

#define PICK_LIVE_ORG "SELECT id FROM organizations WHERE NOT deleted ORDER BY random() LIMIT 1"

static void one_op(writer *w, enum op op)
{
    ctx x;
    memset(&x, 0, sizeof(x));
    w->n.ops[op]++;
    switch (op) {
    case OP_NEW_TEMPLATE:
        if (!picked(w, PICK_LIVE_ORG, x.org, sizeof(x.org)))
            return;
        if (run_tx(w, b_new_template_1, &x))
            (void)run_tx(w, b_new_template_2, &x);
        return;
    case OP_NEW_VERSION:
        if (pick_pair(w,
                      "SELECT id::text || ' ' || organization_id::text FROM templates"
                      " ORDER BY random() LIMIT 1",
                      x.tpl, x.org))
            (void)run_tx(w, b_new_version, &x);
        return;
    case OP_PRESET_UPDATE:
        if (picked(w, "SELECT id FROM template_version_presets ORDER BY random() LIMIT 1", x.ids[0],
                   sizeof(x.ids[0])))
            (void)run_tx(w, b_preset_update, &x);
        return;
    case OP_MULTI_PRESET:
        if (pick_presets(w, &x))
            (void)run_tx(w, b_multi_preset, &x);
        return;
    case OP_ARCHIVE:
        if (picked(w, "SELECT id FROM template_versions ORDER BY random() LIMIT 1", x.ver,
                   sizeof(x.ver)))
            (void)run_tx(w, b_archive, &x);
        return;
    case OP_DELETE_VERSION:
        if (picked(w,
                   "SELECT tv.id FROM template_versions tv WHERE NOT EXISTS (SELECT 1 FROM"
                   " templates t WHERE t.active_version_id = tv.id) ORDER BY random() LIMIT 1",
                   x.ver, sizeof(x.ver)))
            (void)run_tx(w, b_delete_version, &x);
        return;
    case OP_TEMPLATE_TOGGLE:
        if (picked(w, "SELECT id FROM templates ORDER BY random() LIMIT 1", x.tpl, sizeof(x.tpl)))
            (void)run_tx(w, b_template_toggle, &x);
        return;
    case OP_ORG_DELETE:
        if (picked(w,
                   "SELECT id FROM organizations WHERE NOT deleted AND NOT is_default"
                   " ORDER BY random() LIMIT 1",
                   x.org, sizeof(x.org)))
            (void)org_delete(w, &x);
        return;
    case OP_ORG_RESTORE:
        if (picked(w, "SELECT id FROM organizations WHERE deleted ORDER BY random() LIMIT 1", x.org,
                   sizeof(x.org)))
            (void)run_tx(w, b_org_restore, &x);
        return;
    case OP_PLATFORM_RECONCILER:
        (void)run_reconciler(w);
        return;
    case OP_ADMIN_DRIFT:
        if (picked(w,
                   "SELECT organization_id FROM organization_members WHERE user_id = '" FL_USER_ID
                   "' ORDER BY random() LIMIT 1",
                   x.org, sizeof(x.org)))
            (void)run_tx(w, b_admin_drift, &x);
        return;
    case OP_NEW_ORG:
    default:
        (void)run_tx(w, b_new_org, &x);
        return;
    }
}

static void writer_main(void *arg)
{
    writer *w = arg;
    char set[128];
    (void)snprintf(set, sizeof(set),
                   "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL %s", w->level);
    PQclear(PQexec(w->c, set));
    int total = 0;
    for (int i = 0; i < N_OPS; i++)
        total += op_weight[i];
    while (fl_now_ms() < w->deadline) {
        int r = rnd(w, total), op = 0;
        while (r >= op_weight[op])
            r -= op_weight[op++];
        one_op(w, (enum op)op);
    }
    if (write(w->fd, &w->n, sizeof(w->n)) != (ssize_t)sizeof(w->n))
        _exit(3);
    _exit(0);
}

/* ------------------------------------------------------------------ one-shot reconciles */

typedef struct recloop {
    const char *bin, *db;
    double deadline;
    int fd;
} recloop;

typedef struct recstats {
    long runs, codes[8];
    char first_bad[600];
} recstats;

static void reconcile_loop(void *arg)
{
    recloop *l = arg;
    recstats s;
    memset(&s, 0, sizeof(s));
    const char *argv[] = {l->bin, "--db", l->db, "--log-level", "warn", "reconcile", NULL};
    while (fl_now_ms() < l->deadline) {
        char *out = NULL;
        int rc = fl_run(argv, &out, true);
        s.runs++;
        s.codes[rc >= 0 && rc < 7 ? rc : 7]++;
        if (rc != 0 && s.first_bad[0] == '\0')
            (void)snprintf(s.first_bad, sizeof(s.first_bad), "exit %d: %s", rc, out);
        free(out);
        (void)usleep(20000);
    }
    if (write(l->fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
        _exit(3);
    _exit(0);
}

/* ------------------------------------------------------------------ setup and checks */

static void seed(PGconn *c, int orgs, unsigned *s)
{
    fl_exec(c, "BEGIN");
    for (int o = 0; o < orgs; o++) {
        char name[64], org[64];
        (void)snprintf(name, sizeof(name), "stress-%d", o);
        const char *vo[] = {name};
        fl_params_str(c, INS_ORG, 1, vo, org, sizeof(org));
        const char *og[] = {org};
        PQclear(fl_params(c, INS_EVERYONE, 1, og));
        PQclear(fl_params(c, INS_ADMIN_MEMBER, 1, og));
        for (int t = 0; t < 2; t++) {
            char tname[16], ver[64], tpl[64];
            (void)snprintf(tname, sizeof(tname), "tpl-%d", t);
            const char *vv[] = {NULL, org, "v0"};
            fl_params_str(c, INS_VERSION, 3, vv, ver, sizeof(ver));
            const char *vt[] = {org, tname, ver};
            fl_params_str(c, INS_TEMPLATE, 3, vt, tpl, sizeof(tpl));
            const char *va[] = {ver, tpl};
            PQclear(
                fl_params(c, "UPDATE template_versions SET template_id = $2 WHERE id = $1", 2, va));
            for (int v = 0; v < 2; v++) {
                char vname[16], vid[64];
                (void)snprintf(vname, sizeof(vname), "v%d", v + 1);
                const char *vv2[] = {tpl, org, vname};
                fl_params_str(c, INS_VERSION, 3, vv2, vid, sizeof(vid));
                for (int p = 0; p < 2; p++) {
                    char pname[8], d[8];
                    (void)snprintf(pname, sizeof(pname), "p%d", p);
                    (void)snprintf(d, sizeof(d), "%d", p);
                    const char *vp[] = {vid, pname, rand_r(s) % 2 ? d : NULL};
                    PQclear(fl_params(c, INS_PRESET, 3, vp));
                }
            }
        }
    }
    fl_exec(c, "COMMIT");
}

#define QUALIFYING                                                                                 \
    "SELECT o.id, o.name FROM organizations o WHERE NOT o.deleted AND EXISTS (SELECT 1"            \
    " FROM templates t JOIN template_versions tv ON tv.template_id = t.id"                         \
    " JOIN template_version_presets p ON p.template_version_id = tv.id"                            \
    " WHERE t.organization_id = o.id AND NOT t.deleted AND p.desired_instances IS NOT NULL)"

#define RECOUNT_STATUS                                                                             \
    "SELECT jsonb_build_object('organization_id', q.id::text, 'organization_name', q.name,"        \
    " 'has_prebuild_user', EXISTS (SELECT 1 FROM organization_members m"                           \
    "  WHERE m.organization_id = q.id AND m.user_id = '" FL_USER_ID "'),"                          \
    " 'prebuilds_group_id', (SELECT g.id::text FROM groups g WHERE g.organization_id = q.id"       \
    "  AND g.name = '" FL_GROUP "'),"                                                              \
    " 'has_prebuild_user_in_group', EXISTS (SELECT 1 FROM groups g JOIN group_members gm"          \
    "  ON gm.group_id = g.id WHERE g.organization_id = q.id AND g.name = '" FL_GROUP "'"           \
    "  AND gm.user_id = '" FL_USER_ID "')) AS e FROM (" QUALIFYING ") q"

static int fails;

static void check(bool ok, const char *what)
{
    (void)printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        fails++;
}

static void check_status(PGconn *c, const char *bin, const char *db)
{
    const char *argv[] = {bin, "--db", db, "status", "--json", NULL};
    char *out = NULL;
    int rc = fl_run(argv, &out, false);
    if (rc != 0) {
        (void)printf("FAIL: (ii) status --json exited %d: %.500s\n", rc, out);
        fails++;
        free(out);
        return;
    }
    const char *v[] = {out};
    PGresult *r = PQexecParams(
        c,
        "WITH s AS (SELECT e FROM jsonb_array_elements($1::jsonb) e), r AS (" RECOUNT_STATUS ")"
        " SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM s),"
        " (SELECT count(*) FROM (SELECT e FROM s EXCEPT ALL SELECT e FROM r) x),"
        " (SELECT count(*) FROM (SELECT e FROM r EXCEPT ALL SELECT e FROM s) y),"
        " (SELECT string_agg(e::text, E'\\n') FROM (SELECT e FROM (SELECT e FROM s EXCEPT ALL"
        "  SELECT e FROM r) a LIMIT 3) b),"
        " (SELECT string_agg(e::text, E'\\n') FROM (SELECT e FROM (SELECT e FROM r EXCEPT ALL"
        "  SELECT e FROM s) a LIMIT 3) b),"
        " (SELECT count(*) FROM r WHERE NOT ((e->>'has_prebuild_user')::bool"
        "  AND (e->>'has_prebuild_user_in_group')::bool))",
        1, NULL, v, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        (void)printf("FAIL: (ii) status --json output not comparable: %s  output: %.300s\n",
                     PQerrorMessage(c), out);
        fails++;
    } else {
        long recount = atol(PQgetvalue(r, 0, 0)), status = atol(PQgetvalue(r, 0, 1));
        long extra = atol(PQgetvalue(r, 0, 2)), lacking = atol(PQgetvalue(r, 0, 3));
        long unconverged = atol(PQgetvalue(r, 0, 6));
        char what[256];
        (void)snprintf(what, sizeof(what),
                       "(ii) status --json equals the recount (%ld organizations in the recount,"
                       " %ld in status; %ld only in status, %ld only in the recount)",
                       recount, status, extra, lacking);
        check(extra == 0 && lacking == 0 && recount == status, what);
        if (extra > 0)
            (void)printf("  only in status:\n%s\n", PQgetvalue(r, 0, 4));
        if (lacking > 0)
            (void)printf("  only in the recount:\n%s\n", PQgetvalue(r, 0, 5));
        (void)snprintf(what, sizeof(what),
                       "(v) every qualifying organization converged after the final reconcile"
                       " (%ld not)",
                       unconverged);
        check(unconverged == 0 && recount > 0, what);
    }
    PQclear(r);
    free(out);
}

static void check_summary(PGconn *c)
{
    PGresult *r = PQexec(c, PB_TEST_SUMMARY_MISMATCHES_SQL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        (void)printf("FAIL: (iii) summary not readable: %s", PQerrorMessage(c));
        fails++;
    } else {
        long n = atol(PQgetvalue(r, 0, 0));
        char what[160];
        long rows = fl_long(c, "SELECT count(*) FROM prebuilds_configured_templates");
        (void)snprintf(what, sizeof(what),
                       "(iii) summary equals the recount (%ld rows, %ld templates differ)", rows,
                       n);
        check(n == 0, what);
        if (n > 0) {
            PGresult *d = PQexec(
                c, "SELECT 'extra ' || template_id FROM (SELECT template_id FROM"
                   " prebuilds_configured_templates EXCEPT " PB_TEST_RECOUNT ") a UNION ALL"
                   " SELECT 'missing ' || template_id FROM (" PB_TEST_RECOUNT
                   " EXCEPT SELECT template_id FROM prebuilds_configured_templates) b LIMIT 5");
            for (int i = 0; PQresultStatus(d) == PGRES_TUPLES_OK && i < PQntuples(d); i++)
                (void)printf("  %s\n", PQgetvalue(d, i, 0));
            PQclear(d);
        }
    }
    PQclear(r);
    long wrong_org = fl_long(c, "SELECT count(*) FROM prebuilds_configured_templates c"
                                " JOIN templates t ON t.id = c.template_id"
                                " WHERE t.organization_id <> c.organization_id");
    check(wrong_org == 0, "(iii) every summary row carries its template's organization");
    r = PQexec(c, "SELECT is_called FROM prebuilds_summary_faults");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        (void)printf("FAIL: (iv) prebuilds_summary_faults not readable: %s", PQerrorMessage(c));
        fails++;
    } else {
        check(strcmp(PQgetvalue(r, 0, 0), "f") == 0,
              "(iv) no prebuilds_ function raised (prebuilds_summary_faults never called)");
    }
    PQclear(r);
}

static bool wait_readable(int fd, double until)
{
    for (;;) {
        double left = until - fl_now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, (int)left);
        if (r > 0)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
    }
}

/* A writer did not finish: who waits for what, for the report. */
static void report_waits(const char *db)
{
    (void)printf("FAIL: a platform writer is stuck a minute after the end; sessions waiting:\n");
    PGconn *c = fl_connect(db);
    PGresult *r = PQexec(c, "SELECT pid, application_name, wait_event_type, wait_event,"
                            " pg_blocking_pids(pid)::text, left(query, 200) FROM pg_stat_activity"
                            " WHERE wait_event_type = 'Lock' OR state = 'active'");
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++)
        (void)printf("  pid %s (%s) %s/%s blocked by %s: %s\n", PQgetvalue(r, i, 0),
                     PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                     PQgetvalue(r, i, 4), PQgetvalue(r, i, 5));
    PQclear(r);
    PQfinish(c);
}

static void usage(const char *me)
{
    (void)fprintf(stderr,
                  "usage: %s PREBUILDS_BINARY CONNINFO LOAD_PLATFORM_SH [--seconds S] [--writers W]"
                  " [--orgs N] [--seed X]\n",
                  me);
    exit(2);
}

int main(int argc, char **argv)
{
    fl_set_name("platform_stress");
    double seconds = 20;
    int nwriters = 6, orgs = 30;
    unsigned seedv = (unsigned)getpid();
    static const struct option lo[] = {{"seconds", required_argument, NULL, 's'},
                                       {"writers", required_argument, NULL, 'w'},
                                       {"orgs", required_argument, NULL, 'o'},
                                       {"seed", required_argument, NULL, 'r'},
                                       {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 's':
            seconds = atof(optarg);
            break;
        case 'w':
            nwriters = atoi(optarg);
            break;
        case 'o':
            orgs = atoi(optarg);
            break;
        case 'r':
            seedv = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (argc - optind != 3 || seconds <= 0 || nwriters < 3 || nwriters > MAX_WRITERS || orgs < 1)
        usage(argv[0]);
    const char *bin = argv[optind], *schema = argv[optind + 2];
    (void)printf("platform_stress: %.0f s, %d writers, %d organizations, seed %u\n", seconds,
                 nwriters, orgs, seedv);

    fl_platform p;
    fl_platform_create(&p, argv[optind + 1], schema, "pb_flows_stress");
    PGconn *oc = fl_connect(p.owner);
    seed(oc, orgs, &seedv);
    PQfinish(oc);
    const char *init[] = {bin,         "--db",       p.admin, "init", "--recommended-indexes",
                          "--summary", "--triggers", NULL};
    char *out = NULL;
    int rc = fl_run(init, &out, true);
    if (rc != 0)
        fl_die("init --recommended-indexes --summary --triggers exited %d: %s", rc, out);
    free(out);

    /* The writers' sessions first, so that a deadlock report can be told apart. */
    writer *ws = calloc((size_t)nwriters, sizeof(*ws));
    if (ws == NULL)
        fl_die("out of memory");
    double start = fl_now_ms(), deadline = start + seconds * 1000;
    int fds[2];
    if (pipe(fds) != 0)
        fl_die("pipe");
    for (int i = 0; i < nwriters; i++) {
        ws[i].idx = i;
        ws[i].c = fl_connect(p.owner);
        ws[i].level = i < nwriters - 2    ? "READ COMMITTED"
                      : i == nwriters - 2 ? "REPEATABLE READ"
                                          : "SERIALIZABLE";
        ws[i].seed = seedv * 7919u + (unsigned)i;
        ws[i].fd = fds[1];
        backend_pids[n_backends++] = PQbackendPID(ws[i].c);
    }

    char log1[128], log2[128];
    (void)snprintf(log1, sizeof(log1), "platform_stress_daemon1_%d.log", (int)getpid());
    (void)snprintf(log2, sizeof(log2), "platform_stress_daemon2_%d.log", (int)getpid());
    (void)unlink(log1);
    (void)unlink(log2);
    const char *run[] = {bin,    "--db",           p.admin,       "--log-level", "info",
                         "run",  "--listen",       "--interval",  "1s",          "--lock-id",
                         "4243", "--metrics-addr", "127.0.0.1:0", NULL};
    pid_t d1 = fl_spawn(run, log1), d2 = fl_spawn(run, log2);
    PGconn *ac = fl_connect(p.admin);
    if (!fl_wait_lock(ac, 4243, 10000))
        fl_die("no daemon took lock 4243 (logs %s, %s)", log1, log2);

    int rfds[2];
    if (pipe(rfds) != 0)
        fl_die("pipe");
    recloop rl = {.bin = bin, .db = p.admin, .deadline = deadline, .fd = rfds[1]};
    pid_t rpid = fl_fork(reconcile_loop, &rl);
    pid_t wpids[MAX_WRITERS];
    for (int i = 0; i < nwriters; i++) {
        ws[i].deadline = deadline;
        wpids[i] = fl_fork(writer_main, &ws[i]);
    }
    (void)close(fds[1]);
    (void)close(rfds[1]);

    counts total;
    memset(&total, 0, sizeof(total));
    int reported = 0;
    double give_up = deadline + 60000; /* a writer still busy a minute later is stuck */
    for (int i = 0; i < nwriters; i++) {
        counts c;
        if (!wait_readable(fds[0], give_up)) {
            report_waits(p.admin);
            break;
        }
        ssize_t n = read(fds[0], &c, sizeof(c));
        if (n != (ssize_t)sizeof(c))
            break;
        reported++;
        if (c.max_tx_ms > total.max_tx_ms)
            total.max_tx_ms = c.max_tx_ms;
        for (int k = 0; k < N_OPS; k++)
            total.ops[k] += c.ops[k];
        total.committed += c.committed;
        total.serialization += c.serialization;
        total.deadlock += c.deadlock;
        total.gave_up += c.gave_up;
        total.rule += c.rule;
        total.rule_templates += c.rule_templates;
        total.rule_ours_back += c.rule_ours_back;
        total.rule_others += c.rule_others;
        total.conflict += c.conflict;
        total.ours += c.ours;
        total.other += c.other;
        total.skipped += c.skipped;
        if (total.first_ours[0] == '\0')
            (void)snprintf(total.first_ours, sizeof(total.first_ours), "%s", c.first_ours);
        if (total.first_other[0] == '\0')
            (void)snprintf(total.first_other, sizeof(total.first_other), "%s", c.first_other);
    }
    for (int i = 0; i < nwriters; i++)
        (void)fl_stop(wpids[i]);
    recstats rs;
    memset(&rs, 0, sizeof(rs));
    bool rs_ok = wait_readable(rfds[0], fl_now_ms() + 60000) &&
                 read(rfds[0], &rs, sizeof(rs)) == (ssize_t)sizeof(rs);
    (void)fl_stop(rpid);

    /* With the writers stopped, the daemons alone must converge every qualifying
     * organization (their interval is 1 s; the notifications are already there). */
    double settle0 = fl_now_ms(), settled = -1;
    while (fl_now_ms() - settle0 < 5000) {
        if (fl_long(ac, "SELECT count(*) FROM (" RECOUNT_STATUS ") r WHERE NOT"
                        " ((e->>'has_prebuild_user')::bool AND"
                        " (e->>'has_prebuild_user_in_group')::bool)") == 0) {
            settled = fl_now_ms() - settle0;
            break;
        }
        (void)usleep(20000);
    }

    /* The daemons' own view, then stop them. */
    double dfailed[2], dpasses[2], dnotes[2];
    const char *logs[2] = {log1, log2};
    for (int i = 0; i < 2; i++) {
        int port = fl_metrics_port(logs[i]);
        dfailed[i] = port > 0 ? fl_metric(port, "prebuilds_passes_total{result=\"failed\"}") : -1;
        double conv =
            port > 0 ? fl_metric(port, "prebuilds_passes_total{result=\"converged\"}") : -1;
        double rep = port > 0 ? fl_metric(port, "prebuilds_passes_total{result=\"repaired\"}") : -1;
        dpasses[i] = conv + rep;
        dnotes[i] = port > 0 ? fl_metric(port, "prebuilds_notifications_total") : -1;
    }
    int drc1 = fl_stop(d1), drc2 = fl_stop(d2);

    const char *fin[] = {bin, "--db", p.admin, "reconcile", NULL};
    out = NULL;
    int frc = fl_run(fin, &out, true);

    (void)printf("\nplatform operations (%d writers reported):\n", reported);
    for (int k = 0; k < N_OPS; k++)
        (void)printf("  %7ld  %s\n", total.ops[k], op_names[k]);
    (void)printf("platform transactions committed: %ld\n"
                 "  serialization failures (platform's own, retried): %ld\n"
                 "  deadlocks among platform sessions (retried): %ld\n"
                 "  abandoned after %d attempts: %ld\n"
                 "  refused by platform rule (organization soft delete): %ld\n"
                 "    (a live template again: %ld; the prebuilds group or membership there again,"
                 " from our daemons or the platform's reconciler: %ld; other rows: %ld)\n"
                 "  FK/unique conflicts between platform writers: %ld\n"
                 "  picks that found nothing: %ld\n"
                 "  FAILED BECAUSE OF US: %ld%s%s\n"
                 "  unexplained errors: %ld%s%s\n",
                 total.committed, total.serialization, total.deadlock, MAX_ATTEMPTS, total.gave_up,
                 total.rule, total.rule_templates, total.rule_ours_back, total.rule_others,
                 total.conflict, total.skipped, total.ours, total.ours ? "  first: " : "",
                 total.first_ours, total.other, total.other ? "  first: " : "", total.first_other);
    (void)printf("slowest committed platform transaction: %.1f ms\n", total.max_tx_ms);
    (void)printf("one-shot reconciles: %ld runs, exit codes 0:%ld 1:%ld 3:%ld 4:%ld 5:%ld other:%ld"
                 "%s%s\n",
                 rs.runs, rs.codes[0], rs.codes[1], rs.codes[3], rs.codes[4], rs.codes[5],
                 rs.codes[2] + rs.codes[6] + rs.codes[7], rs.first_bad[0] ? "  first: " : "",
                 rs.first_bad);
    for (int i = 0; i < 2; i++)
        (void)printf("daemon %d: passes %.0f, failed passes %.0f, notifications %.0f, exit %d\n",
                     i + 1, dpasses[i], dfailed[i], dnotes[i], i == 0 ? drc1 : drc2);
    (void)printf("final reconcile: exit %d: %s\n", frc, out);
    free(out);

    char settle_what[160];
    (void)snprintf(settle_what, sizeof(settle_what),
                   "(vi) the daemons converged everything within 5 s of the writers' end (%.0f ms)",
                   settled);
    check(settled >= 0, settle_what);
    check(reported == nwriters, "every writer reported");
    check(total.ours == 0, "(i) no platform transaction failed because of us");
    check(total.other == 0, "(i) no unexplained platform error");
    check(total.committed > 0, "the platform committed transactions");
    check(frc == 0, "the final reconcile exited 0");
    check_status(ac, bin, p.admin);
    check_summary(ac);
    check(rs_ok && rs.runs > 0 && rs.codes[0] == rs.runs,
          "(v) every one-shot reconcile during the load exited 0");
    check(dfailed[0] == 0 && dfailed[1] == 0, "(v) no daemon pass failed");
    check(drc1 == 0 && drc2 == 0, "both daemons exited 0 on SIGTERM");
    PQfinish(ac);
    for (int i = 0; i < nwriters; i++)
        PQfinish(ws[i].c);
    free(ws);
    if (fails == 0) {
        fl_platform_drop(&p);
        (void)unlink(log1);
        (void)unlink(log2);
        (void)printf("platform_stress: all checks passed\n");
        return 0;
    }
    (void)printf("platform_stress: %d checks FAILED; database %s, daemon logs %s %s kept\n", fails,
                 p.dbname, log1, log2);
    return 1;
}
