"""Read-only views (create with viewOn and pipeline), as mongod has them:
listCollections shows them as type "view", reads run the view's pipeline
before the request's, writes and change streams are refused with 166
CommandNotSupportedOnView.  Time series collections: test_timeseries.py."""
import pytest
from pymongo.errors import BulkWriteError, OperationFailure, WriteError


def _orders(db):
    db.orders.insert_many([
        {"_id": 1, "cust": "a", "total": 10, "status": "paid"},
        {"_id": 2, "cust": "b", "total": 25, "status": "open"},
        {"_id": 3, "cust": "a", "total": 40, "status": "paid"},
        {"_id": 4, "cust": "c", "total": 5, "status": "paid"},
    ])
    db.command("create", "paid", viewOn="orders",
               pipeline=[{"$match": {"status": "paid"}},
                         {"$project": {"cust": 1, "total": 1}}])


def test_list_collections_shows_the_view(db):
    _orders(db)
    infos = {i["name"]: i for i in db.list_collections()}
    assert infos["orders"]["type"] == "collection"
    v = infos["paid"]
    assert v["type"] == "view"
    assert v["options"] == {"viewOn": "orders",
                            "pipeline": [{"$match": {"status": "paid"}},
                                         {"$project": {"cust": 1, "total": 1}}]}
    assert v["info"]["readOnly"] is True
    # the filter qleaf_fdw's IMPORT FOREIGN SCHEMA sends leaves views out
    names = [i["name"] for i in db.list_collections(filter={"type": "collection"},
                                                    nameOnly=True)]
    assert names == ["orders"]
    names = db.list_collection_names(filter={"type": "view"})
    assert names == ["paid"]


def test_find_runs_the_view_pipeline_first(db):
    _orders(db)
    assert list(db.paid.find()) == [{"_id": 1, "cust": "a", "total": 10},
                                    {"_id": 3, "cust": "a", "total": 40},
                                    {"_id": 4, "cust": "c", "total": 5}]
    got = list(db.paid.find({"total": {"$gte": 10}}, {"total": 1},
                            sort=[("total", -1)]))
    assert got == [{"_id": 3, "total": 40}, {"_id": 1, "total": 10}]
    # the view's $project removed status: a filter on it matches nothing
    assert list(db.paid.find({"status": "paid"})) == []
    assert db.paid.find_one({"_id": 3}) == {"_id": 3, "cust": "a", "total": 40}
    assert db.paid.find_one({"_id": 2}) is None


def test_cursor_on_the_view_in_batches(db):
    _orders(db)
    cur = db.paid.find(batch_size=1)
    assert [d["_id"] for d in cur] == [1, 3, 4]
    reply = db.command("find", "paid", batchSize=1)
    assert reply["cursor"]["ns"] == db.name + ".paid"
    got = list(db.paid.aggregate([{"$sort": {"total": -1}}], batchSize=1))
    assert [d["_id"] for d in got] == [3, 1, 4]


def test_aggregate_and_count_on_the_view(db):
    _orders(db)
    got = list(db.paid.aggregate([{"$match": {"cust": "a"}},
                                  {"$group": {"_id": "$cust", "sum": {"$sum": "$total"}}}]))
    assert got == [{"_id": "a", "sum": 50}]
    assert db.command("count", "paid")["n"] == 3
    assert db.command("count", "paid", query={"cust": "a"})["n"] == 2
    assert db.paid.count_documents({"total": {"$lt": 20}}) == 2
    assert db.paid.estimated_document_count() == 3
    assert sorted(db.paid.distinct("cust")) == ["a", "c"]


def test_view_follows_its_collection(db):
    _orders(db)
    db.orders.insert_one({"_id": 5, "cust": "d", "total": 1, "status": "paid"})
    db.orders.delete_one({"_id": 1})
    assert [d["_id"] for d in db.paid.find()] == [3, 4, 5]


def test_view_on_a_view(db):
    _orders(db)
    db.command("create", "big_paid", viewOn="paid",
               pipeline=[{"$match": {"total": {"$gt": 8}}}])
    assert [d["_id"] for d in db.big_paid.find()] == [1, 3]


def test_view_on_a_missing_collection_reads_as_empty(db):
    db.other.insert_one({"_id": 1})
    db.command("create", "ghost", viewOn="nosuch", pipeline=[])
    assert list(db.ghost.find()) == []
    assert db.command("count", "ghost")["n"] == 0
    assert list(db.ghost.aggregate([])) == []


def test_writes_to_a_view_fail_with_166(db):
    _orders(db)
    msg = "Namespace %s.paid is a view, not a collection" % db.name
    with pytest.raises(WriteError) as e:
        db.paid.insert_one({"_id": 9})
    assert e.value.code == 166
    assert e.value.details["errmsg"] == msg
    with pytest.raises(BulkWriteError) as e:
        db.paid.insert_many([{"_id": 9}, {"_id": 10}], ordered=False)
    errs = e.value.details["writeErrors"]
    assert [(x["index"], x["code"]) for x in errs] == [(0, 166), (1, 166)]
    assert e.value.details["nInserted"] == 0
    with pytest.raises(WriteError) as e:
        db.paid.update_one({"_id": 1}, {"$set": {"total": 0}})
    assert e.value.code == 166
    with pytest.raises(WriteError) as e:
        db.paid.delete_one({"_id": 1})
    assert e.value.code == 166
    with pytest.raises(OperationFailure) as e:
        db.paid.find_one_and_update({"_id": 1}, {"$set": {"total": 0}})
    assert e.value.code == 166
    with pytest.raises(OperationFailure) as e:
        db.paid.create_index("cust")
    assert e.value.code == 166
    # nothing changed underneath
    assert db.orders.find_one({"_id": 1})["total"] == 10
    assert db.orders.count_documents({}) == 4


def test_coll_stats_and_list_indexes_refused(db):
    _orders(db)
    for cmd in ("collStats", "listIndexes"):
        with pytest.raises(OperationFailure) as e:
            db.command(cmd, "paid")
        assert e.value.code == 166, cmd


def test_change_stream_on_a_view_refused(db):
    _orders(db)
    with pytest.raises(OperationFailure) as e:
        with db.paid.watch():
            pass
    assert e.value.code == 166


def test_drop_a_view(db):
    _orders(db)
    db.paid.drop()
    assert sorted(db.list_collection_names()) == ["orders"]
    assert db.orders.count_documents({}) == 4


def test_create_a_view_where_a_name_is_taken(db):
    _orders(db)
    with pytest.raises(OperationFailure) as e:
        db.command("create", "orders", viewOn="paid", pipeline=[])
    assert e.value.code == 48


def test_view_pipeline_may_not_write(db):
    _orders(db)
    with pytest.raises(OperationFailure) as e:
        db.command("create", "w", viewOn="orders", pipeline=[{"$out": "x"}])
    assert e.value.code in (167, 9)


@pytest.mark.standin_only
def test_view_survives_kill9(standin):
    server = standin(dbpath=True)
    c = server.client()
    _orders(c.shop)
    c.close()
    server.kill9()
    server.restart()
    c = server.client()
    infos = {i["name"]: i for i in c.shop.list_collections()}
    assert infos["paid"]["type"] == "view"
    assert infos["paid"]["options"]["viewOn"] == "orders"
    assert [d["_id"] for d in c.shop.paid.find()] == [1, 3, 4]
    c.close()
