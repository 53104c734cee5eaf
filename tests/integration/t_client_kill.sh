# A client that dies mid-transaction or mid-COPY leaves no backend idle in
# transaction, and the pool carries on.
source "$(dirname "$0")/lib.sh"
pgcrab_start "min_connections = 2
max_connections = 4" || exit 1
pc_psql -c "DROP TABLE IF EXISTS t_kill" -c "CREATE TABLE t_kill (a int)" 2>/dev/null

open_tx() {
	pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER' AND xact_start IS NOT NULL"
}
idle_in_tx() {
	pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER' AND state LIKE 'idle in transaction%'"
}
# polls for up to 1.5 s: the issue asks for "within a second"
no_idle_in_tx_soon() {
	for _ in $(seq 1 15); do
		[[ "$(idle_in_tx)" == 0 ]] && return 0
		sleep 0.1
	done
	return 1
}

kill_mid() { # kill_mid NAME SQL...: run SQL, then SIGKILL psql while the transaction is open
	local name=$1
	shift
	mkfifo "$T_DIR/k.in"
	psql -X -q -At "$(PC_CONN)" <"$T_DIR/k.in" >/dev/null 2>&1 &
	local p=$!
	exec 6>"$T_DIR/k.in"
	printf '%s\n' "$@" >&6
	sleep 0.7
	local before
	before=$(open_tx)
	kill -KILL $p
	wait $p 2>/dev/null
	exec 6>&-
	rm -f "$T_DIR/k.in"
	check "$name: a transaction was open before the kill ($before)" test "$before" -ge 1
	check "$name: no backend idle in transaction within a second" no_idle_in_tx_soon
	expect_eq "$name: the killed transaction's rows are gone" "0" "$(pg_psql -c 'SELECT count(*) FROM t_kill')"
	expect_eq "$name: the pool still works" "1" "$(pc_psql -c 'SELECT 1')"
}
kill_mid "killed idle in transaction" "BEGIN;" "INSERT INTO t_kill VALUES (1);"
kill_mid "killed mid-COPY" "BEGIN;" "INSERT INTO t_kill VALUES (2);" "COPY t_kill FROM STDIN;" "3" "4"
exit 0
