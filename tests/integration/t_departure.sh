# Issue 10: a client that leaves, in whatever state and whichever way, gives
# its server connection back clean (ROLLBACK) or closed, promptly. Every
# state (idle, in a transaction, in a failed one, a query running, a big
# result or COPY TO STDOUT it stopped reading, COPY FROM STDIN before and
# after data, pipelines with and without Sync, queued for a server, mid-login,
# while PgCrab syncs its session parameters or prepares its statement) times
# every way out (Terminate then close as libpq does, Terminate keeping the
# socket open, FIN, RST, SIGKILL), in transaction and session pooling; a
# subset with 1 and 4 workers and under pgbench load; and
# cancel_on_client_exit = off leaving the query alone. The pairs run in
# drivers/departure.py (what each checks is written there).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drv=$(cd "$(dirname "$0")/drivers" && pwd)/departure.py
pg_psql -c "SET client_min_messages = warning" -c "CREATE TABLE IF NOT EXISTS dep_copy (a text)" \
	-c "CREATE TABLE IF NOT EXISTS dep_rows (tag text)" >/dev/null

# departure LABEL POOL_MODE driver-args...: the pairs against the PgCrab
# running now; their lines go to the output and to $T_DIR/all.out
departure() {
	local label=$1 mode=$2
	shift 2
	DEP_PORT=$PGCRAB_PORT DEP_PID=$PGCRAB_PID DEP_DIRECT=$PC_DIRECT DEP_MODE=$mode DEP_SHARED=${DEP_SHARED:-0} \
		PC_USER=$PC_USER PC_PASSWORD=$PC_PASSWORD PG_DB=$PG_DB PG_USER=$PG_USER \
		PG_PORT=$PG_PORT PG_DIR=$PG_DIR \
		timeout 600 $PY "$drv" --label "$label" "$@" 2>&1 | tee -a "$T_DIR/all.out"
	local rc=${PIPESTATUS[0]}
	[[ $rc -eq 0 ]] || not_ok "$label: departure.py exited with status $rc"
}
# the pool of the main table: two servers, so one leaked server shows
POOL="min_connections = 1
max_connections = 2"
CORE=in_tx,failed_tx,running,streaming,copy_in_data,pipe_nosync,queued,params_sync,prepare_inject

for mode in transaction session; do
	pgcrab_start --workers 2 "$POOL" "pool_mode = $mode" || exit 1
	departure "w2 $mode" $mode
	pgcrab_stop
done

for w in 1 4; do
	if [[ $PC_DIRECT == 1 ]]; then
		skip "w$w transaction: the pairs again with $w worker(s)" "direct mode: workers are PgCrab's, the run would repeat the one above"
		continue
	fi
	pgcrab_start --workers $w "$POOL" "pool_mode = transaction" || exit 1
	departure "w$w transaction" transaction --states $CORE --ways X+close,FIN,RST,SIGKILL
	pgcrab_stop
done

# under load: pgbench -S keeps 4 clients busy through the same pool while
# clients leave; pgbench must see no failure (a cancel meant for a departed
# client must hit nobody else's query). Rate-limited: unbounded, pgbench
# takes both cores of a small machine, and reading pg_stat_activity while
# four backends each change their status 6000 times a second took up to 12 s
# (the reader retries until no backend is mid-update), which would time the
# checks out rather than PgCrab.
LOAD_S=20
pgcrab_start --workers 2 "min_connections = 2
max_connections = 5" "pool_mode = transaction" || exit 1
if [[ "$(pg_psql -c "SELECT to_regclass('pgbench_accounts') IS NULL")" == t ]]; then
	PGPASSWORD=$PG_PASSWORD pgbench -q -i -s 1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$PG_DB" \
		>"$T_DIR/init.log" 2>&1
fi
pc_pgbench $((LOAD_S + 30)) -n -S -c 4 -j 2 -R 2000 -T $((LOAD_S + 3)) >"$T_DIR/load.out" 2>&1 &
load=$!
sleep 0.5
DEP_SHARED=1 departure "w2 transaction load" transaction --states $CORE --exclude queued \
	--ways X+close,FIN,RST,SIGKILL --for $LOAD_S
kill -0 $load 2>/dev/null || echo "# pgbench ended before the pairs under load did"
wait $load
rc=$?
pgbench_numbers "$(cat "$T_DIR/load.out")"
if [[ $rc -eq 0 && "${BENCH_PROCESSED:-0}" -gt 0 && "$BENCH_FAILED" == 0 ]]; then
	ok "pgbench -S alongside the departures: $BENCH_PROCESSED transactions, 0 failed"
else
	not_ok "pgbench -S alongside the departures: exit $rc, processed ${BENCH_PROCESSED:-?}, failed ${BENCH_FAILED:-?}"
	{ grep -i 'error\|abort' "$T_DIR/load.out" | head -5; tail -4 "$T_DIR/load.out"; } | sed 's/^/# /'
fi
pgcrab_stop

# cancel_on_client_exit = off: the running query is left alone
if pgcrab_start --workers 2 "$POOL" "pool_mode = transaction
cancel_on_client_exit = off"; then
	departure "w2 transaction" transaction --cancel-off
	pgcrab_stop
fi

# the timings of every pair that passed
awk '/^# timing .*: [0-9]+ ms$/ {print $(NF-1)}' "$T_DIR/all.out" | sort -n | awk '
	{v[NR] = $1}
	END {
		if (NR == 0) {print "# timing: no pair passed"; exit}
		m = NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)
		printf "# timing: median %d ms, max %d ms (%d pairs)\n", m, v[NR], NR
	}'
exit 0
