# auth_query: roles that exist only in PostgreSQL log in through PgCrab,
# with plain, md5 and scram-sha-256 clients
# (each as itself, on a shard without a user), their passwords checked
# against the verifier PgCrab looks up on the shard as auth_user (SCRAM and
# md5 verifiers); answers are cached for auth_query_ttl, then looked up
# again; an unknown role is refused like a wrong password.
source "$(dirname "$0")/lib.sh"

if [[ $PC_DIRECT == 1 ]]; then
	skip "auth_query" "direct mode: PostgreSQL checks its own roles"
	exit 0
fi
pg_admin -c "SET client_min_messages = warning" \
	-c "DROP ROLE IF EXISTS aq_auth" -c "CREATE ROLE aq_auth SUPERUSER LOGIN PASSWORD 'authpass'" \
	-c "DROP ROLE IF EXISTS aq_scram" -c "CREATE ROLE aq_scram LOGIN PASSWORD 'aqpass1'" \
	-c "SET password_encryption = 'md5'" \
	-c "DROP ROLE IF EXISTS aq_md5" -c "CREATE ROLE aq_md5 LOGIN PASSWORD 'aqmd5'" \
	-c "DROP ROLE IF EXISTS aq_late" >/dev/null
hba="$PG_DIR/data/pg_hba.conf"
cp "$hba" "$T_DIR/hba.orig"
{ echo "host all aq_md5 127.0.0.1/32 md5"; cat "$T_DIR/hba.orig"; } >"$T_DIR/hba.new"
chmod 644 "$T_DIR/hba.orig" "$T_DIR/hba.new"
as_pg cp "$T_DIR/hba.new" "$hba"
pg_admin -c "SELECT pg_reload_conf()" >/dev/null

export SHARD_USER=- PGCRAB_EXTRA_SECTIONS="[user.aq_auth]
password = authpass"
login() { timeout 20 psql -X -q -At -d "host=127.0.0.1 port=$PGCRAB_PORT user=$1 password=$2 dbname=$PG_DB connect_timeout=5" -c "SELECT current_user" 2>&1; }
refused_like_wrong_password() { [[ "$(login "$1" "$2")" == *"password authentication failed for user \"$1\""* ]]; }
logs_in() { [[ "$(login "$1" "$2")" == "$1" ]]; }

# one worker: its cache is the one every client meets
pgcrab_start --workers 1 "max_connections = 6" "auth_user = aq_auth
auth_query_ttl = 60s" || exit 1
expect_eq "a SCRAM role only in PostgreSQL logs in as itself" "aq_scram" "$(login aq_scram aqpass1)"
expect_eq "an md5 role only in PostgreSQL logs in as itself (md5 server login)" "aq_md5" "$(login aq_md5 aqmd5)"
check "a wrong password is refused (28P01)" refused_like_wrong_password aq_scram nope
check "an md5 role's wrong password is refused (28P01)" refused_like_wrong_password aq_md5 nope
check "a role PostgreSQL does not know is refused like a wrong password" refused_like_wrong_password aq_nobody whatever
expect_eq "auth_user itself logs in from its [user] section" "aq_auth" "$(login aq_auth authpass)"
# the refusal above dropped aq_scram's cached answer: this login caches it again
check "the SCRAM role logs in again after a refused attempt" logs_in aq_scram aqpass1
pg_admin -c "ALTER ROLE aq_scram PASSWORD 'aqpass2'" >/dev/null
# cached for 60 s, and the role's idle server is still logged in
expect_eq "right after ALTER ROLE the cached verifier still takes the old password" "aq_scram" "$(login aq_scram aqpass1)"
check "the new password fails against the cached verifier (28P01)" refused_like_wrong_password aq_scram aqpass2
# without the failure dropping the cached answer this waits out the 60 s TTL
check "... and that failure drops the cached answer: the next login asks the shard and the new password logs in" \
	logs_in aq_scram aqpass2
check "... after which the old password is refused" refused_like_wrong_password aq_scram aqpass1
check "an unknown role is refused (its answer cached for 5 s)" refused_like_wrong_password aq_late latepass
pg_admin -c "CREATE ROLE aq_late LOGIN PASSWORD 'latepass'" >/dev/null
# the cached "no such role" (5 s) refuses it once more, and that refusal drops it
late_in_two() { logs_in aq_late latepass || logs_in aq_late latepass; }
check "... and logs in at its first or second attempt right after CREATE ROLE" late_in_two
pg_admin -c "DROP ROLE aq_late" >/dev/null
check "the lookup ran on the shard as auth_user (pg_stat_activity)" test \
	"$(pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'aq_auth' AND application_name = 'pgcrab-auth-query'")" -ge 1
pgcrab_stop

# a short TTL: the new password takes over once the old answer expires
pg_admin -c "ALTER ROLE aq_scram PASSWORD 'aqpass1'" >/dev/null
pgcrab_start "max_connections = 6" "auth_user = aq_auth
auth_query_ttl = 1s" || exit 1
check "the SCRAM role logs in before the change" logs_in aq_scram aqpass1
pg_admin -c "ALTER ROLE aq_scram PASSWORD 'aqpass2'" >/dev/null
check "after ALTER ROLE ... PASSWORD the old password is refused once the TTL passed" poll 30 refused_like_wrong_password aq_scram aqpass1
check "... and the new one logs in" poll 30 logs_in aq_scram aqpass2
check "a refused role..." refused_like_wrong_password aq_late latepass
pg_admin -c "CREATE ROLE aq_late LOGIN PASSWORD 'latepass'" >/dev/null
check "... logs in once it exists and the negative answer expired" poll 30 logs_in aq_late latepass
# several roles at once through auth_query, each as itself. Each worker
# keeps its own cache, so a change shows on every worker once the TTL (1 s)
# has passed since that worker's last lookup: logins land on both workers.
sleep 1.5
pids=()
for r in "aq_scram aqpass2" "aq_md5 aqmd5" "aq_late latepass"; do
	set -- $r
	( for _ in $(seq 1 20); do login "$1" "$2"; done ) >"$T_DIR/$1.loop" &
	pids+=($!)
done
wait "${pids[@]}" # not pgcrab, also a child of this shell
grep -vxh "aq_scram\|aq_md5\|aq_late" "$T_DIR"/*.loop | sort | uniq -c | sed "s/^/# /" # why any failed
for r in aq_scram aq_md5 aq_late; do
	expect_eq "$r: 20 logins in parallel with other roles, each as itself" 20 "$(grep -cx "$r" "$T_DIR/$r.loop")"
done
pgcrab_stop

# every client method, as PostgreSQL picks it from the stored verifier:
# with md5 a SCRAM role still gets SCRAM; with scram-sha-256 an md5 role
# cannot log in (its hash answers no SCRAM exchange). Each answer is first
# checked against PostgreSQL directly with the same method in pg_hba.
direct() { timeout 20 psql -X -q -At -d "host=127.0.0.1 port=$PG_PORT user=$1 password=$2 dbname=$PG_DB connect_timeout=5" -c "SELECT current_user" 2>&1; }
for method in md5 scram-sha-256; do
	{ echo "host all aq_scram,aq_md5,aq_late 127.0.0.1/32 $method"; cat "$T_DIR/hba.orig"; } >"$T_DIR/hba.m"
	chmod 644 "$T_DIR/hba.m"
	as_pg cp "$T_DIR/hba.m" "$hba"
	pg_admin -c "SELECT pg_reload_conf()" >/dev/null
	pgcrab_start "max_connections = 6" "auth_user = aq_auth
auth_type = $method
auth_query_ttl = 60s" || exit 1
	for r in "aq_scram aqpass2" "aq_md5 aqmd5"; do
		set -- $r
		want=$(direct "$1" "$2")
		got=$(login "$1" "$2")
		if [[ "$want" == "$1" ]]; then
			expect_eq "$method: $1 logs in as itself, as directly" "$1" "$got"
		else
			check "$method: $1 is refused like directly ($want)" \
				test "${got#*FATAL:  }" == "${want#*FATAL:  }"
		fi
		wrong=$(login "$1" nope)
		check "$method: $1 with a wrong password is refused with 28P01" \
			grep -q "password authentication failed for user \"$1\"" <<<"$wrong"
	done
	check "$method: an unknown role is refused like a wrong password" refused_like_wrong_password aq_nobody x
	pgcrab_stop
done
as_pg cp "$T_DIR/hba.new" "$hba"
pg_admin -c "SELECT pg_reload_conf()" >/dev/null

# auth_user cannot log in: lookups fail, the client is told
pgcrab_start "max_connections = 2" "auth_user = aq_auth
auth_query = SELECT usename, passwd FROM no_such_table WHERE usename = \$1" || exit 1
expect_match "a failing auth_query refuses the login with 08006" "cannot look up role \"aq_md5\"" "$(login aq_md5 aqmd5)"
pgcrab_stop

as_pg cp "$T_DIR/hba.orig" "$hba"
pg_admin -c "SELECT pg_reload_conf()" -c "DROP ROLE aq_scram, aq_md5, aq_late, aq_auth" >/dev/null
exit 0
