# Client authentication: auth_type scram-sha-256, md5, plain and trust,
# with [user] passwords in each form PostgreSQL stores (cleartext, md5
# hash, SCRAM verifier copied from pg_authid), through psql, psycopg,
# asyncpg, node-postgres and pgjdbc. Every expectation is first checked
# against PostgreSQL directly, with a role set up to answer the same way
# (pg_hba lines for these roles only); wrong passwords and unknown users
# must get PostgreSQL's very SQLSTATE and message. Then SASLprep both ways:
# passwords SASLprep maps, and one it refuses (used as raw bytes).
source "$(dirname "$0")/lib.sh"
[[ $PC_DIRECT == 1 ]] && { skip "client auth: PgCrab's own settings"; exit 0; }
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)
jar=/usr/share/java/postgresql.jar
PW=Crab_pw_7

# roles: SCRAM-stored, md5-stored (answers md5), md5-stored under SCRAM
# rules, and one whose host line asks for a cleartext password
hba_orig=$(as_pg cat "$PG_DIR/data/pg_hba.conf")
restore_hba() {
	printf '%s\n' "$hba_orig" | as_pg tee "$PG_DIR/data/pg_hba.conf" >/dev/null
	pg_admin -c "SELECT pg_reload_conf()" >/dev/null
	pg_admin -c "DROP ROLE IF EXISTS ca_scram, ca_md5, ca_md5s, ca_plain, ca_sasl1, ca_sasl2, ca_sasl3" >/dev/null 2>&1
}
trap 'restore_hba; t_cleanup' EXIT
pg_admin -c "DROP ROLE IF EXISTS ca_scram, ca_md5, ca_md5s, ca_plain" >/dev/null 2>&1
pg_admin -c "CREATE ROLE ca_scram LOGIN PASSWORD '$PW'" \
	-c "CREATE ROLE ca_plain LOGIN PASSWORD '$PW'" \
	-c "SET password_encryption = 'md5'" \
	-c "CREATE ROLE ca_md5 LOGIN PASSWORD '$PW'" \
	-c "CREATE ROLE ca_md5s LOGIN PASSWORD '$PW'" >/dev/null
pg_admin -d "$PG_DB" -c "GRANT ALL ON DATABASE $PG_DB TO PUBLIC" >/dev/null
{
	echo "host all ca_md5 127.0.0.1/32 md5"
	echo "host all ca_scram 127.0.0.1/32 md5" # a SCRAM secret answers md5 with SCRAM
	echo "host all ca_plain 127.0.0.1/32 password"
	printf '%s\n' "$hba_orig"
} | as_pg tee "$PG_DIR/data/pg_hba.conf" >/dev/null
pg_admin -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.3
secret_of() { pg_admin -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$1'"; }
V_SCRAM=$(secret_of ca_scram)
V_MD5=$(secret_of ca_md5)
V_MD5S=$(secret_of ca_md5s)
[[ $V_SCRAM == SCRAM-SHA-256\$* && $V_MD5 == md5* ]] || not_ok "pg_authid secrets: '$V_SCRAM' '$V_MD5'"

node_ok=0
(cd "$drivers/node" && timeout 120 npm install --no-audit --no-fund --silent >/dev/null 2>&1) && node_ok=1
java_ok=0
command -v javac >/dev/null && [[ -r $jar ]] && java_ok=1

# logins DRIVER < lines "PORT<tab>USER<tab>PASSWORD": one line per login,
# "ok" or "E:SQLSTATE message" (psql and psycopg print "?" for the SQLSTATE:
# libpq reports none for a failed connection). One process per driver.
logins() {
	local d=$1 port user pw out
	case $d in
	psql)
		while IFS=$'\t' read -r port user pw; do
			out=$(PGPASSWORD=$pw timeout 30 psql -X -At \
				-d "host=127.0.0.1 port=$port user=$user dbname=$PG_DB sslmode=disable connect_timeout=10" \
				-c "SELECT 1" 2>&1 </dev/null)
			if [[ $out == 1 ]]; then echo ok; else
				sed -n 's/.*FATAL:  \(.*\)/E:? \1/p' <<<"$out" | head -1
			fi
		done ;;
	psycopg | asyncpg) timeout 120 $PY "$drivers/auth_login.py" "$d" "$PG_DB" 2>&1 ;;
	node) timeout 120 node "$drivers/node/auth_login.js" "$PG_DB" 2>&1 ;;
	jdbc) timeout 180 java -cp "$jar" "$drivers/AuthLogin.java" "$PG_DB" 2>&1 ;;
	esac
}
login() { printf '%s\t%s\t%s\n' "$2" "$3" "$4" | logins "$1" | tail -1; }
DRIVERS="psql psycopg asyncpg"
[[ $node_ok == 1 ]] && DRIVERS+=" node" || not_ok "npm install of node-postgres"
[[ $java_ok == 1 ]] && DRIVERS+=" jdbc" || not_ok "java or $jar missing"

# CASES: "PCUSER ROLE PASSWORD WANT" lines. For each, PostgreSQL (as ROLE)
# must answer WANT ("ok", or "fail": its 28P01 for that name), and PgCrab
# (as PCUSER) exactly what PostgreSQL said (ROLE's name put in PCUSER's).
run_cases() {
	local d in="" out i=0 pcuser role pw want direct via
	local -a res
	while read -r pcuser role pw want; do
		[[ -n $pcuser ]] || continue
		in+=$(printf '%s\t%s\t%s\n%s\t%s\t%s' "$PG_PORT" "$role" "$pw" "$PGCRAB_PORT" "$pcuser" "$pw")$'\n'
	done <<<"$CASES"
	for d in $DRIVERS; do
		mapfile -t res < <(printf '%s' "$in" | logins "$d")
		i=0
		while read -r pcuser role pw want; do
			[[ -n $pcuser ]] || continue
			direct=${res[$i]:-none} via=${res[$((i + 1))]:-none}
			i=$((i + 2))
			if [[ $want == ok ]]; then
				expect_eq "$MODE: $d: PostgreSQL logs $role in" ok "$direct"
			else
				expect_match "$MODE: $d: PostgreSQL refuses $role" \
					"^E:(28P01|\\?) password authentication failed for user \"$role\"\$" "$direct"
			fi
			[[ $pcuser != "$role" ]] && direct=${direct//\"$role\"/\"$pcuser\"}
			expect_eq "$MODE: $d: $pcuser ($pw) through PgCrab as PostgreSQL" "$direct" "$via"
		done <<<"$CASES"
	done
}

users="[user.ca_scram]
password = $V_SCRAM
[user.ca_md5]
password = $V_MD5
[user.ca_md5s]
password = $V_MD5S
[user.ca_clear]
password = $PW"
start_mode() {
	MODE=$1
	pgcrab_stop
	PGCRAB_EXTRA_SECTIONS=$users pgcrab_start "min_connections = 0
max_connections = 4" "auth_type = $1" || exit 1
}

start_mode scram-sha-256
CASES="ca_scram ca_scram $PW ok
ca_clear ca_scram $PW ok
ca_md5s ca_md5s $PW fail
ca_scram ca_scram wrong_pw fail
nobody_here nobody_here $PW fail"
# a verifier from pg_authid; a cleartext (its verifier computed at load);
# an md5 hash cannot answer SCRAM; a wrong password; an unknown user (mock)
run_cases

start_mode md5
CASES="ca_md5 ca_md5 $PW ok
ca_clear ca_md5 $PW ok
ca_scram ca_scram $PW ok
ca_md5 ca_md5 wrong_pw fail
ca_scram ca_scram wrong_pw fail
nobody_here nobody_here $PW fail"
# an md5 hash; a cleartext answered with md5; a SCRAM verifier (SCRAM instead)
run_cases

start_mode plain
# a verifier is checked on the auth hasher's thread, then from the
# worker's cache (its second line); a wrong password against it
CASES="ca_scram ca_plain $PW ok
ca_scram ca_plain $PW ok
ca_scram ca_plain wrong_pw fail
ca_md5 ca_plain $PW ok
ca_clear ca_plain $PW ok
ca_md5 ca_md5 wrong_pw fail
nobody_here nobody_here $PW fail"
run_cases

# ---- plain against a slow verifier: the worker is not stalled -------------
# One worker; a verifier of 1,000,000 iterations (PgCrab's most) takes
# about a second to check, on the hasher's thread: meanwhile the worker
# serves others. Checked by order of events (drivers/plain_hasher.py).
MODE=plain-hasher
V_SLOW=$($PY "$drivers/plain_hasher.py" verifier "$PW" 1000000)
pgcrab_stop
PGCRAB_EXTRA_SECTIONS="$users
[user.ca_slow]
password = $V_SLOW" pgcrab_start --workers 1 "min_connections = 0
max_connections = 4" "auth_type = plain" || exit 1
hasher() { timeout 60 $PY "$drivers/plain_hasher.py" "$1" "$PGCRAB_PORT" "$PG_DB" ca_slow "$PW" "$2" "$3" 2>&1; }
fail_text="E:28P01 password authentication failed for user"
out=$(hasher stall ca_clear "$PW")
expect_eq "$MODE: a slow verifier accepts the password" "slow=ok" "$(grep '^slow=' <<<"$out")"
expect_eq "$MODE: another client of the one worker logs in and runs SELECT 1 meanwhile" \
	"psql=1" "$(grep '^psql=' <<<"$out")"
expect_eq "$MODE: ...done before the slow login's hash is" "order=first" "$(grep '^order=' <<<"$out")"
out=$(hasher hit x x)
expect_eq "$MODE: a wrong password against the slow verifier: PostgreSQL's 28P01" \
	"slow=$fail_text \"ca_slow\"" "$(grep '^slow=' <<<"$out")"
expect_eq "$MODE: the same role and password again logs in" "psql=1" "$(grep '^psql=' <<<"$out")"
expect_eq "$MODE: ...from the worker's cache, while the hasher is busy with the wrong one" \
	"order=first" "$(grep '^order=' <<<"$out")"
out=$(hasher queue nobody_slow "$PW")
expect_eq "$MODE: an unknown role gets the same 28P01 as a wrong password" \
	"other=$fail_text \"nobody_slow\"" "$(grep '^other=' <<<"$out")"
expect_eq "$MODE: ...after a hash on the same thread, queued behind the slow one" \
	"order=after" "$(grep '^order=' <<<"$out")"
# a reload while a password is hashed: the answer is weighed against the
# role's verifier as the new configuration has it (here one the password
# matches, as slow: checked again, and logged in). Two hashes are queued
# so the reload comes before the second is done.
V_NEW=$($PY "$drivers/plain_hasher.py" verifier new_pw_1 1000000)
hasher reload x new_pw_1 >"$T_DIR/reload.out" &
reload_pid=$!
poll 10 grep -q sent "$T_DIR/reload.out"
sed -i "s|^password = ${V_SLOW//|/\|}\$|password = $V_NEW|" "$T_DIR/pgcrab.ini"
kill -HUP "$PGCRAB_PID"
wait $reload_pid
expect_eq "$MODE: a reload mid-hash: the login is checked against the new verifier" \
	"other=ok" "$(grep '^other=' "$T_DIR/reload.out")"
grep -q "configuration reloaded" "$T_DIR/pgcrab.log" || not_ok "$MODE: the reload was taken"
# a shutdown while a password is hashed (a wrong one: the right one is
# cached by now): the client is told, the answer that comes after is
# dropped (the sanitizer build would see a use after free or a leak), and
# PgCrab exits 0 (pgcrab_stop checks)
hasher leave x wrong_pw >"$T_DIR/leave.out" &
leave_pid=$!
poll 10 grep -q sent "$T_DIR/leave.out" # not before it has connected
pgcrab_stop
wait $leave_pid
expect_eq "$MODE: a shutdown ends a login whose password is being hashed" \
	"slow=E:57P01 pgcrab is shutting down" "$(grep '^slow=' "$T_DIR/leave.out")"
# a login that times out while hashed: the answer is dropped when it
# comes, and the password it proved is cached all the same: a later login
# with it is then done within the timeout, which no hash is (tried a few
# times: until the dropped answer has come)
PGCRAB_EXTRA_SECTIONS="$users
[user.ca_slow]
password = $V_SLOW" pgcrab_start --workers 1 "min_connections = 0
max_connections = 4" "auth_type = plain
client_login_timeout = 100ms" || exit 1
expect_eq "$MODE: client_login_timeout ends a login whose password is being hashed" \
	"slow=E:08P01 client_login_timeout: login took too long" "$(hasher leave x "$PW" | grep '^slow=')"
for _ in $(seq 1 20); do
	out=$(login psql "$PGCRAB_PORT" ca_slow "$PW")
	[[ $out == ok ]] && break
	sleep 0.5
done
expect_eq "$MODE: ...then the same password logs in from the cache, within the timeout" ok "$out"

start_mode trust
expect_eq "trust: any password" ok "$(login psql "$PGCRAB_PORT" ca_md5 whatever)"
expect_eq "trust: an unknown role is refused as PostgreSQL does" 'E:28000 role "nobody_here" does not exist' \
	"$(login asyncpg "$PGCRAB_PORT" nobody_here x)"
grep -q "auth_type = trust: anyone who can reach" "$T_DIR/pgcrab.log" \
	&& ok "trust: a warning at start" || not_ok "trust: a warning at start"

# ---- SASLprep --------------------------------------------------------------
# PostgreSQL applies SASLprep to SCRAM passwords; where it fails (here a
# control character in a non-ASCII password) the raw bytes count.
declare -A SASL_PW=([ca_sasl1]='IX-Ⅸ' [ca_sasl2]=$'no\u00a0break' [ca_sasl3]=$'bell\u00e9\a')
pg_admin -c "DROP ROLE IF EXISTS ca_sasl1, ca_sasl2, ca_sasl3" >/dev/null 2>&1
for r in ca_sasl1 ca_sasl2 ca_sasl3; do
	echo "CREATE ROLE $r LOGIN SUPERUSER PASSWORD :'pw';" | pg_admin -v "pw=${SASL_PW[$r]}" >/dev/null
done
# the mapping is real: the prepared form logs in too, and the raw form of
# the refused one does not prepare to anything else
MODE=saslprep
expect_eq "PostgreSQL: 'IX-Ⅸ' logs in" ok "$(login psql "$PG_PORT" ca_sasl1 'IX-Ⅸ')"
expect_eq "PostgreSQL: 'IX-IX' logs in as well (SASLprep maps Ⅸ)" ok "$(login psql "$PG_PORT" ca_sasl1 'IX-IX')"
expect_eq "PostgreSQL: a no-break space maps to a space" ok "$(login psql "$PG_PORT" ca_sasl2 'no break')"
expect_eq "PostgreSQL: the refused password logs in as raw bytes" ok "$(login psql "$PG_PORT" ca_sasl3 "${SASL_PW[ca_sasl3]}")"
expect_match "PostgreSQL: ...and no other form does" 'password authentication failed for user "ca_sasl3"' "$(login psql "$PG_PORT" ca_sasl3 $'bell\u00e9')"

sasl_users=""
for r in ca_sasl1 ca_sasl2 ca_sasl3; do
	sasl_users+="[user.$r]
password = ${SASL_PW[$r]}
"
done
for r in ca_sasl1 ca_sasl2 ca_sasl3; do
	# PgCrab logs in to the SCRAM server as that role (client-side SASLprep)
	pgcrab_stop
	SHARD_USER=$r SHARD_PASSWORD=${SASL_PW[$r]} PGCRAB_EXTRA_SECTIONS=$sasl_users \
		pgcrab_start "min_connections = 0
max_connections = 2" "auth_type = scram-sha-256" || exit 1
	out=$(PGPASSWORD=${SASL_PW[$r]} timeout 30 psql -X -At -d "host=127.0.0.1 port=$PGCRAB_PORT user=$r dbname=$PG_DB sslmode=disable" -c "SELECT current_user" 2>&1)
	# a client logged in with SCRAM against a verifier PgCrab computed
	# from the cleartext (server-side SASLprep), and PgCrab's own server
	# login as $r reached PostgreSQL
	expect_eq "$r: SCRAM to PgCrab and PgCrab to PostgreSQL as $r" "$r" "$out"
	for d in psycopg asyncpg; do
		expect_eq "$r: $d through PgCrab" ok "$(login "$d" "$PGCRAB_PORT" "$r" "${SASL_PW[$r]}")"
	done
done
expect_eq "ca_sasl1: the mapped form logs in to PgCrab too" ok "$(login psql "$PGCRAB_PORT" ca_sasl1 'IX-IX')"
exit 0
