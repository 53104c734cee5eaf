"""Clients leaving in every state, every way (issue 10). For each pair of a
state (idle, in a transaction, mid-COPY, queued for a server, mid-login, ...)
and a way out (Terminate then close as libpq does, Terminate keeping the
socket open, FIN, RST, SIGKILL of the client process) one client is brought
into the state over a raw socket and leaves; then:

  (a) its connection is closed on the far side: PgCrab no longer holds the
      accepted socket (and with Terminate-keep-open the client reads every
      answer still owed, then EOF), within 2 s;
  (b) a new client is served (SELECT 1 answered) within 2 s;
  (c) no backend of the pool user is idle in transaction (polled up to 2 s);
  (d) PgCrab's established connections to PostgreSQL (ss) equal
      pg_stat_activity's client backends of the pool user (polled up to 2 s);
  (e) a query the client left running on the server (pg_sleep(30)) is gone
      within 2 s and PostgreSQL logged "canceling statement due to user
      request"; a big result or COPY the client abandoned is gone within 2 s.

Prints "ok - NAME" / "not ok - NAME: why" per pair and "# timing NAME: N ms"
(from the departure until (a) to (e) held and (b) answered).

  departure.py --label L [--states a,b] [--ways X+close,FIN] [--for SECONDS]
  departure.py --label L --cancel-off      the one pair of cancel_on_client_exit = off
  departure.py --child STATE TAG           (internal) a SIGKILL victim
Configuration from the environment: see departlib.py.
"""
import argparse
import os
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from departlib import (CANCEL_LINE, Admin, Client, Closed, Ctx, client_params, connect,  # noqa: E402
                       counts, log_since, log_size, now, peer_socket, pgcrab_close_wait, poll,
                       served, still_held)
from pgwire import SYNC, FLUSH, bind, cstr, execute, msg, parse  # noqa: E402

BOUND = 2.0  # seconds for every check after a departure
WAYS4 = ["X+close", "FIN", "RST", "SIGKILL"]
WAYS5 = WAYS4 + ["X-open"]


def Q(sql):
    return msg(b"Q", cstr(sql))


class SetupError(Exception):
    pass


def expect(toks, last, what):
    if not toks or toks[-1] != last:
        raise SetupError("%s: got %s" % (what, toks))


# -- states: each brings a fresh client into the state and returns it -------
# setup(ctx, tag, deadline) -> Client. It runs in the test's process, or in
# a child process that is then SIGKILLed.

def s_idle(ctx, tag, dl):
    return connect(ctx, dl)


def s_tx(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(Q("BEGIN; INSERT INTO dep_rows VALUES ('%s'); SELECT 1" % tag))
    expect(c.until(dl), "Z:T", "BEGIN")
    return c


def s_failed_tx(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(Q("BEGIN; INSERT INTO dep_rows VALUES ('%s'); SELECT 1/0" % tag))
    toks = c.until(dl)
    if "E:22012" not in toks:
        raise SetupError("SELECT 1/0: got %s" % toks)
    expect(toks, "Z:E", "SELECT 1/0")
    return c


def s_running(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(Q("SELECT pg_sleep(30) /*%s*/" % tag))
    return c


def s_running_short(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(Q("SELECT pg_sleep(0.5) /*%s*/" % tag))
    return c


BIG = "SELECT repeat('x', 1000) FROM generate_series(1, 2000000)"


def s_streaming(ctx, tag, dl):
    c = connect(ctx, dl, rcvbuf=65536)
    c.send(Q("%s /*%s*/" % (BIG, tag)))
    return c


def s_copy_out(ctx, tag, dl):
    c = connect(ctx, dl, rcvbuf=65536)
    c.send(Q("COPY (%s) TO STDOUT /*%s*/" % (BIG, tag)))
    return c


def s_copy_in_start(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(Q("COPY dep_copy FROM STDIN /*%s*/" % tag))
    expect(c.until(dl, stop="G"), "G", "COPY FROM STDIN")
    return c


def s_copy_in_data(ctx, tag, dl):
    c = s_copy_in_start(ctx, tag, dl)
    c.send(*[msg(b"d", ("%s-%d\n" % (tag, i)).encode()) for i in range(3)])
    return c


def s_pipe_sync(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(parse("", "SELECT pg_sleep(30) /*%s*/" % tag), bind(""), execute(), SYNC,
           parse("", "SELECT 1"), bind(""), execute(), SYNC)
    return c


def s_pipe_nosync(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(parse("", "SELECT pg_sleep(30) /*%s*/" % tag), bind(""), execute())
    return c


def s_pipe_quick(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(*[m for _ in range(3) for m in (parse("", "SELECT 1 /*%s*/" % tag), bind(""), execute(), SYNC)])
    return c


def s_unsynced(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(parse("", "SELECT 1 /*%s*/" % tag), bind(""), execute(), FLUSH)
    toks = c.until(dl, stop="C")
    if toks != ["1", "2", "D:1", "C:SELECT 1"]:
        raise SetupError("Parse/Bind/Execute/Flush: got %s" % toks)
    return c


def s_queued(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(Q("SELECT 1 /*%s*/" % tag))
    try:
        toks = c.until(now() + 0.3)
        raise SetupError("answered while every server was held: %s" % toks)
    except TimeoutError:
        pass
    return c


def s_login_startup(ctx, tag, dl):
    c = Client(ctx.port)
    c.send_startup(ctx.user, ctx.db, **client_params(ctx))
    code = c.read_auth(dl)
    if code == 0:
        raise SetupError("no password asked")
    return c


def s_login_password(ctx, tag, dl):
    c = Client(ctx.port)
    c.send_startup(ctx.user, ctx.db, **client_params(ctx))
    code = c.read_auth(dl)
    if code == 0:
        raise SetupError("no password asked")
    c.send_password(code, ctx.password)
    return c


def s_params_sync(ctx, tag, dl):
    c = connect(ctx, dl, application_name="dep_app_" + tag, TimeZone="Pacific/Chatham",
                DateStyle="SQL, DMY")
    c.send(Q("SELECT current_setting('application_name') /*%s*/" % tag))
    return c


def s_prepare_inject(ctx, tag, dl):
    c = connect(ctx, dl)
    c.send(parse("dep_stmt", "SELECT '%s'::text /*%s*/" % (tag, tag)), SYNC)
    expect(c.until(dl), "Z:I", "Parse dep_stmt")
    if ctx.mode == "transaction" and not ctx.direct and not ctx.shared:
        # the server that prepared it goes: whichever server runs the Bind
        # below lacks the statement, and PgCrab must prepare it there first.
        # (Not when other clients share the pool: the server may be theirs
        # by the time it is terminated. Then the Bind lands on another
        # server only as the pool spreads the work.)
        admin = Admin(ctx)
        admin.terminate("query LIKE '%%%s%%'" % tag)
        admin.c.leave_x_close()
        if not poll(BOUND, lambda: pgcrab_close_wait(ctx) == 0):
            raise SetupError("PgCrab did not drop the terminated server")
    c.send(bind("dep_stmt"), execute(), SYNC)
    return c


class State:
    def __init__(self, name, setup, ways, reach=None, owed=0, sleeping=False, query_ends=False,
                 pooler_only=None, holders=0, rolled_back=False, extra=0.0):
        self.name, self.setup, self.ways = name, setup, ways
        self.reach = reach          # 'active' | 'clientwrite': wait for it on the server
        self.owed = owed            # ReadyForQuery still owed (checked after Terminate-keep-open)
        self.sleeping = sleeping    # pg_sleep(30) left running: (e) with the cancel log line
        self.query_ends = query_ends  # a query left running: it must be gone within 2 s
        self.pooler_only = pooler_only  # why the pair means nothing in direct mode
        self.holders = holders      # clients holding every server first
        self.rolled_back = rolled_back  # its INSERT must be gone
        self.extra = extra          # seconds the owed answers take


STATES = [
    State("idle", s_idle, WAYS5),
    State("in_tx", s_tx, WAYS5, rolled_back=True),
    State("failed_tx", s_failed_tx, WAYS5, rolled_back=True),
    State("running", s_running, WAYS4, reach="active", sleeping=True, query_ends=True),
    State("running_short", s_running_short, ["X-open"], reach="active", owed=1, extra=0.5),
    State("streaming", s_streaming, WAYS4, reach="clientwrite", query_ends=True),
    State("copy_in_start", s_copy_in_start, WAYS4, reach="active", query_ends=True),
    State("copy_in_data", s_copy_in_data, WAYS4, reach="active", query_ends=True),
    State("copy_out", s_copy_out, WAYS4, reach="clientwrite", query_ends=True),
    State("pipe_sync", s_pipe_sync, WAYS4, reach="active", sleeping=True, query_ends=True),
    State("pipe_nosync", s_pipe_nosync, WAYS4, reach="active", sleeping=True, query_ends=True),
    State("pipe_quick", s_pipe_quick, WAYS5, owed=3),
    State("unsynced", s_unsynced, WAYS5),
    State("queued", s_queued, WAYS5, owed=1, holders=2,
          pooler_only="no pool: nothing to wait for"),
    State("login_startup", s_login_startup, WAYS5, owed=None),
    State("login_password", s_login_password, WAYS5, owed=None),
    State("params_sync", s_params_sync, WAYS5, owed=1),
    State("prepare_inject", s_prepare_inject, WAYS5, owed=1),
]
BY_NAME = {s.name: s for s in STATES}


def out(line):
    print(line, flush=True)


class Child:
    """A client in its own process, for SIGKILL."""

    def __init__(self, state, tag):
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", state.name, tag],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        r, _, _ = select.select([self.p.stdout], [], [], 15)
        line = self.p.stdout.readline().strip() if r else ""
        if not line.startswith("ready "):
            self.kill()
            raise SetupError("child: %s" % (line or "no answer within 15 s"))
        self.local_port = int(line.split()[1])

    def kill(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)
        self.p.wait()


def child_main(state_name, tag):
    ctx = Ctx()
    try:
        c = BY_NAME[state_name].setup(ctx, tag, now() + 10)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        print("failed %s: %s" % (type(e).__name__, e), flush=True)
        return
    print("ready %d" % c.local_port, flush=True)
    time.sleep(600)


def reach(admin, state, tag):
    """Waits until the server shows the state; raises SetupError if not."""
    if not state.reach:
        return
    if state.reach == "active":
        where = "state = 'active' AND query LIKE '%%%s%%'" % tag
    else:  # a result the client stopped reading: PostgreSQL blocked writing it
        where = "state = 'active' AND wait_event = 'ClientWrite' AND query LIKE '%%%s%%'" % tag
    if not poll(10, lambda: admin.count(where) > 0):
        seen = admin.rows("SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                          "WHERE query LIKE '%%%s%%' AND pid <> pg_backend_pid()" % tag)
        raise SetupError("the query never showed as %s on the server within 10 s (it is: %s)" % (
            state.reach, seen or "not there"))


class Runner:
    def __init__(self, ctx, label):
        self.ctx = ctx
        self.label = label
        self.admin = Admin(ctx, ctx.db)
        self.n = 0
        self.timings = []
        self.failed = 0
        self.slowest = {}

    def tag(self):
        self.n += 1
        return "dep%d_%d" % (os.getpid(), self.n)

    def holders(self, n):
        hs = []
        for i in range(n):
            h = connect(self.ctx, now() + 5)
            h.send(Q("BEGIN; SELECT 1"))
            expect(h.until(now() + 5), "Z:T", "holder %d" % i)
            hs.append(h)
        return hs

    def timed(self, key, fn, *args):
        """fn(*args), keeping the longest time each kind of check took (for
        the "# slow" line of a pair that took long)."""
        t = now()
        v = fn(*args)
        self.slowest[key] = max(self.slowest.get(key, 0), now() - t)
        return v

    def checks(self, state, tag, held, log_off, deadline):
        """(a), (c), (d), (e) polled together until they hold twice in a row
        or the deadline passes: (when they first held, [why not])."""
        ctx, admin = self.ctx, self.admin
        first = None
        while True:
            why = []
            left = self.timed("a", still_held, held)
            if left:
                why.append("(a) the far side still holds the client's socket (pid %d)" % left[0][0])
            n = self.timed("c", admin.idle_in_tx)
            if n:
                why.append("(c) %d backend(s) of %s idle in transaction" % (n, ctx.pg_user))
            if state.query_ends:
                n = self.timed("e", admin.active_tagged, tag)
                if n:
                    why.append("(e) the query the client left is still active")
            if state.sleeping and not ctx.direct and CANCEL_LINE not in log_since(ctx, log_off):
                why.append("(e) no \"%s\" in the server log" % CANCEL_LINE)
            if not ctx.direct:
                # polled from /proc (fast); once all else holds, ss must agree
                pc, pg = self.timed("d", counts, ctx, admin, not (first and not why))
                if pc != pg:
                    why.append("(d) PgCrab has %d server connections, pg_stat_activity %d" % (pc, pg))
            t = now()
            if not why:
                if first is not None:
                    return first, []
                first = t
            else:
                first = None
                if t >= deadline:
                    return None, why
            time.sleep(0.01)

    def settle(self, tag, force):
        """Between pairs: whatever a failed pair left goes (backends
        terminated), then the pool must be quiet again."""
        ctx, admin = self.ctx, self.admin
        if force:
            if ctx.shared:  # only what is surely ours
                admin.terminate("query LIKE '%%%s%%'" % tag)
            else:
                admin.terminate("state LIKE 'idle in transaction%%' OR query LIKE '%%%s%%'" % tag)

        def quiet():
            if admin.idle_in_tx() or admin.active_tagged(tag):
                return False
            if ctx.direct:
                return True
            pc, pg = counts(ctx, admin)
            return pc == pg
        if not poll(3, quiet, 0.05):
            out("# the pool did not settle after %s: %d idle in transaction, %d tagged active%s" % (
                tag, admin.idle_in_tx(), admin.active_tagged(tag),
                "" if ctx.direct else ", counts %s" % (counts(ctx, admin),)))

    def pair(self, state, way, rnd=1):
        ctx = self.ctx
        name = "%s %s %s" % (self.label, state.name, way)
        if rnd > 1:
            name += " (round %d)" % rnd
        if ctx.direct and state.pooler_only:
            out("ok - %s # SKIP direct mode: %s" % (name, state.pooler_only))
            return
        tag = self.tag()
        why = []
        hs, cl, child = [], None, None
        took = None
        phases = []
        self.slowest = {}
        reported = False
        try:
            try:
                hs = self.holders(state.holders)
                if way == "SIGKILL":
                    child = Child(state, tag)
                    port = child.local_port
                else:
                    cl = state.setup(ctx, tag, now() + 10)
                    port = cl.local_port
                reach(self.admin, state, tag)
                held = peer_socket(ctx, port)
                if not held:
                    raise SetupError("no far side socket found for client port %d" % port)
            except (SetupError, TimeoutError, Closed, OSError, RuntimeError) as e:
                why.append("setup: %s: %s" % (type(e).__name__, e))
                reported = True
                raise
            log_off = log_size(ctx)
            t0 = now()
            deadline = t0 + BOUND + state.extra
            if way == "SIGKILL":
                child.kill()
            elif way == "X+close":
                cl.leave_x_close()
            elif way == "FIN":
                cl.leave_fin()
            elif way == "RST":
                cl.leave_rst()
            else:  # X-open: Terminate, then read what is owed (below)
                cl.send(msg(b"X"))
            phases = [("left", now() - t0)]
            if hs and way != "X-open":
                # a client gone while queued is dropped while it still waits:
                # the holders keep every server until then
                if not poll(BOUND, lambda: not still_held(held)):
                    why.append("(a) the far side still holds the socket of the client that left "
                               "while queued, 2 s later")
            # the holders end their transactions: the queued client's turn
            for h in hs:
                h.send(Q("ROLLBACK"))
            for h in hs:
                expect(h.until(now() + BOUND), "Z:I", "a holder's ROLLBACK")
                h.leave_x_close()
            hs = []
            if way == "X-open":
                try:
                    toks, how = cl.read_to_eof(deadline)
                    nz = sum(1 for t in toks if t.startswith("Z:"))
                    errs = [t for t in toks if t.startswith("E:")]
                    if state.owed is not None and (nz != state.owed or errs):
                        why.append("(a) %d answer(s) owed before the close, no error; got %s" % (
                            state.owed, toks))
                except TimeoutError as e:
                    why.append("(a) no EOF within %.1f s after Terminate (read %s)" % (
                        deadline - t0, e.tokens[-6:]))
                cl.close_quietly()
                cl = None
            phases.append(("answers", now() - t0))
            ok_at, more = self.checks(state, tag, held, log_off, max(deadline, now() + 0.1))
            why += more
            phases.append(("checks", now() - t0))
            b = served(ctx, BOUND)
            phases.append(("served", now() - t0))
            if b:
                why.append("(b) " + b)
            if not why:
                took = now() - t0
            if state.rolled_back:
                n = int(self.admin.one("SELECT count(*) FROM dep_rows WHERE tag = '%s'" % tag))
                if n:
                    why.append("the departed transaction's row is there (%d)" % n)
        except (SetupError, TimeoutError, Closed, OSError, RuntimeError) as e:
            if not reported:
                why.append("%s: %s" % (type(e).__name__, e))
        finally:
            if child:
                child.kill()
            for c in hs + ([cl] if cl else []):
                c.close_quietly()
        if why:
            self.failed += 1
            out("not ok - %s: %s" % (name, "; ".join(why)))
            out("# timing %s: - (failed; %s)" % (name, " ".join("%s at %.3f s" % p for p in phases)))
        else:
            out("ok - %s" % name)
            ms = int(took * 1000)
            if took > 1.5:
                out("# slow %s: %s; longest single check: %s" % (
                    name, " ".join("%s %.3f" % p for p in phases),
                    " ".join("%s %.3f" % kv for kv in sorted(self.slowest.items()))))
            self.timings.append(ms)
            out("# timing %s: %d ms" % (name, ms))
        self.settle(tag, bool(why))

    def cancel_off(self):
        """cancel_on_client_exit = off: a client leaving (FIN) while its
        pg_sleep runs leaves the query running: still active 2 s later.
        Then it is cancelled from outside and the pool must recover."""
        ctx, admin = self.ctx, self.admin
        name = "%s cancel_on_client_exit = off: running FIN" % self.label
        if ctx.direct:
            out("ok - %s # SKIP direct mode: a PgCrab setting" % name)
            return
        tag = self.tag()
        why = []
        cl = None
        try:
            cl = s_running(ctx, tag, now() + 10)
            reach(admin, BY_NAME["running"], tag)
            held = peer_socket(ctx, cl.local_port)
            t0 = now()
            cl.leave_fin()
            cl = None
            if poll(BOUND, lambda: not still_held(held)) is False:
                why.append("(a) PgCrab still holds the client's socket after 2 s")
            time.sleep(max(0.0, t0 + BOUND - now()))
            if admin.active_tagged(tag) != 1:
                why.append("the query was not left running 2 s after its client left")
            admin.rows("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%%%s%%' "
                       "AND pid <> pg_backend_pid()" % tag)

            class _S:
                query_ends, sleeping = True, False
            ok_at, more = self.checks(_S, tag, [], 0, now() + BOUND)
            why += ["after cancelling it from outside: " + m for m in more]
            b = served(ctx, BOUND)
            if b:
                why.append("(b) " + b)
        except (SetupError, TimeoutError, Closed, OSError, RuntimeError) as e:
            why.append("%s: %s" % (type(e).__name__, e))
        finally:
            if cl:
                cl.close_quietly()
        if why:
            self.failed += 1
            out("not ok - %s: %s" % (name, "; ".join(why)))
        else:
            out("ok - %s" % name)
        self.settle(tag, bool(why))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2)
    ap.add_argument("--label", default="")
    ap.add_argument("--states", default="")
    ap.add_argument("--ways", default="")
    ap.add_argument("--exclude", default="", help="comma separated STATE/WAY pairs or STATEs to leave out")
    ap.add_argument("--for", dest="for_s", type=float, default=0,
                    help="run the pairs again and again for at least this many seconds")
    ap.add_argument("--cancel-off", action="store_true")
    a = ap.parse_args()
    if a.child:
        child_main(*a.child)
        return
    ctx = Ctx()
    r = Runner(ctx, a.label or ctx.mode)
    if a.cancel_off:
        r.cancel_off()
        return
    states = [BY_NAME[s] for s in a.states.split(",")] if a.states else STATES
    ways = a.ways.split(",") if a.ways else WAYS5
    excl = set(a.exclude.split(",")) if a.exclude else set()
    pairs = [(s, w) for s in states for w in s.ways
             if w in ways and s.name not in excl and "%s/%s" % (s.name, w) not in excl]
    if ctx.direct:
        out("ok - %s (d) PgCrab's server connections equal pg_stat_activity's # SKIP direct mode: "
            "no pooler, the backends are the clients' own" % r.label)
        if any(s.sleeping for s, _ in pairs):
            out("ok - %s (e) the server log shows the cancel # SKIP direct mode: PostgreSQL ends a gone "
                "client's query itself (client_connection_check_interval), no cancel is sent" % r.label)
    start = now()
    done = 0
    # every pair once, then round again until --for seconds have passed
    while done < len(pairs) or now() - start < a.for_s:
        s, w = pairs[done % len(pairs)]
        r.pair(s, w, done // len(pairs) + 1)
        done += 1
    out("# %s: %d pairs run (%d distinct), %d failed, %.1f s" % (r.label, done, len(pairs), r.failed,
                                                                now() - start))


if __name__ == "__main__":
    main()
