#!/usr/bin/python3
"""The measuring half of bench/changes (see there): writes the events,
reads them with pymongo and through a changes table, prints events/s.
Needs QLEAF_MONGODB_URI and PGHOST/PGPORT/PGUSER of a cluster where
qleaf_fdw is installed.
"""
import argparse
import os
import subprocess
import sys
import time

import pymongo

DB = "qleaf_bench_changes"
COLL = "events"
BATCH = 1000


def server_time(client):
    ts = client.admin.command("ping")["operationTime"]
    return ts


def write_events(client, n):
    """n inserts of small order-like documents, after a start point."""
    client.drop_database(DB)
    coll = client[DB][COLL]
    coll.insert_one({"_id": -1})
    start = server_time(client)
    t = time.time()
    for base in range(0, n, BATCH):
        coll.insert_many([{"_id": i, "customer": i % 977, "status": "created",
                           "total": (i % 500) * 1.25, "sku": "SKU-%05d" % (i % 3000)}
                          for i in range(base, min(n, base + BATCH))],
                         ordered=False)
    print("wrote %d events in %.1f s" % (n, time.time() - t), flush=True)
    sys.stdout.flush()
    return start


def pymongo_rate(client, start, n):
    """Events/s of a pymongo change stream reading the n events."""
    coll = client[DB][COLL]
    t = time.time()
    got = 0
    with coll.watch(start_at_operation_time=start, max_await_time_ms=100,
                    batch_size=BATCH) as stream:
        while got < n:
            ev = stream.try_next()
            if ev is None:
                continue
            got += 1
    return got, time.time() - t


def psql(script):
    p = subprocess.run(["psql", "-X", "-q", "-At", "-F", "|", "-v",
                        "ON_ERROR_STOP=1", "-f", "-"],
                       input=script, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout + p.stderr)
        sys.exit("bench/changes: psql failed (status %d)" % p.returncode)
    return p.stdout


def quote(s):
    return "'" + s.replace("'", "''") + "'"


QUERIES = [
    ("count(*)", "SELECT count(*) FROM ev"),
    ("5 columns", "SELECT count(*) FILTER (WHERE resume_token IS NOT NULL "
     "AND operation_type IS NOT NULL AND document_key IS NOT NULL "
     "AND full_document IS NOT NULL AND cluster_time IS NOT NULL) FROM ev"),
]


def fdw_rates(uri, start, repeat):
    ts = (start.time << 32) | start.inc
    lines = [
        "SET client_min_messages = warning;",
        "CREATE EXTENSION IF NOT EXISTS qleaf_fdw;",
        "DROP SERVER IF EXISTS bench_changes_srv CASCADE;",
        "CREATE SERVER bench_changes_srv FOREIGN DATA WRAPPER qleaf_fdw "
        "OPTIONS (uri %s, database '%s');" % (quote(uri), DB),
        "CREATE USER MAPPING FOR CURRENT_USER SERVER bench_changes_srv;",
        "CREATE FOREIGN TABLE ev (resume_token text, operation_type text, "
        "document_key jsonb, full_document jsonb, cluster_time timestamptz, "
        "cluster_timestamp bigint) SERVER bench_changes_srv "
        "OPTIONS (changes 'true', collection '%s');" % COLL,
    ]
    for rep in range(repeat):
        for name, sql in QUERIES:
            lines += [
                "SELECT extract(epoch FROM clock_timestamp()) AS w0 \\gset",
                "SELECT 'RESULT', '%s', (%s WHERE cluster_timestamp > %d), "
                "extract(epoch FROM clock_timestamp()) - :w0;"
                % (name, sql, ts),
            ]
    lines.append("DROP SERVER bench_changes_srv CASCADE;")
    best = {}
    for line in psql("\n".join(lines) + "\n").splitlines():
        parts = line.split("|")
        if parts[0] == "RESULT":
            _, name, rows, wall = parts
            rows, wall = int(rows), float(wall)
            if name not in best or wall < best[name][1]:
                best[name] = (rows, wall)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    uri = os.environ["QLEAF_MONGODB_URI"]
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)

    start = write_events(client, args.events)
    py_best = None
    for _ in range(args.repeat):
        got, wall = pymongo_rate(client, start, args.events)
        if got != args.events:
            sys.exit("bench/changes: pymongo read %d events, expected %d"
                     % (got, args.events))
        if py_best is None or wall < py_best:
            py_best = wall
    client.close()
    fdw = fdw_rates(uri, start, args.repeat)

    print()
    print("%d insert events; best of %d runs (wall clock)" % (args.events, args.repeat))
    print()
    fmt = "%-32s  %10s  %10s  %9s"
    print(fmt % ("reader", "events", "events/s", "x pymongo"))
    print("-" * 68)
    py_rate = args.events / py_best
    print(fmt % ("pymongo change stream", args.events, "%.0f" % py_rate, "1.00"))
    ok = True
    for name, _ in QUERIES:
        rows, wall = fdw[name]
        rate = rows / wall
        print(fmt % ("qleaf_fdw changes table, " + name, rows, "%.0f" % rate,
                     "%.2f" % (rate / py_rate)))
        if rows != args.events:
            ok = False
    if not ok:
        sys.exit("bench/changes: the changes table did not return every event")


if __name__ == "__main__":
    main()
