"""What qleaf_fdw asks while planning and importing: collStats (count and
average size), listIndexes (each index's key), listCollections filtered on
type with nameOnly, and $sample followed by $sort."""
import bson
import pytest


def test_coll_stats_count_and_average_size(db):
    docs = [{"_id": i, "s": "x" * i} for i in range(1, 11)]
    db.c.insert_many(docs)
    stats = db.command("collStats", "c")
    assert stats["ok"] == 1
    assert stats["count"] == 10
    size = sum(len(bson.encode(d)) for d in docs)
    assert stats["size"] == size
    assert stats["avgObjSize"] == size // 10
    assert stats["ns"] == db.name + ".c"


def test_coll_stats_missing_collection(db):
    db.other.insert_one({"_id": 1})
    with pytest.raises(Exception) as e:
        db.command("collStats", "nosuch")
    assert getattr(e.value, "code", None) == 26


def test_list_indexes_keys(db):
    db.c.insert_one({"_id": 1, "a": {"b": 1}, "t": "x"})
    db.c.create_index([("a.b", 1), ("t", -1)])
    keys = [list(i["key"].items()) for i in db.c.list_indexes()]
    assert sorted(keys) == [[("_id", 1)], [("a.b", 1), ("t", -1)]]


def test_list_indexes_missing_collection(db):
    db.other.insert_one({"_id": 1})
    with pytest.raises(Exception) as e:
        db.command("listIndexes", "nosuch")
    assert getattr(e.value, "code", None) == 26


def test_list_collections_name_only_by_type(db):
    db.create_collection("b")
    db.create_collection("a")
    reply = db.command({"listCollections": 1, "nameOnly": True,
                        "filter": {"type": "collection"}})
    names = [c["name"] for c in reply["cursor"]["firstBatch"]]
    assert sorted(names) == ["a", "b"]
    assert all(c["type"] == "collection" for c in reply["cursor"]["firstBatch"])
    reply = db.command({"listCollections": 1, "nameOnly": True,
                        "filter": {"type": "view"}})
    assert reply["cursor"]["firstBatch"] == []


def test_sample_then_sort(db):
    db.c.insert_many([{"_id": i} for i in range(50)])
    got = list(db.c.aggregate([{"$sample": {"size": 10}}, {"$sort": {"_id": 1}}]))
    ids = [d["_id"] for d in got]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert ids == sorted(ids)
    everything = list(db.c.aggregate([{"$sample": {"size": 1000}},
                                      {"$sort": {"_id": 1}}]))
    assert [d["_id"] for d in everything] == list(range(50))
