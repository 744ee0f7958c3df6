"""The data: databases, collections, documents, indexes, collection options.

Rules of this file:
- A stored document is a pair [dict, raw bytes].  The dict is never changed
  in place once stored: an update builds a new dict and a new pair.  So
  readers may hand out references (for cursors, for mongomock stages that
  do not mutate) without copying.  The bytes may be None until first read
  (documents replayed from the journal): read them with raw_of(pair).
- Documents are keyed by id_key(_id), which gives MongoDB's _id equality
  (1 == 1.0 == Int64(1), true != 1, a string never equals a number).
- Natural order is insertion order; an update keeps a document's place.
- apply_entry() replays an oplog entry (after-images, never operators) and
  is also how a committed transaction reaches the store.
"""

import copy
import datetime
import os

from bson.code import Code
from bson.dbref import DBRef
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.regex import Regex
from bson.binary import Binary
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.int64 import Int64 as _Int64
from bson.objectid import ObjectId as _ObjectId

from . import wire
from .legacy import Symbol, UNDEFINED
from .errors import code_name
from .errors import CommandError, DUPLICATE_KEY, NAMESPACE_EXISTS, \
    NAMESPACE_NOT_FOUND, INVALID_NAMESPACE, BAD_VALUE


def id_key(value):
    """A hashable key with MongoDB's equality for _id and index values.
    ObjectIds, strings and numbers are their own keys (1 == 1.0 == Int64(1)
    in Python too); everything else is a tuple tagged with its kind."""
    t = type(value)
    if t is _ObjectId or t is str or t is int or t is _Int64:
        return value
    if t is float:
        return value if value == value else ("nan",)
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and value != value:
            return ("nan",)
        return value
    if isinstance(value, Decimal128):
        d = value.to_decimal()
        if d.is_nan():
            return ("nan",)
        try:
            return float(d) if d != int(d) else int(d)
        except (OverflowError, ValueError):
            return float(d)
    if t is Symbol:
        return str(value)       # a symbol equals the string it holds
    if isinstance(value, str):
        # bson.Code is a str with a scope; code and a string never match
        return value if type(value) is str else ("raw", False, wire.encode({"v": value}))
    if isinstance(value, (dict, list, tuple)):
        return ("raw", type(value).__name__ == "dict",
                wire.encode({"v": _normalize(value)}))
    try:
        hash(value)
    except TypeError:
        return ("raw", False, wire.encode({"v": value}))
    return (type(value).__name__, value)


def _normalize(value):
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def raw_of(pair):
    """The encoded bytes of a stored pair (encoded now if not yet)."""
    raw = pair[1]
    if raw is None:
        raw = pair[1] = wire.encode(pair[0])
    return raw


def get_path(doc, path):
    """Value at a dotted path, or a sentinel when missing (no array fan-out)."""
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict):
            if part not in cur:
                return MISSING
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit():
            i = int(part)
            if i >= len(cur):
                return MISSING
            cur = cur[i]
        else:
            return MISSING
    return cur


class _Missing:
    def __repr__(self):
        return "MISSING"


MISSING = _Missing()


def format_value(v):
    """A value as mongod prints it in error messages (approximately)."""
    if isinstance(v, str):
        return '"%s"' % v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{ " + ", ".join("%s: %s" % (k, format_value(x))
                                for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[ " + ", ".join(format_value(x) for x in v) + " ]"
    if type(v).__name__ == "ObjectId":
        return "ObjectId('%s')" % v
    return str(v)


class Collection:
    __slots__ = ("db", "name", "docs", "options", "indexes", "unique",
                 "created", "uuid", "shard_key")

    def __init__(self, db, name, options=None):
        self.db = db
        self.name = name
        self.docs = {}            # id_key -> [dict, raw bytes or None]
        self.options = dict(options or {})
        self.indexes = [{"v": 2, "key": {"_id": 1}, "name": "_id_"}]
        ts = self.options.get("timeseries")
        if isinstance(ts, dict):
            # a time series collection (timeseries.py) has no _id index;
            # mongod (6.3 on) gives it one on its metaField and timeField
            self.indexes = []
            if ts.get("metaField"):
                meta, time_field = ts["metaField"], ts["timeField"]
                self.indexes = [{"v": 2, "key": {meta: 1, time_field: 1},
                                 "name": "%s_1_%s_1" % (meta, time_field)}]
        self.unique = {}          # index name -> {value key: id key}
        self.created = datetime.datetime.utcnow()
        self.uuid = Binary(os.urandom(16), 4)
        self.shard_key = None     # --mongos: the key pattern once sharded

    @property
    def ns(self):
        return "%s.%s" % (self.db, self.name)

    def clone(self):
        """A copy sharing the (immutable) stored documents."""
        c = Collection(self.db, self.name, self.options)
        c.docs = dict(self.docs)
        c.indexes = [dict(i) for i in self.indexes]
        c.unique = {k: dict(v) for k, v in self.unique.items()}
        c.created = self.created
        c.uuid = self.uuid
        c.shard_key = self.shard_key
        return c

    # -- unique indexes ---------------------------------------------------
    def _index_value(self, spec, doc):
        values = []
        present = False
        for field in spec["key"]:
            v = get_path(doc, field)
            if v is MISSING:
                v = None
            else:
                present = True
            values.append(v)
        if spec.get("sparse") and not present:
            return None
        pfe = spec.get("partialFilterExpression")
        if pfe:
            from mongomock.filtering import filter_applies
            if not filter_applies(pfe, doc):
                return None
        return values

    def _dup_error(self, spec, values):
        key_pattern = dict(spec["key"])
        key_value = {f: v for f, v in zip(spec["key"], values)}
        msg = "E11000 duplicate key error collection: %s index: %s dup key: %s" \
            % (self.ns, spec["name"], format_value(key_value))
        return CommandError(*DUPLICATE_KEY, msg,
                            extra={"keyPattern": key_pattern,
                                   "keyValue": key_value})

    def check_unique(self, doc, key, old=None):
        """Raise 11000 if doc (about to be stored under key) collides."""
        if old is None and key in self.docs:
            raise self._dup_error(self.indexes[0], [doc["_id"]])
        if len(self.indexes) == 1:
            return
        for spec in self.indexes[1:]:
            if not spec.get("unique"):
                continue
            values = self._index_value(spec, doc)
            if values is None:
                continue
            vk = id_key(values)
            owner = self.unique.get(spec["name"], {}).get(vk)
            if owner is not None and owner != key:
                raise self._dup_error(spec, values)

    def _index_add(self, doc, key):
        if not self.unique:
            return
        for spec in self.indexes[1:]:
            if spec.get("unique"):
                values = self._index_value(spec, doc)
                if values is not None:
                    self.unique.setdefault(spec["name"], {})[id_key(values)] = key

    def _index_remove(self, doc, key):
        for spec in self.indexes[1:]:
            if spec.get("unique"):
                values = self._index_value(spec, doc)
                if values is not None:
                    m = self.unique.get(spec["name"])
                    if m is not None and m.get(id_key(values)) == key:
                        del m[id_key(values)]

    # -- writes -------------------------------------------------------------
    def insert(self, doc, raw=None, key=None):
        if key is None:
            key = id_key(doc["_id"])
        self.check_unique(doc, key)
        if raw is None:
            raw = wire.encode(doc)
        self.docs[key] = [doc, raw]
        self._index_add(doc, key)
        return key

    def replace(self, key, doc, raw=None):
        old = self.docs[key][0]
        self.check_unique(doc, key, old=old)
        if raw is None:
            raw = wire.encode(doc)
        self._index_remove(old, key)
        self.docs[key] = [doc, raw]
        self._index_add(doc, key)

    def delete(self, key):
        old = self.docs.pop(key, None)
        if old is not None:
            self._index_remove(old[0], key)
        return old

    def put(self, doc, raw=None):
        """Insert or replace by _id without checks (replay); the bytes are
        encoded when first read."""
        key = id_key(doc["_id"])
        old = self.docs.get(key)
        if old is not None:
            self._index_remove(old[0], key)
        self.docs[key] = [doc, raw]
        self._index_add(doc, key)

    def add_index(self, spec):
        """Add an index spec; builds its unique map (raises 11000 on dups)."""
        if spec.get("unique"):
            m = {}
            for key, (doc, _raw) in self.docs.items():
                values = self._index_value(spec, doc)
                if values is None:
                    continue
                vk = id_key(values)
                if vk in m:
                    raise self._dup_error(spec, values)
                m[vk] = key
            self.unique[spec["name"]] = m
        self.indexes.append(spec)

    def drop_index(self, name):
        self.indexes = [i for i in self.indexes if i["name"] != name]
        self.unique.pop(name, None)


def check_names(db, coll=None):
    if not db or any(c in db for c in '/\\. "$\x00') or len(db) > 63:
        raise CommandError(*INVALID_NAMESPACE, "Invalid database name: '%s'" % db)
    if coll is not None:
        if not coll or "\x00" in coll or coll.startswith(".") or "$" in coll:
            raise CommandError(*INVALID_NAMESPACE,
                               "Invalid collection name: %s" % coll)


class Store:
    def __init__(self):
        self.dbs = {}             # name -> {coll name -> Collection}

    # -- reads --------------------------------------------------------------
    def get(self, db, coll):
        d = self.dbs.get(db)
        return d.get(coll) if d else None

    def collections(self, db):
        return self.dbs.get(db, {})

    def lookup(self, db, coll, id_value):
        """The current document with this _id (a private copy), or None."""
        c = self.get(db, coll)
        if c is None:
            return None
        entry = c.docs.get(id_key(id_value))
        return copy.deepcopy(entry[0]) if entry else None

    def collection_options(self, db, coll):
        c = self.get(db, coll)
        return dict(c.options) if c else None

    # -- writes -------------------------------------------------------------
    def create(self, db, coll, options=None):
        if self.get(db, coll) is not None:
            raise CommandError(*NAMESPACE_EXISTS,
                               "Collection %s.%s already exists." % (db, coll))
        c = Collection(db, coll, options)
        self.dbs.setdefault(db, {})[coll] = c
        return c

    def ensure(self, db, coll):
        c = self.get(db, coll)
        if c is None:
            c = self.create(db, coll)
        return c

    def drop(self, db, coll):
        d = self.dbs.get(db)
        if not d or coll not in d:
            return None
        c = d.pop(coll)
        if not d:
            del self.dbs[db]
        return c

    def drop_database(self, db):
        return self.dbs.pop(db, None)

    def rename(self, db, coll, to_db, to_coll):
        c = self.drop(db, coll)
        if c is None:
            raise CommandError(*NAMESPACE_NOT_FOUND, "Source collection %s.%s does not exist"
                               % (db, coll))
        self.drop(to_db, to_coll)
        c.db = to_db
        c.name = to_coll
        self.dbs.setdefault(to_db, {})[to_coll] = c
        return c

    def apply_entry(self, entry):
        """Replay one oplog entry into the store (startup, transaction commit)."""
        op = entry["op"]
        db = entry.get("db")
        coll = entry.get("coll")
        if op == "insert" or op == "update" or op == "replace":
            c = self.ensure(db, coll)
            doc = entry["doc"]
            c.put(doc)
        elif op == "delete":
            c = self.get(db, coll)
            if c is not None:
                c.delete(id_key(entry["key"]["_id"]))
        elif op == "create":
            c = self.get(db, coll)
            if c is None:
                self.create(db, coll, entry.get("options"))
            else:
                c.options = dict(entry.get("options") or {})
        elif op == "drop":
            self.drop(db, coll)
        elif op == "rename":
            to = entry["to"]
            if self.get(db, coll) is not None:
                self.rename(db, coll, to["db"], to["coll"])
        elif op == "dropDatabase":
            self.drop_database(db)
        elif op == "createIndexes":
            c = self.ensure(db, coll)
            for spec in entry.get("indexes") or []:
                if not any(i["name"] == spec["name"] for i in c.indexes):
                    try:
                        c.add_index(dict(spec))
                    except CommandError:
                        c.indexes.append(dict(spec))
        elif op == "dropIndexes":
            c = self.get(db, coll)
            if c is not None:
                for name in entry.get("indexes") or []:
                    c.drop_index(name)
        elif op == "collMod":
            c = self.get(db, coll)
            if c is not None:
                c.options.update(entry.get("options") or {})
        else:
            raise CommandError(*BAD_VALUE, "unknown oplog entry op %r" % op)


def now():
    return datetime.datetime.utcnow()


__all__ = ["Store", "Collection", "id_key", "get_path", "MISSING", "Int64",
           "check_names", "now"]


# ---------------------------------------------------------------------------
# Query semantics.  Simple filters, projections and sorts run here (fast);
# anything else goes to mongomock, which defines the semantics.
# ---------------------------------------------------------------------------

import mongomock
from mongomock import filtering as _mf
from bson.objectid import ObjectId
from bson.timestamp import Timestamp
from pymongo.errors import OperationFailure as _OperationFailure
import threading as _threading

import decimal as _decimal

_NUM = (int, float)


def _plain(v):
    """Decimal128 as decimal.Decimal (which compares with int and float)."""
    if isinstance(v, Decimal128):
        return v.to_decimal()
    return v


_SIMPLE_SCALARS = (str, datetime.datetime, ObjectId)


def _bracket(v):
    """A comparable type bracket for simple scalars, None if not simple.
    Decimal128 values must have gone through _plain() first."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, _NUM) or isinstance(v, _decimal.Decimal):
        if v != v:
            return None
        return "num"
    if isinstance(v, str):
        return "str" if not isinstance(v, Code) else None
    if isinstance(v, datetime.datetime):
        return "date"
    if isinstance(v, ObjectId):
        return "oid"
    return None


class _Fallback(Exception):
    pass


def _regex_pred(pattern, options):
    """$regex on a top-level field: strings (or string array elements)
    searched with the pattern; any other type never matches."""
    import re as _re
    flags = 0
    if isinstance(pattern, Regex):
        if options is None:
            try:
                compiled = pattern.try_compile()
            except Exception:
                raise _Fallback()
            pattern = None
        else:
            pattern = pattern.pattern
    elif isinstance(pattern, _re.Pattern):
        compiled = pattern
        pattern = None
    elif not isinstance(pattern, str):
        raise _Fallback()
    if pattern is not None:
        for ch in options or "":
            f = {"i": _re.IGNORECASE, "m": _re.MULTILINE, "s": _re.DOTALL,
                 "x": _re.VERBOSE, "u": 0}.get(ch)
            if f is None:
                raise _Fallback()
            flags |= f
        try:
            compiled = _re.compile(pattern, flags)
        except _re.error:
            raise _Fallback()
    search = compiled.search

    def pred(v):
        if isinstance(v, str):
            return search(v) is not None
        if isinstance(v, list):
            return any(isinstance(e, str) and search(e) is not None for e in v)
        return False
    return pred


def _compile_cond(field, cond):
    """A predicate on one top-level field value, or raise _Fallback.

    The predicate gets the field's value (MISSING when absent) and returns
    True/False, or None when the value is not simple (array, document...),
    meaning: ask mongomock for this document."""
    if "." in field or field.startswith("$"):
        raise _Fallback()
    import re as _re
    if isinstance(cond, (Regex, _re.Pattern)):
        return _regex_pred(cond, None)
    if isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
        preds = []
        for op, arg in cond.items():
            if op == "$options":
                if "$regex" not in cond:
                    raise _Fallback()
                continue
            if op == "$regex":
                preds.append(_regex_pred(arg, cond.get("$options")))
                continue
            preds.append(_compile_op(op, arg))
        if len(preds) == 1:
            return preds[0]

        def all_of(v, preds=preds):
            for p in preds:
                r = p(v)
                if r is not True:
                    return r
            return True
        return all_of
    return _compile_op("$eq", cond)


def _scalar_pred(test):
    """Lift a test on one simple value to a field value: an array matches
    when one of its elements does; a document or another type never does."""
    def pred(v):
        if isinstance(v, list):
            for e in v:
                if not isinstance(e, (list, dict)) and test(_plain(e)):
                    return True
            return False
        if v is MISSING:
            return False
        return test(_plain(v))
    return pred


def _compile_op(op, arg):
    arg = _plain(arg)
    if op == "$eq":
        if arg is None:
            # undefined equals null (MongoDB before 8.0, as the 6.0 we answer as)
            def eq_null(v):
                if v is MISSING or v is None or v is UNDEFINED:
                    return True
                if isinstance(v, list):
                    return any(e is None or e is UNDEFINED for e in v)
                return False
            return eq_null
        b = _bracket(arg)
        if b is None:
            raise _Fallback()

        def eq(v):
            return _bracket(v) == b and v == arg
        return _scalar_pred(eq)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if arg is None:
            if op in ("$gte", "$lte"):
                return _compile_op("$eq", None)
            return lambda v: False
        b = _bracket(arg)
        if b is None:
            raise _Fallback()
        import operator
        f = {"$gt": operator.gt, "$gte": operator.ge,
             "$lt": operator.lt, "$lte": operator.le}[op]

        def cmp(v):
            return _bracket(v) == b and f(v, arg)
        return _scalar_pred(cmp)
    if op == "$in":
        if not isinstance(arg, list):
            raise _Fallback()
        keys = set()
        has_null = False
        for a in arg:
            if a is None:
                has_null = True
                continue
            if _bracket(_plain(a)) is None:
                raise _Fallback()
            keys.add(id_key(a))
        inner = _scalar_pred(lambda v: v is not None and _bracket(v) is not None
                             and id_key(v) in keys)

        def isin(v):
            if v is MISSING or v is None or v is UNDEFINED:
                return has_null
            if has_null and isinstance(v, list) and \
                    any(e is None or e is UNDEFINED for e in v):
                return True
            return inner(v)
        return isin
    if op == "$exists":
        want = bool(arg) if not isinstance(arg, dict) else True

        def exists(v):
            return (v is not MISSING) == want
        return exists
    raise _Fallback()


def compile_filter(spec):
    """A function doc -> bool with MongoDB's matching for `spec`.  Simple
    conditions on top-level fields are evaluated directly; documents whose
    values are not simple, and filters that are not simple, go to mongomock."""
    if not spec:
        return None
    try:
        preds = []
        for field, cond in spec.items():
            if field == "$and" and isinstance(cond, list):
                for sub in cond:
                    for f2, c2 in sub.items():
                        preds.append((f2, _compile_cond(f2, c2)))
                continue
            preds.append((field, _compile_cond(field, cond)))
    except _Fallback:
        _refuse_undefined(spec)
        eq_spec = _eq_form(spec)
        return lambda doc: _filter_applies(eq_spec, doc, normalized=True)

    if len(preds) == 1:
        (field, pred), = preds

        def match_one(doc):
            r = pred(doc.get(field, MISSING))
            if r is None:
                return _filter_applies(spec, doc)
            return r
        return match_one

    def match(doc):
        for field, pred in preds:
            r = pred(doc.get(field, MISSING))
            if r is None:
                return _filter_applies(spec, doc)
            if not r:
                return False
        return True
    return match


def _refuse_undefined(value):
    """BadValue for undefined in a filter, as mongod: "cannot compare to
    undefined" (a filter is small: this walks all of it)."""
    if value is UNDEFINED:
        raise CommandError(2, "BadValue", "cannot compare to undefined")
    if isinstance(value, dict):
        for v in value.values():
            _refuse_undefined(v)
    elif isinstance(value, list):
        for v in value:
            _refuse_undefined(v)


def _eq_form(spec):
    """{field: value} as {field: {$eq: value}} (recursively in $and / $or /
    $nor), so mongomock compares with MongoDB's equality (true is not 1,
    Decimal128 is a number) instead of Python's."""
    import re as _re
    if not isinstance(spec, dict):
        return spec
    out = {}
    for k, v in spec.items():
        if k in ("$and", "$or", "$nor") and isinstance(v, list):
            out[k] = [_eq_form(x) for x in v]
        elif k.startswith("$"):
            out[k] = v
        elif isinstance(v, dict) and v and all(x.startswith("$") for x in v):
            if "$exists" in v and not v["$exists"] and "$not" not in v:
                # no value on the path exists (mongomock asks whether some
                # value is missing: {a: [{b: 1}, {}]} has a.b)
                v = {x: y for x, y in v.items() if x != "$exists"}
                v["$not"] = {"$exists": True}
            out[k] = v
        elif isinstance(v, (Regex, _re.Pattern, list)):
            out[k] = v
        else:
            out[k] = {"$eq": v}
    return out


def _filter_applies(spec, doc, normalized=False):
    try:
        return _mf.filter_applies(spec if normalized else _eq_form(spec), doc)
    except _OperationFailure as e:
        raise mongomock_error(e)
    except NotImplementedError as e:
        raise CommandError(238, "NotImplemented", str(e))


def mongomock_error(e):
    """A CommandError with MongoDB's code for an error mongomock raised."""
    code = getattr(e, "code", None)
    msg = str(e)
    if not code:
        if "immutable" in msg:
            code = 66
        elif "non-numeric" in msg or "non-array" in msg or "must be an array" in msg:
            code = 14
        elif "conflict" in msg.lower():
            code = 40
        else:
            code = 2
    return CommandError(code, code_name(code), msg)


# -- projection ---------------------------------------------------------------

def projection_plan(spec):
    """(include: bool, fields: [dotted], keep_id: bool) for simple
    inclusion/exclusion projections, else None."""
    if not spec:
        return None
    include = None
    keep_id = True
    fields = []
    for k, v in spec.items():
        if isinstance(v, bool) or (isinstance(v, _NUM) and not isinstance(v, bool)):
            on = bool(v)
        else:
            return None
        if k == "_id":
            keep_id = on
            continue
        if k.startswith("$") or ".$" in k:
            return None
        if include is None:
            include = on
        elif include != on:
            raise CommandError(31254 if include else 31253,
                               "Location31254" if include else "Location31253",
                               "Cannot do %s in %s projection" %
                               ("exclusion on field %s" % k if include else
                                "inclusion on field %s" % k,
                                "inclusion" if include else "exclusion"))
        fields.append(k)
    if include is None:
        # only _id named: {_id: 1} keeps just _id, {_id: 0} drops it
        include = keep_id
    return include, fields, keep_id


def _tree(fields):
    t = {}
    for f in fields:
        node = t
        parts = f.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is True:
                break
            if nxt is None:
                nxt = node[p] = {}
            node = nxt
        else:
            node[parts[-1]] = True
    return t


def _include(value, tree):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = tree.get(k)
            if sub is None:
                continue
            if sub is True:
                out[k] = v
            else:
                r = _include(v, sub)
                if r is not MISSING:
                    out[k] = r
        return out
    if isinstance(value, list):
        return [r for r in (_include(v, tree) for v in value
                            if isinstance(v, (dict, list))) if r is not MISSING]
    return MISSING


def _exclude(value, tree):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            sub = tree.get(k)
            if sub is True:
                continue
            out[k] = v if sub is None else _exclude(v, sub)
        return out
    if isinstance(value, list):
        return [_exclude(v, tree) for v in value]
    return value


def make_projector(spec):
    """A function doc -> new doc for a simple projection, or None."""
    plan = projection_plan(spec)
    if plan is None:
        return None
    include, fields, keep_id = plan
    if include:
        tree = _tree(fields)
        if keep_id:
            tree.setdefault("_id", True)
        top = [f for f in fields if "." not in f]
        if len(top) == len(fields):
            names = set(top)
            if keep_id:
                names.add("_id")

            def inc_flat(doc):
                return {k: v for k, v in doc.items() if k in names}
            return inc_flat

        def inc(doc):
            return _include(doc, tree)
        return inc
    tree = _tree(fields)
    if not keep_id:
        tree["_id"] = True

    def exc(doc):
        return _exclude(doc, tree)
    return exc


def _expr_path(value, parts):
    """An aggregation field path ("$a.b") applied to a value: documents are
    entered, arrays are mapped element by element, anything else is missing."""
    for i, part in enumerate(parts):
        if isinstance(value, dict):
            if part not in value:
                return MISSING
            value = value[part]
        elif isinstance(value, list):
            out = []
            rest = parts[i:]
            for e in value:
                if isinstance(e, (dict, list)):
                    r = _expr_path(e, rest)
                    if r is not MISSING:
                        out.append(r)
            return out
        else:
            return MISSING
    return value


def make_path_projector(spec):
    """A function doc -> new doc for a $project made only of `_id: 0/1` and
    fields computed from field paths ("c0": "$a.b") or "$$ROOT" (the form the
    extension sends); None for any other $project."""
    if not isinstance(spec, dict) or not spec:
        return None
    keep_id = True
    computed = []
    for k, v in spec.items():
        if k == "_id" and (isinstance(v, bool) or (isinstance(v, _NUM) and v in (0, 1))):
            keep_id = bool(v)
            continue
        if not isinstance(v, str) or not v.startswith("$") or "." in k or k.startswith("$"):
            return None
        if v == "$$ROOT" or v == "$$CURRENT":
            computed.append((k, None))
        elif v.startswith("$$") or len(v) == 1:
            return None
        else:
            computed.append((k, v[1:].split(".")))
    if not computed:
        return None

    def project(doc):
        out = {}
        if keep_id and "_id" in doc:
            out["_id"] = doc["_id"]
        for name, parts in computed:
            if parts is None:
                out[name] = doc
                continue
            v = _expr_path(doc, parts)
            if v is not MISSING:
                out[name] = v
        return out
    return project


import struct as _struct

_FIXED_SIZES = {1: 8, 6: 0, 7: 12, 8: 1, 9: 8, 10: 0, 16: 4, 17: 8, 18: 8, 19: 16,
                127: 0, 255: 0}
_unpack_i32 = _struct.Struct("<i").unpack_from
_pack_i32 = _struct.Struct("<i").pack


def _slice_fields(raw, names, want):
    """The encoded document made of the top-level elements of `raw` whose
    names are in `names` (bytes), in document order; None if raw holds an
    element type this scanner does not size."""
    pos = 4
    end = len(raw) - 1
    parts = []
    find = raw.find
    while pos < end:
        t = raw[pos]
        nul = find(b"\x00", pos + 1)
        v = nul + 1
        n = _FIXED_SIZES.get(t)
        if n is None:
            if t == 2 or t == 13 or t == 14:
                n = 4 + _unpack_i32(raw, v)[0]
            elif t == 3 or t == 4 or t == 15:
                n = _unpack_i32(raw, v)[0]
            elif t == 5:
                n = 5 + _unpack_i32(raw, v)[0]
            else:
                return None
        nxt = v + n
        if raw[pos + 1:nul] in names:
            parts.append(raw[pos:nxt])
            if len(parts) == want:
                break
        pos = nxt
    body = b"".join(parts)
    return _pack_i32(len(body) + 5) + body + b"\x00"


def make_raw_projector(spec):
    """A function (dict, raw) pair -> encoded projected document for a simple
    inclusion projection of top-level fields, slicing the cached bytes
    instead of building and encoding a dict; None for other projections."""
    plan = projection_plan(spec)
    if plan is None:
        return None
    include, fields, keep_id = plan
    if not include or any("." in f for f in fields):
        return None
    names = {f.encode() for f in fields}
    if keep_id:
        names.add(b"_id")
    want = len(names)
    as_dict = make_projector(spec)

    def project(pair):
        raw = pair[1]
        if raw is not None:
            out = _slice_fields(raw, names, want)
            if out is not None:
                return out
        return wire.encode(as_dict(pair[0]))
    return project


_scratch = _threading.local()


def scratch_collection():
    c = getattr(_scratch, "coll", None)
    if c is None:
        c = mongomock.MongoClient().scratchdb.scratch
        _scratch.coll = c
    return c


def find_projector(spec):
    """Projection for find (supports $slice / $elemMatch through mongomock)."""
    if not spec:
        return None
    p = make_projector(spec)
    if p is not None:
        return p
    coll = scratch_collection()

    def mm(doc):
        try:
            return coll._copy_only_fields(doc, copy.deepcopy(spec), dict)
        except _OperationFailure as e:
            raise mongomock_error(e)
        except (ValueError, NotImplementedError) as e:
            raise CommandError(2, "BadValue", str(e))
    return mm


# -- sort ---------------------------------------------------------------------

def _sort_values(doc, path):
    cur = [doc]
    for part in path.split("."):
        nxt = []
        for c in cur:
            if isinstance(c, dict):
                if part in c:
                    nxt.append(c[part])
            elif isinstance(c, list):
                if part.isdigit() and int(part) < len(c):
                    nxt.append(c[int(part)])
                for e in c:
                    if isinstance(e, dict) and part in e:
                        nxt.append(e[part])
        cur = nxt
    out = []
    empty_array = False
    for v in cur:
        if isinstance(v, list):
            if not v:
                empty_array = True
            out.extend(v)
        else:
            out.append(v)
    return out, empty_array


class _Key:
    __slots__ = ("rank", "v")

    def __init__(self, rank, v):
        self.rank = rank
        self.v = v

    def __lt__(self, other):
        if self.rank != other.rank:
            return self.rank < other.rank
        return bson_cmp(self.v, other.v) < 0


def _sort_fast(items, path, get, desc, limit=0):
    """Sort by a top-level field whose values are all null/missing or of one
    simple type (numbers, strings, dates, ObjectIds, booleans) with Python's
    own comparison; None when the values need BSON comparison."""
    if "." in path:
        return None
    vals = []
    bracket = None
    for item in items:
        doc = get(item)
        v = doc.get(path, MISSING) if isinstance(doc, dict) else MISSING
        if v is MISSING or v is None:
            vals.append((0,))
            continue
        b = _bracket(v)
        if b is None or (bracket is not None and b != bracket):
            return None
        bracket = b
        vals.append((1, v))
    if limit and limit * 8 < len(items):
        # top-N: the same result as sorting everything and cutting
        import heapq
        pick = heapq.nlargest if desc else heapq.nsmallest
        order = pick(limit, range(len(items)), key=vals.__getitem__)
    else:
        order = sorted(range(len(items)), key=vals.__getitem__, reverse=desc)
    return [items[i] for i in order]


def sort_docs(items, sort_spec, get=lambda x: x, limit=0):
    """Sort in place-free fashion: returns a new list.  Arrays sort by their
    smallest element ascending and their largest descending, as in MongoDB;
    a missing field sorts as null.  With limit, only the first `limit`
    documents are wanted (the result may still be longer)."""
    keys = list(sort_spec.items())
    result = list(items)
    if limit and len(keys) == 1:
        (path, direction), = keys
        if direction in (1, -1) and not isinstance(direction, bool) and path != "$natural":
            fast = _sort_fast(result, path, get, direction < 0, limit)
            if fast is not None:
                return fast
    for path, direction in reversed(keys):
        if isinstance(direction, dict):
            if direction.get("$meta"):
                continue
            raise CommandError(2, "BadValue", "Illegal key in $sort specification: %s" % direction)
        try:
            direction = int(direction)
        except (TypeError, ValueError):
            raise CommandError(15974, "Location15974",
                               "Illegal key in $sort specification: %s: %s" % (path, direction))
        if direction not in (1, -1):
            raise CommandError(15975, "Location15975",
                               "$sort key ordering must be 1 (for ascending) or -1 (for descending)")
        if path == "$natural":
            if direction < 0:
                result.reverse()
            continue
        desc = direction < 0
        fast = _sort_fast(result, path, get, desc)
        if fast is not None:
            result = fast
            continue

        def key(item, path=path, desc=desc):
            vals, empty = _sort_values(get(item), path)
            if not vals:
                return _Key(0 if empty else 1, None)
            best = vals[0]
            for v in vals[1:]:
                if desc:
                    if bson_cmp(v, best) > 0:
                        best = v
                elif bson_cmp(v, best) < 0:
                    best = v
            return _Key(1, best)
        result.sort(key=key, reverse=desc)
    return result


# -- updates ------------------------------------------------------------------

def is_operator_update(u):
    return isinstance(u, dict) and u and next(iter(u)).startswith("$")


def apply_update(doc, spec_filter, update, array_filters=None, upsert=False):
    """The document after `update` (operators) is applied to `doc`; with doc
    None and upsert, the document an upsert would insert.  Runs mongomock on a
    one-document scratch collection."""
    _check_update_types(doc, update)
    if _has_all_positional(update) or array_filters:
        update = expand_array_updates(doc or {}, update, array_filters)
        array_filters = None
        if not update and doc is not None:
            return doc            # no element selected: nothing changes
    coll = scratch_collection()
    coll.delete_many({})
    try:
        if doc is not None:
            coll.insert_one(copy.deepcopy(doc))
            coll.update_one({"_id": doc["_id"]} if not _positional(update) else
                            spec_filter, update, array_filters=array_filters)
            new = coll.find_one({})
        else:
            coll.update_one(spec_filter, update, upsert=True,
                            array_filters=array_filters)
            new = coll.find_one({})
    except _OperationFailure as e:
        raise mongomock_error(e)
    except NotImplementedError as e:
        raise CommandError(238, "NotImplemented", str(e))
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise CommandError(2, "BadValue", "cannot apply update: %s" % e)
    finally:
        coll.delete_many({})
    if new is None:
        raise CommandError(2, "BadValue", "update produced no document")
    if "_id" in new and next(iter(new)) != "_id":
        new = dict([("_id", new["_id"])] + [(k, v) for k, v in new.items()
                                              if k != "_id"])
    return new


_ARITH = {"$inc": "increment", "$mul": "multiply"}


def _is_number(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) or \
        isinstance(v, Decimal128)


_UPDATE_OPS = {"$set", "$unset", "$inc", "$mul", "$min", "$max", "$rename",
               "$setOnInsert", "$currentDate", "$addToSet", "$pop", "$pull",
               "$pullAll", "$push", "$bit"}


def _check_update_types(doc, update):
    """MongoDB's checks that mongomock lacks: unknown modifiers (9), two
    operators on one path (40), $inc/$mul on a non-number and $push/$pull on
    a non-array (14)."""
    seen = {}
    for op, fields in update.items():
        if op not in _UPDATE_OPS:
            raise CommandError(9, "FailedToParse",
                               "Unknown modifier: %s. Expected a valid update modifier or "
                               "pipeline-style update specified as an array" % op)
        if op == "$bit":
            raise CommandError(238, "NotImplemented",
                               "the stand-in does not implement $bit")
        if isinstance(fields, dict):
            paths = list(fields)
            if op == "$rename":
                paths += [v for v in fields.values() if isinstance(v, str)]
            for path in paths:
                parts = path.split(".")
                for other in seen:
                    o = other.split(".")
                    n = min(len(o), len(parts))
                    if o[:n] == parts[:n]:
                        raise CommandError(40, "ConflictingUpdateOperators",
                                           "Updating the path '%s' would create a "
                                           "conflict at '%s'" % (path, ".".join(parts[:n])))
                seen[path] = op
    for op, fields in update.items():
        if not isinstance(fields, dict):
            raise CommandError(9, "FailedToParse",
                               "Modifiers operate on fields but we found type %s "
                               "instead." % type(fields).__name__)
        for path, arg in fields.items():
            if op in _ARITH:
                if not _is_number(arg):
                    raise CommandError(14, "TypeMismatch",
                                       "Cannot %s with non-numeric argument: {%s: %s}"
                                       % (_ARITH[op], path, format_value(arg)))
                if doc is not None and "$" not in path:
                    cur = get_path(doc, path)
                    if cur is not MISSING and not _is_number(cur):
                        raise CommandError(14, "TypeMismatch",
                                           "Cannot apply %s to a value of non-numeric "
                                           "type. {_id: %s} has the field '%s' of "
                                           "non-numeric type %s"
                                           % (op, format_value(doc.get("_id")),
                                              path.split(".")[-1], bson_type_name(cur)))
            elif op in ("$push", "$addToSet", "$pull", "$pullAll", "$pop"):
                if doc is not None and "$" not in path:
                    cur = get_path(doc, path)
                    if cur is not MISSING and not isinstance(cur, list):
                        raise CommandError(14 if op != "$pop" else 14, "TypeMismatch",
                                           "The field '%s' must be an array but is of "
                                           "type %s in document {_id: %s}"
                                           % (path, bson_type_name(cur),
                                              format_value(doc.get("_id"))))


def bson_type_name(v):
    """The $type name of a value ("missing" for MISSING)."""
    import re as _re
    if v is MISSING:
        return "missing"
    if v is None:
        return "null"
    if v is UNDEFINED:
        return "undefined"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Int64):
        return "long"
    if isinstance(v, int):
        return "int" if -2 ** 31 <= v < 2 ** 31 else "long"
    if isinstance(v, float):
        return "double"
    if isinstance(v, Decimal128):
        return "decimal"
    if isinstance(v, Symbol):
        return "symbol"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, list):
        return "array"
    if isinstance(v, datetime.datetime):
        return "date"
    if isinstance(v, ObjectId):
        return "objectId"
    if isinstance(v, Timestamp):
        return "timestamp"
    if isinstance(v, (bytes, Binary)):
        return "binData"
    if isinstance(v, (Regex, _re.Pattern)):
        return "regex"
    if isinstance(v, Code):
        return "javascriptWithScope" if v.scope else "javascript"
    if isinstance(v, MinKey):
        return "minKey"
    if isinstance(v, MaxKey):
        return "maxKey"
    return "object"


import re as _re_mod

_FILTERED = _re_mod.compile(r"^\$\[([a-z][a-zA-Z0-9]*)?\]$")


def _has_all_positional(update):
    return any(isinstance(f, dict) and any("$[" in p for p in f)
               for f in update.values())


def expand_array_updates(doc, update, array_filters):
    """Rewrite paths with $[] and $[ident] into the concrete paths of the
    array elements they select (mongomock has neither)."""
    filters = {}
    for f in array_filters or []:
        if not isinstance(f, dict) or not f:
            raise CommandError(9, "FailedToParse", "arrayFilters entries must be objects")
        idents = {k.split(".", 1)[0] for k in f}
        if len(idents) != 1:
            raise CommandError(9, "FailedToParse",
                               "Error parsing array filter: expected a single top-level "
                               "field name, found '%s'" % "', '".join(sorted(idents)))
        ident = idents.pop()
        if ident in filters:
            raise CommandError(9, "FailedToParse",
                               "Found multiple array filters with the same top-level field "
                               "name %s" % ident)
        filters[ident] = f
    used = set()

    def expand(value, parts, prefix):
        if not parts:
            return [prefix]
        part, rest = parts[0], parts[1:]
        m = _FILTERED.match(part)
        if m:
            ident = m.group(1)
            if ident is not None and ident not in filters:
                raise CommandError(2, "BadValue",
                                   "No array filter found for identifier '%s' in path '%s'"
                                   % (ident, ".".join(prefix + parts)))
            if not isinstance(value, list):
                raise CommandError(2, "BadValue",
                                   "The path '%s' must exist in the document in order to "
                                   "apply array updates." % ".".join(prefix))
            out = []
            for i, elem in enumerate(value):
                if ident is not None:
                    if not _filter_applies(filters[ident], {ident: elem}):
                        continue
                out.extend(expand(elem, rest, prefix + [str(i)]))
            return out
        if isinstance(value, dict):
            nxt = value.get(part, MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            nxt = value[int(part)]
        else:
            nxt = MISSING
        if nxt is MISSING:
            if any(_FILTERED.match(p) for p in rest):
                raise CommandError(2, "BadValue",
                                   "The path '%s' must exist in the document in order to "
                                   "apply array updates." % ".".join(prefix + [part]))
            return [".".join(prefix + parts)]
        return expand(nxt, rest, prefix + [part])

    out = {}
    for op, fields in update.items():
        if not isinstance(fields, dict):
            out[op] = fields
            continue
        nf = {}
        for path, val in fields.items():
            if "$[" not in path:
                nf[path] = val
                continue
            for part in path.split("."):
                m = _FILTERED.match(part)
                if m and m.group(1):
                    used.add(m.group(1))
            for concrete in expand(doc, path.split("."), []):
                if isinstance(concrete, list):
                    concrete = ".".join(concrete)
                nf[concrete] = val
        out[op] = nf
    unused = set(filters) - used
    if unused:
        raise CommandError(9, "FailedToParse",
                           "The array filter for identifier '%s' was not used in the update "
                           "%s" % (sorted(unused)[0], update))
    return {op: f for op, f in out.items() if not isinstance(f, dict) or f}


def _positional(update):
    for op, fields in update.items():
        if isinstance(fields, dict):
            for f in fields:
                if ".$" in f or f.endswith("$"):
                    return True
    return False


def apply_pipeline_update(doc, pipeline):
    """An update given as an aggregation pipeline ($set, $unset, ...)."""
    from mongomock import aggregate
    allowed = {"$addFields", "$set", "$project", "$unset", "$replaceRoot",
               "$replaceWith"}
    docs = [copy.deepcopy(doc)]
    for stage in pipeline:
        name = next(iter(stage))
        if name not in allowed:
            raise CommandError(*INVALID_OPTIONS_PIPELINE,
                               "%s is not allowed to be used within an update" % name)
    try:
        out = list(aggregate.process_pipeline(docs, None, pipeline_compat(pipeline), None))
    except _OperationFailure as e:
        raise mongomock_error(e)
    except NotImplementedError as e:
        raise CommandError(238, "NotImplemented", str(e))
    new = out[0]
    if "_id" not in new and "_id" in doc:
        new = dict([("_id", doc["_id"])] + list(new.items()))
    return new


INVALID_OPTIONS_PIPELINE = (72, "InvalidOptions")


def pipeline_compat(pipeline):
    """Rewrite stages mongomock lacks into ones it has ($unset -> $project
    exclusion, $replaceWith -> $replaceRoot, $sortByCount -> $group + $sort)."""
    out = []
    for stage in pipeline:
        name, arg = next(iter(stage.items()))
        if name == "$unset":
            fields = [arg] if isinstance(arg, str) else list(arg)
            out.append({"$project": {f: 0 for f in fields}})
        elif name == "$replaceWith":
            out.append({"$replaceRoot": {"newRoot": arg}})
        elif name == "$sortByCount":
            out.append({"$group": {"_id": arg, "count": {"$sum": 1}}})
            out.append({"$sort": {"count": -1}})
        else:
            out.append(stage)
    return out


_WHOLE_ARRAY_OPS = {"$pop", "$pull", "$pullAll"}
_APPEND_OPS = {"$push", "$addToSet"}


def update_description_ops(pre, post, update):
    """updatedFields / removedFields / truncatedArrays of an update made with
    operators, as MongoDB logs it: each path an operator names is reported
    whole (a new field at its first new ancestor), $push / $addToSet report
    the appended elements ("arr.3"), $pop / $pull report the whole array."""
    updated = {}
    removed = []
    for op, fields in update.items():
        if not isinstance(fields, dict):
            continue
        for path, arg in fields.items():
            if op == "$rename":
                targets = [(path, True), (arg, False)]
            else:
                targets = [(path, op == "$unset")]
            for p, is_removal in targets:
                if "$" in p:
                    # positional: diff the top-level field
                    top = p.split(".")[0]
                    sub = update_description(
                        {top: pre[top]} if top in pre else {},
                        {top: post[top]} if top in post else {})
                    updated.update(sub["updatedFields"])
                    removed.extend(sub["removedFields"])
                    continue
                before = get_path(pre, p)
                after = get_path(post, p)
                if is_removal:
                    if before is not MISSING and after is MISSING:
                        removed.append(p)
                    continue
                if after is MISSING or (before is not MISSING and _same(before, after)):
                    continue
                if before is MISSING:
                    parts = p.split(".")
                    for i in range(1, len(parts) + 1):
                        anc = ".".join(parts[:i])
                        if get_path(pre, anc) is MISSING:
                            updated[anc] = get_path(post, anc)
                            break
                    continue
                if op in _APPEND_OPS and isinstance(before, list) and \
                        isinstance(after, list) and len(after) >= len(before) and \
                        all(_same(a, b) for a, b in zip(before, after)):
                    for i in range(len(before), len(after)):
                        updated["%s.%d" % (p, i)] = after[i]
                    continue
                updated[p] = after
    # a path and one of its ancestors: keep the ancestor only
    for k in list(updated):
        parts = k.split(".")
        if any(".".join(parts[:i]) in updated for i in range(1, len(parts))):
            del updated[k]
    return {"updatedFields": updated, "removedFields": removed,
            "truncatedArrays": []}


def update_description(pre, post):
    """updatedFields / removedFields / truncatedArrays between two versions of
    a document, with dotted paths as a change stream reports them."""
    updated = {}
    removed = []
    truncated = []

    def walk(a, b, prefix):
        for k, v in b.items():
            path = prefix + k
            if k not in a:
                updated[path] = v
                continue
            old = a[k]
            if _same(old, v):
                continue
            if isinstance(old, dict) and isinstance(v, dict) and v:
                walk(old, v, path + ".")
            elif isinstance(old, list) and isinstance(v, list):
                arrays(old, v, path)
            else:
                updated[path] = v
        for k in a:
            if k not in b:
                removed.append(prefix + k)

    def arrays(old, new, path):
        n = min(len(old), len(new))
        if len(new) < len(old):
            truncated.append({"field": path, "newSize": len(new)})
        for i in range(n):
            if not _same(old[i], new[i]):
                if isinstance(old[i], dict) and isinstance(new[i], dict) and new[i]:
                    walk(old[i], new[i], "%s.%d." % (path, i))
                else:
                    updated["%s.%d" % (path, i)] = new[i]
        for i in range(n, len(new)):
            updated["%s.%d" % (path, i)] = new[i]

    walk(pre, post, "")
    return {"updatedFields": updated, "removedFields": removed,
            "truncatedArrays": truncated}


def _same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, (dict, list)):
        return wire.encode({"v": a}) == wire.encode({"v": b})
    return a == b


# ---------------------------------------------------------------------------
# Where mongomock differs from MongoDB in what the extension relies on.
# ---------------------------------------------------------------------------

def _type_order(v):
    """MongoDB's canonical type order (bsontypes.h canonicalizeBSONType)."""
    if v is MISSING or v is _mf.NOTHING or v is UNDEFINED:
        return 0                # undefined sorts as missing, below null
    if v is None:
        return 5
    if isinstance(v, bool):
        return 40
    if isinstance(v, (int, float, Decimal128)):
        return 10
    if isinstance(v, Code):          # a str subclass: test it first
        return 65 if v.scope else 60
    if isinstance(v, str):
        return 15
    if isinstance(v, (dict, DBRef)):
        return 20
    if isinstance(v, (list, tuple)):
        return 25
    if isinstance(v, (bytes, Binary)):
        return 30
    if isinstance(v, ObjectId):
        return 35
    if isinstance(v, datetime.datetime):
        return 45
    if isinstance(v, Timestamp):
        return 47
    if isinstance(v, (Regex, _re_mod.Pattern)):
        return 50
    if isinstance(v, Code):
        return 60
    if isinstance(v, MinKey):
        return -1
    if isinstance(v, MaxKey):
        return 127
    raise CommandError(2, "BadValue", "cannot compare a value of type %s"
                       % type(v).__name__)


def _num(v):
    if isinstance(v, Decimal128):
        return v.to_decimal()
    return v


def bson_cmp(a, b):
    """-1, 0 or 1: MongoDB's comparison of two values (missing lowest)."""
    ta, tb = _type_order(a), _type_order(b)
    if ta != tb:
        return -1 if ta < tb else 1
    if ta in (0, 5, -1, 127):
        return 0
    if ta == 10:
        x, y = _num(a), _num(b)
        # NaN sorts below every other number and equals itself
        xn, yn = x != x, y != y
        if xn or yn:
            return 0 if xn and yn else (-1 if xn else 1)
        if isinstance(x, _decimal.Decimal) or isinstance(y, _decimal.Decimal):
            x = x if isinstance(x, _decimal.Decimal) else _decimal.Decimal(x)
            y = y if isinstance(y, _decimal.Decimal) else _decimal.Decimal(y)
        return (x > y) - (x < y)
    if ta == 20:
        if not isinstance(a, dict):
            a = a.as_doc()
        if not isinstance(b, dict):
            b = b.as_doc()
        ia, ib = list(a.items()), list(b.items())
        for (ka, va), (kb, vb) in zip(ia, ib):
            c = _cmp_plain(_type_order(va), _type_order(vb))
            if c:
                return c
            c = _cmp_plain(ka, kb)
            if c:
                return c
            c = bson_cmp(va, vb)
            if c:
                return c
        return _cmp_plain(len(ia), len(ib))
    if ta == 25:
        for x, y in zip(a, b):
            c = bson_cmp(x, y)
            if c:
                return c
        return _cmp_plain(len(a), len(b))
    if ta == 30:
        sa = getattr(a, "subtype", 0)
        sb = getattr(b, "subtype", 0)
        return _cmp_plain((len(a), sa, bytes(a)), (len(b), sb, bytes(b)))
    if ta == 35:
        return _cmp_plain(a.binary, b.binary)
    if ta == 47:
        return _cmp_plain((a.time, a.inc), (b.time, b.inc))
    if ta == 50:
        return _cmp_plain((a.pattern, str(getattr(a, "flags", ""))),
                          (b.pattern, str(getattr(b, "flags", ""))))
    if ta == 60:
        return _cmp_plain(str(a), str(b))
    return _cmp_plain(a, b)


def _cmp_plain(x, y):
    return (x > y) - (x < y)


def _is_nan(v):
    if isinstance(v, float):
        return v != v
    if isinstance(v, Decimal128):
        return v.to_decimal().is_nan()
    return False


def _walk_path(value, parts, i, out):
    """Append to `out` the values a dotted path (parts[i:]) reaches from
    `value`, as MongoDB's path iterator does: inside a document a path that
    runs into a missing field, null or a scalar reaches "missing"; an array
    is traversed into its documents (its scalars reach nothing) unless the
    next part is an index."""
    n = len(parts)
    while i < n:
        if isinstance(value, dict):
            value = value.get(parts[i], _mf.NOTHING)
            i += 1
            continue
        if isinstance(value, list):
            part = parts[i]
            if part.isdigit():
                idx = int(part)
                if idx < len(value):
                    _walk_path(value[idx], parts, i + 1, out)
                return
            for e in value:
                if isinstance(e, dict):
                    _walk_path(e, parts, i, out)
            return
        out.append(_mf.NOTHING)
        return
    out.append(value)


def path_candidates(key, doc):
    """The values `key` reaches in `doc` for query matching.  In a document,
    a path that reaches no value at all (through null, a scalar, an empty
    array or an array of scalars) is "missing", so it equals null and does
    not exist (MongoDB's null_query_semantics)."""
    if not key:
        return [doc]
    parts = key.split(".")
    out = []
    if isinstance(doc, dict):
        if len(parts) == 1:
            return [doc.get(key, _mf.NOTHING)]
        _walk_path(doc, parts, 0, out)
        return out or [_mf.NOTHING]
    if isinstance(doc, list):
        _walk_path(doc, parts, 0, out)
    return out


def _patch_mongomock():
    from mongomock import aggregate as mm_aggregate
    import re as _re

    # Comparisons: Decimal128 is a number, true is not 1, Timestamp / MinKey /
    # MaxKey have their places in the type order.
    def bson_compare(op, a, b, can_compare_types=True):
        ta, tb = _type_order(a), _type_order(b)
        if ta != tb:
            return can_compare_types and op(ta, tb)
        return op(bson_cmp(a, b), 0)
    _mf.bson_compare = bson_compare

    def operator_eq(doc_val, search_val):
        if (doc_val is _mf.NOTHING or doc_val is UNDEFINED) and search_val is None:
            return True
        if doc_val is _mf.NOTHING:
            return False
        try:
            return bson_cmp(doc_val, search_val) == 0
        except CommandError:
            return doc_val == search_val
    _mf.operator_eq = operator_eq
    fi = _mf._filterer_inst
    fi._operator_map["$eq"] = _mf._list_expand(operator_eq)
    fi._operator_map["$ne"] = _mf._list_expand(
        lambda dv, sv: not operator_eq(dv, sv), negative=True)
    # Range operators: NaN is below every number in BSON order (sorting), but
    # a query's $lt/$gt never match it, on either side, and $lte/$gte match
    # it only against NaN (MongoDB's ComparisonMatchExpressionBase).
    def range_op(op, strict):
        compare = _mf._compare_objects(op)

        def f(doc_val, search_val):
            dn, sn = _is_nan(doc_val), _is_nan(search_val)
            if dn or sn:
                return not strict and dn and sn
            return compare(doc_val, search_val)
        return f
    for key, op in _mf.SORTING_OPERATOR_MAP.items():
        fi._operator_map[key] = _mf._not_nothing_and(
            _mf._list_expand(range_op(op, key in ("$gt", "$lt"))))

    # $in / $nin with MongoDB's equality (true is not 1, NaN equals NaN, an
    # array operand equals the whole array or one of its elements); mongomock
    # uses Python's `in`.
    def in_op(doc_val, search_val):
        if not isinstance(search_val, (list, tuple)):
            raise _OperationFailure("$in needs an array")
        if doc_val is _mf.NOTHING:
            return any(x is None for x in search_val)
        for x in search_val:
            if isinstance(x, _mf._RE_TYPES):
                if _mf._regex(doc_val, x):
                    return True
                continue
            if operator_eq(doc_val, x):
                return True
            if isinstance(doc_val, list) and any(operator_eq(e, x) for e in doc_val):
                return True
        return False
    _mf._in_op = in_op
    fi._operator_map["$in"] = in_op

    # $type with a list of types matches a value of any of them.
    orig_type_op = _mf._type_op

    def type_op(doc_val, search_val):
        if isinstance(search_val, (list, tuple)):
            if not search_val:
                raise _OperationFailure("$type must match at least one type")
            return any(orig_type_op(doc_val, t) for t in search_val)
        return orig_type_op(doc_val, search_val)
    fi._operator_map["$type"] = type_op

    # Dotted paths through null, a scalar or an array of scalars.
    _mf.iter_key_candidates = path_candidates

    # $mod (truncating, as MongoDB: -5 % 3 is -2).
    def mod(doc_val, search_val):
        if not isinstance(search_val, list) or len(search_val) != 2:
            raise _OperationFailure("malformed mod, needs to be an array")
        divisor, remainder = search_val
        if not _is_number(doc_val) or not _is_number(divisor):
            return False
        d, x = int(_num(divisor)), _num(doc_val)
        if d == 0:
            raise _OperationFailure("divisor cannot be 0")
        if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
            return False
        x = int(x)
        r = abs(x) % abs(d)
        return (r if x >= 0 else -r) == int(_num(remainder))
    def mod_any(doc_val, search_val):
        if isinstance(doc_val, list):
            return any(mod(v, search_val) for v in doc_val)
        return mod(doc_val, search_val)
    fi._operator_map["$mod"] = _mf._not_nothing_and(mod_any)

    # Comparison expressions ($eq, $gt, $cmp ... in $expr, $project, ...):
    # full BSON order, a missing field below null.
    def handle_comparison(self, operator, values):
        if not isinstance(values, list) or len(values) != 2:
            raise _OperationFailure("Expression %s takes exactly 2 arguments."
                                    % operator)
        a = self._parse_or_nothing(values[0])
        b = self._parse_or_nothing(values[1])
        c = bson_cmp(a, b)
        if operator == "$cmp":
            return c
        return {"$eq": c == 0, "$ne": c != 0, "$gt": c > 0, "$gte": c >= 0,
                "$lt": c < 0, "$lte": c <= 0}[operator]
    mm_aggregate._Parser._handle_comparison_operator = handle_comparison

    # $ifNull: undefined is null too (mongomock tests for None only).
    orig_conditional = mm_aggregate._Parser._handle_conditional_operator

    def handle_conditional(self, operator, values):
        if operator == "$ifNull" and isinstance(values, list) and len(values) == 2:
            try:
                v = self.parse(values[0])
                if v is not None and v is not UNDEFINED:
                    return v
            except KeyError:
                pass
            return self.parse(values[1])
        return orig_conditional(self, operator, values)
    mm_aggregate._Parser._handle_conditional_operator = handle_conditional
    if "$cmp" not in mm_aggregate.comparison_operators:
        mm_aggregate.comparison_operators.append("$cmp")

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, (bool, Int64)) and \
            -2 ** 31 <= v < 2 ** 31

    def is_long(v):
        return isinstance(v, Int64) or (isinstance(v, int) and not isinstance(v, bool)
                                        and not is_int(v))
    fixes = {
        "int": is_int,
        "long": is_long,
        "null": lambda v: v is None,
        "regex": lambda v: isinstance(v, (Regex, _re.Pattern)),
        "timestamp": lambda v: isinstance(v, Timestamp),
        "binData": lambda v: isinstance(v, (bytes, Binary)),
        "string": lambda v: isinstance(v, str) and not isinstance(v, (Code, Symbol)),
        "javascript": lambda v: isinstance(v, Code) and not v.scope,
        "javascriptWithScope": lambda v: isinstance(v, Code) and bool(v.scope),
        "minKey": lambda v: isinstance(v, MinKey),
        "maxKey": lambda v: isinstance(v, MaxKey),
        # legacy.py keeps symbol and undefined; pymongo decodes DBPointer
        # to DBRef, so the stand-in holds no value of that type
        "symbol": lambda v: isinstance(v, Symbol),
        "dbPointer": lambda v: False,
        "undefined": lambda v: v is UNDEFINED,
    }
    tm = _mf.TYPE_MAP
    tm.update(fixes)
    numbers = {1: "double", 2: "string", 3: "object", 4: "array", 5: "binData",
               7: "objectId", 8: "bool", 9: "date", 10: "null", 11: "regex",
               16: "int", 17: "timestamp", 18: "long", 19: "decimal",
               6: "undefined", 12: "dbPointer", 13: "javascript", 14: "symbol",
               15: "javascriptWithScope", -1: "minKey", 127: "maxKey"}
    for n, name in numbers.items():
        tm[n] = tm[name]

    # The $type aggregation expression.
    if "$type" not in mm_aggregate.type_convertion_operators:
        mm_aggregate.type_convertion_operators.append("$type")
        orig = mm_aggregate._Parser._handle_type_convertion_operator

        def handle(self, operator, values):
            if operator == "$type":
                if isinstance(values, list):
                    if len(values) != 1:
                        raise _OperationFailure(
                            "Expression $type takes exactly 1 arguments. %d were "
                            "passed in." % len(values))
                    values = values[0]
                try:
                    v = self.parse(values)
                except KeyError:
                    return "missing"
                if v is mm_aggregate.NOTHING if hasattr(mm_aggregate, "NOTHING") else False:
                    return "missing"
                return bson_type_name(v)
            return orig(self, operator, values)
        mm_aggregate._Parser._handle_type_convertion_operator = handle

    # $min / $max accumulators in BSON order (null and missing ignored).
    import functools
    bkey = functools.cmp_to_key(bson_cmp)

    def acc(pick):
        def f(values):
            vals = [v for v in values if v is not None and v is not _mf.NOTHING]
            if not vals:
                return None
            return pick(vals, key=bkey)
        return f
    mm_aggregate._GROUPING_OPERATOR_MAP["$min"] = acc(min)
    mm_aggregate._GROUPING_OPERATOR_MAP["$max"] = acc(max)

    # $addToSet keeps every value but missing ones (mongomock drops 0, false
    # and ""), one of each under MongoDB's equality (1, 1.0 and
    # NumberLong(1) are one value).
    def add_to_set(values):
        out = []
        for v in values:
            if v is _mf.NOTHING:
                continue
            if not any(_type_order(v) == _type_order(o) and bson_cmp(v, o) == 0
                       for o in out):
                out.append(v)
        return out
    mm_aggregate._GROUPING_OPERATOR_MAP["$addToSet"] = add_to_set

    # $avg counts Decimal128 as a number (and then answers a Decimal128).
    def avg(values):
        nums = [_num(v) for v in values
                if (isinstance(v, (int, float)) and not isinstance(v, bool))
                or isinstance(v, Decimal128)]
        if not nums:
            return None
        if any(isinstance(v, _decimal.Decimal) for v in nums):
            total = sum(_decimal.Decimal(v) if not isinstance(v, _decimal.Decimal) else v
                        for v in nums)
            return Decimal128(total / len(nums))
        return sum(nums) / float(len(nums))
    mm_aggregate._GROUPING_OPERATOR_MAP["$avg"] = avg

    # $$NOW and $$CLUSTER_TIME.
    orig_basic = mm_aggregate._Parser._parse_basic_expression

    def basic(self, expression):
        if isinstance(expression, str) and expression.startswith("$$"):
            name = expression[2:].split(".", 1)[0]
            if name == "NOW":
                now = datetime.datetime.utcnow()
                return now.replace(microsecond=now.microsecond // 1000 * 1000)
            if name == "CLUSTER_TIME":
                from .server import current_cluster_time
                return current_cluster_time()
        return orig_basic(self, expression)
    mm_aggregate._Parser._parse_basic_expression = basic

    # Update operators: $mul (missing in mongomock), and $inc / $max / $min
    # with MongoDB's numeric types (Int64 stays long, Decimal128 is a number)
    # and BSON order.
    from mongomock import collection as mm_collection

    def arith(a, b, op):
        if isinstance(a, Decimal128) or isinstance(b, Decimal128):
            x, y = _decimal.Decimal(_num(a)), _decimal.Decimal(_num(b))
            return Decimal128(x + y if op == "+" else x * y)
        r = a + b if op == "+" else a * b
        if isinstance(r, float):
            return r
        if isinstance(a, Int64) or isinstance(b, Int64) or not -2 ** 31 <= r < 2 ** 31:
            return Int64(r)
        return r

    def zero_like(v):
        if isinstance(v, Decimal128):
            return Decimal128("0")
        if isinstance(v, float):
            return 0.0
        if isinstance(v, Int64):
            return Int64(0)
        return 0

    def numeric_updater(op):
        def upd(doc, field_name, value):
            if isinstance(doc, dict):
                if field_name in doc:
                    doc[field_name] = arith(doc[field_name], value, op)
                else:
                    doc[field_name] = value if op == "+" else zero_like(value)
            elif isinstance(doc, list):
                i = int(field_name)
                if i < 0:
                    raise _OperationFailure("Negative index provided")
                if i < len(doc) and doc[i] is not None:
                    doc[i] = arith(doc[i], value, op)
                else:
                    doc.extend([None] * (i + 1 - len(doc)))
                    doc[i] = value if op == "+" else zero_like(value)
        return upd

    def order_updater(want):
        def upd(doc, field_name, value):
            if isinstance(doc, dict):
                if field_name not in doc or bson_cmp(value, doc[field_name]) * want > 0:
                    doc[field_name] = value
            elif isinstance(doc, list):
                i = int(field_name)
                if i >= len(doc):
                    doc.extend([None] * (i + 1 - len(doc)))
                    doc[i] = value
                elif bson_cmp(value, doc[i]) * want > 0:
                    doc[i] = value
        return upd
    mm_collection._updaters["$inc"] = numeric_updater("+")
    mm_collection._updaters["$mul"] = numeric_updater("*")
    mm_collection._updaters["$max"] = order_updater(1)
    mm_collection._updaters["$min"] = order_updater(-1)

    # $sort with MongoDB's order (arrays by min/max element, BSON types).
    mm_aggregate._PIPELINE_HANDLERS["$sort"] = \
        lambda coll, db, options: sort_docs(coll, options)

    # $count over no input gives no document (mongomock gives {n: 0}).
    orig_count = mm_aggregate._PIPELINE_HANDLERS["$count"]

    def count(in_collection, database, options):
        out = orig_count(in_collection, database, options)
        return out if in_collection else []
    mm_aggregate._PIPELINE_HANDLERS["$count"] = count

    # $group over no input gives no groups (mongomock gives one for _id null).
    orig_group = mm_aggregate._PIPELINE_HANDLERS["$group"]

    def group(in_collection, database, options):
        if not in_collection:
            return []
        if isinstance(options, dict):
            # the $count accumulator (MongoDB 5.0) is {$sum: 1}
            options = {k: ({"$sum": 1} if isinstance(v, dict) and list(v) == ["$count"]
                           else v) for k, v in options.items()}
        return orig_group(in_collection, database, options)
    mm_aggregate._PIPELINE_HANDLERS["$group"] = group


_patch_mongomock()
