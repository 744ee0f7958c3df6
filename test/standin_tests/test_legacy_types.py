"""The deprecated BSON types undefined (0x06) and symbol (0x0E).

mongod stores them as sent and hands them back with the same type bytes;
its queries see undefined as null (before 8.0; the stand-in answers as
6.0) and a symbol as the string it holds, except for $type.  pymongo can
neither encode these types nor decode them as themselves, so documents
are written here as raw BSON and read back as RawBSONDocument.
"""
import os
import struct
import sys

import pytest
import pymongo
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "fixtures"))
from bsontypes_legacy import Sym, UNDEF, raw_bson  # noqa: E402

RAW = CodecOptions(document_class=RawBSONDocument)


def insert_raw(coll, *docs):
    coll.insert_many([RawBSONDocument(raw_bson(d)) for d in docs])


def types_of(raw, prefix=""):
    """{dotted path: BSON type byte} of every element of a raw document."""
    out = {}
    p, end = 4, struct.unpack_from("<i", raw, 0)[0] - 1
    while p < end:
        t = raw[p]
        k = raw.index(b"\x00", p + 1)
        name = prefix + raw[p + 1:k].decode()
        v = k + 1
        out[name] = t
        if t in (0x03, 0x04):
            n = struct.unpack_from("<i", raw, v)[0]
            out.update(types_of(raw[v:v + n], name + "."))
            p = v + n
        elif t in (0x02, 0x0E, 0x0D):
            p = v + 4 + struct.unpack_from("<i", raw, v)[0]
        elif t in (0x06, 0x0A):
            p = v
        elif t == 0x10:
            p = v + 4
        elif t in (0x01, 0x09, 0x12):
            p = v + 8
        elif t == 0x08:
            p = v + 1
        else:
            raise AssertionError("type 0x%02X not expected here" % t)
    return out


LEGACY = {"_id": 1, "u": UNDEF, "s": Sym("abc"),
          "n": {"u": UNDEF, "s": Sym("nested"), "i": 7},
          "a": [Sym("x"), UNDEF, "y", None, {"s": Sym("deep")}]}
LEGACY_TYPES = {"_id": 0x10, "u": 0x06, "s": 0x0E, "n": 0x03, "n.u": 0x06,
                "n.s": 0x0E, "n.i": 0x10, "a": 0x04, "a.0": 0x0E, "a.1": 0x06,
                "a.2": 0x02, "a.3": 0x0A, "a.4": 0x03, "a.4.s": 0x0E}


@pytest.fixture
def legacy(db):
    insert_raw(db.c, LEGACY)
    return db.c


def test_find_returns_the_bytes_inserted(legacy):
    doc = legacy.with_options(codec_options=RAW).find_one({"_id": 1})
    assert doc.raw == raw_bson(LEGACY)
    assert types_of(doc.raw) == LEGACY_TYPES


def test_aggregate_project_keeps_the_types(legacy):
    """A $project that builds new documents (field paths, renamed) writes
    the values with their own types."""
    raw = legacy.with_options(codec_options=RAW)
    out = list(raw.aggregate([{"$project": {"_id": 1, "c0": "$u", "c1": "$s",
                                            "c2": "$n", "c3": "$a",
                                            "c4": "$n.s", "r": "$$ROOT"}}]))
    assert len(out) == 1
    t = types_of(out[0].raw)
    assert (t["c0"], t["c1"], t["c4"]) == (0x06, 0x0E, 0x0E)
    assert (t["c2.u"], t["c2.s"], t["c3.0"], t["c3.1"], t["c3.4.s"]) == \
        (0x06, 0x0E, 0x0E, 0x06, 0x0E)
    assert {k[2:]: v for k, v in t.items() if k.startswith("r.")} == LEGACY_TYPES
    # $addFields through the general pipeline, then $match, $sort
    out = list(raw.aggregate([{"$addFields": {"k": 1}}, {"$match": {"k": 1}},
                              {"$sort": {"_id": 1}}]))
    t = types_of(out[0].raw)
    assert t.pop("k") == 0x10
    assert t == LEGACY_TYPES


def test_update_of_another_field_keeps_the_types(legacy):
    legacy.update_one({"_id": 1}, {"$set": {"z": 1}, "$inc": {"n.i": 1}})
    doc = legacy.with_options(codec_options=RAW).find_one({"_id": 1})
    t = types_of(doc.raw)
    assert t.pop("z") == 0x10
    assert t == LEGACY_TYPES
    assert doc["n"]["i"] == 8


def test_change_stream_full_document(db):
    db.create_collection("c")
    with db.c.with_options(codec_options=RAW).watch() as stream:
        insert_raw(db.c, LEGACY)
        db.c.update_one({"_id": 1}, {"$set": {"z": 1}})
        ev = stream.next()
        assert ev["operationType"] == "insert"
        assert types_of(ev["fullDocument"].raw) == LEGACY_TYPES
    with db.c.with_options(codec_options=RAW).watch(
            full_document="updateLookup") as stream:
        db.c.update_one({"_id": 1}, {"$set": {"z": 2}})
        ev = stream.next()
        t = types_of(ev["fullDocument"].raw)
        assert t.pop("z") == 0x10
        assert t == LEGACY_TYPES


def null_matches_undefined(client):
    """MongoDB 8.0 no longer matches undefined with {f: null}."""
    return client.server_info()["versionArray"][0] < 8


def test_type_exists_and_null(db):
    insert_raw(db.c, {"_id": 1, "v": UNDEF}, {"_id": 2, "v": Sym("abc")},
               {"_id": 3, "v": "abc"}, {"_id": 4, "v": None}, {"_id": 5},
               {"_id": 6, "v": [UNDEF, 1]}, {"_id": 7, "v": [Sym("q")]})

    def ids(f):
        return sorted(d["_id"] for d in db.c.find(f, {"_id": 1}))
    assert ids({"v": {"$type": "undefined"}}) == [1, 6]
    assert ids({"v": {"$type": 6}}) == [1, 6]
    assert ids({"v": {"$type": "symbol"}}) == [2, 7]
    assert ids({"v": {"$type": 14}}) == [2, 7]
    assert ids({"v": {"$type": "string"}}) == [3]
    assert ids({"v": {"$type": "null"}}) == [4]
    # before MongoDB 8.0 a null equality matches undefined too
    if null_matches_undefined(db.client):
        null_ids, not_null_ids = [1, 4, 5, 6], [2, 3, 7]
    else:
        null_ids, not_null_ids = [4, 5], [1, 2, 3, 6, 7]
    assert ids({"v": None}) == null_ids
    assert ids({"v": {"$in": [None]}}) == null_ids
    assert ids({"v": {"$ne": None}}) == not_null_ids
    assert ids({"v": {"$exists": True}}) == [1, 2, 3, 4, 6, 7]
    assert ids({"v": {"$exists": False}}) == [5]
    # a symbol equals the string it holds: equality, $in, ranges, $regex
    assert ids({"v": "abc"}) == [2, 3]
    assert ids({"v": {"$in": ["abc", "q"]}}) == [2, 3, 7]
    assert ids({"v": {"$nin": ["abc", None]}}) == [i for i in not_null_ids if i not in (2, 3)]
    assert ids({"v": {"$gte": "abc", "$lt": "abd"}}) == [2, 3]
    assert ids({"v": {"$regex": "^ab"}}) == [2, 3]
    assert ids({"v": "q"}) == [7]
    # the same through mongomock's general matcher ($or is not compiled)
    assert ids({"$or": [{"v": None}, {"v": "nothing"}]}) == null_ids
    assert ids({"$or": [{"v": "abc"}, {"v": "nothing"}]}) == [2, 3]
    assert ids({"$or": [{"v": {"$type": "symbol"}}, {"_id": 0}]}) == [2, 7]


def test_aggregation_type_and_ifnull(db):
    insert_raw(db.c, {"_id": 1, "v": UNDEF}, {"_id": 2, "v": Sym("abc")},
               {"_id": 3, "v": "abc"}, {"_id": 4})
    out = list(db.c.aggregate([
        {"$project": {"t": {"$type": "$v"},
                      "n": {"$ifNull": ["$v", "was null"]},
                      "isnull": {"$in": [{"$type": "$v"},
                                         ["missing", "null", "undefined"]]}}},
        {"$sort": {"_id": 1}}]))
    assert [d["t"] for d in out] == ["undefined", "symbol", "string", "missing"]
    assert [d["n"] for d in out] == ["was null", "abc", "abc", "was null"]
    assert [d["isnull"] for d in out] == [True, False, False, True]


def test_sort_order(db):
    """BSON order: undefined sorts below null and missing (which sort as
    null); symbols and strings are one bracket, ordered by their bytes."""
    insert_raw(db.c, {"_id": 1, "v": "b"}, {"_id": 2, "v": Sym("a")},
               {"_id": 3, "v": UNDEF}, {"_id": 4, "v": None}, {"_id": 5},
               {"_id": 6, "v": Sym("c")}, {"_id": 7, "v": 5})
    up = [d["_id"] for d in db.c.find().sort([("v", 1), ("_id", 1)])]
    assert up == [3, 4, 5, 7, 2, 1, 6]
    down = [d["_id"] for d in db.c.find().sort([("v", -1), ("_id", 1)])]
    assert down == [6, 1, 2, 7, 4, 5, 3]
    agg = [d["_id"] for d in db.c.aggregate([{"$sort": {"v": 1, "_id": 1}}])]
    assert agg == up


def test_filter_with_undefined_is_refused(db):
    """mongod: "cannot compare to undefined" (BadValue)."""
    insert_raw(db.c, {"_id": 1, "v": UNDEF})
    with pytest.raises(pymongo.errors.OperationFailure) as e:
        list(db.c.find(RawBSONDocument(raw_bson({"v": UNDEF}))))
    assert e.value.code == 2


@pytest.mark.standin_only
def test_kept_across_a_restart(standin):
    """Replayed from the journal, the documents are encoded again: the
    types come back all the same."""
    server = standin(dbpath=True)
    c = server.client()
    insert_raw(c.d.c, LEGACY)
    c.d.c.update_one({"_id": 1}, {"$set": {"z": 1}})
    c.close()
    server.kill9()
    server.restart()
    c = server.client()
    doc = c.d.c.with_options(codec_options=RAW).find_one({"_id": 1})
    t = types_of(doc.raw)
    assert t.pop("z") == 0x10
    assert t == LEGACY_TYPES
    assert [d["_id"] for d in c.d.c.find({"u": {"$type": "undefined"},
                                          "s": "abc"})] == [1]
    c.close()
