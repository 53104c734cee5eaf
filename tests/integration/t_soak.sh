# Soak: pgbench at 180 clients plus 20 clients of which one is SIGKILLed
# (and replaced) every second, for SOAK_TIME seconds (60 in make check,
# longer with make soak). pgbench's clients see no failure; afterwards no
# server connection is idle in transaction, PgCrab's connections to
# PostgreSQL match pg_stat_activity, and its fds and RSS are back to their
# baseline.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "soak: no failures, no leaked servers, fds or RSS" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: nothing pooled to leak"
	exit 0
fi
SOAK_TIME=${SOAK_TIME:-60}
pgcrab_start "min_connections = 2
max_connections = 20" "server_idle_timeout = 2s
query_wait_timeout = 60s" || exit 1
drivers=$(dirname "$0")/drivers
fds() { ls "/proc/$PGCRAB_PID/fd" 2>/dev/null | wc -l; }
fds_are() { [[ "$(fds)" == "$1" ]]; }
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$PGCRAB_PID/status"; }
pg_psql -c "DROP TABLE IF EXISTS t_soak" -c "CREATE TABLE t_soak (id int PRIMARY KEY, n int)" \
	-c "INSERT INTO t_soak SELECT g, 0 FROM generate_series(1, 50) g" >/dev/null
cat >"$T_DIR/tx.sql" <<'SQL'
\set id random(1, 50)
BEGIN;
UPDATE t_soak SET n = n + 1 WHERE id = :id;
SELECT n FROM t_soak WHERE id = :id;
COMMIT;
SQL
pc_psql -c "SELECT 1" >/dev/null
sleep 2.5
base_fds=$(fds) base_rss=$(rss_mb)

pc_pgbench $((SOAK_TIME + 60)) -n -f "$T_DIR/tx.sql" -c 180 -j 2 -T "$SOAK_TIME" >"$T_DIR/bench.out" 2>&1 &
bench_pid=$!
victim() { /usr/bin/python3 "$drivers/victim.py" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$PG_DB" >/dev/null 2>&1 & }
victims=()
for _ in $(seq 1 20); do
	victim
	victims+=($!)
done
kills=0
end=$((SECONDS + SOAK_TIME))
while [[ $SECONDS -lt $end ]]; do
	sleep 1
	i=$((RANDOM % 20))
	kill -KILL "${victims[$i]}" 2>/dev/null && kills=$((kills + 1))
	wait "${victims[$i]}" 2>/dev/null
	victim
	victims[$i]=$!
done
wait "$bench_pid"
rc=$?
for v in "${victims[@]}"; do kill -KILL "$v" 2>/dev/null; wait "$v" 2>/dev/null; done
pgbench_numbers "$(cat "$T_DIR/bench.out")"
check "pgbench at 180 clients for $SOAK_TIME s while $kills clients were SIGKILLed: exit $rc, ${BENCH_PROCESSED:-?} transactions, ${BENCH_FAILED:-?} failed" \
	test "$rc" -eq 0 -a "${BENCH_PROCESSED:-0}" -gt 0 -a "${BENCH_FAILED:-x}" = 0
[[ $rc -eq 0 ]] || tail -5 "$T_DIR/bench.out" | sed 's/^/# /'

idle_in_tx() {
	pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER' AND state LIKE 'idle in transaction%'"
}
no_idle_in_tx() { [[ "$(idle_in_tx)" == 0 ]]; }
check "no server connection is left idle in transaction" poll 10 no_idle_in_tx
# PgCrab's own TCP connections to PostgreSQL against PostgreSQL's view of them
pgcrab_conns() { ss -tnpH state established "( dport = :$PG_PORT )" | grep -c "pid=$PGCRAB_PID,"; }
pg_view() { pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER' AND backend_type = 'client backend'"; }
counts_match() { [[ "$(pgcrab_conns)" == "$(pg_view)" ]]; }
check "PgCrab's connections to PostgreSQL ($(pgcrab_conns)) match pg_stat_activity ($(pg_view))" poll 10 counts_match
if poll 15 fds_are "$base_fds"; then
	ok "fd count back to its baseline of $base_fds (servers back to min_connections)"
else
	not_ok "fd count back to its baseline of $base_fds (now $(fds))"
fi
rss_back() { awk -v now="$(rss_mb)" -v base="$base_rss" 'BEGIN {exit !(now <= base + 4)}'; }
poll 10 rss_back
rss_within "RSS back near its baseline: $base_rss MB before, $(rss_mb) MB after (bound: +4 MB)" \
	"$(rss_mb)" "$(awk -v b="$base_rss" 'BEGIN {print b + 4}')"
expect_eq "pgcrab still serves" "1" "$(pc_psql -c 'SELECT 1')"
exit 0
