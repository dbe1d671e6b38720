"""The Python API has fit's options: quality, targets, masks and kept pixels, model="auto", with the
command's checks and errors."""
import hashlib
import warnings

import numpy as np
import pytest
from conftest import TINY, tiny_nets
from PIL import Image

from invcomp import InvcompError, compress, compress_batch, decompress
from invcomp.domain import choose_models, encoder_scores, quality_note
from invcomp.formats.icz import unpack_header
from invcomp.inversion.rate import bits_for_quality
from invcomp.models import registry, zoo
from invcomp.models.registry import ModelInfo
from invcomp.models.weights import weights_bytes
from invcomp.models.zoo import load_model

FAST = dict(steps=5, restarts=1, device="cpu")


@pytest.fixture()
def two_models(monkeypatch, tmp_path):
    """A registry of two tiny 32 px models, "t" and "u" (different weights)."""
    infos = {}
    for seed, name in ((0, "t"), (1, "u")):
        g, e = tiny_nets(seed)
        gb, eb = weights_bytes("generator", g, TINY), weights_bytes("encoder", e, TINY)
        (tmp_path / f"{name}.pt").write_bytes(gb)
        (tmp_path / f"{name}.encoder.pt").write_bytes(eb)
        infos[name] = ModelInfo(name, f"{name}.pt", 32, 8, hashlib.sha256(gb).hexdigest(), f"{name}.encoder.pt",
                                hashlib.sha256(eb).hexdigest())
    monkeypatch.setattr(registry, "REGISTRY", infos)
    monkeypatch.setattr(zoo, "_read_package_file", lambda name: (tmp_path / name).read_bytes())
    load_model.cache_clear()
    yield infos
    load_model.cache_clear()


def _img(seed=0, shape=(32, 32, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_quality_preset_sets_the_bits(tiny_model):
    data = compress(_img(), model=tiny_model, quality=1, **FAST)
    assert unpack_header(data)[0].bits == bits_for_quality(1)


@pytest.mark.parametrize("bad, match", [
    (dict(bits=4, quality=2), "give at most one of --bits, --quality"),
    (dict(quality=2, target_ssim=0.5), "give at most one"),
    (dict(quality=11), "--quality must be 1..10"),
    (dict(target_ssim=1.5), "--target-ssim must be in"),
    (dict(max_bytes=0), "--max-bytes must be >= 1"),
    (dict(mask_scheme="center", target_ssim=0.5), "cannot be combined with masks"),
    (dict(mask_scheme="stripes"), "unknown mask scheme"),
    (dict(mask_scheme="center", keep=0), "--keep must be in"),
    (dict(drop_outside=True), "need --mask or --mask-scheme"),
    (dict(mask_scheme="center", drop_outside=True), "--drop-outside needs a user mask"),
    (dict(mask_scheme="center", loss="l7"), "unknown loss"),
    (dict(mask_scheme="center", assist_bits=9), "bits"),
    (dict(colour=3), "unknown option"),
])
def test_options_are_checked_as_the_command_checks_them(tiny_model, bad, match):
    with pytest.raises(InvcompError, match=match):
        compress(_img(), model=tiny_model, **FAST, **bad)


def test_mask_scheme_keeps_pixels(tiny_model):
    data = compress(_img(), model=tiny_model, mask_scheme="center", keep=0.1, assist_bits=5, **FAST)
    header, _ = unpack_header(data)
    assert header.extension is not None
    assert decompress(data, model=tiny_model).shape == (32, 32, 3)


def test_user_mask_from_an_array_an_image_or_a_file(tiny_model, tmp_path):
    img = _img(1, (40, 48, 3))
    keep = np.zeros((40, 48), bool)
    keep[10:30, 12:36] = True
    Image.fromarray(keep.astype(np.uint8) * 255).save(tmp_path / "roi.png")
    files = [compress(img, model=tiny_model, mask=m, **FAST)
             for m in (keep, Image.fromarray(keep.astype(np.uint8) * 255), tmp_path / "roi.png")]
    assert files[0] == files[1] == files[2]
    assert unpack_header(files[0])[0].extension is not None
    dropped = compress(img, model=tiny_model, mask=keep, drop_outside=True, assist_bits=0, **FAST)
    assert unpack_header(dropped)[0].extension is None or len(dropped) < len(files[0])
    with pytest.raises(InvcompError, match="the mask must have the image's size"):
        compress(img, model=tiny_model, mask=np.ones((32, 32), bool), **FAST)
    with pytest.raises(InvcompError, match="keeps no pixels"):
        compress(img, model=tiny_model, mask=np.zeros((40, 48), bool), **FAST)
    with pytest.raises(InvcompError, match="give --mask or --mask-scheme, not both"):
        compress(img, model=tiny_model, mask=keep, mask_scheme="center", **FAST)


def test_targets(tiny_model):
    imgs = [_img(2), _img(3)]
    cheapest = compress_batch(imgs, model=tiny_model, target_ssim=1e-6, **FAST)
    assert [unpack_header(f)[0].bits for f in cheapest] == [2, 2]  # every point meets it: the cheapest
    limit = max(len(f) for f in cheapest) + 2
    assert all(len(f) <= limit for f in compress_batch(imgs, model=tiny_model, max_bytes=limit, **FAST))
    with pytest.raises(InvcompError, match=r"2 image\(s\) cannot meet --max-bytes 3 \(image 0: smallest file"):
        compress_batch(imgs, model=tiny_model, max_bytes=3, **FAST)
    with pytest.warns(UserWarning, match="target not met"):
        best = compress(imgs[0], model=tiny_model, target_ssim=0.999999, **FAST)
    assert decompress(best, model=tiny_model).shape == (32, 32, 3)


def test_plain_fit_unchanged_by_the_new_options(tiny_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = compress(_img(4), model=tiny_model, bits=5, **FAST)
    assert unpack_header(a)[0].bits == 5 and unpack_header(a)[0].extension is None


def test_auto_chooses_per_image_the_best_encoder_start(two_models):
    imgs = [_img(i) for i in range(4)] + [_img(9, (20, 50, 3))]
    scores = {name: encoder_scores(name, imgs, "cpu") for name in ("t", "u")}
    expected = ["t" if scores["t"][i] >= scores["u"][i] else "u" for i in range(len(imgs))]
    assert choose_models(imgs, "cpu") == expected
    files = compress_batch(imgs, model="auto", **FAST)
    for f, name in zip(files, expected):
        assert unpack_header(f)[0].fingerprint == two_models[name].fingerprint
        assert decompress(f).shape == (32, 32, 3)
    assert unpack_header(files[-1])[0].original_size == (50, 20)
    with pytest.raises(InvcompError, match="give at most one"):
        compress(imgs[0], model="auto", bits=3, quality=2, **FAST)


def test_auto_candidates_are_the_models_of_the_image_size(monkeypatch):
    from invcomp.domain import candidates

    assert candidates((64, 64, 3)) == ["flowers64"]
    assert set(candidates((32, 32, 3))) == {"airplanes32", "automobiles32", "flowers32"}
    assert set(candidates((512, 768, 3))) == set(registry.REGISTRY)


def test_quality_note_only_far_below_the_band():
    assert quality_note("airplanes32", 0.95, 3) is None
    note = quality_note("airplanes32", 0.40, 3)
    assert note and "far below" in note and "another model" in note and "classic codec" in note
    assert "try --model flowers32 (its encoder fits" in quality_note("airplanes32", 0.40, 3, "flowers32")
    assert "another model" in quality_note("airplanes32", 0.40, 3, "airplanes32")
    assert quality_note("airplanes32", 0.30, 12) is not None  # bit depths past the table use its last row
    assert quality_note("my-own-model", 0.1, 3) is None


def test_fit_notes_an_image_far_below_its_models_band(tmp_path, tiny_weights, monkeypatch):
    import json

    from typer.testing import CliRunner

    from invcomp import domain
    from invcomp.cli import app

    Image.fromarray(_img(6)).save(tmp_path / "a.png")
    args = ["fit", str(tmp_path / "a.png"), "--model", str(tiny_weights), "--steps", "5", "--device", "cpu"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and "far below" not in r.stderr  # a model without a band: no note
    monkeypatch.setitem(domain.QUALITY_FLOORS, "tiny", {b: 0.99 for b in range(2, 7)})
    monkeypatch.setattr(domain, "choose_models", lambda images, device: ["flowers32"] * len(images))
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    notes = [line for line in r.stderr.splitlines() if "far below" in line]
    assert len(notes) == 1 and notes[0].startswith(f"note: {tmp_path / 'a.png'}: SSIM ") and "tiny" in notes[0]
    assert "try --model flowers32" in notes[0]
    r = CliRunner().invoke(app, [*args, "--json"])
    assert any("far below" in n for n in json.loads(r.stdout)["notes"])
