# Each client its own role: a [shard.*] without user/password logs every
# client in to PostgreSQL as itself (cleartext, md5 and SCRAM servers), in
# transaction and session mode, and a server of one role never serves
# another role's client, under concurrent load of several roles at once.
# max_user_connections makes clients of a role wait; the shard's cap holds
# in total across roles.
source "$(dirname "$0")/lib.sh"

ROLES="rl_scram rl_md5 rl_clear"
pg_admin -c "SET client_min_messages = warning" -c "SET password_encryption = 'md5'" \
	-c "DROP ROLE IF EXISTS rl_md5" -c "CREATE ROLE rl_md5 LOGIN PASSWORD 'md5pass'" \
	-c "RESET password_encryption" \
	-c "DROP ROLE IF EXISTS rl_scram" -c "CREATE ROLE rl_scram LOGIN PASSWORD 'scrampass'" \
	-c "DROP ROLE IF EXISTS rl_clear" -c "CREATE ROLE rl_clear LOGIN PASSWORD 'clearpass'" \
	-c "GRANT ALL ON DATABASE $PG_DB TO rl_md5, rl_scram, rl_clear" >/dev/null
hba="$PG_DIR/data/pg_hba.conf"
cp "$hba" "$T_DIR/hba.orig"
{ echo "host all rl_md5 127.0.0.1/32 md5"; echo "host all rl_clear 127.0.0.1/32 password"; cat "$T_DIR/hba.orig"; } >"$T_DIR/hba.new"
chmod 644 "$T_DIR/hba.orig" "$T_DIR/hba.new"
as_pg cp "$T_DIR/hba.new" "$hba"
pg_admin -c "SELECT pg_reload_conf()" >/dev/null
restore_hba() { as_pg cp "$T_DIR/hba.orig" "$hba"; pg_admin -c "SELECT pg_reload_conf()" >/dev/null; }
pass_of() { case $1 in rl_scram) echo scrampass ;; rl_md5) echo md5pass ;; rl_clear) echo clearpass ;; esac; }

# a shard without user: each client logs in as its own role
export SHARD_USER=- PGCRAB_EXTRA_SECTIONS="[user.rl_scram]
password = scrampass
[user.rl_md5]
password = md5pass
[user.rl_clear]
password = clearpass"

conn_as() { echo "host=127.0.0.1 port=$PGCRAB_PORT user=$1 password=$(pass_of "$1") dbname=$PG_DB connect_timeout=5"; }
psql_as() { local r=$1; shift; timeout 60 psql -X -q -At -v ON_ERROR_STOP=1 -d "$(conn_as "$r")" "$@"; }

# pgbench_roles CLIENTS pgbench-args: every role at once, each with a
# script that fails (division by zero) unless current_user is that role,
# in a transaction and out of one; prints "role processed failed errors"
# lines. With -t N every client must finish its N transactions.
pgbench_roles() {
	local clients=$1 r pids=()
	shift
	for r in $ROLES; do
		cat >"$T_DIR/$r.sql" <<SQL
SELECT 1 / (current_user = '$r')::int;
BEGIN;
SELECT 1 / (current_user = '$r' AND session_user = '$r')::int;
COMMIT;
SQL
		PGPASSWORD=$(pass_of "$r") PGCONNECT_TIMEOUT=5 timeout 120 \
			pgbench -n -h 127.0.0.1 -p "$PGCRAB_PORT" -U "$r" -c "$clients" -j 1 \
			-f "$T_DIR/$r.sql" "$@" "$PG_DB" >"$T_DIR/$r.out" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	for r in $ROLES; do
		pgbench_numbers "$(cat "$T_DIR/$r.out")"
		echo "$r ${BENCH_PROCESSED:-0} ${BENCH_FAILED:-0} $(grep -c 'ERROR\|FATAL\|aborted' "$T_DIR/$r.out")"
	done
}

# check_roles LABEL OUTPUT-OF-pgbench_roles
check_roles() {
	local role processed failed errors
	while read -r role processed failed errors; do
		if [[ "$processed" -gt 0 && "$failed" == 0 && "$errors" == 0 ]]; then
			ok "$1: $role ran $processed transactions, each as itself"
		else
			not_ok "$1: $role processed=$processed failed=$failed errors=$errors"
			head -5 "$T_DIR/$role.out" | sed 's/^/# /'
		fi
	done <<<"$2"
}

# max backends a role held while sampling runs in the background
sample_backends() { # sample_backends FILE: until killed
	while :; do
		pg_admin -c "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM pg_stat_activity
			WHERE datname = '$PG_DB' AND usename LIKE 'rl\\_%' GROUP BY usename) x
			UNION ALL SELECT count(*) FROM pg_stat_activity WHERE datname = '$PG_DB' AND usename LIKE 'rl\\_%'" \
			| tr '\n' ' ' >>"$1"
		echo >>"$1"
		sleep 0.2
	done
}
# sampled FILE CLIENTS: pgbench_roles, 100 transactions per client, while
# the backends are sampled
sampled() {
	: >"$1"
	sample_backends "$1" &
	local sampler=$!
	pgbench_roles "$2" -t 100
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null
}
max_col() { awk -v c="$2" 'NF >= c && $c > m {m = $c} END {print m + 0}' "$1"; }

for mode in transaction session; do
	# min_connections applies to a shard's own user only: here it opens nothing
	pgcrab_start "max_connections = 6
min_connections = 2" "pool_mode = $mode
max_user_connections = 0" || exit 1
	for r in $ROLES; do
		expect_eq "$mode mode: $r sees current_user = itself" "$r|$r" \
			"$(psql_as "$r" -c "SELECT current_user, session_user" | tr -d '\n' 2>&1)"
	done
	# each role again after the others used the pool: no hand-over
	for r in $ROLES $ROLES; do
		expect_eq "$mode mode: $r is still itself after other roles used the pool" "$r" \
			"$(psql_as "$r" -c "BEGIN" -c "SELECT current_user" -c "COMMIT" 2>&1)"
	done
	out=$(pgbench_roles 3 -T 4)
	check_roles "$mode mode, 3 roles x 3 clients" "$out"
	if [[ $PC_DIRECT == 0 ]]; then
		n=$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$PG_DB' AND usename LIKE 'rl\\_%'")
		check "$mode mode: the shard's cap (6) holds across roles (servers now: $n)" test "$n" -le 6
	fi
	pgcrab_stop
done

# the shard's cap in total across roles: 3 roles, room for 2 servers; idle
# servers of one role make room for another's waiting clients
if [[ $PC_DIRECT == 0 ]]; then
	pgcrab_start "max_connections = 2" "query_wait_timeout = 20s" || exit 1
	out=$(sampled "$T_DIR/cap.samples" 2)
	check_roles "max_connections = 2 shared by 3 roles" "$out"
	total=$(max_col "$T_DIR/cap.samples" 2)
	check "at most 2 servers in total across roles (max seen: $total)" test "$total" -le 2
	pgcrab_stop

	# max_user_connections = 1: a role's clients wait for its one server
	# (2 workers: a worker whose clients wait gets the role's one server
	# from the other); then server_idle_timeout closes the roles' servers
	pgcrab_start "max_connections = 10" "max_user_connections = 1
query_wait_timeout = 20s
server_idle_timeout = 1s" || exit 1
	out=$(sampled "$T_DIR/user.samples" 4)
	check_roles "max_user_connections = 1, 4 clients per role" "$out"
	per_role=$(max_col "$T_DIR/user.samples" 1)
	check "at most 1 server per role (max seen: $per_role)" test "$per_role" -le 1
	roles_idle_closed() { [[ "$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$PG_DB' AND usename LIKE 'rl\\_%'")" == 0 ]]; }
	check "server_idle_timeout closes the roles' idle servers" poll 30 roles_idle_closed
	pgcrab_stop
else
	skip "the shard's cap across roles" "direct mode: no pooler"
	skip "max_user_connections" "direct mode: no pooler"
fi

# SCRAM with keys only, as PgCrab logs in for a client whose SCRAM proof
# gave it ClientKey: against PostgreSQL itself, with rl_scram's verifier
KEYS_LOGIN=${UNIT_DIR:-$REPO_DIR/build/tests}/scram_keys_login
[[ -x "$KEYS_LOGIN" ]] || KEYS_LOGIN=$REPO_DIR/build/tests/scram_keys_login
verifier=$(pg_admin -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'rl_scram'")
other=$(pg_admin -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$PG_USER'")
expect_eq "SCRAM login to PostgreSQL with ClientKey and ServerKey only" "rl_scram" \
	"$("$KEYS_LOGIN" 127.0.0.1 "$PG_PORT" rl_scram "$PG_DB" "$verifier" scrampass 2>&1)"
expect_match "keys from a wrong password are refused by PostgreSQL" "password authentication failed" \
	"$("$KEYS_LOGIN" 127.0.0.1 "$PG_PORT" rl_scram "$PG_DB" "$verifier" wrong 2>&1)"
expect_match "keys made with another salt fail with a clear reason" "salt or iteration count is not the one" \
	"$("$KEYS_LOGIN" 127.0.0.1 "$PG_PORT" rl_scram "$PG_DB" "$other" "$PG_PASSWORD" 2>&1)"

# refusals: a wrong password, a role not in the config. psql shows no
# SQLSTATE for a failed connection: PostgreSQL's 28P01 message is checked.
refused() { timeout 20 psql -X -At -d "host=127.0.0.1 port=$PGCRAB_PORT user=$1 password=$2 dbname=$PG_DB connect_timeout=5" -c "SELECT 1" 2>&1; }
pgcrab_start "max_connections = 4" || exit 1
out=$(refused rl_scram wrong)
expect_match "a wrong password is refused as PostgreSQL does (28P01)" "password authentication failed for user \"rl_scram\"" "$out"
pg_admin -c "SET client_min_messages = warning" -c "DROP ROLE IF EXISTS rl_nobody" -c "CREATE ROLE rl_nobody LOGIN PASSWORD 'nobodypass'" >/dev/null
out=$(refused rl_nobody nobodypass)
if [[ $PC_DIRECT == 0 ]]; then
	expect_match "a role PostgreSQL knows but the config does not is refused like a wrong password (no auth_query)" "password authentication failed for user \"rl_nobody\"" "$out"
else
	skip "a role only in PostgreSQL" "direct mode: PostgreSQL knows it"
fi
pgcrab_stop
restore_hba
pg_admin -c "REVOKE ALL ON DATABASE $PG_DB FROM rl_md5, rl_scram, rl_clear" \
	-c "DROP ROLE rl_nobody, rl_md5, rl_scram, rl_clear" >/dev/null
exit 0
