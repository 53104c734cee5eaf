# Real drivers through PgCrab in transaction mode over a pool of 5: asyncpg
# with its statement cache under load, psycopg 3 prepared statements and
# pipelines (each compared with PostgreSQL directly), node-postgres named
# statements.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)

pgcrab_start "min_connections = 2
max_connections = 5" || exit 1

out=$(timeout 60 $PY "$drivers/asyncpg_load.py" "$PGCRAB_PORT" "${DRIVER_SECONDS:-10}" 2>&1)
echo "$out"
[[ $(grep -c '^ok - asyncpg' <<<"$out") -eq 2 ]] || not_ok "asyncpg run: $(tail -1 <<<"$out")"

out=$(timeout 60 $PY "$drivers/psycopg_checks.py" "$(PC_CONN)" \
	"host=127.0.0.1 port=$PG_PORT user=$PG_USER password=$PG_PASSWORD dbname=$PG_DB connect_timeout=5" 2>&1)
grep -E '^(ok|not ok) ' <<<"$out"
[[ $(grep -c '^ok - psycopg' <<<"$out") -eq 5 ]] || not_ok "psycopg run: $(tail -1 <<<"$out")"

if (cd "$drivers/node" && timeout 120 npm install --no-audit --no-fund --silent >/dev/null 2>&1); then
	out=$(timeout 60 node "$drivers/node/named.js" "$PGCRAB_PORT" 2>&1)
	echo "$out"
	grep -q '^ok - node-postgres' <<<"$out" || not_ok "node-postgres run: $(tail -1 <<<"$out")"
else
	not_ok "npm install of node-postgres"
fi
exit 0
