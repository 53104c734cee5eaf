# A shard's PostgreSQL stopped with pg_ctl stop -m immediate under pgbench
# load, then started again. Shard b is a second cluster of its own; shard
# a (the shared cluster) runs pgbench at the same time and must not notice.
# While b is down every client of b gets an 08xxx error, none waits past
# query_wait_timeout; once b is back a new pgbench run on it completes
# with zero errors, PgCrab never restarted.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "PgCrab serves a shard again after its PostgreSQL restarts" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: no pooler to survive the restart"
	exit 0
fi
drivers=$(dirname "$0")/drivers
main_dir=$PG_DIR main_port=$PG_PORT
B_DIR=
stop_b() { [[ -n "$B_DIR" ]] && { (PG_DIR=$B_DIR pg_stop); rm -rf "$B_DIR"; }; }
trap 'rc=$?; stop_b; (exit $rc); t_cleanup' EXIT
pg_start "$T_DIR/pg_b" || { not_ok "a second cluster starts"; exit 1; }
B_DIR=$PG_DIR B_PORT=$PG_PORT
PG_DIR=$main_dir PG_PORT=$main_port
b_admin() { (PG_DIR=$B_DIR PG_PORT=$B_PORT PG_ADMIN_DB=$PG_DB pg_admin "$@"); }
b_admin -c "CREATE TABLE t_restart (id int PRIMARY KEY, n int)" \
	-c "INSERT INTO t_restart SELECT g, 0 FROM generate_series(1, 100) g"

PGCRAB_EXTRA_SECTIONS="[shard.shard_b]
host = 127.0.0.1
port = $B_PORT
database = $PG_DB
user = $PG_USER
password = $PG_PASSWORD
min_connections = 2
max_connections = 6" pgcrab_start "min_connections = 2
max_connections = 6" "query_wait_timeout = 8s
server_connect_timeout = 2s" || exit 1

cat >"$T_DIR/b.sql" <<'SQL'
\set id random(1, 100)
BEGIN;
UPDATE t_restart SET n = n + 1 WHERE id = :id;
SELECT pg_sleep(0.005);
COMMIT;
SQL
cat >"$T_DIR/a.sql" <<'SQL'
\set x random(1, 1000)
BEGIN;
SELECT :x, pg_backend_pid();
SELECT pg_sleep(0.005);
COMMIT;
SQL
bench() { # bench DB SCRIPT SECONDS
	PGPASSWORD=$PC_PASSWORD PGCONNECT_TIMEOUT=10 timeout $(($3 + 30)) \
		pgbench -h 127.0.0.1 -p "$PGCRAB_PORT" -U "$PC_USER" -n -f "$2" -c 8 -j 2 -T "$3" "$1" 2>&1
}
once() { timeout 60 /usr/bin/python3 "$drivers/query_once.py" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$1" "${2:-SELECT 1}"; }

bench "$PG_DB" "$T_DIR/a.sql" 14 >"$T_DIR/a.out" &
a_pid=$!
bench shard_b "$T_DIR/b.sql" 10 >"$T_DIR/b.out" &
b_pid=$!
sleep 3
check "pg_ctl stop -m immediate on shard b's cluster" \
	as_pg "$PG_BIN/pg_ctl" -D "$B_DIR/data" -m immediate -w -t 30 stop >/dev/null
# down for ~5 s: probes every half second
probes=0 bad=0 slow=0 codes=""
end=$((SECONDS + 5))
while [[ $SECONDS -lt $end ]]; do
	read -r code secs <<<"$(once shard_b)"
	probes=$((probes + 1))
	codes+="$code "
	[[ $code =~ ^E:08[0-9A-Z]{3}$ ]] || bad=$((bad + 1))
	awk -v s="$secs" 'BEGIN {exit !(s > 10)}' && slow=$((slow + 1))
	sleep 0.5
done
check "while b is down, all $probes clients of b got an 08xxx error ($(tr ' ' '\n' <<<"$codes" | grep . | sort | uniq -c | xargs))" \
	test "$bad" -eq 0 -a "$probes" -ge 3
check "none waited past query_wait_timeout (8 s) + 2 s" test "$slow" -eq 0
check "shard b's cluster starts again" \
	as_pg "$PG_BIN/pg_ctl" -D "$B_DIR/data" -l "$B_DIR/postgres.log" -w -t 60 start >/dev/null

wait "$b_pid"
b_rc=$?
check "pgbench on b during the outage ended (exit $b_rc), none of it hung" test "$b_rc" -ne 124
# pgbench prints no SQLSTATE: its clients must have been cut by PgCrab's
# 08006/08001 messages, nothing else
aborted=$(grep -cE 'client [0-9]+ script [0-9]+ aborted' "$T_DIR/b.out")
other=$(grep -E 'client [0-9]+ script [0-9]+ aborted' "$T_DIR/b.out" | grep -vcE 'server connection lost|cannot log in to shard')
check "its $aborted aborted clients were told the server was lost or unreachable ($other otherwise)" \
	test "$aborted" -ge 1 -a "$other" -eq 0
[[ $other -eq 0 ]] || grep -E 'client [0-9]+ script [0-9]+ aborted' "$T_DIR/b.out" | grep -vE 'server connection lost|cannot log in to shard' | head -5 | sed 's/^/# /'
wait "$a_pid"
a_rc=$?
pgbench_numbers "$(cat "$T_DIR/a.out")"
check "pgbench on shard a throughout: exit $a_rc, ${BENCH_PROCESSED:-?} transactions, ${BENCH_FAILED:-?} failed" \
	test "$a_rc" -eq 0 -a "${BENCH_PROCESSED:-0}" -gt 0 -a "${BENCH_FAILED:-x}" = 0
[[ $a_rc -eq 0 ]] || tail -5 "$T_DIR/a.out" | sed 's/^/# /'

out=$(bench shard_b "$T_DIR/b.sql" 3)
rc=$?
pgbench_numbers "$out"
check "b is back: a new pgbench run on it, same PgCrab: exit $rc, ${BENCH_PROCESSED:-?} transactions, ${BENCH_FAILED:-?} failed" \
	test "$rc" -eq 0 -a "${BENCH_PROCESSED:-0}" -gt 0 -a "${BENCH_FAILED:-x}" = 0
[[ $rc -eq 0 ]] || tail -5 <<<"$out" | sed 's/^/# /'
check "PgCrab ran throughout" kill -0 "$PGCRAB_PID"
exit 0
