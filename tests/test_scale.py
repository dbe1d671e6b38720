"""Archives at scale: opening reads no chunk index; one image by name reads about log2(chunks)
chunk indexes and decodes one record (a name not there reads the full index, so the answer is
always the full index's); packing or reading every image takes memory that does not grow with
the count beyond the index (the full version, at 1k/10k/100k: scripts/archive_scale.py)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from invcomp.errors import InvcompError
from invcomp.formats import icza
from invcomp.formats.icza import chunks as chunks_module
from invcomp.formats.icza import reader as reader_module

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "archive_scale.py"
HEADER = icza.ArchiveHeader("ab" * 32, "t", 32, 16, 3.0, 3, icza.canonical_config({}))


def _records(names, seed=0):
    rng = np.random.default_rng(seed)
    return [icza.Record(n, np.clip(np.round(rng.normal(3.5, 1.5, 16)), 0, 7).astype(np.int64)) for n in names]


def _archive(path: Path, batches, chunk_records=16) -> dict:
    """An archive of several segments (one per batch, as `add` writes them); returns name -> codes."""
    icza.create_archive(path, HEADER)
    want = {}
    for k, names in enumerate(batches):
        recs = _records(names, k)
        icza.append_segment(path, icza.encode_segment(recs, 3, 3.0, chunk_records), len(recs))
        want.update({r.name: r.codes for r in recs})
    return want


class _Counter:
    def __init__(self, monkeypatch):
        self.index_reads = self.decodes = 0
        real_index, real_codes = chunks_module.decode_chunk_index, reader_module.decode_codes

        def index(*a):
            self.index_reads += 1
            return real_index(*a)

        def codes(*a):
            self.decodes += 1
            return real_codes(*a)

        monkeypatch.setattr(reader_module, "decode_chunk_index", index)
        monkeypatch.setattr(reader_module, "decode_codes", codes)


def test_open_reads_no_index_and_one_lookup_decodes_one_record(tmp_path, monkeypatch):
    path = tmp_path / "a.icza"
    names = [f"img_{i:05d}" for i in range(2000)]
    recs = _records(names)
    path.write_bytes(icza.build_archive(HEADER, recs, chunk_records=16))  # 125 chunks
    count = _Counter(monkeypatch)
    with icza.ArchiveReader(path) as r:
        assert count.index_reads == 0 and count.decodes == 0
        for probe in (0, 777, 1999):
            before = count.index_reads
            assert np.array_equal(r.codes(names[probe]), recs[probe].codes)
            assert count.index_reads - before <= math.ceil(math.log2(125)) + 1
        assert "img_00500" in r and r.record_bytes("img_00500") > 0
        assert count.decodes == 3 and not r._full  # the whole index was never read
        assert len(r) == 2000 and r._full  # what needs every name reads every index, once
        assert count.index_reads >= 125
    with icza.ArchiveReader(path) as r:
        assert "img_99999" not in r and r._full  # a name not found is looked up in the full index, to be sure
        with pytest.raises(InvcompError, match="no image named"):
            r.codes("nope")


def test_lookup_by_name_equals_the_full_index_on_any_archive(tmp_path):
    """Several segments (a later copy of a name wins, as in the full index), absent names, and
    damage anywhere: a lookup gives exactly what the full read gives."""
    path = tmp_path / "a.icza"
    batches = [[f"a/{i:03d}" for i in range(0, 120, 2)], [f"a/{i:03d}" for i in range(1, 120, 2)],
               ["b", "a/050", "z" * 30], [f"c{i}" for i in range(40)]]
    want = _archive(path, batches, chunk_records=8)
    probes = sorted(want) + ["a/", "a/0500", "", "zz", "c", "c39x"]
    clean = path.read_bytes()

    def outcome(r, name):
        try:
            return tuple(r.codes(name).tolist())
        except InvcompError as e:
            return str(e)
        except ValueError:
            return "bad name"

    with icza.ArchiveReader(path) as r:
        assert {n: tuple(r.codes(n).tolist()) for n in want} == {n: tuple(c.tolist()) for n, c in want.items()}
    rng = np.random.default_rng(0)
    for trial in range(40):
        data = bytearray(clean)
        if trial:
            pos = int(rng.integers(len(icza.archive_start(HEADER)), len(data)))
            data[pos] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(data))
        with icza.ArchiveReader(path) as full:
            full._load()
            expected = {n: outcome(full, n) for n in probes}
        for n in probes[::7]:
            with icza.ArchiveReader(path) as lazy:  # a fresh reader per name: nothing read before it
                assert outcome(lazy, n) == expected[n], (trial, n)
        with icza.ArchiveReader(path) as lazy:
            assert {n: outcome(lazy, n) for n in probes} == expected, trial


def _measure(step: str, path: Path, n: int) -> dict:
    out = subprocess.run([sys.executable, str(SCRIPT), "--child", step, "--path", str(path), "--n", str(n)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_pack_and_read_in_memory_that_does_not_grow_beyond_the_index(tmp_path):
    """Pack-level writing (committed batches, then the compacted rewrite) and reading every record
    of 1,000 and 5,000 images, each in its own process: peak RSS grows by well under a kilobyte per
    image (the index: a name, a location, a length and a check each; the codes alone, held as
    Python ints, would be ~3.5 KB per image), and opening plus one lookup stays as fast and small."""
    rows = {}
    for n in (1000, 5000):
        path = tmp_path / f"s{n}.icza"
        rows[n] = {step: _measure(step, path, n) for step in ("pack", "one", "unpack")}
    per_image = {step: (rows[5000][step]["peak_rss_mb"] - rows[1000][step]["peak_rss_mb"]) * 2**20 / 4000
                 for step in ("pack", "unpack")}
    assert per_image["pack"] < 1024 and per_image["unpack"] < 1024, per_image
    one = rows[5000]["one"], rows[1000]["one"]
    assert one[0]["peak_rss_mb"] - one[1]["peak_rss_mb"] < 1.0, one  # no index read: the same memory
    assert one[0]["seconds"] < 0.25, one
    assert rows[5000]["pack"]["bytes"] / 5000 < 40  # ~31.6 bytes per image at 96 latents, 3 bits
