"""Masked fits end to end: the extension block, decoding, old files, losses, the CLI."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from invcomp.cli import app
from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.formats.icz import Header, decode_file, encode_file, pack_header, unpack_header
from invcomp.inversion.invert import InversionConfig, image_loss
from invcomp.masks import assistant
from invcomp.masks import schemes as masks
from invcomp.masks.extension import pack_extension, read_extension
from invcomp.masks.inpaint import MaskOptions, compress_masked
from invcomp.masks.losses import masked_loss, ssim_map, weighted_ssim
from invcomp.metrics import ssim01

CFG = InversionConfig(bits=4, steps=4)


@pytest.fixture(scope="module")
def codec(tiny_model):
    return Codec(tiny_model, "cpu")


def _codes(codec, data):
    cfg = codec.model.config
    return torch.from_numpy(decode_file(data, cfg.latent_dim, cfg.latent_range)[1])[None]


@pytest.mark.parametrize("scheme", ["center", "random", "block", "edges", "edges+random", "user"])
def test_every_scheme_regenerates_from_the_file_alone(codec, images, scheme):
    user = None
    if scheme == "user":
        user = [np.zeros((32, 32), bool) for _ in images]
        for i, u in enumerate(user):
            u[3 + i : 14 + i, 5:25] = True
    opts = MaskOptions(scheme, 0.1, 5, seed=9)
    files = compress_masked(codec.model, list(images), [None] * len(images), opts, CFG, user, batch_size=2)
    spec = masks.spec_for(scheme, 0.1, 32, seed=9)
    q = assistant.dequantize(assistant.quantize(images, 5), 5)
    for i, data in enumerate(files):
        header, _ = unpack_header(data)
        assert header.extension is not None and header.extension[0] == masks.SCHEME_IDS[scheme]
        guide = codec.decode_codes(_codes(codec, data), header.bits)[0]  # G(z): all the decoder has
        kept = read_extension(header.extension, guide)
        expected = masks.render(spec, 32, guide, user[i] if user else None)
        assert np.array_equal(kept.mask, expected)
        assert kept.bits == 5 and np.array_equal(kept.values[kept.mask], q[i][kept.mask])
        decoded = Codec(codec.model, "cpu").decompress(data)  # a fresh codec, as another process would
        assert np.array_equal(decoded[kept.mask], q[i][kept.mask])
        err = np.abs(decoded[kept.mask].astype(int) - images[i][kept.mask].astype(int))
        assert err.max() <= assistant.max_error(5)
    if scheme in ("center", "random", "block"):  # positions cost a few bytes, not a bitmap
        assert len(header.extension) < 12 + (expected.sum() * 3 * 5 + 7) // 8


@pytest.mark.parametrize("scheme", ["random", "center"])
def test_keeping_every_pixel_decodes_to_the_quantized_original(codec, images, scheme):
    for bits in (4, 8):
        files = compress_masked(codec.model, list(images[:2]), [None, None], MaskOptions(scheme, 1.0, bits), CFG)
        for im, data in zip(images, files):
            assert np.array_equal(codec.decompress(data), assistant.dequantize(assistant.quantize(im, bits), bits))
    assert np.array_equal(codec.decompress(files[0]), images[0])  # 8 bits: lossless


def test_more_pixels_cost_more_and_decode_closer(codec, images):
    out = []
    for keep in (0.02, 0.2, 0.6):
        files = compress_masked(codec.model, list(images), [None] * 3, MaskOptions("random", keep, 6), CFG)
        dec = np.stack([codec.decompress(f) for f in files])
        mse = float(((dec.astype(float) - images) ** 2).mean())
        out.append((np.mean([len(f) for f in files]), mse))
    assert out[0][0] < out[1][0] < out[2][0]
    assert out[0][1] > out[1][1] > out[2][1]


def test_original_size_and_extension_together(codec, images):
    files = compress_masked(codec.model, [images[0]], [(64, 48)], MaskOptions("block", 0.2, 3), CFG)
    header, _ = unpack_header(files[0])
    assert header.original_size == (64, 48) and header.extension is not None
    assert codec.decompress(files[0], original_size=True).shape == (48, 64, 3)


def test_extension_byte_layout():
    h = Header(b"abc", 4, 0, (300, 5), b"\x01\x05\x07\x04XYZ")
    # flags 0x04 | size 0x40 | extension 0x80 = 0xc4; size varints; extension: length 7, then its bytes
    assert pack_header(h) == b"IC\x01abc\xc4\xac\x02\x05\x07\x01\x05\x07\x04XYZ"
    data = encode_file(h, np.arange(8) % 16, 3.0)
    back, codes = decode_file(data, 8, 3.0)
    assert back.extension == h.extension and back.original_size == (300, 5)
    assert codes.tolist() == (np.arange(8) % 16).tolist()
    ext = pack_extension(masks.MaskSpec("random", 51, 0, 300), 4, b"\x00PIX")
    assert ext == bytes([1, 51, 0xAC, 0x02, 4]) + b"\x00PIX"


# Files written by the code before the extension existed (commit f283b2c's bitstream.py), with a
# fixed fingerprint: codes 7 8 8 7 9 6 8 8 at 4 bits, raw; the second also stores a 40x30 original size.
V1_FILE = bytes.fromhex("494301aabbcc0478879688")
V1_SIZED = bytes.fromhex("494301aabbcc44281e78879688")
V1_CODES = [7, 8, 8, 7, 9, 6, 8, 8]


def test_old_files_without_extension_decode_unchanged(codec):
    for old, size in ((V1_FILE, None), (V1_SIZED, (40, 30))):
        header, codes = decode_file(old, 8, 3.0)
        assert header == Header(b"\xaa\xbb\xcc", 4, 0, size) and header.extension is None
        assert codes.tolist() == V1_CODES
        assert encode_file(Header(b"\xaa\xbb\xcc", 4, 0, size), np.array(V1_CODES), 3.0) == old  # still written alike
        data = pack_header(Header(codec.model.fingerprint, 4, 0, size)) + old[unpack_header(old)[1]:]
        expected = codec.decode_codes(torch.tensor([V1_CODES]), 4)[0]
        assert np.array_equal(codec.decompress(data), expected)


def test_truncated_or_damaged_extension_files_raise_own_error(codec, images):
    data = compress_masked(codec.model, [images[0]], [None], MaskOptions("edges", 0.05, 4), CFG)[0]
    for cut in range(len(data)):
        with pytest.raises(InvcompError):
            codec.decompress(data[:cut])
    rng = np.random.default_rng(0)
    for _ in range(150):
        bad = bytearray(data)
        for _ in range(rng.integers(1, 4)):
            bad[rng.integers(7, len(bad))] = rng.integers(0, 256)
        try:
            out = codec.decompress(bytes(bad))
            assert out.shape == (32, 32, 3)
        except InvcompError:
            pass


def test_weighted_ssim_matches_pytorch_msssim_and_restricts():
    rng = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32, generator=rng), torch.rand(2, 3, 32, 32, generator=rng)
    ones = torch.ones(2, 1, 32, 32)
    assert torch.allclose(weighted_ssim(x, y, ones), ssim01(x, y), atol=1e-5)
    assert ssim_map(x, y).shape == (2, 1, 22, 22)
    y2 = y.clone()
    y2[..., :, 16:] = x[..., :, 16:]  # identical on the right half
    right = torch.zeros(2, 1, 32, 32)
    right[..., :, 24:] = 1
    assert torch.all(weighted_ssim(x, y2, right) > 0.99)
    assert torch.all(weighted_ssim(x, y2, ones) < 0.8)


def test_masked_loss_without_mask_is_the_default_loss():
    rng = torch.Generator().manual_seed(1)
    g, t = torch.rand(4, 3, 32, 32, generator=rng) * 2 - 1, torch.rand(2, 3, 32, 32, generator=rng)
    z = torch.randn(4, 8, generator=rng)
    fn = masked_loss(torch.zeros(2, 3, 32, 32), torch.zeros(2, 1, 32, 32), torch.ones(2, 1, 32, 32), "ssim+mse", False, 1.5)
    assert torch.allclose(fn(g, t.repeat(2, 1, 1, 1), z, CFG), image_loss(g, t.repeat(2, 1, 1, 1), z, CFG), atol=1e-5)
    edge = masked_loss(torch.zeros(2, 3, 32, 32), torch.zeros(2, 1, 32, 32), torch.ones(2, 1, 32, 32), "ssim+mse+edge",
                       False, 1.5)
    assert torch.all(edge(g, t.repeat(2, 1, 1, 1), z, CFG) > fn(g, t.repeat(2, 1, 1, 1), z, CFG))


def test_options_validation():
    with pytest.raises(InvcompError, match="drop-outside"):
        MaskOptions("random", 0.1, drop_outside=True)
    with pytest.raises(InvcompError, match="assist-bits 0"):
        MaskOptions("random", 0.1, 0)
    with pytest.raises(InvcompError, match="assist-bits"):
        MaskOptions("random", 0.1, 9)
    with pytest.raises(InvcompError, match="unknown loss"):
        MaskOptions("random", 0.1, loss="l1")
    with pytest.raises(InvcompError, match="keep"):
        MaskOptions("center", 0.0)


# --- the command line ------------------------------------------------------------------------

def test_cli_fit_with_masks(tmp_path, tiny_weights, images):
    runner = CliRunner()
    Image.fromarray(images[0]).save(tmp_path / "a.png")
    roi = np.zeros((32, 32), np.uint8)
    roi[4:12, 6:20] = 255
    Image.fromarray(roi).save(tmp_path / "roi.png")
    common = ["fit", str(tmp_path / "a.png"), "--model", str(tiny_weights), "--steps", "3", "--device", "cpu", "--json"]
    r = runner.invoke(app, common + ["-o", str(tmp_path / "r.icz"), "--mask-scheme", "random", "--keep", "0.1"])
    assert r.exit_code == 0, r.output
    shown = json.loads(runner.invoke(app, ["info", str(tmp_path / "r.icz"), "--json"]).stdout)
    assert shown["mask_scheme"] == "random" and 1 <= shown["extension_bytes"] < shown["bytes"]
    r = runner.invoke(app, common + ["-o", str(tmp_path / "u.icz"), "--mask", str(tmp_path / "roi.png"),
                                     "--assist-bits", "8"])
    assert r.exit_code == 0, r.output
    from invcomp.models.zoo import Model
    model = Model.from_files(tiny_weights)
    dec = Codec(model, "cpu").decompress((tmp_path / "u.icz").read_bytes())
    assert np.array_equal(dec[4:12, 6:20], images[0][4:12, 6:20])
    r = runner.invoke(app, common + ["-o", str(tmp_path / "d.icz"), "--mask", str(tmp_path / "roi.png"),
                                     "--drop-outside", "--assist-bits", "0"])
    assert r.exit_code == 0, r.output
    assert unpack_header((tmp_path / "d.icz").read_bytes())[0].extension is None  # only the latent, fitted to the ROI
    Image.fromarray(np.zeros((32, 30), np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "black.png")
    (tmp_path / "text.png").write_text("hello")
    for bad, msg in [("small.png", "must have the image's size"), ("black.png", "keeps no pixels"),
                     ("text.png", "not ")]:
        r = runner.invoke(app, common + ["-o", str(tmp_path / "x.icz"), "--mask", str(tmp_path / bad)])
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output and "invcomp: error: mask " in r.output
        assert r.output.strip().count("\n") == 0
        assert not (tmp_path / "x.icz").exists()
    r = runner.invoke(app, common + ["--loss", "ssim"])
    assert r.exit_code == 2 and "need --mask" in r.output
