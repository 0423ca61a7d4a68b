#!/usr/bin/env bash
# The installed tree, checked the way a packager and a user meet it: `cmake --install`
# into a staging directory (DESTDIR) for a prefix given at install time, then the layout,
# the shared library's name and exports, pkg-config, and a program built against the
# staged tree only, linked once with the shared library and once with the static one.
#
# usage: test_install.sh BUILD_DIR SOURCE_DIR CC [EXTRA_CFLAGS]
# EXTRA_CFLAGS are the build's sanitizer flags, so the program links an instrumented
# library the way it must.
# `check && ok ... || fail ...` is meant: ok only echoes, so fail runs only on failure.
# shellcheck disable=SC2015
set -euo pipefail
build=$1 src=$2 cc=$3 extra_cflags=${4:-}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/stage
prefix=/opt/pbtest
root=$dest$prefix
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

echo "== cmake --install (DESTDIR=$dest, --prefix $prefix)"
DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"

pc=$(find "$root" -name prebuilds.pc -path '*/pkgconfig/*')
[ -n "$pc" ] || { cat "$tmp/install.log"; echo "FAIL: no prebuilds.pc installed" >&2; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
version=$(PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --modversion prebuilds)
major=${version%%.*}
echo "version $version, libdir ${libdir#"$dest"}"

# ---- layout ----
for f in bin/prebuilds include/prebuilds/prebuilds.h share/man/man1/prebuilds.1 \
  share/man/man5/prebuilds.conf.5 share/doc/prebuilds/prebuilds.conf.example \
  lib/systemd/system/prebuilds.service; do
  [ -f "$root/$f" ] && ok "$f" || fail "$prefix/$f not installed"
done
for h in "$src"/include/prebuilds/*.h; do
  cmp -s "$h" "$root/include/prebuilds/$(basename "$h")" ||
    fail "header $(basename "$h") not installed as is"
done
[ -f "$libdir/libprebuilds.a" ] && ok "libprebuilds.a" || fail "libprebuilds.a not installed"
[ -f "$libdir/libprebuilds.so.$version" ] && [ ! -L "$libdir/libprebuilds.so.$version" ] &&
  ok "libprebuilds.so.$version" || fail "libprebuilds.so.$version missing"
[ "$(readlink "$libdir/libprebuilds.so.$major")" = "libprebuilds.so.$version" ] &&
  ok "libprebuilds.so.$major -> libprebuilds.so.$version" || fail "libprebuilds.so.$major link"
[ "$(readlink "$libdir/libprebuilds.so")" = "libprebuilds.so.$major" ] &&
  ok "libprebuilds.so -> libprebuilds.so.$major" || fail "libprebuilds.so link"
out=$("$root/bin/prebuilds" --version)
[ "$out" = "prebuilds $version" ] && ok "--version: $out" || fail "--version says \"$out\""

# No installed text file may name the staging directory or the build tree (the
# binaries keep the build path in their debug information, as usual).
leaks=$(grep -rlIF -e "$dest" -e "$(cd "$build" && pwd)" "$root" || true)
[ -z "$leaks" ] && ok "no staging or build paths in installed files" ||
  fail "installed files name the staging or build directory: $leaks"
for f in "$root/bin/prebuilds" "$libdir/libprebuilds.so.$version"; do
  if readelf -d "$f" | grep -qE 'RPATH|RUNPATH'; then fail "$f has an RPATH/RUNPATH"; fi
done

# ---- generated files name the install-time prefix ----
grep -qx "prefix=$prefix" "$pc" && ok "prebuilds.pc: prefix=$prefix" || fail "prebuilds.pc: $(head -1 "$pc")"
unit=$root/lib/systemd/system/prebuilds.service
grep -q "^ExecStart=$prefix/bin/prebuilds run " "$unit" && ok "unit runs $prefix/bin/prebuilds" ||
  fail "unit: $(grep '^ExecStart=' "$unit")"
if command -v systemd-analyze >/dev/null; then
  # The staged binary stands in for the installed one; Documentation= must name the
  # staged man pages.
  sed "s|^ExecStart=$prefix/|ExecStart=$root/|" "$unit" >"$tmp/prebuilds.service"
  if MANPATH=$root/share/man systemd-analyze verify "$tmp/prebuilds.service" >"$tmp/verify" 2>&1; then
    ok "systemd-analyze verify"
  else
    fail "systemd-analyze verify: $(cat "$tmp/verify")"
  fi
else
  echo "skip: systemd-analyze verify (systemd-analyze not installed)"
fi
if command -v man >/dev/null; then
  for page in "$root"/share/man/man*/*; do
    LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 "$page" >/dev/null 2>"$tmp/man"
    [ ! -s "$tmp/man" ] && ok "man $(basename "$page") renders cleanly" ||
      fail "man $(basename "$page"): $(cat "$tmp/man")"
  done
else
  echo "skip: man page rendering (man not installed)"
fi

# ---- the shared library: its name and exactly the public API ----
soname=$(readelf -d "$libdir/libprebuilds.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libprebuilds.so.$major" ] && ok "SONAME $soname" || fail "SONAME is \"$soname\""
# Functions the public headers declare (comments gone after the preprocessor).
echo '#include <prebuilds/prebuilds.h>' | "$cc" -E -P -I"$root/include" - |
  grep -oE '\bpb_[A-Za-z0-9_]+ *\(' | tr -d '( ' | sort -u >"$tmp/declared"
nm -D --defined-only "$libdir/libprebuilds.so.$version" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' |
  sed 's/@.*//' | grep -v '^PREBUILDS_' | sort -u >"$tmp/exported"
if diff -u "$tmp/declared" "$tmp/exported" >"$tmp/sym.diff"; then
  ok "exports the $(wc -l <"$tmp/exported") functions of the public headers, nothing else"
else
  fail "exports differ from the public headers (- declared only, + exported only):
$(tail -n +3 "$tmp/sym.diff")"
fi
unversioned=$(objdump -T "$libdir/libprebuilds.so.$version" | awk '/ pb_/ && $(NF-1) != "PREBUILDS_'"$major"'"' || true)
[ -z "$unversioned" ] && ok "every symbol has version PREBUILDS_$major" ||
  fail "symbols without version PREBUILDS_$major: $unversioned"

# ---- a program built against the staged tree ----
export PKG_CONFIG_PATH=$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
cflags=$(pkg-config --cflags prebuilds)
libs=$(pkg-config --libs prebuilds)
echo "pkg-config --cflags --libs prebuilds: $cflags $libs"
warn="-std=c17 -Wall -Wextra -Werror"
expect() {
  cat <<EOF
version $version
dburl backend=pg password_shown=0 host_shown=1
dburl mysql refused: invalid argument
init schema_version=SCHEMA latest=SCHEMA user_exists=1
reconcile organizations=1 memberships=1 groups=1 group_memberships=1
status acme member=1 group=1 in_group=1
converged added=0 statements=1
EOF
}
check_run() { # name binary [env...]
  local name=$1 bin=$2
  shift 2
  rm -f "$tmp/$name.db"*
  if env "$@" "$bin" "$tmp/$name.db" >"$tmp/$name.out" 2>"$tmp/$name.err"; then
    sed -E 's/schema_version=[0-9]+ latest=[0-9]+/schema_version=SCHEMA latest=SCHEMA/' \
      "$tmp/$name.out" >"$tmp/$name.norm"
    # schema_version and latest must be the same number
    if grep -qE 'schema_version=([0-9]+) latest=\1 ' "$tmp/$name.out" &&
      diff -u <(expect) "$tmp/$name.norm" >"$tmp/$name.diff"; then
      ok "$name: output as expected"
    else
      fail "$name: unexpected output: $(cat "$tmp/$name.diff" "$tmp/$name.out")"
    fi
  else
    fail "$name: exit $?: $(cat "$tmp/$name.err")"
  fi
}

# Shared: -lprebuilds finds libprebuilds.so in the staged libdir, the loader finds
# libprebuilds.so.0 through LD_LIBRARY_PATH.
# shellcheck disable=SC2086
"$cc" $warn $extra_cflags $cflags "$src/tests/install/consumer.c" -o "$tmp/consumer_shared" $libs
needed=$(readelf -d "$tmp/consumer_shared" | sed -n 's/.*(NEEDED).*\[\(libprebuilds[^]]*\)\]/\1/p')
[ "$needed" = "libprebuilds.so.$major" ] && ok "shared consumer needs $needed" ||
  fail "shared consumer needs \"$needed\""
resolved=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer_shared" | awk '$1 ~ /^libprebuilds/ {print $3}')
[ "$resolved" = "$libdir/libprebuilds.so.$major" ] && ok "loader picks the staged library" ||
  fail "loader resolves libprebuilds to \"$resolved\""
check_run consumer_shared "$tmp/consumer_shared" LD_LIBRARY_PATH="$libdir"

# Static: libprebuilds.a, then what the .pc says it needs (Requires.private) linked as
# usual. (libpq's own static dependencies are not all packaged, so libpq stays shared.)
requires=$(pkg-config --print-requires-private prebuilds | awk '{print $1}' | tr '\n' ' ')
echo "Requires.private: $requires"
# shellcheck disable=SC2086,SC2046
"$cc" $warn $extra_cflags $cflags "$src/tests/install/consumer.c" -o "$tmp/consumer_static" \
  $(pkg-config --libs-only-L prebuilds) -l:libprebuilds.a $(pkg-config --libs $requires)
if readelf -d "$tmp/consumer_static" | grep -q 'NEEDED.*libprebuilds'; then
  fail "static consumer still needs libprebuilds.so"
else
  ok "static consumer does not need libprebuilds.so"
fi
check_run consumer_static "$tmp/consumer_static"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all install checks passed"
