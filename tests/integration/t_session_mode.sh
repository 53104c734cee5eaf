# pool_mode = session: a client keeps its server connection; LISTEN/NOTIFY,
# SQL PREPARE and temporary tables work; DISCARD ALL cleans the connection
# before the next client gets it.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
pgcrab_start "min_connections = 1
max_connections = 1" "pool_mode = session" || exit 1

out=$(timeout 60 $PY - "$(PC_CONN)" <<'PY'
import sys
import psycopg
dsn = sys.argv[1]
fails = 0
def expect(name, want, got):
    global fails
    ok = want == got
    fails += not ok
    print(("ok" if ok else "not ok") + " - %s: %r" % (name, got))
with psycopg.connect(dsn, autocommit=True) as c:
    pid1 = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    got = []
    c.add_notify_handler(lambda n: got.append(n.payload))
    c.execute("LISTEN crab")
    c.execute("NOTIFY crab, 'hello'")
    c.execute("SELECT 1")
    expect("LISTEN/NOTIFY delivered", ["hello"], got)
    c.execute("PREPARE p(int) AS SELECT $1 * 3")
    expect("SQL PREPARE/EXECUTE across statements", 21, c.execute("EXECUTE p(7)").fetchone()[0])
    c.execute("CREATE TEMP TABLE tmp_crab (a int)")
    c.execute("INSERT INTO tmp_crab VALUES (1)")
    expect("temp table within the session", 1, c.execute("SELECT count(*) FROM tmp_crab").fetchone()[0])
    expect("same backend for the whole session", pid1, c.execute("SELECT pg_backend_pid()").fetchone()[0])
with psycopg.connect(dsn, autocommit=True) as c:
    expect("the next client gets the same server connection", pid1, c.execute("SELECT pg_backend_pid()").fetchone()[0])
    expect("the temp table did not survive into its session", None,
           c.execute("SELECT to_regclass('pg_temp.tmp_crab')").fetchone()[0])
    expect("nor the prepared statement", 0, c.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0])
    expect("nor the LISTEN", 0, c.execute("SELECT count(*) FROM pg_listening_channels()").fetchone()[0])
sys.exit(1 if fails else 0)
PY
)
echo "$out"
[[ $(grep -c '^ok - ' <<<"$out") -eq 8 ]] || not_ok "session mode checks ran"
exit 0
