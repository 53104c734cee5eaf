"""A client that runs short transactions until it is killed: BEGIN, an
update, a short sleep, COMMIT, again. Usage: victim.py PORT USER PASSWORD DB"""
import sys

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import pgwire  # noqa: E402

port, user, password, db = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
c = pgwire.Conn(port, user=user, password=password, db=db)
i = 0
while True:
    i += 1
    c.send(pgwire.msg(b"Q", pgwire.cstr(
        "BEGIN; UPDATE t_soak SET n = n + 1 WHERE id = %d; SELECT pg_sleep(0.02); COMMIT" % (i % 50 + 1))))
    c.until_ready()
