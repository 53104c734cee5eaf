# PAUSE, RESUME and RECONNECT on the admin console (SPEC §6), and
# log_connections: PAUSE under pgbench holds the transactions and leaves
# PostgreSQL without a connection from PgCrab, RESUME lets them go on with
# no transaction failed; PAUSE waits for a transaction in progress; one
# database paused leaves another served; RECONNECT replaces every server
# connection under load; a held client meets query_wait_timeout; the
# connect and disconnect lines come and go with log_connections. Direct
# mode has no console: skipped there.
source "$(dirname "$0")/lib.sh"
source "$REPO_DIR/scripts/pgshards.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)

if [[ $PC_DIRECT == 1 ]]; then
	skip "PAUSE, RESUME, RECONNECT" "PostgreSQL has no pgcrab console"
	exit 0
fi
trap 'rc=$?; pgshards_stop; (exit $rc); t_cleanup' EXIT

# a second database, on a backend database of its own, to tell its
# connections apart in pg_stat_activity
# and two more for a sharded database
pgshards_databases pause 3 || { not_ok "the other databases are created"; exit 1; }
OTHER=pause_other
other_section="[shard.$OTHER]
host = $PG_HOST
port = $PG_PORT
database = ${SHARD_DBS[0]}
user = $PG_USER
password = $PG_PASSWORD
max_connections = 4

[user.viewer]
password = viewer"
shard_sections=""
for i in 1 2; do
	pgshards_psql "$i" -c "CREATE TABLE t (id int8, v int)"
	shard_sections+="[shard.papp_$i]
host = $PG_HOST
port = $PG_PORT
database = ${SHARD_DBS[i]}
user = $PG_USER
password = $PG_PASSWORD

"
done
shard_sections+="[database.papp]
shards = papp_1, papp_2

[sharded_table.t]
database = papp
columns = id
types = int8"

adm() { # adm COMMAND: the console's answer (psql's status line or error)
	PGPASSWORD=pgcrab timeout "${ADM_TIMEOUT:-30}" psql -X -At -h 127.0.0.1 -p "$PGCRAB_PORT" \
		-U pgcrab pgcrab -c "$1" 2>&1
}
stat_of() { # stat_of COMMAND COLUMN DATABASE
	PGPASSWORD=pgcrab timeout 20 psql -X -h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab pgcrab \
		-c "$1" --csv 2>/dev/null | awk -F, -v db="$3" -v col="$2" \
		'NR == 1 {for (i = 1; i <= NF; i++) if ($i == col) c = i} $1 == db {print $c}'
}
# PgCrab's connections to a backend database, as PostgreSQL sees them
backends() {
	pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1'
		AND usename = '$PG_USER' AND backend_type = 'client backend'"
}
backend_pids() {
	pg_admin -c "SELECT pid FROM pg_stat_activity WHERE datname = '$1'
		AND usename = '$PG_USER' AND backend_type = 'client backend' ORDER BY pid"
}
xacts() { stat_of "SHOW STATS" total_xact_count "$PG_DB"; }
# bench_ends WHAT NAME: pgbench ($bench, its output in NAME.txt) exits 0
# with no failed transaction
bench_ends() {
	wait "$bench"
	local rc=$?
	pgbench_numbers "$(cat "$T_DIR/$2.txt")"
	expect_eq "pgbench across $1 exits 0" 0 "$rc"
	expect_eq "pgbench across $1: no failed transaction" 0 "${BENCH_FAILED:-none}"
	check "pgbench across $1 processed transactions" test "${BENCH_PROCESSED:-0}" -gt 0
	[[ $rc == 0 ]] || sed 's/^/# /' "$T_DIR/$2.txt" | tail -15
}

PGCRAB_EXTRA_SECTIONS=$other_section pgcrab_start "min_connections = 2
max_connections = 4" "stats_users = viewer
query_wait_timeout = 60s" || exit 1

# ---- PAUSE and RESUME under pgbench --------------------------------------
pc_pgbench 120 -i -q -s 1 >/dev/null 2>&1 || not_ok "pgbench -i through pgcrab"
pc_pgbench 120 -n -c 6 -j 2 -T 10 >"$T_DIR/bench1.txt" 2>&1 &
bench=$!
x_start=$(xacts)
running() { [[ "$(xacts)" -gt $((x_start + 50)) ]]; }
poll 20 running
check "pgbench runs through PgCrab before the PAUSE" running
out=$(adm "PAUSE $PG_DB")
expect_eq "PAUSE under pgbench answers PAUSE once the transactions are done" "PAUSE" "$out"
# the server connections were closed before PAUSE answered; PostgreSQL
# takes a moment to end the backends
no_backends() { [[ "$(backends "$PG_DB")" == 0 ]]; }
poll 10 no_backends
expect_eq "while paused PgCrab has no connection to the database" 0 "$(backends "$PG_DB")"
expect_eq "SHOW DATABASES: paused = 1" 1 "$(stat_of "SHOW DATABASES" paused "$PG_DB")"
x_paused=$(xacts)
sleep 1
expect_eq "pgbench's transactions stall while paused" "$x_paused" "$(xacts)"
check "pgbench's clients are held, not refused (cl_waiting > 0)" \
	test "$(stat_of "SHOW POOLS" cl_waiting "$PG_DB")" -gt 0
check "pgbench is still running while paused" kill -0 "$bench"
check "another database is served while this one is paused" \
	bash -c "PGPASSWORD=pgcrab timeout 20 psql -X -At -h 127.0.0.1 -p $PGCRAB_PORT -U pgcrab $OTHER -c 'SELECT 1' | grep -qx 1"
expect_eq "the other database is not paused" 0 "$(stat_of "SHOW DATABASES" paused "$OTHER")"
expect_eq "RESUME answers RESUME" "RESUME" "$(adm "RESUME $PG_DB")"
resumed() { [[ "$(xacts)" -gt "$x_paused" ]]; }
poll 20 resumed
check "transactions go on after RESUME" resumed
bench_ends "PAUSE and RESUME" bench1

# ---- PAUSE waits for a transaction; refusals; PAUSE of all ---------------
out=$(timeout 120 $PY "$drivers/admin_pause.py" "$PGCRAB_PORT" "$PG_DB" "$OTHER" 2>&1)
grep -E '^(ok|not ok) ' <<<"$out"
grep -q '^not ok\|Traceback' <<<"$out" && grep -v '^ok' <<<"$out" | sed 's/^/# /' | head -20
[[ $(grep -c '^ok - ' <<<"$out") -ge 28 ]] || not_ok "admin_pause.py ended early: $(tail -1 <<<"$out")"

# ---- RECONNECT under pgbench ------------------------------------------------
pc_pgbench 120 -n -c 4 -j 2 -T 8 >"$T_DIR/bench2.txt" 2>&1 &
bench=$!
x_start=$(xacts)
poll 20 running
before=$(backend_pids "$PG_DB" | tr '\n' ' ')
check "PgCrab has server connections before RECONNECT (${before})" test -n "$before"
expect_eq "RECONNECT answers RECONNECT" "RECONNECT" "$(adm "RECONNECT $PG_DB")"
old_gone() {
	local now
	now=" $(backend_pids "$PG_DB" | tr '\n' ' ') "
	for p in $before; do [[ "$now" == *" $p "* ]] && return 1; done
	return 0
}
poll 20 old_gone
check "every server connection of before RECONNECT is gone (now: $(backend_pids "$PG_DB" | tr '\n' ' '))" old_gone
x_rec=$(xacts)
resumed_rec() { [[ "$(xacts)" -gt "$x_rec" ]]; }
poll 20 resumed_rec
check "new server connections serve pgbench after RECONNECT" test "$(backends "$PG_DB")" -gt 0
bench_ends "RECONNECT" bench2

# ---- log_connections (on by default) -----------------------------------------
check "SHOW CONFIG lists log_connections = on" \
	bash -c "PGPASSWORD=pgcrab psql -X -At -h 127.0.0.1 -p $PGCRAB_PORT -U pgcrab pgcrab -c 'SHOW CONFIG' | grep -qx 'log_connections|on|on|yes'"
pc_psql -c "SELECT 1" >/dev/null
PGPASSWORD=wrong timeout 20 psql -X -At -h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab -d "$PG_DB" -c "SELECT 1" >/dev/null 2>&1
log=$T_DIR/pgcrab.log
check "a login attempt is logged with address, user and database" \
	grep -q "login attempt from 127\.0\.0\.1:[0-9]*: user \"pgcrab\", database \"$PG_DB\"" "$log"
check "its disconnect is logged with the reason (Terminate)" \
	grep -q "disconnected from 127\.0\.0\.1:[0-9]* (user \"pgcrab\", database \"$PG_DB\") after [0-9.]* s: the client sent Terminate" "$log"
check "a refused login's disconnect says why (28P01)" \
	grep -q "disconnected from .*(user \"pgcrab\", database \"$PG_DB\").*: FATAL 28P01 password authentication failed" "$log"
# a peer that resets its connection: the socket no longer knows the
# address, the line still gives the one logged at login
reset_port=$(cd "$drivers" && timeout 30 $PY -c '
import socket, struct, sys, pgwire
c = pgwire.Conn(int(sys.argv[1]), db=sys.argv[2])
port = c.s.getsockname()[1]
c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.s.close()  # RST, no Terminate
print(port)' "$PGCRAB_PORT" "$PG_DB" 2>&1)
reset_logged() { grep -q "disconnected from 127\.0\.0\.1:$reset_port (user \"pgcrab\"" "$log"; }
check "a client that resets its connection is logged with its address (port $reset_port)" poll 10 reset_logged
pgcrab_stop

# ---- query_wait_timeout holds for held clients; log_connections = off --------
PGCRAB_EXTRA_SECTIONS= pgcrab_start "min_connections = 0
max_connections = 2" "query_wait_timeout = 1s
log_connections = off" || exit 1
held_select() {
	PGPASSWORD=pgcrab timeout 30 psql -X -At -v VERBOSITY=verbose -h 127.0.0.1 -p "$PGCRAB_PORT" \
		-U pgcrab "$PG_DB" -c "SELECT 1" 2>&1
}
# no server has logged in yet: a new client waits for one to learn the
# shard's parameters, and is held there
expect_eq "PAUSE with no transaction in progress answers at once" "PAUSE" "$(adm "PAUSE")"
# (psql prints no SQLSTATE for an error at connection time)
expect_match "a client logging in to a paused shard, held longer than query_wait_timeout, is refused and told the shard is paused" \
	"FATAL: +query_wait_timeout.*paused" "$(held_select)"
expect_eq "RESUME" "RESUME" "$(adm "RESUME")"
expect_eq "after RESUME the client logs in and is served" 1 "$(pc_psql -c 'SELECT 1')"
# now logins need no server: the request itself is held
expect_eq "PAUSE again" "PAUSE" "$(adm "PAUSE")"
expect_match "a logged-in client's transaction held longer than query_wait_timeout gets 08006 too" \
	"08006.*query_wait_timeout.*paused" "$(held_select)"
expect_eq "RESUME again" "RESUME" "$(adm "RESUME")"
expect_eq "after RESUME the database serves again" 1 "$(pc_psql -c 'SELECT 1')"
# the log since this PgCrab started (pgcrab_start marks each start)
this_run() { awk '/^=== /{n = NR} {l[NR] = $0} END {for (i = n; i <= NR; i++) print l[i]}' "$T_DIR/pgcrab.log"; }
check "log_connections = off: no login attempt is logged" bash -c "! grep -q 'login attempt from' <<<\"\$1\"" _ "$(this_run)"
check "log_connections = off: no disconnect is logged" bash -c "! grep -q 'disconnected from' <<<\"\$1\"" _ "$(this_run)"
check "every console command is logged with who ran it" grep -q 'admin console: user "pgcrab" runs: RESUME' "$T_DIR/pgcrab.log"
pgcrab_stop

# ---- a sharded database: PAUSE lets a transaction under way take the
# other shard it needs --------------------------------------------------------
pgshards_first_keys || { not_ok "tests/tools/shard_of (make unit) gives a key per shard"; exit 1; }
PGCRAB_EXTRA_SECTIONS=$shard_sections pgcrab_start || exit 1
out=$(timeout 120 $PY "$drivers/admin_pause.py" --sharded "$PGCRAB_PORT" papp "$K0" "$K1" 2>&1)
grep -E '^(ok|not ok) ' <<<"$out"
grep -q '^not ok\|Traceback' <<<"$out" && grep -v '^ok' <<<"$out" | sed 's/^/# /' | head -20
[[ $(grep -c '^ok - ' <<<"$out") -ge 7 ]] || not_ok "admin_pause.py --sharded ended early: $(tail -1 <<<"$out")"
exit 0
