# Sourced by every integration test (tests/integration/t_*.sh). The runner
# has started one PostgreSQL for all tests and exported PG_DIR and PG_PORT;
# each test starts its own PgCrab (PGCRAB_BIN) in a directory of its own.
# A test prints "ok - NAME" or "not ok - NAME: why" per check.

set -u
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/pgenv.sh"

T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pgcrab-test.XXXXXX")
[[ $(id -u) -eq 0 ]] && chmod 755 "$T_DIR"
T_FAILED=0
PGCRAB_PID=

ok() { echo "ok - $*"; }
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

# pgcrab_start [--workers N] [shard lines] [pgcrab lines]: starts PgCrab on
# a free port; sets PGCRAB_PORT.
pgcrab_start() {
	local workers=2
	if [[ "${1:-}" == --workers ]]; then
		workers=$2
		shift 2
	fi
	PGCRAB_PORT=$(free_port)
	pgcrab_config "$T_DIR/pgcrab.ini" "$PGCRAB_PORT" "${1:-}" "${2:-}"
	"$PGCRAB_BIN" --config "$T_DIR/pgcrab.ini" --workers "$workers" 2>>"$T_DIR/pgcrab.log" &
	PGCRAB_PID=$!
	if ! wait_port "$PGCRAB_PORT"; then
		not_ok "pgcrab starts"
		cat "$T_DIR/pgcrab.log"
		return 1
	fi
}

pgcrab_stop() {
	[[ -n "$PGCRAB_PID" ]] || return 0
	kill -TERM "$PGCRAB_PID" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$PGCRAB_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$PGCRAB_PID" 2>/dev/null
	wait "$PGCRAB_PID" 2>/dev/null
	local rc=$?
	PGCRAB_PID=
	# sanitizer reports end up in the log: a finding fails the test
	if grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$T_DIR/pgcrab.log"; then
		not_ok "no sanitizer findings in the pgcrab log"
		grep -A20 "Sanitizer\|runtime error" "$T_DIR/pgcrab.log" | head -60
	fi
	return $rc
}

PC_CONN() { echo "host=127.0.0.1 port=$PGCRAB_PORT user=pgcrab password=pgcrab dbname=$PG_DB connect_timeout=5 ${1:-}"; }

# psql through PgCrab; stops at the first error.
pc_psql() {
	timeout 60 psql -X -q -At -v ON_ERROR_STOP=1 "$(PC_CONN)" "$@"
}
# psql straight to PostgreSQL as the pool user.
pg_psql() {
	PGPASSWORD=$PG_PASSWORD timeout 60 psql -X -q -At -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$PG_PORT user=$PG_USER dbname=$PG_DB" "$@"
}

# The SQLSTATE psql reports for a command (VERBOSITY verbose prints it).
sqlstate_of() {
	timeout 30 psql -X -At -v VERBOSITY=verbose "$@" 2>&1 | grep -oE '(ERROR|FATAL):  [0-9A-Z]{5}' | head -1 | awk '{print $2}'
}

t_cleanup() {
	pgcrab_stop
	if [[ $T_FAILED -gt 0 && -s "$T_DIR/pgcrab.log" ]]; then
		echo "# last lines of the pgcrab log:"
		tail -30 "$T_DIR/pgcrab.log" | sed 's/^/# /'
	fi
	rm -rf "$T_DIR"
}
trap t_cleanup EXIT
