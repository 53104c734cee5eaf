"""Logs in through PgCrab and runs one query; prints "ok", "E:SQLSTATE"
(from the login or the query) or "closed", then the seconds it took.
Usage: query_once.py PORT USER PASSWORD DB SQL"""
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import pgwire  # noqa: E402

port, user, password, db, sql = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
start = time.monotonic()
try:
    c = pgwire.Conn(port, user=user, password=password, db=db)
    c.s.settimeout(60)
    c.send(pgwire.msg(b"Q", pgwire.cstr(sql)))
    result = "closed"
    try:
        while True:
            t, data = c.read()
            if t == "E" and result == "closed":
                result = "E:" + pgwire.error_code(data)
            elif t == "Z":
                if result == "closed":
                    result = "ok"
                break
    except (EOFError, ConnectionResetError):
        if result == "closed" and c.buf:
            result = "closed+%d" % len(c.buf)  # bytes of an unfinished message
except RuntimeError as e:
    result = "E:" + str(e)
except (EOFError, ConnectionResetError, BrokenPipeError):
    result = "closed"
except OSError as e:
    result = "oserror:" + type(e).__name__
print("%s %.1f" % (result, time.monotonic() - start))
