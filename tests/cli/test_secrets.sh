#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317 # "check && pass || fail"; helpers run through wait_until
# Secrets stay off the command line (PostgreSQL with password authentication): a role that
# must give a password (a pg_hba.conf line of its own, scram-sha-256, added for the test and
# removed after it) connects with the password from libpq's password file (PGPASSFILE or
# ~/.pgpass), through a service file (PGSERVICEFILE, service=NAME), or from the configuration
# file's db key, so `ps` never shows it. A missing or wrong password is a refusal (exit 5)
# that says where a password goes; an unknown service is a usage error; a password typed in
# --db works and is warned about.
#
# usage: test_secrets.sh PREBUILDS_BINARY PG_CONNINFO (superuser, on the machine: it edits
# the server's pg_hba.conf, so it must be able to write it)
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" "$@"
if [ -z "$PG_CONNINFO" ]; then
    echo "usage: $0 PREBUILDS_BINARY PG_CONNINFO" >&2
    exit 2
fi

ROLE=pb_pw_$$
PW="S3cr3t-$$-pw"
HOST=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$PG_CONNINFO")
PORT=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$PG_CONNINFO")
HBA=$(pgq "$PG_CONNINFO" "SHOW hba_file")
pg_new_db ADMIN_DB || fail "create a database"
DBNAME=$PG_NAME
pgq "$PG_CONNINFO" "CREATE ROLE $ROLE LOGIN PASSWORD '$PW'" >/dev/null || fail "create role"
pgq "$PG_CONNINFO" "ALTER DATABASE $DBNAME OWNER TO $ROLE" >/dev/null
CLEANUP_HOOKS+=("pgq '$PG_CONNINFO' 'DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)'; pgq '$PG_CONNINFO' 'DROP ROLE IF EXISTS $ROLE'")
# first match wins: a line of our own, for this role only, above the harness's trust lines
cp -p "$HBA" "$TMP/hba.orig" || fail "read $HBA"
CLEANUP_HOOKS=("cp -p '$TMP/hba.orig' '$HBA' && pgq '$PG_CONNINFO' 'SELECT pg_reload_conf()'" \
    "${CLEANUP_HOOKS[@]}")
{ printf 'host all %s %s/32 scram-sha-256\n' "$ROLE" "$HOST"; cat "$TMP/hba.orig"; } >"$HBA" ||
    fail "write $HBA"
pgq "$PG_CONNINFO" "SELECT pg_reload_conf()" >/dev/null
sleep 0.3 # the postmaster reads the file on SIGHUP
URL="host=$HOST port=$PORT user=$ROLE dbname=$DBNAME connect_timeout=5"

# ---- no password, a wrong one: refused, with where a password goes
expect_exit 5 -- "$PB" --db "$URL" status
expect_contains "$ERR" "password"
expect_contains "$ERR" "PGPASSFILE"
expect_lines "$ERR" 1
printf '%s:%s:%s:%s:%s\n' "$HOST" "$PORT" "$DBNAME" "$ROLE" "wrong" >"$TMP/bad.pgpass"
chmod 0600 "$TMP/bad.pgpass"
expect_exit 5 -- env PGPASSFILE="$TMP/bad.pgpass" "$PB" --db "$URL" status
expect_contains "$ERR" "password authentication failed"
expect_exit 5 -- "$PB" --db "postgresql://$ROLE:wrong@$HOST:$PORT/$DBNAME" status

# ---- the password file: PGPASSFILE, then ~/.pgpass
printf '%s:%s:%s:%s:%s\n' "$HOST" "$PORT" "*" "$ROLE" "$PW" >"$TMP/pgpass"
chmod 0600 "$TMP/pgpass"
expect_exit 0 -- env PGPASSFILE="$TMP/pgpass" "$PB" --db "$URL" init
expect_exit 0 -- env PGPASSFILE="$TMP/pgpass" "$PB" --db "$URL" seed --orgs 2 \
    --prebuilds-fraction 1 --drift-fraction 1
expect_exit 0 -- env PGPASSFILE="$TMP/pgpass" "$PB" --db "$URL" status
expect_lines "$ERR" 0
mkdir -m 0700 "$TMP/home"
cp -p "$TMP/pgpass" "$TMP/home/.pgpass"
expect_exit 0 -- env HOME="$TMP/home" "$PB" --db "$URL" plan

# ---- the service file
printf '[pbtest]\nhost=%s\nport=%s\nuser=%s\ndbname=%s\n' "$HOST" "$PORT" "$ROLE" "$DBNAME" \
    >"$TMP/pg_service.conf"
for db in service=pbtest "postgresql://?service=pbtest"; do
    expect_exit 0 -- env PGSERVICEFILE="$TMP/pg_service.conf" PGPASSFILE="$TMP/pgpass" \
        "$PB" --db "$db" status
done
expect_exit 2 -- env PGSERVICEFILE="$TMP/pg_service.conf" "$PB" --db service=nosuch status
expect_contains "$ERR" "nosuch"

# ---- the configuration file's db key: the daemon's command line holds no password
CONF=$TMP/prebuilds.conf
printf 'db = "postgresql://%s:%s@%s:%s/%s"\n' "$ROLE" "$PW" "$HOST" "$PORT" "$DBNAME" >"$CONF"
chmod 0600 "$CONF"
expect_exit 0 -- env PREBUILDS_CONFIG="$CONF" "$PB" reconcile
expect_contains "$OUT" "reconciled 2 organizations"
expect_lines "$ERR" 4 # one line per row added, no warning
expect_not_contains "$ERR" "$PW"
"$PB" --config "$CONF" run --interval 200ms --metrics-addr 127.0.0.1:0 2>"$TMP/d.log" &
DPID=$!
BG_PIDS+=("$DPID")
wait_until 10 grep -q "leading" "$TMP/d.log" || fail "daemon: $(cat "$TMP/d.log")"
tr '\0' ' ' <"/proc/$DPID/cmdline" >"$TMP/cmdline"
expect_not_contains "$TMP/cmdline" "$PW"
expect_contains "$TMP/cmdline" "--config"
PORT_M=$(sed -n 's/.*metrics_port=\([0-9]*\).*/\1/p' "$TMP/d.log" | head -n1)
curl -s "http://127.0.0.1:$PORT_M/metrics" >"$TMP/metrics"
kill -TERM "$DPID"
wait "$DPID" 2>/dev/null
expect_not_contains "$TMP/d.log" "$PW"
expect_not_contains "$TMP/metrics" "$PW"

# ---- typed in --db: it works, and the user is told who can read it
expect_exit 0 -- "$PB" --db "postgresql://$ROLE:$PW@$HOST:$PORT/$DBNAME" status
expect_contains "$ERR" "can be read by every user of this machine"
expect_not_contains "$ERR" "$PW"
expect_exit 0 -- "$PB" --db "postgresql://$ROLE:$PW@$HOST:$PORT/$DBNAME" --log-level error status
expect_lines "$ERR" 0
finish
