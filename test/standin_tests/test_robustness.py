"""Robustness: 50 concurrent clients; malformed messages get an error or a
closed connection and never stop the server.

The malformed-input tests are stand-in only: they run against a server of
this module's own, so a crash cannot take the rest of the suite with it.
"""
import random
import socket
import struct
import threading

import bson
import pymongo
import pytest

from conftest import (EXTERNAL_URI, OP_MSG, OP_QUERY, Closed, Standin,
                      connect_raw, frame, op_msg, parse_op_msg,
                      parse_op_reply, primary_address, raw_command,
                      read_message)


# --- concurrency -------------------------------------------------------

def test_fifty_concurrent_clients(mongo_uri, db):
    n = 50
    barrier = threading.Barrier(n)
    errors = []

    def work(i):
        c = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=30000,
                                maxPoolSize=2)
        try:
            coll = c[db.name].c
            c.admin.command("ping")
            barrier.wait(60)
            for j in range(20):
                coll.insert_one({"_id": i * 1000 + j, "w": i})
            assert coll.count_documents({"w": i}) == 20
            got = [d["_id"] for d in coll.find({"w": i}).sort("_id")
                   .batch_size(3)]
            assert got == [i * 1000 + j for j in range(20)]
            coll.update_many({"w": i}, {"$set": {"done": True}})
        except Exception as e:  # reported below, with the thread's number
            errors.append("client %d: %r" % (i, e))
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert db.c.count_documents({"done": True}) == n * 20


def test_fifty_raw_connections_at_once(client):
    address = primary_address(client)
    socks = [connect_raw(address) for _ in range(50)]
    try:
        for i, s in enumerate(socks):
            s.sendall(op_msg({"hello": 1, "$db": "admin"}, request_id=5000 + i))
        for i, s in enumerate(socks):
            header, body = read_message(s)
            assert header["responseTo"] == 5000 + i
            assert parse_op_msg(body)[1]["ok"] == 1
    finally:
        for s in socks:
            s.close()


# --- malformed input ---------------------------------------------------

@pytest.fixture(scope="module")
def victim(tmp_path_factory):
    if EXTERNAL_URI:
        pytest.skip("QLEAF_MONGODB_URI is set: malformed input is only sent "
                    "to a stand-in of the test's own")
    server = Standin(dbpath=tmp_path_factory.mktemp("victim"))
    server.start()
    yield server
    try:
        assert server.running(), "the stand-in died:\n" + server.stderr()
    finally:
        server.kill9()


def bson_bytes(doc):
    return bson.encode(doc)


def op_msg_raw(payload, flags=0):
    return frame(OP_MSG, struct.pack("<I", flags) + payload)


PING = bson_bytes({"ping": 1, "$db": "admin"})
rng = random.Random(20240601)

MALFORMED = {
    # header lengths no message can have
    "length_zero": struct.pack("<iiii", 0, 1, 0, OP_MSG),
    "length_below_header": struct.pack("<iiii", 8, 1, 0, OP_MSG),
    "length_negative": struct.pack("<iiii", -5, 1, 0, OP_MSG),
    "length_over_48MB": struct.pack("<iiii", 48000000 + 1024, 1, 0, OP_MSG)
    + b"\0" * (1 << 20),
    "length_2GB": struct.pack("<iiii", 0x7FFFFFFF, 1, 0, OP_MSG) + b"\0" * 64,
    # bad BSON in an OP_MSG body
    "bson_length_past_end": op_msg_raw(
        b"\0" + struct.pack("<i", 5000) + PING[4:]),
    "bson_length_short": op_msg_raw(b"\0" + struct.pack("<i", 6) + PING[4:]),
    "bson_bad_element_type": op_msg_raw(
        b"\0" + struct.pack("<i", 12) + b"\x77a\0\x01\x00\x00\x00" + b"\0"),
    "bson_no_terminator": op_msg_raw(
        b"\0" + struct.pack("<i", len(PING)) + PING[4:-1] + b"\x01"),
    "bson_string_length_wrong": op_msg_raw(
        b"\0" + bson_bytes({"ping": "x", "$db": "admin"})
        .replace(b"\x02\x00\x00\x00x\x00", b"\xff\x00\x00\x00x\x00")),
    # OP_MSG structure
    "op_msg_no_sections": op_msg_raw(b""),
    "op_msg_unknown_required_flag": op_msg_raw(b"\0" + PING, flags=1 << 4),
    "op_msg_unknown_section_kind": op_msg_raw(b"\x07" + PING),
    "op_msg_two_bodies": op_msg_raw(b"\0" + PING + b"\0" + PING),
    "op_msg_sequence_without_body": op_msg_raw(
        b"\x01" + struct.pack("<i", 4 + 10 + len(PING)) + b"documents\0"
        + PING),
    "op_msg_bad_checksum": op_msg_raw(b"\0" + PING + b"\xde\xad\xbe\xef",
                                      flags=1),
    "op_msg_truncated_flags": frame(OP_MSG, b"\0\0"),
    # OP_QUERY structure
    "op_query_no_terminator": frame(OP_QUERY, struct.pack("<i", 0)
                                    + b"admin.$cmd" * 4),
    "op_query_bad_bson": frame(OP_QUERY, struct.pack("<i", 0) + b"admin.$cmd\0"
                               + struct.pack("<ii", 0, -1)
                               + struct.pack("<i", 999) + b"\x10a\0"),
    # opcodes nobody speaks any more, or never did
    "unknown_opcode": frame(9999, b"\0" * 32),
    "op_insert_removed": frame(2002, struct.pack("<i", 0) + b"t.c\0" + PING),
    "garbage": bytes(rng.getrandbits(8) for _ in range(4096)),
}


def answer_or_close(sock, timeout=10):
    """'closed', or the reply's command document (OP_MSG or OP_REPLY)."""
    sock.settimeout(timeout)
    try:
        header, body = read_message(sock)
    except (Closed, ConnectionResetError, BrokenPipeError):
        return "closed"
    except socket.timeout:
        raise AssertionError("the server neither answered nor closed the "
                             "connection within %d s" % timeout)
    if header["opCode"] == OP_MSG:
        return parse_op_msg(body)[1]
    return parse_op_reply(body)["documents"][0]


@pytest.mark.standin_only
@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_message(victim, name):
    address = ("127.0.0.1", victim.port)
    bystander = pymongo.MongoClient(victim.uri(),
                                    serverSelectionTimeoutMS=10000)
    bystander.admin.command("ping")
    with connect_raw(address) as sock:
        try:
            sock.sendall(MALFORMED[name])
            outcome = answer_or_close(sock)
        except (BrokenPipeError, ConnectionResetError):
            outcome = "closed"
    if outcome != "closed":
        assert outcome.get("ok") == 0, ("malformed input %s was accepted: %r"
                                        % (name, outcome))
    assert victim.running(), victim.stderr()
    # The server still answers, on new connections and on old ones.
    assert raw_command(address, {"ping": 1, "$db": "admin"})["ok"] == 1
    assert bystander.admin.command("ping")["ok"] == 1
    bystander.close()


@pytest.mark.standin_only
def test_truncated_message_then_hang_up(victim):
    address = ("127.0.0.1", victim.port)
    for cut in (3, 16, 40):
        msg = op_msg({"insert": "c", "documents": [{"_id": 1}],
                      "$db": "trunc"})
        with connect_raw(address) as sock:
            sock.sendall(msg[:cut])
    assert victim.running()
    assert raw_command(address, {"ping": 1, "$db": "admin"})["ok"] == 1
    c = pymongo.MongoClient(victim.uri(), serverSelectionTimeoutMS=10000)
    assert c.trunc.c.count_documents({}) == 0   # no half message was run
    c.close()


@pytest.mark.standin_only
def test_slow_sender_is_served(victim):
    """A message that arrives a few bytes at a time is still one message."""
    address = ("127.0.0.1", victim.port)
    msg = op_msg({"ping": 1, "$db": "admin"})
    with connect_raw(address) as sock:
        for i in range(0, len(msg), 7):
            sock.sendall(msg[i:i + 7])
        assert answer_or_close(sock)["ok"] == 1


@pytest.mark.standin_only
def test_many_messages_in_one_write(victim):
    """Pipelined requests in one TCP write are answered in order."""
    address = ("127.0.0.1", victim.port)
    msgs = [op_msg({"ping": 1, "$db": "admin"}, request_id=9000 + i)
            for i in range(20)]
    with connect_raw(address) as sock:
        sock.sendall(b"".join(msgs))
        ids = [read_message(sock)[0]["responseTo"] for _ in range(20)]
    assert ids == [9000 + i for i in range(20)]


@pytest.mark.standin_only
def test_oversized_document_is_refused(victim):
    """A document over 16 MB (in a message under 48 MB) gets an error (or
    the connection closed), is not stored, and does not crash the server."""
    c = pymongo.MongoClient(victim.uri(), serverSelectionTimeoutMS=10000)
    address = ("127.0.0.1", victim.port)
    big = {"_id": 1, "blob": b"\0" * (17 * 1024 * 1024)}
    with connect_raw(address, timeout=30) as sock:
        sock.sendall(op_msg({"insert": "big", "$db": "huge"},
                            sequences=[("documents", [big])]))
        outcome = answer_or_close(sock, timeout=30)
    if outcome != "closed":
        assert outcome["ok"] == 0 or outcome.get("writeErrors"), outcome
    assert c.huge.big.count_documents({}) == 0
    c.close()
