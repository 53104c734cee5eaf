"""N clients connecting at once (asyncio, one socket each). Every client
logs in; those let in hold their connection until every client has its
answer, then each runs SELECT 1 and leaves with Terminate. Prints
"served S refused53300 R other O" (other: anything else, with a sample).
Usage: crowd.py PORT USER PASSWORD DB N"""
import asyncio
import struct
import sys

port, user, password, db, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])


def msg(kind, body=b""):
    return kind + struct.pack("!i", len(body) + 4) + body


async def read_msg(r):
    head = await r.readexactly(5)
    body = await r.readexactly(struct.unpack("!i", head[1:])[0] - 4)
    return head[:1], body


def code_of(body):
    for f in body.split(b"\0"):
        if f[:1] == b"C":
            return f[1:].decode()
    return "?"


async def client(all_in, resolved_all):
    once = [False]

    def resolved():
        if not once[0]:
            once[0] = True
            resolved_all()

    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 60)
    except (OSError, asyncio.TimeoutError) as e:
        resolved()
        return "connect:" + type(e).__name__
    try:
        body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
        w.write(struct.pack("!i", len(body) + 4) + body)
        while True:
            t, b = await asyncio.wait_for(read_msg(r), 60)
            if t == b"R" and struct.unpack("!i", b[:4])[0] == 3:
                w.write(msg(b"p", password.encode() + b"\0"))
            elif t == b"E":
                resolved()
                return "E:" + code_of(b)
            elif t == b"Z":
                break
        resolved()
        await all_in.wait()
        w.write(msg(b"Q", b"SELECT 1\0"))
        got = None
        while True:
            t, b = await asyncio.wait_for(read_msg(r), 90)
            if t == b"D":
                got = b
            elif t == b"E":
                return "query E:" + code_of(b)
            elif t == b"Z":
                break
        w.write(msg(b"X"))
        await w.drain()
        return "served" if got is not None else "no row"
    except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
        resolved()
        return "lost:" + type(e).__name__
    finally:
        w.close()


async def main():
    all_in = asyncio.Event()
    left = [n]

    def resolved():
        left[0] -= 1
        if left[0] == 0:
            all_in.set()

    results = await asyncio.gather(*(client(all_in, resolved) for _ in range(n)))
    served = results.count("served")
    refused = results.count("E:53300")
    others = [x for x in results if x not in ("served", "E:53300")]
    print("served %d refused53300 %d other %d %s" % (served, refused, len(others),
                                                    " ".join(sorted(set(others))[:5])))


asyncio.run(main())
