"""Shared by departure.py and depart_random.py (the tests of clients that
leave PgCrab in every state and every way): a raw protocol client whose
socket the caller owns byte for byte (FIN, RST, Terminate with or without
the close), an admin connection to PostgreSQL itself (the postgres
superuser over the cluster's Unix socket, so it never counts as a backend of
the pool user), and the invariants a departure must leave behind.

Everything about the run comes from the environment (the bash test sets it):
  DEP_PORT       where clients connect: PgCrab, or PostgreSQL in direct mode
  DEP_PID        PgCrab's pid (empty in direct mode)
  DEP_DIRECT     1: no PgCrab, clients talk to PostgreSQL itself
  DEP_MODE       transaction | session
  DEP_SHARED     1: other clients use the pool too (nothing may be terminated)
  PC_USER PC_PASSWORD PG_DB     the client login
  PG_PORT PG_DIR PG_USER        the cluster and the pool user (backend login)
"""
import os
import re
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgwire  # noqa: E402
from pgwire import cstr, msg  # noqa: E402


class Ctx:
    def __init__(self):
        e = os.environ
        self.port = int(e["DEP_PORT"])
        self.pid = int(e["DEP_PID"]) if e.get("DEP_PID") else None
        self.direct = e.get("DEP_DIRECT", "0") == "1"
        self.mode = e.get("DEP_MODE", "transaction")
        # other clients share the pool (pgbench): no backend may be terminated
        self.shared = e.get("DEP_SHARED", "0") == "1"
        self.user = e["PC_USER"]
        self.password = e["PC_PASSWORD"]
        self.db = e["PG_DB"]
        self.pg_port = int(e["PG_PORT"])
        self.pg_dir = e["PG_DIR"]
        self.pg_user = e["PG_USER"]
        self.pg_log = os.path.join(self.pg_dir, "postgres.log")


class Closed(Exception):
    """The peer closed the connection (EOF or reset)."""


def now():
    return time.monotonic()


def tokens_of(t, data):
    """A readable token for one backend message (as pgwire.until_ready)."""
    if t == "E":
        return "E:" + pgwire.error_code(data)
    if t == "C":
        return "C:" + data.rstrip(b"\0").decode()
    if t == "Z":
        return "Z:" + data.decode()
    if t == "D":
        n = struct.unpack("!h", data[:2])[0]
        vals, off = [], 2
        for _ in range(n):
            ln = struct.unpack("!i", data[off:off + 4])[0]
            off += 4
            vals.append("NULL" if ln < 0 else data[off:off + ln].decode(errors="replace")[:40])
            off += max(ln, 0)
        return "D:" + ",".join(vals)
    if t == "R":
        return "R%d" % struct.unpack("!i", data[:4])[0]
    return t


class Client:
    """One client connection on a raw socket. Every read takes a deadline
    (a time.monotonic() value); nothing blocks longer."""

    def __init__(self, port, rcvbuf=None, unix_path=None):
        if unix_path:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            # a small window: a client that stops reading stalls its sender soon
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(5)
        self.s.connect(unix_path or ("127.0.0.1", port))
        self.local_port = None if unix_path else self.s.getsockname()[1]
        self.buf = b""
        self.pos = 0
        self.pid = None  # the backend pid from BackendKeyData
        self.scram = None

    def send(self, *messages):
        self.s.sendall(b"".join(messages))

    def _fill(self, deadline):
        left = deadline - now()
        if left <= 0:
            raise TimeoutError("timed out")
        self.s.settimeout(left)
        try:
            chunk = self.s.recv(262144)
        except socket.timeout:
            raise TimeoutError("timed out")
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed("reset: %s" % e)
        if not chunk:
            raise Closed("EOF")
        self.buf += chunk

    def read(self, deadline):
        # self.pos: where the next message starts (no copy of the rest per message)
        while True:
            have = len(self.buf) - self.pos
            if have >= 5:
                n = 1 + struct.unpack_from("!i", self.buf, self.pos + 1)[0]
                if have >= n:
                    break
            if self.pos:
                self.buf, self.pos = self.buf[self.pos:], 0
            self._fill(deadline)
        p = self.pos
        self.pos += n
        return chr(self.buf[p]), self.buf[p + 5:p + n]

    def until(self, deadline, stop="Z", count=1):
        """Tokens up to and including the count-th message of a type in stop."""
        out = []
        while count:
            t, data = self.read(deadline)
            if t in ("N", "S"):
                continue
            out.append(tokens_of(t, data))
            if t in stop:
                count -= 1
        return out

    # -- login, in steps (a test may leave between any two) -------------------
    def send_startup(self, user, db, **params):
        body = struct.pack("!i", 196608) + cstr("user") + cstr(user) + cstr("database") + cstr(db)
        for k, v in params.items():
            body += cstr(k) + cstr(v)
        self.send(struct.pack("!i", len(body) + 5) + body + b"\0")

    def read_auth(self, deadline):
        """The server's first authentication request: 3 (cleartext), 10 (SASL) or 0."""
        t, data = self.read(deadline)
        if t == "E":
            raise RuntimeError("login refused: " + pgwire.error_code(data))
        if t != "R":
            raise RuntimeError("expected an authentication request, got " + t)
        return struct.unpack("!i", data[:4])[0]

    def send_password(self, code, password):
        """The first password message for the request code."""
        if code == 3:
            self.send(msg(b"p", cstr(password)))
        elif code == 10:
            self.scram = pgwire.Scram(password)
            first = self.scram.first()
            self.send(msg(b"p", cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first))

    def finish_login(self, deadline):
        while True:
            t, data = self.read(deadline)
            if t == "R":
                code = struct.unpack("!i", data[:4])[0]
                if code == 11:
                    self.send(msg(b"p", self.scram.final(data[4:])))
                elif code == 12:
                    self.scram.verify(data[4:])
            elif t == "K":
                self.pid = struct.unpack("!ii", data)[0]
            elif t == "E":
                raise RuntimeError("login refused: " + pgwire.error_code(data))
            elif t == "Z":
                return

    def login(self, user, password, db, deadline, **params):
        self.send_startup(user, db, **params)
        code = self.read_auth(deadline)
        if code != 0:
            self.send_password(code, password)
        self.finish_login(deadline)

    def read_to_eof(self, deadline):
        """Messages until the peer closes: (tokens, how it closed) or raises
        TimeoutError (tokens so far in .tokens)."""
        toks = []
        while True:
            try:
                t, data = self.read(deadline)
            except Closed as e:
                return toks, str(e)
            except TimeoutError as e:
                e.tokens = toks
                raise
            if t not in ("N", "S"):
                toks.append(tokens_of(t, data) if t != "d" else "d")

    # -- ways out ------------------------------------------------------------
    def leave_fin(self):
        """FIN: shutdown(SHUT_WR), then close (the kernel turns the close into
        a RST when unread bytes are left, as for any client)."""
        try:
            self.s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.s.close()

    def leave_rst(self):
        """RST: SO_LINGER {1, 0} then close."""
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.s.close()

    def leave_x_close(self):
        """Terminate then close, as libpq's PQfinish."""
        try:
            self.s.sendall(msg(b"X"))
        except OSError:
            pass
        self.s.close()

    def close_quietly(self):
        try:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.s.close()
        except OSError:
            pass


def client_params(ctx):
    """Startup parameters of every departing client. In direct mode the
    backend is made to notice a gone client while a query runs
    (client_connection_check_interval), which is what PgCrab does for it; so
    the same assertions hold against PostgreSQL itself."""
    if ctx.direct:
        return {"options": "-c client_connection_check_interval=100"}
    return {}


def connect(ctx, deadline, rcvbuf=None, **params):
    c = Client(ctx.port, rcvbuf)
    p = client_params(ctx)
    p.update(params)
    c.login(ctx.user, ctx.password, ctx.db, deadline, **p)
    return c


def served(ctx, within=2.0):
    """(b): a new client logs in and gets SELECT 1 answered within the bound.
    Returns None when it did, else why not."""
    deadline = now() + within
    c = None
    try:
        c = Client(ctx.port)
        c.login(ctx.user, ctx.password, ctx.db, deadline)
        c.send(msg(b"Q", cstr("SELECT 1")))
        toks = c.until(deadline)
        if toks != ["T", "D:1", "C:SELECT 1", "Z:I"]:
            return "a new client's SELECT 1 got %s" % toks
        c.leave_x_close()
        c = None
        return None
    except TimeoutError:
        return "a new client was not served within %.0f s" % within
    except (Closed, OSError, RuntimeError) as e:
        return "a new client failed: %s" % e
    finally:
        if c:
            c.close_quietly()


class Admin:
    """The postgres superuser over the cluster's Unix socket (trust)."""

    def __init__(self, ctx, db="postgres"):
        self.ctx = ctx
        self.c = Client(None, unix_path=os.path.join(ctx.pg_dir, ".s.PGSQL.%d" % ctx.pg_port))
        self.c.login("postgres", "", db, now() + 10, application_name="departure_admin")

    def rows(self, sql):
        self.c.send(msg(b"Q", cstr(sql)))
        out, err = [], None
        deadline = now() + 30
        while True:
            t, data = self.c.read(deadline)
            if t == "D":
                n = struct.unpack("!h", data[:2])[0]
                vals, off = [], 2
                for _ in range(n):
                    ln = struct.unpack("!i", data[off:off + 4])[0]
                    off += 4
                    vals.append(None if ln < 0 else data[off:off + ln].decode())
                    off += max(ln, 0)
                out.append(vals)
            elif t == "E":
                err = data
            elif t == "Z":
                break
        if err is not None:
            raise RuntimeError("admin query failed (%s): %s" % (pgwire.error_code(err), sql))
        return out

    def one(self, sql):
        return self.rows(sql)[0][0]

    def count(self, where):
        """Backends of the pool user matching where (never this connection)."""
        return int(self.one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = '%s' "
            "AND pid <> pg_backend_pid() AND (%s)" % (self.ctx.pg_user, where)))

    def snapshot(self):
        """(idle in transaction, active, client backends) of the pool user, at once."""
        r = self.rows(
            "SELECT count(*) FILTER (WHERE state LIKE 'idle in transaction%%'), "
            "count(*) FILTER (WHERE state = 'active'), "
            "count(*) FILTER (WHERE backend_type = 'client backend') "
            "FROM pg_stat_activity WHERE usename = '%s' AND pid <> pg_backend_pid()" % self.ctx.pg_user)[0]
        return tuple(int(x) for x in r)

    def idle_in_tx(self):
        return self.count("state LIKE 'idle in transaction%'")

    def client_backends(self):
        return self.count("backend_type = 'client backend'")

    def active_tagged(self, tag):
        return self.count("state = 'active' AND query LIKE '%%%s%%'" % tag)

    def terminate(self, where):
        return self.rows(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '%s' "
            "AND pid <> pg_backend_pid() AND (%s)" % (self.ctx.pg_user, where))


def pgcrab_server_sockets(ctx):
    """PgCrab's established TCP connections to PostgreSQL (ss, filtered to
    PgCrab's pid)."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", "( dport = :%d )" % ctx.pg_port],
                         capture_output=True, text=True, timeout=10).stdout
    key = "pid=%d," % ctx.pid
    return sum(1 for line in out.splitlines() if key in line)


def pgcrab_server_sockets_fast(ctx):
    """The same as pgcrab_server_sockets, read from /proc without a process
    (what ss does): for polling every few milliseconds."""
    ports = ":%04X" % ctx.pg_port
    inodes = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[3] == "01" and fields[2].endswith(ports):
                inodes.add(fields[9])
    n = 0
    fd_dir = "/proc/%d/fd" % ctx.pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            n += 1
    return n


def counts(ctx, admin, fast=False):
    """(d): (PgCrab's server connections, pg_stat_activity's client backends
    of the pool user)."""
    pc = pgcrab_server_sockets_fast(ctx) if fast else pgcrab_server_sockets(ctx)
    return pc, admin.client_backends()


def peer_socket(ctx, client_port):
    """The far end of a client's connection: [(pid, fd, inode)] of whoever
    holds the accepted socket (PgCrab, or the backend in direct mode)."""
    out = subprocess.run(["ss", "-Htnpe", "state", "established",
                          "( sport = :%d and dport = :%d )" % (ctx.port, client_port)],
                         capture_output=True, text=True, timeout=10).stdout
    held = []
    for line in out.splitlines():
        ino = re.search(r"\bino:(\d+)", line)
        if not ino:
            continue
        for pid, fd in re.findall(r"pid=(\d+),fd=(\d+)", line):
            held.append((int(pid), int(fd), ino.group(1)))
    return held


def still_held(held):
    """Those of peer_socket()'s holders that still have that socket open."""
    left = []
    for pid, fd, ino in held:
        try:
            if os.readlink("/proc/%d/fd/%d" % (pid, fd)) == "socket:[%s]" % ino:
                left.append((pid, fd, ino))
        except OSError:
            pass
    return left


def log_size(ctx):
    try:
        return os.path.getsize(ctx.pg_log)
    except OSError:
        return 0


def log_since(ctx, offset):
    try:
        with open(ctx.pg_log, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


CANCEL_LINE = "canceling statement due to user request"


def pgcrab_close_wait(ctx):
    """PgCrab's connections to PostgreSQL that PostgreSQL closed and PgCrab
    has not (yet)."""
    out = subprocess.run(["ss", "-Htnp", "state", "close-wait", "( dport = :%d )" % ctx.pg_port],
                         capture_output=True, text=True, timeout=10).stdout
    key = "pid=%d," % ctx.pid
    return sum(1 for line in out.splitlines() if key in line)


def poll(seconds, fn, step=0.02):
    """fn() until it returns something true, up to seconds; its last value."""
    deadline = now() + seconds
    while True:
        v = fn()
        if v or now() >= deadline:
            return v
        time.sleep(step)


def far_inode(ctx, client_port):
    """The inode of the far end (PgCrab's, or the backend's in direct mode)
    of a client's TCP connection, from /proc/net/tcp; None if not found."""
    local, remote = ":%04X" % ctx.port, ":%04X" % client_port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1].endswith(local) and fields[2].endswith(remote):
                return fields[9]
    return None


def socket_inodes(pid):
    """The inodes of the sockets process pid holds (empty once it exited)."""
    fd_dir = "/proc/%d/fd" % pid
    out = set()
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return out
    for fd in fds:
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(link[8:-1])
    return out
