# A shard whose host is a directory is reached over PostgreSQL's Unix
# socket in it (as libpq reads host): queries, pgbench and cancel work, and
# PostgreSQL sees PgCrab's connections as local ones.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "a shard reached over PostgreSQL's Unix socket" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: no shard configuration, the client talks TCP to PostgreSQL itself"
	exit 0
fi
PG_HOST=$PG_DIR pgcrab_start "min_connections = 2
max_connections = 4" || exit 1
expect_eq "a query through a Unix-socket shard" "over unix" "$(pc_psql -c "SELECT 'over unix'")"
expect_eq "PostgreSQL sees PgCrab's backends as local (no client address)" "0" \
	"$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER' AND client_addr IS NOT NULL")"
check "and there are some" test "$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER'")" -ge 1
echo "SELECT count(*) FROM pg_class;" >"$T_DIR/q.sql"
out=$(pc_pgbench 60 -n -f "$T_DIR/q.sql" -c 8 -j 2 -T 3 2>&1)
rc=$?
pgbench_numbers "$out"
check "pgbench over a Unix-socket shard: exit $rc, ${BENCH_PROCESSED:-?} transactions, ${BENCH_FAILED:-?} failed" \
	test "$rc" -eq 0 -a "${BENCH_PROCESSED:-0}" -gt 0 -a "${BENCH_FAILED:-x}" = 0
# cancel goes to the same socket
start=$(date +%s%N)
out=$(timeout 20 psql -X -q -At -v VERBOSITY=verbose "$(PC_CONN)" -c "SELECT pg_sleep(30)" 2>&1 &
	psql_pid=$!
	sleep 1
	kill -INT $psql_pid
	wait $psql_pid)
elapsed=$((($(date +%s%N) - start) / 1000000))
check "SIGINT cancels pg_sleep(30) through a Unix-socket shard with 57014 (got: $out)" grep -q "57014" <<<"$out"
check "within a few seconds (${elapsed} ms)" test "$elapsed" -lt 5000
exit 0
