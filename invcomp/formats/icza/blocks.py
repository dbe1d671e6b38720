"""The .icza framing: blocks (magic, length, payload, crc32), the archive header, commit slots,
and the rules for image names."""
from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field

from invcomp.errors import InvcompError
from invcomp.formats import varint
from invcomp.formats.icz import MAX_BITS, MIN_BITS

VERSION = 2  # what writers write; version 1 archives are read, and `add` appends to them in version 1
VERSIONS = (1, 2)  # version 2: chunk indexes carry record flags (bit 0: the image's original size follows)
MAGIC_HEADER, MAGIC_SLOT, MAGIC_SEGMENT, MAGIC_CHUNK = b"ICZA", b"ICZM", b"ICZS", b"ICZC"
CHUNK_RECORDS = 128  # records per chunk: a damaged chunk index costs at most this many images
MAX_CHUNK_RECORDS = 4096  # format limit, so that a chunk index never needs more than ~4 MB
MAX_NAME_BYTES = 1024
MAX_LATENT = 1024  # NetConfig's limit: a hostile header cannot make every record decode 65535 codes (~1 s each)
TABLE_GAUSS, TABLE_HISTOGRAM = 0, 1
TABLE_NAMES = {TABLE_GAUSS: "gauss", TABLE_HISTOGRAM: "histogram"}
_BLOCK_OVERHEAD = 12  # magic, length, crc
_SLOT = struct.Struct("<IQIQ")  # seq, committed end, segments, records
_SEG = struct.Struct("<IIQB")  # records, chunks, body bytes, table kind
_CHUNK = struct.Struct("<III")  # records, index bytes, index crc32
_ZSTD_LEVEL = 19
_MAX_STEP_DIGITS = 12  # names ending in up to this many digits may be coded as a number step

def read_varint(data: bytes, pos: int, limit: int = 1 << 40) -> tuple[int, int]:
    value, pos = varint.decode(data, pos, 7, "archive")
    if value > limit:
        raise InvcompError("corrupt archive (number out of range)")
    return value, pos


def block(magic: bytes, payload: bytes) -> bytes:
    head = magic + struct.pack("<I", len(payload))
    return head + payload + struct.pack("<I", zlib.crc32(head + payload))


def block_at(data: bytes, pos: int, magic: bytes) -> tuple[bytes, int] | None:
    """(payload, end) of a well-formed block with a matching checksum at pos, else None."""
    if data[pos : pos + 4] != magic or pos + 8 > len(data):
        return None
    (length,) = struct.unpack_from("<I", data, pos + 4)
    end = pos + 8 + length + 4
    if end > len(data):
        return None
    if zlib.crc32(data[pos : end - 4]) != struct.unpack_from("<I", data, end - 4)[0]:
        return None
    return data[pos + 8 : end - 4], end


def find_block(data: bytes, start: int, stop: int, magic: bytes) -> tuple[int, bytes, int] | None:
    """The first valid block with this magic at or after start (before stop): (offset, payload, end)."""
    pos = data.find(magic, start, stop)
    while pos >= 0:
        found = block_at(data, pos, magic)
        if found:
            return pos, found[0], found[1]
        pos = data.find(magic, pos + 1, stop)
    return None


def check_name(name: str) -> str:
    """A record name: a relative '/'-separated path without '.', '..' or empty parts."""
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvcompError(f"image name is not valid UTF-8: {name!r}") from None
    if not 1 <= len(raw) <= MAX_NAME_BYTES:
        raise InvcompError(f"image name must be 1..{MAX_NAME_BYTES} bytes: {name!r}")
    if any(ord(ch) < 32 or ch in "\\\x7f" for ch in name) or name.startswith("/"):
        raise InvcompError(f"image name has a control character, backslash or leading '/': {name!r}")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InvcompError(f"image name has an empty, '.' or '..' part: {name!r}")
    return name


def name_key(name: str) -> bytes:
    """The canonical record order: names by their UTF-8 bytes."""
    return name.encode("utf-8")


@dataclass(frozen=True)
class ArchiveHeader:
    """What every record shares: the generator (full sha256), its geometry and the settings."""

    model_sha256: str  # 64 hex digits
    model_name: str
    resolution: int
    latent_dim: int
    latent_range: float
    bits: int
    config: str  # the inversion settings as canonical JSON (sorted keys)
    version: int = field(default=VERSION, compare=False)  # the layout, not the settings: archives of both join

    def __post_init__(self) -> None:
        if len(self.model_sha256) != 64 or any(c not in "0123456789abcdef" for c in self.model_sha256):
            raise InvcompError("corrupt archive header (model sha256)")
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise InvcompError(f"corrupt archive header (bits {self.bits})")
        if not 1 <= self.latent_dim <= MAX_LATENT or not 1 <= self.resolution <= 65535:
            raise InvcompError("corrupt archive header (latent size or resolution)")
        if not (math.isfinite(self.latent_range) and self.latent_range > 0):
            raise InvcompError("corrupt archive header (latent range)")
        if self.version not in VERSIONS:
            raise InvcompError(f"unsupported .icza version {self.version}")

    @property
    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.model_sha256)[:3]

    def settings(self) -> dict:
        return json.loads(self.config)


def canonical_config(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def encode_header(h: ArchiveHeader) -> bytes:
    name, cfg = h.model_name.encode("utf-8"), h.config.encode("utf-8")
    payload = (bytes([h.version]) + bytes.fromhex(h.model_sha256)
               + struct.pack("<HHdB", h.resolution, h.latent_dim, h.latent_range, h.bits)
               + varint.encode(len(name)) + name + varint.encode(len(cfg)) + cfg)
    return block(MAGIC_HEADER, payload)


def decode_header(payload: bytes) -> ArchiveHeader:
    if not payload or payload[0] not in VERSIONS:
        raise InvcompError(f"unsupported .icza version {payload[0] if payload else '?'} (this invcomp reads versions "
                           f"{', '.join(map(str, VERSIONS))}; a later release may read it)")
    if len(payload) < 1 + 32 + 13:
        raise InvcompError("corrupt archive header (too short)")
    sha = payload[1:33].hex()
    res, dim, rng, bits = struct.unpack_from("<HHdB", payload, 33)
    pos = 33 + 13
    n, pos = read_varint(payload, pos, 4096)
    name = payload[pos : pos + n]
    n, pos = read_varint(payload, pos + n, 1 << 20)
    cfg = payload[pos : pos + n]
    if pos + n != len(payload):
        raise InvcompError("corrupt archive header (length mismatch)")
    try:
        header = ArchiveHeader(sha, name.decode("utf-8"), res, dim, rng, bits, cfg.decode("utf-8"), payload[0])
        json.loads(header.config)
    except (UnicodeDecodeError, ValueError):
        raise InvcompError("corrupt archive header (text fields)") from None
    return header


@dataclass(frozen=True)
class Slot:
    seq: int
    end: int  # the committed end of the archive (bytes)
    segments: int
    records: int


def encode_slot(s: Slot) -> bytes:
    return block(MAGIC_SLOT, _SLOT.pack(s.seq, s.end, s.segments, s.records))


SLOT_BYTES = _BLOCK_OVERHEAD + _SLOT.size
