"""Randomized differential test of session settings: three clients through
PgCrab share one server connection, three twins each have their own
PostgreSQL backend; a seeded random sequence of rounds, in each one client
runs one statement (SET, SET LOCAL, RESET, RESET ALL, SET TO DEFAULT,
set_config, BEGIN/COMMIT/ROLLBACK/SAVEPOINT/ROLLBACK TO, multi-statement
strings, errors), then every client that can reads all its settings. Every
reply through PgCrab must equal its twin's.

argv: port user password pg-port pg-user pg-password seed rounds [startup]
startup: "full" (default: options -c, search_path, DateStyle, statement_timeout
in the startup packets) or "plain" (application_name only)."""
import random
import os
import sys

from session_lib import Client, Report

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
pg_port, pg_user, pg_password = int(sys.argv[4]), sys.argv[5], sys.argv[6]
seed, rounds = int(sys.argv[7]), int(sys.argv[8])
startup = sys.argv[9] if len(sys.argv) > 9 else "full"
direct = port == pg_port
R = Report("seed %d, %s startup: " % (seed, startup))

VALUES = {
    "statement_timeout": ["'5s'", "'10min'", "0", "42000"],
    "work_mem": ["'1MB'", "'8MB'", "'64MB'", "'2048kB'"],
    "search_path": ["public", "crab_r, public", "'$user', public", "pg_catalog", "'crab_x'"],
    "application_name": ["'x1'", "'x2'", "''", "'crab app'"],
    "default_transaction_read_only": ["on", "off"],
    "DateStyle": ["'ISO, MDY'", "'German'", "'SQL, DMY'", "'Postgres, YMD'"],
}
NAMES = list(VALUES)
READ = "SELECT " + ", ".join("current_setting('%s')" % n for n in NAMES)
STARTUP = [
    dict(options=r"-c work_mem=3MB -c statement_timeout=7s", application_name="r0"),
    dict(search_path="crab_r, public", DateStyle="German", application_name="r1"),
    dict(options=r"-c default_transaction_read_only=on -c search_path=crab_r,\ public", statement_timeout="8000"),
]
if startup == "plain":
    STARTUP = [dict(application_name="r%d" % i) for i in range(3)]
REPORTED = ("application_name", "DateStyle")


def sql_literal(v):
    """A SET value as a set_config() argument."""
    if v.startswith("'") and v.endswith("'") and v.count("'") == 2:
        return v
    return "'" + v.replace("'", '"') + "'"


class Gen:
    def __init__(self, rng):
        self.rng = rng
        self.savepoints = 0
        self.kinds = set()

    def setting(self):
        name = self.rng.choice(NAMES)
        return name, self.rng.choice(VALUES[name])

    def one_set(self):
        """One session-changing statement, any transaction state."""
        r = self.rng
        name, value = self.setting()
        k = r.choice(["set", "set", "local", "reset", "reset_all", "default", "config", "config_local", "bad"])
        self.kinds.add(k)
        return {
            "set": "SET %s = %s" % (name, value),
            "local": "SET LOCAL %s = %s" % (name, value),
            "reset": "RESET %s" % name,
            "reset_all": "RESET ALL",
            "default": "SET %s TO DEFAULT" % name,
            "config": "SELECT set_config('%s', %s, false)" % (name, sql_literal(value)),
            "config_local": "SELECT set_config('%s', %s, true)" % (name, sql_literal(value)),
            "bad": "SET %s = 'no such value'" % name if name not in ("search_path", "application_name")
            else "SET %s = %s" % (name, value),
        }[k]

    def pick(self, choices, prefix=""):
        """A random kind; now and then one not generated yet, so that a run
        of a few hundred rounds meets every kind whatever the seed."""
        r = self.rng
        missing = sorted({c for c in choices if prefix + c not in self.kinds})
        if missing and r.random() < 0.2:
            return r.choice(missing)
        return r.choice(choices)

    def statement(self, status):
        r = self.rng
        if status == "I":
            k = self.pick(["set"] * 6 + ["begin", "begin", "multi", "multi_tx", "multi_err", "error"])
            self.kinds.add(k)
            if k == "begin":
                self.savepoints = 0
                return "BEGIN"
            if k == "multi":
                return "; ".join(self.one_set() for _ in range(r.randint(2, 3)))
            if k == "multi_tx":
                return "BEGIN; %s; %s; %s" % (self.one_set(), self.one_set(), r.choice(["COMMIT", "ROLLBACK"]))
            if k == "multi_err":
                return "%s; SELECT 1/0" % self.one_set()
            if k == "error":
                return "SELECT 1/0"
            return self.one_set()
        if status == "T":
            k = self.pick(["set"] * 5 + ["savepoint", "rollback_to", "release", "commit", "rollback", "error",
                                         "multi"], "tx_")
            self.kinds.add("tx_" + k)
            if k == "savepoint":
                self.savepoints += 1
                return "SAVEPOINT s%d" % self.savepoints
            if k in ("rollback_to", "release"):
                n = r.randint(1, max(self.savepoints, 1))
                return ("ROLLBACK TO SAVEPOINT s%d" if k == "rollback_to" else "RELEASE SAVEPOINT s%d") % n
            if k == "commit":
                return "COMMIT"
            if k == "rollback":
                return "ROLLBACK"
            if k == "error":
                return "SELECT 1/0"
            if k == "multi":
                return "%s; %s" % (self.one_set(), self.one_set())
            return self.one_set()
        # a failed transaction
        k = r.choice(["rollback", "rollback", "rollback_to", "commit", "set"])
        self.kinds.add("failed_" + k)
        if k == "rollback_to":
            return "ROLLBACK TO SAVEPOINT s%d" % r.randint(1, max(self.savepoints, 1))
        if k == "commit":
            return "COMMIT"
        if k == "set":
            return self.one_set()
        return "ROLLBACK"


def status_of(out):
    z = [x for x in out if x.startswith("Z:")]
    return z[-1][2:] if z else "?"


via = [Client(port, user, password, **p) for p in STARTUP]
twin = [Client(pg_port, pg_user, pg_password, **p) for p in STARTUP]
print("# seed %d, %d rounds, %s startup (SESSION_RANDOM_SEED / SESSION_RANDOM_ROUNDS)" % (seed, rounds, startup),
      flush=True)
rng = random.Random(seed)
gen = Gen(rng)
status = ["I"] * len(via)
history = []
mismatch = None
params_mismatch = None
pids = set()


def both(i, sql):
    global mismatch
    a, b = via[i].q(sql), twin[i].q(sql)
    history.append("client %d: %s -> %s" % (i, sql, b))
    if a != b and mismatch is None:
        mismatch = "round %d, client %d, %r: PostgreSQL %r, through PgCrab %r" % (rnd, i, sql, b, a)
    return b


try:
    for rnd in range(rounds):
        holder = [i for i, s in enumerate(status) if s != "I"]
        i = holder[0] if holder else rng.randrange(len(via))
        status[i] = status_of(both(i, gen.statement(status[i])))
        # a client inside a transaction holds the only server connection:
        # the others wait for it, so only it reads
        readers = [i] if status[i] != "I" else range(len(via))
        for j in readers:
            both(j, READ)
            pa = {k: via[j].params.get(k) for k in REPORTED}
            pb = {k: twin[j].params.get(k) for k in REPORTED}
            if pa != pb and params_mismatch is None:
                params_mismatch = "round %d, client %d: PostgreSQL reported %r, PgCrab %r" % (rnd, j, pb, pa)
        if mismatch:
            break
    for i in range(len(via)):
        if status[i] != "I":
            both(i, "ROLLBACK")
    for c in via:
        pids.add(c.v("SELECT pg_backend_pid()"))
except Exception as e:  # noqa: BLE001
    mismatch = mismatch or "round %d: %s: %s" % (rnd, type(e).__name__, e)

R.todo("%d rounds: every reply through PgCrab equals PostgreSQL's" % rounds, mismatch is None, mismatch,
       "known differences remain (issue 12): a RESET mixed in one transaction with SET LOCAL, set_config or savepoints rolled back can leave a setting at the server default or the pre-RESET value")
if mismatch:
    print("# the last statements (PostgreSQL's replies):")
    for h in history[-int(os.environ.get("SESSION_RANDOM_HISTORY", "12")):]:
        print("#   " + h)
R.todo("ParameterStatus (application_name, DateStyle) as PostgreSQL reports", params_mismatch is None,
       params_mismatch, "known differences remain (issue 12): a RESET mixed in one transaction with SET LOCAL, set_config or savepoints rolled back can leave a setting at the server default or the pre-RESET value")
want_kinds = {"set", "local", "reset", "reset_all", "default", "config", "config_local", "begin", "multi",
              "multi_tx", "multi_err", "tx_savepoint", "tx_rollback_to", "tx_commit", "tx_rollback"}
if mismatch:
    R.skip("every kind of statement ran", "the run stopped at the first difference")
else:
    R.ok("every kind of statement ran", rounds < 200 or want_kinds <= gen.kinds,
         "missing %s" % sorted(want_kinds - gen.kinds))
if direct:
    R.skip("the clients shared one server connection", "directly each client has its own backend")
else:
    R.ok("the clients shared one server connection", len(pids) == 1, "backends %r" % sorted(pids))
for c in via + twin:
    c.close()
print("# done")
sys.exit(1 if R.failed else 0)
