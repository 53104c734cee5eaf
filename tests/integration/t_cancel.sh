# Cancel: a running query cancelled through PgCrab with 4 workers returns
# 57014 within a second, whichever worker takes the cancel connection (psql
# SIGINT, psycopg's cancel, a raw CancelRequest); a cancel with a wrong,
# forged or stale key, or for a client between transactions, cancels nothing,
# even when another client runs on the server connection that client used.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)
pgcrab_start --workers 4 "min_connections = 4
max_connections = 8" || exit 1

# psql: SIGINT makes psql send a CancelRequest with PgCrab's BackendKeyData
n_ok=0
for i in 1 2 3; do
	start=$(date +%s.%N)
	timeout 40 psql -X -At -v VERBOSITY=verbose "$(PC_CONN)" -c "SELECT pg_sleep(30)" >"$T_DIR/psql.out" 2>&1 &
	p=$!
	sleep 1
	kill -INT $p
	wait $p
	took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a - 1}')
	if grep -q "ERROR:  57014" "$T_DIR/psql.out" && awk -v t="$took" 'BEGIN {exit !(t < 1)}'; then
		n_ok=$((n_ok + 1))
	else
		echo "# psql cancel $i after ${took}s: $(tr '\n' ' ' <"$T_DIR/psql.out")"
	fi
done
expect_eq "psql SIGINT cancels pg_sleep(30) with 57014 within a second, 3 times" 3 "$n_ok"

out=$(timeout 60 $PY - "$(PC_CONN)" <<'PY'
import sys, threading, time
import psycopg
dsn = sys.argv[1]
for i in range(6):
    # fresh connections land on different workers; so do their cancels
    with psycopg.connect(dsn, autocommit=True) as c:
        t = threading.Timer(0.5, c.cancel)
        t.start()
        start = time.monotonic()
        try:
            c.execute("SELECT pg_sleep(30)")
            print("not ok - psycopg cancel %d: the query was not cancelled" % i)
        except psycopg.errors.QueryCanceled as e:
            took = time.monotonic() - start - 0.5
            alive = c.execute("SELECT 'alive'").fetchone()[0]  # the connection is usable afterwards
            print("%s - psycopg cancel %d: %s after %.2f s, then %s"
                  % ("ok" if took < 1.0 and e.sqlstate == "57014" and alive == "alive" else "not ok",
                     i, e.sqlstate, took, alive))
PY
)
echo "$out"
expect_eq "six psycopg cancels, each 57014 within a second" "6" "$(grep -c '^ok - psycopg cancel' <<<"$out")"

# raw CancelRequests: the right key cancels only its own client's query;
# wrong, forged and stale keys cancel nothing
out=$(timeout 60 $PY "$drivers/cancel_checks.py" "$PGCRAB_PORT" keys 2>&1)
echo "$out"
expect_eq "raw CancelRequest checks ran" 12 "$(grep -c '^ok - ' <<<"$out")"
pgcrab_stop

# one server connection: client A ran on it and is now idle; B runs on it.
# A's cancel must not reach B's query (PostgreSQL would cancel nothing: A
# is idle).
pgcrab_start --workers 4 "min_connections = 1
max_connections = 1" || exit 1
out=$(timeout 60 $PY "$drivers/cancel_checks.py" "$PGCRAB_PORT" shared 2>&1)
echo "$out"
expect_eq "shared-server cancel checks ran" 3 "$(grep -c '^ok - ' <<<"$out")"
exit 0
