# COPY FROM STDIN into a sharded table (issue 13): rows split by key as
# they stream, in text, CSV and binary, checked against one PostgreSQL
# (drivers/shard_copy.py loads the same seeded rows into both and compares
# them, and reads each shard to check that its keys hash to it). COPY into
# an unsharded table reaches every shard; a bad key fails the whole COPY
# with nothing left behind; COPY TO from every shard gives all the rows.
source "$(dirname "$0")/lib.sh"
source "$REPO_DIR/scripts/pgshards.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "COPY into a sharded table" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: nothing routes to shards"
	exit 0
fi
trap 'rc=$?; pgshards_stop; (exit $rc); t_cleanup' EXIT
SHARD_OF=${UNIT_DIR:-$REPO_DIR/build/tests}/shard_of
[[ -x "$SHARD_OF" ]] || SHARD_OF=$REPO_DIR/build/tests/shard_of

pgshards_databases_2pc "$T_DIR" scp 3 || { not_ok "3 shard databases are created"; exit 1; }
PGCRAB_EXTRA_SECTIONS="$(
	pgshards_sections app
	pgshards_table copy_t app "tenant, name" "int8, text"
	pgshards_table one_key app "id" "int8"
)" pgcrab_start "" "" || exit 1
app_dsn="host=127.0.0.1 port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=app connect_timeout=5"
app() { timeout 60 psql -X -q -At -v ON_ERROR_STOP=1 -d "$app_dsn" "$@"; }
oracle_db=scp_oracle
PGOPTIONS="-c client_min_messages=warning" pg_admin -c "DROP DATABASE IF EXISTS $oracle_db" \
	-c "CREATE DATABASE $oracle_db OWNER $PG_USER" >/dev/null
PGSHARDS_OWN_DBS+=("$PG_DIR $PG_PORT $oracle_db")
oracle_dsn="host=127.0.0.1 port=$PG_PORT user=$PG_USER password=$PG_PASSWORD dbname=$oracle_db connect_timeout=5"

ddl="CREATE TABLE copy_t (tenant int8, name text, i2 int2, i4 int4, n numeric, f float8, b bool, t timestamptz, u uuid, note text);
CREATE TABLE one_key (id int8, v text);
CREATE TABLE ref_t (id int4, v text)"
check "the tables are created through PgCrab" app -c "$ddl"
for i in 0 1 2; do pgshards_psql $i -c "CREATE TABLE one_key_probe (id int8) PARTITION BY HASH (id)"; done
check "...and in the oracle" psql -X -q -v ON_ERROR_STOP=1 -d "$oracle_dsn" -c "$ddl"

shards=()
for i in 0 1 2; do shards+=("$(pgshards_dsn $i)"); done
out=$(timeout 300 /usr/bin/python3 "$LIB_DIR/drivers/shard_copy.py" --pgcrab "$app_dsn" --oracle "$oracle_dsn" \
	--key tenant,name --rows 6000 --seed "${SHARD_COPY_SEED:-7}" \
	--shards "$(IFS=,; echo "${shards[*]}")" --shard-of "$SHARD_OF" 2>&1)
rc=$?
echo "$out" | grep -E '^(ok|not ok)' | sed 's/^ok /ok - shard_copy: /; s/^not ok /not ok - shard_copy: /'
echo "$out" | grep -vE '^(ok|not ok)' | sed 's/^/# /' | tail -20
check "shard_copy.py exits 0" test "$rc" -eq 0
rows=0
for i in 0 1 2; do
	n=$(pgshards_psql $i -c "SELECT count(*) FROM copy_t")
	check "shard $i holds some of the rows ($n)" test "$n" -gt 0
	rows=$((rows + n))
done
expect_eq "the shards hold every row once" "$(psql -X -At -d "$oracle_dsn" -c "SELECT count(*) FROM copy_t")" "$rows"

# an unsharded table: every shard gets every row
printf '1\ta\n2\tb\n3\tc\n' | app -c "COPY ref_t FROM STDIN"
expect_eq "COPY into an unsharded table reaches every shard" "3 3 3" \
	"$(pgshards_psql 0 -c "SELECT count(*) FROM ref_t") $(pgshards_psql 1 -c "SELECT count(*) FROM ref_t") $(pgshards_psql 2 -c "SELECT count(*) FROM ref_t")"

# a key that is not an int8: the COPY fails, and no shard keeps a row of it
out=$(printf '1\tok\n2\tok\nnot-a-number\tbad\n4\tok\n' | app -c "COPY one_key (id, v) FROM STDIN" 2>&1)
expect_match "a bad key fails the COPY with 22P02's words" "invalid input syntax|not valid|invalid" "$out"
expect_eq "...and nothing of it stays on any shard" "0 0 0" \
	"$(pgshards_psql 0 -c "SELECT count(*) FROM one_key") $(pgshards_psql 1 -c "SELECT count(*) FROM one_key") $(pgshards_psql 2 -c "SELECT count(*) FROM one_key")"
out=$(printf '\\N\tnull key\n' | app -c "COPY one_key (id, v) FROM STDIN" 2>&1)
expect_match "a NULL one-column key is refused (23502's words)" "null" "$out"

# COPY TO from every shard: all the rows, once
printf '1\ta\n2\tb\n3\tc\n4\td\n5\te\n6\tf\n' | app -c "COPY one_key (id, v) FROM STDIN"
expect_eq "COPY one_key TO STDOUT gives every shard's rows" "1 2 3 4 5 6" \
	"$(app -c "COPY one_key TO STDOUT" | cut -f1 | sort -n | tr '\n' ' ' | sed 's/ $//')"
expect_eq "...and the client is in step afterwards" 6 "$(app -c "SELECT count(*) FROM one_key")"

# without a column list PgCrab asks a shard for the table's columns
printf '7\tx\n8\ty\n9\tz\n' | app -c "COPY one_key FROM STDIN"
n=0
for i in 0 1 2; do
	n=$((n + $(pgshards_psql $i -c "SELECT count(*) FROM one_key WHERE id >= 7 AND satisfies_hash_partition('one_key_probe'::regclass, 3, $i, id)")))
done
expect_eq "COPY without a column list: every row on its key's shard" 3 "$n"
out=$(printf '10\n' | app -c "COPY ref_t (v) FROM STDIN" 2>&1 && printf 'x\n' | app -c "COPY one_key (v) FROM STDIN" 2>&1)
expect_match "a column list without the key is refused, naming the key" "id" "$out"
pgcrab_stop
