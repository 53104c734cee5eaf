#!/usr/bin/env bash
# make run: a throwaway PostgreSQL 15 under .run/ and PgCrab in front of it
# on port 6432 (RUN_PORT=N for another) with 2 workers. Ctrl+C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
# make run SHARDS=N: a sharded database over N clusters instead
[[ -n "${SHARDS:-}" ]] && exec scripts/run_shards.sh
source scripts/pgenv.sh
root=$PWD/.run
port=${RUN_PORT:-6432}

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	echo "run: something already listens on 127.0.0.1:$port (another make run?); try RUN_PORT=N make run" >&2
	exit 1
fi
# a previous run killed hard may have left its PostgreSQL behind
if [[ -f "$root/pg.dir" ]]; then
	PG_DIR=$(cat "$root/pg.dir")
	pg_stop
	rm -rf "$PG_DIR"
fi
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
	pg_stop fast
	echo "stopped PgCrab and PostgreSQL"
}
trap cleanup EXIT
trap 'exit 0' INT  # Ctrl+C is how make run ends
trap 'exit 143' TERM

echo "starting PostgreSQL 15 (initdb under .run/) ..."
pg_start "$root/pg"
echo "$PG_DIR" >"$root/pg.dir"
pgcrab_config "$root/pgcrab.ini" "$port"
env -u PGCRAB_CONFIG_FILE -u PGCRAB_HOST -u PGCRAB_PORT -u PGCRAB_WORKERS \
	./pgcrab --config "$root/pgcrab.ini" --workers 2 &
pid=$!
if ! wait_port "$port" "$pid"; then
	echo "run: pgcrab did not start listening on 127.0.0.1:$port" >&2
	exit 1
fi
cat <<MSG

PgCrab is listening on 127.0.0.1:$port in front of PostgreSQL 15 on port $PG_PORT.
Connect with:

    psql "host=127.0.0.1 port=$port user=pgcrab password=pgcrab dbname=$PG_DB"

Config: $root/pgcrab.ini, PostgreSQL data: $PG_DIR/data. Press Ctrl+C to stop both.

MSG
set +e
wait "$pid"
rc=$?
pid=
[[ $rc -eq 0 ]] || echo "pgcrab exited with status $rc"
exit "$rc"
