-- The recommended index on a platform's database (`prebuilds init --recommended-indexes`):
-- built CONCURRENTLY, so the platform keeps writing while it is built (the same index as
-- our migration 2).
CREATE INDEX CONCURRENTLY IF NOT EXISTS template_version_presets_prebuilds_idx
    ON template_version_presets (template_version_id) WHERE desired_instances IS NOT NULL
