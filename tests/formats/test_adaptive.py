"""The enhancement coder: the adaptive binary arithmetic coder and the coefficient syntax (integers only)."""
import hashlib

import numpy as np
import pytest

from invcomp.errors import InvcompError
from invcomp.formats import coefficients
from invcomp.formats.adaptive import BYPASS, HALF_PROB, PROB_MIN, BitDecoder, BitEncoder

START_SHA256 = "9e2529410415c942bb6295c1e13846522c12682dc0a3eaac2c6206960243ce4a"


def test_start_table_is_pinned():
    assert len(coefficients.START) == coefficients.CONTEXTS
    assert all(PROB_MIN <= p <= 65536 - PROB_MIN for p in coefficients.START)
    assert hashlib.sha256(repr(coefficients.START).encode()).hexdigest() == START_SHA256


def test_bits_round_trip_under_adapting_contexts():
    rng = np.random.default_rng(0)
    bits = (rng.random(5000) < 0.1).astype(int).tolist()
    ctxs = rng.integers(0, 3, 5000).tolist()
    enc = BitEncoder([HALF_PROB] * 3)
    for b, c in zip(bits, ctxs):
        enc.bit(b, c) if c < 2 else enc.bypass(b)
    data = enc.finish()
    assert len(data) < 5000 / 8 * 0.75  # skewed bits cost well under one bit each
    dec = BitDecoder(data, [HALF_PROB] * 3)
    assert [dec.bit(c) if c < 2 else dec.bypass() for c in ctxs] == bits


def test_one_loop_codes_exactly_as_one_call_per_decision():
    rng = np.random.default_rng(5)
    for skew in (0.02, 0.3, 0.5):
        bits = (rng.random(4000) < skew).astype(int).tolist()
        ctxs = rng.integers(-1, 4, 4000).tolist()  # -1: bypass
        slow, fast = BitEncoder(list(range(20000, 60000, 10000))), BitEncoder(list(range(20000, 60000, 10000)))
        for b, c in zip(bits, ctxs):
            slow.bit(b, c) if c != BYPASS else slow.bypass(b)
        fast.code(bits, ctxs)
        assert fast.p == slow.p and fast.finish() == slow.finish()
    assert BitEncoder([HALF_PROB]).finish() == b"\x40" and BitEncoder([HALF_PROB]).code([], []) is None


def test_exact_bytes_of_a_small_stream():
    enc = BitEncoder([HALF_PROB])
    for b in (1, 0, 0, 1, 1, 1, 0):
        enc.bit(b, 0)
    enc.bypass(1)
    assert enc.finish().hex() == "9b80"  # pinned: the bytes this release writes


def _random_coefs(seed, shape=(3, 4, 4, 64)):
    rng = np.random.default_rng(seed)
    coefs = np.round(rng.laplace(0, 1.2, shape)).astype(np.int64)
    coefs[:, 1, 2] = 0  # empty blocks
    coefs[0, 0, 0, 63] = 5  # last position only
    coefs[1, 0, 1, 0] = -4000  # exp-Golomb escape
    return coefs


@pytest.mark.parametrize("shape", [(3, 4, 4, 64), (3, 8, 8, 16), (1, 1, 1, 16)])
def test_coefficients_round_trip_exactly(shape):
    coefs = _random_coefs(1, shape) if shape[-1] == 64 else np.round(np.random.default_rng(2).laplace(0, 2, shape)).astype(np.int64)
    data = coefficients.encode(coefs, (False, True, True)[: shape[0]])
    back = np.asarray(coefficients.decode(data, shape, (False, True, True)[: shape[0]]))
    assert np.array_equal(back, coefs)


def test_coefficient_bytes_are_pinned():
    """The syntax's exact bytes (release 0.5.1's coder wrote these; any rewrite of it must too): empty
    blocks, a last-position-only block, an exp-Golomb escape, and many magnitudes above the unary range."""
    cases = [(_random_coefs(7, (3, 4, 4, 64)), "1e0c5eb8a70311267936fe51db54759041fa845da65e1d06149edcb411e06161"),
             (np.round(np.random.default_rng(5).laplace(0, 6, (3, 8, 8, 16))).astype(np.int64),
              "56ee052df880719e7f3a74d3084230277c4175ca89a34246ec7abf22b065d0a7")]
    for coefs, digest in cases:
        assert hashlib.sha256(coefficients.encode(coefs, (False, True, True))).hexdigest() == digest


def test_all_zero_is_a_few_bits_and_zigzag_is_jpegs():
    zeros = np.zeros((3, 4, 4, 64), np.int64)
    assert len(coefficients.encode(zeros, (False, True, True))) <= 4  # 48 empty blocks
    assert coefficients.zigzag(4) == [0, 1, 4, 8, 5, 2, 3, 6, 9, 12, 13, 10, 7, 11, 14, 15]


def test_any_bytes_decode_in_bounded_work_or_fail_cleanly():
    rng = np.random.default_rng(3)
    for _ in range(200):
        data = rng.integers(0, 256, rng.integers(0, 40)).astype(np.uint8).tobytes()
        try:
            out = coefficients.decode(data, (3, 2, 2, 64), (False, True, True))
        except InvcompError as e:
            assert "corrupt" in str(e)
            continue
        assert np.asarray(out).shape == (3, 2, 2, 64)
