"""auth_type = plain against SCRAM verifiers (t_client_auth.sh): the
PBKDF2 runs on PgCrab's auth hasher thread, not on the worker. Every check
is by order of events, never by a time limit. PgCrab runs with one worker,
one hasher thread, and a role (SLOW) whose verifier takes about a second
to check.

Usage: plain_hasher.py verifier PASSWORD ITERATIONS
         prints a SCRAM-SHA-256 verifier for PASSWORD
       plain_hasher.py CHECK PORT DB SLOW PASSWORD OTHER OTHER_PASSWORD
         CHECK is one of:
         stall  SLOW logs in with PASSWORD (hashed: about a second); once
                its password is sent, OTHER (a cleartext [user]) logs in
                with psql and runs SELECT 1. Prints SLOW's answer, psql's
                output, and whether psql was done before SLOW's answer
                came ("first" or "after").
         hit    the same, but SLOW's first login has a wrong password (so
                the hasher is busy with it), and psql logs in as SLOW with
                PASSWORD, accepted before on this worker: from the cache,
                so it is done first.
         queue  SLOW with a wrong password keeps the hasher busy; then
                OTHER (a role that does not exist) logs in: prints both
                answers and whether OTHER's came after SLOW's ("after":
                it went through the hasher too).
         reload SLOW logs in twice: with a wrong password (the hasher is
                busy with it), then with OTHER_PASSWORD; prints "sent",
                then (the test reloads meanwhile) both answers.
         leave  SLOW logs in with OTHER_PASSWORD; prints "sent", then the
                answer (PgCrab ends the login while it is hashed: a timeout,
                a shutdown)."""
import base64
import hashlib
import hmac
import os
import select
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgwire import Wire, cstr, error_fields, msg, startup  # noqa: E402


def verifier(password, iterations):
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server = hmac.digest(salted, b"Server Key", "sha256")
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, b64(salt), b64(stored), b64(server))


class Login(Wire):
    """A login by hand: startup, then the password once asked for it."""

    def __init__(self, port, user, db):
        super().__init__(port, 30)
        self.user = user
        self.send(startup(user, db))
        t, data = self.read()
        if t != "R" or struct.unpack("!i", data[:4])[0] != 3:
            raise RuntimeError("%s: expected a cleartext password request, got %r" % (user, t))

    def password(self, pw):
        self.send(msg(b"p", cstr(pw)))

    def readable(self):
        return bool(self.buf) or bool(select.select([self.s], [], [], 0)[0])

    def answer(self):
        """'ok' (AuthenticationOk) or 'E:SQLSTATE message'."""
        t, data = self.read()
        self.s.close()
        if t == "R" and struct.unpack("!i", data[:4])[0] == 0:
            return "ok"
        if t == "E":
            f = error_fields(data)
            return "E:%s %s" % (f.get("C", "?"), f.get("M", "?"))
        return "unexpected %r" % t


def psql(port, user, pw, db):
    env = dict(os.environ, PGPASSWORD=pw)
    return subprocess.Popen(
        ["psql", "-X", "-At", "-d",
         "host=127.0.0.1 port=%s user=%s dbname=%s sslmode=disable connect_timeout=30" % (port, user, db),
         "-c", "SELECT 1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)


def main():
    if sys.argv[1] == "verifier":
        print(verifier(sys.argv[2], int(sys.argv[3])))
        return
    check, port, db, slow, pw, other, other_pw = sys.argv[1:8]
    first = Login(port, slow, db)
    if check == "reload":
        first.password(pw + "_wrong")
        second = Login(port, slow, db)
        second.password(other_pw)
        print("sent", flush=True)
        print("slow=%s" % first.answer())
        print("other=%s" % second.answer(), flush=True)
        return
    if check == "leave":
        first.password(other_pw)
        time.sleep(0.05)  # the worker has read the password and handed it on
        print("sent", flush=True)
        print("slow=%s" % first.answer(), flush=True)
        return
    first.password(pw if check == "stall" else pw + "_wrong")
    time.sleep(0.05)  # the worker has read the password and handed it on
    if check == "queue":
        second = Login(port, other, db)
        second.password(other_pw)
        got = second.answer()
        # SLOW's refusal was sent before OTHER's was hashed
        order = "after" if first.readable() else "first"
        print("slow=%s" % first.answer())
        print("other=%s" % got)
        print("order=%s" % order)
        return
    p = psql(port, slow if check == "hit" else other, pw if check == "hit" else other_pw, db)
    got = first.answer()
    order = "first" if p.poll() is not None else "after"
    out = p.communicate(timeout=60)[0].strip()
    print("slow=%s" % got)
    print("psql=%s" % out)
    print("order=%s" % order)


main()
