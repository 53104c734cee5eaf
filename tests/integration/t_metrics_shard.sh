# Metrics of a sharded database: a statement routed by its key counts on
# its shard only; a statement sent to both shards (fan-out, answers merged)
# counts once on each; its clients show under the database's name; no
# gauge goes below zero.
source "$(dirname "$0")/lib.sh"
source "$REPO_DIR/scripts/pgshards.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "metrics of a sharded database" "PostgreSQL has no metrics endpoint"
	exit 0
fi
trap 'rc=$?; pgshards_stop; (exit $rc); t_cleanup' EXIT

pgshards_databases mts 2 || { not_ok "2 shard databases are created"; exit 1; }
for i in 0 1; do pgshards_psql $i -c "CREATE TABLE t (id int8, v int)"; done
MPORT=$(free_port)
PGCRAB_EXTRA_SECTIONS="$(
	pgshards_sections app
	pgshards_table t app id int8
)" pgcrab_start "" "metrics_port = $MPORT" || exit 1
app() {
	timeout 60 psql -X -q -At -v ON_ERROR_STOP=1 \
		-d "host=127.0.0.1 port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=app connect_timeout=5" "$@"
}
# scrape: the page into page.txt (bash's /dev/tcp: no interpreter to start
# on every poll)
scrape() {
	local ok=0
	if exec 3<>"/dev/tcp/127.0.0.1/$MPORT"; then
		printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
		timeout 10 cat <&3 >"$T_DIR/reply.txt" && ok=1
		exec 3<&-
	fi
	[[ $ok == 1 ]] && head -1 "$T_DIR/reply.txt" | grep -q '^HTTP/1.1 200 ' || {
		not_ok "scrape answered 200"
		return 1
	}
	sed '1,/^\r$/d' "$T_DIR/reply.txt" >"$T_DIR/page.txt"
}
metric() { # metric NAME [LABEL-MATCH]: the sum of matching samples
	awk -v name="$1" -v want="${2:-}" '
		{ n = $1; sub(/\{.*/, "", n) }
		n == name && index($1, want) { s += $2 }
		END { printf "%.0f\n", s }' "$T_DIR/page.txt"
}
pgshards_first_keys || { not_ok "tests/tools/shard_of (make unit) gives a key per shard"; exit 1; }
k0=$K0 k1=$K1

scrape || exit 1
a0=$(metric pgcrab_transactions_total 'shard="app_0"') a1=$(metric pgcrab_transactions_total 'shard="app_1"')
q0=$(metric pgcrab_queries_total 'shard="app_0"') q1=$(metric pgcrab_queries_total 'shard="app_1"')
# three keyed inserts on shard 0, one on shard 1, one count(*) over both
app -c "INSERT INTO t (id, v) VALUES ($k0, 1)" -c "INSERT INTO t (id, v) VALUES ($k0, 2)" \
	-c "INSERT INTO t (id, v) VALUES ($k0, 3)" -c "INSERT INTO t (id, v) VALUES ($k1, 4)" >/dev/null
expect_eq "count(*) over both shards" 4 "$(app -c "SELECT count(*) FROM t")"
scrape || exit 1
check "promtool check metrics accepts the page" promtool check metrics <"$T_DIR/page.txt"
expect_eq "shard 0: 3 inserts + the count = 4 transactions" 4 \
	"$(($(metric pgcrab_transactions_total 'shard="app_0"') - a0))"
expect_eq "shard 1: 1 insert + the count = 2 transactions" 2 \
	"$(($(metric pgcrab_transactions_total 'shard="app_1"') - a1))"
expect_eq "shard 0: 4 queries" 4 "$(($(metric pgcrab_queries_total 'shard="app_0"') - q0))"
expect_eq "shard 1: 2 queries" 2 "$(($(metric pgcrab_queries_total 'shard="app_1"') - q1))"
check "bytes from clients counted on both shards" test \
	"$(metric pgcrab_received_bytes_total 'shard="app_0"')" -gt 0 -a \
	"$(metric pgcrab_received_bytes_total 'shard="app_1"')" -gt 0

# a session in a transaction shows as an active client of "app"
app -c "BEGIN" -c "INSERT INTO t (id, v) VALUES ($k0, 5)" -c "SELECT pg_sleep(30)" -c "COMMIT" >/dev/null 2>&1 &
holder=$!
active_is() { scrape && [[ "$(metric pgcrab_clients 'database="app",state="active"')" == "$1" ]]; }
check "a client in a transaction is active under database app" poll 20 active_is 1
for i in 0 1; do
	pgshards_psql $i -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'" >/dev/null
done
wait "$holder"
check "no client active once it is done" poll 20 active_is 0
check "no gauge is below zero" awk '$1 ~ /^pgcrab_(clients|servers|worker_servers|worker_clients)[{ ]/ && $2 < 0 { bad = 1 } END { exit bad }' "$T_DIR/page.txt"
exit 0
