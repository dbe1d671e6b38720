"""Reading an .icza archive: memory-mapped, every declared size checked, damage located and named.

Opening reads the header and the commit only. The chunk indexes (names, lengths, checks) of the
whole archive are read, and damage located, the first time something needs all of them (names,
len, records, problems, verify, ...). One image by name needs only the chunks a binary search
over each segment's chunks visits (a segment's images are in name order): about log2(chunks)
index reads, so opening an archive and extracting one image take the same time at any size.
A name the search does not find, or bytes no writer leaves, fall back to the full read."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where codes are handled, so that `ls` stays fast
    import numpy as np

import mmap
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from invcomp.errors import InvcompError
from invcomp.formats.icz import MAX_BITS
from invcomp.formats.icza.blocks import (
    _BLOCK_OVERHEAD,
    _CHUNK,
    _SEG,
    _SLOT,
    MAGIC_CHUNK,
    MAGIC_HEADER,
    MAGIC_SEGMENT,
    MAGIC_SLOT,
    SLOT_BYTES,
    ArchiveHeader,
    Slot,
    block_at,
    decode_header,
    find_block,
    name_key,
)
from invcomp.formats.icza.chunks import ChunkIndex, Record, decode_chunk_index, decode_codes, record_check, split_parts
from invcomp.formats.icza.tables import table_cumulative


@dataclass(frozen=True)
class Problem:
    """Damage found while reading: where, what, and which images it costs."""

    offset: int
    message: str
    names: tuple[str, ...] = ()  # damaged images, by name
    lost: int = 0  # further images lost whose names are unknown (their index is damaged)
    redundant: bool = False  # only a spare copy was hit: every image is still intact


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


@dataclass
class _Sparse:
    """A segment as a lookup by name sees it: its table and where its chunks start; the indexes
    of the chunks visited so far are kept."""

    cum: tuple[int, ...]
    starts: list[int]
    end: int
    seen: dict[int, Chunk]


class _NotAsWritten(Exception):
    """A lookup met bytes no writer leaves (damage, an unsorted segment): read the whole index."""


class ArchiveReader:
    """An archive opened for reading (memory-mapped): header, commit, and the chunk indexes
    (names and sizes, not codes) of every segment, read when first needed (see the module
    docstring). Damage found is listed in `problems`. Every declared size is checked against
    the file before it is used."""

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
            self._problems: list[Problem] = []
            self.header, self.slots_at = self._read_header()
            self.slot = self._read_slots()
            if self.slot.end > size:
                raise InvcompError(f"{path}: truncated archive ({size} bytes; its commit record says {self.slot.end})")
            self.tail = size - self.slot.end  # uncommitted bytes (an interrupted add): ignored
            self._segments: list[Segment] = []
            self._where: dict[str, tuple[Chunk, int]] = {}
            self._full = not index  # index=False: no segments at all
            self._sparse: list[_Sparse] | None = None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if isinstance(self._data, mmap.mmap):
            self._data.close()
        self._data = b""

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _load(self) -> None:
        """Read every chunk index and locate damage (once)."""
        if not self._full:
            if not isinstance(self._data, mmap.mmap) and self.file_size:
                raise InvcompError(f"{self.path}: archive is closed")
            self._full, self._sparse = True, None
            self._read_segments()
            self._where = {name: (c, i) for c in self.chunks() for i, name in enumerate(c.index.names)}

    @property
    def segments(self) -> list[Segment]:
        self._load()
        return self._segments

    @property
    def problems(self) -> list[Problem]:
        self._load()
        return self._problems

    # header and commit
    def _read_header(self) -> tuple[ArchiveHeader, int]:
        data = self._data
        if len(data) < 4 or (data[:4] != MAGIC_HEADER and data.find(MAGIC_HEADER, 0, 1 << 16) < 0):
            raise InvcompError(f"{self.path}: not an invcomp archive (bad magic)")
        first = block_at(data, 0, MAGIC_HEADER)
        if first:
            payload, end = first
            second = block_at(data, end, MAGIC_HEADER)
            if not second or second[0] != payload:
                self._problems.append(Problem(end, "second copy of the archive header is damaged", redundant=True))
            return decode_header(payload), 2 * end
        found = find_block(data, 1, min(len(data), 1 << 20), MAGIC_HEADER)
        if not found:
            raise InvcompError(f"{self.path}: archive header damaged or truncated (both copies)")
        self._problems.append(Problem(0, "first copy of the archive header is damaged", redundant=True))
        return decode_header(found[1]), found[2]

    def _read_slots(self) -> Slot:
        slots = []
        for k in range(2):
            found = block_at(self._data, self.slots_at + k * SLOT_BYTES, MAGIC_SLOT)
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
        first = block_at(data, pos, MAGIC_SEGMENT) if pos + 8 <= end else None
        if first and first[1] <= end:
            second = block_at(data, first[1], MAGIC_SEGMENT)
            if not second or second[0] != first[0]:
                self._problems.append(Problem(first[1], "second copy of a segment header is damaged", redundant=True))
            return first[0], first[1] + (first[1] - pos)
        found = find_block(data, pos + 1, min(end, pos + 2 * _MAX_SEGMENT_HEADER), MAGIC_SEGMENT)
        if found and found[0] - pos == found[2] - found[0]:  # the second copy, right after a first of equal size
            self._problems.append(Problem(pos, "first copy of a segment header is damaged", redundant=True))
            return found[1], found[2]
        return None

    def _read_segments(self) -> None:
        end, pos = self.slot.end, self.segments_at
        while pos < end:
            head = self._segment_header_at(pos, end)
            payload = head[0] if head else b""
            if head is None or len(payload) < _SEG.size:
                nxt = self._next_segment(pos + 1, end)
                self._problems.append(Problem(pos, "segment header damaged (both copies): the images up to "
                                             f"{'offset ' + str(nxt) if nxt is not None else 'the end'} are lost"))
                if nxt is None:
                    return
                pos = nxt
                continue
            records, nchunks, body, kind = _SEG.unpack_from(payload)
            body_start = head[1]
            if body_start + body > end or nchunks > records:
                self._problems.append(Problem(pos, "segment header declares more data than the archive holds"))
                return
            cum = table_cumulative(kind, payload[_SEG.size :], self.header.bits, self.header.latent_range)
            seg = Segment(pos, records, kind, cum, [])
            self._segments.append(seg)
            self._read_chunks(seg, len(self._segments) - 1, body_start, body_start + body)
            pos = body_start + body

    def _next_segment(self, pos: int, end: int) -> int | None:
        while True:
            found = find_block(self._data, pos, end, MAGIC_SEGMENT)
            if not found:
                return None
            again = block_at(self._data, found[2], MAGIC_SEGMENT)
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
            self._problems.append(Problem(damaged_at[0], f"chunk index damaged (at offset {where}): "
                                         f"{lost} image(s) of unknown name lost", lost=lost))

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
            names, lengths, checks, sizes, parts = decode_chunk_index(index, count, block_end - 4 - index_start - index_len,
                                                                      self.header.version)
        except InvcompError:
            return None
        return Chunk(pos, segment, ChunkIndex(tuple(names), tuple(lengths), tuple(checks), index_start + index_len,
                                              tuple(sizes) if any(sizes) else (), tuple(parts) if any(parts) else ()),
                     block_end)

    def _locate_damage(self, chunk: Chunk) -> None:
        bad = [n for n, off, ln, chk in zip(chunk.index.names, chunk.index.offsets(), chunk.index.lengths, chunk.index.checks)
               if record_check(n.encode("utf-8"), self._data[off : off + ln]) != chk]
        if bad:
            self._problems.append(Problem(chunk.offset, "damaged image" + ("s" if len(bad) > 1 else ""), tuple(bad)))
        else:
            self._problems.append(Problem(chunk.offset, "chunk checksum fails but every record check passes "
                                         "(damage in the chunk header, or missed by the 16-bit checks)"))

    # queries
    def chunks(self) -> Iterator[Chunk]:
        for s in self.segments:
            yield from s.chunks

    def names(self) -> list[str]:
        return [n for c in self.chunks() for n in c.index.names]

    def __len__(self) -> int:
        self._load()
        return len(self._where)

    def __contains__(self, name: str) -> bool:
        return self._locate(name) is not None

    def record_bytes(self, name: str) -> int:
        found = self._locate(name)
        if found is None:
            raise KeyError(name)
        chunk, i = found
        return chunk.index.lengths[i]

    # one image by name without the whole index
    def _locate(self, name: str) -> tuple[Chunk, int] | None:
        """Where an image is: found by the search, or else (a name not there, or bytes no writer
        leaves) by the full index, so the answer is always the full index's."""
        if not self._full:
            try:
                found = self._search(name)
                if found is not None:
                    return found
            except _NotAsWritten:
                pass
            self._load()
        return self._where.get(name)

    def _search(self, name: str) -> tuple[Chunk, int] | None:
        """Binary search over each segment's chunks by their first name, the last segment first
        (as the full index, where a later copy of a name wins)."""
        if self._sparse is None:
            self._sparse = self._scan()
        key = name_key(name)
        for number in reversed(range(len(self._sparse))):
            starts = self._sparse[number].starts
            lo, hi = 0, len(starts) - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if name_key(self._sparse_chunk(number, mid).index.names[0]) <= key:
                    lo = mid
                else:
                    hi = mid - 1
            if starts:
                chunk = self._sparse_chunk(number, lo)
                if name in chunk.index.names:
                    return chunk, chunk.index.names.index(name)
        return None

    def _scan(self) -> list[_Sparse]:
        """Segment headers and where each chunk starts (chunk headers only: no index read, no
        checksum over chunk data). Anything that is not exactly as a writer leaves it raises
        _NotAsWritten."""
        data, end, pos, out = self._data, self.slot.end, self.segments_at, []
        while pos < end:
            first = block_at(data, pos, MAGIC_SEGMENT)
            second = block_at(data, first[1], MAGIC_SEGMENT) if first and first[1] <= end else None
            if not second or second[0] != first[0] or len(first[0]) < _SEG.size:
                raise _NotAsWritten
            records, nchunks, body, kind = _SEG.unpack_from(first[0])
            start, stop = second[1], second[1] + body
            if stop > end or nchunks > records:
                raise _NotAsWritten
            try:
                cum = table_cumulative(kind, first[0][_SEG.size :], self.header.bits, self.header.latent_range)
            except InvcompError:
                raise _NotAsWritten from None
            starts, p = [], start
            while p < stop:
                if data[p : p + 4] != MAGIC_CHUNK or p + 8 > stop:
                    raise _NotAsWritten
                starts.append(p)
                p += 12 + struct.unpack_from("<I", data, p + 4)[0]
            if p != stop or len(starts) != nchunks:
                raise _NotAsWritten
            out.append(_Sparse(cum, starts, stop, {}))
            pos = stop
        return out

    def _sparse_chunk(self, number: int, k: int) -> Chunk:
        seg = self._sparse[number]
        if k not in seg.seen:
            chunk = self._chunk_at(seg.starts[k], seg.end, number)
            keys = [name_key(n) for n in chunk.index.names] if chunk else []
            if chunk is None or any(a >= b for a, b in zip(keys, keys[1:])):
                raise _NotAsWritten
            seg.seen[k] = chunk
        return seg.seen[k]

    def _cum(self, chunk: Chunk) -> tuple[int, ...]:
        return (self._segments if self._full else self._sparse)[chunk.segment].cum

    def _checked(self, chunk: Chunk, i: int) -> bytes:
        """Record i's whole payload (codes, then any enhancement parts), its check verified."""
        name = chunk.index.names[i]
        off, ln = chunk.index.offsets()[i], chunk.index.lengths[i]
        payload = bytes(self._data[off : off + ln])
        if record_check(name.encode("utf-8"), payload) != chunk.index.checks[i]:
            raise InvcompError(f"{self.path}: image {name!r} is damaged (checksum mismatch)")
        return payload

    def _decode(self, chunk: Chunk, i: int) -> np.ndarray:
        payload = self._checked(chunk, i)
        try:
            return decode_codes(payload[: len(payload) - chunk.index.parts_bytes(i)], self.header.latent_dim,
                                self._cum(chunk))
        except InvcompError:
            raise InvcompError(f"{self.path}: image {chunk.index.names[i]!r} is damaged (its codes do not decode)") from None

    def _parts(self, chunk: Chunk, i: int) -> tuple[bytes, ...]:
        n = chunk.index.parts_bytes(i)
        if not n:
            return ()
        try:
            return split_parts(self._checked(chunk, i)[-n:])
        except InvcompError:
            raise InvcompError(f"{self.path}: image {chunk.index.names[i]!r} is damaged (its parts do not parse)") from None

    def parts(self, name: str) -> tuple[bytes, ...]:
        """One image's enhancement parts (as in an .icz of version 2; none for most archives)."""
        found = self._locate(name)
        if found is None:
            raise InvcompError(f"{self.path}: no image named {name!r}")
        return self._parts(*found)

    def codes(self, name: str) -> np.ndarray:
        """One image's codes, read and decoded alone; an error naming it if it is damaged."""
        found = self._locate(name)
        if found is None:
            raise InvcompError(f"{self.path}: no image named {name!r}")
        return self._decode(*found)

    def original_size(self, name: str) -> tuple[int, int] | None:
        """The (width, height) the image had before fitting, when the archive stores one (version 2)."""
        found = self._locate(name)
        if found is None:
            raise InvcompError(f"{self.path}: no image named {name!r}")
        return found[0].index.size(found[1])

    def payload(self, name: str) -> tuple[bytes, tuple[int, ...]]:
        """One image's coded bytes (its record check verified) and the table they are coded under:
        what a rewrite under the same table copies instead of decoding and coding again."""
        found = self._locate(name)
        if found is None:
            raise InvcompError(f"{self.path}: no image named {name!r}")
        return self._checked(*found), self._cum(found[0])

    def records(self, skip_damaged: bool = False) -> Iterator[Record]:
        """Every record in stored order; a damaged one raises unless skip_damaged."""
        for chunk in self.chunks():
            for i, name in enumerate(chunk.index.names):
                try:
                    yield Record(name, self._decode(chunk, i), chunk.index.size(i), self._parts(chunk, i))
                except InvcompError:
                    if not skip_damaged:
                        raise

    def damaged(self) -> bool:
        """Whether any image is lost or damaged (damage to a spare copy alone does not count)."""
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
                except InvcompError:
                    problems.append(Problem(chunk.index.offsets()[i], "damaged image (its codes do not decode)", (name,)))
        if len(self) != len(self.names()):
            seen: set[str] = set()
            dup = sorted({n for n in self.names() if n in seen or seen.add(n)})
            problems.append(Problem(0, "duplicate image names", tuple(dup)))
        return problems


def open_archive(path: str | os.PathLike) -> ArchiveReader:
    """An ArchiveReader, with a plain error for a path that does not exist."""
    if not Path(path).exists():
        raise InvcompError(f"{path}: no such file")
    return ArchiveReader(path)


def chunk_data_intact(data, chunk: Chunk) -> bool:
    return zlib.crc32(data[chunk.offset : chunk.end - 4]) == struct.unpack_from("<I", data, chunk.end - 4)[0]
