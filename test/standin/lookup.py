"""$lookup as mongod runs it.

mongomock implements the equality form of $lookup (localField /
foreignField) only.  mongod (5.0 and later) also runs the form with a
sub-pipeline ("Join Conditions and Subqueries on a Joined Collection" in
the manual):

    {$lookup: {from: <coll>, let: {<var>: <expression>, ...},
               pipeline: [<stage>, ...], as: <field>}}

For each input document, every `let` expression is evaluated against that
document; the sub-pipeline then runs over the joined collection, where the
variables are read as "$$<var>" in expressions ($expr in $match, $project,
...), "$$ROOT" and "$$CURRENT" being the joined document.  A variable whose
expression reads a missing field holds "missing" (as mongod's Value()).
With localField / foreignField as well, the equality match selects the
joined documents before the sub-pipeline runs.  The results, in the
sub-pipeline's order, go into an array at `as`.

The variables reach mongomock's expression parser through a per-thread
stack that this module's wrapper of _Parser.__init__ reads: every parser
created while a sub-pipeline runs sees them, whatever stage builds it.
"""
import copy
import re
import threading

from mongomock import aggregate as mm_aggregate

from .errors import CommandError
from . import errors as E

_state = threading.local()

_SPEC_FIELDS = {"from", "as", "localField", "foreignField", "let", "pipeline"}

# mongod's rule for user variable names: a lower-case ASCII letter or a
# non-ASCII character first, then letters, digits and underscores.
_VAR_NAME = re.compile(r"^(?:[a-z]|[^\x00-\x7f])(?:[A-Za-z0-9_]|[^\x00-\x7f])*$")

# Stages a $lookup sub-pipeline may not hold.
_NOT_IN_SUBPIPELINE = {"$out", "$merge", "$changeStream"}


def _variables():
    stack = getattr(_state, "stack", None)
    return stack[-1] if stack else None


def _install():
    orig_init = mm_aggregate._Parser.__init__
    if getattr(orig_init, "_qleaf_lookup", False):
        return

    def init(self, doc_dict, user_vars=None, ignore_missing_keys=False):
        outer = _variables()
        if outer:
            merged = dict(outer)
            merged.update(user_vars or {})
            user_vars = merged
        orig_init(self, doc_dict, user_vars, ignore_missing_keys)
    init._qleaf_lookup = True
    mm_aggregate._Parser.__init__ = init

    orig_lookup = mm_aggregate._PIPELINE_HANDLERS["$lookup"]

    def lookup(in_collection, database, options):
        if not isinstance(options, dict):
            raise CommandError(*E.FAILED_TO_PARSE,
                               "the $lookup specification must be an object")
        if "pipeline" not in options and "let" not in options:
            return orig_lookup(in_collection, database, options)
        return _lookup_pipeline(in_collection, database, options)
    mm_aggregate._PIPELINE_HANDLERS["$lookup"] = lookup


def _check_spec(options):
    for k in options:
        if k not in _SPEC_FIELDS:
            raise CommandError(*E.FAILED_TO_PARSE,
                               "unknown argument to $lookup: %s" % k)
    if not isinstance(options.get("from"), str):
        raise CommandError(*E.FAILED_TO_PARSE,
                           "$lookup 'from' must be a collection name (a string)")
    if not isinstance(options.get("as"), str) or not options["as"] \
            or options["as"].startswith("$"):
        raise CommandError(*E.FAILED_TO_PARSE,
                           "must specify 'as' field for a $lookup")
    if ("localField" in options) != ("foreignField" in options):
        raise CommandError(*E.FAILED_TO_PARSE,
                           "$lookup requires both or neither of 'localField' and "
                           "'foreignField' to be specified")
    pipeline = options.get("pipeline", [])
    if not isinstance(pipeline, list):
        raise CommandError(*E.FAILED_TO_PARSE,
                           "'pipeline' option must be specified as an array")
    for st in pipeline:
        if not isinstance(st, dict) or len(st) != 1:
            raise CommandError(40323, "Location40323",
                               "A pipeline stage specification object must contain "
                               "exactly one field.")
        if next(iter(st)) in _NOT_IN_SUBPIPELINE:
            raise CommandError(51047, "Location51047",
                               "%s is not allowed within a $lookup's sub-pipeline"
                               % next(iter(st)))
    let = options.get("let", {})
    if not isinstance(let, dict):
        raise CommandError(*E.FAILED_TO_PARSE,
                           "$lookup argument 'let' must be an object")
    for name in let:
        if not _VAR_NAME.match(name):
            raise CommandError(16870, "Location16870",
                               "'%s' starts with an invalid character for a user "
                               "variable name" % name)
    return pipeline, let


def _set_path(doc, path, value):
    parts = path.split(".")
    for p in parts[:-1]:
        if not isinstance(doc.get(p), dict):
            doc[p] = {}
        doc = doc[p]
    doc[parts[-1]] = value


def _lookup_pipeline(in_collection, database, options):
    from . import storage
    pipeline, let = _check_spec(options)
    foreign = database.get_collection(options["from"])
    stages = storage.pipeline_compat(copy.deepcopy(pipeline))
    local_field = options.get("localField")
    # The joined collection is read once per stage.  A sub-pipeline whose
    # stages all leave their input documents alone runs over those very
    # documents; any other gets private copies for each input document.
    from .commands import _NON_MUTATING
    copies = any(next(iter(st)) not in _NON_MUTATING for st in stages)
    everything = foreign.find({}) if local_field is None else None
    out = []
    for doc in in_collection:
        variables = dict(_variables() or {})
        for name, expr in let.items():
            try:
                variables[name] = mm_aggregate._Parser(doc).parse(expr)
            except KeyError:
                # a missing field: the variable holds "missing"
                variables.pop(name, None)
        if local_field is not None:
            try:
                key = mm_aggregate.helpers.get_value_by_dot(doc, local_field)
            except KeyError:
                key = None
            if isinstance(key, list):
                key = {"$in": key}
            joined = foreign.find({options["foreignField"]: key})
        else:
            joined = copy.deepcopy(everything) if copies else list(everything)
        stack = getattr(_state, "stack", None)
        if stack is None:
            stack = _state.stack = []
        stack.append(variables)
        try:
            result = list(mm_aggregate.process_pipeline(
                joined, database, copy.deepcopy(stages), None))
        finally:
            stack.pop()
        _set_path(doc, options["as"], result)
        out.append(doc)
    return out


_install()
