# Live reload, by SIGHUP and by the console's RELOAD, under pgbench: a
# pool size, a new shard, a removed user, a timeout and a new password take
# effect without a failed transaction; a broken file changes nothing and
# says where it is broken; a key that needs a restart keeps its value; a
# removed shard's client finishes its transaction, then gets 08006.
source "$(dirname "$0")/lib.sh"

if [[ $PC_DIRECT == 1 ]]; then
	skip "live reload" "PostgreSQL's reload is not PgCrab's"
	exit 0
fi

INI=$T_DIR/pgcrab.ini
# write_ini: the whole file from the variables below
write_ini() {
	{
		cat <<INI
[pgcrab]
host = 127.0.0.1
port = $PORT_LINE
admin_users = pgcrab
stats_users = viewer
client_idle_timeout = $IDLE_TIMEOUT
query_wait_timeout = 30s

[shard.$PG_DB]
host = $PG_HOST
port = $PG_PORT
user = $PG_USER
password = $PG_PASSWORD
min_connections = 0
max_connections = $POOL_SIZE
INI
		for s in $SHARDS; do
			printf '\n[shard.%s]\nhost = %s\nport = %s\ndatabase = %s\nuser = %s\npassword = %s\nmax_connections = 4\n' \
				"$s" "$PG_HOST" "$PG_PORT" "$OTHER_DB" "$PG_USER" "$PG_PASSWORD"
		done
		printf '\n[user.pgcrab]\npassword = pgcrab\n\n[user.viewer]\npassword = viewer\n'
		[[ -n $ALICE ]] && printf '\n[user.alice]\npassword = alice\n'
		printf '\n[user.bob]\npassword = %s\n' "$BOB_PASSWORD"
		printf '%s\n' "${BROKEN:-}"
	} >"$INI"
}

console() { # console SQL: the console's answer, errors and notices included
	PGPASSWORD=pgcrab timeout 30 psql -X -At -v VERBOSITY=verbose -h 127.0.0.1 \
		-p "$PGCRAB_PORT" -U pgcrab pgcrab -c "$1" 2>&1
}
as() { # as USER PASSWORD DBNAME SQL
	PGPASSWORD=$2 timeout 30 psql -X -At -v VERBOSITY=verbose -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$PGCRAB_PORT" -U "$1" -d "$3" -c "$4" 2>&1
}
# login_code USER PASSWORD DBNAME: the SQLSTATE of a refused login ("ok"
# when it is not refused); psql and libpq drivers do not give a login's code
login_code() {
	timeout 30 /usr/bin/python3 - "$PGCRAB_PORT" "$@" <<'PY'
import asyncio, sys, asyncpg
port, user, password, db = sys.argv[1:5]
async def main():
    try:
        c = await asyncpg.connect(host="127.0.0.1", port=int(port), user=user,
                                  password=password, database=db, ssl=False, timeout=5)
        await c.close()
        print("ok")
    except asyncpg.PostgresError as e:
        print(e.sqlstate)
asyncio.run(main())
PY
}
reloads_logged() { grep -c 'configuration reloaded\|reload refused' "$T_DIR/pgcrab.log"; }
reloaded_since() { test "$(reloads_logged)" -gt "$1"; }
# reload: by HOW, sets RELOAD_OUT (the console's answer, or the log's lines
# of this reload)
reload() {
	local before
	before=$(reloads_logged)
	if [[ $HOW == sighup ]]; then
		kill -HUP "$PGCRAB_PID"
		poll 30 reloaded_since "$before" || not_ok "$HOW: a reload is logged"
		RELOAD_OUT=$(grep 'reload' "$T_DIR/pgcrab.log" | tail -n 20)
	else
		RELOAD_OUT=$(console RELOAD)
	fi
}
# the pool user's server connections to the main shard's database
servers() {
	pg_admin -c "SELECT count(*) FROM pg_stat_activity WHERE usename = '$PG_USER'
		AND datname = '$PG_DB' AND backend_type = 'client backend'"
}
# the shards added and removed live in a database of their own, so that
# the main shard's connections can be counted alone
OTHER_DB=pgcrab_reload_other
PGOPTIONS="-c client_min_messages=warning" pg_admin -c "DROP DATABASE IF EXISTS $OTHER_DB WITH (FORCE)" \
	-c "CREATE DATABASE $OTHER_DB OWNER $PG_USER" >/dev/null || { not_ok "a second database"; exit 1; }
database_col() { # database_col DB COLUMN: SHOW DATABASES's value
	PGPASSWORD=pgcrab timeout 20 psql -X -h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab pgcrab \
		-c "SHOW DATABASES" --csv 2>/dev/null | awk -F, -v db="$1" -v col="$2" \
		'NR == 1 {for (i = 1; i <= NF; i++) if ($i == col) c = i} $1 == db {print $c}'
}
config_value() { # config_value KEY: SHOW CONFIG's value
	console "SHOW CONFIG" | awk -F'|' -v k="$1" '$1 == k {print $2}'
}
# session NAME USER PASSWORD DB: a psql kept open, fed through a fifo
session() {
	mkfifo "$T_DIR/$1.in"
	PGPASSWORD=$3 timeout 120 psql -X -At -v VERBOSITY=verbose -h 127.0.0.1 \
		-p "$PGCRAB_PORT" -U "$2" -d "$4" <"$T_DIR/$1.in" >"$T_DIR/$1.out" 2>&1 &
	eval "exec {fd_$1}>\"\$T_DIR/\$1.in\""
}
say() { # say NAME SQL
	local fd="fd_$1"
	echo "$2" >&"${!fd}"
}
said() { grep -q -- "$2" "$T_DIR/$1.out"; }

printf 'SELECT pg_sleep(0.005);\n' >"$T_DIR/sleep.sql"

for HOW in sighup console; do
	IDLE_TIMEOUT=0 POOL_SIZE=2 SHARDS=gone ALICE=1 BOB_PASSWORD=b1 BROKEN=
	PGCRAB_PORT=$(free_port)
	PORT_LINE=$PGCRAB_PORT
	write_ini
	echo "=== $(date '+%F %T') pgcrab ($HOW)" >>"$T_DIR/pgcrab.log"
	"$PGCRAB_BIN" --config "$INI" --workers 2 >>"$T_DIR/pgcrab.log" 2>&1 &
	PGCRAB_PID=$!
	wait_port "$PGCRAB_PORT" "$PGCRAB_PID" || { not_ok "$HOW: pgcrab starts"; exit 1; }

	pc_pgbench 120 -n -f "$T_DIR/sleep.sql" -c 8 -T 25 >"$T_DIR/bench.out" 2>&1 &
	bench=$!
	session alice alice alice "$PG_DB"
	say alice "SELECT 'alice-' || 1;"
	session gone pgcrab pgcrab gone
	session gone_idle pgcrab pgcrab gone
	say gone_idle "SELECT 'idle-' || 1;"
	poll 10 said alice alice-1 || not_ok "$HOW: alice's session works"
	poll 10 said gone_idle idle-1 || not_ok "$HOW: a session on shard gone works"
	sleep 1
	check "$HOW: pool size 2 holds under pgbench" test "$(servers)" -le 2

	if [[ $HOW == console ]]; then
		out=$(PGPASSWORD=viewer timeout 30 psql -X -At -v VERBOSITY=verbose -h 127.0.0.1 \
			-p "$PGCRAB_PORT" -U viewer pgcrab -c RELOAD 2>&1)
		expect_match "RELOAD is refused to stats_users with 42501" "ERROR:  42501" "$out"
	fi

	# pool size
	POOL_SIZE=5
	write_ini
	reload
	grows() { test "$(servers)" -gt 2; }
	check "$HOW: a larger pool_size opens more server connections" poll 15 grows
	check "$HOW: ...no more than the new size" test "$(servers)" -le 5
	pool_servers() { # SHOW POOLS: the main shard's sv_active + sv_idle + sv_used + sv_login
		PGPASSWORD=pgcrab timeout 20 psql -X -h 127.0.0.1 -p "$PGCRAB_PORT" -U pgcrab pgcrab \
			-c "SHOW POOLS" --csv 2>/dev/null | awk -F, -v db="$PG_DB" \
			'NR == 1 {for (i = 1; i <= NF; i++) c[$i] = i}
			 $1 == db {print $c["sv_active"] + $c["sv_idle"] + $c["sv_used"] + $c["sv_login"]}'
	}
	pool_grew() { test "$(pool_servers)" -gt 2 -a "$(pool_servers)" -le 5; }
	check "$HOW: SHOW POOLS counts the larger pool's servers (3..5)" poll 10 pool_grew
	expect_eq "$HOW: SHOW DATABASES shows the new pool_size" 5 "$(database_col "$PG_DB" pool_size)"

	# a shard added
	expect_match "$HOW: shard extra is unknown before" "3D000" "$(login_code pgcrab pgcrab extra)"
	SHARDS="gone extra"
	write_ini
	reload
	expect_eq "$HOW: a shard added by the reload serves new clients" "42" "$(as pgcrab pgcrab extra 'SELECT 42')"

	# a user removed: new logins refused, the open session goes on
	ALICE=
	write_ini
	reload
	expect_match "$HOW: a removed user's new login is refused as PostgreSQL does" "28P01|28000" \
		"$(login_code alice alice "$PG_DB")"
	say alice "SELECT 'alice-' || 2;"
	check "$HOW: the removed user's open session still works" poll 10 said alice alice-2

	# a password replaced
	expect_eq "$HOW: bob logs in with his password" 1 "$(as bob b1 "$PG_DB" 'SELECT 1')"
	BOB_PASSWORD=b2
	write_ini
	reload
	expect_eq "$HOW: the old password is refused" 28P01 "$(login_code bob b1 "$PG_DB")"
	expect_eq "$HOW: the new password is accepted" 1 "$(as bob b2 "$PG_DB" 'SELECT 1')"

	# a timeout: client_idle_timeout now closes an idle client
	IDLE_TIMEOUT=1s
	write_ini
	reload
	out=$(PGPASSWORD=b2 timeout 30 psql -X -At -v VERBOSITY=verbose -h 127.0.0.1 -p "$PGCRAB_PORT" \
		-U bob -d "$PG_DB" -c 'SELECT 1' -c '\! sleep 3' -c 'SELECT 2' 2>&1)
	expect_match "$HOW: a client_idle_timeout set by reload closes an idle client" "57P05|client_idle_timeout" "$out"
	expect_eq "$HOW: SHOW CONFIG shows the new client_idle_timeout" 1s "$(config_value client_idle_timeout)"
	IDLE_TIMEOUT=0
	write_ini
	reload

	# a broken file: refused whole, with its line; nothing changes
	BROKEN="[shard.broken]
port = 99999"
	POOL_SIZE=3
	write_ini
	line=$(grep -n '^port = 99999' "$INI" | cut -d: -f1)
	reload
	if [[ $HOW == console ]]; then
		expect_match "RELOAD answers a broken file with F0000, the file and the line" \
			"ERROR:  F0000: .*pgcrab.ini:$line:.*port" "$RELOAD_OUT"
	fi
	check "$HOW: the log says the reload was refused and where" \
		grep -q "reload refused.*pgcrab.ini:$line:" "$T_DIR/pgcrab.log"
	expect_eq "$HOW: after a broken file the pool size is the old one" 5 "$(database_col "$PG_DB" pool_size)"
	expect_eq "$HOW: ...bob's password is the old one" 1 "$(as bob b2 "$PG_DB" 'SELECT 1')"
	expect_eq "$HOW: ...shard extra still serves" 7 "$(as pgcrab pgcrab extra 'SELECT 7')"
	BROKEN= POOL_SIZE=5

	# a key that needs a restart: reported, and its old value stays
	other=$(free_port)
	PORT_LINE=$other
	write_ini
	reload
	expect_match "$HOW: a changed port is reported as needing a restart" \
		"port changed: it needs a restart" "$RELOAD_OUT"
	expect_eq "$HOW: ...and PgCrab still listens on the old one" 1 "$(as bob b2 "$PG_DB" 'SELECT 1')"
	expect_eq "$HOW: ...and SHOW CONFIG shows the old one" "$PGCRAB_PORT" "$(config_value port)"
	PORT_LINE=$PGCRAB_PORT

	# a shard removed: its client finishes its transaction, then 08006
	say gone "BEGIN;"
	say gone "SELECT 'in-tx-' || 1;"
	poll 10 said gone in-tx-1 || not_ok "$HOW: a transaction on shard gone begins"
	SHARDS=extra
	write_ini
	reload
	say gone_idle "SELECT 'idle-' || 2;" # psql reads the FATAL as it sends this
	check "$HOW: an idle client of a removed shard gets 08006" poll 10 said gone_idle "FATAL:  08006: shard \"gone\" was removed"
	check "$HOW: ...and is not served again" bash -c "! grep -q idle-2 '$T_DIR/gone_idle.out'"
	say gone "SELECT 'in-tx-' || 2;"
	check "$HOW: a removed shard's client finishes its transaction" poll 10 said gone in-tx-2
	say gone "COMMIT;"
	say gone "SELECT 'after-' || 1;"
	check "$HOW: ...then gets 08006 saying the shard was removed" poll 10 said gone "FATAL:  08006: shard \"gone\" was removed from the configuration"
	check "$HOW: ...and nothing more is served to it" bash -c "! grep -q after-1 '$T_DIR/gone.out'"
	expect_match "$HOW: new logins to a removed shard are refused" "3D000" "$(login_code pgcrab pgcrab gone)"
	check "$HOW: SHOW DATABASES no longer lists the removed shard" test -z "$(database_col gone pool_size)"

	wait "$bench"
	rc=$?
	out=$(cat "$T_DIR/bench.out")
	pgbench_numbers "$out"
	expect_eq "$HOW: pgbench ran through every reload (exit status)" 0 "$rc"
	check "$HOW: pgbench processed transactions" test "${BENCH_PROCESSED:-0}" -gt 0
	expect_eq "$HOW: pgbench saw no failed transaction" 0 "${BENCH_FAILED:-missing}"
	eval 'exec {fd_alice}>&- {fd_gone}>&- {fd_gone_idle}>&-'
	rm -f "$T_DIR"/*.in
	pgcrab_stop
done
