#!/usr/bin/python3
"""The measuring half of bench/scan (see there): loads the documents,
creates the foreign and heap tables, runs the queries in one backend and
prints the table.  Needs QLEAF_MONGODB_URI and PGHOST/PGPORT/PGUSER of a
cluster where qleaf_fdw is installed and the user is a superuser (the
backend reads its own /proc/self/schedstat with pg_read_file).
"""
import argparse
import datetime
import os
import subprocess
import sys
import time

import pymongo
from bson import ObjectId
from bson.decimal128 import Decimal128
from bson.int64 import Int64

DB = "qleaf_bench_scan"
COLL = "docs"

# mongo_fdw's figures and ours to reach, backend CPU microseconds per
# document, from the benchmark's brief.
INCUMBENT = {"10 columns": 0.89, "1 column": 0.61}
INCUMBENT_HEAP = {"10 columns": 0.17, "1 column": 0.07}
TARGET = {"10 columns": 0.45, "1 column": 0.20}

COLUMNS = [
    ("_id", "bigint", "int32/int64 counter"),
    ("i", "integer", "int32"),
    ("l", "bigint", "int64"),
    ("d", "double precision", "double"),
    ("s", "text", "string, 10 bytes"),
    ("t", "text", "string, 40-60 bytes"),
    ("b", "boolean", "bool"),
    ("ts", "timestamptz", "date"),
    ("price", "numeric", "decimal128, 2 decimals"),
    ("ref", "text", "objectId as 24 hex digits"),
]

QUERIES = [
    ("10 columns", "SELECT %s FROM {t}" % ", ".join(
        "count(%s)" % c for c, _, _ in COLUMNS)),
    ("1 column", "SELECT count(i) FROM {t}"),
    ("no column", "SELECT count(*) FROM {t}"),
]

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
         "hotel", "india", "juliett", "kilo", "lima"]
T0 = datetime.datetime(2024, 1, 1)


def make_doc(n):
    text = " ".join(WORDS[(n + k) % len(WORDS)] for k in range(6 + n % 4))
    return {
        "_id": n,
        "i": n % 100000,
        "l": Int64(n * 1000003),
        "d": n * 0.25,
        "s": "name%06d" % (n % 1000000),
        "t": text,
        "b": n % 3 == 0,
        "ts": T0 + datetime.timedelta(seconds=n),
        "price": Decimal128("%d.%02d" % (n % 1000, n % 100)),
        "ref": ObjectId(b"qleaf" + n.to_bytes(7, "big")),
    }


def load(uri, docs, reuse):
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)
    try:
        if reuse:
            coll = client[DB][COLL]
            n = coll.estimated_document_count()
            last = coll.find_one({"_id": docs - 1})
            if n == docs and last == make_doc(docs - 1):
                print("reusing the %d documents already loaded" % docs,
                      flush=True)
                return
        client.drop_database(DB)
        coll = client[DB][COLL]
        batch = 10000
        t = time.time()
        for start in range(0, docs, batch):
            coll.insert_many([make_doc(n) for n in
                              range(start, min(start + batch, docs))],
                             ordered=False)
        n = coll.estimated_document_count()
        if n != docs:
            sys.exit("bench/scan: loaded %d documents, expected %d" % (n, docs))
        print("loaded %d documents in %.1f s" % (docs, time.time() - t),
              flush=True)
    finally:
        client.close()


def psql_script(uri, repeat):
    """One session: set up, warm up, then each query on each table, R
    times, printing RESULT lines."""
    lines = [
        r"\set ON_ERROR_STOP 1",
        "SET client_min_messages = warning;",
        "SET max_parallel_workers_per_gather = 0;",
        "SET jit = off;",
        "SET qleaf_fdw.enable_pushdown = off;",
        "CREATE EXTENSION IF NOT EXISTS qleaf_fdw;",
        "DROP SERVER IF EXISTS bench_srv CASCADE;",
        "CREATE SERVER bench_srv FOREIGN DATA WRAPPER qleaf_fdw "
        "OPTIONS (uri %s, database '%s');" % (quote(uri), DB),
        "CREATE USER MAPPING FOR CURRENT_USER SERVER bench_srv;",
        "CREATE FOREIGN TABLE ft (%s) SERVER bench_srv "
        "OPTIONS (collection '%s');" % (
            ", ".join("%s %s" % (c, ty) for c, ty, _ in COLUMNS), COLL),
        "DROP TABLE IF EXISTS heap;",
        "CREATE TABLE heap AS SELECT * FROM ft;",
        "VACUUM (FREEZE, ANALYZE) heap;",
        # on-CPU time of this backend, in nanoseconds
        "CREATE OR REPLACE FUNCTION pg_temp.cpu_ns() RETURNS bigint "
        "LANGUAGE sql AS $$ SELECT split_part(pg_read_file("
        "'/proc/self/schedstat'), ' ', 1)::bigint $$;",
        r"\echo EXPLAIN",
        "EXPLAIN (VERBOSE, COSTS OFF) %s;" % QUERIES[0][1].format(t="ft"),
        "EXPLAIN (VERBOSE, COSTS OFF) %s;" % QUERIES[1][1].format(t="ft"),
        r"\echo END",
        # warm: caches, the connection, the heap's buffers
        "SELECT count(*) FROM heap;",
        QUERIES[0][1].format(t="ft") + ";",
    ]
    for rep in range(repeat):
        for name, sql in QUERIES:
            for table in ("ft", "heap"):
                lines += [
                    "SELECT pg_temp.cpu_ns() AS c0, "
                    "extract(epoch FROM clock_timestamp()) AS w0 \\gset",
                    sql.format(t=table) + " \\g /dev/null",
                    "SELECT 'RESULT', '%s', '%s', %d, pg_temp.cpu_ns() - :c0, "
                    "extract(epoch FROM clock_timestamp()) - :w0;"
                    % (name, table, rep),
                ]
    lines += ["SELECT 'ROWS', count(*) FROM heap;",
              "DROP SERVER bench_srv CASCADE;", "DROP TABLE heap;"]
    return "\n".join(lines) + "\n"


def quote(s):
    return "'" + s.replace("'", "''") + "'"


def run_psql(script, log):
    p = subprocess.run(["psql", "-X", "-q", "-At", "-F", "|", "-f", "-"],
                       input=script, capture_output=True, text=True)
    with open(log, "w") as f:
        f.write(script)
        f.write("\n---- output ----\n")
        f.write(p.stdout)
        f.write(p.stderr)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        sys.exit("bench/scan: psql failed (status %d); script and output in %s"
                 % (p.returncode, log))
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1000000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("--reuse-data", action="store_true")
    args = ap.parse_args()
    uri = os.environ["QLEAF_MONGODB_URI"]

    load(uri, args.docs, args.reuse_data)
    t = time.time()
    out = run_psql(psql_script(uri, args.repeat), args.log)
    print("measured in %.1f s (psql log: %s)" % (time.time() - t, args.log))

    best = {}
    rows = None
    explain = []
    in_explain = False
    for line in out.splitlines():
        if line == "EXPLAIN":
            in_explain = True
            continue
        if line == "END":
            in_explain = False
            continue
        if in_explain:
            explain.append(line)
            continue
        parts = line.split("|")
        if parts[0] == "RESULT":
            _, name, table, _rep, cpu_ns, wall = parts
            key = (name, table)
            cpu_ns, wall = int(cpu_ns), float(wall)
            if key not in best or cpu_ns < best[key][0]:
                best[key] = (cpu_ns, wall)
        elif parts[0] == "ROWS":
            rows = int(parts[1])
    if rows != args.docs:
        sys.exit("bench/scan: the heap table has %s rows, expected %d"
                 % (rows, args.docs))

    print()
    print("documents: %d of 10 fields:" % args.docs)
    for c, ty, what in COLUMNS:
        print("  %-6s %-17s <- %s" % (c, ty, what))
    print()
    print("plans:")
    for line in explain:
        print("  " + line)
    print()
    print("best of %d runs; CPU = the backend's on-CPU time per document"
          % args.repeat)
    print()
    hdr = ("query", "table", "docs/s", "CPU us/doc", "x heap", "target",
           "x target", "mongo_fdw", "x mongo_fdw")
    fmt = "%-10s  %-13s  %10s  %10s  %6s  %6s  %8s  %9s  %11s"
    print(fmt % hdr)
    print("-" * 98)
    for name, _ in QUERIES:
        ft_cpu, ft_wall = best[(name, "ft")]
        hp_cpu, hp_wall = best[(name, "heap")]
        ft_us = ft_cpu / 1000.0 / args.docs
        hp_us = hp_cpu / 1000.0 / args.docs
        target = TARGET.get(name)
        inc = INCUMBENT.get(name)
        print(fmt % (name, "qleaf_fdw", "%.0f" % (args.docs / ft_wall),
                     "%.3f" % ft_us, "%.2f" % (ft_us / hp_us) if hp_us else "-",
                     "%.2f" % target if target else "-",
                     "%.2f" % (ft_us / target) if target else "-",
                     "%.2f" % inc if inc else "-",
                     "%.2f" % (ft_us / inc) if inc else "-"))
        inc_h = INCUMBENT_HEAP.get(name)
        print(fmt % ("", "local heap", "%.0f" % (args.docs / hp_wall),
                     "%.3f" % hp_us, "1.00", "-", "-",
                     "%.2f" % inc_h if inc_h else "-",
                     "%.2f" % (hp_us / inc_h) if inc_h else "-"))
    print()
    print("x heap: qleaf_fdw's CPU per document over the local heap scan's, "
          "same query, same run.")
    print("target / mongo_fdw: CPU per document (us) to reach, and mongo_fdw's "
          "(its heap line: the heap scan in mongo_fdw's run).")
    print("docs/s is wall clock and includes waiting for MongoDB (a stand-in "
          "in Python is far slower than mongod).")


if __name__ == "__main__":
    main()
