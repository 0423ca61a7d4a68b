#!/usr/bin/env bash
# Throwaway PostgreSQL 15 cluster for the integration tests: one private data directory,
# one free loopback port, pg_stat_statements loaded, nothing shared with any other server.
# Usage: pg_harness.sh start DIR   |   pg_harness.sh stop DIR   (DIR must be absolute)
#        pg_harness.sh standby DIR PRIMARY_DIR: a streaming replica of the server started in
#                                    PRIMARY_DIR (pg_basebackup -R), on its own port
#        pg_harness.sh promote DIR:  pg_ctl promote (the standby becomes a primary)
#        pg_harness.sh crash DIR:    an immediate stop, as a crash; DIR stays for `stop`

set -u

PROG=pg_harness
MARKER=.pg_harness # written first thing by start; stop only deletes directories that carry it

die() {
    echo "$PROG: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start|stop|promote|crash DIR | standby DIR PRIMARY_DIR (absolute paths)" >&2
    exit 2
}

BINDIR=""
find_bindir() {
    if command -v pg_config >/dev/null 2>&1; then
        BINDIR=$(pg_config --bindir 2>/dev/null) || BINDIR=""
    fi
    if [ -z "$BINDIR" ] || [ ! -x "$BINDIR/initdb" ]; then
        BINDIR=/usr/lib/postgresql/15/bin
    fi
    if [ ! -x "$BINDIR/initdb" ] || [ ! -x "$BINDIR/pg_ctl" ]; then
        die "cannot find initdb/pg_ctl (looked in $BINDIR)"
    fi
}

# Run a server binary as the cluster owner: postgres when we are root, ourselves otherwise.
# The working directory is DIR so the server never needs to look at the caller's cwd.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            (cd "$DIR" && runuser -u postgres -- "$@")
        else
            local cmd
            cmd=$(printf '%q ' "$@")
            (cd "$DIR" && su postgres -s /bin/sh -c "$cmd")
        fi
    else
        (cd "$DIR" && "$@")
    fi
}

port_busy() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
    fi
    # Second opinion (and the only one if ss is missing): try to connect.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        return 0
    fi
    return 1
}

pick_port() {
    local start=$((20000 + (RANDOM * 32768 + RANDOM) % 20001))
    local i port
    for ((i = 0; i < 20001; i++)); do
        port=$((20000 + (start - 20000 + i) % 20001))
        if ! port_busy "$port"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

server_running() {
    [ -f "$DATA/PG_VERSION" ] || return 1
    as_owner "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

check_dir_arg() {
    case "$DIR" in
    /*) ;;
    *) die "DIR must be an absolute path, got '$DIR'" ;;
    esac
    # Normalise away trailing slashes and refuse anything that resolves to the root.
    while [ "${DIR%/}" != "$DIR" ]; do DIR=${DIR%/}; done
    [ -n "$DIR" ] || die "refusing to use / as DIR"
    DATA=$DIR/data
    SOCKDIR=$DIR/sock
    LOG=$DIR/server.log
}

STARTED=0
start_fail() {
    echo "$PROG: $*" >&2
    if [ "$STARTED" -eq 1 ]; then
        as_owner "$BINDIR/pg_ctl" stop -D "$DATA" -m immediate -w >/dev/null 2>&1
    fi
    exit 1
}

# The directory, owned by the server's OS user, with the marker, the socket directory and
# the log; then SOCKDIRS: the socket directory, or "" (TCP only) when its path is too long.
prepare_dir() {
    if [ -e "$DIR" ]; then
        [ -d "$DIR" ] || die "$DIR exists and is not a directory"
        [ -z "$(ls -A "$DIR")" ] || die "$DIR exists and is not empty (stop it first?)"
    fi
    mkdir -p "$DIR" || die "cannot create $DIR"
    chmod 0755 "$DIR" || die "cannot chmod $DIR"
    : >"$DIR/$MARKER" || die "cannot write in $DIR"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user"
        chown -R postgres: "$DIR" || die "cannot chown $DIR to postgres"
        runuser -u postgres -- test -w "$DIR" 2>/dev/null ||
            die "user postgres cannot write $DIR (is a parent directory closed to it?)"
    fi
    as_owner mkdir -m 0700 "$SOCKDIR" || die "cannot create $SOCKDIR"
    as_owner touch "$LOG" || die "cannot create $LOG"
    # A socket path ("$SOCKDIR/.s.PGSQL.NNNNN", 16 bytes more) must fit in 107 bytes; if DIR
    # is too deep, run TCP-only (the conninfo uses TCP anyway).
    SOCKDIRS="$SOCKDIR"
    if [ $((${#SOCKDIR} + 16)) -gt 107 ]; then
        SOCKDIRS=""
    fi
}

# Pick a port and start; if another process grabs the port between the probe and the
# bind, try again with a different one. Sets PORT.
start_on_free_port() {
    local attempt logstart started=0
    for ((attempt = 1; attempt <= 5; attempt++)); do
        PORT=$(pick_port) || die "no free TCP port found in 20000-40000"
        logstart=$(wc -l <"$LOG")
        if as_owner "$BINDIR/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 \
            -o "-p $PORT" >>"$DIR/pg_ctl.log" 2>&1; then
            started=1
            break
        fi
        if tail -n +"$((logstart + 1))" "$LOG" |
            grep -qiE 'could not bind|address already in use|could not create lock file'; then
            continue
        fi
        # A timed-out start may have left a postmaster behind; do not leak it.
        STARTED=1
        start_fail "server failed to start: $(tail -n 1 "$LOG" 2>/dev/null) (see $LOG)"
    done
    [ "$started" -eq 1 ] || die "could not start server after 5 port attempts (see $LOG)"
    STARTED=1
}

cmd_start() {
    find_bindir
    prepare_dir

    # initdb: prefer C.UTF-8, fall back to plain C if the locale is not available.
    local locale ok=0
    for locale in C.UTF-8 C; do
        if as_owner "$BINDIR/initdb" -D "$DATA" --auth=trust -U postgres --encoding=UTF8 \
            --locale="$locale" --no-sync >>"$DIR/initdb.log" 2>&1; then
            ok=1
            break
        fi
        as_owner rm -rf "$DATA"
    done
    [ "$ok" -eq 1 ] || die "initdb failed, see $DIR/initdb.log"

    # wal_level = replica (the default, said here) lets `standby` stream from this server.
    if ! cat >>"$DATA/postgresql.conf" <<EOF

# ---- added by tests/pg_harness.sh ----
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCKDIRS'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
logging_collector = off
wal_level = replica
EOF
    then
        die "cannot write $DATA/postgresql.conf"
    fi
    start_on_free_port

    local conninfo="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"
    PGCONNECT_TIMEOUT=10 "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -d "$conninfo" \
        -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >>"$DIR/psql.log" 2>&1 ||
        start_fail "CREATE EXTENSION pg_stat_statements failed: $(tail -n 1 "$DIR/psql.log")"

    printf '%s\n' "$conninfo" >"$DIR/conninfo" || start_fail "cannot write $DIR/conninfo"
    printf '%s\n' "$conninfo"
}

# A hot standby of the server in PRIMARY: a base backup streamed over its replication
# connection (initdb's pg_hba.conf trusts it on loopback), with standby.signal and
# primary_conninfo written by -R, and its own socket directory and port.
cmd_standby() {
    find_bindir
    local primary_port
    primary_port=$(sed -n 's/.* port=\([0-9][0-9]*\) .*/\1/p' "$PRIMARY/conninfo" 2>/dev/null)
    [ -n "$primary_port" ] || die "no server started in $PRIMARY (no conninfo)"
    prepare_dir
    as_owner "$BINDIR/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$DATA" \
        -R -X stream -c fast --no-sync >>"$DIR/basebackup.log" 2>&1 ||
        die "pg_basebackup from port $primary_port failed, see $DIR/basebackup.log"
    printf "\n# ---- the standby (tests/pg_harness.sh) ----\nunix_socket_directories = '%s'\n" \
        "$SOCKDIRS" | as_owner tee -a "$DATA/postgresql.conf" >/dev/null ||
        die "cannot write $DATA/postgresql.conf"
    start_on_free_port
    local conninfo="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"
    printf '%s\n' "$conninfo" >"$DIR/conninfo" || start_fail "cannot write $DIR/conninfo"
    printf '%s\n' "$conninfo"
}

cmd_promote() {
    find_bindir
    [ -e "$DIR/$MARKER" ] || die "$DIR was not created by $PROG"
    as_owner "$BINDIR/pg_ctl" promote -D "$DATA" -w -t 60 >>"$DIR/pg_ctl.log" 2>&1 ||
        die "pg_ctl promote failed, see $DIR/pg_ctl.log"
}

# The server dies without a shutdown checkpoint, as a crashed primary would; DIR stays for
# `stop` to remove.
cmd_crash() {
    find_bindir
    [ -e "$DIR/$MARKER" ] || die "$DIR was not created by $PROG"
    server_running || return 0
    as_owner "$BINDIR/pg_ctl" stop -D "$DATA" -m immediate -w -t 30 >>"$DIR/pg_ctl.log" 2>&1 ||
        die "could not stop the server in $DATA"
}

cmd_stop() {
    [ -e "$DIR" ] || exit 0
    [ -d "$DIR" ] || die "$DIR is not a directory"
    if [ ! -e "$DIR/$MARKER" ] && [ -n "$(ls -A "$DIR")" ]; then
        die "$DIR was not created by $PROG start; refusing to delete it"
    fi
    find_bindir
    if server_running; then
        if ! as_owner "$BINDIR/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null 2>&1; then
            as_owner "$BINDIR/pg_ctl" stop -D "$DATA" -m immediate -w -t 30 >/dev/null 2>&1 ||
                die "could not stop the server in $DATA"
        fi
    fi
    rm -rf "$DIR" || die "cannot remove $DIR"
}

[ $# -ge 2 ] || usage
DIR=$2
PRIMARY=${3:-}
check_dir_arg
case "$1:$#" in
start:2) cmd_start ;;
stop:2) cmd_stop ;;
standby:3)
    case "$PRIMARY" in /*) ;; *) usage ;; esac
    cmd_standby
    ;;
promote:2) cmd_promote ;;
crash:2) cmd_crash ;;
*) usage ;;
esac
