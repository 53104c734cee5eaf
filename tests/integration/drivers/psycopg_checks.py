"""psycopg 3: server-side prepared statements and pipeline mode, each
compared with the same script run directly against PostgreSQL.
argv: pgcrab-dsn direct-dsn"""
import sys

import psycopg

via, direct = sys.argv[1], sys.argv[2]


def prepared(dsn):
    with psycopg.connect(dsn, prepare_threshold=0, autocommit=True) as c:
        out = []
        for i in range(30):
            out.append(c.execute("SELECT %s::int + %s::int", (i, i)).fetchone()[0])
        out.append(c.execute("SELECT count(*) FROM generate_series(1, %s)", (7,)).fetchone()[0])
        with c.transaction():
            out.append(c.execute("SELECT %s::text || 'x'", ("a",)).fetchone()[0])
        return out


def pipeline_with_error(dsn):
    """Three statements in a pipeline, the second failing: what succeeded,
    what error surfaced, and what the table holds afterwards."""
    with psycopg.connect(dsn) as c:
        c.execute("DROP TABLE IF EXISTS t_pipe_%s" % TAG)
        c.execute("CREATE TABLE t_pipe_%s (a int)" % TAG)
        c.commit()
        result = []
        try:
            with c.pipeline():
                c.execute("INSERT INTO t_pipe_%s VALUES (1)" % TAG)
                c.execute("SELECT 1 / %s::int", (0,))
                c.execute("INSERT INTO t_pipe_%s VALUES (3)" % TAG)
        except psycopg.Error as e:
            result.append(("error", type(e).__name__, e.sqlstate))
        c.rollback()
        with c.pipeline():
            cur1 = c.execute("SELECT count(*) FROM t_pipe_%s" % TAG)
            cur2 = c.execute("SELECT %s::int * 3", (5,))
        result.append(("after", cur1.fetchone()[0], cur2.fetchone()[0]))
        c.execute("INSERT INTO t_pipe_%s VALUES (4)" % TAG)
        c.commit()
        result.append(("committed", c.execute("SELECT array_agg(a) FROM t_pipe_%s" % TAG).fetchone()[0]))
        return result


failed = 0


def compare(name, a, b):
    global failed
    if a == b:
        print("ok - psycopg: %s (same as PostgreSQL: %r)" % (name, a))
    else:
        failed += 1
        print("not ok - psycopg: %s: through pgcrab %r, directly %r" % (name, a, b))


compare("prepare_threshold=0 statements", prepared(via), prepared(direct))
TAG = "via"
a = pipeline_with_error(via)
TAG = "direct"
b = pipeline_with_error(direct)
compare("pipeline with an error in the middle", a, b)
sys.exit(1 if failed else 0)
