# Issue 10's reproduction, with psql: twelve clients in a row over a pool of
# four each open a transaction (one that fails, then one that does not) and
# quit, psql sending Terminate inside the open transaction. Each must
# finish, the next client must be answered within a second, and no backend
# may be left idle in transaction; in transaction and session pooling.
# Before the fix the fifth psql waited for a server that never came back.
source "$(dirname "$0")/lib.sh"

idle_in_tx() {
	pg_admin -c "SELECT count(*) FROM pg_stat_activity
		WHERE usename = '$PG_USER' AND state LIKE 'idle in transaction%'"
}
none_idle_in_tx() { [[ "$(idle_in_tx)" == 0 ]]; }
ms_now() { echo $(($(date +%s%N) / 1000000)); }

for mode in transaction session; do
	for kind in failed open; do
		if [[ $kind == failed ]]; then
			sql='begin;\nselect 1/0;\n' want_rc=3 what="a failed" # psql's exit status after an error with ON_ERROR_STOP
		else
			sql='begin;\nselect 1;\n' want_rc=0 what="an open"
		fi
		name="$mode, 12 clients quitting inside $what transaction (pool of 4)"
		pgcrab_start "min_connections = 1
max_connections = 4" "pool_mode = $mode" || exit 1
		bad=
		for i in $(seq 1 12); do
			start=$(ms_now)
			# shellcheck disable=SC2059
			printf "$sql" | timeout 5 psql -X -q -v ON_ERROR_STOP=1 "$(PC_CONN)" >/dev/null 2>"$T_DIR/psql.err"
			rc=$?
			if [[ $rc -ne $want_rc ]]; then
				bad="client $i: exit $rc after $(($(ms_now) - start)) ms ($(head -c 200 "$T_DIR/psql.err" | tr '\n' ' '))"
				break # a stuck pool: the rest would only wait too
			fi
		done
		if [[ -z "$bad" ]]; then ok "$name: each finishes (exit $want_rc)"; else not_ok "$name: $bad"; fi

		start=$(ms_now)
		out=$(timeout 5 psql -X -At -c 'select 1' "$(PC_CONN)" 2>&1)
		took=$(($(ms_now) - start))
		if [[ "$out" == 1 && $took -le 1000 ]]; then
			ok "$name: then select 1 is answered within a second ($took ms)"
		else
			not_ok "$name: then select 1 is answered within a second: [$(head -c 200 <<<"$out" | tr '\n' ' ')] after $took ms"
		fi
		if poll 1 none_idle_in_tx; then
			ok "$name: no backend idle in transaction"
		else
			not_ok "$name: no backend idle in transaction: $(idle_in_tx) are"
		fi
		pgcrab_stop
	done
done
exit 0
