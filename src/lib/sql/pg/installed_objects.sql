-- Everything prebuilds may have installed in a database it did not create, in the order to
-- drop it: (kind, name ready to paste into DROP, owner). Every trigger, view, function, table
-- and sequence named prebuilds_*, so objects of older designs go too.
-- Used by `prebuilds uninstall` and by `init` to report what it finds.
SELECT kind, name, owner FROM (
    SELECT 1 AS ord, 'trigger' AS kind,
           format('%I ON %I.%I', t.tgname, n.nspname, c.relname) AS name,
           pg_get_userbyid(c.relowner)::text AS owner
    FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal AND t.tgname LIKE 'prebuilds\_%'
      AND n.nspname = current_schema()
    UNION ALL
    SELECT 2, 'view', format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner)::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relname LIKE 'prebuilds\_%' AND c.relkind = 'v' AND n.nspname = current_schema()
    UNION ALL
    SELECT 3, 'function', p.oid::regprocedure::text, pg_get_userbyid(p.proowner)::text
    FROM pg_proc p
    WHERE p.proname LIKE 'prebuilds\_%'
      AND p.pronamespace = current_schema()::regnamespace
    UNION ALL
    SELECT 4, CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END,
           format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner)::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relname LIKE 'prebuilds\_%' AND c.relname <> 'prebuilds_schema_migrations'
      AND c.relkind IN ('r', 'S') AND n.nspname = current_schema()
    UNION ALL
    SELECT 5, 'index', format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner)::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relname = 'template_version_presets_prebuilds_idx' AND c.relkind = 'i'
      AND n.nspname = current_schema()
) o
ORDER BY ord, name
