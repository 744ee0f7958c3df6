"""Change streams: every event type and field, start points, image modes,
user stages, postBatchResumeToken, maxAwaitTimeMS, 280 and 286.

Most tests speak aggregate / getMore themselves (RawChangeStream) to see
the replies; a few go through pymongo's watch() as applications do.
Streams are collection level unless the test says otherwise.
"""
import datetime
import re
import threading
import time
import uuid

import pytest
from bson import Int64, Timestamp
from pymongo.errors import OperationFailure

from conftest import RawChangeStream, operation_time_of

HEX = re.compile(r"[0-9A-F]+")


def stream(db, coll="c", **kw):
    spec = kw.pop("spec", None) or {}
    return RawChangeStream(db.client, db.name, coll, spec=spec, **kw)


def token(event):
    return event["_id"]["_data"]


def assert_no_more(s, wait_ms=300):
    extra = s.drain(wait_ms)
    assert extra == [], "unexpected events: %r" % extra


def with_pre_images(db, name="c"):
    db.command({"create": name,
                "changeStreamPreAndPostImages": {"enabled": True}})
    return db[name]


def uuid_bytes(value):
    """A session id's 16 bytes, whether it decoded as UUID or Binary."""
    return value.bytes if isinstance(value, uuid.UUID) else bytes(value)


def error_of(fn):
    with pytest.raises(OperationFailure) as e:
        fn()
    return e.value


# --- event types and their fields --------------------------------------

def test_insert_event(db):
    db.create_collection("c")
    with stream(db) as s:
        assert s.first_batch == []
        db.c.insert_one({"_id": 1, "a": "x"})
        [ev] = s.collect(1)
        assert_no_more(s)
    assert set(ev) == {"_id", "operationType", "clusterTime", "wallTime",
                       "ns", "documentKey", "fullDocument"}
    assert ev["operationType"] == "insert"
    assert HEX.fullmatch(token(ev)) and set(ev["_id"]) == {"_data"}
    assert isinstance(ev["clusterTime"], Timestamp)
    assert isinstance(ev["wallTime"], datetime.datetime)
    assert ev["ns"] == {"db": db.name, "coll": "c"}
    assert ev["documentKey"] == {"_id": 1}
    assert ev["fullDocument"] == {"_id": 1, "a": "x"}


def test_first_insert_creates_no_visible_create_event(db):
    """Implicit collection creation shows no event (create events need
    showExpandedEvents), nor does an index build."""
    with stream(db) as s:
        db.c.insert_one({"_id": 1})
        db.c.create_index("a")
        [ev] = s.collect(1)
        assert ev["operationType"] == "insert"
        assert_no_more(s)


def test_update_event(db):
    db.c.insert_one({"_id": 1, "a": 1, "b": {"c": 1, "d": 2}, "x": 0})
    with stream(db) as s:
        db.c.update_one({"_id": 1}, {"$set": {"a": 2, "b.c": 5},
                                     "$unset": {"x": ""}})
        [ev] = s.collect(1)
    assert ev["operationType"] == "update"
    assert ev["documentKey"] == {"_id": 1}
    assert "fullDocument" not in ev                  # default mode
    ud = ev["updateDescription"]
    assert ud["updatedFields"] == {"a": 2, "b.c": 5}
    assert ud["removedFields"] == ["x"]
    assert ud["truncatedArrays"] == []


def test_update_event_for_array_element_and_push(db):
    db.c.insert_one({"_id": 1, "arr": [1, 2, 3]})
    with stream(db) as s:
        db.c.update_one({"_id": 1}, {"$set": {"arr.0": 9}})
        db.c.update_one({"_id": 1}, {"$push": {"arr": 4}})
        first, second = s.collect(2)
    assert first["updateDescription"]["updatedFields"] == {"arr.0": 9}
    assert second["updateDescription"]["updatedFields"] == {"arr.3": 4}


def test_update_event_truncated_arrays(db):
    """An update that shortens an array in place (a pipeline update) is
    reported in truncatedArrays with the array's new size."""
    db.c.insert_one({"_id": 1, "arr": [1, 2, 3, 4, 5], "pad": "p" * 200})
    with stream(db) as s:
        db.c.update_one({"_id": 1},
                        [{"$set": {"arr": {"$slice": ["$arr", 2]}}}])
        [ev] = s.collect(1)
    assert ev["operationType"] == "update"
    ud = ev["updateDescription"]
    assert ud["truncatedArrays"] == [{"field": "arr", "newSize": 2}]
    assert ud["updatedFields"] == {}
    assert ud["removedFields"] == []
    assert db.c.find_one({"_id": 1})["arr"] == [1, 2]


def test_pop_reports_the_whole_array(db):
    """$pop (an update operator, not a pipeline) is logged as a new value
    of the array field, not as a truncation: that is how MongoDB's update
    operators log array changes."""
    db.c.insert_one({"_id": 1, "arr": [1, 2, 3]})
    with stream(db) as s:
        db.c.update_one({"_id": 1}, {"$pop": {"arr": 1}})
        [ev] = s.collect(1)
    ud = ev["updateDescription"]
    assert ud["updatedFields"] == {"arr": [1, 2]}
    assert ud["truncatedArrays"] == []


def test_replace_event(db):
    db.c.insert_one({"_id": 1, "a": 1})
    with stream(db) as s:
        db.c.replace_one({"_id": 1}, {"b": 2})
        [ev] = s.collect(1)
    assert ev["operationType"] == "replace"
    assert ev["documentKey"] == {"_id": 1}
    assert ev["fullDocument"] == {"_id": 1, "b": 2}
    assert "updateDescription" not in ev


def test_delete_event(db):
    db.c.insert_many([{"_id": 1}, {"_id": 2}])
    with stream(db) as s:
        db.c.delete_many({})
        evs = s.collect(2)
    assert [e["operationType"] for e in evs] == ["delete", "delete"]
    assert sorted(e["documentKey"]["_id"] for e in evs) == [1, 2]
    assert all("fullDocument" not in e for e in evs)


def test_upsert_is_an_insert_event(db):
    db.create_collection("c")
    with stream(db) as s:
        db.c.update_one({"_id": 5}, {"$set": {"v": 1}}, upsert=True)
        [ev] = s.collect(1)
    assert ev["operationType"] == "insert"
    assert ev["fullDocument"] == {"_id": 5, "v": 1}


def test_drop_then_invalidate(db):
    db.c.insert_one({"_id": 1})
    with stream(db) as s:
        db.c.drop()
        drop, inv = s.collect(2)
        assert s.id == 0, "an invalidated stream's cursor is closed"
    assert drop["operationType"] == "drop"
    assert drop["ns"] == {"db": db.name, "coll": "c"}
    assert isinstance(drop["clusterTime"], Timestamp)
    assert isinstance(drop["wallTime"], datetime.datetime)
    assert inv["operationType"] == "invalidate"
    assert isinstance(inv["clusterTime"], Timestamp)
    assert "ns" not in inv
    assert token(drop) < token(inv)


def test_rename_then_invalidate(db):
    db.c.insert_one({"_id": 1})
    with stream(db) as s:
        db.c.rename("d")
        ren, inv = s.collect(2)
        assert s.id == 0
    assert ren["operationType"] == "rename"
    assert ren["ns"] == {"db": db.name, "coll": "c"}
    assert ren["to"] == {"db": db.name, "coll": "d"}
    assert inv["operationType"] == "invalidate"


def test_drop_database_on_a_collection_stream(client, db):
    db.c.insert_one({"_id": 1})
    with stream(db) as s:
        client.drop_database(db.name)
        drop, inv = s.collect(2)
    assert drop["operationType"] == "drop"
    assert inv["operationType"] == "invalidate"


def test_database_stream(client, db):
    db.a.insert_one({"_id": 0})
    db.b.insert_one({"_id": 0})
    with stream(db, coll=None) as s:
        assert s.ns == db.name + ".$cmd.aggregate"
        db.a.insert_one({"_id": 1})
        db.b.insert_one({"_id": 1})
        client.other_db_for_stream.c.insert_one({"_id": 1})
        db.a.rename("a2")                 # no invalidate at db level
        db.b.update_one({"_id": 1}, {"$set": {"v": 1}})
        client.drop_database(db.name)
        evs = s.collect(8)
        assert s.id == 0
    client.drop_database("other_db_for_stream")
    ops = [(e["operationType"], e.get("ns", {}).get("coll")) for e in evs]
    assert ops[:4] == [("insert", "a"), ("insert", "b"), ("rename", "a"),
                       ("update", "b")]
    assert sorted(ops[4:6]) == [("drop", "a2"), ("drop", "b")]
    assert ops[6] == ("dropDatabase", None)
    assert evs[6]["ns"] == {"db": db.name}
    assert ops[7] == ("invalidate", None)


def test_cluster_stream(client, db):
    other = client[db.name + "_x"]
    try:
        with RawChangeStream(client, "admin", cluster=True) as s:
            assert s.ns == "admin.$cmd.aggregate"
            db.c.insert_one({"_id": 1})
            other.c.insert_one({"_id": 2})
            client.drop_database(other.name)   # no invalidate at cluster level
            db.c.insert_one({"_id": 3})
            evs = s.collect(5)
            assert s.id != 0
    finally:
        client.drop_database(other.name)
    mine = [(e["operationType"], e.get("ns")) for e in evs]
    assert mine[0] == ("insert", {"db": db.name, "coll": "c"})
    assert mine[1] == ("insert", {"db": other.name, "coll": "c"})
    assert mine[2] == ("drop", {"db": other.name, "coll": "c"})
    assert mine[3] == ("dropDatabase", {"db": other.name})
    assert mine[4] == ("insert", {"db": db.name, "coll": "c"})


def test_cluster_stream_only_on_admin(db):
    e = error_of(lambda: RawChangeStream(db.client, db.name,
                                         cluster=True))
    assert e.code == 72 and e.details["codeName"] == "InvalidOptions"


def test_events_of_other_collections_are_not_seen(db):
    db.create_collection("c")
    with stream(db) as s:
        db.other.insert_one({"_id": 1})
        db.c.insert_one({"_id": 2})
        [ev] = s.collect(1)
        assert ev["documentKey"] == {"_id": 2}


# --- tokens, ordering, transactions ------------------------------------

def test_resume_tokens_sort_in_event_order(client, db):
    db.create_collection("c")
    with stream(db) as s:
        db.c.insert_many([{"_id": i} for i in range(5)])
        db.c.update_many({}, {"$set": {"v": 1}})
        with client.start_session() as sess:
            with sess.start_transaction():
                db.c.insert_one({"_id": 10}, session=sess)
                db.c.insert_one({"_id": 11}, session=sess)
                db.c.delete_one({"_id": 0}, session=sess)
        db.c.delete_many({})
        evs = s.collect(17)
    tokens = [token(e) for e in evs]
    assert all(HEX.fullmatch(t) for t in tokens)
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == len(tokens)
    times = [e["clusterTime"] for e in evs]
    assert times == sorted(times)


def test_transaction_events(client, db):
    db.c.insert_one({"_id": 0})
    with stream(db) as s:
        with client.start_session() as sess:
            with sess.start_transaction():
                db.c.insert_one({"_id": 1}, session=sess)
                db.c.update_one({"_id": 0}, {"$set": {"t": 1}}, session=sess)
                db.c.delete_one({"_id": 1}, session=sess)
            lsid = sess.session_id
        db.c.insert_one({"_id": 2})
        evs = s.collect(4)
    txn = evs[:3]
    assert [e["operationType"] for e in txn] == ["insert", "update", "delete"]
    assert len({e["clusterTime"] for e in txn}) == 1
    for e in txn:
        assert uuid_bytes(e["lsid"]["id"]) == uuid_bytes(lsid["id"])
        assert isinstance(e["txnNumber"], int)
    assert len({e["txnNumber"] for e in txn}) == 1
    assert "lsid" not in evs[3] and "txnNumber" not in evs[3]
    assert evs[3]["clusterTime"] > txn[0]["clusterTime"]


def test_uncommitted_and_aborted_writes_make_no_events(client, db):
    db.create_collection("c")
    with stream(db) as s:
        with client.start_session() as sess:
            sess.start_transaction()
            db.c.insert_one({"_id": 1}, session=sess)
            assert s.drain(300) == []       # not committed yet
            sess.abort_transaction()
        db.c.insert_one({"_id": 2})
        [ev] = s.collect(1)
        assert ev["documentKey"] == {"_id": 2}


# --- start points ------------------------------------------------------

def test_resume_after_an_event_token(db):
    db.create_collection("c")
    with stream(db) as s:
        db.c.insert_many([{"_id": i} for i in range(4)])
        evs = s.collect(4)
    with stream(db, spec={"resumeAfter": evs[1]["_id"]}) as s:
        got = s.collect(2)
        assert_no_more(s)
    assert [e["documentKey"]["_id"] for e in got] == [2, 3]
    assert got == evs[2:]


def test_start_after_an_event_token(db):
    db.create_collection("c")
    with stream(db) as s:
        db.c.insert_many([{"_id": i} for i in range(3)])
        evs = s.collect(3)
    with stream(db, spec={"startAfter": evs[0]["_id"]}) as s:
        got = s.collect(2)
    assert [e["documentKey"]["_id"] for e in got] == [1, 2]


def test_start_at_operation_time(client, db):
    db.c.insert_one({"_id": 0})
    t = operation_time_of(client, lambda sess: db.c.insert_one(
        {"_id": 1}, session=sess))
    db.c.insert_one({"_id": 2})
    with stream(db, spec={"startAtOperationTime": t}) as s:
        got = s.collect(2)
    assert [e["documentKey"]["_id"] for e in got] == [1, 2]
    assert got[0]["clusterTime"] == t


def test_resume_after_a_post_batch_resume_token(db):
    """A postBatchResumeToken from an empty batch is a resume point: the
    stream resumed from it sees only what came later."""
    db.create_collection("c")
    with stream(db) as s:
        db.c.insert_one({"_id": 1})
        s.collect(1)
        db.other.insert_one({"_id": 1})
        assert s.drain(300) == []
        pbrt = s.pbrt
    db.c.insert_one({"_id": 2})
    with stream(db, spec={"resumeAfter": pbrt}) as s:
        [ev] = s.collect(1)
        assert_no_more(s)
    assert ev["documentKey"] == {"_id": 2}


def test_start_after_invalidate(db):
    db.c.insert_one({"_id": 1})
    with stream(db) as s:
        db.c.drop()
        _, inv = s.collect(2)
    db.c.insert_one({"_id": 2})
    with stream(db, spec={"startAfter": inv["_id"]}) as s:
        [ev] = s.collect(1)
    assert ev["operationType"] == "insert"
    assert ev["documentKey"] == {"_id": 2}


def test_resume_after_invalidate_is_refused(db):
    """resumeAfter an invalidate fails with InvalidResumeToken (260);
    only startAfter may start there."""
    db.c.insert_one({"_id": 1})
    with stream(db) as s:
        db.c.drop()
        _, inv = s.collect(2)
    e = error_of(lambda: stream(db, spec={"resumeAfter": inv["_id"]}))
    assert e.code == 260
    assert e.details["codeName"] == "InvalidResumeToken"


def test_pymongo_watch_and_resume_token(db):
    db.create_collection("c")
    with db.c.watch(max_await_time_ms=200) as cs:
        db.c.insert_one({"_id": 1})
        db.c.insert_one({"_id": 2})
        first = None
        deadline = time.monotonic() + 10
        while first is None and time.monotonic() < deadline:
            first = cs.try_next()
        assert first["documentKey"] == {"_id": 1}
    with db.c.watch(resume_after=first["_id"],
                    max_await_time_ms=200) as cs:
        nxt = None
        deadline = time.monotonic() + 10
        while nxt is None and time.monotonic() < deadline:
            nxt = cs.try_next()
        assert nxt["documentKey"] == {"_id": 2}
        assert cs.resume_token == nxt["_id"]


# --- fullDocument ------------------------------------------------------

def test_full_document_update_lookup_is_the_current_document(db):
    db.c.insert_one({"_id": 1, "x": 1})
    db.c.insert_one({"_id": 2, "x": 1})
    with stream(db, spec={"fullDocument": "updateLookup"}) as s:
        db.c.update_one({"_id": 1}, {"$set": {"x": 2}})
        db.c.update_one({"_id": 1}, {"$set": {"x": 3}})
        db.c.update_one({"_id": 2}, {"$set": {"x": 2}})
        db.c.delete_one({"_id": 2})
        evs = s.collect(4)
    # Looked up when read, not when written: both see x == 3.
    assert evs[0]["fullDocument"] == {"_id": 1, "x": 3}
    assert evs[1]["fullDocument"] == {"_id": 1, "x": 3}
    assert evs[2]["operationType"] == "update"
    assert evs[2]["fullDocument"] is None         # gone by then
    assert "fullDocument" not in evs[3]           # delete


def test_full_document_when_available_with_post_images(db):
    """whenAvailable/required give the post-image as of each update (from
    the collection's pre-images), unlike updateLookup."""
    c = with_pre_images(db)
    c.insert_one({"_id": 1, "x": 1})
    with stream(db, spec={"fullDocument": "whenAvailable"}) as s:
        c.update_one({"_id": 1}, {"$set": {"x": 2}})
        c.update_one({"_id": 1}, {"$set": {"x": 3}})
        evs = s.collect(2)
    assert [e["fullDocument"] for e in evs] == [{"_id": 1, "x": 2},
                                               {"_id": 1, "x": 3}]
    with stream(db, spec={"fullDocument": "required",
                          "startAtOperationTime": evs[0]["clusterTime"]}) as s:
        got = s.collect(2)
    assert [e["fullDocument"] for e in got] == [{"_id": 1, "x": 2},
                                               {"_id": 1, "x": 3}]


def test_full_document_when_available_without_pre_images(db):
    db.c.insert_one({"_id": 1, "x": 1})
    with stream(db, spec={"fullDocument": "whenAvailable"}) as s:
        db.c.update_one({"_id": 1}, {"$set": {"x": 2}})
        db.c.insert_one({"_id": 2})
        upd, ins = s.collect(2)
    assert upd["fullDocument"] is None
    assert ins["fullDocument"] == {"_id": 2}


def test_full_document_required_without_pre_images_fails(db):
    """NoMatchingDocument (47) when the required post-image is missing."""
    db.c.insert_one({"_id": 1, "x": 1})
    t = operation_time_of(db.client, lambda sess: db.c.update_one(
        {"_id": 1}, {"$set": {"x": 2}}, session=sess))

    def read():
        with stream(db, spec={"fullDocument": "required",
                              "startAtOperationTime": t}) as s:
            s.collect(1)
    e = error_of(read)
    assert e.code == 47
    assert e.details["codeName"] == "NoMatchingDocument"


def test_full_document_bad_value(db):
    e = error_of(lambda: stream(db, spec={"fullDocument": "sometimes"}))
    assert e.code == 2 and e.details["codeName"] == "BadValue"


# --- fullDocumentBeforeChange ------------------------------------------

def test_before_change_off_by_default(db):
    c = with_pre_images(db)
    c.insert_one({"_id": 1, "x": 1})
    with stream(db) as s:
        c.update_one({"_id": 1}, {"$set": {"x": 2}})
        [ev] = s.collect(1)
    assert "fullDocumentBeforeChange" not in ev
    with stream(db, spec={"fullDocumentBeforeChange": "off",
                          "startAtOperationTime": ev["clusterTime"]}) as s:
        [ev] = s.collect(1)
    assert "fullDocumentBeforeChange" not in ev


def test_before_change_required_with_pre_images(db):
    c = with_pre_images(db)
    c.insert_one({"_id": 1, "x": 1})
    with stream(db, spec={"fullDocumentBeforeChange": "required"}) as s:
        c.update_one({"_id": 1}, {"$set": {"x": 2}})
        c.replace_one({"_id": 1}, {"y": 1})
        c.delete_one({"_id": 1})
        upd, rep, dele = s.collect(3)
    assert upd["fullDocumentBeforeChange"] == {"_id": 1, "x": 1}
    assert rep["fullDocumentBeforeChange"] == {"_id": 1, "x": 2}
    assert dele["fullDocumentBeforeChange"] == {"_id": 1, "y": 1}


def test_before_change_when_available_follows_the_write_time_setting(db):
    """Pre-images exist only for writes made while the option was on."""
    db.c.insert_one({"_id": 1, "x": 1})
    with stream(db, spec={"fullDocumentBeforeChange": "whenAvailable"}) as s:
        db.c.update_one({"_id": 1}, {"$set": {"x": 2}})
        db.command({"collMod": "c",
                    "changeStreamPreAndPostImages": {"enabled": True}})
        db.c.update_one({"_id": 1}, {"$set": {"x": 3}})
        first, second = s.collect(2)
    assert first["fullDocumentBeforeChange"] is None
    assert second["fullDocumentBeforeChange"] == {"_id": 1, "x": 2}


def test_before_change_required_without_pre_images_fails(db):
    db.c.insert_one({"_id": 1, "x": 1})
    t = operation_time_of(db.client, lambda sess: db.c.delete_one(
        {"_id": 1}, session=sess))

    def read():
        with stream(db, spec={"fullDocumentBeforeChange": "required",
                              "startAtOperationTime": t}) as s:
            s.collect(1)
    e = error_of(read)
    assert e.code == 47


# --- user stages after $changeStream ------------------------------------

def test_match_stage(db):
    db.create_collection("c")
    with stream(db, pipeline=[{"$match": {
            "operationType": "insert", "fullDocument.keep": True}}]) as s:
        db.c.insert_many([{"_id": 1, "keep": False}, {"_id": 2, "keep": True}])
        db.c.delete_one({"_id": 2})
        db.c.insert_one({"_id": 3, "keep": True})
        evs = s.collect(2)
        assert_no_more(s)
    assert [e["documentKey"]["_id"] for e in evs] == [2, 3]


def test_project_stage_keeps_id(db):
    db.create_collection("c")
    with stream(db, pipeline=[{"$project": {"operationType": 1,
                                            "documentKey": 1}}]) as s:
        db.c.insert_one({"_id": 1, "big": "x" * 100})
        [ev] = s.collect(1)
    assert set(ev) == {"_id", "operationType", "documentKey"}


def test_add_fields_and_replace_root_stages(db):
    db.create_collection("c")
    pipeline = [{"$addFields": {"tag": "t1"}},
                {"$replaceRoot": {"newRoot": {
                    "_id": "$_id", "op": "$operationType", "tag": "$tag",
                    "k": "$documentKey._id"}}}]
    with stream(db, pipeline=pipeline) as s:
        db.c.insert_one({"_id": 7})
        [ev] = s.collect(1)
    assert set(ev) == {"_id", "op", "tag", "k"}
    assert ev["op"] == "insert" and ev["tag"] == "t1" and ev["k"] == 7
    assert HEX.fullmatch(token(ev))


def test_projecting_away_the_id_fails_280(db):
    db.create_collection("c")

    def read():
        with stream(db, pipeline=[{"$project": {"_id": 0}}]) as s:
            db.c.insert_one({"_id": 1})
            s.collect(1)
    e = error_of(read)
    assert e.code == 280
    assert e.details["codeName"] == "ChangeStreamFatalError"
    # MongoDB labels the codes of its NonResumableChangeStreamError
    # category (280, 286) so drivers never retry them.
    assert "NonResumableChangeStreamError" in e.details.get("errorLabels", [])


def test_replacing_the_id_fails_280(db):
    db.create_collection("c")

    def read():
        with stream(db, pipeline=[{"$replaceRoot": {
                "newRoot": "$fullDocument"}}]) as s:
            db.c.insert_one({"_id": 1, "a": 1})
            s.collect(1)
    assert error_of(read).code == 280


def test_change_stream_must_be_first(db):
    e = error_of(lambda: db.command({"aggregate": "c", "pipeline": [
        {"$match": {}}, {"$changeStream": {}}], "cursor": {}}))
    assert e.code == 40602


def test_unknown_change_stream_option(db):
    e = error_of(lambda: stream(db, spec={"noSuchOption": 1}))
    assert e.code == 40415


# --- batches, postBatchResumeToken, waiting -------------------------------

def test_post_batch_resume_token_in_every_reply(db):
    db.create_collection("c")
    with stream(db) as s:
        db.c.insert_many([{"_id": i} for i in range(3)])
        evs = s.collect(3)
        s.drain(200)
        for reply in s.replies:
            pbrt = reply["cursor"]["postBatchResumeToken"]
            assert HEX.fullmatch(pbrt["_data"])
        # After a batch that ends with an event, the token is at least that
        # event's.
        assert s.pbrt["_data"] >= token(evs[-1])


def test_post_batch_resume_token_advances_on_empty_batches(db):
    db.create_collection("c")
    with stream(db) as s:
        first = s.pbrt
        db.other.insert_one({"_id": 1})       # an oplog entry we do not see
        assert s.drain(300) == []
        second = s.pbrt
        db.other.insert_one({"_id": 2})
        assert s.drain(300) == []
        third = s.pbrt
    assert first["_data"] < second["_data"] < third["_data"]


def test_batch_size_on_change_stream(db):
    db.create_collection("c")
    with stream(db, batch_size=0) as s:
        db.c.insert_many([{"_id": i} for i in range(5)])
        got = s.get_more(max_await_ms=500, batch_size=2)
        assert len(got) == 2
        got += s.get_more(max_await_ms=500, batch_size=10)
    assert [e["documentKey"]["_id"] for e in got] == [0, 1, 2, 3, 4]


def test_first_batch_has_events_already_there(db):
    db.c.insert_one({"_id": 0})
    t = operation_time_of(db.client, lambda sess: db.c.insert_one(
        {"_id": 1}, session=sess))
    with stream(db, spec={"startAtOperationTime": t}) as s:
        assert [e["documentKey"]["_id"] for e in s.first_batch] == [1]


def test_get_more_waits_for_max_await_time(db):
    db.create_collection("c")
    with stream(db) as s:
        t0 = time.monotonic()
        assert s.get_more(max_await_ms=800) == []
        took = time.monotonic() - t0
        assert s.id != 0
    assert took >= 0.75, "returned after %.3f s" % took


def test_get_more_returns_as_soon_as_an_event_arrives(db):
    db.create_collection("c")
    with stream(db) as s:
        writer = threading.Timer(0.3, lambda: db.c.insert_one({"_id": 1}))
        t0 = time.monotonic()
        writer.start()
        try:
            got = s.get_more(max_await_ms=20000)
        finally:
            writer.join()
        took = time.monotonic() - t0
    assert [e["documentKey"]["_id"] for e in got] == [1]
    assert took < 15, "a 20 s await took %.1f s despite an event" % took


# --- history lost (286): needs a tiny oplog --------------------------------

@pytest.mark.standin_only
def test_resume_point_older_than_the_oplog_fails_286(standin):
    server = standin(oplog_size=10)
    c = server.client()
    db = c.hist
    db.create_collection("c")
    t0 = operation_time_of(c, lambda s: db.c.insert_one({"_id": 0},
                                                         session=s))
    with RawChangeStream(c, "hist", "c",
                         spec={"startAtOperationTime": t0}) as s:
        [first] = s.collect(1)
    for i in range(1, 31):
        db.c.insert_one({"_id": i})

    for spec in ({"resumeAfter": first["_id"]},
                 {"startAfter": first["_id"]},
                 {"startAtOperationTime": t0}):
        e = error_of(lambda: RawChangeStream(c, "hist", "c", spec=spec))
        assert e.code == 286, spec
        assert e.details["codeName"] == "ChangeStreamHistoryLost"
        assert "NonResumableChangeStreamError" in e.details.get(
            "errorLabels", [])
    # A recent point still works.
    recent = operation_time_of(c, lambda s: db.c.insert_one({"_id": 99},
                                                            session=s))
    with RawChangeStream(c, "hist", "c",
                         spec={"startAtOperationTime": recent}) as s:
        assert [e["documentKey"]["_id"] for e in s.collect(1)] == [99]
    c.close()


def test_kill_change_stream_cursor(db):
    db.create_collection("c")
    s = stream(db)
    try:
        cid = s.id
        assert cid != 0
        reply = db.command({"killCursors": "c", "cursors": [Int64(cid)]},
                           session=s.session)
        assert reply["cursorsKilled"] == [cid]
        e = error_of(lambda: s.get_more(max_await_ms=100))
        assert e.code == 43
    finally:
        s.id = 0
        s.close()


def test_resume_database_and_cluster_streams(client, db):
    db.create_collection("a")
    db.create_collection("b")
    with stream(db, coll=None) as s:
        db.a.insert_one({"_id": 1})
        db.b.insert_one({"_id": 2})
        db.a.insert_one({"_id": 3})
        evs = s.collect(3)
    with stream(db, coll=None, spec={"resumeAfter": evs[0]["_id"]}) as s:
        assert s.collect(2) == evs[1:]
    with RawChangeStream(client, "admin", cluster=True,
                         spec={"startAfter": evs[1]["_id"]}) as s:
        [ev] = s.collect(1)
    assert ev == evs[2]
    with RawChangeStream(client, "admin", cluster=True, spec={
            "startAtOperationTime": evs[1]["clusterTime"]}) as s:
        assert s.collect(2) == evs[1:]



def test_kill_database_change_stream_cursor(db):
    """A database stream's cursor lives in "<db>.$cmd.aggregate"; mongod's
    killCursors accepts that namespace (drivers send it when a database
    watch() is closed)."""
    db.create_collection("c")
    s = stream(db, coll=None)
    try:
        cid = s.id
        assert cid != 0
        reply = db.command({"killCursors": "$cmd.aggregate",
                            "cursors": [Int64(cid)]}, session=s.session)
        assert reply["cursorsKilled"] == [cid]
        e = error_of(lambda: s.get_more(max_await_ms=100))
        assert e.code == 43
    finally:
        s.id = 0
        s.close()
