#!/usr/bin/env bash
# Builds otlpd's .deb from a built build tree into a temporary directory and checks it without
# installing it: its files, control fields, conffiles and maintainer scripts, lintian (when
# installed), the unit with systemd-analyze verify, and that the packaged otlpd accepts the
# packaged configuration. Every check runs; each failure says what differs.
# Usage: package_test.sh CPACK BUILD_DIR SOURCE_DIR VERSION
set -euo pipefail
cpack=$1 build=$2 source=$3 version=$4
arch=$(dpkg --print-architecture)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# same NAME EXPECTED ACTUAL: a unified diff when they differ.
same() {
  diff -u --label "expected $1" --label "actual $1" <(printf '%s\n' "$2") <(printf '%s\n' "$3") ||
    fail "$1 differs (above)"
}

# -B: the package and CPack's staging stay out of the build tree. cpack first makes the tree's
# preinstall target, which builds whatever is out of date: run this after the build, as CTest is.
if ! "$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/cpack" >"$tmp/cpack.log" 2>&1
then
  cat "$tmp/cpack.log"
  echo "FAIL: cpack"
  exit 1
fi
deb=$tmp/cpack/otlpd_${version}_${arch}.deb
[ -f "$deb" ] || { ls -l "$tmp/cpack"; echo "FAIL: no $deb"; exit 1; }

# Contents: mode, owner and path of every entry, in byte order whatever the locale.
same "dpkg-deb -c" "$(cat <<'EOF'
drwxr-xr-x root/root ./etc/
drwxr-xr-x root/root ./etc/otlpd/
-rw-r--r-- root/root ./etc/otlpd/config.yaml
-rw-r--r-- root/root ./etc/otlpd/otlpd.env
drwxr-xr-x root/root ./lib/
drwxr-xr-x root/root ./lib/systemd/
drwxr-xr-x root/root ./lib/systemd/system/
-rw-r--r-- root/root ./lib/systemd/system/otlpd.service
drwxr-xr-x root/root ./usr/
drwxr-xr-x root/root ./usr/bin/
-rwxr-xr-x root/root ./usr/bin/otlpd
-rwxr-xr-x root/root ./usr/bin/otlpd-loadgen
drwxr-xr-x root/root ./usr/share/
drwxr-xr-x root/root ./usr/share/doc/
drwxr-xr-x root/root ./usr/share/doc/otlpd/
-rw-r--r-- root/root ./usr/share/doc/otlpd/changelog.gz
-rw-r--r-- root/root ./usr/share/doc/otlpd/copyright
drwxr-xr-x root/root ./usr/share/man/
drwxr-xr-x root/root ./usr/share/man/man1/
-rw-r--r-- root/root ./usr/share/man/man1/otlpd-loadgen.1.gz
-rw-r--r-- root/root ./usr/share/man/man1/otlpd.1.gz
EOF
)" "$(dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' | LC_ALL=C sort -k3)"

# Control fields.
for field in Package:otlpd Version:"$version" Architecture:"$arch" Section:net Priority:optional; do
  same "${field%%:*}" "${field#*:}" "$(dpkg-deb -f "$deb" "${field%%:*}")"
done
[ -n "$(dpkg-deb -f "$deb" Maintainer)" ] || fail "no Maintainer"
[ -n "$(dpkg-deb -f "$deb" Description)" ] || fail "no Description"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
# Names without their soname digits, which change between Debian releases.
for dep in adduser libc6 'libstdc\+\+6' 'libgrpc\+\+[0-9.]+' 'libprotobuf[0-9]+' \
  'libyaml-cpp[0-9.]+' 'libzstd[0-9]+' zlib1g 'libssl[0-9]+'; do
  grep -Eq "(^|, )$dep( |,|$)" <<<"$depends" || fail "Depends lacks $dep"
done

# Control archive: conffiles and the maintainer scripts, executable and valid sh.
dpkg-deb -e "$deb" "$tmp/control"
same conffiles $'/etc/otlpd/config.yaml\n/etc/otlpd/otlpd.env' "$(cat "$tmp/control/conffiles")"
for script in postinst prerm postrm; do
  if [ ! -x "$tmp/control/$script" ]; then
    fail "$script missing or not executable"
  elif ! sh -n "$tmp/control/$script"; then
    fail "$script is not valid sh"
  fi
done

# The packaged files are the project's, unchanged.
dpkg-deb -x "$deb" "$tmp/root"
for pair in etc/otlpd/config.yaml:config/otlpd.yaml etc/otlpd/otlpd.env:packaging/otlpd.env \
  lib/systemd/system/otlpd.service:packaging/otlpd.service; do
  cmp "$tmp/root/${pair%%:*}" "$source/${pair#*:}" || fail "/${pair%%:*} is not ${pair#*:}"
done

"$tmp/root/usr/bin/otlpd" validate --config "$tmp/root/etc/otlpd/config.yaml" ||
  fail "packaged otlpd validate --config on the packaged config.yaml: exit $?"

# verify checks that ExecStart's binary and the Documentation= man page exist: point it at the
# extracted ones (the man page check needs man itself).
if command -v systemd-analyze >/dev/null; then
  mkdir "$tmp/unit"
  sed "s|/usr/bin/otlpd|$tmp/root/usr/bin/otlpd|" "$tmp/root/lib/systemd/system/otlpd.service" \
    >"$tmp/unit/otlpd.service"
  man_check=--man=yes
  command -v man >/dev/null || { man_check=--man=no; echo "SKIP: the man page check of verify (no man)"; }
  if ! out=$(MANPATH="$tmp/root/usr/share/man" systemd-analyze verify "$man_check" "$tmp/unit/otlpd.service" 2>&1) ||
    [ -n "$out" ]; then
    echo "$out"
    fail "systemd-analyze verify otlpd.service"
  fi
else
  echo "SKIP: systemd-analyze verify (no systemd-analyze)"
fi

if command -v lintian >/dev/null; then
  lint=$(lintian --allow-root --fail-on none "$deb" 2>&1) || fail "lintian did not run: exit $?"
  echo "$lint"
  if grep -q '^E:' <<<"$lint"; then fail "lintian reports errors"; fi
else
  echo "SKIP: lintian (not installed; scripts/install-deps.sh installs it)"
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures package check(s) failed"
  exit 1
fi
echo "package $deb: all checks passed"
