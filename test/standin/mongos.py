"""--mongos: the stand-in answers as a mongos router in front of one shard.

The data, the oplog, change streams and transactions are the replica set's
own (the one shard is the stand-in itself, named after --replset, as
addShard names a replica set shard by default).  What changes is what a
client sees of the topology and of the few commands whose replies mongos
builds itself:

- hello / isMaster: msg "isdbgrid", no setName / hosts / primary / me /
  electionId / lastWrite (the server discovery and monitoring spec types
  such a server Mongos); topologyVersion as mongos gives it;
- commands on the `local` database fail with IllegalOperation (20), "Can't
  use 'local' database through mongos", as mongos refuses them before
  running anything (so `local.oplog.rs` cannot be read);
- replica set commands (replSetGetStatus, ...) are CommandNotFound (59):
  mongos has none (the stand-in has no handler for them in either mode);
- the collStats command: the router's merge of its shards' replies, with
  "sharded": false and "primary" for an unsharded collection ("sharded":
  true for one sharded by shardCollection, see "Sharded collections"
  below), the summed fields, avgObjSize as a double, nchunks and the
  shard's own reply under "shards";
- the $collStats stage: each shard's document carries "shard";
- every reply to a command in a transaction (and to commitTransaction /
  abortTransaction) carries "recoveryToken", with "recoveryShardId" once
  the transaction has written.

Several routers (--router-port): each port is a mongos process of its own
(server.Endpoint) in front of the same shard.  What mongos keeps per
process is per port: cursors (a getMore on another router is
CursorNotFound, 43), fail points, serverStatus counters, the processId of
hello's topologyVersion, and the transaction router state
(route_transaction below, after mongod's transaction_router.cpp and the
manual's "Production Considerations" for transactions): a router that did
not start a transaction answers its statements with NoSuchTransaction (251)
"cannot continue txnId -1 for session ... with txnId N" and never forwards
them; a commitTransaction it never saw recovers the decision from the
shard named by the recoveryToken (50940 without one).  That is why drivers
pin a transaction to its mongos (transactions spec, "Mongos Pinning").
standinRouter takes a router away (as its process exiting: listener and
connections closed, its transactions aborted) and brings it back (a new
process on the same port).

operationTime and $clusterTime are on every reply, as on the replica set:
mongos gives its cluster time as operationTime when it knows no later one.
"""

import datetime
import uuid

import bson
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument
from bson.son import SON

from . import wire
from .errors import CommandError, NO_SUCH_TRANSACTION, TRANSACTION_TOO_OLD

ILLEGAL_OPERATION = (20, "IllegalOperation")
CONFLICTING_OPERATION = (117, "ConflictingOperationInProgress")
SHARD_NOT_FOUND = (70, "ShardNotFound")
TRANSIENT = ["TransientTransactionError"]


def shard_name(server):
    return server.replset


def hello(ctx, reply_name, max_wire_version):
    """The reply of hello / isMaster on a mongos (authentication fields are
    added by the caller, as for the replica set)."""
    reply = {}
    if reply_name == "hello":
        reply["isWritablePrimary"] = True
    else:
        reply["ismaster"] = True
    reply["msg"] = "isdbgrid"
    if ctx.body.get("helloOk"):
        reply["helloOk"] = True
    reply.update({
        "topologyVersion": {"processId": ctx.conn.endpoint.process_id,
                            "counter": Int64(0)},
        "maxBsonObjectSize": wire.MAX_BSON_OBJECT_SIZE,
        "maxMessageSizeBytes": wire.MAX_MESSAGE_BYTES,
        "maxWriteBatchSize": 100000,
        "localTime": datetime.datetime.utcnow(),
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": ctx.conn.id,
        "maxWireVersion": max_wire_version,
        "minWireVersion": 0,
        "ok": 1.0,
    })
    return reply


def check(ctx):
    """Refuse what mongos refuses before it runs a command."""
    if ctx.db == "local":
        raise CommandError(*ILLEGAL_OPERATION, "Can't use 'local' database through mongos")


def coll_stats(server, shard_reply, shard_key=None):
    """mongos' collStats from its shard's reply: of an unsharded collection
    ("sharded": false, "primary"), or of a sharded one ("sharded": true, no
    "primary"; every chunk on the one shard)."""
    shard = {k: v for k, v in shard_reply.items() if k != "ok"}
    scale = shard_reply.get("scaleFactor", 1)
    if shard_key is not None:
        out = {"sharded": True}
    else:
        out = {"sharded": False, "primary": shard_name(server)}
    if "capped" in shard_reply:
        out["capped"] = shard_reply["capped"]
    out["ns"] = shard_reply["ns"]
    for k in ("count", "size", "storageSize", "totalIndexSize", "totalSize"):
        if k in shard_reply:
            out[k] = shard_reply[k]
    out["indexSizes"] = dict(shard_reply.get("indexSizes", {}))
    n = shard_reply.get("count", 0)
    out["avgObjSize"] = float(shard_reply.get("avgObjSize", 0)) if n else 0.0
    out["maxSize"] = 0
    out["nindexes"] = shard_reply.get("nindexes", 0)
    out["scaleFactor"] = scale
    out["nchunks"] = 1
    out["shards"] = {shard_name(server): shard}
    out["ok"] = 1.0
    return out


def coll_stats_stage(server, info):
    """A shard's $collStats document as it reaches the client through mongos."""
    info["shard"] = shard_name(server)
    return info


def recovery_token(ctx):
    """The recoveryToken of a reply in a transaction, or None outside one."""
    txn = ctx.txn
    if txn is None and ctx.name in ("commitTransaction", "abortTransaction") and \
            ctx.session is not None:
        txn = ctx.session.txn
    if txn is None:
        return None
    # the recovery shard is chosen by the first statement that writes
    if txn.entries:
        return {"recoveryShardId": shard_name(ctx.server)}
    return {}


# ---------------------------------------------------------------------------
# Transaction routing: the state one router keeps per session
# ---------------------------------------------------------------------------

def _session_text(session):
    raw = session.lsid.get("id")
    try:
        text = str(raw if isinstance(raw, uuid.UUID) else uuid.UUID(bytes=bytes(raw)))
    except (TypeError, ValueError):
        text = repr(raw)
    return '{ id: UUID("%s") }' % text


def route_transaction(ctx, session, txn_number):
    """Check a statement of a transaction (autocommit: false) against what
    this router knows of the session, as mongos' transaction router does
    before it sends anything to a shard.  Raises the router's error, returns
    the reply of a commit the router recovered from the shard, or None when
    the command goes on to the shard."""
    ep = ctx.conn.endpoint
    key = session.key
    state = ep.txns.get(key)          # [txnNumber, "open" | "recovering" | "done"]
    known = state[0] if state is not None else -1
    start = bool(ctx.body.get("startTransaction"))
    commit = ctx.name == "commitTransaction"
    if txn_number < known:
        raise CommandError(*TRANSACTION_TOO_OLD,
                           "txnNumber %d is less than last txnNumber %d seen in "
                           "session %s" % (txn_number, known, _session_text(session)))
    if txn_number == known:
        if start:
            raise CommandError(*CONFLICTING_OPERATION,
                               "txnNumber %d for session %s already started"
                               % (txn_number, _session_text(session)))
        if state[1] == "recovering" and commit:
            return _recover_commit(ctx, session, txn_number)
        return None
    # a transaction this router has not seen
    if start:
        if state is not None and state[1] == "open":
            settle(ctx)
            if state[1] == "open":    # still running: the shard aborts it now
                ep.stats.transaction("totalAborted")
        ep.txns[key] = [txn_number, "open"]
        ep.stats.transaction("totalStarted")
        return None
    if commit:
        ep.txns[key] = [txn_number, "recovering"]
        return _recover_commit(ctx, session, txn_number)
    raise CommandError(*NO_SUCH_TRANSACTION,
                       "cannot continue txnId %d for session %s with txnId %d"
                       % (known, _session_text(session), txn_number), labels=TRANSIENT)


def _recover_commit(ctx, session, txn_number):
    """commitTransaction on a router that did not run the transaction: the
    decision comes from the recovery shard of the recoveryToken."""
    token = ctx.body.get("recoveryToken")
    if not isinstance(token, dict):
        raise CommandError(50940, "Location50940",
                           "Cannot recover the transaction decision without a "
                           "recoveryToken")
    shard = token.get("recoveryShardId")
    if shard is None:
        raise CommandError(*NO_SUCH_TRANSACTION,
                           "Recovery token is empty, meaning the transaction only "
                           "performed reads and can be safely retried",
                           labels=TRANSIENT)
    if shard != shard_name(ctx.server):
        raise CommandError(*SHARD_NOT_FOUND, "Shard %s not found" % shard)
    txn = session.txn
    if txn is not None and txn.txn_number == txn_number:
        if txn.state == "committed":
            return {"ok": 1.0}
        if txn.state == "in_progress":
            # no decision yet: the recovery decides to abort
            ctx.server.sessions.abort(session, txn_number)
    raise CommandError(*NO_SUCH_TRANSACTION,
                       "Transaction with { txnNumber: %d } has been aborted." % txn_number,
                       labels=TRANSIENT)


def settle(ctx):
    """After a command: count a transaction this router ran once the shard
    has committed or aborted it (serverStatus' transactions section)."""
    session = ctx.session
    if session is None:
        return
    ep = ctx.conn.endpoint
    state = ep.txns.get(session.key)
    if state is None or state[1] != "open":
        return
    txn = session.txn
    if txn is None or txn.txn_number != state[0] or txn.state == "in_progress":
        if txn is not None and txn.txn_number > state[0]:
            state[1] = "done"
            ep.stats.transaction("totalAborted")
        return
    state[1] = "done"
    ep.stats.transaction("totalCommitted" if txn.state == "committed" else "totalAborted")


def open_transactions(ep, sessions):
    """How many transactions this router runs that the shard has open."""
    n = 0
    for key, (txn_number, st) in list(ep.txns.items()):
        s = sessions.sessions.get(key)
        if st == "open" and s is not None and s.txn is not None and \
                s.txn.txn_number == txn_number and s.txn.state == "in_progress":
            n += 1
    return n


# ---------------------------------------------------------------------------
# Sharded collections (one shard holds every chunk)
# ---------------------------------------------------------------------------
#
# shardCollection records the key pattern on the collection
# (storage.Collection.shard_key; it is not journaled, so a restarted
# stand-in forgets it, as it forgets routers' state).  What a client sees
# of it: documentKey of change events holds the shard key's fields in the
# pattern's order, then _id unless the pattern has it (the manual's
# "Change Events"); collStats says "sharded": true; findAndModify needs
# equality on the whole shard key (ShardKeyNotFound, 61, as mongos 6.0's
# cluster_find_and_modify_cmd); an update that changes a document's shard
# key value follows the shard's rules (check_shard_key_change).  updateOne / deleteOne with any filter
# work: mongos 6.0 refuses a single-document write only when it would
# target several shards, and one shard is always one target.
# listCollections does not change (mongos forwards it to the shard).

def _sharding_admin(ctx):
    if not ctx.server.mongos:
        raise CommandError(59, "CommandNotFound", "no such command: '%s'" % ctx.name)
    if ctx.db != "admin":
        raise CommandError(13, "Unauthorized",
                           "%s may only be run against the admin database." % ctx.name)


def cmd_enable_sharding(ctx):
    """Optional from MongoDB 6.0 (every database may hold sharded
    collections); it only names the database."""
    _sharding_admin(ctx)
    db = ctx.body.get(ctx.name)
    if not isinstance(db, str) or not db or "." in db:
        raise CommandError(73, "InvalidNamespace", "invalid db name specified: %s" % (db,))
    return {"ok": 1.0}


def _check_pattern(key):
    if not isinstance(key, dict):
        raise CommandError(14, "TypeMismatch",
                           "BSON field 'shardCollection.key' is the wrong type, "
                           "expected type 'object'")
    if not key:
        raise CommandError(72, "InvalidOptions", "cannot have empty shard key")
    hashed = 0
    for field, v in key.items():
        if v == "hashed":
            hashed += 1
        elif not (isinstance(v, (int, float)) and not isinstance(v, bool) and v == 1):
            hashed = 2
        if not field or field.startswith("$") or ".." in field:
            hashed = 2
    if hashed > 1:
        raise CommandError(72, "InvalidOptions",
                           "Unsupported shard key pattern %s. Pattern must either be a "
                           "single hashed field, or a list of ascending fields"
                           % _pattern_text(key))
    return hashed == 1


def _pattern_text(key):
    return "{ %s }" % ", ".join("%s: %s" % (k, '"hashed"' if v == "hashed" else v)
                                for k, v in key.items())


def cmd_shard_collection(ctx):
    _sharding_admin(ctx)
    body = ctx.body
    ns = body.get(ctx.name)
    if not isinstance(ns, str) or "." not in ns or ns.startswith(".") or ns.endswith("."):
        raise CommandError(73, "InvalidNamespace", "Invalid namespace specified '%s'" % (ns,))
    db, coll = ns.split(".", 1)
    if "key" not in body:
        raise CommandError(40414, "Location40414",
                           "BSON field 'shardCollection.key' is missing but a required field")
    key = dict(body["key"]) if isinstance(body["key"], dict) else body["key"]
    hashed = _check_pattern(key)
    unique = bool(body.get("unique"))
    if hashed and unique:
        raise CommandError(72, "InvalidOptions",
                           "Hashed shard keys cannot be declared unique. It's possible to "
                           "ensure uniqueness on the hashed field by declaring an additional "
                           "(non-hashed) unique index on the field.")
    if db in ("admin", "local", "config") or coll.startswith("system."):
        raise CommandError(20, "IllegalOperation", "can't shard %s" % ns)
    c = ctx.view.get(db, coll)
    if c is not None and c.shard_key is not None:
        if list(c.shard_key.items()) == list(key.items()):
            return {"collectionsharded": ns, "ok": 1.0}
        raise CommandError(23, "AlreadyInitialized",
                           "sharding already enabled for collection %s with options "
                           "{ key: %s, unique: %s }" % (ns, _pattern_text(c.shard_key),
                                                       "false"))
    if c is not None and getattr(c, "options", {}).get("timeseries"):
        raise CommandError(238, "NotImplemented",
                           "the stand-in does not shard time series collections")
    fields = list(key.items())
    have = c is not None and any(
        list(dict(i["key"]).items())[:len(fields)] == fields for i in c.indexes)
    if not have:
        if c is not None and c.docs:
            raise CommandError(72, "InvalidOptions",
                               "Please create an index that starts with the proposed shard "
                               "key before sharding the collection")
        c = ctx.view.ensure(db, coll)
        spec = {"v": 2, "key": dict(key),
                "name": "_".join("%s_%s" % (k, v) for k, v in fields)}
        if unique:
            spec["unique"] = True
        c.add_index(spec)
        ctx.view.emit({"op": "createIndexes", "db": db, "coll": coll,
                       "wall": datetime.datetime.utcnow(), "indexes": [spec]})
    c.shard_key = dict(key)
    return {"collectionsharded": ns, "ok": 1.0}


def _path_value(doc, path):
    cur = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def document_key(pattern, doc):
    """documentKey of a change event on a sharded collection: each field of
    the shard key pattern in order (a missing one null, as the shard key of
    a document missing it), then _id unless the pattern holds it."""
    doc = doc or {}
    out = SON()
    for field in pattern:
        out[field] = _path_value(doc, field)
    if "_id" not in out:
        out["_id"] = doc.get("_id")
    # encoded as an embedded document: bson moves _id first in a top-level one
    raw = bson.encode({"k": out})
    return RawBSONDocument(raw[7:-1])


def _equality_fields(q, out):
    if not isinstance(q, dict):
        return
    for k, v in q.items():
        if k == "$and" and isinstance(v, list):
            for part in v:
                _equality_fields(part, out)
        elif not k.startswith("$"):
            if isinstance(v, dict) and v and all(op.startswith("$") for op in v):
                if "$eq" in v:
                    out.add(k)
            else:
                out.add(k)


def check_find_and_modify(coll, query):
    """mongos routes findAndModify by its shard key: the query must hold an
    equality on every field of it."""
    fields = set()
    _equality_fields(query, fields)
    if not all(f in fields for f in coll.shard_key):
        raise CommandError(61, "ShardKeyNotFound",
                           "Query for sharded findAndModify must contain the shard key")


def check_shard_key_change(ctx, coll, query, old, new, multi):
    """An update that changes the shard key's value, checked as the shard's
    update stage does (MongoDB 6.0): the query must hold equality on the
    whole shard key (31025), the update must not be multi (InvalidOptions),
    and it must run in a transaction or as a retryable write
    (IllegalOperation).  On one shard the document never changes owner."""
    if all(_path_value(old, f) == _path_value(new, f) for f in coll.shard_key):
        return
    fields = set()
    _equality_fields(query, fields)
    if not all(f in fields for f in coll.shard_key):
        raise CommandError(31025, "Location31025",
                           "Shard key update is not allowed without specifying the full "
                           "shard key in the query")
    if multi:
        raise CommandError(72, "InvalidOptions",
                           "Multi-update operations are not allowed when updating the "
                           "shard key field.")
    if ctx.body.get("txnNumber") is None:
        raise CommandError(20, "IllegalOperation",
                           "Must run update to shard key field in a multi-statement "
                           "transaction or with retryWrites: true.")
