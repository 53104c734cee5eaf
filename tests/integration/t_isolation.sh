# One client's open transaction is invisible to others and stays on one
# server connection (same pg_backend_pid() and transaction id for all its
# statements), while other clients keep a small pool busy.
source "$(dirname "$0")/lib.sh"
pgcrab_start "min_connections = 1
max_connections = 6" || exit 1

pc_psql -c "DROP TABLE IF EXISTS t_iso" -c "CREATE TABLE t_iso (id int)" 2>/dev/null
# background load over the same small pool: 10 pgbench clients running
# short transactions for the whole test
cat >"$T_DIR/load.sql" <<'SQL'
BEGIN;
SELECT count(*) FROM t_iso;
SELECT pg_backend_pid();
COMMIT;
SQL
pc_pgbench 60 -n -f "$T_DIR/load.sql" -c 10 -j 2 -T 8 >"$T_DIR/load.out" 2>&1 &
load=$!
sleep 0.5

# client A: a psql fed through a fifo, its transaction left open
mkfifo "$T_DIR/a.in"
timeout 60 psql -X -q -At "$(PC_CONN)" <"$T_DIR/a.in" >"$T_DIR/a.out" 2>&1 &
a=$!
exec 5>"$T_DIR/a.in"
echo "BEGIN; SELECT pg_backend_pid(), txid_current(); INSERT INTO t_iso VALUES (1);" >&5
a_inserted() {
	[[ "$(pg_admin -c "SELECT count(*) FROM pg_stat_activity
		WHERE state = 'idle in transaction' AND query LIKE 'INSERT INTO t_iso%'")" == 1 ]]
}
check "client A's INSERT ran and its transaction is open" poll 5 a_inserted
expect_eq "an uncommitted row is not visible to another client" "0" "$(pc_psql -c 'SELECT count(*) FROM t_iso')"
for i in 1 2 3 4 5; do
	echo "SELECT pg_backend_pid(), txid_current(); SELECT pg_sleep(0.1);" >&5
done

# meanwhile four more clients, each in a transaction of ten statements
spids=()
for s in 1 2 3 4; do
	{
		echo "BEGIN;"
		for i in $(seq 1 10); do echo "SELECT pg_backend_pid(), txid_current(); SELECT pg_sleep(0.03);"; done
		echo "COMMIT;"
	} | timeout 60 psql -X -q -At "$(PC_CONN)" >"$T_DIR/s$s.out" 2>&1 &
	spids+=($!)
done
sleep 1.5
expect_eq "still invisible while the transaction stays open" "0" "$(pc_psql -c 'SELECT count(*) FROM t_iso')"
echo "SELECT pg_backend_pid(), txid_current(); COMMIT;" >&5
exec 5>&-
wait $a
check "client A ran without errors" test -z "$(grep -v '^[0-9|]*$' "$T_DIR/a.out")"
lines=$(grep -E '^[0-9]+\|[0-9]+$' "$T_DIR/a.out" | sort -u)
expect_eq "pg_backend_pid() and txid_current() are the same for the whole transaction (${lines//$'\n'/ })" \
	"1" "$(grep -c . <<<"$lines")"
check "and A reported them 7 times" test "$(grep -cE '^[0-9]+\|[0-9]+$' "$T_DIR/a.out")" -eq 7
expect_eq "the committed row is visible" "1" "$(pc_psql -c 'SELECT count(*) FROM t_iso')"

wait "${spids[@]}"
n_same=0
for s in 1 2 3 4; do
	if [[ $(grep -cE '^[0-9]+\|[0-9]+$' "$T_DIR/s$s.out") -eq 10 &&
		$(grep -E '^[0-9]+\|[0-9]+$' "$T_DIR/s$s.out" | sort -u | wc -l) -eq 1 ]]; then
		n_same=$((n_same + 1))
	else
		echo "# session $s: $(sort "$T_DIR/s$s.out" | uniq -c | tr '\n' ' ')"
	fi
done
expect_eq "4 concurrent transactions each kept one backend and one transaction id" 4 "$n_same"

wait $load
rc=$?
pgbench_numbers "$(cat "$T_DIR/load.out")"
check "the background load finished cleanly (exit $rc, ${BENCH_PROCESSED:-?} transactions, ${BENCH_FAILED:-?} failed)" \
	test "$rc" -eq 0 -a "${BENCH_PROCESSED:-0}" -gt 0 -a "${BENCH_FAILED:-x}" = 0
exit 0
