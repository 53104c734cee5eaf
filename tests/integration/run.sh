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
cleanup() {
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
	# -k: a test that ignores SIGTERM is killed 20 s later
	timeout -k 20 "$per_test_timeout" bash "$t" 2>&1 | tee "$top/$name.out"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^ok - ' "$top/$name.out")
	f=$(grep -c '^not ok - ' "$top/$name.out")
	if [[ $rc -ne 0 && $f -eq 0 ]]; then
		if [[ $rc -eq 124 || $rc -eq 137 ]]; then
			echo "not ok - $name did not finish within ${per_test_timeout} s"
		else
			echo "not ok - $name exited with status $rc"
		fi
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
