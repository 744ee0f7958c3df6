"""Query and aggregation semantics that SQL pushdown depends on.

These are the traps the design names (null vs missing, type brackets, byte
order of strings, arrays, $sum of nothing) plus the places where mongomock
is known to differ from MongoDB; every expectation is MongoDB's own.
"""
import datetime

import pytest
from bson import Decimal128, Int64, SON


def ids(cursor):
    return sorted(d["_id"] for d in cursor)


@pytest.fixture
def mixed(db):
    db.m.insert_many([
        {"_id": 1, "v": 5},
        {"_id": 2, "v": None},
        {"_id": 3},
        {"_id": 4, "v": 7.5},
        {"_id": 5, "v": "abc"},
        {"_id": 6, "v": Int64(2)},
        {"_id": 7, "v": Decimal128("3")},
        {"_id": 8, "v": True},
        {"_id": 9, "v": datetime.datetime(2021, 5, 1)},
        {"_id": 10, "v": "B"},
    ])
    return db.m


# --- null and missing ---------------------------------------------------

def test_ne_matches_null_and_missing(mixed):
    """{v: {$ne: 5}} returns documents where v is null or absent: SQL's
    v <> 5 must not be pushed as this alone."""
    assert ids(mixed.find({"v": {"$ne": 5}})) == [2, 3, 4, 5, 6, 7, 8, 9, 10]


def test_null_equality_and_in(mixed):
    assert ids(mixed.find({"v": None})) == [2, 3]
    assert ids(mixed.find({"v": {"$in": [None, 5]}})) == [1, 2, 3]
    assert ids(mixed.find({"v": {"$exists": True}})) == [
        1, 2, 4, 5, 6, 7, 8, 9, 10]
    assert ids(mixed.find({"v": {"$type": "null"}})) == [2]


def test_range_against_null(mixed):
    assert ids(mixed.find({"v": {"$gte": None}})) == [2, 3]
    assert ids(mixed.find({"v": {"$lte": None}})) == [2, 3]
    assert ids(mixed.find({"v": {"$gt": None}})) == []
    assert ids(mixed.find({"v": {"$lt": None}})) == []


def test_missing_and_null_group_together(mixed):
    got = list(mixed.aggregate([
        {"$match": {"_id": {"$in": [1, 2, 3]}}},
        {"$group": {"_id": "$v", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]))
    assert got == [{"_id": None, "n": 2}, {"_id": 5, "n": 1}]


# --- type brackets ------------------------------------------------------

def test_query_comparisons_stay_within_a_type(mixed):
    """In queries a number is never compared with a string, a boolean or
    a date: {v: {$gt: 1}} returns only numbers (of any numeric type)."""
    assert ids(mixed.find({"v": {"$gt": 1}})) == [1, 4, 6, 7]
    assert ids(mixed.find({"v": {"$lt": "m"}})) == [5, 10]
    assert ids(mixed.find({"v": {"$gte": datetime.datetime(2000, 1, 1)}})) \
        == [9]


def test_expr_comparisons_cross_types(mixed):
    """Aggregation expressions compare across types by BSON order, so
    {$expr: {$gt: ['$v', 1]}} also matches strings, booleans and dates."""
    got = ids(mixed.find({"$expr": {"$gt": ["$v", 1]}}))
    assert got == [1, 4, 5, 6, 7, 8, 9, 10]


def test_number_equality_across_numeric_types(db):
    db.n.insert_many([{"_id": 1, "v": 3}, {"_id": 2, "v": 3.0},
                      {"_id": 3, "v": Int64(3)}, {"_id": 4, "v": Decimal128("3.0")},
                      {"_id": 5, "v": "3"}])
    assert ids(db.n.find({"v": 3})) == [1, 2, 3, 4]
    assert ids(db.n.find({"v": Decimal128("3")})) == [1, 2, 3, 4]


def test_large_int64_compares_exactly(db):
    big = 2 ** 62 + 1
    db.n.insert_many([{"_id": 1, "v": Int64(big)}, {"_id": 2, "v": Int64(big - 1)},
                      {"_id": 3, "v": float(2 ** 62)}])
    assert ids(db.n.find({"v": Int64(big)})) == [1]
    assert ids(db.n.find({"v": {"$gt": Int64(big - 1)}})) == [1]
    doc = db.n.find_one({"_id": 1})
    assert doc["v"] == big and isinstance(doc["v"], Int64)


# --- ordering -----------------------------------------------------------

def test_strings_sort_by_bytes(db):
    """MongoDB's default (binary) order: upper case before lower case,
    non-ASCII after ASCII; a C-collation SQL sort agrees."""
    words = ["b", "a", "B", "é", "z", "A", "ab", ""]
    db.s.insert_many([{"w": w} for w in words])
    got = [d["w"] for d in db.s.find({}, {"_id": 0}).sort("w", 1)]
    assert got == sorted(words, key=lambda w: w.encode("utf-8"))
    assert got == ["", "A", "B", "a", "ab", "b", "z", "é"]


def test_null_and_missing_sort_first_ascending(mixed):
    got = [d["_id"] for d in mixed.find({"_id": {"$in": [1, 2, 3, 4]}})
           .sort([("v", 1), ("_id", 1)])]
    assert got == [2, 3, 1, 4]
    got = [d["_id"] for d in mixed.find({"_id": {"$in": [1, 2, 3, 4]}})
           .sort([("v", -1), ("_id", 1)])]
    assert got == [4, 1, 2, 3]


def test_sort_by_array_uses_min_or_max_element(db):
    """Ascending sorts by an array's smallest element, descending by its
    largest (mongomock does not)."""
    db.a.insert_many([{"_id": 1, "v": [3, 1]}, {"_id": 2, "v": [2]},
                      {"_id": 3, "v": 0}, {"_id": 4, "v": [5, 4]}])
    up = [d["_id"] for d in db.a.find().sort("v", 1)]
    assert up == [3, 1, 2, 4]
    down = [d["_id"] for d in db.a.find().sort("v", -1)]
    assert down == [4, 1, 2, 3]


def test_min_max_accumulators_use_bson_order(mixed):
    got = list(mixed.aggregate([{"$group": {"_id": None,
                                            "lo": {"$min": "$v"},
                                            "hi": {"$max": "$v"}}}]))
    # $min ignores null and missing; numbers sort before strings, ...
    assert got[0]["lo"] == Int64(2)
    assert got[0]["hi"] == datetime.datetime(2021, 5, 1)


# --- strings and patterns -----------------------------------------------

def test_regex_is_anchored_only_when_asked(db):
    db.r.insert_many([{"_id": 1, "s": "abc"}, {"_id": 2, "s": "xabc"},
                      {"_id": 3, "s": "ABC"}, {"_id": 4, "s": "a.c"}])
    assert ids(db.r.find({"s": {"$regex": "^ab"}})) == [1]
    assert ids(db.r.find({"s": {"$regex": "ab"}})) == [1, 2]
    assert ids(db.r.find({"s": {"$regex": "^ab", "$options": "i"}})) == [1, 3]
    assert ids(db.r.find({"s": {"$regex": r"^a\.c$"}})) == [4]


# --- arrays -------------------------------------------------------------

@pytest.fixture
def arrays(db):
    db.arr.insert_many([
        {"_id": 1, "tags": ["a", "b"], "items": [{"sku": "x", "qty": 1},
                                                {"sku": "y", "qty": 5}]},
        {"_id": 2, "tags": ["b", "a"], "items": [{"sku": "x", "qty": 5}]},
        {"_id": 3, "tags": ["c"], "items": []},
        {"_id": 4, "tags": "a"},
    ])
    return db.arr


def test_array_membership_and_exact_match(arrays):
    assert ids(arrays.find({"tags": "a"})) == [1, 2, 4]
    assert ids(arrays.find({"tags": {"$all": ["a", "b"]}})) == [1, 2]
    assert ids(arrays.find({"tags": ["a", "b"]})) == [1]     # order matters
    assert ids(arrays.find({"tags": {"$size": 2}})) == [1, 2]
    assert ids(arrays.find({"tags": {"$in": ["c", "z"]}})) == [3]


def test_elem_match_versus_dotted_paths(arrays):
    """Two conditions on a dotted path may match different elements;
    $elemMatch makes one element satisfy both."""
    loose = {"items.sku": "x", "items.qty": {"$gt": 2}}
    assert ids(arrays.find(loose)) == [1, 2]
    tight = {"items": {"$elemMatch": {"sku": "x", "qty": {"$gt": 2}}}}
    assert ids(arrays.find(tight)) == [2]


def test_dotted_projection_through_arrays(arrays):
    doc = arrays.find_one({"_id": 1}, {"items.sku": 1, "_id": 0})
    assert doc == {"items": [{"sku": "x"}, {"sku": "y"}]}


# --- accumulators -------------------------------------------------------

def test_sum_and_avg_ignore_non_numbers(mixed):
    got = list(mixed.aggregate([
        {"$match": {"_id": {"$in": [1, 2, 3, 5]}}},
        {"$group": {"_id": None, "s": {"$sum": "$v"}, "a": {"$avg": "$v"},
                    "n": {"$sum": 1}}}]))
    assert got == [{"_id": None, "s": 5, "a": 5.0, "n": 4}]
    none = list(mixed.aggregate([
        {"$match": {"_id": {"$in": [2, 3, 5]}}},
        {"$group": {"_id": None, "s": {"$sum": "$v"}, "a": {"$avg": "$v"}}}]))
    assert none == [{"_id": None, "s": 0, "a": None}]


def test_sum_keeps_integer_types(db):
    db.t.insert_many([{"v": 1}, {"v": 2}, {"v": Int64(3)}])
    [got] = db.t.aggregate([{"$group": {"_id": None, "s": {"$sum": "$v"}}}])
    assert got["s"] == 6 and isinstance(got["s"], int)


def test_count_of_sorted_limited_pipeline(db):
    db.c.insert_many([{"_id": i, "g": i % 3} for i in range(10)])
    got = list(db.c.aggregate([{"$sort": SON([("g", 1), ("_id", -1)])},
                               {"$skip": 2}, {"$limit": 3},
                               {"$project": {"_id": 1}}]))
    assert [d["_id"] for d in got] == [3, 0, 7]


# --- dotted paths through null, scalars and arrays ----------------------

@pytest.fixture
def paths(db):
    db.p.insert_many([
        {"_id": 1, "o": None},
        {"_id": 2, "o": 5},
        {"_id": 3},
        {"_id": 4, "o": {}},
        {"_id": 5, "o": {"a": None}},
        {"_id": 6, "o": {"a": 1}},
        {"_id": 7, "o": [1, 2]},
        {"_id": 8, "o": []},
        {"_id": 9, "o": [5, {"a": 1}]},
        {"_id": 10, "o": [{"a": 3}, {}]},
        {"_id": 11, "o": [{"a": 1}, {"a": 3}]},
    ])
    return db.p


def test_dotted_null_through_null_and_scalars(paths):
    """MongoDB (null_query_semantics.js): a path through null, a scalar, an
    empty array or an array of scalars reaches no value, which equals null;
    an array with a document gives that document's value (arrayfind5.js:
    {a: [5, {b: 1}]} does not match {"a.b": null})."""
    assert ids(paths.find({"o.a": None})) == [1, 2, 3, 4, 5, 7, 8, 10]
    assert ids(paths.find({"o.a": {"$eq": None}})) == [1, 2, 3, 4, 5, 7, 8, 10]
    assert ids(paths.find({"$or": [{"o.a": None}, {"_id": 0}]})) == [
        1, 2, 3, 4, 5, 7, 8, 10]


def test_dotted_ne_null_through_null_and_scalars(paths):
    """MongoDB: {"a.b": {$ne: null}} and {$nin: [null, ...]} are the
    negations of the null equality."""
    assert ids(paths.find({"o.a": {"$ne": None}})) == [6, 9, 11]
    assert ids(paths.find({"o.a": {"$nin": [None, 3]}})) == [6, 9]


def test_dotted_in_null_through_null_and_scalars(paths):
    """MongoDB: {"a.b": {$in: [null, 75]}} matches what {"a.b": null} does
    plus the documents with the other value."""
    assert ids(paths.find({"o.a": {"$in": [None, 75]}})) == [
        1, 2, 3, 4, 5, 7, 8, 10]
    assert ids(paths.find({"o.a": {"$in": [None, 1]}})) == [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_dotted_exists_false_through_null_and_scalars(paths):
    """MongoDB: {"a.b": {$exists: false}} is true when the path reaches no
    value, and false when any value exists ({a: [{b: 3}, {}]} has a.b)."""
    assert ids(paths.find({"o.a": {"$exists": False}})) == [1, 2, 3, 4, 7, 8]
    assert ids(paths.find({"o.a": {"$exists": True}})) == [5, 6, 9, 10, 11]


# --- NaN ------------------------------------------------------------------

@pytest.fixture
def nans(db):
    nan = float("nan")
    db.n.insert_many([
        {"_id": 1, "a": nan},
        {"_id": 2, "a": 5},
        {"_id": 3, "a": -1e308},
        {"_id": 4, "a": Decimal128("NaN")},
        {"_id": 5, "a": [nan]},
        {"_id": 6, "a": "x"},
    ])
    return db.n


def test_nan_in_range_operators(nans):
    """MongoDB (ComparisonMatchExpressionBase): $lt / $gt never match NaN on
    either side; $lte / $gte match NaN only against NaN."""
    nan = float("nan")
    for q in ({"$lt": 6}, {"$lte": 5}, {"$gt": -1e309}, {"$gte": -1e309}):
        assert ids(nans.find({"a": q})) == [2, 3]
        assert ids(nans.find({"$or": [{"a": q}, {"_id": 0}]})) == [2, 3]
    for q in ({"$lt": nan}, {"$gt": nan}):
        assert ids(nans.find({"a": q})) == []
        assert ids(nans.find({"$or": [{"a": q}, {"_id": 0}]})) == []
    for q in ({"$lte": nan}, {"$gte": nan}):
        assert ids(nans.find({"a": q})) == [1, 4, 5]
        assert ids(nans.find({"$or": [{"a": q}, {"_id": 0}]})) == [1, 4, 5]


def test_nan_equality_and_sort(nans):
    """MongoDB: NaN equals NaN ({a: NaN}, $in), and sorts below every other
    number (BSON order)."""
    nan = float("nan")
    assert ids(nans.find({"a": nan})) == [1, 4, 5]
    assert ids(nans.find({"a": {"$in": [nan]}})) == [1, 4, 5]
    got = [d["_id"] for d in nans.find({"_id": {"$in": [1, 2, 3]}}).sort("a", 1)]
    assert got == [1, 3, 2]


def test_in_uses_mongodb_equality(db):
    """MongoDB: $in compares as equality does: true is not 1, and an array
    operand matches an equal array as well as an element."""
    db.e.insert_many([{"_id": 1, "a": True}, {"_id": 2, "a": 1},
                      {"_id": 3, "a": [1, 2]}])
    assert ids(db.e.find({"$or": [{"a": {"$in": [1]}}, {"_id": 0}]})) == [2, 3]
    assert ids(db.e.find({"$or": [{"a": {"$in": [[1, 2]]}}, {"_id": 0}]})) == [3]


def test_type_with_a_list_of_types(mixed):
    """MongoDB: {$type: [...]} matches a value of any of the listed types
    (names or numbers); an empty list is an error."""
    assert ids(mixed.find({"v": {"$type": ["string", "int"]}})) == [1, 5, 10]
    assert ids(mixed.find({"v": {"$type": [2, "bool"]}})) == [5, 8, 10]
    with pytest.raises(Exception):
        list(mixed.find({"v": {"$type": []}}))


def test_id_order_across_type_brackets(db):
    """_id values of every type bracket sort in MongoDB's bracket order; $gt
    stays within the bracket and $type lists pick later brackets (how a
    stream's snapshot continues after its last _id)."""
    import math
    from bson import Binary, Code, MaxKey, MinKey, ObjectId, Timestamp
    ids = [MinKey(), None, float("nan"), -5, 2.5, Int64(7), Decimal128("8.5"),
           "a", "b", {"x": 1}, {"x": 2}, Binary(b"\x01"), Binary(b"\x02"),
           ObjectId("5f0000000000000000000001"), ObjectId("5f0000000000000000000002"),
           False, True, datetime.datetime(2020, 1, 1), datetime.datetime(2021, 1, 1),
           Timestamp(1, 1), Timestamp(2, 1), Code("f()"), MaxKey()]
    db.br.insert_many([{"_id": i, "n": n} for n, i in enumerate(reversed(ids))])
    n = len(ids)
    order = [d["n"] for d in db.br.find({}, sort=[("_id", 1)])]
    assert order == [n - 1 - k for k in range(n)]
    gt = [d["n"] for d in db.br.find({"_id": {"$gt": "a"}}, sort=[("_id", 1)])]
    assert gt == [n - 1 - 8]
    later = [d["n"] for d in db.br.find(
        {"_id": {"$type": ["bool", "date", "timestamp", "javascript", "maxKey",
                           "symbol", "dbPointer"]}}, sort=[("_id", 1)])]
    assert later == [n - 1 - k for k in range(15, n)]
    nums = [d["_id"] for d in db.br.find({"_id": {"$gte": -math.inf}}, sort=[("_id", 1)])]
    assert nums == [-5, 2.5, 7, Decimal128("8.5")]
    # code is no string
    assert sorted(d["n"] for d in db.br.find({"_id": {"$type": "string"}})) == \
        [n - 1 - 8, n - 1 - 7]
