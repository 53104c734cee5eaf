"""Logs in with one driver and runs SELECT 1, once for each line of stdin
("PORT USER PASSWORD", tab separated); prints one line per login: "ok" or
"E:SQLSTATE message" (the server's message text).
Usage: auth_login.py DRIVER DB, DRIVER psycopg or asyncpg."""
import asyncio
import sys

driver, db = sys.argv[1], sys.argv[2]


def login_psycopg(port, user, password):
    import psycopg
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user=user, password=password,
                             dbname=db, connect_timeout=10, sslmode="disable") as c:
            c.execute("SELECT 1").fetchone()
        return "ok"
    except psycopg.OperationalError as e:
        # psycopg 3 keeps the server's diag on the exception when there is one
        diag = getattr(e, "diag", None)
        code = diag.sqlstate if diag and diag.sqlstate else "?"
        msg = diag.message_primary if diag and diag.message_primary else str(e).splitlines()[-1]
        msg = msg.split("FATAL:  ", 1)[-1]  # libpq's text: "connection ... failed: FATAL:  ..."
        return "E:%s %s" % (code, msg)


async def login_asyncpg(port, user, password):
    import asyncpg
    try:
        c = await asyncpg.connect(host="127.0.0.1", port=port, user=user, password=password,
                                  database=db, timeout=10, ssl=False)
        await c.fetchval("SELECT 1")
        await c.close()
        return "ok"
    except asyncpg.PostgresError as e:
        return "E:%s %s" % (e.sqlstate, e.args[0] if e.args else "")


for line in sys.stdin.read().split("\n"):
    if not line:
        continue
    port, user, password = line.split("\t")
    if driver == "psycopg":
        print(login_psycopg(int(port), user, password), flush=True)
    else:
        print(asyncio.run(login_asyncpg(int(port), user, password)), flush=True)
