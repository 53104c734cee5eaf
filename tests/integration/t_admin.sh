# The admin console (SPEC §6): every SHOW with PgBouncer's columns, numbers
# that match what a client program did to the pool, who may log in, and
# what the console refuses. Direct mode has no console: skipped there.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)

if [[ $PC_DIRECT == 1 ]]; then
	skip "admin console" "PostgreSQL has no pgcrab console"
	exit 0
fi
PGCRAB_EXTRA_SECTIONS="[user.viewer]
password = viewer

[user.plain]
password = plain" pgcrab_start "min_connections = 0
max_connections = 2" "stats_users = viewer
query_wait_timeout = 20s" || exit 1

out=$(timeout 120 $PY "$drivers/admin_console.py" "$PGCRAB_PORT" "$PG_DB" 2 2>&1)
grep -E '^(ok|not ok) ' <<<"$out"
grep -q '^not ok\|Traceback' <<<"$out" && grep -v '^ok' <<<"$out" | sed 's/^/# /' | head -20
[[ $(grep -c '^ok - ' <<<"$out") -ge 25 ]] || not_ok "admin console run ended early: $(tail -1 <<<"$out")"

# psql prints the console's answers as tables
out=$(PGPASSWORD=pgcrab timeout 20 psql -X -h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab pgcrab -c "SHOW VERSION" 2>&1)
expect_match "psql prints SHOW VERSION" "PgCrab [0-9]" "$out"
check "every console command is logged with who ran it" grep -q 'admin console: user "pgcrab" runs: SHOW VERSION' "$T_DIR/pgcrab.log"
pgcrab_stop

# SHUTDOWN WAIT_FOR_CLIENTS ends PgCrab (exit 0) once its clients are gone
PGCRAB_EXTRA_SECTIONS= pgcrab_start || exit 1
pid=$PGCRAB_PID
out=$(timeout 60 $PY "$drivers/admin_shutdown.py" "$PGCRAB_PORT" "$PG_DB" "$pid" 2>&1)
grep -E '^(ok|not ok) ' <<<"$out" || not_ok "admin_shutdown.py: $(tail -1 <<<"$out")"
if ! kill -0 "$pid" 2>/dev/null; then
	wait "$pid"
	expect_eq "PgCrab exits 0 after SHUTDOWN WAIT_FOR_CLIENTS" 0 "$?"
	PGCRAB_PID=
fi

# plain SHUTDOWN: an idle client is closed, PgCrab exits 0
pgcrab_start || exit 1
pid=$PGCRAB_PID
PGPASSWORD=pgcrab timeout 20 psql -X -q -h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab pgcrab -c "SHUTDOWN" >/dev/null 2>&1
poll 15 bash -c "! kill -0 $pid 2>/dev/null"
check "SHUTDOWN ends PgCrab" bash -c "! kill -0 $pid 2>/dev/null"
wait "$pid"
expect_eq "PgCrab exits 0 after SHUTDOWN" 0 "$?"
PGCRAB_PID=
grep -q "sanitizer\|runtime error" "$T_DIR/pgcrab.log" && not_ok "no sanitizer findings after SHUTDOWN"
exit 0
