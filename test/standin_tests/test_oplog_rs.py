"""local.oplog.rs through find: what the exactly-once stream test compares
its event table with.  The shape tests run against a real replica set too;
kill -9 and restart need a stand-in of the test's own."""
import pytest
from bson import Timestamp

OPLOG = ("local", "oplog.rs")


def oplog(client, flt=None, **kw):
    return list(client[OPLOG[0]][OPLOG[1]].find(flt or {}, **kw))


def last_ts(client):
    return oplog(client, sort=[("$natural", -1)], limit=1)[0]["ts"]


def ns_entries(client, ns, since):
    """This namespace's entries after since; transactions' applyOps are
    unpacked (with the transaction's ts), as a change stream sees them."""
    out = []
    for e in oplog(client, {"ts": {"$gt": since}}):
        if e["op"] == "c" and "applyOps" in e["o"]:
            for inner in e["o"]["applyOps"]:
                if inner["ns"] == ns:
                    out.append(dict(inner, ts=e["ts"], txnNumber=e.get("txnNumber")))
        elif e["ns"] == ns:
            out.append(e)
    return out


def test_writes_appear_in_mongod_shapes(db, client):
    db.create_collection("c")
    since = last_ts(client)
    db.c.insert_one({"_id": 1, "a": 1})
    db.c.update_one({"_id": 1}, {"$set": {"a": 2}})
    db.c.replace_one({"_id": 1}, {"z": 1})
    db.c.delete_one({"_id": 1})
    got = ns_entries(client, "%s.c" % db.name, since)
    assert [e["op"] for e in got] == ["i", "u", "u", "d"]
    ins, upd, rep, dele = got
    assert ins["o"] == {"_id": 1, "a": 1} and ins["o2"] == {"_id": 1}
    assert upd["o2"] == {"_id": 1}
    assert upd["o"]["$v"] == 2 and upd["o"]["diff"]["u"] == {"a": 2}
    assert rep["o"] == {"_id": 1, "z": 1}
    assert dele["o"] == {"_id": 1}
    for e in got:
        assert isinstance(e["ts"], Timestamp)
        assert e["ui"] == got[0]["ui"]
    times = [e["ts"] for e in got]
    assert times == sorted(times) and len(set(times)) == 4


def test_a_transaction_is_one_applyops_entry(db, client):
    db.create_collection("c")
    db.c.insert_one({"_id": 1})
    since = last_ts(client)
    with client.start_session() as s:
        with s.start_transaction():
            db.c.insert_one({"_id": 2}, session=s)
            db.c.delete_one({"_id": 1}, session=s)
    txns = [e for e in oplog(client, {"ts": {"$gt": since}})
            if e["op"] == "c" and "applyOps" in e["o"]]
    assert len(txns) == 1
    t = txns[0]
    assert t["ns"] == "admin.$cmd" and t["txnNumber"] >= 1 and "lsid" in t
    assert [(i["op"], i["ns"], i["o"]) for i in t["o"]["applyOps"]] == [
        ("i", "%s.c" % db.name, {"_id": 2}), ("d", "%s.c" % db.name, {"_id": 1})]


def test_ts_filter_and_natural_order(db, client):
    db.create_collection("c")
    db.c.insert_many([{"_id": i} for i in range(5)])
    mine = [e for e in oplog(client, {"ns": "%s.c" % db.name})]
    assert [e["o"]["_id"] for e in mine][-5:] == [0, 1, 2, 3, 4]
    third = mine[-3]["ts"]
    after = oplog(client, {"ns": "%s.c" % db.name, "ts": {"$gt": third}})
    assert [e["o"]["_id"] for e in after] == [3, 4]
    at = oplog(client, {"ns": "%s.c" % db.name, "ts": {"$gte": third}})
    assert [e["o"]["_id"] for e in at] == [2, 3, 4]
    back = oplog(client, {"ns": "%s.c" % db.name}, sort=[("$natural", -1)], limit=2)
    assert [e["o"]["_id"] for e in back] == [4, 3]


@pytest.mark.standin_only
def test_oplog_survives_kill9_and_a_stream_resumes_across_it(standin):
    server = standin(dbpath=True)
    c = server.client(retryWrites=False)
    c.r.c.insert_one({"_id": 0})
    with c.r.c.watch() as s:
        c.r.c.insert_one({"_id": 1})
        token = s.next()["_id"]
    with c.start_session() as sess:
        with sess.start_transaction():
            c.r.c.insert_one({"_id": 2}, session=sess)
            c.r.c.update_one({"_id": 0}, {"$set": {"x": 1}}, session=sess)
    c.r.c.delete_one({"_id": 1})
    before = oplog(c)
    c.close()
    server.kill9()
    server.restart()
    c = server.client()
    assert oplog(c) == before
    # the stream resumes after the token from before the kill: the
    # transaction's two events (txnOpIndex order, one clusterTime), then the
    # delete, each once
    with c.r.c.watch(resume_after=token, max_await_time_ms=200) as s:
        got = [s.next() for _ in range(3)]
        assert s.try_next() is None
    assert [(e["operationType"], e["documentKey"]["_id"]) for e in got] == [
        ("insert", 2), ("update", 0), ("delete", 1)]
    assert got[0]["clusterTime"] == got[1]["clusterTime"] < got[2]["clusterTime"]
    txn = [e for e in before if e["op"] == "c" and "applyOps" in e["o"]][0]
    assert got[0]["clusterTime"] == txn["ts"]
    assert got[2]["clusterTime"] == before[-1]["ts"]
    c.close()


@pytest.mark.standin_only
def test_trimmed_oplog_starts_at_the_oldest_kept_entry(standin):
    server = standin(oplog_size=3)
    c = server.client()
    c.r.c.insert_many([{"_id": i} for i in range(200)])
    got = oplog(c)
    assert got[0]["op"] != "n"
    assert [e["o"]["_id"] for e in got][-3:] == [197, 198, 199]
    assert len(got) < 200


def test_other_local_collections_are_empty(client):
    assert list(client.local["qleaf_no_such_collection"].find()) == []


@pytest.mark.standin_only
def test_update_of_arrays_and_removals(db, client):
    """The stand-in's coarse diff: whole top-level fields (mongod would
    write sub-diffs with the same effect)."""
    db.create_collection("c")
    db.c.insert_one({"_id": 1, "arr": [1, 2, 3], "gone": 1, "n": {"a": 1}})
    since = last_ts(client)
    db.c.update_one({"_id": 1}, [{"$set": {"arr": [1], "n.b": 2}},
                                 {"$unset": "gone"}])
    (upd,) = ns_entries(client, "%s.c" % db.name, since)
    diff = upd["o"]["diff"]
    assert diff["u"] == {"arr": [1], "n": {"a": 1, "b": 2}}
    assert diff["d"] == {"gone": False}
