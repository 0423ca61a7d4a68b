SELECT o.id, o.name,
 EXISTS (SELECT 1 FROM organization_members om
  WHERE om.organization_id = o.id AND om.user_id = $1::uuid),
 g.id,
 g.id IS NOT NULL AND EXISTS (SELECT 1 FROM group_members gm
  WHERE gm.group_id = g.id AND gm.user_id = $1::uuid),
 EXISTS (SELECT 1 FROM users u WHERE u.id = $1::uuid),
 (SELECT coalesce(has_table_privilege(to_regclass('prebuilds_configured_templates'), 'SELECT'), false)
 AND (SELECT count(*) FROM pg_trigger WHERE tgrelid IN
 (to_regclass('template_versions'), to_regclass('template_version_presets'))
 AND tgname LIKE 'prebuilds\_configured\_%' AND tgenabled <> 'D') = 5)
 FROM organizations o
 LEFT JOIN groups g ON g.organization_id = o.id AND g.name = $2::text
 WHERE NOT o.deleted
 AND EXISTS (SELECT 1 FROM templates t
  JOIN template_versions tv ON tv.template_id = t.id
  JOIN template_version_presets p ON p.template_version_id = tv.id
  WHERE t.organization_id = o.id AND NOT t.deleted AND p.desired_instances IS NOT NULL)
 ORDER BY o.name, o.id
