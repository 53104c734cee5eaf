# Cancel: a running query cancelled through PgCrab with 4 workers returns
# 57014 within a second, whichever worker takes the cancel connection; a
# cancel with a wrong key, or for a client between transactions, does nothing.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
pgcrab_start --workers 4 "min_connections = 4
max_connections = 8" || exit 1

out=$(timeout 60 $PY - "$(PC_CONN)" <<'PY'
import sys, threading, time
import psycopg
dsn = sys.argv[1]
for i in range(6):
    # fresh connections land on different workers; so do their cancels
    with psycopg.connect(dsn, autocommit=True) as c:
        t = threading.Timer(0.5, c.cancel)
        t.start()
        start = time.monotonic()
        try:
            c.execute("SELECT pg_sleep(30)")
            print("not ok - cancel %d: the query was not cancelled" % i)
        except psycopg.errors.QueryCanceled as e:
            took = time.monotonic() - start - 0.5
            print("%s - cancel %d: %s after %.2f s" % ("ok" if took < 1.0 else "not ok", i, e.sqlstate, took))
        c.execute("SELECT 1")  # the connection is usable afterwards
PY
)
echo "$out"
expect_eq "six cancels, each 57014 within a second" "6" "$(grep -c '^ok - cancel' <<<"$out")"

# a forged key and an idle client's key cancel nothing
out=$(timeout 30 $PY - "$PGCRAB_PORT" "$(dirname "$0")/drivers" <<'PY'
import socket, struct, sys, threading, time
sys.path.insert(0, sys.argv[2])
from pgwire import Conn, msg, cstr
port = int(sys.argv[1])
def cancel(pid, key):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(struct.pack("!iiii", 16, 80877102, pid, key))
    s.recv(1)  # the pooler closes it
    s.close()
victim = Conn(port)
idle = Conn(port)
cancel(idle.pid, idle.key)  # between transactions: nothing to cancel
t = threading.Timer(0.3, cancel, (victim.pid, victim.key ^ 0x5a5a5a5a))
t.start()
start = time.monotonic()
victim.send(msg(b"Q", cstr("SELECT pg_sleep(1.5)")))
r = victim.until_ready()
print(("ok" if r[-2:] == ["C:SELECT 1", "Z:I"] else "not ok") + " - a wrong key cancels nothing: %r" % r)
idle.send(msg(b"Q", cstr("SELECT 'alive'")))
r = idle.until_ready()
print(("ok" if "D:alive" in r else "not ok") + " - a cancel for an idle client harms nothing: %r" % r)
PY
)
echo "$out"
[[ $(grep -c '^ok - ' <<<"$out") -eq 2 ]] || not_ok "cancel key checks ran"
exit 0
