"""A hostile PostgreSQL server for tests: one listening port per mode,
given as MODE=PORT arguments; every connection to a port misbehaves the
same way. Prints "ready" once all ports listen; runs until killed.

Login-phase modes (PgCrab's login to the shard fails):
  close_mid_login   half an authentication request, then close
  unexpected_login  a DataRow instead of an authentication request
  oversize_login    an authentication request claiming 1 GiB
  error_login       ErrorResponse FATAL 28P01 during startup
  bad_scram         SCRAM: a server-first-message that is not one
  long_nonce        SCRAM: a server-first-message with a 30,000-byte nonce
  huge_nonce        SCRAM: a 200,000-byte server-first-message
Active-phase modes (login works, the first query gets):
  close_after_row   a RowDescription and a DataRow, then close
  close_mid_result  half a RowDescription, then close
  unexpected_kind   a message of kind '!'
  oversize_result   a DataRow claiming 2 GiB - 16 bytes
Blackholes (server_connect_timeout):
  silent            accepts, reads, never answers
  no_accept         listens with a backlog and never accepts
"""
import base64
import os
import socket
import struct
import sys
import threading


def msg(kind, body=b""):
    return kind + struct.pack("!i", len(body) + 4) + body


def recv_startup(c):
    while True:
        head = recvn(c, 4)
        body = recvn(c, struct.unpack("!i", head)[0] - 4)
        if body[:4] != struct.pack("!i", 80877103):
            return body
        c.sendall(b"N")  # an SSLRequest: no TLS here, as PostgreSQL with ssl = off


def recvn(c, n):
    data = b""
    while len(data) < n:
        chunk = c.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def recv_msg(c):
    head = recvn(c, 5)
    return head[:1], recvn(c, struct.unpack("!i", head[1:])[0] - 4)


def auth(code, extra=b""):
    return msg(b"R", struct.pack("!i", code) + extra)


def login_ok(c):
    c.sendall(auth(0) + msg(b"S", b"server_version\x0015.0\0") +
              msg(b"S", b"client_encoding\0UTF8\0") + msg(b"S", b"DateStyle\0ISO, MDY\0") +
              msg(b"S", b"TimeZone\0UTC\0") + msg(b"S", b"integer_datetimes\0on\0") +
              msg(b"S", b"standard_conforming_strings\0on\0") +
              msg(b"K", struct.pack("!ii", 4242, 4343)) + msg(b"Z", b"I"))


def scram_first(c, server_first):
    c.sendall(auth(10, b"SCRAM-SHA-256\0\0"))
    t, body = recv_msg(c)  # SASLInitialResponse
    mech_end = body.index(b"\0")
    client_first = body[mech_end + 5:].decode()
    cnonce = client_first.split("r=", 1)[1]
    c.sendall(auth(11, server_first(cnonce)))
    c.recv(65536)  # whatever PgCrab answers, if anything


def handle(mode, c):
    try:
        c.settimeout(60)
        recv_startup(c)
        if mode == "silent":
            c.recv(1)
            return
        if mode == "close_mid_login":
            c.sendall(auth(3)[:6])
        elif mode == "unexpected_login":
            c.sendall(msg(b"D", struct.pack("!h", 0)))
        elif mode == "oversize_login":
            c.sendall(b"R" + struct.pack("!i", 1 << 30) + struct.pack("!i", 0))
        elif mode == "error_login":
            c.sendall(msg(b"E", b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"x\"\0\0"))
        elif mode == "bad_scram":
            scram_first(c, lambda n: b"this is not,a server first=message\xff")
        elif mode == "long_nonce":
            salt = base64.b64encode(os.urandom(16)).decode()
            scram_first(c, lambda n: ("r=" + n + "x" * 30000 + ",s=" + salt + ",i=4096").encode())
        elif mode == "huge_nonce":
            salt = base64.b64encode(os.urandom(16)).decode()
            scram_first(c, lambda n: ("r=" + n + "y" * 200000 + ",s=" + salt + ",i=4096").encode())
        else:
            login_ok(c)
            while True:
                t, body = recv_msg(c)
                if t == b"X":
                    return
                if t != b"Q":
                    continue
                if mode == "close_after_row":
                    c.sendall(msg(b"T", struct.pack("!h", 1) + b"col\0" + b"\0" * 18) +
                              msg(b"D", struct.pack("!hi", 1, 2) + b"42"))
                    return
                if mode == "close_mid_result":
                    c.sendall(msg(b"T", struct.pack("!h", 1) + b"col\0" + b"\0" * 18)[:9])
                    return
                if mode == "unexpected_kind":
                    c.sendall(msg(b"!", b"surprise\0"))
                elif mode == "oversize_result":
                    c.sendall(b"D" + struct.pack("!i", 0x7FFFFFF0) + b"\0\1")
                c.recv(65536)
                return
    except (EOFError, OSError):
        pass
    finally:
        c.close()


def serve(mode, ls):
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(mode, c), daemon=True).start()


keep = []
for arg in sys.argv[1:]:
    mode, port = arg.split("=")
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", int(port)))
    ls.listen(16)
    keep.append(ls)
    if mode != "no_accept":
        threading.Thread(target=serve, args=(mode, ls), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
