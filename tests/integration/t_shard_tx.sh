# Transactions in a sharded database (issue 13): a statement goes to the
# shard of its key, BEGIN opens on the shard of the first statement, a
# transaction that writes on two shards commits there with two-phase
# commit, a shard that cannot prepare rolls everything back, and a PgCrab
# killed in the middle of a commit has its transaction finished (both ways)
# by the next PgCrab: no prepared transaction is left behind.
source "$(dirname "$0")/lib.sh"
source "$REPO_DIR/scripts/pgshards.sh"
if [[ $PC_DIRECT == 1 ]]; then
	skip "transactions in a sharded database" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: nothing routes to shards"
	exit 0
fi
trap 'rc=$?; pgshards_stop; (exit $rc); t_cleanup' EXIT
SHARD_OF=${UNIT_DIR:-$REPO_DIR/build/tests}/shard_of
[[ -x "$SHARD_OF" ]] || SHARD_OF=$REPO_DIR/build/tests/shard_of

pgshards_databases_2pc "$T_DIR" stx 2 || { not_ok "2 shard databases are created"; exit 1; }
sections="$(
	pgshards_sections app
	pgshards_table t2pc app id int8
)"
start() { PGCRAB_EXTRA_SECTIONS="$sections" pgcrab_start "" "" "$@"; }
start || exit 1
app() {
	timeout 60 psql -X -q -At -v ON_ERROR_STOP=1 \
		-d "host=127.0.0.1 port=$PGCRAB_PORT user=$PC_USER password=$PC_PASSWORD dbname=app connect_timeout=5" "$@"
}
on_shard() { pgshards_psql "$@"; }
prepared_left() { echo $(($(on_shard 0 -c "SELECT count(*) FROM pg_prepared_xacts") + $(on_shard 1 -c "SELECT count(*) FROM pg_prepared_xacts"))); }
none_prepared() { test "$(prepared_left)" -eq 0; }
shard1_prepared() { test "$(on_shard 1 -c "SELECT count(*) FROM pg_prepared_xacts")" -ge 1; }
shard1_preparing() { test "$(on_shard 1 -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'PREPARE TRANSACTION%' AND state = 'active'")" -ge 1; }

# keys on each shard, as PostgreSQL's hash partitioning places them
mapfile -t shards < <(seq 1 40 | "$SHARD_OF" 2 int8)
k0=() k1=()
for i in "${!shards[@]}"; do
	[[ ${shards[i]} == 0 ]] && k0+=($((i + 1))) || k1+=($((i + 1)))
done
check "shard_of places keys on both shards" test "${#k0[@]}" -gt 4 -a "${#k1[@]}" -gt 4

check "DDL through PgCrab reaches every shard" app -c "
	CREATE TABLE t2pc (id int8 PRIMARY KEY, v text);
	CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN PERFORM pg_sleep(4); RETURN NULL; END \$\$;
	CREATE FUNCTION fail_commit() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RAISE EXCEPTION 'refused at commit'; END \$\$;
	CREATE CONSTRAINT TRIGGER t2pc_slow AFTER INSERT ON t2pc DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW WHEN (NEW.v = 'slow') EXECUTE FUNCTION slow_commit();
	CREATE CONSTRAINT TRIGGER t2pc_fail AFTER INSERT ON t2pc DEFERRABLE INITIALLY DEFERRED
		FOR EACH ROW WHEN (NEW.v = 'fail') EXECUTE FUNCTION fail_commit();"
for i in 0 1; do
	expect_eq "t2pc and its triggers exist on shard $i" 2 "$(on_shard $i -c "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 't2pc_%'")"
done

# one shard: the row is where its key says, and only there
app -c "INSERT INTO t2pc (id, v) VALUES (${k0[0]}, 'a')"
app -c "INSERT INTO t2pc (id, v) VALUES (${k1[0]}, 'b')"
expect_eq "a key of shard 0 is on shard 0 only" "${k0[0]}|" "$(on_shard 0 -c "SELECT string_agg(id::text, ',') FROM t2pc")|$(on_shard 1 -c "SELECT string_agg(id::text, ',') FROM t2pc WHERE id = ${k0[0]}")"
expect_eq "a key of shard 1 is on shard 1" "b" "$(on_shard 1 -c "SELECT v FROM t2pc WHERE id = ${k1[0]}")"
expect_eq "a point read through PgCrab finds each" "a b" "$(app -c "SELECT v FROM t2pc WHERE id = ${k0[0]}") $(app -c "SELECT v FROM t2pc WHERE id = ${k1[0]}")"

# a transaction on one shard: BEGIN opens there, ROLLBACK undoes
app -c "BEGIN" -c "INSERT INTO t2pc (id, v) VALUES (${k0[1]}, 'r')" -c "ROLLBACK"
expect_eq "ROLLBACK undoes a one-shard transaction" 0 "$(on_shard 0 -c "SELECT count(*) FROM t2pc WHERE id = ${k0[1]}")"
out=$(app -c "BEGIN" -c "SELECT txid_current_if_assigned() IS NULL" -c "INSERT INTO t2pc (id, v) VALUES (${k1[1]}, 'c')" -c "COMMIT" 2>&1)
expect_eq "a one-shard transaction commits" 1 "$(on_shard 1 -c "SELECT count(*) FROM t2pc WHERE id = ${k1[1]}")"

# two shards: two-phase commit
app -c "BEGIN" -c "INSERT INTO t2pc (id, v) VALUES (${k0[2]}, 'x')" -c "INSERT INTO t2pc (id, v) VALUES (${k1[2]}, 'y')" -c "COMMIT"
expect_eq "a two-shard transaction commits on both" "1 1" "$(on_shard 0 -c "SELECT count(*) FROM t2pc WHERE id = ${k0[2]}") $(on_shard 1 -c "SELECT count(*) FROM t2pc WHERE id = ${k1[2]}")"
expect_eq "no prepared transaction is left" 0 "$(prepared_left)"
app -c "BEGIN" -c "INSERT INTO t2pc (id, v) VALUES (${k0[3]}, 'x')" -c "INSERT INTO t2pc (id, v) VALUES (${k1[3]}, 'y')" -c "ROLLBACK"
expect_eq "ROLLBACK undoes a two-shard transaction" "0 0" "$(on_shard 0 -c "SELECT count(*) FROM t2pc WHERE id = ${k0[3]}") $(on_shard 1 -c "SELECT count(*) FROM t2pc WHERE id = ${k1[3]}")"

# an UPDATE without the key writes on both shards, atomically
app -c "UPDATE t2pc SET v = v || '!' WHERE v IN ('x', 'y')"
expect_eq "an UPDATE without the key reaches both shards" "x! y!" "$(on_shard 0 -c "SELECT v FROM t2pc WHERE id = ${k0[2]}") $(on_shard 1 -c "SELECT v FROM t2pc WHERE id = ${k1[2]}")"
expect_eq "its count is the sum of both" "UPDATE 2" "$(app -c "UPDATE t2pc SET v = v WHERE v IN ('x!', 'y!')" -c '\echo :ROW_COUNT' 2>&1 | sed 's/^/UPDATE /')"

# a shard that cannot prepare: everything is rolled back, the client is told
out=$(app -c "BEGIN" -c "INSERT INTO t2pc (id, v) VALUES (${k0[4]}, 'ok')" -c "INSERT INTO t2pc (id, v) VALUES (${k1[4]}, 'fail')" -c "COMMIT" 2>&1)
expect_match "the failed PREPARE's error reaches the client" "refused at commit" "$out"
expect_eq "...and nothing of the transaction stays" "0 0 0" "$(on_shard 0 -c "SELECT count(*) FROM t2pc WHERE id = ${k0[4]}") $(on_shard 1 -c "SELECT count(*) FROM t2pc WHERE id = ${k1[4]}") $(prepared_left)"

# an error in a transaction: the rest of it is refused until ROLLBACK
out=$(app -v ON_ERROR_STOP=0 -c "BEGIN" -c "INSERT INTO t2pc (id, v) VALUES (${k0[5]}, 'e')" -c "INSERT INTO t2pc (id, v) VALUES (${k0[5]}, 'dup')" \
	-c "INSERT INTO t2pc (id, v) VALUES (${k1[5]}, 'after')" -c "COMMIT" 2>&1)
expect_match "a statement after an error in the transaction is refused" "current transaction is aborted" "$out"
expect_eq "...and COMMIT rolls it all back" "0 0" "$(on_shard 0 -c "SELECT count(*) FROM t2pc WHERE id = ${k0[5]}") $(on_shard 1 -c "SELECT count(*) FROM t2pc WHERE id = ${k1[5]}")"

# hints: a comment or the session's SET sends a statement without a key
n0=$(on_shard 0 -c "SELECT count(*) FROM t2pc")
n1=$(on_shard 1 -c "SELECT count(*) FROM t2pc")
expect_eq "without a key, count(*) is every shard's, summed" "$((n0 + n1))" "$(app -c "SELECT count(*) FROM t2pc")"
expect_eq "/* pgcrab_shard: 1 */ reads shard 1 only" "$n1" "$(app -c "/* pgcrab_shard: 1 */ SELECT count(*) FROM t2pc")"
expect_eq "/* pgcrab_key: K */ reads the shard of K" "$n0" "$(app -c "/* pgcrab_key: ${k0[0]} */ SELECT count(*) FROM t2pc")"
expect_eq "SET pgcrab.shard holds for the session, RESET ends it" "$n0 $n0 $((n0 + n1))" \
	"$(app -c "SET pgcrab.shard = 0" -c "SELECT count(*) FROM t2pc" -c "BEGIN" -c "SELECT count(*) FROM t2pc" -c "COMMIT" -c "RESET pgcrab.shard" -c "SELECT count(*) FROM t2pc" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "SET pgcrab.sharding_key routes like the key" "$n1" "$(app -c "SET pgcrab.sharding_key = '${k1[0]}'" -c "SELECT count(*) FROM t2pc")"
out=$(app -c "/* pgcrab_shard: 7 */ SELECT 1" 2>&1)
expect_match "a shard number out of range is refused" "shard|range" "$out"

# PgCrab killed while the coordinator (shard 0) commits: the decision was
# commit, so the next PgCrab commits what shard 1 prepared
(app -c "BEGIN" -c "INSERT INTO t2pc (id, v) VALUES (${k1[6]}, 'p')" -c "INSERT INTO t2pc (id, v) VALUES (${k0[6]}, 'slow')" -c "COMMIT" >/dev/null 2>&1 &)
poll 20 shard1_prepared
kill -KILL "$PGCRAB_PID"
wait "$PGCRAB_PID" 2>/dev/null
PGCRAB_PID=
expect_eq "killed between PREPARE and COMMIT PREPARED: one transaction is prepared" 1 "$(on_shard 1 -c "SELECT count(*) FROM pg_prepared_xacts")"
start || exit 1
poll 30 none_prepared
expect_eq "the next PgCrab commits it (the coordinator committed)" "0 1 1" "$(prepared_left) $(on_shard 0 -c "SELECT count(*) FROM t2pc WHERE id = ${k0[6]}") $(on_shard 1 -c "SELECT count(*) FROM t2pc WHERE id = ${k1[6]}")"

# killed while shard 1 prepares: the coordinator's transaction dies with
# PgCrab's connection, so what shard 1 prepared is rolled back
(app -c "BEGIN" -c "INSERT INTO t2pc (id, v) VALUES (${k0[7]}, 'q')" -c "INSERT INTO t2pc (id, v) VALUES (${k1[7]}, 'slow')" -c "COMMIT" >/dev/null 2>&1 &)
poll 20 shard1_preparing
kill -KILL "$PGCRAB_PID"
wait "$PGCRAB_PID" 2>/dev/null
PGCRAB_PID=
start || exit 1
sleep 5 # the PREPARE finishes its sleep and takes
poll 30 none_prepared
expect_eq "killed during PREPARE: the next PgCrab rolls it back" "0 0 0" "$(prepared_left) $(on_shard 0 -c "SELECT count(*) FROM t2pc WHERE id = ${k0[7]}") $(on_shard 1 -c "SELECT count(*) FROM t2pc WHERE id = ${k1[7]}")"
pgcrab_stop

# cross_shard_writes = error and cross_shard_queries = error refuse, saying why
sections="$(
	pgshards_sections app "cross_shard_writes = error
cross_shard_queries = error"
	pgshards_table t2pc app id int8
)"
start || exit 1
out=$(app -c "BEGIN" -c "INSERT INTO t2pc (id, v) VALUES (${k0[8]}, 'w')" -c "INSERT INTO t2pc (id, v) VALUES (${k1[8]}, 'w')" -c "COMMIT" 2>&1)
expect_match "cross_shard_writes = error: a write on a second shard is refused (0A000)" "shard" "$out"
expect_eq "...and nothing of that transaction stays" "0 0" "$(on_shard 0 -c "SELECT count(*) FROM t2pc WHERE id = ${k0[8]}") $(on_shard 1 -c "SELECT count(*) FROM t2pc WHERE id = ${k1[8]}")"
out=$(app -c "SELECT count(*) FROM t2pc" 2>&1)
expect_match "cross_shard_queries = error: a read of every shard is refused" "shard" "$out"
expect_eq "...while a read by key still works" "a" "$(app -c "SELECT v FROM t2pc WHERE id = ${k0[0]}")"
pgcrab_stop
