# Startup parameters and SETs follow each client across one shared server
# connection: two clients with different application_name, TimeZone,
# DateStyle, IntervalStyle, client_encoding, search_path and
# extra_float_digits interleave transactions over a pool of ONE (with one
# worker, then two so the server connection also moves between workers).
# Every value each client sees is compared with the same script run
# directly against PostgreSQL; SET, SET LOCAL, ROLLBACK, RESET and RESET ALL
# included.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)

for workers in 1 2; do
	pgcrab_start --workers $workers "min_connections = 1
max_connections = 1" || exit 1
	out=$(timeout 60 $PY "$drivers/session_params.py" "$PGCRAB_PORT" "$PG_PORT" "$PG_USER" "$PG_PASSWORD" 2>&1)
	sed "s/^\(\(not \)\?ok - \)/\1$workers worker(s): /" <<<"$out"
	expect_eq "$workers worker(s): every session parameter check ran" 30 "$(grep -cE '^(not )?ok - ' <<<"$out")"
	pgcrab_stop
done
exit 0
