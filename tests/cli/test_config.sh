#!/usr/bin/env bash
# shellcheck disable=SC2015,SC2317 # "check && pass || fail"; helpers run through wait_until
# Configuration works for every command: the file (--config, PREBUILDS_CONFIG, or the default
# /etc/prebuilds/prebuilds.conf) and the environment apply to status, reconcile, init and the
# data commands as to run; precedence option > file > environment > default holds for
# validation too (a bad value that lost is never read); every command has --help; errors name
# the option at fault and say where a misplaced option belongs; abbreviations, repeats and
# options of another command are refused.
#
# usage: test_config.sh PREBUILDS_BINARY [PG_CONNINFO]
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh" "$@"
unset PREBUILDS_CONFIG

DBF=$TMP/conf.db
CONF=$TMP/prebuilds.conf
printf 'db = sqlite:%s\nlog_level = warn\n' "$DBF" >"$CONF"

# ---- the file for every command, three ways to name it
expect_exit 0 -- "$PB" --config "$CONF" init
expect_true "init made the file named by the configuration" test -s "$DBF"
expect_exit 0 -- env PREBUILDS_CONFIG="$CONF" "$PB" org create acme
expect_exit 0 -- "$PB" --config "$CONF" org list --json
expect_jq "$OUT" 'length == 1 and .[0].name == "acme"'
for cmd in status plan reconcile "seed --orgs 2" "member remove --org acme" pause resume; do
    # shellcheck disable=SC2086
    expect_exit 0 -- env PREBUILDS_CONFIG="$CONF" "$PB" $cmd
done
expect_exit 0 -- env PREBUILDS_CONFIG="$CONF" "$PB" run --once --metrics-addr off
# run --config after the command, as the systemd unit writes it
expect_exit 0 -- "$PB" run --config "$CONF" --once --metrics-addr off
expect_exit 2 -- "$PB" --config "$CONF" run --config "$CONF" --once
expect_contains "$ERR" "--config given before and after the command"
# --no-config: none, whatever PREBUILDS_CONFIG says
expect_exit 3 -- env PREBUILDS_CONFIG="$CONF" "$PB" --no-config status
expect_contains "$ERR" "prebuilds.db"
expect_exit 2 -- "$PB" --config "$CONF" --no-config status
expect_true "--no-config read the default sqlite:prebuilds.db (not created)" test ! -e prebuilds.db
# the file's log level applies: a warning-level setting hides info lines
expect_exit 0 -- env PREBUILDS_CONFIG="$CONF" "$PB" member remove --org acme
expect_exit 0 -- env PREBUILDS_CONFIG="$CONF" "$PB" reconcile
expect_lines "$ERR" 0

# ---- precedence, checked value by value
expect_exit 0 -- env PREBUILDS_USER_ID=nope PREBUILDS_CONFIG="$CONF" "$PB" \
    --user-id "$PBU" status
printf 'db = sqlite:%s\nuser_id = %s\n' "$DBF" "$PBU" >"$TMP/uid.conf"
expect_exit 0 -- env PREBUILDS_USER_ID=nope PREBUILDS_LOG_LEVEL=loud "$PB" \
    --config "$TMP/uid.conf" --log-level info status # the file and the option win
expect_exit 2 -- env PREBUILDS_USER_ID=nope "$PB" --config "$CONF" status
expect_contains "$ERR" "PREBUILDS_USER_ID: invalid prebuilds user id"
printf 'db = sqlite:%s\nuser_id = nope\n' "$DBF" >"$TMP/bad.conf"
expect_exit 2 -- "$PB" --config "$TMP/bad.conf" status
expect_contains "$ERR" "$TMP/bad.conf:2: user_id: invalid prebuilds user id"
expect_exit 0 -- "$PB" --config "$TMP/bad.conf" --user-id "$PBU" status # the option wins
printf 'db = sqlite:%s\nintervall = 1m\n' "$DBF" >"$TMP/typo.conf"
expect_exit 2 -- "$PB" --config "$TMP/typo.conf" status
expect_contains "$ERR" "typo.conf:2: unknown key \"intervall\""
expect_exit 2 -- "$PB" --config "$TMP/nosuch.conf" status
expect_contains "$ERR" "nosuch.conf"
expect_exit 2 -- "$PB" --db "sqlite:$DBF" --user-id nope status
expect_contains "$ERR" "--user-id: invalid prebuilds user id"
expect_exit 2 -- env PREBUILDS_LOCK_TIMEOUT=soon "$PB" --db "sqlite:$DBF" status
expect_contains "$ERR" "PREBUILDS_LOCK_TIMEOUT"
expect_exit 0 -- env PREBUILDS_LOCK_TIMEOUT=soon "$PB" --db "sqlite:$DBF" run --lock-timeout 2s \
    --once --metrics-addr off

# ---- the default file, in a private mount namespace (root, overlayfs); skipped elsewhere
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null &&
    unshare -m sh -c "mkdir -p '$TMP/up' '$TMP/work' && mount -t overlay overlay \
        -o lowerdir=/etc,upperdir='$TMP/up',workdir='$TMP/work' /etc" 2>/dev/null; then
    rm -rf "$TMP/up" "$TMP/work"
    mkdir -p "$TMP/up/prebuilds" "$TMP/work"
    printf 'db = sqlite:%s\n' "$DBF" >"$TMP/up/prebuilds/prebuilds.conf"
    in_ns() {
        unshare -m sh -c "mount -t overlay overlay -o lowerdir=/etc,upperdir='$TMP/up',workdir='$TMP/work' /etc && exec \"\$@\"" sh "$@"
    }
    expect_exit 0 -- in_ns "$PB" org list --json
    expect_jq "$OUT" 'any(.[]; .name == "acme")'
    expect_exit 3 -- in_ns "$PB" --no-config org list
    expect_exit 0 -- in_ns env PREBUILDS_CONFIG="$TMP/uid.conf" "$PB" status
    printf 'db = sqlite:%s\nlock_id = x\n' "$DBF" >"$TMP/up/prebuilds/prebuilds.conf"
    expect_exit 2 -- in_ns "$PB" status
    expect_contains "$ERR" "/etc/prebuilds/prebuilds.conf:2: lock_id"
    expect_true "the machine's /etc untouched" test ! -e /etc/prebuilds/prebuilds.conf -o \
        "$(cat /etc/prebuilds/prebuilds.conf 2>/dev/null)" != "$(cat "$TMP/up/prebuilds/prebuilds.conf")"
else
    echo "skip: the default configuration file (needs root, unshare and overlayfs)"
fi

# ---- --help for every command, from the overview's list
expect_exit 0 -- "$PB" --help
awk '/^Reconciler commands:/ { r = 1; next } /^Data commands/ { d = 1; next } /^$/ { r = d = 0 }
     r && /^  [a-z]/ { print $1 }
     d && /^  [a-z]/ { print ($2 ~ /^[a-z]+$/ ? $1 " " $2 : $1) }' "$OUT" | sort -u >"$TMP/commands"
expect_true "the overview lists commands" test "$(wc -l <"$TMP/commands")" -ge 20
while read -r cmd; do
    # shellcheck disable=SC2086
    expect_exit 0 -- "$PB" $cmd --help
    expect_contains "$OUT" "usage: prebuilds [GLOBAL OPTIONS] $cmd"
    # shellcheck disable=SC2086
    expect_exit 0 -- "$PB" help $cmd
done <"$TMP/commands"
for fam in org template version preset; do
    expect_exit 0 -- "$PB" "$fam" --help
    expect_contains "$OUT" "$fam create"
    expect_exit 2 -- "$PB" --db "sqlite:$DBF" "$fam"
    expect_contains "$ERR" "missing verb"
    expect_exit 2 -- "$PB" --db "sqlite:$DBF" "$fam" delete
    expect_contains "$ERR" "unknown verb"
done

# ---- options where they belong, spelled out, once
D=(--db "sqlite:$DBF")
expect_exit 2 -- "$PB" status --db "sqlite:$DBF"
expect_contains "$ERR" "--db is a global option: put it before the command"
expect_exit 2 -- "$PB" "${D[@]}" org list --log-level debug
expect_contains "$ERR" "--log-level is a global option"
expect_exit 2 -- "$PB" "${D[@]}" --json status
expect_contains "$ERR" "not a global option (command options go after the command)"
expect_exit 2 -- "$PB" "${D[@]}" --interval 1s run
expect_contains "$ERR" "--interval is an option of run"
expect_exit 2 -- "$PB" "${D[@]}" status --lock-timeout 1s
expect_contains "$ERR" "--lock-timeout is an option of run"
for args in "status --js" "--d sqlite:x.db status" "run --interv 1s" "reconcile --dry" \
    "seed --org 1" "init --summ"; do
    # shellcheck disable=SC2086
    expect_exit 2 -- "$PB" $args
    expect_contains "$ERR" "unknown option"
done
for args in "status --json --json" "reconcile --dry-run --dry-run" "run --listen --no-listen" \
    "run --interval 1s --interval 2s" "org create a --id $PBU --id $PBU"; do
    # shellcheck disable=SC2086
    expect_exit 2 -- "$PB" "${D[@]}" $args
done
expect_exit 2 -- "$PB" --db a.db --db b.db status
expect_contains "$ERR" "--db given twice"
for args in "org list --desired-instances 3" "status --dry-run" "org create x --org y" \
    "template list --id $PBU" "uninstall --json" "pause --json" "member remove --org x --json" \
    "init --print-grants r --summary" "status extra"; do
    # shellcheck disable=SC2086
    expect_exit 2 -- "$PB" "${D[@]}" $args
done
expect_exit 2 -- "$PB" "${D[@]}" org create
expect_contains "$ERR" "missing NAME"
expect_exit 2 -- "$PB" "${D[@]}" template create t
expect_contains "$ERR" "missing --org"
expect_exit 2 -- "$PB" "${D[@]}" reconcile --json=yes
expect_contains "$ERR" "takes no value"
expect_exit 0 -- "$PB" "${D[@]}" org create --id="$PBU" -- --dashed-name
expect_exit 0 -- "$PB" "${D[@]}" org list
expect_contains "$OUT" "--dashed-name"
finish
