# max_client_conn, running out of file descriptors, client_login_timeout,
# server_lifetime. (server_connect_timeout against blackholed shards is in
# t_hostile_server, the other timeouts in t_timeouts.)
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "max_client_conn, fd exhaustion, client_login_timeout, server_lifetime" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: these settings are PgCrab's own"
	exit 0
fi
drv=$(dirname "$0")/drivers/limits.py
limits() { timeout 60 /usr/bin/python3 "$drv" "$@"; }
fds() { ls "/proc/$PGCRAB_PID/fd" 2>/dev/null | wc -l; }
fds_are() { [[ "$(fds)" == "$1" ]]; }

# --- max_client_conn = 5: five clients in, the sixth told 53300 ---------------
pgcrab_start "min_connections = 1
max_connections = 2" "max_client_conn = 5
max_packet_size = 65536
client_login_timeout = 2s
server_lifetime = 2s" || exit 1
once() { timeout 60 /usr/bin/python3 "$(dirname "$0")/drivers/query_once.py" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$PG_DB" "$1" | cut -d' ' -f1; }
# --- max_packet_size = 65536 ------------------------------------------------------
expect_eq "a 60,000-byte query under max_packet_size = 65536 is served" "ok" \
	"$(once "SELECT length('$(head -c 60000 /dev/zero | tr '\0' x)')")"
expect_eq "a 70,000-byte query is refused with 08P01" "E:08P01" \
	"$(once "SELECT length('$(head -c 70000 /dev/zero | tr '\0' x)')")"

out=$(limits "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$PG_DB" cap 5)
expect_eq "the 6th client over max_client_conn = 5 gets 53300" "extra E:53300" "$(grep '^extra' <<<"$out")"
expect_eq "the 5 it holds all still answer" "held 5" "$(grep '^held' <<<"$out")"
expect_eq "once one leaves, a new client gets in and is served" "after ok:query" "$(grep '^after' <<<"$out")"
check "the refusal is logged" grep -q "max_client_conn (5) reached" "$T_DIR/pgcrab.log"

# --- client_login_timeout = 2s ---------------------------------------------------
in_bounds() { awk -v t="$1" 'BEGIN {exit !(t >= 1.5 && t <= 5)}'; }
read -r how secs <<<"$(limits "$PGCRAB_PORT" silent)"
check "a client that sends nothing is closed by client_login_timeout (2 s): $how after ${secs}s" \
	bash -c "[[ '$how' =~ ^(E:08P01|closed)$ ]] && $(declare -f in_bounds); in_bounds $secs"
read -r how secs <<<"$(limits "$PGCRAB_PORT" drip)"
check "a startup packet dripped a byte a second is cut at 2 s: $how after ${secs}s" \
	bash -c "[[ '$how' =~ ^(E:08P01|closed)$ ]] && $(declare -f in_bounds); in_bounds $secs"
read -r how secs <<<"$(limits "$PGCRAB_PORT" nopassword)"
check "a client that never sends its password is closed at 2 s: $how after ${secs}s" \
	bash -c "[[ '$how' =~ ^(E:08P01|closed)$ ]] && $(declare -f in_bounds); in_bounds $secs"

# --- server_lifetime = 2s: recycled only while idle -------------------------------
mkfifo "$T_DIR/long.in"
timeout 60 psql -X -q -At -v ON_ERROR_STOP=1 "$(PC_CONN)" <"$T_DIR/long.in" >"$T_DIR/long.out" 2>&1 &
long_pid=$!
exec {long_fd}>"$T_DIR/long.in"
echo "BEGIN; SELECT 'a', pg_backend_pid();" >&"$long_fd"
sleep 3 # idle in transaction past the lifetime
echo "SELECT 'b', pg_backend_pid(); SELECT pg_sleep(2.5); SELECT 'c', pg_backend_pid(); COMMIT;" >&"$long_fd"
exec {long_fd}>&-
wait "$long_pid"
a=$(sed -n 's/^a|//p' "$T_DIR/long.out")
c=$(sed -n 's/^c|//p' "$T_DIR/long.out")
check "a transaction (idle, then a 2.5 s query) outlives server_lifetime on one backend ($a, $c)" \
	bash -c "[[ -n '$a' && '$a' == '$c' ]] && ! grep -qE 'ERROR|FATAL' '$T_DIR/long.out'"
gone() { [[ "$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE pid = ${a:-0}")" == 0 ]]; }
check "once idle, that old server is recycled" poll 5 gone
fresh=$(pc_psql -c "SELECT pg_backend_pid()")
check "and a new one serves ($fresh)" test -n "$fresh" -a "$fresh" != "${a:-0}"
pgcrab_stop

# --- file descriptors run out: ulimit -n 48 ---------------------------------------
# each client costs PgCrab one fd; past the limit clients are told 53300
# (a spare descriptor makes the answer possible), a warning is logged, and
# accepting resumes once clients leave
cat >"$T_DIR/lowfd.sh" <<SH
#!/bin/bash
ulimit -n 48
exec "$PGCRAB_BIN" "\$@"
SH
chmod +x "$T_DIR/lowfd.sh"
PGCRAB_BIN=$T_DIR/lowfd.sh pgcrab_start --workers 1 "min_connections = 1
max_connections = 2" "shutdown_timeout = 2s
server_idle_timeout = 1s" || exit 1
# the shard's parameters known first, so logins need no server (else a
# slow start opens the second server before the fds run out)
pc_psql -c "SELECT 1" >/dev/null
sleep 0.5
base_fds=$(fds)
out=$(limits "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$PG_DB" flood 60)
read -r _ served _ refused _ other <<<"$(grep '^served' <<<"$out")"
check "under ulimit -n 48 ($base_fds fds at rest): $served clients served, $refused refused with 53300, $other otherwise" \
	test "${served:-0}" -ge 20 -a "${refused:-0}" -ge 5 -a "${other:-1}" -eq 0
expect_eq "every served client answers a query, sent all at once (no fd for a 2nd server: they wait for the 1st)" \
	"answered ${served:-?}" "$(grep '^answered' <<<"$out")"
# whether the worker wanted a second server while no fd was free depends
# on timing; when it did, the clients above waited for the first
grep -q "cannot create a socket" "$T_DIR/pgcrab.log" \
	&& echo "# the pool went without a socket for a second server meanwhile"
check "a warning names the cause" grep -q "Too many open files" "$T_DIR/pgcrab.log"
check "fds back to $base_fds once they leave (now $(fds))" poll 10 fds_are "$base_fds"
expect_eq "accepting resumed: a new client is served" "1" "$(pc_psql -c 'SELECT 1')"
# a second run out of fds is answered the same way: the spare descriptor
# came back even if a racing accept had taken its slot
out=$(limits "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$PG_DB" flood 60)
read -r _ served _ refused _ other <<<"$(grep '^served' <<<"$out")"
check "a second time: $served served, $refused refused with 53300, $other otherwise" \
	test "${served:-0}" -ge 20 -a "${refused:-0}" -ge 5 -a "${other:-1}" -eq 0

# --- shutdown_timeout = 2s: an open transaction may finish within it, then is cut
mkfifo "$T_DIR/sd.in"
timeout 60 psql -X -q -At -v VERBOSITY=verbose "$(PC_CONN)" <"$T_DIR/sd.in" >"$T_DIR/sd.out" 2>&1 &
sd_pid=$!
exec {sd_fd}>"$T_DIR/sd.in"
echo "BEGIN; SELECT 'in';" >&"$sd_fd"
poll 5 grep -qx in "$T_DIR/sd.out"
pid=$PGCRAB_PID
PGCRAB_PID= # stopped here, not by pgcrab_stop
start=$(date +%s.%N)
kill -TERM "$pid"
wait "$pid"
rc=$?
secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
check "SIGTERM with a transaction open: exit $rc after ${secs}s (shutdown_timeout 2 s)" \
	bash -c "[[ $rc == 0 ]] && awk 'BEGIN {exit !($secs >= 1.5 && $secs <= 6)}'"
echo "SELECT 'after';" >&"$sd_fd"
exec {sd_fd}>&-
wait "$sd_pid"
check "the client was told 57P01 and its transaction did not go on" \
	bash -c "grep -q '57P01' '$T_DIR/sd.out' && ! grep -qx after '$T_DIR/sd.out'"
check "no sanitizer findings in its log" \
	bash -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer' '$T_DIR/pgcrab.log'"
exit 0
