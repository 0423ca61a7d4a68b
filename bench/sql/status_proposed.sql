SELECT o.id, o.name,
 om.user_id IS NOT NULL,
 g.id,
 gm.user_id IS NOT NULL,
 EXISTS (SELECT 1 FROM users u WHERE u.id = $1::uuid)
 FROM organizations o
 LEFT JOIN organization_members om ON om.organization_id = o.id AND om.user_id = $1::uuid
 LEFT JOIN groups g ON g.organization_id = o.id AND g.name = $2::text
 LEFT JOIN group_members gm ON gm.group_id = g.id AND gm.user_id = $1::uuid
 WHERE NOT o.deleted
 AND o.id IN (SELECT t.organization_id FROM templates t
  WHERE NOT t.deleted AND t.id IN (SELECT tv.template_id FROM template_versions tv
   WHERE tv.id IN (SELECT p.template_version_id FROM template_version_presets p
    WHERE p.desired_instances IS NOT NULL)))
 ORDER BY o.name, o.id
