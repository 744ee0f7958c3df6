"""Time series collections, as mongod 7.0 shows them to a client.

mongod keeps a time series collection `c` as a view `c` over a clustered
bucket collection `system.buckets.c`.  The stand-in stores `c` as one
collection entry whose options hold `timeseries` (and `expireAfterSeconds`)
and whose documents are the measurements as inserted, so the journal, replay
and drop treat it as any collection; the bucket collection is not stored,
only listed.  What a client sees:

* `create` with `timeseries`: mongod's option checks and errors, and the
  bucketing defaults filled in as mongod stores them;
* listCollections: `{name, type: "timeseries", options, info: {readOnly:
  false}}` and the bucket collection `system.buckets.c` as a plain
  collection (no idIndex: it is clustered);
* insert: the time field must be a BSON date (write error 2 otherwise); not
  in a transaction (263);
* find, count, distinct, aggregate: the measurements, as on a collection;
* listIndexes: no _id index, one on the metaField and timeField (storage.py
  makes it with the collection);
* update: the 6.0/7.0 rules (multi only, no upsert, operator updates of the
  metaField only, queries on the metaField only; write error 72 otherwise);
* delete: any filter and limit (7.0); not in a transaction;
* findAndModify: 166 (mongod takes a collection lock, refused on a time
  series view); `$changeStream` on it: 166;
* commands naming `system.buckets.c`: NotImplemented (238), since the
  stand-in keeps no buckets;
* the writes emit oplog entries marked `buckets`, which change streams do
  not show (mongod writes them to the system bucket collection, which
  change streams leave out).
"""

from . import errors as E
from .errors import CommandError
from .storage import bson_type_name

BUCKETS_PREFIX = "system.buckets."
GRANULARITIES = {"seconds": (3600, 60), "minutes": (86400, 3600),
                 "hours": (2592000, 86400)}   # bucketMaxSpanSeconds, rounding
# the collection options mongod allows next to timeseries (and shows for one)
_ALLOWED = ("storageEngine", "indexOptionDefaults", "collation", "timeseries",
            "expireAfterSeconds")
_TS_FIELDS = ("timeField", "metaField", "granularity", "bucketRoundingSeconds",
              "bucketMaxSpanSeconds")
# create options in the order mongod's IDL serializes them (its checks of
# options that may not go with timeseries follow this order)
_CREATE_ORDER = ("capped", "autoIndexId", "idIndex", "size", "max", "storageEngine",
                 "validator", "validationLevel", "validationAction",
                 "indexOptionDefaults", "viewOn", "pipeline", "collation",
                 "changeStreamPreAndPostImages", "timeseries", "clusteredIndex",
                 "expireAfterSeconds", "encryptedFields")

TS_LOCK = (166, "CommandNotSupportedOnView")


def is_ts(c):
    return c is not None and "timeseries" in c.options


def bucket_of(name):
    """The time series collection name a system.buckets.<name> names, or None."""
    if isinstance(name, str) and name.startswith(BUCKETS_PREFIX):
        return name[len(BUCKETS_PREFIX):] or None
    return None


def _wrong_type(path, v, expected):
    return CommandError(*E.TYPE_MISMATCH, "BSON field '%s' is the wrong type '%s', "
                        "expected type%s %s" % (path, bson_type_name(v),
                                                "s" if expected.startswith("[") else "",
                                                expected if expected.startswith("[")
                                                else "'%s'" % expected))


def _safe_int(path, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or \
            type(v).__name__ == "Decimal128":
        raise _wrong_type(path, v, "[long, int, decimal, double]")
    if v != int(v):
        raise CommandError(*E.BAD_VALUE, "BSON field '%s' value must be an integer, "
                           "actual value '%s'" % (path, v))
    v = int(v)
    if v < 1:
        raise CommandError(51024, "Location51024", "BSON field '%s' value must be >= 1, "
                           "actual value '%d'" % (path, v))
    return v


def _parse(ts):
    """The timeseries argument as mongod's IDL parser reads it."""
    if not isinstance(ts, dict):
        raise _wrong_type("create.timeseries", ts, "object")
    for k in ts:
        if k not in _TS_FIELDS:
            raise CommandError(40415, "Location40415",
                               "BSON field 'create.timeseries.%s' is an unknown field." % k)
    if "timeField" not in ts:
        raise CommandError(40414, "Location40414", "BSON field 'create.timeseries.timeField' "
                           "is missing but a required field")
    out = {}
    for k in ("timeField", "metaField"):
        if k in ts:
            if not isinstance(ts[k], str):
                raise _wrong_type("create.timeseries.%s" % k, ts[k], "string")
            out[k] = ts[k]
    if "granularity" in ts:
        g = ts["granularity"]
        if not isinstance(g, str):
            raise _wrong_type("create.timeseries.granularity", g, "string")
        if g not in GRANULARITIES:
            raise CommandError(*E.BAD_VALUE, "Enumeration value '%s' for field "
                               "'create.timeseries.granularity' is not a valid value." % g)
        out["granularity"] = g
    for k in ("bucketRoundingSeconds", "bucketMaxSpanSeconds"):
        if k in ts:
            out[k] = _safe_int("create.timeseries.%s" % k, ts[k])
    return out


def _bucketing(ts):
    """mongod's validateAndSetBucketingParameters (7.0): checks, then the
    options as stored, in the IDL's field order."""
    gran = ts.get("granularity")
    span = ts.get("bucketMaxSpanSeconds")
    rounding = ts.get("bucketRoundingSeconds")
    dspan, drounding = GRANULARITIES[gran or "seconds"]
    if gran is not None:
        if span is not None and span != dspan:
            raise CommandError(*E.INVALID_OPTIONS, "Timeseries 'bucketMaxSpanSeconds' is not "
                               "configurable to a value other than the default of %d for "
                               "the provided granularity" % dspan)
        if rounding is not None and rounding != drounding:
            raise CommandError(*E.INVALID_OPTIONS, "Timeseries 'bucketRoundingSeconds' is "
                               "not configurable to a value other than the default of %d "
                               "for the provided granularity" % drounding)
        span, rounding = dspan, None
    elif span is not None or rounding is not None:
        if span is None or rounding is None:
            raise CommandError(*E.INVALID_OPTIONS, "Timeseries 'bucketMaxSpanSeconds' and "
                               "'bucketRoundingSeconds' need to be set alongside each other")
        if span != rounding:
            raise CommandError(*E.INVALID_OPTIONS, "Timeseries 'bucketRoundingSeconds' "
                               "needs to be equal to 'bucketMaxSpanSeconds'")
    else:
        gran, span = "seconds", dspan
    out = {"timeField": ts["timeField"]}
    if "metaField" in ts:
        out["metaField"] = ts["metaField"]
    if gran is not None:
        out["granularity"] = gran
    if rounding is not None:
        out["bucketRoundingSeconds"] = rounding
    out["bucketMaxSpanSeconds"] = span
    return out


def create_options(ctx, name, options):
    """Check a create with timeseries (options: the command's options in
    the order sent); returns the options to store."""
    ns = "%s.%s" % (ctx.db, name)
    if bucket_of(name) is not None:
        raise CommandError(238, "NotImplemented", "the stand-in keeps no time series "
                           "bucket collections: create the time series collection "
                           "'%s' instead" % bucket_of(name))
    ts = _parse(options["timeseries"])
    for k in sorted(options, key=lambda k: _CREATE_ORDER.index(k)
                    if k in _CREATE_ORDER else len(_CREATE_ORDER)):
        if k == "capped" and not options[k]:
            continue
        if k not in _ALLOWED and k != "comment":
            raise CommandError(*E.INVALID_OPTIONS, "%s: 'timeseries' is not allowed with "
                               "'%s'" % (ns, k))
    if "." in ts["timeField"]:
        raise CommandError(*E.INVALID_OPTIONS, "%s: 'timeField' must be a top-level field "
                           "and not contain a '.'" % ns)
    meta = ts.get("metaField")
    if meta is not None:
        if meta == "_id":
            raise CommandError(*E.INVALID_OPTIONS, "'metaField' cannot be \"_id\"")
        if meta == ts["timeField"]:
            raise CommandError(*E.INVALID_OPTIONS,
                               "'metaField' cannot be the same as 'timeField'")
        if "." in meta:
            raise CommandError(*E.INVALID_OPTIONS, "%s: 'metaField' must be a top-level "
                               "field and not contain a '.'" % ns)
    stored = {}
    if "expireAfterSeconds" in options:
        v = options["expireAfterSeconds"]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _wrong_type("create.expireAfterSeconds", v,
                              "[long, int, decimal, double]")
        if v < 0:
            raise CommandError(*E.INVALID_OPTIONS, "TTL index 'expireAfterSeconds' option "
                               "must be within an acceptable range, try a lower number")
        stored["expireAfterSeconds"] = int(v)
    for k in ("storageEngine", "indexOptionDefaults", "collation"):
        if k in options:
            stored[k] = options[k]
    stored["timeseries"] = _bucketing(ts)
    if ctx.txn is not None:
        raise CommandError(*E.OPERATION_NOT_SUPPORTED_IN_TRANSACTION,
                           "Cannot create a time-series collection in a multi-document "
                           "transaction.")
    if ctx.view.get(ctx.db, name) is not None:
        raise CommandError(*E.NAMESPACE_EXISTS, "Collection %s already exists." % ns)
    return stored


def coll_infos(c):
    """listCollections' entries for a time series collection: itself and its
    bucket collection."""
    shown = {k: c.options[k] for k in _ALLOWED if k in c.options}
    ts = {"name": c.name, "type": "timeseries", "options": shown,
          "info": {"readOnly": False}}
    bopts = {"clusteredIndex": True}
    if "expireAfterSeconds" in c.options:
        bopts["expireAfterSeconds"] = c.options["expireAfterSeconds"]
    bopts["timeseries"] = dict(c.options["timeseries"])
    buckets = {"name": BUCKETS_PREFIX + c.name, "type": "collection", "options": bopts,
               "info": {"readOnly": False, "uuid": c.uuid}}
    return [ts, buckets]


def check_measurement(c, doc):
    """A measurement's time field must be a BSON date (write error 2)."""
    import datetime
    tf = c.options["timeseries"]["timeField"]
    if not isinstance(doc.get(tf), datetime.datetime):
        raise CommandError(*E.BAD_VALUE, "'%s' must be present and contain a valid BSON UTC "
                           "datetime value" % tf)


def _top_fields(q, meta):
    """Raise 72 when a query of an update or delete names a field that is
    not the metaField (or uses $expr / $where), as mongod's translateQuery."""
    if isinstance(q, dict):
        for k, v in q.items():
            if k == "$expr":
                raise CommandError(*E.INVALID_OPTIONS, "Cannot use $expr when performing an "
                                   "update or delete on a time-series collection")
            if k == "$where":
                raise CommandError(*E.INVALID_OPTIONS, "Cannot use $where when performing an "
                                   "update or delete on a time-series collection")
            if not k.startswith("$"):
                if k.split(".", 1)[0] != meta:
                    raise CommandError(*E.INVALID_OPTIONS, "Cannot perform an update or "
                                       "delete on a time-series collection when querying "
                                       "on a field that is not the metaField '%s'" % meta)
            elif isinstance(v, list):
                for sub in v:
                    _top_fields(sub, meta)


def check_update(c, spec):
    """The 6.0/7.0 rules for an update statement on a time series collection."""
    meta = c.options["timeseries"].get("metaField")
    if meta is None:
        raise CommandError(*E.INVALID_OPTIONS, "Cannot perform an update on a time-series "
                           "collection that does not have a metaField")
    if not spec.get("multi"):
        raise CommandError(*E.INVALID_OPTIONS, "Cannot perform a non-multi update on a "
                           "time-series collection")
    if spec.get("upsert"):
        raise CommandError(*E.INVALID_OPTIONS, "Cannot perform an upsert on a time-series "
                           "collection")
    _top_fields(spec.get("q") or {}, meta)
    u = spec.get("u")
    if isinstance(u, list):
        raise CommandError(*E.INVALID_OPTIONS, "Cannot perform an update on a time-series "
                           "collection using a pipeline update")
    if not isinstance(u, dict) or not all(k.startswith("$") for k in u):
        raise CommandError(*E.INVALID_OPTIONS, "Cannot perform an update on a time-series "
                           "collection using a replacement document")
    for op, fields in u.items():
        for f, v in (fields.items() if isinstance(fields, dict) else ()):
            if f.split(".", 1)[0] != meta or (op == "$rename" and not (
                    isinstance(v, str) and v.split(".", 1)[0] == meta)):
                raise CommandError(*E.INVALID_OPTIONS, "Cannot perform an update on a "
                                   "time-series collection which updates a field that is "
                                   "not the metaField '%s'" % meta)


def check(ctx):
    """Called before a command's handler; raises for what mongod refuses on
    a time series collection (or on its bucket collection)."""
    name = ctx.body.get(ctx.name)
    if not isinstance(name, str) or not name or ctx.db in ("admin", "local", "config"):
        return
    base = bucket_of(name)
    if base is not None:
        if is_ts(ctx.view.get(ctx.db, base)) and ctx.name not in ("drop", "create"):
            raise CommandError(238, "NotImplemented", "the stand-in keeps no time series "
                               "buckets: %s.%s cannot be read or written; use the time "
                               "series collection %s.%s" % (ctx.db, name, ctx.db, base))
        return
    c = ctx.view.get(ctx.db, name)
    if not is_ts(c):
        return
    ns = "%s.%s" % (ctx.db, name)
    if ctx.name in ("findAndModify", "findandmodify"):
        raise CommandError(*TS_LOCK, "Taking %s lock for timeseries is not allowed" % ns)
    if ctx.name == "renameCollection":
        return
    if ctx.name == "aggregate":
        p = ctx.body.get("pipeline")
        if isinstance(p, list) and p and isinstance(p[0], dict) and "$changeStream" in p[0]:
            raise CommandError(*TS_LOCK, "Namespace %s is a timeseries collection" % ns)
    if ctx.txn is not None:
        if ctx.name == "insert":
            raise CommandError(*E.OPERATION_NOT_SUPPORTED_IN_TRANSACTION,
                               "Cannot insert into a time-series collection in a "
                               "multi-document transaction: %s" % ns)
        if ctx.name in ("update", "delete"):
            raise CommandError(*E.OPERATION_NOT_SUPPORTED_IN_TRANSACTION,
                               "Cannot perform an update or delete on a time-series "
                               "collection in a multi-document transaction: %s" % ns)


def names(view, db):
    """The time series collections of db (to mark the entries of a command)."""
    return {n for n, c in view.collections(db).items() if is_ts(c)}


def mark(entries, db, before, view):
    """Mark the oplog entries of writes to time series collections (those
    that were one before the command, or are one now): change streams do not
    show them."""
    now = None
    for e in entries:
        if e.get("db") != db or e.get("op") == "dropDatabase":
            continue
        coll = e.get("coll")
        if coll in before:
            e["buckets"] = True
            continue
        if now is None:
            now = names(view, db)
        if coll in now:
            e["buckets"] = True
