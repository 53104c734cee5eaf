# cpu_affinity = workers: each worker thread runs on a CPU of its own (the
# i-th this process may use), and the pooler works as before.
source "$(dirname "$0")/lib.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "worker threads pinned to CPUs of their own" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: no pooler threads to pin"
	exit 0
fi
ncpu=$(nproc)
workers=$((ncpu < 2 ? 1 : 2))
pgcrab_start --workers "$workers" "min_connections = 1
max_connections = 4" "cpu_affinity = workers" || exit 1
expect_eq "queries work with pinned workers" "pinned" "$(pc_psql -c "SELECT 'pinned'")"
if [[ $ncpu -lt 2 ]]; then
	# every thread may use only that CPU, so pinned and unpinned look alike
	skip "$workers worker threads each pinned to one CPU" "one CPU available to this process (nproc = $ncpu): every thread's allowed set is that CPU, pinned or not"
	skip "on different CPUs" "one CPU available to this process (nproc = $ncpu): a single worker, no second CPU to differ from"
else
	# threads whose allowed set is a single CPU: the pinned workers
	single=$(for f in /proc/"$PGCRAB_PID"/task/*/status; do
		awk '/^Cpus_allowed_list/ {print $2}' "$f"
	done | grep -E '^[0-9]+$' | sort)
	expect_eq "$workers worker threads each pinned to one CPU (got: $(echo $single))" "$workers" "$(grep -c . <<<"$single")"
	expect_eq "on different CPUs" "$workers" "$(sort -u <<<"$single" | grep -c .)"
fi
check "the log says where each worker runs" grep -q "worker 0 runs on CPU" "$T_DIR/pgcrab.log"
exit 0
