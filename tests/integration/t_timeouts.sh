# client_idle_timeout, idle_transaction_timeout, query_wait_timeout and
# server_idle_timeout, each set to a second or two.
source "$(dirname "$0")/lib.sh"
pgcrab_start "min_connections = 0
max_connections = 1" "client_idle_timeout = 2s
idle_transaction_timeout = 1s
query_wait_timeout = 1s
server_idle_timeout = 1s" || exit 1

session() { # session FIFO-NAME OUT: a psql fed through a fifo
	mkfifo "$T_DIR/$1"
	timeout 30 psql -X -q -At -v VERBOSITY=verbose "$(PC_CONN)" <"$T_DIR/$1" >"$T_DIR/$2" 2>&1 &
	SESSION_PID=$!
}

# idle in transaction beyond 1 s: the client is told and its transaction rolled back
pc_psql -c "DROP TABLE IF EXISTS t_to" -c "CREATE TABLE t_to (a int)" 2>/dev/null
session tx.in tx.out
exec 5>"$T_DIR/tx.in"
echo "BEGIN; INSERT INTO t_to VALUES (1);" >&5
sleep 2.5
echo "SELECT 'still here';" >&5
exec 5>&-
wait $SESSION_PID
check "idle_transaction_timeout ends the client with 25P03" grep -q "FATAL:  25P03" "$T_DIR/tx.out"
expect_eq "its transaction was rolled back" "0" "$(pg_psql -c 'SELECT count(*) FROM t_to')"
expect_eq "no backend is left idle in transaction" "0" \
	"$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER' AND state LIKE 'idle in transaction%'")"

# a client waiting longer than query_wait_timeout for the only server
session hold.in hold.out
exec 6>"$T_DIR/hold.in"
echo "BEGIN; SELECT pg_sleep(0.8); SELECT pg_sleep(0.8);" >&6
sleep 0.3
start=$SECONDS
out=$(timeout 20 psql -X -q -At "$(PC_CONN)" -c "SELECT 'served'" 2>&1)
check "query_wait_timeout fails a client left waiting (got: $out)" grep -q "query_wait_timeout" <<<"$out"
if [[ $PC_DIRECT == 0 ]]; then
	check "the error names the shard and the timeout" grep -q "shard \"$PG_DB\" within 1000 ms" <<<"$out"
	# documented: the client's connection is closed (as PgBouncer does)
	check "and the connection is closed" grep -qiE "server closed the connection|connection to server was lost" <<<"$out"
else
	skip "the error names the shard and the timeout" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: the shard and query_wait_timeout are PgCrab's"
	skip "and the connection is closed" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: closing a client whose wait timed out is PgCrab's choice"
fi
check "and within a few seconds" test $((SECONDS - start)) -le 4
echo "COMMIT;" >&6
exec 6>&-
wait $SESSION_PID

# an idle client beyond client_idle_timeout is closed
session idle.in idle.out
exec 7>"$T_DIR/idle.in"
echo "SELECT 'first';" >&7
sleep 3
echo "SELECT 'second';" >&7
exec 7>&-
wait $SESSION_PID
check "client_idle_timeout closes an idle client with 57P05" grep -q "FATAL:  57P05" "$T_DIR/idle.out"
check "what it ran before was answered" grep -q "^first$" "$T_DIR/idle.out"

# servers above min_connections (0) close after server_idle_timeout
pc_psql -c "SELECT 1" >/dev/null
sleep 2.5
expect_eq "server_idle_timeout closed the idle server" "0" \
	"$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER'")"
expect_eq "and a new one opens on demand" "ok" "$(pc_psql -c "SELECT 'ok'")"
exit 0
