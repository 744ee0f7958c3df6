"""Persistence with --dbpath: kill -9, restart on the same port and data
directory, and find every acknowledged write, index, collection option and
oplog entry again; resume tokens taken before the kill still resume.

Stand-in only (a test cannot kill a shared server).
"""
import threading

import pytest
from pymongo.errors import DuplicateKeyError, PyMongoError

from conftest import RawChangeStream, operation_time_of

pytestmark = pytest.mark.standin_only


def events_of(client, db, coll, n, **spec):
    with RawChangeStream(client, db, coll, spec=spec) as s:
        return s.collect(n)


def test_kill9_keeps_data_indexes_options_and_oplog(standin):
    server = standin(dbpath=True)
    c = server.client()
    db = c.shop
    db.command({"create": "inv",
                "changeStreamPreAndPostImages": {"enabled": True}})
    db.inv.create_index("sku", unique=True)
    t_start = operation_time_of(c, lambda s: db.marker.insert_one(
        {"_id": 0}, session=s))
    db.inv.insert_many([{"_id": i, "sku": "s%d" % i, "n": i}
                        for i in range(50)])
    db.inv.update_many({"_id": {"$lt": 10}}, {"$inc": {"n": 100}})
    db.inv.delete_many({"_id": {"$gte": 45}})
    db.inv.replace_one({"_id": 20}, {"sku": "s20", "n": -1})
    with c.start_session() as sess:
        with sess.start_transaction():
            db.inv.insert_one({"_id": 100, "sku": "t"}, session=sess)
            db.inv.update_one({"_id": 21}, {"$set": {"n": 0}}, session=sess)
    db.gone.insert_one({"_id": 1})
    db.gone.drop()
    c.drop_database("dropped_db")
    c.dropped_db.c.insert_one({"_id": 1})
    c.drop_database("dropped_db")
    n_events = 50 + 10 + 5 + 1 + 2
    before_events = events_of(c, "shop", "inv", n_events,
                              startAtOperationTime=t_start)
    before_docs = list(db.inv.find().sort("_id"))
    before_time = c.admin.command("ping")["operationTime"]
    c.close()

    server.kill9()
    server.restart()

    c = server.client()
    db = c.shop
    assert list(db.inv.find().sort("_id")) == before_docs
    assert "gone" not in db.list_collection_names()
    assert "dropped_db" not in c.list_database_names()
    idx = {i["name"]: i for i in db.inv.list_indexes()}
    assert idx["sku_1"]["unique"] is True
    opts = list(db.list_collections(filter={"name": "inv"}))[0]["options"]
    assert opts["changeStreamPreAndPostImages"] == {"enabled": True}
    with pytest.raises(DuplicateKeyError):
        db.inv.insert_one({"sku": "s1"})

    # The oplog came back: the same events, the same tokens, from a start
    # time and from a token both taken before the kill.
    assert events_of(c, "shop", "inv", n_events,
                     startAtOperationTime=t_start) == before_events
    mid = before_events[30]
    with RawChangeStream(c, "shop", "inv",
                         spec={"resumeAfter": mid["_id"]}) as s:
        assert s.collect(n_events - 31) == before_events[31:]
        db.inv.insert_one({"_id": 1000, "sku": "after"})
        [ev] = s.collect(1)
    assert ev["documentKey"] == {"_id": 1000}
    assert ev["_id"]["_data"] > before_events[-1]["_id"]["_data"]
    assert ev["clusterTime"] > before_time       # the clock never goes back
    c.close()


def test_every_acknowledged_write_survives_kill9(standin):
    """A writer inserts one document at a time until the server dies under
    it; every insert the server acknowledged is there after the restart."""
    server = standin(dbpath=True)
    acked = []
    started = threading.Event()
    stop = threading.Event()

    def writer():
        c = server.client(serverSelectionTimeoutMS=2000, retryWrites=False)
        try:
            i = 0
            while not stop.is_set():
                c.w.c.insert_one({"_id": i, "pad": "x" * 100})
                acked.append(i)
                if i == 100:
                    started.set()
                i += 1
        except PyMongoError:
            pass
        finally:
            started.set()
            c.close()

    t = threading.Thread(target=writer)
    t.start()
    assert started.wait(60)
    server.kill9()
    stop.set()
    t.join(30)
    assert len(acked) > 100
    server.restart()
    c = server.client()
    have = {d["_id"] for d in c.w.c.find({}, {"_id": 1})}
    missing = sorted(set(acked) - have)
    assert missing == [], "acknowledged but lost: %r" % missing[:10]
    c.close()


def test_uncommitted_transaction_is_gone_after_kill9(standin):
    server = standin(dbpath=True)
    c = server.client()
    c.t.c.insert_one({"_id": 1, "x": 1})
    s = c.start_session()
    s.start_transaction()
    c.t.c.insert_one({"_id": 2}, session=s)
    c.t.c.update_one({"_id": 1}, {"$set": {"x": 2}}, session=s)
    server.kill9()
    server.restart()
    c2 = server.client()
    assert list(c2.t.c.find()) == [{"_id": 1, "x": 1}]
    c2.close()
    c.close()


def test_restart_twice_keeps_appending(standin):
    """Writes after a restart are durable too, and tokens keep growing."""
    server = standin(dbpath=True)
    tokens = []
    for round_ in range(3):
        c = server.client()
        with RawChangeStream(c, "r", "c") as s:
            c.r.c.insert_one({"_id": round_})
            tokens.append(s.collect(1)[0]["_id"]["_data"])
        c.close()
        server.kill9()
        server.restart()
    c = server.client()
    assert sorted(d["_id"] for d in c.r.c.find()) == [0, 1, 2]
    assert tokens == sorted(tokens) and len(set(tokens)) == 3
    c.close()
