"""Handshake and wire protocol: hello / isMaster, OP_MSG, OP_QUERY.

The raw tests write bytes on a socket to the primary, so what is checked is
the server's answer, not a driver's reading of it.  They hold for a real
replica set too.
"""
import datetime
import struct
import time

import pymongo
import pytest
from bson import Int64, ObjectId, Timestamp

from conftest import (EXTERNAL_URI, OP_MSG, OP_REPLY, connect_raw,
                      op_msg, op_query, parse_op_msg, parse_op_reply,
                      primary_address, raw_command, read_message)

# maxWireVersion of each server release (the driver specifications' table).
WIRE_VERSIONS = {13: (5, 0), 17: (6, 0), 21: (7, 0), 25: (8, 0)}


def check_primary_fields(reply, writable_field):
    assert reply["ok"] == 1
    assert reply[writable_field] is True
    assert reply.get("secondary") is False
    assert isinstance(reply["setName"], str) and reply["setName"]
    assert isinstance(reply["setVersion"], int)
    assert isinstance(reply["electionId"], ObjectId)
    me = reply["me"]
    assert isinstance(me, str) and ":" in me
    assert me in reply["hosts"]
    assert reply["primary"] == me
    assert reply["maxBsonObjectSize"] == 16 * 1024 * 1024
    assert reply["maxMessageSizeBytes"] == 48000000
    assert reply["maxWriteBatchSize"] == 100000
    assert isinstance(reply["localTime"], datetime.datetime)
    assert reply["logicalSessionTimeoutMinutes"] == 30
    assert reply["minWireVersion"] == 0
    assert reply["readOnly"] is False
    if not EXTERNAL_URI:
        # The stand-in presents itself as MongoDB 6.0 or 7.0.
        assert reply["maxWireVersion"] in (17, 21)
    else:
        assert reply["maxWireVersion"] >= 17
    tv = reply["topologyVersion"]
    assert isinstance(tv["processId"], ObjectId)
    assert isinstance(tv["counter"], int)
    ct = reply["$clusterTime"]
    assert isinstance(ct["clusterTime"], Timestamp)
    assert isinstance(ct["signature"]["hash"], bytes)
    assert isinstance(ct["signature"]["keyId"], int)
    assert isinstance(reply["operationTime"], Timestamp)
    assert isinstance(reply["connectionId"], int)


def test_hello_over_op_msg(client):
    address = primary_address(client)
    reply = raw_command(address, {"hello": 1, "$db": "admin"})
    check_primary_fields(reply, "isWritablePrimary")
    assert "ismaster" not in reply


def test_ismaster_over_op_msg(client):
    address = primary_address(client)
    reply = raw_command(address, {"isMaster": 1, "$db": "admin"})
    check_primary_fields(reply, "ismaster")


@pytest.mark.parametrize("name", ["isMaster", "ismaster", "hello"])
def test_legacy_handshake_over_op_query(client, name):
    """Drivers open every connection with OP_QUERY on admin.$cmd."""
    address = primary_address(client)
    with connect_raw(address) as sock:
        msg = op_query({name: 1, "client": {"driver": {"name": "raw",
                                                     "version": "0"}}})
        request_id = struct.unpack_from("<i", msg, 4)[0]
        sock.sendall(msg)
        header, body = read_message(sock)
    assert header["opCode"] == OP_REPLY
    assert header["responseTo"] == request_id
    reply = parse_op_reply(body)
    assert reply["cursorID"] == 0
    assert reply["numberReturned"] == 1
    doc = reply["documents"][0]
    check_primary_fields(doc, "isWritablePrimary" if name == "hello"
                         else "ismaster")


def test_op_query_refuses_other_commands(client):
    """Since MongoDB 5.1 only the handshake may use OP_QUERY: any other
    command answers UnsupportedOpQueryCommand (352), never a result."""
    address = primary_address(client)
    with connect_raw(address) as sock:
        sock.sendall(op_query({"find": "c"}, collection="test.$cmd"))
        header, body = read_message(sock)
    doc = parse_op_reply(body)["documents"][0]
    assert doc["ok"] == 0
    assert doc["code"] == 352
    assert doc["codeName"] == "UnsupportedOpQueryCommand"


def test_op_msg_reply_header(client):
    address = primary_address(client)
    with connect_raw(address) as sock:
        msg = op_msg({"ping": 1, "$db": "admin"}, request_id=777001)
        sock.sendall(msg)
        header, body = read_message(sock)
    assert header["opCode"] == OP_MSG
    assert header["responseTo"] == 777001
    flags, doc, seqs = parse_op_msg(body)
    assert flags & 2 == 0          # no moreToCome on an ordinary reply
    assert doc["ok"] == 1
    assert isinstance(doc["operationTime"], Timestamp)
    assert isinstance(doc["$clusterTime"]["clusterTime"], Timestamp)


def test_op_msg_document_sequence(client, db):
    """insert with its documents in a kind 1 section, as drivers send it."""
    address = primary_address(client)
    docs = [{"_id": 1, "a": "x"}, {"_id": 2, "a": "y"}, {"_id": 3}]
    with connect_raw(address) as sock:
        sock.sendall(op_msg({"insert": "seq", "$db": db.name},
                            sequences=[("documents", docs)]))
        _, body = read_message(sock)
    reply = parse_op_msg(body)[1]
    assert reply["ok"] == 1 and reply["n"] == 3
    assert list(db.seq.find().sort("_id")) == docs


def test_op_msg_document_sequence_updates(client, db):
    db.seq.insert_many([{"_id": i, "v": 0} for i in range(3)])
    address = primary_address(client)
    updates = [{"q": {"_id": 0}, "u": {"$set": {"v": 1}}},
               {"q": {"_id": {"$gte": 1}}, "u": {"$set": {"v": 2}},
                "multi": True}]
    with connect_raw(address) as sock:
        sock.sendall(op_msg({"update": "seq", "$db": db.name},
                            sequences=[("updates", updates)]))
        _, body = read_message(sock)
    reply = parse_op_msg(body)[1]
    assert reply["ok"] == 1 and reply["n"] == 3 and reply["nModified"] == 3
    assert [d["v"] for d in db.seq.find().sort("_id")] == [1, 2, 2]


def test_op_msg_with_checksum(client):
    """The checksumPresent flag: a CRC-32C after the sections."""
    address = primary_address(client)
    with connect_raw(address) as sock:
        sock.sendall(op_msg({"ping": 1, "$db": "admin"}, checksum=True))
        _, body = read_message(sock)
    assert parse_op_msg(body)[1]["ok"] == 1


def test_more_to_come_gets_no_reply(client, db):
    """A request with moreToCome (w:0 write) is run but never answered: the
    next reply on the socket is the one for the next request."""
    address = primary_address(client)
    with connect_raw(address) as sock:
        sock.sendall(op_msg({"insert": "w0", "$db": db.name,
                             "writeConcern": {"w": 0}},
                            flags=2, sequences=[("documents", [{"_id": 1}])]))
        sock.sendall(op_msg({"find": "w0", "filter": {}, "$db": db.name},
                            request_id=777002))
        header, body = read_message(sock)
    assert header["responseTo"] == 777002
    reply = parse_op_msg(body)[1]
    assert reply["cursor"]["firstBatch"] == [{"_id": 1}]


def test_pymongo_discovers_a_primary(mongo_uri):
    assert "replicaSet=" in mongo_uri or EXTERNAL_URI
    c = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=10000)
    try:
        c.admin.command("ping")
        td = c._topology.description     # pymongo 3.11 has no public name
        assert td.topology_type_name == "ReplicaSetWithPrimary"
        assert c.primary is not None
        sd = td.server_descriptions()[c.primary]
        assert sd.server_type_name == "RSPrimary"
        assert c.is_primary
    finally:
        c.close()


def test_cluster_time_advances_with_writes(client, db):
    before = client.admin.command("hello")["$clusterTime"]["clusterTime"]
    with client.start_session() as s:
        db.ct.insert_one({"x": 1}, session=s)
        op_time = s.operation_time
    after = client.admin.command("hello")["$clusterTime"]["clusterTime"]
    assert op_time > before
    assert after >= op_time


def test_operation_time_on_every_reply(client, db):
    address = primary_address(client)
    for cmd in ({"ping": 1, "$db": "admin"},
                {"find": "none", "$db": db.name},
                {"insert": "x", "documents": [{"a": 1}], "$db": db.name},
                {"noSuchCommand": 1, "$db": "admin"}):
        reply = raw_command(address, cmd)
        assert isinstance(reply["operationTime"], Timestamp), cmd
        assert isinstance(reply["$clusterTime"]["clusterTime"], Timestamp)


def test_awaitable_hello_waits(client):
    """hello with the current topologyVersion and maxAwaitTimeMS (the
    streaming monitor protocol of MongoDB 4.4+) answers when the topology
    changes or after maxAwaitTimeMS, not at once."""
    address = primary_address(client)
    with connect_raw(address) as sock:
        sock.sendall(op_msg({"hello": 1, "$db": "admin"}))
        tv = parse_op_msg(read_message(sock)[1])[1]["topologyVersion"]
        t0 = time.monotonic()
        sock.sendall(op_msg({"hello": 1, "$db": "admin",
                             "topologyVersion": tv,
                             "maxAwaitTimeMS": Int64(500)}))
        reply = parse_op_msg(read_message(sock)[1])[1]
        took = time.monotonic() - t0
    assert reply["ok"] == 1 and reply["isWritablePrimary"] is True
    assert took >= 0.45, "awaitable hello answered after %.3f s" % took


def test_build_info_matches_wire_version(client):
    info = client.admin.command("buildInfo")
    assert info["ok"] == 1
    version = info["version"]
    array = info["versionArray"]
    assert version.startswith("%d.%d." % (array[0], array[1]))
    assert len(array) == 4
    wire = client.admin.command("hello")["maxWireVersion"]
    if wire in WIRE_VERSIONS:
        assert tuple(array[:2]) == WIRE_VERSIONS[wire]
    assert info["maxBsonObjectSize"] == 16 * 1024 * 1024
    assert info["bits"] == 64


def test_awaitable_hello_does_not_hold_up_other_connections(client, db):
    """While one connection waits in an awaitable hello (every pymongo 3.11+
    monitor does, for up to heartbeatFrequencyMS), other connections'
    handshakes and commands run at once."""
    db.c.insert_one({"_id": 1})
    address = primary_address(client)
    with connect_raw(address) as waiting:
        waiting.sendall(op_msg({"hello": 1, "$db": "admin"}))
        tv = parse_op_msg(read_message(waiting)[1])[1]["topologyVersion"]
        waiting.sendall(op_msg({"hello": 1, "$db": "admin",
                                "topologyVersion": tv,
                                "maxAwaitTimeMS": Int64(3000)}))
        t0 = time.monotonic()
        with connect_raw(address) as other:
            other.sendall(op_query({"isMaster": 1}))
            assert parse_op_reply(read_message(other)[1])[
                "documents"][0]["ismaster"] is True
            other.sendall(op_msg({"find": "c", "$db": db.name}))
            found = parse_op_msg(read_message(other)[1])[1]
        took = time.monotonic() - t0
        read_message(waiting)
    assert found["cursor"]["firstBatch"] == [{"_id": 1}]
    assert took < 2.5, ("a handshake and a find took %.1f s while another "
                        "connection waited in hello" % took)
