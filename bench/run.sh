#!/usr/bin/env bash
# make bench: PgCrab (--workers 1 and 2) against PgBouncer and direct
# PostgreSQL 15, all on this machine, in one run, interleaved; then the
# sharding router's costs: pgbench by key through a 2-shard database against
# an unsharded one, the router's µs per statement, and PgCrab's RSS while it
# merges a cross-shard ORDER BY over 1,000,000 rows on 3 shards.
#
#   QUICK=1           one representative cell (-S -M extended, 100 clients,
#                     -T 10, 2 repeats), the sharded cells at 100 clients,
#                     the merge memory test and the idle-client memory test
#   BENCH_SECONDS     -T per pgbench run (default 15; QUICK: 10)
#   BENCH_REPEATS     runs per target and cell, median reported (default 2)
#   BENCH_CLIENTS     client counts (default "16 100 1000"; QUICK: "100")
#   BENCH_WORKLOADS   subset of: select-simple select-extended select-prepared
#                     tpcb-extended connect-simple (QUICK: select-extended)
#   BENCH_IDLE        idle-client totals for the memory test (default
#                     "2000 10000"; empty skips it)
#   PGCRAB_BIN        the binary to measure (default ./pgcrab)
#   BENCH_BASE_BIN    another pgcrab binary (an earlier commit's) run as a
#                     fifth target, "base-w2" (--workers 2), interleaved with
#                     the others: a change's before and after in one run
#   BENCH_POOLER_TO_PG  tcp (default) or unix: how both poolers reach
#                     PostgreSQL (clients always use TCP, direct ones too)
#   BENCH_SHARD_CLIENTS  client counts of the sharded-vs-unsharded cells
#                     (default "16 100"; QUICK: "100"; empty skips them)
#   BENCH_SHARD_WORKLOADS  key-extended key-prepared (default), key-simple
#   BENCH_SHARD_POOL  server connections per shard of the 2-shard database
#                     (default: the unsharded database's, 20)
#   BENCH_TLS_CLIENTS  client counts of the TLS column (default "16 100
#                     1000"; QUICK: "100"; empty skips it): clients with
#                     sslmode=require against PostgreSQL (ssl = on), PgCrab
#                     --workers 2 (client_tls_mode = require) and PgBouncer
#                     (client_tls_sslmode = require), each with its own
#                     certificate; server sides in plaintext for all three
#   BENCH_TLS_WORKLOADS  tls-select-extended tls-connect (default)
#   BENCH_AUTH_METHODS  client auth methods of the login cells (default
#                     "trust plain md5 scram-sha-256 scram-tls"; empty skips
#                     them): pgbench -C (a login per transaction) against
#                     PgCrab --workers 2 and PgBouncer set to that auth_type,
#                     the password stored as each keeps it best (cleartext
#                     for plain and trust, the md5 hash for md5, PostgreSQL's
#                     own SCRAM verifier for SCRAM); scram-tls adds
#                     sslmode=require
#   BENCH_AUTH_CLIENTS  client counts of the login cells (default 16)
#                     With SCRAM also a storm cell: 16 steady clients
#                     (-S -M extended) measured while 16 more log in and
#                     out without pause (storm.tsv has their logins/s)
#   BENCH_MERGE_ROWS  rows of the 3-shard merge memory test (default
#                     1000000; empty skips it)
#   PGCRAB_LIB, BENCH_LDLIBS  the library bench/route_cost.c links (default
#                     build/libpgcrab.a) and its libraries (make passes its own)
#
# Writes bench/results/<timestamp>/{report.md,tps.png,runs.tsv,memory.tsv,
# sharded.tsv,route_cost.tsv,merge.tsv} and prints the report's path.
# Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

QUICK=${QUICK:-0}
[[ "$QUICK" == 1 ]] || QUICK=0
if [[ $QUICK == 1 ]]; then
	SECONDS_PER_RUN=${BENCH_SECONDS:-10}
	CLIENTS=${BENCH_CLIENTS:-100}
	WORKLOADS=${BENCH_WORKLOADS:-select-extended}
	SHARD_CLIENTS=${BENCH_SHARD_CLIENTS-100}
	TLS_CLIENTS=${BENCH_TLS_CLIENTS-100}
else
	SECONDS_PER_RUN=${BENCH_SECONDS:-15}
	CLIENTS=${BENCH_CLIENTS:-16 100 1000}
	WORKLOADS=${BENCH_WORKLOADS:-select-simple select-extended select-prepared tpcb-extended connect-simple}
	SHARD_CLIENTS=${BENCH_SHARD_CLIENTS-16 100}
	TLS_CLIENTS=${BENCH_TLS_CLIENTS-16 100 1000}
fi
TLS_WORKLOADS=${BENCH_TLS_WORKLOADS:-tls-select-extended tls-connect}
AUTH_METHODS=${BENCH_AUTH_METHODS-trust plain md5 scram-sha-256 scram-tls}
AUTH_CLIENTS=${BENCH_AUTH_CLIENTS:-16}
SHARD_WORKLOADS=${BENCH_SHARD_WORKLOADS:-key-extended key-prepared}
MERGE_ROWS=${BENCH_MERGE_ROWS-1000000}
PGCRAB_LIB=${PGCRAB_LIB:-$repo/build/libpgcrab.a}
REPEATS=${BENCH_REPEATS:-2}
IDLE=${BENCH_IDLE-2000 10000}
PGCRAB_BIN=${PGCRAB_BIN:-$repo/pgcrab}
POOLER_TO_PG=${BENCH_POOLER_TO_PG:-tcp}
[[ $POOLER_TO_PG == tcp || $POOLER_TO_PG == unix ]] || { echo "bench: BENCH_POOLER_TO_PG is tcp or unix" >&2; exit 1; }
TARGETS=(direct pgcrab-w1 pgcrab-w2 pgbouncer)
BASE_BIN=${BENCH_BASE_BIN:-}
if [[ -n "$BASE_BIN" ]]; then
	[[ -x "$BASE_BIN" ]] || { echo "bench: BENCH_BASE_BIN $BASE_BIN is not executable" >&2; exit 1; }
	TARGETS=(direct base-w2 pgcrab-w1 pgcrab-w2 pgbouncer)
fi
POOL_SIZE=20
SHARD_POOL=${BENCH_SHARD_POOL:-$POOL_SIZE}
SCALE=10
# Large enough for pgbench_accounts twice over (the unsharded copy and the
# 2-shard one, about 150 MB each with its index), so that the interleaved
# runs do not evict each other's pages.
SHARED_BUFFERS=512MB
THREADS=2

[[ -x "$PGCRAB_BIN" ]] || { echo "bench: $PGCRAB_BIN not built (run make)" >&2; exit 1; }
bench/deps.sh
source scripts/pgenv.sh
source scripts/pgshards.sh
# Debian puts pgbouncer in /usr/sbin, outside a normal user's PATH.
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
for tool in pgbench "$PGBOUNCER" gnuplot python3 timeout; do
	command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done

# Every client socket is a file descriptor: 10,000 idle clients need more
# than the usual 1024. Raise the soft limit to the hard one; children inherit.
hard=$(ulimit -Hn)
[[ "$hard" == unlimited ]] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true
NOFILE=$(ulimit -n)
CLK_TCK=$(getconf CLK_TCK)

stamp=$(date +%Y%m%d-%H%M%S)
out=$repo/bench/results/$stamp
mkdir -p "$out"
tmp=$(mktemp -d /tmp/pgcrab-bench.XXXXXX)
chmod 755 "$tmp"
START_TIME=$(date +%s)
# Measure a private copy: a rebuild of ./pgcrab during the run changes nothing.
cp "$PGCRAB_BIN" "$tmp/pgcrab"
PGCRAB_BIN=$tmp/pgcrab

# name -> pid / port of each running pooler; wrapper pids (runuser) too.
declare -A PID PORT WRAPPER
cleanup() {
	local rc=$?
	trap - INT TERM EXIT
	[[ -n "${IDLE_PID:-}" ]] && kill "$IDLE_PID" 2>/dev/null || true
	local name
	for name in "${!PID[@]}"; do stop_pooler "$name"; done
	pg_stop
	# Keep the tails of the logs with the results, then drop the temp dir
	# (and the cluster's, should pg_start have put it elsewhere).
	mkdir -p "$out/logs"
	local f
	for f in "$tmp"/*.log "$tmp"/*/*.log "${PG_DIR:-$tmp/pg}"/*.log; do
		[[ -f "$f" ]] || continue
		local rel=${f#"$tmp"/}
		[[ $f == "$tmp"/* ]] || rel=pg/$(basename "$f")
		tail -n 200 "$f" >"$out/logs/${rel//\//-}" 2>/dev/null || true
	done
	[[ -n "${PG_DIR:-}" && "$PG_DIR" != "$tmp"/* && -d "$PG_DIR/data" ]] && rm -rf "$PG_DIR"
	rm -rf "$tmp"
	[[ $rc -ne 0 ]] && echo "bench: failed (exit $rc); logs in $out/logs" >&2
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# utime+stime of a process (all its threads), in clock ticks.
cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) } # the fields after "(comm) "; comm may hold spaces
	set -- $stat
	echo $((${12} + ${13}))
}

# stime alone: the kernel's share of the pooler's CPU.
sys_ticks() {
	local stat
	stat=$(<"/proc/$1/stat")
	stat=${stat##*) }
	set -- $stat
	echo "${13}"
}

# CPU ticks of the main PostgreSQL cluster: the postmaster, its live
# children, and (cutime/cstime) the children it has already reaped, so that
# backends which exit during a run (direct -C) are counted too.
pg_cluster_ticks() {
	local pm stat total=0 child
	pm=$(head -1 "$PG_DIR/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
	stat=$(cat "/proc/$pm/stat" 2>/dev/null) || { echo 0; return; }
	stat=${stat##*) }
	set -- $stat
	total=$((${12} + ${13} + ${14} + ${15}))
	for child in $(pgrep -P "$pm"); do
		stat=$(cat "/proc/$child/stat" 2>/dev/null) || continue
		stat=${stat##*) }
		set -- $stat
		total=$((total + ${12} + ${13}))
	done
	echo $total
}

# Idle ticks of the whole machine (all cores), from /proc/stat.
idle_ticks() { awk '/^cpu / {print $5; exit}' /proc/stat; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

wait_gone() { # pid, up to ~10 s
	for _ in $(seq 1 100); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

stop_pooler() {
	local name=$1 pid=${PID[$1]:-}
	if [[ -n "$pid" ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		# A second signal makes PgCrab exit at once; PgBouncer takes it as
		# "shut down now" too.
		sleep 0.2
		kill -INT "$pid" 2>/dev/null || true
		wait_gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
	fi
	[[ -n "${WRAPPER[$name]:-}" ]] && { wait "${WRAPPER[$name]}" 2>/dev/null || true; }
	unset "PID[$name]" "PORT[$name]" "WRAPPER[$name]"
}

# pooler_pg_host: where the poolers find PostgreSQL (its socket directory
# for unix: local connections, which pg_hba trusts)
pooler_pg_host() {
	if [[ $POOLER_TO_PG == unix ]]; then echo "$PG_DIR"; else echo "$PG_HOST"; fi
}

# start_pgcrab NAME WORKERS MAX_CLIENT_CONN [BINARY]
start_pgcrab() {
	local name=$1 workers=$2 maxconn=$3 bin=${4:-$PGCRAB_BIN} port
	port=$(free_port)
	PG_HOST=$(pooler_pg_host) pgcrab_config "$tmp/$name.ini" "$port" "min_connections = $POOL_SIZE
max_connections = $POOL_SIZE" "log_level = warn
max_client_conn = $maxconn"
	"$bin" --config "$tmp/$name.ini" --workers "$workers" 2>"$tmp/$name.log" &
	PID[$name]=$!
	PORT[$name]=$port
	wait_port "$port" "${PID[$name]}" || { cat "$tmp/$name.log" >&2; echo "bench: $name did not start" >&2; return 1; }
}

# start_pgcrab_tls NAME: PgCrab --workers 2 with client_tls_mode = require
# and the bench's certificate; to PostgreSQL in plaintext like the others.
start_pgcrab_tls() {
	local name=$1 port
	port=$(free_port)
	PG_HOST=$(pooler_pg_host) pgcrab_config "$tmp/$name.ini" "$port" "min_connections = $POOL_SIZE
max_connections = $POOL_SIZE" "log_level = warn
max_client_conn = 2000
client_tls_mode = require
client_tls_cert_file = $tmp/tls/server.crt
client_tls_key_file = $tmp/tls/server.key
server_tls_mode = disable"
	"$PGCRAB_BIN" --config "$tmp/$name.ini" --workers 2 2>"$tmp/$name.log" &
	PID[$name]=$!
	PORT[$name]=$port
	wait_port "$port" "${PID[$name]}" || { cat "$tmp/$name.log" >&2; echo "bench: $name did not start" >&2; return 1; }
}

# start_pgcrab_auth NAME AUTH_TYPE SECRET [TLS]: PgCrab --workers 2 asking
# its clients for AUTH_TYPE, user pgcrab's password stored as SECRET.
start_pgcrab_auth() {
	local name=$1 auth=$2 secret=$3 tls=${4:-} port lines
	port=$(free_port)
	lines="log_level = warn
max_client_conn = 2000
auth_type = $auth"
	[[ -n "$tls" ]] && lines="$lines
client_tls_mode = require
client_tls_cert_file = $tmp/tls/server.crt
client_tls_key_file = $tmp/tls/server.key
server_tls_mode = disable"
	SHARD_USER=bench_login SHARD_PASSWORD=pgcrab PGCRAB_USER_PASSWORD=$secret \
		PG_HOST=$(pooler_pg_host) pgcrab_config "$tmp/$name.ini" "$port" \
		"min_connections = $POOL_SIZE
max_connections = $POOL_SIZE" "$lines"
	"$PGCRAB_BIN" --config "$tmp/$name.ini" --workers 2 2>"$tmp/$name.log" &
	PID[$name]=$!
	PORT[$name]=$port
	wait_port "$port" "${PID[$name]}" || { cat "$tmp/$name.log" >&2; echo "bench: $name did not start" >&2; return 1; }
}

# make_tls_cert: a self-signed certificate (P-256) for all three TLS targets
make_tls_cert() {
	mkdir -p "$tmp/tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-keyout "$tmp/tls/server.key" -out "$tmp/tls/server.crt" -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
	chmod 644 "$tmp/tls/server.crt"
	chmod 600 "$tmp/tls/server.key"
}

# start_pgbouncer NAME MAX_CLIENT_CONN [TLS]: PgBouncer set up like PgCrab
# (transaction pooling, 20 server connections kept open, cleartext client
# login as pgcrab/pgcrab, SCRAM login to PostgreSQL as mr_krabs). It refuses
# to run as root, so as root it runs as postgres with its files owned by it.
start_pgbouncer() {
	local name=$1 maxconn=$2 tls=${3:-} port dir tls_lines=""
	port=$(free_port)
	dir=$tmp/$name
	mkdir -p "$dir"
	if [[ -n "$tls" ]]; then
		cp "$tmp/tls/server.crt" "$tmp/tls/server.key" "$dir/"
		tls_lines="client_tls_sslmode = require
client_tls_cert_file = $dir/server.crt
client_tls_key_file = $dir/server.key
server_tls_sslmode = disable"
	fi
	echo "\"pgcrab\" \"${BOUNCER_SECRET:-pgcrab}\"" >"$dir/userlist.txt"
	cat >"$dir/pgbouncer.ini" <<INI
[databases]
$PG_DB = host=$(pooler_pg_host) port=$PG_PORT dbname=$PG_DB user=${BOUNCER_DB_USER:-$PG_USER} password=${BOUNCER_DB_PASSWORD:-$PG_PASSWORD}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = ${BOUNCER_AUTH_TYPE:-plain}
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $POOL_SIZE
min_pool_size = $POOL_SIZE
max_db_connections = $POOL_SIZE
reserve_pool_size = 0
max_client_conn = $maxconn
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
log_connections = 0
log_disconnections = 0
log_stats = 0
$tls_lines
INI
	[[ $(id -u) -eq 0 ]] && chown -R postgres: "$dir"
	# runuser's PAM session (pam_limits) resets the soft descriptor limit to
	# 1024; raise it again inside, up to the hard limit we run under.
	as_pg bash -c 'ulimit -n "$1" 2>/dev/null; exec "$2" -q "$3"' _ "$NOFILE" \
		"$PGBOUNCER" "$dir/pgbouncer.ini" 2>"$dir/stderr.log" &
	WRAPPER[$name]=$!
	PORT[$name]=$port
	wait_port "$port" || { cat "$dir/pgbouncer.log" "$dir/stderr.log" >&2; echo "bench: $name did not start" >&2; return 1; }
	for _ in $(seq 1 50); do
		[[ -s "$dir/pgbouncer.pid" ]] && break
		sleep 0.1
	done
	PID[$name]=$(<"$dir/pgbouncer.pid")
	BOUNCER_NOFILE=$(awk '/^Max open files/ {print $4}' "/proc/${PID[$name]}/limits")
}

# The sharded cells' two targets are two databases of one PgCrab (shard-w2).
declare -A TARGET_POOLER=([unsharded]=shard-w2 [sharded]=shard-w2)
SHARDED_DB=bench_app

target_conn() { # prints "port user password database" for a target
	case $1 in
	direct | direct-tls) echo "$PG_PORT $DIRECT_USER $DIRECT_PASSWORD $PG_DB" ;;
	unsharded) echo "${PORT[shard-w2]} pgcrab pgcrab $PG_DB" ;;
	sharded) echo "${PORT[shard-w2]} pgcrab pgcrab $SHARDED_DB" ;;
	*) echo "${PORT[$1]} pgcrab pgcrab $PG_DB" ;;
	esac
}

workload_args() {
	case $1 in
	select-simple) echo "-S -M simple" ;;
	select-extended) echo "-S -M extended" ;;
	select-prepared) echo "-S -M prepared" ;;
	tpcb-extended) echo "-M extended" ;;
	connect-simple) echo "-C -S -M simple" ;;
	tls-select-extended) echo "-S -M extended" ;;
	tls-connect) echo "-C -S -M simple" ;;
	login-*) echo "-C -S -M simple" ;;
	storm-*) echo "-S -M extended" ;;
	key-extended) echo "-f $tmp/select_by_aid.sql -s $SCALE -M extended" ;;
	key-prepared) echo "-f $tmp/select_by_aid.sql -s $SCALE -M prepared" ;;
	key-simple) echo "-f $tmp/select_by_aid.sql -s $SCALE -M simple" ;;
	*) echo "bench: unknown workload $1" >&2; return 1 ;;
	esac
}

runs_header() {
	printf 'workload\tclients\ttarget\trepeat\tstatus\ttps\tprocessed\tfailed\tmean_ms\tp99_ms\tcpu_us_per_tx\tconnect_ms\tnote\tpgbench_us_per_tx\tpostgres_us_per_tx\tidle_cores\tsys_us_per_tx\n' >"$1"
}
RUNS=$out/runs.tsv
runs_header "$RUNS"

# run_one WORKLOAD CLIENTS TARGET REPEAT: one pgbench run, one line in runs.tsv.
run_one() {
	local workload=$1 clients=$2 target=$3 rep=$4
	local port user pass db wargs
	read -r port user pass db < <(target_conn "$target")
	wargs=$(workload_args "$workload")
	if [[ $workload == tpcb-extended ]]; then
		# What pgbench itself does before TPC-B (we pass -n): keep the
		# updated tables small so every run starts alike. Untimed.
		PG_ADMIN_DB=$PG_DB pg_admin -c "VACUUM pgbench_branches" -c "VACUUM pgbench_tellers" \
			-c "TRUNCATE pgbench_history" -c "CHECKPOINT" >/dev/null
	fi
	local logdir=$tmp/pgbench-log
	rm -rf "$logdir"
	mkdir -p "$logdir"
	local pid=${PID[${TARGET_POOLER[$target]:-$target}]:-} c0=0 c1=0 s0=0 s1=0 output rc=0
	[[ -n "$pid" ]] && c0=$(cpu_ticks "$pid") s0=$(sys_ticks "$pid")
	# What the rest of the machine spends beside the pooler (pgbench's own CPU
	# from bash's time, PostgreSQL's from /proc): with both cores busy, the
	# report uses it for the ratio a pooler costing nothing could reach.
	local g0 g1 i0 i1 t0 t1
	g0=$(pg_cluster_ticks) i0=$(idle_ticks) t0=$(date +%s%N)
	# shellcheck disable=SC2086
	local sslmode=disable
	[[ $workload == tls-* || $workload == *-tls ]] && sslmode=require
	output=$( { TIMEFORMAT='PGBENCH_CPU %U %S'
		time PGSSLMODE=$sslmode PGPASSWORD=$pass timeout -k 5 $((SECONDS_PER_RUN + 120)) \
		pgbench -n $wargs -c "$clients" -j "$THREADS" -T "$SECONDS_PER_RUN" \
		--log --log-prefix="$logdir/tx" --sampling-rate=0.1 \
		-h 127.0.0.1 -p "$port" -U "$user" "$db"; } 2>&1) || rc=$?
	[[ -n "$pid" ]] && c1=$(cpu_ticks "$pid") s1=$(sys_ticks "$pid")
	g1=$(pg_cluster_ticks) i1=$(idle_ticks) t1=$(date +%s%N)
	local processed failed tps conn aborted note status cpu sys
	processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$output")
	failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$output")
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$output")
	# Initial connection time: -T counts it, so it shortens the measured part.
	conn=$(sed -n 's/^initial connection time = \([0-9.]*\) ms.*/\1/p' <<<"$output")
	aborted=$(grep -c 'aborted in command' <<<"$output" || true)
	processed=${processed:-0} failed=${failed:-0} tps=${tps:-0}
	note=$(grep -m1 -E 'error|ERROR|FATAL' <<<"$output" | tr '\t' ' ' | cut -c1-200 || true)
	if [[ $rc -eq 0 && $processed -gt 0 && $aborted -eq 0 ]]; then
		status=ok
	else
		status=failed
		[[ $aborted -gt 0 ]] && note="$aborted clients aborted; $note"
		[[ $rc -ne 0 ]] && note="pgbench exit $rc; $note"
		printf '%s\n' "$output" >"$out/logs-failed-$workload-$clients-$target-$rep.txt"
	fi
	# Per-transaction latencies (column 3, µs) of the 10 % sample: mean, p99.
	local lat
	lat=$({ cat "$logdir"/tx.* 2>/dev/null || true; } | awk '$3 ~ /^[0-9]+$/ {print $3}' | sort -n |
		awk '{a[NR] = $1; s += $1} END {
			if (NR == 0) { print "- -"; exit }
			i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1
			printf "%.3f %.3f\n", s / NR / 1000, a[i] / 1000 }')
	cpu=- sys=-
	if [[ -n "$pid" && $processed -gt 0 ]]; then
		cpu=$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$processed" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
		sys=$(awk -v t=$((s1 - s0)) -v hz="$CLK_TCK" -v n="$processed" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
	fi
	local bench_cpu pg_us=- bench_us=- idle
	bench_cpu=$(sed -n 's/^PGBENCH_CPU \([0-9.]*\) \([0-9.]*\)$/\1 \2/p' <<<"$output" | tail -1)
	if [[ $processed -gt 0 ]]; then
		[[ -n "$bench_cpu" ]] && bench_us=$(awk -v u="${bench_cpu% *}" -v s="${bench_cpu#* }" -v n="$processed" \
			'BEGIN {printf "%.2f", (u + s) * 1e6 / n}')
		pg_us=$(awk -v t=$((g1 - g0)) -v hz="$CLK_TCK" -v n="$processed" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
	fi
	idle=$(awk -v t=$((i1 - i0)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) 'BEGIN {printf "%.2f", t / hz / (ns / 1e9)}')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$clients" "$target" "$rep" \
		"$status" "$tps" "$processed" "$failed" ${lat% *} ${lat#* } "$cpu" "${conn:--}" "$note" \
		"$bench_us" "$pg_us" "$idle" "$sys" >>"$RUNS"
	log "$(printf '%-16s %4s clients %-10s #%s %-6s %10s tps  mean %s ms  p99 %s ms  cpu %s us/tx' \
		"$workload" "$clients" "$target" "$rep" "$status" "$tps" ${lat% *} ${lat#* } "$cpu")"
}

# memory_test NAME: a fresh pooler, idle authenticated clients in stages;
# VmRSS and utime+stime before and after each stage.
MEM=$out/memory.tsv
printf 'target\tclients\trss_before_kib\trss_after_kib\tkib_per_client\tlogin_cpu_us\tlogin_wall_s\tnote\n' >"$MEM"
memory_test() {
	local name=$1 stages=() s limit
	# Leave room for the pooler's own descriptors (listen, servers, io_uring).
	limit=$((NOFILE - 200))
	for s in $IDLE; do
		if ((s > limit)); then
			log "memory: $s idle clients exceed ulimit -n $NOFILE; using $limit"
			s=$limit
		fi
		stages+=("$s")
	done
	case $name in
	pgcrab-w1) start_pgcrab mem-$name 1 $((stages[-1] + 1000)) ;;
	pgcrab-w2) start_pgcrab mem-$name 2 $((stages[-1] + 1000)) ;;
	pgbouncer) start_pgbouncer mem-$name $((stages[-1] + 1000)) ;;
	esac
	local pooler=mem-$name pid port
	pid=${PID[$pooler]} port=${PORT[$pooler]}
	sleep 2 # the pool fills its 20 server connections
	local rss0 c0 line total secs rss cpu_now
	rss0=$(rss_kib "$pid")
	c0=$(cpu_ticks "$pid")
	# The helper talks over two FIFOs: "ready N SECONDS" out, "go" in.
	rm -f "$tmp/idle.in" "$tmp/idle.out"
	mkfifo "$tmp/idle.in" "$tmp/idle.out"
	timeout -k 5 600 python3 "$repo/bench/idle_clients.py" 127.0.0.1 "$port" \
		pgcrab pgcrab "$PG_DB" "${stages[@]}" <"$tmp/idle.in" >"$tmp/idle.out" 2>"$tmp/idle.log" &
	IDLE_PID=$!
	exec 7>"$tmp/idle.in" 8<"$tmp/idle.out"
	local prev_c=$c0 prev_total=0
	for s in "${stages[@]}"; do
		if ! read -r -t 300 line <&8 || [[ $line != ready* ]]; then
			log "memory: $name: ${line:-no answer} $(tail -3 "$tmp/idle.log")"
			printf '%s\t%s\t%s\t-\t-\t-\t-\t%s\n' "$name" "$s" "$rss0" "${line:-timeout}" >>"$MEM"
			break
		fi
		read -r _ total secs <<<"$line"
		sleep 1 # let the pooler settle
		rss=$(rss_kib "$pid")
		cpu_now=$(cpu_ticks "$pid")
		awk -v n="$name" -v c="$total" -v r0="$rss0" -v r="$rss" -v t=$((cpu_now - prev_c)) \
			-v hz="$CLK_TCK" -v new=$((total - prev_total)) -v w="$secs" 'BEGIN {
			printf "%s\t%d\t%d\t%d\t%.3f\t%.1f\t%.3f\t\n", n, c, r0, r, (r - r0) / c,
				(new > 0 ? t * 1e6 / hz / new : 0), w }' >>"$MEM"
		log "memory: $name: $total idle clients, VmRSS $rss0 -> $rss KiB, logins took ${secs}s"
		prev_c=$cpu_now prev_total=$total
		echo go >&7
	done
	exec 7>&- 8<&-
	wait "$IDLE_PID" 2>/dev/null || true
	IDLE_PID=
	stop_pooler "$pooler"
}

# --- the sharding router ------------------------------------------------------

# db_admin DB ARGS...: psql as postgres over the socket to database DB of
# the bench cluster, stopping at the first error.
db_admin() {
	local db=$1
	shift
	PG_ADMIN_DB=$db pg_admin -v ON_ERROR_STOP=1 "$@"
}

# crab_psql PORT DB ARGS...: psql through a PgCrab as its client pgcrab.
crab_psql() {
	local port=$1 db=$2
	shift 2
	PGPASSWORD=pgcrab timeout 600 psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
		-U pgcrab -d "$db" "$@"
}

# setup_sharded_pgbench: the 2-shard copy of the bench database, databases
# bench_app_0 and bench_app_1 on the bench cluster. pgbench_accounts is
# split by aid as PostgreSQL's own PARTITION BY HASH (MODULUS 2) splits it,
# so that placement does not rest on PgCrab's hash; pgbench_branches,
# tellers and history are copied whole to both (unsharded tables).
setup_sharded_pgbench() {
	local i db dump=("$PG_BIN/pg_dump" -h "$PG_DIR" -p "$PG_PORT" -U postgres) n total=0
	SHARD_PORTS=() SHARD_DIRS=() SHARD_DBS=()
	pgshards_databases "$SHARDED_DB" 2
	db_admin "$PG_DB" -c "CREATE TABLE bench_split (LIKE pgbench_accounts) PARTITION BY HASH (aid)" \
		-c "CREATE TABLE bench_split_0 PARTITION OF bench_split FOR VALUES WITH (MODULUS 2, REMAINDER 0)" \
		-c "CREATE TABLE bench_split_1 PARTITION OF bench_split FOR VALUES WITH (MODULUS 2, REMAINDER 1)" \
		-c "INSERT INTO bench_split SELECT * FROM pgbench_accounts" >/dev/null
	for i in 0 1; do
		db=${SHARD_DBS[i]}
		"${dump[@]}" --section=pre-data -t 'pgbench_*' "$PG_DB" | db_admin "$db" >/dev/null
		"${dump[@]}" --section=data -t pgbench_branches -t pgbench_tellers -t pgbench_history "$PG_DB" |
			db_admin "$db" >/dev/null
		db_admin "$PG_DB" -c "COPY bench_split_$i TO STDOUT" | db_admin "$db" -c "COPY pgbench_accounts FROM STDIN"
		"${dump[@]}" --section=post-data -t 'pgbench_*' "$PG_DB" | db_admin "$db" >/dev/null
		db_admin "$db" -c "VACUUM ANALYZE" -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
			-c "SELECT pg_prewarm(c) FROM unnest(ARRAY['pgbench_accounts','pgbench_accounts_pkey',
				'pgbench_branches','pgbench_tellers']) c" >/dev/null
		n=$(db_admin "$db" -c "SELECT count(*) FROM pgbench_accounts")
		log "shard $i ($db): $n of pgbench_accounts' rows"
		((n > 0)) || { echo "bench: shard $i got no rows" >&2; return 1; }
		total=$((total + n))
	done
	db_admin "$PG_DB" -c "DROP TABLE bench_split" -c "CHECKPOINT" >/dev/null
	((total == 100000 * SCALE)) || { echo "bench: the shards hold $total rows, not $((100000 * SCALE))" >&2; return 1; }
	# Each Bind is routed by its aid; a SELECT sent to the wrong shard finds
	# no row, and \gset then fails the transaction: pgbench reports it.
	cat >"$tmp/select_by_aid.sql" <<'SQL'
\set aid random(1, 100000 * :scale)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid \gset
SQL
}

# start_shard_pooler: one PgCrab (--workers 2) with both databases of the
# sharded cells: the unsharded bench database (the [shard.*] clients name
# directly, as in the matrix) and bench_app over the two shards.
start_shard_pooler() {
	local sections
	sections=$(
		SHARD_POOL_LINES="min_connections = $SHARD_POOL
max_connections = $SHARD_POOL" PG_HOST=$(pooler_pg_host) pgshards_sections "$SHARDED_DB"
		pgshards_table pgbench_accounts "$SHARDED_DB" aid int4
	)
	PGCRAB_EXTRA_SECTIONS=$sections start_pgcrab shard-w2 2 2000
	local n
	n=$(crab_psql "${PORT[shard-w2]}" "$SHARDED_DB" -c "SELECT count(*) FROM pgbench_accounts")
	[[ $n == $((100000 * SCALE)) ]] || { echo "bench: count(*) through $SHARDED_DB: $n" >&2; return 1; }
}

# setup_merge_shards: 3 databases bench_merge_0..2, each holding the rows of
# t (id int8, the key; x, the sort column; a 64-byte payload) whose id
# hashes to it, as satisfies_hash_partition says for MODULUS 3.
MERGE_DB=bench_merge
setup_merge_shards() {
	local i n total=0
	SHARD_PORTS=() SHARD_DIRS=() SHARD_DBS=()
	pgshards_databases "$MERGE_DB" 3
	for i in 0 1 2; do
		# x = 7919 g mod 1000003: distinct for the first million ids, and in
		# an order that has nothing to do with the key's
		db_admin "${SHARD_DBS[i]}" -c "CREATE TABLE merge_probe (id int8) PARTITION BY HASH (id)" \
			-c "CREATE TABLE t (id int8 PRIMARY KEY, x int8 NOT NULL, payload text NOT NULL)" \
			-c "INSERT INTO t SELECT g, (g * 7919) % 1000003, repeat(md5(g::text), 2)
				FROM generate_series(1::int8, $MERGE_ROWS) g
				WHERE satisfies_hash_partition('merge_probe'::regclass, 3, $i, g::int8)" \
			-c "CREATE INDEX t_x ON t (x)" -c "VACUUM ANALYZE t" >/dev/null
		n=$(db_admin "${SHARD_DBS[i]}" -c "SELECT count(*) FROM t")
		total=$((total + n))
		log "merge shard $i: $n rows"
	done
	((total == MERGE_ROWS)) || { echo "bench: merge shards hold $total rows, not $MERGE_ROWS" >&2; return 1; }
}

# rss_sampler PID FILE: VmRSS of PID every 50 ms; on SIGTERM writes "peak
# samples" (KiB) to FILE and ends. Started in the background.
rss_sampler() {
	local pid=$1 file=$2 peak=0 n=0 k v
	trap 'echo "$peak $n" >"$file"; exit 0' TERM
	while :; do
		while read -r k v _; do
			[[ $k == VmRSS: ]] && break
		done <"/proc/$pid/status"
		((v > peak)) && peak=$v
		n=$((n + 1))
		sleep 0.05
	done
}

MERGE=$out/merge.tsv
printf 'query\trepeat\trows\tloops\tcheck\trss_before_kib\trss_peak_kib\trss_after_kib\tgrowth_kib\tsamples\tseconds\n' >"$MERGE"
# merge_one NAME REPEAT ROWS LOOPS SQL: SQL LOOPS times in one session
# (a quick query is repeated so that the 50 ms samples see it run), each
# answer ROWS rows, through the merge database while PgCrab's
# VmRSS is sampled; the rows are counted and their order checked (x, the
# second column, never decreasing); with a LIMIT they are also compared
# with the merge of each shard's own first rows, read directly.
merge_one() {
	local name=$1 rep=$2 expected=$3 loops=$4 sql=$5 pid=${PID[merge-w2]} port=${PORT[merge-w2]}
	local before after sampler t0 t1 rows disorder check=ok peak samples args=() i
	sleep 0.5
	before=$(rss_kib "$pid")
	rss_sampler "$pid" "$tmp/rss.peak" &
	sampler=$!
	t0=$(date +%s.%N)
	# psql reads the whole answer as fast as it comes; awk counts the rows,
	# checks their order and keeps the first thousand sort values.
	for ((i = 0; i < loops; i++)); do args+=(-c "$sql"); done
	crab_psql "$port" "$MERGE_DB" -F ' ' "${args[@]}" | awk -v n="$expected" -v head="$tmp/merge.head" '
		(NR - 1) % n != 0 && $2 + 0 < prev {bad++}
		{prev = $2 + 0}
		NR <= n && NR <= 1000 {print $2 >head}
		END {print NR, bad + 0}' >"$tmp/merge.count"
	t1=$(date +%s.%N)
	kill -TERM "$sampler"
	wait "$sampler" || true
	read -r peak samples <"$tmp/rss.peak"
	after=$(rss_kib "$pid")
	((after > peak)) && peak=$after
	read -r rows disorder <"$tmp/merge.count"
	((disorder == 0)) || check="$disorder rows out of order"
	((rows == expected * loops)) || check="$rows rows, not $loops x $expected"
	rows=$expected
	if [[ $sql == *LIMIT* ]]; then
		local limit=${sql##*LIMIT } i
		for i in 0 1 2; do
			db_admin "${SHARD_DBS[i]}" -c "SELECT x FROM t ORDER BY x LIMIT $limit"
		done | sort -n | head -n "$limit" >"$tmp/merge.expected"
		cmp -s "$tmp/merge.head" "$tmp/merge.expected" || check="differs from the shards' own first $limit"
	fi
	rm -f "$tmp/merge.head"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rep" "$rows" "$loops" "$check" "$before" "$peak" \
		"$after" $((peak - before)) "$samples" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')" >>"$MERGE"
	log "merge: $name #$rep: $loops x $rows rows ($check), VmRSS $before -> peak $peak KiB (+$(((peak - before) / 1024)) MiB), after $after KiB"
}

# --- routing cost: no PostgreSQL, measured while the machine is quiet ----------
log "results: $out"
if [[ -f "$PGCRAB_LIB" ]]; then
	# shellcheck disable=SC2086
	if ${CC:-cc} -O2 -std=gnu11 -D_GNU_SOURCE -I"$repo" -o "$tmp/route_cost" bench/route_cost.c "$PGCRAB_LIB" \
		${BENCH_LDLIBS:-$(pkg-config --libs liburing inih libcrypto libsystemd libpq) -lpg_query -lpthread} \
		2>"$tmp/route_cost-build.log"; then
		printf 'run\t' >"$out/route_cost.tsv"
		for rep in 1 2 3; do
			"$tmp/route_cost" 2 | awk -v r="$rep" 'NR == 1 && r == 1 {print} NR > 1 {print r "\t" $0}'
		done >>"$out/route_cost.tsv"
		log "routing cost: $(awk -F'\t' '$2 == "select-by-aid-param" {printf "%s us parse, %s us cache hit, %s us bind", $3, $4, $5; exit}' "$out/route_cost.tsv")"
	else
		log "routing cost: bench/route_cost.c did not build against $PGCRAB_LIB (see logs)"
	fi
else
	log "routing cost: no $PGCRAB_LIB (make builds it); skipped"
fi

# --- PostgreSQL -------------------------------------------------------------
log "starting PostgreSQL 15 (max_connections 1200, shared_buffers $SHARED_BUFFERS)"
pg_start "$tmp/pg"
cat >>"$PG_DIR/data/postgresql.conf" <<CONF
# make bench
synchronous_commit = off
max_connections = 1200
shared_buffers = $SHARED_BUFFERS
CONF
as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w -t 120 restart >/dev/null \
	|| { tail -20 "$PG_DIR/postgres.log" >&2; exit 1; }
log "pgbench -i -s $SCALE"
PGPASSWORD=$PG_PASSWORD timeout 600 pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" \
	-U "$PG_USER" "$PG_DB" >"$tmp/pgbench-init.log" 2>&1 || { cat "$tmp/pgbench-init.log" >&2; exit 1; }
# Direct clients log in the way clients log in to the poolers: a cleartext
# password (hba method "password"), checked against an md5 secret so that the
# check is cheap. With SCRAM, 1,000 pgbench clients spend most of -T logging in
# (PBKDF2 on both ends), since -T counts the initial connection time.
DIRECT_USER=bench_direct
DIRECT_PASSWORD=bench_direct
pg_admin -c "SET password_encryption = 'md5'" \
	-c "CREATE ROLE $DIRECT_USER LOGIN SUPERUSER PASSWORD '$DIRECT_PASSWORD'" >/dev/null
as_pg sed -i "1i host all $DIRECT_USER 127.0.0.1/32 password" "$PG_DIR/data/pg_hba.conf"
pg_admin -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
PG_ADMIN_DB=$PG_DB pg_admin -c "CREATE EXTENSION IF NOT EXISTS pg_prewarm" \
	-c "SELECT pg_prewarm(c) FROM unnest(ARRAY['pgbench_accounts','pgbench_accounts_pkey',
		'pgbench_branches','pgbench_tellers']) c" -c "CHECKPOINT" >/dev/null || true

# --- throughput matrix ------------------------------------------------------
log "starting pgcrab --workers 1, pgcrab --workers 2, pgbouncer (pool $POOL_SIZE, transaction mode)"
start_pgcrab pgcrab-w1 1 2000
start_pgcrab pgcrab-w2 2 2000
[[ -n "$BASE_BIN" ]] && start_pgcrab base-w2 2 2000 "$BASE_BIN"
start_pgbouncer pgbouncer 2000
sleep 2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for workload in $WORKLOADS; do
	workload_args "$workload" >/dev/null
	for clients in $CLIENTS; do
		for rep in $(seq 1 "$REPEATS"); do
			for target in "${TARGETS[@]}"; do
				run_one "$workload" "$clients" "$target" "$rep"
			done
		done
	done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
for name in pgcrab-w1 pgcrab-w2 pgbouncer ${BASE_BIN:+base-w2}; do stop_pooler "$name"; done

# --- TLS: clients with sslmode=require ---------------------------------------------
if [[ -n "$TLS_CLIENTS" ]]; then
	log "TLS: PostgreSQL ssl = on, pgcrab --workers 2 and pgbouncer with client TLS"
	make_tls_cert
	cp "$tmp/tls/server.crt" "$tmp/tls/server.key" "$PG_DIR/data/"
	[[ $(id -u) -eq 0 ]] && chown postgres: "$PG_DIR/data/server.crt" "$PG_DIR/data/server.key"
	pg_admin -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 1
	start_pgcrab_tls pgcrab-tls
	start_pgbouncer pgbouncer-tls 2000 tls
	sleep 2
	RUNS=$out/tls.tsv
	runs_header "$RUNS"
	LOAD_TLS_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	for workload in $TLS_WORKLOADS; do
		workload_args "$workload" >/dev/null
		for clients in $TLS_CLIENTS; do
			for rep in $(seq 1 "$REPEATS"); do
				for target in direct-tls pgcrab-tls pgbouncer-tls; do
					run_one "$workload" "$clients" "$target" "$rep"
				done
			done
		done
	done
	LOAD_TLS_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
	stop_pooler pgcrab-tls
	stop_pooler pgbouncer-tls
	pg_admin -c "ALTER SYSTEM RESET ssl" -c "SELECT pg_reload_conf()" >/dev/null
	RUNS=$out/runs.tsv
fi

# storm_one METHOD TARGET REP: steady clients (-S -M extended, 16, logged in
# once) measured by run_one while 16 more log in and out without pause
# (-C) with the same method: what a login storm costs the pooler's other
# clients. The storm's logins/s go to storm.tsv.
STORM=$out/storm.tsv
printf 'method\ttarget\trepeat\tlogins_per_s\tfailed\n' >"$STORM"
storm_one() {
	local method=$1 target=$2 rep=$3 port sslmode=disable storm_out
	port=${PORT[$target]}
	[[ $method == *-tls ]] && sslmode=require
	storm_out=$tmp/storm.out
	PGSSLMODE=$sslmode PGPASSWORD=pgcrab timeout -k 5 $((SECONDS_PER_RUN + 60)) \
		pgbench -n -C -S -M simple -c 16 -j 1 -T "$SECONDS_PER_RUN" -h 127.0.0.1 -p "$port" \
		-U pgcrab "$PG_DB" >"$storm_out" 2>&1 &
	local storm_pid=$!
	run_one "storm-$method" 16 "$target" "$rep"
	wait "$storm_pid" || true
	printf '%s\t%s\t%s\t%s\t%s\n' "$method" "$target" "$rep" \
		"$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$storm_out")" \
		"$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$storm_out")" >>"$STORM"
}

# --- logins: a login per transaction, for each client auth method -------------------
if [[ -n "$AUTH_METHODS" ]]; then
	# PostgreSQL's own SCRAM verifier of the password pgcrab, and its md5
	# hash for user pgcrab. Both poolers log in to PostgreSQL as
	# bench_login, whose verifier is that very one: PgBouncer 1.18 logs in
	# to the server with a SCRAM client's own keys even for the database
	# line's user, so the two must share the verifier.
	pg_admin -c "SET password_encryption = 'scram-sha-256'" \
		-c "CREATE ROLE bench_login LOGIN SUPERUSER PASSWORD 'pgcrab'" >/dev/null
	SCRAM_SECRET=$(pg_admin -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'bench_login'")
	MD5_SECRET=md5$(printf '%s' pgcrabpgcrab | md5sum | cut -d' ' -f1)
	[[ -f $tmp/tls/server.crt ]] || make_tls_cert
	RUNS=$out/logins.tsv
	runs_header "$RUNS"
	LOAD_AUTH_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	for method in $AUTH_METHODS; do
		auth=$method secret=pgcrab tls=
		case $method in
		md5) secret=$MD5_SECRET ;;
		scram-sha-256) secret=$SCRAM_SECRET ;;
		scram-tls) auth=scram-sha-256 secret=$SCRAM_SECRET tls=tls ;;
		trust | plain) ;;
		*) echo "bench: unknown auth method $method" >&2; exit 1 ;;
		esac
		log "logins: $method (pgcrab --workers 2 and pgbouncer, auth_type = $auth${tls:+, TLS})"
		start_pgcrab_auth "pgcrab-$method" "$auth" "$secret" "$tls"
		BOUNCER_AUTH_TYPE=$auth BOUNCER_SECRET=$secret BOUNCER_DB_USER=bench_login \
			BOUNCER_DB_PASSWORD=pgcrab start_pgbouncer "pgbouncer-$method" 2000 "$tls"
		sleep 2
		for clients in $AUTH_CLIENTS; do
			for rep in $(seq 1 "$REPEATS"); do
				for target in "pgcrab-$method" "pgbouncer-$method"; do
					run_one "login-$method" "$clients" "$target" "$rep"
				done
			done
		done
		if [[ $method == scram* ]]; then
			for rep in $(seq 1 "$REPEATS"); do
				for target in "pgcrab-$method" "pgbouncer-$method"; do
					storm_one "$method" "$target" "$rep"
				done
			done
		fi
		stop_pooler "pgcrab-$method"
		stop_pooler "pgbouncer-$method"
	done
	LOAD_AUTH_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
	RUNS=$out/runs.tsv
fi

# --- sharded against unsharded: pgbench by key ---------------------------------
if [[ -n "$SHARD_CLIENTS" ]]; then
	log "2-shard copy of pgbench_accounts ($SHARDED_DB: 2 databases on this cluster)"
	setup_sharded_pgbench
	log "starting pgcrab --workers 2 with $PG_DB (unsharded) and $SHARDED_DB (2 shards, $SHARD_POOL connections each)"
	start_shard_pooler
	sleep 2
	RUNS=$out/sharded.tsv
	runs_header "$RUNS"
	LOAD_SHARD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	for workload in $SHARD_WORKLOADS; do
		workload_args "$workload" >/dev/null
		for clients in $SHARD_CLIENTS; do
			for rep in $(seq 1 "$REPEATS"); do
				for target in unsharded sharded; do
					run_one "$workload" "$clients" "$target" "$rep"
				done
			done
		done
	done
	LOAD_SHARD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
	stop_pooler shard-w2
	PGOPTIONS="-c client_min_messages=warning" pg_admin -c "DROP DATABASE ${SHARDED_DB}_0" \
		-c "DROP DATABASE ${SHARDED_DB}_1" >/dev/null
fi

# --- cross-shard merge: PgCrab's memory -----------------------------------------
if [[ -n "$MERGE_ROWS" ]]; then
	log "$MERGE_ROWS rows of t over 3 shards ($MERGE_DB: 3 databases on this cluster)"
	setup_merge_shards
	PGCRAB_EXTRA_SECTIONS="$(
		SHARD_POOL_LINES="min_connections = 1
max_connections = 20" PG_HOST=$(pooler_pg_host) pgshards_sections "$MERGE_DB"
		pgshards_table t "$MERGE_DB" id int8
	)" start_pgcrab merge-w2 2 100
	# Every shard's connection open and a fan-out done once before the
	# first measurement: their memory is not the merge's.
	crab_psql "${PORT[merge-w2]}" "$MERGE_DB" -c "SELECT count(*) FROM t" >/dev/null
	for rep in $(seq 1 "$REPEATS"); do
		merge_one order-by-limit-100 "$rep" 100 1000 "SELECT id, x, payload FROM t ORDER BY x LIMIT 100"
		merge_one order-by-all "$rep" "$MERGE_ROWS" 1 "SELECT * FROM t ORDER BY x"
	done
	stop_pooler merge-w2
fi

# --- idle clients: memory and login cost --------------------------------------
if [[ -n "$IDLE" ]]; then
	for name in pgcrab-w1 pgcrab-w2 pgbouncer; do memory_test "$name"; done
fi

# --- report -----------------------------------------------------------------
cat >"$out/meta.env" <<META
stamp=$stamp
quick=$QUICK
seconds=$SECONDS_PER_RUN
repeats=$REPEATS
clients=$CLIENTS
workloads=$WORKLOADS
threads=$THREADS
scale=$SCALE
pool_size=$POOL_SIZE
pooler_to_pg=$POOLER_TO_PG
nofile=$NOFILE
bouncer_nofile=${BOUNCER_NOFILE:-?}
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
nproc=$(nproc)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
kernel=$(uname -r)
os=$(. /etc/os-release && echo "$PRETTY_NAME")
postgres=$("$PG_BIN/postgres" --version)
pgbouncer=$("$PGBOUNCER" --version | head -1)
pgbench=$(pgbench --version)
pgcrab=$("$PGCRAB_BIN" --version 2>&1 | head -1)
base_bin=${BASE_BIN}
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet HEAD -- 2>/dev/null || echo ' (with local changes)')
load_before=$LOAD_BEFORE
load_after=$LOAD_AFTER
shard_clients=$SHARD_CLIENTS
shard_workloads=$SHARD_WORKLOADS
shard_pool=$SHARD_POOL
load_shard_before=${LOAD_SHARD_BEFORE:-}
load_shard_after=${LOAD_SHARD_AFTER:-}
load_tls_before=${LOAD_TLS_BEFORE:-}
load_tls_after=${LOAD_TLS_AFTER:-}
load_auth_before=${LOAD_AUTH_BEFORE:-}
load_auth_after=${LOAD_AUTH_AFTER:-}
merge_rows=$MERGE_ROWS
shared_buffers=$SHARED_BUFFERS
elapsed=$(($(date +%s) - START_TIME))
META
python3 bench/report.py "$out"
echo "$out/report.md"
