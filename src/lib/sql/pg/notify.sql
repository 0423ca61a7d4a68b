-- Notify triggers (PostgreSQL), installed by `prebuilds init --triggers`: they tell a
-- `prebuilds run --listen` daemon, on channel prebuilds_reconcile, which organization may
-- have started to need a row, so it repairs at once instead of at its next full pass. The
-- payload is an organization id, or '*' when every organization may be concerned (the
-- prebuilds user came back, the pause switch changed).
--
-- The same rules as the summary's triggers: statement-level with transition tables, no
-- column named in a definition (the platform's migrations never meet them), columns read
-- through to_jsonb(), every error swallowed (a lost notification only means the next full
-- pass repairs), owned by the platform tables' owner, fixed search path.
--
-- The prebuilds user id and group name are trigger arguments. Runnable by hand, as the
-- tables' owner, with the two settings the script reads:
--   PGOPTIONS='-c prebuilds.user_id=UUID -c prebuilds.group_name=NAME' \
--     psql -v ON_ERROR_STOP=1 -1 -f notify.sql

-- Objects of the first design (row triggers with WHEN clauses), if an older build left them.
DROP TRIGGER IF EXISTS prebuilds_notify_preset_insert ON template_version_presets;
DROP TRIGGER IF EXISTS prebuilds_notify_preset_update ON template_version_presets;
DROP TRIGGER IF EXISTS prebuilds_notify_member_delete ON organization_members;
DROP TRIGGER IF EXISTS prebuilds_notify_member_update ON organization_members;
DROP TRIGGER IF EXISTS prebuilds_notify_group_member_delete ON group_members;
DROP TRIGGER IF EXISTS prebuilds_notify_group_delete ON groups;
DROP TRIGGER IF EXISTS prebuilds_notify_group_update ON groups;
DROP FUNCTION IF EXISTS prebuilds_notify_preset();
DROP FUNCTION IF EXISTS prebuilds_notify_old_org();
DROP FUNCTION IF EXISTS prebuilds_notify_group_member();

-- A preset became configured (or moved to another version) in a version that belongs to a
-- template: that version's organization.
CREATE OR REPLACE FUNCTION prebuilds_notify_presets() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM pg_notify('prebuilds_reconcile', tv.organization_id::text)
            FROM (SELECT DISTINCT r ->> 'template_version_id' AS v
                  FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                  WHERE r ->> 'desired_instances' IS NOT NULL) c
            JOIN template_versions tv ON tv.id = c.v::uuid
            WHERE tv.template_id IS NOT NULL;
        ELSE
            PERFORM pg_notify('prebuilds_reconcile', tv.organization_id::text)
            FROM (SELECT r ->> 'template_version_id' AS v
                  FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                  WHERE r ->> 'desired_instances' IS NOT NULL
                  EXCEPT
                  SELECT r ->> 'template_version_id'
                  FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                  WHERE r ->> 'desired_instances' IS NOT NULL) c
            JOIN template_versions tv ON tv.id = c.v::uuid
            WHERE tv.template_id IS NOT NULL;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END
$fn$;

-- A version was attached to a template (the platform's new-template flow) or moved.
CREATE OR REPLACE FUNCTION prebuilds_notify_versions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        PERFORM pg_notify('prebuilds_reconcile', d.org)
        FROM (SELECT DISTINCT org FROM (
                  SELECT r ->> 'id' AS v, r ->> 'template_id' AS t, r ->> 'organization_id' AS org
                  FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                  EXCEPT
                  SELECT r ->> 'id', r ->> 'template_id', r ->> 'organization_id'
                  FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x) e
              WHERE t IS NOT NULL AND org IS NOT NULL) d;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END
$fn$;

-- A template restored (deleted back to false) or moved to another organization.
CREATE OR REPLACE FUNCTION prebuilds_notify_templates() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        PERFORM pg_notify('prebuilds_reconcile', d.org)
        FROM (SELECT DISTINCT org FROM (
                  SELECT r ->> 'id' AS id, r ->> 'organization_id' AS org
                  FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                  WHERE (r ->> 'deleted') IS DISTINCT FROM 'true'
                  EXCEPT
                  SELECT r ->> 'id', r ->> 'organization_id'
                  FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                  WHERE (r ->> 'deleted') IS DISTINCT FROM 'true') e
              WHERE org IS NOT NULL) d;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END
$fn$;

-- An organization restored.
CREATE OR REPLACE FUNCTION prebuilds_notify_organizations() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        PERFORM pg_notify('prebuilds_reconcile', d.id)
        FROM (SELECT r ->> 'id' AS id
              FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
              WHERE (r ->> 'deleted') IS DISTINCT FROM 'true'
              EXCEPT
              SELECT r ->> 'id'
              FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
              WHERE (r ->> 'deleted') IS DISTINCT FROM 'true') d
        WHERE d.id IS NOT NULL;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END
$fn$;

-- The prebuilds user (TG_ARGV[0]) left an organization.
CREATE OR REPLACE FUNCTION prebuilds_notify_members() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('prebuilds_reconcile', d.org)
            FROM (SELECT DISTINCT r ->> 'organization_id' AS org
                  FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                  WHERE r ->> 'user_id' = TG_ARGV[0]) d
            WHERE d.org IS NOT NULL;
        ELSE
            PERFORM pg_notify('prebuilds_reconcile', d.org)
            FROM (SELECT r ->> 'organization_id' AS org
                  FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                  WHERE r ->> 'user_id' = TG_ARGV[0]
                  EXCEPT
                  SELECT r ->> 'organization_id'
                  FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                  WHERE r ->> 'user_id' = TG_ARGV[0]) d
            WHERE d.org IS NOT NULL;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END
$fn$;

-- The prebuilds user left a group named TG_ARGV[1].
CREATE OR REPLACE FUNCTION prebuilds_notify_group_members() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('prebuilds_reconcile', g.organization_id::text)
            FROM (SELECT DISTINCT r ->> 'group_id' AS gid
                  FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                  WHERE r ->> 'user_id' = TG_ARGV[0]) d
            JOIN groups g ON g.id = d.gid::uuid
            WHERE g.name = TG_ARGV[1];
        ELSE
            PERFORM pg_notify('prebuilds_reconcile', g.organization_id::text)
            FROM (SELECT r ->> 'group_id' AS gid
                  FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                  WHERE r ->> 'user_id' = TG_ARGV[0]
                  EXCEPT
                  SELECT r ->> 'group_id'
                  FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                  WHERE r ->> 'user_id' = TG_ARGV[0]) d
            JOIN groups g ON g.id = d.gid::uuid
            WHERE g.name = TG_ARGV[1];
        END IF;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END
$fn$;

-- The prebuilds group (named TG_ARGV[1]) was deleted, renamed or moved.
CREATE OR REPLACE FUNCTION prebuilds_notify_groups() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        IF TG_OP = 'DELETE' THEN
            PERFORM pg_notify('prebuilds_reconcile', d.org)
            FROM (SELECT DISTINCT r ->> 'organization_id' AS org
                  FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                  WHERE r ->> 'name' = TG_ARGV[1]) d
            WHERE d.org IS NOT NULL;
        ELSE
            PERFORM pg_notify('prebuilds_reconcile', d.org)
            FROM (SELECT DISTINCT org FROM (
                      SELECT r ->> 'id' AS id, r ->> 'organization_id' AS org
                      FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                      WHERE r ->> 'name' = TG_ARGV[1]
                      EXCEPT
                      SELECT r ->> 'id', r ->> 'organization_id'
                      FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                      WHERE r ->> 'name' = TG_ARGV[1]) e
                  WHERE org IS NOT NULL) d;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END
$fn$;

-- The prebuilds user appeared or was restored after a soft delete: every organization.
CREATE OR REPLACE FUNCTION prebuilds_notify_users() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        IF TG_OP = 'INSERT' THEN
            PERFORM pg_notify('prebuilds_reconcile', '*')
            FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
            WHERE r ->> 'id' = TG_ARGV[0] AND (r ->> 'deleted') IS DISTINCT FROM 'true'
            LIMIT 1;
        ELSE
            PERFORM pg_notify('prebuilds_reconcile', '*')
            FROM (SELECT r ->> 'id' AS id
                  FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
                  WHERE r ->> 'id' = TG_ARGV[0] AND (r ->> 'deleted') IS DISTINCT FROM 'true'
                  EXCEPT
                  SELECT r ->> 'id'
                  FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
                  WHERE r ->> 'id' = TG_ARGV[0] AND (r ->> 'deleted') IS DISTINCT FROM 'true') d
            LIMIT 1;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END
$fn$;

-- The platform's pause switch changed: every organization (paused or resumed).
CREATE OR REPLACE FUNCTION prebuilds_notify_site_configs() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
BEGIN
    BEGIN
        IF TG_OP <> 'DELETE' THEN
            PERFORM pg_notify('prebuilds_reconcile', '*')
            FROM (SELECT to_jsonb(n) AS r FROM prebuilds_new n) x
            WHERE r ->> 'key' = 'prebuilds_settings' LIMIT 1;
        END IF;
        IF TG_OP <> 'INSERT' THEN
            PERFORM pg_notify('prebuilds_reconcile', '*')
            FROM (SELECT to_jsonb(o) AS r FROM prebuilds_old o) x
            WHERE r ->> 'key' = 'prebuilds_settings' LIMIT 1;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    RETURN NULL;
END
$fn$;

-- The triggers, with this installation's user id and group name as arguments (quoted by
-- format's %L), and the fixed search path of every function.
DO $do$
DECLARE
    user_id text := current_setting('prebuilds.user_id');
    group_name text := current_setting('prebuilds.group_name');
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('organizations', 'upd', 'UPDATE', 'organizations'),
        ('templates', 'upd', 'UPDATE', 'templates'),
        ('template_versions', 'upd', 'UPDATE', 'versions'),
        ('template_version_presets', 'ins', 'INSERT', 'presets'),
        ('template_version_presets', 'upd', 'UPDATE', 'presets'),
        ('organization_members', 'upd', 'UPDATE', 'members'),
        ('organization_members', 'del', 'DELETE', 'members'),
        ('group_members', 'upd', 'UPDATE', 'group_members'),
        ('group_members', 'del', 'DELETE', 'group_members'),
        ('groups', 'upd', 'UPDATE', 'groups'),
        ('groups', 'del', 'DELETE', 'groups'),
        ('users', 'ins', 'INSERT', 'users'),
        ('users', 'upd', 'UPDATE', 'users'),
        ('site_configs', 'ins', 'INSERT', 'site_configs'),
        ('site_configs', 'upd', 'UPDATE', 'site_configs'),
        ('site_configs', 'del', 'DELETE', 'site_configs')) AS v (tbl, suffix, event, fn)
    LOOP
        -- site_configs is optional: an older platform schema may not have it.
        CONTINUE WHEN to_regclass(t.tbl) IS NULL;
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I',
                       'prebuilds_notify_' || t.tbl || '_' || t.suffix, t.tbl);
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I REFERENCING %s'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION %I(%L, %L)',
                       'prebuilds_notify_' || t.tbl || '_' || t.suffix, t.event, t.tbl,
                       CASE t.event WHEN 'INSERT' THEN 'NEW TABLE AS prebuilds_new'
                                    WHEN 'DELETE' THEN 'OLD TABLE AS prebuilds_old'
                                    ELSE 'OLD TABLE AS prebuilds_old NEW TABLE AS prebuilds_new' END,
                       'prebuilds_notify_' || t.fn, user_id, group_name);
    END LOOP;
    FOR t IN SELECT p.oid::regprocedure AS f FROM pg_proc p
             WHERE p.proname LIKE 'prebuilds\_notify\_%' AND p.pronamespace = current_schema()::regnamespace
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', t.f,
                       current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', t.f);
    END LOOP;
END
$do$;
