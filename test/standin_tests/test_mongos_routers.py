"""--mongos with --router-port: several routers in front of one shard.

Each port is a mongos of its own, as separate mongos processes of one
cluster: the same data, oplog and change streams, but per router what a
mongos keeps in its process: cursors, the transaction router state, its
processId and its serverStatus counters.  The checks follow the manual and
the driver specs: a getMore on a router that did not open the cursor is
CursorNotFound (43); a statement of a transaction sent to a router that did
not start it is NoSuchTransaction (251, "cannot continue txnId -1 ..."),
which is why drivers pin a transaction to its mongos (transactions spec,
"Mongos Pinning"); a commitTransaction on another router recovers the
decision from the recoveryToken (50940 without one).

QLEAF_MONGOS_URI naming two routers or more runs these tests against real
ones (the test that takes a router away needs the stand-in and skips then);
with QLEAF_MONGODB_URI alone (a replica set) they are skipped.
"""
import os
import socket
import uuid

import pymongo
import pytest
from bson import Binary, Int64
from pymongo.errors import AutoReconnect, OperationFailure

from conftest import EXTERNAL_URI, RawChangeStream, raw_command

MONGOS_URI = os.environ.get("QLEAF_MONGOS_URI") or None


def _hosts(uri):
    rest = uri.split("://", 1)[1]
    hosts = rest.split("/", 1)[0].split("@")[-1]
    out = []
    for h in hosts.split(","):
        host, _, port = h.rpartition(":")
        out.append((host, int(port)) if host else (h, 27017))
    return out


class Routers:
    def __init__(self, uri, addresses, standin=None):
        self.uri = uri
        self.addresses = addresses
        self.standin = standin

    def direct(self, i):
        return pymongo.MongoClient("mongodb://%s:%d/" % self.addresses[i],
                                   serverSelectionTimeoutMS=10000)

    def status(self, i):
        return raw_command(self.addresses[i], {"serverStatus": 1, "$db": "admin"})


@pytest.fixture
def routers(tmp_path):
    if MONGOS_URI:
        addresses = _hosts(MONGOS_URI)
        if len(addresses) < 2:
            pytest.skip("QLEAF_MONGOS_URI names one router; these tests need two")
        yield Routers(MONGOS_URI, addresses)
        return
    if EXTERNAL_URI:
        pytest.skip("QLEAF_MONGODB_URI names a replica set, not routers; set "
                    "QLEAF_MONGOS_URI (two routers or more) to run these tests")
    from conftest import Standin, free_port
    second = free_port()
    server = Standin(dbpath=tmp_path / "db",
                     extra=["--mongos", "--router-port", str(second)])
    (tmp_path / "db").mkdir()
    server.start()
    addresses = [("127.0.0.1", server.port), ("127.0.0.1", second)]
    try:
        yield Routers("mongodb://127.0.0.1:%d,127.0.0.1:%d/" % (server.port, second),
                      addresses, server)
    finally:
        assert server.terminate() == 0


@pytest.fixture
def dbname(routers):
    name = "routers_" + uuid.uuid4().hex[:12]
    yield name
    c = routers.direct(0)
    c.drop_database(name)
    c.close()


def _lsid():
    return {"id": Binary(uuid.uuid4().bytes, 4)}


def test_each_router_is_a_mongos_of_its_own(routers):
    replies = [raw_command(a, {"hello": 1, "$db": "admin"}) for a in routers.addresses]
    assert all(r["msg"] == "isdbgrid" and "me" not in r for r in replies)
    ids = [r["topologyVersion"]["processId"] for r in replies]
    assert ids[0] != ids[1], "two mongos processes have two processIds"
    status = [routers.status(i) for i in range(2)]
    assert all(s["process"] == "mongos" for s in status)
    assert status[0]["host"] != status[1]["host"]


def test_the_routers_share_the_data_and_the_change_streams(routers, dbname):
    a, b = routers.direct(0), routers.direct(1)
    try:
        a[dbname].c.insert_one({"_id": 1})
        assert b[dbname].c.find_one({"_id": 1}) == {"_id": 1}
        with RawChangeStream(b, dbname, "c") as cs:
            a[dbname].c.insert_one({"_id": 2})
            a[dbname].c.update_one({"_id": 2}, {"$set": {"v": 1}})
            ev = cs.collect(2)
            assert [e["operationType"] for e in ev] == ["insert", "update"]
        # a change stream opened on one router resumes on the other
        a[dbname].c.delete_one({"_id": 1})
        with RawChangeStream(a, dbname, "c", spec={"resumeAfter": ev[0]["_id"]}) as again:
            got = again.collect(2)
            assert [(e["operationType"], e["documentKey"]["_id"]) for e in got] == \
                [("update", 2), ("delete", 1)]
    finally:
        a.close()
        b.close()


def test_a_cursor_lives_on_the_router_that_opened_it(routers, dbname):
    a = routers.direct(0)
    try:
        a[dbname].c.insert_many([{"_id": i} for i in range(10)])
        first = raw_command(routers.addresses[0], {"find": "c", "batchSize": 3,
                                                   "$db": dbname})
        cid = first["cursor"]["id"]
        assert cid != 0 and len(first["cursor"]["firstBatch"]) == 3
        other = raw_command(routers.addresses[1], {"getMore": cid, "collection": "c",
                                                   "$db": dbname})
        assert other["ok"] == 0 and other["code"] == 43, other
        assert other["codeName"] == "CursorNotFound"
        if routers.standin is not None:
            # mongos' wording (cluster_cursor_manager.cpp); mongod says
            # "cursor id N not found"
            assert other["errmsg"] == "Cursor not found (namespace: '%s.c', id: %d)." \
                % (dbname, cid)
        killed = raw_command(routers.addresses[1], {"killCursors": "c", "cursors": [cid],
                                                    "$db": dbname})
        assert killed["cursorsNotFound"] == [cid]
        own = raw_command(routers.addresses[0], {"getMore": cid, "collection": "c",
                                                 "$db": dbname})
        assert own["ok"] == 1 and len(own["cursor"]["nextBatch"]) == 7
    finally:
        a.close()


def _txn(lsid, n, **more):
    doc = {"lsid": lsid, "txnNumber": Int64(n), "autocommit": False}
    doc.update(more)
    return doc


def test_a_transaction_belongs_to_the_router_that_started_it(routers, dbname):
    a_addr, b_addr = routers.addresses
    a = routers.direct(0)
    try:
        a[dbname].create_collection("t")
        lsid = _lsid()
        r = raw_command(a_addr, dict({"insert": "t", "documents": [{"_id": 1}],
                                      "$db": dbname},
                                     **_txn(lsid, 1, startTransaction=True)))
        assert r["ok"] == 1 and r["recoveryToken"].get("recoveryShardId")
        token = r["recoveryToken"]
        # the other router refuses the next statement and sends nothing on
        cont = raw_command(b_addr, dict({"insert": "t", "documents": [{"_id": 2}],
                                         "$db": dbname}, **_txn(lsid, 1)))
        assert cont["ok"] == 0 and cont["code"] == 251, cont
        assert cont["errmsg"].startswith("cannot continue txnId -1 for session")
        assert "TransientTransactionError" in cont.get("errorLabels", [])
        ab = raw_command(b_addr, dict({"abortTransaction": 1, "$db": "admin"},
                                      **_txn(lsid, 1)))
        assert ab["ok"] == 0 and ab["code"] == 251, ab
        # a commit there cannot recover the decision without the token
        no_token = raw_command(b_addr, dict({"commitTransaction": 1, "$db": "admin"},
                                            **_txn(lsid, 1)))
        assert no_token["ok"] == 0 and no_token["code"] == 50940, no_token
        # the transaction goes on, on its own router, untouched
        r = raw_command(a_addr, dict({"insert": "t", "documents": [{"_id": 3}],
                                      "$db": dbname}, **_txn(lsid, 1)))
        assert r["ok"] == 1, r
        r = raw_command(a_addr, dict({"commitTransaction": 1, "$db": "admin"},
                                     **_txn(lsid, 1)))
        assert r["ok"] == 1, r
        assert sorted(d["_id"] for d in a[dbname].t.find()) == [1, 3]
        # a retried commit on the other router, with the token, learns the
        # decision from the shard
        again = raw_command(b_addr, dict({"commitTransaction": 1, "$db": "admin",
                                          "recoveryToken": token}, **_txn(lsid, 1)))
        assert again["ok"] == 1, again
    finally:
        a.close()


@pytest.mark.standin_only
def test_recovering_an_undecided_transaction_aborts_it(routers, dbname):
    if routers.standin is None:
        pytest.skip("what a real cluster's recovery shard answers for a transaction "
                    "still running is not asserted here")
    a_addr, b_addr = routers.addresses
    a = routers.direct(0)
    try:
        a[dbname].create_collection("t")
        lsid = _lsid()
        r = raw_command(a_addr, dict({"insert": "t", "documents": [{"_id": 1}],
                                      "$db": dbname},
                                     **_txn(lsid, 1, startTransaction=True)))
        rec = raw_command(b_addr, dict({"commitTransaction": 1, "$db": "admin",
                                        "recoveryToken": r["recoveryToken"]},
                                       **_txn(lsid, 1)))
        assert rec["ok"] == 0 and rec["code"] == 251, rec
        late = raw_command(a_addr, dict({"commitTransaction": 1, "$db": "admin"},
                                        **_txn(lsid, 1)))
        assert late["ok"] == 0 and late["code"] == 251, late
        assert a[dbname].t.count_documents({}) == 0
    finally:
        a.close()


def _delta(before, after, path):
    def get(doc):
        for k in path:
            doc = doc.get(k, {}) if isinstance(doc, dict) else {}
        return int(doc) if not isinstance(doc, dict) else 0
    return get(after) - get(before)


def test_a_driver_spreads_operations_and_pins_transactions(routers, dbname):
    """Through a uri naming both routers the driver picks a router per
    operation (both are in the latency window) and pins each transaction
    to the router of its first statement: both routers serve, and each
    started exactly the transactions it committed."""
    c = pymongo.MongoClient(routers.uri, serverSelectionTimeoutMS=10000,
                            localThresholdMS=1000)
    try:
        coll = c[dbname].t
        coll.insert_one({"_id": 0})
        before = [routers.status(i) for i in range(2)]
        for _ in range(30):
            assert coll.find_one({"_id": 0}) == {"_id": 0}
        for i in range(1, 21):
            with c.start_session() as s:
                with s.start_transaction():
                    coll.insert_one({"_id": i}, session=s)
                    coll.update_one({"_id": i}, {"$set": {"v": i}}, session=s)
        after = [routers.status(i) for i in range(2)]
        finds = [_delta(before[i], after[i], ("metrics", "commands", "find", "total"))
                 for i in range(2)]
        assert sum(finds) >= 30 and min(finds) > 0, finds
        started = [_delta(before[i], after[i], ("transactions", "totalStarted"))
                   for i in range(2)]
        committed = [_delta(before[i], after[i], ("transactions", "totalCommitted"))
                     for i in range(2)]
        assert sum(started) == 20 and min(started) > 0, started
        assert committed == started
        assert coll.count_documents({"v": {"$exists": True}}) == 20
    finally:
        c.close()


def _refused(address):
    try:
        socket.create_connection(address, timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.standin_only
def test_a_router_taken_away_and_brought_back(routers, dbname):
    if routers.standin is None:
        pytest.skip("taking a router away needs the stand-in's standinRouter")
    a_addr, b_addr = routers.addresses
    c = pymongo.MongoClient(routers.uri, serverSelectionTimeoutMS=10000)
    a = routers.direct(0)
    try:
        coll = c[dbname].t
        coll.insert_many([{"_id": i} for i in range(20)])
        # refused: the router it comes through, an unknown port
        r = raw_command(b_addr, {"standinRouter": b_addr[1], "up": False, "$db": "admin"})
        assert r["ok"] == 0 and "another router" in r["errmsg"], r
        r = raw_command(a_addr, {"standinRouter": 1, "up": False, "$db": "admin"})
        assert r["ok"] == 0 and r["codeName"] == "BadValue", r
        # a cursor open on the router that goes away
        first = raw_command(b_addr, {"find": "t", "batchSize": 2, "$db": dbname})
        cid = first["cursor"]["id"]
        pid = raw_command(b_addr, {"hello": 1, "$db": "admin"})["topologyVersion"]
        with socket.create_connection(b_addr, timeout=5) as held:
            r = a.admin.command({"standinRouter": b_addr[1], "up": False})
            assert r["wasUp"] is True
            assert _refused(b_addr)
            # its open connections are closed
            held.settimeout(5)
            assert held.recv(1) == b""
        # the driver goes on through the other router
        for _ in range(10):
            try:
                n = coll.count_documents({})
            except AutoReconnect:
                n = coll.count_documents({})   # the first use of the lost router
            assert n == 20
        assert a.admin.command({"standinRouter": b_addr[1], "up": False})["wasUp"] is False
        r = a.admin.command({"standinRouter": b_addr[1], "up": True})
        assert r["wasUp"] is False
        back = raw_command(b_addr, {"hello": 1, "$db": "admin"})
        assert back["msg"] == "isdbgrid"
        assert back["topologyVersion"]["processId"] != pid["processId"], \
            "a router brought back is a new process"
        gone = raw_command(b_addr, {"getMore": cid, "collection": "t", "$db": dbname})
        assert gone["ok"] == 0 and gone["code"] == 43
        assert raw_command(b_addr, {"count": "t", "$db": dbname})["n"] == 20
        # the counters are the new process'
        assert routers.status(1)["metrics"]["commands"]["getMore"] == \
            {"failed": 1, "total": 1}
    finally:
        c.close()
        a.close()


@pytest.mark.standin_only
def test_a_router_taken_away_aborts_its_transactions(routers, dbname):
    if routers.standin is None:
        pytest.skip("taking a router away needs the stand-in's standinRouter")
    a_addr, b_addr = routers.addresses
    a = routers.direct(0)
    try:
        a[dbname].create_collection("t")
        lsid = _lsid()
        r = raw_command(b_addr, dict({"insert": "t", "documents": [{"_id": 1}],
                                      "$db": dbname},
                                     **_txn(lsid, 1, startTransaction=True)))
        assert r["ok"] == 1
        a.admin.command({"standinRouter": b_addr[1], "up": False})
        a.admin.command({"standinRouter": b_addr[1], "up": True})
        # the new process does not know it, and the shard aborted it
        r = raw_command(b_addr, dict({"commitTransaction": 1, "$db": "admin",
                                      "recoveryToken": r["recoveryToken"]},
                                     **_txn(lsid, 1)))
        assert r["ok"] == 0 and r["code"] == 251, r
        assert a[dbname].t.count_documents({}) == 0
    finally:
        a.close()


@pytest.mark.standin_only
def test_router_port_needs_mongos(tmp_path):
    from conftest import Standin, StandinError, free_port
    server = Standin(dbpath=tmp_path, extra=["--router-port", str(free_port())])
    with pytest.raises(StandinError) as e:
        server.start()
    assert "--router-port needs --mongos" in str(e.value)
    assert server.proc.returncode == 2

