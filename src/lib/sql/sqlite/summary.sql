-- The configured-templates summary (SQLite): which templates have a configured preset in
-- any version. SQLite has one writer at a time, so each trigger simply recounts the
-- templates its row may have changed. Migration 3 runs this script and `prebuilds init
-- --summary` runs it again (it replaces the triggers and recounts), in one transaction.
-- Runnable by hand: sqlite3 prebuilds.db < summary.sql

CREATE TABLE IF NOT EXISTS prebuilds_configured_templates (template_id TEXT PRIMARY KEY NOT NULL)
    WITHOUT ROWID;

DROP TRIGGER IF EXISTS prebuilds_configured_preset_insert;
CREATE TRIGGER prebuilds_configured_preset_insert
AFTER INSERT ON template_version_presets WHEN NEW.desired_instances IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO prebuilds_configured_templates (template_id) SELECT (SELECT template_id FROM template_versions WHERE id = NEW.template_version_id)
        WHERE (SELECT template_id FROM template_versions WHERE id = NEW.template_version_id) IS NOT NULL AND EXISTS (SELECT 1 FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id WHERE tv.template_id = (SELECT template_id FROM template_versions WHERE id = NEW.template_version_id) AND p.desired_instances IS NOT NULL);
END;

DROP TRIGGER IF EXISTS prebuilds_configured_preset_delete;
CREATE TRIGGER prebuilds_configured_preset_delete
AFTER DELETE ON template_version_presets WHEN OLD.desired_instances IS NOT NULL
BEGIN
    DELETE FROM prebuilds_configured_templates WHERE template_id = (SELECT template_id FROM template_versions WHERE id = OLD.template_version_id)
        AND NOT EXISTS (SELECT 1 FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id WHERE tv.template_id = (SELECT template_id FROM template_versions WHERE id = OLD.template_version_id) AND p.desired_instances IS NOT NULL);
END;

DROP TRIGGER IF EXISTS prebuilds_configured_preset_update;
CREATE TRIGGER prebuilds_configured_preset_update
AFTER UPDATE OF desired_instances, template_version_id ON template_version_presets
WHEN (OLD.desired_instances IS NULL) <> (NEW.desired_instances IS NULL)
    OR (NEW.desired_instances IS NOT NULL AND OLD.template_version_id IS NOT NEW.template_version_id)
BEGIN
    DELETE FROM prebuilds_configured_templates WHERE template_id = (SELECT template_id FROM template_versions WHERE id = OLD.template_version_id)
        AND NOT EXISTS (SELECT 1 FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id WHERE tv.template_id = (SELECT template_id FROM template_versions WHERE id = OLD.template_version_id) AND p.desired_instances IS NOT NULL);
    INSERT OR IGNORE INTO prebuilds_configured_templates (template_id) SELECT (SELECT template_id FROM template_versions WHERE id = NEW.template_version_id)
        WHERE (SELECT template_id FROM template_versions WHERE id = NEW.template_version_id) IS NOT NULL AND EXISTS (SELECT 1 FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id WHERE tv.template_id = (SELECT template_id FROM template_versions WHERE id = NEW.template_version_id) AND p.desired_instances IS NOT NULL);
END;

DROP TRIGGER IF EXISTS prebuilds_configured_version_insert;
CREATE TRIGGER prebuilds_configured_version_insert
AFTER INSERT ON template_versions WHEN NEW.template_id IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO prebuilds_configured_templates (template_id) SELECT NEW.template_id
        WHERE NEW.template_id IS NOT NULL AND EXISTS (SELECT 1 FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id WHERE tv.template_id = NEW.template_id AND p.desired_instances IS NOT NULL);
END;

DROP TRIGGER IF EXISTS prebuilds_configured_version_delete;
CREATE TRIGGER prebuilds_configured_version_delete
AFTER DELETE ON template_versions WHEN OLD.template_id IS NOT NULL
BEGIN
    DELETE FROM prebuilds_configured_templates WHERE template_id = OLD.template_id
        AND NOT EXISTS (SELECT 1 FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id WHERE tv.template_id = OLD.template_id AND p.desired_instances IS NOT NULL);
END;

DROP TRIGGER IF EXISTS prebuilds_configured_version_update;
CREATE TRIGGER prebuilds_configured_version_update
AFTER UPDATE OF id, template_id ON template_versions
WHEN OLD.template_id IS NOT NEW.template_id OR OLD.id IS NOT NEW.id
BEGIN
    DELETE FROM prebuilds_configured_templates WHERE template_id = OLD.template_id
        AND NOT EXISTS (SELECT 1 FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id WHERE tv.template_id = OLD.template_id AND p.desired_instances IS NOT NULL);
    INSERT OR IGNORE INTO prebuilds_configured_templates (template_id) SELECT NEW.template_id
        WHERE NEW.template_id IS NOT NULL AND EXISTS (SELECT 1 FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id WHERE tv.template_id = NEW.template_id AND p.desired_instances IS NOT NULL);
END;

-- The recount.
DELETE FROM prebuilds_configured_templates;
INSERT INTO prebuilds_configured_templates (template_id)
SELECT DISTINCT tv.template_id
FROM template_versions tv JOIN template_version_presets p ON p.template_version_id = tv.id
WHERE p.desired_instances IS NOT NULL AND tv.template_id IS NOT NULL;
