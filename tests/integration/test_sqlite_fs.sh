#!/usr/bin/env bash
# SQLite on a file system that fills up, then turns read-only: reconcile must fail with
# one clear line and a distinct exit code, change nothing, and succeed once space or
# write access is back. Uses a small tmpfs, so it needs root (skipped otherwise).
# Usage: test_sqlite_fs.sh BINARY
set -u
BIN=$1
if [ "$(id -u)" != 0 ]; then
    echo "skipped: mounting a tmpfs needs root"
    echo "0 passed, 0 failed"
    exit 0
fi
M=$(mktemp -d /tmp/pbfs.XXXXXX)
PASS=0
FAIL=0
cleanup() {
    umount "$M" 2>/dev/null
    rmdir "$M"
}
trap cleanup EXIT
check() {
    local what=$1
    shift
    if "$@"; then PASS=$((PASS + 1)); else
        FAIL=$((FAIL + 1))
        echo "FAIL: $what" >&2
    fi
}
mount -t tmpfs -o size=2m tmpfs "$M" || exit 1
DB="sqlite:$M/p.db"
"$BIN" --db "$DB" init >/dev/null || exit 1
"$BIN" --db "$DB" seed --orgs 40 --templates-per-org 1 --versions-per-template 1 \
    --presets-per-version 1 --prebuilds-fraction 1 --drift-fraction 1 >/dev/null || exit 1
sqlite3 "$M/p.db" "PRAGMA wal_checkpoint(TRUNCATE); DELETE FROM group_members;
    DELETE FROM groups; DELETE FROM organization_members; PRAGMA wal_checkpoint(TRUNCATE);" \
    >/dev/null || exit 1
rows() { sqlite3 "$M/p.db" "SELECT (SELECT count(*) FROM organization_members) + (SELECT count(*) FROM groups) + (SELECT count(*) FROM group_members)"; }

# --- full: fill every free block, then reconcile
dd if=/dev/zero of="$M/fill" bs=4k 2>/dev/null
"$BIN" --db "$DB" reconcile >"$M/../pbfs-out.$$" 2>"$M/../pbfs-err.$$"
rc=$?
err=$(cat "$M/../pbfs-err.$$")
check "full: a distinct non-zero exit code, not a crash (got $rc)" test "$rc" -ge 1 -a "$rc" -le 5
check "full: one line on stderr ($err)" test "$(wc -l <"$M/../pbfs-err.$$")" -eq 1
check "full: the error names the cause (full or i/o)" grep -qiE "full|i/o" "$M/../pbfs-err.$$"
rm -f "$M/fill"
check "full: nothing was written" test "$(rows)" = 0
"$BIN" --db "$DB" reconcile >/dev/null 2>&1
check "space back: reconcile exits 0" test $? -eq 0
check "space back: converged" test "$(rows)" = 120

# --- read-only: drift, remount read-only, reconcile
sqlite3 "$M/p.db" "DELETE FROM organization_members; PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
before=$(rows)
mount -o remount,ro "$M" || exit 1
"$BIN" --db "$DB" reconcile >"$M/../pbfs-out.$$" 2>"$M/../pbfs-err.$$"
rc=$?
err=$(cat "$M/../pbfs-err.$$")
check "read-only: a distinct non-zero exit code, not a crash (got $rc)" test "$rc" -ge 1 -a "$rc" -le 5
check "read-only: one line on stderr ($err)" test "$(wc -l <"$M/../pbfs-err.$$")" -eq 1
mount -o remount,rw "$M" || exit 1
check "read-only: nothing was written" test "$(rows)" = "$before"
"$BIN" --db "$DB" reconcile >/dev/null 2>&1
check "writable again: reconcile exits 0" test $? -eq 0
check "writable again: converged" test "$(rows)" = 120
rm -f "$M/../pbfs-out.$$" "$M/../pbfs-err.$$"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
