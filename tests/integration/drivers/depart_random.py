"""Randomised departures (issue 10): each round, 4 to 8 clients at once, on
a pool smaller than that, each send a random sequence of valid messages
(simple queries, BEGIN/COMMIT/ROLLBACK, errors, COPY FROM STDIN with rows,
COPY TO STDOUT, pipelines, Parse/Bind/Execute with and without Sync, named
statements, now and then a short pg_sleep) and leave at a random point
(between requests, or right after sending one whose answer is still owed)
in a random way (Terminate then close, Terminate keeping the socket open,
FIN, RST). Every reply a client reads is checked (values, and no error but
the ones its own requests cause: a cancel meant for a departed client must
hit nobody else). A client that sent Terminate and kept its socket gets
every answer still owed, then EOF. After every round: no backend of the
pool user idle in transaction or still active, PgCrab's server connections
equal pg_stat_activity's, and a new client is served within 2 s.

  depart_random.py --seed N --rounds R [--label L]

Round r's messages come from random.Random("N/MODE/r") alone, so a failure
is replayed with the same seed (the timing between the clients is not).
A failure prints the seed, the round and every client's plan, and stops.
Configuration from the environment: see departlib.py.
"""
import argparse
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from departlib import (Admin, Closed, Ctx, connect, counts, far_inode, now,  # noqa: E402
                       pgcrab_server_sockets_fast, served, socket_inodes)
from pgwire import SYNC, FLUSH, bind, cstr, execute, msg, parse  # noqa: E402

WAYS = ["X+close", "X-open", "FIN", "RST"]
STEP_TIMEOUT = 20.0  # a request waits for a server at most this long
EOF_BOUND = 2.0      # after Terminate, beyond what the owed answers take


def Q(sql):
    return msg(b"Q", cstr(sql))


class Step:
    """One request: what is sent, how its answer ends, what it owes.
    kind: q (simple query), copy_in, copy_out, pipe (n x P/B/E/S),
    nosync (P/B/E/H, answered up to CommandComplete), sync, named."""

    def __init__(self, desc, kind, msgs, owed_z=1, values=(), error=None, rows=0, sleep=0.0, name=None):
        self.desc, self.kind, self.msgs = desc, kind, msgs
        self.owed_z = owed_z      # ReadyForQuery it is answered with
        self.values = list(values)  # DataRow values expected, in order
        self.error = error        # the SQLSTATE it raises itself
        self.rows = rows          # COPY rows
        self.sleep = sleep
        self.name = name          # a named statement it prepares

    def __repr__(self):
        return self.desc


def plan_client(rng, cid):
    """A client's steps, where it leaves (before step `at`; mid: right after
    sending step `at`, its answer unread) and how."""
    steps = []
    named = []
    n = rng.randint(1, 7)
    i = 0
    while len(steps) < n:
        i += 1
        r = rng.random()
        v = rng.randint(1, 10 ** 6)
        if r < 0.16:
            steps.append(Step("select %d" % v, "q", [Q("SELECT %d" % v)], values=[str(v)]))
        elif r < 0.28:
            steps.append(Step("begin", "q", [Q("BEGIN")]))
        elif r < 0.36:
            steps.append(Step("commit", "q", [Q("COMMIT")]))
        elif r < 0.40:
            steps.append(Step("rollback", "q", [Q("ROLLBACK")]))
        elif r < 0.48:
            steps.append(Step("1/0", "q", [Q("SELECT 1/0")], error="22012"))
        elif r < 0.54:
            steps.append(Step("insert", "q", [Q("INSERT INTO dep_rand VALUES (%d, 'c%d')" % (v, cid))]))
        elif r < 0.62:
            k = rng.randint(1, 30)
            rows = [msg(b"d", ("%d\tr%d\n" % (v + j, cid)).encode()) for j in range(k)]
            steps.append(Step("copy in %d" % k, "copy_in", [Q("COPY dep_rand FROM STDIN")] + rows + [msg(b"c")],
                              rows=k))
        elif r < 0.70:
            k = rng.choice([1, 5, 50, 200, 200, 20000])
            steps.append(Step("copy out %d" % k, "copy_out",
                              [Q("COPY (SELECT generate_series(1, %d)) TO STDOUT" % k)], rows=k))
        elif r < 0.80:
            k = rng.randint(1, 4)
            bad = rng.randrange(k) if rng.random() < 0.3 else -1
            msgs, vals, desc = [], [], []
            for j in range(k):
                if j == bad:
                    sql = "SELECT 1/0"
                    desc.append("1/0")
                else:
                    sql = "SELECT %d" % (v + j)
                    vals.append(str(v + j))
                    desc.append(str(v + j))
                msgs += [parse("", sql), bind(""), execute(), SYNC]
            steps.append(Step("pipeline [%s]" % ",".join(desc), "pipe", msgs, owed_z=k, values=vals,
                              error="22012" if bad >= 0 else None))
        elif r < 0.86:
            # without Sync: answered up to CommandComplete; the Sync comes next
            steps.append(Step("P/B/E %d no sync" % v, "nosync",
                              [parse("", "SELECT %d" % v), bind(""), execute(), FLUSH], owed_z=0,
                              values=[str(v)]))
            steps.append(Step("sync", "sync", [SYNC]))
        elif r < 0.995:
            if named and rng.random() < 0.5:
                name, w = rng.choice(named)
                steps.append(Step("B/E/S %s" % name, "named", [bind(name), execute(), SYNC],
                                  values=[str(w)]))
            else:
                name = "s%d_%d" % (cid, i)
                steps.append(Step("P/B/E/S %s" % name, "named",
                                  [parse(name, "SELECT %d" % v), bind(name), execute(), SYNC],
                                  values=[str(v)], name=(name, v)))
                named.append((name, v))
        else:
            s = rng.choice([0.3, 0.5, 1.0])
            steps.append(Step("pg_sleep(%s)" % s, "q", [Q("SELECT pg_sleep(%s)" % s)], values=[""], sleep=s))
    steps = steps[:n]
    at = rng.randint(0, len(steps))
    mid = at < len(steps) and rng.random() < 0.5
    ways = WAYS if not (mid and steps[at].kind == "copy_in") else [w for w in WAYS if w != "X-open"]
    return steps, at, mid, rng.choice(ways)


class Failure(Exception):
    pass


def run_step(c, step, failed_tx, parsed):
    """Sends step and reads its whole answer; raises Failure on anything
    unexpected. Returns the transaction status of the last ReadyForQuery."""
    deadline = now() + STEP_TIMEOUT + step.sleep
    if step.kind == "copy_in":
        c.send(step.msgs[0])
        toks = c.until(deadline, stop="GZ")
        if toks[-1] == "G":
            c.send(*step.msgs[1:])
            toks += c.until(deadline)
    elif step.kind == "nosync":
        c.send(*step.msgs)
        toks = c.until(deadline, stop="CE")
    else:
        c.send(*step.msgs)
        toks = c.until(deadline, count=step.owed_z, stop="Z")
    errors = [t[2:] for t in toks if t.startswith("E:")]
    for i, e in enumerate(errors):
        # 25P02: in a transaction that failed before, or in this step
        if e == step.error or (e == "25P02" and (failed_tx or i > 0)) \
                or (e == "26000" and step.kind == "named"):
            continue
        raise Failure("%s: unexpected error %s in %s" % (step, e, toks[:12]))
    if step.error and not errors:
        raise Failure("%s: no error in %s" % (step, toks[:12]))
    vals = [t[2:] for t in toks if t.startswith("D:")]
    if not errors and step.kind != "copy_out" and vals != step.values:
        raise Failure("%s: rows %s, expected %s" % (step, vals, step.values))
    if step.kind == "copy_out" and not errors and toks.count("d") != step.rows:
        raise Failure("%s: %d rows" % (step, toks.count("d")))
    if step.name and "1" in toks:
        parsed.add(step.name[0])
    z = [t for t in toks if t.startswith("Z:")]
    return z[-1][2:] if z else None


def send_mid(c, step, rng):
    """Sends step (for COPY FROM STDIN: the query, then some of its rows once
    the server is ready for them) without reading its answer. Returns the
    ReadyForQuery still owed."""
    if step.kind == "copy_in":
        c.send(step.msgs[0])
        toks = c.until(now() + STEP_TIMEOUT, stop="GZ")
        if toks[-1] != "G":
            return 0  # refused (a failed transaction): nothing more owed
        c.send(*step.msgs[1:1 + rng.randint(0, step.rows)])
        return 0
    c.send(*step.msgs)
    return step.owed_z


class ClientRun(threading.Thread):
    def __init__(self, ctx, cid, plan, rng_seed):
        super().__init__(daemon=True)
        self.ctx, self.cid, self.plan = ctx, cid, plan
        self.rng = random.Random(rng_seed)
        self.error = None
        self.far = None  # (pid, inode) of the far end of its connection

    def run(self):
        steps, at, mid, way = self.plan
        c = None
        try:
            c = connect(self.ctx, now() + STEP_TIMEOUT)
            ino = far_inode(self.ctx, c.local_port)
            if ino:
                self.far = (c.pid if self.ctx.direct else self.ctx.pid, ino)
            failed_tx = False
            parsed = set()
            for step in steps[:at]:
                if step.kind == "named" and not step.name and step.desc.split()[1] not in parsed:
                    step.values = []  # its statement never made it: 26000 expected
                st = run_step(c, step, failed_tx, parsed)
                if st is not None:
                    failed_tx = st == "E"
            owed = 0
            extra = 0.0
            if mid:
                owed = send_mid(c, steps[at], self.rng)
                extra = steps[at].sleep
            if way == "X+close":
                c.leave_x_close()
            elif way == "FIN":
                c.leave_fin()
            elif way == "RST":
                c.leave_rst()
            else:
                c.send(msg(b"X"))
                # answers owed may wait for a server first: a generous bound
                try:
                    toks, _ = c.read_to_eof(now() + STEP_TIMEOUT + EOF_BOUND + extra)
                except TimeoutError as e:
                    raise Failure("no EOF after Terminate (read %s)" % e.tokens[-6:])
                nz = sum(1 for t in toks if t.startswith("Z:"))
                if nz != owed:
                    raise Failure("after Terminate: %d ReadyForQuery owed, got %s" % (owed, toks[-12:]))
                c.close_quietly()
            c = None
        except Failure as e:
            self.error = str(e)
        except (TimeoutError, Closed, OSError, RuntimeError) as e:
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            if c:
                c.close_quietly()


def describe(plan):
    steps, at, mid, way = plan
    if mid:
        where = "right after sending step %d, its answer unread" % (at + 1)
    elif at < len(steps):
        where = "before step %d" % (at + 1)
    else:
        where = "after the last step"
    return "%s; leaves %s, by %s" % (
        " | ".join("%d: %s" % (i + 1, st) for i, st in enumerate(steps)), where, way)


def invariants(ctx, admin, fars, with_ss):
    """None when the pool is back to normal within 2 s, else why not: every
    departed client's connection closed on the far side (so PgCrab has seen
    every departure), no backend of the pool user active or idle in
    transaction, PgCrab's server connections equal pg_stat_activity's (read
    from /proc, as ss does; with_ss: then confirmed with ss itself, which
    scans every process and is slow on a busy machine); then a new client is
    served within 2 s."""
    deadline = now() + 2.0
    why = []
    invariants.waited = []
    while True:
        if why:
            invariants.waited = why
        why = []
        held = [f for f in fars if f[1] in socket_inodes(f[0])]
        if held:
            why.append("%d departed client(s) still connected on the far side" % len(held))
        idle_tx, active, pg = admin.snapshot()
        if idle_tx:
            why.append("%d backend(s) idle in transaction" % idle_tx)
        if active:
            why.append("%d backend(s) still active" % active)
        if not ctx.direct and not why:
            pc = pgcrab_server_sockets_fast(ctx)
            if pc != pg:
                why.append("PgCrab has %d server connections, pg_stat_activity %d" % (pc, pg))
            elif with_ss:
                pc, pg = counts(ctx, admin)  # ss agrees
                if pc != pg:
                    why.append("ss: PgCrab has %d server connections, pg_stat_activity %d" % (pc, pg))
        if not why or now() >= deadline:
            break
        time.sleep(0.01)
    if why:
        left = admin.rows("SELECT pid, state, left(query, 60) FROM pg_stat_activity WHERE usename = '%s' "
                          "AND (state = 'active' OR state LIKE 'idle in transaction%%')" % ctx.pg_user)
        return "%s (%s)" % ("; ".join(why), ", ".join("%s %s: %s" % tuple(r) for r in left))
    b = served(ctx, 2.0)
    return b


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--label", default="")
    ap.add_argument("--every", type=int, default=100)
    a = ap.parse_args()
    ctx = Ctx()
    label = a.label or ctx.mode
    admin = Admin(ctx, ctx.db)
    admin.rows("CREATE TABLE IF NOT EXISTS dep_rand (a bigint, b text)")
    if ctx.direct:
        print("ok - %s: PgCrab's server connections equal pg_stat_activity's # SKIP direct mode: "
              "no pooler, the backends are the clients' own" % label, flush=True)
    start = now()
    ways, clients, mids, since = {}, 0, 0, 1
    t_clients = t_checks = 0.0
    for rnd in range(1, a.rounds + 1):
        rng = random.Random("%d/%s/%d" % (a.seed, ctx.mode, rnd))
        plans = [plan_client(rng, i) for i in range(rng.randint(4, 8))]
        runs = [ClientRun(ctx, i, p, "%d/%s/%d/%d" % (a.seed, ctx.mode, rnd, i)) for i, p in enumerate(plans)]
        t_round = now()
        for r in runs:
            r.start()
        for r in runs:
            r.join(STEP_TIMEOUT * 3)
            if r.is_alive():
                r.error = "still running after %d s" % (STEP_TIMEOUT * 3)
        why = ["client %d: %s" % (r.cid, r.error) for r in runs if r.error]
        t_clients += now() - t_round
        if not why:
            t_inv = now()
            w = invariants(ctx, admin, [r.far for r in runs if r.far], rnd % 10 == 0 or rnd == a.rounds)
            t_checks += now() - t_inv
            if now() - t_inv > 0.5:
                print("# round %d: the pool took %d ms to settle (last waiting for: %s)" % (
                    rnd, (now() - t_inv) * 1000, "; ".join(invariants.waited) or "a new client"), flush=True)
            if w:
                why.append("after the round: " + w)
        clients += len(plans)
        for p in plans:
            ways[p[3]] = ways.get(p[3], 0) + 1
            mids += p[2]
        if why:
            print("not ok - %s round %d: %s" % (label, rnd, "; ".join(why)), flush=True)
            print("# reproduce: DEPART_SEED=%d (%s, round %d)" % (a.seed, ctx.mode, rnd))
            for i, p in enumerate(plans):
                print("# client %d: %s" % (i, describe(p)))
            # what the failure left must not fail the next test: clean up
            admin.terminate("state LIKE 'idle in transaction%' OR state = 'active'")
            print("# %s: stopped at round %d of %d, %.1f s" % (label, rnd, a.rounds, now() - start), flush=True)
            return
        if rnd % a.every == 0 or rnd == a.rounds:
            print("ok - %s rounds %d-%d: every client's answers right, the pool clean after each round"
                  % (label, since, rnd), flush=True)
            since = rnd + 1
    print("ok - %s: %d rounds, %d clients, %d left with an answer owed, ways out %s" % (
        label, a.rounds, clients, mids, " ".join("%s %d" % kv for kv in sorted(ways.items()))), flush=True)
    print("# %s: %.1f s: %.1f s in the clients, %.1f s in the checks after each round" % (
        label, now() - start, t_clients, t_checks), flush=True)


if __name__ == "__main__":
    main()
