"""The stand-in's oplog, journal and change stream cursors, tested directly.

These tests drive test/standin/oplog.py, journal.py and changestream.py
without a server: a fake server holds an Oplog and a dict store, and the
tests append entries as the stand-in's writers do and read them back
through change stream cursors.  The end-to-end tests at the bottom
(persistence across kill -9) need a stand-in of their own.
"""
import datetime
import os
import sys
import threading
import time
from pathlib import Path

import bson
import pymongo
import pytest
from bson import Int64, Timestamp
from bson.raw_bson import RawBSONDocument

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from standin import changestream as cs  # noqa: E402
from standin import journal as journal_mod  # noqa: E402
from standin.errors import CommandError  # noqa: E402
from standin.journal import CODEC  # noqa: E402
from standin.oplog import Oplog  # noqa: E402


class FakeStore:
    def __init__(self):
        self.docs = {}

    def lookup(self, db, coll, id_value):
        return self.docs.get((db, coll, id_value))

    def collection_options(self, db, coll):
        return {}


class FakeServer:
    def __init__(self, max_events=1000, dbpath=None):
        self.oplog = Oplog(max_events, dbpath)
        self.store = FakeStore()


def ins(i, coll="c", db="d", **kw):
    doc = {"_id": i, "v": i}
    return dict({"op": "insert", "db": db, "coll": coll, "key": {"_id": i}, "doc": doc}, **kw)


def upd(i, new, old, coll="c", db="d", pre_images=False, **kw):
    e = {"op": "update", "db": db, "coll": coll, "key": {"_id": i}, "doc": new, "pre": old,
         "preImages": pre_images,
         "upd": {"updatedFields": {"v": new["v"]}, "removedFields": [], "truncatedArrays": []}}
    e.update(kw)
    return e


def dele(i, old, coll="c", db="d", pre_images=False):
    return {"op": "delete", "db": db, "coll": coll, "key": {"_id": i}, "pre": old,
            "preImages": pre_images}


def ddl(op, coll="c", db="d", **kw):
    return dict({"op": op, "db": db, "coll": coll}, **kw)


def open_stream(server, coll="c", db="d", spec=None, pipeline=(), cluster=False):
    with server.oplog.lock:
        return cs.open_change_stream(server, db, coll, dict(spec or {}), list(pipeline),
                                     cluster)


def append(server, entries, lsid=None, txn_number=None):
    with server.oplog.lock:
        return server.oplog.append(entries, lsid, txn_number)


def batch(stream, server, batch_size=None, first=False, wait_ms=0):
    with server.oplog.lock:
        evs, pbrt, closed = stream.next_batch(batch_size, wait_ms, first)
    return [bson.decode(e.raw, CODEC) for e in evs], pbrt, closed


def events(stream, server, **kw):
    return batch(stream, server, **kw)[0]


def code_of(fn):
    with pytest.raises(CommandError) as e:
        fn()
    return e.value.code


# --- the clock and the bounded oplog ---------------------------------------

def test_each_write_gets_a_later_cluster_time():
    s = FakeServer()
    t0 = s.oplog.cluster_time()
    last = append(s, [ins(1), ins(2), ins(3)])
    times = [s.oplog.at(q)[0]["ts"] for q in range(s.oplog.first_seq, s.oplog.end_seq)]
    assert times == sorted(set(times)) and times[0] > t0
    assert last == times[-1] == s.oplog.cluster_time()


def test_a_transaction_shares_one_cluster_time():
    s = FakeServer()
    lsid = {"id": bson.Binary(b"\x01" * 16, 4)}
    append(s, [ins(0)])
    ts = append(s, [ins(1), ins(2), dele(1, {"_id": 1})], lsid, 7)
    entries = [s.oplog.at(q)[0] for q in range(1, 4)]
    assert [e["ts"] for e in entries] == [ts] * 3
    assert [e["txnOpIndex"] for e in entries] == [0, 1, 2]
    assert all(e["lsid"] == lsid and e["txnNumber"] == Int64(7) for e in entries)
    assert append(s, [ins(3)]) > ts


def test_only_the_newest_entries_stay_and_older_start_points_fail_286():
    s = FakeServer(max_events=5)
    first = append(s, [ins(0)])
    for i in range(1, 10):
        append(s, [ins(i)])
    assert len(s.oplog) == 5
    kept = [s.oplog.at(q)[0]["doc"]["_id"] for q in range(s.oplog.first_seq, s.oplog.end_seq)]
    assert kept == [5, 6, 7, 8, 9]
    err = pytest.raises(CommandError, open_stream, s, spec={"startAtOperationTime": first})
    assert err.value.code == 286 and "NonResumableChangeStreamError" in err.value.labels
    oldest = s.oplog.oldest_time()
    st = open_stream(s, spec={"startAtOperationTime": oldest})
    assert [e["documentKey"]["_id"] for e in events(st, s)] == kept


def test_an_oplog_that_lost_nothing_accepts_any_earlier_start():
    """mongod's oplog scan fails with 286 only once the oplog rolled over; an
    oplog still starting with its "initiating set" entry takes any time."""
    s = FakeServer()
    st = open_stream(s, spec={"startAtOperationTime": Timestamp(1, 1)})
    append(s, [ins(1)])
    assert len(events(st, s)) == 1
    early = open_stream(s, spec={"startAtOperationTime": Timestamp(1, 1)})
    assert len(events(early, s)) == 1


def test_a_transaction_leaves_memory_whole():
    s = FakeServer(max_events=4)
    lsid = {"id": bson.Binary(b"\x02" * 16, 4)}
    append(s, [ins(0)])
    append(s, [ins(1), ins(2), ins(3)], lsid, 1)
    append(s, [ins(4)])   # 5 entries: the oldest kept one would split the txn
    kept = [s.oplog.at(q)[0]["doc"]["_id"] for q in range(s.oplog.first_seq, s.oplog.end_seq)]
    assert kept == [1, 2, 3, 4]


def test_a_cursor_that_falls_behind_fails_286_on_get_more():
    s = FakeServer(max_events=3)
    st = open_stream(s)
    append(s, [ins(0)])
    assert len(events(st, s, batch_size=1)) == 1
    for i in range(1, 8):
        append(s, [ins(i)])
    assert code_of(lambda: batch(st, s)) == 286


# --- resume tokens ------------------------------------------------------------

def test_tokens_are_fixed_width_upper_hex_sorting_in_event_order():
    s = FakeServer()
    st = open_stream(s, db="d", coll=None)
    lsid = {"id": bson.Binary(b"\x03" * 16, 4)}
    append(s, [ins(1)])
    append(s, [ins(2), ins(3), ins(4)], lsid, 1)
    append(s, [ins(5), ddl("drop")])
    evs, pbrt, _ = batch(st, s)
    tokens = [e["_id"]["_data"] for e in evs]
    assert [e["operationType"] for e in evs] == ["insert"] * 5 + ["drop"]
    assert all(len(t) == 28 and t == t.upper() for t in tokens)
    bytes.fromhex(tokens[0])
    assert tokens == sorted(tokens) and len(set(tokens)) == len(tokens)
    assert pbrt == evs[-1]["_id"]


def test_invalidate_sorts_after_its_event_and_before_the_next():
    s = FakeServer()
    st = open_stream(s)
    append(s, [ddl("drop")])
    evs, pbrt, closed = batch(st, s)
    assert [e["operationType"] for e in evs] == ["drop", "invalidate"] and closed
    assert evs[0]["_id"]["_data"] < evs[1]["_id"]["_data"] == pbrt["_data"]
    assert evs[0]["clusterTime"] == evs[1]["clusterTime"]
    append(s, [ins(1)])
    st2 = open_stream(s, spec={"startAfter": evs[1]["_id"]})
    assert events(st2, s)[0]["_id"]["_data"] > evs[1]["_id"]["_data"]


@pytest.mark.parametrize("token, code", [
    ("not a document", 14),
    ({"x": 1}, 40647),
    ({"_data": 5}, 40647),
    ({"_data": "zz"}, 9),
    ({"_data": "8200"}, 260),
    ({"_data": "82" + "0" * 26, "extra": 1}, 40649),
])
def test_malformed_tokens(token, code):
    s = FakeServer()
    assert code_of(lambda: open_stream(s, spec={"resumeAfter": token})) == code


def test_resume_after_each_event_of_a_transaction_is_exact():
    s = FakeServer()
    st = open_stream(s)
    lsid = {"id": bson.Binary(b"\x04" * 16, 4)}
    append(s, [ins(1), ins(2), ins(3)], lsid, 5)
    evs = events(st, s)
    for n, ev in enumerate(evs):
        again = open_stream(s, spec={"resumeAfter": ev["_id"]})
        assert [e["documentKey"]["_id"] for e in events(again, s)] == [2, 3][n:]


def test_token_not_in_the_oplog_fails_280_and_a_future_one_waits():
    s = FakeServer()
    append(s, [ins(1)])
    now = s.oplog.cluster_time()
    missing = cs.make_token((now.time, now.inc, 9, cs.KIND_EVENT))
    err = pytest.raises(CommandError, open_stream, s, spec={"resumeAfter": missing})
    assert err.value.code == 280 and "NonResumableChangeStreamError" in err.value.labels
    future = cs.make_token((now.time + 3600, 1, 0, cs.KIND_EVENT))
    st = open_stream(s, spec={"resumeAfter": future})
    evs, pbrt, closed = batch(st, s, first=True)
    assert evs == [] and pbrt == future and not closed
    append(s, [ins(2)])   # before the token: not seen, no verdict yet
    assert batch(st, s)[0] == []
    s.oplog._last = Timestamp(now.time + 3600, 5)     # time passes the token
    append(s, [ins(3)])
    assert code_of(lambda: batch(st, s)) == 280


def test_high_water_mark_tokens_resume():
    s = FakeServer()
    st = open_stream(s)
    append(s, [ins(1, coll="other")])
    evs, pbrt, _ = batch(st, s)
    assert evs == []
    append(s, [ins(2)])
    again = open_stream(s, spec={"resumeAfter": pbrt})
    assert [e["documentKey"]["_id"] for e in events(again, s)] == [2]


# --- options ----------------------------------------------------------------------

@pytest.mark.parametrize("spec, code", [
    ({"resumeAfter": cs.make_token((1, 1, 0, 0x80)),
      "startAfter": cs.make_token((1, 1, 0, 0x80))}, 50865),
    ({"resumeAfter": cs.make_token((1, 1, 0, 0x80)),
      "startAtOperationTime": Timestamp(1, 1)}, 40674),
    ({"resumeAfter": cs.make_token((1, 1, 0, 0x81))}, 260),
    ({"fullDocument": "sometimes"}, 2),
    ({"fullDocument": 1}, 14),
    ({"fullDocumentBeforeChange": "required!"}, 2),
    ({"startAtOperationTime": 5}, 14),
    ({"showExpandedEvents": 1}, 14),
    ({"noSuchOption": True}, 40415),
])
def test_option_errors(spec, code):
    s = FakeServer()
    assert code_of(lambda: open_stream(s, spec=spec)) == code


def test_spec_must_be_a_document():
    s = FakeServer()
    with s.oplog.lock:
        assert code_of(lambda: cs.open_change_stream(s, "d", "c", 1, [], False)) == 50808


@pytest.mark.parametrize("db, coll, cluster, code", [
    ("admin", None, False, 73), ("local", "c", False, 73), ("config", None, False, 73),
    ("d", "system.views", False, 73), ("d", None, True, 72), ("admin", "c", True, 72),
])
def test_namespace_errors(db, coll, cluster, code):
    s = FakeServer()
    assert code_of(lambda: open_stream(s, db=db, coll=coll, cluster=cluster)) == code


@pytest.mark.parametrize("stage, code", [
    ({"$group": {"_id": None}}, 20), ({"$sort": {"a": 1}}, 20), ({"$lookup": {}}, 20),
    ({"$nonsense": {}}, 40324), ({"$changeStream": {}}, 40602),
    ({"$match": {}, "$project": {}}, 40323),
    ({"$match": "x"}, 15959), ({"$project": 1}, 15969), ({"$set": []}, 40272),
    ({"$replaceRoot": "$x"}, 40229), ({"$replaceRoot": {}}, 40231), ({"$unset": [1]}, 31002),
])
def test_stage_errors(stage, code):
    s = FakeServer()
    assert code_of(lambda: open_stream(s, pipeline=[stage])) == code


# --- events -----------------------------------------------------------------------

def test_event_fields_and_their_order():
    s = FakeServer()
    st = open_stream(s, spec={"fullDocument": "updateLookup",
                              "fullDocumentBeforeChange": "whenAvailable"})
    s.store.docs[("d", "c", 1)] = {"_id": 1, "v": 3}
    append(s, [ins(1), upd(1, {"_id": 1, "v": 2}, {"_id": 1, "v": 1}, pre_images=True),
               {"op": "replace", "db": "d", "coll": "c", "key": {"_id": 1},
                "doc": {"_id": 1, "w": 1}, "pre": {"_id": 1, "v": 2}, "preImages": False},
               dele(1, {"_id": 1, "w": 1}, pre_images=True)])
    ins_ev, upd_ev, rep_ev, del_ev = events(st, s)
    head = ["_id", "operationType", "clusterTime", "wallTime"]
    assert list(ins_ev) == head + ["fullDocument", "ns", "documentKey"]
    assert list(upd_ev) == head + ["fullDocument", "ns", "documentKey", "updateDescription",
                                   "fullDocumentBeforeChange"]
    assert upd_ev["fullDocument"] == {"_id": 1, "v": 3}        # looked up now
    assert upd_ev["fullDocumentBeforeChange"] == {"_id": 1, "v": 1}
    assert upd_ev["updateDescription"] == {"updatedFields": {"v": 2}, "removedFields": [],
                                           "truncatedArrays": []}
    assert list(rep_ev) == head + ["fullDocument", "ns", "documentKey",
                                   "fullDocumentBeforeChange"]
    assert rep_ev["fullDocumentBeforeChange"] is None         # pre-images were off then
    assert list(del_ev) == head + ["ns", "documentKey", "fullDocumentBeforeChange"]
    assert del_ev["fullDocumentBeforeChange"] == {"_id": 1, "w": 1}
    assert ins_ev["ns"] == {"db": "d", "coll": "c"} and ins_ev["documentKey"] == {"_id": 1}
    assert isinstance(ins_ev["clusterTime"], Timestamp)
    assert isinstance(ins_ev["wallTime"], datetime.datetime)


def test_update_lookup_of_a_deleted_document_is_null():
    s = FakeServer()
    st = open_stream(s, spec={"fullDocument": "updateLookup"})
    append(s, [upd(1, {"_id": 1, "v": 2}, {"_id": 1, "v": 1})])
    [ev] = events(st, s)
    assert "fullDocument" in ev and ev["fullDocument"] is None


@pytest.mark.parametrize("mode", ["whenAvailable", "required"])
def test_post_images_come_from_the_entry_when_pre_images_were_on(mode):
    s = FakeServer()
    st = open_stream(s, spec={"fullDocument": mode})
    append(s, [upd(1, {"_id": 1, "v": 2}, {"_id": 1, "v": 1}, pre_images=True)])
    assert events(st, s)[0]["fullDocument"] == {"_id": 1, "v": 2}


def test_post_and_pre_images_unavailable():
    s = FakeServer()
    entry = upd(1, {"_id": 1, "v": 2}, {"_id": 1, "v": 1}, pre_images=False)
    when = open_stream(s, spec={"fullDocument": "whenAvailable",
                                "fullDocumentBeforeChange": "whenAvailable"})
    req_post = open_stream(s, spec={"fullDocument": "required"})
    req_pre = open_stream(s, spec={"fullDocumentBeforeChange": "required"})
    append(s, [entry])
    [ev] = events(when, s)
    assert ev["fullDocument"] is None and ev["fullDocumentBeforeChange"] is None
    assert code_of(lambda: batch(req_post, s)) == 47
    assert code_of(lambda: batch(req_pre, s)) == 47
    assert code_of(lambda: batch(req_pre, s)) == 47      # the cursor stays failed


def test_transaction_events_carry_lsid_and_txn_number():
    s = FakeServer()
    st = open_stream(s)
    lsid = {"id": bson.Binary(b"\x05" * 16, 4)}
    append(s, [ins(1)])
    append(s, [ins(2), ins(3)], lsid, 9)
    e1, e2, e3 = events(st, s)
    assert "lsid" not in e1 and "txnNumber" not in e1
    assert e2["lsid"] == e3["lsid"] == lsid
    assert e2["txnNumber"] == e3["txnNumber"] == 9 and isinstance(e2["txnNumber"], Int64)
    assert e2["clusterTime"] == e3["clusterTime"] > e1["clusterTime"]


def test_rename_from_and_onto_a_watched_collection_invalidates():
    s = FakeServer()
    src = open_stream(s, coll="a")
    dst = open_stream(s, coll="b")
    whole_db = open_stream(s, coll=None)
    append(s, [ddl("rename", coll="a", to={"db": "d", "coll": "b"})])
    for st in (src, dst):
        evs, _, closed = batch(st, s)
        assert [e["operationType"] for e in evs] == ["rename", "invalidate"] and closed
        assert evs[0]["ns"] == {"db": "d", "coll": "a"}
        assert evs[0]["to"] == {"db": "d", "coll": "b"}
    evs, _, closed = batch(whole_db, s)
    assert [e["operationType"] for e in evs] == ["rename"] and not closed


def test_drop_database_per_stream_level():
    s = FakeServer()
    coll = open_stream(s, coll="a")
    db = open_stream(s, coll=None)
    cluster = open_stream(s, db="admin", coll=None, cluster=True)
    append(s, [ddl("drop", coll="a"), ddl("drop", coll="b"),
               {"op": "dropDatabase", "db": "d", "coll": None}])
    assert [e["operationType"] for e in events(coll, s)] == ["drop", "invalidate"]
    evs, _, closed = batch(db, s)
    assert [e["operationType"] for e in evs] == ["drop", "drop", "dropDatabase", "invalidate"]
    assert evs[2]["ns"] == {"db": "d"} and closed
    evs, _, closed = batch(cluster, s)
    assert [e["operationType"] for e in evs] == ["drop", "drop", "dropDatabase"]
    assert not closed


def test_cluster_stream_skips_internal_databases_and_system_collections():
    s = FakeServer()
    st = open_stream(s, db="admin", coll=None, cluster=True)
    append(s, [ins(1, db="admin"), ins(2, db="config"), ins(3, db="local"),
               ins(4, coll="system.views"), ins(5, db="x"), ins(6, db="y")])
    assert [e["ns"]["db"] for e in events(st, s)] == ["x", "y"]


def test_ddl_events_only_with_show_expanded_events():
    s = FakeServer()
    plain = open_stream(s)
    expanded = open_stream(s, spec={"showExpandedEvents": True})
    append(s, [ddl("create", options={}), ddl("createIndexes", indexes=[
        {"v": 2, "key": {"a": 1}, "name": "a_1"}]), ins(1),
        ddl("collMod", options={"changeStreamPreAndPostImages": {"enabled": True}}),
        ddl("dropIndexes", indexes=["a_1"])])
    assert [e["operationType"] for e in events(plain, s)] == ["insert"]
    evs = events(expanded, s)
    assert [e["operationType"] for e in evs] == [
        "create", "createIndexes", "insert", "modify", "dropIndexes"]
    assert evs[1]["operationDescription"] == {"indexes": [
        {"v": 2, "key": {"a": 1}, "name": "a_1"}]}
    assert evs[4]["operationDescription"] == {"indexes": [{"name": "a_1"}]}
    assert evs[0]["nsType"] == "collection"
    assert evs[2]["collectionUUID"] == evs[0]["collectionUUID"]


# --- user stages ------------------------------------------------------------------

def test_match_drops_events_but_not_positions():
    s = FakeServer()
    st = open_stream(s, pipeline=[{"$match": {"operationType": "delete"}}])
    append(s, [ins(1), ins(2)])
    evs, pbrt, _ = batch(st, s)
    assert evs == []
    assert pbrt["_data"] > cs.make_token(s.oplog.key_at(s.oplog.end_seq - 1)
                                          + (cs.KIND_EVENT,))["_data"]
    append(s, [dele(1, {"_id": 1})])
    [ev] = events(st, s)
    assert ev["operationType"] == "delete"


@pytest.mark.parametrize("stage, check", [
    ({"$project": {"operationType": 1}}, lambda e: set(e) == {"_id", "operationType"}),
    ({"$addFields": {"x": "$fullDocument.v"}}, lambda e: e["x"] == 1),
    ({"$set": {"y": 2}}, lambda e: e["y"] == 2),
    ({"$unset": ["ns", "wallTime"]}, lambda e: "ns" not in e and "wallTime" not in e),
    ({"$unset": "ns"}, lambda e: "ns" not in e and "documentKey" in e),
    ({"$replaceRoot": {"newRoot": {"_id": "$_id", "k": "$documentKey"}}},
     lambda e: e["k"] == {"_id": 1}),
    ({"$replaceWith": {"_id": "$_id", "t": "$operationType"}},
     lambda e: e == {"_id": e["_id"], "t": "insert"}),
    ({"$redact": {"$cond": {"if": {"$eq": ["$v", 1]}, "then": "$$PRUNE",
                            "else": "$$DESCEND"}}},
     lambda e: "fullDocument" not in e and "ns" in e),
])
def test_reshaping_stages(stage, check):
    s = FakeServer()
    st = open_stream(s, pipeline=[stage])
    append(s, [ins(1)])
    [ev] = events(st, s)
    assert check(ev), ev


@pytest.mark.parametrize("stage", [
    {"$project": {"_id": 0}}, {"$unset": "_id"}, {"$set": {"_id": "mine"}},
    {"$replaceRoot": {"newRoot": "$fullDocument"}},
])
def test_changing_the_id_fails_280(stage):
    s = FakeServer()
    st = open_stream(s, pipeline=[stage])
    append(s, [ins(1)])
    err = pytest.raises(CommandError, batch, st, s)
    assert err.value.code == 280


def test_identical_streams_share_encoded_events():
    s = FakeServer()
    a = open_stream(s)
    b = open_stream(s)
    append(s, [ins(1)])
    with s.oplog.lock:
        ra = a.next_batch(None, 0, False)[0][0].raw
        rb = b.next_batch(None, 0, False)[0][0].raw
    assert ra is rb


# --- batches and waiting -------------------------------------------------------------

def test_batch_size_and_the_post_batch_resume_token():
    s = FakeServer()
    st = open_stream(s)
    append(s, [ins(i) for i in range(5)])
    first, pbrt, _ = batch(st, s, batch_size=2)
    assert len(first) == 2 and pbrt == first[-1]["_id"]
    rest, pbrt2, _ = batch(st, s)
    assert len(rest) == 3 and pbrt2 == rest[-1]["_id"]
    empty, pbrt3, _ = batch(st, s)
    assert empty == [] and pbrt3["_data"] > pbrt2["_data"]


def test_first_batch_of_zero_returns_nothing_and_keeps_the_events():
    s = FakeServer()
    append(s, [ins(1)])
    start = s.oplog.oldest_time()
    st = open_stream(s, spec={"startAtOperationTime": start})
    evs, pbrt, _ = batch(st, s, batch_size=0, first=True)
    assert evs == []
    assert len(events(st, s)) == 1


def test_drop_and_invalidate_split_across_batches():
    s = FakeServer()
    st = open_stream(s)
    append(s, [ddl("drop")])
    evs, _, closed = batch(st, s, batch_size=1)
    assert [e["operationType"] for e in evs] == ["drop"] and not closed
    evs, pbrt, closed = batch(st, s, batch_size=1)
    assert [e["operationType"] for e in evs] == ["invalidate"] and closed
    assert pbrt == evs[0]["_id"]


def test_resume_after_a_drop_gives_the_invalidate():
    s = FakeServer()
    st = open_stream(s)
    append(s, [ddl("drop")])
    drop_ev = events(st, s)[0]
    again = open_stream(s, spec={"resumeAfter": drop_ev["_id"]})
    evs, _, closed = batch(again, s)
    assert [e["operationType"] for e in evs] == ["invalidate"] and closed


def test_get_more_waits_until_an_event_arrives():
    s = FakeServer()
    st = open_stream(s)

    def writer():
        time.sleep(0.2)
        append(s, [ins(1)])
    t = threading.Thread(target=writer)
    start = time.monotonic()
    t.start()
    evs, _, _ = batch(st, s, wait_ms=5000)
    took = time.monotonic() - start
    t.join()
    assert len(evs) == 1 and 0.15 < took < 4


def test_get_more_returns_after_max_await_without_events():
    s = FakeServer()
    st = open_stream(s)
    start = time.monotonic()
    assert batch(st, s, wait_ms=300)[0] == []
    assert 0.25 < time.monotonic() - start < 3


def test_filtered_events_do_not_end_the_wait():
    s = FakeServer()
    st = open_stream(s)

    def writer():
        time.sleep(0.1)
        append(s, [ins(1, coll="other")])
        time.sleep(0.2)
        append(s, [ins(2)])
    t = threading.Thread(target=writer)
    t.start()
    evs, _, _ = batch(st, s, wait_ms=5000)
    t.join()
    assert [e["documentKey"]["_id"] for e in evs] == [2]


# --- the journal --------------------------------------------------------------------

def test_journal_keeps_every_entry_and_the_clock(tmp_path):
    a = FakeServer(dbpath=str(tmp_path))
    lsid = {"id": bson.Binary(b"\x06" * 16, 4)}
    append(a, [ins(1), upd(1, {"_id": 1, "v": 2}, {"_id": 1, "v": 1})])
    last = append(a, [ins(2), ins(3)], lsid, 4)
    a.oplog.close()
    b = FakeServer(dbpath=str(tmp_path))
    loaded = list(b.oplog.load())
    assert [e["op"] for e in loaded] == ["insert", "update", "insert", "insert"]
    assert loaded[1]["doc"] == {"_id": 1, "v": 2} and loaded[1]["pre"] == {"_id": 1, "v": 1}
    assert loaded[3]["ts"] == last and loaded[3]["txnOpIndex"] == 1
    assert loaded[3]["lsid"] == lsid
    assert b.oplog.cluster_time() >= last
    assert append(b, [ins(4)]) > last
    assert b.oplog.origin() == a.oplog.origin()


def test_clock_starts_after_a_journal_time_in_the_future(tmp_path):
    a = FakeServer(dbpath=str(tmp_path))
    future = Timestamp(int(time.time()) + 3600, 5)
    a.oplog._last = future
    append(a, [ins(1)])
    a.oplog.close()
    b = FakeServer(dbpath=str(tmp_path))
    list(b.oplog.load())
    assert b.oplog.cluster_time() == Timestamp(future.time, 6)
    assert append(b, [ins(2)]) == Timestamp(future.time, 7)


def test_tokens_taken_before_a_restart_resume_after_it(tmp_path):
    a = FakeServer(dbpath=str(tmp_path))
    st = open_stream(a)
    append(a, [ins(1)])
    append(a, [ins(2)])
    tok = events(st, a)[0]["_id"]
    a.oplog.close()
    b = FakeServer(dbpath=str(tmp_path))
    list(b.oplog.load())
    append(b, [ins(3)])
    again = open_stream(b, spec={"resumeAfter": tok})
    assert [e["documentKey"]["_id"] for e in events(again, b)] == [2, 3]


@pytest.mark.parametrize("damage", ["cut", "garbage", "zeros", "bitflip"])
def test_a_torn_tail_is_dropped_and_the_journal_stays_appendable(tmp_path, damage):
    a = FakeServer(dbpath=str(tmp_path))
    append(a, [ins(1)])
    append(a, [ins(2), ins(3)])     # one frame: survives or goes whole
    a.oplog.close()
    path = tmp_path / journal_mod.FILE_NAME
    data = path.read_bytes()
    if damage == "cut":
        data = data[:-7]
    elif damage == "garbage":
        data = data + b"\x17\x00\x00\x00garbage"
    elif damage == "zeros":
        data = data + b"\x00" * 64
    else:
        data = data[:-3] + bytes([data[-3] ^ 0x40]) + data[-2:]
    path.write_bytes(data)
    b = FakeServer(dbpath=str(tmp_path))
    ids = [e["doc"]["_id"] for e in b.oplog.load()]
    assert ids == ([1, 2, 3] if damage in ("garbage", "zeros") else [1])
    append(b, [ins(4)])
    b.oplog.close()
    c = FakeServer(dbpath=str(tmp_path))
    assert [e["doc"]["_id"] for e in c.oplog.load()] == ids + [4]


def test_a_file_that_is_not_a_journal_is_refused(tmp_path):
    (tmp_path / journal_mod.FILE_NAME).write_bytes(b"something else entirely")
    with pytest.raises(journal_mod.JournalError, match="not a qleaf stand-in journal"):
        FakeServer(dbpath=str(tmp_path))


def test_load_rebuilds_only_the_newest_entries_in_memory(tmp_path):
    a = FakeServer(max_events=10, dbpath=str(tmp_path))
    for i in range(30):
        append(a, [ins(i)])
    a.oplog.close()
    b = FakeServer(max_events=10, dbpath=str(tmp_path))
    assert len(list(b.oplog.load())) == 30
    assert len(b.oplog) == 10
    st = open_stream(b, spec={"startAtOperationTime": b.oplog.oldest_time()})
    assert [e["documentKey"]["_id"] for e in events(st, b)] == list(range(20, 30))


def test_raw_documents_in_entries_are_journalled_as_documents(tmp_path):
    a = FakeServer(dbpath=str(tmp_path))
    raw = RawBSONDocument(bson.encode({"_id": 1, "v": "raw"}))
    st = open_stream(a)
    append(a, [dict(ins(1), doc=raw)])
    assert events(st, a)[0]["fullDocument"] == {"_id": 1, "v": "raw"}
    a.oplog.close()
    b = FakeServer(dbpath=str(tmp_path))
    assert [e["doc"] for e in b.oplog.load()] == [{"_id": 1, "v": "raw"}]


_IDS = [1, 2 ** 40, 1.5, "s", "", bson.ObjectId(), {"a": 1}, [1, 2], bson.Binary(b"xy", 0),
        bson.Binary(b"u" * 16, 4), True, None, datetime.datetime(2020, 1, 1),
        bson.Decimal128("1.5"), Int64(5), bson.Regex("a", "i"), Timestamp(1, 2)]


@pytest.mark.parametrize("id_value", _IDS, ids=[type(v).__name__ for v in _IDS])
def test_journal_records_are_exactly_the_bson_of_the_entry(id_value):
    from standin.oplog import _encode_entry
    doc = {"_id": id_value, "v": "x"}
    wall = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000)
    for entry in (
        dict(ins(id_value), wall=wall, key={"_id": doc["_id"]}, doc=doc, ts=Timestamp(9, 1)),
        dict(dele(id_value, doc, pre_images=True), wall=wall, ts=Timestamp(9, 2), txnOpIndex=3,
             lsid={"id": bson.Binary(b"l" * 16, 4)}, txnNumber=Int64(2)),
        dict(upd(id_value, doc, dict(doc, v="y")), ts=Timestamp(9, 3),
             wall=wall.replace(tzinfo=datetime.timezone.utc)),
        {"op": "dropDatabase", "db": "d", "coll": None, "wall": wall, "ts": Timestamp(9, 4)},
    ):
        cache, record = _encode_entry(entry)
        assert record == bson.encode(entry, codec_options=CODEC)
        if "key" in entry:
            assert cache["key"] == bson.encode(entry["key"], codec_options=CODEC)


# --- end to end: a stand-in of its own ------------------------------------------

@pytest.mark.standin_only
def test_server_restarts_over_a_torn_journal_tail(standin):
    """A write cut short by a crash (simulated by appending half a frame
    after kill -9) is dropped at restart; every acknowledged write, its
    events and the tokens taken before stay, and new writes follow."""
    server = standin(dbpath=True)
    c = server.client()
    with c.j.c.watch() as s:
        c.j.c.insert_many([{"_id": i} for i in range(20)])
        tokens = [s.next()["_id"] for _ in range(20)]
    c.close()
    server.kill9()
    path = Path(server.dbpath) / journal_mod.FILE_NAME
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x00\x10\x00\x00\x99\x99\x99\x99" + b"half a frame")
    server.restart()
    assert path.stat().st_size == good
    c = server.client()
    assert sorted(d["_id"] for d in c.j.c.find()) == list(range(20))
    with c.j.c.watch(resume_after=tokens[9]) as s:
        assert [s.next()["documentKey"]["_id"] for _ in range(10)] == list(range(10, 20))
        c.j.c.insert_one({"_id": 20})
        ev = s.next()
    assert ev["documentKey"] == {"_id": 20}
    assert ev["_id"]["_data"] > tokens[-1]["_data"]
    c.close()


@pytest.mark.standin_only
def test_tiny_oplog_size_loses_history_with_286(standin):
    server = standin(oplog_size=5)
    c = server.client()
    with c.h.c.watch() as s:
        c.h.c.insert_many([{"_id": i} for i in range(3)])
        first = s.next()["_id"]
    c.h.c.insert_many([{"_id": i} for i in range(3, 12)])
    with pytest.raises(pymongo.errors.OperationFailure) as e:
        with c.h.c.watch(resume_after=first) as s:
            s.try_next()
    assert e.value.code == 286
    assert "NonResumableChangeStreamError" in e.value.details.get("errorLabels", [])
    c.close()


def test_a_journal_cut_inside_its_magic_starts_afresh(tmp_path):
    (tmp_path / journal_mod.FILE_NAME).write_bytes(journal_mod.MAGIC[:3])
    s = FakeServer(dbpath=str(tmp_path))
    assert list(s.oplog.load()) == []
    append(s, [ins(1)])
    s.oplog.close()
    again = FakeServer(dbpath=str(tmp_path))
    assert [e["doc"]["_id"] for e in again.oplog.load()] == [1]


@pytest.mark.parametrize("id_value", _IDS, ids=[type(v).__name__ for v in _IDS])
def test_document_key_of_every_id_type(id_value):
    s = FakeServer()
    st = open_stream(s)
    doc = {"_id": id_value, "v": 1}
    append(s, [dict(ins(1), key={"_id": doc["_id"]}, doc=doc),
               dict(dele(1, doc), key={"_id": doc["_id"]})])
    expected = bson.decode(bson.encode({"_id": id_value}, codec_options=CODEC), CODEC)
    assert [e["documentKey"] for e in events(st, s)] == [expected, expected]


def test_a_failed_journal_write_leaves_no_broken_frame(tmp_path, monkeypatch):
    s = FakeServer(dbpath=str(tmp_path))
    append(s, [ins(1)])
    real_write = os.write
    calls = []

    def short_then_full(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:10]))
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(journal_mod.os, "write", short_then_full)
    with pytest.raises(OSError):
        append(s, [ins(2)])
    monkeypatch.setattr(journal_mod.os, "write", real_write)
    append(s, [ins(3)])
    s.oplog.close()
    again = FakeServer(dbpath=str(tmp_path))
    assert [e["doc"]["_id"] for e in again.oplog.load()] == [1, 3]
