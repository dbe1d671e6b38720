"""Records, chunks and segments of an .icza archive, to bytes and back (pure functions)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where codes are handled, so that `ls` stays fast
    import numpy as np

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import zstandard

from invcomp.errors import InvcompError
from invcomp.formats import arith, varint
from invcomp.formats.icza.blocks import (
    _CHUNK,
    _MAX_STEP_DIGITS,
    _SEG,
    _ZSTD_LEVEL,
    CHUNK_RECORDS,
    MAGIC_CHUNK,
    MAGIC_SEGMENT,
    MAX_CHUNK_RECORDS,
    MAX_NAME_BYTES,
    SLOT_BYTES,
    VERSION,
    ArchiveHeader,
    Slot,
    block,
    check_name,
    encode_header,
    encode_slot,
    name_key,
    read_varint,
)
from invcomp.formats.icza.tables import choose_table, level_counts, table_cumulative


@dataclass(frozen=True, eq=False)
class Record:
    name: str
    codes: np.ndarray  # (latent_dim,) int64, each < 2**bits
    size: tuple[int, int] | None = None  # (width, height) the image had before it was fitted, if that differs
    parts: tuple[bytes, ...] = ()  # enhancement parts (as in .icz version 2), after the codes in the payload

Size = tuple[int, int] | None
FLAG_SIZE = 1  # record flag bit 0: the original size follows in the sizes column
FLAG_PARTS = 2  # record flag bit 1: the payload ends with enhancement parts; their byte count is in the last column
MAX_SIDE = 65535


def parts_section(parts: Sequence[bytes]) -> bytes:
    """Enhancement parts as a record stores them after its codes: each a varint length and its bytes."""
    return b"".join(varint.encode(len(p)) + p for p in parts)


def split_parts(section: bytes) -> tuple[bytes, ...]:
    out, pos = [], 0
    while pos < len(section):
        if len(out) == 16:
            raise InvcompError("corrupt record (more than 16 enhancement parts)")
        n, pos = read_varint(section, pos, 1 << 21)
        if n < 1 or pos + n > len(section):
            raise InvcompError("corrupt record (enhancement part lengths)")
        out.append(bytes(section[pos : pos + n]))
        pos += n
    return tuple(out)


def record_check(name: bytes, payload: bytes) -> int:
    """Per-record check: the low 16 bits of crc32(name, 0, payload). The chunk's crc32 detects
    damage; this says which record it hit."""
    return zlib.crc32(name + b"\0" + payload) & 0xFFFF


def encode_codes(codes: np.ndarray, cum: tuple[int, ...]) -> bytes:
    return arith.encode([int(c) for c in codes], cum)


def decode_codes(payload: bytes, n: int, cum: tuple[int, ...]) -> np.ndarray:
    codes = arith.decode(payload, n, cum)
    if arith.encode(codes, cum) != payload:  # only the canonical coding is valid
        raise InvcompError("corrupt record (codes do not re-encode to the stored bytes)")
    import numpy as np

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
        m, pos = read_varint(raw, pos, MAX_NAME_BYTES + 1)
        modes.append(m)
    deltas = []
    for _ in range(modes.count(0)):
        d, pos = read_varint(raw, pos, 10**_MAX_STEP_DIGITS)
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
            n, pos = read_varint(raw, pos, MAX_NAME_BYTES)
            if pos + n > len(raw):
                raise InvcompError("corrupt chunk index (name runs past the index)")
            name = prev[: m - 1] + raw[pos : pos + n]
            pos += n
        if len(name) > MAX_NAME_BYTES:
            raise InvcompError("corrupt chunk index (name too long)")
        names.append(name)
        prev = name
    return names, pos


def encode_chunk(records: Sequence[Record], cum: tuple[int, ...], version: int = VERSION) -> bytes:
    """One chunk block: a zstd-compressed index (names, payload lengths, 16-bit checks, and in
    version 2 record flags and original sizes; column by column) followed by the records'
    arithmetic-coded codes."""
    sections = [parts_section(r.parts) for r in records]
    return encode_chunk_payloads([r.name for r in records], [encode_codes(r.codes, cum) + x for r, x in zip(records, sections)],
                                 [r.size for r in records], version, [len(x) for x in sections])


def _encode_extras(sizes: Sequence[Size], parts: Sequence[int]) -> bytes:
    flags = b"".join(varint.encode((FLAG_SIZE if s else 0) | (FLAG_PARTS if n else 0)) for s, n in zip(sizes, parts))
    for s in sizes:
        if s and not all(1 <= v <= MAX_SIDE for v in s):
            raise InvcompError(f"original size {s[0]}x{s[1]} out of range (1..{MAX_SIDE})")
    return (flags + b"".join(varint.encode(s[0]) + varint.encode(s[1]) for s in sizes if s)
            + b"".join(varint.encode(n) for n in parts if n))


def encode_chunk_payloads(names: Sequence[str], payloads: Sequence[bytes], sizes: Sequence[Size] | None = None,
                          version: int = VERSION, parts: Sequence[int] | None = None) -> bytes:
    """The chunk block of records whose codes are already coded (`encode_codes`); parts[i] is how many
    of payload i's bytes are its enhancement parts (at its end)."""
    sizes = list(sizes) if sizes is not None else [None] * len(names)
    parts = list(parts) if parts is not None else [0] * len(names)
    raws = [n.encode("utf-8") for n in names]
    lengths = b"".join(varint.encode(len(p)) for p in payloads)
    checks = b"".join(struct.pack("<H", record_check(n, p)) for n, p in zip(raws, payloads))
    if version == 1 and (any(sizes) or any(parts)):
        raise InvcompError("a version 1 archive cannot store original sizes or enhancement parts")
    extra = _encode_extras(sizes, parts) if version >= 2 else b""
    index = zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_checksum=False, write_content_size=True).compress(
        encode_names(raws) + lengths + checks + extra)
    head = _CHUNK.pack(len(payloads), len(index), zlib.crc32(index))
    return block(MAGIC_CHUNK, head + index + b"".join(payloads))


@dataclass(frozen=True)
class ChunkIndex:
    names: tuple[str, ...]
    lengths: tuple[int, ...]
    checks: tuple[int, ...]
    data_offset: int  # file offset of the first record's codes
    sizes: tuple[Size, ...] = ()  # original sizes (version 2; empty when no record has one)
    parts: tuple[int, ...] = ()  # bytes of enhancement parts at the end of each payload (empty when none has any)

    def size(self, i: int) -> Size:
        return self.sizes[i] if self.sizes else None

    def parts_bytes(self, i: int) -> int:
        return self.parts[i] if self.parts else 0

    def offsets(self) -> list[int]:
        out, pos = [], self.data_offset
        for n in self.lengths:
            out.append(pos)
            pos += n
        return out


def decode_chunk_index(index: bytes, count: int, max_data: int,
                       version: int = VERSION) -> tuple[list[str], list[int], list[int], list[Size], list[int]]:
    """Names, payload lengths, checks, original sizes and parts bytes from a chunk's compressed index;
    every size is checked against what the chunk can hold before anything is allocated."""
    if not 1 <= count <= MAX_CHUNK_RECORDS:
        raise InvcompError("corrupt chunk index (record count)")
    bound = count * (2 * 5 + MAX_NAME_BYTES + 5 + 2 + (1 + 2 * 3 + 4 if version >= 2 else 0))
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
        n, pos = read_varint(raw, pos, max_data)
        lengths.append(n)
    if pos + 2 * count > len(raw) or sum(lengths) != max_data:
        raise InvcompError("corrupt chunk index (sizes do not add up)")
    checks = list(struct.unpack_from(f"<{count}H", raw, pos))
    pos += 2 * count
    sizes: list[Size] = [None] * count
    parts = [0] * count
    if version >= 2:
        flags = []
        for _ in range(count):
            f, pos = read_varint(raw, pos, 1 << 20)
            if f & ~(FLAG_SIZE | FLAG_PARTS):
                raise InvcompError(f"chunk index has record flags {f} that this invcomp does not know (a later release "
                                   "may read it)")
            flags.append(f)
        for i, f in enumerate(flags):
            if f & FLAG_SIZE:
                w, pos = read_varint(raw, pos, MAX_SIDE)
                h, pos = read_varint(raw, pos, MAX_SIDE)
                if not (w and h):
                    raise InvcompError("corrupt chunk index (original size 0)")
                sizes[i] = (w, h)
        for i, f in enumerate(flags):
            if f & FLAG_PARTS:
                n, pos = read_varint(raw, pos, lengths[i] - 1)
                if not n:
                    raise InvcompError("corrupt chunk index (enhancement parts of 0 bytes)")
                parts[i] = n
    if pos != len(raw):
        raise InvcompError("corrupt chunk index (sizes do not add up)")
    return names, lengths, checks, sizes, parts


def encode_segment_header(records: int, chunks: int, body: int, kind: int, table: bytes) -> bytes:
    one = block(MAGIC_SEGMENT, _SEG.pack(records, chunks, body, kind) + table)
    return one + one  # two copies: the table is needed by every record of the segment


def encode_segment(records: Sequence[Record], bits: int, latent_range: float, chunk_records: int = CHUNK_RECORDS,
                   version: int = VERSION) -> bytes:
    """A whole segment (records sorted by name) in memory; used per batch and in tests."""
    if not 1 <= chunk_records <= MAX_CHUNK_RECORDS:
        raise InvcompError(f"chunk size must be 1..{MAX_CHUNK_RECORDS}")
    records = sorted(records, key=lambda r: name_key(r.name))
    kind, table = choose_table(level_counts((r.codes for r in records), bits), bits, latent_range)
    cum = table_cumulative(kind, table, bits, latent_range)
    chunks = [encode_chunk(records[i : i + chunk_records], cum, version) for i in range(0, len(records), chunk_records)]
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
    seg = encode_segment(records, header.bits, header.latent_range, chunk_records, header.version) if records else b""
    return (h + h + encode_slot(Slot(1, start + len(seg), 1 if records else 0, len(records)))
            + encode_slot(Slot(0, start, 0, 0)) + seg)
