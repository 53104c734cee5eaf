# Session state through real drivers in transaction mode: psql (libpq,
# PGOPTIONS), psycopg 3 (options in the conninfo), asyncpg (server_settings),
# node-postgres (statement_timeout and options) and pgjdbc (options=-c,
# currentSchema): startup values, SET, temp tables, LISTEN/NOTIFY and SQL
# PREPARE hold for client A across transactions while client B runs in
# between, and B sees none of A's. A pool of two server connections: A's
# session state may keep one, B uses the other (and, without carrying or
# pinning, the same one A just used: the leaks show). The driver programs
# are drivers/session_state_*.py, drivers/node/session_state.js and
# drivers/SessionState.java; each check states PostgreSQL's own behaviour
# (PGCRAB_TEST_DIRECT=1 proves them).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)
jar=/usr/share/java/postgresql.jar

PG_ADMIN_DB=$PG_DB pg_admin -c "CREATE SCHEMA IF NOT EXISTS crab_d AUTHORIZATION $PG_USER" >/dev/null
pgcrab_start "min_connections = 2
max_connections = 2" || exit 1

# ran NAME OUTPUT: the driver's check lines; not ok when it stopped early
ran() {
	grep -E '^(ok|not ok) - ' <<<"$2"
	grep -q '^# done' <<<"$2" || not_ok "$1 ran to its end: $(tail -3 <<<"$2" | tr '\n' ' ')"
}

# psql: A is one psql session (PGOPTIONS); B is a psql run from inside it
# (\!, without PGOPTIONS) between A's statements
export B_CONN=$(PC_CONN)
out=$(PGOPTIONS="-c work_mem=5MB -c statement_timeout=6000" timeout 30 psql -X -q -At -d "$(PC_CONN)" 2>&1 <<'SQL' | sed 's/PID [0-9]*/PID N/'
SELECT 'A options', current_setting('work_mem'), current_setting('statement_timeout');
\! env -u PGOPTIONS psql -X -q -At -c "SELECT 'B defaults', current_setting('work_mem'), current_setting('statement_timeout')" "$B_CONN"
SELECT 'A options again', current_setting('work_mem'), current_setting('statement_timeout');
SET work_mem = '9MB';
\! env -u PGOPTIONS psql -X -q -At -c "SELECT 'B after SET', current_setting('work_mem')" "$B_CONN"
SELECT 'A SET', current_setting('work_mem');
CREATE TEMP TABLE crab_drv_tmp (a int);
INSERT INTO crab_drv_tmp VALUES (1), (2);
\! env -u PGOPTIONS psql -X -q -At -c "SELECT 'B temp table', to_regclass('crab_drv_tmp') IS NULL" "$B_CONN"
BEGIN; SELECT 'A temp table', count(*) FROM crab_drv_tmp; COMMIT;
DISCARD TEMP;
LISTEN crab_drv;
\! env -u PGOPTIONS psql -X -q -At -c "NOTIFY crab_drv, 'one'" "$B_CONN"
SELECT 'A after notify', 1;
\! env -u PGOPTIONS psql -X -q -At -c "SELECT 'B listens', count(*) FROM pg_listening_channels()" "$B_CONN"
UNLISTEN *;
PREPARE crab_drv_p(int) AS SELECT $1 * 2;
\! env -u PGOPTIONS psql -X -q -At -c "SELECT 'B prepared', count(*) FROM pg_prepared_statements WHERE name = 'crab_drv_p'" "$B_CONN"
\echo A execute
BEGIN; EXECUTE crab_drv_p(21); COMMIT;
SQL
)
want=('A options|5MB|6s' 'B defaults|4MB|0' 'A options again|5MB|6s' 'B after SET|4MB' 'A SET|9MB'
	'B temp table|t' 'A temp table|2' 'A after notify|1'
	'Asynchronous notification "crab_drv" with payload "one" received from server process with PID N.'
	'B listens|0' 'B prepared|0' 'A execute' '42')
# each line by itself (a missing line must not shift the others)
for w in "${want[@]}"; do
	if grep -Fxq -- "$w" <<<"$out"; then ok "psql: $w"; else not_ok "psql: $w: not in the output [$(tr '\n' ';' <<<"$out")]"; fi
done
extra=$(grep -Fxv "$(printf '%s\n' "${want[@]}")" <<<"$out")
[[ -z $extra ]] && ok "psql: nothing else in the output" || not_ok "psql: nothing else in the output: [$extra]"

out=$(cd "$drivers" && timeout 40 $PY session_state_psycopg.py "$(PC_CONN)" 2>&1)
ran psycopg "$out"
out=$(cd "$drivers" && timeout 50 $PY session_state_asyncpg.py "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" 2>&1)
ran asyncpg "$out"
if (cd "$drivers/node" && { [[ -d node_modules/pg ]] || timeout 120 npm install --no-audit --no-fund --silent >/dev/null 2>&1; }); then
	out=$(timeout 40 node "$drivers/node/session_state.js" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" 2>&1)
	ran node-postgres "$out"
else
	not_ok "npm install of node-postgres"
fi
if command -v javac >/dev/null && [[ -r $jar ]]; then
	out=$(timeout 60 java -cp "$jar" "$drivers/SessionState.java" "jdbc:postgresql://127.0.0.1:$PGCRAB_PORT/$PG_DB" \
		"$PC_USER" "$PC_PASSWORD" 2>&1)
	ran jdbc "$out"
else
	not_ok "java or $jar missing (scripts/deps.sh installs them)"
fi
exit 0
