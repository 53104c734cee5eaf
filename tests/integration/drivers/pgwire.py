"""A minimal PostgreSQL v3 client for tests that must see every message:
startup with a cleartext password (what PgCrab asks for) or SCRAM-SHA-256
(what the test PostgreSQL asks for, so a script can run against both), then
raw extended-protocol messages. Not for production use."""
import base64
import hashlib
import hmac
import os
import socket
import struct


def msg(kind, payload=b""):
    return kind + struct.pack("!i", len(payload) + 4) + payload


def cstr(s):
    return s.encode() + b"\0"


def parse(name, sql, types=()):
    return msg(b"P", cstr(name) + cstr(sql) + struct.pack("!h", len(types)) +
               b"".join(struct.pack("!i", t) for t in types))


def bind(stmt, params=(), portal=""):
    body = cstr(portal) + cstr(stmt) + struct.pack("!h", 0) + struct.pack("!h", len(params))
    for p in params:
        v = str(p).encode()
        body += struct.pack("!i", len(v)) + v
    return msg(b"B", body + struct.pack("!h", 0))


def describe(kind, name):
    return msg(b"D", kind.encode() + cstr(name))


def execute(portal="", rows=0):
    return msg(b"E", cstr(portal) + struct.pack("!i", rows))


def close(kind, name):
    return msg(b"C", kind.encode() + cstr(name))


SYNC = msg(b"S")
FLUSH = msg(b"H")


def startup(user, db, **params):
    """A StartupMessage (protocol 3.0) for user and database db."""
    body = struct.pack("!i", 196608) + cstr("user") + cstr(user) + cstr("database") + cstr(db)
    for k, v in params.items():
        body += cstr(k) + cstr(v)
    return struct.pack("!i", len(body) + 5) + body + b"\0"


class Wire:
    """A TCP connection to 127.0.0.1:port read a whole message at a time;
    buf holds what came after the last one read."""

    def __init__(self, port, timeout):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def read(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!i", self.buf[1:5])[0]:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        n = 1 + struct.unpack("!i", self.buf[1:5])[0]
        m, self.buf = self.buf[:n], self.buf[n:]
        return chr(m[0]), m[5:]

    def send(self, *messages):
        self.s.sendall(b"".join(messages))


class Conn(Wire):
    def __init__(self, port, user="pgcrab", password="pgcrab", db="pgcrab_shard_1", **params):
        self.params = {}
        super().__init__(port, 10)
        self.send(startup(user, db, **params))
        while True:
            t, data = self.read()
            code = struct.unpack("!i", data[:4])[0] if t == "R" else None
            if code == 3:
                self.s.sendall(msg(b"p", cstr(password)))
            elif code == 10:
                scram = Scram(password)
                first = scram.first()
                self.s.sendall(msg(b"p", cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first))
            elif code == 11:
                self.s.sendall(msg(b"p", scram.final(data[4:])))
            elif code == 12:
                scram.verify(data[4:])
            elif t == "S":
                k, v = data.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif t == "K":
                self.pid, self.key = struct.unpack("!ii", data)
            elif t == "E":
                raise RuntimeError(error_code(data))
            elif t == "Z":
                break

    def until_ready(self, count=1):
        """Messages up to the count-th ReadyForQuery, as readable tokens:
        '1' '2' 'C:SELECT 1' 'D:42' 'E:22012' 'Z:I' ..."""
        out = []
        while count:
            t, data = self.read()
            if t == "E":
                out.append("E:" + error_code(data))
            elif t == "C":
                out.append("C:" + data.rstrip(b"\0").decode())
            elif t == "D":
                n = struct.unpack("!h", data[:2])[0]
                vals, off = [], 2
                for _ in range(n):
                    ln = struct.unpack("!i", data[off:off + 4])[0]
                    off += 4
                    vals.append(None if ln < 0 else data[off:off + ln].decode(errors="backslashreplace"))
                    off += max(ln, 0)
                out.append("D:" + ",".join("NULL" if v is None else v for v in vals))
            elif t == "Z":
                out.append("Z:" + data.decode())
                count -= 1
            elif t == "t":
                n = struct.unpack("!h", data[:2])[0]
                out.append("t:" + ",".join(str(x) for x in struct.unpack("!%dI" % n, data[2:2 + 4 * n])))
            elif t == "T":
                out.append("T:" + "|".join(row_description(data)))
            elif t == "S":
                k, v = data.split(b"\0")[:2]
                self.params[k.decode()] = v.decode()
            elif t == "N":
                continue
            else:
                out.append(t)
        return out

    def close(self):
        try:
            self.s.sendall(msg(b"X"))
        finally:
            self.s.close()


def error_fields(data):
    """An ErrorResponse's (or NoticeResponse's) fields by code: {"C": "28P01", "M": ...}."""
    return {f[:1].decode(): f[1:].decode(errors="replace") for f in data.split(b"\0") if f}


def error_code(data):
    return error_fields(data).get("C", "?")


def row_description(data):
    """Each field as name/table-oid/column/type-oid/size/typmod/format."""
    n = struct.unpack("!h", data[:2])[0]
    fields, off = [], 2
    for _ in range(n):
        end = data.index(b"\0", off)
        name = data[off:end].decode()
        table, col, typ, size, mod, fmt = struct.unpack("!IhIhih", data[end + 1:end + 19])
        off = end + 19
        fields.append("%s/%d/%d/%d/%d/%d/%d" % (name, table, col, typ, size, mod, fmt))
    return fields


class Scram:
    """SCRAM-SHA-256 client side (RFC 5802/7677), no channel binding."""

    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = "n=,r=" + self.nonce

    def first(self):
        return ("n,," + self.bare).encode()

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
        assert attrs["r"].startswith(self.nonce)
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        without_proof = "c=biws,r=" + attrs["r"]
        self.auth = ",".join((self.bare, server_first.decode(), without_proof)).encode()
        sig = hmac.digest(hashlib.sha256(client_key).digest(), self.auth, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        self.server_key = hmac.digest(salted, b"Server Key", "sha256")
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify(self, server_final):
        want = base64.b64encode(hmac.digest(self.server_key, self.auth, "sha256")).decode()
        if server_final.decode() != "v=" + want:
            raise RuntimeError("SCRAM: the server's signature is wrong")
