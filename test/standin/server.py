"""Sockets, threads and main(): the stand-in's process.

Rules of this file:
- One thread per connection; every command that touches data holds
  server.oplog.lock (see commands.py).
- `ready` is printed (and flushed) on stdout once every listening socket
  (--port, and each --router-port of a --mongos) accepts connections, so scripts never sleep; SIGTERM and SIGINT exit 0.
- A malformed message gets an error reply when the frame can still be
  trusted, else the connection is closed; the server itself never stops
  because of a client.
"""

import argparse
import datetime
import gc
import os
import signal
import socket
import sys
import threading
import time
import traceback

from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from . import commands, cursors, failpoints, storage, transactions, wire
from .errors import CommandError

try:
    from . import oplog as oplog_module
except ImportError:
    oplog_module = None
try:
    from . import changestream as changestream_module
except ImportError:
    changestream_module = None

DEFAULT_OPLOG_EVENTS = 100000


class _MemoryClock:
    """Used only when oplog.py is absent: a logical clock with no history
    and no persistence."""

    def __init__(self, max_events, dbpath=None):
        self.lock = threading.Condition()
        self._secs = int(datetime.datetime.utcnow().timestamp())
        self._inc = 0

    def _tick(self):
        now = int(datetime.datetime.utcnow().timestamp())
        if now > self._secs:
            self._secs, self._inc = now, 0
        self._inc += 1
        return Timestamp(self._secs, self._inc)

    def cluster_time(self):
        return Timestamp(self._secs, max(self._inc, 1))

    def load(self):
        return iter(())

    def append(self, entries, lsid=None, txn_number=None):
        ts = self._tick()
        for i, e in enumerate(entries):
            e["ts"] = ts if lsid is not None else (ts if i == 0 else self._tick())
            ts = e["ts"]
        self.lock.notify_all()
        return ts


_current = []


def current_cluster_time():
    """The running server's cluster time ($$CLUSTER_TIME)."""
    return _current[0].oplog.cluster_time() if _current else Timestamp(0, 0)


class Connection:
    _ids = [0]
    _ids_lock = threading.Lock()

    def __init__(self, sock, peer, endpoint=None):
        self.sock = sock
        self.peer = peer
        self.endpoint = endpoint  # the address the client connected to
        with Connection._ids_lock:
            Connection._ids[0] += 1
            self.id = Connection._ids[0]
        self.user = None
        self.user_db = None
        self.sasl = None
        self.app_name = None


class Stats:
    """serverStatus' counters of one process: opcounters, metrics.commands,
    and (on a router) its transactions."""

    OPS = {"insert": "insert", "find": "query", "update": "update",
           "delete": "delete", "getMore": "getmore"}

    def __init__(self):
        self.lock = threading.Lock()
        self.opcounters = dict.fromkeys(
            ("insert", "query", "update", "delete", "getmore", "command"), 0)
        self.commands = {}        # name -> [total, failed]
        self.txn = dict.fromkeys(("totalStarted", "totalCommitted", "totalAborted"), 0)

    def count(self, name, body, failed):
        with self.lock:
            c = self.commands.setdefault(name, [0, 0])
            c[0] += 1
            if failed:
                c[1] += 1
            op = self.OPS.get(name, "command")
            n = 1
            if name in ("insert", "update", "delete"):
                items = body.get({"insert": "documents", "update": "updates",
                                  "delete": "deletes"}[name])
                n = len(items) if isinstance(items, list) else 0
            self.opcounters[op] += n

    def transaction(self, what):
        with self.lock:
            self.txn[what] += 1


class Endpoint:
    """One listening address and what a real deployment keeps per process
    behind it.  The replica set has one; with --mongos each --router-port
    adds a router of the same cluster: same data, oplog and shard-side
    transactions, but its own cursors, its own transaction routing state
    (mongos.py), its own processId, fail points and serverStatus counters.
    A router can be taken away (stop: listener and connections closed, as
    when its process exits) and brought back (start: a new process on the
    same port)."""

    def __init__(self, server, port):
        self.server = server
        self.port = port
        self.listener = None
        self.lock = threading.Lock()
        self.conns = set()
        self.reset()

    def reset(self):
        self.process_id = ObjectId()
        self.started = time.monotonic()
        self.cursors = cursors.Registry(router=self.server.mongos)
        self.failpoints = failpoints.FailPoints()
        self.txns = {}            # mongos: lsid key -> [txnNumber, state]
        self.stats = Stats()
        self.total_conns = 0

    @property
    def address(self):
        return "%s:%d" % (self.server.host, self.port)

    @property
    def up(self):
        return self.listener is not None

    def listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.server.bind_host, self.port))
            s.listen(128)
        except OSError:
            s.close()
            raise
        if self.port == 0:
            self.port = s.getsockname()[1]
        self.listener = s

    def serve(self):
        t = threading.Thread(target=self._accept, args=(self.listener,), daemon=True,
                             name="listen%d" % self.port)
        t.start()

    def _accept(self, listener):
        server = self.server
        while not server.shutdown.is_set() and self.listener is listener:
            try:
                sock, peer = listener.accept()
            except OSError:
                if server.shutdown.is_set() or self.listener is not listener:
                    break
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(sock, peer, self)
            with self.lock:
                self.conns.add(conn)
                self.total_conns += 1
            t = threading.Thread(target=server.handle, args=(conn,), daemon=True,
                                 name="conn%d" % conn.id)
            t.start()

    def forget(self, conn):
        with self.lock:
            self.conns.discard(conn)

    def stop(self):
        """The process goes away: no more connections, the open ones are
        closed (their clients see a network error), its cursors are gone
        and the transactions it was running are aborted on the shard (as a
        mongos shutting down does)."""
        listener, self.listener = self.listener, None
        if listener is not None:
            try:
                # wakes the accept() of the listening thread (Linux)
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self.lock:
            conns = list(self.conns)
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server = self.server
        with server.oplog.lock:
            for cid in list(self.cursors.cursors):
                self.cursors.close(cid)
            for key, (n, state) in self.txns.items():
                s = server.sessions.sessions.get(key)
                if state == "open" and s is not None and s.txn is not None and \
                        s.txn.txn_number == n and s.txn.state == "in_progress":
                    server.sessions.abort(s, n)
        server.log("router %s stopped" % self.address)

    def start(self):
        """A new process on the same port: fresh cursors and state."""
        self.listen()
        self.reset()
        self.serve()
        self.server.log("router %s started" % self.address)


class Server:
    def __init__(self, host, port, replset="rs0", dbpath=None,
                 oplog_size=DEFAULT_OPLOG_EVENTS, auth=None, log_file=None,
                 mongos=False, router_ports=()):
        self.bind_host = host
        # hello's hosts / me / primary: the address clients use
        self.host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        self.port = port
        self.replset = replset
        self.dbpath = dbpath
        self.auth = auth
        if auth is not None:
            auth.attach(dbpath)     # users and roles kept in dbpath
        self.mongos = mongos      # answer as a mongos router (mongos.py)
        self.log_fh = open(log_file, "a", buffering=1) if log_file else None
        self.store = storage.Store()
        if oplog_module is not None:
            self.oplog = oplog_module.Oplog(oplog_size, dbpath)
        else:
            if dbpath:
                self.log("oplog.py is missing: --dbpath gives no persistence")
            self.oplog = _MemoryClock(oplog_size, dbpath)
        self.changestream = changestream_module
        self.sessions = transactions.Sessions(self)
        self.shutdown = threading.Event()
        self.endpoints = [Endpoint(self, p) for p in [port] + list(router_ports)]
        _current[:] = [self]

    def log(self, msg, exc=False):
        line = "%s %s\n" % (datetime.datetime.utcnow().isoformat(timespec="milliseconds"),
                            msg)
        if exc:
            line += traceback.format_exc()
        if self.log_fh is not None:
            self.log_fh.write(line)
        elif exc:
            sys.stderr.write(line)

    def wait_shutdown(self, seconds):
        self.shutdown.wait(seconds)

    def replay(self):
        """Rebuild the store from the durable oplog (with --dbpath)."""
        n = 0
        with self.oplog.lock:
            for entry in self.oplog.load():
                self.store.apply_entry(entry)
                n += 1
        if n:
            self.log("replayed %d oplog entries from %s" % (n, self.dbpath))

    def endpoint(self, port):
        for ep in self.endpoints:
            if ep.port == port:
                return ep
        return None

    def serve_forever(self):
        for ep in self.endpoints:
            ep.serve()
        while not self.shutdown.is_set():
            self.shutdown.wait(0.5)

    # -- one connection ------------------------------------------------------
    def handle(self, conn):
        sock = conn.sock
        self.log("connection %d from %s:%d" % (conn.id, conn.peer[0], conn.peer[1]))
        try:
            while not self.shutdown.is_set():
                try:
                    msg = wire.read_message(sock)
                except wire.ProtocolError as e:
                    self.log("connection %d: %s; closing" % (conn.id, e))
                    break
                if msg is None:
                    break
                request_id, op_code, data, header = msg
                out = self.handle_message(conn, request_id, op_code, data, header)
                if out is False:
                    break
                if out:
                    sock.sendall(b"".join(out))
        except (ConnectionError, OSError) as e:
            self.log("connection %d: %s" % (conn.id, e))
        except Exception:
            self.log("connection %d: internal error" % conn.id, exc=True)
        finally:
            try:
                sock.close()
            except OSError:
                pass
            if conn.endpoint is not None:
                conn.endpoint.forget(conn)
            self.log("connection %d closed" % conn.id)

    def handle_message(self, conn, request_id, op_code, data, header=b""):
        """Returns the frames to send, None for no reply, False to close."""
        if op_code == wire.OP_MSG:
            try:
                msg = wire.parse_op_msg(data, header)
            except wire.ProtocolError as e:
                self.log("connection %d: bad OP_MSG: %s" % (conn.id, e))
                reply = commands.error_reply(
                    self, CommandError(9, "FailedToParse", "invalid OP_MSG: %s" % e))
                return wire.frame_op_msg(request_id, reply)
            seq = {k: v for k, v in msg.sequences.items()}
            body = msg.body
            for ident, pairs in seq.items():
                if ident in body:
                    reply = commands.error_reply(self, CommandError(
                        40413, "Location40413",
                        "Duplicate field %s in OP_MSG body and document sequence" % ident))
                    return wire.frame_op_msg(request_id, reply)
                body[ident] = [d for _r, d in pairs]
            reply = commands.dispatch(self, conn, body, seq)
            if reply is None:
                return False
            if msg.flags & wire.MSG_MORE_TO_COME:
                return None
            return wire.frame_op_msg(request_id, reply)
        if op_code == wire.OP_QUERY:
            try:
                q = wire.parse_op_query(data)
            except wire.ProtocolError as e:
                self.log("connection %d: bad OP_QUERY: %s" % (conn.id, e))
                reply = commands.error_reply(
                    self, CommandError(9, "FailedToParse", "invalid OP_QUERY: %s" % e))
                return wire.frame_op_reply(request_id, [b"".join(reply)])
            body = q.query
            if "$query" in body and isinstance(body["$query"], dict):
                body = body["$query"]
            name = next(iter(body)) if body else None
            if not q.collection.endswith(".$cmd") or \
                    name not in ("hello", "isMaster", "ismaster"):
                reply = commands.error_reply(self, CommandError(
                    352, "UnsupportedOpQueryCommand",
                    "OP_QUERY is no longer supported. The client driver may require an "
                    "upgrade."))
                return wire.frame_op_reply(request_id, [b"".join(reply)])
            db = q.collection[:-len(".$cmd")]
            reply = commands.dispatch(self, conn, body, {}, legacy_db=db)
            if reply is None:
                return False
            return wire.frame_op_reply(request_id, [b"".join(reply)])
        self.log("connection %d: unsupported opcode %d; closing" % (conn.id, op_code))
        return False

    def stop(self):
        self.shutdown.set()
        for ep in self.endpoints:
            listener, ep.listener = ep.listener, None
            try:
                if listener is not None:
                    listener.close()
            except OSError:
                pass
        close = getattr(self.oplog, "close", None)
        if close is not None:
            with self.oplog.lock:
                close()


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="mongo-standin",
        description="A MongoDB-wire stand-in: a one-node replica set for tests.")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--dbpath", help="data directory (default: in memory)")
    ap.add_argument("--replset", default="rs0")
    ap.add_argument("--oplog-size", type=int, default=DEFAULT_OPLOG_EVENTS,
                    metavar="EVENTS", help="change events kept (default %(default)s)")
    ap.add_argument("--auth", metavar="USER:PASSWORD",
                    help="require SCRAM-SHA-256 authentication as this user")
    ap.add_argument("--log", metavar="FILE", help="append a log to FILE")
    ap.add_argument("--mongos", action="store_true",
                    help="answer as a mongos router in front of one shard (the replica "
                    "set named by --replset)")
    ap.add_argument("--router-port", type=int, action="append", default=[],
                    metavar="N", help="with --mongos: another router of the same "
                    "cluster on port N (repeatable); each router keeps its own "
                    "cursors and transactions, as separate mongos processes do")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    auth = None
    if args.auth is not None:
        from . import auth as auth_module
        try:
            auth = auth_module.from_option(args.auth)
        except ValueError as e:
            sys.stderr.write("mongo-standin: %s\n" % e)
            return 2
    if args.oplog_size < 1:
        sys.stderr.write("mongo-standin: --oplog-size must be at least 1\n")
        return 2
    if args.router_port and not args.mongos:
        sys.stderr.write("mongo-standin: --router-port needs --mongos (a replica set "
                         "member listens on one port)\n")
        return 2
    ports = [p for p in [args.port] + args.router_port if p != 0]
    if len(set(ports)) != len(ports):
        sys.stderr.write("mongo-standin: --port and --router-port name the same port "
                         "twice\n")
        return 2
    if args.dbpath:
        os.makedirs(args.dbpath, exist_ok=True)
    server = Server(args.host, args.port, args.replset, args.dbpath, args.oplog_size,
                    auth, args.log, args.mongos, args.router_port)

    def on_signal(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The store holds millions of small dicts that never form cycles: keep
    # the cyclic collector from rescanning them all the time.
    gc.set_threshold(100000, 50, 1000)
    try:
        server.replay()
        gc.freeze()
        for ep in server.endpoints:
            try:
                ep.listen()
            except OSError as e:
                sys.stderr.write("mongo-standin: cannot listen on %s:%d: %s\n"
                                 % (args.host, ep.port, e.strerror or e))
                return 1
        server.port = server.endpoints[0].port
        server.log("listening on %s, %s %s" % (
            ", ".join("%s:%d" % (args.host, ep.port) for ep in server.endpoints),
            "mongos of one shard" if args.mongos else "replica set", args.replset))
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.stop()
        server.log("shut down")
    return 0
