"""A client that selects ~200 MB and reads it slowly, or not at all.
  slow_reader.py PORT USER PASSWORD DB slow   pauses 5 ms after every read;
      prints "rows N bytes B seconds S"
  slow_reader.py PORT USER PASSWORD DB stall  sends the query, prints
      "sent", never reads; exits (closing the socket) when stdin closes
The client's receive buffer is kept small so PgCrab feels the pace."""
import socket
import struct
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import pgwire  # noqa: E402

port, user, password, db, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
c = pgwire.Conn(port, user=user, password=password, db=db)
c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 131072)
c.s.settimeout(120)
c.send(pgwire.msg(b"Q", pgwire.cstr("SELECT repeat('x', 1000) FROM generate_series(1, 200000)")))
if mode == "stall":
    print("sent", flush=True)
    sys.stdin.read()
    sys.exit(0)
start = time.monotonic()
buf, rows, total = b"", 0, 0
while True:
    chunk = c.s.recv(262144)
    if not chunk:
        print("closed early rows %d bytes %d" % (rows, total))
        sys.exit(1)
    total += len(chunk)
    buf += chunk
    done = False
    while len(buf) >= 5:
        n = 1 + struct.unpack("!i", buf[1:5])[0]
        if len(buf) < n:
            break
        if buf[:1] == b"D":
            rows += 1
        elif buf[:1] == b"E":
            print("error " + pgwire.error_code(buf[5:n]))
            sys.exit(1)
        elif buf[:1] == b"Z":
            done = True
        buf = buf[n:]
    if done:
        break
    time.sleep(0.005)
print("rows %d bytes %d seconds %.1f" % (rows, total, time.monotonic() - start))
c.close()
