"""PAUSE waits for a transaction in progress, holds a client's next one
until RESUME, and the console's refusals (a second PAUSE, RESUME of what
is not paused, unknown names, stats_users). Prints TAP lines.

admin_pause.py PORT SHARD OTHER_SHARD
admin_pause.py --sharded PORT DATABASE KEY_ON_SHARD_0 KEY_ON_SHARD_1
"""
import sys
import threading
import time

import psycopg

failed = 0
port = sys.argv[2] if sys.argv[1] == "--sharded" else sys.argv[1]


def report(name, good, detail=""):
    global failed
    print(f"ok - {name}" if good else f"not ok - {name}: {detail}", flush=True)
    failed += 0 if good else 1


def connect(dbname, user="pgcrab", password="pgcrab"):
    return psycopg.connect(f"host=127.0.0.1 port={port} user={user} password={password} "
                           f"dbname={dbname} connect_timeout=5", autocommit=True,
                           cursor_factory=psycopg.ClientCursor)


def rows(conn, what):
    cur = conn.execute(what)
    names = [d.name for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def until(cond, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def error_of(conn, command):
    """The SQLSTATE and message a console command fails with, or None."""
    try:
        conn.execute(command)
    except psycopg.Error as e:
        return e.sqlstate, str(e).strip()
    return None


class Background:
    """A statement run on its own thread; done and result tell how it went."""

    def __init__(self, conn, sql):
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self.run, args=(conn, sql), daemon=True)
        self.thread.start()

    def run(self, conn, sql):
        try:
            cur = conn.execute(sql)
            self.result = cur.fetchone() if cur.description else cur.statusmessage
        except psycopg.Error as e:
            self.error = e

    def done(self):
        return not self.thread.is_alive()


def sharded(db, k0, k1):
    """PAUSE of every database while a sharded database's client is in a
    transaction on one shard: the transaction still gets the other shard it
    needs (else PAUSE would wait for a transaction it keeps from ending),
    and PAUSE answers once it commits. Keys are ints of ours, written into
    the text, where the router reads them."""
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
    # PAUSE of the sharded database by its name pauses each of its shards
    def flags():
        cur = admin.execute("SHOW DATABASES")
        names = [d.name for d in cur.description]
        return {r[0]: r[names.index("paused")] for r in cur.fetchall()}
    report("PAUSE of a sharded database by name", admin.execute(f"PAUSE {db}").statusmessage == "PAUSE")
    f = flags()
    report("...marks it and each of its shards paused",
           f.get(db) == 1 and f.get(f"{db}_1") == 1 and f.get(f"{db}_2") == 1, f)
    admin.execute(f"RESUME {db}")
    f = flags()
    report("RESUME of it lifts all", f.get(db) == 0 and f.get(f"{db}_1") == 0 and f.get(f"{db}_2") == 0, f)
    client.close()
    admin.close()


if sys.argv[1] == "--sharded":
    sharded(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    sys.exit(1 if failed else 0)
shard, other = sys.argv[2], sys.argv[3]
admin = connect("pgcrab")
watch = connect("pgcrab")


def console_state(conn):
    """pgcrab_state of the console connection conn, as SHOW CLIENTS has it."""
    pid = conn.info.backend_pid
    for r in rows(watch, "SHOW CLIENTS"):
        if r["remote_pid"] == pid:
            return r["pgcrab_state"]
    return None


def pool(db):
    for r in rows(watch, "SHOW POOLS"):
        if r["database"] == db:
            return r
    return {}


def paused(db):
    for r in rows(watch, "SHOW DATABASES"):
        if r["name"] == db:
            return r["paused"]
    return None


# PAUSE waits for an open transaction to end
client = connect(shard)
client.execute("BEGIN")
client.execute("SELECT 1")
pause = Background(admin, f"PAUSE {shard}")
report("PAUSE waits while a transaction is open (the console is busy)",
       until(lambda: console_state(admin) == "admin_busy") and not pause.done(),
       console_state(admin))
report("SHOW DATABASES says paused while PAUSE waits", paused(shard) == 1, paused(shard))
report("the client in the transaction is served on",
       client.execute("SELECT 2").fetchone() == (2,))
report("PAUSE has not returned while the transaction is open", not pause.done())
client.execute("COMMIT")
report("PAUSE returns once the transaction has committed",
       until(pause.done) and pause.error is None and pause.result == "PAUSE",
       f"{pause.result} {pause.error}")

# while paused: the client stays connected and its next transaction waits
held = Background(client, "SELECT 42")
report("a paused client's next transaction waits (cl_waiting)",
       until(lambda: pool(shard).get("cl_waiting") == 1), pool(shard))
report("...and is not answered while paused", not held.done())
report("a second PAUSE of the same database is refused",
       (error_of(admin, f"PAUSE {shard}") or ("",))[0] == "55000")
other_conn = connect(other)
report("another database is served while this one is paused",
       other_conn.execute("SELECT 7").fetchone() == (7,))
report("SHOW DATABASES: the other database is not paused", paused(other) == 0, paused(other))
report("RESUME of a database that is not paused is refused",
       (error_of(admin, f"RESUME {other}") or ("",))[0] == "55000")
report("PAUSE of an unknown database is 3D000",
       (error_of(admin, "PAUSE no_such_db") or ("",))[0] == "3D000")
report("PAUSE of the console itself is refused",
       (error_of(admin, "PAUSE pgcrab") or ("",))[0] == "3D000")
viewer = connect("pgcrab", "viewer", "viewer")
report("a stats_users user may not PAUSE (42501)",
       (error_of(viewer, f"RESUME {shard}") or ("",))[0] == "42501")
report("...nor RECONNECT (42501)", (error_of(viewer, "RECONNECT") or ("",))[0] == "42501")
viewer.close()
admin.execute(f"RESUME {shard}")
report("RESUME releases the held transaction",
       until(held.done) and held.result == (42,), f"{held.result} {held.error}")
report("SHOW DATABASES: not paused after RESUME", paused(shard) == 0, paused(shard))

# PAUSE without a name: every database; RESUME without a name lifts it
report("PAUSE (every database) returns when nothing is in a transaction",
       admin.execute("PAUSE").statusmessage == "PAUSE")
report("SHOW DATABASES: both paused", paused(shard) == 1 and paused(other) == 1,
       (paused(shard), paused(other)))
report("a second PAUSE is refused (already paused)",
       (error_of(admin, "PAUSE") or ("",))[0] == "55000")
report("PAUSE of one database while all are paused is refused",
       (error_of(admin, f"PAUSE {other}") or ("",))[0] == "55000")
report("RESUME of one database under PAUSE of all is refused",
       (error_of(admin, f"RESUME {other}") or ("",))[0] == "55000")
held = Background(other_conn, "SELECT 8")
report("a transaction on the other database waits too",
       until(lambda: pool(other).get("cl_waiting") == 1), pool(other))
report("RESUME (every database)", admin.execute("RESUME").statusmessage == "RESUME")
report("...releases it", until(held.done) and held.result == (8,), f"{held.result} {held.error}")
report("RESUME when nothing is paused is refused",
       (error_of(admin, "RESUME") or ("",))[0] == "55000")
report("RECONNECT answers RECONNECT", admin.execute(f"RECONNECT {shard}").statusmessage == "RECONNECT")
report("the client is served after RECONNECT", client.execute("SELECT 3").fetchone() == (3,))

for c in (client, other_conn, admin, watch):
    c.close()
sys.exit(1 if failed else 0)
