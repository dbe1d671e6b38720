"""The .icza archive: format, pack/unpack/ls/verify/add/merge, shards, crash safety, damage."""
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from invcomp.cli import app
from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.formats import icza as ar
from invcomp.inversion.invert import InversionConfig

runner = CliRunner()
STEPS = 4
FAST = ["--steps", str(STEPS), "--device", "cpu"]


def _images(n, seed=0, size=32):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.fixture()
def npz(tmp_path):
    path = tmp_path / "set.npz"
    np.savez_compressed(path, images=_images(12), filenames=np.array([f"pic_{i:03d}.png" for i in range(12)]))
    return path


def _run(args, code=0):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == code, r.output
    return r


def _pack(out, sources, weights, *extra):
    return _run(["pack", *sources, "-o", out, "-m", weights, "--batch-size", "5", *FAST, *extra])


def _contents(path):
    with ar.ArchiveReader(path) as r:
        return {rec.name: tuple(rec.codes.tolist()) for rec in r.records()}


# --- the format, pure -----------------------------------------------------------------------

HEADER = ar.ArchiveHeader("ab" * 32, "test", 32, 8, 3.0, 4, ar.canonical_config({"steps": 1}))


def _records(n, seed=0, dim=8, bits=4):
    rng = np.random.default_rng(seed)
    codes = np.clip(np.round(rng.normal(7.5, 2.5, (n, dim))), 0, 2**bits - 1).astype(np.int64)
    return [ar.Record(f"dir/img_{i:04d}", c) for i, c in enumerate(codes)]


def test_build_and_read_back(tmp_path):
    recs = _records(300)
    data = ar.build_archive(HEADER, recs[::-1], chunk_records=64)
    assert data[:4] == b"ICZA" and data[8] == ar.VERSION
    h = ar.encode_header(HEADER)
    assert data[: 2 * len(h)] == h + h  # the header is stored twice
    path = tmp_path / "a.icza"
    path.write_bytes(data)
    with ar.ArchiveReader(path) as r:
        assert r.header == HEADER and not r.problems and r.tail == 0
        assert r.names() == sorted(x.name for x in recs)  # canonical order, whatever the input order
        assert len(r.segments) == 1 and len(r.segments[0].chunks) == 5
        for rec in recs:
            assert np.array_equal(r.codes(rec.name), rec.codes)
        assert r.verify() == []


def test_histogram_table_is_used_when_cheaper_and_codes_near_entropy():
    rng = np.random.default_rng(1)
    codes = np.where(rng.random((2000, 8)) < 0.9, 3, rng.integers(0, 16, (2000, 8)))  # far from N(0,1)
    counts = ar.level_counts(codes, 4)
    kind, table = ar.choose_table(counts.tolist(), 4, 3.0)
    assert kind == ar.TABLE_HISTOGRAM
    cum = ar.table_cumulative(kind, table, 4, 3.0)
    coded = sum(len(ar.encode_codes(c, cum)) for c in codes)
    entropy = ar.zeroth_order_entropy_bits(counts) / 8
    assert entropy < coded < entropy + 2000  # at most about a byte per record of termination
    assert ar.choose_table([0] * 16, 4, 3.0)[0] == ar.TABLE_GAUSS
    cum = ar.histogram_cumulative([5, 0, 1, 0])
    assert cum[-1] == 2**16 and all(b > a for a, b in zip(cum, cum[1:]))


@pytest.mark.parametrize("name", ["", "/abs", "a/../b", "a//b", "a\\b", "x\x00y", "./a"])
def test_bad_names_are_refused(name):
    with pytest.raises(InvcompError):
        ar.check_name(name)


def test_untrusted_bytes_give_clean_errors(tmp_path):
    data = ar.build_archive(HEADER, _records(40), chunk_records=16)
    path = tmp_path / "x.icza"
    rng = np.random.default_rng(0)
    for trial in range(300):
        b = bytearray(data)
        if trial % 3 == 0:
            b = b[: rng.integers(0, len(b))]
        else:
            for _ in range(rng.integers(1, 4)):
                b[rng.integers(0, len(b))] = rng.integers(0, 256)
        path.write_bytes(bytes(b))
        try:
            with ar.ArchiveReader(path) as r:
                r.verify()
                list(r.records(skip_damaged=True))
        except InvcompError:
            pass


def test_declared_sizes_are_checked_before_use(tmp_path):
    data = bytearray(ar.build_archive(HEADER, _records(20)))
    start = data.index(ar.MAGIC_SEGMENT)
    for k in (0, 1):  # both copies of the segment header claim a huge body
        pos = data.index(ar.MAGIC_SEGMENT, start + k)
        (length,) = struct.unpack_from("<I", data, pos + 4)
        payload = bytearray(data[pos + 8 : pos + 8 + length])
        struct.pack_into("<Q", payload, 8, 1 << 60)
        data[pos : pos + 12 + length] = ar.block(ar.MAGIC_SEGMENT, bytes(payload))
        start = pos + 1
    path = tmp_path / "big.icza"
    path.write_bytes(bytes(data))
    with ar.ArchiveReader(path) as r:
        assert len(r) == 0 and any("more data than" in p.message for p in r.problems)
    path.write_bytes(b"ICZA" + struct.pack("<I", 0xFFFFFFF0) + b"\0" * 20)
    with pytest.raises(InvcompError, match="damaged or truncated"):
        ar.ArchiveReader(path)
    path.write_bytes(b"PNG not an archive")
    with pytest.raises(InvcompError, match="not an invcomp archive"):
        ar.ArchiveReader(path)


def test_damaged_copies_and_commit_slots_fall_back(tmp_path):
    data = bytearray(ar.build_archive(HEADER, _records(20)))
    h = len(ar.encode_header(HEADER))
    data[10] ^= 0xFF  # first header copy
    seg = data.index(ar.MAGIC_SEGMENT)
    data[seg + 9] ^= 0xFF  # first segment header copy
    path = tmp_path / "a.icza"
    path.write_bytes(bytes(data))
    with ar.ArchiveReader(path) as r:
        assert r.header == HEADER and len(r) == 20 and not r.damaged()
        assert {p.message for p in r.problems} == {"first copy of the archive header is damaged",
                                                   "first copy of a segment header is damaged"}
    # The current commit slot damaged: the older commit (an empty archive) is in force.
    data = bytearray(ar.build_archive(HEADER, _records(20)))
    data[2 * h + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with ar.ArchiveReader(path) as r:
        assert len(r) == 0 and r.tail > 0


# --- pack, unpack, ls --------------------------------------------------------------------------

def test_pack_unpack_equals_single_file_decoding(tmp_path, tiny_weights, npz):
    out = tmp_path / "a.icza"
    r = _pack(out, [npz], tiny_weights, "--json")
    report = json.loads(r.stdout)
    assert report["pictures"] == 12 and report["bytes"] == out.stat().st_size
    assert not (tmp_path / "a.icza.partial").exists()
    _run(["unpack", out, "-o", tmp_path / "png", "-m", tiny_weights, "--device", "cpu"])
    codec = Codec(str(tiny_weights), "cpu")
    images = _images(12)
    files = codec.compress_batch(list(images), InversionConfig(bits=4, steps=STEPS), batch_size=3)
    for i, data in enumerate(files):
        png = np.asarray(Image.open(tmp_path / "png" / f"pic_{i:03d}.png"))
        assert np.array_equal(png, codec.decompress(data)), i
    r = _run(["ls", out, "--json"])
    listing = json.loads(r.stdout)
    assert [p["name"] for p in listing["pictures_list"]] == [f"pic_{i:03d}" for i in range(12)]
    assert listing["bits"] == 4 and listing["settings"]["steps"] == STEPS


def test_archive_settings_carry_a_prior_schedule_and_leave_an_empty_one_out(tiny_weights):
    from invcomp.archive import config_of, header_for

    codec = Codec(str(tiny_weights), "cpu")
    plain = InversionConfig(bits=4, steps=STEPS)
    header = header_for(codec, plain)  # its settings are the JSON the file stores
    assert "prior_weights" not in header.settings() and config_of(header) == plain  # as releases before 0.4.1 wrote
    scheduled = InversionConfig(bits=4, steps=STEPS, prior_weight=0.035, prior_weights=((5, 0.0), (4, 0.01)))
    header = header_for(codec, scheduled)
    assert header.settings()["prior_weights"] == [[4, 0.01], [5, 0.0]]
    assert config_of(header) == scheduled  # what `add` fits new images with


def test_unpack_one_image_by_name(tmp_path, tiny_weights, npz):
    out = tmp_path / "a.icza"
    _pack(out, [npz], tiny_weights)
    _run(["unpack", out, "pic_007", "-o", tmp_path / "one", "-m", tiny_weights, "--device", "cpu"])
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["pic_007.png"]
    r = runner.invoke(app, ["unpack", str(out), "nope", "-m", str(tiny_weights)])
    assert r.exit_code == 2 and "no image named 'nope'" in r.stderr


def test_add_and_merge_equal_a_single_pack(tmp_path, tiny_weights):
    folder = tmp_path / "imgs"
    (folder / "b").mkdir(parents=True)
    for i, im in enumerate(_images(9, seed=3)):
        Image.fromarray(im).save(folder / ("b" if i % 2 else "") / f"{i}.png")
    whole = tmp_path / "whole.icza"
    _pack(whole, [folder], tiny_weights)
    first = tmp_path / "first.icza"
    _pack(first, [folder / "b"], tiny_weights)  # names "1", "3", ... (relative to the folder given)
    _run(["add", first, *sorted(folder.glob("*.png")), "--device", "cpu", "-m", tiny_weights])
    added = _contents(first)
    single = _contents(whole)
    assert {k.split("/")[-1]: v for k, v in single.items()} == added
    with ar.ArchiveReader(first) as r:
        assert len(r.segments) == 2  # the first pack's segment untouched, one more appended
    # merge of the shards is byte-identical to the single pack
    shards = []
    for i in (1, 2, 3):
        s = tmp_path / f"s{i}.icza"
        _pack(s, [folder], tiny_weights, "--shard", f"{i}/3")
        shards.append(s)
    assert sum(len(_contents(s)) for s in shards) == 9 and all(_contents(s) for s in shards)
    names = [p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.png")]
    empty_shard = next(k for k in range(1, 1000) if all(zlib.crc32(n.encode()) % 999 != k - 1 for n in names))
    empty = tmp_path / "empty.icza"
    r = _pack(empty, [folder], tiny_weights, "--shard", f"{empty_shard}/999")
    assert "no images" in r.stderr and _contents(empty) == {}
    shards.append(empty)
    merged = tmp_path / "merged.icza"
    _run(["merge", *shards, "-o", merged])
    assert merged.read_bytes() == whole.read_bytes()
    r = runner.invoke(app, ["merge", str(shards[0]), str(shards[0]), "-o", str(tmp_path / "dup.icza")])
    assert r.exit_code == 2 and "occurs twice" in r.stderr


def test_add_refuses_duplicates_unless_skipped_and_cuts_a_torn_tail(tmp_path, tiny_weights, npz):
    out = tmp_path / "a.icza"
    _pack(out, [npz], tiny_weights)
    r = runner.invoke(app, ["add", str(out), str(npz), "-m", str(tiny_weights), *FAST[2:]])
    assert r.exit_code == 2 and "already holds an image named 'pic_000' (and 11 more)" in r.stderr
    before = out.read_bytes()
    with open(out, "ab") as f:  # what an add killed mid-write leaves: bytes past the commit
        f.write(b"ICZS" + b"\x07" * 50)
    with ar.ArchiveReader(out) as rd:
        assert rd.tail == 54 and len(rd) == 12 and not rd.problems
    r = _run(["verify", out])
    assert "uncommitted" in r.stdout
    png = tmp_path / "new.png"
    Image.fromarray(_images(1, seed=9)[0]).save(png)
    _run(["add", out, png, "-m", tiny_weights, *FAST[2:]])
    data = out.read_bytes()
    assert data[len(before):].startswith(b"ICZS") and b"\x07" * 50 not in data
    assert len(_contents(out)) == 13


# --- damage -------------------------------------------------------------------------------------

def test_flipped_byte_names_the_record_and_others_decode(tmp_path, tiny_weights, npz):
    out = tmp_path / "a.icza"
    _pack(out, [npz], tiny_weights)
    with ar.ArchiveReader(out) as r:
        chunk = next(r.chunks())
        victim = chunk.index.names[4]
        offset = chunk.index.offsets()[4]
    data = bytearray(out.read_bytes())
    data[offset] ^= 0x01
    out.write_bytes(bytes(data))
    r = _run(["verify", out, "--json"], code=1)
    report = json.loads(r.stdout)
    assert report["damaged"] == [victim] and report["lost_unnamed"] == 0 and not report["ok"]
    r = runner.invoke(app, ["unpack", str(out), "-o", str(tmp_path / "png"), "-m", str(tiny_weights), "--device", "cpu"])
    assert r.exit_code == 2 and victim in r.stderr.splitlines()[-1]
    assert len(list((tmp_path / "png").iterdir())) == 11
    assert not (tmp_path / "png" / f"{victim}.png").exists()


def test_damaged_chunk_index_loses_only_that_chunk(tmp_path):
    recs = _records(50)
    data = bytearray(ar.build_archive(HEADER, recs, chunk_records=10))
    chunks = [i for i in range(len(data)) if data[i : i + 4] == ar.MAGIC_CHUNK]
    data[chunks[2] + 8 + 12 + 3] ^= 0xFF  # inside the third chunk's index
    path = tmp_path / "a.icza"
    path.write_bytes(bytes(data))
    with ar.ArchiveReader(path) as r:
        assert len(r) == 40
        assert sum(p.lost for p in r.verify()) == 10
        assert all(np.array_equal(r.codes(x.name), x.codes) for x in recs if x.name in r)


# --- crash safety -------------------------------------------------------------------------------

def _partial_ok(partial: Path) -> int:
    """Images in a partial archive, which must be valid (or absent: -1)."""
    if not partial.exists():
        return -1
    with ar.ArchiveReader(partial) as r:
        assert not r.damaged() and not r.verify()
        return len(r)


@pytest.mark.slow
def test_pack_killed_mid_way_resumes_to_the_same_bytes(tmp_path, tiny_weights):
    src = tmp_path / "many.npz"
    np.savez_compressed(src, images=_images(40, seed=5))
    out, partial = tmp_path / "k.icza", tmp_path / "k.icza.partial"
    args = [sys.executable, "-m", "invcomp", "pack", str(src), "-o", str(out), "-m", str(tiny_weights),
            "--steps", "40", "--batch-size", "2", "--device", "cpu", "--resume"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def start():
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # 1. killed early: during start-up or while creating the partial -> nothing, or a valid partial
    proc = start()
    deadline = time.time() + 60
    while time.time() < deadline and not partial.exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and _partial_ok(partial) < 40  # -1: no partial; else a valid one
    # 2. killed mid-way, after a few committed batches -> a valid partial of those batches
    proc = start()
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            with ar.ArchiveReader(partial) as r:
                if len(r) >= 6:
                    break
        except InvcompError:
            pass  # being created
        time.sleep(0.01)
    assert proc.poll() is None, "pack finished before it could be killed; give it more work"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    done = _partial_ok(partial)
    assert 6 <= done < 40
    # 3. resumed: completes to the bytes of an uninterrupted pack (made with another batch size)
    r = _run(["pack", src, "-o", out, "-m", tiny_weights, "--steps", "40", "--batch-size", "4", "--device", "cpu",
              "--resume"])
    assert "resuming" in r.stderr and not partial.exists()
    assert not list(tmp_path.glob(".k.icza*"))  # no temporaries left either
    fresh = tmp_path / "fresh.icza"
    _run(["pack", src, "-o", fresh, "-m", tiny_weights, "--steps", "40", "--batch-size", "7", "--device", "cpu"])
    assert out.read_bytes() == fresh.read_bytes()


def test_pack_refuses_to_clobber_and_resume_checks_settings(tmp_path, tiny_weights, npz):
    out = tmp_path / "a.icza"
    partial = tmp_path / "a.icza.partial"
    ar.create_archive(partial, ar.ArchiveHeader("cd" * 32, "x", 32, 8, 3.0, 4, "{}"))
    r = runner.invoke(app, ["pack", str(npz), "-o", str(out), "-m", str(tiny_weights), *FAST])
    assert r.exit_code == 2 and "--resume" in r.stderr
    r = runner.invoke(app, ["pack", str(npz), "-o", str(out), "-m", str(tiny_weights), *FAST, "--resume"])
    assert r.exit_code == 2 and "other settings" in r.stderr
    partial.unlink()
    _pack(out, [npz], tiny_weights)
    r = runner.invoke(app, ["pack", str(npz), "-o", str(out), "-m", str(tiny_weights), *FAST])
    assert r.exit_code == 2 and "exists" in r.stderr


# --- edge cases ----------------------------------------------------------------------------------

def _fails(args, match):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 2 and "Traceback" not in r.output
    lines = [line for line in r.stderr.splitlines() if line.startswith("invcomp: error:")]
    assert len(lines) == 1 and match in lines[0], r.stderr
    return r


def test_edge_cases(tmp_path, tiny_weights):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "e.icza"
    _fails(["pack", empty, "-o", out, "-m", tiny_weights, *FAST], "no images found")
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        Image.fromarray(_images(1)[0]).save(tmp_path / d / "same.png")
    _fails(["pack", tmp_path / "x" / "same.png", tmp_path / "y" / "same.png", "-o", out, "-m", tiny_weights, *FAST],
           "two images would be named 'same'")
    bad = tmp_path / "x" / "broken.png"
    bad.write_bytes(b"not a png at all")
    _fails(["pack", tmp_path / "x", "-o", out, "-m", tiny_weights, *FAST], "broken.png: not ")
    assert not out.exists()
    big = tmp_path / "x" / "big.png"
    Image.fromarray(_images(1, size=48)[0]).save(big)
    r = _run(["pack", tmp_path / "x", "-o", out, "-m", tiny_weights, *FAST, "--skip-unreadable"])
    assert "skipped" in r.stderr and "broken.png" in r.stderr
    assert "48x48 centre-cropped and resized to 32x32" in r.stderr
    assert sorted(_contents(out)) == ["big", "same"]
    _fails(["pack", tmp_path / "x", "-o", tmp_path / "s.icza", "-m", tiny_weights, "--shard", "4/3"], "--shard")
    _fails(["ls", tmp_path / "nothing.icza"], "no such file")
    _fails(["verify", big], "not an invcomp archive")


def test_name_coding_round_trips():
    names = sorted([b"a", b"a1", b"a2", b"a10", b"image_00037", b"image_00041", b"image_00042", b"image_99999",
                    b"img_7", b"img_8x", b"x/9", b"x/10", b"\xc3\xa9t\xc3\xa9_01", b"\xc3\xa9t\xc3\xa9_02",
                    b"n" + b"1" * 20, b"n" + b"1" * 19 + b"2"])
    raw = ar.encode_names(names)
    assert ar.decode_names(raw + b"rest", len(names)) == (names, len(raw))
    steps = ar.encode_names([b"image_00037", b"image_00041", b"image_00042"])
    assert steps[:3] == bytes([1, 0, 0]) and steps[3:5] == bytes([3, 0])  # two number steps: +4, +1


def test_resume_after_completion_is_a_no_op(tmp_path, tiny_weights, npz):
    out = tmp_path / "a.icza"
    _pack(out, [npz], tiny_weights)
    before = out.read_bytes()
    r = _pack(out, [npz], tiny_weights, "--resume")
    assert "already complete" in r.stderr and out.read_bytes() == before
    r = runner.invoke(app, ["pack", str(npz), "-o", str(out), "-m", str(tiny_weights), *FAST, "--bits", "3", "--resume"])
    assert r.exit_code == 2 and "other images or settings" in r.stderr


def test_a_failed_write_keeps_the_last_commit(tmp_path, monkeypatch):
    path = tmp_path / "a.icza"
    path.write_bytes(ar.build_archive(HEADER, _records(10)))
    before = path.read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    seg = ar.encode_segment([ar.Record("zz", _records(1)[0].codes)], 4, 3.0)
    with pytest.raises(InvcompError, match="No space left on device"):
        ar.append_segment(path, seg, 1)
    monkeypatch.undo()
    with ar.ArchiveReader(path) as r:  # the segment bytes may be there, but uncommitted
        assert len(r) == 10 and "zz" not in r and r.tail in (0, len(seg))
    assert path.read_bytes()[: len(before)] == before
    ar.append_segment(path, seg, 1)
    with ar.ArchiveReader(path) as r:
        assert len(r) == 11 and r.tail == 0


def test_a_second_writer_is_refused(tmp_path, tiny_weights, npz):
    out = tmp_path / "a.icza"
    _pack(out, [npz], tiny_weights)
    png = tmp_path / "new.png"
    Image.fromarray(_images(1, seed=9)[0]).save(png)
    with ar.exclusive(out):
        r = runner.invoke(app, ["add", str(out), str(png), "-m", str(tiny_weights), *FAST[2:]])
    assert r.exit_code == 2 and "being written by another invcomp process" in r.stderr
    stale = tmp_path / ".a.icza.x1y2.tmp"
    stale.write_bytes(b"half")
    (tmp_path / "a.icza.partial").write_bytes(out.read_bytes())  # as if killed after the rename
    r = _pack(out, [npz], tiny_weights, "--resume")
    assert "removed .a.icza.x1y2.tmp" in r.stderr and not stale.exists()
    assert not (tmp_path / "a.icza.partial").exists() and len(_contents(out)) == 12


def test_names_must_be_utf8():
    with pytest.raises(InvcompError, match="not valid UTF-8"):
        ar.check_name("bad\udcff")


def test_header_must_match_its_generator(tmp_path, tiny_weights, npz):
    out = tmp_path / "a.icza"
    _pack(out, [npz], tiny_weights)
    with ar.ArchiveReader(out) as r:
        h, recs = r.header, list(r.records())
    forged = ar.ArchiveHeader(h.model_sha256, h.model_name, h.resolution, 5, h.latent_range, h.bits, h.config)
    bad = tmp_path / "forged.icza"
    bad.write_bytes(ar.build_archive(forged, [ar.Record(x.name, x.codes[:5]) for x in recs]))
    r = runner.invoke(app, ["unpack", str(bad), "-m", str(tiny_weights), "--device", "cpu"])
    assert r.exit_code == 2 and "differ from its generator" in r.stderr


def test_npz_rows_stream_exactly_what_np_load_gives(tmp_path):
    from invcomp.io.sources import NpzRows, list_sources

    path = tmp_path / "rows.npz"
    images = _images(9, seed=2)
    np.savez_compressed(path, images=images, image_ids=np.arange(100, 109))
    rows = NpzRows(path)
    for i in [0, 1, 5, 8, 2, 2, 7]:  # forward, skipping, and back (re-opened)
        assert np.array_equal(rows.row(i), images[i])
    rows.close()
    assert [it.name for it in list_sources([path])] == [f"image_{i:05d}" for i in range(100, 109)]
    np.savez_compressed(path, images=images.astype(np.float32))
    with pytest.raises(InvcompError, match="must be uint8"):
        NpzRows(path)
