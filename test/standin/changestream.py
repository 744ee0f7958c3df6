"""$changeStream: options, start points, resume tokens, events, user stages.

A change stream cursor reads the in-memory oplog (oplog.py) by sequence
number and turns entries into change events shaped as MongoDB's manual
describes them ("Change Events").  Everything here runs with the oplog lock
held; a getMore that has nothing to return waits on that lock's condition.

Resume tokens.  `_id` is {_data: 28 upper-case hex digits}:

    82 | secs (8) | inc (8) | txnOpIndex (8) | kind (2)

kind 80 is an event, 81 the invalidate that follows the event with the same
prefix, 00 a high-water mark: "every event before this cluster time has been
seen".  Fixed width and big-endian, so tokens compared as strings sort in
event order, and a token names one position of the oplog exactly.

Rules of this file:
- Each event is built and BSON-encoded once per oplog entry and stream
  variant (fullDocument, fullDocumentBeforeChange, showExpandedEvents); the
  encoded bytes are cached next to the entry and handed out as
  RawBSONDocument, which the encoder copies without decoding.  Only
  updateLookup events (a live read of the store) and events run through user
  stages are built per cursor.
- User stages never change what is resumable: the position and the
  postBatchResumeToken advance over events a $match drops, and an event whose
  `_id` a stage changed or removed fails the stream (280).
- Errors use MongoDB's codes and messages; 280 and 286 carry the
  NonResumableChangeStreamError label as mongod's do.
"""

import struct
import time
import uuid
from collections.abc import Mapping

import bson
from bson import Timestamp
from bson.raw_bson import RawBSONDocument

from . import legacy
from .errors import CommandError
from .journal import CODEC
from .oplog import _id_key, millis

# -- codes not (yet) in errors.py ---------------------------------------------
_BAD_VALUE = (2, "BadValue")
_FAILED_TO_PARSE = (9, "FailedToParse")
_TYPE_MISMATCH = (14, "TypeMismatch")
_ILLEGAL_OPERATION = (20, "IllegalOperation")
_NO_MATCHING_DOCUMENT = (47, "NoMatchingDocument")
_INVALID_OPTIONS = (72, "InvalidOptions")
_INVALID_NAMESPACE = (73, "InvalidNamespace")
_INVALID_RESUME_TOKEN = (260, "InvalidResumeToken")
_FATAL = (280, "ChangeStreamFatalError")
_HISTORY_LOST = (286, "ChangeStreamHistoryLost")
_BAD_STAGE_SPEC = (40323, "Location40323")
_UNRECOGNIZED_STAGE = (40324, "Location40324")
_UNKNOWN_FIELD = (40415, "Location40415")
_NOT_FIRST_STAGE = (40602, "Location40602")
_BAD_TOKEN = (40647, "Location40647")
_TOKEN_FIELD = (40649, "Location40649")
_ONE_START_OPTION = (40674, "Location40674")
_SPEC_NOT_OBJECT = (50808, "Location50808")
_BOTH_TOKENS = (50865, "Location50865")
_REDACT_RESULT = (17053, "Location17053")

_NON_RESUMABLE = ("NonResumableChangeStreamError",)

_HISTORY_LOST_MSG = ("Resume of change stream was not possible, as the resume point may "
                     "no longer be in the oplog.")


def _error(code, msg, labels=()):
    return CommandError(code[0], code[1], msg, labels)


# -- resume tokens -------------------------------------------------------------
KIND_HWM = 0x00
KIND_EVENT = 0x80
KIND_INVALIDATE = 0x81
_TOKEN_LEN = 28


def make_token(key):
    """{_data: hex} of a position key (secs, inc, txnOpIndex, kind)."""
    return {"_data": "82%08X%08X%08X%02X" % key}


def token_key(token, option="resumeAfter"):
    """Parse a token document into its position key, or raise as mongod."""
    if not isinstance(token, Mapping):
        raise _error(_TYPE_MISMATCH, "BSON field '$changeStream.%s' is the wrong type '%s', "
                     "expected type 'object'" % (option, _type_name(token)))
    data = token.get("_data")
    if not isinstance(data, str):
        raise _error(_BAD_TOKEN, "Bad resume token: _data of missing or of wrong type. "
                     "Expected string, got %s" % _type_name(data))
    for field in token:
        if field not in ("_data", "_typeBits"):
            raise _error(_TOKEN_FIELD, "Bad resume token: got unexpected field '%s'" % field)
    try:
        bytes.fromhex(data)
    except ValueError:
        raise _error(_FAILED_TO_PARSE, "resume token string was not a valid hex string: %r"
                     % data) from None
    if len(data) != _TOKEN_LEN or data[:2] != "82" or data[-2:].upper() not in ("00", "80", "81"):
        raise _error(_INVALID_RESUME_TOKEN, "Bad resume token: %r is not a resume token of "
                     "this server (expected %d hex digits starting with 82)" % (data, _TOKEN_LEN))
    return (int(data[2:10], 16), int(data[10:18], 16), int(data[18:26], 16), int(data[26:], 16))


def hwm_after(ts):
    """The high-water-mark key that sorts after every event at or before ts."""
    if ts.inc >= 0xFFFFFFFF:
        return (ts.time + 1, 0, 0, KIND_HWM)
    return (ts.time, ts.inc + 1, 0, KIND_HWM)


def hwm_at(ts):
    """The high-water-mark key that sorts before every event at ts."""
    return (ts.time, ts.inc, 0, KIND_HWM)


# -- options -------------------------------------------------------------------
_FULL_DOCUMENT = ("default", "updateLookup", "whenAvailable", "required")
_BEFORE_CHANGE = ("off", "whenAvailable", "required")
_BOOL_OPTIONS = ("allChangesForCluster", "showExpandedEvents", "showSystemEvents",
                 "showRawUpdateDescription", "allowToRunOnConfigDB", "allowToRunOnSystemNS",
                 "showMigrationEvents", "showCommitTimestamp")

_TYPE_NAMES = ((bool, "bool"), (bson.Int64, "long"), (int, "int"), (float, "double"),
               (str, "string"), (Timestamp, "timestamp"), (Mapping, "object"),
               (list, "array"), (bytes, "binData"), (type(None), "null"))


def _type_name(v):
    for t, name in _TYPE_NAMES:
        if isinstance(v, t):
            return name
    return type(v).__name__


def _wrong_type(field, value, expected):
    return _error(_TYPE_MISMATCH, "BSON field '$changeStream.%s' is the wrong type '%s', "
                  "expected type '%s'" % (field, _type_name(value), expected))


class _Options:
    """The parsed $changeStream specification."""

    __slots__ = ("full_document", "before_change", "resume_after", "start_after",
                 "start_at", "flags")

    def __init__(self, spec):
        if not isinstance(spec, Mapping):
            raise _error(_SPEC_NOT_OBJECT, "$changeStream stage expects a document as argument")
        self.full_document = "default"
        self.before_change = "off"
        self.resume_after = None
        self.start_after = None
        self.start_at = None
        self.flags = {}
        for field, value in spec.items():
            if field == "fullDocument":
                self.full_document = self._enum(field, value, _FULL_DOCUMENT)
            elif field == "fullDocumentBeforeChange":
                self.before_change = self._enum(field, value, _BEFORE_CHANGE)
            elif field == "resumeAfter":
                self.resume_after = token_key(value, field)
            elif field == "startAfter":
                self.start_after = token_key(value, field)
            elif field == "startAtOperationTime":
                if not isinstance(value, Timestamp):
                    raise _wrong_type(field, value, "timestamp")
                self.start_at = value
            elif field in _BOOL_OPTIONS:
                if not isinstance(value, bool):
                    raise _wrong_type(field, value, "bool")
                self.flags[field] = value
            else:
                raise _error(_UNKNOWN_FIELD, "BSON field '$changeStream.%s' is an unknown field."
                             % field)
        if self.resume_after is not None and self.start_after is not None:
            raise _error(_BOTH_TOKENS, "Do not specify both 'resumeAfter' and 'startAfter' in a "
                         "$changeStream stage")
        if self.start_at is not None and (self.resume_after or self.start_after):
            raise _error(_ONE_START_OPTION, "Only one type of resume option is allowed, but "
                         "multiple were found")
        if self.resume_after is not None and self.resume_after[3] == KIND_INVALIDATE:
            raise _error(_INVALID_RESUME_TOKEN, "Attempting to resume a change stream using "
                         "'resumeAfter' is not allowed from an invalidate notification")

    @staticmethod
    def _enum(field, value, allowed):
        if not isinstance(value, str):
            raise _wrong_type(field, value, "string")
        if value not in allowed:
            raise _error(_BAD_VALUE, "Enumeration value '%s' for field '$changeStream.%s' is not "
                         "a valid value." % (value, field))
        return value


# -- user stages ---------------------------------------------------------------
_ALLOWED_STAGES = ("$match", "$project", "$addFields", "$set", "$unset", "$replaceRoot",
                   "$replaceWith", "$redact", "$changeStreamSplitLargeEvent")
_OTHER_STAGES = frozenset((
    "$bucket", "$bucketAuto", "$collStats", "$count", "$currentOp", "$densify", "$documents",
    "$facet", "$fill", "$geoNear", "$graphLookup", "$group", "$indexStats", "$limit",
    "$listLocalSessions", "$listSessions", "$listSearchIndexes", "$lookup", "$merge", "$out",
    "$planCacheStats", "$sample", "$search", "$searchMeta", "$setWindowFields",
    "$shardedDataDistribution", "$skip", "$sort", "$sortByCount", "$unionWith", "$unwind",
    "$vectorSearch"))


def _check_stages(pipeline):
    if not isinstance(pipeline, list):
        raise _error(_TYPE_MISMATCH, "'pipeline' option must be specified as an array")
    stages = []
    for stage in pipeline:
        if not isinstance(stage, Mapping) or len(stage) != 1:
            raise _error(_BAD_STAGE_SPEC, "A pipeline stage specification object must contain "
                         "exactly one field.")
        (name, arg), = stage.items()
        if name == "$changeStream":
            raise _error(_NOT_FIRST_STAGE, "$changeStream is only valid as the first stage in a "
                         "pipeline")
        if name in _OTHER_STAGES:
            raise _error(_ILLEGAL_OPERATION, "%s is not permitted in a $changeStream pipeline"
                         % name)
        if name not in _ALLOWED_STAGES:
            raise _error(_UNRECOGNIZED_STAGE, "Unrecognized pipeline stage name: '%s'" % name)
        if name == "$changeStreamSplitLargeEvent":
            continue
        _check_stage_argument(name, arg)
        stages.append((name, arg))
    return stages


def _check_stage_argument(name, arg):
    """The shape checks mongod makes when it parses these stages."""
    if name == "$match" and not isinstance(arg, Mapping):
        raise _error((15959, "Location15959"), "the match filter must be an expression in an "
                     "object")
    if name == "$project" and not isinstance(arg, Mapping):
        raise _error((15969, "Location15969"), "$project specification must be an object")
    if name in ("$addFields", "$set") and not isinstance(arg, Mapping):
        raise _error((40272, "Location40272"), "%s specification stage must be an object, got %s"
                     % (name, _type_name(arg)))
    if name == "$replaceRoot":
        if not isinstance(arg, Mapping):
            raise _error((40229, "Location40229"), "expected an object as specification for "
                         "$replaceRoot stage, got %s" % _type_name(arg))
        if "newRoot" not in arg:
            raise _error((40231, "Location40231"), "no newRoot specified for the $replaceRoot "
                         "stage")
    if name == "$unset":
        fields = [arg] if isinstance(arg, str) else arg
        if not isinstance(fields, list) or not fields or \
                not all(isinstance(f, str) for f in fields):
            raise _error((31002, "Location31002"), "$unset specification must be a string or an "
                         "array containing only string values")


_mm = None


def _mongomock():
    global _mm
    if _mm is None:
        import mongomock
        import mongomock.aggregate
        _mm = mongomock
    return _mm


_REDACT_VARS = {"$$KEEP": "\0KEEP", "$$PRUNE": "\0PRUNE", "$$DESCEND": "\0DESCEND"}


def _literal_redact_vars(expr):
    if isinstance(expr, str):
        if expr in _REDACT_VARS:
            return {"$literal": _REDACT_VARS[expr]}
        return expr
    if isinstance(expr, Mapping):
        return {k: _literal_redact_vars(v) for k, v in expr.items()}
    if isinstance(expr, list):
        return [_literal_redact_vars(v) for v in expr]
    return expr


def _redact(doc, expr, evaluate):
    verdict = evaluate(expr, doc)
    if verdict == "\0KEEP":
        return doc
    if verdict == "\0PRUNE":
        return None
    if verdict != "\0DESCEND":
        raise _error(_REDACT_RESULT, "$redact's expression should not return anything aside from "
                     "the variables $$KEEP, $$DESCEND, and $$PRUNE, but returned %r" % (verdict,))
    out = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            v = _redact(v, expr, evaluate)
            if v is None:
                continue
        elif isinstance(v, list):
            kept = []
            for item in v:
                if isinstance(item, dict):
                    item = _redact(item, expr, evaluate)
                    if item is None:
                        continue
                kept.append(item)
            v = kept
        out[k] = v
    return out


def run_stages(stages, docs):
    """Run checked user stages over a list of documents (dicts); return the list.

    $match, $project, $addFields/$set and $replaceRoot use mongomock's
    handlers; $replaceWith, $unset and $redact are built on them here.
    """
    mm = _mongomock()
    agg = mm.aggregate
    try:
        for name, arg in stages:
            if not docs:
                break
            if name == "$match":
                docs = agg._handle_match_stage(docs, None, arg)
            elif name == "$project":
                docs = agg._handle_project_stage(docs, None, arg)
            elif name in ("$addFields", "$set"):
                docs = agg._handle_add_fields_stage(docs, None, arg)
            elif name == "$replaceRoot":
                docs = agg._handle_replace_root_stage(docs, None, arg)
            elif name == "$replaceWith":
                docs = agg._handle_replace_root_stage(docs, None, {"newRoot": arg})
            elif name == "$unset":
                fields = [arg] if isinstance(arg, str) else arg
                if not isinstance(fields, list) or not fields or \
                        not all(isinstance(f, str) for f in fields):
                    raise _error(_FAILED_TO_PARSE, "$unset specification must be a string or an "
                                 "array containing only string values")
                docs = agg._handle_project_stage(docs, None, {f: 0 for f in fields})
            elif name == "$redact":
                expr = _literal_redact_vars(arg)

                def evaluate(e, d):
                    return agg._parse_expression(e, d, ignore_missing_keys=True)
                docs = [d for d in (_redact(doc, expr, evaluate) for doc in docs) if d is not None]
    except CommandError:
        raise
    except mm.OperationFailure as e:
        raise CommandError(e.code or _BAD_VALUE[0], "Location%d" % e.code if e.code
                           else _BAD_VALUE[1], str(e)) from None
    except NotImplementedError as e:
        raise _error(_BAD_VALUE, "not supported by the stand-in in a change stream "
                     "pipeline: %s" % e) from None
    return docs


# -- events --------------------------------------------------------------------
_OPERATION_TYPE = {
    "insert": "insert", "update": "update", "replace": "replace", "delete": "delete",
    "drop": "drop", "rename": "rename", "dropDatabase": "dropDatabase", "create": "create",
    "createIndexes": "createIndexes", "dropIndexes": "dropIndexes", "collMod": "modify",
}
_CRUD = frozenset(("insert", "update", "replace", "delete"))
_EXPANDED_ONLY = frozenset(("create", "createIndexes", "dropIndexes", "collMod"))
_PRE_IMAGE_OPS = frozenset(("update", "replace", "delete"))
_INTERNAL_DBS = frozenset(("admin", "config", "local"))

LEVEL_COLLECTION, LEVEL_DATABASE, LEVEL_CLUSTER = "collection", "database", "cluster"

_MAX_BATCH_BYTES = 16 * 1024 * 1024 - 64 * 1024   # room for the reply around the events
DEFAULT_FIRST_BATCH = 101
DEFAULT_AWAIT_MS = 1000

_encode = legacy.encode
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_TS = struct.Struct("<II")      # BSON Timestamp: increment, then seconds


# -- BSON by concatenation -------------------------------------------------------
# Events are assembled from encoded pieces: the documents of an entry are
# encoded once (oplog.py does it while journalling) and copied into every
# event that shows them; names, namespaces and tokens are a few bytes each.

def _bson_doc(parts):
    body = b"".join(parts)
    return _I32.pack(len(body) + 5) + body + b"\x00"


def _element(name, value):
    """One encoded element (type, name, value) of any BSON value."""
    return _encode({name: value}, False, CODEC)[4:-1]


def _raw(value):
    """The encoded bytes of a document value (dict or RawBSONDocument)."""
    if isinstance(value, RawBSONDocument):
        return value.raw
    return _encode(value, False, CODEC)


def _raw_element(name_b, raw):
    """A document element from encoded bytes, or null for None."""
    if raw is None:
        return b"\x0a" + name_b
    return b"\x03" + name_b + raw


def _string_element(name_b, value):
    data = value.encode("utf-8")
    return b"\x02" + name_b + _I32.pack(len(data) + 1) + data + b"\x00"


def _token_bytes(key):
    """{_data: hex} encoded; 45 bytes, its string 28 digits and a NUL."""
    return (b"\x2d\x00\x00\x00\x02_data\x00\x1d\x00\x00\x00"
            + ("82%08X%08X%08X%02X" % key).encode() + b"\x00\x00")


_OPERATION_TYPE_ELEMENT = {op: _string_element(b"operationType\x00", name)
                           for op, name in (("insert", "insert"), ("update", "update"),
                                            ("replace", "replace"), ("delete", "delete"),
                                            ("drop", "drop"), ("rename", "rename"),
                                            ("dropDatabase", "dropDatabase"),
                                            ("create", "create"),
                                            ("createIndexes", "createIndexes"),
                                            ("dropIndexes", "dropIndexes"),
                                            ("collMod", "modify"), ("invalidate", "invalidate"))}
_ns_bytes = {}
_uuids = {}


def _ns_raw(db, coll):
    raw = _ns_bytes.get((db, coll))
    if raw is None:
        ns = {"db": db} if coll is None else {"db": db, "coll": coll}
        raw = _ns_bytes[(db, coll)] = _encode(ns, False, CODEC)
    return raw


def _collection_uuid(db, coll):
    """A stable collectionUUID per namespace (the store keeps no UUIDs)."""
    ns = "%s.%s" % (db, coll)
    u = _uuids.get(ns)
    if u is None:
        u = _uuids[ns] = uuid.uuid5(uuid.NAMESPACE_URL, "qleaf-standin:" + ns).bytes
    return u


def _wall_millis(entry, cache):
    ms = cache.get("wall")
    if ms is None:
        ms = cache["wall"] = millis(entry["wall"])
    return ms


def _entry_doc(entry, cache, field):
    """Encoded entry[field] ("doc", "pre", "key"), cached; None if absent."""
    raw = cache.get(field)
    if raw is None:
        value = entry.get(field)
        if value is None:
            return None
        raw = cache[field] = _raw(value)
    return raw


def _document_key(entry, cache):
    """The encoded documentKey, cut out of the document's bytes when it is
    {_id: the document's _id} (as for every write of the stand-in)."""
    key = entry.get("key")
    field = "doc" if entry.get("doc") is not None else "pre"
    doc = entry.get(field)
    if doc is not None and (key is None or (type(key) is dict and len(key) == 1 and
                                            "_id" in key and key["_id"] is doc.get("_id"))):
        raw = _id_key(_entry_doc(entry, cache, field))
        if raw is not None:
            return raw
    if key is None:
        key = {"_id": (doc or {}).get("_id")}
    return _raw(key)


def _describe(entry):
    return "{operationType: %s, ns: %s.%s, documentKey: %r, clusterTime: %r}" % (
        _OPERATION_TYPE.get(entry.get("op")), entry.get("db"), entry.get("coll"),
        entry.get("key"), entry.get("ts"))


class ChangeStreamCursor:
    """One open change stream; see next_batch."""

    def __init__(self, server, db, coll, level, opts, stages):
        self._oplog = server.oplog
        self._server = server
        self.db = db
        self.coll = coll
        self.level = level
        if level == LEVEL_COLLECTION:
            self.ns = "%s.%s" % (db, coll)
        elif level == LEVEL_DATABASE:
            self.ns = "%s.$cmd.aggregate" % db
        else:
            self.ns = "admin.$cmd.aggregate"
        self._fd = opts.full_document
        self._fdbc = opts.before_change
        self._expanded = bool(opts.flags.get("showExpandedEvents"))
        self._variant = (self._fd if self._fd in ("default", "updateLookup") else "image",
                         self._fdbc != "off", self._expanded)
        self._stages = stages
        self._closed = False
        self._failure = None
        self._pending = []      # [(key, raw or None, closes)] of a partly consumed entry
        self._verify = None     # (secs, inc, idx) of a future token still to be found
        self._last_returned = None
        self._start(opts)

    # -- start point ---------------------------------------------------------

    def _start(self, opts):
        oplog = self._oplog
        token = opts.resume_after or opts.start_after
        if token is not None:
            self._check_history(Timestamp(token[0], token[1]))
            pos = token
            if token[3] != KIND_HWM:
                where = token[:3]
                seq = oplog.seq_at_or_after(where)
                found = seq < oplog.end_seq and oplog.key_at(seq) == where
                if not found:
                    if Timestamp(token[0], token[1]) <= oplog.cluster_time():
                        raise self._token_not_found(token)
                    self._verify = where   # a token from the future: check when we get there
        elif opts.start_at is not None:
            self._check_history(opts.start_at)
            pos = hwm_at(opts.start_at)
        else:
            pos = hwm_after(oplog.cluster_time())
        self._pos = pos
        self._seq = oplog.seq_at_or_after(pos[:3])

    def _check_history(self, ts):
        if self._oplog.history_lost(ts):
            raise _error(_HISTORY_LOST, _HISTORY_LOST_MSG, _NON_RESUMABLE)

    @staticmethod
    def _token_not_found(key):
        return _error(_FATAL, "cannot resume stream; the resume token was not found. %s"
                      % make_token(key), _NON_RESUMABLE)

    # -- batches ---------------------------------------------------------------

    @property
    def closed(self):
        return self._closed

    def next_batch(self, batch_size, max_await_ms, first):
        """Return (events, postBatchResumeToken, closed).

        The first batch (the aggregate) returns at once; a getMore waits up to
        max_await_ms (default 1000) and returns as soon as an event is there.
        batch_size: for the first batch None means 101 and 0 an empty batch;
        for a getMore None or 0 means as many as fit in 16 MiB.  After an
        invalidate event the stream is closed.  Called with the oplog lock
        held.
        """
        if self._failure is not None:
            raise self._failure
        if self._closed:
            return [], make_token(self._pos), True
        if first:
            limit = DEFAULT_FIRST_BATCH if batch_size is None else int(batch_size)
        else:
            limit = int(batch_size) if batch_size else 1 << 62
        try:
            events = self._fill(limit) if limit > 0 else []
            if not events and not first and not self._closed:
                wait_ms = DEFAULT_AWAIT_MS if max_await_ms is None else max(0, max_await_ms)
                deadline = time.monotonic() + wait_ms / 1000.0
                lock = self._oplog.lock
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    lock.wait(remaining)
                    events = self._fill(limit)
                    if events or self._closed:
                        break
            return events, self._post_batch_token(bool(events)), self._closed
        except CommandError as e:
            self._failure = e
            self._closed = True
            raise

    def _post_batch_token(self, returned):
        oplog = self._oplog
        if self._closed:
            return make_token(self._pos)
        if self._pending or self._seq < oplog.end_seq:
            return make_token(self._pos)          # stopped inside the oplog
        if returned and self._last_returned == self._pos:
            return make_token(self._pos)
        return make_token(max(self._pos, hwm_after(oplog.cluster_time())))

    def _fill(self, limit):
        oplog = self._oplog
        out = []
        size = 0
        pending = self._pending
        while True:
            if not pending:
                if self._closed:
                    break
                seq = self._seq
                if seq >= oplog.end_seq:
                    break
                if seq < oplog.first_seq:
                    raise _error(_HISTORY_LOST, _HISTORY_LOST_MSG, _NON_RESUMABLE)
                self._build(seq, pending)
                self._seq = seq + 1
                if not pending:
                    continue
            key, raw, closes = pending[0]
            if raw is not None:
                n = len(raw)
                if len(out) >= limit or (out and size + n > _MAX_BATCH_BYTES):
                    break
                out.append(RawBSONDocument(raw))
                size += n
                self._last_returned = key
            del pending[0]
            self._pos = key
            if closes:
                self._closed = True
                del pending[:]
                break
        return out

    # -- building events -------------------------------------------------------

    def _build(self, seq, pending):
        """Append this stream's events of oplog entry seq to pending."""
        oplog = self._oplog
        entry, k, cache = oplog.at(seq)
        if self._verify is not None:
            if k == self._verify:
                self._verify = None
            elif k > self._verify:
                raise self._token_not_found(self._pos)
        op = entry["op"]
        invalidates = self._visible(entry, op)
        if invalidates is None:
            return
        if cache is None:
            cache = {}
            oplog.set_cache(seq, cache)
        pos = self._pos
        key = (k[0], k[1], k[2], KIND_EVENT)
        if key > pos:
            pending.append((key, self._event_bytes(entry, op, key, cache), False))
        if invalidates:
            ikey = (k[0], k[1], k[2], KIND_INVALIDATE)
            if ikey > pos:
                raw = cache.get("invalidate")
                if raw is None:
                    ts = entry["ts"]
                    raw = cache["invalidate"] = _bson_doc((
                        b"\x03_id\x00", _token_bytes(ikey), _OPERATION_TYPE_ELEMENT["invalidate"],
                        b"\x11clusterTime\x00", _TS.pack(ts.inc, ts.time),
                        b"\x09wallTime\x00", _I64.pack(_wall_millis(entry, cache))))
                if self._stages:
                    raw = self._run_stages(raw, ikey)
                pending.append((ikey, raw, True))

    def _visible(self, entry, op):
        """None if the stream does not see the entry, else whether it invalidates."""
        db = entry.get("db")
        level = self.level
        if op == "rename":
            to = entry.get("to") or {}
            if self._ns_match(db, entry.get("coll")) or \
                    self._ns_match(to.get("db"), to.get("coll")):
                return level == LEVEL_COLLECTION
            return None
        if op == "dropDatabase":
            if level == LEVEL_COLLECTION:
                return None
            if level == LEVEL_DATABASE:
                return True if db == self.db else None
            return False if db not in _INTERNAL_DBS else None
        if op in _EXPANDED_ONLY and not self._expanded:
            return None
        if entry.get("buckets"):
            # a time series collection's writes (timeseries.py)
            return None
        if not self._ns_match(db, entry.get("coll")):
            return None
        return op == "drop" and level == LEVEL_COLLECTION

    def _ns_match(self, db, coll):
        if not isinstance(coll, str) or coll.startswith("system."):
            return False
        level = self.level
        if level == LEVEL_COLLECTION:
            return db == self.db and coll == self.coll
        if level == LEVEL_DATABASE:
            return db == self.db
        return db not in _INTERNAL_DBS

    def _event_bytes(self, entry, op, key, cache):
        if not entry.get("preImages"):
            if op == "update" and self._fd == "required":
                raise _error(_NO_MATCHING_DOCUMENT, "Change stream was configured to require a "
                             "post-image for all update events, but the post-image was not "
                             "found for event: " + _describe(entry))
            if self._fdbc == "required" and op in _PRE_IMAGE_OPS:
                raise _error(_NO_MATCHING_DOCUMENT, "Change stream was configured to require a "
                             "pre-image for all update, delete and replace events, but the "
                             "pre-image was not found for event: " + _describe(entry))
        if op == "update" and self._fd == "updateLookup":
            raw = self._event(entry, op, key, cache)
        else:
            raw = cache.get(self._variant)
            if raw is None:
                raw = cache[self._variant] = self._event(entry, op, key, cache)
        if self._stages:
            raw = self._run_stages(raw, key)
        return raw

    def _run_stages(self, raw, key):
        docs = run_stages(self._stages, [legacy.decode(raw, CODEC)])
        if not docs:
            return None
        doc = docs[0]
        if doc.get("_id") != make_token(key):
            raise _error(_FATAL, "Encountered an event whose _id field, which contains the resume "
                         "token, was modified by the pipeline. Modifying the _id field of an "
                         "event makes it impossible to resume the stream from that point. Only "
                         "transformations that retain the unmodified _id field are allowed. "
                         "Expected: %s but found: %s"
                         % (make_token(key), doc.get("_id", "MISSING")),
                         _NON_RESUMABLE)
        return _encode(doc, False, CODEC)

    def _event(self, entry, op, key, cache):
        """The encoded change event of an entry, fields in mongod's order."""
        db = entry["db"]
        coll = entry.get("coll")
        ts = entry["ts"]
        expanded = self._expanded
        parts = [b"\x03_id\x00", _token_bytes(key), _OPERATION_TYPE_ELEMENT[op],
                 b"\x11clusterTime\x00", _TS.pack(ts.inc, ts.time)]
        if expanded and op != "dropDatabase":
            parts.append(b"\x05collectionUUID\x00\x10\x00\x00\x00\x04" + _collection_uuid(db, coll))
        parts.append(b"\x09wallTime\x00" + _I64.pack(_wall_millis(entry, cache)))
        crud = op in _CRUD
        if crud:
            doc_key = cache.get("key")
            if doc_key is None:
                doc_key = cache["key"] = _document_key(entry, cache)
        if op == "insert" or op == "replace":
            parts.append(_raw_element(b"fullDocument\x00", _entry_doc(entry, cache, "doc")))
        elif op == "update" and self._fd != "default":
            if self._fd == "updateLookup":
                id_value = (entry.get("key") or entry.get("doc") or {}).get("_id")
                current = self._server.store.lookup(db, coll, id_value)
                parts.append(_raw_element(b"fullDocument\x00",
                                          None if current is None else _raw(current)))
            elif entry.get("preImages"):
                parts.append(_raw_element(b"fullDocument\x00", _entry_doc(entry, cache, "doc")))
            else:
                parts.append(b"\x0afullDocument\x00")
        parts.append(b"\x03ns\x00" + _ns_raw(db, None if op == "dropDatabase" else coll))
        if op == "rename":
            to = entry.get("to") or {}
            parts.append(b"\x03to\x00" + _ns_raw(to.get("db"), to.get("coll")))
        if crud:
            parts.append(b"\x03documentKey\x00" + doc_key)
        if expanded:
            desc = self._operation_description(entry, op)
            if desc is not None:
                parts.append(_element("operationDescription", desc))
        if op == "update":
            upd = entry.get("upd") or {}
            ud = {"updatedFields": upd.get("updatedFields", {}),
                  "removedFields": upd.get("removedFields", []),
                  "truncatedArrays": upd.get("truncatedArrays", [])}
            if expanded:
                ud["disambiguatedPaths"] = upd.get("disambiguatedPaths", {})
            parts.append(_element("updateDescription", ud))
        if expanded and op == "create":
            parts.append(_string_element(b"nsType\x00", "collection"))
        if "txnOpIndex" in entry:
            parts.append(_element("lsid", entry["lsid"]))
            parts.append(b"\x12txnNumber\x00" + _I64.pack(int(entry["txnNumber"])))
        if self._fdbc != "off" and op in _PRE_IMAGE_OPS:
            pre = _entry_doc(entry, cache, "pre") if entry.get("preImages") else None
            parts.append(_raw_element(b"fullDocumentBeforeChange\x00", pre))
        return _bson_doc(parts)

    @staticmethod
    def _operation_description(entry, op):
        if op == "rename":
            to = entry.get("to") or {}
            return {"to": {"db": to.get("db"), "coll": to.get("coll")}}
        if op == "create" or op == "collMod":
            return dict(entry.get("options") or {})
        if op == "createIndexes":
            return {"indexes": list(entry.get("indexes") or [])}
        if op == "dropIndexes":
            return {"indexes": [{"name": i} if isinstance(i, str) else i
                                for i in entry.get("indexes") or []]}
        return None


def open_change_stream(server, db, coll, stage_spec, user_pipeline, cluster_wide=False):
    """Check a $changeStream aggregate and open its cursor (lock held).

    db, coll: the aggregate's namespace (coll None for `aggregate: 1`);
    stage_spec: the $changeStream argument; user_pipeline: the stages after
    it; cluster_wide: allChangesForCluster (also read from the spec).
    Raises CommandError as mongod does for bad options or start points.
    """
    opts = _Options(stage_spec)
    if coll in (1, "", None) or not isinstance(coll, str):
        coll = None
    all_changes = bool(cluster_wide) or bool(opts.flags.get("allChangesForCluster"))
    if all_changes and not (db == "admin" and coll is None):
        raise _error(_INVALID_OPTIONS, "A $changeStream with 'allChangesForCluster:true' may "
                     "only be opened on the 'admin' database, and with no collection name; "
                     "found %s" % (db if coll is None else "%s.%s" % (db, coll)))
    if db == "admin" and not all_changes:
        raise _error(_INVALID_NAMESPACE, "$changeStream may not be opened on the internal admin "
                     "database")
    if db == "local" or (db == "config" and not opts.flags.get("allowToRunOnConfigDB")):
        raise _error(_INVALID_NAMESPACE, "$changeStream may not be opened on the internal %s "
                     "database" % db)
    if coll is not None and coll.startswith("system.") and \
            not opts.flags.get("allowToRunOnSystemNS"):
        raise _error(_INVALID_NAMESPACE, "$changeStream may not be opened on the internal %s.%s "
                     "collection" % (db, coll))
    stages = _check_stages(user_pipeline or [])
    if all_changes:
        level = LEVEL_CLUSTER
    elif coll is None:
        level = LEVEL_DATABASE
    else:
        level = LEVEL_COLLECTION
    return ChangeStreamCursor(server, db, coll, level, opts, stages)


# The name the core's brief uses.
open_cursor = open_change_stream
