"""Property tests (hypothesis) and a short seeded run of scripts/fuzz.py: whatever the bytes, the
.icz decoder returns an image or raises InvcompError, and valid files round-trip exactly."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.formats import arith, bitpack
from invcomp.formats.icz import MAX_ORIGINAL_PIXELS, MAX_SIDE, Header, decode_file, encode_file, pack_header, unpack_header

# derandomize: the same examples on every run (the suite is deterministic); no example database on disk
SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=300,
                    suppress_health_check=[HealthCheck.too_slow])

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load_fuzz(name: str = "fuzz"):
    """scripts/<name>.py as a module (the scripts import their siblings, as they do when run)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(f"invcomp_{name}_script", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sizes = st.none() | st.tuples(st.integers(1, MAX_SIDE), st.integers(1, MAX_SIDE)).filter(
    lambda s: s[0] * s[1] <= MAX_ORIGINAL_PIXELS)


@st.composite
def valid_files(draw, n=None):
    bits = draw(st.integers(2, 12))
    n = n or draw(st.integers(1, 200))
    kind = draw(st.sampled_from(["uniform", "constant", "central"]))
    top = (1 << bits) - 1
    if kind == "uniform":
        codes = draw(st.lists(st.integers(0, top), min_size=n, max_size=n))
    elif kind == "constant":
        codes = [draw(st.integers(0, top))] * n
    else:  # near the middle level, where the gauss encoding wins
        mid = top // 2
        codes = draw(st.lists(st.integers(max(0, mid - 2), min(top, mid + 2)), min_size=n, max_size=n))
    codes = np.asarray(codes, dtype=np.int64)
    header = Header(draw(st.binary(min_size=3, max_size=3)), bits, 0, draw(sizes))
    return header, codes, encode_file(header, codes, 3.0)


@pytest.mark.slow
@SETTINGS
@given(valid_files())
def test_valid_files_round_trip(case):
    header, codes, data = case
    decoded_header, decoded = decode_file(data, len(codes), 3.0)
    assert np.array_equal(decoded, codes)
    assert (decoded_header.fingerprint, decoded_header.bits, decoded_header.original_size) == (
        header.fingerprint, header.bits, header.original_size)
    # the smallest encoding is kept, so no file is longer than the header plus the raw packing
    assert len(data) <= len(pack_header(header)) + bitpack.packed_size(len(codes), header.bits)


def _decodes_or_refuses(data: bytes, n: int) -> None:
    try:
        header, codes = decode_file(data, n, 3.0)
    except InvcompError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert codes.shape == (n,) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 1 << header.bits


@SETTINGS
@given(st.binary(max_size=200), st.integers(1, 200))
def test_any_bytes_decode_or_raise_own_error(data, n):
    _decodes_or_refuses(data, n)


@SETTINGS
@given(st.integers(0, 255), st.binary(max_size=8), st.binary(max_size=120), st.integers(1, 120))
def test_plausible_headers_decode_or_raise_own_error(flags, size_field, payload, n):
    """Right magic and version, any flags byte, any size field, any payload: reaches every payload decoder."""
    _decodes_or_refuses(b"IC\x01abc" + bytes([flags]) + size_field + payload, n)


@pytest.mark.slow
@SETTINGS
@given(valid_files(n=24), st.data())
def test_mutated_valid_files_decode_or_raise_own_error(case, data):
    _, codes, original = case
    buf = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "cut", "extend"]))
        if op == "flip" and buf:
            i = data.draw(st.integers(0, len(buf) * 8 - 1))
            buf[i // 8] ^= 1 << (i % 8)
        elif op == "set" and buf:
            buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del buf[data.draw(st.integers(0, len(buf))):]
        else:
            buf += data.draw(st.binary(min_size=1, max_size=16))
    _decodes_or_refuses(bytes(buf), 24)


@pytest.mark.slow
@SETTINGS
@given(st.integers(2, 12), st.data())
def test_arith_round_trip_and_bounded_decode(bits, data):
    cum = arith.gaussian_cumulative(bits, 3.0)
    top = (1 << bits) - 1
    symbols = data.draw(st.lists(st.integers(0, top), max_size=150))
    assert arith.decode(arith.encode(symbols, cum), len(symbols), cum) == symbols
    # arbitrary bytes: exactly n symbols, each a valid level; never more work than n steps
    junk, n = data.draw(st.binary(max_size=64)), data.draw(st.integers(0, 300))
    out = arith.decode(junk, n, cum)
    assert len(out) == n and all(0 <= s <= top for s in out)


@SETTINGS
@given(st.integers(1, MAX_SIDE), st.integers(1, MAX_SIDE))
def test_original_size_field_round_trips_or_is_refused(w, h):
    if w * h > MAX_ORIGINAL_PIXELS:
        with pytest.raises(InvcompError, match="more than"):
            Header(b"abc", 4, 0, (w, h))
        return
    header = Header(b"abc", 4, 0, (w, h))
    assert unpack_header(pack_header(header))[0] == header


@settings(derandomize=True, database=None, deadline=None, max_examples=150)
@given(st.integers(0, 255), st.binary(max_size=6), st.binary(max_size=40))
def test_codec_decompress_any_payload(tiny_model_module, flags, size_field, payload):
    """The whole decoding path (fingerprint check, payload, generator, resize) on hostile bytes."""
    codec = tiny_model_module
    data = b"IC\x01" + codec.model.fingerprint + bytes([flags]) + size_field + payload
    try:
        pixels = codec.decompress(data, original_size=True)
    except InvcompError:
        return
    header, _ = unpack_header(data)
    w, h = header.original_size or (32, 32)
    assert pixels.shape == (h, w, 3) and pixels.dtype == np.uint8


@pytest.fixture(scope="module")
def tiny_model_module(tiny_model):
    return Codec(tiny_model, "cpu")


@pytest.mark.slow
def test_short_fuzz_run_has_no_findings():
    """A few thousand mutated files through Codec.decompress: every one decodes or raises InvcompError."""
    fuzz = _load_fuzz()
    summary = fuzz.run(2500, seed=7, resize_limit=1_000_000)
    assert summary["findings_count"] == 0, summary["findings"][:3]
    outcomes = summary["outcomes"]
    assert outcomes["decoded"] + outcomes["refused"] == 2500
    assert outcomes["decoded"] > 0 and outcomes["refused"] > 0  # both paths exercised
    assert set(summary["seed_files_by_encoding"]) == {"raw", "zstd", "gauss"}
    assert set(summary["by_mutator"]) == {m.__name__.lstrip("_") for m in fuzz.MUTATORS}


@pytest.mark.slow
def test_fuzzer_finds_an_unbounded_decoder(monkeypatch):
    """The fuzzer has teeth: put back the old one-shot zstd decompress (which allocates what a forged
    frame header declares) and the fuzzer reports it."""
    import zstandard

    from invcomp.formats import icz as bitstream

    def one_shot(payload, expected):  # the decoder before the fix, minus the real huge allocation
        try:
            params = zstandard.get_frame_parameters(payload, format=zstandard.FORMAT_ZSTD1_MAGICLESS)
            if params.content_size != zstandard.CONTENTSIZE_UNKNOWN and params.content_size > 1 << 30:
                raise MemoryError  # what decompress() ends in for such a frame
            dctx = zstandard.ZstdDecompressor(format=zstandard.FORMAT_ZSTD1_MAGICLESS)
            return dctx.decompress(payload, max_output_size=expected)
        except zstandard.ZstdError as e:
            raise InvcompError(f"corrupt zstd payload ({e})") from None

    fuzz = _load_fuzz()
    monkeypatch.setattr(bitstream, "_unzstd", one_shot)
    summary = fuzz.run(1000, seed=3, resize_limit=1_000_000)
    assert summary["findings_count"] > 0
    assert all(f["error"].startswith("MemoryError") for f in summary["findings"])


@pytest.mark.slow
def test_short_archive_fuzz_run_has_no_findings():
    """The same for .icza archives: mutated archives (hostile fields with fixed-up checksums among
    them) through everything ls, verify and unpack do."""
    fuzz = _load_fuzz("fuzz_archive")
    summary = fuzz.run_archive(400, seed=5)
    assert summary["findings_count"] == 0, summary["findings"][:3]
    assert summary["outcomes"]["decoded"] > 0 and summary["outcomes"]["refused"] > 0
    assert set(summary["by_mutator"]) == {m.__name__.lstrip("_") for m in fuzz.ARCHIVE_MUTATORS}


def test_archive_header_cannot_claim_a_huge_latent():
    """Found by the archive fuzzer: a header (with a valid crc32) claiming 65535 latents made every
    record decode 65535 codes (about a second each). The limit is now NetConfig's 1024."""
    from invcomp.formats import icza as ar
    from invcomp.models.nets import NetConfig

    with pytest.raises(InvcompError):
        NetConfig(latent_dim=ar.MAX_LATENT + 1)
    good = ar.ArchiveHeader("ab" * 32, "m", 32, 1024, 3.0, 4, "{}")
    assert ar.decode_header(ar.encode_header(good)[8:-4]) == good
    with pytest.raises(InvcompError, match="latent size"):
        ar.ArchiveHeader("ab" * 32, "m", 32, 65535, 3.0, 4, "{}")
    raw = bytearray(ar.encode_header(good)[8:-4])
    raw[35:37] = (65535).to_bytes(2, "little")  # the u16 latent size after version, sha256, resolution
    with pytest.raises(InvcompError, match="latent size"):
        ar.decode_header(bytes(raw))
