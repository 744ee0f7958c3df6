"""$lookup with let and a sub-pipeline, as mongod runs it.

The manual's "Join Conditions and Subqueries on a Joined Collection": let
variables are evaluated on each input document and read as $$name in
the sub-pipeline's expressions; $$ROOT is the joined document; the joined
documents, in the sub-pipeline's order, go into the `as` array.
"""
import pytest
from bson import Decimal128, Int64, ObjectId
from pymongo.errors import OperationFailure

OID = ObjectId("5f1d7a2b9c3e4f5a6b7c8d9e")


@pytest.fixture
def shop(db):
    db.orders.insert_many([
        {"_id": 1, "cust": 10, "sku": "a"},
        {"_id": 2, "cust": Int64(20), "sku": "b"},
        {"_id": 3, "cust": 30.0, "sku": "c"},
        {"_id": 4, "cust": None, "sku": "d"},
        {"_id": 5, "sku": "e"},
        {"_id": 6, "cust": [10, 20], "sku": "f"},
        {"_id": 7, "cust": "10", "sku": OID},
    ])
    db.customers.insert_many([
        {"_id": 10, "k": 10, "name": "ten"},
        {"_id": 11, "k": Decimal128("20"), "name": "twenty"},
        {"_id": 12, "k": Int64(30), "name": "thirty"},
        {"_id": 13, "k": None, "name": "null"},
        {"_id": 14, "name": "missing"},
        {"_id": 15, "k": [10, 20], "name": "array"},
        {"_id": 16, "k": "10", "name": "string"},
        {"_id": 17, "k": str(OID), "name": "oid text"},
    ])
    return db


def lookup(db, let, pipeline, **more):
    spec = {"from": "customers", "let": let, "pipeline": pipeline, "as": "j"}
    spec.update(more)
    out = db.orders.aggregate([{"$lookup": spec}, {"$sort": {"_id": 1}}])
    return {d["_id"]: [c["name"] for c in d["j"]] for d in out}


def eq_k(var="c"):
    return [{"$match": {"$expr": {"$eq": ["$k", "$$" + var]}}},
            {"$sort": {"_id": 1}}]


def test_expr_equality_compares_numbers_across_types(shop):
    got = lookup(shop, {"c": "$cust"}, eq_k())
    assert got[1] == ["ten"]
    assert got[2] == ["twenty"]          # long 20 = decimal 20
    assert got[3] == ["thirty"]          # double 30.0 = long 30


def test_expr_equality_null_missing_and_arrays(shop):
    got = lookup(shop, {"c": "$cust"}, eq_k())
    # null equals null only; missing equals missing only; an array equals
    # the same array, never one of its elements; a number never a string
    assert got[4] == ["null"]
    assert got[5] == ["missing"]
    assert got[6] == ["array"]
    assert got[7] == ["string"]


def test_type_guard_in_sub_pipeline(shop):
    guard = {"$in": [{"$type": "$$c"}, ["int", "long", "double", "decimal"]]}
    got = lookup(shop, {"c": "$cust"},
                 [{"$match": {"$expr": {"$and": [guard,
                                                 {"$eq": ["$k", "$$c"]}]}}}])
    assert got[4] == [] and got[5] == [] and got[6] == [] and got[7] == []
    assert got[1] == ["ten"]


def test_type_of_missing_variable(shop):
    out = list(shop.orders.aggregate([
        {"$match": {"_id": {"$in": [4, 5]}}},
        {"$lookup": {"from": "customers", "let": {"c": "$cust"},
                     "pipeline": [{"$match": {"_id": 10}},
                                  {"$project": {"_id": 0, "t": {"$type": "$$c"}}}],
                     "as": "j"}},
        {"$sort": {"_id": 1}}]))
    assert [d["j"] for d in out] == [[{"t": "null"}], [{"t": "missing"}]]


def test_object_id_as_string(shop):
    norm = {"$cond": [{"$eq": [{"$type": "$sku"}, "objectId"]},
                      {"$toString": "$sku"}, "$sku"]}
    got = lookup(shop, {"s": norm},
                 [{"$match": {"$expr": {"$eq": ["$k", "$$s"]}}}])
    assert got[7] == ["oid text"]
    assert got[1] == []


def test_root_is_the_joined_document_and_project(shop):
    out = list(shop.orders.aggregate([
        {"$match": {"_id": 1}},
        {"$lookup": {"from": "customers", "let": {"c": "$cust", "o": "$$ROOT"},
                     "pipeline": [{"$match": {"$expr": {"$eq": ["$k", "$$c"]}}},
                                  {"$project": {"_id": 0, "n": "$$ROOT.name",
                                                "o": "$$o.sku"}}],
                     "as": "j"}},
        {"$unwind": {"path": "$j"}},
        {"$project": {"_id": 1, "n": "$j.n", "o": "$j.o"}}]))
    assert out == [{"_id": 1, "n": "ten", "o": "a"}]


def test_plain_match_and_order_in_sub_pipeline(shop):
    got = lookup(shop, {}, [{"$match": {"name": {"$in": ["ten", "null"]}}},
                            {"$sort": {"name": 1}}])
    assert got[1] == ["null", "ten"]


def test_unwind_preserving_unmatched(shop):
    out = list(shop.orders.aggregate([
        {"$match": {"_id": {"$in": [1, 4]}}},
        {"$lookup": {"from": "customers", "let": {"c": "$cust"},
                     "pipeline": [{"$match": {"$expr": {"$and": [
                         {"$in": [{"$type": "$$c"}, ["int", "long", "double"]]},
                         {"$eq": ["$k", "$$c"]}]}}},
                         {"$project": {"_id": 0, "name": 1}}],
                     "as": "j"}},
        {"$unwind": {"path": "$j", "preserveNullAndEmptyArrays": True}},
        {"$sort": {"_id": 1}},
        {"$project": {"_id": 1, "n": "$j.name"}}]))
    assert out == [{"_id": 1, "n": "ten"}, {"_id": 4}]


def test_local_field_with_pipeline(shop):
    got = lookup(shop, {"s": "$sku"},
                 [{"$project": {"_id": 0, "name": 1, "s": "$$s"}}],
                 localField="cust", foreignField="k")
    # the equality match first (null and missing match null and missing,
    # array elements match), then the sub-pipeline
    assert got[1] == ["ten", "array"]


def test_errors(shop):
    with pytest.raises(OperationFailure) as e:
        lookup(shop, {"Bad": "$cust"}, [])
    assert e.value.code == 16870
    with pytest.raises(OperationFailure) as e:
        lookup(shop, {}, [{"$out": "x"}])
    assert e.value.code == 51047
    with pytest.raises(OperationFailure):
        lookup(shop, {}, [], localField="cust")
