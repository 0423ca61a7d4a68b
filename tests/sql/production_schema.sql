-- Stand-in for the production database of the workspace platform: extra NOT NULL columns,
-- partial unique indexes and triggers the reconciler did not create, so the tests show it
-- copes with a schema it merely finds. It follows the production schema as of 2026: columns
-- every organization writer must supply, a trigger that refuses to soft-delete a busy
-- organization, a soft-deleted user losing its memberships by trigger, a budget table cleaned
-- by delete triggers, and the site settings table that holds the prebuilds pause switch.
-- Loads on an empty database in one transaction, as a superuser or as a plain role that owns
-- the database (tests/safety/load_platform.sh does the latter, as production has it).

BEGIN;

-- ---------------------------------------------------------------- enum types

CREATE TYPE login_type AS ENUM ('password', 'github', 'oidc', 'token', 'none');
CREATE TYPE user_status AS ENUM ('active', 'dormant', 'suspended');
CREATE TYPE group_source AS ENUM ('user', 'oidc');
CREATE TYPE provisioner_type AS ENUM ('echo', 'terraform');
CREATE TYPE shareable_workspace_owners AS ENUM ('none', 'everyone', 'service_accounts');

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
    is_system       boolean     NOT NULL DEFAULT false,
    -- A service account is exactly an account without an e-mail address.
    is_service_account boolean  NOT NULL DEFAULT false,
    CONSTRAINT users_service_account_email_check CHECK ((is_service_account) = (email = ''))
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
    deleted      boolean     NOT NULL DEFAULT false,
    -- No default: whoever inserts an organization names these roles (the platform writes
    -- '{organization-workspace-access}'). They are merged into each member's roles when a
    -- request is authorized, so membership rows keep '{}'.
    default_org_member_roles   text[]                     NOT NULL,
    shareable_workspace_owners shareable_workspace_owners NOT NULL DEFAULT 'everyone'
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
    -- Unset means no limit; a limit, when set, is positive.
    chat_spend_limit_micros bigint CHECK (chat_spend_limit_micros IS NULL
                                          OR chat_spend_limit_micros > 0),
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
    last_invalidated_at   timestamptz,
    is_default            boolean     NOT NULL DEFAULT false,
    UNIQUE (name, template_version_id)
);

-- At most one default preset per version. This partial index is the only index whose first
-- column is template_version_id, and it covers only the default presets.
CREATE UNIQUE INDEX template_version_presets_one_default_idx
    ON template_version_presets (template_version_id) WHERE is_default;

-- ---------------------------------------------------------------- spend budgets

-- What a user may still spend, per organization and optionally per group. Rows belong to a
-- membership: leaving the organization or the group removes them (triggers below).
CREATE TABLE user_spend_budgets (
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    organization_id uuid        NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    group_id        uuid        REFERENCES groups (id) ON DELETE CASCADE,
    spent_micros    bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_spend_budgets_user_id_idx ON user_spend_budgets (user_id);

CREATE FUNCTION drop_budgets_of_leaving_member() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM user_spend_budgets b
    WHERE b.user_id = OLD.user_id AND b.organization_id = OLD.organization_id;
    RETURN OLD;
END;
$$;

CREATE TRIGGER trigger_drop_budgets_of_leaving_member
    BEFORE DELETE ON organization_members
    FOR EACH ROW EXECUTE FUNCTION drop_budgets_of_leaving_member();

CREATE FUNCTION drop_budgets_of_leaving_group_member() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM user_spend_budgets b
    WHERE b.user_id = OLD.user_id AND b.group_id = OLD.group_id;
    RETURN OLD;
END;
$$;

CREATE TRIGGER trigger_drop_budgets_of_leaving_group_member
    BEFORE DELETE ON group_members
    FOR EACH ROW EXECUTE FUNCTION drop_budgets_of_leaving_group_member();

-- ---------------------------------------------------------------- soft deletes

-- A soft-deleted user leaves every organization (and so, through the trigger on
-- organization_members, every group of those organizations).
CREATE FUNCTION delete_memberships_of_deleted_user() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.deleted AND (TG_OP = 'INSERT' OR NOT OLD.deleted) THEN
        DELETE FROM organization_members WHERE user_id = NEW.id;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER trigger_delete_memberships_of_deleted_user
    AFTER INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION delete_memberships_of_deleted_user();

-- An organization may only be soft-deleted once it is empty: no live template, no group but
-- one (the everyone group), no live member but one (whoever deletes it cannot remove
-- themselves). The prebuilds group and membership therefore hold a deletion back until the
-- templates are gone and they are removed.
CREATE FUNCTION protect_deleting_organizations() RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    n_templates bigint;
    n_groups    bigint;
    n_members   bigint;
BEGIN
    IF NOT (NEW.deleted AND NOT OLD.deleted) THEN
        RETURN NEW;
    END IF;
    SELECT count(*) INTO n_templates FROM templates t
    WHERE t.organization_id = OLD.id AND NOT t.deleted;
    SELECT count(*) INTO n_groups FROM groups g WHERE g.organization_id = OLD.id;
    SELECT count(*) INTO n_members FROM organization_members m
        JOIN users u ON u.id = m.user_id
    WHERE m.organization_id = OLD.id AND NOT u.deleted;
    IF n_templates > 0 THEN
        RAISE EXCEPTION 'cannot delete organization: it has % template(s) that must be deleted first',
            n_templates;
    END IF;
    IF n_groups > 1 THEN
        RAISE EXCEPTION 'cannot delete organization: it has % group(s) that must be deleted first',
            n_groups - 1;
    END IF;
    IF n_members > 1 THEN
        RAISE EXCEPTION 'cannot delete organization: it has % member(s) that must be removed first',
            n_members - 1;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER protect_deleting_organizations
    BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION protect_deleting_organizations();

-- ---------------------------------------------------------------- site settings

-- Key/value site settings. Key 'prebuilds_settings' holds the prebuilds pause switch as JSON,
-- {"reconciliation_paused": true|false}; while it is true the platform reconciles nothing.
CREATE TABLE site_configs (
    key   varchar(256) NOT NULL UNIQUE,
    value text         NOT NULL
);

COMMIT;
