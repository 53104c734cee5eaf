"""One client held across online upgrades (t_takeover): it sets session
parameters (a startup one, SET application_name, SET search_path) and
prepares a named statement (extended protocol), then waits. Each time the
file argv[5].N appears (N = 1, 2, ...: after the N-th upgrade) it checks,
on the same connection, that the parameters and the statement are still
there and that its cancel key still cancels its own query, then writes
"checked N" to argv[6]. argv: port user password db rounds go_prefix state"""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgwire import SYNC, Conn, bind, execute, msg, parse  # noqa: E402

port, user, password, db = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
rounds, go, state = int(sys.argv[5]), sys.argv[6], sys.argv[7]
fails = 0


def expect(name, want, got):
    global fails
    good = want == got
    fails += not good
    print(("ok - " if good else "not ok - ") + name + ("" if good else ": expected %r, got %r" % (want, got)),
          flush=True)


def query(c, sql):
    c.send(msg(b"Q", sql.encode() + b"\0"))
    return c.until_ready()


def value(c, sql):
    got = query(c, sql)
    return next((x for x in got if x[:2] in ("D:", "E:")), got)


def cancel_later(pid, key, delay):
    time.sleep(delay)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(struct.pack("!iiii", 16, 80877102, pid, key))
    s.recv(1)  # the server closes it
    s.close()


c = Conn(port, user, password, db, extra_float_digits="2")
c.s.settimeout(60)
expect("SET application_name", ["C:SET", "Z:I"], query(c, "SET application_name = 'ho_app'"))
expect("SET search_path", ["C:SET", "Z:I"], query(c, "SET search_path TO ho_schema, public"))
c.send(parse("ho_stmt", "SELECT $1::int + 1"), SYNC)
expect("Parse of a named statement", ["1", "Z:I"], c.until_ready())
with open(state, "w") as f:
    f.write("ready\n")

for n in range(1, rounds + 1):
    while not os.path.exists("%s.%d" % (go, n)):
        time.sleep(0.1)
    after = " after upgrade %d" % n
    expect("application_name kept" + after, "D:ho_app", value(c, "SHOW application_name"))
    expect("search_path kept" + after, "D:ho_schema, public", value(c, "SHOW search_path"))
    expect("a startup parameter kept" + after, "D:2", value(c, "SHOW extra_float_digits"))
    c.send(bind("ho_stmt", [41]), execute(), SYNC)
    expect("the prepared statement runs" + after, ["2", "D:42", "C:SELECT 1", "Z:I"], c.until_ready())
    t = threading.Thread(target=cancel_later, args=(c.pid, c.key, 1.0))
    t.start()
    got = query(c, "SELECT pg_sleep(30)")
    t.join()
    expect("its cancel key cancels its query" + after, "E:57014",
           next((x for x in got if x.startswith("E:")), got))
    with open(state, "a") as f:
        f.write("checked %d\n" % n)
c.close()
sys.exit(1 if fails else 0)
