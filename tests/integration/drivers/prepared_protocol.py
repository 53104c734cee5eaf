"""Named prepared statements through PgCrab, message by message, as
PostgreSQL's protocol defines them. Prints "ok - ..." / "not ok - ...".
argv: pgcrab port."""
import sys
from pgwire import Conn, parse, bind, describe, execute, close, SYNC, FLUSH

port = int(sys.argv[1])
failed = 0


def expect(name, want, got):
    global failed
    if want == got:
        print("ok - " + name)
    else:
        failed += 1
        print("not ok - %s: expected %s, got %s" % (name, want, got))


c = Conn(port)
c.send(parse("s1", "SELECT $1::int + 1"), describe("S", "s1"), SYNC)
expect("Parse + Describe of a named statement", ["1", "t", "T", "Z:I"], c.until_ready())
c.send(bind("s1", [41]), execute(), SYNC)
expect("Bind + Execute of it", ["2", "D:42", "C:SELECT 1", "Z:I"], c.until_ready())
c.send(parse("s1", "SELECT 2"), SYNC)
expect("a duplicate name is 42P05", ["E:42P05", "Z:I"], c.until_ready())
c.send(bind("s1", [1]), execute(), SYNC)
expect("the first statement survives the failed duplicate", ["2", "D:2", "C:SELECT 1", "Z:I"], c.until_ready())
c.send(close("S", "s1"), SYNC)
expect("Close of a named statement", ["3", "Z:I"], c.until_ready())
c.send(parse("s1", "SELECT 'new'"), bind("s1"), execute(), SYNC)
expect("the name prepared again with other SQL gives the new result",
       ["1", "2", "D:new", "C:SELECT 1", "Z:I"], c.until_ready())
c.send(bind("nope"), execute(), SYNC)
expect("Bind of an unknown statement is 26000", ["E:26000", "Z:I"], c.until_ready())
c.send(describe("S", "nope"), SYNC)
expect("Describe of an unknown statement is 26000", ["E:26000", "Z:I"], c.until_ready())
c.send(close("S", "never_made"), SYNC)
expect("Close of an unknown statement is not an error", ["3", "Z:I"], c.until_ready())

# a pipeline: ok group, failing group, ok group, each ending in Sync
c.send(parse("a", "SELECT $1::int * 2"), bind("a", [5]), execute(), SYNC,
       bind("nope"), execute(), bind("a", [6]), execute(), SYNC,
       bind("a", [7]), execute(), SYNC)
expect("an error inside a pipeline skips to its Sync, the rest runs",
       ["1", "2", "D:10", "C:SELECT 1", "Z:I", "E:26000", "Z:I", "2", "D:14", "C:SELECT 1", "Z:I"],
       c.until_ready(3))
# a failed Parse leaves no statement behind
c.send(parse("bad", "SELEC 1"), SYNC)
first = c.until_ready()
if first == ["1", "Z:I"]:
    # answered without a server (none was free): checked at first use
    c.send(bind("bad"), execute(), SYNC)
    expect("a syntax error deferred to first use is 42601", ["E:42601", "Z:I"], c.until_ready())
else:
    expect("a Parse with a syntax error is 42601", ["E:42601", "Z:I"], first)
c.send(bind("bad"), execute(), SYNC)
expect("and the name does not exist afterwards", ["E:26000", "Z:I"], c.until_ready())
# Flush without Sync: replies arrive, the server connection stays
c.send(parse("f", "SELECT 3"), bind("f"), execute(), FLUSH)
got = [c.read()[0] for _ in range(4)]
expect("Flush without Sync delivers the replies", ["1", "2", "D", "C"], got)
c.send(SYNC)
expect("and the Sync that follows ends it", ["Z:I"], c.until_ready())
# transactions across statements and server connections
c.send(parse("ins", "SELECT $1::text"), SYNC)
c.until_ready()
for i in range(20):
    c.send(bind("ins", ["v%d" % i]), execute(), SYNC)
    r = c.until_ready()
    if r != ["2", "D:v%d" % i, "C:SELECT 1", "Z:I"]:
        expect("statement reused across 20 transactions", "D:v%d" % i, r)
        break
else:
    expect("statement reused across 20 transactions", 1, 1)
c.close()
sys.exit(1 if failed else 0)
