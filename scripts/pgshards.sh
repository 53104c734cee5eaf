# Sourced after scripts/pgenv.sh (by `make run SHARDS=N` and the sharding
# tests): the PostgreSQL behind a sharded PgCrab database, and the config
# sections that describe it.
#
# The shards are kept in arrays, index = shard number:
#   SHARD_PORTS[i]  SHARD_DIRS[i] (its cluster's directory, the unix socket)
#   SHARD_DBS[i]    the backend database
# Either N databases on one cluster (pgshards_databases: fast) or N
# clusters of their own (pgshards_clusters: as in production). PgCrab
# commits cross-shard writes with two-phase commit, so every cluster needs
# max_prepared_transactions > 0 (pgshards_enable_2pc).
#
# Clusters started here are stopped by pgshards_stop. If the caller is
# killed before it can clean up (SIGKILL after a runner's timeout), a
# watchdog outside its process group stops them: nothing is left running.

SHARD_PORTS=()
SHARD_DIRS=()
SHARD_DBS=()
PGSHARDS_OWN_DIRS=() # clusters started here, to stop and remove
PGSHARDS_OWN_DBS=()  # "DIR PORT NAME" of databases made on a cluster not ours
PGSHARDS_WATCHDOG=

# pgshards_enable_2pc DIR PORT: max_prepared_transactions = 20 on that
# cluster, restarting it if it had 0 (a setting read only at start).
pgshards_enable_2pc() {
	local n
	n=$(PG_DIR=$1 PG_PORT=$2 pg_admin -c "SHOW max_prepared_transactions") || return 1
	[[ "$n" -gt 0 ]] && return 0
	PG_DIR=$1 PG_PORT=$2 pg_admin -c "ALTER SYSTEM SET max_prepared_transactions = 20" >/dev/null || return 1
	as_pg "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/postgres.log" -m fast -w -t 60 restart >/dev/null 2>&1
}

# pgshards_2pc_ready: whether the current cluster (PG_DIR, PG_PORT) can
# prepare transactions, without touching it.
pgshards_2pc_ready() {
	[[ "$(pg_admin -c "SHOW max_prepared_transactions")" -gt 0 ]] 2>/dev/null
}

# pgshards_databases PREFIX N: databases PREFIX_0 .. PREFIX_{N-1} on the
# current cluster (PG_DIR, PG_PORT), created afresh, owned by the pool user.
pgshards_databases() {
	local prefix=$1 n=$2 i
	for ((i = 0; i < n; i++)); do
		PGOPTIONS="-c client_min_messages=warning" pg_admin -c "DROP DATABASE IF EXISTS ${prefix}_$i WITH (FORCE)" \
			-c "CREATE DATABASE ${prefix}_$i OWNER $PG_USER" >/dev/null || return 1
		SHARD_PORTS[i]=$PG_PORT
		SHARD_DIRS[i]=$PG_DIR
		SHARD_DBS[i]=${prefix}_$i
		PGSHARDS_OWN_DBS+=("$PG_DIR $PG_PORT ${prefix}_$i")
	done
}

# pgshards_databases_2pc BASE PREFIX N: the fast path of a test, N
# databases on one cluster that can prepare transactions: the current one
# (PG_DIR, PG_PORT) if it can, else a cluster of our own under BASE.
# Says which on stdout, as a TAP comment.
pgshards_databases_2pc() {
	local base=$1 prefix=$2 n=$3 saved_dir=$PG_DIR saved_port=$PG_PORT rc=0
	if pgshards_2pc_ready; then
		pgshards_databases "$prefix" "$n" || return 1
		echo "# $n shards: $n databases on the test cluster (port $PG_PORT)"
		return 0
	fi
	pgshards_clusters "$base" "${prefix}_c" 1 || return 1
	PG_DIR=${SHARD_DIRS[0]} PG_PORT=${SHARD_PORTS[0]}
	pgshards_databases "$prefix" "$n" || rc=1
	PG_DIR=$saved_dir PG_PORT=$saved_port
	echo "# $n shards: $n databases on a cluster of our own (port ${SHARD_PORTS[0]}): the test cluster has max_prepared_transactions = 0"
	return $rc
}

# pgshards_clusters BASE PREFIX N: N clusters of their own under BASE
# (BASE/c0 ..), each with max_prepared_transactions = 20 and one database
# PREFIX_i. PG_DIR and PG_PORT are left as they were.
pgshards_clusters() {
	local base=$1 prefix=$2 n=$3 i saved_dir=${PG_DIR:-} saved_port=${PG_PORT:-} rc=0
	for ((i = 0; i < n; i++)); do
		if ! pg_start "$base/c$i"; then
			rc=1
			break
		fi
		PGSHARDS_OWN_DIRS+=("$PG_DIR")
		pgshards_watch
		if ! pgshards_enable_2pc "$PG_DIR" "$PG_PORT" ||
			! pg_admin -c "CREATE DATABASE ${prefix}_$i OWNER $PG_USER" >/dev/null; then
			rc=1
			break
		fi
		pgshards_watch # the restart gave the postmaster a new pid
		SHARD_PORTS[i]=$PG_PORT
		SHARD_DIRS[i]=$PG_DIR
		SHARD_DBS[i]=${prefix}_$i
	done
	PG_DIR=$saved_dir PG_PORT=$saved_port
	return $rc
}

# pgshards_watch: (re)starts the watchdog over the clusters started so far.
# It runs in a session of its own, so the kill of the caller's process
# group spares it; once the caller is gone it sends each postmaster
# SIGQUIT (immediate shutdown) and removes the directories. Its output
# goes nowhere: a runner reading the caller's output must not wait for it.
pgshards_watch() {
	[[ -n "$PGSHARDS_WATCHDOG" ]] && kill "$PGSHARDS_WATCHDOG" 2>/dev/null
	local pids=() d
	for d in "${PGSHARDS_OWN_DIRS[@]}"; do
		[[ -f "$d/data/postmaster.pid" ]] && pids+=("$(head -1 "$d/data/postmaster.pid")")
	done
	setsid bash -c '
		parent=$1; shift
		while kill -0 "$parent" 2>/dev/null; do sleep 1; done
		while [[ $1 != -- ]]; do kill -QUIT "$1" 2>/dev/null; shift; done
		shift
		sleep 1
		rm -rf "$@"
	' pgshards-watchdog "$$" "${pids[@]}" -- "${PGSHARDS_OWN_DIRS[@]}" </dev/null >/dev/null 2>&1 &
	PGSHARDS_WATCHDOG=$!
}

# pgshards_stop: drops the databases made here on other clusters, stops
# and removes the clusters started here, and the watchdog.
pgshards_stop() {
	local d entry dir port
	for entry in "${PGSHARDS_OWN_DBS[@]}"; do
		read -r dir port d <<<"$entry"
		# on a cluster removed below, or one still shared with other tests
		[[ " ${PGSHARDS_OWN_DIRS[*]} " == *" $dir "* ]] && continue
		PG_DIR=$dir PG_PORT=$port pg_admin -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1
	done
	PGSHARDS_OWN_DBS=()
	for d in "${PGSHARDS_OWN_DIRS[@]}"; do
		(PG_DIR=$d pg_stop)
		rm -rf "$d"
	done
	PGSHARDS_OWN_DIRS=()
	if [[ -n "$PGSHARDS_WATCHDOG" ]]; then
		kill "$PGSHARDS_WATCHDOG" 2>/dev/null
		PGSHARDS_WATCHDOG=
	fi
	return 0
}

# pgshards_sections LOGICAL [database lines]: the [shard.LOGICAL_i]
# sections of the shards in the arrays and the [database.LOGICAL] that
# joins them in order. SHARD_POOL_LINES replaces the pool size lines.
pgshards_sections() {
	local logical=$1 i names=""
	for i in "${!SHARD_PORTS[@]}"; do
		cat <<INI
[shard.${logical}_$i]
host = $PG_HOST
port = ${SHARD_PORTS[i]}
database = ${SHARD_DBS[i]}
user = $PG_USER
password = $PG_PASSWORD
${SHARD_POOL_LINES:-min_connections = 0
max_connections = 20}

INI
		names+="${names:+, }${logical}_$i"
	done
	cat <<INI
[database.$logical]
shards = $names
${2:-}

INI
}

# pgshards_table NAME DATABASE COLUMNS TYPES: a [sharded_table.NAME]
# section, e.g. pgshards_table items app "tenant_id, id" "int8, text".
pgshards_table() {
	cat <<INI
[sharded_table.$1]
database = $2
columns = $3
types = $4

INI
}

# pgshards_dsn I: libpq conninfo of shard I, straight to PostgreSQL as the
# pool user (for checks that must not go through PgCrab).
pgshards_dsn() {
	echo "host=127.0.0.1 port=${SHARD_PORTS[$1]} user=$PG_USER password=$PG_PASSWORD dbname=${SHARD_DBS[$1]} connect_timeout=5"
}

# pgshards_psql I ARGS...: psql straight to shard I.
pgshards_psql() {
	local i=$1
	shift
	timeout 120 psql -X -q -At -v ON_ERROR_STOP=1 -d "$(pgshards_dsn "$i")" "$@"
}

# pgshards_first_keys: K0 and K1, the smallest int8 keys from 1 that a
# database of two shards routes to shard 0 and to shard 1 (tests/tools/shard_of,
# built by `make unit`); 1 when the tool is missing.
pgshards_first_keys() {
	local tool=${UNIT_DIR:-$REPO_DIR/build/tests}/shard_of i
	[[ -x "$tool" ]] || tool=$REPO_DIR/build/tests/shard_of
	local -a on
	mapfile -t on < <(seq 1 20 | "$tool" 2 int8)
	K0= K1=
	for i in "${!on[@]}"; do
		[[ ${on[i]} == 0 && -z "$K0" ]] && K0=$((i + 1))
		[[ ${on[i]} == 1 && -z "$K1" ]] && K1=$((i + 1))
	done
	[[ -n "$K0" && -n "$K1" ]]
}
