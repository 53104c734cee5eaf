"""Named prepared statements, message by message, as PostgreSQL's protocol
defines them. The same script runs through PgCrab and directly against
PostgreSQL: every step must give the expected answer through PgCrab, and
PostgreSQL's own answers must be those expectations (so they are not
guesses). Describe results are compared field by field with PostgreSQL's.
Prints "ok - ..." / "not ok - ...".
argv: pgcrab-port pg-port pg-user pg-password"""
import sys
from pgwire import Conn, parse, bind, describe, execute, close, msg, cstr, SYNC, FLUSH

pc_port, pg_port, pg_user, pg_password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
failed = 0


def report(ok, name, detail=""):
    global failed
    failed += not ok
    print(("ok - " if ok else "not ok - ") + name + (": " + detail if detail and not ok else ""))


def script(c, via):
    """Yields (step, expected, got). `via` is True through PgCrab."""
    c.send(parse("s1", "SELECT $1::int + 1"), describe("S", "s1"), SYNC)
    yield "Parse + Describe of a named statement", ["1", "t:23", "T:?column?/0/0/23/4/-1/0", "Z:I"], c.until_ready()
    c.send(bind("s1", [41]), execute(), SYNC)
    yield "Bind + Execute of it", ["2", "D:42", "C:SELECT 1", "Z:I"], c.until_ready()
    c.send(parse("s1", "SELECT 2"), SYNC)
    yield "a duplicate Parse name is 42P05", ["E:42P05", "Z:I"], c.until_ready()
    c.send(bind("s1", [1]), execute(), SYNC)
    yield "the first statement survives the failed duplicate", ["2", "D:2", "C:SELECT 1", "Z:I"], c.until_ready()
    c.send(close("S", "s1"), SYNC)
    yield "Close of a named statement", ["3", "Z:I"], c.until_ready()
    c.send(parse("s1", "SELECT 'new'"), bind("s1"), execute(), SYNC)
    yield ("Close then Parse of the same name with other SQL gives the new result",
           ["1", "2", "D:new", "C:SELECT 1", "Z:I"], c.until_ready())
    c.send(describe("S", "s1"), SYNC)
    yield "and Describe shows the new statement", ["t:", "T:?column?/0/0/25/-1/-1/0", "Z:I"], c.until_ready()
    c.send(bind("nope"), execute(), SYNC)
    yield "Bind of an unknown statement is 26000", ["E:26000", "Z:I"], c.until_ready()
    c.send(describe("S", "nope"), SYNC)
    yield "Describe of an unknown statement is 26000", ["E:26000", "Z:I"], c.until_ready()
    c.send(close("S", "never_made"), SYNC)
    yield "Close of an unknown statement is not an error", ["3", "Z:I"], c.until_ready()
    c.send(parse("d1", "SELECT 1"), parse("d1", "SELECT 2"), bind("d1"), execute(), SYNC)
    yield ("a duplicate Parse inside one pipeline is 42P05 and skips to Sync",
           ["1", "E:42P05", "Z:I"], c.until_ready())
    c.send(bind("d1"), execute(), SYNC)
    yield "and the first Parse of that pipeline stays prepared", ["2", "D:1", "C:SELECT 1", "Z:I"], c.until_ready()

    # a pipeline: ok group, failing group, ok group, each ending in Sync
    c.send(parse("a", "SELECT $1::int * 2"), bind("a", [5]), execute(), SYNC,
           bind("nope"), execute(), bind("a", [6]), execute(), SYNC,
           bind("a", [7]), execute(), SYNC)
    yield ("an error inside a pipeline skips to its Sync, the rest runs",
           ["1", "2", "D:10", "C:SELECT 1", "Z:I", "E:26000", "Z:I", "2", "D:14", "C:SELECT 1", "Z:I"],
           c.until_ready(3))
    # an explicit transaction: a failing Bind aborts it, as PostgreSQL does
    c.send(msg(b"Q", cstr("BEGIN")))
    c.until_ready()
    c.send(bind("nope"), execute(), SYNC)
    r = c.until_ready()
    c.send(bind("a", [1]), execute(), SYNC)
    r += c.until_ready()
    c.send(msg(b"Q", cstr("ROLLBACK")))
    r += c.until_ready()
    yield ("26000 inside BEGIN aborts the transaction (25P02) until ROLLBACK",
           ["E:26000", "Z:E", "E:25P02", "Z:E", "C:ROLLBACK", "Z:I"], r)

    # a failed Parse leaves no statement behind
    c.send(parse("bad", "SELEC 1"), SYNC)
    first = c.until_ready()
    if via and first == ["1", "Z:I"]:
        # answered without a server (none was free): checked at first use
        c.send(bind("bad"), execute(), SYNC)
        yield "a syntax error deferred to first use is 42601", ["E:42601", "Z:I"], c.until_ready()
    else:
        yield "a Parse with a syntax error is 42601", ["E:42601", "Z:I"], first
    c.send(bind("bad"), execute(), SYNC)
    yield "and the name does not exist afterwards", ["E:26000", "Z:I"], c.until_ready()
    # Flush without Sync: replies arrive, the server connection stays
    c.send(parse("f", "SELECT 3"), bind("f"), execute(), FLUSH)
    got = [c.read()[0] for _ in range(4)]
    yield "Flush without Sync delivers the replies", ["1", "2", "D", "C"], got
    c.send(SYNC)
    yield "and the Sync that follows ends it", ["Z:I"], c.until_ready()

    # two statements alternated across transactions: with
    # max_prepared_statements = 1 every use evicts the other one
    c.send(parse("even", "SELECT $1::int * 2 AS even"), SYNC,
           parse("odd", "SELECT $1::int * 2 + 1 AS odd"), SYNC)
    yield "two more statements prepared", ["1", "Z:I", "1", "Z:I"], c.until_ready(2)
    bad = []
    for i in range(20):
        name = "even" if i % 2 == 0 else "odd"
        want = ["2", "D:%d" % (2 * i + (i % 2)), "C:SELECT 1", "Z:I"]
        c.send(bind(name, [i]), execute(), SYNC)
        r = c.until_ready()
        if r != want:
            bad.append((name, i, r))
    yield "two statements alternated over 20 transactions", [], bad
    c.send(describe("S", "even"), SYNC, describe("S", "odd"), SYNC)
    yield ("Describe of each after the other was used",
           ["t:23", "T:even/0/0/23/4/-1/0", "Z:I", "t:23", "T:odd/0/0/23/4/-1/0", "Z:I"], c.until_ready(2))
    c.send(bind("even", [1]), execute(), bind("odd", [2]), execute(), bind("even", [3]), execute(),
           bind("odd", [4]), execute(), SYNC)
    yield ("both alternated inside one pipeline",
           ["2", "D:2", "C:SELECT 1", "2", "D:5", "C:SELECT 1", "2", "D:6", "C:SELECT 1",
            "2", "D:9", "C:SELECT 1", "Z:I"], c.until_ready())
    c.send(msg(b"Q", cstr("BEGIN")))
    r = c.until_ready()
    for i in range(4):
        c.send(bind("odd" if i % 2 else "even", [10 + i]), execute(), SYNC)
        r += c.until_ready()
    c.send(msg(b"Q", cstr("COMMIT")))
    r += c.until_ready()
    yield ("both alternated inside BEGIN ... COMMIT",
           ["C:BEGIN", "Z:T", "2", "D:20", "C:SELECT 1", "Z:T", "2", "D:23", "C:SELECT 1", "Z:T",
            "2", "D:24", "C:SELECT 1", "Z:T", "2", "D:27", "C:SELECT 1", "Z:T", "C:COMMIT", "Z:I"], r)
    c.send(close("S", "even"), SYNC, bind("odd", [0]), execute(), SYNC, bind("even", [0]), execute(), SYNC)
    yield ("Close of one leaves the other usable and the closed one unknown",
           ["3", "Z:I", "2", "D:1", "C:SELECT 1", "Z:I", "E:26000", "Z:I"], c.until_ready(3))


def run(port, via, **login):
    c = Conn(port, **login)
    try:
        return list(script(c, via))
    finally:
        c.close()


def describe_table(port, **login):
    """Describe of a statement over a real table, as raw tokens."""
    c = Conn(port, **login)
    c.send(parse("tbl", "SELECT aid, bid, abalance, filler, $2::numeric(10,2) AS amount "
                        "FROM pgbench_accounts WHERE aid = $1"), describe("S", "tbl"), SYNC)
    r = c.until_ready()
    c.send(bind("tbl", [1, "2.5"]), describe("P", ""), execute(), SYNC)
    r += c.until_ready()
    c.close()
    return [x for x in r if not x.startswith("D:")]


direct_login = dict(user=pg_user, password=pg_password)
via = run(pc_port, True)
for step, want, got in via:
    report(want == got, step, "expected %r, got %r" % (want, got))
direct = run(pg_port, False, **direct_login)
wrong = [(step, want, got) for step, want, got in direct if want != got]
report(not wrong and len(direct) == len(via),
       "PostgreSQL itself gives every expected answer (%d steps)" % len(direct), repr(wrong))
a, b = describe_table(pc_port), describe_table(pg_port, **direct_login)
report(a == b and "t:23,1700" in a,
       "Describe of a statement and a portal over pgbench_accounts: parameter types and row description equal PostgreSQL's",
       "through pgcrab %r, directly %r" % (a, b))
sys.exit(1 if failed else 0)
