# pool_mode = session over a pool of ONE: a client keeps its server
# connection (LISTEN/NOTIFY, SQL PREPARE/EXECUTE, temporary tables, SET,
# advisory locks); other clients wait for it; DISCARD ALL cleans the
# connection before the next client gets it (same pg_backend_pid).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)
pgcrab_start "min_connections = 1
max_connections = 1" "pool_mode = session" || exit 1

out=$(timeout 60 $PY "$drivers/session_mode.py" "$(PC_CONN)" "$PGCRAB_PORT" \
	"host=127.0.0.1 port=$PG_PORT user=$PG_USER password=$PG_PASSWORD dbname=$PG_DB connect_timeout=5" 2>&1)
echo "$out"
expect_eq "every session mode check ran" 21 "$(grep -cE '^(not )?ok - ' <<<"$out")"
exit 0
