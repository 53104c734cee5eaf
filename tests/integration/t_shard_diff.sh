# The sharding router against an oracle (issue 13): the same schema and
# rows loaded once through a 3-shard PgCrab database and once into one
# plain database, then a few hundred generated statements run both ways
# and their answers compared (drivers/shard_diff.py says how).
#
#   SHARD_DIFF_SEED=N      the seed (printed; default 1313)
#   SHARD_DIFF_SCALE=F     rows and statements times F (default 1)
#   SHARD_DIFF_CLUSTERS=1  3 clusters of their own (default: 3 databases on
#                          the test cluster)
#   SHARD_DIFF_TARGET=direct (or PGCRAB_TEST_DIRECT=1): the target is a
#                          plain database too, no PgCrab: proves the test
#   SHARD_DIFF_FAULT=drop_row|swap|float|decimal: spoils the target's
#                          answers on purpose: the test must fail
source "$(dirname "$0")/lib.sh"
source "$REPO_DIR/scripts/pgshards.sh"
drivers=$(dirname "$0")/drivers
seed=${SHARD_DIFF_SEED:-1313}
scale=${SHARD_DIFF_SCALE:-1}
label=${SHARD_DIFF_LABEL:-shard_diff}
target=${SHARD_DIFF_TARGET:-pgcrab}
[[ $PC_DIRECT == 1 ]] && target=direct
trap 'rc=$?; pgshards_stop; (exit $rc); t_cleanup' EXIT

# a plain database on the test cluster: the oracle (and, direct, the target)
plain_db() {
	PGOPTIONS="-c client_min_messages=warning" pg_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1 OWNER $PG_USER" >/dev/null &&
		PGSHARDS_OWN_DBS+=("$PG_DIR $PG_PORT $1")
}
plain_dsn() { echo "host=127.0.0.1 port=$PG_PORT user=$PG_USER password=$PG_PASSWORD dbname=$1 connect_timeout=5"; }
plain_db "${label}_oracle" || { not_ok "$label: the oracle database is created"; exit 1; }

args=(--oracle "$(plain_dsn "${label}_oracle")" --seed "$seed" --scale "$scale" --label "$label")
if [[ $target == direct ]]; then
	plain_db "${label}_mirror" || { not_ok "$label: the mirror database is created"; exit 1; }
	args+=(--direct --target "$(plain_dsn "${label}_mirror")")
else
	if [[ ${SHARD_DIFF_CLUSTERS:-0} == 1 ]]; then
		pgshards_clusters "$T_DIR" "${label}_s" 3 || { not_ok "$label: 3 shard clusters start"; exit 1; }
		echo "# 3 shards on 3 clusters of their own (ports ${SHARD_PORTS[*]})"
	else
		pgshards_databases_2pc "$T_DIR" "${label}_s" 3 || { not_ok "$label: 3 shard databases are created"; exit 1; }
	fi
	PGCRAB_EXTRA_SECTIONS="$(
		pgshards_sections app
		pgshards_table accounts app id int8
		pgshards_table items app "tenant_id, id" "int8, text"
	)" pgcrab_start || exit 1
	args+=(--target "host=127.0.0.1 port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=app connect_timeout=5")
	for i in "${!SHARD_PORTS[@]}"; do args+=(--shard "$(pgshards_dsn "$i")"); done
fi

timeout 280 /usr/bin/python3 "$drivers/shard_diff.py" "${args[@]}" ${SHARD_DIFF_FAULT:+--fault "$SHARD_DIFF_FAULT"} 2>&1 | tee "$T_DIR/diff.out"
rc=${PIPESTATUS[0]}
if [[ $rc -ne 0 ]]; then
	# the driver's own "not ok" lines are counted by the runner; a crash
	# or a timeout printed none
	if grep -q '^not ok - ' "$T_DIR/diff.out"; then
		T_FAILED=$((T_FAILED + 1))
	else
		not_ok "$label: shard_diff.py exited with status $rc (seed $seed)"
	fi
fi
