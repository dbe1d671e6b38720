"""The .icza archive: many images' latent codes against one generator (docs/FORMAT.md).

Layout: archive header (twice) | two commit slots | segments. A segment (one `pack`
finalisation, one batch of a partial pack, or one batch of `add`) holds its header (twice,
with the entropy table) and chunks of up to CHUNK_RECORDS records. Every piece is a
*block* `magic(4) | length u32 | payload | crc32(magic..payload) u32`, so damage is found
by checksums and a reader can resynchronise on the next block magic.

Per record only its name and its codes are stored; codes are arithmetic-coded one record
at a time under one static table per segment (the N(0,1) prior, or the segment's measured
code histogram, whichever is cheaper), so every record decodes alone. The commit slots
make appending crash-safe: bytes past the committed end (an interrupted `add`) are ignored
by readers and cut off by the next writer.

Modules: `blocks` (framing, header, slots, names), `tables` (entropy tables), `chunks`
(records to bytes and back, pure), `reader` (ArchiveReader), `writer` (appends and
compacted rewrites: the only writing file I/O). This package names no model and imports
no torch; it may import `invcomp.formats` siblings, `invcomp.files` and `invcomp.errors`.
"""
from invcomp.formats.icza.blocks import (
    CHUNK_RECORDS,
    MAGIC_CHUNK,
    MAGIC_HEADER,
    MAGIC_SEGMENT,
    MAGIC_SLOT,
    MAX_CHUNK_RECORDS,
    MAX_LATENT,
    MAX_NAME_BYTES,
    SLOT_BYTES,
    TABLE_GAUSS,
    TABLE_HISTOGRAM,
    TABLE_NAMES,
    VERSION,
    ArchiveHeader,
    Slot,
    block,
    canonical_config,
    check_name,
    decode_header,
    encode_header,
    encode_slot,
)
from invcomp.formats.icza.chunks import (
    ChunkIndex,
    Record,
    archive_start,
    build_archive,
    decode_chunk_index,
    decode_codes,
    decode_names,
    encode_chunk,
    encode_chunk_payloads,
    encode_codes,
    encode_names,
    encode_segment,
    encode_segment_header,
)
from invcomp.formats.icza.reader import (
    ArchiveReader,
    Chunk,
    Problem,
    Segment,
    chunk_data_intact,
    open_archive,
)
from invcomp.formats.icza.stats import archive_stats
from invcomp.formats.icza.tables import (
    choose_table,
    histogram_cumulative,
    level_counts,
    table_cumulative,
    zeroth_order_entropy_bits,
)
from invcomp.formats.icza.writer import (
    append_segment,
    create_archive,
    exclusive,
    remove_stale_temporaries,
    write_compacted,
)

__all__ = [
    "CHUNK_RECORDS", "MAGIC_CHUNK", "MAGIC_HEADER", "MAGIC_SEGMENT", "MAGIC_SLOT", "MAX_CHUNK_RECORDS", "MAX_LATENT",
    "MAX_NAME_BYTES", "SLOT_BYTES", "TABLE_GAUSS", "TABLE_HISTOGRAM", "TABLE_NAMES", "VERSION", "ArchiveHeader", "Slot",
    "block", "canonical_config", "check_name", "decode_header", "encode_header", "encode_slot", "ChunkIndex", "Record",
    "archive_start", "build_archive", "decode_chunk_index", "decode_codes", "decode_names", "encode_chunk",
    "encode_chunk_payloads",
    "encode_codes", "encode_names", "encode_segment", "encode_segment_header", "ArchiveReader", "Chunk", "Problem",
    "Segment", "chunk_data_intact", "open_archive", "choose_table", "histogram_cumulative", "level_counts", "table_cumulative",
    "zeroth_order_entropy_bits", "append_segment", "archive_stats", "create_archive", "exclusive",
    "remove_stale_temporaries", "write_compacted",
]
