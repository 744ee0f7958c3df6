"""The deprecated BSON types undefined (0x06) and symbol (0x0E), kept
through storage and back out as mongod keeps them.

pymongo's `bson` decodes undefined as None and symbol as str, and cannot
encode either.  Every document the stand-in decodes or encodes goes through
`decode` / `decode_all` / `encode` here:

- decode: the C decoder builds the document; when the raw bytes hold an
  element of either type, the element's Python value is replaced by a
  marker: `UNDEFINED` (the one `Undefined` value) or a `Symbol` (a str
  subclass, so it compares, sorts and matches as the string it holds).
  Which elements are which is found by walking the raw bytes, only when
  one of the two type bytes occurs in them followed by a byte other than
  NUL, as the first byte of a field name is (the bytes of small numbers
  and string lengths, 06 00 00 00, are not): so a document whose only
  values of these types are under the empty field name "" reads them as
  null and string.
- encode: the C encoder writes a Symbol as JavaScript code (0x0D, a
  string's layout) and UNDEFINED as minKey (0xFF, no value, like
  undefined): their `_type_marker` says so, and counts that a marker was
  written.  When the count moved, the encoded bytes are walked next to the
  value and the type bytes of the markers' elements are set to 0x0E and
  0x06.

A document without either type costs a scan of its bytes for the two
type bytes (and a look at the byte after each one found) to decode, and
a counter compare to encode.
"""

import struct

import bson

_INT32 = struct.Struct("<i").unpack_from


class Symbol(str):
    """A BSON symbol: a string of another type."""
    __slots__ = ()
    scope = None            # read by the encoder: JavaScript code, no scope

    @property
    def _type_marker(self):
        _written[0] += 1
        return 13           # written as code, then patched to 0x0E

    def __repr__(self):
        return "Symbol(%s)" % str.__repr__(self)

    def __reduce__(self):
        return (Symbol, (str(self),))


class Undefined(object):
    """The BSON undefined value (there is one: UNDEFINED)."""
    __slots__ = ()
    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    @property
    def _type_marker(self):
        _written[0] += 1
        return 255          # written as minKey, then patched to 0x06

    def __repr__(self):
        return "Undefined"

    def __reduce__(self):
        return (Undefined, ())

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __eq__(self, other):
        return other is self

    def __hash__(self):
        return 0x06

    def __bool__(self):
        return False        # false in $cond, as null is


UNDEFINED = Undefined()
_written = [0]          # markers the encoder has written, ever

_UNDEF = 0x06
_SYMBOL = 0x0E

# the size of the value of each type of fixed size
_FIXED = {0x01: 8, 0x06: 0, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4,
          0x11: 8, 0x12: 8, 0x13: 16, 0x7F: 0, 0xFF: 0}


def _value_end(data, t, p):
    """The end of the value of type t starting at p."""
    n = _FIXED.get(t)
    if n is not None:
        return p + n
    if t in (0x02, 0x0D, 0x0E):                 # string, code, symbol
        return p + 4 + _INT32(data, p)[0]
    if t in (0x03, 0x04, 0x0F):                 # document, array, code w/ scope
        return p + _INT32(data, p)[0]
    if t == 0x05:
        return p + 5 + _INT32(data, p)[0]
    if t == 0x0B:                               # two cstrings
        return data.index(b"\x00", data.index(b"\x00", p) + 1) + 1
    if t == 0x0C:                               # DBPointer: string + oid
        return p + 4 + _INT32(data, p)[0] + 12
    raise bson.InvalidBSON("unknown BSON type 0x%02X" % t)


def _may_hold(data, start=0, end=None):
    """Whether bytes [start, end) may hold an undefined or symbol element:
    one of the two type bytes followed by a byte other than NUL."""
    if end is None:
        end = len(data)
    for b in (6, 14):
        p = data.find(b, start, end)
        while p >= 0:
            if p + 1 < end and data[p + 1]:
                return True
            p = data.find(b, p + 1, end)
    return False


def _mark(data, start, value):
    """Put markers into value (the decoded document or array at start) for
    its undefined and symbol elements, at any depth."""
    is_list = isinstance(value, list)
    if not is_list and not isinstance(value, dict):
        return
    end = start + _INT32(data, start)[0] - 1
    p = start + 4
    i = 0
    index = data.index
    while p < end:
        t = data[p]
        k = index(b"\x00", p + 1)
        v = k + 1
        e = _value_end(data, t, v)
        if t == _UNDEF or t == _SYMBOL or t == 0x03 or t == 0x04:
            key = i if is_list else data[p + 1:k].decode("utf-8")
            if t == _UNDEF:
                value[key] = UNDEFINED
            elif t == _SYMBOL:
                value[key] = Symbol(value[key])
            elif _may_hold(data, v, e):
                _mark(data, v, value[key])
        i += 1
        p = e


def _elements(data, start):
    """(type position, type, key, value start) of the elements of the
    document or array at start."""
    end = start + _INT32(data, start)[0] - 1
    p = start + 4
    while p < end:
        t = data[p]
        k = data.index(b"\x00", p + 1)
        v = k + 1
        yield p, t, data[p + 1:k], v
        p = _value_end(data, t, v)


def decode(data, opts):
    """One document, with markers for undefined and symbol values."""
    doc = bson._bson_to_dict(data, opts)
    # (an int's membership test is a memchr; a bytes needle's is slower)
    if (6 in data or 14 in data) and _may_hold(data) and isinstance(doc, dict):
        _mark(data, 0, doc)
    return doc


def decode_all(data, opts):
    """Concatenated documents, each as `decode` gives it."""
    docs = bson.decode_all(data, opts)
    if (6 in data or 14 in data) and _may_hold(data):
        p = 0
        for d in docs:
            n = _INT32(data, p)[0]
            if isinstance(d, dict) and _may_hold(data, p, p + n):
                _mark(data, p, d)
            p += n
    return docs


def _patch(buf, start, value):
    """Set the type bytes of the markers' elements in the encoded
    document or array at start (value is what was encoded there)."""
    is_list = isinstance(value, (list, tuple))
    i = -1
    for tp, t, key, v in _elements(buf, start):
        i += 1
        if t in (0x0D, 0xFF, 0x03, 0x04):
            try:
                x = value[i] if is_list else value[key.decode("utf-8")]
            except (KeyError, IndexError, TypeError):
                continue
            if t == 0x0D and type(x) is Symbol:
                buf[tp] = _SYMBOL
            elif t == 0xFF and x is UNDEFINED:
                buf[tp] = _UNDEF
            elif t != 0x0D and t != 0xFF and isinstance(x, (dict, list, tuple)):
                _patch(buf, v, x)


def encode(doc, check_keys=False, opts=None, _enc=bson._dict_to_bson,
           _count=_written):
    """bson._dict_to_bson, writing markers as the types they stand for."""
    before = _count[0]
    data = _enc(doc, check_keys, opts)
    if _count[0] == before:
        return data
    buf = bytearray(data)
    _patch(buf, 0, doc)
    return bytes(buf)
