# The Prometheus endpoint (metrics_port): promtool accepts the page; the
# counters match what the test did (pgbench's transaction count, the
# queries its script sends, the logins made, a wrong password); clients
# and servers by state follow running sessions; and the HTTP side holds up
# against wrong methods and paths, oversized and silent requests, and many
# scrapers at once, none of which stops a scrape or the pooler.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "metrics" "PostgreSQL has no metrics endpoint"
	exit 0
fi
MPORT=$(free_port)
pgcrab_start "min_connections = 2
max_connections = 20" "metrics_port = $MPORT" || exit 1

cat >"$T_DIR/http.py" <<'PY'
import socket, sys, threading
port = int(sys.argv[1])

def ask(raw, timeout=4):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(raw)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data

def status(data):
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else -1

def scrape():
    return ask(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")

cmd = sys.argv[2]
if cmd == "scrape":
    d = scrape()
    assert status(d) == 200, d[:200]
    sys.stdout.write(d.split(b"\r\n\r\n", 1)[1].decode())
elif cmd == "status":
    print(status(ask(sys.argv[3].encode().decode("unicode_escape").encode())))
elif cmd == "big":
    # a header that never ends within 8 KiB
    print(status(ask(b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n")))
elif cmd == "silent":
    # N connections that say nothing stay open while a scrape is made
    n = int(sys.argv[3])
    quiet = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    print(status(scrape()))
    for q in quiet:
        q.close()
elif cmd == "crowd":
    # N scrapes at once: every one answered whole
    n = int(sys.argv[3])
    got = []
    def one():
        try:
            d = scrape()
            got.append(status(d) == 200 and d.endswith(b"\n") and b"pgcrab_queries_total" in d)
        except Exception:
            got.append(False)
    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    print(sum(got))
PY
http() { timeout 30 python3 "$T_DIR/http.py" "$MPORT" "$@"; }
scrape() { http scrape >"$T_DIR/page.txt" || { not_ok "scrape answered 200"; return 1; }; }
# metric NAME [LABEL-MATCH]: the sum of NAME's samples whose labels hold
# LABEL-MATCH (e.g. 'state="active"'), as an integer (rounded)
metric() {
	awk -v name="$1" -v want="${2:-}" '
		{ n = $1; sub(/\{.*/, "", n) }
		n == name && index($1, want) { s += $2 }
		END { printf "%.0f\n", s }' "$T_DIR/page.txt"
}

scrape || exit 1
check "promtool check metrics accepts the page (idle)" promtool check metrics <"$T_DIR/page.txt"
for h in pgcrab_transaction_duration_seconds pgcrab_query_duration_seconds \
	pgcrab_client_wait_duration_seconds; do
	expect_eq "$h is a histogram with a +Inf bucket per shard" 1 \
		"$(grep -c "^${h}_bucket{shard=\"$PG_DB\",le=\"+Inf\"}" "$T_DIR/page.txt")"
done

# pgbench's tables straight on PostgreSQL: nothing of it counts here
PGPASSWORD=$PG_PASSWORD timeout 120 pgbench -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -q -i -s 1 \
	"$PG_DB" >/dev/null 2>&1
cat >"$T_DIR/tx.sql" <<'SQL'
\set aid random(1, 100000)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
END;
SQL
QUERIES_PER_TX=4 # BEGIN, UPDATE, SELECT, END: one ReadyForQuery each

# run_mode MODE: pgbench with the protocol MODE, scraped all through; the
# counters' growth checked against what pgbench did
C=8
run_mode() {
	local m=$1
	local tx0 q0 lg0 w0 rx0 sx0 scraper out rc
	tx0=$(metric pgcrab_transactions_total) q0=$(metric pgcrab_queries_total)
	lg0=$(metric pgcrab_client_logins_total) w0=$(metric pgcrab_client_wait_duration_seconds_count)
	rx0=$(metric pgcrab_received_bytes_total) sx0=$(metric pgcrab_sent_bytes_total)
	rm -f "$T_DIR/during.txt"
	(while :; do http scrape >/dev/null || echo fail >>"$T_DIR/during.txt"; sleep 0.2; done) &
	scraper=$!
	out=$(pc_pgbench 120 -n -M "$m" -f "$T_DIR/tx.sql" -c $C -j 2 -t 125 2>&1)
	rc=$?
	kill "$scraper" 2>/dev/null
	wait "$scraper" 2>/dev/null
	pgbench_numbers "$out"
	if [[ $rc -ne 0 || "${BENCH_FAILED:-x}" != 0 || -z "$BENCH_PROCESSED" ]]; then
		not_ok "pgbench -M $m ran: exit $rc"
		echo "$out" | tail -10 | sed 's/^/# /'
		return 1
	fi
	ok "pgbench -M $m: $BENCH_PROCESSED transactions, 0 failed"
	# -M prepared: each client first prepares each statement of the script
	# with Parse and Sync, as it reaches it: one more query per statement,
	# and the first, outside the transaction, is a transaction of its own
	# (as pg_stat_database counts it), with a server granted for it
	local xq=0 xt=0
	[[ $m == prepared ]] && xq=$((C * QUERIES_PER_TX)) xt=$C
	check "-M $m: every scrape during pgbench was answered" test ! -s "$T_DIR/during.txt"
	scrape || return 1
	check "-M $m: promtool check metrics accepts the page" promtool check metrics <"$T_DIR/page.txt"
	expect_eq "-M $m: transactions counted = pgbench's (+ $xt)" "$((BENCH_PROCESSED + xt))" \
		"$(($(metric pgcrab_transactions_total) - tx0))"
	expect_eq "-M $m: queries counted = $QUERIES_PER_TX per transaction (+ $xq)" \
		"$((BENCH_PROCESSED * QUERIES_PER_TX + xq))" "$(($(metric pgcrab_queries_total) - q0))"
	expect_eq "-M $m: transaction histogram count = transactions" \
		"$(metric pgcrab_transactions_total)" "$(metric pgcrab_transaction_duration_seconds_count)"
	expect_eq "-M $m: query histogram count = queries" \
		"$(metric pgcrab_queries_total)" "$(metric pgcrab_query_duration_seconds_count)"
	# transaction pooling: each transaction waited for (was granted) a server once
	expect_eq "-M $m: wait histogram counts one wait per transaction" "$((BENCH_PROCESSED + xt))" \
		"$(($(metric pgcrab_client_wait_duration_seconds_count) - w0))"
	# pgbench logs in once per client, and once more in its main thread
	expect_eq "-M $m: logins = pgbench's connections ($C clients + 1)" "$((C + 1))" \
		"$(($(metric pgcrab_client_logins_total) - lg0))"
	check "-M $m: bytes from clients counted" test "$(($(metric pgcrab_received_bytes_total) - rx0))" -gt 0
	check "-M $m: bytes to clients counted" test "$(($(metric pgcrab_sent_bytes_total) - sx0))" -gt 0
}
for mode in simple extended prepared; do
	run_mode "$mode" || exit 1
done
check "the +Inf bucket is the last and the largest" awk -v n=pgcrab_query_duration_seconds_bucket '
	index($1, n "{") == 1 { if ($2 < last) bad = 1; last = $2 }
	END { exit bad }' "$T_DIR/page.txt"
check "worker loop busy and wait time are counted" awk '
	$1 ~ /^pgcrab_worker_loop_(busy|wait)_seconds_total/ && $2 > 0 { n++ }
	END { exit n != 4 }' "$T_DIR/page.txt" # 2 workers
check "ring submissions and completions are counted" test \
	"$(metric pgcrab_worker_ring_submissions_total)" -gt "$BENCH_PROCESSED" -a \
	"$(metric pgcrab_worker_ring_completions_total)" -gt "$BENCH_PROCESSED"

# psql: K logins, K one-statement transactions
lg0=$(metric pgcrab_client_logins_total) tx0=$(metric pgcrab_transactions_total)
q0=$(metric pgcrab_queries_total)
K=5
for _ in $(seq 1 $K); do pc_psql -c "SELECT 1" >/dev/null; done
scrape || exit 1
expect_eq "logins = psql sessions" $K "$(($(metric pgcrab_client_logins_total) - lg0))"
expect_eq "transactions = psql statements" $K "$(($(metric pgcrab_transactions_total) - tx0))"
expect_eq "queries = psql statements" $K "$(($(metric pgcrab_queries_total) - q0))"

# login failures: a wrong password, an unknown database
f0=$(metric pgcrab_client_login_failures_total)
PGPASSWORD=wrong timeout 20 psql -X -At -h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab -d "$PG_DB" \
	-c "SELECT 1" >/dev/null 2>&1
timeout 20 psql -X -At -d "$(PC_CONN) dbname=no_such_db" -c "SELECT 1" >/dev/null 2>&1
scrape || exit 1
expect_eq "login failures: a wrong password and an unknown database" 2 \
	"$(($(metric pgcrab_client_login_failures_total) - f0))"

# clients and servers by state: 3 sessions each inside a query
sleepers=()
for _ in 1 2 3; do
	pc_psql -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
	sleepers+=($!)
done
active_is() { scrape && [[ "$(metric pgcrab_clients "database=\"$PG_DB\",state=\"active\"")" == "$1" ]]; }
check "3 clients in a query show as active" poll 20 active_is 3
check "...and their servers as active" test \
	"$(metric pgcrab_servers "shard=\"$PG_DB\",state=\"active\"")" -ge 3
check "servers by state add up to the worker totals" test \
	"$(metric pgcrab_servers)" == "$(metric pgcrab_worker_servers)"
pg_admin -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'" >/dev/null
wait "${sleepers[@]}" # not bare: PgCrab runs in the background too
check "no client active once they are gone" poll 20 active_is 0
expect_eq "no client waiting" 0 "$(metric pgcrab_clients 'state="waiting"')"

# a queue: a shard of one server, held by a transaction; the next client
# waits, shows as waiting with a growing maxwait, and its wait is counted
# when the server comes free
pgcrab_stop
MPORT=$(free_port)
pgcrab_start "min_connections = 1
max_connections = 1" "metrics_port = $MPORT" || exit 1
scrape || exit 1
w0=$(metric pgcrab_client_wait_duration_seconds_count)
pc_psql -c "BEGIN" -c "SELECT pg_sleep(30)" -c "COMMIT" >/dev/null 2>&1 &
holder=$!
check "the holder is active" poll 20 active_is 1
pc_psql -c "SELECT 1" >/dev/null 2>&1 &
waiter=$!
waiting() {
	scrape && [[ "$(metric pgcrab_clients "database=\"$PG_DB\",state=\"waiting\"")" == 1 ]] &&
		awk '$1 ~ /^pgcrab_client_maxwait_seconds/ && $2 > 0 { f = 1 } END { exit !f }' "$T_DIR/page.txt"
}
check "the next client waits, and maxwait grows" poll 20 waiting
pg_admin -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'" >/dev/null
wait "$holder" "$waiter"
scrape || exit 1
# the holder's three statements wait once each (BEGIN's before it held the
# server, SELECT's and COMMIT's none: it keeps it), the waiter once
check "the waiter's wait is counted" test "$(($(metric pgcrab_client_wait_duration_seconds_count) - w0))" -ge 2
check "...with a non-zero time" awk '$1 ~ /^pgcrab_client_wait_duration_seconds_sum/ && $2 > 0 { f = 1 } END { exit !f }' "$T_DIR/page.txt"
no_wait() { scrape && awk '$1 ~ /^pgcrab_client_maxwait_seconds/ && $2 != 0 { f = 1 } END { exit f }' "$T_DIR/page.txt"; }
check "maxwait is back to 0 once nobody waits" poll 20 no_wait

# HTTP: wrong method, wrong path, garbage, oversized, silent, crowds
expect_eq "POST /metrics: 405" 405 "$(http status 'POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n')"
expect_eq "HEAD /metrics: 405" 405 "$(http status 'HEAD /metrics HTTP/1.1\r\n\r\n')"
expect_eq "GET /: 404" 404 "$(http status 'GET / HTTP/1.1\r\n\r\n')"
expect_eq "GET /metricsx: 404" 404 "$(http status 'GET /metricsx HTTP/1.1\r\n\r\n')"
expect_eq "GET /metrics?x=1: 200" 200 "$(http status 'GET /metrics?x=1 HTTP/1.0\r\n\r\n')"
expect_eq "not HTTP: 400" 400 "$(http status 'HELLO\r\n\r\n')"
expect_eq "a 9 KB header: 431" 431 "$(http big)"
# a scrape is answered before a silent connection's deadline (5 s): the
# silent one holds nothing up
expect_eq "a silent connection does not hold up a scrape" 200 "$(http silent 1)"
expect_eq "more silent connections than slots do not lock scrapers out" 200 "$(http silent 40)"
expect_eq "50 scrapes at once are all answered" 50 "$(http crowd 50)"
# docs/grafana-pgcrab.json: every query parses (Grafana's variables given
# values) and names only metrics this page has
python3 - "$REPO_DIR/docs/grafana-pgcrab.json" "$T_DIR/page.txt" >"$T_DIR/rules.yml" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
page = open(sys.argv[2]).read()
names = set(re.findall(r"^(pgcrab_\w+)", page, re.M))
print("groups:\n- name: dashboard\n  rules:")
for i, p in enumerate(d["panels"]):
    for t in p["targets"]:
        e = t["expr"].replace("$__rate_interval", "5m").replace("$instance", ".*").replace("$shard", ".*")
        for m in re.findall(r"\b(pgcrab_\w+)", e):
            if m not in names:
                print("unknown metric " + m, file=sys.stderr)
                sys.exit(1)
        print("  - record: dashboard:p%d_%s\n    expr: %s" % (i, t["refId"], json.dumps(e)))
PY
check "the dashboard's queries name this page's metrics" test $? -eq 0
rules_ok() { promtool check rules "$T_DIR/rules.yml" >"$T_DIR/rules.out" 2>&1 || { sed 's/^/# /' "$T_DIR/rules.out"; false; }; }
check "promtool parses every dashboard query" rules_ok
expect_eq "pgcrab still serves clients" 1 "$(pc_psql -c 'SELECT 1')"
exit 0
