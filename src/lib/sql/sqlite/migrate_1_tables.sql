-- Migration 1 (SQLite): the platform's tables column for column, as on PostgreSQL: uuids
-- as lowercase text, booleans 0/1, ISO-8601 UTC text times, arrays as JSON text.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    username TEXT NOT NULL DEFAULT '' CHECK (username <> ''),
    hashed_password BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'dormant' CHECK (status IN ('active', 'dormant', 'suspended')),
    rbac_roles TEXT NOT NULL DEFAULT '[]',
    login_type TEXT NOT NULL DEFAULT 'password',
    avatar_url TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    name TEXT NOT NULL DEFAULT '',
    is_system INTEGER NOT NULL DEFAULT 0 CHECK (is_system IN (0, 1)));
CREATE TABLE organizations (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    display_name TEXT NOT NULL,
    icon TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)));
CREATE UNIQUE INDEX organizations_single_default_org ON organizations (is_default) WHERE is_default = 1;
CREATE UNIQUE INDEX idx_organization_name_lower ON organizations (lower(name)) WHERE deleted = 0;
CREATE TABLE organization_members (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    roles TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (organization_id, user_id));
CREATE INDEX idx_organization_member_organization_id_uuid ON organization_members (organization_id);
CREATE INDEX idx_organization_member_user_id_uuid ON organization_members (user_id);
CREATE TABLE groups (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    avatar_url TEXT NOT NULL DEFAULT '',
    quota_allowance INTEGER NOT NULL DEFAULT 0,
    display_name TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT 'user' CHECK (source IN ('user', 'oidc')),
    UNIQUE (name, organization_id));
CREATE TABLE group_members (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    UNIQUE (user_id, group_id));
CREATE TRIGGER trigger_delete_group_members_on_org_member_delete BEFORE DELETE ON organization_members BEGIN DELETE FROM group_members WHERE user_id = OLD.user_id AND group_id IN (SELECT id FROM groups WHERE organization_id = OLD.organization_id);
 END;
CREATE TABLE templates (
    id TEXT PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
    name TEXT NOT NULL,
    provisioner TEXT NOT NULL,
    active_version_id TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT);
CREATE UNIQUE INDEX idx_templates_name_lower ON templates (organization_id, lower(name)) WHERE deleted = 0;
CREATE TABLE template_versions (
    id TEXT PRIMARY KEY NOT NULL,
    template_id TEXT REFERENCES templates (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    name TEXT NOT NULL,
    readme TEXT NOT NULL,
    job_id TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    archived INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
    UNIQUE (template_id, name));
CREATE TABLE template_version_presets (
    id TEXT PRIMARY KEY NOT NULL DEFAULT (lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))),
    template_version_id TEXT NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    desired_instances INTEGER,
    UNIQUE (name, template_version_id));
