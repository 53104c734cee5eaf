"""psycopg 3: server-side prepared statements and pipeline mode, each
compared with the same script run directly against PostgreSQL.
argv: pgcrab-dsn direct-dsn"""
import sys
import threading

import psycopg

via, direct = sys.argv[1], sys.argv[2]


def prepared(dsn, tag):
    with psycopg.connect(dsn, prepare_threshold=0, autocommit=True) as c:
        out = []
        for i in range(30):
            out.append(c.execute("SELECT %s::int + %s::int", (i, i)).fetchone()[0])
        out.append(c.execute("SELECT count(*) FROM generate_series(1, %s)", (7,)).fetchone()[0])
        with c.transaction():
            out.append(c.execute("SELECT %s::text || 'x'", ("a",)).fetchone()[0])
        # the statement itself was prepared on the server connection running it
        out.append(c.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                             ("%pg_prepared_statements%",)).fetchone()[0] > 0)
        return out


def colliding_names(dsn, tag):
    """psycopg names its statements _pg3_0, _pg3_1, ... per connection, so
    concurrent connections preparing different SQL in a different order use
    the same names for different statements."""
    queries = [("SELECT %s::int + 1", lambda n: n + 1), ("SELECT %s::int * 10", lambda n: n * 10),
               ("SELECT %s::int - 7", lambda n: n - 7), ("SELECT length(%s::text)", lambda n: len(str(n))),
               ("SELECT %s::int %% 3", lambda n: n % 3)]
    errors = []

    def one(t):
        try:
            with psycopg.connect(dsn, prepare_threshold=0, autocommit=True) as c:
                order = queries[t % 5:] + queries[:t % 5]
                for r in range(40):
                    sql, want = order[(r * (t + 1)) % 5]
                    got = c.execute(sql, (r * 7 + t,)).fetchone()[0]
                    if got != want(r * 7 + t):
                        errors.append((t, sql, r, got))
                        return
        except Exception as e:  # noqa: BLE001
            errors.append((t, type(e).__name__, str(e)))

    threads = [threading.Thread(target=one, args=(t,)) for t in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors[:3]


def outcome(cur):
    try:
        return ("rows", cur.fetchall())
    except psycopg.Error as e:
        return (type(e).__name__, e.sqlstate)


def outcomes(curs):
    """Each statement's outcome, with the run of unusable cursors after the
    error folded into one: how many execute() calls psycopg accepts before
    it raises depends on when the error arrives, directly or not."""
    out = []
    for cur in curs:
        o = outcome(cur)
        if not (out and o == out[-1] and o[0] == "ProgrammingError"):
            out.append(o)
    return out


def pipeline_several(dsn, tag):
    with psycopg.connect(dsn, autocommit=True) as c:
        with c.pipeline():
            curs = [c.execute("SELECT %s::int * 3", (5,)),
                    c.execute("SELECT generate_series(1, %s)", (3,)),
                    c.execute("SELECT %s::text", ("pipelined",)),
                    c.execute("SHOW TimeZone")]
        return [outcome(x) for x in curs]


def pipeline_with_error(dsn, tag):
    """Three statements in a pipeline inside a transaction, the second
    failing: what succeeded, what error surfaced, and what the table holds
    afterwards."""
    t = "t_pipe_" + tag
    with psycopg.connect(dsn) as c:
        c.execute("DROP TABLE IF EXISTS %s" % t)
        c.execute("CREATE TABLE %s (a int)" % t)
        c.commit()
        result = []
        curs = []
        try:
            with c.pipeline():
                curs.append(c.execute("INSERT INTO %s VALUES (1) RETURNING a" % t))
                curs.append(c.execute("SELECT 1 / %s::int", (0,)))
                curs.append(c.execute("INSERT INTO %s VALUES (3)" % t))
        except psycopg.Error as e:
            result.append(("error", type(e).__name__, e.sqlstate))
        result.append(("statements", outcomes(curs)))
        result.append(("status", c.info.transaction_status.name))
        c.rollback()
        with c.pipeline():
            cur1 = c.execute("SELECT count(*) FROM %s" % t)
            cur2 = c.execute("SELECT %s::int * 3", (5,))
        result.append(("after", cur1.fetchone()[0], cur2.fetchone()[0]))
        c.execute("INSERT INTO %s VALUES (4)" % t)
        c.commit()
        result.append(("committed", c.execute("SELECT array_agg(a) FROM %s" % t).fetchone()[0]))
        c.execute("DROP TABLE %s" % t)
        c.commit()
        return result


def pipeline_autocommit_syncs(dsn, tag):
    """Autocommit pipeline of three Sync-separated groups, the middle one
    failing: the first group commits, the failing group's earlier insert is
    rolled back with it, and the exception stops the rest."""
    t = "t_pipe_sync_" + tag
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS %s" % t)
        c.execute("CREATE TABLE %s (a int)" % t)
        curs, res = [], []
        try:
            with c.pipeline() as p:
                curs.append(c.execute("INSERT INTO %s VALUES (1) RETURNING a" % t))
                p.sync()
                curs.append(c.execute("INSERT INTO %s VALUES (2) RETURNING a" % t))
                curs.append(c.execute("SELECT 1 / %s::int", (0,)))
                curs.append(c.execute("INSERT INTO %s VALUES (3) RETURNING a" % t))
                p.sync()
                curs.append(c.execute("INSERT INTO %s VALUES (4) RETURNING a" % t))
        except psycopg.Error as e:
            res.append(("raised", type(e).__name__, e.sqlstate))
        res.append(outcomes(curs))
        res.append(c.execute("SELECT array_agg(a ORDER BY a) FROM %s" % t).fetchone()[0])
        res.append(c.execute("SELECT 'usable'").fetchone()[0])
        c.execute("DROP TABLE %s" % t)
        return res


failed = 0


def compare(name, fn, expect=None):
    global failed
    try:
        a = fn(via, "via")
    except Exception as e:  # noqa: BLE001
        a = ("exception", type(e).__name__, str(e))
    b = fn(direct, "direct")
    if a == b and (expect is None or expect(a)):
        print("ok - psycopg: %s (same as PostgreSQL: %r)" % (name, a))
    else:
        failed += 1
        print("not ok - psycopg: %s: through pgcrab %r, directly %r" % (name, a, b))


compare("prepare_threshold=0 statements", prepared, lambda r: r[-1] is True and r[30] == 7)
compare("10 connections preparing different SQL under the same _pg3_N names", colliding_names,
        lambda r: r == [])
compare("pipeline of several queries", pipeline_several, lambda r: r[0] == ("rows", [(15,)]))
compare("pipeline with an error in the middle of a transaction", pipeline_with_error,
        lambda r: r[0] == ("error", "DivisionByZero", "22012"))
compare("autocommit pipeline, the middle of three Sync groups failing", pipeline_autocommit_syncs,
        lambda r: r[0] == ("raised", "DivisionByZero", "22012") and r[2] == [1])
sys.exit(1 if failed else 0)
