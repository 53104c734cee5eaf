# Randomised departures (issue 10): rounds of 4 to 8 concurrent clients on a
# pool of 3, each sending a random valid sequence and leaving at a random
# point in a random way; after every round nothing is idle in transaction or
# still active, PgCrab's server connections match pg_stat_activity's, and a
# new client is served within 2 s (drivers/depart_random.py). Half the
# rounds in transaction pooling, half in session pooling.
#   DEPART_ROUNDS (default 1000; make soak: 20000)   DEPART_SEED (default:
#   random; printed first). A mode may take up to 300 s + 0.5 s a round.
# A failure prints the seed, the round and every client's messages:
# rerun with DEPART_SEED=N.
seed=${DEPART_SEED:-$(((RANDOM << 15) | RANDOM))}
echo "# seed $seed"
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drv=$(cd "$(dirname "$0")/drivers" && pwd)/depart_random.py
rounds=${DEPART_ROUNDS:-1000}
half=$(((rounds + 1) / 2))

for mode in transaction session; do
	n=$half
	[[ $mode == session ]] && n=$((rounds - half))
	[[ $n -gt 0 ]] || continue
	pgcrab_start --workers 2 "min_connections = 1
max_connections = 3" "pool_mode = $mode" || exit 1
	DEP_PORT=$PGCRAB_PORT DEP_PID=$PGCRAB_PID DEP_DIRECT=$PC_DIRECT DEP_MODE=$mode \
		PC_USER=$PC_USER PC_PASSWORD=$PC_PASSWORD PG_DB=$PG_DB PG_USER=$PG_USER \
		PG_PORT=$PG_PORT PG_DIR=$PG_DIR \
		timeout $((300 + n / 2)) $PY "$drv" --seed "$seed" --rounds "$n" --label "$mode" 2>&1
	rc=$?
	[[ $rc -eq 0 ]] || not_ok "$mode: depart_random.py exited with status $rc (seed $seed)"
	pgcrab_stop
done
exit 0
