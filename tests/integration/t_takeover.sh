#!/usr/bin/env bash
# Upgrades that drop nobody (issue 16): SIGUSR2, then `pgcrab --takeover`
# started by hand, each hand the listening sockets over the control socket
# (SCM_RIGHTS) and then each idle client, its socket and its session. Under
# plain pgbench (-c 8, connections held) and pgbench -C running across both:
# no failed transaction, no refused connection, the old processes exit, and
# the new ones say they adopted the clients. A client that SET parameters and
# prepared a named statement keeps them, on the same connection, and its
# cancel key still cancels its query. A TLS client cannot move (OpenSSL's
# state stays in the old process): it finishes its transaction and is closed
# after it, not during it. systemd's fd store: the first process stores its
# listening sockets (FDSTORE=1 with the descriptors, read by the fake
# NOTIFY_SOCKET), and a process started with them as LISTEN_FDS, as a
# `systemctl restart` does, serves on them; a client that connected while no
# PgCrab ran is served, not refused.
source "$(dirname "$0")/lib.sh"
source "$LIB_DIR/tls_lib.sh"

if [[ $PC_DIRECT == 1 ]]; then
	skip "takeover" "direct mode: there is no PgCrab to upgrade"
	exit 0
fi

PIDS=()
NOTIFY_PID=
takeover_cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	[[ -n "$NOTIFY_PID" ]] && kill "$NOTIFY_PID" 2>/dev/null
}
trap 'rc=$?; takeover_cleanup; (exit $rc); t_cleanup' EXIT
# gone, or a zombie (the restarted one is the fake systemd's child)
gone() { ! kill -0 "$1" 2>/dev/null || [[ $(ps -o stat= -p "$1") == Z* ]]; }
export PGSSLMODE=disable # pgbench, psql: plaintext, as handed-over clients must be

tls_setup
SOCK_DIR=$T_DIR/sock
mkdir -p "$SOCK_DIR"
MSGS=$T_DIR/notify.msgs
: >"$MSGS"
# the fake systemd: keeps stored descriptors, starts a "restart" on demand
/usr/bin/python3 "$LIB_DIR/drivers/notify_listen.py" "$T_DIR/notify" "$MSGS" "$T_DIR/restart" \
	"$PGCRAB_BIN" --config "$T_DIR/pgcrab.ini" --workers 2 >>"$T_DIR/pgcrab.log" 2>&1 &
NOTIFY_PID=$!
poll 5 test -S "$T_DIR/notify" || not_ok "the notify listener starts"

export NOTIFY_SOCKET=$T_DIR/notify
pgcrab_start "min_connections = 2
max_connections = 20" "unix_socket_dir = $SOCK_DIR
client_tls_mode = prefer
client_tls_cert_file = $C/server.crt
client_tls_key_file = $C/server.key" || exit 1
unset NOTIFY_SOCKET
OLD_PID=$PGCRAB_PID
SOCK=$SOCK_DIR/.s.PGSQL.$PGCRAB_PORT
CTL=$SOCK_DIR/.s.PGCRAB.$PGCRAB_PORT

check "the listening sockets go to the fd store: FDSTORE=1 with TCP's and the Unix socket's" \
	poll 5 grep -q "^FDSTORE=1|FDNAME=pgcrab-listen|FDS=2\$" "$MSGS"
# made after the listeners and the fd store, so it may still be coming
check "the control socket is there, mode 0600" \
	poll 5 bash -c "[[ -S '$CTL' && \$(stat -c %a '$CTL') == 600 ]]"

# a client with session state, held across both upgrades
/usr/bin/python3 "$LIB_DIR/drivers/takeover_client.py" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" \
	"$PG_DB" 2 "$T_DIR/go" "$T_DIR/client.state" >"$T_DIR/client.out" 2>&1 &
client=$!
check "the session client is set up" poll 20 grep -qs ready "$T_DIR/client.state"

# a TLS client in a transaction when the first upgrade comes
/usr/bin/python3 "$LIB_DIR/drivers/closed_after_tx.py" \
	"host=127.0.0.1 port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=$PG_DB sslmode=require" \
	"$T_DIR/tls_go" "TLS client" >"$T_DIR/tls.out" 2>&1 &
tls=$!
check "the TLS client is in its transaction" poll 20 test -e "$T_DIR/tls_go.intx"

echo 'SELECT 1;' >"$T_DIR/select1.sql"
pc_pgbench 90 -n -T 15 -c 8 -f "$T_DIR/select1.sql" >"$T_DIR/pgbench_plain.out" 2>&1 &
bench_plain=$!
PGPASSWORD=$PC_PASSWORD timeout 90 pgbench -h "$SOCK_DIR" -p "$PGCRAB_PORT" -U "$PC_USER" \
	-n -C -T 15 -c 4 -f "$T_DIR/select1.sql" "$PG_DB" >"$T_DIR/pgbench_c.out" 2>&1 &
bench_c=$!
sleep 2

# the n-th "handed over N idle client(s)" line's N
handed() { sed -n 's/.*previous process handed over \([0-9]*\) idle.*/\1/p' "$T_DIR/pgcrab.log" | sed -n "${1}p"; }
serves() { grep -q "takeover: process $1 has the listening sockets and serves" "$T_DIR/pgcrab.log"; }

# 1. SIGUSR2
kill -USR2 "$OLD_PID"
if poll 20 grep -q "upgrade: process [0-9]* serves" "$T_DIR/pgcrab.log"; then
	NEW1=$(sed -n 's/.*upgrade: process \([0-9]*\) serves.*/\1/p' "$T_DIR/pgcrab.log" | head -1)
	PIDS+=("$NEW1")
	ok "SIGUSR2: process $NEW1 takes the sockets over the control connection"
else
	not_ok "SIGUSR2: a new process takes the sockets over"
	exit 1
fi
check "SIGUSR2: systemd is told MAINPID=$NEW1" poll 5 grep -q "^MAINPID=$NEW1\$" "$MSGS"
touch "$T_DIR/tls_go"
check "SIGUSR2: the old process exits once its clients are handed over or done" poll 30 gone "$OLD_PID"
wait "$OLD_PID"
expect_eq "SIGUSR2: the old process exits 0" 0 "$?"
PGCRAB_PID=
check "SIGUSR2: the new process says what it adopted" poll 10 test -n "$(handed 1)"
n1=$(handed 1)
check "SIGUSR2: plain pgbench's 8 clients and the session client were handed over (got ${n1:-none})" \
	test "${n1:-0}" -ge 9
check "SIGUSR2: the TLS client was not, and the log says why" \
	grep -q "not handed over to the new process (TLS" "$T_DIR/pgcrab.log"
touch "$T_DIR/go.1"
check "the session client checked after SIGUSR2" poll 60 grep -q "checked 1" "$T_DIR/client.state"

# 2. pgcrab --takeover, started by hand
sleep 2
env -u PGCRAB_CONFIG_FILE -u PGCRAB_HOST -u PGCRAB_PORT -u PGCRAB_WORKERS -u PGCRAB_POOL_MODE \
	-u PGCRAB_LOG_LEVEL "$PGCRAB_BIN" --config "$T_DIR/pgcrab.ini" --workers 2 --takeover \
	>>"$T_DIR/pgcrab.log" 2>&1 &
NEW2=$!
PIDS+=("$NEW2")
check "--takeover: process $NEW2 takes the sockets over" poll 20 serves "$NEW2"
check "--takeover: systemd is told MAINPID=$NEW2" poll 5 grep -q "^MAINPID=$NEW2\$" "$MSGS"
check "--takeover: the old process ($NEW1) exits" poll 30 gone "$NEW1"
check "--takeover: the new process says what it adopted" poll 10 test -n "$(handed 2)"
n2=$(handed 2)
check "--takeover: plain pgbench's 8 clients and the session client were handed over (got ${n2:-none})" \
	test "${n2:-0}" -ge 9
touch "$T_DIR/go.2"
check "the session client checked after --takeover" poll 60 grep -q "checked 2" "$T_DIR/client.state"

wait "$client"
expect_eq "the session client ends well" 0 "$?"
sed 's/^\(ok\|not ok\) - /\1 - session client: /' "$T_DIR/client.out"
grep -q "^not ok" "$T_DIR/client.out" && T_FAILED=$((T_FAILED + 1))
wait "$tls"
cat "$T_DIR/tls.out"
check "the TLS client's connection was TLS" grep -q "TLS True" "$T_DIR/tls.out"
grep -q "^not ok" "$T_DIR/tls.out" && T_FAILED=$((T_FAILED + 1))
expect_eq "the TLS client said both things" 2 "$(grep -c '^ok' "$T_DIR/tls.out")"

for kind in plain c; do
	if [[ $kind == plain ]]; then wait "$bench_plain"; else wait "$bench_c"; fi
	rc=$?
	out=$(cat "$T_DIR/pgbench_$kind.out")
	pgbench_numbers "$out"
	refused=$(grep -ciE "connection (to server .*)?failed|could not connect|refused|reset|terminat|abort" <<<"$out")
	expect_eq "pgbench ($kind) across both upgrades: no connection refused, reset or ended" 0 "$refused"
	expect_eq "pgbench ($kind) across both upgrades: no failed transaction" 0 "${BENCH_FAILED:-missing}"
	expect_eq "pgbench ($kind) ends well" 0 "$rc"
	[[ $rc -ne 0 ]] && grep -v "^progress" "$T_DIR/pgbench_$kind.out" | head -12 | sed "s/^/# /"
	echo "# pgbench ($kind): ${BENCH_PROCESSED:-?} transactions, ${BENCH_TPS:-?} tps"
done
expect_eq "the last process serves over TCP" 1 "$(pc_psql -c 'SELECT 1')"
expect_eq "the last process serves over the Unix socket" 1 \
	"$(timeout 30 psql -X -At -d "host=$SOCK_DIR port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=$PG_DB connect_timeout=5" -c 'SELECT 1')"

# 3. a restart with the fd store: the process stops, the sockets stay open
# in the store (a client connecting meanwhile waits in the backlog), and a
# process started with them serves
kill -TERM "$NEW2"
check "the last process stops on SIGTERM" poll 15 gone "$NEW2"
check "its Unix socket file stays: the fd store keeps the socket" test -S "$SOCK"
timeout 60 psql -X -At -d "$(PC_CONN) connect_timeout=50" -c 'SELECT 42' >"$T_DIR/waiting.out" 2>&1 &
waiting=$!
sleep 1
touch "$T_DIR/restart"
check "the restart starts a process with the stored sockets" poll 10 grep -q "^RELAUNCHED=" "$MSGS"
NEW3=$(sed -n 's/^RELAUNCHED=//p' "$MSGS" | head -1)
PIDS+=("$NEW3")
check "it listens on them (from systemd's fd store)" \
	poll 20 grep -q "listening on .* (from systemd's fd store)" "$T_DIR/pgcrab.log"
wait "$waiting"
expect_eq "a client that connected while no PgCrab ran is served" 42 "$(cat "$T_DIR/waiting.out")"
expect_eq "the restarted process serves over the Unix socket" 1 \
	"$(timeout 30 psql -X -At -d "host=$SOCK_DIR port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=$PG_DB connect_timeout=5" -c 'SELECT 1')"
kill -TERM "$NEW3"
check "the restarted process stops on SIGTERM" poll 15 gone "$NEW3"
check "no sanitizer findings from any process" \
	bash -c "! grep -q 'ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer' '$T_DIR/pgcrab.log'"
