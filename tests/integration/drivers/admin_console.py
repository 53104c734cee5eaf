"""The admin console seen by a client program: each SHOW's columns in
PgBouncer's order, and numbers that match what this script did to the pool.

admin_console.py PORT SHARD POOL_SIZE
Logs in as pgcrab/pgcrab (admin_users) and viewer/viewer (stats_users).
Prints "ok - ..." / "not ok - ..." lines.
"""
import os
import socket
import sys
import threading
import time

import psycopg

port, shard, pool_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
failed = 0


def report(name, good, detail=""):
    global failed
    if good:
        print(f"ok - {name}")
    else:
        failed += 1
        print(f"not ok - {name}: {detail}")


def connect(user, password, dbname, **kw):
    return psycopg.connect(
        f"host=127.0.0.1 port={port} user={user} password={password} dbname={dbname} "
        "connect_timeout=5",
        autocommit=True, cursor_factory=psycopg.ClientCursor, **kw)


def show(conn, what):
    cur = conn.execute(f"SHOW {what}")
    cols = [d.name for d in cur.description]
    return cols, [dict(zip(cols, r)) for r in cur.fetchall()]


# PgBouncer 1.18's columns, in its order; PgCrab may add its own after them.
EXPECTED = {
    "POOLS": ["database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req",
              "cl_waiting_cancel_req", "sv_active", "sv_active_cancel", "sv_being_canceled",
              "sv_idle", "sv_used", "sv_tested", "sv_login", "maxwait", "maxwait_us",
              "pool_mode"],
    "CLIENTS": ["type", "user", "database", "state", "addr", "port", "local_addr",
                "local_port", "connect_time", "request_time", "wait", "wait_us",
                "close_needed", "ptr", "link", "remote_pid", "tls", "application_name"],
    "SERVERS": ["type", "user", "database", "state", "addr", "port", "local_addr",
                "local_port", "connect_time", "request_time", "wait", "wait_us",
                "close_needed", "ptr", "link", "remote_pid", "tls", "application_name"],
    "DATABASES": ["name", "host", "port", "database", "force_user", "pool_size",
                  "min_pool_size", "reserve_pool", "pool_mode", "max_connections",
                  "current_connections", "paused", "disabled"],
    "LISTS": ["list", "items"],
    "USERS": ["name", "pool_mode"],
    "CONFIG": ["key", "value", "default", "changeable"],
    "VERSION": ["version"],
}

admin = connect("pgcrab", "pgcrab", "pgcrab")
for what, cols in EXPECTED.items():
    got, _ = show(admin, what)
    report(f"SHOW {what} has PgBouncer's columns in order",
           got[:len(cols)] == cols, f"got {got}")
for what in ("WORKERS", "SHARDS"):
    got, rows = show(admin, what)
    report(f"SHOW {what} answers rows", len(rows) > 0, f"{got} {rows}")
report("commands are case-insensitive with a trailing ';'",
       len(admin.execute("show lists ;").fetchall()) == 14)

# the pool is pool_size servers: that many clients in a transaction hold
# them all, IDLE more sit logged in, WAIT more queue behind them
IDLE, WAIT = 3, 2
idle = [connect("pgcrab", "pgcrab", shard) for _ in range(IDLE)]
holders = [connect("pgcrab", "pgcrab", shard) for _ in range(pool_size)]
for h in holders:
    h.execute("BEGIN")
    h.execute("SELECT 1")
waiters = [connect("pgcrab", "pgcrab", shard) for _ in range(WAIT)]
done = []
threads = [threading.Thread(target=lambda c=c: done.append(c.execute("SELECT 2").fetchone()))
           for c in waiters]
for t in threads:
    t.start()


def pool_row():
    _, rows = show(admin, "POOLS")
    return next(r for r in rows if r["database"] == shard)


deadline = time.time() + 10
while time.time() < deadline and pool_row()["cl_waiting"] != WAIT:
    time.sleep(0.05)
time.sleep(0.2)  # a wait long enough to show in maxwait_us
row = pool_row()
report("SHOW POOLS cl_waiting counts the queued clients", row["cl_waiting"] == WAIT, row)
report("SHOW POOLS cl_active counts idle and linked clients",
       row["cl_active"] == IDLE + pool_size, row)
report("SHOW POOLS sv_active counts the servers in a transaction",
       row["sv_active"] == pool_size, row)
report("SHOW POOLS sv_idle is 0 with every server lent", row["sv_idle"] == 0, row)
report("SHOW POOLS maxwait_us shows a wait",
       row["maxwait"] > 0 or row["maxwait_us"] > 0, row)

_, clients = show(admin, "CLIENTS")
mine = [c for c in clients if c["database"] == shard]
report("SHOW CLIENTS lists every client of the shard",
       len(mine) == IDLE + pool_size + WAIT, f"{len(mine)} rows")
report("SHOW CLIENTS shows the console client itself",
       any(c["database"] == "pgcrab" for c in clients), clients)
report("SHOW CLIENTS says waiting for the queued ones",
       sum(c["state"] == "waiting" for c in mine) == WAIT, mine)
_, servers = show(admin, "SERVERS")
linked = {s["link"] for s in servers if s["state"] == "active"}
client_ptrs = {c["ptr"] for c in mine}
report("SHOW SERVERS links each active server to a listed client",
       len(linked) == pool_size and linked <= client_ptrs, f"{linked} vs {client_ptrs}")
_, lists = show(admin, "LISTS")
items = {r["list"]: r["items"] for r in lists}
report("SHOW LISTS used_clients counts every client",
       items["used_clients"] == IDLE + pool_size + WAIT + 1, items)
report("SHOW LISTS used_servers counts the servers", items["used_servers"] == pool_size, items)
_, dbs = show(admin, "DATABASES")
db = next(d for d in dbs if d["name"] == shard)
report("SHOW DATABASES current_connections", db["current_connections"] == pool_size, db)

for h in holders:
    h.execute("COMMIT")
for t in threads:
    t.join(10)
report("the queued clients ran once the servers came back", len(done) == WAIT, done)
row = pool_row()
report("SHOW POOLS cl_waiting is 0 again", row["cl_waiting"] == 0, row)
for c in idle + holders + waiters:
    c.close()

# stats_users may SHOW; anyone else is refused at login
viewer = connect("viewer", "viewer", "pgcrab")
_, rows = show(viewer, "POOLS")
report("a stats_users user may SHOW", any(r["database"] == shard for r in rows), rows)
viewer.close()
try:
    connect("plain", "plain", "pgcrab").close()
    report("a user in neither list is refused the console", False, "logged in")
except psycopg.OperationalError as e:
    report("a user in neither list is refused the console", "pgcrab console" in str(e), str(e))
try:
    connect("pgcrab", "wrong", "pgcrab").close()
    report("a wrong password is refused on the console", False, "logged in")
except psycopg.OperationalError as e:
    report("a wrong password is refused on the console", "password authentication failed" in str(e), str(e))

# KILL_CLIENT closes just that client (found by its socket's port)
victim = connect("pgcrab", "pgcrab", shard)
bystander = connect("pgcrab", "pgcrab", shard)
vport = socket.socket(fileno=os.dup(victim.pgconn.socket)).getsockname()[1]
_, clients = show(admin, "CLIENTS")
ptr = next(c["ptr"] for c in clients if c["port"] == vport)
admin.execute(f"KILL_CLIENT {ptr}")
try:
    victim.execute("SELECT 1")
    report("KILL_CLIENT closes the client", False, "it still answers")
except psycopg.Error as e:
    report("KILL_CLIENT closes the client", "administrator command" in str(e) or e.sqlstate == "57P01", f"{e.sqlstate} {e}")
report("KILL_CLIENT leaves other clients alone", bystander.execute("SELECT 3").fetchone() == (3,))
bystander.close()
try:
    admin.execute("KILL_CLIENT 999999999")
    report("KILL_CLIENT of no client is an error", False, "answered")
except psycopg.Error as e:
    report("KILL_CLIENT of no client is an error", e.sqlstate == "42704", f"{e.sqlstate} {e}")
viewer = connect("viewer", "viewer", "pgcrab")
for cmd in ("KILL_CLIENT 1", "SHUTDOWN"):
    try:
        viewer.execute(cmd)
        report(f"a stats_users user may not run {cmd}", False, "ran")
    except psycopg.Error as e:
        report(f"a stats_users user may not run {cmd}", e.sqlstate == "42501", f"{e.sqlstate} {e}")
viewer.close()

# the extended protocol gets an error, and the session goes on
ext = psycopg.connect(f"host=127.0.0.1 port={port} user=pgcrab password=pgcrab dbname=pgcrab",
                      autocommit=True)
try:
    ext.execute("SHOW POOLS", prepare=True).fetchall()
    report("the extended protocol is refused on the console", False, "answered")
except psycopg.Error as e:
    report("the extended protocol is refused on the console",
           e.sqlstate == "0A000", f"{e.sqlstate} {e}")
ext.cursor_factory = psycopg.ClientCursor
report("the console session goes on after the refusal",
       len(ext.execute("SHOW VERSION").fetchall()) == 1)
try:
    ext.execute("SHOW NOTHING")
    report("an unknown command is an error", False, "answered")
except psycopg.Error as e:
    report("an unknown command is an error", e.sqlstate == "42601", f"{e.sqlstate} {e}")
ext.close()
admin.close()
sys.exit(1 if failed else 0)
