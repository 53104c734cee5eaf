"""Hostile and broken clients, one case per connection: each case prints
"NAME|RESULT" where RESULT is what came back before the socket closed:
  E:SQLSTATE   an ErrorResponse, then the socket closed
  closed       closed without a word
  open         still open after the wait (a failure for every case here)
  v,R...       message kinds seen (for the cases that log in)
Usage: hostile_client.py PORT USER PASSWORD DB [CASE...]"""
import socket
import struct
import sys
import time

port, user, password, db = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
wanted = sys.argv[5:]


def msg(kind, body=b""):
    return kind + struct.pack("!i", len(body) + 4) + body


def startup(params, version=196608):
    body = struct.pack("!i", version) + b"".join(k + b"\0" + v + b"\0" for k, v in params) + b"\0"
    return struct.pack("!i", len(body) + 4) + body


def connect():
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def ending(s, wait=5.0):
    """Reads until the peer closes; 'E:code' if an ErrorResponse came first."""
    s.settimeout(wait)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return "open"
    except ConnectionResetError:
        pass
    finally:
        s.close()
    if data[:9] == b"EFATAL:  ":
        return "E2"  # the old format PostgreSQL refuses protocol 1 and 2 in
    while len(data) >= 5:
        n = 1 + struct.unpack("!i", data[1:5])[0]
        if data[:1] == b"E":
            for f in data[5:n].split(b"\0"):
                if f[:1] == b"C":
                    return "E:" + f[1:].decode()
        data = data[n:]
    return "closed"


def read_msg(s, buf):
    while len(buf) < 5 or len(buf) < 1 + struct.unpack("!i", buf[1:5])[0]:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError
        buf += chunk
    n = 1 + struct.unpack("!i", buf[1:5])[0]
    return buf[:1], buf[5:n], buf[n:]


def logged_in():
    """A socket past ReadyForQuery (cleartext password, as PgCrab asks)."""
    s = connect()
    s.sendall(startup([(b"user", user.encode()), (b"database", db.encode())]))
    buf = b""
    while True:
        t, body, buf = read_msg(s, buf)
        if t == b"R" and struct.unpack("!i", body[:4])[0] == 3:
            s.sendall(msg(b"p", password.encode() + b"\0"))
        elif t == b"E":
            raise RuntimeError("login failed")
        elif t == b"Z":
            return s


def case_len_below_4():
    s = logged_in()
    s.sendall(b"Q" + struct.pack("!i", 3))
    return ending(s)


def case_len_above_max():
    # 1 GiB + 1: refused from the header alone, no body is ever sent
    s = logged_in()
    s.sendall(b"Q" + struct.pack("!i", (1 << 30) + 1))
    return ending(s)


def case_len_negative():
    s = logged_in()
    s.sendall(b"Q" + struct.pack("!I", 0xFFFFFFF0))
    return ending(s)


def case_startup_too_long():
    s = connect()
    s.sendall(struct.pack("!ii", 10005, 196608) + b"user\0" + b"x" * 100)
    return ending(s)


def case_startup_len_below_8():
    s = connect()
    s.sendall(struct.pack("!i", 4))
    return ending(s)


def case_protocol_4():
    s = connect()
    s.sendall(startup([(b"user", user.encode())], version=4 << 16))
    return ending(s)


def case_protocol_2():
    s = connect()
    s.sendall(startup([(b"user", user.encode())], version=2 << 16))
    return ending(s)


def case_protocol_3_5():
    """A newer minor and a _pq_ option: NegotiateProtocolVersion (3.0, the
    option named), then the login goes on. Prints the kinds and the
    negotiated minor and options."""
    s = connect()
    s.sendall(startup([(b"user", user.encode()), (b"database", db.encode()),
                       (b"_pq_.frobnicate", b"1")], version=(3 << 16) | 5))
    buf, seen = b"", []
    while True:
        t, body, buf = read_msg(s, buf)
        if t == b"v":
            minor, n = struct.unpack("!ii", body[:8])
            seen.append("v:%d:%d:%s" % (minor, n, body[8:].rstrip(b"\0").decode()))
        elif t == b"R":
            code = struct.unpack("!i", body[:4])[0]
            seen.append("R%d" % code)
            if code == 3:
                s.sendall(msg(b"p", password.encode() + b"\0"))
        elif t == b"Z":
            seen.append("Z")
            break
        elif t == b"E":
            seen.append("E")
            break
    s.sendall(msg(b"X"))
    s.close()
    return ",".join(seen)


def case_duplicate_param():
    s = connect()
    s.sendall(startup([(b"user", user.encode()), (b"user", user.encode())]))
    return ending(s)


def case_unterminated_params():
    s = connect()
    body = struct.pack("!i", 196608) + b"user\0" + user.encode()  # no NULs at the end
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    return ending(s)


def case_value_missing():
    s = connect()
    body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0database\0\0"
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    return ending(s)


def case_query_before_auth():
    s = connect()
    s.sendall(startup([(b"user", user.encode()), (b"database", db.encode())]))
    buf = b""
    t, body, buf = read_msg(s, buf)  # the password request
    s.sendall(msg(b"Q", b"SELECT 1\0"))
    return ending(s)


def case_unknown_type():
    s = logged_in()
    s.sendall(msg(b"!", b"hello\0"))
    return ending(s)


def case_second_startup():
    s = logged_in()
    s.sendall(startup([(b"user", user.encode()), (b"database", db.encode())]))
    return ending(s)


def case_password_after_login():
    s = logged_in()
    s.sendall(msg(b"p", password.encode() + b"\0"))
    return ending(s)


def case_garbage_after_terminate():
    s = logged_in()
    s.sendall(msg(b"X") + b"\xff\x00garbage" * 100)
    return ending(s)


def case_half_open():
    """A transaction, then the client shuts its sending side: PgCrab
    closes it; the transaction must not survive (checked by the caller)."""
    s = logged_in()
    s.sendall(msg(b"Q", b"BEGIN; INSERT INTO t_hostile VALUES (1); SELECT pg_sleep(0.5)\0"))
    s.shutdown(socket.SHUT_WR)
    return ending(s)


def case_truncated_then_gone():
    s = logged_in()
    s.sendall(msg(b"Q", b"SELECT 1\0")[:7])
    s.close()
    return "closed"


def case_partial_huge_parse():
    """Parse announced at 1 GiB - 1, 100 bytes of it sent, then the client
    stays: PgCrab must not reserve memory for the announced length (the
    caller checks VmData while these are open)."""
    s = logged_in()
    s.sendall(b"P" + struct.pack("!i", (1 << 30) - 1) + b"big\0SELECT '" + b"x" * 84)
    held.append(s)
    return "sent"


def case_bad_type_mid_result():
    """An unknown message right behind a query whose 4 MB row is streaming
    back: PgCrab ends the client, but must not splice its ErrorResponse into
    the row. Prints "E:code" if the stream was whole up to the error, "cut"
    if it ended inside the row with nothing but the row's own bytes, and
    "spliced" if foreign bytes appeared inside it."""
    s = logged_in()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(msg(b"Q", b"SELECT repeat('x', 4000000)\0"))
    time.sleep(0.5)  # not reading: the row stalls part way, in PgCrab's send
    s.sendall(msg(b"!", b"boom\0"))
    s.settimeout(10)
    data = b""
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    while len(data) >= 5:
        n = 1 + struct.unpack("!i", data[1:5])[0]
        kind, body = data[:1], data[5:n]
        if kind == b"D":
            value = body[6:]  # count (2), length (4), then the value
            if value.strip(b"x"):
                return "spliced"
            if len(data) < n:
                return "cut"
        elif kind == b"E":
            for f in body.split(b"\0"):
                if f[:1] == b"C":
                    return "E:" + f[1:].decode()
        elif kind not in (b"T", b"C", b"Z"):
            return "spliced"
        data = data[n:]
    return "closed"


held = []
cases = [n[5:] for n in dir() if n.startswith("case_")]
for name in wanted or cases:
    try:
        result = globals()["case_" + name]()
    except Exception as e:  # noqa: BLE001 - the result names what went wrong
        result = "exception:" + type(e).__name__
    print("%s|%s" % (name, result), flush=True)
if held:
    # keep the partial messages open until told (stdin closes)
    sys.stdin.read()
