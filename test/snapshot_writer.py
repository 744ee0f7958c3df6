#!/usr/bin/python3
"""Writes to a collection until told to stop, through server restarts.

    test/snapshot_writer.py --db D --coll C --ids N --stop FILE
                            [--rate W] [--seed S] [--progress FILE]

Used by t/022_snapshot.pl while a stream takes its snapshot of D.C, whose
documents have the integer _ids 0 .. N-1.  Each write is one of: an update
($set of "v" and "w", $inc of "n", $unset of "u"), a replacement, a delete
or an insert (of a new _id from N up, or of a deleted one again), on a
random document.  The writer stops once FILE exists, then inserts the
document {_id: "end"} and prints "writes <count>".

A write that fails because the server went away is sent again once the
server is back: applied twice or once, it leaves the same document or the
same absence (an $inc may count twice; the test compares the final state,
not the writes).  --rate W paces it at W writes per second.  --progress
FILE is replaced with the number of writes every 100 writes.
"""
import argparse
import os
import random
import sys
import time

import pymongo
from pymongo.errors import AutoReconnect, ConnectionFailure, PyMongoError

GIVE_UP_SECONDS = 120


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--coll", required=True)
    ap.add_argument("--ids", type=int, required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--progress")
    args = ap.parse_args()

    client = pymongo.MongoClient(os.environ["QLEAF_MONGODB_URI"],
                                 serverSelectionTimeoutMS=2000,
                                 retryWrites=False)
    coll = client[args.db][args.coll]
    rng = random.Random(args.seed)
    next_id = args.ids
    count = 0
    start = time.time()

    def run(op):
        deadline = time.time() + GIVE_UP_SECONDS
        while True:
            try:
                return op()
            except (AutoReconnect, ConnectionFailure):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    while not os.path.exists(args.stop):
        k = rng.randrange(next_id)
        r = rng.random()
        if r < 0.5:
            run(lambda: coll.update_one(
                {"_id": k}, {"$set": {"v": rng.random(), "w": "x" * rng.randrange(5)},
                             "$inc": {"n": 1}, "$unset": {"u": ""}}))
        elif r < 0.6:
            doc = {"_id": k, "replaced": count, "tags": ["a", count % 7]}
            run(lambda: coll.replace_one({"_id": k}, doc))
        elif r < 0.8:
            run(lambda: coll.delete_one({"_id": k}))
        elif r < 0.9:
            doc = {"_id": next_id, "v": rng.random(), "born": count}
            next_id += 1
            run(lambda: coll.replace_one({"_id": doc["_id"]}, doc, upsert=True))
        else:
            doc = {"_id": k, "again": count}
            run(lambda: coll.replace_one({"_id": k}, doc, upsert=True))
        count += 1
        if args.progress and count % 100 == 0:
            tmp = args.progress + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % count)
            os.rename(tmp, args.progress)
        if args.rate > 0:
            ahead = count / args.rate - (time.time() - start)
            if ahead > 0:
                time.sleep(ahead)
    run(lambda: coll.replace_one({"_id": "end"}, {"_id": "end"}, upsert=True))
    print("writes %d" % count)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PyMongoError as e:
        print("snapshot_writer: %s" % e, file=sys.stderr)
        sys.exit(1)
