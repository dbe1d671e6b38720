"""Mask schemes, user masks and assistant pixels (quantization, packing, blending)."""
import numpy as np
import pytest
import torch
from PIL import Image

from invcomp.errors import InvcompError
from invcomp.formats import varint
from invcomp.masks import assistant
from invcomp.masks import schemes as masks

S = 32


def guide_image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (S, S, 3), dtype=np.uint8)


def test_random_order_is_pinned():
    # splitmix64 in integers: a platform or numpy version that ordered differently would write incompatible files
    assert masks.random_order(1024, 0)[:8].tolist() == PINNED_ORDER
    assert sorted(masks.random_order(1000, 7).tolist()) == list(range(1000))
    assert not np.array_equal(masks.random_order(100, 1), masks.random_order(100, 2))


PINNED_ORDER = [558, 992, 196, 963, 472, 976, 295, 975]


@pytest.mark.parametrize("scheme", ["center", "random", "block", "edges", "edges+random"])
@pytest.mark.parametrize("keep", [0.01, 0.1, 0.5])
def test_schemes_keep_their_density_and_regenerate(scheme, keep):
    spec = masks.spec_for(scheme, keep, S, seed=3)
    guide = guide_image()
    m1 = masks.render(spec, S, guide)
    m2 = masks.render(masks.MaskSpec(spec.scheme, spec.count, spec.block, spec.seed), S, guide.copy())
    assert m1.dtype == bool and m1.shape == (S, S) and np.array_equal(m1, m2)
    if scheme in ("random", "edges"):
        assert m1.sum() == round(keep * S * S)
    else:  # squares and blocks: the nearest whole square / block count
        assert abs(m1.mean() - keep) <= 0.03 + 2 * np.sqrt(keep) / S


def test_guided_masks_follow_the_guide_and_seeded_masks_the_seed():
    flat = np.full((S, S, 3), 100, np.uint8)
    edge = flat.copy()
    edge[:, 16:] = 200  # a vertical edge at column 16
    m = masks.render(masks.spec_for("edges", 0.1, S), S, edge)
    cols = np.flatnonzero(m.any(0))
    assert cols.min() >= 12 and cols.max() <= 19  # all kept pixels hug the edge
    er = masks.render(masks.spec_for("edges+random", 0.25, S, seed=1), S, edge)
    assert er[:, 12:20].sum() >= er.sum() / 2
    a = masks.render(masks.spec_for("random", 0.1, S, seed=1), S)
    b = masks.render(masks.spec_for("random", 0.1, S, seed=2), S)
    assert not np.array_equal(a, b)
    with pytest.raises(InvcompError, match="G\\(z\\)"):
        masks.render(masks.spec_for("edges", 0.1, S), S)


def test_bad_specs():
    with pytest.raises(InvcompError, match="keep"):
        masks.spec_for("random", 0, S)
    with pytest.raises(InvcompError, match="keep"):
        masks.spec_for("random", 1.5, S)
    with pytest.raises(InvcompError, match="unknown mask scheme"):
        masks.spec_for("blob", 0.1, S)
    for spec in (masks.MaskSpec("center", S + 1), masks.MaskSpec("random", 0), masks.MaskSpec("block", 5, 3, 0),
                 masks.MaskSpec("block", 10_000, 4, 0)):
        with pytest.raises(InvcompError, match="corrupt mask"):
            masks.render(spec, S)


@pytest.mark.parametrize("kind", ["rect", "random", "full", "dot"])
def test_bitmap_round_trip_and_compactness(kind):
    m = np.zeros((S, S), bool)
    if kind == "rect":
        m[5:20, 8:30] = True
    elif kind == "random":
        m = np.random.default_rng(0).random((S, S)) < 0.3
    elif kind == "full":
        m[:] = True
    else:
        m[0, 0] = True
    data = masks.encode_bitmap(m)
    assert np.array_equal(masks.decode_bitmap(data, S), m)
    assert len(data) <= 1 + S * S // 8
    if kind in ("rect", "full", "dot"):
        assert len(data) <= 24  # runs (deflated when that is smaller), far below the 129-byte bitmap


def test_corrupt_bitmaps_raise_own_error():
    rng = np.random.default_rng(1)
    good = masks.encode_bitmap(np.eye(S, dtype=bool))
    bad = [b"", b"\x07", b"\x00" + bytes(3), b"\x01\x80", b"\x01" + varint.encode(S * S + 1),
           b"\x01" + varint.encode(5), b"\x00" + bytes(S * S // 8), good[:-1]]
    for data in bad:
        with pytest.raises(InvcompError, match="corrupt"):
            masks.decode_bitmap(data, S)
    for _ in range(200):  # random bytes: a mask or our own error, never another exception
        data = bytes(rng.integers(0, 256, rng.integers(1, 40), dtype=np.uint8))
        try:
            masks.decode_bitmap(data, S)
        except InvcompError:
            pass


def test_user_mask_errors(tmp_path):
    white = np.zeros((40, 50), np.uint8)
    white[10:30, 10:40] = 255
    Image.fromarray(white).save(tmp_path / "ok.png")
    m = masks.load_user_mask(tmp_path / "ok.png", (40, 50), S)
    assert m.shape == (S, S) and 0.2 < m.mean() < 0.8
    with pytest.raises(InvcompError, match="must have the image's size") as e:
        masks.load_user_mask(tmp_path / "ok.png", (50, 40), S)
    assert "\n" not in str(e.value)
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(tmp_path / "black.png")
    with pytest.raises(InvcompError, match="keeps no pixels"):
        masks.load_user_mask(tmp_path / "black.png", (40, 50), S)
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(InvcompError, match="not (a readable image|an image)") as e:
        masks.load_user_mask(tmp_path / "text.png", (40, 50), S)
    assert str(e.value).startswith("mask ") and "\n" not in str(e.value)
    with pytest.raises(InvcompError, match="no such file"):
        masks.load_user_mask(tmp_path / "missing.png", (40, 50), S)


# --- assistant pixels --------------------------------------------------------------------

@pytest.mark.parametrize("bits", range(1, 9))
def test_quantization_error_bound(bits):
    v = np.arange(256)
    codes = assistant.quantize(v, bits)
    assert codes.min() == 0 and codes.max() == (1 << bits) - 1
    err = np.abs(assistant.dequantize(codes, bits).astype(int) - v)
    assert err.max() <= 255 / (2 * ((1 << bits) - 1)) + 0.5
    assert assistant.max_error(bits) == err.max()
    assert np.array_equal(assistant.dequantize(assistant.quantize(assistant.dequantize(codes, bits), bits), bits),
                          assistant.dequantize(codes, bits))  # idempotent
    if bits == 8:
        assert err.max() == 0


@pytest.mark.parametrize("bits", [1, 3, 5, 8])
@pytest.mark.parametrize("noise", [0, 1, 40])
def test_pack_round_trip(bits, noise):
    rng = np.random.default_rng(bits * 100 + noise)
    levels = 1 << bits
    predicted = rng.integers(0, levels, 300)
    codes = np.clip(predicted + rng.integers(-noise, noise + 1, 300), 0, levels - 1)
    data = assistant.pack(codes, predicted, bits)
    assert np.array_equal(assistant.unpack(data, predicted, bits), codes)
    assert len(data) <= 1 + (300 * bits + 7) // 8  # never worse than raw (+1 byte)
    if noise == 0 and bits >= 3:
        assert len(data) < (300 * bits) // 8 / 4  # exact predictions cost almost nothing


def test_unpack_rejects_garbage():
    rng = np.random.default_rng(0)
    predicted = rng.integers(0, 16, 30)
    for _ in range(300):
        data = bytes(rng.integers(0, 256, rng.integers(0, 30), dtype=np.uint8))
        try:
            codes = assistant.unpack(data, predicted, 4)
            assert codes.shape == (30,) and codes.min() >= 0 and codes.max() < 16
        except InvcompError:
            pass


def test_blend_pastes_exactly_and_spreads_smoothly():
    torch.manual_seed(0)
    g = torch.full((1, 3, S, S), 0.5)
    a = torch.full((1, 3, S, S), 0.9)
    m = torch.zeros(1, 1, S, S)
    m[..., 12:20, 12:20] = 1
    out = assistant.blend(g, a, m)
    assert torch.allclose(out[..., 12:20, 12:20], a[..., 12:20, 12:20])
    row = out[0, 0, 16, :12]
    assert torch.all(row[1:] >= row[:-1])  # rises towards the kept square
    assert row[-1] > 0.75 and abs(row[0] - 0.5) < 0.01  # close to it the correction is nearly full, far away none
    assert torch.allclose(assistant.blend(g, a, torch.ones_like(m)), a)
    assert torch.allclose(assistant.blend(g, a, torch.zeros_like(m)), g)
