# shellcheck shell=bash
# Shared by tests/failover and tests/pooler: assertions, a work directory and the daemons
# and servers a test starts, all removed on exit (CLEANUP holds commands run first, in
# order), and readers of the daemon's text log and metrics. Source it after setting BIN.
set -u

WORK=$(mktemp -d /tmp/pbha.XXXXXX)
chmod 0755 "$WORK" # servers run as postgres when we are root
FAILS=0
PASSES=0
PIDS=()
CLEANUP=()

ha_cleanup() {
    local p c
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    for c in "${CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1; done
    rm -rf "$WORK"
}
trap ha_cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}
# die MESSAGE: what the rest of the test needs failed; stop here (cleanup still runs).
die() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() {
    echo "ok: $* ($SECONDS s)"
    PASSES=$((PASSES + 1))
}
# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
    local f
    if [ "$FAILS" -ne 0 ]; then
        for f in "$WORK"/*.log; do
            [ -f "$f" ] && echo "---- last lines of $(basename "$f")" && tail -n 40 "$f"
        done
    fi
    echo "$PASSES passed, $FAILS failed in $SECONDS s"
    [ "$FAILS" -eq 0 ]
    exit $?
}

# wait_until SECONDS COMMAND...: poll every 50 ms; 0 when the command succeeded in time.
wait_until() {
    local end=$((SECONDS + $1))
    shift
    while [ "$SECONDS" -le "$end" ]; do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

now_ms() { date +%s%3N; }

# start_daemon NAME ARGS...: `prebuilds ARGS` in the background, its log in $WORK/NAME.log;
# the pid goes into PID_<NAME>.
start_daemon() {
    local name=$1
    shift
    "$BIN" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    printf -v "PID_$name" '%s' "$!"
}

# stop_daemon NAME: SIGTERM and wait; its exit code in STOP_RC.
# shellcheck disable=SC2034 # STOP_RC is for the tests that source this
stop_daemon() {
    local pid_var="PID_$1"
    kill -TERM "${!pid_var}" 2>/dev/null
    wait "${!pid_var}"
    STOP_RC=$?
}

# The text log: "TIME LEVEL message key=value ...".
log_count() { grep -c -- "$2" "$WORK/$1.log"; }                 # NAME PATTERN
level_count() { awk -v l="$2" '$2 == l' "$WORK/$1.log" | grep -c -- "${3:-}"; } # NAME LEVEL [PATTERN]
logged() { grep -q -- "$2" "$WORK/$1.log"; }                     # NAME PATTERN
count_is() { [ "$(log_count "$1" "$2")" = "$3" ]; }              # NAME PATTERN N (for wait_until)
no_errors() { [ "$(level_count "$1" error)" -eq 0 ]; }           # NAME
metrics_port() { sed -n 's/.*metrics_port=\([0-9][0-9]*\).*/\1/p' "$WORK/$1.log" | head -n 1; }
# metric NAME SERIES: the value of one series of the daemon's /metrics.
metric() {
    curl -sf "http://127.0.0.1:$(metrics_port "$1")/metrics" | awk -v s="$2" '$1 == s { print $2 }'
}
