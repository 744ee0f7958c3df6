#!/usr/bin/python3
"""What MongoDB logged for one collection, for comparing with a stream's
event table (t/021_streams_exactly_once.pl, bench/streams).

    test/stream_oplog.py create DB COLL
        drops COLL, creates it, and prints the cluster time of the create
        (seconds * 2^32 + increment, event_store's cluster_timestamp)
    test/stream_oplog.py events DB COLL SINCE
        prints, in oplog order, one line per change event of DB.COLL logged
        after SINCE (a cluster_timestamp):
            <cluster_timestamp> <operationType> <documentKey._id> <t|f>
        the last field: whether the write belongs to a transaction
        (operationType as a change stream names it: insert, update,
        replace, delete; commands on the collection are left out; the _id
        as jsonb's ->> prints a number or a string)

Reads local.oplog.rs, as on any replica-set member (the stand-in serves it
from its oplog); the entries of a transaction are the applyOps of one
entry, in order.  MongoDB: QLEAF_MONGODB_URI.
"""
import os
import sys

import pymongo
from bson import Timestamp, json_util


def bigint(ts):
    return (ts.time << 32) | ts.inc


def op_type(e):
    if e["op"] == "i":
        return "insert"
    if e["op"] == "d":
        return "delete"
    if e["op"] == "u":
        o = e["o"]
        return "update" if "$v" in o or any(k.startswith("$") for k in o) else "replace"
    return None


def key_of(e):
    k = e.get("o2") if e["op"] in ("i", "u") else e["o"]
    if e["op"] == "i" and k is None:
        k = {"_id": e["o"]["_id"]}
    v = k["_id"]
    return v if isinstance(v, str) else json_util.dumps(v)


def main():
    uri = os.environ.get("QLEAF_MONGODB_URI")
    if not uri:
        sys.exit("stream_oplog: QLEAF_MONGODB_URI is not set")
    if len(sys.argv) < 4 or sys.argv[1] not in ("create", "events"):
        sys.exit("usage: stream_oplog.py create DB COLL | events DB COLL SINCE")
    cmd, db, coll = sys.argv[1:4]
    client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=20000)
    if cmd == "create":
        client[db].drop_collection(coll)
        reply = client[db].command("create", coll)
        print(bigint(reply["operationTime"]))
        return
    since = int(sys.argv[4])
    ns = "%s.%s" % (db, coll)
    flt = {"ts": {"$gt": Timestamp(since >> 32, since & 0xFFFFFFFF)}}
    out = []
    for e in client.local["oplog.rs"].find(flt).sort("$natural", 1):
        if e["op"] == "c" and "applyOps" in e["o"]:
            for inner in e["o"]["applyOps"]:
                t = op_type(inner)
                if inner.get("ns") == ns and t:
                    out.append("%d %s %s t" % (bigint(e["ts"]), t, key_of(inner)))
        elif e.get("ns") == ns:
            t = op_type(e)
            if t:
                out.append("%d %s %s f" % (bigint(e["ts"]), t, key_of(e)))
    sys.stdout.write("".join(line + "\n" for line in out))


if __name__ == "__main__":
    main()
