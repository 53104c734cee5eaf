# psql through PgCrab: queries, errors, multi-statement queries, COPY in and
# out, a 100 MB result and a 1 MB query, startup parameters, notices.
source "$(dirname "$0")/lib.sh"
pgcrab_start || exit 1

expect_eq "simple query" "3" "$(pc_psql -c 'SELECT 1 + 2')"
pc_psql -c "DROP TABLE IF EXISTS t_psql" -c "CREATE TABLE t_psql (id int PRIMARY KEY, v text)" \
	-c "INSERT INTO t_psql SELECT g, 'v' || g FROM generate_series(1, 100) g" 2>/dev/null
expect_eq "rows written through pgcrab are in PostgreSQL" "100|5050" \
	"$(pg_psql -c 'SELECT count(*), sum(id) FROM t_psql')"
expect_eq "and read back through pgcrab" "$(pg_psql -c "SELECT string_agg(v, ',' ORDER BY id) FROM t_psql WHERE id % 7 = 0")" \
	"$(pc_psql -c "SELECT string_agg(v, ',' ORDER BY id) FROM t_psql WHERE id % 7 = 0")"

out=$(timeout 30 psql -X -At -v VERBOSITY=verbose "$(PC_CONN)" -c 'SELECT 1/0' -c 'SELECT 41 + 1' 2>&1)
check "division by zero reports 22012" grep -q "ERROR:  22012" <<<"$out"
check "the same connection works after an error" grep -qx "42" <<<"$out"
expect_eq "unique violation reports 23505" "23505" \
	"$(sqlstate_of "$(PC_CONN)" -c "INSERT INTO t_psql VALUES (1, 'dup')")"
# an error inside a transaction: the rest of it fails with 25P02 until
# ROLLBACK, then the connection is normal again
out=$(printf '%s\n' '\set VERBOSITY verbose' 'BEGIN;' 'SELECT 1/0;' 'SELECT 1;' 'ROLLBACK;' "SELECT 'after';" \
	| timeout 30 psql -X -q -At "$(PC_CONN)" 2>&1)
check "an aborted transaction reports 25P02 for the next statement" grep -q "ERROR:  25P02" <<<"$out"
check "after ROLLBACK the connection works" grep -qx "after" <<<"$out"

expect_eq "multi-statement simple query returns every result" "$(printf '1\n2\n3')" \
	"$(pc_psql -c 'SELECT 1; SELECT 2; SELECT 3')"
expect_eq "multi-statement query with an error stops there" "$(printf '1\nERROR')" \
	"$(timeout 30 psql -X -At "$(PC_CONN)" -c 'SELECT 1; SELECT 1/0; SELECT 3' 2>&1 | sed 's/:.*//')"

# COPY FROM STDIN of 10000 rows, then COPY TO STDOUT compared with PostgreSQL's own
pc_psql -c "DROP TABLE IF EXISTS t_copy" -c "CREATE TABLE t_copy (a int, b text)" 2>/dev/null
seq 1 10000 | awk '{print $1 "\trow " $1}' >"$T_DIR/copy.in"
pc_psql -c "\\copy t_copy FROM STDIN" <"$T_DIR/copy.in"
expect_eq "COPY FROM STDIN stores every row" \
	"$(wc -l <"$T_DIR/copy.in")|$(awk '{s += $1} END {print s}' "$T_DIR/copy.in")" \
	"$(pg_psql -c 'SELECT count(*), sum(a) FROM t_copy')"
direct=$(pg_psql -c "\\copy (SELECT * FROM t_copy ORDER BY a) TO STDOUT" | md5sum)
via=$(pc_psql -c "\\copy (SELECT * FROM t_copy ORDER BY a) TO STDOUT" | md5sum)
expect_eq "COPY TO STDOUT matches PostgreSQL byte for byte" "$direct" "$via"
expect_eq "COPY TO STDOUT is the data that went in" "$(md5sum <"$T_DIR/copy.in")" "$via"
expect_eq "COPY with bad data reports 22P02 and leaves nothing" "22P02|10000" \
	"$(printf 'x\tbad\n' | sqlstate_of "$(PC_CONN)" -c '\copy t_copy FROM STDIN')|$(pg_psql -c 'SELECT count(*) FROM t_copy')"

# 100 MB streamed through (100 rows of 1 MB); PgCrab must not buffer it whole
bytes=$(timeout 120 psql -X -At "$(PC_CONN)" -c "SELECT repeat('x', 1000000) FROM generate_series(1, 100)" | wc -c)
expect_eq "a 100 MB result arrives whole" "$((100 * (1000000 + 1)))" "$bytes"
if [[ $PC_DIRECT == 0 ]]; then
	rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$PGCRAB_PID/status")
	check "pgcrab's peak RSS stayed under 64 MB while streaming 100 MB (was ${rss_kb} kB)" test "${rss_kb:-999999}" -lt 65536
else
	skip "pgcrab's peak RSS stayed under 64 MB while streaming 100 MB" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: no pgcrab process to measure"
fi
# and a 1 MB query text the other way
printf "SELECT length('%s');\n" "$(head -c 1000000 /dev/zero | tr '\0' y)" >"$T_DIR/big.sql"
expect_eq "a 1 MB query arrives whole" "1000000" "$(pc_psql -f "$T_DIR/big.sql")"

expect_eq "application_name from the startup packet" "t_psql_app" \
	"$(PGAPPNAME=t_psql_app pc_psql -c "SELECT current_setting('application_name')")"
expect_eq "notices reach the client" "NOTICE:  hello" \
	"$(timeout 30 psql -X -q -At "$(PC_CONN)" -c "DO \$\$BEGIN RAISE NOTICE 'hello'; END\$\$" 2>&1)"
exit 0
