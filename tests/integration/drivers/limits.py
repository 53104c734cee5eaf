"""Client-side probes for connection limits and login timeouts.

  limits.py PORT USER PASSWORD DB cap N
      opens N logged-in clients and holds them; then one more: prints its
      result (E:SQLSTATE, closed, or ok); then runs SELECT 1 on every held
      client and prints how many answered; then closes one held client and
      tries a new one again (prints its result).
  limits.py PORT USER PASSWORD DB flood N
      opens up to N logged-in clients, holding them; prints
      "served S refused53300 R other O"; then every held client sends a
      query at once: prints "answered A"; then closes them all.
  limits.py PORT silent | drip | nopassword
      a client that sends nothing / its startup packet one byte a second /
      its startup packet but no password; prints how PgCrab ended it and
      after how many seconds ("E:08P01 2.1", "closed 2.0", "open 9.0").
"""
import socket
import struct
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import pgwire  # noqa: E402

port = int(sys.argv[1])


def try_login(user, password, db):
    try:
        return pgwire.Conn(port, user=user, password=password, db=db), "ok"
    except RuntimeError as e:
        return None, "E:" + str(e)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return None, "closed"
    except OSError as e:  # a timeout: left waiting, never answered
        return None, type(e).__name__


def query_ok(c):
    try:
        c.send(pgwire.msg(b"Q", pgwire.cstr("SELECT 1")))
        return "D:1" in c.until_ready()
    except (OSError, EOFError):
        return False


def startup_bytes():
    body = struct.pack("!i", 196608) + b"user\0pgcrab\0database\0x\0\0"
    return struct.pack("!i", len(body) + 4) + body


def watch(s, start, limit=10.0, drip=b""):
    """Drips bytes (if any) once a second until the peer ends the socket."""
    s.settimeout(0.2)
    data, i, next_byte = b"", 0, start
    while time.monotonic() - start < limit:
        now = time.monotonic()
        if i < len(drip) and now >= next_byte:
            try:
                s.send(drip[i:i + 1])
            except OSError:
                break
            i += 1
            next_byte += 1.0
        try:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        except socket.timeout:
            continue
        except OSError:
            break
    else:
        return "open %.1f" % (time.monotonic() - start)
    end = time.monotonic() - start
    if data[:1] == b"E":
        return "%s %.1f" % ("E:" + pgwire.error_code(data[5:]), end)
    return "closed %.1f" % end


mode = sys.argv[2] if len(sys.argv) == 3 else sys.argv[5]
if mode in ("silent", "drip", "nopassword"):
    s = socket.create_connection(("127.0.0.1", port))
    start = time.monotonic()
    if mode == "silent":
        print(watch(s, start))
    elif mode == "drip":
        print(watch(s, start, drip=startup_bytes()))
    else:
        s.sendall(startup_bytes())
        print(watch(s, start))
    sys.exit(0)

user, password, db, n = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[6])
if mode == "cap":
    held = [try_login(user, password, db)[0] for _ in range(n)]
    extra, result = try_login(user, password, db)
    print("extra", result)
    print("held", sum(1 for c in held if c is not None and query_ok(c)))
    held[0].close()
    time.sleep(0.5)
    again, result = try_login(user, password, db)
    print("after", result + (":query" if again and query_ok(again) else ""))
elif mode == "flood":
    held, refused, other = [], 0, 0
    for _ in range(n):
        c, result = try_login(user, password, db)
        if c:
            held.append(c)
        elif result == "E:53300":
            refused += 1
        else:
            other += 1
    print("served %d refused53300 %d other %d" % (len(held), refused, other), flush=True)
    # all at once, while every fd is taken: more servers are wanted than
    # PgCrab can open sockets for, so some wait for the one it has
    for c in held:
        c.send(pgwire.msg(b"Q", pgwire.cstr("SELECT 1 FROM pg_sleep(0.1)")))
    answered = 0
    for c in held:
        try:
            answered += "D:1" in c.until_ready()
        except (OSError, EOFError):
            pass
    print("answered %d" % answered)
    for c in held:
        c.close()
