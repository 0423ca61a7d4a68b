/* The PostgreSQL backend, for real deployments and production Coder databases we did
 * not create. Every pass statement is prepared once per connection (the Parse rides in
 * the same pipeline as the first execution), and the writes go in one pipeline ending
 * in one Sync: one round trip, one implicit transaction, whatever the drift. */
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "internal.h"

#define USER_ID_PARAM "$1::uuid"

/* The status columns, shared by both forms of the statement. */
#define STATUS_SELECT                                                                              \
    "SELECT o.id, o.name,"                                                                         \
    " EXISTS (SELECT 1 FROM organization_members om"                                               \
    "  WHERE om.organization_id = o.id AND om.user_id = $1::uuid),"                                \
    " g.id,"                                                                                       \
    " g.id IS NOT NULL AND EXISTS (SELECT 1 FROM group_members gm"                                 \
    "  WHERE gm.group_id = g.id AND gm.user_id = $1::uuid),"                                       \
    " EXISTS (SELECT 1 FROM users u WHERE u.id = $1::uuid)"

#define STATUS_FROM                                                                                \
    " FROM organizations o"                                                                        \
    " LEFT JOIN groups g ON g.organization_id = o.id AND g.name = $2::text"                        \
    " WHERE NOT o.deleted"

/* Which organizations qualify, read from the production tables: what runs on a database
 * without our summary (a Coder database before `init --summary`). */
#define QUALIFY_JOIN                                                                               \
    " AND EXISTS (SELECT 1 FROM templates t"                                                       \
    "  JOIN template_versions tv ON tv.template_id = t.id"                                         \
    "  JOIN template_version_presets p ON p.template_version_id = tv.id"                           \
    "  WHERE t.organization_id = o.id AND NOT t.deleted AND p.desired_instances IS NOT NULL)"

/* The same question answered from the summary the triggers below keep: the templates
 * that have a configured preset in any version. Deleted templates and organizations are
 * still filtered here, from the live tables. */
#define SUMMARY_TABLE "prebuilds_configured_templates"
#define QUALIFY_SUMMARY                                                                            \
    " AND EXISTS (SELECT 1 FROM " SUMMARY_TABLE " c JOIN templates t ON t.id = c.template_id"      \
    "  WHERE t.organization_id = o.id AND NOT t.deleted)"

/* The join form also says whether the summary can be trusted by this session: the table
 * is readable and all five of its triggers are enabled. Catalog lookups in one
 * uncorrelated subquery, so evaluated once per statement (not per row), never an error
 * when nothing of ours exists; the next pass of the session then uses the summary form. */
#define SUMMARY_PROBE                                                                              \
    ", (SELECT coalesce(has_table_privilege(to_regclass('" SUMMARY_TABLE "'), 'SELECT'), false)"   \
    " AND (SELECT count(*) FROM pg_trigger WHERE tgrelid IN"                                       \
    " (to_regclass('template_versions'), to_regclass('template_version_presets'))"                 \
    " AND tgname LIKE 'prebuilds\\_configured\\_%' AND tgenabled <> 'D') = 5)"

#define BY_IDS  " AND o.id = ANY ($3::uuid[])"
#define ORDERED " ORDER BY o.name, o.id"

enum {
    PST_STATUS_ALL,
    PST_STATUS_SOME,
    PST_SUMMARY_ALL,
    PST_SUMMARY_SOME,
    PST_WRITE_ORG,
    PST_WRITE_GROUP_MEMBER,
    PST_COUNT
};

static const struct {
    const char *name;
    const char *sql;
} pstmts[PST_COUNT] = {
    [PST_STATUS_ALL] = {"pb_status_all",
                        STATUS_SELECT SUMMARY_PROBE STATUS_FROM QUALIFY_JOIN ORDERED},
    /* A separate statement for the filtered form, so each gets its own good plan. */
    [PST_STATUS_SOME] = {"pb_status_some",
                         STATUS_SELECT SUMMARY_PROBE STATUS_FROM QUALIFY_JOIN BY_IDS ORDERED},
    [PST_SUMMARY_ALL] = {"pb_summary_all", STATUS_SELECT STATUS_FROM QUALIFY_SUMMARY ORDERED},
    [PST_SUMMARY_SOME] = {"pb_summary_some",
                          STATUS_SELECT STATUS_FROM QUALIFY_SUMMARY BY_IDS ORDERED},
    /* Memberships and groups in one statement. Organizations deleted since the status
     * read are skipped by the join; rows others inserted meanwhile are conflicts. */
    [PST_WRITE_ORG] = {"pb_write_org",
                       "WITH m AS ("
                       " INSERT INTO organization_members"
                       " (organization_id, user_id, created_at, updated_at, roles)"
                       " SELECT o.id, $1::uuid, now(), now(), '{}'::text[] FROM organizations o"
                       " WHERE o.id = ANY ($2::uuid[]) AND NOT o.deleted ORDER BY o.id"
                       " ON CONFLICT DO NOTHING RETURNING organization_id),"
                       " g AS ("
                       " INSERT INTO groups"
                       " (id, name, organization_id, display_name, avatar_url, quota_allowance)"
                       " SELECT gen_random_uuid(), $3::text, o.id, $4::text, '', 0"
                       " FROM organizations o"
                       " WHERE o.id = ANY ($5::uuid[]) AND NOT o.deleted ORDER BY o.id"
                       " ON CONFLICT DO NOTHING RETURNING organization_id)"
                       " SELECT 1, organization_id FROM m"
                       " UNION ALL SELECT 2, organization_id FROM g"},
    /* A later statement, so a later snapshot: it sees the groups inserted just above and
     * any group another reconciler committed meanwhile, and joins them by name. */
    [PST_WRITE_GROUP_MEMBER] = {"pb_write_group_member",
                                "WITH gm AS ("
                                " INSERT INTO group_members (user_id, group_id)"
                                " SELECT $1::uuid, g.id FROM groups g"
                                " WHERE g.organization_id = ANY ($3::uuid[]) AND g.name = $2::text"
                                " ORDER BY g.organization_id"
                                " ON CONFLICT DO NOTHING RETURNING group_id)"
                                " SELECT 4, g.organization_id FROM gm"
                                " JOIN groups g ON g.id = gm.group_id"},
};

/* The summary behind the fast status statement: one row per template that has, in any of
 * its versions, a preset whose desired_instances is set. Kept exact by triggers on
 * template_version_presets and template_versions, under any concurrency:
 *
 * - Every template has an advisory transaction lock (two-key form, so it never meets the
 *   single-key leader lock; a hash bucket shared with other templates, see below). A
 *   trigger that may remove a template's row takes it exclusively, then recounts with a
 *   snapshot taken after the lock; a trigger that adds a configured preset takes it
 *   shared and only ever inserts, so concurrent imports into one template do not wait for
 *   each other.
 * - An added configured preset first locks its version FOR KEY SHARE, as the foreign-key
 *   check of an insert does anyway: the version cannot move to another template until we
 *   commit. A removal reads the version's template without a lock (a version being deleted
 *   must not wait for us: its cascade may be waiting for our preset row), then reads it
 *   again after the template lock and follows a move. A version that moves locks both
 *   templates (in bucket order) before recounting either. (Buckets, not templates, are
 *   what get locked and ordered; two templates in one bucket only wait a little more.)
 * - A writer at REPEATABLE READ or SERIALIZABLE reads an older snapshot, which may miss a
 *   configured preset another writer committed meanwhile. Such a writer therefore never
 *   removes a row and always inserts the row of a template it adds to: an error, if any,
 *   is a template counted as configured that no longer is (never the other way round), and
 *   the next recount of that template at READ COMMITTED, or `init --summary`, removes it.
 * - No row of the platform's tables is locked for writing, and the triggers are named so
 *   they fire after the foreign-key cascades ("RI_..." sorts first).
 *
 * The functions run as their owner (SECURITY DEFINER, fixed search_path) so the platform's
 * role needs no privilege on our table; the helpers are not callable by anyone else. The
 * last statements rebuild the table while the two tables are locked against writes: what
 * `init --summary` does on an existing database, and migration 3 on ours. */
#define SUMMARY_LOCK_KEY "1886545250" /* first key of the advisory locks: 'preb' */
/* Templates share 1,024 locks (hash buckets), so a transaction that touches many
 * templates - a bulk import, our seed - holds at most that many, far below what the
 * server's shared lock table has room for. */
#define SUMMARY_LOCK_BUCKETS "1023"
#define SUMMARY_SQL                                                                                \
    "CREATE TABLE IF NOT EXISTS " SUMMARY_TABLE " (template_id uuid PRIMARY KEY);"                 \
    "CREATE OR REPLACE FUNCTION prebuilds_configured_bucket(t uuid) RETURNS integer"               \
    " LANGUAGE sql IMMUTABLE AS $$ SELECT hashtext(t::text) & " SUMMARY_LOCK_BUCKETS " $$;"        \
    "CREATE OR REPLACE FUNCTION prebuilds_configured_lock_bucket(b integer, exclusive boolean)"    \
    " RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$ BEGIN"                      \
    " IF b IS NULL THEN RETURN; END IF;"                                                           \
    " IF exclusive THEN PERFORM pg_advisory_xact_lock(" SUMMARY_LOCK_KEY ", b);"                   \
    " ELSE PERFORM pg_advisory_xact_lock_shared(" SUMMARY_LOCK_KEY ", b);"                         \
    " END IF; END $$;"                                                                             \
    "CREATE OR REPLACE FUNCTION prebuilds_configured_lock(t uuid, exclusive boolean)"              \
    " RETURNS void LANGUAGE sql SET search_path FROM CURRENT AS"                                   \
    " $$ SELECT prebuilds_configured_lock_bucket(prebuilds_configured_bucket(t), exclusive) $$;"   \
    "CREATE OR REPLACE FUNCTION prebuilds_configured_recount(t uuid)"                              \
    " RETURNS void LANGUAGE plpgsql SET search_path FROM CURRENT AS $$ BEGIN"                      \
    " IF t IS NULL THEN RETURN; END IF;"                                                           \
    " IF EXISTS (SELECT 1 FROM template_versions tv"                                               \
    "  JOIN template_version_presets p ON p.template_version_id = tv.id"                           \
    "  WHERE tv.template_id = t AND p.desired_instances IS NOT NULL) THEN"                         \
    "  INSERT INTO " SUMMARY_TABLE " (template_id) VALUES (t) ON CONFLICT DO NOTHING;"             \
    " ELSIF current_setting('transaction_isolation') = 'read committed' THEN"                      \
    "  DELETE FROM " SUMMARY_TABLE " WHERE template_id = t; END IF; END $$;"                       \
    "REVOKE ALL ON FUNCTION prebuilds_configured_lock_bucket(integer, boolean) FROM PUBLIC;"       \
    "REVOKE ALL ON FUNCTION prebuilds_configured_lock(uuid, boolean) FROM PUBLIC;"                 \
    "REVOKE ALL ON FUNCTION prebuilds_configured_recount(uuid) FROM PUBLIC;"                       \
    "CREATE OR REPLACE FUNCTION prebuilds_configured_preset() RETURNS trigger"                     \
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$"                        \
    " DECLARE cur uuid; nxt uuid; BEGIN"                                                           \
    " IF TG_OP <> 'INSERT' AND OLD.desired_instances IS NOT NULL THEN"                             \
    "  SELECT tv.template_id INTO cur FROM template_versions tv"                                   \
    "   WHERE tv.id = OLD.template_version_id;"                                                    \
    "  WHILE cur IS NOT NULL LOOP"                                                                 \
    "   PERFORM prebuilds_configured_lock(cur, true);"                                             \
    "   PERFORM prebuilds_configured_recount(cur);"                                                \
    "   SELECT tv.template_id INTO nxt FROM template_versions tv"                                  \
    "    WHERE tv.id = OLD.template_version_id;"                                                   \
    "   EXIT WHEN nxt IS NOT DISTINCT FROM cur; cur := nxt;"                                       \
    "  END LOOP;"                                                                                  \
    " END IF;"                                                                                     \
    " IF TG_OP <> 'DELETE' AND NEW.desired_instances IS NOT NULL THEN"                             \
    "  SELECT tv.template_id INTO cur FROM template_versions tv"                                   \
    "   WHERE tv.id = NEW.template_version_id FOR KEY SHARE;"                                      \
    "  IF cur IS NOT NULL THEN"                                                                    \
    "   PERFORM prebuilds_configured_lock(cur, false);"                                            \
    "   IF current_setting('transaction_isolation') <> 'read committed'"                           \
    "    OR NOT EXISTS (SELECT 1 FROM " SUMMARY_TABLE " WHERE template_id = cur) THEN"             \
    "    INSERT INTO " SUMMARY_TABLE " (template_id) VALUES (cur) ON CONFLICT DO NOTHING;"         \
    "   END IF;"                                                                                   \
    "  END IF;"                                                                                    \
    " END IF;"                                                                                     \
    " RETURN NULL; END $$;"                                                                        \
    "CREATE OR REPLACE FUNCTION prebuilds_configured_version() RETURNS trigger"                    \
    " LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$"                        \
    " DECLARE b1 integer; b2 integer; BEGIN"                                                       \
    " IF TG_OP = 'DELETE' THEN"                                                                    \
    "  PERFORM prebuilds_configured_lock(OLD.template_id, true);"                                  \
    "  PERFORM prebuilds_configured_recount(OLD.template_id);"                                     \
    " ELSE"                                                                                        \
    "  b1 := prebuilds_configured_bucket(OLD.template_id);"                                        \
    "  b2 := prebuilds_configured_bucket(NEW.template_id);"                                        \
    "  PERFORM prebuilds_configured_lock_bucket(least(b1, b2), true);"                             \
    "  IF b1 <> b2 THEN"                                                                           \
    "   PERFORM prebuilds_configured_lock_bucket(greatest(b1, b2), true);"                         \
    "  END IF;"                                                                                    \
    "  PERFORM prebuilds_configured_recount(OLD.template_id);"                                     \
    "  IF current_setting('transaction_isolation') = 'read committed' THEN"                        \
    "   PERFORM prebuilds_configured_recount(NEW.template_id);"                                    \
    "  ELSIF NEW.template_id IS NOT NULL THEN"                                                     \
    "   INSERT INTO " SUMMARY_TABLE " (template_id) VALUES (NEW.template_id)"                      \
    "    ON CONFLICT DO NOTHING;"                                                                  \
    "  END IF;"                                                                                    \
    " END IF;"                                                                                     \
    " RETURN NULL; END $$;"                                                                        \
    "DROP TRIGGER IF EXISTS prebuilds_configured_preset_insert ON template_version_presets;"       \
    "CREATE TRIGGER prebuilds_configured_preset_insert AFTER INSERT ON template_version_presets"   \
    " FOR EACH ROW WHEN (NEW.desired_instances IS NOT NULL)"                                       \
    " EXECUTE FUNCTION prebuilds_configured_preset();"                                             \
    "DROP TRIGGER IF EXISTS prebuilds_configured_preset_delete ON template_version_presets;"       \
    "CREATE TRIGGER prebuilds_configured_preset_delete AFTER DELETE ON template_version_presets"   \
    " FOR EACH ROW WHEN (OLD.desired_instances IS NOT NULL)"                                       \
    " EXECUTE FUNCTION prebuilds_configured_preset();"                                             \
    "DROP TRIGGER IF EXISTS prebuilds_configured_preset_update ON template_version_presets;"       \
    "CREATE TRIGGER prebuilds_configured_preset_update AFTER UPDATE OF desired_instances,"         \
    " template_version_id ON template_version_presets FOR EACH ROW"                                \
    " WHEN ((OLD.desired_instances IS NULL) <> (NEW.desired_instances IS NULL)"                    \
    " OR (NEW.desired_instances IS NOT NULL"                                                       \
    " AND OLD.template_version_id IS DISTINCT FROM NEW.template_version_id))"                      \
    " EXECUTE FUNCTION prebuilds_configured_preset();"                                             \
    "DROP TRIGGER IF EXISTS prebuilds_configured_version_delete ON template_versions;"             \
    "CREATE TRIGGER prebuilds_configured_version_delete AFTER DELETE ON template_versions"         \
    " FOR EACH ROW WHEN (OLD.template_id IS NOT NULL)"                                             \
    " EXECUTE FUNCTION prebuilds_configured_version();"                                            \
    "DROP TRIGGER IF EXISTS prebuilds_configured_version_update ON template_versions;"             \
    "CREATE TRIGGER prebuilds_configured_version_update AFTER UPDATE OF id, template_id"           \
    " ON template_versions FOR EACH ROW"                                                           \
    " WHEN (OLD.template_id IS DISTINCT FROM NEW.template_id OR OLD.id <> NEW.id)"                 \
    " EXECUTE FUNCTION prebuilds_configured_version();"                                            \
    "LOCK TABLE template_versions, template_version_presets IN SHARE ROW EXCLUSIVE MODE;"          \
    "DELETE FROM " SUMMARY_TABLE ";"                                                               \
    "INSERT INTO " SUMMARY_TABLE " (template_id) SELECT DISTINCT tv.template_id"                   \
    " FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id"  \
    " WHERE p.desired_instances IS NOT NULL AND tv.template_id IS NOT NULL;"

#define MIGRATIONS_TABLE "prebuilds_schema_migrations"

/* Migration 1: production's tables, names and types. Migration 2: our index. Migration 3:
 * the configured-templates summary and its triggers. */
static const char *const migrations[] = {
    "CREATE TYPE login_type AS ENUM ('password', 'github', 'oidc', 'token', 'none');"
    "CREATE TYPE user_status AS ENUM ('active', 'dormant', 'suspended');"
    "CREATE TYPE group_source AS ENUM ('user', 'oidc');"
    "CREATE TYPE provisioner_type AS ENUM ('echo', 'terraform');"
    "CREATE TABLE users ("
    " id uuid PRIMARY KEY,"
    " email text NOT NULL,"
    " username text NOT NULL DEFAULT '' CHECK (username <> ''),"
    " hashed_password bytea NOT NULL,"
    " created_at timestamptz NOT NULL,"
    " updated_at timestamptz NOT NULL,"
    " status user_status NOT NULL DEFAULT 'dormant',"
    " rbac_roles text[] NOT NULL DEFAULT '{}',"
    " login_type login_type NOT NULL DEFAULT 'password',"
    " avatar_url text NOT NULL DEFAULT '',"
    " deleted boolean NOT NULL DEFAULT false,"
    " name text NOT NULL DEFAULT '',"
    " is_system boolean NOT NULL DEFAULT false);"
    "CREATE TABLE organizations ("
    " id uuid PRIMARY KEY,"
    " name text NOT NULL,"
    " description text NOT NULL,"
    " created_at timestamptz NOT NULL,"
    " updated_at timestamptz NOT NULL,"
    " is_default boolean NOT NULL DEFAULT false,"
    " display_name text NOT NULL,"
    " icon text NOT NULL DEFAULT '',"
    " deleted boolean NOT NULL DEFAULT false);"
    "CREATE UNIQUE INDEX organizations_single_default_org ON organizations (is_default)"
    " WHERE is_default = true;"
    "CREATE UNIQUE INDEX idx_organization_name_lower ON organizations (lower(name))"
    " WHERE deleted = false;"
    "CREATE TABLE organization_members ("
    " user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,"
    " created_at timestamptz NOT NULL,"
    " updated_at timestamptz NOT NULL,"
    " roles text[] NOT NULL DEFAULT '{}',"
    " PRIMARY KEY (organization_id, user_id));"
    "CREATE INDEX idx_organization_member_organization_id_uuid"
    " ON organization_members (organization_id);"
    "CREATE INDEX idx_organization_member_user_id_uuid ON organization_members (user_id);"
    "CREATE TABLE groups ("
    " id uuid PRIMARY KEY,"
    " name text NOT NULL,"
    " organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,"
    " avatar_url text NOT NULL DEFAULT '',"
    " quota_allowance integer NOT NULL DEFAULT 0,"
    " display_name text NOT NULL DEFAULT '',"
    " source group_source NOT NULL DEFAULT 'user',"
    " UNIQUE (name, organization_id));"
    "CREATE TABLE group_members ("
    " user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    " group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,"
    " UNIQUE (user_id, group_id));"
    /* As in production: leaving an organization also leaves its groups. */
    "CREATE FUNCTION delete_group_members_on_org_member_delete() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    " DELETE FROM group_members WHERE user_id = OLD.user_id"
    " AND group_id IN (SELECT id FROM groups WHERE organization_id = OLD.organization_id);"
    " RETURN OLD; END; $$;"
    "CREATE TRIGGER trigger_delete_group_members_on_org_member_delete"
    " BEFORE DELETE ON organization_members FOR EACH ROW"
    " EXECUTE FUNCTION delete_group_members_on_org_member_delete();"
    "CREATE TABLE templates ("
    " id uuid PRIMARY KEY,"
    " created_at timestamptz NOT NULL,"
    " updated_at timestamptz NOT NULL,"
    " organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,"
    " deleted boolean NOT NULL DEFAULT false,"
    " name varchar(64) NOT NULL,"
    " provisioner provisioner_type NOT NULL,"
    " active_version_id uuid NOT NULL,"
    " description varchar(128) NOT NULL DEFAULT '',"
    " created_by uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT);"
    "CREATE UNIQUE INDEX idx_templates_name_lower ON templates (organization_id, lower(name))"
    " WHERE deleted = false;"
    "CREATE TABLE template_versions ("
    " id uuid PRIMARY KEY,"
    " template_id uuid REFERENCES templates (id) ON DELETE CASCADE,"
    " organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,"
    " created_at timestamptz NOT NULL,"
    " updated_at timestamptz NOT NULL,"
    " name varchar(64) NOT NULL,"
    " readme varchar NOT NULL,"
    " job_id uuid NOT NULL,"
    " created_by uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,"
    " archived boolean NOT NULL DEFAULT false,"
    " UNIQUE (template_id, name));"
    "CREATE TABLE template_version_presets ("
    " id uuid PRIMARY KEY DEFAULT gen_random_uuid(),"
    " template_version_id uuid NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,"
    " name text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " desired_instances integer,"
    " UNIQUE (name, template_version_id));",

    "CREATE INDEX IF NOT EXISTS template_version_presets_prebuilds_idx"
    " ON template_version_presets (template_version_id) WHERE desired_instances IS NOT NULL;",

    SUMMARY_SQL,
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))
_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == PB__SCHEMA_VERSION,
               "every backend has every migration");

/* What `init --recommended-indexes` offers a database we did not create. Built
 * CONCURRENTLY, so a live platform keeps writing while it runs. */
static const struct {
    const char *name;
    const char *sql;
} recommended_indexes[] = {
    {"template_version_presets_prebuilds_idx",
     "CREATE INDEX CONCURRENTLY IF NOT EXISTS template_version_presets_prebuilds_idx"
     " ON template_version_presets (template_version_id) WHERE desired_instances IS NOT NULL"},
};
#define N_RECOMMENDED ((int)(sizeof(recommended_indexes) / sizeof(recommended_indexes[0])))

typedef struct pg_store {
    pb_store base;
    PGconn *conn; /* NULL before the first pb_store_connect of a PB_OPEN_MANUAL store */
    bool prepared[PST_COUNT];
    bool summary;    /* this session's join-form status found a summary it can trust */
    bool manual;     /* PB_OPEN_MANUAL: never reconnect behind the caller's back */
    char *conninfo;  /* owned copy, for reconnecting; holds secrets: never printed */
    char where[256]; /* host/port/db, never the password, for messages */
    /* For pb_store_interrupt from a signal handler: swapped atomically, and cleared
     * before the object it points to is freed. */
    _Atomic(PGcancel *) cancel;
} pg_store;

/* ---- errors ---- */

static int classify(const char *sqlstate, bool *retryable)
{
    *retryable = false;
    if (sqlstate == NULL || sqlstate[0] == '\0') {
        *retryable = true;
        return PB_ECONNECT;
    }
    if (strcmp(sqlstate, "42P01") == 0 || strcmp(sqlstate, "42703") == 0 ||
        strcmp(sqlstate, "3F000") == 0 || strcmp(sqlstate, "42704") == 0)
        return PB_ENOSCHEMA;
    if (strcmp(sqlstate, "42501") == 0)
        return PB_EPRIVILEGE;
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 ||
        strcmp(sqlstate, "55P03") == 0) {
        *retryable = true;
        return PB_ERETRY;
    }
    if (strcmp(sqlstate, "23503") == 0) {
        /* A referenced organization, group or user vanished under us: read again. */
        *retryable = true;
        return PB_ECONFLICT;
    }
    if (strncmp(sqlstate, "23", 2) == 0)
        return PB_ECONFLICT;
    if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
        strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0) {
        *retryable = true;
        return PB_ECONNECT;
    }
    return PB_EDB;
}

static int result_error(pg_store *s, const PGresult *res, const char *what, pb_err *err)
{
    const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[PB_ERR_MSG_MAX];
    if (primary != NULL)
        pb__strlcpy(msg, primary, sizeof(msg));
    else
        pb__strlcpy(msg, PQerrorMessage(s->conn), sizeof(msg));
    pb__first_line(msg);
    if (msg[0] == '\0')
        pb__strlcpy(msg, "connection lost", sizeof(msg));
    bool retryable;
    int code = classify(sqlstate, &retryable);
    if (code == PB_ENOSCHEMA)
        (void)pb__err_set(err, code, "%s: schema missing (%s): run 'prebuilds init'", what, msg);
    else if (code == PB_EPRIVILEGE)
        (void)pb__err_set(err, code, "%s: %s (see 'prebuilds init --print-grants ROLE')", what,
                          msg);
    else
        (void)pb__err_set(err, code, "%s: %s", what, msg);
    if (err != NULL) {
        err->retryable = retryable;
        if (sqlstate != NULL)
            pb__strlcpy(err->sqlstate, sqlstate, sizeof(err->sqlstate));
    }
    return code;
}

/* ---- connection ---- */

static void forget_prepared(pg_store *s)
{
    memset(s->prepared, 0, sizeof(s->prepared));
    s->summary = false; /* a new session looks again */
}

static int conn_error(pg_store *s, pb_err *err)
{
    char msg[PB_ERR_MSG_MAX];
    pb__strlcpy(msg, PQerrorMessage(s->conn), sizeof(msg));
    pb__first_line(msg);
    (void)pb__err_set(err, PB_ECONNECT, "connect to %s: %s", s->where, msg);
    if (err != NULL)
        err->retryable = true;
    return PB_ECONNECT;
}

static void drop_cancel(pg_store *s)
{
    PGcancel *old = atomic_exchange(&s->cancel, NULL);
    if (old != NULL)
        PQfreeCancel(old);
}

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* A new session started: remember how to cancel its statements. */
static void session_started(pg_store *s)
{
    forget_prepared(s);
    if (s->manual) /* a daemon: a server notice must not bypass its log */
        PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
    drop_cancel(s);
    atomic_store(&s->cancel, PQgetCancel(s->conn));
}

/* Our defaults first, the user's string last: libpq lets later settings win. */
static const char *const conn_keys[] = {
    "fallback_application_name", "connect_timeout",  "keepalives", "keepalives_idle",
    "keepalives_interval",       "keepalives_count", "dbname",     NULL};

static void conn_values(const pg_store *s, const char *vals[8])
{
    static const char *const defaults[] = {"prebuilds", "10", "1", "30", "10", "3"};
    for (int i = 0; i < 6; i++)
        vals[i] = defaults[i];
    vals[6] = s->conninfo;
    vals[7] = NULL;
}

/* Reconnect when the connection broke; prepared statements die with it. A manual store
 * reports the loss instead: its caller reconnects and sets the new session up. */
static int ensure_connected(pg_store *s, pb_err *err)
{
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    forget_prepared(s);
    if (s->manual || s->conn == NULL) {
        (void)pb__err_set(err, PB_ECONNECT, "connection to %s lost", s->where);
        if (err != NULL)
            err->retryable = true;
        return PB_ECONNECT;
    }
    drop_cancel(s);
    PQreset(s->conn);
    if (PQstatus(s->conn) != CONNECTION_OK)
        return conn_error(s, err);
    session_started(s);
    return 0;
}

/* After a protocol failure nothing reliable can be read back: start a new session (or,
 * for a manual store, leave it lost until the caller reconnects). */
static void reset_connection(pg_store *s)
{
    forget_prepared(s);
    drop_cancel(s);
    if (s->manual) {
        PQfinish(s->conn);
        s->conn = NULL;
        return;
    }
    PQreset(s->conn);
    if (PQstatus(s->conn) == CONNECTION_OK)
        session_started(s);
}

/* ---- pipelines ---- */

typedef struct pipe_item {
    int stmt; /* PST_* */
    int n_params;
    const char *params[6];
    bool single_row;  /* stream rows one by one */
    const char *what; /* for errors */
} pipe_item;

typedef int (*row_fn)(const PGresult *res, int item, void *arg);

/* Send the items as one pipeline with one Sync (one round trip, one implicit
 * transaction), preparing statements this connection has not seen, and hand every
 * row to `on_row`. The first error wins; the rest of the pipeline is drained. */
static int run_pipeline(pg_store *s, const pipe_item *items, int n_items, row_fn on_row, void *arg,
                        pb_err *err)
{
    int rc = ensure_connected(s, err);
    if (rc != 0)
        return rc;
    bool sent_prepare[PST_COUNT] = {0};
    if (PQenterPipelineMode(s->conn) != 1)
        return pb__err_set(err, PB_EINTERNAL, "enter pipeline mode: %s", PQerrorMessage(s->conn));
    for (int i = 0; i < n_items && rc == 0; i++) {
        int id = items[i].stmt;
        if (!s->prepared[id] && !sent_prepare[id]) {
            if (PQsendPrepare(s->conn, pstmts[id].name, pstmts[id].sql, 0, NULL) != 1)
                rc = conn_error(s, err);
            sent_prepare[id] = true;
        }
        if (rc == 0 && PQsendQueryPrepared(s->conn, pstmts[id].name, items[i].n_params,
                                           items[i].params, NULL, NULL, 0) != 1)
            rc = conn_error(s, err);
        if (rc == 0)
            s->base.stats.statements++;
    }
    if (rc == 0 && PQpipelineSync(s->conn) != 1)
        rc = conn_error(s, err);
    if (rc != 0) {
        (void)PQexitPipelineMode(s->conn);
        reset_connection(s);
        return rc;
    }
    s->base.stats.round_trips++;

    /* Results come back in order: per item, [prepare result, NULL], then its rows and
     * final status, NULL; then the Sync. */
    int item = 0;
    bool expect_prepare = n_items > 0 && sent_prepare[items[0].stmt];
    bool prepare_failed[PST_COUNT] = {0};
    bool row_mode_set = false;
    for (;;) {
        /* Single-row mode is chosen just before the first result of that query. */
        if (!expect_prepare && item < n_items && items[item].single_row && !row_mode_set) {
            row_mode_set = true;
            if (PQsetSingleRowMode(s->conn) != 1 && rc == 0)
                rc =
                    pb__err_set(err, PB_EINTERNAL, "%s: single-row mode refused", items[item].what);
        }
        PGresult *res = PQgetResult(s->conn);
        if (res == NULL) {
            if (PQstatus(s->conn) == CONNECTION_BAD) {
                if (rc == 0)
                    rc = conn_error(s, err);
                break;
            }
            /* End of one query's results. */
            if (expect_prepare) {
                expect_prepare = false;
            } else {
                item++;
                row_mode_set = false;
                if (item < n_items) {
                    int id = items[item].stmt;
                    /* A statement's prepare was sent only before its first use. */
                    bool first_use = true;
                    for (int j = 0; j < item; j++)
                        if (items[j].stmt == id)
                            first_use = false;
                    expect_prepare = sent_prepare[id] && first_use;
                }
            }
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (expect_prepare) {
            int id = items[item].stmt;
            if (st != PGRES_COMMAND_OK) {
                prepare_failed[id] = true;
                if (rc == 0 && st != PGRES_PIPELINE_ABORTED)
                    rc = result_error(s, res, items[item].what, err);
            }
        } else if (st == PGRES_SINGLE_TUPLE || st == PGRES_TUPLES_OK) {
            if (rc == 0 && on_row != NULL && PQntuples(res) > 0)
                rc = on_row(res, item, arg);
        } else if (st == PGRES_COMMAND_OK) {
            /* nothing to read */
        } else if (st == PGRES_PIPELINE_ABORTED) {
            /* an earlier error already explains this */
        } else if (rc == 0) {
            rc = result_error(s, res, item < n_items ? items[item].what : "pipeline", err);
        }
        PQclear(res);
    }
    for (int id = 0; id < PST_COUNT; id++) {
        if (sent_prepare[id] && !prepare_failed[id] && PQstatus(s->conn) == CONNECTION_OK)
            s->prepared[id] = true;
    }
    if (PQexitPipelineMode(s->conn) != 1 && rc == 0)
        rc = pb__err_set(err, PB_EINTERNAL, "exit pipeline mode: %s", PQerrorMessage(s->conn));
    if (PQstatus(s->conn) == CONNECTION_BAD)
        forget_prepared(s);
    return rc;
}

/* ---- status ---- */

typedef struct status_ctx {
    pb_status_cb cb;
    void *arg;
    pb_err *err;
    bool probe;      /* the join form: column 6 says whether the summary is usable */
    bool summary_ok; /* what it said */
} status_ctx;

static bool is_true(const PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col)[0] == 't';
}

static int status_rows(const PGresult *res, int item, void *arg)
{
    (void)item;
    status_ctx *ctx = arg;
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        pb_status_row row;
        memset(&row, 0, sizeof(row));
        pb__strlcpy(row.org_id, PQgetvalue(res, r, 0), sizeof(row.org_id));
        row.org_name = PQgetvalue(res, r, 1);
        row.has_member = is_true(res, r, 2);
        row.has_group = !PQgetisnull(res, r, 3);
        if (row.has_group)
            pb__strlcpy(row.group_id, PQgetvalue(res, r, 3), sizeof(row.group_id));
        row.in_group = is_true(res, r, 4);
        row.user_exists = is_true(res, r, 5);
        if (ctx->probe)
            ctx->summary_ok = is_true(res, r, 6);
        int rc = ctx->cb(&row, ctx->arg);
        if (rc != 0) {
            if (ctx->err != NULL && ctx->err->msg[0] == '\0')
                (void)pb__err_set(ctx->err, rc, "status: %s", pb_strerror(rc));
            return rc;
        }
    }
    return 0;
}

static int pg_status(pb_store *base, const pb_target *t, const char *const *ids, size_t n_ids,
                     pb_status_cb cb, void *arg, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    char *ids_arr = NULL;
    if (n_ids > 0) {
        ids_arr = pb__ids_pgarray(ids, n_ids);
        if (ids_arr == NULL)
            return pb__err_set(err, PB_ENOMEM, "status: out of memory");
    }
    bool summary = s->summary;
    pipe_item item = {
        .stmt = summary ? (n_ids > 0 ? PST_SUMMARY_SOME : PST_SUMMARY_ALL)
                        : (n_ids > 0 ? PST_STATUS_SOME : PST_STATUS_ALL),
        .n_params = n_ids > 0 ? 3 : 2,
        .params = {t->user_id, t->group_name, ids_arr},
        .single_row = true,
        .what = "read status",
    };
    status_ctx ctx = {.cb = cb, .arg = arg, .err = err, .probe = !summary};
    int rc = run_pipeline(s, &item, 1, status_rows, &ctx, err);
    pb__free(ids_arr);
    if (!summary && rc == 0 && ctx.summary_ok)
        s->summary = true; /* from the next pass on */
    else if (summary && (rc == PB_ENOSCHEMA || rc == PB_EPRIVILEGE))
        s->summary = false; /* dropped or revoked under us: the next pass reads the tables */
    return rc;
}

/* ---- writes ---- */

typedef struct apply_ctx {
    pb_write_result *res;
    pb_added_cb added;
    void *added_arg;
} apply_ctx;

static int apply_rows(const PGresult *res, int item, void *arg)
{
    (void)item;
    apply_ctx *ctx = arg;
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        int kind = PQgetvalue(res, r, 0)[0] - '0'; /* 1, 2 or 4 */
        const char *org_id = PQgetvalue(res, r, 1);
        if (kind == PB_ROW_MEMBER)
            ctx->res->memberships_added++;
        else if (kind == PB_ROW_GROUP)
            ctx->res->groups_created++;
        else if (kind == PB_ROW_GROUP_MEMBER)
            ctx->res->group_memberships_added++;
        if (ctx->added != NULL)
            ctx->added((pb_row_kind)kind, org_id, ctx->added_arg);
    }
    return 0;
}

static int pg_apply(pb_store *base, const pb_target *t, const pb_write_set *w, pb_added_cb added,
                    void *added_arg, pb_write_result *res, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    char *member_arr = pb__ids_pgarray(w->member_orgs, w->n_member_orgs);
    char *group_arr = pb__ids_pgarray(w->group_orgs, w->n_group_orgs);
    char *gm_arr = pb__ids_pgarray(w->group_member_orgs, w->n_group_member_orgs);
    int rc;
    if (member_arr == NULL || group_arr == NULL || gm_arr == NULL) {
        rc = pb__err_set(err, PB_ENOMEM, "apply: out of memory");
        goto out;
    }
    pipe_item items[2];
    int n = 0;
    if (w->n_member_orgs > 0 || w->n_group_orgs > 0)
        items[n++] = (pipe_item){
            .stmt = PST_WRITE_ORG,
            .n_params = 5,
            .params = {t->user_id, member_arr, t->group_name, t->group_display_name, group_arr},
            .what = "insert organization memberships and groups",
        };
    if (w->n_group_member_orgs > 0)
        items[n++] = (pipe_item){
            .stmt = PST_WRITE_GROUP_MEMBER,
            .n_params = 3,
            .params = {t->user_id, t->group_name, gm_arr},
            .what = "insert group memberships",
        };
    apply_ctx ctx = {res, added, added_arg};
    rc = run_pipeline(s, items, n, apply_rows, &ctx, err);
out:
    pb__free(member_arr);
    pb__free(group_arr);
    pb__free(gm_arr);
    return rc;
}

/* ---- simple statements (init and administration) ---- */

/* Execute one statement with text parameters; *out (if given) receives the result,
 * which the caller PQclears. Checks the result has the expected shape. */
static int exec_params(pg_store *s, const char *sql, int n_params, const char *const *params,
                       PGresult **out, const char *what, pb_err *err)
{
    if (out != NULL)
        *out = NULL;
    int rc = ensure_connected(s, err);
    if (rc != 0)
        return rc;
    s->base.stats.statements++;
    s->base.stats.round_trips++;
    PGresult *res = PQexecParams(s->conn, sql, n_params, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        rc = result_error(s, res, what, err);
        PQclear(res);
        return rc;
    }
    if (out != NULL)
        *out = res;
    else
        PQclear(res);
    return 0;
}

static int exec_simple(pg_store *s, const char *sql, const char *what, pb_err *err)
{
    return exec_params(s, sql, 0, NULL, NULL, what, err);
}

static int query_int(pg_store *s, const char *sql, int n_params, const char *const *params,
                     int *out, const char *what, pb_err *err)
{
    PGresult *res = NULL;
    int rc = exec_params(s, sql, n_params, params, &res, what, err);
    if (rc != 0)
        return rc;
    *out = 0;
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        *out = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

static int install_triggers(pg_store *s, const pb_target *t, pb_init_result *res, pb_err *err);

static void rollback_quietly(pg_store *s)
{
    if (PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(s->conn, "ROLLBACK");
        PQclear(res);
    }
}

/* The summary on this database: present or not (our schema always has it, from
 * migration 3), and, when asked, installed or rebuilt in one transaction. */
static int summary_step(pg_store *s, bool build, pb_init_result *res, pb_err *err)
{
    int present = 0, rc;
    if ((rc = query_int(s, "SELECT (to_regclass('" SUMMARY_TABLE "') IS NOT NULL)::int", 0, NULL,
                        &present, "inspect summary", err)) != 0)
        return rc;
    if (!build) {
        res->summary_missing = !present;
        return 0;
    }
    /* "trigger ... does not exist, skipping" on a first install is not news. */
    PQnoticeProcessor old_notice = PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
    if ((rc = exec_simple(s, "BEGIN", "build summary", err)) == 0) {
        s->base.stats.statements++;
        s->base.stats.round_trips++;
        PGresult *r = PQexec(s->conn, SUMMARY_SQL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = result_error(s, r, "build summary", err);
        PQclear(r);
        if (rc == 0)
            rc = exec_simple(s, "COMMIT", "build summary", err);
        if (rc != 0)
            rollback_quietly(s);
    }
    if (s->conn != NULL)
        (void)PQsetNoticeProcessor(s->conn, old_notice, NULL);
    if (rc == 0)
        res->summary_built = true;
    return rc;
}

#define INIT_LOCK_ID "7260101" /* serialises concurrent `init` runs */

static int pg_init(pb_store *base, const pb_target *t, const pb_init_opts *o, pb_init_result *res,
                   pb_err *err)
{
    pg_store *s = (pg_store *)base;
    int rc, n_tables = 0, own = 0, version = 0;
    const char *uid[1] = {t->user_id};
    if ((rc = exec_simple(s, "BEGIN", "begin init", err)) != 0)
        return rc;
    if ((rc = exec_simple(s, "SELECT pg_advisory_xact_lock(" INIT_LOCK_ID ")", "lock init", err)) !=
        0)
        goto fail;
    if ((rc = query_int(s,
                        "SELECT count(*) FROM information_schema.tables"
                        " WHERE table_schema = current_schema() AND table_name IN"
                        " ('users', 'organizations', 'organization_members', 'groups',"
                        " 'group_members', 'templates', 'template_versions',"
                        " 'template_version_presets')",
                        0, NULL, &n_tables, "inspect schema", err)) != 0)
        goto fail;
    if ((rc = query_int(s, "SELECT (to_regclass('" MIGRATIONS_TABLE "') IS NOT NULL)::int", 0, NULL,
                        &own, "inspect schema", err)) != 0)
        goto fail;
    if (own) {
        if ((rc = query_int(s, "SELECT coalesce(max(version), 0) FROM " MIGRATIONS_TABLE, 0, NULL,
                            &version, "read schema version", err)) != 0)
            goto fail;
    } else if (n_tables == 8) {
        res->foreign_schema = true;
    } else if (n_tables > 0) {
        rc = pb__err_set(err, PB_ESCHEMA,
                         "init: found %d of the 8 tables and no prebuilds migrations; refusing "
                         "to change a partial schema we did not create",
                         n_tables);
        goto fail;
    }
    res->schema_version_before = version;
    if (version > N_MIGRATIONS) {
        rc = pb__err_set(err, PB_ESCHEMA,
                         "init: schema version %d is newer than this build knows (%d)", version,
                         N_MIGRATIONS);
        goto fail;
    }
    if (!res->foreign_schema) {
        if (!own &&
            (rc = exec_simple(s,
                              "CREATE TABLE " MIGRATIONS_TABLE " (version integer PRIMARY KEY,"
                              " applied_at timestamptz NOT NULL DEFAULT now())",
                              "create migrations table", err)) != 0)
            goto fail;
        for (int v = version; v < N_MIGRATIONS; v++) {
            char what[64];
            (void)snprintf(what, sizeof(what), "apply migration %d", v + 1);
            /* A multi-statement script: simple query protocol, no parameters. */
            s->base.stats.statements++;
            s->base.stats.round_trips++;
            PQnoticeProcessor old_notice = PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
            PGresult *r = PQexec(s->conn, migrations[v]);
            (void)PQsetNoticeProcessor(s->conn, old_notice, NULL);
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                rc = result_error(s, r, what, err);
                PQclear(r);
                goto fail;
            }
            PQclear(r);
            char vbuf[16];
            (void)snprintf(vbuf, sizeof(vbuf), "%d", v + 1);
            const char *p[1] = {vbuf};
            if ((rc = exec_params(s, "INSERT INTO " MIGRATIONS_TABLE " (version) VALUES ($1)", 1, p,
                                  NULL, what, err)) != 0)
                goto fail;
        }
        res->schema_version_after = N_MIGRATIONS;
        if (o->create_user) {
            PGresult *r = NULL;
            if ((rc = exec_params(s,
                                  "INSERT INTO users (id, email, username, name, hashed_password,"
                                  " created_at, updated_at, status, rbac_roles, login_type,"
                                  " is_system) VALUES ($1::uuid, 'prebuilds@system', 'prebuilds',"
                                  " 'Prebuilds Owner', '\\x'::bytea, now(), now(), 'active', '{}',"
                                  " 'none', true) ON CONFLICT DO NOTHING",
                                  1, uid, &r, "create prebuilds user", err)) != 0)
                goto fail;
            res->user_created = strcmp(PQcmdTuples(r), "1") == 0;
            PQclear(r);
        }
    }
    int exists = 0;
    if ((rc = query_int(s, "SELECT count(*) FROM users WHERE id = $1::uuid", 1, uid, &exists,
                        "look up prebuilds user", err)) != 0)
        goto fail;
    res->user_exists = exists > 0;
    if ((rc = exec_simple(s, "COMMIT", "commit init", err)) != 0)
        goto fail;

    /* Recommended indexes: present, missing, or (when asked) built. */
    for (int i = 0; i < N_RECOMMENDED; i++) {
        int present = 0;
        const char *p[1] = {recommended_indexes[i].name};
        if ((rc = query_int(s, "SELECT (to_regclass($1::text) IS NOT NULL)::int", 1, p, &present,
                            "inspect indexes", err)) != 0)
            return rc;
        if (present)
            continue;
        if (!o->recommended_indexes) {
            res->indexes_missing++;
            continue;
        }
        char what[128];
        (void)snprintf(what, sizeof(what), "create index %s", recommended_indexes[i].name);
        if ((rc = exec_simple(s, recommended_indexes[i].sql, what, err)) != 0)
            return rc;
        res->indexes_created++;
    }
    if ((rc = summary_step(s, o->summary, res, err)) != 0)
        return rc;
    if (o->triggers)
        return install_triggers(s, t, res, err);
    return 0;
fail:
    rollback_quietly(s);
    return rc;
}

/* `init --triggers`: opt-in triggers that NOTIFY PB_NOTIFY_CHANNEL with an organization
 * id when that organization may have started to need a row: a preset's desired_instances
 * was set, the prebuilds user left the organization or the group, the group was deleted
 * or renamed. WHEN clauses keep every other write on these hot tables from even calling
 * the function. NOTIFY is delivered at commit and folds duplicates within a transaction. */
static const char *const trigger_functions[] = {
    "CREATE OR REPLACE FUNCTION prebuilds_notify_preset() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    " PERFORM pg_notify(TG_ARGV[0], tv.organization_id::text) FROM template_versions tv"
    "  WHERE tv.id = NEW.template_version_id;"
    " RETURN NULL; END $$",
    "CREATE OR REPLACE FUNCTION prebuilds_notify_old_org() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    " PERFORM pg_notify(TG_ARGV[0], OLD.organization_id::text);"
    " RETURN NULL; END $$",
    "CREATE OR REPLACE FUNCTION prebuilds_notify_group_member() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN"
    " PERFORM pg_notify(TG_ARGV[0], g.organization_id::text) FROM groups g"
    "  WHERE g.id = OLD.group_id AND g.name = TG_ARGV[1];"
    " RETURN NULL; END $$",
};

/* Trigger definitions: @C is the channel literal, @U the user id literal, @G the group
 * name literal, each escaped with PQescapeLiteral (DDL takes no parameters). */
static const char *const trigger_defs[][2] = {
    {"prebuilds_notify_preset_insert",
     "CREATE TRIGGER prebuilds_notify_preset_insert AFTER INSERT ON template_version_presets"
     " FOR EACH ROW WHEN (NEW.desired_instances IS NOT NULL)"
     " EXECUTE FUNCTION prebuilds_notify_preset(@C)"},
    {"prebuilds_notify_preset_update",
     "CREATE TRIGGER prebuilds_notify_preset_update AFTER UPDATE OF desired_instances,"
     " template_version_id ON template_version_presets FOR EACH ROW"
     " WHEN (NEW.desired_instances IS NOT NULL AND (OLD.desired_instances IS NULL"
     " OR OLD.template_version_id IS DISTINCT FROM NEW.template_version_id))"
     " EXECUTE FUNCTION prebuilds_notify_preset(@C)"},
    {"prebuilds_notify_member_delete",
     "CREATE TRIGGER prebuilds_notify_member_delete AFTER DELETE ON organization_members"
     " FOR EACH ROW WHEN (OLD.user_id = @U::uuid)"
     " EXECUTE FUNCTION prebuilds_notify_old_org(@C)"},
    {"prebuilds_notify_member_update",
     "CREATE TRIGGER prebuilds_notify_member_update AFTER UPDATE OF user_id, organization_id"
     " ON organization_members FOR EACH ROW WHEN (OLD.user_id = @U::uuid"
     " AND (NEW.user_id IS DISTINCT FROM OLD.user_id"
     " OR NEW.organization_id IS DISTINCT FROM OLD.organization_id))"
     " EXECUTE FUNCTION prebuilds_notify_old_org(@C)"},
    {"prebuilds_notify_group_member_delete",
     "CREATE TRIGGER prebuilds_notify_group_member_delete AFTER DELETE ON group_members"
     " FOR EACH ROW WHEN (OLD.user_id = @U::uuid)"
     " EXECUTE FUNCTION prebuilds_notify_group_member(@C, @G)"},
    {"prebuilds_notify_group_delete",
     "CREATE TRIGGER prebuilds_notify_group_delete AFTER DELETE ON groups"
     " FOR EACH ROW WHEN (OLD.name = @G) EXECUTE FUNCTION prebuilds_notify_old_org(@C)"},
    {"prebuilds_notify_group_update",
     "CREATE TRIGGER prebuilds_notify_group_update AFTER UPDATE OF name, organization_id"
     " ON groups FOR EACH ROW WHEN (OLD.name = @G AND (NEW.name IS DISTINCT FROM OLD.name"
     " OR NEW.organization_id IS DISTINCT FROM OLD.organization_id))"
     " EXECUTE FUNCTION prebuilds_notify_old_org(@C)"},
};
#define N_TRIGGERS ((int)(sizeof(trigger_defs) / sizeof(trigger_defs[0])))

static const char *const trigger_tables[N_TRIGGERS] = {"template_version_presets",
                                                       "template_version_presets",
                                                       "organization_members",
                                                       "organization_members",
                                                       "group_members",
                                                       "groups",
                                                       "groups"};

/* Copy `tmpl` into `out`, replacing @C, @U and @G; false when it does not fit. */
static bool expand_trigger(char *out, size_t len, const char *tmpl, const char *chan,
                           const char *uid, const char *gname)
{
    size_t used = 0;
    for (const char *p = tmpl; *p != '\0'; p++) {
        const char *ins = NULL;
        if (p[0] == '@' && (p[1] == 'C' || p[1] == 'U' || p[1] == 'G'))
            ins = p[1] == 'C' ? chan : p[1] == 'U' ? uid : gname;
        size_t n = ins != NULL ? strlen(ins) : 1;
        if (used + n + 1 > len)
            return false;
        memcpy(out + used, ins != NULL ? ins : p, n);
        used += n;
        if (ins != NULL)
            p++;
    }
    out[used] = '\0';
    return true;
}

/* Install (or replace: the user id or group name may have changed) every trigger, in one
 * transaction so a platform never sees half of them. */
static int install_triggers(pg_store *s, const pb_target *t, pb_init_result *res, pb_err *err)
{
    char *chan = PQescapeLiteral(s->conn, PB_NOTIFY_CHANNEL, strlen(PB_NOTIFY_CHANNEL));
    char *uid = PQescapeLiteral(s->conn, t->user_id, strlen(t->user_id));
    char *gname = PQescapeLiteral(s->conn, t->group_name, strlen(t->group_name));
    int rc = 0;
    PQnoticeProcessor old_notice = NULL;
    if (chan == NULL || uid == NULL || gname == NULL) {
        rc = pb__err_set(err, PB_ENOMEM, "install triggers: out of memory");
        goto out;
    }
    /* "trigger ... does not exist, skipping" on a first install is not news. */
    old_notice = PQsetNoticeProcessor(s->conn, quiet_notices, NULL);
    if ((rc = exec_simple(s, "BEGIN", "install triggers", err)) != 0)
        goto out;
    for (size_t i = 0; i < sizeof(trigger_functions) / sizeof(trigger_functions[0]); i++)
        if ((rc = exec_simple(s, trigger_functions[i], "create trigger functions", err)) != 0)
            goto fail;
    for (int i = 0; i < N_TRIGGERS; i++) {
        char sql[1024], what[128];
        (void)snprintf(what, sizeof(what), "create trigger %s", trigger_defs[i][0]);
        (void)snprintf(sql, sizeof(sql), "DROP TRIGGER IF EXISTS %s ON %s", trigger_defs[i][0],
                       trigger_tables[i]);
        if ((rc = exec_simple(s, sql, what, err)) != 0)
            goto fail;
        if (!expand_trigger(sql, sizeof(sql), trigger_defs[i][1], chan, uid, gname)) {
            rc = pb__err_set(err, PB_EINVAL, "%s: group name too long", what);
            goto fail;
        }
        if ((rc = exec_simple(s, sql, what, err)) != 0)
            goto fail;
    }
    if ((rc = exec_simple(s, "COMMIT", "install triggers", err)) != 0)
        goto fail;
    res->triggers_installed = N_TRIGGERS;
    goto out;
fail:
    rollback_quietly(s);
out:
    if (old_notice != NULL && s->conn != NULL) /* ours never carry an argument */
        (void)PQsetNoticeProcessor(s->conn, old_notice, NULL);
    PQfreemem(chan);
    PQfreemem(uid);
    PQfreemem(gname);
    return rc;
}

/* ---- administration ---- */

static int pg_create(pb_store *base, pb_obj_kind kind, const char *id, const char *parent_id,
                     const char *name, int64_t desired, const char *created_by, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    char desired_buf[32];
    const char *desired_txt = NULL;
    if (desired >= 0) {
        (void)snprintf(desired_buf, sizeof(desired_buf), "%" PRId64, desired);
        desired_txt = desired_buf;
    }
    /* $1 id, $2 parent (or name for organizations), $3 name, $4 creator or desired */
    const char *params[4] = {id, parent_id, name, created_by};
    int n_params = 4;
    char what[160];
    const char *sql;
    switch (kind) {
    case PB_OBJ_ORG:
        params[1] = name;
        n_params = 2;
        sql = "INSERT INTO organizations (id, name, display_name, description, created_at,"
              " updated_at) VALUES ($1::uuid, $2, $2, '', now(), now())";
        (void)snprintf(what, sizeof(what), "create organization \"%.100s\"", name);
        break;
    case PB_OBJ_TEMPLATE:
        sql = "INSERT INTO templates (id, organization_id, name, provisioner, active_version_id,"
              " created_by, created_at, updated_at) VALUES ($1::uuid, $2::uuid, $3, 'terraform',"
              " '00000000-0000-0000-0000-000000000000', $4::uuid, now(), now())";
        (void)snprintf(what, sizeof(what), "create template \"%.100s\"", name);
        break;
    case PB_OBJ_VERSION:
        sql = "INSERT INTO template_versions (id, template_id, organization_id, name, readme,"
              " job_id, created_by, created_at, updated_at)"
              " SELECT $1::uuid, t.id, t.organization_id, $3, '', gen_random_uuid(), $4::uuid,"
              " now(), now() FROM templates t WHERE t.id = $2::uuid";
        (void)snprintf(what, sizeof(what), "create template version \"%.100s\"", name);
        break;
    case PB_OBJ_PRESET:
        params[3] = desired_txt;
        sql = "INSERT INTO template_version_presets (id, template_version_id, name,"
              " desired_instances) VALUES ($1::uuid, $2::uuid, $3, $4::integer)";
        (void)snprintf(what, sizeof(what), "create preset \"%.100s\"", name);
        break;
    default:
        return pb__err_set(err, PB_EINVAL, "create: unknown object kind");
    }
    PGresult *res = NULL;
    int rc = exec_params(s, sql, n_params, params, &res, what, err);
    if (rc == 0 && strcmp(PQcmdTuples(res), "0") == 0)
        rc = pb__err_set(err, PB_ENOTFOUND, "%s: template %s not found", what, parent_id);
    PQclear(res);
    if (rc == PB_ECONFLICT && err != NULL)
        (void)pb__err_set(err, rc, "%s: %s", what,
                          strcmp(err->sqlstate, "23503") == 0 ? "parent or creating user not found"
                                                              : "already exists");
    return rc;
}

static int pg_list(pb_store *base, pb_obj_kind kind, const char *parent_id, pb_obj_cb cb, void *arg,
                   pb_err *err)
{
    pg_store *s = (pg_store *)base;
    const char *sql;
    switch (kind) {
    case PB_OBJ_ORG:
        sql = "SELECT id, NULL, name, NULL FROM organizations WHERE NOT deleted"
              " AND ($1::uuid IS NULL OR id = $1::uuid) ORDER BY name, id";
        break;
    case PB_OBJ_TEMPLATE:
        sql = "SELECT id, organization_id, name, NULL FROM templates WHERE NOT deleted"
              " AND ($1::uuid IS NULL OR organization_id = $1::uuid)"
              " ORDER BY organization_id, name, id";
        break;
    case PB_OBJ_VERSION:
        sql = "SELECT id, template_id, name, NULL FROM template_versions"
              " WHERE ($1::uuid IS NULL OR template_id = $1::uuid) ORDER BY template_id, name, id";
        break;
    case PB_OBJ_PRESET:
        sql = "SELECT id, template_version_id, name, coalesce(desired_instances::text, '')"
              " FROM template_version_presets"
              " WHERE ($1::uuid IS NULL OR template_version_id = $1::uuid)"
              " ORDER BY template_version_id, name, id";
        break;
    default:
        return pb__err_set(err, PB_EINVAL, "list: unknown object kind");
    }
    PGresult *res = NULL;
    const char *p[1] = {parent_id};
    int rc = exec_params(s, sql, 1, p, &res, "list", err);
    if (rc != 0)
        return rc;
    for (int r = 0; r < PQntuples(res) && rc == 0; r++) {
        pb_obj_row row = {
            .id = PQgetvalue(res, r, 0),
            .parent_id = PQgetisnull(res, r, 1) ? NULL : PQgetvalue(res, r, 1),
            .name = PQgetvalue(res, r, 2),
            .extra = PQgetisnull(res, r, 3) ? NULL : PQgetvalue(res, r, 3),
        };
        rc = cb(&row, arg);
    }
    PQclear(res);
    return rc;
}

static int pg_remove(pb_store *base, const pb_target *t, pb_row_kind kind, const char *org_id,
                     size_t *n_removed, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    const char *params[3] = {t->user_id, org_id, t->group_name};
    PGresult *res = NULL;
    int rc;
    if (kind == PB_ROW_MEMBER)
        rc = exec_params(s,
                         "DELETE FROM organization_members WHERE user_id = $1::uuid"
                         " AND organization_id = $2::uuid",
                         2, params, &res, "remove organization membership", err);
    else if (kind == PB_ROW_GROUP_MEMBER)
        rc = exec_params(s,
                         "DELETE FROM group_members WHERE user_id = $1::uuid AND group_id IN"
                         " (SELECT id FROM groups WHERE organization_id = $2::uuid"
                         " AND name = $3)",
                         3, params, &res, "remove group membership", err);
    else if (kind == PB_ROW_GROUP)
        rc = exec_params(s,
                         "DELETE FROM groups WHERE $1::uuid IS NOT NULL"
                         " AND organization_id = $2::uuid AND name = $3",
                         3, params, &res, "remove group", err);
    else
        return pb__err_set(err, PB_EINVAL, "remove: unknown row kind");
    if (rc == 0)
        *n_removed = (size_t)strtoul(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return rc;
}

static int pg_find_org(pb_store *base, const char *id_or_name, char out[PB_UUID_LEN + 1],
                       pb_err *err)
{
    pg_store *s = (pg_store *)base;
    const char *p[1] = {id_or_name};
    PGresult *res = NULL;
    int rc = exec_params(s,
                         "SELECT id FROM organizations WHERE NOT deleted AND"
                         " (id::text = lower($1) OR lower(name) = lower($1)) ORDER BY id LIMIT 1",
                         1, p, &res, "find organization", err);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 0)
        rc = pb__err_set(err, PB_ENOTFOUND, "organization \"%.100s\" not found", id_or_name);
    else
        pb__strlcpy(out, PQgetvalue(res, 0, 0), PB_UUID_LEN + 1);
    PQclear(res);
    return rc;
}

/* ---- seed ---- */

/* Server-side generation: the same shape and the same exact counts as the SQLite seed
 * (floor arithmetic spreads organizations evenly), at a fraction of the round trips. */
static int pg_seed(pb_store *base, const pb_target *t, const pb_seed_opts *o, pb_seed_result *res,
                   pb_err *err)
{
    pg_store *s = (pg_store *)base;
    char seed[16], orgs[24], tpo[24], vpt[24], ppv[24], pf[40], df[40];
    (void)snprintf(seed, sizeof(seed), "%u", o->seed);
    (void)snprintf(orgs, sizeof(orgs), "%" PRId64, o->orgs);
    (void)snprintf(tpo, sizeof(tpo), "%" PRId64, o->templates_per_org);
    (void)snprintf(vpt, sizeof(vpt), "%" PRId64, o->versions_per_template);
    (void)snprintf(ppv, sizeof(ppv), "%" PRId64, o->presets_per_version);
    (void)snprintf(pf, sizeof(pf), "%.17g", o->prebuilds_fraction);
    (void)snprintf(df, sizeof(df), "%.17g", o->drift_fraction);
    const char *p[9] = {seed, orgs, tpo, vpt, ppv, pf, df, t->user_id, t->group_name};
    const char *gdn = t->group_display_name;
    int rc;
    /* Per organization i: whether it has prebuilds, its index k among those, whether
     * it drifted and (by the number of drifted before it) which rows it misses. */
    static const char *const org_cte =
        "WITH args AS (SELECT $8::uuid AS user_id, $9::text AS group_name,"
        "  $10::text AS group_display_name),"
        " org AS ("
        " SELECT i, md5('pb-seed:' || $1 || ':org:' || i)::uuid AS id,"
        "  floor((i + 1) * $6::float8) > floor(i * $6::float8) AND $3::int > 0"
        "   AND $4::int > 0 AND $5::int > 0 AS prebuilds,"
        "  floor(i * $6::float8)::bigint AS k"
        " FROM generate_series(0, $2::bigint - 1) AS i),"
        " pre AS ("
        " SELECT org.*, floor((k + 1) * $7::float8) > floor(k * $7::float8) AS drifted,"
        "  (floor(k * $7::float8)::bigint % 4)::int AS variant"
        " FROM org WHERE prebuilds),"
        " miss AS ("
        " SELECT pre.*, drifted AND variant IN (0, 1) AS no_member,"
        "  drifted AND variant IN (0, 2) AS no_group,"
        "  drifted AND variant IN (0, 2, 3) AS no_group_member FROM pre) ";
    static const char *const steps[][2] = {
        {"seed organizations",
         "INSERT INTO organizations (id, name, display_name, description, created_at,"
         " updated_at) SELECT id, 'seed' || $1 || '-org-' || lpad(i::text, 7, '0'),"
         " 'seed' || $1 || '-org-' || lpad(i::text, 7, '0'), '', now(), now() FROM org"},
        {"seed templates",
         "INSERT INTO templates (id, organization_id, name, provisioner, active_version_id,"
         " created_by, created_at, updated_at)"
         " SELECT md5('pb-seed:' || $1 || ':tpl:' || i || ':' || ti)::uuid, org.id,"
         " 'template-' || ti, 'terraform', '00000000-0000-0000-0000-000000000000',"
         " $8::uuid, now(), now() FROM org, generate_series(0, $3::int - 1) AS ti"},
        {"seed template versions",
         "INSERT INTO template_versions (id, template_id, organization_id, name, readme, job_id,"
         " created_by, created_at, updated_at, archived)"
         " SELECT md5('pb-seed:' || $1 || ':ver:' || i || ':' || ti || ':' || vi)::uuid,"
         " md5('pb-seed:' || $1 || ':tpl:' || i || ':' || ti)::uuid, org.id, 'v' || vi, '',"
         " md5('pb-seed:' || $1 || ':job:' || i || ':' || ti || ':' || vi)::uuid, $8::uuid,"
         " now(), now(), vi + 1 < $4::int FROM org, generate_series(0, $3::int - 1) AS ti,"
         " generate_series(0, $4::int - 1) AS vi"},
        {"seed presets",
         "INSERT INTO template_version_presets (id, template_version_id, name, created_at,"
         " desired_instances)"
         " SELECT md5('pb-seed:' || $1 || ':pre:' || i || ':' || ti || ':' || vi || ':' ||"
         " pi)::uuid, md5('pb-seed:' || $1 || ':ver:' || i || ':' || ti || ':' || vi)::uuid,"
         " 'preset-' || pi, now(), CASE WHEN prebuilds AND pi = 0 THEN 1 END"
         " FROM org, generate_series(0, $3::int - 1) AS ti, generate_series(0, $4::int - 1) AS vi,"
         " generate_series(0, $5::int - 1) AS pi"},
        {"seed memberships",
         "INSERT INTO organization_members (organization_id, user_id, created_at, updated_at,"
         " roles) SELECT id, $8::uuid, now(), now(), '{}'::text[] FROM miss WHERE NOT no_member"},
        {"seed groups", "INSERT INTO groups (id, name, organization_id, display_name)"
                        " SELECT md5('pb-seed:' || $1 || ':grp:' || i)::uuid, $9, id, $10 FROM miss"
                        " WHERE NOT no_group"},
        {"seed group memberships",
         "INSERT INTO group_members (user_id, group_id)"
         " SELECT $8::uuid, md5('pb-seed:' || $1 || ':grp:' || i)::uuid FROM miss"
         " WHERE NOT no_group_member"},
    };
    if ((rc = exec_simple(s, "BEGIN", "seed", err)) != 0)
        return rc;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        size_t len = strlen(org_cte) + strlen(steps[i][1]) + 1;
        char *sql = pb__malloc(len);
        if (sql == NULL) {
            rc = pb__err_set(err, PB_ENOMEM, "%s: out of memory", steps[i][0]);
            goto fail;
        }
        (void)snprintf(sql, len, "%s%s", org_cte, steps[i][1]);
        const char *pp[10] = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], gdn};
        PGresult *r = NULL;
        rc = exec_params(s, sql, 10, pp, &r, steps[i][0], err);
        pb__free(sql);
        if (rc != 0)
            goto fail;
        int64_t n = strtoll(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        if (i == 0)
            res->orgs = n;
        else if (i == 1)
            res->templates = n;
        else if (i == 2)
            res->versions = n;
        else if (i == 3)
            res->presets = n;
    }
    PGresult *r = NULL;
    const char *pc[7] = {p[0], p[1], p[2], p[3], p[4], p[5], p[6]};
    rc = exec_params(s,
                     "WITH org AS (SELECT i, floor((i + 1) * $6::float8) > floor(i * $6::float8)"
                     " AND $3::int > 0 AND $4::int > 0 AND $5::int > 0 AS prebuilds,"
                     " floor(i * $6::float8)::bigint AS k, $1::text AS seed"
                     " FROM generate_series(0, $2::bigint - 1) AS i)"
                     " SELECT count(*), count(*) FILTER (WHERE floor((k + 1) * $7::float8) >"
                     " floor(k * $7::float8)) FROM org WHERE prebuilds",
                     7, pc, &r, "seed", err);
    if (rc != 0)
        goto fail;
    res->prebuild_orgs = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    res->drifted_orgs = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    if ((rc = exec_simple(s, "COMMIT", "seed", err)) != 0)
        goto fail;
    /* Fresh statistics, so the planner sees the new data at once. */
    (void)exec_simple(s,
                      "ANALYZE organizations, templates, template_versions,"
                      " template_version_presets, organization_members, groups,"
                      " group_members",
                      "analyze", err);
    pb_err_clear(err);
    return 0;
fail:
    rollback_quietly(s);
    memset(res, 0, sizeof(*res));
    return rc;
}

static void pg_close(pb_store *base)
{
    pg_store *s = (pg_store *)base;
    drop_cancel(s);
    if (s->conn != NULL)
        PQfinish(s->conn);
    pb__free(s->conninfo);
    pb__free(s);
}

/* ---- long-running use ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A non-blocking connect (PQconnectStartParams + PQconnectPoll), so a daemon waiting for
 * an unreachable server still answers its signals: `cancel_fd` becoming readable ends
 * the wait. connect_timeout does not apply to this API; `timeout_ms` does. */
static int pg_connect(pb_store *base, int cancel_fd, int timeout_ms, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    forget_prepared(s);
    drop_cancel(s);
    if (s->conn != NULL)
        PQfinish(s->conn);
    const char *vals[8];
    conn_values(s, vals);
    s->conn = PQconnectStartParams(conn_keys, vals, 1);
    if (s->conn == NULL)
        return pb__err_set(err, PB_ENOMEM, "connect: out of memory");
    int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 10000);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(s->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        struct pollfd fds[2] = {
            {.fd = PQsocket(s->conn), .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT},
            {.fd = cancel_fd, .events = POLLIN},
        };
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            (void)pb__err_set(err, PB_ECONNECT, "connect to %s: timeout after %d ms", s->where,
                              timeout_ms);
            goto fail;
        }
        int n = poll(fds, cancel_fd >= 0 ? 2 : 1, (int)left);
        if (n < 0)
            continue; /* EINTR: a signal; the cancel fd says whether it matters */
        if (cancel_fd >= 0 && (fds[1].revents & POLLIN)) {
            (void)pb__err_set(err, PB_ECONNECT, "connect to %s: interrupted", s->where);
            goto fail;
        }
        if (n > 0)
            st = PQconnectPoll(s->conn);
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        int rc = conn_error(s, err);
        PQfinish(s->conn);
        s->conn = NULL;
        return rc;
    }
    session_started(s);
    return 0;
fail:
    if (err != NULL)
        err->retryable = true;
    PQfinish(s->conn);
    s->conn = NULL;
    return PB_ECONNECT;
}

static bool pg_connected(const pb_store *base)
{
    const pg_store *s = (const pg_store *)base;
    return s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK;
}

static int pg_session(pb_store *base, const pb_session_opts *o, bool try_only,
                      pb_session_info *info, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    char st_ms[24], lk_ms[24], lock_id[24];
    (void)snprintf(st_ms, sizeof(st_ms), "%d",
                   o->statement_timeout_ms > 0 ? o->statement_timeout_ms : 0);
    (void)snprintf(lk_ms, sizeof(lk_ms), "%d", o->lock_timeout_ms > 0 ? o->lock_timeout_ms : 0);
    (void)snprintf(lock_id, sizeof(lock_id), "%" PRId64, o->lock_id);
    PGresult *res = NULL;
    int rc;
    if (try_only) {
        const char *p[1] = {lock_id};
        rc = exec_params(s, "SELECT pg_try_advisory_lock($1::bigint), true, false", 1, p, &res,
                         "try the leader lock", err);
    } else {
        /* Session-level lock: held for as long as this connection lives, released by the
         * server the moment it ends, so a follower's next try wins. The timeouts bound
         * every statement of every pass on this session. JIT is off for this session
         * only: compiling the status statement costs more than it saves (docs/BENCHMARKS.md:
         * at 10k organizations 33 ms of compilation for a 31 ms statement). */
        const char *p[4] = {st_ms, lk_ms, o->leader_lock ? "true" : "false", lock_id};
        rc = exec_params(s,
                         "SELECT CASE WHEN $3::bool THEN pg_try_advisory_lock($4::bigint)"
                         " ELSE true END,"
                         " set_config('statement_timeout', $1, false) IS NOT NULL"
                         " AND set_config('lock_timeout', $2, false) IS NOT NULL"
                         " AND set_config('jit', 'off', false) IS NOT NULL,"
                         " EXISTS (SELECT 1 FROM pg_catalog.pg_trigger"
                         "  WHERE tgname = 'prebuilds_notify_preset_insert')",
                         4, p, &res, "set up session", err);
    }
    if (rc != 0)
        return rc;
    info->leader = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    info->triggers_found = PQntuples(res) == 1 && PQgetvalue(res, 0, 2)[0] == 't';
    PQclear(res);
    if (info->leader && o->listen) {
        if ((rc = exec_params(s, "LISTEN " PB_NOTIFY_CHANNEL, 0, NULL, NULL, "listen", err)) != 0)
            return rc;
        info->listening = true;
    }
    return 0;
}

static int pg_wait_fd(const pb_store *base)
{
    const pg_store *s = (const pg_store *)base;
    return pg_connected(base) ? PQsocket(s->conn) : -1;
}

static int pg_poll(pb_store *base, pb_notify_cb cb, void *arg, pb_err *err)
{
    pg_store *s = (pg_store *)base;
    int rc = ensure_connected(s, err);
    if (rc != 0)
        return rc;
    if (PQconsumeInput(s->conn) != 1 || PQstatus(s->conn) != CONNECTION_OK) {
        rc = conn_error(s, err);
        reset_connection(s);
        return rc;
    }
    PGnotify *n;
    while ((n = PQnotifies(s->conn)) != NULL) {
        if (cb != NULL)
            cb(n->relname, n->extra, arg);
        PQfreemem(n);
    }
    return 0;
}

static void pg_interrupt(pb_store *base)
{
    pg_store *s = (pg_store *)base;
    PGcancel *c = atomic_load(&s->cancel);
    if (c != NULL) {
        char errbuf[256]; /* PQcancel is async-signal-safe; its message is not needed */
        (void)PQcancel(c, errbuf, (int)sizeof(errbuf));
    }
}

static const struct pb_store_vtable pg_vt = {
    .close = pg_close,
    .status = pg_status,
    .apply = pg_apply,
    .init = pg_init,
    .create = pg_create,
    .list = pg_list,
    .remove = pg_remove,
    .find_org = pg_find_org,
    .seed = pg_seed,
    .connect = pg_connect,
    .connected = pg_connected,
    .session = pg_session,
    .wait_fd = pg_wait_fd,
    .poll = pg_poll,
    .interrupt = pg_interrupt,
};

int pb__store_pg_open(const char *conninfo, unsigned flags, pb_store **out, pb_err *err)
{
    pg_store *s = pb__calloc(1, sizeof(*s));
    if (s == NULL)
        return pb__err_set(err, PB_ENOMEM, "connect: out of memory");
    s->base.vt = &pg_vt;
    s->base.backend = PB_BACKEND_PG;
    s->manual = (flags & PB_OPEN_MANUAL) != 0;
    atomic_init(&s->cancel, NULL);
    pb_dburl_redact(conninfo, s->where, sizeof(s->where));
    s->conninfo = pb__strdup(conninfo);
    if (s->conninfo == NULL) {
        pg_close(&s->base);
        return pb__err_set(err, PB_ENOMEM, "connect: out of memory");
    }
    if (s->manual) {
        *out = &s->base; /* pb_store_connect connects */
        return 0;
    }
    const char *vals[8];
    conn_values(s, vals);
    s->conn = PQconnectdbParams(conn_keys, vals, 1);
    if (s->conn == NULL) {
        pg_close(&s->base);
        return pb__err_set(err, PB_ENOMEM, "connect: out of memory");
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        int rc = conn_error(s, err);
        pg_close(&s->base);
        return rc;
    }
    session_started(s);
    *out = &s->base;
    return 0;
}
