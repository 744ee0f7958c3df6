"""Random queries for the pushdown equivalence fuzzer.

A query is a Query object: a SELECT written against placeholder table names
({M} the mixed table, {C} the clean one) with a WHERE tree kept as a tree,
so the shrinker can drop branches.  Constants that may become parameters
are Param slots; Query.render() writes them inline or as $n for PREPARE.

Nothing generated here may raise an error for some rows and not for others
(no int4 arithmetic near the limits, no casts that can fail): a row that
pushdown filters out remotely is never seen by PostgreSQL's own checks, so
such an error could differ with pushdown on or off without either being
wrong.  Errors that come from the query alone (a bad pattern, say) are
compared like results.
"""

import re

# Column kinds: the columns of COLUMNS (data.py) by what they hold.
INT4 = ["id", "i", "na"]
INT2 = ["sm"]
INT8 = ["b"]
NUMERIC = ["n"]
FLOAT = ["f"]
TEXT = ["t", "u", "v", "ns", "vc"]
BOOL = ["bo"]
TS = ["ts", "tsl"]
INTARR = ["arr"]
TEXTARR = ["tags"]
JSONB = ["doc"]
NUMBERS = INT4 + INT2 + INT8 + NUMERIC + FLOAT
SCALARS = NUMBERS + TEXT + BOOL + TS
ALL = SCALARS + INTARR + TEXTARR + JSONB

KIND = {}
for _k, _cols in (("int4", INT4), ("int2", INT2), ("int8", INT8), ("numeric", NUMERIC),
                  ("float8", FLOAT), ("text", TEXT), ("bool", BOOL),
                  ("timestamptz", TS), ("int4[]", INTARR), ("text[]", TEXTARR),
                  ("jsonb", JSONB)):
    for _c in _cols:
        KIND[_c] = _k
KIND["vc"] = "varchar"
KIND["tsl"] = "timestamp"
TEXT_KINDS = ("text", "varchar")

NUMERIC_KINDS = ("int4", "int8", "numeric", "float8", "int2")

EDGE = {
    "int4": ["0", "1", "-1", "2", "3", "5", "10", "2147483647", "-2147483648",
             "2147483646"],
    "int2": ["0", "1", "-1", "5", "32767", "-32768", "32766"],
    "int8": ["0", "1", "-1", "4", "9223372036854775807", "-9223372036854775808",
             "9007199254740992", "9007199254740993", "2147483648", "4611686018427387904"],
    "numeric": ["0", "-0", "0.0", "1", "1.5", "1.50", "2.5", "-2.5", "0.1", "0.3",
                "'NaN'", "'Infinity'", "'-Infinity'", "1000", "1e3",
                "0.1000000000000000055511151231257827021181583404541015625",
                "9223372036854775807", "9223372036854775808", "1e308", "1e-308"],
    "float8": ["0", "'-0'", "0.5", "2.5", "0.1", "0.30000000000000004", "'NaN'",
               "'Infinity'", "'-Infinity'", "1e308", "1.7976931348623157e308",
               "5e-324", "9007199254740992", "9007199254740993", "2147483648", "3"],
    # text constants are raw strings; the generator quotes them
    "text": ["", "a", "A", "b", "ab", "abc", "Abc", "é", "e\u0301", "ä", "Ä", "z",
             "日本", "😀", "a%b", "a_b", "a\\b", "%", "_", "ß", "SS", " a", "a ", "0",
             "10", "9", "\u00a0", "a\nb", "'", "a'b"],
    "bool": ["true", "false"],
    "timestamptz": ["'2020-01-01 00:00:00+00'", "'2020-01-01 00:00:00.0005+00'",
                    "'2020-01-01 00:00:00.001+00'", "'2020-01-01 00:00:00.000999+00'",
                    "'2019-12-31 23:59:59.999+00'", "'2019-12-31 23:59:59.9995+00'",
                    "'1969-12-31 23:59:59.999+00'", "'1970-01-01 00:00:00+00'",
                    "'1969-12-31 23:59:59.9999+00'", "'0001-01-01 00:00:00+00'",
                    "'9999-12-31 23:59:59.999+00'", "'infinity'", "'-infinity'",
                    "'2020-01-01 01:00:00+01'", "'2000-01-01 00:00:00.999+00'"],
}

# aggregates $group computes (over the clean table's integer, boolean and
# text columns), for queries meant to ship them
SHIPPABLE_AGGS = ["count(*)", "count(i)", "count(t)", "count(doc)", "count(DISTINCT t)",
                  "count(DISTINCT i)", "count(DISTINCT bo)", "sum(i)", "sum(b)", "sum(sm)",
                  "sum(na)", "sum(id)", "avg(i)", "avg(b)", "avg(na)", "min(i)", "max(i)",
                  "min(b)", "max(b)", "min(t)", "max(u)", "min(v)", "max(ns)", "bool_and(bo)",
                  "bool_or(bo)", "every(bo)", "count(ts)", "count(arr)", "max(na)", "min(id)"]

CMP_OPS = ["=", "<>", "<", "<=", ">", ">=", "=", "<>"]


def q(s):
    """A string as an SQL literal."""
    return "'" + s.replace("'", "''") + "'"


class Param:
    """A constant that may be sent as a parameter: its SQL type and literal."""

    __slots__ = ("sqltype", "literal")

    def __init__(self, sqltype, literal):
        self.sqltype = sqltype
        self.literal = literal


class Leaf:
    """A condition: fmt with {0}, {1}, ... for its Params."""

    def __init__(self, fmt, params=()):
        self.fmt = fmt
        self.params = list(params)


class Node:
    def __init__(self, op, kids):
        self.op = op            # "AND", "OR", "NOT"
        self.kids = kids


class Query:
    """One query.  Fields hold SQL fragments with {M}/{C} table placeholders
    and {W} where the WHERE tree goes."""

    def __init__(self, kind, template, where, ordered, settings=(), prepared=False,
                 generic=False):
        self.kind = kind
        self.template = template
        self.where = where
        self.ordered = ordered
        self.settings = list(settings)
        self.prepared = prepared
        self.generic = generic

    def copy(self, **kw):
        d = dict(kind=self.kind, template=self.template, where=self.where,
                 ordered=self.ordered, settings=self.settings,
                 prepared=self.prepared, generic=self.generic)
        d.update(kw)
        return Query(**d)

    def render(self, tables, as_params=None):
        """(sql, params): params is a list of Param when written as $n."""
        as_params = self.prepared if as_params is None else as_params
        params = []

        def leaf(lf):
            args = []
            for p in lf.params:
                if as_params:
                    params.append(p)
                    args.append("$%d" % len(params))
                else:
                    args.append(p.literal)
            return lf.fmt.format(*args)

        def walk(t):
            if isinstance(t, Leaf):
                return leaf(t)
            if t.op == "NOT":
                return "NOT (" + walk(t.kids[0]) + ")"
            return "(" + (" " + t.op + " ").join(walk(k) for k in t.kids) + ")"

        sql = self.template
        if self.where is None:
            # no condition left (the shrinker dropped it): drop its slot
            sql = sql.replace(" WHERE {W}", "").replace(" AND {W}", "").replace("{W}", "true")
        else:
            sql = sql.replace("{W}", walk(self.where))
        for k, v in tables.items():
            sql = sql.replace("{" + k + "}", v)
        return sql, params


class Gen:
    """Draws queries from a seeded random.Random.  pools: column -> list of
    text renderings of values present in the local copy of the data."""

    def __init__(self, rng, pools, icu):
        self.rng = rng
        self.pools = pools
        self.icu = icu

    # ------------------------------------------------------------------
    # constants

    def const(self, kind, col=None):
        """A Param for a value to compare a column of this kind with."""
        rng = self.rng
        r = rng.random()
        if r < 0.05:
            return Param(kind, "NULL::" + kind)
        pool = self.pools.get(col) if col else None
        if pool and r < 0.5:
            v = rng.choice(pool)
            return Param(kind, q(v) + "::" + kind)
        if kind in NUMERIC_KINDS and r < 0.65:
            # a constant of another numeric type: cross-type comparison.
            # Not float8 against numeric: the column would be cast to
            # float8, an error for values beyond its range, row by row.
            other = rng.choice(NUMERIC_KINDS if kind != "numeric" else ("int2", "int4", "int8", "numeric"))
            return Param(other, self._edge(other) + "::" + other)
        if kind in EDGE:
            return Param(kind, self._edge(kind) + "::" + kind)
        if kind == "timestamp":
            v = self._edge("timestamptz")
            return Param(kind, re.sub(r"[+-]0\d'$", "'", v) + "::" + kind)
        return Param(kind, "NULL::" + kind)

    def _edge(self, kind):
        """An edge value of the kind, quoted when a bare literal would not
        read back as written (-2147483648::int4 casts before the minus)."""
        v = self.rng.choice(EDGE[kind])
        if v.startswith("-"):
            return q(v)
        return v

    def text_const(self, col):
        rng = self.rng
        pool = self.pools.get(col) or []
        if pool and rng.random() < 0.5:
            return Param("text", q(rng.choice(pool)))
        return Param("text", q(rng.choice(EDGE["text"])))

    def like_pattern(self, col):
        """A LIKE pattern made from a value in the data, with wildcards,
        escapes and regex metacharacters."""
        rng = self.rng
        pool = self.pools.get(col) or ["abc"]
        s = rng.choice(pool) if rng.random() < 0.8 else rng.choice(["a.c", "a*", "(a)", "[ab]", "^a", "a$", "a|b", "a+", "\\d"])
        out = []
        for ch in s:
            r = rng.random()
            if r < 0.15:
                out.append("%")
            elif r < 0.25:
                out.append("_")
            elif ch in "%_\\":
                out.append("\\" + ch if rng.random() < 0.7 else ch)
            else:
                out.append(ch)
        if rng.random() < 0.3:
            out.insert(0, "%")
        if rng.random() < 0.3:
            out.append("%")
        return "".join(out)

    @staticmethod
    def close_escape(pat, esc):
        """pat with a lone escape character at its end doubled: that is an
        error, raised only for rows that reach the LIKE, so with pushdown
        it would depend on which rows MongoDB filtered out."""
        k = 0
        while k < len(pat):
            if pat[k] == esc:
                if k + 1 == len(pat):
                    return pat + esc
                k += 2
            else:
                k += 1
        return pat

    # ------------------------------------------------------------------
    # conditions

    def col(self, cols, alias=""):
        c = self.rng.choice(cols)
        return c, (alias + "." if alias else "") + c

    def leaf(self, alias=""):
        rng = self.rng
        pick = rng.random()
        a = (alias + ".") if alias else ""
        if pick < 0.30:
            c, ref = self.col(NUMBERS, alias)
            p = self.const(KIND[c], c)
            op = rng.choice(CMP_OPS)
            if rng.random() < 0.2:
                return Leaf("{0} " + op + " " + ref, [p])
            return Leaf(ref + " " + op + " {0}", [p])
        if pick < 0.40:
            c, ref = self.col(TEXT, alias)
            op = rng.choice(CMP_OPS)
            coll = ""
            if rng.random() < 0.15:
                coll = " COLLATE " + rng.choice(['"C"', self.icu, '"default"', '"POSIX"'])
            return Leaf(ref + coll + " " + op + " {0}", [self.text_const(c)])
        if pick < 0.46:
            c, ref = self.col(SCALARS + INTARR + TEXTARR + JSONB, alias)
            return Leaf(ref + rng.choice([" IS NULL", " IS NOT NULL"]))
        if pick < 0.52:
            c, ref = self.col(SCALARS, alias)
            kind = KIND[c]
            n = rng.randint(1, 4)
            ps = [self.text_const(c) if kind in TEXT_KINDS else self.const(kind, c)
                  for _ in range(n)]
            slots = ", ".join("{%d}" % k for k in range(n))
            form = rng.random()
            if form < 0.4:
                return Leaf(ref + " IN (" + slots + ")", ps)
            if form < 0.7:
                return Leaf(ref + " NOT IN (" + slots + ")", ps)
            if form < 0.85:
                return Leaf(ref + " = ANY (ARRAY[" + slots + "])", ps)
            return Leaf(ref + " <> ALL (ARRAY[" + slots + "])", ps)
        if pick < 0.57:
            c, ref = self.col(NUMBERS + TS + TEXT, alias)
            kind = KIND[c]
            mk = (lambda: self.text_const(c)) if kind in TEXT_KINDS else (lambda: self.const(kind, c))
            neg = rng.choice(["", "NOT "])
            sym = rng.choice(["", "", "SYMMETRIC "])
            return Leaf(ref + " " + neg + "BETWEEN " + sym + "{0} AND {1}", [mk(), mk()])
        if pick < 0.65:
            c, ref = self.col(TEXT, alias)
            op = rng.choice(["LIKE", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE", "~~", "!~~"])
            pat = self.like_pattern(c)
            if "LIKE" in op and rng.random() < 0.15:
                esc = rng.choice(["#", "!", ""])
                if esc:
                    pat = self.close_escape(pat.replace("\\", esc), esc)
                return Leaf(ref + " " + op + " {0} ESCAPE " + q(esc), [Param("text", q(pat))])
            pat = self.close_escape(pat, "\\")
            return Leaf(ref + " " + op + " {0}", [Param("text", q(pat))])
        if pick < 0.68:
            c, ref = self.col(TEXT, alias)
            form = rng.choice([
                lambda: Leaf(ref + " ^@ {0}", [self.text_const(c)]),
                lambda: Leaf("lower(" + ref + ") = {0}", [self.text_const(c)]),
                lambda: Leaf("length(" + ref + ") " + rng.choice(CMP_OPS) + " {0}",
                             [Param("int4", str(rng.randint(0, 4)))]),
                lambda: Leaf(ref + " ~ {0}", [Param("text", q(rng.choice(["^a", "b$", "^$", "é", "^[aA]", "a.c", "\\."])))]),
            ])
            return form()
        if pick < 0.73:
            _, ref = self.col(BOOL, alias)
            return rng.choice([
                lambda: Leaf(ref),
                lambda: Leaf("NOT " + ref),
                lambda: Leaf(ref + " = {0}", [self.const("bool")]),
                lambda: Leaf(ref + " <> {0}", [self.const("bool")]),
                lambda: Leaf(ref + rng.choice([" IS TRUE", " IS FALSE", " IS NOT TRUE",
                                               " IS NOT FALSE", " IS UNKNOWN",
                                               " IS NOT UNKNOWN"])),
                lambda: Leaf(ref + " IS DISTINCT FROM {0}", [self.const("bool")]),
            ])()
        if pick < 0.78:
            c, ref = self.col(TS, alias)
            kind = KIND[c]
            return rng.choice([
                lambda: Leaf(ref + " " + rng.choice(CMP_OPS) + " {0}", [self.const(kind, c)]),
                lambda: Leaf(ref + " " + rng.choice(CMP_OPS) + " {0}", [self.const(kind, c)]),
                lambda: Leaf(ref + " " + rng.choice(CMP_OPS) + " {0}",
                             [Param("timestamp", rng.choice(EDGE["timestamptz"][:8]) + "::timestamp")]),
                lambda: Leaf(ref + " " + rng.choice(["<", ">"]) + " now()"),
                lambda: Leaf(ref + " > now() - interval '60 years'"),
                lambda: Leaf(ref + " + interval '1 millisecond' " + rng.choice(CMP_OPS) + " {0}",
                             [self.const("timestamptz", "ts")]),
                lambda: Leaf("date_trunc('second', " + ref + ") = {0}", [self.const("timestamptz", "ts")]),
                lambda: Leaf(ref + "::date = {0}", [Param("date", "'2020-01-01'::date")]),
                lambda: Leaf("extract(year from " + ref + ") = {0}",
                             [Param("numeric", rng.choice(["2020", "1969", "1970", "1", "9999"]))]),
                lambda: Leaf(ref + " IS DISTINCT FROM {0}", [self.const("timestamptz", "ts")]),
            ])()
        if pick < 0.85:
            if rng.random() < 0.6:
                _, ref = self.col(INTARR, alias)
                ip = lambda: Param("int4", rng.choice(["0", "1", "2", "3", "5", "-1", "2147483647"]))
                return rng.choice([
                    lambda: Leaf("{0} = ANY (" + ref + ")", [ip()]),
                    lambda: Leaf("{0} <> ALL (" + ref + ")", [ip()]),
                    lambda: Leaf("{0} < ANY (" + ref + ")", [ip()]),
                    lambda: Leaf(ref + " @> ARRAY[{0}]", [ip()]),
                    lambda: Leaf(ref + " @> ARRAY[{0}, {1}]", [ip(), ip()]),
                    lambda: Leaf(ref + " <@ ARRAY[{0}, {1}, {2}]", [ip(), ip(), ip()]),
                    lambda: Leaf(ref + " && ARRAY[{0}, {1}]", [ip(), ip()]),
                    lambda: Leaf(ref + " = '{{}}'::int[]"),
                    lambda: Leaf(ref + " = ARRAY[{0}, {1}]", [ip(), ip()]),
                    lambda: Leaf("cardinality(" + ref + ") " + rng.choice(CMP_OPS) + " {0}",
                                 [Param("int4", str(rng.randint(0, 3)))]),
                    lambda: Leaf(ref + "[1] " + rng.choice(CMP_OPS) + " {0}", [ip()]),
                ])()
            _, ref = self.col(TEXTARR, alias)
            tp = lambda: self.text_const("t")
            return rng.choice([
                lambda: Leaf("{0} = ANY (" + ref + ")", [tp()]),
                lambda: Leaf(ref + " @> ARRAY[{0}]", [tp()]),
                lambda: Leaf(ref + " && ARRAY[{0}, {1}]", [tp(), tp()]),
                lambda: Leaf(ref + "[1] " + rng.choice(CMP_OPS) + " {0}", [tp()]),
                lambda: Leaf("{0} <> ALL (" + ref + ")", [tp()]),
            ])()
        if pick < 0.90:
            _, ref = self.col(JSONB, alias)
            key = rng.choice(["i", "b", "n", "f", "s", "bo", "d", "o", "arr", "tags", "extra", "_id"])
            return rng.choice([
                lambda: Leaf(ref + " ? " + q(key)),
                lambda: Leaf(ref + "->>" + q(key) + " = {0}", [self.text_const("t")]),
                lambda: Leaf(ref + "->>" + q(key) + " IS NULL"),
                lambda: Leaf("jsonb_typeof(" + ref + "->" + q(key) + ") = " +
                             q(rng.choice(["number", "string", "null", "array", "object", "boolean"]))),
                lambda: Leaf(ref + " @> {0}", [Param("jsonb", q(rng.choice([
                    '{"bo": true}', '{"i": 1}', '{"i": 1.0}', '{"s": "a"}', '{"o": {"a": 1}}',
                    '{"arr": [1]}', '{"tags": []}', '{"n": {"$numberDecimal": "1.50"}}',
                    '{"b": 4}', '{"s": ""}'])) + "::jsonb")]),
                lambda: Leaf(ref + "->" + q(key) + " = {0}", [Param("jsonb", q(rng.choice(
                    ["1", "1.0", "-1", '"a"', "true", "null", "[]", "{}", "0"])) + "::jsonb")]),
                lambda: Leaf(ref + "->'o'->>'a' = {0}", [Param("text", q(str(rng.randint(-5, 10))))]),
            ])()
        if pick < 0.95:
            # two columns of the same table
            pairs = [("i", "b"), ("i", "na"), ("n", "f::numeric"), ("i", "n"), ("b", "f"),
                     ("id", "i"), ("t", "ns"), ("i", "f"), ("b", "n")]
            x, y = rng.choice(pairs)
            return Leaf(a + x + " " + rng.choice(CMP_OPS) + " " + a + y)
        # safe arithmetic and casts
        _, ref = self.col(["i", "na", "id"], alias)
        return rng.choice([
            lambda: Leaf(ref + " % 3 = {0}", [Param("int4", str(rng.randint(-2, 2)))]),
            lambda: Leaf(ref + "::bigint * 2 + 1 " + rng.choice(CMP_OPS) + " {0}", [self.const("int8", "b")]),
            lambda: Leaf(a + "b::numeric + 1 " + rng.choice(CMP_OPS) + " {0}", [self.const("numeric", "n")]),
            lambda: Leaf(a + "f::numeric " + rng.choice(CMP_OPS) + " {0}", [self.const("numeric", "n")]),
            lambda: Leaf(a + "n + 1 " + rng.choice(CMP_OPS) + " {0}", [self.const("numeric", "n")]),
            lambda: Leaf(a + "b::float8 = " + a + "f"),
            lambda: Leaf("coalesce(" + ref + ", {0}) = {1}", [self.const("int4", "i"), self.const("int4", "i")]),
            lambda: Leaf(a + "t = " + a + "v COLLATE \"C\""),
            lambda: Leaf("(" + a + "i > 0) = " + a + "bo"),
        ])()

    def tree(self, depth, alias=""):
        rng = self.rng
        if depth <= 0 or rng.random() < 0.4:
            return self.leaf(alias)
        r = rng.random()
        if r < 0.15:
            return Node("NOT", [self.tree(depth - 1, alias)])
        op = "AND" if r < 0.6 else "OR"
        return Node(op, [self.tree(depth - 1, alias) for _ in range(rng.randint(2, 3))])

    # ------------------------------------------------------------------
    # queries

    def select_list(self, alias=""):
        rng = self.rng
        a = (alias + ".") if alias else ""
        cols = ["id"] + rng.sample(ALL[1:], rng.choice([0, 1, 1, 2, 2, 3, 4]))
        out = []
        for c in cols:
            if c == "doc" and rng.random() < 0.5:
                out.append(a + "doc->" + q(rng.choice(["o", "arr", "s", "n"])))
            else:
                out.append(a + c)
        return ", ".join(out)

    def order_key(self):
        rng = self.rng
        # half the time a key MongoDB can sort by (integer, boolean and
        # text columns under "C"), so that $sort and $limit are exercised
        if rng.random() < 0.5:
            c = rng.choice(INT4 + INT2 + INT8 + BOOL + TEXT + ['t COLLATE "C"'])
        else:
            c = rng.choice(SCALARS + ["arr", "tags", "lower(t)", 't COLLATE "C"', "u COLLATE \"C\"",
                                      "v COLLATE " + self.icu, "doc->'i'", "doc->>'s'"])
        return (c + rng.choice(["", " ASC", " DESC"]) +
                rng.choice(["", "", " NULLS FIRST", " NULLS LAST"]))

    def simple_scan(self):
        """The clean table with no condition or one leaf: a scan whose
        conditions often all ship, so that what comes above them (sort,
        limit, aggregates) may ship too."""
        rng = self.rng
        return "{C}", (None if rng.random() < 0.5 else self.leaf())

    def query(self):
        rng = self.rng
        table = "{M}" if rng.random() < 0.6 else "{C}"
        r = rng.random()
        settings = []
        if rng.random() < 0.1:
            settings.append("SET TimeZone = " + q(rng.choice(["America/New_York", "Asia/Kolkata", "UTC", "Pacific/Chatham"])))
        if rng.random() < 0.15:
            # one kind of pushdown off, or plans that lean on sorted scans
            settings.append(rng.choice(["SET qleaf_fdw.enable_sort_pushdown = off",
                                        "SET qleaf_fdw.enable_limit_pushdown = off",
                                        "SET qleaf_fdw.enable_aggregate_pushdown = off",
                                        "SET enable_sort = off", "SET enable_hashagg = off"]))
        if r < 0.30:
            where = self.tree(3)
            tpl = "SELECT " + self.select_list() + " FROM " + table + " WHERE {W}"
            qy = Query("rows", tpl, where, False, settings)
        elif r < 0.50:
            where = self.tree(2)
            if rng.random() < 0.5:
                # conditions that may all ship: the sort and limit too
                table, where = self.simple_scan()
            keys = [self.order_key() for _ in range(rng.randint(1, 3))] + [rng.choice(["id", "id DESC"])]
            tpl = ("SELECT " + self.select_list() + " FROM " + table + " WHERE {W} ORDER BY " +
                   ", ".join(keys))
            if rng.random() < 0.6:
                tpl += " LIMIT " + str(rng.choice([0, 1, 2, 5, 10, 50]))
                if rng.random() < 0.3:
                    tpl += " OFFSET " + str(rng.choice([0, 1, 3, 20]))
            qy = Query("ordered", tpl, where, True, settings)
        elif r < 0.70:
            where = self.tree(2)
            simple = rng.random() < 0.5
            if simple:
                # conditions that may all ship: the aggregates too
                table, where = self.simple_scan()
            aggs = rng.sample(SHIPPABLE_AGGS if simple and rng.random() < 0.7 else [
                "count(*)", "count(i)", "count(t)", "count(doc)", "count(DISTINCT t)",
                # a float sum depends on the order it adds in (1e308 + -1e308
                # + 0.1): only in a fixed order is it the same on each side
                "sum(i)", "sum(b)", "sum(n)", "sum(f ORDER BY id)", "avg(i)", "avg(n)",
                "avg(f ORDER BY id)", "sum(f::numeric)", "string_agg(t, ',' ORDER BY id)",
                "array_agg(i ORDER BY id)",
                "min(i)", "max(i)", "min(b)", "max(n)", "min(f)", "max(f)", "min(t)",
                "max(u)", "min(v)", "min(ts)", "max(ts)", "bool_and(bo)", "bool_or(bo)",
                "count(*) FILTER (WHERE bo)", "sum(cardinality(arr))", "max(na)",
                # what $group computes: integer, boolean and text columns
                "count(DISTINCT i)", "count(DISTINCT b)", "count(DISTINCT bo)",
                "count(DISTINCT u)", "count(DISTINCT sm)", "sum(sm)", "avg(sm)", "avg(b)",
                "sum(na)", "avg(na)", "min(sm)", "max(sm)", "min(na)", "max(b)", "max(t)",
                "min(u)", "max(v)", "min(ns)", "every(bo)", "count(ns)", "count(arr)",
                "count(ts)", "count(f)", "count(id)", "sum(id)", "max(vc)", "count(vc)"],
                rng.randint(1, 4))
            if rng.random() < 0.5:
                aggs = ["count(*)"] + aggs
            group = ""
            sel = ", ".join(aggs)
            if rng.random() < 0.5:
                # (not float or numeric columns: a group's value is one of
                # its equal members, 0 or -0, 1.5 or 1.50, whichever comes
                # first)
                g = rng.choice(["bo", "i", "t", "u", "na", "i % 2", "ts::date", "jsonb_typeof(doc->'i')",
                                "b", "sm", "v", "ns", "vc", "na, bo", "t, i", "bo, sm, u"]
                               + (["bo", "i", "t", "b", "na, bo", "t, i", "id"] if simple else []))
                group = " GROUP BY " + g
                sel = g + ", " + sel
                if rng.random() < 0.4:
                    group += " HAVING " + rng.choice([
                        "count(*) > " + str(rng.randint(0, 3)),
                        "sum(i) > " + str(rng.randint(-5, 50)),
                        "max(t) > " + q(rng.choice(EDGE["text"])),
                        "count(DISTINCT u) >= 2", "bool_or(bo)", "min(b) < 0",
                        "avg(na) > 1", "count(*) = 1 OR max(i) IS NULL"])
            tpl = "SELECT " + sel + " FROM " + table + " WHERE {W}" + group
            if rng.random() < 0.1:
                # LIMIT without ORDER BY: which rows is open, how many is not
                tpl = ("SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM " + table +
                       " WHERE {W} LIMIT " + str(rng.choice([0, 1, 3, 20])) + ") s")
            qy = Query("agg", tpl, where, False, settings)
        elif r < 0.85:
            qy = self.join_query(table, settings)
        else:
            # parameters: one of the above kinds, through PREPARE/EXECUTE
            inner = self.query()
            while inner.kind == "join" and rng.random() < 0.5:
                inner = self.query()
            generic = rng.random() < 0.5
            s = list(inner.settings)
            if generic:
                s.append("SET plan_cache_mode = force_generic_plan")
            return inner.copy(prepared=True, generic=generic, settings=s)
        return qy

    def join_query(self, table, settings):
        rng = self.rng
        other = rng.choice(["{M}", "{C}", table])
        settings = list(settings)
        if rng.random() < 0.35:
            settings += ["SET enable_hashjoin = off", "SET enable_mergejoin = off"]
        if rng.random() < 0.2:
            settings.append("SET enable_material = off")
        k = rng.randint(1, 200)
        outer = "a.id BETWEEN %d AND %d" % (k, k + rng.randint(0, 6))
        r = rng.random()
        on_col = rng.choice([("i", "i"), ("i", "na"), ("b", "b"), ("t", "t"), ("id", "i"),
                             ("n", "n"), ("ts", "ts"), ("f", "f"), ("i", "b"), ("u", "u")])
        if r < 0.45:
            join = rng.choice(["JOIN", "LEFT JOIN"])
            tpl = ("SELECT a.id, b.id, a.%s, b.%s FROM %s a %s %s b ON a.%s = b.%s WHERE %s AND {W}"
                   % (on_col[0], on_col[1], table, join, other, on_col[0], on_col[1], outer))
            alias = "b"
        elif r < 0.65:
            tpl = ("SELECT a.id, x.c, x.m FROM %s a, LATERAL (SELECT count(*) AS c, max(b.id) AS m FROM %s b "
                   "WHERE b.%s = a.%s AND {W}) x WHERE %s"
                   % (table, other, on_col[1], on_col[0], outer))
            alias = "b"
        elif r < 0.8:
            neg = rng.choice(["", "NOT "])
            tpl = ("SELECT a.id FROM %s a WHERE %s AND %sEXISTS (SELECT 1 FROM %s b WHERE b.%s = a.%s AND {W})"
                   % (table, outer, neg, other, on_col[1], on_col[0]))
            alias = "b"
        elif r < 0.85:
            tpl = ("SELECT a.id, a.i FROM %s a WHERE a.i IN (SELECT b.na FROM %s b WHERE {W}) AND a.id <= 60"
                   % (table, other))
            alias = "b"
        else:
            # a small heap table on the outer side: with a nested loop, the
            # foreign scan gets the key as a parameter
            kc, fc = rng.choice([("k", "i"), ("k", "na"), ("k", "b"), ("k", "sm"), ("x", "n"),
                                 ("s", "t"), ("s", "vc"), ("s", "u")])
            coll = ' COLLATE "C"' if kc == "s" else ""
            tpl = ("SELECT k.id, b.id FROM {K} k JOIN %s b ON b.%s = k.%s%s WHERE {W}"
                   % (table, fc, kc, coll))
            alias = "b"
        return Query("join", tpl, self.tree(2, alias), False, settings)
