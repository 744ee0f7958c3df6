"""configureFailPoint with failCommand, as mongod offers it under
enableTestCommands (a real server must be started with
--setParameter enableTestCommands=1 for these to pass).

Each test turns the fail point off at the end, whatever happened.
Commands run through db.command, which pymongo never retries.  The codes
used are ones pymongo reports as OperationFailure (not the "not primary"
or shutdown codes, which it turns into a rediscovery).
"""
import time

import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from conftest import fail_point


@pytest.fixture
def fp(client):
    yield lambda mode, data: fail_point(client, mode, data)
    fail_point(client, "off")


def find(db):
    return db.command({"find": "c"})


def failure(fn):
    with pytest.raises(OperationFailure) as e:
        fn()
    return e.value


def test_error_code_times_one(fp, db):
    db.c.insert_one({"_id": 1})
    reply = fp({"times": 1}, {"failCommands": ["find"], "errorCode": 2})
    assert reply["ok"] == 1
    e = failure(lambda: find(db))
    assert e.code == 2
    assert e.details["codeName"] == "BadValue"
    assert "failCommand" in e.details["errmsg"]
    assert find(db)["cursor"]["firstBatch"] == [{"_id": 1}]


def test_times_counts_down(fp, db):
    fp({"times": 2}, {"failCommands": ["count"], "errorCode": 8})
    assert failure(lambda: db.command({"count": "c"})).code == 8
    assert failure(lambda: db.command({"count": "c"})).code == 8
    assert db.command({"count": "c"})["n"] == 0


def test_skip_then_always(fp, db):
    fp({"skip": 1}, {"failCommands": ["count"], "errorCode": 26})
    assert db.command({"count": "c"})["ok"] == 1
    for _ in range(3):
        e = failure(lambda: db.command({"count": "c"}))
        assert e.code == 26
        assert e.details["codeName"] == "NamespaceNotFound"


def test_always_on_until_off(client, fp, db):
    fp("alwaysOn", {"failCommands": ["find"], "errorCode": 2})
    for _ in range(3):
        assert failure(lambda: find(db)).code == 2
    fail_point(client, "off")
    assert find(db)["ok"] == 1


def test_only_listed_commands_fail(fp, db):
    fp("alwaysOn", {"failCommands": ["distinct"], "errorCode": 2})
    assert find(db)["ok"] == 1
    assert db.command({"count": "c"})["ok"] == 1
    assert failure(lambda: db.command({"distinct": "c", "key": "a"})).code == 2


def test_error_labels_as_given(fp, db):
    fp({"times": 1}, {"failCommands": ["find"], "errorCode": 6,
                      "errorLabels": ["ResumableChangeStreamError", "Mine"]})
    e = failure(lambda: find(db))
    assert e.code == 6
    assert e.details["codeName"] == "HostUnreachable"
    assert sorted(e.details["errorLabels"]) == ["Mine",
                                                "ResumableChangeStreamError"]


def test_empty_error_labels_suppress_defaults(fp, db):
    fp({"times": 1}, {"failCommands": ["find"], "errorCode": 6,
                      "errorLabels": []})
    e = failure(lambda: find(db))
    assert e.details.get("errorLabels", []) == []


def test_get_more_fails_on_a_change_stream(client, fp, db):
    """How change stream resume is tested: a resumable error on getMore."""
    db.create_collection("c")
    with db.c.watch(max_await_time_ms=100) as cs:
        fp({"times": 1}, {"failCommands": ["getMore"], "errorCode": 280,
                          "errorLabels": []})
        with pytest.raises(OperationFailure) as e:
            cs.try_next()
        assert e.value.code == 280


def test_close_connection(fp, db):
    db.c.insert_one({"_id": 1})
    fp({"times": 1}, {"failCommands": ["find"], "closeConnection": True})
    with pytest.raises(AutoReconnect):
        find(db)
    assert find(db)["cursor"]["firstBatch"] == [{"_id": 1}]


def test_block_connection(fp, db):
    db.c.insert_one({"_id": 1})
    fp({"times": 1}, {"failCommands": ["find"], "blockConnection": True,
                      "blockTimeMS": 600})
    t0 = time.monotonic()
    reply = find(db)
    took = time.monotonic() - t0
    assert reply["cursor"]["firstBatch"] == [{"_id": 1}]
    assert took >= 0.55, "blocked only %.3f s" % took
    t0 = time.monotonic()
    find(db)
    assert time.monotonic() - t0 < took


def test_block_then_error(fp, db):
    fp({"times": 1}, {"failCommands": ["find"], "blockConnection": True,
                      "blockTimeMS": 400, "errorCode": 2})
    t0 = time.monotonic()
    e = failure(lambda: find(db))
    assert e.code == 2
    assert time.monotonic() - t0 >= 0.35


def test_write_commands_can_fail(fp, db):
    fp({"times": 1}, {"failCommands": ["insert"], "errorCode": 2})
    e = failure(lambda: db.command({"insert": "c", "documents": [{"_id": 1}]}))
    assert e.code == 2
    assert db.c.count_documents({}) == 0


def test_off_clears(client, fp, db):
    fp({"times": 5}, {"failCommands": ["find"], "errorCode": 2})
    fail_point(client, "off")
    assert find(db)["ok"] == 1


def test_driver_resumes_change_stream_after_resumable_error(fp, db):
    """A getMore failing with the ResumableChangeStreamError label makes the
    driver reopen the stream from its token: no event lost or repeated."""
    db.create_collection("c")
    with db.c.watch(max_await_time_ms=100) as cs:
        db.c.insert_one({"_id": 1})
        first = next_change(cs)
        fp({"times": 1}, {"failCommands": ["getMore"], "errorCode": 6,
                          "errorLabels": ["ResumableChangeStreamError"]})
        db.c.insert_one({"_id": 2})
        db.c.insert_one({"_id": 3})
        got = [next_change(cs), next_change(cs)]
    assert first["documentKey"] == {"_id": 1}
    assert [e["documentKey"]["_id"] for e in got] == [2, 3]


def next_change(cs, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        change = cs.try_next()
        if change is not None:
            return change
    raise AssertionError("no change event within %d s" % timeout)
