"""The .icza archive: many pictures' latent codes against one generator (docs/FORMAT.md).

Layout: archive header (twice) | two commit slots | segments. A segment (one `pack`
finalisation, one batch of a partial pack, or one batch of `add`) holds its header (twice,
with the entropy table) and chunks of up to CHUNK_RECORDS records. Every piece is a
*block* `magic(4) | length u32 | payload | crc32(magic..payload) u32`, so damage is found
by checksums and a reader can resynchronise on the next block magic.

Per record only its name and its codes are stored; codes are arithmetic-coded one record
at a time (arith.py) under one static table per segment (the N(0,1) prior, or the
segment's measured code histogram, whichever is cheaper), so every record decodes alone.

The commit slots make appending crash-safe: bytes past the committed end (an interrupted
`add`) are ignored by readers and cut off by the next writer.

Pure functions turn records into bytes and back; `ArchiveReader` and the writer functions
at the end are the only file I/O.
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from glob import escape as glob_escape
import mmap
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import zstandard

from . import arith, varint
from .errors import InvcompError
from .quantize import MAX_BITS, MIN_BITS

VERSION = 1
MAGIC_HEADER, MAGIC_SLOT, MAGIC_SEGMENT, MAGIC_CHUNK = b"ICZA", b"ICZM", b"ICZS", b"ICZC"
CHUNK_RECORDS = 128  # records per chunk: a damaged chunk index costs at most this many pictures
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


# --- small pieces ---------------------------------------------------------------------

def _read_varint(data: bytes, pos: int, limit: int = 1 << 40) -> tuple[int, int]:
    value, pos = varint.decode(data, pos, 7, "archive")
    if value > limit:
        raise InvcompError("corrupt archive (number out of range)")
    return value, pos


def block(magic: bytes, payload: bytes) -> bytes:
    head = magic + struct.pack("<I", len(payload))
    return head + payload + struct.pack("<I", zlib.crc32(head + payload))


def _block_at(data: bytes, pos: int, magic: bytes) -> tuple[bytes, int] | None:
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


def _find_block(data: bytes, start: int, stop: int, magic: bytes) -> tuple[int, bytes, int] | None:
    """The first valid block with this magic at or after start (before stop): (offset, payload, end)."""
    pos = data.find(magic, start, stop)
    while pos >= 0:
        found = _block_at(data, pos, magic)
        if found:
            return pos, found[0], found[1]
        pos = data.find(magic, pos + 1, stop)
    return None


def check_name(name: str) -> str:
    """A record name: a relative '/'-separated path without '.', '..' or empty parts."""
    try:
        raw = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvcompError(f"picture name is not valid UTF-8: {name!r}") from None
    if not 1 <= len(raw) <= MAX_NAME_BYTES:
        raise InvcompError(f"picture name must be 1..{MAX_NAME_BYTES} bytes: {name!r}")
    if any(ord(ch) < 32 or ch in "\\\x7f" for ch in name) or name.startswith("/"):
        raise InvcompError(f"picture name has a control character, backslash or leading '/': {name!r}")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InvcompError(f"picture name has an empty, '.' or '..' part: {name!r}")
    return name


def _name_key(name: str) -> bytes:
    """The canonical record order: names by their UTF-8 bytes."""
    return name.encode("utf-8")


# --- the header ---------------------------------------------------------------------------

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

    def __post_init__(self) -> None:
        if len(self.model_sha256) != 64 or any(c not in "0123456789abcdef" for c in self.model_sha256):
            raise InvcompError("corrupt archive header (model sha256)")
        if not MIN_BITS <= self.bits <= MAX_BITS:
            raise InvcompError(f"corrupt archive header (bits {self.bits})")
        if not 1 <= self.latent_dim <= MAX_LATENT or not 1 <= self.resolution <= 65535:
            raise InvcompError("corrupt archive header (latent size or resolution)")
        if not (math.isfinite(self.latent_range) and self.latent_range > 0):
            raise InvcompError("corrupt archive header (latent range)")

    @property
    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.model_sha256)[:3]

    def settings(self) -> dict:
        return json.loads(self.config)


def canonical_config(config: dict) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def encode_header(h: ArchiveHeader) -> bytes:
    name, cfg = h.model_name.encode("utf-8"), h.config.encode("utf-8")
    payload = (bytes([VERSION]) + bytes.fromhex(h.model_sha256)
               + struct.pack("<HHdB", h.resolution, h.latent_dim, h.latent_range, h.bits)
               + varint.encode(len(name)) + name + varint.encode(len(cfg)) + cfg)
    return block(MAGIC_HEADER, payload)


def decode_header(payload: bytes) -> ArchiveHeader:
    if not payload or payload[0] != VERSION:
        raise InvcompError(f"unsupported .icza version {payload[0] if payload else '?'} (this invcomp reads version {VERSION})")
    if len(payload) < 1 + 32 + 13:
        raise InvcompError("corrupt archive header (too short)")
    sha = payload[1:33].hex()
    res, dim, rng, bits = struct.unpack_from("<HHdB", payload, 33)
    pos = 33 + 13
    n, pos = _read_varint(payload, pos, 4096)
    name = payload[pos : pos + n]
    n, pos = _read_varint(payload, pos + n, 1 << 20)
    cfg = payload[pos : pos + n]
    if pos + n != len(payload):
        raise InvcompError("corrupt archive header (length mismatch)")
    try:
        header = ArchiveHeader(sha, name.decode("utf-8"), res, dim, rng, bits, cfg.decode("utf-8"))
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


# --- entropy tables -----------------------------------------------------------------------

def histogram_cumulative(counts: Sequence[int]) -> tuple[int, ...]:
    """Integer cumulative frequencies (sum 2**16, every level >= 1) from level counts:
    f_i = 1 + c_i * (2**16 - L) // sum(c); the most frequent level (lowest on ties) takes the rest."""
    levels, total = len(counts), sum(counts)
    spare = arith.TOTAL - levels
    freqs = [1 + (c * spare // total if total else 0) for c in counts]
    freqs[max(range(levels), key=lambda i: (counts[i], -i))] += arith.TOTAL - sum(freqs)
    cum = [0]
    for f in freqs:
        cum.append(cum[-1] + f)
    return tuple(cum)


def table_cumulative(kind: int, table: bytes, bits: int, latent_range: float) -> tuple[int, ...]:
    if kind == TABLE_GAUSS:
        if table:
            raise InvcompError("corrupt segment header (gauss table has data)")
        return arith.gaussian_cumulative(bits, latent_range)
    if kind == TABLE_HISTOGRAM:
        counts, pos = [], 0
        for _ in range(1 << bits):
            c, pos = _read_varint(table, pos)
            counts.append(c)
        if pos != len(table):
            raise InvcompError("corrupt segment header (table length)")
        return _cum_cached(tuple(counts))
    raise InvcompError(f"corrupt segment header (unknown table kind {kind})")


@lru_cache(maxsize=256)
def _cum_cached(counts: tuple[int, ...]) -> tuple[int, ...]:
    return histogram_cumulative(counts)


def _estimated_bits(counts: Sequence[int], cum: tuple[int, ...]) -> float:
    return sum(c * (arith.TOTAL_BITS - math.log2(cum[i + 1] - cum[i])) for i, c in enumerate(counts) if c)


def choose_table(counts: Sequence[int], bits: int, latent_range: float) -> tuple[int, bytes]:
    """The cheaper table for codes with these level counts: the N(0,1) prior (no table bytes)
    or the histogram itself (its counts as varints); ties go to the prior."""
    gauss = _estimated_bits(counts, arith.gaussian_cumulative(bits, latent_range))
    table = b"".join(varint.encode(int(c)) for c in counts)
    hist = _estimated_bits(counts, histogram_cumulative(counts)) + 8 * len(table)
    return (TABLE_HISTOGRAM, table) if hist < gauss else (TABLE_GAUSS, b"")


def level_counts(codes: Iterable[np.ndarray], bits: int) -> np.ndarray:
    counts = np.zeros(1 << bits, np.int64)
    for c in codes:
        counts += np.bincount(np.asarray(c, np.int64), minlength=1 << bits)
    return counts


# --- records, chunks and segments ---------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Record:
    name: str
    codes: np.ndarray  # (latent_dim,) int64, each < 2**bits


def _check(name: bytes, payload: bytes) -> int:
    """Per-record check: the low 16 bits of crc32(name, 0, payload). The chunk's crc32 detects
    damage; this says which record it hit."""
    return zlib.crc32(name + b"\0" + payload) & 0xFFFF


def encode_codes(codes: np.ndarray, cum: tuple[int, ...]) -> bytes:
    return arith.encode([int(c) for c in codes], cum)


def decode_codes(payload: bytes, n: int, cum: tuple[int, ...]) -> np.ndarray:
    codes = arith.decode(payload, n, cum)
    if arith.encode(codes, cum) != payload:  # only the canonical coding is valid
        raise InvcompError("corrupt record (codes do not re-encode to the stored bytes)")
    return np.asarray(codes, dtype=np.int64)


def _split_number(name: bytes) -> tuple[bytes, bytes]:
    """(text, trailing decimal digits) of a name."""
    i = len(name)
    while i > 0 and 48 <= name[i - 1] <= 57:
        i -= 1
    return name[:i], name[i:]


def encode_names(names: Sequence[bytes]) -> bytes:
    """Sorted names, each against the one before: mode 0 = same text and digit count (1..12), number
    larger by 1 + delta (`image_00041` after `image_00037`: delta 3); mode k > 0 = front
    coding, k - 1 bytes shared, then the length and bytes of the rest. Three columns (modes,
    deltas, front-coded rests) so that zstd sees like with like."""
    modes, deltas, rests = bytearray(), bytearray(), bytearray()
    prev = b""
    for name in names:
        text, digits = _split_number(name)
        ptext, pdigits = _split_number(prev)
        if 0 < len(digits) <= _MAX_STEP_DIGITS and text == ptext and len(digits) == len(pdigits) and int(digits) > int(pdigits):
            modes += varint.encode(0)
            deltas += varint.encode(int(digits) - int(pdigits) - 1)
        else:
            shared = 0
            while shared < min(len(name), len(prev)) and name[shared] == prev[shared]:
                shared += 1
            modes += varint.encode(shared + 1)
            rests += varint.encode(len(name) - shared) + name[shared:]
        prev = name
    return bytes(modes + deltas + rests)


def decode_names(raw: bytes, count: int) -> tuple[list[bytes], int]:
    """The names and the offset after them; every size is checked against the input."""
    modes, pos = [], 0
    for _ in range(count):
        m, pos = _read_varint(raw, pos, MAX_NAME_BYTES + 1)
        modes.append(m)
    deltas = []
    for _ in range(modes.count(0)):
        d, pos = _read_varint(raw, pos, 10**_MAX_STEP_DIGITS)
        deltas.append(d)
    names, prev, k = [], b"", 0
    for m in modes:
        if m == 0:
            text, digits = _split_number(prev)
            if not 0 < len(digits) <= _MAX_STEP_DIGITS:
                raise InvcompError("corrupt chunk index (number step after a name without a short number)")
            value = int(digits) + deltas[k] + 1
            k += 1
            if len(str(value)) > len(digits):
                raise InvcompError("corrupt chunk index (number step overflows)")
            name = text + str(value).rjust(len(digits), "0").encode()
        else:
            if m - 1 > len(prev):
                raise InvcompError("corrupt chunk index (shared prefix longer than the name before)")
            n, pos = _read_varint(raw, pos, MAX_NAME_BYTES)
            if pos + n > len(raw):
                raise InvcompError("corrupt chunk index (name runs past the index)")
            name = prev[: m - 1] + raw[pos : pos + n]
            pos += n
        if len(name) > MAX_NAME_BYTES:
            raise InvcompError("corrupt chunk index (name too long)")
        names.append(name)
        prev = name
    return names, pos


def encode_chunk(records: Sequence[Record], cum: tuple[int, ...]) -> bytes:
    """One chunk block: a zstd-compressed index (names, payload lengths, 16-bit checks;
    column by column) followed by the records' arithmetic-coded codes."""
    raws = [r.name.encode("utf-8") for r in records]
    payloads = [encode_codes(r.codes, cum) for r in records]
    lengths = b"".join(varint.encode(len(p)) for p in payloads)
    checks = b"".join(struct.pack("<H", _check(n, p)) for n, p in zip(raws, payloads))
    index = zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_checksum=False, write_content_size=True).compress(
        encode_names(raws) + lengths + checks)
    head = _CHUNK.pack(len(records), len(index), zlib.crc32(index))
    return block(MAGIC_CHUNK, head + index + b"".join(payloads))


@dataclass(frozen=True)
class ChunkIndex:
    names: tuple[str, ...]
    lengths: tuple[int, ...]
    checks: tuple[int, ...]
    data_offset: int  # file offset of the first record's codes

    def offsets(self) -> list[int]:
        out, pos = [], self.data_offset
        for n in self.lengths:
            out.append(pos)
            pos += n
        return out


def decode_chunk_index(index: bytes, count: int, max_data: int) -> tuple[list[str], list[int], list[int]]:
    """Names, payload lengths and checks from a chunk's compressed index; every size is
    checked against what the chunk can hold before anything is allocated."""
    if not 1 <= count <= MAX_CHUNK_RECORDS:
        raise InvcompError("corrupt chunk index (record count)")
    bound = count * (2 * 5 + MAX_NAME_BYTES + 5 + 2)
    try:
        params = zstandard.get_frame_parameters(index)
        if params.content_size > bound:
            raise InvcompError("corrupt chunk index (declared size too large)")
        raw = zstandard.ZstdDecompressor().decompress(index, max_output_size=bound)
    except zstandard.ZstdError as e:
        raise InvcompError(f"corrupt chunk index ({e})") from None
    raws, pos = decode_names(raw, count)
    names = []
    for name in raws:
        try:
            names.append(check_name(name.decode("utf-8")))
        except UnicodeDecodeError:
            raise InvcompError("corrupt chunk index (name is not UTF-8)") from None
    lengths = []
    for _ in range(count):
        n, pos = _read_varint(raw, pos, max_data)
        lengths.append(n)
    if pos + 2 * count != len(raw) or sum(lengths) != max_data:
        raise InvcompError("corrupt chunk index (sizes do not add up)")
    checks = list(struct.unpack_from(f"<{count}H", raw, pos))
    return names, lengths, checks


def encode_segment_header(records: int, chunks: int, body: int, kind: int, table: bytes) -> bytes:
    one = block(MAGIC_SEGMENT, _SEG.pack(records, chunks, body, kind) + table)
    return one + one  # two copies: the table is needed by every record of the segment


def encode_segment(records: Sequence[Record], bits: int, latent_range: float, chunk_records: int = CHUNK_RECORDS) -> bytes:
    """A whole segment (records sorted by name) in memory; used per batch and in tests."""
    if not 1 <= chunk_records <= MAX_CHUNK_RECORDS:
        raise InvcompError(f"chunk size must be 1..{MAX_CHUNK_RECORDS}")
    records = sorted(records, key=lambda r: _name_key(r.name))
    kind, table = choose_table(level_counts((r.codes for r in records), bits), bits, latent_range)
    cum = table_cumulative(kind, table, bits, latent_range)
    chunks = [encode_chunk(records[i : i + chunk_records], cum) for i in range(0, len(records), chunk_records)]
    body = b"".join(chunks)
    return encode_segment_header(len(records), len(chunks), len(body), kind, table) + body


def archive_start(header: ArchiveHeader) -> bytes:
    """Header twice, then two commit slots for an archive with no segments yet."""
    h = encode_header(header)
    start = 2 * len(h) + 2 * SLOT_BYTES
    return h + h + encode_slot(Slot(1, start, 0, 0)) + encode_slot(Slot(0, start, 0, 0))


def build_archive(header: ArchiveHeader, records: Sequence[Record], chunk_records: int = CHUNK_RECORDS) -> bytes:
    """A complete single-segment archive in memory: exactly what `pack` and `merge` write."""
    h = encode_header(header)
    start = 2 * len(h) + 2 * SLOT_BYTES
    seg = encode_segment(records, header.bits, header.latent_range, chunk_records) if records else b""
    return (h + h + encode_slot(Slot(1, start + len(seg), 1 if records else 0, len(records)))
            + encode_slot(Slot(0, start, 0, 0)) + seg)


# --- reading --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """Damage found while reading: where, what, and which pictures it costs."""

    offset: int
    message: str
    names: tuple[str, ...] = ()  # damaged pictures, by name
    lost: int = 0  # further pictures lost whose names are unknown (their index is damaged)
    redundant: bool = False  # only a spare copy was hit: every picture is still intact


@dataclass(frozen=True)
class Chunk:
    offset: int
    segment: int
    index: ChunkIndex
    end: int


@dataclass
class Segment:
    offset: int
    records: int
    kind: int
    cum: tuple[int, ...]
    chunks: list[Chunk]


_MAX_SEGMENT_HEADER = _BLOCK_OVERHEAD + _SEG.size + 6 * (1 << MAX_BITS)


class ArchiveReader:
    """An archive opened for reading (memory-mapped): header, commit, and the chunk indexes
    (names and sizes, not codes) of every segment. Damage found is listed in `problems`.
    Every declared size is checked against the file before it is used."""

    def __init__(self, path: str | os.PathLike, index: bool = True):
        """index=False reads only the header and the commit (enough to append)."""
        self.path = Path(path)
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                self._data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        except OSError as e:
            raise InvcompError(f"{path}: cannot read ({e.strerror or e})") from None
        try:
            self.file_size = size
            self.problems: list[Problem] = []
            self.header, self.slots_at = self._read_header()
            self.slot = self._read_slots()
            if self.slot.end > size:
                raise InvcompError(f"{path}: truncated archive ({size} bytes; its commit record says {self.slot.end})")
            self.tail = size - self.slot.end  # uncommitted bytes (an interrupted add): ignored
            self.segments: list[Segment] = []
            if index:
                self._read_segments()
            self._where = {name: (c, i) for c in self.chunks() for i, name in enumerate(c.index.names)}
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            self._data.close()
        self._data = b""

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # header and commit
    def _read_header(self) -> tuple[ArchiveHeader, int]:
        data = self._data
        if len(data) < 4 or (data[:4] != MAGIC_HEADER and data.find(MAGIC_HEADER, 0, 1 << 16) < 0):
            raise InvcompError(f"{self.path}: not an invcomp archive (bad magic)")
        first = _block_at(data, 0, MAGIC_HEADER)
        if first:
            payload, end = first
            second = _block_at(data, end, MAGIC_HEADER)
            if not second or second[0] != payload:
                self.problems.append(Problem(end, "second copy of the archive header is damaged", redundant=True))
            return decode_header(payload), 2 * end
        found = _find_block(data, 1, min(len(data), 1 << 20), MAGIC_HEADER)
        if not found:
            raise InvcompError(f"{self.path}: archive header damaged or truncated (both copies)")
        self.problems.append(Problem(0, "first copy of the archive header is damaged", redundant=True))
        return decode_header(found[1]), found[2]

    def _read_slots(self) -> Slot:
        slots = []
        for k in range(2):
            found = _block_at(self._data, self.slots_at + k * SLOT_BYTES, MAGIC_SLOT)
            if found and len(found[0]) == _SLOT.size:
                slots.append((Slot(*_SLOT.unpack(found[0])), k))
        if not slots:
            raise InvcompError(f"{self.path}: archive commit records damaged or truncated (both copies)")
        slot, self.current_slot = max(slots, key=lambda s: s[0].seq)
        if slot.end < self.segments_at:
            raise InvcompError(f"{self.path}: corrupt commit record")
        return slot

    @property
    def segments_at(self) -> int:
        return self.slots_at + 2 * SLOT_BYTES

    # segments and chunks
    def _segment_header_at(self, pos: int, end: int) -> tuple[bytes, int] | None:
        """(payload, body start) from either copy of the segment header at pos."""
        data = self._data
        first = _block_at(data, pos, MAGIC_SEGMENT) if pos + 8 <= end else None
        if first and first[1] <= end:
            second = _block_at(data, first[1], MAGIC_SEGMENT)
            if not second or second[0] != first[0]:
                self.problems.append(Problem(first[1], "second copy of a segment header is damaged", redundant=True))
            return first[0], first[1] + (first[1] - pos)
        found = _find_block(data, pos + 1, min(end, pos + 2 * _MAX_SEGMENT_HEADER), MAGIC_SEGMENT)
        if found and found[0] - pos == found[2] - found[0]:  # the second copy, right after a first of equal size
            self.problems.append(Problem(pos, "first copy of a segment header is damaged", redundant=True))
            return found[1], found[2]
        return None

    def _read_segments(self) -> None:
        end, pos = self.slot.end, self.segments_at
        while pos < end:
            head = self._segment_header_at(pos, end)
            payload = head[0] if head else b""
            if head is None or len(payload) < _SEG.size:
                nxt = self._next_segment(pos + 1, end)
                self.problems.append(Problem(pos, "segment header damaged (both copies): the pictures up to "
                                             f"{'offset ' + str(nxt) if nxt is not None else 'the end'} are lost"))
                if nxt is None:
                    return
                pos = nxt
                continue
            records, nchunks, body, kind = _SEG.unpack_from(payload)
            body_start = head[1]
            if body_start + body > end or nchunks > records:
                self.problems.append(Problem(pos, "segment header declares more data than the archive holds"))
                return
            cum = table_cumulative(kind, payload[_SEG.size :], self.header.bits, self.header.latent_range)
            seg = Segment(pos, records, kind, cum, [])
            self.segments.append(seg)
            self._read_chunks(seg, len(self.segments) - 1, body_start, body_start + body)
            pos = body_start + body

    def _next_segment(self, pos: int, end: int) -> int | None:
        while True:
            found = _find_block(self._data, pos, end, MAGIC_SEGMENT)
            if not found:
                return None
            again = _block_at(self._data, found[2], MAGIC_SEGMENT)
            if again and again[0] == found[1]:
                return found[0]
            pos = found[0] + 1

    def _read_chunks(self, seg: Segment, number: int, pos: int, end: int) -> None:
        damaged_at = []
        while pos < end:
            chunk = self._chunk_at(pos, end, number)
            if chunk is None:  # skip to the next chunk whose index checks out
                damaged_at.append(pos)
                nxt = self._data.find(MAGIC_CHUNK, pos + 1, end)
                while nxt >= 0 and self._chunk_at(nxt, end, number) is None:
                    nxt = self._data.find(MAGIC_CHUNK, nxt + 1, end)
                if nxt < 0:
                    break
                pos = nxt
                continue
            seg.chunks.append(chunk)
            if not chunk_data_intact(self._data, chunk):
                self._locate_damage(chunk)
            pos = chunk.end
        if damaged_at:
            lost = max(seg.records - sum(len(c.index.names) for c in seg.chunks), 0)
            where = ", ".join(map(str, damaged_at))
            self.problems.append(Problem(damaged_at[0], f"chunk index damaged (at offset {where}): "
                                         f"{lost} picture(s) of unknown name lost", lost=lost))

    def _chunk_at(self, pos: int, end: int, segment: int) -> Chunk | None:
        """The chunk at pos if its header fits and its index passes its own crc32."""
        data = self._data
        if data[pos : pos + 4] != MAGIC_CHUNK or pos + 8 + _CHUNK.size > end:
            return None
        (length,) = struct.unpack_from("<I", data, pos + 4)
        count, index_len, index_crc = _CHUNK.unpack_from(data, pos + 8)
        block_end = pos + 8 + length + 4
        index_start = pos + 8 + _CHUNK.size
        if block_end > end or index_start + index_len > block_end - 4 or count == 0:
            return None
        index = data[index_start : index_start + index_len]
        if zlib.crc32(index) != index_crc:
            return None
        try:
            names, lengths, checks = decode_chunk_index(index, count, block_end - 4 - index_start - index_len)
        except InvcompError:
            return None
        return Chunk(pos, segment, ChunkIndex(tuple(names), tuple(lengths), tuple(checks), index_start + index_len), block_end)

    def _locate_damage(self, chunk: Chunk) -> None:
        bad = [n for n, off, ln, chk in zip(chunk.index.names, chunk.index.offsets(), chunk.index.lengths, chunk.index.checks)
               if _check(n.encode("utf-8"), self._data[off : off + ln]) != chk]
        if bad:
            self.problems.append(Problem(chunk.offset, "damaged picture" + ("s" if len(bad) > 1 else ""), tuple(bad)))
        else:
            self.problems.append(Problem(chunk.offset, "chunk checksum fails but every record check passes "
                                         "(damage in the chunk header, or missed by the 16-bit checks)"))

    # queries
    def chunks(self) -> Iterator[Chunk]:
        for s in self.segments:
            yield from s.chunks

    def names(self) -> list[str]:
        return [n for c in self.chunks() for n in c.index.names]

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def record_bytes(self, name: str) -> int:
        chunk, i = self._where[name]
        return chunk.index.lengths[i]

    def _decode(self, chunk: Chunk, i: int) -> np.ndarray:
        name = chunk.index.names[i]
        off, ln = chunk.index.offsets()[i], chunk.index.lengths[i]
        payload = self._data[off : off + ln]
        if _check(name.encode("utf-8"), payload) != chunk.index.checks[i]:
            raise InvcompError(f"{self.path}: picture {name!r} is damaged (checksum mismatch)")
        try:
            return decode_codes(payload, self.header.latent_dim, self.segments[chunk.segment].cum)
        except InvcompError:
            raise InvcompError(f"{self.path}: picture {name!r} is damaged (its codes do not decode)") from None

    def codes(self, name: str) -> np.ndarray:
        """One picture's codes, read and decoded alone; an error naming it if it is damaged."""
        if name not in self._where:
            raise InvcompError(f"{self.path}: no picture named {name!r}")
        return self._decode(*self._where[name])

    def records(self, skip_damaged: bool = False) -> Iterator[Record]:
        """Every record in stored order; a damaged one raises unless skip_damaged."""
        for chunk in self.chunks():
            for i, name in enumerate(chunk.index.names):
                try:
                    yield Record(name, self._decode(chunk, i))
                except InvcompError:
                    if not skip_damaged:
                        raise

    def damaged(self) -> bool:
        """Whether any picture is lost or damaged (damage to a spare copy alone does not count)."""
        return any(not p.redundant for p in self.problems)

    def verify(self) -> list[Problem]:
        """Every problem: the structural ones found on opening, and records that fail to decode."""
        problems = list(self.problems)
        known = {n for p in problems for n in p.names}
        for chunk in self.chunks():
            for i, name in enumerate(chunk.index.names):
                if name in known:
                    continue
                try:
                    self._decode(chunk, i)
                except InvcompError as e:
                    problems.append(Problem(chunk.index.offsets()[i], "damaged picture (its codes do not decode)", (name,)))
        if len(self._where) != len(self.names()):
            seen: set[str] = set()
            dup = sorted({n for n in self.names() if n in seen or seen.add(n)})
            problems.append(Problem(0, "duplicate picture names", tuple(dup)))
        return problems


def chunk_data_intact(data, chunk: Chunk) -> bool:
    return zlib.crc32(data[chunk.offset : chunk.end - 4]) == struct.unpack_from("<I", data, chunk.end - 4)[0]


# --- writing --------------------------------------------------------------------------------

def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock on an archive for a whole pack or add, so that a second writer
    fails at once instead of interleaving its segments (no-op where flock does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "rb") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InvcompError(f"{path} is being written by another invcomp process") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Temporary files an atomic write of `path` left when it was killed (.NAME.*.tmp)."""
    stale = sorted(path.parent.glob(f".{glob_escape(path.name)}.*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def create_archive(path: Path, header: ArchiveHeader) -> None:
    """A new empty archive (the start of a partial pack), written atomically."""
    from .imageio import write_atomic

    try:
        write_atomic(path, archive_start(header))
    except OSError as e:
        raise InvcompError(f"{path}: cannot write ({e.strerror or e})") from None
    fsync_dir(path)


def append_segment(path: Path, segment: bytes, records: int) -> None:
    """Append one segment and commit it: cut any uncommitted tail, write, fsync, then write
    the older commit slot with the next sequence number and fsync again. A crash before the
    slot write leaves the old commit in force; during it, the slot's crc32 fails and the
    other slot (the old commit) is used."""
    with ArchiveReader(path, index=False) as reader:
        slot, slots_at, older = reader.slot, reader.slots_at, 1 - reader.current_slot
    try:
        _append(path, segment, records, slot, slots_at, older)
    except OSError as e:
        raise InvcompError(f"{path}: cannot write ({e.strerror or e}); the archive keeps its last commit") from None


def _append(path: Path, segment: bytes, records: int, slot: Slot, slots_at: int, older: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(slot.end)
        f.seek(slot.end)
        f.write(segment)
        f.flush()
        os.fsync(f.fileno())
        new = Slot(slot.seq + 1, slot.end + len(segment), slot.segments + 1, slot.records + records)
        f.seek(slots_at + older * SLOT_BYTES)
        f.write(encode_slot(new))
        f.flush()
        os.fsync(f.fileno())


def write_compacted(path: Path, header: ArchiveHeader, sources: Sequence[ArchiveReader],
                    chunk_records: int = CHUNK_RECORDS, progress: Callable[[int], None] | None = None) -> int:
    """One archive holding every record of `sources` in canonical (name) order, in one segment
    under one table: what pack finalises and merge writes. Written to a temporary file beside
    `path` and renamed into place. Memory holds names and locations, not the codes of all."""
    for src in sources:
        if src.damaged():
            raise InvcompError(f"{src.path}: archive is damaged; run `invcomp verify`")
    where: list[tuple[bytes, int, str]] = []
    counts = np.zeros(1 << header.bits, np.int64)
    for k, src in enumerate(sources):
        for rec in src.records():
            counts += np.bincount(rec.codes, minlength=1 << header.bits)
            where.append((_name_key(rec.name), k, rec.name))
    where.sort()
    for a, b in zip(where, where[1:]):
        if a[0] == b[0]:
            raise InvcompError(f"picture name {a[2]!r} occurs twice ({sources[a[1]].path} and {sources[b[1]].path})")
    kind, table = choose_table(counts.tolist(), header.bits, header.latent_range)
    cum = table_cumulative(kind, table, header.bits, header.latent_range)
    try:
        _write_segment_file(path, header, sources, where, kind, table, cum, chunk_records, progress)
    except OSError as e:
        raise InvcompError(f"{path}: cannot write ({e.strerror or e})") from None
    return len(where)


def _write_segment_file(path: Path, header: ArchiveHeader, sources: Sequence[ArchiveReader], where: list,
                        kind: int, table: bytes, cum: tuple[int, ...], chunk_records: int,
                        progress: Callable[[int], None] | None) -> None:
    h = encode_header(header)
    start = 2 * len(h) + 2 * SLOT_BYTES
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent if str(path.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            seg_header_len = len(encode_segment_header(0, 0, 0, kind, table))
            f.write(b"\0" * (start + seg_header_len))
            body, nchunks = 0, 0
            for i in range(0, len(where), chunk_records):
                recs = [Record(name, sources[k].codes(name)) for _, k, name in where[i : i + chunk_records]]
                data = encode_chunk(recs, cum)
                f.write(data)
                body += len(data)
                nchunks += 1
                if progress:
                    progress(len(recs))
            seg = encode_segment_header(len(where), nchunks, body, kind, table) if where else b""
            f.seek(0)
            f.write(h + h + encode_slot(Slot(1, start + len(seg) + body, 1 if where else 0, len(where)))
                    + encode_slot(Slot(0, start, 0, 0)) + seg)
            if not where:
                f.truncate(start)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_dir(path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def zeroth_order_entropy_bits(counts: np.ndarray) -> float:
    """Total bits of the codes under their own empirical level distribution (the target bound)."""
    counts = np.asarray(counts, np.float64)
    total = counts.sum()
    p = counts[counts > 0] / total
    return float(-(counts[counts > 0] * np.log2(p)).sum()) if total else 0.0


def archive_stats(reader: ArchiveReader) -> dict:
    """Byte accounting of an archive: codes, index, framing, and the codes' zeroth-order entropy."""
    counts = level_counts((r.codes for r in reader.records()), reader.header.bits)
    code_bytes = sum(sum(c.index.lengths) for c in reader.chunks())
    n = len(reader)
    entropy_bytes = zeroth_order_entropy_bits(counts) / 8
    total = reader.slot.end
    return {"pictures": n, "bytes": total, "bytes_per_picture": round(total / n, 3) if n else None,
            "code_bytes": code_bytes, "code_bytes_per_picture": round(code_bytes / n, 3) if n else None,
            "entropy_bytes": round(entropy_bytes, 1),
            "code_bytes_over_entropy": round(code_bytes / entropy_bytes, 4) if entropy_bytes else None,
            "other_bytes": total - code_bytes,
            "tables": [TABLE_NAMES[s.kind] for s in reader.segments]}
