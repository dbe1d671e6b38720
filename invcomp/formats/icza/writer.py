"""Writing .icza archives: crash-safe appends under a commit slot, and compacted rewrites."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where codes are handled, so that `ls` stays fast
    pass

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from glob import escape as glob_escape
from pathlib import Path
from typing import BinaryIO

from invcomp import files
from invcomp.errors import InvcompError
from invcomp.files import atomic_writer, fsync_dir, write_atomic
from invcomp.formats.icza.blocks import SLOT_BYTES, ArchiveHeader, Slot, encode_header, encode_slot, name_key
from invcomp.formats.icza.chunks import (
    CHUNK_RECORDS,
    archive_start,
    encode_chunk_payloads,
    encode_codes,
    encode_segment_header,
    parts_section,
)
from invcomp.formats.icza.reader import ArchiveReader
from invcomp.formats.icza.tables import choose_table, table_cumulative


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
    write_atomic(path, archive_start(header))
    fsync_dir(path)


def append_segment(path: Path, segment: bytes, records: int) -> None:
    """Append one segment and commit it: cut any uncommitted tail, write, fsync, then write
    the older commit slot with the next sequence number and fsync again. A crash before the
    slot write leaves the old commit in force; during it, the slot's crc32 fails and the
    other slot (the old commit) is used. A write error (a full disk) leaves the archive at
    its last commit: the slot is put back and the new bytes are cut off (best effort; readers
    ignore them anyway)."""
    with ArchiveReader(path, index=False) as reader:
        slot, slots_at, older = reader.slot, reader.slots_at, 1 - reader.current_slot
        old_slot = bytes(reader._data[slots_at + older * SLOT_BYTES : slots_at + (older + 1) * SLOT_BYTES])
    try:
        f = files.open_binary(path, "r+b", buffering=0)  # unbuffered: nothing left to flush on close
    except OSError as e:
        raise files.write_error(path, e, "the archive is unchanged") from None
    try:
        _append(f, segment, records, slot, slots_at, older)
    except OSError as e:
        _undo(f, slot, slots_at + older * SLOT_BYTES, old_slot)
        raise files.write_error(path, e, "the archive keeps its last commit") from None
    finally:
        try:
            f.close()
        except OSError:
            pass


def _append(f: BinaryIO, segment: bytes, records: int, slot: Slot, slots_at: int, older: int) -> None:
    f.truncate(slot.end)
    f.seek(slot.end)
    files.write_all(f, segment)
    os.fsync(f.fileno())
    new = Slot(slot.seq + 1, slot.end + len(segment), slot.segments + 1, slot.records + records)
    f.seek(slots_at + older * SLOT_BYTES)
    files.write_all(f, encode_slot(new))
    os.fsync(f.fileno())


def _undo(f: BinaryIO, slot: Slot, slot_at: int, old_slot: bytes) -> None:
    """After a failed append: the older slot's previous bytes back (the new slot may be half
    written, or written but not synced), then the file cut at the old committed end. Best effort:
    if this fails too, the checksums still make readers use the last commit."""
    try:
        f.seek(slot_at)
        files.write_all(f, old_slot)
        os.fsync(f.fileno())
        f.truncate(slot.end)
        os.fsync(f.fileno())
    except OSError:
        pass


def write_compacted(path: Path, header: ArchiveHeader, sources: Sequence[ArchiveReader],
                    chunk_records: int = CHUNK_RECORDS, progress: Callable[[int], None] | None = None) -> int:
    """One archive holding every record of `sources` in canonical (name) order, in one segment
    under one table: what pack finalises and merge writes. Written to a temporary file beside
    `path` and renamed into place. Memory holds names and locations, not the codes of all."""
    for src in sources:
        if src.damaged():
            raise InvcompError(f"{src.path}: archive is damaged; run `invcomp verify`")
    where: list[tuple[bytes, int, str, tuple[int, int] | None, int]] = []  # key, source, name, size, parts bytes
    import numpy as np

    counts = np.zeros(1 << header.bits, np.int64)
    for k, src in enumerate(sources):
        for rec in src.records():
            counts += np.bincount(rec.codes, minlength=1 << header.bits)
            where.append((name_key(rec.name), k, rec.name, rec.size, len(parts_section(rec.parts))))
    where.sort()
    for a, b in zip(where, where[1:]):
        if a[0] == b[0]:
            raise InvcompError(f"image name {a[2]!r} occurs twice ({sources[a[1]].path} and {sources[b[1]].path})")
    kind, table = choose_table(counts.tolist(), header.bits, header.latent_range)
    cum = table_cumulative(kind, table, header.bits, header.latent_range)
    _write_segment_file(path, header, sources, where, kind, table, cum, chunk_records, progress)
    return len(where)


def _payload(source: ArchiveReader, name: str, cum: tuple[int, ...]) -> bytes:
    """A record's bytes under `cum`: copied when its segment has that table (the coding is
    canonical, so that is exactly what coding its codes again would give), else coded again."""
    data, source_cum = source.payload(name)
    return data if source_cum == cum else encode_codes(source.codes(name), cum) + parts_section(source.parts(name))


def _write_segment_file(path: Path, header: ArchiveHeader, sources: Sequence[ArchiveReader], where: list,
                        kind: int, table: bytes, cum: tuple[int, ...], chunk_records: int,
                        progress: Callable[[int], None] | None) -> None:
    h = encode_header(header)
    start = 2 * len(h) + 2 * SLOT_BYTES
    with atomic_writer(path) as f:
        seg_header_len = len(encode_segment_header(0, 0, 0, kind, table))
        f.write(b"\0" * (start + seg_header_len))
        body, nchunks = 0, 0
        for i in range(0, len(where), chunk_records):
            part = where[i : i + chunk_records]
            data = encode_chunk_payloads([w[2] for w in part], [_payload(sources[w[1]], w[2], cum) for w in part],
                                         [w[3] for w in part], header.version, [w[4] for w in part])
            f.write(data)
            body += len(data)
            nchunks += 1
            if progress:
                progress(len(part))
        seg = encode_segment_header(len(where), nchunks, body, kind, table) if where else b""
        f.seek(0)
        f.write(h + h + encode_slot(Slot(1, start + len(seg) + body, 1 if where else 0, len(where)))
                + encode_slot(Slot(0, start, 0, 0)) + seg)
        if not where:
            f.truncate(start)
    fsync_dir(path)
