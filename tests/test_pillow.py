"""The Pillow plugin: `import invcomp.pillow` makes Image.open read .icz files and Image.save write them."""
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import invcomp.pillow  # noqa: F401 - registers the format
from invcomp import compress, decompress
from invcomp.formats.icz import unpack_header

VECTOR = Path(__file__).resolve().parent / "vectors" / "0.1.0" / "airplanes32_default.icz"
FAST = dict(steps=5, restarts=1, device="cpu")


def _img(seed=0, shape=(32, 32, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_open_reads_the_header_only():
    with Image.open(VECTOR) as im:
        assert im.format == "ICZ" and im.mode == "RGB" and im.size == (32, 32)
        assert im.info["model"] == "airplanes32" and im.info["bits"] == 3
        assert im.info["model_resolution"] == 32 and im.info["original_size"] is None
        assert im.info["fingerprint"] == unpack_header(VECTOR.read_bytes())[0].fingerprint.hex()
        assert im.info["mask_scheme"] is None and im.get_format_mimetype() == "image/x-icz"
    code = ("import sys\nfrom PIL import Image\nimport invcomp.pillow\n"
            f"im = Image.open({str(VECTOR)!r})\nprint(im.format, im.size, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["ICZ", "(32,", "32)", "False"], out.stderr


def test_load_gives_the_decoded_pixels_at_the_original_size(fake_registry, tmp_path):
    small, wide = compress(_img(1), model="t", **FAST), compress(_img(2, (40, 56, 3)), model="t", **FAST)
    (tmp_path / "small.icz").write_bytes(small)
    (tmp_path / "wide.icz").write_bytes(wide)
    with Image.open(tmp_path / "small.icz") as im:
        assert im.size == (32, 32) and im.info["model"] == "t"
        assert np.array_equal(np.asarray(im), decompress(small))
    with Image.open(tmp_path / "wide.icz") as im:
        assert im.size == (56, 40) and im.info["original_size"] == (56, 40) and im.info["model_resolution"] == 32
        assert np.array_equal(np.asarray(im.convert("RGB")), decompress(wide, original_size=True))
    with Image.open(io.BytesIO(small)) as im:  # a file object, no name: the extension does not matter
        assert im.format == "ICZ" and im.copy().size == (32, 32)


def test_save_compresses_with_the_rate_options(fake_registry, tmp_path):
    src = Image.fromarray(_img(3))
    src.save(tmp_path / "a.icz", model="t", bits=5, **FAST)
    header, _ = unpack_header((tmp_path / "a.icz").read_bytes())
    assert header.bits == 5 and (tmp_path / "a.icz").read_bytes() == compress(_img(3), model="t", bits=5, **FAST)
    buf = io.BytesIO()
    src.convert("RGBA").save(buf, format="ICZ", model="t", quality=1, optimize=True, **FAST)  # Pillow's own options ignored
    assert unpack_header(buf.getvalue())[0].bits == 2
    with Image.open(tmp_path / "a.icz") as im:  # re-saving an .icz image keeps its model
        im.save(tmp_path / "b.icz", **FAST)
    assert unpack_header((tmp_path / "b.icz").read_bytes())[0].fingerprint == header.fingerprint
    src.save(tmp_path / "c.icz", model="t", target_ssim=1e-6, **FAST)
    assert unpack_header((tmp_path / "c.icz").read_bytes())[0].bits == 2
    src.save(tmp_path / "d.icz", model="t", target_psnr=30, layers=2, **FAST)  # with enhancement parts
    data = (tmp_path / "d.icz").read_bytes()
    with Image.open(tmp_path / "d.icz") as im:
        assert len(im.info["part_bytes"]) == 2 and sum(im.info["part_bytes"]) < len(data)
        assert np.array_equal(np.asarray(im), decompress(data))


@pytest.mark.parametrize("options, match", [(dict(max_bytes=3), "cannot meet --max-bytes 3"),
                                            (dict(quality=80), "--quality must be 1..10")])
def test_a_save_that_cannot_be_done_raises_and_leaves_no_file(fake_registry, tmp_path, options, match):
    with pytest.raises(OSError, match=f"cannot write ICZ image: .*{match}"):
        Image.fromarray(_img(4)).save(tmp_path / "x.icz", model="t", **options, **FAST)
    assert not (tmp_path / "x.icz").exists()


def test_not_an_icz_file_is_pillows_usual_error(tmp_path):
    (tmp_path / "x.icz").write_bytes(b"hello, not an image at all")
    with pytest.raises(UnidentifiedImageError, match="cannot identify image file"):
        Image.open(tmp_path / "x.icz")


@pytest.mark.parametrize("data, match", [
    (b"IC\x01\xd7\xa5", "truncated file"),
    (b"IC\x09\xd7\xa5\x70\x03" + bytes(40), "unsupported .icz version 9"),
    (b"IC\x01\x00\x00\x00\x03" + bytes(40), "unknown model \\(fingerprint 000000\\)"),
    (b"IC\x01\xd7\xa5\x70\x43\xff\xff\xff\xff" + bytes(40), "file header"),
])
def test_a_damaged_header_is_unidentified_with_our_message(tmp_path, data, match):
    (tmp_path / "x.icz").write_bytes(data)
    with pytest.raises(UnidentifiedImageError, match=f"cannot identify image file .*x.icz.*: .*{match}"):
        Image.open(tmp_path / "x.icz")


def test_a_damaged_payload_is_an_oserror_on_load(fake_registry, tmp_path):
    data = compress(_img(5), model="t", **FAST)
    _, pos = unpack_header(data)
    bad = data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :] + b"\x00" * 40  # longer than the raw packing
    (tmp_path / "bad.icz").write_bytes(bad)
    with Image.open(tmp_path / "bad.icz") as im:
        assert im.size == (32, 32)
        with pytest.raises(OSError, match="cannot decode ICZ image .*bad.icz.*: corrupt payload"):
            im.load()
