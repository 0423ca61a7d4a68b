#!/usr/bin/env bash
# The Debian packages end to end: built from a copy of the tree (the checkout stays
# clean), checked by lintian (any error fails), installed on this machine, checked as
# installed (binary, unit, conffile, system user, library and pkg-config), then purged.
# CI runs it after `make test`; `make package` runs the build alone. Installing needs
# root, and refuses to run over a prebuilds package that is already installed.
#
# usage: build_and_check.sh [--build-only] [--out DIR]
#   --out DIR     also copy the .deb files (and the build log) to DIR
#   --build-only  stop after the build and lintian
# `check && ok ... || fail ...` is meant: ok only echoes, so fail runs only on failure.
# shellcheck disable=SC2015
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build_only=0 out=
while [ $# -gt 0 ]; do
  case $1 in
  --build-only) build_only=1 ;;
  --out) out=${2:?--out needs a directory} && shift ;;
  *) echo "usage: $0 [--build-only] [--out DIR]" >&2 && exit 2 ;;
  esac
  shift
done

packages="prebuilds libprebuilds0 libprebuilds-dev"
tmp=$(mktemp -d /tmp/prebuilds-package.XXXXXX)
installed=0 user_existed=1
cleanup() {
  if [ "$installed" = 1 ]; then
    echo "== cleanup: purging $packages"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $packages >/dev/null 2>&1 || true
  fi
  if [ "$user_existed" = 0 ] && getent passwd prebuilds >/dev/null; then
    deluser --system --quiet prebuilds >/dev/null 2>&1 || true
  fi
  if [ "$user_existed" = 0 ] && getent group prebuilds >/dev/null; then
    delgroup --system --quiet --only-if-empty prebuilds >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
ok() { echo "ok: $*"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---- a copy of the tree: tracked and untracked files, not what .gitignore ignores ----
mkdir "$tmp/src"
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$here" ls-files -z --cached --others --exclude-standard |
    tar -C "$here" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$tmp/src" -xf -
else
  tar -C "$here" --exclude='./build' --exclude='./build-*' -cf - . | tar -C "$tmp/src" -xf -
fi

project_version=$(sed -nE 's/^project\(prebuilds VERSION ([0-9.]+).*/\1/p' "$tmp/src/CMakeLists.txt")
deb_version=$(dpkg-parsechangelog -l "$tmp/src/debian/changelog" -S Version)
if [ "${deb_version%%-*}" != "$project_version" ]; then
  echo "FAIL: debian/changelog has version $deb_version, CMakeLists.txt $project_version" >&2
  exit 1
fi
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

# ---- build ----
echo "== dpkg-buildpackage -us -uc -b ($deb_version, $arch; DEB_BUILD_OPTIONS=nocheck)"
t0=$(now)
if ! (cd "$tmp/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b) \
  >"$tmp/build.log" 2>&1; then
  tail -n 40 "$tmp/build.log" >&2
  echo "FAIL: dpkg-buildpackage" >&2
  exit 1
fi
t1=$(now)
echo "built in $(secs "$t0" "$t1") s:"
debs=()
for p in $packages; do
  deb=$tmp/${p}_${deb_version}_$arch.deb
  [ -f "$deb" ] || { echo "FAIL: $deb was not built" >&2; exit 1; }
  debs+=("$deb")
  echo "  $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
done
if [ -n "$out" ]; then
  mkdir -p "$out"
  cp "${debs[@]}" "$tmp/build.log" "$out/"
  echo "copied to $out"
fi

# ---- lintian ----
echo "== lintian"
t0=$(now)
changes=$tmp/prebuilds_${deb_version}_$arch.changes
lintian --fail-on error --tag-display-limit 0 "$changes" >"$tmp/lintian.out" 2>&1 && lrc=0 || lrc=$?
t1=$(now)
cat "$tmp/lintian.out"
if [ "$lrc" -ne 0 ] || grep -q '^E:' "$tmp/lintian.out"; then
  fail "lintian reported errors (exit $lrc)"
else
  ok "lintian: no errors ($(grep -c '^W:' "$tmp/lintian.out" || true) warnings; $(secs "$t0" "$t1") s)"
fi
if [ "$build_only" = 1 ]; then
  [ "$failures" -eq 0 ] || exit 1
  exit 0
fi

# ---- install ----
if [ "$(id -u)" != 0 ]; then
  echo "FAIL: installing the packages needs root (or use --build-only)" >&2
  exit 1
fi
for p in $packages; do
  if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed; then
    echo "FAIL: $p is already installed here; not touching it" >&2
    exit 1
  fi
done
getent passwd prebuilds >/dev/null || user_existed=0
echo "== apt-get install ${debs[*]##*/}"
installed=1
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  -o DPkg::Lock::Timeout=300 "${debs[@]}" >"$tmp/install.log" 2>&1; then
  tail -n 30 "$tmp/install.log" >&2
  echo "FAIL: apt-get install" >&2
  exit 1
fi

said=$(prebuilds --version 2>&1) && [ "$said" = "prebuilds $project_version" ] &&
  ok "$(command -v prebuilds) --version: $said" || fail "prebuilds --version: $said"

# The unit: shipped, pointing at the binary, accepted by systemd, neither enabled nor
# started by the maintainer scripts.
unit=/lib/systemd/system/prebuilds.service
dpkg -L prebuilds | grep -qx "$unit" && ok "$unit in the package" || fail "$unit not in the package"
grep -q '^ExecStart=/usr/bin/prebuilds run --config /etc/prebuilds/prebuilds.conf$' "$unit" &&
  ok "unit runs /usr/bin/prebuilds" || fail "unit: $(grep '^ExecStart=' "$unit" || true)"
# systemd need not be running: verify reads the unit and its references offline.
if systemd-analyze verify "$unit" >"$tmp/verify" 2>&1; then
  ok "systemd-analyze verify $unit"
else
  fail "systemd-analyze verify: $(cat "$tmp/verify")"
fi
state=$(systemctl is-enabled prebuilds.service 2>&1 || true)
[ "$state" = disabled ] && ok "unit disabled" || fail "systemctl is-enabled says \"$state\""
[ ! -e /etc/systemd/system/multi-user.target.wants/prebuilds.service ] ||
  fail "the unit was enabled (multi-user.target.wants link)"
# Without systemd running, starting cannot be observed: read the maintainer scripts.
# They may try-restart a running service after an upgrade and stop it on removal, but
# never start it.
info=/var/lib/dpkg/info
if grep -qE 'deb-systemd-invoke (start|restart)' "$info/prebuilds.postinst"; then
  fail "postinst starts the unit: $(grep -nE 'deb-systemd-invoke' "$info/prebuilds.postinst")"
else
  ok "postinst never starts the unit"
fi
grep -q 'deb-systemd-invoke try-restart' "$info/prebuilds.postinst" &&
  ok "postinst restarts a running service after an upgrade" || fail "postinst has no try-restart"
grep -q 'deb-systemd-invoke stop prebuilds.service' "$info/prebuilds.prerm" &&
  ok "prerm stops the service on removal" || fail "prerm does not stop the service"

# The system user and the conffile it can read.
if pw=$(getent passwd prebuilds); then
  uid=$(echo "$pw" | cut -d: -f3)
  [ "$uid" -lt 1000 ] && ok "system user prebuilds (uid $uid, shell ${pw##*:})" ||
    fail "user prebuilds has uid $uid, not a system uid"
else
  fail "no user prebuilds"
fi
conf=/etc/prebuilds/prebuilds.conf
dpkg-query -W -f='${Conffiles}\n' prebuilds | grep -q " $conf " && ok "$conf is a conffile" ||
  fail "$conf is not a conffile"
perm=$(stat -c '%a %U %G' "$conf" 2>&1 || true)
[ "$perm" = "640 root prebuilds" ] && ok "$conf: $perm" || fail "$conf: \"$perm\", want 640 root prebuilds"
cmp -s "$conf" /usr/share/doc/prebuilds/prebuilds.conf.example &&
  ok "$conf is the example" || fail "$conf differs from the example"
for m in man1/prebuilds.1.gz man5/prebuilds.conf.5.gz; do
  [ -f "/usr/share/man/$m" ] && ok "/usr/share/man/$m" || fail "/usr/share/man/$m missing"
done

# The daemon as its user, with the conffile: one pass on a fresh SQLite file.
mkdir "$tmp/state" && chown prebuilds: "$tmp/state" && chmod 755 "$tmp"
db="sqlite:$tmp/state/p.db"
if runuser -u prebuilds -- prebuilds --db "$db" init >"$tmp/run.out" 2>&1 &&
  runuser -u prebuilds -- prebuilds --db "$db" run --config "$conf" --once >>"$tmp/run.out" 2>&1; then
  ok "prebuilds run --config $conf --once as user prebuilds"
else
  fail "run as prebuilds: $(cat "$tmp/run.out")"
fi

# The development package: a program built with pkg-config alone, shared then static.
cflags=$(pkg-config --cflags prebuilds) libs=$(pkg-config --libs prebuilds)
[ "$(pkg-config --modversion prebuilds)" = "$project_version" ] && ok "pkg-config prebuilds $project_version" ||
  fail "pkg-config --modversion prebuilds: $(pkg-config --modversion prebuilds 2>&1)"
check_consumer() { # name
  if "$tmp/$1" "$tmp/$1.db" >"$tmp/$1.out" 2>&1 &&
    grep -qx 'status acme member=1 group=1 in_group=1' "$tmp/$1.out" &&
    grep -qx 'converged added=0 statements=1' "$tmp/$1.out"; then
    ok "$1 runs: $(tr '\n' ';' <"$tmp/$1.out")"
  else
    fail "$1: $(cat "$tmp/$1.out")"
  fi
}
# shellcheck disable=SC2086
if cc -std=c17 -Wall -Wextra -Werror $cflags "$here/tests/install/consumer.c" \
  -o "$tmp/consumer_shared" $libs 2>"$tmp/cc.err"; then
  lib=$(ldd "$tmp/consumer_shared" | awk '$1 ~ /^libprebuilds/ {print $3}')
  [ -n "$lib" ] && [ "$(readlink -f "$lib")" = "/usr/lib/$multiarch/libprebuilds.so.$project_version" ] &&
    ok "shared consumer loads $lib" || fail "shared consumer loads \"$lib\""
  check_consumer consumer_shared
else
  fail "shared consumer does not build: $(cat "$tmp/cc.err")"
fi
# shellcheck disable=SC2086,SC2046
if cc -std=c17 -Wall -Wextra -Werror $cflags "$here/tests/install/consumer.c" \
  -o "$tmp/consumer_static" -l:libprebuilds.a \
  $(pkg-config --libs $(pkg-config --print-requires-private prebuilds | awk '{print $1}')) \
  2>"$tmp/cc.err"; then
  if readelf -d "$tmp/consumer_static" | grep -q 'NEEDED.*libprebuilds'; then
    fail "static consumer still needs libprebuilds.so"
  fi
  check_consumer consumer_static
else
  fail "static consumer does not build: $(cat "$tmp/cc.err")"
fi

# ---- purge ----
echo "== apt-get purge $packages"
# shellcheck disable=SC2086
if DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=300 $packages \
  >"$tmp/purge.log" 2>&1; then
  installed=0
  ok "purged"
else
  fail "apt-get purge: $(tail -n 20 "$tmp/purge.log")"
fi
for f in /usr/bin/prebuilds "$unit" "$conf" /usr/include/prebuilds; do
  [ ! -e "$f" ] || fail "$f still there after purge"
done
if dpkg-statoverride --list "$conf" >/dev/null; then
  fail "statoverride for $conf left after purge"
fi
if [ "$user_existed" = 0 ]; then
  echo "(the system user prebuilds stays after a purge, by design; removing the one this run made)"
fi

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all package checks passed"
