"""Requests PgCrab answers itself while no server is free: a client that
pipelines hundreds of named Parse/Sync pairs (each answered without a
server, replies queued behind one another while a send is in flight), a
Parse too short to hold a name, and a login whose startup parameters are
larger than PgCrab's fixed login buffer.

Usage: pipeline_no_server.py PORT USER PASSWORD DB
Prints one 'ok - ...' or 'not ok - ...' line per check."""
import struct
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import pgwire  # noqa: E402

port, user, password, db = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
N = 400


def check(name, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + name + ("" if cond else ": " + detail))


# the pool's only server is held in a transaction by another client
holder = pgwire.Conn(port, user=user, password=password, db=db)
holder.send(pgwire.msg(b"Q", pgwire.cstr("BEGIN")))
holder.until_ready()

c = pgwire.Conn(port, user=user, password=password, db=db)
c.send(b"".join(pgwire.parse("s%d" % i, "SELECT %d" % i) + pgwire.SYNC for i in range(N)))
try:
    got = c.until_ready(N)
    parse_ok = got.count("1")
    ready = sum(1 for t in got if t.startswith("Z:"))
    detail = "%d ParseComplete, %d ReadyForQuery" % (parse_ok, ready)
except (EOFError, OSError) as e:
    parse_ok, ready, detail = 0, 0, "the connection was closed without an error: %r" % e
check("%d pipelined Parse/Sync pairs answered while no server is free" % N,
      parse_ok == N and ready == N, detail)

holder.send(pgwire.msg(b"Q", pgwire.cstr("COMMIT")))
holder.until_ready()
try:
    c.send(pgwire.bind("s%d" % (N - 1)), pgwire.execute(), pgwire.SYNC)
    got = c.until_ready()
except (EOFError, OSError) as e:
    got = [repr(e)]
check("and the last one runs once a server is free", "D:%d" % (N - 1) in got, str(got))
c.s.close()

# a Parse whose length leaves no room for a name, while no server is free
holder.send(pgwire.msg(b"Q", pgwire.cstr("BEGIN")))
holder.until_ready()
bad = pgwire.Conn(port, user=user, password=password, db=db)
bad.send(b"P\x00\x00\x00\x04" + pgwire.SYNC)
holder.send(pgwire.msg(b"Q", pgwire.cstr("COMMIT")))
holder.until_ready()
try:
    got = bad.until_ready()
    err = [t for t in got if t.startswith("E:")]
except (EOFError, RuntimeError, OSError) as e:
    err = [str(e)]
check("a Parse too short for a name is refused, not read past its end", bool(err), str(err))
holder.send(pgwire.msg(b"Q", pgwire.cstr("SELECT 1")))
check("and others are served", "D:1" in holder.until_ready())
holder.close()

# startup parameters larger than a 2 kB buffer: the login still completes
try:
    big = pgwire.Conn(port, user=user, password=password, db=db, application_name="x" * 6000,
                      search_path="public," + ",".join("s%d" % i for i in range(600)))
    big.send(pgwire.msg(b"Q", pgwire.cstr("SELECT 42")))
    got = big.until_ready()
    check("a login with 9 kB of startup parameters completes", "D:42" in got, str(got))
    big.close()
except (EOFError, RuntimeError, OSError) as e:
    check("a login with 9 kB of startup parameters completes", False, repr(e))
