#!/usr/bin/env bash
# make fuzz / make check: runs each libFuzzer target in FUZZ_DIR (or those
# named as arguments, e.g. fuzz_proto) one after the other, never in parallel
# (the machine is shared), for FUZZ_TIME seconds each. Seeds come from
# tests/fuzz/corpus/<name>/ (read only); what the fuzzer learns goes to
# FUZZ_DIR/corpus/<name>/, so repeated runs start where the last one stopped.
# A crash, leak, sanitizer report or timeout fails the target and leaves the
# input in FUZZ_DIR/artifacts/. Prints "fuzz <target>: ..." per target and
# ends with "fuzz: N passed, N failed"; exit status 0 only if none failed.
set -u
cd "$(dirname "$0")/.."
: "${FUZZ_DIR:?FUZZ_DIR must name the directory of the fuzz binaries}"
time_s=${FUZZ_TIME:-60}

if [[ $# -gt 0 ]]; then
	targets=("$@")
else
	targets=()
	for b in "$FUZZ_DIR"/fuzz_*; do
		[[ -f "$b" && -x "$b" ]] && targets+=("$(basename "$b")")
	done
fi

# Longest input per target: enough to cross every size limit the code
# under test enforces (startup packets: 10,000 bytes; SCRAM: 1,024).
max_len_of() {
	case $1 in
	fuzz_startup) echo 12000 ;;
	fuzz_scram | fuzz_scram_server) echo 4096 ;;
	fuzz_config) echo 4096 ;;
	*) echo 16384 ;;
	esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0
failed=0
mkdir -p "$FUZZ_DIR/artifacts"
for t in "${targets[@]}"; do
	name=${t#fuzz_}
	bin=$FUZZ_DIR/$t
	seeds=tests/fuzz/corpus/$name
	work=$FUZZ_DIR/corpus/$name
	log=$FUZZ_DIR/$t.log
	mkdir -p "$work"
	args=(-max_total_time="$time_s" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1
		-max_len="$(max_len_of "$t")" -artifact_prefix="$FUZZ_DIR/artifacts/$t-")
	[[ -f tests/fuzz/$name.dict ]] && args+=(-dict="tests/fuzz/$name.dict")
	[[ -d $seeds ]] || seeds=
	if [[ ! -x $bin ]]; then
		echo "fuzz $t: FAILED (no binary $bin)"
		failed=$((failed + 1))
		continue
	fi
	start=$(date +%s)
	# a hang past FUZZ_TIME plus a margin counts as a failure too
	timeout -k 10 $((time_s + 120)) "$bin" "${args[@]}" "$work" $seeds >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	if [[ $rc -eq 0 && -n $runs ]]; then
		echo "fuzz $t: passed, $runs runs in $secs s, corpus $(ls "$work" | wc -l) inputs"
		passed=$((passed + 1))
	else
		echo "fuzz $t: FAILED (exit $rc after ${runs:-?} runs in $secs s); log $log:"
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written|artifact_prefix' "$log" | head -20
		tail -40 "$log"
		failed=$((failed + 1))
	fi
done
echo "fuzz: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
