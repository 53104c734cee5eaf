# 2,000 clients connecting at once to a pool of 10 with max_client_conn =
# 1500: 1,500 are let in and served (each runs SELECT 1 while all 1,500 are
# connected), 500 get 53300 and a closed socket; after all leave, PgCrab's
# fd count is back to its baseline and its RSS is within a bound of it
# (memory freed is handed back to the system, not kept for the next peak).
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "2,000 clients against max_client_conn = 1500" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: max_client_conn is PgCrab's"
	exit 0
fi
pgcrab_start "min_connections = 2
max_connections = 10" "max_client_conn = 1500
query_wait_timeout = 60s
server_idle_timeout = 1s" || exit 1
fds() { ls "/proc/$PGCRAB_PID/fd" 2>/dev/null | wc -l; }
fds_are() { [[ "$(fds)" == "$1" ]]; }
rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$PGCRAB_PID/status"; }
ulimit -n 8192 2>/dev/null

pc_psql -c "SELECT 1" >/dev/null
sleep 0.5
base_fds=$(fds) base_rss=$(rss_mb)
(while kill -0 "$PGCRAB_PID" 2>/dev/null; do rss_mb; echo; sleep 0.2; done) >"$T_DIR/rss" &
sampler=$!
out=$(timeout 200 /usr/bin/python3 "$(dirname "$0")/drivers/crowd.py" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$PG_DB" 2000)
read -r _ served _ refused _ other rest <<<"$out"
kill "$sampler"
peak_rss=$(sort -n "$T_DIR/rss" | tail -1)
expect_eq "1,500 of 2,000 clients let in and served" "1500" "${served:-?}"
expect_eq "500 refused with 53300" "500" "${refused:-?}"
check "no other outcome (${other:-?} ${rest:-})" test "${other:-1}" -eq 0
check "PgCrab holds at most 10 backends (now $(pg_client_backends))" \
	test "$(pg_client_backends)" -le 10
if poll 15 fds_are "$base_fds"; then
	ok "fd count back to its baseline of $base_fds"
else
	not_ok "fd count back to its baseline of $base_fds (now $(fds))"
fi
# RSS: back within 4 MB of the baseline
rss_back() { awk -v now="$(rss_mb)" -v base="$base_rss" 'BEGIN {exit !(now <= base + 4)}'; }
poll 10 rss_back
rss_within "RSS back near its baseline: ${base_rss} MB at rest, ${peak_rss} MB at the peak, $(rss_mb) MB now (bound: +4 MB)" \
	"$(rss_mb)" "$(awk -v b="$base_rss" 'BEGIN {print b + 4}')"
expect_eq "pgcrab still serves" "1" "$(pc_psql -c 'SELECT 1')"
exit 0
