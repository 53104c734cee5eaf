#!/usr/bin/env bash
# Online upgrade (SIGUSR2, issue 16): the running PgCrab starts its binary
# again and hands it the listening sockets (TCP and its Unix socket) over a
# socket pair (SCM_RIGHTS); once the new process serves, the old one stops
# accepting, hands its idle clients over and drains. Under pgbench -C (a
# new connection per transaction) over TCP and plain pgbench over the Unix
# socket across the upgrade: no connection refused, no transaction failed,
# plain pgbench's clients handed over; the old process exits, the new one
# serves on both sockets, tells systemd MAINPID, and owns the socket file
# (kept at its exit: the fd store holds its socket for a restart). A query
# running in the old process is cancelled through the new one (which passes
# the CancelRequest back), and its client is then handed over. In
# session mode a client holding its server cannot move: it finishes its
# transaction and is closed after it. (t_takeover: pgcrab --takeover,
# session state, TLS clients, the fd store.)
source "$(dirname "$0")/lib.sh"

if [[ $PC_DIRECT == 1 ]]; then
	skip "online upgrade" "direct mode: there is no PgCrab to upgrade"
	exit 0
fi

NEW_PID=
NOTIFY_PID=
upgrade_cleanup() {
	[[ -n "$NOTIFY_PID" ]] && kill "$NOTIFY_PID" 2>/dev/null
	[[ -n "$NEW_PID" ]] && kill -KILL "$NEW_PID" 2>/dev/null
}
trap 'rc=$?; upgrade_cleanup; (exit $rc); t_cleanup' EXIT

SOCK_DIR=$T_DIR/sock
mkdir -p "$SOCK_DIR"
MSGS=$T_DIR/notify.msgs
: >"$MSGS"
/usr/bin/python3 "$LIB_DIR/drivers/notify_listen.py" "$T_DIR/notify" "$MSGS" &
NOTIFY_PID=$!
poll 5 test -S "$T_DIR/notify" || not_ok "the notify listener starts"

export NOTIFY_SOCKET=$T_DIR/notify
pgcrab_start "min_connections = 2
max_connections = 20" "unix_socket_dir = $SOCK_DIR" || exit 1
unset NOTIFY_SOCKET
OLD_PID=$PGCRAB_PID
SOCK=$SOCK_DIR/.s.PGSQL.$PGCRAB_PORT

echo 'SELECT 1;' >"$T_DIR/select1.sql"
# -C over TCP, plain over the Unix socket, both across the upgrade
pc_pgbench 60 -n -C -T 8 -c 4 -f "$T_DIR/select1.sql" >"$T_DIR/pgbench_c.out" 2>&1 &
bench_c=$!
PGPASSWORD=$PC_PASSWORD timeout 60 pgbench -h "$SOCK_DIR" -p "$PGCRAB_PORT" -U "$PC_USER" \
	-n -T 8 -c 4 -f "$T_DIR/select1.sql" "$PG_DB" >"$T_DIR/pgbench_plain.out" 2>&1 &
bench_plain=$!
# a query running in the old process when the new one takes over
/usr/bin/python3 "$LIB_DIR/drivers/cancel_across.py" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" \
	"$PG_DB" "$T_DIR/sleeping" "$T_DIR/cancel_go" >"$T_DIR/cancel.out" 2>&1 &
canceller=$!
sleep 2
check "a client's query runs in the old process" test -e "$T_DIR/sleeping"

kill -USR2 "$OLD_PID"
serves() { grep -q "upgrade: process [0-9]* serves" "$T_DIR/pgcrab.log"; }
if poll 10 serves; then
	NEW_PID=$(sed -n 's/.*upgrade: process \([0-9]*\) serves.*/\1/p' "$T_DIR/pgcrab.log" | head -1)
	ok "SIGUSR2 starts a new process that takes the sockets over (pid $NEW_PID)"
else
	not_ok "SIGUSR2 starts a new process that takes the sockets over"
	exit 1
fi
touch "$T_DIR/cancel_go"
check "the new one listens on the sockets handed over" \
	grep -q "listening on .* (from the previous process)" "$T_DIR/pgcrab.log"
check "the old one tells systemd MAINPID=$NEW_PID" poll 5 grep -q "^MAINPID=$NEW_PID\$" "$MSGS"
check "the old process exits once drained" poll 15 bash -c "! kill -0 $OLD_PID 2>/dev/null"
wait "$OLD_PID"
expect_eq "the old process exits 0" 0 "$?"
PGCRAB_PID=

wait "$canceller"
cat "$T_DIR/cancel.out"
grep -q "^not ok" "$T_DIR/cancel.out" && T_FAILED=$((T_FAILED + 1))
expect_eq "the cancelled client said both things" 2 "$(grep -c '^ok' "$T_DIR/cancel.out")"

wait "$bench_c"
rc_c=$?
out=$(cat "$T_DIR/pgbench_c.out")
pgbench_numbers "$out"
refused=$(grep -ciE "connection (to server .*)?failed|could not connect|refused|reset" <<<"$out")
expect_eq "pgbench -C across the upgrade: no connection refused or reset" 0 "$refused"
expect_eq "pgbench -C across the upgrade: no failed transaction" 0 "${BENCH_FAILED:-missing}"
expect_eq "pgbench -C ends well" 0 "$rc_c"
[[ $rc_c -ne 0 ]] && grep -v "^progress" "$T_DIR/pgbench_c.out" | head -12 | sed "s/^/# /"
echo "# pgbench -C: ${BENCH_PROCESSED:-?} transactions, ${BENCH_TPS:-?} tps"

wait "$bench_plain"
plain_rc=$?
pgbench_numbers "$(cat "$T_DIR/pgbench_plain.out")"
aborted=$(grep -c "aborted\|terminat" "$T_DIR/pgbench_plain.out")
expect_eq "plain pgbench across the upgrade: no client aborted or terminated" 0 "$aborted"
expect_eq "plain pgbench across the upgrade: no failed transaction" 0 "${BENCH_FAILED:-missing}"
expect_eq "plain pgbench ends well" 0 "$plain_rc"
echo "# plain pgbench: ${BENCH_PROCESSED:-?} transactions, ${BENCH_TPS:-?} tps"
n=$(sed -n 's/.*previous process handed over \([0-9]*\) idle.*/\1/p' "$T_DIR/pgcrab.log" | head -1)
check "plain pgbench's 4 clients were handed over to the new process (got ${n:-none})" \
	test "${n:-0}" -ge 4

expect_eq "the new process serves over TCP" 1 "$(pc_psql -c 'SELECT 1')"
expect_eq "the new process serves over the Unix socket" 1 \
	"$(timeout 30 psql -X -At -d "host=$SOCK_DIR port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=$PG_DB connect_timeout=5" -c 'SELECT 1')"
check "the socket file is still there after the old process left" test -S "$SOCK"

# the new process is not this shell's child: stopped by hand
kill -TERM "$NEW_PID"
check "the new process stops on SIGTERM" poll 10 bash -c "! kill -0 $NEW_PID 2>/dev/null"
NEW_PID=
check "and leaves the socket file: the fd store holds its socket for a restart" test -S "$SOCK"
check "the first process stored the sockets (FDSTORE=1, two descriptors)" \
	grep -q "^FDSTORE=1|FDNAME=pgcrab-listen|FDS=2\$" "$MSGS"

# session mode: a client in a transaction finishes it on the old process
# and is closed after it
pgcrab_start "min_connections = 1
max_connections = 5" "pool_mode = session" || exit 1
OLD_PID=$PGCRAB_PID
/usr/bin/python3 "$LIB_DIR/drivers/closed_after_tx.py" "$(PC_CONN) sslmode=disable" "$T_DIR/sgo" \
	"session mode" >"$T_DIR/session.out" 2>&1 &
sclient=$!
check "session mode: the client is in its transaction" poll 20 test -e "$T_DIR/sgo.intx"
kill -USR2 "$OLD_PID"
check "session mode: a new process serves" \
	poll 20 bash -c "grep -c 'upgrade: process [0-9]* serves' '$T_DIR/pgcrab.log' | grep -q 2"
NEW_PID=$(sed -n 's/.*upgrade: process \([0-9]*\) serves.*/\1/p' "$T_DIR/pgcrab.log" | tail -1)
touch "$T_DIR/sgo"
wait "$sclient"
cat "$T_DIR/session.out"
grep -q "^not ok" "$T_DIR/session.out" && T_FAILED=$((T_FAILED + 1))
expect_eq "session mode: the client said both things" 2 "$(grep -c '^ok' "$T_DIR/session.out")"
check "session mode: the log says why it was not handed over" \
	grep -q "not handed over to the new process (it holds a server: session mode)" "$T_DIR/pgcrab.log"
check "session mode: the old process exits" poll 15 bash -c "! kill -0 $OLD_PID 2>/dev/null"
wait "$OLD_PID"
PGCRAB_PID=
expect_eq "session mode: the new process serves" 1 "$(pc_psql -c 'SELECT 1')"
kill -TERM "$NEW_PID"
check "session mode: the new process stops on SIGTERM" poll 10 bash -c "! kill -0 $NEW_PID 2>/dev/null"
NEW_PID=
# both processes wrote to the one log (the new one inherited it)
check "no sanitizer findings from either process" \
	bash -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer' '$T_DIR/pgcrab.log'"
