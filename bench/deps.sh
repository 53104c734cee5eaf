#!/usr/bin/env bash
# Installs what `make bench` needs beyond scripts/deps.sh: PgBouncer (the
# pooler PgCrab is compared with) and gnuplot (the plot). Only what is missing.
set -euo pipefail

packages=(pgbouncer gnuplot-nox)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "installing: ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	echo "bench deps: missing packages; run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's package starts a system-wide pgbouncer on port 6432; the benchmark
# runs its own, and a stray one would hold PgCrab's default port.
if command -v systemctl >/dev/null && systemctl is-active --quiet pgbouncer 2>/dev/null; then
	"${sudo[@]}" systemctl stop pgbouncer || true
fi
