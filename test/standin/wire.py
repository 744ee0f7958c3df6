"""MongoDB wire protocol framing: OP_MSG, and OP_QUERY / OP_REPLY for the
legacy handshake.

Rules of this file:
- Nothing here trusts the peer: every length is checked against the bytes
  actually present and against MAX_MESSAGE_BYTES before anything is read.
  A frame that cannot be parsed raises ProtocolError; the server answers it
  when it can and otherwise closes the connection.
- Documents of kind-1 sections (document sequences) are kept as the raw
  bytes the client sent, next to their decoded form, so an insert can store
  them without encoding them again.
"""

import struct

import bson
from bson.codec_options import CodecOptions

from . import legacy

try:
    from bson.binary import UuidRepresentation
    _UUID = UuidRepresentation.UNSPECIFIED
except ImportError:  # pragma: no cover - older pymongo
    _UUID = 3

# Binary subtypes 3 and 4 stay bson.Binary, so a document decoded and
# encoded again keeps its exact bytes.
CODEC = CodecOptions(document_class=dict, tz_aware=False,
                     uuid_representation=_UUID)

OP_REPLY = 1
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

MAX_MESSAGE_BYTES = 48000000
MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024

HEADER = struct.Struct("<iiii")
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")

MSG_CHECKSUM_PRESENT = 1 << 0
MSG_MORE_TO_COME = 1 << 1
MSG_EXHAUST_ALLOWED = 1 << 16
# Bits 0-15 are "required": a receiver must reject a message with an
# unknown one set.
_MSG_KNOWN_REQUIRED = MSG_CHECKSUM_PRESENT | MSG_MORE_TO_COME


class ProtocolError(Exception):
    """A frame that breaks the wire protocol.  `fatal` means the stream can
    no longer be trusted and the connection must be closed."""

    def __init__(self, msg, fatal=False):
        super().__init__(msg)
        self.fatal = fatal


def decode(data):
    return legacy.decode(data, CODEC)


def encode(doc):
    """The C encoder (no wrapper checks), with undefined and symbol kept."""
    return legacy.encode(doc, False, CODEC)


def read_exact(sock, n):
    """Read exactly n bytes, or return None on a clean end of stream."""
    chunks = []
    left = n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            if left == n:
                return None
            raise ProtocolError("connection closed in the middle of a message",
                                fatal=True)
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_message(sock):
    """Return (request_id, op_code, body bytes, header bytes), or None at end
    of stream."""
    header = read_exact(sock, 16)
    if header is None:
        return None
    length, request_id, _response_to, op_code = HEADER.unpack(header)
    if length < 16 or length > MAX_MESSAGE_BYTES:
        raise ProtocolError("message length %d is outside 16..%d"
                            % (length, MAX_MESSAGE_BYTES), fatal=True)
    body = read_exact(sock, length - 16) if length > 16 else b""
    if body is None:
        raise ProtocolError("connection closed in the middle of a message",
                            fatal=True)
    return request_id, op_code, body, header


def _doc_at(data, pos, end):
    """Return (raw bytes, next position) of the BSON document at pos."""
    if pos + 5 > end:
        raise ProtocolError("truncated BSON document")
    (size,) = _INT32.unpack_from(data, pos)
    if size < 5 or pos + size > end:
        raise ProtocolError("BSON document length %d does not fit the message"
                            % size)
    if data[pos + size - 1] != 0:
        raise ProtocolError("BSON document is not terminated")
    return data[pos:pos + size], pos + size


def _cstring_at(data, pos, end):
    nul = data.find(b"\x00", pos, end)
    if nul < 0:
        raise ProtocolError("unterminated string")
    try:
        return data[pos:nul].decode("utf-8"), nul + 1
    except UnicodeDecodeError:
        raise ProtocolError("string is not valid UTF-8")


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), as OP_MSG checksums use."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


class Message:
    """A parsed OP_MSG: the command body and the document sequences."""

    __slots__ = ("flags", "body", "sequences")

    def __init__(self, flags, body, sequences):
        self.flags = flags
        self.body = body              # dict
        self.sequences = sequences    # {identifier: [(raw, dict), ...]}


def parse_op_msg(data, header_bytes=b""):
    """Parse an OP_MSG body; header_bytes (the 16-byte header) is needed only
    to verify a checksum."""
    end = len(data)
    if end < 5:
        raise ProtocolError("OP_MSG too short")
    (flags,) = _UINT32.unpack_from(data, 0)
    if flags & 0xFFFF & ~_MSG_KNOWN_REQUIRED:
        raise ProtocolError("OP_MSG has unknown required flag bits 0x%x"
                            % (flags & 0xFFFF & ~_MSG_KNOWN_REQUIRED))
    if flags & MSG_CHECKSUM_PRESENT:
        end -= 4
        if end < 5:
            raise ProtocolError("OP_MSG too short for its checksum")
        (want,) = _UINT32.unpack_from(data, end)
        if crc32c(header_bytes + data[:end]) != want:
            raise ProtocolError("OP_MSG checksum mismatch")
    pos = 4
    body = None
    sequences = {}
    while pos < end:
        kind = data[pos]
        pos += 1
        if kind == 0:
            if body is not None:
                raise ProtocolError("OP_MSG has more than one body section")
            raw, pos = _doc_at(data, pos, end)
            body = _decode_checked(raw)
        elif kind == 1:
            if pos + 4 > end:
                raise ProtocolError("truncated document sequence")
            (size,) = _INT32.unpack_from(data, pos)
            seq_end = pos + size
            if size < 5 or seq_end > end:
                raise ProtocolError("document sequence length %d does not fit"
                                    % size)
            ident, p = _cstring_at(data, pos + 4, seq_end)
            docs = []
            while p < seq_end:
                raw, p = _doc_at(data, p, seq_end)
                docs.append((raw, _decode_checked(raw)))
            sequences.setdefault(ident, []).extend(docs)
            pos = seq_end
        else:
            raise ProtocolError("unknown OP_MSG section kind %d" % kind)
    if body is None:
        raise ProtocolError("OP_MSG has no body section")
    return Message(flags, body, sequences)


def _decode_checked(raw):
    try:
        return decode(raw)
    except Exception as e:  # bson.errors.InvalidBSON and friends
        raise ProtocolError("invalid BSON: %s" % e)


class Query:
    __slots__ = ("flags", "collection", "skip", "n_return", "query", "fields")

    def __init__(self, flags, collection, skip, n_return, query, fields):
        self.flags = flags
        self.collection = collection
        self.skip = skip
        self.n_return = n_return
        self.query = query
        self.fields = fields


def parse_op_query(data):
    end = len(data)
    if end < 4:
        raise ProtocolError("OP_QUERY too short")
    (flags,) = _INT32.unpack_from(data, 0)
    coll, pos = _cstring_at(data, 4, end)
    if pos + 8 > end:
        raise ProtocolError("OP_QUERY too short")
    skip, n_return = struct.unpack_from("<ii", data, pos)
    pos += 8
    raw, pos = _doc_at(data, pos, end)
    query = _decode_checked(raw)
    fields = None
    if pos < end:
        raw, pos = _doc_at(data, pos, end)
        fields = _decode_checked(raw)
    return Query(flags, coll, skip, n_return, query, fields)


_next_id = [0]


def _request_id():
    _next_id[0] = (_next_id[0] + 1) & 0x7FFFFFFF
    return _next_id[0]


def frame_op_msg(response_to, body_bytes, flags=0):
    """An OP_MSG with one body section; body_bytes is encoded BSON (bytes or
    a list of byte strings that concatenate to it)."""
    if isinstance(body_bytes, (bytes, bytearray)):
        parts = [body_bytes]
        size = len(body_bytes)
    else:
        parts = body_bytes
        size = sum(len(p) for p in parts)
    length = 16 + 4 + 1 + size
    head = HEADER.pack(length, _request_id(), response_to, OP_MSG) + \
        _UINT32.pack(flags) + b"\x00"
    return [head] + parts


def frame_op_reply(response_to, docs_bytes, cursor_id=0, flags=0):
    size = sum(len(d) for d in docs_bytes)
    length = 16 + 20 + size
    head = HEADER.pack(length, _request_id(), response_to, OP_REPLY) + \
        struct.pack("<iqii", flags, cursor_id, 0, len(docs_bytes))
    return [head] + list(docs_bytes)
