"""Read-only views, as mongod keeps them.

A view is stored as a collection entry whose options hold viewOn and
pipeline (so the journal and the oplog carry it like any create), and it has
no documents of its own.  Before a command runs, `check` looks at the
namespace it names:

* find, count, distinct and aggregate read the view's result: the documents
  of the collection it is on (itself resolved when it is a view; a missing
  one reads as empty) put through the view's pipeline, then the request as
  on a collection;
* writes, findAndModify, index commands and collStats fail with 166
  CommandNotSupportedOnView, writes as write errors the way mongod reports
  them;
* a change stream on a view fails with 166 as well.
"""

from . import errors as E
from . import storage
from .errors import CommandError

CODE = (166, "CommandNotSupportedOnView")
MAX_DEPTH = 20                      # mongod's limit on views over views

_READS = {"find", "count", "distinct", "aggregate"}
_WRITES = {"insert": "documents", "update": "updates", "delete": "deletes"}
_REFUSED = {"findAndModify", "findandmodify", "createIndexes", "listIndexes",
            "dropIndexes", "collStats"}
# stages a view's pipeline may not hold (mongod: OptionNotSupportedOnView)
_NOT_IN_VIEW = ("$out", "$merge", "$changeStream")


def is_view(c):
    return c is not None and "viewOn" in c.options


def coll_info(c):
    """listCollections' entry for a view."""
    return {"name": c.name, "type": "view",
            "options": {"viewOn": c.options["viewOn"],
                        "pipeline": list(c.options.get("pipeline") or [])},
            "info": {"readOnly": True}}


def create_options(ctx, options):
    """Check the options of a create that names viewOn or pipeline; returns
    the options to store."""
    if "viewOn" not in options:
        raise CommandError(*E.INVALID_OPTIONS,
                           "'pipeline' requires 'viewOn' to also be specified")
    view_on = options["viewOn"]
    if not isinstance(view_on, str) or not view_on:
        raise CommandError(*E.TYPE_MISMATCH if not isinstance(view_on, str)
                           else E.BAD_VALUE, "'viewOn' must be a non-empty string")
    pipeline = options.get("pipeline", [])
    if not isinstance(pipeline, list):
        raise CommandError(*E.TYPE_MISMATCH, "'pipeline' must be an array")
    for st in pipeline:
        if not isinstance(st, dict) or len(st) != 1:
            raise CommandError(40323, "Location40323",
                               "A pipeline stage specification object must contain "
                               "exactly one field.")
        if next(iter(st)) in _NOT_IN_VIEW:
            raise CommandError(167, "OptionNotSupportedOnView",
                               "%s cannot be used in a view definition"
                               % next(iter(st)))
    for k in options:
        if k not in ("viewOn", "pipeline", "collation", "comment"):
            raise CommandError(*E.INVALID_OPTIONS,
                               "option '%s' is not supported for a view" % k)
    if ctx.txn is not None:
        raise CommandError(263, "OperationNotSupportedInTransaction",
                           "Cannot create a view in a multi-document transaction.")
    name = ctx.body.get("create")
    if ctx.view.get(ctx.db, name) is not None:
        raise CommandError(*E.NAMESPACE_EXISTS,
                           "Collection %s.%s already exists." % (ctx.db, name))
    _check_cycle(ctx, ctx.db, view_on, name)
    return {"viewOn": view_on, "pipeline": pipeline}


def _check_cycle(ctx, db, view_on, name):
    seen = {name}
    cur = view_on
    depth = 1
    while True:
        if cur in seen:
            raise CommandError(236, "GraphContainsCycle",
                               "View cycle detected: %s" % " => ".join(
                                   "%s.%s" % (db, n) for n in list(seen) + [cur]))
        c = ctx.view.get(db, cur)
        if not is_view(c):
            return
        depth += 1
        if depth > MAX_DEPTH:
            raise CommandError(165, "ViewDepthLimitExceeded",
                               "View depth too deep or view cycle detected. "
                               "Maximum depth is %d" % MAX_DEPTH)
        seen.add(cur)
        cur = c.options["viewOn"]


def _target(ctx):
    v = ctx.body.get(ctx.name)
    return v if isinstance(v, str) and v else None


def check(ctx, run_pipeline):
    """Called before a command's handler.  Returns None to run the handler
    as it is, or a reply (write errors) in its place; may raise 166; for a
    read of a view, makes ctx.view show the view as a collection holding its
    result.  run_pipeline(ctx, docs, stages) -> list of documents."""
    if ctx.name not in _READS and ctx.name not in _WRITES and \
            ctx.name not in _REFUSED or ctx.db in ("local", "admin", "config"):
        return None
    name = _target(ctx)
    if name is None:
        return None
    c = ctx.view.get(ctx.db, name)
    if not is_view(c):
        return None
    ns = "%s.%s" % (ctx.db, name)
    msg = "Namespace %s is a view, not a collection" % ns
    if ctx.name in _WRITES:
        stmts = ctx.body.get(_WRITES[ctx.name])
        if stmts is None and ctx.seq:
            stmts = ctx.seq.get(_WRITES[ctx.name])
        n = len(stmts) if isinstance(stmts, list) else 1
        if ctx.body.get("ordered", True) is not False:
            n = min(n, 1)
        reply = {"n": 0}
        if ctx.name == "update":
            reply["nModified"] = 0
        reply["writeErrors"] = [{"index": i, "code": CODE[0], "codeName": CODE[1],
                                 "errmsg": msg} for i in range(n)]
        reply["ok"] = 1.0
        return reply
    if ctx.name in _REFUSED:
        raise CommandError(*CODE, msg)
    pipeline = ctx.body.get("pipeline")
    if ctx.name == "aggregate" and isinstance(pipeline, list) and pipeline and \
            isinstance(pipeline[0], dict) and "$changeStream" in pipeline[0]:
        raise CommandError(*CODE, msg)
    docs = resolve(ctx, ctx.db, name, run_pipeline)
    ctx.view = _ResultView(ctx.view, ctx.db, name, docs)
    return None


def resolve(ctx, db, name, run_pipeline, depth=0):
    """The documents a view (or collection) reads as."""
    c = ctx.view.get(db, name)
    if c is None:
        return []
    if not is_view(c):
        return [p[0] for p in c.docs.values()]
    if depth >= MAX_DEPTH:
        raise CommandError(165, "ViewDepthLimitExceeded",
                           "View depth too deep or view cycle detected. Maximum "
                           "depth is %d" % MAX_DEPTH)
    docs = resolve(ctx, db, c.options["viewOn"], run_pipeline, depth + 1)
    stages = c.options.get("pipeline") or []
    return run_pipeline(ctx, docs, stages) if stages else docs


class _ResultView:
    """ctx.view with one name showing a view's result as a collection."""

    def __init__(self, inner, db, name, docs):
        self._inner = inner
        self._db = db
        self._name = name
        c = storage.Collection(db, name, {})
        keys = [storage.id_key(d["_id"]) if "_id" in d else None for d in docs]
        unique = None not in keys and len(set(keys)) == len(keys)
        # keyed by _id when that is unique, so that lookups by _id work;
        # else by position (a view may drop or repeat _id)
        c.docs = {(k if unique else ("#view", i)): [d, None]
                  for i, (k, d) in enumerate(zip(keys, docs))}
        self._coll = c

    def get(self, db, coll):
        if db == self._db and coll == self._name:
            return self._coll
        return self._inner.get(db, coll)

    def __getattr__(self, attr):
        return getattr(self._inner, attr)
