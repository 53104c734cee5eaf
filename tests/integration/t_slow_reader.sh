# A client that reads a 200 MB result slowly, and one that never reads its
# result: PgCrab stops reading from their servers instead of buffering (its
# RSS stays within BOUND_MB of its baseline; a server blocked in ClientWrite
# shows the back-pressure reaching PostgreSQL), the stalled client's server
# is not lent to anyone else, and other clients keep being served.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "slow and stalled readers: PgCrab's RSS stays bounded, others are served" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: PgCrab's memory is the point"
	exit 0
fi
BOUND_MB=5
pgcrab_start "min_connections = 3
max_connections = 3" || exit 1
drv=$(dirname "$0")/drivers/slow_reader.py
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$PGCRAB_PID/status"; }
cat >"$T_DIR/other.sql" <<'SQL'
\set x random(1, 1000)
SELECT :x, pg_backend_pid();
SQL
others() { pc_pgbench 60 -n -f "$T_DIR/other.sql" -c 4 -j 2 -T "$1" 2>&1; }
pc_psql -c "SELECT 1" >/dev/null
sleep 0.5
base=$(rss_mb)
(while kill -0 "$PGCRAB_PID" 2>/dev/null; do rss_mb; echo; sleep 0.2; done) >"$T_DIR/rss" &
sampler=$!

# --- slow: a pause after every read -------------------------------------------------
timeout 120 /usr/bin/python3 "$drv" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$PG_DB" slow >"$T_DIR/slow.out" 2>&1 &
slow_pid=$!
sleep 1
out=$(others 4)
rc=$?
pgbench_numbers "$out"
check "other clients served meanwhile: exit $rc, ${BENCH_PROCESSED:-?} transactions, ${BENCH_FAILED:-?} failed" \
	test "$rc" -eq 0 -a "${BENCH_PROCESSED:-0}" -gt 0 -a "${BENCH_FAILED:-x}" = 0
wait "$slow_pid"
read -r _ rows _ bytes _ secs <<<"$(cat "$T_DIR/slow.out")"
check "the slow reader got all 200,000 rows ($(cat "$T_DIR/slow.out"))" \
	test "${rows:-0}" -eq 200000 -a "${bytes:-0}" -ge 200000000
peak=$(sort -n "$T_DIR/rss" | tail -1)
rss_within "RSS while ~200 MB went through slowly: baseline $base MB, peak $peak MB (bound: +$BOUND_MB MB)" \
	"$peak" "$(awk -v b="$base" -v d=$BOUND_MB 'BEGIN {print b + d}')"

# --- stall: the query sent, nothing read -------------------------------------
: >"$T_DIR/rss"
mkfifo "$T_DIR/stall.in"
timeout 120 /usr/bin/python3 "$drv" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$PG_DB" stall <"$T_DIR/stall.in" >"$T_DIR/stall.out" 2>&1 &
stall_pid=$!
exec {stall_fd}>"$T_DIR/stall.in"
stuck_pid() {
	pg_admin -c "SELECT pid FROM pg_stat_activity WHERE usename = '$PG_USER' AND state = 'active'
		AND wait_event = 'ClientWrite' AND query LIKE 'SELECT repeat%'"
}
has_stuck() { [[ -n "$(stuck_pid)" ]]; }
check "the stalled client's backend blocks writing to PgCrab (ClientWrite)" poll 10 has_stuck
stuck=$(stuck_pid)
out=$(others 3)
rc=$?
pgbench_numbers "$out"
check "other clients served meanwhile, on the other 2 servers: exit $rc, ${BENCH_PROCESSED:-?} transactions, ${BENCH_FAILED:-?} failed" \
	test "$rc" -eq 0 -a "${BENCH_PROCESSED:-0}" -gt 0 -a "${BENCH_FAILED:-x}" = 0
pids=$(for _ in $(seq 1 10); do pc_psql -c "SELECT pg_backend_pid()"; done | sort -u | xargs)
check "ten more clients ran on backends ${pids:-?}, never the stalled client's ($stuck)" \
	bash -c "[[ -n '$pids' && ' $pids ' != *' ${stuck:-x} '* ]]"
expect_eq "which still runs the stalled query" "${stuck:-x}" "$(stuck_pid)"
peak=$(sort -n "$T_DIR/rss" | tail -1)
rss_within "RSS with a client that reads nothing: baseline $base MB, peak $peak MB (bound: +$BOUND_MB MB)" \
	"$peak" "$(awk -v b="$base" -v d=$BOUND_MB 'BEGIN {print b + d}')"
cancels() { grep -c "canceling statement due to user request" "$PG_DIR/postgres.log"; }
cancels_before=$(cancels)
exec {stall_fd}>&-
wait "$stall_pid"
# cancel_on_client_exit (on by default): the query is cancelled, the rest of
# its result dropped, and the server goes back to the pool idle (or closed)
stuck_freed() {
	[[ "$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE pid = ${stuck:-0}
		AND (state <> 'idle' OR query LIKE 'SELECT repeat%' AND state = 'active')")" == 0 ]]
}
check "once it leaves, its server (mid-result) stops the query and is idle or closed" poll 10 stuck_freed
cancelled() { [[ $(cancels) -gt $cancels_before ]]; }
check "the stalled query was cancelled (a new line in the server log)" poll 5 cancelled
kill "$sampler" 2>/dev/null
expect_eq "pgcrab still serves" "1" "$(pc_psql -c 'SELECT 1')"
exit 0
