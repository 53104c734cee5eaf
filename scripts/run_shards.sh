#!/usr/bin/env bash
# make run SHARDS=N: N throwaway PostgreSQL 15 clusters under .run/ and a
# PgCrab in front of them on port 6432 (RUN_PORT=N for another) with one
# logical database, app, sharded over all of them, and one sharded table
# declared (accounts, by id int8). Ctrl+C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/pgenv.sh
source scripts/pgshards.sh
root=$PWD/.run
port=${RUN_PORT:-6432}
n=${SHARDS:?SHARDS=N}
if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 16)); then
	echo "run: SHARDS must be a number from 1 to 16, not '$n'" >&2
	exit 1
fi

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	echo "run: something already listens on 127.0.0.1:$port (another make run?); try RUN_PORT=N make run SHARDS=$n" >&2
	exit 1
fi
# a previous run killed hard may have left its clusters behind
for f in "$root"/pg*.dir; do
	[[ -f "$f" ]] || continue
	PG_DIR=$(cat "$f")
	pg_stop
	rm -rf "$PG_DIR"
done
rm -rf "$root"
mkdir -p "$root"
[[ $(id -u) -eq 0 ]] && chmod 755 "$root"

pid=
stopping=0
cleanup() {
	trap - INT TERM EXIT
	[[ $stopping == 1 ]] && return
	stopping=1
	if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	[[ -n "$pid" ]] && { wait "$pid" 2>/dev/null || true; }
	pgshards_stop
	rm -f "$root"/pg*.dir
	echo "stopped PgCrab and the $n PostgreSQL clusters"
}
trap cleanup EXIT
trap 'exit 0' INT # Ctrl+C is how make run ends
trap 'exit 143' TERM

echo "starting $n PostgreSQL 15 clusters (initdb under .run/) ..."
pgshards_clusters "$root" app "$n"
for i in "${!SHARD_DIRS[@]}"; do echo "${SHARD_DIRS[i]}" >"$root/pg$i.dir"; done
# the same tables on every shard need the same role: PgCrab logs in as the
# pool user, which owns each shard's database
{
	cat <<INI
[pgcrab]
host = 127.0.0.1
port = $port

INI
	pgshards_sections app
	echo "; tables not listed here are unsharded: the same table on every shard"
	pgshards_table accounts app id int8
	cat <<INI
[user.pgcrab]
password = pgcrab
INI
} >"$root/pgcrab.ini"
env -u PGCRAB_CONFIG_FILE -u PGCRAB_HOST -u PGCRAB_PORT -u PGCRAB_WORKERS \
	./pgcrab --config "$root/pgcrab.ini" --workers 2 &
pid=$!
if ! wait_port "$port" "$pid"; then
	echo "run: pgcrab did not start listening on 127.0.0.1:$port (config: $root/pgcrab.ini)" >&2
	exit 1
fi
ports=$(IFS=,; echo "${SHARD_PORTS[*]}")
cat <<MSG

PgCrab is listening on 127.0.0.1:$port; database app is sharded over $n
PostgreSQL 15 clusters (ports ${ports//,/, }). Connect with:

    psql "host=127.0.0.1 port=$port user=pgcrab password=pgcrab dbname=app"

and try (docs/sharding.md says more):

    CREATE TABLE accounts (id int8 PRIMARY KEY, owner text, balance numeric);
    INSERT INTO accounts SELECT g, 'user ' || g, g * 10 FROM generate_series(1, 1000) g;

Each shard alone: psql "host=127.0.0.1 port=$port user=pgcrab password=pgcrab dbname=app_0"
Config: $root/pgcrab.ini. Press Ctrl+C to stop everything.

MSG
set +e
wait "$pid"
rc=$?
pid=
[[ $rc -eq 0 ]] || echo "pgcrab exited with status $rc"
exit "$rc"
