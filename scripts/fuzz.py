#!/usr/bin/env python
"""Mutation fuzzer for the .icz and .icza decoders: every input must decode or raise InvcompError.

    .venv/bin/python scripts/fuzz.py                      # 100,000 .icz inputs, seed 0 -> results/fuzz_icz.json
    .venv/bin/python scripts/fuzz.py --format icza        # 100,000 archives -> results/fuzz_icza.json
    .venv/bin/python scripts/fuzz.py -n 2000 --seed 1 --out /tmp/f.json

It builds valid .icz files (all three payload encodings, bit depths 2..12, with and without an
original size) for two small seeded generators, mutates them (bit flips, byte edits, truncation,
extension, splices, random headers, flags swept, size and zstd-header fields set to extremes,
random payloads) and runs each through the real decoding path, `Codec.decompress(data,
original_size=True)`: header, fingerprint check, payload decoding, generator, resize. The
generators are tiny (width 8) so that the run takes minutes; the bitstream path is the same as
for the pretrained models. Anything other than a decoded uint8 image or an InvcompError is a
finding; so is an input that takes longer than --timeout seconds. Findings are saved (hex) in
the JSON summary.

For archives (--format icza) the corpus is real archives (one and two segments, several chunks,
bit depths 2..12, names with folders and number runs) written by the archive writers; besides
the generic mutations, blocks are rewritten with a hostile field (counts, lengths, offsets set
to extremes) *and a recomputed crc32*, so the parser sees hostile sizes that pass the checksums.
Each input is opened with ArchiveReader and goes through everything `ls`, `verify` and `unpack`
do: names, record sizes, verify(), every record's codes, the generator check and decoding of
a few pictures with the tiny generator.
"""
from __future__ import annotations

import argparse
import collections
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch
from fuzz_archive import run_archive
from fuzzing import GENERIC_MUTATORS, combine, fuzz_loop, tiny_model

from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.files import write_atomic
from invcomp.formats import varint
from invcomp.formats.icz import ENCODING_NAMES, Header, encode_file, unpack_header
from invcomp.models.zoo import Model

# Sizes for the original-size field: in range, at the limits, and past them.
EXTREME_SIDES = [0, 1, 2, 31, 32, 33, 127, 128, 255, 256, 4096, 8000, 8001, 16383, 16384, 65534, 65535, 65536,
                 (1 << 21) - 1]


def seed_corpus(model: Model, rng: np.random.Generator) -> list[bytes]:
    """Valid files for this model: every bit depth, codes drawn three ways (so that each payload
    encoding wins somewhere), with and without an original size."""
    n, r = model.config.latent_dim, model.config.latent_range
    out = []
    for bits in range(2, 13):
        top = (1 << bits) - 1
        draws = [
            rng.integers(0, top + 1, n),  # uniform: raw wins
            np.clip(np.round((np.clip(rng.normal(0, 1, n), -r, r) + r) / (2 * r / top)), 0, top).astype(np.int64),  # gauss
            np.full(n, top // 2, dtype=np.int64),  # constant: zstd wins on long latents
        ]
        for codes in draws:
            for size in (None, (640, 480), (1, 65535)):
                out.append(encode_file(Header(model.fingerprint, bits, 0, size), codes, r))
    return out + enhanced_seeds(model, out, rng)


def enhanced_seeds(model: Model, plain: list[bytes], rng: np.random.Generator) -> list[bytes]:
    """Version 2 files: some of the plain files with one or two enhancement parts (8x8 and 4x4 blocks)
    coding a random picture against what the file decodes to."""
    from invcomp.codec import Codec
    from invcomp.enhance.choose import layered
    from invcomp.formats.icz import with_parts

    codec = Codec(model, "cpu")
    out = []
    for data in plain[1::9]:
        target = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        layers, step, block = int(rng.integers(1, 3)), int(rng.integers(24, 72)), int(rng.choice([4, 8]))
        found, _ = layered(target, codec.decompress(data), step, layers, block)
        out.append(with_parts(data, found))
    return out


def _random_header(d, corpus, rnd):
    """A valid file's payload behind a fresh header: right magic/version/fingerprint most of the
    time, then a random flags byte and a random (maybe malformed) size field."""
    header, pos = unpack_header(bytes(d))
    head = bytearray(d[:6])
    if rnd.random() < 0.1:
        head[rnd.randrange(6)] = rnd.randrange(256)
    size = b""
    flags = rnd.randrange(256)
    if flags & 0x40:
        size = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 7)))
    return bytes(head) + bytes([flags]) + size + bytes(d[pos:])


def _flags_sweep(d, corpus, rnd):
    d[6] = rnd.randrange(256)
    return bytes(d)


def _size_extreme(d, corpus, rnd):
    """The original-size field set to extremes, also in over-long or non-minimal varints."""
    header, pos = unpack_header(bytes(d))
    w, h = rnd.choice(EXTREME_SIDES), rnd.choice(EXTREME_SIDES)
    field = varint.encode(w) + varint.encode(h)
    if rnd.random() < 0.2:  # non-minimal: a trailing continuation group
        field = bytes([field[0] | 0x80, 0x00]) + field[1:]
    flags = d[6] | 0x40
    return bytes(d[:6]) + bytes([flags]) + field + bytes(d[pos:])


def _zstd_header(d, corpus, rnd):
    """For a zstd payload: the frame header descriptor and window byte set to extremes, or a
    forged content size (a one-shot decompress would allocate what it declares)."""
    header, pos = unpack_header(bytes(d))
    payload = bytearray(d[pos:])
    if not payload:
        return bytes(d)
    choice = rnd.randrange(3)
    if choice == 0:
        payload[0] = rnd.choice([0x00, 0x20, 0x40, 0x60, 0x80, 0xA0, 0xC0, 0xE0, rnd.randrange(256)])
    elif choice == 1 and len(payload) > 1:
        payload[1] = rnd.choice([0x00, 0x08, 0x50, 0x88, 0xF8, 0xFF, rnd.randrange(256)])
    else:  # single-segment frame with an 8-byte content size, the rest of the frame kept
        size = rnd.choice([0, 1, 255, 1 << 20, 1 << 31, 1 << 40, (1 << 64) - 1])
        payload = bytearray([0xE0]) + size.to_bytes(8, "little") + payload[2:]
    return bytes(d[:pos]) + bytes(payload)


def _random_payload(d, corpus, rnd):
    header, pos = unpack_header(bytes(d))
    n = rnd.choice([0, 1, 2, 5, pos, len(d) - pos, len(d) - pos + 1, 300])
    return bytes(d[:pos]) + bytes(rnd.randrange(256) for _ in range(max(n, 0)))


def _random_bytes(d, corpus, rnd):
    n = rnd.choice([0, 1, 2, 6, 7, 8, 20, 64])
    prefix = b"IC\x01" if rnd.random() < 0.7 else b""
    return prefix + bytes(rnd.randrange(256) for _ in range(n))


MUTATORS = [*GENERIC_MUTATORS, _random_header, _flags_sweep, _size_extreme, _zstd_header, _random_payload, _random_bytes]


def _restore_size(data: bytes, limit: int | None) -> bool:
    """Whether to decode with original_size=True: always, unless a limit on the output's pixels is
    given (the test suite's short run skips the slow multi-megapixel resizes; the header's own
    size checks run either way)."""
    if limit is None:
        return True
    try:
        size = unpack_header(data)[0].original_size
    except InvcompError:
        return True
    return size is None or size[0] * size[1] <= limit


def run(n: int, seed: int, timeout: float = 10.0, progress: bool = False, resize_limit: int | None = None) -> dict:
    """Fuzz n inputs; returns the summary (counts, findings)."""
    torch.set_num_threads(1)
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    models = [tiny_model(seed, 8), tiny_model(seed + 1, 96)]
    codecs = [Codec(m, "cpu") for m in models]
    corpora = [seed_corpus(m, rng) for m in models]
    seeds_by_encoding = collections.Counter(ENCODING_NAMES[unpack_header(f)[0].encoding] for c in corpora for f in c)
    for c, codec in zip(corpora, codecs):  # the seeds themselves must decode
        for f in c:
            codec.decompress(f)

    def draw():
        k = rnd.randrange(len(codecs))

        def decode(data: bytes) -> None:
            pixels = codecs[k].decompress(data, original_size=_restore_size(data, resize_limit))
            if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
                raise RuntimeError(f"decoded to {pixels.dtype} {pixels.shape}")
        return rnd.choice(corpora[k]), corpora[k], decode

    return fuzz_loop(n, rnd, timeout, progress, "icz", draw, MUTATORS,
                     {"seed": seed, "resize_limit": resize_limit, "seed_files": sum(len(c) for c in corpora),
                      "seed_files_by_encoding": dict(seeds_by_encoding),
                      "models": [{"latent": m.config.latent_dim, "width": m.config.width} for m in models]})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="inputs to try")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per input before it counts as a hang")
    ap.add_argument("--format", choices=["icz", "icza"], default="icz")
    ap.add_argument("--combine", type=Path, nargs="+", help="merge the JSON summaries of several runs (shards) into --out")
    ap.add_argument("--out", type=Path, default=None, help="JSON summary (default results/fuzz_FORMAT.json)")
    args = ap.parse_args(argv)
    args.out = args.out or Path(f"results/fuzz_{args.format}.json")
    if args.combine:
        summary = combine([json.loads(p.read_text()) for p in args.combine])
    elif args.format == "icz":
        summary = run(args.n, args.seed, args.timeout, progress=True)
    else:
        summary = run_archive(args.n, args.seed, args.timeout, progress=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out, (json.dumps(summary, indent=2) + "\n").encode())
    o = summary["outcomes"]
    print(f"{summary['inputs']} inputs in {summary['seconds']} s: {o.get('decoded', 0)} decoded, "
          f"{o.get('refused', 0)} refused with InvcompError, {o.get('finding', 0)} findings; "
          f"slowest {summary['slowest_input_seconds']} s, peak RSS {summary['peak_rss_mb']} MB -> {args.out}")
    for f in summary["findings"][:10]:
        print(f"  finding ({f['mutator']}): {f['error']}  input {f['input'][:80]}")
    return 1 if summary["findings_count"] else 0


if __name__ == "__main__":
    sys.exit(main())
