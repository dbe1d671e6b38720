"""Hostile inputs (issue 7): pickle payloads and tampered or oversized weights, decompression
bombs and damaged images, .icz headers that ask for huge work, decoding determinism, and
processes killed in the middle of writing."""
import ast
import hashlib
import io
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import zstandard
from conftest import TINY, tiny_nets
from PIL import Image
from typer.testing import CliRunner

from invcomp.cli import app
from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.files import write_atomic
from invcomp.formats import varint
from invcomp.formats.icz import (
    ENCODING_GAUSS,
    ENCODING_RAW,
    ENCODING_ZSTD,
    MAX_ORIGINAL_PIXELS,
    Header,
    decode_file,
    encode_file,
    pack_header,
    unpack_header,
)
from invcomp.io import images as imageio
from invcomp.io.images import fit_to_square, read_image, resize_to
from invcomp.models import weights
from invcomp.models.weights import load_net, weights_bytes
from invcomp.models.zoo import load_model

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _one_line_failure(args, match):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("invcomp: error:") and match in lines[0], r.stderr


# --- weights ---------------------------------------------------------------------------

def test_every_torch_load_in_the_package_is_weights_only():
    calls = []
    for path in (ROOT / "invcomp").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                calls.append((path.name, node.lineno, ok))
    assert calls, "expected torch.load calls in weights.py and train.py"
    assert all(ok for _, _, ok in calls), [c for c in calls if not c[2]]
    for path in (ROOT / "invcomp").rglob("*.py"):  # no other unpickler either
        text = path.read_text()
        assert "pickle.load" not in text and "allow_pickle=True" not in text, path.name


def _evil_payloads(marker: Path):
    class System:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    class Exec:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').close()",))

    return [System(), Exec()]


def _evil_files(marker: Path) -> list[bytes]:
    """Weights-shaped files whose unpickling would create `marker`: torch zip and legacy formats,
    the payload inside the state dict and as the whole object, and a bare pickle."""
    out = []
    for payload in _evil_payloads(marker):
        g, _ = tiny_nets(0)
        state = {k: v for k, v in g.state_dict().items()}
        for obj in ({"format": 1, "kind": "generator", "config": TINY.to_dict(), "state_dict": state, "x": payload},
                    payload):
            for zipped in (True, False):
                buf = io.BytesIO()
                torch.save(obj, buf, _use_new_zipfile_serialization=zipped)
                out.append(buf.getvalue())
        out.append(pickle.dumps(payload))
    return out


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickle_payloads_would_run_but_cannot(tmp_path):
    marker = tmp_path / "pwned"
    files = _evil_files(marker)
    # the payloads are real: an unsafe load runs them (so this test can fail)
    for unsafe_load in (lambda: torch.load(io.BytesIO(files[0]), weights_only=False), lambda: pickle.loads(files[-1])):
        unsafe_load()
        assert marker.exists()
        marker.unlink()
    for i, data in enumerate(files):
        with pytest.raises(InvcompError, match="not a loadable invcomp weights file"):
            load_net(data, "generator", f"evil{i}.pt")
        assert not marker.exists()
        path = tmp_path / f"evil{i}.pt"
        path.write_bytes(data)
        with pytest.raises(InvcompError):
            Codec(str(path), "cpu")
        assert not marker.exists()


def test_pickle_payload_through_the_cli(tmp_path, tiny_model):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(_evil_files(marker)[0])
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(src)
    (tmp_path / "files").mkdir()
    icz = tmp_path / "files" / "b.icz"
    icz.write_bytes(encode_file(Header(tiny_model.fingerprint, 4, 0, None), np.zeros(8, int), 3.0))
    _one_line_failure(["fit", str(src), "--model", str(evil), "--steps", "1"], "not a loadable invcomp weights file")
    _one_line_failure(["decode", str(icz), "--model", str(evil)], "not a loadable invcomp weights file")
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "b.icz", "evil.pt", "files"]


def test_other_valid_weights_under_a_registered_name_are_refused(fake_registry):
    """Not just a flipped bit: a complete, loadable generator with other weights is refused by name,
    and loads only when the user names its file explicitly (a custom model)."""
    good = load_model("t")
    other, _ = tiny_nets(5)
    swapped = weights_bytes("generator", other, TINY)
    (fake_registry / "t.pt").write_bytes(swapped)
    load_model.cache_clear()
    with pytest.raises(InvcompError, match="does not match the registry"):
        load_model("t")
    with pytest.raises(InvcompError, match="does not match the registry"):
        Codec("t", "cpu")
    custom = Codec(str(fake_registry / "t.pt"), "cpu").model
    assert custom.sha256 == hashlib.sha256(swapped).hexdigest() != good.sha256
    # a file made with the registered model is refused by the custom one (the fingerprint differs)
    data = encode_file(Header(good.fingerprint, 4, 0, None), np.zeros(8, int), 3.0)
    with pytest.raises(InvcompError, match="model 't'"):
        Codec(custom, "cpu").decompress(data)


def _weights_file(config, state=None, kind="generator"):
    if state is None:
        state = tiny_nets(0)[0].state_dict()
    buf = io.BytesIO()
    torch.save({"format": 1, "kind": kind, "config": config, "state_dict": state}, buf)
    return buf.getvalue()


def test_huge_claimed_architecture_is_refused_without_building_it(monkeypatch):
    """A config claiming the largest network (about 1 GB of parameters) over tiny tensors is refused
    after a shape check on the meta device; no real network is ever allocated."""
    built = []

    class Recording(weights.Generator):
        def __init__(self, cfg):
            super().__init__(cfg)
            built.append(next(self.parameters()).device.type)

    monkeypatch.setattr(weights, "Generator", Recording)
    huge = {"resolution": 64, "latent_dim": 1024, "width": 512, "latent_range": 3.0}
    with pytest.raises(InvcompError, match="do not match the generator architecture"):
        load_net(_weights_file(huge), "generator", "huge.pt")
    assert built == ["meta"]
    built.clear()
    load_net(_weights_file(TINY.to_dict()), "generator", "tiny.pt")  # the recording class works
    assert built == ["meta", "cpu"]


@pytest.mark.parametrize("change", [
    {"latent_range": float("nan")}, {"latent_range": float("inf")}, {"latent_range": -3.0}, {"latent_range": "3"},
    {"width": 8.5}, {"width": True}, {"latent_dim": 0}, {"resolution": 48}, {"extra": 1}, None,
])
def test_bad_stored_config_refused(change):
    cfg = dict(TINY.to_dict(), **change) if change else None
    with pytest.raises(InvcompError):
        load_net(_weights_file(cfg), "generator", "bad.pt")


def test_state_dict_must_hold_tensors():
    with pytest.raises(InvcompError, match="no tensor state_dict"):
        load_net(_weights_file(TINY.to_dict(), state={"net.0.weight": [1, 2, 3]}), "generator", "bad.pt")
    with pytest.raises(InvcompError):
        load_net(_weights_file(TINY.to_dict(), state="nope"), "generator", "bad.pt")


# --- images on the encoder side ----------------------------------------------------------

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
    _one_line_failure(["fit", str(bomb), "--model", str(tiny_weights), "--steps", "1"], "image too large")
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
        _one_line_failure(["fit", str(path), "--model", str(tiny_weights), "--steps", "1"], "not a readable image")
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


# --- bounded decoding -------------------------------------------------------------------------

def _with_size_field(data: bytes, w: int, h: int) -> bytes:
    """A file's header rewritten to store w x h, bypassing Header's checks (as a hostile writer would)."""
    header, pos = unpack_header(data)
    return data[:6] + bytes([data[6] | 0x40]) + varint.encode(w) + varint.encode(h) + data[pos:]


def test_output_size_cap_matches_the_input_cap():
    assert MAX_ORIGINAL_PIXELS == imageio.MAX_INPUT_PIXELS
    Header(b"abc", 4, 0, (8000, 8000))
    Header(b"abc", 4, 0, (65535, 976))
    with pytest.raises(InvcompError, match="more than 64000000 pixels"):
        Header(b"abc", 4, 0, (8001, 8000))


def test_huge_declared_output_refused_before_decoding(tmp_path, tiny_model, tiny_weights):
    good = encode_file(Header(tiny_model.fingerprint, 4, 0, None), np.arange(8) % 16, 3.0)
    hostile = _with_size_field(good, 65535, 65535)
    with pytest.raises(InvcompError, match="65535x65535 is more than"):
        unpack_header(hostile)
    with pytest.raises(InvcompError, match="more than"):
        Codec(tiny_model, "cpu").decompress(hostile, original_size=True)
    path = tmp_path / "huge.icz"
    path.write_bytes(hostile)
    _one_line_failure(["decode", str(path), "--original-size", "--model", str(tiny_weights)], "more than 64000000 pixels")
    _one_line_failure(["info", str(path)], "more than 64000000 pixels")
    assert not path.with_suffix(".png").exists()
    ok = _with_size_field(good, 2000, 1000)
    assert Codec(tiny_model, "cpu").decompress(ok, original_size=True).shape == (1000, 2000, 3)


def _zstd_file(n=96, bits=4) -> tuple[bytes, int]:
    data = encode_file(Header(b"abc", bits, 0, None), np.full(n, 7, np.int64), 3.0)
    header, pos = unpack_header(data)
    assert header.encoding == ENCODING_ZSTD
    return data, pos


def _magicless(raw: bytes, content_size: bool = False, window_log: int = 0) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(
        3, format=zstandard.FORMAT_ZSTD1_MAGICLESS, write_content_size=content_size, write_checksum=False,
        write_dict_id=False, window_log=window_log)
    return zstandard.ZstdCompressor(compression_params=params).compress(raw)


def test_zstd_frame_declaring_a_huge_size_is_refused():
    """python-zstandard's one-shot decompress allocates the content size a frame declares (a forged
    2^40 raised MemoryError); the decoder must refuse such frames without allocating."""
    data, pos = _zstd_file()
    frame = _magicless(bytes(48), content_size=True)
    descriptor_size = {0: 1, 1: 2, 2: 4, 3: 8}[frame[0] >> 6]
    body = frame[1 + descriptor_size:]
    for declared in (1 << 40, (1 << 64) - 1, 1 << 31, 49):
        forged = bytes([0xE0]) + declared.to_bytes(8, "little") + body  # single segment, 8-byte size
        with pytest.raises(InvcompError, match="zstd"):
            decode_file(data[:pos] + forged, 96, 3.0)
    ok = bytes([0xE0]) + (48).to_bytes(8, "little") + body  # the honest size decodes
    assert np.array_equal(decode_file(data[:pos] + ok, 96, 3.0)[1], np.zeros(96))


def test_zstd_bomb_window_and_trailing_bytes_refused():
    data, pos = _zstd_file()
    bomb = _magicless(bytes(10_000_000))  # 10 MB of zeros in a few hundred bytes; 48 expected
    assert len(bomb) < 48 * 20
    with pytest.raises(InvcompError):  # too long for a 48-byte raw packing, or more output than 48 bytes
        decode_file(data[:pos] + bomb, 96, 3.0)
    small_bomb = _magicless(bytes(60_000), window_log=16)  # a window the decoder accepts
    assert len(small_bomb) <= 48
    with pytest.raises(InvcompError, match="more than 48 bytes"):
        decode_file(data[:pos] + small_bomb, 96, 3.0)
    payload = bytearray(data[pos:])
    payload[1] = 0xF8  # window descriptor: 2^41 bytes
    with pytest.raises(InvcompError, match="zstd"):
        decode_file(data[:pos] + bytes(payload), 96, 3.0)
    with pytest.raises(InvcompError, match="after the end of the frame"):
        decode_file(data + b"\x00", 96, 3.0)
    assert np.array_equal(decode_file(data, 96, 3.0)[1], np.full(96, 7))


def test_compressed_payload_longer_than_raw_is_refused_before_decoding():
    gauss = encode_file(Header(b"abc", 5, 0, None), np.array([15, 16, 14, 17, 16, 15, 16, 13] * 4), 3.0)
    assert unpack_header(gauss)[0].encoding == ENCODING_GAUSS
    for encoding, junk in ((ENCODING_GAUSS, 21), (ENCODING_ZSTD, 21), (ENCODING_GAUSS, 10_000_000)):
        head = pack_header(Header(b"abc", 5, encoding, None))
        with pytest.raises(InvcompError, match="more than the 20 of the raw packing"):
            decode_file(head + bytes(junk), 32, 3.0)
    with pytest.raises(InvcompError, match="expected 20"):
        decode_file(pack_header(Header(b"abc", 5, ENCODING_RAW, None)) + bytes(21), 32, 3.0)


# --- determinism ------------------------------------------------------------------------------

_DECODE_SCRIPT = """
import hashlib, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from invcomp.codec import decompress
model = sys.argv[3] if len(sys.argv) > 3 else None
for _ in range(2):
    pixels = decompress(open(sys.argv[2], 'rb').read(), model=model, device='cpu', original_size=True)
    print(hashlib.sha256(pixels.tobytes()).hexdigest(), torch.get_num_threads())
"""


def _files_for(model_fingerprint: bytes, latent: int, bits: int) -> list[bytes]:
    rng = np.random.default_rng(11)
    return [encode_file(Header(model_fingerprint, bits, 0, size), rng.integers(0, 1 << bits, latent), 3.0)
            for size in (None, (97, 41))]


def _in_process_digests(codec: Codec, files: list[bytes]) -> set[str]:
    before = torch.get_num_threads()
    digests = set()
    try:
        for threads in (1, 2, 1):
            torch.set_num_threads(threads)
            for data in files:
                for _ in range(2):
                    digests.add((data, hashlib.sha256(codec.decompress(data, original_size=True).tobytes()).hexdigest()))
    finally:
        torch.set_num_threads(before)
    return digests


@pytest.mark.slow
def test_decoding_is_identical_across_runs_and_thread_counts(tmp_path, tiny_model, tiny_weights):
    files = _files_for(tiny_model.fingerprint, 8, 4)
    digests = _in_process_digests(Codec(tiny_model, "cpu"), files)
    assert len(digests) == len(files)  # one digest per file whatever the thread count
    path = tmp_path / "f.icz"
    path.write_bytes(files[1])
    want = next(d for f, d in digests if f == files[1])
    for threads in (1, 2):  # fresh processes
        out = subprocess.run([sys.executable, "-c", _DECODE_SCRIPT, str(threads), str(path), str(tiny_weights)],
                             capture_output=True, text=True, check=True).stdout.split()
        assert out == [want, str(threads), want, str(threads)]


@pytest.mark.slow
@pytest.mark.pretrained
def test_pretrained_decoding_is_identical_across_thread_counts(tmp_path):
    """The real generator (wider convolutions, where thread partitioning could matter)."""
    codec = Codec("airplanes32", "cpu")
    files = _files_for(codec.model.fingerprint, codec.model.config.latent_dim, 3)
    digests = _in_process_digests(codec, files)
    assert len(digests) == len(files)
    path = tmp_path / "p.icz"
    path.write_bytes(files[0])
    want = next(d for f, d in digests if f == files[0])
    out = subprocess.run([sys.executable, "-c", _DECODE_SCRIPT, "2", str(path)], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [want, "2", want, "2"]


# --- interrupted work -------------------------------------------------------------------------

def _digest_tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _wait_for(predicate, limit: float) -> None:
    t0 = time.monotonic()
    while not predicate() and time.monotonic() - t0 < limit:
        time.sleep(0.01)


@pytest.mark.slow
def test_killing_fit_never_leaves_a_partial_icz_or_touches_the_input(tmp_path, tiny_weights, tiny_model):
    """SIGKILL `invcomp fit` at several moments (during start-up, just as the 1st output appears,
    a little after it, and just as the 2nd appears); every .icz left behind decodes, and the inputs are
    byte-for-byte untouched. The runs go in parallel to share the start-up time."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    rng = np.random.default_rng(3)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)).save(inputs / f"img{i}.png")
    before = _digest_tree(inputs)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    points = [(0, 0.5), (1, 0.0), (1, 0.05), (2, 0.0)]  # (outputs to wait for, then seconds more)
    runs = []
    for i, point in enumerate(points):
        out = tmp_path / f"out{i}"
        cmd = [sys.executable, "-m", "invcomp", "fit", str(inputs), "-o", str(out), "--model", str(tiny_weights),
               "--steps", "150", "--batch-size", "1", "--device", "cpu", "--seed", str(i)]
        runs.append([subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env), out, point, None])
    t0 = time.monotonic()
    try:
        while any(r[0].poll() is None for r in runs) and time.monotonic() - t0 < 300:
            for r in runs:
                proc, out, (k, extra), reached = r
                if proc.poll() is not None:
                    continue
                n = len(list(out.glob("*.icz"))) if out.exists() else 0
                if reached is None and n >= k:
                    r[3] = reached = time.monotonic()
                if reached is not None and time.monotonic() - reached >= extra:
                    proc.send_signal(signal.SIGKILL)
            time.sleep(0.005)
    finally:
        for proc, *_ in runs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert all(r[0].returncode == -signal.SIGKILL for r in runs), "a run finished before its kill point"
    assert _digest_tree(inputs) == before
    codec = Codec(tiny_model, "cpu")
    seen = []
    for _, out, (k, _), _ in runs:
        files = sorted(out.iterdir()) if out.exists() else []
        icz = [f for f in files if f.suffix == ".icz"]
        for f in icz:
            pixels = codec.decompress(f.read_bytes(), original_size=True)  # raises if partial or corrupt
            assert pixels.shape == (40, 44, 3)
        for f in files:  # only write_atomic's hidden temporary files may be left by a kill
            assert f.suffix == ".icz" or (f.name.startswith(".") and f.name.endswith(".tmp")), f.name
        assert len(icz) >= k
        seen.append(len(icz))
    assert seen[-1] >= 2  # the kills did land after outputs had been written


def test_killing_write_atomic_leaves_the_old_or_the_new_file(tmp_path):
    """Kill a (forked) process rewriting one 8 MB file in a loop at many moments: the file is
    always complete, old or new, never partial."""
    target = tmp_path / "out.icz"
    old, new = bytes(range(256)) * (8 << 12), bytes(range(255, -1, -1)) * (8 << 12)
    target.write_bytes(old)
    for delay in (0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3):
        pid = os.fork()
        if pid == 0:  # child: rewrite forever, alternating contents
            try:
                while True:
                    write_atomic(target, new)
                    write_atomic(target, old)
            finally:
                os._exit(1)
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert target.read_bytes() in (old, new)
    for leftover in tmp_path.iterdir():
        assert leftover == target or (leftover.name.startswith(".out.icz.") and leftover.name.endswith(".tmp"))


def test_write_atomic_cleans_up_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "x.icz"
    target.write_bytes(b"old")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new contents")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.icz"]
