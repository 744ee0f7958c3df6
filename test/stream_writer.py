#!/usr/bin/python3
"""A MongoDB writer that survives server restarts and writes each write once.

    test/stream_writer.py --writes N [--db D] [--coll C] [--seed S]
                          [--rate W] [--progress FILE]

Used by t/021_streams_exactly_once.pl: it writes N single-document writes
(inserts, updates, deletes; every 25th batch is a multi-document
transaction) into D.C of QLEAF_MONGODB_URI while the test kills and
restarts the server under it.

What it guarantees: when it exits 0, each of the N planned writes was
applied exactly once, so the server's oplog holds exactly N entries for
D.C from this run (a transaction's writes are entries of one applyOps).
How:
- The plan is fixed by the seed: batches of 1 to 20 writes on distinct
  documents, or a transaction of three (insert, update, delete).  Every
  insert has a new _id, every update sets "seq" to the write's own number,
  so whether a write was applied can be read from the collection: an insert
  is applied when its document exists, an update when the document's seq is
  the write's number, a delete when the document is gone.
- MongoDB's own retryable writes are off (retryWrites=false): after a
  restart the server may not remember the retry (the stand-in keeps no
  session table on disk), and a blind retry of an update would apply it a
  second time.  Instead, after any connection or server error the writer
  waits for the server, reads the batch's documents, and re-sends only the
  writes that are not applied, in plan order.  A transaction is atomic: it
  is re-run whole if and only if its insert is not there.
- This relies on the server acknowledging a write only once it is durable
  (the stand-in journals before it replies; a real replica set needs
  w:"majority" with journaling, which is what the writer asks for).
- Only this writer writes to D.C while it runs.

Pacing: --rate W (writes per second, 0 = as fast as it can) spreads the
writes over time so the faults a test injects fall among them.
Progress: --progress FILE is replaced (write + rename) every 200 writes
with "<writes done>", and at the end with "done <N>".  The last line on
stdout sums up: writes, batches, transactions, retries.
"""
import argparse
import os
import random
import sys
import time

import pymongo
from pymongo import DeleteOne, InsertOne, UpdateOne
from pymongo.errors import (AutoReconnect, BulkWriteError, ConnectionFailure,
                            OperationFailure, PyMongoError)
from pymongo.write_concern import WriteConcern

TXN_EVERY = 25          # every 25th batch is a transaction
MAX_BATCH = 50
MIN_LIVE = 100          # deletes and updates need documents to work on
GIVE_UP_SECONDS = 120   # no progress for this long: the server is gone


def plan(n, seed):
    """Yield batches: ("bulk"|"txn", [(kind, _id, seq), ...]) whose writes
    total n; kind is "i", "u" or "d"."""
    rng = random.Random(seed)
    live = []
    next_id = 0
    seq = 0
    nbatch = 0
    while seq < n:
        nbatch += 1
        room = n - seq
        ops = []
        used = set()

        def pick():
            for _ in range(10):
                i = rng.randrange(len(live))
                if live[i] not in used:
                    used.add(live[i])
                    return i
            return None

        def insert():
            nonlocal next_id
            ops.append(("i", next_id, seq + len(ops)))
            used.add(next_id)
            live.append(next_id)
            next_id += 1

        def update():
            i = pick()
            if i is not None:
                ops.append(("u", live[i], seq + len(ops)))

        def delete():
            i = pick()
            if i is not None:
                doc_id = live[i]
                live[i] = live[-1]
                live.pop()
                ops.append(("d", doc_id, seq + len(ops)))

        if nbatch % TXN_EVERY == 0 and room >= 3 and len(live) > MIN_LIVE:
            insert()
            update()
            delete()
            kind = "txn"
        else:
            kind = "bulk"
            for _ in range(min(room, rng.randint(1, MAX_BATCH))):
                r = rng.random()
                if len(live) <= MIN_LIVE or r < 0.5:
                    insert()
                elif r < 0.8:
                    update()
                else:
                    delete()
        seq += len(ops)
        yield kind, ops


def doc_of(doc_id, seq):
    return {"_id": doc_id, "seq": seq, "v": seq * 7 % 1000,
            "tag": "w%d" % (seq % 17)}


def request(op):
    """(kind, filter or document, update or None) of a planned write."""
    kind, doc_id, seq = op
    if kind == "i":
        return kind, doc_of(doc_id, seq), None
    if kind == "u":
        return kind, {"_id": doc_id}, {"$set": {"seq": seq, "v": seq % 1000}}
    return kind, {"_id": doc_id}, None


def bulk_request(op):
    kind, a, b = request(op)
    if kind == "i":
        return InsertOne(a)
    if kind == "u":
        return UpdateOne(a, b)
    return DeleteOne(a)


def applied(coll, ops):
    """Which of ops the collection shows as applied (list of bools)."""
    ids = [doc_id for _, doc_id, _ in ops]
    have = {d["_id"]: d.get("seq") for d in coll.find({"_id": {"$in": ids}},
                                                      {"seq": 1})}
    out = []
    for kind, doc_id, seq in ops:
        if kind == "i":
            out.append(doc_id in have)
        elif kind == "u":
            out.append(have.get(doc_id) == seq)
        else:
            out.append(doc_id not in have)
    return out


class Writer:
    def __init__(self, uri, db, coll, progress):
        self.client = pymongo.MongoClient(
            uri, retryWrites=False, retryReads=False,
            serverSelectionTimeoutMS=1000, connectTimeoutMS=1000,
            socketTimeoutMS=10000, w="majority", journal=True)
        self.coll = self.client[db].get_collection(
            coll, write_concern=WriteConcern(w="majority", j=True))
        self.progress = progress
        self.retries = 0
        self.done = 0

    def report(self, text):
        if not self.progress:
            return
        tmp = self.progress + ".tmp"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, self.progress)

    def run_bulk(self, ops):
        self.coll.bulk_write([bulk_request(op) for op in ops], ordered=True)

    def run_txn(self, ops):
        with self.client.start_session() as s:
            s.start_transaction()
            try:
                for op in ops:
                    kind, a, b = request(op)
                    if kind == "i":
                        self.coll.insert_one(a, session=s)
                    elif kind == "u":
                        self.coll.update_one(a, b, session=s)
                    else:
                        self.coll.delete_one(a, session=s)
            except BaseException:
                try:
                    s.abort_transaction()
                except PyMongoError:
                    pass
                raise
            s.commit_transaction()

    def batch(self, kind, ops):
        """Apply one planned batch exactly once, however often the server
        dies under it."""
        todo = ops
        last_ok = time.monotonic()
        while True:
            try:
                if kind == "txn":
                    self.run_txn(todo)
                else:
                    self.run_bulk(todo)
                return
            except BulkWriteError as e:
                # a write error is a bug in the plan (or a lost document)
                sys.exit("stream_writer: write error in a batch: %s" % e.details)
            except (ConnectionFailure, AutoReconnect, OperationFailure) as e:
                if isinstance(e, OperationFailure) and not _retryable(e):
                    raise
                err = e
            # The server went away (or is not primary yet): find out which
            # writes of the batch it kept, and send the rest.
            while True:
                if time.monotonic() - last_ok > GIVE_UP_SECONDS:
                    sys.exit("stream_writer: no answer from MongoDB for %d s "
                             "(last error: %s)" % (GIVE_UP_SECONDS, err))
                try:
                    state = applied(self.coll, ops)
                    break
                except (ConnectionFailure, AutoReconnect, OperationFailure) as e:
                    if isinstance(e, OperationFailure) and not _retryable(e):
                        raise
                    err = e
                    time.sleep(0.1)        # client-side backoff, not a test wait
            last_ok = time.monotonic()
            self.retries += 1
            if kind == "txn":
                if state[0]:
                    if not all(state):
                        sys.exit("stream_writer: a transaction was applied in part: %r"
                                 % list(zip(ops, state)))
                    return
                todo = ops
            else:
                todo = [op for op, ok in zip(ops, state) if not ok]
                if not todo:
                    return


def _retryable(e):
    labels = getattr(e, "_error_labels", None) or set()
    if "RetryableWriteError" in labels or "TransientTransactionError" in labels:
        return True
    # not primary / shutting down / interrupted at shutdown
    return e.code in (91, 189, 10107, 11600, 11602, 13435, 13436, 112, 251)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--writes", type=int, required=True)
    ap.add_argument("--db", default="qleaf_exactly_once")
    ap.add_argument("--coll", default="items")
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--progress")
    args = ap.parse_args()
    uri = os.environ.get("QLEAF_MONGODB_URI")
    if not uri:
        sys.exit("stream_writer: QLEAF_MONGODB_URI is not set")
    w = Writer(uri, args.db, args.coll, args.progress)
    t0 = time.monotonic()
    batches = txns = 0
    reported = 0
    for kind, ops in plan(args.writes, args.seed):
        w.batch(kind, ops)
        batches += 1
        txns += kind == "txn"
        w.done += len(ops)
        if w.done - reported >= 200:
            reported = w.done
            w.report(str(w.done))
        if args.rate > 0:
            ahead = t0 + w.done / args.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)          # pacing, not a wait for readiness
    w.report("done %d" % w.done)
    print("stream_writer: %d writes in %d batches (%d transactions), %d retries, "
          "%.1f s" % (w.done, batches, txns, w.retries, time.monotonic() - t0))
    w.client.close()


if __name__ == "__main__":
    main()
