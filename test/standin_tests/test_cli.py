"""The stand-in's command line: one executable, its options, `ready`, SIGTERM.

All of these start servers of their own, so they skip when
QLEAF_MONGODB_URI names a server.
"""
import subprocess

import pytest

from conftest import STANDIN, Standin

pytestmark = pytest.mark.standin_only


def test_ready_line_and_clean_sigterm(standin):
    server = standin()
    assert "ready" in [l.strip() for l in server.stdout_lines]
    # The interface says under 2 s from exec to accepting connections.
    assert server.ready_seconds < 2.0, (
        "ready after %.2f s" % server.ready_seconds)
    c = server.client()
    assert c.admin.command("ping")["ok"] == 1
    c.close()
    assert server.terminate() == 0


def test_ready_means_accepting(standin):
    """The first connection after `ready` must succeed with no retry."""
    import socket
    server = standin()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass


def test_default_replica_set_name_is_rs0(standin):
    server = standin()
    c = server.client()
    assert c.admin.command("hello")["setName"] == "rs0"
    c.close()


def test_replset_option(standin):
    server = standin(replset="shopRS")
    c = server.client()
    hello = c.admin.command("hello")
    assert hello["setName"] == "shopRS"
    c.close()
    # A driver asking for another set name must not take it as primary.
    import pymongo
    wrong = pymongo.MongoClient(server.uri().replace("shopRS", "rs0"),
                                serverSelectionTimeoutMS=1500)
    with pytest.raises(pymongo.errors.ServerSelectionTimeoutError):
        wrong.admin.command("ping")
    wrong.close()


def test_without_dbpath_data_is_in_memory(standin, tmp_path):
    server = standin()
    c = server.client()
    c.mem.c.insert_one({"_id": 1})
    c.close()
    assert server.terminate() == 0
    server.start()
    c = server.client()
    assert c.mem.c.count_documents({}) == 0
    c.close()


def test_dbpath_keeps_data_across_clean_restart(standin):
    server = standin(dbpath=True)
    c = server.client()
    c.keep.c.insert_many([{"_id": i} for i in range(10)])
    c.close()
    assert server.terminate() == 0
    server.restart()
    c = server.client()
    assert sorted(d["_id"] for d in c.keep.c.find()) == list(range(10))
    c.close()


def test_log_option_writes_a_file(standin, tmp_path):
    log = tmp_path / "standin.log"
    server = standin(log=log)
    c = server.client()
    c.admin.command("ping")
    c.close()
    assert server.terminate() == 0
    assert log.exists() and log.stat().st_size > 0


def test_bad_option_fails_with_usage():
    proc = subprocess.run([str(STANDIN), "--port", "1", "--no-such-option"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30)
    assert proc.returncode != 0
    assert b"ready" not in proc.stdout
    assert proc.stderr.strip(), "a refused option must say why on stderr"


def test_port_in_use_fails_without_ready(standin):
    first = standin()
    second = Standin(port=first.port)
    with pytest.raises(Exception) as e:
        second.start()
    second.kill9()
    assert "ready" in str(e.value)
