"""The durable journal of the oplog, one append-only file in --dbpath.

Every acknowledged write reaches the journal before its reply is sent, so a
server killed with SIGKILL restarts with every write it acknowledged.  The
file is the oplog itself: replaying it rebuilds the store (entries carry
after-images) and the in-memory oplog, so resume tokens taken before a
restart still resume after it.

File layout (all integers little-endian):

    magic   8 bytes  b"QLFJRNL1"
    frame*  u32 payload length, u32 CRC-32 of the payload, payload

A payload is the BSON documents of one `Oplog.append` call, concatenated,
and it is written with one os.write: an append is durable entirely or not
at all.  The first frame of a new file holds one meta document,
{"$meta": {"origin": Timestamp}}, the time the oplog began.

On open the frames are checked; a torn or corrupt tail (a crash in the middle
of a write, zeros after a power loss) is cut off so that new frames follow
the last good one.  Writes are not fsync'd: the page cache survives the death
of the process, which is what the tests exercise; a power loss may lose the
newest frames but never leaves a frame half-read.

There is no compaction: the file grows with every write and a restart
replays all of it.
"""

import os
import struct
import zlib

import bson
from bson.codec_options import CodecOptions

from . import legacy

try:
    from bson.binary import UuidRepresentation
    _UUID = UuidRepresentation.UNSPECIFIED
except ImportError:  # pragma: no cover - older pymongo
    _UUID = 3

MAGIC = b"QLFJRNL1"
FILE_NAME = "oplog.journal"
_HEADER = struct.Struct("<II")
_CHUNK = 16 * 1024 * 1024
_encode = legacy.encode  # the C encoder, undefined and symbol kept

# As the wire codec: Binary subtypes 3 and 4 stay bson.Binary, naive UTC
# datetimes, so a replayed document has exactly the bytes it was written with.
CODEC = CodecOptions(document_class=dict, tz_aware=False, uuid_representation=_UUID)


class JournalError(Exception):
    """The journal file cannot be used (wrong magic, unreadable)."""


class Journal:
    """Append-only, checksummed frames of BSON oplog entries."""

    def __init__(self, dbpath):
        os.makedirs(dbpath, exist_ok=True)
        self.path = os.path.join(dbpath, FILE_NAME)
        self.meta = None          # the meta document of the first frame
        self.last_entry = None    # the newest durable entry, decoded
        self.frames = 0
        self.torn_bytes = 0       # bytes cut off a torn tail when opened
        created = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        if not created and os.path.getsize(self.path) < len(MAGIC):
            with open(self.path, "rb") as f:
                head = f.read()
            created = MAGIC.startswith(head)    # the creation itself was cut short
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        if created:
            os.ftruncate(self._fd, 0)
            self._write(MAGIC)
            self._end = len(MAGIC)
        else:
            self._end = self._scan()
        self._loaded_end = self._end       # load() reads up to here

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- writing -----------------------------------------------------------

    def write_meta(self, meta):
        """Write the meta frame; only on a new, empty journal."""
        self.meta = dict(meta)
        self.append([{"$meta": self.meta}])

    def append(self, entries):
        """Make entries durable: one frame, one os.write, before returning."""
        self.append_encoded([_encode(e, False, CODEC) for e in entries])

    def append_encoded(self, docs):
        """Like append, for entries already encoded as BSON.

        If the write fails (a full disk), the part written is cut off again
        so that later frames do not follow a broken one, and the error is
        raised: the write was not made durable.
        """
        payload = b"".join(docs)
        frame = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            self._write(frame)
        except OSError:
            os.ftruncate(self._fd, self._end)
            raise
        self._end += len(frame)
        self.frames += 1

    def _write(self, data):
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    # -- reading -----------------------------------------------------------

    def _frames(self, stop=None):
        """Yield (offset, payload) of each frame whose checksum is right.

        Stops at the first frame that is cut short or fails its checksum,
        or at `stop` (an offset already known to be good; then checksums are
        not computed again).
        """
        hs = _HEADER.size
        with open(self.path, "rb") as f:
            head = f.read(len(MAGIC))
            if head != MAGIC:
                raise JournalError("%s is not a qleaf stand-in journal (bad magic %r)"
                                   % (self.path, head))
            offset = len(MAGIC)
            buf = b""
            pos = 0
            while stop is None or offset < stop:
                avail = len(buf) - pos
                if avail < hs:
                    buf = buf[pos:] + f.read(_CHUNK)
                    pos = 0
                    avail = len(buf)
                    if avail < hs:
                        return
                length, crc = _HEADER.unpack_from(buf, pos)
                need = hs + length
                if avail < need:
                    buf = buf[pos:] + f.read(max(_CHUNK, need - avail))
                    pos = 0
                    avail = len(buf)
                    if avail < need:
                        return
                payload = buf[pos + hs:pos + need]
                if stop is None and (length < 5 or zlib.crc32(payload) != crc):
                    return
                yield offset, payload
                offset += need
                pos += need

    def _scan(self):
        """Check every frame, cut a torn tail, find the meta and last entry."""
        end = len(MAGIC)
        last_payload = None
        for offset, payload in self._frames():
            if self.frames == 0:
                first = bson.decode_all(payload, CODEC)
                if len(first) == 1 and "$meta" in first[0]:
                    self.meta = first[0]["$meta"]
            last_payload = payload
            self.frames += 1
            end = offset + _HEADER.size + len(payload)
        size = os.fstat(self._fd).st_size
        if size > end:
            self.torn_bytes = size - end
            os.ftruncate(self._fd, end)
        if last_payload is not None:
            docs = bson.decode_all(last_payload)
            if docs and "$meta" not in docs[-1]:
                self.last_entry = docs[-1]
        return end

    def batches(self):
        """Yield the entries of each durable append, in order, as lists."""
        for _offset, payload in self._frames(stop=self._loaded_end):
            docs = legacy.decode_all(payload, CODEC)
            if docs and "$meta" in docs[0]:
                docs = [d for d in docs if "$meta" not in d]
            if docs:
                yield docs

    def entries(self):
        """Yield every durable entry in order (meta documents left out)."""
        for batch in self.batches():
            yield from batch
