"""Two clients with different startup parameters interleave transactions;
the same script runs through PgCrab (over one shared server connection)
and directly against PostgreSQL (two backends), and every value each
client sees must be PostgreSQL's. Through PgCrab the clients must also
have shared one backend. Prints "ok - ..." / "not ok - ...".
argv: pgcrab-port pg-port pg-user pg-password"""
import sys

from pgwire import Conn, msg, cstr

pc_port, pg_port, pg_user, pg_password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
SETTINGS = ("application_name", "TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits",
            "client_encoding")
SHOW_ALL = "SELECT " + ", ".join("current_setting('%s')" % s for s in SETTINGS) + ", pg_backend_pid()"
REPORTED = ("application_name", "client_encoding", "DateStyle", "IntervalStyle", "TimeZone")


def script(port, login):
    """Yields (step, value seen); collects backend pids in pids."""
    pids = set()
    a = Conn(port, application_name="alpha", TimeZone="Asia/Tokyo", search_path="crab_a, public",
             extra_float_digits="1", **login)
    b = Conn(port, application_name="beta", TimeZone="America/New_York", DateStyle="SQL, DMY",
             IntervalStyle="postgres_verbose", client_encoding="LATIN1", **login)

    def q(c, sql):
        c.send(msg(b"Q", cstr(sql)))
        return [x for x in c.until_ready() if not x.startswith("T")]

    def settings(c):
        vals = q(c, SHOW_ALL)[0][2:].split(",")
        pids.add(vals[-1])
        # a DateStyle such as "SQL, DMY" holds a comma: rejoin from the end
        return ",".join(vals[:-1])

    for rnd in range(3):
        yield "round %d: alpha's startup parameters" % rnd, settings(a)
        yield "round %d: beta's startup parameters" % rnd, settings(b)
    # a startup search_path is a list, not one quoted name: public is in it
    yield "alpha's startup search_path 'crab_a, public'", q(a, "SHOW search_path")
    yield "and it finds schema public", q(a, "SELECT current_schemas(false)")
    yield "beta's default search_path", q(b, "SHOW search_path")
    yield "ParameterStatus alpha was given", {k: a.params.get(k) for k in REPORTED}
    yield "ParameterStatus beta was given", {k: b.params.get(k) for k in REPORTED}

    q(a, "SET DateStyle = 'German'")
    yield "alpha's SET DateStyle holds in its next transaction", q(a, "SHOW DateStyle")
    yield "and does not leak into beta's", q(b, "SHOW DateStyle")
    yield "alpha still has it after beta ran", q(a, "SHOW DateStyle")
    yield "alpha's dates in German style", q(a, "SELECT date '2024-03-01'")
    yield "beta's dates in SQL, DMY style", q(b, "SELECT date '2024-03-01'")

    yield "SET TimeZone inside a rolled-back transaction", \
        q(a, "BEGIN; SET TimeZone = 'UTC'; SHOW TimeZone") + q(a, "ROLLBACK")
    yield "the rollback restores alpha's TimeZone", q(b, "SHOW TimeZone") + q(a, "SHOW TimeZone")
    yield "SET LOCAL TimeZone lasts one transaction", \
        q(a, "BEGIN; SET LOCAL TimeZone = 'Europe/Paris'; SHOW TimeZone; COMMIT") + q(a, "SHOW TimeZone")
    q(a, "SET TimeZone = 'Australia/Sydney'")
    yield "a SET TimeZone follows alpha, not beta", q(b, "SHOW TimeZone") + q(a, "SHOW TimeZone")
    yield "a timestamptz in each client's zone", \
        q(a, "SELECT timestamptz '2024-01-01 00:00:00+00'") + q(b, "SELECT timestamptz '2024-01-01 00:00:00+00'")
    q(a, "RESET TimeZone")
    yield "RESET TimeZone returns alpha to its startup value", q(b, "SHOW TimeZone") + q(a, "SHOW TimeZone")
    q(b, "SET application_name = 'beta2'; SET IntervalStyle = 'iso_8601'")
    yield "beta's SET application_name and IntervalStyle", \
        q(a, "SELECT current_setting('application_name')") + q(b, "SELECT current_setting('application_name')") \
        + q(b, "SELECT interval '1 day 2 hours'") + q(a, "SELECT interval '1 day 2 hours'")
    q(a, "RESET ALL")
    yield "RESET ALL returns alpha to its startup parameters", settings(a) + "," + q(a, "SHOW search_path")[0]
    yield "and leaves beta's alone", settings(b)
    yield "client_encoding LATIN1 for beta, UTF8 for alpha", q(b, "SELECT chr(233)") + q(a, "SELECT chr(233)")
    q(b, "SET client_encoding = 'UTF8'")
    yield "beta's SET client_encoding follows it", q(a, "SELECT chr(233)") + q(b, "SELECT chr(233)")
    yield "final ParameterStatus alpha holds", {k: a.params.get(k) for k in REPORTED}
    yield "final ParameterStatus beta holds", {k: b.params.get(k) for k in REPORTED}
    yield "pids", pids
    a.close()
    b.close()


direct = list(script(pg_port, dict(user=pg_user, password=pg_password)))
via = list(script(pc_port, {}))

failed = 0
for (step, want), (_, got) in zip(direct[:-1], via[:-1]):
    ok = want == got
    failed += not ok
    print(("ok - %s: %r" % (step, got)) if ok else ("not ok - %s: PostgreSQL %r, through pgcrab %r" % (step, want, got)))
ok = len(via[-1][1]) == 1 and len(direct[-1][1]) == 2
failed += not ok
print(("ok" if ok else "not ok") + " - through pgcrab both clients shared one backend %r (directly: %d backends)"
      % (sorted(via[-1][1]), len(direct[-1][1])))
sys.exit(1 if failed else 0)
