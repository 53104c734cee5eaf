#!/usr/bin/env bash
# Workers accept their own clients (core/worker_accept.c): clients spread
# over the workers, a login storm is never left waiting in the listen queue
# (a swallowed wake-up would hang pgbench -C), max_client_conn still counts
# every worker's clients, and shutdown stops the accepts and exits 0.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "clients spread over PgCrab's workers" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: no workers"
	exit 0
fi
pgcrab_start --workers 2 "min_connections = 1
max_connections = 4" "max_client_conn = 25" || exit 1

console() { timeout 30 psql -X -q -At -F ' ' -d "$(PC_CONN) dbname=pgcrab" -c "$1"; }

# --- 24 idle clients, connected one after another ------------------------------
# each holder is a psql reading a fifo nobody writes to: it stays idle
# until the fifo's one writer (this shell) closes it
mkfifo "$T_DIR/hold"
exec {hold_fd}<>"$T_DIR/hold"
holders=()
for i in $(seq 1 24); do
	timeout 60 psql -X -q -d "$(PC_CONN)" <"$T_DIR/hold" >/dev/null 2>&1 {hold_fd}>&- &
	holders+=($!)
	# one at a time: the balance must hold for a trickle, not only a crowd
	sleep 0.15
done
poll 10 bash -c "[[ \$(timeout 5 psql -X -q -At -F ' ' -d \"$(PC_CONN) dbname=pgcrab\" -c 'SHOW CLIENTS' | grep -c ' $PG_DB ') -ge 24 ]]"
per_worker=$(console "SHOW CLIENTS" | awk -v db="$PG_DB" '$3 == db {n[$(NF-1)]++} END {for (w in n) print w, n[w]}' | sort)
w0=$(awk '$1 == 0 {print $2}' <<<"$per_worker")
w1=$(awk '$1 == 1 {print $2}' <<<"$per_worker")
check "24 clients connected one by one spread over both workers (worker 0: ${w0:-0}, worker 1: ${w1:-0}; each at least 9)" \
	bash -c "[[ ${w0:-0} -ge 9 && ${w1:-0} -ge 9 && $((${w0:-0} + ${w1:-0})) -eq 24 ]]"

# --- max_client_conn = 25 counts both workers' clients -----------------------------
timeout 60 psql -X -q -d "$(PC_CONN)" <"$T_DIR/hold" >/dev/null 2>&1 {hold_fd}>&- &
extra=$!
sleep 1 # no console to ask: it would be the 26th client
state=$(timeout 60 /usr/bin/python3 "$(dirname "$0")/drivers/query_once.py" "$PGCRAB_PORT" \
	"$PC_USER" "$PC_PASSWORD" "$PG_DB" "SELECT 1" | cut -d' ' -f1)
expect_eq "the 26th client over max_client_conn = 25 (held across two workers) is told 53300" "E:53300" "$state"
exec {hold_fd}>&-
wait "${holders[@]}" "$extra" 2>/dev/null
gone() { [[ $(console "SHOW CLIENTS" | grep -c " $PG_DB ") -eq 0 ]]; }
check "the held clients are gone" poll 10 gone

# --- a login storm: pgbench -C, 16 clients --------------------------------------------
before=$(console "SHOW WORKERS" | awk '{print $1, $5}')
echo 'SELECT 1;' >"$T_DIR/select1.sql"
out=$(pc_pgbench 60 -n -C -c 16 -j 2 -T 4 -f "$T_DIR/select1.sql" 2>&1)
pgbench_numbers "$out"
after=$(console "SHOW WORKERS" | awk '{print $1, $5}')
# completions each worker handled during the storm: every login is several
busy=$(join <(echo "$before") <(echo "$after") | awk '$3 - $2 >= 200 {n++} END {print n + 0}')
check "pgbench -C -c 16 for 4 s ends and logs in again and again (${BENCH_PROCESSED:-none} transactions)" \
	bash -c "[[ ${BENCH_PROCESSED:-0} -ge 100 ]]"
expect_eq "pgbench -C: no failed transaction" 0 "${BENCH_FAILED:-missing}"
expect_eq "both workers served the storm's logins (ring completions before: $(echo $before), after: $(echo $after))" 2 "$busy"

# --- shutdown ------------------------------------------------------------------------
pgcrab_stop # checks the exit status (0) and that no sanitizer spoke
exit 0
