"""Cursors: batch sizes, getMore, killCursors, counted in round trips.

Round trips are counted with pymongo's command monitoring, so a server
that returned everything at once (or one document per getMore) fails.
Collections here hold counts that are not multiples of the batch size, so
the last batch is short and its cursor id is 0 on every MongoDB version.
"""
import pytest
from bson import Int64
from pymongo.errors import OperationFailure


def batches(listener, name):
    """Sizes of first/next batches of the replies to `name` and getMore."""
    sizes = []
    for ev in listener.succeeded_events:
        if ev.command_name == name:
            sizes.append(len(ev.reply["cursor"]["firstBatch"]))
        elif ev.command_name == "getMore":
            sizes.append(len(ev.reply["cursor"]["nextBatch"]))
    return sizes


def last_cursor_id(listener):
    return [ev.reply["cursor"]["id"] for ev in listener.succeeded_events
            if ev.command_name in ("find", "aggregate", "getMore")][-1]


@pytest.fixture
def mdb(monitored, db):
    c, listener = monitored
    mine = c[db.name]
    return mine, listener


def fill(coll, n):
    coll.insert_many([{"_id": i, "v": i % 7} for i in range(n)])


def test_find_batch_size(mdb):
    db, listener = mdb
    fill(db.c, 5)
    listener.clear()
    docs = list(db.c.find().sort("_id", 1).batch_size(2))
    assert [d["_id"] for d in docs] == [0, 1, 2, 3, 4]
    assert listener.count("find") == 1
    assert listener.count("getMore") == 2
    assert batches(listener, "find") == [2, 2, 1]
    assert last_cursor_id(listener) == 0


def test_find_default_first_batch_is_101(mdb):
    db, listener = mdb
    fill(db.c, 150)
    listener.clear()
    assert len(list(db.c.find())) == 150
    assert batches(listener, "find") == [101, 49]


def test_find_limit_with_batch_size(mdb):
    db, listener = mdb
    fill(db.c, 10)
    listener.clear()
    docs = list(db.c.find().sort("_id", 1).limit(3).batch_size(2))
    assert [d["_id"] for d in docs] == [0, 1, 2]
    assert batches(listener, "find") == [2, 1]
    assert last_cursor_id(listener) == 0


def test_find_single_batch(db):
    fill(db.c, 10)
    reply = db.command({"find": "c", "limit": 3, "singleBatch": True})
    assert len(reply["cursor"]["firstBatch"]) == 3
    assert reply["cursor"]["id"] == 0


def test_find_sorted_across_batches(mdb):
    db, listener = mdb
    fill(db.c, 47)
    docs = list(db.c.find({}, {"v": 1}).sort([("v", -1), ("_id", 1)])
                .skip(3).batch_size(10))
    expect = sorted(({"_id": i, "v": i % 7} for i in range(47)),
                    key=lambda d: (-d["v"], d["_id"]))[3:]
    assert docs == expect
    assert listener.count("getMore") == 4       # 10+10+10+10+4


def test_aggregate_batch_size(mdb):
    db, listener = mdb
    fill(db.c, 9)
    listener.clear()
    docs = list(db.c.aggregate([{"$match": {"_id": {"$gte": 2}}},
                                {"$sort": {"_id": 1}}], batchSize=3))
    assert [d["_id"] for d in docs] == [2, 3, 4, 5, 6, 7, 8]
    assert batches(listener, "aggregate") == [3, 3, 1]


def test_aggregate_batch_size_zero_defers_work(db):
    fill(db.c, 5)
    with db.client.start_session() as s:
        reply = db.command({"aggregate": "c", "pipeline": [],
                            "cursor": {"batchSize": 0}}, session=s)
        cur = reply["cursor"]
        assert cur["firstBatch"] == [] and cur["id"] != 0
        more = db.command({"getMore": Int64(cur["id"]), "collection": "c"},
                          session=s)
        assert len(more["cursor"]["nextBatch"]) == 5
        assert more["cursor"]["id"] == 0
        assert more["cursor"]["ns"] == db.name + ".c"


def test_aggregate_default_first_batch_is_101(mdb):
    db, listener = mdb
    fill(db.c, 130)
    listener.clear()
    assert len(list(db.c.aggregate([]))) == 130
    assert batches(listener, "aggregate") == [101, 29]


def test_aggregate_requires_cursor_option(db):
    with pytest.raises(OperationFailure) as e:
        db.command({"aggregate": "c", "pipeline": []})
    assert e.value.code == 9 and e.value.details["codeName"] == "FailedToParse"


def test_get_more_batch_size(db):
    fill(db.c, 20)
    with db.client.start_session() as s:
        reply = db.command({"find": "c", "batchSize": 1}, session=s)
        cid = reply["cursor"]["id"]
        more = db.command({"getMore": Int64(cid), "collection": "c",
                           "batchSize": 5}, session=s)
        assert len(more["cursor"]["nextBatch"]) == 5
        assert more["cursor"]["id"] == cid
        rest = db.command({"getMore": Int64(cid), "collection": "c"},
                          session=s)
        assert len(rest["cursor"]["nextBatch"]) == 14
        assert rest["cursor"]["id"] == 0


def test_kill_cursors(db):
    fill(db.c, 10)
    with db.client.start_session() as s:
        cid = db.command({"find": "c", "batchSize": 2},
                         session=s)["cursor"]["id"]
        assert cid != 0
        reply = db.command({"killCursors": "c",
                            "cursors": [Int64(cid), Int64(123456789)]},
                           session=s)
        assert reply["cursorsKilled"] == [cid]
        assert reply["cursorsNotFound"] == [123456789]
        assert reply["cursorsAlive"] == []
        assert reply["cursorsUnknown"] == []
        with pytest.raises(OperationFailure) as e:
            db.command({"getMore": Int64(cid), "collection": "c"}, session=s)
        assert e.value.code == 43
        assert e.value.details["codeName"] == "CursorNotFound"


def test_get_more_unknown_cursor(db):
    db.c.insert_one({})
    with pytest.raises(OperationFailure) as e:
        db.command({"getMore": Int64(987654321), "collection": "c"})
    assert e.value.code == 43
    assert e.value.details["codeName"] == "CursorNotFound"


def test_exhausted_cursor_is_gone(db):
    fill(db.c, 3)
    with db.client.start_session() as s:
        cid = db.command({"find": "c", "batchSize": 2},
                         session=s)["cursor"]["id"]
        last = db.command({"getMore": Int64(cid), "collection": "c"},
                          session=s)
        assert last["cursor"]["id"] == 0
        with pytest.raises(OperationFailure) as e:
            db.command({"getMore": Int64(cid), "collection": "c"}, session=s)
        assert e.value.code == 43


def test_pymongo_close_kills_the_cursor(mdb):
    db, listener = mdb
    fill(db.c, 10)
    cursor = db.c.find().batch_size(2)
    next(cursor)
    cursor.close()
    assert listener.count("killCursors") == 1
    [reply] = listener.replies("killCursors")
    assert len(reply["cursorsKilled"]) == 1


def test_many_open_cursors_are_independent(db):
    fill(db.c, 30)
    with db.client.start_session() as s:
        ids = [db.command({"find": "c", "filter": {"v": v}, "batchSize": 1},
                          session=s)["cursor"]["id"] for v in range(3)]
        assert len(set(ids)) == 3
        for v, cid in enumerate(ids):
            more = db.command({"getMore": Int64(cid), "collection": "c"},
                              session=s)["cursor"]["nextBatch"]
            assert all(d["v"] == v for d in more)
