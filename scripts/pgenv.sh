# Shared by `make run` and the integration tests (sourced, not run): a
# throwaway PostgreSQL 15 cluster and a PgCrab in front of it.
# initdb and postgres refuse to run as root; as root they run as the
# `postgres` OS user, with their directory owned by it.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# psql and pgbench of PostgreSQL 15 whatever else the PATH holds (a fresh
# machine has no /usr/local/bin symlinks, and /usr/bin/psql is a wrapper)
case ":$PATH:" in *":$PG_BIN:"*) ;; *) PATH="$PG_BIN:$PATH" ;; esac
export PATH
PG_HOST=127.0.0.1
PG_USER=mr_krabs
PG_PASSWORD=i_love_money
PG_DB=pgcrab_shard_1
# libpq settings from the caller's environment must not steer the tests
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGPASSFILE PGSERVICE \
	PGSERVICEFILE PGOPTIONS PGSSLMODE PGREQUIRESSL PGGSSENCMODE PGTARGETSESSIONATTRS \
	PGAPPNAME PGCLIENTENCODING PGTZ PGDATESTYLE PGCONNECT_TIMEOUT 2>/dev/null || true

# as_pg CMD...: run CMD as the owner of the cluster (postgres when root).
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# A TCP port on 127.0.0.1 nobody listens on now, outside the kernel's
# ephemeral range (so the client side of some other connection cannot take
# it between this check and the bind).
free_port() {
	python3 - <<'PY'
import random, socket
for _ in range(200):
    port = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
PY
}

# pg_start DIR: initdb into DIR/data, start on a free port, create the pool
# user (a SCRAM password: PostgreSQL 15's default) and database. Sets PG_DIR
# (which may differ from DIR: see below) and PG_PORT.
pg_start() {
	PG_DIR=$1
	mkdir -p "$PG_DIR"
	[[ $(id -u) -eq 0 ]] && chown postgres: "$PG_DIR"
	# the postgres user must reach DIR (a clone under /root is out of reach),
	# and DIR doubles as the unix socket directory, whose path is limited
	if ! as_pg test -w "$PG_DIR" || [[ ${#PG_DIR} -gt 80 ]]; then
		rmdir "$PG_DIR" 2>/dev/null || true
		PG_DIR=$(mktemp -d "/tmp/pgcrab-pg.XXXXXX")
		chmod 755 "$PG_DIR"
		[[ $(id -u) -eq 0 ]] && chown postgres: "$PG_DIR"
	fi
	as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -E UTF8 --locale=C -N \
		--auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 \
		|| { cat "$PG_DIR/initdb.log"; return 1; }
	cp "$PG_DIR/data/postgresql.conf" "$PG_DIR/postgresql.conf.orig"
	cat >"$PG_DIR/data/pg_hba.conf" <<HBA
local all all trust
host all all 127.0.0.1/32 scram-sha-256
HBA
	local try
	for try in 1 2 3; do
		PG_PORT=$(free_port)
		{
			cat "$PG_DIR/postgresql.conf.orig"
			cat <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 300
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
max_prepared_transactions = 20
CONF
		} >"$PG_DIR/data/postgresql.conf"
		# another process may have taken the port meanwhile: try another
		as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 60 start \
			>/dev/null 2>&1 && break
		[[ $try -eq 3 ]] && { tail -20 "$PG_DIR/postgres.log"; return 1; }
	done
	PG_ADMIN_DB=postgres pg_admin -c "CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD'" \
		-c "CREATE DATABASE $PG_DB OWNER $PG_USER" >/dev/null
}

# pg_stop [MODE]: stop the cluster (immediate by default: it is thrown away).
pg_stop() {
	[[ -n "${PG_DIR:-}" && -d "$PG_DIR/data" ]] || return 0
	as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m "${1:-immediate}" -w -t 60 stop >/dev/null 2>&1 || true
}

# psql as the postgres superuser over the unix socket (trust): for test
# bookkeeping, never through PgCrab. Database: PG_ADMIN_DB, else postgres.
pg_admin() {
	timeout 60 "$PG_BIN/psql" -X -q -At -h "$PG_DIR" -p "$PG_PORT" -U postgres \
		-d "${PG_ADMIN_DB:-postgres}" "$@"
}
pg_admin_psql() { pg_admin "$@"; }

# pgcrab_config FILE PORT [shard lines] [pgcrab lines]: a PgCrab config with
# one shard (this cluster) and the client user pgcrab/pgcrab. The shard
# lines replace the default pool size; SHARD_USER and SHARD_PASSWORD
# replace the backend login (SHARD_USER=- leaves both out: each client
# logs in as its own role); PGCRAB_EXTRA_SECTIONS (more [shard.*]
# sections, say) goes in before [user.pgcrab].
pgcrab_config() {
	local login="user = ${SHARD_USER:-$PG_USER}
password = ${SHARD_PASSWORD:-$PG_PASSWORD}"
	[[ "${SHARD_USER:-}" == - ]] && login=
	cat >"$1" <<INI
[pgcrab]
host = 127.0.0.1
port = $2
${4:-}

[shard.$PG_DB]
host = $PG_HOST
port = $PG_PORT
$login
${3:-min_connections = 2
max_connections = 20}

${PGCRAB_EXTRA_SECTIONS:-}

[user.pgcrab]
password = ${PGCRAB_USER_PASSWORD:-pgcrab}
INI
}

# wait_port PORT [PID]: until something accepts on 127.0.0.1:PORT (at most
# ~10 s); gives up early when process PID has exited.
wait_port() {
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		[[ -n "${2:-}" ]] && ! kill -0 "$2" 2>/dev/null && return 1
		sleep 0.1
	done
	return 1
}
