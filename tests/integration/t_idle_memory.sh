# Idle clients cost PgCrab almost no memory: a logged-in client that sends
# nothing holds no receive or send buffer (its recv waits on the worker's
# provided buffer ring). 3,000 idle clients must add less than 1 KiB of RSS
# each (measured about 0.3 KiB; PgBouncer holds about 0.8), and RSS and fds
# come back down once they leave.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "idle clients cost PgCrab under 1 KiB of RSS each, and it comes back down" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: no pooler memory to measure"
	exit 0
fi
if [[ "${SANITIZE:-}" == 1 ]]; then
	skip "idle clients cost PgCrab under 1 KiB of RSS each, and it comes back down" "sanitizer build (SANITIZE=1): ASan's allocator, not PgCrab's, sets the RSS of idle clients"
	exit 0
fi
N=3000
pgcrab_start "min_connections = 2
max_connections = 4" "max_client_conn = 5000" || exit 1
rss() { awk '/^VmRSS/{print $2}' "/proc/$PGCRAB_PID/status"; }
fds() { ls "/proc/$PGCRAB_PID/fd" | wc -l; }
pc_psql -c "SELECT 1" >/dev/null # servers logged in, shard parameters known
rss0=$(rss)
fd0=$(fds)
coproc IDLE { /usr/bin/python3 "$LIB_DIR/../../bench/idle_clients.py" 127.0.0.1 "$PGCRAB_PORT" pgcrab pgcrab "$PG_DB" "$N" 2>&1; }
read -r -t 120 line <&"${IDLE[0]}"
check "$N clients logged in and idle (helper said: ${line:-nothing})" grep -q "^ready $N" <<<"$line"
sleep 1
rss1=$(rss)
fd1=$(fds)
per=$(((rss1 - rss0) * 1000 / N))
check "RSS per idle client below 1 KiB: $((rss1 - rss0)) KiB for $N clients = $per/1000 KiB each" test "$per" -lt 1000
check "one fd per idle client ($fd0 before, $fd1 with them)" test "$((fd1 - fd0))" -ge "$N" -a "$((fd1 - fd0))" -le "$((N + 4))"
expect_eq "and PgCrab still answers" "alive" "$(pc_psql -c "SELECT 'alive'")"
echo >&"${IDLE[1]}"
wait "$IDLE_PID" 2>/dev/null
for _ in $(seq 1 50); do
	[[ $(fds) -le $fd0 ]] && break
	sleep 0.1
done
expect_eq "their fds are closed once they leave" "$fd0" "$(fds)"
rss2=$(rss)
check "RSS comes back down ($rss0 KiB before, $rss1 with them, $rss2 after)" test "$rss2" -le "$((rss0 + (rss1 - rss0) / 2 + 512))"
exit 0
