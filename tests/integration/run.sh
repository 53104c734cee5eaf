#!/usr/bin/env bash
# Runs the integration tests against one throwaway PostgreSQL 15, each test
# with its own PgCrab; prints every test's lines, a line per test file, and
# "integration: N passed, N failed". Exit status 0 only if nothing failed.
#
#   tests/integration/run.sh                   every tests/integration/t_*.sh
#   tests/integration/run.sh t_psql t_cap      only these (ONLY=psql works too)
#   PGCRAB_TEST_DIRECT=1 tests/integration/run.sh   against PostgreSQL itself
#
# PGCRAB_BIN names the pgcrab binary (default: ./pgcrab of this checkout).
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../scripts/pgenv.sh"
export PGCRAB_BIN=${PGCRAB_BIN:-$(cd "$here/../.." && pwd)/pgcrab}
export PGCRAB_TEST_DIRECT=${PGCRAB_TEST_DIRECT:-0}
per_test_timeout=${TEST_TIMEOUT:-300}

tests=()
if [[ $# -gt 0 ]]; then
	for a in "$@"; do
		a=$(basename "$a" .sh)
		[[ -f "$here/$a.sh" ]] || { echo "no such test: $here/$a.sh" >&2; exit 2; }
		tests+=("$here/$a.sh")
	done
else
	for t in "$here"/t_*.sh; do
		[[ -n "${ONLY:-}" && "$(basename "$t")" != *"$ONLY"* ]] && continue
		tests+=("$t")
	done
fi

top=$(mktemp -d "${TMPDIR:-/tmp}/pgcrab-it.XXXXXX")
chmod 755 "$top"
# kill_test: the running test's whole process group (psql, pgbench, pgcrab)
kill_test() {
	local g
	g=$(cat "$top/test.pgid" 2>/dev/null) || return 0
	kill -TERM -- "-$g" 2>/dev/null || return 0
	for _ in $(seq 1 50); do
		kill -0 -- "-$g" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$g" 2>/dev/null
}
cleanup() {
	kill_test
	pg_stop
	[[ -n "${PG_DIR:-}" ]] && rm -rf "$PG_DIR"
	rm -rf "$top"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if ! pg_start "$top/pg"; then
	echo "not ok - PostgreSQL 15 starts"
	echo "integration: 0 passed, 1 failed"
	exit 1
fi
export PG_DIR PG_PORT
if [[ $PGCRAB_TEST_DIRECT == 1 ]]; then
	echo "# direct mode: the tests talk to PostgreSQL $PG_PORT itself, no PgCrab"
else
	echo "# pgcrab: $PGCRAB_BIN"
fi

passed=0
failed=0
summary=()
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	echo "# $name"
	start=$SECONDS
	# each test in a session of its own: on a timeout its whole process group
	# (psql, pgbench, pgcrab) gets SIGTERM, and SIGKILL 20 s later; its
	# temporary files live under $top and go with it
	mkdir -m 755 "$top/$name.tmp"
	(
		TMPDIR=$top/$name.tmp setsid bash "$t" </dev/null 2>&1 &
		tpid=$!
		echo "$tpid" >"$top/test.pgid"
		(
			for _ in $(seq 1 "$per_test_timeout"); do
				sleep 1
				kill -0 "$tpid" 2>/dev/null || exit 0
			done
			echo "not ok - $name did not finish within ${per_test_timeout} s"
			kill -TERM -- "-$tpid" 2>/dev/null
			for _ in $(seq 1 20); do
				sleep 1
				kill -0 -- "-$tpid" 2>/dev/null || exit 0
			done
			kill -KILL -- "-$tpid" 2>/dev/null
		) &
		wait "$tpid"
		rc=$?
		wait
		exit $rc
	) | tee "$top/$name.out"
	rc=${PIPESTATUS[0]}
	# whatever the test left running goes now
	kill_test
	rm -f "$top/test.pgid"
	rm -rf "$top/$name.tmp"
	p=$(grep -c '^ok - ' "$top/$name.out")
	f=$(grep -c '^not ok - ' "$top/$name.out")
	if [[ $rc -ne 0 && $f -eq 0 ]]; then
		echo "not ok - $name exited with status $rc"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	summary+=("$(printf '%-22s %3d passed, %d failed  (%d s)' "$name" "$p" "$f" $((SECONDS - start)))")
done
echo "#"
printf '# %s\n' "${summary[@]}"
echo "integration: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
