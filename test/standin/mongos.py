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
  "sharded": false and "primary" for an unsharded collection, the summed
  fields, avgObjSize as a double, nchunks and the shard's own reply under
  "shards";
- the $collStats stage: each shard's document carries "shard";
- every reply to a command in a transaction (and to commitTransaction /
  abortTransaction) carries "recoveryToken", with "recoveryShardId" once
  the transaction has written.

operationTime and $clusterTime are on every reply, as on the replica set:
mongos gives its cluster time as operationTime when it knows no later one.
"""

import datetime

from bson.int64 import Int64

from . import wire
from .errors import CommandError

ILLEGAL_OPERATION = (20, "IllegalOperation")


def shard_name(server):
    return server.replset


def hello(ctx, reply_name, max_wire_version):
    """The reply of hello / isMaster on a mongos (authentication fields are
    added by the caller, as for the replica set)."""
    server = ctx.server
    reply = {}
    if reply_name == "hello":
        reply["isWritablePrimary"] = True
    else:
        reply["ismaster"] = True
    reply["msg"] = "isdbgrid"
    if ctx.body.get("helloOk"):
        reply["helloOk"] = True
    reply.update({
        "topologyVersion": {"processId": server.process_id, "counter": Int64(0)},
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


def coll_stats(server, shard_reply):
    """mongos' collStats of an unsharded collection from its shard's reply."""
    shard = {k: v for k, v in shard_reply.items() if k != "ok"}
    scale = shard_reply.get("scaleFactor", 1)
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
