#!/usr/bin/env python3
"""Login parity: a table of clients that leave or misbehave during login,
each played byte for byte against one server, whose answer is read until
it closes (or a timeout says it did not) and compared with what
PostgreSQL 15 sends. Run against PostgreSQL itself it proves the table;
run against PgCrab it shows PgCrab sends the same.

Usage: login_parity.py PORT USER PASSWORD DB [ROW...]
Prints "ok - ROW" or "not ok - ROW: expected [...], got [...]" per row.

A transcript is a list of tokens, one per thing the server did:
  N S G        the one-byte answer to an SSLRequest / GSSENCRequest
  Rauth        a run of authentication requests (cleartext, or SCRAM's
               three steps: each is answered when the row has a password)
  R0           AuthenticationOk
  v(V,names)   NegotiateProtocolVersion
  E(SEV CODE message)   an ErrorResponse (severity, SQLSTATE, text)
  E2(text)     a protocol-2 style error (a bare 'E' and a string)
  K Z          BackendKeyData, ReadyForQuery (ParameterStatus is skipped)
  closed       the server closed (EOF); reset: it reset the connection;
  open         it had not closed FINAL_WAIT seconds after the row's end;
  rst          the row itself ended with a reset (SO_LINGER 0): nothing
               can be read after that.

Where PgCrab must differ, the transcript is normalized so that only what is
meaningful is compared:
  - the user: PgCrab's user is its own, not PostgreSQL's; the name is
    written <user> in the expectations;
  - the authentication exchange is one token, Rauth: PgCrab asks for a
    cleartext password, and so does PostgreSQL for the user the test gives
    it (t_login_parity.sh adds a "password" line to pg_hba.conf for that
    user, because a client that breaks off SCRAM gets a different answer
    from one that breaks off a cleartext exchange);
  - GSSAPI: PostgreSQL built with GSSAPI answers 'G' over TCP, PgCrab
    (which has no GSSAPI) 'N'; both are written N;
  - the cancel key is PgCrab's own, so a CancelRequest is only shown to be
    answered with a silent close, never matched to a backend.
"""
import errno
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgwire import Scram  # noqa: E402

QUIET = 0.6       # a read ends when nothing came for this long
FINAL_WAIT = 3.0  # after the row, how long the server has to close

port, user, password, db = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
only = set(sys.argv[5:])

SSL = struct.pack("!ii", 8, 80877103)
GSS = struct.pack("!ii", 8, 80877104)


def startup(params, version=196608, end=b"\0"):
    body = struct.pack("!i", version)
    for k, v in params:
        body += k.encode() + b"\0" + (v.encode() + b"\0" if v is not None else b"")
    body += end
    return struct.pack("!i", len(body) + 4) + body


def raw_startup(body, version=196608):
    body = struct.pack("!i", version) + body
    return struct.pack("!i", len(body) + 4) + body


def msg(kind, body=b""):
    return kind + struct.pack("!i", len(body) + 4) + body


def login_packet(u=None, d=None, extra=()):
    return startup([("user", u or user), ("database", d or db)] + list(extra))


def padded_startup(total):
    """A valid startup packet of exactly total bytes (application_name pads it)."""
    base = len(login_packet(extra=[("application_name", "")]))
    return login_packet(extra=[("application_name", "a" * (total - base))])


class Probe:
    def __init__(self, answer):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.answer = answer  # the password to answer with, or None
        self.buf = b""
        self.tokens = []
        self.ended = None  # closed / reset
        self.scram = None

    def send(self, data):
        try:
            self.s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server left already: the reads say how

    def recv(self, timeout):
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(65536)
        except socket.timeout:
            return None
        except ConnectionResetError:
            self.ended = "reset"
            return b""
        if not data:
            self.ended = "closed"
        return data

    def read(self, quiet=QUIET):
        while self.ended is None:
            data = self.recv(quiet)
            if data is None:
                return False
            self.buf += data
            self.parse()
        return True

    def byte(self):
        while not self.buf and self.ended is None:
            data = self.recv(FINAL_WAIT)
            if data is None:
                break
            self.buf += data
        if self.buf:
            b, self.buf = self.buf[:1].decode(errors="replace"), self.buf[1:]
            self.tokens.append("N" if b == "G" else b)
        self.parse()

    def add(self, tok):
        if tok == "Rauth" and self.tokens and self.tokens[-1] == "Rauth":
            return
        self.tokens.append(tok)

    def parse(self):
        while len(self.buf) >= 5:
            n = struct.unpack("!I", self.buf[1:5])[0]
            if self.buf[:1] == b"E" and n > 1 << 20:
                # protocol 2: 'E', then a NUL-terminated string; no length
                if b"\0" not in self.buf[1:]:
                    return
                text, self.buf = self.buf[1:].split(b"\0", 1)
                self.add("E2(%s)" % text.decode(errors="replace"))
                continue
            if len(self.buf) < 1 + n:
                return
            kind, body, self.buf = self.buf[:1].decode(), self.buf[5:1 + n], self.buf[1 + n:]
            self.message(kind, body)

    def message(self, kind, body):
        if kind == "R":
            code = struct.unpack("!i", body[:4])[0]
            if code == 0:
                self.add("R0")
                return
            self.add("Rauth")
            if self.answer is None:
                return
            if code == 3:
                self.send(msg(b"p", self.answer.encode() + b"\0"))
            elif code == 10:
                self.scram = Scram(self.answer)
                first = self.scram.first()
                self.send(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
            elif code == 11:
                self.send(msg(b"p", self.scram.final(body[4:])))
        elif kind in "EN":
            f = {}
            for part in body.split(b"\0"):
                if part:
                    f[part[:1].decode()] = part[1:].decode(errors="replace")
            text = f.get("M", "").replace('"%s"' % user, '"<user>"')
            self.add("%s(%s %s %s)" % (kind, f.get("V", f.get("S")), f.get("C"), text))
        elif kind == "v":
            ver, n = struct.unpack("!ii", body[:8])
            names = [x.decode() for x in body[8:].split(b"\0")[:n]]
            self.add("v(%d,%s)" % (ver, ",".join(names)))
        elif kind == "S":
            return
        else:
            self.add(kind)

    def shut(self):
        try:
            self.s.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def rst(self):
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.s.close()
        self.tokens.append("rst")
        self.ended = "rst"


def run(actions, answer):
    p = Probe(answer)
    for a in actions:
        if a == "read":
            p.read()
        elif a == "byte":
            p.byte()
        elif a == "shut":
            p.shut()
        elif a == "rst":
            p.rst()
        elif isinstance(a, float):
            time.sleep(a)
        else:
            p.send(a)
    if p.ended != "rst":
        if p.read(FINAL_WAIT) or p.ended:
            p.tokens.append(p.ended)
        else:
            p.tokens.append("open")
        p.s.close()
    return " ".join(p.tokens)


LAYOUT = "E(FATAL 08P01 invalid startup packet layout: expected terminator as last byte) closed"
LOGGED_IN = "Rauth R0 K Z closed"


def bad_option(value, text, code="42601"):
    return ([login_packet(extra=[("options", value)]), "read", "shut"],
            password, "Rauth R0 E(FATAL %s %s) closed" % (code, text))


startup_bytes = login_packet()
ROWS = {
    # -- the client leaves before (or while) sending its startup packet:
    # PostgreSQL logs some of these and closes without a word
    "connect, then close at once": (["shut"], None, "closed"),
    "connect, then reset at once": (["rst"], None, "rst"),
}
for k in range(1, 8):
    ROWS["close after %d byte(s) of the startup packet" % k] = (
        [startup_bytes[:k], "shut"], None, "closed")
ROWS.update({
    "length 0": ([struct.pack("!i", 0)], None, "closed"),
    "length 4": ([struct.pack("!i", 4)], None, "closed"),
    "length 7": ([struct.pack("!i", 7)], None, "closed"),
    "length -1": ([struct.pack("!i", -1)], None, "closed"),
    "length 10005 (over the 10000-byte body cap)": ([struct.pack("!i", 10005)], None, "closed"),
    "length 10004 (the largest allowed) is read": (
        [padded_startup(10004), "read", "shut"], None, "Rauth closed"),
    "Terminate as the first message": ([msg(b"X")], None, "closed"),
    # node-postgres' quick-disconnect test (connect(); end()): its Terminate
    # is queued before the startup packet, then it ends the socket
    "node-postgres quick disconnect: Terminate, startup, close": (
        [msg(b"X") + startup_bytes, "shut"], None, "closed"),
    "full length, short body, then close": (
        [startup_bytes[:len(startup_bytes) - 5], "shut"], None, "closed"),
    "full length, short body, then reset": (
        [startup_bytes[:len(startup_bytes) - 5], 0.2, "rst"], None, "rst"),
    # -- protocol versions
    "protocol 2.0": (
        [startup([("user", user)], version=2 << 16)], None,
        "E2(FATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n) closed"),
    "protocol 4.0": (
        [startup([("user", user)], version=4 << 16)], None,
        "E(FATAL 0A000 unsupported frontend protocol 4.0: server supports 3.0 to 3.0) closed"),
    "protocol 3.1: NegotiateProtocolVersion, then the login": (
        [startup([("user", user), ("database", db)], version=(3 << 16) | 1), "read", "shut"],
        password, "v(196608,) " + LOGGED_IN),
    "_pq_ option: NegotiateProtocolVersion names it, then the login": (
        [login_packet(extra=[("_pq_.crab_claw", "on")]), "read", "shut"], password,
        "v(196608,_pq_.crab_claw) " + LOGGED_IN),
    # -- startup packet layouts
    "no user": (
        [startup([("database", db)])], None,
        "E(FATAL 28000 no PostgreSQL user name specified in startup packet) closed"),
    "empty user": (
        [startup([("user", ""), ("database", db)])], None,
        "E(FATAL 28000 no PostgreSQL user name specified in startup packet) closed"),
    "no parameters, no terminator": ([raw_startup(b"")], None, LAYOUT),
    "only the terminator: no user": (
        [raw_startup(b"\0")], None,
        "E(FATAL 28000 no PostgreSQL user name specified in startup packet) closed"),
    "missing final terminator": ([startup([("user", user)], end=b"")], None, LAYOUT),
    "name without value, then the terminator": (
        [startup([("user", user), ("database", None)])], None, LAYOUT),
    "name without value, no terminator": (
        [startup([("user", user), ("database", None)], end=b"")], None, LAYOUT),
    "value without NUL": ([raw_startup(b"user\0" + user.encode())], None, LAYOUT),
    "bytes after the terminator": (
        [startup([("user", user)], end=b"\0junk")], None, LAYOUT),
    "a parameter twice: the last wins": (
        [startup([("user", "nobody_at_all"), ("database", db), ("user", user)]), "read", "shut"],
        password, LOGGED_IN),
    # -- encryption requests
    "SSLRequest, then close": ([SSL, "byte", "shut"], None, "N closed"),
    "SSLRequest, then a startup packet": (
        [SSL, "byte", startup_bytes, "read", "shut"], password, "N " + LOGGED_IN),
    "SSLRequest and a startup packet in one write": (
        [SSL + startup_bytes, "byte", "read"], None,
        "N E(FATAL 08P01 received unencrypted data after SSL request) closed"),
    "SSLRequest twice": (
        [SSL, "byte", SSL, "read"], None,
        "N E(FATAL 0A000 unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0) closed"),
    "SSLRequest of 12 bytes: read by its code": (
        [struct.pack("!iii", 12, 80877103, 0), "byte", "shut"], None, "N closed"),
    "GSSENCRequest, then close": ([GSS, "byte", "shut"], None, "N closed"),
    "SSLRequest, GSSENCRequest, then close": ([SSL, "byte", GSS, "byte", "shut"], None, "N N closed"),
    # -- CancelRequest (the key is PgCrab's own: only the silent close compares)
    "CancelRequest of 12 bytes": ([struct.pack("!iii", 12, 80877102, 1)], None, "closed"),
    "CancelRequest of 20 bytes": ([struct.pack("!iiiii", 20, 80877102, 1, 2, 3)], None, "closed"),
    "CancelRequest with an unknown key": ([struct.pack("!iiii", 16, 80877102, 1, 2)], None, "closed"),
    # -- the password stage
    "startup, then close before the password": ([startup_bytes, "read", "shut"], None, "Rauth closed"),
    "startup, then reset before the password": ([startup_bytes, "read", "rst"], None, "Rauth rst"),
    "a Query instead of the password": (
        [startup_bytes, "read", msg(b"Q", b"SELECT 1\0")], None,
        "Rauth E(FATAL 08P01 expected password response, got message type 81) closed"),
    "a lone wrong type byte instead of the password": (
        [startup_bytes, "read", b"Q"], None,
        "Rauth E(FATAL 08P01 expected password response, got message type 81) closed"),
    "password message, length 3": (
        [startup_bytes, "read", b"p" + struct.pack("!i", 3)], None, "Rauth closed"),
    "password message, length 2^31-1": (
        [startup_bytes, "read", b"p" + struct.pack("!i", 0x7fffffff)], None, "Rauth closed"),
    "password message, short body, then close": (
        [startup_bytes, "read", b"p" + struct.pack("!i", 100) + b"abc", "shut"], None,
        "Rauth closed"),
    "password message, type byte only, then close": (
        [startup_bytes, "read", b"p", "shut"], None, "Rauth closed"),
    "empty password": (
        [startup_bytes, "read"], "",
        "Rauth E(FATAL 28P01 empty password returned by client) closed"),
    "password message with bytes after its NUL": (
        [startup_bytes, "read", msg(b"p", b"pw\0junk")], None,
        "Rauth E(FATAL 08P01 invalid password packet size) closed"),
    "wrong password": (
        [startup_bytes, "read"], "not-the-password",
        'Rauth E(FATAL 28P01 password authentication failed for user "<user>") closed'),
    "user that does not exist": (
        [login_packet(u="no_such_crab"), "read"], password,
        'Rauth E(FATAL 28P01 password authentication failed for user "no_such_crab") closed'),
    "database that does not exist": (
        [login_packet(d="no_such_reef"), "read"], password,
        'Rauth R0 E(FATAL 3D000 database "no_such_reef" does not exist) closed'),
    # -- the options parameter: checked after the database, as PostgreSQL does
    "options: -c with a setting logs in": (
        [login_packet(extra=[("options", "-c work_mem=5MB --statement-timeout=0")]), "read", "shut"],
        password, LOGGED_IN),
    "options: an unknown switch": bad_option("-x", "invalid command-line argument for server process: -x"),
    "options: a switch run into its letters": bad_option(
        "-xfoo", "invalid command-line argument for server process: postgres"),
    "options: -c without =": bad_option("-c foo", "-c foo requires a value"),
    "options: -cNAME without =": bad_option("-cfoo", "-c foo requires a value"),
    "options: a dangling -c": bad_option("-c", "invalid command-line argument for server process: -c"),
    "options: --NAME without =": bad_option("--foo", "--foo requires a value"),
    "options: a word that is no switch": bad_option(
        "-c work_mem=5MB foo", "invalid command-line argument for server process: foo"),
    "options: an escaped space inside a word": bad_option(
        "a\\ b", "invalid command-line argument for server process: a b"),
    "options: bad, and the database missing: the database first": (
        [login_packet(d="no_such_reef", extra=[("options", "-x")]), "read"], password,
        'Rauth R0 E(FATAL 3D000 database "no_such_reef" does not exist) closed'),
})

failed = 0
for name, (actions, answer, want) in ROWS.items():
    if only and name not in only:
        continue
    got = run(actions, answer)
    if got == want:
        print("ok - login parity: %s" % name)
    else:
        failed += 1
        print("not ok - login parity: %s: expected [%s], got [%s]" % (name, want, got))
sys.exit(1 if failed else 0)
