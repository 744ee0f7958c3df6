#!/usr/bin/python3
"""The measuring half of bench/streams (see there).

Needs QLEAF_MONGODB_URI and PGHOST/PGPORT/PGUSER/PGDATABASE of a cluster
that preloads qleaf_fdw.  Phases:
  ceiling    MongoDB alone: N inserts (insert_many of 1000) and a pymongo
             change stream reading them back; then N more inserts while a
             pymongo change stream reads them (the live ceiling: N / (last
             event read - first write))
  catch-up   a stream created over those N events (start before them):
             N events / time until the N-th NOTIFY arrives
  live       a stream running while N more inserts are written as fast as
             the server takes them: N / (last NOTIFY - first write)
  latency    inserts paced at --rate events/s for --seconds; each document
             carries its send time; a LISTEN client takes write-to-NOTIFY
             latency from the payload (p50, p99, max)
  local      the catch-up's rows, copied out of event_store, inserted again
             by multi-row INSERTs of 1000 rows (one transaction each) into
             a copy of event_store: the PostgreSQL-only rate
"""
import argparse
import json
import multiprocessing
import os
import select
import sys
import time

import psycopg2
import psycopg2.extensions
import pymongo

DB = "qleaf_bench_streams"
BATCH = 1000


def pg():
    conn = psycopg2.connect("")
    conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
    return conn


def fresh(client, coll):
    """Drop and create coll; return its creation's cluster_timestamp."""
    client[DB].drop_collection(coll)
    ts = client[DB].command("create", coll)["operationTime"]
    return (ts.time << 32) | ts.inc


def write_many(uri, coll, n, start=0):
    client = pymongo.MongoClient(uri)
    c = client[DB][coll]
    for base in range(start, start + n, BATCH):
        c.insert_many([{"_id": i, "customer": i % 977, "status": "created",
                        "total": (i % 500) * 1.25, "sku": "SKU-%05d" % (i % 3000)}
                       for i in range(base, min(start + n, base + BATCH))],
                      ordered=False)
    client.close()


def paced_writer(uri, coll, rate, seconds, ready):
    """rate inserts/s for seconds, in 10 ms ticks; each document carries
    the wall-clock time just before its insert is sent."""
    client = pymongo.MongoClient(uri)
    c = client[DB][coll]
    c.insert_one({"_id": -1, "warmup": True})
    ready.wait()
    tick = 0.01
    t0 = time.time()
    sent = 0
    total = int(rate * seconds)
    while sent < total:
        due = min(total, int((time.time() - t0) * rate) + 1)
        if due > sent:
            now = time.time()
            docs = [{"_id": i, "t": now, "pad": "x" * 64} for i in range(sent, due)]
            if len(docs) == 1:
                c.insert_one(docs[0])
            else:
                c.insert_many(docs, ordered=True)
            sent = due
        nxt = t0 + (sent + 1) / rate
        delay = min(tick, nxt - time.time())
        if delay > 0:
            time.sleep(delay)       # pacing
    client.close()


class Listener:
    def __init__(self, channel):
        self.conn = pg()
        self.conn.cursor().execute('LISTEN "%s"' % channel)

    def collect(self, n, idle=120.0, on_payload=None):
        """Wait for n notifications; returns (time the first arrived, how
        many arrived with it, time the last arrived)."""
        got = 0
        first = first_n = last = None
        while got < n:
            if select.select([self.conn], [], [], idle) == ([], [], []):
                sys.exit("bench/streams: no NOTIFY for %.0f s after %d of %d"
                         % (idle, got, n))
            self.conn.poll()
            now = time.time()
            while self.conn.notifies:
                note = self.conn.notifies.pop(0)
                got += 1
                last = now
                if on_payload is not None:
                    on_payload(note.payload, now)
            if first is None:
                first, first_n = now, got
        return first, first_n, last

    def close(self):
        self.conn.close()


def sql(conn, text, *args):
    cur = conn.cursor()
    cur.execute(text, args)
    if cur.description is not None:
        return cur.fetchall()
    return None


BATCH_SIZE = 1000           # the streams' batch_size (--batch-size)


def create_stream(conn, name, coll, start, channel, payload="event"):
    sql(conn, "SELECT qleaf.create_stream(%s, server => 'bench_streams_srv', "
        "collection => %s, channel => %s, payload => %s, start_timestamp => %s, "
        "batch_size => %s)",
        name, coll, channel, payload, start, BATCH_SIZE)


def wait_running(conn, name, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = sql(conn, "SELECT state FROM qleaf.stream_status WHERE stream = %s", name)
        if r and r[0][0] == "running":
            return
        time.sleep(0.05)            # poll interval
    sys.exit("bench/streams: stream %s did not start running: %r" % (name, r))


def stream_count(conn, name):
    return sql(conn, "SELECT count(*) FROM qleaf.event_store WHERE stream = %s", name)[0][0]


def local_insert_rate(conn, stream):
    """Rows/s of multi-row INSERTs (1000 rows, one transaction each) of the
    stream's rows into a copy of event_store."""
    cols = ("stream, resume_token, operation_type, database, collection, "
            "document_key, full_document, full_document_before_change, "
            "update_description, cluster_time, cluster_timestamp, wall_time, "
            "txn_number, lsid, received_at")
    sql(conn, "DROP TABLE IF EXISTS bench_event_copy")
    sql(conn, "CREATE TABLE bench_event_copy (LIKE qleaf.event_store INCLUDING ALL)")
    cur = conn.cursor()
    cur.execute("SELECT %s FROM qleaf.event_store WHERE stream = %%s ORDER BY id" % cols,
                (stream,))
    rows = cur.fetchall()
    ncol = len(cols.split(","))
    stmts = []
    for base in range(0, len(rows), BATCH):
        chunk = rows[base:base + BATCH]
        values = ",".join(
            cur.mogrify("(" + ",".join(["%s"] * ncol) + ")",
                        tuple(json.dumps(v) if isinstance(v, (dict, list)) else v
                              for v in r)).decode()
            for r in chunk)
        stmts.append("INSERT INTO bench_event_copy (%s) VALUES %s" % (cols, values))
    t = time.time()
    for s in stmts:
        cur.execute(s)
    wall = time.time() - t
    sql(conn, "DROP TABLE bench_event_copy")
    return len(rows), wall


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=1000)
    args = ap.parse_args()
    global BATCH_SIZE
    BATCH_SIZE = args.batch_size
    n = args.events
    uri = os.environ["QLEAF_MONGODB_URI"]
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)
    conn = pg()
    client.drop_database(DB)
    sql(conn, "SET client_min_messages = warning")
    sql(conn, "CREATE EXTENSION IF NOT EXISTS qleaf_fdw")
    sql(conn, "DROP SERVER IF EXISTS bench_streams_srv CASCADE")
    sql(conn, "CREATE SERVER bench_streams_srv FOREIGN DATA WRAPPER qleaf_fdw "
        "OPTIONS (uri %s, database %s)", uri, DB)
    sql(conn, "CREATE USER MAPPING FOR CURRENT_USER SERVER bench_streams_srv")
    res = {}

    # ceiling: MongoDB alone
    start = fresh(client, "backlog")
    t = time.time()
    write_many(uri, "backlog", n)
    res["write"] = n / (time.time() - t)
    print("ceiling: %d inserts at %.0f/s" % (n, res["write"]), flush=True)
    coll = client[DB]["backlog"]
    from bson import Timestamp
    got = 0
    t = time.time()
    with coll.watch(start_at_operation_time=Timestamp(start >> 32, start & 0xFFFFFFFF),
                    max_await_time_ms=100, batch_size=BATCH) as s:
        while got < n:
            if s.try_next() is not None:
                got += 1
    res["read"] = n / (time.time() - t)
    print("ceiling: change stream read at %.0f events/s" % res["read"], flush=True)

    # live ceiling: pymongo reads the change stream while the writes happen
    ceiling_start = fresh(client, "live_ceiling")
    got = 0
    with client[DB]["live_ceiling"].watch(
            start_at_operation_time=Timestamp(ceiling_start >> 32, ceiling_start & 0xFFFFFFFF),
                    max_await_time_ms=100, batch_size=BATCH) as s:
        t = time.time()
        w = multiprocessing.Process(target=write_many, args=(uri, "live_ceiling", n))
        w.start()
        while got < n:
            if s.try_next() is not None:
                got += 1
        res["read_live"] = n / (time.time() - t)
        w.join()
    client[DB].drop_collection("live_ceiling")
    print("ceiling: change stream read while writing at %.0f events/s" % res["read_live"],
          flush=True)

    # catch-up: a stream over the backlog
    # (timed from the first NOTIFY: the worker's start is not a rate)
    lis = Listener("bench_catchup")
    create_stream(conn, "bench_catchup", "backlog", start, "bench_catchup", "key")
    first, first_n, last = lis.collect(n)
    res["catchup"] = (n - first_n) / (last - first)
    lis.close()
    print("stream catch-up: %d events at %.0f/s" % (n, res["catchup"]), flush=True)

    # live: stream running while the writes happen
    start = fresh(client, "live")
    lis = Listener("bench_live")
    create_stream(conn, "bench_live", "live", start, "bench_live", "key")
    wait_running(conn, "bench_live")
    t = time.time()
    w = multiprocessing.Process(target=write_many, args=(uri, "live", n))
    w.start()
    last = lis.collect(n)[2]
    w.join()
    res["live"] = n / (last - t)
    lis.close()
    print("stream live: %d events at %.0f/s" % (n, res["live"]), flush=True)
    sql(conn, "SELECT qleaf.pause_stream('bench_live')")

    # latency at a steady rate
    total = args.rate * args.seconds
    lat = []

    def on_payload(payload, now):
        doc = json.loads(payload).get("doc") or {}
        if "t" in doc:
            lat.append(now - doc["t"])

    lis = Listener("bench_paced")
    start = fresh(client, "paced")
    create_stream(conn, "bench_paced", "paced", start, "bench_paced", "event")
    wait_running(conn, "bench_paced")
    ready = multiprocessing.Event()
    w = multiprocessing.Process(target=paced_writer,
                                args=(uri, "paced", args.rate, args.seconds, ready))
    w.start()
    lis.collect(1)                      # the warm-up document
    t = time.time()
    ready.set()
    lis.collect(total, on_payload=on_payload)
    span = time.time() - t
    w.join()
    lis.close()
    lat.sort()
    res["lat"] = (len(lat), total / span, pct(lat, 50), pct(lat, 99), lat[-1] if lat else 0)
    print("latency: %d events at %.0f/s" % (len(lat), total / span), flush=True)

    # local multi-row INSERT of the catch-up's rows
    rows, wall = local_insert_rate(conn, "bench_catchup")
    res["local"] = rows / wall
    print("local INSERT: %d rows at %.0f/s" % (rows, res["local"]), flush=True)

    for s in ("bench_catchup", "bench_live", "bench_paced"):
        sql(conn, "SELECT qleaf.drop_stream(%s)", s)
    sql(conn, "DROP SERVER bench_streams_srv CASCADE")
    conn.close()
    client.drop_database(DB)
    client.close()

    goal = min(0.5 * res["local"], res["write"], res["read"])
    goal_live = min(0.5 * res["local"], res["read_live"])
    print()
    print("%d events per throughput run; latency at %d events/s for %d s; "
          "streams with batch_size %d" % (n, args.rate, args.seconds, BATCH_SIZE))
    print()
    fmt = "%-44s  %12s  %9s"
    print(fmt % ("", "events/s", "x local"))
    print("-" * 69)
    for label, key in (("local multi-row INSERT (1000 rows/txn)", "local"),
                       ("MongoDB inserts (insert_many of 1000)", "write"),
                       ("MongoDB change stream read (pymongo)", "read"),
                       ("MongoDB change stream read while writing", "read_live"),
                       ("stream catch-up: write -> row + NOTIFY", "catchup"),
                       ("stream live: write -> row + NOTIFY", "live")):
        print(fmt % (label, "%.0f" % res[key], "%.2f" % (res[key] / res["local"])))
    print()
    print("target catch-up: >= min(50%% of local INSERT, MongoDB insert and read rates) "
          "= %.0f events/s: %s (%.2f of it)"
          % (goal, "met" if res["catchup"] >= goal else "NOT met", res["catchup"] / goal))
    print("target live: >= min(50%% of local INSERT, MongoDB read while writing) "
          "= %.0f events/s: %s (%.2f of it; %.2f of pymongo's read while writing)"
          % (goal_live, "met" if res["live"] >= goal_live else "NOT met",
             res["live"] / goal_live, res["live"] / res["read_live"]))
    nlat, achieved, p50, p99, mx = res["lat"]
    print("latency write -> NOTIFY at %.0f events/s (%d events): p50 %.1f ms, "
          "p99 %.1f ms, max %.1f ms; target p99 < 100 ms: %s"
          % (achieved, nlat, p50 * 1000, p99 * 1000, mx * 1000,
             "met" if p99 < 0.1 else "NOT met"))


if __name__ == "__main__":
    main()
