-- Migration 4 (PostgreSQL): the platform's site settings table, where the pause switch lives
-- (key 'prebuilds_settings', JSON {"reconciliation_paused": true|false}); `prebuilds pause`
-- and `prebuilds resume` set it on our own schema.
CREATE TABLE IF NOT EXISTS site_configs (key varchar(256) NOT NULL UNIQUE, value text NOT NULL);
