#!/usr/bin/env bash
# PostgreSQL's own regression suite (pg_regress, installcheck style) run
# against PostgreSQL directly and through poolers, to find what a pooler
# changes. See docs/testing.md, "Conformance".
#
#   scripts/conformance.sh                 make conformance: the whole
#                                          parallel_schedule on direct,
#                                          transaction, session, pgbouncer;
#                                          prints a comparison table
#   scripts/conformance.sh --check         make check's slice:
#                                          tests/conformance/check_schedule on
#                                          direct, transaction, session; one
#                                          TAP line per test per PgCrab mode
#   --targets "direct session"             only these targets (direct is
#                                          always run: it is the baseline)
#   --schedule FILE                        another schedule
#
# Targets: direct (PostgreSQL itself), transaction and session (PgCrab in
# that pool_mode), pgbouncer (PgBouncer, pool_mode = transaction,
# server_reset_query_always = 0, server_reset_query left at its default).
#
# pg_regress logs in as postgres, the cluster's bootstrap superuser (given
# a password here; the suite creates roles, tablespaces and C functions, and
# a few expected outputs assume the user owns the system catalogs, as in
# `make installcheck`), directly, or as pgcrab/pgcrab through a pooler
# whose server connections log in as postgres: the pool user is a superuser
# in this throwaway cluster. Every target gets a freshly created database
# "regression" (and the roles, tablespaces and databases a previous run left
# behind are dropped), so the runs are independent.
#
# Lists (one test per line, then its reason; '#' starts a comment):
#   tests/conformance/never.txt            cannot pass through any pooler:
#                                          reported as SKIP with the reason
#   tests/conformance/known_<mode>.txt     fails through PgCrab in that mode
#                                          today: reported as TODO
# Results: build/conformance/<target>/ (build/conformance-check/ for
# --check): pg_regress.log, regression.out, regression.diffs.
# PGCRAB_BIN: the pgcrab binary (default ./pgcrab).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
source "$REPO/scripts/pgenv.sh"
PGCRAB_BIN=${PGCRAB_BIN:-$REPO/pgcrab}
PG_REGRESS=${PG_REGRESS:-/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress}
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
LISTS=$REPO/tests/conformance
DB=regression
# the backend login of every target (see above)
REG_USER=postgres
REG_PASSWORD=regress_superuser_pw

mode=full
targets="direct transaction session pgbouncer"
schedule=
while [[ $# -gt 0 ]]; do
	case $1 in
	--check) mode=check targets="direct transaction session" ;;
	--targets) targets="direct ${2//direct/}"; shift ;;
	--schedule) schedule=$2; shift ;;
	*) echo "conformance: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

# In check mode every problem is a "not ok" line plus the summary, so that
# make check counts it; in full mode a message and exit status 2.
fatal() {
	if [[ $mode == check ]]; then
		echo "not ok - conformance: $*"
		echo "conformance: 0 passed, 1 failed"
	else
		echo "conformance: $*" >&2
	fi
	exit 2
}

RESULTS=${CONFORMANCE_RESULTS:-$REPO/build/conformance$([[ $mode == check ]] && echo -check)}
SRC=$("$REPO/scripts/pg_regress_src.sh") || fatal "the regression suite's sources are not available (scripts/pg_regress_src.sh)"
[[ -x "$PG_REGRESS" ]] || fatal "no pg_regress at $PG_REGRESS"
if [[ -z "$schedule" ]]; then
	if [[ $mode == check ]]; then schedule=$LISTS/check_schedule; else schedule=$SRC/regress/parallel_schedule; fi
fi
[[ -f "$schedule" ]] || fatal "no schedule $schedule"
[[ " $targets " == *" transaction "* || " $targets " == *" session "* ]] &&
	{ [[ -x "$PGCRAB_BIN" ]] || fatal "no pgcrab at $PGCRAB_BIN (make)"; }
[[ " $targets " == *" pgbouncer "* ]] &&
	{ [[ -x "$PGBOUNCER" ]] || fatal "no pgbouncer (bench/deps.sh installs it)"; }

top=$(mktemp -d /tmp/pgcrab-conf.XXXXXX)
chmod 755 "$top"
[[ $(id -u) -eq 0 ]] && chown postgres: "$top"
POOLER_PID=
stop_pooler() {
	[[ -n "$POOLER_PID" ]] || return 0
	# PgBouncer runs under runuser, which does not pass the signal on:
	# stop PgBouncer itself by its pidfile first
	local pf=$top/pgbouncer/pgbouncer.pid
	[[ -s "$pf" ]] && kill -TERM "$(cat "$pf")" 2>/dev/null
	kill -TERM "$POOLER_PID" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$POOLER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$POOLER_PID" 2>/dev/null
	wait "$POOLER_PID" 2>/dev/null
	POOLER_PID=
}
cleanup() {
	stop_pooler
	pg_stop
	[[ -n "${PG_DIR:-}" ]] && rm -rf "$PG_DIR"
	rm -rf "$top"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pg_start "$top/pg" || fatal "PostgreSQL 15 does not start"
pg_admin -c "ALTER ROLE $REG_USER PASSWORD '$REG_PASSWORD'" >/dev/null ||
	fatal "cannot give $REG_USER a password"

# reset_db: a new, empty database "regression", as pg_regress itself would
# create it (it does not with --use-existing), and nothing shared left over
# from an earlier target: the regress_* roles, tablespaces and databases.
# intervalstyle is set on the database rather than only through PGOPTIONS
# (pg_regress sends "-c intervalstyle=postgres_verbose" in the startup
# packet's options), because PgBouncer 1.18 can only ignore options; all
# targets get the same database setting, so the comparison stays fair.
reset_db() {
	local d r t s
	# a subscription (a failed run of the subscription test leaves one)
	# keeps the database from being dropped: detach it from its slot first
	for s in $(PG_ADMIN_DB=$DB pg_admin -c "SELECT quote_ident(subname) FROM pg_subscription s
			JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database()" 2>/dev/null); do
		PG_ADMIN_DB=$DB pg_admin -c "ALTER SUBSCRIPTION $s DISABLE" \
			-c "ALTER SUBSCRIPTION $s SET (slot_name = NONE)" -c "DROP SUBSCRIPTION $s" >/dev/null
	done
	# a prepared transaction (the prepared_xacts test may leave one, now that
	# the test clusters allow them) keeps it too: roll it back in its database
	local g
	while read -r g; do
		[[ -n "$g" ]] && PG_ADMIN_DB=$DB pg_admin -c "ROLLBACK PREPARED '${g//\'/\'\'}'" >/dev/null
	done < <(pg_admin -c "SELECT gid FROM pg_prepared_xacts WHERE database = '$DB'" 2>/dev/null)
	pg_admin -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null || return 1
	for d in $(pg_admin -c "SELECT quote_ident(datname) FROM pg_database WHERE datname LIKE 'regress%'"); do
		pg_admin -c "DROP DATABASE $d WITH (FORCE)" >/dev/null
	done
	for t in $(pg_admin -c "SELECT quote_ident(spcname) FROM pg_tablespace WHERE spcname LIKE 'regress%'"); do
		pg_admin -c "DROP TABLESPACE $t" >/dev/null
	done
	for r in $(pg_admin -c "SELECT quote_ident(rolname) FROM pg_roles WHERE rolname LIKE 'regress%'"); do
		for d in postgres template1 "$PG_DB"; do
			PG_ADMIN_DB=$d pg_admin -c "DROP OWNED BY $r CASCADE" >/dev/null 2>&1
		done
		pg_admin -c "DROP ROLE $r" >/dev/null
	done
	pg_admin -c "CREATE DATABASE $DB OWNER $REG_USER TEMPLATE template0" \
		-c "ALTER DATABASE $DB SET lc_messages TO 'C'" \
		-c "ALTER DATABASE $DB SET lc_monetary TO 'C'" \
		-c "ALTER DATABASE $DB SET lc_numeric TO 'C'" \
		-c "ALTER DATABASE $DB SET lc_time TO 'C'" \
		-c "ALTER DATABASE $DB SET bytea_output TO 'hex'" \
		-c "ALTER DATABASE $DB SET timezone_abbreviations TO 'Default'" \
		-c "ALTER DATABASE $DB SET intervalstyle TO 'postgres_verbose'" >/dev/null
}

# start_pgcrab MODE: PgCrab in front of the cluster, one shard "regression";
# room for the parallel schedule's 20 tests at once, each of which may hold
# two connections for a moment (psql's \c opens the new one first).
start_pgcrab() {
	local port dir=$top/$1
	port=$(free_port)
	PG_DB=$DB SHARD_USER=$REG_USER SHARD_PASSWORD=$REG_PASSWORD pgcrab_config "$dir/pgcrab.ini" "$port" "min_connections = 2
max_connections = 60" "pool_mode = $1
log_level = warn
max_client_conn = 500"
	env -u PGCRAB_CONFIG_FILE -u PGCRAB_HOST -u PGCRAB_PORT -u PGCRAB_WORKERS \
		-u PGCRAB_POOL_MODE -u PGCRAB_LOG_LEVEL \
		"$PGCRAB_BIN" --config "$dir/pgcrab.ini" --workers 2 >"$dir/pooler.log" 2>&1 &
	POOLER_PID=$!
	TARGET_PORT=$port
	wait_port "$port" "$POOLER_PID"
}

# start_pgbouncer: PgBouncer 1.18 in transaction mode with
# server_reset_query_always = 0 (its default: the reset query only runs in
# session mode) and server_reset_query at its default (DISCARD ALL). It
# refuses to run as root: as root it runs as postgres.
start_pgbouncer() {
	local port dir=$top/pgbouncer
	port=$(free_port)
	echo '"pgcrab" "pgcrab"' >"$dir/userlist.txt"
	cat >"$dir/pgbouncer.ini" <<INI
[databases]
$DB = host=$PG_HOST port=$PG_PORT dbname=$DB user=$REG_USER password=$REG_PASSWORD

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = plain
auth_file = $dir/userlist.txt
pool_mode = transaction
server_reset_query_always = 0
default_pool_size = 60
max_client_conn = 500
ignore_startup_parameters = options
logfile = $dir/pooler.log
pidfile = $dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
log_stats = 0
INI
	[[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"
	as_pg "$PGBOUNCER" -q "$dir/pgbouncer.ini" 2>"$dir/stderr.log" &
	POOLER_PID=$!
	TARGET_PORT=$port
	wait_port "$port" "$POOLER_PID"
}

# run_target NAME: fresh database, the target started, pg_regress over the
# schedule; leaves NAME's results in $top/NAME/out and its test list with
# statuses in $top/NAME/status ("test ok|failed").
run_target() {
	local t=$1 dir=$top/$1 user=pgcrab password=pgcrab started
	mkdir -p "$dir/out/testtablespace"
	[[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"
	reset_db || { echo "could not recreate the database" >"$dir/error"; return 1; }
	case $t in
	direct) TARGET_PORT=$PG_PORT user=$REG_USER password=$REG_PASSWORD ;;
	transaction | session) start_pgcrab "$t" ;;
	pgbouncer) start_pgbouncer ;;
	esac || {
		echo "$t did not start" >"$dir/error"
		stop_pooler
		return 1
	}
	started=$SECONDS
	# as the cluster's owner: the server writes into the output directory
	# (COPY TO, the tablespace test) and reads the inputs
	as_pg env PGPASSWORD="$password" timeout -k 10 1200 "$PG_REGRESS" \
		--use-existing --dbname=$DB --host=127.0.0.1 --port="$TARGET_PORT" --user="$user" \
		--bindir="$PG_BIN" --inputdir="$SRC/regress" --outputdir="$dir/out" \
		--dlpath="$SRC/lib" --schedule="$schedule" >"$dir/pg_regress.log" 2>&1
	echo $? >"$dir/rc"
	echo $((SECONDS - started)) >"$dir/seconds"
	stop_pooler
	# PG15's lines: "test NAME ... ok 12 ms", "     NAME ... FAILED 34 ms",
	# "     NAME ... failed (ignored)"
	sed -nE 's/^(test| +)[ ]*([A-Za-z0-9_.]+) +\.\.\. +(ok|FAILED|failed \(ignored\)).*/\2 \3/p' \
		"$dir/pg_regress.log" | sed -E 's/ FAILED$/ failed/; s/ failed \(ignored\)$/ failed/' >"$dir/status"
	mkdir -p "$RESULTS/$t"
	cp "$dir/pg_regress.log" "$RESULTS/$t/pg_regress.log"
	for f in regression.diffs regression.out; do
		rm -f "$RESULTS/$t/$f"
		[[ -f "$dir/out/$f" ]] && cp "$dir/out/$f" "$RESULTS/$t/"
	done
	[[ -s "$dir/pooler.log" ]] && cp "$dir/pooler.log" "$RESULTS/$t/"
	if [[ ! -s "$dir/status" ]]; then
		echo "pg_regress ran no test (exit $(<"$dir/rc")); see $RESULTS/$t/pg_regress.log" >"$dir/error"
		return 1
	fi
	return 0
}

# list_reason FILE TEST: the reason FILE gives for TEST; fails when absent.
list_reason() {
	[[ -f "$1" ]] || return 1
	awk -v t="$2" '
		{ sub(/#.*/, "") }
		$1 == t { $1 = ""; sub(/^[ \t]+/, ""); print (length($0) ? $0 : "(no reason given)"); found = 1; exit }
		END { exit !found }' "$1"
}
status_of() { awk -v t="$2" '$1 == t {print $2; exit}' "$top/$1/status"; }
# first_diff TARGET TEST: a hint at why TEST failed: the first error or
# warning its diff adds, else its first changed line.
first_diff() {
	awk -v t="$2" '
		/^diff -U3 / { p = ($3 ~ "/expected/" t "(_[0-9]+)?\\.out$"); next }
		!p || /^(\+\+\+|---) / { next }
		/^\+(ERROR|WARNING|FATAL)/ { print substr($0, 2); found = 1; exit }
		/^[-+]/ && !first { first = $0 }
		END { if (!found) print (first ? "output differs: " first : "") }' \
		"$RESULTS/$1/regression.diffs" 2>/dev/null | head -1 | cut -c1-150
}

run_all() {
	local t
	rm -rf "$RESULTS"
	for t in $targets; do
		echo "# conformance: $t ($(basename "$schedule"))" >&2
		mkdir -p "$top/$t"
		run_target "$t"
		[[ -f "$top/$t/error" ]] && echo "# conformance: $t: $(<"$top/$t/error")" >&2
		[[ -f "$top/$t/seconds" ]] && echo "# conformance: $t took $(<"$top/$t/seconds") s" >&2
	done
}

# The check slice's TAP lines: for each PgCrab mode, one line per test.
report_check() {
	local pass=0 fail=0 m t st dst reason
	if [[ -f "$top/direct/error" ]]; then
		fatal "direct run: $(<"$top/direct/error")"
	fi
	for m in transaction session; do
		[[ " $targets " == *" $m "* ]] || continue
		if [[ -f "$top/$m/error" ]]; then
			echo "not ok - conformance $m: $(<"$top/$m/error")"
			fail=$((fail + 1))
			continue
		fi
		while read -r t dst; do
			st=$(status_of "$m" "$t")
			if reason=$(list_reason "$LISTS/never.txt" "$t"); then
				echo "ok - conformance $m $t # SKIP never through a pooler: $reason"
				pass=$((pass + 1))
			elif [[ "$st" == ok ]]; then
				if reason=$(list_reason "$LISTS/known_$m.txt" "$t"); then
					echo "ok - conformance $m $t # known failure passed this run: once it passes every run, remove it from tests/conformance/known_$m.txt"
				else
					echo "ok - conformance $m $t"
				fi
				pass=$((pass + 1))
			elif [[ "$dst" != ok ]]; then
				echo "ok - conformance $m $t # fails directly too (not PgCrab's doing)"
				pass=$((pass + 1))
			elif reason=$(list_reason "$LISTS/known_$m.txt" "$t"); then
				echo "ok - conformance $m $t # TODO known: $reason"
				pass=$((pass + 1))
			else
				echo "not ok - conformance $m $t: fails through PgCrab ($m), passes directly ($(first_diff "$m" "$t"); diff in ${RESULTS#"$REPO"/}/$m/regression.diffs)"
				fail=$((fail + 1))
			fi
		done <"$top/direct/status"
	done
	echo "conformance: $pass passed, $fail failed"
	[[ $fail -eq 0 ]]
}

# make conformance's table: per target the failures, and those that fail
# through the pooler only.
report_full() {
	local t n total direct_failed only known unknown line reason rc=0
	total=$(wc -l <"$top/direct/status" 2>/dev/null || echo 0)
	direct_failed=$(awk '$2 != "ok" {print $1}' "$top/direct/status" 2>/dev/null | xargs)
	echo
	echo "conformance: PostgreSQL $(<"$SRC/VERSION") regression suite, $(basename "$schedule"), $total tests"
	printf '%-12s %7s %7s %13s %7s %7s %6s\n' target failed "only-here" "(never-list)" known unknown seconds
	for t in $targets; do
		if [[ -f "$top/$t/error" ]]; then
			printf '%-12s %s\n' "$t" "did not run: $(<"$top/$t/error")"
			rc=1
			continue
		fi
		n=$(awk '$2 != "ok"' "$top/$t/status" | wc -l)
		if [[ $t == direct ]]; then
			printf '%-12s %7s %7s %13s %7s %7s %6s\n' "$t" "$n" - - - - "$(<"$top/$t/seconds")"
			continue
		fi
		only=() never=() known=() unknown=()
		while read -r name st; do
			[[ "$st" == ok ]] && continue
			[[ "$(status_of direct "$name")" == ok ]] || continue
			only+=("$name")
			if list_reason "$LISTS/never.txt" "$name" >/dev/null; then never+=("$name")
			elif list_reason "$LISTS/known_$t.txt" "$name" >/dev/null; then known+=("$name")
			else unknown+=("$name"); fi
		done <"$top/$t/status"
		printf '%-12s %7s %7s %13s %7s %7s %6s\n' "$t" "$n" "${#only[@]}" "${#never[@]}" "${#known[@]}" \
			"${#unknown[@]}" "$(<"$top/$t/seconds")"
		eval "ONLY_$t=(\"\${only[@]}\")"
		[[ $t != pgbouncer && ${#unknown[@]} -gt 0 ]] && rc=1
	done
	echo
	echo "direct failures (the baseline; not counted against any pooler): ${direct_failed:-none}"
	for t in $targets; do
		[[ $t == direct || -f "$top/$t/error" ]] && continue
		eval "only=(\"\${ONLY_$t[@]}\")"
		echo
		echo "$t: ${#only[@]} fail through the pooler and pass directly (diffs: ${RESULTS#"$REPO"/}/$t/regression.diffs)"
		for name in "${only[@]}"; do
			if reason=$(list_reason "$LISTS/never.txt" "$name"); then
				echo "  SKIP    $name: $reason"
			elif [[ $t != pgbouncer ]] && reason=$(list_reason "$LISTS/known_$t.txt" "$name"); then
				echo "  known   $name: $reason"
			else
				echo "  FAIL    $name: $(first_diff "$t" "$name")"
			fi
		done
		# list entries that pass now, so the lists shrink
		if [[ $t != pgbouncer && -f "$LISTS/known_$t.txt" ]]; then
			while read -r name _; do
				[[ -z "$name" ]] && continue
				[[ "$(status_of "$t" "$name")" == ok ]] &&
					echo "  PASSES  $name is in tests/conformance/known_$t.txt but passed this run: once it passes every run, remove it"
			done < <(sed 's/#.*//' "$LISTS/known_$t.txt")
		fi
	done
	echo
	echo "never.txt (cannot pass through any pooler; run anyway, reported as SKIP):"
	sed 's/#.*//' "$LISTS/never.txt" 2>/dev/null | awk 'NF {t = $1; $1 = ""; printf "  SKIP    %s:%s\n", t, $0}'
	return $rc
}

run_all
if [[ $mode == check ]]; then
	report_check
else
	report_full
fi
