-- Migration 2 (SQLite): the status statement walks presets by version, and production has no
-- index led by template_version_id, so we add a partial one holding only configured presets.
CREATE INDEX IF NOT EXISTS template_version_presets_prebuilds_idx
    ON template_version_presets (template_version_id) WHERE desired_instances IS NOT NULL;
