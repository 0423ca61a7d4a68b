-- Migration 2 (PostgreSQL): the partial index of configured presets by version, which
-- production lacks (its only index led by template_version_id is a partial one on
-- is_default). On a database we did not create, `init --recommended-indexes` builds the same
-- index CONCURRENTLY instead.
CREATE INDEX IF NOT EXISTS template_version_presets_prebuilds_idx
    ON template_version_presets (template_version_id) WHERE desired_instances IS NOT NULL;
