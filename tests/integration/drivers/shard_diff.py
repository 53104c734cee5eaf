#!/usr/bin/python3
"""Differential test of the sharding router: one oracle, one sharded database.

The same schema and rows go into a database sharded by PgCrab (the target)
and into one plain PostgreSQL database (the oracle). Then a few hundred
generated statements run on both, in the same order, and their answers are
compared: columns (names and type OIDs), rows, command tags and, after a
write, the tables' contents read straight from the shards. Everything comes
from one seed, so a mismatch can be replayed.

Rows are compared as ordered lists when the statement's ORDER BY fixes the
order (the generator ends every ORDER BY with the table's key), else as
multisets. Numerics compare as Decimal values (an avg() within 1e-12
relative: its last digits depend on how the division is done); floats
within 1e-9 relative.

Prints TAP: one "ok - " per class of statements, a "not ok - " per
mismatch (the first --max-report in detail) and "# shard_diff: N queries,
M mismatches". Exit status 1 on any mismatch.

  shard_diff.py --target DSN --oracle DSN [--shard DSN ...] [--seed N]
                [--scale F] [--direct] [--label NAME]

--shard gives each shard's own database (in shard order) for the checks
that must not go through PgCrab: contents after writes, every reference
copy, and each row on the shard its key hashes to. --direct: the target is
plain PostgreSQL too (proves the generator and the comparison); --fault
spoils the target's answers on purpose (the comparison must say so).
"""

import argparse
import os
import datetime
import decimal
import math
import random
import sys
import threading

import psycopg

STATEMENT_TIMEOUT = 30  # seconds before a statement is cancelled
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

WORDS = [
    "alpha", "beta", "gamma", "delta", "crab", "Krabs", "plankton", "money",
    "Zoë", "Ørsted", "naïve", "日本語", "Ελλάδα", "O'Brien", "back\\slash",
    "ÄÖÜ", "emoji 🦀", "", "two  spaces", "MiXeD", "zeta", "Ω", "a", "B",
]

ACCOUNTS_DDL = """CREATE TABLE accounts (
    id int8 PRIMARY KEY,
    tenant int8,
    name text NOT NULL,
    balance numeric(12,2),
    score float8,
    flag bool,
    created timestamptz,
    note text NULL)"""
ITEMS_DDL = """CREATE TABLE items (
    tenant_id int8 NOT NULL,
    id text NOT NULL,
    qty int4,
    price numeric(10,2),
    label text,
    PRIMARY KEY (tenant_id, id))"""
TENANTS_DDL = """CREATE TABLE tenants (
    tenant int8 PRIMARY KEY,
    tname text NOT NULL,
    region text)"""
ACC_COLS = ["id", "tenant", "name", "balance", "score", "flag", "created", "note"]
ITEM_COLS = ["tenant_id", "id", "qty", "price", "label"]
TEN_COLS = ["tenant", "tname", "region"]
KEYS = {"accounts": ["id"], "items": ["tenant_id", "id"]}
PROBES = {  # on each shard: a hash-partitioned table whose key matches, for
    # satisfies_hash_partition() (it needs a partitioned table's OID)
    "accounts": "CREATE TABLE shard_diff_probe_accounts (id int8) PARTITION BY HASH (id)",
    "items": "CREATE TABLE shard_diff_probe_items (tenant_id int8, id text) "
    "PARTITION BY HASH (tenant_id, id)",
}


def lit(v):
    """A SQL literal for a Python value."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "'NaN'::float8"
        if math.isinf(v):
            return "'Infinity'::float8" if v > 0 else "'-Infinity'::float8"
        return repr(v)
    if isinstance(v, datetime.datetime):
        return "'" + v.isoformat(sep=" ") + "'"
    return "'" + str(v).replace("'", "''") + "'"


class Stmt:
    """One generated statement (or transaction) and how to judge it.

    mode: ordered | multiset | limit (a LIMIT without a total order: the
    count, and every row in the full answer) | refuse (SQLSTATE 0A000) |
    refuse_key (any error that names the table and its key) | maybe (the
    oracle's answer, or a 0A000 refusal) | txn (subs run in BEGIN ...
    COMMIT/ROLLBACK).
    proto: simple (no parameters: the simple query protocol) | params
    (extended, parameters) | prepared (a named prepared statement) |
    binary (extended, results in binary)."""

    def __init__(self, cls, sql, params=None, mode="multiset", proto=None,
                 writes=(), full_sql=None, subs=None, end=None):
        self.cls = cls
        self.sql = sql
        self.params = params
        self.mode = mode
        self.proto = proto or ("params" if params is not None else "simple")
        self.writes = writes  # tables whose contents are compared afterwards
        self.full_sql = full_sql
        self.subs = subs or []
        self.end = end
        self.loose = "avg(" in sql


class Outcome:
    def __init__(self, cols=None, rows=None, status=None, err=None, lost=False):
        self.cols, self.rows, self.status = cols, rows, status
        self.err = err  # (sqlstate, message) or None
        self.lost = lost

    def show(self, n=5):
        if self.err:
            return "ERROR %s: %s" % self.err
        head = "%s cols=%s" % (self.status, self.cols)
        if self.rows is None:
            return head
        return head + " rows[:%d]=%r" % (n, self.rows[:n])


class Side:
    """A connection that survives its server's errors: a lost connection is
    opened again for the next statement."""

    def __init__(self, name, dsn, fault=None):
        self.name, self.dsn = name, dsn
        self.fault = fault
        self.conn = None
        self.connect()

    def connect(self):
        self.conn = psycopg.connect(self.dsn, autocommit=True)

    def run(self, st, sql=None):
        sql = sql or st.sql
        if self.conn.closed:
            try:
                self.connect()
            except psycopg.Error as e:
                return Outcome(err=("08000", "reconnect failed: %s" % e), lost=True)
        timer = threading.Timer(STATEMENT_TIMEOUT, self.cancel)
        timer.start()
        try:
            cur = self.conn.cursor()
            if st.proto == "prepared":
                cur.execute(sql, st.params, prepare=True)
            elif st.proto == "binary":
                cur.execute(sql, st.params, binary=True)
            elif st.params is not None:
                cur.execute(sql, st.params)
            else:
                cur.execute(sql)
            cols = None
            rows = None
            if cur.description is not None:
                cols = [(d.name, d.type_code) for d in cur.description]
                rows = [tuple(r) for r in cur.fetchall()]
                if self.fault:
                    rows = spoil(self.fault, rows)
            return Outcome(cols, rows, cur.statusmessage)
        except psycopg.Error as e:
            lost = self.conn.closed or isinstance(e, psycopg.OperationalError) and e.sqlstate is None
            return Outcome(err=(e.sqlstate or "?????", str(e).strip().splitlines()[0] if str(e).strip() else repr(e)),
                           lost=lost)
        finally:
            timer.cancel()

    def cancel(self):
        try:
            self.conn.cancel()
        except Exception:
            pass

    def alive(self):
        o = self.run(Stmt("alive", "SELECT 1"))
        return o.err is None and o.rows == [(1,)]


def spoil(fault, rows):
    """--fault: a wrong answer on purpose, to show the comparison sees it."""
    if len(rows) < 2:
        return rows
    rows = list(rows)
    if fault == "drop_row":
        rows.pop()
    elif fault == "swap":
        rows[0], rows[1] = rows[1], rows[0]
    elif fault in ("float", "decimal"):
        kind = float if fault == "float" else decimal.Decimal
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if isinstance(v, kind) and v == v and abs(v) < 1e300:
                    bumped = v * (1 + 1e-7) + 1e-6 if kind is float else v + decimal.Decimal("0.01")
                    rows[i] = row[:j] + (bumped,) + row[j + 1:]
                    return rows
    return rows


# ---- comparing answers ------------------------------------------------------

def sort_key(row):
    """Orders rows of one column layout, NULLs and NaN included; floats and
    avg() numerics rounded so that values within tolerance sort together."""
    out = []
    for v in row:
        if v is None:
            out.append((0, 0))
        elif isinstance(v, float):
            out.append((1, 1) if math.isnan(v) else (2, float("%.6g" % v)))
        elif isinstance(v, decimal.Decimal):
            out.append((3, float("%.9g" % v)))
        elif isinstance(v, bool):
            out.append((4, int(v)))
        else:
            out.append((5, v))
    return out


def value_eq(a, b, loose):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-7)
    if isinstance(a, decimal.Decimal) and isinstance(b, decimal.Decimal):
        if a.is_nan() or b.is_nan():
            return a.is_nan() and b.is_nan()
        if loose:
            return abs(a - b) <= max(abs(a), abs(b)) * decimal.Decimal("1e-12") + decimal.Decimal("1e-12")
        return a == b
    return type(a) is type(b) and a == b


def rows_eq(ra, rb, ordered, loose):
    """None when equal, else where they differ."""
    if len(ra) != len(rb):
        return "%d rows vs %d" % (len(ra), len(rb))
    if not ordered:
        ra, rb = sorted(ra, key=sort_key), sorted(rb, key=sort_key)
    for i, (x, y) in enumerate(zip(ra, rb)):
        if len(x) != len(y) or not all(value_eq(p, q, loose) for p, q in zip(x, y)):
            return "row %d: %r vs %r" % (i, x, y)
    return None


def subset_of(part, whole, loose):
    pool = sorted(whole, key=sort_key)
    for r in part:
        k = sort_key(r)
        hit = next((i for i, w in enumerate(pool) if sort_key(w) == k and rows_eq([w], [r], True, loose) is None), None)
        if hit is None:
            return "row %r is not in the full answer" % (r,)
        pool.pop(hit)
    return None


def compare(st, t, o):
    """None when the target's outcome matches the oracle's, else why not."""
    if t.err or o.err:
        if t.err and o.err:
            return None if t.err[0] == o.err[0] else "SQLSTATE %s vs %s" % (t.err[0], o.err[0])
        return "one side failed"
    if t.cols != o.cols:
        return "columns %s vs %s" % (t.cols, o.cols)
    if t.status != o.status and st.mode != "limit":
        return "command tag %r vs %r" % (t.status, o.status)
    if t.rows is None or o.rows is None:
        return None if t.rows is None and o.rows is None else "rows vs none"
    return rows_eq(t.rows, o.rows, st.mode == "ordered", st.loose)


# ---- the data ----------------------------------------------------------------

class Model:
    """What the generator knows of the data: enough to pick keys that
    exist; it never reads an answer, so the statements depend on the seed
    alone."""

    def __init__(self, rng):
        self.rng = rng
        self.acc_ids = []
        self.acc_set = set()
        self.item_keys = []
        self.item_set = set()
        self.tenants = list(range(1, 41))

    def new_acc_id(self):
        r = self.rng
        while True:
            p = r.random()
            if p < 0.6:
                v = r.randint(1, 20000)
            elif p < 0.8:
                v = -r.randint(1, 20000)
            else:
                v = r.randint(INT64_MIN, INT64_MAX)
            if v not in self.acc_set:
                self.acc_set.add(v)
                self.acc_ids.append(v)
                return v

    def new_item_key(self):
        r = self.rng
        while True:
            t = r.choice(self.tenants) if r.random() < 0.9 else r.choice([0, -7, INT64_MAX, INT64_MIN, 10**12])
            if r.random() < 0.8:
                k = "k%d" % r.randint(0, 5000)
            else:
                k = r.choice(WORDS) + str(r.randint(0, 50))
            if (t, k) not in self.item_set:
                self.item_set.add((t, k))
                self.item_keys.append((t, k))
                return t, k

    def some_acc_id(self):
        r = self.rng
        if r.random() < 0.85 and self.acc_ids:
            return r.choice(self.acc_ids)
        return r.choice([r.randint(-30000, 30000), 0, INT64_MIN, INT64_MAX, r.randint(INT64_MIN, INT64_MAX)])

    def some_item_key(self):
        r = self.rng
        if r.random() < 0.85 and self.item_keys:
            return r.choice(self.item_keys)
        return (r.choice(self.tenants), "k%d" % r.randint(0, 9000))

    def account(self, id_=None):
        r = self.rng
        special = r.random() < 0.004
        return (
            self.new_acc_id() if id_ is None else id_,
            None if r.random() < 0.03 else r.choice(self.tenants),
            r.choice(WORDS) + ("" if r.random() < 0.3 else " %d" % r.randint(0, 999)),
            None if r.random() < 0.05 else decimal.Decimal(r.randint(-10**7, 10**7)) / 100,
            r.choice([float("nan"), float("inf"), float("-inf"), 0.0, -0.0]) if special
            else None if r.random() < 0.05 else r.uniform(-1000, 1000),
            None if r.random() < 0.1 else r.random() < 0.5,
            None if r.random() < 0.05 else datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
            + datetime.timedelta(seconds=r.randint(0, 5 * 365 * 86400), microseconds=r.randint(0, 999999)),
            None if r.random() < 0.3 else " ".join(r.choice(WORDS) for _ in range(r.randint(1, 3))),
        )

    def item(self):
        r = self.rng
        t, k = self.new_item_key()
        return (
            t, k,
            None if r.random() < 0.05 else r.randint(-100, 10**6),
            None if r.random() < 0.05 else decimal.Decimal(r.randint(-10**6, 10**6)) / 100,
            None if r.random() < 0.3 else r.choice(WORDS),
        )


def insert_sql(table, cols, rows, style):
    """A multi-row INSERT: literals, or %t / %b / %s placeholders."""
    if style == "literal":
        vals = ",\n  ".join("(" + ", ".join(lit(v) for v in row) + ")" for row in rows)
        return "INSERT INTO %s (%s) VALUES\n  %s" % (table, ", ".join(cols), vals), None
    ph = {"text": "%t", "binary": "%b", "auto": "%s"}[style]
    vals = ", ".join("(" + ", ".join([ph] * len(cols)) + ")" for _ in rows)
    return "INSERT INTO %s (%s) VALUES %s" % (table, ", ".join(cols), vals), [v for row in rows for v in row]


# ---- the statements ----------------------------------------------------------

ACC_SORTABLE = ["tenant", "name", "balance", "score", "flag", "created", "note"]
ACC_AGGS = ["count(*)", "count(note)", "count(score)", "count(flag)", "sum(balance)", "sum(tenant)",
            "sum(score)", "min(name)", "max(name)", "min(created)", "max(created)", "min(balance)",
            "max(balance)", "min(score)", "max(score)", "avg(balance)", "avg(score)", "avg(tenant)",
            "bool_and(flag)", "bool_or(flag)", "min(id)", "max(id)", "min(note)", "max(tenant)"]
ITEM_AGGS = ["count(*)", "sum(qty)", "sum(price)", "avg(qty)", "avg(price)", "min(id)", "max(id)",
             "min(label)", "max(price)", "count(label)"]


class Gen:
    def __init__(self, rng, model):
        self.r, self.m = rng, model

    # -- pieces
    def acc_select_list(self, always=()):
        cols = [c for c in ACC_COLS if self.r.random() < 0.5] or ["id"]
        cols = list(dict.fromkeys(list(always) + cols))
        self.r.shuffle(cols)
        return cols

    def order_item(self, col):
        d = self.r.choice(["", " ASC", " DESC"])
        n = self.r.choice(["", "", " NULLS FIRST", " NULLS LAST"])
        return col + d + n

    def acc_order_by(self, key="id"):
        cols = self.r.sample(ACC_SORTABLE, self.r.randint(1, 3))
        return [self.order_item(c) for c in cols] + [key + self.r.choice(["", " DESC"])]

    def acc_where_nokey(self):
        r = self.r
        opts = [
            lambda: "balance BETWEEN %s AND %s" % tuple(sorted([r.randint(-100000, 100000), r.randint(-100000, 100000)])),
            lambda: "score > %r" % r.uniform(-1000, 1000),
            lambda: "score <= %r" % r.uniform(-1000, 1000),
            lambda: "tenant IN (%s)" % ", ".join(str(r.choice(self.m.tenants)) for _ in range(r.randint(1, 4))),
            lambda: "tenant = %d" % r.choice(self.m.tenants),
            lambda: "created >= '%d-%02d-01'" % (r.randint(2020, 2024), r.randint(1, 12)),
            lambda: "name >= %s" % lit(r.choice(WORDS)),
            lambda: "note IS NULL",
            lambda: "note IS NOT NULL",
            lambda: "flag",
            lambda: "NOT flag",
            lambda: "flag IS NULL",
            lambda: "id BETWEEN %d AND %d" % tuple(sorted([r.randint(-20000, 20000), r.randint(-20000, 20000)])),
            lambda: "name LIKE %s" % lit(r.choice("abcdkmpzKOÄ") + "%"),
        ]
        w = r.choice(opts)()
        if r.random() < 0.3:
            w = "(%s) %s %s" % (w, r.choice(["AND", "OR"]), r.choice(opts)())
        return w

    def key_params(self, n):
        return self.r.choice(["%t", "%b", "%s"]), n

    # -- classes
    def point(self):
        r, k = self.r, self.m.some_acc_id()
        cols = ", ".join(self.acc_select_list())
        form = r.randint(0, 7)
        if form == 0:
            w = "id = %s" % lit(k)
        elif form == 1:
            w = "%s = id" % lit(k)
        elif form == 2:
            w = "id = '%d'" % k
        elif form == 3:
            w = "accounts.id = %s AND (flag IS NOT NULL OR note IS NULL)" % lit(k)
        elif form == 4:
            return Stmt("point", "SELECT %s FROM public.accounts WHERE id = %s" % (cols, lit(k)))
        elif form == 5:
            return Stmt("point", "SELECT a.id, a.name FROM accounts AS a WHERE a.id = %s" % lit(k))
        elif form == 6:
            w = "id = %s AND balance IS NOT NULL" % lit(k)
        else:
            return Stmt("point", "SELECT count(*), count(DISTINCT tenant), sum(balance) FROM accounts WHERE id = %s" % lit(k))
        return Stmt("point", "SELECT %s FROM accounts WHERE %s" % (cols, w))

    def point_params(self, proto):
        r, k = self.r, self.m.some_acc_id()
        ph = {"params": r.choice(["%t", "%b", "%s"]), "prepared": "%s", "binary": "%s"}[proto]
        cols = ", ".join(self.acc_select_list())
        if r.random() < 0.3:
            sql = "SELECT %s FROM accounts WHERE id = %s AND tenant IS DISTINCT FROM %s" % (cols, ph, ph)
            return Stmt("point_" + proto, sql, [k, r.choice(self.m.tenants)], proto=proto)
        # the same text each time for prepared: one Parse, many Binds
        if proto == "prepared":
            sql = "SELECT id, tenant, name, balance, score, flag, created, note FROM accounts WHERE id = %s"
        else:
            sql = "SELECT %s FROM accounts WHERE id = %s" % (cols, ph)
        return Stmt("point_" + proto, sql, [k], proto=proto)

    def point_items(self):
        r = self.r
        t, k = self.m.some_item_key()
        form = r.randint(0, 5)
        if form == 0:
            return Stmt("point_items", "SELECT * FROM items WHERE tenant_id = %s AND id = %s" % (lit(t), lit(k)))
        if form == 1:
            return Stmt("point_items", "SELECT qty, label FROM items WHERE id = %s AND tenant_id = %s" % (lit(k), lit(t)))
        if form == 2:
            return Stmt("point_items", "SELECT * FROM items WHERE tenant_id = %t AND id = %t", [t, k])
        if form == 3:
            return Stmt("point_items", "SELECT * FROM items WHERE id = %b AND tenant_id = %b", [k, t])
        if form == 4:
            return Stmt("point_items", "SELECT tenant_id, id, price FROM items WHERE tenant_id = %s AND id = %s",
                        [t, k], proto="prepared")
        # part of the key only: every shard
        return Stmt("point_items", "SELECT * FROM items WHERE tenant_id = %s ORDER BY id" % lit(t), mode="ordered")

    def in_list(self):
        r = self.r
        ks = [self.m.some_acc_id() for _ in range(r.randint(1, 10))]
        cols = ", ".join(self.acc_select_list())
        form = r.randint(0, 4)
        if form == 0:
            return Stmt("in_list", "SELECT %s FROM accounts WHERE id IN (%s)" % (cols, ", ".join(lit(k) for k in ks)))
        if form == 1:
            ph = r.choice(["%t", "%b"])
            return Stmt("in_list", "SELECT %s FROM accounts WHERE id IN (%s)" % (cols, ", ".join([ph] * len(ks))), ks)
        if form == 2:
            return Stmt("in_list", "SELECT %s FROM accounts WHERE id = ANY(%%s)" % cols, [ks])
        if form == 3:
            ob = ", ".join(self.acc_order_by())
            return Stmt("in_list", "SELECT %s FROM accounts WHERE id IN (%s) ORDER BY %s"
                        % (cols, ", ".join(lit(k) for k in ks), ob), mode="ordered")
        keys = [self.m.some_item_key() for _ in range(r.randint(1, 6))]
        return Stmt("in_list", "SELECT * FROM items WHERE (tenant_id, id) IN (%s)"
                    % ", ".join("(%s, %s)" % (lit(t), lit(k)) for t, k in keys))

    def range_scan(self):
        r = self.r
        if r.random() < 0.2:
            lo = r.randint(0, 10**5)
            return Stmt("range", "SELECT * FROM items WHERE qty BETWEEN %d AND %d OR label = %s"
                        % (lo, lo + r.randint(0, 10**5), lit(r.choice(WORDS))))
        return Stmt("range", "SELECT %s FROM accounts WHERE %s" % (", ".join(self.acc_select_list()), self.acc_where_nokey()))

    def order(self):
        r = self.r
        ob = self.acc_order_by()
        # sort columns left out of the select list half the time
        cols = self.acc_select_list()
        where = " WHERE " + self.acc_where_nokey() if r.random() < 0.5 else ""
        if r.random() < 0.1:
            return Stmt("order", "SELECT id, name, balance FROM accounts%s ORDER BY 3 DESC NULLS LAST, 2, 1" % where,
                        mode="ordered")
        if r.random() < 0.1:
            return Stmt("order", "SELECT * FROM items ORDER BY %s, %s, tenant_id, id"
                        % (self.order_item("price"), self.order_item("label")), mode="ordered")
        return Stmt("order", "SELECT %s FROM accounts%s ORDER BY %s" % (", ".join(cols), where, ", ".join(ob)),
                    mode="ordered")

    def order_expr(self):
        # sorts on an expression: the merge needs the value; PgCrab may
        # refuse (0A000) rather than merge it, but must never answer wrong
        e = self.r.choice(["abs(balance)", "lower(name)", "balance * -1", "coalesce(note, name)",
                           "tenant % 7", "length(name)"])
        return Stmt("order_expr", "SELECT id, name, balance FROM accounts ORDER BY %s, id" % self.order_item(e),
                    mode="maybe")

    def limit(self):
        r = self.r
        n, k = r.randint(0, 60), r.randint(0, 200)
        ob = ", ".join(self.acc_order_by())
        cols = ", ".join(self.acc_select_list())
        where = " WHERE " + self.acc_where_nokey() if r.random() < 0.4 else ""
        form = r.randint(0, 5)
        if form == 0:
            tail = "LIMIT %d" % n
        elif form == 1:
            tail = "OFFSET %d" % k
        elif form == 2:
            tail = "OFFSET %d ROWS FETCH FIRST %d ROWS ONLY" % (k, n)
        elif form == 3:
            return Stmt("limit", "SELECT %s FROM accounts%s ORDER BY %s LIMIT %%s OFFSET %%s"
                        % (cols, where.replace("%", "%%"), ob),
                        [n, k], mode="ordered")
        else:
            tail = "LIMIT %d OFFSET %d" % (n, k)
        return Stmt("limit", "SELECT %s FROM accounts%s ORDER BY %s %s" % (cols, where, ob, tail), mode="ordered")

    def limit_unordered(self):
        n = self.r.randint(1, 40)
        cols = ", ".join(self.acc_select_list())
        base = "SELECT %s FROM accounts WHERE %s" % (cols, self.acc_where_nokey())
        return Stmt("limit_unordered", "%s LIMIT %d" % (base, n), mode="limit", full_sql=base)

    def agg(self):
        r = self.r
        if r.random() < 0.2:
            aggs = r.sample(ITEM_AGGS, r.randint(1, 4))
            where = " WHERE tenant_id = %s" % lit(r.choice(self.m.tenants)) if r.random() < 0.5 else ""
            return Stmt("agg", "SELECT %s FROM items%s" % (", ".join(aggs), where))
        aggs = r.sample(ACC_AGGS, r.randint(1, 5))
        form = r.randint(0, 4)
        if form == 0:
            where = ""
        elif form == 1:
            where = " WHERE " + self.acc_where_nokey()
        elif form == 2:
            where = " WHERE id IN (%s)" % ", ".join(lit(self.m.some_acc_id()) for _ in range(r.randint(1, 6)))
        elif form == 3:
            where = " WHERE balance > 99999999"  # no row: count 0, the rest NULL
        else:
            where = " WHERE id = %s" % lit(self.m.some_acc_id())
        return Stmt("agg", "SELECT %s FROM accounts%s" % (", ".join(aggs), where))

    def agg_group(self):
        r = self.r
        group = r.choice([["tenant"], ["flag"], ["tenant", "flag"], ["flag", "tenant"]])
        aggs = r.sample(ACC_AGGS, r.randint(1, 4))
        sel = list(group) + aggs
        if r.random() < 0.2:  # the group key not first in the select list
            r.shuffle(sel)
        where = " WHERE " + self.acc_where_nokey() if r.random() < 0.3 else ""
        having = ""
        if r.random() < 0.5:
            having = " HAVING " + r.choice([
                "count(*) > %d" % r.randint(0, 120),
                "sum(balance) > %d" % r.randint(-200000, 200000),
                "max(name) >= %s" % lit(r.choice(WORDS)),
                "avg(score) > %r" % r.uniform(-100, 100),
                "bool_or(flag)",
                "min(created) < '2020-03-01'",
                "count(note) BETWEEN 10 AND 60",
            ])
        form = r.randint(0, 3)
        if form == 0:
            tail, mode = "", "multiset"
        elif form == 1:
            tail, mode = " ORDER BY " + ", ".join(self.order_item(g) for g in group), "ordered"
        elif form == 2:
            tail = " ORDER BY count(*) DESC, " + ", ".join(self.order_item(g) for g in group)
            mode = "ordered"
        else:  # a LIMIT over merged groups: wrong if pushed below the grouping
            tail = " ORDER BY count(*) DESC, %s LIMIT %d" % (", ".join(group), r.randint(1, 8))
            mode = "ordered"
        return Stmt("agg_group", "SELECT %s FROM accounts%s GROUP BY %s%s%s"
                    % (", ".join(sel), where, ", ".join(group), having, tail), mode=mode)

    def agg_expr(self):
        # expressions over aggregates and over a grouping expression: merged
        # right, or refused
        r = self.r
        return Stmt("agg_expr", r.choice([
            "SELECT sum(balance) / nullif(count(balance), 0) AS mean FROM accounts",
            "SELECT count(*) + 1, max(id) - min(id) FROM accounts",
            "SELECT tenant, coalesce(sum(balance), 0) * 2 FROM accounts GROUP BY tenant",
            "SELECT date_trunc('year', created) AS y, count(*) FROM accounts GROUP BY 1 ORDER BY 1 NULLS FIRST",
            "SELECT note IS NULL AS no_note, count(*) FROM accounts GROUP BY 1",
            "SELECT tenant, max(balance) FILTER (WHERE flag) FROM accounts GROUP BY tenant",
            "SELECT DISTINCT ON (tenant) tenant, id, name FROM accounts ORDER BY tenant, id",
        ]), mode="maybe")

    def distinct(self):
        r = self.r
        cols = r.choice([["tenant"], ["flag"], ["flag", "tenant"], ["note"], ["tenant", "flag"]])
        where = " WHERE " + self.acc_where_nokey() if r.random() < 0.3 else ""
        sql = "SELECT DISTINCT %s FROM accounts%s" % (", ".join(cols), where)
        if r.random() < 0.5:
            sql += " ORDER BY " + ", ".join(self.order_item(c) for c in cols)
            if r.random() < 0.4:
                sql += " LIMIT %d" % r.randint(1, 10)
            return Stmt("distinct", sql, mode="ordered")
        if r.random() < 0.2:
            return Stmt("distinct", "SELECT DISTINCT label FROM items WHERE tenant_id = %s" % lit(r.choice(self.m.tenants)))
        return Stmt("distinct", sql)

    def join(self):
        r = self.r
        form = r.randint(0, 5)
        if form == 0:
            return Stmt("join", "SELECT a.id, a.name, t.tname, t.region FROM accounts a JOIN tenants t "
                        "ON t.tenant = a.tenant WHERE a.id = %s" % lit(self.m.some_acc_id()))
        if form == 1:
            return Stmt("join", "SELECT a.id, t.tname FROM accounts a LEFT JOIN tenants t "
                        "ON t.tenant = a.tenant WHERE a.id = %s", [self.m.some_acc_id()])
        if form == 2:
            t, k = self.m.some_item_key()
            return Stmt("join", "SELECT i.id, i.qty, t.tname FROM items i JOIN tenants t ON t.tenant = i.tenant_id "
                        "WHERE i.tenant_id = %s AND i.id = %s" % (lit(t), lit(k)))
        if form == 3:
            ks = [self.m.some_acc_id() for _ in range(r.randint(2, 8))]
            return Stmt("join", "SELECT a.id, a.balance, t.region FROM accounts a JOIN tenants t "
                        "ON t.tenant = a.tenant WHERE a.id IN (%s)" % ", ".join(lit(k) for k in ks))
        if form == 4:
            return Stmt("join", "SELECT t.region, count(*), sum(a.balance) FROM accounts a JOIN tenants t "
                        "ON t.tenant = a.tenant GROUP BY t.region ORDER BY t.region NULLS FIRST", mode="ordered")
        return Stmt("join", "SELECT * FROM accounts WHERE id = %s AND tenant IN "
                    "(SELECT tenant FROM tenants WHERE region = 'eu')" % lit(self.m.some_acc_id()))

    def reference(self):
        r = self.r
        sql = r.choice([
            "SELECT * FROM tenants ORDER BY tenant",
            "SELECT region, count(*) FROM tenants GROUP BY region ORDER BY region NULLS FIRST",
            "SELECT count(*), min(tname), max(tenant) FROM tenants",
            "SELECT tname FROM tenants WHERE tenant = %d" % r.choice(self.m.tenants),
            "SELECT * FROM tenants WHERE region IS NULL",
        ])
        return Stmt("reference", sql, mode="ordered" if "ORDER BY" in sql else "multiset")

    def binary_results(self):
        # binary result format: the merge compares binary values
        r = self.r
        form = r.randint(0, 2)
        if form == 0:
            return Stmt("binary_results", "SELECT %s FROM accounts WHERE id = %%s" % ", ".join(self.acc_select_list()),
                        [self.m.some_acc_id()], proto="binary")
        if form == 1:
            return Stmt("binary_results", "SELECT %s FROM accounts ORDER BY %s LIMIT %d"
                        % (", ".join(self.acc_select_list()), ", ".join(self.acc_order_by()), r.randint(1, 50)),
                        [], proto="binary", mode="ordered")
        return Stmt("binary_results", "SELECT tenant, count(*), sum(balance), min(score) FROM accounts GROUP BY tenant",
                    [], proto="binary")

    # -- writes
    def insert(self):
        r = self.r
        style = r.choice(["literal", "literal", "text", "binary", "auto"])
        conflict = r.random() < 0.1 and self.m.acc_ids
        if r.random() < 0.3:
            rows = [self.m.item() for _ in range(r.randint(1, 25))]
            if conflict and self.m.item_keys:  # an existing key: fails on its shard only
                rows.insert(r.randint(0, len(rows)), r.choice(self.m.item_keys) + (1, decimal.Decimal("1.00"), "dup"))
            sql, params = insert_sql("items", ITEM_COLS, rows, style)
            return Stmt("insert", sql, params, writes=("items",))
        rows = [self.m.account() for _ in range(r.randint(1, 30))]
        if conflict:  # fails on one shard: no row may stay on the others
            rows.insert(r.randint(0, len(rows)), self.m.account(r.choice(self.m.acc_ids)))
        sql, params = insert_sql("accounts", ACC_COLS, rows, style)
        if r.random() < 0.3:
            sql += " RETURNING id, balance, name"
        return Stmt("insert", sql, params, writes=("accounts",))

    def update(self):
        r = self.r
        sets = r.choice(["balance = balance + 1.25", "note = 'updated', flag = NOT flag", "score = score * 2",
                         "note = NULL", "tenant = %d" % r.choice(self.m.tenants), "name = name || ' Ω'"])
        form = r.randint(0, 6)
        ret = " RETURNING id, note, balance" if r.random() < 0.25 else ""
        if form == 0:
            sql = "UPDATE accounts SET %s WHERE id = %s%s" % (sets, lit(self.m.some_acc_id()), ret)
            return Stmt("update", sql, writes=("accounts",))
        if form == 1:
            sql = "UPDATE accounts SET %s WHERE id = %%s%s" % (sets, ret)
            return Stmt("update", sql, [self.m.some_acc_id()], writes=("accounts",))
        if form == 2:
            ks = [self.m.some_acc_id() for _ in range(r.randint(2, 6))]
            sql = "UPDATE accounts SET %s WHERE id IN (%s)%s" % (sets, ", ".join(lit(k) for k in ks), ret)
            return Stmt("update", sql, writes=("accounts",))
        if form == 3:
            t, k = self.m.some_item_key()
            return Stmt("update", "UPDATE items SET qty = qty + 1, label = 'x' WHERE tenant_id = %s AND id = %s"
                        % (lit(t), lit(k)), writes=("items",))
        if form == 4:
            return Stmt("update", "UPDATE items SET price = price - 0.5 WHERE tenant_id = %s"
                        % lit(r.choice(self.m.tenants)), writes=("items",))
        # no key: every shard
        sql = "UPDATE accounts SET %s WHERE %s%s" % (sets, self.acc_where_nokey(), ret)
        return Stmt("update", sql, writes=("accounts",))

    def delete(self):
        r = self.r
        form = r.randint(0, 4)
        ret = " RETURNING *" if r.random() < 0.25 else ""
        if form == 0:
            return Stmt("delete", "DELETE FROM accounts WHERE id = %s%s" % (lit(self.m.some_acc_id()), ret),
                        writes=("accounts",))
        if form == 1:
            ks = [self.m.some_acc_id() for _ in range(r.randint(2, 6))]
            return Stmt("delete", "DELETE FROM accounts WHERE id IN (%s)%s" % (", ".join(["%t"] * len(ks)), ret), ks,
                        writes=("accounts",))
        if form == 2:
            t, k = self.m.some_item_key()
            return Stmt("delete", "DELETE FROM items WHERE tenant_id = %s AND id = %s", [t, k], writes=("items",))
        return Stmt("delete", "DELETE FROM accounts WHERE tenant = %d AND %s%s"
                    % (r.choice(self.m.tenants), self.acc_where_nokey(), ret), writes=("accounts",))

    def reference_write(self):
        r = self.r
        if r.random() < 0.5:
            t = max(self.m.tenants) + 1
            self.m.tenants.append(t)
            return Stmt("reference_write", "INSERT INTO tenants VALUES (%d, %s, %s)"
                        % (t, lit("tenant %d" % t), lit(r.choice(["eu", "us", None]))), writes=("tenants",))
        return Stmt("reference_write", "UPDATE tenants SET region = %s WHERE tenant %s"
                    % (lit(r.choice(["eu", "us", "apac", None])),
                       r.choice(["= %d" % r.choice(self.m.tenants), "> %d" % r.randint(1, 40)])), writes=("tenants",))

    def txn(self):
        r = self.r
        subs = []
        for _ in range(r.randint(2, 4)):
            p = r.random()
            if p < 0.35:
                sql, params = insert_sql("accounts", ACC_COLS, [self.m.account() for _ in range(r.randint(1, 3))],
                                         "literal")
                subs.append(Stmt("txn", sql, params))
            elif p < 0.6:
                subs.append(Stmt("txn", "UPDATE accounts SET balance = balance - 10 WHERE id = %s"
                                 % lit(self.m.some_acc_id())))
            elif p < 0.75:
                subs.append(Stmt("txn", "SELECT id, balance FROM accounts WHERE id = %s" % lit(self.m.some_acc_id())))
            elif p < 0.85:
                t, k = self.m.some_item_key()
                subs.append(Stmt("txn", "UPDATE items SET qty = 0 WHERE tenant_id = %s AND id = %s" % (lit(t), lit(k))))
            elif p < 0.93:
                subs.append(Stmt("txn", "DELETE FROM accounts WHERE id = %s" % lit(self.m.some_acc_id())))
            else:  # an error inside: the whole transaction is rolled back
                subs.append(Stmt("txn", "INSERT INTO accounts (id, name) VALUES (%s, 'dup')"
                                 % lit(r.choice(self.m.acc_ids))))
        end = "ROLLBACK" if r.random() < 0.25 else "COMMIT"
        text = "BEGIN; " + "; ".join(s.sql.replace("\n", " ") for s in subs) + "; " + end
        return Stmt("txn", text, mode="txn", subs=subs, end=end, writes=("accounts", "items"))

    def refuse(self):
        r = self.r
        return Stmt("refuse", r.choice([
            "SELECT id, row_number() OVER (ORDER BY id) FROM accounts",
            "SELECT tenant, sum(balance) OVER (PARTITION BY tenant) FROM accounts",
            "SELECT id, rank() OVER (ORDER BY balance) FROM accounts WHERE tenant = %d" % r.choice(self.m.tenants),
            "SELECT count(DISTINCT tenant) FROM accounts",
            "SELECT tenant, count(DISTINCT flag) FROM accounts GROUP BY tenant",
            "SELECT * FROM (SELECT id FROM accounts ORDER BY id LIMIT 5) s",
        ]), mode="refuse")

    def refuse_key(self):
        return Stmt("refuse_key", self.r.choice([
            "INSERT INTO accounts (tenant, name) VALUES (1, 'no key')",
            "INSERT INTO items (qty, label) VALUES (1, 'no key')",
        ]), mode="refuse_key")


# how many of each, at --scale 1
PLAN = [
    ("point", 30, Gen.point), ("point_params", 20, lambda g: g.point_params("params")),
    ("point_prepared", 20, lambda g: g.point_params("prepared")), ("point_items", 25, Gen.point_items),
    ("in_list", 20, Gen.in_list), ("range", 20, Gen.range_scan), ("order", 30, Gen.order),
    ("order_expr", 6, Gen.order_expr), ("limit", 25, Gen.limit), ("limit_unordered", 6, Gen.limit_unordered),
    ("agg", 25, Gen.agg), ("agg_group", 30, Gen.agg_group), ("agg_expr", 7, Gen.agg_expr),
    ("distinct", 15, Gen.distinct), ("join", 15, Gen.join), ("reference", 6, Gen.reference),
    ("binary_results", 8, Gen.binary_results), ("insert", 15, Gen.insert), ("update", 15, Gen.update),
    ("delete", 10, Gen.delete), ("reference_write", 4, Gen.reference_write), ("txn", 8, Gen.txn),
    ("refuse", 8, Gen.refuse), ("refuse_key", 2, Gen.refuse_key),
]


# ---- running ------------------------------------------------------------------

class Diff:
    def __init__(self, args):
        self.args = args
        self.target = Side("pgcrab" if not args.direct else "target", args.target, args.fault)
        self.oracle = Side("oracle", args.oracle)
        self.shards = [psycopg.connect(d, autocommit=True) for d in args.shard]
        self.stats = {}  # class -> [statements, mismatches, refused where allowed]
        self.mismatches = 0
        self.reported = 0

    def fail(self, st, why, t=None, o=None, label=None):
        self.mismatches += 1
        self.stats.setdefault(st.cls, [0, 0, 0])[1] += 1
        if self.reported >= self.args.max_report:
            return
        self.reported += 1
        q = " ".join(st.sql.split())
        print("not ok - %s %s: %s" % (self.args.label, label or st.cls, why[:300]))
        print("#   query: %s" % q[:3000])
        print("#   seed=%d protocol=%s params=%r" % (self.args.seed, st.proto, st.params))
        if t is not None:
            print("#   %s: %s" % (self.target.name, t.show()[:1500]))
        if o is not None:
            print("#   oracle: %s" % o.show()[:1500])
        sys.stdout.flush()

    # contents of a table: read from the shards themselves when given, so
    # a write's check does not rest on the merge it is also testing
    def contents(self, table):
        q = "SELECT * FROM %s" % table
        if self.shards:
            rows = []
            for c in self.shards:
                rows += [tuple(r) for r in c.execute(q).fetchall()]
        else:
            rows = self.target.conn.execute(q).fetchall()
        return rows, [tuple(r) for r in self.oracle.conn.execute(q).fetchall()]

    def check_contents(self, st, table):
        if table == "tenants" and self.shards:  # every shard holds a full copy
            want = [tuple(r) for r in self.oracle.conn.execute("SELECT * FROM tenants").fetchall()]
            for i, c in enumerate(self.shards):
                got = [tuple(r) for r in c.execute("SELECT * FROM tenants").fetchall()]
                d = rows_eq(got, want, False, False)
                if d:
                    return "shard %d's copy of tenants differs: %s" % (i, d)
            return None
        got, want = self.contents(table)
        d = rows_eq(got, want, False, False)
        return "contents of %s differ afterwards: %s" % (table, d) if d else None

    def placement(self):
        """Each row on the shard its key hashes to, by PostgreSQL's own
        satisfies_hash_partition() on a probe table of the same key."""
        n = len(self.shards)
        bad = []
        for table, keys in KEYS.items():
            for i, c in enumerate(self.shards):
                cnt = c.execute("SELECT count(*) FROM %s WHERE NOT satisfies_hash_partition("
                                "'shard_diff_probe_%s'::regclass, %d, %d, %s)"
                                % (table, table, n, i, ", ".join(keys))).fetchone()[0]
                if cnt:
                    bad.append("%s: %d rows on shard %d belong elsewhere" % (table, cnt, i))
        return bad

    def run_one(self, st):
        if os.environ.get("SHARD_DIFF_TRACE"):  # which statement a hang is in
            print("# run [%s %s %s]: %s %s" % (st.cls, st.mode, st.proto, st.sql, repr(st.params)), flush=True)
        self.stats.setdefault(st.cls, [0, 0, 0])[0] += 1
        if st.mode == "txn":
            return self.run_txn(st)
        t = self.target.run(st)
        if st.mode in ("refuse", "refuse_key") and not self.args.direct:
            o = None
            if st.mode == "refuse":
                ok = t.err is not None and t.err[0] == "0A000"
                why = "expected a refusal with SQLSTATE 0A000"
            else:
                table = "accounts" if "accounts" in st.sql else "items"
                ok = t.err is not None and table in t.err[1] and KEYS[table][0] in t.err[1].replace(table, "")
                why = "expected an error that names the table (%s) and its key (%s)" % (table, ", ".join(KEYS[table]))
            if not ok:
                self.fail(st, why, t)
            elif not self.target.alive():
                self.fail(st, "the connection is unusable after the refusal", t)
            return
        o = self.oracle.run(st)
        if t.lost:
            self.fail(st, "connection to %s lost" % self.target.name, t, o)
            return
        if st.mode == "maybe" and t.err and t.err[0] == "0A000":
            self.stats[st.cls][2] += 1
            return
        if st.mode == "limit" and not t.err and not o.err:
            full = self.oracle.run(Stmt(st.cls, st.full_sql))
            n = int(st.sql.rsplit("LIMIT", 1)[1])
            d = compare(st, t, o) if t.cols != o.cols else None
            if d is None and len(t.rows) != min(n, len(full.rows)):
                d = "%d rows, expected %d" % (len(t.rows), min(n, len(full.rows)))
            d = d or subset_of(t.rows, full.rows, st.loose)
        else:
            d = compare(st, t, o)
        if d:
            self.fail(st, d, t, o)
            return
        for table in st.writes:
            d = self.check_contents(st, table)
            if d:
                self.fail(st, d)
                return

    def run_txn(self, st):
        outs = []
        for side in (self.target, self.oracle):
            res = [side.run(Stmt("txn", "BEGIN"))]
            for s in st.subs:
                res.append(side.run(s))
            res.append(side.run(Stmt("txn", st.end)))
            outs.append(res)
        for i, (t, o) in enumerate(zip(*outs)):
            sub = Stmt("txn", "BEGIN") if i == 0 else st.subs[i - 1] if i <= len(st.subs) else Stmt("txn", st.end)
            d = compare(sub, t, o)
            if d:
                self.fail(st, "statement %d (%s): %s" % (i, sub.sql[:80], d), t, o)
                if self.target.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    self.target.run(Stmt("txn", "ROLLBACK"))
                return
        for table in st.writes:
            d = self.check_contents(st, table)
            if d:
                self.fail(st, d)
                return

    def setup(self):
        """Schema through the target (DDL reaches every shard), the probe
        tables straight on each shard; rows loaded identically."""
        ddl_ok = True
        for ddl in (ACCOUNTS_DDL, ITEMS_DDL, TENANTS_DDL):
            st = Stmt("setup", ddl)
            t, o = self.target.run(st), self.oracle.run(st)
            if t.err or o.err:
                print("not ok - %s setup: %s -> %s / oracle %s" % (self.args.label, ddl.split("(")[0],
                                                                     t.show(), o.show()))
                ddl_ok = False
        for c in self.shards:
            for p in PROBES.values():
                c.execute(p)
        if not ddl_ok:
            return False
        if self.shards:
            missing = [i for i, c in enumerate(self.shards)
                       if c.execute("SELECT count(*) FROM pg_tables WHERE tablename IN "
                                    "('accounts','items','tenants') AND schemaname = 'public'").fetchone()[0] != 3]
            if missing:
                print("not ok - %s setup: CREATE TABLE through PgCrab did not reach shard(s) %s" %
                      (self.args.label, missing))
                return False
        print("ok - %s setup: CREATE TABLE accounts, items, tenants through the target" % self.args.label)
        return True

    def load(self, rng, model):
        batches = []
        tenants = [(t, "tenant %d" % t, rng.choice(["eu", "us", "apac", None])) for t in model.tenants]
        batches.append(("tenants", TEN_COLS, tenants, "literal"))
        n_acc = int(3000 * self.args.scale)
        n_item = int(2000 * self.args.scale)
        edge = [model.account(v) for v in (INT64_MIN, INT64_MAX, 0, -1, 1) if v not in model.acc_set]
        for r in edge:
            model.acc_set.add(r[0])
            model.acc_ids.append(r[0])
        accs = edge + [model.account() for _ in range(n_acc - len(edge))]
        items = [model.item() for _ in range(n_item)]
        for table, cols, rows in (("accounts", ACC_COLS, accs), ("items", ITEM_COLS, items)):
            i = 0
            while i < len(rows):
                k = rng.randint(1, 120)
                style = rng.choice(["literal"] * 6 + ["text", "binary", "auto"])
                batches.append((table, cols, rows[i:i + k], style))
                i += k
        bad = 0
        for table, cols, rows, style in batches:
            sql, params = insert_sql(table, cols, rows, style)
            st = Stmt("load", sql, params)
            t, o = self.target.run(st), self.oracle.run(st)
            d = compare(st, t, o)
            if d:
                bad += 1
                self.fail(st, d, t, o, label="load")
        for table in ("tenants", "accounts", "items"):
            d = self.check_contents(Stmt("load", ""), table)
            if d:
                bad += 1
                self.fail(Stmt("load", "(after loading)"), d, label="load")
        if bad:
            return False
        print("ok - %s load: %d accounts, %d items, %d tenants in %d multi-row INSERTs"
              % (self.args.label, len(accs), len(items), len(tenants), len(batches)))
        return True

    def check_placement(self, when):
        if not self.shards:
            print("ok - %s placement %s # SKIP no shards to look at (--direct)" % (self.args.label, when))
            return
        bad = self.placement()
        if bad:
            for b in bad:
                print("not ok - %s placement %s: %s" % (self.args.label, when, b))
            self.mismatches += len(bad)
        else:
            print("ok - %s placement %s: every row of accounts and items on the shard its key hashes to "
                  "(satisfies_hash_partition, MODULUS %d)" % (self.args.label, when, len(self.shards)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--oracle", required=True)
    ap.add_argument("--shard", action="append", default=[])
    ap.add_argument("--seed", type=int, default=1313)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--direct", action="store_true")
    ap.add_argument("--label", default="shard_diff")
    ap.add_argument("--max-report", type=int, default=25)
    ap.add_argument("--fault", choices=["drop_row", "swap", "float", "decimal"],
                    help="spoil the target's answers (to see that the comparison catches it)")
    args = ap.parse_args()
    print("# %s: seed %d (SHARD_DIFF_SEED=%d to repeat), scale %g, %s" %
          (args.label, args.seed, args.seed, args.scale,
           "target is plain PostgreSQL (direct)" if args.direct else "%d shards" % len(args.shard)))
    sys.stdout.flush()
    rng = random.Random(args.seed)
    model = Model(rng)
    diff = Diff(args)
    if not diff.setup() or not diff.load(rng, model):
        print("# %s: stopped before the queries; seed %d" % (args.label, args.seed))
        return 1
    diff.check_placement("after the load")
    gen = Gen(rng, model)
    stmts = []
    for cls, n, fn in PLAN:
        for _ in range(max(1, int(round(n * args.scale)))):
            stmts.append((cls, fn))
    rng.shuffle(stmts)
    total = 0
    for cls, fn in stmts:
        st = fn(gen)
        st.cls = cls
        diff.run_one(st)
        total += 1
    diff.check_placement("after the writes")
    for cls, _, _ in PLAN:
        n, bad, refused = diff.stats.get(cls, [0, 0, 0])
        note = ""
        if refused:
            note = ", %d refused with 0A000 (allowed for this class)" % refused
        if args.direct and cls.startswith("refuse"):
            note += " # direct mode: PostgreSQL answers these; compared with the oracle instead"
        if bad:
            print("not ok - %s %s: %d of %d statements differ%s" % (args.label, cls, bad, n, note))
        else:
            print("ok - %s %s: %d statements match%s" % (args.label, cls, n, note))
    alive = diff.target.alive()
    if not alive:
        print("not ok - %s: the target answers SELECT 1 at the end" % args.label)
    print("# %s: %d queries, %d mismatches (seed %d)" % (args.label, total, diff.mismatches, args.seed))
    return 1 if diff.mismatches or not alive else 0


if __name__ == "__main__":
    sys.exit(main())
