"""PAUSE of every database while a sharded database's client is in a
transaction on one shard: the transaction still gets the other shard it
needs (else PAUSE would wait for a transaction it keeps from ending), and
PAUSE answers once it commits. Prints TAP lines.

admin_pause_shard.py PORT DATABASE KEY_ON_SHARD_0 KEY_ON_SHARD_1
"""
import sys
import threading
import time

import psycopg

port, db, k0, k1 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
failed = 0


def report(name, good, detail=""):
    global failed
    print(f"ok - {name}" if good else f"not ok - {name}: {detail}", flush=True)
    failed += 0 if good else 1


def connect(dbname):
    # keys are ints of ours, written into the text: the router reads them there
    return psycopg.connect(f"host=127.0.0.1 port={port} user=pgcrab password=pgcrab "
                           f"dbname={dbname} connect_timeout=5", autocommit=True)


def until(cond, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


client = connect(db)
admin = connect("pgcrab")
client.execute("BEGIN")
client.execute(f"INSERT INTO t (id, v) VALUES ({k0}, 1)")
answer = {}
pause = threading.Thread(target=lambda: answer.update(tag=admin.execute("PAUSE").statusmessage),
                         daemon=True)
pause.start()
time.sleep(0.3)  # let PAUSE reach the workers; the check below holds either way
report("PAUSE waits while the sharded transaction is open", pause.is_alive())
try:
    client.execute(f"INSERT INTO t (id, v) VALUES ({k1}, 2)")
    report("the open transaction gets a server of the other (paused) shard", True)
except psycopg.Error as e:
    report("the open transaction gets a server of the other (paused) shard", False, str(e))
client.execute("COMMIT")
report("PAUSE answers once the transaction has committed",
       until(lambda: not pause.is_alive()) and answer.get("tag") == "PAUSE", answer)
admin.execute("RESUME")
n = client.execute(f"SELECT count(*) FROM t WHERE id IN ({k0}, {k1})").fetchone()[0]
report("both rows were committed", n == 2, n)
client.close()
admin.close()
sys.exit(1 if failed else 0)
