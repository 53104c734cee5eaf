# Hostile and unreachable servers (drivers/fake_server.py, one port per
# way of misbehaving, each configured as a shard next to the real one):
# closing mid-message, an unexpected message kind, an oversize frame, an
# ErrorResponse during startup, a malformed or very long SCRAM
# server-first-message, and blackholes (a socket that accepts and never
# answers, one that never accepts, an address nobody answers). Each client
# gets an 08xxx error (never a hang: blackholes by server_connect_timeout),
# a client of the real shard in a transaction throughout is not disturbed,
# the pool tries again on the next client, and PgCrab's fds return to
# their baseline. Run under ASan (make check SANITIZE=1) this is also the
# check that none of it reads out of bounds.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "hostile and unreachable servers give clients an 08xxx error" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: nothing connects the clients to the fake servers"
	exit 0
fi
drivers=$(dirname "$0")/drivers
modes="close_mid_login unexpected_login oversize_login error_login bad_scram long_nonce huge_nonce
close_after_row close_mid_result unexpected_kind oversize_result silent no_accept"
args=()
extra=""
for m in $modes; do
	p=$(free_port)
	args+=("$m=$p")
	extra+="[shard.fake_$m]
host = 127.0.0.1
port = $p
user = nobody
password = secret
min_connections = 0
max_connections = 2

"
done
# TEST-NET-1 (RFC 5737): nothing answers there; connect either hangs or fails
extra+="[shard.fake_unroutable]
host = 192.0.2.1
port = 5432
user = nobody
password = secret
min_connections = 0
max_connections = 2
"
/usr/bin/python3 "$drivers/fake_server.py" "${args[@]}" >"$T_DIR/fake.out" 2>&1 &
fake_pid=$!
poll 10 grep -q ready "$T_DIR/fake.out" || not_ok "the fake server starts"
PGCRAB_EXTRA_SECTIONS=$extra pgcrab_start "min_connections = 1
max_connections = 4" "server_connect_timeout = 2s
query_wait_timeout = 20s
server_idle_timeout = 1s" || exit 1
fds() { ls "/proc/$PGCRAB_PID/fd" 2>/dev/null | wc -l; }
fds_are() { [[ "$(fds)" == "$1" ]]; }
once() { timeout 60 /usr/bin/python3 "$drivers/query_once.py" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$1" "${2:-SELECT 1}"; }

expect_eq "the real shard answers" "ok" "$(once "$PG_DB" | cut -d' ' -f1)"
sleep 0.5
base_fds=$(fds)

mkfifo "$T_DIR/by.in"
timeout 250 psql -X -q -At -v ON_ERROR_STOP=1 "$(PC_CONN)" <"$T_DIR/by.in" >"$T_DIR/by.out" 2>&1 &
by_pid=$!
exec {by_fd}>"$T_DIR/by.in"
echo "BEGIN; SELECT 'by', pg_backend_pid();" >&"$by_fd"
poll 5 grep -q '^by|' "$T_DIR/by.out"
by_backend=$(sed -n 's/^by|//p' "$T_DIR/by.out")

for m in $modes unroutable; do
	if [[ $m == close_mid_result ]]; then
		# part of a message went to the client already: an ErrorResponse would
		# be read as its rest, so the client sees the connection drop (with
		# exactly the 9 bytes the server sent), as if PostgreSQL had died
		expect_eq "fake_$m: the connection drops after the partial message, nothing spliced in" \
			"closed+9" "$(once "fake_$m" | cut -d' ' -f1)"
		continue
	fi
	# PgCrab's login to the shard fails: 08001 (08004 when the server
	# refused it); a server lost while serving: 08006
	case $m in
	error_login) want=E:08004 ;;
	close_after_row | unexpected_kind | oversize_result) want=E:08006 ;;
	*) want=E:08001 ;;
	esac
	# blackholes take server_connect_timeout (2 s); the rest fail at once
	min=0
	[[ $m == silent || $m == no_accept ]] && min=1.5
	for attempt in first again; do
		read -r code secs <<<"$(once "fake_$m")"
		check "fake_$m ($attempt client): $want within $min..8 s (got $code after ${secs}s)" \
			bash -c "[[ '$code' == '$want' ]] && awk 'BEGIN {exit !($secs >= $min && $secs < 8)}'"
	done
	expect_eq "pgcrab still serves the real shard after fake_$m" "ok" "$(once "$PG_DB" | cut -d' ' -f1)"
done
check "the malformed SCRAM message is named in the log" grep -q "malformed SCRAM server-first-message" "$T_DIR/pgcrab.log"
check "the blackholes hit server_connect_timeout (logged)" grep -q "server_connect_timeout" "$T_DIR/pgcrab.log"

check "the fake server ran throughout" kill -0 "$fake_pid"
[[ $T_FAILED -gt 0 ]] && sed 's/^/# fake: /' "$T_DIR/fake.out" | tail -20
echo "SELECT 'by', pg_backend_pid(); COMMIT;" >&"$by_fd"
exec {by_fd}>&-
wait "$by_pid"
check "a client of the real shard kept its backend and committed throughout" \
	bash -c "test \$(grep -c '^by|$by_backend$' '$T_DIR/by.out') -eq 2 && ! grep -qE 'ERROR|FATAL' '$T_DIR/by.out'"
# extra servers close after server_idle_timeout (1 s), blackholed connects
# after server_connect_timeout
if poll 10 fds_are "$base_fds"; then
	ok "fd count back to its baseline of $base_fds"
else
	not_ok "fd count back to its baseline of $base_fds (now $(fds))"
	ls -l "/proc/$PGCRAB_PID/fd" | sed 's/^/# /'
	ss -tanp | grep "pid=$PGCRAB_PID," | sed 's/^/# /'
fi
exit 0
