# psycopg 3, asyncpg, node-postgres and pgjdbc with TLS (sslmode=require or
# its driver's equivalent), each against PostgreSQL with ssl = on first,
# then through PgCrab with client_tls_mode = require (a plaintext login
# would be refused) and server_tls_mode = verify-full. Each checks its own
# socket is TLS and that the server's side is (pg_stat_ssl).
unset PG_PORT PG_DIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tls_lib.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)
jar=/usr/share/java/postgresql.jar

tls_setup
tls_pg_cert "$C" server || not_ok "PostgreSQL serves TLS"
node_ok=0
(cd "$drivers/node" && timeout 120 npm install --no-audit --no-fund --silent >/dev/null 2>&1) && node_ok=1

# saw NAME PATTERN OUTPUT: ok if OUTPUT has a line starting with PATTERN,
# else not ok with the output's last line
saw() {
	if grep -q "^$2" <<<"$3"; then ok "$1"; else not_ok "$1: $(grep -v '^$' <<<"$3" | tail -1)"; fi
}

run_all() { # WHERE PORT USER PASSWORD
	local out
	out=$(timeout 60 $PY "$drivers/tls_drivers.py" 127.0.0.1 "$2" "$3" "$4" "$PG_DB" 2>&1)
	for d in psycopg asyncpg; do
		saw "$1: $d over TLS" "ok - $d" "$(grep "$d" <<<"$out")"
	done
	if [[ $node_ok == 1 ]]; then
		out=$(timeout 60 node "$drivers/node/tls.js" 127.0.0.1 "$2" "$3" "$4" "$PG_DB" 2>&1)
		saw "$1: node-postgres over TLS" "ok - node-postgres" "$out"
	else
		not_ok "$1: npm install of node-postgres"
	fi
	if command -v java >/dev/null && [[ -r $jar ]]; then
		out=$(timeout 120 java -cp "$jar" "$drivers/JdbcTls.java" "jdbc:postgresql://127.0.0.1:$2/$PG_DB" "$3" "$4" 2>&1)
		saw "$1: pgjdbc over TLS" "ok - jdbc" "$out"
	else
		not_ok "$1: java or $jar missing (scripts/deps.sh installs them)"
	fi
}

# SCRAM-SHA-256-PLUS where the driver has channel binding: libpq
# (channel_binding=require) and node-postgres (enableChannelBinding);
# asyncpg 0.27 and pgjdbc 42.5 have none, and must still log in with
# SCRAM-SHA-256 when PLUS is offered (run_all does that through PgCrab
# with auth_type = scram-sha-256 below).
run_plus() { # WHERE PORT USER PASSWORD
	local out
	out=$(timeout 60 $PY "$drivers/tls_drivers.py" 127.0.0.1 "$2" "$3" "$4" "$PG_DB" plus 2>&1)
	saw "$1: psycopg with SCRAM-SHA-256-PLUS" "ok - psycopg over TLS with SCRAM-SHA-256-PLUS" "$(grep psycopg <<<"$out")"
	if [[ $node_ok == 1 ]]; then
		out=$(timeout 60 node "$drivers/node/tls.js" 127.0.0.1 "$2" "$3" "$4" "$PG_DB" plus 2>&1)
		saw "$1: node-postgres with SCRAM-SHA-256-PLUS" "ok - node-postgres over TLS with SCRAM-SHA-256-PLUS" "$out"
	fi
	skip "$1: asyncpg and pgjdbc with SCRAM-SHA-256-PLUS" "asyncpg 0.27 and pgjdbc 42.5 (Debian 12) have no channel binding"
}

run_all "PostgreSQL directly" "$PG_PORT" "$PG_USER" "$PG_PASSWORD"
run_plus "PostgreSQL directly" "$PG_PORT" "$PG_USER" "$PG_PASSWORD"
pgcrab_start "min_connections = 0
max_connections = 5" "$(tls_pgcrab_both)" || exit 1
run_all "through PgCrab" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD"
pgcrab_stop
pgcrab_start "min_connections = 0
max_connections = 5" "$(tls_pgcrab_both)
auth_type = scram-sha-256" || exit 1
run_all "through PgCrab, SCRAM (PLUS offered)" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD"
run_plus "through PgCrab" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD"
pgcrab_stop
