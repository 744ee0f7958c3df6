"""aggregate: the stages the project uses, $sample, $collStats, errors."""
import pytest
from bson import SON
from pymongo.errors import OperationFailure


@pytest.fixture
def orders(db):
    db.orders.insert_many([
        {"_id": 1, "cust": "a", "status": "paid", "total": 10,
         "items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 2}]},
        {"_id": 2, "cust": "b", "status": "paid", "total": 25,
         "items": [{"sku": "x", "qty": 5}]},
        {"_id": 3, "cust": "a", "status": "open", "total": 7, "items": []},
        {"_id": 4, "cust": "c", "status": "paid", "total": 40,
         "items": [{"sku": "z", "qty": 1}]},
        {"_id": 5, "cust": "b", "status": "void", "total": 3},
    ])
    db.customers.insert_many([
        {"_id": "a", "name": "Ann"}, {"_id": "b", "name": "Bob"},
        {"_id": "c", "name": "Cid"}])
    return db.orders


def agg(coll, pipeline):
    return list(coll.aggregate(pipeline))


def test_match_project_sort_skip_limit(orders):
    got = agg(orders, [{"$match": {"status": "paid"}},
                       {"$project": {"_id": 0, "cust": 1, "total": 1}},
                       {"$sort": {"total": -1}}, {"$skip": 1},
                       {"$limit": 1}])
    assert got == [{"cust": "b", "total": 25}]


def test_group_accumulators(orders):
    got = agg(orders, [
        {"$group": {"_id": "$cust", "n": {"$sum": 1},
                    "total": {"$sum": "$total"}, "avg": {"$avg": "$total"},
                    "min": {"$min": "$total"}, "max": {"$max": "$total"},
                    "statuses": {"$addToSet": "$status"},
                    "ids": {"$push": "$_id"}}},
        {"$sort": {"_id": 1}}])
    assert [g["_id"] for g in got] == ["a", "b", "c"]
    a = got[0]
    assert a["n"] == 2 and a["total"] == 17 and a["avg"] == 8.5
    assert a["min"] == 7 and a["max"] == 10
    assert sorted(a["statuses"]) == ["open", "paid"]
    assert sorted(a["ids"]) == [1, 3]


def test_group_null_key_and_count(orders):
    got = agg(orders, [{"$group": {"_id": None, "sum": {"$sum": "$total"}}}])
    assert got == [{"_id": None, "sum": 85}]
    assert agg(orders, [{"$match": {"status": "paid"}},
                        {"$count": "paid"}]) == [{"paid": 3}]


def test_sum_of_nothing_is_zero(orders):
    """$group over no documents gives no group at all (mongomock gives one);
    $sum over documents that lack the field is 0 (SQL would say NULL)."""
    got = agg(orders, [{"$match": {"status": "nothing"}},
                       {"$group": {"_id": None, "s": {"$sum": "$total"}}}])
    assert got == []
    got = agg(orders, [{"$group": {"_id": None,
                                   "s": {"$sum": "$missing"}}}])
    assert got == [{"_id": None, "s": 0}]


def test_unwind(orders):
    got = agg(orders, [{"$unwind": "$items"},
                       {"$project": {"sku": "$items.sku", "_id": 1}},
                       {"$sort": SON([("_id", 1), ("sku", 1)])}])
    assert [(d["_id"], d["sku"]) for d in got] == [
        (1, "x"), (1, "y"), (2, "x"), (4, "z")]
    keep = agg(orders, [{"$unwind": {"path": "$items",
                                     "preserveNullAndEmptyArrays": True}}])
    assert len(keep) == 6


def test_lookup(orders):
    got = agg(orders, [{"$match": {"_id": {"$in": [1, 4]}}},
                       {"$lookup": {"from": "customers", "localField": "cust",
                                    "foreignField": "_id", "as": "who"}},
                       {"$sort": {"_id": 1}}])
    assert [d["who"] for d in got] == [[{"_id": "a", "name": "Ann"}],
                                       [{"_id": "c", "name": "Cid"}]]


def test_add_fields_set_unset_replace_root(orders):
    got = agg(orders, [{"$match": {"_id": 2}},
                       {"$addFields": {"double": {"$multiply": ["$total", 2]}}},
                       {"$set": {"tag": "t"}},
                       {"$unset": "items"},
                       {"$replaceRoot": {"newRoot": {
                           "d": "$double", "t": "$tag", "i": "$items"}}}])
    assert got == [{"d": 50, "t": "t"}]


def test_facet_and_bucket(orders):
    got = agg(orders, [{"$facet": {
        "byStatus": [{"$group": {"_id": "$status", "count": {"$sum": 1}}},
                     {"$sort": {"count": -1}}],
        "buckets": [{"$bucket": {"groupBy": "$total",
                                 "boundaries": [0, 10, 100],
                                 "default": "other"}}]}}])
    assert got[0]["byStatus"][0] == {"_id": "paid", "count": 3}
    assert got[0]["buckets"] == [{"_id": 0, "count": 2},
                                 {"_id": 10, "count": 3}]


def test_expressions(orders):
    got = agg(orders, [{"$match": {"_id": 1}},
                       {"$project": {
                           "_id": 0,
                           "c": {"$cond": [{"$gt": ["$total", 5]}, "big",
                                           "small"]},
                           "n": {"$size": "$items"},
                           "s": {"$concat": ["$cust", "-", "$status"]},
                           "u": {"$toUpper": "$status"},
                           "f": {"$ifNull": ["$nothing", "dflt"]}}}])
    assert got == [{"c": "big", "n": 2, "s": "a-paid", "u": "PAID",
                    "f": "dflt"}]


def test_sample(db):
    db.s.insert_many([{"_id": i} for i in range(20)])
    got = agg(db.s, [{"$sample": {"size": 5}}])
    ids = [d["_id"] for d in got]
    assert len(ids) == 5 and len(set(ids)) == 5
    assert set(ids) <= set(range(20))
    everything = agg(db.s, [{"$sample": {"size": 50}}])
    assert sorted(d["_id"] for d in everything) == list(range(20))


def test_sample_is_random(db):
    db.s.insert_many([{"_id": i} for i in range(50)])
    draws = {tuple(d["_id"] for d in agg(db.s, [{"$sample": {"size": 3}}]))
             for _ in range(10)}
    assert len(draws) > 1


def test_coll_stats_count(orders):
    [stats] = agg(orders, [{"$collStats": {"count": {}}}])
    assert stats["count"] == 5
    assert stats["ns"] == orders.full_name


def test_coll_stats_must_be_first(orders):
    with pytest.raises(OperationFailure) as e:
        agg(orders, [{"$match": {}}, {"$collStats": {"count": {}}}])
    assert e.value.code == 40602


def test_unknown_stage(orders):
    """40324 'Unrecognized pipeline stage name'."""
    with pytest.raises(OperationFailure) as e:
        agg(orders, [{"$frobnicate": {}}])
    assert e.value.code == 40324
    assert "$frobnicate" in e.value.details["errmsg"]


def test_aggregate_on_missing_collection_is_empty(db):
    assert agg(db.nothere, [{"$match": {}}]) == []


def test_database_aggregate_needs_a_collectionless_stage(db):
    """aggregate: 1 only accepts collectionless stages ($changeStream,
    $currentOp, ...); a plain $match there fails with code 73."""
    with pytest.raises(OperationFailure) as e:
        db.command({"aggregate": 1, "pipeline": [{"$match": {}}],
                    "cursor": {}})
    assert e.value.code == 73


def test_graph_lookup(db):
    db.emp.insert_many([{"_id": 1, "name": "ceo", "boss": None},
                        {"_id": 2, "name": "cto", "boss": 1},
                        {"_id": 3, "name": "dev", "boss": 2},
                        {"_id": 4, "name": "cfo", "boss": 1}])
    got = agg(db.emp, [{"$match": {"_id": 3}},
                       {"$graphLookup": {"from": "emp", "startWith": "$boss",
                                         "connectFromField": "boss",
                                         "connectToField": "_id",
                                         "as": "chain"}}])
    assert sorted(d["name"] for d in got[0]["chain"]) == ["ceo", "cto"]


def test_out_writes_a_collection(orders):
    got = agg(orders, [{"$match": {"status": "paid"}},
                       {"$project": {"total": 1}}, {"$out": "paid"}])
    assert got == []
    paid = orders.database.paid
    assert sorted(d["_id"] for d in paid.find()) == [1, 2, 4]
    # $out replaces the whole target collection.
    agg(orders, [{"$match": {"_id": 3}}, {"$out": "paid"}])
    assert [d["_id"] for d in paid.find()] == [3]


def test_add_to_set_keeps_falsy_values_and_numeric_equality(db):
    """$addToSet keeps 0, false, "" and null, skips missing fields, and
    holds one value of numbers that compare equal across types."""
    from bson import Decimal128, Int64
    db.s.insert_many([{"v": 0}, {"v": False}, {"v": ""}, {"v": None}, {},
                      {"v": 1}, {"v": 1.0}, {"v": Int64(1)},
                      {"v": Decimal128("1")}, {"v": "1"}])
    got = agg(db.s, [{"$group": {"_id": None, "v": {"$addToSet": "$v"}}}])
    assert len(got) == 1
    vals = got[0]["v"]
    assert len(vals) == 6
    assert 0 in vals and False in vals and "" in vals and None in vals
    assert "1" in vals
    assert sum(1 for x in vals if not isinstance(x, (bool, str)) and x is not None
               and x != 0) == 1
