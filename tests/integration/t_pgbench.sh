# pgbench through PgCrab: initialise (-s 5: COPY, VACUUM, DDL), then
# select-only and TPC-B with the simple, extended and prepared protocols,
# 50 clients on 2 threads over a pool of 20.
source "$(dirname "$0")/lib.sh"
pgcrab_start "min_connections = 2
max_connections = 20" || exit 1
S=${PGBENCH_SECONDS:-10}

check "pgbench -i -s 5 through pgcrab" pc_pgbench 180 -q -i -s 5 2>"$T_DIR/init.log"
expect_eq "pgbench_accounts has 500000 rows" "500000" \
	"$(pg_psql -c 'SELECT count(*) FROM pgbench_accounts')"
history_before=$(pg_psql -c 'SELECT count(*) FROM pgbench_history')

run() { # run NAME pgbench-args...: exit 0, transactions done, 0 failed
	local name=$1
	shift
	local out rc
	out=$(pc_pgbench $((S + 50)) -n "$@" -c 50 -j 2 -T "$S" 2>&1)
	rc=$?
	pgbench_numbers "$out"
	if [[ $rc -eq 0 && "${BENCH_PROCESSED:-0}" -gt 0 && "$BENCH_FAILED" == 0 ]]; then
		ok "$name: $BENCH_PROCESSED transactions, 0 failed, tps = $BENCH_TPS"
	else
		not_ok "$name: exit $rc, processed ${BENCH_PROCESSED:-?}, failed ${BENCH_FAILED:-?}"
		echo "$out" | tail -15 | sed 's/^/# /'
	fi
	TPCB_TOTAL=$((${TPCB_TOTAL:-0} + ${TPCB:-0} * ${BENCH_PROCESSED:-0}))
}
for mode in simple extended prepared; do
	TPCB=0 run "select-only -M $mode" -S -M "$mode"
	TPCB=1 run "TPC-B -M $mode" -M "$mode"
done
# every TPC-B transaction pgbench counted inserted one history row, and no
# more: nothing committed twice or lost
expect_eq "pgbench_history grew by exactly the TPC-B transactions counted" "$TPCB_TOTAL" \
	"$(($(pg_psql -c 'SELECT count(*) FROM pgbench_history') - history_before))"
exit 0
