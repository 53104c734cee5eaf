#!/usr/bin/env python3
"""Everything in one packet: StartupMessage, PasswordMessage, a Query and
Terminate, written at once before reading anything (legal: nothing forbids
a client from sending ahead). Prints the message types received until the
server closes, then 'closed'. Usage: one_packet.py HOST PORT USER PASSWORD DB"""
import socket
import struct
import sys

host, port, user, password, db = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]


def msg(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body


params = b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
startup = struct.pack("!II", len(params) + 8, 196608) + params
data = (startup + msg(b"p", password.encode() + b"\0")
        + msg(b"Q", b"SELECT 'one packet'\0") + msg(b"X", b""))
s = socket.create_connection((host, port), timeout=10)
s.sendall(data)
buf = b""
kinds = []
rows = []
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
    while len(buf) >= 5:
        n = struct.unpack("!I", buf[1:5])[0]
        if len(buf) < n + 1:
            break
        kind, body = buf[:1].decode(), buf[5:n + 1]
        kinds.append(kind)
        if kind == "D":
            rows.append(body[6:].decode())
        buf = buf[n + 1:]
print("".join(k for k in kinds if k != "S"), rows, "closed")
