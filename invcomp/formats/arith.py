"""A small binary arithmetic coder (Witten-Neal-Cleary, 32-bit integer) for latent codes.

The latents are trained and fitted under a N(0, 1) prior, so their quantized codes are far
from uniform: coding them under the discretised Gaussian takes about 3.3 instead of 4 bits
per dimension at 4 bits. Frequency tables are integers summing to 2**16, built from
math.erf in double precision (tests pin a checksum of them).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

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


@lru_cache(maxsize=64)
def gaussian_cumulative(bits: int, latent_range: float, sigma: float = 1.0) -> tuple[int, ...]:
    """Cumulative integer frequencies (length levels + 1, last = TOTAL) of N(0, sigma)
    discretised onto the 2**bits uniform levels over [-R, R]; the end levels take the tails."""
    levels = 1 << bits
    step = 2 * latent_range / (levels - 1)
    edges = [-latent_range + (i + 0.5) * step for i in range(levels - 1)]
    cdf = [0.0] + [0.5 * (1 + math.erf(e / (sigma * math.sqrt(2)))) for e in edges] + [1.0]
    probs = [cdf[i + 1] - cdf[i] for i in range(levels)]
    spare = TOTAL - levels  # every level gets at least 1
    return cumulative([1 + int(p * spare) for p in probs], max(range(levels), key=lambda i: probs[i]))


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
    bits = [(byte >> (7 - i)) & 1 for byte in data for i in range(8)]
    pos = 0

    def next_bit() -> int:
        nonlocal pos
        pos += 1
        return bits[pos - 1] if pos <= len(bits) else 0

    value = 0
    for _ in range(_PRECISION):
        value = (value << 1) | next_bit()
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
            value = (value << 1) | next_bit()
    return out
