"""The logical clock, the bounded oplog and its journal.

Every write the stand-in acknowledges goes through `Oplog.append` while the
caller holds `Oplog.lock`: the entries get their cluster times, reach the
journal (with --dbpath) and the in-memory oplog, and waiting change streams
are woken.  Change streams read the in-memory oplog by sequence number.

Rules of this file:
- Cluster times never go backwards, not even across restarts: the clock
  starts at max(now, newest journalled time).
- A non-transactional entry gets its own Timestamp(secs, inc); the entries
  of one transaction share one and are told apart by txnOpIndex.  Keys
  (secs, inc, txnOpIndex) are therefore unique and increasing.
- Only the newest `max_events` entries stay in memory.  Once entries have
  left, a start point older than the oldest kept one is lost history
  (ChangeStreamHistoryLost).  The entries of one transaction stay or leave
  together.
- Entries are stored as given (no copies): writers must not mutate an entry
  or the documents in it after `append`.
"""

import bisect
import datetime
import gc
import struct
import threading
import time

import bson
from bson import Int64, Timestamp
from bson.raw_bson import RawBSONDocument

from . import legacy
from .journal import CODEC, Journal

DEFAULT_MAX_EVENTS = 100000
_encode = legacy.encode


def _next_ts(last):
    now = int(time.time())
    if now > last.time:
        return Timestamp(now, 1)
    return Timestamp(last.time, last.inc + 1)


class Oplog:
    """Cluster-time clock, bounded in-memory oplog, durable journal."""

    def __init__(self, max_events=DEFAULT_MAX_EVENTS, dbpath=None):
        if max_events is None:
            max_events = DEFAULT_MAX_EVENTS
        if int(max_events) < 1:
            raise ValueError("--oplog-size must be at least 1 event, not %r" % (max_events,))
        self.lock = threading.Condition()
        self.max_events = int(max_events)
        # Retained entries; _entries[i] has sequence number _base + i.  Entries
        # below _first are logically gone and only wait to be cut in bulk.
        self._entries = []
        self._keys = []       # (secs, inc, txnOpIndex) of each entry
        self._cache = []      # per entry: None or a dict of its encoded documents
        #                       ("doc", "pre", "key"), wall time and events
        self._base = 0
        self._first = 0
        self._trimmed = False
        self._trim_slack = max(64, self.max_events // 16)
        self._loaded = False
        now = Timestamp(int(time.time()), 0)
        self.journal = None
        if dbpath:
            self.journal = Journal(dbpath)
            if self.journal.meta is None:
                self.journal.write_meta({"origin": now, "format": 1})
            origin = self.journal.meta.get("origin", now)
            last = self.journal.last_entry["ts"] if self.journal.last_entry else origin
            self._origin = origin
            self._last = max(now, last)
        else:
            self._origin = now
            self._last = now

    # -- the clock -----------------------------------------------------------

    def cluster_time(self):
        """The newest cluster time assigned (operationTime, $clusterTime)."""
        return self._last

    def origin(self):
        """The time this oplog began (kept in the journal across restarts)."""
        return self._origin

    # -- writing -------------------------------------------------------------

    def append(self, entries, lsid=None, txn_number=None):
        """Time-stamp, journal and publish entries; return the last time.

        Called with the lock held, after the writes are applied and before
        the reply is sent.  With lsid and txn_number the entries are one
        committed transaction (one clusterTime, txnOpIndex 0..n-1); pass them
        only for transactions, not for retryable writes.
        """
        if not entries:
            return self._last
        wall = None
        keys = []
        if lsid is not None and txn_number is not None:
            ts = _next_ts(self._last)
            txn = Int64(txn_number)
            for i, e in enumerate(entries):
                e["ts"] = ts
                e["txnOpIndex"] = i
                e["lsid"] = lsid
                e["txnNumber"] = txn
                if e.get("wall") is None:
                    if wall is None:
                        wall = _wall_now()
                    e["wall"] = wall
                keys.append((ts.time, ts.inc, i))
            self._last = ts
        else:
            last = self._last
            for e in entries:
                last = _next_ts(last)
                e["ts"] = last
                if e.get("wall") is None:
                    if wall is None:
                        wall = _wall_now()
                    e["wall"] = wall
                keys.append((last.time, last.inc, 0))
            self._last = last
        caches = None
        if self.journal is not None:
            caches = []
            records = []
            for e in entries:
                cache, record = _encode_entry(e)
                caches.append(cache)
                records.append(record)
            self.journal.append_encoded(records)
        self._publish(entries, keys, caches)
        self.lock.notify_all()
        return self._last

    def _publish(self, entries, keys, caches=None):
        self._entries.extend(entries)
        self._keys.extend(keys)
        self._cache.extend(caches or [None] * len(entries))
        end = self._base + len(self._entries)
        if end - self._first > self.max_events:
            lo = self._first - self._base
            i = end - self.max_events - self._base
            # A transaction stays or leaves whole: keep all of a split one.
            keys = self._keys
            while i > lo and keys[i][:2] == keys[i - 1][:2]:
                i -= 1
            if i > lo:
                self._first = self._base + i
                self._trimmed = True
            dead = self._first - self._base
            if dead > self._trim_slack:
                del self._entries[:dead]
                del self._keys[:dead]
                del self._cache[:dead]
                self._base = self._first

    # -- startup -------------------------------------------------------------

    def load(self):
        """Yield every durable entry in order and rebuild the in-memory oplog.

        Without a dbpath there is nothing to load.  The clock already starts
        after the newest journalled time (see __init__).  The cyclic garbage
        collector is off while the caller replays (it would rescan the
        growing heap over and over: 3x the time for a million entries), and
        what the replay built is then frozen out of its later scans
        (gc.freeze); the replayed documents hold no reference cycles.
        """
        if self.journal is None or self._loaded:
            return
        self._loaded = True
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            for batch in self.journal.batches():
                self._publish(batch, [(e["ts"].time, e["ts"].inc, e.get("txnOpIndex", 0))
                                      for e in batch])
                yield from batch
        finally:
            gc.freeze()
            if was_enabled:
                gc.enable()

    def close(self):
        if self.journal is not None:
            self.journal.close()

    # -- reading (change streams; lock held) ---------------------------------

    @property
    def first_seq(self):
        """Sequence number of the oldest entry still in memory."""
        return self._first

    @property
    def end_seq(self):
        """Sequence number the next appended entry will get."""
        return self._base + len(self._entries)

    def oldest_time(self):
        """The time of the oldest entry in memory, or the origin if none."""
        if self._first < self.end_seq:
            k = self._keys[self._first - self._base]
            return Timestamp(k[0], k[1])
        return self._origin

    def history_lost(self, ts):
        """Whether events from ts on may be gone (ChangeStreamHistoryLost).

        As mongod's oplog scan: only once entries have left the oplog, and
        then for points before the oldest kept entry.  An oplog that never
        lost anything still starts with its "initiating set" entry, and any
        earlier start point is accepted.
        """
        return self._trimmed and ts < self.oldest_time()

    def seq_at_or_after(self, key):
        """First sequence number whose (secs, inc, txnOpIndex) is >= key."""
        lo = self._first - self._base
        return self._base + bisect.bisect_left(self._keys, key, lo)

    def at(self, seq):
        """(entry, key, cache dict or None) of sequence number seq."""
        i = seq - self._base
        return self._entries[i], self._keys[i], self._cache[i]

    def set_cache(self, seq, cache):
        i = seq - self._base
        if i >= 0:
            self._cache[i] = cache

    def key_at(self, seq):
        return self._keys[seq - self._base]

    def __len__(self):
        return self.end_seq - self._first


# -- encoding entries ---------------------------------------------------------
# An entry is encoded by concatenating its elements: the documents in it are
# encoded once and the bytes kept (in the entry's cache) for the change
# events that show them; the documentKey is cut out of the document's bytes.
# The result is byte for byte what bson would make of the entry.

_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_TS = struct.Struct("<II")
_EPOCH = datetime.datetime(1970, 1, 1)
# fixed value sizes of BSON types, after the element name
_FIXED = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8,
          0x13: 16, 0x7F: 0, 0xFF: 0}
_NAMES = {}


def _name(field):
    b = _NAMES.get(field)
    if b is None:
        b = _NAMES[field] = field.encode("utf-8") + b"\x00"
    return b


def millis(dt):
    """Milliseconds since the epoch of a datetime (naive means UTC)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    d = dt - _EPOCH
    return (d.days * 86400 + d.seconds) * 1000 + d.microseconds // 1000


def _id_key(raw):
    """{_id: ...} encoded, cut out of a document whose first field is _id."""
    if raw[5:9] != b"_id\x00":
        return None
    t = raw[4]
    size = _FIXED.get(t)
    if size is None:
        if t == 0x02 or t == 0x0D or t == 0x0E:
            size = 4 + _I32.unpack_from(raw, 9)[0]
        elif t == 0x03 or t == 0x04:
            size = _I32.unpack_from(raw, 9)[0]
        elif t == 0x05:
            size = 5 + _I32.unpack_from(raw, 9)[0]
        else:
            return None
    element = raw[4:9 + size]
    return _I32.pack(len(element) + 5) + element + b"\x00"


def _element(field, value):
    """One encoded element of an entry field."""
    t = type(value)
    if t is str:
        data = value.encode("utf-8")
        return b"\x02" + _name(field) + _I32.pack(len(data) + 1) + data + b"\x00"
    if t is bool:
        return b"\x08" + _name(field) + (b"\x01" if value else b"\x00")
    if t is Timestamp:
        return b"\x11" + _name(field) + _TS.pack(value.inc, value.time)
    if t is datetime.datetime:
        return b"\x09" + _name(field) + _I64.pack(millis(value))
    if value is None:
        return b"\x0a" + _name(field)
    if t is RawBSONDocument:
        return b"\x03" + _name(field) + value.raw
    return _encode({field: value}, False, CODEC)[4:-1]


def _doc_bytes(value):
    if isinstance(value, RawBSONDocument):
        return value.raw
    return _encode(value, False, CODEC)


def _encode_entry(entry):
    """(cache, BSON record) of an entry; cache holds the encoded "doc",
    "pre" and "key" and the wall time in milliseconds."""
    cache = {}
    doc = entry.get("doc")
    if doc is not None:
        cache["doc"] = _doc_bytes(doc)
    pre = entry.get("pre")
    if pre is not None:
        cache["pre"] = _doc_bytes(pre)
    parts = []
    for field, value in entry.items():
        if field == "doc" or field == "pre":
            if value is not None:
                parts.append(b"\x03" + _name(field) + cache[field])
                continue
        elif field == "key" and type(value) is dict and len(value) == 1 and "_id" in value:
            src = doc if doc is not None else pre
            raw = None
            if src is not None and value["_id"] is src.get("_id"):
                raw = _id_key(cache["doc" if doc is not None else "pre"])
            if raw is None:
                raw = _encode(value, False, CODEC)
            cache["key"] = raw
            parts.append(b"\x03key\x00" + raw)
            continue
        elif field == "wall" and type(value) is datetime.datetime:
            ms = cache["wall"] = millis(value)
            parts.append(b"\x09wall\x00" + _I64.pack(ms))
            continue
        parts.append(_element(field, value))
    body = b"".join(parts)
    return cache, _I32.pack(len(body) + 5) + body + b"\x00"


def _wall_now():
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
