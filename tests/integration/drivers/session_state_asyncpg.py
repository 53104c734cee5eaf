"""asyncpg in transaction mode: server_settings at connect, SET, a temp
table, add_listener and SQL PREPARE via execute() hold for client A across
transactions while client B runs in between, and B sees none of A's.
argv: port user password"""
import asyncio
import sys

import asyncpg

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
fails = 0


def expect(name, want, got):
    global fails
    good = want == got
    fails += not good
    print(("ok - asyncpg: %s" % name) if good else ("not ok - asyncpg: %s: expected %r, got %r" % (name, want, got)),
          flush=True)


async def main():
    kw = dict(host="127.0.0.1", port=port, user=user, password=password, database="pgcrab_shard_1", ssl=False,
              timeout=10, command_timeout=10)
    a = await asyncpg.connect(server_settings={"work_mem": "5MB", "statement_timeout": "6000",
                                               "search_path": "crab_d, public"}, **kw)
    b = await asyncpg.connect(**kw)
    for r in range(2):
        expect("round %d: A's server_settings" % r, ("5MB", "6s", "crab_d, public"),
               (await a.fetchval("SHOW work_mem"), await a.fetchval("SHOW statement_timeout"),
                await a.fetchval("SHOW search_path")))
        expect("round %d: B has the defaults" % r, ("4MB", "0", '"$user", public'),
               (await b.fetchval("SHOW work_mem"), await b.fetchval("SHOW statement_timeout"),
                await b.fetchval("SHOW search_path")))
    await a.execute("SET work_mem = '9MB'")
    expect("B after A's SET work_mem", "4MB", await b.fetchval("SHOW work_mem"))
    async with a.transaction():
        expect("A's SET in its next transaction", "9MB", await a.fetchval("SHOW work_mem"))

    await a.execute("CREATE TEMP TABLE crab_drv_tmp (a int); INSERT INTO crab_drv_tmp VALUES (1), (2)")
    expect("B does not see A's temp table", True, await b.fetchval("SELECT to_regclass('crab_drv_tmp') IS NULL"))
    async with a.transaction():
        expect("A's temp table in a later transaction", 2, await a.fetchval("SELECT count(*) FROM crab_drv_tmp"))
    expect("B still does not", True, await b.fetchval("SELECT to_regclass('crab_drv_tmp') IS NULL"))
    await a.execute("DISCARD TEMP")

    got = []
    arrived = asyncio.Event()

    def on_notify(conn, pid, channel, payload):
        got.append((channel, payload))
        if len(got) >= 2:
            arrived.set()
    await a.add_listener("crab_drv", on_notify)
    await b.execute("NOTIFY crab_drv, 'one'")
    await a.fetchval("SELECT 1")
    async with a.transaction():
        await a.fetchval("SELECT 2")
    await b.execute("NOTIFY crab_drv, 'two'")
    try:
        await asyncio.wait_for(arrived.wait(), 5)
    except asyncio.TimeoutError:
        pass
    expect("add_listener: A gets B's notifications across transactions, idle or not",
           [("crab_drv", "one"), ("crab_drv", "two")], got)
    expect("B does not listen", 0, await b.fetchval("SELECT count(*) FROM pg_listening_channels()"))
    await a.remove_listener("crab_drv", on_notify)

    await a.execute("PREPARE crab_drv_p(int) AS SELECT $1 * 2")
    expect("B does not see A's PREPARE", 0,
           await b.fetchval("SELECT count(*) FROM pg_prepared_statements WHERE name = 'crab_drv_p'"))
    expect("A's EXECUTE in a later statement", 42, await a.fetchval("EXECUTE crab_drv_p(21)"))
    async with a.transaction():
        expect("and inside a transaction", 20, await a.fetchval("EXECUTE crab_drv_p(10)"))
    await a.execute("DEALLOCATE crab_drv_p")
    await a.close()
    await b.close()


try:
    asyncio.run(asyncio.wait_for(main(), 40))
except Exception as e:  # noqa: BLE001
    fails += 1
    print("not ok - asyncpg: the script ran to its end: %s: %s" % (type(e).__name__, e))
print("# done")
sys.exit(1 if fails else 0)
