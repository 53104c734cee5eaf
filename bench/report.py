#!/usr/bin/env python3
"""Turn one `make bench` result directory into report.md and tps.png.

Usage: report.py RESULT_DIR

Reads RESULT_DIR/runs.tsv (one line per pgbench run), memory.tsv (idle-client
test), sharded.tsv (pgbench by key, 2-shard against unsharded),
route_cost.tsv (bench/route_cost.c), merge.tsv (PgCrab's RSS during a
cross-shard merge) and meta.env (machine, versions, settings), all written
by bench/run.sh. Medians over the repeats of each (workload, clients,
target) cell; a cell with any failed run is reported as failed. Standard
library only; the plot is drawn by gnuplot.
"""

import csv
import os
import statistics
import subprocess
import sys

TARGETS = ["direct", "base-w2", "pgcrab-w1", "pgcrab-w2", "pgbouncer"]
LABELS = {
    "direct": "direct PostgreSQL",
    "base-w2": "base PgCrab --workers 2 (BENCH_BASE_BIN)",
    "pgcrab-w1": "PgCrab --workers 1",
    "pgcrab-w2": "PgCrab --workers 2",
    "pgbouncer": "PgBouncer",
}
WORKLOADS = {
    "select-simple": "select-only, simple protocol (`-S -M simple`)",
    "select-extended": "select-only, extended protocol (`-S -M extended`)",
    "select-prepared": "select-only, prepared statements (`-S -M prepared`)",
    "tpcb-extended": "TPC-B-like default script (`-M extended`)",
    "connect-simple": "new connection per transaction (`-C -S -M simple`)",
}
POOLERS = ["pgcrab-w1", "pgcrab-w2", "pgbouncer"]
SHARD_WORKLOADS = {
    "key-extended": "select by aid, `-M extended`",
    "key-prepared": "select by aid, `-M prepared`",
    "key-simple": "select by aid, `-M simple`",
}
ROUTE_STATEMENTS = {
    "select-by-aid-param": "`SELECT abalance FROM pgbench_accounts WHERE aid = $1`",
    "select-by-aid-literal": "`SELECT abalance FROM pgbench_accounts WHERE aid = 31337`",
    "update-by-aid-param": "`UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2`",
    "join-by-id-literal": "`SELECT * FROM accounts a JOIN payments p ON p.account_id = a.id "
                          "WHERE a.id = 42`",
}
MERGE_QUERIES = {
    "order-by-limit-100": "`SELECT id, x, payload FROM t ORDER BY x LIMIT 100`",
    "order-by-all": "`SELECT * FROM t ORDER BY x` (every row, to a client that reads them all)",
}
MERGE_LIMIT_KIB = 10 * 1024  # issue 13: less than 10 MB while it merges
META = {}


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=0, suffix=""):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}{suffix}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def ceiling(pc, pb):
    """The ratio to PgBouncer a pooler costing no CPU at all could reach when
    the machine's cores are the limit (both runs with under 0.2 of a core
    idle): PgBouncer's whole cost per transaction over what pgbench and
    PostgreSQL spent beside the cheaper of the two poolers."""
    if pc.rest is None or pb.rest is None or pb.cpu is None:
        return None
    if pc.idle is None or pb.idle is None or max(pc.idle, pb.idle) >= 0.2:
        return None
    rest = min(pc.rest, pb.rest)
    return (pb.rest + pb.cpu) / rest if rest > 0 else None


def needed(pc, pb, goal):
    """The CPU per transaction PgCrab may spend to reach goal × PgBouncer's
    rate when the cores are the limit, granting that pgbench and PostgreSQL
    cost beside it no more than beside the cheaper of the two poolers (as
    the ceiling does)."""
    if pc.rest is None or pb.rest is None or pb.cpu is None:
        return None
    return (pb.rest + pb.cpu) / goal - min(pc.rest, pb.rest)


def bound_cells(pc, pb, goal):
    """Table cells: rest µs/tx PgCrab / PgBouncer, idle cores, ceiling, the
    CPU PgCrab may spend for the goal, and the kernel's share of each."""
    return (f"{fmt(pc.rest, 0)} / {fmt(pb.rest, 0)} | {fmt(pc.idle, 2)} / {fmt(pb.idle, 2)} | "
            f"{fmt(ceiling(pc, pb), 2, '×')} | {fmt(needed(pc, pb, goal), 0)} | "
            f"{fmt(pc.sys, 0)} / {fmt(pb.sys, 0)}")


BOUND_TEXT = (
    "**rest** = pgbench's and PostgreSQL's own CPU per transaction beside each pooler, "
    "**idle** = idle cores of the machine during the run, **ceiling** = the ratio to "
    "PgBouncer that a pooler costing no CPU at all would reach when the cores are the "
    "limit (PgBouncer's rest + CPU over the smaller rest; shown only when under 0.2 "
    "of a core was idle); **needed** = the CPU per transaction PgCrab could spend and "
    "still reach the goal, with the same smaller rest (negative: not even at zero); **sys** = the pooler's own "
    "system (kernel) CPU per transaction, PgCrab / PgBouncer. A goal above the "
    "ceiling cannot be met on this machine by any pooler; one whose needed CPU is "
    "below what the kernel charges either pooler for its socket work cannot be met "
    "by any user-space change.")


def load_meta(d):
    meta = {}
    path = os.path.join(d, "meta.env")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                meta[k] = v
    return meta


def load_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def group_cells(runs):
    """{(workload, clients): {target: Cell}} and the keys in run order."""
    cells = {}
    order = []
    for r in runs:
        key = (r["workload"], int(r["clients"]))
        if key not in cells:
            cells[key] = {}
            order.append(key)
        cells[key].setdefault(r["target"], []).append(r)
    return {k: {t: Cell(v) for t, v in c.items()} for k, c in cells.items()}, order


class Cell:
    """All runs of one target in one (workload, clients) cell."""

    def __init__(self, runs):
        self.runs = runs
        self.ok = all(r["status"] == "ok" for r in runs)
        self.tps_all = [num(r["tps"]) for r in runs]
        self.tps = med(self.tps_all)
        self.mean = med(num(r["mean_ms"]) for r in runs)
        self.p99 = med(num(r["p99_ms"]) for r in runs)
        self.cpu = med(num(r["cpu_us_per_tx"]) for r in runs)
        self.failed = sum(int(num(r["failed"]) or 0) for r in runs)
        notes = [r["note"] for r in runs if r["status"] != "ok" and r.get("note")]
        self.note = notes[0] if notes else ""
        self.nfailed = sum(1 for r in runs if r["status"] != "ok")
        self.connect_ms = med(num(r.get("connect_ms")) for r in runs)
        # the rest of the machine: pgbench's and PostgreSQL's CPU per tx, and
        # idle cores (runs from before these columns have none)
        self.pgbench = med(num(r.get("pgbench_us_per_tx")) for r in runs)
        self.postgres = med(num(r.get("postgres_us_per_tx")) for r in runs)
        self.idle = med(num(r.get("idle_cores")) for r in runs)
        self.sys = med(num(r.get("sys_us_per_tx")) for r in runs)

    @property
    def rest(self):
        """pgbench's and PostgreSQL's CPU per transaction, or None."""
        if self.pgbench is None or self.postgres is None:
            return None
        return self.pgbench + self.postgres

    @property
    def good_tps(self):
        return self.tps if self.ok else None


def main():
    d = sys.argv[1]
    meta = load_meta(d)
    META.update(meta)
    runs = load_tsv(os.path.join(d, "runs.tsv"))
    mem = load_tsv(os.path.join(d, "memory.tsv"))

    cells, order = group_cells(runs)
    shard_cells, shard_order = group_cells(load_tsv(os.path.join(d, "sharded.tsv")))
    tls_cells, tls_order = group_cells(load_tsv(os.path.join(d, "tls.tsv")))
    login_cells, login_order = group_cells(load_tsv(os.path.join(d, "logins.tsv")))
    storm = load_tsv(os.path.join(d, "storm.tsv"))
    route = load_tsv(os.path.join(d, "route_cost.tsv"))
    merge = load_tsv(os.path.join(d, "merge.tsv"))
    workloads = []
    for w, _ in order:
        if w not in workloads:
            workloads.append(w)

    out = []
    p = out.append
    quick = meta.get("quick") == "1"
    p(f"# PgCrab benchmark {meta.get('stamp', '')}{' (QUICK)' if quick else ''}")
    p("")
    p(f"PgCrab {meta.get('commit', '?')} against PgBouncer and direct PostgreSQL, "
      f"same machine, same run, interleaved (A B C D A B C D per cell), "
      f"{meta.get('repeats', '?')} runs per cell, medians.")
    p("")
    p("## Machine and setup")
    p("")
    p(f"- CPU: {meta.get('cpu', '?')}, {meta.get('nproc', '?')} CPUs available, "
      f"{meta.get('mem', '?')} RAM; kernel {meta.get('kernel', '?')}; {meta.get('os', '?')}")
    p(f"- Load average (1/5/15 min) before the matrix: {meta.get('load_before', '?')}; "
      f"after: {meta.get('load_after', '?')}. pgbench, PostgreSQL and the pooler share "
      f"these CPUs, and so does whatever else the machine runs.")
    p(f"- {meta.get('postgres', '?')}: `synchronous_commit = off`, `fsync = off`, "
      f"`max_connections = 1200`, `shared_buffers = {meta.get('shared_buffers', '256MB')}`; pgbench scale "
      f"{meta.get('scale', '?')}, tables prewarmed.")
    p(f"- {meta.get('pgcrab', 'pgcrab')}: transaction pooling, one shard, "
      f"min = max = {meta.get('pool_size', '?')} server connections, `log_level = warn`.")
    p(f"- {meta.get('pgbouncer', 'PgBouncer')}: `pool_mode = transaction`, "
      f"`default_pool_size = min_pool_size = max_db_connections = {meta.get('pool_size', '?')}`, "
      f"connection logging off.")
    if meta.get("pooler_to_pg") == "unix":
        p("- Both poolers reach PostgreSQL over its Unix socket (`BENCH_POOLER_TO_PG=unix`; "
          "local connections, trusted by pg_hba); clients, direct ones included, use TCP.")
    upstream = ("over the socket as mr_krabs" if meta.get("pooler_to_pg") == "unix"
                else "with SCRAM-SHA-256 over TCP (mr_krabs)")
    p("- Clients log in to both poolers with a cleartext password (pgcrab/pgcrab); "
      f"the poolers log in to PostgreSQL {upstream}. Direct clients "
      "also send a cleartext password (role bench_direct, hba method `password` over an "
      "md5 secret), so every target pays about the same, cheap, client login.")
    p(f"- {meta.get('pgbench', 'pgbench')}: `-j {meta.get('threads', '?')} "
      f"-T {meta.get('seconds', '?')} -n`, `--log --sampling-rate=0.1` for latencies. "
      f"`ulimit -n` {meta.get('nofile', '?')} (PgBouncer's: {meta.get('bouncer_nofile', '?')}). Whole run: {meta.get('elapsed', '?')} s.")
    p("")
    p("How to read: **TPS** is pgbench's figure without the initial connection time "
      "(with `-C` it includes every reconnection); **×direct** and **×PgBouncer** divide the "
      "median TPS by that target's median in the same cell; **mean** and **p99** are "
      "per-transaction latencies from a 10 % sample of pgbench's transaction log; "
      "**CPU µs/tx** is the pooler process's utime+stime over the pgbench run (all its "
      "threads, connection setup included) divided by the transactions pgbench processed; "
      "**failed** counts pgbench's failed transactions; a cell where any run exited non-zero "
      "or had aborted clients is **FAILED**, with the TPS it reached in parentheses.")
    p("")

    if any(w == "select-extended" for w in workloads) or workloads:
        p("![TPS against clients](tps.png)")
        p("")

    # Goals from issue 4, where this run has the cells to judge them.
    goals = []

    def cell(w, c, t):
        return cells.get((w, c), {}).get(t)

    def goal(text, value, ok):
        goals.append((text, value, ok))

    for t in ("pgcrab-w1", "pgcrab-w2"):
        tag = LABELS[t]
        for w in ("select-simple", "select-extended", "select-prepared"):
            for c in (16, 100):
                a, dct = cell(w, c, t), cell(w, c, "direct")
                if a and dct:
                    r = ratio(a.good_tps, dct.good_tps)
                    goal(f"{tag}: {w} at {c} clients ≥ 0.90× direct", fmt(r, 2, "×"),
                         r is not None and r >= 0.90)
        for w in workloads:
            for c in (1000,):
                if not w.startswith("select") or w == "select-prepared":
                    continue
                a, b = cell(w, c, t), cell(w, c, "pgbouncer")
                if a and b:
                    r = ratio(a.good_tps, b.good_tps)
                    goal(f"{tag}: {w} at {c} clients ≥ 1.3× PgBouncer", fmt(r, 2, "×"),
                         r is not None and r >= 1.3)
        for (w, c) in order:
            if not w.startswith("select"):
                continue
            a, b = cell(w, c, t), cell(w, c, "pgbouncer")
            if a and b and b.ok and a.cpu is not None and b.cpu:
                r = a.cpu / b.cpu
                goal(f"{tag}: CPU/tx in {w} at {c} clients ≤ 0.5× PgBouncer's",
                     fmt(r, 2, "×"), r <= 0.5)
        for (w, c) in order:
            a, b = cell(w, c, t), cell(w, c, "pgbouncer")
            if not (a and b and b.ok):
                continue
            need = 1.5 if w == "connect-simple" else 1.0
            r = ratio(a.good_tps, b.good_tps)
            goal(f"{tag}: {w} at {c} clients ≥ {need:g}× PgBouncer", fmt(r, 2, "×"),
                 r is not None and r >= need)
    for m in mem:
        if m["target"].startswith("pgcrab") and m["clients"] and int(m["clients"]) >= 10000:
            v = num(m["kib_per_client"])
            goal(f"{LABELS[m['target']]}: RSS per idle client at {m['clients']} ≤ 0.5 KiB",
                 fmt(v, 2, " KiB"), v is not None and v <= 0.5)
    for (w, c) in shard_order:
        u, sh = shard_cells[(w, c)].get("unsharded"), shard_cells[(w, c)].get("sharded")
        if u and sh:
            r = ratio(sh.good_tps, u.good_tps)
            goal(f"issue 13: {w} at {c} clients, 2-shard ≥ 0.90× unsharded", fmt(r, 2, "×"),
                 r is not None and r >= 0.90)
    for q, rows in merge_by_query(merge).items():
        if q == "order-by-limit-100":
            g = max(num(m["growth_kib"]) or 0 for m in rows)
            good = all(m["check"] == "ok" for m in rows)
            goal(f"issue 13: PgCrab's RSS growth merging ORDER BY … LIMIT 100 over "
                 f"{META.get('merge_rows', '?')} rows on 3 shards < 10 MiB",
                 fmt(g / 1024, 1, " MiB") + ("" if good else " (wrong answer)"),
                 good and g < MERGE_LIMIT_KIB)
    if goals:
        p("## Goals of issues 4 and 13 that this run can judge")
        p("")
        p("| goal | measured | met |")
        p("|---|---|---|")
        for text, value, ok in goals:
            p(f"| {text} | {value} | {'yes' if ok else '**no**'} |")
        p("")

    base_cells = [(w, c) for (w, c) in order
                  if cells[(w, c)].get("base-w2") and cells[(w, c)].get("pgcrab-w2")]
    if base_cells:
        p("## This build against the base build (BENCH_BASE_BIN), both --workers 2")
        p("")
        p(f"Base: `{META.get('base_bin', '?')}`; interleaved with every other target.")
        p("")
        p("| workload | clients | base TPS | this TPS | this / base | base CPU µs/tx | this CPU µs/tx |")
        p("|---|---:|---:|---:|---:|---:|---:|")
        for (w, c) in base_cells:
            b, x = cells[(w, c)]["base-w2"], cells[(w, c)]["pgcrab-w2"]
            p(f"| {w} | {c} | {fmt(b.tps, 0)} | {fmt(x.tps, 0)} | "
              f"{fmt(ratio(x.good_tps, b.good_tps), 2, '×')} | {fmt(b.cpu, 1)} | {fmt(x.cpu, 1)} |")
        p("")

    p("## Throughput and latency")
    for w in workloads:
        p("")
        p(f"### {WORKLOADS.get(w, w)}")
        p("")
        p("| clients | target | TPS | runs | ×direct | ×PgBouncer | mean ms | p99 ms "
          "| CPU µs/tx | failed |")
        p("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for (w2, c) in order:
            if w2 != w:
                continue
            row = cells[(w, c)]
            direct = row.get("direct")
            bouncer = row.get("pgbouncer")
            for t in TARGETS:
                x = row.get(t)
                if x is None:
                    continue
                tps = fmt(x.tps, 0) if x.ok else f"**FAILED** ({fmt(x.tps, 0)})"
                runs_s = " / ".join(fmt(v, 0) for v in x.tps_all)
                rd = ratio(x.good_tps, direct.good_tps) if direct and t != "direct" else None
                rb = ratio(x.good_tps, bouncer.good_tps) if bouncer and t != "pgbouncer" else None
                p(f"| {c} | {LABELS[t]} | {tps} | {runs_s} | {fmt(rd, 2, '×')} | "
                  f"{fmt(rb, 2, '×')} | {fmt(x.mean, 2)} | {fmt(x.p99, 2)} | "
                  f"{fmt(x.cpu, 1)} | {x.failed} |")
        notes = []
        seconds = num(META.get("seconds"))
        for (w2, c) in order:
            if w2 != w:
                continue
            for t in TARGETS:
                x = cells[(w, c)].get(t)
                if x and seconds and x.connect_ms and x.connect_ms > 300 * seconds:
                    notes.append(f"- {LABELS[t]} at {c} clients: the initial connections took "
                                 f"{x.connect_ms / 1000:.1f} s of the {seconds:g} s run "
                                 f"(pgbench's -T includes them), so fewer seconds were measured.")
                if x and not x.ok:
                    notes.append(f"- {LABELS[t]} at {c} clients: {x.nfailed} of {len(x.runs)} "
                                 f"runs failed: {x.note or 'see logs'}")
        if notes:
            p("")
            p("\n".join(notes))

    tls_section(p, tls_cells, tls_order)
    login_section(p, login_cells, login_order, storm)
    sharding_section(p, shard_cells, shard_order, route, merge)

    if mem:
        p("")
        p("## Idle clients: memory and login cost")
        p("")
        p("Each pooler freshly started, its 20 server connections open; a helper "
          "(bench/idle_clients.py) logs N clients in (startup, cleartext password, up to "
          "ReadyForQuery) and then sends nothing. **KiB/client** = (VmRSS after − VmRSS before) / N. "
          "**login CPU** = the pooler's utime+stime over that stage's logins divided by the "
          "logins; **wall** is the helper's time for them (64 logins in flight; it measures "
          "the Python helper as much as the pooler).")
        p("")
        p("| target | idle clients | VmRSS before KiB | VmRSS after KiB | KiB/client "
          "| login CPU µs | wall s | note |")
        p("|---|---:|---:|---:|---:|---:|---:|---|")
        for m in mem:
            p(f"| {LABELS.get(m['target'], m['target'])} | {m['clients']} | {m['rss_before_kib']} | "
              f"{m['rss_after_kib']} | {m['kib_per_client']} | {m['login_cpu_us']} | "
              f"{m['login_wall_s']} | {m.get('note', '')} |")

    p("")
    p("Raw data: `runs.tsv` (every pgbench run), `memory.tsv`, `logs/` (pooler and "
      "PostgreSQL log tails; full pgbench output of failed runs in `logs-failed-*`).")
    p("")
    with open(os.path.join(d, "report.md"), "w") as f:
        f.write("\n".join(out))

    plot(d, cells, order, workloads)


def merge_by_query(merge):
    out = {}
    for m in merge:
        out.setdefault(m["query"], []).append(m)
    return out


TLS_WORKLOADS = {
    "tls-select-extended": "select-only, extended protocol, TLS (`-S -M extended`, sslmode=require)",
    "tls-connect": "new connection per transaction, TLS (`-C -S -M simple`, sslmode=require)",
}


def tls_section(p, cells, order):
    """The TLS column: clients with sslmode=require against PostgreSQL (ssl =
    on), PgCrab --workers 2 and PgBouncer, each presenting its own certificate;
    the goal is PgCrab at 1.5x PgBouncer at 100 and 1,000 clients and for -C."""
    if not order:
        return
    p("## TLS")
    p("")
    p("Clients use `sslmode=require`. **direct-tls**: PostgreSQL with `ssl = on`; "
      "**pgcrab-tls**: `--workers 2`, `client_tls_mode = require`; **pgbouncer-tls**: "
      "`client_tls_sslmode = require`; the same self-signed P-256 certificate for all "
      "three, server connections of both poolers in plaintext. Load average before "
      f"these cells: {META.get('load_tls_before', '?')}; after: {META.get('load_tls_after', '?')}. "
      "Goal: PgCrab at least 1.5× PgBouncer at 100 and 1,000 clients and with `-C`.")
    p("")
    p(BOUND_TEXT)
    p("")
    p("| workload | clients | direct TPS | PgCrab TPS | PgBouncer TPS | PgCrab / PgBouncer "
      "| PgCrab / direct | CPU µs/tx PgCrab / PgBouncer | mean ms PgCrab / PgBouncer | failed "
      "| rest µs/tx PgCrab / PgBouncer | idle | ceiling | needed µs/tx for 1.5× "
      "| sys µs/tx |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (w, c) in order:
        x = cells[(w, c)]
        d, pc, pb = x.get("direct-tls"), x.get("pgcrab-tls"), x.get("pgbouncer-tls")
        if not (pc and pb):
            continue

        def tps(cell):
            if not cell:
                return "-"
            return fmt(cell.tps, 0) if cell.ok else f"**FAILED** ({fmt(cell.tps, 0)})"

        p(f"| {TLS_WORKLOADS.get(w, w)} | {c} | {tps(d)} | {tps(pc)} | {tps(pb)} | "
          f"{fmt(ratio(pc.good_tps, pb.good_tps), 2, '×')} | "
          f"{fmt(ratio(pc.good_tps, d.good_tps if d else None), 2, '×')} | "
          f"{fmt(pc.cpu, 1)} / {fmt(pb.cpu, 1)} | {fmt(pc.mean, 2)} / {fmt(pb.mean, 2)} | "
          f"{pc.failed} / {pb.failed} | {bound_cells(pc, pb, 1.5)} |")
    p("")


LOGIN_METHODS = {
    "login-trust": "trust",
    "login-plain": "plain (cleartext password)",
    "login-md5": "md5",
    "login-scram-sha-256": "SCRAM-SHA-256",
    "login-scram-tls": "SCRAM-SHA-256 over TLS (sslmode=require)",
}


def login_section(p, cells, order, storm):
    """Logins: pgbench -C (one login per transaction) against PgCrab
    --workers 2 and PgBouncer set to the same auth_type. Goal: PgCrab at
    least 1.2x PgBouncer's rate with less CPU per login, for every method;
    logins per core-second = 1e6 / CPU us per login."""
    if not order:
        return
    p("## Logins per client auth method")
    p("")
    p("`pgbench -C -S -M simple` (a new connection, so a login, per transaction) against "
      "**PgCrab** `--workers 2` and **PgBouncer**, both with the same `auth_type`; user "
      "pgcrab's password stored as cleartext (trust, plain), its md5 hash (md5) or "
      "PostgreSQL's own SCRAM verifier (SCRAM), the same in both. **per core** = logins per "
      "second of the pooler's own CPU (1,000,000 / CPU µs per login). Load average before "
      f"these cells: {META.get('load_auth_before', '?')}; after: {META.get('load_auth_after', '?')}. "
      "Goal: PgCrab at least 1.2× PgBouncer's rate with less CPU per login.")
    p("")
    p(BOUND_TEXT)
    p("")
    p("| method | clients | PgCrab logins/s | PgBouncer logins/s | PgCrab / PgBouncer "
      "| CPU µs/login PgCrab / PgBouncer | per core PgCrab / PgBouncer | failed "
      "| rest µs/login PgCrab / PgBouncer | idle | ceiling | needed µs/login for 1.2× "
      "| sys µs/login |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (w, c) in order:
        if not w.startswith("login-"):
            continue
        x = cells[(w, c)]
        m = w[len("login-"):]
        pc, pb = x.get("pgcrab-" + m), x.get("pgbouncer-" + m)
        if not (pc and pb):
            continue

        def rate(cell):
            return fmt(cell.tps, 0) if cell.ok else f"**FAILED** ({fmt(cell.tps, 0)})"

        def per_core(cell):
            return fmt(1e6 / cell.cpu, 0) if cell.cpu else "–"

        p(f"| {LOGIN_METHODS.get(w, w)} | {c} | {rate(pc)} | {rate(pb)} | "
          f"{fmt(ratio(pc.good_tps, pb.good_tps), 2, '×')} | {fmt(pc.cpu, 1)} / {fmt(pb.cpu, 1)} | "
          f"{per_core(pc)} / {per_core(pb)} | {pc.failed} / {pb.failed} | {bound_cells(pc, pb, 1.2)} |")
    p("")
    storms = [(w, c) for (w, c) in order if w.startswith("storm-")]
    if not storms:
        return
    p("**A SCRAM login storm beside steady clients.** 16 clients run `-S -M extended` "
      "(logged in once) while 16 more log in and out without pause (`-C`) through the same "
      "pooler: the steady clients' TPS and p99 show what the storm costs them; CPU µs/tx "
      "counts the storm's work too.")
    p("")
    p("| method | steady TPS PgCrab / PgBouncer | steady p99 ms PgCrab / PgBouncer "
      "| storm logins/s PgCrab / PgBouncer | failed |")
    p("|---|---:|---:|---:|---:|")
    for (w, c) in storms:
        x = cells[(w, c)]
        m = w[len("storm-"):]
        pc, pb = x.get("pgcrab-" + m), x.get("pgbouncer-" + m)
        if not (pc and pb):
            continue

        def logins(target):
            return fmt(med(num(r["logins_per_s"]) for r in storm
                           if r["method"] == m and r["target"] == target), 0)

        p(f"| {LOGIN_METHODS.get('login-' + m, m)} | {fmt(pc.tps, 0)} / {fmt(pb.tps, 0)} | "
          f"{fmt(pc.p99, 2)} / {fmt(pb.p99, 2)} | {logins('pgcrab-' + m)} / "
          f"{logins('pgbouncer-' + m)} | {pc.failed} / {pb.failed} |")
    p("")


def sharding_section(p, cells, order, route, merge):
    if not (order or route or merge):
        return
    p("")
    p("## Sharding (issue 13)")
    if order:
        p("")
        p("### Single-shard routing: a 2-shard database against an unsharded one")
        p("")
        p(f"One PgCrab (`--workers 2`) serves both databases; the cells alternate between "
          f"them (unsharded, sharded, unsharded, sharded), {META.get('repeats', '?')} runs "
          f"each, medians. **unsharded**: the bench database through a plain `[shard.*]` "
          f"({META.get('pool_size', '?')} server connections). **sharded**: a "
          f"`[database.*]` over 2 databases of the same PostgreSQL "
          f"({META.get('shard_pool', '?')} server connections each), "
          f"`pgbench_accounts` sharded by `aid int4` and split as PostgreSQL's "
          f"`PARTITION BY HASH (aid)` with `MODULUS 2` splits it; branches, tellers and "
          f"history copied whole to both. Script: `\\set aid random(1, 100000 * :scale)`, "
          f"`SELECT abalance FROM pgbench_accounts WHERE aid = :aid \\gset` (`-s "
          f"{META.get('scale', '?')}`; `\\gset` fails the transaction if the row is not "
          f"there, so a statement sent to the wrong shard shows up as failed). Load average "
          f"before these cells: {META.get('load_shard_before', '?')}; after: "
          f"{META.get('load_shard_after', '?')}.")
        p("")
        p("| workload | clients | unsharded TPS | sharded TPS | sharded / unsharded "
          "| runs unsharded | runs sharded | mean ms | p99 ms | CPU µs/tx | failed |")
        p("|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|")
        for (w, c) in order:
            u, sh = cells[(w, c)].get("unsharded"), cells[(w, c)].get("sharded")
            if not (u and sh):
                continue

            def tps(x):
                return fmt(x.tps, 0) if x.ok else f"**FAILED** ({fmt(x.tps, 0)})"

            def pair(a, b, digits):
                return f"{fmt(a, digits)} / {fmt(b, digits)}"

            p(f"| {SHARD_WORKLOADS.get(w, w)} | {c} | {tps(u)} | {tps(sh)} | "
              f"{fmt(ratio(sh.good_tps, u.good_tps), 2, '×')} | "
              f"{' / '.join(fmt(v, 0) for v in u.tps_all)} | "
              f"{' / '.join(fmt(v, 0) for v in sh.tps_all)} | {pair(u.mean, sh.mean, 2)} | "
              f"{pair(u.p99, sh.p99, 2)} | {pair(u.cpu, sh.cpu, 1)} | {u.failed} / {sh.failed} |")
        p("")
        p("mean, p99, CPU µs/tx and failed: unsharded / sharded. CPU µs/tx is the whole "
          "PgCrab process's over the run, divided by the transactions.")
        notes = [f"- {t} {w} at {c} clients: {x.nfailed} of {len(x.runs)} runs failed: "
                 f"{x.note or 'see logs'}"
                 for (w, c) in order for t, x in cells[(w, c)].items() if not x.ok]
        if notes:
            p("")
            p("\n".join(notes))
    if route:
        p("")
        p("### Routing cost per statement")
        p("")
        p("`bench/route_cost.c`, linked with `build/libpgcrab.a`, calls the router as the "
          "relay does, on one core, for a 2-shard schema; medians of 3 runs. **parse**: "
          "`router_plan` on text its cache has not seen (libpg_query's parse and the walk; "
          "the library's own `parse_ns`). **cache hit**: `router_plan` on text it has seen, "
          "and `router_plan_free`. **bind**: `router_bind_shards` for the Bind's text "
          "parameters (hash and shard).")
        p("")
        p("| statement | parse µs | cache hit µs | bind µs |")
        p("|---|---:|---:|---:|")
        by = {}
        for r in route:
            by.setdefault(r["statement"], []).append(r)
        med_of = {}
        for st, rows in by.items():
            parse = med(num(r["parse_us"]) for r in rows)
            hit = med(num(r["hit_us"]) for r in rows)
            bind = med(num(r["bind_us"]) for r in rows)
            med_of[st] = (parse, hit, bind)
            p(f"| {ROUTE_STATEMENTS.get(st, st)} | {fmt(parse, 1)} | {fmt(hit, 3)} | "
              f"{fmt(bind, 3)} |")
        sel = med_of.get("select-by-aid-param")
        if sel and None not in sel:
            p("")
            p(f"Per statement of the sharded cells above: `-M extended` sends Parse (a cache "
              f"hit) and Bind for each, ≈ {sel[1] + sel[2]:.2f} µs of routing; `-M prepared` "
              f"only Binds, ≈ {sel[2]:.2f} µs; a connection's first Parse of a text pays the "
              f"parse once ({sel[0]:.0f} µs). `-M simple` puts the aid in the text, so nearly "
              f"every statement is new text and pays a parse.")
    if merge:
        p("")
        p("### Cross-shard merge: PgCrab's memory")
        p("")
        p(f"`t` (id int8, the key; x int8, the sort column, unrelated to the key; a 64-byte "
          f"payload): {META.get('merge_rows', '?')} rows over 3 databases of the bench "
          f"cluster, each holding the ids that hash to it (`satisfies_hash_partition`), "
          f"an index on x. One PgCrab (`--workers 2`), every shard's connection already open. "
          f"PgCrab's VmRSS is sampled every 50 ms while psql (through PgCrab) reads the "
          f"whole answer (the LIMIT query, a few ms, runs many times in one session so "
          f"that the samples see it); **growth** = peak − VmRSS just before the query, the largest over "
          f"{META.get('repeats', '?')} runs. **check**: the row count, the rows in order, and "
          f"for the LIMIT the same x values as the merge of each shard's own first rows read "
          f"directly.")
        p("")
        p("| query | rows | runs in the session | check | VmRSS before KiB | peak KiB | growth "
          "| samples | s |")
        p("|---|---:|---:|---|---:|---:|---:|---:|---:|")
        for q, rows in merge_by_query(merge).items():
            worst = max(rows, key=lambda m: num(m["growth_kib"]) or 0)
            checks = sorted({m["check"] for m in rows})
            p(f"| {MERGE_QUERIES.get(q, q)} | {worst['rows']} | {worst.get('loops', 1)} | "
              f"{'; '.join(checks)} | "
              f"{worst['rss_before_kib']} | {worst['rss_peak_kib']} | "
              f"{fmt((num(worst['growth_kib']) or 0) / 1024, 2, ' MiB')} | "
              f"{worst['samples']} | {worst['seconds']} |")


def plot(d, cells, order, workloads):
    w = "select-extended" if "select-extended" in workloads else (workloads[0] if workloads else None)
    if w is None:
        return
    clients = sorted(c for (w2, c) in order if w2 == w)
    with open(os.path.join(d, "tps.dat"), "w") as f:
        f.write("# clients " + " ".join(TARGETS) + "\n")
        for c in clients:
            vals = []
            for t in TARGETS:
                x = cells[(w, c)].get(t)
                vals.append(f"{x.tps:.1f}" if x and x.ok and x.tps is not None else "NaN")
            f.write(f"{c} " + " ".join(vals) + "\n")
    lines = ", ".join(
        f"'tps.dat' using 1:{i + 2} with linespoints lw 2 pt {i + 5} title '{LABELS[t]}'"
        for i, t in enumerate(TARGETS))
    xr = f"set xrange [{clients[0] * 0.7}:{clients[-1] * 1.4}]"
    script = f"""
set terminal pngcairo size 900,560 font ',11' noenhanced
set output 'tps.png'
set title 'pgbench {WORKLOADS.get(w, w).split(" (")[0]}: TPS against clients (median)'
set xlabel 'clients (-j 2)'
set ylabel 'transactions per second'
set logscale x
set xtics ({", ".join(str(c) for c in clients)})
{xr}
set yrange [0:*]
set grid
set key outside bottom center horizontal
plot {lines}
"""
    with open(os.path.join(d, "tps.gp"), "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", "tps.gp"], cwd=d, capture_output=True, text=True)
    if r.returncode != 0:
        # Older or cairo-less gnuplot: the plain libgd terminal.
        script = script.replace("pngcairo size 900,560 font ',11' noenhanced", "png size 900,560")
        with open(os.path.join(d, "tps.gp"), "w") as f:
            f.write(script)
        r = subprocess.run(["gnuplot", "tps.gp"], cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"report: gnuplot failed: {r.stderr.strip()}", file=sys.stderr)


if __name__ == "__main__":
    main()
