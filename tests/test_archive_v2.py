"""Archives of version 2: each image's original size and enhancement parts; version 1 archives still read, append and merge."""
import dataclasses
import struct

import numpy as np
import pytest
import zstandard
from PIL import Image
from typer.testing import CliRunner

from invcomp.cli import app
from invcomp.errors import InvcompError
from invcomp.formats import icza as ar
from invcomp.formats.icza.blocks import _CHUNK

runner = CliRunner()
FAST = ["--steps", "4", "--device", "cpu"]
HEADER = ar.ArchiveHeader("ab" * 32, "test", 32, 8, 3.0, 4, ar.canonical_config({"steps": 1}))


def _run(args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r


def _chunk_index_raw(chunk: bytes) -> bytes:
    count, index_len, _ = _CHUNK.unpack_from(chunk, 8)
    return zstandard.ZstdDecompressor().decompress(chunk[8 + _CHUNK.size : 8 + _CHUNK.size + index_len])


def test_version_2_index_layout_is_exact():
    chunk = ar.encode_chunk_payloads(["a1", "a2"], [b"xy", b"z"], [None, (640, 480)])
    raw = _chunk_index_raw(chunk)
    checks = struct.pack("<HH", ar.chunks.record_check(b"a1", b"xy"), ar.chunks.record_check(b"a2", b"z"))
    # names (mode 3 = shared 2 bytes... here: "a1" front-coded from "", then "a2" as a number step), lengths, checks,
    # then version 2's columns: flags 0 and 1, then 640 and 480 as varints
    assert raw == ar.encode_names([b"a1", b"a2"]) + bytes([2, 1]) + checks + bytes([0, 1]) + b"\x80\x05" + b"\xe0\x03"
    v1 = _chunk_index_raw(ar.encode_chunk_payloads(["a1", "a2"], [b"xy", b"z"], version=1))
    assert v1 == raw[: len(raw) - 6]  # version 1: the same columns without flags and sizes
    with pytest.raises(InvcompError, match="version 1 archive cannot store original sizes or enhancement parts"):
        ar.encode_chunk_payloads(["a"], [b"x"], [(3, 4)], version=1)
    with pytest.raises(InvcompError, match="out of range"):
        ar.encode_chunk_payloads(["a"], [b"x"], [(70000, 4)])


def test_unknown_record_flags_and_bad_sizes_are_refused():
    def index(extra: bytes) -> bytes:
        raw = ar.encode_names([b"a"]) + bytes([1]) + struct.pack("<H", 7) + extra
        return zstandard.ZstdCompressor().compress(raw)

    assert ar.decode_chunk_index(index(bytes([1, 3, 4])), 1, 1)[3] == [(3, 4)]
    assert ar.decode_chunk_index(index(bytes([0])), 1, 1)[3] == [None]
    with pytest.raises(InvcompError, match="record flags 4"):
        ar.decode_chunk_index(index(bytes([4])), 1, 1)
    for bad in (bytes([1, 0, 4]), bytes([1, 3]), bytes([0, 9]), b""):
        with pytest.raises(InvcompError, match="corrupt"):
            ar.decode_chunk_index(index(bad), 1, 1)
    assert ar.decode_chunk_index(index(b""), 1, 1, version=1)[3] == [None]  # version 1 has no flags column


def test_both_versions_build_and_read(tmp_path):
    rng = np.random.default_rng(0)
    recs = [ar.Record(f"p{i}", rng.integers(0, 16, 8), (40 + i, 30) if i % 2 else None) for i in range(5)]
    path = tmp_path / "v2.icza"
    path.write_bytes(ar.build_archive(HEADER, recs))
    with ar.ArchiveReader(path) as r:
        assert r.header.version == 2
        assert [r.original_size(f"p{i}") for i in range(5)] == [None, (41, 30), None, (43, 30), None]
        assert [x.size for x in r.records()] == [None, (41, 30), None, (43, 30), None]
    old = dataclasses.replace(HEADER, version=1)
    path1 = tmp_path / "v1.icza"
    path1.write_bytes(ar.build_archive(old, [dataclasses.replace(x, size=None) for x in recs]))
    assert path1.read_bytes()[8] == 1
    with ar.ArchiveReader(path1) as r:
        assert r.header.version == 1 and r.header == HEADER  # the version is layout, not settings
        assert all(r.original_size(x.name) is None for x in recs)
    with pytest.raises(InvcompError, match="unsupported .icza version 3"):
        ar.decode_header(bytes([3]) + ar.encode_header(HEADER)[9:-4])


@pytest.fixture()
def mixed(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / "wide.png")
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / "square.png")
    return folder


def test_unpack_original_size_restores_each_image(tmp_path, tiny_weights, mixed):
    _run(["pack", mixed, "-o", tmp_path / "a.icza", "-m", tiny_weights, *FAST])
    with ar.ArchiveReader(tmp_path / "a.icza") as r:
        assert r.header.version == 2
        assert r.original_size("wide") == (40, 30) and r.original_size("square") is None
    _run(["unpack", tmp_path / "a.icza", "-o", tmp_path / "plain", "-m", tiny_weights, "--device", "cpu"])
    _run(["unpack", tmp_path / "a.icza", "-o", tmp_path / "orig", "-m", tiny_weights, "--device", "cpu", "--original-size"])
    size = lambda p: Image.open(p).size  # noqa: E731
    assert size(tmp_path / "plain" / "wide.png") == (32, 32) and size(tmp_path / "orig" / "wide.png") == (40, 30)
    assert size(tmp_path / "orig" / "square.png") == (32, 32)
    # the model-size pixels are those of a plain unpack; the resize only follows
    assert np.array_equal(np.asarray(Image.open(tmp_path / "plain" / "square.png")),
                          np.asarray(Image.open(tmp_path / "orig" / "square.png")))


def test_version_1_archives_take_additions_without_sizes_and_merge_to_version_2(tmp_path, tiny_weights, mixed):
    _run(["pack", mixed / "square.png", "-o", tmp_path / "new.icza", "-m", tiny_weights, *FAST])
    with ar.ArchiveReader(tmp_path / "new.icza") as r:  # the same archive as release 0.1.0 wrote it: version 1
        old = dataclasses.replace(r.header, version=1)
        (tmp_path / "old.icza").write_bytes(ar.build_archive(old, list(r.records())))
    r = _run(["add", tmp_path / "old.icza", mixed / "wide.png", "-m", tiny_weights, "--device", "cpu"])
    assert "version 1 archive, which stores no original sizes" in r.stderr
    with ar.ArchiveReader(tmp_path / "old.icza") as a:
        assert a.header.version == 1 and not a.damaged() and a.original_size("wide") is None
        before = {x.name: x.codes.tolist() for x in a.records()}
    r = _run(["unpack", tmp_path / "old.icza", "-o", tmp_path / "u", "-m", tiny_weights, "--device", "cpu",
              "--original-size"])
    assert "stores no original sizes" in r.stderr
    _run(["merge", tmp_path / "old.icza", "-o", tmp_path / "merged.icza"])
    with ar.ArchiveReader(tmp_path / "merged.icza") as m:
        assert m.header.version == 2 and {x.name: x.codes.tolist() for x in m.records()} == before


def test_parts_round_trip_through_chunks_compaction_and_a_new_table(tmp_path):
    rng = np.random.default_rng(5)
    recs = [ar.Record(f"p{i}", rng.integers(0, 16, 8), None, (b"\x00\x01\x02", b"z" * 130) if i % 2 else ()) for i in range(6)]
    path = tmp_path / "a.icza"
    path.write_bytes(ar.build_archive(HEADER, recs))
    with ar.ArchiveReader(path) as r:
        assert [r.parts(x.name) for x in recs] == [x.parts for x in recs]
        assert all(np.array_equal(r.codes(x.name), x.codes) for x in recs) and r.verify() == []
        stats = ar.archive_stats(r)
        assert stats["part_bytes"] == 3 * (1 + 3 + 2 + 130)  # varint lengths and the parts themselves
    # a rewrite under another table codes the codes again and keeps the parts byte for byte
    other = [ar.Record(f"q{i}", np.full(8, 3), None, ()) for i in range(40)]  # skews the histogram: a new table
    (tmp_path / "b.icza").write_bytes(ar.build_archive(HEADER, other))
    with ar.ArchiveReader(path) as a, ar.ArchiveReader(tmp_path / "b.icza") as b:
        ar.write_compacted(tmp_path / "m.icza", HEADER, [a, b])
    with ar.ArchiveReader(tmp_path / "m.icza") as m:
        assert m.verify() == [] and [m.parts(x.name) for x in recs] == [x.parts for x in recs]
        assert all(np.array_equal(m.codes(x.name), x.codes) for x in recs + other)
    with pytest.raises(InvcompError, match="cannot store original sizes or enhancement parts"):
        ar.build_archive(dataclasses.replace(HEADER, version=1), recs)


def test_pack_with_parts_decodes_as_fit_does_and_add_keeps_the_settings(tmp_path, tiny_weights, mixed):
    from invcomp.codec import Codec
    from invcomp.formats.icz import split_file

    _run(["pack", mixed, "-o", tmp_path / "a.icza", "-m", tiny_weights, *FAST, "--target-psnr", "30"])
    _run(["unpack", tmp_path / "a.icza", "-o", tmp_path / "u", "-m", tiny_weights, "--device", "cpu"])
    codec = Codec(str(tiny_weights), "cpu")
    with ar.ArchiveReader(tmp_path / "a.icza") as r:
        assert r.header.settings()["enhance"]["target_psnr"] == 30
        for name in r.names():
            parts = r.parts(name)
            assert parts  # random pictures: the tiny base is far below 30 dB
            data = codec.encode(r.codes(name), r.header.bits)
            header, base, _ = split_file(data)
            from invcomp.formats.icz import join_file

            pixels = codec.decompress(join_file(header, base, list(parts)))  # the same image as an .icz file
            assert np.array_equal(pixels, np.asarray(Image.open(tmp_path / "u" / f"{name}.png")))
    rng = np.random.default_rng(9)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "new.png")
    _run(["add", tmp_path / "a.icza", tmp_path / "new.png", "-m", tiny_weights, "--device", "cpu"])
    with ar.ArchiveReader(tmp_path / "a.icza") as r:
        assert r.parts("new")


def test_pack_with_a_budget_chooses_among_the_bases_fit_fits_at_its_depth(tmp_path, tiny_weights):
    """Each image's record is the file `fit` chooses with its target restricted to the archive's depth (bases fitted
    for SSIM, for parts and without the prior, each searched for parts), not parts on the SSIM-fitted base alone
    (release 0.5.3's archives), which it differs from here for some images."""
    from invcomp.codec import Codec
    from invcomp.enhance.choose import Base, Target, choose_enhanced
    from invcomp.formats.icz import join_file, split_file
    from invcomp.io.sources import list_sources, read_batches
    from invcomp.options import FitOptions

    budget, steps = 120, 20  # enough steps for the tails to part ways
    rng = np.random.default_rng(3)
    (tmp_path / "src").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "src" / f"{i}.png")
    _run(["pack", tmp_path / "src", "-o", tmp_path / "a.icza", "-m", tiny_weights, "--steps", steps, "--device", "cpu", "--bits", "3",
          "--max-bytes", budget, "--metric", "psnr"])
    codec = Codec(str(tiny_weights), "cpu")
    cfg = codec.config(steps=steps, bits=3)
    items = list_sources([tmp_path / "src"])
    pixels = [p for _, batch, _ in read_batches(items, 64, codec.resolution, False, lambda _: None) for p in batch]
    want = codec.choose_files(pixels, FitOptions(cfg, max_bytes=budget, metric="psnr", depths=(3,)))
    plain = codec.compress_batch(pixels, cfg)  # the SSIM-fitted 3-bit base, all that release 0.5.3 searched
    differ = 0
    with ar.ArchiveReader(tmp_path / "a.icza") as r:
        for it, x, choice, base in zip(items, pixels, want, plain):
            header, payload, _ = split_file(codec.encode(r.codes(it.name), 3))
            assert join_file(header, payload, list(r.parts(it.name))) == choice.candidate.data
            assert choice.candidate.size <= budget
            old = choose_enhanced(x, [Base(3, base, codec.decompress(base))], Target(max_bytes=budget, metric="psnr"))
            differ += old.candidate.data != choice.candidate.data
    assert differ > 0
    with pytest.raises(InvcompError, match="at least one base bit depth"):
        FitOptions(cfg, max_bytes=budget, depths=())
