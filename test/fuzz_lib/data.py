"""Documents for the pushdown equivalence fuzzer, and the tables over them.

Two collections, both keyed by an integer _id (1..N, the unique key every
ordered comparison ends with):

  mixed   every field holds, now and then, a value of another BSON type,
          null, or nothing at all; its foreign table reads values that do
          not fit their column as NULL (on_conversion_error 'null')
  clean   every value fits its column (or is null or missing); its foreign
          table is strict, so a conversion error there is a real error

The values aim at the traps of DESIGN.md section 3: numbers of every BSON
numeric type at their extremes (NaN, infinities, -0, 2^53 + 1, decimals with
trailing zeros), strings that differ by case, accents, composed and
decomposed forms, LIKE and regex metacharacters, dates one millisecond
either side of a boundary and before 1970, nested documents, arrays of
documents and nested arrays.
"""
import datetime
import math

import bson
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

DATABASE = "qleaf_fuzz"

UTC = datetime.timezone.utc

# A missing field: the generator leaves the key out.
MISSING = object()

# Column name, PostgreSQL type, BSON field path.  Both tables share these
# columns; the text columns differ only in collation ({icu} is replaced by
# an ICU collation the server has, or the database default when it has
# none).  sm and vc are narrower than the values of their fields: even the
# strict table reads them with on_conversion_error 'null' (LENIENT_COLUMNS).
COLUMNS = [
    ("id", "integer", "_id"),
    ("i", "integer", "i"),
    ("b", "bigint", "b"),
    ("n", "numeric", "n"),
    ("f", "double precision", "f"),
    ("t", 'text COLLATE "C"', "s"),
    ("u", "text COLLATE {icu}", "s"),
    ("v", "text", "s"),
    ("bo", "boolean", "bo"),
    ("ts", "timestamptz", "d"),
    ("na", "integer", "o.a"),
    ("ns", 'text COLLATE "C"', "o.s"),
    ("sm", "smallint", "i"),
    ("vc", "varchar(3)", "s"),
    ("tsl", "timestamp", "d"),
    ("arr", "integer[]", "arr"),
    ("tags", "text[]", "tags"),
    ("doc", "jsonb", "$$ROOT"),
]

LENIENT_COLUMNS = ("sm", "vc")

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

STRINGS = [
    "", "a", "A", "b", "B", "ab", "aB", "Ab", "abc", "ABC", "Abc", "abd",
    "a%b", "a_b", "a\\b", "a\\%", "100%", "_", "%", "\\", "'", "a'b",
    "Ä", "ä", "é", "e\u0301", "ñ", "z", "Z", "日本", "日本語", "😀", "a😀b",
    "a b", " a", "a ", "x.y", "x*y", "(a)", "[a]", "a|b", "^a$", "a+", "?",
    "a\nb", "line\ttab", "ß", "SS", "ﬀ", "İ", "i", "I", "0", "10", "9",
    "-1", "1e3", "true", "null", "\u00a0", "\u200b", "Ωmega", "ωmega",
]

DATES = [
    datetime.datetime(2020, 1, 1, 0, 0, 0, 0),
    datetime.datetime(2020, 1, 1, 0, 0, 0, 1000),
    datetime.datetime(2019, 12, 31, 23, 59, 59, 999000),
    datetime.datetime(2020, 1, 1, 0, 0, 1, 0),
    datetime.datetime(2020, 2, 29, 12, 30, 0, 500000),
    datetime.datetime(1970, 1, 1, 0, 0, 0, 0),
    datetime.datetime(1969, 12, 31, 23, 59, 59, 999000),
    datetime.datetime(1969, 12, 31, 23, 59, 59, 0),
    datetime.datetime(1900, 1, 1, 0, 0, 0, 1000),
    datetime.datetime(2000, 1, 1, 0, 0, 0, 0),
    datetime.datetime(2000, 1, 1, 0, 0, 0, 999000),
    datetime.datetime(1, 1, 1, 0, 0, 0, 0),
    datetime.datetime(9999, 12, 31, 23, 59, 59, 999000),
    datetime.datetime(2038, 1, 19, 3, 14, 7, 0),
    datetime.datetime(2038, 1, 19, 3, 14, 8, 1000),
]

SMALL_INTS = list(range(-5, 11))


def _i32(rng):
    r = rng.random()
    if r < 0.6:
        return rng.choice(SMALL_INTS)
    if r < 0.8:
        return rng.choice([INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1, 0, 100, -100])
    return rng.randint(-1000, 1000)


def _i64(rng):
    r = rng.random()
    if r < 0.4:
        return Int64(rng.choice(SMALL_INTS))
    if r < 0.8:
        return Int64(rng.choice([INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1,
                                 2**53, 2**53 + 1, -(2**53) - 1, INT32_MAX + 1,
                                 INT32_MIN - 1, 2**62]))
    return Int64(rng.randint(-10**12, 10**12))


DOUBLES = [0.0, -0.0, 0.5, -0.5, 1.0, 2.0, 2.5, -2.5, 0.1, 0.2, 0.30000000000000004,
           1e308, -1e308, 1.7976931348623157e308, 5e-324, -5e-324, 2.2250738585072014e-308,
           float(2**53), float(2**53) + 2.0, 9.223372036854776e18, 2147483647.0,
           2147483648.0, -2147483648.0, 3.0, 10.0, 1e15, 1e-15,
           float("nan"), float("inf"), float("-inf")]

DECIMALS = ["0", "-0", "0.0", "1", "1.0", "1.50", "1.5", "2.5", "3", "3.00", "-2.5",
            "0.1", "0.30", "1E+3", "1000", "123456789012345678901234567890123",
            "9.999999999999999999999999999999999E+6144", "1E-6176", "-1E+400",
            "1E+400", "NaN", "Infinity", "-Infinity", "9223372036854775807",
            "9223372036854775808", "2147483647", "2147483648", "0.000001"]


def _double(rng):
    if rng.random() < 0.5:
        return rng.choice(DOUBLES)
    return float(rng.choice(SMALL_INTS)) + rng.choice([0.0, 0.0, 0.25, 0.5])


def _decimal(rng):
    return Decimal128(rng.choice(DECIMALS))


def _date(rng):
    if rng.random() < 0.6:
        return rng.choice(DATES)
    base = rng.choice(DATES[:6])
    ms = rng.choice([-1, 1, 0, 999, -999, 1000, 86400000, -86400000])
    d = base + datetime.timedelta(milliseconds=ms)
    return d


def _string(rng):
    if rng.random() < 0.85:
        return rng.choice(STRINGS)
    return "".join(rng.choice("aAbB%_\\.é日 ") for _ in range(rng.randint(1, 5)))


def _absent(rng, doc, key, null_p=0.08, missing_p=0.08):
    """Leave the field out, or set it to null: True when done."""
    r = rng.random()
    if r < missing_p:
        return True
    if r < missing_p + null_p:
        doc[key] = None
        return True
    return False


def _other_type(rng):
    """A value of some type a column does not expect."""
    return rng.choice([
        lambda: rng.choice(STRINGS),
        lambda: rng.choice(SMALL_INTS),
        lambda: Int64(rng.choice([INT64_MAX, 2**40])),
        lambda: rng.choice(DOUBLES),
        lambda: _decimal(rng),
        lambda: rng.choice([True, False]),
        lambda: [rng.choice(SMALL_INTS), rng.choice(SMALL_INTS)],
        lambda: [],
        lambda: {"a": 1},
        lambda: {},
        lambda: ObjectId(bytes(rng.randrange(256) for _ in range(12))),
        lambda: rng.choice(DATES),
        lambda: Timestamp(rng.choice([0, 1577836800]), rng.choice([0, 1, 7])),
        lambda: [[1, 2], 3],
    ])()


def mixed_doc(rng, _id):
    doc = {"_id": _id}

    def field(key, usual, other_p=0.2):
        if _absent(rng, doc, key):
            return
        doc[key] = _other_type(rng) if rng.random() < other_p else usual()

    field("i", lambda: rng.choice([
        lambda: _i32(rng), lambda: _i32(rng), lambda: _i32(rng),
        lambda: float(rng.choice(SMALL_INTS)),                  # integral double
        lambda: Decimal128(rng.choice(["4", "4.0", "-0", "4.5", "2147483648"])),
        lambda: Int64(rng.choice([3, INT32_MAX + 1])),
    ])())
    field("b", lambda: rng.choice([
        lambda: _i64(rng), lambda: _i64(rng), lambda: _i32(rng),
        lambda: rng.choice([9007199254740993.0, 9.223372036854776e18, 4.0, 4.5]),
    ])())
    field("n", lambda: rng.choice([
        lambda: _decimal(rng), lambda: _double(rng), lambda: _i32(rng), lambda: _i64(rng),
    ])())
    field("f", lambda: rng.choice([
        lambda: _double(rng), lambda: _double(rng), lambda: _i32(rng), lambda: _i64(rng),
        lambda: Decimal128(rng.choice(["0.1", "2.5", "1E+400", "NaN", "-0"])),
    ])())
    field("s", lambda: _string(rng), other_p=0.15)
    field("bo", lambda: rng.choice([True, False]), other_p=0.15)
    field("d", lambda: _date(rng), other_p=0.15)
    if not _absent(rng, doc, "o"):
        doc["o"] = rng.choice([
            lambda: {"a": _i32(rng), "s": _string(rng)},
            lambda: {"a": _i32(rng), "s": _string(rng)},
            lambda: {"a": rng.choice(SMALL_INTS)},
            lambda: {"s": _string(rng)},
            lambda: {"a": None, "s": None},
            lambda: {},
            lambda: [{"a": rng.choice(SMALL_INTS), "s": "a"}, {"a": rng.choice(SMALL_INTS)}],
            lambda: [{"a": rng.choice(SMALL_INTS)}],
            lambda: {"a": [1, 2], "s": ["a", "b"]},
            lambda: {"a": _other_type(rng), "s": _other_type(rng)},
            lambda: rng.choice(SMALL_INTS),
            lambda: {"a": {"b": 1}},
        ])()
    if not _absent(rng, doc, "arr"):
        doc["arr"] = rng.choice([
            lambda: [rng.choice(SMALL_INTS) for _ in range(rng.randint(0, 4))],
            lambda: [rng.choice(SMALL_INTS) for _ in range(rng.randint(1, 4))],
            lambda: [None, rng.choice(SMALL_INTS)],
            lambda: [INT32_MAX, INT32_MIN],
            lambda: [[1, 2], 3],
            lambda: [1.5],
            lambda: [2.0, 3],
            lambda: rng.choice(SMALL_INTS),
            lambda: ["a"],
            lambda: [Int64(INT32_MAX + 1)],
            lambda: {"0": 1},
        ])()
    if not _absent(rng, doc, "tags"):
        doc["tags"] = rng.choice([
            lambda: [_string(rng) for _ in range(rng.randint(0, 3))],
            lambda: [_string(rng) for _ in range(rng.randint(1, 3))],
            lambda: [rng.choice(STRINGS), None],
            lambda: [1],
            lambda: "a",
            lambda: [["a"]],
            lambda: [],
        ])()
    if rng.random() < 0.1:
        doc["extra"] = _other_type(rng)
    return doc


def clean_doc(rng, _id):
    """Values that all fit their columns: the strict table reads them."""
    doc = {"_id": _id}

    def field(key, make):
        if not _absent(rng, doc, key):
            doc[key] = make()

    field("i", lambda: rng.choice([
        lambda: _i32(rng), lambda: _i32(rng), lambda: float(rng.choice(SMALL_INTS)),
        lambda: Int64(rng.choice(SMALL_INTS)), lambda: Decimal128(rng.choice(["4", "4.0", "-0"])),
    ])())
    field("b", lambda: rng.choice([lambda: _i64(rng), lambda: _i32(rng), lambda: 4.0])())
    field("n", lambda: rng.choice([
        lambda: _decimal(rng), lambda: _double(rng), lambda: _i32(rng), lambda: _i64(rng),
    ])())
    field("f", lambda: rng.choice([
        lambda: _double(rng), lambda: _double(rng), lambda: _i32(rng), lambda: _i64(rng),
        lambda: Decimal128(rng.choice(["0.1", "2.5", "NaN", "-0"])),
    ])())
    field("s", lambda: _string(rng))
    field("bo", lambda: rng.choice([True, False]))
    field("d", lambda: _date(rng))
    field("o", lambda: rng.choice([
        lambda: {"a": _i32(rng), "s": _string(rng)},
        lambda: {"a": rng.choice(SMALL_INTS)},
        lambda: {"s": _string(rng)},
        lambda: {"a": None},
        lambda: {},
    ])())
    field("arr", lambda: rng.choice([
        lambda: [rng.choice(SMALL_INTS) for _ in range(rng.randint(0, 4))],
        lambda: [None, rng.choice(SMALL_INTS)],
        lambda: [INT32_MAX, INT32_MIN],
        lambda: [2.0, 3],
    ])())
    field("tags", lambda: rng.choice([
        lambda: [_string(rng) for _ in range(rng.randint(0, 3))],
        lambda: [rng.choice(STRINGS), None],
    ])())
    return doc


def make_docs(rng, kind, count):
    make = mixed_doc if kind == "mixed" else clean_doc
    return [make(rng, i) for i in range(1, count + 1)]


def load(db, collection, docs):
    """(Re)create collection in the pymongo database db with docs."""
    coll = db[collection]
    coll.drop()
    if docs:
        coll.insert_many([dict(d) for d in docs], ordered=True)


def to_ejson(doc):
    """A document as canonical Extended JSON: every BSON type spelled out."""
    from bson import json_util
    return json_util.dumps(doc, json_options=json_util.CANONICAL_JSON_OPTIONS,
                           ensure_ascii=False)


def is_nan(x):
    return isinstance(x, float) and math.isnan(x)


__all__ = ["COLUMNS", "DATABASE", "make_docs", "load", "to_ejson", "bson"]
