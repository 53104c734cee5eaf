# max_connections is a hard cap across workers: 4 workers, a cap of 2, 20
# clients running transactions for 10 s; all finish, PostgreSQL never sees
# more than 2 connections from PgCrab.
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
(
	max=0
	end=$((SECONDS + 11))
	while [[ $SECONDS -lt $end ]]; do
		n=$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER'")
		[[ "$n" -gt $max ]] && max=$n
		sleep 0.05
	done
	echo "$max" >"$T_DIR/max"
) &
sampler=$!
out=$(PGPASSWORD=pgcrab timeout 60 pgbench -n -f "$T_DIR/tx.sql" -c 20 -j 2 -T 10 \
	-h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab "$PG_DB" 2>&1)
rc=$?
wait $sampler
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
check "20 clients over a cap of 2 on 4 workers: $processed transactions, ${failed:-?} failed" \
	test "$rc" -eq 0 -a "${processed:-0}" -gt 0 -a "$failed" = 0
expect_eq "every update was counted" "$processed" "$(pg_psql -c 'SELECT sum(n) FROM t_cap')"
max=$(cat "$T_DIR/max")
check "PostgreSQL never saw more than 2 connections from pgcrab (max $max)" test "$max" -le 2 -a "$max" -ge 1
exit 0
