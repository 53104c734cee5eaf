#!/usr/bin/env bash
# make check: every unit test binary in UNIT_DIR (cmocka's output as is),
# each libFuzzer target in FUZZ_DIR for FUZZ_CHECK_TIME (15) seconds, then
# the integration suite against PGCRAB_BIN, then a slice of PostgreSQL's
# regression suite through it (scripts/conformance.sh --check); ends with one line
# "N passed, N failed" over all of them. Exit status 0 only if nothing failed.
set -u
cd "$(dirname "$0")/.."
: "${UNIT_DIR:?UNIT_DIR must name the directory of the unit test binaries}"
: "${PGCRAB_BIN:?PGCRAB_BIN must name the pgcrab binary}"
unset PGCRAB_TEST_DIRECT  # make check tests PgCrab, never PostgreSQL alone
# The SANITIZE=1 pass looks for memory and UB errors: the load tests' code
# paths are all reached in a shorter run, and the release pass that follows
# runs them at full length. This keeps .ci/run (both passes) under 45 min.
if [[ "${SANITIZE:-}" == 1 ]]; then
	export SOAK_TIME=${SOAK_TIME:-30} DEPART_ROUNDS=${DEPART_ROUNDS:-400} \
		PGBENCH_SECONDS=${PGBENCH_SECONDS:-5}
fi
passed=0
failed=0

for t in "$UNIT_DIR"/test_*; do
	[[ -f "$t" && -x "$t" ]] || continue
	out=$(timeout -k 10 300 "$t" 2>&1)
	rc=$?
	echo "$out"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' <<<"$out" | tail -1)
	p=${p:-0}
	f=${f:-0}
	# a crash, a sanitizer abort or a hang counts as a failure
	if [[ $rc -ne 0 && $f -eq 0 ]]; then
		echo "$(basename "$t") crashed or failed (exit $rc)"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "unit: $passed passed, $failed failed"

# Each libFuzzer target counts as one test (scripts/fuzz.sh). Skipped in the
# SANITIZE=1 pass, whose binaries they would only repeat (they carry their
# own ASan+UBSan build), and with FUZZ=0.
if [[ "${SANITIZE:-}" != 1 && "${FUZZ:-1}" != 0 ]]; then
	: "${FUZZ_DIR:?FUZZ_DIR must name the directory of the fuzz binaries}"
	fz=$(mktemp)
	FUZZ_TIME=${FUZZ_CHECK_TIME:-15} scripts/fuzz.sh 2>&1 | tee "$fz"
	line=$(grep '^fuzz: ' "$fz" | tail -1)
	rm -f "$fz"
	fp=$(sed -n 's/^fuzz: \([0-9]*\) passed.*/\1/p' <<<"$line")
	ff=$(sed -n 's/^fuzz: [0-9]* passed, \([0-9]*\) failed.*/\1/p' <<<"$line")
	[[ -z "$fp" || -z "$ff" ]] && { fp=0; ff=1; }
	passed=$((passed + fp))
	failed=$((failed + ff))
fi

it=$(mktemp)
PGCRAB_BIN=$PGCRAB_BIN tests/integration/run.sh 2>&1 | tee "$it"
line=$(grep '^integration: ' "$it" | tail -1)
rm -f "$it"
ip=$(sed -n 's/^integration: \([0-9]*\) passed.*/\1/p' <<<"$line")
if_=$(sed -n 's/^integration: [0-9]* passed, \([0-9]*\) failed.*/\1/p' <<<"$line")
# no summary line: the runner itself broke
[[ -z "$ip" || -z "$if_" ]] && { ip=0; if_=1; }
passed=$((passed + ip))
failed=$((failed + if_))

# ---- conformance: a slice of PostgreSQL's own regression suite ----------
# tests/conformance/check_schedule run by pg_regress directly and through
# PgCrab in transaction and session mode (scripts/conformance.sh --check,
# docs/testing.md): one "ok - conformance MODE TEST" / "not ok - ..." line per
# test per mode, counted here. CONFORMANCE=0 leaves it out.
if [[ "${CONFORMANCE:-1}" != 0 ]]; then
	cf=$(mktemp)
	PGCRAB_BIN=$PGCRAB_BIN timeout -k 10 900 scripts/conformance.sh --check 2>&1 | tee "$cf"
	cp_=$(grep -c '^ok - ' "$cf")
	cf_=$(grep -c '^not ok - ' "$cf")
	# no summary line: the harness itself broke
	grep -q '^conformance: [0-9]* passed' "$cf" || cf_=$((cf_ + 1))
	rm -f "$cf"
	echo "conformance slice: $cp_ passed, $cf_ failed"
	passed=$((passed + cp_))
	failed=$((failed + cf_))
fi
# ---------------------------------------------------------------------------

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
