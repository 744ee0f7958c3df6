"""Cursors: ids, batches, getMore, killCursors, change stream cursors.

Rules of this file:
- A cursor holds references to stored [dict, raw] pairs or to result dicts,
  never encoded copies of the whole result: batches are encoded (or their
  cached bytes fetched) only when they are sent.
- A batch is at most `batchSize` documents and at most 16 MiB; the first
  batch defaults to 101 documents, later ones to 16 MiB.  A single document
  is always sent even if it alone is large.
- Replies are built by concatenating encoded documents (raw BSON); see
  raw_cursor_reply().
- Every function here runs with the server's one lock held.
"""

import random
import struct
import time

from bson.int64 import Int64

from . import wire
from .errors import CommandError, CURSOR_NOT_FOUND, BAD_VALUE

DEFAULT_FIRST_BATCH = 101
MAX_BATCH_BYTES = 16 * 1024 * 1024

_INT32 = struct.Struct("<i")


def _element(type_byte, name, payload):
    return type_byte + name.encode() + b"\x00" + payload


def raw_document(elements):
    size = 4 + sum(len(e) for e in elements) + 1
    return [_INT32.pack(size)] + elements + [b"\x00"]


_HEADS = []


def _heads(n):
    """Element headers b"\\x03<i>\\x00" of array indexes 0..n-1 (cached)."""
    if len(_HEADS) < n:
        _HEADS.extend(b"\x03%d\x00" % i for i in range(len(_HEADS), max(n, 1024)))
    return _HEADS[:n]


def _raw_array_parts(raws):
    n = len(raws)
    heads = _heads(n)
    parts = [None] * (2 * n)
    parts[0::2] = heads
    parts[1::2] = raws
    total = 5 + sum(map(len, heads)) + sum(map(len, raws))
    return [_INT32.pack(total)] + parts + [b"\x00"]


def encoded_elements(d):
    """The elements of a dict, encoded, without the document framing."""
    raw = wire.encode(d)
    return raw[4:-1]


def raw_cursor_reply(cursor_id, ns, batch_raws, first, extra_cursor=None,
                     extra_top=None):
    """A {cursor: {firstBatch|nextBatch, id, ns, ...}, ok: 1} reply as a list of
    byte strings (the dispatcher appends the envelope before the final NUL)."""
    arr = _raw_array_parts(batch_raws)
    arr_len = sum(len(p) for p in arr)
    name = b"firstBatch" if first else b"nextBatch"
    cur_tail = {"id": Int64(cursor_id), "ns": ns}
    if extra_cursor:
        cur_tail.update(extra_cursor)
    tail = encoded_elements(cur_tail)
    cur_size = 4 + 1 + len(name) + 1 + arr_len + len(tail) + 1
    parts = [b"\x03cursor\x00", _INT32.pack(cur_size), b"\x04", name, b"\x00"]
    parts.extend(arr)
    parts.append(tail)
    parts.append(b"\x00")
    top = {"ok": 1.0}
    if extra_top:
        top.update(extra_top)
    parts.append(encoded_elements(top))
    return RawReply(parts)


class RawReply:
    """A reply whose elements are already encoded (no framing yet)."""

    __slots__ = ("parts",)

    def __init__(self, parts):
        self.parts = parts


def _raw_of_pair(item):
    raw = item[1]
    if raw is None:
        raw = item[1] = wire.encode(item[0])
    return raw


class Cursor:
    """A cursor over a result list.  `items` are (dict, raw) pairs when
    `to_raw` is None, else anything `to_raw` encodes."""

    kind = "docs"

    def __init__(self, ns, items, to_raw=None, limit=0, lsid=None):
        self.id = 0
        self.ns = ns
        self.items = items
        self.pos = 0
        self.to_raw = to_raw or _raw_of_pair
        self.end = len(items) if not limit else min(limit, len(items))
        self.lsid = lsid

    def exhausted(self):
        return self.pos >= self.end

    def next_batch(self, batch_size, first):
        if first and batch_size == 0:
            return []
        if batch_size is None:
            batch_size = DEFAULT_FIRST_BATCH if first else 0
        out = []
        size = 0
        to_raw = self.to_raw
        items = self.items
        pos = self.pos
        end = self.end
        if batch_size:
            stop = min(end, pos + batch_size)
        else:
            stop = end
        if to_raw is _raw_of_pair:
            # cached bytes: take them a chunk at a time
            while pos < stop:
                chunk_end = min(stop, pos + 4096)
                chunk = [p[1] or _raw_of_pair(p) for p in items[pos:chunk_end]]
                csize = sum(map(len, chunk))
                if size + csize <= MAX_BATCH_BYTES:
                    out.extend(chunk)
                    size += csize
                    pos = chunk_end
                    continue
                for raw in chunk:
                    if out and size + len(raw) > MAX_BATCH_BYTES:
                        break
                    out.append(raw)
                    size += len(raw)
                    pos += 1
                break
            self.pos = pos
            return out
        while pos < stop:
            raw = to_raw(items[pos])
            if out and size + len(raw) > MAX_BATCH_BYTES:
                break
            out.append(raw)
            size += len(raw)
            pos += 1
        self.pos = pos
        return out


# mongod's cursorTimeoutMillis default: an idle cursor is closed after 10 min.
CURSOR_TIMEOUT = 600.0


class Registry:
    def __init__(self, router=False):
        self.router = router      # a mongos' cursors: its own CursorNotFound text
        self.cursors = {}
        self.last_sweep = time.monotonic()
        # (db, user) of the command running now (set by the dispatcher under
        # the lock): the owner of the cursors it registers
        self.owner = None

    def sweep(self):
        """Close cursors idle for longer than CURSOR_TIMEOUT."""
        now = time.monotonic()
        self.last_sweep = now
        for cid in [cid for cid, c in self.cursors.items()
                    if now - getattr(c, "last_use", now) > CURSOR_TIMEOUT]:
            self.close(cid)

    def register(self, cursor):
        if time.monotonic() - self.last_sweep > 60:
            self.sweep()
        cursor.last_use = time.monotonic()
        while True:
            cid = random.getrandbits(62) + 1
            if cid not in self.cursors:
                break
        cursor.id = cid
        cursor.owner = self.owner
        self.cursors[cid] = cursor
        return cid

    def get(self, cid, ns=None):
        c = self.cursors.get(cid)
        if c is None:
            if self.router and ns is not None:
                # mongos' cluster cursor manager words it so
                raise CommandError(*CURSOR_NOT_FOUND, "Cursor not found (namespace: "
                                   "'%s', id: %d)." % (ns, cid))
            raise CommandError(*CURSOR_NOT_FOUND, "cursor id %d not found" % cid)
        if ns is not None and c.ns != ns:
            raise CommandError(13, "Unauthorized",
                               "Requested getMore on namespace '%s', but cursor "
                               "belongs to a different namespace %s" % (ns, c.ns))
        c.last_use = time.monotonic()
        return c

    def close(self, cid):
        c = self.cursors.pop(cid, None)
        if c is not None and hasattr(c, "close"):
            try:
                c.close()
            except Exception:
                pass
        return c

    def kill(self, ids, check=None):
        """check(cursor) may raise (another user's cursor) before any is
        killed."""
        for cid in ids:
            if not isinstance(cid, int):
                raise CommandError(*BAD_VALUE, "killCursors ids must be longs")
            if check is not None and int(cid) in self.cursors:
                check(self.cursors[int(cid)])
        killed, not_found = [], []
        for cid in ids:
            if self.close(int(cid)) is not None:
                killed.append(Int64(cid))
            else:
                not_found.append(Int64(cid))
        return killed, not_found

    def kill_session(self, lsid_key):
        for cid in [cid for cid, c in self.cursors.items()
                    if getattr(c, "lsid", None) == lsid_key]:
            self.close(cid)
