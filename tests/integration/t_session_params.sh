# Startup parameters and SETs follow each client across one shared server
# connection: two clients interleave transactions over a pool of ONE.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
pgcrab_start --workers 1 "min_connections = 1
max_connections = 1" || exit 1

out=$(timeout 60 $PY - "$PGCRAB_PORT" "$(dirname "$0")/drivers" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
from pgwire import Conn, msg, cstr
port = int(sys.argv[1])
a = Conn(port, application_name="alpha", TimeZone="Asia/Tokyo")
b = Conn(port, application_name="beta", TimeZone="America/New_York")
q = lambda c, sql: [x for x in c.until_ready() if x.startswith("D:")] if c.send(msg(b"Q", cstr(sql))) is None else None
fails = 0
def expect(name, want, got):
    global fails
    ok = want == got
    fails += not ok
    print(("ok" if ok else "not ok") + " - %s: %r" % (name, got))
pids = set()
for round in range(3):
    for c, app, tz in ((a, "alpha", "Asia/Tokyo"), (b, "beta", "America/New_York")):
        r = q(c, "SELECT current_setting('application_name'), current_setting('TimeZone'), pg_backend_pid()")
        app_, tz_, pid = r[0][2:].split(",")
        pids.add(pid)
        expect("round %d: %s sees its own application_name and TimeZone" % (round, app), (app, tz), (app_, tz_))
expect("both clients ran on one server connection", 1, len(pids))
q(a, "SET DateStyle = 'German'")
expect("a's SET DateStyle holds in its next transaction", ["D:German, DMY"], q(a, "SHOW DateStyle"))
expect("and does not leak into b's", ["D:ISO, MDY"], q(b, "SHOW DateStyle"))
expect("a still has it after b ran", ["D:German, DMY"], q(a, "SHOW DateStyle"))
sys.exit(1 if fails else 0)
PY
)
echo "$out"
[[ $(grep -c '^ok - ' <<<"$out") -eq 10 ]] || not_ok "session parameter checks ran"
exit 0
