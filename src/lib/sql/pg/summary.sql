-- The configured-templates summary (PostgreSQL): which templates have, in any version, a
-- preset whose desired_instances is set. `prebuilds init --summary` runs this script in one
-- transaction, as the role that owns the platform's tables; migration 3 runs it on our own
-- schema. It is idempotent: running it again reinstalls this version's objects and recounts.
--
-- Safety beside a live platform:
-- * The triggers only append to prebuilds_summary_changes: no lock on any platform row, no
--   unique index to wait on, no read of another table. The reconciler folds the changes in
--   (recounting just the templates they name) under its own advisory lock.
-- * They never raise. Any error is swallowed after bumping prebuilds_summary_faults (a
--   sequence: the bump survives a rollback), and a summary with faults is not trusted: the
--   status statement then reads the platform's tables until `init --summary` runs again.
-- * They are statement-level with transition tables and name no column in their
--   definitions (no WHEN, no UPDATE OF), so the platform may add, drop, rename or retype any
--   column; their bodies read columns through to_jsonb(), which never fails on a missing one.
-- * The functions are SECURITY DEFINER so that any role writing the platform's tables can
--   append to our log, but they are owned by the owner of those tables (init switches to that
--   role first), so they never run with more rights than the platform already has.
--
-- Runnable by hand: psql -v ON_ERROR_STOP=1 -1 -f summary.sql, as the tables' owner.

-- Objects of the first design (exact counts under advisory locks), if an older build
-- installed them.
DROP TRIGGER IF EXISTS prebuilds_configured_preset_insert ON template_version_presets;
DROP TRIGGER IF EXISTS prebuilds_configured_preset_delete ON template_version_presets;
DROP TRIGGER IF EXISTS prebuilds_configured_preset_update ON template_version_presets;
DROP TRIGGER IF EXISTS prebuilds_configured_version_delete ON template_versions;
DROP TRIGGER IF EXISTS prebuilds_configured_version_update ON template_versions;
DROP FUNCTION IF EXISTS prebuilds_configured_preset();
DROP FUNCTION IF EXISTS prebuilds_configured_version();
DROP FUNCTION IF EXISTS prebuilds_configured_recount(uuid);
DROP FUNCTION IF EXISTS prebuilds_configured_lock(uuid, boolean);
DROP FUNCTION IF EXISTS prebuilds_configured_lock_bucket(integer, boolean);
DROP FUNCTION IF EXISTS prebuilds_configured_bucket(uuid);

-- Each configured template with its organization, so that the status statement finds the
-- organizations without a join to `templates` (a template never moves to another
-- organization; a soft-deleted one is left out when the summary is read). A summary built
-- by an older prebuilds has no organization_id: the column is added here and filled by the
-- recount below; until then the status statement does not read that summary. The column
-- stays nullable so that an older prebuilds still running beside this one (a replica not
-- yet upgraded) can go on folding into it: the status statement looks up the organization
-- of a row that has none.
CREATE TABLE IF NOT EXISTS prebuilds_configured_templates (template_id uuid PRIMARY KEY,
                                                            organization_id uuid);
ALTER TABLE prebuilds_configured_templates ADD COLUMN IF NOT EXISTS organization_id uuid;

-- One row per statement that may have changed whether a version (version_id) or a template
-- (template_id) has a configured preset. No key: appending never waits for anyone.
CREATE TABLE IF NOT EXISTS prebuilds_summary_changes (version_id uuid, template_id uuid);

-- The answer view (below) reads the sequence and the log: it goes first, and comes back last.
DROP VIEW IF EXISTS prebuilds_summary_answer;
DROP SEQUENCE IF EXISTS prebuilds_summary_faults;
CREATE SEQUENCE prebuilds_summary_faults;

-- Presets: the versions whose set of configured presets differs between the rows before and
-- after the statement. A version with a configured preset among the old rows and among the
-- new ones had one before and has one after, so only the symmetric difference can change.
CREATE OR REPLACE FUNCTION prebuilds_summary_presets() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO prebuilds_summary_changes (version_id)
            SELECT DISTINCT (r ->> 'template_version_id')::uuid
            FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
            WHERE r ->> 'desired_instances' IS NOT NULL;
        ELSIF TG_OP = 'DELETE' THEN
            INSERT INTO prebuilds_summary_changes (version_id)
            SELECT DISTINCT (r ->> 'template_version_id')::uuid
            FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
            WHERE r ->> 'desired_instances' IS NOT NULL;
        ELSE
            INSERT INTO prebuilds_summary_changes (version_id)
            SELECT v::uuid FROM (
                (SELECT r ->> 'template_version_id' AS v
                 FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                 WHERE r ->> 'desired_instances' IS NOT NULL
                 EXCEPT
                 SELECT r ->> 'template_version_id'
                 FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                 WHERE r ->> 'desired_instances' IS NOT NULL)
                UNION
                (SELECT r ->> 'template_version_id'
                 FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                 WHERE r ->> 'desired_instances' IS NOT NULL
                 EXCEPT
                 SELECT r ->> 'template_version_id'
                 FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                 WHERE r ->> 'desired_instances' IS NOT NULL)) d
            WHERE v IS NOT NULL;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        BEGIN
            PERFORM nextval('prebuilds_summary_faults');
        EXCEPTION WHEN OTHERS THEN
            NULL; -- the sequence is gone too: the status statement notices that itself
        END;
    END;
    RETURN NULL;
END
$fn$;

-- Versions: the templates a version left or joined (the platform attaches a new template's
-- version with an UPDATE, after its presets exist), and those of deleted versions. A new
-- version has no preset yet, so inserts need nothing.
CREATE OR REPLACE FUNCTION prebuilds_summary_versions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        IF TG_OP = 'DELETE' THEN
            INSERT INTO prebuilds_summary_changes (template_id)
            SELECT DISTINCT (r ->> 'template_id')::uuid
            FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
            WHERE r ->> 'template_id' IS NOT NULL;
        ELSE
            INSERT INTO prebuilds_summary_changes (template_id)
            SELECT DISTINCT t::uuid FROM (
                (SELECT r ->> 'id' AS v, r ->> 'template_id' AS t
                 FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                 EXCEPT
                 SELECT r ->> 'id', r ->> 'template_id'
                 FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x)
                UNION
                (SELECT r ->> 'id', r ->> 'template_id'
                 FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                 EXCEPT
                 SELECT r ->> 'id', r ->> 'template_id'
                 FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x)) d
            WHERE t IS NOT NULL;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        BEGIN
            PERFORM nextval('prebuilds_summary_faults');
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END;
    RETURN NULL;
END
$fn$;

-- Named after the platform's own RI_ConstraintTrigger_* (which sort first), so a version's
-- delete is seen after the cascade removed its presets.
DROP TRIGGER IF EXISTS prebuilds_summary_presets_ins ON template_version_presets;
DROP TRIGGER IF EXISTS prebuilds_summary_presets_upd ON template_version_presets;
DROP TRIGGER IF EXISTS prebuilds_summary_presets_del ON template_version_presets;
DROP TRIGGER IF EXISTS prebuilds_summary_versions_upd ON template_versions;
DROP TRIGGER IF EXISTS prebuilds_summary_versions_del ON template_versions;
CREATE TRIGGER prebuilds_summary_presets_ins AFTER INSERT ON template_version_presets
    REFERENCING NEW TABLE AS prebuilds_new
    FOR EACH STATEMENT EXECUTE FUNCTION prebuilds_summary_presets();
CREATE TRIGGER prebuilds_summary_presets_upd AFTER UPDATE ON template_version_presets
    REFERENCING OLD TABLE AS prebuilds_old NEW TABLE AS prebuilds_new
    FOR EACH STATEMENT EXECUTE FUNCTION prebuilds_summary_presets();
CREATE TRIGGER prebuilds_summary_presets_del AFTER DELETE ON template_version_presets
    REFERENCING OLD TABLE AS prebuilds_old
    FOR EACH STATEMENT EXECUTE FUNCTION prebuilds_summary_presets();
CREATE TRIGGER prebuilds_summary_versions_upd AFTER UPDATE ON template_versions
    REFERENCING OLD TABLE AS prebuilds_old NEW TABLE AS prebuilds_new
    FOR EACH STATEMENT EXECUTE FUNCTION prebuilds_summary_versions();
CREATE TRIGGER prebuilds_summary_versions_del AFTER DELETE ON template_versions
    REFERENCING OLD TABLE AS prebuilds_old
    FOR EACH STATEMENT EXECUTE FUNCTION prebuilds_summary_versions();

-- ALWAYS: they fire in a logical replication subscriber's apply worker too, so a replicated
-- platform database keeps its summary exact.
ALTER TABLE template_version_presets ENABLE ALWAYS TRIGGER prebuilds_summary_presets_ins;
ALTER TABLE template_version_presets ENABLE ALWAYS TRIGGER prebuilds_summary_presets_upd;
ALTER TABLE template_version_presets ENABLE ALWAYS TRIGGER prebuilds_summary_presets_del;
ALTER TABLE template_versions ENABLE ALWAYS TRIGGER prebuilds_summary_versions_upd;
ALTER TABLE template_versions ENABLE ALWAYS TRIGGER prebuilds_summary_versions_del;

-- A fixed search path: this schema for our tables, pg_temp last so no temporary object can
-- stand in for one of them.
DO $do$
BEGIN
    EXECUTE format('ALTER FUNCTION prebuilds_summary_presets() SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION prebuilds_summary_versions() SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
END
$do$;
REVOKE ALL ON FUNCTION prebuilds_summary_presets() FROM PUBLIC;
REVOKE ALL ON FUNCTION prebuilds_summary_versions() FROM PUBLIC;

-- The summary's answer, for the status statement's probe: whether a trigger ever failed,
-- whether changes wait in the log, and the qualifying organizations' ids (16 bytes each,
-- concatenated) with their count. The probe reads this one row through table_to_xml(),
-- which may run beside parallel workers where naming a table that may not exist could not:
-- so the probe scans the platform's tables in parallel when there is no summary, and reads
-- this view when there is one.
-- Nothing here names a platform table in a way PostgreSQL records: the two functions are
-- LANGUAGE sql with their bodies as text, which is parsed when they are called and leaves no
-- dependency behind, so no platform migration ever finds an object of ours in its way. (SQL
-- rather than PL/pgSQL: a session's first call of a PL/pgSQL function loads its library,
-- which every one-shot command would pay.) Their two queries: a summary with an empty
-- log says every organization with a configured template that is not soft-deleted (a row
-- folded in by an older prebuilds has no organization: it is looked up); with a log, the
-- templates it names are left out and recounted from the presets (the same answer as
-- SUMMARY_ORGS_TRUSTED of the native summary form in src/lib/pg/pass.c: keep the two in
-- step). The view calls one of them, never both. The functions run with their caller's
-- rights; on PostgreSQL 15 and later so does the view (security_invoker): none of them lends
-- anyone a right. Before 15 the view reads our log and sequence as their owner, and nothing
-- else.
DROP FUNCTION IF EXISTS prebuilds_summary_ids(boolean); -- the PL/pgSQL one of an earlier build
-- the UNION with nothing dedupes by hashing (a DISTINCT here was sorted)
CREATE OR REPLACE FUNCTION prebuilds_summary_ids_clean(OUT orgs bytea, OUT n bigint)
LANGUAGE sql STABLE AS $q$
SELECT string_agg(uuid_send(id), ''::bytea), count(id) FROM (
 SELECT t.organization_id FROM (SELECT c.template_id, coalesce(c.organization_id,
 (SELECT d.organization_id FROM templates d WHERE d.id = c.template_id)) AS organization_id
 FROM prebuilds_configured_templates c) t
 WHERE t.template_id NOT IN (SELECT d.id FROM templates d WHERE d.deleted)
 UNION SELECT NULL::uuid WHERE false) q(id)
$q$;
CREATE OR REPLACE FUNCTION prebuilds_summary_ids_pending(OUT orgs bytea, OUT n bigint)
LANGUAGE sql STABLE AS $q$
WITH changed AS MATERIALIZED (SELECT tv.template_id
 FROM prebuilds_summary_changes c JOIN template_versions tv ON tv.id = c.version_id
 WHERE tv.template_id IS NOT NULL UNION SELECT c.template_id FROM prebuilds_summary_changes c
 WHERE c.template_id IS NOT NULL)
SELECT string_agg(uuid_send(id), ''::bytea), count(id) FROM (
 SELECT t.organization_id FROM (SELECT c.template_id, coalesce(c.organization_id,
 (SELECT d.organization_id FROM templates d WHERE d.id = c.template_id)) AS organization_id
 FROM prebuilds_configured_templates c) t
 WHERE t.template_id NOT IN (SELECT template_id FROM changed UNION ALL
 SELECT d.id FROM templates d WHERE d.deleted)
 UNION SELECT t.organization_id FROM templates t WHERE NOT t.deleted AND t.id IN
 (SELECT tv.template_id FROM template_version_presets p JOIN template_versions tv
 ON tv.id = p.template_version_id WHERE p.desired_instances IS NOT NULL
 AND tv.template_id IN (SELECT template_id FROM changed))) q(id)
$q$;
DO $do$
BEGIN
    EXECUTE format('ALTER FUNCTION prebuilds_summary_ids_clean() SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION prebuilds_summary_ids_pending() SET search_path = pg_catalog, %I, pg_temp',
                   current_schema());
    EXECUTE 'CREATE VIEW prebuilds_summary_answer'
        || CASE WHEN current_setting('server_version_num')::int >= 150000
                THEN ' WITH (security_invoker = true)' ELSE '' END
        || $view$ AS
SELECT f.faulted, f.pending, a.orgs, a.n
FROM (SELECT (SELECT is_called FROM prebuilds_summary_faults) AS faulted,
             EXISTS (SELECT 1 FROM prebuilds_summary_changes) AS pending) f
LEFT JOIN LATERAL (SELECT * FROM prebuilds_summary_ids_clean() WHERE NOT f.faulted AND NOT f.pending
                   UNION ALL
                   SELECT * FROM prebuilds_summary_ids_pending() WHERE NOT f.faulted AND f.pending) a
    ON true
$view$;
END
$do$;
REVOKE ALL ON prebuilds_summary_answer FROM PUBLIC;
-- Whoever may read the summary may read its answer: a reinstall (this script drops the view
-- and creates it again) or an upgrade from a summary without the view keeps the grants
-- operators gave on the summary's table.
DO $do$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = 'prebuilds_configured_templates'::regclass
               AND a.privilege_type = 'SELECT' AND a.grantee <> c.relowner LOOP
        IF r.grantee = 0 THEN
            EXECUTE 'GRANT SELECT ON prebuilds_summary_answer TO PUBLIC';
        ELSE
            EXECUTE format('GRANT SELECT ON prebuilds_summary_answer TO %I',
                           pg_get_userbyid(r.grantee));
        END IF;
    END LOOP;
END
$do$;

-- The recount, while writes to the two tables wait (reads go on): every change committed
-- before is counted here, every later one lands in the changes log.
LOCK TABLE template_versions, template_version_presets IN SHARE ROW EXCLUSIVE MODE;
DELETE FROM prebuilds_summary_changes;
DELETE FROM prebuilds_configured_templates;
INSERT INTO prebuilds_configured_templates (template_id, organization_id)
SELECT DISTINCT tv.template_id, t.organization_id
FROM template_version_presets p JOIN template_versions tv ON tv.id = p.template_version_id
JOIN templates t ON t.id = tv.template_id
WHERE p.desired_instances IS NOT NULL;
