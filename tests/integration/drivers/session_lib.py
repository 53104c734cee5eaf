"""Helpers for the session state tests (session_state.py, session_random.py):
a raw-protocol client that keeps notifications and error messages, a login
that reports PostgreSQL's error fields, and TAP-style reporting.
Built on pgwire.py (Wire, startup, msg, cstr, Scram)."""
import select
import struct
import time

from pgwire import Scram, Wire, cstr, msg, startup


def fields_of(data):
    """An ErrorResponse/NoticeResponse body as {code letter: text}."""
    out = {}
    for f in data.split(b"\0"):
        if f:
            out[f[:1].decode()] = f[1:].decode(errors="backslashreplace")
    return out


class LoginError(Exception):
    def __init__(self, fields):
        super().__init__("%s %s" % (fields.get("C"), fields.get("M")))
        self.fields = fields


class Client(Wire):
    """One PostgreSQL v3 session. Replies are read as tokens:
    'D:v1,v2' 'C:TAG' 'E:SQLSTATE' 'A:channel:payload' 'Z:I' ...
    The last error's fields are kept in last_error."""

    def __init__(self, port, user, password, db="pgcrab_shard_1", timeout=10, **params):
        self.params = {}
        self.last_error = None
        super().__init__(port, timeout)
        self.send(startup(user, db, **params))
        scram = None
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
                self.s.close()
                raise LoginError(fields_of(data))
            elif t == "Z":
                break

    def token(self, t, data):
        if t == "E":
            self.last_error = fields_of(data)
            return "E:" + self.last_error.get("C", "?")
        if t == "C":
            return "C:" + data.rstrip(b"\0").decode()
        if t == "D":
            n = struct.unpack("!h", data[:2])[0]
            vals, off = [], 2
            for _ in range(n):
                ln = struct.unpack("!i", data[off:off + 4])[0]
                off += 4
                vals.append("NULL" if ln < 0 else data[off:off + ln].decode(errors="backslashreplace"))
                off += max(ln, 0)
            return "D:" + ",".join(vals)
        if t == "Z":
            return "Z:" + data.decode()
        if t == "A":
            channel, payload = data[4:].split(b"\0")[:2]
            return "A:%s:%s" % (channel.decode(), payload.decode())
        if t == "S":
            k, v = data.split(b"\0")[:2]
            self.params[k.decode()] = v.decode()
            return None
        if t in "NT":  # notices and row descriptions: not compared
            return None
        return t

    def until_ready(self, count=1):
        out = []
        while count:
            t, data = self.read()
            tok = self.token(t, data)
            if tok is not None:
                out.append(tok)
            if t == "Z":
                count -= 1
        return out

    def q(self, sql):
        """A simple Query: its reply tokens up to ReadyForQuery."""
        self.send(msg(b"Q", cstr(sql)))
        return self.until_ready()

    def v(self, sql):
        """The first column of the last row, or 'E:SQLSTATE' on an error."""
        out = self.q(sql)
        errs = [x for x in out if x.startswith("E:")]
        if errs:
            return errs[0]
        rows = [x[2:] for x in out if x.startswith("D:")]
        return rows[-1] if rows else None

    def status(self, out):
        """The transaction status of the ReadyForQuery in out."""
        return [x for x in out if x.startswith("Z:")][-1][2:]

    def readable_within(self, seconds):
        """Has anything arrived (or does it within seconds)?"""
        if self.buf:
            return True
        r, _, _ = select.select([self.s], [], [], seconds)
        return bool(r)

    def close(self):
        try:
            self.s.sendall(msg(b"X"))
        except OSError:
            pass
        self.s.close()


def login_error(port, user, password, **params):
    """PostgreSQL's (or PgCrab's) error fields for a login, None if it succeeds."""
    try:
        c = Client(port, user, password, **params)
    except LoginError as e:
        return e.fields
    # some servers report a bad parameter only at the first query: let it show
    try:
        out = c.q("SELECT 1")
        if any(x.startswith("E:") for x in out):
            return dict(c.last_error, late="after login, at the first query")
    except (OSError, EOFError) as e:
        return {"late": "connection lost at the first query: %r" % (e,)}
    finally:
        c.close()
    return None


class Report:
    def __init__(self, prefix=""):
        self.prefix = prefix
        self.failed = 0
        self.count = 0

    def ok(self, name, good, detail=""):
        self.count += 1
        if good:
            print("ok - %s%s" % (self.prefix, name), flush=True)
        else:
            self.failed += 1
            print("not ok - %s%s: %s" % (self.prefix, name, detail), flush=True)
        return good

    def eq(self, name, want, got):
        return self.ok(name, want == got, "expected %r, got %r" % (want, got))

    def todo(self, name, good, detail, why):
        """A check of work not done yet: TAP's TODO. It prints its real
        outcome and is not counted as a failure while it fails."""
        self.count += 1
        if good:
            print("ok - %s%s (TODO done: remove the mark)" % (self.prefix, name), flush=True)
        else:
            print("ok - %s%s # TODO %s: %s" % (self.prefix, name.replace("#", "\\#"), why, detail), flush=True)
        return good

    def skip(self, name, reason):
        self.count += 1
        print("ok - %s%s # SKIP %s" % (self.prefix, name.replace("#", "\\#"), reason), flush=True)

    def run(self, name, fn):
        """fn() may raise: the check fails with the exception instead of
        stopping the script."""
        try:
            return fn()
        except Exception as e:  # noqa: BLE001
            self.ok(name, False, "%s: %s" % (type(e).__name__, e))
            return None


def elapsed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0
