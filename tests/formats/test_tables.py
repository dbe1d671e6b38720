"""Decoding does not depend on the platform.

1. The entropy tables are integers that no float library can change: the N(0, 1) tables are built
   with `arith.erf` (decimal arithmetic, exactly specified), never the C library's erf; they are
   exactly the tables the C library's erf gave when release 0.1.0 wrote its files (pinned sha256,
   and compared with a libm construction here), and the same with the pure-Python `decimal`. The
   residual tables of assistant pixels and the archive's histogram tables are integer-only; pinned.
2. Decoding a file gives identical codes, and pixels at most one level apart, at 1 and 2 threads and
   with oneDNN (mkldnn) on and off: the tiny test generator and the pretrained airplanes32.
"""
import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from invcomp.codec import Codec
from invcomp.errors import InvcompError
from invcomp.formats import arith
from invcomp.formats.icz import Header, encode_file
from invcomp.formats.icza import histogram_cumulative
from invcomp.masks.assistant import DECAYS, residual_table

ALL_GAUSS_SHA256 = "53a1efddd955e69cf97cc1236c2b8474b7362b61e3e6af4d8ee61dfb661aefea"  # bits 2..12, R = 3 (as test_icz)
GAUSS_SHA256 = {
    2: "d01de95851fe3dfb5b2b2202fa02fd5b40b349b7d0815641dc577aacd5961a0a",
    3: "2d3bf33dc1972ea7b3a908d8009f40700bbe76b7738c77b15a06240e33ca6047",
    4: "439cb22076d3307daae846bedec7b44485f2114cd99f1894f717da7386ab9c8e",
    5: "a59ccaafa0c47c1aabbeb8b0c5644caaa80008fac55bfb2ba5029041acf72f80",
    6: "94aae7695bdfbe6529dd0bc6979b45b951f8b74e00f774eeb335f8b683cdbb56",
    7: "a068bd8a2df4b7ad167cd7bacfa88b1617abc6984fe9b645992d8bfa45ca2894",
    8: "544786d5ef5ccfcf19ec37e8675c33c6f8f961afa67e726d7becb8964c743e77",
    9: "ff2aab38e87078814da7bd236b5fb5bdcbd16bbdcc76dff2213ee88a7177bda8",
    10: "9364a867d6363effd43b5689904ed9b1133e5c4ea130bb14cd8e6bef37736e02",
    11: "65411d64ed0aadd9798d32c4de185a2467df0d3ca8f35ae551f0fe4b6d7e1253",
    12: "40ee3dd0d2d3eaa10cc5ce712f9474141be1baaac2b9e4b47432743cb2c5383c",
}
RESIDUAL_SHA256 = "6868fb08ebed2b5ae5f79b5f56cfeb5f89af6b881ec52a33ebc6a925b721a11b"  # bits 1..8 x 14 decays
HISTOGRAM_SHA256 = "18cb7958c151e602b19d107ffbacb1f22db2720b662cb977c46ab939cb16897a"


def _sha(obj) -> str:
    return hashlib.sha256(repr(obj).encode()).hexdigest()


def _libm_table(bits: int, latent_range: float) -> tuple[int, ...]:
    """The construction of release 0.1.0, with the C library's erf (math.erf)."""
    levels = 1 << bits
    step = 2 * latent_range / (levels - 1)
    edges = [-latent_range + (i + 0.5) * step for i in range(levels - 1)]
    cdf = [0.0] + [0.5 * (1 + math.erf(e / math.sqrt(2))) for e in edges] + [1.0]
    probs = [cdf[i + 1] - cdf[i] for i in range(levels)]
    spare = arith.TOTAL - levels
    return arith.cumulative([1 + int(p * spare) for p in probs], max(range(levels), key=lambda i: probs[i]))


@pytest.fixture()
def fresh_tables():
    arith.gaussian_cumulative.cache_clear()
    yield
    arith.gaussian_cumulative.cache_clear()


# --- the tables ---------------------------------------------------------------------------------

def test_gauss_tables_are_pinned(fresh_tables):
    tables = [arith.gaussian_cumulative(b, 3.0) for b in range(2, 13)]
    assert _sha(tables) == ALL_GAUSS_SHA256
    assert {b: arith.table_sha256(t) for b, t in zip(range(2, 13), tables)} == GAUSS_SHA256 == arith._PINNED
    for t in tables:
        assert t[0] == 0 and t[-1] == arith.TOTAL and all(a < b for a, b in zip(t, t[1:]))


def test_the_tables_equal_those_of_the_c_library_erf_that_wrote_the_files(fresh_tables):
    """Every registered model uses latent range 3.0: for every bit depth the integers are those of
    release 0.1.0 (built with math.erf), so every file it wrote decodes unchanged. (glibc's erf
    differs from the correctly rounded value by one ulp at 385 of these 8177 edges, and the integers
    are still the same.)"""
    for bits in range(2, 13):
        assert arith.gaussian_cumulative(bits, 3.0) == _libm_table(bits, 3.0), bits
    assert _sha([_libm_table(b, 3.0) for b in range(2, 13)]) == ALL_GAUSS_SHA256


def test_the_tables_do_not_use_the_c_library(fresh_tables, monkeypatch):
    def forbidden(x):
        raise AssertionError("math.erf used")

    monkeypatch.setattr(math, "erf", forbidden)
    assert _sha([arith.gaussian_cumulative(b, 3.0) for b in range(2, 13)]) == ALL_GAUSS_SHA256


@pytest.mark.slow
def test_the_pure_python_decimal_gives_the_same_tables():
    """decimal's C (libmpdec) and Python versions implement one specification: the same tables."""
    code = ("import sys\nsys.modules['_decimal'] = None\nimport decimal, _pydecimal\n"
            "assert decimal.Decimal is _pydecimal.Decimal\n"
            "from invcomp.formats import arith\n"
            "for b in range(2, 9):\n    print(b, arith.table_sha256(arith.gaussian_cumulative(b, 3.0)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = dict(line.split() for line in out.stdout.split("\n") if line)
    assert {int(b): h for b, h in got.items()} == {b: GAUSS_SHA256[b] for b in range(2, 9)}


def test_erf_is_within_an_ulp_of_the_c_library_and_exact_where_known():
    xs = [i / 97 for i in range(-700, 701)] + [1e-300, 5e-324, 0.5, 1.0, 2.0, 5.9, 6.0, 1e5]
    for x in xs:
        got, ref = arith.erf(x), math.erf(x)
        assert abs(got - ref) <= math.ulp(ref), x
        assert arith.erf(-x) == -got
    assert arith.erf(0.5) == 0.5204998778130465  # 0.520499877813046537682746653892 rounded
    assert arith.erf(1.0) == 0.8427007929497149  # 0.842700792949714869341220635083 rounded
    assert arith.erf(0.0) == 0.0 and arith.erf(6.0) == 1.0 and arith.erf(-50.0) == -1.0
    assert math.isnan(arith.erf(float("nan")))
    grid = [arith.erf(i / 50) for i in range(0, 301)]
    assert all(a <= b for a, b in zip(grid, grid[1:]))


def test_a_table_that_differs_from_its_pin_is_refused(fresh_tables, monkeypatch):
    monkeypatch.setitem(arith._PINNED, 3, "0" * 64)
    with pytest.raises(InvcompError, match="differs from the pinned one"):
        arith.gaussian_cumulative(3, 3.0)
    assert arith.gaussian_cumulative(3, 2.5)[-1] == arith.TOTAL  # other ranges (custom models) are not pinned


def test_residual_tables_are_integer_only_and_pinned(monkeypatch):
    monkeypatch.setattr(math, "erf", None)
    tables = [residual_table(b, k) for b in range(1, 9) for k in range(len(DECAYS))]
    assert _sha(tables) == RESIDUAL_SHA256


def _histogram_counts() -> list[list[int]]:
    out = [[0] * 16, [5, 0, 1, 0], [1] * 8, [3, 3, 3, 3], [0, 0, 0, 7, 0, 0, 0, 0]]
    for b in range(2, 13):
        out.append([(i * 2654435761 + b * 40503) % 1009 for i in range(1 << b)])
        out.append([10**6 >> min(abs(i - (1 << (b - 1))), 20) for i in range(1 << b)])
    return out


def test_histogram_tables_are_integer_only_and_pinned():
    tables = [histogram_cumulative(c) for c in _histogram_counts()]
    assert _sha(tables) == HISTOGRAM_SHA256
    assert all(t[-1] == arith.TOTAL and all(a < b for a, b in zip(t, t[1:])) for t in tables)


# --- decoding at 1 and 2 threads, oneDNN on and off ------------------------------------------------

SETTINGS = [(1, True), (2, True), (1, False), (2, False)]


def _files(fingerprint: bytes, latent: int, bits_list) -> list[bytes]:
    rng = np.random.default_rng(16)
    return [encode_file(Header(fingerprint, bits, 0, size), rng.integers(0, 1 << bits, latent), 3.0)
            for bits in bits_list for size in (None, (50, 37))]


def _decode_everywhere(codec: Codec, files: list[bytes]) -> dict:
    before = torch.get_num_threads()
    out = {}
    try:
        for threads, onednn in SETTINGS:
            torch.set_num_threads(threads)
            with torch.backends.mkldnn.flags(enabled=onednn):
                out[threads, onednn] = [(codec.decode(f)[1], codec.decompress(f, original_size=True)) for f in files]
    finally:
        torch.set_num_threads(before)
    return out


def _same_codes_pixels_within_one(results: dict) -> None:
    ref = results[SETTINGS[0]]
    for setting, got in results.items():
        for (codes, pixels), (ref_codes, ref_pixels) in zip(got, ref):
            assert np.array_equal(codes, ref_codes), setting
            assert pixels.shape == ref_pixels.shape
            assert int(np.abs(pixels.astype(int) - ref_pixels.astype(int)).max()) <= 1, setting


@pytest.mark.filterwarnings("ignore:TF32 acceleration")
def test_tiny_model_decodes_alike_at_1_and_2_threads_and_without_onednn(tiny_model):
    codec = Codec(tiny_model, "cpu")
    _same_codes_pixels_within_one(_decode_everywhere(codec, _files(tiny_model.fingerprint, 8, (2, 4, 12))))


@pytest.mark.pretrained
@pytest.mark.filterwarnings("ignore:TF32 acceleration")
def test_airplanes32_decodes_alike_at_1_and_2_threads_and_without_onednn():
    codec = Codec("airplanes32", "cpu")
    _same_codes_pixels_within_one(_decode_everywhere(codec, _files(codec.model.fingerprint, 96, (3, 5))))


_SUBPROCESS = """
import sys, numpy as np, torch
torch.backends.mkldnn.enabled = sys.argv[1] == "1"
torch.set_num_threads(int(sys.argv[2]))
from invcomp.codec import Codec
codec = Codec(sys.argv[3], "cpu")
data = open(sys.argv[4], "rb").read()
np.savez(sys.argv[5], codes=codec.decode(data)[1], pixels=codec.decompress(data, original_size=True))
"""


@pytest.mark.slow
def test_fresh_processes_with_onednn_disabled_decode_alike(tmp_path, tiny_model, tiny_weights):
    data = _files(tiny_model.fingerprint, 8, (4,))[1]
    path = tmp_path / "f.icz"
    path.write_bytes(data)
    codec = Codec(tiny_model, "cpu")
    want_codes, want_pixels = codec.decode(data)[1], codec.decompress(data, original_size=True)
    for onednn, threads in (("0", "2"), ("1", "1")):
        out = tmp_path / f"o{onednn}{threads}.npz"
        r = subprocess.run([sys.executable, "-c", _SUBPROCESS, onednn, threads, str(tiny_weights), str(path), str(out)],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        got = np.load(out)
        assert np.array_equal(got["codes"], want_codes)
        assert int(np.abs(got["pixels"].astype(int) - want_pixels.astype(int)).max()) <= 1
