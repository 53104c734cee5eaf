# Session state in transaction mode (the issue "transaction pooling carries
# or protects all session state"): startup parameters and options, SET of
# any parameter, SET ROLE / SESSION AUTHORIZATION, PostgreSQL's rules for
# SET/RESET/SET LOCAL/set_config in transactions and savepoints, pinning of
# temp tables, LISTEN, SQL PREPARE, advisory locks, WITH HOLD cursors and
# LOAD, and a shared protocol-level statement surviving ALTER TABLE. Two
# clients A and B alternate over a pool of ONE server connection, so any
# leak between them shows; the checks are in drivers/session_state.py and
# expect what PostgreSQL itself gives (PGCRAB_TEST_DIRECT=1 proves them).
# Phases: pool1 (max_connections = 1, a short query_wait_timeout), pool2
# (two servers: NOTIFY and locks between clients), session (pool_mode =
# session), error and off (pin_session_state = error / off).
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
drivers=$(cd "$(dirname "$0")/drivers" && pwd)

# phase NAME SHARD-LINES PGCRAB-LINES
phase() {
	local name=$1
	pgcrab_start --workers 2 "$2" "$3" || { not_ok "$name: pgcrab starts with [$3]"; return; }
	local out
	out=$(cd "$drivers" && timeout 50 $PY session_state.py "$name" "$PGCRAB_PORT" "$PC_USER" "$PC_PASSWORD" \
		"$PC_DIRECT" "$PG_PORT" "$PG_USER" "$PG_PASSWORD" 2>&1)
	grep -E '^(ok|not ok) - ' <<<"$out"
	grep -q "^# done $name" <<<"$out" || not_ok "$name: the checks ran to the end: $(tail -3 <<<"$out" | tr '\n' ' ')"
	pgcrab_stop
}

one="min_connections = 1
max_connections = 1"
phase pool1 "$one" "query_wait_timeout = 3s"
phase pool2 "min_connections = 2
max_connections = 2" ""
phase session "$one" "pool_mode = session"
phase error "$one" "pin_session_state = error"
phase off "$one" "pin_session_state = off"
exit 0
