"""Files written by earlier releases (tests/vectors/<release>/, made by scripts/make_vectors.py) decode
with this release to the pixels that release decoded: the same to within one level per channel (the
promise in docs/FORMAT.md; on the machine that wrote them, exactly)."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from invcomp.archive import extract
from invcomp.codec import decompress
from invcomp.formats.icza import ArchiveReader

VECTORS = Path(__file__).resolve().parent / "vectors"
CASES = [(m.parent, f) for m in sorted(VECTORS.glob("*/manifest.json")) for f in json.loads(m.read_text())["files"]]


def _expected(folder: Path, name: str, sha256: str) -> np.ndarray:
    pixels = np.asarray(Image.open(folder / name).convert("RGB"))
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == sha256  # the stored PNG is what the manifest names
    return pixels


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert int(np.abs(got.astype(int) - want.astype(int)).max()) <= 1


def test_vectors_exist_for_every_release():
    releases = {"0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.4.1", "0.5.0", "0.5.1", "0.5.2", "0.5.3", "0.5.4", "0.5.5"}
    assert releases <= {p.name for p in VECTORS.iterdir() if p.is_dir()}
    assert len(CASES) >= 14



def test_vectors_cover_every_part_kind():
    from invcomp.enhance.parts import KINDS
    from invcomp.formats.icz import VERSION_PARTS, split_file

    kinds = {part[0] for folder, case in CASES if case["file"].endswith(".icz")
             for data in [(folder / case["file"]).read_bytes()] if data[2] == VERSION_PARTS for part in split_file(data)[2]}
    assert kinds == set(KINDS)

@pytest.mark.parametrize("folder, case", CASES, ids=[f"{p.name}/{c['file']}" for p, c in CASES])
def test_every_vector_decodes_to_its_pixels(folder, case):
    path = folder / case["file"]
    if path.suffix == ".icza":
        with ArchiveReader(path) as r:
            assert r.verify() == []
            got = {x.name: x.pixels for x in extract(r, device="cpu", original_size=case.get("original_size", False))}
        assert set(got) == set(case["pictures"])
        for name, want in case["pictures"].items():
            _close(got[name], _expected(folder, want["decoded"], want["pixels_sha256"]))
        return
    pixels = decompress(path.read_bytes(), device="cpu", original_size=case["original_size"])
    _close(pixels, _expected(folder, case["decoded"], case["pixels_sha256"]))
