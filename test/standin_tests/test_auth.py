"""SCRAM-SHA-256 authentication of a stand-in started with --auth.

Stand-in only: the credentials come from the server's command line.
"""
import pymongo
import pytest
from pymongo.errors import OperationFailure

from conftest import raw_command

pytestmark = pytest.mark.standin_only

USER = "app"
PASSWORD = "s3cret pa$$ w/ é%"


@pytest.fixture
def server(standin):
    return standin(auth="%s:%s" % (USER, PASSWORD))


def connect(server, **kw):
    kw.setdefault("serverSelectionTimeoutMS", 10000)
    return pymongo.MongoClient(server.uri(), **kw)


def test_scram_sha_256_success(server):
    c = connect(server, username=USER, password=PASSWORD,
                authSource="admin", authMechanism="SCRAM-SHA-256")
    try:
        c.shop.orders.insert_one({"_id": 1})
        assert c.shop.orders.find_one() == {"_id": 1}
    finally:
        c.close()


def test_mechanism_negotiation(server):
    """Without authMechanism, drivers ask hello for saslSupportedMechs and
    pick SCRAM-SHA-256 when offered."""
    reply = raw_command(("127.0.0.1", server.port),
                        {"hello": 1, "saslSupportedMechs": "admin." + USER,
                         "$db": "admin"})
    assert "SCRAM-SHA-256" in reply["saslSupportedMechs"]
    c = connect(server, username=USER, password=PASSWORD)
    try:
        assert c.test.c.count_documents({}) == 0
    finally:
        c.close()


@pytest.mark.parametrize("user,password", [(USER, "wrong"),
                                           ("nobody", PASSWORD)])
def test_bad_credentials_fail_with_18(server, user, password):
    c = connect(server, username=user, password=password,
                authMechanism="SCRAM-SHA-256")
    try:
        with pytest.raises(OperationFailure) as e:
            c.admin.command("ping")
        assert e.value.code == 18
        assert e.value.details.get("codeName") == "AuthenticationFailed"
        assert PASSWORD not in str(e.value)
    finally:
        c.close()


def test_unauthenticated_commands_are_refused(server):
    c = connect(server)
    try:
        assert c.admin.command("ping")["ok"] == 1     # allowed
        assert c.admin.command("hello")["ok"] == 1
        with pytest.raises(OperationFailure) as e:
            c.shop.orders.find_one()
        assert e.value.code == 13
        assert e.value.details["codeName"] == "Unauthorized"
        with pytest.raises(OperationFailure) as e:
            c.shop.orders.insert_one({"x": 1})
        assert e.value.code == 13
    finally:
        c.close()


def test_sasl_start_with_bad_payload(server):
    reply = raw_command(("127.0.0.1", server.port), {
        "saslStart": 1, "mechanism": "SCRAM-SHA-256",
        "payload": b"not a scram message", "$db": "admin"})
    assert reply["ok"] == 0
    # The server is still there for a proper client.
    c = connect(server, username=USER, password=PASSWORD)
    assert c.admin.command("ping")["ok"] == 1
    c.close()


def test_unsupported_mechanism(server):
    reply = raw_command(("127.0.0.1", server.port), {
        "saslStart": 1, "mechanism": "NOPE", "payload": b"x",
        "$db": "admin"})
    assert reply["ok"] == 0
    # MechanismUnavailable (334) since MongoDB 5.x; BadValue (2) before.
    assert reply["code"] in (334, 2)
