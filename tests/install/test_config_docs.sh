#!/usr/bin/env bash
# The configuration documents against the code: the keys and defaults of the daemon's
# settings table (src/common/config.c) must be exactly those of the example file
# (contrib/prebuilds.conf.example) and of prebuilds.conf(5), and the example with every
# line uncommented must be a configuration the daemon accepts.
#
# usage: test_config_docs.sh PREBUILDS_BINARY SOURCE_DIR
set -euo pipefail
bin=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# `[APP_CONF_X] = {"name", DEFAULT},` where DEFAULT is a string or a PB_DEFAULT_* macro
# of the public headers.
sed -nE 's/^ *\[APP_CONF_[A-Z_]+\] = \{"([a-z_]+)", ([^}]*)\},.*/\1 \2/p' \
  "$src/src/common/config.c" >"$tmp/table"
[ -s "$tmp/table" ] || { echo "FAIL: no settings table found in src/common/config.c" >&2; exit 1; }
while read -r key dflt; do
  case $dflt in
  \"*) dflt=${dflt#\"} dflt=${dflt%\"} ;;
  *) dflt=$(sed -nE "s/^#define $dflt +\"(.*)\"$/\\1/p" "$src"/include/prebuilds/*.h) ;;
  esac
  printf '%s = %s\n' "$key" "$dflt"
done <"$tmp/table" | sort >"$tmp/code"

# The example: `#key = value` lines, a quoted value unquoted.
example=$src/contrib/prebuilds.conf.example
sed -nE 's/^#([a-z_]+) = (.*)$/\1 = \2/p' "$example" | sed -E 's/= "(.*)"$/= \1/' |
  sort >"$tmp/example"
if diff -u "$tmp/code" "$tmp/example" >"$tmp/diff"; then
  echo "ok: the example lists the $(wc -l <"$tmp/code") keys with the defaults of config.c"
else
  fail "example vs config.c (- code, + example):
$(tail -n +3 "$tmp/diff")"
fi

# The man page: one `*key* = ...` entry per key, in the KEYS section.
sed -nE 's/^\*([a-z_]+)\* = .*/\1/p' "$src/docs/prebuilds.conf.5.scd" | sort >"$tmp/man"
if diff -u <(cut -d' ' -f1 "$tmp/code") "$tmp/man" >"$tmp/diff"; then
  echo "ok: prebuilds.conf(5) describes every key"
else
  fail "prebuilds.conf(5) vs config.c (- code, + man page):
$(tail -n +3 "$tmp/diff")"
fi

# Every line uncommented: the daemon must accept it (the database comes from --db,
# which wins over the file's default SQLite path).
sed -E 's/^#([a-z_]+ = )/\1/' "$example" >"$tmp/all.conf"
"$bin" --db "sqlite:$tmp/x.db" init >/dev/null
if "$bin" --db "sqlite:$tmp/x.db" run --config "$tmp/all.conf" --once >"$tmp/run.out" 2>&1; then
  echo "ok: the uncommented example runs a pass"
else
  fail "run --config <uncommented example> --once: $(cat "$tmp/run.out")"
fi

if [ "$failures" -ne 0 ]; then
  exit 1
fi
