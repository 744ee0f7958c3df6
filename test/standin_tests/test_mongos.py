"""--mongos: the stand-in as a mongos router in front of one shard.

Each test checks what a client of a real mongos sees: the handshake that
makes drivers type the server Mongos (server discovery and monitoring
spec), the commands mongos refuses, the collStats / $collStats shapes of
an unsharded collection, change streams and transactions through the
router.  With QLEAF_MONGOS_URI set (a real mongos), the tests run against
it instead; with only QLEAF_MONGODB_URI set they are skipped (a replica set
is no router).
"""
import os
import uuid

import pymongo
import pytest
from bson import SON, Timestamp
from pymongo.errors import OperationFailure
from pymongo.server_type import SERVER_TYPE
from pymongo.topology_description import TOPOLOGY_TYPE

from conftest import EXTERNAL_URI, CommandRecorder, RawChangeStream, raw_command

MONGOS_URI = os.environ.get("QLEAF_MONGOS_URI") or None


def one_router(uri):
    """The uri with only its first host: these tests talk to one router (a
    cursor or a transaction lives on the router that started it, see
    test_mongos_routers.py)."""
    scheme, rest = uri.split("://", 1)
    hosts, slash, tail = rest.partition("/")
    cred, at, hostlist = hosts.rpartition("@")
    return "%s://%s%s%s%s%s" % (scheme, cred, at, hostlist.split(",")[0], slash, tail)


def test_one_router():
    assert one_router("mongodb://u:p@h1:1,h2:2/?x=1") == "mongodb://u:p@h1:1/?x=1"
    assert one_router("mongodb://h1") == "mongodb://h1"


@pytest.fixture
def router(request, tmp_path):
    """(uri, address) of a mongos: QLEAF_MONGOS_URI or a --mongos stand-in."""
    if MONGOS_URI:
        uri = one_router(MONGOS_URI)
        c = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10000)
        c.admin.command("ping")
        addr = c.address
        c.close()
        yield uri, addr
        return
    if EXTERNAL_URI:
        pytest.skip("QLEAF_MONGODB_URI names a replica set, not a mongos; set "
                    "QLEAF_MONGOS_URI to run these tests against a real router")
    from conftest import Standin
    server = Standin(dbpath=tmp_path / "db", extra=["--mongos"])
    (tmp_path / "db").mkdir()
    server.start()
    try:
        yield "mongodb://127.0.0.1:%d/" % server.port, ("127.0.0.1", server.port)
    finally:
        assert server.terminate() == 0


@pytest.fixture
def mclient(router):
    c = pymongo.MongoClient(router[0], serverSelectionTimeoutMS=10000)
    yield c
    c.close()


@pytest.fixture
def mdb(mclient):
    name = "mongos_" + uuid.uuid4().hex[:12]
    yield mclient[name]
    mclient.drop_database(name)


def test_hello_is_a_router(router):
    reply = raw_command(router[1], {"hello": 1, "$db": "admin"})
    assert reply["ok"] == 1
    assert reply["isWritablePrimary"] is True
    assert reply["msg"] == "isdbgrid"
    for absent in ("setName", "hosts", "primary", "me", "secondary", "electionId",
                   "setVersion", "lastWrite", "ismaster"):
        assert absent not in reply, absent
    assert set(reply["topologyVersion"]) == {"processId", "counter"}
    assert isinstance(reply["operationTime"], Timestamp)
    assert reply["$clusterTime"]["clusterTime"] >= reply["operationTime"]
    assert reply["maxWireVersion"] >= 17
    legacy = raw_command(router[1], {"isMaster": 1, "$db": "admin"})
    assert legacy["ismaster"] is True and legacy["msg"] == "isdbgrid"
    assert "isWritablePrimary" not in legacy


def test_drivers_see_a_mongos(router):
    # one seed, no replicaSet: a direct (Single) connection to a Mongos
    c = pymongo.MongoClient(router[0], serverSelectionTimeoutMS=10000)
    try:
        c.admin.command("ping")
        sd = c._topology.description.server_descriptions()[c.address]
        assert sd.server_type == SERVER_TYPE.Mongos
    finally:
        c.close()
    # directConnection=false: discovery makes the topology Sharded
    sep = "&" if "?" in router[0] else "?"
    c = pymongo.MongoClient(router[0] + sep + "directConnection=false",
                            serverSelectionTimeoutMS=10000)
    try:
        c.admin.command("ping")
        assert c._topology.description.topology_type == TOPOLOGY_TYPE.Sharded
    finally:
        c.close()


def test_replica_set_commands_and_local_fail_as_on_mongos(mclient):
    with pytest.raises(OperationFailure) as e:
        mclient.admin.command("replSetGetStatus")
    assert e.value.code == 59                       # CommandNotFound
    with pytest.raises(OperationFailure) as e:
        list(mclient.local["oplog.rs"].find().limit(1))
    assert e.value.code == 20                       # IllegalOperation
    assert "through mongos" in str(e.value)
    with pytest.raises(OperationFailure) as e:
        mclient.local.command("collStats", "oplog.rs")
    assert e.value.code == 20


def test_coll_stats_of_an_unsharded_collection(mdb):
    mdb.c.insert_many([{"_id": i, "pad": "x" * (10 + i)} for i in range(10)])
    mdb.c.create_index("pad")
    st = mdb.command("collStats", "c")
    assert st["sharded"] is False
    shard = st["primary"]
    assert isinstance(shard, str) and shard
    assert list(st["shards"]) == [shard]
    assert st["count"] == 10 and st["shards"][shard]["count"] == 10
    assert st["nindexes"] == 2
    assert set(st["indexSizes"]) == {"_id_", "pad_1"}
    # the router computes the average itself, as a double
    assert isinstance(st["avgObjSize"], float)
    assert abs(st["avgObjSize"] * 10 - st["size"]) < 10
    assert st["ns"] == mdb.name + ".c"
    assert "nchunks" in st
    # the stage: one document per shard, naming it
    docs = list(mdb.c.aggregate([{"$collStats": {"count": {},
                                                 "storageStats": {}}}]))
    assert len(docs) == 1
    assert docs[0]["shard"] == shard
    assert docs[0]["count"] == 10
    assert docs[0]["storageStats"]["count"] == 10


def test_change_stream_through_the_router(mclient, mdb):
    mdb.create_collection("c")
    with RawChangeStream(mclient, mdb.name, "c") as cs:
        assert cs.pbrt is not None and "_data" in cs.pbrt
        mdb.c.insert_one({"_id": 1, "v": 1})
        mdb.c.update_one({"_id": 1}, {"$set": {"v": 2}})
        mdb.c.delete_one({"_id": 1})
        ev = cs.collect(3)
        assert [e["operationType"] for e in ev] == ["insert", "update", "delete"]
        assert ev[0]["ns"] == {"db": mdb.name, "coll": "c"}
        assert ev[0]["documentKey"] == {"_id": 1}
        assert ev[0]["fullDocument"] == {"_id": 1, "v": 1}
        assert ev[1]["updateDescription"]["updatedFields"] == {"v": 2}
        assert all(isinstance(e["clusterTime"], Timestamp) for e in ev)
        assert all("_data" in e["_id"] for e in ev)
        assert cs.pbrt is not None
        # resuming after the first event gives the other two
        with RawChangeStream(mclient, mdb.name, "c",
                             spec={"resumeAfter": ev[0]["_id"]}) as again:
            assert [e["operationType"] for e in again.collect(2)] == \
                ["update", "delete"]


def test_transaction_through_the_router(router, mdb):
    listener = CommandRecorder()
    sep = "&" if "?" in router[0] else "?"
    c = pymongo.MongoClient(router[0] + sep + "directConnection=false",
                            serverSelectionTimeoutMS=10000,
                            event_listeners=[listener])
    try:
        coll = c[mdb.name].t
        coll.insert_one({"_id": 0})
        listener.clear()
        with c.start_session() as s:
            s.start_transaction()
            assert coll.find_one({"_id": 0}, session=s) == {"_id": 0}
            coll.insert_one({"_id": 1}, session=s)
            coll.insert_one({"_id": 2}, session=s)
            assert coll.count_documents({}) == 1         # not yet visible
            s.commit_transaction()
        assert sorted(d["_id"] for d in coll.find()) == [0, 1, 2]
        # replies in the transaction carry a recoveryToken; it names the
        # shard once the transaction wrote
        find = [r for r in listener.replies("find") if "recoveryToken" in r]
        assert find and "recoveryShardId" not in find[0]["recoveryToken"]
        inserts = listener.replies("insert")
        assert inserts and all("recoveryShardId" in r["recoveryToken"] for r in inserts)
        commit = listener.replies("commitTransaction")
        assert commit and "recoveryShardId" in commit[0]["recoveryToken"]
        # outside a transaction there is none
        assert all("recoveryToken" not in r for r in listener.replies("aggregate"))
        with c.start_session() as s:
            s.start_transaction()
            coll.insert_one({"_id": 3}, session=s)
            s.abort_transaction()
        assert coll.count_documents({"_id": 3}) == 0
    finally:
        c.close()


def test_writes_and_reads_reach_the_shard(mclient, mdb):
    mdb.c.insert_many([{"_id": i, "g": i % 3} for i in range(30)])
    got = list(mdb.c.aggregate([{"$match": {"g": 1}}, {"$sort": {"_id": 1}},
                                {"$project": SON([("_id", 1)])}]))
    assert [d["_id"] for d in got] == list(range(1, 30, 3))
    assert [ix["name"] for ix in mdb.c.list_indexes()] == ["_id_"]


# ---------------------------------------------------------------------------
# Sharded collections
# ---------------------------------------------------------------------------

def test_shard_collection_errors(mclient, mdb):
    ns = mdb.name + ".bad"
    for key, code in (({"a": -1}, 72), ({}, 72), ({"a": "hashed", "b": "hashed"}, 72)):
        with pytest.raises(OperationFailure) as e:
            mclient.admin.command("shardCollection", ns, key=key)
        assert e.value.code == code, key
    with pytest.raises(OperationFailure) as e:
        mclient.admin.command("shardCollection", ns, key={"a": "hashed"}, unique=True)
    assert e.value.code == 72 and "cannot be declared unique" in str(e.value)
    mdb.full.insert_one({"a": 1})
    with pytest.raises(OperationFailure) as e:
        mclient.admin.command("shardCollection", mdb.name + ".full", key={"a": 1})
    assert e.value.code == 72 and "create an index" in str(e.value)
    with pytest.raises(OperationFailure) as e:
        mdb.command("shardCollection", ns, key={"a": 1})
    assert e.value.code == 13


def test_sharded_collection(mclient, mdb):
    # enableSharding is optional from 6.0: shardCollection alone suffices
    mclient.admin.command("shardCollection", mdb.name + ".s", key={"region": 1})
    assert mclient.admin.command("shardCollection", mdb.name + ".s",
                                 key={"region": 1})["ok"] == 1
    assert mdb.command("collStats", "s")["sharded"] is True
    assert "primary" not in mdb.command("collStats", "s")
    assert mdb.list_collection_names() == ["s"]
    assert [i["key"] for i in mdb.s.list_indexes()] == [{"_id": 1}, {"region": 1}]
    cs = mdb.s.watch()
    mdb.s.insert_one({"_id": 1, "region": "eu", "v": 1})
    mdb.s.insert_one({"_id": 2, "v": 1})            # no shard key: allowed
    mdb.s.update_one({"_id": 1}, {"$set": {"v": 2}})
    mdb.s.replace_one({"_id": 1}, {"region": "eu", "v": 3})
    mdb.s.delete_one({"v": 3})      # one shard: a single target, allowed
    keys = [(ev["operationType"], list(ev["documentKey"].items())) for ev in
            (cs.next() for _ in range(5))]
    assert keys == [("insert", [("region", "eu"), ("_id", 1)]),
                    ("insert", [("region", None), ("_id", 2)]),
                    ("update", [("region", "eu"), ("_id", 1)]),
                    ("replace", [("region", "eu"), ("_id", 1)]),
                    ("delete", [("region", "eu"), ("_id", 1)])]
    cs.close()
    mdb.s.insert_one({"_id": 3, "region": "us"})
    if mclient.server_info()["versionArray"][0] < 7:
        # from 7.0 mongos routes a findAndModify without the shard key
        with pytest.raises(OperationFailure) as e:
            mdb.s.find_one_and_update({"_id": 3}, {"$set": {"v": 1}})
        assert e.value.code == 61
        assert "must contain the shard key" in str(e.value)
    assert mdb.s.find_one_and_update({"_id": 3, "region": "us"},
                                     {"$set": {"v": 1}})["_id"] == 3
    assert mdb.s.find_one_and_delete({"region": {"$eq": "us"}, "_id": 3})["_id"] == 3


def test_sharded_on_id_find_and_modify(mclient, mdb):
    mclient.admin.command("shardCollection", mdb.name + ".h", key={"_id": "hashed"})
    mdb.h.insert_one({"_id": 1, "v": 1})
    assert mdb.h.find_one_and_update({"_id": 1}, {"$set": {"v": 2}})["v"] == 1
    cs = mdb.h.watch()
    mdb.h.delete_one({"_id": 1})
    assert list(cs.next()["documentKey"].items()) == [("_id", 1)]


def test_shard_key_value_change(router, mclient, mdb):
    mclient.admin.command("shardCollection", mdb.name + ".k", key={"region": 1})
    mdb.k.insert_many([{"_id": 1, "region": "eu"}, {"_id": 2, "region": "eu"}])
    fails = [
        ({"update": "k", "updates": [{"q": {"_id": 1}, "u": {"$set": {"region": "us"}}}]},
         31025),
        ({"update": "k", "updates": [{"q": {"region": "eu"}, "u": {"$set": {"region": "us"}},
                                      "multi": True}]}, 72),
        ({"update": "k", "updates": [{"q": {"_id": 1, "region": "eu"},
                                      "u": {"$set": {"region": "us"}}}]}, 20),
    ]
    for cmd, code in fails:
        # retryWrites=false: no txnNumber
        c = pymongo.MongoClient(router[0], retryWrites=False, serverSelectionTimeoutMS=10000)
        try:
            reply = c[mdb.name].command(SON(list(cmd.items())))
        finally:
            c.close()
        assert reply["writeErrors"][0]["code"] == code, (cmd, reply)
    assert mdb.k.count_documents({"region": "eu"}) == 2
    # a retryable write (txnNumber) with the whole shard key: allowed
    mdb.k.update_one({"_id": 1, "region": "eu"}, {"$set": {"region": "us"}})
    assert mdb.k.find_one({"_id": 1})["region"] == "us"
    # the same value again is no change of the shard key
    mdb.k.update_one({"_id": 2}, {"$set": {"region": "eu", "v": 1}})
