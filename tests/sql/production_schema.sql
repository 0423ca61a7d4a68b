-- Stand-in for the production Coder database, written from the production-schema facts in
-- DOMAIN.md: extra NOT NULL columns, partial unique indexes and triggers the reconciler did not
-- create, so integration tests show it copes with a schema it merely finds. Empty DB only.

BEGIN;

-- ---------------------------------------------------------------- enum types

CREATE TYPE login_type AS ENUM ('password', 'github', 'oidc', 'token', 'none');
CREATE TYPE user_status AS ENUM ('active', 'dormant', 'suspended');
CREATE TYPE group_source AS ENUM ('user', 'oidc');
CREATE TYPE provisioner_type AS ENUM ('echo', 'terraform');

-- ---------------------------------------------------------------- migration bookkeeping

-- golang-migrate keeps exactly one row here: the last applied version and a dirty flag.
CREATE TABLE schema_migrations (
    version bigint  NOT NULL PRIMARY KEY,
    dirty   boolean NOT NULL
);
INSERT INTO schema_migrations (version, dirty) VALUES (300, false);

-- ---------------------------------------------------------------- users

CREATE TABLE users (
    id              uuid        NOT NULL PRIMARY KEY,
    email           text        NOT NULL,
    username        text        NOT NULL DEFAULT '' CHECK (username <> ''),
    hashed_password bytea       NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    status          user_status NOT NULL DEFAULT 'dormant',
    rbac_roles      text[]      NOT NULL DEFAULT '{}',
    login_type      login_type  NOT NULL DEFAULT 'password',
    avatar_url      text        NOT NULL DEFAULT '',
    deleted         boolean     NOT NULL DEFAULT false,
    last_seen_at    timestamp   NOT NULL DEFAULT '0001-01-01 00:00:00',
    name            text        NOT NULL DEFAULT '',
    is_system       boolean     NOT NULL DEFAULT false
);

-- Live accounts have unique e-mail addresses and usernames, ignoring case.
CREATE UNIQUE INDEX users_email_lower_idx ON users (lower(email)) WHERE deleted = false;
CREATE UNIQUE INDEX users_username_lower_idx ON users (lower(username)) WHERE deleted = false;

-- ---------------------------------------------------------------- organizations

CREATE TABLE organizations (
    id           uuid        NOT NULL PRIMARY KEY,
    name         text        NOT NULL,
    description  text        NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    is_default   boolean     NOT NULL DEFAULT false,
    display_name text        NOT NULL,
    icon         text        NOT NULL DEFAULT '',
    deleted      boolean     NOT NULL DEFAULT false
);

-- At most one organization may be flagged as the default one.
CREATE UNIQUE INDEX organizations_single_default_org ON organizations (is_default)
    WHERE is_default = true;
-- Names of organizations that are not deleted collide case-insensitively.
CREATE UNIQUE INDEX idx_organization_name_lower ON organizations (lower(name))
    WHERE deleted = false;

-- Per-organization built-in roles. Rows appear here by trigger whenever an organization is
-- created, so anything that inserts organizations also writes this table.
CREATE TABLE custom_roles (
    id               uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    name             text        NOT NULL,
    display_name     text        NOT NULL,
    site_permissions jsonb       NOT NULL DEFAULT '[]',
    org_permissions  jsonb       NOT NULL DEFAULT '[]',
    user_permissions jsonb       NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    organization_id  uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    is_system        boolean     NOT NULL DEFAULT false,
    UNIQUE (organization_id, name)
);

CREATE FUNCTION insert_org_system_roles() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO custom_roles (name, display_name, org_permissions, organization_id, is_system)
    VALUES
        ('organization-member', 'Organization Member',
         '[{"resource": "workspace", "action": "read"}]'::jsonb, NEW.id, true),
        ('organization-auditor', 'Organization Auditor',
         '[{"resource": "audit_log", "action": "read"}]'::jsonb, NEW.id, true);
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_insert_org_system_roles
    AFTER INSERT ON organizations
    FOR EACH ROW EXECUTE FUNCTION insert_org_system_roles();

-- ---------------------------------------------------------------- groups

CREATE TABLE groups (
    id              uuid         NOT NULL PRIMARY KEY,
    name            text         NOT NULL,
    organization_id uuid         NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    avatar_url      text         NOT NULL DEFAULT '',
    quota_allowance integer      NOT NULL DEFAULT 0,
    display_name    text         NOT NULL DEFAULT '',
    source          group_source NOT NULL DEFAULT 'user',
    UNIQUE (name, organization_id)
);

-- No primary key, only a uniqueness constraint over the pair.
CREATE TABLE group_members (
    user_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    UNIQUE (user_id, group_id)
);

-- ---------------------------------------------------------------- organization membership

CREATE TABLE organization_members (
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    roles           text[]      NOT NULL DEFAULT '{}',
    PRIMARY KEY (organization_id, user_id)
);

CREATE INDEX organization_members_organization_id_idx ON organization_members (organization_id);
CREATE INDEX organization_members_user_id_idx ON organization_members (user_id);

-- Leaving an organization also means leaving every group that organization owns.
CREATE FUNCTION remove_user_from_org_groups() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM group_members gm
    WHERE gm.user_id = OLD.user_id
      AND gm.group_id IN (SELECT g.id FROM groups g WHERE g.organization_id = OLD.organization_id);
    RETURN OLD;
END;
$$;

CREATE TRIGGER trigger_delete_organization_member
    BEFORE DELETE ON organization_members
    FOR EACH ROW EXECUTE FUNCTION remove_user_from_org_groups();

-- ---------------------------------------------------------------- templates

CREATE TABLE templates (
    id                uuid             NOT NULL PRIMARY KEY,
    created_at        timestamptz      NOT NULL,
    updated_at        timestamptz      NOT NULL,
    organization_id   uuid             NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    deleted           boolean          NOT NULL DEFAULT false,
    name              varchar(64)      NOT NULL,
    provisioner       provisioner_type NOT NULL,
    active_version_id uuid             NOT NULL,
    description       varchar(128)     NOT NULL DEFAULT '',
    created_by        uuid             NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    icon              varchar(256)     NOT NULL DEFAULT ''
);

-- Within one organization, live template names are unique ignoring case.
CREATE UNIQUE INDEX templates_organization_id_name_idx ON templates (organization_id, lower(name))
    WHERE deleted = false;

CREATE TABLE template_versions (
    id              uuid              NOT NULL PRIMARY KEY,
    template_id     uuid              REFERENCES templates (id) ON DELETE CASCADE,
    organization_id uuid              NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    created_at      timestamptz       NOT NULL,
    updated_at      timestamptz       NOT NULL,
    name            varchar(64)       NOT NULL,
    readme          varchar           NOT NULL,
    job_id          uuid              NOT NULL,
    created_by      uuid              NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    archived        boolean           NOT NULL DEFAULT false,
    message         varchar(1048576)  NOT NULL DEFAULT '',
    UNIQUE (template_id, name)
);

-- Deliberately no index whose first column is template_version_id: the only one is the
-- (name, template_version_id) uniqueness constraint, as in production.
CREATE TABLE template_version_presets (
    id                    uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    template_version_id   uuid        NOT NULL REFERENCES template_versions (id) ON DELETE CASCADE,
    name                  text        NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    desired_instances     integer,
    invalidate_after_secs integer     DEFAULT 0,
    UNIQUE (name, template_version_id)
);

COMMIT;
