# Login parity: a client that leaves or misbehaves during login gets from
# PgCrab exactly what PostgreSQL 15 sends it (the same messages, the same
# severity, SQLSTATE and text in an ErrorResponse, a close where PostgreSQL
# closes, silence where it only logs). drivers/login_parity.py holds the
# table of inputs and PostgreSQL's answers; it is played against PostgreSQL
# itself (which proves the table) and against PgCrab. Where PgCrab must
# differ (its own users and password, a cleartext password where
# PostgreSQL asks for SCRAM, no GSSAPI, its own cancel keys) the driver
# compares what is meaningful: see its docstring.
source "$(dirname "$0")/lib.sh"

# PgCrab asks for a cleartext password. PostgreSQL answers a client that
# breaks off a SCRAM exchange differently from one that breaks off a
# cleartext one, so the table is proved against a PostgreSQL user that logs
# in with "password": a role and a pg_hba.conf line of this test's own,
# taken away at the end.
CLEAR_USER=crab_clear_parity CLEAR_PASSWORD=clear_claws
hba=$PG_DIR/data/pg_hba.conf
cp "$hba" "$T_DIR/pg_hba.conf.orig"
chmod 644 "$T_DIR/pg_hba.conf.orig" # the postgres user copies it back
restore_hba() {
	as_pg cp "$T_DIR/pg_hba.conf.orig" "$hba"
	pg_admin -c "SELECT pg_reload_conf()" >/dev/null
	pg_admin -c "DROP ROLE IF EXISTS $CLEAR_USER" >/dev/null 2>&1
}
trap 'rc=$?; restore_hba; (exit $rc); t_cleanup' EXIT
pg_admin -c "DROP ROLE IF EXISTS $CLEAR_USER" -c "CREATE ROLE $CLEAR_USER LOGIN PASSWORD '$CLEAR_PASSWORD'" >/dev/null 2>&1
{
	echo "host all $CLEAR_USER 127.0.0.1/32 password"
	cat "$T_DIR/pg_hba.conf.orig"
} >"$T_DIR/pg_hba.conf.new"
chmod 644 "$T_DIR/pg_hba.conf.new"
as_pg cp "$T_DIR/pg_hba.conf.new" "$hba"
pg_admin -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3

parity() { # LABEL PORT USER PASSWORD: the table against one server
	timeout 240 python3 "$LIB_DIR/drivers/login_parity.py" "$2" "$3" "$4" "$PG_DB" 2>&1 |
		sed "s/^\(not ok\|ok\) - /\1 - $1: /"
}
parity "PostgreSQL 15" "$PG_PORT" "$CLEAR_USER" "$CLEAR_PASSWORD"
if [[ $PC_DIRECT == 1 ]]; then
	skip "the table against PgCrab" "direct mode (PGCRAB_TEST_DIRECT=1): only PostgreSQL is there"
else
	pgcrab_start || exit 1
	parity "PgCrab" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD"
	expect_eq "pgcrab still serves after all that" "1" "$(pc_psql -c 'SELECT 1')"
fi

# node-postgres' own quick-disconnect case, if its package can be had
drivers=$LIB_DIR/drivers
if (cd "$drivers/node" && timeout 120 npm install --no-audit --no-fund --silent >/dev/null 2>&1); then
	pg_says=$(timeout 30 node "$drivers/node/quick_disconnect.js" "$PG_PORT" "$CLEAR_USER" "$CLEAR_PASSWORD" "$PG_DB" 2>&1)
	expect_eq "node-postgres quick disconnect, PostgreSQL 15: nothing comes back" "quiet" "$pg_says"
	if [[ $PC_DIRECT == 0 ]]; then
		expect_eq "node-postgres quick disconnect, PgCrab: as PostgreSQL" "$pg_says" \
			"$(timeout 30 node "$drivers/node/quick_disconnect.js" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" "$PG_DB" 2>&1)"
	fi
else
	skip "node-postgres quick disconnect" "npm install of node-postgres failed (no registry?); the driver's row 'node-postgres quick disconnect' plays the same bytes"
fi
exit 0
