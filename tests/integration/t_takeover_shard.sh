#!/usr/bin/env bash
# A client of a sharded database is handed over by an online upgrade like
# a plain shard's: it holds no server between transactions, and the new
# process adopts it with its database (the router's state starts afresh),
# its SET parameters and its prepared statement, on the same connection.
source "$(dirname "$0")/lib.sh"
source "$REPO_DIR/scripts/pgshards.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "takeover of a sharded database's client" "direct mode: there is no PgCrab to upgrade"
	exit 0
fi
NEW_PID=
trap 'rc=$?; [[ -n "$NEW_PID" ]] && kill -KILL "$NEW_PID" 2>/dev/null; pgshards_stop; (exit $rc); t_cleanup' EXIT

pgshards_databases sho 2 || { not_ok "2 shard databases are created"; exit 1; }
sections="$(
	pgshards_sections app
	pgshards_table tho app id int8
)"
PGCRAB_EXTRA_SECTIONS="$sections" pgcrab_start || exit 1
OLD_PID=$PGCRAB_PID
check "a sharded table is created through PgCrab" timeout 60 psql -X -q -At -v ON_ERROR_STOP=1 \
	-d "host=127.0.0.1 port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=app" \
	-c "CREATE TABLE tho (id int8 PRIMARY KEY, v text)"

/usr/bin/python3 "$LIB_DIR/drivers/takeover_client.py" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" \
	app 1 "$T_DIR/go" "$T_DIR/client.state" >"$T_DIR/client.out" 2>&1 &
client=$!
check "the client of the sharded database is set up" poll 20 grep -qs ready "$T_DIR/client.state"
kill -USR2 "$OLD_PID"
check "a new process serves" poll 20 grep -q "upgrade: process [0-9]* serves" "$T_DIR/pgcrab.log"
NEW_PID=$(sed -n 's/.*upgrade: process \([0-9]*\) serves.*/\1/p' "$T_DIR/pgcrab.log" | head -1)
check "the old process exits" poll 20 bash -c "! kill -0 $OLD_PID 2>/dev/null"
wait "$OLD_PID"
PGCRAB_PID=
check "the client was handed over" \
	poll 10 grep -q "previous process handed over 1 idle client" "$T_DIR/pgcrab.log"
touch "$T_DIR/go.1"
check "the client checked after the upgrade" poll 60 grep -q "checked 1" "$T_DIR/client.state"
wait "$client"
expect_eq "the client ends well" 0 "$?"
sed 's/^\(ok\|not ok\) - /\1 - sharded database client: /' "$T_DIR/client.out"
grep -q "^not ok" "$T_DIR/client.out" && T_FAILED=$((T_FAILED + 1))
expect_eq "the new process routes a query" 0 "$(timeout 30 psql -X -At \
	-d "host=127.0.0.1 port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=app" \
	-c 'SELECT count(*) FROM tho')"
kill -TERM "$NEW_PID"
check "the new process stops on SIGTERM" poll 10 bash -c "! kill -0 $NEW_PID 2>/dev/null"
NEW_PID=
check "no sanitizer findings" \
	bash -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer' '$T_DIR/pgcrab.log'"
