"""psycopg 3 (libpq) in transaction mode: options in the conninfo, SET,
a temp table, LISTEN/NOTIFY (notify handler and conn.notifies()) and SQL
PREPARE/EXECUTE hold for client A across transactions while client B
runs in between, and B sees none of A's. argv: conninfo (without options)"""
import os
import sys
import threading
import traceback

import psycopg


def crashed(kind, e, tb):
    print("not ok - psycopg: the script ran to its end: %s: %s (%s)"
          % (kind.__name__, e, traceback.extract_tb(tb)[-1].line), flush=True)
    os._exit(1)


sys.excepthook = crashed

dsn = sys.argv[1]
fails = 0


def expect(name, want, got):
    global fails
    good = want == got
    fails += not good
    print(("ok - psycopg: %s" % name) if good else ("not ok - psycopg: %s: expected %r, got %r" % (name, want, got)),
          flush=True)


def one(c, sql):
    try:
        return c.execute(sql).fetchone()[0]
    except psycopg.Error as e:
        return "error %s: %s" % (e.sqlstate, e)


def run(c, sql):
    """A statement whose failure is reported and does not stop the script."""
    try:
        c.execute(sql)
    except psycopg.Error as e:
        expect("%s" % sql, "no error", "error %s: %s" % (e.sqlstate, e))


a = psycopg.connect(dsn, options="-c work_mem=5MB -c statement_timeout=6000", autocommit=True)
b = psycopg.connect(dsn, autocommit=True)
for r in range(2):
    expect("round %d: A's options -c in the conninfo" % r, ("5MB", "6s"),
           (one(a, "SHOW work_mem"), one(a, "SHOW statement_timeout")))
    expect("round %d: B has the defaults" % r, ("4MB", "0"), (one(b, "SHOW work_mem"), one(b, "SHOW statement_timeout")))
run(a, "SET work_mem = '9MB'")
expect("B after A's SET work_mem", "4MB", one(b, "SHOW work_mem"))
with a.transaction():
    expect("A's SET in its next transaction", "9MB", one(a, "SHOW work_mem"))

run(a, "CREATE TEMP TABLE crab_drv_tmp (a int)")
run(a, "INSERT INTO crab_drv_tmp VALUES (1), (2)")
expect("B does not see A's temp table", True, one(b, "SELECT to_regclass('crab_drv_tmp') IS NULL"))
with a.transaction():
    expect("A's temp table in a later transaction", 2, one(a, "SELECT count(*) FROM crab_drv_tmp"))
expect("B still does not", True, one(b, "SELECT to_regclass('crab_drv_tmp') IS NULL"))
run(a, "DISCARD TEMP")

got = []
a.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
run(a, "LISTEN crab_drv")
run(b, "NOTIFY crab_drv, 'one'")
a.execute("SELECT 1")
with a.transaction():
    a.execute("SELECT 2")
run(b, "NOTIFY crab_drv, 'two'")
a.execute("SELECT 3")
expect("LISTEN: A gets B's notifications across transactions", [("crab_drv", "one"), ("crab_drv", "two")], got)
expect("B does not listen", 0, one(b, "SELECT count(*) FROM pg_listening_channels()"))

run(a, "PREPARE crab_drv_p(int) AS SELECT $1 * 2")
expect("B does not see A's PREPARE", 0, one(b, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'crab_drv_p'"))
expect("A's EXECUTE in a later statement", 42, one(a, "EXECUTE crab_drv_p(21)"))
with a.transaction():
    expect("and inside a transaction", 20, one(a, "EXECUTE crab_drv_p(10)"))
run(a, "DEALLOCATE crab_drv_p")

# conn.notifies(): waits for a notification while A is idle (last: a
# notification that never comes leaves the generator blocked)
run(b, "NOTIFY crab_drv, 'idle'")
seen = []
t = threading.Thread(target=lambda: seen.append(next(a.notifies())), daemon=True)
t.start()
t.join(5)
expect("conn.notifies() delivers B's NOTIFY to idle A", [("crab_drv", "idle")], [(n.channel, n.payload) for n in seen])
print("# done", flush=True)
os._exit(1 if fails else 0)
