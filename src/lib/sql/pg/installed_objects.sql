-- Everything prebuilds may have installed in a database it did not create, in the order to
-- drop it: (kind, name ready to paste into DROP, owner). Names of older designs included.
-- Used by `prebuilds uninstall` and by `init` to report what it finds.
SELECT kind, name, owner FROM (
    SELECT 1 AS ord, 'trigger' AS kind,
           format('%I ON %I.%I', t.tgname, n.nspname, c.relname) AS name,
           pg_get_userbyid(c.relowner)::text AS owner
    FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal AND t.tgname ~ '^prebuilds_(summary|notify|configured)_'
      AND n.nspname = current_schema()
    UNION ALL
    SELECT 2, 'function', p.oid::regprocedure::text, pg_get_userbyid(p.proowner)::text
    FROM pg_proc p
    WHERE p.proname ~ '^prebuilds_(summary|notify|configured)_'
      AND p.pronamespace = current_schema()::regnamespace
    UNION ALL
    SELECT 3, CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END,
           format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner)::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relname IN ('prebuilds_configured_templates', 'prebuilds_summary_changes',
                        'prebuilds_summary_faults')
      AND c.relkind IN ('r', 'S') AND n.nspname = current_schema()
    UNION ALL
    SELECT 4, 'index', format('%I.%I', n.nspname, c.relname), pg_get_userbyid(c.relowner)::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relname = 'template_version_presets_prebuilds_idx' AND c.relkind = 'i'
      AND n.nspname = current_schema()
) o
ORDER BY ord, name
