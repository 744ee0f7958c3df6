"""Command dispatch, hello/isMaster, CRUD and admin commands, the reply
envelope.

Rules of this file:
- Every command name not in HANDLERS answers CommandNotFound (59); an
  option the stand-in cannot honour answers an error, never a silent
  success.
- Handlers run with server.oplog.lock held and see collections through a
  view (transactions.StoreView or TxnView); writes append their oplog
  entries to the view, and dispatch() hands them to server.oplog.append()
  before the reply is sent.
- Replies carry operationTime and $clusterTime like a replica-set member;
  errors are {ok: 0, errmsg, code, codeName, errorLabels?}.
- Cursor replies are built from cached document bytes (cursors.RawReply).
"""

import copy
import datetime
import os
import time

from bson.binary import Binary
from bson.int64 import Int64
from bson.objectid import ObjectId

from . import authz, cursors, mongos, storage, timeseries, views, wire
from . import lookup  # noqa: F401  ($lookup with let and pipeline)
from .cursors import RawReply, raw_cursor_reply
from .errors import CommandError
from . import errors as E
from .storage import id_key
from .transactions import StoreView, TxnView

MAX_WIRE_VERSION = 17          # MongoDB 6.0
SERVER_VERSION = "6.0.0"

# Commands a connection may run before it authenticates (as mongod:
# these have requiresAuth() == false).
NO_AUTH = {"hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo",
           "saslStart", "saslContinue", "logout", "endSessions",
           "getnonce", "authenticate", "connectionStatus", "configureFailPoint"}

# Commands that may run inside a multi-document transaction.
IN_TXN = {"find", "insert", "update", "delete", "findAndModify", "findandmodify",
          "aggregate", "distinct", "getMore", "killCursors", "create",
          "createIndexes", "commitTransaction", "abortTransaction"}

# Commands that never touch data: they run without the data lock.
NO_LOCK = {"ping", "saslStart", "saslContinue", "configureFailPoint",
           "buildInfo", "buildinfo", "logout", "hello", "isMaster", "ismaster",
           "connectionStatus", "startSession", "serverStatus",
           "standinRouter"} | set(authz.HANDLERS)

WRITE_COMMANDS = {"insert", "update", "delete", "findAndModify", "findandmodify"}
# commands whose oplog entries may be writes to a time series collection
_TS_MARKED = {"insert", "update", "delete", "create", "drop", "dropDatabase", "collMod",
              "createIndexes", "dropIndexes"}


class Context:
    """What a handler needs: the server, the connection, the command."""

    __slots__ = ("server", "conn", "body", "name", "db", "seq", "session",
                 "view", "txn", "op_time")

    def __init__(self, server, conn, body, name, db, seq):
        self.server = server
        self.conn = conn
        self.body = body
        self.name = name
        self.db = db
        self.seq = seq            # {identifier: [(raw, dict)]}
        self.session = None
        self.view = None
        self.txn = None
        self.op_time = None


def cluster_time_doc(ts):
    return {"clusterTime": ts,
            "signature": {"hash": Binary(b"\x00" * 20), "keyId": Int64(0)}}


def envelope(server, reply, op_time=None):
    """Encode a handler reply with operationTime and $clusterTime."""
    ts = server.oplog.cluster_time()
    tail = {"operationTime": op_time or ts, "$clusterTime": cluster_time_doc(ts)}
    if isinstance(reply, RawReply):
        elements = reply.parts + [cursors.encoded_elements(tail)]
        return cursors.raw_document(elements)
    reply.update(tail)
    return [wire.encode(reply)]


def error_reply(server, err, op_time=None):
    return envelope(server, err.to_reply(), op_time)


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------

SLOW_MS = 200


def dispatch(server, conn, body, seq, legacy_db=None):
    """Run one command; returns the encoded reply (a list of byte strings),
    or None when the connection must be closed without a reply.  With --log,
    failed and slow commands are logged."""
    if server.log_fh is None:
        return _dispatch(server, conn, body, seq, legacy_db)
    start = time.monotonic()
    reply = _dispatch(server, conn, body, seq, legacy_db)
    ms = (time.monotonic() - start) * 1000
    name = next(iter(body)) if body else "?"
    if reply is None:
        server.log("conn%d %s: connection closed (fail point)" % (conn.id, name))
    elif ms >= SLOW_MS and name not in ("hello", "isMaster", "ismaster", "getMore"):
        server.log("conn%d %s on %s: %.0f ms" % (conn.id, name, body.get("$db"), ms))
    return reply


def _dispatch(server, conn, body, seq, legacy_db=None):
    if not body:
        return error_reply(server, CommandError(*E.FAILED_TO_PARSE,
                                                "empty command document"))
    name = next(iter(body))
    db = body.get("$db", legacy_db)
    if not isinstance(db, str):
        return error_reply(server, CommandError(
            *E.FAILED_TO_PARSE, "the $db field is missing or not a string"))
    ctx = Context(server, conn, body, name, db, seq)
    handler = HANDLERS.get(name)
    try:
        if handler is None:
            raise CommandError(*E.COMMAND_NOT_FOUND, "no such command: '%s'" % name)
        if server.auth is not None and not conn.user and name not in NO_AUTH:
            raise CommandError(*E.UNAUTHORIZED,
                               "Command %s requires authentication" % name)
        if server.auth is not None and conn.user:
            authz.check(ctx)        # the user's privileges (authz.py)
        if server.mongos:
            mongos.check(ctx)
        if name in ("hello", "isMaster", "ismaster") and isinstance(body.get("client"), dict):
            # the handshake's metadata names the application before any fail
            # point with an appName looks at it
            app = body["client"].get("application")
            if isinstance(app, dict) and isinstance(app.get("name"), str):
                conn.app_name = app["name"]
        # failCommand: may close, block, or fail this command.
        fp = conn.endpoint.failpoints.check(name, conn)
        extra_wce = None
        if fp is not None:
            if fp.get("closeConnection"):
                return None
            if fp.get("blockConnection"):
                time.sleep(max(0, int(fp.get("blockTimeMS", 0))) / 1000.0)
            if "errorCode" in fp:
                code = int(fp["errorCode"])
                labels = fp.get("errorLabels")
                if labels is None:
                    labels = _default_labels(ctx, code)
                raise CommandError(code, E.code_name(code),
                                   "Failing command via 'failCommand' failpoint",
                                   labels=labels)
            extra_wce = fp.get("writeConcernError")
        if name in NO_LOCK:
            reply = handler(ctx)
        else:
            with server.oplog.lock:
                try:
                    reply = _run_locked(ctx, handler)
                finally:
                    if server.mongos:
                        mongos.settle(ctx)
        if extra_wce is not None and isinstance(reply, dict):
            reply["writeConcernError"] = extra_wce
            if "errorLabels" in extra_wce:
                reply.setdefault("errorLabels", []).extend(extra_wce["errorLabels"])
        if reply is None:
            return None
        if server.mongos:
            token = mongos.recovery_token(ctx)
            if token is not None:
                if isinstance(reply, RawReply):
                    reply.parts.append(cursors.encoded_elements({"recoveryToken": token}))
                else:
                    reply["recoveryToken"] = token
        conn.endpoint.stats.count(name, body, False)
        return envelope(server, reply, ctx.op_time)
    except CommandError as e:
        if handler is not None:
            conn.endpoint.stats.count(name, body, True)
        if server.log_fh is not None:
            server.log("conn%d %s on %s: error %d %s: %s" % (conn.id, name, db, e.code,
                                                          e.code_name, e.errmsg))
        return error_reply(server, e, ctx.op_time)
    except Exception as e:  # a bug: answer it, never kill the connection
        conn.endpoint.stats.count(name, body, True)
        server.log("internal error in %s: %r" % (name, e), exc=True)
        return error_reply(server, CommandError(1, "InternalError",
                                                "%s: %s" % (type(e).__name__, e)))


def _default_labels(ctx, code):
    # mongod adds RetryableWriteError to retryable errors of retryable writes
    # (commands with txnNumber outside a transaction).
    retryable = {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435,
                 13436, 63, 150, 134}
    body = ctx.body
    in_txn = body.get("autocommit") is False
    if in_txn and ctx.name not in ("commitTransaction", "abortTransaction") and \
            (code in retryable or code in (112, 24, 46)):
        # WriteConflict, LockTimeout, LockBusy and network-ish errors in a
        # transaction are transient
        return ["TransientTransactionError"]
    if code in retryable and "txnNumber" in body and \
            body.get("autocommit") is None and ctx.name in WRITE_COMMANDS:
        return ["RetryableWriteError"]
    if code in retryable and ctx.name in ("commitTransaction", "abortTransaction"):
        return ["RetryableWriteError"]
    return []


def _run_locked(ctx, handler):
    server = ctx.server
    body = ctx.body
    lsid = body.get("lsid")
    session = server.sessions.get(lsid) if lsid is not None else None
    ctx.session = session
    txn_number = body.get("txnNumber")
    autocommit = body.get("autocommit")
    view = None
    if session is not None and txn_number is not None and autocommit is not None:
        if autocommit is not False:
            raise CommandError(*E.INVALID_OPTIONS,
                               "Specifying autocommit=true is not allowed.")
        if ctx.name not in IN_TXN:
            raise CommandError(263, "OperationNotSupportedInTransaction",
                               "Cannot run '%s' in a multi-document transaction."
                               % ctx.name)
        if server.mongos:
            # the router's own state first: it answers a statement of a
            # transaction another router runs without reaching the shard
            reply = mongos.route_transaction(ctx, session, int(txn_number))
            if reply is not None:
                return reply
        if ctx.name not in ("commitTransaction", "abortTransaction"):
            txn = server.sessions.begin_or_continue(
                session, int(txn_number), bool(body.get("startTransaction")))
            ctx.txn = txn
            view = TxnView(server.store, txn)
    elif body.get("startTransaction"):
        raise CommandError(*E.INVALID_OPTIONS,
                           "txnNumber and autocommit:false are required to start a "
                           "transaction")
    if view is None:
        view = StoreView(server.store)
    ctx.view = view
    ctx.conn.endpoint.cursors.owner = authz.cursor_owner(ctx)
    retryable = (session is not None and txn_number is not None and
                 autocommit is None and ctx.name in WRITE_COMMANDS)
    if retryable and session.retry_number == int(txn_number) and \
            session.retry_reply is not None:
        return copy.deepcopy(session.retry_reply)
    ts_before = None
    if ctx.name in _TS_MARKED:
        ts_before = timeseries.names(view, ctx.db)
    try:
        timeseries.check(ctx)
        reply = views.check(ctx, _pipeline_result)
        if reply is None:
            reply = handler(ctx)
    except CommandError:
        # mongod aborts a transaction when one of its commands fails
        if ctx.txn is not None and ctx.txn.state == "in_progress":
            server.sessions.abort(session, ctx.txn.txn_number)
        raise
    finally:
        if ctx.txn is None and view.entries:
            if ts_before is not None:
                timeseries.mark(view.entries, ctx.db, ts_before, view)
            ctx.op_time = server.oplog.append(view.entries)
    if ctx.txn is not None and isinstance(reply, dict) and reply.get("writeErrors") \
            and ctx.txn.state == "in_progress":
        server.sessions.abort(session, ctx.txn.txn_number)
    if retryable and isinstance(reply, dict):
        session.retry_number = int(txn_number)
        session.retry_reply = copy.deepcopy(reply)
    return reply


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def _coll_name(ctx, key=None):
    v = ctx.body.get(key or ctx.name)
    if not isinstance(v, str) or not v:
        raise CommandError(*E.INVALID_NAMESPACE,
                           "collection name has invalid type %s"
                           % type(v).__name__)
    storage.check_names(ctx.db, v)
    return v


def _int(body, key, default=None, minimum=None):
    v = body.get(key, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise CommandError(*E.TYPE_MISMATCH,
                           "BSON field '%s' is the wrong type '%s', expected types "
                           "'[long, int, decimal, double']" % (key, type(v).__name__))
    v = int(v)
    if minimum is not None and v < minimum:
        raise CommandError(*E.BAD_VALUE, "%s value must be >= %d, actual value '%d'"
                           % (key, minimum, v))
    return v


def _doc_arg(body, key):
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise CommandError(*E.TYPE_MISMATCH,
                           "BSON field '%s' is the wrong type '%s', expected type "
                           "'object'" % (key, _type_name(v)))
    return v


def _type_name(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def _match_pairs(coll, flt):
    """Stored [dict, raw] pairs of coll matching flt, in natural order."""
    if coll is None:
        return []
    pred = storage.compile_filter(flt)
    if pred is None:
        return list(coll.docs.values())
    candidates = _id_candidates(coll, flt)
    if candidates is not None:
        return [p for p in candidates if pred(p[0])]
    return [p for p in coll.docs.values() if pred(p[0])]


def _id_candidates(coll, flt):
    """The only documents a filter with a top-level _id equality or $in on
    scalar values can match (looked up by key, in _id order), or None."""
    if not isinstance(flt, dict) or "_id" not in flt:
        return None
    cond = flt["_id"]
    if isinstance(cond, dict):
        if len(cond) != 1:
            return None
        (op, arg), = cond.items()
        if op == "$eq":
            values = [arg]
        elif op == "$in" and isinstance(arg, list):
            values = arg
        else:
            return None
    else:
        values = [cond]
    for v in values:
        if isinstance(v, (dict, list)) or type(v).__name__ in ("Regex", "Pattern"):
            return None
    docs = coll.docs
    found = [docs[k] for k in {id_key(v) for v in values} if k in docs]
    if len(found) > 1:
        # as mongod's scan of the _id index: in _id order
        found = storage.sort_docs(found, {"_id": 1}, get=lambda p: p[0])
    return found


def _now():
    return datetime.datetime.utcnow()


def _entry(op, coll, **kw):
    e = {"op": op, "db": coll.db, "coll": coll.name, "wall": _now()}
    if getattr(coll, "shard_key", None) is not None and "key" in kw:
        # a sharded collection's documentKey: the shard key, then _id
        kw["key"] = mongos.document_key(coll.shard_key, kw.get("pre") or kw.get("doc"))
    e.update(kw)
    return e


def _validate(coll, doc):
    """Enforce a collection's validator (query-operator validators;
    validationAction "error" and validationLevel other than "off")."""
    v = coll.options.get("validator")
    if not v or coll.options.get("validationLevel") == "off" or \
            coll.options.get("validationAction") == "warn":
        return
    if not storage._filter_applies(v, doc):
        raise CommandError(121, "DocumentValidationFailure", "Document failed validation",
                           extra={"errInfo": {"failingDocumentId": doc.get("_id"),
                                              "details": {}}})


def _check_validator(v):
    if v is None:
        return
    if not isinstance(v, dict):
        raise CommandError(*E.TYPE_MISMATCH, "'validator' option must be an object")
    if "$jsonSchema" in v:
        raise CommandError(238, "NotImplemented",
                           "the stand-in does not enforce $jsonSchema validators")
    for k in v:
        if k in ("$where", "$near", "$nearSphere", "$text"):
            raise CommandError(*E.BAD_VALUE, "%s is not allowed inside of a validator" % k)
    try:
        storage._filter_applies(v, {})
    except CommandError as e:
        raise CommandError(*E.BAD_VALUE if e.code == 238 else (e.code, e.code_name),
                           "invalid validator: %s" % e.errmsg)


def _pre_images(coll):
    cs = coll.options.get("changeStreamPreAndPostImages")
    return bool(isinstance(cs, dict) and cs.get("enabled"))


# ---------------------------------------------------------------------------
# Handshake and server information
# ---------------------------------------------------------------------------

def cmd_hello(ctx):
    server = ctx.server
    body = ctx.body
    conn = ctx.conn
    # Awaitable hello (streaming SDAM): answer when the topology changes
    # (never, for a one-node set) or after maxAwaitTimeMS.
    if "topologyVersion" in body and "maxAwaitTimeMS" in body:
        wait = max(0, int(body["maxAwaitTimeMS"])) / 1000.0
        server.wait_shutdown(wait)
    if "client" in body and isinstance(body["client"], dict):
        app = body["client"].get("application")
        if isinstance(app, dict):
            conn.app_name = app.get("name")
    if server.mongos:
        reply = mongos.hello(ctx, ctx.name, MAX_WIRE_VERSION)
        _hello_auth(ctx, reply)
        return reply
    me = "%s:%d" % (server.host, server.port)
    ts = server.oplog.cluster_time()
    wall = datetime.datetime.utcnow()
    reply = {}
    if ctx.name == "hello":
        reply["isWritablePrimary"] = True
    else:
        reply["ismaster"] = True
    if body.get("helloOk"):
        reply["helloOk"] = True
    reply.update({
        "topologyVersion": {"processId": conn.endpoint.process_id, "counter": Int64(0)},
        "hosts": [me],
        "setName": server.replset,
        "setVersion": 1,
        "secondary": False,
        "primary": me,
        "me": me,
        "electionId": ObjectId("7fffffff0000000000000001"),
        "lastWrite": {"opTime": {"ts": ts, "t": Int64(1)}, "lastWriteDate": wall,
                      "majorityOpTime": {"ts": ts, "t": Int64(1)},
                      "majorityWriteDate": wall},
        "maxBsonObjectSize": wire.MAX_BSON_OBJECT_SIZE,
        "maxMessageSizeBytes": wire.MAX_MESSAGE_BYTES,
        "maxWriteBatchSize": 100000,
        "localTime": wall,
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": conn.id,
        "minWireVersion": 0,
        "maxWireVersion": MAX_WIRE_VERSION,
        "readOnly": False,
        "ok": 1.0,
    })
    _hello_auth(ctx, reply)
    return reply


def _hello_auth(ctx, reply):
    server = ctx.server
    body = ctx.body
    conn = ctx.conn
    if server.auth is not None:
        mechs = body.get("saslSupportedMechs")
        if isinstance(mechs, str):
            db, user = mechs.split(".", 1) if "." in mechs else ("admin", mechs)
            if server.auth.has_user(user, db):
                reply["saslSupportedMechs"] = ["SCRAM-SHA-256"]
        spec = body.get("speculativeAuthenticate")
        if isinstance(spec, dict):
            try:
                reply["speculativeAuthenticate"] = server.auth.sasl_start(conn, spec)
            except CommandError:
                pass
    return reply


def cmd_ping(ctx):
    return {"ok": 1.0}


def cmd_build_info(ctx):
    return {"version": SERVER_VERSION, "gitVersion": "0" * 40,
            "versionArray": [6, 0, 0, 0], "bits": 64, "debug": False,
            "maxBsonObjectSize": wire.MAX_BSON_OBJECT_SIZE, "modules": [],
            "allocator": "system", "javascriptEngine": "none",
            "sysInfo": "deprecated", "storageEngines": ["wiredTiger"],
            "openssl": {"running": "disabled"}, "ok": 1.0}


def cmd_list_databases(ctx):
    if ctx.db != "admin":
        raise CommandError(*E.UNAUTHORIZED,
                           "listDatabases may only be run against the admin database.")
    flt = _doc_arg(ctx.body, "filter")
    out = []
    total = 0
    name_only = bool(ctx.body.get("nameOnly"))
    privs = authz.current_privileges(ctx) \
        if ctx.body.get("authorizedDatabases") is not False else None
    if privs is not None and not authz.may_see_database(privs, None) and \
            ctx.body.get("authorizedDatabases") is False:
        raise authz.unauthorized(ctx)
    for name in sorted(ctx.server.store.dbs):
        if not authz.may_see_database(privs, name):
            continue
        colls = ctx.server.store.dbs[name]
        size = 0 if name_only else sum(len(storage.raw_of(p)) for c in colls.values()
                                       for p in c.docs.values())
        entry = {"name": name, "sizeOnDisk": Int64(size), "empty": size == 0}
        if flt and not storage._filter_applies(flt, entry):
            continue
        total += size
        out.append({"name": name} if ctx.body.get("nameOnly") else entry)
    reply = {"databases": out, "ok": 1.0}
    if not ctx.body.get("nameOnly"):
        reply["totalSize"] = Int64(total)
        reply["totalSizeMb"] = Int64(total // (1024 * 1024))
    return reply


def _coll_info(c):
    if views.is_view(c):
        return views.coll_info(c)
    return {"name": c.name, "type": "collection", "options": dict(c.options),
            "info": {"readOnly": False, "uuid": c.uuid},
            "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}


def cmd_list_collections(ctx):
    flt = _doc_arg(ctx.body, "filter")
    name_only = bool(ctx.body.get("nameOnly"))
    entries = []
    for name, c in ctx.view.collections(ctx.db).items():
        if timeseries.is_ts(c):
            entries.extend(timeseries.coll_infos(c))
        else:
            entries.append(_coll_info(c))
    infos = []
    privs = authz.current_privileges(ctx) if ctx.body.get("authorizedCollections") \
        else None
    for info in sorted(entries, key=lambda i: i["name"]):
        if not authz.may_see_collection(privs, ctx.db, info["name"]):
            continue
        if name_only:
            # mongod matches the filter against what it returns
            info = {"name": info["name"], "type": info["type"]}
        if flt and not storage._filter_applies(flt, info):
            continue
        infos.append(info)
    ns = "%s.$cmd.listCollections" % ctx.db
    return _cursor_reply(ctx, ns, infos, wire.encode,
                         _batch_size(ctx.body.get("cursor")))


def _batch_size(cursor_opt):
    if cursor_opt is None:
        return None
    if not isinstance(cursor_opt, dict):
        raise CommandError(*E.TYPE_MISMATCH, "cursor field must be missing or an object")
    bs = cursor_opt.get("batchSize")
    if bs is None:
        return None
    if isinstance(bs, bool) or not isinstance(bs, (int, float)) or bs < 0:
        raise CommandError(*E.BAD_VALUE, "batchSize must be a non-negative number")
    return int(bs)


def _cursor_reply(ctx, ns, items, to_raw=None, batch_size=None, limit=0,
                  single_batch=False):
    """Register a cursor over items and answer its first batch."""
    cur = cursors.Cursor(ns, items, to_raw, limit,
                         lsid=ctx.session.key if ctx.session else None)
    batch = cur.next_batch(batch_size, first=True)
    cid = 0
    if not cur.exhausted() and not single_batch:
        cid = ctx.conn.endpoint.cursors.register(cur)
    return raw_cursor_reply(cid, ns, batch, first=True)


# ---------------------------------------------------------------------------
# Collections and databases
# ---------------------------------------------------------------------------

_CREATE_OPTIONS = {"capped", "size", "max", "validator", "validationLevel",
                   "validationAction", "changeStreamPreAndPostImages", "collation",
                   "storageEngine", "indexOptionDefaults", "viewOn", "pipeline",
                   "timeseries", "expireAfterSeconds", "clusteredIndex",
                   "comment", "encryptedFields"}
_GENERIC = {"$db", "lsid", "txnNumber", "autocommit", "startTransaction",
            "writeConcern", "readConcern", "$clusterTime", "$readPreference",
            "maxTimeMS", "comment", "apiVersion", "apiStrict",
            "apiDeprecationErrors", "$audit", "$client"}


def cmd_create(ctx):
    name = _coll_name(ctx)
    options = {}
    for k, v in ctx.body.items():
        if k == ctx.name or k in _GENERIC:
            continue
        if k not in _CREATE_OPTIONS:
            raise CommandError(40415, "Location40415",
                               "BSON field 'create.%s' is an unknown field." % k)
        if k in ("encryptedFields", "clusteredIndex"):
            raise CommandError(238, "NotImplemented",
                               "the stand-in does not support the create option '%s'" % k)
        options[k] = v
    if "timeseries" in options:
        ctx.view.create(ctx.db, name, timeseries.create_options(ctx, name, options))
        return {"ok": 1.0}
    if "viewOn" in options or "pipeline" in options:
        ctx.view.create(ctx.db, name, views.create_options(ctx, options))
        return {"ok": 1.0}
    _check_pre_images(options.get("changeStreamPreAndPostImages"))
    _check_validator(options.get("validator"))
    ctx.view.create(ctx.db, name, options)
    return {"ok": 1.0}


def _check_pre_images(v):
    if v is None:
        return
    if not isinstance(v, dict) or set(v) != {"enabled"} or \
            not isinstance(v["enabled"], bool):
        raise CommandError(*E.TYPE_MISMATCH if not isinstance(v, dict) else E.FAILED_TO_PARSE,
                           "changeStreamPreAndPostImages must be {enabled: <bool>}")


def cmd_coll_mod(ctx):
    name = _coll_name(ctx)
    c = ctx.view.get(ctx.db, name)
    if c is None:
        raise CommandError(*E.NAMESPACE_NOT_FOUND, "ns does not exist: %s.%s"
                           % (ctx.db, name))
    changes = {}
    for k, v in ctx.body.items():
        if k == ctx.name or k in _GENERIC:
            continue
        if k not in ("changeStreamPreAndPostImages", "validator", "validationLevel",
                     "validationAction", "expireAfterSeconds"):
            raise CommandError(*E.INVALID_OPTIONS if k != "index" else (238, "NotImplemented"),
                               "unknown or unsupported collMod option: %s" % k)
        changes[k] = v
    _check_pre_images(changes.get("changeStreamPreAndPostImages"))
    _check_validator(changes.get("validator"))
    if ctx.txn is not None:
        raise CommandError(263, "OperationNotSupportedInTransaction",
                           "Cannot run 'collMod' in a multi-document transaction.")
    c.options.update(changes)
    ctx.view.emit(_entry("collMod", c, options=changes))
    return {"ok": 1.0}


def cmd_drop(ctx):
    name = _coll_name(ctx)
    c = ctx.view.get(ctx.db, name)
    if c is None:
        raise CommandError(*E.NAMESPACE_NOT_FOUND, "ns not found")
    n = len(c.indexes)
    ctx.server.store.drop(ctx.db, name)
    ctx.view.emit(_entry("drop", c))
    return {"ns": "%s.%s" % (ctx.db, name), "nIndexesWas": n, "ok": 1.0}


def cmd_drop_database(ctx):
    storage.check_names(ctx.db)
    colls = ctx.server.store.collections(ctx.db)
    if colls:
        for name, c in sorted(colls.items()):
            ctx.view.emit(_entry("drop", c))
        ctx.server.store.drop_database(ctx.db)
        ctx.view.emit({"op": "dropDatabase", "db": ctx.db, "coll": None,
                       "wall": _now()})
    return {"dropped": ctx.db, "ok": 1.0}


def cmd_rename(ctx):
    if ctx.db != "admin":
        raise CommandError(*E.UNAUTHORIZED,
                           "renameCollection may only be run against the admin database.")
    src = ctx.body.get("renameCollection")
    dst = ctx.body.get("to")
    if not isinstance(src, str) or not isinstance(dst, str) or "." not in src \
            or "." not in dst:
        raise CommandError(*E.INVALID_NAMESPACE, "Invalid namespace specified")
    sdb, scoll = src.split(".", 1)
    ddb, dcoll = dst.split(".", 1)
    storage.check_names(sdb, scoll)
    storage.check_names(ddb, dcoll)
    store = ctx.server.store
    c = store.get(sdb, scoll)
    if c is None:
        raise CommandError(*E.NAMESPACE_NOT_FOUND, "Source collection %s does not exist"
                           % src)
    target = store.get(ddb, dcoll)
    if target is not None:
        if not ctx.body.get("dropTarget"):
            raise CommandError(*E.NAMESPACE_EXISTS, "target namespace exists")
        store.drop(ddb, dcoll)
        ctx.view.emit(_entry("drop", target))
    entry = _entry("rename", c, to={"db": ddb, "coll": dcoll})
    store.rename(sdb, scoll, ddb, dcoll)
    ctx.view.emit(entry)
    return {"ok": 1.0}


# ---------------------------------------------------------------------------
# Indexes
# ---------------------------------------------------------------------------

def cmd_create_indexes(ctx):
    name = _coll_name(ctx)
    specs = ctx.body.get("indexes")
    if not isinstance(specs, list) or not specs:
        raise CommandError(*E.BAD_VALUE, "Must specify at least one index to create")
    created = ctx.view.get(ctx.db, name) is None
    c = ctx.view.ensure(ctx.db, name)
    before = len(c.indexes)
    added = []
    for spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("key"), dict) \
                or not spec["key"]:
            raise CommandError(*E.FAILED_TO_PARSE, "index specification must have a "
                               "non-empty 'key' document")
        if "name" not in spec:
            raise CommandError(*E.FAILED_TO_PARSE,
                               "The 'name' field is a required property of an index "
                               "specification")
        spec = dict(spec)
        spec.setdefault("v", 2)
        spec = dict([("v", spec.pop("v")), ("key", spec.pop("key")),
                     ("name", spec.pop("name"))] + list(spec.items()))
        same = [i for i in c.indexes if i["name"] == spec["name"]]
        if same:
            if dict(same[0]["key"]) != dict(spec["key"]):
                raise CommandError(86, "IndexKeySpecsConflict",
                                   "An existing index has the same name as the "
                                   "requested index but a different key")
            continue
        for i in c.indexes:
            if list(dict(i["key"]).items()) == list(dict(spec["key"]).items()):
                raise CommandError(85, "IndexOptionsConflict",
                                   "Index already exists with a different name: %s"
                                   % i["name"])
        c.add_index(spec)
        added.append(spec)
    if added:
        ctx.view.emit(_entry("createIndexes", c, indexes=added))
    reply = {"numIndexesBefore": before, "numIndexesAfter": len(c.indexes),
             "createdCollectionAutomatically": created, "ok": 1.0}
    if not added:
        reply["note"] = "all indexes already exist"
    return reply


def cmd_list_indexes(ctx):
    name = _coll_name(ctx)
    c = ctx.view.get(ctx.db, name)
    if c is None:
        raise CommandError(*E.NAMESPACE_NOT_FOUND, "ns does not exist: %s.%s"
                           % (ctx.db, name))
    return _cursor_reply(ctx, "%s.%s" % (ctx.db, name), [dict(i) for i in c.indexes],
                         wire.encode, _batch_size(ctx.body.get("cursor")))


def cmd_drop_indexes(ctx):
    name = _coll_name(ctx)
    c = ctx.view.get(ctx.db, name)
    if c is None:
        raise CommandError(*E.NAMESPACE_NOT_FOUND, "ns not found %s.%s" % (ctx.db, name))
    which = ctx.body.get("index")
    n = len(c.indexes)
    if which == "*":
        names = [i["name"] for i in c.indexes[1:]]
    elif isinstance(which, str):
        names = [which]
    elif isinstance(which, list):
        names = list(which)
    elif isinstance(which, dict):
        names = [i["name"] for i in c.indexes if dict(i["key"]) == which]
        if not names:
            raise CommandError(27, "IndexNotFound",
                               "can't find index with key: %s" % which)
    else:
        raise CommandError(*E.TYPE_MISMATCH, "index must be a string, array or object")
    for nm in names:
        if nm == "_id_":
            raise CommandError(72, "InvalidOptions", "cannot drop _id index")
        if not any(i["name"] == nm for i in c.indexes):
            raise CommandError(27, "IndexNotFound", "index not found with name [%s]" % nm)
    for nm in names:
        c.drop_index(nm)
    if names:
        ctx.view.emit(_entry("dropIndexes", c, indexes=names))
    return {"nIndexesWas": n, "ok": 1.0}


# ---------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------

def _write_error(index, err):
    d = {"index": index, "code": err.code, "errmsg": err.errmsg}
    if err.extra:
        d.update(err.extra)
    return d


def _docs_arg(ctx, key):
    """(dicts, raws) of a write's documents: body array or document sequence."""
    if key in ctx.seq:
        pairs = ctx.seq[key]
        return [d for _r, d in pairs], [r for r, _d in pairs]
    v = ctx.body.get(key)
    if not isinstance(v, list):
        raise CommandError(*E.FAILED_TO_PARSE if v is None else E.TYPE_MISMATCH,
                           "BSON field '%s.%s' is missing or not an array"
                           % (ctx.name, key))
    return v, [None] * len(v)


def _write_error_or_raise(i, e):
    """The writeErrors entry for statement i; WriteConflict is a command
    error in mongod, not a write error, so it propagates."""
    if e.code == E.WRITE_CONFLICT[0]:
        raise e
    return _write_error(i, e)


def _with_write_errors(reply, errors):
    if errors:
        reply["writeErrors"] = errors
    return reply


def cmd_insert(ctx):
    name = _coll_name(ctx)
    docs, raws = _docs_arg(ctx, "documents")
    ordered = ctx.body.get("ordered", True)
    c = ctx.view.ensure(ctx.db, name)
    pre = _pre_images(c)
    n = 0
    errors = []
    wall = _now()
    emit = ctx.view.emit
    before_write = ctx.view.before_write
    validated = bool(c.options.get("validator")) and \
        not ctx.body.get("bypassDocumentValidation")
    ns_db, ns_coll = c.db, c.name
    is_ts = timeseries.is_ts(c)
    for i, (doc, raw) in enumerate(zip(docs, raws)):
        try:
            if not isinstance(doc, dict):
                raise CommandError(*E.TYPE_MISMATCH, "documents must be objects")
            if "_id" not in doc:
                doc = dict([("_id", ObjectId())] + list(doc.items()))
                raw = None
            elif next(iter(doc)) != "_id":
                doc = dict([("_id", doc["_id"])] +
                           [(k, v) for k, v in doc.items() if k != "_id"])
                raw = None
            _id = doc["_id"]
            if isinstance(_id, list):
                raise CommandError(2, "BadValue", "can't use an array for _id")
            if raw is not None and len(raw) > wire.MAX_BSON_OBJECT_SIZE:
                raise CommandError(10334, "BSONObjectTooLarge", "object to insert too large")
            key = id_key(_id)
            if is_ts:
                timeseries.check_measurement(c, doc)
            if validated:
                _validate(c, doc)
            before_write(c, key)
            c.insert(doc, raw, key)
            emit({"op": "insert", "db": ns_db, "coll": ns_coll, "wall": wall,
                  "key": {"_id": _id} if getattr(c, "shard_key", None) is None else
                  mongos.document_key(c.shard_key, doc), "doc": doc, "preImages": pre})
            n += 1
        except CommandError as e:
            errors.append(_write_error_or_raise(i, e))
            if ordered:
                break
    reply = {"n": n, "ok": 1.0}
    return _with_write_errors(reply, errors)


def _modify(ctx, c, pair, new_doc, pre_flag):
    """Replace a stored document with new_doc; emit its entry.  Returns True
    when the document changed."""
    old = pair[0]
    if "_id" not in new_doc:
        new_doc = dict([("_id", old["_id"])] + list(new_doc.items()))
    elif not storage._same(new_doc["_id"], old["_id"]):
        raise CommandError(66, "ImmutableField",
                           "After applying the update, the (immutable) field '_id' "
                           "was found to have been altered to _id: %s"
                           % storage.format_value(new_doc["_id"]))
    raw = wire.encode(new_doc)
    if len(raw) > wire.MAX_BSON_OBJECT_SIZE:
        raise CommandError(17419, "Location17419",
                           "Resulting document after update is larger than 16777216")
    if raw == storage.raw_of(pair):
        return False
    key = id_key(old["_id"])
    if not ctx.body.get("bypassDocumentValidation"):
        _validate(c, new_doc)
    ctx.view.before_write(c, key)
    c.replace(key, new_doc, raw)
    return True


def _update_one_doc(ctx, c, pair, q, u, array_filters, multi=False):
    old = pair[0]
    if isinstance(u, list):
        new = storage.apply_pipeline_update(old, u)
        op = "update"
    elif storage.is_operator_update(u):
        new = storage.apply_update(old, q, u, array_filters)
        op = "update"
    else:
        _check_replacement(u)
        new = dict(u)
        op = "replace"
    if getattr(c, "shard_key", None) is not None:
        mongos.check_shard_key_change(ctx, c, q, old, new, multi)
    changed = _modify(ctx, c, pair, new, None)
    if changed:
        stored = c.docs[id_key(old["_id"])][0]
        e = _entry(op, c, key={"_id": old["_id"]}, doc=stored, pre=old,
                   preImages=_pre_images(c))
        if op == "update":
            if isinstance(u, list):
                e["upd"] = storage.update_description(old, stored)
            else:
                e["upd"] = storage.update_description_ops(old, stored, u)
        ctx.view.emit(e)
    return changed


def _check_replacement(u):
    if not isinstance(u, dict):
        raise CommandError(*E.FAILED_TO_PARSE, "Update argument must be either an object "
                           "or an array")
    for k in u:
        if k.startswith("$"):
            raise CommandError(*E.FAILED_TO_PARSE,
                               "The dollar ($) prefixed field '%s' in '%s' is not valid "
                               "for storage." % (k, k))


def _upsert_doc(ctx, q, u, array_filters):
    if isinstance(u, list):
        base = {k: v for k, v in (q or {}).items()
                if not k.startswith("$") and not isinstance(v, dict)}
        if "_id" not in base:
            base = dict([("_id", ObjectId())] + list(base.items()))
        return storage.apply_pipeline_update(base, u)
    if storage.is_operator_update(u):
        return storage.apply_update(None, q or {}, u, array_filters, upsert=True)
    _check_replacement(u)
    doc = dict(u)
    if "_id" not in doc:
        qid = (q or {}).get("_id")
        if qid is not None and not (isinstance(qid, dict) and
                                    any(k.startswith("$") for k in qid)):
            doc = dict([("_id", qid)] + list(doc.items()))
        else:
            doc = dict([("_id", ObjectId())] + list(doc.items()))
    elif next(iter(doc)) != "_id":
        doc = dict([("_id", doc["_id"])] + [(k, v) for k, v in doc.items() if k != "_id"])
    return doc


def _sorted_matches(c, q, sort):
    pairs = _match_pairs(c, q)
    if sort:
        pairs = storage.sort_docs(pairs, sort, get=lambda p: p[0])
    return pairs


def cmd_update(ctx):
    name = _coll_name(ctx)
    updates, _raws = _docs_arg(ctx, "updates")
    ordered = ctx.body.get("ordered", True)
    n = 0
    modified = 0
    upserted = []
    errors = []
    for i, spec in enumerate(updates):
        try:
            if not isinstance(spec, dict) or "q" not in spec or "u" not in spec:
                raise CommandError(*E.FAILED_TO_PARSE,
                                   "BSON field 'update.updates.q'/'u' is missing")
            q = spec.get("q") or {}
            u = spec["u"]
            multi = bool(spec.get("multi"))
            if multi and not (isinstance(u, list) or storage.is_operator_update(u)):
                raise CommandError(*E.FAILED_TO_PARSE,
                                   "multi update is not supported for replacement-style "
                                   "update")
            af = spec.get("arrayFilters")
            c = ctx.view.get(ctx.db, name)
            if timeseries.is_ts(c):
                timeseries.check_update(c, spec)
            matches = _match_pairs(c, q) if c is not None else []
            if not multi:
                matches = matches[:1]
            if matches:
                for pair in matches:
                    n += 1
                    if _update_one_doc(ctx, c, pair, q, u, af, multi):
                        modified += 1
            elif spec.get("upsert"):
                c = ctx.view.ensure(ctx.db, name)
                doc = _upsert_doc(ctx, q, u, af)
                ctx.view.before_write(c, id_key(doc["_id"]))
                if not ctx.body.get("bypassDocumentValidation"):
                    _validate(c, doc)
                c.insert(doc)
                ctx.view.emit(_entry("insert", c, key={"_id": doc["_id"]}, doc=doc,
                                     preImages=_pre_images(c)))
                n += 1
                upserted.append({"index": i, "_id": doc["_id"]})
        except CommandError as e:
            errors.append(_write_error_or_raise(i, e))
            if ordered:
                break
    reply = {"n": n, "nModified": modified, "ok": 1.0}
    if upserted:
        reply["upserted"] = upserted
    return _with_write_errors(reply, errors)


def cmd_delete(ctx):
    name = _coll_name(ctx)
    deletes, _raws = _docs_arg(ctx, "deletes")
    ordered = ctx.body.get("ordered", True)
    n = 0
    errors = []
    for i, spec in enumerate(deletes):
        try:
            if not isinstance(spec, dict) or "q" not in spec or "limit" not in spec:
                raise CommandError(*E.FAILED_TO_PARSE,
                                   "BSON field 'delete.deletes.q'/'limit' is missing")
            limit = spec["limit"]
            if limit not in (0, 1):
                raise CommandError(*E.FAILED_TO_PARSE,
                                   "The limit field in delete objects must be 0 or 1. "
                                   "Got %s" % limit)
            c = ctx.view.get(ctx.db, name)
            if c is None:
                continue
            matches = _match_pairs(c, spec["q"] or {})
            if limit == 1:
                matches = matches[:1]
            pre = _pre_images(c)
            for doc, _raw in matches:
                ctx.view.before_write(c, id_key(doc["_id"]))
                c.delete(id_key(doc["_id"]))
                ctx.view.emit(_entry("delete", c, key={"_id": doc["_id"]}, pre=doc,
                                     preImages=pre))
                n += 1
        except CommandError as e:
            errors.append(_write_error_or_raise(i, e))
            if ordered:
                break
    reply = {"n": n, "ok": 1.0}
    return _with_write_errors(reply, errors)


def cmd_find_and_modify(ctx):
    name = _coll_name(ctx)
    body = ctx.body
    q = _doc_arg(body, "query") or {}
    sort = _doc_arg(body, "sort")
    remove = bool(body.get("remove"))
    u = body.get("update")
    new = bool(body.get("new"))
    fields = _doc_arg(body, "fields")
    upsert = bool(body.get("upsert"))
    af = body.get("arrayFilters")
    if remove and u is not None:
        raise CommandError(*E.FAILED_TO_PARSE,
                           "Cannot specify both an update and remove=true")
    if not remove and u is None:
        raise CommandError(*E.FAILED_TO_PARSE, "Either an update or remove=true must "
                           "be specified")
    if remove and (upsert or new):
        raise CommandError(*E.FAILED_TO_PARSE,
                           "Cannot specify both upsert=true and remove=true" if upsert
                           else "Cannot specify both new=true and remove=true; 'remove' "
                           "always returns the deleted document")
    c = ctx.view.get(ctx.db, name)
    if c is not None and c.shard_key is not None:
        mongos.check_find_and_modify(c, q)
    matches = _sorted_matches(c, q, sort) if c is not None else []
    proj = storage.find_projector(fields)
    last = {"n": 0}
    value = None
    if matches:
        pair = matches[0]
        old = pair[0]
        if remove:
            ctx.view.before_write(c, id_key(old["_id"]))
            c.delete(id_key(old["_id"]))
            ctx.view.emit(_entry("delete", c, key={"_id": old["_id"]}, pre=old,
                                 preImages=_pre_images(c)))
            value = old
        else:
            _update_one_doc(ctx, c, pair, q, u, af)
            value = c.docs[id_key(old["_id"])][0] if new else old
            last["updatedExisting"] = True
        last["n"] = 1
    elif upsert and not remove:
        c = ctx.view.ensure(ctx.db, name)
        doc = _upsert_doc(ctx, q, u, af)
        ctx.view.before_write(c, id_key(doc["_id"]))
        if not ctx.body.get("bypassDocumentValidation"):
            _validate(c, doc)
        c.insert(doc)
        ctx.view.emit(_entry("insert", c, key={"_id": doc["_id"]}, doc=doc,
                             preImages=_pre_images(c)))
        last.update({"n": 1, "updatedExisting": False, "upserted": doc["_id"]})
        value = doc if new else None
    elif not remove:
        last["updatedExisting"] = False
    if value is not None and proj is not None:
        value = proj(value)
    return {"lastErrorObject": last, "value": value, "ok": 1.0}


# ---------------------------------------------------------------------------
# Reads
# ---------------------------------------------------------------------------

_FIND_OPTIONS = {"find", "filter", "projection", "sort", "skip", "limit",
                 "batchSize", "singleBatch", "hint", "min", "max", "returnKey",
                 "showRecordId", "tailable", "oplogReplay", "noCursorTimeout",
                 "awaitData", "allowPartialResults", "collation", "allowDiskUse",
                 "let", "readOnce", "ntoreturn"}


def cmd_find(ctx):
    name = _coll_name(ctx)
    body = ctx.body
    for k in body:
        if k not in _FIND_OPTIONS and k not in _GENERIC:
            raise CommandError(40415, "Location40415",
                               "BSON field 'FindCommandRequest.%s' is an unknown field." % k)
    if body.get("tailable") or body.get("awaitData"):
        raise CommandError(238, "NotImplemented",
                           "tailable cursors are not supported by the stand-in")
    for k in ("min", "max", "returnKey", "showRecordId", "let"):
        if body.get(k):
            raise CommandError(238, "NotImplemented",
                               "the find option '%s' is not supported by the stand-in" % k)
    flt = _doc_arg(body, "filter") or {}
    proj_spec = _doc_arg(body, "projection")
    sort = _doc_arg(body, "sort")
    skip = _int(body, "skip", 0, 0)
    limit = _int(body, "limit", 0)
    batch_size = _int(body, "batchSize", None, 0)
    single = bool(body.get("singleBatch"))
    if limit < 0:
        limit = -limit
        single = True
    if ctx.db == "local":
        return _find_local(ctx, name, flt, proj_spec, sort, skip, limit, batch_size,
                           single)
    c = ctx.view.get(ctx.db, name)
    _check_hint(c, body.get("hint"))
    _check_collation(body.get("collation"))
    pairs = _match_pairs(c, flt)
    if sort:
        pairs = storage.sort_docs(pairs, sort, get=lambda p: p[0],
                                  limit=skip + limit if limit else 0)
    if skip:
        pairs = pairs[skip:]
    if limit:
        pairs = pairs[:limit]
    to_raw = storage.make_raw_projector(proj_spec) if proj_spec else None
    proj = storage.find_projector(proj_spec) if to_raw is None else None
    if proj is not None:
        def to_raw(p, proj=proj):
            return wire.encode(proj(p[0]))
    if single and batch_size is None and limit:
        batch_size = limit
    return _cursor_reply(ctx, "%s.%s" % (ctx.db, name), pairs, to_raw, batch_size,
                         single_batch=single)


def _find_local(ctx, name, flt, proj_spec, sort, skip, limit, batch_size, single):
    """find in the "local" database: oplog.rs is the oplog (oplogview.py),
    any other collection is empty."""
    from . import oplogview
    docs = oplogview.find(ctx.server, flt, sort) if name == "oplog.rs" else []
    if skip:
        docs = docs[skip:]
    if limit:
        docs = docs[:limit]
    proj = storage.find_projector(proj_spec) if proj_spec else None
    if proj is not None:
        def to_raw(d, proj=proj):
            return wire.encode(proj(d))
    else:
        to_raw = wire.encode
    if single and batch_size is None and limit:
        batch_size = limit
    return _cursor_reply(ctx, "local.%s" % name, docs, to_raw, batch_size,
                         single_batch=single)


def _check_hint(c, hint):
    """A hint must name an existing index (as mongod requires)."""
    if hint is None or hint == {} or hint == "":
        return
    if isinstance(hint, dict) and list(hint) == ["$natural"]:
        return
    if c is not None:
        for i in c.indexes:
            if (isinstance(hint, str) and i["name"] == hint) or \
                    (isinstance(hint, dict) and dict(i["key"]) == hint):
                return
    elif hint is not None:
        return                    # no collection: mongod ignores the hint
    raise CommandError(*E.BAD_VALUE,
                       "hint provided does not correspond to an existing index")


def _check_collation(coll):
    if coll is None:
        return
    if not isinstance(coll, dict):
        raise CommandError(*E.TYPE_MISMATCH, "collation must be an object")
    if coll.get("locale") != "simple":
        raise CommandError(238, "NotImplemented",
                           "the stand-in supports only the simple collation")


def cmd_get_more(ctx):
    body = ctx.body
    cid = body.get("getMore")
    if isinstance(cid, bool) or not isinstance(cid, int):
        raise CommandError(*E.TYPE_MISMATCH,
                           "BSON field 'getMore.getMore' is the wrong type, expected "
                           "type 'long'")
    coll = body.get("collection")
    if not isinstance(coll, str):
        raise CommandError(*E.TYPE_MISMATCH, "BSON field 'getMore.collection' is missing "
                           "or not a string")
    ns = "%s.%s" % (ctx.db, coll)
    batch_size = _int(body, "batchSize", None, 0)
    if batch_size == 0:
        batch_size = None
    cur = ctx.conn.endpoint.cursors.get(int(cid), ns)
    authz.check_cursor_owner(ctx, cur)
    if cur.kind == "changestream":
        max_await = body.get("maxTimeMS")
        try:
            events, pbrt, closed = cur.stream.next_batch(
                batch_size, int(max_await) if max_await is not None else 1000, False)
        except CommandError:
            ctx.conn.endpoint.cursors.close(int(cid))     # mongod kills the cursor
            raise
        if closed:
            ctx.conn.endpoint.cursors.close(int(cid))
        return raw_cursor_reply(0 if closed else int(cid), cur.ns,
                                [wire.encode(e) for e in events], first=False,
                                extra_cursor={"postBatchResumeToken": pbrt})
    batch = cur.next_batch(batch_size, first=False)
    out_id = int(cid)
    if cur.exhausted():
        ctx.conn.endpoint.cursors.close(int(cid))
        out_id = 0
    return raw_cursor_reply(out_id, ns, batch, first=False)


def cmd_kill_cursors(ctx):
    # Database and cluster change streams live in "<db>.$cmd.aggregate";
    # mongod lets killCursors name that namespace.
    if ctx.body.get(ctx.name) != "$cmd.aggregate":
        _coll_name(ctx)
    ids = ctx.body.get("cursors")
    if not isinstance(ids, list):
        raise CommandError(*E.TYPE_MISMATCH, "BSON field 'killCursors.cursors' is missing "
                           "or not an array")
    killed, not_found = ctx.conn.endpoint.cursors.kill(
        ids, lambda cur: authz.check_cursor_owner(ctx, cur))
    return {"cursorsKilled": killed, "cursorsNotFound": not_found,
            "cursorsAlive": [], "cursorsUnknown": [], "ok": 1.0}


def cmd_count(ctx):
    name = _coll_name(ctx)
    body = ctx.body
    q = _doc_arg(body, "query") or {}
    skip = _int(body, "skip", 0, 0)
    limit = _int(body, "limit", 0)
    c = ctx.view.get(ctx.db, name)
    if c is None:
        n = 0
    elif not q:
        n = len(c.docs)
    else:
        n = len(_match_pairs(c, q))
    n = max(0, n - skip)
    if limit:
        n = min(n, abs(limit))
    return {"n": n, "ok": 1.0}


def cmd_distinct(ctx):
    name = _coll_name(ctx)
    key = ctx.body.get("key")
    if not isinstance(key, str):
        raise CommandError(*E.TYPE_MISMATCH, "BSON field 'distinct.key' is missing or "
                           "not a string")
    q = _doc_arg(ctx.body, "query") or {}
    c = ctx.view.get(ctx.db, name)
    seen = set()
    values = []
    for doc, _raw in _match_pairs(c, q):
        vals, _empty = storage._sort_values(doc, key)
        for v in vals:
            k = id_key(v)
            if k not in seen:
                seen.add(k)
                values.append(v)
    values = storage.sort_docs(values, {"v": 1}, get=lambda v: {"v": v})
    return {"values": values, "ok": 1.0}


# ---------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------

# Stages mongomock runs without changing its input documents; any other
# stage gets private copies of the input.
_NON_MUTATING = {"$match", "$sort", "$limit", "$skip", "$count", "$group",
                 "$sample", "$project", "$replaceRoot", "$replaceWith",
                 "$sortByCount", "$bucket", "$unset"}


class _DbAdapter:
    """What mongomock's $lookup / $graphLookup need of a database."""

    def __init__(self, ctx):
        self.ctx = ctx

    def get_collection(self, name):
        return _CollAdapter(self.ctx, name)


class _CollAdapter:
    def __init__(self, ctx, name):
        self.ctx = ctx
        self.name = name

    def find(self, flt=None):
        c = self.ctx.view.get(self.ctx.db, self.name)
        return [copy.deepcopy(d) for d, _r in _match_pairs(c, flt or {})]

    def find_one(self, flt=None):
        r = self.find(flt)
        return r[0] if r else None


_AGGREGATE_OPTIONS = {"aggregate", "pipeline", "cursor", "explain", "allowDiskUse",
                      "bypassDocumentValidation", "collation", "hint", "let",
                      "readOnce", "isMapReduce"}


def cmd_aggregate(ctx):
    body = ctx.body
    for k in body:
        if k not in _AGGREGATE_OPTIONS and k not in _GENERIC:
            raise CommandError(40415, "Location40415",
                               "BSON field 'aggregate.%s' is an unknown field." % k)
    target = body.get("aggregate")
    pipeline = body.get("pipeline")
    if not isinstance(pipeline, list):
        raise CommandError(*E.TYPE_MISMATCH, "'pipeline' option must be specified as an "
                           "array")
    for st in pipeline:
        if not isinstance(st, dict) or len(st) != 1:
            raise CommandError(40323, "Location40323",
                               "A pipeline stage specification object must contain "
                               "exactly one field.")
    if body.get("explain"):
        raise CommandError(238, "NotImplemented", "explain is not supported by the "
                           "stand-in")
    if "cursor" not in body:
        raise CommandError(*E.FAILED_TO_PARSE,
                           "The 'cursor' option is required, except for aggregate with "
                           "the explain argument")
    batch_size = _batch_size(body.get("cursor"))
    if pipeline and "$changeStream" in pipeline[0]:
        return _aggregate_change_stream(ctx, target, pipeline, batch_size)
    for st in pipeline[1:]:
        if "$changeStream" in st:
            raise CommandError(40602, "Location40602",
                               "$changeStream is only valid as the first stage in a "
                               "pipeline.")
    if target == 1 or isinstance(target, (int, float)) and not isinstance(target, bool):
        if pipeline and any(k in pipeline[0] for k in ("$documents",)):
            docs = list(pipeline[0]["$documents"])
            ns = "%s.$cmd.aggregate" % ctx.db
            return _run_pipeline_docs(ctx, ns, docs, pipeline[1:], batch_size)
        raise CommandError(*E.INVALID_NAMESPACE,
                           "{aggregate: 1} is not valid for '%s' here" %
                           (next(iter(pipeline[0])) if pipeline else "an empty pipeline"))
    name = _coll_name(ctx, "aggregate")
    ns = "%s.%s" % (ctx.db, name)
    c = ctx.view.get(ctx.db, name)
    _check_hint(c, body.get("hint"))
    _check_collation(body.get("collation"))
    if body.get("let"):
        raise CommandError(238, "NotImplemented",
                           "the aggregate option 'let' is not supported by the stand-in")
    stages = list(pipeline)
    if stages and "$collStats" in stages[0]:
        spec = stages[0]["$collStats"] or {}
        info = {"ns": ns, "host": "%s:%d" % (ctx.server.host, ctx.server.port),
                "localTime": _now()}
        if "count" in spec:
            info["count"] = len(c.docs) if c else 0
        if "storageStats" in spec:
            size = sum(len(storage.raw_of(p)) for p in c.docs.values()) if c else 0
            info["storageStats"] = {"count": len(c.docs) if c else 0,
                                    "size": size,
                                    "avgObjSize": size // len(c.docs) if c and c.docs else 0,
                                    "nindexes": len(c.indexes) if c else 0}
        if c is None and ctx.view.get(ctx.db, name) is None and "count" in spec:
            raise CommandError(*E.NAMESPACE_NOT_FOUND,
                               "Unable to retrieve count in $collStats stage :: caused "
                               "by :: Collection [%s] not found." % ns)
        if ctx.server.mongos:
            info = mongos.coll_stats_stage(ctx.server, info)
        return _run_pipeline_docs(ctx, ns, [info], stages[1:], batch_size)
    for st in stages[1:]:
        if "$collStats" in st:
            raise CommandError(40602, "Location40602",
                               "$collStats is only valid as the first stage in a pipeline.")
    out_stage = None
    if stages and ("$out" in stages[-1] or "$merge" in stages[-1]):
        out_stage = stages.pop()
        if "$merge" in out_stage:
            raise CommandError(238, "NotImplemented",
                               "$merge is not supported by the stand-in")
    # Fast prefix: $match / $sort / $skip / $limit / simple $project on stored
    # pairs, without copies.
    i = 0
    if c is None:
        pairs = []
    elif stages and "$match" in stages[0] and isinstance(stages[0]["$match"], dict):
        pairs = _match_pairs(c, stages[0]["$match"])      # may look _id up by key
        i = 1
    else:
        pairs = list(c.docs.values())
    projector = None
    raw_projector = None
    while i < len(stages):
        (op, arg), = stages[i].items()
        if op == "$match" and projector is None and isinstance(arg, dict):
            pred = storage.compile_filter(arg)
            if pred is not None:
                pairs = [p for p in pairs if pred(p[0])]
        elif op == "$sort" and projector is None and isinstance(arg, dict):
            nxt = stages[i + 1] if i + 1 < len(stages) else {}
            limit = nxt.get("$limit") if isinstance(nxt.get("$limit"), int) and \
                not isinstance(nxt.get("$limit"), bool) and nxt.get("$limit") > 0 else 0
            pairs = storage.sort_docs(pairs, arg, get=lambda p: p[0], limit=limit)
        elif op == "$skip" and isinstance(arg, int) and not isinstance(arg, bool):
            if arg < 0:
                raise CommandError(15956, "Location15956",
                                   "invalid argument to $skip stage: Expected a "
                                   "non-negative number in: $skip: %d" % arg)
            pairs = pairs[arg:]
        elif op == "$limit" and isinstance(arg, int) and not isinstance(arg, bool):
            if arg <= 0:
                raise CommandError(15958, "Location15958",
                                   "the limit must be positive")
            pairs = pairs[:arg]
        elif op == "$count" and projector is None and isinstance(arg, str) and arg \
                and not arg.startswith("$") and "." not in arg:
            # no input, no output document (mongomock answers {n: 0})
            pairs = [[{arg: len(pairs)}, None]] if pairs else []
        elif op == "$group" and projector is None and _is_count_group(arg):
            pairs = [[dict([("_id", None)] + [(k, len(pairs)) for k in arg
                                             if k != "_id"]), None]] if pairs else []
        elif op == "$project" and projector is None and isinstance(arg, dict):
            p = storage.make_projector(arg) or storage.make_path_projector(arg)
            if p is None:
                break
            projector = p
            raw_projector = storage.make_raw_projector(arg)
        else:
            break
        i += 1
    rest = stages[i:]
    if not rest and out_stage is None:
        to_raw = None
        if raw_projector is not None:
            to_raw = raw_projector
        elif projector is not None:
            def to_raw(p, projector=projector):
                return wire.encode(projector(p[0]))
        return _cursor_reply(ctx, ns, pairs, to_raw, batch_size)
    docs = [p[0] for p in pairs]
    if projector is not None:
        docs = [projector(d) for d in docs]
    return _run_pipeline_docs(ctx, ns, docs, rest, batch_size, out_stage)


# Stages MongoDB 6.0 has; those mongomock lacks are NotImplemented (238),
# any other name is an unrecognized stage (40324) as in mongod.
_MONGODB_STAGES = {
    "$addFields", "$bucket", "$bucketAuto", "$changeStream", "$collStats", "$count",
    "$currentOp", "$densify", "$documents", "$facet", "$fill", "$geoNear",
    "$graphLookup", "$group", "$indexStats", "$limit", "$listLocalSessions",
    "$listSessions", "$lookup", "$match", "$merge", "$out", "$planCacheStats",
    "$project", "$redact", "$replaceRoot", "$replaceWith", "$sample", "$search",
    "$searchMeta", "$set", "$setWindowFields", "$skip", "$sort", "$sortByCount",
    "$unionWith", "$unset", "$unwind", "$shardedDataDistribution",
    "$changeStreamSplitLargeEvent", "$listSearchIndexes"}


def _is_count_group(spec):
    """{_id: null, n: {$sum: 1}, ...}: a count of the whole input."""
    if not isinstance(spec, dict) or "_id" not in spec or spec["_id"] is not None:
        return False
    for k, v in spec.items():
        if k == "_id":
            continue
        if not (isinstance(v, dict) and len(v) == 1 and
                (v.get("$sum") == 1 and not isinstance(v.get("$sum"), bool)
                 or v.get("$count") == {})):
            return False
    return True


def _run_pipeline_docs(ctx, ns, docs, stages, batch_size, out_stage=None):
    result = _pipeline_result(ctx, docs, stages)
    if out_stage is not None:
        _write_out(ctx, out_stage["$out"], result)
        result = []
    return _cursor_reply(ctx, ns, result, wire.encode, batch_size)


def _pipeline_result(ctx, docs, stages):
    """The documents stages make of docs (mongomock's pipeline)."""
    from mongomock import aggregate as mm_aggregate
    if any(next(iter(st)) not in _NON_MUTATING for st in stages):
        docs = copy.deepcopy(docs)
    else:
        docs = list(docs)
    for st in stages:
        op = next(iter(st))
        if op == "$changeStream":
            raise CommandError(40602, "Location40602",
                               "$changeStream is only valid as the first stage in a "
                               "pipeline.")
        if op not in mm_aggregate._PIPELINE_HANDLERS and op not in ("$unset", "$replaceWith"):
            if op in _MONGODB_STAGES:
                raise CommandError(238, "NotImplemented",
                                   "the stage %s is not supported by the stand-in" % op)
            raise CommandError(*E.LOCATION40324,
                               "Unrecognized pipeline stage name: '%s'" % op)
    stages = storage.pipeline_compat(copy.deepcopy(stages))
    try:
        result = list(mm_aggregate.process_pipeline(docs, _DbAdapter(ctx), stages, None))
    except storage._OperationFailure as e:
        raise storage.mongomock_error(e)
    except NotImplementedError as e:
        raise CommandError(238, "NotImplemented", str(e).split(". See")[0])
    except CommandError:
        raise
    except AssertionError as e:
        # mongomock's operand checks ("$add only uses numbers")
        raise CommandError(*E.TYPE_MISMATCH, "PlanExecutor error during aggregation :: "
                           "caused by :: %s" % e)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
        raise CommandError(2, "BadValue", "aggregation failed: %s: %s"
                           % (type(e).__name__, e))
    return result


def _write_out(ctx, target, docs):
    if isinstance(target, dict):
        db = target.get("db", ctx.db)
        coll = target.get("coll")
    else:
        db, coll = ctx.db, target
    if not isinstance(coll, str):
        raise CommandError(*E.FAILED_TO_PARSE, "$out target must be a collection name")
    storage.check_names(db, coll)
    if ctx.txn is not None:
        raise CommandError(263, "OperationNotSupportedInTransaction",
                           "$out cannot be used in a transaction")
    store = ctx.server.store
    old = store.get(db, coll)
    if old is not None:
        store.drop(db, coll)
        ctx.view.emit(_entry("drop", old))
    c = ctx.view.create(db, coll, old.options if old is not None else None)
    for doc in docs:
        if "_id" not in doc:
            doc = dict([("_id", ObjectId())] + list(doc.items()))
        if not ctx.body.get("bypassDocumentValidation"):
            _validate(c, doc)
        c.insert(doc)
        ctx.view.emit(_entry("insert", c, key={"_id": doc["_id"]}, doc=doc,
                             preImages=_pre_images(c)))


def _aggregate_change_stream(ctx, target, pipeline, batch_size):
    cs = ctx.server.changestream
    if cs is None:
        raise CommandError(238, "NotImplemented",
                           "change streams are not available in this build of the "
                           "stand-in")
    if ctx.txn is not None:
        raise CommandError(263, "OperationNotSupportedInTransaction",
                           "$changeStream is not allowed in a transaction")
    spec = pipeline[0]["$changeStream"]
    if not isinstance(spec, dict):
        raise CommandError(*E.TYPE_MISMATCH,
                           "the $changeStream stage specification must be an object")
    cluster_wide = bool(spec.get("allChangesForCluster"))
    if cluster_wide:
        if ctx.db != "admin" or target != 1:
            raise CommandError(*E.INVALID_OPTIONS,
                               "A $changeStream with 'allChangesForCluster:true' may only "
                               "be opened on the 'admin' database, and with no "
                               "collection name")
        coll = None
    elif target == 1:
        if ctx.db == "admin":
            raise CommandError(*E.INVALID_NAMESPACE,
                               "$changeStream may not be opened on the internal admin "
                               "database")
        coll = None
    else:
        coll = _coll_name(ctx, "aggregate")
    stream = cs.open_change_stream(ctx.server, ctx.db, coll, spec, pipeline[1:],
                                   cluster_wide)
    events, pbrt, closed = stream.next_batch(batch_size, 0, True)
    cid = 0
    if not closed:
        cur = cursors.Cursor(stream.ns, [], lsid=ctx.session.key if ctx.session else None)
        cur.kind = "changestream"
        cur.stream = stream
        cid = ctx.conn.endpoint.cursors.register(cur)
    return raw_cursor_reply(cid, stream.ns, [wire.encode(e) for e in events], first=True,
                            extra_cursor={"postBatchResumeToken": pbrt})


# ---------------------------------------------------------------------------
# Sessions, transactions, fail points, authentication
# ---------------------------------------------------------------------------

def cmd_end_sessions(ctx):
    ids = ctx.body.get(ctx.name)
    if not isinstance(ids, list):
        raise CommandError(*E.TYPE_MISMATCH, "endSessions takes an array of session ids")
    ctx.server.sessions.end(ids, ctx.conn.endpoint.cursors)
    return {"ok": 1.0}


def cmd_start_session(ctx):
    return {"id": {"id": Binary(os.urandom(16), 4)}, "timeoutMinutes": 30, "ok": 1.0}


def _txn_args(ctx):
    if ctx.db != "admin":
        raise CommandError(*E.UNAUTHORIZED, "%s may only be run against the admin "
                           "database." % ctx.name)
    if ctx.session is None or "txnNumber" not in ctx.body:
        raise CommandError(50768, "Location50768",
                           "Transaction commands require a session and a txnNumber")
    if ctx.body.get("autocommit") is not False:
        raise CommandError(*E.INVALID_OPTIONS,
                           "'%s' must be run with autocommit=false" % ctx.name)
    return ctx.session, int(ctx.body["txnNumber"])


def cmd_commit(ctx):
    session, n = _txn_args(ctx)
    t = ctx.server.sessions.commit(session, n)
    if t is not None:
        ctx.op_time = t
    return {"ok": 1.0}


def cmd_abort(ctx):
    session, n = _txn_args(ctx)
    ctx.server.sessions.abort(session, n)
    return {"ok": 1.0}


def cmd_configure_fail_point(ctx):
    if ctx.db != "admin":
        raise CommandError(*E.UNAUTHORIZED, "configureFailPoint may only be run against "
                           "the admin database.")
    return ctx.conn.endpoint.failpoints.configure(ctx.body)


def cmd_sasl_start(ctx):
    if ctx.server.auth is None:
        raise CommandError(*E.BAD_VALUE,
                           "Authentication is not enabled on this server")
    return ctx.server.auth.sasl_start(ctx.conn, ctx.body, ctx.db)


def cmd_sasl_continue(ctx):
    if ctx.server.auth is None:
        raise CommandError(*E.AUTHENTICATION_FAILED,
                           "Authentication is not enabled on this server")
    return ctx.server.auth.sasl_continue(ctx.conn, ctx.body)


def cmd_logout(ctx):
    ctx.conn.user = None
    return {"ok": 1.0}


def cmd_connection_status(ctx):
    if ctx.server.auth is not None:
        return authz.connection_status(ctx)
    users = [{"user": ctx.conn.user, "db": "admin"}] if ctx.conn.user else []
    return {"authInfo": {"authenticatedUsers": users,
                         "authenticatedUserRoles": [{"role": "root", "db": "admin"}]
                         if users else []}, "ok": 1.0}


def cmd_server_status(ctx):
    """The sections tests read: host, process, uptime, connections,
    opcounters, metrics.commands and, on a router, transactions; all of the
    process (router) the command reached."""
    server = ctx.server
    ep = ctx.conn.endpoint
    st = ep.stats
    with ep.lock:
        current, total = len(ep.conns), ep.total_conns
    with st.lock:
        ops = {k: Int64(v) for k, v in st.opcounters.items()}
        cmds = {k: {"failed": Int64(v[1]), "total": Int64(v[0])}
                for k, v in sorted(st.commands.items())}
        txn = {k: Int64(v) for k, v in st.txn.items()}
    up = time.monotonic() - ep.started
    reply = {"host": ep.address, "version": SERVER_VERSION,
             "process": "mongos" if server.mongos else "mongod",
             "pid": Int64(os.getpid()), "uptime": float(int(up)),
             "uptimeMillis": Int64(int(up * 1000)), "uptimeEstimate": Int64(int(up)),
             "localTime": _now(),
             "connections": {"current": current, "available": 838860 - current,
                             "totalCreated": Int64(total)},
             "opcounters": ops, "metrics": {"commands": cmds}}
    if server.mongos:
        with server.oplog.lock:
            txn["currentOpen"] = Int64(mongos.open_transactions(ep, server.sessions))
        reply["transactions"] = txn
    reply["ok"] = 1.0
    return reply


def cmd_standin_router(ctx):
    """{standinRouter: <port>, up: <bool>}: take a router of a --mongos
    stand-in away (its listener and connections close, as when its process
    exits) or bring it back (a new process on the same port).  Stand-in
    only: tests use it for what operators meet when a mongos goes down."""
    server = ctx.server
    if ctx.db != "admin":
        raise CommandError(*E.UNAUTHORIZED, "standinRouter may only be run against the "
                           "admin database.")
    if not server.mongos:
        raise CommandError(*E.ILLEGAL_OPERATION, "standinRouter needs a stand-in started "
                           "with --mongos: a replica set member has no routers")
    port = ctx.body.get(ctx.name)
    up = ctx.body.get("up")
    if isinstance(port, bool) or not isinstance(port, int) or not isinstance(up, bool):
        raise CommandError(*E.TYPE_MISMATCH, "standinRouter takes a port number and "
                           "up: true or false")
    ep = server.endpoint(port)
    if ep is None:
        raise CommandError(*E.BAD_VALUE, "no router of this stand-in has port %d; its "
                           "routers listen on %s" % (port, ", ".join(
                               e.address for e in server.endpoints)))
    was_up = ep.up
    if not up and ep is ctx.conn.endpoint:
        raise CommandError(*E.BAD_VALUE, "cannot take away the router this command "
                           "came through (%s): send it through another router"
                           % ep.address)
    if up and not was_up:
        try:
            ep.start()
        except OSError as e:
            raise CommandError(*E.ILLEGAL_OPERATION, "cannot listen on %s again: %s"
                               % (ep.address, e.strerror or e))
    elif not up and was_up:
        ep.stop()
    return {"wasUp": was_up, "ok": 1.0}


def cmd_coll_stats(ctx):
    name = _coll_name(ctx)
    c = ctx.view.get(ctx.db, name)
    if c is None:
        raise CommandError(*E.NAMESPACE_NOT_FOUND, "Collection [%s.%s] not found."
                           % (ctx.db, name))
    size = sum(len(storage.raw_of(p)) for p in c.docs.values())
    n = len(c.docs)
    scale = _int(ctx.body, "scale", 1, 1)
    reply = {"ns": c.ns, "size": size // scale, "count": n,
             "avgObjSize": size // n if n else 0, "storageSize": size // scale,
             "freeStorageSize": 0, "capped": bool(c.options.get("capped")),
             "nindexes": len(c.indexes), "totalIndexSize": 0,
             "indexSizes": {i["name"]: 0 for i in c.indexes},
             "totalSize": size // scale, "scaleFactor": scale, "ok": 1.0}
    if ctx.server.mongos:
        return mongos.coll_stats(ctx.server, reply, c.shard_key)
    return reply


def cmd_db_stats(ctx):
    colls = ctx.view.collections(ctx.db)
    size = sum(len(storage.raw_of(p)) for c in colls.values() for p in c.docs.values())
    n = sum(len(c.docs) for c in colls.values())
    scale = _int(ctx.body, "scale", 1, 1)
    return {"db": ctx.db, "collections": len(colls), "views": 0, "objects": n,
            "avgObjSize": size / n if n else 0, "dataSize": size // scale,
            "storageSize": size // scale, "indexes": sum(len(c.indexes)
                                                         for c in colls.values()),
            "indexSize": 0, "totalSize": size // scale, "scaleFactor": scale,
            "fsUsedSize": 0, "fsTotalSize": 0, "ok": 1.0}


HANDLERS = {
    "hello": cmd_hello, "isMaster": cmd_hello, "ismaster": cmd_hello,
    "ping": cmd_ping, "buildInfo": cmd_build_info, "buildinfo": cmd_build_info,
    "listDatabases": cmd_list_databases, "listCollections": cmd_list_collections,
    "create": cmd_create, "collMod": cmd_coll_mod, "drop": cmd_drop,
    "dropDatabase": cmd_drop_database, "renameCollection": cmd_rename,
    "createIndexes": cmd_create_indexes, "listIndexes": cmd_list_indexes,
    "dropIndexes": cmd_drop_indexes,
    "insert": cmd_insert, "update": cmd_update, "delete": cmd_delete,
    "findAndModify": cmd_find_and_modify, "findandmodify": cmd_find_and_modify,
    "find": cmd_find, "getMore": cmd_get_more, "killCursors": cmd_kill_cursors,
    "count": cmd_count, "distinct": cmd_distinct, "aggregate": cmd_aggregate,
    "endSessions": cmd_end_sessions, "startSession": cmd_start_session,
    "commitTransaction": cmd_commit, "abortTransaction": cmd_abort,
    "configureFailPoint": cmd_configure_fail_point,
    "saslStart": cmd_sasl_start, "saslContinue": cmd_sasl_continue,
    "logout": cmd_logout, "connectionStatus": cmd_connection_status,
    "collStats": cmd_coll_stats, "dbStats": cmd_db_stats,
    "serverStatus": cmd_server_status, "standinRouter": cmd_standin_router,
    "shardCollection": mongos.cmd_shard_collection,
    "enableSharding": mongos.cmd_enable_sharding,
}
HANDLERS.update(authz.HANDLERS)
