#!/usr/bin/env bash
# make run: a throwaway PostgreSQL 15 under .run/ and PgCrab in front of it
# on port 6432 with 2 workers. Ctrl+C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pgenv.sh
root=$PWD/.run
rm -rf "$root"
mkdir -p "$root"
[[ $(id -u) -eq 0 ]] && chmod 755 "$root"
pg_start "$root/pg"
port=${PGCRAB_PORT:-6432}
pgcrab_config "$root/pgcrab.ini" "$port"
cleanup() {
	trap - INT TERM EXIT
	[[ -n "${pid:-}" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	pg_stop
	echo "stopped PgCrab and PostgreSQL"
}
trap cleanup INT TERM EXIT
./pgcrab --config "$root/pgcrab.ini" --workers 2 &
pid=$!
wait_port "$port" || { echo "pgcrab did not start"; exit 1; }
cat <<MSG

PgCrab is listening on 127.0.0.1:$port in front of PostgreSQL 15 on port $PG_PORT.
Connect with:

    psql "host=127.0.0.1 port=$port user=pgcrab password=pgcrab dbname=$PG_DB"

Config: $root/pgcrab.ini. Press Ctrl+C to stop both.
MSG
wait "$pid"
