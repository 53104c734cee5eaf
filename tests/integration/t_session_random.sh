# Randomized differential test of session settings in transaction mode:
# three clients through PgCrab share ONE server connection, three twins
# each talk to PostgreSQL directly, and a seeded random sequence of SET /
# SET LOCAL / RESET / RESET ALL / SET TO DEFAULT / set_config / BEGIN /
# COMMIT / ROLLBACK / SAVEPOINT / ROLLBACK TO / multi-statement strings and
# errors must give the same replies and settings through PgCrab as
# directly (drivers/session_random.py). Two runs: clients with startup
# parameters (options -c, search_path, DateStyle, statement_timeout), then
# with application_name only, each with its own seed.
# SESSION_RANDOM_SEED=N repeats a run; SESSION_RANDOM_ROUNDS (default 300).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)
seed=${SESSION_RANDOM_SEED:-$(( (RANDOM << 15) | RANDOM ))}
rounds=${SESSION_RANDOM_ROUNDS:-300}

pgcrab_start "min_connections = 1
max_connections = 1" || exit 1
for run in "$seed full" "$((seed + 1)) plain"; do
	set -- $run
	s=$1
	out=$(cd "$drivers" && timeout 25 $PY session_random.py "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" \
		"$PG_PORT" "$PG_USER" "$PG_PASSWORD" "$s" "$rounds" "$2" 2>&1)
	echo "$out"
	grep -q '^# done' <<<"$out" || not_ok "seed $s: the run finished: $(tail -2 <<<"$out" | tr '\n' ' ')"
done
exit 0
