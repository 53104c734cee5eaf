"""SHUTDOWN WAIT_FOR_CLIENTS: a client in a transaction keeps being served,
no new client gets in, and PgCrab ends once the last client has left.

admin_shutdown.py PORT SHARD PID
"""
import os
import sys
import time

import psycopg

port, shard, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
failed = 0


def report(name, good, detail=""):
    global failed
    print(f"ok - {name}" if good else f"not ok - {name}: {detail}")
    failed += 0 if good else 1


def connect(dbname):
    return psycopg.connect(f"host=127.0.0.1 port={port} user=pgcrab password=pgcrab "
                           f"dbname={dbname} connect_timeout=5", autocommit=True,
                           cursor_factory=psycopg.ClientCursor)


def alive():
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


client = connect(shard)
client.execute("BEGIN")
client.execute("CREATE TEMP TABLE t (x int)")
admin = connect("pgcrab")
admin.execute("SHUTDOWN WAIT_FOR_CLIENTS")
admin.close()
time.sleep(0.5)
refused = False
try:
    connect(shard).close()
except psycopg.OperationalError:
    refused = True
report("SHUTDOWN WAIT_FOR_CLIENTS takes no new client", refused)
client.execute("INSERT INTO t VALUES (1)")
report("a client in a transaction is served on", client.execute("SELECT count(*) FROM t").fetchone() == (1,))
client.execute("COMMIT")
report("...and between transactions too", client.execute("SELECT 2").fetchone() == (2,))
report("PgCrab still runs while a client is connected", alive())
client.close()
deadline = time.time() + 15
while time.time() < deadline and alive():
    time.sleep(0.1)
report("PgCrab ends once the last client has left", not alive())
sys.exit(1 if failed else 0)
