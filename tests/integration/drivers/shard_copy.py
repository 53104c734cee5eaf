"""COPY ... FROM STDIN into a sharded table, checked against one PostgreSQL.

The table copy_t must already exist, empty (or give --truncate), in the
sharded PgCrab database and in the oracle database, with the same columns.
This script creates nothing: it reads copy_t's columns from the oracle,
generates a seeded data set for them (values made to trip a splitter: tabs,
newlines, carriage returns, backslashes, quotes, delimiters, "\\." alone,
empty strings, non-ASCII, NULLs outside a one-column key, integer edges), and
loads one part of it in each format through both connections:

  text    COPY's text format written by this script, sent in CopyData
          messages cut at random sizes (rows span messages)
  csv     CSV with a HEADER line, written by this script, cut likewise
  binary  psycopg's binary COPY (write_row with the oracle's types)

Then every row of copy_t (each column as text) must be the same multiset
through PgCrab as in the oracle. With --shards (the shards' own DSNs in
shard order) and --shard-of (tests/tools/shard_of), each shard's key values
must also hash to that shard.

Prints one line per check ("ok ..." / "not ok ...") and exits 1 if any
failed, 2 on a usage or setup error.

  shard_copy.py --pgcrab DSN --oracle DSN --key id [--rows 3000] [--seed 1]
                [--formats text,csv,binary] [--truncate]
                [--shards DSN,DSN,... --shard-of PATH]
"""
import argparse
import collections
import datetime
import decimal
import random
import subprocess
import sys
import uuid

import psycopg

KEY_TYPES = {"int2", "int4", "int8", "text", "varchar", "bpchar", "uuid"}
TEXT_TYPES = {"text", "varchar", "bpchar"}
BINARY_AS = {"bpchar": "text", "varchar": "text"}
# pieces that break naive row or field splitting, in every format
NASTY = ["\t", "\n", "\r", "\r\n", "\\", "\\.", '"', "'", ",", ";", "|", "\\N", "NULL",
         "é", "Ω", "😀", " ", ".", "x"]


def parse_args():
    p = argparse.ArgumentParser(
        description="COPY a generated data set into copy_t through a sharded PgCrab database "
                    "and an oracle database (text, csv, binary) and compare the contents.")
    p.add_argument("--pgcrab", required=True, help="DSN of the sharded database through PgCrab")
    p.add_argument("--oracle", required=True, help="DSN of the unsharded oracle database")
    p.add_argument("--key", required=True,
                   help="copy_t's sharding key columns, comma-separated, in the key's order")
    p.add_argument("--rows", type=int, default=3000, help="rows in all (default 3000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--formats", default="text,csv,binary",
                   help="comma-separated subset of text,csv,binary (default all three)")
    p.add_argument("--truncate", action="store_true",
                   help="TRUNCATE copy_t through both connections first")
    p.add_argument("--shards", default="",
                   help="the shards' own DSNs, comma-separated, in shard order: check placement")
    p.add_argument("--shard-of", default="",
                   help="path of tests/tools/shard_of (needed with --shards)")
    a = p.parse_args()
    a.key = [k.strip() for k in a.key.split(",") if k.strip()]
    a.formats = [f.strip() for f in a.formats.split(",") if f.strip()]
    for f in a.formats:
        if f not in ("text", "csv", "binary"):
            p.error("unknown format %r" % f)
    a.shards = [d for d in a.shards.split(",") if d]
    if a.shards and not a.shard_of:
        p.error("--shards needs --shard-of")
    return a


def columns(conn):
    """[(name, typname, typmod)] of copy_t in column order."""
    rows = conn.execute(
        "SELECT a.attname, t.typname, a.atttypmod FROM pg_attribute a"
        " JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE a.attrelid = 'copy_t'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum").fetchall()
    if not rows:
        raise SystemExit("copy_t has no columns in the oracle")
    return rows


def nasty_text(rng, maxlen):
    s = "".join(rng.choice(NASTY) for _ in range(rng.randint(0, 4)))
    if maxlen is not None:
        s = s[:maxlen]
    return s


def gen_value(rng, typ, typmod, i):
    """A value of typ for row i (not NULL)."""
    maxlen = typmod - 4 if typmod > 4 else None  # varchar(n), bpchar(n)
    if typ in ("int2", "int4", "int8"):
        bits = {"int2": 16, "int4": 32, "int8": 64}[typ]
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        r = rng.random()
        if r < 0.1:
            return rng.choice([lo, hi, 0, -1, 1])
        if r < 0.5:
            return rng.randint(-1000, 1000)  # repeated keys
        return rng.randint(lo, hi)
    if typ in TEXT_TYPES:
        r = rng.random()
        if r < 0.3:
            s = nasty_text(rng, maxlen)
        elif r < 0.6:
            s = "k%d" % rng.randint(0, 500)
        else:
            s = "row %d %s" % (i, nasty_text(rng, None))
        if maxlen is not None:
            s = s[:maxlen]
        if typ == "bpchar":
            s = s.rstrip(" ")  # the oracle would return it padded either way
        return s
    if typ == "uuid":
        return uuid.UUID(int=rng.getrandbits(128))
    if typ == "numeric":
        return decimal.Decimal(rng.randint(-10**12, 10**12)) / 1000
    if typ == "bool":
        return rng.random() < 0.5
    if typ in ("float8", "float4"):
        return float(rng.randint(-10**6, 10**6)) / 64
    if typ == "date":
        return datetime.date(2000, 1, 1) + datetime.timedelta(days=rng.randint(0, 20000))
    if typ == "timestamp":
        return datetime.datetime(2000, 1, 1) + datetime.timedelta(seconds=rng.randint(0, 10**9))
    if typ == "timestamptz":
        return datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc) + \
            datetime.timedelta(seconds=rng.randint(0, 10**9))
    if typ == "jsonb":
        return None  # never chosen: see check_types
    raise SystemExit("copy_t column type %s is not one this script can generate" % typ)


def check_types(cols, key):
    names = [c[0] for c in cols]
    for k in key:
        if k not in names:
            raise SystemExit("key column %s is not a column of copy_t (%s)" % (k, ", ".join(names)))
    for name, typ, _ in cols:
        if name in key and typ not in KEY_TYPES:
            raise SystemExit("key column %s has type %s, not a sharding key type" % (name, typ))


def gen_rows(cols, key, n, rng):
    rows = []
    for i in range(n):
        row = []
        for name, typ, typmod in cols:
            # NULL: never in a one-column key (PgCrab refuses such a row),
            # sometimes in a column of a longer key, often elsewhere
            p_null = 0.0 if (name in key and len(key) == 1) else (0.05 if name in key else 0.1)
            row.append(None if rng.random() < p_null else gen_value(rng, typ, typmod, i))
        rows.append(row)
    return rows


def text_of(v):
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return str(v)


def text_format(rows):
    esc = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
    out = []
    for row in rows:
        fields = []
        for v in row:
            if v is None:
                fields.append("\\N")
            else:
                fields.append("".join(esc.get(ch, ch) for ch in text_of(v)))
        out.append("\t".join(fields) + "\n")
    return "".join(out).encode()


def csv_format(cols, rows, rng):
    def field(v):
        if v is None:
            return ""  # unquoted empty: NULL
        s = text_of(v)
        # quote what needs it, the empty string, and some others anyway
        if s == "" or any(ch in s for ch in ',"\r\n') or s.startswith("\\.") or rng.random() < 0.3:
            return '"' + s.replace('"', '""') + '"'
        return s
    out = [",".join(c[0] for c in cols) + "\n"]
    for row in rows:
        out.append(",".join(field(v) for v in row) + "\n")
    return "".join(out).encode()


def copy_raw(conn, sql, data, rng):
    """data in CopyData messages of random sizes, rows spanning them."""
    with conn.cursor() as cur:
        with cur.copy(sql) as cp:
            at = 0
            while at < len(data):
                n = rng.choice([1, 2, 3, 7, 64, 500, 4096, 20000])
                cp.write(data[at:at + n])
                at += n


def copy_binary(conn, sql, cols, rows):
    with conn.cursor() as cur:
        with cur.copy(sql) as cp:
            # psycopg has no binary dumper for bpchar; its binary form is
            # text's, and the server reads it with the column's own type
            cp.set_types([BINARY_AS.get(c[1], c[1]) for c in cols])
            for row in rows:
                cp.write_row(row)


def load(conn, fmt, cols, rows, seed):
    names = ", ".join('"%s"' % c[0] for c in cols)
    rng = random.Random(seed)
    if fmt == "text":
        copy_raw(conn, "COPY copy_t (%s) FROM STDIN" % names, text_format(rows), rng)
    elif fmt == "csv":
        data = csv_format(cols, rows, random.Random(seed + 1))
        copy_raw(conn, "COPY copy_t (%s) FROM STDIN WITH (FORMAT csv, HEADER)" % names, data, rng)
    else:
        copy_binary(conn, "COPY copy_t (%s) FROM STDIN (FORMAT binary)" % names, cols, rows)


def contents(conn, cols):
    sql = "SELECT %s FROM copy_t" % ", ".join('"%s"::text' % c[0] for c in cols)
    return collections.Counter(tuple(r) for r in conn.execute(sql).fetchall())


def check_placement(a, cols, total):
    """Each shard's key values hash to that shard (router/hash.c, through
    shard_of); together the shards hold every row once."""
    types = []
    for k in a.key:
        typ = [c[1] for c in cols if c[0] == k][0]
        types.append(typ)
    keys = ", ".join('"%s"' % k for k in a.key)
    held = []
    for i, dsn in enumerate(a.shards):
        with psycopg.connect(dsn, autocommit=True) as c:
            with c.cursor() as cur:
                buf = bytearray()
                with cur.copy("COPY (SELECT %s FROM copy_t) TO STDOUT" % keys) as cp:
                    for chunk in cp:
                        buf += chunk
        out = subprocess.run([a.shard_of, str(len(a.shards))] + types, input=bytes(buf),
                             capture_output=True, check=True).stdout.decode().split()
        wrong = [s for s in out if s != str(i)]
        held.append(len(out))
        if wrong:
            return False, "shard %d holds %d of its %d rows whose key hashes elsewhere (e.g. to %s)" \
                % (i, len(wrong), len(out), wrong[0])
    if sum(held) != total:
        return False, "the shards hold %d rows, the oracle %d" % (sum(held), total)
    return True, "rows per shard %s, each on the shard its key hashes to" % "/".join(map(str, held))


def main():
    a = parse_args()
    failed = 0

    def report(ok, what):
        nonlocal failed
        print(("ok - " if ok else "not ok - ") + what)
        sys.stdout.flush()
        failed += 0 if ok else 1

    try:
        oracle = psycopg.connect(a.oracle, autocommit=True)
        crab = psycopg.connect(a.pgcrab, autocommit=True)
    except psycopg.Error as e:
        print("cannot connect: %s" % e, file=sys.stderr)
        return 2
    cols = columns(oracle)
    check_types(cols, a.key)
    if a.truncate:
        oracle.execute("TRUNCATE copy_t")
        crab.execute("TRUNCATE copy_t")
    rng = random.Random(a.seed)
    rows = gen_rows(cols, a.key, a.rows, rng)
    per = (len(rows) + len(a.formats) - 1) // len(a.formats)
    for n, fmt in enumerate(a.formats):
        part = rows[n * per:(n + 1) * per]
        errors = []
        for tag, conn in (("oracle", oracle), ("pgcrab", crab)):
            try:
                load(conn, fmt, cols, part, a.seed * 100 + n)
            except psycopg.Error as e:
                errors.append("%s: %s %s" % (tag, e.sqlstate, str(e).splitlines()[0]))
        report(not errors, "COPY FROM STDIN (%s) of %d rows%s" % (
            fmt, len(part), ": " + "; ".join(errors) if errors else ""))

    want, got = contents(oracle, cols), contents(crab, cols)
    total = sum(want.values())
    if want == got:
        report(True, "copy_t through PgCrab equals the oracle's (%d rows)" % total)
    else:
        missing, extra = want - got, got - want
        report(False, "copy_t through PgCrab differs from the oracle's: %d rows missing, %d extra;"
               " first missing %r, first extra %r" % (
                   sum(missing.values()), sum(extra.values()),
                   next(iter(missing), None), next(iter(extra), None)))
    if a.shards:
        ok, what = check_placement(a, cols, total)
        report(ok, what)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
