"""Sessions and multi-document transactions: isolation, commit, abort."""
import uuid

import pytest
from bson import Binary, Int64
from pymongo.errors import OperationFailure

from conftest import primary_address, raw_command


def test_uncommitted_insert_is_invisible_outside(client, db):
    db.create_collection("c")
    with client.start_session() as s:
        s.start_transaction()
        db.c.insert_one({"_id": 1}, session=s)
        assert db.c.find_one({"_id": 1}, session=s) == {"_id": 1}
        assert db.c.find_one({"_id": 1}) is None
        assert db.c.count_documents({}) == 0
        s.commit_transaction()
    assert db.c.find_one({"_id": 1}) == {"_id": 1}


def test_uncommitted_update_and_delete_are_invisible(client, db):
    db.c.insert_many([{"_id": 1, "x": 1}, {"_id": 2, "x": 1}])
    with client.start_session() as s:
        s.start_transaction()
        db.c.update_one({"_id": 1}, {"$set": {"x": 2}}, session=s)
        db.c.delete_one({"_id": 2}, session=s)
        assert db.c.find_one({"_id": 1}, session=s)["x"] == 2
        assert db.c.find_one({"_id": 2}, session=s) is None
        assert db.c.find_one({"_id": 1})["x"] == 1
        assert db.c.find_one({"_id": 2}) == {"_id": 2, "x": 1}
        s.commit_transaction()
    assert db.c.find_one({"_id": 1})["x"] == 2
    assert db.c.find_one({"_id": 2}) is None


def test_abort_discards_everything(client, db):
    db.c.insert_one({"_id": 1, "x": 1})
    with client.start_session() as s:
        s.start_transaction()
        db.c.insert_one({"_id": 2}, session=s)
        db.c.update_one({"_id": 1}, {"$set": {"x": 9}}, session=s)
        db.other.insert_one({"_id": 3}, session=s)
        s.abort_transaction()
    assert list(db.c.find().sort("_id")) == [{"_id": 1, "x": 1}]
    assert db.other.count_documents({}) == 0


def test_commit_spans_collections(client, db):
    db.create_collection("a")
    db.create_collection("b")
    with client.start_session() as s:
        with s.start_transaction():
            db.a.insert_one({"_id": 1}, session=s)
            db.b.insert_one({"_id": 1}, session=s)
            assert db.a.count_documents({}) + db.b.count_documents({}) == 0
    assert db.a.count_documents({}) == 1 and db.b.count_documents({}) == 1


def test_aggregate_and_find_inside_see_own_writes(client, db):
    db.c.insert_many([{"_id": i, "g": i % 2} for i in range(4)])
    with client.start_session() as s:
        with s.start_transaction():
            db.c.insert_one({"_id": 10, "g": 1}, session=s)
            got = list(db.c.aggregate([{"$match": {"g": 1}},
                                       {"$count": "n"}], session=s))
            assert got == [{"n": 3}]
            assert list(db.c.aggregate([{"$match": {"g": 1}},
                                        {"$count": "n"}])) == [{"n": 2}]
            s.abort_transaction()


def test_snapshot_reads(client, db):
    """A transaction reads from the snapshot taken at its first read:
    later commits by others are not seen inside it."""
    db.c.insert_one({"_id": 1, "x": 1})
    with client.start_session() as s:
        s.start_transaction()
        assert db.c.find_one({"_id": 1}, session=s)["x"] == 1
        db.c.update_one({"_id": 1}, {"$set": {"x": 2}})
        db.c.insert_one({"_id": 2})
        assert db.c.find_one({"_id": 1}, session=s)["x"] == 1
        assert db.c.find_one({"_id": 2}, session=s) is None
        s.abort_transaction()


def test_write_conflict_between_transactions(client, db):
    """The second transaction to write a document gets WriteConflict (112)
    labelled TransientTransactionError."""
    db.c.insert_one({"_id": 1, "x": 0})
    s1 = client.start_session()
    s2 = client.start_session()
    try:
        s1.start_transaction()
        s2.start_transaction()
        db.c.update_one({"_id": 1}, {"$set": {"x": 1}}, session=s1)
        with pytest.raises(OperationFailure) as e:
            db.c.update_one({"_id": 1}, {"$set": {"x": 2}}, session=s2)
        assert e.value.code == 112
        assert e.value.details["codeName"] == "WriteConflict"
        assert e.value.has_error_label("TransientTransactionError")
        s1.commit_transaction()
    finally:
        for s in (s1, s2):
            if s.in_transaction:
                try:
                    s.abort_transaction()
                except OperationFailure:
                    pass
            s.end_session()
    assert db.c.find_one({"_id": 1})["x"] == 1


def test_commit_of_unknown_transaction(client):
    """commitTransaction for a transaction the server never saw:
    NoSuchTransaction (251) with the TransientTransactionError label."""
    lsid = {"id": Binary(uuid.uuid4().bytes, 4)}
    reply = raw_command(primary_address(client), {
        "commitTransaction": 1, "lsid": lsid, "txnNumber": Int64(7),
        "autocommit": False, "$db": "admin"})
    assert reply["ok"] == 0
    assert reply["code"] == 251
    assert reply["codeName"] == "NoSuchTransaction"
    assert "TransientTransactionError" in reply.get("errorLabels", [])


def test_transactions_by_raw_commands(client, db):
    """The commands drivers send: startTransaction on the first statement,
    then txnNumber + autocommit:false on each, then commitTransaction."""
    db.create_collection("c")
    address = primary_address(client)
    lsid = {"id": Binary(uuid.uuid4().bytes, 4)}
    txn = {"lsid": lsid, "txnNumber": Int64(1), "autocommit": False}
    r = raw_command(address, dict({"insert": "c", "documents": [{"_id": 1}],
                                   "startTransaction": True,
                                   "$db": db.name}, **txn))
    assert r["ok"] == 1 and r["n"] == 1
    r = raw_command(address, dict({"insert": "c", "documents": [{"_id": 2}],
                                   "$db": db.name}, **txn))
    assert r["ok"] == 1
    assert db.c.count_documents({}) == 0
    r = raw_command(address, dict({"commitTransaction": 1, "$db": "admin"},
                                  **txn))
    assert r["ok"] == 1
    assert db.c.count_documents({}) == 2
    # Committing again is allowed (drivers retry commits).
    r = raw_command(address, dict({"commitTransaction": 1, "$db": "admin"},
                                  **txn))
    assert r["ok"] == 1
    # An aborted transaction cannot be committed.
    txn2 = dict(txn, txnNumber=Int64(2))
    raw_command(address, dict({"insert": "c", "documents": [{"_id": 3}],
                               "startTransaction": True, "$db": db.name},
                              **txn2))
    r = raw_command(address, dict({"abortTransaction": 1, "$db": "admin"},
                                  **txn2))
    assert r["ok"] == 1
    r = raw_command(address, dict({"commitTransaction": 1, "$db": "admin"},
                                  **txn2))
    assert r["ok"] == 0 and r["code"] == 251
    assert db.c.count_documents({}) == 2


def test_sessions_and_end_sessions(client, db):
    s = client.start_session()
    db.c.insert_one({"_id": 1}, session=s)
    assert db.c.find_one({}, session=s) == {"_id": 1}
    reply = client.admin.command({"endSessions": [s.session_id]})
    assert reply["ok"] == 1
    s.end_session()
