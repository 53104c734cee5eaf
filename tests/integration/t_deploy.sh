#!/usr/bin/env bash
# Deployment as a systemd service (issue 16), without systemd as PID 1:
#  - the Debian package builds (scripts/build-deb.sh), lintian finds no
#    error, it installs: the pgcrab user, /etc/pgcrab/pgcrab.ini (0640
#    root:pgcrab, a conffile an upgrade keeps), the units, enabled but not
#    started; systemd-analyze verifies the installed units and rates their
#    hardening;
#  - the installed binary, as the pgcrab user, with the installed config
#    (edited as docs/deploy.md says), talks to a stand-in for systemd's
#    NOTIFY_SOCKET: READY=1, STATUS= with live figures, RELOADING=1 +
#    MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1; clients connect
#    over TCP and over its Unix socket (unix_socket_dir);
#  - socket activation through systemd-socket-activate: PgCrab serves the
#    sockets it is handed (TCP and Unix) and opens none of its own.
# It installs the package on this machine and purges it at the end (root
# only). In the SANITIZE=1 pass the package is not built again: the runtime
# checks run on PGCRAB_BIN with the config make install would write.
source "$(dirname "$0")/lib.sh"

if [[ $PC_DIRECT == 1 ]]; then
	skip "deployment" "direct mode: there is no PgCrab to deploy"
	exit 0
fi

DEPLOY_INSTALLED=0
DEPLOY_RUNDIR=
NOTIFY_PID=
deploy_cleanup() {
	[[ -n "$NOTIFY_PID" ]] && kill "$NOTIFY_PID" 2>/dev/null
	if [[ $DEPLOY_INSTALLED == 1 ]]; then
		DEBIAN_FRONTEND=noninteractive dpkg --purge pgcrab >"$T_DIR/purge.log" 2>&1 ||
			echo "# dpkg --purge pgcrab failed: $(tail -1 "$T_DIR/purge.log")"
	fi
	[[ -n "$DEPLOY_RUNDIR" ]] && rm -rf "$DEPLOY_RUNDIR"
}
trap 'rc=$?; deploy_cleanup; (exit $rc); t_cleanup' EXIT

PORT=$(free_port)
BIN=/usr/bin/pgcrab
CONF=/etc/pgcrab/pgcrab.ini
RUN_AS=(setpriv --reuid=pgcrab --regid=pgcrab --init-groups)

# ---- the package -----------------------------------------------------------
package=1
if [[ $PC_SANITIZED == 1 ]]; then
	package=0
	skip "package builds, installs, passes lintian" "SANITIZE=1 pass: the release pass builds the package; here the runtime checks run on the sanitized binary"
elif [[ $(id -u) -ne 0 ]]; then
	package=0
	skip "package builds, installs, passes lintian" "needs root to install a package"
elif dpkg-query -W -f='${Status}' pgcrab 2>/dev/null | grep -q installed; then
	package=0
	skip "package builds, installs, passes lintian" "a pgcrab package is already installed here; t_deploy does not touch it"
fi

if [[ $package == 1 ]]; then
	t0=$(date +%s)
	if deb=$("$REPO_DIR/scripts/build-deb.sh" "$T_DIR/deb" 2>"$T_DIR/build.log"); then
		ok "dpkg-buildpackage builds $(basename "$deb") in $(($(date +%s) - t0)) s"
	else
		not_ok "dpkg-buildpackage builds the package"
		sed 's/^/# /' "$T_DIR/build.log" | tail -20
		exit 1
	fi
	lint=$(lintian -EvI --pedantic "$T_DIR"/deb/pgcrab_*.changes 2>&1 | grep -v '^running with root')
	errors=$(grep -c '^E: ' <<<"$lint")
	warnings=$(grep -c '^W: ' <<<"$lint")
	expect_eq "lintian: no error (warnings: $warnings)" 0 "$errors"
	grep '^[EW]: ' <<<"$lint" | sed 's/^/# /'

	if DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$T_DIR/install.log" 2>&1; then
		DEPLOY_INSTALLED=1
		ok "dpkg -i installs the package"
	else
		not_ok "dpkg -i installs the package"
		sed 's/^/# /' "$T_DIR/install.log" | tail -20
		exit 1
	fi
	check "the pgcrab system user exists" bash -c "getent passwd pgcrab >/dev/null"
	expect_eq "pgcrab.ini is 0640 root:pgcrab" "640 root:pgcrab" "$(stat -c '%a %U:%G' $CONF)"
	expect_match "pgcrab.ini is a conffile" "/etc/pgcrab/pgcrab.ini [0-9a-f]{32}" \
		"$(dpkg-query -W -f='${Conffiles}' pgcrab)"
	check "pgcrab.service is enabled" test -L /etc/systemd/system/multi-user.target.wants/pgcrab.service
	check "pgcrab.socket is not enabled" test ! -e /etc/systemd/system/sockets.target.wants/pgcrab.socket
	check "nothing was started" test -z "$(pgrep -u pgcrab)"
	check "man pages pgcrab(1) and pgcrab.ini(5) are installed" \
		bash -c 'man -w pgcrab >/dev/null && man -w 5 pgcrab.ini >/dev/null'

	units=(/lib/systemd/system/pgcrab.service /lib/systemd/system/pgcrab.socket)
	if out=$(systemd-analyze verify "${units[@]}" 2>&1) && [[ -z "$out" ]]; then
		ok "systemd-analyze verify: the installed units are clean"
	else
		not_ok "systemd-analyze verify: $out"
	fi
	# the score is systemd's own (0 = safest, 10 = unprotected); 2.0 is the
	# bottom of its "OK" band: hardening lost by an edit shows here
	score=$(systemd-analyze security --offline=yes "${units[0]}" 2>&1 |
		sed -n 's/.*Overall exposure level for pgcrab.service: \([0-9.]*\).*/\1/p')
	if [[ -n "$score" ]] && awk -v s="$score" 'BEGIN {exit !(s <= 2.0)}'; then
		ok "systemd-analyze security: exposure $score (at most 2.0)"
	else
		not_ok "systemd-analyze security: exposure [$score], want at most 2.0"
	fi
else
	# the config make install writes, and the binary under test, as root
	BIN=$PGCRAB_BIN
	CONF=$T_DIR/pgcrab.ini
	RUN_AS=()
	sed 's|^unix_socket_dir = *;|unix_socket_dir = /run/pgcrab ;|' "$REPO_DIR/pgcrab.ini.example" >"$CONF"
fi

# ---- the operator's one edit, and an upgrade that keeps it -----------------
# the example points at a PostgreSQL on 127.0.0.1:5432; this one is elsewhere
sed -i -e "s/^port = 6432 /port = $PORT /" -e "s/^port = 5432\$/port = $PG_PORT/" "$CONF"
expect_eq "the edited config points at this test's ports" "$PORT $PG_PORT" \
	"$(grep -E '^port = ' "$CONF" | awk '{print $3}' | paste -sd' ')"
if [[ $DEPLOY_INSTALLED == 1 ]]; then
	DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >>"$T_DIR/install.log" 2>&1
	expect_match "installing again keeps the edited pgcrab.ini" "^port = $PORT " "$(grep "^port = $PORT " $CONF)"
fi

# /run/pgcrab as the service's RuntimeDirectory= would make it
if [[ ! -d /run/pgcrab ]]; then
	DEPLOY_RUNDIR=/run/pgcrab
	mkdir -m 0755 /run/pgcrab
fi
[[ ${#RUN_AS[@]} -gt 0 ]] && chown pgcrab:pgcrab /run/pgcrab
SOCK=/run/pgcrab/.s.PGSQL.$PORT

# ---- notifications, as systemd would receive them ----------------------------
MSGS=$T_DIR/notify.msgs
: >"$MSGS"
/usr/bin/python3 "$LIB_DIR/drivers/notify_listen.py" "$T_DIR/notify" "$MSGS" &
NOTIFY_PID=$!
poll 5 test -S "$T_DIR/notify" || not_ok "the notify listener starts"

mono_us() { /usr/bin/python3 -c 'import time; print(time.monotonic_ns() // 1000)'; }
has_line() { grep -qE "$1" "$MSGS"; }

echo "=== $(date '+%F %T') $BIN --config $CONF (NOTIFY_SOCKET)" >>"$T_DIR/pgcrab.log"
env -u LISTEN_FDS -u LISTEN_PID NOTIFY_SOCKET="$T_DIR/notify" "${RUN_AS[@]}" \
	"$BIN" --config "$CONF" >>"$T_DIR/pgcrab.log" 2>&1 &
PGCRAB_PID=$!
PGCRAB_PORT=$PORT
if ! wait_port "$PORT" "$PGCRAB_PID"; then
	not_ok "the installed pgcrab starts with the installed config"
	exit 1
fi
check "READY=1 once listening" poll 5 has_line '^READY=1$'
[[ ${#RUN_AS[@]} -gt 0 ]] &&
	expect_eq "it runs as the pgcrab user" pgcrab "$(ps -o user= -p "$PGCRAB_PID" | tr -d ' ')"

unix_conn="host=/run/pgcrab port=$PORT user=pgcrab password=pgcrab dbname=$PG_DB connect_timeout=5"
expect_eq "a query over TCP" 1 "$(pc_psql -c 'SELECT 1')"
expect_eq "a query over the Unix socket $SOCK" "unix" \
	"$(timeout 30 psql -X -At -d "$unix_conn" -c "SELECT CASE WHEN 1 = 1 THEN 'unix' END")"
check "the Unix socket is 0777 (who connects is decided by logging in)" \
	test "$(stat -c %a "$SOCK")" = 777

# STATUS= follows what happens: a client held open, then a load of
# transactions
timeout 30 psql -X -At -d "$unix_conn" -c 'SELECT pg_sleep(4)' >/dev/null 2>&1 &
held=$!
check "STATUS= counts a client that is connected" poll 6 has_line '^STATUS=1 clients, [0-9]+ server connections'
echo 'SELECT 1;' >"$T_DIR/select1.sql"
pc_pgbench 30 -n -T 4 -c 2 -f "$T_DIR/select1.sql" >"$T_DIR/pgbench.out" 2>&1 &
load=$!
check "STATUS= shows transactions per second under load" \
	poll 8 has_line '^STATUS=[0-9]+ clients, [0-9]+ server connections, [1-9][0-9]* transactions/s$'
wait "$held" "$load"
check "STATUS= goes back to no clients" poll 6 bash -c "tail -1 '$MSGS' | grep -q '^STATUS=0 clients'"

# SIGHUP: RELOADING=1 stamped with the monotonic clock at the reload, then
# READY=1 right after it
before=$(mono_us)
kill -HUP "$PGCRAB_PID"
check "RELOADING=1 on SIGHUP" poll 5 has_line '^RELOADING=1\|MONOTONIC_USEC='
after=$(mono_us)
line=$(grep -m1 '^RELOADING=1' "$MSGS")
stamp=${line##*MONOTONIC_USEC=}
if [[ "$stamp" =~ ^[0-9]+$ ]] && ((before <= stamp && stamp <= after)); then
	ok "MONOTONIC_USEC is the time of the reload"
else
	not_ok "MONOTONIC_USEC [$stamp] is not between $before and $after"
fi
expect_eq "READY=1 follows RELOADING=1" "READY=1" "$(grep -A1 '^RELOADING=1' "$MSGS" | sed -n 2p)"
expect_eq "still serving after SIGHUP" 1 "$(pc_psql -c 'SELECT 1')"

pgcrab_stop
check "STOPPING=1 on SIGTERM" has_line '^STOPPING=1$'
check "the listening sockets went to the fd store (FDSTORE=1 with two descriptors)" \
	has_line '^FDSTORE=1\|FDNAME=pgcrab-listen\|FDS=2$'
# systemd keeps them for a restart, the file with them
# (RuntimeDirectoryPreserve=restart); a stop removes the directory
check "the Unix socket file stays at exit, for a restart" test -S "$SOCK"
kill "$NOTIFY_PID" 2>/dev/null
NOTIFY_PID=

# ---- socket activation -------------------------------------------------------
# systemd-socket-activate binds, waits for the first client, then execs
# PgCrab with LISTEN_FDS: that first client is served from the queue.
APORT=$(free_port)
ADIR=$T_DIR/activation
mkdir -p "$ADIR"
echo "=== $(date '+%F %T') systemd-socket-activate $BIN" >>"$T_DIR/pgcrab.log"
systemd-socket-activate -l "127.0.0.1:$APORT" -l "$ADIR/.s.PGSQL.$APORT" \
	"$BIN" --config "$CONF" >>"$T_DIR/pgcrab.log" 2>&1 &
PGCRAB_PID=$!
PGCRAB_PORT=$APORT
poll 5 test -S "$ADIR/.s.PGSQL.$APORT" || not_ok "systemd-socket-activate listens"
expect_eq "the first client starts PgCrab and is served" 1 "$(pc_psql -c 'SELECT 1')"
expect_eq "a query over the activated Unix socket" 1 \
	"$(timeout 30 psql -X -At -d "host=$ADIR port=$APORT user=pgcrab password=pgcrab dbname=$PG_DB connect_timeout=5" -c 'SELECT 1')"
check "PgCrab says its sockets came from systemd" grep -q "listening on .* (from systemd)" "$T_DIR/pgcrab.log"
check "and opens none of its own (the config's port $PORT is free)" \
	bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null"
pgcrab_stop
