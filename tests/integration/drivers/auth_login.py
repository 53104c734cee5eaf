"""Logs in with one driver and runs SELECT current_user; prints "ok" or
"E:SQLSTATE message" (the server's message text, first line).
Usage: auth_login.py DRIVER PORT USER PASSWORD DB, DRIVER psycopg or asyncpg."""
import asyncio
import sys

driver, port, user, password, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


def report_psycopg():
    import psycopg
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user=user, password=password,
                             dbname=db, connect_timeout=10, sslmode="disable") as c:
            c.execute("SELECT 1").fetchone()
        print("ok")
    except psycopg.OperationalError as e:
        # psycopg 3 keeps the server's diag on the exception when there is one
        diag = getattr(e, "diag", None)
        code = diag.sqlstate if diag and diag.sqlstate else "?"
        msg = diag.message_primary if diag and diag.message_primary else str(e).splitlines()[-1]
        msg = msg.split("FATAL:  ", 1)[-1]  # libpq's text: "connection ... failed: FATAL:  ..."
        print("E:%s %s" % (code, msg))


async def report_asyncpg():
    import asyncpg
    try:
        c = await asyncpg.connect(host="127.0.0.1", port=port, user=user, password=password,
                                  database=db, timeout=10, ssl=False)
        await c.fetchval("SELECT 1")
        await c.close()
        print("ok")
    except asyncpg.PostgresError as e:
        print("E:%s %s" % (e.sqlstate, e.args[0] if e.args else ""))


if driver == "psycopg":
    report_psycopg()
else:
    asyncio.run(report_asyncpg())
