# Named prepared statements in transaction mode: pgbench -M prepared over a
# pool of 5, eviction with a tiny max_prepared_statements, and the protocol
# message by message (Describe, Close and re-Parse, 42P05, 26000, pipelines,
# two statements alternating with max_prepared_statements = 1), each answer
# also checked against PostgreSQL directly.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)
export PGPASSWORD=pgcrab

protocol() { # protocol NAME: the message-by-message script through pgcrab and directly
	timeout 60 $PY "$drivers/prepared_protocol.py" "$PGCRAB_PORT" "$PG_PORT" "$PG_USER" "$PG_PASSWORD" 2>&1 \
		| sed "s/^\(\(not \)\?ok - \)/\1$1: /"
}
bench() { # bench NAME ARGS...: zero failures and some transactions
	local name=$1
	shift
	local out processed failed
	out=$(timeout 60 pgbench -n "$@" "${conn[@]}" 2>&1)
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
	if [[ "${processed:-0}" -gt 0 && "$failed" == 0 ]] && ! grep -qi "aborted\|error" <<<"$out"; then
		ok "$name: $processed transactions, 0 failed, $(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out") tps"
	else
		not_ok "$name: processed ${processed:-?}, failed ${failed:-?}"
		grep -i "error\|abort" <<<"$out" | head -3 | sed 's/^/# /'
		tail -5 <<<"$out" | sed 's/^/# /'
	fi
}
# Statements PgCrab keeps on the server connection a client is given.
server_statements() {
	pc_psql -c "SELECT count(*), count(*) FILTER (WHERE name NOT LIKE 'pgcrab%') FROM pg_prepared_statements"
}

pgcrab_start "min_connections = 2
max_connections = 5" || exit 1
conn=(-h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab "$PG_DB")
if [[ "$(pg_psql -c "SELECT to_regclass('pgbench_accounts') IS NOT NULL")" != t ]]; then
	timeout 120 pgbench -q -i -s 1 "${conn[@]}" >/dev/null 2>&1
fi
S=${PGBENCH_SECONDS:-10}
bench "pgbench -M prepared -S, 50 clients, pool of 5" -M prepared -S -c 50 -j 2 -T "$S"
bench "pgbench -M prepared TPC-B, 50 clients, pool of 5" -M prepared -c 50 -j 2 -T "$S"
protocol "pool of 5"
pgcrab_stop

# two statements per server connection at most: TPC-B's seven keep evicting
pgcrab_start "min_connections = 1
max_connections = 2" "max_prepared_statements = 2" || exit 1
conn=(-h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab "$PG_DB")
bench "pgbench -M prepared TPC-B with max_prepared_statements = 2" -M prepared -c 10 -j 2 -T 5
n=$(server_statements)
check "a server connection holds at most 2 statements, all PgCrab's (count, foreign: $n)" \
	grep -qE '^[0-2]\|0$' <<<"$n"
pgcrab_stop

# one statement per server connection and one server connection: two
# clients whose statements keep evicting each other's
pgcrab_start "min_connections = 1
max_connections = 1" "max_prepared_statements = 1" || exit 1
protocol "max_prepared_statements = 1, client A" >"$T_DIR/a.out" &
a=$!
protocol "max_prepared_statements = 1, client B" >"$T_DIR/b.out"
wait $a
cat "$T_DIR/a.out" "$T_DIR/b.out"
grep -q '^not ok' "$T_DIR/a.out" "$T_DIR/b.out" && T_FAILED=$((T_FAILED + 1))
expect_eq "both clients ran every step" "52" "$(grep -c '^ok - ' "$T_DIR/a.out" "$T_DIR/b.out" | awk -F: '{s += $2} END {print s}')"
n=$(server_statements)
check "the one server connection holds at most 1 statement (count, foreign: $n)" grep -qE '^[01]\|0$' <<<"$n"
exit 0
