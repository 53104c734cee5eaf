# pg_terminate_backend of the server serving a client in a transaction: that
# client's next query fails with an 08xxx error (and is not run elsewhere),
# another client in its own transaction carries on, new connections work.
# Then idle pooled servers are terminated: clients must not be handed a
# dead one, and the pool refills.
source "$(dirname "$0")/lib.sh"
pgcrab_start "min_connections = 2
max_connections = 4" || exit 1

# session NAME: a psql fed through a fifo (fd in NAME_fd), output in NAME.out
session() {
	mkfifo "$T_DIR/$1.in"
	timeout 60 psql -X -q -At -v VERBOSITY=verbose "$(PC_CONN)" <"$T_DIR/$1.in" >"$T_DIR/$1.out" 2>&1 &
	printf -v "$1_pid" %s $!
	exec {fd}>"$T_DIR/$1.in"
	printf -v "$1_fd" %s "$fd"
}
# the pid after "TAG|" in a session's output
pid_of() { sed -n "s/^$2|\([0-9]*\)$/\1/p" "$T_DIR/$1.out" | head -1; }
has_pid() { [[ -n "$(pid_of "$1" "$2")" ]]; }
backend_gone() { [[ "$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE pid = $1")" == 0 ]]; }

session victim
session other
echo "BEGIN; SELECT 'v', pg_backend_pid();" >&"$victim_fd"
echo "BEGIN; SELECT 'o', pg_backend_pid();" >&"$other_fd"
poll 5 has_pid victim v
poll 5 has_pid other o
vpid=$(pid_of victim v)
opid=$(pid_of other o)
check "both clients are in a transaction on their own backends ($vpid, $opid)" \
	test -n "$vpid" -a -n "$opid" -a "$vpid" != "$opid"

expect_eq "pg_terminate_backend succeeds" "t" "$(pg_admin -c "SELECT pg_terminate_backend(${vpid:-0})")"
poll 5 backend_gone "${vpid:-0}"
echo "SELECT 'after';" >&"$victim_fd"
exec {victim_fd}>&-
wait "$victim_pid"
got=$(grep -oE '(FATAL|ERROR):  [0-9A-Z]{5}' "$T_DIR/victim.out" | tr '\n' ' ')
if [[ $PC_DIRECT == 1 ]]; then
	# PostgreSQL itself says 57P01 and libpq reports the lost connection:
	# the 08 class is what a pooler must say instead
	check "the victim's next query fails (direct: 57P01 or a lost connection; got $got)" \
		grep -qE '57P01|connection to the server was lost|server closed the connection' "$T_DIR/victim.out"
else
	check "the victim's next query fails with an 08xxx error (got $got)" \
		grep -qE '(FATAL|ERROR):  08[0-9A-Z]{3}' "$T_DIR/victim.out"
fi
check "and was not run on another server behind its back" bash -c "! grep -qx after '$T_DIR/victim.out'"

echo "SELECT 'o', pg_backend_pid(); SELECT 'still ok'; COMMIT;" >&"$other_fd"
exec {other_fd}>&-
wait "$other_pid"
check "the other client's transaction carried on, on the same backend" \
	test "$(grep -c "^o|$opid$" "$T_DIR/other.out")" -eq 2
check "and committed without an error" bash -c "grep -qx 'still ok' '$T_DIR/other.out' && ! grep -qE 'ERROR|FATAL' '$T_DIR/other.out'"

n=0
for i in 1 2 3 4 5; do
	[[ "$(pc_psql -c "SELECT 'fresh $i'")" == "fresh $i" ]] && n=$((n + 1))
done
expect_eq "new connections work afterwards, 5 of 5" 5 "$n"

# idle servers in the pool die: nobody may be handed a dead one
killed=$(pg_admin -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
	WHERE usename = '$PG_USER' AND state = 'idle'")
sleep 0.5
n=0
for i in $(seq 1 10); do
	[[ "$(pc_psql -c "SELECT 'again $i'" 2>>"$T_DIR/again.err")" == "again $i" ]] && n=$((n + 1))
done
expect_eq "after $killed idle pooled servers were terminated, 10 of 10 queries work" 10 "$n"
[[ $n -eq 10 ]] || sed 's/^/# /' "$T_DIR/again.err" | head -5
if [[ $PC_DIRECT == 0 ]]; then
	refilled() { [[ "$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER'")" -ge 2 ]]; }
	check "the pool refills to min_connections (2)" poll 5 refilled
else
	skip "the pool refills to min_connections (2)" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: no pool to refill"
fi
exit 0
