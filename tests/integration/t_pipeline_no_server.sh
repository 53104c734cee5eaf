# Requests PgCrab answers itself while no server is free (issue 11's
# defects): hundreds of pipelined Parse/Sync pairs, a Parse too short for a
# name, a login larger than a fixed buffer. See drivers/pipeline_no_server.py.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "pipelined Parse/Sync without a server" "direct mode: PostgreSQL asks for SCRAM and has no pool to wait on"
	exit 0
fi
pgcrab_start "min_connections = 1
max_connections = 1" || exit 1
timeout 60 /usr/bin/python3 "$LIB_DIR/drivers/pipeline_no_server.py" "$PGCRAB_PORT" \
	"$PC_USER" "$PC_PASSWORD" "$PG_DB" 2>&1 | tee "$T_DIR/out"
grep -q "^not ok" "$T_DIR/out" && T_FAILED=$((T_FAILED + 1))
[[ $(grep -c "^ok" "$T_DIR/out") -ge 5 ]] || not_ok "the driver ran every check"
expect_eq "pgcrab still serves" "1" "$(pc_psql -c 'SELECT 1')"
exit 0
