# PgCrab logs in to servers that ask for a cleartext password, an md5
# password or SCRAM-SHA-256, and reports a wrong shard password clearly.
source "$(dirname "$0")/lib.sh"

# roles whose pg_hba lines ask for each method; the rules go first
pg_admin -c "SET password_encryption = 'md5'" -c "DROP ROLE IF EXISTS crab_md5" \
	-c "CREATE ROLE crab_md5 LOGIN PASSWORD 'md5pass'" \
	-c "DROP ROLE IF EXISTS crab_clear" -c "CREATE ROLE crab_clear LOGIN PASSWORD 'clearpass'" \
	-c "GRANT ALL ON DATABASE $PG_DB TO crab_md5, crab_clear" >/dev/null
hba="$PG_DIR/data/pg_hba.conf"
cp "$hba" "$T_DIR/hba.orig"
{ echo "host all crab_md5 127.0.0.1/32 md5"; echo "host all crab_clear 127.0.0.1/32 password"; cat "$T_DIR/hba.orig"; } >"$T_DIR/hba.new"
as_pg cp "$T_DIR/hba.new" "$hba"
pg_admin -c "SELECT pg_reload_conf()" >/dev/null
restore_hba() { as_pg cp "$T_DIR/hba.orig" "$hba"; pg_admin -c "SELECT pg_reload_conf()" >/dev/null; }

try_user() { # try_user USER PASSWORD: the backend user a query through pgcrab runs as
	SHARD_USER=$1 SHARD_PASSWORD=$2 pgcrab_start "min_connections = 0
max_connections = 2" "query_wait_timeout = 5s" || return 1
	timeout 10 psql -X -q -At -v VERBOSITY=verbose "$(PC_CONN)" -c "SELECT current_user" 2>&1
	pgcrab_stop
}
expect_eq "md5 server authentication" "crab_md5" "$(try_user crab_md5 md5pass)"
expect_eq "cleartext server authentication" "crab_clear" "$(try_user crab_clear clearpass)"
expect_eq "SCRAM-SHA-256 server authentication" "$PG_USER" "$(try_user $PG_USER $PG_PASSWORD)"
out=$(try_user crab_md5 wrong)
check "a wrong shard password fails the waiting client at once (got: $out)" grep -q "cannot log in to shard \"$PG_DB\": server says FATAL 28P01" <<<"$out"
check "the log names the shard and PostgreSQL's reason" grep -q "shard $PG_DB: server connection failed: server says FATAL 28P01" "$T_DIR/pgcrab.log"
restore_hba
exit 0
