# One client's open transaction is invisible to others and stays on one
# server connection, while other clients keep the pool busy.
source "$(dirname "$0")/lib.sh"
pgcrab_start "min_connections = 1
max_connections = 4" || exit 1

pc_psql -c "DROP TABLE IF EXISTS t_iso" -c "CREATE TABLE t_iso (id int)" 2>/dev/null
# background load over the same small pool
(
	end=$((SECONDS + 6))
	while [[ $SECONDS -lt $end ]]; do pc_psql -c "SELECT count(*) FROM t_iso" >/dev/null 2>&1; done
) &
load=$!

mkfifo "$T_DIR/a.in"
timeout 60 psql -X -q -At "$(PC_CONN)" <"$T_DIR/a.in" >"$T_DIR/a.out" 2>&1 &
a=$!
exec 5>"$T_DIR/a.in"
echo "BEGIN; SELECT pg_backend_pid(); INSERT INTO t_iso VALUES (1);" >&5
sleep 0.5
expect_eq "an uncommitted row is not visible to another client" "0" "$(pc_psql -c 'SELECT count(*) FROM t_iso')"
for i in 1 2 3 4 5; do
	echo "SELECT pg_backend_pid(); SELECT pg_sleep(0.1);" >&5
done
sleep 1.5
expect_eq "still invisible while the transaction stays open" "0" "$(pc_psql -c 'SELECT count(*) FROM t_iso')"
echo "SELECT pg_backend_pid(); COMMIT;" >&5
exec 5>&-
wait $a
pids=$(grep -E '^[0-9]+$' "$T_DIR/a.out" | sort -u)
expect_eq "pg_backend_pid() is the same for the whole transaction" "1" "$(wc -l <<<"$pids" | tr -d ' ')"
check "that pid was a real backend's" test -n "$pids"
expect_eq "the committed row is visible" "1" "$(pc_psql -c 'SELECT count(*) FROM t_iso')"
wait $load
exit 0
