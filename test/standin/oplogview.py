"""local.oplog.rs: the stand-in's oplog read through find, in mongod's format.

Tests compare what a consumer of change streams stored with what the server
logged.  On a real replica set the place to read that is the capped
collection local.oplog.rs; the stand-in answers a find on the same namespace
from its in-memory oplog (oplog.py), so one test reads both.

Rules of this file:
- Read only: local.oplog.rs is a view of oplog.py's retained entries, built
  per find with the server's lock held (as every command runs).  Any other
  collection of "local" is empty, as on a fresh mongod.
- Entry shapes follow mongod 6.0 (fields ts, t, v, op, ns, ui, o, o2, wall;
  lsid, txnNumber, prevOpTime for transactions):
    insert   {op: "i", ns, ui, o: <document>, o2: {_id}}
    update   {op: "u", ns, ui, o: {$v: 2, diff: {u|i: {<field>: <new value>},
              d: {<field>: false}}}, o2: {_id}}
    replace  {op: "u", ns, ui, o: <new document>, o2: {_id}}
    delete   {op: "d", ns, ui, o: {_id}}
    commands {op: "c", ns: "<db>.$cmd", o: {create|drop|renameCollection|
              dropDatabase|createIndexes|dropIndexes|collMod: ...}}
  The entries of one committed transaction are one {op: "c", ns: "admin.$cmd",
  o: {applyOps: [...]}} entry at their shared cluster time, in txnOpIndex
  order.  An update's diff sets every top-level field the update touched to
  its whole new value (a coarser diff than mongod's, with the same effect);
  it is always a v2 diff.  Before anything has left the oplog, the first
  entry is mongod's {op: "n", o: {msg: "initiating set"}} at the origin.
- Filters, projections and sorts are MongoDB's (storage.py); {$natural: 1}
  and {$natural: -1} sort by oplog order.  A filter on ts with $gt / $gte
  starts the scan at that time instead of building every entry.
"""

import datetime

from bson.binary import Binary, UUID_SUBTYPE
from bson.int64 import Int64
from bson.timestamp import Timestamp

from . import storage
from .changestream import _collection_uuid

OPLOG_NS = ("local", "oplog.rs")
_TERM = Int64(1)
_VERSION = Int64(2)


_UIS = {}


def _ui(db, coll):
    u = _UIS.get((db, coll))
    if u is None:
        u = _UIS[(db, coll)] = Binary(_collection_uuid(db, coll), UUID_SUBTYPE)
    return u


def _diff(entry):
    """A v2 update diff of an update entry: whole top-level fields."""
    pre = entry.get("pre") or {}
    doc = entry.get("doc") or {}
    upd = entry.get("upd") or {}
    tops = []
    paths = list(upd.get("updatedFields") or {}) + list(upd.get("removedFields") or [])
    paths += [t.get("field", "") for t in upd.get("truncatedArrays") or []
              if isinstance(t, dict)]
    for path in paths:
        top = str(path).split(".", 1)[0]
        if top not in tops:
            tops.append(top)
    diff = {}
    for top in tops:
        if top in doc:
            kind = "u" if top in pre else "i"
            diff.setdefault(kind, {})[top] = doc[top]
        else:
            diff.setdefault("d", {})[top] = False
    return {"$v": 2, "diff": diff}


def _op_fields(e):
    """(op, ns, o, o2 or None, with ui) of one entry, mongod's shapes."""
    op, db, coll = e["op"], e["db"], e.get("coll")
    ns = "%s.%s" % (db, coll)
    key = e.get("key")
    if op == "insert":
        return "i", ns, e["doc"], key, True
    if op == "update":
        return "u", ns, _diff(e), key, True
    if op == "replace":
        return "u", ns, e["doc"], key, True
    if op == "delete":
        return "d", ns, key, None, True
    cmd_ns = "%s.$cmd" % db
    if op == "create":
        o = {"create": coll}
        o.update(e.get("options") or {})
        return "c", cmd_ns, o, None, True
    if op == "drop":
        return "c", cmd_ns, {"drop": coll}, None, True
    if op == "rename":
        to = e.get("to") or {}
        return "c", cmd_ns, {"renameCollection": ns,
                             "to": "%s.%s" % (to.get("db"), to.get("coll")),
                             "stayTemp": False}, None, True
    if op == "dropDatabase":
        return "c", cmd_ns, {"dropDatabase": 1}, None, False
    if op == "createIndexes":
        specs = e.get("indexes") or []
        o = {"createIndexes": coll}
        if len(specs) == 1 and isinstance(specs[0], dict):
            o.update(specs[0])
        else:
            o["indexes"] = specs
        return "c", cmd_ns, o, None, True
    if op == "dropIndexes":
        names = e.get("indexes")
        return "c", cmd_ns, {"dropIndexes": coll, "index": names}, None, True
    if op == "collMod":
        o = {"collMod": coll}
        o.update(e.get("options") or {})
        return "c", cmd_ns, o, None, True
    return "n", "", {"msg": "stand-in entry %s" % op}, None, False


def _inner(e):
    op, ns, o, o2, with_ui = _op_fields(e)
    d = {"op": op, "ns": ns}
    if with_ui:
        d["ui"] = _ui(e["db"], e.get("coll") or "")
    d["o"] = o
    if o2 is not None:
        d["o2"] = o2
    return d


def _entry_doc(e, ts):
    d = {"ts": ts, "t": _TERM, "v": _VERSION}
    d.update(_inner(e))
    d["wall"] = e.get("wall")
    return d


def _txn_doc(group, ts):
    first = group[0]
    return {"lsid": first.get("lsid"), "txnNumber": first.get("txnNumber"),
            "op": "c", "ns": "admin.$cmd",
            "o": {"applyOps": [_inner(e) for e in group]},
            "ts": ts, "t": _TERM, "v": _VERSION, "wall": first.get("wall"),
            "prevOpTime": {"ts": Timestamp(0, 0), "t": Int64(-1)}}


def _start_key(flt):
    """The (secs, inc, 0) a ts filter starts at, or None: only a top-level
    {ts: {$gt|$gte: Timestamp}} narrows the scan (the rest is rechecked)."""
    if not isinstance(flt, dict):
        return None
    cond = flt.get("ts")
    if not isinstance(cond, dict):
        return None
    best = None
    for op in ("$gt", "$gte"):
        v = cond.get(op)
        if isinstance(v, Timestamp):
            k = (v.time, v.inc, 0)
            if best is None or k > best:
                best = k
    return best


def entries(server, flt):
    """Oplog documents (dicts) in oplog order, starting where flt allows."""
    log = server.oplog
    docs = []
    start = log.first_seq
    key = _start_key(flt)
    if key is not None:
        start = max(start, log.seq_at_or_after(key))
    elif not getattr(log, "_trimmed", False):
        origin = log.origin()
        docs.append({"ts": origin, "t": _TERM, "v": _VERSION, "op": "n",
                     "ns": "", "o": {"msg": "initiating set"},
                     "wall": datetime.datetime.utcfromtimestamp(origin.time)})
    seq, end = start, log.end_seq
    # A transaction's first entry may lie before the start key's position
    # only if the key points inside it; keys are (secs, inc, 0), so it cannot.
    while seq < end:
        e, k, _ = log.at(seq)
        if e.get("lsid") is not None and e.get("txnNumber") is not None:
            group = [e]
            seq += 1
            while seq < end and log.key_at(seq)[:2] == k[:2]:
                group.append(log.at(seq)[0])
                seq += 1
            docs.append(_txn_doc(group, e["ts"]))
            continue
        docs.append(_entry_doc(e, e["ts"]))
        seq += 1
    return docs


def _split_ts(flt):
    """(ts bounds, rest of the filter) when flt's ts condition is only
    $gt / $gte / $lt / $lte on Timestamps (checked here, exactly and fast),
    else (None, flt)."""
    cond = flt.get("ts") if isinstance(flt, dict) else None
    if not isinstance(cond, dict) or not cond or \
            not all(op in ("$gt", "$gte", "$lt", "$lte") and isinstance(v, Timestamp)
                    for op, v in cond.items()):
        return None, flt
    return cond, {k: v for k, v in flt.items() if k != "ts"}


_CMP = {"$gt": lambda a, b: a > b, "$gte": lambda a, b: a >= b,
        "$lt": lambda a, b: a < b, "$lte": lambda a, b: a <= b}


def find(server, flt, sort):
    """Matching oplog documents of local.oplog.rs, sorted as asked."""
    docs = entries(server, flt)
    bounds, rest = _split_ts(flt)
    if bounds:
        tests = [(_CMP[op], v) for op, v in bounds.items()]
        docs = [d for d in docs if all(f(d["ts"], v) for f, v in tests)]
    pred = storage.compile_filter(rest)
    if pred is not None:
        docs = [d for d in docs if pred(d)]
    if sort:
        if list(sort) == ["$natural"]:
            if sort["$natural"] < 0:
                docs.reverse()
        else:
            docs = storage.sort_docs(docs, sort, get=lambda d: d)
    return docs
