#!/usr/bin/env bash
# Online upgrade (SIGUSR2, issue 16): the running PgCrab starts its binary
# again and hands it the listening sockets (TCP and its Unix socket); once
# the new process serves, the old one stops accepting and drains. Under
# pgbench -C (a new connection per transaction) across the upgrade: no
# connection refused, no transaction failed; the old process exits, the
# new one serves on both sockets, tells systemd MAINPID, and owns the
# socket file. Plain pgbench's connections to the old process are closed
# between transactions (handing idle clients over is not built): their
# count is printed, not asserted.
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
sleep 2

kill -USR2 "$OLD_PID"
serves() { grep -q "upgrade: process [0-9]* serves" "$T_DIR/pgcrab.log"; }
if poll 10 serves; then
	NEW_PID=$(sed -n 's/.*upgrade: process \([0-9]*\) serves.*/\1/p' "$T_DIR/pgcrab.log" | head -1)
	ok "SIGUSR2 starts a new process that takes the sockets over (pid $NEW_PID)"
else
	not_ok "SIGUSR2 starts a new process that takes the sockets over"
	exit 1
fi
check "the new one listens on the sockets handed over" \
	grep -q "listening on .* (from the previous process)" "$T_DIR/pgcrab.log"
check "the old one tells systemd MAINPID=$NEW_PID" poll 5 grep -q "^MAINPID=$NEW_PID\$" "$MSGS"
check "the old process exits once drained" poll 15 bash -c "! kill -0 $OLD_PID 2>/dev/null"
wait "$OLD_PID"
expect_eq "the old process exits 0" 0 "$?"
PGCRAB_PID=

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
echo "# plain pgbench across the upgrade (not asserted: idle clients are not handed over yet): exit $plain_rc, ${BENCH_PROCESSED:-?} transactions, $aborted lines about aborted or terminated clients"

expect_eq "the new process serves over TCP" 1 "$(pc_psql -c 'SELECT 1')"
expect_eq "the new process serves over the Unix socket" 1 \
	"$(timeout 30 psql -X -At -d "host=$SOCK_DIR port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=$PG_DB connect_timeout=5" -c 'SELECT 1')"
check "the socket file is still there after the old process left" test -S "$SOCK"

# the new process is not this shell's child: stopped by hand
kill -TERM "$NEW_PID"
check "the new process stops on SIGTERM" poll 10 bash -c "! kill -0 $NEW_PID 2>/dev/null"
NEW_PID=
check "and removes the socket file it took over" test ! -e "$SOCK"
# both processes wrote to the one log (the new one inherited it)
check "no sanitizer findings from either process" \
	bash -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer' '$T_DIR/pgcrab.log'"
