-- Migration 1 (PostgreSQL): the platform's tables with production's names, columns and
-- types, as far as the reconciler reads or writes them, including the trigger that removes a
-- member leaving an organization from its groups.
CREATE TYPE login_type AS ENUM ('password', 'github', 'oidc', 'token', 'none');
CREATE TYPE user_status AS ENUM ('active', 'dormant', 'suspended');
CREATE TYPE group_source AS ENUM ('user', 'oidc');
CREATE TYPE provisioner_type AS ENUM ('echo', 'terraform');
CREATE TABLE users (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    username text NOT NULL DEFAULT '' CHECK (username <> ''),
    hashed_password bytea NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    status user_status NOT NULL DEFAULT 'dormant',
    rbac_roles text[] NOT NULL DEFAULT '{}',
    login_type login_type NOT NULL DEFAULT 'password',
    avatar_url text NOT NULL DEFAULT '',
    deleted boolean NOT NULL DEFAULT false,
    name text NOT NULL DEFAULT '',
    is_system boolean NOT NULL DEFAULT false);
CREATE TABLE organizations (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    description text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    is_default boolean NOT NULL DEFAULT false,
    display_name text NOT NULL,
    icon text NOT NULL DEFAULT '',
    deleted boolean NOT NULL DEFAULT false);
CREATE UNIQUE INDEX organizations_single_default_org ON organizations (is_default) WHERE is_default = true;
CREATE UNIQUE INDEX idx_organization_name_lower ON organizations (lower(name)) WHERE deleted = false;
CREATE TABLE organization_members (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    roles text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (organization_id, user_id));
CREATE INDEX idx_organization_member_organization_id_uuid ON organization_members (organization_id);
CREATE INDEX idx_organization_member_user_id_uuid ON organization_members (user_id);
CREATE TABLE groups (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    avatar_url text NOT NULL DEFAULT '',
    quota_allowance integer NOT NULL DEFAULT 0,
    display_name text NOT NULL DEFAULT '',
    source group_source NOT NULL DEFAULT 'user',
    UNIQUE (name, organization_id));
CREATE TABLE group_members (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    UNIQUE (user_id, group_id));
CREATE FUNCTION delete_group_members_on_org_member_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM group_members WHERE user_id = OLD.user_id AND group_id IN (SELECT id FROM groups WHERE organization_id = OLD.organization_id);
 RETURN OLD;
 END;
 $$;
CREATE TRIGGER trigger_delete_group_members_on_org_member_delete BEFORE DELETE ON organization_members FOR EACH ROW EXECUTE FUNCTION delete_group_members_on_org_member_delete();
CREATE TABLE templates (
    id uuid PRIMARY KEY,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    deleted boolean NOT NULL DEFAULT false,
    name varchar(64) NOT NULL,
    provisioner provisioner_type NOT NULL,
    active_version_id uuid NOT NULL,
    description varchar(128) NOT NULL DEFAULT '',
    created_by uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT);
CREATE UNIQUE INDEX idx_templates_name_lower ON templates (organization_id, lower(name)) WHERE deleted = false;
CREATE TABLE template_versions (
    id uuid PRIMARY KEY,
    template_id uuid REFERENCES templates (id) ON DELETE CASCADE,
    organization_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    name varchar(64) NOT NULL,
    readme varchar NOT NULL,
    job_id uuid NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    archived boolean NOT NULL DEFAULT false,
    UNIQUE (template_id, name));
CREATE TABLE template_version_presets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    template_version_id uuid NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    desired_instances integer,
    UNIQUE (name, template_version_id));
