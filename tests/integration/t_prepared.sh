# Named prepared statements in transaction mode: pgbench -M prepared over a
# pool of 5, eviction with a tiny max_prepared_statements, and the protocol
# message by message (Describe, Close and re-Parse, 42P05, 26000, pipelines).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
export PGPASSWORD=pgcrab

pgcrab_start "min_connections = 2
max_connections = 5" || exit 1
conn=(-h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab "$PG_DB")
if [[ "$(pg_psql -c "SELECT to_regclass('pgbench_accounts') IS NOT NULL")" != t ]]; then
	timeout 120 pgbench -q -i -s 1 "${conn[@]}" >/dev/null 2>&1
fi
bench() { # bench NAME ARGS...: zero failures and some transactions
	local name=$1
	shift
	local out processed failed
	out=$(timeout 60 pgbench -n "$@" "${conn[@]}" 2>&1)
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	if [[ "${processed:-0}" -gt 0 && "$failed" == 0 ]] && ! grep -q "aborted" <<<"$out"; then
		ok "$name: $processed transactions, 0 failed, $(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out") tps"
	else
		not_ok "$name: processed ${processed:-?}, failed ${failed:-?}"
		tail -5 <<<"$out" | sed 's/^/# /'
	fi
}
S=${PGBENCH_SECONDS:-10}
bench "pgbench -M prepared -S, 50 clients, pool of 5" -M prepared -S -c 50 -j 2 -T "$S"
bench "pgbench -M prepared TPC-B, 50 clients, pool of 5" -M prepared -c 50 -j 2 -T "$S"
check "protocol details through pgcrab" $PY "$(dirname "$0")/drivers/prepared_protocol.py" "$PGCRAB_PORT"
pgcrab_stop

# two statements per server connection at most: TPC-B's seven keep evicting
pgcrab_start "min_connections = 1
max_connections = 2" "max_prepared_statements = 2" || exit 1
conn=(-h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab "$PG_DB")
bench "pgbench -M prepared TPC-B with max_prepared_statements = 2" -M prepared -c 10 -j 2 -T 5
check "protocol details with eviction" $PY "$(dirname "$0")/drivers/prepared_protocol.py" "$PGCRAB_PORT"
live=$(pg_admin -c "SELECT count(*) FROM pg_prepared_statements")
check "pg_prepared_statements is per backend; eviction keeps ours bounded (admin sees $live)" test "$live" -eq 0
exit 0
