"""Byte accounting of an archive (what `pack`, `add` and `ls --json` report)."""
from __future__ import annotations

from invcomp.formats.icza.blocks import TABLE_NAMES
from invcomp.formats.icza.reader import ArchiveReader
from invcomp.formats.icza.tables import level_counts, zeroth_order_entropy_bits


def archive_stats(reader: ArchiveReader) -> dict:
    """Byte accounting of an archive: codes, index, framing, and the codes' zeroth-order entropy."""
    counts = level_counts((r.codes for r in reader.records()), reader.header.bits)
    chunks = list(reader.chunks())
    part_bytes = sum(sum(c.index.parts) for c in chunks)
    code_bytes = sum(sum(c.index.lengths) for c in chunks) - part_bytes
    n = len(reader)
    entropy_bytes = zeroth_order_entropy_bits(counts) / 8
    total = reader.slot.end
    return {"pictures": n, "bytes": total, "bytes_per_picture": round(total / n, 3) if n else None,
            "code_bytes": code_bytes, "code_bytes_per_picture": round(code_bytes / n, 3) if n else None,
            "entropy_bytes": round(entropy_bytes, 1),
            "code_bytes_over_entropy": round(code_bytes / entropy_bytes, 4) if entropy_bytes else None,
            "part_bytes": part_bytes, "other_bytes": total - code_bytes - part_bytes,
            "tables": [TABLE_NAMES[s.kind] for s in reader.segments]}
