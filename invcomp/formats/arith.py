"""A small binary arithmetic coder (Witten-Neal-Cleary, 32-bit integer) for latent codes.

The latents are trained and fitted under a N(0, 1) prior, so their quantized codes are far
from uniform: coding them under the discretised Gaussian takes about 3.3 instead of 4 bits
per dimension at 4 bits. Frequency tables are integers summing to 2**16, built in double
precision from `erf` below, which is platform independent: the C library's erf may be off by an
ulp, and differently on another machine, so it is not used (tests/formats/test_tables.py pins
the tables, and proves they equal those the C library's erf gave on the machine that wrote
release 0.1.0's files).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from decimal import Decimal, localcontext
from functools import lru_cache

from invcomp.errors import InvcompError

_PRECISION = 32
_FULL = (1 << _PRECISION) - 1
_HALF = 1 << (_PRECISION - 1)
_QUARTER = 1 << (_PRECISION - 2)
TOTAL_BITS = 16
TOTAL = 1 << TOTAL_BITS


def cumulative(freqs: Sequence[int], peak: int) -> tuple[int, ...]:
    """Cumulative frequencies (length L + 1, last = TOTAL) from per-symbol frequencies >= 1
    whose sum is at most TOTAL: symbol `peak` takes what is left over."""
    freqs = list(freqs)
    freqs[peak] += TOTAL - sum(freqs)
    cum = [0]
    for f in freqs:
        cum.append(cum[-1] + f)
    return tuple(cum)


def cumulative_from_weights(weights: Sequence[int]) -> tuple[int, ...]:
    """Integer weights -> cumulative frequencies: f_i = 1 + w_i (TOTAL - L) // sum(w) (every symbol
    codable), the first largest weight takes the rest. Integer arithmetic only."""
    levels, total = len(weights), sum(weights)
    spare = TOTAL - levels
    freqs = [1 + (w * spare // total if total else 0) for w in weights]
    return cumulative(freqs, max(range(levels), key=lambda i: (weights[i], -i)))


# pi to 60 digits (the decimal module has no pi); erf below works with 40
_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494")
_ERF_DIGITS = 40
_ERF_ONE = 6.0  # |x| >= 6: erfc(x) < 2.2e-17, under half an ulp of 1.0, so erf(x) rounds to +-1.0


def erf(x: float) -> float:
    """erf(x) rounded to the nearest double (computed to ~40 significant digits first), the
    same on every platform: exactly specified decimal arithmetic (`decimal`: +, *, /, sqrt and
    exp are correctly rounded by its specification, in both its C and Python versions), then one
    correctly rounded conversion. Series erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) /
    (1 3 5 ... (2n+1)): every term positive (no cancellation); for |x| < 6, a few hundred terms
    at most (70 at the largest edge of a 3.0 range)."""
    if x != x:
        return x
    if abs(x) >= _ERF_ONE:
        return math.copysign(1.0, x)
    if x == 0:
        return x
    with localcontext() as ctx:
        ctx.prec = _ERF_DIGITS + 10
        d = abs(Decimal(x))  # exact: every double is a finite decimal
        x2 = d * d
        term = total = d
        eps = Decimal(10) ** -(_ERF_DIGITS + 5)
        n = 0
        while term > eps * total:
            n += 1
            term = term * 2 * x2 / (2 * n + 1)
            total += term
        r = 2 / _PI.sqrt() * (-x2).exp() * total
    r = float(r)  # Decimal -> float is correctly rounded (via its decimal string)
    return r if x > 0 else -r


# sha256 of repr(table) for latent_range 3.0, sigma 1 (every registered model's), bits 2..12: the
# tables that release 0.1.0 wrote its files with. Checked whenever such a table is built.
_PINNED = {
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


@lru_cache(maxsize=64)
def gaussian_cumulative(bits: int, latent_range: float, sigma: float = 1.0) -> tuple[int, ...]:
    """Cumulative integer frequencies (length levels + 1, last = TOTAL) of N(0, sigma)
    discretised onto the 2**bits uniform levels over [-R, R]; the end levels take the tails.
    Double precision IEEE arithmetic around the platform-independent `erf`, so the same
    integers everywhere."""
    levels = 1 << bits
    step = 2 * latent_range / (levels - 1)
    edges = [-latent_range + (i + 0.5) * step for i in range(levels - 1)]
    cdf = [0.0] + [0.5 * (1 + erf(e / (sigma * math.sqrt(2)))) for e in edges] + [1.0]
    probs = [cdf[i + 1] - cdf[i] for i in range(levels)]
    spare = TOTAL - levels  # every level gets at least 1
    cum = cumulative([1 + int(p * spare) for p in probs], max(range(levels), key=lambda i: probs[i]))
    if latent_range == 3.0 and sigma == 1.0 and bits in _PINNED and table_sha256(cum) != _PINNED[bits]:
        raise InvcompError(f"the {bits}-bit entropy table differs from the pinned one: this platform's "
                           "floating point is not IEEE double; refusing to code with it")
    return cum


def table_sha256(cum: Sequence[int]) -> str:
    """The checksum pinned for a table: sha256 of repr(tuple(cum))."""
    return hashlib.sha256(repr(tuple(cum)).encode()).hexdigest()


def encode(symbols: list[int], cum: tuple[int, ...]) -> bytes:
    low, high, pending = 0, _FULL, 0
    out: list[int] = []

    def emit(bit: int) -> None:
        nonlocal pending
        out.append(bit)
        out.extend([1 - bit] * pending)
        pending = 0

    for s in symbols:
        span = high - low + 1
        high = low + span * cum[s + 1] // TOTAL - 1
        low = low + span * cum[s] // TOTAL
        while True:
            if high < _HALF:
                emit(0)
            elif low >= _HALF:
                emit(1)
                low -= _HALF
                high -= _HALF
            elif low >= _QUARTER and high < _HALF + _QUARTER:
                pending += 1
                low -= _QUARTER
                high -= _QUARTER
            else:
                break
            low, high = 2 * low, 2 * high + 1
    pending += 1
    emit(0 if low < _QUARTER else 1)
    while out and out[-1] == 0:  # the decoder reads missing bits as zeros
        out.pop()
    out.extend([0] * (-len(out) % 8))
    return bytes(int("".join(map(str, out[i : i + 8])), 2) for i in range(0, len(out), 8))


def decode(data: bytes, n: int, cum: tuple[int, ...]) -> list[int]:
    """n symbols; reads past the end of data as zero bits. Always terminates (n steps)."""
    bits = unpack_bits(data)
    value, pos = first_value(bits)
    low, high = 0, _FULL
    levels = len(cum) - 1
    out = []
    for _ in range(n):
        span = high - low + 1
        target = ((value - low + 1) * TOTAL - 1) // span
        lo, hi = 0, levels - 1  # binary search for the symbol whose interval holds target
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if cum[mid] <= target:
                lo = mid
            else:
                hi = mid - 1
        s = lo
        out.append(s)
        high = low + span * cum[s + 1] // TOTAL - 1
        low = low + span * cum[s] // TOTAL
        low, high, value, pos = renormalize(low, high, value, bits, pos)
    return out


_BYTE_BITS = tuple(tuple((v >> (7 - i)) & 1 for i in range(8)) for v in range(256))


def unpack_bits(data: bytes) -> list[int]:
    """A decoder's input as bits, most significant first (no numpy: header commands import this module)."""
    return [b for byte in data for b in _BYTE_BITS[byte]]


def first_value(bits: list[int]) -> tuple[int, int]:
    """A decoder's starting value: the first 32 bits (zeros past the end), and the position after them."""
    return int("".join(map(str, bits[:_PRECISION])).ljust(_PRECISION, "0"), 2), _PRECISION


def renormalize(low: int, high: int, value: int, bits: list[int], pos: int) -> tuple[int, int, int, int]:
    """The decoder's renormalisation after a decision (Witten-Neal-Cleary): widen the interval, reading the
    next bits into value; bits past the end read as zeros. -> (low, high, value, position in bits)."""
    end = len(bits)
    while True:
        if high < _HALF:
            pass
        elif low >= _HALF:
            low -= _HALF
            high -= _HALF
            value -= _HALF
        elif low >= _QUARTER and high < _HALF + _QUARTER:
            low -= _QUARTER
            high -= _QUARTER
            value -= _QUARTER
        else:
            break
        low, high = 2 * low, 2 * high + 1
        value = (value << 1) | (bits[pos] if pos < end else 0)
        pos += 1
    return low, high, value, pos
