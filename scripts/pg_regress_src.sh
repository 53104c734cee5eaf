#!/usr/bin/env bash
# Prints the directory of PostgreSQL's regression suite (pg_regress's
# inputs) for the installed postgresql-15, fetching and building it once.
#
#   DIR=$(scripts/pg_regress_src.sh)
#   DIR/regress/   sql/, expected/, data/, parallel_schedule, resultmap
#   DIR/lib/       regress.so (built here), autoinc.so and refint.so (copied
#                  from the server's own library directory): pg_regress's
#                  --dlpath, so every test finds its C functions there
#   DIR/VERSION    the Debian version the files come from
#
# The test files come from the postgresql-15 Debian source package of the
# installed version (so the expected outputs are those of the server that
# runs them); regress.so is compiled from the same source's regress.c
# against the headers of postgresql-server-dev-15 of that version, which is
# downloaded and unpacked into the cache but not installed (installing it
# would upgrade the server to the newest point release). Only the Debian
# archive is used, through apt. Needs root the first time (a deb-src entry
# is added under /etc/apt/sources.list.d/ when there is none); later runs
# find the cache and do nothing. Non-interactive and idempotent; concurrent
# runs wait for each other (flock).
#
# PG_REGRESS_CACHE: where the cache lives (default /var/cache/pgcrab).
set -euo pipefail

CACHE_ROOT=${PG_REGRESS_CACHE:-/var/cache/pgcrab}
PKGLIBDIR=$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir 2>/dev/null || echo /usr/lib/postgresql/15/lib)
export DEBIAN_FRONTEND=noninteractive

log() { echo "pg_regress_src: $*" >&2; }
die() { log "$*"; exit 1; }

version=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null) ||
	die "postgresql-15 is not installed"
[[ -n "$version" ]] || die "postgresql-15 is not installed"
upstream=${version%%-*} # 15.18-0+deb12u1 -> 15.18
dest=$CACHE_ROOT/pg_regress-$version

if [[ -f "$dest/.complete" ]]; then
	echo "$dest"
	exit 0
fi

mkdir -p "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.pg_regress_src.lock"
flock 9
# another run may have finished it while we waited
if [[ -f "$dest/.complete" ]]; then
	echo "$dest"
	exit 0
fi

# apt can see source packages: a deb-src entry for the archives the binary
# packages come from. Our own file, so the system's lists stay as they are.
have_src() {
	local out
	out=$(apt-cache showsrc postgresql-15 2>/dev/null) || true
	grep -qx "Version: $version" <<<"$out"
}
if ! have_src; then
	src_list=/etc/apt/sources.list.d/pgcrab-deb-src.sources
	if [[ ! -f "$src_list" ]]; then
		[[ $(id -u) -eq 0 ]] || die "no deb-src entry for postgresql-15 $version, and adding one needs root"
		log "adding $src_list"
		cat >"$src_list" <<'SRC'
# added by PgCrab's scripts/pg_regress_src.sh: the regression suite comes
# from the postgresql-15 source package
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	fi
	log "apt-get update"
	apt-get update -qq >&2 || log "apt-get update reported errors; trying anyway"
fi
have_src || die "the archive offers no postgresql-15 source of version $version (apt-cache showsrc postgresql-15)"

work=$(mktemp -d "$CACHE_ROOT/.pg_regress-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
dl=$CACHE_ROOT/downloads
mkdir -p "$dl"
chmod 755 "$dl"
# apt's sandbox user cannot write a root-only directory: download as root
# without the (harmless here) warning about it
apt_q=(-q -o APT::Sandbox::User=root)
orig=$dl/postgresql-15_$upstream.orig.tar.bz2
if [[ ! -s "$orig" ]]; then
	log "downloading the postgresql-15 $version source package"
	(cd "$dl" && apt-get "${apt_q[@]}" source --download-only "postgresql-15=$version" >&2)
fi
[[ -s "$orig" ]] || die "no $orig after apt-get source"
devdeb=$(ls "$dl"/postgresql-server-dev-15_"${version//+/?}"_*.deb 2>/dev/null | head -1 || true)
if [[ -z "$devdeb" ]]; then
	log "downloading postgresql-server-dev-15 $version (unpacked here, not installed)"
	(cd "$dl" && apt-get "${apt_q[@]}" download "postgresql-server-dev-15=$version" >&2)
	devdeb=$(ls "$dl"/postgresql-server-dev-15_*.deb | head -1)
fi

log "unpacking src/test/regress"
tar -xjf "$orig" -C "$work" "postgresql-$upstream/src/test/regress"
mkdir -p "$work/out/regress" "$work/out/lib" "$work/dev"
src=$work/postgresql-$upstream/src/test/regress
cp -r "$src/sql" "$src/expected" "$src/data" "$src/parallel_schedule" "$src/resultmap" \
	"$work/out/regress/"
# PostgreSQL 15 has no input/ and output/ any more (the tests read paths from
# the environment); copy them should a version still have them
for d in input output; do
	[[ -d "$src/$d" ]] && cp -r "$src/$d" "$work/out/regress/"
done

log "building regress.so"
dpkg-deb -x "$devdeb" "$work/dev"
inc=$work/dev/usr/include/postgresql/15/server
[[ -f "$inc/postgres.h" ]] || die "no server headers in $devdeb"
gcc -O2 -fPIC -shared -I"$inc" -I"$work/dev/usr/include/postgresql" \
	-o "$work/out/lib/regress.so" "$src/regress.c" >&2 || die "regress.so does not build"
# the server's contrib/spi modules that triggers.sql loads by path
for m in autoinc refint; do
	if [[ -f "$PKGLIBDIR/$m.so" ]]; then
		cp "$PKGLIBDIR/$m.so" "$work/out/lib/"
	else
		log "no $PKGLIBDIR/$m.so: tests loading it will fail"
	fi
done

echo "$version" >"$work/out/VERSION"
# the server (the postgres OS user) reads data/ and loads lib/
chmod -R a+rX "$work/out"
touch "$work/out/.complete"
rm -rf "$dest"
mv "$work/out" "$dest"
chmod 755 "$dest"
log "ready: $dest"
echo "$dest"
