"""A query still running in the old process when an upgrade's new process
takes the sockets over: its cancel, which reaches the new process, must
still cancel it; then, between transactions, the client is handed over and
goes on. Creates argv[5] once the query runs, waits for argv[6], sends the
CancelRequest. argv: port user password db ready go"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgwire import Conn, msg  # noqa: E402

port, user, password, db, ready, go = sys.argv[1:7]
port = int(port)
c = Conn(port, user, password, db)
c.s.settimeout(90)
c.send(msg(b"Q", b"SELECT pg_sleep(60)\0"))
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.1)
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(struct.pack("!iiii", 16, 80877102, c.pid, c.key))
s.recv(1)
s.close()
got = c.until_ready()
print(("ok - " if "E:57014" in got else "not ok - ")
      + "a query in the old process is cancelled through the new one (%s)" % " ".join(got), flush=True)
c.send(msg(b"Q", b"SELECT 7\0"))
got = c.until_ready()
print(("ok - " if "D:7" in got else "not ok - ")
      + "then its client goes on, handed over (%s)" % " ".join(got), flush=True)
c.close()
