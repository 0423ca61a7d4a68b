SELECT o.id, o.name,
 EXISTS (SELECT 1 FROM organization_members om
  WHERE om.organization_id = o.id AND om.user_id = $1::uuid),
 g.id,
 g.id IS NOT NULL AND EXISTS (SELECT 1 FROM group_members gm
  WHERE gm.group_id = g.id AND gm.user_id = $1::uuid),
 EXISTS (SELECT 1 FROM users u WHERE u.id = $1::uuid)
 FROM organizations o
 LEFT JOIN groups g ON g.organization_id = o.id AND g.name = $2::text
 WHERE NOT o.deleted
 AND EXISTS (SELECT 1 FROM prebuilds_configured_templates c JOIN templates t ON t.id = c.template_id
  WHERE t.organization_id = o.id AND NOT t.deleted)
 ORDER BY o.name, o.id
