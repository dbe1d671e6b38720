"""The .icza half of scripts/fuzz.py: real archives as seeds, block-aware mutations (hostile fields behind a
recomputed crc32) and everything `ls`, `verify` and `unpack` do with each input."""
from __future__ import annotations

import random
import zlib
from pathlib import Path

import numpy as np
import torch
from fuzzing import GENERIC_MUTATORS, fuzz_loop, tiny_model

from invcomp.errors import InvcompError
from invcomp.models.zoo import Model

_BLOCK_MAGICS = (b"ICZA", b"ICZM", b"ICZS", b"ICZC")
EXTREME_INTS = [0, 1, 2, 127, 128, 255, 256, 4095, 4096, 4097, 65535, 65536, 10**9, (1 << 31) - 1, 1 << 31,
                (1 << 32) - 1, 1 << 40, (1 << 63) - 1, (1 << 64) - 1]


def archive_corpus(model: Model, rng: np.random.Generator, folder: Path) -> list[bytes]:
    """Archives written by the real writers: build_archive (what pack writes) for several bit
    depths and chunk sizes, and a two-segment archive made with create_archive + append_segment."""
    from invcomp.formats import icza as ar

    n, r = model.config.latent_dim, model.config.latent_range
    names = ["a", "b/c", "img001", "img002", "img010", "photos/x9", "zé"]
    out = []
    for bits in (2, 3, 4, 8, 12):
        header = ar.ArchiveHeader(model.sha256, model.name, model.config.resolution, n, float(r), bits,
                                  ar.canonical_config({"bits": bits, "steps": 10}))
        top = (1 << bits) - 1
        records = [ar.Record(nm, rng.integers(0, top + 1, n) if i % 2 else
                             np.clip(np.round(rng.normal(top / 2, top / 8, n)), 0, top).astype(np.int64))
                   for i, nm in enumerate(names)]
        for chunk in (2, 128):
            out.append(ar.build_archive(header, records, chunk))
        path = folder / f"two{bits}.icza"
        ar.create_archive(path, header)
        ar.append_segment(path, ar.encode_segment(records[:3], bits, r, 2), 3)
        ar.append_segment(path, ar.encode_segment(records[3:], bits, r, 1), len(records) - 3)
        out.append(path.read_bytes())
    return out


def _blocks(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every well-formed block."""
    from invcomp.formats.icza.blocks import block_at

    found = []
    for magic in _BLOCK_MAGICS:
        pos = data.find(magic)
        while pos >= 0:
            blk = block_at(data, pos, magic)
            if blk:
                found.append((pos, blk[1]))
            pos = data.find(magic, pos + 1)
    return found


def _some_block(d: bytearray, rnd: random.Random) -> tuple[int, int] | None:
    """(start, end) of a well-formed block chosen at random, or None where there is none."""
    blocks = _blocks(bytes(d))
    return rnd.choice(blocks) if blocks else None


def _reblock(d: bytearray, start: int, end: int) -> None:
    """Recompute the length and crc32 of the block d[start:end] (after its payload was edited)."""
    length = end - start - 12
    d[start + 4 : start + 8] = length.to_bytes(4, "little")
    d[end - 4 : end] = zlib.crc32(bytes(d[start : end - 4])).to_bytes(4, "little")


def _field_extreme(d, corpus, rnd):
    """A little-endian integer field inside a block's payload set to an extreme, crc32 fixed."""
    if not (block := _some_block(d, rnd)):
        return bytes(d)
    start, end = block
    payload_len = end - start - 12
    width = rnd.choice([1, 2, 4, 8])
    if payload_len < width:
        return bytes(d)
    at = start + 8 + rnd.randrange(payload_len - width + 1)
    if rnd.random() < 0.5:  # the block's own fixed fields come first: aim there often
        at = start + 8 + rnd.choice([0, 4, 8, 12, 16, 20]) if payload_len >= 28 else at
        at = min(at, end - 4 - width)
    value = rnd.choice(EXTREME_INTS) & ((1 << (8 * width)) - 1)
    d[at : at + width] = value.to_bytes(width, "little")
    _reblock(d, start, end)
    return bytes(d)


def _length_extreme(d, corpus, rnd):
    """A block's u32 length set to an extreme (checksum left as it was)."""
    if not (block := _some_block(d, rnd)):
        return bytes(d)
    start, end = block
    value = rnd.choice([0, 1, end - start - 13, end - start - 11, 1 << 20, (1 << 32) - 1])
    d[start + 4 : start + 8] = max(value, 0).to_bytes(4, "little")
    return bytes(d)


def _payload_edit_rechecked(d, corpus, rnd):
    """Random bytes flipped inside a block's payload, crc32 fixed (damage the checksums miss)."""
    if not (block := _some_block(d, rnd)):
        return bytes(d)
    start, end = block
    if end - start <= 12:
        return bytes(d)
    for _ in range(rnd.choice([1, 1, 2, 4])):
        i = start + 8 + rnd.randrange(end - start - 12)
        d[i] ^= 1 << rnd.randrange(8)
    _reblock(d, start, end)
    return bytes(d)


def _block_drop_or_dup(d, corpus, rnd):
    if not (block := _some_block(d, rnd)):
        return bytes(d)
    start, end = block
    if rnd.random() < 0.5:
        return bytes(d[:start] + d[end:])
    return bytes(d[:end] + d[start:end] + d[end:])


def _archive_random_bytes(d, corpus, rnd):
    n = rnd.choice([0, 3, 4, 12, 64, 300])
    return (b"ICZA" if rnd.random() < 0.7 else b"") + bytes(rnd.randrange(256) for _ in range(n))


ARCHIVE_MUTATORS = [*GENERIC_MUTATORS, _field_extreme, _field_extreme, _length_extreme, _payload_edit_rechecked,
                    _block_drop_or_dup, _archive_random_bytes]


def _read_archive(path: Path, model: Model) -> int:
    """What ls, verify and unpack do with an archive; returns the pictures whose codes decode."""
    from invcomp.archive import codec_for
    from invcomp.formats import icza as ar

    with ar.ArchiveReader(path) as r:
        h = r.header
        h.settings()
        names = r.names()
        for name in names:
            r.record_bytes(name)
        problems = r.verify()  # decodes every record's codes
        decoded = []
        for name in names[:2]:  # and what unpack does, for two of them
            try:
                codes = r.codes(name)
            except InvcompError:
                continue
            if codes.shape != (h.latent_dim,) or codes.min() < 0 or codes.max() >= 1 << h.bits:
                raise RuntimeError(f"record {name!r} decoded to codes out of range")
            decoded.append(codes)
        if decoded:
            pixels = codec_for(h, model, "cpu").decode_codes(decoded[0][None], h.bits)[0]
            if pixels.shape != (h.resolution, h.resolution, 3) or pixels.dtype != np.uint8:
                raise RuntimeError(f"a picture decoded to {pixels.dtype} {pixels.shape}")
    with ar.ArchiveReader(path) as fresh:  # what `unpack NAME` does: a lookup before any full index read
        for name in names[:2] + ["no such image"]:
            try:
                fresh.codes(name)
            except InvcompError:
                pass
    return len(names) - len({n for p in problems for n in p.names})


def run_archive(n: int, seed: int, timeout: float = 10.0, progress: bool = False, folder: Path | None = None) -> dict:
    """Fuzz n archives; returns the summary (counts, findings)."""
    import tempfile

    torch.set_num_threads(1)
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    model = tiny_model(seed + 1, 16)
    base = Path(folder or ("/dev/shm" if Path("/dev/shm").is_dir() else tempfile.gettempdir()))
    with tempfile.TemporaryDirectory(dir=base, prefix="invcomp-fuzz-") as tmp:
        tmp = Path(tmp)
        corpus = archive_corpus(model, rng, tmp)
        target = tmp / "input.icza"
        for data in corpus:  # the seeds themselves must read back intact
            target.write_bytes(data)
            if _read_archive(target, model) != 7:
                raise RuntimeError("a seed archive does not read back")

        def read(data: bytes) -> int:
            target.write_bytes(data)
            return _read_archive(target, model)

        return fuzz_loop(n, rnd, timeout, progress, "icza", lambda: (rnd.choice(corpus), corpus, read), ARCHIVE_MUTATORS,
                         {"seed_files": len(corpus), "models": [{"latent": 16, "width": 8}], "seed": seed})
