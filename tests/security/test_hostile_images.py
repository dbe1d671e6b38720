"""Hostile images on the encoder side (issue 7): decompression bombs, truncated, empty and animated images,
formats outside the whitelist."""
import io
import struct
import zlib

import numpy as np
import pytest
from conftest import one_line_failure
from PIL import Image
from typer.testing import CliRunner

from invcomp.cli import app
from invcomp.errors import InvcompError
from invcomp.formats.icz import unpack_header
from invcomp.io.images import fit_to_square, read_image, resize_to

runner = CliRunner()


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def _png_claiming(width: int, height: int) -> bytes:
    """A 100-byte PNG whose header declares width x height (the pixel data is not there)."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [(100_000, 100_000), (10_000, 7_000), (65_535, 1_000)])
def test_decompression_bomb_refused(tmp_path, tiny_weights, size):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(*size))
    with pytest.raises(InvcompError, match="image too large"):
        read_image(bomb)
    one_line_failure(["fit", str(bomb), "--model", str(tiny_weights), "--steps", "1"], "image too large")
    assert not (tmp_path / "bomb.icz").exists()


def test_just_under_the_pixel_cap_is_not_a_bomb(tmp_path):
    """The cap is the limit, not a heuristic: 8000 x 8000 passes the bomb check (and then fails only
    because this test file has no pixel data)."""
    p = tmp_path / "big.png"
    p.write_bytes(_png_claiming(8000, 8000))
    with pytest.raises(InvcompError) as e:
        read_image(p)
    assert "too large" not in str(e.value) and "not a readable image" in str(e.value)


def test_oversized_arrays_refused_before_resizing():
    # broadcast views: 72 million pixels that take no memory
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (9000, 8000, 3))
    with pytest.raises(InvcompError, match="image too large"):
        fit_to_square(huge, 32)
    small = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(InvcompError, match="image too large"):
        resize_to(small, 65535, 65535)
    with pytest.raises(InvcompError, match="zero size"):
        resize_to(small, 0, 10)
    with pytest.raises(InvcompError, match="zero size"):
        fit_to_square(np.zeros((0, 5, 3), np.uint8), 32)
    assert resize_to(small, 8000, 1).shape == (1, 8000, 3)


def _encoded(fmt: str, **kw) -> bytes:
    rng = np.random.default_rng(1)
    frames = [Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in range(3)]
    buf = io.BytesIO()
    if kw.pop("animated", False):
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], **kw)
    else:
        frames[0].save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"])
def test_truncated_images_refused_with_one_line(tmp_path, fmt):
    data = _encoded(fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    full_pixels_cut = len(data) - (12 if fmt == "PNG" else 2)  # a PNG without IEND, a GIF without trailer load fine
    for cut in list(range(0, 64, 7)) + list(range(64, full_pixels_cut, max(1, len(data) // 40))):
        path.write_bytes(data[:cut])
        with pytest.raises(InvcompError) as e:
            read_image(path)
        assert "\n" not in str(e.value)


def test_truncated_jpeg_and_png_through_the_cli(tmp_path, tiny_weights):
    for fmt in ("JPEG", "PNG"):
        data = _encoded(fmt)
        path = tmp_path / f"cut.{fmt.lower()}"
        path.write_bytes(data[: len(data) // 2])
        one_line_failure(["fit", str(path), "--model", str(tiny_weights), "--steps", "1"], "not a readable image")
        assert not path.with_suffix(".icz").exists()
        assert path.read_bytes() == data[: len(data) // 2]


def test_truncated_animated_gif_is_an_error_or_its_first_frame(tmp_path):
    """Pillow raises IndexError / struct.error while counting the frames of a GIF cut inside a later
    frame; read_image turns every such failure into InvcompError."""
    data = _encoded("GIF", animated=True)
    path = tmp_path / "anim.gif"
    first = None
    for cut in range(0, len(data), 13):
        path.write_bytes(data[:cut])
        try:
            loaded = read_image(path)
        except InvcompError:
            continue
        first = loaded.pixels if first is None else first
        assert np.array_equal(loaded.pixels, first)
    assert first is not None


def test_zero_sized_and_empty_images_refused(tmp_path):
    for w, h in ((0, 10), (10, 0), (0, 0)):
        p = tmp_path / f"z{w}x{h}.png"
        p.write_bytes(_png_claiming(w, h))
        with pytest.raises(InvcompError, match="not a readable image"):
            read_image(p)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(InvcompError, match="empty file"):
        read_image(empty)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_images_use_the_first_frame_and_say_so(tmp_path, fmt):
    data = _encoded(fmt, animated=True, **({"lossless": True} if fmt == "WEBP" else {}))
    path = tmp_path / f"anim.{fmt.lower()}"
    path.write_bytes(data)
    loaded = read_image(path)
    assert "used the first of 3 frames" in loaded.notes
    with Image.open(path) as im:
        assert np.array_equal(loaded.pixels, np.asarray(im.convert("RGB")))  # frame 0


def test_animated_image_note_in_the_cli(tmp_path, tiny_weights):
    path = tmp_path / "anim.gif"
    path.write_bytes(_encoded("GIF", animated=True))
    r = runner.invoke(app, ["fit", str(path), "--model", str(tiny_weights), "--steps", "2", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "used the first of 3 frames" in r.stderr
    assert unpack_header((tmp_path / "anim.icz").read_bytes())[0].original_size == (48, 40)


def test_formats_outside_the_whitelist_are_not_parsed(tmp_path):
    """An EPS file named .png: Pillow alone would open it with its Ghostscript-backed plugin."""
    p = tmp_path / "x.png"
    p.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n")
    with Image.open(p) as im:
        assert im.format == "EPS"
    with pytest.raises(InvcompError, match="not a readable image"):
        read_image(p)
