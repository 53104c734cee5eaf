"""A client that cannot be handed to an upgrade's new process (TLS, or one
holding its server in session mode): it opens a transaction, creates
GO.intx, waits for GO (the test made the upgrade begin), then finishes the
transaction on the old process and must be closed after it, not during
it. Prints one ok/not ok line for each. argv: conninfo GO label"""
import os
import sys
import time

import psycopg

dsn, go, label = sys.argv[1], sys.argv[2], sys.argv[3]
c = psycopg.connect(dsn)
print("# %s: TLS %s" % (label, c.info.pgconn.ssl_in_use), flush=True)
c.execute("SELECT 1")  # a transaction begins
open(go + ".intx", "w").close()
while not os.path.exists(go):
    time.sleep(0.1)
r = c.execute("SELECT 2").fetchone()[0]
c.commit()
print(("ok - %s: its transaction finishes after the upgrade began" if r == 2
       else "not ok - %s: its transaction finishes after the upgrade began") % label, flush=True)
time.sleep(1)
try:
    c.execute("SELECT 3").fetchone()
    c.commit()
    print("not ok - %s: closed between transactions (it was still served)" % label)
except psycopg.Error as e:
    print("ok - %s: closed between transactions (%s)" % (label, type(e).__name__))
