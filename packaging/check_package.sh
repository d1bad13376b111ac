#!/usr/bin/env bash
# Builds the .deb from a finished build tree and checks what it installs:
# the files, the conffile, the library dependencies dpkg-shlibdeps found,
# that the packaged (stripped) binary runs, and — where systemd-analyze is
# installed — that systemd accepts the unit.
#   packaging/check_package.sh <build_dir>
set -euo pipefail

build=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "check_package: $*" >&2
  exit 1
}

if ! (cd "$build" && cpack -G DEB -B "$work" > "$work/cpack.log" 2>&1); then
  cat "$work/cpack.log" >&2
  fail "cpack failed"
fi
deb=$(ls "$work"/ferry_*_*.deb 2> /dev/null | head -n 1)
[[ -n $deb ]] || fail "no ferry_<version>_<arch>.deb in $(ls "$work")"
echo "package: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for file in ./usr/bin/ferry ./etc/ferry/ferry.toml \
  ./lib/systemd/system/ferry.service ./usr/share/doc/ferry/README.md \
  ./usr/share/doc/ferry/architecture.md; do
  grep -qx -- "$file" <<< "$contents" || fail "$file is not in the package"
done
unexpected=$(grep -v -E '^\./(usr/bin|usr/share/doc/ferry|etc/ferry|lib/systemd/system|usr|usr/share|usr/share/doc|etc|lib|lib/systemd)?/?$' \
  <<< "$contents" | grep -v -E '^\./(usr/bin/ferry|etc/ferry/ferry\.toml|lib/systemd/system/ferry\.service|usr/share/doc/ferry/[A-Za-z_]+\.md)$' || true)
[[ -z $unexpected ]] || fail "unexpected files in the package: $unexpected"

# An operator's edits to the config survive upgrades.
dpkg-deb -I "$deb" conffiles | grep -qx /etc/ferry/ferry.toml \
  || fail "/etc/ferry/ferry.toml is not a conffile"

depends=$(dpkg-deb -f "$deb" Depends)
# RocksDB is linked in (CMakeLists.txt says why); its compression libraries
# are shared.
for lib in libcaf-core libcaf-io libsnappy libzstd libsecp256k1 libssl3 libsimdjson \
  libspdlog libprometheus-cpp-core libboost-json; do
  grep -q "$lib" <<< "$depends" || fail "Depends lacks $lib: $depends"
done
! grep -q librocksdb <<< "$depends" || fail "Depends has librocksdb, which is linked in: $depends"

root=$work/root
dpkg-deb -x "$deb" "$root"
"$root/usr/bin/ferry" --help > /dev/null || fail "the packaged ferry does not run"
cmp -s "$root/etc/ferry/ferry.toml" "$(dirname "$0")/../config/ferry.example.toml" \
  || fail "/etc/ferry/ferry.toml is not config/ferry.example.toml"

if command -v systemd-analyze > /dev/null; then
  # The unit as installed, pointing at the binary just unpacked.
  sed "s#/usr/bin/ferry#$root/usr/bin/ferry#" "$root/lib/systemd/system/ferry.service" \
    > "$work/ferry.service"
  if ! verify=$(systemd-analyze verify "$work/ferry.service" 2>&1); then
    echo "$verify" >&2
    fail "systemd-analyze verify refused the unit"
  fi
  [[ -z $verify ]] || { echo "$verify" >&2; fail "systemd-analyze verify warned"; }
  echo "unit: systemd-analyze verify passed"
else
  echo "unit: systemd-analyze not installed, not verified"
fi
echo "package ok"
