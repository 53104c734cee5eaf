# pgjdbc through PgCrab in transaction mode over a pool of 5: server-side
# named statements (prepareThreshold=2), pipelined batches, a cursor through
# a named portal and errors by SQLSTATE, from 20 connections. The same
# program runs against PostgreSQL directly first, so a wrong expectation in
# the test fails there, not as a PgCrab bug.
source "$(dirname "$0")/lib.sh"
jar=/usr/share/java/postgresql.jar
drivers=$(cd "$(dirname "$0")/drivers" && pwd)
command -v javac >/dev/null && [[ -r $jar ]] || { not_ok "java or $jar missing (scripts/deps.sh installs them)"; exit 0; }
jdbc() { timeout 120 java -cp "$jar" "$drivers/Jdbc.java" "jdbc:postgresql://127.0.0.1:$1/$PG_DB" "$2" "$3" 2>&1; }

out=$(jdbc "$PG_PORT" "$PG_USER" "$PG_PASSWORD")
grep -q '^ok - jdbc' <<<"$out" && ok "jdbc against PostgreSQL directly" || not_ok "jdbc against PostgreSQL directly: $(tail -3 <<<"$out")"

pgcrab_start "min_connections = 2
max_connections = 5" || exit 1
out=$(jdbc "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD")
echo "$out" | grep -E '^(ok|not ok) ' || not_ok "jdbc through PgCrab: $(tail -3 <<<"$out")"
# nothing the cursors, batches and rollbacks did is left open on a server
n=$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'")
expect_eq "no server connection idle in transaction afterwards" 0 "$n"
exit 0
