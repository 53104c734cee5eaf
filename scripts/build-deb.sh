#!/usr/bin/env bash
# Builds the Debian package from this checkout's tracked files (as they are
# in the working tree) in a scratch copy, so that dh's `make clean` never
# touches the checkout's own build/ directories.
#
#   scripts/build-deb.sh [OUT_DIR]     default OUT_DIR: ./dist/deb
#
# Prints the path of the .deb. Needs dpkg-dev, debhelper and the
# Build-Depends of debian/control (scripts/deps.sh installs them).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/dist/deb}
version=$(dpkg-parsechangelog -l "$repo/debian/changelog" -S Version)
work=$(mktemp -d "${TMPDIR:-/tmp}/pgcrab-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/pgcrab-$version
mkdir -p "$src" "$out"
(cd "$repo" && git ls-files -z | tar --null --ignore-failed-read -T - -cf -) | tar -x -C "$src"
(cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)" >"$work/build.log" 2>&1) || {
	tail -40 "$work/build.log" >&2
	exit 1
}
deb=$(ls "$work"/pgcrab_"$version"_*.deb)
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out"/
echo "$out/$(basename "$deb")"
