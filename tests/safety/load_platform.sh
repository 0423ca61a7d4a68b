#!/usr/bin/env bash
# A platform database as production has it: the platform's tables (tests/sql/production_schema.sql)
# created and owned by a plain, non-superuser role, the prebuilds user row the platform writes
# itself, an administrator and a default organization.
#
# Usage: load_platform.sh BASE_CONNINFO DBNAME [OWNER_ROLE]
#   BASE_CONNINFO  libpq key=value string of a superuser (the harness's conninfo file)
#   DBNAME         database to create; it must not exist yet
#   OWNER_ROLE     the platform's role (default coder_owner); created when missing, LOGIN,
#                  no password (the test harness trusts loopback connections), never superuser
# Prints nothing on success; one line on stderr and exit 1 on failure.
set -u
BASE=$1
DBNAME=$2
OWNER=${3:-coder_owner}
HERE=$(cd "$(dirname "$0")" && pwd)
SCHEMA=$HERE/../sql/production_schema.sql

die() {
    echo "load_platform: $*" >&2
    exit 1
}
case "$DBNAME" in *[!a-z0-9_]* | '') die "database name must be [a-z0-9_]+: '$DBNAME'" ;; esac
case "$OWNER" in *[!a-z0-9_]* | '') die "role name must be [a-z0-9_]+: '$OWNER'" ;; esac

sq() { psql "$BASE" -qXAt -v ON_ERROR_STOP=1 "$@"; }

# The role is shared by every test of the cluster, and tests run in parallel: create it only
# when missing, and take a concurrent creation for success.
for _ in 1 2 3; do
    sq -c "DO \$\$ BEGIN
             IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$OWNER') THEN
               CREATE ROLE $OWNER LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB;
             END IF;
           EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL;
           END \$\$" >/dev/null 2>&1 && break
    sleep 0.2
done
[ "$(sq -c "SELECT rolsuper::text || rolcanlogin::text FROM pg_roles WHERE rolname = '$OWNER'")" = falsetrue ] ||
    die "role $OWNER is missing, a superuser, or cannot log in"

sq -c "CREATE DATABASE $DBNAME OWNER $OWNER" >/dev/null || die "CREATE DATABASE $DBNAME failed"
OWNER_DB="$BASE dbname=$DBNAME user=$OWNER"
ERRS=$(mktemp /tmp/load_platform.XXXXXX) || die "mktemp failed"
trap 'rm -f "$ERRS"' EXIT
psql "$OWNER_DB" -qX -v ON_ERROR_STOP=1 -f "$SCHEMA" >/dev/null 2>"$ERRS" ||
    die "loading production_schema.sql as $OWNER: $(grep -m1 ERROR "$ERRS")"

# What the platform itself writes at first start: its prebuilds user (a system account), the
# first administrator, the default organization with its everyone group and the administrator
# as its member.
psql "$OWNER_DB" -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || die "seeding the platform rows failed"
BEGIN;
INSERT INTO users (id, email, username, name, hashed_password, created_at, updated_at, status,
                   login_type, is_system)
VALUES ('c42fdf75-3097-471c-8c33-fb52454d81c0', 'prebuilds@system', 'prebuilds',
        'Prebuilds Owner', '', now(), now(), 'active', 'none', true);
INSERT INTO users (id, email, username, name, hashed_password, created_at, updated_at, status,
                   login_type, rbac_roles)
VALUES ('00000000-0000-4000-8000-00000000a001', 'admin@example.com', 'admin', 'Admin', '',
        now(), now(), 'active', 'password', '{owner}');
INSERT INTO organizations (id, name, display_name, description, created_at, updated_at,
                           is_default, default_org_member_roles)
VALUES ('00000000-0000-4000-8000-0000000000d0', 'coder', 'Coder', 'The default organization',
        now(), now(), true, '{organization-workspace-access}');
INSERT INTO groups (id, name, organization_id, display_name)
VALUES ('00000000-0000-4000-8000-0000000000d0', 'Everyone', '00000000-0000-4000-8000-0000000000d0',
        '');
INSERT INTO organization_members (user_id, organization_id, created_at, updated_at, roles)
VALUES ('00000000-0000-4000-8000-00000000a001', '00000000-0000-4000-8000-0000000000d0', now(),
        now(), '{}');
COMMIT;
SQL
exit 0
