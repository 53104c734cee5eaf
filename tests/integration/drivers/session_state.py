"""Session state under transaction pooling: what a client sets (startup
parameters, SET, temp tables, LISTEN, PREPARE, advisory locks, cursors,
LOAD) holds for that client on every transaction and never shows to
another client sharing its server connection. Expected values are
PostgreSQL's own: run with PGCRAB_TEST_DIRECT=1 the same checks go to
PostgreSQL directly (each client its own backend) and must all pass.

argv: phase port user password direct pg-port pg-user pg-password
phase: pool1 (max_connections = 1), pool2 (max_connections = 2), session
(pool_mode = session, max_connections = 1), error (pin_session_state =
error), off (pin_session_state = off). Prints "ok - ..." / "not ok - ...",
then "# done PHASE"."""
import sys
import time

from pgwire import bind, cstr, execute, msg, parse, SYNC
from session_lib import Client, Report, login_error

phase, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
direct = sys.argv[5] == "1"
pg_port, pg_user, pg_password = int(sys.argv[6]), sys.argv[7], sys.argv[8]
R = Report(phase + ": ")
DIRECT_SKIP = "directly every client has a backend of its own: nothing is shared, nothing waits"
WAIT = 1.0  # how long a client must stay unanswered to count as waiting


def client(**params):
    return Client(port, user, password, **params)


def admin(*sqls):
    """Setup straight on PostgreSQL as the pool user."""
    c = Client(pg_port, pg_user, pg_password)
    for s in sqls:
        out = c.q(s)
        if any(x.startswith("E:") for x in out):
            raise RuntimeError("setup %r: %s" % (s, c.last_error))
    c.close()


def group(name, fn):
    """A group of checks; an exception (a hang through PgCrab, say) fails
    the group and the script goes on with the next."""
    R.run(name + " (the group ran to its end)", fn)


SETTINGS = ("statement_timeout", "default_transaction_isolation", "work_mem", "search_path",
            "idle_in_transaction_session_timeout")


def readout(c, names=SETTINGS):
    out = c.q("SELECT " + ", ".join("current_setting('%s')" % n for n in names))
    rows = [x[2:] for x in out if x.startswith("D:")]
    if len(rows) != 1:
        return out
    # search_path holds commas: split on the known count from both ends
    vals = rows[0].split(",")
    i = names.index("search_path") if "search_path" in names else None
    if i is None:
        return dict(zip(names, vals))
    extra = len(vals) - len(names)
    vals = vals[:i] + [",".join(vals[i:i + extra + 1])] + vals[i + extra + 1:]
    return dict(zip(names, vals))


DEFAULTS = {"statement_timeout": "0", "default_transaction_isolation": "read committed",
            "work_mem": "4MB", "search_path": '"$user", public', "idle_in_transaction_session_timeout": "0"}


def setup_schemas():
    admin("DROP SCHEMA IF EXISTS crab_a CASCADE", "DROP SCHEMA IF EXISTS crab_b CASCADE",
          "CREATE SCHEMA crab_a", "CREATE SCHEMA crab_b",
          "CREATE TABLE crab_a.where_am_i AS SELECT 'crab_a'::text AS s",
          "CREATE TABLE crab_b.where_am_i AS SELECT 'crab_b'::text AS s",
          "DROP TABLE IF EXISTS public.where_am_i",
          "CREATE TABLE public.where_am_i AS SELECT 'public'::text AS s",
          "DROP TABLE IF EXISTS crab_rw", "CREATE TABLE crab_rw (a int)",
          "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crab_ss_role') "
          "THEN CREATE ROLE crab_ss_role; CREATE ROLE crab_ss_auth; END IF; END$$",
          "GRANT USAGE ON SCHEMA crab_a, crab_b TO crab_ss_role, crab_ss_auth",
          "GRANT SELECT ON crab_a.where_am_i, crab_b.where_am_i, public.where_am_i "
          "TO crab_ss_role, crab_ss_auth")


# 1. Startup parameters ------------------------------------------------------
def startup_parameters():
    a = client(options=r"-c statement_timeout=900 -c default_transaction_isolation=serializable "
                       r"--work_mem=5MB -c search_path=crab_a,\ public",
               idle_in_transaction_session_timeout="54321", application_name="ss_a")
    b = client(statement_timeout="7000", search_path="crab_b", application_name="ss_b")
    n = client()
    p = client(options="-c crab.flag=on")
    want_a = {"statement_timeout": "900ms", "default_transaction_isolation": "serializable",
              "work_mem": "5MB", "search_path": "crab_a, public", "idle_in_transaction_session_timeout": "54321ms"}
    want_b = dict(DEFAULTS, statement_timeout="7s", search_path="crab_b")
    for rnd in range(3):
        R.eq("round %d: A's options (-c, --name=value, an escaped space) and startup parameters" % rnd,
             want_a, readout(a))
        R.eq("round %d: B's startup statement_timeout and search_path, defaults otherwise" % rnd, want_b, readout(b))
        R.eq("round %d: a client without startup parameters sees the defaults" % rnd, DEFAULTS, readout(n))
        R.eq("round %d: A's transactions are serializable and find crab_a first" % rnd,
             ["C:BEGIN", "D:serializable", "C:SHOW", "D:crab_a", "C:SELECT 1", "C:COMMIT", "Z:I"],
             a.q("BEGIN; SHOW transaction_isolation; SELECT s FROM where_am_i; COMMIT"))
        R.eq("round %d: B's search_path finds crab_b" % rnd, "crab_b", b.v("SELECT s FROM where_am_i"))
        R.eq("round %d: the default client finds public and reads committed" % rnd,
             ["C:BEGIN", "D:read committed", "C:SHOW", "D:public", "C:SELECT 1", "C:COMMIT", "Z:I"],
             n.q("BEGIN; SHOW transaction_isolation; SELECT s FROM where_am_i; COMMIT"))
        R.eq("round %d: a placeholder from options (-c crab.flag=on)" % rnd, "on",
             p.v("SELECT current_setting('crab.flag')"))
        got = n.v("SELECT current_setting('crab.flag', true)")
        R.ok("round %d: and not for the others" % rnd, got in ("NULL", ""), "got %r" % got)
    R.eq("A's statement_timeout from options cancels A's slow query", "E:57014", a.v("SELECT pg_sleep(1.5)"))
    R.eq("the same query is not cancelled for B (7s)", "", b.v("SELECT pg_sleep(1.5)"))
    for c in (a, b, n, p):
        c.close()

    # what PostgreSQL rejects is rejected at login, as PostgreSQL does
    for what, params in (("an unknown startup parameter", dict(crab_no_such_param="1")),
                         ("a bad value of a startup parameter", dict(statement_timeout="soon")),
                         ("a bad value in options -c", dict(options="-c work_mem=lots")),
                         ("an unknown name in options -c", dict(options="-c crab_no_such_param=1")),
                         ("a bad value in options --name=value", dict(options="--default_transaction_isolation=sometimes")),
                         ("a bad enum startup parameter", dict(default_transaction_isolation="sometimes"))):
        want = login_error(pg_port, pg_user, pg_password, **params)
        got = login_error(port, user, password, **params)
        pick = (lambda f: None if f is None else (f.get("V", f.get("S")), f.get("C"), f.get("M"), f.get("late")))
        R.ok("%s is refused at login: %s" % (what, pick(want)), want is not None and pick(want) == pick(got),
             "PostgreSQL says %r, through this port %r" % (pick(want), pick(got)))
    # the pool still serves afterwards
    c = client()
    R.eq("a client logs in after the refused ones", "1", c.v("SELECT 1"))
    c.close()


# 2. No leaks -----------------------------------------------------------------
def no_leaks():
    a = client(options="-c work_mem=5MB")
    b = client()
    a.q("SET default_transaction_read_only = on")
    R.eq("B after A's SET default_transaction_read_only: off", "off", b.v("SHOW default_transaction_read_only"))
    R.eq("and B can write", "C:INSERT 0 1", [x for x in b.q("INSERT INTO crab_rw VALUES (1)") if x[0] in "CE"][0])
    R.eq("A still read only after B's write", "on", a.v("SHOW default_transaction_read_only"))
    R.eq("and A's write is refused (25006)", "E:25006", a.v("INSERT INTO crab_rw VALUES (2)"))
    a.q("SET default_transaction_read_only = off")

    # a custom setting, as row-level security policies read a tenant from one
    a.q("SET crab.tenant = '42'")
    R.ok("B does not see A's SET crab.tenant (NULL or empty)",
         b.v("SELECT coalesce(current_setting('crab.tenant', true), '')") == "",
         b.v("SELECT current_setting('crab.tenant', true)"))
    R.eq("A keeps crab.tenant 42 after B ran", "42", a.v("SELECT current_setting('crab.tenant', true)"))
    a.q("SELECT set_config('crab.tenant', '7', false)")
    R.ok("B does not see A's set_config of crab.tenant either",
         b.v("SELECT coalesce(current_setting('crab.tenant', true), '')") == "",
         b.v("SELECT current_setting('crab.tenant', true)"))
    R.eq("A keeps crab.tenant 7 after B ran", "7", a.v("SELECT current_setting('crab.tenant', true)"))
    a.q("RESET crab.tenant")

    a.q("SET statement_timeout = '3s'")
    R.eq("B after A's SET statement_timeout: 0", "0", b.v("SHOW statement_timeout"))
    R.eq("A keeps 3s", "3s", a.v("SHOW statement_timeout"))

    a.q("SET work_mem = '9MB'")
    R.eq("B after A's SET work_mem: 4MB", "4MB", b.v("SHOW work_mem"))
    R.eq("A keeps 9MB", "9MB", a.v("SHOW work_mem"))

    a.q("SET ROLE crab_ss_role")
    R.eq("B after A's SET ROLE: current_user is its session user", "t", b.v("SELECT current_user = session_user"))
    R.eq("A keeps its role", "crab_ss_role", a.v("SELECT current_user"))
    R.eq("B still itself", pg_user, b.v("SELECT current_user"))
    a.q("RESET ROLE")
    R.eq("A's RESET ROLE", pg_user, a.v("SELECT current_user"))

    a.q("SET SESSION AUTHORIZATION crab_ss_auth")
    R.eq("B after A's SET SESSION AUTHORIZATION", pg_user + "," + pg_user,
         b.v("SELECT session_user || ',' || current_user"))
    R.eq("A keeps its session authorization", "crab_ss_auth,crab_ss_auth",
         a.v("SELECT session_user || ',' || current_user"))
    R.eq("B may still do what the pool user may (CREATE ROLE needs it)", "C:CREATE ROLE",
         [x for x in b.q("CREATE ROLE crab_ss_probe") if x[0] in "CE"][0])
    b.q("DROP ROLE crab_ss_probe")
    R.eq("A may not (42501)", "E:42501", [x for x in a.q("CREATE ROLE crab_ss_probe2") if x[0] in "CE"][0])
    a.q("RESET SESSION AUTHORIZATION")
    R.eq("A's RESET SESSION AUTHORIZATION", pg_user, a.v("SELECT session_user"))

    a.q("SET search_path = crab_b, public")
    R.eq("B after A's SET search_path", '"$user", public', b.v("SHOW search_path"))
    R.eq("B's tables come from public", "public", b.v("SELECT s FROM where_am_i"))
    R.eq("A's come from crab_b", "crab_b", a.v("SELECT s FROM where_am_i"))
    R.eq("A keeps all its SETs after B's transactions",
         {"statement_timeout": "3s", "default_transaction_isolation": "read committed", "work_mem": "9MB",
          "search_path": "crab_b, public", "idle_in_transaction_session_timeout": "0"}, readout(a))
    R.eq("B has the defaults", DEFAULTS, readout(b))
    a.close()
    b.close()


# 3. PostgreSQL's rules ---------------------------------------------------------
def rules():
    a = client(options="-c work_mem=5MB", statement_timeout="7000", search_path="crab_a, public")
    b = client()
    start = {"statement_timeout": "7s", "default_transaction_isolation": "read committed", "work_mem": "5MB",
             "search_path": "crab_a, public", "idle_in_transaction_session_timeout": "0"}

    def after_b(sql="SHOW work_mem"):
        b.q("SELECT 1")
        return a.v(sql)

    a.q("BEGIN")
    a.q("SET work_mem = '11MB'")
    a.q("ROLLBACK")
    R.eq("SET in a rolled-back transaction is undone", "5MB", after_b())

    a.q("BEGIN")
    a.q("SET LOCAL work_mem = '12MB'")
    R.eq("SET LOCAL holds inside its transaction", "12MB", a.v("SHOW work_mem"))
    a.q("COMMIT")
    R.eq("and ends with it", "5MB", after_b())

    a.q("BEGIN")
    a.q("SAVEPOINT s")
    a.q("SET work_mem = '13MB'")
    a.q("ROLLBACK TO SAVEPOINT s")
    R.eq("SET in a savepoint rolled back is undone at once", "5MB", a.v("SHOW work_mem"))
    a.q("SET statement_timeout = '8s'")
    a.q("COMMIT")
    R.eq("a SET after the rollback to savepoint is kept", "8s,5MB",
         after_b("SELECT current_setting('statement_timeout') || ',' || current_setting('work_mem')"))

    a.q("BEGIN")
    a.q("SAVEPOINT s")
    a.q("SET work_mem = '14MB'")
    a.q("RELEASE SAVEPOINT s")
    a.q("COMMIT")
    R.eq("SET in a released savepoint is kept", "14MB", after_b())

    a.q("RESET work_mem")
    R.eq("RESET work_mem returns to A's options value", "5MB", after_b())
    a.q("RESET statement_timeout")
    R.eq("RESET statement_timeout returns to A's startup value", "7s", after_b("SHOW statement_timeout"))
    a.q("SET search_path = public")
    R.eq("SET search_path", "public", after_b("SELECT s FROM where_am_i"))
    a.q("RESET search_path")
    R.eq("RESET search_path returns to A's startup list", "crab_a, public", after_b("SHOW search_path"))
    R.eq("and it finds crab_a", "crab_a", a.v("SELECT s FROM where_am_i"))

    a.q("SET work_mem = '15MB'")
    a.q("SET work_mem TO DEFAULT")
    R.eq("SET work_mem TO DEFAULT is A's startup value", "5MB", after_b())

    a.q("SET work_mem = '16MB'; SET statement_timeout = '9s'; SET search_path = public; "
        "SET default_transaction_isolation = 'repeatable read'")
    R.eq("before RESET ALL", "16MB,9s,public,repeatable read",
         after_b("SELECT concat_ws(',', current_setting('work_mem'), current_setting('statement_timeout'), "
                 "current_setting('search_path'), current_setting('default_transaction_isolation'))"))
    a.q("RESET ALL")
    b.q("SELECT 1")
    R.eq("RESET ALL returns to every startup value", start, readout(a))

    a.q("SELECT set_config('work_mem', '17MB', false)")
    R.eq("set_config(..., false) holds", "17MB", after_b())
    a.q("BEGIN")
    a.q("SELECT set_config('work_mem', '18MB', true)")
    R.eq("set_config(..., true) inside the transaction", "18MB", a.v("SHOW work_mem"))
    a.q("COMMIT")
    R.eq("set_config(..., true) ends with the transaction", "17MB", after_b())
    a.q("BEGIN")
    a.q("SELECT set_config('work_mem', '19MB', false)")
    a.q("ROLLBACK")
    R.eq("set_config(..., false) in a rolled-back transaction is undone", "17MB", after_b())

    a.q("SET work_mem = '20MB'; SET statement_timeout = '10s'")
    R.eq("two SETs in one simple query", "20MB,10s",
         after_b("SELECT current_setting('work_mem') || ',' || current_setting('statement_timeout')"))
    R.eq("a multi-statement query that fails", "E:22012", a.v("SET work_mem = '21MB'; SELECT 1/0"))
    R.eq("undoes its SET (one implicit transaction)", "20MB", after_b())
    a.q("BEGIN; SET LOCAL work_mem = '22MB'; COMMIT")
    R.eq("BEGIN; SET LOCAL; COMMIT in one query", "20MB", after_b())
    a.q("BEGIN; SET work_mem = '23MB'; COMMIT")
    R.eq("BEGIN; SET; COMMIT in one query", "23MB", after_b())
    a.q("SET LOCAL work_mem = '24MB'")
    R.eq("SET LOCAL outside a transaction does nothing", "23MB", after_b())

    a.send(parse("", "SET work_mem = '25MB'"), bind(""), execute(), SYNC)
    a.until_ready()
    R.eq("SET through the extended protocol holds", "25MB", after_b())
    a.q("BEGIN")
    a.q("SET work_mem = '26MB'")
    a.q("SELECT 1/0")
    a.q("ROLLBACK")
    R.eq("SET in a failed transaction is undone", "25MB", after_b())
    a.send(parse("", "SELECT set_config('statement_timeout', '11s', false)"), bind(""), execute(), SYNC)
    a.until_ready()
    R.eq("set_config through the extended protocol holds", "11s", after_b("SHOW statement_timeout"))
    R.eq("B saw its defaults throughout", DEFAULTS, readout(b))
    a.close()
    b.close()


# 4. Pinning ------------------------------------------------------------------
PROBE = ("SELECT concat_ws(',', to_regclass('crab_tmp') IS NULL, "
         "(SELECT count(*) FROM pg_listening_channels()), "
         "(SELECT count(*) FROM pg_prepared_statements WHERE name = 'crab_p'), "
         "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), "
         "(SELECT count(*) FROM pg_cursors), "
         "current_setting('auto_explain.log_min_duration', true) IS NULL)")
CLEAN = "t,0,0,0,0,t"


def notifier(sql):
    """NOTIFY from a backend of its own, straight to PostgreSQL."""
    c = Client(pg_port, pg_user, pg_password)
    c.q(sql)
    c.close()


# (kind, create, [(later statement, expected reply) ...], end statement)
KINDS = [
    ("a temporary table", "CREATE TEMP TABLE crab_tmp (a int); INSERT INTO crab_tmp VALUES (1), (2)",
     [("SELECT count(*) FROM crab_tmp", "2"), ("BEGIN; SELECT count(*) FROM crab_tmp; COMMIT", "2")],
     "DISCARD TEMP"),
    ("LISTEN", "LISTEN crab_chan",
     [("SELECT count(*) FROM pg_listening_channels()", "1"), (None, "A:crab_chan:first"),
      ("BEGIN; SELECT count(*) FROM pg_listening_channels(); COMMIT", "1"), (None, "A:crab_chan:second")],
     "UNLISTEN *"),
    ("SQL PREPARE", "PREPARE crab_p(int) AS SELECT $1 * 3",
     [("EXECUTE crab_p(7)", "21"), ("BEGIN; EXECUTE crab_p(10); COMMIT", "30")], "DEALLOCATE ALL"),
    ("a session advisory lock", "SELECT pg_advisory_lock(4242)",
     [("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted", "1"),
      ("BEGIN; SELECT pg_advisory_lock(4242); SELECT pg_advisory_unlock(4242); COMMIT", "t")],
     "SELECT pg_advisory_unlock_all()"),
    ("a WITH HOLD cursor", "DECLARE crab_cur CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 10) g",
     [("FETCH 3 FROM crab_cur", "3"), ("BEGIN; FETCH 3 FROM crab_cur; COMMIT", "6")], "CLOSE ALL"),
]
# LOAD cannot be undone: only leaving ends it (last: a server that keeps the
# library would spoil every later probe)
LOAD_KIND = ("LOAD", "LOAD 'auto_explain'",
             [("SELECT current_setting('auto_explain.log_min_duration')", "-1"),
              ("BEGIN; SELECT current_setting('auto_explain.log_min_duration'); COMMIT", "-1")], None)


def later(a, sql, want, kind, i):
    if sql is None:
        # a notification from another backend, delivered with A's next query
        notifier("NOTIFY crab_chan, '%s'" % want.split(":")[-1])
        time.sleep(0.2)
        out = a.q("SELECT 1")
        R.ok("%s: A receives a NOTIFY in a later transaction (%s)" % (kind, want), want in out, "got %r" % out)
        return
    out = a.q(sql)
    rows = [x[2:] for x in out if x.startswith("D:")]
    R.ok("%s: A's state holds in later transaction %d" % (kind, i), rows and rows[-1] == want,
         "expected %r, got %r" % (want, out))


def b_waits(b, kind):
    b.send(msg(b"Q", cstr(PROBE)))
    waited = not b.readable_within(WAIT)
    if direct:
        R.skip("%s: B waits while A is pinned and idle" % kind, DIRECT_SKIP)
    else:
        R.ok("%s: B waits while A is pinned and idle" % kind, waited, "B was answered at once")


def pin_kind(kind, create, uses, end):
    """One kind of session state: A makes it, uses it in later transactions,
    B waits meanwhile, A ends it (or leaves), then B sees none of it."""
    a = client(options="-c work_mem=5MB")
    b = client()
    out = a.q(create)
    R.ok("%s: A's %s" % (kind, create), not any(x.startswith("E:") for x in out), "got %r" % out)
    for i, (sql, want) in enumerate(uses[:len(uses) // 2]):
        later(a, sql, want, kind, i + 1)
    b_waits(b, kind)
    for i, (sql, want) in enumerate(uses[len(uses) // 2:]):
        later(a, sql, want, kind, len(uses) // 2 + i + 1)
    if end is None:
        a.close()
        how = "A leaves"
    else:
        a.q(end)
        how = end
    R.eq("%s: after %s B gets the server and sees none of A's state" % (kind, how), CLEAN,
         [x[2:] for x in b.until_ready() if x.startswith("D:")][-1])
    if end is not None:
        R.eq("%s: then A and B alternate freely (A)" % kind, "5MB", a.v("SHOW work_mem"))
        R.eq("%s: then A and B alternate freely (B)" % kind, CLEAN, b.v(PROBE))
        a.close()
    b.close()


def pinning():
    for k in KINDS:
        pin_kind(*k)

    # DISCARD ALL ends all of it; A's startup values survive it, its SETs do not
    a = client(options="-c work_mem=5MB")
    b = client()
    a.q("SET work_mem = '9MB'")
    a.q("CREATE TEMP TABLE crab_tmp (a int)")
    a.q("LISTEN crab_chan")
    a.q("PREPARE crab_p AS SELECT 1")
    b_waits(b, "DISCARD ALL")
    a.q("DISCARD ALL")
    R.eq("DISCARD ALL: B then gets the server and sees none of A's state", CLEAN,
         [x[2:] for x in b.until_ready() if x.startswith("D:")][-1])
    R.eq("DISCARD ALL: A's work_mem is back to its options value", "5MB", a.v("SHOW work_mem"))
    a.close()
    b.close()

    # A leaves with everything held: B gets a clean server and can reuse the names
    a = client()
    b = client()
    for s in ("CREATE TEMP TABLE crab_tmp (a int)", "LISTEN crab_chan", "PREPARE crab_p AS SELECT 1",
              "SELECT pg_advisory_lock(4242)", "DECLARE crab_cur CURSOR WITH HOLD FOR SELECT 1"):
        a.q(s)
    b_waits(b, "A leaving with all of it")
    a.close()
    R.eq("after A leaves B sees none of its temp table, LISTEN, PREPARE, lock or cursor", CLEAN,
         [x[2:] for x in b.until_ready() if x.startswith("D:")][-1])
    R.eq("B creates its own temp table of the same name", "b",
         b.v("CREATE TEMP TABLE crab_tmp (b text); INSERT INTO crab_tmp VALUES ('b'); SELECT b FROM crab_tmp"))
    R.eq("B prepares its own crab_p", "2", b.v("PREPARE crab_p AS SELECT 2; EXECUTE crab_p"))
    R.eq("B takes the advisory lock A held", "t", b.v("SELECT pg_try_advisory_lock(4242)"))
    b.close()

    # past query_wait_timeout a waiting client is told so (PgCrab's 08006)
    a = client()
    b = client()
    a.q("CREATE TEMP TABLE crab_tmp (a int)")
    if direct:
        R.skip("B waiting past query_wait_timeout while A is pinned gets 08006", DIRECT_SKIP)
    else:
        t0 = time.monotonic()
        b.send(msg(b"Q", cstr("SELECT 1")))
        got = []
        try:
            while not got or not got[-1].startswith("Z:"):
                t, data = b.read()
                tok = b.token(t, data)
                if tok:
                    got.append(tok)
        except (OSError, EOFError) as e:
            got.append(type(e).__name__)
        R.ok("B waiting past query_wait_timeout while A is pinned gets 08006", "E:08006" in got,
             "got %r after %.1f s" % (got, time.monotonic() - t0))
    a.close()
    b.close()
    pin_kind(*LOAD_KIND)


# 5. Cached plan must not change result type ------------------------------------
def rows_of(out):
    return [x for x in out if x[0] in "DE"]


def extended(c, name, sql):
    c.send(parse(name, sql), bind(name), execute(), SYNC)
    return c.until_ready()


def cached_plan():
    admin("DROP TABLE IF EXISTS crab_plan", "CREATE TABLE crab_plan (a int)", "INSERT INTO crab_plan VALUES (1)")
    c1 = client()
    R.eq("a statement prepared through the protocol", ["D:1"], rows_of(extended(c1, "crab_s1", "SELECT * FROM crab_plan")))
    c1.close()
    c2 = client()
    c2.q("ALTER TABLE crab_plan ADD COLUMN b int DEFAULT 7")
    c2.close()
    c3 = client()
    R.eq("after ALTER TABLE ADD COLUMN a new client prepares the same text", ["D:1,7"],
         rows_of(extended(c3, "crab_s3", "SELECT * FROM crab_plan")))
    c3.close()
    c2 = client()
    c2.q("ALTER TABLE crab_plan ADD COLUMN c int DEFAULT 8")
    c2.close()
    c4 = client()
    c4.q("BEGIN")
    R.eq("and as the first statement of a transaction", ["D:1,7,8"],
         rows_of(extended(c4, "crab_s4", "SELECT * FROM crab_plan")))
    c4.q("COMMIT")
    c4.close()
    c2 = client()
    c2.q("ALTER TABLE crab_plan DROP COLUMN b")
    c2.close()
    c5 = client()
    c5.q("BEGIN")
    R.eq("and after DROP COLUMN, unnamed statement, first in a transaction", ["D:1,8"],
         rows_of(extended(c5, "", "SELECT * FROM crab_plan")))
    c5.q("COMMIT")
    c5.close()

    try:
        import psycopg
    except ImportError:
        R.skip("psycopg prepare=True across ALTER TABLE", "no psycopg")
        return
    admin("DROP TABLE IF EXISTS crab_plan2", "CREATE TABLE crab_plan2 (a int)", "INSERT INTO crab_plan2 VALUES (1)")
    dsn = "host=127.0.0.1 port=%d user=%s password=%s dbname=pgcrab_shard_1 connect_timeout=5" % (port, user, password)
    with psycopg.connect(dsn, autocommit=True) as p:
        first = p.execute("SELECT * FROM crab_plan2", prepare=True).fetchall()
    with psycopg.connect(dsn, autocommit=True) as p:
        p.execute("ALTER TABLE crab_plan2 ADD COLUMN b text DEFAULT 'x'")
    got = []
    for tx in (False, True):
        try:
            with psycopg.connect(dsn, autocommit=not tx) as p:
                got.append(p.execute("SELECT * FROM crab_plan2", prepare=True).fetchall())
                p.commit()
        except psycopg.Error as e:
            got.append("%s %s" % (e.sqlstate, e))
    want = [[(1,)], [(1, "x")], [(1, "x")]]
    R.eq("psycopg prepare=True: the same SELECT * after ALTER TABLE, autocommit and in a transaction",
         want, [first] + got)


# pool2: interaction between two clients on two server connections ---------------
def two_servers():
    a = client()
    b = client()
    a.q("LISTEN crab_chan2")
    b.q("NOTIFY crab_chan2, 'from B'")
    time.sleep(0.2)
    out = a.q("SELECT 1")
    R.ok("A listens, B notifies, A gets it with its next query", "A:crab_chan2:from B" in out, "got %r" % out)
    a.q("BEGIN; SELECT 1; COMMIT")
    b.q("BEGIN; SELECT 1; COMMIT")
    b.q("NOTIFY crab_chan2, 'again'")
    time.sleep(0.2)
    out = a.q("BEGIN; SELECT 2; COMMIT")
    R.ok("and across transactions", "A:crab_chan2:again" in out, "got %r" % out)
    b.q("NOTIFY crab_chan2, 'idle'")
    got = None
    if a.readable_within(3):
        t, data = a.read()
        got = a.token(t, data)
    R.eq("an idle listening A gets B's NOTIFY without asking", "A:crab_chan2:idle", got)
    R.eq("B does not listen", "0", b.v("SELECT count(*) FROM pg_listening_channels()"))
    a.q("UNLISTEN *")

    a.q("SELECT pg_advisory_lock(4343)")
    R.eq("B's pg_try_advisory_lock while A holds it", "f", b.v("SELECT pg_try_advisory_lock(4343)"))
    R.eq("A still holds it in a later transaction", "1",
         a.v("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"))
    R.eq("B's pg_try_advisory_lock again", "f", b.v("BEGIN; SELECT pg_try_advisory_lock(4343); COMMIT"))
    a.q("SELECT pg_advisory_unlock_all()")
    R.eq("after A unlocks B gets it", "t", b.v("SELECT pg_try_advisory_lock(4343)"))
    b.q("SELECT pg_advisory_unlock_all()")

    a.q("CREATE TEMP TABLE crab_tmp2 (who text); INSERT INTO crab_tmp2 VALUES ('a')")
    R.eq("B does not see A's temp table", "t", b.v("SELECT to_regclass('crab_tmp2') IS NULL"))
    b.q("CREATE TEMP TABLE crab_tmp2 (who text, n int); INSERT INTO crab_tmp2 VALUES ('b', 1), ('b', 2)")
    R.eq("A's and B's temp tables of one name are apart (A)", "a:1", a.v("SELECT min(who) || ':' || count(*) FROM crab_tmp2"))
    R.eq("A's and B's temp tables of one name are apart (B)", "b:2", b.v("SELECT min(who) || ':' || count(*) FROM crab_tmp2"))
    a.close()
    b.close()


# session mode: startup search_path and options ------------------------------------
def session_mode():
    want_a = dict(DEFAULTS, work_mem="5MB", search_path="crab_a, public", statement_timeout="6s")
    for rnd in range(2):
        a = client(search_path="crab_a, public", options="-c work_mem=5MB -c statement_timeout=6000")
        R.eq("round %d: A's startup search_path and options" % rnd, want_a, readout(a))
        R.eq("round %d: A finds crab_a" % rnd, "crab_a", a.v("SELECT s FROM where_am_i"))
        a.q("SET work_mem = '9MB'")
        a.close()
        b = client()
        R.eq("round %d: the next client (same server) has the defaults" % rnd, DEFAULTS, readout(b))
        R.eq("round %d: and finds public" % rnd, "public", b.v("SELECT s FROM where_am_i"))
        b.close()


# pin_session_state = error ------------------------------------------------------------
REFUSED = [("CREATE TEMP TABLE crab_tmp_e (a int)", ("TEMP",), "to_regclass('crab_tmp_e') IS NULL"),
           ("LISTEN crab_chan_e", ("LISTEN",), "(SELECT count(*) = 0 FROM pg_listening_channels())"),
           ("PREPARE crab_pe AS SELECT 1", ("PREPARE",),
            "(SELECT count(*) = 0 FROM pg_prepared_statements WHERE name = 'crab_pe')"),
           ("SELECT pg_advisory_lock(77)", ("pg_advisory_lock", "advisory"),
            "(SELECT count(*) = 0 FROM pg_locks WHERE locktype = 'advisory')"),
           ("DECLARE crab_ce CURSOR WITH HOLD FOR SELECT 1", ("DECLARE", "WITH HOLD", "HOLD"),
            "(SELECT count(*) = 0 FROM pg_cursors)"),
           ("LOAD 'auto_explain'", ("LOAD",), "current_setting('auto_explain.log_min_duration', true) IS NULL")]


def pin_error():
    a = client()
    b = client()
    for sql, words, absent in REFUSED:
        name = "pin_session_state = error refuses %s" % sql
        if direct:
            R.skip(name, "PostgreSQL has no pin_session_state; PgCrab's own error")
            continue
        out = a.q(sql)
        e = a.last_error or {}
        a.last_error = None
        text = (e.get("M", "") + " " + e.get("D", "") + " " + e.get("H", "")).lower()
        R.ok(name, any(x.startswith("E:") for x in out) and len(e.get("C", "")) == 5
             and any(w.lower() in text for w in words) and "pin_session_state" in text,
             "got %r, error %r" % (out, e))
        R.eq("%s: A carries on and has none of it" % sql, "t", a.v("SELECT " + absent))
        R.eq("%s: B is not held up" % sql, "t", b.v("SELECT " + absent))
    a.close()
    b.close()


# pin_session_state = off ---------------------------------------------------------------
def pin_off():
    a = client(options="-c work_mem=5MB")
    b = client()
    a.q("SET statement_timeout = '3s'")
    for s in ("CREATE TEMP TABLE crab_tmp (a int)", "LISTEN crab_chan", "PREPARE crab_p AS SELECT 1",
              "SELECT pg_advisory_lock(4242)", "DECLARE crab_cur CURSOR WITH HOLD FOR SELECT 1"):
        out = a.q(s)
        R.ok("A runs %s" % s, not any(x.startswith("E:") for x in out), "got %r" % out)
    b.send(msg(b"Q", cstr(PROBE)))
    R.ok("B is not held up by A's session state", b.readable_within(5), "no answer within 5 s")
    R.eq("B sees none of A's temp table, LISTEN, PREPARE, lock or cursor", CLEAN,
         [x[2:] for x in b.until_ready() if x.startswith("D:")][-1])
    R.eq("A's startup and SET values still hold after B", "5MB,3s",
         a.v("SELECT current_setting('work_mem') || ',' || current_setting('statement_timeout')"))
    R.eq("B has the defaults", DEFAULTS, readout(b))
    a.close()
    b.close()


setup_schemas()
if phase == "pool1":
    group("startup parameters", startup_parameters)
    group("no leaks", no_leaks)
    group("PostgreSQL's rules", rules)
    group("pinning", pinning)
    group("cached plan", cached_plan)
elif phase == "pool2":
    group("two servers", two_servers)
elif phase == "session":
    group("session mode", session_mode)
elif phase == "error":
    group("pin_session_state = error", pin_error)
elif phase == "off":
    group("pin_session_state = off", pin_off)
print("# done %s: %d checks, %d failed" % (phase, R.count, R.failed))
sys.exit(1 if R.failed else 0)
