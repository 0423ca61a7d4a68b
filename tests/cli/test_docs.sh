#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317 # "check && pass || fail"; helpers run through wait_until
# The documents say what the binary does: every command the overview lists, and every option
# any --help lists (the global ones included), is described in the man page
# (docs/prebuilds.1.scd) and in README.md; both list the same exit codes as --help; the man
# page of the configuration file names the file the binary reads by default.
#
# usage: test_docs.sh PREBUILDS_BINARY
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" "$@"

MAN=$SRC_DIR/docs/prebuilds.1.scd
CONF_MAN=$SRC_DIR/docs/prebuilds.conf.5.scd
README=$SRC_DIR/README.md

expect_exit 0 -- "$PB" --help
cp "$OUT" "$TMP/overview"
awk '/^Reconciler commands:/ { r = 1; next } /^Data commands/ { d = 1; next } /^$/ { r = d = 0 }
     r && /^  [a-z]/ { print $1 }
     d && /^  [a-z]/ { print ($2 ~ /^[a-z]+$/ ? $1 " " $2 : $1) }' "$TMP/overview" |
    sort -u >"$TMP/commands"
expect_true "the overview lists the commands" test "$(wc -l <"$TMP/commands")" -ge 20

options_of() { sed -n 's/^  \(--[a-z][a-z-]*\).*/\1/p' "$1"; }
options_of "$TMP/overview" >"$TMP/options"
while read -r cmd; do
    # shellcheck disable=SC2086
    "$PB" $cmd --help >"$TMP/help" 2>&1 || fail "$cmd --help"
    grep -qF "*$cmd*" "$MAN" && pass || fail "the man page does not describe '$cmd'"
    grep -qF "$cmd" "$README" && pass || fail "README.md does not mention '$cmd'"
    options_of "$TMP/help" >>"$TMP/options"
done <"$TMP/commands"
sort -u "$TMP/options" -o "$TMP/options"
expect_true "the --help texts list options" test "$(wc -l <"$TMP/options")" -ge 30
while read -r opt; do
    [ "$opt" = --help ] && continue
    grep -qF -- "*$opt*" "$MAN" && pass || fail "the man page does not describe $opt"
    grep -qF -- "$opt" "$README" && pass || fail "README.md does not mention $opt"
done <"$TMP/options"

# exit codes: the ones --help lists, in both documents
for code in 0 1 2 3 4 5 6; do
    grep -Eq "(^|[:,] )$code [a-z]" "$TMP/overview" && pass || fail "--help lacks exit code $code"
    grep -qF "*$code*" "$MAN" && pass || fail "the man page lacks exit code $code"
    grep -qE "^\| $code \|" "$README" && pass || fail "README.md lacks exit code $code"
done
# the default configuration file, as the binary names it
DEFAULT=$(sed -n 's/.*default \(\/[^ ]*prebuilds\.conf\) when it exists.*/\1/p' "$TMP/overview")
expect_true "--help names the default configuration file" test -n "$DEFAULT"
expect_contains "$CONF_MAN" "$DEFAULT"
expect_contains "$MAN" "$DEFAULT"
expect_contains "$README" "$DEFAULT"
finish
