"""Random joins of two foreign tables, for join pushdown (kind "join2").

Each query joins two of the fuzzer's foreign tables ({M} mixed, {C} clean,
or one of them twice) INNER, LEFT or RIGHT on one or two equalities of
columns, with conditions on either side: in the WHERE tree (shrinkable),
and sometimes in the ON clause too.  The key pairs cover what join pushdown
ships (integers, numeric, text under one collation, boolean, a nested
field, an integer against a numeric) and what it must refuse (floats,
timestamps, varchar(n), text under two collations, an expression, an
inequality), on the strict clean table and on the mixed one, whose values
that do not fit are NULL.

Whether a query is a join2 query, and the query itself, come from their
own random stream (seed and query index), so the other kinds of queries
stay what they were.
"""

import random

from . import gen

# Share of the queries that are join2 queries.
SHARE = 0.04

# Key pairs (left column, right column, how the right one is written).
KEY_PAIRS = [
    ("i", "i"), ("i", "na"), ("id", "i"), ("b", "b"), ("i", "b"), ("sm", "i"),
    ("id", "id"), ("n", "n"), ("i", "n"), ("n", "b"),
    ("t", "t"), ("v", "v"), ("u", "u"), ("ns", "t"), ("t", "ns"),
    ("bo", "bo"),
    # refused: the join stays local
    ("f", "f"), ("ts", "ts"), ("vc", "vc"), ("t", "v"),
]

# Conditions of the ON clause on the right table alone (a LEFT join ships
# those MongoDB evaluates exactly) or on both (kept local).
ON_EXTRA = [
    "b.bo", "b.i > 2", "b.t IS NOT NULL", "b.n <> 0", "b.t LIKE 'a%'",
    "b.v ILIKE 'A%'", "a.id < b.id", "a.i <= b.na", "b.f > 0.5",
    "a.bo", "b.id BETWEEN 3 AND 60",
]


def _key(left, right):
    """The equality of a.left and b.right, collations made to agree."""
    kl, kr = gen.KIND[left], gen.KIND[right]
    if kl in gen.TEXT_KINDS and kr in gen.TEXT_KINDS and (left, right) in (("t", "v"),):
        return "a.%s = b.%s COLLATE \"C\"" % (left, right)
    return "a.%s = b.%s" % (left, right)


def maybe_query(seed, index, g):
    """A join2 query for query index of seed, or None (most indexes):
    g is the query's gen.Gen, whose WHERE trees and select lists it uses."""
    rng = random.Random("join2:%d:%d" % (seed, index))
    if rng.random() >= SHARE:
        return None
    g = gen.Gen(rng, g.pools, g.icu)
    left = rng.choice(["{M}", "{C}"])
    right = rng.choice(["{M}", "{C}"])
    join = rng.choice(["JOIN", "JOIN", "LEFT JOIN", "LEFT JOIN", "RIGHT JOIN"])
    keys = [_key(*rng.choice(KEY_PAIRS))]
    if rng.random() < 0.2:
        keys.append(_key(*rng.choice(KEY_PAIRS)))
    if rng.random() < 0.25:
        keys.append(rng.choice(ON_EXTRA))
    sel = ["a.id", "b.id"]
    for alias in ("a", "b"):
        for c in rng.sample(gen.SCALARS + ["doc", "tags"], rng.choice([0, 1, 1, 2])):
            sel.append(alias + "." + c)
    settings = []
    if rng.random() < 0.15:
        settings.append("SET qleaf_fdw.enable_join_pushdown = off")
    # mostly a slice of the left table: the stand-in runs each lookup in
    # Python
    where_parts = []
    if rng.random() < 0.85:
        k = rng.randint(0, 150)
        where_parts.append("a.id BETWEEN %d AND %d" % (k, k + rng.randint(0, 10)))
    trees = []
    for alias in ("a", "b"):
        if rng.random() < 0.6:
            trees.append(g.tree(2, alias))
    if not trees:
        where = None
    elif len(trees) == 1:
        where = trees[0]
    else:
        where = gen.Node("AND", trees)
    where_parts.append("{W}")
    tpl = ("SELECT %s FROM %s a %s %s b ON %s WHERE %s"
           % (", ".join(sel), left, join, right, " AND ".join(keys),
              " AND ".join(where_parts)))
    return gen.Query("join2", tpl, where, False, settings)


def pushed(conn, query, tables):
    """Did the plan with pushdown on run the join in MongoDB?"""
    sql, _params = query.render(tables, as_params=False)
    with conn.cursor() as cur:
        try:
            for s in query.settings:
                cur.execute(s)
            cur.execute("EXPLAIN (COSTS OFF) " + sql)
            plan = "\n".join(r[0] for r in cur.fetchall())
        finally:
            for s in query.settings:
                cur.execute("RESET " + s.split()[1])
    return "Relations:" in plan
