# Shared by `make run` and the integration tests (sourced, not run): a
# throwaway PostgreSQL 15 cluster and a PgCrab in front of it.
# initdb and postgres refuse to run as root; as root they run as the
# `postgres` OS user, with their directory owned by it.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_HOST=127.0.0.1
PG_USER=mr_krabs
PG_PASSWORD=i_love_money
PG_DB=pgcrab_shard_1

as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# A TCP port nobody listens on now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# pg_start DIR: initdb into DIR/data, start on a free port, create the pool
# user (SCRAM password) and database. Sets PG_DIR, PG_PORT.
pg_start() {
	PG_DIR=$1
	mkdir -p "$PG_DIR"
	[[ $(id -u) -eq 0 ]] && chown postgres: "$PG_DIR"
	PG_PORT=$(free_port)
	as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth-local=trust \
		--auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log"; return 1; }
	cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
CONF
	cat >"$PG_DIR/data/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 scram-sha-256
HBA
	as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start >/dev/null \
		|| { cat "$PG_DIR/postgres.log"; return 1; }
	pg_admin -c "CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD'" \
		-c "CREATE DATABASE $PG_DB OWNER $PG_USER" >/dev/null
}

pg_stop() {
	[[ -n "${PG_DIR:-}" && -d "$PG_DIR/data" ]] || return 0
	as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
}

# psql as the postgres superuser over the unix socket: for bookkeeping.
pg_admin() {
	psql -X -q -At -h "$PG_DIR" -p "$PG_PORT" -U postgres -d "${PG_ADMIN_DB:-postgres}" "$@"
}

# pgcrab_config FILE PORT [extra shard lines] [extra pgcrab lines]
pgcrab_config() {
	cat >"$1" <<INI
[pgcrab]
host = 127.0.0.1
port = $2
${4:-}

[shard.$PG_DB]
host = $PG_HOST
port = $PG_PORT
user = ${SHARD_USER:-$PG_USER}
password = ${SHARD_PASSWORD:-$PG_PASSWORD}
${3:-min_connections = 2
max_connections = 20}

[user.pgcrab]
password = pgcrab
INI
}

# Waits until something accepts on 127.0.0.1:PORT (at most ~10 s).
wait_port() {
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
