# Sourced by every integration test (tests/integration/t_*.sh). The runner
# (run.sh) starts one PostgreSQL for all tests and exports PG_DIR and
# PG_PORT; a test run on its own (bash tests/integration/t_psql.sh) starts
# and removes a cluster of its own. Each test starts its own PgCrab
# (PGCRAB_BIN, default ./pgcrab) in a directory of its own.
# A test prints "ok - NAME" or "not ok - NAME: why" per check; the runner
# counts those lines.
#
# PGCRAB_TEST_DIRECT=1: no PgCrab at all. pgcrab_start points PGCRAB_PORT at
# PostgreSQL and clients log in as the pool user (mr_krabs/i_love_money), so
# every test can be shown correct against PostgreSQL itself. Checks that
# only make sense with a pooler (the connection cap, PgCrab's memory) are
# skipped there: see PC_DIRECT in the tests.

set -u
LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$LIB_DIR/../.." && pwd)
source "$REPO_DIR/scripts/pgenv.sh"

PC_DIRECT=0
[[ "${PGCRAB_TEST_DIRECT:-0}" == 1 ]] && PC_DIRECT=1
PGCRAB_BIN=${PGCRAB_BIN:-$REPO_DIR/pgcrab}
# who clients log in as: PgCrab's user, or the backend's own in direct mode
if [[ $PC_DIRECT == 1 ]]; then
	PC_USER=$PG_USER PC_PASSWORD=$PG_PASSWORD
else
	PC_USER=pgcrab PC_PASSWORD=pgcrab
fi

# a sanitizer build: its allocator keeps freed memory in quarantine, so
# RSS bounds are reported, not asserted
PC_SANITIZED=0
ldd "$PGCRAB_BIN" 2>/dev/null | grep -q libasan && PC_SANITIZED=1
# rss_within NAME NOW_MB BOUND_MB: ok if NOW <= BOUND. Over the bound in a
# sanitizer build it is a skip, not a pass: ASan's quarantine holds freed
# memory, so the number says nothing about PgCrab's.
rss_within() {
	if awk -v n="$2" -v b="$3" 'BEGIN {exit !(n <= b)}'; then
		ok "$1"
	elif [[ $PC_SANITIZED == 1 ]]; then
		skip "$1" "sanitizer build: RSS $2 MB is over the bound of $3 MB, but ASan's quarantine keeps freed memory resident, so RSS does not measure PgCrab"
	else
		not_ok "$1"
	fi
}

T_NAME=$(basename "$0" .sh)
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pgcrab-test.XXXXXX")
[[ $(id -u) -eq 0 ]] && chmod 755 "$T_DIR"
T_FAILED=0
T_OWN_PG=0
PGCRAB_PID=

ok() { echo "ok - $*"; }
# skip NAME REASON: a check that cannot be made here, as TAP's
# "ok - NAME # SKIP REASON": the runner counts it with the passes (it
# counts "^ok - "), and the line shows that it was not tested and why.
# A '#' in NAME is escaped so that TAP reads the directive after it.
skip() {
	if [[ -z "${2:-}" ]]; then
		not_ok "$1: skipped without a reason"
		return
	fi
	echo "ok - ${1//#/\\#} # SKIP $2"
}
not_ok() {
	echo "not ok - $*"
	T_FAILED=$((T_FAILED + 1))
}
# check NAME CONDITION-COMMAND...: ok if the command succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
	if [[ "$2" == "$3" ]]; then ok "$1"; else not_ok "$1: expected [$2], got [$3]"; fi
}
# expect_match NAME ERE ACTUAL
expect_match() {
	if [[ "$3" =~ $2 ]]; then ok "$1"; else not_ok "$1: expected /$2/, got [$3]"; fi
}

t_cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# background jobs this test left behind (psql sessions, load, samplers)
	local j
	for j in $(jobs -p); do
		[[ "$j" == "${PGCRAB_PID:-}" ]] || kill -KILL "$j" 2>/dev/null
	done
	pgcrab_stop
	if [[ $T_FAILED -gt 0 && -s "$T_DIR/pgcrab.log" ]]; then
		echo "# last lines of the pgcrab log ($T_NAME):"
		tail -40 "$T_DIR/pgcrab.log" | sed 's/^/# /'
	fi
	[[ $T_OWN_PG == 1 ]] && pg_stop
	rm -rf "$T_DIR"
	[[ $T_OWN_PG == 1 ]] && rm -rf "$PG_DIR"
	[[ $T_FAILED -gt 0 && $rc -eq 0 ]] && rc=1
	exit "$rc"
}
trap t_cleanup EXIT
# a runner's timeout (SIGTERM) or Ctrl+C still cleans up
trap 'exit 143' TERM
trap 'exit 130' INT

# run alone: a cluster of our own
if [[ -z "${PG_PORT:-}" || -z "${PG_DIR:-}" ]]; then
	T_OWN_PG=1
	pg_start "$(mktemp -d "${TMPDIR:-/tmp}/pgcrab-pg.XXXXXX")" || {
		not_ok "PostgreSQL starts"
		exit 1
	}
fi

# Client backends still open on the cluster, other than the superuser's own
# bookkeeping.
pg_client_backends() {
	pg_admin -c "SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND usename IS DISTINCT FROM 'postgres'"
}

# pgcrab_start [--workers N] [shard lines] [pgcrab lines] [extra args...]:
# starts PgCrab on a free port (2 workers by default); sets PGCRAB_PORT and
# PGCRAB_PID. The shard lines replace "min_connections = 2 /
# max_connections = 20"; the pgcrab lines go into [pgcrab]; further
# arguments go to pgcrab's command line. In direct mode it only points
# PGCRAB_PORT at PostgreSQL.
pgcrab_start() {
	local workers=2
	if [[ "${1:-}" == --workers ]]; then
		workers=$2
		shift 2
	fi
	local shard_lines=${1:-} pgcrab_lines=${2:-}
	shift $(($# < 2 ? $# : 2))
	if [[ $PC_DIRECT == 1 ]]; then
		PGCRAB_PORT=$PG_PORT
		PGCRAB_PID=
		return 0
	fi
	if [[ ! -x "$PGCRAB_BIN" ]]; then
		not_ok "pgcrab starts: no executable at $PGCRAB_BIN"
		return 1
	fi
	PGCRAB_PORT=$(free_port)
	pgcrab_config "$T_DIR/pgcrab.ini" "$PGCRAB_PORT" "$shard_lines" "$pgcrab_lines"
	echo "=== $(date '+%F %T') pgcrab --workers $workers $*" >>"$T_DIR/pgcrab.log"
	# the config file says everything: no PGCRAB_* variable of the caller's
	env -u PGCRAB_CONFIG_FILE -u PGCRAB_HOST -u PGCRAB_PORT -u PGCRAB_WORKERS \
		-u PGCRAB_POOL_MODE -u PGCRAB_LOG_LEVEL \
		"$PGCRAB_BIN" --config "$T_DIR/pgcrab.ini" --workers "$workers" "$@" \
		>>"$T_DIR/pgcrab.log" 2>&1 &
	PGCRAB_PID=$!
	if ! wait_port "$PGCRAB_PORT" "$PGCRAB_PID"; then
		not_ok "pgcrab starts (port $PGCRAB_PORT)"
		tail -20 "$T_DIR/pgcrab.log" | sed 's/^/# /'
		kill -KILL "$PGCRAB_PID" 2>/dev/null
		wait "$PGCRAB_PID" 2>/dev/null
		PGCRAB_PID=
		return 1
	fi
}

# pgcrab_stop: SIGTERM, up to 10 s, then SIGKILL. PgCrab must still be
# running, exit 0 (SPEC: SIGTERM lets transactions finish, then exit 0) and
# leave no sanitizer report in its log; silent when all is well (tests call
# it inside $(...)). Then waits (bounded) until the
# backends it had open are gone, so the next test starts from a quiet
# cluster.
pgcrab_stop() {
	[[ -n "${PGCRAB_PID:-}" ]] || return 0
	local pid=$PGCRAB_PID rc
	PGCRAB_PID=
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		rc=$?
		not_ok "pgcrab was still running at the end of the test (it had exited with status $rc)"
	else
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
			not_ok "pgcrab exits within 10 s of SIGTERM"
		else
			wait "$pid" 2>/dev/null
			rc=$?
			[[ $rc -eq 0 ]] || not_ok "pgcrab exits 0 on SIGTERM: status $rc"
		fi
	fi
	# sanitizer reports end up in the log: a finding fails the test
	if grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$T_DIR/pgcrab.log"; then
		not_ok "no sanitizer findings in the pgcrab log"
		grep -A20 "Sanitizer\|runtime error" "$T_DIR/pgcrab.log" | head -60 | sed 's/^/# /'
		# report each finding once
		mv "$T_DIR/pgcrab.log" "$T_DIR/pgcrab.log.$RANDOM"
		: >"$T_DIR/pgcrab.log"
	fi
	for _ in $(seq 1 50); do
		[[ "$(pg_client_backends)" == 0 ]] && break
		sleep 0.1
	done
	return 0
}

# PC_CONN [extra conninfo]: the libpq conninfo of a client of PgCrab.
PC_CONN() { echo "host=127.0.0.1 port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=$PG_DB connect_timeout=5 ${1:-}"; }

# psql through PgCrab; stops at the first error.
pc_psql() {
	timeout 60 psql -X -q -At -v ON_ERROR_STOP=1 -d "$(PC_CONN)" "$@"
}
# pgbench through PgCrab: pc_pgbench SECONDS-BOUND pgbench-args...
pc_pgbench() {
	local bound=$1
	shift
	PGPASSWORD=$PC_PASSWORD PGCONNECT_TIMEOUT=5 timeout "$bound" \
		pgbench -h 127.0.0.1 -p "$PGCRAB_PORT" -U "$PC_USER" "$@" "$PG_DB"
}
# psql straight to PostgreSQL as the pool user.
pg_psql() {
	PGPASSWORD=$PG_PASSWORD timeout 60 psql -X -q -At -v ON_ERROR_STOP=1 \
		-d "host=127.0.0.1 port=$PG_PORT user=$PG_USER dbname=$PG_DB connect_timeout=5" "$@"
}

# The SQLSTATE psql reports for a command (VERBOSITY verbose prints it).
sqlstate_of() {
	timeout 30 psql -X -At -v VERBOSITY=verbose "$@" 2>&1 | grep -oE '(ERROR|FATAL):  [0-9A-Z]{5}' | head -1 | awk '{print $2}'
}

# Pulls "number of transactions actually processed", "number of failed
# transactions" and "tps" out of pgbench's output into BENCH_PROCESSED,
# BENCH_FAILED and BENCH_TPS (empty when absent).
pgbench_numbers() {
	BENCH_PROCESSED=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$1")
	BENCH_FAILED=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$1")
	BENCH_TPS=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$1" | head -1)
}

# poll SECONDS COMMAND...: until COMMAND succeeds, every 0.1 s.
poll() {
	local n=$(($(awk "BEGIN {print int($1 * 10)}") + 1))
	shift
	for _ in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
