-- What is in this database now, in one row: how many of the platform's eight tables exist,
-- whether our migrations table does, the schema, and what `init` may have installed.
SELECT
    (SELECT count(*) FROM unnest(ARRAY['users', 'organizations', 'organization_members',
                                       'groups', 'group_members', 'templates',
                                       'template_versions', 'template_version_presets']) t
     WHERE to_regclass(t) IS NOT NULL) AS n_tables,
    to_regclass('prebuilds_schema_migrations') IS NOT NULL AS own,
    current_schema() AS schema,
    to_regclass('site_configs') IS NOT NULL AS site_configs,
    to_regclass('prebuilds_summary_changes') IS NOT NULL AS summary,
    (SELECT count(*) FROM pg_trigger
     WHERE tgname LIKE 'prebuilds\_notify\_%' AND NOT tgisinternal) AS notify_triggers,
    to_regclass('template_version_presets_prebuilds_idx') IS NOT NULL AS index,
    -- the owners of the tables our triggers go on: exactly one is expected
    (SELECT count(DISTINCT c.relowner) FROM pg_class c
     WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(ARRAY['organizations', 'templates',
                     'template_versions', 'template_version_presets', 'organization_members',
                     'group_members', 'groups', 'users', 'site_configs']) t)) AS n_owners,
    (SELECT string_agg(DISTINCT pg_get_userbyid(c.relowner), ', ') FROM pg_class c
     WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(ARRAY['organizations', 'templates',
                     'template_versions', 'template_version_presets', 'organization_members',
                     'group_members', 'groups', 'users', 'site_configs']) t)) AS owners,
    -- whether this session may become that owner: a superuser, or a member of the role
    (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
      OR coalesce((SELECT pg_has_role(current_user, c.relowner, 'MEMBER') FROM pg_class c
                   WHERE c.oid = to_regclass('template_version_presets')), false) AS can_own,
    -- tables (and views) of anyone else, in any schema but the system's and not an
    -- extension's: init creates its own schema only beside nothing, unless asked
    (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
       AND c.relname NOT LIKE 'prebuilds\_%'
       AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                       AND d.objid = c.oid AND d.deptype = 'e')) AS n_relations,
    (SELECT string_agg(name, ', ') FROM (
       SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
         AND n.nspname NOT IN ('pg_catalog', 'information_schema')
         AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
         AND c.relname NOT LIKE 'prebuilds\_%'
         AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                         AND d.objid = c.oid AND d.deptype = 'e')
       ORDER BY 1 LIMIT 3) t) AS relation_names
