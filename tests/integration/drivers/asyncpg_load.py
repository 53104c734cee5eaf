"""asyncpg with its statement cache on: 50 connections over a small pool,
mixed queries for a while, every result checked. argv: port seconds."""
import asyncio
import random
import sys
import time

import asyncpg

port, seconds = int(sys.argv[1]), float(sys.argv[2])


async def worker(i, stop, counts, errors):
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="pgcrab", password="pgcrab",
                                 database="pgcrab_shard_1", ssl=False, statement_cache_size=100,
                                 timeout=15, command_timeout=15)
    try:
        while time.monotonic() < stop:
            n = random.randint(1, 1000)
            try:
                v = await conn.fetchval("SELECT $1::int * 2", n)
                assert v == 2 * n, ("fetchval", v, n)
                rows = await conn.fetch("SELECT g, g::text AS t FROM generate_series(1, $1::int) g", n % 20 + 1)
                assert [r["g"] for r in rows] == list(range(1, n % 20 + 2)), "fetch"
                assert rows[-1]["t"] == str(n % 20 + 1)
                async with conn.transaction():
                    await conn.execute("INSERT INTO t_asyncpg (worker, n) VALUES ($1, $2)", i, n)
                    got = await conn.fetchval("SELECT n FROM t_asyncpg WHERE worker = $1 ORDER BY id DESC LIMIT 1", i)
                    assert got == n, ("read own write", got, n)
                await conn.executemany("INSERT INTO t_asyncpg (worker, n) VALUES ($1, $2)",
                                       [(i, -1), (i, -2), (i, -3)])
                stmt = await conn.prepare("SELECT $1::text || '-' || $2::int AS s, $2::int + 1 AS next")
                row = await stmt.fetchrow("w%d" % i, n)
                assert (row["s"], row["next"]) == ("w%d-%d" % (i, n), n + 1), ("prepare", row)
                async with conn.transaction():  # a cursor: Execute with a row limit, portal suspended
                    got = [r[0] async for r in conn.cursor("SELECT generate_series(1, $1::int)", 30, prefetch=7)]
                assert got == list(range(1, 31)), ("cursor", got)
                try:  # a failing transaction leaves nothing behind
                    async with conn.transaction():
                        await conn.execute("INSERT INTO t_asyncpg (worker, n) VALUES ($1, -100)", i)
                        await conn.fetchval("SELECT 1 / $1::int", 0)
                    raise AssertionError("1 / 0 did not fail")
                except asyncpg.exceptions.DivisionByZeroError:
                    pass
                counts[i] += 1
            except Exception as e:  # noqa: BLE001 - every error counts
                errors.append("%s: %r" % (type(e).__name__, e))
                if len(errors) > 20:
                    return
    finally:
        await conn.close()


async def main():
    setup = await asyncpg.connect(host="127.0.0.1", port=port, user="pgcrab", password="pgcrab",
                                  database="pgcrab_shard_1", ssl=False)
    await setup.execute("DROP TABLE IF EXISTS t_asyncpg")
    await setup.execute("CREATE TABLE t_asyncpg (id bigserial PRIMARY KEY, worker int, n int)")
    stop = time.monotonic() + seconds
    counts = [0] * 50
    errors = []
    await asyncio.gather(*(worker(i, stop, counts, errors) for i in range(50)))
    total = sum(counts)
    rows = await setup.fetchval("SELECT count(*) FROM t_asyncpg")
    negatives = await setup.fetchval("SELECT count(*) FROM t_asyncpg WHERE n < 0")
    rolled_back = await setup.fetchval("SELECT count(*) FROM t_asyncpg WHERE n = -100")
    await setup.close()
    print(("ok" if not errors else "not ok") + " - asyncpg: 50 connections, %d rounds, %d errors%s"
          % (total, len(errors), (": " + errors[0]) if errors else ""))
    print(("ok" if total > 0 and rows == 4 * total and negatives == 3 * total and rolled_back == 0 else "not ok")
          + " - asyncpg: every insert and executemany row stored, no rolled-back row"
          " (%d rows, %d rolled back, for %d rounds)" % (rows, rolled_back, total))


asyncio.run(main())
