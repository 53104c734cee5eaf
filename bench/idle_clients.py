#!/usr/bin/env python3
"""Open many idle, authenticated PostgreSQL client connections to a pooler.

Usage: idle_clients.py HOST PORT USER PASSWORD DBNAME STAGE [STAGE ...]

Each STAGE is a total number of connections. For each stage the helper opens
connections (at most --parallel logins in flight) until that many are logged
in: StartupMessage, cleartext PasswordMessage, then everything up to the
first ReadyForQuery. It sends nothing more on them. When a stage is reached it
prints one line on stdout,

    ready TOTAL SECONDS

(SECONDS: wall time of this stage's logins) and waits for a line on stdin
before going on. After the last stage it waits for a line (or end of input),
closes everything and exits. Any failure prints `error ...` and exits 1.

Only the standard library: asyncio streams, the v3 wire format by hand.
"""

import argparse
import asyncio
import struct
import sys
import time


def startup_message(user, dbname):
    body = struct.pack("!I", 196608)  # protocol 3.0
    for k, v in (("user", user), ("database", dbname)):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def password_message(password):
    body = password.encode() + b"\0"
    return b"p" + struct.pack("!I", len(body) + 4) + body


async def read_message(reader):
    header = await reader.readexactly(5)
    kind = header[:1]
    (length,) = struct.unpack("!I", header[1:])
    body = await reader.readexactly(length - 4)
    return kind, body


async def login(host, port, user, password, dbname, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    writer.write(startup_message(user, dbname))
    await writer.drain()

    async def handshake():
        while True:
            kind, body = await read_message(reader)
            if kind == b"R":
                (code,) = struct.unpack("!I", body[:4])
                if code == 3:  # AuthenticationCleartextPassword
                    writer.write(password_message(password))
                    await writer.drain()
                elif code != 0:  # anything but AuthenticationOk
                    raise RuntimeError(f"unsupported authentication request {code}")
            elif kind == b"E":
                fields = [f for f in body.split(b"\0") if f]
                msg = " ".join(f[1:].decode(errors="replace") for f in fields if f[:1] in (b"C", b"M"))
                raise RuntimeError(f"server error: {msg}")
            elif kind == b"Z":
                return

    await asyncio.wait_for(handshake(), timeout)
    return reader, writer


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("user")
    ap.add_argument("password")
    ap.add_argument("dbname")
    ap.add_argument("stages", type=int, nargs="+")
    ap.add_argument("--parallel", type=int, default=64, help="logins in flight at once")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per login")
    args = ap.parse_args()

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    conns = []
    sem = asyncio.Semaphore(args.parallel)

    async def one():
        async with sem:
            conns.append(await login(args.host, args.port, args.user, args.password,
                                     args.dbname, args.timeout))

    try:
        for stage in args.stages:
            need = stage - len(conns)
            start = time.monotonic()
            if need > 0:
                await asyncio.gather(*(one() for _ in range(need)))
            print(f"ready {len(conns)} {time.monotonic() - start:.3f}", flush=True)
            await stdin.readline()
    except Exception as e:  # noqa: BLE001 - report whatever broke, then exit 1
        print(f"error after {len(conns)} connections: {type(e).__name__}: {e}", flush=True)
        return 1
    finally:
        for _, w in conns:
            w.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
