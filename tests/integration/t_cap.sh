# max_connections is a hard cap across workers: 4 workers, a cap of 2, 20
# clients running transactions for 10 s; all finish without a failure, every
# update counts, and PostgreSQL never sees more than 2 connections from
# PgCrab (sampled every ~100 ms). In direct mode there is no cap to check.
source "$(dirname "$0")/lib.sh"
pgcrab_start --workers 4 "min_connections = 1
max_connections = 2" || exit 1
pc_psql -c "DROP TABLE IF EXISTS t_cap" -c "CREATE TABLE t_cap (id int PRIMARY KEY, n int)" \
	-c "INSERT INTO t_cap SELECT g, 0 FROM generate_series(1, 20) g" 2>/dev/null
cat >"$T_DIR/tx.sql" <<'SQL'
\set id random(1, 20)
BEGIN;
SELECT n FROM t_cap WHERE id = :id;
UPDATE t_cap SET n = n + 1 WHERE id = :id;
COMMIT;
SQL
# the sampler: one line per sample, the pool user's backends
(
	end=$((SECONDS + 11))
	while [[ $SECONDS -lt $end ]]; do
		pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER'"
		sleep 0.1
	done
) >"$T_DIR/samples" &
sampler=$!
out=$(pc_pgbench 60 -n -f "$T_DIR/tx.sql" -c 20 -j 2 -T 10 2>&1)
rc=$?
wait $sampler
pgbench_numbers "$out"
check "20 clients over a cap of 2 on 4 workers: exit $rc, ${BENCH_PROCESSED:-?} transactions, ${BENCH_FAILED:-?} failed, tps = ${BENCH_TPS:-?}" \
	test "$rc" -eq 0 -a "${BENCH_PROCESSED:-0}" -gt 0 -a "${BENCH_FAILED:-x}" = 0
[[ $rc -eq 0 ]] || tail -10 <<<"$out" | sed 's/^/# /'
expect_eq "every update was counted" "${BENCH_PROCESSED:-?}" "$(pg_psql -c 'SELECT sum(n) FROM t_cap')"
samples=$(grep -cE '^[0-9]+$' "$T_DIR/samples")
max=$(sort -n "$T_DIR/samples" | tail -1)
check "the sampler ran throughout ($samples samples) and saw the pool at work (max ${max:-?})" \
	test "$samples" -ge 20 -a "${max:-0}" -ge 1
if [[ $PC_DIRECT == 0 ]]; then
	check "PostgreSQL never saw more than 2 connections from pgcrab (max $max, distribution: $(sort -n "$T_DIR/samples" | uniq -c | awk '{printf "%s×%s ", $2, $1}'))" \
		test "${max:-99}" -le 2
else
	skip "PostgreSQL never saw more than 2 connections from pgcrab" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: no pool, so no cap (PostgreSQL saw up to ${max:-?} connections)"
fi
exit 0
