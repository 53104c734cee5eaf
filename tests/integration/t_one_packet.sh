# A client may send ahead: startup, password, a query and Terminate in one
# packet are each handled in turn (the query answered before the close),
# in transaction and session pooling alike, and the server goes back clean.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "startup, password, query and Terminate sent in one packet" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: PostgreSQL asks for SCRAM, which this raw client does not speak"
	exit 0
fi
for mode in transaction session; do
	pgcrab_start "min_connections = 1
max_connections = 2" "pool_mode = $mode" || exit 1
	out=$(timeout 20 /usr/bin/python3 "$LIB_DIR/drivers/one_packet.py" 127.0.0.1 "$PGCRAB_PORT" \
		"$PC_USER" "$PC_PASSWORD" "$PG_DB" 2>&1)
	# R (password asked), R (ok), K, Z, then T D C Z, then the close
	expect_eq "$mode: login, the query's answer, then the close" "RRKZTDCZ ['one packet'] closed" "$out"
	expect_eq "$mode: and the pool still serves" "after" "$(pc_psql -c "SELECT 'after'")"
	pgcrab_stop
done
exit 0
