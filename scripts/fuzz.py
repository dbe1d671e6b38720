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
import re
import resource
import signal
import sys
import time
import traceback
import zlib
from pathlib import Path

import numpy as np
import torch

from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.files import write_atomic
from invcomp.formats import varint
from invcomp.formats.icz import ENCODING_NAMES, Header, encode_file, unpack_header
from invcomp.models.nets import Generator, NetConfig, init_weights
from invcomp.models.weights import weights_bytes
from invcomp.models.zoo import Model

# Sizes for the original-size field: in range, at the limits, and past them.
EXTREME_SIDES = [0, 1, 2, 31, 32, 33, 127, 128, 255, 256, 4096, 8000, 8001, 16383, 16384, 65534, 65535, 65536,
                 (1 << 21) - 1]


def tiny_model(seed: int, latent: int) -> Model:
    cfg = NetConfig(resolution=32, latent_dim=latent, width=8)
    torch.manual_seed(seed)
    g = Generator(cfg)
    init_weights(g)
    return Model.from_bytes(f"fuzz{latent}", weights_bytes("generator", g.eval(), cfg))


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


def mutate(data: bytes, corpus: list[bytes], rnd: random.Random) -> tuple[str, bytes]:
    """One mutation of a valid file: (mutator name, new bytes)."""
    kind = rnd.choice(MUTATORS)
    return kind.__name__.lstrip("_"), kind(bytearray(data), corpus, rnd)


def _bitflip(d, corpus, rnd):
    for _ in range(rnd.choice([1, 1, 1, 2, 3, 8])):
        i = rnd.randrange(len(d) * 8)
        d[i // 8] ^= 1 << (i % 8)
    return bytes(d)


def _byte_set(d, corpus, rnd):
    for _ in range(rnd.choice([1, 1, 2, 4])):
        d[rnd.randrange(len(d))] = rnd.choice([0, 0xFF, 0x7F, 0x80, 0x01, rnd.randrange(256)])
    return bytes(d)


def _truncate(d, corpus, rnd):
    return bytes(d[: rnd.randrange(len(d))])


def _extend(d, corpus, rnd):
    return bytes(d) + bytes(rnd.randrange(256) for _ in range(rnd.choice([1, 1, 2, 7, 100, 5000])))


def _insert_delete(d, corpus, rnd):
    i = rnd.randrange(len(d))
    if rnd.random() < 0.5:
        return bytes(d[:i] + bytes([rnd.randrange(256)]) * rnd.randint(1, 4) + d[i:])
    return bytes(d[:i] + d[i + rnd.randint(1, 4) :])


def _splice(d, corpus, rnd):
    other = rnd.choice(corpus)
    return bytes(d[: rnd.randrange(len(d) + 1)]) + other[rnd.randrange(len(other) + 1) :]


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


MUTATORS = [_bitflip, _bitflip, _byte_set, _truncate, _extend, _insert_delete, _splice, _random_header,
            _flags_sweep, _size_extreme, _zstd_header, _random_payload, _random_bytes]


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


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
    outcomes = collections.Counter()
    by_mutator: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    messages = collections.Counter()
    findings = []
    slowest = 0.0
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        signal.signal(signal.SIGALRM, _alarm)
    t0 = time.perf_counter()
    for i in range(n):
        k = rnd.randrange(len(codecs))
        name, data = mutate(rnd.choice(corpora[k]), corpora[k], rnd)
        t = time.perf_counter()
        try:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, timeout)
            pixels = codecs[k].decompress(data, original_size=_restore_size(data, resize_limit))
            if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
                raise RuntimeError(f"decoded to {pixels.dtype} {pixels.shape}")
            outcome = "decoded"
        except InvcompError as e:
            outcome = "refused"
            messages[re.sub(r"\d+", "N", str(e).split("(")[0].strip())] += 1
        except _Timeout:
            outcome = "finding"
            findings.append({"mutator": name, "input": data.hex(), "error": f"took more than {timeout} s"})
        except Exception as e:  # noqa: BLE001 - any other exception is what we are looking for
            outcome = "finding"
            findings.append({"mutator": name, "input": data.hex(), "error": f"{type(e).__name__}: {e}",
                             "where": traceback.format_exc().strip().splitlines()[-3].strip()})
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
        slowest = max(slowest, time.perf_counter() - t)
        outcomes[outcome] += 1
        by_mutator[name][outcome] += 1
        if progress and (i + 1) % 5000 == 0:
            print(f"{i + 1}/{n} inputs, {dict(outcomes)}, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return {
        "format": "icz", "inputs": n, "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
        "outcomes": dict(outcomes), "findings_count": len(findings), "findings": findings[:50],
        "by_mutator": {k: dict(v) for k, v in sorted(by_mutator.items())},
        "refusal_messages": dict(messages.most_common(40)),
        "resize_limit": resize_limit,
        "seed_files": sum(len(c) for c in corpora), "seed_files_by_encoding": dict(seeds_by_encoding),
        "models": [{"latent": m.config.latent_dim, "width": m.config.width} for m in models],
        "slowest_input_seconds": round(slowest, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__,
    }


# --- .icza archives ----------------------------------------------------------------------------

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


def _reblock(d: bytearray, start: int, end: int) -> None:
    """Recompute the length and crc32 of the block d[start:end] (after its payload was edited)."""
    length = end - start - 12
    d[start + 4 : start + 8] = length.to_bytes(4, "little")
    d[end - 4 : end] = zlib.crc32(bytes(d[start : end - 4])).to_bytes(4, "little")


def _field_extreme(d, corpus, rnd):
    """A little-endian integer field inside a block's payload set to an extreme, crc32 fixed."""
    blocks = _blocks(bytes(d))
    if not blocks:
        return bytes(d)
    start, end = rnd.choice(blocks)
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
    blocks = _blocks(bytes(d))
    if not blocks:
        return bytes(d)
    start, end = rnd.choice(blocks)
    value = rnd.choice([0, 1, end - start - 13, end - start - 11, 1 << 20, (1 << 32) - 1])
    d[start + 4 : start + 8] = max(value, 0).to_bytes(4, "little")
    return bytes(d)


def _payload_edit_rechecked(d, corpus, rnd):
    """Random bytes flipped inside a block's payload, crc32 fixed (damage the checksums miss)."""
    blocks = _blocks(bytes(d))
    if not blocks:
        return bytes(d)
    start, end = rnd.choice(blocks)
    if end - start <= 12:
        return bytes(d)
    for _ in range(rnd.choice([1, 1, 2, 4])):
        i = start + 8 + rnd.randrange(end - start - 12)
        d[i] ^= 1 << rnd.randrange(8)
    _reblock(d, start, end)
    return bytes(d)


def _block_drop_or_dup(d, corpus, rnd):
    blocks = _blocks(bytes(d))
    if not blocks:
        return bytes(d)
    start, end = rnd.choice(blocks)
    if rnd.random() < 0.5:
        return bytes(d[:start] + d[end:])
    return bytes(d[:end] + d[start:end] + d[end:])


def _archive_random_bytes(d, corpus, rnd):
    n = rnd.choice([0, 3, 4, 12, 64, 300])
    return (b"ICZA" if rnd.random() < 0.7 else b"") + bytes(rnd.randrange(256) for _ in range(n))


ARCHIVE_MUTATORS = [_bitflip, _bitflip, _byte_set, _truncate, _extend, _insert_delete, _splice, _field_extreme,
                    _field_extreme, _length_extreme, _payload_edit_rechecked, _block_drop_or_dup, _archive_random_bytes]


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
        return _fuzz_loop(n, rnd, timeout, progress, "icza", lambda: rnd.choice(corpus), corpus, ARCHIVE_MUTATORS,
                          lambda data: (target.write_bytes(data), _read_archive(target, model))[1],
                          {"seed_files": len(corpus), "models": [{"latent": 16, "width": 8}], "seed": seed})


def _fuzz_loop(n, rnd, timeout, progress, fmt, pick, corpus, mutators, target, extra) -> dict:
    outcomes = collections.Counter()
    by_mutator: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    messages = collections.Counter()
    findings = []
    slowest = 0.0
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        signal.signal(signal.SIGALRM, _alarm)
    t0 = time.perf_counter()
    for i in range(n):
        kind = rnd.choice(mutators)
        name, data = kind.__name__.lstrip("_"), kind(bytearray(pick()), corpus, rnd)
        t = time.perf_counter()
        try:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, timeout)
            target(data)
            outcome = "decoded"
        except InvcompError as e:
            outcome = "refused"
            messages[re.sub(r"\d+", "N", re.sub(r"^\S*: ", "", str(e)).split("(")[0].strip())] += 1
        except _Timeout:
            outcome = "finding"
            findings.append({"mutator": name, "input": data.hex(), "error": f"took more than {timeout} s"})
        except Exception as e:  # noqa: BLE001 - any other exception is what we are looking for
            outcome = "finding"
            findings.append({"mutator": name, "input": data.hex()[:20000], "error": f"{type(e).__name__}: {e}",
                             "where": traceback.format_exc().strip().splitlines()[-3].strip()})
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
        slowest = max(slowest, time.perf_counter() - t)
        outcomes[outcome] += 1
        by_mutator[name][outcome] += 1
        if progress and (i + 1) % 5000 == 0:
            print(f"{i + 1}/{n} inputs, {dict(outcomes)}, {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return {
        "format": fmt, "inputs": n, "seconds": round(time.perf_counter() - t0, 1),
        "outcomes": dict(outcomes), "findings_count": len(findings), "findings": findings[:50],
        "by_mutator": {k: dict(v) for k, v in sorted(by_mutator.items())},
        "refusal_messages": dict(messages.most_common(40)), **extra,
        "slowest_input_seconds": round(slowest, 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch": torch.__version__,
    }


def combine(parts: list[dict]) -> dict:
    """One summary from several runs with different seeds (shards run in parallel)."""
    def add(key):
        out = collections.Counter()
        for p in parts:
            out.update(p[key])
        return dict(out)

    mutators = sorted({m for p in parts for m in p["by_mutator"]})
    return {
        "format": parts[0]["format"], "inputs": sum(p["inputs"] for p in parts), "shards": len(parts),
        "seeds": [p["seed"] for p in parts], "seconds": max(p["seconds"] for p in parts),
        "outcomes": add("outcomes"), "findings_count": sum(p["findings_count"] for p in parts),
        "findings": [f for p in parts for f in p["findings"]][:50],
        "by_mutator": {m: dict(sum((collections.Counter(p["by_mutator"].get(m, {})) for p in parts), collections.Counter()))
                       for m in mutators},
        "refusal_messages": dict(collections.Counter(add("refusal_messages")).most_common(40)),
        "seed_files": parts[0]["seed_files"], "models": parts[0]["models"],
        "slowest_input_seconds": max(p["slowest_input_seconds"] for p in parts),
        "peak_rss_mb": max(p["peak_rss_mb"] for p in parts), "torch": parts[0]["torch"],
    }


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
