"""Raw CancelRequests through PgCrab. argv: port mode
mode "keys": the BackendKeyData cancels its own client's query only; wrong,
forged and stale keys cancel nothing.
mode "shared" (pool of one server connection): an idle client's cancel does
not reach the client now running on the server connection it used.
Prints "ok - ..." / "not ok - ..."."""
import socket
import struct
import sys
import threading
import time

from pgwire import Conn, msg, cstr

port, mode = int(sys.argv[1]), sys.argv[2]
failed = 0
DONE = ["D:", "C:SELECT 1", "Z:I"]  # pg_sleep ran to its end
CANCELED = ["E:57014", "Z:I"]


def cancel(pid, key):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(struct.pack("!iiii", 16, 80877102, pid, key))
    s.recv(1)  # the pooler closes it
    s.close()


def timed(c, sql, canceller=None, after=0.3):
    """Runs sql on c, firing canceller after `after` s: (tokens, seconds)."""
    if canceller:
        threading.Timer(after, canceller).start()
    start = time.monotonic()
    c.send(msg(b"Q", cstr(sql)))
    r = c.until_ready()
    return [x for x in r if not x.startswith("T")], round(time.monotonic() - start, 2)


def report(ok, name, detail):
    global failed
    failed += not ok
    print(("ok" if ok else "not ok") + " - %s: %r" % (name, detail))


if mode == "keys":
    keys = set()
    for i in range(4):
        c = Conn(port)
        keys.add((c.pid, c.key))
        r, took = timed(c, "SELECT pg_sleep(30)", lambda: cancel(c.pid, c.key))
        report(r == CANCELED and took < 1.3, "raw CancelRequest %d with the BackendKeyData: 57014" % i, (r, took))
        c.close()
    report(len(keys) == 4, "each client got its own BackendKeyData", sorted(keys))

    victim, other = Conn(port), Conn(port)
    threading.Timer(0.3, cancel, (victim.pid, victim.key)).start()
    other.send(msg(b"Q", cstr("SELECT pg_sleep(1.5)")))
    r, took = timed(victim, "SELECT pg_sleep(30)")
    r2 = [x for x in other.until_ready() if not x.startswith("T")]
    report(r == CANCELED and r2 == DONE, "a cancel reaches only its own client; a concurrent client finishes", (r, r2))

    r, took = timed(victim, "SELECT pg_sleep(1.5)", lambda: cancel(victim.pid, victim.key ^ 0x5a5a5a5a))
    report(r == DONE and took >= 1.4, "the right pid with a wrong key cancels nothing", (r, took))
    r, took = timed(victim, "SELECT pg_sleep(1.5)", lambda: cancel(victim.pid ^ 0x7fff, victim.key))
    report(r == DONE and took >= 1.4, "the right key with a wrong pid cancels nothing", (r, took))
    r, took = timed(victim, "SELECT pg_sleep(1.5)", lambda: [cancel(p, k) for p, k in sorted(keys)])
    report(r == DONE and took >= 1.4, "keys of clients that have left cancel nothing", (r, took))
    r, took = timed(victim, "SELECT pg_sleep(1.5)", lambda: cancel(other.pid, other.key))
    report(r == DONE and took >= 1.4, "an idle client's key cancels nothing", (r, took))
    r, _ = timed(victim, "SELECT 1")
    report(r == ["D:1", "C:SELECT 1", "Z:I"], "the victim is still usable", r)
    r, _ = timed(other, "SELECT 2")
    report(r == ["D:2", "C:SELECT 1", "Z:I"], "and so is the idle client", r)
elif mode == "shared":
    a, b = Conn(port), Conn(port)
    ra, _ = timed(a, "SELECT pg_backend_pid()")
    r, took = timed(b, "SELECT pg_sleep(1.5), pg_backend_pid()", lambda: cancel(a.pid, a.key))
    report(r[:1] == ["D:," + ra[0][2:]] and r[1:] == ["C:SELECT 1", "Z:I"] and took >= 1.4,
           "an idle client's cancel does not reach the next user of its server connection", (ra, r, took))
    r, took = timed(b, "SELECT pg_sleep(30)", lambda: cancel(b.pid, b.key))
    report(r == CANCELED and took < 1.3, "while B's own cancel does", (r, took))
    r, _ = timed(a, "SELECT 2")
    report(r == ["D:2", "C:SELECT 1", "Z:I"], "and A still works", r)
sys.exit(1 if failed else 0)
