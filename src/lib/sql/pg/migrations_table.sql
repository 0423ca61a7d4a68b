-- Where a database prebuilds created records its migrations: its presence is what tells our
-- own schema from a platform's.
CREATE TABLE prebuilds_schema_migrations (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
