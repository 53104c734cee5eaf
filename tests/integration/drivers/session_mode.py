"""pool_mode = session over ONE server connection: a client keeps its
backend for its whole life (LISTEN/NOTIFY, SQL PREPARE, temp tables, SET,
advisory locks work as on a direct connection); the next client gets the
same backend, cleaned. Prints "ok - ..." / "not ok - ...".
argv: pgcrab-dsn pgcrab-port direct-dsn"""
import sys
import threading
import time

import psycopg

from pgwire import Conn, msg, cstr

dsn, port, direct = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fails = 0


def expect(name, want, got):
    global fails
    ok = want == got
    fails += not ok
    print(("ok" if ok else "not ok") + " - %s: %r" % (name, got) + ("" if ok else " (expected %r)" % (want,)))


def one(c, sql, *args):
    return c.execute(sql, args or None).fetchone()[0]


with psycopg.connect(dsn, autocommit=True) as c:
    pid1 = one(c, "SELECT pg_backend_pid()")
    got = []
    c.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
    c.execute("LISTEN crab")
    c.execute("NOTIFY crab, 'hello'")
    c.execute("SELECT 1")
    expect("LISTEN/NOTIFY on the client's own session", [("crab", "hello")], got)
    c.execute("PREPARE p(int) AS SELECT $1 * 3")
    expect("SQL PREPARE then EXECUTE in a later statement", 21, one(c, "EXECUTE p(7)"))
    with c.transaction():
        expect("and inside a transaction", 30, one(c, "EXECUTE p(10)"))
    c.execute("CREATE TEMP TABLE tmp_crab (a int)")
    c.execute("INSERT INTO tmp_crab VALUES (1)")
    expect("temp table across statements", 1, one(c, "SELECT count(*) FROM tmp_crab"))
    c.execute("SET work_mem = '7MB'")
    expect("an unreported SET holds", "7MB", one(c, "SHOW work_mem"))
    expect("a session advisory lock", True, one(c, "SELECT pg_try_advisory_lock(4242)"))
    expect("same backend for the whole session", pid1, one(c, "SELECT pg_backend_pid()"))

    # a second client waits for the only server connection until this one leaves
    second = {}

    def wait_for_server():
        t0 = time.monotonic()
        with psycopg.connect(dsn, autocommit=True) as c2:
            second["pid"] = one(c2, "SELECT pg_backend_pid()")
            second["after"] = time.monotonic() - t0
    t = threading.Thread(target=wait_for_server)
    t.start()
    time.sleep(1.0)
    expect("a second client waits while the session holds the only server", {}, dict(second))
    # a notification sent from elsewhere arrives
    with psycopg.connect(direct, autocommit=True) as d:
        d.execute("NOTIFY crab, 'from outside'")
    c.execute("SELECT 1")
    expect("NOTIFY from another backend delivered", [("crab", "hello"), ("crab", "from outside")], got)
t.join(20)
expect("the waiting client then gets the same backend", pid1, second.get("pid"))
check_after = second.get("after", 0) >= 1.0
expect("only after the first left", True, check_after)

with psycopg.connect(dsn, autocommit=True) as c:
    expect("the next client gets the same server connection", pid1, one(c, "SELECT pg_backend_pid()"))
    expect("the temp table did not survive into its session", None, one(c, "SELECT to_regclass('pg_temp.tmp_crab')"))
    expect("nor the prepared statement", 0, one(c, "SELECT count(*) FROM pg_prepared_statements"))
    expect("nor the LISTEN", 0, one(c, "SELECT count(*) FROM pg_listening_channels()"))
    expect("nor the SET", "4MB", one(c, "SHOW work_mem"))
    expect("nor the advisory lock", 0, one(c, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))

# a client that vanishes inside a transaction: its transaction is rolled
# back before the backend is lent again
with psycopg.connect(dsn, autocommit=True) as c:
    c.execute("DROP TABLE IF EXISTS t_session_gone")
    c.execute("CREATE TABLE t_session_gone (a int)")
gone = Conn(port)
gone.send(msg(b"Q", cstr("BEGIN; INSERT INTO t_session_gone VALUES (1); SELECT pg_backend_pid()")))
r = gone.until_ready()
gone.s.close()  # no Terminate
with psycopg.connect(dsn, autocommit=True) as c:
    expect("after a client vanished mid-transaction the next one gets its backend",
           r[-3][2:], str(one(c, "SELECT pg_backend_pid()")))
    expect("idle, not in the vanished client's transaction", "IDLE", c.info.transaction_status.name)
    expect("and the vanished client's insert was rolled back", 0, one(c, "SELECT count(*) FROM t_session_gone"))
    c.execute("DROP TABLE t_session_gone")

# a notification reaches an idle client at once, without it sending anything
idle = Conn(port)
idle.send(msg(b"Q", cstr("LISTEN crab_idle")))
idle.until_ready()
with psycopg.connect(direct, autocommit=True) as d:
    d.execute("NOTIFY crab_idle, 'while idle'")
idle.s.settimeout(3)
try:
    kind, data = idle.read()
    channel, payload = data[4:].split(b"\0")[:2]
    got = (kind, channel.decode(), payload.decode())
except OSError as e:
    got = repr(e)
expect("a NotificationResponse reaches an idle LISTENing client", ("A", "crab_idle", "while idle"), got)
idle.close()
sys.exit(1 if fails else 0)
