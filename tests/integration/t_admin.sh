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

# SHOW STATS counts what pgbench did; STATS_AVERAGES fills in after a
# stats_period; the log has PgBouncer's periodic stats line
stat_of() { # stat_of COMMAND COLUMN: the shard's value
	PGPASSWORD=pgcrab timeout 20 psql -X -h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab pgcrab \
		-c "$1" --csv 2>/dev/null | awk -F, -v db="$PG_DB" -v col="$2" \
		'NR == 1 {for (i = 1; i <= NF; i++) if ($i == col) c = i} $1 == db {print $c}'
}
PGCRAB_EXTRA_SECTIONS= pgcrab_start "min_connections = 0
max_connections = 4" "stats_period = 1s" || exit 1
pc_pgbench 60 -i -q -s 1 >/dev/null 2>&1 || not_ok "pgbench -i through pgcrab"
x0=$(stat_of "SHOW STATS" total_xact_count)
q0=$(stat_of "SHOW STATS" total_query_count)
# a script of its own: the built-in ones make pgbench ask the scale and
# partitions first, queries that are not its transactions
printf 'SELECT 1;\n' >"$T_DIR/one.sql"
out=$(pc_pgbench 120 -n -f "$T_DIR/one.sql" -c 4 -t 250 2>&1)
pgbench_numbers "$out"
x1=$(stat_of "SHOW STATS" total_xact_count)
q1=$(stat_of "SHOW STATS" total_query_count)
expect_eq "SHOW STATS total_xact_count grows by pgbench's transactions" "$BENCH_PROCESSED" "$((x1 - x0))"
expect_eq "SHOW STATS total_query_count grows by pgbench's queries" "$BENCH_PROCESSED" "$((q1 - q0))"
expect_eq "SHOW STATS_TOTALS agrees with SHOW STATS" "$x1" "$(stat_of "SHOW STATS_TOTALS" xact_count)"
check "SHOW STATS counts bytes both ways" test "$(stat_of "SHOW STATS" total_received)" -gt 0 -a "$(stat_of "SHOW STATS" total_sent)" -gt 0
check "SHOW STATS counts transaction time" test "$(stat_of "SHOW STATS" total_xact_time)" -gt 0
# a period with traffic shows an average; pgbench keeps running meanwhile
pc_pgbench 60 -n -S -c 2 -T 3 >/dev/null 2>&1 &
bench=$!
avg_positive() { test "$(stat_of "SHOW STATS_AVERAGES" xact_count)" -gt 0; }
poll 10 avg_positive
check "SHOW STATS_AVERAGES shows transactions per second under load" test "$(stat_of "SHOW STATS_AVERAGES" xact_count)" -gt 0
wait $bench
check "the log has a stats line per database every stats_period" grep -q "stats: $PG_DB: [0-9]* xacts/s" "$T_DIR/pgcrab.log"

# Debian's prometheus-pgbouncer-exporter, unchanged, reads PgCrab's console
if command -v prometheus-pgbouncer-exporter >/dev/null; then
	eport=$(free_port)
	PGPASSWORD=pgcrab prometheus-pgbouncer-exporter --port "$eport" --host 127.0.0.1 \
		--pgbouncer-port "$PGCRAB_PORT" --pgbouncer-host 127.0.0.1 --pgbouncer-user pgcrab \
		>"$T_DIR/exporter.log" 2>&1 &
	exporter=$!
	scrape() { $PY -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$eport/metrics', timeout=10).read().decode())" 2>/dev/null; }
	exporter_ready() { scrape | grep -q pgbouncer_requests_total; }
	poll 20 exporter_ready
	metrics=$(scrape)
	kill "$exporter" 2>/dev/null; wait "$exporter" 2>/dev/null
	req=$(awk -v db="$PG_DB" '$1 ~ "^pgbouncer_requests_total" && $1 ~ db {print int($2)}' <<<"$metrics")
	check "the exporter reports PgCrab's query count (got: ${req:-none})" test "${req:-0}" -ge "$BENCH_PROCESSED"
	check "the exporter reports pool and list metrics" grep -q '^pgbouncer_used_clients\|^pgbouncer_pools' <<<"$metrics"
	sent=$(awk '/^pgbouncer_sent_bytes_total/ {s += $2} END {print int(s)}' <<<"$metrics")
	check "the exporter reports sent bytes (got: $sent)" test "$sent" -gt 0
else
	not_ok "prometheus-pgbouncer-exporter is installed (scripts/deps.sh)"
fi
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
