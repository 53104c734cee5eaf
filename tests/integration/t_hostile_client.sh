# Hostile and broken clients (drivers/hostile_client.py, one raw socket per
# case): impossible frame lengths, oversize startup packets, unknown
# protocol versions, bad startup parameters, messages out of turn, garbage
# after Terminate, a half-open socket. Each gets PostgreSQL's SQLSTATE (or
# the silent close PostgreSQL itself gives) and a closed socket; a client in
# a transaction meanwhile is not disturbed; PgCrab's fd count returns to
# where it was; a message announced at 1 GiB reserves no memory before its
# bytes arrive. PostgreSQL asks for SCRAM, which these raw clients do not
# speak, so there is no direct mode here.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "hostile clients get PostgreSQL's SQLSTATE and a closed socket" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: PostgreSQL asks for SCRAM, which these raw clients do not speak, so there is nothing to compare"
	exit 0
fi
# servers above min_connections close after a second, so fds settle
pgcrab_start "min_connections = 1
max_connections = 4" "server_idle_timeout = 1s" || exit 1
drv=$(dirname "$0")/drivers/hostile_client.py
hostile() { timeout 120 /usr/bin/python3 "$drv" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$PG_DB" "$@"; }
fds() { ls "/proc/$PGCRAB_PID/fd" 2>/dev/null | wc -l; }
fds_are() { [[ "$(fds)" == "$1" ]]; }

pc_psql -c "DROP TABLE IF EXISTS t_hostile" -c "CREATE TABLE t_hostile (a int)"
pc_psql -c "SELECT 1" >/dev/null
sleep 1.5
base_fds=$(fds)

# a bystander in a transaction on its own server throughout
mkfifo "$T_DIR/by.in"
timeout 120 psql -X -q -At -v ON_ERROR_STOP=1 "$(PC_CONN)" <"$T_DIR/by.in" >"$T_DIR/by.out" 2>&1 &
by_pid=$!
exec {by_fd}>"$T_DIR/by.in"
echo "BEGIN; SELECT 'by', pg_backend_pid();" >&"$by_fd"
poll 5 grep -q '^by|' "$T_DIR/by.out"
by_backend=$(sed -n 's/^by|//p' "$T_DIR/by.out")

hostile >"$T_DIR/results" 2>&1
result() { sed -n "s/^$1|//p" "$T_DIR/results"; }
expect_eq "frame length 3: 08P01, closed" "E:08P01" "$(result len_below_4)"
expect_eq "frame length 1 GiB + 1: 08P01 at once, closed" "E:08P01" "$(result len_above_max)"
expect_eq "negative frame length: 08P01, closed" "E:08P01" "$(result len_negative)"
# PostgreSQL closes without a word on a startup length out of range
expect_match "startup packet of 10,005 bytes: 08P01 or a silent close" '^(E:08P01|closed)$' \
	"$(result startup_too_long)"
expect_match "startup length 4: 08P01 or a silent close" '^(E:08P01|closed)$' \
	"$(result startup_len_below_8)"
expect_eq "protocol 4.0: 0A000 as PostgreSQL" "E:0A000" "$(result protocol_4)"
# (PostgreSQL's exact answers to these are proved in t_login_parity)
expect_eq "protocol 2.0: an old-format error, as PostgreSQL" "E2" "$(result protocol_2)"
expect_eq "protocol 3.5 with a _pq_ option: NegotiateProtocolVersion (3.0, the option), then login" \
	"v:196608:1:_pq_.frobnicate,R3,R0,Z" "$(result protocol_3_5)"
expect_eq "duplicate startup parameter: taken (the last counts), the password asked for" "open" \
	"$(result duplicate_param)"
expect_eq "unterminated startup parameters: 08P01" "E:08P01" "$(result unterminated_params)"
expect_eq "startup parameter without a value: 08P01" "E:08P01" "$(result value_missing)"
expect_eq "a query before authentication: 08P01" "E:08P01" "$(result query_before_auth)"
expect_eq "unknown message type: 08P01" "E:08P01" "$(result unknown_type)"
expect_eq "a second startup packet: 08P01" "E:08P01" "$(result second_startup)"
expect_eq "a password message after login: 08P01" "E:08P01" "$(result password_after_login)"
expect_eq "garbage after Terminate: closed, nothing said" "closed" "$(result garbage_after_terminate)"
expect_eq "a half-open client (its side shut mid-transaction): closed" "closed" "$(result half_open)"
expect_eq "a truncated message, then gone" "closed" "$(result truncated_then_gone)"
# PostgreSQL itself reads the '!' only after sending the whole row, then says
# 08P01; PgCrab reads it at once: either answer is fine, garbage is not
expect_match "an unknown message behind a query streaming a 4 MB row: 08P01 or a cut, never spliced bytes" \
	'^(E:08P01|cut)$' "$(result bad_type_mid_result)"
check "every case ran ($(grep -c '|' "$T_DIR/results") results)" test "$(grep -c '|' "$T_DIR/results")" -ge 19
grep -q exception "$T_DIR/results" && sed 's/^/# /' "$T_DIR/results"

no_idle_tx() {
	[[ "$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER'
		AND state LIKE 'idle in transaction%' AND pid <> ${by_backend:-0}")" == 0 ]]
}
check "the half-open client's transaction left no server idle in transaction" poll 5 no_idle_tx
expect_eq "and its insert was rolled back" "0" "$(pg_psql -c 'SELECT count(*) FROM t_hostile')"

# 1 GiB announced, 100 bytes sent, by 3 clients that stay: PgCrab's address
# space must not grow by the announced sizes (1 GiB each)
vmdata() { awk '/^VmData:/ {print int($2 / 1024)}' "/proc/$PGCRAB_PID/status"; }
before=$(vmdata)
mkfifo "$T_DIR/huge.in"
hostile partial_huge_parse partial_huge_parse partial_huge_parse <"$T_DIR/huge.in" >"$T_DIR/huge.out" 2>&1 &
huge_pid=$!
exec {huge_fd}>"$T_DIR/huge.in"
three_sent() { [[ "$(grep -c '|sent' "$T_DIR/huge.out")" -ge 3 ]]; }
check "3 clients sent 1 GiB Parse headers" poll 10 three_sent
sleep 1
during=$(vmdata)
check "3 clients announcing 1 GiB messages: VmData ${before} MB -> ${during} MB (bound: +256 MB)" \
	test "$during" -le $((before + 256))
exec {huge_fd}>&-
wait "$huge_pid"

echo "SELECT 'by', pg_backend_pid(); COMMIT;" >&"$by_fd"
exec {by_fd}>&-
wait "$by_pid"
check "the bystander kept its backend and committed without an error" \
	bash -c "test \$(grep -c '^by|$by_backend$' '$T_DIR/by.out') -eq 2 && ! grep -qE 'ERROR|FATAL' '$T_DIR/by.out'"
expect_eq "pgcrab still serves" "1" "$(pc_psql -c 'SELECT 1')"
check "fd count back to its baseline of $base_fds (now $(fds))" poll 10 fds_are "$base_fds"
exit 0
