# shellcheck shell=bash
# shellcheck disable=SC2034 # SRC_DIR, PBU and the others are for the scripts that source this
# Shared by the end-to-end tests of the `prebuilds` binary (tests/cli/*.sh): the binary and an
# optional PostgreSQL server from the arguments, a work directory and PostgreSQL databases
# removed on exit, and the assertions. Source it first thing:
#   . "$(dirname "$0")/lib.sh" "$@"     (arguments: PREBUILDS_BINARY [PG_CONNINFO])
# Every check counts as passed or failed; `finish` prints "N passed, M failed" and exits
# non-zero when anything failed. Needs bash, jq and sqlite3 (psql for PostgreSQL).
set -u

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 PREBUILDS_BINARY [PG_CONNINFO]" >&2
    exit 2
fi
PB=$1
PG_CONNINFO=${2:-}
case $PB in /*) ;; *) PB=$PWD/$PB ;; esac
if [ ! -x "$PB" ]; then
    echo "$0: $PB is not an executable" >&2
    exit 2
fi
for tool in jq sqlite3; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is required" >&2; exit 2; }
done
CLI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$CLI_DIR/../.." && pwd)

# The environment and the machine's configuration file must not leak into the checks.
unset PREBUILDS_DB PREBUILDS_USER_ID PREBUILDS_GROUP_NAME PREBUILDS_GROUP_DISPLAY_NAME \
    PREBUILDS_LOG_LEVEL PREBUILDS_LOG_FORMAT PREBUILDS_INTERVAL PREBUILDS_LISTEN \
    PREBUILDS_LOCK_ID PREBUILDS_BACKOFF_MAX PREBUILDS_STATEMENT_TIMEOUT PREBUILDS_LOCK_TIMEOUT \
    PREBUILDS_METRICS_ADDR PGPASSFILE PGSERVICEFILE PGSERVICE PGPASSWORD
export PREBUILDS_CONFIG=/dev/null
export LC_ALL=C

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pb-cli-test.XXXXXX") || exit 1
chmod 0755 "$TMP"
PG_DBS=()
CLEANUP_HOOKS=()
BG_PIDS=()
cli_cleanup() {
    local h p d
    for h in "${CLEANUP_HOOKS[@]}"; do eval "$h" >/dev/null 2>&1; done
    for p in "${BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for d in "${PG_DBS[@]}"; do
        psql "$PG_CONNINFO" -qAtX -c "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)" >/dev/null 2>&1
    done
    rm -rf "$TMP"
}
trap cli_cleanup EXIT
trap 'exit 130' INT TERM
cd "$TMP" || exit 1

OUT=$TMP/out # stdout of the last expect_exit
ERR=$TMP/err # stderr of the last expect_exit
PASSED=0
FAILED=0
PBU=c42fdf75-3097-471c-8c33-fb52454d81c0

pass() { PASSED=$((PASSED + 1)); }
fail() {
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n' "$*" >&2
}
finish() {
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit $?
}
show_cmd() { printf '%q ' "$@"; }
indent() { sed 's/^/    | /' "$1" | head -n 20 >&2; }

# expect_exit CODE -- cmd...: run cmd (stdout to $OUT, stderr to $ERR), check its exit code.
expect_exit() {
    local want=$1
    shift
    [ "${1:-}" = "--" ] && shift
    local got=0
    "$@" >"$OUT" 2>"$ERR" || got=$?
    if [ "$got" = "$want" ]; then
        pass
        return 0
    fi
    fail "$(show_cmd "$@"): expected exit $want, got $got; stderr:"
    indent "$ERR"
    return 1
}

# expect_contains FILE TEXT: FILE contains TEXT (fixed string).
expect_contains() {
    if grep -qF -- "$2" "$1"; then
        pass
    else
        fail "$(basename "$1") does not contain '$2'; it holds:"
        indent "$1"
    fi
}

expect_not_contains() {
    if grep -qF -- "$2" "$1"; then
        fail "$(basename "$1") contains '$2' but must not; it holds:"
        indent "$1"
    else
        pass
    fi
}

# expect_eq DESCRIPTION ACTUAL EXPECTED
expect_eq() {
    if [ "$2" = "$3" ]; then
        pass
    else
        fail "$1: expected '$3', got '$2'"
    fi
}

# expect_jq FILE FILTER [jq args...]: jq -e FILTER on FILE is true.
expect_jq() {
    local file=$1 filter=$2
    shift 2
    if jq -e "$@" "$filter" "$file" >/dev/null 2>"$TMP/jqerr"; then
        pass
    else
        fail "$(basename "$file"): jq check failed: $filter; the file holds:"
        indent "$file"
        indent "$TMP/jqerr"
    fi
}

# expect_lines FILE N: FILE has exactly N lines.
expect_lines() {
    local n
    n=$(wc -l <"$1")
    if [ "$n" -eq "$2" ]; then
        pass
    else
        fail "$(basename "$1"): expected $2 line(s), got $n:"
        indent "$1"
    fi
}

# expect_true DESCRIPTION cmd...: cmd succeeds.
expect_true() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        pass
    else
        fail "$what ($(show_cmd "$@"))"
    fi
}

# expect_no_byte FILE OCTAL DESCRIPTION: the raw byte is absent from FILE.
expect_no_byte() {
    # shellcheck disable=SC2059
    if grep -q "$(printf "\\$2")" "$1"; then
        fail "$(basename "$1") contains a raw $3 byte"
        indent "$1"
    else
        pass
    fi
}

# expect_no_bytes FILE HEX DESCRIPTION: the byte sequence (hex, "e280ae") is absent from FILE.
expect_no_bytes() {
    if od -An -v -tx1 "$1" | tr -d ' \n' | grep -q "$2"; then
        fail "$(basename "$1") contains the raw bytes of $3"
        indent "$1"
    else
        pass
    fi
}

# wait_until SECONDS COMMAND...: poll every 50 ms; 0 when the command succeeded in time.
wait_until() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 20; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

is_uuid() { grep -Eqx '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' "$1"; }

# now_ms: a monotonic-enough wall clock in milliseconds.
now_ms() { date +%s%3N; }

# pg_new_db VAR: a fresh, empty PostgreSQL database, dropped on exit; VAR gets its conninfo
# and PG_NAME its name.
N_PG_DB=0
pg_new_db() {
    N_PG_DB=$((N_PG_DB + 1))
    PG_NAME="pbcli_$$_${N_PG_DB}"
    PG_DBS+=("$PG_NAME")
    psql "$PG_CONNINFO" -qAtX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$PG_NAME\"" >/dev/null ||
        return 1
    printf -v "$1" '%s dbname=%s' "$PG_CONNINFO" "$PG_NAME"
}
# pgq CONNINFO SQL: one statement, unaligned output.
pgq() { psql "$1" -qAtX -v ON_ERROR_STOP=1 -c "$2"; }

# sqlite_writer DB SECONDS: hold the write lock of DB for SECONDS in the background
# (BEGIN IMMEDIATE, a write, then a shell sleep inside the transaction); its pid in WRITER_PID.
# Returns once the lock is held (the writer touches a marker file then).
N_WRITER=0
sqlite_writer() {
    N_WRITER=$((N_WRITER + 1))
    local mark="$TMP/writer.$N_WRITER"
    printf '.timeout 10000\nBEGIN IMMEDIATE;\nINSERT INTO site_configs (key, value) VALUES (%s, %s);\n.shell touch %s\n.shell sleep %s\nROLLBACK;\n' \
        "'pb_test_lock'" "'x'" "$mark" "$2" | sqlite3 "$1" >/dev/null 2>&1 &
    WRITER_PID=$!
    BG_PIDS+=("$WRITER_PID")
    wait_until 10 test -e "$mark"
}
