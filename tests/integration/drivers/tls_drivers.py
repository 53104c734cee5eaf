"""psycopg 3 and asyncpg over TLS (sslmode=require): each connects, checks
its own connection is encrypted and asks the server whether its side is
(pg_stat_ssl). Arguments: host port user password dbname. Prints one
"ok - ..." or "not ok - ..." line per driver. A sixth argument "plus"
asks libpq for SCRAM-SHA-256-PLUS (channel_binding=require: a login
without channel binding fails); asyncpg has no channel binding and logs
in with SCRAM-SHA-256 from the same offer."""
import asyncio
import sys

import asyncpg
import psycopg

host, port, user, password, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
plus = len(sys.argv) > 6 and sys.argv[6] == "plus"
SQL = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


def check_psycopg():
    conninfo = f"host={host} port={port} user={user} password={password} dbname={db} sslmode=require connect_timeout=10"
    if plus:
        conninfo += " channel_binding=require"
    with psycopg.connect(conninfo) as conn:
        ssl_in_use = conn.pgconn.ssl_in_use
        server_ssl = conn.execute(SQL).fetchone()[0]
        rows = conn.execute("SELECT g FROM generate_series(1, 1000) g").fetchall()
    return ssl_in_use, server_ssl, len(rows)


async def check_asyncpg():
    conn = await asyncpg.connect(host=host, port=port, user=user, password=password, database=db,
                                 ssl="require", timeout=10)
    try:
        ssl_in_use = conn._transport.get_extra_info("ssl_object") is not None
        server_ssl = await conn.fetchval(SQL)
        stmt = await conn.prepare("SELECT $1::int + 1")
        n = sum([await stmt.fetchval(i) for i in range(100)])
    finally:
        await conn.close()
    return ssl_in_use, server_ssl, n


for name, run in (("psycopg", check_psycopg), ("asyncpg", lambda: asyncio.run(check_asyncpg()))):
    try:
        client, server, n = run()
        if client and server:
            how = " with SCRAM-SHA-256-PLUS" if plus and name == "psycopg" else ""
            print(f"ok - {name} over TLS{how} (server side TLS too, {n})")
        else:
            print(f"not ok - {name}: client TLS {client}, server TLS {server}")
    except Exception as e:  # the message is the test's output
        print(f"not ok - {name}: {type(e).__name__}: {e}")
