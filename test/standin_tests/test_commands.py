"""Commands: results and errors, with MongoDB's own codes and names."""
import datetime
import uuid

import pytest
from bson import Decimal128, Int64, ObjectId, SON
from bson.binary import Binary, UUID_SUBTYPE
from pymongo.errors import DuplicateKeyError, OperationFailure


def fails(fn, code, code_name=None):
    with pytest.raises(OperationFailure) as e:
        fn()
    assert e.value.code == code, e.value.details
    if code_name:
        assert e.value.details.get("codeName") == code_name, e.value.details
    return e.value.details


# --- admin --------------------------------------------------------------

def test_ping(client):
    assert client.admin.command("ping")["ok"] == 1


def test_unknown_command_is_command_not_found(client):
    """Never a silent success: an unknown command answers 59."""
    details = fails(lambda: client.admin.command("noSuchCommandAtAll"), 59,
                    "CommandNotFound")
    assert "noSuchCommandAtAll" in details["errmsg"]


def test_unknown_command_on_a_user_database(db):
    fails(lambda: db.command({"frobnicate": "c"}), 59, "CommandNotFound")


def test_list_databases(client, db):
    db.c.insert_one({"x": 1})
    reply = client.admin.command("listDatabases")
    assert reply["ok"] == 1
    entry = [d for d in reply["databases"] if d["name"] == db.name]
    assert len(entry) == 1
    assert entry[0]["empty"] is False
    assert isinstance(entry[0]["sizeOnDisk"], (int, float))
    assert "totalSize" in reply
    names = client.admin.command("listDatabases", nameOnly=True)["databases"]
    assert {"name": db.name} in names


def test_drop_database(client, db):
    db.c.insert_one({"x": 1})
    db.d.insert_one({"x": 1})
    assert db.command("dropDatabase")["ok"] == 1
    assert db.name not in client.list_database_names()
    assert db.c.count_documents({}) == 0


def test_create_and_list_collections(db):
    db.command("create", "plain")
    db.command({"create": "images",
                "changeStreamPreAndPostImages": {"enabled": True}})
    colls = {c["name"]: c for c in db.list_collections()}
    assert set(colls) == {"plain", "images"}
    assert colls["plain"]["type"] == "collection"
    assert colls["plain"]["options"] == {}
    assert colls["plain"]["info"]["readOnly"] is False
    uid = colls["plain"]["info"]["uuid"]
    assert isinstance(uid, uuid.UUID) or (isinstance(uid, Binary)
                                          and uid.subtype == UUID_SUBTYPE)
    assert colls["plain"]["idIndex"]["key"] == {"_id": 1}
    assert colls["images"]["options"]["changeStreamPreAndPostImages"] == \
        {"enabled": True}


def test_list_collections_cursor_and_filter(db):
    for name in ("a1", "a2", "b1"):
        db.create_collection(name)
    reply = db.command({"listCollections": 1, "filter": {"name": "a2"}})
    assert reply["cursor"]["ns"] == db.name + ".$cmd.listCollections"
    assert [c["name"] for c in reply["cursor"]["firstBatch"]] == ["a2"]
    reply = db.command({"listCollections": 1, "nameOnly": True})
    names = sorted(c["name"] for c in reply["cursor"]["firstBatch"])
    assert names == ["a1", "a2", "b1"]
    assert all(set(c) == {"name", "type"} for c in reply["cursor"]["firstBatch"])


def test_create_existing_collection_with_other_options(db):
    db.command("create", "c")
    fails(lambda: db.command({"create": "c", "capped": True, "size": 4096}),
          48, "NamespaceExists")


def test_create_collection_implicitly_by_insert(db):
    db.implicit.insert_one({"_id": 1})
    assert "implicit" in db.list_collection_names()


def test_coll_mod_pre_and_post_images(db):
    db.command("create", "c")
    reply = db.command({"collMod": "c",
                        "changeStreamPreAndPostImages": {"enabled": True}})
    assert reply["ok"] == 1
    opts = list(db.list_collections(filter={"name": "c"}))[0]["options"]
    assert opts["changeStreamPreAndPostImages"] == {"enabled": True}
    db.command({"collMod": "c",
                "changeStreamPreAndPostImages": {"enabled": False}})
    opts = list(db.list_collections(filter={"name": "c"}))[0]["options"]
    assert opts.get("changeStreamPreAndPostImages",
                    {"enabled": False}) == {"enabled": False}


def test_coll_mod_missing_collection(db):
    fails(lambda: db.command({"collMod": "nothere",
                              "changeStreamPreAndPostImages":
                              {"enabled": True}}),
          26, "NamespaceNotFound")


def test_drop(db):
    db.c.insert_one({"x": 1})
    db.c.create_index("x")
    reply = db.command("drop", "c")
    assert reply["ok"] == 1
    assert reply["nIndexesWas"] == 2
    assert reply["ns"] == db.name + ".c"
    assert "c" not in db.list_collection_names()


def test_end_sessions(client):
    s = client.start_session()
    sid = s.session_id
    client.admin.command("ping", session=s)
    assert client.admin.command({"endSessions": [sid]})["ok"] == 1
    s.end_session()


def test_build_info(client):
    info = client.admin.command("buildInfo")
    assert isinstance(info["version"], str)
    assert isinstance(info["gitVersion"], str)


# --- writes -------------------------------------------------------------

def test_insert_reply(db):
    reply = db.command({"insert": "c", "documents": [{"_id": 1}, {"_id": 2}]})
    assert reply["ok"] == 1 and reply["n"] == 2
    assert "writeErrors" not in reply


def test_insert_adds_object_id(db):
    res = db.c.insert_one({"a": 1})
    assert isinstance(res.inserted_id, ObjectId)
    doc = db.c.find_one({"a": 1})
    assert doc["_id"] == res.inserted_id


def test_duplicate_key_error(db):
    """11000 carries keyPattern and keyValue (MongoDB 4.4+)."""
    db.c.insert_one({"_id": 7})
    reply = db.command({"insert": "c", "documents": [{"_id": 8}, {"_id": 7},
                                                     {"_id": 9}]})
    assert reply["ok"] == 1
    assert reply["n"] == 1           # ordered: stops at the error
    [err] = reply["writeErrors"]
    assert err["index"] == 1
    assert err["code"] == 11000
    assert err["keyPattern"] == {"_id": 1}
    assert err["keyValue"] == {"_id": 7}
    assert "E11000" in err["errmsg"]
    assert db.c.count_documents({}) == 2


def test_unordered_insert_continues(db):
    db.c.insert_one({"_id": 7})
    reply = db.command({"insert": "c", "ordered": False,
                        "documents": [{"_id": 7}, {"_id": 8}, {"_id": 7}]})
    assert reply["n"] == 1
    assert [e["index"] for e in reply["writeErrors"]] == [0, 2]


def test_unique_index_duplicate(db):
    db.c.create_index("email", unique=True)
    db.c.insert_one({"email": "a@x"})
    with pytest.raises(DuplicateKeyError) as e:
        db.c.insert_one({"email": "a@x"})
    assert e.value.code == 11000
    assert e.value.details["keyPattern"] == {"email": 1}
    assert e.value.details["keyValue"] == {"email": "a@x"}


def test_update_one_and_multi(db):
    db.c.insert_many([{"_id": i, "g": i % 2, "v": 0} for i in range(6)])
    reply = db.command({"update": "c", "updates": [
        {"q": {"g": 0}, "u": {"$inc": {"v": 1}}}]})
    assert reply["n"] == 1 and reply["nModified"] == 1
    reply = db.command({"update": "c", "updates": [
        {"q": {"g": 1}, "u": {"$inc": {"v": 10}}, "multi": True}]})
    assert reply["n"] == 3 and reply["nModified"] == 3
    assert sorted(d["v"] for d in db.c.find()) == [0, 0, 1, 10, 10, 10]


def test_update_no_change_counts_matched_not_modified(db):
    db.c.insert_one({"_id": 1, "v": 5})
    reply = db.command({"update": "c", "updates": [
        {"q": {"_id": 1}, "u": {"$set": {"v": 5}}}]})
    assert reply["n"] == 1 and reply["nModified"] == 0


def test_upsert(db):
    reply = db.command({"update": "c", "updates": [
        {"q": {"k": "a"}, "u": {"$set": {"v": 1}}, "upsert": True}]})
    assert reply["n"] == 1 and reply["nModified"] == 0
    [up] = reply["upserted"]
    assert up["index"] == 0
    doc = db.c.find_one({"_id": up["_id"]})
    assert doc["k"] == "a" and doc["v"] == 1
    # Matching now: no second document.
    reply = db.command({"update": "c", "updates": [
        {"q": {"k": "a"}, "u": {"$set": {"v": 2}}, "upsert": True}]})
    assert "upserted" not in reply and reply["nModified"] == 1
    assert db.c.count_documents({}) == 1


def test_replacement_update(db):
    db.c.insert_one({"_id": 1, "a": 1, "b": 2})
    db.c.replace_one({"_id": 1}, {"c": 3})
    assert db.c.find_one({"_id": 1}) == {"_id": 1, "c": 3}


def test_update_operator_error(db):
    """An update that cannot apply is a write error, not a silent no-op."""
    db.c.insert_one({"_id": 1, "s": "text"})
    reply = db.command({"update": "c", "updates": [
        {"q": {"_id": 1}, "u": {"$inc": {"s": 1}}}]})
    [err] = reply["writeErrors"]
    assert err["code"] == 14           # TypeMismatch
    assert db.c.find_one({"_id": 1})["s"] == "text"


def test_update_immutable_id(db):
    db.c.insert_one({"_id": 1})
    reply = db.command({"update": "c", "updates": [
        {"q": {"_id": 1}, "u": {"$set": {"_id": 2}}}]})
    assert reply["writeErrors"][0]["code"] == 66     # ImmutableField


def test_delete(db):
    db.c.insert_many([{"_id": i, "g": i % 3} for i in range(9)])
    reply = db.command({"delete": "c", "deletes": [
        {"q": {"g": 0}, "limit": 1}]})
    assert reply["n"] == 1
    reply = db.command({"delete": "c", "deletes": [
        {"q": {"g": 1}, "limit": 0}]})
    assert reply["n"] == 3
    assert db.c.count_documents({}) == 5


# --- reads --------------------------------------------------------------

@pytest.fixture
def people(db):
    docs = [
        {"_id": 1, "name": "ann", "age": 31, "city": "Oslo", "tags": ["a"]},
        {"_id": 2, "name": "bob", "age": 25, "city": "Rome", "tags": []},
        {"_id": 3, "name": "cid", "age": 47, "city": "Oslo",
         "tags": ["a", "b"]},
        {"_id": 4, "name": "dan", "age": 25, "city": "Lima"},
        {"_id": 5, "name": "eve", "age": None, "city": "Rome"},
    ]
    db.people.insert_many(docs)
    return db.people


def test_find_filter_projection_sort_skip_limit(people):
    reply = people.database.command(SON([
        ("find", "people"), ("filter", {"age": {"$gte": 25}}),
        ("projection", {"name": 1, "_id": 0}),
        ("sort", SON([("age", -1), ("name", 1)])),
        ("skip", 1), ("limit", 2)]))
    assert reply["cursor"]["firstBatch"] == [{"name": "ann"},
                                             {"name": "bob"}]
    assert reply["cursor"]["id"] == 0
    assert reply["cursor"]["ns"] == people.full_name


def test_find_missing_collection_is_empty(db):
    reply = db.command({"find": "nothere"})
    assert reply["cursor"]["firstBatch"] == [] and reply["cursor"]["id"] == 0


def test_find_exclusion_projection(people):
    doc = people.find_one({"_id": 1}, {"tags": 0, "city": 0})
    assert doc == {"_id": 1, "name": "ann", "age": 31}


def test_find_null_matches_missing(people):
    """{age: null} matches null and missing; $exists tells them apart."""
    people.insert_one({"_id": 6, "name": "fay"})
    assert sorted(d["_id"] for d in people.find({"age": None})) == [5, 6]
    assert [d["_id"] for d in people.find({"age": {"$exists": False}})] == [6]


def test_find_array_element_match(people):
    assert sorted(d["_id"] for d in people.find({"tags": "a"})) == [1, 3]
    assert [d["_id"] for d in people.find({"tags": {"$size": 0}})] == [2]


def test_find_bad_filter_operator(people):
    details = fails(lambda: people.database.command(
        {"find": "people", "filter": {"age": {"$bogus": 1}}}), 2, "BadValue")
    assert "$bogus" in details["errmsg"]


def test_numbers_compare_across_types(db):
    """1, 1.0, Int64(1) and Decimal128('1') are the same number (mongomock
    does not match Decimal128 against other numbers)."""
    db.n.insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": 1.0},
                      {"_id": 3, "v": Int64(1)},
                      {"_id": 4, "v": Decimal128("1")},
                      {"_id": 5, "v": "1"}])
    assert sorted(d["_id"] for d in db.n.find({"v": 1})) == [1, 2, 3, 4]
    assert [d["_id"] for d in db.n.find({"v": "1"})] == [5]


def test_sort_across_types_follows_bson_order(db):
    """MongoDB sorts mixed types by BSON comparison order: null, numbers,
    strings, objects, arrays' min, ObjectId, booleans, dates.  mongomock
    is known to order mixed types its own way; this is the real order."""
    oid = ObjectId("5f0000000000000000000000")
    when = datetime.datetime(2020, 1, 1)
    values = [when, True, oid, {"k": 1}, "b", "a", 3, 1.5, None]
    db.s.insert_many([{"_id": i, "v": v} for i, v in enumerate(values)])
    got = [d["v"] for d in db.s.find({}, {"_id": 0}).sort("v", 1)]
    assert got == [None, 1.5, 3, "a", "b", {"k": 1}, oid, True, when]


def test_type_query_and_type_names(db):
    """$type names as MongoDB spells them ('missing' for absent fields);
    mongomock has no $type expression and differs on some names."""
    db.t.insert_many([
        {"_id": 1, "v": 1.5}, {"_id": 2, "v": 7}, {"_id": 3, "v": Int64(7)},
        {"_id": 4, "v": "s"}, {"_id": 5, "v": {"a": 1}}, {"_id": 6, "v": [1]},
        {"_id": 7, "v": True}, {"_id": 8, "v": datetime.datetime(2020, 1, 1)},
        {"_id": 9, "v": None}, {"_id": 10, "v": ObjectId()},
        {"_id": 11, "v": Decimal128("1.1")}, {"_id": 12}])
    got = {d["_id"]: d["t"] for d in db.t.aggregate(
        [{"$project": {"t": {"$type": "$v"}}}])}
    assert got == {1: "double", 2: "int", 3: "long", 4: "string",
                   5: "object", 6: "array", 7: "bool", 8: "date", 9: "null",
                   10: "objectId", 11: "decimal", 12: "missing"}
    # The query operator also matches arrays holding an element of the type.
    numbers = sorted(d["_id"] for d in db.t.find({"v": {"$type": "number"}}))
    assert numbers == [1, 2, 3, 6, 11]
    arrays = [d["_id"] for d in db.t.find({"v": {"$type": "array"}})]
    assert arrays == [6]


def test_count(people):
    db = people.database
    assert db.command({"count": "people"})["n"] == 5
    assert db.command({"count": "people", "query": {"city": "Oslo"}})["n"] == 2
    assert db.command({"count": "people", "skip": 1, "limit": 2})["n"] == 2
    assert db.command({"count": "nothere"})["n"] == 0


def test_distinct(people):
    reply = people.database.command({"distinct": "people", "key": "city"})
    assert sorted(reply["values"]) == ["Lima", "Oslo", "Rome"]
    tags = people.database.command({"distinct": "people", "key": "tags"})
    assert sorted(tags["values"]) == ["a", "b"]
    q = people.database.command({"distinct": "people", "key": "name",
                                 "query": {"age": 25}})
    assert sorted(q["values"]) == ["bob", "dan"]


def test_find_and_modify_update(people):
    db = people.database
    reply = db.command({"findAndModify": "people", "query": {"_id": 1},
                        "update": {"$inc": {"age": 1}}})
    assert reply["value"]["age"] == 31          # the document before
    assert reply["lastErrorObject"]["n"] == 1
    assert reply["lastErrorObject"]["updatedExisting"] is True
    reply = db.command({"findAndModify": "people", "query": {"_id": 1},
                        "update": {"$inc": {"age": 1}}, "new": True,
                        "fields": {"age": 1}})
    assert reply["value"] == {"_id": 1, "age": 33}


def test_find_and_modify_sort_picks_one(people):
    reply = people.database.command({
        "findAndModify": "people", "query": {"age": 25}, "sort": {"name": -1},
        "update": {"$set": {"picked": True}}, "new": True})
    assert reply["value"]["name"] == "dan"
    assert people.count_documents({"picked": True}) == 1


def test_find_and_modify_upsert(db):
    reply = db.command({"findAndModify": "c", "query": {"k": 1},
                        "update": {"$set": {"v": 2}}, "upsert": True,
                        "new": True})
    leo = reply["lastErrorObject"]
    assert leo["n"] == 1 and leo["updatedExisting"] is False
    assert leo["upserted"] == reply["value"]["_id"]
    assert reply["value"]["k"] == 1 and reply["value"]["v"] == 2


def test_find_and_modify_no_match(db):
    reply = db.command({"findAndModify": "c", "query": {"k": 1},
                        "update": {"$set": {"v": 2}}})
    assert reply["value"] is None
    assert reply["lastErrorObject"]["n"] == 0
    assert reply["lastErrorObject"]["updatedExisting"] is False


def test_find_and_modify_remove(people):
    reply = people.database.command({"findAndModify": "people",
                                     "query": {"_id": 2}, "remove": True})
    assert reply["value"]["name"] == "bob"
    assert reply["lastErrorObject"]["n"] == 1
    assert people.find_one({"_id": 2}) is None


def test_find_and_modify_duplicate_key(db):
    db.c.create_index("u", unique=True)
    db.c.insert_many([{"_id": 1, "u": 1}, {"_id": 2, "u": 2}])
    details = fails(lambda: db.command({
        "findAndModify": "c", "query": {"_id": 2},
        "update": {"$set": {"u": 1}}}), 11000, "DuplicateKey")
    assert details["keyPattern"] == {"u": 1}
    assert details["keyValue"] == {"u": 1}


# --- indexes ------------------------------------------------------------

def test_create_and_list_indexes(db):
    db.c.insert_one({"a": 1})
    reply = db.command({"createIndexes": "c", "indexes": [
        {"key": {"a": 1}, "name": "a_1"},
        {"key": {"b": -1, "c": 1}, "name": "b_c", "unique": True}]})
    assert reply["ok"] == 1
    assert reply["numIndexesBefore"] == 1
    assert reply["numIndexesAfter"] == 3
    assert reply["createdCollectionAutomatically"] is False
    idx = {i["name"]: i for i in db.c.list_indexes()}
    assert set(idx) == {"_id_", "a_1", "b_c"}
    assert idx["_id_"]["key"] == {"_id": 1}
    assert idx["b_c"]["key"] == SON([("b", -1), ("c", 1)])
    assert list(idx["b_c"]["key"].keys()) == ["b", "c"]
    assert idx["b_c"]["unique"] is True
    assert idx["a_1"]["v"] == 2


def test_create_indexes_on_new_collection(db):
    reply = db.command({"createIndexes": "fresh",
                        "indexes": [{"key": {"a": 1}, "name": "a_1"}]})
    assert reply["createdCollectionAutomatically"] is True
    assert reply["numIndexesBefore"] == 1 and reply["numIndexesAfter"] == 2


def test_create_existing_index_is_a_no_op(db):
    db.c.create_index("a")
    reply = db.command({"createIndexes": "c",
                        "indexes": [{"key": {"a": 1}, "name": "a_1"}]})
    assert reply["ok"] == 1
    assert reply["numIndexesBefore"] == reply["numIndexesAfter"] == 2


def test_list_indexes_missing_collection(db):
    fails(lambda: db.command({"listIndexes": "nothere"}), 26,
          "NamespaceNotFound")


def test_unique_index_on_existing_duplicates_fails(db):
    db.c.insert_many([{"a": 1}, {"a": 1}])
    fails(lambda: db.command({"createIndexes": "c", "indexes": [
        {"key": {"a": 1}, "name": "a_1", "unique": True}]}), 11000)
    assert [i["name"] for i in db.c.list_indexes()] == ["_id_"]


# --- options drivers and the extension send ------------------------------

def test_find_accepts_common_options(people):
    reply = people.database.command(SON([
        ("find", "people"), ("filter", {"city": "Oslo"}),
        ("comment", "from qleaf"), ("maxTimeMS", 5000),
        ("readConcern", {"level": "majority"}), ("allowDiskUse", True),
        ("noCursorTimeout", True), ("hint", {"_id": 1})]))
    assert sorted(d["_id"] for d in reply["cursor"]["firstBatch"]) == [1, 3]


def test_aggregate_accepts_common_options(people):
    reply = people.database.command(SON([
        ("aggregate", "people"), ("pipeline", [{"$match": {"age": 25}}]),
        ("cursor", {"batchSize": 10}), ("allowDiskUse", True),
        ("maxTimeMS", 5000), ("comment", "from qleaf"),
        ("readConcern", {"level": "local"})]))
    assert sorted(d["_id"] for d in reply["cursor"]["firstBatch"]) == [2, 4]


def test_writes_accept_write_concern(db):
    reply = db.command(SON([("insert", "c"), ("documents", [{"_id": 1}]),
                            ("writeConcern", {"w": "majority",
                                              "wtimeout": 5000}),
                            ("ordered", True)]))
    assert reply["n"] == 1 and "writeConcernError" not in reply


def test_unknown_field_in_find_is_refused(db):
    """Commands are parsed strictly: an unknown field is an error (40415),
    never silently ignored."""
    fails(lambda: db.command({"find": "c", "filtr": {"a": 1}}), 40415)


def test_unknown_field_in_aggregate_is_refused(db):
    fails(lambda: db.command({"aggregate": "c", "pipeline": [], "cursor": {},
                              "pipline": []}), 40415)
