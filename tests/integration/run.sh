#!/usr/bin/env bash
# Runs every tests/integration/t_*.sh against one throwaway PostgreSQL 15,
# each test with its own PgCrab; prints per-test results and a total.
set -u
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../scripts/pgenv.sh"
: "${PGCRAB_BIN:?PGCRAB_BIN must name the pgcrab binary}"
export PGCRAB_BIN

top=$(mktemp -d "${TMPDIR:-/tmp}/pgcrab-it.XXXXXX")
chmod 755 "$top"
trap 'pg_stop; rm -rf "$top"' EXIT
if ! pg_start "$top/pg"; then
	echo "integration: cannot start PostgreSQL"
	echo "integration: 0 passed, 1 failed"
	exit 1
fi
export PG_DIR PG_PORT

passed=0
failed=0
for t in "$here"/t_*.sh; do
	[[ -n "${ONLY:-}" && "$(basename "$t")" != *"$ONLY"* ]] && continue
	echo "# $(basename "$t")"
	out=$(timeout 300 bash "$t" 2>&1)
	rc=$?
	echo "$out"
	p=$(grep -c '^ok - ' <<<"$out")
	f=$(grep -c '^not ok - ' <<<"$out")
	if [[ $rc -ne 0 && $f -eq 0 ]]; then
		echo "not ok - $(basename "$t") exited with $rc"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "integration: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
