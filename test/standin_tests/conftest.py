"""Fixtures for the stand-in's test suite.

Every test gets its MongoDB from one place.  When QLEAF_MONGODB_URI is set,
the suite uses that server (a real replica set, say) and starts nothing;
otherwise it starts one test/mongo-standin for the whole session, with a
data directory, and stops it with SIGTERM at the end (its exit code must
be 0).  Tests that need a server of their own (kill -9 and restart,
--auth, a tiny --oplog-size, malformed wire input) ask the `standin`
factory, which skips them, saying why, when the URI is set.

Servers are never waited for with sleeps: a start waits for the `ready`
line on the server's stdout.  Every server a fixture starts is killed in
its finalizer, whatever happened in the test.
"""
import ctypes
import hashlib
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import bson
import pymongo
import pytest
from bson import Int64, SON
from pymongo import monitoring

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "test" / "mongo-standin"
EXTERNAL_URI = os.environ.get("QLEAF_MONGODB_URI") or None
READY_TIMEOUT = 15.0       # generous: a loaded CI machine must not flake

SKIP_EXTERNAL = ("QLEAF_MONGODB_URI is set: this test needs a stand-in of "
                 "its own (kill -9, restart, options or raw wire input a "
                 "shared server cannot take)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "standin_only: needs a stand-in started by the test; "
        "skipped when QLEAF_MONGODB_URI is set")


def pytest_collection_modifyitems(config, items):
    if not EXTERNAL_URI:
        return
    skip = pytest.mark.skip(reason=SKIP_EXTERNAL)
    for item in items:
        if "standin_only" in item.keywords:
            item.add_marker(skip)


def _die_with_parent():
    """In the child before exec: have the kernel send SIGTERM when the test
    process dies, so no stand-in outlives a killed pytest."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port():
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandinError(Exception):
    pass


class Standin:
    """One test/mongo-standin process.

    start() returns once the server printed `ready`; the stdout lines are
    kept in self.stdout_lines, stderr goes to a file shown on failure.
    """

    def __init__(self, port=None, dbpath=None, replset=None, oplog_size=None,
                 auth=None, log=None, extra=()):
        self.port = port or free_port()
        self.dbpath = dbpath
        self.replset = replset
        self.oplog_size = oplog_size
        self.auth = auth
        self.log = log
        self.extra = list(extra)
        self.proc = None
        self.stdout_lines = []
        self.ready_seconds = None
        self._ready = threading.Event()
        self._errfile = None

    def argv(self):
        argv = [str(STANDIN), "--port", str(self.port)]
        if self.dbpath:
            argv += ["--dbpath", str(self.dbpath)]
        if self.replset:
            argv += ["--replset", self.replset]
        if self.oplog_size is not None:
            argv += ["--oplog-size", str(self.oplog_size)]
        if self.auth:
            argv += ["--auth", self.auth]
        if self.log:
            argv += ["--log", str(self.log)]
        return argv + self.extra

    @property
    def set_name(self):
        return self.replset or "rs0"

    def uri(self, credentials=None, **options):
        opts = {"replicaSet": self.set_name}
        opts.update(options)
        query = "&".join("%s=%s" % kv for kv in opts.items())
        cred = credentials + "@" if credentials else ""
        return "mongodb://%s127.0.0.1:%d/?%s" % (cred, self.port, query)

    def client(self, credentials=None, **kwargs):
        kwargs.setdefault("serverSelectionTimeoutMS", 10000)
        return pymongo.MongoClient(self.uri(credentials), **kwargs)

    def _read_stdout(self, proc, ready):
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            if line.strip() == "ready":
                ready.set()

    def start(self):
        if not os.access(STANDIN, os.X_OK):
            raise StandinError("%s is missing or not executable" % STANDIN)
        self._errfile = tempfile.TemporaryFile()
        self.stdout_lines = []
        self._ready = threading.Event()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.PIPE,
                                     stderr=self._errfile,
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        reader = threading.Thread(target=self._read_stdout,
                                  args=(self.proc, self._ready), daemon=True)
        reader.start()
        deadline = t0 + READY_TIMEOUT
        while not self._ready.is_set():
            if self.proc.poll() is not None:
                reader.join(2)
                raise StandinError("mongo-standin exited with %s before "
                                   "printing ready\nstdout: %s\nstderr: %s"
                                   % (self.proc.returncode, self.stdout_lines,
                                      self.stderr()))
            if time.monotonic() > deadline:
                self.kill9()
                raise StandinError("mongo-standin printed no ready line in "
                                   "%.0f s\nstderr: %s"
                                   % (READY_TIMEOUT, self.stderr()))
            self._ready.wait(0.05)
        self.ready_seconds = time.monotonic() - t0
        return self

    def stderr(self):
        if not self._errfile:
            return ""
        self._errfile.seek(0)
        return self._errfile.read().decode("utf-8", "replace")[-4000:]

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def terminate(self, timeout=15):
        """SIGTERM, wait, and return the exit code."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise StandinError("mongo-standin did not exit within %d s of "
                               "SIGTERM" % timeout)

    def restart(self):
        """Start again on the same port and data directory."""
        return self.start()


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory):
    """The URI of the suite's MongoDB: QLEAF_MONGODB_URI or a stand-in."""
    if EXTERNAL_URI:
        yield EXTERNAL_URI
        return
    server = Standin(dbpath=tmp_path_factory.mktemp("session-db"))
    try:
        server.start()
    except StandinError as e:
        pytest.exit("cannot start the stand-in: %s" % e, returncode=3)
    try:
        yield server.uri()
    finally:
        try:
            rc = server.terminate()
        finally:
            server.kill9()
        assert rc == 0, ("mongo-standin exited with %s on SIGTERM\n%s"
                         % (rc, server.stderr()))


@pytest.fixture(scope="session")
def client(mongo_uri):
    c = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=10000)
    yield c
    c.close()


def db_name_for(nodeid):
    """A database name of our own for one test (MongoDB allows 63 bytes)."""
    short = re.sub(r"[^A-Za-z0-9_]", "_", nodeid.split("::")[-1])[:40]
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:8]
    return "t_%s_%s" % (short, digest)


@pytest.fixture
def db(client, request):
    """A fresh database for this test, dropped before and after."""
    name = db_name_for(request.node.nodeid)
    client.drop_database(name)
    yield client[name]
    try:
        client.drop_database(name)
    except pymongo.errors.PyMongoError:
        pass


class CommandRecorder(monitoring.CommandListener):
    """Records every command a client sends (command monitoring)."""

    def __init__(self):
        self.started_events = []
        self.succeeded_events = []
        self.failed_events = []

    def started(self, event):
        self.started_events.append(event)

    def succeeded(self, event):
        self.succeeded_events.append(event)

    def failed(self, event):
        self.failed_events.append(event)

    def clear(self):
        del self.started_events[:]
        del self.succeeded_events[:]
        del self.failed_events[:]

    def names(self, exclude=("hello", "isMaster", "ismaster", "endSessions")):
        return [e.command_name for e in self.started_events
                if e.command_name not in exclude]

    def count(self, name):
        return self.names().count(name)

    def replies(self, name):
        return [e.reply for e in self.succeeded_events
                if e.command_name == name]


@pytest.fixture
def monitored(mongo_uri):
    """(client, listener): a client whose commands are recorded."""
    listener = CommandRecorder()
    c = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=10000,
                            event_listeners=[listener])
    c.admin.command("ping")
    listener.clear()
    yield c, listener
    c.close()


@pytest.fixture
def standin(tmp_path):
    """Factory for stand-ins of the test's own; all killed at teardown.

        server = standin(dbpath=True, oplog_size=10, auth="u:p")

    dbpath=True gives a fresh directory under tmp_path.
    """
    if EXTERNAL_URI:
        pytest.skip(SKIP_EXTERNAL)
    started = []

    def make(dbpath=None, start=True, **kwargs):
        if dbpath is True:
            dbpath = tmp_path / ("db%d" % len(started))
            dbpath.mkdir()
        server = Standin(dbpath=dbpath, **kwargs)
        started.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in started:
        server.kill9()


def primary_address(client):
    """(host, port) of the primary a client talks to."""
    client.admin.command("ping")
    return client.address


def fail_point(client, mode, data=None):
    cmd = {"configureFailPoint": "failCommand", "mode": mode}
    if data is not None:
        cmd["data"] = data
    return client.admin.command(cmd)


# --- raw wire protocol -------------------------------------------------
# Tests of the handshake and of malformed input write bytes on a socket
# themselves, so that nothing a driver does hides what the server does.

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
_request_ids = iter(range(1000, 1 << 30))


def next_request_id():
    return next(_request_ids)


def frame(opcode, body, request_id=None, response_to=0, length=None):
    """A message: the 16-byte header then body (length may be forged)."""
    rid = next_request_id() if request_id is None else request_id
    size = 16 + len(body) if length is None else length
    return struct.pack("<iiii", size, rid, response_to, opcode) + body


def op_msg(doc, flags=0, sequences=(), request_id=None, checksum=False):
    """OP_MSG with a kind 0 body and kind 1 document sequences."""
    body = bytes([0]) + bson.encode(doc)
    for ident, docs in sequences:
        payload = ident.encode() + b"\0" + b"".join(bson.encode(d) for d in docs)
        body += bytes([1]) + struct.pack("<i", 4 + len(payload)) + payload
    if checksum:
        flags |= 1
        rid = next_request_id() if request_id is None else request_id
        head = struct.pack("<I", flags) + body
        msg = frame(OP_MSG, head + b"\0\0\0\0", request_id=rid)
        crc = crc32c(msg[:-4])
        return msg[:-4] + struct.pack("<I", crc)
    return frame(OP_MSG, struct.pack("<I", flags) + body,
                 request_id=request_id)


def op_query(doc, collection="admin.$cmd", flags=0, skip=0, limit=-1):
    body = (struct.pack("<i", flags) + collection.encode() + b"\0"
            + struct.pack("<ii", skip, limit) + bson.encode(doc))
    return frame(OP_QUERY, body)


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class Closed(Exception):
    """The server closed the connection."""


def recv_exact(sock, n):
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            raise Closed()
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(sock):
    """One message: (header dict, body bytes).  Raises Closed on EOF."""
    try:
        head = recv_exact(sock, 16)
    except (ConnectionResetError, BrokenPipeError):
        raise Closed()
    size, rid, response_to, opcode = struct.unpack("<iiii", head)
    body = recv_exact(sock, size - 16)
    return {"length": size, "requestID": rid, "responseTo": response_to,
            "opCode": opcode}, body


def parse_op_msg(body):
    """(flags, body document, {identifier: [documents]})."""
    flags = struct.unpack_from("<I", body)[0]
    pos = 4
    end = len(body) - (4 if flags & 1 else 0)
    doc, seqs = None, {}
    while pos < end:
        kind = body[pos]
        pos += 1
        if kind == 0:
            size = struct.unpack_from("<i", body, pos)[0]
            doc = bson.decode(body[pos:pos + size])
            pos += size
        elif kind == 1:
            size = struct.unpack_from("<i", body, pos)[0]
            section = body[pos + 4:pos + size]
            ident, rest = section.split(b"\0", 1)
            seqs[ident.decode()] = list(bson.decode_all(rest))
            pos += size
        else:
            raise AssertionError("unknown section kind %d in a reply" % kind)
    return flags, doc, seqs


def parse_op_reply(body):
    flags, cursor_id, start, n = struct.unpack_from("<iqii", body)
    return {"responseFlags": flags, "cursorID": cursor_id,
            "startingFrom": start, "numberReturned": n,
            "documents": list(bson.decode_all(body[20:]))}


def connect_raw(address, timeout=10):
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def raw_command(address, doc, timeout=10):
    """Run one command over a fresh socket with OP_MSG; return the reply."""
    with connect_raw(address, timeout) as sock:
        msg = op_msg(doc)
        sock.sendall(msg)
        header, body = read_message(sock)
        assert header["opCode"] == OP_MSG
        return parse_op_msg(body)[1]


# --- change streams through raw commands --------------------------------
# pymongo 3.11's watch() knows neither fullDocumentBeforeChange nor the
# reply fields we check, so most change stream tests speak the commands.

class RawChangeStream:
    """aggregate + $changeStream, getMore and killCursors, in one session."""

    def __init__(self, client, db_name, coll_name=None, spec=None,
                 pipeline=(), batch_size=None, cluster=False):
        self.client = client
        self.db = client[db_name]
        self.session = client.start_session()
        target = coll_name if coll_name is not None else 1
        cursor = {} if batch_size is None else {"batchSize": batch_size}
        stage_spec = dict(spec or {})
        if cluster:
            stage_spec["allChangesForCluster"] = True
        self.command = SON([("aggregate", target),
                            ("pipeline", [{"$changeStream": stage_spec}]
                             + list(pipeline)),
                            ("cursor", cursor)])
        self.id = 0
        try:
            reply = self.db.command(self.command, session=self.session)
        except BaseException:
            self.session.end_session()
            raise
        self.replies = [reply]
        c = reply["cursor"]
        self.id = c["id"]
        self.ns = c["ns"]
        self.first_batch = list(c["firstBatch"])
        self.pbrt = c.get("postBatchResumeToken")
        self.pending = list(self.first_batch)

    def get_more(self, max_await_ms=None, batch_size=None):
        cmd = SON([("getMore", Int64(self.id)),
                   ("collection", self.ns.split(".", 1)[1])])
        if batch_size is not None:
            cmd["batchSize"] = batch_size
        if max_await_ms is not None:
            cmd["maxTimeMS"] = max_await_ms
        reply = self.db.command(cmd, session=self.session)
        self.replies.append(reply)
        c = reply["cursor"]
        self.id = c["id"]
        self.pbrt = c.get("postBatchResumeToken")
        return list(c["nextBatch"])

    def collect(self, n, timeout=15, max_await_ms=200):
        """Exactly the next n events (fails if fewer come in time)."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            if self.pending:
                out.append(self.pending.pop(0))
                continue
            if not self.id:
                break
            if time.monotonic() > deadline:
                break
            self.pending = self.get_more(max_await_ms)
        assert len(out) == n, ("expected %d change events, got %d: %r"
                               % (n, len(out), out))
        return out

    def drain(self, max_await_ms=300):
        """Whatever is queued now (one getMore beyond the buffer)."""
        out = list(self.pending)
        self.pending = []
        if self.id:
            out += self.get_more(max_await_ms)
        return out

    def close(self):
        try:
            if self.id:
                self.db.command({"killCursors": self.ns.split(".", 1)[1],
                                 "cursors": [Int64(self.id)]},
                                session=self.session)
        except pymongo.errors.PyMongoError:
            pass
        finally:
            self.id = 0
            self.session.end_session()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def operation_time_of(client, fn):
    """Run fn(session) and return the session's operationTime after it."""
    with client.start_session() as s:
        fn(s)
        return s.operation_time
