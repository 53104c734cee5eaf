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
exit 0
