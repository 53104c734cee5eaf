# pgbench through PgCrab: initialise, then select-only and TPC-B with the
# simple, extended and prepared protocols, 50 clients on 2 threads.
source "$(dirname "$0")/lib.sh"
pgcrab_start "min_connections = 2
max_connections = 20" || exit 1
export PGPASSWORD=pgcrab
conn=(-h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab "$PG_DB")

check "pgbench -i -s 5 through pgcrab" timeout 120 pgbench -q -i -s 5 "${conn[@]}" 2>"$T_DIR/init.log"
expect_eq "pgbench_accounts has 500000 rows" "500000" \
	"$(pg_psql -c 'SELECT count(*) FROM pgbench_accounts')"

run() { # run NAME pgbench-args...
	local name=$1
	shift
	local out
	out=$(timeout 60 pgbench -n "$@" -c 50 -j 2 -T "${PGBENCH_SECONDS:-10}" "${conn[@]}" 2>&1)
	local rc=$?
	local processed failed tps
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
	if [[ $rc -eq 0 && "${processed:-0}" -gt 0 && "$failed" == 0 ]]; then
		ok "$name: $processed transactions, 0 failed, $tps tps"
	else
		not_ok "$name: exit $rc, processed ${processed:-?}, failed ${failed:-?}"
		echo "$out" | tail -15 | sed 's/^/# /'
	fi
}
for mode in simple extended prepared; do
	run "select-only -M $mode" -S -M "$mode"
	run "TPC-B -M $mode" -M "$mode"
done
check "history rows were written by TPC-B runs" test "$(pg_psql -c 'SELECT count(*) > 0 FROM pgbench_history')" = t
exit 0
