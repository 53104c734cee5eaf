"""A minimal PostgreSQL v3 client for tests that must see every message:
startup with a cleartext password (what PgCrab asks for), then raw
extended-protocol messages. Not for production use."""
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


class Conn:
    def __init__(self, port, user="pgcrab", password="pgcrab", db="pgcrab_shard_1", **params):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        body = struct.pack("!i", 196608) + cstr("user") + cstr(user) + cstr("database") + cstr(db)
        for k, v in params.items():
            body += cstr(k) + cstr(v)
        self.s.sendall(struct.pack("!i", len(body) + 5) + body + b"\0")
        self.buf = b""
        while True:
            t, data = self.read()
            if t == "R" and struct.unpack("!i", data[:4])[0] == 3:
                self.s.sendall(msg(b"p", cstr(password)))
            elif t == "K":
                self.pid, self.key = struct.unpack("!ii", data)
            elif t == "E":
                raise RuntimeError(error_code(data))
            elif t == "Z":
                break

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
                    vals.append(None if ln < 0 else data[off:off + ln].decode())
                    off += max(ln, 0)
                out.append("D:" + ",".join("NULL" if v is None else v for v in vals))
            elif t == "Z":
                out.append("Z:" + data.decode())
                count -= 1
            elif t in "NS":
                continue
            else:
                out.append(t)
        return out

    def close(self):
        try:
            self.s.sendall(msg(b"X"))
        finally:
            self.s.close()


def error_code(data):
    for f in data.split(b"\0"):
        if f[:1] == b"C":
            return f[1:].decode()
    return "?"
