#!/usr/bin/env bash
# Installs the Debian 12 packages PgCrab needs to build and test, only those
# that are missing (pgbench comes with postgresql-15; clang builds the
# libFuzzer targets; debhelper and lintian build and check the Debian
# package, systemd brings systemd-analyze and systemd-socket-activate for
# t_deploy; prometheus brings promtool, which checks t_metrics' page). Quiet
# when everything is there. As non-root it uses
# sudo, or prints the command to run as root.
set -euo pipefail

packages=(gcc make pkg-config clang clang-format iproute2 liburing-dev libinih-dev libpg-query-dev libprotobuf-c-dev libcmocka-dev libpq-dev
	libssl-dev libidn-dev libsystemd-dev postgresql-15 postgresql-client-15 python3 procps
	python3-asyncpg python3-psycopg libpostgresql-jdbc-java
	debhelper lintian systemd prometheus prometheus-pgbouncer-exporter)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# node and npm (node-postgres tests): any installation will do
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
# a JDK (pgjdbc tests run a .java source file): any installation will do
command -v javac >/dev/null || missing+=(default-jdk-headless)
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "installing: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo env DEBIAN_FRONTEND=noninteractive)
else
	echo "deps: missing packages; as root, run:" >&2
	echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
