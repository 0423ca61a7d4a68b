-- Migration 4 (SQLite): the platform's site settings table, where the pause switch lives
-- (key 'prebuilds_settings', JSON {"reconciliation_paused": true|false}); `prebuilds pause`
-- and `prebuilds resume` set it on our own schema.
CREATE TABLE IF NOT EXISTS site_configs (key TEXT NOT NULL UNIQUE, value TEXT NOT NULL);
