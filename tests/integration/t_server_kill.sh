# pg_terminate_backend of the server serving a client: that client gets an
# 08xxx error, its next connection works, other clients carry on.
source "$(dirname "$0")/lib.sh"
pgcrab_start "min_connections = 2
max_connections = 4" || exit 1

mkfifo "$T_DIR/v.in"
timeout 30 psql -X -q -At -v VERBOSITY=verbose "$(PC_CONN)" <"$T_DIR/v.in" >"$T_DIR/v.out" 2>&1 &
v=$!
exec 7>"$T_DIR/v.in"
echo "BEGIN; SELECT pg_backend_pid();" >&7
sleep 0.5
pid=$(grep -E '^[0-9]+$' "$T_DIR/v.out" | head -1)
check "the victim's backend pid is known ($pid)" test -n "$pid"
# another client, busy in its own transaction on another server
other=$(timeout 20 psql -X -q -At "$(PC_CONN)" -c "BEGIN" -c "SELECT pg_sleep(1.5)" -c "SELECT 'other ok'" -c "COMMIT" 2>&1 &)
expect_eq "pg_terminate_backend succeeds" "t" "$(pg_admin -c "SELECT pg_terminate_backend($pid)")"
sleep 0.3
echo "SELECT 1;" >&7
exec 7>&-
wait $v
check "the victim got an 08xxx error: $(grep -oE '(FATAL|ERROR):  [0-9A-Z]{5}' "$T_DIR/v.out" | head -1)" \
	grep -qE '(FATAL|ERROR):  08[0-9A-Z]{3}' "$T_DIR/v.out"
expect_eq "a new connection works" "2" "$(pc_psql -c 'SELECT 2')"
expect_eq "another client's transaction was not disturbed" "other ok" \
	"$(timeout 20 psql -X -q -At "$(PC_CONN)" -c "BEGIN" -c "SELECT pg_sleep(0.2)" -c "SELECT 'other ok'" -c "COMMIT" 2>&1 | grep other)"
sleep 0.5
check "the pool refilled to min_connections" test "$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER'")" -ge 2
exit 0
